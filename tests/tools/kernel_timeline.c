/* A CUPTI injection library: every kernel's start and end on the GPU, for
 * scripts/kernel-timeline. The GPU machine has Nsight Compute but not
 * Nsight Systems, and ncu runs kernels one at a time, so it cannot show
 * what programmatic dependent launch overlaps or where a step's time goes
 * between kernels; CUPTI's activity records can (kernels launched from
 * CUDA graphs included).
 *
 * Loaded by the CUDA driver through CUDA_INJECTION64_PATH, which calls
 * InitializeInjection at the process's first CUDA call. Records go to
 * $VB_TIMELINE_OUT (default kernel-timeline.txt), one line a kernel:
 * "start_ns end_ns grid_blocks block_threads name", written as CUPTI
 * hands over its buffers and at exit. Seen on an H200 with CUDA 13.0's
 * CUPTI under `voltbatch bench`: the trace complete, then the process
 * ended by SIGABRT during exit (tests/bench/RESULTS.md, session 25). */
#include <cupti.h>
#include <stdio.h>
#include <stdlib.h>

#define TIMELINE_BUFFER_BYTES ((size_t)8 << 20)

static FILE *timeline_out;

static void CUPTIAPI timeline_buffer_requested(uint8_t **buffer, size_t *size,
                                               size_t *max_records)
{
    *buffer = aligned_alloc(8, TIMELINE_BUFFER_BYTES);
    *size = *buffer ? TIMELINE_BUFFER_BYTES : 0;
    *max_records = 0; /* as many as fit */
}

static void CUPTIAPI timeline_buffer_completed(CUcontext ctx, uint32_t stream, uint8_t *buffer,
                                               size_t size, size_t valid)
{
    CUpti_Activity *record = NULL;
    (void)ctx;
    (void)stream;
    (void)size;
    while (cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
        if (record->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL || !timeline_out)
            continue;
        const CUpti_ActivityKernel10 *k = (const CUpti_ActivityKernel10 *)record;
        fprintf(timeline_out, "%llu %llu %u %u %s\n", (unsigned long long)k->start,
                (unsigned long long)k->end, k->gridX * k->gridY * k->gridZ,
                k->blockX * k->blockY * k->blockZ, k->name ? k->name : "?");
    }
    size_t dropped = 0;
    if (cuptiActivityGetNumDroppedRecords(ctx, stream, &dropped) == CUPTI_SUCCESS && dropped)
        fprintf(stderr, "kernel_timeline: %zu records dropped\n", dropped);
    free(buffer);
}

static void timeline_at_exit(void)
{
    cuptiActivityFlushAll(1);
    if (timeline_out)
        fclose(timeline_out);
    timeline_out = NULL;
}

int InitializeInjection(void);

int InitializeInjection(void)
{
    const char *path = getenv("VB_TIMELINE_OUT");
    timeline_out = fopen(path ? path : "kernel-timeline.txt", "w");
    if (!timeline_out) {
        perror("kernel_timeline: the output file");
        return 0;
    }
    if (cuptiActivityRegisterCallbacks(timeline_buffer_requested, timeline_buffer_completed) !=
            CUPTI_SUCCESS ||
        cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) != CUPTI_SUCCESS) {
        fprintf(stderr, "kernel_timeline: CUPTI refused the kernel activity records\n");
        return 0;
    }
    atexit(timeline_at_exit);
    return 1;
}

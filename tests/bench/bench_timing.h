/* What the micro-benchmarks in tests/bench share: their start (iteration
 * count, device check), PDL set as the backend sets it, the copy
 * bandwidth they state their figures against, and a launch sequence timed
 * with events on a stream, warmed up first, as the median of 5 timings of
 * `iters` passes. */
#ifndef VB_BENCH_TIMING_H
#define VB_BENCH_TIMING_H

#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>

#include "cuda/backend_cuda.h"
#include "cuda/cuda_check.h"
#include "kernels.h"
#include "util/env.h"

/* Passes per timing from argv[1] (default_iters when absent or < 1) and
 * device 0's properties; 0 after printing SKIP when there is no CUDA
 * device (the caller exits 77). */
static inline int bench_start(int argc, char **argv, int default_iters,
                              struct cudaDeviceProp *prop)
{
    int n_dev = 0;
    if (cudaGetDeviceCount(&n_dev) != cudaSuccess || n_dev == 0) {
        printf("SKIP: no CUDA device\n");
        return 0;
    }
    int iters = argc > 1 ? atoi(argv[1]) : default_iters;
    CUDA_CHECK(cudaGetDeviceProperties(prop, 0));
    return iters < 1 ? default_iters : iters;
}

/* One pass: launches on the stream; i counts the passes of a timing (a
 * benchmark can use it to read a different copy of its inputs). */
typedef void (*bench_pass_fn)(void *ctx, int i);

/* PDL and the kernels' variants as the backend sets them
 * (cuda_kernel_switches_set), from the VB_* variables read as voltbatch
 * reads them (util/env.h). Returns the knobs read; exits 2 on a malformed
 * variable. */
static inline vb_tuning bench_pdl_from_env(const char *bench)
{
    vb_tuning knobs;
    vb_err err;
    if (vb_tuning_from_env(&knobs, &err) != 0) {
        fprintf(stderr, "%s: %s\n", bench, err.msg);
        exit(2);
    }
    cuda_kernel_switches_set(&knobs); /* PDL and the kernels' variants as a run sets them */
    return knobs;
}

static inline void bench_sort5(double t[5])
{
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)
            if (t[j] < t[i]) {
                double tmp = t[i];
                t[i] = t[j];
                t[j] = tmp;
            }
}

/* Device-to-device copy bandwidth, read + write bytes a second: cudaMemcpy
 * of 1 GiB, the median of 5 after a warm-up (what scripts/gpu-peaks
 * reports). */
static inline double bench_copy_bandwidth(cudaStream_t stream)
{
    const size_t bytes = (size_t)1 << 30;
    void *a, *b;
    CUDA_CHECK(cudaMalloc(&a, bytes));
    CUDA_CHECK(cudaMalloc(&b, bytes));
    CUDA_CHECK(cudaMemset(a, 0x11, bytes));
    cudaEvent_t e0, e1;
    CUDA_CHECK(cudaEventCreate(&e0));
    CUDA_CHECK(cudaEventCreate(&e1));
    double t[5];
    for (int rep = -1; rep < 5; rep++) { /* one warm-up */
        CUDA_CHECK(cudaEventRecord(e0, stream));
        CUDA_CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, stream));
        CUDA_CHECK(cudaEventRecord(e1, stream));
        CUDA_CHECK(cudaEventSynchronize(e1));
        float ms = 0;
        CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
        if (rep >= 0)
            t[rep] = ms * 1e-3;
    }
    bench_sort5(t);
    CUDA_CHECK(cudaEventDestroy(e0));
    CUDA_CHECK(cudaEventDestroy(e1));
    CUDA_CHECK(cudaFree(a));
    CUDA_CHECK(cudaFree(b));
    return 2.0 * (double)bytes / t[2];
}

/* Microseconds per pass: 3 warm-up passes, then the median of 5 timings of
 * iters passes each. */
static inline double bench_time_us(bench_pass_fn pass, void *ctx, cudaStream_t stream, int iters)
{
    cudaEvent_t a, b;
    CUDA_CHECK(cudaEventCreate(&a));
    CUDA_CHECK(cudaEventCreate(&b));
    for (int i = 0; i < 3; i++)
        pass(ctx, i);
    double t[5];
    for (int rep = 0; rep < 5; rep++) {
        CUDA_CHECK(cudaEventRecord(a, stream));
        for (int i = 0; i < iters; i++)
            pass(ctx, i);
        CUDA_CHECK(cudaEventRecord(b, stream));
        CUDA_CHECK(cudaEventSynchronize(b));
        float ms = 0;
        CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
        t[rep] = 1e3 * ms / iters;
    }
    CUDA_CHECK(cudaEventDestroy(a));
    CUDA_CHECK(cudaEventDestroy(b));
    bench_sort5(t);
    return t[2]; /* median */
}

/* One replay of a graph (bench_time_graph_us's pass). */
typedef struct bench_graph {
    cudaGraphExec_t exec;
    cudaStream_t stream;
} bench_graph;

static inline void bench_graph_replay(void *ctx, int i)
{
    (void)i;
    const bench_graph *g = ctx;
    CUDA_CHECK(cudaGraphLaunch(g->exec, g->stream));
}

/* Microseconds per pass as a CUDA graph replays them (the engine's decode
 * steps): `iters` passes captured once into a graph, so no host launch
 * cost sits between the kernels (for launches of a few microseconds it
 * is most of what bench_time_us measures); 3 eager warm-up passes, then
 * bench_time_us of one replay a timing. */
static inline double bench_time_graph_us(bench_pass_fn pass, void *ctx, cudaStream_t stream,
                                         int iters)
{
    for (int i = 0; i < 3; i++)
        pass(ctx, i);
    CUDA_CHECK(cudaStreamSynchronize(stream));
    cudaGraph_t graph;
    bench_graph g = {.stream = stream};
    CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < iters; i++)
        pass(ctx, i);
    CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
    CUDA_CHECK(cudaGraphInstantiate(&g.exec, graph, 0));
    double us = bench_time_us(bench_graph_replay, &g, stream, 1) / iters;
    CUDA_CHECK(cudaGraphExecDestroy(g.exec));
    CUDA_CHECK(cudaGraphDestroy(graph));
    return us;
}

#endif

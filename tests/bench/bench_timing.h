/* What the micro-benchmarks in tests/bench share: their start (iteration
 * count, device check) and a launch sequence timed with events on a
 * stream, warmed up first, as the median of 5 timings of `iters` passes. */
#ifndef VB_BENCH_TIMING_H
#define VB_BENCH_TIMING_H

#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>

#include "cuda/cuda_check.h"

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
    for (int i = 0; i < 5; i++) /* median */
        for (int j = i + 1; j < 5; j++)
            if (t[j] < t[i]) {
                double tmp = t[i];
                t[i] = t[j];
                t[j] = tmp;
            }
    return t[2];
}

#endif

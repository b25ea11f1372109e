// Projections of a few rows (decode steps of up to 8 sequences):
// out[t, n] = sum_k x[t, k] w[n, k] (+ bias[n]) for t < T <= 8, fp16 in,
// fp32 accumulation, fp16 or fp32 out.
//
// Why not cuBLAS here: with so few rows a projection is a pass over the
// weights and nothing else, and its speed is the bytes it moves. One warp
// per output row reads that row of w once in 16-byte loads (every lane a
// different 8 halves, the warp 512 contiguous bytes a step) and applies it
// to all T rows of x, which stay in L1/L2 (T x n_in halves). Measured
// against cuBLAS on the GPU machine: see tests/bench/RESULTS.md.
// Requires n_in % 8 == 0 and 16-byte aligned x and w (the caller checks
// with vb_gemv_supported and uses cuBLAS otherwise).
#include <cuda_fp16.h>

#include "kernels.h"

#define GEMV_WARPS 8 /* output rows per block */

template <int T, bool F32_OUT>
__global__ void __launch_bounds__(32 * GEMV_WARPS)
gemv_kernel(void *out, const __half *x, const __half *w, const __half *bias, int n_in, int n_out)
{
    int n = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (n >= n_out)
        return; /* whole warps leave: no shuffle is left waiting */
    const uint4 *wr = (const uint4 *)(w + (size_t)n * n_in);
    int chunks = n_in >> 3; /* 8 halves per 16-byte load */
    float acc[T];
#pragma unroll
    for (int t = 0; t < T; t++)
        acc[t] = 0.0f;
#pragma unroll 4
    for (int c = lane; c < chunks; c += 32) {
        uint4 wv = wr[c];
        const __half2 *w2 = (const __half2 *)&wv;
        float2 wf[4];
#pragma unroll
        for (int j = 0; j < 4; j++)
            wf[j] = __half22float2(w2[j]);
#pragma unroll
        for (int t = 0; t < T; t++) {
            uint4 xv = ((const uint4 *)(x + (size_t)t * n_in))[c];
            const __half2 *x2 = (const __half2 *)&xv;
#pragma unroll
            for (int j = 0; j < 4; j++) {
                float2 xf = __half22float2(x2[j]);
                acc[t] = fmaf(wf[j].x, xf.x, acc[t]);
                acc[t] = fmaf(wf[j].y, xf.y, acc[t]);
            }
        }
    }
#pragma unroll
    for (int t = 0; t < T; t++)
        for (int off = 16; off > 0; off >>= 1)
            acc[t] += __shfl_xor_sync(0xffffffffu, acc[t], off);
    if (lane < T) {
        float v = 0.0f;
#pragma unroll
        for (int t = 0; t < T; t++)
            if (t == lane)
                v = acc[t];
        if (bias)
            v += __half2float(bias[n]);
        if (F32_OUT)
            ((float *)out)[(size_t)lane * n_out + n] = v;
        else
            ((__half *)out)[(size_t)lane * n_out + n] = __float2half(v);
    }
}

#define GEMV_INSTANTIATE(T)                                                                  \
    template __global__ void gemv_kernel<T, false>(void *, const __half *, const __half *,   \
                                                   const __half *, int, int);                \
    template __global__ void gemv_kernel<T, true>(void *, const __half *, const __half *,    \
                                                  const __half *, int, int);
GEMV_INSTANTIATE(1)
GEMV_INSTANTIATE(2)
GEMV_INSTANTIATE(3)
GEMV_INSTANTIATE(4)
GEMV_INSTANTIATE(5)
GEMV_INSTANTIATE(6)
GEMV_INSTANTIATE(7)
GEMV_INSTANTIATE(8)

#ifndef __CUDACC_RTC__
extern "C" bool vb_gemv_supported(int T, int n_in, const void *x, const void *w)
{
    return T >= 1 && T <= VB_GEMV_MAX_ROWS && n_in > 0 && n_in % 8 == 0 &&
           ((uintptr_t)x & 15) == 0 && ((uintptr_t)w & 15) == 0;
}

extern "C" cudaError_t vb_gemv_f16(void *out, int out_f32, const uint16_t *x, const uint16_t *w,
                                   const uint16_t *bias, int T, int n_in, int n_out,
                                   cudaStream_t stream)
{
    if (!vb_gemv_supported(T, n_in, x, w) || n_out <= 0)
        return cudaErrorInvalidValue;
    unsigned blocks = (unsigned)((n_out + GEMV_WARPS - 1) / GEMV_WARPS);
    const __half *xh = (const __half *)x, *wh = (const __half *)w, *bh = (const __half *)bias;
#define GEMV_LAUNCH(t)                                                                       \
    case t:                                                                                  \
        if (out_f32)                                                                         \
            gemv_kernel<t, true><<<blocks, 32 * GEMV_WARPS, 0, stream>>>(out, xh, wh, bh,     \
                                                                         n_in, n_out);        \
        else                                                                                 \
            gemv_kernel<t, false><<<blocks, 32 * GEMV_WARPS, 0, stream>>>(out, xh, wh, bh,    \
                                                                          n_in, n_out);       \
        break;
    switch (T) {
        GEMV_LAUNCH(1)
        GEMV_LAUNCH(2)
        GEMV_LAUNCH(3)
        GEMV_LAUNCH(4)
        GEMV_LAUNCH(5)
        GEMV_LAUNCH(6)
        GEMV_LAUNCH(7)
        GEMV_LAUNCH(8)
    }
#undef GEMV_LAUNCH
    return cudaGetLastError();
}
#endif

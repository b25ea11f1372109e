// RMSNorm, two forms:
//  - on the residual stream (fp32), with the block's output added in front:
//      residual += add;  out = residual * rsqrt(mean(residual^2) + eps) * w
//    fused so the row is read once for the sum of squares and once more
//    (from L2) for the output: ~14 bytes moved and ~5 FLOPs per element.
//    The stream stays fp32 because fp16 overflows on models such as
//    Qwen2.5 and loses precision over many layers.
//  - in place on fp16 activations (the qwen3 per-head q/k norm).
// One thread block per row; sums of squares and scaling in fp32.
#include <cuda_fp16.h>

#include "kernels.h"
#include "pdl.cuh"

// Sum over the block, result in every thread.
__device__ float block_sum(float v, float *scratch)
{
    for (int off = 16; off > 0; off >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, off);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0)
        scratch[warp] = v;
    __syncthreads();
    if (warp == 0) {
        int n_warps = (blockDim.x + 31) >> 5;
        v = lane < n_warps ? scratch[lane] : 0.0f;
        for (int off = 16; off > 0; off >>= 1)
            v += __shfl_xor_sync(0xffffffffu, v, off);
        if (lane == 0)
            scratch[0] = v;
    }
    __syncthreads();
    return scratch[0];
}

// Values a thread keeps in registers: rows of up to RMS_CACHE * blockDim
// elements (8192 at 1024 threads) are read once, with the weights loaded
// before pdl_wait() (pdl.cuh: they overlap the previous kernel); longer
// rows take the two-pass loop. Both give the same bits.
#define RMS_CACHE 8

__global__ void rmsnorm_residual_kernel(__half *out, float *residual, const __half *add,
                                        const __half *w, int dim, float eps)
{
    __shared__ float scratch[32];
    size_t row = blockIdx.x;
    const int nt = blockDim.x, tid = threadIdx.x;
    const bool cached = dim <= RMS_CACHE * nt;
    float wv[RMS_CACHE];
    if (cached)
#pragma unroll
        for (int k = 0; k < RMS_CACHE; k++)
            wv[k] = tid + k * nt < dim ? __half2float(w[tid + k * nt]) : 0.0f;
    pdl_wait(); /* the row is the previous kernel's output */
    pdl_launch_dependents();
    float *r = residual + row * dim;
    const __half *a = add ? add + row * dim : nullptr;
    __half *o = out + row * dim;
    float ss = 0.0f;
    if (cached) {
        float xv[RMS_CACHE];
#pragma unroll
        for (int k = 0; k < RMS_CACHE; k++) {
            int i = tid + k * nt;
            xv[k] = 0.0f;
            if (i < dim) {
                float x = r[i];
                if (a) {
                    x += __half2float(a[i]);
                    r[i] = x;
                }
                xv[k] = x;
                ss += x * x;
            }
        }
        float inv = rsqrtf(block_sum(ss, scratch) / (float)dim + eps);
#pragma unroll
        for (int k = 0; k < RMS_CACHE; k++)
            if (tid + k * nt < dim)
                o[tid + k * nt] = __float2half(xv[k] * inv * wv[k]);
        return;
    }
    for (int i = tid; i < dim; i += nt) {
        float x = r[i];
        if (a) {
            x += __half2float(a[i]);
            r[i] = x;
        }
        ss += x * x;
    }
    float inv = rsqrtf(block_sum(ss, scratch) / (float)dim + eps);
    for (int i = tid; i < dim; i += nt)
        o[i] = __float2half(r[i] * inv * __half2float(w[i]));
}

__global__ void rmsnorm_rows_kernel(__half *x, const __half *w, int dim, float eps)
{
    __shared__ float scratch[32];
    pdl_wait();
    pdl_launch_dependents();
    __half *row = x + (size_t)blockIdx.x * dim;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        float v = __half2float(row[i]);
        ss += v * v;
    }
    float inv = rsqrtf(block_sum(ss, scratch) / (float)dim + eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
        row[i] = __float2half(__half2float(row[i]) * inv * __half2float(w[i]));
}

// residual[n] = x[n], fp16 -> fp32 (the embedding starts the stream).
__global__ void resid_load_kernel(float *residual, const __half *x, size_t n)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        residual[i] = __half2float(x[i]);
}

#ifndef __CUDACC_RTC__
static int threads_for(int dim)
{
    return dim >= 1024 ? 1024 : ((dim + 31) / 32) * 32;
}

extern "C" cudaError_t vb_rmsnorm_residual_f16(uint16_t *out, float *residual,
                                               const uint16_t *add, const uint16_t *w, int rows,
                                               int dim, float eps, cudaStream_t stream)
{
    if (rows == 0)
        return cudaSuccess;
    return vb_launch_pdl(rmsnorm_residual_kernel, dim3(rows), dim3(threads_for(dim)), 0, stream,
                         (__half *)out, residual, (const __half *)add, (const __half *)w, dim,
                         eps);
}

extern "C" cudaError_t vb_rmsnorm_rows_f16(uint16_t *x, const uint16_t *w, int rows, int dim,
                                           float eps, cudaStream_t stream)
{
    if (rows == 0)
        return cudaSuccess;
    return vb_launch_pdl(rmsnorm_rows_kernel, dim3(rows), dim3(threads_for(dim)), 0, stream,
                         (__half *)x, (const __half *)w, dim, eps);
}

extern "C" cudaError_t vb_resid_load_f16(float *residual, const uint16_t *x, size_t n,
                                         cudaStream_t stream)
{
    if (n == 0)
        return cudaSuccess;
    size_t blocks = (n + 255) / 256;
    resid_load_kernel<<<(unsigned)(blocks > 16384 ? 16384 : blocks), 256, 0, stream>>>(
        residual, (const __half *)x, n);
    return cudaGetLastError();
}
#endif

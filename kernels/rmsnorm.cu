// RMSNorm, two forms:
//  - on the residual stream (fp32), with the block's output added in front:
//      residual += add;  out = residual * rsqrt(mean(residual^2) + eps) * w
//    fused so the row is read once for the sum of squares and once more
//    (from L2) for the output: ~14 bytes moved and ~5 FLOPs per element.
//    The stream stays fp32 because fp16 overflows on models such as
//    Qwen2.5 and loses precision over many layers.
//  - in place on fp16 activations (the qwen3 per-head q/k norm).
// One thread block per row; sums of squares and scaling in fp32. Rows of
// the residual form go through 16-byte vectors where the dimension allows
// (rmsnorm_residual_vec_kernel), the others element by element.
#include <cuda_fp16.h>

#include "kernels.h"
#include "pdl.cuh"
#include "rmsnorm_vec.cuh"

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

// The residual form 4 elements a vector (the fp32 stream as float4, add,
// out and w as 4 halves): a prefill step's 8,192 rows of 3,584 ran at
// ~30 % of the copy bandwidth with a 1,024-thread block moving 2 and 4
// bytes a thread (258 us a call; the c workload's profile,
// tests/bench/RESULTS.md, session 13). Each thread keeps its up to
// RMS_VECS vectors in registers, so the row is read once; blocks of
// threads_for_vec() threads, 128 at 3,584 (7 vectors each). The sum of
// squares runs per thread in element order, then block_sum: a row's bits
// depend on the row and the dimension only, never on the row count
// (gemv_quant.cu's norm fold computes them too: rmsnorm_vec.cuh).
__global__ void rmsnorm_residual_vec_kernel(__half *out, float *residual, const __half *add,
                                            const __half *w, int dim, float eps)
{
    __shared__ float scratch[32];
    const size_t row = blockIdx.x;
    const int nt = blockDim.x, tid = threadIdx.x, nv = dim >> 2;
    float4 wv[RMS_VECS];
#pragma unroll
    for (int k = 0; k < RMS_VECS; k++) {
        int v = tid + k * nt;
        wv[k] = v < nv ? half4_to_float4(((const uint2 *)w)[v]) : make_float4(0, 0, 0, 0);
    }
    pdl_wait(); /* the row is the previous kernel's output */
    pdl_launch_dependents();
    float4 *r = (float4 *)(residual + row * dim);
    const uint2 *a = add ? (const uint2 *)(add + row * dim) : nullptr;
    uint2 *o = (uint2 *)(out + row * dim);
    float4 xv[RMS_VECS];
    float ss = 0.0f;
#pragma unroll
    for (int k = 0; k < RMS_VECS; k++) {
        int v = tid + k * nt;
        xv[k] = make_float4(0, 0, 0, 0);
        if (v < nv) {
            float4 x = r[v];
            if (a) {
                float4 d = half4_to_float4(a[v]);
                x.x += d.x;
                x.y += d.y;
                x.z += d.z;
                x.w += d.w;
                r[v] = x;
            }
            xv[k] = x;
            ss = rms_sumsq4(ss, x);
        }
    }
    float inv = rsqrtf(block_sum(ss, scratch) / (float)dim + eps);
#pragma unroll
    for (int k = 0; k < RMS_VECS; k++) {
        int v = tid + k * nt;
        if (v < nv)
            o[v] = rms_scale4(xv[k], inv, wv[k]);
    }
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

// Threads for the vector kernel: enough for RMS_VECS vectors each, whole
// warps; 0 when the row or the pointers do not take 16-byte vectors.
static int threads_for_vec(const void *out, const float *residual, const void *add,
                           const void *w, int dim)
{
    int nv = dim / 4;
    if (dim % 4 || nv > RMS_VECS * 1024 || (uintptr_t)residual % 16 || (uintptr_t)out % 8 ||
        (uintptr_t)add % 8 || (uintptr_t)w % 8)
        return 0;
    return ((nv + RMS_VECS - 1) / RMS_VECS + 31) / 32 * 32;
}

extern "C" int vb_rmsnorm_vec_threads(const uint16_t *out, const float *residual,
                                      const uint16_t *add, const uint16_t *w, int dim)
{
    return threads_for_vec(out, residual, add, w, dim);
}

extern "C" cudaError_t vb_rmsnorm_residual_f16(uint16_t *out, float *residual,
                                               const uint16_t *add, const uint16_t *w, int rows,
                                               int dim, float eps, cudaStream_t stream)
{
    if (rows == 0)
        return cudaSuccess;
    int vec_threads = threads_for_vec(out, residual, add, w, dim);
    if (vec_threads)
        return vb_launch_pdl(rmsnorm_residual_vec_kernel, dim3(rows), dim3(vec_threads), 0,
                             stream, (__half *)out, residual, (const __half *)add,
                             (const __half *)w, dim, eps);
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

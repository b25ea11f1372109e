// Residual add + RMSNorm, fused: one pass adds the block's output into the
// residual stream and sums squares, a second pass writes the normalised row.
//
// One thread block per row; the row is read twice (the second read hits L2
// for rows up to a few MB) and written once or twice: ~3-5 bytes moved per
// element per byte of activation, ~4 FLOPs per element. Sum of squares and
// scaling in fp32; the residual is rounded to fp16 before it is squared,
// as transformers does (it adds in the model dtype, then upcasts).
#include <cuda_fp16.h>

#include "kernels.h"

__global__ void rmsnorm_kernel(__half *out, __half *residual, const __half *add,
                               const __half *w, int dim, float eps)
{
    __shared__ float warp_sums[32];
    size_t row = blockIdx.x;
    __half *r = residual + row * dim;
    const __half *a = add ? add + row * dim : nullptr;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        __half x = r[i];
        if (a) {
            x = __float2half(__half2float(x) + __half2float(a[i]));
            r[i] = x;
        }
        float xf = __half2float(x);
        ss += xf * xf;
    }
    for (int off = 16; off > 0; off >>= 1)
        ss += __shfl_xor_sync(0xffffffffu, ss, off);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0)
        warp_sums[warp] = ss;
    __syncthreads();
    if (warp == 0) {
        int n_warps = (blockDim.x + 31) >> 5;
        ss = lane < n_warps ? warp_sums[lane] : 0.0f;
        for (int off = 16; off > 0; off >>= 1)
            ss += __shfl_xor_sync(0xffffffffu, ss, off);
        if (lane == 0)
            warp_sums[0] = ss;
    }
    __syncthreads();
    float inv = rsqrtf(warp_sums[0] / (float)dim + eps);
    __half *o = out + row * dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
        o[i] = __float2half(__half2float(r[i]) * inv * __half2float(w[i]));
}

#ifndef __CUDACC_RTC__
extern "C" cudaError_t vb_rmsnorm_f16(uint16_t *out, uint16_t *residual, const uint16_t *add,
                                      const uint16_t *w, int rows, int dim, float eps,
                                      cudaStream_t stream)
{
    if (rows == 0)
        return cudaSuccess;
    int threads = dim >= 1024 ? 1024 : ((dim + 31) / 32) * 32;
    rmsnorm_kernel<<<rows, threads, 0, stream>>>((__half *)out, (__half *)residual,
                                                 (const __half *)add, (const __half *)w, dim, eps);
    return cudaGetLastError();
}
#endif

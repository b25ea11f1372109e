// Weight conversion to fp16 on the device (bf16 and fp32 checkpoints).
//
// One thread per element in a grid-stride loop: a pure streaming pass
// (2-4 bytes read, 2 written per element, no FLOPs to speak of), so it runs
// at copy bandwidth. Out-of-range values are counted per thread, summed
// per warp with shuffles and added to one global counter by lane 0.
#include <cuda_fp16.h>

#include "kernels.h"

#define VB_HALF_MAX 65504.0f

__device__ __forceinline__ float load_as_float(const void *src, int dtype, size_t i)
{
    if (dtype == 1) { // VB_SRC_BF16: the top 16 bits of an fp32
        unsigned int b = ((const unsigned short *)src)[i];
        return __uint_as_float(b << 16);
    }
    return ((const float *)src)[i];
}

__global__ void convert_to_fp16_kernel(const void *src, int dtype, __half *dst, size_t n,
                                       unsigned long long *out_of_range)
{
    unsigned int clamped = 0;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        if (dtype == 0) { // VB_SRC_F16: a copy
            dst[i] = ((const __half *)src)[i];
            continue;
        }
        float v = load_as_float(src, dtype, i);
        // >= 65520 rounds to inf in fp16; clamp finite values instead.
        if (fabsf(v) >= 65520.0f && isfinite(v)) {
            v = copysignf(VB_HALF_MAX, v);
            clamped++;
        }
        dst[i] = __float2half_rn(v);
    }
    for (int off = 16; off > 0; off >>= 1)
        clamped += __shfl_down_sync(0xffffffffu, clamped, off);
    if ((threadIdx.x & 31) == 0 && clamped)
        atomicAdd(out_of_range, (unsigned long long)clamped);
}

#ifndef __CUDACC_RTC__
extern "C" cudaError_t vb_convert_to_fp16(const void *src, int src_dtype, uint16_t *dst,
                                          size_t n, unsigned long long *d_out_of_range,
                                          cudaStream_t stream)
{
    if (n == 0)
        return cudaSuccess;
    const int threads = 256;
    size_t blocks = (n + threads - 1) / threads;
    if (blocks > 16384) // grid-stride beyond this; enough blocks to fill any GPU
        blocks = 16384;
    convert_to_fp16_kernel<<<(unsigned)blocks, threads, 0, stream>>>(
        src, src_dtype, (__half *)dst, n, d_out_of_range);
    return cudaGetLastError();
}
#endif

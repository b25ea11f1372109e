// The pieces of rmsnorm.cu's vector form that a kernel computing the same
// norm elsewhere needs to give its bits (gemv_quant.cu's norm fold,
// qmma_common.cuh qmma_norm_x): the block sum, the 4-half conversions and
// how many vectors a thread takes.
#ifndef VB_RMSNORM_VEC_CUH
#define VB_RMSNORM_VEC_CUH

#include <cuda_fp16.h>

// Vectors of 4 elements a thread takes at most: rows of up to RMS_VECS *
// 4 * threads elements (vb_rmsnorm_vec_threads, kernels.h).
#define RMS_VECS 8

// Sum over the block, result in every thread: each warp's sum by a
// butterfly, then warp 0's over the warps' sums (lanes past the warps
// count 0). A block with more warps whose extra warps add 0.0 gets the
// same bits (sums of squares are never -0.0).
__device__ __forceinline__ float block_sum(float v, float *scratch)
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

__device__ __forceinline__ float4 half4_to_float4(uint2 h)
{
    float2 a = __half22float2(*(const __half2 *)&h.x), b = __half22float2(*(const __half2 *)&h.y);
    return make_float4(a.x, a.y, b.x, b.y);
}

__device__ __forceinline__ uint2 float4_to_half4(float4 f)
{
    __half2 a = __floats2half2_rn(f.x, f.y), b = __floats2half2_rn(f.z, f.w);
    return make_uint2(*(const unsigned *)&a, *(const unsigned *)&b);
}

// x * inv * w element by element, rounded to 4 halves: the vector form's
// output.
__device__ __forceinline__ uint2 rms_scale4(float4 x, float inv, float4 w)
{
    return float4_to_half4(
        make_float4(x.x * inv * w.x, x.y * inv * w.y, x.z * inv * w.z, x.w * inv * w.w));
}

// The sum of squares of one vector added to ss in element order.
__device__ __forceinline__ float rms_sumsq4(float ss, float4 x)
{
    ss += x.x * x.x;
    ss += x.y * x.y;
    ss += x.z * x.z;
    ss += x.w * x.w;
    return ss;
}

#endif

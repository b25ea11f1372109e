// The GEMV kernels' shared pieces (gemv.cu, gemv_qkv_rope.cu): 16-byte
// weight chunks of 8 halves against x rows, fp32 sums.
#ifndef VB_GEMV_COMMON_CUH
#define VB_GEMV_COMMON_CUH

#include <cuda_fp16.h>

// Picks member [s] of a 3-array in the parameter space without a dynamic
// index (which would copy the parameters to local memory).
#define SEG(a, s) ((s) == 0 ? (a)[0] : (s) == 1 ? (a)[1] : (a)[2])

// A 16-byte chunk of weights read once (read-only path, as __ldg) without
// allocating in L1: the weight stream passes through L1 otherwise and
// evicts x, which every warp reads again each step (ncu of the 4-bit GEMV:
// L1 hit rate 56 %, 45 % of its stalls waiting on L1TEX; RESULTS.md,
// session 32). sm_70+ (PTX ISA 7.4).
__device__ __forceinline__ uint4 ldg_stream(const uint4 *p)
{
    uint4 v;
    asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
        : "l"(p));
    return v;
}

__device__ __forceinline__ void unpack8(uint4 v, float2 f[4])
{
    const __half2 *h = (const __half2 *)&v;
#pragma unroll
    for (int j = 0; j < 4; j++)
        f[j] = __half22float2(h[j]);
}

__device__ __forceinline__ float dot8(const float2 a[4], const float2 b[4], float acc)
{
#pragma unroll
    for (int j = 0; j < 4; j++) {
        acc = fmaf(a[j].x, b[j].x, acc);
        acc = fmaf(a[j].y, b[j].y, acc);
    }
    return acc;
}

__device__ __forceinline__ float warp_sum(float v)
{
#pragma unroll
    for (int off = 16; off > 0; off >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

// acc[m][t] += weight chunk w[m] . x row t's chunk c, for the real rows.
template <int T, int NW>
__device__ __forceinline__ void gemv_chunk(float (&acc)[NW][T], const uint4 (&w)[NW],
                                           const uint4 *xr, int chunks, int c, int rows)
{
    float2 wf[NW][4];
#pragma unroll
    for (int m = 0; m < NW; m++)
        unpack8(w[m], wf[m]);
#pragma unroll
    for (int t = 0; t < T; t++) {
        if (t < rows) {
            float2 xf[4];
            unpack8(xr[(size_t)t * chunks + c], xf);
#pragma unroll
            for (int m = 0; m < NW; m++)
                acc[m][t] = dot8(wf[m], xf, acc[m][t]);
        }
    }
}

#endif

// RoPE's arithmetic in the rotate-half layout of Hugging Face, shared by
// rope_kv.cu and gemv_qkv_rope.cu so both round the same way.
#ifndef VB_ROPE_MATH_CUH
#define VB_ROPE_MATH_CUH

#include <cuda_fp16.h>

// The angle pos * inv_freq in fp32, as transformers computes it; cos and
// sin times scale (yarn's attention factor, 1 otherwise).
__device__ __forceinline__ void rope_cos_sin(int pos, float inv_freq, float scale, float *c,
                                             float *s)
{
    sincosf(__fmul_rn((float)pos, inv_freq), s, c);
    *c = __fmul_rn(*c, scale);
    *s = __fmul_rn(*s, scale);
}

// The pair (x[i], x[i + d/2]) rotated and rounded to fp16. The products
// and their fused multiply-add are spelled out: left to the compiler,
// f1 * c + f0 * s contracted to fma(f0, s, f1 * c) in rope_kv.cu and to
// fma(f1, c, f0 * s) in gemm_chain.cu's epilogue, one ulp apart, which
// broke --batch-invariant (prefill rotates in one, decode in the other).
__device__ __forceinline__ void rope_rotate(float c, float s, __half *x0, __half *x1)
{
    float f0 = __half2float(*x0), f1 = __half2float(*x1);
    *x0 = __float2half(__fmaf_rn(f0, c, -__fmul_rn(f1, s)));
    *x1 = __float2half(__fmaf_rn(f0, s, __fmul_rn(f1, c)));
}

#endif

// Packed 4-bit and 8-bit weights to fp16 pairs in registers, exactly, for
// the kernels of quantized projections (gemv_quant.cu's mma kernel: decode
// steps of up to 8 rows; quant_dequant.cu: the fp16 copy of larger steps'
// weights). The fp16 exponent trick:
// 0x6400 | v is the fp16 1024 + v for v < 1024, so one LOP3 makes two
// values and a subtract of 1024 + zero gives q - zero, every step exact
// (integers below 2048; zeros are integers in quantized units,
// src/model/quant_weights.h). fp16 pair arithmetic: sm_53 and newer.
//
// Also the GEMV's store: an output row to its segment (a few matrices of
// one input in one launch, vb_gemv_quant_segs_f16).
#ifndef VB_QMMA_DEQUANT_CUH
#define VB_QMMA_DEQUANT_CUH

#include <cuda_fp16.h>

#include "kernels.h"

// Output row o of x row t, v its fp32 sum: plus its bias, rounded, into
// its segment's output. Rows seg_end[s - 1] .. seg_end[s] - 1 go to out[s]
// [rows, their count] with bias[s] (or none); seg_end[last] = n_out and
// the entries past the last segment repeat it.
__device__ __forceinline__ void qmma_store_seg(__half *const (&out)[VB_QGEMV_MAX_SEGS],
                                               const __half *const (&bias)[VB_QGEMV_MAX_SEGS],
                                               const int (&seg_end)[VB_QGEMV_MAX_SEGS], int t,
                                               int o, float v)
{
    static_assert(VB_QGEMV_MAX_SEGS == 3, "qmma_store_seg picks among 3 segments");
    const int e0 = seg_end[0], e1 = seg_end[1];
    __half *dst;
    const __half *b;
    int r, n;
    if (o < e0) {
        dst = out[0], b = bias[0], r = o, n = e0;
    } else if (o < e1) {
        dst = out[1], b = bias[1], r = o - e0, n = e1 - e0;
    } else {
        dst = out[2], b = bias[2], r = o - e1, n = seg_end[2] - e1;
    }
    v += b ? __half2float(b[r]) : 0.0f;
    dst[(size_t)t * n + r] = __float2half(v);
}

__device__ __forceinline__ __half2 u32_as_half2(unsigned v)
{
    __half2 h;
    *(unsigned *)&h = v;
    return h;
}

__device__ __forceinline__ unsigned half2_as_u32(__half2 h)
{
    return *(unsigned *)&h;
}

// (v & MASK) | 0x64006400 in one LOP3: written as two C operators, ptxas
// emits an AND and an OR (it takes one immediate an instruction), four
// extra instructions a 32-bit word of nibbles, about a fifth of the GEMV's
// per-word work (gemv_quant.cu is bound by instruction issue). With the
// constant as PTX operands ptxas keeps 0x64006400 in a register and uses
// the three-input form. 0xEA is the truth table of (a & b) | c.
template <unsigned MASK>
__device__ __forceinline__ unsigned nibbles_as_1024_plus(unsigned v)
{
    unsigned r;
    asm("lop3.b32 %0, %1, %2, %3, 0xEA;\n" : "=r"(r) : "r"(v), "n"(MASK), "n"(0x64006400u));
    return r;
}

// One 4-bit word as four fp16 pairs q - zero: the nibbles at bits 0-3
// and 16-19, 4-7 and 20-23, 8-11 and 24-27, 12-15 and 28-31. In the GPU's
// interleaved order (kernels.h vb_qmat: column k at nibble (k >> 1) + 4
// (k & 1)) those are the columns (0, 1), (2, 3), (4, 5), (6, 7): the
// pairs of x's own 32-bit words. The mask puts a nibble in the low mantissa bits of 0x6400
// (1024): 1024 + q, minus sub = 1024 + zero. A nibble at bits 4-7 gives
// 1024 + 16 q: times 1/16 plus fma = -(64 + zero). Every step is exact in
// fp16 (integers below 2048).
__device__ __forceinline__ void dequant4_pairs(unsigned v, __half2 sub, __half2 fma,
                                               unsigned p[4])
{
    const __half2 sixteenth = u32_as_half2(0x2C002C00u);
    const unsigned hi = v >> 8;
    p[0] = half2_as_u32(__hsub2(u32_as_half2(nibbles_as_1024_plus<0x000F000Fu>(v)), sub));
    p[1] = half2_as_u32(
        __hfma2(u32_as_half2(nibbles_as_1024_plus<0x00F000F0u>(v)), sixteenth, fma));
    p[2] = half2_as_u32(__hsub2(u32_as_half2(nibbles_as_1024_plus<0x000F000Fu>(hi)), sub));
    p[3] = half2_as_u32(
        __hfma2(u32_as_half2(nibbles_as_1024_plus<0x00F000F0u>(hi)), sixteenth, fma));
}

// Bytes 2h and 2h+1 of an 8-bit word as the fp16 pair q - zero: the byte
// under 0x64 is 1024 + q; minus sub = 1024 + zero.
__device__ __forceinline__ unsigned dequant8_pair(unsigned v, int h, __half2 sub)
{
    return half2_as_u32(
        __hsub2(u32_as_half2(__byte_perm(v, 0x64646464u, h ? 0x4342u : 0x4140u)), sub));
}

#endif

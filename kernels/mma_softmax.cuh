// The online-softmax step the tensor-core attention kernels share
// (attention_prefill_mma.cu, attention_decode_mma.cu): one block of keys'
// scores, held as mma.sync m16n8k16 accumulators, folded into a running
// max, sum and output. Written once so both kernels round exactly alike;
// a prefill chunk and a decode step then differ only in which keys they
// visit together, the first piece of batch-invariant attention (#22).
//
// A lane holds two rows of the 16-row tile: g = lane / 4 and g + 8. Score
// tile n (8 keys) element e belongs to row g when e < 2, else g + 8; the
// quad of lanes sharing g holds the tile's 8 keys. Scores arrive scaled to
// log2 units (x log2(e) / sqrt(head_dim), a rounded multiply of its own in
// both kernels), -inf where masked.
#ifndef VB_MMA_SOFTMAX_CUH
#define VB_MMA_SOFTMAX_CUH

#include <cuda_fp16.h>

#define MMA_NEG_INF __int_as_float(0xff800000)

// 2^x with the SFU's ex2 and subnormal results flushed to zero: exp2f
// wraps the same instruction in a test and two multiplies a value to get
// subnormal results right (x < -126), three of every softmax element's
// ~8 instructions. Where the results go that makes no difference: P is
// rounded to fp16 (its smallest value is 2^-24), and a correction below
// 2^-126 scales what is then dwarfed by the new step's terms (the key of
// the new max contributes 1 x its value). On an H200 (session 23,
// bench_attention_prefill): the 64K case's steps 273.7 -> 285.0 TFLOP/s,
// the two prefill kernels still bit for bit alike. Tried beside
// it: skipping O's rescale when no row of the warp raises its max (a
// warp vote; exact, since the factor is then 1): 279.2, slower than
// without the skip (the 32-rows kernel spilled), so not kept.
__device__ __forceinline__ float mma_exp2(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

// Updates the rows' running max (m) and sum (l), rescales the NO output
// tiles o by exp2(m_old - m_new), and writes P = exp2(s - m_new), rounded
// to fp16, as the A operands of P V: pa[k] covers keys 16 k .. 16 k + 15
// (score tiles 2 k and 2 k + 1). The sums add the rounded values, so O is
// normalised by what P V actually summed. A row with no unmasked key yet
// keeps p = 0 and a zero correction.
template <int NT, int NO>
__device__ __forceinline__ void mma_softmax_step(float (&sc)[NT][4], float &m_lo, float &m_hi,
                                                 float &l_lo, float &l_hi, float (&o)[NO][4],
                                                 unsigned (&pa)[NT / 2][4])
{
    float mx_lo = MMA_NEG_INF, mx_hi = MMA_NEG_INF;
#pragma unroll
    for (int n = 0; n < NT; n++) {
        mx_lo = fmaxf(mx_lo, fmaxf(sc[n][0], sc[n][1]));
        mx_hi = fmaxf(mx_hi, fmaxf(sc[n][2], sc[n][3]));
    }
#pragma unroll
    for (int off = 1; off <= 2; off <<= 1) {
        mx_lo = fmaxf(mx_lo, __shfl_xor_sync(0xffffffffu, mx_lo, off));
        mx_hi = fmaxf(mx_hi, __shfl_xor_sync(0xffffffffu, mx_hi, off));
    }
    const float new_lo = fmaxf(m_lo, mx_lo), new_hi = fmaxf(m_hi, mx_hi);
    const float base_lo = new_lo == MMA_NEG_INF ? 0.0f : new_lo;
    const float base_hi = new_hi == MMA_NEG_INF ? 0.0f : new_hi;
    const float corr_lo = m_lo == MMA_NEG_INF ? 0.0f : mma_exp2(m_lo - new_lo);
    const float corr_hi = m_hi == MMA_NEG_INF ? 0.0f : mma_exp2(m_hi - new_hi);
    m_lo = new_lo;
    m_hi = new_hi;
    float sum_lo = 0.0f, sum_hi = 0.0f;
#pragma unroll
    for (int n = 0; n < NT; n++) {
        __half2 p01 =
            __floats2half2_rn(mma_exp2(sc[n][0] - base_lo), mma_exp2(sc[n][1] - base_lo));
        __half2 p23 =
            __floats2half2_rn(mma_exp2(sc[n][2] - base_hi), mma_exp2(sc[n][3] - base_hi));
        float2 f01 = __half22float2(p01), f23 = __half22float2(p23);
        sum_lo += f01.x + f01.y;
        sum_hi += f23.x + f23.y;
        // tile 2k -> registers 0 (row g) and 1 (row g + 8) of A fragment
        // k; tile 2k + 1 -> registers 2 and 3
        pa[n >> 1][(n & 1) * 2 + 0] = *(unsigned *)&p01;
        pa[n >> 1][(n & 1) * 2 + 1] = *(unsigned *)&p23;
    }
    l_lo = l_lo * corr_lo + sum_lo;
    l_hi = l_hi * corr_hi + sum_hi;
#pragma unroll
    for (int n = 0; n < NO; n++) {
        o[n][0] *= corr_lo;
        o[n][1] *= corr_lo;
        o[n][2] *= corr_hi;
        o[n][3] *= corr_hi;
    }
}

#endif

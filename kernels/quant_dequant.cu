// A weight-only quantized matrix (src/model/quant_weights.h's internal
// layout) dequantized to fp16 [n_out][n_in] in the checkpoint's column
// order: w[o][perm ? perm[j] : j] = (q[o][j] - zero[o][g]) * scale[o][g],
// g = g_idx ? g_idx[j] : j / group_size, computed in fp32 as the CPU
// backend does and rounded once (beyond +-65504: clamped).
//
// The CUDA backend's path for steps too large for gemv_quant.cu (prefill,
// big decode batches): dequantize one matrix into a scratch buffer, then
// the fp16 cuBLAS GEMM on it. Writing the columns back in checkpoint order
// (a scatter through perm for act order) lets the GEMM read x as it is,
// with no gathered copy of a prefill's activations. Costs a write and a
// read of the fp16 matrix per call; a fused dequantize + mma.sync GEMM
// measured slower at every step size it was built for (9-256 rows,
// tests/bench/RESULTS.md, session 22).
//
// Two kernels. The common layout (no perm, no g_idx, groups of whole
// 32-bit words: every AWQ, symmetric GPTQ and compressed-tensors checkpoint
// without act order) takes quant_dequant_words_kernel: a thread a few
// 32-bit words of packed weights (8 columns each at 4 bits, 4 at 8), loads
// first, one 16-byte (8-byte) store of fp16 values a word, a warp's stores
// contiguous; the values come from qmma_dequant.cuh's fp16 pairs (a few
// instructions a weight, not an fp32 conversion, multiply and clamp each).
// Every other layout takes quant_dequant_kernel: one thread per weight, a
// block row of 256 columns, the grid's y over the output rows (strided past
// 65535), byte loads and a scatter through perm.
//
// Both give each weight the same bits, and those of quant_dequant_rows
// (the CPU backend's) rounded once to fp16: q - zero is an exact integer
// below 2048 and the scale an fp16, so their fp32 product is exact and
// one rounding to fp16 is the fp16 multiply's rounding; the clamp to
// +-65504 maps that multiply's infinities as it maps the fp32 overflow.
// Both read q in either of vb_qmat's layouts (qmat_layout.h), walking
// the matrix in row order.
#include <cuda_fp16.h>

#include "kernels.h"
#include "qmat_layout.h"
#include "qmma_dequant.cuh"

// (v - zero) * scale in fp32, as the CPU backend, clamped to fp16's range
// and rounded once.
__device__ __forceinline__ __half dequant_one(unsigned v, __half zero, __half scale)
{
    float w = ((float)v - __half2float(zero)) * __half2float(scale);
    return __float2half_rn(fminf(fmaxf(w, -65504.0f), 65504.0f));
}

struct dequant_params {
    const unsigned char *q;
    const __half *scales, *zeros;
    const int *perm, *g_idx;
    __half *dst;
    int bits, n_out, n_in, group_size, n_groups;
    int blocked; /* q in row blocks (vb_qmat) */
};

// Byte b of row o of q (row_bytes a row) in q's layout.
__device__ __forceinline__ size_t q_byte(const dequant_params &p, int o, size_t row_bytes,
                                         size_t b)
{
    return qmat_chunk(o, (int)(b >> 4), (int)(row_bytes >> 4), p.blocked) * 16 + (b & 15);
}

__global__ void __launch_bounds__(256) quant_dequant_kernel(dequant_params p)
{
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= p.n_in)
        return;
    const size_t row_bytes = (size_t)p.n_in * p.bits / 8;
    const int g = p.g_idx ? p.g_idx[j] : j / p.group_size;
    const int col = p.perm ? p.perm[j] : j;
    for (int o = blockIdx.y; o < p.n_out; o += gridDim.y) {
        int v;
        if (p.bits == 8) {
            v = p.q[q_byte(p, o, row_bytes, j)];
        } else if (VB_Q4_INTERLEAVED(p.n_in)) {
            /* column k of its word at nibble (k >> 1) + 4 (k & 1) (kernels.h vb_qmat) */
            const int k = j & 7, at = (k >> 1) + 4 * (k & 1);
            v = (p.q[q_byte(p, o, row_bytes, (size_t)(j >> 3) * 4 + (at >> 1))] >> (4 * (at & 1))) &
                15;
        } else {
            v = (p.q[q_byte(p, o, row_bytes, j >> 1)] >> (4 * (j & 1))) & 15;
        }
        size_t at = (size_t)o * p.n_groups + g;
        p.dst[(size_t)o * p.n_in + col] = dequant_one((unsigned)v, p.zeros[at], p.scales[at]);
    }
}

// q - zero pairs (qmma_dequant.cuh) times the scale, clamped to fp16's
// finite range in dequant_one's order (max, then min: a NaN becomes
// -65504 in both).
__device__ __forceinline__ unsigned scale_clamp(unsigned pair, __half2 scale)
{
    const __half2 lim = __float2half2_rn(65504.0f);
    return half2_as_u32(__hmin2(__hmax2(__hmul2(u32_as_half2(pair), scale), __hneg2(lim)), lim));
}

// Word i of the matrix (8 columns at 4 bits, 4 at 8) is row i /
// words_per_row, columns from (i % words_per_row) * COLS, all in one group
// (in row order; in row blocks it lies elsewhere: qmat_chunk).
// A block takes QD_WORDS words a thread a pass, a warp's 32 consecutive
// words at a time (128 bytes read, 512 (256) bytes written a warp
// instruction, both coalesced); each thread issues its loads of the pass
// before its first store: the bytes in flight the copy bandwidth needs (a
// word a thread, load then store, read ~2.7 TB/s on an H200; one 16-byte
// load a thread made the stores 64 bytes apart between lanes and ran at
// 1.8). Grid-stride over the passes; the word count fits 32 bits (the
// launcher checks).
#define QD_THREADS 256
#define QD_WORDS 4
template <int BITS>
__global__ void __launch_bounds__(QD_THREADS) quant_dequant_words_kernel(dequant_params p)
{
    constexpr int COLS = 32 / BITS; /* columns a word */
    const unsigned words_per_row = (unsigned)(p.n_in / COLS);
    const unsigned n_words = words_per_row * (unsigned)p.n_out;
    const unsigned *q = (const unsigned *)p.q;
    for (unsigned base = blockIdx.x * QD_THREADS * QD_WORDS; base < n_words;
         base += gridDim.x * QD_THREADS * QD_WORDS) {
        unsigned word[QD_WORDS], row[QD_WORDS], col[QD_WORDS];
        __half zero[QD_WORDS], scale[QD_WORDS];
#pragma unroll
        for (int k = 0; k < QD_WORDS; k++) {
            const unsigned i = base + k * QD_THREADS + threadIdx.x;
            if (i < n_words) {
                row[k] = i / words_per_row;
                const unsigned w = i - row[k] * words_per_row; /* of its row */
                word[k] = __ldg(q + (p.blocked ? qmat_chunk((int)row[k], (int)(w >> 2),
                                                            (int)(words_per_row >> 2), 1) *
                                                         4 +
                                                     (w & 3)
                                               : i));
                col[k] = w * COLS;
                const size_t at = (size_t)row[k] * p.n_groups + col[k] / (unsigned)p.group_size;
                zero[k] = p.zeros[at];
                scale[k] = p.scales[at];
            }
        }
#pragma unroll
        for (int k = 0; k < QD_WORDS; k++) {
            if (base + k * QD_THREADS + threadIdx.x >= n_words)
                break;
            const __half k1024 = __ushort_as_half(0x6400), k64 = __ushort_as_half(0x5400);
            const __half2 sub = __half2half2(__hadd(zero[k], k1024)); /* 1024 + zero */
            const __half2 s2 = __half2half2(scale[k]);
            __half *d = p.dst + (size_t)row[k] * p.n_in + col[k];
            if (BITS == 4) {
                const __half2 fma = __half2half2(__hneg(__hadd(zero[k], k64))); /* -(64 + zero) */
                /* the interleaved word (kernels.h vb_qmat) gives the columns
                 * in order: (c0, c1), (c2, c3), (c4, c5), (c6, c7) */
                unsigned pr[4];
                dequant4_pairs(word[k], sub, fma, pr);
#pragma unroll
                for (int m = 0; m < 4; m++)
                    pr[m] = scale_clamp(pr[m], s2);
                *(uint4 *)d = make_uint4(pr[0], pr[1], pr[2], pr[3]);
            } else {
                *(uint2 *)d = make_uint2(scale_clamp(dequant8_pair(word[k], 0, sub), s2),
                                         scale_clamp(dequant8_pair(word[k], 1, sub), s2));
            }
        }
    }
}

#ifndef __CUDACC_RTC__
extern "C" cudaError_t vb_quant_dequant_f16(uint16_t *dst, const vb_qmat *w, cudaStream_t stream)
{
    if (!dst || !w || !w->q || !w->scales || !w->zeros || (w->bits != 4 && w->bits != 8) ||
        w->n_out <= 0 || w->n_in <= 0 || w->n_groups <= 0 ||
        (!w->g_idx && w->group_size <= 0) || (w->bits == 4 && w->n_in % 2))
        return cudaErrorInvalidValue;
    dequant_params p = {};
    p.q = w->q;
    p.scales = (const __half *)w->scales;
    p.zeros = (const __half *)w->zeros;
    p.perm = w->perm;
    p.g_idx = w->g_idx;
    p.dst = (__half *)dst;
    p.bits = w->bits;
    p.n_out = w->n_out;
    p.n_in = w->n_in;
    p.group_size = w->group_size;
    p.n_groups = w->n_groups;
    p.blocked = w->blocked;
    const int cols = 32 / w->bits; /* columns a word */
    const unsigned long long n_words = (unsigned long long)w->n_out * (w->n_in / cols);
    if (!w->perm && !w->g_idx && w->n_in % cols == 0 && w->group_size % cols == 0 &&
        n_words <= 0xffffffffull - 65536ull * QD_THREADS * QD_WORDS && (uintptr_t)w->q % 4 == 0 &&
        (uintptr_t)dst % 16 == 0) {
        /* a few waves of resident blocks, each looping */
        const unsigned long long blocks =
            (n_words + QD_THREADS * QD_WORDS - 1) / (QD_THREADS * QD_WORDS);
        const unsigned grid = (unsigned)(blocks < 65536 ? blocks : 65536);
        if (w->bits == 4)
            quant_dequant_words_kernel<4><<<grid, QD_THREADS, 0, stream>>>(p);
        else
            quant_dequant_words_kernel<8><<<grid, QD_THREADS, 0, stream>>>(p);
        return cudaGetLastError();
    }
    dim3 grid((unsigned)((w->n_in + 255) / 256), (unsigned)(w->n_out < 65535 ? w->n_out : 65535));
    quant_dequant_kernel<<<grid, 256, 0, stream>>>(p);
    return cudaGetLastError();
}
#endif

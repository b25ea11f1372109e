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
// read of the fp16 matrix per call, which a fused dequantize + mma kernel
// (issue #21's prefill kernel) will not.
//
// Two kernels. The common layout (no perm, no g_idx, groups of whole
// 32-bit words: every AWQ, symmetric GPTQ and compressed-tensors checkpoint
// without act order) takes quant_dequant_words_kernel: a thread a 32-bit
// word of packed weights (8 columns at 4 bits, 4 at 8), one scale and zero
// load for them, and one 16-byte (8-byte) store of their fp16 values, so a
// warp reads 128 contiguous bytes and writes 512 (256): the kernel is a
// copy at the bandwidth. Every other layout takes quant_dequant_kernel: one
// thread per weight, a block row of 256 columns, the grid's y over the
// output rows (strided past 65535), byte loads and a scatter through perm.
// Both compute each weight with dequant_one, so the two agree bit for bit
// (and with quant_dequant_rows, the CPU backend's).
#include <cuda_fp16.h>

#include "kernels.h"

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
};

__global__ void __launch_bounds__(256) quant_dequant_kernel(dequant_params p)
{
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= p.n_in)
        return;
    const size_t row_bytes = (size_t)p.n_in * p.bits / 8;
    const int g = p.g_idx ? p.g_idx[j] : j / p.group_size;
    const int col = p.perm ? p.perm[j] : j;
    for (int o = blockIdx.y; o < p.n_out; o += gridDim.y) {
        const unsigned char *qr = p.q + (size_t)o * row_bytes;
        int v = p.bits == 8 ? qr[j] : (qr[j >> 1] >> (4 * (j & 1))) & 15;
        size_t at = (size_t)o * p.n_groups + g;
        p.dst[(size_t)o * p.n_in + col] = dequant_one((unsigned)v, p.zeros[at], p.scales[at]);
    }
}

// A thread a word: word i of the matrix is row i / words_per_row, columns
// from (i % words_per_row) * (32 / BITS), all in one group. Grid-stride
// over the words; the word count fits 32 bits (the launcher checks).
template <int BITS>
__global__ void __launch_bounds__(256) quant_dequant_words_kernel(dequant_params p)
{
    constexpr int COLS = 32 / BITS; /* columns a word */
    const unsigned words_per_row = (unsigned)(p.n_in / COLS);
    const unsigned n_words = words_per_row * (unsigned)p.n_out;
    const unsigned *q = (const unsigned *)p.q;
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n_words;
         i += gridDim.x * blockDim.x) {
        const unsigned word = __ldg(q + i);
        const unsigned o = i / words_per_row, col = (i - o * words_per_row) * COLS;
        const size_t at = (size_t)o * p.n_groups + col / (unsigned)p.group_size;
        const __half zero = p.zeros[at], scale = p.scales[at];
        __align__(16) __half h[COLS];
#pragma unroll
        for (int k = 0; k < COLS; k++)
            h[k] = dequant_one((word >> (BITS * k)) & ((1u << BITS) - 1), zero, scale);
        __half *d = p.dst + (size_t)o * p.n_in + col;
        if (BITS == 4)
            *(uint4 *)d = *(const uint4 *)h;
        else
            *(uint2 *)d = *(const uint2 *)h;
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
    const int cols = 32 / w->bits; /* columns a word */
    const unsigned long long n_words = (unsigned long long)w->n_out * (w->n_in / cols);
    if (!w->perm && !w->g_idx && w->n_in % cols == 0 && w->group_size % cols == 0 &&
        n_words <= 0xffffffffull - 65536ull * 256 && (uintptr_t)w->q % 4 == 0 &&
        (uintptr_t)dst % 16 == 0) {
        /* a few waves of resident blocks, each looping */
        const unsigned long long blocks = (n_words + 255) / 256;
        const unsigned grid = (unsigned)(blocks < 65536 ? blocks : 65536);
        if (w->bits == 4)
            quant_dequant_words_kernel<4><<<grid, 256, 0, stream>>>(p);
        else
            quant_dequant_words_kernel<8><<<grid, 256, 0, stream>>>(p);
        return cudaGetLastError();
    }
    dim3 grid((unsigned)((w->n_in + 255) / 256), (unsigned)(w->n_out < 65535 ? w->n_out : 65535));
    quant_dequant_kernel<<<grid, 256, 0, stream>>>(p);
    return cudaGetLastError();
}
#endif

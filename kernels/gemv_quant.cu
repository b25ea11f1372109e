// Weight-only quantized projections of a few rows (decode steps of up to
// VB_QGEMV_MAX_ROWS sequences): out[t, o] = sum_j x[t, j] w[o, j] (+ bias[o])
// with w = (q - zero) * scale dequantized in registers, fp16 x, fp32
// accumulation, fp16 out. The weights are the internal layout of
// src/model/quant_weights.h (4-bit nibbles or 8-bit bytes, fp16 scale and
// zero per output row and group); x is already in the weight's internal
// column order (the caller gathers it through perm first).
//
// Like gemv.cu this is a pass over the weights and nothing else, so what
// counts is that each packed byte is read once, in 16-byte loads a warp
// reads 512 contiguous bytes of. One warp takes QGEMV_ROWS output rows:
// every lane loads the same 16-byte chunk (32 columns at 4 bits, 16 at 8)
// of each of its rows, so each x load (T rows of the chunk's columns, from
// L1/L2) serves all of them: a 4-bit chunk needs 4x its bytes of x, which
// one row per warp would have to load for every row.
//
// Dequantization is factored out of the inner loop where a chunk lies in
// one group (no g_idx and group_size a multiple of the chunk's columns):
// sum_j x_j (q_j - z) s = s (sum_j x_j q_j - z sum_j x_j), so a column costs
// one conversion and one FMA per row, and sum_j x_j is shared by the rows.
// Other layouts (g_idx, odd group sizes) take a per-column path: correct,
// slower, and rare (act order on a rank holding part of the input).
//
// Integers become floats through the exponent trick (0x4B000000 | v is the
// float 2^23 + v), two integer ops and an add, not I2F, which runs at a
// quarter of the FMA rate and would make 4-bit decode compute-bound.
//
// First figures (H200, 2026-12-02, T = 1, 7B shapes, group 128, against
// vb_gemv_f16 on the same shape): 4-bit 1.3-1.5x the fp16 GEMV on the
// 18944 x 3584 and 3584 x 18944 matrices (its packed bytes at 1.4-1.5
// TB/s), 1.0x on 3584 x 3584, 0.9x on 512 x 3584 (32 blocks for 132 SMs);
// 8-bit 1.0-1.45x. Short of issue #21's 2.5x: the kernel is bound by
// instruction issue and loads in flight, not by bandwidth. Next: a
// prefetch of the next chunk, several warps per row group for few-row
// matrices (gemv.cu's KS), half2 dequantization, PDL, fused q/k/v and
// gate/up.
#include <cuda_fp16.h>

#include "gemv_common.cuh"
#include "kernels.h"

#define QGEMV_WARPS 8 /* warps per block */
#define QGEMV_ROWS 2  /* output rows per warp */

struct qgemv_params {
    const __half *x;        /* [rows, n_in], internal column order */
    const uint4 *q;         /* [n_out][row_chunks] 16-byte chunks */
    const __half *scales, *zeros, *bias;
    const int *g_idx;       /* NULL or [n_in] */
    __half *out;            /* [rows, n_out] */
    int n_out, n_in, row_chunks, group_size, n_groups, rows;
    int uniform;            /* every chunk lies in one group: no g_idx, group_size % chunk == 0 */
};

// 2^23 + v as a float, minus 2^23: v exactly, for v < 2^23.
__device__ __forceinline__ float small_uint_to_float(unsigned v)
{
    return __int_as_float(0x4B000000u | v) - 8388608.0f;
}

__device__ __forceinline__ unsigned word_of(const uint4 &v, int i)
{
    return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

// Columns 8i .. 8i+7 of a 16-byte chunk as floats: 4-bit, word i, column
// 8i+k at bits 4k; 8-bit, words 2i and 2i+1, a byte a column.
template <int BITS>
__device__ __forceinline__ void unpack_cols8(const uint4 &v, int i, float f[8])
{
    if (BITS == 4) {
        unsigned w = word_of(v, i);
#pragma unroll
        for (int k = 0; k < 8; k++)
            f[k] = small_uint_to_float((w >> (4 * k)) & 15u);
    } else {
        unsigned lo = word_of(v, 2 * i), hi = word_of(v, 2 * i + 1);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            f[k] = small_uint_to_float((lo >> (8 * k)) & 255u);
            f[4 + k] = small_uint_to_float((hi >> (8 * k)) & 255u);
        }
    }
}

// T: x rows the kernel is unrolled for (1, 2, 4 or 8; p.rows <= T are real).
template <int T, int BITS>
__global__ void __launch_bounds__(32 * QGEMV_WARPS) gemv_quant_kernel(qgemv_params p)
{
    constexpr int CC = 128 / BITS; /* columns per 16-byte chunk */
    constexpr int XL = CC / 8;     /* 8-column pieces (16-byte x loads) per chunk */
    constexpr int R = QGEMV_ROWS;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int o0 = (blockIdx.x * QGEMV_WARPS + warp) * R;
    if (o0 >= p.n_out)
        return; /* whole warps leave: no shuffle waits on them */
    const uint4 *xr = (const uint4 *)p.x;
    const int x_chunks = p.n_in >> 3; /* 16-byte pieces of an x row */
    bool live[R];
#pragma unroll
    for (int r = 0; r < R; r++)
        live[r] = o0 + r < p.n_out;
    float acc[R][T];
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int t = 0; t < T; t++)
            acc[r][t] = 0.0f;

    for (int c = lane; c < p.row_chunks; c += 32) {
        uint4 wq[R];
#pragma unroll
        for (int r = 0; r < R; r++)
            wq[r] = live[r] ? __ldg(p.q + (size_t)(o0 + r) * p.row_chunks + c)
                            : make_uint4(0, 0, 0, 0);
        if (p.uniform) {
            const int g = c * CC / p.group_size;
            float s[R], z[R];
#pragma unroll
            for (int r = 0; r < R; r++) {
                size_t at = (size_t)(live[r] ? o0 + r : o0) * p.n_groups + g;
                s[r] = __half2float(p.scales[at]);
                z[r] = __half2float(p.zeros[at]);
            }
            float dot[R][T], sx[T];
#pragma unroll
            for (int t = 0; t < T; t++) {
                sx[t] = 0.0f;
#pragma unroll
                for (int r = 0; r < R; r++)
                    dot[r][t] = 0.0f;
            }
#pragma unroll
            for (int i = 0; i < XL; i++) {
                float wf[R][8];
#pragma unroll
                for (int r = 0; r < R; r++)
                    unpack_cols8<BITS>(wq[r], i, wf[r]);
#pragma unroll
                for (int t = 0; t < T; t++) {
                    if (t < p.rows) {
                        float2 xf[4];
                        unpack8(xr[(size_t)t * x_chunks + c * XL + i], xf);
#pragma unroll
                        for (int k = 0; k < 4; k++) {
                            sx[t] += xf[k].x + xf[k].y;
#pragma unroll
                            for (int r = 0; r < R; r++) {
                                dot[r][t] = fmaf(xf[k].x, wf[r][2 * k], dot[r][t]);
                                dot[r][t] = fmaf(xf[k].y, wf[r][2 * k + 1], dot[r][t]);
                            }
                        }
                    }
                }
            }
#pragma unroll
            for (int r = 0; r < R; r++)
#pragma unroll
                for (int t = 0; t < T; t++)
                    acc[r][t] = fmaf(s[r], dot[r][t] - z[r] * sx[t], acc[r][t]);
        } else {
#pragma unroll
            for (int i = 0; i < XL; i++) {
                float wf[R][8];
#pragma unroll
                for (int r = 0; r < R; r++)
                    unpack_cols8<BITS>(wq[r], i, wf[r]);
#pragma unroll
                for (int k = 0; k < 8; k++) {
                    const int j = c * CC + 8 * i + k;
                    const int g = p.g_idx ? __ldg(p.g_idx + j) : j / p.group_size;
#pragma unroll
                    for (int r = 0; r < R; r++) {
                        size_t at = (size_t)(live[r] ? o0 + r : o0) * p.n_groups + g;
                        wf[r][k] = (wf[r][k] - __half2float(p.zeros[at])) *
                                   __half2float(p.scales[at]);
                    }
                }
#pragma unroll
                for (int t = 0; t < T; t++) {
                    if (t < p.rows) {
                        float2 xf[4];
                        unpack8(xr[(size_t)t * x_chunks + c * XL + i], xf);
#pragma unroll
                        for (int k = 0; k < 4; k++)
#pragma unroll
                            for (int r = 0; r < R; r++) {
                                acc[r][t] = fmaf(xf[k].x, wf[r][2 * k], acc[r][t]);
                                acc[r][t] = fmaf(xf[k].y, wf[r][2 * k + 1], acc[r][t]);
                            }
                    }
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int t = 0; t < T; t++) {
            float v = warp_sum(acc[r][t]);
            if (lane == 0 && live[r] && t < p.rows) {
                const int o = o0 + r;
                v += p.bias ? __half2float(p.bias[o]) : 0.0f;
                p.out[(size_t)t * p.n_out + o] = __float2half(v);
            }
        }
}

#define QGEMV_INSTANTIATE(T)                                                                  \
    template __global__ void gemv_quant_kernel<T, 4>(qgemv_params);                           \
    template __global__ void gemv_quant_kernel<T, 8>(qgemv_params);
QGEMV_INSTANTIATE(1)
QGEMV_INSTANTIATE(2)
QGEMV_INSTANTIATE(4)
QGEMV_INSTANTIATE(8)

#ifndef __CUDACC_RTC__
extern "C" bool vb_gemv_quant_supported(int T, int bits, int n_in, const void *x, const void *q)
{
    const int cc = bits == 4 ? 32 : 16; /* columns per 16-byte chunk */
    return T >= 1 && T <= VB_QGEMV_MAX_ROWS && (bits == 4 || bits == 8) && n_in > 0 &&
           n_in % cc == 0 && ((uintptr_t)x & 15) == 0 && ((uintptr_t)q & 15) == 0;
}

template <int T>
static cudaError_t launch_t(const qgemv_params &p, int bits, cudaStream_t stream)
{
    const int rows_per_block = QGEMV_WARPS * QGEMV_ROWS;
    dim3 grid((unsigned)((p.n_out + rows_per_block - 1) / rows_per_block));
    if (bits == 4)
        gemv_quant_kernel<T, 4><<<grid, 32 * QGEMV_WARPS, 0, stream>>>(p);
    else
        gemv_quant_kernel<T, 8><<<grid, 32 * QGEMV_WARPS, 0, stream>>>(p);
    return cudaGetLastError();
}

extern "C" cudaError_t vb_gemv_quant_f16(uint16_t *out, const uint16_t *x, const vb_qmat *w,
                                         const uint16_t *bias, int T, cudaStream_t stream)
{
    if (!out || !x || !w || !w->q || !w->scales || !w->zeros || w->n_out <= 0 ||
        w->n_groups <= 0 || (!w->g_idx && w->group_size <= 0) ||
        !vb_gemv_quant_supported(T, w->bits, w->n_in, x, w->q))
        return cudaErrorInvalidValue;
    const int cc = w->bits == 4 ? 32 : 16;
    qgemv_params p = {};
    p.x = (const __half *)x;
    p.q = (const uint4 *)w->q;
    p.scales = (const __half *)w->scales;
    p.zeros = (const __half *)w->zeros;
    p.bias = (const __half *)bias;
    p.g_idx = w->g_idx;
    p.out = (__half *)out;
    p.n_out = w->n_out;
    p.n_in = w->n_in;
    p.row_chunks = w->n_in / cc;
    p.group_size = w->group_size;
    p.n_groups = w->n_groups;
    p.rows = T;
    p.uniform = !w->g_idx && w->group_size % cc == 0;
    if (T == 1)
        return launch_t<1>(p, w->bits, stream);
    if (T == 2)
        return launch_t<2>(p, w->bits, stream);
    if (T <= 4)
        return launch_t<4>(p, w->bits, stream);
    return launch_t<8>(p, w->bits, stream);
}
#endif

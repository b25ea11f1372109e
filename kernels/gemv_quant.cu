// Weight-only quantized projections of a few rows (decode steps of up to
// VB_QGEMV_MAX_ROWS sequences): out[t, o] = sum_j x[t, j] w[o, j] (+ bias[o])
// with w = (q - zero) * scale dequantized in registers, fp16 x, fp32
// accumulation, fp16 out. The weights are the internal layout of
// src/model/quant_weights.h (4-bit nibbles or 8-bit bytes, fp16 scale and
// zero per output row and group); x is already in the weight's internal
// column order (the caller gathers it through perm first).
//
// Like gemv.cu this is a pass over the weights and nothing else, so what
// counts is that each packed byte is read once, in 16-byte loads, with
// enough of them in flight. Two kernels here (a third, the mma kernel
// with its weights through shared memory, in gemv_quant_ring.cu; what the
// two tensor-core kernels share, in qmma_common.cuh):
//
// gemv_quant_mma_kernel (sm_80 and newer; no g_idx, n_in a multiple of a
// step of a row, 512 / bits columns = 64 bytes, and groups of whole steps
// (group 128 and per channel, the common checkpoints) or 2 or 4 whole
// groups in a step (groups of 64 or 32 columns at 4 bits, 32 or 16 at 8:
// the step's mma runs once a group, see qmma_step)). The SIMT kernel (below)
// is bound by instruction issue: a 4-bit column costs a conversion (three
// integer/float ops) and an FMA per x row, more instructions per 16-byte
// chunk than an SM can issue at its share of the copy bandwidth (~16 bytes
// a cycle on an H200: 4.2 TB/s over 132 SMs at ~2 GHz). Here the tensor
// cores do the multiply-add: a warp takes 16 output rows (the mma's M),
// x's up to 8 rows are the N = 8 columns (lanes past the step's rows load
// x row 0, whose products reach only outputs never stored), and a step is
// one 16-byte chunk of each of a lane's two rows (4 lanes read a row's 64
// contiguous bytes; the warp 1 KB a step, which the upload stores as two
// 512-byte runs where it takes row blocks: qmat_layout.h, the 4-bit
// kernel's ceiling in row order). At T <= 2 each block first
// copies x (up to QMMA_X_SHARED_MAX bytes: every 7B matrix at T = 1) into
// shared memory after the PDL wait and reads a step's x fragments there:
// read from global memory they hit L1 only ~56 % of the time (the weight
// stream evicting them) and their waits were 45 % of the warps' stalls
// (ncu, RESULTS.md session 32); with the weights streaming past L1 too
// (ldg_stream) a 7B 4-bit layer at T = 1 went 67.1 -> 65.6 -> 62.2 µs on
// an H100 (session 33).
// The nibbles (bytes) become fp16 (q - zero) exactly through the fp16
// exponent trick (0x6400 | v is 1024 + v: one LOP3 per two values, then a
// subtract of 1024 + zero), and the mma's k order is permuted so that a
// lane's A registers are its own chunk's values and its B registers are
// x's matching columns: at 4 bits the nibbles are stored interleaved
// (kernels.h vb_qmat, made at upload by quant_interleave.cu) so that those
// columns are x's own 32-bit words, no byte permutes (16 a step of ~165
// instructions before, in a kernel bound by instruction issue). The products
// (q - zero) * x are exact and summed in fp32 by the mma; the group's scale
// multiplies the step's fp32 sums: the same result as the SIMT kernel up to
// fp32 rounding order. Needs zeros that are integers (quant_weights.h: in
// quantized units, 0 .. 2^bits), so that 1024 + zero is exact in fp16.
// Matrices of few output rows (3584 rows are 224 16-row tiles) split each
// tile's steps over KS warps of a block, summed in warp order through
// shared memory, as gemv.cu's KS; the launcher takes KS = 12 (blocks of
// 12 warps) for matrices of at most 2 tiles an SM, the blocks resident at
// once (session 34; before, 4 an SM: the 7B q/k/v too) and KS = 8 otherwise,
// the fastest or level with the fastest on every 7B matrix at T = 1
// (bench_gemv_quant's sweep, H200, 2026-12-03: down 4-bit 21.2 us at KS
// 12 against 23.5 at 8, 8-bit 26.6 against 34.4; gate/up 36.0 at KS 8
// against 40.0 at 12), or 4 where those still fill the SMs' waves (the
// knob VB_QGEMV_KS_BALANCE, on by default): a tile's end costs each warp its parts' sum through
// shared memory, two barriers and the epilogue, so the joined 7B gate/up
// of a decode step (2,368 tiles, 2.99 waves at KS 4) ends a tile every 7
// steps instead of 3.5 (a1 AWQ 2.21 -> 2.14 ms on an H100, session 46; the
// bench's separate gate and up launches, 1,184 tiles, stay at 8: 1.5
// waves at 4 were slower in its sweep). Each lane loads U steps of weights (and their scales
// and zeros) ahead of the U it computes, the first U before the PDL wait
// (pdl.cuh), as gemv.cu does: U = 2, or 4 where the grid leaves SMs room
// for only 2 blocks anyway (see launch_mma), which the sweep confirmed.
// The grid is the blocks the SMs hold, each looping over its tiles with
// its loads running ahead into the next tile (see the kernel). For long
// rows (qgemv_tiles.h) the loaders give a matrix a tiled copy of
// its scales and zeros (vb_qgemv_make_sz_tiles), so that a lane's step
// reads its two rows' scale and zero pairs in one 8-byte load, not four
// 2-byte ones and their address arithmetic (TILED: 1,120 -> 912 SASS
// instructions in the 4-bit KS 8 kernel; same values, same bits).
// At T = 1 the SIMT kernel is faster for groups smaller than a step (4-bit
// group 32: 97 us a 7B layer against 137), so the entry point takes it
// there; everywhere else the mma kernel (its cost hardly grows with T, the
// SIMT kernel's does; 8-bit at T = 1: a 7B layer 94 us against 102 since
// the blocks loop, session 21).
//
// gemv_quant_kernel (SIMT; every layout the entry point takes, and sm_70):
// one warp takes QGEMV_ROWS output rows: every lane loads the same 16-byte
// chunk (32 columns at 4 bits, 16 at 8) of each of its rows, so each x
// load (T rows of the chunk's columns, from L1/L2) serves all of them;
// each lane loads its next chunk while it computes one, the first before
// the PDL wait. Where a chunk lies in one group (no g_idx and group_size a multiple of
// the chunk's columns) dequantization is factored out of the inner loop:
// sum_j x_j (q_j - z) s = s (sum_j x_j q_j - z sum_j x_j), one conversion
// and one FMA per column and row; other layouts (g_idx, odd group sizes)
// dequantize each column first (correct, slower, and rare: act order on a
// rank holding part of the input). Integers become floats through the
// exponent trick (0x4B000000 | v is the float 2^23 + v) rather than I2F,
// which runs at a quarter of the FMA rate.
//
// The SIMT kernel's figures before the mma kernel (H200, 2026-12-02, T =
// 1, 7B shapes, group 128, against vb_gemv_f16 on the same shape): 4-bit
// 1.3-1.5x the fp16 GEMV on the 18944 x 3584 and 3584 x 18944 matrices
// (packed bytes at 1.4-1.5 TB/s), 1.0x on 3584 x 3584, 0.9x on 512 x 3584;
// 8-bit 1.0-1.45x. Both kernels side by side: tests/bench/bench_gemv_quant.c,
// figures in tests/bench/RESULTS.md (a 7B layer at T = 1, 4-bit group 128:
// 1.7x the fp16 GEMV with the mma kernel, 1.4x with the SIMT one; 1.76x
// with its blocks looping, session 20).
#include <cuda_fp16.h>

#include "kernels.h"
#include "pdl.cuh"
#include "qmma_common.cuh"
#ifndef __CUDACC_RTC__ /* host parts (NVRTC: no stdint.h) */
#include <limits.h> /* LONG_MAX */

#include "qgemv_tiles.h" /* the host's rule of which matrices take tiles */
#endif

#define QGEMV_WARPS 8 /* warps per block */
#define QGEMV_ROWS 2  /* output rows per warp */
// Steps (16 bytes of each of a lane's two rows) a lane loads ahead of the
// ones it computes, by default: 2 keeps 2 x 2 x 2 chunks (128 bytes) a lane
// in flight at 80 registers (3 blocks an SM); the launcher takes 4 (128
// registers, 2 blocks) where a third block would not be resident anyway.
#define QMMA_UNROLL 2

// 2^23 + v as a float, minus 2^23: v exactly, for v < 2^23.
__device__ __forceinline__ float small_uint_to_float(unsigned v)
{
    return __int_as_float(0x4B000000u | v) - 8388608.0f;
}

// Columns 8i .. 8i+7 of a 16-byte chunk as floats: 4-bit, word i, column
// 8i+k at nibble (k >> 1) + 4 (k & 1) (kernels.h vb_qmat's interleaved
// order); 8-bit, words 2i and 2i+1, a byte a column.
template <int BITS>
__device__ __forceinline__ void unpack_cols8(const uint4 &v, int i, float f[8])
{
    if (BITS == 4) {
        unsigned w = word_of(v, i);
#pragma unroll
        for (int k = 0; k < 8; k++)
            f[k] = small_uint_to_float((w >> (4 * ((k >> 1) + 4 * (k & 1)))) & 15u);
    } else {
        unsigned lo = word_of(v, 2 * i), hi = word_of(v, 2 * i + 1);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            f[k] = small_uint_to_float((lo >> (8 * k)) & 255u);
            f[4 + k] = small_uint_to_float((hi >> (8 * k)) & 255u);
        }
    }
}

// T: x rows the kernel is unrolled for (1, 2, 4 or 8; p.rows <= T are
// real). UNI: every chunk lies in one group (no g_idx, group_size a
// multiple of the chunk's columns): the zero and scale are applied once a
// chunk; otherwise each column is dequantized before its products. Both
// sum a chunk's products into dot, then add it to acc.
template <int T, int BITS, bool UNI>
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
    // the first chunk's weights before the wait on the previous kernel
    // (pdl.cuh), then each next chunk's while this one is computed
    uint4 next[R];
#pragma unroll
    for (int r = 0; r < R; r++)
        next[r] = live[r] && lane < p.row_chunks
                      ? __ldg(p.q + qmat_chunk(o0 + r, lane, p.row_chunks, p.blocked))
                      : make_uint4(0, 0, 0, 0);
    pdl_wait(); /* x is the previous kernel's output */
    pdl_launch_dependents();
    float acc[R][T];
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int t = 0; t < T; t++)
            acc[r][t] = 0.0f;

    for (int c = lane; c < p.row_chunks; c += 32) {
        uint4 wq[R];
#pragma unroll
        for (int r = 0; r < R; r++) {
            wq[r] = next[r];
            next[r] = live[r] && c + 32 < p.row_chunks
                          ? __ldg(p.q + qmat_chunk(o0 + r, c + 32, p.row_chunks, p.blocked))
                          : make_uint4(0, 0, 0, 0);
        }
        float s[R] = {}, z[R] = {};
        if (UNI) {
            const int g = c * CC / p.group_size;
#pragma unroll
            for (int r = 0; r < R; r++) {
                size_t at = (size_t)(live[r] ? o0 + r : o0) * p.n_groups + g;
                s[r] = __half2float(p.scales[at]);
                z[r] = __half2float(p.zeros[at]);
            }
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
            if (!UNI) {
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
            }
#pragma unroll
            for (int t = 0; t < T; t++) {
                if (t < p.rows) {
                    float2 xf[4];
                    unpack8(xr[(size_t)t * x_chunks + c * XL + i], xf);
#pragma unroll
                    for (int k = 0; k < 4; k++) {
                        if (UNI)
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
                acc[r][t] = UNI ? fmaf(s[r], dot[r][t] - z[r] * sx[t], acc[r][t])
                                : acc[r][t] + dot[r][t];
    }
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int t = 0; t < T; t++) {
            float v = warp_sum(acc[r][t]);
            if (lane == 0 && live[r] && t < p.rows)
                qgemv_store(p, t, o0 + r, v);
        }
}

#define QGEMV_INSTANTIATE(T)                                                                  \
    template __global__ void gemv_quant_kernel<T, 4, true>(qgemv_params);                     \
    template __global__ void gemv_quant_kernel<T, 8, true>(qgemv_params);                     \
    template __global__ void gemv_quant_kernel<T, 4, false>(qgemv_params);                    \
    template __global__ void gemv_quant_kernel<T, 8, false>(qgemv_params);
QGEMV_INSTANTIATE(1)
QGEMV_INSTANTIATE(2)
QGEMV_INSTANTIATE(4)
QGEMV_INSTANTIATE(8)

// BITS: 4 or 8; KS: warps per 16-row tile (1, 2, 4, 8 or 12), warp part k of a
// tile taking steps k, k + KS, ...; U: steps loaded ahead (QMMA_UNROLL);
// GPS: groups a step (qmma_step). Any p.rows <= 8 (x rows are the mma's
// N). At least 3 blocks an SM at U = 2 (80 registers, no spills; the
// compiler's own pick was 93, 2 blocks), 2 at U = 4; one block fewer with
// GPS > 1 (its scales spill otherwise). U = 1 (KS 8 and 12 only;
// vb_gemv_quant_unroll) asks for 4 blocks of 8 warps an SM: a third more
// warps to hide the step's dependent chain, each with half the loads in
// flight; slower or level on every 7B matrix on an H100 (RESULTS.md,
// session 35), so the launcher never takes it. A warp sums its steps in
// the same order at every U, so U does not change the bits. Launched only on sm_80+ for the
// layouts vb_gemv_quant_f16 checks (see the header); compiles to a trap
// on sm_70. Blocks of QMMA_WARPS warps, or of 12 at KS 12 (a tile a
// block; two blocks an SM at U = 2: more warps on each tile of a matrix
// of few rows and long ones, as down's 224 tiles of 18,944 columns).
//
// A block takes QMMA_WARPS / KS tiles at a time, then the tiles gridDim.x
// blocks further on, until none is left: the launcher gives it as many
// blocks as are resident, and a warp's last loads of a tile are already
// the next tile's first U steps, so its loads stay in flight across its
// tiles. A block a tile had left each block's start with nothing in
// flight: at 4 bits a 16-row tile of a 3,584-column matrix is 28 KB, 3.5
// steps a warp at KS = 8 (gate / up: 1,184 blocks, three waves).
template <int BITS, int KS, int U, int GPS, bool TILED, int PAIR>
__global__ void __launch_bounds__(32 * QMMA_BLOCK_WARPS(KS),
                                  KS > QMMA_WARPS ? 2 - (U >= 4 || GPS > 1)
                                                  : (U >= 4 ? 2 : U == 1 ? 4 : 3) - (GPS > 1))
    gemv_quant_mma_kernel(qgemv_params p)
{
    static_assert(PAIR == PAIR_NONE || (!TILED && GPS == 1), "paired rows: plain scales, 1 group");
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    constexpr int SC = 512 / BITS;          /* columns a step: 4 lanes x 16 bytes */
    constexpr int TPB = QMMA_BLOCK_WARPS(KS) / KS; /* tiles a block takes at a time */
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, part = warp % KS;
    const int g = lane >> 2, c = lane & 3;
    const int n_tiles = (p.n_out + 15) / 16, stride = (int)gridDim.x * TPB;
    const int steps = p.n_in / SC;
    /* x row g (row 0 where g >= rows: see qmma_step), this lane's quarter
     * of each step: SC / 4 columns, SC / 32 loads */
    const int xrow = g < p.rows ? g : 0;
    const uint4 *xr = (const uint4 *)p.x + (size_t)xrow * (p.n_in >> 3) + c * (SC / 32);
    /* x_shared: the block copies x's rows into shared memory after the
     * wait and reads its steps there (through a generic pointer: one
     * kernel for both, the loads' latency that of shared memory) */
    extern __shared__ uint4 s_x[];
    if (p.x_shared)
        xr = s_x + (size_t)xrow * (p.n_in >> 3) + c * (SC / 32);
    /* this warp's tile: its rows g and g + 8 (rows past n_out read the
     * last row: in bounds, never written) and its steps, 0 past the last
     * tile (warp-uniform: the mma needs all lanes) */
    int tile = (int)blockIdx.x * TPB + warp / KS;
    qmma_rows cur = qmma_rows_at<TILED, PAIR>(p, tile, g, c);
    int my_steps = tile < n_tiles ? steps : 0;

    uint4 wa[U], wb[U];
    __half2 scale[U][GPS], zero[U];
#pragma unroll
    for (int u = 0; u < U; u++)
        qmma_fetch<GPS, TILED>(p, cur, part + KS * u, my_steps, c, wa[u], wb[u], scale[u],
                               zero[u]);
    qmma_wait_copy_x(p, s_x);
    for (int base = (int)blockIdx.x * TPB; base < n_tiles; base += stride) { // block-uniform
        const int next = tile + stride;
        const int next_steps = next < n_tiles ? steps : 0;
        float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        for (int s = part; s < my_steps; s += KS * U) {
            /* the tile's last loop: the loads ahead are the next tile's first */
            const bool last = s + KS * U >= my_steps;
            uint4 na[U], nb[U];
            __half2 nscale[U][GPS], nzero[U];
            if (last) { // warp-uniform, once a tile
                const qmma_rows nr = qmma_rows_at<TILED, PAIR>(p, next, g, c);
#pragma unroll
                for (int u = 0; u < U; u++)
                    qmma_fetch<GPS, TILED>(p, nr, part + KS * u, next_steps, c, na[u], nb[u],
                                           nscale[u], nzero[u]);
            } else {
#pragma unroll
                for (int u = 0; u < U; u++)
                    qmma_fetch<GPS, TILED>(p, cur, s + KS * (U + u), my_steps, c, na[u], nb[u],
                                           nscale[u], nzero[u]);
            }
#pragma unroll
            for (int u = 0; u < U; u++)
                if (s + KS * u < my_steps)
                    qmma_step<BITS, GPS>(acc, wa[u], wb[u], scale[u], zero[u],
                                         xr + (size_t)(s + KS * u) * (SC / 8), c);
#pragma unroll
            for (int u = 0; u < U; u++) {
                wa[u] = na[u];
                wb[u] = nb[u];
#pragma unroll
                for (int j = 0; j < GPS; j++)
                    scale[u][j] = nscale[u][j];
                zero[u] = nzero[u];
            }
        }
        qmma_tile_finish<KS, PAIR>(p, acc, warp, lane, part, tile, my_steps);
        tile = next;
        cur = qmma_rows_at<TILED, PAIR>(p, next, g, c);
        my_steps = next_steps;
    }
#else
    __trap(); /* never launched below sm_80 (qmma_available) */
#endif
}

#define QMMA_INSTANTIATE_P(KS, U, GPS, TILED, PAIR)                                           \
    template __global__ void gemv_quant_mma_kernel<4, KS, U, GPS, TILED, PAIR>(qgemv_params); \
    template __global__ void gemv_quant_mma_kernel<8, KS, U, GPS, TILED, PAIR>(qgemv_params);
#define QMMA_INSTANTIATE_G(KS, U, GPS, TILED) QMMA_INSTANTIATE_P(KS, U, GPS, TILED, PAIR_NONE)
#define QMMA_INSTANTIATE_U(KS, U)                                                             \
    QMMA_INSTANTIATE_G(KS, U, 1, false) QMMA_INSTANTIATE_G(KS, U, 1, true)                    \
    QMMA_INSTANTIATE_G(KS, U, 2, false) QMMA_INSTANTIATE_G(KS, U, 4, false)
#define QMMA_INSTANTIATE(U)                                                                   \
    QMMA_INSTANTIATE_U(1, U) QMMA_INSTANTIATE_U(2, U) QMMA_INSTANTIATE_U(4, U)               \
        QMMA_INSTANTIATE_U(8, U) QMMA_INSTANTIATE_U(12, U)
QMMA_INSTANTIATE(2)
QMMA_INSTANTIATE(4)
QMMA_INSTANTIATE_U(8, 1) /* U = 1: KS 8 and 12 only */
QMMA_INSTANTIATE_U(12, 1)
/* paired rows: the KS the launcher picks (4 at U 2 and 4, 8, 12), one
 * group a step or more */
#define QMMA_INSTANTIATE_PAIRS(PAIR)                                                          \
    QMMA_INSTANTIATE_P(8, 2, 1, false, PAIR) QMMA_INSTANTIATE_P(12, 2, 1, false, PAIR)        \
        QMMA_INSTANTIATE_P(8, 4, 1, false, PAIR) QMMA_INSTANTIATE_P(12, 4, 1, false, PAIR)   \
            QMMA_INSTANTIATE_P(8, 1, 1, false, PAIR) QMMA_INSTANTIATE_P(12, 1, 1, false, PAIR) \
                QMMA_INSTANTIATE_P(4, 2, 1, false, PAIR) QMMA_INSTANTIATE_P(4, 4, 1, false, PAIR)
QMMA_INSTANTIATE_PAIRS(PAIR_SILU)
QMMA_INSTANTIATE_PAIRS(PAIR_ROPE)

// sz_tiles entry (tile, group, g) = {scale of row 16 tile + g, of row +
// 8; zero of row 16 tile + g, of row + 8} as two half2 (rows past n_out:
// the last row's, as qmma_rows_at reads them), at (tile * n_groups +
// group) * 8 + g: a warp's lanes of one step read 64 contiguous bytes.
__global__ void qgemv_sz_tiles_kernel(uint2 *dst, const __half *scales, const __half *zeros,
                                      int n_out, int n_groups, long entries)
{
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < entries;
         i += (long)gridDim.x * blockDim.x) {
        const int g = (int)(i & 7);
        const long tg = i >> 3;
        const int tile = (int)(tg / n_groups), grp = (int)(tg % n_groups);
        const int ra = min(tile * 16 + g, n_out - 1), rb = min(tile * 16 + g + 8, n_out - 1);
        const size_t a = (size_t)ra * n_groups + grp, b = (size_t)rb * n_groups + grp;
        dst[i] = make_uint2(half2_as_u32(__halves2half2(scales[a], scales[b])),
                            half2_as_u32(__halves2half2(zeros[a], zeros[b])));
    }
}

#ifndef __CUDACC_RTC__
extern "C" bool vb_gemv_quant_supported(int T, int bits, int n_in, const void *x, const void *q)
{
    const int cc = bits == 4 ? 32 : 16; /* columns per 16-byte chunk */
    return T >= 1 && T <= VB_QGEMV_MAX_ROWS && (bits == 4 || bits == 8) && n_in > 0 &&
           n_in % cc == 0 && ((uintptr_t)x & 15) == 0 && ((uintptr_t)q & 15) == 0;
}

// Which kernel the entry point uses: path 0 or 2, the mma kernel where it
// can run (else the SIMT one), 1 the SIMT kernel, 3 the mma kernel with a
// block for each QMMA_WARPS / KS tiles (not the resident blocks looping),
// 4 the mma kernel on at most 2 blocks (each looping over many tiles even
// of a test's small matrices); ks 1, 2, 4 or 8 forces
// the mma kernel's warps a tile, unroll 2 or 4 its steps loaded ahead (0:
// the launcher's picks, launch_mma). For the benchmark and the GPU
// test, to measure and check each variant; not in kernels.h (they declare
// it). Process-wide, not thread-safe: set it before launching.
static int force_path, force_ks, force_unroll;
static bool force_untiled;
extern "C" void vb_gemv_quant_force(int path, int ks, int unroll)
{
    force_untiled = path == 5;
    force_path = path == 5 ? 0 : path;
    force_ks = ks == 1 || ks == 2 || ks == 4 || ks == 8 || ks == 12 ? ks : 0;
    force_unroll = unroll == 1 || unroll == 2 || unroll == 4 ? unroll : 0;
}

// Whether this GPU runs the mma kernel: sm_80+, and the build has its code
// for it (a build for sm_70 alone runs its PTX, without the mma body).
static bool qmma_available(void)
{
    static int cached = -1; /* one GPU a process */
    if (cached < 0) {
        cached = vb_device_runs(
            80, (const void *)gemv_quant_mma_kernel<4, 1, QMMA_UNROLL, 1, false, PAIR_NONE>);
    }
    return cached == 1;
}

// Row blocks (qmat_layout.h) for the matrices the mma kernel reads: its
// weight loads whole 512-byte runs instead of 64 bytes of 8 rows.
// Process-wide, as the knobs below: the backend sets it from VB_QGEMV_BLOCKS
// before the weights are uploaded.
static int blocks_on = 1;
extern "C" void vb_gemv_quant_blocks(int on)
{
    blocks_on = on != 0;
}

// Only groups of whole steps (group 128 and per channel at 4 bits, the
// common checkpoints): with smaller groups the SIMT kernel takes T = 1
// (see the header), and it reads row blocks 64 bytes at a time (a 7B
// 4-bit group-32 layer ~3 % slower on an H100, RESULTS.md session 39).
extern "C" bool vb_gemv_quant_wants_blocks(const vb_qmat *w)
{
    return blocks_on && w &&
           VB_QMAT_BLOCKED_OK(w->n_out, w->n_in, w->bits, w->g_idx != NULL, w->perm != NULL) &&
           w->group_size > 0 && w->group_size % (512 / w->bits) == 0 && qmma_available();
}

template <int T, bool UNI>
static cudaError_t launch_simt_t(const qgemv_params &p, int bits, cudaStream_t stream)
{
    const int rows_per_block = QGEMV_WARPS * QGEMV_ROWS;
    dim3 grid((unsigned)((p.n_out + rows_per_block - 1) / rows_per_block));
    return vb_launch_pdl(bits == 4 ? gemv_quant_kernel<T, 4, UNI> : gemv_quant_kernel<T, 8, UNI>,
                         grid, dim3(32 * QGEMV_WARPS), 0, stream, p);
}

template <bool UNI>
static cudaError_t launch_simt(const qgemv_params &p, int bits, cudaStream_t stream)
{
    if (p.rows == 1)
        return launch_simt_t<1, UNI>(p, bits, stream);
    if (p.rows == 2)
        return launch_simt_t<2, UNI>(p, bits, stream);
    if (p.rows <= 4)
        return launch_simt_t<4, UNI>(p, bits, stream);
    return launch_simt_t<8, UNI>(p, bits, stream);
}

#define QMMA_KS_CHOICES 5 /* KS 1, 2, 4, 8, 12 */
static const int qmma_ks[QMMA_KS_CHOICES] = {1, 2, 4, 8, 12};

template <int U, int GPS, bool T>
static void mma_kernels_g(int bits, void (*k[QMMA_KS_CHOICES])(qgemv_params))
{
    if constexpr (U == 1) { /* instantiated at KS 8 and 12 only */
        k[0] = k[1] = k[2] = NULL;
        k[3] = bits == 4 ? gemv_quant_mma_kernel<4, 8, U, GPS, T, PAIR_NONE>
                         : gemv_quant_mma_kernel<8, 8, U, GPS, T, PAIR_NONE>;
        k[4] = bits == 4 ? gemv_quant_mma_kernel<4, 12, U, GPS, T, PAIR_NONE>
                         : gemv_quant_mma_kernel<8, 12, U, GPS, T, PAIR_NONE>;
        return;
    }
    k[0] = bits == 4 ? gemv_quant_mma_kernel<4, 1, U, GPS, T, PAIR_NONE>
                     : gemv_quant_mma_kernel<8, 1, U, GPS, T, PAIR_NONE>;
    k[1] = bits == 4 ? gemv_quant_mma_kernel<4, 2, U, GPS, T, PAIR_NONE>
                     : gemv_quant_mma_kernel<8, 2, U, GPS, T, PAIR_NONE>;
    k[2] = bits == 4 ? gemv_quant_mma_kernel<4, 4, U, GPS, T, PAIR_NONE>
                     : gemv_quant_mma_kernel<8, 4, U, GPS, T, PAIR_NONE>;
    k[3] = bits == 4 ? gemv_quant_mma_kernel<4, 8, U, GPS, T, PAIR_NONE>
                     : gemv_quant_mma_kernel<8, 8, U, GPS, T, PAIR_NONE>;
    k[4] = bits == 4 ? gemv_quant_mma_kernel<4, 12, U, GPS, T, PAIR_NONE>
                     : gemv_quant_mma_kernel<8, 12, U, GPS, T, PAIR_NONE>;
}

/* the paired kernels: KS 4 (U 2 and 4), 8 and 12 only (the launcher's picks) */
template <int U, int PAIR>
static void mma_kernels_pair(int bits, void (*k[QMMA_KS_CHOICES])(qgemv_params))
{
    k[0] = k[1] = NULL;
    if constexpr (U == 1)
        k[2] = NULL;
    else
        k[2] = bits == 4 ? gemv_quant_mma_kernel<4, 4, U, 1, false, PAIR>
                         : gemv_quant_mma_kernel<8, 4, U, 1, false, PAIR>;
    k[3] = bits == 4 ? gemv_quant_mma_kernel<4, 8, U, 1, false, PAIR>
                     : gemv_quant_mma_kernel<8, 8, U, 1, false, PAIR>;
    k[4] = bits == 4 ? gemv_quant_mma_kernel<4, 12, U, 1, false, PAIR>
                     : gemv_quant_mma_kernel<8, 12, U, 1, false, PAIR>;
}

/* gps 0: one group a step or more, the scales and zeros tiled; pair: the
 * epilogue (PAIR_*, gps 1 only) */
template <int U>
static void mma_kernels(int bits, int gps, int pair, void (*k[QMMA_KS_CHOICES])(qgemv_params))
{
    if (pair == PAIR_SILU)
        mma_kernels_pair<U, PAIR_SILU>(bits, k);
    else if (pair == PAIR_ROPE)
        mma_kernels_pair<U, PAIR_ROPE>(bits, k);
    else if (gps == 4)
        mma_kernels_g<U, 4, false>(bits, k);
    else if (gps == 2)
        mma_kernels_g<U, 2, false>(bits, k);
    else if (gps == 0)
        mma_kernels_g<U, 1, true>(bits, k);
    else
        mma_kernels_g<U, 1, false>(bits, k);
}

// Whether the mma kernel's weight loads allocate in L1 (the kernel before
// session 32) or stream past it (ldg_stream, the default). Process-wide,
// as force_path: the backend sets it once from VB_QGEMV_L1_ALLOC.
static int l1_alloc_on;
extern "C" void vb_gemv_quant_l1_alloc(int on)
{
    l1_alloc_on = on != 0;
}

// Whether the mma kernel copies x into shared memory and reads its
// fragments there (the default), or reads them from global memory through
// L1 (the kernel before session 33), for steps of up to QMMA_X_SHARED_ROWS
// rows and QMMA_X_SHARED_MAX bytes of x (7B down's 18,944 columns at T =
// 1). Measured on an H100 (bench_gemv_quant, session 33): at T = 1 and 2
// every 7B matrix faster (a layer at T = 1 65.6 -> 62.2 us), at T = 4
// mixed, at T = 8 the small matrices slower (o 6.4 -> 8.0 us: each block
// copies 57 KB before its first step). Process-wide, as l1_alloc_on: the
// backend sets it from VB_QGEMV_X_SHARED.
#define QMMA_X_SHARED_ROWS 2
#define QMMA_X_SHARED_MAX (64 * 1024)
static int x_shared_on = 1;
extern "C" void vb_gemv_quant_x_shared(int on)
{
    x_shared_on = on != 0;
}

static int ks_by_tiles_on = 0;
static int ks_balance_on = 1; /* the backend sets it from VB_QGEMV_KS_BALANCE */
extern "C" void vb_gemv_quant_ks_balance(int on)
{
    ks_balance_on = on != 0;
}
static int knob_unroll = 0; /* vb_gemv_quant_unroll: 0 the launcher's U */
extern "C" void vb_gemv_quant_unroll(int u)
{
    knob_unroll = u == 1 || u == 2 || u == 4 ? u : 0;
}
extern "C" void vb_gemv_quant_ks_by_tiles(int on)
{
    ks_by_tiles_on = on != 0;
}

// The mma kernel's blocks an SM (asked once per instantiation: one GPU a
// process); 0 after a failed query.
static int mma_resident(int ui, int bits, int gps, int pair, int i, void (*k)(qgemv_params))
{
    /* [pair][U 2, 4, 1][4-bit, 8-bit][gps 1, 2, 4, 0][KS] */
    static int resident[3][3][2][4][QMMA_KS_CHOICES];
    int *r = &resident[pair][ui][bits == 4 ? 0 : 1]
                      [gps == 0 ? 3 : gps == 4 ? 2 : gps == 2 ? 1 : 0][i];
    if (!*r && cudaOccupancyMaxActiveBlocksPerMultiprocessor(
                   r, k, 32 * QMMA_BLOCK_WARPS(qmma_ks[i]), 0) != cudaSuccess) {
        (void)cudaGetLastError();
        *r = 0;
    }
    return *r;
}

// The mma kernel at KS = 8 warps a 16-row tile (see the header), and
// U = 4 (twice the loads in flight a lane, at 2 blocks an SM instead of 3)
// where the grid fits in one wave at U = 4's occupancy: there the third
// block slot was empty anyway (the 3584-row o and down at 7B: 224 blocks).
// pair: the paired kernels (PAIR_*: gps 1, and a forced KS only 8 or 12).
static cudaError_t launch_mma(const qgemv_params &p, int bits, int gps, int pair,
                              cudaStream_t stream)
{
    static int n_sm, smem_sm, smem_optin; /* the SMs, shared memory an SM and a block */
    void (*k[3][QMMA_KS_CHOICES])(qgemv_params); /* [U 2, 4, 1][KS 1, 2, 4, 8, 12] */
    mma_kernels<2>(bits, gps, pair, k[0]);
    mma_kernels<4>(bits, gps, pair, k[1]);
    mma_kernels<1>(bits, gps, pair, k[2]);
    if (!n_sm) {
        int dev = 0;
        cudaError_t e = cudaGetDevice(&dev);
        if (e == cudaSuccess)
            e = cudaDeviceGetAttribute(&smem_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, dev);
        if (e == cudaSuccess)
            e = cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
        if (e == cudaSuccess)
            e = cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, dev);
        if (e != cudaSuccess)
            return e;
    }
    const size_t x_bytes = (size_t)p.rows * p.n_in * 2;
    const bool x_shared =
        x_shared_on && p.rows <= QMMA_X_SHARED_ROWS && x_bytes <= QMMA_X_SHARED_MAX;
    if (p.norm_resid && !x_shared) /* the norm fold makes x in shared memory */
        return cudaErrorNotSupported;
    const long tiles = (p.n_out + 15) / 16;
    long blocks[QMMA_KS_CHOICES]; /* a block: QMMA_BLOCK_WARPS(KS) / KS tiles */
    for (int i = 0; i < QMMA_KS_CHOICES; i++) {
        const int tpb = QMMA_BLOCK_WARPS(qmma_ks[i]) / qmma_ks[i];
        blocks[i] = (tiles + tpb - 1) / tpb;
    }
    /* U: forced (the test, the bench), else the knob's, else the launcher's */
    const int want_u = force_unroll ? force_unroll : knob_unroll;
    int ui = want_u ? (want_u == 4 ? 1 : want_u == 1 ? 2 : 0) : (QMMA_UNROLL == 4);
    /* KS = qmma_ks[pick]: 12 for matrices of few tiles, 8 otherwise,
     * unless forced (see the header). Few: at most 2 an SM, the KS 12
     * blocks the SMs hold at once (__launch_bounds__ below: 2 at U = 2):
     * the 7B q/k/v's 288 tiles at KS 12 left 24 blocks a second tile, 6
     * steps a warp where KS 8's 288 blocks (3 an SM) take 4 (session 34).
     * A rule of the shape and the GPU only, so that the paired kernels and
     * the plain path of a matrix take the same KS (the same sums).
     * vb_gemv_quant_ks_by_tiles(1): at most 4 an SM, the rule before. */
    int pick = tiles <= (ks_by_tiles_on ? 4L : 2L) * n_sm ? 4 : 3;
    /* ks_balance: at KS 8, KS 4 where its warp parts (tiles x 4) fill the
     * waves of the warps the SMs hold (3 blocks of 8 an SM: U = 2's launch
     * bounds, fixed so that the rule is the shape's and the GPU's alone) to
     * at least 95 %: a tile's end (its next rows' loads, the parts' sums
     * through shared memory, two barriers, the epilogue) every 28 / KS
     * steps of a 3,584-column row, so the joined 7B gate/up (2,368 tiles:
     * 2.99 waves at KS 4) ends a tile every 7 steps instead of 3.5. Not KS
     * 1 or 2: the paired kernels have no such instantiations, and a step
     * of the plain path (T > 2) must sum as the paired kernel does (T <= 2),
     * which --batch-invariant's results rely on */
    if (ks_balance_on && pick == 3) {
        const long warps = 3L * QMMA_WARPS * n_sm, parts = tiles * 4;
        const long waves = (parts + warps - 1) / warps;
        if (parts * 100 >= waves * warps * 95)
            pick = 2;
    }
    for (int i = 0; force_ks && i < QMMA_KS_CHOICES; i++)
        if (qmma_ks[i] == force_ks && k[0][i])
            pick = i;
    if (p.norm_threads > 32 * QMMA_BLOCK_WARPS(qmma_ks[pick])) /* a row's norm in one block */
        return cudaErrorNotSupported;
    /* blocks an SM by registers, and by shared memory where x is there
     * (x, the warps' partial sums, the 1 KB the runtime keeps a block) */
    { /* the ring kernel where it is on and takes the matrix */
        qgemv_params q = p;
        q.x_shared = x_shared;
        const cudaError_t e = qgemv_ring_launch(q, bits, gps, pair, qmma_ks[pick], blocks[pick],
                                                n_sm, smem_optin, force_path, stream);
        if (e != cudaErrorNotSupported)
            return e;
    }
    long by_smem = LONG_MAX;
    if (x_shared)
        by_smem = smem_sm / (long)(x_bytes + QMMA_BLOCK_WARPS(qmma_ks[pick]) * 512 + 1024);
    const long resident4 = min(by_smem, (long)mma_resident(1, bits, gps, pair, pick, k[1][pick]));
    if (!want_u && ui == 0 && blocks[pick] <= resident4 * n_sm)
        ui = 1;
    if (!k[ui][pick]) /* U = 1 at a KS it has no kernel for */
        ui = 0;
    /* as many blocks as are resident, each then looping over its tiles
     * (see the kernel); path 3: a block a tile group (the grid before) */
    long grid = blocks[pick];
    const long resident =
        min(by_smem, (long)mma_resident(ui, bits, gps, pair, pick, k[ui][pick])) * n_sm;
    if (force_path != 3 && resident > 0 && grid > resident)
        grid = resident;
    if (force_path == 4 && grid > 2)
        grid = 2;
    qgemv_params q = p;
    q.l1_alloc = l1_alloc_on;
    q.x_shared = x_shared;
    if (x_shared) {
        /* past 48 KB a kernel must opt in: once per kernel (a process, one
         * GPU), past the table's size at every launch */
        static void (*opted[128])(qgemv_params);
        bool done = false;
        for (int i = 0; i < 128 && opted[i] && !done; i++)
            done = opted[i] == k[ui][pick];
        if (!done) {
            cudaError_t e = cudaFuncSetAttribute(
                k[ui][pick], cudaFuncAttributeMaxDynamicSharedMemorySize, QMMA_X_SHARED_MAX);
            if (e != cudaSuccess)
                return e;
            for (int i = 0; i < 128; i++)
                if (!opted[i]) {
                    opted[i] = k[ui][pick];
                    break;
                }
        }
    }
    return vb_launch_pdl(k[ui][pick], dim3((unsigned)grid),
                         dim3(32 * QMMA_BLOCK_WARPS(qmma_ks[pick])), x_shared ? x_bytes : 0,
                         stream, q);
}

/* p's matrix (x, w's arrays and shape) and its T rows of x */
static void set_matrix(qgemv_params *p, const uint16_t *x, const vb_qmat *w, int T)
{
    p->x = (const __half *)x;
    p->q = (const uint4 *)w->q;
    p->scales = (const __half *)w->scales;
    p->zeros = (const __half *)w->zeros;
    p->g_idx = w->g_idx;
    p->n_out = w->n_out;
    p->n_in = w->n_in;
    p->row_chunks = w->n_in / (w->bits == 4 ? 32 : 16);
    p->blocked = w->blocked;
    p->step_chunks = qmat_step_chunks(w->blocked);
    p->group_size = w->group_size;
    p->n_groups = w->n_groups;
    p->rows = T;
}

/* the mma kernel at one group a step or more: steps a group, and its log2
 * where a power of two (else -1; 0 steps: none) */
static void set_group_steps(qgemv_params *p, int group_steps)
{
    p->group_steps = group_steps;
    p->group_shift = -1;
    for (int sh = 0; sh < 31 && group_steps > 0; sh++)
        if (group_steps == 1 << sh)
            p->group_shift = sh;
}

/* vb_gemv_quant_segs_f16, or with resid (one segment, no bias) its
 * outputs added to resid instead (vb_gemv_quant_resid_f16: the mma kernel
 * only, else cudaErrorNotSupported) */
static cudaError_t quant_segs(uint16_t *const out[], float *resid, const uint16_t *x,
                              const vb_qmat *w, const uint16_t *const bias[],
                              const int seg_rows[], int n_segs, int T, cudaStream_t stream)
{
    if (!out || !x || !w || !w->q || !w->scales || !w->zeros || w->n_out <= 0 ||
        w->n_out > INT32_MAX - 64 || w->n_groups <= 0 || (!w->g_idx && w->group_size <= 0) ||
        n_segs < 1 || n_segs > VB_QGEMV_MAX_SEGS || !seg_rows ||
        !vb_gemv_quant_supported(T, w->bits, w->n_in, x, w->q))
        return cudaErrorInvalidValue;
    const int cc = w->bits == 4 ? 32 : 16;
    const int sc = 4 * cc; /* the mma kernel's step: 4 lanes' chunks */
    qgemv_params p = {};
    long end = 0;
    for (int i = 0; i < VB_QGEMV_MAX_SEGS; i++) {
        if (i < n_segs) {
            if ((!out[i] && !resid) || seg_rows[i] <= 0)
                return cudaErrorInvalidValue;
            end += seg_rows[i];
            p.out[i] = (__half *)out[i];
            p.bias[i] = bias ? (const __half *)bias[i] : NULL;
        }
        p.seg_end[i] = (int)(end < w->n_out ? end : w->n_out); /* past the last: n_out */
    }
    if (end != w->n_out)
        return cudaErrorInvalidValue;
    set_matrix(&p, x, w, T);
    p.resid = resid;
    const bool uniform = !w->g_idx && w->group_size % cc == 0;
    /* the mma kernel's layouts: whole steps in a group (gps 1), or 2 or 4
     * whole groups of whole chunks in a step; its scale and zero offsets
     * are ints (qmma_rows) */
    int gps = 0;
    if (!w->g_idx && w->n_in % sc == 0 && (long)w->n_out * w->n_groups <= INT32_MAX)
        gps = w->group_size % sc == 0                                    ? 1
              : w->group_size % cc == 0 && sc % w->group_size == 0 ? sc / w->group_size
                                                                       : 0;
    /* measured: the SIMT kernel wins at T = 1 for groups smaller than a
     * step (see the header); a forced KS, U or path 3 / 4 asks for the mma
     * kernel (the test and the bench) */
    const bool simt_faster = T == 1 && gps > 1;
    if (gps && force_path != 1 && qmma_available() &&
        (!simt_faster || force_ks || force_unroll || force_path == 3 || force_path == 4)) {
        set_group_steps(&p, gps == 1 ? w->group_size / sc : 0);
        if (gps == 1 && p.group_shift >= 0 && w->sz_tiles && !force_untiled) {
            p.sz_tiles = (const uint2 *)w->sz_tiles;
            gps = 0; /* the tiled form */
        }
        return launch_mma(p, w->bits, gps, PAIR_NONE, stream);
    }
    if (resid) /* the SIMT kernel only stores */
        return cudaErrorNotSupported;
    return uniform ? launch_simt<true>(p, w->bits, stream)
                   : launch_simt<false>(p, w->bits, stream);
}

extern "C" cudaError_t vb_gemv_quant_segs_f16(uint16_t *const out[], const uint16_t *x,
                                              const vb_qmat *w, const uint16_t *const bias[],
                                              const int seg_rows[], int n_segs, int T,
                                              cudaStream_t stream)
{
    return quant_segs(out, NULL, x, w, bias, seg_rows, n_segs, T, stream);
}

extern "C" cudaError_t vb_gemv_quant_resid_f16(float *residual, const uint16_t *x,
                                               const vb_qmat *w, int T, cudaStream_t stream)
{
    if (!residual || (uintptr_t)residual % 4)
        return cudaErrorInvalidValue;
    uint16_t *const outs[1] = {NULL};
    const int rows[1] = {w ? w->n_out : 0};
    return quant_segs(outs, residual, x, w, NULL, rows, 1, T, stream);
}

// --- paired rows: SiLU-gate and RoPE / KV write in the epilogue ------------
//
// The joined gate and up (or q, k and v) through the mma kernel with each
// tile's rows paired (qmma_rows_at) so that a lane holds both values its
// epilogue combines: one launch where the plain path has the GEMV and then
// vb_silu_gate_f16 (vb_rope_kv_write_f16). Each row's sum is computed
// exactly as in the plain kernel (the same steps, warp parts, k order and
// reduction; U only changes what is loaded ahead), so the results are the
// plain path's bits. Only the layout of one group a step or more (group
// 128 at 4 bits, 64 or 128 at 8: the common checkpoints) with plain
// scales and zeros; the rest takes the plain path.

extern "C" bool vb_gemv_quant_pairs_supported(const vb_qmat *w, int T, const void *x)
{
    if (!w || !w->q || !w->scales || !w->zeros || w->g_idx || w->perm ||
        !vb_gemv_quant_supported(T, w->bits, w->n_in, x, w->q))
        return false;
    const int sc = w->bits == 4 ? 128 : 64; /* the mma kernel's step in columns */
    return w->n_in % sc == 0 && w->group_size > 0 && w->group_size % sc == 0 &&
           w->n_groups == w->n_in / w->group_size && w->n_out > 0 && w->n_out % 16 == 0 &&
           (long)w->n_out * w->n_groups <= INT32_MAX && force_path != 1 && qmma_available();
}

/* the parameters every paired launch shares (untiled scales: sz_tiles is
 * laid out for the plain tiles) */
static qgemv_params pair_params(const uint16_t *x, const vb_qmat *w, int T)
{
    qgemv_params p = {};
    set_matrix(&p, x, w, T);
    set_group_steps(&p, w->group_size / (w->bits == 4 ? 128 : 64));
    return p;
}

/* The norm fold's fields (norm NULL: none); cudaErrorNotSupported where
 * rmsnorm.cu would take its element form for x's rows (x: where the
 * unfused norm would write them, the layout its choice depends on) */
static cudaError_t set_norm(qgemv_params *p, const vb_gemv_norm *norm, const uint16_t *x)
{
    if (!norm)
        return cudaSuccess;
    if (!norm->residual || !norm->w || !(norm->eps >= 0.0f))
        return cudaErrorInvalidValue;
    p->norm_threads = vb_rmsnorm_vec_threads(x, norm->residual, NULL, norm->w, p->n_in);
    if (!p->norm_threads)
        return cudaErrorNotSupported;
    p->norm_resid = norm->residual;
    p->norm_w = (const __half *)norm->w;
    p->norm_eps = norm->eps;
    return cudaSuccess;
}

extern "C" cudaError_t vb_gemv_quant_silu_f16(uint16_t *out, const uint16_t *x,
                                              const vb_qmat *w, int T, const vb_gemv_norm *norm,
                                              cudaStream_t stream)
{
    if (!out || !vb_gemv_quant_pairs_supported(w, T, x))
        return cudaErrorInvalidValue;
    qgemv_params p = pair_params(x, w, T);
    const cudaError_t e = set_norm(&p, norm, x);
    if (e != cudaSuccess)
        return e;
    const int n = w->n_out / 2; /* the gate's rows, then the up's */
    p.out[0] = (__half *)out;
    for (int i = 0; i < VB_QGEMV_MAX_SEGS; i++)
        p.seg_end[i] = w->n_out;
    p.pair_block = n / 8; /* every tile in the first period */
    p.pair_stride = 0;
    p.pair_offset = n;
    return launch_mma(p, w->bits, 1, PAIR_SILU, stream);
}

extern "C" cudaError_t vb_gemv_quant_qkv_rope_f16(uint16_t *const out[3], const uint16_t *x,
                                                  const vb_qmat *w,
                                                  const uint16_t *const bias[3],
                                                  const int seg_rows[3], int T,
                                                  const vb_gemv_rope *r,
                                                  const vb_gemv_norm *norm, cudaStream_t stream)
{
    if (!out || !seg_rows || !r || !vb_gemv_quant_pairs_supported(w, T, x) || r->head_dim <= 0 ||
        r->head_dim % 16 || r->kv_heads <= 0 || r->block_size <= 0 || !r->k_cache ||
        !r->v_cache || !r->inv_freq || !r->positions || !r->token_seq || !r->block_tables ||
        seg_rows[1] != r->kv_heads * r->head_dim || seg_rows[2] != seg_rows[1])
        return cudaErrorInvalidValue;
    qgemv_params p = pair_params(x, w, T);
    const cudaError_t e = set_norm(&p, norm, x);
    if (e != cudaSuccess)
        return e;
    long end = 0;
    for (int i = 0; i < 3; i++) {
        if (!out[i] || seg_rows[i] <= 0 || seg_rows[i] % r->head_dim)
            return cudaErrorInvalidValue;
        end += seg_rows[i];
        p.out[i] = (__half *)out[i];
        p.bias[i] = bias ? (const __half *)bias[i] : NULL;
        p.seg_end[i] = (int)(end < w->n_out ? end : w->n_out);
    }
    if (end != w->n_out)
        return cudaErrorInvalidValue;
    p.pair_block = r->head_dim / 16; /* 8-row blocks of a head's first half */
    p.pair_stride = r->head_dim;
    p.pair_offset = r->head_dim / 2;
    p.rope.inv_freq = r->inv_freq;
    p.rope.cos_sin_scale = r->cos_sin_scale;
    p.rope.positions = r->positions;
    p.rope.token_seq = r->token_seq;
    p.rope.block_tables = r->block_tables;
    p.rope.max_blocks = r->max_blocks;
    p.rope.block_size = r->block_size;
    p.rope.head_dim = r->head_dim;
    p.rope.kv_heads = r->kv_heads;
    p.rope.k_cache = (__half *)r->k_cache;
    p.rope.v_cache = (__half *)r->v_cache;
    return launch_mma(p, w->bits, 1, PAIR_ROPE, stream);
}

extern "C" size_t vb_qgemv_sz_tiles_bytes(const vb_qmat *w)
{
    return (size_t)qgemv_sz_tiles_bytes(w->bits, w->n_out, w->n_in, w->group_size, w->n_groups,
                                        w->g_idx != NULL);
}

extern "C" cudaError_t vb_qgemv_make_sz_tiles(void *dst, const vb_qmat *w, cudaStream_t stream)
{
    const size_t bytes = vb_qgemv_sz_tiles_bytes(w);
    if (!dst || !bytes || !w->scales || !w->zeros)
        return cudaErrorInvalidValue;
    const long entries = (long)(bytes / sizeof(uint2));
    const long blocks = (entries + 255) / 256;
    qgemv_sz_tiles_kernel<<<(unsigned)(blocks < 4096 ? blocks : 4096), 256, 0, stream>>>(
        (uint2 *)dst, (const __half *)w->scales, (const __half *)w->zeros, w->n_out, w->n_groups,
        entries);
    return cudaGetLastError();
}

extern "C" cudaError_t vb_gemv_quant_f16(uint16_t *out, const uint16_t *x, const vb_qmat *w,
                                         const uint16_t *bias, int T, cudaStream_t stream)
{
    uint16_t *const outs[1] = {out};
    const uint16_t *const biases[1] = {bias};
    const int rows[1] = {w ? w->n_out : 0};
    return vb_gemv_quant_segs_f16(outs, x, w, biases, rows, 1, T, stream);
}
#endif

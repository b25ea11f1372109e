// Batch-invariant projections (issue #22): out[T, n_out] (fp16) =
// x[T, n_in] (fp16, row-major) w[n_out, n_in]^T (fp16, row-major, as the
// GEMV and cuBLAS paths take it) + bias[n_out] (fp16, optional).
//
// The mode's fallback: projections run on cuBLASLt's split-K-free
// algorithms and gemm_chain.cu (src/cuda/gemm_lt_invariant.c) where the
// check before a shape's first use finds their bits equal; a shape that
// fails it (or VB_INVARIANT_OWN_GEMM=1) runs here, invariant by this
// file's own contract (another order than the chain's).
//
// Why: cuBLAS picks its kernel, tiling and split-K by shape, so a row's
// result depends on how many rows share the step; so does the GEMV/cuBLAS
// switch of the backend. Here each output element's bits depend ONLY on
// its x row, its w row and its bias: never on T, on the row's index, on
// the other rows, on the grid or on the GPU's occupancy.
//
// The contract, for each output element (t, o), on one GPU architecture:
//   - n_in is cut into slices of VB_GEMM_INV_SLICE = 512 columns, [0, 512),
//     [512, 1024), ..., the last one shorter when n_in is not a multiple
//     (a function of n_in only); n_in % 16 == 0 is required;
//   - each slice's partial p_j starts at 0.0f and is accumulated in fp32
//     by mma.sync m16n8k16 (sm_80+), 16 columns at a time in increasing
//     column order, the weights as the A operand (row o at position o % 16
//     of the 16-row tile, columns in their natural order in k), x as B
//     (token t at position t % 8 of the n8 tile);
//   - s = 0.0f; s += p_0; s += p_1; ... in slice order, in fp32;
//   - with a bias s += (float)bias[o]; out = __float2half_rn(s)
//     (vb_gemm_invariant_f32out, for the logits: out = s, so its fp16
//     rounding is the fp16 entry point's output, bit for bit).
// Below sm_80 (V100, Turing through the WMMA kernel) the same, with
// nvcuda::wmma m16n16k16 (fp32 accumulate) instead of mma.sync and o and
// t at positions o % 16 and t % 16 of the 16 x 16 tile: bits are the same
// across modes and batches there too, but not across architectures.
// What the bits rest on: an mma's output element depends only on its row
// of A, its column of B and its accumulator input (tensor cores compute
// each element's dot product on its own; the positions are kept fixed
// anyway). tests/gpu/test_gemm_invariant.c checks it on the GPU: rows
// alone, in batches of every size, shuffled, at an offset, in every mode.
//
// Two modes with identical bits, chosen by T and the SM count
// (gi_pick_mode; vb_gemm_invariant_mode says which):
//
// split (T <= VB_GEMM_INV_SPLIT_MAX_T = 64, decode steps; needs the
// workspace): a warp takes 16 weight rows and one slice, gi_split_kernel;
// a block is W warps (consecutive 16-row tiles of the same slice, W by
// the grid's size) sharing the slice of x (up to 64 tokens: 8 * NT, NT n8
// tiles; more tokens go to further blocks along z). Each warp streams its
// 16 x 512 weights into shared memory with cp.async in four groups of
// 128 columns, all issued before the PDL wait (weights are never written
// by the step), and starts on the first group while the others are in
// flight; x's slice is loaded after the wait. The weight rows are the
// mma's A (16 outputs), x's rows the N side (rows past T are zeros), as
// gemv_quant.cu's mma kernel does, so at T = 1 a warp costs one mma per
// 512 weight bytes and the kernel is a pass over the weights. Each
// slice's partials go to the fp32 workspace [slices][T][n_out]; the last
// block to finish of those covering the same outputs (a counter a block
// of a slice, at the start of the workspace, which that block sets back
// to 0) sums them in slice order, adds the bias and rounds
// (gi_last_block_sum): one launch, no reduce kernel after it.
//
// in-block (larger T, prefill): a tiled GEMM, gi_inblock_kernel: a block
// takes 128 weight rows x BN = 128 (8 warps) or 64 (4 warps) tokens, every
// warp 64 rows x 32 tokens (4 x 4 mma tiles), k tiles of GIB_BK = 32
// columns in a GIB_STAGES = 4 stage cp.async pipeline read with ldmatrix
// (rows padded to 40 halves: conflict-free). Each accumulator has a
// running slice partial and the slice sum in registers (sum += partial;
// partial = 0 at every slice boundary, every 512 / GIB_BK k tiles), so a
// tile's k loop is never split across blocks. The fp16 results go through
// shared memory for 16-byte stores. Blocks walk the tiles in groups of 8
// weight tiles (all token tiles of a group before the next), so a wave's
// weights and x fit in L2.
// The price of invariance against an ordinary GEMM: the second set of
// accumulators (64 registers a thread), which rules out 64 x 64 warp
// tiles and leaves 8 warps an SM (one block of 8 or two of 4).
//
// Below sm_80, or where the build has no sm_80 code for the GPU,
// gi_wmma_kernel does both modes (a block of 4 warps: 64 weight rows x 16
// tokens for split, x 64 tokens in-block, k through shared memory 64
// columns at a time): correct and invariant, not tuned.
//
// Figures: tests/bench/bench_gemm_invariant.c against cuBLAS, to be
// recorded in tests/bench/RESULTS.md.
#include <cuda_fp16.h>
#include <mma.h>

#include "kernels.h"
#include "mma_sm80.cuh"
#include "pdl.cuh"

#define GI_SLICE VB_GEMM_INV_SLICE
#define GIS_GROUP 128            /* split: columns of a cp.async group (4 a slice) */
#define GIS_LD (GI_SLICE + 8)    /* split: halves a shared row (odd 16-byte units) */
#define GIB_BM 128               /* in-block: weight rows a block */
// In-block k tile (32 or 64 columns: a divisor of the slice) and stages:
// overridable (-DGIB_BK=64 -DGIB_STAGES=3) to try them on a GPU; the
// bits do not depend on them. Rows padded by 8 halves: an odd number of
// 16-byte units, so ldmatrix's 8 row addresses hit distinct banks.
#ifndef GIB_BK
#define GIB_BK 32
#endif
#ifndef GIB_STAGES
#define GIB_STAGES 4
#endif
#define GIB_LD (GIB_BK + 8)
#define GIB_SLICE_TILES (GI_SLICE / GIB_BK)
#if GI_SLICE % GIB_BK != 0 || GIB_BK % 16 != 0
#error "the in-block k tile must be a multiple of 16 dividing the slice"
#endif
#define GIB_GROUP_M 8            /* in-block: weight tiles a group of the block order */
#define GIW_BM 64                /* WMMA: weight rows a block (16 a warp) */
#define GIW_BK 64                /* WMMA: columns a shared-memory step */
#define GIW_LD (GIW_BK + 8)

struct gi_params {
    const __half *x;    /* [T, n_in] */
    const __half *w;    /* [n_out, n_in] */
    const __half *bias; /* [n_out] or NULL */
    void *out;          /* [T, n_out], fp16 or (out_f32) fp32 */
    float *ws;          /* split: partials [n_slices][T][n_out] */
    unsigned *counters; /* split: slices done, one a block of a slice (gi_last_block_sum) */
    int T, n_in, n_out, n_slices;
    int z0;             /* split: the launch's first token group (long steps take several) */
    int vec_out;        /* fp16 out 16-byte aligned and n_out % 8 == 0: 16-byte stores */
    int out_f32;        /* fp32 out: s (+ bias) itself, not rounded to fp16 */
};

__device__ __forceinline__ float gi_finish(float s, const __half *bias, int o)
{
    if (bias)
        s += __half2float(bias[o]);
    return s;
}

// out[t, o] = the finished sum: rounded to fp16, or as it is (fp32 out).
__device__ __forceinline__ void gi_store(const gi_params &p, int t, int o, float v)
{
    const size_t i = (size_t)t * p.n_out + o;
    if (p.out_f32)
        ((float *)p.out)[i] = v;
    else
        ((__half *)p.out)[i] = __float2half_rn(v);
}

// Split mode's end, called by every thread of a block once its partials
// of one slice are stored: the blocks of the other slices of the same
// outputs (rows o_first.., n_rows; tokens t_first.., n_tok) count
// themselves in *counter, and the last one sums every slice's partials
// in slice order from 0.0f (the contract's order: the in-block kernel's
// sum += partial), adds the bias, rounds, and sets the counter back to 0
// for the next launch. The fences: each thread's partials are visible
// device-wide before its block is counted, and the last block reads them
// from L2 (__ldcg) after it has seen the count.
__device__ __forceinline__ void gi_last_block_sum(const gi_params &p, unsigned *counter,
                                                  int o_first, int n_rows, int t_first, int n_tok)
{
    __threadfence();
    __syncthreads();
    int last = 0;
    if (threadIdx.x == 0)
        last = atomicAdd(counter, 1u) == (unsigned)p.n_slices - 1;
    if (!__syncthreads_or(last)) /* thread 0's answer to the block, no shared memory */
        return;
    __threadfence();
    const size_t total = (size_t)p.T * p.n_out; /* one slice's partials */
    for (int e = threadIdx.x; e < n_rows * n_tok; e += blockDim.x) {
        const int o = o_first + e % n_rows, t = t_first + e / n_rows;
        if (o >= p.n_out || t >= p.T)
            continue;
        const float *a = p.ws + (size_t)t * p.n_out + o;
        float s = 0.0f;
#pragma unroll 8
        for (int j = 0; j < p.n_slices; j++)
            s += __ldcg(a + (size_t)j * total);
        gi_store(p, t, o, gi_finish(s, p.bias, o));
    }
    if (threadIdx.x == 0)
        *counter = 0;
}

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
// cp.async.wait_group with a count known after unrolling.
__device__ __forceinline__ void gi_cp_async_wait(int pending)
{
    if (pending <= 0)
        asm volatile("cp.async.wait_group 0;\n" ::);
    else if (pending == 1)
        asm volatile("cp.async.wait_group 1;\n" ::);
    else if (pending == 2)
        asm volatile("cp.async.wait_group 2;\n" ::);
    else
        asm volatile("cp.async.wait_group 3;\n" ::);
}

__device__ __forceinline__ void gi_cp_async_commit(void)
{
    asm volatile("cp.async.commit_group;\n" ::);
}
#endif

// Split mode: warp = 16 weight rows x one slice (blockIdx.y) x 8 * NT
// tokens (token group z0 + blockIdx.z); a block W = blockDim.x / 32 warps
// of consecutive row tiles. Shared memory: x's slice [8 NT][GIS_LD], then
// each warp's weights [16][GIS_LD]. Writes the slice's fp32 partials to
// p.ws; the last block of the slices sums them (gi_last_block_sum).
template <int NT>
__global__ void __launch_bounds__(256) gi_split_kernel(gi_params p)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    extern __shared__ uint4 gi_smem[];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int W = blockDim.x >> 5;
    __half *sx = (__half *)gi_smem;
    __half *sw = sx + (8 * NT + warp * 16) * GIS_LD;
    const int slice = blockIdx.y, kb = slice * GI_SLICE;
    const int len = min(GI_SLICE, p.n_in - kb), steps = len >> 4;
    const int o0 = (blockIdx.x * W + warp) * 16;
    const int t0 = (p.z0 + blockIdx.z) * 8 * NT;

    // the warp's 16 x len weights, four groups of 128 columns; 16 lanes a
    // row's 256 bytes; rows past n_out and columns past the slice zeros
#pragma unroll
    for (int g = 0; g < 4; g++) {
#pragma unroll
        for (int m = 0; m < 8; m++) {
            const int id = lane + 32 * m, r = id >> 4, kl = g * GIS_GROUP + (id & 15) * 8;
            const bool ok = o0 + r < p.n_out && kl < len;
            const __half *src = ok ? p.w + (size_t)(o0 + r) * p.n_in + kb + kl : p.w;
            mma_cp_async16(sw + r * GIS_LD + kl, src, ok ? 16 : 0);
        }
        gi_cp_async_commit();
    }
    pdl_wait(); /* x is the previous kernel's output; so may ws be in use */
    for (int id = threadIdx.x; id < 8 * NT * (GI_SLICE / 8); id += blockDim.x) {
        const int r = id / (GI_SLICE / 8), kl = (id % (GI_SLICE / 8)) * 8, t = t0 + r;
        uint4 v = make_uint4(0, 0, 0, 0);
        if (t < p.T && kl < len)
            v = __ldg((const uint4 *)(p.x + (size_t)t * p.n_in + kb + kl));
        *(uint4 *)(sx + r * GIS_LD + kl) = v;
    }
    __syncthreads();
    pdl_launch_dependents();

    float acc[NT][4];
#pragma unroll
    for (int n = 0; n < NT; n++)
#pragma unroll
        for (int i = 0; i < 4; i++)
            acc[n][i] = 0.0f;
    // ldmatrix rows: A lane -> weight row lane % 16, columns + 8 * (lane /
    // 16); B lane -> token (lane % 8) + 8 * (lane / 16), columns + 8 *
    // (lane / 8 % 2): registers (n8 tile 2j, k 0-7 / 8-15), (2j + 1, ...)
    const __half *a_row = sw + (lane & 15) * GIS_LD + (lane >> 4) * 8;
    const __half *b_row = sx + ((lane & 7) + ((lane >> 4) << 3)) * GIS_LD + ((lane >> 3) & 1) * 8;
#pragma unroll
    for (int g = 0; g < 4; g++) {
        gi_cp_async_wait(3 - g);
        __syncwarp(); /* the other lanes' copies of this group */
#pragma unroll
        for (int s = 0; s < GIS_GROUP / 16; s++) {
            const int step = g * (GIS_GROUP / 16) + s;
            if (step < steps) { /* warp-uniform */
                unsigned a[4];
                mma_ldmatrix_x4(a, a_row + step * 16);
                if (NT == 1) {
                    unsigned b[2];
                    mma_ldmatrix_x2(b, b_row + step * 16);
                    mma_m16n8k16(acc[0], a, b[0], b[1]);
                } else {
#pragma unroll
                    for (int j = 0; j < NT / 2; j++) {
                        unsigned b[4];
                        mma_ldmatrix_x4(b, b_row + j * 16 * GIS_LD + step * 16);
                        mma_m16n8k16(acc[2 * j], a, b[0], b[1]);
                        mma_m16n8k16(acc[2 * j + 1], a, b[2], b[3]);
                    }
                }
            }
        }
    }
    // acc[n][i]: row o0 + lane / 4 (+ 8 for i >= 2), token 8 n + 2 (lane % 4) + i % 2
#pragma unroll
    for (int n = 0; n < NT; n++)
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int o = o0 + (lane >> 2) + (i >> 1) * 8;
            const int t = t0 + 8 * n + 2 * (lane & 3) + (i & 1);
            if (o < p.n_out && t < p.T)
                p.ws[((size_t)slice * p.T + t) * p.n_out + o] = acc[n][i];
        }
    gi_last_block_sum(p, p.counters + blockIdx.z * gridDim.x + blockIdx.x, blockIdx.x * W * 16,
                      W * 16, t0, 8 * NT);
#else
    __trap(); /* launched only where the GPU runs sm_80+ code (gi_device_info) */
#endif
}

// In-block mode: k tile kt of the block's 128 weight rows (m0...) and BN
// tokens (n0...) into a stage of (128 + BN) rows of GIB_LD halves, GIB_BK
// / 8 threads a row's 16-byte pieces; rows past n_out or T and columns
// past n_in zero-filled (their address clamped to w, never read then).
template <int BN, int THREADS>
__device__ __forceinline__ void gi_inblock_load(__half *stage, const gi_params &p, int m0, int n0,
                                                int kt)
{
    constexpr int PER_ROW = GIB_BK / 8, CHUNKS = (GIB_BM + BN) * PER_ROW;
    static_assert(CHUNKS % THREADS == 0 && GIB_BM % (THREADS / PER_ROW) == 0,
                  "whole rows an iteration, weights and tokens apart");
#pragma unroll
    for (int i = 0; i < CHUNKS / THREADS; i++) {
        const int id = threadIdx.x + i * THREADS, r = id / PER_ROW, kc = (id % PER_ROW) * 8;
        const int k = kt * GIB_BK + kc;
        const __half *src;
        bool ok;
        if (r < GIB_BM) { /* uniform per i (the static_assert) */
            ok = m0 + r < p.n_out && k < p.n_in;
            src = p.w + (size_t)(m0 + r) * p.n_in + k;
        } else {
            ok = n0 + r - GIB_BM < p.T && k < p.n_in;
            src = p.x + (size_t)(n0 + r - GIB_BM) * p.n_in + k;
        }
        mma_cp_async16(stage + r * GIB_LD + kc, ok ? src : p.w, ok ? 16 : 0);
    }
}

// In-block mode: a block = 128 weight rows x BN = 32 WN tokens, 2 x WN
// warps of 64 rows x 32 tokens each; the whole k loop, slice sums in
// registers. Dynamic shared memory: GIB_STAGES x (128 + BN) rows of
// GIB_LD halves, reused for the output tile [BN][128 + 8] at the end.
template <int WN>
__global__ void __launch_bounds__(64 * WN, 2 / (WN / 2)) gi_inblock_kernel(gi_params p)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    constexpr int BN = 32 * WN, THREADS = 64 * WN, ROWS = GIB_BM + BN;
    extern __shared__ uint4 gi_smem[];
    __half *smem = (__half *)gi_smem;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int wm = warp & 1, wn = warp >> 1;

    // tile order: groups of GIB_GROUP_M weight tiles, token tiles inside
    const int tiles_m = (p.n_out + GIB_BM - 1) / GIB_BM, tiles_n = (p.T + BN - 1) / BN;
    const int per_group = GIB_GROUP_M * tiles_n, group = blockIdx.x / per_group;
    const int first_m = group * GIB_GROUP_M, in_group = blockIdx.x % per_group;
    const int group_m = min(tiles_m - first_m, GIB_GROUP_M);
    const int m0 = (first_m + in_group % group_m) * GIB_BM, n0 = (in_group / group_m) * BN;
    const int nk = (p.n_in + GIB_BK - 1) / GIB_BK;

    pdl_wait(); /* x is the previous kernel's output */
    pdl_launch_dependents();

    float acc[4][4][4], sum[4][4][4];
#pragma unroll
    for (int mi = 0; mi < 4; mi++)
#pragma unroll
        for (int ni = 0; ni < 4; ni++)
#pragma unroll
            for (int i = 0; i < 4; i++)
                acc[mi][ni][i] = sum[mi][ni][i] = 0.0f;

#pragma unroll
    for (int st = 0; st < GIB_STAGES - 1; st++) {
        if (st < nk)
            gi_inblock_load<BN, THREADS>(smem + (size_t)st * ROWS * GIB_LD, p, m0, n0, st);
        gi_cp_async_commit();
    }
    // ldmatrix rows as in the split kernel: A lane -> row wm * 64 + 16 mi +
    // lane % 16; B lane -> token wn * 32 + 16 j + lane % 8 + 8 (lane / 16)
    const int a_off = (wm * 64 + (lane & 15)) * GIB_LD + (lane >> 4) * 8;
    const int b_off = (GIB_BM + wn * 32 + (lane & 7) + ((lane >> 4) << 3)) * GIB_LD +
                      ((lane >> 3) & 1) * 8;
    for (int kt = 0; kt < nk; kt++) {
        asm volatile("cp.async.wait_group %0;\n" ::"n"(GIB_STAGES - 2));
        __syncthreads(); /* tile kt landed; every warp is done with kt - 1's stage */
        const int next = kt + GIB_STAGES - 1;
        if (next < nk)
            gi_inblock_load<BN, THREADS>(smem + (size_t)(next % GIB_STAGES) * ROWS * GIB_LD, p,
                                         m0, n0, next);
        gi_cp_async_commit();
        const __half *base = smem + (size_t)(kt % GIB_STAGES) * ROWS * GIB_LD;
#pragma unroll
        for (int kk = 0; kk < GIB_BK / 16; kk++) {
            if (kt * GIB_BK + kk * 16 < p.n_in) { /* n_in % 32 == 16: the last tile's half */
                unsigned a[4][4], b[4][2];
#pragma unroll
                for (int mi = 0; mi < 4; mi++)
                    mma_ldmatrix_x4(a[mi], base + a_off + mi * 16 * GIB_LD + kk * 16);
#pragma unroll
                for (int j = 0; j < 2; j++) {
                    unsigned r[4];
                    mma_ldmatrix_x4(r, base + b_off + j * 16 * GIB_LD + kk * 16);
                    b[2 * j][0] = r[0];
                    b[2 * j][1] = r[1];
                    b[2 * j + 1][0] = r[2];
                    b[2 * j + 1][1] = r[3];
                }
#pragma unroll
                for (int mi = 0; mi < 4; mi++)
#pragma unroll
                    for (int ni = 0; ni < 4; ni++)
                        mma_m16n8k16(acc[mi][ni], a[mi], b[ni][0], b[ni][1]);
            }
        }
        if ((kt + 1) % GIB_SLICE_TILES == 0 || kt == nk - 1) { /* a slice ends */
#pragma unroll
            for (int mi = 0; mi < 4; mi++)
#pragma unroll
                for (int ni = 0; ni < 4; ni++)
#pragma unroll
                    for (int i = 0; i < 4; i++) {
                        sum[mi][ni][i] += acc[mi][ni][i];
                        acc[mi][ni][i] = 0.0f;
                    }
        }
    }
    asm volatile("cp.async.wait_group 0;\n" ::);
    __syncthreads(); /* the stages become the output tile */

    if (p.out_f32) { /* the logits: fp32 straight from registers (4-byte stores) */
#pragma unroll
        for (int mi = 0; mi < 4; mi++)
#pragma unroll
            for (int ni = 0; ni < 4; ni++)
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    const int o = m0 + wm * 64 + mi * 16 + (lane >> 2) + (i >> 1) * 8;
                    const int t = n0 + wn * 32 + ni * 8 + 2 * (lane & 3) + (i & 1);
                    if (o < p.n_out && t < p.T)
                        gi_store(p, t, o, gi_finish(sum[mi][ni][i], p.bias, o));
                }
        return;
    }
    // sum[mi][ni][i]: row wm * 64 + 16 mi + lane / 4 (+ 8 for i >= 2),
    // token wn * 32 + 8 ni + 2 (lane % 4) + i % 2; tile [BN][GIB_BM + 8]
    constexpr int OLD = GIB_BM + 8;
#pragma unroll
    for (int mi = 0; mi < 4; mi++)
#pragma unroll
        for (int ni = 0; ni < 4; ni++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int ol = wm * 64 + mi * 16 + (lane >> 2) + (i >> 1) * 8;
                const int tl = wn * 32 + ni * 8 + 2 * (lane & 3) + (i & 1);
                const float v = m0 + ol < p.n_out ? gi_finish(sum[mi][ni][i], p.bias, m0 + ol)
                                                  : 0.0f;
                smem[tl * OLD + ol] = __float2half_rn(v);
            }
    __syncthreads();
    for (int id = threadIdx.x; id < BN * (GIB_BM / 8); id += THREADS) {
        const int tl = id / (GIB_BM / 8), ol = (id % (GIB_BM / 8)) * 8;
        const int t = n0 + tl, o = m0 + ol;
        if (t >= p.T || o >= p.n_out)
            continue;
        const __half *src = smem + tl * OLD + ol;
        __half *dst = (__half *)p.out + (size_t)t * p.n_out + o;
        if (p.vec_out && o + 8 <= p.n_out) {
            *(uint4 *)dst = *(const uint4 *)src;
        } else {
            for (int e = 0; e < 8 && o + e < p.n_out; e++)
                dst[e] = src[e];
        }
    }
#else
    __trap(); /* launched only where the GPU runs sm_80+ code (gi_device_info) */
#endif
}

// Both modes below sm_80 with WMMA m16n16k16: a block of 4 warps, warp w
// 16 weight rows (m0 + 16 w) x 16 NB tokens (token group z0 + blockIdx.z).
// split != 0: slice blockIdx.y only, partials to p.ws, the last block
// sums them (gi_last_block_sum); else every slice, summed in fragments,
// bias, fp16 out. Compiles on every architecture (the
// fallback where the sm_80 kernels' code is absent).
template <int NB>
__global__ void __launch_bounds__(128) gi_wmma_kernel(gi_params p, int split)
{
    using namespace nvcuda;
    __shared__ __align__(32) __half sa[GIW_BM * GIW_LD];
    __shared__ __align__(32) __half sb[16 * NB * GIW_LD];
    __shared__ __align__(32) float sc[4][16 * 16 * NB];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int m0 = blockIdx.x * GIW_BM, n0 = (p.z0 + blockIdx.z) * 16 * NB;
    const int j_first = split ? blockIdx.y : 0, j_end = split ? blockIdx.y + 1 : p.n_slices;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[NB], sum[NB];
#pragma unroll
    for (int f = 0; f < NB; f++)
        wmma::fill_fragment(sum[f], 0.0f);
    for (int j = j_first; j < j_end; j++) {
#pragma unroll
        for (int f = 0; f < NB; f++)
            wmma::fill_fragment(acc[f], 0.0f);
        const int k_end = min((j + 1) * GI_SLICE, p.n_in);
        for (int kc = j * GI_SLICE; kc < k_end; kc += GIW_BK) {
            __syncthreads(); /* the previous step's reads are done */
            for (int id = threadIdx.x; id < (GIW_BM + 16 * NB) * (GIW_BK / 8); id += 128) {
                const int r = id / (GIW_BK / 8), kl = (id % (GIW_BK / 8)) * 8, k = kc + kl;
                uint4 v = make_uint4(0, 0, 0, 0);
                if (r < GIW_BM) {
                    if (m0 + r < p.n_out && k < k_end)
                        v = *(const uint4 *)(p.w + (size_t)(m0 + r) * p.n_in + k);
                    *(uint4 *)(sa + r * GIW_LD + kl) = v;
                } else {
                    const int t = n0 + r - GIW_BM;
                    if (t < p.T && k < k_end)
                        v = *(const uint4 *)(p.x + (size_t)t * p.n_in + k);
                    *(uint4 *)(sb + (r - GIW_BM) * GIW_LD + kl) = v;
                }
            }
            __syncthreads();
            for (int kk = 0; kk < GIW_BK / 16 && kc + kk * 16 < k_end; kk++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> a;
                wmma::load_matrix_sync(a, sa + warp * 16 * GIW_LD + kk * 16, GIW_LD);
#pragma unroll
                for (int f = 0; f < NB; f++) {
                    /* x [t][k] row-major is B = x^T [k][t] column-major */
                    wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> b;
                    wmma::load_matrix_sync(b, sb + f * 16 * GIW_LD + kk * 16, GIW_LD);
                    wmma::mma_sync(acc[f], a, b, acc[f]);
                }
            }
        }
        if (!split)
#pragma unroll
            for (int f = 0; f < NB; f++)
#pragma unroll
                for (int i = 0; i < acc[f].num_elements; i++)
                    sum[f].x[i] += acc[f].x[i];
    }
    // element (row i, token u) of fragment f at sc[warp][(16 f + u) * 16 + i]
#pragma unroll
    for (int f = 0; f < NB; f++) {
        if (split)
            wmma::store_matrix_sync(sc[warp] + f * 256, acc[f], 16, wmma::mem_col_major);
        else
            wmma::store_matrix_sync(sc[warp] + f * 256, sum[f], 16, wmma::mem_col_major);
    }
    __syncwarp();
    for (int e = lane; e < 256 * NB; e += 32) {
        const int o = m0 + warp * 16 + (e & 15), t = n0 + (e >> 4);
        if (o >= p.n_out || t >= p.T)
            continue;
        if (split)
            p.ws[((size_t)blockIdx.y * p.T + t) * p.n_out + o] = sc[warp][e];
        else
            gi_store(p, t, o, gi_finish(sc[warp][e], p.bias, o));
    }
    if (split)
        gi_last_block_sum(p, p.counters + blockIdx.z * gridDim.x + blockIdx.x, m0, GIW_BM, n0,
                          16 * NB);
}

template __global__ void gi_split_kernel<1>(gi_params);
template __global__ void gi_split_kernel<2>(gi_params);
template __global__ void gi_split_kernel<4>(gi_params);
template __global__ void gi_split_kernel<8>(gi_params);
template __global__ void gi_inblock_kernel<2>(gi_params);
template __global__ void gi_inblock_kernel<4>(gi_params);
template __global__ void gi_wmma_kernel<1>(gi_params, int);
template __global__ void gi_wmma_kernel<4>(gi_params, int);

#ifndef __CUDACC_RTC__
static int force_mode; /* vb_gemm_invariant_force */

extern "C" void vb_gemm_invariant_force(int mode)
{
    force_mode = mode >= VB_GEMM_INV_AUTO && mode <= VB_GEMM_INV_INBLOCK_64 ? mode : 0;
}

static int gi_slices(int n_in)
{
    return (n_in + GI_SLICE - 1) / GI_SLICE;
}

extern "C" bool vb_gemm_invariant_supported(int n_in, int n_out, const void *x, const void *w)
{
    return n_in > 0 && n_in % 16 == 0 && n_out > 0 && x && w && ((uintptr_t)x & 15) == 0 &&
           ((uintptr_t)w & 15) == 0;
}

// The workspace: GI_COUNTERS counters of split mode's blocks (a fixed
// region at the start, so that calls of any shape find them at zero),
// then the partials [n_slices][T][n_out] fp32.
#define GI_COUNTERS 32768

extern "C" size_t vb_gemm_invariant_workspace_bytes(int max_T, int n_in, int n_out)
{
    if (max_T <= 0 || n_in <= 0 || n_out <= 0)
        return 0;
    return GI_COUNTERS * sizeof(unsigned) +
           (size_t)gi_slices(n_in) * (size_t)max_T * (size_t)n_out * sizeof(float);
}

// The device's SM count, per-block shared memory limit (opt-in) and
// whether it runs the sm_80 kernels (sm_80+, and the build has sm_80+
// code for it: a build for sm_75 alone would JIT their trap bodies).
// Asked once: one GPU a process, as the other launchers assume.
struct gi_device {
    int n_sm, smem_optin, mma;
};

static cudaError_t gi_device_info(gi_device *d)
{
    static gi_device cached;
    static bool have;
    if (!have) {
        int dev = 0;
        vb_device_caps caps;
        cudaError_t e = cudaGetDevice(&dev);
        if (e == cudaSuccess)
            e = cudaDeviceGetAttribute(&cached.n_sm, cudaDevAttrMultiProcessorCount, dev);
        if (e == cudaSuccess)
            e = vb_device_caps_get(&caps);
        if (e != cudaSuccess)
            return e;
        cached.smem_optin = caps.smem_optin;
        cached.mma = vb_device_runs(80, (const void *)gi_split_kernel<1>);
        have = true;
    }
    *d = cached;
    return cudaSuccess;
}

static size_t gi_split_smem(int warps, int nt)
{
    return (size_t)(8 * nt + 16 * warps) * GIS_LD * sizeof(__half);
}

static size_t gi_inblock_smem(int wn)
{
    const size_t stages = (size_t)GIB_STAGES * (GIB_BM + 32 * wn) * GIB_LD;
    const size_t out_tile = (size_t)32 * wn * (GIB_BM + 8);
    return (stages > out_tile ? stages : out_tile) * sizeof(__half);
}

// The mode for T rows (the bits do not depend on it): split for decode
// steps (T <= VB_GEMM_INV_SPLIT_MAX_T) when the workspace holds the
// partials; else in-block, 128 tokens a block when that grid has a block
// for every SM, 64 (twice the blocks) when it would leave SMs idle.
static int gi_pick_mode(const gi_device *d, int T, int n_in, int n_out, size_t ws_bytes)
{
    if (force_mode)
        return force_mode == VB_GEMM_INV_INBLOCK ? gi_pick_mode(d, T, n_in, n_out, 0)
                                                 : force_mode;
    if (T <= VB_GEMM_INV_SPLIT_MAX_T &&
        ws_bytes >= vb_gemm_invariant_workspace_bytes(T, n_in, n_out))
        return VB_GEMM_INV_SPLIT;
    const long tiles = (long)((n_out + GIB_BM - 1) / GIB_BM) * ((T + 127) / 128);
    return tiles >= d->n_sm ? VB_GEMM_INV_INBLOCK_128 : VB_GEMM_INV_INBLOCK_64;
}

extern "C" int vb_gemm_invariant_mode(int T, int n_in, int n_out, size_t workspace_bytes)
{
    gi_device d;
    if (T <= 0 || n_in <= 0 || n_out <= 0 || gi_device_info(&d) != cudaSuccess)
        return VB_GEMM_INV_AUTO;
    return gi_pick_mode(&d, T, n_in, n_out, workspace_bytes);
}

// Split mode's token groups a launch: as many as the counters take (one
// launch unless T is far beyond the decode steps split mode is for), at
// most the grid's z limit; 0 when not one fits.
static int gi_groups_per_launch(unsigned blocks_x)
{
    const unsigned n = GI_COUNTERS / blocks_x;
    return n < 65535 ? (int)n : 65535;
}

template <int NT>
static cudaError_t gi_launch_split_nt(const gi_params &p, const gi_device *d, cudaStream_t st)
{
    const int tiles = (p.n_out + 15) / 16, groups = (p.T + 8 * NT - 1) / (8 * NT);
    // warps a block: 4 (8 with 4+ n8 tiles, to share x's larger slice),
    // halved while the grid would give an SM fewer than 2 blocks or the
    // shared memory does not fit
    int warps = NT >= 4 ? 8 : 4;
    while (warps > 1 && ((long)(tiles + warps - 1) / warps * p.n_slices * groups < 2L * d->n_sm ||
                         gi_split_smem(warps, NT) > (size_t)d->smem_optin))
        warps /= 2;
    const size_t smem = gi_split_smem(warps, NT);
    if (smem > (size_t)d->smem_optin)
        return cudaErrorInvalidValue;
    static bool set; /* the opt-in, once per NT: the most any W needs that fits */
    if (!set) {
        size_t most = gi_split_smem(8, NT);
        if (most > (size_t)d->smem_optin)
            most = (size_t)d->smem_optin;
        cudaError_t e = cudaFuncSetAttribute(
            gi_split_kernel<NT>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)most);
        /* all of L1 as shared memory: the weights in flight are what
         * counts (3 blocks of 4 warps an SM at T <= 8 on an H200), and
         * L1 caches only x */
        if (e == cudaSuccess)
            e = cudaFuncSetAttribute(gi_split_kernel<NT>,
                                     cudaFuncAttributePreferredSharedMemoryCarveout,
                                     cudaSharedmemCarveoutMaxShared);
        if (e != cudaSuccess)
            return e;
        set = true;
    }
    const unsigned bx = (unsigned)((tiles + warps - 1) / warps);
    const int per_launch = gi_groups_per_launch(bx);
    if (per_launch < 1)
        return cudaErrorInvalidValue; /* more row blocks than counters */
    for (int z0 = 0; z0 < groups; z0 += per_launch) {
        gi_params q = p;
        q.z0 = z0;
        dim3 grid(bx, (unsigned)p.n_slices, (unsigned)min(groups - z0, per_launch));
        cudaError_t e = vb_launch_pdl(gi_split_kernel<NT>, grid, dim3(32 * warps), smem, st, q);
        if (e != cudaSuccess)
            return e;
    }
    return cudaSuccess;
}

static cudaError_t gi_launch_split(const gi_params &p, const gi_device *d, cudaStream_t st)
{
    if (p.T <= 8)
        return gi_launch_split_nt<1>(p, d, st);
    if (p.T <= 16)
        return gi_launch_split_nt<2>(p, d, st);
    if (p.T <= 32)
        return gi_launch_split_nt<4>(p, d, st);
    return gi_launch_split_nt<8>(p, d, st); /* larger T: groups of 64 along z */
}

template <int WN>
static cudaError_t gi_launch_inblock(const gi_params &p, const gi_device *d, cudaStream_t st)
{
    const size_t smem = gi_inblock_smem(WN);
    if (smem > (size_t)d->smem_optin)
        return cudaErrorInvalidValue;
    static bool set;
    if (!set) {
        cudaError_t e = cudaFuncSetAttribute(gi_inblock_kernel<WN>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             (int)smem);
        /* two 64-token blocks an SM need 2 x 61 KB (operands come through
         * shared memory, not L1) */
        if (e == cudaSuccess)
            e = cudaFuncSetAttribute(gi_inblock_kernel<WN>,
                                     cudaFuncAttributePreferredSharedMemoryCarveout,
                                     cudaSharedmemCarveoutMaxShared);
        if (e != cudaSuccess)
            return e;
        set = true;
    }
    const long blocks = (long)((p.n_out + GIB_BM - 1) / GIB_BM) * ((p.T + 32 * WN - 1) / (32 * WN));
    if (blocks > INT32_MAX)
        return cudaErrorInvalidValue;
    return vb_launch_pdl(gi_inblock_kernel<WN>, dim3((unsigned)blocks), dim3(64 * WN), smem, st,
                         p);
}

static cudaError_t gi_launch_wmma(const gi_params &p, bool split, cudaStream_t st)
{
    const unsigned bx = (unsigned)((p.n_out + GIW_BM - 1) / GIW_BM);
    if (split) {
        const int groups = (p.T + 15) / 16, per_launch = gi_groups_per_launch(bx);
        if (per_launch < 1)
            return cudaErrorInvalidValue;
        for (int z0 = 0; z0 < groups; z0 += per_launch) {
            gi_params q = p;
            q.z0 = z0;
            dim3 grid(bx, (unsigned)p.n_slices, (unsigned)min(groups - z0, per_launch));
            gi_wmma_kernel<1><<<grid, 128, 0, st>>>(q, 1);
            cudaError_t e = cudaGetLastError();
            if (e != cudaSuccess)
                return e;
        }
        return cudaSuccess;
    }
    gi_wmma_kernel<4><<<dim3(bx, 1, (unsigned)((p.T + 63) / 64)), 128, 0, st>>>(p, 0);
    return cudaGetLastError();
}

static cudaError_t gi_run(void *out, int out_f32, const void *x, const void *w,
                          const void *bias, int T, int n_in, int n_out, float *workspace,
                          size_t workspace_bytes, cudaStream_t stream)
{
    if (T < 0 || !out || !vb_gemm_invariant_supported(n_in, n_out, x, w))
        return cudaErrorInvalidValue;
    if (T == 0)
        return cudaSuccess;
    if (T > 65535 * 64) /* the WMMA in-block grid's z */
        return cudaErrorInvalidValue;
    gi_device d;
    cudaError_t e = gi_device_info(&d);
    if (e != cudaSuccess)
        return e;
    if (!workspace)
        workspace_bytes = 0;
    const int mode = gi_pick_mode(&d, T, n_in, n_out, workspace_bytes);
    if (mode == VB_GEMM_INV_SPLIT &&
        workspace_bytes < vb_gemm_invariant_workspace_bytes(T, n_in, n_out))
        return cudaErrorInvalidValue; /* forced split without room for its partials */
    gi_params p = {};
    p.x = (const __half *)x;
    p.w = (const __half *)w;
    p.bias = (const __half *)bias;
    p.out = out;
    p.out_f32 = out_f32;
    p.counters = (unsigned *)workspace;
    p.ws = workspace ? workspace + GI_COUNTERS : NULL;
    p.T = T;
    p.n_in = n_in;
    p.n_out = n_out;
    p.n_slices = gi_slices(n_in);
    p.vec_out = !out_f32 && ((uintptr_t)out & 15) == 0 && n_out % 8 == 0;
    if (!d.mma)
        return gi_launch_wmma(p, mode == VB_GEMM_INV_SPLIT, stream);
    if (mode == VB_GEMM_INV_SPLIT)
        return gi_launch_split(p, &d, stream);
    if (mode == VB_GEMM_INV_INBLOCK_64)
        return gi_launch_inblock<2>(p, &d, stream);
    return gi_launch_inblock<4>(p, &d, stream);
}

extern "C" cudaError_t vb_gemm_invariant_f16(void *out, const void *x, const void *w,
                                             const void *bias, int T, int n_in, int n_out,
                                             float *workspace, size_t workspace_bytes,
                                             cudaStream_t stream)
{
    return gi_run(out, 0, x, w, bias, T, n_in, n_out, workspace, workspace_bytes, stream);
}

extern "C" cudaError_t vb_gemm_invariant_f32out(float *out, const void *x, const void *w,
                                                const void *bias, int T, int n_in, int n_out,
                                                float *workspace, size_t workspace_bytes,
                                                cudaStream_t stream)
{
    return gi_run(out, 1, x, w, bias, T, n_in, n_out, workspace, workspace_bytes, stream);
}
#endif

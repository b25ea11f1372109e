// The plain-chain projection for small steps of --batch-invariant (issue
// #22): out[T, n_out] = x[T, n_in] w[n_out, n_in]^T for T <= 8, fp16 (an
// optional bias added after the rounding) or fp32 out, for up to three
// matrices that share x in one launch (q, k and v: also with RoPE and the
// KV-cache store in the epilogue, as rope_kv.cu does after them), or the
// MLP's gate and up with silu(gate) * up in the epilogue.
//
// Why: the mode runs projections on cuBLASLt's split-K-free algorithms
// (src/cuda/gemm_lt_invariant.c), whose outputs are, bit for bit, a chain
// of tensor-core k16 steps over n_in in order from 0.0f (measured:
// tests/bench/probe_gemm_chain.cu). At batch 1 those algorithms read the
// weights at about half the copy bandwidth (a whole 64-256-row tile per
// CTA, no split over n_in); this kernel computes the same chain closer to
// the bandwidth of a GEMV: a block takes 16 weight rows (the mma's A, row
// o at position o % 16), one warp runs mma.sync m16n8k16 over n_in in
// order, 16 columns a step, from 0.0f, and x's T <= 8 rows are the B side
// (token t at position t), so its bits are the chain's. The backend uses
// it only where gemm_lt_inv_prepare found it bit-identical to cuBLASLt on
// the shape, with each tile below (checked on the GPU it runs on, never
// assumed). Steps are never split over n_in: that would be another order.
//
// The block's other two warps only load: they stream the 16 rows and x's
// columns through a ring of stages (cp.async, 16 bytes a copy, rows
// padded by 8 halves so ldmatrix's 8 row addresses and the B reads hit
// distinct banks) while the mma warp works on the stage before. With one
// warp doing both, the copies' issue sat on the chain's path (q/o 14 us,
// down 71 us at T = 1; now 9.2 and 36.6 with the wide tile below,
// tests/bench/RESULTS.md, session 16); the chain alone is ~13 ns a k16
// step on an H200. The
// weights' first stages are issued ahead of the PDL wait (they never
// change during a step), x's after it (the previous kernel's output).
// Copies past n_out, T or n_in are skipped, not zero-filled: a row of A
// or a column of B only reaches its own output, which is not stored, and
// the steps past n_in are not run.
//
// Three tiles, the same chain: grids of four blocks an SM and more
// (gate/up: 1,184; the logits) stream 128 columns a stage, 6 stages (39
// KB, 65 KB with gate and up); grids of two to four blocks an SM (q+k+v:
// 288) 256 columns, 4 stages (51 KB), so each of their fewer blocks keeps
// more bytes in flight; grids of at most two blocks an SM (o and down at
// 7B: 224 blocks on 132 SMs) 256 columns, 8 stages (101 KB). There most
// SMs hold two blocks and the rest one, so the SMs with two set the time,
// and each of their blocks needs ~56 KB in flight to pull its SM's share
// of the bandwidth: in the engine (a1 under the mode, timed per kernel
// with CUPTI) down went from 41.3 to 37.0 us a call, though alone in
// bench_gemm_invariant it is no faster (RESULTS.md, session 25). A narrow
// tile of one warp that also loads (as session 15's) was faster in a
// probe on gate/up but slower in the build.
#include <cuda_fp16.h>

#include "kernels.h"
#include "mma_sm80.cuh"
#include "pdl.cuh"
#include "rope_math.cuh"
#include "silu.cuh"

#define CH_LOADERS 64                /* threads of the two loading warps */
#define CH_THREADS (32 + CH_LOADERS) /* warp 0: the mma chain */

struct ch_seg {
    const __half *w, *bias;
    void *out;
    int n_out, first_block;
};

// What a launch computes: plain projections (up to three segments);
// CH_PAIR, the MLP's gate and up: one segment, seg[0].w the gate, up_w
// the up matrix of the same shape, seg[0].out silu(gate) * up; CH_ROPE,
// q, k and v (segments 0, 1, 2) with RoPE on q and k and k, v stored in
// the paged cache, as rope_kv.cu does after the separate projections.
#define CH_PLAIN 0
#define CH_PAIR 1
#define CH_ROPE 2

struct ch_params {
    const __half *x, *up_w;
    ch_seg seg[VB_GEMM_CHAIN_MAX_SEGS];
    int n_segs, T, n_in, out_f32;
    // CH_ROPE: as vb_gemv_rope (kernels.h)
    const float *inv_freq;
    float rope_scale;
    const int *positions, *token_seq, *block_tables;
    int max_blocks, block_size, head_dim, kv_heads;
    __half *k_cache, *v_cache;
};

// Shared rows a stage: 16 weight rows (32 with PAIR: the gate's, then
// up's), then x's VB_GEMM_CHAIN_MAX_T.
static constexpr __host__ __device__ int ch_rows(bool pair)
{
    return (pair ? 32 : 16) + VB_GEMM_CHAIN_MAX_T;
}

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
// One loading thread's copies of a stage: the same (row, 16-byte column)
// pieces at every stage, at k0 = stage * COLS further along the row.
template <int COLS, int N>
struct ch_copies {
    const __half *src[N];
    int dst[N], col[N];
    bool ok[N];

    __device__ __forceinline__ void issue(__half *slot, int k0, int n_in) const
    {
#pragma unroll
        for (int m = 0; m < N; m++)
            if (ok[m] && k0 + col[m] < n_in)
                mma_cp_async16(slot + dst[m], src[m] + k0, 16);
    }
};

// Loader thread lt's pieces of a (rows x COLS) block of a row-major
// matrix whose row r starts at base + r * ld (r + gap from row 8 on: a
// RoPE block's second half, see ch_kernel), landing at shared row
// row0 + r; rows from n_rows on are skipped.
template <int COLS, int N>
__device__ __forceinline__ void ch_copies_init(ch_copies<COLS, N> &c, int lt, const __half *base,
                                               int ld, int n_rows, int row0, int pieces,
                                               int gap = 0)
{
    constexpr int per_row = COLS / 8;
#pragma unroll
    for (int m = 0; m < N; m++) {
        const int id = lt + CH_LOADERS * m, r = id / per_row, col = (id % per_row) * 8;
        c.ok[m] = id < pieces && r < n_rows;
        c.src[m] = base + (c.ok[m] ? (size_t)(r + (r >= 8 ? gap : 0)) * ld + col : 0);
        c.dst[m] = (row0 + r) * (COLS + 8) + col;
        c.col[m] = col;
    }
}

__device__ __forceinline__ void ch_commit(void)
{
    asm volatile("cp.async.commit_group;\n" ::);
}

// The mma warp and the loaders meet here once a stage (named barrier 1).
__device__ __forceinline__ void ch_stage_barrier(void)
{
    asm volatile("bar.sync 1, %0;\n" ::"n"(CH_THREADS) : "memory");
}

// The loading warps' part: the block's weight rows (and with PAIR up's)
// and x's rows through the ring, STAGES - 1 stages ahead of the mma warp.
// row0: the block's first weight row, gap: rows skipped after its 8th.
template <int COLS, int STAGES, int MODE>
__device__ __forceinline__ void ch_load_all(__half *ring, const ch_params &p, const ch_seg &sg,
                                            int row0, int gap, int n_stages)
{
    constexpr bool PAIR = MODE == CH_PAIR;
    constexpr int STAGE = ch_rows(PAIR) * (COLS + 8), W_PIECES = 16 * COLS / 8;
    constexpr int X_PIECES = VB_GEMM_CHAIN_MAX_T * COLS / 8;
    const int lt = threadIdx.x - 32;
    ch_copies<COLS, W_PIECES / CH_LOADERS> w, up;
    ch_copies<COLS, (X_PIECES + CH_LOADERS - 1) / CH_LOADERS> x;
    ch_copies_init(w, lt, sg.w + (size_t)row0 * p.n_in, p.n_in, sg.n_out - row0, 0, W_PIECES,
                   gap);
    if (PAIR)
        ch_copies_init(up, lt, p.up_w + (size_t)row0 * p.n_in, p.n_in, sg.n_out - row0, 16,
                       W_PIECES);
    ch_copies_init(x, lt, p.x, p.n_in, p.T, ch_rows(PAIR) - VB_GEMM_CHAIN_MAX_T, X_PIECES);
    // Commit groups in order: the weights of stages 0 .. S-2 (before the
    // PDL wait), x of stages 0 .. S-2 (after it), then one group a stage
    // from stage S-1 on; a stage past the end commits an empty group.
    // Stage s's data is then always in group S-1+s: at the top of step s
    // 2(S-1)+s groups are committed, S-2 may still be pending.
#pragma unroll
    for (int s = 0; s < STAGES - 1; s++) {
        if (s < n_stages) {
            w.issue(ring + s * STAGE, s * COLS, p.n_in);
            if (PAIR)
                up.issue(ring + s * STAGE, s * COLS, p.n_in);
        }
        ch_commit();
    }
    pdl_wait(); /* x is the previous kernel's output */
    pdl_launch_dependents();
#pragma unroll
    for (int s = 0; s < STAGES - 1; s++) {
        if (s < n_stages)
            x.issue(ring + s * STAGE, s * COLS, p.n_in);
        ch_commit();
    }
    for (int s = 0; s < n_stages; s++) {
        asm volatile("cp.async.wait_group %0;\n" ::"n"(STAGES - 2));
        ch_stage_barrier(); /* stage s landed; the mma warp is done with s - 1's slot */
        const int next = s + STAGES - 1;
        if (next < n_stages) {
            __half *slot = ring + (next % STAGES) * STAGE;
            w.issue(slot, next * COLS, p.n_in);
            if (PAIR)
                up.issue(slot, next * COLS, p.n_in);
            x.issue(slot, next * COLS, p.n_in);
        }
        ch_commit();
    }
}
#endif

// The rotation and the cache store of one (token, pair) of a RoPE block:
// x0 at row head * head_dim + i, x1 at i + head_dim / 2, each already
// rounded and with its bias, as rope_kv.cu takes them from q, k and v.
__device__ __forceinline__ void ch_rope_store(const ch_params &p, const ch_seg &sg, int si,
                                              int head, int i, int t, __half x0, __half x1)
{
    const int half = p.head_dim >> 1, pos = p.positions[t];
    if (si < 2) { /* q or k */
        float c, s;
        rope_cos_sin(pos, p.inv_freq[i], p.rope_scale, &c, &s);
        rope_rotate(c, s, &x0, &x1);
    }
    __half *o = (__half *)sg.out + (size_t)t * sg.n_out + head * p.head_dim + i;
    o[0] = x0;
    o[half] = x1;
    const int seq = p.token_seq[t];
    if (si == 0 || seq < 0)
        return; /* q; or a padding row of a CUDA-graph bucket: no cache slot */
    const int blk = p.block_tables[(size_t)seq * p.max_blocks + pos / p.block_size];
    const size_t at =
        (((size_t)blk * p.block_size + pos % p.block_size) * p.kv_heads + head) * p.head_dim + i;
    __half *cache = si == 1 ? p.k_cache : p.v_cache;
    cache[at] = x0;
    cache[at + half] = x1;
}

// The plain and gate/up epilogue: acc[i] is row o0 + g (+ 8 for i >= 2),
// token 2c + (i & 1).
__device__ __forceinline__ void ch_store(const ch_params &p, const ch_seg &sg, int o0, int g,
                                         int c, const float acc[4], const float acc_up[4],
                                         bool pair)
{
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int o = o0 + g + (i >> 1) * 8, t = 2 * c + (i & 1);
        if (o >= sg.n_out || t >= p.T)
            continue;
        const size_t at = (size_t)t * sg.n_out + o;
        if (p.out_f32) {
            ((float *)sg.out)[at] = acc[i];
            continue;
        }
        __half h = __float2half_rn(acc[i]);
        if (pair)
            h = __float2half(silu_times(__half2float(h), __half2float(__float2half_rn(acc_up[i]))));
        else if (sg.bias)
            h = __float2half(__half2float(h) + __half2float(sg.bias[o]));
        ((__half *)sg.out)[at] = h;
    }
}

template <int COLS, int STAGES, int MODE>
__global__ void __launch_bounds__(CH_THREADS) ch_kernel(ch_params p)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    constexpr bool PAIR = MODE == CH_PAIR, ROPE = MODE == CH_ROPE;
    constexpr int LD = COLS + 8, STAGE = ch_rows(PAIR) * LD;
    extern __shared__ uint4 ch_smem[];
    __half *ring = (__half *)ch_smem;
    ch_seg sg = p.seg[0]; /* this block's matrix (unrolled: no indexing of the params) */
    int si = 0;
#pragma unroll
    for (int i = 1; i < VB_GEMM_CHAIN_MAX_SEGS; i++)
        if (i < p.n_segs && (int)blockIdx.x >= p.seg[i].first_block) {
            sg = p.seg[i];
            si = i;
        }
    const int o0 = ((int)blockIdx.x - sg.first_block) * 16;
    // CH_ROPE: a block takes 8 rotation pairs of one head, rows i0 .. i0+7
    // and their partners i0 + d/2 .. (d = head_dim), so the mma's rows g
    // and g + 8 are a pair and one lane holds both values of a rotation.
    // Each row's chain is the same whichever block computes it.
    const int pair_groups = ROPE ? p.head_dim / 16 : 1; /* blocks a head */
    const int head = o0 / 16 / pair_groups, i0 = (o0 / 16 % pair_groups) * 8;
    const int row0 = ROPE ? head * p.head_dim + i0 : o0;
    const int gap = ROPE ? p.head_dim / 2 - 8 : 0;
    const int n_stages = (p.n_in + COLS - 1) / COLS;
    if (threadIdx.x >= 32) {
        ch_load_all<COLS, STAGES, MODE>(ring, p, sg, row0, gap, n_stages);
        return;
    }

    pdl_wait(); /* out may still be read by the previous kernel */
    pdl_launch_dependents();
    const int lane = threadIdx.x;
    const int g = lane >> 2, c = lane & 3;
    const __half *a_row = ring + (lane & 15) * LD + (lane >> 4) * 8;
    const __half *b_row = ring + (ch_rows(PAIR) - VB_GEMM_CHAIN_MAX_T + g) * LD + 2 * c;
    // A: ldmatrix of the 16 weight rows (PAIR: up's 16 rows below, a
    // second chain, independent of the first). B: lane (g, c) reads token
    // g's columns 2c, 2c + 1 (b0) and 2c + 8, 2c + 9 (b1) of the k16 step
    // (bank 4g + c + 8j: conflict-free).
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f}, acc_up[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    // One k16 step of the chain (and of up's with PAIR) at column k of a slot.
    auto step = [&](int at) {
        unsigned a[4];
        mma_ldmatrix_x4(a, a_row + at);
        const unsigned b0 = *(const unsigned *)(b_row + at);
        const unsigned b1 = *(const unsigned *)(b_row + at + 8);
        mma_m16n8k16(acc, a, b0, b1);
        if (PAIR) {
            mma_ldmatrix_x4(a, a_row + 16 * LD + at);
            mma_m16n8k16(acc_up, a, b0, b1);
        }
    };
    for (int s = 0; s < n_stages; s++) {
        ch_stage_barrier();
        const int slot = (s % STAGES) * STAGE;
        const int steps = min(COLS, p.n_in - s * COLS) >> 4;
        // Whole stages straight through; only the last may be short. A test
        // on each step inside the unrolled loop compiled to a branch a step
        // in some tiles (the narrow one and the gate/up ones), each a
        // stall in the few warps of an SM.
        if (steps == COLS / 16) {
#pragma unroll
            for (int j = 0; j < COLS / 16; j++)
                step(slot + j * 16);
        } else {
            for (int j = 0; j < steps; j++) /* warp-uniform: n_in / 16 steps in all */
                step(slot + j * 16);
        }
    }
    // acc[i]: row o0 + g (+ 8 for i >= 2), token 2c + (i & 1). Each value
    // rounded to fp16 as a projection's output is, then as the separate
    // kernels take it: the bias as vb_add_bias_f16 adds it (in fp32,
    // rounded again), silu(gate) * up as vb_silu_gate_f16 makes it, RoPE
    // and the cache store as rope_kv.cu.
    if (ROPE) {
        const int half = p.head_dim >> 1, r0 = row0 + g, r1 = r0 + half;
#pragma unroll
        for (int j = 0; j < 2; j++) {
            const int t = 2 * c + j;
            if (t >= p.T)
                continue;
            __half x0 = __float2half_rn(acc[j]), x1 = __float2half_rn(acc[2 + j]);
            if (sg.bias) {
                x0 = __float2half(__half2float(x0) + __half2float(sg.bias[r0]));
                x1 = __float2half(__half2float(x1) + __half2float(sg.bias[r1]));
            }
            ch_rope_store(p, sg, si, head, i0 + g, t, x0, x1);
        }
    } else {
        ch_store(p, sg, o0, g, c, acc, acc_up, PAIR);
    }
#else
    __trap(); /* launched only on sm_80+ (vb_gemm_chain_supported) */
#endif
}

#define CH_WIDE_COLS 256
#define CH_WIDE_STAGES 4
#define CH_NARROW_COLS 128
#define CH_NARROW_STAGES 6
#define CH_DEEP_COLS 256
#define CH_DEEP_STAGES 8
// Every tile, instantiated here so that the sm_70 NVRTC check (which
// compiles the kernels without the host launchers) compiles them too.
template __global__ void ch_kernel<CH_NARROW_COLS, CH_NARROW_STAGES, CH_PLAIN>(ch_params);
template __global__ void ch_kernel<CH_WIDE_COLS, CH_WIDE_STAGES, CH_PLAIN>(ch_params);
template __global__ void ch_kernel<CH_NARROW_COLS, CH_NARROW_STAGES, CH_PAIR>(ch_params);
template __global__ void ch_kernel<CH_WIDE_COLS, CH_WIDE_STAGES, CH_PAIR>(ch_params);
template __global__ void ch_kernel<CH_NARROW_COLS, CH_NARROW_STAGES, CH_ROPE>(ch_params);
template __global__ void ch_kernel<CH_WIDE_COLS, CH_WIDE_STAGES, CH_ROPE>(ch_params);
template __global__ void ch_kernel<CH_DEEP_COLS, CH_DEEP_STAGES, CH_PLAIN>(ch_params);
template __global__ void ch_kernel<CH_DEEP_COLS, CH_DEEP_STAGES, CH_PAIR>(ch_params);
template __global__ void ch_kernel<CH_DEEP_COLS, CH_DEEP_STAGES, CH_ROPE>(ch_params);

#ifndef __CUDACC_RTC__ /* host launchers (the sm_70 NVRTC check compiles the kernel alone) */

extern "C" bool vb_gemm_chain_supported(int T, int n_in, int n_out, const void *x, const void *w)
{
    return T >= 1 && T <= VB_GEMM_CHAIN_MAX_T && n_in >= 16 && n_in % 16 == 0 && n_out >= 1 &&
           ((uintptr_t)x | (uintptr_t)w) % 16 == 0 &&
           vb_device_runs(80, (const void *)ch_kernel<CH_WIDE_COLS, CH_WIDE_STAGES, CH_PLAIN>);
}

// Shared bytes of a tile's ring.
static constexpr size_t ch_smem_bytes(int cols, int stages, bool pair)
{
    return (size_t)stages * ch_rows(pair) * (cols + 8) * sizeof(__half);
}

template <int COLS, int STAGES, int MODE>
static cudaError_t ch_launch(const ch_params &p, int blocks, cudaStream_t stream)
{
    const size_t smem = ch_smem_bytes(COLS, STAGES, MODE == CH_PAIR);
    static bool attr_set; /* per tile: most need more than 48 KB */
    if (!attr_set) {
        cudaError_t e = cudaFuncSetAttribute(ch_kernel<COLS, STAGES, MODE>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess)
            return e;
        attr_set = true;
    }
    return vb_launch_pdl(ch_kernel<COLS, STAGES, MODE>, dim3((unsigned)blocks), dim3(CH_THREADS),
                         smem, stream, p);
}

// The tile's launch: VB_CHAIN_TILE_AUTO is narrow for grids of four
// blocks an SM or more, wide for two to four, deep below. The deep tile
// where the device's shared memory a block holds it, else the wide one
// (the same bits: the deep gate/up ring, 165 KB, is more than an A100's
// 163 KB; sm_86 and sm_89 hold 99 KB, the plain deep ring exactly).
template <int MODE>
static cudaError_t ch_launch_tile(const ch_params &p, int blocks, int tile, cudaStream_t stream)
{
    static int sms, optin; /* the device's SM count and shared memory a block, read once */
    int dev = 0;
    if (!sms &&
        (cudaGetDevice(&dev) != cudaSuccess ||
         cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
         cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) !=
             cudaSuccess)) {
        sms = 0;
        return cudaGetLastError();
    }
    if (tile == VB_CHAIN_TILE_AUTO)
        tile = blocks >= 4 * sms   ? VB_CHAIN_TILE_NARROW
               : blocks > 2 * sms ? VB_CHAIN_TILE_WIDE
                                  : VB_CHAIN_TILE_DEEP;
    if (tile == VB_CHAIN_TILE_DEEP &&
        ch_smem_bytes(CH_DEEP_COLS, CH_DEEP_STAGES, MODE == CH_PAIR) > (size_t)optin)
        tile = VB_CHAIN_TILE_WIDE;
    if (tile == VB_CHAIN_TILE_NARROW)
        return ch_launch<CH_NARROW_COLS, CH_NARROW_STAGES, MODE>(p, blocks, stream);
    if (tile == VB_CHAIN_TILE_WIDE)
        return ch_launch<CH_WIDE_COLS, CH_WIDE_STAGES, MODE>(p, blocks, stream);
    if (tile == VB_CHAIN_TILE_DEEP)
        return ch_launch<CH_DEEP_COLS, CH_DEEP_STAGES, MODE>(p, blocks, stream);
    return cudaErrorInvalidValue;
}

static bool ch_step_ok(int T, int n_in)
{
    return T >= 0 && T <= VB_GEMM_CHAIN_MAX_T && n_in % 16 == 0 && n_in >= 16;
}

extern "C" cudaError_t vb_gemm_chain_multi(const vb_chain_seg *segs, int n_segs, int out_f32,
                                           const void *x, int T, int n_in, int tile,
                                           cudaStream_t stream)
{
    if (!ch_step_ok(T, n_in) || n_segs < 1 || n_segs > VB_GEMM_CHAIN_MAX_SEGS)
        return cudaErrorInvalidValue;
    if (T == 0)
        return cudaSuccess;
    ch_params p = {};
    p.x = (const __half *)x;
    p.n_segs = n_segs;
    p.T = T;
    p.n_in = n_in;
    p.out_f32 = out_f32;
    int blocks = 0;
    for (int i = 0; i < n_segs; i++) {
        if (segs[i].n_out < 1 || (out_f32 && segs[i].bias))
            return cudaErrorInvalidValue;
        p.seg[i] = {(const __half *)segs[i].w, (const __half *)segs[i].bias, segs[i].out,
                    segs[i].n_out, blocks};
        blocks += (segs[i].n_out + 15) / 16;
    }
    return ch_launch_tile<CH_PLAIN>(p, blocks, tile, stream);
}

extern "C" cudaError_t vb_gemm_chain(void *out, int out_f32, const void *x, const void *w, int T,
                                     int n_in, int n_out, cudaStream_t stream)
{
    const vb_chain_seg seg = {w, NULL, out, n_out};
    return vb_gemm_chain_multi(&seg, 1, out_f32, x, T, n_in, VB_CHAIN_TILE_AUTO, stream);
}

extern "C" cudaError_t vb_gemm_chain_qkv_rope(const vb_chain_seg segs[3], const void *x, int T,
                                              int n_in, const vb_gemv_rope *r, int tile,
                                              cudaStream_t stream)
{
    if (!segs || !r || !ch_step_ok(T, n_in) || r->head_dim <= 0 || r->head_dim % 16 ||
        r->kv_heads <= 0 || r->block_size <= 0 || !r->k_cache || !r->v_cache || !r->inv_freq ||
        !r->positions || !r->token_seq || !r->block_tables ||
        segs[1].n_out != r->kv_heads * r->head_dim || segs[2].n_out != segs[1].n_out)
        return cudaErrorInvalidValue;
    if (T == 0)
        return cudaSuccess;
    ch_params p = {};
    p.x = (const __half *)x;
    p.n_segs = 3;
    p.T = T;
    p.n_in = n_in;
    int blocks = 0;
    for (int i = 0; i < 3; i++) {
        if (segs[i].n_out <= 0 || segs[i].n_out % r->head_dim || !segs[i].out)
            return cudaErrorInvalidValue;
        p.seg[i] = {(const __half *)segs[i].w, (const __half *)segs[i].bias, segs[i].out,
                    segs[i].n_out, blocks};
        blocks += segs[i].n_out / 16;
    }
    p.inv_freq = r->inv_freq;
    p.rope_scale = r->cos_sin_scale;
    p.positions = r->positions;
    p.token_seq = r->token_seq;
    p.block_tables = r->block_tables;
    p.max_blocks = r->max_blocks;
    p.block_size = r->block_size;
    p.head_dim = r->head_dim;
    p.kv_heads = r->kv_heads;
    p.k_cache = (__half *)r->k_cache;
    p.v_cache = (__half *)r->v_cache;
    return ch_launch_tile<CH_ROPE>(p, blocks, tile, stream);
}

extern "C" cudaError_t vb_gemm_chain_silu(void *out, const void *x, const void *w_gate,
                                          const void *w_up, int T, int n_in, int n_out, int tile,
                                          cudaStream_t stream)
{
    if (!ch_step_ok(T, n_in) || n_out < 1)
        return cudaErrorInvalidValue;
    if (T == 0)
        return cudaSuccess;
    ch_params p = {};
    p.x = (const __half *)x;
    p.up_w = (const __half *)w_up;
    p.n_segs = 1;
    p.T = T;
    p.n_in = n_in;
    p.seg[0] = {(const __half *)w_gate, NULL, out, n_out, 0};
    return ch_launch_tile<CH_PAIR>(p, (n_out + 15) / 16, tile, stream);
}
#endif

// Paged decode attention on tensor cores (mma.sync m16n8k16, sm_80 and
// newer): the same work and results as attention_decode.cu (kept for V100
// and for the shapes and small steps this kernel does not take), for
// decode steps of many sequences.
//
// Why a second decode kernel: attention_decode.cu reads each K/V row once
// for the G query heads of its GQA group but then does G heads' dot
// products and G heads' P V updates in fp32 FMAs on CUDA cores: ~7 FLOP a
// byte at G = 7, with the shuffles of its row reductions on top. At ~150
// sequences of ~1,150 positions (Qwen2.5-7B shape) it ran at ~30 % of the
// copy bandwidth on an H200: bound by instructions, not memory. Here the G
// heads of a group are the M rows of one mma tile (padded to 16), so a
// 16-key tile costs 2 NF mma for Q K^T and 2 NF for P V (NF = head_dim /
// 16), whatever G is, and the kernel is left with the memory stream.
//
// Work item: a block takes one (token, kv head, split) and 4 warps; a
// split is VB_DECODE_MMA_SPLIT consecutive positions (fixed: the boundaries
// depend only on the positions, never on the grid's occupancy or the batch,
// so a token's result is the same bits whatever shares its step; issue
// #22). Warp w takes the split's 16-key tiles w, w + 4, ... and walks them
// with its own two-stage cp.async pipeline (no block barrier in the
// loop; the next tile's rows arrive while this one is computed): each tile's K and V rows are gathered through the block table
// into the warp's stage, rows padded to head_dim + 8 halves (distinct banks
// for ldmatrix), keys past the context zero-filled. Per tile the scores
// S = Q K^T stay in registers, the online softmax (fp32, log2 units) runs
// on them, P is rounded to fp16 as the A operand of O += P V (the sums add
// the rounded values, as attention_prefill_mma.cu). At the end the 4 warps
// merge their (max, sum, O) through shared memory in warp order.
//
// With one split (a block table of at most VB_DECODE_MMA_SPLIT positions)
// the block writes fp16 output; with more, fp32 partials (max, sum,
// unnormalised O) per (token, query head, split), and
// attention_decode_mma_reduce combines the splits the token's context
// reached, in split order. (The other way tried, the last block of a
// (token, kv head) to finish combining its splits, gave the same bits but
// was slower on an H200: one block walks every split after the others are
// done, a serial tail: 150 sequences x 1,150 positions 138 us against 116,
// 1 x 16,384 57 against 23.)
// One split's result goes through the reduce unchanged (weight exp2(0) =
// 1, 0 + x, 1 / sum as the direct path), so a table width that gives one
// split or several gives the same bits.
//
// The grid is (T, kv_heads, splits) with splits from the block-table width
// only, so a CUDA graph recorded for a decode bucket stays valid; blocks
// past their token's context return at once (and are not counted). The
// partials of T tokens need T * heads * splits * (head_dim + 2) floats;
// the launcher runs chunks of tokens that fit the workspace it is given,
// one after the other.
//
// Bytes: K and V read once per (token, kv head): 4 * ctx * head_dim.
// FLOPs issued: 4 * ctx * 16 * head_dim per (token, kv head) (the padded
// M), of which 4 * ctx * G * head_dim are useful.
//
// The int8 KV cache (--kv-cache-dtype int8, kernels/kv_int8.cuh): the KV8
// instantiation gathers a tile's int8 rows and their fp32 scales with
// cp.async into the warp's stage instead (half the bytes of fp16 rows),
// and once they have arrived the warp dequantizes them (kv8_dequant8) into
// one fp16 tile laid out as the fp16 stage; from there on it runs the fp16
// kernel's code on it, so its output is the fp16 kernel's on the cache
// dequantized to fp16, bit for bit. Shared memory a warp: two stages of
// 16 x 2 x (head_dim + 4) bytes and one fp16 tile, less than the fp16
// kernel's two fp16 stages.
//
// head_dim a multiple of 16, at most 128, or 256; G <= 16. sm_70 has no
// m16n8k16: under its compiler the kernel body is a trap and the host
// never launches it there (vb_attention_decode_mma_supported).
#include <cuda_fp16.h>

#include "kernels.h"
#include "kv_int8.cuh"
#include "mma_sm80.cuh"
#include "mma_softmax.cuh"
#include "pdl.cuh"

#ifndef VB_DECODE_MMA_SPLIT /* kernels.h has them, but not for NVRTC */
#define VB_DECODE_MMA_SPLIT 512
#define VB_DECODE_MMA_MAX_SPLITS 512
#endif
#define DMM_SPLIT VB_DECODE_MMA_SPLIT /* positions a split */
#define DMM_WARPS 4
#define DMM_KT 16         /* keys a warp tile */
#define DMM_MAX_GROUP 16  /* query heads of a kv head: the mma's M */
#define DMM_NEG_INF __int_as_float(0xff800000)
#define DMM_LOG2E 1.4426950408889634f
#define DMM_REDUCE_THREADS 128

// Stages of a warp's pipeline. Two where the grid fills the GPU: three
// blocks fit an SM at head_dim 128, and on an H200 that beat three stages
// at two blocks an SM (150 sequences x 1,150 positions 114 us against 127;
// 4,096 positions 349 against 373) and four at one (181 us). Where the
// grid has no more blocks than the GPU has SMs (batch 1: one block a kv
// head and split, 4 blocks for a 7B model's 384-position row), each block
// has an SM to itself and the warps' tiles arrive one round trip after
// another: DMM_DEEP_STAGES then put up to five tiles a warp in flight at
// once (and before the PDL wait), so a split's keys arrive in about one
// round trip. The stage count only says how far ahead the loads run: the
// tiles, their order and every sum are the same, so both give the same
// bits.
#define DMM_STAGES 2
#define DMM_DEEP_STAGES 6

// stages x warps x (K, V) x 16 rows x (head_dim + 8) halves: at head_dim
// 128, 70 KB at 2 stages (three blocks an SM on H100 / H200, two on A100)
// and 209 KB at 6; 37 KB at 64; 135 KB at 256
__host__ __device__ static inline size_t dmm_shared_bytes(int hd, int stages)
{
    return (size_t)stages * DMM_WARPS * 2 * DMM_KT * (hd + 8) * 2;
}

// The int8 cache's stage: (K, V) x 16 rows x head_dim bytes, then 16 K and
// 16 V scales.
__host__ __device__ static inline size_t dmm_stage8_bytes(int hd)
{
    return (size_t)2 * DMM_KT * hd + 2 * DMM_KT * sizeof(float);
}

// For the int8 cache, per warp: its stages, then one fp16 (K, V) tile:
// 67 KB at head_dim 128 and 2 stages, always less than dmm_shared_bytes
// at the same stages (so the fp16 kernel's shared-memory check covers
// both).
__host__ __device__ static inline size_t dmm_shared8_bytes(int hd, int stages)
{
    return DMM_WARPS * ((size_t)stages * dmm_stage8_bytes(hd) +
                        (size_t)2 * DMM_KT * (hd + 8) * 2);
}

// The split's keys first .. last - 1 (last exclusive: the split's end or
// the token's own position + 1), and how many of its DMM_KT-key tiles
// warp takes (tiles warp, warp + DMM_WARPS, ...). Computed where it is
// used, before and after the PDL wait, rather than kept live across it.
__device__ __forceinline__ int dmm_warp_tiles(int first, int pos, int warp, int &last)
{
    last = min(first + DMM_SPLIT, pos + 1);
    const int n_tiles = (last - first + DMM_KT - 1) / DMM_KT;
    return n_tiles > warp ? (n_tiles - warp + DMM_WARPS - 1) / DMM_WARPS : 0;
}

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
// One warp gathers the K and V rows of keys j0 .. j0 + 15 into its stage
// (sk, sv) and commits them as one cp.async group: 16 rows of head_dim / 8
// chunks of 16 bytes, NF chunks of K and NF of V a lane. Keys at or past
// `last` are zero-filled (their scores are masked; zeros keep 0 * V finite).
template <int NF>
__device__ __forceinline__ void dmm_gather(__half *sk, __half *sv, int j0, int last,
                                           const __half *k_cache, const __half *v_cache,
                                           const int *table, int block_size, int bs_shift,
                                           int kv_heads, int kvh, int lane)
{
    constexpr int HD = NF * 16, LD = HD + 8, CPR = HD / 8;
#pragma unroll
    for (int c = 0; c < NF; c++) {
        const int idx = lane + 32 * c, r = idx / CPR, d8 = idx % CPR, j = j0 + r;
        size_t off = 0;
        int bytes = 0;
        if (j < last) {
            const int bi = bs_shift >= 0 ? j >> bs_shift : j / block_size;
            off = (((size_t)table[bi] * block_size + (j - bi * block_size)) * kv_heads + kvh) * HD +
                  (size_t)d8 * 8;
            bytes = 16;
        }
        mma_cp_async16(sk + r * LD + d8 * 8, k_cache + off, bytes);
        mma_cp_async16(sv + r * LD + d8 * 8, v_cache + off, bytes);
    }
    asm volatile("cp.async.commit_group;\n" ::);
}

// dmm_gather for the int8 cache: the 16 rows' int8 values (NF 16-byte
// chunks a row) into the stage's K and V rows, and their scales into its
// 32 floats (lane r < 16: K's of row r; lane 16 + r: V's), one cp.async
// group. Keys at or past `last` are zeros with scale 0.
template <int NF>
__device__ __forceinline__ void dmm_gather8(unsigned char *stage, int j0, int last,
                                            const unsigned char *k_cache,
                                            const unsigned char *v_cache, const int *table,
                                            int block_size, int bs_shift, int kv_heads, int kvh,
                                            int lane)
{
    constexpr int HD = NF * 16;
#pragma unroll
    for (int idx = lane; idx < DMM_KT * NF; idx += 32) {
        const int r = idx / NF, c16 = idx % NF, j = j0 + r;
        size_t off = 0;
        int bytes = 0;
        if (j < last) {
            const int bi = bs_shift >= 0 ? j >> bs_shift : j / block_size;
            off = kv8_values_at(table[bi], j - bi * block_size, kvh, block_size, kv_heads, HD) +
                  (size_t)c16 * 16;
            bytes = 16;
        }
        mma_cp_async16(stage + r * HD + c16 * 16, k_cache + off, bytes);
        mma_cp_async16(stage + (DMM_KT + r) * HD + c16 * 16, v_cache + off, bytes);
    }
    {
        const int r = lane & 15, j = j0 + r;
        size_t off = 0;
        int bytes = 0;
        if (j < last) {
            const int bi = bs_shift >= 0 ? j >> bs_shift : j / block_size;
            off = kv8_scale_at(table[bi], j - bi * block_size, kvh, block_size, kv_heads, HD);
            bytes = 4;
        }
        mma_cp_async4(stage + 2 * DMM_KT * HD + lane * sizeof(float),
                      (lane < 16 ? k_cache : v_cache) + off, bytes);
    }
    asm volatile("cp.async.commit_group;\n" ::);
}

// A stage of int8 rows (its copies complete and visible to the warp) into
// the warp's fp16 tile (sk, sv: 16 rows of head_dim + 8 halves, as an fp16
// stage), 8 values a lane and step.
template <int NF>
__device__ __forceinline__ void dmm_dequant(__half *sk, __half *sv, const unsigned char *stage,
                                            int lane)
{
    constexpr int HD = NF * 16, LD = HD + 8, CPR = HD / 8;
    const float *scale = (const float *)(stage + 2 * DMM_KT * HD);
#pragma unroll
    for (int c = 0; c < NF; c++) {
        const int idx = lane + 32 * c, r = idx / CPR, d8 = idx % CPR;
        const uint2 kq = *(const uint2 *)(stage + r * HD + d8 * 8);
        const uint2 vq = *(const uint2 *)(stage + (DMM_KT + r) * HD + d8 * 8);
        *(uint4 *)(sk + r * LD + d8 * 8) = kv8_dequant8(kq, scale[r]);
        *(uint4 *)(sv + r * LD + d8 * 8) = kv8_dequant8(vq, scale[DMM_KT + r]);
    }
}
#endif

// NF = head_dim / 16; KV8: the cache is int8 (kv_int8.cuh), else fp16;
// STAGES: DMM_STAGES or DMM_DEEP_STAGES (same bits).
// Under PDL (pdl.cuh) the block reads the step's indices and starts the
// gather of each warp's first tile where all its rows precede the token's
// own (written by earlier steps: a decode token is its sequence's only
// token in the step, and prefix-cache blocks are published after the step
// that computed them), then waits for the previous kernel (q and the
// token's own K/V row are its output) before any other read or write.
template <int NF, bool KV8, int STAGES>
__global__ void __launch_bounds__(32 * DMM_WARPS)
    attention_decode_mma_kernel(__half *out, float *part, const __half *q,
                                const void *k_cache_,
                                const void *v_cache_, const int *token_list,
                                const int *positions, const int *token_seq,
                                const int *block_tables, int max_blocks, int heads, int kv_heads,
                                int block_size, int bs_shift, float scale_log2)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    constexpr int HD = NF * 16, LD = HD + 8;
    constexpr int TILE = DMM_KT * LD; /* halves of one stage's K (or V) rows */
    constexpr size_t STAGE8 = 2 * DMM_KT * HD + 2 * DMM_KT * sizeof(float); /* dmm_stage8_bytes */
    extern __shared__ __align__(16) unsigned char smem_raw[];
    const __half *k_cache = (const __half *)k_cache_, *v_cache = (const __half *)v_cache_;
    const unsigned char *k8 = (const unsigned char *)k_cache_;
    const unsigned char *v8 = (const unsigned char *)v_cache_;
    __shared__ float s_m[DMM_WARPS][DMM_MAX_GROUP], s_l[DMM_WARPS][DMM_MAX_GROUP];
    __shared__ float s_f[DMM_WARPS][DMM_MAX_GROUP], s_mall[DMM_MAX_GROUP], s_lall[DMM_MAX_GROUP];

    const int i = blockIdx.x, kvh = blockIdx.y, split = blockIdx.z, splits = gridDim.z;
    const int G = heads / kv_heads;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, tq = lane & 3; /* fragment row group, thread in group */
    const int t = token_list[i];
    const int pos = positions[t], seq = token_seq[t];
    const int first = split * DMM_SPLIT;
    const size_t row0 = (size_t)t * heads + (size_t)kvh * G; /* the group's first query head */
    const size_t part_stride = (size_t)HD + 2;
    const int *table = block_tables + (size_t)(seq < 0 ? 0 : seq) * max_blocks;
    __half *wbase = (__half *)smem_raw + (size_t)warp * STAGES * 2 * TILE;
    // int8: the warp's stages, then its fp16 tile (fk, fv)
    unsigned char *wbase8 = smem_raw + (size_t)warp * (STAGES * STAGE8 + 2 * TILE * 2);
    __half *fk = (__half *)(wbase8 + STAGES * STAGE8), *fv = fk + TILE;
    // Before the wait: this warp's first tiles whose rows all precede the
    // token's own (pdl.cuh: rows earlier steps wrote), each its own
    // cp.async group in tile order, as the prologue below would issue them.
    int early = 0;
    if (seq >= 0 && first <= pos) {
        int last0;
        const int mine0 = dmm_warp_tiles(first, pos, warp, last0);
#pragma unroll
        for (int s = 0; s < STAGES - 1; s++) {
            const int j0 = first + (warp + s * DMM_WARPS) * DMM_KT;
            if (s >= mine0 || j0 + DMM_KT > pos)
                break;
            if (KV8)
                dmm_gather8<NF>(wbase8 + s * STAGE8, j0, last0, k8, v8, table, block_size,
                                bs_shift, kv_heads, kvh, lane);
            else
                dmm_gather<NF>(wbase + s * 2 * TILE, wbase + s * 2 * TILE + TILE, j0, last0,
                               k_cache, v_cache, table, block_size, bs_shift, kv_heads, kvh, lane);
            early = s + 1;
        }
    }
    pdl_wait();
    pdl_launch_dependents();
    if (seq < 0) {
        /* a padding row (no sequence): zeros, or one split with no mass */
        if (split == 0) {
            if (splits == 1) {
                for (int e = threadIdx.x; e < G * HD; e += blockDim.x)
                    out[row0 * HD + e] = __float2half(0.0f);
            } else if ((int)threadIdx.x < G) {
                float *p = part + (((size_t)i * heads + (size_t)kvh * G + threadIdx.x) * splits) *
                                      part_stride;
                p[0] = DMM_NEG_INF;
                p[1] = 0.0f;
            }
        }
        return;
    }
    if (first > pos)
        return; /* past this token's context: the reduce reads nothing of this split */
    int last;
    const int my_tiles = dmm_warp_tiles(first, pos, warp, last);

    // the first STAGES - 1 tiles of this warp in flight, after those issued
    // before the wait (an empty group where it has fewer, so the group
    // count per iteration stays fixed)
#pragma unroll
    for (int s = 0; s < STAGES - 1; s++) {
        if (s < early)
            continue;
        if (s < my_tiles && KV8)
            dmm_gather8<NF>(wbase8 + s * STAGE8, first + (warp + s * DMM_WARPS) * DMM_KT, last,
                            k8, v8, table, block_size, bs_shift, kv_heads, kvh, lane);
        else if (s < my_tiles)
            dmm_gather<NF>(wbase + s * 2 * TILE, wbase + s * 2 * TILE + TILE,
                           first + (warp + s * DMM_WARPS) * DMM_KT, last, k_cache, v_cache, table,
                           block_size, bs_shift, kv_heads, kvh, lane);
        else
            asm volatile("cp.async.commit_group;\n" ::);
    }

    // Q rows g and g + 8 (heads of the group; rows >= G zero) as A
    // fragments, one per 16 columns of head_dim
    const bool lo_ok = g < G, hi_ok = g + 8 < G;
    unsigned qa[NF][4];
    {
        const unsigned *qlo = (const unsigned *)(q + (row0 + g) * HD);
        const unsigned *qhi = (const unsigned *)(q + (row0 + g + 8) * HD);
#pragma unroll
        for (int kk = 0; kk < NF; kk++) {
            qa[kk][0] = lo_ok ? qlo[kk * 8 + tq] : 0u;
            qa[kk][1] = hi_ok ? qhi[kk * 8 + tq] : 0u;
            qa[kk][2] = lo_ok ? qlo[kk * 8 + 4 + tq] : 0u;
            qa[kk][3] = hi_ok ? qhi[kk * 8 + 4 + tq] : 0u;
        }
    }
    float o[2 * NF][4];
#pragma unroll
    for (int n = 0; n < 2 * NF; n++)
        o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    // running max (log2 units) and this lane's part of the row sums
    float m_lo = DMM_NEG_INF, m_hi = DMM_NEG_INF, l_lo = 0.0f, l_hi = 0.0f;
    const int mat = lane >> 3, mrow = lane & 7; /* ldmatrix: lane -> row mrow of matrix mat */

    for (int k = 0; k < my_tiles; k++) {
        // tile k + STAGES - 1 goes into the stage tile k - 1 used: every
        // lane has left it (the __syncwarp at the end of the last iteration)
        const int kn = k + STAGES - 1;
        if (kn < my_tiles && KV8)
            dmm_gather8<NF>(wbase8 + (kn % STAGES) * STAGE8,
                            first + (warp + kn * DMM_WARPS) * DMM_KT, last, k8, v8, table,
                            block_size, bs_shift, kv_heads, kvh, lane);
        else if (kn < my_tiles)
            dmm_gather<NF>(wbase + (kn % STAGES) * 2 * TILE, wbase + (kn % STAGES) * 2 * TILE + TILE,
                           first + (warp + kn * DMM_WARPS) * DMM_KT, last, k_cache, v_cache, table,
                           block_size, bs_shift, kv_heads, kvh, lane);
        else
            asm volatile("cp.async.commit_group;\n" ::);
        asm volatile("cp.async.wait_group %0;\n" ::"n"(STAGES - 1));
        __syncwarp(); /* tile k's rows are in shared memory for every lane */
        const __half *sk = wbase + (k % STAGES) * 2 * TILE, *sv = sk + TILE;
        if (KV8) {
            // the fp16 tile: the last iteration's reads of it are done (the
            // __syncwarp at its end)
            dmm_dequant<NF>(fk, fv, wbase8 + (k % STAGES) * STAGE8, lane);
            __syncwarp();
            sk = fk;
            sv = fv;
        }
        const int j0 = first + (warp + k * DMM_WARPS) * DMM_KT;

        // S = Q K^T: ldmatrix x4 matrices keys +0 / +8 by mat / 2, head_dim
        // columns +0 / +8 by mat % 2: the B operands of key tiles 0 and 1
        float sc[2][4];
#pragma unroll
        for (int n = 0; n < 2; n++)
            sc[n][0] = sc[n][1] = sc[n][2] = sc[n][3] = 0.0f;
        const __half *kb = sk + (mrow + 8 * (mat >> 1)) * LD + 8 * (mat & 1);
#pragma unroll
        for (int kk = 0; kk < NF; kk++) {
            unsigned b[4];
            mma_ldmatrix_x4(b, kb + kk * 16);
            mma_m16n8k16(sc[0], qa[kk], b[0], b[1]);
            mma_m16n8k16(sc[1], qa[kk], b[2], b[3]);
        }

        // Online softmax (mma_softmax.cuh). Element e of score tile n is
        // row g (e < 2) or g + 8, key j0 + 8 n + 2 tq + (e & 1). The scaling
        // is a rounded multiply of its own (__fmul_rn is never fused into
        // the softmax's subtraction), as in the prefill kernel.
#pragma unroll
        for (int n = 0; n < 2; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int key = j0 + 8 * n + 2 * tq + (e & 1);
                const bool valid = key < last && (e < 2 ? lo_ok : hi_ok);
                sc[n][e] = valid ? __fmul_rn(sc[n][e], scale_log2) : DMM_NEG_INF;
            }
        unsigned pa[1][4];
        mma_softmax_step(sc, m_lo, m_hi, l_lo, l_hi, o, pa);

        // O += P V: ldmatrix x4 .trans matrices keys +0 / +8 by mat % 2,
        // head_dim columns +0 / +8 by mat / 2: the B operands of the
        // 8-column O tiles 2 dn and 2 dn + 1
        const __half *vb = sv + (mrow + 8 * (mat & 1)) * LD + 8 * (mat >> 1);
#pragma unroll
        for (int dn = 0; dn < NF; dn++) {
            unsigned b[4];
            mma_ldmatrix_x4_trans(b, vb + dn * 16);
            mma_m16n8k16(o[2 * dn], pa[0], b[0], b[1]);
            mma_m16n8k16(o[2 * dn + 1], pa[0], b[2], b[3]);
        }
        __syncwarp(); /* every lane has read this stage before it is refilled */
    }
    asm volatile("cp.async.wait_group 0;\n" ::); /* only empty groups can be left */
#pragma unroll
    for (int off = 1; off <= 2; off <<= 1) {
        l_lo += __shfl_xor_sync(0xffffffffu, l_lo, off);
        l_hi += __shfl_xor_sync(0xffffffffu, l_hi, off);
    }

    // The warps merge in warp order through shared memory (the stages,
    // free once every warp is past its loop): s_o[warp][row][head_dim].
    __syncthreads();
    float *s_o = (float *)smem_raw;
    if (tq == 0) {
        if (lo_ok) {
            s_m[warp][g] = m_lo;
            s_l[warp][g] = l_lo;
        }
        if (hi_ok) {
            s_m[warp][g + 8] = m_hi;
            s_l[warp][g + 8] = l_hi;
        }
    }
#pragma unroll
    for (int n = 0; n < 2 * NF; n++) {
        if (lo_ok)
            *(float2 *)&s_o[((size_t)warp * G + g) * HD + 8 * n + 2 * tq] =
                make_float2(o[n][0], o[n][1]);
        if (hi_ok)
            *(float2 *)&s_o[((size_t)warp * G + g + 8) * HD + 8 * n + 2 * tq] =
                make_float2(o[n][2], o[n][3]);
    }
    __syncthreads();
    if ((int)threadIdx.x < G) {
        const int r = threadIdx.x;
        float m_all = DMM_NEG_INF, l_all = 0.0f;
        for (int w = 0; w < DMM_WARPS; w++)
            m_all = fmaxf(m_all, s_m[w][r]);
        for (int w = 0; w < DMM_WARPS; w++) {
            // a warp that saw no key has m = -inf, l = 0: weight 0
            const float f = s_l[w][r] > 0.0f ? exp2f(s_m[w][r] - m_all) : 0.0f;
            s_f[w][r] = f;
            l_all += s_l[w][r] * f;
        }
        s_mall[r] = m_all;
        s_lall[r] = l_all;
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < G * HD; idx += blockDim.x) {
        const int r = idx / HD, e = idx % HD;
        float v = 0.0f;
        for (int w = 0; w < DMM_WARPS; w++)
            v += s_o[((size_t)w * G + r) * HD + e] * s_f[w][r];
        if (splits == 1) {
            // the reduce's arithmetic for one split: v * (1 / sum)
            out[(row0 + r) * HD + e] = __float2half(v * (1.0f / s_lall[r]));
        } else {
            float *p = part + (((size_t)i * heads + (size_t)kvh * G + r) * splits + split) *
                                  part_stride;
            if (e == 0) {
                p[0] = s_mall[r];
                p[1] = s_lall[r];
            }
            p[2 + e] = v;
        }
    }
#else
    __trap(); /* the host launches this kernel only where it was built for sm_80+ */
#endif
}

#define DMM_INSTANTIATE(nf, kv8, st)                                                          \
    template __global__ void attention_decode_mma_kernel<nf, kv8, st>(                        \
        __half *, float *, const __half *, const void *, const void *, const int *,           \
        const int *, const int *, const int *, int, int, int, int, int, float);
#define DMM_INSTANTIATE2(nf)                                                                  \
    DMM_INSTANTIATE(nf, false, DMM_STAGES) DMM_INSTANTIATE(nf, true, DMM_STAGES)              \
    DMM_INSTANTIATE(nf, false, DMM_DEEP_STAGES) DMM_INSTANTIATE(nf, true, DMM_DEEP_STAGES)
DMM_INSTANTIATE2(1) DMM_INSTANTIATE2(2) DMM_INSTANTIATE2(3) DMM_INSTANTIATE2(4)
DMM_INSTANTIATE2(5) DMM_INSTANTIATE2(6) DMM_INSTANTIATE2(7) DMM_INSTANTIATE2(8)
DMM_INSTANTIATE2(16)
#undef DMM_INSTANTIATE2
#undef DMM_INSTANTIATE

// Grid (T, heads), DMM_REDUCE_THREADS threads: combines the partials of
// the splits one (token, query head) reached, by their log-sum-exp
// weights, in a fixed order that depends only on the token's position
// (sums in split order; the maximum is exact in any order), so the result
// does not depend on the step it ran in. A split with no mass (a padding
// row) weighs 0 and its O is not read.
__global__ void __launch_bounds__(DMM_REDUCE_THREADS)
    attention_decode_mma_reduce(__half *out, const float *part, const int *token_list,
                                const int *positions, int heads, int head_dim, int splits)
{
    __shared__ float s_w[VB_DECODE_MMA_MAX_SPLITS];
    __shared__ float s_max[DMM_REDUCE_THREADS / 32];
    __shared__ float s_inv;
    pdl_wait(); /* the partials are the previous kernel's output */
    pdl_launch_dependents();
    const int i = blockIdx.x, h = blockIdx.y, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int t = token_list[i];
    const int pos = max(positions[t], 0);
    const int n_used = min(splits, pos / DMM_SPLIT + 1);
    const size_t stride = (size_t)head_dim + 2;
    const float *p = part + ((size_t)i * heads + h) * splits * stride;
    float mx = DMM_NEG_INF;
    for (int s = threadIdx.x; s < n_used; s += blockDim.x)
        if (p[s * stride + 1] > 0.0f)
            mx = fmaxf(mx, p[s * stride]);
    for (int off = 16; off > 0; off >>= 1)
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    if (lane == 0)
        s_max[warp] = mx;
    __syncthreads();
    mx = s_max[0];
    for (int w = 1; w < DMM_REDUCE_THREADS / 32; w++)
        mx = fmaxf(mx, s_max[w]);
    for (int s = threadIdx.x; s < n_used; s += blockDim.x) {
        const float l = p[s * stride + 1];
        s_w[s] = l > 0.0f ? exp2f(p[s * stride] - mx) : 0.0f;
    }
    __syncthreads();
    if (warp == 0) {
        // lane k sums splits k, k + 32, ... in order, then a fixed tree
        float ls = 0.0f;
        for (int s = lane; s < n_used; s += 32)
            ls += p[s * stride + 1] * s_w[s];
        for (int off = 16; off > 0; off >>= 1)
            ls += __shfl_xor_sync(0xffffffffu, ls, off);
        if (lane == 0)
            s_inv = ls > 0.0f ? 1.0f / ls : 0.0f; /* 0 only for a padding row: zeros */
    }
    __syncthreads();
    for (int e = threadIdx.x; e < head_dim; e += blockDim.x) {
        float v = 0.0f;
        for (int s = 0; s < n_used; s++) {
            const float w = s_w[s];
            if (w != 0.0f)
                v += p[s * stride + 2 + e] * w;
        }
        out[((size_t)t * heads + h) * head_dim + e] = __float2half(v * s_inv);
    }
}

#ifndef __CUDACC_RTC__
// The kernel's code for this device was built from sm_80+ source (a build
// for sm_75 only would run its trap body here through the PTX JIT).
static bool dmm_code_present(void)
{
    static int cached = -1;
    if (cached < 0) {
        cudaFuncAttributes attr;
        cached = cudaFuncGetAttributes(&attr, attention_decode_mma_kernel<8, false, DMM_STAGES>) ==
                     cudaSuccess &&
                 attr.ptxVersion >= 80;
        (void)cudaGetLastError(); /* a failed query must not poison later checks */
    }
    return cached == 1;
}

static bool dmm_head_dim_ok(int head_dim)
{
    return head_dim > 0 && head_dim % 16 == 0 && (head_dim <= 128 || head_dim == 256);
}

extern "C" int vb_attention_decode_mma_splits(int max_ctx)
{
    int s = (max_ctx + DMM_SPLIT - 1) / DMM_SPLIT;
    return s < 1 ? 1 : s;
}

extern "C" bool vb_attention_decode_mma_supported(int heads, int kv_heads, int head_dim)
{
    if (!dmm_head_dim_ok(head_dim) || kv_heads <= 0 || heads % kv_heads ||
        heads / kv_heads > DMM_MAX_GROUP)
        return false;
    vb_device_caps caps;
    return vb_device_caps_get(&caps) == cudaSuccess && caps.major >= 8 &&
           dmm_shared_bytes(head_dim, DMM_STAGES) <= (size_t)caps.smem_optin && dmm_code_present();
}

extern "C" size_t vb_attention_decode_mma_token_bytes(int heads, int head_dim, int splits)
{
    return splits <= 1 ? 0 : (size_t)heads * splits * ((size_t)head_dim + 2) * sizeof(float);
}

static int force_stages; /* vb_attention_decode_mma_stages; 0: the launcher's rule */

extern "C" void vb_attention_decode_mma_stages(int stages)
{
    force_stages = stages;
}

// Whether a launch of T tokens takes DMM_DEEP_STAGES (see DMM_STAGES):
// forced by vb_attention_decode_mma_stages, else where its blocks are no
// more than the GPU's SMs; either way only where the deep stages' shared
// memory fits. -1: a stage count the kernel has no variant for.
static int dmm_deep(vb_device_caps caps, long long blocks, int head_dim)
{
    const bool fits = dmm_shared_bytes(head_dim, DMM_DEEP_STAGES) <= (size_t)caps.smem_optin;
    if (force_stages == DMM_STAGES)
        return 0;
    if (force_stages == DMM_DEEP_STAGES)
        return fits;
    if (force_stages != 0)
        return -1;
    return fits && blocks <= caps.n_sm;
}

extern "C" bool vb_attention_decode_mma_deep(int T, int kv_heads, int head_dim, int splits)
{
    vb_device_caps caps;
    return vb_device_caps_get(&caps) == cudaSuccess &&
           dmm_deep(caps, (long long)T * kv_heads * splits, head_dim) == 1;
}

// The fp16 and int8 entry points below; kv8: the cache is int8.
static cudaError_t decode_mma_launch(uint16_t *out, float *d_workspace, size_t workspace_bytes,
                                     const uint16_t *q, const void *k_cache,
                                     const void *v_cache, const int *d_token_list,
                                     const int *d_positions, const int *d_token_seq,
                                     const int *d_block_tables, int max_blocks, int T, int heads,
                                     int kv_heads, int head_dim, int block_size, float scale,
                                     bool kv8, cudaStream_t stream)
{
    if (T == 0)
        return cudaSuccess;
    if (!dmm_head_dim_ok(head_dim) || kv_heads <= 0 || heads % kv_heads ||
        heads / kv_heads > DMM_MAX_GROUP || block_size <= 0 || max_blocks <= 0)
        return cudaErrorInvalidValue;
    /* int8 rows by 16-byte copies: every block 16-byte aligned (kv_int8.cuh) */
    if (kv8 && kv8_block_bytes(block_size, kv_heads, head_dim) % 16)
        return cudaErrorInvalidValue;
    const int splits = vb_attention_decode_mma_splits(max_blocks * block_size);
    if (splits > VB_DECODE_MMA_MAX_SPLITS)
        return cudaErrorInvalidValue;
    // workspace: the partials of a chunk of tokens
    const size_t per_token = vb_attention_decode_mma_token_bytes(heads, head_dim, splits);
    float *part = d_workspace;
    int chunk = T;
    if (per_token > 0) {
        size_t fit = d_workspace ? workspace_bytes / per_token : 0;
        if (fit < 1)
            return cudaErrorInvalidValue;
        chunk = fit < (size_t)T ? (int)fit : T;
    }
    // DMM_DEEP_STAGES where every block of a launch has an SM to itself and
    // its shared memory fits (see DMM_STAGES); the same bits either way
    vb_device_caps caps;
    cudaError_t e = vb_device_caps_get(&caps);
    if (e != cudaSuccess)
        return e;
    const int deep = dmm_deep(caps, (long long)(T < chunk ? T : chunk) * kv_heads * splits,
                              head_dim);
    if (deep < 0)
        return cudaErrorInvalidValue;
    const int stages = deep ? DMM_DEEP_STAGES : DMM_STAGES;
    const size_t smem =
        kv8 ? dmm_shared8_bytes(head_dim, stages) : dmm_shared_bytes(head_dim, stages);
    const float scale_log2 = scale * DMM_LOG2E;
    int bs_shift = -1; /* block sizes of 2^k: shifts instead of divisions */
    for (int k = 0; k < 31; k++)
        if (block_size == 1 << k)
            bs_shift = k;
    void (*kernel)(__half *, float *, const __half *, const void *, const void *, const int *,
                   const int *, const int *, const int *, int, int, int, int, int, float) = NULL;
#define DMM_CASE(nf)                                                                          \
    case nf:                                                                                  \
        kernel = deep ? (kv8 ? attention_decode_mma_kernel<nf, true, DMM_DEEP_STAGES>         \
                             : attention_decode_mma_kernel<nf, false, DMM_DEEP_STAGES>)       \
                      : (kv8 ? attention_decode_mma_kernel<nf, true, DMM_STAGES>              \
                             : attention_decode_mma_kernel<nf, false, DMM_STAGES>);           \
        break;
    switch (head_dim / 16) {
        DMM_CASE(1) DMM_CASE(2) DMM_CASE(3) DMM_CASE(4) DMM_CASE(5) DMM_CASE(6) DMM_CASE(7)
        DMM_CASE(8) DMM_CASE(16)
    default: return cudaErrorInvalidValue;
    }
#undef DMM_CASE
    e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e != cudaSuccess)
        return e;
    // Token chunks whose partials fit the workspace, one after the other
    // (the next chunk's blocks write partials only after their pdl_wait,
    // i.e. after the reduce before them has finished).
    for (int t0 = 0; t0 < T; t0 += chunk) {
        const int n = T - t0 < chunk ? T - t0 : chunk;
        e = vb_launch_pdl(kernel, dim3((unsigned)n, (unsigned)kv_heads, (unsigned)splits),
                          dim3(32 * DMM_WARPS), smem, stream, (__half *)out, part,
                          (const __half *)q, k_cache, v_cache,
                          d_token_list + t0, d_positions, d_token_seq, d_block_tables, max_blocks,
                          heads, kv_heads, block_size, bs_shift, scale_log2);
        if (e != cudaSuccess)
            return e;
        if (splits == 1)
            continue;
        e = vb_launch_pdl(attention_decode_mma_reduce, dim3((unsigned)n, (unsigned)heads),
                          dim3(DMM_REDUCE_THREADS), 0, stream, (__half *)out, (const float *)part,
                          d_token_list + t0, d_positions, heads, head_dim, splits);
        if (e != cudaSuccess)
            return e;
    }
    return cudaGetLastError();
}

extern "C" cudaError_t vb_attention_decode_mma_f16(
    uint16_t *out, float *d_workspace, size_t workspace_bytes, const uint16_t *q,
    const uint16_t *k_cache, const uint16_t *v_cache, const int *d_token_list,
    const int *d_positions, const int *d_token_seq, const int *d_block_tables, int max_blocks,
    int T, int heads, int kv_heads, int head_dim, int block_size, float scale,
    cudaStream_t stream)
{
    return decode_mma_launch(out, d_workspace, workspace_bytes, q, k_cache, v_cache,
                             d_token_list, d_positions, d_token_seq, d_block_tables, max_blocks,
                             T, heads, kv_heads, head_dim, block_size, scale, false, stream);
}

extern "C" cudaError_t vb_attention_decode_mma_kv8(
    uint16_t *out, float *d_workspace, size_t workspace_bytes, const uint16_t *q,
    const void *k_cache, const void *v_cache, const int *d_token_list, const int *d_positions,
    const int *d_token_seq, const int *d_block_tables, int max_blocks, int T, int heads,
    int kv_heads, int head_dim, int block_size, float scale, cudaStream_t stream)
{
    return decode_mma_launch(out, d_workspace, workspace_bytes, q, k_cache, v_cache,
                             d_token_list, d_positions, d_token_seq, d_block_tables, max_blocks,
                             T, heads, kv_heads, head_dim, block_size, scale, true, stream);
}
#endif

// Causal prefill attention over the paged KV cache for sm_80 and newer:
// the same work items and results as attention_prefill.cu (WMMA, kept for
// V100 and Turing), written with the mma.sync m16n8k16 instruction, whose
// register layout PTX documents (WMMA's is opaque).
//
// Why a second kernel: the WMMA kernel must send every score tile through
// shared memory (store S, softmax reading rows two lanes each, store P,
// load P as a matrix operand), and that round trip, with its bank
// conflicts, held it to ~16 TFLOP/s of causal FLOPs on an H200 (this
// kernel's first version: ~83 inside the engine; tests/bench/RESULTS.md).
// With mma.sync the score accumulators of two adjacent 8-key tiles are,
// element for element, the A operand of the P V product, so the softmax runs on registers (a row's
// max and sum over the four lanes that hold it) and S and P never leave
// them. sm_70 has no m16n8k16 (its mma is m8n8k4), hence the two kernels.
//
// Work item: a tile of up to vb_attention_prefill_mma_tile_tokens
// consecutive new tokens of one sequence and the G query heads of one GQA
// group: tokens x G query rows, packed 16 to a warp (row r: token r / G,
// head r % G; every row of a block reads the same keys and values), at
// most 128 rows: 8 warps a block for groups of up to 8 heads that divide
// 128 or nearly (G = 5: 25 tokens, 125 rows; G = 7: 18 tokens, 126).
// Per warp, the 16 query rows stay in registers as A fragments for the
// whole walk over the keys; O is head_dim / 8 accumulator tiles in
// registers. The block walks the keys in steps of PFM_KT = 64; each
// step's K and V rows are gathered through the block table with cp.async
// into a three-stage shared buffer, two steps ahead of the one whose
// softmax runs. Rows are padded to head_dim + 8 halves (an odd number of
// 16-byte units), so the eight row addresses of an ldmatrix fall on
// distinct banks.
//
// Why rows are packed: the WMMA kernel's work item (16 tokens, a warp a
// head of the group), which this kernel had too, gave a block as many
// warps as the group has heads, alone on its SM: Qwen2.5-14B's 5 heads a
// group left 5 warps an SM (one of the four schedulers with two, three
// with one), 141 TFLOP/s on an H200 against 212 for the 7B's 7
// (2026-12-02), and each step's gathered K and V served 80 query rows
// instead of 128. A row's result does not depend on the tile it is in:
// keys past a row's position are masked to exact zeros of P, and a step
// all masked for a row leaves its max, sum and O as they were (scale 1,
// nothing added).
//
// A block has at most 8 warps and is alone on its SM (registers and
// shared memory allow one block): too few to hide the latency of the
// softmax's exponentials and shuffles by switching warps, so each warp
// overlaps them itself: step s + 1's scores
// (Q K^T, tensor cores) are computed in the same stretch of code as step
// s's softmax and P V (pfm_step), and the compiler interleaves the two.
// Steps whose keys all lie at or before the tile's first row skip the
// causal mask (all but the last one or two of a tile). On an H200
// (bench_attention_prefill, tests/bench/RESULTS.md, 2026-12-02) this took
// the prefill steps of the benchmark set from 117-149 to 150-212 TFLOP/s
// of causal FLOPs (7B heads) and from 100 to 141 (14B heads: 5 warps a
// block).
//
// Shared memory: 3 stages x (K, V) x 64 x (head_dim + 8) halves, 102 KB
// at head_dim 128 (GPUs with less per block, such as sm_86's 99 KB, take
// the WMMA kernel at that size). head_dim a multiple of 16, at most
// PFM_MAX_HD (the O, Q and S fragments of a larger head exceed the
// registers; the WMMA kernel takes those).
//
// The int8 KV cache (--kv-cache-dtype int8, kernels/kv_int8.cuh): the KV8
// instantiation gathers each step's int8 rows and fp32 scales with
// cp.async into one of two raw stages (half the bytes of fp16 rows); once
// a step's copies have arrived (the barrier that starts the step before
// it) the block dequantizes them (kv8_dequant8) into one of two fp16
// stages laid out as the fp16 kernel's, and a second barrier publishes
// them. Scores and P V then run the fp16 kernel's code on those stages, so
// the output is the fp16 kernel's on the cache dequantized to fp16, bit
// for bit. Two fp16 stages suffice: a step reads step s + 1's K and step
// s's V, and dequantizes into the one step s - 1 used. Shared memory: 2 x
// (K, V) x 64 x (head_dim + 8) halves and 2 x (K, V) x 64 x (head_dim + 4)
// bytes, 99 KB at head_dim 128, less than the fp16 kernel's.
#include <cuda_fp16.h>

#include "attention_prefill_mma.cuh"
#include "kernels.h"
#include "kv_int8.cuh"
#include "mma_sm80.cuh"
#include "mma_softmax.cuh"

__host__ __device__ static inline size_t pfm_shared_bytes(int hd)
{
    return (size_t)PFM_STAGES * 2 * PFM_KT * pfm_ld(hd) * 2; /* stages x (K, V) x rows x halves */
}

// The int8 cache's raw stage: (K, V) x rows x head_dim bytes, then the
// rows' K and V scales.
__host__ __device__ static inline size_t pfm_raw8_bytes(int hd)
{
    return (size_t)2 * PFM_KT * hd + 2 * PFM_KT * sizeof(float);
}

// For the int8 cache: two fp16 stages, then two raw ones.
__host__ __device__ static inline size_t pfm_shared8_bytes(int hd)
{
    return (size_t)2 * 2 * PFM_KT * pfm_ld(hd) * 2 + 2 * pfm_raw8_bytes(hd);
}

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800

// pfm_gather for the int8 cache: step s's values (16-byte chunks, a
// thread one column of chunks, as pfm_gather) and scales (a thread one row's K or
// V scale) into raw stage s % 2; positions past last_pos are zeros with
// scale 0. Every thread of the block calls it.
template <int HD>
__device__ __forceinline__ void pfm_gather8(unsigned char *raw_base, int s, int last_pos,
                                            const unsigned char *k_cache,
                                            const unsigned char *v_cache, const int *table,
                                            int block_size, int bs_shift, int kv_heads, int kvh)
{
    constexpr int CPR = HD / 16, BATCH = 4;
    unsigned char *rk = raw_base + (size_t)(s % 2) * pfm_raw8_bytes(HD);
    unsigned char *rv = rk + PFM_KT * HD;
    float *rs = (float *)(rv + PFM_KT * HD); /* [K scales][V scales] */
    const int row_step = blockDim.x / CPR, c16 = threadIdx.x % CPR, j0 = s * PFM_KT;
    if ((int)threadIdx.x < row_step * CPR) {
        for (int r0 = threadIdx.x / CPR; r0 < PFM_KT; r0 += BATCH * row_step) {
            int entry[BATCH];
#pragma unroll
            for (int b = 0; b < BATCH; b++) {
                const int j = j0 + r0 + b * row_step;
                const int bi = bs_shift >= 0 ? j >> bs_shift : j / block_size;
                entry[b] = r0 + b * row_step < PFM_KT && j <= last_pos ? table[bi] : -1;
            }
#pragma unroll
            for (int b = 0; b < BATCH; b++) {
                const int r = r0 + b * row_step, j = j0 + r;
                if (r >= PFM_KT)
                    break;
                size_t off = 0;
                int bytes = 0;
                if (entry[b] >= 0) {
                    const int bi = bs_shift >= 0 ? j >> bs_shift : j / block_size;
                    off = kv8_values_at(entry[b], j - bi * block_size, kvh, block_size, kv_heads,
                                        HD) + (size_t)c16 * 16;
                    bytes = 16;
                }
                mma_cp_async16(rk + r * HD + c16 * 16, k_cache + off, bytes);
                mma_cp_async16(rv + r * HD + c16 * 16, v_cache + off, bytes);
            }
        }
    }
    for (int i = threadIdx.x; i < 2 * PFM_KT; i += blockDim.x) {
        const int r = i % PFM_KT, j = j0 + r;
        size_t off = 0;
        int bytes = 0;
        if (j <= last_pos) {
            const int bi = bs_shift >= 0 ? j >> bs_shift : j / block_size;
            off = kv8_scale_at(table[bi], j - bi * block_size, kvh, block_size, kv_heads, HD);
            bytes = 4;
        }
        mma_cp_async4(rs + i, (i < PFM_KT ? k_cache : v_cache) + off, bytes);
    }
    asm volatile("cp.async.commit_group;\n" ::);
}

// Raw stage s % 2 (its copies complete and visible to the block) into
// fp16 stage s % 2, 8 values a thread and step. Every thread calls it.
template <int HD>
__device__ __forceinline__ void pfm_dequant(__half *stage_base, const unsigned char *raw_base,
                                            int s)
{
    constexpr int LD = HD + 8, CPR = HD / 8;
    __half *sk = stage_base + (size_t)(s % 2) * 2 * PFM_KT * LD, *sv = sk + PFM_KT * LD;
    const unsigned char *rk = raw_base + (size_t)(s % 2) * pfm_raw8_bytes(HD);
    const unsigned char *rv = rk + PFM_KT * HD;
    const float *rs = (const float *)(rv + PFM_KT * HD);
    for (int idx = threadIdx.x; idx < PFM_KT * CPR; idx += blockDim.x) {
        const int r = idx / CPR, d8 = idx % CPR;
        *(uint4 *)(sk + r * LD + d8 * 8) =
            kv8_dequant8(*(const uint2 *)(rk + r * HD + d8 * 8), rs[r]);
        *(uint4 *)(sv + r * LD + d8 * 8) =
            kv8_dequant8(*(const uint2 *)(rv + r * HD + d8 * 8), rs[PFM_KT + r]);
    }
}

// S = Q K^T for one step's PFM_KT keys (stage sk), raw dot products.
// ldmatrix x4 matrices: keys +0 / +8 by mat / 2, head_dim columns +0 / +8
// by mat % 2: the B operands of the 8-key tiles 2 jn and 2 jn + 1. Every
// 16-key tile of the step, even those past the last row's position (only
// in a tile's last step: their keys are zeros, masked later): no branch
// between the products, so the eight score tiles' chains of NF products
// interleave.
template <int NF>
__device__ __forceinline__ void pfm_scores(float (&sc)[PFM_KT / 8][4], const unsigned (&qa)[NF][4],
                                           const __half *sk, int mat, int mrow)
{
    constexpr int LD = NF * 16 + 8;
#pragma unroll
    for (int n = 0; n < PFM_KT / 8; n++)
        sc[n][0] = sc[n][1] = sc[n][2] = sc[n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < NF; kk++) {
#pragma unroll
        for (int jn = 0; jn < PFM_KT / 16; jn++) {
            const __half *kb = sk + (jn * 16 + mrow + 8 * (mat >> 1)) * LD + 8 * (mat & 1);
            unsigned b[4];
            mma_ldmatrix_x4(b, kb + kk * 16);
            mma_m16n8k16(sc[2 * jn], qa[kk], b[0], b[1]);
            mma_m16n8k16(sc[2 * jn + 1], qa[kk], b[2], b[3]);
        }
    }
}

// The rest of a step once its scores are in sc: scale (and, with MASK,
// the causal mask and the keys past the last row), the online softmax in
// registers (mma_softmax.cuh), O += P V from stage sv. Steps whose keys
// all lie at or before the tile's first row need no mask (MASK false):
// every 16-key tile counts there, and the products run without a branch.
template <int NF, bool MASK>
__device__ __forceinline__ void pfm_softmax_pv(float (&sc)[PFM_KT / 8][4], const __half *sv,
                                               int j0, int last_pos, int pos_lo, int pos_hi,
                                               float scale_log2, int lane, float &m_lo,
                                               float &m_hi, float &l_lo, float &l_hi,
                                               float (&o)[2 * NF][4])
{
    constexpr int LD = NF * 16 + 8;
    const int tq = lane & 3, mat = lane >> 3, mrow = lane & 7;
    pfm_scale_mask<MASK>(sc, j0, pos_lo, pos_hi, scale_log2, tq);
    unsigned pa[PFM_KT / 16][4];
    mma_softmax_step(sc, m_lo, m_hi, l_lo, l_hi, o, pa);

    // O += P V. ldmatrix x4 .trans matrices: keys +0 / +8 by mat % 2,
    // head_dim columns +0 / +8 by mat / 2: the B operands of the 8-column
    // O tiles 2 dn and 2 dn + 1. Masked steps skip the 16-key tiles past
    // the last row's position (their P is zero).
    const int n16 = MASK ? min(PFM_KT, last_pos - j0 + 1 + 15) / 16 : PFM_KT / 16;
#pragma unroll
    for (int kk = 0; kk < PFM_KT / 16; kk++) {
        if (!MASK || kk < n16) {
            const __half *vb = sv + (kk * 16 + mrow + 8 * (mat & 1)) * LD + 8 * (mat >> 1);
#pragma unroll
            for (int dn = 0; dn < NF; dn++) {
                unsigned b[4];
                mma_ldmatrix_x4_trans(b, vb + dn * 16);
                mma_m16n8k16(o[2 * dn], pa[kk], b[0], b[1]);
                mma_m16n8k16(o[2 * dn + 1], pa[kk], b[2], b[3]);
            }
        }
    }
}

// Step s of every warp of the block, all but the last step: waits for
// step s + 1's rows, refills the stage step s - 1 used with step s + 2,
// then computes step s + 1's scores (sn) in the same stretch of code as
// step s's softmax and P V, so the tensor-core products of one overlap the
// exponentials and shuffles of the other inside each warp (a block has
// at most eight warps on an SM: too few to hide them by switching).
// On return sc holds step s + 1's scores.
//
// KV8 (int8 cache): after the first barrier raw step s + 1 has arrived and
// raw stage s % 2 (dequantized in step s - 1) is free for step s + 2's
// copies; step s + 1 is dequantized into the fp16 stage step s - 1 used,
// and a second barrier publishes it before any warp reads it.
template <int NF, bool MASK, bool KV8>
__device__ __forceinline__ void pfm_step(int s, int n_steps, bool active, __half *stage_base,
                                         unsigned char *raw_base, float (&sc)[PFM_KT / 8][4],
                                         const unsigned (&qa)[NF][4], int last_pos, int pos_lo,
                                         int pos_hi, float scale_log2, const void *k_cache,
                                         const void *v_cache, const int *table, int block_size,
                                         int bs_shift, int kv_heads, int kvh, float &m_lo,
                                         float &m_hi, float &l_lo, float &l_hi,
                                         float (&o)[2 * NF][4])
{
    constexpr int HD = NF * 16, LD = HD + 8, STAGES = KV8 ? 2 : PFM_STAGES;
    asm volatile("cp.async.wait_group 0;\n" ::); /* step s + 1's copies of this thread */
    // Step s + 1's rows are in shared memory for every warp, and every
    // warp has finished step s - 1, whose stage step s + 2 now takes.
    __syncthreads();
    if (KV8) {
        if (s + 2 < n_steps)
            pfm_gather8<HD>(raw_base, s + 2, last_pos, (const unsigned char *)k_cache,
                            (const unsigned char *)v_cache, table, block_size, bs_shift,
                            kv_heads, kvh);
        pfm_dequant<HD>(stage_base, raw_base, s + 1);
        __syncthreads(); /* step s + 1's fp16 rows, for every warp */
    } else if (s + 2 < n_steps) {
        pfm_gather<HD>(stage_base, s + 2, last_pos, (const __half *)k_cache,
                       (const __half *)v_cache, table, block_size, bs_shift, kv_heads, kvh);
    }
    if (!active)
        return;
    const int lane = threadIdx.x & 31;
    const __half *sk_next = stage_base + (size_t)((s + 1) % STAGES) * 2 * PFM_KT * LD;
    const __half *sv = stage_base + (size_t)(s % STAGES) * 2 * PFM_KT * LD + PFM_KT * LD;
    float sn[PFM_KT / 8][4];
    pfm_scores<NF>(sn, qa, sk_next, lane >> 3, lane & 7);
    pfm_softmax_pv<NF, MASK>(sc, sv, s * PFM_KT, last_pos, pos_lo, pos_hi, scale_log2, lane,
                             m_lo, m_hi, l_lo, l_hi, o);
#pragma unroll
    for (int n = 0; n < PFM_KT / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++)
            sc[n][e] = sn[n][e];
}

#endif

// NF = head_dim / 16; KV8: the cache is int8 (kv_int8.cuh), else fp16.
template <int NF, bool KV8>
__global__ void __launch_bounds__(32 * PFM_MAX_WARPS)
    attention_prefill_mma_kernel(__half *out, const __half *q, const void *k_cache,
                                 const void *v_cache, const int *positions, const int *tiles,
                                 int n_tiles, const int *block_tables, int max_blocks, int heads,
                                 int kv_heads, int block_size, int bs_shift, float scale_log2)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    constexpr int HD = NF * 16, LD = HD + 8, STAGES = KV8 ? 2 : PFM_STAGES;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    __half *stage_base = (__half *)smem_raw; /* [stage][K|V][PFM_KT][LD] */
    /* int8: the raw stages after the two fp16 ones */
    unsigned char *raw_base = smem_raw + (size_t)2 * 2 * PFM_KT * LD * 2;
    const __half *kh = (const __half *)k_cache, *vh = (const __half *)v_cache;
    const unsigned char *k8 = (const unsigned char *)k_cache;
    const unsigned char *v8 = (const unsigned char *)v_cache;

    const int G = heads / kv_heads;
    // longest tiles (latest positions) first, so they do not form the tail
    const int tile = n_tiles - 1 - (int)blockIdx.x;
    const int kvh = blockIdx.y;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int t0 = tiles[3 * tile], rows = tiles[3 * tile + 1], seq = tiles[3 * tile + 2];
    const bool active = warp * 16 < rows * G; /* the warp has packed rows of the tile */
    const int *table = block_tables + (size_t)seq * max_blocks;
    const int last_pos = positions[t0 + rows - 1];
    const int n_steps = last_pos / PFM_KT + 1;
    const int g = lane >> 2, tq = lane & 3; /* fragment row group, thread in group */

    // Two steps' gathers in flight before the first is waited for.
    if (KV8) {
        pfm_gather8<HD>(raw_base, 0, last_pos, k8, v8, table, block_size, bs_shift, kv_heads,
                        kvh);
        if (n_steps > 1)
            pfm_gather8<HD>(raw_base, 1, last_pos, k8, v8, table, block_size, bs_shift,
                            kv_heads, kvh);
    } else {
        pfm_gather<HD>(stage_base, 0, last_pos, kh, vh, table, block_size, bs_shift, kv_heads,
                       kvh);
        if (n_steps > 1)
            pfm_gather<HD>(stage_base, 1, last_pos, kh, vh, table, block_size, bs_shift,
                           kv_heads, kvh);
    }

    const int n_unmasked = pfm_unmasked_steps(positions, t0, rows, n_steps, lane);

    // The warp's packed rows g and g + 8 (token r / G, head r % G): their
    // Q rows as A fragments, one per 16 columns of head_dim.
    const int r_lo = warp * 16 + g, r_hi = r_lo + 8;
    const bool lo = r_lo < rows * G, hi = r_hi < rows * G;
    const int tok_lo = r_lo / G, tok_hi = r_hi / G;
    const int h_lo = kvh * G + r_lo % G, h_hi = kvh * G + r_hi % G;
    unsigned qa[NF][4];
    int pos_lo = -1, pos_hi = -1; /* rows past the tile never match a key */
    if (active) {
        const unsigned *qlo = (const unsigned *)(q + ((size_t)(t0 + tok_lo) * heads + h_lo) * HD);
        const unsigned *qhi = (const unsigned *)(q + ((size_t)(t0 + tok_hi) * heads + h_hi) * HD);
#pragma unroll
        for (int kk = 0; kk < NF; kk++) {
            qa[kk][0] = lo ? qlo[kk * 8 + tq] : 0u;
            qa[kk][1] = hi ? qhi[kk * 8 + tq] : 0u;
            qa[kk][2] = lo ? qlo[kk * 8 + 4 + tq] : 0u;
            qa[kk][3] = hi ? qhi[kk * 8 + 4 + tq] : 0u;
        }
        pos_lo = lo ? positions[t0 + tok_lo] : -1;
        pos_hi = hi ? positions[t0 + tok_hi] : -1;
    }
    float o[2 * NF][4];
#pragma unroll
    for (int n = 0; n < 2 * NF; n++)
        o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    // running max (log2 units) and this lane's part of the row sums
    float m_lo = PFM_NEG_INF, m_hi = PFM_NEG_INF, l_lo = 0.0f, l_hi = 0.0f;

    // step 0's rows, then its scores
    if (n_steps > 1)
        asm volatile("cp.async.wait_group 1;\n" ::);
    else
        asm volatile("cp.async.wait_group 0;\n" ::);
    __syncthreads();
    if (KV8) {
        pfm_dequant<HD>(stage_base, raw_base, 0);
        __syncthreads();
    }
    float sc[PFM_KT / 8][4];
    if (active)
        pfm_scores<NF>(sc, qa, stage_base, lane >> 3, lane & 7);
    int s = 0;
    for (; s < n_unmasked; s++)
        pfm_step<NF, false, KV8>(s, n_steps, active, stage_base, raw_base, sc, qa, last_pos,
                                 pos_lo, pos_hi, scale_log2, k_cache, v_cache, table, block_size,
                                 bs_shift, kv_heads, kvh, m_lo, m_hi, l_lo, l_hi, o);
    for (; s < n_steps - 1; s++)
        pfm_step<NF, true, KV8>(s, n_steps, active, stage_base, raw_base, sc, qa, last_pos,
                                pos_lo, pos_hi, scale_log2, k_cache, v_cache, table, block_size,
                                bs_shift, kv_heads, kvh, m_lo, m_hi, l_lo, l_hi, o);
    // the last step: its rows arrived before the previous step's barrier
    if (active)
        pfm_softmax_pv<NF, true>(
            sc, stage_base + (size_t)(s % STAGES) * 2 * PFM_KT * LD + PFM_KT * LD,
            s * PFM_KT, last_pos, pos_lo, pos_hi, scale_log2, lane, m_lo, m_hi, l_lo, l_hi, o);
    if (!active)
        return;
    pfm_store_rows(lo ? out + ((size_t)(t0 + tok_lo) * heads + h_lo) * HD : NULL,
                   hi ? out + ((size_t)(t0 + tok_hi) * heads + h_hi) * HD : NULL, o, l_lo, l_hi,
                   tq);
#else
    __trap(); /* the host launches this kernel only where it was built for sm_80+ */
#endif
}

#define PFM_INSTANTIATE(nf, kv8)                                                              \
    template __global__ void attention_prefill_mma_kernel<nf, kv8>(                           \
        __half *, const __half *, const void *, const void *, const int *, const int *, int,  \
        const int *, int, int, int, int, int, float);
#define PFM_INSTANTIATE2(nf) PFM_INSTANTIATE(nf, false) PFM_INSTANTIATE(nf, true)
PFM_INSTANTIATE2(1) PFM_INSTANTIATE2(2) PFM_INSTANTIATE2(3) PFM_INSTANTIATE2(4)
PFM_INSTANTIATE2(5) PFM_INSTANTIATE2(6) PFM_INSTANTIATE2(7) PFM_INSTANTIATE2(8)
#undef PFM_INSTANTIATE2
#undef PFM_INSTANTIATE


#ifndef __CUDACC_RTC__
// The kernel's code for this device was built from sm_80+ source (a build
// for sm_75 only would run its trap body here through the PTX JIT).
static bool mma_code_present(void)
{
    static int cached = -1;
    if (cached < 0) {
        cudaFuncAttributes attr;
        cached = cudaFuncGetAttributes(&attr, attention_prefill_mma_kernel<8, false>) ==
                     cudaSuccess &&
                 attr.ptxVersion >= 80;
        (void)cudaGetLastError(); /* a failed query must not poison later checks */
    }
    return cached == 1;
}

extern "C" int vb_attention_prefill_mma_tile_tokens(int heads, int kv_heads)
{
    if (kv_heads <= 0 || heads <= 0 || heads % kv_heads || heads / kv_heads > PFM_MAX_ROWS)
        return 0;
    return PFM_MAX_ROWS / (heads / kv_heads); /* whole groups: at most 128 rows, 8 warps */
}

extern "C" bool vb_attention_prefill_mma_supported(int heads, int kv_heads, int head_dim)
{
    if (head_dim % 16 || head_dim > PFM_MAX_HD ||
        vb_attention_prefill_mma_tile_tokens(heads, kv_heads) < 1)
        return false;
    vb_device_caps caps;
    return vb_device_caps_get(&caps) == cudaSuccess && caps.major >= 8 &&
           pfm_shared_bytes(head_dim) <= (size_t)caps.smem_optin && mma_code_present();
}

// The fp16 and int8 entry points below; kv8: the cache is int8.
static cudaError_t prefill_mma_launch(uint16_t *out, const uint16_t *q, const void *k_cache,
                                      const void *v_cache, const int *d_positions,
                                      const int *d_tiles, int n_tiles, const int *d_block_tables,
                                      int max_blocks, int heads, int kv_heads, int head_dim,
                                      int block_size, float scale, bool kv8, cudaStream_t stream)
{
    if (n_tiles == 0)
        return cudaSuccess;
    if (head_dim % 16 || head_dim > PFM_MAX_HD || kv_heads <= 0 || heads % kv_heads ||
        block_size <= 0)
        return cudaErrorInvalidValue;
    /* int8 rows by 16-byte copies: every block 16-byte aligned (kv_int8.cuh) */
    if (kv8 && kv8_block_bytes(block_size, kv_heads, head_dim) % 16)
        return cudaErrorInvalidValue;
    const int G = heads / kv_heads, tt = vb_attention_prefill_mma_tile_tokens(heads, kv_heads);
    if (tt < 1)
        return cudaErrorInvalidValue;
    const int warps = (tt * G + 15) / 16; /* the packed rows of a full tile */
    const size_t smem = kv8 ? pfm_shared8_bytes(head_dim) : pfm_shared_bytes(head_dim);
    dim3 grid((unsigned)n_tiles, (unsigned)kv_heads);
    const float scale_log2 = scale * PFM_LOG2E;
    const int bs_shift = pfm_block_shift(block_size);
    cudaError_t e = cudaErrorInvalidValue;
#define PFM_LAUNCH_KV(nf, kv)                                                                 \
    e = cudaFuncSetAttribute(attention_prefill_mma_kernel<nf, kv>,                            \
                             cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);         \
    if (e != cudaSuccess)                                                                     \
        return e;                                                                             \
    attention_prefill_mma_kernel<nf, kv><<<grid, 32 * warps, smem, stream>>>(                 \
        (__half *)out, (const __half *)q, k_cache, v_cache, d_positions, d_tiles, n_tiles,    \
        d_block_tables, max_blocks, heads, kv_heads, block_size, bs_shift, scale_log2);
#define PFM_LAUNCH(nf)                                                                        \
    case nf:                                                                                  \
        if (kv8) {                                                                            \
            PFM_LAUNCH_KV(nf, true)                                                           \
        } else {                                                                              \
            PFM_LAUNCH_KV(nf, false)                                                          \
        }                                                                                     \
        break;
    switch (head_dim / 16) {
        PFM_LAUNCH(1) PFM_LAUNCH(2) PFM_LAUNCH(3) PFM_LAUNCH(4)
        PFM_LAUNCH(5) PFM_LAUNCH(6) PFM_LAUNCH(7) PFM_LAUNCH(8)
    default: return cudaErrorInvalidValue;
    }
#undef PFM_LAUNCH
#undef PFM_LAUNCH_KV
    return cudaGetLastError();
}

extern "C" cudaError_t vb_attention_prefill_mma_f16(uint16_t *out, const uint16_t *q,
                                                    const uint16_t *k_cache,
                                                    const uint16_t *v_cache,
                                                    const int *d_positions, const int *d_tiles,
                                                    int n_tiles, const int *d_block_tables,
                                                    int max_blocks, int heads, int kv_heads,
                                                    int head_dim, int block_size, float scale,
                                                    cudaStream_t stream)
{
    return prefill_mma_launch(out, q, k_cache, v_cache, d_positions, d_tiles, n_tiles,
                              d_block_tables, max_blocks, heads, kv_heads, head_dim, block_size,
                              scale, false, stream);
}

extern "C" cudaError_t vb_attention_prefill_mma_kv8(uint16_t *out, const uint16_t *q,
                                                    const void *k_cache, const void *v_cache,
                                                    const int *d_positions, const int *d_tiles,
                                                    int n_tiles, const int *d_block_tables,
                                                    int max_blocks, int heads, int kv_heads,
                                                    int head_dim, int block_size, float scale,
                                                    cudaStream_t stream)
{
    return prefill_mma_launch(out, q, k_cache, v_cache, d_positions, d_tiles, n_tiles,
                              d_block_tables, max_blocks, heads, kv_heads, head_dim, block_size,
                              scale, true, stream);
}
#endif


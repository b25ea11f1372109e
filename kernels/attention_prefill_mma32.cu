// The prefill attention of the fp16 KV cache on sm_80+ (since session 23;
// the int8 cache keeps attention_prefill_mma.cu's kernel): the same tiles,
// rows and arithmetic as that kernel, laid out as FlashAttention-2 lays
// out its forward pass: 4 warps of 32 query rows (two 16-row m-tiles a
// warp), Q in shared memory (ldmatrix each step), K/V in a two-stage ring,
// two blocks an SM. Why: at 16 rows a warp each K and V fragment read from
// shared memory feeds two mma.sync and every warp reads the whole step (32
// KB at head_dim 128): 256 KB a step an SM for 4.2 MFLOP; at 32 rows each
// fragment feeds four and an SM's two blocks walk 256 query rows for the
// same traffic a block. No s + 1 overlap of scores and softmax (its
// registers are the second m-tile's): the SM's other block fills those
// gaps instead. On an H200 (bench_attention_prefill, tests/bench/RESULTS.md
// session 23): the 64K case's steps 252 -> 285 TFLOP/s, d's 247 -> 259.
//
// Bit for bit that kernel's results: every row's scores are the same mma
// chain over head_dim in the same order, its masks, softmax steps
// (mma_softmax.cuh) and P V chains are the same per 64-key step.
#include <cuda_fp16.h>

#include "attention_prefill_mma.cuh"
#include "kernels.h"
#include "mma_sm80.cuh"
#include "mma_softmax.cuh"

#define P32_WARPS 4
#define P32_ROWS (32 * P32_WARPS) /* = PFM_MAX_ROWS: the same tiles */
#define P32_STAGES 2

__host__ __device__ static inline size_t p32_shared_bytes(int hd)
{
    /* Q rows, then stages x (K, V) x PFM_KT rows, each row hd + 8 halves */
    return ((size_t)P32_ROWS + (size_t)P32_STAGES * 2 * PFM_KT) * pfm_ld(hd) * 2;
}

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
// One step's work of a warp: scores of its two m-tiles from Q (shared
// memory, rows qrow0 ..) and stage (sk, sv), softmax, O += P V.
template <int NF, bool MASK>
__device__ __forceinline__ void p32_step(const __half *sq, const __half *sk, const __half *sv,
                                         int qrow0, int j0, int last_pos, const int (&pos_lo)[2],
                                         const int (&pos_hi)[2], float scale_log2, int lane,
                                         float (&m_lo)[2], float (&m_hi)[2], float (&l_lo)[2],
                                         float (&l_hi)[2], float (&o)[2][2 * NF][4])
{
    constexpr int LD = NF * 16 + 8;
    const int mat = lane >> 3, mrow = lane & 7, tq = lane & 3;
    float sc[2][PFM_KT / 8][4];
#pragma unroll
    for (int t = 0; t < 2; t++)
#pragma unroll
        for (int n = 0; n < PFM_KT / 8; n++)
            sc[t][n][0] = sc[t][n][1] = sc[t][n][2] = sc[t][n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < NF; kk++) {
        /* A fragments of the two m-tiles: rows +0 / +8 by mat % 2, head_dim
         * columns +0 / +8 by mat / 2 (registers 0-3 as the mma's A layout) */
        unsigned qa[2][4];
#pragma unroll
        for (int t = 0; t < 2; t++)
            mma_ldmatrix_x4(qa[t], sq + (qrow0 + 16 * t + mrow + 8 * (mat & 1)) * LD +
                                       kk * 16 + 8 * (mat >> 1));
#pragma unroll
        for (int jn = 0; jn < PFM_KT / 16; jn++) {
            const __half *kb = sk + (jn * 16 + mrow + 8 * (mat >> 1)) * LD + 8 * (mat & 1);
            unsigned b[4];
            mma_ldmatrix_x4(b, kb + kk * 16);
#pragma unroll
            for (int t = 0; t < 2; t++) {
                mma_m16n8k16(sc[t][2 * jn], qa[t], b[0], b[1]);
                mma_m16n8k16(sc[t][2 * jn + 1], qa[t], b[2], b[3]);
            }
        }
    }
    unsigned pa[2][PFM_KT / 16][4];
#pragma unroll
    for (int t = 0; t < 2; t++) {
        pfm_scale_mask<MASK>(sc[t], j0, pos_lo[t], pos_hi[t], scale_log2, tq);
        mma_softmax_step(sc[t], m_lo[t], m_hi[t], l_lo[t], l_hi[t], o[t], pa[t]);
    }
    const int n16 = MASK ? min(PFM_KT, last_pos - j0 + 1 + 15) / 16 : PFM_KT / 16;
#pragma unroll
    for (int kk = 0; kk < PFM_KT / 16; kk++) {
        if (!MASK || kk < n16) {
            const __half *vb = sv + (kk * 16 + mrow + 8 * (mat & 1)) * LD + 8 * (mat >> 1);
#pragma unroll
            for (int dn = 0; dn < NF; dn++) {
                unsigned b[4];
                mma_ldmatrix_x4_trans(b, vb + dn * 16);
#pragma unroll
                for (int t = 0; t < 2; t++) {
                    mma_m16n8k16(o[t][2 * dn], pa[t][kk], b[0], b[1]);
                    mma_m16n8k16(o[t][2 * dn + 1], pa[t][kk], b[2], b[3]);
                }
            }
        }
    }
}
#endif

// NF = head_dim / 16. Tiles of up to vb_attention_prefill_mma_tile_tokens
// tokens; blocks of P32_WARPS warps.
template <int NF>
__global__ void __launch_bounds__(32 * P32_WARPS, 2)
    attention_prefill_mma32_kernel(__half *out, const __half *q, const __half *k_cache,
                                   const __half *v_cache, const int *positions,
                                   const int *tiles, int n_tiles, const int *block_tables,
                                   int max_blocks, int heads, int kv_heads, int block_size,
                                   int bs_shift, float scale_log2)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    constexpr int HD = NF * 16, LD = HD + 8, CPR = HD / 8;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    __half *sq = (__half *)smem_raw;          /* [P32_ROWS][LD] */
    __half *stage_base = sq + P32_ROWS * LD; /* [stage][K|V][PFM_KT][LD] */

    const int G = heads / kv_heads;
    const int tile = n_tiles - 1 - (int)blockIdx.x; /* longest first, as the 16-rows kernel */
    const int kvh = blockIdx.y;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, tq = lane & 3;
    const int t0 = tiles[3 * tile], rows = tiles[3 * tile + 1], seq = tiles[3 * tile + 2];
    const int R = rows * G; /* packed rows: token r / G, head r % G */
    const int *table = block_tables + (size_t)seq * max_blocks;
    const int last_pos = positions[t0 + rows - 1];
    const int n_steps = last_pos / PFM_KT + 1;
    const bool active = warp * 32 < R;

    /* Q's packed rows into shared memory (zeros past R), in the same
     * cp.async group as step 0's keys and values */
    for (int i = threadIdx.x; i < P32_ROWS * CPR; i += blockDim.x) {
        const int r = i / CPR, d8 = i % CPR;
        const bool live = r < R;
        const __half *src =
            live ? q + ((size_t)(t0 + r / G) * heads + kvh * G + r % G) * HD + d8 * 8 : q;
        mma_cp_async16(sq + r * LD + d8 * 8, src, live ? 16 : 0);
    }
    pfm_gather<HD, P32_STAGES>(stage_base, 0, last_pos, k_cache, v_cache, table, block_size,
                               bs_shift, kv_heads, kvh);
    if (n_steps > 1)
        pfm_gather<HD, P32_STAGES>(stage_base, 1, last_pos, k_cache, v_cache, table,
                                   block_size, bs_shift, kv_heads, kvh);

    const int n_unmasked = pfm_unmasked_steps(positions, t0, rows, n_steps, lane);

    /* the warp's rows: m-tile t, rows r_lo[t] = 32 warp + 16 t + g and + 8 */
    int r_lo[2], r_hi[2], pos_lo[2], pos_hi[2];
#pragma unroll
    for (int t = 0; t < 2; t++) {
        r_lo[t] = warp * 32 + 16 * t + g;
        r_hi[t] = r_lo[t] + 8;
        pos_lo[t] = r_lo[t] < R ? positions[t0 + r_lo[t] / G] : -1;
        pos_hi[t] = r_hi[t] < R ? positions[t0 + r_hi[t] / G] : -1;
    }
    float o[2][2 * NF][4];
#pragma unroll
    for (int t = 0; t < 2; t++)
#pragma unroll
        for (int n = 0; n < 2 * NF; n++)
            o[t][n][0] = o[t][n][1] = o[t][n][2] = o[t][n][3] = 0.0f;
    float m_lo[2] = {PFM_NEG_INF, PFM_NEG_INF}, m_hi[2] = {PFM_NEG_INF, PFM_NEG_INF};
    float l_lo[2] = {0.0f, 0.0f}, l_hi[2] = {0.0f, 0.0f};

    for (int s = 0; s < n_steps; s++) {
        /* step s's rows (and Q) have landed for this thread; the barrier:
         * for every thread */
        if (s + 1 < n_steps)
            asm volatile("cp.async.wait_group 1;\n" ::);
        else
            asm volatile("cp.async.wait_group 0;\n" ::);
        __syncthreads();
        const __half *sk = stage_base + (size_t)(s % P32_STAGES) * 2 * PFM_KT * LD;
        const __half *sv = sk + PFM_KT * LD;
        if (active) {
            if (s < n_unmasked)
                p32_step<NF, false>(sq, sk, sv, warp * 32, s * PFM_KT, last_pos, pos_lo, pos_hi,
                                    scale_log2, lane, m_lo, m_hi, l_lo, l_hi, o);
            else
                p32_step<NF, true>(sq, sk, sv, warp * 32, s * PFM_KT, last_pos, pos_lo, pos_hi,
                                   scale_log2, lane, m_lo, m_hi, l_lo, l_hi, o);
        }
        __syncthreads(); /* every warp is done with stage s % 2: step s + 2 takes it */
        if (s + 2 < n_steps)
            pfm_gather<HD, P32_STAGES>(stage_base, s + 2, last_pos, k_cache, v_cache, table,
                                       block_size, bs_shift, kv_heads, kvh);
    }
    if (!active)
        return;
#pragma unroll
    for (int t = 0; t < 2; t++)
        pfm_store_rows(pfm_row_out(out, r_lo[t], R, G, kvh, t0, heads, HD),
                       pfm_row_out(out, r_hi[t], R, G, kvh, t0, heads, HD), o[t], l_lo[t],
                       l_hi[t], tq);
#else
    __trap(); /* launched only where vb_attention_prefill_mma32_supported */
#endif
}

#define P32_INSTANTIATE(nf)                                                                   \
    template __global__ void attention_prefill_mma32_kernel<nf>(                              \
        __half *, const __half *, const __half *, const __half *, const int *, const int *,   \
        int, const int *, int, int, int, int, int, float);
P32_INSTANTIATE(1) P32_INSTANTIATE(2) P32_INSTANTIATE(3) P32_INSTANTIATE(4)
P32_INSTANTIATE(5) P32_INSTANTIATE(6) P32_INSTANTIATE(7) P32_INSTANTIATE(8)
#undef P32_INSTANTIATE

#ifndef __CUDACC_RTC__
// The fp16 cache's entry: tiles as vb_attention_prefill_mma_f16's.
extern "C" bool vb_attention_prefill_mma32_supported(int heads, int kv_heads, int head_dim)
{
    int dev = 0, optin = 0;
    if (!vb_attention_prefill_mma_supported(heads, kv_heads, head_dim) ||
        cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) !=
            cudaSuccess) {
        (void)cudaGetLastError();
        return false;
    }
    return p32_shared_bytes(head_dim) <= (size_t)optin;
}

extern "C" cudaError_t vb_attention_prefill_mma32_f16(uint16_t *out, const uint16_t *q,
                                                      const uint16_t *k_cache,
                                                      const uint16_t *v_cache,
                                                      const int *d_positions, const int *d_tiles,
                                                      int n_tiles, const int *d_block_tables,
                                                      int max_blocks, int heads, int kv_heads,
                                                      int head_dim, int block_size, float scale,
                                                      cudaStream_t stream)
{
    if (n_tiles == 0)
        return cudaSuccess;
    if (head_dim % 16 || head_dim > PFM_MAX_HD || block_size <= 0 ||
        vb_attention_prefill_mma_tile_tokens(heads, kv_heads) < 1)
        return cudaErrorInvalidValue;
    const size_t smem = p32_shared_bytes(head_dim);
    const dim3 grid((unsigned)n_tiles, (unsigned)kv_heads);
    const float scale_log2 = scale * PFM_LOG2E;
    const int bs_shift = pfm_block_shift(block_size);
    cudaError_t e = cudaErrorInvalidValue;
#define P32_LAUNCH(nf)                                                                        \
    case nf:                                                                                  \
        e = cudaFuncSetAttribute(attention_prefill_mma32_kernel<nf>,                          \
                                 cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);     \
        if (e == cudaSuccess) /* two blocks' shared memory an SM, not the default split */   \
            e = cudaFuncSetAttribute(attention_prefill_mma32_kernel<nf>,                      \
                                     cudaFuncAttributePreferredSharedMemoryCarveout,          \
                                     cudaSharedmemCarveoutMaxShared);                         \
        if (e != cudaSuccess)                                                                 \
            return e;                                                                         \
        attention_prefill_mma32_kernel<nf><<<grid, 32 * P32_WARPS, smem, stream>>>(           \
            (__half *)out, (const __half *)q, (const __half *)k_cache,                       \
            (const __half *)v_cache, d_positions, d_tiles, n_tiles, d_block_tables,          \
            max_blocks, heads, kv_heads, block_size, bs_shift, scale_log2);                   \
        break;
    switch (head_dim / 16) {
        P32_LAUNCH(1) P32_LAUNCH(2) P32_LAUNCH(3) P32_LAUNCH(4)
        P32_LAUNCH(5) P32_LAUNCH(6) P32_LAUNCH(7) P32_LAUNCH(8)
    default: return cudaErrorInvalidValue;
    }
#undef P32_LAUNCH
    return cudaGetLastError();
}
#endif

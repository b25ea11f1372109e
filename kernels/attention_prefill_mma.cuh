// What the two mma.sync prefill attention kernels share
// (attention_prefill_mma.cu: 16 query rows a warp, fp16 and int8 caches;
// attention_prefill_mma32.cu: 32 rows a warp, the fp16 cache's default):
// the step of 64 keys, the packed-row tile bound, the padded shared-memory
// rows, and the gather of a step's K and V through the block table.
#ifndef VB_ATTENTION_PREFILL_MMA_CUH
#define VB_ATTENTION_PREFILL_MMA_CUH

#include <cuda_fp16.h>

#include "mma_sm80.cuh"

#define PFM_KT 64    /* keys per step */
#define PFM_STAGES 3 /* K/V steps in flight: one barrier a step suffices */
#define PFM_MAX_HD 128
#define PFM_MAX_WARPS 8
#define PFM_MAX_ROWS (16 * PFM_MAX_WARPS) /* packed query rows a block */
#define PFM_NEG_INF __int_as_float(0xff800000)
#define PFM_LOG2E 1.4426950408889634f

// Halves per shared-memory row of K or V.
__host__ __device__ static inline int pfm_ld(int hd)
{
    return hd + 8;
}

#ifndef __CUDACC_RTC__
// The kernels' bs_shift argument: log2(block_size) for block sizes of
// 2^k (a shift instead of a division a row), -1 otherwise.
static inline int pfm_block_shift(int block_size)
{
    for (int k = 0; k < 31; k++)
        if (block_size == 1 << k)
            return k;
    return -1;
}
#endif

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
// Gathers step s's keys and values (positions s * PFM_KT ...) into stage
// s % PFM_STAGES through the block table, 16 bytes a cp.async; positions
// past last_pos are zero-filled (their scores are masked, and zeros keep
// 0 * V finite). A thread keeps one 16-byte column and walks rows, so one
// block-table lookup and address computation serves a row's K and V
// chunks alike. Every thread of the block calls it. STAGES: the ring's
// stages (attention_prefill_mma32_kernel's is 2).
template <int HD, int STAGES = PFM_STAGES>
__device__ __forceinline__ void pfm_gather(__half *stage_base, int s, int last_pos,
                                           const __half *k_cache, const __half *v_cache,
                                           const int *table, int block_size, int bs_shift,
                                           int kv_heads, int kvh)
{
    constexpr int LD = HD + 8, CPR = HD / 8, BATCH = 4;
    __half *sk = stage_base + (size_t)(s % STAGES) * 2 * PFM_KT * LD;
    __half *sv = sk + PFM_KT * LD;
    const int row_step = blockDim.x / CPR, d8 = threadIdx.x % CPR, j0 = s * PFM_KT;
    if ((int)threadIdx.x < row_step * CPR) {
        // BATCH rows' block-table entries are loaded before any of their
        // copies is issued, so their latencies overlap instead of adding
        // up row after row.
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
                    off = (((size_t)entry[b] * block_size + (j - bi * block_size)) * kv_heads +
                           kvh) * HD + (size_t)d8 * 8;
                    bytes = 16;
                }
                mma_cp_async16(sk + r * LD + d8 * 8, k_cache + off, bytes);
                mma_cp_async16(sv + r * LD + d8 * 8, v_cache + off, bytes);
            }
        }
    }
    asm volatile("cp.async.commit_group;\n" ::);
}

// Scores to log2 units and, with MASK, the causal mask: element e of
// score tile n is row g (e < 2) or g + 8, key j0 + 8 n + 2 tq + (e & 1).
// The scaling is a rounded multiply of its own (__fmul_rn is never fused
// into the softmax's subtraction), so a score rounds the same in masked
// and unmasked steps.
template <bool MASK, int NT>
__device__ __forceinline__ void pfm_scale_mask(float (&sc)[NT][4], int j0, int pos_lo, int pos_hi,
                                               float scale_log2, int tq)
{
#pragma unroll
    for (int n = 0; n < NT; n++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const float scaled = __fmul_rn(sc[n][e], scale_log2);
            if (MASK) {
                const int key = j0 + 8 * n + 2 * tq + (e & 1);
                sc[n][e] = key <= (e < 2 ? pos_lo : pos_hi) ? scaled : PFM_NEG_INF;
            } else {
                sc[n][e] = scaled;
            }
        }
    }
}

// The steps (of KT keys) that need no mask: those whose keys all lie at
// or before the tile's lowest position, all but the last one or two of a
// tile (never the last step). Each warp reads the tile's positions (of
// its rows tokens from t0), so every warp has it.
template <int KT = PFM_KT>
__device__ __forceinline__ int pfm_unmasked_steps(const int *positions, int t0, int rows,
                                                  int n_steps, int lane)
{
    int pos_min = 0x7fffffff;
    for (int i = lane; i < rows; i += 32)
        pos_min = min(pos_min, positions[t0 + i]);
#pragma unroll
    for (int off = 16; off >= 1; off >>= 1)
        pos_min = min(pos_min, __shfl_xor_sync(0xffffffffu, pos_min, off));
    return min((pos_min + 1) / KT, n_steps - 1);
}

// Packed row r's output row (token r / G of the tile from t0, head kvh G
// + r % G), or NULL for a row past the tile's R.
__device__ __forceinline__ __half *pfm_row_out(__half *out, int r, int R, int G, int kvh, int t0,
                                               int heads, int hd)
{
    return r < R ? out + ((size_t)(t0 + r / G) * heads + kvh * G + r % G) * hd : NULL;
}

// The end of a lane's two fragment rows (g: o[n][0..1], g + 8: o[n][2..3];
// NF2 8-column fragments): each row's sum over its quad's lanes, then O /
// sum rounded to fp16 at the lane's columns (2 tq, 2 tq + 1, + 8 ...) of
// the row's output, out_lo / out_hi (NULL: a row past the tile's, not
// written). The prefill kernels' common epilogue.
template <int NF2>
__device__ __forceinline__ void pfm_store_rows(__half *out_lo, __half *out_hi,
                                               const float (&o)[NF2][4], float l_lo, float l_hi,
                                               int tq)
{
#pragma unroll
    for (int off = 1; off <= 2; off <<= 1) {
        l_lo += __shfl_xor_sync(0xffffffffu, l_lo, off);
        l_hi += __shfl_xor_sync(0xffffffffu, l_hi, off);
    }
    if (out_lo) {
        const float inv = 1.0f / l_lo;
        __half2 *dst = (__half2 *)(out_lo + 2 * tq);
#pragma unroll
        for (int n = 0; n < NF2; n++)
            dst[n * 4] = __floats2half2_rn(o[n][0] * inv, o[n][1] * inv);
    }
    if (out_hi) {
        const float inv = 1.0f / l_hi;
        __half2 *dst = (__half2 *)(out_hi + 2 * tq);
#pragma unroll
        for (int n = 0; n < NF2; n++)
            dst[n * 4] = __floats2half2_rn(o[n][2] * inv, o[n][3] * inv);
    }
}

#endif

#endif

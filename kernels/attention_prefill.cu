// Causal prefill attention over the paged KV cache with tensor cores
// (WMMA 16x16x16, fp16 in, fp32 accumulate: available on sm_70).
//
// Work item: a tile of up to 16 consecutive new tokens of one sequence
// (the host lists the tiles: token start, rows, sequence) and W query heads
// of one GQA group, one warp per head. The block walks the key positions
// 0 .. last row's position in steps of PF_KT = 64 keys, which covers a
// cached prefix and the new tokens alike; each key/value step is gathered
// once through the block table into shared memory, in 16-byte loads, and
// used by all W heads. Per warp and step (four 16-key WMMA tiles):
//   S = Q K^T           (WMMA over head_dim / 16 steps, fp32, to shared memory)
//   online softmax      (fp32, two lanes per row, causal mask by position)
//   O = O * corr + P V  (WMMA, P rounded to fp16; O in registers as
//                        head_dim / 16 accumulator fragments, rescaled
//                        through a row map of the fragment layout)
//
// Why the group: the first version (one warp per (tile, head), 2-byte
// gathers with two integer divisions each, shared memory sized for
// head_dim 256) ran at ~2.5 TFLOP/s on an H200, 88% of a 2048-token
// prefill step. Sharing a K/V tile across the group's heads cuts the
// gather G times, vector loads cut it 8 times more, and shared memory
// sized by the real head_dim lets more blocks reside. 64 keys a step
// rather than 16 sync the block a quarter as often.
//
// Shared memory: K and V steps (2 * 64 * head_dim halves, 32 KB at
// head_dim 128) plus, per warp, its Q tile (16 * head_dim halves), S
// (16 x 64 floats), P and the softmax state: ~10 KB a warp at head_dim
// 128. W is the group size, capped at 8 and by the device's per-block
// shared memory (V100 96 KB: W = 6 at head_dim 128).
// Bytes: each block reads its keys and values once (ctx * head_dim * 4);
// FLOPs: 4 * 16 * ctx * head_dim per (tile, head).
//
// The int8 KV cache (kernels/kv_int8.cuh): the KV8 instantiation's gather
// loads 8 values as 8 bytes with their row's scale and stores them
// dequantized (kv8_dequant8), the fp16 values the fp16 kernel would have
// gathered from the cache dequantized to fp16; the rest is unchanged.
#include <cuda_fp16.h>
#include <mma.h>

#include "kernels.h"
#include "kv_int8.cuh"

using namespace nvcuda;

#define PF_TILE 16 /* query rows per warp (one WMMA tile) */
#define PF_KT 64   /* keys per step: four WMMA tiles */
#define PF_MAX_HD 256
#define PF_MAX_WARPS 8
#define PF_NEG_INF __int_as_float(0xff800000)

__host__ __device__ static inline size_t pf_align(size_t n)
{
    return (n + 31) & ~(size_t)31; /* WMMA pointers: 256-bit aligned */
}

// Byte offsets inside the dynamic shared memory for head_dim hd.
__host__ __device__ static inline size_t pf_shared_bytes(int hd)
{
    return pf_align((size_t)2 * PF_KT * hd * sizeof(__half)) + pf_align(PF_TILE * sizeof(int));
}
__host__ __device__ static inline size_t pf_warp_bytes(int hd)
{
    return pf_align((size_t)PF_TILE * hd * sizeof(__half)) +  /* q */
           pf_align(PF_TILE * PF_KT * sizeof(float)) +        /* s */
           pf_align(PF_TILE * PF_KT * sizeof(__half)) +       /* p */
           pf_align(3 * PF_TILE * sizeof(float));             /* m, l, corr */
}

// NF = head_dim / 16: O is NF accumulator fragments in registers; KV8:
// the cache is int8, else fp16.
template <int NF, bool KV8>
__global__ void attention_prefill_kernel(__half *out, const __half *q, const void *k_cache,
                                         const void *v_cache, const int *positions,
                                         const int *tiles, const int *block_tables,
                                         int max_blocks, int heads, int kv_heads, int head_dim,
                                         int block_size, float scale, int heads_per_block)
{
    extern __shared__ __align__(32) unsigned char smem_raw[];
    const int hd = head_dim, G = heads / kv_heads, W = heads_per_block;
    const int groups = (G + W - 1) / W; /* blocks per kv head */
    const int tile = blockIdx.x, kvh = blockIdx.y / groups, hg = blockIdx.y % groups;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int gi = hg * W + warp; /* this warp's head within the group */
    const bool active = gi < G;
    const int h = kvh * G + gi;
    const int t0 = tiles[3 * tile], rows = tiles[3 * tile + 1], seq = tiles[3 * tile + 2];
    const int *table = block_tables + (size_t)seq * max_blocks;

    __half *sk = (__half *)smem_raw;
    __half *sv = sk + PF_KT * hd;
    int *spos = (int *)(smem_raw + pf_align((size_t)2 * PF_KT * hd * sizeof(__half)));
    unsigned char *mine = smem_raw + pf_shared_bytes(hd) + (size_t)warp * pf_warp_bytes(hd);
    __half *sq = (__half *)mine;
    float *ss = (float *)(mine + pf_align((size_t)PF_TILE * hd * sizeof(__half)));
    __half *sp = (__half *)((unsigned char *)ss + pf_align(PF_TILE * PF_KT * sizeof(float)));
    float *sm_ = (float *)((unsigned char *)sp + pf_align(PF_TILE * PF_KT * sizeof(__half)));
    float *sl = sm_ + PF_TILE, *scorr = sl + PF_TILE;

    const int cpr = hd / 8; /* 16-byte chunks per row */
    if (threadIdx.x < PF_TILE)
        spos[threadIdx.x] = (int)threadIdx.x < rows ? positions[t0 + threadIdx.x] : -1;
    if (active) {
        // Q tile (rows past `rows` zeroed), O, running softmax state.
        for (int c = lane; c < PF_TILE * cpr; c += 32) {
            int r = c / cpr, d8 = c % cpr;
            uint4 v = make_uint4(0u, 0u, 0u, 0u);
            if (r < rows)
                v = *(const uint4 *)(q + ((size_t)(t0 + r) * heads + h) * hd + (size_t)d8 * 8);
            *(uint4 *)(sq + r * hd + d8 * 8) = v;
        }
        if (lane < PF_TILE) {
            sm_[lane] = PF_NEG_INF;
            sl[lane] = 0.0f;
        }
    }
    const int last_pos = positions[t0 + rows - 1];

    // O stays in registers, NF fragments. A fragment's element-to-(row,
    // column) layout is opaque but the same for every fragment of a type,
    // so it is read once from fragments loaded from row and column ids;
    // the per-row rescale of the online softmax then works on registers.
    // (O in shared memory, loaded, rescaled and stored every step, cost
    // more than the MMAs; it also halved the blocks an SM holds.)
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> o_frag[NF];
    int rmap[8], cmap[8];
    if (active) {
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> idf;
        for (int i = lane; i < 256; i += 32)
            ss[(i >> 4) * PF_KT + (i & 15)] = (float)(i >> 4);
        __syncwarp();
        wmma::load_matrix_sync(idf, ss, PF_KT, wmma::mem_row_major);
#pragma unroll
        for (int e = 0; e < 8; e++)
            rmap[e] = (int)idf.x[e];
        __syncwarp();
        for (int i = lane; i < 256; i += 32)
            ss[(i >> 4) * PF_KT + (i & 15)] = (float)(i & 15);
        __syncwarp();
        wmma::load_matrix_sync(idf, ss, PF_KT, wmma::mem_row_major);
#pragma unroll
        for (int e = 0; e < 8; e++)
            cmap[e] = (int)idf.x[e];
        __syncwarp();
#pragma unroll
        for (int f = 0; f < NF; f++)
            wmma::fill_fragment(o_frag[f], 0.0f);
    }

    for (int j0 = 0; j0 <= last_pos; j0 += PF_KT) {
        __syncthreads(); /* every warp is done with the previous K/V tile */
        // Gather PF_KT keys and values through the block table, 16 bytes a load.
        for (int c = threadIdx.x; c < PF_KT * cpr; c += blockDim.x) {
            int r = c / cpr, d8 = c % cpr, j = j0 + r;
            uint4 kv = make_uint4(0u, 0u, 0u, 0u), vv = kv;
            if (j <= last_pos && KV8) {
                const int blk = table[j / block_size], row = j % block_size;
                const size_t vo =
                    kv8_values_at(blk, row, kvh, block_size, kv_heads, hd) + (size_t)d8 * 8;
                const size_t so = kv8_scale_at(blk, row, kvh, block_size, kv_heads, hd);
                const unsigned char *k8 = (const unsigned char *)k_cache;
                const unsigned char *v8 = (const unsigned char *)v_cache;
                kv = kv8_dequant8(*(const uint2 *)(k8 + vo), *(const float *)(k8 + so));
                vv = kv8_dequant8(*(const uint2 *)(v8 + vo), *(const float *)(v8 + so));
            } else if (j <= last_pos) {
                int blk = table[j / block_size];
                size_t base = (((size_t)blk * block_size + j % block_size) * kv_heads + kvh) * hd +
                              (size_t)d8 * 8;
                kv = *(const uint4 *)((const __half *)k_cache + base);
                vv = *(const uint4 *)((const __half *)v_cache + base);
            }
            *(uint4 *)(sk + r * hd + d8 * 8) = kv;
            *(uint4 *)(sv + r * hd + d8 * 8) = vv;
        }
        __syncthreads();
        if (!active)
            continue;
        // keys past the last row's position are zeros and masked: skip
        // their WMMA tiles (the last step of a chunk is often partial)
        const int kt = min(PF_KT, (last_pos - j0 + PF_TILE) / PF_TILE * PF_TILE);

        // S = Q K^T, one 16x16 tile of keys at a time: K stored [key][d]
        // row-major is K^T in column-major.
        for (int c0 = 0; c0 < kt; c0 += PF_TILE) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> s_frag;
            wmma::fill_fragment(s_frag, 0.0f);
            for (int d0 = 0; d0 < hd; d0 += 16) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> a;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> b;
                wmma::load_matrix_sync(a, sq + d0, hd);
                wmma::load_matrix_sync(b, sk + c0 * hd + d0, hd);
                wmma::mma_sync(s_frag, a, b, s_frag);
            }
            wmma::store_matrix_sync(ss + c0, s_frag, PF_KT, wmma::mem_row_major);
        }
        __syncwarp();

        // Online softmax, two lanes per row (kt / 2 columns each); masked
        // entries and the skipped tiles get p = 0.
        {
            const int r = lane >> 1, half_cols = PF_KT / 2, c0 = (lane & 1) * half_cols;
            const int p_row = spos[r];
            const float m_old = sm_[r];
            float m_new = m_old;
            for (int c = c0; c < c0 + half_cols; c++)
                if (c < kt && p_row >= 0 && j0 + c <= p_row)
                    m_new = fmaxf(m_new, ss[r * PF_KT + c] * scale);
            m_new = fmaxf(m_new, __shfl_xor_sync(0xffffffffu, m_new, 1));
            float sum = 0.0f;
            for (int c = c0; c < c0 + half_cols; c++) {
                float p = 0.0f;
                if (c < kt && p_row >= 0 && j0 + c <= p_row)
                    p = __expf(ss[r * PF_KT + c] * scale - m_new);
                __half ph = __float2half(p);
                sp[r * PF_KT + c] = ph;
                sum += __half2float(ph); // normalise by what P V actually sums
            }
            sum += __shfl_xor_sync(0xffffffffu, sum, 1);
            __syncwarp(); /* the odd lane has read m[r] before the even one writes it */
            if ((lane & 1) == 0) {
                float corr = (m_old == PF_NEG_INF) ? 0.0f : __expf(m_old - m_new);
                sl[r] = sl[r] * corr + sum;
                sm_[r] = m_new;
                scorr[r] = corr;
            }
        }
        __syncwarp();
        {
            float corr[8];
#pragma unroll
            for (int e = 0; e < 8; e++)
                corr[e] = scorr[rmap[e]];
#pragma unroll
            for (int f = 0; f < NF; f++)
#pragma unroll
                for (int e = 0; e < 8; e++)
                    o_frag[f].x[e] *= corr[e];
        }

        // O += P V over the kt keys, V stored [key][d] row-major; P's
        // fragments loaded once a step.
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> pa[PF_KT / PF_TILE];
#pragma unroll
        for (int c = 0; c < PF_KT / PF_TILE; c++)
            if (c * PF_TILE < kt)
                wmma::load_matrix_sync(pa[c], sp + c * PF_TILE, PF_KT);
#pragma unroll
        for (int f = 0; f < NF; f++) {
#pragma unroll
            for (int c = 0; c < PF_KT / PF_TILE; c++) {
                if (c * PF_TILE >= kt)
                    break;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> b;
                wmma::load_matrix_sync(b, sv + c * PF_TILE * hd + f * 16, hd);
                wmma::mma_sync(o_frag[f], pa[c], b, o_frag[f]);
            }
        }
        __syncwarp();
    }
    if (!active)
        return;
#pragma unroll
    for (int e = 0; e < 8; e++) {
        int r = rmap[e];
        if (r < rows) {
            float inv = 1.0f / sl[r];
            __half *o = out + ((size_t)(t0 + r) * heads + h) * hd + cmap[e];
#pragma unroll
            for (int f = 0; f < NF; f++)
                o[f * 16] = __float2half(o_frag[f].x[e] * inv);
        }
    }
}

#define PF_INSTANTIATE_KV(nf, kv)                                                             \
    template __global__ void attention_prefill_kernel<nf, kv>(                                \
        __half *, const __half *, const void *, const void *, const int *, const int *,       \
        const int *, int, int, int, int, int, float, int);
#define PF_INSTANTIATE(nf) PF_INSTANTIATE_KV(nf, false) PF_INSTANTIATE_KV(nf, true)
PF_INSTANTIATE(1) PF_INSTANTIATE(2) PF_INSTANTIATE(3) PF_INSTANTIATE(4) PF_INSTANTIATE(5)
PF_INSTANTIATE(6) PF_INSTANTIATE(7) PF_INSTANTIATE(8) PF_INSTANTIATE(9) PF_INSTANTIATE(10)
PF_INSTANTIATE(11) PF_INSTANTIATE(12) PF_INSTANTIATE(13) PF_INSTANTIATE(14) PF_INSTANTIATE(15)
PF_INSTANTIATE(16)
#undef PF_INSTANTIATE
#undef PF_INSTANTIATE_KV

#ifndef __CUDACC_RTC__
// Heads per block for this device (a V100's 96 KB under VB_EMULATE_SM):
// the group, at most PF_MAX_WARPS, as many as the per-block shared memory
// holds.
static int heads_per_block(int G, int hd, size_t *smem)
{
    vb_device_caps caps;
    const int optin = vb_device_caps_get(&caps) == cudaSuccess ? caps.smem_optin : 48 << 10;
    int W = G < PF_MAX_WARPS ? G : PF_MAX_WARPS;
    while (W > 1 && pf_shared_bytes(hd) + (size_t)W * pf_warp_bytes(hd) > (size_t)optin)
        W--;
    *smem = pf_shared_bytes(hd) + (size_t)W * pf_warp_bytes(hd);
    return *smem <= (size_t)optin ? W : 0;
}

// The fp16 and int8 entry points below; kv8: the cache is int8.
static cudaError_t prefill_launch(uint16_t *out, const uint16_t *q, const void *k_cache,
                                  const void *v_cache, const int *d_positions, const int *d_tiles,
                                  int n_tiles, const int *d_block_tables, int max_blocks,
                                  int heads, int kv_heads, int head_dim, int block_size,
                                  float scale, bool kv8, cudaStream_t stream)
{
    if (n_tiles == 0)
        return cudaSuccess;
    if (head_dim % 16 || head_dim > PF_MAX_HD || kv_heads <= 0 || heads % kv_heads)
        return cudaErrorInvalidValue;
    /* int8: 8-byte value loads and 4-byte scales (kv_int8.cuh) */
    if (kv8 && kv8_block_bytes(block_size, kv_heads, head_dim) % 8)
        return cudaErrorInvalidValue;
    size_t smem = 0;
    int G = heads / kv_heads, W = heads_per_block(G, head_dim, &smem);
    if (W == 0)
        return cudaErrorInvalidConfiguration; /* head_dim too large for this device */
    dim3 grid((unsigned)n_tiles, (unsigned)(kv_heads * ((G + W - 1) / W)));
    cudaError_t e = cudaErrorInvalidValue;
#define PF_LAUNCH_KV(nf, kv)                                                                  \
    e = cudaFuncSetAttribute(attention_prefill_kernel<nf, kv>,                                \
                             cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);         \
    if (e != cudaSuccess)                                                                     \
        return e;                                                                             \
    attention_prefill_kernel<nf, kv><<<grid, 32 * W, smem, stream>>>(                         \
        (__half *)out, (const __half *)q, k_cache, v_cache, d_positions, d_tiles,             \
        d_block_tables, max_blocks, heads, kv_heads, head_dim, block_size, scale, W);
#define PF_LAUNCH(nf)                                                                         \
    case nf:                                                                                  \
        if (kv8) {                                                                            \
            PF_LAUNCH_KV(nf, true)                                                            \
        } else {                                                                              \
            PF_LAUNCH_KV(nf, false)                                                           \
        }                                                                                     \
        break;
    switch (head_dim / 16) {
        PF_LAUNCH(1) PF_LAUNCH(2) PF_LAUNCH(3) PF_LAUNCH(4) PF_LAUNCH(5) PF_LAUNCH(6)
        PF_LAUNCH(7) PF_LAUNCH(8) PF_LAUNCH(9) PF_LAUNCH(10) PF_LAUNCH(11) PF_LAUNCH(12)
        PF_LAUNCH(13) PF_LAUNCH(14) PF_LAUNCH(15) PF_LAUNCH(16)
    default: return cudaErrorInvalidValue;
    }
#undef PF_LAUNCH
#undef PF_LAUNCH_KV
    return cudaGetLastError();
}

extern "C" cudaError_t vb_attention_prefill_f16(uint16_t *out, const uint16_t *q,
                                                const uint16_t *k_cache, const uint16_t *v_cache,
                                                const int *d_positions, const int *d_tiles,
                                                int n_tiles, const int *d_block_tables,
                                                int max_blocks, int heads, int kv_heads,
                                                int head_dim, int block_size, float scale,
                                                cudaStream_t stream)
{
    return prefill_launch(out, q, k_cache, v_cache, d_positions, d_tiles, n_tiles,
                          d_block_tables, max_blocks, heads, kv_heads, head_dim, block_size,
                          scale, false, stream);
}

extern "C" cudaError_t vb_attention_prefill_kv8(uint16_t *out, const uint16_t *q,
                                                const void *k_cache, const void *v_cache,
                                                const int *d_positions, const int *d_tiles,
                                                int n_tiles, const int *d_block_tables,
                                                int max_blocks, int heads, int kv_heads,
                                                int head_dim, int block_size, float scale,
                                                cudaStream_t stream)
{
    return prefill_launch(out, q, k_cache, v_cache, d_positions, d_tiles, n_tiles,
                          d_block_tables, max_blocks, heads, kv_heads, head_dim, block_size,
                          scale, true, stream);
}
#endif

// Causal prefill attention over the paged KV cache with tensor cores
// (WMMA 16x16x16, fp16 in, fp32 accumulate: available on sm_70).
//
// Work item: a tile of up to 16 consecutive new tokens of one sequence and
// one query head (the host lists the tiles: token start, rows, sequence).
// One warp per item walks the key positions 0 .. last row's position in
// tiles of 16, which covers a cached prefix and the new tokens alike:
//   S = Q K^T           (WMMA over head_dim / 16 steps, fp32)
//   online softmax      (fp32, per row, causal mask by position)
//   O = O * corr + P V  (WMMA, P rounded to fp16, O kept in fp32 in shared
//                        memory because a fragment's row layout is opaque)
// Keys and values are gathered row by row through the block table, so any
// block size works. Bytes: each item reads its keys and values once
// (ctx * head_dim * 4); FLOPs: 4 * 16 * ctx * head_dim per item.
#include <cuda_fp16.h>
#include <mma.h>

#include "kernels.h"

using namespace nvcuda;

#define PF_TILE 16
#define PF_MAX_HD 256
#define PF_NEG_INF __int_as_float(0xff800000)

struct pf_smem {
    __half q[PF_TILE * PF_MAX_HD];
    __half k[PF_TILE * PF_MAX_HD];
    __half v[PF_TILE * PF_MAX_HD];
    float o[PF_TILE * PF_MAX_HD];
    float s[PF_TILE * PF_TILE];
    __half p[PF_TILE * PF_TILE];
    float m[PF_TILE], l[PF_TILE];
    int pos[PF_TILE];
};

__global__ void attention_prefill_kernel(__half *out, const __half *q, const __half *k_cache,
                                         const __half *v_cache, const int *positions,
                                         const int *tiles, const int *block_tables,
                                         int max_blocks, int heads, int kv_heads, int head_dim,
                                         int block_size, float scale)
{
    extern __shared__ __align__(32) unsigned char smem_raw[];
    pf_smem *sm = (pf_smem *)smem_raw;
    const int tile = blockIdx.x, h = blockIdx.y, lane = threadIdx.x;
    const int t0 = tiles[3 * tile], rows = tiles[3 * tile + 1], seq = tiles[3 * tile + 2];
    const int kvh = h / (heads / kv_heads);
    const int *table = block_tables + (size_t)seq * max_blocks;
    const int hd = head_dim;

    // Q tile (rows past `rows` zeroed), positions, running softmax state.
    for (int i = lane; i < PF_TILE * hd; i += 32) {
        int r = i / hd, d = i % hd;
        sm->q[i] = r < rows ? q[((size_t)(t0 + r) * heads + h) * hd + d] : __float2half(0.0f);
        sm->o[i] = 0.0f;
    }
    if (lane < PF_TILE) {
        sm->pos[lane] = lane < rows ? positions[t0 + lane] : -1;
        sm->m[lane] = PF_NEG_INF;
        sm->l[lane] = 0.0f;
    }
    __syncwarp();
    const int last_pos = positions[t0 + rows - 1];

    for (int j0 = 0; j0 <= last_pos; j0 += PF_TILE) {
        // Gather 16 keys and values through the block table.
        for (int i = lane; i < PF_TILE * hd; i += 32) {
            int r = i / hd, d = i % hd, j = j0 + r;
            __half kv0 = __float2half(0.0f), vv0 = kv0;
            if (j <= last_pos) {
                int blk = table[j / block_size];
                size_t base = (((size_t)blk * block_size + j % block_size) * kv_heads + kvh) * hd;
                kv0 = k_cache[base + d];
                vv0 = v_cache[base + d];
            }
            sm->k[i] = kv0;
            sm->v[i] = vv0;
        }
        __syncwarp();

        // S = Q K^T: K stored [key][d] row-major is K^T in column-major.
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> s_frag;
        wmma::fill_fragment(s_frag, 0.0f);
        for (int d0 = 0; d0 < hd; d0 += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> a;
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> b;
            wmma::load_matrix_sync(a, sm->q + d0, hd);
            wmma::load_matrix_sync(b, sm->k + d0, hd);
            wmma::mma_sync(s_frag, a, b, s_frag);
        }
        wmma::store_matrix_sync(sm->s, s_frag, PF_TILE, wmma::mem_row_major);
        __syncwarp();

        // Online softmax, one lane per row; masked entries get p = 0.
        if (lane < PF_TILE) {
            int r = lane, p_row = sm->pos[r];
            float m_old = sm->m[r], m_new = m_old;
            for (int c = 0; c < PF_TILE; c++)
                if (p_row >= 0 && j0 + c <= p_row)
                    m_new = fmaxf(m_new, sm->s[r * PF_TILE + c] * scale);
            float corr = (m_old == PF_NEG_INF) ? 0.0f : __expf(m_old - m_new);
            float sum = 0.0f;
            for (int c = 0; c < PF_TILE; c++) {
                float p = 0.0f;
                if (p_row >= 0 && j0 + c <= p_row)
                    p = __expf(sm->s[r * PF_TILE + c] * scale - m_new);
                __half ph = __float2half(p);
                sm->p[r * PF_TILE + c] = ph;
                sum += __half2float(ph); // normalise by what P V actually sums
            }
            sm->l[r] = sm->l[r] * corr + sum;
            sm->m[r] = m_new;
            sm->s[r * PF_TILE] = corr; // reuse column 0 to pass corr on
        }
        __syncwarp();
        for (int i = lane; i < PF_TILE * hd; i += 32)
            sm->o[i] *= sm->s[(i / hd) * PF_TILE];
        __syncwarp();

        // O += P V, V stored [key][d] row-major.
        for (int d0 = 0; d0 < hd; d0 += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> a;
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> b;
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> o_frag;
            wmma::load_matrix_sync(a, sm->p, PF_TILE);
            wmma::load_matrix_sync(b, sm->v + d0, hd);
            wmma::load_matrix_sync(o_frag, sm->o + d0, hd, wmma::mem_row_major);
            wmma::mma_sync(o_frag, a, b, o_frag);
            wmma::store_matrix_sync(sm->o + d0, o_frag, hd, wmma::mem_row_major);
        }
        __syncwarp();
    }
    for (int i = lane; i < rows * hd; i += 32) {
        int r = i / hd, d = i % hd;
        out[((size_t)(t0 + r) * heads + h) * hd + d] = __float2half(sm->o[i] / sm->l[r]);
    }
}

#ifndef __CUDACC_RTC__
extern "C" size_t vb_attention_prefill_smem_bytes(void)
{
    return sizeof(pf_smem);
}

extern "C" cudaError_t vb_attention_prefill_f16(uint16_t *out, const uint16_t *q,
                                                const uint16_t *k_cache, const uint16_t *v_cache,
                                                const int *d_positions, const int *d_tiles,
                                                int n_tiles, const int *d_block_tables,
                                                int max_blocks, int heads, int kv_heads,
                                                int head_dim, int block_size, float scale,
                                                cudaStream_t stream)
{
    if (n_tiles == 0)
        return cudaSuccess;
    if (head_dim % 16 || head_dim > PF_MAX_HD || kv_heads <= 0 || heads % kv_heads)
        return cudaErrorInvalidValue;
    size_t smem = sizeof(pf_smem);
    cudaError_t e = cudaFuncSetAttribute(attention_prefill_kernel,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e != cudaSuccess)
        return e;
    dim3 grid((unsigned)n_tiles, (unsigned)heads);
    attention_prefill_kernel<<<grid, 32, smem, stream>>>(
        (__half *)out, (const __half *)q, (const __half *)k_cache, (const __half *)v_cache,
        d_positions, d_tiles, d_block_tables, max_blocks, heads, kv_heads, head_dim, block_size,
        scale);
    return cudaGetLastError();
}
#endif

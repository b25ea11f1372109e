// RoPE on q and k (Hugging Face's rotate-half layout) fused with the write
// of k and v into the paged KV cache.
//
// Grid (T, heads + kv_heads), head_dim/2 threads: block (t, h) rotates query
// head h of token t; block (t, heads + j) rotates key head j and stores key
// and value head j at the token's cache slot. The angle is position *
// inv_freq[i] in fp32, as transformers computes it; cos and sin are scaled
// by yarn's attention factor (1 otherwise). Bytes: q, k read and written, v
// read, k and v written to the cache; ~10 FLOPs per pair.
#include <cuda_fp16.h>

#include "kernels.h"
#include "pdl.cuh"
#include "rope_math.cuh"

__global__ void rope_kv_kernel(__half *q, __half *k, const __half *v, __half *k_cache,
                               __half *v_cache, const float *inv_freq, float scale,
                               const int *positions, const int *token_seq,
                               const int *block_tables, int max_blocks, int heads,
                               int kv_heads, int head_dim, int block_size)
{
    // the angle needs only the step's positions: it is computed while the
    // previous kernel (pdl.cuh) still writes q, k and v
    int t = blockIdx.x, h = blockIdx.y, i = threadIdx.x;
    int half_dim = head_dim >> 1;
    int pos = positions[t];
    float c, s;
    rope_cos_sin(pos, inv_freq[i], scale, &c, &s);
    pdl_wait(); /* q, k, v are the previous kernel's output */
    pdl_launch_dependents();
    bool is_q = h < heads;
    int hh = is_q ? h : h - heads;
    __half *x = (is_q ? q + ((size_t)t * heads + hh) * head_dim
                      : k + ((size_t)t * kv_heads + hh) * head_dim);
    __half r0 = x[i], r1 = x[i + half_dim];
    rope_rotate(c, s, &r0, &r1);
    x[i] = r0;
    x[i + half_dim] = r1;
    if (is_q)
        return;
    int seq = token_seq[t];
    if (seq < 0)
        return; /* a padding row of a CUDA-graph bucket: no cache slot */
    int blk = block_tables[(size_t)seq * max_blocks + pos / block_size];
    size_t slot = (((size_t)blk * block_size + pos % block_size) * kv_heads + hh) * head_dim;
    const __half *vs = v + ((size_t)t * kv_heads + hh) * head_dim;
    k_cache[slot + i] = r0;
    k_cache[slot + i + half_dim] = r1;
    v_cache[slot + i] = vs[i];
    v_cache[slot + i + half_dim] = vs[i + half_dim];
}

#ifndef __CUDACC_RTC__
extern "C" cudaError_t vb_rope_kv_write_f16(uint16_t *q, uint16_t *k, const uint16_t *v,
                                            uint16_t *k_cache, uint16_t *v_cache,
                                            const float *d_inv_freq, float cos_sin_scale,
                                            const int *d_positions, const int *d_token_seq,
                                            const int *d_block_tables, int max_blocks, int T,
                                            int heads, int kv_heads, int head_dim,
                                            int block_size, cudaStream_t stream)
{
    if (T == 0)
        return cudaSuccess;
    if (head_dim % 2 || head_dim > 2048)
        return cudaErrorInvalidValue;
    dim3 grid((unsigned)T, (unsigned)(heads + kv_heads));
    return vb_launch_pdl(rope_kv_kernel, grid, dim3(head_dim / 2), 0, stream, (__half *)q,
                         (__half *)k, (const __half *)v, (__half *)k_cache, (__half *)v_cache,
                         d_inv_freq, cos_sin_scale, d_positions, d_token_seq, d_block_tables,
                         max_blocks, heads, kv_heads, head_dim, block_size);
}
#endif

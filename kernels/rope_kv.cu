// RoPE on q and k (Hugging Face's rotate-half layout) fused with the write
// of k and v into the paged KV cache.
//
// Grid (T): block t takes token t's query and key heads, head_dim/2
// threads a head and blockDim / (head_dim/2) heads at a time, so each
// thread computes its pair's angle once for all the token's heads; a key
// head's thread also stores the key and value pair at the token's cache
// slot. (A block a (token, head) of 64 threads ran at ~12 % of the copy
// bandwidth on a prefill step of 8,192 tokens, 316 us a call: the block
// count, 32 a token, was the limit; tests/bench/RESULTS.md, session 13.)
// The angle is position * inv_freq[i] in fp32, as transformers computes
// it; cos and sin are scaled by yarn's attention factor (1 otherwise).
// Bytes: q, k read and written, v read, k and v written to the cache;
// ~10 FLOPs per pair.
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
    const int t = blockIdx.x, half_dim = head_dim >> 1;
    const int i = threadIdx.x % half_dim, per_pass = blockDim.x / half_dim;
    const int pos = positions[t];
    float c, s;
    rope_cos_sin(pos, inv_freq[i], scale, &c, &s);
    const int seq = token_seq[t];
    size_t slot = 0;
    if (seq >= 0) /* < 0: a padding row of a CUDA-graph bucket, no cache slot */
        slot = ((size_t)block_tables[(size_t)seq * max_blocks + pos / block_size] * block_size +
                pos % block_size) *
               kv_heads;
    pdl_wait(); /* q, k, v are the previous kernel's output */
    pdl_launch_dependents();
    for (int h = threadIdx.x / half_dim; h < heads + kv_heads; h += per_pass) {
        const bool is_q = h < heads;
        const int hh = is_q ? h : h - heads;
        __half *x = (is_q ? q + ((size_t)t * heads + hh) * head_dim
                          : k + ((size_t)t * kv_heads + hh) * head_dim);
        __half r0 = x[i], r1 = x[i + half_dim];
        rope_rotate(c, s, &r0, &r1);
        x[i] = r0;
        x[i + half_dim] = r1;
        if (is_q || seq < 0)
            continue;
        const size_t at = (slot + hh) * head_dim;
        const __half *vs = v + ((size_t)t * kv_heads + hh) * head_dim;
        k_cache[at + i] = r0;
        k_cache[at + i + half_dim] = r1;
        v_cache[at + i] = vs[i];
        v_cache[at + i + half_dim] = vs[i + half_dim];
    }
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
    /* whole heads a block, ~256 threads (64 at head_dim 128: 4 heads a pass) */
    int half_dim = head_dim / 2, threads = half_dim * (half_dim < 256 ? 256 / half_dim : 1);
    return vb_launch_pdl(rope_kv_kernel, dim3((unsigned)T), dim3((unsigned)threads), 0, stream,
                         (__half *)q, (__half *)k, (const __half *)v, (__half *)k_cache,
                         (__half *)v_cache, d_inv_freq, cos_sin_scale, d_positions, d_token_seq,
                         d_block_tables, max_blocks, heads, kv_heads, head_dim, block_size);
}
#endif

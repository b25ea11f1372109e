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
//
// rope_kv8_kernel is the same for an int8 cache (kernels/kv_int8.cuh):
// grid (T, ceil((heads + kv_heads) / KV8_WARPS)), a warp a (token, head).
// A query head's warp rotates its pairs as above. A key head's warp
// rotates k (the same fp16 roundings, k written back in place), then
// quantizes the rotated row and the value row as kv_int8_quantize does
// (src/forward/kv_int8.c), so the cache holds the bytes the CPU backend
// would store for those fp16 values: max |x| by a warp reduction (fmaxf
// ignores NaN there as on the host), scale = max / 127 and 127 / max both
// correctly rounded divisions, x * (127 / max) one rounded multiply,
// rintf (to nearest, ties to even, as nearbyintf in the default mode),
// NaN -> 0, clamped to +-127; a row of zeros or with an infinity: zeros
// and scale 0. The quantizer reads the rotated k back from global memory,
// elements other lanes of the warp wrote: a __syncwarp orders the two.
#include <cuda_fp16.h>

#include "kernels.h"
#include "kv_int8.cuh"
#include "pdl.cuh"
#include "rope_math.cuh"

#define KV8_WARPS 4
#define KV8_INF __int_as_float(0x7f800000) /* no math headers under NVRTC */

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

// Quantizes x[0 .. n) (fp16, this warp's row) into q and *scale_out.
__device__ __forceinline__ void kv8_quantize_row(const __half *x, int n, signed char *q,
                                                 float *scale_out, int lane)
{
    float amax = 0.0f;
    for (int e = lane; e < n; e += 32)
        amax = fmaxf(amax, fabsf(__half2float(x[e])));
#pragma unroll
    for (int off = 16; off > 0; off >>= 1)
        amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
    if (!(amax > 0.0f) || amax == KV8_INF) {
        for (int e = lane; e < n; e += 32)
            q[e] = 0;
        if (lane == 0)
            *scale_out = 0.0f;
        return;
    }
    const float inv = __fdiv_rn(127.0f, amax);
    for (int e = lane; e < n; e += 32) {
        float r = rintf(__fmul_rn(__half2float(x[e]), inv));
        if (r != r)
            r = 0.0f; /* a NaN among finite values */
        q[e] = (signed char)(r > 127.0f ? 127 : r < -127.0f ? -127 : (int)r);
    }
    if (lane == 0)
        *scale_out = __fdiv_rn(amax, 127.0f);
}

__global__ void __launch_bounds__(32 * KV8_WARPS)
    rope_kv8_kernel(__half *q, __half *k, const __half *v, unsigned char *k_cache,
                    unsigned char *v_cache, const float *inv_freq, float scale,
                    const int *positions, const int *token_seq, const int *block_tables,
                    int max_blocks, int heads, int kv_heads, int head_dim, int block_size)
{
    const int t = blockIdx.x, lane = threadIdx.x & 31;
    const int h = blockIdx.y * KV8_WARPS + (threadIdx.x >> 5);
    const int half_dim = head_dim >> 1, pos = positions[t];
    pdl_wait(); /* q, k, v are the previous kernel's output */
    pdl_launch_dependents();
    if (h >= heads + kv_heads)
        return; /* whole warps: no shuffle is left waiting */
    const bool is_q = h < heads;
    const int hh = is_q ? h : h - heads;
    __half *x = is_q ? q + ((size_t)t * heads + hh) * head_dim
                     : k + ((size_t)t * kv_heads + hh) * head_dim;
    for (int i = lane; i < half_dim; i += 32) {
        float c, s;
        rope_cos_sin(pos, inv_freq[i], scale, &c, &s);
        __half r0 = x[i], r1 = x[i + half_dim];
        rope_rotate(c, s, &r0, &r1);
        x[i] = r0;
        x[i + half_dim] = r1;
    }
    const int seq = token_seq[t];
    if (is_q || seq < 0)
        return; /* a query head, or a padding row of a CUDA-graph bucket: no cache slot */
    __syncwarp(); /* the rotated k of the other lanes, before the quantizer reads it */
    const int blk = block_tables[(size_t)seq * max_blocks + pos / block_size];
    const int row = pos % block_size;
    const size_t vo = kv8_values_at(blk, row, hh, block_size, kv_heads, head_dim);
    const size_t so = kv8_scale_at(blk, row, hh, block_size, kv_heads, head_dim);
    kv8_quantize_row(x, head_dim, (signed char *)(k_cache + vo), (float *)(k_cache + so), lane);
    kv8_quantize_row(v + ((size_t)t * kv_heads + hh) * head_dim, head_dim,
                     (signed char *)(v_cache + vo), (float *)(v_cache + so), lane);
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

extern "C" cudaError_t vb_rope_kv_write_kv8(uint16_t *q, uint16_t *k, const uint16_t *v,
                                            void *k_cache, void *v_cache,
                                            const float *d_inv_freq, float cos_sin_scale,
                                            const int *d_positions, const int *d_token_seq,
                                            const int *d_block_tables, int max_blocks, int T,
                                            int heads, int kv_heads, int head_dim,
                                            int block_size, cudaStream_t stream)
{
    if (T == 0)
        return cudaSuccess;
    /* the fp32 scales 4-byte aligned (kv_int8.cuh): always with the
     * engine's blocks of 16 */
    if (head_dim % 2 || head_dim > 2048 || kv_heads <= 0 || block_size <= 0 ||
        kv8_block_bytes(block_size, kv_heads, head_dim) % 4)
        return cudaErrorInvalidValue;
    dim3 grid((unsigned)T, (unsigned)((heads + kv_heads + KV8_WARPS - 1) / KV8_WARPS));
    return vb_launch_pdl(rope_kv8_kernel, grid, dim3(32 * KV8_WARPS), 0, stream, (__half *)q,
                         (__half *)k, (const __half *)v, (unsigned char *)k_cache,
                         (unsigned char *)v_cache, d_inv_freq, cos_sin_scale, d_positions,
                         d_token_seq, d_block_tables, max_blocks, heads, kv_heads, head_dim,
                         block_size);
}
#endif

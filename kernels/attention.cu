// Causal attention over the paged KV cache for a ragged batch: each new
// token's query head attends to its sequence's cached positions <= its own.
// Any token works (prefill, chunks, decode); the backend sends it the
// decode tokens (token_list) and the tensor-core kernel in
// attention_prefill.cu the rest. With token_list NULL it takes all T.
//
// Grid (T, heads), 4 warps per block. Warp w takes key positions w, w+4,
// ...; lanes split head_dim (head_dim/32 elements each), reduce the dot
// product with shuffles and keep a running (max, sum, acc) online softmax
// in fp32. The four partial results are merged through shared memory.
// This is the plain, correct path: every (token, head) reads its keys and
// values once, so a GQA group re-reads the same KV head (the group-sharing
// and WMMA-tiled prefill versions come with the performance work). Bytes:
// ctx * head_dim * 4 per (token, head); FLOPs: 4 * ctx * head_dim.
//
// The int8 KV cache (kernels/kv_int8.cuh): the KV8 instantiation reads a
// byte a value and the row's scale and dequantizes each value as it is
// loaded (kv8_dequant1: the fp16 value the other kernels see).
#include <cuda_fp16.h>

#include "kernels.h"
#include "kv_int8.cuh"

#define ATT_WARPS 4
#define ATT_MAX_PER_LANE 8 /* head_dim up to 256 */
#define ATT_NEG_INF __int_as_float(0xff800000) /* -inf without math headers (NVRTC) */

template <bool KV8>
__global__ void attention_kernel(__half *out, const __half *q, const void *k_cache,
                                 const void *v_cache, const int *token_list,
                                 const int *positions,
                                 const int *token_seq, const int *block_tables, int max_blocks,
                                 int heads, int kv_heads, int head_dim, int block_size,
                                 float scale)
{
    __shared__ float s_m[ATT_WARPS], s_l[ATT_WARPS];
    __shared__ float s_acc[ATT_WARPS][ATT_MAX_PER_LANE * 32];
    int t = token_list ? token_list[blockIdx.x] : (int)blockIdx.x, h = blockIdx.y;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int per_lane = (head_dim + 31) >> 5; /* lane holds elements lane + 32 e < head_dim */
    int kvh = h / (heads / kv_heads);
    int pos = positions[t];
    if (token_seq[t] < 0) {
        /* a padding row of a CUDA-graph bucket (whole block returns) */
        for (int e = threadIdx.x; e < head_dim; e += blockDim.x)
            out[((size_t)t * heads + h) * head_dim + e] = __float2half(0.0f);
        return;
    }
    const int *table = block_tables + (size_t)token_seq[t] * max_blocks;

    float qr[ATT_MAX_PER_LANE], acc[ATT_MAX_PER_LANE];
    const __half *qp = q + ((size_t)t * heads + h) * head_dim;
#pragma unroll
    for (int e = 0; e < ATT_MAX_PER_LANE; e++) {
        qr[e] = lane + 32 * e < head_dim ? __half2float(qp[lane + 32 * e]) * scale : 0.0f;
        acc[e] = 0.0f;
    }
    float m = ATT_NEG_INF, l = 0.0f;
    for (int j = warp; j <= pos; j += ATT_WARPS) {
        int blk = table[j / block_size];
        size_t base = (((size_t)blk * block_size + j % block_size) * kv_heads + kvh) * head_dim;
        const __half *kh = (const __half *)k_cache, *vh = (const __half *)v_cache;
        const signed char *k8 = (const signed char *)k_cache, *v8 = (const signed char *)v_cache;
        float ks = 0.0f, vs = 0.0f;
        if (KV8) {
            /* the row's values and scales (base is the fp16 cache's offset) */
            const size_t so = kv8_scale_at(blk, j % block_size, kvh, block_size, kv_heads,
                                           head_dim);
            base = kv8_values_at(blk, j % block_size, kvh, block_size, kv_heads, head_dim);
            ks = *(const float *)(k8 + so);
            vs = *(const float *)(v8 + so);
        }
        float dot = 0.0f;
#pragma unroll
        for (int e = 0; e < ATT_MAX_PER_LANE; e++)
            if (lane + 32 * e < head_dim)
                dot += qr[e] * (KV8 ? kv8_dequant1(k8[base + lane + 32 * e], ks)
                                    : __half2float(kh[base + lane + 32 * e]));
        for (int off = 16; off > 0; off >>= 1)
            dot += __shfl_xor_sync(0xffffffffu, dot, off);
        float m_new = fmaxf(m, dot);
        float corr = __expf(m - m_new);
        float p = __expf(dot - m_new);
        l = l * corr + p;
#pragma unroll
        for (int e = 0; e < ATT_MAX_PER_LANE; e++)
            if (lane + 32 * e < head_dim)
                acc[e] = acc[e] * corr + p * (KV8 ? kv8_dequant1(v8[base + lane + 32 * e], vs)
                                                  : __half2float(vh[base + lane + 32 * e]));
        m = m_new;
    }
    if (lane == 0) {
        s_m[warp] = m;
        s_l[warp] = l;
    }
#pragma unroll
    for (int e = 0; e < ATT_MAX_PER_LANE; e++)
        if (lane + 32 * e < head_dim)
            s_acc[warp][lane + 32 * e] = acc[e];
    __syncthreads();
    if (warp != 0)
        return;
    float m_all = ATT_NEG_INF;
    for (int w = 0; w < ATT_WARPS; w++)
        m_all = fmaxf(m_all, s_m[w]);
    float l_all = 0.0f, f[ATT_WARPS];
    for (int w = 0; w < ATT_WARPS; w++) {
        // A warp that saw no position (short contexts) has m = -inf, l = 0.
        f[w] = s_l[w] > 0.0f ? __expf(s_m[w] - m_all) : 0.0f;
        l_all += s_l[w] * f[w];
    }
    __half *op = out + ((size_t)t * heads + h) * head_dim;
    for (int e = 0; e < per_lane && lane + 32 * e < head_dim; e++) {
        float v = 0.0f;
        for (int w = 0; w < ATT_WARPS; w++)
            v += s_acc[w][lane + 32 * e] * f[w];
        op[lane + 32 * e] = __float2half(v / l_all);
    }
}

template __global__ void attention_kernel<false>(__half *, const __half *, const void *,
                                                  const void *, const int *, const int *,
                                                  const int *, const int *, int, int, int, int,
                                                  int, float);
template __global__ void attention_kernel<true>(__half *, const __half *, const void *,
                                                 const void *, const int *, const int *,
                                                 const int *, const int *, int, int, int, int,
                                                 int, float);

#ifndef __CUDACC_RTC__
// The fp16 and int8 entry points below; kv8: the cache is int8.
static cudaError_t attention_launch(uint16_t *out, const uint16_t *q, const void *k_cache,
                                    const void *v_cache, const int *d_token_list,
                                    const int *d_positions, const int *d_token_seq,
                                    const int *d_block_tables, int max_blocks, int T, int heads,
                                    int kv_heads, int head_dim, int block_size, float scale,
                                    bool kv8, cudaStream_t stream)
{
    if (T == 0)
        return cudaSuccess;
    if (head_dim % 2 || head_dim > 32 * ATT_MAX_PER_LANE || kv_heads <= 0 ||
        heads % kv_heads)
        return cudaErrorInvalidValue;
    /* int8: the fp32 scales 4-byte aligned (kv_int8.cuh) */
    if (kv8 && kv8_block_bytes(block_size, kv_heads, head_dim) % 4)
        return cudaErrorInvalidValue;
    dim3 grid((unsigned)T, (unsigned)heads);
    if (kv8)
        attention_kernel<true><<<grid, 32 * ATT_WARPS, 0, stream>>>(
            (__half *)out, (const __half *)q, k_cache, v_cache, d_token_list, d_positions,
            d_token_seq, d_block_tables, max_blocks, heads, kv_heads, head_dim, block_size,
            scale);
    else
        attention_kernel<false><<<grid, 32 * ATT_WARPS, 0, stream>>>(
            (__half *)out, (const __half *)q, k_cache, v_cache, d_token_list, d_positions,
            d_token_seq, d_block_tables, max_blocks, heads, kv_heads, head_dim, block_size,
            scale);
    return cudaGetLastError();
}

extern "C" cudaError_t vb_attention_f16(uint16_t *out, const uint16_t *q, const uint16_t *k_cache,
                                        const uint16_t *v_cache, const int *d_token_list,
                                        const int *d_positions,
                                        const int *d_token_seq, const int *d_block_tables,
                                        int max_blocks, int T, int heads, int kv_heads,
                                        int head_dim, int block_size, float scale,
                                        cudaStream_t stream)
{
    return attention_launch(out, q, k_cache, v_cache, d_token_list, d_positions, d_token_seq,
                            d_block_tables, max_blocks, T, heads, kv_heads, head_dim,
                            block_size, scale, false, stream);
}

extern "C" cudaError_t vb_attention_kv8(uint16_t *out, const uint16_t *q, const void *k_cache,
                                        const void *v_cache, const int *d_token_list,
                                        const int *d_positions, const int *d_token_seq,
                                        const int *d_block_tables, int max_blocks, int T,
                                        int heads, int kv_heads, int head_dim, int block_size,
                                        float scale, cudaStream_t stream)
{
    return attention_launch(out, q, k_cache, v_cache, d_token_list, d_positions, d_token_seq,
                            d_block_tables, max_blocks, T, heads, kv_heads, head_dim,
                            block_size, scale, true, stream);
}
#endif

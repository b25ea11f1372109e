// Paged decode attention, GQA-aware and split over the sequence
// (flash-decoding): the kernel for tokens that are the only new token of
// their sequence, which is every token of a decode step.
//
// Why not attention.cu's per-(token, head) blocks: in a group of G query
// heads sharing one key/value head, those blocks read the same K and V
// rows G times (G = 7 on Qwen2.5-7B), and at batch 1 there are only
// `heads` blocks, far fewer than the GPU has SMs. Here a block takes one
// (token, kv head, split): it reads each K and V row of its slice of the
// context once and uses it for all G query heads, and a decode step with
// few sequences is split over the context so every SM has work.
//
// Grid (T, heads / G, splits), 4 warps: a block takes G query heads of one
// kv head's group, the whole group (G = heads / kv_heads) or one head
// (G = 1: small steps, see vb_attention_decode_heads_per_block). A K or V
// row is read by LPR lanes (8 head_dim elements each, one 16-byte load;
// LPR = 8, 16 or 32 for head_dim up to 64, 128, 256), so a warp covers
// RPW = 32 / LPR positions per load and DEC_STEP = 8 positions per step
// (the step's loads issued together). Each lane keeps G running (max, sum,
// acc) online softmaxes in fp32 for its positions and 8 elements; a dot
// product is reduced over its LPR lanes (log2 LPR shuffles for RPW
// positions at once). The RPW position groups of a warp merge by shuffles,
// the 4 warps through shared memory. With one split the block writes the
// normalised fp16 output; with more it writes fp32 partials (max, sum,
// unnormalised acc), and the last of a (token, heads) group's split blocks
// to finish combines them (dec_combine_head): each block counts itself in
// a per-group counter after its partials are visible, and the one that
// completes the count reads every split's partials back from L2 (a
// counter per group in dec_split_counters, reset by that block): one
// launch fewer a layer than with a kernel of its own for the combine
// (attention_decode_reduce, still taken with
// vb_attention_decode_reduce_kernel(1)), 20-40 us a batch-1 7B step on an
// H100 (RESULTS.md, session 34). The combine is the same function either
// way, so are the bits. (The first
// form, lanes over head_dim with 2-byte loads and a 5-level shuffle per
// position and head, ran at ~270 GB/s of K/V on an H200 once a step had 64
// sequences: 0.5 ms a layer at 1024 positions.)
//
// The split count (and the heads a block) depends only on T, the heads and
// the block-table width (not on this step's context lengths), so a CUDA
// graph recorded for a decode bucket stays valid; each block cuts its
// slice from its token's own context length (ctx / splits, at least
// DEC_MIN_SLICE positions), so a short context is spread over several
// blocks instead of landing whole in the first slice of the table width,
// and blocks past the context return at once. Under --batch-invariant on a
// GPU without attention_decode_mma.cu (V100) the slices are fixed instead
// (slice > 0: split s takes positions [s * slice, (s + 1) * slice)), so a
// token's sums depend on its positions alone, not on the step's size.
// Bytes: K and V read once per kv head, 4 * ctx * head_dim per (token,
// kv head); FLOPs 4 * ctx * head_dim * G.
//
// The int8 KV cache (kernels/kv_int8.cuh): the KV8 instantiation loads a
// lane's 8 values as 8 bytes and its row's scale, and dequantizes them at
// the load (kv8_dequant8) into the 8 fp16 values the fp16 kernel loads, so
// it computes what the fp16 kernel computes on the cache dequantized to
// fp16; 2 * ctx * (head_dim + 4) bytes per (token, kv head).
#include <cuda_fp16.h>

#include "kernels.h"
#include "kv_int8.cuh"
#include "pdl.cuh"

#ifndef VB_DECODE_MAX_SPLITS /* kernels.h has it, but not for NVRTC */
#define VB_DECODE_MAX_SPLITS 64
#endif
#define DEC_WARPS 4
#define DEC_MAX_GROUP 8    /* query heads per kv head */
#define DEC_MAX_HEAD_DIM 256 /* 32 lanes of 8 */
#define DEC_NEG_INF __int_as_float(0xff800000)
#define DEC_STEP 8         /* positions a warp takes per step */
#define DEC_MIN_SLICE (DEC_WARPS * DEC_STEP) /* one step of the block */
#define DEC_BLOCKS_PER_SM 4 /* split until the grid has this many blocks an SM */

// 8 fp16 from a 16-byte load to fp32
__device__ __forceinline__ void dec_load8(float *f, const __half *p)
{
    uint4 u = *(const uint4 *)p;
    const __half2 *h = (const __half2 *)&u;
#pragma unroll
    for (int k = 0; k < 4; k++) {
        float2 v = __half22float2(h[k]);
        f[2 * k] = v.x;
        f[2 * k + 1] = v.y;
    }
}

// Position j's 8 K and V values of elements d0 .. d0 + 7 of kv head g, as
// 8 fp16 values each: loaded (fp16 cache), or loaded and dequantized
// (KV8: int8 values and the row's scale).
template <bool KV8>
__device__ __forceinline__ void dec_load_row(uint4 &kv, uint4 &vv, int j, const int *table,
                                             int block_size, int kv_heads, int g, int head_dim,
                                             int d0, const void *k_cache, const void *v_cache)
{
    int blk = table[j / block_size];
    if (KV8) {
        const int row = j % block_size;
        const size_t vo = kv8_values_at(blk, row, g, block_size, kv_heads, head_dim) + d0;
        const size_t so = kv8_scale_at(blk, row, g, block_size, kv_heads, head_dim);
        const unsigned char *k8 = (const unsigned char *)k_cache;
        const unsigned char *v8 = (const unsigned char *)v_cache;
        const uint2 kq = *(const uint2 *)(k8 + vo), vq = *(const uint2 *)(v8 + vo);
        kv = kv8_dequant8(kq, *(const float *)(k8 + so));
        vv = kv8_dequant8(vq, *(const float *)(v8 + so));
        return;
    }
    size_t base = (((size_t)blk * block_size + j % block_size) * kv_heads + g) * head_dim + d0;
    kv = *(const uint4 *)((const __half *)k_cache + base);
    vv = *(const uint4 *)((const __half *)v_cache + base);
}

// Loads one step of K and V rows for a lane: its U positions j0 + u * RPW
// + sub; ok[u] says the position is in the slice (< last), and only
// positions < limit are read (the rest stay zero).
template <int U, int RPW, bool KV8>
__device__ __forceinline__ void dec_load_step(uint4 (&kraw)[U], uint4 (&vraw)[U], bool (&ok)[U],
                                              int j0, int sub, int last, int limit, bool has_d,
                                              const int *table, int block_size, int kv_heads,
                                              int g, int head_dim, int d0,
                                              const void *k_cache, const void *v_cache)
{
#pragma unroll
    for (int u = 0; u < U; u++) {
        int j = j0 + u * RPW + sub;
        ok[u] = j < last;
        kraw[u] = vraw[u] = make_uint4(0u, 0u, 0u, 0u); /* zero halves */
        if (j < last && j < limit && has_d)
            dec_load_row<KV8>(kraw[u], vraw[u], j, table, block_size, kv_heads, g, head_dim, d0,
                              k_cache, v_cache);
    }
}

// Arrival counters of the split blocks of each (token, heads) group, for
// the combine in the kernel: zero between launches (the last block of a
// group resets its counter), so a CUDA graph replays them as they are.
// One device per process (a rank a GPU) and one decode attention in flight
// at a time (stream order; under PDL a kernel starts only once the one
// before has passed its wait), so one array serves every launch.
// Launches with more groups than this combine in attention_decode_reduce.
#define DEC_COUNTERS 4096
__device__ unsigned dec_split_counters[DEC_COUNTERS];

// A split's positions for a token at pos: the fixed slice (--batch-invariant:
// the boundaries depend on the positions alone, never on the step), or the
// context cut into `splits` slices of at least DEC_MIN_SLICE.
__device__ __forceinline__ int dec_split_len(int pos, int splits, int slice)
{
    /* (pos + splits) / splits: ceil((pos + 1) / splits) */
    return slice > 0 ? slice : max((pos + splits) / splits, DEC_MIN_SLICE);
}

// Combines the splits' partials of (token slot i, query head h) by their
// log-sum-exp weights into out's row of token t. Only the splits the
// token's context reached are read (the decode kernel's slicing,
// recomputed), and their (max, sum) pairs are loaded by one warp at once:
// a loop over all VB_DECODE_MAX_SPLITS slots, two dependent L2 reads each,
// was most of a batch-1 decode step's attention time. The partials are
// read through L2 (__ldcg): in the kernel's own combine, other blocks
// wrote them. Called by every thread of a block of blockDim.x >= 32;
// s_w [VB_DECODE_MAX_SPLITS] and s_inv are the block's shared scratch.
__device__ __forceinline__ void dec_combine_head(__half *out, const float *part, int i, int t,
                                                 int h, int pos, int heads, int head_dim,
                                                 int splits, int slice, float *s_w,
                                                 float *s_inv)
{
    const int lane = threadIdx.x & 31;
    pos = max(pos, 0);
    int split_len = dec_split_len(pos, splits, slice);
    int n_used = min(splits, (pos + split_len) / split_len); /* ceil((pos + 1) / split_len) */
    const size_t stride = (size_t)head_dim + 2;
    const float *p = part + ((size_t)i * heads + h) * splits * stride;
    if (threadIdx.x < 32) {
        // lane takes splits lane and lane + 32 (VB_DECODE_MAX_SPLITS = 64);
        // a split with no mass (l = 0: empty slice, padding row) weighs 0
        float m0 = DEC_NEG_INF, l0 = 0.0f, m1 = DEC_NEG_INF, l1 = 0.0f;
        if (lane < n_used) {
            l0 = __ldcg(p + lane * stride + 1);
            m0 = l0 > 0.0f ? __ldcg(p + lane * stride) : DEC_NEG_INF;
        }
        if (lane + 32 < n_used) {
            l1 = __ldcg(p + (lane + 32) * stride + 1);
            m1 = l1 > 0.0f ? __ldcg(p + (lane + 32) * stride) : DEC_NEG_INF;
        }
        float mx = fmaxf(m0, m1);
        for (int off = 16; off > 0; off >>= 1)
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
        float w0 = l0 > 0.0f ? __expf(m0 - mx) : 0.0f;
        float w1 = l1 > 0.0f ? __expf(m1 - mx) : 0.0f;
        float ls = l0 * w0 + l1 * w1;
        for (int off = 16; off > 0; off >>= 1)
            ls += __shfl_xor_sync(0xffffffffu, ls, off);
        s_w[lane] = w0;
        s_w[lane + 32] = w1;
        if (lane == 0)
            *s_inv = ls > 0.0f ? 1.0f / ls : 0.0f; /* 0 only for a padding row: zeros */
    }
    __syncthreads();
    for (int e = threadIdx.x; e < head_dim; e += blockDim.x) {
        float v = 0.0f;
#pragma unroll 8
        for (int s = 0; s < n_used; s++)
            v += __ldcg(p + s * stride + 2 + e) * s_w[s];
        out[((size_t)t * heads + h) * head_dim + e] = __float2half(v * *s_inv);
    }
}

// The split block's last act with combine on: counts itself in its group's
// counter once its partials are visible to the other blocks; the block
// that completes the count resets the counter and combines the group's G
// heads (dec_combine_head). Every thread of the block calls it.
template <int G>
__device__ __forceinline__ void dec_split_done(__half *out, const float *part, int i, int t,
                                               int h0, int pos, int heads, int head_dim,
                                               int splits, int slice)
{
    __shared__ float s_w[VB_DECODE_MAX_SPLITS];
    __shared__ float s_inv;
    __shared__ bool s_last;
    __threadfence(); /* this block's partials before its count */
    __syncthreads();
    if (threadIdx.x == 0) {
        unsigned *c = &dec_split_counters[(size_t)i * gridDim.y + blockIdx.y];
        s_last = atomicAdd(c, 1u) == (unsigned)splits - 1;
        if (s_last)
            atomicExch(c, 0u); /* every split has counted: ready for the next launch */
    }
    __syncthreads();
    if (!s_last)
        return;
    __threadfence(); /* the other blocks' partials after their counts */
    for (int h = 0; h < G; h++) {
        dec_combine_head(out, part, i, t, h0 + h, pos, heads, head_dim, splits, slice, s_w,
                         &s_inv);
        __syncthreads(); /* s_w and s_inv are the next head's */
    }
}

// G query heads per block and LPR lanes per row are template parameters
// so the q and accumulator arrays stay in registers; one instantiation
// per (G, LPR) below.
//
// Under PDL (pdl.cuh) the block starts while the RoPE / KV-write kernel
// still runs: before pdl_wait() it reads the step's indices (uploaded
// before the step) and its first step of K/V rows older than the token
// (earlier steps wrote them), so only q and the token's own row wait for
// the previous kernel.
template <int G, int LPR, bool KV8>
__global__ void __launch_bounds__(32 * DEC_WARPS)
attention_decode_kernel(__half *out, float *part, const __half *q, const void *k_cache,
                        const void *v_cache, const int *token_list, const int *positions,
                        const int *token_seq, const int *block_tables, int max_blocks,
                        int heads, int kv_heads, int group, int head_dim, int block_size,
                        float scale, int slice, bool combine)
{
    constexpr int RPW = 32 / LPR;        /* positions per warp load */
    constexpr int U = DEC_STEP / RPW;    /* loads per lane per step */
    __shared__ float s_m[DEC_WARPS][G], s_l[DEC_WARPS][G];
    __shared__ float s_acc[DEC_WARPS][G][LPR * 8];
    int i = blockIdx.x, t = token_list[i], split = blockIdx.z;
    const int h0 = blockIdx.y * G, g = h0 / group; /* first query head, its kv head */
    int splits = gridDim.z;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int sub = lane / LPR, d0 = (lane % LPR) * 8; /* this lane's position group and elements */
    bool has_d = d0 < head_dim;
    int pos = positions[t], seq = token_seq[t];
    int split_len = dec_split_len(pos, splits, slice);
    int first = split * split_len;
    int last = min(first + split_len, pos + 1); /* exclusive */
    size_t row0 = (size_t)t * heads + h0;
    const bool empty = seq < 0 || first >= last;
    const int *table = block_tables + (size_t)(seq < 0 ? 0 : seq) * max_blocks;
    const int j_first = first + warp * DEC_STEP; /* this warp's first step */
    uint4 kraw[U], vraw[U]; /* 8 halves each, converted where used */
    bool ok[U];
    dec_load_step<U, RPW, KV8>(kraw, vraw, ok, j_first, sub, empty ? first : last, pos, has_d,
                               table, block_size, kv_heads, g, head_dim, d0, k_cache, v_cache);
    pdl_wait(); /* q and the token's own K/V row are the previous kernel's output */
    pdl_launch_dependents();
    if (empty) {
        /* a padding row (no sequence) or an empty slice: zeros / no mass */
        if (splits == 1) {
            for (int e = threadIdx.x; e < G * head_dim; e += blockDim.x)
                out[row0 * head_dim + e] = __float2half(0.0f);
        } else if (threadIdx.x < G) {
            float *p = part + (((size_t)i * heads + h0 + threadIdx.x) * splits + split) *
                                  (head_dim + 2);
            p[0] = DEC_NEG_INF;
            p[1] = 0.0f;
        }
        if (splits > 1 && combine)
            dec_split_done<G>(out, part, i, t, h0, pos, heads, head_dim, splits, slice);
        return;
    }
#pragma unroll
    for (int u = 0; u < U; u++) /* the token's own row, if in this step */
        if (ok[u] && has_d && j_first + u * RPW + sub == pos)
            dec_load_row<KV8>(kraw[u], vraw[u], pos, table, block_size, kv_heads, g, head_dim,
                              d0, k_cache, v_cache);

    float qr[G][8], acc[G][8], m[G], l[G];
#pragma unroll
    for (int h = 0; h < G; h++) {
        if (has_d) {
            dec_load8(qr[h], q + (row0 + h) * head_dim + d0);
#pragma unroll
            for (int k = 0; k < 8; k++)
                qr[h][k] *= scale;
        } else {
#pragma unroll
            for (int k = 0; k < 8; k++)
                qr[h][k] = 0.0f;
        }
#pragma unroll
        for (int k = 0; k < 8; k++)
            acc[h][k] = 0.0f;
        m[h] = DEC_NEG_INF;
        l[h] = 0.0f;
    }
    // warp w takes steps of DEC_STEP consecutive positions, w, w + 4, ...;
    // load u of lane group sub is position j0 + u * RPW + sub
    for (int j0 = j_first; j0 < last; j0 += DEC_WARPS * DEC_STEP) {
        if (j0 != j_first) /* the first step was loaded above */
            dec_load_step<U, RPW, KV8>(kraw, vraw, ok, j0, sub, last, last, has_d, table,
                                       block_size, kv_heads, g, head_dim, d0, k_cache, v_cache);
        float dot[U][G];
#pragma unroll
        for (int u = 0; u < U; u++)
#pragma unroll
            for (int h = 0; h < G; h++) {
                const __half2 *kh = (const __half2 *)&kraw[u];
                float d = 0.0f;
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    float2 kf = __half22float2(kh[k]);
                    d = fmaf(qr[h][2 * k], kf.x, d);
                    d = fmaf(qr[h][2 * k + 1], kf.y, d);
                }
                dot[u][h] = d;
            }
        // sum over the LPR lanes of a row (xor offsets below LPR stay in the group)
#pragma unroll
        for (int off = LPR / 2; off > 0; off >>= 1)
#pragma unroll
            for (int u = 0; u < U; u++)
#pragma unroll
                for (int h = 0; h < G; h++)
                    dot[u][h] += __shfl_xor_sync(0xffffffffu, dot[u][h], off);
#pragma unroll
        for (int h = 0; h < G; h++) {
            float m_new = m[h];
#pragma unroll
            for (int u = 0; u < U; u++)
                if (ok[u])
                    m_new = fmaxf(m_new, dot[u][h]);
            // m_new = -inf only when this group has no position yet: nothing changes
            float corr = m_new == DEC_NEG_INF ? 1.0f : __expf(m[h] - m_new);
            float p[U], psum = 0.0f;
#pragma unroll
            for (int u = 0; u < U; u++) {
                p[u] = ok[u] ? __expf(dot[u][h] - m_new) : 0.0f;
                psum += p[u];
            }
            l[h] = l[h] * corr + psum;
#pragma unroll
            for (int k = 0; k < 8; k++)
                acc[h][k] *= corr;
#pragma unroll
            for (int u = 0; u < U; u++) {
                const __half2 *vh = (const __half2 *)&vraw[u];
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    float2 vf = __half22float2(vh[k]);
                    acc[h][2 * k] = fmaf(p[u], vf.x, acc[h][2 * k]);
                    acc[h][2 * k + 1] = fmaf(p[u], vf.y, acc[h][2 * k + 1]);
                }
            }
            m[h] = m_new;
        }
    }
    // the RPW position groups of the warp merge (xor offsets LPR, 2 LPR, ...
    // pair lanes holding the same elements)
#pragma unroll
    for (int off = LPR; off < 32; off <<= 1)
#pragma unroll
        for (int h = 0; h < G; h++) {
            float m_o = __shfl_xor_sync(0xffffffffu, m[h], off);
            float l_o = __shfl_xor_sync(0xffffffffu, l[h], off);
            float m_n = fmaxf(m[h], m_o);
            float f = l[h] > 0.0f ? __expf(m[h] - m_n) : 0.0f;
            float f_o = l_o > 0.0f ? __expf(m_o - m_n) : 0.0f;
#pragma unroll
            for (int k = 0; k < 8; k++) {
                float a_o = __shfl_xor_sync(0xffffffffu, acc[h][k], off);
                acc[h][k] = acc[h][k] * f + a_o * f_o;
            }
            l[h] = l[h] * f + l_o * f_o;
            m[h] = m_n;
        }
    if (sub == 0) {
#pragma unroll
        for (int h = 0; h < G; h++) {
            if (lane == 0) {
                s_m[warp][h] = m[h];
                s_l[warp][h] = l[h];
            }
            if (has_d)
#pragma unroll
                for (int k = 0; k < 8; k++)
                    s_acc[warp][h][d0 + k] = acc[h][k];
        }
    }
    __syncthreads();
    // All 128 threads merge: thread x takes (head, element) pairs x, x+128, ...
    for (int idx = threadIdx.x; idx < G * head_dim; idx += blockDim.x) {
        int h = idx / head_dim, e = idx % head_dim;
        float m_all = DEC_NEG_INF;
        for (int w = 0; w < DEC_WARPS; w++)
            m_all = fmaxf(m_all, s_m[w][h]);
        float l_all = 0.0f, v = 0.0f;
        for (int w = 0; w < DEC_WARPS; w++) {
            // a warp that saw no position has m = -inf, l = 0
            float f = s_l[w][h] > 0.0f ? __expf(s_m[w][h] - m_all) : 0.0f;
            l_all += s_l[w][h] * f;
            v += s_acc[w][h][e] * f;
        }
        if (splits == 1) {
            out[(row0 + h) * head_dim + e] = __float2half(v / l_all);
        } else {
            float *p = part + (((size_t)i * heads + h0 + h) * splits + split) * (head_dim + 2);
            if (e == 0) {
                p[0] = m_all;
                p[1] = l_all;
            }
            p[2 + e] = v;
        }
    }
    if (splits > 1 && combine)
        dec_split_done<G>(out, part, i, t, h0, pos, heads, head_dim, splits, slice);
}

#define DEC_INSTANTIATE_KV(G, PL, KV)                                                         \
    template __global__ void attention_decode_kernel<G, PL, KV>(                              \
        __half *, float *, const __half *, const void *, const void *, const int *,           \
        const int *, const int *, const int *, int, int, int, int, int, int, float, int, bool);
#define DEC_INSTANTIATE(G, PL) DEC_INSTANTIATE_KV(G, PL, false) DEC_INSTANTIATE_KV(G, PL, true)
#define DEC_INSTANTIATE_PL(G) DEC_INSTANTIATE(G, 8) DEC_INSTANTIATE(G, 16) DEC_INSTANTIATE(G, 32)
DEC_INSTANTIATE_PL(1)
DEC_INSTANTIATE_PL(2)
DEC_INSTANTIATE_PL(3)
DEC_INSTANTIATE_PL(4)
DEC_INSTANTIATE_PL(5)
DEC_INSTANTIATE_PL(6)
DEC_INSTANTIATE_PL(7)
DEC_INSTANTIATE_PL(8)

// Grid (T, heads), DEC_REDUCE_THREADS threads: the combine of one (token,
// query head) as a kernel of its own (vb_attention_decode_reduce_kernel(1),
// or more groups than DEC_COUNTERS).
#define DEC_REDUCE_THREADS 128
static_assert(VB_DECODE_MAX_SPLITS <= 64, "the combine's warp takes two splits a lane");
__global__ void __launch_bounds__(DEC_REDUCE_THREADS)
attention_decode_reduce(__half *out, const float *part, const int *token_list,
                        const int *positions, int heads, int head_dim, int splits, int slice)
{
    __shared__ float s_w[VB_DECODE_MAX_SPLITS];
    __shared__ float s_inv;
    pdl_wait(); /* the partials are the previous kernel's output */
    pdl_launch_dependents();
    int i = blockIdx.x, t = token_list[i];
    dec_combine_head(out, part, i, t, blockIdx.y, positions[t], heads, head_dim, splits, slice,
                     s_w, &s_inv);
}

#ifndef __CUDACC_RTC__
// The whole GQA group in a block reads each K/V row once for G heads, but
// its lanes then run G heads' arithmetic one after the other: at batch 1
// (4 blocks of 7 heads at 7B) that chain of dependent instructions, not
// memory, set the kernel's time (ncu: ~4 cycles an instruction, one warp
// a scheduler, 25k cycles). A block per query head cuts each lane's chain
// G times and has G times the blocks; its group's K/V rows are then read
// G times, from L2 if they fit. So: a block per head while those blocks
// fit DEC_BLOCKS_PER_SM an SM and the step's K/V (over the block-table
// width, so a CUDA graph's choice holds) fits a quarter of L2; the whole
// group beyond (large batches, long contexts).
extern "C" int vb_attention_decode_heads_per_block(int T, int heads, int kv_heads, int head_dim,
                                                   int max_ctx, int n_sm, long l2_bytes)
{
    if (kv_heads <= 0 || heads % kv_heads != 0)
        return 1;
    double kv_bytes = 4.0 * T * max_ctx * kv_heads * head_dim; /* K and V, fp16 */
    bool per_head = (long)T * heads <= (long)DEC_BLOCKS_PER_SM * n_sm && kv_bytes <= l2_bytes / 4;
    return per_head ? 1 : heads / kv_heads;
}

extern "C" int vb_attention_decode_splits(int T, int head_blocks, int max_ctx, int n_sm)
{
    int base = T * head_blocks;
    if (base <= 0 || base >= DEC_BLOCKS_PER_SM * n_sm)
        return 1;
    /* enough blocks to keep every SM's loads in flight: a 64-sequence step
     * at one split had 2 blocks an SM and read K/V at ~270 GB/s */
    int want = (DEC_BLOCKS_PER_SM * n_sm + base - 1) / base;
    /* slices of at least one block step of the table width (a short table
     * gave one split: at 256 positions, 4 blocks for the whole GPU, 70 us a
     * layer); one step, not two: a1 16 splits 4.03 ms a token, 6 4.08 */
    int by_ctx = (max_ctx + DEC_MIN_SLICE - 1) / DEC_MIN_SLICE;
    int s = want < by_ctx ? want : by_ctx;
    s = s < VB_DECODE_MAX_SPLITS ? s : VB_DECODE_MAX_SPLITS;
    return s < 1 ? 1 : s;
}

extern "C" size_t vb_attention_decode_workspace_bytes(int n_sm)
{
    /* splits > 1 only when T * head_blocks < DEC_BLOCKS_PER_SM * n_sm, and
     * then T * head_blocks * splits < 2 * DEC_BLOCKS_PER_SM * n_sm; times
     * G <= DEC_MAX_GROUP query heads of (head_dim + 2) floats each */
    return (size_t)2 * DEC_BLOCKS_PER_SM * n_sm * DEC_MAX_GROUP * (DEC_MAX_HEAD_DIM + 2) *
           sizeof(float);
}

extern "C" size_t vb_attention_decode_token_floats(int heads, int head_dim, int splits)
{
    return (size_t)heads * splits * ((size_t)head_dim + 2);
}

extern "C" bool vb_attention_decode_supported(int heads, int kv_heads, int head_dim)
{
    return kv_heads > 0 && heads % kv_heads == 0 && heads / kv_heads <= DEC_MAX_GROUP &&
           head_dim % 8 == 0 && head_dim <= DEC_MAX_HEAD_DIM; /* 16-byte loads of 8 */
}

static int reduce_kernel_on = 0;
extern "C" void vb_attention_decode_reduce_kernel(int on)
{
    reduce_kernel_on = on != 0;
}

// The fp16 and int8 entry points below; kv8: the cache is int8.
static cudaError_t decode_launch(uint16_t *out, float *d_workspace, const uint16_t *q,
                                 const void *k_cache, const void *v_cache,
                                 const int *d_token_list, const int *d_positions,
                                 const int *d_token_seq, const int *d_block_tables,
                                 int max_blocks, int T, int heads, int kv_heads, int head_dim,
                                 int block_size, float scale, int heads_per_block, int splits,
                                 int slice, bool kv8, cudaStream_t stream)
{
    if (T == 0)
        return cudaSuccess;
    int group = kv_heads > 0 ? heads / kv_heads : 0, G = heads_per_block;
    if (!vb_attention_decode_supported(heads, kv_heads, head_dim) || splits < 1 ||
        splits > VB_DECODE_MAX_SPLITS || (splits > 1 && !d_workspace) || G < 1 ||
        group % G != 0 || slice < 0 || slice % DEC_MIN_SLICE != 0)
        return cudaErrorInvalidValue;
    /* int8: 8-byte value loads and 4-byte scales (kv_int8.cuh) */
    if (kv8 && kv8_block_bytes(block_size, kv_heads, head_dim) % 8)
        return cudaErrorInvalidValue;
    dim3 grid((unsigned)T, (unsigned)(heads / G), (unsigned)splits);
    /* the splits combined by their last block, or by attention_decode_reduce */
    const bool combine = splits > 1 && !reduce_kernel_on && (long)T * (heads / G) <= DEC_COUNTERS;
    int PL = head_dim <= 64 ? 8 : head_dim <= 128 ? 16 : 32; /* lanes a row */
    cudaError_t e = cudaErrorInvalidValue;
#define DEC_LAUNCH_KV(g, pl, kv)                                                              \
    e = vb_launch_pdl(attention_decode_kernel<g, pl, kv>, grid, dim3(32 * DEC_WARPS), 0,      \
                      stream, (__half *)out, d_workspace, (const __half *)q, k_cache,         \
                      v_cache, d_token_list, d_positions, d_token_seq, d_block_tables,        \
                      max_blocks, heads, kv_heads, group, head_dim, block_size, scale, slice, \
                      combine);
#define DEC_LAUNCH(g, pl)                                                                     \
    if (G == g && PL == pl) {                                                                 \
        if (kv8) {                                                                            \
            DEC_LAUNCH_KV(g, pl, true)                                                        \
        } else {                                                                              \
            DEC_LAUNCH_KV(g, pl, false)                                                       \
        }                                                                                     \
    }
#define DEC_LAUNCH_PL(g) DEC_LAUNCH(g, 8) DEC_LAUNCH(g, 16) DEC_LAUNCH(g, 32)
    DEC_LAUNCH_PL(1)
    DEC_LAUNCH_PL(2)
    DEC_LAUNCH_PL(3)
    DEC_LAUNCH_PL(4)
    DEC_LAUNCH_PL(5)
    DEC_LAUNCH_PL(6)
    DEC_LAUNCH_PL(7)
    DEC_LAUNCH_PL(8)
#undef DEC_LAUNCH_PL
#undef DEC_LAUNCH
#undef DEC_LAUNCH_KV
    if (e != cudaSuccess || splits == 1 || combine)
        return e;
    return vb_launch_pdl(attention_decode_reduce, dim3((unsigned)T, (unsigned)heads),
                         dim3(DEC_REDUCE_THREADS), 0, stream, (__half *)out,
                         (const float *)d_workspace, d_token_list, d_positions, heads, head_dim,
                         splits, slice);
}

extern "C" cudaError_t vb_attention_decode_f16(uint16_t *out, float *d_workspace,
                                               const uint16_t *q, const uint16_t *k_cache,
                                               const uint16_t *v_cache, const int *d_token_list,
                                               const int *d_positions, const int *d_token_seq,
                                               const int *d_block_tables, int max_blocks, int T,
                                               int heads, int kv_heads, int head_dim,
                                               int block_size, float scale, int heads_per_block,
                                               int splits, int slice, cudaStream_t stream)
{
    return decode_launch(out, d_workspace, q, k_cache, v_cache, d_token_list, d_positions,
                         d_token_seq, d_block_tables, max_blocks, T, heads, kv_heads, head_dim,
                         block_size, scale, heads_per_block, splits, slice, false, stream);
}

extern "C" cudaError_t vb_attention_decode_kv8(uint16_t *out, float *d_workspace,
                                               const uint16_t *q, const void *k_cache,
                                               const void *v_cache, const int *d_token_list,
                                               const int *d_positions, const int *d_token_seq,
                                               const int *d_block_tables, int max_blocks, int T,
                                               int heads, int kv_heads, int head_dim,
                                               int block_size, float scale, int heads_per_block,
                                               int splits, int slice, cudaStream_t stream)
{
    return decode_launch(out, d_workspace, q, k_cache, v_cache, d_token_list, d_positions,
                         d_token_seq, d_block_tables, max_blocks, T, heads, kv_heads, head_dim,
                         block_size, scale, heads_per_block, splits, slice, true, stream);
}
#endif

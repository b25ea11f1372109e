// The q/k/v projection of a decode step with RoPE and the KV-cache write
// in its epilogue: what gemv.cu's three-segment launch and rope_kv.cu do
// one after the other, in one kernel (one fewer on each layer's chain of
// small kernels), with the same arithmetic and fp16 roundings.
//
// A warp computes the two output rows a rotation pairs, i and i + d/2 of
// one head (d = head_dim), over the same x, so it holds both values the
// rotation needs: out[t, row] = x[t] w[row]^T + bias[row] rounded to fp16
// as gemv.cu does; q and k pairs are then rotated as rope_kv.cu does
// (angle position * inv_freq[i] in fp32, cos and sin times the scale,
// rounded to fp16, rope_math.cuh), and k and v pairs are stored at the
// token's cache slot too (none for a padding row). The v segment is paired
// the same way, without the rotation. Each lane loads its first QR_DEPTH
// chunks of both rows before pdl_wait() (pdl.cuh), as gemv.cu does its
// first ones, and keeps QR_DEPTH in flight after.
//
// Requires n_in % 8 == 0, 16-byte aligned x and weights (vb_gemv_supported)
// and every segment a whole number of heads; the entry point checks both.
#include "gemv_common.cuh"
#include "kernels.h"
#include "pdl.cuh"
#include "rope_math.cuh"

#define QR_WARPS 8 /* warps (rotation pairs) per block */
// DEPTH (the kernel's template parameter): chunks of each of its two rows
// a lane keeps in flight, the first DEPTH loaded before the wait, then
// chunk c + 32 DEPTH loaded as chunk c is computed. The q/k/v matrices are
// small (4,608 rows at the 7B shape: 2,304 warps, ~17 an SM), so one chunk
// at a time (DEPTH 1, 40 registers at T = 1) left ~18 KB an SM in flight
// and the fp16 projection at ~57 % of the copy bandwidth
// (tests/bench/RESULTS.md, session 30). QR_DEEP (78 registers at T = 1:
// three blocks an SM) where the grid still fits the GPU in one wave, else
// DEPTH 1 (the launcher). The chunks are computed in the same order
// either way: the same bits.
#define QR_DEEP 3

struct qkv_rope_params {
    const __half *x;
    const __half *w[3], *bias[3]; /* q, k, v; bias may be NULL */
    __half *out[3];
    int pairs[3];                 /* rotation pairs per segment: n_out / 2 */
    int n_in, rows;               /* rows: x's real row count, <= the template's T */
    const float *inv_freq;        /* head_dim / 2 */
    float scale;
    const int *positions, *token_seq, *block_tables;
    int max_blocks, block_size, head_dim, kv_heads;
    __half *k_cache, *v_cache;
};

template <int T, int DEPTH>
__global__ void __launch_bounds__(32 * QR_WARPS) gemv_qkv_rope_kernel(qkv_rope_params p)
{
    int n = blockIdx.x * QR_WARPS + (threadIdx.x >> 5); /* pair, then within its segment */
    const int lane = threadIdx.x & 31;
    int s = 0;
    if (n >= p.pairs[0]) {
        n -= p.pairs[0];
        s = 1;
        if (n >= p.pairs[1]) {
            n -= p.pairs[1];
            s = 2;
        }
    }
    if (n >= SEG(p.pairs, s))
        return; /* whole warps leave: no shuffle is left waiting */
    const int half = p.head_dim >> 1, head = n / half, i = n % half;
    const int row0 = head * p.head_dim + i, n_in = p.n_in, rows = p.rows;
    const uint4 *wr[2] = {(const uint4 *)(SEG(p.w, s) + (size_t)row0 * n_in),
                          (const uint4 *)(SEG(p.w, s) + (size_t)(row0 + half) * n_in)};
    const uint4 *xr = (const uint4 *)p.x;
    const int chunks = n_in >> 3;
    uint4 buf[DEPTH][2]; /* chunk lane + 32 (j DEPTH + k) in buf[k] */
#pragma unroll
    for (int k = 0; k < DEPTH; k++)
#pragma unroll
        for (int m = 0; m < 2; m++)
            buf[k][m] = lane + 32 * k < chunks ? __ldg(wr[m] + lane + 32 * k) : make_uint4(0, 0, 0, 0);
    pdl_wait(); /* x is the previous kernel's output; the cache slots are written below */
    pdl_launch_dependents();
    float acc[2][T];
#pragma unroll
    for (int m = 0; m < 2; m++)
#pragma unroll
        for (int t = 0; t < T; t++)
            acc[m][t] = 0.0f;
    for (int c0 = lane; c0 < chunks; c0 += 32 * DEPTH) {
#pragma unroll
        for (int k = 0; k < DEPTH; k++) {
            const int c = c0 + 32 * k, ahead = c + 32 * DEPTH;
            const uint4 w[2] = {buf[k][0], buf[k][1]};
            if (ahead < chunks) { /* refill the slot before computing its chunk */
                buf[k][0] = __ldg(wr[0] + ahead);
                buf[k][1] = __ldg(wr[1] + ahead);
            }
            if (c < chunks)
                gemv_chunk<T, 2>(acc, w, xr, chunks, c, rows);
        }
    }
    // lane t keeps x row t's two sums
    float a = 0.0f, b = 0.0f;
#pragma unroll
    for (int t = 0; t < T; t++) {
        float va = warp_sum(acc[0][t]), vb = warp_sum(acc[1][t]);
        if (lane == t) {
            a = va;
            b = vb;
        }
    }
    const int t = lane;
    if (t >= rows)
        return;
    const __half *bias = SEG(p.bias, s);
    __half x0 = __float2half(a + (bias ? __half2float(bias[row0]) : 0.0f));
    __half x1 = __float2half(b + (bias ? __half2float(bias[row0 + half]) : 0.0f));
    const int pos = p.positions[t];
    if (s < 2) { /* q or k: rotate */
        float c, sn;
        rope_cos_sin(pos, p.inv_freq[i], p.scale, &c, &sn);
        rope_rotate(c, sn, &x0, &x1);
    }
    __half *o = SEG(p.out, s) + (size_t)t * 2 * SEG(p.pairs, s) + row0;
    o[0] = x0;
    o[half] = x1;
    const int seq = p.token_seq[t];
    if (s == 0 || seq < 0)
        return; /* q; or a padding row of a CUDA-graph bucket: no cache slot */
    int blk = p.block_tables[(size_t)seq * p.max_blocks + pos / p.block_size];
    size_t slot = (((size_t)blk * p.block_size + pos % p.block_size) * p.kv_heads + head) *
                      p.head_dim + i;
    __half *cache = s == 1 ? p.k_cache : p.v_cache;
    cache[slot] = x0;
    cache[slot + half] = x1;
}

#define QR_INSTANTIATE(T)                                                                     \
    template __global__ void gemv_qkv_rope_kernel<T, 1>(qkv_rope_params);                     \
    template __global__ void gemv_qkv_rope_kernel<T, QR_DEEP>(qkv_rope_params);
QR_INSTANTIATE(1)
QR_INSTANTIATE(2)
QR_INSTANTIATE(4)
QR_INSTANTIATE(8)

#ifndef __CUDACC_RTC__
extern "C" cudaError_t vb_gemv_qkv_rope_f16(const vb_gemv_seg segs[3], const uint16_t *x, int T,
                                            int n_in, const vb_gemv_rope *r, int shallow,
                                            cudaStream_t stream)
{
    if (!segs || !r || r->head_dim <= 0 || r->head_dim % 2 || r->kv_heads <= 0 ||
        r->block_size <= 0 || !r->k_cache || !r->v_cache || !r->inv_freq || !r->positions ||
        !r->token_seq || !r->block_tables || T < 1 || T > VB_GEMV_MAX_ROWS ||
        segs[1].n_out != r->kv_heads * r->head_dim || segs[2].n_out != segs[1].n_out)
        return cudaErrorInvalidValue;
    qkv_rope_params p = {};
    long total = 0;
    for (int s = 0; s < 3; s++) {
        if (segs[s].n_out <= 0 || segs[s].n_out % r->head_dim || !segs[s].out ||
            !vb_gemv_supported(T, n_in, x, segs[s].w))
            return cudaErrorInvalidValue;
        p.w[s] = (const __half *)segs[s].w;
        p.bias[s] = (const __half *)segs[s].bias;
        p.out[s] = (__half *)segs[s].out;
        p.pairs[s] = segs[s].n_out / 2;
        total += p.pairs[s];
    }
    if (total > (long)INT32_MAX - QR_WARPS)
        return cudaErrorInvalidValue;
    p.x = (const __half *)x;
    p.n_in = n_in;
    p.rows = T;
    p.inv_freq = r->inv_freq;
    p.scale = r->cos_sin_scale;
    p.positions = r->positions;
    p.token_seq = r->token_seq;
    p.block_tables = r->block_tables;
    p.max_blocks = r->max_blocks;
    p.block_size = r->block_size;
    p.head_dim = r->head_dim;
    p.kv_heads = r->kv_heads;
    p.k_cache = (__half *)r->k_cache;
    p.v_cache = (__half *)r->v_cache;
    dim3 grid((unsigned)((total + QR_WARPS - 1) / QR_WARPS)), block(32 * QR_WARPS);
    void (*deep)(qkv_rope_params) = T == 1   ? gemv_qkv_rope_kernel<1, QR_DEEP>
                                    : T == 2 ? gemv_qkv_rope_kernel<2, QR_DEEP>
                                    : T <= 4 ? gemv_qkv_rope_kernel<4, QR_DEEP>
                                             : gemv_qkv_rope_kernel<8, QR_DEEP>;
    void (*one_chunk)(qkv_rope_params) = T == 1   ? gemv_qkv_rope_kernel<1, 1>
                                         : T == 2 ? gemv_qkv_rope_kernel<2, 1>
                                         : T <= 4 ? gemv_qkv_rope_kernel<4, 1>
                                                  : gemv_qkv_rope_kernel<8, 1>;
    /* the deep kernel where its resident blocks hold the whole grid (one
     * wave: a second one's few blocks would cost more than the depth gains);
     * asked once per T (one GPU per process, as gemv.cu's launcher) */
    static int n_sm, resident[4]; /* [T 1, 2, 4, 8] */
    const int ti = T == 1 ? 0 : T == 2 ? 1 : T <= 4 ? 2 : 3;
    if (!n_sm || !resident[ti]) {
        int dev = 0;
        cudaError_t e = cudaGetDevice(&dev);
        if (e == cudaSuccess)
            e = cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, dev);
        if (e == cudaSuccess)
            e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident[ti], deep,
                                                              32 * QR_WARPS, 0);
        if (e != cudaSuccess)
            return e;
    }
    void (*k)(qkv_rope_params) =
        !shallow && (long)grid.x <= (long)resident[ti] * n_sm ? deep : one_chunk;
    return vb_launch_pdl(k, grid, block, 0, stream, p);
}
#endif

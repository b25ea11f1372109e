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
// the same way, without the rotation. Each lane loads its first chunk of
// both rows before pdl_wait() (pdl.cuh), as gemv.cu does.
//
// KS warps may share a pair (every KS-th 512-byte piece of the rows each,
// sums added in warp order through shared memory), as gemv.cu splits rows:
// a warp a pair leaves the GPU short of loads in flight at 7B (2304 pairs,
// ~17 warps an SM; ncu: DRAM 55 % busy, warps waiting on their loads).
// Until that is timed on a GPU the entry point takes KS = 1 unless the
// caller allows more (max_split; the backend's VB_QKV_ROPE_SPLIT=1).
//
// NORM = true: x is the attention block's RMSNorm of the residual stream,
// computed by each block into shared memory first (gemv_norm_rows, the
// bits of rmsnorm.cu; kernels.h, vb_gemv_norm).
//
// Requires n_in % 8 == 0, 16-byte aligned x and weights (vb_gemv_supported)
// and every segment a whole number of heads; the entry point checks both.
#include "gemv_common.cuh"
#include "kernels.h"
#include "pdl.cuh"
#include "rope_math.cuh"

#define QR_WARPS 8    /* warps (rotation pairs) per block */
#define QR_PREFETCH 1 /* chunks per row loaded before the wait (2 rows: 2 loads) */

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
    const float *resid; /* NORM: x = rmsnorm(resid rows) * norm_w */
    const __half *norm_w;
    float eps;
};

template <int T, int KS, bool NORM>
__global__ void __launch_bounds__(32 * QR_WARPS) gemv_qkv_rope_kernel(qkv_rope_params p)
{
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, part = warp % KS;
    int n = blockIdx.x * (QR_WARPS / KS) + warp / KS; /* pair, then within its segment */
    int s = 0;
    if (n >= p.pairs[0]) {
        n -= p.pairs[0];
        s = 1;
        if (n >= p.pairs[1]) {
            n -= p.pairs[1];
            s = 2;
        }
    }
    const bool live = n < SEG(p.pairs, s);
    if (KS == 1 && !NORM && !live)
        return; /* whole warps leave: no shuffle is left waiting (else: the barriers below) */
    if (!live)
        n = 0; /* a dead warp of a split block reads pair 0's rows for nothing */
    const int half = p.head_dim >> 1, head = n / half, i = n % half;
    const int row0 = head * p.head_dim + i, n_in = p.n_in, rows = p.rows;
    const uint4 *wr[2] = {(const uint4 *)(SEG(p.w, s) + (size_t)row0 * n_in),
                          (const uint4 *)(SEG(p.w, s) + (size_t)(row0 + half) * n_in)};
    const uint4 *xr = (const uint4 *)p.x;
    extern __shared__ uint4 s_x[]; /* NORM: x's rows */
    if (NORM)
        xr = s_x;
    const int row_chunks = n_in >> 3;
    const int chunks = live ? row_chunks : 0; /* this warp's to read */
    const int c0 = lane + 32 * part;          /* this warp's first chunk of the rows */
    uint4 pre[QR_PREFETCH][2];
#pragma unroll
    for (int k = 0; k < QR_PREFETCH; k++)
#pragma unroll
        for (int m = 0; m < 2; m++)
            pre[k][m] = c0 + 32 * KS * k < chunks ? __ldg(wr[m] + c0 + 32 * KS * k)
                                                  : make_uint4(0, 0, 0, 0);
    pdl_wait(); /* x is the previous kernel's output; the cache slots are written below */
    pdl_launch_dependents();
    if (NORM) {
        __shared__ float s_scratch[33];
        gemv_norm_rows((__half *)s_x, p.resid, p.norm_w, n_in, rows, p.eps, s_scratch);
        if (KS == 1 && !live)
            return; /* past the barriers */
    }
    float acc[2][T];
#pragma unroll
    for (int m = 0; m < 2; m++)
#pragma unroll
        for (int t = 0; t < T; t++)
            acc[m][t] = 0.0f;
#pragma unroll
    for (int k = 0; k < QR_PREFETCH; k++)
        if (c0 + 32 * KS * k < chunks)
            gemv_chunk<T, 2>(acc, pre[k], xr, row_chunks, c0 + 32 * KS * k, rows);
#pragma unroll 4
    for (int c = c0 + 32 * KS * QR_PREFETCH; c < chunks; c += 32 * KS) {
        uint4 w[2] = {__ldg(wr[0] + c), __ldg(wr[1] + c)};
        gemv_chunk<T, 2>(acc, w, xr, row_chunks, c, rows);
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
    if (KS > 1) {
        __shared__ float s_part[QR_WARPS][2][T];
        if (lane < T) {
            s_part[warp][0][lane] = a;
            s_part[warp][1][lane] = b;
        }
        __syncthreads();
        if (part != 0 || !live)
            return;
        if (lane < T)
#pragma unroll
            for (int k = 1; k < KS; k++) {
                a += s_part[warp + k][0][lane];
                b += s_part[warp + k][1][lane];
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

#define QR_INSTANTIATE_N(T, NORM)                                                             \
    template __global__ void gemv_qkv_rope_kernel<T, 1, NORM>(qkv_rope_params);              \
    template __global__ void gemv_qkv_rope_kernel<T, 2, NORM>(qkv_rope_params);              \
    template __global__ void gemv_qkv_rope_kernel<T, 4, NORM>(qkv_rope_params);
#define QR_INSTANTIATE(T) QR_INSTANTIATE_N(T, false) QR_INSTANTIATE_N(T, true)
QR_INSTANTIATE(1)
QR_INSTANTIATE(2)
QR_INSTANTIATE(4)
QR_INSTANTIATE(8)

#ifndef __CUDACC_RTC__
// KS warps a pair (at most max_split) as gemv_pick_split (gemv_common.cuh)
// chooses.
template <int T, bool NORM>
static cudaError_t launch_t(const qkv_rope_params &p, long pairs, int max_split, size_t smem,
                            cudaStream_t stream)
{
    static int resident[3]; /* blocks an SM, KS = 1, 2, 4 */
    static size_t resident_smem[3];
    void (*const k[3])(qkv_rope_params) = {gemv_qkv_rope_kernel<T, 1, NORM>,
                                           gemv_qkv_rope_kernel<T, 2, NORM>,
                                           gemv_qkv_rope_kernel<T, 4, NORM>};
    int pick = 0; /* k[pick]: KS = 1 << pick warps a pair, QR_WARPS >> pick pairs a block */
    cudaError_t e =
        gemv_pick_split(k, resident, resident_smem, pairs, QR_WARPS, max_split, smem, &pick);
    if (e != cudaSuccess)
        return e;
    long per_block = QR_WARPS >> pick;
    dim3 grid((unsigned)((pairs + per_block - 1) / per_block)), block(32 * QR_WARPS);
    return vb_launch_pdl(k[pick], grid, block, smem, stream, p);
}

// The instantiation for T rows (1, 2, 4 or 8, the next up).
template <bool NORM>
static cudaError_t launch_rows(const qkv_rope_params &p, int T, long pairs, int max_split,
                               size_t smem, cudaStream_t stream)
{
    if (T == 1)
        return launch_t<1, NORM>(p, pairs, max_split, smem, stream);
    if (T == 2)
        return launch_t<2, NORM>(p, pairs, max_split, smem, stream);
    if (T <= 4)
        return launch_t<4, NORM>(p, pairs, max_split, smem, stream);
    return launch_t<8, NORM>(p, pairs, max_split, smem, stream);
}

extern "C" cudaError_t vb_gemv_qkv_rope_f16(const vb_gemv_seg segs[3], const uint16_t *x, int T,
                                            int n_in, const vb_gemv_rope *r,
                                            const vb_gemv_norm *norm, int max_split,
                                            cudaStream_t stream)
{
    if (!segs || !r || r->head_dim <= 0 || r->head_dim % 2 || r->kv_heads <= 0 ||
        r->block_size <= 0 || !r->k_cache || !r->v_cache || !r->inv_freq || !r->positions ||
        !r->token_seq || !r->block_tables || T < 1 || T > VB_GEMV_MAX_ROWS ||
        segs[1].n_out != r->kv_heads * r->head_dim || segs[2].n_out != segs[1].n_out ||
        (norm && !vb_gemv_norm_supported(T, n_in, norm)))
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
    if (!norm)
        return launch_rows<false>(p, T, total, max_split, 0, stream);
    p.resid = norm->resid;
    p.norm_w = (const __half *)norm->w;
    p.eps = norm->eps;
    return launch_rows<true>(p, T, total, max_split, (size_t)T * n_in * 2 /* x's rows */, stream);
}
#endif

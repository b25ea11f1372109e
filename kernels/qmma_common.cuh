// What the quantized decode GEMV's tensor-core kernels share
// (gemv_quant.cu's mma kernel, gemv_quant_ring.cu's ring kernel): their
// parameters, a step's dequantization and mma (qmma_step), a lane's place
// in a tile's rows, a step's loads, and a tile's end with the stores or
// the paired epilogues (SiLU-gate, RoPE with the KV write). One copy of
// the arithmetic, so that both kernels give the same bits; gemv_quant.cu's
// header says why the kernels are shaped so.
#ifndef VB_QMMA_COMMON_CUH
#define VB_QMMA_COMMON_CUH

#include <cuda_fp16.h>

#include "gemv_common.cuh"
#include "kernels.h"
#include "mma_sm80.cuh"
#include "pdl.cuh"
#include "qmat_layout.h"
#include "qmma_dequant.cuh"
#include "rmsnorm_vec.cuh"
#include "rope_math.cuh"
#include "silu.cuh"

#define QMMA_WARPS 8  /* warps per block of the mma kernel */
/* a block of the mma kernel at KS warps a tile: 12 at KS 12 */
#define QMMA_BLOCK_WARPS(KS) ((KS) > QMMA_WARPS ? (KS) : QMMA_WARPS)

/* vb_gemv_rope's fields (kernels.h's host part, which NVRTC does not see) */
struct qmma_rope {
    const float *inv_freq;
    float cos_sin_scale;
    const int *positions, *token_seq, *block_tables;
    int max_blocks, block_size, head_dim, kv_heads;
    __half *k_cache, *v_cache;
};

struct qgemv_params {
    const __half *x;        /* [rows, n_in], internal column order */
    const uint4 *q;         /* [n_out][row_chunks] 16-byte chunks, in vb_qmat's layout */
    const __half *scales, *zeros;
    const int *g_idx;       /* NULL or [n_in] */
    /* the output rows in up to VB_QGEMV_MAX_SEGS segments (one for a plain
     * projection): rows seg_end[s - 1] .. seg_end[s] - 1 go to out[s]
     * [rows, their count], plus bias[s] (or none); seg_end[last] = n_out */
    __half *out[VB_QGEMV_MAX_SEGS];
    const __half *bias[VB_QGEMV_MAX_SEGS];
    int seg_end[VB_QGEMV_MAX_SEGS];
    int n_out, n_in, row_chunks, group_size, n_groups, rows;
    int blocked;            /* q in row blocks (vb_qmat, qmat_layout.h) */
    int step_chunks;        /* qmat_step_chunks(blocked), a row's step to its next:
                             * the loop multiplies by it instead of choosing */
    int group_steps;        /* mma kernel at 1 group a step: steps (512 / bits columns) a group */
    int group_shift;        /* log2(group_steps) where it is a power of two, else -1 */
    /* NULL or, at one group a step or more, the scales and zeros tiled
     * (vb_qgemv_make_sz_tiles): the mma kernel's TILED form reads a step's
     * two rows' scales and zeros in one 8-byte load */
    const uint2 *sz_tiles;
    /* the mma kernel's paired rows (PAIR > 0, see qmma_rows_at): a tile's
     * rows g and g + 8 are two rows the epilogue combines */
    int pair_block, pair_stride, pair_offset;
    qmma_rope rope; /* PAIR_ROPE */
    int l1_alloc;   /* mma kernel: weights through L1 as x (vb_gemv_quant_l1_alloc) */
    int x_shared;   /* mma kernel: x copied into shared memory first (vb_gemv_quant_x_shared) */
    int ring;        /* ring kernel: stages a warp (vb_gemv_quant_ring) */
    int ring_offset; /* ring kernel: the rings' first uint4 in dynamic shared memory */
    /* the norm fold (vb_gemv_norm; x_shared only): NULL, or x = RMSNorm of
     * norm_resid's rows [rows, n_in] times norm_w, made by every block into
     * its shared copy of x (qmma_norm_x; p.x unread) with rmsnorm.cu's
     * bits at norm_threads threads a row (vb_rmsnorm_vec_threads) */
    const float *norm_resid;
    const __half *norm_w;
    float norm_eps;
    int norm_threads;
    /* PAIR_NONE: NULL, or the fp32 residual stream [rows, n_out] that each
     * output, rounded to fp16 as stored, is added to instead of stored
     * (vb_gemv_quant_resid_f16; out unused) */
    float *resid;
};

/* What the mma kernel's epilogue does with a tile's rows (its PAIR):
 * store each (PAIR_NONE, rows 16 t + g and + 8); or, with the rows paired
 * (qmma_rows_at), silu(gate row) * (up row) into out[0] (PAIR_SILU, the
 * joined gate and up: pair_offset = the gate's rows), or the q/k/v rows of
 * one RoPE pair rotated, stored, and k, v stored at the cache slot too
 * (PAIR_ROPE: pair_offset = head_dim / 2). */
#define PAIR_NONE 0
#define PAIR_SILU 1
#define PAIR_ROPE 2

// Output row o of x row t, v its fp32 sum: plus its bias, rounded, into
// its segment's output (see qgemv_params).
__device__ __forceinline__ void qgemv_store(const qgemv_params &p, int t, int o, float v)
{
    qmma_store_seg(p.out, p.bias, p.seg_end, t, o, v);
}

__device__ __forceinline__ unsigned word_of(const uint4 &v, int i)
{
    return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
// One step of lane (g, c): wa, wb its 16 bytes of rows o0 and o0 + 8 (the
// c-th quarter of the step's 512 / BITS columns), scale the two rows'
// scales of the step's groups and zero their zeros of the lane's group as
// half2 pairs (row o0 low), x row g's matching columns (for g >= rows
// x row 0's: B's column g only reaches the outputs of x row g, which are
// never stored, so loading real values there costs nothing and saves the
// predicated loads' zeroing, two instructions a load). acc[0..1] += scale
// * row o0 . x rows 2c, 2c + 1; acc[2..3] the same for row o0 + 8 (the
// mma's C layout).
//
// The mma m16n8k16's A fragment gives lane (g, c) rows g and g + 8 at k =
// 2c, 2c + 1 (registers 0 and 1) and 2c + 8, 2c + 9 (registers 2 and 3);
// B gives x at the same k for column (x row) g. The k order inside a
// k-block is free as long as A and B agree, so a k-block takes 4 of each
// lane's own columns: at 4 bits word w of the chunk makes two k-blocks,
// (q0, q1) and (q2, q3), then (q4, q5) and (q6, q7) (the interleaved
// nibble order, kernels.h vb_qmat, makes those pairs), x's 32-bit words as
// they are; at 8 bits word w is one k-block, (q0, q1) and (q2, q3), x's
// halves in memory order.
//
// GPS groups a step (1, or 2 and 4 for groups of 64 and 32 columns at 4
// bits, 32 and 16 at 8): a lane's chunk lies in group c / (4 / GPS) of the
// step, zero its zero; the step's mma runs once a group with B zero outside
// the group's lanes (A's k of lane c only meet B's k of lane c), so each
// group's sums get their own scale[j] in fp32.
template <int BITS, int GPS>
__device__ __forceinline__ void qmma_step(float acc[4], const uint4 &wa, const uint4 &wb,
                                          const __half2 (&scale)[GPS], __half2 zero,
                                          const uint4 *x, int c)
{
    constexpr int XW = BITS == 4 ? 4 : 2; /* 16-byte x loads: 32 or 16 columns */
    uint4 xv[XW];
#pragma unroll
    for (int i = 0; i < XW; i++) /* shared memory or, past its size, plain global loads (x is
                                    the previous kernel's output, as in gemv.cu) */
        xv[i] = x[i];
    const __half k1024 = __ushort_as_half(0x6400), k64 = __ushort_as_half(0x5400);
    const __half za = __low2half(zero), zb = __high2half(zero);
    const __half2 suba = __half2half2(__hadd(za, k1024)), subb = __half2half2(__hadd(zb, k1024));
    float d[GPS][4];
#pragma unroll
    for (int j = 0; j < GPS; j++)
        d[j][0] = d[j][1] = d[j][2] = d[j][3] = 0.0f;
    const int my_group = c / (4 / GPS);
    if (BITS == 4) {
        const __half2 fmaa = __half2half2(__hneg(__hadd(za, k64)));
        const __half2 fmab = __half2half2(__hneg(__hadd(zb, k64)));
#pragma unroll
        for (int w = 0; w < 4; w++) {
            unsigned pa[4], pb[4];
            dequant4_pairs(word_of(wa, w), suba, fmaa, pa);
            dequant4_pairs(word_of(wb, w), subb, fmab, pb);
            /* x columns 8w .. 8w + 7 of the lane's 32: (x0, x1) .. (x6, x7),
             * the pairs of pa and pb */
            const unsigned a0[4] = {pa[0], pb[0], pa[1], pb[1]};
            const unsigned a1[4] = {pa[2], pb[2], pa[3], pb[3]};
            const unsigned b00 = word_of(xv[w], 0), b01 = word_of(xv[w], 1);
            const unsigned b10 = word_of(xv[w], 2), b11 = word_of(xv[w], 3);
#pragma unroll
            for (int j = 0; j < GPS; j++) {
                const bool mine = GPS == 1 || my_group == j;
                mma_m16n8k16(d[j], a0, mine ? b00 : 0u, mine ? b01 : 0u);
                mma_m16n8k16(d[j], a1, mine ? b10 : 0u, mine ? b11 : 0u);
            }
        }
    } else {
#pragma unroll
        for (int w = 0; w < 4; w++) {
            const unsigned va = word_of(wa, w), vb = word_of(wb, w);
            const unsigned a[4] = {dequant8_pair(va, 0, suba), dequant8_pair(vb, 0, subb),
                                   dequant8_pair(va, 1, suba), dequant8_pair(vb, 1, subb)};
            /* x columns 4w .. 4w + 3 of the lane's 16 */
            const unsigned b0 = word_of(xv[w >> 1], 2 * (w & 1));
            const unsigned b1 = word_of(xv[w >> 1], 2 * (w & 1) + 1);
#pragma unroll
            for (int j = 0; j < GPS; j++) {
                const bool mine = GPS == 1 || my_group == j;
                mma_m16n8k16(d[j], a, mine ? b0 : 0u, mine ? b1 : 0u);
            }
        }
    }
#pragma unroll
    for (int j = 0; j < GPS; j++) {
        const float sa = __low2float(scale[j]), sb = __high2float(scale[j]);
        acc[0] = fmaf(sa, d[j][0], acc[0]);
        acc[1] = fmaf(sa, d[j][1], acc[1]);
        acc[2] = fmaf(sb, d[j][2], acc[2]);
        acc[3] = fmaf(sb, d[j][3], acc[3]);
    }
}

// Lane (g, c)'s place in a tile's rows g and g + 8 (rows past n_out read
// the last row: in bounds, never written): its 16-byte chunks of each step
// (step_chunks s on), and the rows' first scale and zero (n_out * n_groups fits an
// int on the mma kernel's path: vb_gemv_quant_f16), or where TILED its
// entry of the tile's first group in sz_tiles (gb unused). Six registers:
// the loop over tiles keeps one of these besides the loads in flight.
struct qmma_rows {
    const uint4 *qa, *qb;
    int ga, gb;
};

// With PAIR, tile t's rows are those the epilogue combines: 8 rows from
// (t / pair_block) * pair_stride + (t % pair_block) * 8 (g), each with the
// row pair_offset further (g + 8); for PAIR_SILU pair_block is the gate's
// 8-row blocks (every tile in the first period), for PAIR_ROPE head_dim / 16
// blocks a head of pair_stride = head_dim rows. The arithmetic of a row's
// sum is the same whichever tile row it is.
template <int PAIR>
__device__ __forceinline__ int qmma_row_a(const qgemv_params &p, int tile, int g)
{
    if (PAIR == PAIR_NONE)
        return tile * 16 + g;
    if (PAIR == PAIR_SILU) /* every tile of the matrix in the first period (the
                              tiles past it read clamped rows, never stored) */
        return tile * 8 + g;
    return (tile / p.pair_block) * p.pair_stride + (tile % p.pair_block) * 8 + g;
}

template <bool TILED, int PAIR = PAIR_NONE>
__device__ __forceinline__ qmma_rows qmma_rows_at(const qgemv_params &p, int tile, int g, int c)
{
    const int a = qmma_row_a<PAIR>(p, tile, g);
    const int ra = min(a, p.n_out - 1);
    const int rb = min(a + (PAIR == PAIR_NONE ? 8 : p.pair_offset), p.n_out - 1);
    return {p.q + qmat_chunk(ra, c, p.row_chunks, p.blocked),
            p.q + qmat_chunk(rb, c, p.row_chunks, p.blocked),
            TILED ? (tile * p.n_groups) * 8 + g : ra * p.n_groups, rb * p.n_groups};
}

// Step s's 16 bytes of rows r for lane c, the two rows' scales of the
// step's GPS groups and their zeros of the lane's group; zeros from step
// `steps` on (those are never computed; 0 for a tile past the last). The
// group of a step is a shift where group_steps is a power of two (group
// 128 at 4 bits: 1 step), not a division by a runtime value (~20
// instructions a step). TILED (GPS 1 only): the scales and zeros from
// sz_tiles, one load instead of four and their address arithmetic.
template <int GPS, bool TILED>
__device__ __forceinline__ void qmma_fetch(const qgemv_params &p, const qmma_rows &r, int s,
                                           int steps, int c, uint4 &wa, uint4 &wb,
                                           __half2 (&scale)[GPS], __half2 &zero)
{
    static_assert(!TILED || GPS == 1, "tiled scales: one group a step or more");
    if (TILED && s < steps) { /* group_steps a power of two (the entry point) */
        wa = p.l1_alloc ? __ldg(r.qa + p.step_chunks * s) : ldg_stream(r.qa + p.step_chunks * s);
        wb = p.l1_alloc ? __ldg(r.qb + p.step_chunks * s) : ldg_stream(r.qb + p.step_chunks * s);
        const uint2 e = __ldg(p.sz_tiles + r.ga + (s >> p.group_shift) * 8);
        scale[0] = u32_as_half2(e.x);
        zero = u32_as_half2(e.y);
    } else if (s < steps) {
        /* GPS 1: a group is group_steps steps; else GPS groups a step */
        const int grp = GPS == 1 ? (p.group_shift >= 0 ? s >> p.group_shift : s / p.group_steps)
                                 : s * GPS;
        const int mine = grp + c / (4 / GPS);
        wa = p.l1_alloc ? __ldg(r.qa + p.step_chunks * s) : ldg_stream(r.qa + p.step_chunks * s);
        wb = p.l1_alloc ? __ldg(r.qb + p.step_chunks * s) : ldg_stream(r.qb + p.step_chunks * s);
#pragma unroll
        for (int j = 0; j < GPS; j++)
            scale[j] = __halves2half2(p.scales[r.ga + grp + j], p.scales[r.gb + grp + j]);
        zero = __halves2half2(p.zeros[r.ga + mine], p.zeros[r.gb + mine]);
    } else {
        wa = wb = make_uint4(0, 0, 0, 0);
#pragma unroll
        for (int j = 0; j < GPS; j++)
            scale[j] = __float2half2_rn(0.0f);
        zero = __float2half2_rn(0.0f);
    }
}
#endif

// PAIR_SILU's epilogue for lane (g, c): gate row ra's sums of x rows 2c
// and 2c + 1 (acc[0], acc[1]) and up row's (acc[2], acc[3]), each rounded
// to fp16 as qgemv_store rounds them (no bias: + 0.0f, as it adds), then
// silu(gate) * up rounded into out[0] [T, pair_offset]: the bits of the
// segments' stores followed by vb_silu_gate_f16.
__device__ __forceinline__ void qmma_store_silu(const qgemv_params &p, int ra,
                                                const float (&acc)[4], int c)
{
    const int n = p.pair_offset;
#pragma unroll
    for (int k = 0; k < 2; k++) {
        const int t = 2 * c + k;
        if (t < p.rows) {
            const float gate = __half2float(__float2half(acc[k] + 0.0f));
            const float up = __half2float(__float2half(acc[2 + k] + 0.0f));
            p.out[0][(size_t)t * n + ra] = __float2half(silu_times(gate, up));
        }
    }
}

// PAIR_ROPE's epilogue for lane (g, c): row ra (the first of its head's
// rotation pair, i = ra's place in the head < head_dim / 2) and ra +
// head_dim / 2, x rows 2c and 2c + 1: plus their biases and rounded as
// qgemv_store does; q and k rotated as rope_kv.cu does (rope_math.cuh:
// the same fp16 values in, the same bits out); stored into their segment;
// k and v also at the token's cache slot (none for a padding row). The
// bits of the segments' stores followed by vb_rope_kv_write_f16.
__device__ __forceinline__ void qmma_store_rope(const qgemv_params &p, int ra,
                                                const float (&acc)[4], int c)
{
    const qmma_rope &r = p.rope;
    const int half = p.pair_offset, e0 = p.seg_end[0], e1 = p.seg_end[1];
    /* the segment by selects: a runtime index into the parameter arrays
     * would copy them to local memory */
    const int s = ra < e0 ? 0 : ra < e1 ? 1 : 2;
    const int start = s == 0 ? 0 : s == 1 ? e0 : e1;
    const int n = (s == 0 ? e0 : s == 1 ? e1 : p.seg_end[2]) - start;
    __half *out = s == 0 ? p.out[0] : s == 1 ? p.out[1] : p.out[2];
    const __half *bias = s == 0 ? p.bias[0] : s == 1 ? p.bias[1] : p.bias[2];
    const int row = ra - start, head = row / r.head_dim, i = row - head * r.head_dim;
    const float inv_freq = s < 2 ? r.inv_freq[i] : 0.0f;
    const float b0 = bias ? __half2float(bias[row]) : 0.0f;
    const float b1 = bias ? __half2float(bias[row + half]) : 0.0f;
#pragma unroll
    for (int k = 0; k < 2; k++) {
        const int t = 2 * c + k;
        if (t >= p.rows)
            continue;
        __half x0 = __float2half(acc[k] + b0), x1 = __float2half(acc[2 + k] + b1);
        const int pos = r.positions[t];
        if (s < 2) {
            float cs, sn;
            rope_cos_sin(pos, inv_freq, r.cos_sin_scale, &cs, &sn);
            rope_rotate(cs, sn, &x0, &x1);
        }
        out[(size_t)t * n + row] = x0;
        out[(size_t)t * n + row + half] = x1;
        const int seq = r.token_seq[t];
        if (s == 0 || seq < 0)
            continue; /* q; or a padding row of a CUDA-graph bucket */
        const int blk = r.block_tables[(size_t)seq * r.max_blocks + pos / r.block_size];
        const size_t slot =
            (((size_t)blk * r.block_size + pos % r.block_size) * r.kv_heads + head) *
                r.head_dim + i;
        __half *cache = s == 1 ? r.k_cache : r.v_cache;
        cache[slot] = x0;
        cache[slot + half] = x1;
    }
}

// The norm fold's x (p.norm_resid, after the PDL wait): each row's sum of
// squares as rmsnorm_residual_vec_kernel sums it at norm_threads threads
// (thread tid < norm_threads: vectors tid, tid + norm_threads, ..., in
// order; the block's other threads add 0.0, which block_sum's order
// absorbs), its block_sum, then x = resid * inv * w rounded, into s_x: the
// bits that kernel (add NULL) writes for x. The block reads the rows
// from L2 twice (14 KB a 3,584-wide row) instead of keeping them in
// registers the GEMV needs for its loads in flight.
__device__ __forceinline__ void qmma_norm_x(const qgemv_params &p, uint4 *s_x)
{
    __shared__ float scratch[32];
    const int nv = p.n_in >> 2, nt = p.norm_threads, tid = threadIdx.x;
    const uint2 *w = (const uint2 *)p.norm_w;
    for (int t = 0; t < p.rows; t++) {
        const float4 *r = (const float4 *)(p.norm_resid + (size_t)t * p.n_in);
        float ss = 0.0f;
        if (tid < nt)
#pragma unroll
            for (int k = 0; k < RMS_VECS; k++) {
                const int v = tid + k * nt;
                if (v < nv)
                    ss = rms_sumsq4(ss, r[v]);
            }
        const float inv = rsqrtf(block_sum(ss, scratch) / (float)p.n_in + p.norm_eps);
        uint2 *o = (uint2 *)s_x + (size_t)t * nv;
        for (int v = tid; v < nv; v += blockDim.x)
            o[v] = rms_scale4(r[v], inv, half4_to_float4(w[v]));
        /* every thread has read scratch[0] before the next row's block_sum
         * writes it; after the last row, x is whole */
        __syncthreads();
    }
}

// After the kernel's loads that need nothing of the previous kernel: the
// PDL wait (x is the previous kernel's output; pdl.cuh), then, where x is
// in shared memory (p.x_shared), the block's copy of x's rows there, or
// with the norm fold x made there from the residual rows.
// Both used to be loops of a load then its store, which wait for each
// load in turn: 7 round trips to L2 for down's 37 KB of x at 384
// threads, 4 for the norm weight's 7 KB at 256. The copy is now all
// cp.async at once (one round trip; the ring kernel's weight groups
// issued before it are waited for too, which only the ring pays), and
// the norm weight, which depends on no earlier kernel, is prefetched
// into L1 before the wait (no registers held across it; the residual's
// second read finds the lines its first read brought into L1). On an
// H100, bench_gemv_quant (7B, T = 1, in a graph): down 4-bit 14.4 -> 14.0
// us, a 4-bit layer 54.3 -> 53.1; the a1 AWQ step 2.22-2.25 -> 2.18 ms,
// GPTQ-8 3.16 -> 3.11, the same outputs (RESULTS.md session 42). sm_80+
// only, as its callers' bodies (cp.async).
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
__device__ __forceinline__ void qmma_wait_copy_x(const qgemv_params &p, uint4 *s_x)
{
    if (p.norm_resid)
        for (int v = threadIdx.x; v < p.n_in >> 2; v += blockDim.x)
            asm volatile("prefetch.global.L1 [%0];\n" ::"l"((const uint2 *)p.norm_w + v));
    pdl_wait();
    pdl_launch_dependents();
    if (p.norm_resid) {
        qmma_norm_x(p, s_x);
    } else if (p.x_shared) {
        const int n = p.rows * (p.n_in >> 3);
        for (int i = threadIdx.x; i < n; i += blockDim.x)
            mma_cp_async16(s_x + i, (const uint4 *)p.x + i, 16);
        asm volatile("cp.async.wait_all;\n" ::: "memory");
        __syncthreads();
    }
}
#endif

// A tile's end in warp `part` (KS parts a tile): the parts' sums added in
// warp order through shared memory, then part 0 stores the tile's rows
// (plainly or through PAIR's epilogue). Every warp of the block calls it
// once a tile (its barriers).
template <int KS, int PAIR>
__device__ __forceinline__ void qmma_tile_finish(const qgemv_params &p, float (&acc)[4], int warp,
                                                 int lane, int part, int tile, int my_steps)
{
    const int g = lane >> 2, c = lane & 3;
    if (KS > 1) {
        __shared__ float s_part[QMMA_BLOCK_WARPS(KS)][4][32];
#pragma unroll
        for (int i = 0; i < 4; i++)
            s_part[warp][i][lane] = acc[i];
        __syncthreads();
        if (part == 0)
#pragma unroll
            for (int k = 1; k < KS; k++)
#pragma unroll
                for (int i = 0; i < 4; i++)
                    acc[i] += s_part[warp + k][i][lane];
        __syncthreads(); /* s_part is the next tile's */
    }
    /* acc[i]: row i < 2 ? g : g + 8 of the tile, x row 2c + (i & 1) */
    if (part == 0 && my_steps > 0) {
        if (PAIR == PAIR_SILU) {
            qmma_store_silu(p, qmma_row_a<PAIR>(p, tile, g), acc, c);
        } else if (PAIR == PAIR_ROPE) {
            qmma_store_rope(p, qmma_row_a<PAIR>(p, tile, g), acc, c);
        } else {
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int o = tile * 16 + g + (i < 2 ? 0 : 8), t = 2 * c + (i & 1);
                if (o < p.n_out && t < p.rows) {
                    if (p.resid) /* the bits of the store, then rmsnorm.cu's add */
                        p.resid[(size_t)t * p.n_out + o] +=
                            __half2float(__float2half(acc[i] + 0.0f));
                    else
                        qgemv_store(p, t, o, acc[i]);
                }
            }
        }
    }
}

#ifndef __CUDACC_RTC__
// gemv_quant_ring.cu: q through the ring kernel at KS 8 or 12 (blocks:
// the tile groups; n_sm, smem_optin: the GPU's SMs and most shared memory
// a block; force_path as vb_gemv_quant_force's 3 and 4), where the ring is
// on (vb_gemv_quant_ring) and takes the layout (gps 0 tiled scales, 1
// plain; pair: PAIR_*); else cudaErrorNotSupported and launch_mma takes
// the mma kernel.
cudaError_t qgemv_ring_launch(const qgemv_params &q, int bits, int gps, int pair, int ks,
                              long blocks, int n_sm, int smem_optin, int force_path,
                              cudaStream_t stream);
#endif

#endif

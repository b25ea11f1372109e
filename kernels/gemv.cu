// Projections of a few rows (decode steps of up to 8 sequences):
// out[t, n] = sum_k x[t, k] w[n, k] (+ bias[n]) for t < T <= 8, fp16 in,
// fp32 accumulation, fp16 or fp32 out.
//
// Why not cuBLAS here: with so few rows a projection is a pass over the
// weights and nothing else, and its speed is the bytes it moves. One warp
// per output row: every lane reads 16 bytes (8 halves) of the row per
// step, the warp 512 contiguous bytes, and applies them to all T rows of
// x, which stay in L1/L2 (T x n_in halves). On an H200
// (tests/bench/bench_gemv.c, figures in tests/bench/RESULTS.md) it reads
// the large matrices at 3.8-4.3 TB/s for T = 1 and beats cuBLAS up to
// T = 2; from T = 4 on, the T loads of x per weight load make it L1-bound
// and cuBLAS wins (hence the backend's VB_GEMV_MAX_ROWS default). Two or
// four output rows per warp sharing each x load were measured too: slower
// at every T (fewer warps, fewer loads in flight), so not kept. The other
// way round, two or four warps per row, pays where a warp per row leaves
// SMs short of warps (the launcher picks it by the grid's size).
//
// One launch covers up to three segments (different weights, biases and
// outputs over the same x: the q, k and v projections), so the small k and
// v matrices do not each leave most of the GPU idle in a launch of their
// own. The gate/up mode reads the gate and up rows of the same output
// index and writes silu(gate) * up: the MLP's two projections and its
// activation in one pass, without the [T, 2 * intermediate] round trip.
//
// Requires n_in % 8 == 0 and 16-byte aligned x and weights (the caller
// checks with vb_gemv_supported and uses cuBLAS otherwise).
#include <cuda_fp16.h>

#include "gemv_common.cuh"
#include "kernels.h"
#include "pdl.cuh"
#include "silu.cuh"

#define GEMV_WARPS 8 /* warps per block */
// 16-byte weight loads per lane issued before the wait on the previous
// kernel. 2 keeps T = 1 at 32 registers (full occupancy); 4 and 8 cost
// occupancy (40 and 56 registers) and were no faster: a1 TPOT 4.39 and
// 4.51 ms against 4.40 at 2, 4.63 without PDL (H200, RESULTS.md).
#define GEMV_PREFETCH 2

enum { GEMV_F16 = 0, GEMV_F32 = 1, GEMV_SILU_GATE = 2 };

struct gemv_params {
    const __half *x;
    const __half *w[VB_GEMV_MAX_SEGS];
    const __half *bias[VB_GEMV_MAX_SEGS];
    void *out[VB_GEMV_MAX_SEGS];
    int n_out[VB_GEMV_MAX_SEGS]; /* 0 past n_segs: a warp per output row */
    const __half *w_up;          /* GEMV_SILU_GATE: the up weights, shaped like w[0] */
    int n_segs, n_in, rows;      /* rows: x's real row count, <= the template's T */
    int l1_alloc;                /* weights through L1 as x (vb_gemv_l1_alloc), else past it */
};


// T: x rows the kernel is unrolled for (1, 2, 4 or 8; p.rows <= T are
// real); MODE: GEMV_F16, GEMV_F32, GEMV_SILU_GATE; KS: warps per output
// row (1, 2 or 4), each taking every KS-th 512-byte piece of the row, their
// sums added in warp order through shared memory. KS > 1 is for launches
// that would leave the GPU partly empty with a warp per row (the
// projection into the hidden size: 3584 rows of 18944 at 7B left ~27 of
// 64 warps an SM, too few loads in flight), see launch().
//
// Each lane loads its first GEMV_PREFETCH chunks of weights before
// pdl_wait(): under PDL (pdl.cuh) those loads and the block's launch
// overlap the previous kernel (an RMSNorm, the attention).
template <int T, int MODE, int KS>
__global__ void __launch_bounds__(32 * GEMV_WARPS) gemv_kernel(gemv_params p)
{
    constexpr int NW = MODE == GEMV_SILU_GATE ? 2 : 1; /* weight rows read per output */
    constexpr int PF = GEMV_PREFETCH / NW;             /* chunks per row loaded before the wait */
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, part = warp % KS;
    int n = blockIdx.x * (GEMV_WARPS / KS) + warp / KS; /* output row, then within its segment */
    int s = 0;
    if (n >= p.n_out[0]) {
        n -= p.n_out[0];
        s = 1;
        if (n >= p.n_out[1]) {
            n -= p.n_out[1];
            s = 2;
        }
    }
    const int n_out = SEG(p.n_out, s), n_in = p.n_in, rows = p.rows;
    const bool live = n < n_out;
    if (KS == 1 && !live)
        return; /* whole warps leave: no shuffle is left waiting (KS > 1: the barrier below) */
    const uint4 *wr[NW];
    wr[0] = (const uint4 *)(SEG(p.w, s) + (size_t)(live ? n : 0) * n_in);
    if (MODE == GEMV_SILU_GATE)
        wr[NW - 1] = (const uint4 *)(p.w_up + (size_t)(live ? n : 0) * n_in);
    const uint4 *xr = (const uint4 *)p.x;
    const int row_chunks = n_in >> 3;        /* 8 halves per 16-byte load */
    const int chunks = live ? row_chunks : 0; /* this warp's to read */
    const int c0 = lane + 32 * part;         /* this warp's first chunk of the row */
    uint4 pre[PF][NW];
#pragma unroll
    for (int i = 0; i < PF; i++)
#pragma unroll
        for (int m = 0; m < NW; m++)
            pre[i][m] = c0 + 32 * KS * i >= chunks ? make_uint4(0, 0, 0, 0)
                        : p.l1_alloc               ? __ldg(wr[m] + c0 + 32 * KS * i)
                                                   : ldg_stream(wr[m] + c0 + 32 * KS * i);
    pdl_wait(); /* x is the previous kernel's output */
    pdl_launch_dependents();
    float acc[NW][T];
#pragma unroll
    for (int m = 0; m < NW; m++)
#pragma unroll
        for (int t = 0; t < T; t++)
            acc[m][t] = 0.0f;
#pragma unroll
    for (int i = 0; i < PF; i++)
        if (c0 + 32 * KS * i < chunks)
            gemv_chunk<T, NW>(acc, pre[i], xr, row_chunks, c0 + 32 * KS * i, rows);
#pragma unroll 4
    for (int c = c0 + 32 * KS * PF; c < chunks; c += 32 * KS) {
        uint4 w[NW];
#pragma unroll
        for (int m = 0; m < NW; m++)
            w[m] = p.l1_alloc ? __ldg(wr[m] + c) : ldg_stream(wr[m] + c);
        gemv_chunk<T, NW>(acc, w, xr, row_chunks, c, rows);
    }
    // lane t keeps x row t's sum
    float mine[NW];
#pragma unroll
    for (int m = 0; m < NW; m++) {
        mine[m] = 0.0f;
#pragma unroll
        for (int t = 0; t < T; t++) {
            float v = warp_sum(acc[m][t]);
            if (lane == t)
                mine[m] = v;
        }
    }
    if (KS > 1) {
        __shared__ float s_part[GEMV_WARPS][NW][T];
        if (lane < T)
#pragma unroll
            for (int m = 0; m < NW; m++)
                s_part[warp][m][lane] = mine[m];
        __syncthreads();
        if (part != 0 || !live)
            return;
        if (lane < T)
#pragma unroll
            for (int k = 1; k < KS; k++)
#pragma unroll
                for (int m = 0; m < NW; m++)
                    mine[m] += s_part[warp + k][m][lane];
    }
    const int t = lane;
    if (t >= rows)
        return;
    const size_t at = (size_t)t * n_out + n;
    if (MODE == GEMV_SILU_GATE) {
        float g = mine[0], u = mine[NW - 1];
        ((__half *)SEG(p.out, s))[at] = __float2half(silu_times(g, u));
        return;
    }
    const __half *bias = SEG(p.bias, s);
    float v = mine[0] + (bias ? __half2float(bias[n]) : 0.0f);
    if (MODE == GEMV_F32)
        ((float *)SEG(p.out, s))[at] = v;
    else
        ((__half *)SEG(p.out, s))[at] = __float2half(v);
}

#define GEMV_INSTANTIATE_KS(T, KS)                                                            \
    template __global__ void gemv_kernel<T, GEMV_F16, KS>(gemv_params);                     \
    template __global__ void gemv_kernel<T, GEMV_F32, KS>(gemv_params);                     \
    template __global__ void gemv_kernel<T, GEMV_SILU_GATE, KS>(gemv_params);
#define GEMV_INSTANTIATE(T)                                                                   \
    GEMV_INSTANTIATE_KS(T, 1) GEMV_INSTANTIATE_KS(T, 2) GEMV_INSTANTIATE_KS(T, 4)
GEMV_INSTANTIATE(1)
GEMV_INSTANTIATE(2)
GEMV_INSTANTIATE(4)
GEMV_INSTANTIATE(8)

#ifndef __CUDACC_RTC__
extern "C" bool vb_gemv_supported(int T, int n_in, const void *x, const void *w)
{
    return T >= 1 && T <= VB_GEMV_MAX_ROWS && n_in > 0 && n_in % 8 == 0 &&
           ((uintptr_t)x & 15) == 0 && ((uintptr_t)w & 15) == 0;
}

template <int T, int KS>
static void (*kernel_for(int mode))(gemv_params)
{
    return mode == GEMV_SILU_GATE ? gemv_kernel<T, GEMV_SILU_GATE, KS>
           : mode == GEMV_F32     ? gemv_kernel<T, GEMV_F32, KS>
                                  : gemv_kernel<T, GEMV_F16, KS>;
}

// The most warps per row (KS) whose grid still fits the GPU in one wave:
// more loads in flight for few long rows, no second wave's tail. The
// resident-block count of each instantiation is asked once (one GPU per
// process).
template <int T>
static cudaError_t launch_t(const gemv_params &p, int mode, long total, cudaStream_t stream)
{
    static int n_sm, resident[3][3]; /* [mode][KS 1, 2, 4] blocks an SM */
    void (*k[3])(gemv_params) = {kernel_for<T, 1>(mode), kernel_for<T, 2>(mode),
                                 kernel_for<T, 4>(mode)};
    if (!n_sm) {
        int dev = 0;
        cudaError_t e = cudaGetDevice(&dev);
        if (e == cudaSuccess)
            e = cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, dev);
        if (e != cudaSuccess)
            return e;
    }
    int pick = 0; /* k[i]: KS = 1 << i warps a row, GEMV_WARPS >> i rows a block */
    for (int i = 2; i >= 1 && !pick; i--) {
        if (!resident[mode][i]) {
            cudaError_t e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident[mode][i], k[i],
                                                                          32 * GEMV_WARPS, 0);
            if (e != cudaSuccess)
                return e;
        }
        long per_block = GEMV_WARPS >> i;
        if ((total + per_block - 1) / per_block <= (long)resident[mode][i] * n_sm)
            pick = i;
    }
    long per_block = GEMV_WARPS >> pick;
    unsigned blocks = (unsigned)((total + per_block - 1) / per_block);
    return vb_launch_pdl(k[pick], dim3(blocks), dim3(32 * GEMV_WARPS), 0, stream, p);
}

// Whether the weight loads allocate in L1 (the kernel before session 32)
// or stream past it (ldg_stream, the default: x, which every warp reads in
// full, stays there). Process-wide: the backend sets it once from
// VB_GEMV_L1_ALLOC.
static int gemv_l1_alloc_on;
extern "C" void vb_gemv_l1_alloc(int on)
{
    gemv_l1_alloc_on = on != 0;
}

// Checks the segments' weights and x and launches KS warps per output row.
static cudaError_t launch(gemv_params &p, int mode, int T, cudaStream_t stream)
{
    long total = 0;
    for (int s = 0; s < p.n_segs; s++) {
        if (p.n_out[s] <= 0 || !vb_gemv_supported(T, p.n_in, p.x, p.w[s]) || !p.out[s])
            return cudaErrorInvalidValue;
        total += p.n_out[s];
    }
    if (total <= 0 || total > (long)INT32_MAX - GEMV_WARPS)
        return cudaErrorInvalidValue;
    p.rows = T;
    p.l1_alloc = gemv_l1_alloc_on;
    if (T == 1)
        return launch_t<1>(p, mode, total, stream);
    if (T == 2)
        return launch_t<2>(p, mode, total, stream);
    if (T <= 4)
        return launch_t<4>(p, mode, total, stream);
    return launch_t<8>(p, mode, total, stream);
}

extern "C" cudaError_t vb_gemv_multi_f16(const vb_gemv_seg *segs, int n_segs, int out_f32,
                                         const uint16_t *x, int T, int n_in,
                                         cudaStream_t stream)
{
    if (!segs || n_segs < 1 || n_segs > VB_GEMV_MAX_SEGS)
        return cudaErrorInvalidValue;
    gemv_params p = {};
    p.x = (const __half *)x;
    p.n_segs = n_segs;
    p.n_in = n_in;
    for (int s = 0; s < n_segs; s++) {
        p.w[s] = (const __half *)segs[s].w;
        p.bias[s] = (const __half *)segs[s].bias;
        p.out[s] = segs[s].out;
        p.n_out[s] = segs[s].n_out;
    }
    return launch(p, out_f32 ? GEMV_F32 : GEMV_F16, T, stream);
}

extern "C" cudaError_t vb_gemv_f16(void *out, int out_f32, const uint16_t *x, const uint16_t *w,
                                   const uint16_t *bias, int T, int n_in, int n_out,
                                   cudaStream_t stream)
{
    vb_gemv_seg seg = {w, bias, out, n_out};
    return vb_gemv_multi_f16(&seg, 1, out_f32, x, T, n_in, stream);
}

extern "C" cudaError_t vb_gemv_silu_gate_f16(uint16_t *out, const uint16_t *x,
                                             const uint16_t *w_gate, const uint16_t *w_up,
                                             int T, int n_in, int n_out, cudaStream_t stream)
{
    if (!vb_gemv_supported(T, n_in, x, w_up))
        return cudaErrorInvalidValue;
    gemv_params p = {};
    p.x = (const __half *)x;
    p.n_segs = 1;
    p.n_in = n_in;
    p.w[0] = (const __half *)w_gate;
    p.w_up = (const __half *)w_up;
    p.out[0] = out;
    p.n_out[0] = n_out;
    return launch(p, GEMV_SILU_GATE, T, stream);
}
#endif

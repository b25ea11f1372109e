// The plain-chain projection for small steps of --batch-invariant (issue
// #22): out[T, n_out] = x[T, n_in] w[n_out, n_in]^T for T <= 8, fp16 or
// fp32 out, no bias (the caller adds it, as after cuBLASLt).
//
// Why: the mode runs projections on cuBLASLt's split-K-free algorithms
// (src/cuda/gemm_lt_invariant.c), whose outputs are, bit for bit, a chain
// of tensor-core k16 steps over n_in in order from 0.0f (measured:
// tests/bench/probe_gemm_chain.cu). At batch 1 those algorithms read the
// weights at about half the copy bandwidth (a whole 64-256-row tile per
// CTA, no split over n_in); this kernel computes the same chain at the
// bandwidth of a GEMV: a warp takes 16 weight rows (the mma's A, row o at
// position o % 16), runs mma.sync m16n8k16 over n_in in order, 16 columns
// a step, from 0.0f, and x's T <= 8 rows are the B side (token t at
// position t), so its bits are the chain's. The backend uses it only
// where gemm_lt_inv_prepare found it bit-identical to cuBLASLt on the
// shape (checked on the GPU it runs on, never assumed).
//
// Each warp streams its 16 rows and x's columns through a ring of
// CH_STAGES stages of 128 columns (cp.async, 16 bytes a copy, rows padded
// by 8 halves so ldmatrix's 8 row addresses and the B reads hit distinct
// banks). x goes through the ring too: read from global memory inside the
// chain, each k16 step waited a full L2 round trip before its mma (the
// loads sit under a warp-uniform branch the compiler does not hoist), which
// made a decode step ~6x slower than the copy bandwidth. The weights' first
// stages are issued ahead of the PDL wait (they never change during a
// step), x's after it (the previous kernel's output). One warp a block:
// the grid spreads the rows over every SM (q/o: 224 warps). Steps are never
// split over n_in: that would be another order.
//
// What bounds it now (tests/bench/RESULTS.md, session 15): ~64 ns a k16
// step of the chain, one dependent mma after another (q/o 14 us and down
// 72 us at T = 1 against 6 and 32 us of weight reads); a ring of 16
// stages, or the next stage's fragments read ahead of the mmas, did not
// make it faster (both slower), and cuBLASLt's split-K-free algorithms
// take as long a step. Shapes with n_in >> 3,584 stay latency-bound here.
#include <cuda_fp16.h>

#include "kernels.h"
#include "mma_sm80.cuh"
#include "pdl.cuh"

#define CH_COLS 128              /* columns a stage */
#define CH_LD (CH_COLS + 8)      /* halves a shared row */
#define CH_STAGES 6
#define CH_ROWS (16 + VB_GEMM_CHAIN_MAX_T) /* shared rows a stage: 16 of w, then x's */

struct ch_params {
    const __half *x, *w;
    void *out;
    int T, n_in, n_out, out_f32;
};

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
// Stage s's data is commit group S-1+s (see ch_kernel). At the top of step
// s (before its own commit), 2(S-1)+s groups are committed: S-2 may still
// be pending.
__device__ __forceinline__ void ch_wait_stages(void)
{
    asm volatile("cp.async.wait_group %0;\n" ::"n"(CH_STAGES - 2));
}
#endif

// Stage s's weights: columns [s * 128, s * 128 + 128) of rows o0..o0+15
// (zeros past n_out or n_in: never used in a step, see below).
__device__ __forceinline__ void ch_load_w(__half *ring, const ch_params &p, int o0, int s, int lane)
{
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
    __half *dst = ring + (s % CH_STAGES) * CH_ROWS * CH_LD;
#pragma unroll
    for (int m = 0; m < 8; m++) {
        const int id = lane + 32 * m, r = id >> 4, kc = (id & 15) * 8, k = s * CH_COLS + kc;
        const bool ok = o0 + r < p.n_out && k < p.n_in;
        mma_cp_async16(dst + r * CH_LD + kc, ok ? p.w + (size_t)(o0 + r) * p.n_in + k : p.w,
                       ok ? 16 : 0);
    }
#endif
}

// Stage s's x: the same columns of x's rows, zeros for tokens past T (the
// B side's unused columns, as a zero never changes the chain's sums).
__device__ __forceinline__ void ch_load_x(__half *ring, const ch_params &p, int s, int lane)
{
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
    __half *dst = ring + (s % CH_STAGES) * CH_ROWS * CH_LD + 16 * CH_LD;
#pragma unroll
    for (int m = 0; m < VB_GEMM_CHAIN_MAX_T / 2; m++) {
        const int id = lane + 32 * m, t = id >> 4, kc = (id & 15) * 8, k = s * CH_COLS + kc;
        const bool ok = t < p.T && k < p.n_in;
        mma_cp_async16(dst + t * CH_LD + kc, ok ? p.x + (size_t)t * p.n_in + k : p.x,
                       ok ? 16 : 0);
    }
#endif
}

__device__ __forceinline__ void ch_commit(void)
{
    asm volatile("cp.async.commit_group;\n" ::);
}

__global__ void __launch_bounds__(32) ch_kernel(ch_params p)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    extern __shared__ uint4 ch_smem[];
    __half *ring = (__half *)ch_smem;
    const int lane = threadIdx.x;
    const int o0 = blockIdx.x * 16;
    const int n_stages = (p.n_in + CH_COLS - 1) / CH_COLS;
    // Commit groups in order: the weights of stages 0 .. S-2 (before the
    // PDL wait), x of stages 0 .. S-2 (after it), then one group a stage
    // (weights and x) from stage S-1 on. Stage s's data is then always in
    // group S-1+s, whatever s (see ch_wait_stages). A stage past the end
    // commits an empty group to keep the count.
#pragma unroll
    for (int s = 0; s < CH_STAGES - 1; s++) {
        if (s < n_stages)
            ch_load_w(ring, p, o0, s, lane);
        ch_commit();
    }
    pdl_wait(); /* x is the previous kernel's output */
    pdl_launch_dependents();
#pragma unroll
    for (int s = 0; s < CH_STAGES - 1; s++) {
        if (s < n_stages)
            ch_load_x(ring, p, s, lane);
        ch_commit();
    }

    const int g = lane >> 2, c = lane & 3;
    const __half *a_row = ring + (lane & 15) * CH_LD + (lane >> 4) * 8;
    const __half *b_row = ring + (16 + g) * CH_LD + 2 * c;
    // A: ldmatrix of the 16 weight rows. B: lane (g, c) reads token g's
    // columns 2c, 2c + 1 (b0) and 2c + 8, 2c + 9 (b1) of the k16 step
    // (bank 4g + c + 8j: conflict-free); tokens past T are the ring's zeros.
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int s = 0; s < n_stages; s++) {
        ch_wait_stages(); /* stage s has landed (this lane's copies) */
        __syncwarp();     /* and every lane's; every lane is done with stage s - 1's slot */
        if (s + CH_STAGES - 1 < n_stages) { /* into stage s - 1's slot, while s is computed */
            ch_load_w(ring, p, o0, s + CH_STAGES - 1, lane);
            ch_load_x(ring, p, s + CH_STAGES - 1, lane);
        }
        ch_commit();
        const int slot = (s % CH_STAGES) * CH_ROWS * CH_LD;
        const int k0 = s * CH_COLS, steps = min(CH_COLS, p.n_in - k0) >> 4;
#pragma unroll
        for (int j = 0; j < CH_COLS / 16; j++) {
            if (j < steps) { /* warp-uniform: the chain has exactly n_in / 16 steps */
                unsigned a[4];
                mma_ldmatrix_x4(a, a_row + slot + j * 16);
                const unsigned b0 = *(const unsigned *)(b_row + slot + j * 16);
                const unsigned b1 = *(const unsigned *)(b_row + slot + j * 16 + 8);
                mma_m16n8k16(acc, a, b0, b1);
            }
        }
    }
    // acc[i]: row o0 + g (+ 8 for i >= 2), token 2c + (i & 1)
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int o = o0 + g + (i >> 1) * 8, t = 2 * c + (i & 1);
        if (o < p.n_out && t < p.T) {
            const size_t at = (size_t)t * p.n_out + o;
            if (p.out_f32)
                ((float *)p.out)[at] = acc[i];
            else
                ((__half *)p.out)[at] = __float2half_rn(acc[i]);
        }
    }
#else
    __trap(); /* launched only on sm_80+ (vb_gemm_chain_supported) */
#endif
}

#ifndef __CUDACC_RTC__ /* host launchers (the sm_70 NVRTC check compiles the kernel alone) */
extern "C" bool vb_gemm_chain_supported(int T, int n_in, int n_out, const void *x, const void *w)
{
    int dev = 0, major = 0;
    cudaFuncAttributes attr;
    if (T < 1 || T > VB_GEMM_CHAIN_MAX_T || n_in < 16 || n_in % 16 || n_out < 1 ||
        ((uintptr_t)x | (uintptr_t)w) % 16 || cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
        major < 8 || cudaFuncGetAttributes(&attr, ch_kernel) != cudaSuccess ||
        attr.ptxVersion < 80) {
        (void)cudaGetLastError();
        return false;
    }
    return true;
}

extern "C" cudaError_t vb_gemm_chain(void *out, int out_f32, const void *x, const void *w, int T,
                                     int n_in, int n_out, cudaStream_t stream)
{
    if (T == 0)
        return cudaSuccess;
    if (T < 0 || T > VB_GEMM_CHAIN_MAX_T || n_in % 16 || n_in < 16 || n_out < 1)
        return cudaErrorInvalidValue;
    const size_t smem = (size_t)CH_STAGES * CH_ROWS * CH_LD * sizeof(__half);
    static bool attr_set;
    if (!attr_set) { /* above 48 KB only with CH_STAGES > 7; kept for the tuning knob */
        cudaError_t e = cudaFuncSetAttribute(ch_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             (int)smem);
        if (e != cudaSuccess)
            return e;
        attr_set = true;
    }
    ch_params p = {(const __half *)x, (const __half *)w, out, T, n_in, n_out, out_f32};
    return vb_launch_pdl(ch_kernel, dim3((unsigned)((n_out + 15) / 16)), dim3(32), smem, stream,
                         p);
}
#endif

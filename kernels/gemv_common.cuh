// The GEMV kernels' shared pieces (gemv.cu, gemv_qkv_rope.cu): 16-byte
// weight chunks of 8 halves against x rows, fp32 sums.
#ifndef VB_GEMV_COMMON_CUH
#define VB_GEMV_COMMON_CUH

#include <cuda_fp16.h>

// Picks member [s] of a 3-array in the parameter space without a dynamic
// index (which would copy the parameters to local memory).
#define SEG(a, s) ((s) == 0 ? (a)[0] : (s) == 1 ? (a)[1] : (a)[2])

__device__ __forceinline__ void unpack8(uint4 v, float2 f[4])
{
    const __half2 *h = (const __half2 *)&v;
#pragma unroll
    for (int j = 0; j < 4; j++)
        f[j] = __half22float2(h[j]);
}

__device__ __forceinline__ float dot8(const float2 a[4], const float2 b[4], float acc)
{
#pragma unroll
    for (int j = 0; j < 4; j++) {
        acc = fmaf(a[j].x, b[j].x, acc);
        acc = fmaf(a[j].y, b[j].y, acc);
    }
    return acc;
}

__device__ __forceinline__ float warp_sum(float v)
{
#pragma unroll
    for (int off = 16; off > 0; off >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

// acc[m][t] += weight chunk w[m] . x row t's chunk c, for the real rows.
template <int T, int NW>
__device__ __forceinline__ void gemv_chunk(float (&acc)[NW][T], const uint4 (&w)[NW],
                                           const uint4 *xr, int chunks, int c, int rows)
{
    float2 wf[NW][4];
#pragma unroll
    for (int m = 0; m < NW; m++)
        unpack8(w[m], wf[m]);
#pragma unroll
    for (int t = 0; t < T; t++) {
        if (t < rows) {
            float2 xf[4];
            unpack8(xr[(size_t)t * chunks + c], xf);
#pragma unroll
            for (int m = 0; m < NW; m++)
                acc[m][t] = dot8(wf[m], xf, acc[m][t]);
        }
    }
}

// The RMSNorm prologue of a projection (kernels.h, vb_gemv_norm): rows
// rows of x = fp16(resid * rsqrt(mean(resid^2) + eps) * w) into xs (shared
// memory), by the whole block (every thread must call it). The sum of
// squares is added in rmsnorm.cu's order to give its bits: that kernel
// runs nt = threads_for(dim) threads, thread v summing elements v, v + nt,
// ... in turn, then block_sum (a shuffle tree in each warp of 32, then
// one over the warps' sums). Here warp w plays the virtual warps w, w +
// (warps in the block), ... of that block. scratch: 33 floats of shared
// memory.
__device__ __forceinline__ void gemv_norm_rows(__half *xs, const float *resid, const __half *w,
                                               int dim, int rows, float eps, float *scratch)
{
    const int nt = dim >= 1024 ? 1024 : ((dim + 31) / 32) * 32; /* rmsnorm.cu's threads_for */
    const int n_vw = nt >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int n_warps = blockDim.x >> 5;
    for (int t = 0; t < rows; t++) {
        const float *r = resid + (size_t)t * dim;
        for (int vw = warp; vw < n_vw; vw += n_warps) {
            float ss = 0.0f;
            for (int i = vw * 32 + lane; i < dim; i += nt) {
                float x = r[i];
                ss += x * x;
            }
            for (int off = 16; off > 0; off >>= 1)
                ss += __shfl_xor_sync(0xffffffffu, ss, off);
            if (lane == 0)
                scratch[vw] = ss;
        }
        __syncthreads();
        if (warp == 0) {
            float v = lane < n_vw ? scratch[lane] : 0.0f;
            for (int off = 16; off > 0; off >>= 1)
                v += __shfl_xor_sync(0xffffffffu, v, off);
            if (lane == 0)
                scratch[32] = v;
        }
        __syncthreads();
        const float inv = rsqrtf(scratch[32] / (float)dim + eps);
        for (int i = threadIdx.x; i < dim; i += blockDim.x)
            xs[(size_t)t * dim + i] = __float2half(r[i] * inv * __half2float(w[i]));
        __syncthreads(); /* xs complete; scratch free for the next row */
    }
}

#ifndef __CUDACC_RTC__
// The launchers' split (gemv.cu, gemv_qkv_rope.cu): the most warps per
// output (KS = 1, 2 or 4, at most max_split) whose grid still fits the GPU
// in one wave, more loads in flight for few long rows and no second
// wave's tail. k[i] is the kernel for KS = 1 << i, whose blocks of `warps`
// warps take warps >> i outputs each; the resident blocks an SM of each
// are asked once per shared-memory size (resident, resident_smem: the
// caller's, one GPU per process). *pick: the i chosen.
template <typename P>
static cudaError_t gemv_pick_split(void (*const k[3])(P), int resident[3], size_t resident_smem[3],
                                   long outputs, int warps, int max_split, size_t smem, int *pick)
{
    static int n_sm;
    if (!n_sm) {
        int dev = 0;
        cudaError_t e = cudaGetDevice(&dev);
        if (e == cudaSuccess)
            e = cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, dev);
        if (e != cudaSuccess)
            return e;
    }
    *pick = 0;
    for (int i = 2; i >= 1; i--) {
        if ((1 << i) > max_split)
            continue;
        if (!resident[i] || resident_smem[i] != smem) {
            cudaError_t e =
                cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident[i], k[i], 32 * warps, smem);
            if (e != cudaSuccess)
                return e;
            resident_smem[i] = smem;
        }
        long per_block = warps >> i;
        if ((outputs + per_block - 1) / per_block <= (long)resident[i] * n_sm) {
            *pick = i;
            break;
        }
    }
    return cudaSuccess;
}
#endif

#endif

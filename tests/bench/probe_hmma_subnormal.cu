// Probe (issue #21, session 40): does mma.sync m16n8k16 (fp16 in, fp32
// accumulate) cost more when its A values are fp16 subnormals? The sums
// form of the quantized GEMV (RESULTS.md session 40; branch
// wip/sums-form) fed the mma the nibbles as they are, q * 2^-24, to save
// the subtract of 1024 + zero. Each warp runs 4096 mma on one accumulator
// (a dependent chain: the latency) or on 4 (independent: the throughput at
// 1, 4 and 16 warps an SM), on every SM, A normal (1024 + q, 1.0) or
// subnormal (q, 16 q); clock64 of block 0's first warp and the launch's
// event time. Figures: tests/bench/RESULTS.md session 40.
//
// Standalone (not in meson; on the GPU machine):
//   nvcc -arch=sm_90 -O3 -o probe tests/bench/probe_hmma_subnormal.cu && ./probe
#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>
#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("%s: %s\n", #x, cudaGetErrorString(e)); exit(1); } } while (0)

__device__ __forceinline__ void mma(float c[4], const unsigned a[4], unsigned b0, unsigned b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, "
                 "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* CH accumulators a warp; the lane's A bits vary with the lane (low bits
 * only: a subnormal stays one) so the values are not all alike */
template <int CH>
__global__ void chains(unsigned aval, unsigned bval, int iters, float *out, long long *cyc)
{
    const unsigned a[4] = {aval ^ (threadIdx.x & 7), aval, aval, aval};
    float c[CH][4] = {};
    const long long t0 = clock64();
    for (int i = 0; i < iters; i++)
#pragma unroll
        for (int j = 0; j < CH; j++)
            mma(c[j], a, bval, bval + i);
    const long long t1 = clock64();
    float s = 0;
    for (int j = 0; j < CH; j++)
        s += c[j][0] + c[j][1] + c[j][2] + c[j][3];
    out[blockIdx.x * blockDim.x + threadIdx.x] = s; /* keeps the chains */
    if (threadIdx.x == 0 && blockIdx.x == 0)
        *cyc = t1 - t0;
}

template <int CH>
static void run(unsigned a, int warps, int n_sm, float *out, long long *cyc, double *cycles,
                float *ms)
{
    enum { ITERS = 4096 };
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    chains<CH><<<n_sm, 32 * warps>>>(a, 0x3C003C00u, ITERS, out, cyc); /* warm-up */
    CK(cudaEventRecord(e0));
    chains<CH><<<n_sm, 32 * warps>>>(a, 0x3C003C00u, ITERS, out, cyc);
    CK(cudaEventRecord(e1));
    CK(cudaEventSynchronize(e1));
    long long c = 0;
    CK(cudaMemcpy(&c, cyc, sizeof c, cudaMemcpyDeviceToHost));
    CK(cudaEventElapsedTime(ms, e0, e1));
    *cycles = (double)c / ITERS;
    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
}

int main()
{
    int n_sm = 0;
    CK(cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, 0));
    float *out;
    long long *cyc;
    CK(cudaMalloc(&out, (size_t)n_sm * 16 * 32 * sizeof(float)));
    CK(cudaMalloc(&cyc, sizeof(long long)));
    const struct {
        const char *name;
        unsigned a;
    } as[] = {{"normal 1024+q", 0x64096405u}, {"subnormal q", 0x00090005u},
              {"subnormal 16q", 0x00900050u}, {"normal 1.0", 0x3C003C00u}};
    for (const auto &A : as)
        for (int warps : {1, 4, 16}) {
            double c1, c4;
            float ms1, ms4;
            run<1>(A.a, warps, n_sm, out, cyc, &c1, &ms1);
            run<4>(A.a, warps, n_sm, out, cyc, &c4, &ms4);
            printf("%-14s %2d warps an SM: 1 chain %.1f cycles an mma (%.3f ms), "
                   "4 chains %.1f cycles a round of 4 (%.3f ms)\n",
                   A.name, warps, c1, ms1, c4, ms4);
        }
    CK(cudaGetLastError());
    return 0;
}

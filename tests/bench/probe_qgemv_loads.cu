// Probe (issue #21, session 39): how fast the quantized decode GEMV's
// loads alone can stream a 7B matrix, by the shape of a warp's loads,
// without its arithmetic. The structure of kernels/gemv_quant.cu's mma
// kernel: 8 warps a block, KS 8 warps a 16-row tile, lane (g, c) loading
// 16 bytes of rows g and g + 8 a step, U steps loaded ahead with the same
// double buffer, the resident blocks looping over the tiles (MINB blocks
// an SM, set by shared memory: the kernel's 3 by registers). Patterns:
// 0 row order (a warp load: 8 rows x 64 bytes, a row apart; the layout
// before session 39), 1 a warp step's 1 KB contiguous, 2 row blocks as
// kernels/qmat_layout.h stores them (rows g and g + 8 in two 8-row
// blocks, each warp load a 512-byte run). WORK dependent LOP3s a 32-bit
// word stand in for the dequantization, BAR a barrier at each tile's end
// as the kernel's reduction has. Each timed launch reads another of 4
// copies of the matrix (L2 holds none); median of 5 timings of 20
// launches. Figures: tests/bench/RESULTS.md session 39.
//
// Standalone (not in meson; on the GPU machine):
//   nvcc -arch=sm_90 -O3 -o probe tests/bench/probe_qgemv_loads.cu && ./probe
#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>
#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("%s: %s\n", #x, cudaGetErrorString(e)); exit(1); } } while (0)

template <int PAT, int U, int WORK, int MINB, int BAR = 0>
__global__ void __launch_bounds__(256, MINB) probe(const uint4 *q, int n_tiles, int steps, unsigned *out)
{
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, part = warp;
    const int g = lane >> 2, c = lane & 3;
    const size_t row_bytes = (size_t)steps * 64;
    unsigned acc = 0;
    for (int tile = blockIdx.x; tile < n_tiles; tile += gridDim.x) {
        const char *base = (const char *)q + (size_t)tile * 16 * row_bytes;
        /* PAT 2: row blocks as landed (rows 0-7 and 8-15 two 8-row blocks, each step by step) */
        auto addr_a = [&](int s) -> const uint4 * {
            if (PAT == 0) return (const uint4 *)(base + (size_t)g * row_bytes + 64 * s + 16 * c);
            if (PAT == 2) return (const uint4 *)(base + (size_t)s * 512 + 16 * lane);
            return (const uint4 *)(base + (size_t)s * 1024 + 16 * lane);
        };
        auto addr_b = [&](int s) -> const uint4 * {
            if (PAT == 0) return (const uint4 *)(base + (size_t)(g + 8) * row_bytes + 64 * s + 16 * c);
            if (PAT == 2) return (const uint4 *)(base + 8 * row_bytes + (size_t)s * 512 + 16 * lane);
            return (const uint4 *)(base + (size_t)s * 1024 + 512 + 16 * lane);
        };
        uint4 wa[U], wb[U];
#pragma unroll
        for (int u = 0; u < U; u++) {
            int s = part + 8 * u;
            if (s < steps) { wa[u] = __ldcs(addr_a(s)); wb[u] = __ldcs(addr_b(s)); }
            else wa[u] = wb[u] = make_uint4(0, 0, 0, 0);
        }
        for (int s = part; s < steps; s += 8 * U) {
            uint4 na[U], nb[U];
#pragma unroll
            for (int u = 0; u < U; u++) {
                int t = s + 8 * (U + u);
                if (t < steps) { na[u] = __ldcs(addr_a(t)); nb[u] = __ldcs(addr_b(t)); }
                else na[u] = nb[u] = make_uint4(0, 0, 0, 0);
            }
#pragma unroll
            for (int u = 0; u < U; u++) {
                if (s + 8 * u < steps) {
                    unsigned v[8] = {wa[u].x, wa[u].y, wa[u].z, wa[u].w, wb[u].x, wb[u].y, wb[u].z, wb[u].w};
#pragma unroll
                    for (int i = 0; i < 8; i++) {
                        unsigned x = v[i];
#pragma unroll
                        for (int k = 0; k < WORK; k++)
                            asm volatile("lop3.b32 %0, %0, %1, 0x64006400, 0xEA;" : "+r"(x) : "n"(0x000F000F));
                        acc += x;
                    }
                }
            }
#pragma unroll
            for (int u = 0; u < U; u++) { wa[u] = na[u]; wb[u] = nb[u]; }
        }
        if (BAR) __syncthreads(); /* the real kernel's tile end */
    }
    if (acc == 0x12345678u) out[0] = acc;
}

template <int PAT, int U, int WORK, int MINB, int BAR = 0>
static void run(const char *name, const uint4 *q, int rows, int steps, unsigned *out, int n_sm)
{
    /* MINB blocks an SM, by shared memory (the real kernel: 3 by registers) */
    const int smem = 220 * 1024 / MINB;
    CK(cudaFuncSetAttribute(probe<PAT, U, WORK, MINB, BAR>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    const int n_tiles = rows / 16;
    int per_sm = 0;
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, probe<PAT, U, WORK, MINB, BAR>, 256, smem));
    int grid = per_sm * n_sm < n_tiles ? per_sm * n_sm : n_tiles;
    cudaEvent_t e0, e1; CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
    float best[5];
    for (int rep = -1; rep < 5; rep++) {
        CK(cudaEventRecord(e0));
        for (int i = 0; i < 20; i++) /* 4 copies in turn: the 34 MB one not from L2 */
            probe<PAT, U, WORK, MINB, BAR><<<grid, 256, smem>>>(q + (size_t)(i % 4) * rows * steps * 4, n_tiles, steps, out);
        CK(cudaEventRecord(e1)); CK(cudaEventSynchronize(e1));
        float ms; CK(cudaEventElapsedTime(&ms, e0, e1));
        if (rep >= 0) best[rep] = ms * 1000 / 20;
    }
    for (int i = 0; i < 5; i++) for (int j = i + 1; j < 5; j++) if (best[j] < best[i]) { float t = best[i]; best[i] = best[j]; best[j] = t; }
    double bytes = (double)rows * steps * 64;
    cudaFuncAttributes a; CK(cudaFuncGetAttributes(&a, probe<PAT, U, WORK, MINB, BAR>));
    printf("%-28s rows %6d steps %4d  %3d blocks/SM %3d regs  %7.2f us  %6.0f GB/s\n", name, rows, steps, per_sm, a.numRegs, best[2], bytes / best[2] / 1e3);
}

int main()
{
    int n_sm; CK(cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, 0));
    cudaDeviceProp p; CK(cudaGetDeviceProperties(&p, 0)); printf("%s, %d SMs\n", p.name, n_sm);
    const size_t bytes = (size_t)37888 * 1792 * 4; /* room for 4 copies: cold L2 */
    uint4 *q; unsigned *out; CK(cudaMalloc(&q, bytes)); CK(cudaMalloc(&out, 4)); CK(cudaMemset(q, 0x5a, bytes));
    struct { int rows, steps; const char *n; } shp[2] = {{37888, 28, "gate_up"}, {3584, 148, "down"}};
    for (int s = 0; s < 2; s++) {
        const int r = shp[s].rows, st = shp[s].steps;
        printf("-- %s\n", shp[s].n);
        run<0, 2, 0, 3>("pat0 U2 work0 3blk", q, r, st, out, n_sm);
        run<1, 2, 0, 3>("pat1 U2 work0 3blk", q, r, st, out, n_sm);
        run<2, 2, 0, 3>("pat2 U2 work0 3blk", q, r, st, out, n_sm);
        run<2, 2, 0, 3, 1>("pat2 U2 work0 3blk bar", q, r, st, out, n_sm);
        run<2, 2, 9, 3, 1>("pat2 U2 work9 3blk bar", q, r, st, out, n_sm);
        run<2, 2, 14, 3, 1>("pat2 U2 work14 3blk bar", q, r, st, out, n_sm);
        run<2, 2, 0, 4>("pat2 U2 work0 4blk", q, r, st, out, n_sm);
        run<2, 3, 0, 3>("pat2 U3 work0 3blk", q, r, st, out, n_sm);
        run<2, 4, 0, 2>("pat2 U4 work0 2blk", q, r, st, out, n_sm);
    }
    return 0;
}

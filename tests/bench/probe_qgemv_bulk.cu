// Probe (issue #21, session 43): the quantized decode GEMV's weights fed
// by the Hopper bulk copy (cp.async.bulk, "TMA" without a tensor map)
// instead of each lane's register loads: how fast that streams a 7B
// matrix with the same stand-in arithmetic as probe_qgemv_loads.cu.
//
// Why: the mma GEMV reads 4-bit gate/up at ~2.5 TB/s on an H100 and at the
// same ~2.5 on an H200 (RESULTS.md sessions 38, 43), though the H200 has
// 41 % more bandwidth: on the H200 the SMs, not the memory, set its
// speed. Each lane's loads hold registers and issue slots, and the bytes
// a warp keeps in flight are U steps. A bulk copy is one instruction of
// one thread for a whole run of bytes (a tile's 8 rows of a step range are
// contiguous in row blocks, kernels/qmat_layout.h), lands in shared
// memory with no register held, and a block can keep several stages in
// flight; the consumer warps read their 16 bytes a step from shared
// memory. If this reaches well past probe_qgemv_loads.cu's register-fed
// figures with the same WORK, a bulk-fed GEMV is worth writing; if not,
// the arithmetic between the loads is the limit.
//
// Structure: blocks of 8 consumer warps (KS 8: warp w takes steps w, w +
// 8, ... of each chunk) and one producer warp (one thread issues the
// copies); a block loops over its tiles (16 rows: two 8-row blocks) in
// chunks of CH steps, S chunks in flight in a ring of shared memory, a
// "full" mbarrier (the copy's bytes) and an "empty" one (the 8 consumer
// warps) a stage. WORK dependent LOP3s a 32-bit word stand in for the
// dequantization, as in probe_qgemv_loads.cu. Each timed launch reads
// another of 4 copies of the matrix (L2 holds none), or with "l2" the
// same one (down's 34 MB then stays in L2: the SM-side ceiling). Median
// of 5 timings of 20 launches.
//
// Standalone (not in meson; sm_90 only; on the GPU machine):
//   nvcc -arch=sm_90 -O3 -o probe tests/bench/probe_qgemv_bulk.cu && ./probe [l2]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cuda_runtime.h>
#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("%s: %s\n", #x, cudaGetErrorString(e)); exit(1); } } while (0)

__device__ __forceinline__ unsigned smem_addr(const void *p)
{
    return (unsigned)__cvta_generic_to_shared(p);
}
__device__ __forceinline__ void mbar_init(unsigned long long *b, unsigned count)
{
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_addr(b)), "r"(count));
}
__device__ __forceinline__ void mbar_expect_tx(unsigned long long *b, unsigned bytes)
{
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_addr(b)),
                 "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(unsigned long long *b)
{
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_addr(b)) : "memory");
}
__device__ __forceinline__ void mbar_wait(unsigned long long *b, unsigned parity)
{
    asm volatile("{\n .reg .pred p;\n"
                 "W: mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
                 " @!p bra W;\n}" ::"r"(smem_addr(b)), "r"(parity) : "memory");
}
__device__ __forceinline__ void bulk_copy(void *dst, const void *src, unsigned bytes,
                                          unsigned long long *b)
{
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes "
                 "[%0], [%1], %2, [%3];" ::"r"(smem_addr(dst)), "l"(src), "r"(bytes),
                 "r"(smem_addr(b)) : "memory");
}

// q: [rows / 16 tiles][2 row blocks][steps][512 bytes] (row blocks as
// kernels/qmat_layout.h stores them: a step of 8 rows is 512 contiguous
// bytes, lane l's 16 at 16 l).
template <int S, int CH, int WORK>
__global__ void __launch_bounds__(288) probe(const char *q, int n_tiles, int steps, unsigned *out)
{
    extern __shared__ __align__(128) unsigned char smem[];
    unsigned long long *full = (unsigned long long *)smem, *empty = full + S;
    unsigned char *ring = smem + 128; /* S stages of CH * 1024 bytes: a rows, then b rows */
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int chunks = (steps + CH - 1) / CH;
    const int my_tiles = blockIdx.x < n_tiles ? (n_tiles - 1 - blockIdx.x) / gridDim.x + 1 : 0;
    const int units = my_tiles * chunks;
    if (threadIdx.x == 0) {
        for (int i = 0; i < S; i++) {
            mbar_init(&full[i], 1);
            mbar_init(&empty[i], 8);
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    const size_t rb = (size_t)steps * 512; /* an 8-row block */
    if (warp == 8) { /* the producer */
        if (lane == 0)
            for (int i = 0; i < units; i++) {
                const int st = i % S, tile = blockIdx.x + (i / chunks) * gridDim.x;
                const int s0 = (i % chunks) * CH, n = min(CH, steps - s0);
                if (i >= S)
                    mbar_wait(&empty[st], ((i / S) - 1) & 1);
                const char *a = q + (size_t)tile * 2 * rb + (size_t)s0 * 512;
                mbar_expect_tx(&full[st], 2 * n * 512);
                bulk_copy(ring + (size_t)st * CH * 1024, a, n * 512, &full[st]);
                bulk_copy(ring + (size_t)st * CH * 1024 + CH * 512, a + rb, n * 512, &full[st]);
            }
        return;
    }
    unsigned acc = 0;
    for (int i = 0; i < units; i++) {
        const int st = i % S;
        const int n = min(CH, steps - (i % chunks) * CH);
        mbar_wait(&full[st], (i / S) & 1);
        const unsigned char *stage = ring + (size_t)st * CH * 1024;
        for (int s = warp; s < n; s += 8) {
            const uint4 wa = *(const uint4 *)(stage + s * 512 + 16 * lane);
            const uint4 wb = *(const uint4 *)(stage + CH * 512 + s * 512 + 16 * lane);
            unsigned v[8] = {wa.x, wa.y, wa.z, wa.w, wb.x, wb.y, wb.z, wb.w};
#pragma unroll
            for (int j = 0; j < 8; j++) {
                unsigned x = v[j];
#pragma unroll
                for (int k = 0; k < WORK; k++)
                    asm volatile("lop3.b32 %0, %0, %1, 0x64006400, 0xEA;" : "+r"(x) : "n"(0x000F000F));
                acc += x;
            }
        }
        __syncwarp();
        if (lane == 0)
            mbar_arrive(&empty[st]);
    }
    if (acc == 0x12345678u)
        out[0] = acc;
}

template <int S, int CH, int WORK>
static void run(const char *q, size_t copy_bytes, int rows, int steps, unsigned *out, int n_sm,
                bool l2)
{
    const int smem = 128 + S * CH * 1024;
    auto k = probe<S, CH, WORK>;
    CK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    const int n_tiles = rows / 16;
    int per_sm = 0;
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, k, 288, smem));
    const int grid = per_sm * n_sm < n_tiles ? per_sm * n_sm : n_tiles;
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    float t[5];
    for (int rep = -1; rep < 5; rep++) {
        CK(cudaEventRecord(e0));
        for (int i = 0; i < 20; i++)
            k<<<grid, 288, smem>>>(q + (l2 ? 0 : (size_t)(i % 4) * copy_bytes), n_tiles, steps, out);
        CK(cudaGetLastError());
        CK(cudaEventRecord(e1));
        CK(cudaEventSynchronize(e1));
        float ms;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        if (rep >= 0)
            t[rep] = ms * 1000 / 20;
    }
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)
            if (t[j] < t[i]) {
                const float x = t[i];
                t[i] = t[j];
                t[j] = x;
            }
    const double bytes = (double)rows * steps * 64;
    printf("S %d CH %2d work %2d  %d blocks/SM  %5.1f KB in flight/SM  %7.2f us  %6.0f GB/s\n", S,
           CH, WORK, per_sm, per_sm * S * CH / 1.0, t[2], bytes / t[2] / 1e3);
}

int main(int argc, char **argv)
{
    const bool l2 = argc > 1 && !strcmp(argv[1], "l2");
    int n_sm;
    CK(cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, 0));
    cudaDeviceProp p;
    CK(cudaGetDeviceProperties(&p, 0));
    printf("%s, %d SMs, %s\n", p.name, n_sm, l2 ? "l2: one copy every launch" : "4 copies in turn");
    const size_t copy = (size_t)37888 * 1792; /* the largest matrix, gate/up at 4 bits */
    char *q;
    unsigned *out;
    CK(cudaMalloc(&q, 4 * copy));
    CK(cudaMalloc(&out, 4));
    CK(cudaMemset(q, 0x5a, 4 * copy));
    struct { int rows, steps; const char *n; } shp[2] = {{37888, 28, "gate_up"}, {3584, 148, "down"}};
    for (int s = 0; s < 2; s++) {
        const int r = shp[s].rows, st = shp[s].steps;
        printf("-- %s (%d rows, %d steps)\n", shp[s].n, r, st);
        run<2, 16, 0>(q, copy, r, st, out, n_sm, l2);
        run<4, 8, 0>(q, copy, r, st, out, n_sm, l2);
        run<4, 16, 0>(q, copy, r, st, out, n_sm, l2);
        run<6, 16, 0>(q, copy, r, st, out, n_sm, l2);
        run<4, 32, 0>(q, copy, r, st, out, n_sm, l2);
        run<4, 16, 9>(q, copy, r, st, out, n_sm, l2);
        run<4, 16, 14>(q, copy, r, st, out, n_sm, l2);
        run<6, 16, 14>(q, copy, r, st, out, n_sm, l2);
        /* more consumer warps an SM at the same work (session 45: at
         * work 9-14 the L2 figures fall to 3.2-2.5 TB/s with 3 blocks) */
        run<4, 8, 9>(q, copy, r, st, out, n_sm, l2);
        run<4, 8, 14>(q, copy, r, st, out, n_sm, l2);
        run<2, 8, 14>(q, copy, r, st, out, n_sm, l2);
        run<2, 4, 14>(q, copy, r, st, out, n_sm, l2);
    }
    return 0;
}

// Probe (issue #21, session 41): what a launch costs in a decode step's
// CUDA graph before its kernel does any work, and how fast the simplest
// kernel streams an o-sized matrix after a dependent wait. bench_gemv_quant
// (session 41) put the 7B o and q/k/v GEMVs at 4 bits on a ~4.5-5 us
// floor: o reads 6.9 MB from L2 in 4.6 us where the fp16 GEMV reads 25.7
// MB in 5.4. This says which part of that floor is the launch itself
// (the graph's kernel boundary, with and without programmatic dependent
// launch), which part one dependent memory round trip after the wait, and
// what a kernel that only streams the same bytes takes; the rest is the
// GEMV's own.
//
// Each timing is a CUDA graph of 200 launches of one kernel, replayed 5
// times after a warm-up replay (median), divided by 200:
//   empty     every thread stores one word (no PDL: the graph's plain
//             boundary);
//   empty+pdl the same launched with programmatic stream serialization,
//             each kernel waiting (griddepcontrol.wait) and then letting
//             the next start (launch_dependents), as the engine's kernels
//             do;
//   chain     +pdl, and each block's first thread reads after the wait a
//             word the previous kernel wrote: one dependent round trip;
//   stream    +pdl, each block's threads load their share of an o-sized
//             matrix (3584 x 3584 at 4 bits with group-128 scales and
//             zeros: 6.9 MB), 16 bytes a load, 4 loads in flight a thread,
//             issued before the wait (as the GEMVs do), then the dependent
//             word after it, then a sum stored; from a fresh copy each
//             launch (HBM) or always the same (L2);
// at 132, 264 and 396 blocks of 256 threads (one, two, three an SM on an
// H100 or H200).
//
// Standalone (not in meson; on the GPU machine):
//   nvcc -arch=sm_90 -O3 -o probe tests/bench/probe_launch_floor.cu && ./probe
#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>
#define CK(x)                                                                                 \
    do {                                                                                      \
        cudaError_t e = (x);                                                                  \
        if (e != cudaSuccess) {                                                               \
            printf("%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e));          \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)

enum { LAUNCHES = 200, THREADS = 256 };

__device__ __forceinline__ void wait_prev(bool pdl)
{
    if (pdl)
        asm volatile("griddepcontrol.wait;" ::: "memory");
}

__device__ __forceinline__ void let_next(bool pdl)
{
    if (pdl)
        asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
}

/* empty, empty+pdl, chain: flag[i] is written by launch i, read by i + 1 */
__global__ void boundary(int *flag, int i, bool pdl, bool chain)
{
    wait_prev(pdl);
    let_next(pdl);
    int v = 0;
    if (chain && threadIdx.x == 0)
        v = *(volatile int *)&flag[i]; /* the previous launch's word */
    if (threadIdx.x == 0 && blockIdx.x == 0)
        flag[i + 1] = v + 1;
}

/* stream: bytes of w (uint4s) split over the grid, 4 loads in flight a
 * thread, the first 4 before the wait */
__global__ void stream(const uint4 *w, long n, int *flag, int i, unsigned *out)
{
    const long stride = (long)gridDim.x * blockDim.x;
    long at = (long)blockIdx.x * blockDim.x + threadIdx.x;
    uint4 buf[4];
#pragma unroll
    for (int u = 0; u < 4; u++)
        buf[u] = at + u * stride < n ? __ldcs(w + at + u * stride) : make_uint4(0, 0, 0, 0);
    wait_prev(true);
    let_next(true);
    unsigned s = threadIdx.x == 0 ? (unsigned)*(volatile int *)&flag[i] : 0u;
    for (; at < n; at += 4 * stride) {
#pragma unroll
        for (int u = 0; u < 4; u++) {
            const uint4 v = buf[u];
            const long nx = at + (u + 4) * stride;
            buf[u] = nx < n ? __ldcs(w + nx) : make_uint4(0, 0, 0, 0);
            s ^= v.x + v.y + v.z + v.w;
        }
    }
    if (s == 0x9e3779b9u) /* never: keeps the loads */
        out[blockIdx.x] = s;
    if (threadIdx.x == 0 && blockIdx.x == 0)
        flag[i + 1] = (int)s & 1;
}

static void launch(const void *fn, void **args, int grid, bool pdl, cudaStream_t st)
{
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3((unsigned)grid);
    cfg.blockDim = dim3(THREADS);
    cfg.stream = st;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = pdl ? 1 : 0;
    CK(cudaLaunchKernelExC(&cfg, fn, args));
}

enum kind { EMPTY, EMPTY_PDL, CHAIN, STREAM_HBM, STREAM_L2 };

/* microseconds a launch: a graph of LAUNCHES launches, median of 5 replays */
static double time_kind(kind k, int grid, int *flag, const uint4 *w, long n, int copies,
                        unsigned *out, cudaStream_t st)
{
    cudaGraph_t g;
    cudaGraphExec_t ge;
    CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < LAUNCHES; i++) {
        bool pdl = k != EMPTY, chain = k == CHAIN;
        if (k == STREAM_HBM || k == STREAM_L2) {
            const uint4 *wi = w + (k == STREAM_HBM ? (long)(i % copies) * n : 0);
            void *args[] = {&wi, &n, &flag, &i, &out};
            launch((const void *)stream, args, grid, true, st);
        } else {
            void *args[] = {&flag, &i, &pdl, &chain};
            launch((const void *)boundary, args, grid, pdl, st);
        }
    }
    CK(cudaStreamEndCapture(st, &g));
    CK(cudaGraphInstantiate(&ge, g, 0));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    CK(cudaGraphLaunch(ge, st)); /* warm-up */
    float t[5];
    for (int r = 0; r < 5; r++) {
        CK(cudaEventRecord(e0, st));
        CK(cudaGraphLaunch(ge, st));
        CK(cudaEventRecord(e1, st));
        CK(cudaEventSynchronize(e1));
        CK(cudaEventElapsedTime(&t[r], e0, e1));
    }
    for (int a = 0; a < 5; a++) /* sort: the median is t[2] */
        for (int b = a + 1; b < 5; b++)
            if (t[b] < t[a]) {
                float x = t[a];
                t[a] = t[b];
                t[b] = x;
            }
    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
    CK(cudaGraphExecDestroy(ge));
    CK(cudaGraphDestroy(g));
    return 1e3 * t[2] / LAUNCHES;
}

int main(void)
{
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    if (prop.major < 9) {
        printf("probe_launch_floor: needs sm_90 (programmatic dependent launch)\n");
        return 0;
    }
    cudaStream_t st;
    CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    /* o at 4 bits: 3584 x 3584 / 2 bytes, scales and zeros 3584 x 28 x 2 x 2 */
    const long bytes = 3584L * 3584 / 2 + 3584L * 28 * 4;
    const long n = (bytes + 15) / 16;
    const int copies = (int)((256L << 20) / (n * 16)) + 2; /* > L2 in all */
    uint4 *w;
    int *flag;
    unsigned *out;
    CK(cudaMalloc(&w, (size_t)n * 16 * copies));
    CK(cudaMemset(w, 0x11, (size_t)n * 16 * copies));
    CK(cudaMalloc(&flag, sizeof(int) * (LAUNCHES + 1)));
    CK(cudaMemset(flag, 0, sizeof(int) * (LAUNCHES + 1)));
    CK(cudaMalloc(&out, sizeof(unsigned) * 4096));
    printf("probe_launch_floor on %s (%d SMs), us a launch in a graph of %d, median of 5\n",
           prop.name, prop.multiProcessorCount, LAUNCHES);
    printf("%-22s %18s %18s %18s\n", "kernel", "1 block an SM", "2 an SM", "3 an SM");
    const char *names[] = {"empty", "empty+pdl", "chain (+pdl)", "stream 6.9 MB, HBM",
                           "stream 6.9 MB, L2"};
    for (int k = EMPTY; k <= STREAM_L2; k++) {
        printf("%-22s", names[k]);
        for (int per = 1; per <= 3; per++) {
            const double us = time_kind((kind)k, per * prop.multiProcessorCount, flag, w, n,
                                        copies, out, st);
            if (k >= STREAM_HBM)
                printf(" %6.2f (%4.0f GB/s)", us, (double)n * 16 / (us * 1e3));
            else
                printf(" %18.2f", us);
        }
        printf("\n");
    }
    CK(cudaFree(w));
    CK(cudaFree(flag));
    CK(cudaFree(out));
    CK(cudaStreamDestroy(st));
    return 0;
}

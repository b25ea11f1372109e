/* gpu_peaks: the two peaks MBU and MFU are measured against (issue #8),
 * on one GPU, printed as one JSON object on stdout. scripts/gpu-peaks
 * compiles it, runs it once per GPU model and caches the result.
 *
 *   copy: cudaMemcpy device to device of 1 GiB, read + write bytes / time
 *         (the bandwidth a decode step's weight and KV reads can reach);
 *   gemm: cublasGemmEx fp16 in and out, fp32 accumulation (what our
 *         matmuls run), square M = N = K of 4096, 8192 and 16384.
 * Each is timed with CUDA events over RUNS calls after WARMUP calls; the
 * figures are the median and the best run. Inputs are random, not zeros:
 * tensor cores draw less power (and may clock higher) on zeros.
 *
 * usage: gpu_peaks [DEVICE] */
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

#define RUNS 20
#define WARMUP 3

#define cudaCheck(x) check_cuda((x), #x, __FILE__, __LINE__)
#define cublasCheck(x) check_cublas((x), #x, __FILE__, __LINE__)

static void check_cuda(cudaError_t e, const char *what, const char *file, int line)
{
    if (e != cudaSuccess) {
        fprintf(stderr, "gpu_peaks: %s:%d: %s: %s\n", file, line, what, cudaGetErrorString(e));
        exit(1);
    }
}

static void check_cublas(cublasStatus_t s, const char *what, const char *file, int line)
{
    if (s != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "gpu_peaks: %s:%d: %s: cuBLAS status %d\n", file, line, what, (int)s);
        exit(1);
    }
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* Sorts ms; returns the median, *best the shortest. */
static double median_ms(float *ms, int n, double *best)
{
    qsort(ms, (size_t)n, sizeof *ms, cmp_float);
    *best = ms[0];
    return n % 2 ? ms[n / 2] : 0.5 * ((double)ms[n / 2 - 1] + ms[n / 2]);
}

/* uniform values in [-1, 1) from a hash of the index: cheap, not zeros */
__global__ void fill_random(__half *p, size_t n, unsigned seed)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        unsigned x = (unsigned)i * 2654435761u ^ seed;
        x ^= x >> 16;
        x *= 0x7feb352du;
        x ^= x >> 15;
        p[i] = __float2half((float)(x & 0xffff) / 32768.0f - 1.0f);
    }
}

int main(int argc, char **argv)
{
    int dev = argc > 1 ? atoi(argv[1]) : 0;
    cudaCheck(cudaSetDevice(dev));
    cudaDeviceProp prop;
    cudaCheck(cudaGetDeviceProperties(&prop, dev));
    int runtime = 0, driver = 0;
    cudaCheck(cudaRuntimeGetVersion(&runtime));
    cudaCheck(cudaDriverGetVersion(&driver));
    cudaEvent_t t0, t1;
    cudaCheck(cudaEventCreate(&t0));
    cudaCheck(cudaEventCreate(&t1));
    float ms[RUNS];

    /* --- copy bandwidth ------------------------------------------------ */
    const size_t copy_bytes = (size_t)1 << 30;
    void *src = NULL, *dst = NULL;
    cudaCheck(cudaMalloc(&src, copy_bytes));
    cudaCheck(cudaMalloc(&dst, copy_bytes));
    fill_random<<<1024, 256>>>((__half *)src, copy_bytes / sizeof(__half), 1u);
    cudaCheck(cudaGetLastError());
    for (int i = 0; i < WARMUP + RUNS; i++) {
        cudaCheck(cudaEventRecord(t0));
        cudaCheck(cudaMemcpy(dst, src, copy_bytes, cudaMemcpyDeviceToDevice));
        cudaCheck(cudaEventRecord(t1));
        cudaCheck(cudaEventSynchronize(t1));
        if (i >= WARMUP)
            cudaCheck(cudaEventElapsedTime(&ms[i - WARMUP], t0, t1));
    }
    double copy_best_ms, copy_ms = median_ms(ms, RUNS, &copy_best_ms);
    /* read + write */
    double copy_bw = 2.0 * (double)copy_bytes / (copy_ms * 1e-3);
    double copy_bw_best = 2.0 * (double)copy_bytes / (copy_best_ms * 1e-3);
    cudaCheck(cudaFree(src));
    cudaCheck(cudaFree(dst));

    /* --- fp16 GEMM ----------------------------------------------------- */
    static const int sizes[] = {4096, 8192, 16384};
    const int n_sizes = (int)(sizeof sizes / sizeof sizes[0]);
    const size_t max_elems = (size_t)16384 * 16384;
    __half *a = NULL, *b = NULL, *c = NULL;
    cudaCheck(cudaMalloc(&a, max_elems * sizeof(__half)));
    cudaCheck(cudaMalloc(&b, max_elems * sizeof(__half)));
    cudaCheck(cudaMalloc(&c, max_elems * sizeof(__half)));
    fill_random<<<1024, 256>>>(a, max_elems, 2u);
    fill_random<<<1024, 256>>>(b, max_elems, 3u);
    cudaCheck(cudaGetLastError());
    cublasHandle_t h;
    cublasCheck(cublasCreate(&h));
    const float alpha = 1.0f / 128, beta = 0.0f; /* keeps fp16 outputs finite */
    double gemm_med[3], gemm_best[3], peak = 0;
    int peak_size = 0;
    for (int s = 0; s < n_sizes; s++) {
        int n = sizes[s];
        for (int i = 0; i < WARMUP + RUNS; i++) {
            cudaCheck(cudaEventRecord(t0));
            cublasCheck(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, a, CUDA_R_16F,
                                     n, b, CUDA_R_16F, n, &beta, c, CUDA_R_16F, n,
                                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
            cudaCheck(cudaEventRecord(t1));
            cudaCheck(cudaEventSynchronize(t1));
            if (i >= WARMUP)
                cudaCheck(cudaEventElapsedTime(&ms[i - WARMUP], t0, t1));
        }
        double best_ms, med_ms = median_ms(ms, RUNS, &best_ms);
        double flops = 2.0 * n * (double)n * n;
        gemm_med[s] = flops / (med_ms * 1e-3);
        gemm_best[s] = flops / (best_ms * 1e-3);
        /* the peak: the best size's median (a median, so one lucky run
         * does not set the bar) */
        if (gemm_med[s] > peak) {
            peak = gemm_med[s];
            peak_size = n;
        }
    }
    cublasCheck(cublasDestroy(h));
    cudaCheck(cudaFree(a));
    cudaCheck(cudaFree(b));
    cudaCheck(cudaFree(c));

    printf("{\"name\": \"%s\", \"device\": %d, \"compute_capability\": \"%d.%d\", "
           "\"memory_bytes\": %zu, \"cuda_runtime\": %d, \"cuda_driver\": %d,\n"
           " \"copy_bytes_per_s\": %.6g, \"gemm_fp16_flops_per_s\": %.6g,\n"
           " \"copy\": {\"bytes\": %zu, \"runs\": %d, \"median_s\": %.6g, "
           "\"median_bytes_per_s\": %.6g, \"best_bytes_per_s\": %.6g},\n"
           " \"gemm\": {\"runs\": %d, \"peak_size\": %d, \"sizes\": {",
           prop.name, dev, prop.major, prop.minor, prop.totalGlobalMem, runtime, driver, copy_bw,
           peak, copy_bytes, RUNS, copy_ms * 1e-3, copy_bw, copy_bw_best, RUNS, peak_size);
    for (int s = 0; s < n_sizes; s++)
        printf("%s\"%d\": {\"median_flops_per_s\": %.6g, \"best_flops_per_s\": %.6g}",
               s ? ", " : "", sizes[s], gemm_med[s], gemm_best[s]);
    printf("}}}\n");
    return 0;
}

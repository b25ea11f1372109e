/* The projections of steps too large for the quantized GEMV (more than 8
 * rows: the throughput workload's decode steps and prefill), timed on the
 * GPU (issue #21): a 7B layer's matrices at tp 1 (q/k/v and gate/up each
 * as one matrix, as the backend's joined allocations hold them; o; down),
 * 4-bit and 8-bit, group 128, through
 *   dequant  vb_quant_dequant_f16 alone, and the bytes it moves (packed
 *            weights, scales and zeros read, fp16 written) a second: the
 *            part of each call the fp16 path does not have;
 *   deq      vb_quant_dequant_f16 into a scratch, then cublasGemmEx (the
 *            backend's path for these steps);
 *   fp16     cublasGemmEx on fp16 weights of the same shapes (the baseline),
 * for T = 16, 64, 200 and 256 rows of x. Times are a layer's, in µs (the
 * median of 5 timings of ITERS passes, after a warm-up). A layer's packed
 * weights (~124 MB at 4 bits) and fp16 weights (466 MB) exceed L2 (50-60
 * MB on H100/H200), so each pass reads them from memory as a step does.
 *
 * usage: bench_quant_steps [ITERS]   (on the GPU machine; no GPU: exits 77) */
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_timing.h"
#include "cuda/cuda_check.h"
#include "kernels.h"

#define GROUP 128
#define N_MATS 4
#define MAX_T 256
#define WIDEST_IN 18944  /* down's input */
#define WIDEST_OUT 37888 /* gate/up's output */

static const struct {
    const char *name;
    int n_out, n_in;
} mats[N_MATS] = {
    {"qkv", 4608, 3584},
    {"o", 3584, 3584},
    {"gate_up", 37888, 3584},
    {"down", 3584, 18944},
};

static const int Ts[] = {16, 64, 200, 256};

typedef struct layer {
    vb_qmat q[N_MATS]; /* packed weights, scales, zeros */
    uint16_t *f16[N_MATS];
    uint16_t *x, *out, *scratch;
    double dequant_bytes; /* a layer's dequantization: read and written */
} layer;

static cudaStream_t stream;
static cublasHandle_t cublas;

static void *dev_fill(size_t bytes, int byte)
{
    void *p = NULL;
    CUDA_CHECK(cudaMalloc(&p, bytes));
    CUDA_CHECK(cudaMemset(p, byte, bytes));
    return p;
}

/* weights and scales 0x11 bytes (scales ~5.5e-4), zeros 0, x 0x3c00
 * halves (1.0): finite outputs; the speed does not depend on the values */
static void layer_alloc(layer *L, int bits)
{
    size_t max_elems = 0;
    L->dequant_bytes = 0;
    for (int m = 0; m < N_MATS; m++) {
        size_t elems = (size_t)mats[m].n_out * (size_t)mats[m].n_in;
        size_t groups = (size_t)mats[m].n_out * (size_t)(mats[m].n_in / GROUP);
        L->q[m] = (vb_qmat){dev_fill(elems * bits / 8, 0x11), dev_fill(groups * 2, 0x11),
                            dev_fill(groups * 2, 0), NULL, NULL, bits, mats[m].n_out,
                            mats[m].n_in, GROUP, mats[m].n_in / GROUP, NULL, 0};
        L->f16[m] = dev_fill(elems * 2, 0x11);
        L->dequant_bytes += (double)elems * bits / 8 + 4.0 * groups + 2.0 * elems;
        max_elems = elems > max_elems ? elems : max_elems;
    }
    const size_t x_elems = (size_t)MAX_T * WIDEST_IN;
    uint16_t *h = malloc(x_elems * 2);
    if (!h) {
        fprintf(stderr, "bench_quant_steps: out of host memory\n");
        exit(1);
    }
    for (size_t i = 0; i < x_elems; i++)
        h[i] = 0x3c00;
    L->x = dev_fill(x_elems * 2, 0);
    CUDA_CHECK(cudaMemcpy(L->x, h, x_elems * 2, cudaMemcpyHostToDevice));
    free(h);
    L->out = dev_fill((size_t)MAX_T * WIDEST_OUT * 2, 0);
    L->scratch = dev_fill(max_elems * 2, 0);
}

static void layer_free(layer *L)
{
    for (int m = 0; m < N_MATS; m++) {
        CUDA_CHECK(cudaFree((void *)L->q[m].q));
        CUDA_CHECK(cudaFree((void *)L->q[m].scales));
        CUDA_CHECK(cudaFree((void *)L->q[m].zeros));
        CUDA_CHECK(cudaFree(L->f16[m]));
    }
    CUDA_CHECK(cudaFree(L->x));
    CUDA_CHECK(cudaFree(L->out));
    CUDA_CHECK(cudaFree(L->scratch));
}

/* out[T, n] = x[T, k] w[n, k]^T, fp32 accumulation, as the backend's gemm() */
static void cublas_gemm(const layer *L, const uint16_t *w, int T, int n, int k)
{
    const float one = 1.0f, zero = 0.0f;
    CUBLAS_CHECK(cublasGemmEx(cublas, CUBLAS_OP_T, CUBLAS_OP_N, n, T, k, &one, w, CUDA_R_16F, k,
                              L->x, CUDA_R_16F, k, &zero, L->out, CUDA_R_16F, n,
                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

enum { PATH_DEQUANT, PATH_DEQ, PATH_F16, N_PATHS };

typedef struct pass_args {
    const layer *L;
    int T, path;
} pass_args;

static void pass(void *ctx, int i)
{
    (void)i;
    const pass_args *a = ctx;
    for (int m = 0; m < N_MATS; m++) {
        const vb_qmat *q = &a->L->q[m];
        if (a->path != PATH_F16)
            CUDA_CHECK(vb_quant_dequant_f16(a->L->scratch, q, stream));
        if (a->path == PATH_DEQ)
            cublas_gemm(a->L, a->L->scratch, a->T, q->n_out, q->n_in);
        else if (a->path == PATH_F16)
            cublas_gemm(a->L, a->L->f16[m], a->T, q->n_out, q->n_in);
    }
}

int main(int argc, char **argv)
{
    struct cudaDeviceProp prop;
    int iters = bench_start(argc, argv, 20, &prop);
    if (!iters)
        return 77;
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasCreate(&cublas));
    CUBLAS_CHECK(cublasSetStream(cublas, stream));
    printf("%s, a 7B layer (q/k/v, o, gate/up, down), group 128, us a layer\n", prop.name);
    for (int bits = 4; bits <= 8; bits += 4) {
        layer L;
        layer_alloc(&L, bits);
        pass_args d = {&L, 0, PATH_DEQUANT};
        const double dq = bench_time_us(pass, &d, stream, iters);
        printf("\n%d-bit: dequantize alone %.1f us, %.0f GB/s (%.0f MB moved)\n", bits, dq,
               L.dequant_bytes / dq * 1e-3, L.dequant_bytes * 1e-6);
        printf("%5s %10s %10s %10s\n", "T", "deq", "fp16", "deq/fp16");
        for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++) {
            pass_args a = {&L, Ts[ti], PATH_DEQ}, f = {&L, Ts[ti], PATH_F16};
            const double deq = bench_time_us(pass, &a, stream, iters);
            const double f16 = bench_time_us(pass, &f, stream, iters);
            printf("%5d %10.1f %10.1f %9.2fx\n", Ts[ti], deq, f16, deq / f16);
        }
        layer_free(&L);
    }
    CUBLAS_CHECK(cublasDestroy(cublas));
    CUDA_CHECK(cudaStreamDestroy(stream));
    return 0;
}

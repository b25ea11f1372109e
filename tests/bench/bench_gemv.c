/* The decode-step projections, timed on the GPU: the GEMV kernel
 * (kernels/gemv.cu; q/k/v in one launch, gate/up with SiLU fused) against
 * cuBLAS the way the backend calls it (one cublasGemmEx per matrix, then the bias or
 * SiLU-gate kernel), for 1, 2, 4 and 8 rows of x, on the per-rank shapes
 * of Qwen2.5-7B at tp 1 and Qwen2.5-14B at tp 2. Prints each case's time
 * and weight bandwidth, then per step size the layer total (q/k/v, o,
 * gate/up, down) of each path: the figures behind the backend's defaults
 * (VB_GEMV_MAX_ROWS) in tests/bench/RESULTS.md.
 *
 * Each timed launch reads a different copy of the weights, so L2 (50-60 MB
 * on H100/H200) never holds them: a decode step reads each matrix once.
 *
 * usage: bench_gemv [ITERS]   (on the GPU machine; no GPU: exits 77) */
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_timing.h"
#include "cuda/cuda_check.h"
#include "kernels.h"

typedef struct shape {
    const char *name;
    int k;            /* n_in */
    int n[3], n_segs; /* rows of each matrix over the same x */
    int gate_up;      /* two matrices of n[0] rows, silu(gate) * up out */
    int f32_out;      /* lm_head */
    int bias;         /* q/k/v biases (Qwen2) */
} shape;

static const shape shapes[] = {
    {"7b qkv", 3584, {3584, 512, 512}, 3, 0, 0, 1},
    {"7b o", 3584, {3584}, 1, 0, 0, 0},
    {"7b gate_up", 3584, {18944}, 1, 1, 0, 0},
    {"7b down", 18944, {3584}, 1, 0, 0, 0},
    {"7b lm_head", 3584, {152064}, 1, 0, 1, 0},
    {"14b/2 qkv", 5120, {2560, 512, 512}, 3, 0, 0, 1},
    {"14b/2 o", 2560, {5120}, 1, 0, 0, 0},
    {"14b/2 gate_up", 5120, {6912}, 1, 1, 0, 0},
    {"14b/2 down", 6912, {5120}, 1, 0, 0, 0},
};
#define N_SHAPES (int)(sizeof shapes / sizeof shapes[0])

static size_t weight_elems(const shape *s)
{
    size_t e = 0;
    for (int i = 0; i < s->n_segs; i++)
        e += (size_t)s->n[i] * (size_t)s->k;
    return s->gate_up ? 2 * e : e;
}

/* copies of the weights: each launch reads the next, >= 256 MB in all */
typedef struct weights {
    uint16_t *base;
    size_t elems; /* per copy */
    int copies;
} weights;

static uint16_t *mat(const weights *w, int copy, const shape *s, int m)
{
    size_t off = (size_t)copy * w->elems;
    for (int i = 0; i < m; i++)
        off += (size_t)s->n[s->gate_up ? 0 : i] * (size_t)s->k;
    return w->base + off;
}

static cublasHandle_t cublas;
static cudaStream_t stream;
static uint16_t *x, *bias, *out_h, *out_h2;
static float *out_f;

/* one pass of one path over copy c: the GEMV, or cuBLAS */
static void run_once(const shape *s, const weights *w, int c, int T, int gemv)
{
    if (gemv) {
        if (s->gate_up) {
            CUDA_CHECK(vb_gemv_silu_gate_f16(out_h, x, mat(w, c, s, 0), mat(w, c, s, 1), T, s->k,
                                             s->n[0], stream));
            return;
        }
        vb_gemv_seg segs[3];
        size_t off = 0;
        for (int i = 0; i < s->n_segs; i++) {
            void *o = s->f32_out ? (void *)(out_f + off) : (void *)(out_h + off);
            segs[i] = (vb_gemv_seg){mat(w, c, s, i), s->bias ? bias : NULL, o, s->n[i]};
            off += (size_t)T * s->n[i];
        }
        CUDA_CHECK(vb_gemv_multi_f16(segs, s->n_segs, s->f32_out, x, T, s->k, stream));
        return;
    }
    const float one = 1.0f, zero = 0.0f;
    int n_mats = s->gate_up ? 2 : s->n_segs;
    size_t off = 0;
    for (int i = 0; i < n_mats; i++) {
        int n = s->n[s->gate_up ? 0 : i];
        void *o = s->f32_out ? (void *)(out_f + off)
                             : (void *)((s->gate_up && i == 1 ? out_h2 : out_h) + off);
        CUBLAS_CHECK(cublasGemmEx(cublas, CUBLAS_OP_T, CUBLAS_OP_N, n, T, s->k, &one,
                                  mat(w, c, s, i), CUDA_R_16F, s->k, x, CUDA_R_16F, s->k, &zero,
                                  o, s->f32_out ? CUDA_R_32F : CUDA_R_16F, n, CUBLAS_COMPUTE_32F,
                                  CUBLAS_GEMM_DEFAULT));
        if (s->bias)
            CUDA_CHECK(vb_add_bias_f16((uint16_t *)o, bias, T, n, stream));
        if (!s->gate_up)
            off += (size_t)T * n;
    }
    if (s->gate_up)
        CUDA_CHECK(vb_silu_gate_f16(out_h, out_h, out_h2, (size_t)T * s->n[0], stream));
}

/* one pass of a path over the pass's copy of the weights */
typedef struct path_args {
    const shape *s;
    const weights *w;
    int T, gemv;
} path_args;

static void path_pass(void *ctx, int i)
{
    const path_args *p = ctx;
    run_once(p->s, p->w, i % p->w->copies, p->T, p->gemv);
}

int main(int argc, char **argv)
{
    struct cudaDeviceProp prop;
    int iters = bench_start(argc, argv, 20, &prop);
    if (iters == 0)
        return 77;
    /* with PDL, each GEMV's first weight loads overlap the previous call */
    const vb_tuning knobs = bench_pdl_from_env("bench_gemv");
    printf("bench_gemv on %s, %d iterations per timing, median of 5, PDL %s, weights %s L1\n",
           prop.name, iters, vb_pdl_enabled() ? "on" : "off",
           knobs.gemv_l1_alloc ? "through" : "past");
    CUDA_CHECK(cudaStreamCreate(&stream));
    CUBLAS_CHECK(cublasCreate(&cublas));
    CUBLAS_CHECK(cublasSetStream(cublas, stream));
    const size_t max_out = (size_t)8 * 152064;
    CUDA_CHECK(cudaMalloc((void **)&x, (size_t)8 * 18944 * 2));
    CUDA_CHECK(cudaMalloc((void **)&bias, (size_t)152064 * 2));
    CUDA_CHECK(cudaMalloc((void **)&out_h, max_out * 2));
    CUDA_CHECK(cudaMalloc((void **)&out_h2, max_out * 2));
    CUDA_CHECK(cudaMalloc((void **)&out_f, max_out * 4));
    /* small finite halves (0x1111 ~ 5.5e-4): the speed does not depend on them */
    CUDA_CHECK(cudaMemset(x, 0x11, (size_t)8 * 18944 * 2));
    CUDA_CHECK(cudaMemset(bias, 0x11, (size_t)152064 * 2));

    const int Ts[] = {1, 2, 4, 8};
    double layer[2][4][2] = {{{0}}}; /* [7b, 14b/2][T][cuBLAS, GEMV] */
    printf("%-14s %2s  %10s %8s  %10s %8s\n", "shape", "T", "cuBLAS us", "GB/s", "GEMV us",
           "GB/s");
    for (int si = 0; si < N_SHAPES; si++) {
        const shape *s = &shapes[si];
        weights w = {0};
        w.elems = weight_elems(s);
        size_t bytes = w.elems * 2;
        w.copies = (int)(((size_t)256 << 20) / bytes) + 2;
        CUDA_CHECK(cudaMalloc((void **)&w.base, bytes * (size_t)w.copies));
        CUDA_CHECK(cudaMemset(w.base, 0x11, bytes * (size_t)w.copies));
        for (int ti = 0; ti < 4; ti++) {
            int T = Ts[ti];
            double us[2];
            for (int p = 0; p < 2; p++)
                us[p] = bench_time_us(path_pass, &(path_args){s, &w, T, p}, stream, iters);
            printf("%-14s %2d", s->name, T);
            for (int p = 0; p < 2; p++)
                printf("  %10.1f %8.0f", us[p], (double)bytes / (us[p] * 1e3));
            printf("\n");
            if (!s->f32_out)
                for (int p = 0; p < 2; p++)
                    layer[s->name[0] == '1'][ti][p] += us[p];
        }
        CUDA_CHECK(cudaFree(w.base));
    }
    CUDA_CHECK(cudaGetLastError());
    printf("\nper layer (q/k/v, o, gate/up, down), microseconds:\n");
    for (int m = 0; m < 2; m++)
        for (int ti = 0; ti < 4; ti++)
            printf("layer %-6s T=%d  cuBLAS %8.1f  GEMV %8.1f  GEMV %.2fx cuBLAS's speed\n",
                   m ? "14b/2" : "7b", Ts[ti], layer[m][ti][0], layer[m][ti][1],
                   layer[m][ti][0] / layer[m][ti][1]);
    CUBLAS_CHECK(cublasDestroy(cublas));
    return 0;
}

/* The batch-invariant projection (kernels/gemm_invariant.cu, issue #22)
 * against cuBLAS the way the backend calls it (src/cuda/backend_cuda.c's
 * gemm(): one cublasGemmEx, fp16 in and out, fp32 compute, default algo),
 * on the per-rank matrices of Qwen2.5-7B at tp 1 (q and o 3584 x 3584, k
 * and v 512 x 3584, gate and up 18944 x 3584, down 3584 x 18944), for
 * steps of 1, 8, 64, 256, 2048 and 8192 rows, no bias. Prints per case
 * microseconds, TFLOP/s (2 T n_in n_out) and GB/s of the bytes a pass must
 * move (weights, x and out once) as a fraction of the copy bandwidth
 * (cudaMemcpy device to device of 1 GiB, read + write, median of 5), for
 * cuBLAS and for the entry point's own choice of mode (printed), the
 * speed relative to cuBLAS, then the mode's main path (gemm_lt_invariant:
 * kernels/gemm_chain.cu for steps of up to 8 rows, the checked split-K-free
 * cuBLASLt algorithm of the step's bucket above), then each mode of the
 * fixed-order kernel forced (split up to 256 rows, in-block with 128 and
 * with 64 tokens a block): the figures behind the mode switch. Then a
 * whole layer (q, k, v, o, gate, up, down) per step size, each path: the
 * mode's cost in a forward pass, roughly. Last, the mode's decode-step
 * launches as the backend makes them (q+k+v with biases in one chain
 * launch, gate+up+silu in one, o, down) at T = 1 and 8, and each matrix
 * through each chain tile forced (kernels/gemm_chain.cu), and the
 * logits (152,064 x 3,584, fp32 out) through each tile.
 *
 * Each timed launch reads a different copy of the weights (>= 256 MB in
 * all), so L2 never holds them: a decode step reads each matrix once.
 * Times are medians of 5 timings after warm-up (bench_timing.h). PDL as
 * the backend sets it (on where the GPU has it, unless VB_NO_PDL=1).
 *
 * usage: bench_gemm_invariant [ITERS]   (on the GPU machine; no GPU: exits 77) */
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_timing.h"
#include "cuda/cuda_check.h"
#include "cuda/gemm_lt_invariant.h"
#include "kernels.h"

typedef struct shape {
    const char *name;
    int n_out, n_in;
    int per_layer; /* matrices of this shape in a layer */
} shape;

static const shape shapes[] = {
    {"7b q/o", 3584, 3584, 2},
    {"7b k/v", 512, 3584, 2},
    {"7b gate/up", 18944, 3584, 2},
    {"7b down", 3584, 18944, 1},
};
#define N_SHAPES (int)(sizeof shapes / sizeof shapes[0])

static const int Ts[] = {1, 8, 64, 256, 2048, 8192};
#define N_TS (int)(sizeof Ts / sizeof Ts[0])
#define T_MAX 8192
#define SPLIT_T_MAX 256 /* forced split timed up to here (its workspace grows with T) */

/* paths timed per case: cuBLAS, the fixed-order kernel's choice, the
 * cuBLASLt/chain path, each mode of the fixed-order kernel forced */
enum { P_CUBLAS, P_AUTO, P_LT, P_SPLIT, P_IB128, P_IB64, N_PATHS };
static const int path_mode[N_PATHS] = {0, VB_GEMM_INV_AUTO, 0, VB_GEMM_INV_SPLIT,
                                       VB_GEMM_INV_INBLOCK_128, VB_GEMM_INV_INBLOCK_64};
#define LT_WORKSPACE_BYTES ((size_t)32 << 20) /* the backend's cuBLAS workspace */

static cudaStream_t stream;
static cublasHandle_t cublas;
static void *x, *out;
static float *ws;
static size_t ws_bytes;
static gemm_lt_inv *lt;

typedef struct pass_args {
    const shape *s;
    uint8_t *w;       /* copies of the weights, mat_bytes apart */
    size_t mat_bytes;
    int copies, T, path;
} pass_args;

static void pass(void *ctx, int i)
{
    const pass_args *a = ctx;
    const shape *s = a->s;
    const void *w = a->w + a->mat_bytes * (size_t)(i % a->copies);
    if (a->path == P_CUBLAS) {
        /* backend_cuda.c's gemm(): out^T[n_out, T] = w^T x^T, column-major */
        const float one = 1.0f, zero = 0.0f;
        CUBLAS_CHECK(cublasGemmEx(cublas, CUBLAS_OP_T, CUBLAS_OP_N, s->n_out, a->T, s->n_in, &one,
                                  w, CUDA_R_16F, s->n_in, x, CUDA_R_16F, s->n_in, &zero, out,
                                  CUDA_R_16F, s->n_out, CUBLAS_COMPUTE_32F,
                                  CUBLAS_GEMM_DEFAULT));
        return;
    }
    if (a->path == P_LT) {
        (void)gemm_lt_inv_run(lt, out, false, x, w, a->T, s->n_in, s->n_out); /* lt_ok */
        return;
    }
    CUDA_CHECK(vb_gemm_invariant_f16(out, x, w, NULL, a->T, s->n_in, s->n_out, ws, ws_bytes,
                                     stream));
}

/* The mode's decode-step launches (T <= 8), as the backend makes them:
 * q+k+v with biases in one chain launch, gate+up+silu in one, o and down
 * alone; and each shape through each chain tile forced. Every pass reads
 * another copy of the layer's weights. */
enum { D_Q, D_K, D_V, D_O, D_GATE, D_UP, D_DOWN, N_DMATS };
static const int dmat_shape[N_DMATS] = {0, 1, 1, 0, 2, 2, 3}; /* index into shapes[] */

typedef struct decode_args {
    uint8_t *w[N_DMATS]; /* copies of each matrix, stride[m] apart */
    size_t stride[N_DMATS];
    void *bias[3], *o[N_DMATS];
    int copies, T, what, tile; /* what: a D_* matrix alone (tile forced), or -1 qkv, -2 gate/up */
} decode_args;

static const void *dmat(const decode_args *a, int m, int i)
{
    return a->w[m] + a->stride[m] * (size_t)(i % a->copies);
}

static void decode_pass(void *ctx, int i)
{
    const decode_args *a = ctx;
    if (a->what == -1) {
        const void *w[3] = {dmat(a, D_Q, i), dmat(a, D_K, i), dmat(a, D_V, i)};
        const int n_out[3] = {shapes[0].n_out, shapes[1].n_out, shapes[1].n_out};
        void *const o[3] = {a->o[D_Q], a->o[D_K], a->o[D_V]};
        (void)gemm_lt_inv_run_qkv(lt, o, x, w, (const void *const *)a->bias, a->T,
                                  shapes[0].n_in, n_out, NULL); /* checked before timing */
    } else if (a->what == -2) {
        (void)gemm_lt_inv_run_gate_up(lt, a->o[D_GATE], x, dmat(a, D_GATE, i), dmat(a, D_UP, i),
                                      a->T, shapes[2].n_in, shapes[2].n_out);
    } else {
        const shape *s = &shapes[dmat_shape[a->what]];
        const vb_chain_seg seg = {dmat(a, a->what, i), NULL, a->o[a->what], s->n_out};
        CUDA_CHECK(vb_gemm_chain_multi(&seg, 1, 0, x, a->T, s->n_in, a->tile, stream));
    }
}

/* The logits of a decode step (Qwen2.5-7B's 152,064 x 3,584, fp32 out, T
 * = 1) through the chain: the tile the launcher picks and each forced. */
typedef struct logits_args {
    uint8_t *w;
    size_t stride;
    void *out;
    int copies, tile;
} logits_args;

#define LOGITS_VOCAB 152064

static void logits_pass(void *ctx, int i)
{
    const logits_args *a = ctx;
    const vb_chain_seg seg = {a->w + a->stride * (size_t)(i % a->copies), NULL, a->out,
                              LOGITS_VOCAB};
    CUDA_CHECK(vb_gemm_chain_multi(&seg, 1, 1, x, 1, shapes[0].n_in, a->tile, stream));
}

static void bench_logits_tiles(int iters)
{
    logits_args a = {0};
    a.stride = (size_t)LOGITS_VOCAB * shapes[0].n_in * 2;
    a.copies = 2; /* 2.2 GB: never in L2 */
    if (cudaMalloc((void **)&a.w, a.stride * (size_t)a.copies) != cudaSuccess) {
        (void)cudaGetLastError();
        printf("(no logits timing: not enough device memory)\n");
        return;
    }
    CUDA_CHECK(cudaMemset(a.w, 0x11, a.stride * (size_t)a.copies));
    CUDA_CHECK(cudaMalloc(&a.out, (size_t)LOGITS_VOCAB * 4));
    const int tiles[] = {VB_CHAIN_TILE_AUTO, VB_CHAIN_TILE_NARROW, VB_CHAIN_TILE_WIDE,
                         VB_CHAIN_TILE_DEEP};
    const char *names[] = {"auto", "narrow", "wide", "deep"};
    printf("logits %d x %d, fp32 out, T = 1, us:", LOGITS_VOCAB, shapes[0].n_in);
    for (int t = 0; t < 4; t++) {
        a.tile = tiles[t];
        printf(" %s %.1f", names[t], bench_time_us(logits_pass, &a, stream, (iters + 3) / 4));
    }
    printf("\n");
    CUDA_CHECK(cudaFree(a.w));
    CUDA_CHECK(cudaFree(a.out));
}

static void bench_decode_launches(int iters)
{
    decode_args a = {0};
    size_t set = 0;
    for (int m = 0; m < N_DMATS; m++) {
        const shape *s = &shapes[dmat_shape[m]];
        a.stride[m] = ((size_t)s->n_out * s->n_in * 2 + 255) & ~(size_t)255;
        set += a.stride[m];
    }
    a.copies = (int)(((size_t)256 << 20) / set) + 2;
    for (int m = 0; m < N_DMATS; m++) {
        const shape *s = &shapes[dmat_shape[m]];
        CUDA_CHECK(cudaMalloc((void **)&a.w[m], a.stride[m] * (size_t)a.copies));
        CUDA_CHECK(cudaMemset(a.w[m], 0x11, a.stride[m] * (size_t)a.copies));
        CUDA_CHECK(cudaMalloc(&a.o[m], (size_t)VB_GEMM_CHAIN_MAX_T * s->n_out * 2));
        if (m <= D_V) {
            CUDA_CHECK(cudaMalloc(&a.bias[m], (size_t)s->n_out * 2));
            CUDA_CHECK(cudaMemset(a.bias[m], 0x11, (size_t)s->n_out * 2));
        }
        if (!gemm_lt_inv_prepare(lt, a.w[m], s->n_in, s->n_out, false)) {
            printf("\n(no decode-launch table: gemm_lt_invariant refused %s)\n", s->name);
            goto done;
        }
    }
    printf("\nthe mode's decode launches (7B, T <= 8), us: q+k+v with biases, gate+up+silu, "
           "o and down alone;\nthen each matrix through each chain tile forced\n");
    printf("%3s %8s %8s %8s %8s %8s | %8s %8s %8s %8s | %8s %8s %8s %8s | %8s %8s %8s %8s\n",
           "T", "q+k+v", "gate+up", "o", "down", "layer", "q nar", "k nar", "gate nar",
           "down nar", "q wide", "k wide", "gate wid", "down wid", "q deep", "k deep", "gate dee",
           "down dee");
    const int Td[] = {1, 8};
    for (size_t ti = 0; ti < sizeof Td / sizeof Td[0]; ti++) {
        a.T = Td[ti];
        const void *w3[3] = {a.w[D_Q], a.w[D_K], a.w[D_V]};
        const int n3[3] = {shapes[0].n_out, shapes[1].n_out, shapes[1].n_out};
        void *const o3[3] = {a.o[D_Q], a.o[D_K], a.o[D_V]};
        if (!gemm_lt_inv_run_qkv(lt, o3, x, w3, (const void *const *)a.bias, a.T, shapes[0].n_in,
                                 n3, NULL) ||
            !gemm_lt_inv_run_gate_up(lt, a.o[D_GATE], x, a.w[D_GATE], a.w[D_UP], a.T,
                                     shapes[2].n_in, shapes[2].n_out)) {
            printf("(the fused launches were not taken at T = %d)\n", a.T);
            continue;
        }
        a.what = -1;
        const double qkv = bench_time_us(decode_pass, &a, stream, iters);
        a.what = -2;
        const double gu = bench_time_us(decode_pass, &a, stream, iters);
        a.what = D_O;
        a.tile = VB_CHAIN_TILE_AUTO;
        const double o = bench_time_us(decode_pass, &a, stream, iters);
        a.what = D_DOWN;
        const double down = bench_time_us(decode_pass, &a, stream, iters);
        printf("%3d %8.1f %8.1f %8.1f %8.1f %8.1f |", a.T, qkv, gu, o, down, qkv + gu + o + down);
        const int tiles[] = {VB_CHAIN_TILE_NARROW, VB_CHAIN_TILE_WIDE, VB_CHAIN_TILE_DEEP};
        const int mats[] = {D_Q, D_K, D_GATE, D_DOWN};
        for (int t = 0; t < 3; t++) {
            for (int k = 0; k < 4; k++) {
                a.what = mats[k];
                a.tile = tiles[t];
                printf(" %8.1f", bench_time_us(decode_pass, &a, stream, iters));
            }
            printf(t < 2 ? " |" : "\n");
        }
    }
    bench_logits_tiles(iters);
done:
    for (int m = 0; m < N_DMATS; m++) {
        CUDA_CHECK(cudaFree(a.w[m]));
        CUDA_CHECK(cudaFree(a.o[m]));
        if (m <= D_V)
            CUDA_CHECK(cudaFree(a.bias[m]));
    }
}

int main(int argc, char **argv)
{
    struct cudaDeviceProp prop;
    int iters = bench_start(argc, argv, 20, &prop);
    if (iters == 0)
        return 77;
    bench_pdl_from_env("bench_gemm_invariant");
    CUDA_CHECK(cudaStreamCreate(&stream));
    CUBLAS_CHECK(cublasCreate(&cublas));
    CUBLAS_CHECK(cublasSetStream(cublas, stream));
    const double copy_bw = bench_copy_bandwidth(stream);
    printf("bench_gemm_invariant on %s (sm_%d%d, %d SMs), %d iterations per timing, median of "
           "5, PDL %s\ncopy bandwidth (read + write): %.0f GB/s\n",
           prop.name, prop.major, prop.minor, prop.multiProcessorCount, iters,
           vb_pdl_enabled() ? "on" : "off", copy_bw / 1e9);

    int max_in = 0, max_out = 0;
    ws_bytes = 0;
    for (int si = 0; si < N_SHAPES; si++) {
        const shape *s = &shapes[si];
        size_t b = vb_gemm_invariant_workspace_bytes(SPLIT_T_MAX, s->n_in, s->n_out);
        ws_bytes = b > ws_bytes ? b : ws_bytes;
        max_in = s->n_in > max_in ? s->n_in : max_in;
        max_out = s->n_out > max_out ? s->n_out : max_out;
    }
    CUDA_CHECK(cudaMalloc(&x, (size_t)T_MAX * max_in * 2));
    CUDA_CHECK(cudaMalloc(&out, (size_t)T_MAX * max_out * 2));
    CUDA_CHECK(cudaMalloc((void **)&ws, ws_bytes));
    CUDA_CHECK(cudaMemset(ws, 0, ws_bytes)); /* once: the split mode's counters */
    CUDA_CHECK(cudaMemset(x, 0x11, (size_t)T_MAX * max_in * 2)); /* ~5.5e-4 halves: finite */
    void *lt_ws;
    CUDA_CHECK(cudaMalloc(&lt_ws, LT_WORKSPACE_BYTES));
    lt = gemm_lt_inv_create(stream, lt_ws, LT_WORKSPACE_BYTES);

    /* the entry point sizes its choice by the workspace it is given: the
     * backend's would hold split mode up to VB_GEMM_INV_SPLIT_MAX_T rows,
     * and ws_bytes holds more, so the choice is the same */
    printf("\nTFLOP/s: 2 T n_in n_out / time; GB/s: weights + x + out once / time, %%copy of "
           "the copy bandwidth;\nx cuBLAS: cuBLAS time / this time. Forced modes: us (split "
           "only up to T = %d).\n", SPLIT_T_MAX);
    printf("%-10s %5s %-6s | %9s %7s %6s %6s | %9s %7s %6s %6s %8s | %9s %7s %6s %6s %8s | %9s "
           "%9s %9s\n", "shape", "T", "mode", "cuBLAS us", "TFLOP/s", "GB/s", "%copy", "inv us",
           "TFLOP/s", "GB/s", "%copy", "x cuBLAS", "lt us", "TFLOP/s", "GB/s", "%copy",
           "x cuBLAS", "split us", "ib128 us", "ib64 us");
    double us[N_SHAPES][N_TS][N_PATHS];
    bool lt_ok[N_SHAPES]; /* gemm_lt_invariant accepted the shape */
    for (int si = 0; si < N_SHAPES; si++) {
        const shape *s = &shapes[si];
        pass_args a = {s, NULL, 0, 0, 0, 0};
        a.mat_bytes = ((size_t)s->n_out * s->n_in * 2 + 255) & ~(size_t)255;
        a.copies = (int)(((size_t)256 << 20) / a.mat_bytes) + 2;
        CUDA_CHECK(cudaMalloc((void **)&a.w, a.mat_bytes * (size_t)a.copies));
        CUDA_CHECK(cudaMemset(a.w, 0x11, a.mat_bytes * (size_t)a.copies));
        /* the plan is the shape's: made (and checked) once, on the first copy */
        lt_ok[si] = gemm_lt_inv_prepare(lt, a.w, s->n_in, s->n_out, false);
        if (!lt_ok[si])
            fprintf(stderr, "bench_gemm_invariant: %s: gemm_lt_invariant refused it\n", s->name);
        for (int ti = 0; ti < N_TS; ti++) {
            const int T = Ts[ti];
            a.T = T;
            for (int p = 0; p < N_PATHS; p++) {
                us[si][ti][p] = 0;
                if (p == P_SPLIT && T > SPLIT_T_MAX)
                    continue;
                if (p == P_LT && !lt_ok[si])
                    continue;
                vb_gemm_invariant_force(path_mode[p]);
                a.path = p;
                /* fewer passes where one takes milliseconds */
                const double flop = 2.0 * T * s->n_in * s->n_out;
                const int n = flop > 1e11 ? (iters + 3) / 4 : iters;
                us[si][ti][p] = bench_time_us(pass, &a, stream, n);
            }
            vb_gemm_invariant_force(VB_GEMM_INV_AUTO);
            CUDA_CHECK(cudaGetLastError());
            const double flop = 2.0 * T * s->n_in * s->n_out;
            const double bytes = 2.0 * ((double)s->n_out * s->n_in + (double)T * s->n_in +
                                        (double)T * s->n_out);
            const int mode = vb_gemm_invariant_mode(T, s->n_in, s->n_out, ws_bytes);
            printf("%-10s %5d %-6s", s->name, T,
                   mode == VB_GEMM_INV_SPLIT        ? "split"
                   : mode == VB_GEMM_INV_INBLOCK_64 ? "ib64"
                                                    : "ib128");
            for (int p = P_CUBLAS; p <= P_LT; p++) {
                const double t = us[si][ti][p];
                if (t <= 0) {
                    printf(" | %9s %7s %6s %6s %8s", "-", "-", "-", "-", "-");
                    continue;
                }
                printf(" | %9.1f %7.1f %6.0f %5.1f%%", t, flop / (t * 1e6), bytes / (t * 1e3),
                       100.0 * bytes / (t * 1e-6) / copy_bw);
                if (p != P_CUBLAS)
                    printf(" %7.2fx", us[si][ti][P_CUBLAS] / t);
            }
            printf(" |");
            for (int p = P_SPLIT; p < N_PATHS; p++)
                if (us[si][ti][p] > 0)
                    printf(" %9.1f", us[si][ti][p]);
                else
                    printf(" %9s", "-");
            printf("\n");
        }
        CUDA_CHECK(cudaFree(a.w));
    }

    printf("\na 7B layer (q, k, v, o, gate, up, down; separate launches, no bias), us:\n"
           "%5s %10s %10s %8s %10s %8s\n", "T", "cuBLAS", "fixed-ord", "cost", "lt/chain", "cost");
    for (int ti = 0; ti < N_TS; ti++) {
        double c = 0, v = 0, l = 0;
        bool all_lt = true;
        for (int si = 0; si < N_SHAPES; si++) {
            c += shapes[si].per_layer * us[si][ti][P_CUBLAS];
            v += shapes[si].per_layer * us[si][ti][P_AUTO];
            l += shapes[si].per_layer * us[si][ti][P_LT];
            all_lt &= lt_ok[si];
        }
        printf("%5d %10.1f %10.1f %+7.1f%%", Ts[ti], c, v, 100.0 * (v / c - 1.0));
        if (all_lt) /* a refused shape would run on the fixed-order kernel: no sum to give */
            printf(" %10.1f %+7.1f%%\n", l, 100.0 * (l / c - 1.0));
        else
            printf(" %10s %8s\n", "-", "-");
    }
    bench_decode_launches(iters);
    gemm_lt_inv_destroy(lt);
    CUDA_CHECK(cudaFree(lt_ws));
    CUDA_CHECK(cudaFree(ws));
    CUDA_CHECK(cudaFree(out));
    CUDA_CHECK(cudaFree(x));
    CUBLAS_CHECK(cublasDestroy(cublas));
    CUDA_CHECK(cudaStreamDestroy(stream));
    return 0;
}

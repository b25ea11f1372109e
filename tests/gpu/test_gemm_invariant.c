/* The batch-invariant projection (kernels/gemm_invariant.cu, issue #22)
 * called directly, on random fp16 x, w and bias, for the 7B-like shapes
 * (3584 x 3584, 512 x 3584, 18944 x 3584, 3584 x 18944) and small odd
 * ones (n_out not a multiple of 128 or 8, n_in not a multiple of the
 * 512-column slice or of the in-block kernel's 32-column k tile, one
 * k step), with and without a bias.
 *
 * 1. Accuracy: each row computed alone (T = 1, the entry point's choice)
 *    against a host reference in double over the same fp16 values: all
 *    rows for the small shapes, 14 spread over the batch for the large
 *    ones. Tolerance max |gpu - ref| / max |ref| <= 5e-3 (fp32
 *    accumulation, fp16 output), as test_cuda_backend_ops' GEMMs.
 * 2. Invariance, memcmp against those rows alone: the first T rows of the
 *    batch for T in 1, 2, 7, 8, 9, 33, 64, 65, 200, 256, 1000 and 2048, in
 *    every mode (the entry point's choice, split forced, in-block forced
 *    with 128 and with 64 tokens a block); the rows shuffled (row i of
 *    the batch is row perm[i]); the batch starting at row 5 of x. A
 *    failure names the shape, T, mode and first differing row and column.
 * 3. fp32 out (vb_gemm_invariant_f32out, the logits): rows alone round
 *    (host, ties to even) to the fp16 entry point's bits, and batches of
 *    1, 9, 65 and the largest step, in every mode, match the rows alone.
 * 4. Refusals: n_in not a multiple of 16, misaligned x, forced split
 *    without workspace; T = 0 launches nothing.
 * Outputs are poisoned with NaN before each run, so an element the kernel
 * does not write fails too. Skips (77) without a GPU.
 *
 * usage: test_gemm_invariant [--quick]
 *   --quick: the small shapes and steps up to 65 rows only (a few hundred
 *   launches, for compute-sanitizer's memcheck and racecheck); the full
 *   run makes ~2000 launches a shape. */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_check.h"
#include "harness.h"
#include "kernels.h"
#include "util/half.h"

#define TOL 5e-3
#define OFFSET 5                /* the offset batch starts at this row of x */
#define FULL_CHECK_MACS 4e8     /* host reference over every row up to this */

static int t_max = 2048; /* the largest step; 65 with --quick */
static int n_rows_x;     /* rows of x and of the rows-alone results: t_max + OFFSET */

static const int Ts[] = {1, 2, 7, 8, 9, 33, 64, 65, 200, 256, 1000, 2048};
#define N_TS (int)(sizeof Ts / sizeof Ts[0])

static const struct {
    int mode;
    const char *name;
} modes[] = {
    {VB_GEMM_INV_AUTO, "auto"},
    {VB_GEMM_INV_SPLIT, "split"},
    {VB_GEMM_INV_INBLOCK_128, "in-block 128"},
    {VB_GEMM_INV_INBLOCK_64, "in-block 64"},
};
#define N_MODES (int)(sizeof modes / sizeof modes[0])

static uint64_t rng = 2222;
static uint16_t rand_half(void) /* uniform in [-1, 1), rounded to fp16 */
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return vb_float_to_half((float)((double)(rng >> 11) / 4503599627370496.0 - 1.0));
}
static int irand(int n) /* 0 .. n-1 */
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (int)((rng >> 33) % (uint64_t)n);
}

static void *dev_copy(const void *h, size_t bytes)
{
    void *d = NULL;
    CUDA_CHECK(cudaMalloc(&d, bytes));
    CUDA_CHECK(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    return d;
}

typedef struct gcase {
    int n_out, n_in, bias;
} gcase;

/* One shape's inputs on both sides and its rows computed alone. */
typedef struct shape_run {
    const gcase *k;
    uint16_t *x, *w, *bias;  /* host, fp16 bits */
    uint16_t *alone;         /* host [n_rows_x][n_out]: each row at T = 1 */
    void *d_x, *d_w, *d_bias, *d_out;
    float *d_ws;
    size_t ws_bytes;
} shape_run;

/* s->d_out[T, n_out] for the T rows at d_x, in mode; poisoned with NaN first. */
static cudaError_t run(const shape_run *s, const void *d_x, int T, int mode)
{
    const gcase *k = s->k;
    CUDA_CHECK(cudaMemset(s->d_out, 0xff, (size_t)T * k->n_out * 2));
    vb_gemm_invariant_force(mode);
    cudaError_t e = vb_gemm_invariant_f16(s->d_out, d_x, s->d_w, k->bias ? s->d_bias : NULL, T,
                                          k->n_in, k->n_out, s->d_ws, s->ws_bytes, 0);
    vb_gemm_invariant_force(VB_GEMM_INV_AUTO);
    if (e == cudaSuccess)
        e = cudaDeviceSynchronize();
    return e;
}

/* The device output's T rows against the rows alone (row i against alone
 * row src[i], or first + i when src is NULL); prints the first mismatch. */
static bool same_bits(const shape_run *s, const uint16_t *got, int T, const int *src, int first,
                      const char *what, const char *mode)
{
    const int n = s->k->n_out;
    for (int i = 0; i < T; i++) {
        const int r = src ? src[i] : first + i;
        const uint16_t *want = s->alone + (size_t)r * n, *g = got + (size_t)i * n;
        if (memcmp(want, g, (size_t)n * 2) == 0)
            continue;
        int o = 0;
        while (o < n && want[o] == g[o])
            o++;
        fprintf(stderr,
                "  [%d x %d]%s %s, T %d, mode %s: batch row %d (x row %d) differs from that row "
                "alone at column %d: 0x%04x (%g) vs 0x%04x (%g)\n",
                s->k->n_out, s->k->n_in, s->k->bias ? " bias" : "", what, T, mode, i, r, o, g[o],
                (double)vb_half_to_float(g[o]), want[o], (double)vb_half_to_float(want[o]));
        return false;
    }
    return true;
}

/* 3. fp32 out: rows alone against the fp16 rows alone, batches against
 * the rows alone. */
static void check_f32_out(const shape_run *s)
{
    const gcase *k = s->k;
    const size_t row_bytes = (size_t)k->n_out * sizeof(float);
    float *d_out32 = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d_out32, (size_t)n_rows_x * row_bytes));
    CUDA_CHECK(cudaMemset(d_out32, 0xff, (size_t)n_rows_x * row_bytes));
    for (int r = 0; r < n_rows_x; r++)
        CUDA_CHECK(vb_gemm_invariant_f32out(d_out32 + (size_t)r * k->n_out,
                                            (const uint16_t *)s->d_x + (size_t)r * k->n_in,
                                            s->d_w, k->bias ? s->d_bias : NULL, 1, k->n_in,
                                            k->n_out, s->d_ws, s->ws_bytes, 0));
    CUDA_CHECK(cudaDeviceSynchronize());
    float *alone32 = malloc((size_t)n_rows_x * row_bytes);
    float *got = malloc((size_t)t_max * row_bytes);
    CUDA_CHECK(cudaMemcpy(alone32, d_out32, (size_t)n_rows_x * row_bytes,
                          cudaMemcpyDeviceToHost));
    int bad = 0;
    for (size_t i = 0; i < (size_t)n_rows_x * k->n_out && !bad; i++)
        if (vb_float_to_half(alone32[i]) != s->alone[i]) {
            fprintf(stderr, "  [%d x %d] fp32 out, row %zu column %zu alone: %.9g rounds to "
                    "0x%04x, the fp16 entry point gave 0x%04x\n", k->n_out, k->n_in,
                    i / k->n_out, i % k->n_out, (double)alone32[i],
                    vb_float_to_half(alone32[i]), s->alone[i]);
            bad++;
        }
    const int Ts32[] = {1, 9, 65, t_max};
    for (int ti = 0; ti < 4; ti++)
        for (int mi = 0; mi < N_MODES; mi++) {
            const int T = Ts32[ti];
            if (T > t_max || (T == t_max && ti < 3))
                continue;
            CUDA_CHECK(cudaMemset(d_out32, 0xff, (size_t)T * row_bytes));
            vb_gemm_invariant_force(modes[mi].mode);
            cudaError_t e = vb_gemm_invariant_f32out(d_out32, s->d_x, s->d_w,
                                                     k->bias ? s->d_bias : NULL, T, k->n_in,
                                                     k->n_out, s->d_ws, s->ws_bytes, 0);
            vb_gemm_invariant_force(VB_GEMM_INV_AUTO);
            CUDA_CHECK(e);
            CUDA_CHECK(cudaMemcpy(got, d_out32, (size_t)T * row_bytes, cudaMemcpyDeviceToHost));
            for (int r = 0; r < T; r++)
                if (memcmp(got + (size_t)r * k->n_out, alone32 + (size_t)r * k->n_out,
                           row_bytes) != 0) {
                    fprintf(stderr, "  [%d x %d] fp32 out, T %d, mode %s: row %d differs from "
                            "that row alone\n", k->n_out, k->n_in, T, modes[mi].name, r);
                    bad++;
                    break;
                }
        }
    printf("  [%5d x %5d]%s fp32 out: %s\n", k->n_out, k->n_in, k->bias ? " bias" : "     ",
           bad ? "DIFFERS" : "rows alone = fp16 bits rounded, batches = rows alone");
    CHECK_INT_EQ(bad, 0);
    free(got);
    free(alone32);
    CUDA_CHECK(cudaFree(d_out32));
}

/* Rows alone: row r of x at T = 1, the entry point's choice. */
static void rows_alone(shape_run *s)
{
    const gcase *k = s->k;
    void *d_alone = NULL;
    CUDA_CHECK(cudaMalloc(&d_alone, (size_t)n_rows_x * k->n_out * 2));
    CUDA_CHECK(cudaMemset(d_alone, 0xff, (size_t)n_rows_x * k->n_out * 2));
    for (int r = 0; r < n_rows_x; r++)
        CUDA_CHECK(vb_gemm_invariant_f16((uint16_t *)d_alone + (size_t)r * k->n_out,
                                         (const uint16_t *)s->d_x + (size_t)r * k->n_in, s->d_w,
                                         k->bias ? s->d_bias : NULL, 1, k->n_in, k->n_out,
                                         s->d_ws, s->ws_bytes, 0));
    CUDA_CHECK(cudaDeviceSynchronize());
    s->alone = malloc((size_t)n_rows_x * k->n_out * 2);
    CUDA_CHECK(cudaMemcpy(s->alone, d_alone, (size_t)n_rows_x * k->n_out * 2,
                          cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaFree(d_alone));
}

/* 1. The rows alone against the host reference, in double. */
static void check_accuracy(const shape_run *s)
{
    const gcase *k = s->k;
    int *rows = malloc(sizeof(int) * (size_t)n_rows_x), n_rows = 0;
    if ((double)n_rows_x * k->n_out * k->n_in <= FULL_CHECK_MACS) {
        for (int r = 0; r < n_rows_x; r++)
            rows[n_rows++] = r;
    } else {
        static const int some[] = {0, 1, 2, 7, 8, 9, 63, 64, 65, 255, 999, 1500, 2047};
        for (size_t i = 0; i < sizeof some / sizeof some[0]; i++)
            if (some[i] < n_rows_x)
                rows[n_rows++] = some[i];
        rows[n_rows++] = n_rows_x - 1;
    }
    float *xf = malloc(sizeof(float) * (size_t)n_rows * k->n_in);
    float *wf = malloc(sizeof(float) * (size_t)k->n_in);
    for (int i = 0; i < n_rows; i++)
        for (int j = 0; j < k->n_in; j++)
            xf[(size_t)i * k->n_in + j] = vb_half_to_float(s->x[(size_t)rows[i] * k->n_in + j]);
    double diff = 0, ref_max = 0;
    size_t nan = 0;
    for (int o = 0; o < k->n_out; o++) {
        for (int j = 0; j < k->n_in; j++)
            wf[j] = vb_half_to_float(s->w[(size_t)o * k->n_in + j]);
        for (int i = 0; i < n_rows; i++) {
            double ref = k->bias ? vb_half_to_float(s->bias[o]) : 0.0;
            const float *xr = xf + (size_t)i * k->n_in;
            for (int j = 0; j < k->n_in; j++)
                ref += (double)xr[j] * wf[j];
            const float got = vb_half_to_float(s->alone[(size_t)rows[i] * k->n_out + o]);
            if (!isfinite(got)) {
                nan++;
                continue;
            }
            diff = fmax(diff, fabs((double)got - ref));
            ref_max = fmax(ref_max, fabs(ref));
        }
    }
    const double rel = diff / (ref_max > 0 ? ref_max : 1);
    printf("  [%5d x %5d]%s rows alone against the host (%d rows): rel err %.2e%s\n", k->n_out,
           k->n_in, k->bias ? " bias" : "     ", n_rows, rel, nan ? "  (NaN/unwritten!)" : "");
    CHECK_INT_EQ(nan, 0);
    CHECK(rel <= TOL);
    free(rows);
    free(xf);
    free(wf);
}

/* 2. Every T and mode, the shuffled batch and the offset batch against
 * the rows alone. */
static void check_invariance(const shape_run *s)
{
    const gcase *k = s->k;
    uint16_t *got = malloc((size_t)t_max * k->n_out * 2);
    int bad = 0;
    char modes_seen[320] = "";
    for (int ti = 0; ti < N_TS && Ts[ti] <= t_max; ti++) {
        const int T = Ts[ti];
        const int picked = vb_gemm_invariant_mode(T, k->n_in, k->n_out, s->ws_bytes);
        char one[32];
        snprintf(one, sizeof one, "%sT %d %s", ti ? ", " : "", T,
                 picked == VB_GEMM_INV_SPLIT ? "split" : picked == VB_GEMM_INV_INBLOCK_64 ? "ib64"
                                                                                        : "ib128");
        if (strlen(modes_seen) + strlen(one) < sizeof modes_seen)
            strcat(modes_seen, one);
        for (int mi = 0; mi < N_MODES; mi++) {
            cudaError_t e = run(s, s->d_x, T, modes[mi].mode);
            if (e != cudaSuccess) {
                fprintf(stderr, "  [%d x %d] T %d mode %s: %s\n", k->n_out, k->n_in, T,
                        modes[mi].name, cudaGetErrorString(e));
                bad++;
                continue;
            }
            CUDA_CHECK(cudaMemcpy(got, s->d_out, (size_t)T * k->n_out * 2,
                                  cudaMemcpyDeviceToHost));
            bad += !same_bits(s, got, T, NULL, 0, "first T rows", modes[mi].name);
        }
    }
    printf("  [%5d x %5d]%s the entry point's modes: %s\n", k->n_out, k->n_in,
           k->bias ? " bias" : "     ", modes_seen);

    /* shuffled rows: the batch is x[perm[0]], x[perm[1]], ... */
    int *perm = malloc(sizeof(int) * (size_t)t_max);
    for (int i = 0; i < t_max; i++)
        perm[i] = i;
    for (int i = t_max - 1; i > 0; i--) {
        int j = irand(i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    uint16_t *xs = malloc((size_t)t_max * k->n_in * 2);
    for (int i = 0; i < t_max; i++)
        memcpy(xs + (size_t)i * k->n_in, s->x + (size_t)perm[i] * k->n_in, (size_t)k->n_in * 2);
    void *d_xs = dev_copy(xs, (size_t)t_max * k->n_in * 2);
    /* 0: t_max */
    static const int shuffled_Ts[] = {9, 64, 65, 1000, 0};
    for (size_t ti = 0; ti < sizeof shuffled_Ts / sizeof shuffled_Ts[0]; ti++)
        for (int mi = 0; mi < N_MODES; mi++) {
            const int T = shuffled_Ts[ti] ? shuffled_Ts[ti] : t_max;
            if (T > t_max || (T == t_max && shuffled_Ts[ti]))
                continue;
            CUDA_CHECK(run(s, d_xs, T, modes[mi].mode));
            CUDA_CHECK(cudaMemcpy(got, s->d_out, (size_t)T * k->n_out * 2,
                                  cudaMemcpyDeviceToHost));
            bad += !same_bits(s, got, T, perm, 0, "shuffled rows", modes[mi].name);
        }
    /* the batch starting at row OFFSET of x: every row at another position */
    static const int offset_Ts[] = {3, 64, 200, 0};
    for (size_t ti = 0; ti < sizeof offset_Ts / sizeof offset_Ts[0]; ti++)
        for (int mi = 0; mi < N_MODES; mi++) {
            const int T = offset_Ts[ti] ? offset_Ts[ti] : t_max;
            if (T > t_max || (T == t_max && offset_Ts[ti]))
                continue;
            CUDA_CHECK(run(s, (const uint16_t *)s->d_x + (size_t)OFFSET * k->n_in, T,
                           modes[mi].mode));
            CUDA_CHECK(cudaMemcpy(got, s->d_out, (size_t)T * k->n_out * 2,
                                  cudaMemcpyDeviceToHost));
            bad += !same_bits(s, got, T, NULL, OFFSET, "batch from x row 5", modes[mi].name);
        }
    CHECK_INT_EQ(bad, 0);
    CUDA_CHECK(cudaFree(d_xs));
    free(xs);
    free(perm);
    free(got);
}

static void run_shape(const gcase *k)
{
    shape_run s = {0};
    s.k = k;
    const size_t nx = (size_t)n_rows_x * k->n_in, nw = (size_t)k->n_out * k->n_in;
    s.x = malloc(nx * 2);
    s.w = malloc(nw * 2);
    s.bias = malloc((size_t)k->n_out * 2);
    for (size_t i = 0; i < nx; i++)
        s.x[i] = rand_half();
    for (size_t i = 0; i < nw; i++)
        s.w[i] = rand_half();
    for (int o = 0; o < k->n_out; o++)
        s.bias[o] = rand_half();
    s.d_x = dev_copy(s.x, nx * 2);
    s.d_w = dev_copy(s.w, nw * 2);
    s.d_bias = dev_copy(s.bias, (size_t)k->n_out * 2);
    CUDA_CHECK(cudaMalloc(&s.d_out, (size_t)t_max * k->n_out * 2));
    /* room for split mode at every T of the test (forced up to t_max) */
    s.ws_bytes = vb_gemm_invariant_workspace_bytes(t_max, k->n_in, k->n_out);
    CUDA_CHECK(cudaMalloc((void **)&s.d_ws, s.ws_bytes));
    CUDA_CHECK(cudaMemset(s.d_ws, 0, s.ws_bytes)); /* once: the split mode's counters */
    CHECK(vb_gemm_invariant_supported(k->n_in, k->n_out, s.d_x, s.d_w));

    rows_alone(&s);
    check_accuracy(&s);
    check_invariance(&s);
    check_f32_out(&s);

    CUDA_CHECK(cudaFree(s.d_ws));
    CUDA_CHECK(cudaFree(s.d_out));
    CUDA_CHECK(cudaFree(s.d_bias));
    CUDA_CHECK(cudaFree(s.d_w));
    CUDA_CHECK(cudaFree(s.d_x));
    free(s.alone);
    free(s.bias);
    free(s.w);
    free(s.x);
}

static void test_small_shapes(void)
{
    static const gcase cases[] = {
        /* n_out n_in bias */
        {72, 64, 1},     /* one 128-row tile, part filled; n_out % 16 != 0 */
        {100, 528, 1},   /* a full slice and one k step: n_in % 32 == 16 */
        {130, 1040, 0},  /* two slices and one k step; a second, nearly empty row tile */
        {1001, 784, 1},  /* n_out odd: no 16-byte stores */
        {33, 16, 0},     /* a single k step */
        {256, 1536, 1},  /* exactly three slices */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_shape(&cases[i]);
}

static void test_7b_shapes(void)
{
    static const gcase cases[] = {
        {3584, 3584, 1},  /* q, o (7 slices) */
        {512, 3584, 1},   /* k, v */
        {18944, 3584, 0}, /* gate, up */
        {3584, 18944, 0}, /* down (37 slices) */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_shape(&cases[i]);
}

static void test_refusals(void)
{
    void *d_x = NULL, *d_w = NULL, *d_out = NULL;
    CUDA_CHECK(cudaMalloc(&d_x, 4096));
    CUDA_CHECK(cudaMalloc(&d_w, 4096));
    CUDA_CHECK(cudaMalloc(&d_out, 4096));
    CUDA_CHECK(cudaMemset(d_x, 0, 4096));
    CUDA_CHECK(cudaMemset(d_w, 0, 4096));
    CHECK(!vb_gemm_invariant_supported(40, 8, d_x, d_w));                  /* n_in % 16 */
    CHECK(!vb_gemm_invariant_supported(64, 8, (char *)d_x + 2, d_w));      /* x alignment */
    CHECK(!vb_gemm_invariant_supported(64, 8, d_x, (char *)d_w + 8));      /* w alignment */
    CHECK(!vb_gemm_invariant_supported(64, 0, d_x, d_w));
    CHECK_INT_EQ(vb_gemm_invariant_f16(d_out, d_x, d_w, NULL, 2, 40, 8, NULL, 0, 0),
                 cudaErrorInvalidValue);
    CHECK_INT_EQ(vb_gemm_invariant_f16(d_out, (char *)d_x + 2, d_w, NULL, 2, 64, 8, NULL, 0, 0),
                 cudaErrorInvalidValue);
    CHECK_INT_EQ(vb_gemm_invariant_f16(d_out, d_x, d_w, NULL, 0, 64, 8, NULL, 0, 0), cudaSuccess);
    /* without a workspace the entry point takes in-block even at T = 1 ... */
    CHECK(vb_gemm_invariant_mode(1, 64, 8, 0) != VB_GEMM_INV_SPLIT);
    CHECK_INT_EQ(vb_gemm_invariant_f16(d_out, d_x, d_w, NULL, 1, 64, 8, NULL, 0, 0), cudaSuccess);
    /* ... and a forced split without one is refused */
    vb_gemm_invariant_force(VB_GEMM_INV_SPLIT);
    CHECK_INT_EQ(vb_gemm_invariant_f16(d_out, d_x, d_w, NULL, 1, 64, 8, NULL, 0, 0),
                 cudaErrorInvalidValue);
    vb_gemm_invariant_force(VB_GEMM_INV_AUTO);
    /* the partials, 3 slices x 10 outputs of fp32 a token (n_in 1040: two
     * of 512 and one of 16), above the counters' fixed region */
    CHECK_INT_EQ(vb_gemm_invariant_workspace_bytes(3, 1040, 10) -
                     vb_gemm_invariant_workspace_bytes(1, 1040, 10),
                 (size_t)2 * 3 * 10 * 4);
    CHECK(vb_gemm_invariant_workspace_bytes(3, 1040, 10) > (size_t)3 * 3 * 10 * 4);
    CUDA_CHECK(cudaDeviceSynchronize());
    CUDA_CHECK(cudaFree(d_x));
    CUDA_CHECK(cudaFree(d_w));
    CUDA_CHECK(cudaFree(d_out));
}

int main(int argc, char **argv)
{
    const bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0)
        return test_skip("no CUDA device on this machine");
    if (quick)
        t_max = 65;
    n_rows_x = t_max + OFFSET;
    RUN_TEST(test_refusals);
    RUN_TEST(test_small_shapes);
    if (!quick)
        RUN_TEST(test_7b_shapes);
    return test_summary();
}

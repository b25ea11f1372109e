/* The batch-invariant projections through cuBLASLt
 * (src/cuda/gemm_lt_invariant.c, issue #22), on random fp16 x and w, for
 * the 7B shapes (q/o 3584 x 3584, k/v 512 x 3584, gate/up 18944 x 3584,
 * down 3584 x 18944), logits (32,000 x 3584, fp32 out) and small ones
 * (SmolLM2's 576 / 1536, an n_out of 72).
 *
 * 1. gemm_lt_inv_prepare accepts every shape (the module's premise on an
 *    sm_80+ GPU: split-K-free algorithms whose bits agree; a refusal is a
 *    failure here, so a cuBLAS or GPU where the premise breaks is seen),
 *    and with the chain kernel (kernels/gemm_chain.cu) for steps of up to
 *    8 rows (its bits equal to cuBLASLt's: T = 1, 2, 3, 7, 8 below run on
 *    it and are compared with cuBLASLt's reference rows).
 * 2. Invariance: every row of a batch of 2,053 rows is computed once
 *    (the reference); the first T rows for T in 1, 2, 3, 7, 8, 9, 31, 64,
 *    65, 127, 200, 511, 1000, 2048 (each a different T bucket or inside
 *    one), the rows from row 5 on, and the batch shuffled must give the
 *    reference's bits row for row (memcmp). A failure names the shape, T
 *    and the first differing row and column.
 * 3. Accuracy: 12 rows against a host reference in double over the same
 *    fp16 values, max |gpu - ref| / max |ref| <= 5e-3 (fp32 accumulation,
 *    fp16 output).
 * 4. q, k and v in one chain launch with biases (gemm_lt_inv_run_qkv):
 *    the bits of the three projections plus vb_add_bias_f16; gate and up
 *    in one (gemm_lt_inv_run_gate_up): the two, then vb_silu_gate_f16;
 *    q, k and v with RoPE and the cache store in one: the projections,
 *    vb_add_bias_f16, vb_rope_kv_write_f16 (outputs and caches).
 * Outputs are poisoned before each run. Skips (77) without a GPU or below
 * sm_80 (where the mode is refused). */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_check.h"
#include "cuda/gemm_lt_invariant.h"
#include "harness.h"
#include "kernels.h"
#include "util/half.h"

#define ROWS 2053 /* the largest step, 2048, from row 5 */
#define OFFSET 5
#define TOL 5e-3

static const int Ts[] = {1, 2, 3, 7, 8, 9, 31, 64, 65, 127, 200, 511, 1000, 2048};
#define N_TS (int)(sizeof Ts / sizeof Ts[0])

static uint64_t rng = 4242;
static uint16_t rand_half(void) /* uniform in [-1, 1), rounded to fp16 */
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return vb_float_to_half((float)((double)(rng >> 11) / 4503599627370496.0 - 1.0));
}
static int irand(int n)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (int)((rng >> 33) % (uint64_t)n);
}

static gemm_lt_inv *g;
static cudaStream_t stream;
static void *d_ws;

typedef struct shape {
    int n_out, n_in;
    bool f32;
} shape;

/* The batch's rows against the reference rows src[i] (first + i when src
 * is NULL); prints the first mismatch. */
static bool same_rows(const shape *k, const char *ref, const char *got, int T, const int *src,
                      int first, const char *what)
{
    const size_t row = (size_t)k->n_out * (k->f32 ? 4 : 2);
    for (int i = 0; i < T; i++) {
        const int r = src ? src[i] : first + i;
        const char *want = ref + (size_t)r * row, *have = got + (size_t)i * row;
        if (memcmp(want, have, row) == 0)
            continue;
        size_t b = 0;
        while (b < row && want[b] == have[b])
            b++;
        fprintf(stderr, "  [%d x %d]%s %s, T %d: batch row %d (x row %d) differs from the "
                        "reference at column %zu\n",
                k->n_out, k->n_in, k->f32 ? " fp32" : "", what, T, i, r, b / (k->f32 ? 4 : 2));
        return false;
    }
    return true;
}

static void *run(const shape *k, void *d_out, const void *d_x, const void *d_w, int T, char *host)
{
    const size_t bytes = (size_t)T * k->n_out * (k->f32 ? 4 : 2);
    CUDA_CHECK(cudaMemsetAsync(d_out, 0xff, bytes, stream));
    CHECK(gemm_lt_inv_run(g, d_out, k->f32, d_x, d_w, T, k->n_in, k->n_out));
    CUDA_CHECK(cudaMemcpyAsync(host, d_out, bytes, cudaMemcpyDeviceToHost, stream));
    CUDA_CHECK(cudaStreamSynchronize(stream));
    return host;
}

static void check_shape(const shape *k)
{
    const size_t nx = (size_t)ROWS * k->n_in, nw = (size_t)k->n_out * k->n_in;
    const size_t row = (size_t)k->n_out * (k->f32 ? 4 : 2);
    uint16_t *x = malloc(nx * 2), *w = malloc(nw * 2), *xs = malloc(nx * 2);
    char *ref = malloc((size_t)ROWS * row), *got = malloc((size_t)ROWS * row);
    int *perm = malloc(ROWS * sizeof *perm);
    CHECK(x && w && xs && ref && got && perm);
    for (size_t i = 0; i < nx; i++)
        x[i] = rand_half();
    for (size_t i = 0; i < nw; i++)
        w[i] = rand_half();
    void *d_x, *d_w, *d_xs, *d_out;
    CUDA_CHECK(cudaMalloc(&d_x, nx * 2));
    CUDA_CHECK(cudaMalloc(&d_xs, nx * 2));
    CUDA_CHECK(cudaMalloc(&d_w, nw * 2));
    CUDA_CHECK(cudaMalloc(&d_out, (size_t)ROWS * row));
    CUDA_CHECK(cudaMemcpy(d_x, x, nx * 2, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(d_w, w, nw * 2, cudaMemcpyHostToDevice));

    /* 1 */
    bool ok = gemm_lt_inv_prepare(g, d_w, k->n_in, k->n_out, k->f32);
    if (!ok)
        fprintf(stderr, "  [%d x %d]%s: not accepted by gemm_lt_inv_prepare\n", k->n_out,
                k->n_in, k->f32 ? " fp32" : "");
    CHECK(ok);
    if (ok) {
        /* 2 */
        run(k, d_out, d_x, d_w, ROWS, ref);
        for (int i = 0; i < N_TS; i++) {
            run(k, d_out, d_x, d_w, Ts[i], got);
            CHECK(same_rows(k, ref, got, Ts[i], NULL, 0, "first rows"));
            run(k, d_out, (const char *)d_x + (size_t)OFFSET * k->n_in * 2, d_w, Ts[i], got);
            CHECK(same_rows(k, ref, got, Ts[i], NULL, OFFSET, "from row 5"));
        }
        for (int i = 0; i < ROWS; i++)
            perm[i] = i;
        for (int i = ROWS - 1; i > 0; i--) {
            int j = irand(i + 1), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        for (int i = 0; i < ROWS; i++)
            memcpy(xs + (size_t)i * k->n_in, x + (size_t)perm[i] * k->n_in, (size_t)k->n_in * 2);
        CUDA_CHECK(cudaMemcpy(d_xs, xs, nx * 2, cudaMemcpyHostToDevice));
        run(k, d_out, d_xs, d_w, ROWS, got);
        CHECK(same_rows(k, ref, got, ROWS, perm, 0, "shuffled"));
        /* 3 */
        double max_err = 0, max_ref = 0;
        for (int s = 0; s < 12; s++) {
            const int r = (int)((long)s * (ROWS - 1) / 11);
            for (int o = 0; o < k->n_out; o++) {
                double acc = 0;
                for (int i = 0; i < k->n_in; i++)
                    acc += (double)vb_half_to_float(x[(size_t)r * k->n_in + i]) *
                           vb_half_to_float(w[(size_t)o * k->n_in + i]);
                double v = k->f32 ? ((const float *)(ref + (size_t)r * row))[o]
                                  : vb_half_to_float(((const uint16_t *)(ref + (size_t)r * row))[o]);
                max_err = fmax(max_err, fabs(v - acc));
                max_ref = fmax(max_ref, fabs(acc));
            }
        }
        if (!(max_err <= TOL * max_ref))
            fprintf(stderr, "  [%d x %d]: max error %g of max %g\n", k->n_out, k->n_in, max_err,
                    max_ref);
        CHECK(max_err <= TOL * max_ref);
    }
    CUDA_CHECK(cudaFree(d_x));
    CUDA_CHECK(cudaFree(d_xs));
    CUDA_CHECK(cudaFree(d_w));
    CUDA_CHECK(cudaFree(d_out));
    free(x);
    free(w);
    free(xs);
    free(ref);
    free(got);
    free(perm);
}

static void test_small_shapes(void)
{
    const shape ks[] = {{576, 576, false}, {1536, 576, false}, {576, 1536, false},
                        {72, 576, false},  {49152, 576, true}};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++)
        check_shape(&ks[i]);
}

static void test_7b_shapes(void)
{
    const shape ks[] = {{3584, 3584, false},  {512, 3584, false},  {18944, 3584, false},
                        {3584, 18944, false}, {32000, 3584, true}};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++)
        check_shape(&ks[i]);
}

/* q, k and v in one chain launch with their biases (gemm_lt_inv_run_qkv)
 * give, bit for bit, the three separate projections, each followed by
 * vb_add_bias_f16 (what the backend does when the fused launch is not
 * taken), at T = 1, 3 and 8 and from row 5; a step of 9 rows is refused. */
static void check_qkv(int n_in, const int n_out[3])
{
    const int rows = OFFSET + VB_GEMM_CHAIN_MAX_T;
    uint16_t *x = malloc((size_t)rows * n_in * 2);
    CHECK(x != NULL);
    for (size_t i = 0; i < (size_t)rows * n_in; i++)
        x[i] = rand_half();
    void *d_x, *d_w[3], *d_b[3], *d_sep[3], *d_fused[3];
    CUDA_CHECK(cudaMalloc(&d_x, (size_t)rows * n_in * 2));
    CUDA_CHECK(cudaMemcpy(d_x, x, (size_t)rows * n_in * 2, cudaMemcpyHostToDevice));
    for (int m = 0; m < 3; m++) {
        const size_t nw = (size_t)n_out[m] * n_in, out = (size_t)rows * n_out[m] * 2;
        uint16_t *h = malloc(nw * 2);
        CHECK(h != NULL);
        for (size_t i = 0; i < nw; i++)
            h[i] = rand_half();
        CUDA_CHECK(cudaMalloc(&d_w[m], nw * 2));
        CUDA_CHECK(cudaMemcpy(d_w[m], h, nw * 2, cudaMemcpyHostToDevice));
        for (int i = 0; i < n_out[m]; i++)
            h[i] = rand_half();
        CUDA_CHECK(cudaMalloc(&d_b[m], (size_t)n_out[m] * 2));
        CUDA_CHECK(cudaMemcpy(d_b[m], h, (size_t)n_out[m] * 2, cudaMemcpyHostToDevice));
        CUDA_CHECK(cudaMalloc(&d_sep[m], out));
        CUDA_CHECK(cudaMalloc(&d_fused[m], out));
        free(h);
    }
    const int Tq[] = {1, 3, VB_GEMM_CHAIN_MAX_T};
    for (int first = 0; first <= OFFSET; first += OFFSET)
        for (size_t i = 0; i < sizeof Tq / sizeof Tq[0]; i++) {
            const int T = Tq[i];
            const void *xt = (const char *)d_x + (size_t)first * n_in * 2;
            for (int m = 0; m < 3; m++) {
                CUDA_CHECK(cudaMemsetAsync(d_fused[m], 0xff, (size_t)T * n_out[m] * 2, stream));
                CHECK(gemm_lt_inv_prepare(g, d_w[m], n_in, n_out[m], false));
                CHECK(gemm_lt_inv_run(g, d_sep[m], false, xt, d_w[m], T, n_in, n_out[m]));
                CUDA_CHECK(vb_add_bias_f16(d_sep[m], d_b[m], T, n_out[m], stream));
            }
            CHECK(gemm_lt_inv_run_qkv(g, d_fused, xt, (const void *const *)d_w,
                                      (const void *const *)d_b, T, n_in, n_out, NULL));
            for (int m = 0; m < 3; m++) {
                const size_t bytes = (size_t)T * n_out[m] * 2;
                char *a = malloc(bytes), *b = malloc(bytes);
                CHECK(a && b);
                CUDA_CHECK(cudaMemcpyAsync(a, d_sep[m], bytes, cudaMemcpyDeviceToHost, stream));
                CUDA_CHECK(cudaMemcpyAsync(b, d_fused[m], bytes, cudaMemcpyDeviceToHost, stream));
                CUDA_CHECK(cudaStreamSynchronize(stream));
                const bool same = memcmp(a, b, bytes) == 0;
                if (!same)
                    fprintf(stderr, "  qkv [%d %d %d] x %d, T %d from row %d: matrix %d differs\n",
                            n_out[0], n_out[1], n_out[2], n_in, T, first, m);
                CHECK(same);
                free(a);
                free(b);
            }
        }
    CHECK(!gemm_lt_inv_run_qkv(g, d_fused, d_x, (const void *const *)d_w,
                               (const void *const *)d_b, VB_GEMM_CHAIN_MAX_T + 1, n_in, n_out,
                               NULL));
    for (int m = 0; m < 3; m++) {
        CUDA_CHECK(cudaFree(d_w[m]));
        CUDA_CHECK(cudaFree(d_b[m]));
        CUDA_CHECK(cudaFree(d_sep[m]));
        CUDA_CHECK(cudaFree(d_fused[m]));
    }
    CUDA_CHECK(cudaFree(d_x));
    free(x);
}

/* The MLP's gate and up in one chain launch (gemm_lt_inv_run_gate_up)
 * give, bit for bit, the two projections then vb_silu_gate_f16, at T = 1,
 * 5 and 8 and from row 5; a step of 9 rows is refused. */
static void check_gate_up(int n_in, int n_out)
{
    const int rows = OFFSET + VB_GEMM_CHAIN_MAX_T;
    const size_t nx = (size_t)rows * n_in, nw = (size_t)n_out * n_in;
    const size_t out = (size_t)rows * n_out * 2;
    uint16_t *h = malloc((nx > nw ? nx : nw) * 2);
    char *a = malloc(out), *b = malloc(out);
    CHECK(h && a && b);
    void *d_x, *d_w[2], *d_sep[2], *d_fused;
    for (size_t i = 0; i < nx; i++)
        h[i] = rand_half();
    CUDA_CHECK(cudaMalloc(&d_x, nx * 2));
    CUDA_CHECK(cudaMemcpy(d_x, h, nx * 2, cudaMemcpyHostToDevice));
    for (int m = 0; m < 2; m++) {
        for (size_t i = 0; i < nw; i++)
            h[i] = rand_half();
        CUDA_CHECK(cudaMalloc(&d_w[m], nw * 2));
        CUDA_CHECK(cudaMemcpy(d_w[m], h, nw * 2, cudaMemcpyHostToDevice));
        CUDA_CHECK(cudaMalloc(&d_sep[m], out));
    }
    CUDA_CHECK(cudaMalloc(&d_fused, out));
    const int Tg[] = {1, 5, VB_GEMM_CHAIN_MAX_T};
    for (int first = 0; first <= OFFSET; first += OFFSET)
        for (size_t i = 0; i < sizeof Tg / sizeof Tg[0]; i++) {
            const int T = Tg[i];
            const size_t bytes = (size_t)T * n_out * 2;
            const void *xt = (const char *)d_x + (size_t)first * n_in * 2;
            for (int m = 0; m < 2; m++) {
                CHECK(gemm_lt_inv_prepare(g, d_w[m], n_in, n_out, false));
                CHECK(gemm_lt_inv_run(g, d_sep[m], false, xt, d_w[m], T, n_in, n_out));
            }
            CUDA_CHECK(vb_silu_gate_f16(d_sep[0], d_sep[0], d_sep[1], (size_t)T * n_out, stream));
            CUDA_CHECK(cudaMemsetAsync(d_fused, 0xff, bytes, stream));
            CHECK(gemm_lt_inv_run_gate_up(g, d_fused, xt, d_w[0], d_w[1], T, n_in, n_out));
            CUDA_CHECK(cudaMemcpyAsync(a, d_sep[0], bytes, cudaMemcpyDeviceToHost, stream));
            CUDA_CHECK(cudaMemcpyAsync(b, d_fused, bytes, cudaMemcpyDeviceToHost, stream));
            CUDA_CHECK(cudaStreamSynchronize(stream));
            const bool same = memcmp(a, b, bytes) == 0;
            if (!same)
                fprintf(stderr, "  gate/up %d x %d, T %d from row %d: differs\n", n_out, n_in, T,
                        first);
            CHECK(same);
        }
    CHECK(!gemm_lt_inv_run_gate_up(g, d_fused, d_x, d_w[0], d_w[1], VB_GEMM_CHAIN_MAX_T + 1,
                                   n_in, n_out));
    for (int m = 0; m < 2; m++) {
        CUDA_CHECK(cudaFree(d_w[m]));
        CUDA_CHECK(cudaFree(d_sep[m]));
    }
    CUDA_CHECK(cudaFree(d_fused));
    CUDA_CHECK(cudaFree(d_x));
    free(h);
    free(a);
    free(b);
}

static void test_gate_up_fused(void)
{
    check_gate_up(3584, 18944);
    check_gate_up(576, 1536);
    check_gate_up(576, 72);
}

/* Device copies of n bytes of host data. */
static void *upload(const void *h, size_t n)
{
    void *d;
    CUDA_CHECK(cudaMalloc(&d, n));
    CUDA_CHECK(cudaMemcpy(d, h, n, cudaMemcpyHostToDevice));
    return d;
}

static bool same_device_bytes(const void *a, const void *b, size_t n)
{
    char *ha = malloc(n), *hb = malloc(n);
    CHECK(ha && hb);
    CUDA_CHECK(cudaMemcpy(ha, a, n, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(hb, b, n, cudaMemcpyDeviceToHost));
    const bool same = memcmp(ha, hb, n) == 0;
    free(ha);
    free(hb);
    return same;
}

/* q, k and v with RoPE and the paged-cache store in the chain launch's
 * epilogue (gemm_lt_inv_run_qkv with a rope) against the separate path:
 * the three projections, vb_add_bias_f16, vb_rope_kv_write_f16. The
 * rotated q and k, v, and both caches bit for bit, at T = 1, 3 and 8 (one
 * a padding row: no cache slot), with positions in several cache blocks. */
static void check_qkv_rope(int n_in, int heads, int kv_heads, int hd)
{
    enum { BS = 16, MAXB = 16, NSEQ = VB_GEMM_CHAIN_MAX_T };
    const int n_out[3] = {heads * hd, kv_heads * hd, kv_heads * hd};
    const int positions[NSEQ] = {3, 17, 40, 41, 100, 7, 63, 250};
    const int token_seq[NSEQ] = {0, 1, 2, 3, -1, 5, 6, 7};
    int tables[NSEQ * MAXB];
    for (int q = 0; q < NSEQ; q++)
        for (int b = 0; b < MAXB; b++)
            tables[q * MAXB + b] = (NSEQ - 1 - q) * MAXB + (MAXB - 1 - b);
    float *inv = malloc(sizeof(float) * (size_t)(hd / 2));
    uint16_t *h = malloc((size_t)NSEQ * n_in * 2 > (size_t)n_out[0] * n_in * 2
                             ? (size_t)NSEQ * n_in * 2
                             : (size_t)n_out[0] * n_in * 2);
    CHECK(inv && h);
    for (int i = 0; i < hd / 2; i++)
        inv[i] = powf(10000.0f, -2.0f * (float)i / (float)hd);
    void *d_inv = upload(inv, sizeof(float) * (size_t)(hd / 2));
    void *d_pos = upload(positions, sizeof positions), *d_seq = upload(token_seq, sizeof token_seq);
    void *d_tab = upload(tables, sizeof tables);
    for (int i = 0; i < NSEQ * n_in; i++)
        h[i] = rand_half();
    void *d_x = upload(h, (size_t)NSEQ * n_in * 2);
    void *d_w[3], *d_b[3], *d_sep[3], *d_fused[3];
    for (int m = 0; m < 3; m++) {
        for (size_t i = 0; i < (size_t)n_out[m] * n_in; i++)
            h[i] = rand_half();
        d_w[m] = upload(h, (size_t)n_out[m] * n_in * 2);
        for (int i = 0; i < n_out[m]; i++)
            h[i] = rand_half();
        d_b[m] = upload(h, (size_t)n_out[m] * 2);
        CUDA_CHECK(cudaMalloc(&d_sep[m], (size_t)NSEQ * n_out[m] * 2));
        CUDA_CHECK(cudaMalloc(&d_fused[m], (size_t)NSEQ * n_out[m] * 2));
    }
    const size_t cache = (size_t)NSEQ * MAXB * BS * kv_heads * hd * 2;
    void *kc[2], *vc[2]; /* separate, fused */
    for (int i = 0; i < 2; i++) {
        CUDA_CHECK(cudaMalloc(&kc[i], cache));
        CUDA_CHECK(cudaMalloc(&vc[i], cache));
    }
    const int Tr[] = {1, 3, VB_GEMM_CHAIN_MAX_T};
    for (size_t ti = 0; ti < sizeof Tr / sizeof Tr[0]; ti++) {
        const int T = Tr[ti];
        for (int i = 0; i < 2; i++) {
            CUDA_CHECK(cudaMemset(kc[i], 0, cache));
            CUDA_CHECK(cudaMemset(vc[i], 0, cache));
        }
        for (int m = 0; m < 3; m++) {
            CUDA_CHECK(cudaMemset(d_fused[m], 0xff, (size_t)NSEQ * n_out[m] * 2));
            CHECK(gemm_lt_inv_prepare(g, d_w[m], n_in, n_out[m], false));
            CHECK(gemm_lt_inv_run(g, d_sep[m], false, d_x, d_w[m], T, n_in, n_out[m]));
            CUDA_CHECK(vb_add_bias_f16(d_sep[m], d_b[m], T, n_out[m], stream));
        }
        CUDA_CHECK(vb_rope_kv_write_f16(d_sep[0], d_sep[1], d_sep[2], kc[0], vc[0], d_inv, 1.0f,
                                        d_pos, d_seq, d_tab, MAXB, T, heads, kv_heads, hd, BS,
                                        stream));
        const vb_gemv_rope r = {d_inv, 1.0f, d_pos, d_seq, d_tab, MAXB, BS, hd, kv_heads,
                                kc[1], vc[1]};
        CHECK(gemm_lt_inv_run_qkv(g, d_fused, d_x, (const void *const *)d_w,
                                  (const void *const *)d_b, T, n_in, n_out, &r));
        CUDA_CHECK(cudaStreamSynchronize(stream));
        bool same = true;
        for (int m = 0; m < 3; m++)
            same &= same_device_bytes(d_sep[m], d_fused[m], (size_t)T * n_out[m] * 2);
        same &= same_device_bytes(kc[0], kc[1], cache) && same_device_bytes(vc[0], vc[1], cache);
        if (!same)
            fprintf(stderr, "  qkv+rope %d heads (%d kv) x %d, head_dim %d, T %d: differs\n",
                    heads, kv_heads, n_in, hd, T);
        CHECK(same);
    }
    for (int m = 0; m < 3; m++) {
        CUDA_CHECK(cudaFree(d_w[m]));
        CUDA_CHECK(cudaFree(d_b[m]));
        CUDA_CHECK(cudaFree(d_sep[m]));
        CUDA_CHECK(cudaFree(d_fused[m]));
    }
    for (int i = 0; i < 2; i++) {
        CUDA_CHECK(cudaFree(kc[i]));
        CUDA_CHECK(cudaFree(vc[i]));
    }
    void *bufs[] = {d_inv, d_pos, d_seq, d_tab, d_x};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        CUDA_CHECK(cudaFree(bufs[i]));
    free(inv);
    free(h);
}

static void test_qkv_rope_fused(void)
{
    check_qkv_rope(3584, 28, 4, 128); /* Qwen2.5-7B */
    check_qkv_rope(576, 9, 3, 64);    /* SmolLM2-135M */
}

static void test_qkv_fused(void)
{
    const int q7b[3] = {3584, 512, 512}, smol[3] = {576, 192, 192}, odd[3] = {72, 24, 40};
    check_qkv(3584, q7b);
    check_qkv(576, smol);
    check_qkv(576, odd);
}

/* A prepared shape keeps its verdict; an unprepared one is not run. */
static void test_unprepared(void)
{
    CHECK(!gemm_lt_inv_run(g, d_ws, false, d_ws, d_ws, 1, 64, 64));
    int prepared = 0, accepted = 0, chain = 0;
    gemm_lt_inv_counts(g, &prepared, &accepted, &chain);
    CHECK_INT_EQ(prepared, accepted);
    /* the chain kernel's bits are cuBLASLt's on every shape (what a1's
     * speed in the mode rests on) */
    CHECK_INT_EQ(chain, accepted);
}

int main(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0)
        return test_skip("no CUDA device on this machine");
    int major = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0));
    if (major < 8)
        return test_skip("--batch-invariant needs sm_80 or newer");
    CUDA_CHECK(cudaStreamCreate(&stream));
    const size_t ws_bytes = (size_t)32 << 20;
    CUDA_CHECK(cudaMalloc(&d_ws, ws_bytes));
    g = gemm_lt_inv_create(stream, d_ws, ws_bytes);
    RUN_TEST(test_small_shapes);
    RUN_TEST(test_7b_shapes);
    RUN_TEST(test_qkv_fused);
    RUN_TEST(test_gate_up_fused);
    RUN_TEST(test_qkv_rope_fused);
    RUN_TEST(test_unprepared);
    gemm_lt_inv_destroy(g);
    CUDA_CHECK(cudaFree(d_ws));
    CUDA_CHECK(cudaStreamDestroy(stream));
    return test_summary();
}

/* Batch-invariant projections through cuBLASLt (see gemm_lt_invariant.h). */
#include "cuda/gemm_lt_invariant.h"

#include <cublasLt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_check.h"
#include "kernels.h"
#include "util/log.h"

/* T buckets: 1, 2, 4, ..., 2^(LT_BUCKETS - 1) rows; larger steps take the
 * last bucket's algorithm. */
#define LT_BUCKETS 15
#define LT_CHECK_ROWS 64 /* rows of the prepare check */
#define LT_HEURISTICS 16 /* results asked of each heuristic query */

typedef struct lt_plan {
    int n_in, n_out;
    bool out_f32;
    bool accepted;
    bool chain; /* steps of up to 8 rows on vb_gemm_chain (its bits checked equal) */
    cublasLtMatmulAlgo_t algo[LT_BUCKETS];
} lt_plan;

struct gemm_lt_inv {
    cudaStream_t stream;
    cublasLtHandle_t handle;
    cublasLtMatmulDescOpaque_t desc[2]; /* fp16 out, fp32 out */
    void *workspace;
    size_t workspace_bytes;
    lt_plan *plans;
    int n_plans, cap_plans;
};

static void desc_init(cublasLtMatmulDescOpaque_t *d)
{
    /* fp32 accumulation and scale; out^T = w^T x^T in cuBLAS's
     * column-major terms: A = w (n_in x n_out, transposed), B = x^T */
    CUBLAS_CHECK(cublasLtMatmulDescInit(d, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t op_t = CUBLAS_OP_T, op_n = CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_TRANSA, &op_t, sizeof op_t));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_TRANSB, &op_n, sizeof op_n));
}

gemm_lt_inv *gemm_lt_inv_create(cudaStream_t stream, void *workspace, size_t workspace_bytes)
{
    gemm_lt_inv *g = calloc(1, sizeof *g);
    if (!g)
        vb_cuda_fail("host", "calloc", "out of memory for the invariant GEMM", __FILE__, __LINE__);
    g->stream = stream;
    g->workspace = workspace;
    g->workspace_bytes = workspace_bytes;
    CUBLAS_CHECK(cublasLtCreate(&g->handle));
    desc_init(&g->desc[0]);
    desc_init(&g->desc[1]);
    return g;
}

void gemm_lt_inv_destroy(gemm_lt_inv *g)
{
    if (!g)
        return;
    CUBLAS_CHECK(cublasLtDestroy(g->handle));
    free(g->plans);
    free(g);
}

typedef struct lt_layouts {
    cublasLtMatrixLayoutOpaque_t a, b, c;
} lt_layouts;

static void layouts_init(lt_layouts *l, int T, int n_in, int n_out, bool out_f32)
{
    CUBLAS_CHECK(cublasLtMatrixLayoutInit(&l->a, CUDA_R_16F, (uint64_t)n_in, (uint64_t)n_out, n_in));
    CUBLAS_CHECK(cublasLtMatrixLayoutInit(&l->b, CUDA_R_16F, (uint64_t)n_in, (uint64_t)T, n_in));
    CUBLAS_CHECK(cublasLtMatrixLayoutInit(&l->c, out_f32 ? CUDA_R_32F : CUDA_R_16F,
                                          (uint64_t)n_out, (uint64_t)T, n_out));
}

static cublasStatus_t lt_matmul(gemm_lt_inv *g, const cublasLtMatmulAlgo_t *algo, void *out,
                                bool out_f32, const void *x, const void *w, int T, int n_in,
                                int n_out)
{
    lt_layouts l;
    layouts_init(&l, T, n_in, n_out, out_f32);
    const float one = 1.0f, zero = 0.0f;
    return cublasLtMatmul(g->handle, &g->desc[out_f32], &one, w, &l.a, x, &l.b, &zero, out, &l.c,
                          out, &l.c, algo, g->workspace, g->workspace_bytes, g->stream);
}

static uint32_t algo_attr(const cublasLtMatmulAlgo_t *a, cublasLtMatmulAlgoConfigAttributes_t at)
{
    uint32_t v = 0;
    size_t written = 0;
    if (cublasLtMatmulAlgoConfigGetAttribute(a, at, &v, sizeof v, &written) !=
        CUBLAS_STATUS_SUCCESS)
        return UINT32_MAX;
    return v;
}

/* The first split-K-free result of a heuristic query for T rows, with or
 * without the preference that filters out split-K (reduction schemes
 * mask 0); false when there is none. */
static bool query_algo(gemm_lt_inv *g, int T, int n_in, int n_out, bool out_f32, bool no_split,
                       cublasLtMatmulAlgo_t *algo)
{
    lt_layouts l;
    layouts_init(&l, T, n_in, n_out, out_f32);
    cublasLtMatmulPreferenceOpaque_t pref;
    CUBLAS_CHECK(cublasLtMatmulPreferenceInit(&pref));
    const uint64_t ws = g->workspace_bytes;
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(&pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                      &ws, sizeof ws));
    /* rows of x and out start 16-byte aligned, not 256 (the default) */
    const uint32_t align = 16;
    const cublasLtMatmulPreferenceAttributes_t aligns[] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++)
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(&pref, aligns[i], &align, sizeof align));
    if (no_split) {
        const uint32_t mask = 0;
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
            &pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &mask, sizeof mask));
    }
    cublasLtMatmulHeuristicResult_t res[LT_HEURISTICS];
    int n = 0;
    cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(g->handle, &g->desc[out_f32], &l.a, &l.b,
                                                      &l.c, &l.c, &pref, LT_HEURISTICS, res, &n);
    if (s != CUBLAS_STATUS_SUCCESS)
        return false; /* NOT_SUPPORTED: no algorithm at all for the query */
    for (int i = 0; i < n; i++) {
        if (res[i].state != CUBLAS_STATUS_SUCCESS)
            continue;
        if (algo_attr(&res[i].algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM) != 1 ||
            algo_attr(&res[i].algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME) !=
                CUBLASLT_REDUCTION_SCHEME_NONE)
            continue;
        *algo = res[i].algo;
        return true;
    }
    return false;
}

/* The heuristic's best algorithm without split-K for T rows (small
 * steps of shapes with few outputs or a long n_in get only split-K
 * offers without the filter); false when there is none. */
static bool pick_algo(gemm_lt_inv *g, int T, int n_in, int n_out, bool out_f32,
                      cublasLtMatmulAlgo_t *algo)
{
    return query_algo(g, T, n_in, n_out, out_f32, true, algo) ||
           query_algo(g, T, n_in, n_out, out_f32, false, algo);
}

/* Random fp16 bits of both signs in [0.125, 1): values that keep every
 * sum far from overflow and exercise every mantissa bit. */
static void random_halves(uint16_t *h, size_t n, uint32_t seed)
{
    uint32_t s = seed * 2654435761u + 1u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        uint32_t r = s >> 8;
        h[i] = (uint16_t)(((r >> 20) & 1u) << 15 | (12u + (r >> 10) % 3u) << 10 | (r & 0x3FFu));
    }
}

typedef struct check_bufs {
    void *x, *ref, *out;
    char *h_ref, *h_out;
    size_t out_row; /* bytes of an output row */
} check_bufs;

/* out of algo for rows [first, first + T) of the check rows equals the
 * reference's rows; false on a difference or a failed call. */
static bool same_rows(gemm_lt_inv *g, const lt_plan *p, const cublasLtMatmulAlgo_t *algo,
                      const void *w, check_bufs *cb, int first, int T)
{
    const void *x = (const char *)cb->x + (size_t)first * (size_t)p->n_in * 2;
    if (lt_matmul(g, algo, cb->out, p->out_f32, x, w, T, p->n_in, p->n_out) !=
        CUBLAS_STATUS_SUCCESS)
        return false;
    size_t bytes = (size_t)T * cb->out_row;
    CUDA_CHECK(cudaMemcpyAsync(cb->h_out, cb->out, bytes, cudaMemcpyDeviceToHost, g->stream));
    CUDA_CHECK(cudaStreamSynchronize(g->stream));
    return memcmp(cb->h_out, cb->h_ref + (size_t)first * cb->out_row, bytes) == 0;
}

/* Every distinct algorithm of the plan gives the reference's bits on all
 * check rows, on one row alone and on a few rows at an offset; sets
 * p->chain where the chain kernel gives them too. */
static bool check_plan(gemm_lt_inv *g, lt_plan *p, const void *w)
{
    const size_t in_bytes = (size_t)LT_CHECK_ROWS * (size_t)p->n_in * 2;
    check_bufs cb = {0};
    cb.out_row = (size_t)p->n_out * (p->out_f32 ? 4 : 2);
    const size_t out_bytes = (size_t)LT_CHECK_ROWS * cb.out_row;
    uint16_t *hx = malloc(in_bytes);
    cb.h_ref = malloc(out_bytes);
    cb.h_out = malloc(out_bytes);
    if (!hx || !cb.h_ref || !cb.h_out)
        vb_cuda_fail("host", "malloc", "out of memory for the invariant GEMM's check", __FILE__,
                     __LINE__);
    random_halves(hx, in_bytes / 2, (uint32_t)(p->n_in * 31 + p->n_out));
    CUDA_CHECK(cudaMalloc(&cb.x, in_bytes));
    CUDA_CHECK(cudaMalloc(&cb.ref, out_bytes));
    CUDA_CHECK(cudaMalloc(&cb.out, out_bytes));
    CUDA_CHECK(cudaMemcpyAsync(cb.x, hx, in_bytes, cudaMemcpyHostToDevice, g->stream));
    bool ok = lt_matmul(g, &p->algo[0], cb.ref, p->out_f32, cb.x, w, LT_CHECK_ROWS, p->n_in,
                        p->n_out) == CUBLAS_STATUS_SUCCESS;
    if (ok) {
        CUDA_CHECK(cudaMemcpyAsync(cb.h_ref, cb.ref, out_bytes, cudaMemcpyDeviceToHost, g->stream));
        CUDA_CHECK(cudaStreamSynchronize(g->stream));
    }
    for (int b = 0; ok && b < LT_BUCKETS; b++) {
        bool seen = false;
        for (int e = 0; e < b && !seen; e++)
            seen = memcmp(&p->algo[e], &p->algo[b], sizeof p->algo[b]) == 0;
        if (seen)
            continue;
        ok = same_rows(g, p, &p->algo[b], w, &cb, 0, LT_CHECK_ROWS) &&
             same_rows(g, p, &p->algo[b], w, &cb, 0, 1) &&
             same_rows(g, p, &p->algo[b], w, &cb, 37, 1) &&
             same_rows(g, p, &p->algo[b], w, &cb, 5, 7) &&
             same_rows(g, p, &p->algo[b], w, &cb, 19, 33);
    }
    /* the chain kernel for steps of up to 8 rows: used where its bits are
     * the algorithms' (a difference costs speed, not the guarantee) */
    const int chain_rows[][2] = {{0, 1}, {37, 1}, {5, 7}, {19, 8}, {56, 8}};
    p->chain = ok && vb_gemm_chain_supported(1, p->n_in, p->n_out, cb.x, w);
    for (size_t i = 0; p->chain && i < sizeof chain_rows / sizeof chain_rows[0]; i++) {
        const int first = chain_rows[i][0], T = chain_rows[i][1];
        const void *x = (const char *)cb.x + (size_t)first * (size_t)p->n_in * 2;
        CUDA_CHECK(vb_gemm_chain(cb.out, p->out_f32, x, w, T, p->n_in, p->n_out, g->stream));
        const size_t bytes = (size_t)T * cb.out_row;
        CUDA_CHECK(cudaMemcpyAsync(cb.h_out, cb.out, bytes, cudaMemcpyDeviceToHost, g->stream));
        CUDA_CHECK(cudaStreamSynchronize(g->stream));
        p->chain = memcmp(cb.h_out, cb.h_ref + (size_t)first * cb.out_row, bytes) == 0;
    }
    if (ok && !p->chain)
        vb_info("--batch-invariant: the %d x %d projection's small steps run on cuBLASLt (the "
                "chain kernel is not bit-identical to it here)", p->n_in, p->n_out);
    CUDA_CHECK(cudaFree(cb.x));
    CUDA_CHECK(cudaFree(cb.ref));
    CUDA_CHECK(cudaFree(cb.out));
    free(hx);
    free(cb.h_ref);
    free(cb.h_out);
    return ok;
}

static lt_plan *find_plan(gemm_lt_inv *g, int n_in, int n_out, bool out_f32)
{
    for (int i = 0; i < g->n_plans; i++)
        if (g->plans[i].n_in == n_in && g->plans[i].n_out == n_out &&
            g->plans[i].out_f32 == out_f32)
            return &g->plans[i];
    return NULL;
}

bool gemm_lt_inv_prepare(gemm_lt_inv *g, const void *w, int n_in, int n_out, bool out_f32)
{
    lt_plan *p = find_plan(g, n_in, n_out, out_f32);
    if (p)
        return p->accepted;
    enum cudaStreamCaptureStatus cs;
    CUDA_CHECK(cudaStreamIsCapturing(g->stream, &cs));
    if (cs != cudaStreamCaptureStatusNone)
        vb_cuda_fail("CUDA", "gemm_lt_inv_prepare",
                     "--batch-invariant: a projection shape first seen inside a CUDA graph "
                     "capture (its plan needs the stream)", __FILE__, __LINE__);
    if (g->n_plans == g->cap_plans) {
        int cap = g->cap_plans ? 2 * g->cap_plans : 8;
        lt_plan *np = realloc(g->plans, (size_t)cap * sizeof *np);
        if (!np)
            vb_cuda_fail("host", "realloc", "out of memory for the invariant GEMM's plans",
                         __FILE__, __LINE__);
        g->plans = np;
        g->cap_plans = cap;
    }
    p = &g->plans[g->n_plans++];
    memset(p, 0, sizeof *p);
    p->n_in = n_in;
    p->n_out = n_out;
    p->out_f32 = out_f32;
    /* each bucket's own algorithm; a bucket without one borrows the
     * nearest larger bucket's (else the nearest smaller's): every
     * algorithm of the plan is checked to give the same bits anyway */
    bool have[LT_BUCKETS] = {false}, any = false;
    if (n_in % 8 == 0 && n_out % 8 == 0)
        for (int b = 0; b < LT_BUCKETS; b++)
            any |= have[b] = pick_algo(g, 1 << b, n_in, n_out, out_f32, &p->algo[b]);
    for (int b = 0; any && b < LT_BUCKETS; b++) {
        if (have[b])
            continue;
        int from = -1;
        for (int e = b + 1; e < LT_BUCKETS && from < 0; e++)
            if (have[e])
                from = e;
        for (int e = b - 1; e >= 0 && from < 0; e--)
            if (have[e])
                from = e;
        p->algo[b] = p->algo[from];
    }
    const char *why = NULL;
    if (!any)
        why = "cuBLASLt offers no split-K-free algorithm for it";
    else if (!check_plan(g, p, w))
        why = "cuBLASLt's split-K-free algorithms do not give the same bits for it";
    p->accepted = !why;
    if (why)
        vb_info("--batch-invariant: the %d x %d projection (%s out) runs on the fixed-order "
                "kernel (slower on large steps, the same guarantee): %s",
                n_in, n_out, out_f32 ? "fp32" : "fp16", why);
    return p->accepted;
}

static int bucket_of(int T)
{
    int b = 0;
    while (b < LT_BUCKETS - 1 && (1 << b) < T)
        b++;
    return b;
}

bool gemm_lt_inv_run(gemm_lt_inv *g, void *out, bool out_f32, const void *x, const void *w, int T,
                     int n_in, int n_out)
{
    const lt_plan *p = find_plan(g, n_in, n_out, out_f32);
    if (!p || !p->accepted)
        return false;
    if (p->chain && T <= 8) {
        CUDA_CHECK(vb_gemm_chain(out, out_f32, x, w, T, n_in, n_out, g->stream));
        return true;
    }
    int b = bucket_of(T);
    cublasStatus_t s = lt_matmul(g, &p->algo[b], out, out_f32, x, w, T, n_in, n_out);
    /* an algorithm that does not take this T (not seen on an H200): any
     * other of the plan's, all checked to give the same bits */
    for (int e = 0; s == CUBLAS_STATUS_NOT_SUPPORTED && e < LT_BUCKETS; e++)
        if (e != b)
            s = lt_matmul(g, &p->algo[e], out, out_f32, x, w, T, n_in, n_out);
    CUBLAS_CHECK(s);
    return true;
}

void gemm_lt_inv_counts(const gemm_lt_inv *g, int *prepared, int *accepted, int *chain)
{
    *prepared = g->n_plans;
    *accepted = *chain = 0;
    for (int i = 0; i < g->n_plans; i++) {
        *accepted += g->plans[i].accepted;
        *chain += g->plans[i].accepted && g->plans[i].chain;
    }
}

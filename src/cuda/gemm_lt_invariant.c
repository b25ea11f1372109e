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
    bool chain_silu; /* and as the MLP's gate/up on vb_gemm_chain_silu (checked too) */
    cublasLtMatmulAlgo_t algo[LT_BUCKETS];
} lt_plan;

struct gemm_lt_inv {
    cudaStream_t stream;
    cublasLtHandle_t handle;
    cublasLtMatmulDescOpaque_t desc; /* fp32 compute; the output type is the layouts' */
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
    desc_init(&g->desc);
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
    return cublasLtMatmul(g->handle, &g->desc, &one, w, &l.a, x, &l.b, &zero, out, &l.c,
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

/* Appends the split-K-free results of a heuristic query for T rows that
 * cand[0..n) lacks, up to max; with no_split, the query filters out
 * split-K itself (reduction schemes mask 0: small steps of shapes with
 * few outputs or a long n_in get little else from an unfiltered one).
 * Returns the new count. */
static int query_algos(gemm_lt_inv *g, int T, const lt_plan *p, bool no_split,
                       cublasLtMatmulAlgo_t *cand, int n, int max)
{
    lt_layouts l;
    layouts_init(&l, T, p->n_in, p->n_out, p->out_f32);
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
    int got = 0;
    if (cublasLtMatmulAlgoGetHeuristic(g->handle, &g->desc, &l.a, &l.b, &l.c, &l.c,
                                       &pref, LT_HEURISTICS, res, &got) != CUBLAS_STATUS_SUCCESS)
        return n; /* NOT_SUPPORTED: no algorithm at all for the query */
    for (int i = 0; i < got && n < max; i++) {
        if (res[i].state != CUBLAS_STATUS_SUCCESS ||
            algo_attr(&res[i].algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM) != 1 ||
            algo_attr(&res[i].algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME) !=
                CUBLASLT_REDUCTION_SCHEME_NONE)
            continue;
        bool dup = false;
        for (int j = 0; j < n && !dup; j++)
            dup = memcmp(&cand[j], &res[i].algo, sizeof cand[j]) == 0;
        if (!dup)
            cand[n++] = res[i].algo;
    }
    return n;
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

/* The check's rows (LT_CHECK_ROWS random rows of x), the reference's
 * outputs for them (host) and room for a candidate's. */
typedef struct check_bufs {
    void *x, *out;
    char *h_x, *h_ref, *h_out;
    size_t out_row; /* bytes of an output row */
} check_bufs;

static void check_init(gemm_lt_inv *g, const lt_plan *p, check_bufs *cb)
{
    const size_t in_bytes = (size_t)LT_CHECK_ROWS * (size_t)p->n_in * 2;
    cb->out_row = (size_t)p->n_out * (p->out_f32 ? 4 : 2);
    const size_t out_bytes = (size_t)LT_CHECK_ROWS * cb->out_row;
    cb->h_x = malloc(in_bytes);
    cb->h_ref = malloc(out_bytes);
    cb->h_out = malloc(out_bytes);
    if (!cb->h_x || !cb->h_ref || !cb->h_out)
        vb_cuda_fail("host", "malloc", "out of memory for the invariant GEMM's check", __FILE__,
                     __LINE__);
    random_halves((uint16_t *)cb->h_x, in_bytes / 2, (uint32_t)(p->n_in * 31 + p->n_out));
    CUDA_CHECK(cudaMalloc(&cb->x, in_bytes));
    CUDA_CHECK(cudaMalloc(&cb->out, out_bytes));
    CUDA_CHECK(cudaMemcpyAsync(cb->x, cb->h_x, in_bytes, cudaMemcpyHostToDevice, g->stream));
}

static void check_free(check_bufs *cb)
{
    CUDA_CHECK(cudaFree(cb->x));
    CUDA_CHECK(cudaFree(cb->out));
    free(cb->h_x);
    free(cb->h_ref);
    free(cb->h_out);
}

/* One run of rows [first, first + T) of the check rows through algo (NULL:
 * the chain kernel, T <= 8), its output copied to h_out; false when the
 * call fails (an algorithm that does not take the shape). */
static bool run_rows(gemm_lt_inv *g, const lt_plan *p, const cublasLtMatmulAlgo_t *algo,
                     const void *w, check_bufs *cb, int first, int T)
{
    const void *x = (const char *)cb->x + (size_t)first * (size_t)p->n_in * 2;
    if (algo) {
        if (lt_matmul(g, algo, cb->out, p->out_f32, x, w, T, p->n_in, p->n_out) !=
            CUBLAS_STATUS_SUCCESS)
            return false;
    } else {
        CUDA_CHECK(vb_gemm_chain(cb->out, p->out_f32, x, w, T, p->n_in, p->n_out, g->stream));
    }
    CUDA_CHECK(cudaMemcpyAsync(cb->h_out, cb->out, (size_t)T * cb->out_row,
                               cudaMemcpyDeviceToHost, g->stream));
    CUDA_CHECK(cudaStreamSynchronize(g->stream));
    return true;
}

/* The reference's outputs of all check rows: the chain kernel in steps
 * of 8 rows (algo NULL), or algo in one step. */
static bool make_reference(gemm_lt_inv *g, const lt_plan *p, const cublasLtMatmulAlgo_t *algo,
                           const void *w, check_bufs *cb)
{
    const int step = algo ? LT_CHECK_ROWS : VB_GEMM_CHAIN_MAX_T;
    for (int first = 0; first < LT_CHECK_ROWS; first += step) {
        if (!run_rows(g, p, algo, w, cb, first, step))
            return false;
        memcpy(cb->h_ref + (size_t)first * cb->out_row, cb->h_out, (size_t)step * cb->out_row);
    }
    return true;
}

/* algo (NULL: the chain kernel) gives the reference's bits on all check
 * rows (not for the chain kernel: at most 8 rows a step), on one row
 * alone, twice at other offsets, and on a few rows at an offset. */
static bool matches_reference(gemm_lt_inv *g, const lt_plan *p, const cublasLtMatmulAlgo_t *algo,
                              const void *w, check_bufs *cb)
{
    const int rows[][2] = {{0, LT_CHECK_ROWS}, {0, 1}, {37, 1}, {5, 7}, {19, 33}, {56, 8}};
    for (size_t i = algo ? 0 : 1; i < sizeof rows / sizeof rows[0]; i++) {
        const int first = rows[i][0];
        const int T = algo || rows[i][1] <= VB_GEMM_CHAIN_MAX_T ? rows[i][1] : VB_GEMM_CHAIN_MAX_T;
        if (!run_rows(g, p, algo, w, cb, first, T) ||
            memcmp(cb->h_out, cb->h_ref + (size_t)first * cb->out_row, (size_t)T * cb->out_row))
            return false;
    }
    return true;
}

/* Each tile of the chain kernel, forced, on all check rows (8 a step),
 * gives want's bits: the plain kernel, or with silu the gate/up kernel
 * (vb_gemm_chain_silu) with w as both matrices. The launcher picks the
 * tile by the grid's size, and a fused launch (q, k and v, or gate and
 * up) may pick another than the shape alone would. */
static bool chain_tiles_give(gemm_lt_inv *g, const lt_plan *p, const void *w, check_bufs *cb,
                             const char *want, bool silu)
{
    const int tiles[] = {VB_CHAIN_TILE_NARROW, VB_CHAIN_TILE_WIDE, VB_CHAIN_TILE_DEEP};
    const vb_chain_seg seg = {w, NULL, cb->out, p->n_out};
    const size_t step = (size_t)VB_GEMM_CHAIN_MAX_T * cb->out_row;
    for (size_t i = 0; i < sizeof tiles / sizeof tiles[0]; i++)
        for (int first = 0; first < LT_CHECK_ROWS; first += VB_GEMM_CHAIN_MAX_T) {
            const void *x = (const char *)cb->x + (size_t)first * (size_t)p->n_in * 2;
            if (silu)
                CUDA_CHECK(vb_gemm_chain_silu(cb->out, x, w, w, VB_GEMM_CHAIN_MAX_T, p->n_in,
                                              p->n_out, tiles[i], g->stream));
            else
                CUDA_CHECK(vb_gemm_chain_multi(&seg, 1, p->out_f32, x, VB_GEMM_CHAIN_MAX_T,
                                               p->n_in, tiles[i], g->stream));
            CUDA_CHECK(cudaMemcpyAsync(cb->h_out, cb->out, step, cudaMemcpyDeviceToHost,
                                       g->stream));
            CUDA_CHECK(cudaStreamSynchronize(g->stream));
            if (memcmp(cb->h_out, want + (size_t)first * cb->out_row, step))
                return false;
        }
    return true;
}

/* The gate/up kernel gives, on all check rows and with each tile, the
 * bits vb_silu_gate_f16 makes of the reference's rows (fp16 out only). */
static bool chain_silu_agrees(gemm_lt_inv *g, const lt_plan *p, const void *w, check_bufs *cb)
{
    const size_t bytes = (size_t)LT_CHECK_ROWS * cb->out_row;
    void *d_ref;
    char *want = malloc(bytes);
    if (!want)
        vb_cuda_fail("host", "malloc", "out of memory for the invariant GEMM's check", __FILE__,
                     __LINE__);
    CUDA_CHECK(cudaMalloc(&d_ref, bytes));
    CUDA_CHECK(cudaMemcpyAsync(d_ref, cb->h_ref, bytes, cudaMemcpyHostToDevice, g->stream));
    CUDA_CHECK(vb_silu_gate_f16(d_ref, d_ref, d_ref, bytes / 2, g->stream));
    CUDA_CHECK(cudaMemcpyAsync(want, d_ref, bytes, cudaMemcpyDeviceToHost, g->stream));
    CUDA_CHECK(cudaStreamSynchronize(g->stream));
    CUDA_CHECK(cudaFree(d_ref));
    const bool same = chain_tiles_give(g, p, w, cb, want, true);
    free(want);
    return same;
}

/* Fills p->algo[] with algorithms that match the reference in cb (each
 * bucket the first of its heuristic's split-K-free offers that does; a
 * bucket with none borrows the nearest larger bucket's, else the nearest
 * smaller's). Returns false when no bucket has one. */
static bool choose_algos(gemm_lt_inv *g, lt_plan *p, const void *w, check_bufs *cb,
                         const cublasLtMatmulAlgo_t *cand_all[LT_BUCKETS], const int *n_cand)
{
    bool have[LT_BUCKETS] = {false}, any = false;
    /* verdicts so far: the buckets' offers overlap */
    cublasLtMatmulAlgo_t seen[LT_BUCKETS * LT_HEURISTICS];
    bool seen_ok[LT_BUCKETS * LT_HEURISTICS];
    int n_seen = 0;
    for (int b = 0; b < LT_BUCKETS; b++) {
        for (int i = 0; i < n_cand[b] && !have[b]; i++) {
            const cublasLtMatmulAlgo_t *a = &cand_all[b][i];
            int j = 0;
            while (j < n_seen && memcmp(&seen[j], a, sizeof *a) != 0)
                j++;
            if (j == n_seen) {
                seen[n_seen] = *a;
                seen_ok[n_seen++] = matches_reference(g, p, a, w, cb);
            }
            if (seen_ok[j]) {
                p->algo[b] = *a;
                have[b] = true;
            }
        }
        any |= have[b];
    }
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
    return any;
}

/* The plan: the reference is the chain kernel's bits where it runs and
 * is itself position-independent on the check (then it also takes the
 * steps of up to 8 rows), else the first algorithm of the largest bucket
 * that runs. Returns NULL, or why the shape is not taken. */
static const char *make_plan(gemm_lt_inv *g, lt_plan *p, const void *w)
{
    if (p->n_in % 8 || p->n_out % 8)
        return "its sizes are not multiples of 8";
    cublasLtMatmulAlgo_t cand[LT_BUCKETS][LT_HEURISTICS];
    const cublasLtMatmulAlgo_t *cand_all[LT_BUCKETS];
    int n_cand[LT_BUCKETS], total = 0;
    for (int b = 0; b < LT_BUCKETS; b++) {
        n_cand[b] = query_algos(g, 1 << b, p, true, cand[b], 0, LT_HEURISTICS);
        n_cand[b] = query_algos(g, 1 << b, p, false, cand[b], n_cand[b], LT_HEURISTICS);
        cand_all[b] = cand[b];
        total += n_cand[b];
    }
    if (!total)
        return "cuBLASLt offers no split-K-free algorithm for it";
    check_bufs cb = {0};
    check_init(g, p, &cb);
    const char *why = NULL;
    p->chain = vb_gemm_chain_supported(1, p->n_in, p->n_out, cb.x, w) &&
               make_reference(g, p, NULL, w, &cb) && matches_reference(g, p, NULL, w, &cb) &&
               chain_tiles_give(g, p, w, &cb, cb.h_ref, false);
    p->chain_silu = p->chain && !p->out_f32 && chain_silu_agrees(g, p, w, &cb);
    if (!p->chain || !choose_algos(g, p, w, &cb, cand_all, n_cand)) {
        if (p->chain)
            vb_info("--batch-invariant: the %d x %d projection: no cuBLASLt algorithm gives the "
                    "chain kernel's bits; its small steps run on cuBLASLt too",
                    p->n_in, p->n_out);
        p->chain = p->chain_silu = false;
        bool have_ref = false;
        for (int b = LT_BUCKETS - 1; b >= 0 && !have_ref; b--)
            for (int i = 0; i < n_cand[b] && !have_ref; i++)
                have_ref = make_reference(g, p, &cand[b][i], w, &cb);
        if (!have_ref || !choose_algos(g, p, w, &cb, cand_all, n_cand))
            why = "cuBLASLt's split-K-free algorithms do not give the same bits for it";
    }
    check_free(&cb);
    return why;
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
    const char *why = make_plan(g, p, w);
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
    if (p->chain && T <= VB_GEMM_CHAIN_MAX_T) {
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

bool gemm_lt_inv_run_qkv(gemm_lt_inv *g, void *const out[3], const void *x,
                         const void *const w[3], const void *const bias[3], int T, int n_in,
                         const int n_out[3], const vb_gemv_rope *rope)
{
    if (T < 1 || T > VB_GEMM_CHAIN_MAX_T || (uintptr_t)x % 16)
        return false;
    vb_chain_seg segs[3];
    for (int i = 0; i < 3; i++) {
        if (!gemm_lt_inv_prepare(g, w[i], n_in, n_out[i], false))
            return false;
        const lt_plan *p = find_plan(g, n_in, n_out[i], false);
        if (!p->chain || ((uintptr_t)w[i] | (uintptr_t)out[i]) % 16)
            return false;
        segs[i] = (vb_chain_seg){w[i], bias[i], out[i], n_out[i]};
    }
    if (rope) {
        if (rope->head_dim % 16 || n_out[0] % rope->head_dim ||
            n_out[1] != rope->kv_heads * rope->head_dim || n_out[2] != n_out[1])
            return false;
        CUDA_CHECK(vb_gemm_chain_qkv_rope(segs, x, T, n_in, rope, VB_CHAIN_TILE_AUTO, g->stream));
    } else {
        CUDA_CHECK(vb_gemm_chain_multi(segs, 3, 0, x, T, n_in, VB_CHAIN_TILE_AUTO, g->stream));
    }
    return true;
}

bool gemm_lt_inv_run_gate_up(gemm_lt_inv *g, void *out, const void *x, const void *w_gate,
                             const void *w_up, int T, int n_in, int n_out)
{
    if (T < 1 || T > VB_GEMM_CHAIN_MAX_T ||
        ((uintptr_t)x | (uintptr_t)w_gate | (uintptr_t)w_up | (uintptr_t)out) % 16 ||
        !gemm_lt_inv_prepare(g, w_gate, n_in, n_out, false) ||
        !find_plan(g, n_in, n_out, false)->chain_silu)
        return false;
    CUDA_CHECK(vb_gemm_chain_silu(out, x, w_gate, w_up, T, n_in, n_out, VB_CHAIN_TILE_AUTO,
                                  g->stream));
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

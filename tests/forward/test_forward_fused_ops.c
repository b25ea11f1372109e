/* forward.c's use of the optional fused ops that fold the residual
 * stream's RMSNorm into the projections around it (backend.h:
 * matmul_resid, and a vb_norm_in given to matmul_qkv_rope and
 * matmul_gate_up; the CUDA backend's VB_NORM_FUSION=1). A shim over the
 * CPU backend implements them with the CPU's own ops in the unfused order,
 * so every way forward.c may mix them must give the plain CPU forward's
 * logits bit for bit: all accepted, the norms declined (the rmsnorm then
 * runs without an add), the residual adds declined (only layer 0's norm
 * folds in: nothing is pending there), and the plain path. Counters show
 * forward took the fused ops where it could. A prompt in two chunks, then
 * decode steps. Model: tests/forward/fixtures/qwen2_tied. */
#include <stdlib.h>

#include "cpu/cpu_backend.h"
#include "forward/forward.h"
#include "harness.h"
#include "model/model_load.h"

static const char *model_dir;
static model_config cfg;
static tp_plan plan;
static model_weights w;

static vb_backend *base; /* the CPU backend the shim's ops call */
static struct {
    bool resid, norm; /* accept matmul_resid; accept a norm */
    long n_resid, n_norm_qkv, n_norm_gate_up;
} shim;

static float *scratch(size_t n)
{
    return base->alloc(base, n * sizeof(float));
}

/* resid += x w^T: the projection, then rmsnorm's own add (its normalised
 * output goes nowhere) */
static bool shim_matmul_resid(vb_backend *b, void *resid, const void *x, const void *wt, int T,
                              int n_in, int n_out)
{
    (void)b;
    if (!shim.resid)
        return false;
    float *proj = scratch((size_t)T * n_out), *junk = scratch((size_t)T * n_out),
          *ones = scratch((size_t)n_out);
    for (int i = 0; i < n_out; i++)
        ones[i] = 1.0f;
    base->matmul(base, proj, x, wt, NULL, T, n_in, n_out);
    base->rmsnorm(base, junk, resid, proj, ones, T, n_out, 1e-6f);
    base->free(base, proj);
    base->free(base, junk);
    base->free(base, ones);
    shim.n_resid++;
    return true;
}

static float *normed(const vb_norm_in *norm, int T, int n_in)
{
    float *h = scratch((size_t)T * n_in);
    base->rmsnorm(base, h, (void *)norm->resid, NULL, norm->w, T, n_in, norm->eps);
    return h;
}

static bool shim_matmul_qkv_rope(vb_backend *b, void *const out[3], const void *x,
                                 const void *const wt[3], const void *const bias[3], int T,
                                 int n_in, const int n_out[3], void *k_cache, void *v_cache,
                                 const void *inv_freq, float cos_sin_scale, int kv_heads,
                                 int head_dim, int block_size, const vb_norm_in *norm)
{
    (void)b;
    (void)x;
    if (!norm || !shim.norm)
        return false;
    float *h = normed(norm, T, n_in);
    for (int i = 0; i < 3; i++)
        base->matmul(base, out[i], h, wt[i], bias[i], T, n_in, n_out[i]);
    base->rope_kv_write(base, out[0], out[1], out[2], k_cache, v_cache, inv_freq, cos_sin_scale,
                        n_out[0] / head_dim, kv_heads, head_dim, block_size);
    base->free(base, h);
    shim.n_norm_qkv++;
    return true;
}

static bool shim_matmul_gate_up(vb_backend *b, void *out, const void *x, const void *w_gate,
                                const void *w_up, int T, int n_in, int n_out,
                                const vb_norm_in *norm)
{
    (void)b;
    (void)x;
    if (!norm || !shim.norm)
        return false;
    float *h = normed(norm, T, n_in), *up = scratch((size_t)T * n_out);
    base->matmul(base, out, h, w_gate, NULL, T, n_in, n_out);
    base->matmul(base, up, h, w_up, NULL, T, n_in, n_out);
    base->silu_gate(base, out, out, up, (size_t)T * n_out);
    base->free(base, h);
    base->free(base, up);
    shim.n_norm_gate_up++;
    return true;
}

/* A 19-token prompt in chunks of 12 and 7, then 6 decode steps of its
 * greedy tokens; returns every step's last-row logits (caller frees). */
static float *run(vb_backend *b, int *n_rows)
{
    static const int32_t A[] = {5, 17, 42, 99, 3, 250, 7, 8, 9, 10, 11, 300, 1, 2, 3, 4, 5, 6, 7};
    const int nA = (int)(sizeof A / sizeof A[0]), steps = 2 + 6, V = plan.vocab_local;
    vb_err err;
    vb_kv_cache kv;
    forward_state fs;
    step_batch sb;
    CHECK(kv_cache_alloc(&kv, b, cfg.n_layers, 16, 4, plan.kv_heads_local, cfg.head_dim, &err) ==
          0);
    CHECK(forward_init(&fs, b, &cfg, &plan, &w, 32, &err) == 0);
    CHECK(step_batch_init(&sb, 1, 32, 16) == 0);
    int32_t bt[8] = {3, 0, 6, 1, 7, 2, 5, 4}, seq[64];
    memcpy(seq, A, sizeof A);
    float *out = malloc(sizeof(float) * (size_t)steps * V);
    int len = 0; /* tokens in seq */
    for (int s = 0; s < steps; s++) {
        /* the prompt's two chunks, then the token the step before chose */
        int start = s == 0 ? 0 : s == 1 ? 12 : len - 1, cnt = s == 0 ? 12 : s == 1 ? nA - 12 : 1;
        step_batch_clear(&sb);
        step_batch_add_seq(&sb, seq + start, cnt, start, bt, (start + cnt + 3) / 4);
        const float *logits = forward_step(&fs, &sb, &kv);
        CHECK(logits != NULL);
        if (!logits)
            break;
        memcpy(out + (size_t)s * V, logits, sizeof(float) * V);
        if (s == 0) {
            len = nA;
            continue; /* mid-prompt: no token */
        }
        int best = 0;
        for (int i = 1; i < V; i++)
            best = logits[i] > logits[best] ? i : best;
        seq[len++] = best; /* the next step's input */
    }
    step_batch_free(&sb);
    forward_free(&fs);
    kv_cache_free(&kv, b);
    *n_rows = steps;
    return out;
}

static void test_fused_ops_give_the_same_bits(void)
{
    int rows = 0;
    float *want = run(base, &rows);
    size_t bytes = sizeof(float) * (size_t)rows * plan.vocab_local;
    vb_backend s = *base; /* the CPU's ops and state, plus the fused ones */
    s.matmul_resid = shim_matmul_resid;
    s.matmul_qkv_rope = shim_matmul_qkv_rope;
    s.matmul_gate_up = shim_matmul_gate_up;
    const int L = cfg.n_layers;
    const struct {
        bool resid, norm;
        long n_resid, n_qkv, n_gate_up; /* per step */
        const char *what;
    } cases[] = {
        {true, true, 2L * L, L, L, "residual adds and norms folded in"},
        {true, false, 2L * L, 0, 0, "residual adds only: each norm then without an add"},
        {false, true, 0, 1, 0, "norms only: layer 0's, where nothing is pending"},
        {false, false, 0, 0, 0, "neither (every op declines)"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        memset(&shim, 0, sizeof shim);
        shim.resid = cases[c].resid;
        shim.norm = cases[c].norm;
        int n = 0;
        float *got = run(&s, &n);
        printf("  %-52s resid %ld, qkv %ld, gate/up %ld\n", cases[c].what, shim.n_resid,
               shim.n_norm_qkv, shim.n_norm_gate_up);
        CHECK_INT_EQ(n, rows);
        CHECK(memcmp(want, got, bytes) == 0);
        CHECK_INT_EQ(shim.n_resid, cases[c].n_resid * rows);
        CHECK_INT_EQ(shim.n_norm_qkv, cases[c].n_qkv * rows);
        CHECK_INT_EQ(shim.n_norm_gate_up, cases[c].n_gate_up * rows);
        free(got);
    }
    free(want);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return test_skip("usage: test_forward_fused_ops MODEL_DIR");
    model_dir = argv[1];
    vb_err err = {{0}};
    if (model_config_load(&cfg, model_dir, &err) || tp_plan_make(&plan, &cfg, 1, 0, &err) ||
        model_load_cpu(&w, &cfg, &plan, model_dir, &err)) {
        fprintf(stderr, "%s: %s\n", model_dir, err.msg);
        return 1;
    }
    if (cfg.qk_norm) {
        fprintf(stderr, "%s: a model without a q/k norm is needed (the q/k/v op is skipped)\n",
                model_dir);
        return 1;
    }
    base = cpu_backend_create(2, MPI_COMM_NULL, 1);
    RUN_TEST(test_fused_ops_give_the_same_bits);
    base->destroy(base);
    model_weights_free(&w);
    return test_summary();
}

/* int8 on a real trained model (issue #21): teacher-forced next-token
 * argmax agreement of --kv-cache-dtype int8, --quantize int8 and both
 * together with the unquantized run.
 *
 *   test_int8_agreement MODEL_DIR GREEDY_JSONL [NEW_TOKENS [MIN_PERCENT]]
 *
 * For every row of GREEDY_JSONL (its "prompt_ids"; tests/run/fixtures/
 * smollm2/greedy.jsonl) the CPU backend, fp32 weights and cache, first
 * extends the prompt by NEW_TOKENS (default 160) greedy tokens, so the
 * check also covers contexts a few hundred positions long. Then each
 * whole sequence goes through one step with every position's logits, once
 * unquantized and once per variant (the int8 cache written by that same
 * step's rope_kv_write and read back by its attention; the weights made
 * int8 at load as generate --quantize int8 makes them), and the argmaxes
 * are compared at every position. The issue asks for >= 97 %, the default
 * MIN_PERCENT, judged on the default run (2,872 positions); the figures
 * and the logits' relative L2 error are printed for RESULTS.md. CI's
 * shorter run (fewer positions, more noise: --quantize int8 96.98 % of
 * 696 against 97.70 % of 2,872) guards at a lower MIN_PERCENT, far above
 * what a broken quantizer gives. Needs no GPU; the wrapper
 * (test_quant_smollm2.sh) makes the model. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_backend.h"
#include "forward/forward.h"
#include "harness.h"
#include "model/model_load.h"
#include "model/quant_config.h"
#include "mpi/dist.h"
#include "util/env.h"

#define BLOCK 16
#define MAX_ROWS 64
#define MIN_AGREEMENT_PERCENT 97.0

typedef struct engine {
    vb_backend *b;
    forward_state fs;
    vb_kv_cache kv;
    step_batch sb;
} engine;

static int engine_init(engine *e, vb_kv_dtype dtype, const model_config *cfg, const tp_plan *plan,
                       const model_weights *w, int threads, int n_blocks, int max_tokens,
                       int max_blocks)
{
    vb_err err = {{0}};
    e->b = cpu_backend_create(threads, MPI_COMM_NULL, 1);
    if (!e->b)
        return -1;
    e->b->kv_dtype = dtype;
    if (kv_cache_alloc(&e->kv, e->b, cfg->n_layers, n_blocks, BLOCK, plan->kv_heads_local,
                       cfg->head_dim, &err) ||
        forward_init(&e->fs, e->b, cfg, plan, w, max_tokens, &err) ||
        step_batch_init(&e->sb, MAX_ROWS, max_tokens, max_blocks)) {
        fprintf(stderr, "  %s\n", err.msg);
        return -1;
    }
    return 0;
}

static void engine_free(engine *e)
{
    step_batch_free(&e->sb);
    forward_free(&e->fs);
    kv_cache_free(&e->kv, e->b);
    e->b->destroy(e->b);
}

static int argmax(const float *row, int n)
{
    int best = 0;
    for (int j = 1; j < n; j++)
        if (row[j] > row[best])
            best = j;
    return best;
}

/* Row r's blocks: r * max_blocks onwards, so rows never share one. */
static void block_table(int32_t *bt, int r, int max_blocks)
{
    for (int i = 0; i < max_blocks; i++)
        bt[i] = r * max_blocks + i;
}

/* Greedy extension of every row by n_new tokens: the prompts in one step,
 * then one-token steps of all rows. */
static int extend_greedy(engine *e, int32_t **seq, int *len, int n_rows, int n_new, int vocab,
                         int max_blocks)
{
    int32_t bt[1024];
    for (int k = 0; k <= n_new; k++) {
        step_batch_clear(&e->sb);
        e->sb.all_logits = false;
        for (int r = 0; r < n_rows; r++) {
            block_table(bt, r, max_blocks);
            int pos0 = k == 0 ? 0 : len[r] - 1, cnt = k == 0 ? len[r] : 1;
            if (step_batch_add_seq(&e->sb, seq[r] + pos0, cnt, pos0, bt, max_blocks))
                return -1;
        }
        const float *logits = forward_step(&e->fs, &e->sb, &e->kv);
        if (!logits)
            return -1;
        if (k == n_new)
            break;
        for (int r = 0; r < n_rows; r++)
            seq[r][len[r]++] = argmax(logits + (size_t)r * vocab, vocab);
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const char *model_dir, *jsonl;
static int n_new = 160;
static double min_agreement = MIN_AGREEMENT_PERCENT / 100;

/* The unquantized model, the sequences and the reference engine, made
 * once for the three variants. */
static struct {
    bool ready;
    vb_tuning knobs;
    model_config cfg, cfg_q8;
    tp_plan plan;
    model_weights w, w_q8;
    int32_t *seq[MAX_ROWS];
    int len[MAX_ROWS], n_rows, max_len, max_blocks, max_tokens;
    engine ref;
} g;

/* Reads up to MAX_ROWS rows' prompt_ids, with room for n_new more tokens
 * each. Returns the row count. */
static int read_prompts(int32_t **seq, int *len, int *max_len)
{
    FILE *f = fopen(jsonl, "r");
    CHECK(f != NULL);
    int n_rows = 0;
    char line[65536];
    while (f && n_rows < MAX_ROWS && fgets(line, sizeof line, f)) {
        json_error_t je;
        json_t *row = json_loads(line, 0, &je);
        json_t *ids = json_object_get(row, "prompt_ids");
        int n = (int)json_array_size(ids);
        if (n > 0) {
            seq[n_rows] = malloc(sizeof(int32_t) * (size_t)(n + n_new));
            for (int i = 0; i < n; i++)
                seq[n_rows][i] = (int32_t)json_integer_value(json_array_get(ids, (size_t)i));
            len[n_rows] = n;
            *max_len = n + n_new > *max_len ? n + n_new : *max_len;
            n_rows++;
        }
        json_decref(row);
    }
    if (f)
        fclose(f);
    return n_rows;
}

/* Row r through one all-logits step on e; the logits, or NULL. */
static const float *whole_sequence(engine *e, const int32_t *seq, int len, int r, int max_blocks)
{
    int32_t bt[1024];
    block_table(bt, r, max_blocks);
    step_batch_clear(&e->sb);
    e->sb.all_logits = true;
    if (step_batch_add_seq(&e->sb, seq, len, 0, bt, max_blocks))
        return NULL;
    return forward_step(&e->fs, &e->sb, &e->kv);
}

/* Loads both models, reads the prompts and extends them greedily with
 * the unquantized engine. 0, or -1 after a failed check. */
static int setup(void)
{
    vb_err err = {{0}};
    if (vb_tuning_from_env(&g.knobs, &err) || model_config_load(&g.cfg, model_dir, &err) ||
        tp_plan_make(&g.plan, &g.cfg, 1, 0, &err) ||
        model_load_cpu(&g.w, &g.cfg, &g.plan, model_dir, &err)) {
        fprintf(stderr, "  %s\n", err.msg);
        CHECK(0);
        return -1;
    }
    g.cfg_q8 = g.cfg; /* as generate --quantize int8 loads it */
    if (quant_config_quantize(&g.cfg_q8.quant, VB_QUANTIZE_INT8, model_dir, &err) ||
        model_load_cpu(&g.w_q8, &g.cfg_q8, &g.plan, model_dir, &err)) {
        fprintf(stderr, "  %s\n", err.msg);
        CHECK(0);
        return -1;
    }
    g.n_rows = read_prompts(g.seq, g.len, &g.max_len);
    CHECK(g.n_rows > 0);
    g.max_blocks = (g.max_len + BLOCK - 1) / BLOCK;
    g.max_tokens = g.n_rows * g.max_len;
    if (g.n_rows == 0 || g.max_blocks > 1024 ||
        engine_init(&g.ref, VB_KV_ACT, &g.cfg, &g.plan, &g.w, g.knobs.cpu_threads,
                    g.n_rows * g.max_blocks, g.max_tokens, g.max_blocks)) {
        CHECK(0);
        return -1;
    }
    CHECK(extend_greedy(&g.ref, g.seq, g.len, g.n_rows, n_new, g.plan.vocab_local,
                        g.max_blocks) == 0);
    g.ready = true;
    return 0;
}

/* The three variants, each against the reference. */
enum { KV8, W8, BOTH, N_VARIANTS };
static const struct {
    const char *what;
    vb_kv_dtype kv;
    bool int8_weights;
} variant[N_VARIANTS] = {
    {"--kv-cache-dtype int8", VB_KV_INT8, false},
    {"--quantize int8", VB_KV_ACT, true},
    {"--quantize int8 --kv-cache-dtype int8", VB_KV_INT8, true},
};

typedef struct agreement_stats {
    long agree, compared;
    double *rel; /* per position: the logits' relative L2 error */
    int n_rel;
} agreement_stats;

static agreement_stats stats[N_VARIANTS];

/* Every row teacher-forced once on the reference and once on each
 * variant (the reference's logits for that row kept meanwhile), so the
 * reference runs once, not once a variant. 0, or -1 after a failed check. */
static int measure(void)
{
    if (setup())
        return -1;
    engine var[N_VARIANTS];
    for (int v = 0; v < N_VARIANTS; v++)
        if (engine_init(&var[v], variant[v].kv, variant[v].int8_weights ? &g.cfg_q8 : &g.cfg,
                        &g.plan, variant[v].int8_weights ? &g.w_q8 : &g.w, g.knobs.cpu_threads,
                        g.n_rows * g.max_blocks, g.max_tokens, g.max_blocks)) {
            CHECK(0);
            return -1;
        }
    size_t V = (size_t)g.plan.vocab_local;
    float *a = malloc(sizeof(float) * (size_t)g.max_len * V);
    for (int v = 0; v < N_VARIANTS; v++)
        stats[v].rel = malloc(sizeof(double) * (size_t)g.max_tokens);
    for (int r = 0; r < g.n_rows && a; r++) {
        const float *la = whole_sequence(&g.ref, g.seq[r], g.len[r], r, g.max_blocks);
        CHECK(la != NULL);
        if (!la)
            break;
        memcpy(a, la, sizeof(float) * (size_t)g.len[r] * V); /* the next step reuses the buffer */
        for (int v = 0; v < N_VARIANTS; v++) {
            agreement_stats *st = &stats[v];
            const float *lb = whole_sequence(&var[v], g.seq[r], g.len[r], r, g.max_blocks);
            CHECK(lb != NULL && st->rel != NULL);
            if (!lb || !st->rel)
                continue;
            for (int t = 0; t < g.len[r]; t++) {
                const float *x = a + (size_t)t * V, *y = lb + (size_t)t * V;
                st->agree += argmax(x, (int)V) == argmax(y, (int)V);
                st->compared++;
                double num = 0, den = 0;
                for (size_t j = 0; j < V; j++) {
                    num += ((double)x[j] - y[j]) * ((double)x[j] - y[j]);
                    den += (double)x[j] * x[j];
                }
                st->rel[st->n_rel++] = sqrt(num / (den > 0 ? den : 1));
            }
        }
    }
    free(a);
    for (int v = 0; v < N_VARIANTS; v++)
        engine_free(&var[v]);
    return 0;
}

/* One variant's figures, printed and checked. */
static void report(int v)
{
    agreement_stats *st = &stats[v];
    CHECK(st->compared > 0);
    double frac = st->compared ? (double)st->agree / st->compared : 0;
    if (st->rel)
        qsort(st->rel, (size_t)st->n_rel, sizeof *st->rel, cmp_double);
    printf("  %s vs unquantized, %s: %d sequences, %ld positions (contexts up to %d), "
           "teacher-forced argmax agreement %.2f %% (%ld differ); logits relative L2 error "
           "median %.3g, max %.3g\n",
           variant[v].what, model_dir, g.n_rows, st->compared, g.max_len, 100 * frac,
           st->compared - st->agree, st->n_rel ? st->rel[st->n_rel / 2] : 0.0,
           st->n_rel ? st->rel[st->n_rel - 1] : 0.0);
    CHECK(frac >= min_agreement);
    free(st->rel);
    st->rel = NULL;
}

static void test_kv_int8(void)
{
    report(KV8);
}

static void test_weights_int8(void)
{
    report(W8);
}

static void test_both_int8(void)
{
    report(BOTH);
}

static void test_measure(void)
{
    measure();
}

int main(int argc, char **argv)
{
    vb_dist_init(&argc, &argv);
    if (argc < 3) {
        fprintf(stderr, "usage: test_int8_agreement MODEL_DIR GREEDY_JSONL [NEW_TOKENS "
                        "[MIN_PERCENT]]\n");
        return 2;
    }
    model_dir = argv[1];
    jsonl = argv[2];
    if (argc > 3)
        n_new = atoi(argv[3]);
    if (argc > 4)
        min_agreement = atof(argv[4]) / 100;
    vb_dist d;
    vb_err err = {{0}};
    if (vb_dist_setup(&d, 1, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    test_run("load, extend and teacher-force", test_measure);
    test_run("--kv-cache-dtype int8", test_kv_int8);
    test_run("--quantize int8", test_weights_int8);
    test_run("--quantize int8 --kv-cache-dtype int8", test_both_int8);
    if (g.ready) {
        engine_free(&g.ref);
        for (int r = 0; r < g.n_rows; r++)
            free(g.seq[r]);
        model_weights_free(&g.w);
        model_weights_free(&g.w_q8);
    }
    int rc = test_summary();
    vb_dist_free(&d);
    vb_dist_finalize();
    return rc;
}

/* The int8 KV cache on a real trained model (issue #21): teacher-forced
 * next-token argmax agreement with the unquantized cache.
 *
 *   test_kv_int8_agreement MODEL_DIR GREEDY_JSONL [NEW_TOKENS]
 *
 * For every row of GREEDY_JSONL (its "prompt_ids"; tests/run/fixtures/
 * smollm2/greedy.jsonl) the CPU backend with the fp32 cache first extends
 * the prompt by NEW_TOKENS (default 160) greedy tokens, so the check also
 * covers contexts a few hundred positions long. Then each whole sequence
 * goes through one step with every position's logits, once with the fp32
 * cache and once with the int8 one (written by that same step's
 * rope_kv_write and read back by its attention), and the two argmaxes are
 * compared at every position. The issue asks for >= 97 % agreement; the
 * figure and the logits' relative L2 error are printed for RESULTS.md.
 * Needs no GPU; the wrapper (test_quant_smollm2.sh) makes the model. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_backend.h"
#include "forward/forward.h"
#include "harness.h"
#include "model/model_load.h"
#include "mpi/dist.h"
#include "util/env.h"

#define BLOCK 16
#define MAX_ROWS 64
#define MIN_AGREEMENT 0.97

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

static void test_agreement(void)
{
    vb_err err = {{0}};
    vb_tuning knobs;
    model_config cfg;
    tp_plan plan;
    model_weights w = {0};
    if (vb_tuning_from_env(&knobs, &err) || model_config_load(&cfg, model_dir, &err) ||
        tp_plan_make(&plan, &cfg, 1, 0, &err) || model_load_cpu(&w, &cfg, &plan, model_dir, &err)) {
        fprintf(stderr, "  %s\n", err.msg);
        CHECK(0);
        return;
    }
    int32_t *seq[MAX_ROWS];
    int len[MAX_ROWS], max_len = 0, n_rows = read_prompts(seq, len, &max_len);
    CHECK(n_rows > 0);
    int max_blocks = (max_len + BLOCK - 1) / BLOCK, max_tokens = n_rows * max_len;
    engine ref, q8;
    if (n_rows == 0 || max_blocks > 1024 ||
        engine_init(&ref, VB_KV_ACT, &cfg, &plan, &w, knobs.cpu_threads, n_rows * max_blocks,
                    max_tokens, max_blocks) ||
        engine_init(&q8, VB_KV_INT8, &cfg, &plan, &w, knobs.cpu_threads, n_rows * max_blocks,
                    max_tokens, max_blocks)) {
        CHECK(0);
        return;
    }
    CHECK(extend_greedy(&ref, seq, len, n_rows, n_new, plan.vocab_local, max_blocks) == 0);

    /* teacher-forced: each whole sequence, every position's logits */
    long agree = 0, compared = 0;
    size_t V = (size_t)plan.vocab_local;
    double *rel = malloc(sizeof(double) * (size_t)max_tokens);
    float *a = malloc(sizeof(float) * (size_t)max_len * V);
    int n_rel = 0;
    for (int r = 0; r < n_rows && a && rel; r++) {
        const float *la = whole_sequence(&ref, seq[r], len[r], r, max_blocks);
        CHECK(la != NULL);
        if (!la)
            break;
        memcpy(a, la, sizeof(float) * (size_t)len[r] * V); /* the next step reuses the buffer */
        const float *lb = whole_sequence(&q8, seq[r], len[r], r, max_blocks);
        CHECK(lb != NULL);
        if (!lb)
            break;
        for (int t = 0; t < len[r]; t++) {
            const float *x = a + (size_t)t * V, *y = lb + (size_t)t * V;
            agree += argmax(x, (int)V) == argmax(y, (int)V);
            compared++;
            double num = 0, den = 0;
            for (size_t j = 0; j < V; j++) {
                num += ((double)x[j] - y[j]) * ((double)x[j] - y[j]);
                den += (double)x[j] * x[j];
            }
            rel[n_rel++] = sqrt(num / (den > 0 ? den : 1));
        }
    }
    CHECK(compared > 0);
    double frac = compared ? (double)agree / compared : 0;
    qsort(rel, (size_t)n_rel, sizeof *rel, cmp_double);
    printf("  int8 KV cache vs fp32, %s: %d sequences, %ld positions (contexts up to %d), "
           "teacher-forced argmax agreement %.2f %% (%ld differ); logits relative L2 error "
           "median %.3g, max %.3g\n",
           model_dir, n_rows, compared, max_len, 100 * frac, compared - agree,
           n_rel ? rel[n_rel / 2] : 0.0, n_rel ? rel[n_rel - 1] : 0.0);
    CHECK(frac >= MIN_AGREEMENT);
    free(a);
    free(rel);
    for (int r = 0; r < n_rows; r++)
        free(seq[r]);
    engine_free(&ref);
    engine_free(&q8);
    model_weights_free(&w);
}

int main(int argc, char **argv)
{
    vb_dist_init(&argc, &argv);
    if (argc < 3) {
        fprintf(stderr, "usage: test_kv_int8_agreement MODEL_DIR GREEDY_JSONL [NEW_TOKENS]\n");
        return 2;
    }
    model_dir = argv[1];
    jsonl = argv[2];
    if (argc > 3)
        n_new = atoi(argv[3]);
    vb_dist d;
    vb_err err = {{0}};
    if (vb_dist_setup(&d, 1, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    test_run("int8 KV cache agreement", test_agreement);
    int rc = test_summary();
    vb_dist_free(&d);
    vb_dist_finalize();
    return rc;
}

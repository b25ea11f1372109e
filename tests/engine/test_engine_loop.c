/* The engine core end to end with a stand-in model: scheduler + the
 * step's sampling (run_sampler, the one the generate loop uses) + stop
 * conditions, as the generate loop drives them.
 *
 * The stand-in model's logits are a pure function of the token history,
 * so seeded sampling must give every row the same completion whatever the
 * batch size (--max-batch 1, 7, 64), token budget, prefix caching, or
 * preemption (a cache small enough to force it). That is the
 * reproducibility promise of DESIGN.md, checked here without a real model.
 *
 * Under mpirun (test_engine_loop TP) each rank of a TP group keeps only its
 * vocabulary shard of the logits and the step sampler exchanges
 * candidates; the completions must equal the unsplit run's. */
#include "harness.h"

#include <stdlib.h>

#include "mpi/dist.h"
#include "mpi/mpi_check.h"
#include "engine/scheduler.h"
#include "run/run_sample.h"

#define VOCAB 97
#define STOP_TOKEN 13
#define ROWS 24
#define N_SAMPLES 2
#define MAX_NEW 24

static void model_logits(const int32_t *t, int n, float *out)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; i++) h = (h ^ (uint32_t)t[i]) * 1099511628211ull;
    for (int v = 0; v < VOCAB; v++) {
        uint64_t x = (h ^ (uint64_t)v * 0x9e3779b97f4a7c15ull) * 0xbf58476d1ce4e5b9ull;
        x ^= x >> 31;
        out[v] = ((float)(x & 0xffff) / 65536.0f - 0.5f) * 10.0f;
    }
}

typedef struct rows_ctx {
    sampling_params params[ROWS];
} rows_ctx;

static const sampling_params *lookup(void *ctx, int64_t id, uint32_t *row, uint32_t *sample)
{
    rows_ctx *c = ctx;
    *row = (uint32_t)(id / N_SAMPLES);
    *sample = (uint32_t)(id % N_SAMPLES);
    return &c->params[*row];
}

typedef struct completion {
    int32_t tokens[MAX_NEW];
    int n;
} completion;

/* The vocabulary split of the run: [lo, hi) of VOCAB on this rank. */
typedef struct split {
    int lo, hi, tp;
    MPI_Comm comm;
} split;

static const split unsplit = {0, VOCAB, 1, MPI_COMM_NULL};

static void run(int max_batch, int budget, int n_blocks, bool prefix_cache, split sp,
                int choose_threads, completion *out, long *preemptions, double *hit_rate)
{
    rows_ctx ctx;
    for (int r = 0; r < ROWS; r++) {
        sampling_params *p = &ctx.params[r];
        *p = sampling_params_default();
        p->seed = 1234 + (uint64_t)(r % 3); /* a per-row /seed column */
        switch (r % 5) {
        case 0: p->temperature = 0.0f; break;
        case 1: p->temperature = 0.7f; break;
        case 2: p->top_k = 20; p->top_p = 0.8f; break;
        case 3: p->min_p = 0.1f; p->repetition_penalty = 1.2f; break;
        default: p->top_p = 0.9f; p->frequency_penalty = 0.3f; p->presence_penalty = 0.2f; break;
        }
    }
    scheduler s;
    sched_options opt = {.max_batch = max_batch, .max_batched_tokens = budget, .prefix_cache = prefix_cache};
    CHECK_INT_EQ(sched_init(&s, &opt, n_blocks, 8, NULL), 0);
    run_sampler ss;
    CHECK_INT_EQ(run_sampler_init(&ss, sp.comm, sp.tp, sp.lo, sp.hi - sp.lo, false, choose_threads,
                                  NULL),
                 0);
    int32_t system[30];
    for (int i = 0; i < 30; i++) system[i] = (i * 7 + 3) % VOCAB;
    int slots[ROWS * N_SAMPLES];
    for (int r = 0; r < ROWS; r++) {
        int32_t prompt[60];
        int n = 30 + 1 + (r * 13) % 29;
        for (int i = 0; i < n; i++) prompt[i] = i < 30 ? system[i] : (int32_t)((r * 31 + i * 17) % VOCAB);
        for (int k = 0; k < N_SAMPLES; k++) {
            slots[r * N_SAMPLES + k] = sched_add(&s, r * N_SAMPLES + k, prompt, n, MAX_NEW, NULL);
            CHECK(slots[r * N_SAMPLES + k] >= 0);
        }
    }
    float *logits = malloc((size_t)max_batch * VOCAB * sizeof *logits), full[VOCAB];
    int32_t *sampled = malloc((size_t)max_batch * sizeof *sampled);
    sample_result *results = malloc((size_t)max_batch * sizeof *results);
    sampler_row *srows = malloc((size_t)max_batch * sizeof *srows);
    const float **lp = malloc((size_t)max_batch * sizeof *lp);
    int n_done = 0;
    for (int step = 0; step < 100000 && !sched_idle(&s); step++) {
        const sched_step_plan *p = sched_step(&s);
        for (int i = 0; i < p->n_seqs; i++) {
            const sched_step_seq *st = &p->seqs[i];
            if (st->sample_index < 0) continue;
            const sched_seq *q = sched_seq_get(&s, st->slot);
            model_logits(q->tokens, st->context_len, full);
            int k = st->sample_index;
            memcpy(logits + (size_t)k * VOCAB, full + sp.lo, (size_t)(sp.hi - sp.lo) * sizeof *full);
            /* the key and history as generate_run builds them */
            uint32_t row = 0, sample = 0;
            const sampling_params *sp_row = lookup(&ctx, st->id, &row, &sample);
            srows[k] = (sampler_row){.params = sp_row, .row = row, .sample = sample,
                                     .step = (uint32_t)st->n_generated, .prompt = q->tokens,
                                     .n_prompt = q->n_prompt, .generated = q->tokens + q->n_prompt,
                                     .n_generated = q->n_tokens - q->n_prompt};
            lp[k] = logits + (size_t)k * VOCAB;
        }
        CHECK_INT_EQ(run_sampler_step(&ss, srows, lp, p->n_samples, results, NULL), 0);
        for (int k = 0; k < p->n_samples; k++)
            sampled[k] = results[k].error ? 0 : results[k].token;
        sched_step_done(&s, sampled);
        for (int i = 0; i < p->n_seqs; i++) {
            const sched_step_seq *st = &p->seqs[i];
            if (st->sample_index < 0) continue;
            const sched_seq *q = sched_seq_get(&s, st->slot);
            int n_gen = q->n_tokens - q->n_prompt;
            if (sampled[st->sample_index] == STOP_TOKEN || n_gen >= MAX_NEW) {
                completion *c = &out[st->id];
                c->n = n_gen;
                memcpy(c->tokens, q->tokens + q->n_prompt, (size_t)n_gen * sizeof *c->tokens);
                n_done++;
                sched_finish(&s, st->slot);
            }
        }
    }
    CHECK_INT_EQ(n_done, ROWS * N_SAMPLES);
    CHECK_INT_EQ(sched_blocks_used(&s), 0);
    *preemptions = s.stats.preemptions;
    *hit_rate = sched_prefix_hit_rate(&s);
    free(logits);
    free(sampled);
    free(results);
    free(srows);
    free(lp);
    run_sampler_free(&ss);
    sched_free(&s);
}

static void test_completions_independent_of_scheduling(void)
{
    static completion ref[ROWS * N_SAMPLES], got[ROWS * N_SAMPLES];
    long pre;
    double hit;
    run(64, 2048, 1000, true, unsplit, 1, ref, &pre, &hit);
    CHECK(hit > 0.3); /* the shared 30-token system prompt and the --n copies */
    int stopped = 0, differ_between_samples = 0;
    for (int i = 0; i < ROWS * N_SAMPLES; i++) stopped += ref[i].n < MAX_NEW;
    for (int r = 0; r < ROWS; r++)
        differ_between_samples += ref[2 * r].n != ref[2 * r + 1].n ||
                                  memcmp(ref[2 * r].tokens, ref[2 * r + 1].tokens, sizeof ref[0].tokens) != 0;
    CHECK(stopped > 0);                /* some rows met the stop token */
    CHECK(differ_between_samples > 5); /* samples of one row are drawn independently */
    /* threads: the choices of steps of >= 32 rows spread over a pool */
    struct { int max_batch, budget, n_blocks; bool prefix; int threads; } configs[] = {
        {1, 64, 1000, true, 1}, {7, 32, 1000, true, 1}, {7, 16, 1000, false, 3},
        {64, 512, 40, true, 1}, {64, 100, 30, false, 1}, {64, 2048, 1000, true, 4},
    };
    for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++) {
        memset(got, 0, sizeof got);
        run(configs[c].max_batch, configs[c].budget, configs[c].n_blocks, configs[c].prefix, unsplit,
            configs[c].threads, got, &pre, &hit);
        if (configs[c].n_blocks < 100) CHECK(pre > 0); /* the small caches did preempt */
        int bad = 0;
        for (int i = 0; i < ROWS * N_SAMPLES; i++)
            bad += got[i].n != ref[i].n || memcmp(got[i].tokens, ref[i].tokens, sizeof ref[0].tokens) != 0;
        if (bad) fprintf(stderr, "  config %zu: %d completions differ\n", c, bad);
        CHECK_INT_EQ(bad, 0);
    }
}

static vb_dist d;

static void test_tp_split_equals_unsplit(void)
{
    static completion ref[ROWS * N_SAMPLES], got[ROWS * N_SAMPLES];
    long pre;
    double hit;
    run(7, 64, 1000, true, unsplit, 1, ref, &pre, &hit);
    split sp = {(int)((long)VOCAB * d.tp_rank / d.tp), (int)((long)VOCAB * (d.tp_rank + 1) / d.tp), d.tp, d.tp_comm};
    run(7, 64, 1000, true, sp, 2, got, &pre, &hit);
    int bad = 0;
    for (int i = 0; i < ROWS * N_SAMPLES; i++)
        bad += got[i].n != ref[i].n || memcmp(got[i].tokens, ref[i].tokens, sizeof ref[0].tokens) != 0;
    CHECK_INT_EQ(bad, 0);
}

int main(int argc, char **argv)
{
    if (argc < 2) { /* unit test: no MPI at all */
        RUN_TEST(test_completions_independent_of_scheduling);
        return test_summary();
    }
    vb_dist_init(&argc, &argv);
    vb_err err;
    if (vb_dist_setup(&d, atoi(argv[1]), &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        vb_dist_finalize();
        return 1;
    }
    RUN_TEST(test_tp_split_equals_unsplit);
    int local = test_failed, total = 0;
    MPI_CHECK(MPI_Allreduce(&local, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
    int rc = d.world_rank == 0 ? test_summary() : (test_failed ? 1 : 0);
    vb_dist_free(&d);
    vb_dist_finalize();
    return total ? 1 : rc;
}

/* The CUDA backend's summarize op (kernels/sampler_summary.cu through
 * src/cuda/cuda_sampler.c) against sampler_summarize, the host oracle
 * (src/engine/sampler_summarize.c), on the same random logits: many rows
 * and shapes (vocabularies of 1000, 32000, 151936 split in two, 152064;
 * TP slices with offsets, uneven), greedy, temperature only, top-k 1, 5,
 * 50, 300 and 1024 (on logits with many ties, -0 and +0 among them),
 * top-p, min-p, logprobs 0 / 5 / 64, repetition / frequency / presence
 * penalties, rows with NaN, +Inf, all -inf and half -inf; batches of 1 and
 * of 320 rows; the kernel's two paths to the candidates: the compact
 * buffer (many equal logits at the cut, exactly VB_SAMPLE_COMPACT_CAP
 * tokens in the first radix digit's bucket) and the full-row fallback when
 * it overflows (flat rows: every logit equal, +0 and -0; one more token
 * than the capacity in that bucket).
 *
 * The log-sum-exp of rows without penalties (top-p without top-k,
 * logprobs) on wide, narrow, huge and subnormal logits, ties, flat rows
 * and 256 rows (a block a row, as the bench's step).
 *
 * Tolerances. Every field must match exactly (floats bit for bit:
 * candidates, best_logit, best_token, n_cand, bad, has_more) except:
 *   - max_logit and sum_exp: relative 1e-6 (the device sums in another
 *     order; max is in fact exact);
 *   - best_score: relative 1e-12 when Gumbel noise is added (CUDA's double
 *     log is within 1 ulp of glibc's, which is correctly rounded), exact
 *     otherwise.
 * Then run_sampler_step_backend against run_sampler_step (host logits),
 * with the decisions made on the device (the `sample` op,
 * kernels/sampler_choose.cu: mixed batches, and truncation by top-k, top-p
 * and min-p on distinct, narrow and tied logits) and with the device's
 * summaries decided on the host (the tp > 1 path): the same tokens,
 * errors, inexact flags and top tokens, logprobs within 1e-6 relative (a
 * float ulp or so: they come from sum_exp); and a top-k above the
 * kernel's limit takes the host fallback.
 *
 * A failure prints the case, the row, the field, the expected (host) and
 * the got (device) values, at most 30 lines a case. VB_SAMPLER_CASE=text
 * runs only the summary cases whose name contains text. */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/backend_cuda.h"
#include "cuda/cuda_check.h"
#include "cuda/cuda_sampler.h"
#include "engine/sampler.h"
#include "harness.h"
#include "kernels.h"
#include "run/run_sample.h"

static vb_backend *gpu;
static vb_tuning knobs; /* the environment's (util/env.h), as voltbatch reads it */

static uint64_t rng = 88172645463325252ull;
static uint64_t next_u64(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static float frand(void) /* [0, 1) */
{
    return (float)((double)(next_u64() >> 11) / 9007199254740992.0);
}

/* TIES_NONE: random logits in [-8, 8); TIES_MANY: ~32 distinct values;
 * TIES_FLAT: every logit 0 (+0 and -0 alternating); TIES_CAP / TIES_CAP1:
 * VB_SAMPLE_COMPACT_CAP (+1) scattered tokens at 6 + (id % 7) / 16, all in
 * one bucket of the kernel's first radix digit ([6, 6.5) at temperature 1),
 * above the rest in [-5, 5): the compact buffer exactly full, and one
 * over (the full-row fallback).
 * The compaction's threshold comes from group maxima (tokens t, t + 256,
 * ... of a pass-1 block, kernels/sampler_summary.cu); two layouts aim at
 * it: TIES_STRIDE puts the best tokens, distinct, at every 2,048th id
 * (one group at one chunk a row: the threshold must still keep them all),
 * TIES_SPARSE leaves only ids t % 2048 < 3 finite (fewer groups hold a
 * finite token than top-k 1,024 wants: every finite token is kept).
 * The log-sum-exp of rows without penalties (pass 1 on raw logits: the
 * processed logit widened to double by a multiplication, terms a tile at a
 * time, e^x below -700 dropped) meets: TIES_WIDE, logits in [-1900, 100)
 * (most terms below e^-700); TIES_NARROW, logits in [-0.25, 0.25) (top-p
 * keeps nearly the whole row); TIES_HUGE, magnitudes up to 3e38 (near the
 * largest float: at temperatures below 1 some overflow, bad rows; the
 * terms but the max's are 0); TIES_TINY, subnormal logits (every term is
 * 1). */
enum tie_mode { TIES_NONE, TIES_MANY, TIES_FLAT, TIES_CAP, TIES_CAP1, TIES_STRIDE, TIES_SPARSE,
                TIES_WIDE, TIES_NARROW, TIES_HUGE, TIES_TINY };

typedef struct sampler_case {
    const char *name;
    int vocab, tp, rank;    /* the slice: rank of tp, uneven when vocab % tp */
    int rows;
    enum tie_mode ties;
    const sampling_params *params; /* cycled over the rows */
    int n_params;
    bool history;           /* give rows a prompt and generated tokens */
} sampler_case;

static uint32_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static int n_printed;
#define REPORT(...)                                                                        \
    do {                                                                                   \
        test_checks_failed_in_current++;                                                   \
        if (n_printed++ < 30)                                                              \
            fprintf(stderr, __VA_ARGS__);                                                  \
    } while (0)

static bool rel_ok(double want, double got, double tol)
{
    if (want == got)
        return true; /* also both -inf */
    if (isnan(want) || isnan(got) || isinf(want) || isinf(got))
        return false;
    return fabs(want - got) <= tol * fmax(fabs(want), 1e-300);
}

/* Compares one row's summaries; returns true when they agree. */
static bool compare_summary(const char *name, int row, const sampler_row *r, const sampler_summary *want,
                            const sampler_summary *got)
{
    int before = test_checks_failed_in_current;
    bool gumbel = r->params->temperature > 0.0f && !(r->params->top_k > 0 || r->params->top_p < 1.0f ||
                                                      r->params->min_p > 0.0f);
#define FIELD_INT(f)                                                                       \
    if (want->f != got->f)                                                                 \
        REPORT("  %s row %d: %s expected %d got %d\n", name, row, #f, (int)want->f, (int)got->f);
    FIELD_INT(best_token);
    FIELD_INT(n_cand);
    FIELD_INT(bad);
    FIELD_INT(has_more);
    FIELD_INT(reserved);
#undef FIELD_INT
    if (float_bits(want->best_logit) != float_bits(got->best_logit))
        REPORT("  %s row %d: best_logit expected %.9g (0x%08x) got %.9g (0x%08x)\n", name, row,
               want->best_logit, float_bits(want->best_logit), got->best_logit,
               float_bits(got->best_logit));
    if (!rel_ok(want->max_logit, got->max_logit, 1e-6))
        REPORT("  %s row %d: max_logit expected %.17g got %.17g\n", name, row, want->max_logit,
               got->max_logit);
    if (!rel_ok(want->sum_exp, got->sum_exp, 1e-6))
        REPORT("  %s row %d: sum_exp expected %.17g got %.17g\n", name, row, want->sum_exp,
               got->sum_exp);
    if (!rel_ok(want->best_score, got->best_score, gumbel ? 1e-12 : 0.0))
        REPORT("  %s row %d: best_score expected %.17g got %.17g (gumbel %d)\n", name, row,
               want->best_score, got->best_score, gumbel);
    int n = want->n_cand < got->n_cand ? want->n_cand : got->n_cand;
    const sample_candidate *cw = sampler_summary_cand_const(want), *cg = sampler_summary_cand_const(got);
    for (int i = 0; i < n; i++)
        if (cw[i].token != cg[i].token || float_bits(cw[i].logit) != float_bits(cg[i].logit))
            REPORT("  %s row %d: cand[%d] expected (token %d, logit %.9g) got (token %d, logit %.9g)\n",
                   name, row, i, cw[i].token, cw[i].logit, cg[i].token, cg[i].logit);
    return test_checks_failed_in_current == before;
}

/* One batch of the case's rows: host logits [rows, n_local] (row i's logits
 * at host row rows-1-i, so logit_rows is not the identity), their device
 * copy, sampler_rows with histories. */
typedef struct batch {
    int n, lo, n_local, vocab;
    float *h;
    float *d;
    int *logit_rows;
    sampler_row *rows;
    sampling_params *params;
    int32_t *hist;          /* prompt then generated, per row */
} batch;

static void make_batch(const sampler_case *c, batch *b)
{
    memset(b, 0, sizeof *b);
    b->n = c->rows;
    b->vocab = c->vocab;
    b->lo = (int)((long)c->vocab * c->rank / c->tp);
    int hi = (int)((long)c->vocab * (c->rank + 1) / c->tp);
    b->n_local = hi - b->lo;
    size_t nl = (size_t)b->n_local;
    b->h = malloc((size_t)b->n * nl * sizeof *b->h);
    b->logit_rows = malloc((size_t)b->n * sizeof *b->logit_rows);
    b->rows = calloc((size_t)b->n, sizeof *b->rows);
    b->params = malloc((size_t)b->n * sizeof *b->params);
    enum { N_PROMPT = 60, N_GEN = 40 };
    b->hist = malloc((size_t)b->n * (N_PROMPT + N_GEN) * sizeof *b->hist);
    for (int i = 0; i < b->n; i++) {
        b->logit_rows[i] = b->n - 1 - i;
        float *x = b->h + (size_t)b->logit_rows[i] * nl;
        for (size_t t = 0; t < nl; t++) {
            float v = (frand() - 0.5f) * 16.0f;
            if (c->ties == TIES_MANY) {
                v = floorf(v * 2.0f) * 0.5f;   /* ~32 distinct values */
                if (v == 0.0f && (t & 1))
                    v = -0.0f;                 /* -0 and +0 compare equal: ties by id */
            } else if (c->ties == TIES_FLAT) {
                v = (t & 1) ? -0.0f : 0.0f;
            } else if (c->ties == TIES_CAP || c->ties == TIES_CAP1) {
                /* t -> t * 7919 mod n_local is a permutation (7919 is prime
                 * and divides no n_local here): exactly n_top tokens */
                size_t n_top = VB_SAMPLE_COMPACT_CAP + (c->ties == TIES_CAP1);
                v = ((uint64_t)t * 7919u) % nl < n_top ? 6.0f + (float)(t % 7) * 0.0625f
                                                       : (frand() - 0.5f) * 10.0f;
            } else if (c->ties == TIES_STRIDE) {
                if (t % 2048 == 0)
                    v = 9.0f + (float)(t / 2048) * 0.01f;
            } else if (c->ties == TIES_SPARSE) {
                if (t % 2048 >= 3)
                    v = -INFINITY;
            } else if (c->ties == TIES_WIDE) {
                v = (frand() - 0.95f) * 2000.0f;
            } else if (c->ties == TIES_NARROW) {
                v = (frand() - 0.5f) * 0.5f;
            } else if (c->ties == TIES_HUGE) {
                v = (frand() - 0.5f) * 2.0f * 3e38f;
            } else if (c->ties == TIES_TINY) {
                v = (frand() - 0.5f) * 2e-40f; /* subnormal */
            }
            x[t] = v;
        }
        switch (i % 9) { /* damaged rows */
        case 3: x[(size_t)(frand() * (float)nl) % nl] = NAN; break;
        case 4: x[(size_t)(frand() * (float)nl) % nl] = INFINITY; break;
        case 5: for (size_t t = 0; t < nl; t++) x[t] = -INFINITY; break;
        case 6: for (size_t t = 0; t < nl; t += 2) x[t] = -INFINITY; break;
        default: break;
        }
        b->params[i] = c->params[i % c->n_params];
        b->params[i].seed = c->params[i % c->n_params].seed + (uint64_t)i * 0x9E3779B97F4A7C15ull;
        int32_t *h = b->hist + (size_t)i * (N_PROMPT + N_GEN);
        for (int k = 0; k < N_PROMPT + N_GEN; k++) {
            /* half the history inside this slice, with repeats */
            int32_t t = (k % 2) ? b->lo + (int32_t)(next_u64() % (uint64_t)(b->n_local < 50 ? b->n_local : 50))
                                : (int32_t)(next_u64() % (uint64_t)c->vocab);
            h[k] = t;
        }
        b->rows[i] = (sampler_row){
            .params = &b->params[i],
            .row = (uint32_t)(1000 + i),
            .sample = (uint32_t)(i % 3),
            .step = (uint32_t)(i * 5),
            .prompt = c->history ? h : NULL,
            .n_prompt = c->history ? N_PROMPT : 0,
            .generated = c->history ? h + N_PROMPT : NULL,
            .n_generated = c->history ? N_GEN : 0,
        };
    }
    b->d = gpu->alloc(gpu, (size_t)b->n * nl * sizeof(float));
    CHECK(b->d != NULL);
    gpu->to_device(gpu, b->d, b->h, (size_t)b->n * nl * sizeof(float));
}

static void free_batch(batch *b)
{
    gpu->free(gpu, b->d);
    free(b->h);
    free(b->logit_rows);
    free(b->rows);
    free(b->params);
    free(b->hist);
}

static void run_case(const sampler_case *c)
{
    n_printed = 0;
    batch b;
    make_batch(c, &b);
    const sampling_params **pp = malloc((size_t)b.n * sizeof *pp);
    for (int i = 0; i < b.n; i++)
        pp[i] = &b.params[i];
    int n_cand = sampler_candidates_needed(pp, b.n);
    size_t bytes = (size_t)b.n * sampler_summary_bytes(n_cand);
    char *want = malloc(bytes), *got = malloc(bytes);
    memset(got, 0xa5, bytes); /* poisoned: an unwritten field fails */
    sampler_workspace ws;
    CHECK_INT_EQ(sampler_workspace_init(&ws, b.n_local), 0);
    for (int i = 0; i < b.n; i++)
        sampler_summarize(&ws, &b.rows[i], b.h + (size_t)b.logit_rows[i] * (size_t)b.n_local, b.lo,
                          b.n_local, n_cand, sampler_summary_at(want, i, n_cand));
    int rc = gpu->summarize(gpu, b.d, b.logit_rows, b.rows, b.n, b.lo, b.n_local, n_cand, got);
    if (n_cand > cuda_sampler_max_candidates()) {
        CHECK_INT_EQ(rc, -1); /* the caller's host fallback */
    } else {
        CHECK_INT_EQ(rc, 0);
        int bad_rows = 0;
        for (int i = 0; i < b.n && rc == 0; i++)
            if (!compare_summary(c->name, i, &b.rows[i], sampler_summary_at(want, i, n_cand),
                                 sampler_summary_at(got, i, n_cand)))
                bad_rows++;
        if (bad_rows)
            fprintf(stderr, "  %s: %d of %d rows differ (vocab %d, slice [%d, %d), n_cand %d)\n",
                    c->name, bad_rows, b.n, c->vocab, b.lo, b.lo + b.n_local, n_cand);
    }
    sampler_workspace_free(&ws);
    free(want);
    free(got);
    free(pp);
    free_batch(&b);
}

/* Parameter sets. */
static sampling_params P(float temperature, int top_k, float top_p, float min_p, int n_logprobs)
{
    sampling_params p = sampling_params_default();
    p.temperature = temperature;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.n_logprobs = n_logprobs;
    p.seed = 1234;
    return p;
}

static sampling_params penal(sampling_params p, float rep, float freq, float pres)
{
    p.repetition_penalty = rep;
    p.frequency_penalty = freq;
    p.presence_penalty = pres;
    return p;
}

static void test_summaries_match_host(void)
{
    sampling_params greedy[] = {P(0, 0, 1, 0, 0), P(0, 0, 1, 0, 5)};
    sampling_params temp[] = {P(0.8f, 0, 1, 0, 0), P(1.3f, 0, 1, 0, 0), P(0.05f, 0, 1, 0, 5)};
    sampling_params topk1[] = {P(1, 1, 1, 0, 0)};
    sampling_params topk5[] = {P(0.7f, 5, 1, 0, 0), P(0, 0, 1, 0, 0)};
    sampling_params topk50[] = {P(0.7f, 50, 0.9f, 0, 5)};
    sampling_params topk300[] = {P(1, 300, 1, 0, 0), P(0.9f, 20, 1, 0.05f, 0)};
    /* top-k asks SAMPLER_TOP_K_TIE_CANDIDATES more for the k-th's ties:
     * this one's n_cand is the kernel's limit, 1024 */
    sampling_params topk1024[] = {P(1, 1024 - SAMPLER_TOP_K_TIE_CANDIDATES, 1, 0, 64)};
    sampling_params topk2000[] = {P(1, 2000, 1, 0, 0)}; /* above the kernel: fallback */
    sampling_params topp[] = {P(0.9f, 0, 0.9f, 0, 0), P(1, 0, 0.5f, 0, 5)};
    sampling_params minp[] = {P(1, 0, 1, 0.1f, 0), P(0.6f, 0, 1, 0.02f, 64)};
    sampling_params logprobs[] = {P(0, 0, 1, 0, 64), P(1, 0, 1, 0, 64), P(0.7f, 40, 1, 0, 5)};
    sampling_params mixed[] = {P(0.8f, 0, 0.95f, 0, 0), P(0.7f, 50, 0.9f, 0, 5), P(1, 0, 1, 0.05f, 64),
                               P(0, 0, 1, 0, 0),        P(1, 1024 - SAMPLER_TOP_K_TIE_CANDIDATES, 1, 0, 0),
                               P(0.9f, 0, 1, 0, 0)};
    /* temperature 1: the tokens of TIES_CAP stay in one first-digit bucket */
    sampling_params at_cap[] = {P(1, 50, 1, 0, 0), P(1, 0, 0.9f, 0, 0), P(0, 0, 1, 0, 64),
                                P(1, 0, 1, 0.05f, 5)};
    /* the log-sum-exp on raw logits: top-p without top-k (temperatures
     * below and above 1), greedy with logprobs; min-p as a row without it */
    sampling_params lse[] = {P(0.8f, 0, 0.95f, 0, 0), P(0.3f, 0, 0.9f, 0, 5),
                             P(2.0f, 0, 0.99f, 0, 0), P(0, 0, 1, 0, 5), P(0.7f, 0, 1, 0.05f, 0)};
    sampling_params pen[] = {
        penal(P(0, 0, 1, 0, 5), 1.3f, 0, 0),
        penal(P(0.8f, 0, 1, 0, 0), 1, 0.5f, 0.3f),
        penal(P(0.9f, 50, 1, 0, 0), 1.2f, 0.4f, 0),
        penal(P(1, 0, 0.9f, 0, 64), 0.8f, -0.3f, 0.6f),
        penal(P(0, 0, 1, 0, 0), 1, 0, 0.7f),
    };
#define N(a) (int)(sizeof a / sizeof a[0])
    const sampler_case cases[] = {
        {"greedy v1000", 1000, 1, 0, 40, TIES_NONE, greedy, N(greedy), false},
        {"greedy ties v32000 tp3 r2", 32000, 3, 2, 30, TIES_MANY, greedy, N(greedy), false},
        {"temperature v32000", 32000, 1, 0, 30, TIES_NONE, temp, N(temp), false},
        {"temperature v151936 tp2 r1", 151936, 2, 1, 12, TIES_NONE, temp, N(temp), false},
        {"top-k 1 ties v1000", 1000, 1, 0, 30, TIES_MANY, topk1, N(topk1), false},
        {"top-k 5 ties v32000 tp2 r1", 32000, 2, 1, 30, TIES_MANY, topk5, N(topk5), false},
        {"top-k 50 v152064", 152064, 1, 0, 12, TIES_NONE, topk50, N(topk50), false},
        {"top-k 300 ties v152064", 152064, 1, 0, 12, TIES_MANY, topk300, N(topk300), false},
        {"top-k 300 ties v1000", 1000, 1, 0, 20, TIES_MANY, topk300, N(topk300), false},
        {"top-k 1024 ties v151936 tp2 r0", 151936, 2, 0, 10, TIES_MANY, topk1024, N(topk1024), false},
        {"top-k 1024 v1000 (fewer finite)", 1000, 1, 0, 10, TIES_NONE, topk1024, N(topk1024), false},
        {"top-k 2000 fallback", 32000, 1, 0, 4, TIES_NONE, topk2000, N(topk2000), false},
        {"top-p v32000", 32000, 1, 0, 30, TIES_NONE, topp, N(topp), false},
        {"top-p ties v152064 tp4 r3", 152064, 4, 3, 20, TIES_MANY, topp, N(topp), false},
        {"min-p v151936 tp2 r1", 151936, 2, 1, 12, TIES_NONE, minp, N(minp), false},
        {"logprobs v32000 tp3 r1", 32000, 3, 1, 30, TIES_MANY, logprobs, N(logprobs), false},
        {"penalties v1000", 1000, 1, 0, 40, TIES_NONE, pen, N(pen), true},
        {"penalties ties v32000 tp2 r1", 32000, 2, 1, 30, TIES_MANY, pen, N(pen), true},
        {"penalties v152064", 152064, 1, 0, 15, TIES_NONE, pen, N(pen), true},
        {"penalties v151936 tp2 r0", 151936, 2, 0, 15, TIES_NONE, pen, N(pen), true},
        /* a step of one row: pass 1 and the compaction split the most */
        {"top-p batch 1 v152064", 152064, 1, 0, 1, TIES_NONE, topp, N(topp), false},
        {"top-k 1024 batch 1 v152064", 152064, 1, 0, 1, TIES_NONE, topk1024, N(topk1024), false},
        {"min-p batch 1 v152064", 152064, 1, 0, 1, TIES_NONE, minp + 1, 1, false},
        {"logprobs batch 1 ties v151936 tp2 r1", 151936, 2, 1, 1, TIES_MANY, logprobs + 1, 1, false},
        {"penalties batch 1 v152064", 152064, 1, 0, 1, TIES_NONE, pen + 3, 1, true},
        /* many rows: a block a row */
        {"mixed 320 rows v152064", 152064, 1, 0, 320, TIES_NONE, mixed, N(mixed), false},
        {"mixed 320 rows ties v151936 tp2 r1", 151936, 2, 1, 320, TIES_MANY, mixed, N(mixed), true},
        /* many equal logits at the cut, in the compact buffer */
        {"top-k 1024 ties v152064", 152064, 1, 0, 12, TIES_MANY, topk1024, N(topk1024), false},
        {"top-p ties v152064", 152064, 1, 0, 12, TIES_MANY, topp, N(topp), true},
        {"compact buffer full v152064", 152064, 1, 0, 12, TIES_CAP, at_cap, N(at_cap), false},
        {"compact buffer full v151936 tp2 r0", 151936, 2, 0, 12, TIES_CAP, at_cap, N(at_cap), false},
        {"compact buffer full batch 1", 152064, 1, 0, 1, TIES_CAP, at_cap + 1, 1, false},
        /* the buffer overflows: the full-row path */
        {"compact overflow by 1 v152064", 152064, 1, 0, 12, TIES_CAP1, at_cap, N(at_cap), false},
        {"flat rows v152064", 152064, 1, 0, 12, TIES_FLAT, mixed, N(mixed), false},
        {"flat rows v1000 (compact, ties by id)", 1000, 1, 0, 12, TIES_FLAT, topk300, N(topk300), false},
        {"flat rows v32000 tp3 r1", 32000, 3, 1, 12, TIES_FLAT, mixed, N(mixed), false},
        {"flat rows penalties v152064", 152064, 1, 0, 10, TIES_FLAT, pen, N(pen), true},
        {"flat rows top-k 1024 batch 1", 152064, 1, 0, 1, TIES_FLAT, topk1024, N(topk1024), false},
        /* the compaction's threshold from group maxima: best tokens in one
         * group; fewer groups with a finite token than candidates */
        {"strided best v152064", 152064, 1, 0, 12, TIES_STRIDE, mixed, N(mixed), false},
        {"strided best penalties v152064", 152064, 1, 0, 10, TIES_STRIDE, pen, N(pen), true},
        {"strided best top-k 1024 batch 1", 152064, 1, 0, 1, TIES_STRIDE, topk1024, N(topk1024), false},
        {"sparse finite v152064", 152064, 1, 0, 12, TIES_SPARSE, mixed, N(mixed), false},
        {"sparse finite top-k 1024 v151936 tp2 r1", 151936, 2, 1, 10, TIES_SPARSE, topk1024,
         N(topk1024), false},
        {"sparse finite top-p batch 1", 152064, 1, 0, 1, TIES_SPARSE, topp, N(topp), false},
        /* the log-sum-exp of rows without penalties, on raw logits */
        {"lse wide logits v152064", 152064, 1, 0, 15, TIES_WIDE, lse, N(lse), false},
        {"lse wide logits v151936 tp2 r1", 151936, 2, 1, 10, TIES_WIDE, lse, N(lse), false},
        {"lse narrow logits v152064", 152064, 1, 0, 15, TIES_NARROW, lse, N(lse), false},
        {"lse narrow logits batch 1", 152064, 1, 0, 1, TIES_NARROW, lse, 1, false},
        {"lse huge logits v152064", 152064, 1, 0, 15, TIES_HUGE, lse, N(lse), false},
        {"lse subnormal logits v32000", 32000, 1, 0, 15, TIES_TINY, lse, N(lse), false},
        {"lse ties v152064", 152064, 1, 0, 15, TIES_MANY, lse, N(lse), false},
        {"lse flat rows v152064", 152064, 1, 0, 10, TIES_FLAT, lse, N(lse), false},
        {"lse 256 rows v152064", 152064, 1, 0, 256, TIES_NONE, lse, N(lse), false},
        /* penalized rows at the ends of the float range (a penalty may take
         * a logit to infinity), many rows (Qwen2.5 models' default has a
         * repetition penalty) */
        {"penalties wide logits v152064", 152064, 1, 0, 10, TIES_WIDE, pen, N(pen), true},
        {"penalties huge logits v152064", 152064, 1, 0, 10, TIES_HUGE, pen, N(pen), true},
        {"penalties subnormal logits v32000", 32000, 1, 0, 10, TIES_TINY, pen, N(pen), true},
        {"penalties narrow logits v152064", 152064, 1, 0, 10, TIES_NARROW, pen, N(pen), true},
        {"penalties 256 rows v152064", 152064, 1, 0, 256, TIES_NONE, pen, N(pen), true},
    };
    const char *only = getenv("VB_SAMPLER_CASE"); /* a substring: rerun matching cases only */
    /* pass 1 and the compaction as the GPU's size picks it (split over
     * blocks for the smaller row counts), in a block a row, over 3 blocks
     * (a thread's group maxima folded to 2 slots) and over 7 blocks (a
     * ragged last chunk, split for any row count, folded to 1 slot): a
     * backend made with each VB_SAMPLER_PASS1_CHUNKS */
    const char *chunks[] = {NULL, "1", "3", "7"};
    vb_backend *normal = gpu;
    for (int k = 0; k < (int)(sizeof chunks / sizeof chunks[0]); k++) {
        vb_tuning t = knobs;
        t.sampler_pass1_chunks = chunks[k] ? atoi(chunks[k]) : 0;
        vb_err err;
        gpu = cuda_backend_create(NULL, &t, &err);
        if (!gpu) {
            fprintf(stderr, "backend: %s\n", err.msg);
            CHECK(gpu != NULL);
            break;
        }
        for (int i = 0; i < N(cases); i++) {
            if (only && !strstr(cases[i].name, only))
                continue;
            int before = test_checks_failed_in_current;
            run_case(&cases[i]);
            fprintf(stderr, "  %-36s pass 1 chunks %-7s %s\n", cases[i].name,
                    chunks[k] ? chunks[k] : "(auto)",
                    test_checks_failed_in_current == before ? "ok" : "DIFFERS");
        }
        gpu->destroy(gpu);
    }
    gpu = normal;
#undef N
}

/* run_sampler_step_backend (the device's decisions through the backend's
 * `sample` op, or with choice false the device's summaries decided on the
 * host, or the host fallback) gives what run_sampler_step gives on the
 * host copy of the same logits. */
static void compare_steps(const char *name, const sampling_params *params, int n_params,
                          int vocab, enum tie_mode ties, bool choice, int expect_device)
{
    n_printed = 0;
    sampler_case c = {name, vocab, 1, 0, 24, ties, params, n_params, true};
    int (*sample_op)(vb_backend *, const float *, const int *, const sampler_row *, int, int, int,
                     sample_result *) = gpu->sample;
    if (!choice)
        gpu->sample = NULL;
    batch b;
    make_batch(&c, &b);
    run_backend rb;
    memset(&rb, 0, sizeof rb);
    rb.b = gpu;
    rb.cuda = true;
    run_sampler dev, host;
    CHECK_INT_EQ(run_sampler_init(&dev, MPI_COMM_NULL, 1, 0, vocab, false, 4, NULL), 0);
    CHECK_INT_EQ(run_sampler_init(&host, MPI_COMM_NULL, 1, 0, vocab, true, 1, NULL), 0);
    const float **hl = malloc((size_t)b.n * sizeof *hl), **dl = malloc((size_t)b.n * sizeof *dl);
    for (int i = 0; i < b.n; i++) {
        hl[i] = b.h + (size_t)b.logit_rows[i] * (size_t)vocab;
        dl[i] = b.d + (size_t)b.logit_rows[i] * (size_t)vocab;
    }
    sample_result *rd = calloc((size_t)b.n, sizeof *rd), *rh = calloc((size_t)b.n, sizeof *rh);
    /* several steps: the key's step changes the Gumbel noise */
    for (int step = 0; step < 3; step++) {
        for (int i = 0; i < b.n; i++)
            b.rows[i].step = (uint32_t)(step * 7 + i);
        CHECK_INT_EQ(run_sampler_step_backend(&dev, &rb, b.d, (size_t)b.n * (size_t)vocab, b.rows,
                                              dl, b.n, rd, NULL),
                     0);
        CHECK_INT_EQ(run_sampler_step(&host, b.rows, hl, b.n, rh, NULL), 0);
        for (int i = 0; i < b.n; i++) {
            if (rd[i].token != rh[i].token || rd[i].error != rh[i].error ||
                rd[i].truncated_inexact != rh[i].truncated_inexact || rd[i].n_top != rh[i].n_top)
                REPORT("  %s step %d row %d: expected token %d error %d inexact %d n_top %d, got "
                       "token %d error %d inexact %d n_top %d\n",
                       name, step, i, rh[i].token, rh[i].error, rh[i].truncated_inexact, rh[i].n_top,
                       rd[i].token, rd[i].error, rd[i].truncated_inexact, rd[i].n_top);
            if (!(isnan(rh[i].logprob) && isnan(rd[i].logprob)) &&
                !(fabsf(rh[i].logprob - rd[i].logprob) <= 1e-6f * fmaxf(1.0f, fabsf(rh[i].logprob))))
                REPORT("  %s step %d row %d: logprob expected %.9g got %.9g\n", name, step, i,
                       rh[i].logprob, rd[i].logprob);
            for (int k = 0; k < rh[i].n_top && k < rd[i].n_top; k++)
                if (rh[i].top_tokens[k] != rd[i].top_tokens[k] ||
                    !(fabsf(rh[i].top_logprobs[k] - rd[i].top_logprobs[k]) <=
                      1e-6f * fmaxf(1.0f, fabsf(rh[i].top_logprobs[k]))))
                    REPORT("  %s step %d row %d: top[%d] expected (%d, %.9g) got (%d, %.9g)\n",
                           name, step, i, k, rh[i].top_tokens[k], rh[i].top_logprobs[k],
                           rd[i].top_tokens[k], rd[i].top_logprobs[k]);
        }
    }
    gpu->sample = sample_op;
    CHECK_INT_EQ(dev.device_steps, expect_device ? 3 : 0);
    CHECK_INT_EQ(dev.host_steps, expect_device ? 0 : 3);
    CHECK_INT_EQ(host.device_steps, 0);
    run_sampler_free(&dev);
    run_sampler_free(&host);
    free(rb.host_logits);
    free(hl);
    free(dl);
    free(rd);
    free(rh);
    free_batch(&b);
}

static void test_run_sampler_same_tokens(void)
{
    sampling_params mix[] = {
        P(0, 0, 1, 0, 5),
        P(0.8f, 0, 1, 0, 0),
        P(0.7f, 40, 0.9f, 0, 5),
        P(1, 0, 0.95f, 0, 64),
        P(1, 0, 1, 0.05f, 0),
        penal(P(0.9f, 0, 1, 0, 3), 1.2f, 0.3f, 0.2f),
        penal(P(0, 0, 1, 0, 0), 1.5f, 0, 0),
    };
    const int n_mix = (int)(sizeof mix / sizeof mix[0]);
    for (int choice = 0; choice < 2; choice++) {
        compare_steps(choice ? "mixed batch v32000, device choice" : "mixed batch v32000", mix,
                      n_mix, 32000, TIES_MANY, choice, 1);
        compare_steps(choice ? "mixed batch v152064, device choice" : "mixed batch v152064", mix,
                      n_mix, 152064, TIES_MANY, choice, 1);
    }
    /* the choice kernel's truncation against the host's: distinct logits;
     * a flat row where top-p keeps every candidate (inexact); ties at the
     * k-th; min-p alone and after top-p; a row of one token's top-k
     * beside a row asking for more candidates */
    sampling_params cut[] = {
        P(0.9f, 0, 0.8f, 0, 3),    P(1, 0, 0.999f, 0, 0), P(0.5f, 5, 1, 0, 64),
        P(1.3f, 0, 0.95f, 0.1f, 2), P(1, 0, 1, 0.2f, 1),   P(1, 1, 1, 0, 0),
        P(0.8f, 50, 0.95f, 0, 0),
    };
    const int n_cut = (int)(sizeof cut / sizeof cut[0]);
    compare_steps("truncation v32000, distinct logits, device choice", cut, n_cut, 32000,
                  TIES_NONE, true, 1);
    compare_steps("truncation v32000, narrow logits, device choice", cut, n_cut, 32000,
                  TIES_NARROW, true, 1);
    compare_steps("truncation v32000, ties, device choice", cut, n_cut, 32000, TIES_MANY, true, 1);
    sampling_params big[] = {P(1, 1500, 1, 0, 5), P(0, 0, 1, 0, 0)};
    compare_steps("top-k 1500: host fallback", big, 2, 32000, TIES_MANY, true, 0);
}

/* The penalty state the device keeps between steps (src/cuda/cuda_seen.c)
 * against the host sampler, which reads each row's whole history every
 * time: a decode loop over sequences that come and go, each row's
 * history growing by its chosen token a step; keys (state_slot) reused by
 * new sequences, a sequence moved to another key (preemption), more
 * sequences than the arena holds (eviction), rows without a key, a second
 * run of the same rows and keys from their first token, and a vocabulary
 * slice (tp 2, rank 1) where half the tokens belong to another rank. */
static void penalty_state_run(const char *name, int vocab, int lo, int n_local)
{
    enum { SEQS = 30, LIVE = 6, STEPS = 40, N_PROMPT = 50, MAX_GEN = 64 };
    n_printed = 0;
    sampling_params kinds[] = {
        penal(P(0, 0, 1, 0, 0), 1.3f, 0, 0),
        penal(P(0.9f, 0, 1, 0, 3), 1.2f, 0.3f, 0.2f),
        penal(P(0, 0, 1, 0, 0), 1.0f, 0.5f, 0.1f),
        penal(P(0.8f, 40, 1, 0, 0), 1.1f, 0, 0),
        P(0.7f, 0, 0.9f, 0, 0),
    };
    const int n_kinds = (int)(sizeof kinds / sizeof kinds[0]);
    sampling_params params[SEQS];
    int32_t hist[SEQS][N_PROMPT + MAX_GEN];
    int n_gen[SEQS], key[SEQS], live[LIVE];
    for (int q = 0; q < SEQS; q++) {
        params[q] = kinds[q % n_kinds];
        params[q].seed = 77 + (uint64_t)q;
        for (int k = 0; k < N_PROMPT; k++) /* repeats; about half inside the slice */
            hist[q][k] = (k % 2) ? lo + (int32_t)(next_u64() % 40) : (int32_t)(next_u64() % (uint64_t)vocab);
        n_gen[q] = 0;
        key[q] = 0;
    }
    float *h = malloc((size_t)LIVE * (size_t)n_local * sizeof *h);
    float *d = gpu->alloc(gpu, (size_t)LIVE * (size_t)n_local * sizeof(float));
    sampler_workspace ws;
    CHECK_INT_EQ(sampler_workspace_init(&ws, n_local), 0);
    const int n_cand = SAMPLER_TRUNCATION_CANDIDATES;
    size_t bytes = (size_t)LIVE * sampler_summary_bytes(n_cand);
    char *want = malloc(bytes), *got = malloc(bytes);
    int next_seq = 0, next_key = 1, bad_rows = 0;
    for (int i = 0; i < LIVE; i++) {
        live[i] = next_seq++;
        key[live[i]] = next_key++;
    }
    for (int run = 0; run < 2; run++) {
        for (int step = 0; step < STEPS; step++) {
            sampler_row rows[LIVE];
            int logit_rows[LIVE];
            int n = 0;
            for (int i = 0; i < LIVE; i++) {
                int q = live[i];
                if (q < 0)
                    continue;
                logit_rows[n] = LIVE - 1 - n;
                rows[n] = (sampler_row){
                    .params = &params[q], .row = (uint32_t)q, .sample = (uint32_t)(q % 2),
                    .step = (uint32_t)n_gen[q], .prompt = hist[q], .n_prompt = N_PROMPT,
                    .generated = hist[q] + N_PROMPT, .n_generated = n_gen[q],
                    .state_slot = (q % 7 == 3) ? 0 : key[q], /* some rows without a key */
                };
                n++;
            }
            for (size_t t = 0; t < (size_t)n * (size_t)n_local; t++)
                h[t] = floorf((frand() - 0.5f) * 32.0f) * 0.5f;
            gpu->to_device(gpu, d, h, (size_t)n * (size_t)n_local * sizeof(float));
            memset(got, 0xa5, bytes);
            for (int r = 0; r < n; r++)
                sampler_summarize(&ws, &rows[r], h + (size_t)logit_rows[r] * (size_t)n_local, lo,
                                  n_local, n_cand, sampler_summary_at(want, r, n_cand));
            CHECK_INT_EQ(gpu->summarize(gpu, d, logit_rows, rows, n, lo, n_local, n_cand, got), 0);
            for (int r = 0; r < n; r++)
                if (!compare_summary(name, (int)rows[r].row, &rows[r],
                                     sampler_summary_at(want, r, n_cand),
                                     sampler_summary_at(got, r, n_cand)))
                    bad_rows++;
            /* each row takes a token: its best here, or one of any rank's */
            for (int r = 0, i = 0; i < LIVE; i++) {
                int q = live[i];
                if (q < 0)
                    continue;
                int32_t best = sampler_summary_at(want, r++, n_cand)->best_token;
                hist[q][N_PROMPT + n_gen[q]] =
                    (step % 3 != 0 && best >= 0) ? best : (int32_t)(next_u64() % (uint64_t)vocab);
                n_gen[q]++;
                /* sequences end after 3 to ~20 tokens; a new one takes the key */
                if (n_gen[q] >= MAX_GEN || next_u64() % 16 == 0) {
                    if (next_seq < SEQS) {
                        live[i] = next_seq++;
                        key[live[i]] = key[q];
                    } else {
                        live[i] = -1;
                    }
                } else if (step == 7 && i == 1) {
                    key[q] = next_key++; /* preempted and re-admitted elsewhere */
                }
            }
        }
        /* run 2: the same rows and keys from their first token, new prompts */
        next_seq = 0;
        for (int i = 0; i < LIVE; i++) {
            live[i] = next_seq++;
            n_gen[live[i]] = 0;
            hist[live[i]][0] ^= 1;
        }
        for (int q = LIVE; q < SEQS; q++)
            n_gen[q] = 0;
    }
    if (bad_rows)
        fprintf(stderr, "  %s: %d rows differ\n", name, bad_rows);
    sampler_workspace_free(&ws);
    gpu->free(gpu, d);
    free(h);
    free(want);
    free(got);
}

static void test_penalty_state_across_steps(void)
{
    penalty_state_run("penalty state, whole vocabulary 32000", 32000, 0, 32000);
    penalty_state_run("penalty state, slice [16000, 32000)", 32000, 16000, 16000);
}

int main(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0)
        return test_skip("no CUDA device on this machine");
    vb_err err;
    if (vb_tuning_from_env(&knobs, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    gpu = cuda_backend_create(NULL, &knobs, &err);
    if (!gpu) {
        fprintf(stderr, "backend: %s\n", err.msg);
        return 1;
    }
    CHECK(gpu->summarize != NULL);
    CHECK(gpu->sample != NULL);
    RUN_TEST(test_summaries_match_host);
    RUN_TEST(test_run_sampler_same_tokens);
    RUN_TEST(test_penalty_state_across_steps);
    gpu->destroy(gpu);
    return test_summary();
}

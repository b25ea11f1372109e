/* The sampler: greedy is the argmax, penalties follow their formulas,
 * logprobs are the log-softmax of the processed logits, bad logits are
 * caught, and sampling over a vocabulary split across 1, 2, 4 (and uneven)
 * simulated ranks picks exactly the token the unsplit sampler picks.
 * Tolerances: logprobs 1e-5 absolute (float32 output of double math). */
#include "harness.h"

#include <stdlib.h>

#include "engine/sampler.h"
#include "engine/sampler_mpi.h"

static float frand(unsigned *state)
{
    *state = *state * 1103515245u + 12345u;
    return (float)((*state >> 8) & 0xffff) / 65536.0f;
}

static void random_logits(float *x, int n, unsigned seed, float scale)
{
    for (int i = 0; i < n; i++) x[i] = (frand(&seed) - 0.5f) * scale;
}

static sampler_row make_row(const sampling_params *p, uint32_t row, uint32_t step)
{
    return (sampler_row){.params = p, .row = row, .sample = 0, .step = step};
}

static void test_greedy_is_argmax(void)
{
    enum { V = 1000 };
    float x[V];
    sampler_workspace ws;
    sampler_workspace_init(&ws, V);
    sampling_params p = sampling_params_default();
    p.temperature = 0.0f;
    for (unsigned s = 1; s <= 20; s++) {
        random_logits(x, V, s, 20.0f);
        int arg = 0;
        for (int i = 1; i < V; i++)
            if (x[i] > x[arg]) arg = i;
        sampler_row r = make_row(&p, s, 0);
        sample_result out;
        CHECK_INT_EQ(sampler_sample(&ws, &r, x, V, &out), 0);
        CHECK_INT_EQ(out.token, arg);
    }
    /* Ties go to the lower id. */
    for (int i = 0; i < V; i++) x[i] = 0.0f;
    x[700] = x[300] = 1.0f;
    sampler_row r = make_row(&p, 0, 0);
    sample_result out;
    sampler_sample(&ws, &r, x, V, &out);
    CHECK_INT_EQ(out.token, 300);
    sampler_workspace_free(&ws);
}

/* HF repetition penalty: positive logits divided, negative multiplied,
 * once per distinct token of prompt + generated. Frequency / presence:
 * generated tokens only. Checked through greedy picks and logprobs. */
static void test_penalties(void)
{
    enum { V = 6 };
    float x[V] = {3.0f, 2.9f, -1.0f, 0.5f, 2.8f, -0.2f};
    sampler_workspace ws;
    sampler_workspace_init(&ws, V);
    sampling_params p = sampling_params_default();
    p.temperature = 0.0f;
    p.n_logprobs = V;
    int32_t prompt[3] = {0, 0, 2}, gen[3] = {4, 4, 1};
    sampler_row r = {.params = &p, .prompt = prompt, .n_prompt = 3};

    p.repetition_penalty = 2.0f;
    sample_result out;
    sampler_sample(&ws, &r, x, V, &out);
    CHECK_INT_EQ(out.token, 1); /* 3.0 -> 1.5 (once, though seen twice) */
    /* Processed: {1.5, 2.9, -2.0, 0.5, 2.8, -0.2}; logprob of 2 vs of 1. */
    float lp[V];
    for (int i = 0; i < out.n_top; i++) lp[out.top_tokens[i]] = out.top_logprobs[i];
    CHECK_NEAR(lp[2] - lp[1], -2.0 - 2.9, 1e-5);
    CHECK_NEAR(lp[0] - lp[1], 1.5 - 2.9, 1e-5);

    p.repetition_penalty = 1.0f;
    p.frequency_penalty = 0.3f;
    p.presence_penalty = 0.1f;
    r.generated = gen;
    r.n_generated = 3;
    sampler_sample(&ws, &r, x, V, &out);
    CHECK_INT_EQ(out.token, 0); /* prompt tokens are not penalised */
    for (int i = 0; i < out.n_top; i++) lp[out.top_tokens[i]] = out.top_logprobs[i];
    CHECK_NEAR(lp[4] - lp[0], (2.8 - 0.6 - 0.1) - 3.0, 1e-5);
    CHECK_NEAR(lp[1] - lp[0], (2.9 - 0.3 - 0.1) - 3.0, 1e-5);
    sampler_workspace_free(&ws);
}

/* logprob = log-softmax of the processed logits (after temperature),
 * alternatives best first; the chosen token's logprob matches. */
static void test_logprobs(void)
{
    enum { V = 50 };
    float x[V];
    random_logits(x, V, 7, 8.0f);
    sampler_workspace ws;
    sampler_workspace_init(&ws, V);
    sampling_params p = sampling_params_default();
    p.temperature = 0.5f;
    p.n_logprobs = 5;
    p.seed = 3;
    double z = 0, mx = -1e30;
    for (int i = 0; i < V; i++) mx = fmax(mx, x[i] / 0.5f);
    for (int i = 0; i < V; i++) z += exp(x[i] / 0.5f - mx);
    sampler_row r = make_row(&p, 0, 0);
    sample_result out;
    sampler_sample(&ws, &r, x, V, &out);
    CHECK_INT_EQ(out.n_top, 5);
    CHECK_NEAR(out.logprob, x[out.token] / 0.5f - mx - log(z), 1e-5);
    for (int i = 0; i < 5; i++) {
        CHECK_NEAR(out.top_logprobs[i], x[out.top_tokens[i]] / 0.5f - mx - log(z), 1e-5);
        if (i) CHECK(out.top_logprobs[i] <= out.top_logprobs[i - 1]);
    }
    sampler_workspace_free(&ws);
}

static void test_bad_logits_are_errors(void)
{
    float x[4] = {0.0f, NAN, 1.0f, 2.0f};
    sampler_workspace ws;
    sampler_workspace_init(&ws, 4);
    sampling_params p = sampling_params_default();
    sampler_row r = make_row(&p, 0, 0);
    sample_result out;
    CHECK_INT_EQ(sampler_sample(&ws, &r, x, 4, &out), -1);
    CHECK(out.error);
    CHECK_INT_EQ(out.token, -1);
    x[1] = INFINITY;
    CHECK_INT_EQ(sampler_sample(&ws, &r, x, 4, &out), -1);
    float masked[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    CHECK_INT_EQ(sampler_sample(&ws, &r, masked, 4, &out), -1);
    float some[4] = {-INFINITY, 0.5f, -INFINITY, -INFINITY};
    CHECK_INT_EQ(sampler_sample(&ws, &r, some, 4, &out), 0);
    CHECK_INT_EQ(out.token, 1);
    sampler_workspace_free(&ws);
}

/* The same key gives the same token; a different step or seed moves it. */
static void test_keyed_reproducible(void)
{
    enum { V = 64 };
    float x[V];
    for (int i = 0; i < V; i++) x[i] = 0.0f; /* uniform: any token possible */
    sampler_workspace ws;
    sampler_workspace_init(&ws, V);
    sampling_params p = sampling_params_default();
    p.seed = 42;
    sample_result a, b;
    int differ = 0;
    for (uint32_t step = 0; step < 20; step++) {
        sampler_row r = make_row(&p, 5, step);
        sampler_sample(&ws, &r, x, V, &a);
        sampler_sample(&ws, &r, x, V, &b);
        CHECK_INT_EQ(a.token, b.token);
        sampler_row r2 = make_row(&p, 6, step);
        sampler_sample(&ws, &r2, x, V, &b);
        differ += a.token != b.token;
    }
    CHECK(differ > 10);
    sampler_workspace_free(&ws);
}

/* Splits [0, V) into n_ranks shards at the given cut points, summarises
 * each shard as a rank would, gathers them into one buffer, merges,
 * chooses. */
static sample_result sample_split(const sampler_row *r, const float *x, const int *cuts, int n_ranks)
{
    const sampling_params *p = r->params;
    int n_cand = sampler_candidates_needed(&p, 1);
    size_t bytes = sampler_summary_bytes(n_cand);
    char *gathered = malloc(bytes * (size_t)n_ranks), *merged = malloc(bytes);
    for (int k = 0; k < n_ranks; k++) {
        sampler_workspace ws;
        int lo = cuts[k], hi = cuts[k + 1];
        sampler_workspace_init(&ws, hi - lo);
        sampler_summarize(&ws, r, x + lo, lo, hi - lo, n_cand, (sampler_summary *)(gathered + bytes * k));
        sampler_workspace_free(&ws);
    }
    sampler_merge_gathered(gathered, n_ranks, 1, n_cand, merged);
    sample_result out;
    sampler_choose(r, (sampler_summary *)merged, &out);
    free(gathered);
    free(merged);
    return out;
}

/* top-k keeps every token tied with the k-th, as transformers'
 * TopKLogitsWarper does (scores < the k-th score are cut), also when the
 * ties lie past the first k candidates; and a row's draw never depends on
 * --logprobs, which only asks for more candidates to report. Logits
 * {3, 2, 2, 2, 1, 0.5} at top-k 2: HF keeps ids 0-3. */
static void test_top_k_keeps_ties_with_the_kth(void)
{
    enum { V = 6, STEPS = 400 };
    const float x[V] = {3.0f, 2.0f, 2.0f, 2.0f, 1.0f, 0.5f};
    sampler_workspace ws;
    sampler_workspace_init(&ws, V);
    sampling_params p = sampling_params_default();
    p.top_k = 2;
    p.seed = 11;
    float probs[V];
    sampler_row r = make_row(&p, 0, 0);
    CHECK_INT_EQ(sampler_distribution(&ws, &r, x, V, probs), 0);
    for (int i = 1; i <= 3; i++) /* each tie as likely as the k-th itself */
        CHECK_NEAR(probs[i], probs[1], 1e-6);
    CHECK(probs[3] > 0.1f);
    CHECK_NEAR(probs[4] + probs[5], 0.0, 1e-12);
    sampling_params with_logprobs = p;
    with_logprobs.n_logprobs = V;
    int drawn[V] = {0}, differ = 0;
    for (uint32_t step = 0; step < STEPS; step++) {
        sampler_row a = make_row(&p, 0, step), b = make_row(&with_logprobs, 0, step);
        sample_result ra, rb;
        sampler_sample(&ws, &a, x, V, &ra);
        sampler_sample(&ws, &b, x, V, &rb);
        if (ra.token >= 0 && ra.token < V) drawn[ra.token]++;
        differ += ra.token != rb.token;
        /* split over two ranks between the ties: the same token */
        const int cuts[3] = {0, 2, V};
        differ += sample_split(&a, x, cuts, 2).token != ra.token;
    }
    CHECK_INT_EQ(differ, 0);
    CHECK(drawn[2] > 0 && drawn[3] > 0);
    CHECK_INT_EQ(drawn[4] + drawn[5], 0);
    sampler_workspace_free(&ws);
}

static void test_split_equals_unsplit(void)
{
    enum { V = 1003 };
    float x[V];
    sampling_params settings[8];
    for (int i = 0; i < 8; i++) {
        settings[i] = sampling_params_default();
        settings[i].seed = 1000 + (uint64_t)i;
        settings[i].n_logprobs = 3;
    }
    settings[0].temperature = 0.0f;
    settings[1].temperature = 0.8f;
    settings[2].top_k = 20;
    settings[3].top_p = 0.9f;
    settings[4].min_p = 0.05f;
    settings[5].top_k = 40; settings[5].top_p = 0.8f; settings[5].min_p = 0.02f; settings[5].temperature = 0.7f;
    settings[6].repetition_penalty = 1.3f; settings[6].frequency_penalty = 0.2f;
    settings[6].presence_penalty = 0.1f; settings[6].temperature = 1.2f; settings[6].top_p = 0.95f;
    settings[7].temperature = 0.0f; settings[7].repetition_penalty = 1.5f;
    const int cuts1[] = {0, V}, cuts2[] = {0, 502, V}, cuts4[] = {0, 251, 502, 753, V},
              uneven[] = {0, 1, 600, 601, V};
    const int *cuts[] = {cuts1, cuts2, cuts4, uneven};
    const int n_ranks[] = {1, 2, 4, 4};
    sampler_workspace ws;
    sampler_workspace_init(&ws, V);
    int32_t prompt[10], gen[10];
    int mismatches = 0, inexact = 0, trials = 0;
    for (unsigned s = 0; s < 25; s++) {
        random_logits(x, V, 100 + s, 30.0f); /* top-p/min-p sets stay under the candidate cap */
        for (int i = 0; i < 10; i++) {
            prompt[i] = (int32_t)((s * 37 + (unsigned)i * 101) % V);
            gen[i] = (int32_t)((s * 53 + (unsigned)i * 211) % V);
        }
        for (int k = 0; k < 8; k++) {
            sampler_row r = {.params = &settings[k], .row = s, .sample = s % 3, .step = s * 7,
                             .prompt = prompt, .n_prompt = 10, .generated = gen, .n_generated = 10};
            sample_result ref;
            sampler_sample(&ws, &r, x, V, &ref);
            inexact += ref.truncated_inexact;
            for (int c = 0; c < 4; c++) {
                sample_result got = sample_split(&r, x, cuts[c], n_ranks[c]);
                trials++;
                if (got.token != ref.token) {
                    mismatches++;
                    fprintf(stderr, "  setting %d split %d seed %u: %d != %d\n", k, c, s, got.token, ref.token);
                }
                CHECK_NEAR(got.logprob, ref.logprob, 1e-5);
                CHECK_INT_EQ(got.n_top, ref.n_top);
                for (int i = 0; i < got.n_top; i++) CHECK_INT_EQ(got.top_tokens[i], ref.top_tokens[i]);
            }
        }
    }
    CHECK_INT_EQ(mismatches, 0);
    CHECK_INT_EQ(inexact, 0);
    CHECK_INT_EQ(trials, 25 * 8 * 4);
    sampler_workspace_free(&ws);
}

/* Top-p on a flat distribution over more tokens than the candidate cap:
 * the result says it was inexact instead of pretending. */
static void test_truncation_beyond_candidates_is_flagged(void)
{
    enum { V = 4 * SAMPLER_TRUNCATION_CANDIDATES };
    static float x[V];
    sampler_workspace ws;
    sampler_workspace_init(&ws, V);
    sampling_params p = sampling_params_default();
    p.top_p = 0.9f;
    sampler_row r = make_row(&p, 0, 0);
    sample_result out;
    sampler_sample(&ws, &r, x, V, &out);
    CHECK(out.truncated_inexact);
    p.top_k = 10; /* top-k within the candidates: exact again */
    sampler_sample(&ws, &r, x, V, &out);
    CHECK(!out.truncated_inexact);
    CHECK(out.token >= 0 && out.token < 10);

    /* Even where inexact, a row's draw does not depend on the batch: more
     * candidates gathered for a neighbour (top_k 900) change nothing. */
    p.top_k = 0;
    for (int i = 0; i < V; i++) x[i] = (float)(i % 97) * 0.01f;
    for (uint32_t step = 0; step < 20; step++) {
        sampler_row rs = make_row(&p, 1, step);
        sampler_sample(&ws, &rs, x, V, &out);
        sampler_summary *big = malloc(sampler_summary_bytes(900));
        sampler_summarize(&ws, &rs, x, 0, V, 900, big);
        sample_result wide;
        sampler_choose(&rs, big, &wide);
        CHECK_INT_EQ(wide.token, out.token);
        CHECK(wide.truncated_inexact);
        free(big);
    }
    sampler_workspace_free(&ws);
}

int main(void)
{
    RUN_TEST(test_greedy_is_argmax);
    RUN_TEST(test_penalties);
    RUN_TEST(test_logprobs);
    RUN_TEST(test_bad_logits_are_errors);
    RUN_TEST(test_keyed_reproducible);
    RUN_TEST(test_split_equals_unsplit);
    RUN_TEST(test_top_k_keeps_ties_with_the_kth);
    RUN_TEST(test_truncation_beyond_candidates_is_flagged);
    return test_summary();
}

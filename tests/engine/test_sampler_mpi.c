/* The sampler over a real TP group: each rank holds a vocabulary shard of
 * every row's logits, condenses it, the group exchanges candidates with
 * sampler_exchange_mpi (MPI_Allgather), and every rank must choose the
 * token the unsplit sampler chooses on the whole row (computed locally
 * from the same deterministic logits), and the same logprobs (1e-5).
 * Run as: mpirun -np N test_sampler_mpi TP (N a multiple of TP). */
#include <stdlib.h>

#include "mpi/dist.h"
#include "mpi/mpi_check.h"
#include "engine/sampler.h"
#include "engine/sampler_mpi.h"
#include "harness.h"

#define V 1009 /* prime: the shards are uneven */
#define ROWS 48

static vb_dist d;

static float logit_of(int row, int token)
{
    uint32_t h = (uint32_t)row * 2654435761u ^ (uint32_t)token * 2246822519u;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    return ((float)(h & 0xffff) / 65536.0f - 0.5f) * 30.0f;
}

static sampling_params settings_for(int row)
{
    sampling_params p = sampling_params_default();
    p.seed = 99;
    p.n_logprobs = 4;
    switch (row % 6) {
    case 0: p.temperature = 0.0f; break;
    case 1: p.temperature = 0.9f; break;
    case 2: p.top_k = 25; break;
    case 3: p.top_p = 0.9f; p.temperature = 0.8f; break;
    case 4: p.min_p = 0.05f; p.top_p = 0.95f; break;
    default: p.repetition_penalty = 1.3f; p.presence_penalty = 0.2f; p.top_k = 50; p.top_p = 0.8f; break;
    }
    return p;
}

static void test_split_rows_match_unsplit(void)
{
    int lo = (int)((long)V * d.tp_rank / d.tp), hi = (int)((long)V * (d.tp_rank + 1) / d.tp);
    sampling_params params[ROWS];
    const sampling_params *pp[ROWS];
    for (int i = 0; i < ROWS; i++) {
        params[i] = settings_for(i);
        pp[i] = &params[i];
    }
    int n_cand = sampler_candidates_needed(pp, ROWS);
    size_t row_bytes = sampler_summary_bytes(n_cand);
    char *local = malloc(row_bytes * ROWS), *gathered = malloc(row_bytes * ROWS * (size_t)d.tp),
         *merged = malloc(row_bytes * ROWS);
    float *full = malloc(V * sizeof *full);
    int32_t history[8];
    sampler_workspace ws_local, ws_full;
    sampler_workspace_init(&ws_local, hi - lo);
    sampler_workspace_init(&ws_full, V);
    sampler_row rows[ROWS];
    for (int i = 0; i < ROWS; i++) {
        for (int k = 0; k < 8; k++) history[k] = (i * 131 + k * 17) % V;
        for (int t = 0; t < V; t++) full[t] = logit_of(i, t);
        rows[i] = (sampler_row){.params = &params[i], .row = (uint32_t)i, .sample = (uint32_t)i % 2,
                                .step = (uint32_t)i * 3, .prompt = history, .n_prompt = 8};
        sampler_summarize(&ws_local, &rows[i], full + lo, lo, hi - lo, n_cand, sampler_summary_at(local, i, n_cand));
    }
    vb_err err = {{0}};
    CHECK_INT_EQ(sampler_exchange_mpi(d.tp_comm, local, ROWS, n_cand, gathered, &err), 0);
    sampler_merge_gathered(gathered, d.tp, ROWS, n_cand, merged);
    int32_t tokens[ROWS];
    for (int i = 0; i < ROWS; i++) {
        for (int k = 0; k < 8; k++) history[k] = (i * 131 + k * 17) % V;
        for (int t = 0; t < V; t++) full[t] = logit_of(i, t);
        sample_result got, want;
        CHECK_INT_EQ(sampler_choose(&rows[i], sampler_summary_at(merged, i, n_cand), &got), 0);
        sampler_sample(&ws_full, &rows[i], full, V, &want);
        CHECK_INT_EQ(got.token, want.token);
        CHECK(!got.truncated_inexact);
        CHECK_NEAR(got.logprob, want.logprob, 1e-5);
        for (int k = 0; k < got.n_top; k++) CHECK_INT_EQ(got.top_tokens[k], want.top_tokens[k]);
        tokens[i] = got.token;
    }
    /* Every rank of the group chose the same tokens. */
    int32_t mins[ROWS], maxs[ROWS];
    MPI_CHECK(MPI_Allreduce(tokens, mins, ROWS, MPI_INT32_T, MPI_MIN, d.tp_comm));
    MPI_CHECK(MPI_Allreduce(tokens, maxs, ROWS, MPI_INT32_T, MPI_MAX, d.tp_comm));
    for (int i = 0; i < ROWS; i++) CHECK_INT_EQ(mins[i], maxs[i]);
    sampler_workspace_free(&ws_local);
    sampler_workspace_free(&ws_full);
    free(local);
    free(gathered);
    free(merged);
    free(full);
}

int main(int argc, char **argv)
{
    vb_dist_init(&argc, &argv);
    int tp = argc > 1 ? atoi(argv[1]) : 1;
    vb_err err;
    if (vb_dist_setup(&d, tp, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        vb_dist_finalize();
        return 1;
    }
    RUN_TEST(test_split_rows_match_unsplit);
    int local = test_failed, total = 0;
    MPI_CHECK(MPI_Allreduce(&local, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
    int rc = d.world_rank == 0 ? test_summary() : (test_failed ? 1 : 0);
    vb_dist_free(&d);
    vb_dist_finalize();
    return total ? 1 : rc;
}

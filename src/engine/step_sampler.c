/* Sampling for one scheduler step (see step_sampler.h). */
#include "engine/step_sampler.h"

#include <stdlib.h>
#include <string.h>

#include "engine/sampler_mpi.h"

int step_sampler_init(step_sampler *ss, int vocab_offset, int n_local, MPI_Comm tp_comm, int tp,
                      int max_rows, vb_err *err)
{
    memset(ss, 0, sizeof *ss);
    ss->vocab_offset = vocab_offset;
    ss->n_local = n_local;
    ss->tp_comm = tp_comm;
    ss->tp = tp;
    ss->max_rows = max_rows;
    ss->rows = malloc((size_t)max_rows * sizeof *ss->rows);
    ss->params = malloc((size_t)max_rows * sizeof *ss->params);
    if (!ss->rows || !ss->params || sampler_workspace_init(&ss->ws, n_local) < 0) {
        step_sampler_free(ss);
        return vb_err_set(err, "sampler: out of host memory for %d rows of %d logits", max_rows, n_local);
    }
    return 0;
}

void step_sampler_free(step_sampler *ss)
{
    sampler_workspace_free(&ss->ws);
    free(ss->rows);
    free(ss->params);
    free(ss->local);
    free(ss->gathered);
    free(ss->merged);
    memset(ss, 0, sizeof *ss);
}

static int reserve(step_sampler *ss, size_t bytes, vb_err *err)
{
    if (bytes <= ss->cap_bytes) return 0;
    free(ss->local);
    free(ss->gathered);
    free(ss->merged);
    ss->local = malloc(bytes);
    ss->gathered = malloc(bytes * (size_t)ss->tp);
    ss->merged = malloc(bytes);
    if (!ss->local || !ss->gathered || !ss->merged) {
        ss->cap_bytes = 0;
        return vb_err_set(err, "sampler: out of host memory for %zu bytes of candidates", bytes);
    }
    ss->cap_bytes = bytes;
    return 0;
}

int step_sampler_run(step_sampler *ss, const scheduler *s, const sched_step_plan *plan,
                     const float *logits, size_t logits_stride, step_sampler_lookup lookup,
                     void *lookup_ctx, int32_t *sampled, sample_result *results, vb_err *err)
{
    int n = plan->n_samples;
    if (n == 0) return 0;
    if (n > ss->max_rows)
        return vb_err_set(err, "sampler: %d rows in a step, set up for %d", n, ss->max_rows);
    for (int i = 0; i < plan->n_seqs; i++) {
        const sched_step_seq *st = &plan->seqs[i];
        if (st->sample_index < 0) continue;
        const sched_seq *q = sched_seq_get(s, st->slot);
        sampler_row *r = &ss->rows[st->sample_index];
        uint32_t row = 0, sample = 0;
        const sampling_params *p = lookup(lookup_ctx, st->id, &row, &sample);
        *r = (sampler_row){.params = p, .row = row, .sample = sample, .step = (uint32_t)st->n_generated,
                           .prompt = q->tokens, .n_prompt = q->n_prompt,
                           .generated = q->tokens + q->n_prompt, .n_generated = q->n_tokens - q->n_prompt};
        ss->params[st->sample_index] = p;
    }
    int n_cand = sampler_candidates_needed(ss->params, n);
    if (reserve(ss, (size_t)n * sampler_summary_bytes(n_cand), err) < 0) return -1;
    for (int k = 0; k < n; k++)
        sampler_summarize(&ss->ws, &ss->rows[k], logits + (size_t)k * logits_stride, ss->vocab_offset,
                          ss->n_local, n_cand, sampler_summary_at(ss->local, k, n_cand));
    const char *merged = ss->local;
    if (ss->tp > 1) {
        if (sampler_exchange_mpi(ss->tp_comm, ss->local, n, n_cand, ss->gathered, err) < 0) return -1;
        sampler_merge_gathered(ss->gathered, ss->tp, n, n_cand, ss->merged);
        merged = ss->merged;
    }
    for (int k = 0; k < n; k++) {
        sampler_choose(&ss->rows[k], sampler_summary_at((void *)merged, k, n_cand), &results[k]);
        sampled[k] = results[k].error ? 0 : results[k].token;
    }
    return 0;
}

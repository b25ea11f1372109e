/* Sampling for one scheduler step: the glue between sched_step_plan, the
 * forward pass's logits and the sampler, including the TP exchange.
 *
 * For every plan sequence with sample_index >= 0 the forward pass leaves
 * one row of fp32 logits for this rank's vocabulary shard, at
 * logits + sample_index * logits_stride. step_sampler_run builds each
 * row's sampler_row (key: the caller's row and sample, step = tokens
 * generated so far, from the plan; history: the sequence's tokens),
 * condenses the shards, gathers them over the TP group when tp > 1, and
 * writes the same sampled[sample_index] on every rank of the group, ready
 * for sched_step_done. A row whose logits held NaN / +Inf gets
 * results[k].error and sampled[k] = 0: finish that sequence with
 * finish_reason=error right after sched_step_done. */
#ifndef VB_STEP_SAMPLER_H
#define VB_STEP_SAMPLER_H

#include <mpi.h>

#include "engine/sampler.h"
#include "engine/scheduler.h"
#include "util/errors.h"

/* Where the caller keeps each sequence's settings: the id given to
 * sched_add maps to its input row, its sample number (0..n-1) and its
 * sampling_params (per row: rows may carry their own /seed). */
typedef const sampling_params *(*step_sampler_lookup)(void *ctx, int64_t id, uint32_t *row,
                                                      uint32_t *sample);

typedef struct step_sampler {
    sampler_workspace ws;
    int vocab_offset, n_local;  /* this rank's shard of the vocabulary */
    MPI_Comm tp_comm;           /* the TP group; unused when tp == 1 */
    int tp;
    int max_rows;
    sampler_row *rows;
    const sampling_params **params;
    char *local, *gathered, *merged; /* summaries, flat (sampler_summary_at) */
    size_t cap_bytes;
} step_sampler;

int step_sampler_init(step_sampler *ss, int vocab_offset, int n_local, MPI_Comm tp_comm, int tp,
                      int max_rows, vb_err *err);
void step_sampler_free(step_sampler *ss);

int step_sampler_run(step_sampler *ss, const scheduler *s, const sched_step_plan *plan,
                     const float *logits, size_t logits_stride, step_sampler_lookup lookup,
                     void *lookup_ctx, int32_t *sampled, sample_result *results, vb_err *err);

#endif

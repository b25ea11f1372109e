/* One step's sampling across a TP group.
 *
 * Each rank holds the logits of its vocabulary slice for the step's
 * sampling rows. It condenses every row into a sampler_summary (its best
 * candidates), the group exchanges the summaries (one MPI_Allgather of
 * bytes over tp_comm, never full logits), every rank merges them in rank
 * order and chooses: the same token on every rank of the group. With
 * tp = 1 the same code runs with one part. */
#ifndef VB_RUN_SAMPLE_H
#define VB_RUN_SAMPLE_H

#include <mpi.h>

#include "engine/sampler.h"
#include "util/errors.h"

typedef struct run_sampler {
    MPI_Comm tp_comm;
    int tp;
    int vocab_start, vocab_local;
    sampler_workspace ws;
    char *local, *gathered, *merged;
    size_t cap_local;              /* bytes of local / merged; gathered is tp times */
    const sampling_params **params;
    int cap_rows;
} run_sampler;

int run_sampler_init(run_sampler *s, MPI_Comm tp_comm, int tp, int vocab_start,
                     int vocab_local, vb_err *err);
void run_sampler_free(run_sampler *s);

/* Samples n rows: rows[i]'s logits (this rank's slice, vocab_local floats)
 * are at logits[i]. out[i] gets the token, or error set (NaN/Inf logits).
 * Collective over tp_comm. Returns 0, or -1 with err (out of memory, MPI). */
int run_sampler_step(run_sampler *s, const sampler_row *rows, const float *const *logits, int n,
                     sample_result *out, vb_err *err);

#endif

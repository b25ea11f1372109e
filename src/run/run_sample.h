/* One step's sampling across a TP group.
 *
 * Each rank holds the logits of its vocabulary slice for the step's
 * sampling rows. It condenses every row into a sampler_summary (its best
 * candidates), the group exchanges the summaries (one MPI_Allgather of
 * bytes over tp_comm, never full logits), every rank merges them in rank
 * order and chooses: the same token on every rank of the group. With
 * tp = 1 the same code runs with one part.
 *
 * Where the summaries are made: on the host (sampler_summarize over host
 * logits), or, when the backend has the `summarize` op (CUDA), on the
 * device where the logits are, so only the summaries cross to the host
 * (run_sampler_step_backend); at tp 1 the backend's `sample` op makes the
 * choice there too, and only the decisions cross. Every path gives the
 * same summaries and decisions (see kernels/sampler_summary.cu and
 * sampler_choose.cu for the rounding of sum_exp, exp and the Gumbel
 * scores), so the same tokens. host_only (VB_HOST_SAMPLER=1, util/env.h)
 * forces the host path (to compare them on a GPU). */
#ifndef VB_RUN_SAMPLE_H
#define VB_RUN_SAMPLE_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>

#include "cpu/cpu_pool.h"
#include "engine/sampler.h"
#include "run/run_backend.h"
#include "util/errors.h"

typedef struct run_sampler {
    MPI_Comm tp_comm;
    int tp;
    int vocab_start, vocab_local;
    sampler_workspace ws;
    char *local, *gathered, *merged;
    size_t cap_local;              /* bytes of local / merged; gathered is tp times */
    const sampling_params **params;
    int *logit_rows;               /* [cap_rows] row of each sample in the backend's logits */
    int cap_rows;
    bool host_only;                /* VB_HOST_SAMPLER=1: never the backend's summarize */
    cpu_pool *choose_pool;         /* threads for the choices of a large step, or NULL */
    long device_steps, host_steps; /* how each step was summarized */
} run_sampler;

/* choose_threads (counting the caller): the host threads that turn a
 * large step's merged summaries into tokens; 1 for none beside the caller.
 * A sampled row's choice draws a Gumbel score for each kept candidate
 * (sampler_choose): ~2.4 ms a step at ~490 rows of top-k 50 / top-p 0.95
 * on one thread, 9.5 % of a 7B decode step on an H200 (RESULTS.md,
 * session 13), while the host's other cores wait for the GPU. */
int run_sampler_init(run_sampler *s, MPI_Comm tp_comm, int tp, int vocab_start,
                     int vocab_local, bool host_only, int choose_threads, vb_err *err);
void run_sampler_free(run_sampler *s);

/* Samples n rows: rows[i]'s logits (this rank's slice, vocab_local floats)
 * are at logits[i], in host memory. out[i] gets the token, or error set
 * (NaN/Inf logits). Collective over tp_comm. Returns 0, or -1 with err
 * (out of memory, MPI). */
int run_sampler_step(run_sampler *s, const sampler_row *rows, const float *const *logits, int n,
                     sample_result *out, vb_err *err);

/* The same for logits still in the backend's memory: logits[n_logits] is
 * the step's buffer ([step rows, vocab_local] fp32, as forward_step returns
 * it) and row_logits[i] points at rows[i]'s row inside it. Summarizes on
 * the device when rb's backend can (only summaries are copied back);
 * otherwise copies the logits to the host (run_backend_logits) and
 * summarizes there. */
int run_sampler_step_backend(run_sampler *s, run_backend *rb, const float *logits,
                             size_t n_logits, const sampler_row *rows,
                             const float *const *row_logits, int n, sample_result *out,
                             vb_err *err);

#endif

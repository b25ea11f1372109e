/* Device-side sampling for the CUDA backend: the backend's `summarize` op
 * (forward/backend.h). It turns the step's logits, still on the GPU, into
 * the rows' sampler_summary (engine/sampler.h) with the kernel of
 * kernels/sampler_summary.cu, so only the summaries (48 bytes + 8 per
 * candidate a row) come back to the host, where the TP exchange, merge and
 * choice run unchanged (run/run_sample.c).
 *
 * Per call: the rows' arguments and penalty histories (only rows that use
 * penalties: their distinct tokens in this shard, with counts) go up in
 * two copies, one kernel runs, the summaries come back in one copy to a
 * pinned buffer; the stream is synchronised before returning. */
#ifndef VB_CUDA_SAMPLER_H
#define VB_CUDA_SAMPLER_H

#include <cuda_runtime_api.h>

#include "engine/sampler.h"

typedef struct cuda_sampler cuda_sampler;

/* Runs on `stream` (the backend's). Buffers grow on first use. */
cuda_sampler *cuda_sampler_create(cudaStream_t stream);
void cuda_sampler_destroy(cuda_sampler *s);

/* The largest n_cand the kernel takes; above it the caller summarizes
 * host logits (top-k beyond 1024 is rare and the host path is exact). */
int cuda_sampler_max_candidates(void);

/* sampler_summarize of rows[i] (i < n) on d_logits row logit_rows[i] (rows
 * of n_local floats, this rank's slice from vocab_offset), into host
 * `summaries` (n rows of sampler_summary_bytes(n_cand), sampler_summary_at).
 * Returns 0, or -1 (nothing done) when n_cand is above
 * cuda_sampler_max_candidates(). Aborts on CUDA errors (CUDA_CHECK). */
int cuda_sampler_summarize(cuda_sampler *s, const float *d_logits, const int *logit_rows,
                           const sampler_row *rows, int n, int vocab_offset, int n_local,
                           int n_cand, void *summaries);

#endif

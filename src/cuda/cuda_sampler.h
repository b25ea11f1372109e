/* Device-side sampling for the CUDA backend: the backend's `summarize` op
 * (forward/backend.h). It turns the step's logits, still on the GPU, into
 * the rows' sampler_summary (engine/sampler.h) with the kernel of
 * kernels/sampler_summary.cu, so only the summaries (48 bytes + 8 per
 * candidate a row) come back to the host, where the TP exchange, merge and
 * choice run unchanged (run/run_sample.c).
 *
 * Per call: the rows' arguments, the tokens each penalized row gained
 * since its last step (its seen bitmap stays on the GPU: cuda_seen.h) and
 * the generated-token counts of rows with frequency / presence penalties
 * go up in a few small copies, the kernels run (the bitmaps' update, pass
 * 1, with more than one candidate the compaction, then the summaries:
 * kernels/sampler_summary.cu), the summaries come back in one copy to a
 * pinned buffer (or, at tp 1, the `sample` op decides on the device too,
 * kernels/sampler_choose.cu, and only the decisions come back);
 * the stream is synchronised before returning. Host work per row is O(1)
 * a step, plus the generated tokens for frequency / presence penalties. */
#ifndef VB_CUDA_SAMPLER_H
#define VB_CUDA_SAMPLER_H

#include <cuda_runtime_api.h>

#include "engine/sampler.h"

typedef struct cuda_sampler cuda_sampler;

/* Runs on `stream` (the backend's). Buffers grow on first use (with more
 * than one candidate, ~72 KB of device scratch a row: the compact buffers
 * and the group maxima their threshold comes from).
 * pass1_chunks: blocks each row's first pass (and compaction) is split
 * over, 1 to 64 (the VB_SAMPLER_PASS1_CHUNKS diagnostic, and how the tests
 * run both paths), or 0 for the kernel's choice for this GPU. */
cuda_sampler *cuda_sampler_create(cudaStream_t stream, int pass1_chunks);
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

/* sampler_sample (engine/sampler.h) of rows[i] (i < n) over a whole
 * vocabulary of n_vocab tokens (tp 1): the summaries as
 * cuda_sampler_summarize makes them, and sampler_choose's decision, both
 * on the device (kernels/sampler_choose.cu); only the decisions come back,
 * into out[n]. n_cand: the step's, as for the summaries. Returns 0, or -1
 * (nothing done) when n_cand is above cuda_sampler_max_candidates() or no
 * row draws from a truncated set (top-k / top-p / min-p sampling): the
 * host's choice of every other row copies its summary's best token, less
 * than the launch and the larger copy back would cost. */
int cuda_sampler_sample(cuda_sampler *s, const float *d_logits, const int *logit_rows,
                        const sampler_row *rows, int n, int n_vocab, int n_cand,
                        sample_result *out);

#endif

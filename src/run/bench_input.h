/* Synthetic prompts for `voltbatch bench`: an input file of token ids, of
 * one length for every row or of per-row lengths drawn from a clamped
 * log-normal (the mixed lengths of a real prompt file, issue #19). */
#ifndef VB_BENCH_INPUT_H
#define VB_BENCH_INPUT_H

#include <stdint.h>

#include "util/errors.h"

/* The log-normal's sigma (of ln length). 0.8 spreads a mean of 600 over
 * about 120-1,600 tokens (5th-95th percentile) and keeps the clamped mean
 * within 0.6 % of the requested one for the ranges (600 in
 * 16-4,096: 596.8; 300 in 1-2,048: 298.4); 1.0 would lose 2.5 % to the
 * upper clamp. */
#define BENCH_LOGNORMAL_SIGMA 0.8

/* One length per row for `n` rows: round(exp(mu + sigma z)) clamped to
 * [min_len, max_len], mu = ln(mean) - sigma^2 / 2 (so the unclamped mean is
 * `mean`; the clamps move the realised mean, the report records it). z is
 * a standard normal by Box-Muller from two outputs of SplitMix64 (Steele,
 * Lea, Flood 2014) seeded with `seed`: row r of stream s uses outputs
 * 4r + 2s and 4r + 2s + 1, so a row's length depends only on (seed, row,
 * stream), not on the number of rows, and prompt lengths (stream 0) and
 * output lengths (stream 1) are independent. Needs 1 <= min_len <= max_len. */
void bench_lengths_lognormal(int32_t *out, int64_t n, double mean, int32_t min_len,
                             int32_t max_len, uint64_t seed, int stream);

/* The expected value of the clamped length above (before rounding to whole
 * tokens, which moves it by far less than a token): min P(X < min) +
 * max P(X > max) + E[X; min <= X <= max], in closed form. Shows what the
 * clamps do to the requested mean. */
double bench_lognormal_clamped_mean(double mean, double min_len, double max_len);

/* What bench_input_write writes. */
typedef struct bench_input_spec {
    int64_t n_prompts;
    int prefix_len;             /* ids every row starts with (a system prompt) */
    int input_len;              /* the row's own ids after them, when input_lens is NULL */
    const int32_t *input_lens;  /* or per row (n_prompts) */
    const int32_t *output_lens; /* per row /max_new_tokens; NULL: no such column */
    int32_t first_id, n_ids;    /* ids uniform in [first_id, first_id + n_ids) */
    uint64_t seed;
} bench_input_spec;

/* Writes `path` with /input_ids: each row prefix_len ids shared by every
 * row (row 0's first ones, for the prefix cache) followed by its own ids,
 * drawn in row order from one LCG stream seeded with spec->seed (the fixed
 * lengths give the same ids as before per-row lengths existed); and, with
 * output_lens, /max_new_tokens. The same file for the same spec. */
int bench_input_write(const char *path, const bench_input_spec *spec, vb_err *err);

#endif

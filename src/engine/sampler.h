/* The sampler: from one row's fp32 logits to the next token.
 *
 * Order of processing, as transformers' generate() applies it:
 *   1. repetition penalty (HF RepetitionPenaltyLogitsProcessor: each token
 *      seen in prompt + generated, once: logit < 0 ? logit * r : logit / r);
 *   2. frequency / presence penalties (OpenAI / vLLM semantics, over the
 *      generated tokens only: logit -= f * count + p * (count > 0));
 *   3. temperature (logit / T; T <= 0 means greedy, no division);
 *   4. truncation: top-k (ties with the k-th kept, as HF), then top-p (keep a
 *      token while the mass of better tokens is < p, as HF's
 *      TopPLogitsWarper), then min-p (keep p >= min_p * p_max, as HF's
 *      MinPLogitsWarper); each on the distribution the previous left;
 *   5. a draw from the softmax of what is kept, by Gumbel-max: the token with
 *      the largest logit + G, G = Gumbel noise from Philox keyed by
 *      (seed, row, sample, step, token id). The noise of a token does not
 *      depend on the batch, the other rows, or how the vocabulary is split.
 *
 * "Processed logits" below means after steps 1-3. Reported logprobs are the
 * log-softmax of the processed logits over the whole vocabulary (after
 * penalties and temperature, before truncation, so alternatives cut by
 * top-k/p are still finite); with greedy, temperature is taken as 1.
 *
 * Tensor parallelism. The logits of a row are split by vocabulary across
 * the TP ranks. Each rank condenses its shard into a sampler_summary:
 *   - log-sum-exp pieces (max, sum of exp) of its processed logits;
 *   - its best token: argmax of processed logit (greedy) or of
 *     processed logit + Gumbel noise (sampling without truncation);
 *   - its top n_cand candidates by processed logit (ties: lower id first).
 * Summaries are gathered (sampler_exchange_mpi) and merged
 * (sampler_summary_merge); every rank then decides the same token
 * (sampler_choose). Where that is exact:
 *   - greedy and pure temperature sampling: always, bit for bit (argmax of
 *     per-token values that do not depend on the split);
 *   - top-k: whenever top_k <= n_cand (the global top n_cand are each in
 *     their own rank's top n_cand);
 *   - top-p / min-p: whenever the kept set has fewer than n_cand tokens
 *     (detected: when every candidate is kept and the last kept one does
 *     not close the set, the result is marked `truncated_inexact`; the
 *     draw is then from the n_cand best, a slightly tighter cut). The
 *     top-p mass uses the global log-sum-exp, whose summation order
 *     depends on the split (relative difference ~1e-16).
 * The rule for n_cand: sampler_candidates_needed() = max over the batch's
 * rows of top_k + SAMPLER_TOP_K_TIE_CANDIDATES (room for the k-th's ties),
 * SAMPLER_TRUNCATION_CANDIDATES when top-p or min-p is on
 * without top-k, and the number of logprobs asked for; at least 1.
 * Unsplit sampling is the same code with one part. */
#ifndef VB_SAMPLER_H
#define VB_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SAMPLER_MAX_LOGPROBS 64          /* top-N alternatives at most (the CLI allows --logprobs 0..64) */
#define SAMPLER_TRUNCATION_CANDIDATES 256 /* candidates per rank for top-p/min-p without top-k */
/* Candidates past the k-th that top-k asks for: transformers keeps every
 * token tied with the k-th, and ties past the candidate list were cut (or
 * kept only when --logprobs happened to ask for more candidates, so
 * recording logprobs changed the sampled tokens). Up to this many ties
 * are kept exactly. */
#define SAMPLER_TOP_K_TIE_CANDIDATES 16
/* The smallest temperature that samples: the sampler divides the fp32
 * logits by it, and far below this (1e-40) they overflow to +-Inf, every
 * row an error row. The command line refuses less (0 is greedy);
 * generation_config.json's smaller values mean greedy, their limit. */
#define SAMPLER_MIN_TEMPERATURE 1e-5

typedef struct sampling_params {
    float temperature;        /* <= 0: greedy */
    int top_k;                /* <= 0: off */
    float top_p;              /* >= 1: off */
    float min_p;              /* <= 0: off */
    float repetition_penalty; /* 1: off */
    float frequency_penalty;  /* 0: off */
    float presence_penalty;   /* 0: off */
    uint64_t seed;
    int n_logprobs;           /* top-N alternatives to report, 0..SAMPLER_MAX_LOGPROBS */
} sampling_params;

/* Greedy off, temperature 1, no truncation, no penalties, seed 0. */
sampling_params sampling_params_default(void);

/* One row's decision: its settings, its key for random numbers, and its
 * history for the penalties. */
typedef struct sampler_row {
    const sampling_params *params;
    uint32_t row;             /* input row index */
    uint32_t sample;          /* 0..n-1 of --n samples of that row */
    uint32_t step;            /* tokens generated so far */
    const int32_t *prompt;    /* repetition penalty looks at prompt + generated */
    int n_prompt;
    const int32_t *generated; /* all penalties look at these */
    int n_generated;
    /* 1 + the scheduler slot the sequence holds, or 0 (none). A device
     * sampler keeps the sequence's penalty state there between steps and
     * sends only what its history gained; the state is rebuilt whenever
     * another (row, sample) held the slot, or at the first token
     * (n_generated 0). The host sampler ignores it. */
    int state_slot;
} sampler_row;

typedef struct sample_candidate {
    float logit;              /* processed */
    int32_t token;            /* vocabulary id (global) */
} sample_candidate;

/* One row's shard, condensed. n_cand sample_candidates follow it in memory
 * (sampler_summary_bytes), so a batch of rows is one flat buffer that MPI
 * can gather as bytes. */
typedef struct sampler_summary {
    double max_logit;         /* of processed logits; -inf when none finite */
    double sum_exp;           /* sum of exp(logit - max_logit); 0 when the row
                               * needs no log-sum-exp (no logprobs, no top-p
                               * over the whole vocabulary) */
    double best_score;        /* greedy: logit; sampling: logit + Gumbel */
    float best_logit;         /* processed logit of best_token */
    int32_t best_token;       /* -1 when the shard has none */
    int32_t n_cand;           /* candidates that follow, best first */
    int32_t bad;              /* a NaN or +Inf logit was seen */
    int32_t has_more;         /* finite tokens beyond the candidates exist */
    int32_t reserved;
} sampler_summary;

static inline size_t sampler_summary_bytes(int n_cand)
{ return sizeof(sampler_summary) + (size_t)n_cand * sizeof(sample_candidate); }
static inline sample_candidate *sampler_summary_cand(sampler_summary *s)
{ return (sample_candidate *)(s + 1); }
static inline const sample_candidate *sampler_summary_cand_const(const sampler_summary *s)
{ return (const sample_candidate *)(s + 1); }
/* Row i of a flat buffer of summaries with n_cand candidates each. */
static inline sampler_summary *sampler_summary_at(void *buf, int i, int n_cand)
{ return (sampler_summary *)((char *)buf + (size_t)i * sampler_summary_bytes(n_cand)); }
static inline const sampler_summary *sampler_summary_at_const(const void *buf, int i, int n_cand)
{ return (const sampler_summary *)((const char *)buf + (size_t)i * sampler_summary_bytes(n_cand)); }

typedef struct sample_result {
    int32_t token;            /* -1 when error */
    bool error;               /* NaN / +Inf in the logits, or nothing finite */
    bool truncated_inexact;   /* top-p/min-p wanted more than n_cand tokens */
    float logprob;            /* of token (see the header for which logits);
                               * NAN when params->n_logprobs is 0 (not computed) */
    int n_top;                /* params->n_logprobs alternatives, best first */
    int32_t top_tokens[SAMPLER_MAX_LOGPROBS];
    float top_logprobs[SAMPLER_MAX_LOGPROBS];
} sample_result;

/* Scratch sized for one vocabulary shard; one per thread. */
typedef struct sampler_workspace {
    int n_local;
    float *processed;         /* [n_local] */
    int32_t *counts;          /* [n_local] occurrences in generated */
    uint8_t *seen;            /* [n_local] in prompt or generated */
    sample_candidate *heap;   /* [heap_cap] top-K selection */
    int heap_cap;
} sampler_workspace;

int sampler_workspace_init(sampler_workspace *ws, int n_local);
void sampler_workspace_free(sampler_workspace *ws);

/* n_cand every rank must use for this batch (see the header). */
int sampler_candidates_needed(const sampling_params *const *params, int n_rows);

/* Condenses one row's shard logits [vocab_offset, vocab_offset + n_local)
 * into out (room for n_cand candidates). */
void sampler_summarize(sampler_workspace *ws, const sampler_row *row, const float *logits_local,
                       int vocab_offset, int n_local, int n_cand, sampler_summary *out);

/* Merges the summaries of one row from every rank (any order) into out. */
void sampler_summary_merge(const sampler_summary *const *parts, int n_parts, int n_cand,
                           sampler_summary *out);

/* Whether p samples greedily (temperature 0), and whether it draws from a
 * truncated set (top-k, top-p or min-p). The host's and the device's
 * samplers decide greedy / Gumbel / log-sum-exp by these two. */
bool sampler_is_greedy(const sampling_params *p);
bool sampler_truncates(const sampling_params *p);

/* The token for a merged summary. Returns 0, or -1 with out->error set. */
int sampler_choose(const sampler_row *row, const sampler_summary *merged, sample_result *out);

/* Unsplit convenience: summarize + choose over a whole vocabulary. */
int sampler_sample(sampler_workspace *ws, const sampler_row *row, const float *logits,
                   int n_vocab, sample_result *out);

/* The distribution sampler_sample draws from (0 for cut tokens), computed by
 * the same code: probs[n_vocab]. For tests. Returns -1 on bad logits. */
int sampler_distribution(sampler_workspace *ws, const sampler_row *row, const float *logits,
                         int n_vocab, float *probs);

#endif

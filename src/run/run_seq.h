/* One (row, sample) of a dp group while it generates: its prompt, its
 * sampling settings, what it has produced besides the scheduler's token
 * list (logprobs, the decoded text with --stop), and its end.
 *
 * The step loop (run_loop.c) hands every sampled token to run_seq_token,
 * which records it and decides whether the sequence is done: an error in
 * the logits, an eos id, a stop string, or max_new tokens. A finished
 * sequence becomes one output row (io/results.h) in the group's finished
 * list, with its completion text, and leaves the scheduler. */
#ifndef VB_RUN_SEQ_H
#define VB_RUN_SEQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/sampler.h"
#include "io/results.h"
#include "run/run_prompts.h"
#if RUN_HAVE_TOKENIZER
#include "tokenizer/stop.h"
#endif

/* One (row, sample) of this group: a scheduler sequence whose id is the
 * order it was made in, found by its scheduler slot (run_feed.h) while it
 * runs and freed when it finishes. */
typedef struct gen_seq {
    /* what the output row needs of its input row, which is freed once its
     * block is queued */
    int64_t row_index;          /* row number across shards */
    char *row_id;               /* string id, or NULL */
    int64_t row_id_int;         /* integer id */
    int64_t id;                 /* the scheduler's: the order sequences were made in */
    int32_t sample;
    int32_t *prompt;            /* shared by a row's samples; owned by sample 0 */
    int n_prompt;
    int max_new;
    sampling_params params;     /* the run's, with the row's /seed */
    bool keeps_logprobs;        /* leader, with --logprobs */
    float *logprobs;            /* [max_new] chosen tokens' (keeps_logprobs, from the first token) */
    int32_t *top_ids;           /* [max_new * top_n] */
    float *top_logprobs;
    /* with --stop: the completion decoded as it grows, and the matcher */
    bool streaming, stop_hit;
    bool stream_open;           /* ts and sm are made (at the first token) */
    bool stream_done;           /* the stream's held text was flushed (stream_end) */
#if RUN_HAVE_TOKENIZER
    tok_stream ts;
    stop_matcher sm;
#endif
    char *text;
    size_t text_len, text_cap;
} gen_seq;

typedef struct run_state run_state; /* run_state.h */

/* Records the logprobs of g's generated token number t (when g keeps
 * them: keeps_logprobs, and the token is no error). Its buffers, for
 * max_new tokens, are made at its first token. Returns 0 or -1 when out of
 * memory. */
int run_seq_record(gen_seq *g, const sample_result *res, int t, int32_t top_n);

/* After the scheduler took the step's tokens: the sequence with id `id`
 * in scheduler slot `slot` sampled `token` as its generated token number
 * generated - 1 (error: NaN or Inf in its logits, token 0 then). Finishes
 * it when that ends it: the error, an eos id (unless --ignore-eos), a stop
 * string, or max_new tokens. A failure (out of memory for the finished
 * row) ends the job. */
void run_seq_token(run_state *r, int64_t id, int slot, int32_t token, bool error,
                   int generated, long step);

/* Whether id is one of the eos ids. */
bool run_seq_is_eos(const int32_t *eos, int n_eos, int32_t id);

/* Frees what g owns (its prompt only when it is sample 0), not g. */
void run_seq_free(gen_seq *g);

#endif

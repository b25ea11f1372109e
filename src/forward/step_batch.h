/* One engine step as the forward pass sees it: a ragged batch of sequences,
 * each bringing some new tokens (a whole prompt, a prefill chunk, or one
 * decode token) on top of what it already has in the paged KV cache.
 *
 * The scheduler fills it with step_batch_add_seq() (or writes the flat
 * arrays itself); the layout is flat int32 arrays so a GPU backend copies
 * it to the device in a few memcpys. Positions of a sequence's new tokens
 * are contiguous and end at ctx_len - 1; every token attends to all of its
 * sequence's tokens at positions <= its own (the cached prefix plus the
 * earlier new tokens), so prefill, chunked prefill and decode are one case. */
#ifndef VB_STEP_BATCH_H
#define VB_STEP_BATCH_H

#include <stdbool.h>
#include <stdint.h>

typedef struct step_batch {
    int n_seqs, n_tokens;
    int max_seqs, max_tokens, max_blocks;   /* capacity (from step_batch_init) */
    int32_t *tokens;      /* [n_tokens] new token ids, sequences back to back */
    int32_t *positions;   /* [n_tokens] position of each new token in its sequence */
    int32_t *seq_start;   /* [n_seqs + 1] sequence s owns tokens [seq_start[s], seq_start[s+1]) */
    int32_t *ctx_len;     /* [n_seqs] tokens in the cache after this step (last position + 1) */
    int32_t *block_tables;/* [n_seqs * max_blocks] KV block ids, row s for sequence s;
                             entries past ceil(ctx_len / block_size) are unused (-1) */
    int used_blocks;      /* the most blocks a row holds (its leading entries) */
    bool all_logits;      /* true: logits for every new token (parity tests);
                             false: only for each sequence's last new token */
} step_batch;

/* Allocates the arrays for up to max_seqs sequences, max_tokens new tokens
 * and max_blocks blocks per sequence. Returns -1 when out of memory. */
int step_batch_init(step_batch *b, int max_seqs, int max_tokens, int max_blocks);
void step_batch_free(step_batch *b);
void step_batch_clear(step_batch *b);

/* Appends a sequence whose n_new tokens sit at positions pos0 .. pos0+n_new-1
 * and whose blocks (enough for pos0 + n_new tokens) are block_table[0..n_blocks).
 * Returns -1 (adding nothing) when the batch is full. */
int step_batch_add_seq(step_batch *b, const int32_t *tokens, int n_new, int pos0,
                       const int32_t *block_table, int n_blocks);

/* Rows of logits forward_step() produces for this batch. */
static inline int step_batch_n_out(const step_batch *b)
{
    return b->all_logits ? b->n_tokens : b->n_seqs;
}

#endif

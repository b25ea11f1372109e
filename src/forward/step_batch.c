/* Filling a step_batch: see step_batch.h. */
#include "forward/step_batch.h"

#include <stdlib.h>
#include <string.h>

int step_batch_init(step_batch *b, int max_seqs, int max_tokens, int max_blocks)
{
    memset(b, 0, sizeof *b);
    b->max_seqs = max_seqs;
    b->max_tokens = max_tokens;
    b->max_blocks = max_blocks;
    b->tokens = malloc(sizeof(int32_t) * (size_t)max_tokens);
    b->positions = malloc(sizeof(int32_t) * (size_t)max_tokens);
    b->seq_start = malloc(sizeof(int32_t) * (size_t)(max_seqs + 1));
    b->ctx_len = malloc(sizeof(int32_t) * (size_t)max_seqs);
    b->block_tables = malloc(sizeof(int32_t) * (size_t)max_seqs * (size_t)max_blocks);
    if (!b->tokens || !b->positions || !b->seq_start || !b->ctx_len || !b->block_tables) {
        step_batch_free(b);
        return -1;
    }
    step_batch_clear(b);
    return 0;
}

void step_batch_free(step_batch *b)
{
    free(b->tokens);
    free(b->positions);
    free(b->seq_start);
    free(b->ctx_len);
    free(b->block_tables);
    memset(b, 0, sizeof *b);
}

void step_batch_clear(step_batch *b)
{
    b->n_seqs = 0;
    b->n_tokens = 0;
    b->used_blocks = 0;
    if (b->seq_start)
        b->seq_start[0] = 0;
}

int step_batch_add_seq(step_batch *b, const int32_t *tokens, int n_new, int pos0,
                       const int32_t *block_table, int n_blocks)
{
    if (b->n_seqs >= b->max_seqs || b->n_tokens + n_new > b->max_tokens ||
        n_blocks > b->max_blocks || n_new <= 0)
        return -1;
    int s = b->n_seqs, t0 = b->n_tokens;
    memcpy(b->tokens + t0, tokens, sizeof(int32_t) * (size_t)n_new);
    for (int i = 0; i < n_new; i++)
        b->positions[t0 + i] = pos0 + i;
    int32_t *row = b->block_tables + (size_t)s * (size_t)b->max_blocks;
    memcpy(row, block_table, sizeof(int32_t) * (size_t)n_blocks);
    for (int i = n_blocks; i < b->max_blocks; i++)
        row[i] = -1;
    b->ctx_len[s] = pos0 + n_new;
    b->used_blocks = n_blocks > b->used_blocks ? n_blocks : b->used_blocks;
    b->n_tokens = t0 + n_new;
    b->n_seqs = s + 1;
    b->seq_start[s + 1] = b->n_tokens;
    return 0;
}

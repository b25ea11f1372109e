/* The device sampler's penalty state: for each sequence with a repetition,
 * frequency or presence penalty, a bitmap on the GPU of the tokens it has
 * seen (prompt + generated, one bit a token of the vocabulary slice),
 * kept between steps so that a step sends only the tokens the sequence
 * gained since its last one (usually one) instead of its whole history.
 *
 * Bitmaps live in an arena of entries; a sequence finds its entry by its
 * sampler_row.state_slot (a key unique among the live sequences), checked
 * against the (row, sample) that owns the entry. An entry is rebuilt from
 * the whole history when the key is new or held by another sequence, at a
 * sequence's first token (n_generated 0: a new run of the same rows), for
 * rows without a key, and after the arena was dropped; it is reused, least
 * recently used first, when the arena is full. Cost on the host: O(1) a
 * row a step, plus the history once per sequence. */
#ifndef VB_CUDA_SEEN_H
#define VB_CUDA_SEEN_H

#include <cuda_runtime_api.h>
#include <stdbool.h>

#include "engine/sampler.h"

typedef struct cuda_seen cuda_seen;

cuda_seen *cuda_seen_create(void);
void cuda_seen_destroy(cuda_seen *s); /* the stream must be idle */

/* Starts a call of up to n_rows rows with penalties over a slice of
 * n_local tokens: the arena holds at least 2 * n_rows entries after it.
 * Between calls only (the stream idle). */
void cuda_seen_begin(cuda_seen *s, int n_local, int n_rows);

/* The row's entry in the arena, with the tokens to add to its bitmap
 * queued: *added_start / *added_count index the call's added list, and
 * *reset says the entry must be cleared first. Rows of one call get
 * distinct entries. */
int cuda_seen_row(cuda_seen *s, const sampler_row *row, int vocab_offset, int n_local,
                  int *added_start, int *added_count, bool *reset);

/* Queues the call's added tokens for the device on `stream` and gives the
 * arena and the list there. Returns whether any row needs the update
 * launch (tokens added or an entry to clear). */
bool cuda_seen_upload(cuda_seen *s, cudaStream_t stream, unsigned **d_seen, const int **d_added);

#endif

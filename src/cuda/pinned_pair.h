/* A pinned host buffer and its device twin that grow together: how the
 * device sampler stages its per-step inputs and outputs. */
#ifndef VB_PINNED_PAIR_H
#define VB_PINNED_PAIR_H

#include <stddef.h>

/* Grows *h (pinned) and *d to at least `need` elements of `elem` bytes,
 * doubling from 64 so a growing batch reallocates a few times only; the
 * contents are not kept. Call between steps, when the stream is idle. */
void pinned_pair_grow(void **h, void **d, size_t *cap, size_t need, size_t elem);

/* Frees both (either may be NULL) and zeroes them. */
void pinned_pair_free(void **h, void **d, size_t *cap);

#endif

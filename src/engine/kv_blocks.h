/* The paged KV cache's block manager and prefix cache (host bookkeeping
 * only; the backend owns the memory the block ids index).
 *
 * The cache is n_blocks blocks of block_size token slots. A sequence holds
 * a block table (list of block ids); slot = block * block_size + offset.
 *
 * Prefix caching: once a block is full and its KV computed, it is published
 * under the hash of its token chain, chain_hash(parent's hash, its tokens),
 * so another sequence whose prompt starts with the same tokens reuses it
 * instead of recomputing. Blocks are reference-counted; a block whose count
 * drops to zero goes on the free list but keeps its contents and hash until
 * the allocator needs it, so it can still be hit. The free list is one LRU
 * queue: allocation takes from the head; unpublished blocks are freed to the
 * head (worthless), published ones to the tail (evicted last). A hit on a
 * free block takes it off the list. The published tokens and parent hash
 * are stored and compared on lookup, so a 64-bit hash collision can never
 * hand a sequence the wrong KV. */
#ifndef VB_KV_BLOCKS_H
#define VB_KV_BLOCKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/errors.h"

#define KV_NO_BLOCK (-1)

typedef struct kv_blocks {
    int n_blocks, block_size;
    int *ref_count;        /* holders of each block (sequences) */
    int *free_prev, *free_next; /* the free list, LRU order; -1 ends */
    bool *on_free_list;
    int free_head, free_tail, n_free;

    /* prefix cache: published blocks, chained hash table */
    bool *published;
    uint64_t *hash;        /* chain hash of a published block */
    uint64_t *parent_hash; /* its parent's chain hash (0 for the first block) */
    int32_t *tokens;       /* n_blocks * block_size: a published block's tokens */
    int *bucket_head, *bucket_next;
    uint64_t bucket_mask;
    long n_evicted;        /* published blocks reused for new contents */
} kv_blocks;

/* Device bytes one block takes on one rank: K and V, every layer, this
 * rank's KV heads. n_blocks = memory left for the cache / this. */
static inline size_t kv_block_bytes(int n_layers, int n_kv_heads_local, int head_dim, int block_size,
                                    int bytes_per_elem)
{
    return (size_t)2 * n_layers * n_kv_heads_local * head_dim * block_size * bytes_per_elem;
}

int kv_blocks_init(kv_blocks *kv, int n_blocks, int block_size, vb_err *err);
void kv_blocks_free(kv_blocks *kv);

/* Chain hash of a full block: depends on every token from the sequence's
 * start up to the block's end, through the parent's hash. Use 0 as the
 * parent of the first block. Never returns 0. */
uint64_t kv_blocks_chain_hash(uint64_t parent_hash, const int32_t *tokens, int n_tokens);

/* Takes a block off the free list with one reference, evicting the least
 * recently used published block when no unpublished one is free. Returns
 * KV_NO_BLOCK when every block is held. */
int kv_blocks_alloc(kv_blocks *kv);

/* Drops one reference; at zero the block goes on the free list (published:
 * tail, kept for hits; unpublished: head, reused first). */
void kv_blocks_release(kv_blocks *kv, int block);

/* The published block with this chain (hash, parent, block_size tokens), or
 * KV_NO_BLOCK. Changes nothing. */
int kv_blocks_find(const kv_blocks *kv, uint64_t hash, uint64_t parent_hash,
                   const int32_t *tokens);

/* Adds a reference to a block found by kv_blocks_find (taking it off the
 * free list if it was there). */
void kv_blocks_acquire(kv_blocks *kv, int block);

/* Publishes a held, full, computed block under its chain. If that chain is
 * already published by another block, nothing changes (the first copy
 * stays the one others hit) and false is returned. */
bool kv_blocks_publish(kv_blocks *kv, int block, uint64_t hash, uint64_t parent_hash,
                       const int32_t *tokens);

/* Blocks that kv_blocks_alloc can still hand out (free, published or not). */
static inline int kv_blocks_n_free(const kv_blocks *kv) { return kv->n_free; }
/* Blocks held by at least one sequence. */
static inline int kv_blocks_n_used(const kv_blocks *kv) { return kv->n_blocks - kv->n_free; }

/* Checks the invariants (free list consistent with reference counts, hash
 * table consistent with the published flags). Returns 0, or -1 with the
 * first broken invariant in err. For tests and debug builds. */
int kv_blocks_check(const kv_blocks *kv, vb_err *err);

#endif

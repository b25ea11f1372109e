/* KV block manager and prefix cache (see kv_blocks.h). */
#include "engine/kv_blocks.h"

#include <stdlib.h>
#include <string.h>

static void free_list_unlink(kv_blocks *kv, int b)
{
    int p = kv->free_prev[b], n = kv->free_next[b];
    if (p >= 0) kv->free_next[p] = n; else kv->free_head = n;
    if (n >= 0) kv->free_prev[n] = p; else kv->free_tail = p;
    kv->free_prev[b] = kv->free_next[b] = -1;
    kv->on_free_list[b] = false;
    kv->n_free--;
}

static void free_list_push_tail(kv_blocks *kv, int b)
{
    kv->free_prev[b] = kv->free_tail;
    kv->free_next[b] = -1;
    if (kv->free_tail >= 0) kv->free_next[kv->free_tail] = b; else kv->free_head = b;
    kv->free_tail = b;
    kv->on_free_list[b] = true;
    kv->n_free++;
}

static void free_list_push_head(kv_blocks *kv, int b)
{
    kv->free_next[b] = kv->free_head;
    kv->free_prev[b] = -1;
    if (kv->free_head >= 0) kv->free_prev[kv->free_head] = b; else kv->free_tail = b;
    kv->free_head = b;
    kv->on_free_list[b] = true;
    kv->n_free++;
}

int kv_blocks_init(kv_blocks *kv, int n_blocks, int block_size, vb_err *err)
{
    memset(kv, 0, sizeof *kv);
    if (n_blocks <= 0 || block_size <= 0)
        return vb_err_set(err, "kv cache: %d blocks of %d tokens: both must be positive "
                          "(lower --max-model-len or raise --gpu-memory-utilization)",
                          n_blocks, block_size);
    kv->n_blocks = n_blocks;
    kv->block_size = block_size;
    uint64_t n_buckets = 1;
    while (n_buckets < (uint64_t)n_blocks * 2) n_buckets <<= 1;
    kv->bucket_mask = n_buckets - 1;
    kv->ref_count = calloc((size_t)n_blocks, sizeof *kv->ref_count);
    kv->free_prev = malloc((size_t)n_blocks * sizeof *kv->free_prev);
    kv->free_next = malloc((size_t)n_blocks * sizeof *kv->free_next);
    kv->on_free_list = calloc((size_t)n_blocks, sizeof *kv->on_free_list);
    kv->published = calloc((size_t)n_blocks, sizeof *kv->published);
    kv->hash = calloc((size_t)n_blocks, sizeof *kv->hash);
    kv->parent_hash = calloc((size_t)n_blocks, sizeof *kv->parent_hash);
    kv->tokens = calloc((size_t)n_blocks * (size_t)block_size, sizeof *kv->tokens);
    kv->bucket_head = malloc(n_buckets * sizeof *kv->bucket_head);
    kv->bucket_next = malloc((size_t)n_blocks * sizeof *kv->bucket_next);
    if (!kv->ref_count || !kv->free_prev || !kv->free_next || !kv->on_free_list ||
        !kv->published || !kv->hash || !kv->parent_hash || !kv->tokens ||
        !kv->bucket_head || !kv->bucket_next) {
        kv_blocks_free(kv);
        return vb_err_set(err, "kv cache: out of host memory for %d blocks", n_blocks);
    }
    for (uint64_t i = 0; i < n_buckets; i++) kv->bucket_head[i] = -1;
    kv->free_head = kv->free_tail = -1;
    /* Ascending ids: the first allocations get blocks 0, 1, 2, ... */
    for (int b = 0; b < n_blocks; b++) {
        kv->bucket_next[b] = -1;
        free_list_push_tail(kv, b);
    }
    return 0;
}

void kv_blocks_free(kv_blocks *kv)
{
    free(kv->ref_count);
    free(kv->free_prev);
    free(kv->free_next);
    free(kv->on_free_list);
    free(kv->published);
    free(kv->hash);
    free(kv->parent_hash);
    free(kv->tokens);
    free(kv->bucket_head);
    free(kv->bucket_next);
    memset(kv, 0, sizeof *kv);
}

/* splitmix64's finaliser: a cheap full-avalanche mix. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

uint64_t kv_blocks_chain_hash(uint64_t parent_hash, const int32_t *tokens, int n_tokens)
{
    uint64_t h = mix64(parent_hash ^ 0x6a09e667f3bcc908ull);
    for (int i = 0; i < n_tokens; i++)
        h = mix64(h ^ (uint32_t)tokens[i]) + 0x9e3779b97f4a7c15ull;
    h = mix64(h ^ (uint64_t)n_tokens);
    return h ? h : 1; /* 0 is reserved for "no parent" */
}

static void unpublish(kv_blocks *kv, int b)
{
    int *link = &kv->bucket_head[kv->hash[b] & kv->bucket_mask];
    while (*link != b) link = &kv->bucket_next[*link];
    *link = kv->bucket_next[b];
    kv->bucket_next[b] = -1;
    kv->published[b] = false;
}

int kv_blocks_alloc(kv_blocks *kv)
{
    int b = kv->free_head;
    if (b < 0) return KV_NO_BLOCK;
    free_list_unlink(kv, b);
    if (kv->published[b]) {
        unpublish(kv, b);
        kv->n_evicted++;
    }
    kv->ref_count[b] = 1;
    return b;
}

void kv_blocks_release(kv_blocks *kv, int b)
{
    if (--kv->ref_count[b] > 0) return;
    if (kv->published[b]) free_list_push_tail(kv, b);
    else free_list_push_head(kv, b);
}

int kv_blocks_find(const kv_blocks *kv, uint64_t hash, uint64_t parent_hash,
                   const int32_t *tokens)
{
    size_t bs = (size_t)kv->block_size;
    for (int b = kv->bucket_head[hash & kv->bucket_mask]; b >= 0; b = kv->bucket_next[b])
        if (kv->hash[b] == hash && kv->parent_hash[b] == parent_hash &&
            memcmp(kv->tokens + (size_t)b * bs, tokens, bs * sizeof *tokens) == 0)
            return b;
    return KV_NO_BLOCK;
}

void kv_blocks_acquire(kv_blocks *kv, int b)
{
    if (kv->ref_count[b]++ == 0) free_list_unlink(kv, b);
}

bool kv_blocks_publish(kv_blocks *kv, int b, uint64_t hash, uint64_t parent_hash,
                       const int32_t *tokens)
{
    if (kv->published[b]) return false;
    if (kv_blocks_find(kv, hash, parent_hash, tokens) != KV_NO_BLOCK) return false;
    size_t bs = (size_t)kv->block_size;
    memcpy(kv->tokens + (size_t)b * bs, tokens, bs * sizeof *tokens);
    kv->hash[b] = hash;
    kv->parent_hash[b] = parent_hash;
    kv->published[b] = true;
    int *head = &kv->bucket_head[hash & kv->bucket_mask];
    kv->bucket_next[b] = *head;
    *head = b;
    return true;
}

int kv_blocks_check(const kv_blocks *kv, vb_err *err)
{
    int n = 0, prev = -1;
    for (int b = kv->free_head; b >= 0; prev = b, b = kv->free_next[b]) {
        if (++n > kv->n_blocks) return vb_err_set(err, "kv blocks: free list has a cycle");
        if (kv->free_prev[b] != prev) return vb_err_set(err, "kv blocks: free list back link of %d", b);
        if (kv->ref_count[b] != 0) return vb_err_set(err, "kv blocks: block %d free with %d refs", b, kv->ref_count[b]);
        if (!kv->on_free_list[b]) return vb_err_set(err, "kv blocks: block %d flag says not free", b);
    }
    if (prev != kv->free_tail) return vb_err_set(err, "kv blocks: free list tail");
    if (n != kv->n_free) return vb_err_set(err, "kv blocks: %d on free list, counter says %d", n, kv->n_free);
    int n_pub = 0, n_chained = 0;
    for (int b = 0; b < kv->n_blocks; b++) {
        if (kv->ref_count[b] < 0) return vb_err_set(err, "kv blocks: block %d has %d refs", b, kv->ref_count[b]);
        if (kv->ref_count[b] == 0 && !kv->on_free_list[b]) return vb_err_set(err, "kv blocks: block %d leaked (no refs, not free)", b);
        if (kv->ref_count[b] > 0 && kv->on_free_list[b]) return vb_err_set(err, "kv blocks: block %d held and free", b);
        n_pub += kv->published[b];
    }
    for (uint64_t i = 0; i <= kv->bucket_mask; i++)
        for (int b = kv->bucket_head[i]; b >= 0; b = kv->bucket_next[b]) {
            if (!kv->published[b] || (kv->hash[b] & kv->bucket_mask) != i)
                return vb_err_set(err, "kv blocks: block %d in the wrong hash bucket", b);
            if (++n_chained > kv->n_blocks) return vb_err_set(err, "kv blocks: hash chain cycle");
        }
    if (n_chained != n_pub) return vb_err_set(err, "kv blocks: %d published, %d in the table", n_pub, n_chained);
    return 0;
}

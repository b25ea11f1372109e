/* Open-addressing hash maps for the vocabulary and the merges (tok_hash.h).
 * Load factor stays at or under 1/2, so probes are short. */
#include "tokenizer/tok_hash.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a, then a final mix */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    h ^= h >> 29;
    return h * 0xbf58476d1ce4e5b9ull;
}

static uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < 2 * n)
        c <<= 1;
    return c;
}

int tok_str_map_init(tok_str_map *m, size_t expected)
{
    m->cap = pow2_at_least(expected);
    m->n = 0;
    m->keys = calloc(m->cap, sizeof *m->keys);
    m->key_lens = calloc(m->cap, sizeof *m->key_lens);
    m->vals = calloc(m->cap, sizeof *m->vals);
    return (m->keys && m->key_lens && m->vals) ? 0 : -1;
}

int tok_str_map_put(tok_str_map *m, const char *key, uint32_t len, int32_t val)
{
    if (2 * (m->n + 1) > m->cap)
        return -1; /* sized at init; callers count first */
    size_t mask = m->cap - 1, i = hash_bytes(key, len) & mask;
    while (m->keys[i]) {
        if (m->key_lens[i] == len && memcmp(m->keys[i], key, len) == 0) {
            m->vals[i] = val;
            return 0;
        }
        i = (i + 1) & mask;
    }
    m->keys[i] = key;
    m->key_lens[i] = len;
    m->vals[i] = val;
    m->n++;
    return 0;
}

int32_t tok_str_map_get(const tok_str_map *m, const char *key, size_t len)
{
    size_t mask = m->cap - 1, i = hash_bytes(key, len) & mask;
    while (m->keys[i]) {
        if (m->key_lens[i] == len && memcmp(m->keys[i], key, len) == 0)
            return m->vals[i];
        i = (i + 1) & mask;
    }
    return -1;
}

void tok_str_map_free(tok_str_map *m)
{
    free(m->keys);
    free(m->key_lens);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

int tok_pair_map_init(tok_pair_map *m, size_t expected)
{
    m->cap = pow2_at_least(expected);
    m->n = 0;
    m->slots = malloc(m->cap * sizeof *m->slots);
    if (!m->slots)
        return -1;
    for (size_t i = 0; i < m->cap; i++)
        m->slots[i].key = UINT64_MAX;
    return 0;
}

int tok_pair_map_put(tok_pair_map *m, int32_t left, int32_t right, int32_t rank, int32_t merged)
{
    if (2 * (m->n + 1) > m->cap)
        return -1;
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    size_t mask = m->cap - 1, i = hash_u64(key) & mask;
    while (m->slots[i].key != UINT64_MAX) {
        if (m->slots[i].key == key)
            return 0;
        i = (i + 1) & mask;
    }
    m->slots[i] = (tok_merge){key, rank, merged};
    m->n++;
    return 0;
}

const tok_merge *tok_pair_map_get(const tok_pair_map *m, int32_t left, int32_t right)
{
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    size_t mask = m->cap - 1, i = hash_u64(key) & mask;
    while (m->slots[i].key != UINT64_MAX) {
        if (m->slots[i].key == key)
            return &m->slots[i];
        i = (i + 1) & mask;
    }
    return NULL;
}

void tok_pair_map_free(tok_pair_map *m)
{
    free(m->slots);
    memset(m, 0, sizeof *m);
}

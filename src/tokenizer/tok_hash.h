/* Hash maps the tokenizer needs: byte strings to ids (the vocabulary) and
 * id pairs to merges. Open addressing, sized once at load, read-only after. */
#ifndef VB_TOK_HASH_H
#define VB_TOK_HASH_H

#include <stddef.h>
#include <stdint.h>

typedef struct tok_str_map {
    const char **keys;   /* borrowed: point into the tokenizer's piece table */
    uint32_t *key_lens;
    int32_t *vals;
    size_t cap;          /* power of two */
    size_t n;
} tok_str_map;

typedef struct tok_merge {
    uint64_t key;        /* left << 32 | right; UINT64_MAX = empty */
    int32_t rank, merged;
} tok_merge;

typedef struct tok_pair_map {
    tok_merge *slots;
    size_t cap;
    size_t n;
} tok_pair_map;

int tok_str_map_init(tok_str_map *m, size_t expected);
/* Inserts or overwrites. Key memory must outlive the map. */
int tok_str_map_put(tok_str_map *m, const char *key, uint32_t len, int32_t val);
int32_t tok_str_map_get(const tok_str_map *m, const char *key, size_t len); /* -1 absent */
void tok_str_map_free(tok_str_map *m);

int tok_pair_map_init(tok_pair_map *m, size_t expected);
/* Keeps the first (lowest rank) entry for a pair, as HF does. */
int tok_pair_map_put(tok_pair_map *m, int32_t left, int32_t right, int32_t rank, int32_t merged);
const tok_merge *tok_pair_map_get(const tok_pair_map *m, int32_t left, int32_t right);
void tok_pair_map_free(tok_pair_map *m);

#endif

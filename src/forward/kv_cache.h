/* The paged KV cache's memory: per layer one K and one V buffer of
 * [num_blocks, block_size, kv_heads_local, head_dim] in the backend's
 * activation dtype, or int8 with per-row scales (b->kv_dtype, the layout
 * of forward/kv_int8.h). Which block belongs to which sequence is the engine's
 * business (its block manager fills the step_batch's block tables); this
 * file only owns the bytes. */
#ifndef VB_KV_CACHE_H
#define VB_KV_CACHE_H

#include <stddef.h>

#include "forward/backend.h"
#include "util/errors.h"

typedef struct vb_kv_cache {
    int n_layers, num_blocks, block_size, kv_heads, head_dim;
    vb_kv_dtype dtype;  /* the backend's kv_dtype when allocated */
    void **k, **v;      /* [n_layers] backend buffers */
} vb_kv_cache;

/* Bytes one block takes over all layers, K and V, in b->kv_dtype (for
 * sizing num_blocks). */
size_t kv_cache_block_bytes(const vb_backend *b, int n_layers, int block_size,
                            int kv_heads, int head_dim);

/* In b->kv_dtype; an int8 cache on a backend without kv_int8 is refused. */
int kv_cache_alloc(vb_kv_cache *kv, vb_backend *b, int n_layers, int num_blocks,
                   int block_size, int kv_heads, int head_dim, vb_err *err);
void kv_cache_free(vb_kv_cache *kv, vb_backend *b);

#endif

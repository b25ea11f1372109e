/* KV cache memory: see kv_cache.h. */
#include "forward/kv_cache.h"

#include <stdlib.h>
#include <string.h>

#include "forward/kv_int8.h"

/* One layer's K (or V) bytes for one block. */
static size_t layer_block_bytes(const vb_backend *b, int block_size, int kv_heads, int head_dim)
{
    if (b->kv_dtype == VB_KV_INT8)
        return kv_int8_block_bytes(block_size, kv_heads, head_dim);
    return (size_t)block_size * (size_t)kv_heads * (size_t)head_dim * b->act_size;
}

size_t kv_cache_block_bytes(const vb_backend *b, int n_layers, int block_size,
                            int kv_heads, int head_dim)
{
    return 2 * (size_t)n_layers * layer_block_bytes(b, block_size, kv_heads, head_dim);
}

int kv_cache_alloc(vb_kv_cache *kv, vb_backend *b, int n_layers, int num_blocks,
                   int block_size, int kv_heads, int head_dim, vb_err *err)
{
    memset(kv, 0, sizeof *kv);
    if (b->kv_dtype == VB_KV_INT8 && !b->kv_int8)
        return vb_err_set(err, "--kv-cache-dtype int8 is not supported by the %s backend yet",
                          b->name);
    kv->dtype = b->kv_dtype;
    kv->n_layers = n_layers;
    kv->num_blocks = num_blocks;
    kv->block_size = block_size;
    kv->kv_heads = kv_heads;
    kv->head_dim = head_dim;
    kv->k = calloc((size_t)n_layers, sizeof(void *));
    kv->v = calloc((size_t)n_layers, sizeof(void *));
    size_t bytes = (size_t)num_blocks * layer_block_bytes(b, block_size, kv_heads, head_dim);
    if (!kv->k || !kv->v)
        goto oom;
    for (int l = 0; l < n_layers; l++) {
        kv->k[l] = b->alloc(b, bytes);
        kv->v[l] = b->alloc(b, bytes);
        if (!kv->k[l] || !kv->v[l])
            goto oom;
    }
    return 0;
oom:
    kv_cache_free(kv, b);
    return vb_err_set(err, "KV cache: out of %s memory for %d blocks of %d tokens x %d layers",
                      b->name, num_blocks, block_size, n_layers);
}

void kv_cache_free(vb_kv_cache *kv, vb_backend *b)
{
    for (int l = 0; kv->k && l < kv->n_layers; l++) {
        if (kv->k[l])
            b->free(b, kv->k[l]);
        if (kv->v && kv->v[l])
            b->free(b, kv->v[l]);
    }
    free(kv->k);
    free(kv->v);
    memset(kv, 0, sizeof *kv);
}

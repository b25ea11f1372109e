/* The int8 KV cache (--kv-cache-dtype int8, issue #21): half the bytes of
 * fp16 K/V a position, so twice the sequences fit and decode attention
 * reads half as much.
 *
 * Each (token, KV head) row of head_dim values is quantized on its own,
 * symmetric: scale = max |x| / 127, q = x * (127 / max |x|) rounded to
 * nearest (ties to even) and clamped to [-127, 127], read back as
 * q * scale (a row of zeros, or one holding an infinity, is stored as
 * zeros with scale 0; a NaN value as 0). K is stored after RoPE, as the fp16 cache stores it. A row's own
 * scale keeps one outlier token or head from costing the others their
 * precision (a scale per block or per layer would).
 *
 * One layer's K (or V) buffer holds num_blocks blocks; block b starts at
 * byte b * kv_int8_block_bytes() and holds
 *   [block_size][kv_heads][head_dim] int8 values, then
 *   [block_size][kv_heads] fp32 scales,
 * so a block's values are laid out as the fp16 cache's (slot-major) and
 * its scales, 16-byte aligned, follow them (block_size 16). */
#ifndef VB_KV_INT8_H
#define VB_KV_INT8_H

#include <stddef.h>
#include <stdint.h>

static inline size_t kv_int8_block_bytes(int block_size, int kv_heads, int head_dim)
{
    return (size_t)block_size * (size_t)kv_heads * ((size_t)head_dim + sizeof(float));
}

/* Byte offsets in a layer's buffer of the values of KV head h at slot
 * `slot` (block * block_size + row), and of its fp32 scale. */
static inline size_t kv_int8_values_at(size_t slot, int h, int block_size, int kv_heads,
                                       int head_dim)
{
    size_t block = slot / (size_t)block_size, row = slot % (size_t)block_size;
    return block * kv_int8_block_bytes(block_size, kv_heads, head_dim) +
           (row * (size_t)kv_heads + (size_t)h) * (size_t)head_dim;
}

static inline size_t kv_int8_scale_at(size_t slot, int h, int block_size, int kv_heads,
                                      int head_dim)
{
    size_t block = slot / (size_t)block_size, row = slot % (size_t)block_size;
    return block * kv_int8_block_bytes(block_size, kv_heads, head_dim) +
           (size_t)block_size * (size_t)kv_heads * (size_t)head_dim +
           (row * (size_t)kv_heads + (size_t)h) * sizeof(float);
}

/* Quantizes x[n] into q[n] and *scale as above. */
void kv_int8_quantize(const float *x, int n, int8_t *q, float *scale);

#endif

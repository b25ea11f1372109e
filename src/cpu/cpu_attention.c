/* RoPE + KV-cache write and paged causal attention for a ragged batch, on
 * the CPU. The slot of position p of sequence s is
 *   block_tables[s][p / block_size] * block_size + p % block_size,
 * and a slot holds kv_heads * head_dim floats, or, in an int8 cache
 * (b->kv_dtype), int8 values and a scale per head (forward/kv_int8.h). */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cpu/cpu_internal.h"
#include "forward/kv_int8.h"

static inline size_t kv_slot(const step_batch *sb, int s, int pos, int block_size)
{
    int32_t block = sb->block_tables[(size_t)s * sb->max_blocks + pos / block_size];
    return (size_t)block * block_size + pos % block_size;
}

/* Rotate-half RoPE of one head, as transformers' apply_rotary_pos_emb. */
static void rope_head(float *x, int pos, const float *inv_freq, float scale, int head_dim)
{
    int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        float a = (float)pos * inv_freq[i];
        float c = cosf(a) * scale, s = sinf(a) * scale;
        float x0 = x[i], x1 = x[i + half];
        x[i] = x0 * c - x1 * s;
        x[i + half] = x1 * c + x0 * s;
    }
}

void cpu_rope_kv_write(vb_backend *b, void *q_, void *k_, const void *v_,
                       void *k_cache, void *v_cache, const void *inv_freq_,
                       float cos_sin_scale, int heads, int kv_heads,
                       int head_dim, int block_size)
{
    cpu_ctx *c = cpu_ctx_of(b);
    const step_batch *sb = c->step;
    float *q = q_, *k = k_;
    const float *v = v_, *inv_freq = inv_freq_;
    size_t kv_row = (size_t)kv_heads * head_dim;
    /* Cheap next to the matmuls: one thread. */
    for (int t = 0; t < sb->n_tokens; t++) {
        int pos = sb->positions[t];
        for (int h = 0; h < heads; h++)
            rope_head(q + ((size_t)t * heads + h) * head_dim, pos, inv_freq, cos_sin_scale, head_dim);
        for (int h = 0; h < kv_heads; h++)
            rope_head(k + ((size_t)t * kv_heads + h) * head_dim, pos, inv_freq, cos_sin_scale, head_dim);
        size_t slot = kv_slot(sb, c->tok_seq[t], pos, block_size);
        if (b->kv_dtype == VB_KV_INT8) {
            for (int h = 0; h < kv_heads; h++) {
                size_t row = t * kv_row + (size_t)h * head_dim;
                size_t at = kv_int8_values_at(slot, h, block_size, kv_heads, head_dim);
                size_t sc = kv_int8_scale_at(slot, h, block_size, kv_heads, head_dim);
                kv_int8_quantize(k + row, head_dim, (int8_t *)((char *)k_cache + at),
                                 (float *)((char *)k_cache + sc));
                kv_int8_quantize(v + row, head_dim, (int8_t *)((char *)v_cache + at),
                                 (float *)((char *)v_cache + sc));
            }
            continue;
        }
        memcpy((float *)k_cache + slot * kv_row, k + t * kv_row, kv_row * sizeof(float));
        memcpy((float *)v_cache + slot * kv_row, v + t * kv_row, kv_row * sizeof(float));
    }
}

typedef struct att_args {
    cpu_ctx *c;
    float *out;
    const float *q;
    const void *k_cache, *v_cache;
    bool int8;          /* the cache's dtype (forward/kv_int8.h) */
    int heads, kv_heads, head_dim, block_size;
    float scale;
} att_args;

/* Position j's K or V row of KV head kvh: in place for a float cache, or
 * dequantized into buf for an int8 one. */
static const float *kv_row_at(const att_args *a, const void *cache, size_t slot, int kvh,
                              float *buf)
{
    int hd = a->head_dim;
    if (!a->int8)
        return (const float *)cache + slot * (size_t)a->kv_heads * hd + (size_t)kvh * hd;
    const char *base = cache;
    const int8_t *qv =
        (const int8_t *)(base + kv_int8_values_at(slot, kvh, a->block_size, a->kv_heads, hd));
    float sc;
    memcpy(&sc, base + kv_int8_scale_at(slot, kvh, a->block_size, a->kv_heads, hd), sizeof sc);
    for (int i = 0; i < hd; i++)
        buf[i] = (float)qv[i] * sc;
    return buf;
}

/* One (token, query head): online softmax over positions 0..pos, the same
 * recurrence the GPU kernels use, with max subtraction for stability. */
static void att_task(void *arg, int task, int worker)
{
    (void)worker;
    const att_args *a = arg;
    const step_batch *sb = a->c->step;
    int t = task / a->heads, h = task % a->heads;
    int s = a->c->tok_seq[t], pos = sb->positions[t], hd = a->head_dim;
    int kvh = h / (a->heads / a->kv_heads);
    const float *q = a->q + ((size_t)t * a->heads + h) * hd;
    float acc[512], kbuf[512], vbuf[512];
    memset(acc, 0, sizeof(float) * (size_t)hd);
    float m = -INFINITY, l = 0.0f;
    for (int j = 0; j <= pos; j++) {
        size_t slot = kv_slot(sb, s, j, a->block_size);
        const float *kr = kv_row_at(a, a->k_cache, slot, kvh, kbuf);
        const float *vr = kv_row_at(a, a->v_cache, slot, kvh, vbuf);
        float score = 0.0f;
        for (int i = 0; i < hd; i++)
            score += q[i] * kr[i];
        score *= a->scale;
        if (score > m) {
            float corr = expf(m - score); /* exp(-inf) = 0 on the first key */
            l *= corr;
            for (int i = 0; i < hd; i++)
                acc[i] *= corr;
            m = score;
        }
        float p = expf(score - m);
        l += p;
        for (int i = 0; i < hd; i++)
            acc[i] += p * vr[i];
    }
    float *o = a->out + ((size_t)t * a->heads + h) * hd;
    for (int i = 0; i < hd; i++)
        o[i] = acc[i] / l;
}

void cpu_attention(vb_backend *b, void *out, const void *q, const void *k_cache,
                   const void *v_cache, int heads, int kv_heads, int head_dim,
                   int block_size, float scale)
{
    cpu_ctx *c = cpu_ctx_of(b);
    att_args a = {.c = c, .out = out, .q = q, .k_cache = k_cache, .v_cache = v_cache,
                  .int8 = b->kv_dtype == VB_KV_INT8, .heads = heads, .kv_heads = kv_heads,
                  .head_dim = head_dim, .block_size = block_size, .scale = scale};
    cpu_pool_run(c->pool, c->step->n_tokens * heads, att_task, &a);
}

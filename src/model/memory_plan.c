/* memory_plan_make: see memory_plan.h. The overhead lines are estimates of
 * what the CUDA backend allocates besides weights and KV cache; each says
 * how it is computed so a measured figure can replace a guess. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "model/memory_plan.h"
#include "qgemv_tiles.h"

#define MiB (1024ull * 1024ull)

uint64_t model_parameter_count(const model_config *c)
{
    uint64_t H = (uint64_t)c->hidden_size, hd = (uint64_t)c->head_dim;
    uint64_t q = (uint64_t)c->n_heads * hd, kv = (uint64_t)c->n_kv_heads * hd;
    uint64_t layer = H * q + 2 * H * kv + q * H            /* q, k, v, o */
                     + 3 * H * (uint64_t)c->intermediate_size /* gate, up, down */
                     + 2 * H;                             /* two norms */
    if (c->attention_bias)
        layer += q + 2 * kv;
    if (c->qk_norm)
        layer += 2 * hd;
    uint64_t embed = (uint64_t)c->vocab_size * H;
    return embed * (c->tie_word_embeddings ? 1 : 2) + (uint64_t)c->n_layers * layer + H;
}

/* This rank's parameters after the split. */
static uint64_t rank_parameters(const model_config *c, const tp_plan *p)
{
    uint64_t H = (uint64_t)c->hidden_size, hd = (uint64_t)c->head_dim;
    uint64_t q = (uint64_t)p->heads_local * hd, kv = (uint64_t)p->kv_heads_local * hd;
    uint64_t layer = H * q + 2 * H * kv + q * H + 3 * H * (uint64_t)p->inter_local + 2 * H;
    if (c->attention_bias)
        layer += q + 2 * kv;
    if (c->qk_norm)
        layer += 2 * hd;
    uint64_t embed = (uint64_t)p->vocab_local * H;
    return embed * (c->tie_word_embeddings ? 1 : 2) + (uint64_t)c->n_layers * layer + H;
}

/* memory_plan.h; groups of an act-order rank holding part of the input
 * dimension are kept whole, hence in_full. */
uint64_t memory_plan_qlinear_bytes(const vb_quant_config *q, uint64_t out, uint64_t in,
                                   uint64_t in_full)
{
    uint64_t g = q->group_size > 0 ? (uint64_t)q->group_size : in;
    uint64_t groups = q->desc_act && in != in_full ? (in_full + g - 1) / g : (in + g - 1) / g;
    uint64_t b = out * in * (uint64_t)q->bits / 8 + out * groups * 4;
    if (q->desc_act)
        b += in * 4 * (in != in_full ? 2 : 1);
    return b;
}

/* This rank's weight bytes: fp16, or for a quantized checkpoint its
 * projections in the internal layout and the rest (embeddings, norms,
 * biases, lm_head) in fp16. */
uint64_t memory_plan_layer_qbytes(const model_config *c, const tp_plan *p, uint64_t *params)
{
    const vb_quant_config *q = &c->quant;
    uint64_t H = (uint64_t)c->hidden_size, hd = (uint64_t)c->head_dim;
    uint64_t ql = (uint64_t)p->heads_local * hd, kvl = (uint64_t)p->kv_heads_local * hd;
    uint64_t qf = (uint64_t)c->n_heads * hd, il = (uint64_t)p->inter_local;
    *params = H * ql + 2 * H * kvl + ql * H + 3 * H * il;
    return memory_plan_qlinear_bytes(q, ql, H, H) + 2 * memory_plan_qlinear_bytes(q, kvl, H, H) +
           memory_plan_qlinear_bytes(q, H, ql, qf) + 2 * memory_plan_qlinear_bytes(q, il, H, H) +
           memory_plan_qlinear_bytes(q, H, il, (uint64_t)c->intermediate_size);
}

/* One projection's tiled scales and zeros (kernels/qgemv_tiles.h): out
 * rows of in columns on this rank, in_full in the checkpoint; act order on
 * part of the input keeps g_idx (none then). */
static uint64_t tiles_of(const vb_quant_config *q, int64_t out, int64_t in, int64_t in_full)
{
    const int64_t g = q->group_size > 0 ? q->group_size : in;
    return qgemv_sz_tiles_bytes(q->bits, out, in, g, (in + g - 1) / g,
                                q->desc_act && in != in_full);
}

/* A layer's, as cuda_qweights_tile_scales makes them: q/k/v and gate/up
 * joined unless act order (a permutation: the loader joins none). */
static uint64_t gemv_tiles_bytes(const model_config *c, const tp_plan *p)
{
    const vb_quant_config *q = &c->quant;
    const int64_t H = c->hidden_size, hd = c->head_dim;
    const int64_t ql = (int64_t)p->heads_local * hd, kvl = (int64_t)p->kv_heads_local * hd;
    const int64_t il = p->inter_local;
    uint64_t b = tiles_of(q, H, ql, (int64_t)c->n_heads * hd) +
                 tiles_of(q, H, il, c->intermediate_size); /* o, down */
    if (!q->desc_act)
        return b + tiles_of(q, ql + 2 * kvl, H, H) + tiles_of(q, 2 * il, H, H);
    return b + tiles_of(q, ql, H, H) + 2 * tiles_of(q, kvl, H, H) + 2 * tiles_of(q, il, H, H);
}

static uint64_t rank_weight_bytes(const model_config *c, const tp_plan *p)
{
    uint64_t all = 2 * rank_parameters(c, p);
    if (c->quant.method == VB_QUANT_NONE)
        return all;
    uint64_t lin = 0, qb = memory_plan_layer_qbytes(c, p, &lin);
    return all - 2 * lin * (uint64_t)c->n_layers + qb * (uint64_t)c->n_layers;
}

static void line(memory_plan *m, const char *name, uint64_t bytes, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void line(memory_plan *m, const char *name, uint64_t bytes, const char *fmt, ...)
{
    if (m->n_overhead >= VB_PLAN_MAX_LINES)
        return;
    memory_line *l = &m->overhead[m->n_overhead++];
    l->name = name;
    l->bytes = bytes;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->how, sizeof l->how, fmt, ap);
    va_end(ap);
    m->overhead_bytes += bytes;
}

void memory_plan_make(memory_plan *m, const model_config *c, const tp_plan *p,
                      uint64_t gpu_memory, double utilization, int max_model_len,
                      vb_kv_dtype kv_dtype, int step_tokens)
{
    memset(m, 0, sizeof *m);
    m->parameters = model_parameter_count(c);
    m->weight_bytes_per_rank = rank_weight_bytes(c, p);
    /* a head's row: head_dim fp16 values, or head_dim int8 values and an
     * fp32 scale (forward/kv_int8.h) */
    uint64_t row = kv_dtype == VB_KV_INT8 ? (uint64_t)c->head_dim + 4 : (uint64_t)c->head_dim * 2;
    m->kv_dtype = kv_dtype;
    m->kv_bytes_per_token = 2ull /* K, V */ * (uint64_t)c->n_layers * (uint64_t)p->kv_heads_local * row;
    m->max_model_len = max_model_len > 0 ? max_model_len : c->max_position_embeddings;
    m->token_budget = step_tokens > 0 ? step_tokens : VB_AUTO_STEP_TOKENS_GPU;
    /* generate's automatic batch: never more sequences than the step's
     * tokens (a decode takes one of them; run/run_engine.c batch_cap) */
    m->max_seqs = m->token_budget < VB_PLAN_MAX_SEQS ? m->token_budget : VB_PLAN_MAX_SEQS;
    if (gpu_memory == 0)
        return;
    m->gpu_memory = gpu_memory;
    m->utilization = utilization;
    m->budget = (uint64_t)((double)gpu_memory * utilization);

    uint64_t T = (uint64_t)m->token_budget, S = (uint64_t)m->max_seqs;
    uint64_t H = (uint64_t)c->hidden_size, hd = (uint64_t)c->head_dim;
    uint64_t ql = (uint64_t)p->heads_local * hd, kl = (uint64_t)p->kv_heads_local * hd;
    uint64_t il = (uint64_t)p->inter_local;
    line(m, "cuda_context", 300 * MiB,
         "CUDA context, kernels and cuBLAS handle (estimate; not cudaMalloc'd)");
    line(m, "cublas_workspace", 32 * MiB, "cublasSetWorkspace, fixed");
    line(m, "nccl_buffers", p->tp > 1 ? 64 * MiB : 0,
         "NCCL channels for the TP all-reduce (estimate; 0 at tp 1)");
    /* The step's activations, forward_init's buffers: the residual stream
     * stays fp32, the rest is fp16; reused layer after layer, so one
     * layer's worth. SiLU-gate writes into gate (no buffer of its own);
     * the o/down output and the last rows for the LM head have one each
     * (an "act" buffer of intermediate width stood for them: 184 MiB more
     * than allocated on a 7B at 8192 tokens, 13 KiB a token fewer on a 14B
     * at tp 4). */
    uint64_t act = T * (H * 4 + (H + ql + 2 * kl + ql + H + 2 * il + H) * 2);
    line(m, "activations", act,
         "%llu tokens x (fp32 residual + fp16 norm, q/k/v, attn, o/down out, gate/up, last rows)",
         (unsigned long long)T);
    /* rounded up to 32 rows as generate reserves them (a CUDA-graph bucket) */
    uint64_t logit_rows = (S + 31) / 32 * 32;
    line(m, "logits", logit_rows * (uint64_t)p->vocab_local * 4,
         "%llu rows (sequences, in 32s) x %d local vocab x fp32", (unsigned long long)logit_rows,
         p->vocab_local);
    line(m, "attention_split_scratch", S * (uint64_t)p->heads_local * 16 * (hd + 2) * 4,
         "decode split over 16 sequence chunks: partial outputs and max/sum, fp32");
    /* RoPE takes no table (the kernels compute cos and sin from head_dim/2
     * inverse frequencies): a line of max_model_len x head_dim floats took
     * ~0.5 GiB of KV cache off the plan of a 1M-context 7B model. What
     * grows with the context is the step's block tables, a row of block
     * ids per sequence as wide as the longest sequence (at most this). */
    uint64_t widest = ((uint64_t)m->max_model_len + VB_KV_BLOCK_TOKENS - 1) / VB_KV_BLOCK_TOKENS;
    line(m, "block_tables", S * widest * 4,
         "%llu sequences x %llu blocks of %d positions (max-model-len %d), int32",
         (unsigned long long)S, (unsigned long long)widest, VB_KV_BLOCK_TOKENS,
         m->max_model_len);
    line(m, "cuda_graphs", 48 * MiB, "decode graphs for batch-size buckets (estimate)");
    if (c->quant.method != VB_QUANT_NONE) { /* src/cuda/cuda_qweight.c */
        uint64_t big = ql * H > il * H ? ql * H : il * H;
        line(m, "dequant_scratch", big * 2,
             "fp16 copy of the largest quantized projection, for steps past the GEMV");
        line(m, "gemv_scale_tiles", gemv_tiles_bytes(c, p) * (uint64_t)c->n_layers,
             "the decode GEMV's tiled scales and zeros of long-row projections");
    }

    uint64_t used = m->weight_bytes_per_rank + m->overhead_bytes;
    m->weights_fit = m->budget > used;
    if (m->budget > used) {
        uint64_t block = m->kv_bytes_per_token * VB_KV_BLOCK_TOKENS;
        m->kv_blocks = (int64_t)((m->budget - used) / block);
        m->kv_tokens = m->kv_blocks * VB_KV_BLOCK_TOKENS;
        m->kv_cache_bytes = (uint64_t)m->kv_blocks * block;
    }
}

/* The checkpoint's tensor names and shapes for each supported family, and
 * which part of each one a rank keeps: the one place that maps Hugging Face
 * names onto model_weights and the Megatron split onto rows and columns. */
#include <stdio.h>

#include "model/model_load.h"
#include "model/quant_weights.h"

int model_tensor_count(const model_config *c)
{
    return 3 + c->n_layers * 14;
}

static void add(tensor_spec *s, int *n, void **slot, int64_t rows, int64_t cols,
                tensor_split split, int64_t start, int64_t count, const char *fmt, int layer)
{
    tensor_spec *t = &s[(*n)++];
    snprintf(t->name, sizeof t->name, fmt, layer);
    t->rows = rows;
    t->cols = cols;
    t->split = split;
    t->start = start;
    t->count = split == SPLIT_NONE ? rows : count;
    t->slot = slot;
    t->quant = VB_QUANT_NONE;
}

int model_tensor_specs(const model_config *c, const tp_plan *p, model_weights *w,
                       tensor_spec *s)
{
    int n = 0;
    int64_t H = c->hidden_size, hd = c->head_dim, I = c->intermediate_size;
    int64_t q_rows = (int64_t)c->n_heads * hd, kv_rows = (int64_t)c->n_kv_heads * hd;
    int64_t q0 = p->head_start * hd, ql = p->heads_local * hd;
    int64_t k0 = p->kv_head_start * hd, kl = p->kv_heads_local * hd;
    add(s, &n, &w->embed, c->vocab_size, H, SPLIT_ROWS, p->vocab_start, p->vocab_local,
        "model.embed_tokens.weight", 0);
    for (int l = 0; l < c->n_layers; l++) {
        layer_weights *L = &w->layers[l];
        add(s, &n, &L->input_norm, H, 1, SPLIT_NONE, 0, 0,
            "model.layers.%d.input_layernorm.weight", l);
        add(s, &n, &L->q, q_rows, H, SPLIT_ROWS, q0, ql, "model.layers.%d.self_attn.q_proj.weight", l);
        add(s, &n, &L->k, kv_rows, H, SPLIT_ROWS, k0, kl, "model.layers.%d.self_attn.k_proj.weight", l);
        add(s, &n, &L->v, kv_rows, H, SPLIT_ROWS, k0, kl, "model.layers.%d.self_attn.v_proj.weight", l);
        if (c->attention_bias) {
            add(s, &n, &L->q_bias, q_rows, 1, SPLIT_ROWS, q0, ql, "model.layers.%d.self_attn.q_proj.bias", l);
            add(s, &n, &L->k_bias, kv_rows, 1, SPLIT_ROWS, k0, kl, "model.layers.%d.self_attn.k_proj.bias", l);
            add(s, &n, &L->v_bias, kv_rows, 1, SPLIT_ROWS, k0, kl, "model.layers.%d.self_attn.v_proj.bias", l);
        }
        if (c->qk_norm) {
            add(s, &n, &L->q_norm, hd, 1, SPLIT_NONE, 0, 0, "model.layers.%d.self_attn.q_norm.weight", l);
            add(s, &n, &L->k_norm, hd, 1, SPLIT_NONE, 0, 0, "model.layers.%d.self_attn.k_norm.weight", l);
        }
        add(s, &n, &L->o, H, q_rows, SPLIT_COLS, q0, ql, "model.layers.%d.self_attn.o_proj.weight", l);
        add(s, &n, &L->post_norm, H, 1, SPLIT_NONE, 0, 0,
            "model.layers.%d.post_attention_layernorm.weight", l);
        add(s, &n, &L->gate, I, H, SPLIT_ROWS, p->inter_start, p->inter_local,
            "model.layers.%d.mlp.gate_proj.weight", l);
        add(s, &n, &L->up, I, H, SPLIT_ROWS, p->inter_start, p->inter_local,
            "model.layers.%d.mlp.up_proj.weight", l);
        add(s, &n, &L->down, H, I, SPLIT_COLS, p->inter_start, p->inter_local,
            "model.layers.%d.mlp.down_proj.weight", l);
    }
    add(s, &n, &w->final_norm, H, 1, SPLIT_NONE, 0, 0, "model.norm.weight", 0);
    if (!c->tie_word_embeddings)
        add(s, &n, &w->lm_head, c->vocab_size, H, SPLIT_ROWS, p->vocab_start, p->vocab_local,
            "lm_head.weight", 0);
    for (int i = 0; i < n && c->quant.method != VB_QUANT_NONE; i++)
        if (quant_spec_is_linear(&s[i]))
            s[i].quant = c->quant.method;
    return n;
}

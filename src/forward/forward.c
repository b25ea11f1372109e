/* The forward pass: see forward.h. Reads like llama2.c's forward(), one
 * layer at a time, with every operation a backend call. */
#include "forward/forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "forward/rope.h"

int forward_init(forward_state *f, vb_backend *b, const model_config *cfg,
                 const tp_plan *plan, const model_weights *w, int max_tokens,
                 vb_err *err)
{
    memset(f, 0, sizeof *f);
    f->b = b;
    f->cfg = cfg;
    f->plan = plan;
    f->w = w;
    f->max_tokens = max_tokens;
    f->q_dim = plan->heads_local * cfg->head_dim;
    f->kv_dim = plan->kv_heads_local * cfg->head_dim;
    f->attn_scale = 1.0f / sqrtf((float)cfg->head_dim);

    /* The attention op maps local query head i to local kv head
     * i / (heads_local / kv_heads_local); that is the model's GQA grouping
     * only if the plan keeps whole groups (or one replicated kv head). */
    int group = cfg->n_heads / cfg->n_kv_heads;
    if (plan->kv_heads_local <= 0 || plan->heads_local % plan->kv_heads_local != 0 ||
        plan->head_start / group != plan->kv_head_start ||
        plan->heads_local / plan->kv_heads_local != (plan->heads_local < group ? plan->heads_local : group))
        return vb_err_set(err, "forward: TP plan keeps query heads [%d, +%d) with kv heads [%d, +%d): "
                          "not whole GQA groups of %d", plan->head_start, plan->heads_local,
                          plan->kv_head_start, plan->kv_heads_local, group);
    if (w->quant != VB_QUANT_NONE && !b->matmul_quant)
        return vb_err_set(err, "quantized weights (%s) are not supported by the %s backend yet",
                          vb_quant_method_name(w->quant), b->name);
    if (cfg->head_dim % 2 != 0 || cfg->head_dim > VB_MAX_HEAD_DIM)
        return vb_err_set(err, "forward: head_dim %d unsupported (must be even, <= %d)",
                          cfg->head_dim, VB_MAX_HEAD_DIM);

    size_t T = (size_t)max_tokens, a = b->act_size;
    size_t hidden = (size_t)cfg->hidden_size, inter = (size_t)plan->inter_local;
    void **bufs[] = {&f->resid, &f->h, &f->q, &f->k, &f->v, &f->att, &f->proj,
                     &f->gate, &f->up, &f->sel};
    size_t sizes[] = {T * hidden, T * hidden, T * f->q_dim, T * f->kv_dim, T * f->kv_dim,
                      T * f->q_dim, T * hidden, T * inter, T * inter, T * hidden};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        /* the residual stream may be wider than the activations */
        *bufs[i] = b->alloc(b, sizes[i] * (i == 0 ? b->resid_size : a));
        if (!*bufs[i])
            goto oom;
    }
    f->inv_freq = b->alloc(b, (size_t)(cfg->head_dim / 2) * sizeof(float));
    if (!f->inv_freq)
        goto oom;

    float *inv = malloc(sizeof(float) * (size_t)(cfg->head_dim / 2));
    if (!inv)
        goto oom;
    rope_inv_freq(cfg, inv, &f->cos_sin_scale);
    b->to_device(b, f->inv_freq, inv, sizeof(float) * (size_t)(cfg->head_dim / 2));
    free(inv);
    return 0;
oom:
    forward_free(f);
    return vb_err_set(err, "forward: out of %s memory for activations of %d tokens",
                      b->name, max_tokens);
}

void forward_free(forward_state *f)
{
    if (!f->b)
        return;
    void *bufs[] = {f->resid, f->h, f->q, f->k, f->v, f->att, f->proj,
                    f->gate, f->up, f->sel, f->logits, f->inv_freq};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i])
            f->b->free(f->b, bufs[i]);
    memset(f, 0, sizeof *f);
}

int forward_reserve_logits(forward_state *f, int rows)
{
    if (rows <= f->logit_rows)
        return 0;
    if (f->logits)
        f->b->free(f->b, f->logits);
    f->logits = f->b->alloc(f->b, (size_t)rows * (size_t)f->plan->vocab_local * sizeof(float));
    f->logit_rows = f->logits ? rows : 0;
    return f->logits ? 0 : -1;
}

/* A projection: plain or weight-only quantized (model_weights.h). */
static void project(const forward_state *f, void *out, const void *x, const void *w,
                    const void *bias, int T, int n_in, int n_out)
{
    vb_backend *b = f->b;
    if (f->w->quant != VB_QUANT_NONE)
        b->matmul_quant(b, out, x, w, bias, T, n_in, n_out);
    else
        b->matmul(b, out, x, w, bias, T, n_in, n_out);
}

/* The norm fold (backend.h): with quantized weights at tp 1 the o and
 * down projections may add themselves to the residual stream, and the
 * norm after such a one may then be made inside the next fused
 * projection, two launches a layer fewer with the same results. Every
 * step asks: where an op declines, the forward takes the plain ops. */
static bool norm_fold_on(const forward_state *f)
{
    return f->w->quant != VB_QUANT_NONE && f->plan->tp == 1 && f->b->matmul_quant_resid;
}

/* A block's input norm into f->h: by rmsnorm now (adding proj, the
 * projection before, unless the stream already holds it: resid_done), or
 * with the fold where no add is pending, left to the block's fused
 * projection: then *slot is returned for the caller to pass it, and
 * norm_declined() to call after. */
static const vb_norm_in *norm_or_take(const forward_state *f, bool fold, bool resid_done,
                                      const void *w, int T, vb_norm_in *slot)
{
    const float eps = (float)f->cfg->rms_norm_eps;
    if (fold && resid_done) {
        *slot = (vb_norm_in){f->resid, w, eps};
        return slot;
    }
    f->b->rmsnorm(f->b, f->h, f->resid, resid_done ? NULL : f->proj, w, T, f->cfg->hidden_size,
                  eps);
    return NULL;
}

/* The taken norm, by rmsnorm now, where the fused projection declined it
 * (true: the caller offers that projection the step once more, without
 * the norm, as the forward without the fold would). */
static bool norm_declined(const forward_state *f, const vb_norm_in *taken, bool took, int T)
{
    if (!taken || took)
        return false;
    f->b->rmsnorm(f->b, f->h, f->resid, NULL, taken->w, T, f->cfg->hidden_size, taken->eps);
    return true;
}

/* Layer l's q, k and v projections as the fused ops take them. */
typedef struct qkv_operands {
    void *out[3];
    const void *w[3], *bias[3];
    int n[3];
} qkv_operands;

/* q, k and v of layer l, rotated, k and v in the cache: one fused op where
 * the backend has it and no q/k norm comes between (false: none ran). */
static bool qkv_rope_fused(const forward_state *f, const vb_kv_cache *kv, int l, int T,
                           const qkv_operands *o, const vb_norm_in *norm)
{
    vb_backend *b = f->b;
    vb_qkv_rope_fn op =
        f->w->quant != VB_QUANT_NONE ? b->matmul_qkv_rope_quant : b->matmul_qkv_rope;
    return !f->cfg->qk_norm && op &&
           op(b, o->out, f->h, o->w, o->bias, T, f->cfg->hidden_size, o->n, kv->k[l], kv->v[l],
              f->inv_freq, f->cos_sin_scale, f->plan->kv_heads_local, f->cfg->head_dim,
              kv->block_size, norm);
}

/* silu(gate) * up of layer l into f->gate in one fused op (false: none
 * ran). */
static bool gate_up_fused(const forward_state *f, int l, int T, const vb_norm_in *norm)
{
    vb_backend *b = f->b;
    const layer_weights *lw = &f->w->layers[l];
    const int H = f->cfg->hidden_size, n = f->plan->inter_local;
    if (f->w->quant != VB_QUANT_NONE)
        return b->matmul_gate_up_quant &&
               b->matmul_gate_up_quant(b, f->gate, f->h, lw->gate, lw->up, T, H, n, norm);
    return !norm && b->matmul_gate_up &&
           b->matmul_gate_up(b, f->gate, f->h, lw->gate, lw->up, T, H, n);
}

/* The o or down projection of x: into the residual stream itself where
 * the fold runs (true: no add pending), else into f->proj, summed over
 * the ranks, for the next norm to add (false). */
static bool project_out(const forward_state *f, bool fold, const void *x, const void *w, int T,
                        int n_in)
{
    vb_backend *b = f->b;
    const int H = f->cfg->hidden_size;
    if (fold && b->matmul_quant_resid(b, f->resid, x, w, T, n_in, H))
        return true;
    project(f, f->proj, x, w, NULL, T, n_in, H);
    b->all_reduce_sum(b, f->proj, (size_t)T * H);
    return false;
}

const float *forward_step(forward_state *f, const step_batch *sb, const vb_kv_cache *kv)
{
    vb_backend *b = f->b;
    const model_config *c = f->cfg;
    const tp_plan *p = f->plan;
    const model_weights *w = f->w;
    int T = sb->n_tokens, H = c->hidden_size, hd = c->head_dim;
    float eps = (float)c->rms_norm_eps;

    if (T <= 0 || T > f->max_tokens)
        return NULL; /* the scheduler's token budget must fit forward_init's max_tokens */
    /* The backend may pad a decode step (CUDA graphs): every op then runs
     * on the padded rows, and the extra rows of logits follow the real ones. */
    int padded = b->step_begin(b, sb, f->max_tokens);
    int n_out = step_batch_n_out(sb) + (padded - T);
    T = padded;
    /* before any graph: growing the buffer is an allocation */
    if (forward_reserve_logits(f, n_out) != 0)
        return NULL; /* out of memory: the caller names the step */
    if (b->graph_begin && b->graph_begin(b, f, kv))
        return f->logits;

    /* Embedding: each rank holds a vocabulary slice; the all-reduce fills
     * in the rows other ranks own. The rows start the residual stream. */
    b->embed(b, f->proj, w->embed, H, p->vocab_start, p->vocab_local);
    b->all_reduce_sum(b, f->proj, (size_t)T * H);
    b->resid_load(b, f->resid, f->proj, (size_t)T * H);
    const bool fold = norm_fold_on(f);
    bool resid_done = true; /* no projection's add pending (the embedding's stream) */

    for (int l = 0; l < c->n_layers; l++) {
        const layer_weights *lw = &w->layers[l];
        vb_norm_in slot;

        /* attention block; the previous layer's MLP output joins the
         * residual inside the norm (or did in down's epilogue) */
        const vb_norm_in *taken = norm_or_take(f, fold, resid_done, lw->input_norm, T, &slot);
        const qkv_operands qkv = {{f->q, f->k, f->v},
                                  {lw->q, lw->k, lw->v},
                                  {lw->q_bias, lw->k_bias, lw->v_bias},
                                  {f->q_dim, f->kv_dim, f->kv_dim}};
        bool quant = w->quant != VB_QUANT_NONE; /* the *_quant fused ops */
        bool fused = qkv_rope_fused(f, kv, l, T, &qkv, taken);
        if (norm_declined(f, taken, fused, T))
            fused = qkv_rope_fused(f, kv, l, T, &qkv, NULL);
        if (!fused) {
            bool joint = quant ? b->matmul_qkv_quant &&
                                     b->matmul_qkv_quant(b, qkv.out, f->h, qkv.w, qkv.bias, T,
                                                         H, qkv.n)
                               : b->matmul_qkv &&
                                     b->matmul_qkv(b, qkv.out, f->h, qkv.w, qkv.bias, T, H, qkv.n);
            if (!joint) {
                project(f, f->q, f->h, lw->q, lw->q_bias, T, H, f->q_dim);
                project(f, f->k, f->h, lw->k, lw->k_bias, T, H, f->kv_dim);
                project(f, f->v, f->h, lw->v, lw->v_bias, T, H, f->kv_dim);
            }
            if (c->qk_norm) {
                b->rmsnorm_rows(b, f->q, lw->q_norm, T * p->heads_local, hd, eps);
                b->rmsnorm_rows(b, f->k, lw->k_norm, T * p->kv_heads_local, hd, eps);
            }
            b->rope_kv_write(b, f->q, f->k, f->v, kv->k[l], kv->v[l], f->inv_freq,
                             f->cos_sin_scale, p->heads_local, p->kv_heads_local, hd,
                             kv->block_size);
        }
        b->attention(b, f->att, f->q, kv->k[l], kv->v[l], p->heads_local,
                     p->kv_heads_local, hd, kv->block_size, f->attn_scale);
        resid_done = project_out(f, fold, f->att, lw->o, T, f->q_dim);

        /* MLP block: silu(gate) * up, down; rows of gate/up and columns of
         * down are this rank's slice, so down gives partial sums */
        taken = norm_or_take(f, fold, resid_done, lw->post_norm, T, &slot);
        bool joint = gate_up_fused(f, l, T, taken);
        if (norm_declined(f, taken, joint, T))
            joint = gate_up_fused(f, l, T, NULL);
        if (!joint) {
            project(f, f->gate, f->h, lw->gate, NULL, T, H, p->inter_local);
            project(f, f->up, f->h, lw->up, NULL, T, H, p->inter_local);
            b->silu_gate(b, f->gate, f->gate, f->up, (size_t)T * p->inter_local);
        }
        resid_done = project_out(f, fold, f->gate, lw->down, T, p->inter_local);
    }

    b->rmsnorm(b, f->h, f->resid, resid_done ? NULL : f->proj, w->final_norm, T, H, eps);
    const void *rows = f->h;
    if (!sb->all_logits) {
        b->last_rows(b, f->sel, f->h, H);
        rows = f->sel;
    }
    const void *head = w->lm_head ? w->lm_head : w->embed;
    b->lm_head(b, f->logits, rows, head, n_out, H, p->vocab_local);
    if (b->graph_end)
        b->graph_end(b);
    return f->logits;
}

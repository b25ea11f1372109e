/* The transformer forward pass, written once over the backend interface:
 * qwen2 (q/k/v bias), llama, mistral, qwen3 (per-head q/k RMSNorm), tied or
 * untied embeddings, RoPE default / linear / llama3 / yarn, tensor parallel
 * by Megatron slices (one all-reduce after o_proj and one after down_proj,
 * one after the vocabulary-split embedding).
 *
 * Data path of one step: step_batch (from the scheduler) -> embed -> layers
 * (norm, q/k/v, rope + KV write, paged attention, o_proj, norm, SiLU MLP)
 * -> final norm -> lm_head -> this rank's vocabulary slice of the logits,
 * which the sampler reads without gathering them. */
#ifndef VB_FORWARD_H
#define VB_FORWARD_H

#include "forward/backend.h"
#include "forward/kv_cache.h"
#include "forward/step_batch.h"
#include "model/model_config.h"
#include "model/model_weights.h"
#include "model/tp_plan.h"
#include "util/errors.h"

typedef struct forward_state {
    vb_backend *b;
    const model_config *cfg;
    const tp_plan *plan;
    const model_weights *w;
    int max_tokens;          /* new tokens per step the buffers hold */
    int q_dim, kv_dim;       /* heads_local * head_dim, kv_heads_local * head_dim */
    float cos_sin_scale;     /* yarn attention factor on cos/sin (1 otherwise) */
    float attn_scale;        /* 1 / sqrt(head_dim) */

    /* Activations, backend buffers sized for max_tokens rows. */
    void *resid;             /* [T, hidden] the residual stream */
    void *h;                 /* [T, hidden] normed input of attention / MLP */
    void *q, *k, *v;         /* [T, q_dim], [T, kv_dim] x2 */
    void *att;               /* [T, q_dim] attention output */
    void *proj;              /* [T, hidden] o_proj / down_proj output (partial sums under TP) */
    void *gate, *up;         /* [T, inter_local] */
    void *sel;               /* [T, hidden] rows that get logits */
    float *logits;           /* [logit_rows, vocab_local] fp32, grown on demand: a
                              * step needs one row per sequence (all_logits: per
                              * token), far fewer than max_tokens rows of a
                              * 152k vocabulary */
    int logit_rows;
    void *inv_freq;          /* [head_dim / 2] fp32 */
} forward_state;

/* Allocates the activation buffers for steps of up to max_tokens new tokens
 * and computes the RoPE table. cfg, plan and w must outlive f. */
int forward_init(forward_state *f, vb_backend *b, const model_config *cfg,
                 const tp_plan *plan, const model_weights *w, int max_tokens,
                 vb_err *err);
void forward_free(forward_state *f);

/* Runs one step: writes the new tokens' keys and values into kv and returns
 * the logits, a backend buffer of [step_batch_n_out(sb), plan->vocab_local]
 * fp32 (global vocabulary id = plan->vocab_start + column), valid until the
 * next call (NULL when the batch is empty, exceeds max_tokens, or its
 * logits rows cannot be allocated). Every
 * rank of the TP group must call it with the same batch. */
/* Makes room for `rows` rows of logits now (forward_step grows the buffer
 * on demand otherwise), so a memory plan can count it before sizing the KV
 * cache. -1 when out of memory. */
int forward_reserve_logits(forward_state *f, int rows);

const float *forward_step(forward_state *f, const step_batch *sb, const vb_kv_cache *kv);

#endif

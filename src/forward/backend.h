/* The backend interface: the handful of operations one transformer forward
 * pass needs, so that forward.c is written once and runs on the CPU (plain C,
 * fp32, the numerical oracle) and on CUDA (fp16 kernels, cuBLAS, NCCL).
 *
 * Buffers are opaque `void *` in the backend's memory (host memory for the
 * CPU backend, device memory for CUDA). Activation buffers hold elements of
 * `act_size` bytes (4 on the CPU, 2 for fp16); logits are always fp32.
 * Weight pointers come from model_weights (same dtype convention). Shapes are
 * row-major, [rows, cols], with T = the step's new tokens.
 *
 * Ops that need the step's layout (token ids, positions, sequence starts,
 * block tables) read it from the last step_begin(): the backend copies the
 * flat arrays of the step_batch to wherever its kernels can read them.
 *
 * The paged KV cache, per layer: K and V each [num_blocks, block_size,
 * kv_heads, head_dim]; position p of sequence s lives in block
 * block_tables[s][p / block_size], row p % block_size. Its elements are
 * of type kv_dtype (forward/kv_dtype.h): activations, or int8 with a
 * scale per token and head in the block layout of forward/kv_int8.h. */
#ifndef VB_BACKEND_H
#define VB_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/sampler.h"
#include "forward/kv_dtype.h"
#include "forward/step_batch.h"

#define VB_TIMER_MARKS 3 /* stamps a backend's timer keeps (timer_mark) */

typedef struct vb_backend vb_backend;

/* An input norm a fused projection may take over (the norm fold, below):
 * x = rmsnorm(residual) * w as rmsnorm with add NULL computes it, the
 * residual complete. */
typedef struct vb_norm_in {
    const void *residual;
    const void *w;
    float eps;
} vb_norm_in;

/* matmul_qkv_rope's and matmul_qkv_rope_quant's form (below) */
typedef bool (*vb_qkv_rope_fn)(vb_backend *b, void *const out[3], const void *x,
                               const void *const w[3], const void *const bias[3], int T,
                               int n_in, const int n_out[3], void *k_cache, void *v_cache,
                               const void *inv_freq, float cos_sin_scale, int kv_heads,
                               int head_dim, int block_size, const vb_norm_in *norm);

struct vb_backend {
    const char *name;   /* "cpu", "cuda" */
    size_t act_size;    /* bytes per activation / KV-cache element */
    size_t resid_size;  /* bytes per residual-stream element (see resid_load) */
    long graphs_recorded; /* CUDA graphs recorded so far (graph_end), for the bench's
                           * accounting of the steps that record one */
    void *ctx;          /* the backend's own state */
    bool kv_int8;       /* rope_kv_write, matmul_qkv_rope and attention take an int8 cache */
    vb_kv_dtype kv_dtype; /* the cache's elements: set by the caller before the cache is
                           * allocated (kv_cache.h) and kept for the backend's life */

    /* --- memory */
    void *(*alloc)(vb_backend *b, size_t bytes);  /* zeroed; NULL when out of memory */
    void (*free)(vb_backend *b, void *p);
    void (*to_device)(vb_backend *b, void *dst, const void *src, size_t bytes);
    void (*to_host)(vb_backend *b, void *dst, const void *src, size_t bytes);

    /* Optional (NULL on the CPU backend, whose ops are done when they
     * return): GPU time stamps for bench's step split, taken without
     * waiting. timer_mark(b, i) records stamp i (0 to VB_TIMER_MARKS - 1)
     * behind the work queued so far; timer_seconds(b, from, to) waits for
     * stamp `to` and gives the GPU time between the two stamps, or a
     * negative value when they cannot be read. */
    void (*timer_mark)(vb_backend *b, int i);
    double (*timer_seconds)(vb_backend *b, int from, int to);

    /* Makes the step's metadata visible to the ops below, until the next
     * step_begin. sb stays valid (and unchanged) until then. Returns the
     * rows (T) the ops must run on: sb->n_tokens, or more when the backend
     * pads a decode step up to a CUDA-graph bucket (never past max_rows).
     * Padding rows are extra one-token sequences that write no KV and
     * whose logits rows, after the real ones, are ignored. */
    int (*step_begin)(vb_backend *b, const step_batch *sb, int max_rows);

    /* Optional (NULL: always run the ops). Called after step_begin with
     * the step's owner (forward state) and KV cache: returns 1 when the
     * backend replayed this step's ops from a recorded graph, so the caller
     * issues none of them; 0 when the caller must issue them and then call
     * graph_end, which records them (when graph_begin started a recording)
     * and runs them. */
    int (*graph_begin)(vb_backend *b, const void *owner, const void *cache);
    void (*graph_end)(vb_backend *b);

    /* out[T, hidden] = row (token - vocab_start) of table[vocab_local, hidden]
     * for tokens in this rank's vocabulary slice, zeros for the others (an
     * all-reduce over the TP group then completes every row). */
    void (*embed)(vb_backend *b, void *out, const void *table, int hidden,
                  int vocab_start, int vocab_local);

    /* out[T, n_out] = x[T, n_in] * w[n_out, n_in]^T (+ bias[n_out] when not NULL). */
    void (*matmul)(vb_backend *b, void *out, const void *x, const void *w,
                   const void *bias, int T, int n_in, int n_out);

    /* Optional (NULL: the backend does not run quantized checkpoints yet,
     * and forward_init refuses them): matmul for a weight-only quantized
     * projection, w a vb_qweight (model/quant_weights.h) of shape
     * [n_out, n_in] in host or device memory as the backend keeps it.
     * The forward calls it, or the fused *_quant ops below, never the
     * other fused ops, for every projection of a model whose weights are
     * quantized. */
    void (*matmul_quant)(vb_backend *b, void *out, const void *x, const void *w,
                         const void *bias, int T, int n_in, int n_out);

    /* Optional fused projections (NULL, or false returned for a step they
     * do not cover: the forward then calls matmul and silu_gate). For the
     * bandwidth-bound small decode steps, where one pass over several
     * weight matrices beats one launch each.
     *   matmul_qkv: out[i][T, n_out[i]] = x w[i]^T (+ bias[i]) for i < 3;
     *   matmul_gate_up: out[T, n_out] = silu(x w_gate^T) * (x w_up^T). */
    bool (*matmul_qkv)(vb_backend *b, void *const out[3], const void *x,
                       const void *const w[3], const void *const bias[3], int T, int n_in,
                       const int n_out[3]);
    bool (*matmul_gate_up)(vb_backend *b, void *out, const void *x, const void *w_gate,
                           const void *w_up, int T, int n_in, int n_out);
    /* Optional: matmul_qkv and matmul_gate_up for weight-only quantized
     * projections (w as matmul_quant's), false for a step or weights they
     * do not cover (the forward then calls matmul_quant for each, and
     * silu_gate). */
    bool (*matmul_qkv_quant)(vb_backend *b, void *const out[3], const void *x,
                             const void *const w[3], const void *const bias[3], int T,
                             int n_in, const int n_out[3]);
    bool (*matmul_gate_up_quant)(vb_backend *b, void *out, const void *x, const void *w_gate,
                                 const void *w_up, int T, int n_in, int n_out,
                                 const vb_norm_in *norm);
    /* Optional too: matmul_qkv followed by rope_kv_write (below) in one
     * pass, for models without a q/k norm between them; false for a step
     * it does not cover (the forward then calls the two). */
    vb_qkv_rope_fn matmul_qkv_rope;

    /* matmul_qkv_rope for weight-only quantized weights (w as matmul_quant's,
     * joined as matmul_qkv_quant takes them); false where it does not run
     * (the forward then calls matmul_qkv_quant and rope_kv_write). */
    vb_qkv_rope_fn matmul_qkv_rope_quant;

    /* Optional, the norm fold (tp 1; a decode step's launches two a layer
     * fewer): the o and down projections add themselves to the residual
     * stream, and the norm after them is made inside the next fused
     * projection instead of by rmsnorm.
     *   matmul_quant_resid: residual[T, n_out] += x w^T (w as
     *     matmul_quant's, no bias), each output rounded to an activation
     *     first: matmul_quant then rmsnorm's add, so that no add is
     *     pending for the next norm;
     *   matmul_qkv_rope, matmul_qkv_rope_quant and matmul_gate_up_quant
     *     with norm not NULL: x = rmsnorm(norm->residual) * norm->w (add
     *     NULL) made by the op itself; x then names where rmsnorm would
     *     write it and is not read (nor written).
     * Each returns false, having done nothing, where it does not run (the
     * forward then calls matmul_quant and rmsnorm). The same results as
     * the ops they replace. */
    bool (*matmul_quant_resid)(vb_backend *b, void *residual, const void *x, const void *w,
                               int T, int n_in, int n_out);

    /* The residual stream has its own element size, resid_size bytes (fp32
     * on both backends: fp16 activations would overflow or lose precision
     * in it on models such as Qwen2.5). resid_load starts it for a step:
     * residual[n] = x[n] (x in the activation dtype). */
    void (*resid_load)(vb_backend *b, void *residual, const void *x, size_t n);

    /* RMSNorm with the residual add fused in front:
     *   if add != NULL: residual += add   (residual[rows, dim] updated in place)
     *   out = residual / sqrt(mean(residual^2) + eps) * w
     * residual is the residual stream (resid_size elements); out, add and w
     * are activations. */
    void (*rmsnorm)(vb_backend *b, void *out, void *residual, const void *add,
                    const void *w, int rows, int dim, float eps);

    /* x[rows, dim] = rmsnorm(x) * w in place, on activations (the qwen3
     * per-head q/k norm: rows = T * heads, dim = head_dim). */
    void (*rmsnorm_rows)(vb_backend *b, void *x, const void *w, int rows, int dim, float eps);

    /* Rotates q[T, heads, head_dim] in place and k[T, kv_heads, head_dim]
     * (in place too), then writes k and v[T, kv_heads, head_dim] into this
     * layer's cache at each token's slot. RoPE in the rotate-half layout of
     * Hugging Face: for i < head_dim/2, with a = position * inv_freq[i]
     * (fp32, like transformers), c = cos(a) * cos_sin_scale, s likewise,
     *   x[i] <- x[i] c - x[i + d/2] s;  x[i + d/2] <- x[i + d/2] c + x[i] s.
     * inv_freq is a backend buffer of head_dim/2 fp32; cos_sin_scale is
     * yarn's attention factor (1 otherwise). */
    void (*rope_kv_write)(vb_backend *b, void *q, void *k, const void *v,
                          void *k_cache, void *v_cache, const void *inv_freq,
                          float cos_sin_scale, int heads, int kv_heads,
                          int head_dim, int block_size);

    /* out[T, heads, head_dim]: each new token's query heads attend to every
     * cached position <= its own in its sequence (causal, ragged, paged);
     * query head h reads key/value head h / (heads / kv_heads) (GQA);
     * softmax(q k^T * scale) v with fp32 softmax. */
    void (*attention)(vb_backend *b, void *out, const void *q, const void *k_cache,
                      const void *v_cache, int heads, int kv_heads, int head_dim,
                      int block_size, float scale);

    /* out[n] = silu(gate[n]) * up[n]. */
    void (*silu_gate)(vb_backend *b, void *out, const void *gate, const void *up, size_t n);

    /* out[n_seqs, dim] = the row of each sequence's last new token in in[T, dim]. */
    void (*last_rows)(vb_backend *b, void *out, const void *in, int dim);

    /* logits[rows, vocab_local] (fp32) = x[rows, hidden] * w[vocab_local, hidden]^T. */
    void (*lm_head)(vb_backend *b, float *logits, const void *x, const void *w,
                    int rows, int hidden, int vocab_local);

    /* Sums buf[n] (activation dtype) in place over the TP group; a no-op for tp = 1. */
    void (*all_reduce_sum)(vb_backend *b, void *buf, size_t n);

    /* Optional (NULL on the CPU backend): sampler_summarize (engine/sampler.h)
     * where the logits are, so only summaries reach the host. For i < n:
     * rows[i] on row logit_rows[i] of logits[*, n_local] (this rank's slice,
     * from vocab_offset), into host `summaries` (n rows with room for n_cand
     * candidates, sampler_summary_at). The same summaries as the host
     * function (sum_exp and Gumbel scores to rounding). Returns 0, or -1
     * with nothing done when it cannot (n_cand too large): the caller then
     * copies the logits to the host and summarizes there. */
    int (*summarize)(vb_backend *b, const float *logits, const int *logit_rows,
                     const sampler_row *rows, int n, int vocab_offset, int n_local, int n_cand,
                     void *summaries);

    /* Optional (NULL on the CPU backend): at tp 1, summarize and
     * sampler_choose too where the logits are, so only the decisions
     * (sample_result) reach the host: for i < n, rows[i] on row
     * logit_rows[i] of logits[*, n_vocab], into out[i]. The decisions of
     * summarize + the host's merge and choose (exp, log and the Gumbel
     * noise to rounding). Returns 0, or -1 with nothing done when it cannot
     * (tp > 1: a rank's summary is not the merged one; n_cand too large)
     * or would not gain (no row draws from a truncated set): the caller
     * then takes the summarize path. */
    int (*sample)(vb_backend *b, const float *logits, const int *logit_rows,
                  const sampler_row *rows, int n, int n_vocab, int n_cand, sample_result *out);

    void (*destroy)(vb_backend *b);
};

#endif

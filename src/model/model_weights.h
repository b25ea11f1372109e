/* One rank's weights, after TP slicing and conversion.
 *
 * Plain row-major matrices [rows, cols] as in the checkpoint (PyTorch Linear
 * weights are [out_features, in_features]). dtype is F32 for the CPU
 * backend and F16 (device memory) for the CUDA backend. The shapes are the
 * local ones from tp_plan:
 *   embed, lm_head  [vocab_local, hidden]        (lm_head == embed when tied)
 *   q               [heads_local * head_dim, hidden]
 *   k, v            [kv_heads_local * head_dim, hidden]
 *   q/k/v bias      [rows of q/k/v]              (NULL without attention bias)
 *   q_norm, k_norm  [head_dim]                   (NULL unless qwen3)
 *   o               [hidden, heads_local * head_dim]
 *   gate, up        [inter_local, hidden]
 *   down            [hidden, inter_local]
 *   norms           [hidden]                     (replicated on every rank)
 *
 * A quantized checkpoint (quant != VB_QUANT_NONE) keeps embeddings, norms, biases and lm_head as
 * above; q, k, v, o, gate, up and down then each point to a vb_qweight
 * (model/quant_weights.h) of the same local shape, which backends run
 * through their matmul_quant op (on the CUDA backend a cuda_qweight,
 * src/cuda/cuda_qweight.h: that struct with device arrays). */
#ifndef VB_MODEL_WEIGHTS_H
#define VB_MODEL_WEIGHTS_H

#include <stdint.h>

#include "model/model_config.h"
#include "model/tp_plan.h"

typedef enum vb_wdtype { VB_W_F32, VB_W_F16 } vb_wdtype;

typedef struct layer_weights {
    void *input_norm;
    void *q, *k, *v;
    void *q_bias, *k_bias, *v_bias;
    void *q_norm, *k_norm;
    void *o;
    void *post_norm;
    void *gate, *up, *down;
} layer_weights;

typedef struct model_weights {
    vb_wdtype dtype;
    vb_quant_method quant;   /* the seven projections are vb_qweight (see above) */
    void *embed;
    void *lm_head;
    void *final_norm;
    layer_weights *layers;   /* n_layers entries */
    int n_layers;            /* so model_weights_free needs no config */
    uint64_t bytes;          /* this rank's weight bytes */
    uint64_t out_of_fp16_range; /* values clamped when converting to fp16 */
    uint64_t bytes_read;     /* checkpoint bytes this rank copied from storage */
    double load_seconds;     /* open + read + convert, for the log and --report */
} model_weights;

#endif

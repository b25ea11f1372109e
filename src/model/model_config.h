/* What a model is: the fields of config.json and generation_config.json
 * that the engine needs, normalised across model families.
 *
 * Filled by model_config_load() (config_json.c, issue #3); read by the
 * memory plan, the TP plan, the forward pass and the sampler defaults. */
#ifndef VB_MODEL_CONFIG_H
#define VB_MODEL_CONFIG_H

#include <stdbool.h>

#include "model/quant_config.h"
#include "util/errors.h"

typedef enum vb_arch {
    VB_ARCH_QWEN2,   /* q/k/v bias */
    VB_ARCH_LLAMA,   /* Llama 2 / 3 / 3.1 / 3.2 */
    VB_ARCH_MISTRAL,
    VB_ARCH_QWEN3,   /* per-head RMSNorm on q and k, no bias */
} vb_arch;

typedef enum vb_rope_type {
    VB_ROPE_DEFAULT, /* no rope_scaling */
    VB_ROPE_LINEAR,
    VB_ROPE_LLAMA3,
    VB_ROPE_YARN,
} vb_rope_type;

typedef struct vb_rope_scaling {
    vb_rope_type type;
    double factor;
    double original_max_position_embeddings;
    double low_freq_factor, high_freq_factor; /* llama3 */
    double beta_fast, beta_slow;              /* yarn */
    double attention_factor;                  /* yarn mscale; 0 = derived from factor */
} vb_rope_scaling;

/* num_hidden_layers at most (the largest published models have ~130) */
#define VB_MAX_LAYERS 4096

/* head_dim at most: the forward pass's per-head buffers (CPU attention
 * keeps a head on the stack) and the GPU kernels' limits */
#define VB_MAX_HEAD_DIM 512

/* end-of-sequence ids config.json may list (more is refused, not cut) */
#define VB_MAX_EOS 64

typedef struct model_config {
    vb_arch arch;
    char model_type[32];        /* as written in config.json */
    int hidden_size;
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int head_dim;               /* config's head_dim, else hidden / heads */
    int intermediate_size;
    int vocab_size;
    double rms_norm_eps;
    double rope_theta;
    vb_rope_scaling rope_scaling;
    int max_position_embeddings;
    bool tie_word_embeddings;
    bool attention_bias;        /* q/k/v projections have a bias (qwen2) */
    bool qk_norm;               /* qwen3 */
    char torch_dtype[16];       /* "bfloat16", "float16", "float32" */
    vb_quant_config quant;      /* quantization_config: weight-only quantized projections */

    /* special ids: from config.json, generation_config.json and the tokenizer */
    int bos_token_id;           /* -1 = none */
    int eos_token_ids[VB_MAX_EOS];
    int n_eos;

    /* generation_config.json sampling defaults; NAN / -1 = absent */
    double gen_temperature, gen_top_p, gen_min_p, gen_repetition_penalty;
    int gen_top_k;
    long gen_max_new_tokens;    /* -1 = absent */
    char gen_unapplied[192];    /* its keys transformers applies and voltbatch does not
                                 * (typical_p, num_beams, ...), ", "-separated; "" none */
    bool gen_do_sample;
} model_config;

/* Reads DIR/config.json (required) and DIR/generation_config.json
 * (optional). Refuses, with a message naming the file and field, a model
 * type, rope scaling or sliding window it cannot run correctly, and values
 * that cannot work: sizes that are not positive or do not divide, an
 * rms_norm_eps, rope_theta or rope scaling parameter that is not positive,
 * an eos_token_id outside [0, vocab_size), sampling defaults outside the
 * command line's ranges. */
int model_config_load(model_config *c, const char *model_dir, vb_err *err);

/* The positions the model was made for: max_position_embeddings, or what
 * yarn or linear RoPE scaling stretches it to (original_max_position_
 * embeddings x factor), as vLLM derives its default max_model_len. */
long model_config_positions(const model_config *c);

#endif

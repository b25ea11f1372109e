/* model_config_load: config.json and generation_config.json -> model_config.
 *
 * Reads both the classic layout (rope_theta, rope_scaling, torch_dtype) and
 * the one transformers 5 writes (rope_parameters, dtype). Anything that
 * would make us compute the wrong function (another model type, an
 * unsupported rope scaling, a sliding window narrower than the context, MLP
 * bias, another activation) is refused here, before any weight is read,
 * and so is a value that parses but cannot work (an eps or rope theta that
 * is not positive, an eos id past the vocabulary): those used to run to the
 * end with every row failing on NaN logits, or never stopping. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engine/sampler.h"
#include "forward/rope.h"
#include "model/model_config.h"
#include "util/json_file.h"
#include "util/open_regular.h"

typedef struct cfg_ctx {
    json_t *root;
    const char *path;
    vb_err *err;
} cfg_ctx;

/* A required positive integer field. */
static int get_pos_int(cfg_ctx *x, const char *key, int *out)
{
    json_t *v = json_object_get(x->root, key);
    if (!json_is_integer(v))
        return vb_err_set(x->err, "%s: \"%s\" is %s; it must be a positive integer", x->path, key,
                          v ? "not an integer" : "missing");
    json_int_t i = json_integer_value(v);
    if (i <= 0 || i > 1 << 30)
        return vb_err_set(x->err, "%s: \"%s\" = %lld is out of range", x->path, key, (long long)i);
    *out = (int)i;
    return 0;
}

/* An optional number; absent or null leaves *out. */
static int get_num(json_t *obj, const char *key, double *out, const char *path, vb_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v))
        return vb_err_set(err, "%s: \"%s\" is not a number", path, key);
    *out = json_number_value(v);
    return 0;
}

/* A number the model's arithmetic divides by or takes the log of: it must
 * be positive and finite, or every row's logits come out NaN at the end of
 * a long run. `in` is "" or the enclosing object ("\"rope_scaling\": "). */
static int check_positive(const char *path, const char *in, const char *key, double v,
                          vb_err *err)
{
    if (v > 0 && isfinite(v))
        return 0;
    return vb_err_set(err, "%s: %s\"%s\" = %g must be a positive number", path, in, key, v);
}

/* A sampling default; NAN is absent. The ranges are the command line's
 * (cli/generate_options.c), so generation_config.json cannot set what
 * --temperature etc. would refuse. */
static int check_range(const char *path, const char *key, double v, double lo, double hi,
                       vb_err *err)
{
    if (isnan(v) || (v >= lo && v <= hi))
        return 0;
    return vb_err_set(err, "%s: \"%s\" = %g is out of range [%g, %g]", path, key, v, lo, hi);
}

/* An optional boolean; absent or null leaves *out. Another type is
 * refused by name: "tie_word_embeddings": "true" read as false (the
 * default) was then refused as a missing lm_head.weight, and a string
 * "use_sliding_window" ran a windowed model with full attention. */
static int get_bool(json_t *obj, const char *key, bool *out, const char *path, vb_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return vb_err_set(err, "%s: \"%s\" is not true or false", path, key);
    *out = json_is_true(v);
    return 0;
}

/* One eos id, which must be a token of the model (an id past the
 * vocabulary is never sampled, so the row would never stop at it). `at` is
 * "" or "[i]" for a list element. */
static int check_eos(json_int_t id, const model_config *c, const char *path, const char *at,
                     vb_err *err)
{
    if (id >= 0 && id < c->vocab_size)
        return 0;
    return vb_err_set(err, "%s: \"eos_token_id\"%s %lld is outside the vocabulary [0, %d)",
                      path, at, (long long)id, c->vocab_size);
}

/* eos_token_id: an integer or a list of them. c->vocab_size is set. */
static int get_eos(json_t *obj, model_config *c, const char *path, vb_err *err)
{
    json_t *v = json_object_get(obj, "eos_token_id");
    if (!v || json_is_null(v))
        return 0;
    c->n_eos = 0;
    if (json_is_integer(v)) {
        if (check_eos(json_integer_value(v), c, path, "", err))
            return -1;
        c->eos_token_ids[c->n_eos++] = (int)json_integer_value(v);
        return 0;
    }
    size_t i;
    json_t *e;
    if (!json_is_array(v))
        return vb_err_set(err, "%s: \"eos_token_id\" is not an integer or a list", path);
    json_array_foreach(v, i, e) {
        if (!json_is_integer(e))
            return vb_err_set(err, "%s: \"eos_token_id\"[%zu] is not an integer", path, i);
        char at[32];
        snprintf(at, sizeof at, "[%zu]", i);
        if (check_eos(json_integer_value(e), c, path, at, err))
            return -1;
        if (c->n_eos == VB_MAX_EOS) /* dropping one would let its rows run on */
            return vb_err_set(err, "%s: \"eos_token_id\" lists more than %d ids", path,
                              VB_MAX_EOS);
        c->eos_token_ids[c->n_eos++] = (int)json_integer_value(e);
    }
    return 0;
}

/* The numbers llama3 and yarn scaling divide by or take the log of
 * (forward/rope.c); factor is checked by the caller. */
static int check_rope_params(cfg_ctx *x, const vb_rope_scaling *s, const char *field)
{
    char in[48];
    snprintf(in, sizeof in, "\"%s\": ", field);
    if (s->type != VB_ROPE_LLAMA3 && s->type != VB_ROPE_YARN)
        return 0;
    if (check_positive(x->path, in, "original_max_position_embeddings",
                       s->original_max_position_embeddings, x->err))
        return -1;
    if (s->type == VB_ROPE_LLAMA3) {
        if (check_positive(x->path, in, "low_freq_factor", s->low_freq_factor, x->err) ||
            check_positive(x->path, in, "high_freq_factor", s->high_freq_factor, x->err))
            return -1;
        /* the smoothing band divides by high - low */
        if (!(s->high_freq_factor > s->low_freq_factor))
            return vb_err_set(x->err, "%s: %s\"high_freq_factor\" %g must be greater than "
                              "\"low_freq_factor\" %g", x->path, in, s->high_freq_factor,
                              s->low_freq_factor);
        return 0;
    }
    if (check_positive(x->path, in, "beta_fast", s->beta_fast, x->err) ||
        check_positive(x->path, in, "beta_slow", s->beta_slow, x->err))
        return -1;
    /* 0 (absent) means derived from factor */
    if (s->attention_factor != 0 &&
        check_positive(x->path, in, "attention_factor", s->attention_factor, x->err))
        return -1;
    return 0;
}

/* YaRN's variants forward/rope.c does not compute, refused rather than run
 * as plain YaRN (session 43: each gave other logits than transformers):
 * mscale with mscale_all_dim (both non-zero, and no attention_factor:
 * transformers then scales by their ratio of get_mscale), and "truncate":
 * false (correction dims not rounded). */
static int refuse_yarn_variants(cfg_ctx *x, json_t *rs, const vb_rope_scaling *s,
                                const char *field)
{
    double mscale = 0, mscale_all_dim = 0;
    if (get_num(rs, "mscale", &mscale, x->path, x->err) ||
        get_num(rs, "mscale_all_dim", &mscale_all_dim, x->path, x->err))
        return -1;
    if (mscale != 0 && mscale_all_dim != 0 && s->attention_factor == 0)
        return vb_err_set(x->err, "%s: \"%s\": \"mscale\" with \"mscale_all_dim\" is not "
                          "supported (YaRN's attention factor from them); give "
                          "\"attention_factor\" instead", x->path, field);
    bool truncate = true;
    if (get_bool(rs, "truncate", &truncate, x->path, x->err))
        return -1;
    if (!truncate)
        return vb_err_set(x->err, "%s: \"%s\": \"truncate\": false is not supported (YaRN "
                          "with rounded correction dims only)", x->path, field);
    return 0;
}

/* rope_scaling (or transformers 5's rope_parameters, which also holds
 * rope_theta and says rope_type "default" when there is no scaling). */
static int get_rope(cfg_ctx *x, model_config *c)
{
    json_t *rs = json_object_get(x->root, "rope_scaling");
    const char *field = "rope_scaling";
    json_t *rp = json_object_get(x->root, "rope_parameters");
    if (json_is_object(rp)) {
        if (get_num(rp, "rope_theta", &c->rope_theta, x->path, x->err) != 0)
            return -1;
        if (!rs || json_is_null(rs)) {
            rs = rp;
            field = "rope_parameters";
        }
    }
    vb_rope_scaling *s = &c->rope_scaling;
    memset(s, 0, sizeof *s);
    s->type = VB_ROPE_DEFAULT;
    s->factor = 1.0;
    if (!rs || json_is_null(rs))
        return 0;
    if (!json_is_object(rs))
        return vb_err_set(x->err, "%s: \"%s\" is not an object", x->path, field);
    /* transformers: rope_type, else type; one of another JSON type is not
     * "no scaling" (a "type": 5 ran unscaled) */
    json_t *rt = json_object_get(rs, "rope_type");
    const char *type_key = rt && !json_is_null(rt) ? "rope_type" : "type";
    json_t *jt = json_object_get(rs, type_key);
    if (jt && !json_is_null(jt) && !json_is_string(jt))
        return vb_err_set(x->err, "%s: \"%s\": \"%s\" is not a string", x->path, field,
                          type_key);
    const char *type = json_is_string(jt) ? json_string_value(jt) : "default";
    if (strcmp(type, "default") == 0)
        return 0;
    if (strcmp(type, "linear") == 0)
        s->type = VB_ROPE_LINEAR;
    else if (strcmp(type, "llama3") == 0)
        s->type = VB_ROPE_LLAMA3;
    else if (strcmp(type, "yarn") == 0)
        s->type = VB_ROPE_YARN;
    else
        return vb_err_set(x->err, "%s: \"%s\" type '%s' is not supported (linear, llama3, yarn)",
                          x->path, field, type);
    s->original_max_position_embeddings = c->max_position_embeddings;
    s->low_freq_factor = 1.0;
    s->high_freq_factor = 4.0;
    s->beta_fast = 32.0;
    s->beta_slow = 1.0;
    s->factor = NAN;
    if (get_num(rs, "factor", &s->factor, x->path, x->err) ||
        get_num(rs, "original_max_position_embeddings", &s->original_max_position_embeddings,
                x->path, x->err) ||
        get_num(rs, "low_freq_factor", &s->low_freq_factor, x->path, x->err) ||
        get_num(rs, "high_freq_factor", &s->high_freq_factor, x->path, x->err) ||
        get_num(rs, "beta_fast", &s->beta_fast, x->path, x->err) ||
        get_num(rs, "beta_slow", &s->beta_slow, x->path, x->err) ||
        get_num(rs, "attention_factor", &s->attention_factor, x->path, x->err))
        return -1;
    if (!(s->factor > 0) || !isfinite(s->factor))
        return vb_err_set(x->err, "%s: \"%s\" type '%s' needs a positive \"factor\"", x->path,
                          field, type);
    if (s->type == VB_ROPE_YARN && refuse_yarn_variants(x, rs, s, field) < 0)
        return -1;
    return check_rope_params(x, s, field);
}

/* The inverse frequencies the forward pass will rotate by, computed as it
 * computes them (fp32, forward/rope.c), must be finite: each value above
 * passes its own check, yet a rope_theta or factor below fp32's range
 * (1e-300) divides by zero, and YaRN with rope_theta 1 divides by log(1)
 * (transformers raises ZeroDivisionError there); every row then failed on
 * NaN logits at the end of the run. c->head_dim is set and at most
 * VB_MAX_HEAD_DIM. */
static int check_rope_finite(cfg_ctx *x, const model_config *c)
{
    float inv_freq[VB_MAX_HEAD_DIM / 2], scale = 1.0f;
    rope_inv_freq(c, inv_freq, &scale);
    bool ok = isfinite(scale);
    for (int i = 0; ok && i < c->head_dim / 2; i++)
        ok = isfinite(inv_freq[i]);
    if (ok)
        return 0;
    static const char *const types[] = {"none", "linear", "llama3", "yarn"};
    return vb_err_set(x->err, "%s: \"rope_theta\" = %g with RoPE scaling %s (factor %g) gives "
                      "rotary frequencies that are not finite numbers in fp32; no model can "
                      "run with them", x->path, c->rope_theta, types[c->rope_scaling.type],
                      c->rope_scaling.factor);
}

/* transformers' window when config.json has no "sliding_window" key at all
 * (MistralConfig, Qwen2Config and Qwen3Config default it to 4096; null is
 * no window). LlamaConfig has no such field. */
#define HF_DEFAULT_SLIDING_WINDOW 4096

/* transformers' max_window_layers when config.json has none (Qwen2Config,
 * Qwen3Config): layers from this index on slide, those before it do not */
#define HF_DEFAULT_MAX_WINDOW_LAYERS 28

/* Whether a Qwen2/3 config with use_sliding_window true has a layer that
 * slides, as transformers builds its layer_types: the given list, else
 * the layers from max_window_layers on. None sliding is full attention
 * (0 or 1; -1 on a malformed field). */
static int qwen_any_sliding_layer(cfg_ctx *x, const model_config *c)
{
    json_t *types = json_object_get(x->root, "layer_types");
    if (types && !json_is_null(types)) {
        if (!json_is_array(types))
            return vb_err_set(x->err, "%s: \"layer_types\" is not a list", x->path);
        size_t i;
        json_t *t;
        json_array_foreach(types, i, t) {
            if (json_is_string(t) && strcmp(json_string_value(t), "sliding_attention") == 0)
                return 1;
        }
        return 0;
    }
    json_t *mwl = json_object_get(x->root, "max_window_layers");
    if (mwl && !json_is_null(mwl) && !json_is_integer(mwl))
        return vb_err_set(x->err, "%s: \"max_window_layers\" is not an integer", x->path);
    return (json_is_integer(mwl) ? json_integer_value(mwl) : HF_DEFAULT_MAX_WINDOW_LAYERS) <
           c->n_layers;
}

/* Refuse a model whose attention is truly windowed: computing it with full
 * attention would silently give other answers. Qwen2/3 carry a window size
 * they do not use unless use_sliding_window is true and a layer slides;
 * LlamaConfig has no window at all (transformers ignores the key). An
 * absent key is transformers' default window, not none: a Mistral config
 * without it ran with full attention where transformers attends to the
 * last 4096. */
static int check_sliding_window(cfg_ctx *x, const model_config *c)
{
    json_t *sw = json_object_get(x->root, "sliding_window");
    bool qwen = c->arch == VB_ARCH_QWEN2 || c->arch == VB_ARCH_QWEN3;
    bool use = false;
    if (get_bool(x->root, "use_sliding_window", &use, x->path, x->err))
        return -1;
    if (c->arch == VB_ARCH_LLAMA || (qwen && !use))
        return 0;
    if (qwen) {
        const int any = qwen_any_sliding_layer(x, c);
        if (any <= 0)
            return any;
    }
    if (sw && !json_is_null(sw) && !json_is_integer(sw))
        return vb_err_set(x->err, "%s: \"sliding_window\" is not an integer", x->path);
    if (!sw && HF_DEFAULT_SLIDING_WINDOW < c->max_position_embeddings)
        return vb_err_set(x->err, "%s: there is no \"sliding_window\", which transformers "
                          "reads as its default window of %d, shorter than "
                          "max_position_embeddings (%d); sliding-window attention is not "
                          "supported (\"sliding_window\": null is full attention)", x->path,
                          HF_DEFAULT_SLIDING_WINDOW, c->max_position_embeddings);
    if (json_is_integer(sw) && json_integer_value(sw) < c->max_position_embeddings)
        return vb_err_set(x->err, "%s: \"sliding_window\" = %lld is shorter than "
                          "max_position_embeddings (%d); sliding-window attention is not "
                          "supported", x->path, (long long)json_integer_value(sw),
                          c->max_position_embeddings);
    return 0;
}

/* bos_token_id is kept for reference only, never used to index: an integer
 * that fits an int, else none (-1), so 2^32+3 never becomes id 3. */
static int get_bos(json_t *obj)
{
    json_t *v = json_object_get(obj, "bos_token_id");
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
        return -1;
    return (int)json_integer_value(v);
}

/* max_position_embeddings when config.json has none: transformers' default
 * for the class (LlamaConfig 2048, Qwen2Config and Qwen3Config 32768,
 * MistralConfig 131072). One 2048 for all cut a Qwen2 directory's context
 * to 2048 (longer prompts error rows that transformers runs) and gave YaRN
 * another original_max_position_embeddings than transformers derives from
 * it: other logits. */
static int hf_default_positions(vb_arch arch)
{
    switch (arch) {
    case VB_ARCH_QWEN2:
    case VB_ARCH_QWEN3: return 32768;
    case VB_ARCH_MISTRAL: return 131072;
    case VB_ARCH_LLAMA: break;
    }
    return 2048;
}

static int load_config(cfg_ctx *x, model_config *c)
{
    json_t *mt = json_object_get(x->root, "model_type");
    if (!json_is_string(mt))
        return vb_err_set(x->err, "%s: no \"model_type\" string", x->path);
    snprintf(c->model_type, sizeof c->model_type, "%s", json_string_value(mt));
    if (strcmp(c->model_type, "qwen2") == 0)
        c->arch = VB_ARCH_QWEN2;
    else if (strcmp(c->model_type, "llama") == 0)
        c->arch = VB_ARCH_LLAMA;
    else if (strcmp(c->model_type, "mistral") == 0)
        c->arch = VB_ARCH_MISTRAL;
    else if (strcmp(c->model_type, "qwen3") == 0)
        c->arch = VB_ARCH_QWEN3;
    else
        return vb_err_set(x->err, "%s: model_type '%s' is not supported (qwen2, llama, mistral, "
                          "qwen3)", x->path, c->model_type);
    if (get_pos_int(x, "hidden_size", &c->hidden_size) ||
        get_pos_int(x, "num_hidden_layers", &c->n_layers) ||
        get_pos_int(x, "num_attention_heads", &c->n_heads) ||
        get_pos_int(x, "intermediate_size", &c->intermediate_size) ||
        get_pos_int(x, "vocab_size", &c->vocab_size))
        return -1;
    /* the tensor count (model_tensor_count) and every per-layer array are
     * sized from it: a bound far above any real model keeps them in range */
    if (c->n_layers > VB_MAX_LAYERS)
        return vb_err_set(x->err, "%s: \"num_hidden_layers\" = %d is more than %d", x->path,
                          c->n_layers, VB_MAX_LAYERS);
    c->n_kv_heads = c->n_heads;
    if (json_object_get(x->root, "num_key_value_heads") &&
        !json_is_null(json_object_get(x->root, "num_key_value_heads")) &&
        get_pos_int(x, "num_key_value_heads", &c->n_kv_heads))
        return -1;
    if (c->n_heads % c->n_kv_heads)
        return vb_err_set(x->err, "%s: num_attention_heads %d is not a multiple of "
                          "num_key_value_heads %d", x->path, c->n_heads, c->n_kv_heads);
    json_t *hd = json_object_get(x->root, "head_dim");
    if (hd && !json_is_null(hd)) {
        if (get_pos_int(x, "head_dim", &c->head_dim))
            return -1;
    } else {
        if (c->hidden_size % c->n_heads)
            return vb_err_set(x->err, "%s: hidden_size %d is not a multiple of "
                              "num_attention_heads %d and there is no head_dim", x->path,
                              c->hidden_size, c->n_heads);
        c->head_dim = c->hidden_size / c->n_heads;
    }
    if (c->head_dim % 2)
        return vb_err_set(x->err, "%s: head_dim %d is odd; rotary embeddings need it even",
                          x->path, c->head_dim);
    /* forward_init refuses it too, but only after every weight is read,
     * with exit 1 and no file named; inspect planned memory for it */
    if (c->head_dim > VB_MAX_HEAD_DIM)
        return vb_err_set(x->err, "%s: head_dim %d%s is more than %d, the most the forward "
                          "pass supports", x->path, c->head_dim,
                          hd && !json_is_null(hd) ? "" : " (hidden_size / num_attention_heads)",
                          VB_MAX_HEAD_DIM);
    /* the query width (o_proj's input) is a size like the others: the
     * forward pass, the backends and the TP plan hold it in an int, which
     * 2^23 heads of 512 wrapped (the plan then kept --tp values that cut
     * o_proj's quantization groups) */
    if ((long long)c->n_heads * c->head_dim > 1 << 30)
        return vb_err_set(x->err, "%s: num_attention_heads %d x head_dim %d = %lld is more than "
                          "%d", x->path, c->n_heads, c->head_dim,
                          (long long)c->n_heads * c->head_dim, 1 << 30);
    /* each size is at most 2^30, but their products are the memory plan's
     * and the loader's 64-bit byte counts: sizes of ~8e21 parameters
     * wrapped them (inspect printed a negative count, session 43). 2^50
     * parameters is a thousand times any model there is. */
    const double per_layer =
        (double)c->hidden_size * c->head_dim * (2.0 * c->n_heads + 2.0 * c->n_kv_heads) +
        3.0 * c->hidden_size * c->intermediate_size;
    const double params = 2.0 * c->vocab_size * c->hidden_size + c->n_layers * per_layer;
    if (params > 0x1p50)
        return vb_err_set(x->err, "%s: the sizes give %.3g parameters; more than 2^50 is not a "
                          "model this can load", x->path, params);
    c->max_position_embeddings = hf_default_positions(c->arch);
    json_t *mp = json_object_get(x->root, "max_position_embeddings");
    if (mp && get_pos_int(x, "max_position_embeddings", &c->max_position_embeddings))
        return -1;
    c->rms_norm_eps = 1e-6;
    c->rope_theta = 10000.0;
    if (get_num(x->root, "rms_norm_eps", &c->rms_norm_eps, x->path, x->err) ||
        get_num(x->root, "rope_theta", &c->rope_theta, x->path, x->err) || get_rope(x, c) ||
        check_positive(x->path, "", "rms_norm_eps", c->rms_norm_eps, x->err) ||
        check_positive(x->path, "", "rope_theta", c->rope_theta, x->err) ||
        check_rope_finite(x, c))
        return -1;
    json_t *act = json_object_get(x->root, "hidden_act");
    if (act && !json_is_null(act) && !json_is_string(act))
        return vb_err_set(x->err, "%s: \"hidden_act\" is not a string", x->path);
    if (json_is_string(act) && strcmp(json_string_value(act), "silu") != 0)
        return vb_err_set(x->err, "%s: hidden_act '%s' is not supported (silu)", x->path,
                          json_string_value(act));
    /* the rotary share of a head (Phi, GLM); every architecture here
     * rotates the whole head */
    double partial_rotary = 1.0;
    if (get_num(x->root, "partial_rotary_factor", &partial_rotary, x->path, x->err))
        return -1;
    if (partial_rotary != 1.0)
        return vb_err_set(x->err, "%s: \"partial_rotary_factor\" = %g is not supported (1)",
                          x->path, partial_rotary);
    bool mlp_bias = false, attention_bias = false;
    c->tie_word_embeddings = false;
    if (get_bool(x->root, "mlp_bias", &mlp_bias, x->path, x->err) ||
        get_bool(x->root, "tie_word_embeddings", &c->tie_word_embeddings, x->path, x->err) ||
        get_bool(x->root, "attention_bias", &attention_bias, x->path, x->err))
        return -1;
    if (mlp_bias)
        return vb_err_set(x->err, "%s: \"mlp_bias\": true is not supported", x->path);
    /* Qwen2 always has q/k/v bias (its config has no field for it). */
    c->attention_bias = c->arch == VB_ARCH_QWEN2 || attention_bias;
    c->qk_norm = c->arch == VB_ARCH_QWEN3;
    json_t *dt = json_object_get(x->root, "torch_dtype");
    if (!json_is_string(dt))
        dt = json_object_get(x->root, "dtype");
    snprintf(c->torch_dtype, sizeof c->torch_dtype, "%s",
             json_is_string(dt) ? json_string_value(dt) : "");
    c->bos_token_id = get_bos(x->root);
    if (get_eos(x->root, c, x->path, x->err) ||
        quant_config_parse(&c->quant, x->root, x->path, x->err))
        return -1;
    return check_sliding_window(x, c);
}

/* generation_config.json's top_k: absent or null is unset (-1); 0 keeps
 * every token, as in transformers; a negative value is vLLM's way of
 * writing "off" (files written for it carry -1), so it means 0, not a
 * refusal: a model directory as downloaded must run. */
static int get_top_k(json_t *g, model_config *c, const char *path, vb_err *err)
{
    json_t *k = json_object_get(g, "top_k");
    if (!k || json_is_null(k))
        return 0;
    if (!json_is_integer(k))
        return vb_err_set(err, "%s: \"top_k\" is not an integer", path);
    json_int_t v = json_integer_value(k);
    if (v < 0)
        v = 0;
    if (v > 1 << 24)
        return vb_err_set(err, "%s: \"top_k\" = %lld is out of range [0, %d]", path,
                          (long long)v, 1 << 24);
    c->gen_top_k = (int)v;
    return 0;
}

/* generation_config.json's max_new_tokens: the rows' budget where neither
 * the command line nor the row gives one, as transformers' generate() and
 * vLLM take it (Qwen2.5's base models ship 2048; voltbatch's own default,
 * 256, had stood in without a word). Range: --max-new-tokens'. */
static int get_max_new_tokens(json_t *g, model_config *c, const char *path, vb_err *err)
{
    json_t *v = json_object_get(g, "max_new_tokens");
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return vb_err_set(err, "%s: \"max_new_tokens\" is not an integer", path);
    json_int_t n = json_integer_value(v);
    if (n < 0 || n > 1 << 24)
        return vb_err_set(err, "%s: \"max_new_tokens\" = %lld is out of range [0, %d]", path,
                          (long long)n, 1 << 24);
    c->gen_max_new_tokens = (long)n;
    return 0;
}

/* generation_config.json's keys that change what transformers' generate()
 * makes and that voltbatch does not apply, each with the value that
 * changes nothing: such a key is named in c->gen_unapplied (the run warns;
 * the rows are made without it, as vLLM makes them). A number is neutral
 * at its value, a list or object when empty, anything when null. */
static void note_unapplied(json_t *g, model_config *c)
{
    static const struct { const char *key; double neutral; } keys[] = {
        {"typical_p", 1}, {"epsilon_cutoff", 0}, {"eta_cutoff", 0},
        {"no_repeat_ngram_size", 0}, {"min_new_tokens", 0}, {"min_length", 0},
        {"num_beams", 1}, {"diversity_penalty", 0}, {"guidance_scale", 1},
        {"suppress_tokens", 0}, {"begin_suppress_tokens", 0}, {"bad_words_ids", 0},
        {"sequence_bias", 0}, {"forced_bos_token_id", 0}, {"forced_eos_token_id", 0},
        /* transformers ends a row at these (StopStringCriteria), and the
         * penalty raises the eos logit as a row grows; unnamed, the rows
         * ran on past where transformers ends them without a word (--stop
         * applies stop strings) */
        {"stop_strings", 0}, {"exponential_decay_length_penalty", 0},
    };
    size_t used = 0;
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        json_t *v = json_object_get(g, keys[k].key);
        bool applies = v && !json_is_null(v) &&
                       (json_is_number(v)   ? json_number_value(v) != keys[k].neutral ||
                                                  strncmp(keys[k].key, "forced_", 7) == 0
                        : json_is_array(v)  ? json_array_size(v) > 0
                        : json_is_object(v) ? json_object_size(v) > 0
                                            : true);
        if (!applies)
            continue;
        int n = snprintf(c->gen_unapplied + used, sizeof c->gen_unapplied - used, "%s%s",
                         used ? ", " : "", keys[k].key);
        if (n < 0 || (size_t)n >= sizeof c->gen_unapplied - used)
            break; /* the names that fit */
        used += (size_t)n;
    }
}

/* generation_config.json: eos ids (they win over config.json's: chat models
 * list the end-of-turn token there) and sampling defaults. */
static int load_generation(const char *path, model_config *c, vb_err *err)
{
    json_error_t je;
    json_t *g = vb_json_load_file(path, 0, &je);
    if (!g)
        return vb_err_set(err, "%s: %s (line %d)", path, je.text, je.line);
    int rc = -1;
    if (!json_is_object(g)) {
        vb_err_set(err, "%s: not a JSON object", path);
        goto out;
    }
    if (get_eos(g, c, path, err) || get_num(g, "temperature", &c->gen_temperature, path, err) ||
        get_num(g, "top_p", &c->gen_top_p, path, err) ||
        /* transformers applies it (MinPLogitsWarper) when do_sample is on;
         * left unread, a model's min_p was dropped without a word */
        get_num(g, "min_p", &c->gen_min_p, path, err) ||
        get_num(g, "repetition_penalty", &c->gen_repetition_penalty, path, err) ||
        check_range(path, "temperature", c->gen_temperature, 0, 100, err) ||
        check_range(path, "top_p", c->gen_top_p, 0, 1, err) ||
        check_range(path, "min_p", c->gen_min_p, 0, 1, err) ||
        check_range(path, "repetition_penalty", c->gen_repetition_penalty, 0.01, 100, err) ||
        get_top_k(g, c, path, err) || get_max_new_tokens(g, c, path, err))
        goto out;
    /* a temperature too small to divide the logits by (they overflow to
     * +-Inf, every row an error row) is greedy, its limit: a model
     * directory as downloaded must run */
    if (c->gen_temperature > 0 && c->gen_temperature < SAMPLER_MIN_TEMPERATURE)
        c->gen_temperature = 0;
    if (json_object_get(g, "bos_token_id"))
        c->bos_token_id = get_bos(g);
    c->gen_do_sample = false;
    if (get_bool(g, "do_sample", &c->gen_do_sample, path, err))
        goto out;
    note_unapplied(g, c);
    rc = 0;
out:
    json_decref(g);
    return rc;
}

int model_config_load(model_config *c, const char *model_dir, vb_err *err)
{
    memset(c, 0, sizeof *c);
    c->gen_temperature = c->gen_top_p = c->gen_min_p = c->gen_repetition_penalty = NAN;
    c->gen_top_k = -1;
    c->gen_max_new_tokens = -1;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", model_dir);
    json_error_t je;
    json_t *root = vb_json_load_file(path, 0, &je);
    char why[1200];
    if (!root && vb_dangling_link(path, why, sizeof why))
        return vb_err_set(err, "%s: %s", path, why);
    if (!root) /* there: why it cannot be read or parsed; missing: the likely mistake */
        return vb_err_set(err, "%s: %s", path,
                          je.line > 0 || access(path, F_OK) == 0
                              ? je.text
                              : "cannot read it (is --model a Hugging Face model directory?)");
    cfg_ctx x = {root, path, err};
    int rc = json_is_object(root) ? load_config(&x, c)
                                  : vb_err_set(err, "%s: not a JSON object", path);
    json_decref(root);
    if (rc != 0)
        return rc;
    snprintf(path, sizeof path, "%s/generation_config.json", model_dir);
    if (access(path, F_OK) == 0)
        return load_generation(path, c, err);
    /* a broken link is not an absent file: its eos ids and sampling
     * defaults would be dropped without a word */
    if (vb_dangling_link(path, why, sizeof why))
        return vb_err_set(err, "%s: %s", path, why);
    return 0;
}

long model_config_positions(const model_config *c)
{
    long n = c->max_position_embeddings;
    const vb_rope_scaling *s = &c->rope_scaling;
    if (s->type == VB_ROPE_YARN || s->type == VB_ROPE_LINEAR) {
        double stretched = s->original_max_position_embeddings * s->factor;
        if (stretched > (double)n && stretched < 1e12)
            n = (long)stretched;
    }
    return n;
}

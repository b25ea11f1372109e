/* quant_config_parse: config.json's "quantization_config" -> vb_quant_config
 * (see quant_config.h). Only what the loaders can run exactly is accepted:
 * a method, bit width, group size, zero-point convention or scheme it would
 * compute wrongly is refused here with the field named. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "model/quant_config.h"

const char *vb_quant_method_name(vb_quant_method m)
{
    switch (m) {
    case VB_QUANT_AWQ: return "awq";
    case VB_QUANT_GPTQ: return "gptq";
    case VB_QUANT_CT: return "compressed-tensors";
    case VB_QUANT_INT8: return "--quantize";
    default: return "none";
    }
}

/* An integer field, the first of two spellings present (AutoAWQ wrote
 * w_bit / q_group_size before bits / group_size). */
static int get_int(json_t *o, const char *key, const char *alt, int *out, bool required,
                   const char *path, vb_err *err)
{
    json_t *v = json_object_get(o, key);
    if ((!v || json_is_null(v)) && alt)
        v = json_object_get(o, alt);
    if (!v || json_is_null(v)) {
        if (required)
            return vb_err_set(err, "%s: \"quantization_config\" has no \"%s\"", path, key);
        return 0;
    }
    if (!json_is_integer(v))
        return vb_err_set(err, "%s: \"quantization_config\": \"%s\" is not an integer", path, key);
    json_int_t i = json_integer_value(v);
    if (i < -1 || i > 1 << 20)
        return vb_err_set(err, "%s: \"quantization_config\": \"%s\" = %lld is out of range", path,
                          key, (long long)i);
    *out = (int)i;
    return 0;
}

/* A true / false field of `where` (for messages: "\"quantization_config\"" or
 * a config group's weights): absent or null gives dflt; another JSON type
 * is refused by name, not read as absent (a "symmetric": "false" ran an
 * asymmetric compressed-tensors checkpoint as symmetric, its zero points
 * unread: other numbers, no message). */
static int get_bool(json_t *o, const char *key, bool dflt, bool *out, const char *where,
                    const char *path, vb_err *err)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    if (!json_is_boolean(v))
        return vb_err_set(err, "%s: %s: \"%s\" is not true or false", path, where, key);
    *out = json_is_true(v);
    return 0;
}

/* A string field, the same way: absent or null gives dflt. */
static int get_str(json_t *o, const char *key, const char *dflt, const char **out,
                   const char *where, const char *path, vb_err *err)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    if (!json_is_string(v))
        return vb_err_set(err, "%s: %s: \"%s\" is not a string", path, where, key);
    *out = json_string_value(v);
    return 0;
}

#define QC "\"quantization_config\""

static int check_bits_group(const vb_quant_config *q, const char *path, vb_err *err)
{
    if (q->bits != 4 && q->bits != 8)
        return vb_err_set(err, "%s: \"quantization_config\": %d-bit %s weights are not supported "
                          "(4 or 8)", path, q->bits, vb_quant_method_name(q->method));
    if (q->group_size == 0 || q->group_size < -1 ||
        (q->group_size > 0 && q->group_size % (32 / q->bits)))
        return vb_err_set(err, "%s: \"quantization_config\": group_size %d is not supported "
                          "(-1, or a positive multiple of %d for %d-bit weights)", path,
                          q->group_size, 32 / q->bits, q->bits);
    return 0;
}

static int parse_awq(vb_quant_config *q, json_t *qc, const char *path, vb_err *err)
{
    q->bits = 4;
    if (get_int(qc, "bits", "w_bit", &q->bits, false, path, err) ||
        get_int(qc, "group_size", "q_group_size", &q->group_size, true, path, err))
        return -1;
    const char *v = "gemm";
    bool zero_point = true;
    if (get_str(qc, "version", "gemm", &v, QC, path, err) ||
        get_bool(qc, "zero_point", true, &zero_point, QC, path, err))
        return -1;
    if (strcasecmp(v, "gemm") != 0)
        return vb_err_set(err, "%s: \"quantization_config\": AWQ version '%s' is not supported "
                          "(gemm)", path, v);
    if (!zero_point)
        return vb_err_set(err, "%s: \"quantization_config\": AWQ with \"zero_point\": false is "
                          "not supported", path);
    if (q->bits != 4)
        return vb_err_set(err, "%s: \"quantization_config\": AWQ GEMM weights are 4-bit, not %d",
                          path, q->bits);
    q->zero_offset = 0;
    return check_bits_group(q, path, err);
}

static int parse_gptq(vb_quant_config *q, json_t *qc, const char *path, vb_err *err)
{
    if (get_int(qc, "bits", NULL, &q->bits, true, path, err) ||
        get_int(qc, "group_size", NULL, &q->group_size, true, path, err))
        return -1;
    const char *f = "gptq";
    bool lm_head = false, static_groups = false;
    if (get_bool(qc, "desc_act", false, &q->desc_act, QC, path, err) ||
        get_bool(qc, "sym", true, &q->sym, QC, path, err) ||
        get_bool(qc, "lm_head", false, &lm_head, QC, path, err) ||
        get_bool(qc, "static_groups", false, &static_groups, QC, path, err) ||
        get_str(qc, "checkpoint_format", "gptq", &f, QC, path, err))
        return -1;
    if (strcmp(f, "gptq") == 0)
        q->zero_offset = 1; /* stored zero - 1 (AutoGPTQ's classic packing) */
    else if (strcmp(f, "gptq_v2") == 0)
        q->zero_offset = 0;
    else
        return vb_err_set(err, "%s: \"quantization_config\": GPTQ checkpoint_format '%s' is not "
                          "supported (gptq, gptq_v2)", path, f);
    if (lm_head)
        return vb_err_set(err, "%s: \"quantization_config\": a quantized lm_head (GPTQ \"lm_head\": "
                          "true) is not supported", path);
    if (static_groups && q->desc_act)
        return vb_err_set(err, "%s: \"quantization_config\": GPTQ \"static_groups\" with "
                          "\"desc_act\" is not supported", path);
    return check_bits_group(q, path, err);
}

/* compressed-tensors: one scheme for every Linear, integer weights only,
 * no activation quantization (W4A16 / W8A16). */
static int parse_ct(vb_quant_config *q, json_t *qc, const char *path, vb_err *err)
{
    const char *fmt = "", *status = "compressed";
    json_t *groups = json_object_get(qc, "config_groups");
    if (get_str(qc, "format", "", &fmt, QC, path, err) ||
        get_str(qc, "quantization_status", "compressed", &status, QC, path, err))
        return -1;
    if (strcmp(status, "compressed") != 0)
        return vb_err_set(err, "%s: \"quantization_config\": quantization_status '%s': only "
                          "compressed checkpoints are read", path, status);
    if (!json_is_object(groups) || json_object_size(groups) != 1)
        return vb_err_set(err, "%s: \"quantization_config\": compressed-tensors needs exactly one "
                          "entry in \"config_groups\" (one scheme for every Linear)", path);
    json_t *g = json_object_iter_value(json_object_iter(groups));
    const char *gname = json_object_iter_key(json_object_iter(groups));
    char where[160];
    snprintf(where, sizeof where, "\"config_groups\".%s", gname);
    const char *f = fmt;
    if (get_str(g, "format", fmt, &f, where, path, err))
        return -1;
    if (strcmp(f, "pack-quantized") != 0)
        return vb_err_set(err, "%s: \"quantization_config\": compressed-tensors format '%s' is not "
                          "supported (pack-quantized)", path, f);
    json_t *targets = json_object_get(g, "targets");
    if (!json_is_array(targets) || json_array_size(targets) != 1 ||
        !json_is_string(json_array_get(targets, 0)) ||
        strcmp(json_string_value(json_array_get(targets, 0)), "Linear") != 0)
        return vb_err_set(err, "%s: \"config_groups\".%s.targets: only [\"Linear\"] is supported",
                          path, gname);
    json_t *ia = json_object_get(g, "input_activations");
    json_t *oa = json_object_get(g, "output_activations");
    if ((ia && !json_is_null(ia)) || (oa && !json_is_null(oa)))
        return vb_err_set(err, "%s: \"config_groups\".%s: activation quantization is not "
                          "supported (weight-only W4A16 / W8A16)", path, gname);
    json_t *w = json_object_get(g, "weights");
    if (!json_is_object(w))
        return vb_err_set(err, "%s: \"config_groups\".%s has no \"weights\" object", path, gname);
    json_t *type = json_object_get(w, "type");
    if (!json_is_string(type) || strcmp(json_string_value(type), "int") != 0)
        return vb_err_set(err, "%s: \"config_groups\".%s.weights.type must be \"int\"", path, gname);
    if (get_int(w, "num_bits", NULL, &q->bits, true, path, err))
        return -1;
    snprintf(where, sizeof where, "\"config_groups\".%s.weights", gname);
    const char *strategy = "";
    bool dynamic = false;
    if (get_bool(w, "symmetric", true, &q->sym, where, path, err) ||
        get_bool(w, "dynamic", false, &dynamic, where, path, err) ||
        get_str(w, "strategy", "", &strategy, where, path, err))
        return -1;
    if (strcmp(strategy, "channel") == 0) {
        q->group_size = -1;
    } else if (strcmp(strategy, "group") == 0) {
        if (get_int(w, "group_size", NULL, &q->group_size, true, path, err))
            return -1;
    } else {
        return vb_err_set(err, "%s: \"config_groups\".%s.weights.strategy '%s' is not supported "
                          "(group, channel)", path, gname, strategy);
    }
    /* activation order: "weight" (alias "static") reorders only while
     * quantizing, groups stay contiguous; "group" (alias "dynamic", or
     * true) stores weight_g_idx, read like GPTQ's g_idx */
    json_t *ao = json_object_get(w, "actorder");
    if (ao && !json_is_null(ao) && !json_is_boolean(ao) && !json_is_string(ao))
        return vb_err_set(err, "%s: %s: \"actorder\" is not a string", path, where);
    const char *order = json_is_string(ao) ? json_string_value(ao) : "";
    if (json_is_true(ao) || strcmp(order, "group") == 0 || strcmp(order, "dynamic") == 0)
        q->desc_act = true;
    else if (ao && !json_is_null(ao) && !json_is_false(ao) && strcmp(order, "weight") != 0 &&
             strcmp(order, "static") != 0)
        return vb_err_set(err, "%s: \"config_groups\".%s.weights.actorder '%s' is not supported "
                          "(group, weight, null)", path, gname, order);
    if (dynamic)
        return vb_err_set(err, "%s: \"config_groups\".%s.weights.dynamic is not supported", path,
                          gname);
    json_t *ign = json_object_get(qc, "ignore");
    if (ign && !json_is_null(ign) && !json_is_array(ign))
        return vb_err_set(err, "%s: \"quantization_config\": \"ignore\" is not a list", path);
    size_t i;
    json_t *e;
    json_array_foreach(ign, i, e) {
        if (!json_is_string(e) || strcmp(json_string_value(e), "lm_head") != 0)
            return vb_err_set(err, "%s: \"quantization_config\".ignore: only \"lm_head\" may be "
                              "left unquantized (found '%s')", path,
                              json_is_string(e) ? json_string_value(e) : "?");
    }
    return check_bits_group(q, path, err);
}

int quant_config_parse(vb_quant_config *q, const void *root_, const char *path, vb_err *err)
{
    memset(q, 0, sizeof *q);
    json_t *root = (json_t *)root_;
    json_t *qc = json_object_get(root, "quantization_config");
    if (!qc || json_is_null(qc))
        return 0;
    if (!json_is_object(qc))
        return vb_err_set(err, "%s: \"quantization_config\" is not an object", path);
    const char *method = "";
    if (get_str(qc, "quant_method", "", &method, QC, path, err))
        return -1;
    if (strcmp(method, "awq") == 0) {
        q->method = VB_QUANT_AWQ;
        return parse_awq(q, qc, path, err);
    }
    if (strcmp(method, "gptq") == 0) {
        q->method = VB_QUANT_GPTQ;
        return parse_gptq(q, qc, path, err);
    }
    if (strcmp(method, "compressed-tensors") == 0) {
        q->method = VB_QUANT_CT;
        return parse_ct(q, qc, path, err);
    }
    return vb_err_set(err, "%s: \"quantization_config\": quant_method '%s' is not supported "
                      "(awq, gptq, compressed-tensors)", path, *method ? method : "(missing)");
}

int vb_quantize_parse(const char *s, vb_quantize *out)
{
    if (strcmp(s, "int8") == 0)
        *out = VB_QUANTIZE_INT8;
    else if (strcmp(s, "none") == 0)
        *out = VB_QUANTIZE_NONE;
    else
        return -1;
    return 0;
}

const char *vb_quantize_name(vb_quantize q)
{
    return q == VB_QUANTIZE_INT8 ? "int8" : "none";
}

int quant_config_quantize(vb_quant_config *q, vb_quantize want, const char *dir, vb_err *err)
{
    if (want == VB_QUANTIZE_NONE)
        return 0;
    if (q->method != VB_QUANT_NONE)
        return vb_err_set(err, "%s: --quantize int8: the checkpoint is already quantized "
                          "(config.json's quantization_config: %s %d-bit); drop --quantize",
                          dir, vb_quant_method_name(q->method), q->bits);
    *q = (vb_quant_config){.method = VB_QUANT_INT8, .bits = 8, .group_size = -1, .sym = true};
    return 0;
}

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

static bool get_bool(json_t *o, const char *key, bool dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

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
    json_t *ver = json_object_get(qc, "version");
    const char *v = json_is_string(ver) ? json_string_value(ver) : "gemm";
    if (strcasecmp(v, "gemm") != 0)
        return vb_err_set(err, "%s: \"quantization_config\": AWQ version '%s' is not supported "
                          "(gemm)", path, v);
    if (!get_bool(qc, "zero_point", true))
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
    q->desc_act = get_bool(qc, "desc_act", false);
    q->sym = get_bool(qc, "sym", true);
    json_t *fmt = json_object_get(qc, "checkpoint_format");
    const char *f = json_is_string(fmt) ? json_string_value(fmt) : "gptq";
    if (strcmp(f, "gptq") == 0)
        q->zero_offset = 1; /* stored zero - 1 (AutoGPTQ's classic packing) */
    else if (strcmp(f, "gptq_v2") == 0)
        q->zero_offset = 0;
    else
        return vb_err_set(err, "%s: \"quantization_config\": GPTQ checkpoint_format '%s' is not "
                          "supported (gptq, gptq_v2)", path, f);
    if (get_bool(qc, "lm_head", false))
        return vb_err_set(err, "%s: \"quantization_config\": a quantized lm_head (GPTQ \"lm_head\": "
                          "true) is not supported", path);
    if (get_bool(qc, "static_groups", false) && q->desc_act)
        return vb_err_set(err, "%s: \"quantization_config\": GPTQ \"static_groups\" with "
                          "\"desc_act\" is not supported", path);
    return check_bits_group(q, path, err);
}

/* compressed-tensors: one scheme for every Linear, integer weights only,
 * no activation quantization (W4A16 / W8A16). */
static int parse_ct(vb_quant_config *q, json_t *qc, const char *path, vb_err *err)
{
    json_t *fmt = json_object_get(qc, "format");
    json_t *groups = json_object_get(qc, "config_groups");
    json_t *status = json_object_get(qc, "quantization_status");
    if (json_is_string(status) && strcmp(json_string_value(status), "compressed") != 0)
        return vb_err_set(err, "%s: \"quantization_config\": quantization_status '%s': only "
                          "compressed checkpoints are read", path, json_string_value(status));
    if (!json_is_object(groups) || json_object_size(groups) != 1)
        return vb_err_set(err, "%s: \"quantization_config\": compressed-tensors needs exactly one "
                          "entry in \"config_groups\" (one scheme for every Linear)", path);
    json_t *g = json_object_iter_value(json_object_iter(groups));
    const char *gname = json_object_iter_key(json_object_iter(groups));
    json_t *gfmt = json_object_get(g, "format");
    const char *f = json_is_string(gfmt) ? json_string_value(gfmt)
                    : json_is_string(fmt) ? json_string_value(fmt) : "";
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
    q->sym = get_bool(w, "symmetric", true);
    json_t *st = json_object_get(w, "strategy");
    const char *strategy = json_is_string(st) ? json_string_value(st) : "";
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
    const char *order = json_is_string(ao) ? json_string_value(ao) : "";
    if (json_is_true(ao) || strcmp(order, "group") == 0 || strcmp(order, "dynamic") == 0)
        q->desc_act = true;
    else if (ao && !json_is_null(ao) && !json_is_false(ao) && strcmp(order, "weight") != 0 &&
             strcmp(order, "static") != 0)
        return vb_err_set(err, "%s: \"config_groups\".%s.weights.actorder '%s' is not supported "
                          "(group, weight, null)", path, gname, order);
    if (get_bool(w, "dynamic", false))
        return vb_err_set(err, "%s: \"config_groups\".%s.weights.dynamic is not supported", path,
                          gname);
    json_t *ign = json_object_get(qc, "ignore");
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
    json_t *m = json_object_get(qc, "quant_method");
    const char *method = json_is_string(m) ? json_string_value(m) : "";
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

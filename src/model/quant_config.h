/* A checkpoint's weight-only quantization, from config.json's
 * "quantization_config" (issue #21): which published format its linear
 * layers are stored in and the parameters every loader needs.
 *
 * Filled by quant_config_parse() (quant_config.c) while model_config_load
 * reads config.json, so a format or a parameter that cannot be run is
 * refused before any tensor is opened, with the field named. The tensors
 * themselves are read by quant_load.c and the format files next to it. */
#ifndef VB_QUANT_CONFIG_H
#define VB_QUANT_CONFIG_H

#include <stdbool.h>

#include "util/errors.h"

typedef enum vb_quant_method {
    VB_QUANT_NONE = 0,
    VB_QUANT_AWQ,   /* AutoAWQ, GEMM layout */
    VB_QUANT_GPTQ,  /* AutoGPTQ / GPTQModel, checkpoint_format gptq or gptq_v2 */
    VB_QUANT_CT,    /* compressed-tensors, format pack-quantized */
    VB_QUANT_INT8,  /* --quantize int8: made at load from a float checkpoint (quant_int8.c) */
} vb_quant_method;

/* What --quantize asks for (generate, bench, inspect): weight-only
 * quantization made at load time from an fp16 / bf16 / fp32 checkpoint. */
typedef enum vb_quantize {
    VB_QUANTIZE_NONE = 0,
    VB_QUANTIZE_INT8,   /* per output channel, symmetric, 8-bit (quant_int8.c) */
} vb_quantize;

typedef struct vb_quant_config {
    vb_quant_method method;
    int bits;           /* 4 or 8 */
    int group_size;     /* input columns per group; -1 = one group per output row
                         * (GPTQ group_size -1, compressed-tensors "channel") */
    bool sym;           /* GPTQ / compressed-tensors: symmetric, no zero points stored
                         * (compressed-tensors) or the fixed zero 2^(bits-1) (GPTQ) */
    bool desc_act;      /* GPTQ: act order, g_idx is a permutation of groups */
    int zero_offset;    /* GPTQ: added to each stored zero (1 for "gptq", 0 for "gptq_v2") */
} vb_quant_config;

/* "awq", "gptq", "compressed-tensors", "--quantize"; "none". */
const char *vb_quant_method_name(vb_quant_method m);

/* Reads root's "quantization_config" (a jansson json_t *, passed as void *
 * to keep jansson out of this header) into q; absent or null means
 * VB_QUANT_NONE. path is config.json's, for messages. */
int quant_config_parse(vb_quant_config *q, const void *root, const char *path, vb_err *err);

/* --quantize's value: "int8" (or "none"). Returns 0, or -1 for anything else. */
int vb_quantize_parse(const char *s, vb_quantize *out);
/* The value vb_quantize_parse reads: "int8", "none". */
const char *vb_quantize_name(vb_quantize q);

/* Applies --quantize to the config.json just read (dir's, for messages):
 * int8 turns q into VB_QUANT_INT8, 8 bits, one group per output channel,
 * symmetric; a checkpoint that is already quantized is refused (-1, err
 * saying to drop --quantize). VB_QUANTIZE_NONE leaves q as it is. */
int quant_config_quantize(vb_quant_config *q, vb_quantize want, const char *dir, vb_err *err);

#endif

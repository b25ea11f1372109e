/* Weight-only quantized linear layers: the ONE internal layout every
 * checkpoint format is turned into at load (issue #21), and the loader
 * that does it.
 *
 * AWQ, GPTQ and compressed-tensors store the same thing three ways
 * (packed along the output or the input dimension, AWQ's interleaved
 * nibbles, GPTQ's zero - 1, compressed-tensors' signed values, zero points
 * packed or not, act-order g_idx). quant_awq.c, quant_gptq.c and
 * quant_ct.c each decode their tensors for this rank's slice; quant_load.c
 * checks the slice against the tensor-parallel split and writes this
 * layout, which the backends' quantized matmuls read (--quantize int8
 * makes the same 8-bit layout from a float checkpoint: quant_int8.c):
 *
 *   One vb_qweight per projection per rank, shape [n_out, n_in] as the fp16
 *   weight it replaces (PyTorch's [out_features, in_features], this rank's
 *   slice from tp_plan). Input columns are in "internal order":
 *     q       [n_out][n_in * bits / 8] bytes, row o = output channel o;
 *             4-bit: internal column j in byte j / 2, low nibble when j is
 *             even (so a little-endian uint32 word w holds columns 8w..8w+7,
 *             column 8w+k at bits 4k); 8-bit: byte j. Unsigned values.
 *     scales  fp16 [n_out][n_groups]
 *     zeros   fp16 [n_out][n_groups], in quantized units (integers 0..2^bits,
 *             exact in fp16): weight[o][j] = (q[o][j] - zeros[o][g]) * scales[o][g]
 *             with g = j / group_size (g_idx NULL) or g_idx[j].
 *     perm    NULL, or [n_in]: internal column j multiplies input x[perm[j]]
 *             (act order: columns sorted by group at load, so each group's
 *             columns are contiguous).
 *     g_idx   NULL when every group is group_size contiguous columns;
 *             else [n_in], nondecreasing, the group of each internal column
 *             (act order on a rank that holds part of the input dimension:
 *             o_proj / down_proj under --tp, where a group's columns are
 *             spread over the ranks; its scales are kept whole).
 *
 * Groups of formats without act order stay whole on a rank: a --tp that
 * cuts o_proj's or down_proj's input dimension inside a group is refused
 * at load, naming the --tp values that work. */
#ifndef VB_QUANT_WEIGHTS_H
#define VB_QUANT_WEIGHTS_H

#include <stdbool.h>
#include <stdint.h>

#include "model/model_load.h"
#include "model/quant_config.h"
#include "model/safetensors.h"
#include "util/errors.h"

typedef struct vb_qweight {
    int bits;           /* 4 or 8 */
    int n_out, n_in;    /* this rank's shape */
    int group_size;     /* input columns per group (internal order) when g_idx is NULL */
    int n_groups;       /* columns of scales and zeros */
    uint8_t *q;
    uint16_t *scales, *zeros;
    int32_t *perm;      /* NULL or [n_in] */
    int32_t *g_idx;     /* NULL or [n_in] */
    uint64_t bytes;     /* all of the above */
} vb_qweight;

/* Whether spec s names one of the seven projections a quantized checkpoint
 * stores quantized (q/k/v/o_proj, gate/up/down_proj of a decoder layer). */
bool quant_spec_is_linear(const tensor_spec *s);

/* Reads this rank's slice (s->split, s->start, s->count) of the projection
 * whose tensors are named like s->name without ".weight" (e.g.
 * model.layers.0.self_attn.q_proj.qweight) into a malloc'd vb_qweight.
 * With out == NULL only checks: presence, dtypes, shapes against s->rows x
 * s->cols, group size, g_idx range, and the tp split (tp = the number of
 * ranks, for the message naming the --tp values that work). threads: how
 * many decode it (<= 1: the caller alone; the result is the same for
 * any). Returns 0, or -1 with err naming the file and tensor. */
int quant_linear_load(vb_qweight **out, const safetensors *st, const vb_quant_config *qc,
                      const tensor_spec *s, int tp, int threads, const char *dir,
                      uint64_t *out_of_fp16_range, vb_err *err);

void quant_weight_free(vb_qweight *w);

/* Dequantizes rows [o0, o1) into dst[(o - o0) * n_in + j], fp32, internal
 * column order (the CPU backend's inner step; also the tests'). */
void quant_dequant_rows(const vb_qweight *w, int o0, int o1, float *dst);

#endif

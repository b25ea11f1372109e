/* --quantize int8: an fp16 / bf16 / fp32 projection quantized at load
 * into quant_raw (quant_internal.h), 8 bits, one scale per output row,
 * symmetric, no calibration; quant_load.c then lays it out like any
 * checkpoint's 8-bit weights, so the backends run it unchanged.
 *
 * The rule is compressed-tensors' W8A16 "channel" strategy, symmetric,
 * round to nearest (compressed_tensors/quantization/utils/helpers.py
 * calculate_qparams and quantization/lifecycle/forward.py _quantize),
 * evaluated as torch evaluates it in the checkpoint's dtype D (fp16 or
 * bf16; fp32 checkpoints get fp16 scales):
 *   scale[o] = D(max_i |w[o][i]| / 127.5)           (127.5 = (127 - -128) / 2;
 *              at least 2^-23, float32's eps)        fp32 division, then D
 *   q[o][i]  = round_half_even(clamp(D(w[o][i] / scale[o]), -128, 127))
 *   w        ~ q * scale                             (stored: q + 128, zero 128)
 * so a model run with --quantize int8 holds exactly the weights of
 * scripts/make-quantized-checkpoint --format ct --bits 8 --group-size -1
 * loaded from disk. The scale is over the whole row, so a rank that holds
 * part of the input dimension (o_proj, down_proj under --tp) reads its
 * rows whole to find it. bf16 scales are stored as fp16, exactly for any
 * scale >= 2^-17 (a row whose largest |w| is below ~1e-3). */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "model/quant_internal.h"
#include "util/half.h"

/* x rounded to the dtype the checkpoint computes in (torch's fp16 / bf16
 * ops: the float result rounded to nearest even). */
static float round_to(float x, st_dtype d)
{
    if (d == ST_F16)
        return vb_half_to_float(vb_float_to_half(x));
    if (d == ST_BF16)
        return vb_bf16_to_float(vb_float_to_bf16(x));
    return x;
}

typedef struct int8_job {
    const st_tensor *t;
    quant_raw *out;
} int8_job;

/* Output rows [o0, o1): each float row read whole (its scale is over the
 * whole row) and quantized. */
static int int8_rows(const quant_req *r, void *ctx, int64_t o0, int64_t o1, vb_err *err)
{
    const int8_job *ij = ctx;
    quant_raw *out = ij->out;
    int64_t in = r->s->cols;
    float *row = malloc(sizeof(float) * (size_t)(in ? in : 1));
    if (!row)
        return vb_err_set(err, "%s: '%s': out of memory", r->dir, r->prefix);
    /* the dtype scales are held in, and the one w / scale is rounded to */
    st_dtype sd = ij->t->dtype == ST_BF16 ? ST_BF16 : ST_F16;
    st_dtype qd = ij->t->dtype;
    for (int64_t o = o0; o < o1; o++) {
        if (st_read_rows(r->st, ij->t, r->o0 + o, 1, VB_W_F32, row, NULL, err)) {
            free(row);
            return -1;
        }
        float amax = 0.0f;
        bool finite = true;
        for (int64_t i = 0; i < in; i++) {
            amax = fmaxf(amax, fabsf(row[i])); /* fmaxf drops a NaN: */
            finite &= isfinite(row[i]) != 0;
        }
        /* a row holding NaN or Inf gets a NaN scale, so its outputs are NaN
         * as the float weights' would be (the rows then end in the logits'
         * NaN error), not values clamped into range */
        float scale = finite ? fmaxf(round_to(amax / 127.5f, sd), FLT_EPSILON) : NAN;
        uint8_t *q = out->qv + o * r->ni;
        for (int64_t j = 0; j < r->ni; j++) {
            float v = round_to(row[r->i0 + j] / scale, qd);
            v = rintf(fminf(fmaxf(v, -128.0f), 127.0f)); /* ties to even: the default mode */
            q[j] = (uint8_t)((int)v + 128);
        }
        out->scale[o] = vb_float_to_half(scale);
        out->zero[o] = vb_float_to_half(128.0f);
    }
    free(row);
    return 0;
}

int quant_int8_read(const quant_req *r, quant_raw *out, vb_err *err)
{
    tensor_spec plain = *r->s;
    plain.quant = VB_QUANT_NONE;
    const st_tensor *t = model_tensor_lookup(r->st, &plain, r->dir, err);
    if (!t)
        return -1;
    int64_t in = r->s->cols;
    if (quant_raw_alloc(r, out, 8, (int)in, 1, err))
        return -1;
    if (r->check_only)
        return 0;
    int8_job ij = {.t = t, .out = out};
    if (quant_for_rows(r, int8_rows, &ij, err) != 0)
        return -1;
    for (int64_t j = 0; j < r->ni; j++)
        out->gidx[j] = 0;
    return 0;
}

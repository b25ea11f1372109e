/* compressed-tensors "pack-quantized" (W4A16 / W8A16) -> quant_raw (see
 * quant_internal.h).
 *
 * For a Linear of in x out, b bits, pf = 32 / b, half = 2^(b-1):
 *   weight_packed     int32 [out, ceil(in / pf)]: word [o][w] holds input
 *                     columns w*pf + k at bits b*k, each value stored as
 *                     the signed integer + half;
 *   weight_scale      [out, groups] (groups = ceil(in / group_size), or 1
 *                     for the "channel" strategy), the model's float dtype;
 *   weight_zero_point only when not symmetric: int32 [ceil(out / pf),
 *                     groups], packed along the OUTPUT dimension the same
 *                     way (signed + half);
 *   weight_shape      int [2] = [out, in];
 *   weight_g_idx      with actorder "group": int32 [in], the group of each
 *                     input column (all -1: column order);
 *   weight[o][i] = (q_signed - zp_signed) * scale = (q - zp) * scale with
 *   both stored (unsigned) values, which is what the internal layout keeps;
 *   symmetric: zp_signed = 0, i.e. the unsigned zero is half.
 * (compressed-tensors: compressors/quantized_compressors/pack_quantized.py
 * and quantization/lifecycle/forward.py.) */
#include <stdio.h>

#include "model/quant_internal.h"
#include "util/half.h"

typedef struct ct_job {
    const uint8_t *wp, *zp;   /* weight_packed, weight_zero_point (NULL: symmetric) */
    const st_tensor *sc;
    int64_t ng, words;        /* groups; int32 words a row */
    quant_raw *out;
} ct_job;

/* Output rows [o0, o1); weight_packed is [out, words], read along rows. */
static int ct_rows(const quant_req *r, void *ctx, int64_t o0, int64_t o1, vb_err *err)
{
    (void)err;
    const ct_job *cj = ctx;
    quant_raw *out = cj->out;
    int bits = r->qc->bits, pf = 32 / bits, half = 1 << (bits - 1);
    uint32_t mask = (1u << bits) - 1;
    for (int64_t o = o0; o < o1; o++) {
        int64_t row = r->o0 + o;
        const uint8_t *words = cj->wp + (size_t)(row * cj->words) * 4;
        uint8_t *dst = out->qv + o * r->ni;
        int64_t j = 0;
        if (r->i0 % pf == 0) /* a word a load while whole words remain */
            for (; j + pf <= r->ni; j += pf) {
                uint32_t w = quant_word(words, (r->i0 + j) / pf);
                for (int k = 0; k < pf; k++)
                    dst[j + k] = (uint8_t)((w >> (bits * k)) & mask);
            }
        for (; j < r->ni; j++) {
            int64_t i = r->i0 + j;
            dst[j] = (uint8_t)((quant_word(words, i / pf) >> (bits * (i % pf))) & mask);
        }
        for (int64_t k = 0; k < cj->ng; k++) {
            int zero = half;
            if (cj->zp) {
                uint32_t w = quant_word(cj->zp, (row / pf) * cj->ng + k);
                zero = (int)((w >> (bits * (row % pf))) & mask);
            }
            out->scale[o * cj->ng + k] = quant_half(r, cj->sc, row * cj->ng + k);
            out->zero[o * cj->ng + k] = vb_float_to_half((float)zero);
        }
    }
    return 0;
}

int quant_ct_read(const quant_req *r, quant_raw *out, vb_err *err)
{
    int bits = r->qc->bits, pf = 32 / bits;
    int64_t in = r->s->cols, n_out = r->s->rows;
    bool channel = r->qc->group_size < 0;
    int g = channel ? (int)in : r->qc->group_size;
    int64_t ng = channel ? 1 : (in + g - 1) / g;
    int64_t words = (in + pf - 1) / pf;
    const st_dtype i32[] = {ST_I32}, ints[] = {ST_I64, ST_I32}, fp[] = {ST_F16, ST_BF16, ST_F32};
    const st_tensor *wp = quant_tensor(r, "weight_packed", i32, 1, 2, n_out, words, false, err);
    const st_tensor *sc = wp ? quant_tensor(r, "weight_scale", fp, 3, 2, n_out, ng, false, err) : NULL;
    const st_tensor *sh = sc ? quant_tensor(r, "weight_shape", ints, 2, 1, 2, -1, false, err) : NULL;
    if (!sh)
        return -1;
    if (quant_int(r, sh, 0) != n_out || quant_int(r, sh, 1) != in)
        return vb_err_set(err, "%s: tensor '%s.weight_shape' is [%lld, %lld], config.json implies "
                          "[%lld, %lld]", quant_file(r, sh), r->prefix,
                          (long long)quant_int(r, sh, 0), (long long)quant_int(r, sh, 1),
                          (long long)n_out, (long long)in);
    const st_tensor *zp = NULL;
    if (!r->qc->sym &&
        !(zp = quant_tensor(r, "weight_zero_point", i32, 1, 2, (n_out + pf - 1) / pf, ng, false,
                            err)))
        return -1;
    char gname[160];
    snprintf(gname, sizeof gname, "%s.weight_g_idx", r->prefix);
    const st_tensor *gi = NULL;
    if (st_find(r->st, gname) &&
        !(gi = quant_tensor(r, "weight_g_idx", i32, 1, 1, in, -1, false, err)))
        return -1;
    bool column_order = !gi;
    for (int64_t i = 0; gi && i < in; i++) {
        int64_t v = quant_int(r, gi, i);
        if (v == -1 && i == 0)
            column_order = true; /* never initialised: compressed-tensors reads column order */
        else if (column_order != (v == -1))
            /* all -1 (column order) or all groups: a mix is neither */
            return vb_err_set(err, "%s: tensor '%s'[%lld] = %lld, but '%s'[0] = %s: it must "
                              "hold -1 everywhere (column order) or a group everywhere",
                              quant_file(r, gi), gname, (long long)i, (long long)v, gname,
                              column_order ? "-1" : "a group");
        else if (v != -1 && (v < 0 || v >= ng))
            return vb_err_set(err, "%s: tensor '%s'[%lld] = %lld is outside the %lld groups of "
                              "weight_scale", quant_file(r, gi), gname, (long long)i,
                              (long long)v, (long long)ng);
    }
    if (r->qc->desc_act && !gi)
        return vb_err_set(err, "%s: tensor '%s' is missing; actorder \"group\" needs it", r->dir,
                          gname);
    if (channel && gi && !column_order)
        return vb_err_set(err, "%s: tensor '%s': a g_idx with the channel strategy is not "
                          "supported", quant_file(r, gi), gname);
    if (quant_raw_alloc(r, out, bits, g, ng, err))
        return -1;
    if (r->check_only)
        return 0;
    ct_job cj = {.wp = quant_data(r, wp), .zp = zp ? quant_data(r, zp) : NULL, .sc = sc,
                 .ng = ng, .words = words, .out = out};
    if (quant_for_rows(r, ct_rows, &cj, err) != 0)
        return -1;
    for (int64_t j = 0; j < r->ni; j++)
        out->gidx[j] = (int32_t)(channel        ? 0
                                 : column_order ? (r->i0 + j) / g
                                                : quant_int(r, gi, r->i0 + j));
    return 0;
}

/* AutoGPTQ / GPTQModel checkpoints -> quant_raw (see quant_internal.h).
 *
 * For a Linear of in x out, b bits, pf = 32 / b values per int32:
 *   qweight int32 [in / pf, out]: word [w][o] holds input rows w*pf + k at
 *           bits b*k (packed along the input dimension, low bits first);
 *   qzeros  int32 [groups, out / pf]: word [g][c] holds output columns
 *           c*pf + k at bits b*k; the zero is the field + 1 in the classic
 *           format (checkpoint_format "gptq": the packer stored zero - 1),
 *           the field itself in "gptq_v2";
 *   scales  fp16  [groups, out];
 *   g_idx   int32 [in]: the group of each input row (act order, desc_act:
 *           any permutation of groups; otherwise i / group_size; absent in
 *           some old checkpoints, which then mean i / group_size);
 *   weight[o][i] = scale[g_idx[i]][o] * (q - zero[g_idx[i]][o]).
 * (AutoGPTQ: auto_gptq/nn_modules/qlinear/qlinear_cuda.py, pack and the
 * torch path of forward.) */
#include <stdio.h>

#include "model/quant_internal.h"
#include "util/half.h"

typedef struct gptq_job {
    const uint8_t *qw, *qz;   /* qweight, qzeros data */
    const st_tensor *sc;
    int64_t ng;
    quant_raw *out;
} gptq_job;

/* Output rows [o0, o1). qweight is [in / pf][out] and the values go to
 * [out][in]: a transpose, in tiles of QUANT_TILE x QUANT_TILE values that
 * stay in the L1 cache (see quant_awq.c). */
static int gptq_rows(const quant_req *r, void *ctx, int64_t o0, int64_t o1, vb_err *err)
{
    (void)err;
    const gptq_job *gj = ctx;
    quant_raw *out = gj->out;
    int bits = r->qc->bits, pf = 32 / bits;
    int log_pf = bits == 4 ? 3 : 2; /* bits is 4 or 8 (quant_config.c) */
    uint32_t mask = (1u << bits) - 1;
    int64_t n_out = r->s->rows;
    /* the slice's columns are whole words (every slice but an act-order
     * one cut mid-word): a word a load, its pf values pf bytes of a row */
    bool whole = r->i0 % pf == 0 && r->ni % pf == 0;
    for (int64_t j0 = 0; j0 < r->ni; j0 += QUANT_TILE) {
        int64_t j1 = j0 + QUANT_TILE < r->ni ? j0 + QUANT_TILE : r->ni;
        for (int64_t ob = o0; ob < o1; ob += QUANT_TILE) {
            int64_t oe = ob + QUANT_TILE < o1 ? ob + QUANT_TILE : o1;
            for (int64_t o = ob; o < oe; o++) {
                const uint8_t *src = gj->qw + (size_t)(r->o0 + o) * 4;
                uint8_t *dst = out->qv + o * r->ni;
                for (int64_t j = j0; whole && j < j1; j += pf) {
                    uint32_t w = quant_word(src, ((r->i0 + j) >> log_pf) * n_out);
                    for (int k = 0; k < pf; k++)
                        dst[j + k] = (uint8_t)((w >> (bits * k)) & mask);
                }
                for (int64_t j = j0; !whole && j < j1; j++) {
                    uint64_t i = (uint64_t)(r->i0 + j);
                    uint32_t w = quant_word(src, (int64_t)(i >> log_pf) * n_out);
                    dst[j] = (uint8_t)((w >> (bits * (int)(i & (pf - 1)))) & mask);
                }
            }
        }
    }
    for (int64_t o = o0; o < o1; o++) {
        int64_t col = r->o0 + o;
        for (int64_t k = 0; k < gj->ng; k++) {
            uint32_t w = quant_word(gj->qz, k * (n_out / pf) + col / pf);
            int zero = (int)((w >> (bits * (col % pf))) & mask) + r->qc->zero_offset;
            out->scale[o * gj->ng + k] = quant_half(r, gj->sc, k * n_out + col);
            out->zero[o * gj->ng + k] = vb_float_to_half((float)zero);
        }
    }
    return 0;
}

int quant_gptq_read(const quant_req *r, quant_raw *out, vb_err *err)
{
    int bits = r->qc->bits, pf = 32 / bits;
    int64_t in = r->s->cols, n_out = r->s->rows;
    int g = r->qc->group_size > 0 ? r->qc->group_size : (int)in;
    if (in % pf || n_out % pf)
        return vb_err_set(err, "%s: '%s': shape [%lld, %lld] is not a multiple of the %d values "
                          "per int32 of %d-bit GPTQ", r->dir, r->prefix, (long long)n_out,
                          (long long)in, pf, bits);
    int64_t ng = (in + g - 1) / g;
    const st_dtype i32[] = {ST_I32}, fp[] = {ST_F16, ST_BF16, ST_F32};
    const st_tensor *qw = quant_tensor(r, "qweight", i32, 1, 2, in / pf, n_out, false, err);
    const st_tensor *qz = qw ? quant_tensor(r, "qzeros", i32, 1, 2, ng, n_out / pf, false, err) : NULL;
    const st_tensor *sc = qz ? quant_tensor(r, "scales", fp, 3, 2, ng, n_out, false, err) : NULL;
    if (!sc)
        return -1;
    char gname[160];
    snprintf(gname, sizeof gname, "%s.g_idx", r->prefix);
    const st_tensor *gi = NULL;
    if (st_find(r->st, gname) && !(gi = quant_tensor(r, "g_idx", i32, 1, 1, in, -1, false, err)))
        return -1;
    if (!gi && r->qc->desc_act)
        return vb_err_set(err, "%s: tensor '%s.g_idx' is missing; desc_act checkpoints need it",
                          r->dir, r->prefix);
    /* g_idx in range, checked for the whole tensor: a bad index is a bad file */
    for (int64_t i = 0; gi && i < in; i++) {
        int64_t v = quant_int(r, gi, i);
        if (v < 0 || v >= ng)
            return vb_err_set(err, "%s: tensor '%s.g_idx'[%lld] = %lld is outside the %lld groups "
                              "of scales", quant_file(r, gi), r->prefix, (long long)i,
                              (long long)v, (long long)ng);
    }
    if (quant_raw_alloc(r, out, bits, g, ng, err))
        return -1;
    if (r->check_only)
        return 0;
    gptq_job gj = {.qw = quant_data(r, qw), .qz = quant_data(r, qz), .sc = sc, .ng = ng,
                   .out = out};
    if (quant_for_rows(r, gptq_rows, &gj, err) != 0)
        return -1;
    for (int64_t j = 0; j < r->ni; j++)
        out->gidx[j] = (int32_t)(gi ? quant_int(r, gi, r->i0 + j) : (r->i0 + j) / g);
    return 0;
}

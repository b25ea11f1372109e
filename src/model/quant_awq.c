/* AutoAWQ's GEMM layout -> quant_raw (see quant_internal.h).
 *
 * For a Linear of in x out (PyTorch weight [out, in]), group g:
 *   qweight int32 [in, out / 8]: word [i][c] holds output columns
 *           8c + AWQ_ORDER[k] at bits 4k, AWQ_ORDER = {0, 2, 4, 6, 1, 3, 5, 7}
 *           (so column 8c + m is at bits 4 * REVERSE[m],
 *           REVERSE = {0, 4, 1, 5, 2, 6, 3, 7});
 *   qzeros  int32 [in / g, out / 8], packed the same way;
 *   scales  fp16  [in / g, out];
 *   weight[o][i] = (q - zero) * scale of group i / g; no offset on the zero.
 * (AutoAWQ: awq/modules/linear/gemm.py packs, awq/utils/packing_utils.py
 * unpacks.) */
#include "model/quant_internal.h"
#include "util/half.h"

static const int awq_reverse[8] = {0, 4, 1, 5, 2, 6, 3, 7};

static int nib(uint32_t word, int64_t col)
{
    return (int)((word >> (4 * awq_reverse[col % 8])) & 15u);
}

int quant_awq_read(const quant_req *r, quant_raw *out, vb_err *err)
{
    int64_t in = r->s->cols, n_out = r->s->rows;
    int g = r->qc->group_size > 0 ? r->qc->group_size : (int)in;
    if (in % g)
        return vb_err_set(err, "%s: '%s': %lld input columns do not divide into AWQ groups of %d "
                          "(quantization_config group_size)", r->dir, r->prefix, (long long)in, g);
    if (n_out % 8)
        return vb_err_set(err, "%s: '%s': %lld output columns are not a multiple of 8, which AWQ "
                          "packs per int32", r->dir, r->prefix, (long long)n_out);
    int64_t ng = in / g;
    const st_dtype i32[] = {ST_I32}, fp[] = {ST_F16, ST_BF16, ST_F32};
    const st_tensor *qw = quant_tensor(r, "qweight", i32, 1, 2, in, n_out / 8, false, err);
    const st_tensor *qz = qw ? quant_tensor(r, "qzeros", i32, 1, 2, ng, n_out / 8, false, err) : NULL;
    const st_tensor *sc = qz ? quant_tensor(r, "scales", fp, 3, 2, ng, n_out, false, err) : NULL;
    if (!sc || quant_raw_alloc(r, out, 4, g, ng, err))
        return -1;
    if (r->check_only)
        return 0;
    for (int64_t o = 0; o < r->no; o++) {
        int64_t col = r->o0 + o;
        for (int64_t j = 0; j < r->ni; j++) {
            int64_t i = r->i0 + j;
            out->qv[o * r->ni + j] = (uint8_t)nib(quant_u32(r, qw, i * (n_out / 8) + col / 8), col);
        }
        for (int64_t k = 0; k < ng; k++) {
            out->scale[o * ng + k] = quant_half(r, sc, k * n_out + col);
            out->zero[o * ng + k] =
                vb_float_to_half((float)nib(quant_u32(r, qz, k * (n_out / 8) + col / 8), col));
        }
    }
    for (int64_t j = 0; j < r->ni; j++)
        out->gidx[j] = (int32_t)((r->i0 + j) / g);
    return 0;
}

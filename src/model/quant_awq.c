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

static const int awq_order[8] = {0, 2, 4, 6, 1, 3, 5, 7};   /* bits 4k: column 8c + this */
static const int awq_reverse[8] = {0, 4, 1, 5, 2, 6, 3, 7}; /* column 8c + m: bits 4 * this */

static int nib(uint32_t word, int64_t col)
{
    return (int)((word >> (4 * awq_reverse[col % 8])) & 15u);
}

typedef struct awq_job {
    const uint8_t *qw, *qz;   /* qweight, qzeros data */
    const st_tensor *sc;
    int64_t words, ng;        /* int32 words a row (out / 8), groups */
    quant_raw *out;
} awq_job;

/* Output rows [o0, o1). qweight is [in][out / 8] and the values go to
 * [out][in]: a transpose, done in tiles of QUANT_TILE x QUANT_TILE values
 * so that the qweight rows read and the output rows written stay in the
 * L1 cache (a value at a time down a column was a cache miss each: most
 * of a 7B load), a whole word (8 output rows) a load where the tile's
 * rows start on one. (Tried: a chunk's 256 output rows written at once,
 * reading qweight rows in order: twice as slow, the rows' cache lines
 * fall into 8 of L1's 64 sets at these row lengths.) */
static int awq_rows(const quant_req *r, void *ctx, int64_t o0, int64_t o1, vb_err *err)
{
    (void)err;
    const awq_job *a = ctx;
    quant_raw *out = a->out;
    size_t stride = (size_t)a->words * 4; /* a local: the byte stores below may alias *a */
    for (int64_t j0 = 0; j0 < r->ni; j0 += QUANT_TILE) {
        int64_t j1 = j0 + QUANT_TILE < r->ni ? j0 + QUANT_TILE : r->ni;
        for (int64_t ob = o0; ob < o1; ob += QUANT_TILE) {
            int64_t oe = ob + QUANT_TILE < o1 ? ob + QUANT_TILE : o1;
            for (int64_t o = ob; o < oe;) {
                uint64_t col = (uint64_t)(r->o0 + o);
                const uint8_t *src =
                    a->qw + (size_t)((r->i0 + j0) * a->words + (int64_t)(col / 8)) * 4;
                if (col % 8 == 0 && o + 8 <= oe) {
                    uint8_t *d[8];
                    for (int k = 0; k < 8; k++)
                        d[k] = out->qv + (o + awq_order[k]) * r->ni;
                    for (int64_t j = j0; j < j1; j++, src += stride) {
                        uint32_t w = quant_word(src, 0);
                        for (int k = 0; k < 8; k++)
                            d[k][j] = (uint8_t)((w >> (4 * k)) & 15u);
                    }
                    o += 8;
                    continue;
                }
                int shift = 4 * awq_reverse[col % 8];
                uint8_t *dst = out->qv + o * r->ni;
                for (int64_t j = j0; j < j1; j++, src += stride)
                    dst[j] = (uint8_t)((quant_word(src, 0) >> shift) & 15u);
                o++;
            }
        }
    }
    for (int64_t o = o0; o < o1; o++) {
        int64_t col = r->o0 + o, n_out = r->s->rows;
        for (int64_t k = 0; k < a->ng; k++) {
            out->scale[o * a->ng + k] = quant_half(r, a->sc, k * n_out + col);
            out->zero[o * a->ng + k] =
                vb_float_to_half((float)nib(quant_word(a->qz, k * a->words + col / 8), col));
        }
    }
    return 0;
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
    awq_job a = {.qw = quant_data(r, qw), .qz = quant_data(r, qz), .sc = sc, .words = n_out / 8,
                 .ng = ng, .out = out};
    if (quant_for_rows(r, awq_rows, &a, err) != 0)
        return -1;
    for (int64_t j = 0; j < r->ni; j++)
        out->gidx[j] = (int32_t)((r->i0 + j) / g);
    return 0;
}

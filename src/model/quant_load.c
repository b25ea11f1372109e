/* quant_linear_load: one quantized projection's slice -> the internal
 * layout of quant_weights.h. The format readers decode; this file checks
 * the slice against the tensor-parallel split, resolves act order (sorts
 * the columns by group, keeping the permutation for the activations) and
 * packs. Also the checked tensor access the readers share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/quant_internal.h"
#include "util/half.h"

static const char *const linear_suffixes[] = {
    ".self_attn.q_proj.weight", ".self_attn.k_proj.weight", ".self_attn.v_proj.weight",
    ".self_attn.o_proj.weight", ".mlp.gate_proj.weight",    ".mlp.up_proj.weight",
    ".mlp.down_proj.weight",
};

bool quant_spec_is_linear(const tensor_spec *s)
{
    if (strncmp(s->name, "model.layers.", 13) != 0)
        return false;
    size_t n = strlen(s->name);
    for (size_t i = 0; i < sizeof linear_suffixes / sizeof linear_suffixes[0]; i++) {
        size_t m = strlen(linear_suffixes[i]);
        if (n > m && strcmp(s->name + n - m, linear_suffixes[i]) == 0)
            return true;
    }
    return false;
}

/* --- checked tensor access ----------------------------------------------- */

const char *quant_file(const quant_req *r, const st_tensor *t)
{
    return r->st->files[t->file].path;
}

static void shape_str(char *buf, size_t n, const int64_t *d, int nd)
{
    snprintf(buf, n, "[");
    for (int i = 0; i < nd; i++)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%lld", i ? ", " : "", (long long)d[i]);
    snprintf(buf + strlen(buf), n - strlen(buf), "]");
}

const st_tensor *quant_tensor(const quant_req *r, const char *suffix, const st_dtype *want,
                              int n_want, int ndim, int64_t d0, int64_t d1, bool optional,
                              vb_err *err)
{
    char name[160];
    snprintf(name, sizeof name, "%s.%s", r->prefix, suffix);
    const st_tensor *t = st_find(r->st, name);
    if (!t) {
        if (!optional)
            vb_err_set(err, "%s: tensor '%s' is missing from the checkpoint (config.json's "
                       "quantization_config says %s)", r->dir, name,
                       vb_quant_method_name(r->qc->method));
        return NULL;
    }
    bool dt_ok = false;
    char wanted[64] = "";
    for (int i = 0; i < n_want; i++) {
        dt_ok |= t->dtype == want[i];
        snprintf(wanted + strlen(wanted), sizeof wanted - strlen(wanted), "%s%s", i ? " or " : "",
                 st_dtype_name(want[i]));
    }
    if (!dt_ok) {
        vb_err_set(err, "%s: tensor '%s' has dtype %s, %s needs %s", quant_file(r, t), name,
                   st_dtype_name(t->dtype), vb_quant_method_name(r->qc->method), wanted);
        return NULL;
    }
    int64_t want_d[2] = {d0, d1};
    bool ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim && i < 2; i++)
        ok = want_d[i] < 0 || t->shape[i] == want_d[i];
    if (!ok) {
        char have[96], exp[96];
        shape_str(have, sizeof have, t->shape, t->ndim);
        shape_str(exp, sizeof exp, want_d, ndim);
        vb_err_set(err, "%s: tensor '%s' has shape %s, config.json implies %s", quant_file(r, t),
                   name, have, exp);
        return NULL;
    }
    return t;
}

const uint8_t *quant_data(const quant_req *r, const st_tensor *t)
{
    const st_file *f = &r->st->files[t->file];
    return f->map + f->data_start + t->begin;
}

int64_t quant_int(const quant_req *r, const st_tensor *t, int64_t i)
{
    if (t->dtype == ST_I64) {
        int64_t v;
        memcpy(&v, quant_data(r, t) + (size_t)i * 8, 8);
        return v;
    }
    return (int32_t)quant_word(quant_data(r, t), i);
}

uint16_t quant_half(const quant_req *r, const st_tensor *t, int64_t i)
{
    const uint8_t *p = quant_data(r, t);
    if (t->dtype == ST_F32) {
        float f;
        memcpy(&f, p + (size_t)i * 4, 4);
        return vb_float_to_half_clamped(f, r->oor);
    }
    uint16_t h;
    memcpy(&h, p + (size_t)i * 2, 2);
    if (t->dtype == ST_F16)
        return h;
    return vb_float_to_half_clamped(vb_bf16_to_float(h), r->oor);
}

int quant_raw_alloc(const quant_req *r, quant_raw *out, int bits, int group_size,
                    int64_t n_groups, vb_err *err)
{
    out->bits = bits;
    out->n_out = r->no;
    out->n_in = r->ni;
    out->in_full = r->s->cols;
    out->group_size = group_size;
    out->n_groups = n_groups;
    if (r->check_only)
        return 0;
    out->qv = malloc((size_t)(r->no * r->ni) + 1);
    out->scale = malloc(sizeof(uint16_t) * (size_t)(r->no * n_groups + 1));
    out->zero = malloc(sizeof(uint16_t) * (size_t)(r->no * n_groups + 1));
    out->gidx = malloc(sizeof(int32_t) * (size_t)(r->ni + 1));
    if (!out->qv || !out->scale || !out->zero || !out->gidx)
        return vb_err_set(err, "%s: '%s': out of memory", r->dir, r->prefix);
    return 0;
}

static void raw_free(quant_raw *q)
{
    free(q->qv);
    free(q->scale);
    free(q->zero);
    free(q->gidx);
}

/* --- layout ----------------------------------------------------------------- */

void quant_weight_free(vb_qweight *w)
{
    if (!w)
        return;
    free(w->q);
    free(w->scales);
    free(w->zeros);
    free(w->perm);
    free(w->g_idx);
    free(w);
}

static const int32_t *sort_gidx;

static int by_group(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    int32_t gx = sort_gidx[x], gy = sort_gidx[y];
    return gx != gy ? (gx < gy ? -1 : 1) : (x < y ? -1 : x > y); /* stable */
}

/* The --tp values up to 64 (below tp) that cut this tensor's input
 * dimension on group boundaries, for the refusal message. */
static void working_tps(char *buf, size_t n, int64_t in_full, int group, int tp)
{
    buf[0] = '\0';
    for (int t = 1; t < tp && t <= 64; t++)
        if (in_full % t == 0 && (in_full / t) % group == 0)
            snprintf(buf + strlen(buf), n - strlen(buf), "%s%d", buf[0] ? ", " : "", t);
}

/* Output rows [o0, o1) of q packed into w: values in w's column order
 * (w->perm for act order), two 4-bit values a byte (low nibble first),
 * and the slice's groups of scales and zeros. */
typedef struct pack_job {
    const quant_raw *q;
    vb_qweight *w;
    int64_t g0;
    size_t row_bytes;
} pack_job;

/* Pairs of 4-bit values into bytes, low nibble first. restrict lets the
 * compiler vectorize it (a fifth of a 7B load's decoding time without). */
static void pack_nibbles(uint8_t *restrict dst, const uint8_t *restrict src, int64_t pairs)
{
    for (int64_t k = 0; k < pairs; k++)
        dst[k] = (uint8_t)(src[2 * k] | src[2 * k + 1] << 4);
}

static int pack_rows(const quant_req *r, void *ctx, int64_t o0, int64_t o1, vb_err *err)
{
    (void)r;
    (void)err;
    const pack_job *pj = ctx;
    const quant_raw *q = pj->q;
    vb_qweight *w = pj->w;
    int64_t ni = q->n_in;
    const int32_t *perm = w->perm;
    for (int64_t o = o0; o < o1; o++) {
        const uint8_t *src = q->qv + o * ni;
        uint8_t *dst = w->q + (size_t)o * pj->row_bytes;
        if (q->bits == 8 && perm)
            for (int64_t j = 0; j < ni; j++)
                dst[j] = src[perm[j]];
        else if (q->bits == 8)
            memcpy(dst, src, (size_t)ni);
        else if (perm) /* ni is even at 4 bits (build checks) */
            for (int64_t j = 0; j < ni; j += 2)
                dst[j / 2] = (uint8_t)(src[perm[j]] | src[perm[j + 1]] << 4);
        else
            pack_nibbles(dst, src, ni / 2);
        for (int k = 0; k < w->n_groups; k++) {
            w->scales[o * w->n_groups + k] = q->scale[o * q->n_groups + pj->g0 + k];
            w->zeros[o * w->n_groups + k] = q->zero[o * q->n_groups + pj->g0 + k];
        }
    }
    return 0;
}

static int build(const quant_req *r, const quant_raw *q, int tp, vb_qweight **out, vb_err *err)
{
    int64_t ni = q->n_in, no = q->n_out;
    int G = q->group_size;
    /* checking reads no g_idx: act order is as config.json says */
    bool in_order = r->check_only ? !r->qc->desc_act : true;
    for (int64_t j = 0; j < ni && in_order && !r->check_only; j++)
        in_order = q->gidx[j] == (r->i0 + j) / G;
    if (q->bits == 4 && ni % 2)
        return vb_err_set(err, "%s: '%s': an odd number of input columns (%lld) per rank cannot "
                          "hold 4-bit pairs", r->dir, r->prefix, (long long)ni);
    /* Whether this rank's columns cut a group: a slice must start on a
     * group's first column and end on a group's last one, or at the
     * tensor's end (a last group shorter than the others, which GPTQ and
     * compressed-tensors allow: the rank holding it keeps it whole).
     * Per-channel scales have nothing to cut. */
    bool split_in = r->s->split == SPLIT_COLS;
    bool cuts = split_in && r->qc->group_size > 0 &&
                (r->i0 % G || (ni % G && r->i0 + ni != q->in_full));
    /* A checkpoint that declares act order takes the g_idx path below
     * whatever its g_idx holds, so that loading accepts every --tp that
     * checking (which reads no g_idx and trusts desc_act) accepted. */
    if (cuts && in_order && r->qc->desc_act)
        in_order = false;
    /* without act order a group must lie on one rank */
    if (in_order && cuts) {
        char tps[128];
        working_tps(tps, sizeof tps, q->in_full, G, tp);
        return vb_err_set(err, "%s: '%s': --tp %d gives each rank %lld of its %lld input columns, "
                          "which splits its quantization groups of %d columns across ranks; "
                          "use --tp %s", r->dir, r->prefix, tp, (long long)ni,
                          (long long)q->in_full, G, tps[0] ? tps : "1");
    }
    if (r->check_only)
        return 0;

    vb_qweight *w = calloc(1, sizeof *w);
    if (!w)
        return vb_err_set(err, "%s: '%s': out of memory", r->dir, r->prefix);
    w->bits = q->bits;
    w->n_out = (int)no;
    w->n_in = (int)ni;
    int64_t g0 = 0;
    if (!in_order) {
        /* act order: sort the columns by group */
        w->perm = malloc(sizeof(int32_t) * (size_t)(ni ? ni : 1));
        if (!w->perm)
            goto oom;
        for (int64_t j = 0; j < ni; j++)
            w->perm[j] = (int32_t)j;
        sort_gidx = q->gidx;
        qsort(w->perm, (size_t)ni, sizeof(int32_t), by_group);
        /* whole groups of G in a row (the rank holds all input columns):
         * as good as no act order but for the permutation */
        bool uniform = ni % G == 0;
        g0 = ni ? q->gidx[w->perm[0]] : 0;
        for (int64_t j = 0; j < ni && uniform; j++)
            uniform = q->gidx[w->perm[j]] == g0 + j / G;
        if (!uniform) {
            g0 = 0;
            w->g_idx = malloc(sizeof(int32_t) * (size_t)(ni ? ni : 1));
            if (!w->g_idx)
                goto oom;
            for (int64_t j = 0; j < ni; j++)
                w->g_idx[j] = q->gidx[w->perm[j]];
        }
    } else if (r->qc->group_size > 0 && ni % G) {
        /* a last group shorter than the others (GPTQ and compressed-tensors
         * allow input sizes that groups do not divide) */
        w->g_idx = malloc(sizeof(int32_t) * (size_t)(ni ? ni : 1));
        if (!w->g_idx)
            goto oom;
        memcpy(w->g_idx, q->gidx, sizeof(int32_t) * (size_t)ni);
    } else {
        g0 = ni ? q->gidx[0] : 0;
    }
    if (w->g_idx) {
        w->group_size = 0;
        w->n_groups = (int)q->n_groups;
    } else {
        /* per-channel: the slice is one group */
        w->group_size = r->qc->group_size > 0 ? G : (int)ni;
        w->n_groups = (int)(ni / (w->group_size ? w->group_size : 1));
    }
    size_t row_bytes = (size_t)ni * (size_t)q->bits / 8;
    w->q = malloc((size_t)no * row_bytes + 1);
    w->scales = malloc(sizeof(uint16_t) * (size_t)(no * w->n_groups + 1));
    w->zeros = malloc(sizeof(uint16_t) * (size_t)(no * w->n_groups + 1));
    if (!w->q || !w->scales || !w->zeros)
        goto oom;
    pack_job pj = {.q = q, .w = w, .g0 = g0, .row_bytes = row_bytes};
    if (quant_for_rows(r, pack_rows, &pj, err) != 0) {
        quant_weight_free(w);
        return -1;
    }
    w->bytes = (uint64_t)no * row_bytes + (uint64_t)no * (uint64_t)w->n_groups * 4 +
               (w->perm ? (uint64_t)ni * 4 : 0) + (w->g_idx ? (uint64_t)ni * 4 : 0);
    *out = w;
    return 0;
oom:
    quant_weight_free(w);
    return vb_err_set(err, "%s: '%s': out of memory", r->dir, r->prefix);
}

int quant_linear_load(vb_qweight **out, const safetensors *st, const vb_quant_config *qc,
                      const tensor_spec *s, int tp, int threads, const char *dir,
                      uint64_t *out_of_fp16_range, vb_err *err)
{
    quant_req r = {.st = st, .qc = qc, .s = s, .dir = dir, .check_only = out == NULL,
                   .oor = out_of_fp16_range, .threads = threads};
    size_t n = strlen(s->name);
    if (n < 7 || n - 7 >= sizeof r.prefix)
        return vb_err_set(err, "%s: tensor name '%s' too long", dir, s->name);
    memcpy(r.prefix, s->name, n - 7); /* without ".weight" */
    r.prefix[n - 7] = '\0';
    /* A float weight beside the packed one: the file says two things
     * about one projection and reading either would be a guess. (--quantize
     * int8 quantizes the float weight itself.) */
    const st_tensor *f = qc->method != VB_QUANT_INT8 ? st_find(st, s->name) : NULL;
    if (f)
        return vb_err_set(err, "%s: tensor '%s' is a float weight, and the checkpoint also "
                          "holds the quantized tensors config.json's quantization_config (%s) "
                          "reads in its place: the checkpoint is ambiguous",
                          st->files[f->file].path, s->name, vb_quant_method_name(qc->method));
    r.o0 = 0;
    r.no = s->rows;
    r.i0 = 0;
    r.ni = s->cols;
    if (s->split == SPLIT_ROWS) {
        r.o0 = s->start;
        r.no = s->count;
    } else if (s->split == SPLIT_COLS) {
        r.i0 = s->start;
        r.ni = s->count;
    }
    quant_raw q = {0};
    int rc = qc->method == VB_QUANT_AWQ    ? quant_awq_read(&r, &q, err)
             : qc->method == VB_QUANT_GPTQ ? quant_gptq_read(&r, &q, err)
             : qc->method == VB_QUANT_CT   ? quant_ct_read(&r, &q, err)
             : qc->method == VB_QUANT_INT8 ? quant_int8_read(&r, &q, err)
                                           : vb_err_set(err, "%s: not a quantized model", dir);
    if (rc == 0)
        rc = build(&r, &q, tp, out, err);
    raw_free(&q);
    return rc;
}

void quant_dequant_rows(const vb_qweight *w, int o0, int o1, float *dst)
{
    size_t row_bytes = (size_t)w->n_in * (size_t)w->bits / 8;
    for (int o = o0; o < o1; o++) {
        const uint8_t *q = w->q + (size_t)o * row_bytes;
        const uint16_t *sc = w->scales + (size_t)o * w->n_groups;
        const uint16_t *ze = w->zeros + (size_t)o * w->n_groups;
        float *d = dst + (size_t)(o - o0) * w->n_in;
        if (w->g_idx) {
            for (int j = 0; j < w->n_in; j++) {
                int v = w->bits == 8 ? q[j] : (j & 1 ? q[j / 2] >> 4 : q[j / 2] & 15);
                int g = w->g_idx[j];
                d[j] = ((float)v - vb_half_to_float(ze[g])) * vb_half_to_float(sc[g]);
            }
            continue;
        }
        for (int g = 0; g < w->n_groups; g++) {
            float s = vb_half_to_float(sc[g]), z = vb_half_to_float(ze[g]);
            int j0 = g * w->group_size, j1 = j0 + w->group_size;
            if (w->bits == 8)
                for (int j = j0; j < j1; j++)
                    d[j] = ((float)q[j] - z) * s;
            else
                for (int j = j0; j < j1; j += 2) { /* group sizes are even */
                    uint8_t b = q[j / 2];
                    d[j] = ((float)(b & 15) - z) * s;
                    d[j + 1] = ((float)(b >> 4) - z) * s;
                }
        }
    }
}

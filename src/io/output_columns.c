/* The output's row columns, a block at a time; see output_columns.h. */
#include "io/output_columns.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/h5_util.h"

static const char *const col_name[OUT_NCOLS] = {
    "completions", "output_ids", "prompt_tokens", "completion_tokens", "finish_reason", "error",
    "index",       "id",         "sample",        "logprobs",          "top_ids",       "top_logprobs",
};

static hid_t finish_enum_type(void)
{
    hid_t t = H5Tenum_create(H5T_NATIVE_INT8);
    const struct { const char *name; int8_t v; } values[] = {
        {"stop", VB_FINISH_STOP}, {"length", VB_FINISH_LENGTH}, {"error", VB_FINISH_ERROR}};
    for (size_t i = 0; t >= 0 && i < 3; i++)
        if (H5Tenum_insert(t, values[i].name, &values[i].v) < 0) {
            H5Tclose(t);
            return -1;
        }
    return t;
}

/* File and memory types of the columns this file has (-1: absent or
 * failed; out_columns_create checks). */
static void make_types(out_columns *c, const vb_results *r)
{
    hid_t *f = c->ftype, *m = c->mtype;
    if (c->completion_bytes) {
        f[OUT_COMPLETIONS] = H5Tvlen_create(H5T_STD_U8LE);
        m[OUT_COMPLETIONS] = H5Tvlen_create(H5T_NATIVE_UCHAR);
    } else {
        f[OUT_COMPLETIONS] = h5_vlen_utf8_type();
        m[OUT_COMPLETIONS] = h5_vlen_utf8_type();
    }
    f[OUT_OUTPUT_IDS] = H5Tvlen_create(H5T_NATIVE_INT32);
    m[OUT_OUTPUT_IDS] = H5Tvlen_create(H5T_NATIVE_INT32);
    f[OUT_PROMPT_TOKENS] = H5Tcopy(H5T_STD_I32LE);
    f[OUT_COMPLETION_TOKENS] = H5Tcopy(H5T_STD_I32LE);
    m[OUT_PROMPT_TOKENS] = H5Tcopy(H5T_NATIVE_INT32);
    m[OUT_COMPLETION_TOKENS] = H5Tcopy(H5T_NATIVE_INT32);
    f[OUT_FINISH] = finish_enum_type();
    m[OUT_FINISH] = finish_enum_type();
    f[OUT_ERROR] = h5_vlen_utf8_type();
    m[OUT_ERROR] = h5_vlen_utf8_type();
    f[OUT_INDEX] = H5Tcopy(H5T_STD_I64LE);
    m[OUT_INDEX] = H5Tcopy(H5T_NATIVE_INT64);
    if (r->id_kind == VB_ID_STRING) {
        f[OUT_ID] = h5_vlen_utf8_type();
        m[OUT_ID] = h5_vlen_utf8_type();
    } else if (r->id_kind == VB_ID_INT) {
        f[OUT_ID] = H5Tcopy(H5T_STD_I64LE);
        m[OUT_ID] = H5Tcopy(H5T_NATIVE_INT64);
    } else if (r->id_kind == VB_ID_UINT) { /* id_int holds the bits */
        f[OUT_ID] = H5Tcopy(H5T_STD_U64LE);
        m[OUT_ID] = H5Tcopy(H5T_NATIVE_UINT64);
    }
    if (r->n_samples > 1) {
        f[OUT_SAMPLE] = H5Tcopy(H5T_STD_I32LE);
        m[OUT_SAMPLE] = H5Tcopy(H5T_NATIVE_INT32);
    }
    if (r->top_n >= 0) {
        f[OUT_LOGPROBS] = H5Tvlen_create(H5T_NATIVE_FLOAT);
        m[OUT_LOGPROBS] = H5Tvlen_create(H5T_NATIVE_FLOAT);
    }
    if (r->top_n > 0) {
        f[OUT_TOP_IDS] = H5Tvlen_create(H5T_NATIVE_INT32);
        m[OUT_TOP_IDS] = H5Tvlen_create(H5T_NATIVE_INT32);
        f[OUT_TOP_LOGPROBS] = H5Tvlen_create(H5T_NATIVE_FLOAT);
        m[OUT_TOP_LOGPROBS] = H5Tvlen_create(H5T_NATIVE_FLOAT);
    }
}

/* Whether column k is in this file: every one but /id, /sample and the
 * logprobs columns always; those as r says. */
static bool wanted(const vb_results *r, int k)
{
    switch (k) {
    case OUT_ID:
        return r->id_kind != VB_ID_NONE;
    case OUT_SAMPLE:
        return r->n_samples > 1;
    case OUT_LOGPROBS:
        return r->top_n >= 0;
    case OUT_TOP_IDS: case OUT_TOP_LOGPROBS:
        return r->top_n > 0;
    default:
        return true;
    }
}

int out_columns_create(out_columns *c, hid_t f, const vb_results *r, vb_err *err)
{
    for (int k = 0; k < OUT_NCOLS; k++)
        c->d[k] = c->mtype[k] = c->ftype[k] = -1;
    c->completion_bytes = r->n_nul > 0;
    c->id_strings = r->id_kind == VB_ID_STRING;
    c->rows = (size_t)r->n_done;
    c->written = 0;
    make_types(c, r);
    hsize_t dim = c->rows;
    hid_t space = H5Screate_simple(1, &dim, NULL);
    if (space < 0)
        return vb_err_set(err, "/index: cannot create dataspace");
    int rc = 0;
    for (int k = 0; k < OUT_NCOLS && rc == 0; k++) {
        if (!wanted(r, k))
            continue;
        if (c->ftype[k] < 0 || c->mtype[k] < 0) {
            rc = vb_err_set(err, "/%s: cannot make its type", col_name[k]);
            break;
        }
        c->d[k] = H5Dcreate2(f, col_name[k], c->ftype[k], space, H5P_DEFAULT, H5P_DEFAULT,
                             H5P_DEFAULT);
        if (c->d[k] < 0)
            rc = vb_err_set(err, "/%s: cannot create dataset", col_name[k]);
    }
    for (int k = OUT_TOP_IDS; rc == 0 && r->top_n > 0 && k <= OUT_TOP_LOGPROBS; k++)
        if (h5_attr_int64(c->d[k], "top_n", r->top_n, err) < 0)
            rc = vb_err_set(err, "/top_ids: cannot write its top_n attribute");
    H5Sclose(space);
    return rc;
}

/* The block's values of column k into buf, in its memory type. */
static void fill(const out_columns *c, const vb_results *r, int k,
                 const vb_output_row *const *rows, size_t m, void *buf)
{
    const size_t top = r->top_n > 0 ? (size_t)r->top_n : 0;
    for (size_t i = 0; i < m; i++) {
        const vb_output_row *w = rows[i];
        const size_t nt = w->n_output_ids > 0 ? (size_t)w->n_output_ids : 0;
        switch (k) {
        case OUT_COMPLETIONS:
            if (c->completion_bytes)
                ((hvl_t *)buf)[i] = (hvl_t){vb_output_row_completion_len(w),
                                            w->completion ? w->completion : ""};
            else
                ((const char **)buf)[i] = w->completion ? w->completion : "";
            break;
        case OUT_ERROR:
            ((const char **)buf)[i] = w->error ? w->error : "";
            break;
        case OUT_ID:
            if (c->id_strings)
                ((const char **)buf)[i] = w->id ? w->id : "";
            else
                ((int64_t *)buf)[i] = w->id_int;
            break;
        case OUT_OUTPUT_IDS:
            ((hvl_t *)buf)[i] = (hvl_t){nt, w->output_ids};
            break;
        case OUT_LOGPROBS:
            ((hvl_t *)buf)[i] = w->logprobs ? (hvl_t){nt, w->logprobs} : (hvl_t){0, NULL};
            break;
        case OUT_TOP_IDS:
            ((hvl_t *)buf)[i] = w->top_ids ? (hvl_t){nt * top, w->top_ids} : (hvl_t){0, NULL};
            break;
        case OUT_TOP_LOGPROBS:
            ((hvl_t *)buf)[i] =
                w->top_logprobs ? (hvl_t){nt * top, w->top_logprobs} : (hvl_t){0, NULL};
            break;
        case OUT_PROMPT_TOKENS:
            ((int32_t *)buf)[i] = w->prompt_tokens;
            break;
        case OUT_COMPLETION_TOKENS:
            ((int32_t *)buf)[i] = w->completion_tokens;
            break;
        case OUT_SAMPLE:
            ((int32_t *)buf)[i] = w->sample;
            break;
        case OUT_FINISH:
            ((int8_t *)buf)[i] = (int8_t)w->finish_reason;
            break;
        case OUT_INDEX:
            ((int64_t *)buf)[i] = w->index;
            break;
        }
    }
}

/* buf as rows [c->written, c->written + m) of column k. */
static int write_slab(const out_columns *c, int k, size_t m, const void *buf, vb_err *err)
{
    hsize_t at = c->written, count = m;
    hid_t fs = H5Dget_space(c->d[k]);
    hid_t ms = fs >= 0 ? H5Screate_simple(1, &count, NULL) : -1;
    int rc = 0;
    if (ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, &at, NULL, &count, NULL) < 0 ||
        H5Dwrite(c->d[k], c->mtype[k], ms, fs, H5P_DEFAULT, buf) < 0)
        rc = vb_err_set(err, "/%s: write failed", col_name[k]);
    h5_close(ms);
    h5_close(fs);
    return rc;
}

int out_columns_write(out_columns *c, const vb_results *r, const vb_output_row *const *rows,
                      size_t m, vb_err *err)
{
    if (m == 0)
        return 0;
    if (c->written + m > c->rows)
        return vb_err_set(err, "/index: more rows (%zu) than the file was made for (%zu)",
                          c->written + m, c->rows);
    void *buf = malloc(m * sizeof(hvl_t)); /* the largest element */
    if (!buf)
        return vb_err_set(err, "out of memory for a block of %zu rows", m);
    int rc = 0;
    for (int k = 0; k < OUT_NCOLS && rc == 0; k++) {
        if (c->d[k] < 0)
            continue;
        fill(c, r, k, rows, m, buf);
        rc = write_slab(c, k, m, buf, err);
    }
    free(buf);
    if (rc == 0)
        c->written += m;
    return rc;
}

int out_columns_close(out_columns *c, int rc, vb_err *err)
{
    for (int k = 0; k < OUT_NCOLS; k++) {
        if (c->d[k] >= 0 && H5Dclose(c->d[k]) < 0 && rc == 0)
            rc = vb_err_set(err, "/%s: close failed", col_name[k]);
        h5_close(c->mtype[k]);
        h5_close(c->ftype[k]);
        c->d[k] = c->mtype[k] = c->ftype[k] = -1;
    }
    return rc;
}

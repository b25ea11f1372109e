/* Output HDF5 writer and reader; see output_writer.h. */
#include "io/output_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/h5_text.h"
#include "io/h5_util.h"
#include "io/output_columns.h"
#include "io/run_settings.h"
#include "util/writable.h"

static void iso_time(double unix_s, char *buf, size_t n)
{
    time_t t = (time_t)unix_s;
    struct tm tm;
    if (unix_s <= 0 || !gmtime_r(&t, &tm) || !strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, n, "%s", "");
}

/* The sampling in effect where the settings hold null (unset: the
 * model's generation_config.json or voltbatch's default decided it): the
 * file says what its rows were made with, not only what was asked. */
static int write_sampling_attrs(hid_t f, const json_t *settings, const json_t *sampling,
                                vb_err *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)sampling, key, v) {
        const json_t *given = json_object_get(settings, key);
        if (given && !json_is_null(given))
            continue;
        int rc = json_is_integer(v) ? h5_attr_int64(f, key, json_integer_value(v), err)
                                    : h5_attr_double(f, key, json_number_value(v), err);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int write_settings_attrs(hid_t f, const json_t *settings, vb_err *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)settings, key, v) {
        int rc = 0;
        if (strcmp(key, "version") == 0)
            continue; /* the root attribute version is the meta's (the same build) */
        if (json_is_string(v)) {
            rc = h5_attr_string(f, key, json_string_value(v), err);
        } else if (json_is_integer(v)) {
            rc = h5_attr_int64(f, key, json_integer_value(v), err);
        } else if (json_is_real(v)) {
            rc = h5_attr_double(f, key, json_real_value(v), err);
        } else if (json_is_boolean(v)) {
            rc = h5_attr_int64(f, key, json_is_true(v), err);
        } else if (json_is_array(v)) {
            char *s = json_dumps(v, JSON_COMPACT);
            rc = h5_attr_string(f, key, s ? s : "[]", err);
            free(s);
        } /* null: unset, left out */
        if (rc < 0)
            return -1;
    }
    char *canon = vb_run_settings_dump(settings);
    int rc = h5_attr_string(f, "settings_json", canon ? canon : "{}", err);
    free(canon);
    return rc;
}

/* Rows are written in blocks of at most this many, or about this many
 * bytes (a row with long completions and --logprobs N is megabytes): each
 * block's located rows are read back from the journal, written to every
 * column and freed before the next (the run holds only where each row
 * is, results.h). */
enum { WRITE_BLOCK = 4096 };
#define WRITE_BLOCK_BYTES ((uint64_t)16 << 20)

/* The rows from slot *k on, in key order, until a block is full: rows[i]
 * points at a held row or at bufs[i], read from the store (owned[i]). */
static int gather_block(const vb_results *r, size_t *k, vb_output_row *bufs,
                        const vb_output_row **rows, bool *owned, size_t *m, vb_err *err)
{
    const size_t slots = (size_t)r->n_rows * (size_t)r->n_samples;
    uint64_t bytes = 0;
    *m = 0;
    for (; *k < slots && *m < WRITE_BLOCK && bytes < WRITE_BLOCK_BYTES; ++*k) {
        if (r->loc[*k].at == VB_ROW_NONE)
            continue;
        if (vb_results_get(r, *k, &bufs[*m], &rows[*m], &owned[*m], err) < 0)
            return -1;
        bytes += r->loc[*k].out_bytes;
        ++*m;
    }
    return 0;
}

static void release_block(vb_output_row *bufs, bool *owned, size_t m)
{
    for (size_t i = 0; i < m; i++)
        if (owned[i]) {
            vb_output_row_free(&bufs[i]);
            owned[i] = false;
        }
}

/* Every finished row, a block at a time, into the columns. */
static int write_rows(hid_t f, const vb_results *r, vb_err *err)
{
    out_columns c;
    int rc = out_columns_create(&c, f, r, err);
    vb_output_row *bufs = calloc(WRITE_BLOCK, sizeof *bufs);
    const vb_output_row **rows = calloc(WRITE_BLOCK, sizeof *rows);
    bool *owned = calloc(WRITE_BLOCK, sizeof *owned);
    if (rc == 0 && (!bufs || !rows || !owned))
        rc = vb_err_set(err, "out of memory for a block of %d rows", WRITE_BLOCK);
    for (size_t k = 0, m = 0; rc == 0 && c.written < c.rows;) {
        rc = gather_block(r, &k, bufs, rows, owned, &m, err);
        if (rc == 0 && m == 0)
            rc = vb_err_set(err, "/index: %zu rows found of %zu", c.written, c.rows);
        if (rc == 0)
            rc = out_columns_write(&c, r, rows, m, err);
        release_block(bufs, owned, m);
    }
    free(bufs);
    free(rows);
    free(owned);
    return out_columns_close(&c, rc, err);
}

static int write_body(hid_t f, const vb_output_meta *meta, const vb_results *r, vb_err *err)
{
    if (write_rows(f, r, err) < 0)
        return -1;
    char start[40], end[40];
    iso_time(meta->start_time, start, sizeof start);
    iso_time(meta->end_time, end, sizeof end);
    if ((meta->settings && write_settings_attrs(f, meta->settings, err) < 0) ||
        (meta->sampling && write_sampling_attrs(f, meta->settings, meta->sampling, err) < 0) ||
        h5_attr_int64(f, "dp", meta->dp, err) < 0 ||
        h5_attr_string(f, "version", meta->version, err) < 0 ||
        h5_attr_string(f, "start_time", start, err) < 0 ||
        h5_attr_string(f, "end_time", end, err) < 0 ||
        h5_attr_double(f, "elapsed_s", meta->end_time - meta->start_time, err) < 0 ||
        h5_attr_double(f, "throughput_tokens_per_s", meta->throughput, err) < 0 ||
        h5_attr_int64(f, "rows_done", r->n_done, err) < 0 ||
        (!json_object_get(meta->settings, "input_rows") &&
         h5_attr_int64(f, "input_rows", r->n_rows, err) < 0) ||
        (!json_object_get(meta->settings, "n") &&
         h5_attr_int64(f, "n", r->n_samples, err) < 0) ||
        h5_attr_int64(f, "top_n", r->top_n, err) < 0 ||
        h5_attr_int64(f, "complete", meta->complete, err) < 0)
        return -1;
    return 0;
}

/* ---- when the disk fills up ------------------------------------------------ */

/* The file's size before HDF5's own overhead (B-trees, heap collection
 * slack): the rows' vb_output_row_bytes and a few KiB of headers and
 * attributes. Said in the message when writing fails, so a user knows how
 * much to free. */
static uint64_t output_bytes_estimate(const vb_results *r)
{
    return 16384 + r->out_bytes; /* superblock, object headers, root attributes */
}

/* HDF5 reports the operating system's error ("No space left on device")
 * only on its error stack, which the next API call clears (the clean-up
 * after a failed write makes several). An automatic error handler runs at
 * the failing call itself, so it can keep the first such message. */
typedef struct os_error {
    char msg[128];
} os_error;

static herr_t keep_os_error(unsigned n, const H5E_error2_t *e, void *data)
{
    (void)n;
    os_error *oe = data;
    const char *at = e->desc ? strstr(e->desc, "error message = '") : NULL;
    if (oe->msg[0] || !at)
        return 0;
    at += strlen("error message = '");
    const char *end = strchr(at, '\'');
    int len = end ? (int)(end - at) : (int)strlen(at);
    snprintf(oe->msg, sizeof oe->msg, "%.*s", len, at);
    return 0;
}

static herr_t on_h5_error(hid_t stack, void *data)
{
    H5Ewalk2(stack, H5E_WALK_DOWNWARD, keep_os_error, data);
    return 0;
}

#if defined(__GLIBC__)
/* Ends the process with the status it was ending with, before HDF5's exit
 * handler runs (exit handlers run last-registered first). */
static void end_before_hdf5_exit_handler(int status, void *arg)
{
    (void)arg;
    fflush(NULL);
    _exit(status);
}
#endif

/* HDF5 (1.10.8 at least) frees a file whose close fails (a flush to a
 * full disk) but leaves its id registered, and no call removes it; the
 * library's exit handler later closes that id again and crashes (status
 * 139 instead of the failure the run reports). Once a write to an open
 * file has failed, the process must end without that handler. glibc's
 * on_exit keeps the exit status; elsewhere the handler still runs. */
static void skip_hdf5_exit_handler(void)
{
#if defined(__GLIBC__)
    static bool installed;
    if (!installed && on_exit(end_before_hdf5_exit_handler, NULL) == 0)
        installed = true;
#endif
}

/* "812 bytes", "21.4 KiB", "3.1 GiB" */
static void format_bytes(uint64_t n, char *buf, size_t len)
{
    static const char *const unit[] = {"KiB", "MiB", "GiB", "TiB"};
    if (n < 1024) {
        snprintf(buf, len, "%" PRIu64 " bytes", n);
        return;
    }
    double v = (double)n / 1024.0;
    int u = 0;
    while (v >= 1024.0 && u < 3) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, len, "%.1f %s", v, unit[u]);
}

/* Completes err (what failed) with the operating system's reason when
 * HDF5 gave one, and with the bytes the file needs and had reached (tmp
 * still exists), so a user knows how much room to make. */
static void explain_write_failure(vb_err *err, const char *tmp, const os_error *oe,
                                  uint64_t need)
{
    char what[VB_ERR_LEN + sizeof oe->msg + 4], need_s[32], got_s[32];
    if (oe->msg[0])
        snprintf(what, sizeof what, "%s: %s", err->msg, oe->msg);
    else
        snprintf(what, sizeof what, "%s", err->msg);
    struct stat st;
    format_bytes(need, need_s, sizeof need_s);
    format_bytes(stat(tmp, &st) == 0 ? (uint64_t)st.st_size : 0, got_s, sizeof got_s);
    vb_err_set(err, "%s: the output needs about %s (the temporary file had reached %s)", what,
               need_s, got_s);
}

/* Creates tmp, writes everything and closes it; on failure err names what
 * failed. */
static int write_file(const char *tmp, const vb_output_meta *meta, const vb_results *r,
                      const os_error *oe, vb_err *err)
{
    hid_t fapl = h5_fapl_unlocked(); /* tmp is this run's alone (h5_util.h) */
    hid_t f = fapl < 0 ? -1 : H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    h5_close(fapl);
    if (f < 0)
        return vb_err_set(err, "%s: cannot create", tmp);
    int rc = write_body(f, meta, r, err);
    if (rc < 0)
        vb_err_prefix(err, "%s", tmp);
    if (H5Fclose(f) < 0 && rc == 0)
        rc = vb_err_set(err, "%s: close failed", tmp);
    /* an OS error behind a call whose status nobody reads (a close in a
     * helper) is a failed write all the same */
    if (rc == 0 && oe->msg[0])
        rc = vb_err_set(err, "%s: write failed", tmp);
    if (rc < 0)
        skip_hdf5_exit_handler();
    return rc;
}

int vb_output_write(const char *path, const vb_output_meta *meta, const vb_results *r,
                    vb_err *err)
{
    h5_quiet();
    size_t len = strlen(path) + 5;
    char *tmp = malloc(len);
    if (!tmp)
        return vb_err_set(err, "%s: out of memory", path);
    snprintf(tmp, len, "%s.tmp", path);
    int rc = -1;
    /* this call's HDF5 failures keep the OS reason; the caller's handler
     * (h5_quiet: none) comes back after */
    H5E_auto2_t old_fn = NULL;
    void *old_data = NULL;
    os_error oe = {{0}};
    bool swapped = H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data) >= 0 &&
                   H5Eset_auto2(H5E_DEFAULT, on_h5_error, &oe) >= 0;
    rc = write_file(tmp, meta, r, &oe, err);
    if (swapped && H5Eset_auto2(H5E_DEFAULT, old_fn, old_data) < 0 && rc == 0)
        rc = vb_err_set(err, "%s: cannot restore the HDF5 error handler", tmp);
    if (rc == 0)
        rc = vb_fsync_path(tmp, err); /* the old file or the new one after a crash */
    if (rc < 0)
        explain_write_failure(err, tmp, &oe, output_bytes_estimate(r));
    if (rc == 0 && rename(tmp, path) != 0)
        rc = vb_err_set(err, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
    if (rc < 0 && unlink(tmp) != 0 && errno != ENOENT) {
        int e = errno;
        char what[VB_ERR_LEN];
        snprintf(what, sizeof what, "%s", err->msg);
        vb_err_set(err, "%s; %s cannot be removed either: %s", what, tmp, strerror(e));
    }
    free(tmp);
    return rc;
}

/* ---- reading back (resume, unpack) -------------------------------------- */

/* Rows are read in blocks of this many, each handed on before the next is
 * read: HDF5's buffers hold one block beside the rows already taken, not
 * the whole file (reading every column at once held the rows twice, HDF5's
 * columns and the results: 1.3 GB for a --resume of 600 MB of rows). */
enum { READ_BLOCK = 8192 };

static int64_t dataset_len(hid_t f, const char *name)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0)
        return -1;
    hid_t s = H5Dget_space(d);
    hsize_t dim = 0;
    int rank = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
    if (rank == 1 && H5Sget_simple_extent_dims(s, &dim, NULL) < 0)
        rank = -1;
    h5_close(s);
    h5_close(d);
    return rank == 1 ? (int64_t)dim : -1;
}

static int64_t attr_int(hid_t f, const char *name, int64_t fallback)
{
    if (H5Aexists(f, name) <= 0)
        return fallback;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    int64_t v = fallback;
    if (a < 0 || H5Aread(a, H5T_NATIVE_INT64, &v) < 0)
        v = fallback;
    h5_close(a);
    return v;
}

/* An output file open for reading and what its columns are. */
typedef struct out_reader {
    const char *path;
    hid_t f;
    size_t n; /* rows stored: the length of /index */
    bool has_sample, has_lp, has_top;
    vb_id_kind id_kind;
    hid_t t_oid, t_lp, t_tid, t_tlp; /* vlen memory types (-1: column absent) */
} out_reader;

/* One block's columns; `rows` are their places in the file (for errors). */
typedef struct out_block {
    size_t m;
    int64_t rows[READ_BLOCK], idx[READ_BLOCK], idi[READ_BLOCK];
    int32_t pt[READ_BLOCK], ct[READ_BLOCK], smp[READ_BLOCK];
    int8_t fin[READ_BLOCK];
    char *comp[READ_BLOCK], *errs[READ_BLOCK], *ids[READ_BLOCK];
    size_t clen[READ_BLOCK];
    hvl_t oid[READ_BLOCK], lp[READ_BLOCK], tid[READ_BLOCK], tlp[READ_BLOCK];
} out_block;

/* Opens path and finds /index (rd->f < 0 when it fails; close with
 * reader_close). */
static int reader_open(const char *path, out_reader *rd, vb_err *err)
{
    h5_quiet();
    *rd = (out_reader){.path = path, .f = -1, .t_oid = -1, .t_lp = -1, .t_tid = -1,
                       .t_tlp = -1};
    if (H5Fis_hdf5(path) <= 0)
        return vb_err_set(err, "%s: not an HDF5 file (or not readable)", path);
    rd->f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (rd->f < 0)
        return h5_open_failed(path, err);
    int64_t n = dataset_len(rd->f, "index");
    if (n < 0)
        return vb_err_set(err, "%s: no 1-D /index dataset (not a voltbatch output file?)", path);
    rd->n = (size_t)n;
    return 0;
}

static int reader_close(out_reader *rd, int rc, vb_err *err)
{
    h5_close(rd->t_oid);
    h5_close(rd->t_lp);
    h5_close(rd->t_tid);
    h5_close(rd->t_tlp);
    if (rd->f >= 0 && H5Fclose(rd->f) < 0 && rc == 0)
        rc = vb_err_set(err, "%s: close failed", rd->path);
    rd->f = -1;
    return rc;
}

static int check_len(const out_reader *rd, const char *name, vb_err *err)
{
    if (dataset_len(rd->f, name) != (int64_t)rd->n)
        return vb_err_set(err, "%s: /%s is missing or not %zu long like /index", rd->path, name,
                          rd->n);
    return 0;
}

/* The id column's kind: strings, int64, or uint64 (an input's unsigned
 * ids). */
static vb_id_kind id_kind_of(hid_t f)
{
    if (!h5_exists(f, "id"))
        return VB_ID_NONE;
    hid_t d = H5Dopen2(f, "id", H5P_DEFAULT);
    hid_t t = d >= 0 ? H5Dget_type(d) : -1;
    H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    const bool u64 = h5_type_is_uint64(t);
    h5_close(t);
    h5_close(d);
    return cls == H5T_STRING ? VB_ID_STRING : u64 ? VB_ID_UINT : VB_ID_INT;
}

/* Which columns the file has, each as long as /index, before any row is
 * read; and the vlen types they are read in. */
static int reader_columns(out_reader *rd, vb_err *err)
{
    static const char *const always[] = {"completions",   "error",          "output_ids",
                                         "prompt_tokens", "completion_tokens", "finish_reason"};
    for (size_t k = 0; k < sizeof always / sizeof *always; k++)
        if (check_len(rd, always[k], err) < 0)
            return -1;
    rd->has_sample = h5_exists(rd->f, "sample");
    rd->has_lp = h5_exists(rd->f, "logprobs");
    rd->has_top = h5_exists(rd->f, "top_ids");
    rd->id_kind = id_kind_of(rd->f);
    if ((rd->has_sample && check_len(rd, "sample", err) < 0) ||
        (rd->has_lp && check_len(rd, "logprobs", err) < 0) ||
        (rd->has_top && (check_len(rd, "top_ids", err) < 0 ||
                         check_len(rd, "top_logprobs", err) < 0)) ||
        (rd->id_kind != VB_ID_NONE && check_len(rd, "id", err) < 0))
        return -1;
    rd->t_oid = H5Tvlen_create(H5T_NATIVE_INT32);
    if (rd->has_lp)
        rd->t_lp = H5Tvlen_create(H5T_NATIVE_FLOAT);
    if (rd->has_top) {
        rd->t_tid = H5Tvlen_create(H5T_NATIVE_INT32);
        rd->t_tlp = H5Tvlen_create(H5T_NATIVE_FLOAT);
    }
    if (rd->t_oid < 0 || (rd->has_lp && rd->t_lp < 0) ||
        (rd->has_top && (rd->t_tid < 0 || rd->t_tlp < 0)))
        return vb_err_set(err, "%s: cannot make the vlen types", rd->path);
    return 0;
}

/* Rows [start, start + m) of the 1-D dataset `name` into buf, in memory
 * type mtype (m > 0). */
static int read_slice(const out_reader *rd, const char *name, hid_t mtype, size_t start,
                      size_t m, void *buf, vb_err *err)
{
    hsize_t at = start, count = m;
    hid_t d = H5Dopen2(rd->f, name, H5P_DEFAULT);
    hid_t fs = d >= 0 ? H5Dget_space(d) : -1;
    hid_t ms = fs >= 0 ? H5Screate_simple(1, &count, NULL) : -1;
    int rc = 0;
    if (ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, &at, NULL, &count, NULL) < 0 ||
        H5Dread(d, mtype, ms, fs, H5P_DEFAULT, buf) < 0)
        rc = vb_err_set(err, "%s: /%s: read failed (wrong type?)", rd->path, name);
    h5_close(ms);
    h5_close(fs);
    h5_close(d);
    return rc;
}

/* The block's rows of a string column (lens: the completions' lengths, which
 * may count NUL characters; NULL for plain strings). */
static int read_text_slice(const out_reader *rd, const char *name, const out_block *b,
                           char **out, size_t *lens, vb_err *err)
{
    hid_t d = H5Dopen2(rd->f, name, H5P_DEFAULT);
    if (d < 0)
        return vb_err_set(err, "%s: /%s: cannot open", rd->path, name);
    char what[64];
    snprintf(what, sizeof what, "/%s", name);
    int rc = lens ? h5_read_texts(d, b->rows, b->m, out, lens, what, err)
                  : h5_read_strings(d, b->rows, b->m, out, what, err);
    H5Dclose(d);
    if (rc < 0)
        vb_err_prefix(err, "%s", rd->path);
    return rc;
}

/* Frees what a block's read allocated (also after a read that failed
 * halfway), leaving it empty. */
static void block_release(const out_reader *rd, out_block *b)
{
    hsize_t dim = b->m;
    hid_t s = b->m ? H5Screate_simple(1, &dim, NULL) : -1;
    const hid_t types[] = {rd->t_oid, rd->t_lp, rd->t_tid, rd->t_tlp};
    hvl_t *const cols[] = {b->oid, b->lp, b->tid, b->tlp};
    for (int k = 0; k < 4 && s >= 0; k++)
        if (types[k] >= 0)
            h5_reclaim(types[k], s, cols[k]);
    h5_close(s);
    for (size_t i = 0; i < b->m; i++) {
        free(b->comp[i]);
        free(b->errs[i]);
        free(b->ids[i]);
    }
    memset(b->comp, 0, sizeof b->comp);
    memset(b->errs, 0, sizeof b->errs);
    memset(b->ids, 0, sizeof b->ids);
    memset(b->oid, 0, sizeof b->oid);
    memset(b->lp, 0, sizeof b->lp);
    memset(b->tid, 0, sizeof b->tid);
    memset(b->tlp, 0, sizeof b->tlp);
    b->m = 0;
}

/* Rows [start, start + m) of /index and /sample (0 without one). */
static int read_keys(const out_reader *rd, out_block *b, size_t start, size_t m, vb_err *err)
{
    if (read_slice(rd, "index", H5T_NATIVE_INT64, start, m, b->idx, err) < 0)
        return -1;
    if (rd->has_sample)
        return read_slice(rd, "sample", H5T_NATIVE_INT32, start, m, b->smp, err);
    memset(b->smp, 0, m * sizeof *b->smp);
    return 0;
}

/* Every column's rows [start, start + m) into b (block_release frees them,
 * also after a failure). */
static int read_block(const out_reader *rd, out_block *b, size_t start, size_t m, vb_err *err)
{
    b->m = m;
    for (size_t i = 0; i < m; i++)
        b->rows[i] = (int64_t)(start + i);
    if (read_keys(rd, b, start, m, err) < 0 ||
        read_text_slice(rd, "completions", b, b->comp, b->clen, err) < 0 ||
        read_text_slice(rd, "error", b, b->errs, NULL, err) < 0 ||
        read_slice(rd, "output_ids", rd->t_oid, start, m, b->oid, err) < 0 ||
        read_slice(rd, "prompt_tokens", H5T_NATIVE_INT32, start, m, b->pt, err) < 0 ||
        read_slice(rd, "completion_tokens", H5T_NATIVE_INT32, start, m, b->ct, err) < 0 ||
        read_slice(rd, "finish_reason", H5T_NATIVE_INT8, start, m, b->fin, err) < 0)
        return -1;
    if (rd->has_lp && read_slice(rd, "logprobs", rd->t_lp, start, m, b->lp, err) < 0)
        return -1;
    if (rd->has_top && (read_slice(rd, "top_ids", rd->t_tid, start, m, b->tid, err) < 0 ||
                        read_slice(rd, "top_logprobs", rd->t_tlp, start, m, b->tlp, err) < 0))
        return -1;
    if (rd->id_kind == VB_ID_STRING)
        return read_text_slice(rd, "id", b, b->ids, NULL, err);
    if (rd->id_kind == VB_ID_INT || rd->id_kind == VB_ID_UINT) /* id_int holds the bits */
        return read_slice(rd, "id", rd->id_kind == VB_ID_UINT ? H5T_NATIVE_UINT64
                                                              : H5T_NATIVE_INT64,
                          start, m, b->idi, err);
    memset(b->idi, 0, m * sizeof *b->idi);
    return 0;
}

/* The file's shape from its attributes, or where absent from the largest
 * index and sample stored; and whether the keys ascend (a pass over /index
 * and /sample alone, a block at a time). */
static int reader_shape(const out_reader *rd, out_block *b, vb_output_shape *shape, vb_err *err)
{
    int64_t max_index = -1, prev_index = -1;
    int32_t max_sample = 0, prev_sample = 0;
    bool ascending = true;
    for (size_t start = 0; start < rd->n; start += READ_BLOCK) {
        size_t m = rd->n - start < READ_BLOCK ? rd->n - start : READ_BLOCK;
        if (read_keys(rd, b, start, m, err) < 0)
            return -1;
        for (size_t i = 0; i < m; i++) {
            int64_t x = b->idx[i];
            int32_t s = b->smp[i];
            max_index = x > max_index ? x : max_index;
            max_sample = s > max_sample ? s : max_sample;
            ascending = ascending && x >= 0 && s >= 0 &&
                        (x > prev_index || (x == prev_index && s > prev_sample));
            prev_index = x;
            prev_sample = s;
        }
    }
    int64_t rows = attr_int(rd->f, "input_rows", max_index + 1);
    int64_t ns = attr_int(rd->f, "n", max_sample + 1);
    *shape = (vb_output_shape){
        .rows = rows < max_index + 1 ? max_index + 1 : rows,
        .n_samples = (int32_t)(ns < max_sample + 1 ? max_sample + 1 : ns),
        .top_n = (int32_t)attr_int(rd->f, "top_n", rd->has_top ? 1 : rd->has_lp ? 0 : -1),
        .id_kind = rd->id_kind,
        .stored = (int64_t)rd->n,
        .ascending = ascending,
    };
    return 0;
}

/* Row i of the block as a vb_output_row pointing into it, after checking
 * that its columns agree (top_n: the shape rows are checked against). */
static int block_row(const out_reader *rd, const out_block *b, size_t i, int32_t top_n,
                     vb_output_row *w, vb_err *err)
{
    size_t nt = b->oid[i].len;
    if (b->fin[i] < 0 || b->fin[i] > 2 || (b->lp[i].len && b->lp[i].len != nt) ||
        (top_n > 0 && b->tid[i].len && b->tid[i].len != nt * (size_t)top_n) ||
        (top_n > 0 && b->tlp[i].len != b->tid[i].len))
        return vb_err_set(err, "%s: row %" PRId64 " (index %" PRId64 ") is inconsistent",
                          rd->path, b->rows[i], b->idx[i]);
    *w = (vb_output_row){
        .index = b->idx[i], .sample = b->smp[i], .completion = b->comp[i],
        .completion_len = b->clen[i], .output_ids = b->oid[i].p, .n_output_ids = (int32_t)nt,
        .prompt_tokens = b->pt[i], .completion_tokens = b->ct[i],
        .finish_reason = (vb_finish_reason)b->fin[i], .error = b->errs[i],
        .id = rd->id_kind == VB_ID_STRING ? b->ids[i] : NULL, .id_int = b->idi[i],
        .logprobs = b->lp[i].len ? b->lp[i].p : NULL,
        .top_ids = b->tid[i].len ? b->tid[i].p : NULL,
        .top_logprobs = b->tlp[i].len ? b->tlp[i].p : NULL,
    };
    return 0;
}

/* Hands every row to fn, a block at a time, in the file's order. */
static int reader_rows(const out_reader *rd, out_block *b, int32_t top_n, vb_output_row_fn fn,
                       void *ctx, vb_err *err)
{
    int rc = 0;
    for (size_t start = 0; rc == 0 && start < rd->n; start += READ_BLOCK) {
        size_t m = rd->n - start < READ_BLOCK ? rd->n - start : READ_BLOCK;
        rc = read_block(rd, b, start, m, err);
        for (size_t i = 0; rc == 0 && i < m; i++) {
            vb_output_row w;
            rc = block_row(rd, b, i, top_n, &w, err);
            if (rc == 0)
                rc = fn(&w, ctx, err);
        }
        block_release(rd, b);
    }
    return rc;
}

int vb_output_each(const char *path, vb_output_begin_fn begin, vb_output_row_fn fn, void *ctx,
                   vb_err *err)
{
    out_reader rd;
    out_block *b = NULL;
    int rc = reader_open(path, &rd, err);
    if (rc == 0)
        rc = reader_columns(&rd, err);
    if (rc == 0 && !(b = calloc(1, sizeof *b)))
        rc = vb_err_set(err, "%s: out of memory", path);
    vb_output_shape shape;
    if (rc == 0)
        rc = reader_shape(&rd, b, &shape, err);
    if (rc == 0 && begin)
        rc = begin(&shape, ctx, err);
    if (rc == 0)
        rc = reader_rows(&rd, b, shape.top_n, fn, ctx, err);
    free(b);
    return reader_close(&rd, rc, err);
}

int vb_output_read_settings(const char *path, char **settings_json, vb_err *err)
{
    *settings_json = NULL;
    out_reader rd;
    int rc = reader_open(path, &rd, err);
    if (rc == 0)
        h5_read_attr_string(rd.f, "settings_json", settings_json); /* absent: NULL */
    return reader_close(&rd, rc, err);
}

/* vb_output_read's callbacks: r set up from the file unless the caller
 * did, rows checked against its top_n, each row copied in. */
typedef struct read_ctx {
    vb_results *r;
    const char *path;
} read_ctx;

static int read_begin(vb_output_shape *shape, void *ctx, vb_err *err)
{
    vb_results *r = ((read_ctx *)ctx)->r;
    if (!r->loc && vb_results_init(r, shape->rows, shape->n_samples, shape->top_n,
                                    shape->id_kind, err) < 0)
        return -1;
    shape->top_n = r->top_n;
    return 0;
}

static int read_row(const vb_output_row *row, void *ctx, vb_err *err)
{
    const read_ctx *c = ctx;
    if (vb_results_put(c->r, row, err) < 0)
        return vb_err_prefix(err, "%s", c->path);
    return 0;
}

int vb_output_read(const char *path, vb_results *r, char **settings_json, vb_err *err)
{
    if (settings_json)
        *settings_json = NULL;
    read_ctx c = {r, path};
    if (vb_output_each(path, read_begin, read_row, &c, err) < 0)
        return -1;
    return settings_json ? vb_output_read_settings(path, settings_json, err) : 0;
}

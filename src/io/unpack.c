/* HDF5 (output or input schema) -> JSON Lines; see pack.h. */
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/h5_util.h"
#include "io/input_check.h"
#include "io/input_reader.h"
#include "io/output_writer.h"
#include "io/pack.h"
#include "io/results.h"
#include "util/env.h"
#include "util/log.h"
#include "util/same_file.h"
#include "util/stop_unlink.h"
#include "util/utf8_valid.h"

/* Floats with 9 significant digits: enough to read back the same float32. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(9))

static json_t *int_array(const int32_t *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_integer(v[i]));
    return a;
}

/* An integer (an /id, a /seed) as JSON: a number, or for an unsigned
 * 64-bit one (u64: bits holds it) above 2^63 - 1 its decimal digits as a
 * string (JSON parsers, jansson here included, read integers as signed
 * 64-bit; a string keeps every digit). */
static json_t *int_json(int64_t bits, bool u64)
{
    if (u64 && bits < 0) {
        char digits[24];
        snprintf(digits, sizeof digits, "%" PRIu64, (uint64_t)bits);
        return json_string(digits);
    }
    return json_integer(bits);
}

/* A value that is not finite (-inf, a token of probability 0; NaN) has no
 * JSON form and json_real refuses it: null keeps its place, so each
 * logprob stays beside its token (a NULL was left out of the array). */
static json_t *float_array(const float *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, isfinite(v[i]) ? json_real(v[i]) : json_null());
    return a;
}

static int emit(FILE *fp, json_t *o, const char *path, vb_err *err)
{
    if (!o)
        return vb_err_set(err, "%s: out of memory", path);
    int bad = json_dumpf(o, fp, DUMP_FLAGS) != 0 || fputc('\n', fp) == EOF;
    json_decref(o);
    return bad ? vb_err_set(err, "%s: write failed (disk full?)", path) : 0;
}

/* Sets key to the JSON string of s (NULL: ""). JSON holds only UTF-8:
 * a row that is not is refused, naming it, rather than dropped. */
static int set_text(json_t *o, const char *key, const char *s, size_t len, const char *in,
                    const char *dataset, int64_t row, vb_err *err)
{
    json_t *j = json_stringn(s ? s : "", s ? len : 0); /* NUL characters included */
    if (j)
        return json_object_set_new(o, key, j) == 0 ? 0 : vb_err_set(err, "%s: out of memory", in);
    size_t at = 0;
    if (s && !vb_utf8_valid(s, len, &at))
        return vb_err_set(err, "%s: %s: row %" PRId64 ": not valid UTF-8 (byte %zu), which JSON "
                          "cannot hold", in, dataset, row, at + 1);
    return vb_err_set(err, "%s: out of memory", in);
}

/* What output rows are written with: the file's shape and where. */
typedef struct out_rows {
    FILE *fp;
    const char *in, *out;
    int32_t n_samples, top_n;
    vb_id_kind id_kind;
} out_rows;

/* A stopped run's output holds its finished rows only: said, so that a
 * partial file is not taken for the whole job */
static void warn_incomplete(const char *in, int64_t done, int64_t rows, int32_t n_samples)
{
    size_t slots = (size_t)rows * (size_t)n_samples;
    if ((size_t)done < slots)
        vb_warn("%s is incomplete: %" PRId64 " of %zu rows%s done (the run was stopped; "
                "generate --resume completes it); unpacking those", in, done, slots,
                n_samples > 1 ? " and samples" : "");
}

/* The id, completion and error of row w into o (text that is no UTF-8:
 * refused, naming the row). */
static int set_row_texts(json_t *o, const out_rows *c, const vb_output_row *w, vb_err *err)
{
    if (c->id_kind == VB_ID_STRING) {
        json_t *id = json_string(w->id ? w->id : "");
        if (!id) /* not UTF-8: written by an older voltbatch, or not by one */
            return vb_err_set(err, "%s: row %lld: /id is not valid UTF-8", c->in,
                              (long long)w->index);
        json_object_set_new(o, "id", id);
    } else if (c->id_kind == VB_ID_INT || c->id_kind == VB_ID_UINT)
        json_object_set_new(o, "id", int_json(w->id_int, c->id_kind == VB_ID_UINT));
    /* text another writer put there may not be UTF-8: refused, naming
     * the row (json_stringn's NULL left the key out without a word) */
    if (set_text(o, "completion", w->completion, vb_output_row_completion_len(w), c->in,
                 "/completions", w->index, err) < 0 ||
        json_object_set_new(o, "finish_reason",
                            json_string(vb_finish_reason_name(w->finish_reason))) < 0 ||
        set_text(o, "error", w->error, w->error ? strlen(w->error) : 0, c->in, "/error",
                 w->index, err) < 0)
        return -1;
    return 0;
}

/* One output row as a JSON line. */
static int emit_output_row(const out_rows *c, const vb_output_row *w, vb_err *err)
{
    size_t nt = (size_t)w->n_output_ids;
    json_t *o = json_object();
    json_object_set_new(o, "index", json_integer(w->index));
    if (c->n_samples > 1)
        json_object_set_new(o, "sample", json_integer(w->sample));
    if (set_row_texts(o, c, w, err) < 0) {
        json_decref(o);
        return -1;
    }
    json_object_set_new(o, "prompt_tokens", json_integer(w->prompt_tokens));
    json_object_set_new(o, "completion_tokens", json_integer(w->completion_tokens));
    json_object_set_new(o, "output_ids", int_array(w->output_ids, nt));
    if (c->top_n >= 0)
        json_object_set_new(o, "logprobs", w->logprobs ? float_array(w->logprobs, nt)
                                                       : json_array());
    if (c->top_n > 0) {
        /* n_tokens arrays of top_n, as the HDF5 rows are row-major. */
        json_t *ti = json_array(), *tl = json_array();
        for (size_t t = 0; w->top_ids && t < nt; t++) {
            json_array_append_new(ti, int_array(w->top_ids + t * c->top_n, (size_t)c->top_n));
            json_array_append_new(tl, float_array(w->top_logprobs + t * c->top_n,
                                                  (size_t)c->top_n));
        }
        json_object_set_new(o, "top_ids", ti);
        json_object_set_new(o, "top_logprobs", tl);
    }
    return emit(c->fp, o, c->out, err);
}

/* The file as vb_output_write leaves it (keys ascending, each once):
 * each row written as it is read, a block at a time, never all in memory.
 * Any other order: 1, for unpack_sorted. */
static int stream_begin(vb_output_shape *shape, void *ctx, vb_err *err)
{
    (void)err;
    out_rows *c = ctx;
    if (!shape->ascending)
        return 1;
    c->n_samples = shape->n_samples;
    c->top_n = shape->top_n;
    c->id_kind = shape->id_kind;
    warn_incomplete(c->in, shape->stored, shape->rows, shape->n_samples);
    return 0;
}

static int stream_row(const vb_output_row *w, void *ctx, vb_err *err)
{
    return emit_output_row(ctx, w, err);
}

/* Another writer's file, rows in any order or twice: read whole into a
 * results, which sorts them by (index, sample) and keeps a key's last. */
static int unpack_sorted(out_rows *c, vb_err *err)
{
    vb_results r = {0};
    if (vb_output_read(c->in, &r, NULL, err) < 0) {
        vb_results_free(&r);
        return -1;
    }
    c->n_samples = r.n_samples;
    c->top_n = r.top_n;
    c->id_kind = r.id_kind;
    warn_incomplete(c->in, r.n_done, r.n_rows, r.n_samples);
    int rc = 0;
    size_t slots = (size_t)r.n_rows * (size_t)r.n_samples;
    for (size_t i = 0; i < slots && rc == 0; i++)
        if (r.slot && r.slot[i]) /* vb_output_read holds each row (no journal) */
            rc = emit_output_row(c, r.slot[i], err);
    vb_results_free(&r);
    return rc;
}

static int unpack_output(const char *in, FILE *fp, const char *out, vb_err *err)
{
    out_rows c = {.fp = fp, .in = in, .out = out};
    int rc = vb_output_each(in, stream_begin, stream_row, &c, err);
    return rc > 0 ? unpack_sorted(&c, err) : rc;
}

/* One input row as pack's JSON object, or NULL with err set. */
static json_t *input_row_json(const vb_input *inp, const vb_input_row *r, const char *in,
                              vb_err *err)
{
    static const char *const dataset[] = {"/prompts", "/input_ids", "/messages"};
    json_t *o = json_object();
    int rc = o ? 0 : vb_err_set(err, "%s: out of memory", in);
    if (rc == 0 && inp->kind == VB_PROMPT_TEXT) {
        rc = set_text(o, "prompt", r->text, r->text_len, in, dataset[inp->kind], r->index, err);
    } else if (rc == 0 && inp->kind == VB_PROMPT_MESSAGES) {
        json_error_t je;
        json_t *m = json_loadb(r->text, r->text_len, JSON_ALLOW_NUL, &je);
        if (!m)
            rc = set_text(o, "messages", r->text, r->text_len, in, dataset[inp->kind], r->index, err);
        else if (json_object_set_new(o, "messages", m) != 0)
            rc = vb_err_set(err, "%s: out of memory", in);
    } else if (rc == 0 && r->ids_out_of_range) { /* never written other than it is */
        rc = vb_err_set(err, "%s: /input_ids: row %" PRId64 ": a token id outside 0..2^31 - 1, "
                        "which no vocabulary has (pack's format holds int32 ids)", in, r->index);
    } else if (rc == 0) {
        json_object_set_new(o, "input_ids", int_array(r->ids, (size_t)r->n_ids));
    }
    if (rc == 0 && inp->id_kind == VB_ID_STRING && r->id && r->id[0])
        rc = set_text(o, "id", r->id, r->id ? strlen(r->id) : 0, in, "/id", r->index, err);
    else if (rc == 0 && (inp->id_kind == VB_ID_INT || inp->id_kind == VB_ID_UINT))
        json_object_set_new(o, "id", int_json(r->id_int, inp->id_kind == VB_ID_UINT));
    if (rc == 0 && r->system && r->system[0])
        rc = set_text(o, "system", r->system, r->system ? strlen(r->system) : 0, in, "/system", r->index,
                      err);
    if (rc == 0 && r->max_new_tokens != -1)
        json_object_set_new(o, "max_new_tokens", json_integer(r->max_new_tokens));
    if (rc == 0 && (r->seed_u64 || r->seed != -1))
        json_object_set_new(o, "seed", int_json(r->seed, r->seed_u64));
    if (rc < 0 && o) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

static int unpack_input(const char *in, FILE *fp, const char *out, vb_err *err)
{
    vb_input inp;
    const char *specs[1] = {in};
    if (vb_input_open(&inp, specs, 1, err) < 0) {
        vb_input_close(&inp);
        return -1;
    }
    if (inp.unread[0]) /* a column the JSON Lines leave out (io/input_reader.h) */
        vb_warn("%s is not a dataset unpack writes (" VB_INPUT_DATASETS "): left out of %s; "
                "later such datasets are not reported", inp.unread, out);
    enum { BLOCK = 8192 };
    int64_t *rows = malloc(BLOCK * sizeof *rows);
    vb_input_row *r = malloc(BLOCK * sizeof *r);
    int rc = rows && r ? 0 : vb_err_set(err, "%s: out of memory", in);
    for (int64_t b = 0; rc == 0 && b < inp.n_rows; b += BLOCK) {
        int64_t m = inp.n_rows - b < BLOCK ? inp.n_rows - b : BLOCK;
        for (int64_t i = 0; i < m; i++)
            rows[i] = b + i;
        if ((rc = vb_input_read_rows(&inp, rows, m, r, err)) < 0)
            break;
        for (int64_t i = 0; i < m && rc == 0; i++) {
            json_t *o = input_row_json(&inp, &r[i], in, err);
            rc = o ? emit(fp, o, out, err) : -1;
        }
        vb_input_rows_free(r, m);
    }
    free(rows);
    free(r);
    vb_input_close(&inp);
    return rc;
}

int vb_unpack(const char *in_path, const char *out_path, vb_err *err)
{
    h5_quiet();
    struct stat st; /* HDF5 would block opening a FIFO */
    if (stat(in_path, &st) == 0 && !S_ISREG(st.st_mode))
        return vb_err_set(err, "%s: not a regular file (an HDF5 file is)", in_path);
    if (H5Fis_hdf5(in_path) <= 0)
        return vb_err_set(err, "%s: not an HDF5 file (or not readable)", in_path);
    /* An input file is read once in a child process first, so that one
     * that crashes the HDF5 library is an error naming it (input_check.h);
     * the child also tells an output file (it holds /completions). */
    vb_tuning t;
    bool is_output = false;
    if (vb_tuning_from_env(&t, err) < 0 ||
        vb_input_check_isolated(&in_path, 1, true, t.input_check_timeout, &is_output, err) < 0)
        return -1;

    size_t tl = strlen(out_path) + 5;
    char *tmp = malloc(tl);
    if (!tmp)
        return vb_err_set(err, "%s: out of memory", out_path);
    snprintf(tmp, tl, "%s.tmp", out_path);
    /* exclusively, after removing what --overwrite allowed to be there:
     * never through a symlink at tmp into the file it points to */
    int fd = -1;
    if (vb_remove_if_there(tmp, err) == 0) {
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0)
            vb_err_set(err, "%s: cannot create: %s", tmp, strerror(errno));
    }
    FILE *fp = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!fp) {
        if (fd >= 0) {
            vb_err_set(err, "%s: cannot open for writing: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
        }
        free(tmp);
        return -1;
    }
    /* rows are written as they are read: a stop signal meanwhile removes
     * OUT.tmp, which left there made the next unpack refuse to start
     * without --overwrite */
    vb_stop_unlink guard = {0};
    vb_stop_unlink_install(&guard, tmp);
    int rc = is_output ? unpack_output(in_path, fp, out_path, err)
                       : unpack_input(in_path, fp, out_path, err);
    /* synced before the rename: with --overwrite, a crash must not leave
     * OUT empty (util/writable.h) */
    if (rc == 0 && (fflush(fp) != 0 || fsync(fileno(fp)) != 0))
        rc = vb_err_set(err, "%s: write failed (disk full?): %s", tmp, strerror(errno));
    if (fclose(fp) != 0 && rc == 0)
        rc = vb_err_set(err, "%s: write failed (disk full?)", tmp);
    if (rc == 0 && rename(tmp, out_path) != 0)
        rc = vb_err_set(err, "%s: cannot rename to %s", tmp, out_path);
    if (rc < 0)
        unlink(tmp);
    vb_stop_unlink_remove(&guard); /* tmp is gone or renamed: nothing to remove */
    free(tmp);
    return rc;
}

/* Refuse / overwrite / resume an output at start-up; see resume.h. */
#include "io/resume.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/run_settings.h"
#include "util/same_file.h"
#include "util/writable.h"

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* Appends "; what" to err's message: how to go on without losing the rows
 * another file holds (--overwrite would discard them too). */
static void advise(vb_err *err, const char *fmt, const char *a, const char *b)
{
    size_t n = strlen(err->msg);
    if (n + 2 < sizeof err->msg) {
        snprintf(err->msg + n, sizeof err->msg - n, "; ");
        snprintf(err->msg + n + 2, sizeof err->msg - n - 2, fmt, a, b);
    }
}

/* What a run writes or removes for `output` (see vb_output_check_inputs)
 * against one file it reads. */
static int check_input(const char *input, const char *output, const char *jpath,
                       const char *tmp, const char *report, vb_err *err)
{
    if (vb_refuse_same_file(input, output, "the output", err) < 0 ||
        vb_refuse_same_file(input, jpath, "the output's journal", err) < 0 ||
        vb_refuse_same_file(input, tmp, "the output's temporary file", err) < 0)
        return -1;
    return report ? vb_refuse_same_file(input, report, "the report", err) : 0;
}

/* Every entry of the model directory (a Hugging Face cache's snapshot
 * holds symlinks to its blobs: stat follows them). A directory that
 * cannot be listed is left to the model loader's own errors. */
static int check_model_dir(const char *dir, const char *output, const char *jpath,
                           const char *tmp, const char *report, vb_err *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        const size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *path = malloc(len);
        if (!path) {
            rc = vb_err_set(err, "%s: out of memory", dir);
            break;
        }
        snprintf(path, len, "%s/%s", dir, e->d_name);
        rc = check_input(path, output, jpath, tmp, report, err);
        free(path);
    }
    closedir(d);
    return rc;
}

int vb_output_check_inputs(const char *output, const char *report, const vb_input *in,
                           const char *model_dir, const char *extra, vb_err *err)
{
    char *jpath = vb_journal_path_for(output);
    size_t tl = strlen(output) + sizeof ".tmp";
    char *tmp = malloc(tl);
    int rc = 0;
    if (!jpath || !tmp)
        rc = vb_err_set(err, "%s: out of memory", output);
    else
        snprintf(tmp, tl, "%s.tmp", output);
    /* an empty name would be found only at the end, when the output is
     * renamed to it after every row was computed */
    if (rc == 0 && !*output)
        rc = vb_err_set(err, "the output path is empty");
    if (rc == 0 && report && !*report)
        rc = vb_err_set(err, "the report path is empty");
    /* the report is written last, over whatever has its name: never one
     * of the files that hold the run's rows */
    if (rc == 0 && report &&
        (vb_same_path(report, output) || vb_same_path(report, jpath) || vb_same_path(report, tmp)))
        rc = vb_err_set(err, "the report %s is the output %s or its journal or temporary file: "
                        "writing it would destroy the completions (choose another name)",
                        report, output);
    /* what is written at the end, checked now: not after the run */
    if (rc == 0)
        rc = vb_refuse_no_directory(output, "the output", err);
    if (rc == 0 && report)
        rc = vb_refuse_unwritable(report, "the report", err);
    for (int i = 0; rc == 0 && i < in->n_shards; i++)
        rc = check_input(in->shards[i].path, output, jpath, tmp, report, err);
    /* An output inside an input directory or matching an input glob is no
     * shard yet, but a --resume would read it (or its journal) as one and
     * refuse every retry: refused now, before any work. */
    const char *const mine[] = {output, jpath, tmp};
    for (int i = 0; rc == 0 && i < in->n_specs; i++)
        for (int k = 0; rc == 0 && k < 3; k++)
            if (vb_input_spec_takes(in->specs[i], mine[k]))
                rc = vb_err_set(err, "the output %s%s would be read as an input by a --resume: "
                                "it %s the --input %s (write the output elsewhere)",
                                output, k == 1 ? "'s journal" : k == 2 ? "'s temporary file" : "",
                                strpbrk(in->specs[i], "*?[") ? "matches" : "lies in",
                                in->specs[i]);
    if (rc == 0 && model_dir)
        rc = check_model_dir(model_dir, output, jpath, tmp, report, err);
    if (rc == 0 && extra)
        rc = check_input(extra, output, jpath, tmp, report, err);
    /* after the same-file checks: a link to an input is said to be one */
    if (rc == 0)
        rc = vb_refuse_special_output(output, "the output", err);
    free(jpath);
    free(tmp);
    return rc;
}

/* The old output's settings against this run's (a mismatch is reported as
 * the setting that differs, not as a row outside the run). */
static int check_output_settings(const char *output, const json_t *settings, bool *unreadable,
                                 vb_err *err)
{
    char *text = NULL;
    *unreadable = vb_output_read_settings(output, &text, err) < 0;
    json_error_t je;
    json_t *saved = text ? json_loads(text, 0, &je) : NULL;
    free(text);
    int rc = *unreadable ? -1 : 0;
    if (rc == 0 && !saved)
        rc = vb_err_set(err, "%s: has no settings_json attribute, so it cannot be "
                        "resumed safely (--overwrite starts over)", output);
    if (rc == 0)
        rc = vb_run_settings_compare(saved, settings, output, err);
    json_decref(saved);
    return rc;
}

/* The old output's rows that the journal does not hold, copied into it
 * (appended, then located in done like the journal's own), a block at a
 * time as vb_output_each reads them. Copied rather than read again from
 * the old output at the end: then every row of the run is in one place,
 * the journal, from which the output is written (and a stopped run's next
 * --resume finds them there too); and in the usual case (a stopped run
 * resumed: its journal holds every row its output does) nothing is
 * copied. The journal's copy of a row wins (it is the newer, and identical
 * by construction); within the old output a key's last row, as before.
 * `journal_end`: the journal's length before these copies. */
typedef struct copy_ctx {
    vb_results *done;
    vb_journal *journal;
    int64_t journal_end;
    const char *path;
} copy_ctx;

static int copy_begin(vb_output_shape *shape, void *ctx, vb_err *err)
{
    (void)err;
    shape->top_n = ((copy_ctx *)ctx)->done->top_n; /* rows are checked against the run's */
    return 0;
}

static int copy_row(const vb_output_row *row, void *ctx, vb_err *err)
{
    copy_ctx *c = ctx;
    if (row->index < 0 || row->index >= c->done->n_rows || row->sample < 0 ||
        row->sample >= c->done->n_samples) /* refused (its message), never journaled */
        return vb_results_put(c->done, row, err) < 0 ? vb_err_prefix(err, "%s", c->path) : 0;
    int64_t had = c->done->loc[row->index * c->done->n_samples + row->sample].at;
    if (had > 0 && had < c->journal_end)
        return 0; /* the journal's own */
    int64_t at = -1;
    if (vb_journal_append_at(c->journal, row, c->done->top_n, &at, err) < 0 ||
        vb_results_put_at(c->done, row, at, err) < 0)
        return vb_err_prefix(err, "%s", c->path);
    return 0;
}

static int resume_output_rows(const char *output, const char *jpath, int64_t journal_end,
                              vb_results *done, vb_journal *journal, vb_err *err)
{
    copy_ctx c = {done, journal, journal_end, output};
    int rc = vb_output_each(output, copy_begin, copy_row, &c, err);
    if (rc == 0)
        rc = vb_journal_flush(journal, err);
    if (rc < 0 && jpath && !vb_journal_failure(journal))
        advise(err, "to keep the rows of %s, move %s aside and --resume again (the rows "
               "only it held are computed again; --overwrite discards both)", jpath, output);
    return rc < 0 ? -1 : 0;
}

int vb_output_prepare(const char *output, const json_t *settings, bool resume, bool overwrite,
                      int32_t top_n, vb_id_kind id_kind, vb_results *done,
                      vb_journal **journal, vb_err *err)
{
    *journal = NULL;
    memset(done, 0, sizeof *done);
    if (resume && overwrite)
        return vb_err_set(err, "--resume and --overwrite exclude each other (pick one)");
    char *jpath = vb_journal_path_for(output);
    size_t tl = strlen(output) + 5;
    char *tmp = malloc(tl);
    if (!jpath || !tmp) {
        free(jpath);
        free(tmp);
        return vb_err_set(err, "%s: out of memory", output);
    }
    snprintf(tmp, tl, "%s.tmp", output);
    int rc = -1;
    json_t *saved = NULL;
    int64_t rows = json_integer_value(json_object_get(settings, "input_rows"));
    json_int_t n = json_integer_value(json_object_get(settings, "n"));
    if (vb_results_init(done, rows, n > 0 ? (int32_t)n : 1, top_n, id_kind, err) < 0)
        goto out;
    /* Another run writing this output now (its journal locked): refused
     * before anything here is read, removed or truncated. */
    if (vb_journal_check_unlocked(jpath, err) < 0)
        goto out;
    bool have_out = exists(output), have_j = exists(jpath);
    if (!resume && !overwrite && (have_out || have_j)) {
        vb_err_set(err, "%s: already exists (--resume continues it, --overwrite replaces it)",
                   have_out ? output : jpath);
        goto out;
    }
    /* The output is written to OUTPUT.tmp and renamed. A run leaves one
     * behind only when stopped while writing, and then its journal too;
     * with neither, a file by that name is someone's, not ours to remove
     * (--resume of nothing included). */
    if ((!resume || (!have_out && !have_j)) && !overwrite && vb_refuse_existing_temp(tmp, err) < 0)
        goto out;
    if (overwrite || !resume) {
        /* --overwrite keeps the old output for now: a start-up that fails
         * after this (a KV cache the settings cannot fit: exit 2, "nothing
         * was started") must not leave the user with neither file. The
         * run removes it when its loop starts (vb_output_drop_replaced);
         * until then its rows are not read: this run starts over. */
        if (vb_remove_if_there(jpath, err) < 0 || vb_remove_if_there(tmp, err) < 0)
            goto out;
        rc = vb_journal_create(jpath, settings, journal, err);
        if (rc == 0)
            done->store = vb_journal_store(*journal);
        goto out;
    }
    /* --resume: every setting compared (the old output's first, then the
     * journal's header) before any row is read, so a mismatch names the
     * setting; then the journal's rows, then the old output's that the
     * journal lacks (resume_output_rows). */
    bool unreadable = false;
    if (have_out && check_output_settings(output, settings, &unreadable, err) < 0) {
        if (unreadable && have_j)
            advise(err, "to keep the rows of %s, move %s aside and --resume again (the rows "
                   "only it held are computed again; --overwrite discards both)", jpath, output);
        goto out;
    }
    int64_t good = 0;
    if (have_j) {
        /* Header first (rows not decoded), so a mismatch names the setting. */
        const char *keep = have_out ? "to keep the rows of %s, move %s aside and --resume again "
                                      "(--overwrite discards both)"
                                    : "there is no %s beside it: move %s aside or --overwrite "
                                      "to start over";
        if (vb_journal_read_header(jpath, &saved, err) < 0) {
            advise(err, keep, output, jpath);
            goto out;
        }
        if (saved && vb_run_settings_compare(saved, settings, jpath, err) < 0)
            goto out;
        if (saved && vb_journal_read_located(jpath, done, &good, NULL, err) < 0) {
            advise(err, keep, output, jpath);
            goto out;
        }
    }
    if (have_j && saved)
        rc = vb_journal_open_append(jpath, good, journal, err);
    else /* none, or torn before its header was whole: start it afresh */
        rc = vb_journal_create(jpath, settings, journal, err);
    if (rc == 0)
        done->store = vb_journal_store(*journal);
    if (rc == 0 && have_out) {
        /* a torn-header journal started afresh holds none of its rows */
        int64_t journal_end = have_j && saved ? good : 0;
        rc = resume_output_rows(output, have_j ? jpath : NULL, journal_end, done, *journal, err);
    }
out:
    if (rc < 0) {
        vb_results_free(done);
        vb_journal_close(*journal, NULL); /* its rows stay on disk for the next --resume */
        *journal = NULL;
    }
    json_decref(saved);
    free(jpath);
    free(tmp);
    return rc;
}

int vb_output_drop_replaced(const char *output, vb_err *err)
{
    return vb_remove_if_there(output, err);
}

int vb_output_finish(const char *output, const vb_output_meta *meta, vb_results *done,
                     vb_journal **journal, vb_err *err)
{
    /* A failed journal is read back all the same (what its file took, and
     * its buffer: vb_journal_store), for the output that holds the rows
     * it lost; the caller reports its failure. */
    const bool failed = vb_journal_failure(*journal) != NULL;
    if (*journal && !failed && vb_journal_flush(*journal, err) < 0)
        return -1;
    if (vb_output_write(output, meta, done, err) < 0) {
        /* the journal was just synced: say that nothing is lost */
        if (*journal && !failed) {
            char what[VB_ERR_LEN];
            snprintf(what, sizeof what, "%s", err->msg);
            vb_err_set(err, "%s; every finished row is in %s.journal: make room, then rerun "
                       "with --resume", what, output);
        }
        return -1;
    }
    if (meta->complete) {
        /* Removed while still open, so locked: a run starting meanwhile
         * finds it locked or gone, never an unlocked journal of rows that
         * the output already holds. */
        char *jpath = vb_journal_path_for(output);
        int rc = jpath ? vb_remove_if_there(jpath, err) : vb_err_set(err, "out of memory");
        free(jpath);
        /* a failed journal's close returns its failure, which the caller
         * already has */
        if (vb_journal_close(*journal, rc < 0 || failed ? NULL : err) < 0 && !failed)
            rc = -1;
        *journal = NULL;
        done->store = (vb_row_store){0};
        return rc;
    }
    return 0;
}

/* Start-up policy for the output: refuse an existing output or journal
 * without a flag, --overwrite starts over, --resume collects the journal's
 * and the old output's rows and refuses a changed setting by name; finishing
 * a complete run removes the journal, a stopped one keeps it. This is the
 * sequence the engine runs (resume.h), minus the model. */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "io/resume.h"
#include "io/run_settings.h"
#include "io_test_util.h"
#include "util/signals.h"

static const char *dir;

static bool exists(const char *p)
{
    return access(p, F_OK) == 0;
}

static json_t *settings_with_seed(uint64_t seed)
{
    vb_run_settings s = test_settings();
    s.seed = seed;
    s.input_rows = 30;
    return vb_run_settings_json(&s);
}

/* One "run": finishes rows [from, to) not already done, stopping (as on
 * SIGTERM) after `stop_after` rows; returns how many it computed. */
static int run(const char *out, const json_t *s, bool resume, bool overwrite, int stop_after,
               vb_err *err, int *rc_out)
{
    vb_results done;
    vb_journal *j = NULL;
    *rc_out = vb_output_prepare(out, s, resume, overwrite, -1, VB_ID_STRING, &done, &j, err);
    if (*rc_out < 0)
        return 0;
    vb_signals_reset();
    int computed = 0;
    for (int64_t i = 0; i < done.n_rows && !vb_stop_requested(); i++) {
        if (vb_results_row_done(&done, i))
            continue;
        vb_output_row w = test_row(i, 0, -1);
        CHECK_INT_EQ(vb_journal_append(j, &w, -1, err), 0);
        CHECK_INT_EQ(vb_results_put(&done, &w, err), 0);
        if (++computed == stop_after)
            raise(SIGTERM);
    }
    vb_output_meta meta = {.settings = s, .dp = 1, .version = "t",
                           .complete = done.n_done == done.n_rows};
    *rc_out = vb_output_finish(out, &meta, &done, &j, err);
    vb_journal_close(j, NULL);
    vb_results_free(&done);
    return computed;
}

static void test_policy_and_resume(void)
{
    vb_signals_install();
    const char *out = test_path(dir, "out.h5");
    const char *jp = test_path(dir, "out.h5.journal");
    json_t *s = settings_with_seed(1234), *other = settings_with_seed(99);
    vb_err err = {{0}};
    int rc;
    /* Stopped after 10 rows: partial output and a journal stay. */
    CHECK_INT_EQ(run(out, s, false, false, 10, &err, &rc), 10);
    CHECK_INT_EQ(rc, 0);
    CHECK(exists(out) && exists(jp));
    /* No flag: refused, naming the file and both ways forward. */
    run(out, s, false, false, 0, &err, &rc);
    CHECK_INT_EQ(rc, -1);
    CHECK(strstr(err.msg, "out.h5") && strstr(err.msg, "--resume") &&
          strstr(err.msg, "--overwrite"));
    /* A different seed: refused, naming the setting. */
    run(out, other, true, false, 0, &err, &rc);
    CHECK_INT_EQ(rc, -1);
    fprintf(stderr, "  message: %s\n", err.msg);
    CHECK(strstr(err.msg, "seed was \"1234\", now \"99\"") != NULL);
    /* Resume: 10 more rows, then the rest; nothing recomputed. */
    CHECK_INT_EQ(run(out, s, true, false, 10, &err, &rc), 10);
    CHECK_INT_EQ(rc, 0);
    /* The journal alone (output lost) still resumes. */
    CHECK(unlink(out) == 0);
    CHECK_INT_EQ(run(out, s, true, false, 0, &err, &rc), 10);
    CHECK_INT_EQ(rc, 0);
    CHECK(exists(out));
    CHECK(!exists(jp)); /* complete: the output holds every row */
    vb_results back = {0};
    CHECK_INT_EQ(vb_output_read(out, &back, NULL, &err), 0);
    CHECK_INT_EQ(back.n_done, 30);
    int bad = 0;
    for (int64_t i = 0; i < 30; i++) {
        vb_output_row w = test_row(i, 0, -1);
        bad += !test_rows_equal(back.slot[i], &w, -1);
    }
    CHECK_INT_EQ(bad, 0);
    vb_results_free(&back);
    /* Resuming a complete output computes nothing and keeps it whole. */
    CHECK_INT_EQ(run(out, s, true, false, 0, &err, &rc), 0);
    CHECK_INT_EQ(rc, 0);
    /* --overwrite starts over. */
    CHECK_INT_EQ(run(out, other, false, true, 0, &err, &rc), 30);
    CHECK_INT_EQ(rc, 0);
    run(out, s, true, true, 0, &err, &rc);
    CHECK_INT_EQ(rc, -1);
    json_decref(s);
    json_decref(other);
}

/* A torn journal tail from kill -9: the intact rows count, the rest is
 * recomputed, and appends continue after the cut. */
static void test_resume_after_torn_journal(void)
{
    const char *out = test_path(dir, "torn.h5");
    const char *jp = test_path(dir, "torn.h5.journal");
    json_t *s = settings_with_seed(7);
    vb_err err = {{0}};
    vb_results done;
    vb_journal *j;
    CHECK_INT_EQ(vb_output_prepare(out, s, false, false, -1, VB_ID_STRING, &done, &j, &err), 0);
    for (int64_t i = 0; i < 12; i++) {
        vb_output_row w = test_row(i, 0, -1);
        vb_journal_append(j, &w, -1, &err);
    }
    vb_journal_close(j, &err); /* "killed": no output was written */
    vb_results_free(&done);
    struct stat st;
    stat(jp, &st);
    CHECK(truncate(jp, st.st_size - 4) == 0);
    int rc;
    CHECK_INT_EQ(run(out, s, true, false, 0, &err, &rc), 30 - 11);
    CHECK_INT_EQ(rc, 0);
    vb_results back = {0};
    CHECK_INT_EQ(vb_output_read(out, &back, NULL, &err), 0);
    CHECK_INT_EQ(back.n_done, 30);
    vb_results_free(&back);
    json_decref(s);
}

/* A damaged journal beside a readable output (and an unreadable output
 * beside a good journal): --resume refuses, and says how to keep the rows
 * the other file holds, not only --overwrite (which discards both). */
static void test_damaged_file_advice(void)
{
    const char *out = test_path(dir, "dmg.h5");
    const char *jp = test_path(dir, "dmg.h5.journal");
    json_t *s = settings_with_seed(11);
    vb_err err = {{0}};
    int rc;
    CHECK_INT_EQ(run(out, s, false, false, 10, &err, &rc), 10); /* stopped: both files */
    CHECK_INT_EQ(rc, 0);
    CHECK_INT_EQ(run(out, s, true, false, 5, &err, &rc), 5);
    CHECK(exists(out) && exists(jp));
    struct stat st;
    CHECK(stat(jp, &st) == 0);
    int fd = open(jp, O_RDWR); /* a byte in the middle: not a torn tail */
    unsigned char c = 0;
    CHECK(pread(fd, &c, 1, st.st_size / 2) == 1);
    c ^= 0x40;
    CHECK(pwrite(fd, &c, 1, st.st_size / 2) == 1);
    close(fd);
    run(out, s, true, false, 0, &err, &rc);
    CHECK_INT_EQ(rc, -1);
    fprintf(stderr, "  message: %s\n", err.msg);
    CHECK(strstr(err.msg, "the file is damaged") != NULL);
    CHECK(strstr(err.msg, "to keep the rows of") != NULL && strstr(err.msg, "dmg.h5, move") &&
          strstr(err.msg, "dmg.h5.journal aside and --resume again"));
    /* the journal aside: the output's rows (all 15: a stop writes it) kept,
     * the rest computed */
    CHECK(unlink(jp) == 0);
    CHECK_INT_EQ(run(out, s, true, false, 0, &err, &rc), 15);
    CHECK_INT_EQ(rc, 0);
    /* an output cut short beside a journal */
    CHECK_INT_EQ(run(out, s, false, true, 10, &err, &rc), 10);
    CHECK(exists(jp));
    CHECK(stat(out, &st) == 0 && truncate(out, st.st_size / 2) == 0);
    run(out, s, true, false, 0, &err, &rc);
    CHECK_INT_EQ(rc, -1);
    fprintf(stderr, "  message: %s\n", err.msg);
    CHECK(strstr(err.msg, "dmg.h5.journal, move") && strstr(err.msg, "dmg.h5 aside"));
    json_decref(s);
}

/* What compare(saved, now) writes to stderr (at most n - 1 bytes), and its
 * return value in *rc. */
static void compare_stderr(const json_t *saved, const json_t *now, char *text, size_t n, int *rc)
{
    vb_err err = {{0}};
    fflush(stderr);
    int keep = dup(2);
    FILE *tmp = tmpfile();
    CHECK(keep >= 0 && tmp != NULL);
    dup2(fileno(tmp), 2);
    *rc = vb_run_settings_compare(saved, now, "x.journal", &err);
    fflush(stderr);
    dup2(keep, 2);
    close(keep);
    rewind(tmp);
    size_t got = fread(text, 1, n - 1, tmp);
    text[got] = '\0';
    fclose(tmp);
}

/* The build is in the settings (ranks agree on it); a resume under
 * another warns but goes on, and one begun before the key (none) says
 * nothing. */
static void test_settings_version(void)
{
    vb_run_settings a = test_settings(), b = test_settings();
    a.version = "0.1.0 (git aaaaaaaaaaaa)";
    b.version = "0.1.0 (git bbbbbbbbbbbb)";
    json_t *ja = vb_run_settings_json(&a), *jb = vb_run_settings_json(&b);
    CHECK(json_is_string(json_object_get(ja, "version")));
    char text[512];
    int rc;
    compare_stderr(ja, jb, text, sizeof text, &rc);
    CHECK_INT_EQ(rc, 0);
    fprintf(stderr, "  warning: %s", text);
    CHECK(strstr(text, "x.journal was begun by voltbatch 0.1.0 (git aaaaaaaaaaaa), this is 0.1.0 "
                       "(git bbbbbbbbbbbb)") != NULL);
    const char *first = strstr(text, "was begun by");
    CHECK(first != NULL && strstr(first + 1, "was begun by") == NULL); /* once */
    compare_stderr(ja, ja, text, sizeof text, &rc);
    CHECK_INT_EQ(rc, 0);
    CHECK_INT_EQ((int)strlen(text), 0);
    json_object_del(ja, "version"); /* begun before the key */
    compare_stderr(ja, jb, text, sizeof text, &rc);
    CHECK_INT_EQ(rc, 0);
    CHECK_INT_EQ((int)strlen(text), 0);
    json_decref(ja), json_decref(jb);
}

static void test_settings_compare(void)
{
    vb_run_settings a = test_settings(), b = test_settings();
    json_t *ja = vb_run_settings_json(&a);
    b.temperature = 0.9;
    json_t *jb = vb_run_settings_json(&b);
    vb_err err = {{0}};
    CHECK_INT_EQ(vb_run_settings_compare(ja, jb, "x.journal", &err), -1);
    CHECK(strstr(err.msg, "temperature was 0.7") != NULL);
    json_decref(jb);
    b = test_settings();
    b.input_checksum = 1;
    jb = vb_run_settings_json(&b);
    CHECK_INT_EQ(vb_run_settings_compare(ja, jb, "x.journal", &err), -1);
    CHECK(strstr(err.msg, "input_checksum") != NULL);
    CHECK(strstr(err.msg, "the inputs changed since this output was begun") != NULL);
    json_decref(jb);
    /* --quantize changes every completion: a run with it does not resume
     * one without (either way round); without it there is no key, so a
     * journal written before the option existed still resumes. */
    b = test_settings();
    b.quantize = "int8";
    jb = vb_run_settings_json(&b);
    CHECK(json_object_get(ja, "quantize") == NULL);
    CHECK_INT_EQ(vb_run_settings_compare(ja, jb, "x.journal", &err), -1);
    CHECK(strstr(err.msg, "quantize was (absent), now \"int8\"") != NULL);
    CHECK_INT_EQ(vb_run_settings_compare(jb, ja, "x.journal", &err), -1);
    json_decref(jb);
    /* so does --kv-cache-dtype int8 */
    b = test_settings();
    b.kv_cache_dtype = "int8";
    jb = vb_run_settings_json(&b);
    CHECK(json_object_get(ja, "kv_cache_dtype") == NULL);
    CHECK_INT_EQ(vb_run_settings_compare(ja, jb, "x.journal", &err), -1);
    CHECK(strstr(err.msg, "kv_cache_dtype was (absent), now \"int8\"") != NULL);
    json_decref(jb);
    /* and --batch-invariant: a file's rows are made in one mode */
    b = test_settings();
    b.batch_invariant = true;
    jb = vb_run_settings_json(&b);
    CHECK(json_object_get(ja, "batch_invariant") == NULL);
    CHECK(json_is_true(json_object_get(jb, "batch_invariant")));
    CHECK_INT_EQ(vb_run_settings_compare(ja, jb, "x.journal", &err), -1);
    CHECK(strstr(err.msg, "batch_invariant was (absent), now true") != NULL);
    CHECK_INT_EQ(vb_run_settings_compare(jb, ja, "x.journal", &err), -1);
    json_decref(jb);
    /* The model's files: a changed, added or removed file is refused by
     * name; saved settings from before the key (none) are not compared on
     * it, so a journal begun by an older build still resumes. */
    json_t *files = json_pack("{s{sIsI}s{sIsI}}", "config.json", "size", (json_int_t)700, "mtime_ns",
                              (json_int_t)1700000000123456789, "model.safetensors", "size",
                              (json_int_t)4096, "mtime_ns", (json_int_t)1700000000000000000);
    CHECK(files != NULL);
    json_t *changed = json_deep_copy(files);
    json_object_set_new(json_object_get(changed, "model.safetensors"), "mtime_ns",
                        json_integer(1800000000000000000));
    b = test_settings();
    b.model_files = files;
    json_t *jf = vb_run_settings_json(&b);
    b.model_files = changed;
    jb = vb_run_settings_json(&b);
    CHECK_INT_EQ(vb_run_settings_compare(jf, jb, "x.journal", &err), -1);
    CHECK(strstr(err.msg, "the model's model.safetensors changed since this output was begun "
                          "(was 4096 bytes, modified 2023-11-14 22:13:20.000000000 UTC, now "
                          "4096 bytes, modified 2027-01-15 08:00:00.000000000 UTC)") != NULL);
    json_decref(jb);
    json_object_del(changed, "model.safetensors");
    jb = vb_run_settings_json(&b);
    CHECK_INT_EQ(vb_run_settings_compare(jf, jb, "x.journal", &err), -1);
    CHECK(strstr(err.msg, "model.safetensors changed") != NULL);
    CHECK(strstr(err.msg, ", now absent)") != NULL);
    CHECK_INT_EQ(vb_run_settings_compare(jb, jf, "x.journal", &err), -1);
    CHECK(strstr(err.msg, "(was absent, now 4096 bytes") != NULL);
    CHECK_INT_EQ(vb_run_settings_compare(ja, jf, "x.journal", &err), -1); /* none, now some */
    json_t *older = json_deep_copy(ja); /* a journal begun before the keys */
    json_object_del(older, "model_files");
    json_object_del(older, "chat_template_kwargs");
    json_object_del(older, "chat_template_file");
    CHECK_INT_EQ(vb_run_settings_compare(older, jf, "x.journal", &err), 0);
    json_decref(older);
    CHECK_INT_EQ(vb_run_settings_compare(jf, jf, "x.journal", &err), 0);
    json_decref(jb);
    json_decref(jf);
    json_decref(changed);
    json_decref(files);
    /* --chat-template-kwargs and the --chat-template file: a change is
     * refused (the prompts render otherwise), also from none to some */
    json_t *kw = json_pack("{sb}", "enable_thinking", 0);
    b = test_settings();
    b.chat_template_kwargs = kw;
    jb = vb_run_settings_json(&b);
    CHECK_INT_EQ(vb_run_settings_compare(ja, jb, "x.journal", &err), -1);
    CHECK(strstr(err.msg, "chat_template_kwargs was null, now {\"enable_thinking\":false}") !=
          NULL);
    json_decref(jb);
    json_decref(kw);
    json_t *stamp = json_pack("{sIsI}", "size", (json_int_t)12, "mtime_ns", (json_int_t)5);
    b = test_settings();
    b.chat_template = "t.jinja";
    b.chat_template_file = stamp;
    jf = vb_run_settings_json(&b);
    json_object_set_new(stamp, "size", json_integer(13));
    jb = vb_run_settings_json(&b);
    CHECK_INT_EQ(vb_run_settings_compare(jf, jb, "x.journal", &err), -1);
    CHECK(strstr(err.msg, "x.journal: the --chat-template file changed since this output was "
                          "begun (was 12 bytes, modified 1970-01-01 00:00:00.000000005 UTC, now "
                          "13 bytes") != NULL);
    json_decref(jb);
    json_decref(jf);
    json_decref(stamp);
    /* Through text and back (the journal header) still compares equal. */
    char *t = vb_run_settings_dump(ja);
    json_error_t je;
    jb = json_loads(t, 0, &je);
    CHECK_INT_EQ(vb_run_settings_compare(jb, ja, "x", &err), 0);
    free(t);
    json_decref(jb);
    json_decref(ja);
}

int main(void)
{
    dir = test_tmpdir();
    RUN_TEST(test_settings_version);
    RUN_TEST(test_settings_compare);
    RUN_TEST(test_policy_and_resume);
    RUN_TEST(test_resume_after_torn_journal);
    RUN_TEST(test_damaged_file_advice);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_summary();
}

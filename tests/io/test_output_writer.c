/* Output file: every dataset and attribute written as DESIGN.md says, read
 * back equal (ids as strings and as int64, n samples, logprobs with top-N),
 * no temporary left behind, and readable by h5dump and h5py (each skipped,
 * with a note, when the tool is not installed). */
#include <errno.h>
#include <hdf5.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flock_fail.h"
#include "harness.h"
#include "io/output_writer.h"
#include "io/pack.h"
#include "io_test_util.h"

static const char *dir;

/* Rows 0..rows-1 except every fifth (a stopped run), 2 samples. */
static void fill(vb_results *r, int64_t rows, int32_t samples, int top_n, vb_id_kind idk)
{
    vb_err err = {{0}};
    CHECK_INT_EQ(vb_results_init(r, rows, samples, top_n, idk, &err), 0);
    for (int64_t i = rows - 1; i >= 0; i--) /* out of order on purpose */
        for (int32_t s = 0; s < samples; s++) {
            if (i % 5 == 4)
                continue;
            vb_output_row w = test_row(i, s, top_n);
            if (idk == VB_ID_UINT) /* bits of ids past 2^63 - 1 */
                w.id_int = (int64_t)(UINT64_MAX - (uint64_t)i);
            CHECK_INT_EQ(vb_results_put(r, &w, &err), 0);
        }
}

static void write_and_check(const char *name, int32_t samples, int top_n, vb_id_kind idk)
{
    const char *p = test_path(dir, name);
    vb_results r;
    fill(&r, 23, samples, top_n, idk);
    vb_run_settings s = test_settings();
    s.n = samples;
    s.input_rows = 23;
    json_t *sj = vb_run_settings_json(&s);
    vb_output_meta meta = {.settings = sj, .dp = 2, .version = "0.1.0 (test)",
                           .start_time = 1.7e9, .end_time = 1.7e9 + 42, .throughput = 123.5,
                           .complete = false};
    vb_err err = {{0}};
    CHECK_INT_EQ(vb_output_write(p, &meta, &r, &err), 0);
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    CHECK(access(tmp, F_OK) != 0);

    vb_results back = {0};
    char *settings_text = NULL;
    CHECK_INT_EQ(vb_output_read(p, &back, &settings_text, &err), 0);
    CHECK_INT_EQ(back.n_rows, 23);
    CHECK_INT_EQ(back.n_samples, samples);
    CHECK_INT_EQ(back.top_n, top_n);
    CHECK_INT_EQ(back.id_kind, idk);
    CHECK_INT_EQ(back.n_done, r.n_done);
    size_t slots = 23 * (size_t)samples;
    int mismatches = 0;
    for (size_t i = 0; i < slots; i++) {
        if (!r.slot[i] != !back.slot[i]) {
            mismatches++;
            continue;
        }
        if (r.slot[i] && !test_rows_equal(r.slot[i], back.slot[i], top_n))
            mismatches++;
        if (r.slot[i] && idk == VB_ID_STRING && strcmp(r.slot[i]->id, back.slot[i]->id))
            mismatches++;
        if (r.slot[i] && (idk == VB_ID_INT || idk == VB_ID_UINT) &&
            r.slot[i]->id_int != back.slot[i]->id_int)
            mismatches++;
    }
    CHECK_INT_EQ(mismatches, 0);
    json_error_t je;
    json_t *saved = settings_text ? json_loads(settings_text, 0, &je) : NULL;
    CHECK(saved != NULL);
    CHECK_INT_EQ(vb_run_settings_compare(saved, sj, p, &err), 0);
    json_decref(saved);
    free(settings_text);
    vb_results_free(&back);
    vb_results_free(&r);
    json_decref(sj);
}

static void test_round_trips(void)
{
    write_and_check("plain.h5", 1, -1, VB_ID_NONE);
    write_and_check("strings.h5", 1, -1, VB_ID_STRING);
    write_and_check("ints_n2.h5", 2, 0, VB_ID_INT);
    write_and_check("uint64.h5", 1, -1, VB_ID_UINT);
    write_and_check("logprobs.h5", 2, 3, VB_ID_STRING);
}

static void test_empty_output(void)
{
    const char *p = test_path(dir, "empty.h5");
    vb_results r;
    vb_err err = {{0}};
    CHECK_INT_EQ(vb_results_init(&r, 10, 1, -1, VB_ID_STRING, &err), 0);
    vb_run_settings s = test_settings();
    json_t *sj = vb_run_settings_json(&s);
    vb_output_meta meta = {.settings = sj, .dp = 1, .version = "t"};
    CHECK_INT_EQ(vb_output_write(p, &meta, &r, &err), 0);
    vb_results back = {0};
    CHECK_INT_EQ(vb_output_read(p, &back, NULL, &err), 0);
    CHECK_INT_EQ(back.n_done, 0);
    vb_results_free(&back);
    vb_results_free(&r);
    json_decref(sj);
}

/* The writer's attributes: checked with the HDF5 API directly. */
static void test_attributes(void)
{
    const char *p = test_path(dir, "logprobs.h5");
    hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(f >= 0);
    const char *want[] = {"model", "tp", "dp", "seed", "temperature", "top_p", "top_k",
                          "version", "start_time", "end_time", "throughput_tokens_per_s",
                          "settings_json", "input_checksum", "complete", "stop"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int has = H5Aexists(f, want[i]) > 0;
        if (!has)
            fprintf(stderr, "  missing attribute %s\n", want[i]);
        CHECK(has);
    }
    CHECK(H5Aexists(f, "min_p") == 0); /* unset: left out */
    hid_t d = H5Dopen2(f, "finish_reason", H5P_DEFAULT);
    hid_t t = H5Dget_type(d);
    CHECK(H5Tget_class(t) == H5T_ENUM);
    char name[16];
    int8_t v = 1;
    CHECK(H5Tenum_nameof(t, &v, name, sizeof name) >= 0);
    CHECK_STR_EQ(name, "length");
    H5Tclose(t);
    H5Dclose(d);
    H5Fclose(f);
}

static int have(const char *cmd)
{
    char buf[300];
    snprintf(buf, sizeof buf, "%s >/dev/null 2>&1", cmd);
    return system(buf) == 0;
}

static void test_h5dump_and_h5py_read_it(void)
{
    char cmd[1200];
    const char *files[] = {"plain.h5", "strings.h5", "ints_n2.h5", "logprobs.h5", "empty.h5"};
    if (!have("h5dump --version")) {
        fprintf(stderr, "  note: h5dump not installed (apt-get install hdf5-tools); skipped\n");
    } else {
        for (int i = 0; i < 5; i++) {
            snprintf(cmd, sizeof cmd, "h5dump '%s' >/dev/null", test_path(dir, files[i]));
            CHECK_INT_EQ(system(cmd), 0);
        }
    }
    if (!have("python3 -c 'import h5py'")) {
        fprintf(stderr, "  note: h5py not installed; skipped\n");
        return;
    }
    snprintf(cmd, sizeof cmd,
             "python3 -c \"import h5py,sys; f=h5py.File(sys.argv[1],'r');"
             "c=[s.decode() for s in f['completions'][()]];"
             "assert c[0].startswith('réponse 0/0'), c[0];"
             "assert f['finish_reason'].dtype.kind=='i' and h5py.check_enum_dtype(f['finish_reason'].dtype)['length']==1;"
             "assert list(f['index'][:3])==[0,0,1];"
             "assert f['top_logprobs'].attrs['top_n']==3;"
             "assert f.attrs['model']=='/models/qwen2.5-0.5b';"
             "assert f.attrs['seed']=='1234' and f.attrs['dp']==2\" '%s'",
             test_path(dir, "logprobs.h5"));
    CHECK_INT_EQ(system(cmd), 0);
}

/* unpack of an output file: one JSON object per row with every field. */
static void test_unpack_output(void)
{
    const char *jl = test_path(dir, "logprobs.jsonl");
    vb_err err = {{0}};
    CHECK_INT_EQ(vb_unpack(test_path(dir, "logprobs.h5"), jl, &err), 0);
    FILE *fp = fopen(jl, "r");
    char line[8192];
    int n = 0;
    json_t *second = NULL;
    while (fp && fgets(line, sizeof line, fp)) {
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        CHECK(o != NULL);
        if (n++ == 3)
            second = o; /* index 1, sample 1 */
        else
            json_decref(o);
    }
    if (fp)
        fclose(fp);
    CHECK_INT_EQ(n, 2 * (23 - 4)); /* rows 4, 9, 14, 19 were not finished */
    vb_output_row w = test_row(1, 1, 3);
    CHECK(second != NULL);
    if (!second)
        return;
    CHECK_INT_EQ(json_integer_value(json_object_get(second, "index")), 1);
    CHECK_INT_EQ(json_integer_value(json_object_get(second, "sample")), 1);
    CHECK_STR_EQ(json_string_value(json_object_get(second, "id")), w.id);
    CHECK_STR_EQ(json_string_value(json_object_get(second, "completion")), w.completion);
    CHECK_STR_EQ(json_string_value(json_object_get(second, "finish_reason")), "stop");
    CHECK_STR_EQ(json_string_value(json_object_get(second, "error")), "");
    CHECK_INT_EQ(json_integer_value(json_object_get(second, "prompt_tokens")), w.prompt_tokens);
    CHECK_INT_EQ(json_integer_value(json_object_get(second, "completion_tokens")),
                 w.completion_tokens);
    json_t *ids = json_object_get(second, "output_ids");
    CHECK_INT_EQ(json_array_size(ids), (size_t)w.n_output_ids);
    CHECK_INT_EQ(json_integer_value(json_array_get(ids, 0)), w.output_ids[0]);
    CHECK_NEAR(json_number_value(json_array_get(json_object_get(second, "logprobs"), 1)),
               w.logprobs[1], 0);
    json_t *top = json_object_get(second, "top_logprobs");
    CHECK_INT_EQ(json_array_size(top), (size_t)w.n_output_ids);
    CHECK_INT_EQ(json_array_size(json_array_get(top, 0)), 3);
    CHECK_INT_EQ(json_array_size(json_array_get(json_object_get(second, "top_ids"), 0)), 3);
    json_decref(second);
}

static void test_unwritable(void)
{
    vb_results r;
    vb_err err = {{0}};
    vb_results_init(&r, 1, 1, -1, VB_ID_NONE, &err);
    vb_output_meta meta = {.dp = 1, .version = "t"};
    CHECK_INT_EQ(vb_output_write("/nonexistent-dir/out.h5", &meta, &r, &err), -1);
    CHECK(strstr(err.msg, "/nonexistent-dir/out.h5.tmp") != NULL);
    vb_results_free(&r);
    CHECK_INT_EQ(vb_output_read(test_path(dir, "nope.h5"), &r, NULL, &err), -1);
    CHECK(strstr(err.msg, "nope.h5") != NULL);
}

/* On a file system without locks (ENOLCK, flock_fail.h) the journal goes
 * on unlocked (journal.c), the whole run finishes, and then the output
 * could not be created: "cannot create: No locks available: the output
 * needs about 16 KiB ... make room, then rerun with --resume", which
 * failed the same way every time.
 * The temporary output is this run's alone (the journal's lock keeps
 * other runs out), so it is written without HDF5's lock; so is pack's. */
static void test_file_system_without_locks(void)
{
    const char *p = test_path(dir, "nolocks.h5");
    vb_results r;
    vb_err err = {{0}};
    fill(&r, 5, 1, -1, VB_ID_INT);
    vb_run_settings s = test_settings();
    s.input_rows = 5;
    json_t *sj = vb_run_settings_json(&s);
    vb_output_meta meta = {.settings = sj, .dp = 1, .version = "t"};
    flock_fails_with = ENOLCK;
    int rc = vb_output_write(p, &meta, &r, &err);
    flock_fails_with = 0;
    if (rc != 0)
        fprintf(stderr, "  (%s)\n", err.msg);
    CHECK_INT_EQ(rc, 0);
    vb_results back = {0};
    CHECK_INT_EQ(vb_output_read(p, &back, NULL, &err), 0);
    CHECK_INT_EQ(back.n_done, r.n_done);
    vb_results_free(&back);
    vb_results_free(&r);
    json_decref(sj);

    const char *txt = test_path(dir, "nolocks.txt"), *packed = test_path(dir, "nolocks_packed.h5");
    FILE *fp = fopen(txt, "w");
    CHECK(fp && fputs("one\ntwo\n", fp) >= 0 && fclose(fp) == 0);
    flock_fails_with = ENOLCK;
    rc = vb_pack(txt, packed, &err);
    flock_fails_with = 0;
    if (rc != 0)
        fprintf(stderr, "  (%s)\n", err.msg);
    CHECK_INT_EQ(rc, 0);
}

int main(void)
{
    dir = test_tmpdir();
    RUN_TEST(test_round_trips);
    RUN_TEST(test_empty_output);
    RUN_TEST(test_attributes);
    RUN_TEST(test_h5dump_and_h5py_read_it);
    RUN_TEST(test_unpack_output);
    RUN_TEST(test_unwritable);
    RUN_TEST(test_file_system_without_locks);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_summary();
}

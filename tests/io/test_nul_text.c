/* Text holding NUL characters through the io path (issue 20): U+0000 is
 * valid UTF-8, but HDF5's variable-length strings end at a NUL, so a
 * column holding one is written in the byte form of io/h5_text.h.
 *   - pack: a JSONL prompt with \u0000 and a text line with a NUL byte go
 *     to /prompts in the byte form; the reader gives every byte back with
 *     its length, and unpack gives the JSON back equal;
 *   - a file without NUL keeps its /prompts a string column;
 *   - messages keep a NUL escaped in their JSON, and the row is no error;
 *   - "id" or "system" with a NUL are refused, naming the line;
 *   - output: a completion holding NUL survives the row record (journal
 *     and rank-to-rank messages), the output file (/completions in the byte
 *     form) and unpack.
 * Each check compares bytes and lengths, so a NUL cut short fails it. */
#include <hdf5.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/h5_text.h"
#include "io/input_reader.h"
#include "io/output_writer.h"
#include "io/pack.h"
#include "io/row_codec.h"
#include "io_test_util.h"

static const char *dir;

static void write_text(const char *path, const char *s, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(s, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* True when `name` in the HDF5 file at path is in the byte form. */
static bool byte_form(const char *path, const char *name)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    bool b = f >= 0 && h5_dataset_is_byte_text(f, name);
    if (f >= 0)
        H5Fclose(f);
    return b;
}

/* Reads every row of the inputs at path. */
static int read_all(const char *path, vb_input *in, vb_input_row *rows, int64_t max)
{
    vb_err err = {{0}};
    const char *specs[] = {path};
    if (vb_input_open(in, specs, 1, &err) < 0) {
        fprintf(stderr, "  %s\n", err.msg);
        return -1;
    }
    int64_t idx[16];
    for (int64_t i = 0; i < in->n_rows && i < max; i++)
        idx[i] = i;
    if (in->n_rows > max || vb_input_read_rows(in, idx, in->n_rows, rows, &err) < 0) {
        fprintf(stderr, "  %s\n", err.msg);
        vb_input_close(in);
        return -1;
    }
    return 0;
}

static bool text_is(const vb_input_row *r, const char *want, size_t n)
{
    bool ok = r->text && r->text_len == n && memcmp(r->text, want, n) == 0;
    if (!ok)
        fprintf(stderr, "  row %lld: %zu bytes, want %zu\n", (long long)r->index, r->text_len, n);
    return ok;
}

static void test_prompts(void)
{
    static const char jsonl[] = "{\"prompt\": \"a\\u0000b\"}\n{\"prompt\": \"plain\"}\n"
                                "{\"prompt\": \"\\u0000\"}\n{\"prompt\": \"end\\u0000\"}\n";
    const char *in = test_path(dir, "nul.jsonl"), *h5 = test_path(dir, "nul.h5");
    write_text(in, jsonl, sizeof jsonl - 1);
    vb_err err = {{0}};
    CHECK_INT_EQ(vb_pack(in, h5, &err), 0);
    CHECK(byte_form(h5, "/prompts"));
    vb_input inp;
    vb_input_row r[16];
    if (read_all(h5, &inp, r, 16) == 0) {
        CHECK_INT_EQ(inp.n_rows, 4);
        CHECK(text_is(&r[0], "a\0b", 3));
        CHECK(text_is(&r[1], "plain", 5));
        CHECK(text_is(&r[2], "\0", 1));
        CHECK(text_is(&r[3], "end\0", 4));
        for (int i = 0; i < 4; i++)
            CHECK_STR_EQ(r[i].error, "");
        vb_input_rows_free(r, inp.n_rows);
        vb_input_close(&inp);
    }
    /* unpack gives the same JSON back, \u0000 and all */
    const char *back = test_path(dir, "nul.back.jsonl");
    CHECK_INT_EQ(vb_unpack(h5, back, &err), 0);
    FILE *f = fopen(back, "r");
    char line[256];
    const char *want[] = {"a\0b", "plain", "\0", "end\0"};
    const size_t want_n[] = {3, 5, 1, 4};
    for (int i = 0; i < 4; i++) {
        json_error_t je;
        json_t *o = f && fgets(line, sizeof line, f) ? json_loads(line, JSON_ALLOW_NUL, &je) : NULL;
        const json_t *p = json_object_get(o, "prompt");
        CHECK(p && json_string_length(p) == want_n[i] && memcmp(json_string_value(p), want[i], want_n[i]) == 0);
        json_decref(o);
    }
    if (f)
        fclose(f);

    /* a text line's NUL byte is a NUL character of its prompt */
    const char *txt = test_path(dir, "nul.txt"), *th5 = test_path(dir, "nul_txt.h5");
    write_text(txt, "x\0y\nsecond\n", 11);
    CHECK_INT_EQ(vb_pack(txt, th5, &err), 0);
    if (read_all(th5, &inp, r, 16) == 0) {
        CHECK_INT_EQ(inp.n_rows, 2);
        CHECK(text_is(&r[0], "x\0y", 3));
        CHECK(text_is(&r[1], "second", 6));
        vb_input_rows_free(r, inp.n_rows);
        vb_input_close(&inp);
    }
}

/* The byte form written as signed bytes (numpy's int8, as h5py stores
 * np.frombuffer(b, np.int8) rows): every byte as written, those above 0x7F
 * included (they read as 0 before, session 31: "héllo" became "h\0\0llo"). */
static void test_signed_bytes(void)
{
    const char *h5 = test_path(dir, "int8.h5");
    static const char *texts[] = {"h\xC3\xA9llo", "plain"};
    hid_t f = H5Fcreate(h5, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t t = H5Tvlen_create(H5T_STD_I8LE), mt = H5Tvlen_create(H5T_NATIVE_SCHAR);
    hsize_t dim = 2;
    hid_t s = H5Screate_simple(1, &dim, NULL);
    hid_t d = H5Dcreate2(f, "prompts", t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hvl_t v[2];
    for (int i = 0; i < 2; i++)
        v[i] = (hvl_t){.len = strlen(texts[i]), .p = (void *)texts[i]};
    CHECK(H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    H5Dclose(d);
    H5Sclose(s);
    H5Tclose(t);
    H5Tclose(mt);
    H5Fclose(f);
    vb_input inp;
    vb_input_row r[16];
    if (read_all(h5, &inp, r, 16) == 0) {
        CHECK(text_is(&r[0], texts[0], strlen(texts[0])));
        CHECK(text_is(&r[1], texts[1], strlen(texts[1])));
        CHECK_STR_EQ(r[0].error, "");
        vb_input_rows_free(r, inp.n_rows);
        vb_input_close(&inp);
    }
}

/* Files without NUL: the plain string column, as before. */
static void test_plain_stays_strings(void)
{
    const char *in = test_path(dir, "plain.jsonl"), *h5 = test_path(dir, "plain.h5");
    write_text(in, "{\"prompt\": \"one\"}\n{\"prompt\": \"two\"}\n", 36);
    vb_err err = {{0}};
    CHECK_INT_EQ(vb_pack(in, h5, &err), 0);
    CHECK(!byte_form(h5, "/prompts"));
    hid_t f = H5Fopen(h5, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = f >= 0 ? H5Dopen2(f, "/prompts", H5P_DEFAULT) : -1;
    hid_t t = d >= 0 ? H5Dget_type(d) : -1;
    CHECK(t >= 0 && H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) > 0);
    if (t >= 0)
        H5Tclose(t);
    if (d >= 0)
        H5Dclose(d);
    if (f >= 0)
        H5Fclose(f);
}

static void test_messages(void)
{
    static const char jsonl[] = "{\"messages\": [{\"role\": \"user\", \"content\": \"q\\u0000r\"}]}\n";
    const char *in = test_path(dir, "msgs.jsonl"), *h5 = test_path(dir, "msgs.h5");
    write_text(in, jsonl, sizeof jsonl - 1);
    vb_err err = {{0}};
    CHECK_INT_EQ(vb_pack(in, h5, &err), 0);
    CHECK(!byte_form(h5, "/messages")); /* the NUL stays escaped in the JSON */
    vb_input inp;
    vb_input_row r[16];
    if (read_all(h5, &inp, r, 16) == 0) {
        CHECK_STR_EQ(r[0].error, "");
        json_error_t je;
        json_t *m = json_loadb(r[0].text, r[0].text_len, JSON_ALLOW_NUL, &je);
        const json_t *c = json_object_get(json_array_get(m, 0), "content");
        CHECK(c && json_string_length(c) == 3 && memcmp(json_string_value(c), "q\0r", 3) == 0);
        json_decref(m);
        vb_input_rows_free(r, inp.n_rows);
        vb_input_close(&inp);
    }
}

static void test_id_system_refused(void)
{
    static const struct {
        const char *line, *needle;
    } bad[] = {
        {"{\"prompt\": \"p\", \"id\": \"a\\u0000\"}\n", "\"id\" holds a NUL"},
        {"{\"prompt\": \"p\", \"system\": \"\\u0000s\"}\n", "\"system\" holds a NUL"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *in = test_path(dir, "bad.jsonl"), *h5 = test_path(dir, "bad.h5");
        write_text(in, bad[i].line, strlen(bad[i].line));
        vb_err err = {{0}};
        CHECK_INT_EQ(vb_pack(in, h5, &err), -1);
        CHECK(strstr(err.msg, bad[i].needle) != NULL);
        CHECK(strstr(err.msg, "bad.jsonl:1:") != NULL);
        printf("  refused: %s\n", err.msg);
    }
}

static bool completion_is(const vb_output_row *w, const char *want, size_t n)
{
    return w && w->completion && vb_output_row_completion_len(w) == n && memcmp(w->completion, want, n) == 0;
}

static void test_completions(void)
{
    vb_results r;
    vb_err err = {{0}};
    CHECK_INT_EQ(vb_results_init(&r, 3, 1, -1, VB_ID_NONE, &err), 0);
    static const char *const texts[] = {"x\0y", "", "\0\0"};
    static const size_t lens[] = {3, 0, 2};
    for (int i = 0; i < 3; i++) {
        vb_output_row w = test_row(i, 0, -1);
        w.completion = (char *)texts[i];
        w.completion_len = lens[i];
        /* the row record (journal, rank to rank) keeps every byte */
        vb_bytes b = {0};
        vb_row_encode(&b, &w, -1);
        vb_output_row d;
        CHECK(!b.oom && vb_row_decode(b.p, b.len, -1, &d) == 0);
        CHECK(completion_is(&d, texts[i], lens[i]));
        vb_output_row_free(&d);
        free(b.p);
        CHECK_INT_EQ(vb_results_put(&r, &w, &err), 0);
    }
    const char *p = test_path(dir, "out.h5");
    vb_run_settings s = test_settings();
    s.input_rows = 3;
    json_t *sj = vb_run_settings_json(&s);
    vb_output_meta meta = {.settings = sj, .dp = 1, .version = "test", .complete = true};
    CHECK_INT_EQ(vb_output_write(p, &meta, &r, &err), 0);
    CHECK(byte_form(p, "/completions"));
    vb_results back = {0};
    CHECK_INT_EQ(vb_output_read(p, &back, NULL, &err), 0);
    for (int i = 0; i < 3 && back.slot; i++)
        CHECK(completion_is(back.slot[i], texts[i], lens[i]));
    vb_results_free(&back);
    const char *jl = test_path(dir, "out.jsonl");
    CHECK_INT_EQ(vb_unpack(p, jl, &err), 0);
    FILE *f = fopen(jl, "r");
    char line[4096];
    for (int i = 0; i < 3; i++) {
        json_error_t je;
        json_t *o = f && fgets(line, sizeof line, f) ? json_loads(line, JSON_ALLOW_NUL, &je) : NULL;
        const json_t *c = json_object_get(o, "completion");
        CHECK(c && json_string_length(c) == lens[i] && memcmp(json_string_value(c), texts[i], lens[i]) == 0);
        json_decref(o);
    }
    if (f)
        fclose(f);
    vb_results_free(&r);
    json_decref(sj);
}

int main(void)
{
    dir = test_tmpdir();
    RUN_TEST(test_prompts);
    RUN_TEST(test_plain_stays_strings);
    RUN_TEST(test_signed_bytes);
    RUN_TEST(test_messages);
    RUN_TEST(test_id_system_refused);
    RUN_TEST(test_completions);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_summary();
}

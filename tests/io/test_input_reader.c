/* Input shards: the schema's variants read correctly (variable and fixed
 * length strings, ids, messages, scalar system, several shards by list,
 * glob and directory), only the asked rows are returned in the asked order,
 * bad rows carry a message, and every malformed file fails the open with one
 * line naming the file and the dataset. The files are made here with the
 * HDF5 C API, the way h5py and other writers lay them out. */
#include <hdf5.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "io/input_reader.h"
#include "io_test_util.h"
#include "util/utf8_valid.h"

static const char *dir;

static hid_t new_file(const char *path)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(f >= 0);
    return f;
}

/* fixed = 0: variable length; else fixed size with the given padding. */
static void put_strings(hid_t f, const char *name, const char *const *v, hsize_t n, size_t fixed,
                        H5T_str_t pad)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t s = H5Screate_simple(1, &n, NULL);
    if (fixed == 0) {
        H5Tset_size(t, H5T_VARIABLE);
        hid_t d = H5Dcreate2(f, name, t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        CHECK(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
        H5Dclose(d);
    } else {
        H5Tset_size(t, fixed);
        H5Tset_strpad(t, pad);
        char *buf = calloc(n, fixed);
        for (hsize_t i = 0; i < n; i++) {
            size_t len = strlen(v[i]);
            memset(buf + i * fixed, pad == H5T_STR_SPACEPAD ? ' ' : 0, fixed);
            memcpy(buf + i * fixed, v[i], len < fixed ? len : fixed);
        }
        hid_t d = H5Dcreate2(f, name, t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        CHECK(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
        H5Dclose(d);
        free(buf);
    }
    H5Sclose(s);
    H5Tclose(t);
}

static void put_scalar_string(hid_t f, const char *name, const char *v)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t d = H5Dcreate2(f, name, t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) >= 0);
    H5Dclose(d);
    H5Sclose(s);
    H5Tclose(t);
}

/* Numbers in `file_type`, with rank 1 (n) or rank 2 (n x 1). */
static void put_numbers(hid_t f, const char *name, hid_t file_type, const double *v, hsize_t n,
                        int rank)
{
    hsize_t dims[2] = {n, 1};
    hid_t s = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(f, name, file_type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    H5Dclose(d);
    H5Sclose(s);
}

static void put_token_rows(hid_t f, const char *name, hid_t base, hsize_t n)
{
    hid_t t = H5Tvlen_create(base), mt = H5Tvlen_create(H5T_NATIVE_INT32);
    hid_t s = H5Screate_simple(1, &n, NULL);
    hvl_t *v = calloc(n, sizeof *v);
    static int32_t toks[64];
    for (int i = 0; i < 64; i++)
        toks[i] = 1000 + i;
    for (hsize_t i = 0; i < n; i++)
        v[i] = (hvl_t){i % 5 + 1, toks};
    hid_t d = H5Dcreate2(f, name, t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    H5Dclose(d);
    H5Sclose(s);
    H5Tclose(t);
    H5Tclose(mt);
    free(v);
}

static const char *const prompts3[] = {"première", "second ✓", "third"};

static void test_vlen_with_all_optionals(void)
{
    const char *p = test_path(dir, "full.h5");
    hid_t f = new_file(p);
    const char *ids[] = {"a", "b", "c"};
    double mnt[] = {5, -1, 7}, seed[] = {11, -1, 13};
    put_strings(f, "prompts", prompts3, 3, 0, 0);
    put_strings(f, "id", ids, 3, 0, 0);
    put_scalar_string(f, "system", "Be brief.");
    put_numbers(f, "max_new_tokens", H5T_STD_I32LE, mnt, 3, 1);
    put_numbers(f, "seed", H5T_STD_I64LE, seed, 3, 1);
    H5Fclose(f);

    vb_input in;
    vb_err err = {{0}};
    const char *specs[] = {p};
    CHECK_INT_EQ(vb_input_open(&in, specs, 1, &err), 0);
    CHECK_INT_EQ(in.n_rows, 3);
    CHECK_INT_EQ(in.kind, VB_PROMPT_TEXT);
    CHECK_INT_EQ(in.id_kind, VB_ID_STRING);
    CHECK(in.checksum != 0);
    int64_t rows[] = {2, 0};
    vb_input_row r[2];
    CHECK_INT_EQ(vb_input_read_rows(&in, rows, 2, r, &err), 0);
    CHECK_STR_EQ(r[0].text, "third");
    CHECK_STR_EQ(r[1].text, "première");
    CHECK_STR_EQ(r[0].id, "c");
    CHECK_STR_EQ(r[1].id, "a");
    CHECK_STR_EQ(r[0].system, "Be brief.");
    CHECK_INT_EQ(r[0].max_new_tokens, 7);
    CHECK_INT_EQ(r[1].seed, 11);
    CHECK_INT_EQ(r[0].index, 2);
    CHECK_STR_EQ(r[0].error, "");
    vb_input_rows_free(r, 2);
    int64_t cost[3];
    CHECK_INT_EQ(vb_input_row_costs(&in, cost, &err), 0);
    CHECK_INT_EQ(cost[2], 5 + 9);
    vb_input_close(&in);
}

/* A dataset the reader does not read (a typo such as /max_tokens, a
 * /temperature column) ran every row with the command line's value
 * without a word; pack warns about such a JSONL key, and the input now
 * names the first such dataset (file and name) for generate to warn
 * about. Known ones, groups and a file without extras leave it empty. */
static void test_unread_dataset_named(void)
{
    const char *p = test_path(dir, "typo.h5"), *q = test_path(dir, "clean.h5");
    double v[] = {5, 6, 7};
    hid_t f = new_file(q);
    put_strings(f, "prompts", prompts3, 3, 0, 0);
    put_numbers(f, "max_new_tokens", H5T_STD_I32LE, v, 3, 1);
    hid_t g = H5Gcreate2(f, "meta", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(g >= 0 && H5Gclose(g) >= 0);
    CHECK(H5Fclose(f) >= 0);
    f = new_file(p);
    put_strings(f, "prompts", prompts3, 3, 0, 0);
    put_numbers(f, "max_tokens", H5T_STD_I32LE, v, 3, 1);
    CHECK(H5Fclose(f) >= 0);

    vb_input in;
    vb_err err = {{0}};
    const char *one[] = {q}, *both[] = {q, p};
    CHECK_INT_EQ(vb_input_open(&in, one, 1, &err), 0);
    CHECK_STR_EQ(in.unread, "");
    vb_input_close(&in);
    CHECK_INT_EQ(vb_input_open(&in, both, 2, &err), 0);
    fprintf(stderr, "  (unread: %s)\n", in.unread);
    CHECK(strstr(in.unread, "typo.h5") != NULL);
    CHECK(strstr(in.unread, "/max_tokens") != NULL);
    vb_input_close(&in);
}

/* An /id that is not UTF-8 (Latin-1 "caf\xE9") makes its row an error and
 * comes out repaired, valid UTF-8 for the output's column (it went through
 * as it was, session 31); the other rows are untouched. */
static void test_bad_utf8_id(void)
{
    const char *p = test_path(dir, "latin1_id.h5");
    hid_t f = new_file(p);
    const char *ids[] = {"caf\xE9", "b", "c"};
    put_strings(f, "prompts", prompts3, 3, 0, 0);
    put_strings(f, "id", ids, 3, 8, H5T_STR_NULLPAD);
    H5Fclose(f);
    vb_input in;
    vb_err err = {{0}};
    const char *specs[] = {p};
    CHECK_INT_EQ(vb_input_open(&in, specs, 1, &err), 0);
    int64_t rows[] = {0, 1};
    vb_input_row r[2];
    CHECK_INT_EQ(vb_input_read_rows(&in, rows, 2, r, &err), 0);
    CHECK(strstr(r[0].error, "id is not valid UTF-8 (byte 4)") != NULL);
    CHECK_STR_EQ(r[0].id, "caf\xEF\xBF\xBD");
    CHECK_STR_EQ(r[1].error, "");
    CHECK_STR_EQ(r[1].id, "b");
    vb_input_rows_free(r, 2);
    vb_input_close(&in);
}

/* A NUL-padded fixed-length string with data after a NUL ("ab\0cd", as
 * numpy's S dtype stores it): refused naming the row, not cut at the NUL
 * (it read "ab", and ids "k\0 1" and "k\0 2" as one, session 31). */
static void test_fixed_inner_nul(void)
{
    const char *p = test_path(dir, "fixed_nul.h5");
    hid_t f = new_file(p);
    hsize_t n = 2;
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, 6);
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    hid_t s = H5Screate_simple(1, &n, NULL);
    hid_t d = H5Dcreate2(f, "prompts", t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    static const char raw[12] = {'o', 'k', 0, 0, 0, 0, 'a', 'b', 0, 'c', 'd', 0};
    CHECK(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) >= 0);
    H5Dclose(d);
    H5Sclose(s);
    H5Tclose(t);
    H5Fclose(f);
    vb_input in;
    vb_err err = {{0}};
    const char *specs[] = {p};
    int rc = vb_input_open(&in, specs, 1, &err);
    if (rc == 0) {
        int64_t rows[] = {0, 1};
        vb_input_row r[2];
        rc = vb_input_read_rows(&in, rows, 2, r, &err);
        if (rc == 0)
            vb_input_rows_free(r, 2);
    }
    vb_input_close(&in);
    fprintf(stderr, "  -> %s\n", err.msg);
    CHECK_INT_EQ(rc, -1);
    CHECK(strstr(err.msg, "row 1: a NUL character inside a fixed-length string") != NULL);
}

/* An empty /system, scalar or a row's, is none: the row takes --system
 * (the scalar one was used as an empty system prompt, session 31). */
static void test_empty_system_is_none(void)
{
    const char *p = test_path(dir, "empty_system.h5");
    hid_t f = new_file(p);
    put_strings(f, "prompts", prompts3, 3, 0, 0);
    put_scalar_string(f, "system", "");
    H5Fclose(f);
    const char *q = test_path(dir, "empty_row_system.h5");
    f = new_file(q);
    const char *sys[] = {"", "S", ""};
    put_strings(f, "prompts", prompts3, 3, 0, 0);
    put_strings(f, "system", sys, 3, 0, 0);
    H5Fclose(f);
    const char *files[] = {p, q};
    for (int k = 0; k < 2; k++) {
        vb_input in;
        vb_err err = {{0}};
        const char *specs[] = {files[k]};
        CHECK_INT_EQ(vb_input_open(&in, specs, 1, &err), 0);
        int64_t rows[] = {0, 1};
        vb_input_row r[2];
        CHECK_INT_EQ(vb_input_read_rows(&in, rows, 2, r, &err), 0);
        CHECK(r[0].system == NULL);
        if (k == 1)
            CHECK(r[1].system && strcmp(r[1].system, "S") == 0);
        vb_input_rows_free(r, 2);
        vb_input_close(&in);
    }
}

static void test_fixed_length_strings(void)
{
    const H5T_str_t pads[] = {H5T_STR_NULLPAD, H5T_STR_NULLTERM, H5T_STR_SPACEPAD};
    for (int k = 0; k < 3; k++) {
        const char *p = test_path(dir, "fixed.h5");
        hid_t f = new_file(p);
        put_strings(f, "prompts", prompts3, 3, 12, pads[k]);
        double idv[] = {10, 20, 30};
        put_numbers(f, "id", H5T_STD_I64LE, idv, 3, 1);
        H5Fclose(f);
        vb_input in;
        vb_err err = {{0}};
        const char *specs[] = {p};
        CHECK_INT_EQ(vb_input_open(&in, specs, 1, &err), 0);
        CHECK_INT_EQ(in.id_kind, VB_ID_INT);
        int64_t rows[] = {0, 1, 2};
        vb_input_row r[3];
        CHECK_INT_EQ(vb_input_read_rows(&in, rows, 3, r, &err), 0);
        for (int i = 0; i < 3; i++) {
            CHECK_STR_EQ(r[i].text, prompts3[i]);
            CHECK_INT_EQ(r[i].id_int, 10 * (i + 1));
        }
        vb_input_rows_free(r, 3);
        vb_input_close(&in);
    }
}

static void test_input_ids_and_messages(void)
{
    const char *p = test_path(dir, "ids.h5");
    hid_t f = new_file(p);
    put_token_rows(f, "input_ids", H5T_STD_I64LE, 4); /* int64 on disk, read as int32 */
    H5Fclose(f);
    vb_input in;
    vb_err err = {{0}};
    const char *specs[] = {p};
    CHECK_INT_EQ(vb_input_open(&in, specs, 1, &err), 0);
    CHECK_INT_EQ(in.kind, VB_PROMPT_IDS);
    int64_t rows[] = {3};
    vb_input_row r[1];
    CHECK_INT_EQ(vb_input_read_rows(&in, rows, 1, r, &err), 0);
    CHECK_INT_EQ(r[0].n_ids, 4);
    CHECK_INT_EQ(r[0].ids[3], 1003);
    CHECK(r[0].text == NULL);
    vb_input_rows_free(r, 1);
    vb_input_close(&in);

    const char *m = test_path(dir, "msgs.h5");
    f = new_file(m);
    const char *msgs[] = {"[{\"role\":\"user\",\"content\":\"hi\"}]", "[{\"role\":\"user\"}]",
                          "not json", "{\"role\":\"user\"}",
                          "[{\"role\":\"user\",\"content\":\"\\ud800\"}]",
                          /* content for the template to render: parts, null */
                          "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"}]}]",
                          "[{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[]}]"};
    put_strings(f, "messages", msgs, 7, 0, 0);
    H5Fclose(f);
    specs[0] = m;
    CHECK_INT_EQ(vb_input_open(&in, specs, 1, &err), 0);
    CHECK_INT_EQ(in.kind, VB_PROMPT_MESSAGES);
    int64_t all[] = {0, 1, 2, 3, 4, 5, 6};
    vb_input_row rr[7];
    CHECK_INT_EQ(vb_input_read_rows(&in, all, 7, rr, &err), 0);
    CHECK_STR_EQ(rr[0].error, "");
    CHECK(strstr(rr[1].error, "messages[0]") != NULL);
    CHECK(strstr(rr[2].error, "messages is not valid JSON") != NULL);
    CHECK(strstr(rr[3].error, "JSON array") != NULL);
    /* a lone surrogate: jansson's reason, not "not an array" */
    CHECK(strstr(rr[4].error, "messages is not valid JSON: invalid Unicode") != NULL);
    CHECK_STR_EQ(rr[5].error, "");
    CHECK_STR_EQ(rr[6].error, "");
    vb_input_rows_free(rr, 7);
    vb_input_close(&in);
}

static void test_bad_rows_are_rows(void)
{
    const char *p = test_path(dir, "badrows.h5");
    hid_t f = new_file(p);
    const char *v[] = {"fine", "", "bad \xff utf8", "negative", "seed"};
    double mnt[] = {1, 1, 1, -5, 1}, seed[] = {0, 0, 0, 0, -3};
    put_strings(f, "prompts", v, 5, 0, 0);
    put_numbers(f, "max_new_tokens", H5T_STD_I32LE, mnt, 5, 1);
    put_numbers(f, "seed", H5T_STD_I64LE, seed, 5, 1);
    H5Fclose(f);
    vb_input in;
    vb_err err = {{0}};
    const char *specs[] = {p};
    CHECK_INT_EQ(vb_input_open(&in, specs, 1, &err), 0);
    int64_t rows[] = {0, 1, 2, 3, 4};
    vb_input_row r[5];
    CHECK_INT_EQ(vb_input_read_rows(&in, rows, 5, r, &err), 0);
    CHECK_STR_EQ(r[0].error, "");
    CHECK_STR_EQ(r[1].error, "empty prompt");
    CHECK(strstr(r[2].error, "UTF-8") != NULL);
    CHECK(strstr(r[3].error, "max_new_tokens") != NULL);
    CHECK(strstr(r[4].error, "seed") != NULL);
    vb_input_rows_free(r, 5);
    vb_input_close(&in);
}

/* A /max_new_tokens below int32 (int64 -2^40) was clamped before the row
 * check, whose error then named -2147483648, a value not in the file. */
static void test_max_new_tokens_below_int32_named(void)
{
    const char *p = test_path(dir, "hugeneg.h5");
    hid_t f = new_file(p);
    double mnt[] = {-1099511627776.0, 3, -7};
    put_strings(f, "prompts", prompts3, 3, 0, 0);
    put_numbers(f, "max_new_tokens", H5T_STD_I64LE, mnt, 3, 1);
    CHECK(H5Fclose(f) >= 0);
    vb_input in;
    vb_err err = {{0}};
    const char *specs[] = {p};
    CHECK_INT_EQ(vb_input_open(&in, specs, 1, &err), 0);
    int64_t rows[] = {0, 1, 2};
    vb_input_row r[3];
    CHECK_INT_EQ(vb_input_read_rows(&in, rows, 3, r, &err), 0);
    fprintf(stderr, "  (row 0: %s)\n", r[0].error);
    CHECK(strstr(r[0].error, "max_new_tokens is -1099511627776") != NULL);
    CHECK_STR_EQ(r[1].error, "");
    CHECK_INT_EQ(r[1].max_new_tokens, 3);
    CHECK_STR_EQ(r[2].error, "max_new_tokens is -7 (negative)");
    vb_input_rows_free(r, 3);
    vb_input_close(&in);
}

/* Three shards of 3, 2, 4 rows: by list, glob and directory. */
static void test_shards(void)
{
    char sub[600];
    snprintf(sub, sizeof sub, "%s/shards", dir);
    mkdir(sub, 0755);
    const int sizes[] = {3, 2, 4};
    for (int s = 0; s < 3; s++) {
        char p[700], text[3][32];
        snprintf(p, sizeof p, "%s/part-%d.h5", sub, s);
        hid_t f = new_file(p);
        const char *v[4];
        char more[4][32];
        for (int i = 0; i < sizes[s]; i++) {
            snprintf(more[i], 32, "shard %d row %d", s, i);
            v[i] = more[i];
        }
        (void)text;
        put_strings(f, "prompts", v, (hsize_t)sizes[s], 0, 0);
        H5Fclose(f);
    }
    char glob_spec[700], p0[700], p1[700], p2[700];
    snprintf(glob_spec, sizeof glob_spec, "%s/part-*.h5", sub);
    snprintf(p0, sizeof p0, "%s/part-0.h5", sub);
    snprintf(p1, sizeof p1, "%s/part-1.h5", sub);
    snprintf(p2, sizeof p2, "%s/part-2.h5", sub);
    const char *list[] = {p0, p1, p2};
    const char *globbed[] = {glob_spec};
    const char *directory[] = {sub};
    const char *const *specs[] = {list, globbed, directory};
    const int nspecs[] = {3, 1, 1};
    for (int k = 0; k < 3; k++) {
        vb_input in;
        vb_err err = {{0}};
        CHECK_INT_EQ(vb_input_open(&in, specs[k], nspecs[k], &err), 0);
        CHECK_INT_EQ(in.n_shards, 3);
        CHECK_INT_EQ(in.n_rows, 9);
        int64_t rows[] = {8, 3, 0, 4, 2};
        vb_input_row r[5];
        CHECK_INT_EQ(vb_input_read_rows(&in, rows, 5, r, &err), 0);
        CHECK_STR_EQ(r[0].text, "shard 2 row 3");
        CHECK_STR_EQ(r[1].text, "shard 1 row 0");
        CHECK_STR_EQ(r[2].text, "shard 0 row 0");
        CHECK_STR_EQ(r[3].text, "shard 1 row 1");
        CHECK_STR_EQ(r[4].text, "shard 0 row 2");
        vb_input_rows_free(r, 5);
        int64_t out_of_range[] = {9};
        CHECK_INT_EQ(vb_input_read_rows(&in, out_of_range, 1, r, &err), -1);
        vb_input_close(&in);
    }
    /* A shard reached twice (its rows would run twice): refused naming
     * both paths, by two --input, a glob and a file in it, a directory
     * and a symlink to one of its files. */
    char link[700];
    snprintf(link, sizeof link, "%s/link-to-part-1.h5", dir);
    CHECK(symlink(p1, link) == 0);
    const char *twice[] = {p0, p0};
    const char *glob_and_file[] = {glob_spec, p2};
    const char *dir_and_link[] = {sub, link};
    const char *const *repeated[] = {twice, glob_and_file, dir_and_link};
    const char *second[] = {"part-0.h5", "part-2.h5", "link-to-part-1.h5"};
    for (int k = 0; k < 3; k++) {
        vb_input in;
        vb_err err = {{0}};
        CHECK_INT_EQ(vb_input_open(&in, repeated[k], 2, &err), -1);
        CHECK(strstr(err.msg, "are the same input file") != NULL);
        CHECK(strstr(err.msg, second[k]) != NULL);
        vb_input_close(&in);
    }
    unlink(link);
}

/* A dp group's rows are scattered across the file (cost sharding); reading
 * 20,000 of 40,000 must stay fast (a hyperslab union took minutes) and
 * return each asked row. Bound: 10 s, some 30x the time measured. */
static void test_scattered_rows_fast(void)
{
    enum { N = 40000 };
    const char *p = test_path(dir, "big.h5");
    hid_t f = new_file(p);
    char **v = malloc(N * sizeof *v);
    for (int i = 0; i < N; i++) {
        v[i] = malloc(24);
        snprintf(v[i], 24, "row %d", i);
    }
    put_strings(f, "prompts", (const char *const *)v, N, 0, 0);
    H5Fclose(f);
    vb_input in;
    vb_err err = {{0}};
    const char *specs[] = {p};
    CHECK_INT_EQ(vb_input_open(&in, specs, 1, &err), 0);
    int64_t *rows = malloc(N / 2 * sizeof *rows);
    for (int64_t i = 0; i < N / 2; i++)
        rows[i] = (N / 2 - 1 - i) * 2 + (i % 3 == 0); /* descending, uneven gaps */
    vb_input_row *r = malloc(N / 2 * sizeof *r);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    CHECK_INT_EQ(vb_input_read_rows(&in, rows, N / 2, r, &err), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double secs = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) * 1e-9;
    fprintf(stderr, "  %d scattered rows in %.3f s\n", N / 2, secs);
    CHECK(secs < 10);
    int bad = 0;
    for (int64_t i = 0; i < N / 2; i++)
        bad += strcmp(r[i].text, v[rows[i]]) != 0;
    CHECK_INT_EQ(bad, 0);
    vb_input_rows_free(r, N / 2);
    vb_input_close(&in);
    for (int i = 0; i < N; i++)
        free(v[i]);
    free(v);
    free(rows);
    free(r);
}

/* ---- malformed files ----------------------------------------------------- */

typedef void (*maker)(hid_t f);

static void m_no_prompts(hid_t f)
{
    double v[] = {1};
    put_numbers(f, "seed", H5T_STD_I64LE, v, 1, 1);
}
static void m_two_kinds(hid_t f)
{
    put_strings(f, "prompts", prompts3, 3, 0, 0);
    put_token_rows(f, "input_ids", H5T_STD_I32LE, 3);
}
static void m_prompts_ints(hid_t f)
{
    double v[] = {1, 2, 3};
    put_numbers(f, "prompts", H5T_STD_I32LE, v, 3, 1);
}
static void m_prompts_2d(hid_t f)
{
    hsize_t dims[2] = {3, 1};
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    hid_t s = H5Screate_simple(2, dims, NULL);
    hid_t d = H5Dcreate2(f, "prompts", t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, prompts3) >= 0);
    H5Dclose(d);
    H5Sclose(s);
    H5Tclose(t);
}
static void m_prompts_group(hid_t f)
{
    hid_t g = H5Gcreate2(f, "prompts", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g);
}
static void m_id_short(hid_t f)
{
    const char *ids[] = {"a", "b"};
    put_strings(f, "prompts", prompts3, 3, 0, 0);
    put_strings(f, "id", ids, 2, 0, 0);
}
static void m_id_float(hid_t f)
{
    double v[] = {1, 2, 3};
    put_strings(f, "prompts", prompts3, 3, 0, 0);
    put_numbers(f, "id", H5T_IEEE_F64LE, v, 3, 1);
}
/* string ids of the wrong shape: the message said "wrong type (expected
 * strings or integers)" of a string column, hiding the rank */
static void m_id_strings_2d(hid_t f)
{
    hsize_t dims[2] = {1, 3};
    const char *ids[] = {"a", "b", "c"};
    put_strings(f, "prompts", prompts3, 3, 0, 0);
    hid_t t = H5Tcopy(H5T_C_S1);
    CHECK(H5Tset_size(t, H5T_VARIABLE) >= 0);
    hid_t s = H5Screate_simple(2, dims, NULL);
    hid_t d = H5Dcreate2(f, "id", t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(d >= 0 && H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, ids) >= 0);
    H5Dclose(d);
    H5Sclose(s);
    H5Tclose(t);
}
static void m_id_string_scalar(hid_t f)
{
    put_strings(f, "prompts", prompts3, 3, 0, 0);
    put_scalar_string(f, "id", "one id for all");
}
static void m_system_long(hid_t f)
{
    const char *s[] = {"a", "b", "c", "d"};
    put_strings(f, "prompts", prompts3, 3, 0, 0);
    put_strings(f, "system", s, 4, 0, 0);
}
static void m_max_float(hid_t f)
{
    double v[] = {1, 2, 3};
    put_strings(f, "prompts", prompts3, 3, 0, 0);
    put_numbers(f, "max_new_tokens", H5T_IEEE_F32LE, v, 3, 1);
}
static void m_max_short(hid_t f)
{
    double v[] = {1, 2};
    put_strings(f, "prompts", prompts3, 3, 0, 0);
    put_numbers(f, "max_new_tokens", H5T_STD_I32LE, v, 2, 1);
}
static void m_seed_2d(hid_t f)
{
    double v[] = {1, 2, 3};
    put_strings(f, "prompts", prompts3, 3, 0, 0);
    put_numbers(f, "seed", H5T_STD_I64LE, v, 3, 2);
}
static void m_ids_not_vlen(hid_t f)
{
    double v[] = {1, 2, 3};
    put_numbers(f, "input_ids", H5T_STD_I32LE, v, 3, 1);
}
static void m_ids_2d(hid_t f)
{
    double v[] = {1, 2, 3};
    put_numbers(f, "input_ids", H5T_STD_I32LE, v, 3, 2);
}
static void m_ids_vlen_float(hid_t f)
{
    put_token_rows(f, "input_ids", H5T_IEEE_F32LE, 3);
}
static void m_system_ints(hid_t f)
{
    double v[] = {1, 2, 3};
    put_strings(f, "prompts", prompts3, 3, 0, 0);
    put_numbers(f, "system", H5T_STD_I32LE, v, 3, 1);
}

/* /prompts a soft link whose target is gone (h5py's f["prompts"] =
 * SoftLink("/data/p") after /data was deleted): "/prompts is not a
 * dataset" said nothing of the link */
static void m_prompts_dangling(hid_t f)
{
    CHECK(H5Lcreate_soft("/gone/p", f, "prompts", H5P_DEFAULT, H5P_DEFAULT) >= 0);
}

/* /prompts an external link to a good file's /prompts */
static char linked_target[256];
static void m_prompts_external(hid_t f)
{
    hid_t g = new_file(linked_target);
    put_strings(g, "prompts", prompts3, 3, 0, 0);
    H5Fclose(g);
    CHECK(H5Lcreate_external(linked_target, "/prompts", f, "prompts", H5P_DEFAULT, H5P_DEFAULT) >=
          0);
}

/* /prompts chunked through a filter this HDF5 does not have (32000: h5py's
 * lzf; optional, so writing skips it as a library without it does) */
static H5Z_filter_t missing_filter_id = 32000;
static void m_prompts_missing_filter(hid_t f)
{
    hsize_t n = 3, chunk = 2;
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    hid_t s = H5Screate_simple(1, &n, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, &chunk);
    CHECK(H5Pset_filter(dcpl, missing_filter_id, H5Z_FLAG_OPTIONAL, 0, NULL) >= 0);
    hid_t d = H5Dcreate2(f, "prompts", t, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    CHECK(d >= 0 && H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, prompts3) >= 0);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(s);
    H5Tclose(t);
}

/* /prompts a virtual dataset over another file's */
static void m_prompts_virtual(hid_t f)
{
    hsize_t n = 3;
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, 16);
    hid_t s = H5Screate_simple(1, &n, NULL), src = H5Screate_simple(1, &n, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    CHECK(H5Pset_virtual(dcpl, s, "elsewhere.h5", "/p", src) >= 0);
    hid_t d = H5Dcreate2(f, "prompts", t, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    CHECK(d >= 0);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(src);
    H5Sclose(s);
    H5Tclose(t);
}

static void expect_open_error(const char *name, maker make, const char *want_dataset)
{
    const char *p = test_path(dir, name);
    hid_t f = new_file(p);
    make(f);
    H5Fclose(f);
    vb_input in;
    vb_err err = {{0}};
    const char *specs[] = {p};
    int rc = vb_input_open(&in, specs, 1, &err);
    vb_input_close(&in);
    fprintf(stderr, "  %-20s -> %s\n", name, err.msg);
    CHECK_INT_EQ(rc, -1);
    CHECK(strstr(err.msg, name) != NULL);       /* names the file */
    CHECK(strstr(err.msg, want_dataset) != NULL); /* names the dataset */
    CHECK(strchr(err.msg, '\n') == NULL);        /* one line */
}

static void test_malformed_files(void)
{
    expect_open_error("no_prompts.h5", m_no_prompts, "/prompts");
    expect_open_error("two_kinds.h5", m_two_kinds, "/input_ids");
    expect_open_error("prompts_ints.h5", m_prompts_ints, "/prompts");
    expect_open_error("prompts_2d.h5", m_prompts_2d, "/prompts");
    expect_open_error("prompts_group.h5", m_prompts_group, "/prompts");
    expect_open_error("id_short.h5", m_id_short, "/id");
    expect_open_error("id_float.h5", m_id_float, "/id");
    expect_open_error("id_strings_2d.h5", m_id_strings_2d, "/id has rank 2");
    expect_open_error("id_string_scalar.h5", m_id_string_scalar, "/id has rank 0");
    expect_open_error("system_long.h5", m_system_long, "/system");
    expect_open_error("system_ints.h5", m_system_ints, "/system");
    expect_open_error("max_float.h5", m_max_float, "/max_new_tokens");
    expect_open_error("max_short.h5", m_max_short, "/max_new_tokens");
    expect_open_error("seed_2d.h5", m_seed_2d, "/seed");
    expect_open_error("ids_not_vlen.h5", m_ids_not_vlen, "/input_ids");
    /* a padded 2-D array, numpy's way: said what it is and what to write */
    expect_open_error("ids_2d.h5", m_ids_2d, "/input_ids is an array of integers of rank 2");
    expect_open_error("ids_vlen_float.h5", m_ids_vlen_float, "/input_ids");
    expect_open_error("prompts_dangling.h5", m_prompts_dangling,
                      "/prompts is a soft link to /gone/p, which does not exist");
    snprintf(linked_target, sizeof linked_target, "%s", test_path(dir, "link_target.h5"));
    expect_open_error("prompts_external.h5", m_prompts_external, "/prompts is an external link");
    expect_open_error("prompts_lzf.h5", m_prompts_missing_filter,
                      "/prompts is stored with HDF5 filter 32000");
    /* the way round must work: h5repack cannot read lzf either (it wrote
     * a file without /prompts, exit 0); h5py can */
    expect_open_error("prompts_lzf2.h5", m_prompts_missing_filter, "copy it with h5py");
    missing_filter_id = 32001; /* blosc: a plugin (HDF5_PLUGIN_PATH) reads it */
    expect_open_error("prompts_blosc.h5", m_prompts_missing_filter, "HDF5_PLUGIN_PATH");
    missing_filter_id = 32000;
    expect_open_error("prompts_virtual.h5", m_prompts_virtual, "/prompts keeps its data in other files");
    /* plain h5repack keeps a virtual dataset virtual: the advice must be
     * the command that copies the data in */
    expect_open_error("prompts_virtual2.h5", m_prompts_virtual, "h5repack -l CONTI IN OUT");
}

static void expect_specs_error(const char *const *specs, int n, const char *want1,
                               const char *want2)
{
    vb_input in;
    vb_err err = {{0}};
    int rc = vb_input_open(&in, specs, n, &err);
    vb_input_close(&in);
    fprintf(stderr, "  -> %s\n", err.msg);
    CHECK_INT_EQ(rc, -1);
    CHECK(strstr(err.msg, want1) != NULL);
    CHECK(strstr(err.msg, want2) != NULL);
    CHECK(strchr(err.msg, '\n') == NULL);
}

static void test_bad_files_and_shard_mismatch(void)
{
    const char *txt = test_path(dir, "plain.txt");
    FILE *fp = fopen(txt, "w");
    fputs("not hdf5\n", fp);
    fclose(fp);
    const char *s1[] = {txt};
    expect_specs_error(s1, 1, "plain.txt", "not an HDF5 file");
    const char *s2[] = {test_path(dir, "missing.h5")};
    expect_specs_error(s2, 1, "missing.h5", "no such file");
    const char *s3[] = {test_path(dir, "nothing-*.h5")};
    expect_specs_error(s3, 1, "nothing-", "no file matches");
    /* a FIFO (HDF5 would block opening it) or a device: refused by name */
    const char *fifo = test_path(dir, "fifo.h5");
    CHECK(mkfifo(fifo, 0600) == 0);
    const char *s_fifo[] = {fifo};
    expect_specs_error(s_fifo, 1, "fifo.h5", "not a regular file");
    unlink(fifo);
    const char *s_dev[] = {"/dev/null"};
    expect_specs_error(s_dev, 1, "/dev/null", "not a regular file");

    const char *a = test_path(dir, "kind_a.h5"), *b = test_path(dir, "kind_b.h5");
    hid_t f = new_file(a);
    put_strings(f, "prompts", prompts3, 3, 0, 0);
    H5Fclose(f);
    f = new_file(b);
    put_strings(f, "messages", prompts3, 3, 0, 0);
    H5Fclose(f);
    const char *s4[] = {a, b};
    expect_specs_error(s4, 2, "kind_b.h5", "/messages");

    const char *c = test_path(dir, "id_c.h5");
    f = new_file(c);
    put_strings(f, "prompts", prompts3, 3, 0, 0);
    put_strings(f, "id", prompts3, 3, 0, 0);
    H5Fclose(f);
    const char *s5[] = {a, c};
    expect_specs_error(s5, 2, "id_c.h5", "/id");
}

/* /id of unsigned 64-bit integers: every value read as written (2^64 - 1
 * included, past an int64), the kind VB_ID_UINT; an unsigned 32-bit /id
 * fits an int64 (VB_ID_INT); a shard of the other integer kind refused. */
static void test_uint64_ids(void)
{
    const char *p = test_path(dir, "u64.h5"), *q = test_path(dir, "u32.h5");
    hid_t f = new_file(p);
    put_strings(f, "prompts", prompts3, 3, 0, 0);
    const uint64_t ids[] = {7, UINT64_C(9223372036854775808), UINT64_MAX};
    hsize_t n = 3;
    hid_t s = H5Screate_simple(1, &n, NULL);
    hid_t d = H5Dcreate2(f, "id", H5T_STD_U64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(H5Dwrite(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, ids) >= 0);
    H5Dclose(d);
    H5Sclose(s);
    H5Fclose(f);
    f = new_file(q);
    put_strings(f, "prompts", prompts3, 3, 0, 0);
    double u32[] = {4294967295.0, 1, 2};
    put_numbers(f, "id", H5T_STD_U32LE, u32, 3, 1);
    H5Fclose(f);

    vb_input in;
    vb_err err = {{0}};
    const char *specs[] = {p};
    CHECK_INT_EQ(vb_input_open(&in, specs, 1, &err), 0);
    CHECK_INT_EQ(in.id_kind, VB_ID_UINT);
    int64_t rows[] = {0, 1, 2};
    vb_input_row r[3];
    CHECK_INT_EQ(vb_input_read_rows(&in, rows, 3, r, &err), 0);
    for (int i = 0; i < 3; i++)
        CHECK((uint64_t)r[i].id_int == ids[i]);
    vb_input_rows_free(r, 3);
    vb_input_close(&in);

    const char *specs32[] = {q};
    CHECK_INT_EQ(vb_input_open(&in, specs32, 1, &err), 0);
    CHECK_INT_EQ(in.id_kind, VB_ID_INT);
    CHECK_INT_EQ(vb_input_read_rows(&in, rows, 1, r, &err), 0);
    CHECK_INT_EQ(r[0].id_int, 4294967295LL);
    vb_input_rows_free(r, 1);
    vb_input_close(&in);

    const char *mixed[] = {q, p};
    expect_specs_error(mixed, 2, "u64.h5", "unsigned 64-bit ids but");
}

static void test_utf8_check(void)
{
    CHECK(vb_utf8_valid("héllo 😀", strlen("héllo 😀"), NULL));
    size_t at = 0;
    CHECK(!vb_utf8_valid("ab\xc0\xaf", 4, &at)); /* overlong '/' */
    CHECK_INT_EQ(at, 2);
    CHECK(!vb_utf8_valid("\xed\xa0\x80", 3, NULL)); /* surrogate */
    CHECK(!vb_utf8_valid("\xe2\x82", 2, NULL));    /* truncated */
}

int main(void)
{
    dir = test_tmpdir();
    RUN_TEST(test_vlen_with_all_optionals);
    RUN_TEST(test_unread_dataset_named);
    RUN_TEST(test_fixed_length_strings);
    RUN_TEST(test_empty_system_is_none);
    RUN_TEST(test_bad_utf8_id);
    RUN_TEST(test_fixed_inner_nul);
    RUN_TEST(test_uint64_ids);
    RUN_TEST(test_input_ids_and_messages);
    RUN_TEST(test_bad_rows_are_rows);
    RUN_TEST(test_max_new_tokens_below_int32_named);
    RUN_TEST(test_shards);
    RUN_TEST(test_scattered_rows_fast);
    RUN_TEST(test_malformed_files);
    RUN_TEST(test_bad_files_and_shard_mismatch);
    RUN_TEST(test_utf8_check);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_summary();
}

/* Input files whose contents the reader must refuse rather than trust
 * (issue 23, defect 5), each with one line naming the file and dataset:
 *   - token ids outside int32 in an int64 /input_ids: HDF5 clamps them to
 *     INT32_MAX / INT32_MIN by default, silently changing the prompt; now
 *     the row is an error naming the id (session 32: it stopped the whole
 *     read, so a job lost every row after it), the other rows run, and an
 *     unsigned 64-bit /input_ids reads the same way;
 *   - a chunked /prompts of 2^33 rows (never written, so the file is
 *     tiny): a corrupt dimension that made generate allocate per row and
 *     read 2^33 fill values;
 *   - a contiguous /prompts whose dimension says more rows than its
 *     storage holds (the dataspace patched): refused at open, with the
 *     sizes, instead of a bare "read failed" later;
 *   - invalid UTF-8 in a /prompts row: `unpack` dropped the field without
 *     a word (JSON cannot hold it); now it names the row; the same for an
 *     output's /completions and /error rows (another writer's, or edited):
 *     `unpack` wrote the row without its "completion" or "error", exit 0;
 *   - damaged variable-length references of a contiguous /prompts, checked
 *     before HDF5 1.10 follows them (io/h5_vlen_check.h): a heap index past
 *     the collection (HDF5 read through a wild pointer: a segfault), a
 *     free-space object of size 0 (HDF5 looped forever), a length other
 *     than the object's (HDF5 returned a truncated or padded string), a
 *     length beyond the file (HDF5 allocated and cleared it);
 *   - a superblock whose end of allocated space (EOA) falls inside the
 *     /prompts data: HDF5 1.10 read the part beyond it as garbage (found
 *     by the fuzzer: a heap overflow in H5HG_read); refused at open.
 *   - an input on a file system that refuses HDF5's file lock (ENOLCK:
 *     NFS without a lock daemon) was said to be held open by another
 *     process; now the hint names the file system and the way round.
 * And the check that reads every input once (io/input_check.h): it passes
 * a good file, in this process and in a child, tells an output file, and
 * words a refusal the same either way.
 *
 * The child of vb_input_check_isolated is this program run again with
 * VB_INPUT_CHECK_COMMAND (main dispatches it as voltbatch's main does). */
#include <hdf5.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "flock_fail.h"
#include "harness.h"
#include "io/input_reader.h"
#include "io/output_writer.h"
#include "io/pack.h"
#include "io_test_util.h"
#if __has_include("io/input_check.h")
#include "io/input_check.h"
#define HAVE_INPUT_CHECK 1
#endif

static const char *dir;

static void put_vlen_strings(hid_t f, const char *name, const char *const *v, hsize_t n)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    CHECK(H5Tset_size(t, H5T_VARIABLE) >= 0 && H5Tset_cset(t, H5T_CSET_UTF8) >= 0);
    hid_t s = H5Screate_simple(1, &n, NULL);
    hid_t d = H5Dcreate2(f, name, t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(d >= 0 && H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    H5Dclose(d);
    H5Sclose(s);
    H5Tclose(t);
}

/* Opens one file as the inputs and reads every row: returns what failed
 * first (0: nothing) and leaves the message in err. */
static int open_and_read(const char *path, vb_err *err)
{
    vb_input in;
    const char *specs[] = {path};
    int rc = vb_input_open(&in, specs, 1, err);
    if (rc == 0 && in.n_rows <= 32) {
        int64_t rows[32];
        vb_input_row r[32];
        for (int64_t i = 0; i < in.n_rows; i++)
            rows[i] = i;
        rc = vb_input_read_rows(&in, rows, in.n_rows, r, err);
        if (rc == 0)
            vb_input_rows_free(r, in.n_rows);
    }
    vb_input_close(&in);
    return rc;
}

static void test_ids_outside_int32(void)
{
    const char *path = test_path(dir, "ids64.h5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t t = H5Tvlen_create(H5T_STD_I64LE), mt = H5Tvlen_create(H5T_NATIVE_INT64);
    hsize_t n = 2;
    hid_t s = H5Screate_simple(1, &n, NULL);
    int64_t a[] = {5, (int64_t)INT32_MAX + 3}, b[] = {7};
    hvl_t v[] = {{2, a}, {1, b}};
    hid_t d = H5Dcreate2(f, "input_ids", t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(d >= 0 && H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    H5Dclose(d);
    H5Sclose(s);
    H5Tclose(t);
    H5Tclose(mt);
    H5Fclose(f);

    vb_err err = {{0}};
    vb_input in;
    const char *specs[] = {path};
    CHECK_INT_EQ(vb_input_open(&in, specs, 1, &err), 0);
    int64_t rows[] = {0, 1};
    vb_input_row r[2];
    CHECK_INT_EQ(vb_input_read_rows(&in, rows, 2, r, &err), 0);
    CHECK(r[0].ids_out_of_range);
    CHECK(strstr(r[0].error, "token id 2147483650 at position 1 is outside") != NULL);
    fprintf(stderr, "  (row 0: %s)\n", r[0].error);
    CHECK(!r[1].ids_out_of_range && r[1].error[0] == '\0');
    CHECK(r[1].n_ids == 1 && r[1].ids[0] == 7);
    vb_input_rows_free(r, 2);
    vb_input_close(&in);
}

static void test_absurd_row_count(void)
{
    const char *path = test_path(dir, "huge.h5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    hsize_t n = (hsize_t)1 << 33, chunk = 1024;
    hid_t s = H5Screate_simple(1, &n, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    CHECK(H5Pset_chunk(dcpl, 1, &chunk) >= 0);
    hid_t d = H5Dcreate2(f, "prompts", t, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    CHECK(d >= 0);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(s);
    H5Tclose(t);
    H5Fclose(f);

    vb_err err = {{0}};
    vb_input in;
    const char *specs[] = {path};
    CHECK_INT_EQ(vb_input_open(&in, specs, 1, &err), -1);
    vb_input_close(&in);
    CHECK(strstr(err.msg, "huge.h5: /prompts has 8589934592 rows") != NULL);
    fprintf(stderr, "  (message: %s)\n", err.msg);
}

/* Sets every 8-byte little-endian `from` among the file's first 2 KiB to
 * `to`: there, before the raw data and the global heap, only the
 * dataspace message (its dimension and maximum) holds the row count.
 * Returns how many were changed. */
static int patch_u64(const char *path, uint64_t from, uint64_t to)
{
    FILE *fp = fopen(path, "r+b");
    CHECK(fp != NULL);
    if (!fp)
        return 0;
    static unsigned char buf[2048];
    size_t len = fread(buf, 1, sizeof buf, fp);
    int changed = 0;
    for (size_t i = 0; i + 8 <= len; i++) {
        uint64_t x = 0;
        for (int k = 7; k >= 0; k--)
            x = x << 8 | buf[i + k];
        if (x != from)
            continue;
        for (int k = 0; k < 8; k++)
            buf[i + k] = (unsigned char)(to >> (8 * k));
        changed++;
    }
    CHECK(fseek(fp, 0, SEEK_SET) == 0 && fwrite(buf, 1, len, fp) == len);
    fclose(fp);
    return changed;
}

static void test_dimension_beyond_storage(void)
{
    const char *path = test_path(dir, "dims.h5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    enum { N = 291 };
    const char *v[N];
    for (int i = 0; i < N; i++)
        v[i] = "p";
    put_vlen_strings(f, "prompts", v, N);
    H5Fclose(f);
    CHECK_INT_EQ(patch_u64(path, N, 1000000), 2);

    vb_err err = {{0}};
    vb_input in;
    const char *specs[] = {path};
    CHECK_INT_EQ(vb_input_open(&in, specs, 1, &err), -1);
    vb_input_close(&in);
    CHECK(strstr(err.msg, "dims.h5: /prompts: 1000000 rows of 16 bytes") != NULL);
    CHECK(strstr(err.msg, "corrupt") != NULL);
    fprintf(stderr, "  (message: %s)\n", err.msg);
}

/* A chunk whose data no longer matches its Fletcher-32 checksum (a flipped
 * bit on disk, h5py's fletcher32=True): the read said only "/prompts:
 * read failed", no rows and no cause. It now names the rows and HDF5's
 * reason, which says the data is damaged. */
#if H5_VERSION_GE(1, 10, 2) /* H5Dread_chunk, H5Dwrite_chunk */
static void test_checksum_failure_named(void)
{
    const char *path = test_path(dir, "fletcher.h5");
    enum { N = 30, W = 24 };
    hsize_t n = N, chunk = 10;
    char buf[N][W] = {{0}}; /* each row's bytes after its NUL go to the file too */
    for (int i = 0; i < N; i++)
        snprintf(buf[i], W, "row %d of thirty", i);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t t = H5Tcopy(H5T_C_S1), s = H5Screate_simple(1, &n, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    CHECK(H5Tset_size(t, W) >= 0 && H5Pset_chunk(dcpl, 1, &chunk) >= 0 &&
          H5Pset_fletcher32(dcpl) >= 0);
    hid_t d = H5Dcreate2(f, "prompts", t, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    CHECK(d >= 0 && H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
    /* chunk 2 (rows 20-29) read raw, one byte of its data changed; after a
     * close, so that the chunk cache does not write the good one back */
    CHECK(H5Dclose(d) >= 0);
    d = H5Dopen2(f, "prompts", H5P_DEFAULT);
    hsize_t at = 20;
    uint32_t mask = 0;
    char raw[10 * W + 4];
    CHECK(H5Dread_chunk(d, H5P_DEFAULT, &at, &mask, raw) >= 0);
    raw[5] ^= 1;
    CHECK(H5Dwrite_chunk(d, H5P_DEFAULT, mask, &at, sizeof raw, raw) >= 0);
    CHECK(H5Dclose(d) >= 0 && H5Pclose(dcpl) >= 0 && H5Sclose(s) >= 0 && H5Tclose(t) >= 0);
    CHECK(H5Fclose(f) >= 0);

    vb_err err = {{0}};
    CHECK_INT_EQ(open_and_read(path, &err), -1);
    fprintf(stderr, "  (message: %s)\n", err.msg);
    CHECK(strstr(err.msg, "fletcher.h5: /prompts: rows 0-29: read failed") != NULL);
    CHECK(strstr(err.msg, "Fletcher32 checksum") != NULL);
}
#endif

/* 20 rows "row 0 ...", "row 1 ...", contiguous vlen strings. */
static void make_rows(const char *path)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    static char text[20][32];
    const char *v[20];
    for (int i = 0; i < 20; i++) {
        snprintf(text[i], sizeof text[i], "row %d of twenty", i);
        v[i] = text[i];
    }
    put_vlen_strings(f, "prompts", v, 20);
    H5Fclose(f);
}

/* The file offset of `row`'s descriptor in the contiguous vlen /prompts:
 * length (4), heap collection address (8), object index (4). */
static uint64_t descriptor_at(const char *path, int64_t row)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "prompts", H5P_DEFAULT);
    haddr_t at = H5Dget_offset(d);
    CHECK(at != HADDR_UNDEF);
    H5Dclose(d);
    H5Fclose(f);
    return at + (uint64_t)row * 16;
}

static void poke(const char *path, uint64_t at, uint64_t value, int bytes)
{
    unsigned char b[8];
    for (int k = 0; k < bytes; k++)
        b[k] = (unsigned char)(value >> (8 * k));
    FILE *fp = fopen(path, "r+b");
    CHECK(fp && fseek(fp, (long)at, SEEK_SET) == 0 && fwrite(b, 1, (size_t)bytes, fp) == (size_t)bytes);
    if (fp)
        fclose(fp);
}

static uint64_t peek(const char *path, uint64_t at, int bytes)
{
    unsigned char b[8] = {0};
    FILE *fp = fopen(path, "rb");
    CHECK(fp && fseek(fp, (long)at, SEEK_SET) == 0 && fread(b, 1, (size_t)bytes, fp) == (size_t)bytes);
    if (fp)
        fclose(fp);
    uint64_t x = 0;
    for (int k = bytes - 1; k >= 0; k--)
        x = x << 8 | b[k];
    return x;
}

/* Reads the file and expects a refusal containing `want`. */
static void expect_refusal(const char *path, const char *want)
{
    vb_err err = {{0}};
    CHECK_INT_EQ(open_and_read(path, &err), -1);
    if (!strstr(err.msg, want))
        fprintf(stderr, "  expected \"%s\" in \"%s\"\n", want, err.msg);
    CHECK(strstr(err.msg, want) != NULL);
}

static void test_heap_index_past_collection(void)
{
    const char *path = test_path(dir, "heapidx.h5");
    make_rows(path);
    poke(path, descriptor_at(path, 7) + 12, 0xFFFF, 4);
    expect_refusal(path, "heapidx.h5: /prompts: row 7: its global heap object does not exist");
}

static void test_heap_free_space_of_size_zero(void)
{
    const char *path = test_path(dir, "heapfree.h5");
    make_rows(path);
    uint64_t coll = peek(path, descriptor_at(path, 0) + 4, 8);
    CHECK(peek(path, coll, 4) == 0x4C4F4347); /* "GCOL" */
    uint64_t size = peek(path, coll + 8, 8), p = 16;
    while (p + 16 <= size && peek(path, coll + p, 2) != 0)
        p += 16 + (peek(path, coll + p + 8, 8) + 7) / 8 * 8;
    CHECK(p + 16 <= size); /* the free-space object */
    poke(path, coll + p + 8, 0, 8);
    expect_refusal(path, "heapfree.h5: /prompts: row 0: the global heap collection it names is "
                         "damaged");
}

static void test_length_differs_from_object(void)
{
    const char *path = test_path(dir, "heaplen.h5");
    make_rows(path);
    poke(path, descriptor_at(path, 3), 2, 4);
    expect_refusal(path, "heaplen.h5: /prompts: row 3: its global heap object's size differs");
    poke(path, descriptor_at(path, 3), 100000, 4);
    expect_refusal(path, "heaplen.h5: /prompts: row 3: its length is larger than the file");
}

static void test_data_past_end_of_allocation(void)
{
    const char *path = test_path(dir, "eoa.h5");
    make_rows(path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "prompts", H5P_DEFAULT);
    uint64_t end = H5Dget_offset(d) + H5Dget_storage_size(d);
    H5Dclose(d);
    H5Fclose(f);
    /* Superblock version 0 (the default): the EOA is the 8 bytes at 40. */
    CHECK(peek(path, 8, 1) == 0);
    CHECK(peek(path, 40, 8) >= end);
    poke(path, 40, end - 4, 8);
    vb_err err = {{0}};
    vb_input in;
    const char *specs[] = {path};
    CHECK_INT_EQ(vb_input_open(&in, specs, 1, &err), -1);
    vb_input_close(&in);
    CHECK(strstr(err.msg, "eoa.h5: /prompts: its data (320 bytes at byte") != NULL);
    CHECK(strstr(err.msg, "lies past the end of the file") != NULL);
    fprintf(stderr, "  (message: %s)\n", err.msg);
}

static void test_unpack_names_invalid_utf8(void)
{
    const char *path = test_path(dir, "latin1.h5"), *out = test_path(dir, "latin1.jsonl");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const char *v[] = {"fine", "caf\xe9 au lait"};
    put_vlen_strings(f, "prompts", v, 2);
    H5Fclose(f);

    vb_err err = {{0}};
    CHECK_INT_EQ(vb_unpack(path, out, &err), -1);
    CHECK(strstr(err.msg, "latin1.h5: /prompts: row 1: not valid UTF-8 (byte 4)") != NULL);
    fprintf(stderr, "  (message: %s)\n", err.msg);
}

/* The same in an output file: a row whose /completions or /error is not
 * UTF-8 is refused naming the dataset and row (the key was left out of
 * that row's JSON without a word, exit 0: a completion lost silently). */
static void test_unpack_output_names_invalid_utf8(void)
{
    static const struct { const char *file, *completion, *error, *want; } cases[] = {
        {"badcompletion.h5", "caf\xe9", "", "badcompletion.h5: /completions: row 4: not valid UTF-8 (byte 4)"},
        {"baderror.h5", "fine", "bad \xff", "baderror.h5: /error: row 4: not valid UTF-8 (byte 5)"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *path = test_path(dir, cases[c].file), *out = test_path(dir, "bad-out.jsonl");
        vb_err err = {{0}};
        vb_results r;
        CHECK_INT_EQ(vb_results_init(&r, 6, 1, -1, VB_ID_STRING, &err), 0);
        for (int64_t i = 0; i < 6; i++) {
            vb_output_row w = test_row(i, 0, -1);
            if (i == 4) {
                w.completion = (char *)cases[c].completion;
                w.error = (char *)cases[c].error;
            }
            CHECK_INT_EQ(vb_results_put(&r, &w, &err), 0);
        }
        vb_run_settings s = test_settings();
        s.input_rows = 6;
        json_t *sj = vb_run_settings_json(&s);
        vb_output_meta meta = {.settings = sj, .dp = 1, .version = "t", .complete = true};
        CHECK_INT_EQ(vb_output_write(path, &meta, &r, &err), 0);
        json_decref(sj);
        vb_results_free(&r);

        CHECK_INT_EQ(vb_unpack(path, out, &err), -1);
        CHECK(strstr(err.msg, cases[c].want) != NULL);
        CHECK(access(out, F_OK) != 0); /* nothing half written left behind */
        fprintf(stderr, "  (message: %s)\n", err.msg);
    }
}

/* A logprob that is not a finite number (another writer's -inf for a
 * token of probability 0, or a NaN) has no JSON form: jansson's
 * json_real refuses it, and unpack left it out of the array without a
 * word, so every later logprob sat beside the wrong token. It is null
 * now, in its place. */
static void test_unpack_output_nonfinite_logprobs(void)
{
    const char *path = test_path(dir, "inf.h5"), *out = test_path(dir, "inf.jsonl");
    vb_err err = {{0}};
    vb_results r;
    CHECK_INT_EQ(vb_results_init(&r, 2, 1, 1, VB_ID_NONE, &err), 0);
    int32_t ids[4] = {5, 6, 7, 8}, top_ids[4] = {5, 9, 7, 8};
    float lp[4] = {-0.125f, -INFINITY, NAN, -0.5f}, top_lp[4] = {-0.125f, NAN, -0.25f, -0.5f};
    for (int64_t i = 0; i < 2; i++) {
        vb_output_row w = {.index = i, .completion = "x", .output_ids = ids, .n_output_ids = 4,
                           .completion_tokens = 4, .finish_reason = VB_FINISH_LENGTH,
                           .error = "", .logprobs = lp, .top_ids = top_ids,
                           .top_logprobs = top_lp};
        CHECK_INT_EQ(vb_results_put(&r, &w, &err), 0);
    }
    vb_run_settings s = test_settings();
    s.input_rows = 2;
    s.logprobs = 1;
    json_t *sj = vb_run_settings_json(&s);
    vb_output_meta meta = {.settings = sj, .dp = 1, .version = "t", .complete = true};
    CHECK_INT_EQ(vb_output_write(path, &meta, &r, &err), 0);
    json_decref(sj);
    vb_results_free(&r);

    CHECK_INT_EQ(vb_unpack(path, out, &err), 0);
    json_error_t je;
    json_t *row = json_load_file(out, JSON_DISABLE_EOF_CHECK, &je);
    CHECK(row != NULL);
    json_t *l = json_object_get(row, "logprobs"), *t = json_object_get(row, "top_logprobs");
    CHECK_INT_EQ((int)json_array_size(l), 4);
    CHECK(json_real_value(json_array_get(l, 0)) == -0.125);
    CHECK(json_is_null(json_array_get(l, 1)) && json_is_null(json_array_get(l, 2)));
    CHECK(json_real_value(json_array_get(l, 3)) == -0.5);
    CHECK_INT_EQ((int)json_array_size(t), 4);
    CHECK(json_is_null(json_array_get(json_array_get(t, 1), 0)));
    CHECK(json_real_value(json_array_get(json_array_get(t, 2), 0)) == -0.25);
    json_decref(row);
}

/* A file cut short is said to be cut short, not blamed on another
 * process's file lock (HDF5's reason, "truncated file: ... sblock->...",
 * matched "lock" before session 43). */
static void test_truncated_file_not_a_lock(void)
{
    const char *path = test_path(dir, "cut.h5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const char *v[] = {"a prompt long enough to need its own heap block", "b"};
    put_vlen_strings(f, "prompts", v, 2);
    H5Fclose(f);
    CHECK_INT_EQ(truncate(path, 1000), 0);

    vb_err err = {{0}};
    vb_input in;
    const char *specs[] = {path};
    CHECK_INT_EQ(vb_input_open(&in, specs, 1, &err), -1);
    vb_input_close(&in);
    CHECK(strstr(err.msg, "cut.h5") != NULL);
    CHECK(strstr(err.msg, "shorter than its own header says") != NULL);
    CHECK(strstr(err.msg, "file lock") == NULL);
    fprintf(stderr, "  (message: %s)\n", err.msg);
}

/* A file system that refuses locks is not another process's lock: the
 * hint said "another process has it open for writing" for ENOLCK too,
 * sending users after a writer that did not exist. */
static void test_lock_refused_by_file_system(void)
{
    const char *path = test_path(dir, "nolocks.h5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const char *v[] = {"a", "b"};
    put_vlen_strings(f, "prompts", v, 2);
    CHECK(H5Fclose(f) >= 0);
    const char *specs[] = {path};

    vb_err err = {{0}};
    vb_input in;
    flock_fails_with = ENOLCK;
    CHECK_INT_EQ(vb_input_open(&in, specs, 1, &err), -1);
    flock_fails_with = 0;
    vb_input_close(&in);
    fprintf(stderr, "  (ENOLCK: %s)\n", err.msg);
    CHECK(strstr(err.msg, "nolocks.h5") != NULL);
    CHECK(strstr(err.msg, "another process") == NULL);
    CHECK(strstr(err.msg, "file system refused") != NULL);
    CHECK(strstr(err.msg, "HDF5_USE_FILE_LOCKING=FALSE") != NULL);

    vb_err held = {{0}};
    flock_fails_with = EWOULDBLOCK;
    CHECK_INT_EQ(vb_input_open(&in, specs, 1, &held), -1);
    flock_fails_with = 0;
    vb_input_close(&in);
    fprintf(stderr, "  (EWOULDBLOCK: %s)\n", held.msg);
    CHECK(strstr(held.msg, "another process has it open for writing") != NULL);

    vb_err none = {{0}};
    CHECK_INT_EQ(vb_input_open(&in, specs, 1, &none), 0);
    vb_input_close(&in);
}

#ifdef HAVE_INPUT_CHECK
static void test_check_in_child_and_here(void)
{
    const char *good = test_path(dir, "good.h5"), *outf = test_path(dir, "out.h5");
    hid_t f = H5Fcreate(good, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const char *v[] = {"a", "b", "c"};
    put_vlen_strings(f, "prompts", v, 3);
    H5Fclose(f);
    f = H5Fcreate(outf, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    put_vlen_strings(f, "completions", v, 3);
    H5Fclose(f);

    bool is_output = true;
    vb_err err = {{0}};
    const char *specs[] = {good};
    CHECK_INT_EQ(vb_input_check(specs, 1, false, &is_output, &err), 0);
    CHECK(!is_output);
    is_output = true;
    CHECK_INT_EQ(vb_input_check_isolated(specs, 1, true, 30, &is_output, &err), 0);
    CHECK(!is_output);
    const char *outs[] = {outf};
    CHECK_INT_EQ(vb_input_check_isolated(outs, 1, true, 30, &is_output, &err), 0);
    CHECK(is_output);

    /* An output is no input: the same refusal from the child as here. */
    vb_err here = {{0}}, child = {{0}};
    CHECK_INT_EQ(vb_input_check(outs, 1, false, &is_output, &here), -1);
    CHECK_INT_EQ(vb_input_check_isolated(outs, 1, false, 30, &is_output, &child), -1);
    CHECK_STR_EQ(child.msg, here.msg);
    CHECK(strstr(child.msg, "out.h5: no /prompts") != NULL);
    const char *missing[] = {test_path(dir, "nope.h5")};
    CHECK_INT_EQ(vb_input_check_isolated(missing, 1, false, 30, &is_output, &child), -1);
    CHECK(strstr(child.msg, "nope.h5: no such file") != NULL);
}
#endif

int main(int argc, char **argv)
{
#ifdef HAVE_INPUT_CHECK
    vb_input_check_register_child();
    if (argc > 1 && strcmp(argv[1], VB_INPUT_CHECK_COMMAND) == 0)
        return vb_input_check_main(argc - 1, argv + 1);
#else
    (void)argc, (void)argv;
#endif
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    dir = test_tmpdir();
    RUN_TEST(test_ids_outside_int32);
    RUN_TEST(test_absurd_row_count);
    RUN_TEST(test_dimension_beyond_storage);
#if H5_VERSION_GE(1, 10, 2)
    RUN_TEST(test_checksum_failure_named);
#endif
    RUN_TEST(test_unpack_names_invalid_utf8);
    RUN_TEST(test_unpack_output_names_invalid_utf8);
    RUN_TEST(test_unpack_output_nonfinite_logprobs);
    RUN_TEST(test_heap_index_past_collection);
    RUN_TEST(test_heap_free_space_of_size_zero);
    RUN_TEST(test_length_differs_from_object);
    RUN_TEST(test_data_past_end_of_allocation);
    RUN_TEST(test_truncated_file_not_a_lock);
    RUN_TEST(test_lock_refused_by_file_system);
#ifdef HAVE_INPUT_CHECK
    RUN_TEST(test_check_in_child_and_here);
#endif
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_summary();
}

/* safetensors reader: header checks, row and column reads, conversions.
 * Files are built here byte by byte, so each case states exactly what is
 * on disk. Reference values: fp16/bf16 bit patterns from IEEE 754 (0x7bff =
 * 65504, 0x3c00 = 1.0, bf16 0x3f80 = 1.0); conversions are exact, so every
 * comparison is exact (tolerance 0). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "model/safetensors.h"

/* Writes 8-byte length + header + data to a temp file; returns its path. */
static char *write_st(const char *header, const void *data, size_t n)
{
    static char path[64];
    strcpy(path, "/tmp/vb_test_st_XXXXXX");
    int fd = mkstemp(path);
    uint64_t len = strlen(header);
    uint8_t le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(len >> (8 * i));
    CHECK(write(fd, le, 8) == 8);
    CHECK(write(fd, header, len) == (ssize_t)len);
    if (n)
        CHECK(write(fd, data, n) == (ssize_t)n);
    close(fd);
    return path;
}

static void test_f32_rows_cols_and_fp16_clamp(void)
{
    float v[6] = {1.0f, 1e5f, -2.5f, -1e6f, 7e4f, 0.5f}; /* [2, 3] */
    /* header length 63: not a multiple of 8, so the data is unaligned */
    char *p = write_st("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}      ",
                       v, sizeof v);
    safetensors st;
    vb_err err;
    CHECK_INT_EQ(st_open_file(&st, p, &err), 0);
    const st_tensor *t = st_find(&st, "w");
    CHECK(t != NULL);
    CHECK(st_find(&st, "x") == NULL);
    CHECK_INT_EQ(t->rows, 2);
    CHECK_INT_EQ(t->cols, 3);
    float f[6];
    CHECK_INT_EQ(st_read_rows(&st, t, 1, 1, VB_W_F32, f, NULL, &err), 0);
    CHECK(f[0] == -1e6f && f[1] == 7e4f && f[2] == 0.5f);
    CHECK_INT_EQ(st_read_cols(&st, t, 1, 2, VB_W_F32, f, NULL, &err), 0);
    CHECK(f[0] == 1e5f && f[1] == -2.5f && f[2] == 7e4f && f[3] == 0.5f);
    uint16_t h[6];
    uint64_t oor = 0;
    CHECK_INT_EQ(st_read_rows(&st, t, 0, 2, VB_W_F16, h, &oor, &err), 0);
    CHECK_INT_EQ(oor, 3);
    CHECK_INT_EQ(h[0], 0x3c00);
    CHECK_INT_EQ(h[1], 0x7bff);
    CHECK_INT_EQ(h[3], 0xfbff);
    CHECK_INT_EQ(h[4], 0x7bff);
    CHECK_INT_EQ(st_read_rows(&st, t, 1, 2, VB_W_F32, f, NULL, &err), -1);
    CHECK(strstr(err.msg, "rows [1, 3) outside its 2 rows") != NULL);
    CHECK_INT_EQ(st_read_cols(&st, t, 2, 2, VB_W_F32, f, NULL, &err), -1);
    st_close(&st);
    unlink(p);
}

static void test_bf16_and_unsupported_read(void)
{
    uint16_t d[4] = {0x3f80, 0xc000, 0x0001, 0x0000}; /* bf16 1, -2; I32 1 */
    char *p = write_st("{\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]},"
                       "\"i\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[4,8]},"
                       "\"__metadata__\":{\"format\":\"pt\"}}",
                       d, sizeof d);
    safetensors st;
    vb_err err;
    CHECK_INT_EQ(st_open_file(&st, p, &err), 0);
    CHECK_INT_EQ(st.n_tensors, 2);
    float f[2];
    CHECK_INT_EQ(st_read_rows(&st, st_find(&st, "b"), 0, 2, VB_W_F32, f, NULL, &err), 0);
    CHECK(f[0] == 1.0f && f[1] == -2.0f);
    const st_tensor *i = st_find(&st, "i");
    CHECK_INT_EQ(i->rows, 1);
    CHECK_INT_EQ(st_read_rows(&st, i, 0, 1, VB_W_F32, f, NULL, &err), -1);
    CHECK(strstr(err.msg, "tensor 'i': dtype I32 is not supported") != NULL);
    st_close(&st);
    unlink(p);
}

/* open_error HEADER DATA_LEN EXPECT: opening fails with EXPECT in the message. */
static void open_error(const char *header, size_t n, const char *expect)
{
    uint8_t zeros[64] = {0};
    char *p = write_st(header, zeros, n);
    safetensors st;
    vb_err err = {{0}};
    CHECK_INT_EQ(st_open_file(&st, p, &err), -1);
    if (!strstr(err.msg, expect))
        fprintf(stderr, "  expected '%s' in: %s\n", expect, err.msg);
    CHECK(strstr(err.msg, expect) != NULL);
    CHECK(strchr(err.msg, '\n') == NULL);
    unlink(p);
}

static void test_header_errors(void)
{
    open_error("{\"a\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,2]},"
               "\"a\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[2,4]}}", 4, "duplicate");
    open_error("{\"a\":", 0, "not valid JSON");
    open_error("[1,2]", 0, "not a JSON object");
    open_error("{\"a\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[2,0]}}", 4,
               "are not a byte range");
    open_error("{\"a\":{\"dtype\":\"F16\",\"shape\":[-1],\"data_offsets\":[0,2]}}", 4,
               "shape[0] is not a size");
    open_error("{\"a\":{\"dtype\":\"F16\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,2]}}",
               4, "shape overflows");
    open_error("{\"a\":{\"dtype\":\"F16\",\"shape\":[1]}}", 4, "data_offsets is not [begin, end]");
    open_error("{\"a\":3}", 0, "header entry is not an object");
    open_error("{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},"
               "\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[2,6]}}", 6, "overlap");
}

static void test_tiny_files(void)
{
    vb_err err;
    st_tensor *t = NULL;
    int n = 0;
    uint64_t ds;
    CHECK_INT_EQ(st_parse_header((const uint8_t *)"abc", 3, "f", 0, &t, &n, &ds, &err), -1);
    CHECK(strstr(err.msg, "truncated") != NULL);
    free(t);
}

int main(void)
{
    RUN_TEST(test_f32_rows_cols_and_fp16_clamp);
    RUN_TEST(test_bf16_and_unsupported_read);
    RUN_TEST(test_header_errors);
    RUN_TEST(test_tiny_files);
    return test_summary();
}

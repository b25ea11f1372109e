/* bench_input (src/run/bench_input.c): bench's synthetic prompts.
 * - the log-normal lengths stay inside their clamps, repeat for a seed and
 *   change with it, do not depend on the number of rows, and the two
 *   streams (prompt, output) differ;
 * - over 200,000 draws the realised mean is the closed-form clamped mean
 *   within 1 % (the sample mean's standard error there is ~0.2 %), the
 *   median exp(mu) within 1 %, and ln length has sd 0.8 within 1 % when the
 *   clamps are far away;
 * - the closed form itself against values computed independently with
 *   Python's math.erf (596.8157640 for mean 600 in 16:4096, 298.4078603 for
 *   300 in 1:2048, sigma 0.8), to 1e-4 tokens;
 * - the file, read back by the input reader the run uses: each row's length,
 *   the shared prefix, /max_new_tokens; fixed lengths give the ids of the
 *   LCG the writer documents (the fixed workloads' prompts unchanged). */
#include "harness.h"

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "io/input_reader.h"
#include "run/bench_input.h"

static void test_clamps_and_determinism(void)
{
    enum { N = 5000 };
    static int32_t a[N], b[N], c[N], s1[N], head[100];
    bench_lengths_lognormal(a, N, 600, 16, 4096, 7, 0);
    bench_lengths_lognormal(b, N, 600, 16, 4096, 7, 0);
    bench_lengths_lognormal(c, N, 600, 16, 4096, 8, 0);
    bench_lengths_lognormal(s1, N, 600, 16, 4096, 7, 1);
    bench_lengths_lognormal(head, 100, 600, 16, 4096, 7, 0);
    int in_range = 1, differ_seed = 0, differ_stream = 0, at_min = 0, at_max = 0;
    for (int r = 0; r < N; r++) {
        in_range &= a[r] >= 16 && a[r] <= 4096;
        differ_seed += a[r] != c[r];
        differ_stream += a[r] != s1[r];
        at_min += a[r] == 16;
        at_max += a[r] == 4096;
    }
    CHECK(in_range);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(a, head, sizeof head) == 0); /* row r's length: (seed, r, stream) only */
    CHECK(differ_seed > N * 9 / 10);
    CHECK(differ_stream > N * 9 / 10);
    /* P(X > 4096) = 0.25 %, about 13 of 5000: the upper clamp is used */
    CHECK(at_max > 0 && at_max < 40);
    CHECK(at_min == 0); /* P(X < 16) = 2e-5 */
    /* a narrow range clamps both ways */
    bench_lengths_lognormal(a, N, 300, 250, 350, 7, 1);
    at_min = at_max = 0;
    for (int r = 0; r < N; r++) {
        CHECK(a[r] >= 250 && a[r] <= 350);
        at_min += a[r] == 250;
        at_max += a[r] == 350;
    }
    CHECK(at_min > N / 5 && at_max > N / 5); /* 57 % and 28 % expected */
    /* a range of one length */
    bench_lengths_lognormal(a, 10, 5, 5, 5, 1, 0);
    for (int r = 0; r < 10; r++)
        CHECK_INT_EQ(a[r], 5);
}

static int cmp_i32(const void *x, const void *y)
{
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    return (a > b) - (a < b);
}

static void test_distribution(void)
{
    enum { N = 200000 };
    static int32_t v[N];
    bench_lengths_lognormal(v, N, 600, 16, 4096, 1234, 0);
    double sum = 0;
    for (int r = 0; r < N; r++)
        sum += v[r];
    double want = bench_lognormal_clamped_mean(600, 16, 4096);
    CHECK_NEAR(sum / N, want, 0.01 * want);
    qsort(v, N, sizeof *v, cmp_i32);
    double median = 600 * exp(-0.32); /* exp(mu), mu = ln 600 - 0.8^2 / 2 */
    CHECK_NEAR(v[N / 2], median, 0.01 * median);

    /* far clamps: ln length is the normal of sd sigma */
    bench_lengths_lognormal(v, N, 10000, 1, 1 << 20, 99, 1);
    double s = 0, ss = 0;
    for (int r = 0; r < N; r++) {
        double l = log(v[r]);
        s += l;
        ss += l * l;
    }
    double sd = sqrt(ss / N - (s / N) * (s / N));
    CHECK_NEAR(sd, BENCH_LOGNORMAL_SIGMA, 0.01 * BENCH_LOGNORMAL_SIGMA);
}

static void test_clamped_mean(void)
{
    CHECK_NEAR(bench_lognormal_clamped_mean(600, 16, 4096), 596.8157640, 1e-4);
    CHECK_NEAR(bench_lognormal_clamped_mean(300, 1, 2048), 298.4078603, 1e-4);
    /* clamps far away: the mean itself */
    CHECK_NEAR(bench_lognormal_clamped_mean(100, 1e-9, 1e12), 100, 1e-6);
    /* a range of one value */
    CHECK_NEAR(bench_lognormal_clamped_mean(50, 50, 50), 50, 1e-9);
}

/* Reads every row of `path` with the run's reader. */
static vb_input_row *read_all(const char *path, int64_t n)
{
    vb_input in;
    vb_err err = {{0}};
    const char *specs[] = {path};
    vb_input_row *rows = calloc((size_t)n, sizeof *rows);
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)n);
    for (int64_t r = 0; r < n; r++)
        idx[r] = r;
    int rc = vb_input_open(&in, specs, 1, &err);
    CHECK_INT_EQ(rc, 0);
    if (rc == 0) {
        CHECK_INT_EQ(in.n_rows, n);
        CHECK(in.kind == VB_PROMPT_IDS);
        CHECK_INT_EQ(vb_input_read_rows(&in, idx, n, rows, &err), 0);
    }
    vb_input_close(&in);
    free(idx);
    return rows;
}

static void test_file_lognormal(void)
{
    char path[] = "/tmp/test_bench_input_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    enum { N = 40, PREFIX = 5 };
    int32_t in_lens[N], out_lens[N];
    bench_lengths_lognormal(in_lens, N, 20, 3, 60, 11, 0);
    bench_lengths_lognormal(out_lens, N, 10, 1, 30, 11, 1);
    bench_input_spec spec = {.n_prompts = N, .prefix_len = PREFIX, .input_lens = in_lens,
                             .output_lens = out_lens, .first_id = 0, .n_ids = 100, .seed = 11};
    vb_err err = {{0}};
    CHECK_INT_EQ(bench_input_write(path, &spec, &err), 0);
    vb_input_row *rows = read_all(path, N);
    for (int r = 0; r < N; r++) {
        CHECK_INT_EQ(rows[r].n_ids, PREFIX + in_lens[r]);
        CHECK_INT_EQ(rows[r].max_new_tokens, out_lens[r]);
        CHECK(rows[r].ids && memcmp(rows[r].ids, rows[0].ids, PREFIX * sizeof(int32_t)) == 0);
        for (int k = 0; rows[r].ids && k < rows[r].n_ids; k++)
            CHECK(rows[r].ids[k] >= 0 && rows[r].ids[k] < 100);
    }
    vb_input_rows_free(rows, N);
    free(rows);
    unlink(path);
}

static void test_file_fixed(void)
{
    char path[] = "/tmp/test_bench_input_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    enum { N = 3, LEN = 7 };
    bench_input_spec spec = {.n_prompts = N, .input_len = LEN, .first_id = 10, .n_ids = 50,
                             .seed = 42};
    vb_err err = {{0}};
    CHECK_INT_EQ(bench_input_write(path, &spec, &err), 0);
    vb_input_row *rows = read_all(path, N);
    /* the LCG of bench_input.h, in row order */
    uint64_t x = 42 * 0x9e3779b97f4a7c15ull + 1;
    for (int r = 0; r < N; r++) {
        CHECK_INT_EQ(rows[r].n_ids, LEN);
        CHECK_INT_EQ(rows[r].max_new_tokens, -1); /* no column: --output-len for all */
        for (int k = 0; k < LEN; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            if (rows[r].ids)
                CHECK_INT_EQ(rows[r].ids[k], 10 + (int32_t)((x >> 33) % 50));
        }
    }
    vb_input_rows_free(rows, N);
    free(rows);
    unlink(path);
}

int main(void)
{
    RUN_TEST(test_clamps_and_determinism);
    RUN_TEST(test_distribution);
    RUN_TEST(test_clamped_mean);
    RUN_TEST(test_file_lognormal);
    RUN_TEST(test_file_fixed);
    return test_summary();
}

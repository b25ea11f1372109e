/* The output file on a disk that fills up. meson runs this with
 * enospc_shim.c preloaded and ENOSPC_SHIM_PATH="*full.h5.tmp": writes to
 * the temporary file fail with ENOSPC after a byte budget the test sets
 * (ENOSPC_SHIM_AFTER) before each write. Whatever call meets the full disk
 * (the create, a dataset, the final close), vb_output_write must return -1
 * with one line naming the temporary file, the OS reason and the space the
 * file needs; leave neither the temporary file nor the output; leave no
 * dataset or attribute open; and the program must end with its own status
 * (HDF5 1.10's exit handler used to crash on the file whose close had
 * failed, status 139, which meson reports as a failure of this test). */
#include <hdf5.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "io/output_writer.h"
#include "io_test_util.h"

#define ROWS 400

static const char *dir;

static void fill(vb_results *r)
{
    vb_err err = {{0}};
    CHECK_INT_EQ(vb_results_init(r, ROWS, 1, 2, VB_ID_STRING, &err), 0);
    for (int64_t i = 0; i < ROWS; i++) {
        vb_output_row w = test_row(i, 0, 2);
        CHECK_INT_EQ(vb_results_put(r, &w, &err), 0);
    }
}

static int write_with_budget(const char *path, const vb_results *r, long long budget,
                             vb_err *err)
{
    char b[32];
    snprintf(b, sizeof b, "%lld", budget);
    setenv("ENOSPC_SHIM_AFTER", b, 1);
    vb_output_meta meta = {.dp = 1, .version = "test", .start_time = 1.7e9,
                           .end_time = 1.7e9 + 1};
    return vb_output_write(path, &meta, r, err);
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* Datasets, groups, attributes and named types still open in any file. */
static ssize_t open_objects(void)
{
    return H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_ATTR |
                                             H5F_OBJ_DATATYPE);
}

static void test_every_point_of_failure(void)
{
    vb_results r;
    fill(&r);
    vb_err err = {{0}};
    /* the whole file first (a budget larger than any output), for its size */
    const char *whole = test_path(dir, "whole-full.h5");
    CHECK_INT_EQ(write_with_budget(whole, &r, 1LL << 40, &err), 0);
    long long size = file_size(whole);
    CHECK(size > 4096);
    /* then budgets from nothing (the create fails) to just short of it
     * (the final close fails) */
    const double fraction[] = {0, 0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95, 0.99};
    const char *out = test_path(dir, "out-full.h5");
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    for (size_t k = 0; k < sizeof fraction / sizeof fraction[0]; k++) {
        long long budget = (long long)(fraction[k] * (double)size);
        memset(&err, 0, sizeof err);
        int rc = write_with_budget(out, &r, budget, &err);
        fprintf(stderr, "  budget %lld of %lld bytes: %s\n", budget, size,
                rc ? err.msg : "written (!)");
        CHECK_INT_EQ(rc, -1);
        CHECK(strstr(err.msg, tmp) != NULL);
        CHECK(strstr(err.msg, "No space left on device") != NULL);
        CHECK(strstr(err.msg, "needs about") != NULL);
        CHECK(access(tmp, F_OK) != 0);
        CHECK(access(out, F_OK) != 0);
        CHECK_INT_EQ(open_objects(), 0);
    }
    /* the disk has room again: the same call writes the file */
    CHECK_INT_EQ(write_with_budget(out, &r, 1LL << 40, &err), 0);
    CHECK_INT_EQ(file_size(out), size);
    vb_results back = {0};
    CHECK_INT_EQ(vb_output_read(out, &back, NULL, &err), 0);
    CHECK_INT_EQ(back.n_done, ROWS);
    vb_results_free(&back);
    vb_results_free(&r);
}

int main(void)
{
    if (!getenv("ENOSPC_SHIM_PATH") || !getenv("LD_PRELOAD")) {
        fprintf(stderr, "SKIP: run with enospc_shim preloaded (meson test does)\n");
        return 77;
    }
    dir = test_tmpdir();
    RUN_TEST(test_every_point_of_failure);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_summary();
}

/* vb_refuse_no_directory / vb_refuse_unwritable: a path in an existing
 * directory (also one with no directory part, or at the root) passes; a
 * missing directory, a file in place of the directory and a report that
 * is a directory are refused, naming the path and the cause; nothing is
 * created or truncated by the check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "util/writable.h"

static char dir[] = "/tmp/vb_test_writable_XXXXXX";

static const char *in_dir(const char *name)
{
    static char buf[4][256];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 256, "%s/%s", dir, name);
    return p;
}

static void test_directories(void)
{
    vb_err err = {{0}};
    CHECK_INT_EQ(vb_refuse_no_directory(in_dir("new.h5"), "the output", &err), 0);
    CHECK_INT_EQ(vb_refuse_no_directory("plain-name.h5", "the output", &err), 0); /* "." */
    /* "/": its own rights (root may write there, others not) */
    CHECK_INT_EQ(vb_refuse_no_directory("/x.h5", "the output", &err),
                 access("/", W_OK | X_OK) == 0 ? 0 : -1);
    CHECK_INT_EQ(vb_refuse_no_directory(in_dir("nodir/x.h5"), "the output", &err), -1);
    CHECK(strstr(err.msg, "the output ") && strstr(err.msg, "nodir/x.h5") &&
          strstr(err.msg, "does not exist"));
    FILE *f = fopen(in_dir("file"), "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    CHECK_INT_EQ(vb_refuse_no_directory(in_dir("file/x.h5"), "the output", &err), -1);
    CHECK(strstr(err.msg, "is not a directory") != NULL);
}

static void test_report(void)
{
    vb_err err = {{0}};
    FILE *f = fopen(in_dir("old.json"), "w");
    CHECK(f != NULL);
    if (f) {
        fputs("{}", f);
        fclose(f);
    }
    CHECK_INT_EQ(vb_refuse_unwritable(in_dir("old.json"), "the report", &err), 0);
    struct stat st;
    CHECK(stat(in_dir("old.json"), &st) == 0 && st.st_size == 2); /* not truncated */
    CHECK_INT_EQ(vb_refuse_unwritable(in_dir("new.json"), "the report", &err), 0);
    CHECK(stat(in_dir("new.json"), &st) != 0); /* not created */
    CHECK_INT_EQ(vb_refuse_unwritable(dir, "the report", &err), -1);
    CHECK(strstr(err.msg, "is a directory") != NULL);
    CHECK_INT_EQ(vb_refuse_unwritable(in_dir("nodir/r.json"), "the report", &err), -1);
    CHECK(strstr(err.msg, "the report ") && strstr(err.msg, "does not exist"));
    CHECK_INT_EQ(vb_refuse_unwritable("/dev/null", "the report", &err), 0);
}

int main(void)
{
    if (!mkdtemp(dir))
        return test_skip("mkdtemp failed");
    RUN_TEST(test_directories);
    RUN_TEST(test_report);
    unlink(in_dir("file"));
    unlink(in_dir("old.json"));
    rmdir(dir);
    return test_summary();
}

/* vb_same_file / vb_refuse_same_file: one file reached by its name, ./name,
 * a symlink or a hard link is the same file; a copy, a missing path or a
 * dangling symlink is not; vb_same_path takes a missing path by its
 * directory and name, and a dangling symlink as its target. vb_refuse_special_output: a directory, a FIFO
 * or a symlink to one is refused as an output; a regular file, a symlink
 * to one and a missing path are not. */
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "util/same_file.h"

static char dir[] = "/tmp/vb_test_same_XXXXXX";
static char a[128], dot_a[160], sym[128], hard[128], copy[128], missing[128], dangling[128];
static char fifo[128], fifo_link[128], subdir[128];
static char dangling_abs[128], dangling_chain[128], link_loop[128];

static void write_file(const char *p, const char *text)
{
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        CHECK_INT_EQ(fclose(f), 0);
    }
}

static void test_same(void)
{
    CHECK(vb_same_file(a, a));
    CHECK(vb_same_file(a, dot_a));
    CHECK(vb_same_file(a, sym));
    CHECK(vb_same_file(sym, a));
    CHECK(vb_same_file(a, hard));
}

static void test_not_same(void)
{
    CHECK(!vb_same_file(a, copy));       /* same bytes, another file */
    CHECK(!vb_same_file(a, missing));
    CHECK(!vb_same_file(missing, missing));
    CHECK(!vb_same_file(dangling, missing));
}

/* vb_same_path: also for paths that do not exist yet (a run's outputs at
 * its start), by directory and last name. */
static void test_same_path(void)
{
    CHECK(vb_same_path(a, sym));
    CHECK(vb_same_path(missing, missing));
    char dot_missing[192], sub_missing[192];
    snprintf(dot_missing, sizeof dot_missing, "%s/./missing", dir);
    snprintf(sub_missing, sizeof sub_missing, "%s/missing", subdir);
    CHECK(vb_same_path(missing, dot_missing));
    CHECK(!vb_same_path(missing, sub_missing)); /* same name, another directory */
    CHECK(!vb_same_path(missing, copy));
    CHECK(!vb_same_path(a, copy));
    CHECK(!vb_same_path("", ""));
    /* a dangling symlink is where its target will be: `report.json ->
     * out.h5` before out.h5 exists is out.h5 (relative and absolute
     * targets, through a chain of two links) */
    CHECK(vb_same_path(dangling, missing));
    CHECK(vb_same_path(missing, dangling));
    CHECK(vb_same_path(dangling_abs, missing));
    CHECK(vb_same_path(dangling_chain, dot_missing));
    CHECK(!vb_same_path(dangling, copy));
    CHECK(!vb_same_path(link_loop, missing)); /* a loop ends, naming itself */
}

static void test_refuse_names_both(void)
{
    vb_err err = {{0}};
    CHECK_INT_EQ(vb_refuse_same_file(a, copy, "the output", &err), 0);
    CHECK_INT_EQ(vb_refuse_same_file(a, missing, "the output", &err), 0);
    CHECK_INT_EQ(vb_refuse_same_file(a, sym, "the output", &err), -1);
    char want[512];
    snprintf(want, sizeof want, "the output %s and the input %s are the same file", sym, a);
    if (!strstr(err.msg, want))
        fprintf(stderr, "  got: %s\n", err.msg);
    CHECK(strstr(err.msg, want) != NULL);
}

static void test_special_outputs(void)
{
    vb_err err = {{0}};
    CHECK_INT_EQ(vb_refuse_special_output(a, "the output", &err), 0);
    CHECK_INT_EQ(vb_refuse_special_output(missing, "the output", &err), 0);
    /* a link to a regular file: the rename would replace the link, not
     * write the file it names (session 44) */
    CHECK_INT_EQ(vb_refuse_special_output(sym, "the output", &err), -1);
    CHECK(strstr(err.msg, "is a symbolic link (to ") != NULL);
    CHECK_INT_EQ(vb_refuse_special_output(subdir, "the output", &err), -1);
    CHECK(strstr(err.msg, "a directory") != NULL);
    CHECK_INT_EQ(vb_refuse_special_output(fifo, "the output", &err), -1);
    CHECK(strstr(err.msg, "a FIFO") != NULL);
    CHECK(strstr(err.msg, fifo) != NULL);
    CHECK_INT_EQ(vb_refuse_special_output(fifo_link, "the output", &err), -1);
    CHECK_INT_EQ(vb_refuse_special_output("/dev/null", "the output", &err), -1);
    CHECK(strstr(err.msg, "a device") != NULL);
}

int main(void)
{
    if (!mkdtemp(dir))
        return test_skip("mkdtemp failed");
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(dot_a, sizeof dot_a, "%s/./a", dir);
    snprintf(sym, sizeof sym, "%s/sym", dir);
    snprintf(hard, sizeof hard, "%s/hard", dir);
    snprintf(copy, sizeof copy, "%s/copy", dir);
    snprintf(missing, sizeof missing, "%s/missing", dir);
    snprintf(dangling, sizeof dangling, "%s/dangling", dir);
    write_file(a, "x");
    write_file(copy, "x");
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    snprintf(fifo_link, sizeof fifo_link, "%s/fifo_link", dir);
    snprintf(subdir, sizeof subdir, "%s/subdir", dir);
    snprintf(dangling_abs, sizeof dangling_abs, "%s/dangling_abs", dir);
    snprintf(dangling_chain, sizeof dangling_chain, "%s/dangling_chain", dir);
    snprintf(link_loop, sizeof link_loop, "%s/link_loop", dir);
    if (symlink("a", sym) != 0 || link(a, hard) != 0 || symlink("missing", dangling) != 0 ||
        mkfifo(fifo, 0600) != 0 || symlink("fifo", fifo_link) != 0 || mkdir(subdir, 0700) != 0 ||
        symlink(missing, dangling_abs) != 0 || symlink("dangling", dangling_chain) != 0 ||
        symlink("link_loop", link_loop) != 0)
        return test_skip("cannot make links, a FIFO or a directory in /tmp");
    RUN_TEST(test_same);
    RUN_TEST(test_not_same);
    RUN_TEST(test_same_path);
    RUN_TEST(test_refuse_names_both);
    RUN_TEST(test_special_outputs);
    const char *all[] = {a,    sym,       hard,         copy,           dangling,
                         fifo, fifo_link, dangling_abs, dangling_chain, link_loop};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        unlink(all[i]);
    rmdir(subdir);
    rmdir(dir);
    return test_summary();
}

/* The environment knobs (util/env.h): the table's own consistency, every
 * default, values at and beyond each range's ends, the accepted spellings,
 * and the one-line error for a bad value (the variable, the value and the
 * accepted range). Over a made-up environment, and once over the real one. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "util/env.h"

/* A made-up environment: NAME=VALUE strings, NULL-terminated. */
static const char *lookup(const char *name, void *ctx)
{
    size_t n = strlen(name);
    for (const char *const *e = ctx; *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

/* Reads the one-variable environment "assignment"; returns vb_tuning_read's status. */
static int read_one(const char *assignment, vb_tuning *t, vb_err *err)
{
    const char *env[] = {assignment, NULL};
    err->msg[0] = '\0';
    return vb_tuning_read(t, lookup, env, err);
}

static void check_refused(const char *assignment, const char *want)
{
    vb_tuning t;
    vb_err err;
    int rc = read_one(assignment, &t, &err);
    CHECK_INT_EQ(rc, -1);
    /* the message starts with the variable (and, but for paths, its value) */
    size_t name_len = strcspn(assignment, "=");
    CHECK(strncmp(err.msg, assignment, name_len) == 0);
    if (!strstr(err.msg, want)) {
        fprintf(stderr, "  %s: \"%s\" lacks \"%s\"\n", assignment, err.msg, want);
        CHECK(0);
    }
}

static void test_table(void)
{
    size_t n = 0;
    const vb_knob *k = vb_knobs(&n);
    CHECK(n >= 21);
    for (size_t i = 0; i < n; i++) {
        CHECK(k[i].name && *k[i].name && k[i].what && *k[i].what && k[i].dflt);
        CHECK(k[i].offset < sizeof(vb_tuning));
        if (k[i].type == VB_KNOB_INT || k[i].type == VB_KNOB_LONG || k[i].type == VB_KNOB_REAL)
            CHECK(k[i].lo <= k[i].hi);
        CHECK((k[i].type == VB_KNOB_WORD) == (k[i].words != NULL));
        for (size_t j = 0; j < i; j++) {
            CHECK(strcmp(k[i].name, k[j].name) != 0);
            CHECK(k[i].offset != k[j].offset);
        }
    }
}

static void test_defaults(void)
{
    vb_tuning t, r;
    vb_tuning_defaults(&t); /* aborts on a default the table cannot parse */
    CHECK(!t.profile && !t.no_gemv && !t.no_fused_gemv && !t.no_rope_fusion &&
          !t.attention_per_token && !t.decode_whole_groups && !t.prefill_wmma &&
          !t.prefill_mma16 && !t.no_pdl && !t.host_sampler);
    CHECK_INT_EQ(t.gemv_max_rows, 2);
    CHECK_INT_EQ(t.sampler_pass1_chunks, 0);
    CHECK_INT_EQ(t.weight_staging_bytes, 64L << 20);
    CHECK_INT_EQ(t.weight_staging_buffers, 2);
    CHECK_INT_EQ(t.weight_read_threads, 0);
    CHECK_INT_EQ(t.cpu_threads, 0);
    CHECK_INT_EQ(t.step_sync, VB_SYNC_EVENTS);
    CHECK_NEAR(t.journal_flush_seconds, 5.0, 0);
    CHECK_STR_EQ(t.gpu_peaks, "");
    CHECK_STR_EQ(t.tmpdir, "");
    /* an empty environment, and empty values (unset, as before), give them */
    const char *none[] = {NULL};
    const char *empty[] = {"VB_GEMV_MAX_ROWS=", "VB_NO_GEMV=", "VB_STEP_SYNC=", "TMPDIR=", NULL};
    vb_err err;
    CHECK_INT_EQ(vb_tuning_read(&r, lookup, none, &err), 0);
    CHECK(memcmp(&r, &t, sizeof t) == 0);
    CHECK_INT_EQ(vb_tuning_read(&r, lookup, empty, &err), 0);
    CHECK(memcmp(&r, &t, sizeof t) == 0);
}

static void test_values(void)
{
    const char *env[] = {
        "VB_PROFILE=1", "VB_NO_GEMV=yes", "VB_NO_FUSED_GEMV=TRUE", "VB_NO_ROPE_FUSION=on",
        "VB_ATTENTION_PER_TOKEN=1", "VB_DECODE_WHOLE_GROUPS=1", "VB_PREFILL_WMMA=1",
        "VB_PREFILL_MMA16=1", "VB_PREFILL_WGMMA=2",
        "VB_NO_PDL=1", "VB_HOST_SAMPLER=1", "VB_GEMV_MAX_ROWS=8", "VB_SAMPLER_PASS1_CHUNKS=64",
        "VB_WEIGHT_STAGING_BYTES=4096", "VB_WEIGHT_STAGING_BUFFERS=3",
        "VB_WEIGHT_READ_THREADS=7", "VB_CPU_THREADS=4096", "VB_STEP_SYNC=events",
        "VB_JOURNAL_FLUSH_SECONDS=0.2", "VB_GPU_PEAKS=/site/peaks.json", "TMPDIR=/scratch",
        "HOME=/home/u", "XDG_CACHE_HOME=/cache", NULL};
    vb_tuning t;
    vb_err err;
    CHECK_INT_EQ(vb_tuning_read(&t, lookup, env, &err), 0);
    CHECK(t.profile && t.no_gemv && t.no_fused_gemv && t.no_rope_fusion &&
          t.attention_per_token && t.decode_whole_groups && t.prefill_wmma && t.prefill_mma16 &&
          t.no_pdl && t.host_sampler);
    CHECK_INT_EQ(t.prefill_wgmma, 2);
    CHECK_INT_EQ(t.gemv_max_rows, 8);
    CHECK_INT_EQ(t.sampler_pass1_chunks, 64);
    CHECK_INT_EQ(t.weight_staging_bytes, 4096);
    CHECK_INT_EQ(t.weight_staging_buffers, 3);
    CHECK_INT_EQ(t.weight_read_threads, 7);
    CHECK_INT_EQ(t.cpu_threads, 4096);
    CHECK_INT_EQ(t.step_sync, VB_SYNC_EVENTS);
    CHECK_NEAR(t.journal_flush_seconds, 0.2, 0);
    CHECK_STR_EQ(t.gpu_peaks, "/site/peaks.json");
    CHECK_STR_EQ(t.tmpdir, "/scratch");
    CHECK_STR_EQ(t.home, "/home/u");
    CHECK_STR_EQ(t.xdg_cache_home, "/cache");

    /* the other ends of the ranges, and the off spellings */
    const char *low[] = {"VB_PROFILE=0", "VB_NO_GEMV=no", "VB_NO_PDL=off", "VB_NO_ROPE_FUSION=false",
                         "VB_GEMV_MAX_ROWS=0", "VB_SAMPLER_PASS1_CHUNKS=1", "VB_STEP_SYNC=0",
                         "VB_CPU_THREADS=1", "VB_JOURNAL_FLUSH_SECONDS=86400", NULL};
    CHECK_INT_EQ(vb_tuning_read(&t, lookup, low, &err), 0);
    CHECK(!t.profile && !t.no_gemv && !t.no_pdl && !t.no_rope_fusion);
    CHECK_INT_EQ(t.gemv_max_rows, 0);
    CHECK_INT_EQ(t.sampler_pass1_chunks, 1);
    CHECK_INT_EQ(t.step_sync, VB_SYNC_NONE);
    CHECK_INT_EQ(t.cpu_threads, 1);
    CHECK_NEAR(t.journal_flush_seconds, 86400, 0);
    /* the 0-or-1 number knobs are switches as the bool ones are */
    const char *words_off[] = {"VB_QGEMV_EPILOGUE=off", "VB_QGEMV_X_SHARED=no",
                               "VB_QGEMV_BLOCKS=FALSE", "VB_QGEMV_KS_BALANCE=0", NULL};
    CHECK_INT_EQ(vb_tuning_read(&t, lookup, words_off, &err), 0);
    CHECK(!t.qgemv_epilogue && !t.qgemv_x_shared && !t.qgemv_blocks && !t.qgemv_ks_balance);
    const char *words_on[] = {"VB_QGEMV_EPILOGUE=on", "VB_QGEMV_X_SHARED=yes",
                              "VB_QGEMV_BLOCKS=true", "VB_QGEMV_KS_BALANCE=1", NULL};
    CHECK_INT_EQ(vb_tuning_read(&t, lookup, words_on, &err), 0);
    CHECK_INT_EQ(t.qgemv_epilogue, 1);
    CHECK_INT_EQ(t.qgemv_x_shared, 1);
    CHECK_INT_EQ(t.qgemv_blocks, 1);
    CHECK_INT_EQ(t.qgemv_ks_balance, 1);
    const char *wait[] = {"VB_STEP_SYNC=1", NULL};
    CHECK_INT_EQ(vb_tuning_read(&t, lookup, wait, &err), 0);
    CHECK_INT_EQ(t.step_sync, VB_SYNC_WAIT);
}

static void test_refused(void)
{
    check_refused("VB_GEMV_MAX_ROWS=9", "want a whole number from 0 to 8");
    check_refused("VB_GEMV_MAX_ROWS=-1", "from 0 to 8");
    check_refused("VB_GEMV_MAX_ROWS=two", "from 0 to 8");
    check_refused("VB_GEMV_MAX_ROWS=2x", "VB_GEMV_MAX_ROWS=2x: want");
    check_refused("VB_GEMV_MAX_ROWS=auto", "from 0 to 8"); /* "auto" is the table's, not a user's */
    check_refused("VB_SAMPLER_PASS1_CHUNKS=0", "from 1 to 64");
    check_refused("VB_SAMPLER_PASS1_CHUNKS=65", "from 1 to 64");
    check_refused("VB_SAMPLER_PASS1_CHUNKS=auto", "from 1 to 64");
    check_refused("VB_NO_GEMV=maybe", "want 0 or 1");
    check_refused("VB_PROFILE=2", "want 0 or 1");
    check_refused("VB_HOST_SAMPLER=-1", "want 0 or 1");
    check_refused("VB_NORM_FOLD=2", "want 0 or 1 (or true/false, yes/no, on/off)");
    check_refused("VB_QGEMV_EPILOGUE=2", "want 0 or 1 (or true/false, yes/no, on/off)");
    check_refused("VB_QGEMV_EPILOGUE=maybe", "VB_QGEMV_EPILOGUE=maybe: want 0 or 1");
    check_refused("VB_STEP_SYNC=2", "want one of 1, 0, events");
    check_refused("VB_STEP_SYNC=event", "want one of 1, 0, events");
    check_refused("VB_JOURNAL_FLUSH_SECONDS=0", "want a number above 0 and at most 86400");
    check_refused("VB_JOURNAL_FLUSH_SECONDS=-1", "above 0");
    check_refused("VB_JOURNAL_FLUSH_SECONDS=nan", "above 0");
    check_refused("VB_JOURNAL_FLUSH_SECONDS=inf", "above 0");
    check_refused("VB_JOURNAL_FLUSH_SECONDS=86401", "at most 86400");
    check_refused("VB_JOURNAL_FLUSH_SECONDS=5s", "above 0");
    check_refused("VB_CPU_THREADS=0", "from 1 to 4096");
    check_refused("VB_CPU_THREADS=4097", "from 1 to 4096");
    check_refused("VB_WEIGHT_STAGING_BYTES=0", "from 1 to 1099511627776");
    check_refused("VB_WEIGHT_STAGING_BYTES=99999999999999999999999", "from 1 to");
    check_refused("VB_WEIGHT_STAGING_BYTES=64MiB", "from 1 to");
    check_refused("VB_WEIGHT_STAGING_BUFFERS=0", "from 1 to 1024");
    check_refused("VB_WEIGHT_READ_THREADS=0", "from 1 to 1024");

    /* a path too long to copy: refused, not cut short */
    size_t len = VB_TUNING_PATH_MAX + 16;
    char *long_path = malloc(len);
    strcpy(long_path, "TMPDIR=");
    memset(long_path + 7, 'a', len - 8);
    long_path[len - 1] = '\0';
    check_refused(long_path, "want at most 4095 bytes");
    free(long_path);

    /* the first bad variable stops the reading; earlier good ones do not matter */
    const char *two[] = {"VB_NO_GEMV=1", "VB_CPU_THREADS=x", NULL};
    vb_tuning t;
    vb_err err;
    CHECK_INT_EQ(vb_tuning_read(&t, lookup, two, &err), -1);
    CHECK(strstr(err.msg, "VB_CPU_THREADS=x") != NULL);
}

/* vb_tuning_from_env reads the process environment. */
static void test_process_environment(void)
{
    vb_tuning t;
    vb_err err;
    setenv("VB_GEMV_MAX_ROWS", "5", 1);
    CHECK_INT_EQ(vb_tuning_from_env(&t, &err), 0);
    CHECK_INT_EQ(t.gemv_max_rows, 5);
    setenv("VB_GEMV_MAX_ROWS", "50", 1);
    CHECK_INT_EQ(vb_tuning_from_env(&t, &err), -1);
    CHECK(strstr(err.msg, "VB_GEMV_MAX_ROWS=50") != NULL);
    unsetenv("VB_GEMV_MAX_ROWS");
}

int main(void)
{
    RUN_TEST(test_table);
    RUN_TEST(test_defaults);
    RUN_TEST(test_values);
    RUN_TEST(test_refused);
    RUN_TEST(test_process_environment);
    return test_summary();
}

/* quant_for_rows (src/model/quant_rows.c, internal to src/model and its
 * tests): every row decoded exactly once however many threads take part,
 * each thread's fp16 range count added in, and on failure the error of
 * the first failing chunk in row order. The row function holds each
 * thread until three have a chunk (or 5 s pass, if a thread could not
 * start), so the work is spread over the threads however fast the caller
 * is. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "model/quant_internal.h"

typedef struct rows_probe {
    atomic_int arrived;
    int wait_for;           /* threads to hold for */
    atomic_int seen[1024];  /* times each row was decoded */
    int64_t fail_from;      /* chunks starting at or past this row fail */
} rows_probe;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int probe_rows(const quant_req *rq, void *ctx, int64_t o0, int64_t o1, vb_err *err)
{
    rows_probe *p = ctx;
    if (atomic_fetch_add(&p->arrived, 1) < p->wait_for) {
        double t0 = now();
        while (atomic_load(&p->arrived) < p->wait_for && now() - t0 < 5.0)
            ;
    }
    for (int64_t o = o0; o < o1; o++)
        atomic_fetch_add(&p->seen[o], 1);
    *rq->oor += (uint64_t)(o1 - o0); /* this thread's counter */
    if (o0 >= p->fail_from)
        return vb_err_set(err, "chunk at row %lld failed", (long long)o0);
    return 0;
}

/* wait_for: how many threads to hold for (at most the chunks there are) */
static void run(int64_t rows, int threads, int wait_for, int64_t fail_from, int want_rc,
                const char *want_msg)
{
    static rows_probe p;
    memset(&p, 0, sizeof p);
    p.wait_for = wait_for;
    p.fail_from = fail_from;
    uint64_t oor = 0;
    quant_req r = {.no = rows, .threads = threads, .oor = &oor, .dir = "d", .prefix = "t"};
    vb_err err = {{0}};
    int rc = quant_for_rows(&r, probe_rows, &p, &err);
    CHECK_INT_EQ(rc, want_rc);
    if (want_rc == 0) {
        int64_t once = 0;
        for (int64_t o = 0; o < rows; o++)
            once += atomic_load(&p.seen[o]) == 1;
        CHECK_INT_EQ(once, rows);
        CHECK_INT_EQ((long long)oor, (long long)rows); /* every thread's count added */
    } else if (!strstr(err.msg, want_msg)) {
        fprintf(stderr, "  error '%s', want '%s'\n", err.msg, want_msg);
        CHECK(0);
    }
}

static void test_every_row_once(void)
{
    run(1000, 1, 1, 1 << 30, 0, NULL);
    run(1000, 3, 3, 1 << 30, 0, NULL);
    run(1000, 7, 3, 1 << 30, 0, NULL);
    run(5, 3, 1, 1 << 30, 0, NULL); /* fewer rows than a chunk: one thread */
    run(0, 3, 0, 1 << 30, 0, NULL);
}

static void test_first_error_in_row_order(void)
{
    /* 3 threads, 1000 rows: chunks of 88 rows (about 4 a thread, a
     * multiple of 8); rows from 176 fail, so chunk 2 (row 176) is the
     * first failing one in row order whichever thread ran it and however
     * many later chunks failed too */
    run(1000, 3, 3, 176, -1, "chunk at row 176 failed");
    /* one thread: chunks of 256 rows (at most QUANT_CHUNK_MAX) */
    run(1000, 1, 1, 176, -1, "chunk at row 256 failed");
}

int main(void)
{
    RUN_TEST(test_every_row_once);
    RUN_TEST(test_first_error_in_row_order);
    return test_summary();
}

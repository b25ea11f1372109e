/* quant_for_rows (quant_internal.h): a projection's output rows decoded
 * in chunks on a few threads.
 *
 * Why threads: decoding a checkpoint's packed words into one byte a value
 * and packing them again is a few nanoseconds a value on one core, and a
 * 7B model has ~6.5 billion of them: most of a quantized model's load
 * time (RESULTS.md, session 29) while the disk and the GPU wait.
 *
 * Chunks are taken in row order from a shared counter, so a slow chunk
 * does not hold the others; each chunk's rows are written by one thread
 * only, which makes the result independent of the thread count. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "model/quant_internal.h"

/* Rows a chunk: about 4 chunks a thread, so the threads finish close
 * together, and at most this many; a multiple of 8 (AWQ's words: a slice
 * that starts on a word keeps the reader's whole-word path in every
 * chunk). */
#define QUANT_CHUNK_MAX 256

typedef struct rows_job {
    const quant_req *r;
    quant_rows_fn fn;
    void *ctx;
    int64_t chunk_rows, n_chunks;
    atomic_llong next;
    atomic_bool failed;
} rows_job;

typedef struct rows_worker {
    rows_job *job;
    uint64_t oor;
    int64_t failed_chunk; /* -1: none */
    vb_err err;
} rows_worker;

static void *rows_worker_main(void *arg)
{
    rows_worker *w = arg;
    rows_job *j = w->job;
    quant_req rq = *j->r;
    rq.oor = &w->oor;
    while (!atomic_load(&j->failed)) {
        int64_t c = atomic_fetch_add(&j->next, 1);
        if (c >= j->n_chunks)
            break;
        int64_t o0 = c * j->chunk_rows;
        int64_t o1 = o0 + j->chunk_rows < j->r->no ? o0 + j->chunk_rows : j->r->no;
        if (j->fn(&rq, j->ctx, o0, o1, &w->err) != 0) {
            w->failed_chunk = c;
            atomic_store(&j->failed, true);
        }
    }
    return NULL;
}

int quant_for_rows(const quant_req *r, quant_rows_fn fn, void *ctx, vb_err *err)
{
    int64_t no = r->no;
    int threads = r->threads > 1 ? r->threads : 1;
    int64_t rows = (no + threads * 4 - 1) / (threads * 4);
    rows = (rows + 7) / 8 * 8;
    if (rows > QUANT_CHUNK_MAX)
        rows = QUANT_CHUNK_MAX;
    rows_job job = {.r = r, .fn = fn, .ctx = ctx, .chunk_rows = rows,
                    .n_chunks = no > 0 ? (no + rows - 1) / rows : 0};
    atomic_init(&job.next, 0);
    atomic_init(&job.failed, false);
    if (threads > job.n_chunks)
        threads = job.n_chunks > 0 ? (int)job.n_chunks : 1;
    rows_worker *w = calloc((size_t)threads, sizeof *w);
    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    bool *started = calloc((size_t)threads, sizeof *started);
    if (!w || !tid || !started) {
        free(w);
        free(tid);
        free(started);
        return vb_err_set(err, "%s: '%s': out of memory", r->dir, r->prefix);
    }
    for (int t = 0; t < threads; t++)
        w[t] = (rows_worker){.job = &job, .failed_chunk = -1};
    /* the caller is worker 0; a thread that cannot start leaves its
     * share to the others */
    for (int t = 1; t < threads; t++)
        started[t] = pthread_create(&tid[t], NULL, rows_worker_main, &w[t]) == 0;
    rows_worker_main(&w[0]);
    for (int t = 1; t < threads; t++)
        if (started[t])
            pthread_join(tid[t], NULL);
    int first = -1;
    for (int t = 0; t < threads; t++) {
        if (r->oor)
            *r->oor += w[t].oor;
        if (w[t].failed_chunk >= 0 && (first < 0 || w[t].failed_chunk < w[first].failed_chunk))
            first = t;
    }
    int rc = 0;
    if (first >= 0) {
        *err = w[first].err;
        rc = -1;
    }
    free(w);
    free(tid);
    free(started);
    return rc;
}

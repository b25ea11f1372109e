/* Finished rows on their way to world rank 0 (see run_collect.h). */
#include "run/run_collect.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mpi/mpi_check.h"

void run_nap(void)
{
    struct timespec ts = {0, 200 * 1000}; /* 0.2 ms */
    nanosleep(&ts, NULL);
}

int run_sleepy_barrier(MPI_Comm comm)
{
    MPI_Request req;
    int rc = MPI_Ibarrier(comm, &req);
    for (int done = 0; rc == MPI_SUCCESS && !done;) {
        rc = MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        if (!done)
            run_nap();
    }
    return rc == MPI_SUCCESS ? 0 : -1;
}

typedef struct run_msg_head {
    int32_t final, stopped;
} run_msg_head;

void run_collector_init(run_collector *c, MPI_Comm comm, vb_results *done, vb_journal *journal,
                        int other_leaders)
{
    memset(c, 0, sizeof *c);
    c->comm = comm;
    c->done = done;
    c->journal = journal;
    c->pending_finals = other_leaders;
}

static int file_row(void *ctx, const vb_output_row *row, vb_err *err)
{
    run_collector *c = ctx;
    /* The results hold only where the row's record is (the output is
     * written from the journal). A journal that failed keeps its failure,
     * and the engine stops on it; a row it did not take is held in the
     * results, for the output that stop writes. */
    int64_t at = -1;
    if (c->journal && vb_journal_append_at(c->journal, row, c->done->top_n, &at, err) &&
        !vb_journal_failure(c->journal))
        return -1;
    if (at > 0 ? vb_results_put_at(c->done, row, at, err) : vb_results_put(c->done, row, err))
        return -1;
    c->rows_new++;
    c->tokens_new += row->completion_tokens;
    c->prompt_tokens_new += row->prompt_tokens;
    return 0;
}

int run_collector_take_local(run_collector *c, run_rows *l, vb_err *err)
{
    for (int64_t i = 0; i < l->n; i++)
        if (file_row(c, &l->rows[i], err))
            return -1;
    for (int64_t i = 0; i < l->n; i++)
        vb_output_row_free(&l->rows[i]);
    l->n = 0;
    return 0;
}

static int receive_one(run_collector *c, bool block, bool *got, vb_err *err)
{
    int flag = 0;
    MPI_Message m;
    MPI_Status st;
    *got = false;
    /* a blocking probe spins a core in most MPI libraries; poll and sleep
     * instead so waiting ranks leave the CPU to those still computing */
    for (;;) {
        int rc = MPI_Improbe(MPI_ANY_SOURCE, RUN_ROWS_TAG, c->comm, &flag, &m, &st);
        if (rc != MPI_SUCCESS)
            return vb_mpi_err(err, rc, "MPI_Improbe", "collect: waiting for finished rows");
        if (flag || !block)
            break;
        run_nap();
    }
    if (!flag)
        return 0;
    /* a message's size, then the message itself: a failed call is an error
     * of the run (rows lost in transit), never bytes read as rows */
    char what[64];
    snprintf(what, sizeof what, "collect: rows from rank %d", st.MPI_SOURCE);
    int count = 0, rc = MPI_Get_count(&st, MPI_BYTE, &count);
    if (rc != MPI_SUCCESS || count == MPI_UNDEFINED)
        return vb_mpi_err(err, rc != MPI_SUCCESS ? rc : MPI_ERR_COUNT, "MPI_Get_count", what);
    char *buf = malloc(count > 0 ? (size_t)count : 1);
    if (!buf)
        return vb_err_set(err, "collect: out of memory for %d bytes of rows from rank %d", count,
                          st.MPI_SOURCE);
    rc = MPI_Mrecv(buf, count, MPI_BYTE, &m, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) {
        free(buf);
        return vb_mpi_err(err, rc, "MPI_Mrecv", what);
    }
    *got = true;
    run_msg_head h;
    if ((size_t)count < sizeof h) {
        rc = vb_err_set(err, "collect: short message from rank %d", st.MPI_SOURCE);
    } else {
        memcpy(&h, buf, sizeof h);
        rc = run_rows_unpack(buf + sizeof h, (size_t)count - sizeof h, file_row, c, err);
        if (rc)
            vb_err_prefix(err, "rows from rank %d", st.MPI_SOURCE);
        if (h.final)
            c->pending_finals--;
        if (h.stopped)
            c->stopped = true;
    }
    free(buf);
    return rc;
}

int run_collector_poll(run_collector *c, bool wait, vb_err *err)
{
    for (;;) {
        if (wait && c->pending_finals <= 0)
            return 0;
        bool got;
        if (receive_one(c, wait, &got, err))
            return -1;
        if (!got)
            return 0;
    }
}

int run_rows_send(run_rows *l, MPI_Comm comm, int root, bool final, bool stopped,
                  double interval, double *last_send, vb_err *err)
{
    double now = MPI_Wtime();
    if (!final && (l->n == 0 || now - *last_send < interval))
        return 0;
    char *buf = NULL;
    size_t n = 0;
    if (run_rows_pack(l, sizeof(run_msg_head), &buf, &n))
        return vb_err_set(err, "collect: out of memory packing %" PRId64 " rows", (int64_t)l->n);
    if (n > INT_MAX) {
        free(buf);
        return vb_err_set(err, "collect: %zu bytes of rows in one message (over 2 GiB)", n);
    }
    run_msg_head h = {final ? 1 : 0, stopped ? 1 : 0};
    memcpy(buf, &h, sizeof h);
    MPI_Request req;
    int rc = MPI_Isend(buf, (int)n, MPI_BYTE, root, RUN_ROWS_TAG, comm, &req);
    for (int done = 0; rc == MPI_SUCCESS && !done;) {
        rc = MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        if (!done)
            run_nap();
    }
    free(buf);
    *last_send = now;
    if (rc != MPI_SUCCESS)
        return vb_err_set(err, "collect: MPI_Send of rows to rank %d failed", root);
    return 0;
}

/* ---- rank 0's stop notice -------------------------------------------------- */

int run_stop_notice_post(run_stop_notice *n, MPI_Comm comm, int root, bool stop)
{
    memset(n, 0, sizeof *n);
    n->stop = stop ? 1 : 0; /* read on the root; the others receive into it */
    if (MPI_Ibcast(&n->stop, 1, MPI_INT, root, comm, &n->req) != MPI_SUCCESS)
        return -1;
    n->posted = true;
    return 0;
}

bool run_stop_notice_says_stop(run_stop_notice *n)
{
    if (n->posted && !n->done) {
        int flag = 0;
        if (MPI_Test(&n->req, &flag, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return false; /* run_stop_notice_finish sees the same failure and says it */
        n->done = flag != 0;
    }
    return n->done && n->stop;
}

int run_stop_notice_finish(run_stop_notice *n)
{
    while (n->posted && !n->done) {
        int flag = 0;
        if (MPI_Test(&n->req, &flag, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return -1;
        n->done = flag != 0;
        if (!n->done)
            run_nap();
    }
    return 0;
}

/* Finished rows on their way to world rank 0, as they finish.
 *
 * World rank 0 owns the results and the journal (io/resume.h). Every other
 * group leader (tp_rank 0 of groups 1..dp-1) sends its finished rows to
 * rank 0 in point-to-point messages on the world communicator, one tag:
 *   run_msg_head (final flag, stopped flag) + packed rows (run_rows.h).
 * A leader sends when it has rows and the last send is a second old, and
 * once with final = 1 when its group is done (or stopped). Rank 0 takes
 * its own group's rows directly, polls for the others' between its own
 * steps, and after its own group is done waits for every final message.
 * Messages from one sender arrive in order (same tag and communicator).
 * No world collective may run while a leader can still be sending: rank 0
 * receives every final message before the closing barrier. */
#ifndef VB_RUN_COLLECT_H
#define VB_RUN_COLLECT_H

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

#include "io/journal.h"
#include "io/results.h"
#include "run/run_rows.h"
#include "util/errors.h"

#define RUN_ROWS_TAG 7301

/* Rank 0's side. */
typedef struct run_collector {
    MPI_Comm comm;
    vb_results *done;       /* every finished row of the run */
    vb_journal *journal;    /* NULL: no journal */
    int pending_finals;     /* leaders yet to send their final message */
    bool stopped;           /* a group reported it stopped early */
    int64_t rows_new;       /* rows finished in this run (not resumed ones) */
    int64_t tokens_new;     /* their completion tokens */
    int64_t prompt_tokens_new; /* and their prompt tokens */
} run_collector;

void run_collector_init(run_collector *c, MPI_Comm comm, vb_results *done, vb_journal *journal,
                        int other_leaders);

/* Files rows of rank 0's own group (journal + results); empties l. */
int run_collector_take_local(run_collector *c, run_rows *l, vb_err *err);

/* Receives what has arrived from other leaders; with wait, blocks until
 * every final message is in. */
int run_collector_poll(run_collector *c, bool wait, vb_err *err);

/* A leader's side (not rank 0): sends l's rows (emptying it) to rank 0
 * when `final`, or when it has rows and *last_send is `interval` seconds
 * old (MPI_Wtime). */
int run_rows_send(run_rows *l, MPI_Comm comm, int root, bool final, bool stopped,
                  double interval, double *last_send, vb_err *err);

/* Rank 0's word to every rank on whether the run must stop: its journal
 * failed (finished rows could no longer be saved), or it was stopped. The
 * groups step independently and talk only to rank 0, so this is one
 * MPI_Ibcast of an int: every other rank posts it before its loop and
 * tests it once a step (the group's stop all-reduce then stops the whole
 * group at one step); rank 0 posts it as soon as the run must stop (its
 * loop stopped, or its journal failed while it waits for the other
 * groups), else, saying carry on, once every group is done. Every rank
 * completes it before the closing barrier, so nothing is left pending. */
typedef struct run_stop_notice {
    MPI_Request req;
    int stop;           /* the verdict: 1 = stop */
    bool posted, done;
} run_stop_notice;

/* Posts the notice: `root` sends its verdict `stop`; every other rank
 * starts listening (stop unused). */
int run_stop_notice_post(run_stop_notice *n, MPI_Comm comm, int root, bool stop);

/* True once the notice has arrived and says stop; never waits. */
bool run_stop_notice_says_stop(run_stop_notice *n);

/* Waits for the notice, sleeping between tests (a no-op when never
 * posted). */
int run_stop_notice_finish(run_stop_notice *n);

/* Sleeps a fraction of a millisecond (waiting loops). */
void run_nap(void);

/* A barrier that waits by polling and sleeping, not spinning: ranks whose
 * group is done leave the cores to groups still computing. */
int run_sleepy_barrier(MPI_Comm comm);

#endif

/* The group's rows into the scheduler, a block at a time: a block of rows
 * is read, tokenized into sequences (run_feed_read) and queued
 * (run_feed_queue) when the scheduler's waiting line runs short
 * (run_feed), between steps. Reading the group's whole share up front held
 * ~520 bytes a row and its prompt on every rank of the group (10M rows of
 * 1,000 ids: ~45 GB a rank), and the first step waited for the whole file
 * to be tokenized.
 *
 * Every rank of a tp group reads the same rows in the same blocks and
 * feeds at the same points (its scheduler is the group's, step for step),
 * so the group's schedules stay identical; feeding has no collective.
 *
 * The schedule is the one of every row queued at once: admission looks at
 * most 2 x max_batch sequences into the waiting line (max_batch admitted,
 * max_batch skipped for a prefix block in flight: scheduler.c), and the
 * line is kept longer than that while rows are left. */
#ifndef VB_RUN_FEED_H
#define VB_RUN_FEED_H

#include <stdbool.h>

#include "run/run_state.h"

/* Reads the next block of the group's rows and makes its sequences (the
 * leader files a row whose prompt cannot run as an error row). The block
 * must have been queued. Returns 0, 1 with err (out of memory), or 2 with
 * err naming the input file and the rows (the input cannot be read: a bad
 * input, exit 2). */
int run_feed_read(run_state *r, vb_err *err);

/* Queues the block's sequences into the scheduler and frees the rows as
 * read: a sequence with nothing to generate is done at once, one the KV
 * cache (or --batch-invariant) can never hold is an error row. Returns 0
 * or 1 with err (out of memory). */
int run_feed_queue(run_state *r, vb_err *err);

/* Between steps: reads and queues blocks while the waiting line is short
 * and rows are left. An input that cannot be read sets work.read_failed
 * (and read_err) and reads no more: the group then stops at the step's
 * agreement (run_loop.c), its finished rows are written, and the run
 * exits 2. Any other failure ends the job (run_die). */
void run_feed(run_state *r, long step);

/* Every row of the group was read and queued. */
bool run_feed_done(const run_state *r);

/* The sequence in scheduler slot `slot`. */
gen_seq *run_feed_seq(const run_state *r, int slot);

/* Frees the finished sequence of `slot` (after sched_finish). */
void run_feed_release(run_state *r, int slot);

/* Frees whatever the feed holds (rows read, sequences made or running). */
void run_feed_free(run_work *wk);

#endif

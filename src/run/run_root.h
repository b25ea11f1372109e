/* World rank 0's part of a run, besides computing for its own group: it
 * files every finished row (its group's and what other leaders send) into
 * the results and the journal, prints progress, and at the end writes the
 * output file and the report. */
#ifndef VB_RUN_ROOT_H
#define VB_RUN_ROOT_H

#include <stdbool.h>

#include "run/run_state.h"

/* Rank 0, once a step (now: at the end): files finished rows (its own
 * group's and what other leaders sent) and writes the journal, syncing it
 * when due (now: at once). A journal failure is no error here: the journal
 * keeps it (vb_journal_failure), the next step's stop check ends the run
 * in order, and the end reports it. Returns 0 or -1 with err. */
int run_root_file_rows(run_state *r, bool now, vb_err *err);

/* Rank 0: the progress line, every few seconds (force: now). */
void run_progress(run_state *r, double *last, bool force);

/* Rank 0 at the end: every finished row filed and synced, then the output
 * and the report. A failed journal does not keep the output from being
 * written (it holds the rows the journal lost), but the run fails naming
 * the journal (*phase says so). Returns 0 or 1. */
int run_root_finish(run_state *r, const char **phase, vb_err *err);

/* This build, "VERSION (git REVISION)": the output's version attribute,
 * and in the run's settings (ranks agree on it; --resume warns of another). */
const char *run_build_version(void);

#endif

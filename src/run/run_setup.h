/* What a group needs before its engine: the tokenizer, the chat template
 * and the eos ids; then its first block of rows read and turned into
 * sequences (prompt ids, sampling settings, token limits). Both are phases: collective over
 * the world, they return the agreed exit code (run_agree). */
#ifndef VB_RUN_SETUP_H
#define VB_RUN_SETUP_H

#include "run/run_state.h"

/* The tokenizer (every rank: each encodes its group's rows and decides stop
 * strings itself), the chat template, and the eos ids: config.json's and
 * generation_config.json's, plus the tokenizer's. Text inputs without a
 * tokenizer, or --chat without a template we render, stop here (exit 2). */
int run_phase_tokenizer(run_state *r, vb_err *err);

/* The sampling and token limit in effect, then the group's first block of
 * rows read and made into one sequence per (row, sample) (run_feed.h);
 * bad rows become error rows at once. */
int run_phase_rows(run_state *r, vb_err *err);

#endif

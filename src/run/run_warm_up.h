/* The engine's warm-up: one short prefill and one decode step of a
 * made-up sequence before the first row, so that the one-time costs of a
 * GPU's first steps are paid at start-up (in bench's load_s) instead of
 * inside the first rows' time to first token and time per token.
 *
 * On a GPU the first launch of each kernel loads its module (CUDA's lazy
 * loading; the whole binary loaded eagerly costs seconds more), and the
 * first decode step of a batch size records its CUDA graph. On an H100 the
 * first 7B decode step took ~40 ms against ~2-5 ms for the others, ~0.15
 * ms of every token's time in a 256-token batch-1 run (RESULTS.md, session
 * 53). The decode step runs at batch 1 with the engine's block-table
 * width, so it records exactly the graph batch-1 decode steps replay.
 *
 * The made-up sequence writes keys and values into the cache's first
 * block and nothing else: no sequence has been admitted yet, and every
 * sequence writes a position before any step reads it, so no row's result
 * changes (tests/run/test_warm_up.sh; test_generate_cuda.sh on a GPU).
 * Collective like a step: every rank of the group calls it. Off by
 * default until a GPU has run test generate_cuda's warm-up checks (the
 * knob's row in util/env.c says why); VB_WARM_UP=auto takes it on a GPU. */
#ifndef VB_RUN_WARM_UP_H
#define VB_RUN_WARM_UP_H

#include "run/run_state.h"

/* Runs the warm-up where VB_WARM_UP asks for it (auto: on a GPU only) and
 * says on the group's leader what it took. Returns 0, or 1 with err when a
 * step was refused (it is not expected to be). */
int run_warm_up(run_state *r, vb_err *err);

#endif

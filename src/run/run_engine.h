/* A group's engine: the backend (CPU, or CUDA on this rank's GPU), the
 * forward pass's buffers, the KV cache sized to what memory is left, the
 * step batch, the scheduler, the TP sampler, the warm-up steps
 * (run_warm_up.h); then the first block of rows
 * queued (the rest follow as the waiting line drains: run_feed.h).
 * A phase: collective over the world, it returns the agreed exit code. */
#ifndef VB_RUN_ENGINE_H
#define VB_RUN_ENGINE_H

#include "run/run_state.h"

int run_phase_engine(run_state *r, vb_err *err);

#endif

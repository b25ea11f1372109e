/* `voltbatch generate` once the command line is read into a run_config
 * (run_config.h, filled once by cli/) and MPI is laid out: the driver that
 * joins model loading, the backend, the scheduler, the sampler and the
 * HDF5 input/output into one run.
 *
 *   config.json, TP plan -> inputs -> tokenizer -> output policy (refuse,
 *   overwrite, resume; rank 0) -> rows assigned to dp groups (io/shard.h,
 *   by cost) -> weights -> every rank of a group reads its group's rows ->
 *   backend, forward state, KV cache, scheduler -> the step loop (schedule,
 *   batch, forward, sample, finish; the stop agreement before each step) ->
 *   finished rows to world rank 0 as they finish (run_collect.h) -> journal
 *   and output file.
 *
 * run_state.h maps which file does which part. Phases before the loop
 * agree on failure across the world (one message, from the lowest failing
 * rank); a failure inside the loop prints the rank, step and cause and
 * aborts the job (the other groups cannot be told otherwise, and a stuck
 * job is worse than a failed one). */
#ifndef VB_GENERATE_RUN_H
#define VB_GENERATE_RUN_H

#include "mpi/dist.h"
#include "run/run_config.h"

/* Returns the exit status (util/exit_codes.h): 0 done, 2 usage or input
 * error before any work, 75 stopped by a signal with finished rows saved,
 * 1 any other failure. Collective over the world. */
int generate_run(const run_config *o, const vb_dist *d);

#endif

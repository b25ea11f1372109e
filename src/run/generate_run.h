/* `voltbatch generate` once options are parsed and MPI is laid out: the
 * driver that joins model loading, the CPU backend, the scheduler, the
 * sampler and the HDF5 input/output into one run.
 *
 *   options -> config, TP plan -> inputs -> output policy (refuse, overwrite,
 *   resume; rank 0) -> rows assigned to dp groups (io/shard.h, by cost) ->
 *   weights -> backend, KV cache, forward state -> every rank of a group
 *   reads its group's rows -> scheduler loop (sched_step, forward_step,
 *   TP sampling, sched_step_done, stop checks) -> finished rows to world
 *   rank 0 as they finish (run_collect.h) -> journal and output file.
 *
 * Phases before the loop agree on failure across the world (one message,
 * from the lowest failing rank); a failure inside the loop prints the rank,
 * step and cause and aborts the job (the other groups cannot be told
 * otherwise, and a stuck job is worse than a failed one). */
#ifndef VB_GENERATE_RUN_H
#define VB_GENERATE_RUN_H

#include "cli/generate_options.h"
#include "mpi/dist.h"

/* Returns the exit status (util/exit_codes.h): 0 done, 2 usage or input
 * error before any work, 75 stopped by a signal with finished rows saved,
 * 1 any other failure. Collective over the world. */
int generate_run(const generate_options *o, const vb_dist *d);

#endif

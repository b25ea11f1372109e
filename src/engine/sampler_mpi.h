/* The TP transport for the sampler: every rank of a TP group gathers every
 * rank's sampler_summary rows (candidates only, never full logits) and
 * merges them, so all ranks choose the same tokens (see sampler.h). */
#ifndef VB_SAMPLER_MPI_H
#define VB_SAMPLER_MPI_H

#include <mpi.h>

#include "engine/sampler.h"
#include "util/errors.h"

/* local: n_rows summaries with n_cand candidates each (flat, as
 * sampler_summary_at lays them out). gathered: room for n_ranks times that,
 * filled rank after rank. One MPI_Allgather of bytes. */
int sampler_exchange_mpi(MPI_Comm comm, const void *local, int n_rows, int n_cand,
                         void *gathered, vb_err *err);

/* Merges the gathered rows: merged[row] from gathered[rank][row] over all
 * ranks. Pure host code (the simulated-rank tests call it too). */
void sampler_merge_gathered(const void *gathered, int n_ranks, int n_rows, int n_cand,
                            void *merged);

#endif

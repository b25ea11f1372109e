/* Which GPU a rank drives, and the TP group's NCCL communicator.
 *
 * Ranks pick their GPU by node-local rank (the MPI shared-memory split), so
 * the usual `mpirun -np 4` on a 4-GPU node, srun --gpus-per-task and any
 * CUDA_VISIBLE_DEVICES the site sets all work; more ranks on a node than
 * visible GPUs is refused rather than run two ranks on one GPU. */
#ifndef VB_CUDA_DEVICE_H
#define VB_CUDA_DEVICE_H

#include <mpi.h>
#include <nccl.h>

#include "dist/dist.h"
#include "util/errors.h"

/* Sets the CUDA device for this rank; -1 with a message naming the node's
 * rank count and GPU count when there are too few GPUs. *device gets the
 * ordinal, pci_bus_id (may be NULL) the "0000:3b:00.0" form. */
int cuda_select_device(const vb_dist *d, int *device, char *pci_bus_id, int pci_len,
                       vb_err *err);

/* One communicator per TP group: rank 0 of tp_comm makes the NCCL id and
 * broadcasts it over MPI. NULL for tp = 1. */
ncclComm_t cuda_nccl_comm_create(const vb_dist *d);

#endif

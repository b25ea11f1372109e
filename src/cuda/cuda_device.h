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

#include "mpi/dist.h"
#include "util/errors.h"

/* Sets the CUDA device for this rank: device local_rank (every GPU visible
 * to every rank), or device 0 of each rank (srun --gpus-per-task=1 gives
 * each its own). Collective over d->node_comm: the ranks of a node compare
 * PCI bus ids, and two ranks on one GPU (more ranks than GPUs) get -1 on
 * every rank of the node, with a message naming the rank and GPU counts.
 * *device gets the ordinal, pci_bus_id (may be NULL) the "0000:3b:00.0"
 * form. */
int cuda_select_device(const vb_dist *d, int *device, char *pci_bus_id, int pci_len,
                       vb_err *err);

/* One non-blocking communicator per TP group: rank 0 of tp_comm makes the
 * NCCL id and broadcasts it over MPI; creation is polled until done. It is
 * registered with the watchdog (watchdog.h), which polls it for
 * asynchronous errors and aborts it when the job must end; a creation that
 * does not finish within timeout_s ends the job the same way. NULL for
 * tp = 1. Collectives on it go through NCCL_CHECK_COMM (cuda_check.h). */
ncclComm_t cuda_nccl_comm_open(const vb_dist *d, double timeout_s);

/* cuda_nccl_comm_open with the default deadline (300 s). */
ncclComm_t cuda_nccl_comm_create(const vb_dist *d);

/* Unregisters from the watchdog, finalizes and destroys; NULL is fine. */
void cuda_nccl_comm_destroy(ncclComm_t comm);

#endif

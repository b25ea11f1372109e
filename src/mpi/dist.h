/* The process layout: world, tensor-parallel groups, data-parallel groups,
 * and the node-local rank that picks the GPU.
 *
 * World ranks are grouped contiguously: ranks [g*tp, (g+1)*tp) form TP group
 * g, so with the usual by-slot placement a TP group stays on one node and
 * its all-reduces never cross the network. The dp communicator joins the
 * ranks with the same tp_rank across groups (leaders talk to world rank 0
 * through the world communicator). */
#ifndef VB_DIST_H
#define VB_DIST_H

#include <mpi.h>

#include "util/errors.h"

typedef struct vb_dist {
    int world_rank, world_size;
    int tp, tp_rank;       /* group size and position in the group */
    int dp, dp_rank;       /* number of groups and this rank's group */
    int local_rank, local_size; /* on this node (MPI shared-memory split) */
    MPI_Comm tp_comm;      /* this rank's TP group */
    MPI_Comm dp_comm;      /* ranks with the same tp_rank, one per group */
    MPI_Comm node_comm;    /* ranks on this node */
} vb_dist;

/* MPI_Init_thread (the watchdog thread may call MPI_Abort) and log set-up.
 * Safe to call when MPI is already initialised. */
void vb_dist_init(int *argc, char ***argv);

/* Splits the world into groups of `tp`. Fails (no collective started) when
 * the world size is not a multiple of tp; every rank gets the same verdict. */
int vb_dist_setup(vb_dist *d, int tp, vb_err *err);

void vb_dist_free(vb_dist *d);
void vb_dist_finalize(void);

/* Ends the whole job with status `code` from any rank. */
void vb_dist_abort(int code) __attribute__((noreturn));

#endif

/* World / TP / DP / node communicators; see dist.h. */
#include "mpi/dist.h"

#include <stdio.h>
#include <stdlib.h>

#include "mpi/mpi_check.h"
#include "util/log.h"

void vb_mpi_fail(const char *call, int code, const char *file, int line)
{
    char msg[MPI_MAX_ERROR_STRING] = "unknown error";
    int len = 0;
    MPI_Error_string(code, msg, &len);
    vb_error("MPI call failed: %s: %s (%s:%d)", call, msg, file, line);
    MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

int vb_mpi_err(vb_err *err, int code, const char *call, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING] = "unknown error";
    int len = 0;
    MPI_Error_string(code, msg, &len);
    return vb_err_set(err, "%s: %s failed: %s", what, call, msg);
}

void vb_dist_init(int *argc, char ***argv)
{
    int inited = 0;
    MPI_CHECK(MPI_Initialized(&inited));
    if (!inited) {
        int provided = 0;
        MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided));
        if (provided < MPI_THREAD_SERIALIZED)
            vb_warn("the MPI library gives thread level %d; the collective watchdog "
                    "needs MPI_THREAD_MULTIPLE to abort a hung job cleanly",
                    provided);
    }
    /* Errors come back as codes so MPI_CHECK can say which call failed. */
    MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    int rank = 0, size = 1;
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size));
    vb_log_set_rank(rank, size);
}

int vb_dist_setup(vb_dist *d, int tp, vb_err *err)
{
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &d->world_rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &d->world_size));
    if (tp < 1 || d->world_size % tp != 0)
        return vb_err_set(err,
                          "--tp %d: the world size %d (mpirun -np) is not a multiple of it",
                          tp, d->world_size);
    d->tp = tp;
    d->tp_rank = d->world_rank % tp;
    d->dp = d->world_size / tp;
    d->dp_rank = d->world_rank / tp;
    MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, d->dp_rank, d->tp_rank, &d->tp_comm));
    MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, d->tp_rank, d->dp_rank, &d->dp_comm));
    MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->world_rank,
                                  MPI_INFO_NULL, &d->node_comm));
    MPI_CHECK(MPI_Comm_rank(d->node_comm, &d->local_rank));
    MPI_CHECK(MPI_Comm_size(d->node_comm, &d->local_size));
    return 0;
}

void vb_dist_free(vb_dist *d)
{
    if (d->tp_comm != MPI_COMM_NULL && d->tp_comm)
        MPI_CHECK(MPI_Comm_free(&d->tp_comm));
    if (d->dp_comm != MPI_COMM_NULL && d->dp_comm)
        MPI_CHECK(MPI_Comm_free(&d->dp_comm));
    if (d->node_comm != MPI_COMM_NULL && d->node_comm)
        MPI_CHECK(MPI_Comm_free(&d->node_comm));
}

void vb_dist_finalize(void)
{
    int inited = 0, finalized = 0;
    MPI_CHECK(MPI_Initialized(&inited));
    MPI_CHECK(MPI_Finalized(&finalized));
    /* the run's outputs are written and its exit code decided: a failure
     * here is said, not turned into another exit code */
    if (inited && !finalized && MPI_Finalize() != MPI_SUCCESS)
        vb_warn("MPI_Finalize failed");
}

void vb_dist_abort(int code)
{
    fflush(stdout);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

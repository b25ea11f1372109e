/* GPU selection by node-local rank and NCCL communicator set-up; see
 * cuda_device.h. */
#include "cuda/cuda_device.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cuda/cuda_check.h"
#include "mpi/mpi_check.h"
#include "mpi/watchdog.h"
#include "util/log.h"

#define CUDA_NCCL_INIT_TIMEOUT_S 300.0    /* cuda_nccl_comm_create's, as --collective-timeout's default */
#define CUDA_NCCL_FINALIZE_TIMEOUT_S 60.0 /* "did not finish within 60 s" below */

/* What each rank of a node tells the others before any GPU is taken. */
typedef struct node_gpu {
    int ok;          /* 1: a device was picked */
    int count;       /* GPUs this rank sees */
    char bus[32];    /* the picked GPU's PCI bus id */
} node_gpu;

int cuda_select_device(const vb_dist *d, int *device, char *pci_bus_id, int pci_len,
                       vb_err *err)
{
    node_gpu mine = {0};
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e == cudaSuccess && count > 0) {
        /* Every GPU of the node visible to every rank (mpirun): one per
         * local rank. One GPU per rank (srun --gpus-per-task=1 binds each
         * task to its own): device 0 of each. In between, or too few, the
         * bus ids below tell whether two ranks landed on one GPU. */
        *device = d->local_rank % count;
        mine.count = count;
        e = cudaDeviceGetPCIBusId(mine.bus, (int)sizeof mine.bus, *device);
        mine.ok = e == cudaSuccess;
    }
    /* Every rank of the node reaches this exchange, even one without a
     * GPU, so that all of them give the same verdict and none waits. */
    node_gpu *all = calloc((size_t)d->local_size, sizeof *all);
    if (!all)
        return vb_err_set(err, "out of memory choosing the GPU");
    MPI_CHECK(MPI_Allgather(&mine, (int)sizeof mine, MPI_BYTE, all, (int)sizeof mine, MPI_BYTE,
                            d->node_comm));
    int rc = 0;
    if (!mine.ok) {
        rc = vb_err_set(err, "no usable CUDA device on this node (%s); use --device cpu",
                        e != cudaSuccess ? cudaGetErrorString(e) : "none visible");
    } else {
        for (int i = 0; i < d->local_size && !rc; i++)
            for (int j = i + 1; j < d->local_size && !rc; j++)
                if (all[i].ok && all[j].ok && strcmp(all[i].bus, all[j].bus) == 0)
                    rc = vb_err_set(err,
                                    "%d ranks on this node but %d GPU%s visible (node-local "
                                    "ranks %d and %d would share GPU %s): start at most one "
                                    "rank per GPU (mpirun -np / srun --ntasks-per-node)",
                                    d->local_size, all[i].count, all[i].count == 1 ? "" : "s",
                                    i, j, all[i].bus);
    }
    free(all);
    if (rc)
        return rc;
    CUDA_CHECK(cudaSetDevice(*device));
    if (pci_bus_id)
        snprintf(pci_bus_id, (size_t)pci_len, "%s", mine.bus);
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

ncclResult_t vb_nccl_wait(ncclComm_t comm)
{
    ncclResult_t state = ncclInProgress;
    for (;;) {
        ncclResult_t r = ncclCommGetAsyncError(comm, &state);
        if (r != ncclSuccess)
            return r;
        if (state != ncclInProgress)
            return state;
        sched_yield();
    }
}

/* The watchdog's hooks (watchdog.h): an asynchronous error ends the job,
 * and on a timeout the communicator is aborted so its kernels stop. */
static int nccl_poll(void *ctx, char *msg, int len)
{
    ncclComm_t comm = ctx;
    ncclResult_t state = ncclSuccess;
    ncclResult_t r = ncclCommGetAsyncError(comm, &state);
    if (r != ncclSuccess) {
        snprintf(msg, (size_t)len, "ncclCommGetAsyncError: %s", ncclGetErrorString(r));
        return 1;
    }
    if (state == ncclSuccess || state == ncclInProgress)
        return 0;
    snprintf(msg, (size_t)len, "NCCL: %s: %s", ncclGetErrorString(state),
             ncclGetLastError(comm));
    return 1;
}

static void nccl_abort(void *ctx)
{
    ncclResult_t r = ncclCommAbort((ncclComm_t)ctx);
    if (r != ncclSuccess)
        vb_error("ncclCommAbort: %s", ncclGetErrorString(r));
}

ncclComm_t cuda_nccl_comm_open(const vb_dist *d, double timeout_s)
{
    if (d->tp == 1)
        return NULL;
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    if (d->tp_rank == 0)
        NCCL_CHECK(ncclGetUniqueId(&id));
    MPI_CHECK(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, d->tp_comm));
    char what[160];
    int first = d->world_rank - d->tp_rank;
    snprintf(what, sizeof what, "the NCCL all-reduce of TP group %d (world ranks %d-%d)",
             d->dp_rank, first, first + d->tp - 1);
    vb_watchdog_set_collective(what);
    /* Non-blocking: creation and collectives return at once (ncclInProgress)
     * and we poll, so a missing peer is a timeout with a message, not a
     * process stuck inside NCCL where no watchdog can reach it. */
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    ncclComm_t comm = NULL;
    ncclResult_t r = ncclCommInitRankConfig(&comm, d->tp, id, d->tp_rank, &config);
    if (r != ncclSuccess && r != ncclInProgress)
        vb_cuda_fail("NCCL", "ncclCommInitRankConfig", ncclGetErrorString(r), __FILE__,
                     __LINE__);
    /* From here a timeout or error anywhere aborts this communicator. */
    vb_watchdog_set_comm(nccl_poll, nccl_abort, comm);
    double end = now_s() + timeout_s;
    ncclResult_t state = ncclInProgress;
    while (state == ncclInProgress) {
        NCCL_CHECK(ncclCommGetAsyncError(comm, &state));
        if (state == ncclInProgress && now_s() > end) {
            char msg[320];
            snprintf(msg, sizeof msg,
                     "creating %s did not finish in %.0f s (a rank of the group never "
                     "joined, or the network between them is blocked)",
                     what + 4, timeout_s);
            vb_watchdog_fail(msg);
        }
        if (state == ncclInProgress) {
            struct timespec ms = {0, 1000 * 1000};
            nanosleep(&ms, NULL);
        }
    }
    if (state != ncclSuccess) {
        char msg[300];
        snprintf(msg, sizeof msg, "creating %s failed: %s: %s", what + 4,
                 ncclGetErrorString(state), ncclGetLastError(comm));
        vb_watchdog_fail(msg);
    }
    return comm;
}

ncclComm_t cuda_nccl_comm_create(const vb_dist *d)
{
    return cuda_nccl_comm_open(d, CUDA_NCCL_INIT_TIMEOUT_S);
}

void cuda_nccl_comm_destroy(ncclComm_t comm)
{
    if (!comm)
        return;
    /* waits for a watchdog poll in progress: none touches comm after this */
    vb_watchdog_set_comm(NULL, NULL, NULL);
    /* Finalize waits for the other ranks of the group; one that never
     * comes must not hold this one forever (the watchdog is gone by now). */
    ncclResult_t r = ncclCommFinalize(comm);
    double end = now_s() + CUDA_NCCL_FINALIZE_TIMEOUT_S;
    while (r == ncclInProgress && now_s() < end) {
        struct timespec ms = {0, 1000 * 1000};
        nanosleep(&ms, NULL);
        NCCL_CHECK(ncclCommGetAsyncError(comm, &r));
    }
    if (r != ncclSuccess) {
        vb_warn("closing the NCCL communicator: %s; aborting it",
                r == ncclInProgress ? "the group did not finish within 60 s"
                                    : ncclGetErrorString(r));
        NCCL_CHECK(ncclCommAbort(comm));
        return;
    }
    NCCL_CHECK(ncclCommDestroy(comm));
}

/* GPU selection by node-local rank and NCCL communicator set-up; see
 * cuda_device.h. */
#include "cuda/cuda_device.h"

#include <stdio.h>

#include "cuda/cuda_check.h"
#include "dist/mpi_check.h"

int cuda_select_device(const vb_dist *d, int *device, char *pci_bus_id, int pci_len,
                       vb_err *err)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0)
        return vb_err_set(err, "no usable CUDA device on this node (%s); use --device cpu",
                          e != cudaSuccess ? cudaGetErrorString(e) : "none visible");
    if (d->local_size > count)
        return vb_err_set(err,
                          "%d ranks on this node but %d GPU%s visible: start at most one rank "
                          "per GPU (mpirun -np / srun --ntasks-per-node)",
                          d->local_size, count, count == 1 ? "" : "s");
    *device = d->local_rank;
    CUDA_CHECK(cudaSetDevice(*device));
    if (pci_bus_id)
        CUDA_CHECK(cudaDeviceGetPCIBusId(pci_bus_id, pci_len, *device));
    return 0;
}

ncclComm_t cuda_nccl_comm_create(const vb_dist *d)
{
    if (d->tp == 1)
        return NULL;
    ncclUniqueId id;
    if (d->tp_rank == 0)
        NCCL_CHECK(ncclGetUniqueId(&id));
    MPI_CHECK(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, d->tp_comm));
    ncclComm_t comm = NULL;
    NCCL_CHECK(ncclCommInitRank(&comm, d->tp, id, d->tp_rank));
    return comm;
}

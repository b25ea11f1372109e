/* CUDA / cuBLAS / NCCL versions, built-with and (where it costs no GPU
 * context) the ones the loader found at run time; plus the CUDA failure
 * path shared by the checking macros. */
#include "cuda/cuda_build_info.h"

#include <cublas_api.h>
#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>
#include <stdlib.h>

#include "cuda/cuda_check.h"
#include "util/log.h"

void vb_cuda_print_build_info(FILE *out)
{
    int rt = 0, drv = 0;
    fprintf(out, "  CUDA:   runtime %d.%d headers", CUDART_VERSION / 1000,
            (CUDART_VERSION % 1000) / 10);
    if (cudaRuntimeGetVersion(&rt) == cudaSuccess)
        fprintf(out, ", runtime %d.%d loaded", rt / 1000, (rt % 1000) / 10);
    if (cudaDriverGetVersion(&drv) == cudaSuccess && drv > 0)
        fprintf(out, ", driver supports %d.%d", drv / 1000, (drv % 1000) / 10);
    fprintf(out, "\n");
    fprintf(out, "  cuBLAS: %d.%d.%d headers\n", CUBLAS_VER_MAJOR, CUBLAS_VER_MINOR,
            CUBLAS_VER_PATCH);
    int nccl = 0;
    fprintf(out, "  NCCL:   %d.%d.%d headers", NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH);
    if (ncclGetVersion(&nccl) == ncclSuccess)
        fprintf(out, ", %d.%d.%d loaded", nccl / 10000, (nccl / 100) % 100, nccl % 100);
    fprintf(out, "\n");
}

void vb_cuda_fail(const char *lib, const char *call, const char *what, const char *file,
                  int line)
{
    vb_error("%s call failed: %s: %s (%s:%d)", lib, call, what, file, line);
    int inited = 0;
    /* on the way out after another failure: if even this fails, exit() */
    (void)MPI_Initialized(&inited);
    if (inited)
        MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

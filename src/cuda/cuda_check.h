/* One checking macro per GPU library: every CUDA, cuBLAS and NCCL call goes
 * through one of these. A failure prints the call, file and line, and
 * aborts the whole MPI job (a stuck or half-dead job is worse than a failed
 * one). */
#ifndef VB_CUDA_CHECK_H
#define VB_CUDA_CHECK_H

#include <cublas_api.h>
#include <cuda_runtime_api.h>
#include <nccl.h>

void vb_cuda_fail(const char *lib, const char *call, const char *what, const char *file,
                  int line) __attribute__((noreturn));

#define CUDA_CHECK(call)                                                             \
    do {                                                                             \
        cudaError_t vb_e_ = (call);                                                  \
        if (vb_e_ != cudaSuccess)                                                    \
            vb_cuda_fail("CUDA", #call, cudaGetErrorString(vb_e_), __FILE__, __LINE__); \
    } while (0)

#define CUBLAS_CHECK(call)                                                           \
    do {                                                                             \
        cublasStatus_t vb_s_ = (call);                                               \
        if (vb_s_ != CUBLAS_STATUS_SUCCESS)                                          \
            vb_cuda_fail("cuBLAS", #call, cublasGetStatusString(vb_s_), __FILE__, __LINE__); \
    } while (0)

/* Calls without a communicator, and blocking ones. */
#define NCCL_CHECK(call)                                                             \
    do {                                                                             \
        ncclResult_t vb_r_ = (call);                                                 \
        if (vb_r_ != ncclSuccess)                                                    \
            vb_cuda_fail("NCCL", #call, ncclGetErrorString(vb_r_), __FILE__, __LINE__); \
    } while (0)

/* Waits until a non-blocking communicator (cuda_device.h) has finished
 * its last call: the call's result, or an asynchronous error. */
ncclResult_t vb_nccl_wait(ncclComm_t comm);

/* Calls on a non-blocking communicator: ncclInProgress means the call is
 * still being set up (e.g. connecting to peers at the first all-reduce),
 * and NCCL wants it finished before the next call on the communicator.
 * A peer that never answers is the watchdog's to catch. */
#define NCCL_CHECK_COMM(comm, call)                                                  \
    do {                                                                             \
        ncclResult_t vb_r_ = (call);                                                 \
        if (vb_r_ == ncclInProgress)                                                 \
            vb_r_ = vb_nccl_wait(comm);                                              \
        if (vb_r_ != ncclSuccess)                                                    \
            vb_cuda_fail("NCCL", #call, ncclGetErrorString(vb_r_), __FILE__, __LINE__); \
    } while (0)

#endif

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

#define NCCL_CHECK(call)                                                             \
    do {                                                                             \
        ncclResult_t vb_r_ = (call);                                                 \
        if (vb_r_ != ncclSuccess && vb_r_ != ncclInProgress)                         \
            vb_cuda_fail("NCCL", #call, ncclGetErrorString(vb_r_), __FILE__, __LINE__); \
    } while (0)

#endif

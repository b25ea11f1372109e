/* CUDA, cuBLAS and NCCL versions for `voltbatch --version`. */
#ifndef VB_CUDA_BUILD_INFO_H
#define VB_CUDA_BUILD_INFO_H

#include <stdio.h>

void vb_cuda_print_build_info(FILE *out);

#endif

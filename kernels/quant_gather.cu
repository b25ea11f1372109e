// dst[t][j] = x[t][perm[j]]: activations gathered into a quantized
// weight's internal column order (act order sorts the columns by group at
// load, src/model/quant_weights.h), so gemv_quant.cu reads x and the
// packed weights with the same contiguous 16-byte loads. For decode steps
// (T <= VB_QGEMV_MAX_ROWS rows); the dequantize + GEMM path scatters the
// weight instead (quant_dequant.cu). One thread per element.
#include <cuda_fp16.h>

#include "kernels.h"

__global__ void __launch_bounds__(256) quant_gather_kernel(unsigned short *dst,
                                                           const unsigned short *x,
                                                           const int *perm, int T, int n_in)
{
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    const int t = blockIdx.y;
    if (j >= n_in || t >= T)
        return;
    dst[(size_t)t * n_in + j] = x[(size_t)t * n_in + perm[j]];
}

#ifndef __CUDACC_RTC__
extern "C" cudaError_t vb_quant_gather_f16(uint16_t *dst, const uint16_t *x, const int32_t *perm,
                                           int T, int n_in, cudaStream_t stream)
{
    if (!dst || !x || !perm || T <= 0 || T > 65535 || n_in <= 0)
        return cudaErrorInvalidValue;
    dim3 grid((unsigned)((n_in + 255) / 256), (unsigned)T);
    quant_gather_kernel<<<grid, 256, 0, stream>>>(dst, x, perm, T, n_in);
    return cudaGetLastError();
}
#endif

// A weight-only quantized matrix (src/model/quant_weights.h's internal
// layout) dequantized to fp16 [n_out][n_in] in the checkpoint's column
// order: w[o][perm ? perm[j] : j] = (q[o][j] - zero[o][g]) * scale[o][g],
// g = g_idx ? g_idx[j] : j / group_size, computed in fp32 as the CPU
// backend does and rounded once (beyond +-65504: clamped).
//
// The CUDA backend's path for steps too large for gemv_quant.cu (prefill,
// big decode batches): dequantize one matrix into a scratch buffer, then
// the fp16 cuBLAS GEMM on it. Writing the columns back in checkpoint order
// (a scatter through perm for act order) lets the GEMM read x as it is,
// with no gathered copy of a prefill's activations. Costs a write and a
// read of the fp16 matrix per call, which a fused dequantize + mma kernel
// (issue #21's prefill kernel) will not.
//
// One thread per weight, a block row of 256 columns, the grid's y over
// the output rows (strided past 65535).
#include <cuda_fp16.h>

#include "kernels.h"

struct dequant_params {
    const unsigned char *q;
    const __half *scales, *zeros;
    const int *perm, *g_idx;
    __half *dst;
    int bits, n_out, n_in, group_size, n_groups;
};

__global__ void __launch_bounds__(256) quant_dequant_kernel(dequant_params p)
{
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= p.n_in)
        return;
    const size_t row_bytes = (size_t)p.n_in * p.bits / 8;
    const int g = p.g_idx ? p.g_idx[j] : j / p.group_size;
    const int col = p.perm ? p.perm[j] : j;
    for (int o = blockIdx.y; o < p.n_out; o += gridDim.y) {
        const unsigned char *qr = p.q + (size_t)o * row_bytes;
        int v = p.bits == 8 ? qr[j] : (qr[j >> 1] >> (4 * (j & 1))) & 15;
        size_t at = (size_t)o * p.n_groups + g;
        float w = ((float)v - __half2float(p.zeros[at])) * __half2float(p.scales[at]);
        w = fminf(fmaxf(w, -65504.0f), 65504.0f);
        p.dst[(size_t)o * p.n_in + col] = __float2half_rn(w);
    }
}

#ifndef __CUDACC_RTC__
extern "C" cudaError_t vb_quant_dequant_f16(uint16_t *dst, const vb_qmat *w, cudaStream_t stream)
{
    if (!dst || !w || !w->q || !w->scales || !w->zeros || (w->bits != 4 && w->bits != 8) ||
        w->n_out <= 0 || w->n_in <= 0 || w->n_groups <= 0 ||
        (!w->g_idx && w->group_size <= 0) || (w->bits == 4 && w->n_in % 2))
        return cudaErrorInvalidValue;
    dequant_params p = {};
    p.q = w->q;
    p.scales = (const __half *)w->scales;
    p.zeros = (const __half *)w->zeros;
    p.perm = w->perm;
    p.g_idx = w->g_idx;
    p.dst = (__half *)dst;
    p.bits = w->bits;
    p.n_out = w->n_out;
    p.n_in = w->n_in;
    p.group_size = w->group_size;
    p.n_groups = w->n_groups;
    dim3 grid((unsigned)((w->n_in + 255) / 256), (unsigned)(w->n_out < 65535 ? w->n_out : 65535));
    quant_dequant_kernel<<<grid, 256, 0, stream>>>(p);
    return cudaGetLastError();
}
#endif

// Small per-element and per-row kernels of the forward pass: embedding
// lookup on a vocabulary slice, SiLU-gate, bias add and last-row gather.
//
// All are streaming passes (each byte read and written once, a few FLOPs
// per element): grid-stride where the size is unbounded. The two large
// ones of a prefill step (SiLU-gate, bias add) take 16 bytes a thread when
// the arrays allow, the others one element a thread.
#include <cuda_fp16.h>

#include "kernels.h"
#include "pdl.cuh"
#include "silu.cuh" /* out = silu(gate) * up, in fp32 then rounded once */

// out[t, :] = table[tokens[t] - vocab_start, :] for tokens in this rank's
// slice, zeros otherwise (the TP all-reduce completes the row).
__global__ void embed_kernel(__half *out, const __half *table, const int *tokens, int hidden,
                             int vocab_start, int vocab_local)
{
    int t = blockIdx.x;
    int local = tokens[t] - vocab_start;
    bool mine = local >= 0 && local < vocab_local;
    const __half *src = table + (size_t)(mine ? local : 0) * hidden;
    __half *dst = out + (size_t)t * hidden;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x)
        dst[i] = mine ? src[i] : __float2half(0.0f);
}

__global__ void silu_gate_kernel(__half *out, const __half *gate, const __half *up, size_t n)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        out[i] = __float2half(silu_times(__half2float(gate[i]), __half2float(up[i])));
}

// The same, 8 elements (16 bytes of each array) a thread: the 2-byte
// version moved ~1.5 TB/s on an H200, a third of its bandwidth, and was
// 7% of a prefill step. Needs 16-byte aligned arrays; n8 = n / 8.
__global__ void silu_gate_vec8_kernel(uint4 *out, const uint4 *gate, const uint4 *up, size_t n8)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n8; i += stride) {
        uint4 g = gate[i], u = up[i], o;
        const __half2 *g2 = (const __half2 *)&g, *u2 = (const __half2 *)&u;
        __half2 *o2 = (__half2 *)&o;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            float2 gf = __half22float2(g2[j]), uf = __half22float2(u2[j]);
            o2[j] = __floats2half2_rn(silu_times(gf.x, uf.x), silu_times(gf.y, uf.y));
        }
        out[i] = o;
    }
}

// x[t, n] += bias[n]
__global__ void add_bias_kernel(__half *x, const __half *bias, int T, int n)
{
    size_t total = (size_t)T * n;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride)
        x[i] = __float2half(__half2float(x[i]) + __half2float(bias[i % n]));
}

// The same, 8 elements a thread (n a multiple of 8, 16-byte aligned x and
// bias; n8 = n / 8): the 8 share a row.
__global__ void add_bias_vec8_kernel(uint4 *x, const uint4 *bias, int T, int n8)
{
    size_t total = (size_t)T * n8;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        uint4 v = x[i], b = bias[i % n8];
        __half2 *v2 = (__half2 *)&v;
        const __half2 *b2 = (const __half2 *)&b;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            float2 vf = __half22float2(v2[j]), bf = __half22float2(b2[j]);
            v2[j] = __floats2half2_rn(vf.x + bf.x, vf.y + bf.y);
        }
        x[i] = v;
    }
}

// out[i] = parts[0][i] + parts[1][i] + ... in rank order, in fp32 from the
// first, rounded once (--batch-invariant's all-reduce at tp > 1: the same
// order at every step size and on every rank).
__global__ void sum_ranks_kernel(__half *out, const __half *parts, int n_ranks, size_t n)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float acc = __half2float(parts[i]);
        for (int r = 1; r < n_ranks; r++)
            acc += __half2float(parts[(size_t)r * n + i]);
        out[i] = __float2half(acc);
    }
}

// out[s, :] = in[seq_start[s + 1] - 1, :]
__global__ void last_rows_kernel(__half *out, const __half *in, const int *seq_start, int dim)
{
    pdl_wait(); /* in is the previous kernel's output */
    pdl_launch_dependents();
    int s = blockIdx.x;
    const __half *src = in + (size_t)(seq_start[s + 1] - 1) * dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
        out[(size_t)s * dim + i] = src[i];
}

#ifndef __CUDACC_RTC__
static unsigned grid_for(size_t n, int threads)
{
    size_t blocks = (n + threads - 1) / threads;
    return (unsigned)(blocks > 16384 ? 16384 : (blocks ? blocks : 1));
}

extern "C" cudaError_t vb_embed_f16(uint16_t *out, const uint16_t *table, const int *d_tokens,
                                    int T, int hidden, int vocab_start, int vocab_local,
                                    cudaStream_t stream)
{
    if (T == 0)
        return cudaSuccess;
    embed_kernel<<<T, 256, 0, stream>>>((__half *)out, (const __half *)table, d_tokens, hidden,
                                        vocab_start, vocab_local);
    return cudaGetLastError();
}

static bool aligned16(const void *p)
{
    return ((uintptr_t)p & 15) == 0;
}

extern "C" cudaError_t vb_silu_gate_f16(uint16_t *out, const uint16_t *gate, const uint16_t *up,
                                        size_t n, cudaStream_t stream)
{
    if (n == 0)
        return cudaSuccess;
    if (n % 8 == 0 && aligned16(out) && aligned16(gate) && aligned16(up))
        silu_gate_vec8_kernel<<<grid_for(n / 8, 256), 256, 0, stream>>>(
            (uint4 *)out, (const uint4 *)gate, (const uint4 *)up, n / 8);
    else
        silu_gate_kernel<<<grid_for(n, 256), 256, 0, stream>>>(
            (__half *)out, (const __half *)gate, (const __half *)up, n);
    return cudaGetLastError();
}

extern "C" cudaError_t vb_add_bias_f16(uint16_t *x, const uint16_t *bias, int T, int n,
                                       cudaStream_t stream)
{
    if (T == 0 || n == 0)
        return cudaSuccess;
    if (n % 8 == 0 && aligned16(x) && aligned16(bias))
        add_bias_vec8_kernel<<<grid_for((size_t)T * n / 8, 256), 256, 0, stream>>>(
            (uint4 *)x, (const uint4 *)bias, T, n / 8);
    else
        add_bias_kernel<<<grid_for((size_t)T * n, 256), 256, 0, stream>>>(
            (__half *)x, (const __half *)bias, T, n);
    return cudaGetLastError();
}

extern "C" cudaError_t vb_sum_ranks_f16(uint16_t *out, const uint16_t *parts, int n_ranks,
                                        size_t n, cudaStream_t stream)
{
    if (n == 0)
        return cudaSuccess;
    if (n_ranks < 1)
        return cudaErrorInvalidValue;
    sum_ranks_kernel<<<grid_for(n, 256), 256, 0, stream>>>((__half *)out, (const __half *)parts,
                                                           n_ranks, n);
    return cudaGetLastError();
}

extern "C" cudaError_t vb_last_rows_f16(uint16_t *out, const uint16_t *in, const int *d_seq_start,
                                        int n_seqs, int dim, cudaStream_t stream)
{
    if (n_seqs == 0)
        return cudaSuccess;
    return vb_launch_pdl(last_rows_kernel, dim3(n_seqs), dim3(256), 0, stream, (__half *)out,
                         (const __half *)in, d_seq_start, dim);
}
#endif

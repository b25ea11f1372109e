// 4-bit packed weights into the GPU's nibble order, in place, once at
// upload (src/cuda/cuda_qweight.c); and quantized rows into row blocks
// (vb_quant_block_rows: qmat_layout.h says why), also at upload.
//
// Why: the decode GEMV's mma kernel (gemv_quant.cu) turns a 32-bit word of
// 8 nibbles into four fp16 pairs with the exponent trick (qmma_dequant.cuh:
// a mask takes the nibbles at bits 0-3 and 16-19 as one pair, then 4-7 and
// 20-23, then the same 8 bits up). In the checkpoint's order (column k of
// the word at bits 4k) those pairs are columns (0, 4), (1, 5), (2, 6),
// (3, 7), so the kernel had to byte-permute x into the same pairs: 16 PRMT
// a step of ~165 instructions, and the kernel is bound by instruction
// issue (tests/bench/RESULTS.md, session 30). Stored with column k at bits
// 4 * ((k >> 1) + 4 * (k & 1)) (even columns in the low half, odd in the
// high), the pairs are (0, 1), (2, 3), (4, 5), (6, 7): x's own 32-bit
// words. Every GPU reader of 4-bit weights takes this order
// (kernels.h, vb_qmat); the host keeps the checkpoint's (the CPU backend
// reads it there).
#include "kernels.h" /* its host part brings stdint.h (NVRTC has none) */
#include "qmat_layout.h"

// Column k (0..7) of a word in the checkpoint's order to its place above.
__host__ __device__ __forceinline__ unsigned interleave4_word(unsigned v)
{
    unsigned r = 0;
    for (int k = 0; k < 8; k++) /* unrolled by the compiler: a constant trip count */
        r |= ((v >> (4 * k)) & 15u) << (4 * ((k >> 1) + 4 * (k & 1)));
    return r;
}

__global__ void quant_interleave4_kernel(unsigned *q, size_t n_words)
{
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n_words; i += stride)
        q[i] = interleave4_word(q[i]);
}

// One 16-byte chunk a thread: chunk k of row r from row order into row
// blocks, or back. Reads or writes are whole 512-byte runs either way.
__global__ void quant_block_rows_kernel(uint4 *dst, const uint4 *src, size_t n_chunks,
                                        int row_chunks, int to_blocks)
{
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n_chunks; i += stride) {
        const int r = (int)(i / (unsigned)row_chunks), k = (int)(i % (unsigned)row_chunks);
        const size_t b = qmat_chunk(r, k, row_chunks, 1);
        if (to_blocks)
            dst[b] = src[i];
        else
            dst[i] = src[b];
    }
}

#ifndef __CUDACC_RTC__
#include <limits.h> /* INT_MAX */

extern "C" cudaError_t vb_quant_block_rows(uint8_t *dst, const uint8_t *src, int n_out,
                                           size_t row_bytes, int to_blocks, cudaStream_t stream)
{
    if (!dst || !src || n_out <= 0 || n_out % 8 || row_bytes == 0 || row_bytes % 64 ||
        row_bytes / 16 > INT_MAX / 8 || (uintptr_t)dst % 16 || (uintptr_t)src % 16)
        return cudaErrorInvalidValue;
    const size_t n_chunks = (size_t)n_out * (row_bytes / 16);
    const size_t blocks = (n_chunks + 255) / 256;
    quant_block_rows_kernel<<<(unsigned)(blocks < 8192 ? blocks : 8192), 256, 0, stream>>>(
        (uint4 *)dst, (const uint4 *)src, n_chunks, (int)(row_bytes / 16), to_blocks);
    return cudaGetLastError();
}

extern "C" unsigned vb_quant_interleave4_word(unsigned v)
{
    return interleave4_word(v);
}

extern "C" cudaError_t vb_quant_interleave4(uint8_t *q, size_t bytes, cudaStream_t stream)
{
    if (!q || bytes % 4 || (uintptr_t)q % 4)
        return cudaErrorInvalidValue;
    const size_t n_words = bytes / 4;
    if (n_words == 0)
        return cudaSuccess;
    const size_t blocks = (n_words + 255) / 256;
    quant_interleave4_kernel<<<(unsigned)(blocks < 8192 ? blocks : 8192), 256, 0, stream>>>(
        (unsigned *)q, n_words);
    return cudaGetLastError();
}
#endif

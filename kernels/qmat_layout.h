// Where a 16-byte chunk of a quantized matrix lies in device memory, in
// either of vb_qmat's layouts (kernels.h): row order, or row blocks.
//
// Why row blocks: the quantized decode GEMV's mma kernel (gemv_quant.cu)
// gives lane (g, c) of a warp 16 bytes of rows g and g + 8 a step, so in
// row order one warp load touches 8 rows, 64 bytes each, a row apart.
// With nothing else in the kernel (tests/bench/probe_qgemv_loads.cu: only
// the loads; tests/bench/RESULTS.md session 39) that pattern read at 2.2
// TB/s on an H100 where 512 contiguous bytes a warp load read at 2.8, the
// kernel itself at 2.2: its ceiling was its loads' shape, not its
// arithmetic.
// In row blocks the 8 rows' step is 512 contiguous bytes, lane 4 g + c's
// 16 at 16 (4 g + c): each warp load reads whole 128-byte lines.
//
// Plain C as well as CUDA (the kernels, and tests/unit/test_qmat_layout.c
// on a machine without a GPU), as qgemv_tiles.h.
#ifndef VB_QMAT_LAYOUT_H
#define VB_QMAT_LAYOUT_H

#ifndef __CUDACC_RTC__ /* NVRTC has size_t built in and no stddef.h */
#include <stddef.h>
#endif

#ifdef __CUDACC__
#define QMAT_FN __host__ __device__ __forceinline__
#else
#define QMAT_FN static inline
#endif

// Shapes that can be stored in row blocks: whole blocks of 8 rows, rows of
// whole 64-byte steps; no g_idx or perm (their kernels read bytes).
#define VB_QMAT_BLOCKED_OK(n_out, n_in, bits, has_g_idx, has_perm)                             \
    ((n_out) % 8 == 0 && ((long long)(n_in) * (bits) / 8) % 64 == 0 && !(has_g_idx) &&        \
     !(has_perm))

// Chunk k of row r (row_chunks 16-byte chunks a row; blocked: a multiple of
// 4, rows in whole blocks of 8, 8 row_chunks within an int), counted in
// chunks from q.
QMAT_FN size_t qmat_chunk(int r, int k, int row_chunks, int blocked)
{
    return blocked ? (size_t)(r >> 3) * (size_t)(8 * row_chunks) +
                         (size_t)((k >> 2) * 32 + (r & 7) * 4 + (k & 3))
                   : (size_t)r * (size_t)row_chunks + (size_t)k;
}

// Chunks from a row's step (4 chunks) to its next.
QMAT_FN int qmat_step_chunks(int blocked)
{
    return blocked ? 32 : 4;
}

#endif

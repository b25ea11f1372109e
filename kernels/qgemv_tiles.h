/* Which quantized matrices the decode GEMV (gemv_quant.cu) reads with a
 * tiled copy of their scales and zeros, and that copy's bytes: one place
 * for the rule, which the kernel's entry point (vb_qgemv_sz_tiles_bytes),
 * the loaders (src/cuda/cuda_qweight.c) and the memory plan
 * (src/model/memory_plan.c) all follow. Plain C, no CUDA.
 *
 * The copy has, for each 16-row tile and group, a lane row pair's two
 * scales and two zeros (8 bytes) for each of the tile's 8 row pairs: 4
 * bytes a row and group, as the scales and zeros themselves. Only the mma
 * kernel's layouts with one group a step or more (4-bit: 128 columns a
 * step, 8-bit: 64) where a group is a power of two of steps, without
 * g_idx, and only rows of at least QGEMV_TILED_MIN_STEPS steps: measured
 * on an H200 (bench_gemv_quant, T = 1, group 128; tests/bench/RESULTS.md
 * session 26) the 7B down projection (148 steps at 4 bits, 296 at 8) went
 * 18.4 -> 16.8 us at 4 bits and 26.9 -> 23.5 at 8, gate / up (28 and 56
 * steps) stayed the same, q/k/v and o got slower (4-bit 8.0 -> 9.1 and
 * 5.2 -> 6.0 us). */
#ifndef VB_QGEMV_TILES_H
#define VB_QGEMV_TILES_H

#include <stdint.h>

#define QGEMV_TILED_MIN_STEPS 64

static inline uint64_t qgemv_sz_tiles_bytes(int bits, int64_t n_out, int64_t n_in,
                                            int64_t group_size, int64_t n_groups, int has_g_idx)
{
    const int64_t sc = bits == 4 ? 128 : 64; /* the mma kernel's step in columns */
    if ((bits != 4 && bits != 8) || has_g_idx || n_out <= 0 || n_groups <= 0 ||
        group_size <= 0 || group_size % sc != 0 || n_in % sc != 0 ||
        ((group_size / sc) & (group_size / sc - 1)) != 0 ||
        n_in / sc < QGEMV_TILED_MIN_STEPS || n_out * n_groups > INT32_MAX)
        return 0;
    return (uint64_t)((n_out + 15) / 16) * (uint64_t)n_groups * 64;
}

#endif

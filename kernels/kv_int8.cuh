// The int8 KV cache (--kv-cache-dtype int8) as the kernels read and write
// it: the block layout and rounding rule of src/forward/kv_int8.h, which is
// the contract (that header is plain C with <stddef.h>, which NVRTC lacks,
// so the offsets are restated here; tests/gpu/test_kv_int8_kernels.c
// checks the two agree byte for byte).
//
// One layer's K (or V) buffer: block b at byte b * block_size * kv_heads *
// (head_dim + 4), holding [block_size][kv_heads][head_dim] int8 values,
// then [block_size][kv_heads] fp32 scales. A value reads back as q * scale.
//
// Every kernel dequantizes the same way, kv8_dequant8: q * scale in fp32
// (one rounding), then rounded to fp16, the element type the fp16 kernels
// load. So an int8 kernel computes exactly what its fp16 twin computes on
// the cache dequantized to fp16 (the tests hold them to the same bits).
#ifndef VB_KV_INT8_CUH
#define VB_KV_INT8_CUH

#include <cuda_fp16.h>

// Bytes of one layer's block.
__host__ __device__ __forceinline__ size_t kv8_block_bytes(int block_size, int kv_heads,
                                                           int head_dim)
{
    return (size_t)block_size * (size_t)kv_heads * ((size_t)head_dim + 4);
}

// Byte offset of the values of kv head h at row `row` of block `blk`.
__device__ __forceinline__ size_t kv8_values_at(int blk, int row, int h, int block_size,
                                                int kv_heads, int head_dim)
{
    return (size_t)blk * kv8_block_bytes(block_size, kv_heads, head_dim) +
           ((size_t)row * kv_heads + h) * (size_t)head_dim;
}

// Byte offset of that row's fp32 scale.
__device__ __forceinline__ size_t kv8_scale_at(int blk, int row, int h, int block_size,
                                               int kv_heads, int head_dim)
{
    return (size_t)blk * kv8_block_bytes(block_size, kv_heads, head_dim) +
           (size_t)block_size * kv_heads * head_dim +
           ((size_t)row * kv_heads + h) * sizeof(float);
}

// Byte k of w as a signed value.
__device__ __forceinline__ float kv8_byte(unsigned w, int k)
{
    return (float)((int)(w << (24 - 8 * k)) >> 24);
}

// 8 int8 values (a 64-bit word, lowest byte first) times scale, as 8
// fp16 values in a 16-byte word: the layout of 8 consecutive fp16 cache
// elements.
__device__ __forceinline__ uint4 kv8_dequant8(uint2 raw, float scale)
{
    uint4 out;
    unsigned *o = (unsigned *)&out;
#pragma unroll
    for (int k = 0; k < 4; k++) {
        const unsigned w = k < 2 ? raw.x : raw.y;
        const int b = 2 * (k & 1);
        __half2 h = __floats2half2_rn(__fmul_rn(kv8_byte(w, b), scale),
                                      __fmul_rn(kv8_byte(w, b + 1), scale));
        o[k] = *(unsigned *)&h;
    }
    return out;
}

// One int8 value times scale, rounded to fp16 as kv8_dequant8 does.
__device__ __forceinline__ float kv8_dequant1(signed char q, float scale)
{
    return __half2float(__float2half_rn(__fmul_rn((float)q, scale)));
}

#endif

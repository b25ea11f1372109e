/* IEEE fp16 and bfloat16 conversions on the host.
 *
 * Weights arrive as F16, BF16 or F32 and run as fp16 on the GPU and fp32 on
 * the CPU backend. These conversions are bit-exact with CUDA's
 * __float2half_rn / __half2float (round to nearest even), so the CPU oracle
 * and the device see the same weights. */
#ifndef VB_HALF_H
#define VB_HALF_H

#include <stdint.h>

#define VB_HALF_MAX 65504.0f

float vb_half_to_float(uint16_t h);
uint16_t vb_float_to_half(float f);   /* overflow gives +-inf, NaN stays NaN */
float vb_bf16_to_float(uint16_t b);
uint16_t vb_float_to_bf16(float f);   /* round to nearest even */

/* For weights: a finite value that would round to +-inf is clamped to
 * +-65504 and *out_of_range is incremented, so the loader can report it. */
uint16_t vb_float_to_half_clamped(float f, uint64_t *out_of_range);

#endif

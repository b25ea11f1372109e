/* fp16 / bf16 conversions, bit-exact with CUDA's round-to-nearest-even. */
#include "util/half.h"

#include <string.h>

static uint32_t float_bits(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    return x;
}

static float bits_float(uint32_t x)
{
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

float vb_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0) {
        /* zero or subnormal: mant * 2^-24, exact in fp32 */
        float v = (float)mant * 5.9604644775390625e-8f;
        return bits_float(float_bits(v) | sign);
    }
    if (exp == 31)
        return bits_float(sign | 0x7f800000u | (mant << 13));
    return bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

uint16_t vb_float_to_half(float f)
{
    uint32_t x = float_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t absx = x & 0x7fffffffu;

    if (absx > 0x7f800000u) /* NaN: keep it quiet */
        return (uint16_t)(sign | 0x7e00u);
    if (absx >= 0x477ff000u) /* >= 65520 rounds to inf (and inf stays inf) */
        return (uint16_t)(sign | 0x7c00u);
    if (absx < 0x38800000u) {
        /* Below 2^-14: a half subnormal q * 2^-24. */
        if (absx <= 0x33000000u) /* <= 2^-25: rounds (ties to even) to zero */
            return sign;
        uint32_t e = absx >> 23;
        uint32_t m = (absx & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126u - e;
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1u);
        uint32_t halfway = 1u << (shift - 1u);
        if (rem > halfway || (rem == halfway && (q & 1u)))
            q++;
        return (uint16_t)(sign | q);
    }
    /* Normal: rebias the exponent (127 -> 15) and round 13 mantissa bits;
     * a carry out of the mantissa correctly bumps the exponent. */
    uint32_t r = absx - 0x38000000u;
    uint32_t q = r >> 13;
    uint32_t rem = r & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1u)))
        q++;
    return (uint16_t)(sign | q);
}

float vb_bf16_to_float(uint16_t b)
{
    return bits_float((uint32_t)b << 16);
}

uint16_t vb_float_to_bf16(float f)
{
    uint32_t x = float_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)(((x >> 16) & 0x8000u) | 0x7fc0u);
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

uint16_t vb_float_to_half_clamped(float f, uint64_t *out_of_range)
{
    uint32_t absx = float_bits(f) & 0x7fffffffu;
    if (absx >= 0x477ff000u && absx < 0x7f800000u) {
        if (out_of_range)
            (*out_of_range)++;
        return f < 0 ? 0xfbffu : 0x7bffu;
    }
    return vb_float_to_half(f);
}

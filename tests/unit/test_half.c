/* fp16 / bf16 conversions against the compiler's own _Float16 (GCC/Clang on
 * x86-64 implement IEEE binary16 with round-to-nearest-even): exhaustive
 * over every half value one way, and over a dense sweep of floats the other
 * way. Tolerance: bit-exact. */
#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "util/half.h"

static uint16_t ref_float_to_half(float f)
{
    _Float16 h = (_Float16)f;
    uint16_t b;
    memcpy(&b, &h, 2);
    return b;
}

static float ref_half_to_float(uint16_t b)
{
    _Float16 h;
    memcpy(&h, &b, 2);
    return (float)h;
}

static uint32_t bits(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    return x;
}

static void test_half_to_float_exhaustive(void)
{
    int bad = 0;
    for (uint32_t b = 0; b < 65536; b++) {
        float want = ref_half_to_float((uint16_t)b), got = vb_half_to_float((uint16_t)b);
        if (want != want) { /* NaN: any NaN will do */
            if (got == got)
                bad++;
        } else if (bits(want) != bits(got)) {
            bad++;
        }
    }
    CHECK_INT_EQ(bad, 0);
}

static void test_float_to_half_sweep(void)
{
    /* Every 97th float bit pattern covers all exponents, subnormals, ties
     * and the overflow boundary; plus the exact edge cases. */
    int bad = 0;
    for (uint64_t x = 0; x <= 0xffffffffull; x += 97) {
        float f;
        uint32_t u = (uint32_t)x;
        memcpy(&f, &u, 4);
        uint16_t want = ref_float_to_half(f), got = vb_float_to_half(f);
        if (f != f) {
            if ((got & 0x7c00) != 0x7c00 || (got & 0x3ff) == 0)
                bad++;
        } else if (want != got) {
            if (bad < 5)
                fprintf(stderr, "  float 0x%08x: want 0x%04x got 0x%04x\n", u, want, got);
            bad++;
        }
    }
    const float edges[] = {65504.0f, 65519.99f, 65520.0f, 65536.0f, 5.9604644775390625e-8f,
                           2.98023223876953125e-8f, 2.98023259e-8f, 6.103515625e-5f,
                           6.1035156e-5f, 1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        CHECK_INT_EQ(vb_float_to_half(edges[i]), ref_float_to_half(edges[i]));
        CHECK_INT_EQ(vb_float_to_half(-edges[i]), ref_float_to_half(-edges[i]));
    }
    CHECK_INT_EQ(bad, 0);
}

static void test_clamped_counts_out_of_range(void)
{
    uint64_t n = 0;
    CHECK_INT_EQ(vb_float_to_half_clamped(1e6f, &n), 0x7bff);
    CHECK_INT_EQ(vb_float_to_half_clamped(-70000.0f, &n), 0xfbff);
    CHECK_INT_EQ(vb_float_to_half_clamped(65504.0f, &n), 0x7bff);
    CHECK_INT_EQ(vb_float_to_half_clamped(1.0f, &n), 0x3c00);
    CHECK_INT_EQ(n, 2);
    /* inf is not a finite overflow: it stays inf and is not counted here */
    CHECK_INT_EQ(vb_float_to_half_clamped((float)INFINITY, &n), 0x7c00);
    CHECK_INT_EQ(n, 2);
}

static void test_bf16(void)
{
    CHECK(vb_bf16_to_float(0x3f80) == 1.0f);
    CHECK(vb_bf16_to_float(0xc000) == -2.0f);
    /* Round to nearest even, checked against double arithmetic: bf16 keeps
     * 8 significant bits, so x rounds to a multiple of 2^(e-7). */
    int bad = 0;
    for (uint64_t x = 0; x < 0x7f800000ull; x += 12347) {
        uint32_t u = (uint32_t)x;
        float f;
        memcpy(&f, &u, 4);
        double d = f;
        int e;
        frexp(d, &e);
        double ulp = ldexp(1.0, e - 8);
        double lo = floor(d / ulp) * ulp, hi = lo + ulp;
        double want;
        if (d - lo < hi - d)
            want = lo;
        else if (d - lo > hi - d)
            want = hi;
        else
            want = fmod(lo / ulp, 2.0) == 0.0 ? lo : hi;
        if (want >= ldexp(1.0, 128)) /* rounds past FLT_MAX: inf */
            want = INFINITY;
        if ((double)vb_bf16_to_float(vb_float_to_bf16(f)) != want && f >= 1.17549435e-38f) /* normal floats; subnormals keep fewer bits */
            bad++;
    }
    CHECK_INT_EQ(bad, 0);
    CHECK(vb_bf16_to_float(vb_float_to_bf16((float)NAN)) != vb_bf16_to_float(vb_float_to_bf16((float)NAN)));
}

int main(void)
{
    RUN_TEST(test_half_to_float_exhaustive);
    RUN_TEST(test_float_to_half_sweep);
    RUN_TEST(test_clamped_counts_out_of_range);
    RUN_TEST(test_bf16);
    return test_summary();
}

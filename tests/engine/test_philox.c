/* Philox4x32-10 against the known-answer vectors published with Random123
 * (tests/kat_vectors, lines "philox4x32 10 CTR[4] KEY[2] -> OUT[4]"), and
 * the properties the sampler relies on: uniforms strictly inside (0, 1),
 * a pure function of the key, roughly uniform. */
#include "harness.h"

#include "engine/philox.h"

static void check_kat(philox4x32_ctr c, philox4x32_key k, const uint32_t want[4])
{
    philox4x32_ctr got = philox4x32_10(c, k);
    for (int i = 0; i < 4; i++)
        CHECK_INT_EQ(got.v[i], want[i]);
}

static void test_known_answers(void)
{
    check_kat((philox4x32_ctr){{0, 0, 0, 0}}, (philox4x32_key){{0, 0}},
              (const uint32_t[4]){0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
    check_kat((philox4x32_ctr){{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}},
              (philox4x32_key){{0xffffffff, 0xffffffff}},
              (const uint32_t[4]){0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
    check_kat((philox4x32_ctr){{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}},
              (philox4x32_key){{0xa4093822, 0x299f31d0}},
              (const uint32_t[4]){0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});
}

static void test_uniform_open_interval(void)
{
    philox4x32_ctr zero = {{0, 0, 0, 0}}, ones = {{~0u, ~0u, ~0u, ~0u}};
    CHECK(philox_uniform_open(zero) > 0.0);
    CHECK(philox_uniform_open(ones) < 1.0);
}

/* Mean of many draws within 5 standard errors of 1/2 (sd of U(0,1) is
 * 1/sqrt(12)); Gumbel mean is the Euler-Mascheroni constant 0.5772. */
static void test_uniform_moments(void)
{
    const int n = 200000;
    double su = 0, sg = 0;
    for (int i = 0; i < n; i++) {
        su += philox_sample_uniform(1234, 7, 0, (uint32_t)i, 42);
        sg += philox_sample_gumbel(99, 3, 1, 5, (uint32_t)i);
    }
    CHECK_NEAR(su / n, 0.5, 5 * 0.2887 / sqrt(n));
    CHECK_NEAR(sg / n, 0.5772156649, 5 * 1.2825 / sqrt(n)); /* Gumbel sd = pi/sqrt(6) */
}

static void test_keyed_draws_differ(void)
{
    double a = philox_sample_uniform(1, 0, 0, 0, 0);
    CHECK(a == philox_sample_uniform(1, 0, 0, 0, 0));
    CHECK(a != philox_sample_uniform(2, 0, 0, 0, 0));
    CHECK(a != philox_sample_uniform(1, 1, 0, 0, 0));
    CHECK(a != philox_sample_uniform(1, 0, 1, 0, 0));
    CHECK(a != philox_sample_uniform(1, 0, 0, 1, 0));
    CHECK(a != philox_sample_uniform(1, 0, 0, 0, 1));
    CHECK(a != philox_sample_uniform((uint64_t)1 << 32 | 1, 0, 0, 0, 0));
}

int main(void)
{
    RUN_TEST(test_known_answers);
    RUN_TEST(test_uniform_open_interval);
    RUN_TEST(test_uniform_moments);
    RUN_TEST(test_keyed_draws_differ);
    return test_summary();
}

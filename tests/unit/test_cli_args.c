/* Value parsers behind every option: accepted forms, ranges, rejections. */
#include <stdint.h>

#include "cli/cli_args.h"
#include "harness.h"

static void test_int(void)
{
    long v = 0;
    CHECK_INT_EQ(cli_parse_int("t", "--tp", "4", 1, 8, &v), 0);
    CHECK_INT_EQ(v, 4);
    CHECK_INT_EQ(cli_parse_int("t", "--tp", "0", 1, 8, &v), -1);
    CHECK_INT_EQ(cli_parse_int("t", "--tp", "4x", 1, 8, &v), -1);
    CHECK_INT_EQ(cli_parse_int("t", "--tp", "", 1, 8, &v), -1);
    CHECK_INT_EQ(cli_parse_int("t", "--tp", "99999999999999999999", 1, 8, &v), -1);
}

static void test_double(void)
{
    double d = 0;
    CHECK_INT_EQ(cli_parse_double("t", "--top-p", "0.8", 0, 1, &d), 0);
    CHECK_NEAR(d, 0.8, 0);
    CHECK_INT_EQ(cli_parse_double("t", "--top-p", "1.5", 0, 1, &d), -1);
    CHECK_INT_EQ(cli_parse_double("t", "--top-p", "nan", 0, 1, &d), -1);
    CHECK_INT_EQ(cli_parse_double("t", "--top-p", "0.8.1", 0, 1, &d), -1);
}

static void test_bytes(void)
{
    uint64_t b = 0;
    CHECK_INT_EQ(cli_parse_bytes("t", "--gpu-memory", "32510MiB", &b), 0);
    CHECK_INT_EQ(b, 32510ull << 20);
    CHECK_INT_EQ(cli_parse_bytes("t", "--gpu-memory", "16GiB", &b), 0);
    CHECK_INT_EQ(b, 16ull << 30);
    CHECK_INT_EQ(cli_parse_bytes("t", "--gpu-memory", "1.5G", &b), 0);
    CHECK_INT_EQ(b, 3ull << 29);
    CHECK_INT_EQ(cli_parse_bytes("t", "--gpu-memory", "4096", &b), 0);
    CHECK_INT_EQ(b, 4096);
    CHECK_INT_EQ(cli_parse_bytes("t", "--gpu-memory", "12XB", &b), -1);
    CHECK_INT_EQ(cli_parse_bytes("t", "--gpu-memory", "-1GiB", &b), -1);
    CHECK_INT_EQ(cli_parse_bytes("t", "--gpu-memory", "GiB", &b), -1);
}

static void test_u64(void)
{
    uint64_t s = 0;
    CHECK_INT_EQ(cli_parse_u64("t", "--seed", "18446744073709551615", &s), 0);
    CHECK(s == UINT64_MAX);
    CHECK_INT_EQ(cli_parse_u64("t", "--seed", "-3", &s), -1);
}

int main(void)
{
    RUN_TEST(test_int);
    RUN_TEST(test_double);
    RUN_TEST(test_bytes);
    RUN_TEST(test_u64);
    return test_summary();
}

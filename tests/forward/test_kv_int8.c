/* The int8 KV cache's row quantizer and block layout (forward/kv_int8.h):
 * the rounding bound, the edge rows (zeros, an infinity, a NaN), and that
 * every (slot, head)'s values and scale have bytes of their own. */
#include "harness.h"

#include <math.h>
#include <stdlib.h>

#include "forward/kv_dtype.h"
#include "forward/kv_int8.h"

static void test_rounding_bound(void)
{
    float x[128];
    int8_t q[128];
    float s;
    srand(7);
    for (int i = 0; i < 128; i++)
        x[i] = (float)rand() / RAND_MAX * 6.0f - 3.0f;
    x[17] = -9.5f; /* the row's largest magnitude, negative */
    kv_int8_quantize(x, 128, q, &s);
    CHECK_NEAR(s, 9.5f / 127.0f, 1e-9);
    CHECK_INT_EQ(q[17], -127);
    double worst = 0;
    for (int i = 0; i < 128; i++)
        worst = fmax(worst, fabs(x[i] - q[i] * s));
    CHECK(worst <= 0.5 * s * (1 + 1e-5)); /* round to nearest: half a step */
    CHECK(worst > 0);
}

static void test_edge_rows(void)
{
    float x[8] = {0}, s = 1;
    int8_t q[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    kv_int8_quantize(x, 8, q, &s); /* zeros: scale 0, values 0 */
    CHECK(s == 0.0f);
    for (int i = 0; i < 8; i++)
        CHECK_INT_EQ(q[i], 0);
    x[3] = INFINITY;
    x[4] = 1.0f;
    kv_int8_quantize(x, 8, q, &s); /* an infinity: stored as zeros, not NaN */
    CHECK(s == 0.0f && q[4] == 0);
    x[3] = NAN;
    kv_int8_quantize(x, 8, q, &s); /* a NaN among finite values: 0 there */
    CHECK_NEAR(s, 1.0f / 127.0f, 1e-9);
    CHECK_INT_EQ(q[3], 0);
    CHECK_INT_EQ(q[4], 127);
    /* ties to even: 0.5 / 127 steps of a row whose max is 127 */
    float t[3] = {127.0f, 2.5f, -3.5f};
    int8_t qt[3];
    kv_int8_quantize(t, 3, qt, &s);
    CHECK_INT_EQ(qt[1], 2);
    CHECK_INT_EQ(qt[2], -4);
}

/* Every byte of a few blocks belongs to exactly one (slot, head) value or
 * scale, scales 4-byte aligned. */
static void test_layout(void)
{
    const int bs = 16, kvh = 3, hd = 24, blocks = 3;
    size_t total = blocks * kv_int8_block_bytes(bs, kvh, hd);
    CHECK_INT_EQ((long)total, (long)(blocks * bs * kvh * (hd + 4)));
    unsigned char *owner = calloc(total, 1);
    for (size_t slot = 0; slot < (size_t)blocks * bs; slot++)
        for (int h = 0; h < kvh; h++) {
            size_t v = kv_int8_values_at(slot, h, bs, kvh, hd);
            size_t sc = kv_int8_scale_at(slot, h, bs, kvh, hd);
            CHECK(v + hd <= total && sc + 4 <= total && sc % 4 == 0);
            for (int i = 0; i < hd; i++)
                owner[v + i]++;
            for (int i = 0; i < 4; i++)
                owner[sc + i]++;
        }
    int bad = 0;
    for (size_t i = 0; i < total; i++)
        bad += owner[i] != 1;
    CHECK_INT_EQ(bad, 0);
    free(owner);
}

static void test_names(void)
{
    vb_kv_dtype d;
    CHECK(vb_kv_dtype_parse("int8", &d) == 0 && d == VB_KV_INT8);
    CHECK(vb_kv_dtype_parse("fp16", &d) == 0 && d == VB_KV_ACT);
    CHECK(vb_kv_dtype_parse("fp8", &d) == -1);
    CHECK_STR_EQ(vb_kv_dtype_name(VB_KV_INT8), "int8");
}

int main(void)
{
    RUN_TEST(test_rounding_bound);
    RUN_TEST(test_edge_rows);
    RUN_TEST(test_layout);
    RUN_TEST(test_names);
    return test_summary();
}

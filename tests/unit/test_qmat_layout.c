/* kernels/qmat_layout.h: where a 16-byte chunk of a quantized matrix lies
 * in row order and in row blocks (kernels.h vb_qmat), the address every
 * GPU reader of the weights and the upload's reordering take. Checked
 * without a GPU: row blocks are a permutation of the chunks that keeps
 * each 8-row block in its rows' own span (so joined matrices stay
 * joined), puts a step of the 8 rows in one run of 32 chunks in lane
 * order (the mma GEMV's warp load: 512 contiguous bytes), and steps a row
 * by qmat_step_chunks; row order is plain. */
#include <stdlib.h>

#include "harness.h"
#include "qmat_layout.h" /* plain C: no CUDA headers on a machine without them */

static const int shapes[][2] = {/* n_out, row_chunks (4-bit: n_in / 32) */
                                {8, 4}, {16, 8}, {24, 28}, {72, 112}, {40, 4}, {8, 592}};
#define N_SHAPES (int)(sizeof shapes / sizeof shapes[0])

static void test_blocks_permute_within_their_rows(void)
{
    for (int i = 0; i < N_SHAPES; i++) {
        const int n_out = shapes[i][0], rc = shapes[i][1];
        CHECK(VB_QMAT_BLOCKED_OK(n_out, rc * 32, 4, 0, 0));
        const size_t total = (size_t)n_out * rc;
        unsigned char *seen = calloc(total, 1);
        int bad_range = 0, bad_span = 0, twice = 0;
        for (int r = 0; r < n_out; r++)
            for (int k = 0; k < rc; k++) {
                const size_t at = qmat_chunk(r, k, rc, 1);
                if (at >= total) {
                    bad_range++;
                    continue;
                }
                bad_span += at / ((size_t)8 * rc) != (size_t)(r / 8);
                twice += seen[at]++ != 0;
            }
        CHECK_INT_EQ(bad_range, 0);
        CHECK_INT_EQ(bad_span, 0);
        CHECK_INT_EQ(twice, 0); /* with every index in range: a permutation */
        free(seen);
    }
}

static void test_a_step_of_8_rows_is_one_run_in_lane_order(void)
{
    for (int i = 0; i < N_SHAPES; i++) {
        const int n_out = shapes[i][0], rc = shapes[i][1];
        int bad = 0;
        for (int b = 0; b < n_out / 8; b++)
            for (int s = 0; s < rc / 4; s++) {
                const size_t base = qmat_chunk(8 * b, 4 * s, rc, 1);
                for (int lane = 0; lane < 32; lane++) /* lane (g, c) = (lane / 4, lane % 4) */
                    bad += qmat_chunk(8 * b + lane / 4, 4 * s + lane % 4, rc, 1) != base + lane;
            }
        CHECK_INT_EQ(bad, 0);
    }
}

static void test_steps_and_row_order(void)
{
    for (int i = 0; i < N_SHAPES; i++) {
        const int n_out = shapes[i][0], rc = shapes[i][1];
        int bad_step = 0, bad_rows = 0;
        for (int r = 0; r < n_out; r++)
            for (int k = 0; k < rc; k++) {
                bad_rows += qmat_chunk(r, k, rc, 0) != (size_t)r * rc + (size_t)k;
                if (k + 4 < rc) {
                    bad_step += qmat_chunk(r, k + 4, rc, 1) - qmat_chunk(r, k, rc, 1) !=
                                (size_t)qmat_step_chunks(1);
                    bad_step += qmat_chunk(r, k + 4, rc, 0) - qmat_chunk(r, k, rc, 0) !=
                                (size_t)qmat_step_chunks(0);
                }
            }
        CHECK_INT_EQ(bad_step, 0);
        CHECK_INT_EQ(bad_rows, 0);
    }
}

static void test_which_shapes_take_blocks(void)
{
    CHECK(VB_QMAT_BLOCKED_OK(3584, 3584, 4, 0, 0));
    CHECK(VB_QMAT_BLOCKED_OK(3584, 18944, 8, 0, 0));
    CHECK(!VB_QMAT_BLOCKED_OK(3588, 3584, 4, 0, 0)); /* a partial block of rows */
    CHECK(!VB_QMAT_BLOCKED_OK(3584, 3600, 4, 0, 0)); /* rows not of whole 64-byte steps */
    CHECK(!VB_QMAT_BLOCKED_OK(3584, 3584, 4, 1, 0)); /* g_idx */
    CHECK(!VB_QMAT_BLOCKED_OK(3584, 3584, 8, 0, 1)); /* act order */
}

int main(void)
{
    RUN_TEST(test_blocks_permute_within_their_rows);
    RUN_TEST(test_a_step_of_8_rows_is_one_run_in_lane_order);
    RUN_TEST(test_steps_and_row_order);
    RUN_TEST(test_which_shapes_take_blocks);
    return test_summary();
}

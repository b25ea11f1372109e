/* kernels/convert.cu against the host conversion (util/half.c, itself
 * checked against the compiler's _Float16): bit-exact for every element,
 * every element written (destination poisoned first), and the same
 * out-of-range count. Sizes cover empty, partial warps, partial blocks and
 * the grid-stride path. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "cuda/cuda_check.h"
#include "harness.h"
#include "kernels.h"
#include "util/half.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rng32(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

static float random_value(void)
{
    uint32_t r = rng32();
    switch (r % 8) {
    case 0: return 70000.0f * ((r & 256) ? 1 : -1);   /* out of fp16 range */
    case 1: return ldexpf((float)(r >> 8) / 16777216.0f, -20); /* fp16 subnormal */
    case 2: {
        uint32_t b = rng32();                          /* any bit pattern */
        float f;
        memcpy(&f, &b, 4);
        return f;
    }
    default: return ((float)(r >> 8) / 8388608.0f - 1.0f) * 4.0f;
    }
}

static int run_case(int dtype, size_t n)
{
    size_t esize = dtype == VB_SRC_F32 ? 4 : 2;
    void *host_src = malloc(n * esize + 4);
    uint16_t *want = malloc(n * 2 + 2), *got = malloc(n * 2 + 2);
    uint64_t want_oor = 0;
    for (size_t i = 0; i < n; i++) {
        float v = random_value();
        if (dtype == VB_SRC_F32) {
            ((float *)host_src)[i] = v;
            want[i] = vb_float_to_half_clamped(v, &want_oor);
        } else if (dtype == VB_SRC_BF16) {
            uint16_t b = vb_float_to_bf16(v);
            ((uint16_t *)host_src)[i] = b;
            want[i] = vb_float_to_half_clamped(vb_bf16_to_float(b), &want_oor);
        } else {
            uint16_t h = vb_float_to_half(v);
            ((uint16_t *)host_src)[i] = h;
            want[i] = h;
        }
    }
    void *d_src = NULL;
    uint16_t *d_dst = NULL;
    unsigned long long *d_oor = NULL, got_oor = 0;
    CUDA_CHECK(cudaMalloc(&d_src, n * esize + 4));
    CUDA_CHECK(cudaMalloc((void **)&d_dst, n * 2 + 2));
    CUDA_CHECK(cudaMalloc((void **)&d_oor, sizeof *d_oor));
    CUDA_CHECK(cudaMemcpy(d_src, host_src, n * esize, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemset(d_dst, 0xA5, n * 2 + 2)); /* poison, plus one guard element */
    CUDA_CHECK(cudaMemset(d_oor, 0, sizeof *d_oor));
    CUDA_CHECK(vb_convert_to_fp16(d_src, dtype, d_dst, n, d_oor, 0));
    CUDA_CHECK(cudaDeviceSynchronize());
    CUDA_CHECK(cudaMemcpy(got, d_dst, n * 2 + 2, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(&got_oor, d_oor, sizeof got_oor, cudaMemcpyDeviceToHost));
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        int want_nan = (want[i] & 0x7c00) == 0x7c00 && (want[i] & 0x3ff);
        int got_nan = (got[i] & 0x7c00) == 0x7c00 && (got[i] & 0x3ff);
        if (want_nan ? !got_nan : want[i] != got[i]) {
            if (bad < 3)
                fprintf(stderr, "  dtype %d n %zu [%zu]: want 0x%04x got 0x%04x\n", dtype, n,
                        i, want[i], got[i]);
            bad++;
        }
    }
    CHECK_INT_EQ(bad, 0);
    CHECK_INT_EQ(got_oor, dtype == VB_SRC_F16 ? 0 : want_oor);
    CHECK_INT_EQ(got[n], 0xA5A5); /* nothing written past the end */
    CUDA_CHECK(cudaFree(d_src));
    CUDA_CHECK(cudaFree(d_dst));
    CUDA_CHECK(cudaFree(d_oor));
    free(host_src);
    free(want);
    free(got);
    return bad == 0;
}

static void test_all_dtypes_and_sizes(void)
{
    const size_t sizes[] = {0, 1, 31, 33, 256, 1000, 4194304 + 7, 16384 * 256 * 3 + 5};
    for (int dtype = 0; dtype < 3; dtype++)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            run_case(dtype, sizes[s]);
}

int main(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0)
        return test_skip("no CUDA device on this machine");
    RUN_TEST(test_all_dtypes_and_sizes);
    return test_summary();
}

/* kernels/device_caps.cu: under vb_device_caps_emulate(70) a newer GPU
 * reads as a V100 (compute capability 7.0, at most 96 KB of shared memory
 * a block) and every launcher's sm_80+ / sm_90 path is refused, so the
 * *_sm70 GPU tests (VB_EMULATE_SM=70) do run a V100's paths; without it
 * the GPU's own capability and paths come back. The GPU's values are read
 * here with the runtime API, not through the code under test.
 *
 * Order matters: the quantized GEMV's launcher decides its path once a
 * process (one GPU a process), so the emulated checks run first. */
#include <stdalign.h>
#include <stdbool.h>

#include <cuda_runtime_api.h>

#include "harness.h"
#include "kernels.h"

static int real_major, real_minor, real_optin;
static alignas(16) char aligned[16]; /* the chain's support check reads only the address */

static bool newer_than_v100(void)
{
    return real_major * 10 + real_minor > 70;
}

static void test_emulated_v100(void)
{
    vb_device_caps_emulate(70);
    vb_device_caps c = {0};
    CHECK_INT_EQ(vb_device_caps_get(&c), cudaSuccess);
    if (newer_than_v100()) {
        CHECK_INT_EQ(c.major, 7);
        CHECK_INT_EQ(c.minor, 0);
        CHECK_INT_EQ(c.smem_optin, real_optin < 98304 ? real_optin : 98304);
    } else { /* a V100 (or older) is itself */
        CHECK_INT_EQ(c.major, real_major);
        CHECK_INT_EQ(c.minor, real_minor);
        CHECK_INT_EQ(c.smem_optin, real_optin);
    }
    /* a V100's choices: no mma.sync / wgmma attention, no chain GEMM, no
     * PDL, quantized weights in row order for the SIMT GEMV (7B shapes) */
    CHECK(!vb_attention_decode_mma_supported(28, 4, 128));
    CHECK(!vb_attention_prefill_mma_supported(28, 4, 128));
    CHECK(!vb_attention_prefill_wgmma_supported(28, 4, 128));
    CHECK(!vb_gemm_chain_supported(1, 3584, 512, aligned, aligned));
    CHECK_INT_EQ(vb_pdl_enable(1), 0);
    vb_qmat m = {.bits = 4, .n_out = 512, .n_in = 3584, .group_size = 128, .n_groups = 28};
    CHECK(!vb_gemv_quant_wants_blocks(&m));
    vb_pdl_enable(0);
}

static void test_own_gpu(void)
{
    vb_device_caps_emulate(0);
    vb_device_caps c = {0};
    CHECK_INT_EQ(vb_device_caps_get(&c), cudaSuccess);
    CHECK_INT_EQ(c.major, real_major);
    CHECK_INT_EQ(c.minor, real_minor);
    CHECK_INT_EQ(c.smem_optin, real_optin);
    /* the sm_80+ paths are back where this GPU has them (a build for the
     * GPU's architecture: scripts/gpu-check's) */
    if (real_major >= 8) {
        CHECK(vb_attention_decode_mma_supported(28, 4, 128));
        CHECK(vb_attention_prefill_mma_supported(28, 4, 128));
        CHECK(vb_gemm_chain_supported(1, 3584, 512, aligned, aligned));
    }
    if (real_major >= 9)
        CHECK_INT_EQ(vb_pdl_enable(1), 1);
    vb_pdl_enable(0);
}

int main(void)
{
    int n = 0, dev = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0)
        return test_skip("no CUDA device on this machine");
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&real_major, cudaDevAttrComputeCapabilityMajor, dev) !=
            cudaSuccess ||
        cudaDeviceGetAttribute(&real_minor, cudaDevAttrComputeCapabilityMinor, dev) !=
            cudaSuccess ||
        cudaDeviceGetAttribute(&real_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) !=
            cudaSuccess) {
        fprintf(stderr, "test_device_caps: the GPU's attributes could not be read\n");
        return 1;
    }
    printf("GPU: compute capability %d.%d, %d bytes of shared memory a block\n", real_major,
           real_minor, real_optin);
    RUN_TEST(test_emulated_v100);
    RUN_TEST(test_own_gpu);
    return test_summary();
}

// What the launchers choose their kernels by: this process's GPU (one a
// process), or, under vb_device_caps_emulate(70) on a newer GPU, a V100's
// compute capability and shared memory. V100 is the product's first GPU
// and the GPU machine has none: with the emulation the GPU tests run the
// paths a V100 takes (WMMA prefill attention, the plain decode attention,
// the SIMT quantized GEMV on weights in row order, launches without PDL,
// the WMMA batch-invariant GEMM) through their host-side choices. The
// kernels themselves are still compiled for the real GPU: code under a
// __CUDA_ARCH__ test inside a kernel is the GPU's, the SM count is the
// GPU's, and the speed says nothing of a V100's.
#include "kernels.h"

#ifndef __CUDACC_RTC__ /* host code (the sm_70 NVRTC check compiles device code alone) */

#define V100_SMEM_OPTIN 98304 /* bytes a block may opt in to on sm_70 */

static int emulate_sm; /* 0 or 70; set before the first launch (backend setup) */

extern "C" void vb_device_caps_emulate(int sm)
{
    emulate_sm = sm == 70 ? 70 : 0;
}

extern "C" cudaError_t vb_device_caps_get(vb_device_caps *c)
{
    static vb_device_caps real; /* one GPU a process */
    static bool have;
    if (!have) {
        int dev = 0;
        cudaError_t e = cudaGetDevice(&dev);
        if (e == cudaSuccess)
            e = cudaDeviceGetAttribute(&real.major, cudaDevAttrComputeCapabilityMajor, dev);
        if (e == cudaSuccess)
            e = cudaDeviceGetAttribute(&real.minor, cudaDevAttrComputeCapabilityMinor, dev);
        if (e == cudaSuccess)
            e = cudaDeviceGetAttribute(&real.smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin,
                                       dev);
        if (e == cudaSuccess)
            e = cudaDeviceGetAttribute(&real.n_sm, cudaDevAttrMultiProcessorCount, dev);
        if (e != cudaSuccess) {
            (void)cudaGetLastError(); /* a failed query must not poison later checks */
            return e;
        }
        have = true;
    }
    *c = real;
    if (emulate_sm == 70 && real.major * 10 + real.minor > 70) {
        c->major = 7;
        c->minor = 0;
        if (c->smem_optin > V100_SMEM_OPTIN)
            c->smem_optin = V100_SMEM_OPTIN;
    }
    return cudaSuccess;
}

extern "C" bool vb_device_runs(int sm, const void *kernel)
{
    vb_device_caps c;
    if (vb_device_caps_get(&c) != cudaSuccess || c.major * 10 + c.minor < sm)
        return false;
    cudaFuncAttributes attr;
    if (cudaFuncGetAttributes(&attr, kernel) != cudaSuccess) {
        (void)cudaGetLastError();
        return false;
    }
    return attr.ptxVersion >= sm;
}

#endif

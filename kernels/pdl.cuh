// Programmatic dependent launch (PDL, sm_90 and newer).
//
// Why: a batch-1 decode step is ~230 kernels, most of them a few
// microseconds long, and the big ones (the GEMVs) are pure weight streams
// whose first loads do not depend on the previous kernel at all. Launched
// with the programmatic-serialization attribute, a kernel's blocks may
// start while the kernel before it in the stream is still running: they
// do the work that needs nothing from it (the GEMV issues its first weight
// loads), then wait in pdl_wait() until the previous kernel has finished
// and its writes are visible. That hides the launch gap and keeps the
// memory bus busy across kernel boundaries.
//
// The rule every kernel launched through vb_launch_pdl must keep: no
// write, and no read of what the kernel just before it may still write,
// before pdl_wait(). Every kernel here calls pdl_launch_dependents() only
// after its own pdl_wait(), so a kernel starts early only once every block
// of the one before has passed its wait: the kernels two or more launches
// back have finished. Hence safe to read early: weights (written once, on
// another stream, before the first step), the step's inputs copied in
// before its first kernel (positions, block tables), and what earlier
// steps wrote (the K/V rows before the token's own).
//
// On older GPUs, and when the backend has not switched PDL on
// (vb_pdl_enable), launches are ordinary and both device calls compile to
// nothing.
#ifndef VB_PDL_CUH
#define VB_PDL_CUH

__device__ __forceinline__ void pdl_wait(void)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_launch_dependents(void)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

#ifndef __CUDACC_RTC__
#include <utility>

#include "kernels.h"

// Launches kernel with the PDL attribute when vb_pdl_enabled(), plainly
// otherwise; returns the launch's status.
template <typename... Params, typename... Args>
static cudaError_t vb_launch_pdl(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                                 cudaStream_t stream, Args &&...args)
{
    cudaLaunchAttribute attr;
    attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr.val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    cfg.attrs = &attr;
    cfg.numAttrs = vb_pdl_enabled() ? 1 : 0;
    return cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...);
}
#endif

#endif

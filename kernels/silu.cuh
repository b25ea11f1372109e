// silu(gate) * up in fp32, the caller rounding once: the one definition
// the MLP's separate SiLU-gate kernel (elementwise.cu) and the
// batch-invariant chain's gate/up epilogue (gemm_chain.cu) share, so the
// two give the same bits for the same rounded gate and up.
#ifndef VB_SILU_CUH
#define VB_SILU_CUH

__device__ __forceinline__ float silu_times(float g, float u)
{
    return g / (1.0f + __expf(-g)) * u;
}

#endif

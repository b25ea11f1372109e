// silu(gate) * up in fp32, the caller rounding once: the one definition
// the MLP's separate SiLU-gate kernel (elementwise.cu), the GEMV's gate/up
// epilogue (gemv.cu) and the batch-invariant chain's (gemm_chain.cu)
// share; the last gives the separate kernel's bits for the same rounded
// gate and up.
#ifndef VB_SILU_CUH
#define VB_SILU_CUH

__device__ __forceinline__ float silu_times(float g, float u)
{
    return g / (1.0f + __expf(-g)) * u;
}

#endif

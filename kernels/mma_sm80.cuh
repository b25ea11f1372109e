// The sm_80+ instructions the tensor-core kernels share
// (attention_prefill_mma.cu, attention_decode_mma.cu, gemv_quant.cu,
// gemm_invariant.cu), as inline PTX whose
// register layouts the PTX ISA documents: cp.async of 16 bytes into shared
// memory (and of 4, for the int8 KV cache's scales), ldmatrix (plain and
// transposed) and mma.sync m16n8k16 with fp16 inputs and fp32 accumulators.
// sm_70 has none of them: under its compiler this header defines nothing,
// and the kernels that use it compile to a trap there (their hosts never
// launch them on sm_70).
#ifndef VB_MMA_SM80_CUH
#define VB_MMA_SM80_CUH

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
__device__ __forceinline__ unsigned mma_smem_addr(const void *p)
{
    return (unsigned)__cvta_generic_to_shared(p);
}

// 16 bytes global -> shared, bypassing L1; src_bytes 0 writes zeros.
__device__ __forceinline__ void mma_cp_async16(void *dst, const void *src, int src_bytes)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(mma_smem_addr(dst)),
                 "l"(src), "r"(src_bytes));
}

// 4 bytes global -> shared (through L1: .cg takes only 16); src_bytes 0
// writes zeros. The int8 KV cache's per-row scales (kv_int8.cuh).
__device__ __forceinline__ void mma_cp_async4(void *dst, const void *src, int src_bytes)
{
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(mma_smem_addr(dst)),
                 "l"(src), "r"(src_bytes));
}

__device__ __forceinline__ void mma_ldmatrix_x4(unsigned r[4], const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(mma_smem_addr(p)));
}

// Two 8x8 matrices (an mma B operand of one n8 tile): lanes 0-15 give the
// row addresses, the other lanes' are ignored.
__device__ __forceinline__ void mma_ldmatrix_x2(unsigned r[2], const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(mma_smem_addr(p)));
}

__device__ __forceinline__ void mma_ldmatrix_x4_trans(unsigned r[4], const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(mma_smem_addr(p)));
}

// c[16x8] += a[16x16] b[16x8], fp16 in, fp32 accumulate.
__device__ __forceinline__ void mma_m16n8k16(float c[4], const unsigned a[4], unsigned b0,
                                             unsigned b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
#endif

#endif

/* C entry points of the kernels in kernels/.
 *
 * Each launcher picks its own grid, runs on the given stream and returns
 * cudaGetLastError() so the caller checks it with CUDA_CHECK. fp16 data is
 * passed as uint16_t (C has no half type); the bits are IEEE binary16.
 *
 * Under NVRTC (CI's sm_70 proof compiles device code only) the host
 * declarations are hidden. */
#ifndef VB_KERNELS_H
#define VB_KERNELS_H

#ifndef __CUDACC_RTC__
#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Source formats of checkpoint tensors. */
enum vb_src_dtype { VB_SRC_F16 = 0, VB_SRC_BF16 = 1, VB_SRC_F32 = 2 };

/* convert.cu: n values of src_dtype to fp16, round to nearest even. Finite
 * values beyond +-65504 are clamped to +-65504 and added to
 * *d_out_of_range (a device counter the caller zeroes); NaN and inf pass
 * through so the loader can refuse them. Same rule as the host's
 * vb_float_to_half_clamped. */
cudaError_t vb_convert_to_fp16(const void *src, int src_dtype, uint16_t *dst, size_t n,
                               unsigned long long *d_out_of_range, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif /* __CUDACC_RTC__ */
#endif

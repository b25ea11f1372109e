/* C entry points of the kernels in kernels/.
 *
 * Each launcher picks its own grid, runs on the given stream and returns
 * cudaGetLastError() so the caller checks it with CUDA_CHECK. fp16 data is
 * passed as uint16_t (C has no half type); the bits are IEEE binary16.
 *
 * Under NVRTC (CI's sm_70 proof compiles device code only) the host
 * declarations are hidden.
 *
 * MAP: backend op (src/forward/backend.h, called by the forward pass)
 * -> CUDA op (src/cuda/backend_cuda.c) -> launcher (below) -> .cu file.
 *
 *   embed           cuda_embed            vb_embed_f16               elementwise.cu
 *   matmul          cuda_matmul           vb_gemv_f16                gemv.cu
 *                                         (--batch-invariant: cuBLASLt,
 *                                         gemm_lt_invariant.c, and
 *                                         vb_gemm_chain for T <= 8   gemm_chain.cu
 *                                         or vb_gemm_invariant_f16)  gemm_invariant.cu
 *                                         or cuBLAS cublasGemmEx, then
 *                                         vb_add_bias_f16 if a bias  elementwise.cu
 *   matmul_qkv      cuda_matmul_qkv       vb_gemv_multi_f16          gemv.cu
 *                                         (--batch-invariant, T <= 8:
 *                                         vb_gemm_chain_multi)       gemm_chain.cu
 *   matmul_qkv_rope cuda_matmul_qkv_rope  vb_gemv_qkv_rope_f16       gemv_qkv_rope.cu
 *   matmul_gate_up  cuda_matmul_gate_up   vb_gemv_silu_gate_f16      gemv.cu
 *                                         (--batch-invariant, T <= 8:
 *                                         vb_gemm_chain_silu)        gemm_chain.cu
 *   matmul_quant    cuda_matmul_quant     vb_gemv_quant_f16 (T <= 8) gemv_quant.cu
 *                                         (vb_quant_gather_f16 first quant_gather.cu
 *                                         with act order), else
 *                                         vb_quant_dequant_f16 +     quant_dequant.cu
 *                                         cuBLAS, vb_add_bias_f16
 *   matmul_qkv_quant cuda_matmul_qkv_quant vb_gemv_quant_segs_f16    gemv_quant.cu
 *   matmul_qkv_rope_quant                 vb_gemv_quant_qkv_rope_f16 gemv_quant.cu
 *                   cuda_matmul_qkv_rope_quant (VB_QGEMV_EPILOGUE=1)
 *   matmul_gate_up_quant                  vb_gemv_quant_segs_f16 +   gemv_quant.cu
 *                   cuda_matmul_gate_up_quant vb_silu_gate_f16, or   elementwise.cu
 *                                         vb_gemv_quant_silu_f16     gemv_quant.cu
 *                                         (VB_QGEMV_EPILOGUE=1)
 *   rmsnorm         cuda_rmsnorm          vb_rmsnorm_residual_f16    rmsnorm.cu
 *   rmsnorm_rows    cuda_rmsnorm_rows     vb_rmsnorm_rows_f16        rmsnorm.cu
 *   resid_load      cuda_resid_load       vb_resid_load_f16          rmsnorm.cu
 *   rope_kv_write   cuda_rope_kv_write    vb_rope_kv_write_f16       rope_kv.cu
 *   attention       cuda_attention        vb_attention_f16           attention.cu
 *                                         vb_attention_decode_f16    attention_decode.cu
 *                                         vb_attention_decode_mma_f16 attention_decode_mma.cu
 *                                         vb_attention_prefill_f16   attention_prefill.cu
 *                                         vb_attention_prefill_mma_f16 attention_prefill_mma.cu
 *   silu_gate       cuda_silu_gate        vb_silu_gate_f16           elementwise.cu
 *   last_rows       cuda_last_rows        vb_last_rows_f16           elementwise.cu
 *   lm_head         cuda_lm_head          vb_gemv_f16 (fp32 out)     gemv.cu
 *                                         or cuBLAS cublasGemmEx (fp32 out)
 *   all_reduce_sum  cuda_all_reduce_sum   NCCL ncclAllReduce (no kernel of ours)
 *   summarize       cuda_summarize ->     vb_sampler_summarize       sampler_summary.cu
 *                   cuda_sampler_summarize (src/cuda/cuda_sampler.c)
 *   sample          cuda_sample ->        vb_sampler_summarize,      sampler_summary.cu,
 *                   cuda_sampler_sample   vb_sampler_choose          sampler_choose.cu
 *   (weight load)   cuda_weights_upload / weights_stream.c
 *                                         vb_convert_to_fp16         convert.cu
 *   (backend setup) cuda_backend_create   vb_pdl_enable              pdl.cu
 * Shared device code: pdl.cuh (programmatic dependent launch, used by the
 * decode-step kernels), gemv_common.cuh, rope_math.cuh. The other ops
 * (alloc, to_device, step_begin, graph_begin, ...) launch no kernel.
 *
 * GEMV or cuBLAS (use_gemv): the GEMV kernel when T <= VB_GEMV_MAX_ROWS
 * (the environment knob, default 2, at most VB_GEMV_MAX_ROWS = 8), n_in a
 * multiple of 8, x and w 16-byte aligned (vb_gemv_supported) and
 * VB_NO_GEMV is not set; cuBLAS otherwise. matmul_qkv, matmul_qkv_rope and
 * matmul_gate_up take the fused GEMV only under the same rule for every
 * matrix, and not under VB_NO_FUSED_GEMV (matmul_qkv_rope also not under
 * VB_NO_ROPE_FUSION, and only when every n_out is a multiple of
 * head_dim); otherwise they return false and the forward pass runs
 * separate matmuls (and rope_kv_write).
 *
 * Attention (cuda_attention), per step:
 *   1. head_dim not a multiple of 16, or VB_ATTENTION_PER_TOKEN:
 *      vb_attention_f16 for every token; nothing else.
 *   2. Decode tokens (sequences with one new token, padding rows too):
 *      a. vb_attention_decode_mma_f16 when the GPU runs it (sm_80+ code,
 *         shared memory; vb_attention_decode_mma_supported: head_dim a
 *         multiple of 16 up to 128 or 256, G = heads / kv_heads <= 16),
 *         VB_DECODE_WHOLE_GROUPS is not set, the table width's splits
 *         (ceil(max_blocks * block_size / VB_DECODE_MMA_SPLIT)) are at most
 *         VB_DECODE_MMA_MAX_SPLITS and 4 * n_decode * kv_heads * splits
 *         >= the SM count (blocks for a quarter of the SMs);
 *      b. else vb_attention_decode_f16 when vb_attention_decode_supported
 *         (G <= 8, head_dim a multiple of 8 up to 256), a block per query
 *         head or per GQA group by vb_attention_decode_heads_per_block
 *         (always per group under VB_DECODE_WHOLE_GROUPS), splits by
 *         vb_attention_decode_splits; under --batch-invariant (V100: no
 *         kernel a.) a block per group and fixed slices of
 *         VB_DECODE_INVARIANT_SLICE positions;
 *      c. else vb_attention_f16 on the decode tokens.
 *   3. Prompt tiles (runs of 2+ new tokens, 16 a tile):
 *      vb_attention_prefill_mma_f16 when vb_attention_prefill_mma_supported
 *      (sm_80+, head_dim a multiple of 16 up to 128, shared memory) and
 *      VB_PREFILL_WMMA is not set; vb_attention_prefill_f16 (WMMA) else.
 *   Every choice depends on the step's token count, table width and
 *   shapes, never on its context lengths, so a recorded decode graph
 *   stays valid.
 *
 * An int8 KV cache (--kv-cache-dtype int8, kernels/kv_int8.cuh): every
 * kernel above takes its _kv8 twin, chosen by the same rules;
 * rope_kv_write takes vb_rope_kv_write_kv8, and matmul_qkv_rope returns
 * false (its epilogue writes fp16 rows), so the forward runs matmul_qkv
 * and rope_kv_write. */
#ifndef VB_KERNELS_H
#define VB_KERNELS_H

/* gemm_invariant.cu's fixed split of n_in (part of its bit-level contract)
 * and the largest step its split mode takes (NVRTC sees them) */
#define VB_GEMM_INV_SLICE 512
#define VB_GEMM_INV_SPLIT_MAX_T 64

/* gemm_chain.cu limits (NVRTC sees them: the kernel sizes its parameters
 * and shared rows by them): x rows at most (one n8 tile of tokens), and
 * matrices in one launch (q, k, v) */
#define VB_GEMM_CHAIN_MAX_T 8
#define VB_GEMM_CHAIN_MAX_SEGS 3

/* gemv.cu limits (NVRTC sees them: the kernel sizes its parameters by them) */
#define VB_GEMV_MAX_ROWS 8 /* x rows at most */
#define VB_GEMV_MAX_SEGS 3 /* matrices in one launch (q, k, v) */

/* sampler_summary.cu: sampler_summarize (src/engine/sampler.h) on the
 * device, every row of a step in a few launches. Per-row arguments, built
 * on the host by src/cuda/cuda_sampler.c; plain types so the kernel and the
 * host share them (and NVRTC sees them). */
#define VB_SAMPLE_GREEDY 1      /* temperature <= 0: no division */
#define VB_SAMPLE_GUMBEL 2      /* sampling without truncation: best = argmax logit + Gumbel */
#define VB_SAMPLE_NEED_LSE 4    /* the host computes sum_exp for this row */
#define VB_SAMPLE_REPETITION 8  /* repetition penalty on the row's seen tokens */
#define VB_SAMPLE_SEEN_RESET 16 /* clear the row's seen bitmap before adding to it */
#define VB_SAMPLE_TRUNCATE 32  /* sampling with top-k / top-p / min-p: sampler_choose.cu draws */
#define VB_SAMPLE_MAX_CAND 1024 /* larger n_cand: the caller summarizes on the host */
#define VB_SAMPLE_MAX_LOGPROBS 64 /* SAMPLER_MAX_LOGPROBS of the host */
#define VB_SAMPLE_COMPACT_CAP 8192 /* a row's compact buffer (entries): more takes the full-row path */
typedef struct vb_sample_row_args {
    unsigned long long seed;
    float temperature, repetition_penalty, frequency_penalty, presence_penalty;
    unsigned int row, sample, step;   /* the Philox key with seed and token */
    int flags;                        /* VB_SAMPLE_* */
    int logit_row;                    /* row of the [rows, n_local] logits */
    int pen_start, pen_count;         /* this row's generated tokens in the penalty list */
    int seen_slot;                    /* its seen bitmap in the arena; -1: no penalties */
    int added_start, added_count;     /* tokens to set in that bitmap first (local ids) */
    /* the choice (sampler_choose.cu) only */
    int top_k;                        /* <= 0: off */
    float top_p, min_p;               /* >= 1, <= 0: off */
    int n_logprobs;                   /* alternatives to report */
    int own_cand;                     /* sampler_candidates_needed of this row alone */
    int pad_;
} vb_sample_row_args;
/* One row's decision, the host's sample_result byte for byte
 * (src/cuda/cuda_sampler.c asserts the offsets). */
typedef struct vb_sample_choice {
    int token;                        /* -1 on error */
    unsigned char error, truncated_inexact, pad_[2];
    float logprob;                    /* NaN when no logprobs were asked for */
    int n_top;
    int top_tokens[VB_SAMPLE_MAX_LOGPROBS];
    float top_logprobs[VB_SAMPLE_MAX_LOGPROBS];
} vb_sample_choice;
/* One distinct generated token of a row inside this shard, sorted by token
 * within the row, for the frequency / presence penalties. */
typedef struct vb_penalty_entry {
    int token; /* local: global id - vocab_offset */
    int count; /* occurrences in the generated tokens, > 0 */
} vb_penalty_entry;

/* Whether a 4-bit matrix of n_in columns is stored on the GPU in the
 * kernels' interleaved nibble order (vb_qmat below; quant_interleave.cu):
 * rows of whole 32-bit words. Narrower odd shapes keep quant_weights.h's
 * order; only the byte-level dequantization reads them (NVRTC sees it). */
#define VB_Q4_INTERLEAVED(n_in) ((n_in) % 8 == 0)

#include "qmat_layout.h" /* vb_qmat's row blocks (below): plain C, NVRTC too */

/* gemv_quant.cu: matrices one launch of vb_gemv_quant_segs_f16 (below)
 * takes at most; its kernels' parameters hold that many outputs */
#define VB_QGEMV_MAX_SEGS 3

#ifndef __CUDACC_RTC__
#include <cuda_runtime_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* pdl.cu: programmatic dependent launch (kernels/pdl.cuh) for the
 * kernels of a decode step, process-wide; off by default. vb_pdl_enable(1)
 * turns it on where the device and this build allow (sm_90+ code on an
 * sm_90+ GPU) and returns whether it is on. */
int vb_pdl_enable(int on);
int vb_pdl_enabled(void);

/* device_caps.cu: what the launchers choose their kernels by. The GPU's
 * compute capability and the shared memory a block may opt in to, or
 * after vb_device_caps_emulate(70) (VB_EMULATE_SM, set at backend setup
 * before any launch; 0 undoes it) a V100's where the GPU is newer: its
 * paths on this GPU, for the tests. vb_device_runs: whether the device
 * (as emulated) is at least compute capability sm / 10 and this build
 * has code for it in kernel (its PTX version, e.g. sm_80+ code that a
 * build for sm_75 alone would lack). */
typedef struct vb_device_caps {
    int major, minor;
    int smem_optin; /* bytes */
    int n_sm;       /* streaming multiprocessors (the real GPU's, also under emulation) */
} vb_device_caps;
void vb_device_caps_emulate(int sm);
cudaError_t vb_device_caps_get(vb_device_caps *c);
bool vb_device_runs(int sm, const void *kernel);

/* Source formats of checkpoint tensors. */
enum vb_src_dtype { VB_SRC_F16 = 0, VB_SRC_BF16 = 1, VB_SRC_F32 = 2 };

/* convert.cu: n values of src_dtype to fp16, round to nearest even. Finite
 * values beyond +-65504 are clamped to +-65504 and added to
 * *d_out_of_range (a device counter the caller zeroes); NaN and inf pass
 * through so the loader can refuse them. Same rule as the host's
 * vb_float_to_half_clamped. */
cudaError_t vb_convert_to_fp16(const void *src, int src_dtype, uint16_t *dst, size_t n,
                               unsigned long long *d_out_of_range, cudaStream_t stream);

/* elementwise.cu */
/* out[T, hidden] = table rows of this rank's vocabulary slice, zeros for
 * tokens outside [vocab_start, vocab_start + vocab_local). */
cudaError_t vb_embed_f16(uint16_t *out, const uint16_t *table, const int *d_tokens, int T,
                         int hidden, int vocab_start, int vocab_local, cudaStream_t stream);
/* out[n] = silu(gate[n]) * up[n] */
cudaError_t vb_silu_gate_f16(uint16_t *out, const uint16_t *gate, const uint16_t *up, size_t n,
                             cudaStream_t stream);
/* elementwise.cu: out[i] = sum over r = 0 .. n_ranks - 1, in that order, of
 * parts[r * n + i] (fp32, rounded once): --batch-invariant's all-reduce
 * after an all-gather of every rank's partial rows. */
cudaError_t vb_sum_ranks_f16(uint16_t *out, const uint16_t *parts, int n_ranks, size_t n,
                             cudaStream_t stream);
/* x[T, n] += bias[n] */
cudaError_t vb_add_bias_f16(uint16_t *x, const uint16_t *bias, int T, int n,
                            cudaStream_t stream);
/* out[s, dim] = in[seq_start[s + 1] - 1, dim] for s < n_seqs */
cudaError_t vb_last_rows_f16(uint16_t *out, const uint16_t *in, const int *d_seq_start,
                             int n_seqs, int dim, cudaStream_t stream);

/* rmsnorm.cu, on the fp32 residual stream: if add: residual += add; out =
 * residual * rsqrt(mean(residual^2) + eps) * w, per row of dim. */
cudaError_t vb_rmsnorm_residual_f16(uint16_t *out, float *residual, const uint16_t *add,
                                    const uint16_t *w, int rows, int dim, float eps,
                                    cudaStream_t stream);
/* The threads a row vb_rmsnorm_residual_f16 runs its vector form with
 * for these pointers and dim (which fix its sums' order), 0 where it takes
 * the element form; gemv_quant.cu's norm fold computes the same sums. */
int vb_rmsnorm_vec_threads(const uint16_t *out, const float *residual, const uint16_t *add,
                           const uint16_t *w, int dim);
/* rmsnorm.cu, in place on fp16 rows (qwen3 per-head q/k norm). */
cudaError_t vb_rmsnorm_rows_f16(uint16_t *x, const uint16_t *w, int rows, int dim, float eps,
                                cudaStream_t stream);
/* rmsnorm.cu: residual[n] = x[n] (fp16 -> fp32). */
cudaError_t vb_resid_load_f16(float *residual, const uint16_t *x, size_t n, cudaStream_t stream);

/* rope_kv.cu: rotates q[T, heads, hd] and k[T, kv_heads, hd] in place
 * (rotate-half RoPE, angle = position * inv_freq, cos/sin scaled) and writes
 * k, v into the paged caches [blocks, block_size, kv_heads, hd] at each
 * token's slot (block_tables[token_seq[t] * max_blocks + pos / block_size]). */
cudaError_t vb_rope_kv_write_f16(uint16_t *q, uint16_t *k, const uint16_t *v, uint16_t *k_cache,
                                 uint16_t *v_cache, const float *d_inv_freq, float cos_sin_scale,
                                 const int *d_positions, const int *d_token_seq,
                                 const int *d_block_tables, int max_blocks, int T, int heads,
                                 int kv_heads, int head_dim, int block_size,
                                 cudaStream_t stream);
/* The same with an int8 cache (--kv-cache-dtype int8): k and v quantized
 * per (token, kv head) row into the block layout of src/forward/kv_int8.h
 * with kv_int8_quantize's rule, the same bytes (kernels/kv_int8.cuh);
 * block_size * kv_heads * head_dim a multiple of 4 (4-byte aligned
 * scales), else cudaErrorInvalidValue. */
cudaError_t vb_rope_kv_write_kv8(uint16_t *q, uint16_t *k, const uint16_t *v, void *k_cache,
                                 void *v_cache, const float *d_inv_freq, float cos_sin_scale,
                                 const int *d_positions, const int *d_token_seq,
                                 const int *d_block_tables, int max_blocks, int T, int heads,
                                 int kv_heads, int head_dim, int block_size,
                                 cudaStream_t stream);

/* The attention kernels' _kv8 entry points take the same arguments as
 * their _f16 ones, with K and V in an int8 cache (kv_int8.h's layout),
 * dequantized as each tile is loaded to what the fp16 kernel would read
 * from that cache dequantized to fp16 (q * scale rounded to fp16,
 * kernels/kv_int8.cuh): the outputs are the fp16 kernel's on that cache,
 * bit for bit. A cache block's bytes, block_size * kv_heads * (head_dim +
 * 4), must be a multiple of 16 for the mma kernels (16-byte copies), of 8
 * for the CUDA-core decode and WMMA prefill, of 4 for the per-token
 * kernel (the engine's blocks of 16 always are), else
 * cudaErrorInvalidValue. */

/* attention.cu: out[t, heads, hd] = causal paged attention, GQA, fp32
 * softmax of q k^T * scale, for the T tokens d_token_list names (all tokens
 * 0..T-1 when NULL). head_dim even, at most 256. */
cudaError_t vb_attention_f16(uint16_t *out, const uint16_t *q, const uint16_t *k_cache,
                             const uint16_t *v_cache, const int *d_token_list,
                             const int *d_positions,
                             const int *d_token_seq, const int *d_block_tables, int max_blocks,
                             int T, int heads, int kv_heads, int head_dim, int block_size,
                             float scale, cudaStream_t stream);
cudaError_t vb_attention_kv8(uint16_t *out, const uint16_t *q, const void *k_cache,
                             const void *v_cache, const int *d_token_list,
                             const int *d_positions, const int *d_token_seq,
                             const int *d_block_tables, int max_blocks, int T, int heads,
                             int kv_heads, int head_dim, int block_size, float scale,
                             cudaStream_t stream);

/* gemv.cu: out[T, n_out] = x[T, n_in] w[n_out, n_in]^T (+ bias) for
 * T <= VB_GEMV_MAX_ROWS, fp32 accumulation, fp16 out (fp32 when out_f32):
 * the bandwidth-bound projections of small decode steps. Needs n_in % 8
 * == 0 and 16-byte aligned x and w (vb_gemv_supported). */
bool vb_gemv_supported(int T, int n_in, const void *x, const void *w);
cudaError_t vb_gemv_f16(void *out, int out_f32, const uint16_t *x, const uint16_t *w,
                        const uint16_t *bias, int T, int n_in, int n_out, cudaStream_t stream);
/* Up to VB_GEMV_MAX_SEGS projections of the same x in one launch (q, k, v):
 * segs[s].out[T, n_out] = x w^T (+ bias when not NULL). */
typedef struct vb_gemv_seg {
    const uint16_t *w, *bias;
    void *out;
    int n_out;
} vb_gemv_seg;
cudaError_t vb_gemv_multi_f16(const vb_gemv_seg *segs, int n_segs, int out_f32,
                              const uint16_t *x, int T, int n_in, cudaStream_t stream);
/* out[T, n_out] = silu(x w_gate^T) * (x w_up^T), fp16 out: the MLP's gate
 * and up projections and its activation in one pass. */
cudaError_t vb_gemv_silu_gate_f16(uint16_t *out, const uint16_t *x, const uint16_t *w_gate,
                                  const uint16_t *w_up, int T, int n_in, int n_out,
                                  cudaStream_t stream);
/* gemv_qkv_rope.cu: the q/k/v projection (segments 0, 1, 2 as
 * vb_gemv_multi_f16, fp16 out) with vb_rope_kv_write_f16 in its epilogue:
 * q and k rotated, k and v also stored at each token's cache slot, the
 * same arithmetic and roundings. Every segment's n_out is a multiple of
 * an even head_dim; k and v are kv_heads * head_dim. */
typedef struct vb_gemv_rope {
    const float *inv_freq; /* device, head_dim / 2 */
    float cos_sin_scale;
    const int *positions, *token_seq, *block_tables; /* device, as vb_rope_kv_write_f16 */
    int max_blocks, block_size, head_dim, kv_heads;
    uint16_t *k_cache, *v_cache;
} vb_gemv_rope;
/* shallow: nonzero keeps one 16-byte chunk a row in flight a lane (the
 * kernel before session 30's deeper one, VB_QKV_SHALLOW; the same bits);
 * 0 lets the launcher keep more where the grid allows. */
cudaError_t vb_gemv_qkv_rope_f16(const vb_gemv_seg segs[3], const uint16_t *x, int T, int n_in,
                                 const vb_gemv_rope *rope, int shallow, cudaStream_t stream);

/* Weight-only quantized matrices (issue #21) as the kernels read them: the
 * internal layout of src/model/quant_weights.h in device memory, 4-bit
 * words in the GPU's nibble order.
 *   q       [n_out][n_in * bits / 8], 4-bit: 32-bit words of 8 columns,
 *           column 8 w + k of word w at bits 4 * ((k >> 1) + 4 * (k & 1))
 *           (vb_quant_interleave4 made it from quant_weights.h's column j
 *           in byte j / 2, low nibble when j is even); 8-bit: byte j;
 *           unsigned
 *   scales, zeros  fp16 [n_out][n_groups]: w = (q - zero) * scale
 *   g_idx   NULL (group of column j = j / group_size) or [n_in]
 *   perm    NULL or [n_in]: internal column j multiplies x[perm[j]] */
typedef struct vb_qmat {
    const uint8_t *q;
    const uint16_t *scales, *zeros;
    const int32_t *perm, *g_idx;
    int bits, n_out, n_in, group_size, n_groups;
    /* NULL, or scales and zeros as vb_qgemv_make_sz_tiles made them for
     * exactly these rows: the GEMV then reads them in one load a step */
    const void *sz_tiles;
    /* 0: q's rows as above, one after another. 1: q in row blocks
     * (VB_QMAT_BLOCKED_OK shapes; vb_quant_block_rows): each 8 rows hold the
     * same bytes as in row order, arranged step by step (a step: 64 bytes
     * of a row), so that a step of the 8 rows is 512 contiguous bytes, row
     * r's within it at 64 (r % 8) (qmat_chunk, qmat_layout.h) */
    int blocked;
} vb_qmat;
/* VB_QMAT_BLOCKED_OK(n_out, n_in, bits, has_g_idx, has_perm): the shapes
 * that can be stored in row blocks (qmat_layout.h). */
/* quant_interleave.cu: 4-bit packed weights (bytes, a multiple of 4 from
 * a 4-byte aligned q) from quant_weights.h's nibble order into vb_qmat's,
 * in place; and one word of it on the host (the tests' reference). */
cudaError_t vb_quant_interleave4(uint8_t *q, size_t bytes, cudaStream_t stream);
unsigned vb_quant_interleave4_word(unsigned v);
/* quant_interleave.cu: the n_out rows of row_bytes each at src into row
 * blocks at dst (vb_qmat's blocked; to_blocks 0: back into row order).
 * n_out a multiple of 8, row_bytes of 64; dst and src 16-byte aligned,
 * not overlapping. */
cudaError_t vb_quant_block_rows(uint8_t *dst, const uint8_t *src, int n_out, size_t row_bytes,
                                int to_blocks, cudaStream_t stream);
/* gemv_quant.cu: out[T, n_out] = x[T, n_in] dequant(w)^T (+ bias), fp16
 * out, fp32 accumulation, dequantized in registers, for T <=
 * VB_QGEMV_MAX_ROWS; x already in w's internal column order (perm is not
 * read: vb_quant_gather_f16 first). Needs n_in a multiple of 32 (4-bit)
 * or 16 (8-bit) and 16-byte aligned x and q (vb_gemv_quant_supported). */
#define VB_QGEMV_MAX_ROWS 8
bool vb_gemv_quant_supported(int T, int bits, int n_in, const void *x, const void *q);
cudaError_t vb_gemv_quant_f16(uint16_t *out, const uint16_t *x, const vb_qmat *w,
                              const uint16_t *bias, int T, cudaStream_t stream);
/* The same for a few matrices of one input in one launch (a layer's q, k
 * and v; gate and up): w their rows one after another (one allocation,
 * the same bits, columns and groups), seg_rows[s] of them written to
 * out[s] [T, seg_rows[s]] plus bias[s] (bias NULL or any bias[s] NULL:
 * none). n_segs 1 .. VB_QGEMV_MAX_SEGS (above), the rows summing to
 * w->n_out. */
cudaError_t vb_gemv_quant_segs_f16(uint16_t *const out[], const uint16_t *x, const vb_qmat *w,
                                   const uint16_t *const bias[], const int seg_rows[],
                                   int n_segs, int T, cudaStream_t stream);
/* The joined gate and up (w: the gate's n rows, then the up's n) with the
 * SiLU-gate in the epilogue: out[T, n] = silu(x gate^T) * (x up^T), the
 * bits of vb_gemv_quant_segs_f16 then vb_silu_gate_f16; and the joined
 * q, k and v (segments as vb_gemv_quant_segs_f16) with
 * vb_rope_kv_write_f16 in the epilogue (fp16 cache; head_dim a multiple
 * of 16), its bits too. Both only where vb_gemv_quant_pairs_supported
 * (the mma kernel's layout of one group a step or more: group a multiple
 * of 128 columns at 4 bits, 64 at 8; no g_idx or perm; n_out a multiple of
 * 16; sm_80+), else cudaErrorInvalidValue. */
bool vb_gemv_quant_pairs_supported(const vb_qmat *w, int T, const void *x);
/* The norm fold (norm not NULL): the paired kernels make x themselves,
 * x[T, n_in] = RMSNorm(residual rows) * w as vb_rmsnorm_residual_f16(x,
 * residual, NULL, w, T, n_in, eps) writes it (its bits), each block into
 * its shared memory, so that the norm is no launch of its own; x then
 * only names where that norm would have written (its alignment decides
 * the norm's form) and is not read. cudaErrorNotSupported, nothing
 * launched, where the kernel cannot (x not in shared memory: T > 2,
 * VB_QGEMV_X_SHARED=0; the norm's element form; a row wider than a
 * block's threads take). */
typedef struct vb_gemv_norm {
    const float *residual; /* [T, n_in], complete: no add pending */
    const uint16_t *w;     /* [n_in] */
    float eps;
} vb_gemv_norm;
cudaError_t vb_gemv_quant_silu_f16(uint16_t *out, const uint16_t *x, const vb_qmat *w, int T,
                                   const vb_gemv_norm *norm, cudaStream_t stream);
cudaError_t vb_gemv_quant_qkv_rope_f16(uint16_t *const out[3], const uint16_t *x,
                                       const vb_qmat *w, const uint16_t *const bias[3],
                                       const int seg_rows[3], int T, const vb_gemv_rope *rope,
                                       const vb_gemv_norm *norm, cudaStream_t stream);
/* residual[T, n_out] += x w^T, each output rounded to fp16 first: the bits
 * of vb_gemv_quant_f16 (no bias) then vb_rmsnorm_residual_f16's add, in
 * the GEMV's epilogue (an o or down projection at tp 1 adding itself to
 * the residual stream, the norm after it folded into the next GEMV).
 * The mma kernel only: cudaErrorNotSupported, nothing launched, where
 * vb_gemv_quant_f16 would take the SIMT kernel. */
cudaError_t vb_gemv_quant_resid_f16(float *residual, const uint16_t *x, const vb_qmat *w, int T,
                                    cudaStream_t stream);
/* The GEMV's copy of w's scales and zeros tiled for its mma kernel (a
 * step's scale and zero pairs of a lane's two rows in 8 bytes): its size
 * for w's layout, 0 where the kernel does not use it (4- and 8-bit
 * groups of whole steps, 128 or 64 columns times a power of two, no
 * g_idx); and made from w's scales and zeros into dst (that many bytes of
 * device memory), on stream. Same values: the GEMV's results are the same
 * bits with or without it. */
size_t vb_qgemv_sz_tiles_bytes(const vb_qmat *w);
cudaError_t vb_qgemv_make_sz_tiles(void *dst, const vb_qmat *w, cudaStream_t stream);
/* Test hook for bench_gemv_quant and test_cuda_quant (the backend never
 * calls it): path 0 the entry point's own choice, 1 the SIMT kernel, 3
 * the mma kernel a block a tile group, 4 the mma kernel on 2 blocks, 5 the
 * entry point's choice with w's sz_tiles ignored; ks
 * (1, 2, 4, 8, 12) and unroll (2, 4) force the mma kernel's warps a tile and
 * steps loaded ahead, 0 the launcher's. Process-wide: set before launching. */
void vb_gemv_quant_force(int path, int ks, int unroll);
/* Whether the mma kernel's weight loads allocate in L1 (on: the kernel
 * before session 32) or stream past it (off, the default: x stays in L1).
 * The same results. Process-wide, set once before launching (the backend
 * at its start, from VB_QGEMV_L1_ALLOC; bench_gemv_quant from the same). */
void vb_gemv_quant_l1_alloc(int on);
/* Whether the mma kernel copies x into shared memory first (on, the
 * default, at steps of 1 or 2 rows where x is at most 64 KB) or reads it through L1 (off: the
 * kernel before session 33). The same results. Process-wide, as the
 * above: VB_QGEMV_X_SHARED. */
void vb_gemv_quant_x_shared(int on);
/* Process-wide: with on = 1 the quantized mma GEMV takes 12 warps a tile
 * for every matrix of at most 4 tiles an SM (before session 34), also where
 * those blocks take two waves; by default 8 there (sums in another order:
 * fp32 rounding of the output may differ). */
void vb_gemv_quant_ks_by_tiles(int on);
/* Process-wide: where the launcher would take KS 8, KS 4 where its warp
 * parts fill the SMs' waves to >= 95 % (1, the default), or always 8 (0;
 * sums in another order). */
void vb_gemv_quant_ks_balance(int on);
/* Process-wide: the quantized mma GEMV's steps loaded ahead a lane, U = 1,
 * 2 or 4 (1: KS 8 and 12 only, 4 blocks of 8 warps an SM; slower or level
 * on an H100, RESULTS.md session 35), 0 the launcher's choice (2, or 4
 * where a third block would not be resident). The same bits at every U. */
void vb_gemv_quant_unroll(int u);
/* Process-wide: stages (2 .. 8) of the quantized GEMV's ring kernel, the
 * mma kernel with each warp's weights copied ahead into shared memory
 * (cp.async) instead of registers, for the layouts it takes (one group a
 * step or more, KS 8 or 12); 0 (default) the mma kernel. The same bits.
 * VB_QGEMV_RING; slower on an H200 but for the 8-bit paired GEMVs
 * (RESULTS.md session 36). With vb_gemv_quant_ring_scope(1), the ring
 * only for those: 8-bit paired rows (gate/up, q/k/v), not plain matrices
 * (o, down) nor 4-bit ones (VB_QGEMV_RING_SCOPE=pairs8). */
void vb_gemv_quant_ring(int stages);
void vb_gemv_quant_ring_scope(int pairs8_only);
/* Process-wide (VB_QGEMV_BLOCKS, set before the upload): whether
 * vb_gemv_quant_wants_blocks may answer yes (on, the default). */
void vb_gemv_quant_blocks(int on);
/* Whether the upload should store w's q in row blocks (vb_qmat's blocked):
 * a shape that can be (VB_QMAT_BLOCKED_OK) with groups of whole steps of
 * the mma kernel (512 / bits columns), on a GPU that runs that kernel,
 * with vb_gemv_quant_blocks on. Every kernel reads either layout
 * and gives the same bits; row blocks are the mma kernel's fast one. */
bool vb_gemv_quant_wants_blocks(const vb_qmat *w);
/* Test hook (test_cuda_quant): the ring kernel's launches so far in this
 * process, so that a test knows the ring ran and not the mma kernel. */
unsigned long vb_gemv_quant_ring_launches(void);
/* The same for the fp16 GEMV (gemv.cu; not the fused q/k/v one):
 * VB_GEMV_L1_ALLOC. */
void vb_gemv_l1_alloc(int on);
/* gemm_invariant.cu: batch-invariant projections (issue #22):
 * out[T, n_out] fp16 = x[T, n_in] w[n_out, n_in]^T (+ bias), each output's
 * bits a function of its x row, w row and bias only (the file's header
 * states the exact order of operations): not of T, the row's position,
 * the other rows or the mode. Needs n_in % 16 == 0 and 16-byte aligned x
 * and w (vb_gemm_invariant_supported); any out alignment. Steps of up to
 * VB_GEMM_INV_SPLIT_MAX_T rows run in split mode when workspace holds
 * vb_gemm_invariant_workspace_bytes(T, n_in, n_out) bytes, in-block mode
 * otherwise: the same bits either way. The workspace is device memory
 * zeroed once after allocation (cudaMemset): split mode keeps counters
 * in its first bytes, which every launch leaves at zero. One workspace
 * serves every projection of a stream (launches on one stream do not
 * overlap; two streams need two). T = 0: nothing launched. */
bool vb_gemm_invariant_supported(int n_in, int n_out, const void *x, const void *w);
size_t vb_gemm_invariant_workspace_bytes(int max_T, int n_in, int n_out);
cudaError_t vb_gemm_invariant_f16(void *out, const void *x, const void *w, const void *bias,
                                  int T, int n_in, int n_out, float *workspace,
                                  size_t workspace_bytes, cudaStream_t stream);
/* The same with fp32 out (the logits): the sum before its fp16 rounding. */
cudaError_t vb_gemm_invariant_f32out(float *out, const void *x, const void *w, const void *bias,
                                     int T, int n_in, int n_out, float *workspace,
                                     size_t workspace_bytes, cudaStream_t stream);
/* Modes: what vb_gemm_invariant_mode reports for T rows (the entry point's
 * choice with that workspace; AUTO when it cannot tell), and the test hook
 * vb_gemm_invariant_force (test_gemm_invariant, bench_gemm_invariant; the
 * backend never calls it; process-wide, set before launching): AUTO the
 * entry point's choice, SPLIT (an error without the workspace), INBLOCK
 * the in-block kernel with the launcher's tile, INBLOCK_128 / _64 with 128
 * or 64 tokens a block. Below sm_80 both in-block choices are the WMMA
 * kernel's in-block mode. */
#define VB_GEMM_INV_AUTO 0
#define VB_GEMM_INV_SPLIT 1
#define VB_GEMM_INV_INBLOCK 2
#define VB_GEMM_INV_INBLOCK_128 3
#define VB_GEMM_INV_INBLOCK_64 4
int vb_gemm_invariant_mode(int T, int n_in, int n_out, size_t workspace_bytes);
void vb_gemm_invariant_force(int mode);
/* gemm_chain.cu: out[T, n_out] = x[T, n_in] w[n_out, n_in]^T for T <=
 * VB_GEMM_CHAIN_MAX_T (one n8 tile of tokens),
 * fp16 out (or fp32 with out_f32), no bias: each output the plain chain of
 * mma.sync k16 steps over n_in in order from 0.0f (the bits of cuBLASLt's
 * split-K-free algorithms; src/cuda/gemm_lt_invariant.c checks that on
 * the GPU before using it). sm_80+, n_in % 16 == 0, 16-byte aligned x
 * and w (vb_gemm_chain_supported). T = 0: nothing launched. */
bool vb_gemm_chain_supported(int T, int n_in, int n_out, const void *x, const void *w);
cudaError_t vb_gemm_chain(void *out, int out_f32, const void *x, const void *w, int T, int n_in,
                          int n_out, cudaStream_t stream);
/* The same for up to VB_GEMM_CHAIN_MAX_SEGS matrices that share x, in
 * one launch (q, k and v): each segment's out = x w^T, then + bias (fp16
 * out only, NULL for none) exactly as vb_add_bias_f16 adds it. tile: the
 * ring's shape, which moves bytes differently but never changes a bit
 * (VB_CHAIN_TILE_AUTO: by the grid's size; the others forced, for the
 * plan's check and the tests). */
#define VB_CHAIN_TILE_AUTO 0
#define VB_CHAIN_TILE_NARROW 1 /* 128 columns a stage, 6 stages */
#define VB_CHAIN_TILE_WIDE 2   /* 256 columns a stage, 4 stages */
#define VB_CHAIN_TILE_DEEP 3   /* 256 columns a stage, 8 stages (wide where it does not fit) */
typedef struct vb_chain_seg {
    const void *w, *bias;
    void *out;
    int n_out;
} vb_chain_seg;
cudaError_t vb_gemm_chain_multi(const vb_chain_seg *segs, int n_segs, int out_f32, const void *x,
                                int T, int n_in, int tile, cudaStream_t stream);
/* The MLP's gate and up (the same shape) in one launch: out = silu(gate)
 * * up, each rounded to fp16 first, exactly as vb_silu_gate_f16 makes it
 * from the two separate projections. */
cudaError_t vb_gemm_chain_silu(void *out, const void *x, const void *w_gate, const void *w_up,
                               int T, int n_in, int n_out, int tile, cudaStream_t stream);
/* q, k and v as vb_gemm_chain_multi's three segments
 * (fp16 out, each bias added after the rounding) with vb_rope_kv_write_f16
 * in the epilogue: the bits of the separate projections, vb_add_bias_f16
 * and vb_rope_kv_write_f16. head_dim a multiple of 16, every n_out a
 * multiple of it; k and v are kv_heads * head_dim. */
cudaError_t vb_gemm_chain_qkv_rope(const vb_chain_seg segs[3], const void *x, int T, int n_in,
                                   const vb_gemv_rope *rope, int tile, cudaStream_t stream);
/* quant_gather.cu: dst[t, j] = x[t, perm[j]] for t < T (T <= 65535). */
cudaError_t vb_quant_gather_f16(uint16_t *dst, const uint16_t *x, const int32_t *perm, int T,
                                int n_in, cudaStream_t stream);
/* quant_dequant.cu: dst[n_out, n_in] fp16 = dequant(w) in the checkpoint's
 * column order (dst[o][perm[j]] with act order), for a cuBLAS GEMM. */
cudaError_t vb_quant_dequant_f16(uint16_t *dst, const vb_qmat *w, cudaStream_t stream);

/* attention_decode.cu: the same attention for tokens that are their
 * sequence's only new token (d_token_list, T of them), one block per
 * (token, heads_per_block query heads of one kv head, split): the whole
 * GQA group (each K/V row read once for all its heads) or one head,
 * as vb_attention_decode_heads_per_block says (a divisor of the group).
 * splits from vb_attention_decode_splits with head_blocks = heads /
 * heads_per_block (1: no workspace needed); d_workspace of
 * vb_attention_decode_workspace_bytes otherwise. Supported when heads /
 * kv_heads <= 8 and head_dim a multiple of 8, <= 256. */
#define VB_DECODE_MAX_SPLITS 64
int vb_attention_decode_heads_per_block(int T, int heads, int kv_heads, int head_dim,
                                        int max_ctx, int n_sm, long l2_bytes);
int vb_attention_decode_splits(int T, int head_blocks, int max_ctx, int n_sm);
size_t vb_attention_decode_workspace_bytes(int n_sm);
bool vb_attention_decode_supported(int heads, int kv_heads, int head_dim);
/* Process-wide (one GPU a process): with on = 1 the splits' partials are
 * combined by a kernel of their own after the attention kernel (before
 * session 34), not by each group's last split block inside it (default;
 * the same bits). */
void vb_attention_decode_reduce_kernel(int on);
/* slice 0: the splits cut each token's context into `splits` slices (of
 * at least 32 positions). slice > 0 (a multiple of 32; --batch-invariant
 * on GPUs without the mma kernel, VB_DECODE_INVARIANT_SLICE): split s takes
 * positions [s * slice, (s + 1) * slice), boundaries that depend on the
 * position alone, so a token's bits do not depend on the step; splits must
 * then be >= 2 (every token through the same combine, whatever the table
 * width) and cover the context, and the workspace hold T * heads * splits
 * * (head_dim + 2) floats (vb_attention_decode_token_floats a token). */
#define VB_DECODE_INVARIANT_SLICE 512
size_t vb_attention_decode_token_floats(int heads, int head_dim, int splits);
cudaError_t vb_attention_decode_f16(uint16_t *out, float *d_workspace, const uint16_t *q,
                                    const uint16_t *k_cache, const uint16_t *v_cache,
                                    const int *d_token_list, const int *d_positions,
                                    const int *d_token_seq, const int *d_block_tables,
                                    int max_blocks, int T, int heads, int kv_heads, int head_dim,
                                    int block_size, float scale, int heads_per_block, int splits,
                                    int slice, cudaStream_t stream);
cudaError_t vb_attention_decode_kv8(uint16_t *out, float *d_workspace, const uint16_t *q,
                                    const void *k_cache, const void *v_cache,
                                    const int *d_token_list, const int *d_positions,
                                    const int *d_token_seq, const int *d_block_tables,
                                    int max_blocks, int T, int heads, int kv_heads, int head_dim,
                                    int block_size, float scale, int heads_per_block, int splits,
                                    int slice, cudaStream_t stream);

/* attention_decode_mma.cu: the same decode attention on sm_80+ with
 * mma.sync, the G = heads / kv_heads query heads of a GQA group as the M
 * rows of the tile (G <= 16), one block per (token, kv head, split of
 * VB_DECODE_MMA_SPLIT positions). The split size is fixed, so a token's
 * result does not depend on the step; splits = ceil(max_blocks *
 * block_size / VB_DECODE_MMA_SPLIT) (vb_attention_decode_mma_splits), at
 * most VB_DECODE_MMA_MAX_SPLITS. With one split no workspace is needed
 * (d_workspace may be NULL). With more, d_workspace holds the partials,
 * vb_attention_decode_mma_token_bytes a token: the launcher runs
 * the tokens in chunks that fit workspace_bytes (at least one token's
 * must, else cudaErrorInvalidValue). head_dim a multiple of 16 up to 128,
 * or 256. _supported says whether this device, build and its shared
 * memory can run it for that shape. */
#define VB_DECODE_MMA_SPLIT 512
#define VB_DECODE_MMA_MAX_SPLITS 512
bool vb_attention_decode_mma_supported(int heads, int kv_heads, int head_dim);
/* Test hook (test_attention_decode_mma, bench_attention_decode; the
 * backend never calls it): a warp's pipeline stages, 2 or 6 (the deep
 * variant, where its shared memory fits), 0 the launcher's rule (6 where
 * a launch has no more blocks than the GPU has SMs). The same bits at
 * either. Process-wide: set before launching. */
void vb_attention_decode_mma_stages(int stages);
/* Whether a launch of T tokens with that many splits takes the deep
 * variant (the launcher's rule or the forced stages, above). */
bool vb_attention_decode_mma_deep(int T, int kv_heads, int head_dim, int splits);
int vb_attention_decode_mma_splits(int max_ctx);
size_t vb_attention_decode_mma_token_bytes(int heads, int head_dim, int splits);
cudaError_t vb_attention_decode_mma_f16(uint16_t *out, float *d_workspace, size_t workspace_bytes,
                                        const uint16_t *q, const uint16_t *k_cache,
                                        const uint16_t *v_cache, const int *d_token_list,
                                        const int *d_positions, const int *d_token_seq,
                                        const int *d_block_tables, int max_blocks, int T,
                                        int heads, int kv_heads, int head_dim, int block_size,
                                        float scale, cudaStream_t stream);
cudaError_t vb_attention_decode_mma_kv8(uint16_t *out, float *d_workspace,
                                        size_t workspace_bytes, const uint16_t *q,
                                        const void *k_cache, const void *v_cache,
                                        const int *d_token_list, const int *d_positions,
                                        const int *d_token_seq, const int *d_block_tables,
                                        int max_blocks, int T, int heads, int kv_heads,
                                        int head_dim, int block_size, float scale,
                                        cudaStream_t stream);

/* attention_prefill.cu: the same attention on tensor cores (WMMA) for
 * tiles of up to 16 consecutive new tokens of one sequence, the query heads
 * of a GQA group in one block; d_tiles holds n_tiles triples (first token,
 * rows, sequence). head_dim a multiple of 16, at most 256. */
cudaError_t vb_attention_prefill_f16(uint16_t *out, const uint16_t *q, const uint16_t *k_cache,
                                     const uint16_t *v_cache, const int *d_positions,
                                     const int *d_tiles, int n_tiles, const int *d_block_tables,
                                     int max_blocks, int heads, int kv_heads, int head_dim,
                                     int block_size, float scale, cudaStream_t stream);
cudaError_t vb_attention_prefill_kv8(uint16_t *out, const uint16_t *q, const void *k_cache,
                                     const void *v_cache, const int *d_positions,
                                     const int *d_tiles, int n_tiles, const int *d_block_tables,
                                     int max_blocks, int heads, int kv_heads, int head_dim,
                                     int block_size, float scale, cudaStream_t stream);

/* attention_prefill_mma.cu: the same results on sm_80+ with mma.sync
 * (softmax in registers, K/V gathered with cp.async into three stages);
 * head_dim a multiple of 16, at most 128. Its tiles (first, rows, seq)
 * hold up to _tile_tokens(heads, kv_heads) tokens (128 / the GQA group's
 * heads: a block packs a tile's tokens x heads into up to 128 query rows;
 * 0 where a group has more than 128 heads), not 16 as the WMMA kernel's.
 * _supported says whether this device, build and its shared memory can
 * run it. */
int vb_attention_prefill_mma_tile_tokens(int heads, int kv_heads);
bool vb_attention_prefill_mma_supported(int heads, int kv_heads, int head_dim);
/* attention_prefill_mma32.cu: the same results, bit for bit, with 32
 * query rows a warp and two blocks an SM (12-13 % faster on the 64K case's
 * steps on an H200); fp16 cache, the same tiles. The backend's default for
 * the fp16 cache where supported. */
bool vb_attention_prefill_mma32_supported(int heads, int kv_heads, int head_dim);
cudaError_t vb_attention_prefill_mma32_f16(uint16_t *out, const uint16_t *q,
                                           const uint16_t *k_cache, const uint16_t *v_cache,
                                           const int *d_positions, const int *d_tiles,
                                           int n_tiles, const int *d_block_tables,
                                           int max_blocks, int heads, int kv_heads, int head_dim,
                                           int block_size, float scale, cudaStream_t stream);
/* attention_prefill_wgmma.cu: prefill attention on Hopper's wgmma (sm_90a
 * builds, compute capability 9.0, head_dim 128), a producer warpgroup and
 * two consumer warpgroups, the mma32 kernel's tiles. Variants: PLAIN and
 * SW128 take 64-key steps, the mma32 kernel's arithmetic (its bits), with
 * K and V tiles in core matrices without swizzle (run on an H200: 8 %
 * slower than mma32 on long chunks) or in the 128-byte swizzled layout
 * (2 % slower on long chunks, 9-15 % faster on short ones); K128 takes
 * 128-key steps in the swizzled layout (a softmax a 128 keys: its own
 * bits). The backend takes variant VB_PREFILL_WGMMA - 1. */
enum { VB_WGMMA_PLAIN = 0, VB_WGMMA_SW128 = 1, VB_WGMMA_K128 = 2 };
bool vb_attention_prefill_wgmma_supported(int heads, int kv_heads, int head_dim);
cudaError_t vb_attention_prefill_wgmma_f16(uint16_t *out, const uint16_t *q,
                                           const uint16_t *k_cache, const uint16_t *v_cache,
                                           const int *d_positions, const int *d_tiles,
                                           int n_tiles, const int *d_block_tables,
                                           int max_blocks, int heads, int kv_heads, int head_dim,
                                           int block_size, float scale, int variant,
                                           cudaStream_t stream);
cudaError_t vb_attention_prefill_mma_f16(uint16_t *out, const uint16_t *q,
                                         const uint16_t *k_cache, const uint16_t *v_cache,
                                         const int *d_positions, const int *d_tiles, int n_tiles,
                                         const int *d_block_tables, int max_blocks, int heads,
                                         int kv_heads, int head_dim, int block_size, float scale,
                                         cudaStream_t stream);
cudaError_t vb_attention_prefill_mma_kv8(uint16_t *out, const uint16_t *q, const void *k_cache,
                                         const void *v_cache, const int *d_positions,
                                         const int *d_tiles, int n_tiles,
                                         const int *d_block_tables, int max_blocks, int heads,
                                         int kv_heads, int head_dim, int block_size, float scale,
                                         cudaStream_t stream);

/* sampler_summary.cu: n_rows sampler_summary rows with room for n_cand
 * candidates each, back to back in d_out (the host's sampler_summary_at
 * layout), from logits [*, n_local] fp32 of the vocabulary slice starting at
 * vocab_offset. n_cand at most VB_SAMPLE_MAX_CAND (else
 * cudaErrorInvalidValue, nothing launched). */
/* Pass 1 of each row (bad, max, count, best, sum of exp, and, when n_cand
 * > 1, the maxima of groups of its tokens) and, when n_cand > 1, the
 * compaction of each row's candidates (the tokens at or above a threshold
 * from those maxima) into a buffer of VB_SAMPLE_COMPACT_CAP entries are
 * split over `chunks` blocks a row (from vb_sampler_pass1_chunks: a step
 * with few rows spreads over the GPU; 1 = a block a row).
 * d_scratch: vb_sampler_scratch_bytes(n_rows, chunks, n_cand) bytes of
 * device memory (may be NULL when that is 0), for the chunk states, group
 * maxima and compact buffers; nothing in it needs clearing. The summaries
 * are the same bytes for any split. */
/* Penalties: each row with any has a bitmap of the tokens it has seen
 * (prompt + generated, one bit a token of the slice) in d_seen, an arena
 * of vb_sampler_seen_words(n_local) words a slot, kept between calls by
 * the caller; when any_added, a first launch clears the slots of rows
 * flagged VB_SAMPLE_SEEN_RESET and sets the bits of d_added[added_start,
 * + added_count) of each row (a step's new tokens). Rows of one call hold
 * distinct slots. d_seen NULL: no row of the call has penalties (then
 * any_added must be 0); the kernels of such calls are built without the
 * penalized rows' paths. */
int vb_sampler_pass1_chunks(int n_rows, int n_local, int n_sm);
size_t vb_sampler_scratch_bytes(int n_rows, int chunks, int n_cand);
size_t vb_sampler_seen_words(int n_local);
cudaError_t vb_sampler_summarize(void *d_out, void *d_scratch, int chunks, const float *logits,
                                 const vb_sample_row_args *d_args, const vb_penalty_entry *d_pen,
                                 unsigned *d_seen, const int *d_added, int any_added, int n_rows,
                                 int vocab_offset, int n_local, int n_cand, cudaStream_t stream);
/* Bytes of one row of that output (sampler_summary_bytes of the host). */
size_t vb_sampler_summary_bytes(int n_cand);

/* sampler_choose.cu: sampler_choose (src/engine/sampler_choose.c) for each
 * of n_rows summaries of a whole vocabulary (tp 1: a rank's summary is the
 * merged one) in d_summaries (vb_sampler_summarize's output, n_cand
 * candidates a row), with d_args' settings and keys, into d_choices
 * (n_rows vb_sample_choice). The same decisions as the host's (the
 * double exp and log of the truncation and the Gumbel noise within an ulp
 * of glibc's, as the summaries' are). */
cudaError_t vb_sampler_choose(vb_sample_choice *d_choices, const void *d_summaries, int n_cand,
                              const vb_sample_row_args *d_args, int n_rows, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif /* __CUDACC_RTC__ */
#endif

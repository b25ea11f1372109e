/* Batch-invariant projections through cuBLASLt (issue #22): out[T, n_out]
 * = x[T, n_in] w[n_out, n_in]^T with each output element's bits a
 * function of its x row and w row only, whatever T.
 *
 * Why cuBLASLt can do it: a GEMM algorithm without split-K computes each
 * output element as one chain of tensor-core k16 steps over n_in in
 * order, from 0.0f, in fp32; the tile shapes, stages and CTA order of
 * the algorithm decide which element a CTA computes and when, not the
 * element's summation order. Measured on an H200 (tests/bench/
 * probe_gemm_chain.cu, tests/bench/RESULTS.md): all 125 split-K-1
 * algorithms cuBLASLt's heuristics offered for five 7B shapes gave
 * bit-identical outputs at every T, and the same bits as a chain of
 * mma.sync m16n8k16 and of wgmma m64n8k16. What makes cuBLAS's default
 * path vary with the batch is its choice of split-K (and our GEMV
 * kernels' splits) by T: this module only ever runs split-K-1
 * algorithms, one per T bucket (1, 2, 4, ..., 16384 rows).
 *
 * Not assumed, checked: before a shape's first use, gemm_lt_inv_prepare
 * computes a reference on 64 random rows with the layer's real weights
 * (kernels/gemm_chain.cu's chain, in steps of 8 rows), and each bucket
 * takes the first of its heuristic's split-K-1 offers whose bits equal
 * the reference's on those rows, on rows alone and at offsets (one odd
 * algorithm of the H200's k/v shape did not: likely one that splits n_in
 * between the warps of a block); a bucket with no such offer borrows a
 * neighbour's algorithm. Where the chain kernel does not run (or no
 * algorithm matches it), the reference is the largest bucket's first
 * algorithm and the small steps run on cuBLASLt too. A shape without any
 * matching algorithm is reported: the caller runs it through its own
 * fixed-order kernel (kernels/gemm_invariant.cu), invariant by
 * construction but slower on large steps. Either way a shape keeps one
 * path for the whole run.
 *
 * Steps of up to 8 rows (batch-1..8 decode) run on the chain kernel where
 * it is the reference (each of its tiles checked): the same bits, closer
 * to a GEMV's bandwidth. */
#ifndef VB_GEMM_LT_INVARIANT_H
#define VB_GEMM_LT_INVARIANT_H

#include <cuda_runtime_api.h>
#include <stdbool.h>
#include <stddef.h>

#include "kernels.h" /* vb_gemv_rope */

typedef struct gemm_lt_inv gemm_lt_inv;

/* workspace: device memory the algorithms may use (the same stream's,
 * never two GEMMs at once). */
gemm_lt_inv *gemm_lt_inv_create(cudaStream_t stream, void *workspace, size_t workspace_bytes);
void gemm_lt_inv_destroy(gemm_lt_inv *g);

/* The shape's plan, made and checked on first call (synchronises the
 * stream; not while a graph is being captured). w is one matrix of the
 * shape (its bits are used for the check, not kept). Returns true when
 * gemm_lt_inv_run takes the shape. */
bool gemm_lt_inv_prepare(gemm_lt_inv *g, const void *w, int n_in, int n_out, bool out_f32);

/* out = x w^T (fp16 out, or fp32 with out_f32), on the stream. Returns
 * false, doing nothing, for a shape prepare did not accept. Rows must be
 * 16-byte aligned (n_in % 8 == 0, aligned pointers). */
bool gemm_lt_inv_run(gemm_lt_inv *g, void *out, bool out_f32, const void *x, const void *w, int T,
                     int n_in, int n_out);

/* q, k and v of a step of up to 8 rows in one chain launch, each bias
 * added as the caller adds it after gemm_lt_inv_run (vb_add_bias_f16):
 * the bits of the three separate projections; with rope (NULL: none),
 * also vb_rope_kv_write_f16's rotation and cache store in the same launch
 * (head_dim a multiple of 16, else false). Prepares the shapes if needed;
 * false, doing nothing, when the step is larger or a shape does not run
 * on the chain kernel (the caller then makes the separate calls). */
bool gemm_lt_inv_run_qkv(gemm_lt_inv *g, void *const out[3], const void *x,
                         const void *const w[3], const void *const bias[3], int T, int n_in,
                         const int n_out[3], const vb_gemv_rope *rope);

/* The MLP's silu(gate) * up for a step of up to 8 rows in one chain launch:
 * the bits of gemm_lt_inv_run for each, then vb_silu_gate_f16. Prepares
 * the shape if needed; false, doing nothing, as gemm_lt_inv_run_qkv. */
bool gemm_lt_inv_run_gate_up(gemm_lt_inv *g, void *out, const void *x, const void *w_gate,
                             const void *w_up, int T, int n_in, int n_out);

/* The number of shapes prepared, of those accepted, and of those whose
 * steps of up to 8 rows run on the chain kernel (for the log). */
void gemm_lt_inv_counts(const gemm_lt_inv *g, int *prepared, int *accepted, int *chain);

#endif

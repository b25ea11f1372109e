/* The memory plan of one rank: parameters, weight bytes, KV-cache bytes per
 * token, the fixed overheads, and how many KV tokens fit in what is left.
 *
 * Worked out from config.json and the TP plan alone, so `inspect` can
 * answer before any weight is downloaded; generate sizes its KV pool from
 * the memory the GPU has left once the weights and a step's activations
 * are there, which this plan estimates. Everything on the GPU is fp16
 * (DESIGN.md). */
#ifndef VB_MEMORY_PLAN_H
#define VB_MEMORY_PLAN_H

#include <stdint.h>

#include "forward/kv_dtype.h"
#include "model/model_config.h"
#include "model/tp_plan.h"

#define VB_KV_BLOCK_TOKENS 16     /* tokens per paged KV block */
/* generate's automatic --max-batched-tokens on a GPU (run/run_engine.c),
 * the step the plan holds activations for unless given another: a plan
 * of a 2,048-token step promised ~1.5 % more KV tokens than a default run
 * gets (Qwen2.5-14B, tp 4, a V100-32GB) */
#define VB_AUTO_STEP_TOKENS_GPU 8192
#define VB_PLAN_MAX_SEQS 512      /* sequences per decode step: generate's automatic
                                   * --max-batch on a GPU (run/run_engine.c) */
#define VB_PLAN_MAX_LINES 12

typedef struct memory_line {
    const char *name;
    uint64_t bytes;
    char how[112];            /* the formula, for the listing */
} memory_line;

typedef struct memory_plan {
    uint64_t parameters;              /* whole model, tied embeddings once */
    uint64_t weight_bytes_per_rank;   /* fp16; quantized projections in their packed
                                       * layout (model/quant_weights.h) */
    uint64_t kv_bytes_per_token;      /* per rank: K and V, every layer, local kv heads
                                       * (fp16, or int8 values + an fp32 scale a head) */
    vb_kv_dtype kv_dtype;
    int max_model_len;
    int token_budget, max_seqs;       /* a step's tokens and sequences */

    /* Filled when gpu_memory > 0. */
    uint64_t gpu_memory;              /* total per GPU */
    double utilization;
    uint64_t budget;                  /* gpu_memory * utilization */
    memory_line overhead[VB_PLAN_MAX_LINES];
    int n_overhead;
    uint64_t overhead_bytes;
    uint64_t kv_cache_bytes;          /* what is left for the KV pool, whole blocks */
    int64_t kv_blocks, kv_tokens;     /* 0 when nothing is left */
    bool weights_fit;                 /* weights + overhead below the budget */
} memory_plan;

/* gpu_memory 0 = unknown: only the model figures are filled. max_model_len
 * 0 = the config's max_position_embeddings; step_tokens 0 = generate's
 * automatic step on a GPU (VB_AUTO_STEP_TOKENS_GPU). */
void memory_plan_make(memory_plan *m, const model_config *c, const tp_plan *p,
                      uint64_t gpu_memory, double utilization, int max_model_len,
                      vb_kv_dtype kv_dtype, int step_tokens);

/* One quantized projection's bytes in the internal layout
 * (model/quant_weights.h) for a rank holding [out, in] of a matrix whose
 * whole input dimension is in_full: packed values, fp16 scale and zero per
 * group and output row, and with act order the permutation (and g_idx
 * when in < in_full). The plan's figure and the CUDA loader's memory
 * check (cuda_qweight.c) both use it. */
uint64_t memory_plan_qlinear_bytes(const vb_quant_config *q, uint64_t out, uint64_t in,
                                   uint64_t in_full);

/* One decoder layer's seven projections on this rank (q, k, v, o, gate,
 * up, down): their bytes quantized as c->quant says, and in *params their
 * parameter count. */
uint64_t memory_plan_layer_qbytes(const model_config *c, const tp_plan *p, uint64_t *params);

/* Whole-model parameter count. */
uint64_t model_parameter_count(const model_config *c);

#endif

/* Loading one rank's weights from a Hugging Face model directory.
 *
 * The data path: config.json -> model_config; tp_plan says which rows or
 * columns of each tensor this rank keeps; safetensors.c maps the checkpoint
 * and copies just those slices, converted, into host arrays. The CPU backend
 * runs on the fp32 arrays directly. The CUDA backend streams each rank's
 * slices from the mapped checkpoint to the device itself
 * (src/cuda/weights_stream.c walks model_tensor_specs and reads through
 * safetensors.h); model_load_host's fp16 arrays are the reference its test
 * compares with.
 *
 * A quantized checkpoint (config.json's quantization_config: AWQ, GPTQ,
 * compressed-tensors) has its seven projections per layer read by
 * quant_linear_load (quant_weights.h) into one internal layout, by the
 * fp32 host load (the CPU backend) and by the CUDA streaming loader, which
 * uploads that layout (src/cuda/cuda_qweight.h). --quantize int8 is handed down the same way:
 * quant_config_quantize (quant_config.h) turns the float model's
 * c->quant into VB_QUANT_INT8 and the loaders quantize its projections
 * (quant_int8.c). */
#ifndef VB_MODEL_LOAD_H
#define VB_MODEL_LOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "model/model_config.h"
#include "model/model_weights.h"
#include "model/safetensors.h"
#include "model/tp_plan.h"
#include "util/errors.h"

/* Fills w with fp32 host arrays (malloc'd), this rank's slices only, in the
 * local shapes documented in model_weights.h (quantized projections as
 * vb_qweight, w->quant set). When the embeddings are tied,
 * w->lm_head == w->embed (one allocation). Returns 0, or -1 with err naming
 * the file and tensor; on failure w holds nothing to free. */
int model_load_cpu(model_weights *w, const model_config *c, const tp_plan *p,
                   const char *model_dir, vb_err *err);

/* The same in either dtype: VB_W_F16 converts with clamping and counts
 * values beyond fp16 range in w->out_of_fp16_range (and warns once per
 * tensor). threads: how many decode a quantized checkpoint's projections
 * (quant_linear_load; <= 1: the caller alone); model_load_cpu uses
 * VB_QUANT_LOAD_THREADS_DEFAULT. */
#define VB_QUANT_LOAD_THREADS_DEFAULT 4
int model_load_host(model_weights *w, const model_config *c, const tp_plan *p,
                    const char *model_dir, vb_wdtype dtype, int threads, vb_err *err);

/* Frees what model_load_* allocated (lm_head once when tied) and zeroes w.
 * Safe on a zeroed struct. */
void model_weights_free(model_weights *w);

/* Opens the checkpoint and checks that every tensor the config calls for is
 * there with the right shape and a readable dtype, reading no weights; the
 * quantized projections as each of tp ranks would load its part (a slice
 * that cuts a quantization group is refused here, with the --tp values that
 * work, not while loading). */
int model_check_weights(const model_config *c, int tp, const char *model_dir, vb_err *err);

/* Refuses what the chosen backend cannot run: a quantized bit width the
 * CUDA kernels lack (issue #21; none of today's formats). For a driver to
 * call next to model_check_weights, so the refusal is an input error
 * (exit 2) before anything starts; cuda_qweight_upload checks each
 * projection's layout again when it loads. */
int model_check_backend(const model_config *c, bool cuda, const char *model_dir, vb_err *err);

/* One tensor of the checkpoint and this rank's part of it. */
typedef enum tensor_split {
    SPLIT_NONE,  /* replicated: the whole tensor */
    SPLIT_ROWS,  /* rows [start, start + count) */
    SPLIT_COLS,  /* columns [start, start + count) */
} tensor_split;

typedef struct tensor_spec {
    char name[96];        /* Hugging Face name, e.g. model.layers.3.self_attn.q_proj.weight */
    int64_t rows, cols;   /* full shape as a matrix (cols 1 for a vector) */
    tensor_split split;
    int64_t start, count;
    void **slot;          /* where model_weights keeps the local array */
    vb_quant_method quant; /* NONE, or the format this projection is stored in:
                            * its tensors are <name without .weight>.qweight etc.,
                            * read by quant_linear_load (quant_weights.h) */
} tensor_spec;

/* Lists every tensor for c and p (lm_head omitted when tied), with slots
 * pointing into w (w->layers must be allocated). Returns how many were
 * written to specs (at most model_tensor_count(c)). */
int model_tensor_count(const model_config *c);
int model_tensor_specs(const model_config *c, const tp_plan *p, model_weights *w,
                       tensor_spec *specs);

/* Finds s in the opened checkpoint and checks its shape against the config
 * and that its dtype is readable (F16, BF16, F32); NULL with err naming the
 * file (or dir when missing) and tensor. Shared by model_load_host and the
 * CUDA backend's streaming loader (src/cuda/weights_stream.c), so both
 * accept and refuse the same checkpoints. */
const st_tensor *model_tensor_lookup(const safetensors *st, const tensor_spec *s,
                                     const char *dir, vb_err *err);

#endif

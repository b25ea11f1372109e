/* Loading one rank's weights from a Hugging Face model directory.
 *
 * The data path: config.json -> model_config; tp_plan says which rows or
 * columns of each tensor this rank keeps; safetensors.c maps the checkpoint
 * and copies just those slices, converted, into host arrays. The CPU backend
 * runs on these fp32 arrays directly; the CUDA uploader (later) reads the
 * same slices as fp16 through safetensors.h. */
#ifndef VB_MODEL_LOAD_H
#define VB_MODEL_LOAD_H

#include "model/model_config.h"
#include "model/model_weights.h"
#include "model/tp_plan.h"
#include "util/errors.h"

/* Fills w with fp32 host arrays (malloc'd), this rank's slices only, in the
 * local shapes documented in model_weights.h. When the embeddings are tied,
 * w->lm_head == w->embed (one allocation). Returns 0, or -1 with err naming
 * the file and tensor; on failure w holds nothing to free. */
int model_load_cpu(model_weights *w, const model_config *c, const tp_plan *p,
                   const char *model_dir, vb_err *err);

/* Frees what model_load_cpu allocated (lm_head once when tied) and zeroes w.
 * Safe on a zeroed struct. */
void model_weights_free(model_weights *w);

#endif

/* Checkpoint -> fp16 device weights without a host copy of the model.
 *
 * The CUDA backend's loader: walks model_tensor_specs, reads each tensor's
 * slice for this rank from the memory-mapped safetensors files into a few
 * pinned staging buffers, and copies and converts them on the GPU
 * (kernels/convert.cu) while the CPU fills the next buffer. Host memory
 * stays at the staging buffers (2 x 64 MiB by default) instead of the
 * whole rank's weights. The result is byte-identical to model_load_host
 * (VB_W_F16) + cuda_weights_upload (tests/gpu/test_weights_stream.c). */
#ifndef VB_WEIGHTS_STREAM_H
#define VB_WEIGHTS_STREAM_H

#include <stddef.h>

#include "model/model_config.h"
#include "model/model_weights.h"
#include "model/tp_plan.h"
#include "util/env.h"
#include "util/errors.h"

/* The staging buffers' defaults are in util/env.c's table
 * (VB_WEIGHT_STAGING_BYTES, VB_WEIGHT_STAGING_BUFFERS); the reader
 * threads' depends on the machine, so it is applied here: */
#define VB_WEIGHT_READ_THREADS_DEFAULT 4 /* at most the CPUs online */
#define VB_WEIGHT_READ_THREADS_MAX 32

/* Loads this rank's weights (slices per p) from model_dir onto the current
 * CUDA device as fp16, in model_weights' local shapes; lm_head == embed
 * when tied. Fills dev->bytes (device bytes), bytes_read (checkpoint
 * bytes), load_seconds and out_of_fp16_range (warning once per tensor, as
 * model_load_host does). Returns 0, or -1 with err naming the file and
 * tensor (or, out of GPU memory, what this rank needs and what the GPU
 * has); on failure dev holds nothing to free. Free with cuda_weights_free.
 * The staging buffers and reader threads are t's VB_WEIGHT_STAGING_BYTES,
 * VB_WEIGHT_STAGING_BUFFERS and VB_WEIGHT_READ_THREADS (for measurements;
 * util/env.h); t NULL: the defaults. */
int cuda_weights_load(model_weights *dev, const model_config *c, const tp_plan *p,
                      const char *model_dir, const vb_tuning *t, vb_err *err);

typedef struct weights_stream_opts {
    size_t staging_bytes;    /* per staging buffer (>= 4) */
    int n_buffers;           /* staging buffers (>= 2) */
    int read_threads;        /* threads copying one chunk from the mmap, and decoding a
                              * quantized projection (quant_linear_load) */
    size_t min_thread_bytes; /* a chunk is split only into parts at least this big */
} weights_stream_opts;

/* The same with explicit settings: the tests use tiny staging buffers and
 * tiny thread parts, so chunk and part boundaries fall inside tensors and
 * inside the row pieces of column slices. */
int cuda_weights_load_opts(model_weights *dev, const model_config *c, const tp_plan *p,
                           const char *model_dir, const weights_stream_opts *o, vb_err *err);

#endif

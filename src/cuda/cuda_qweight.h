/* Weight-only quantized projections on the GPU (issue #21): the one
 * internal layout of model/quant_weights.h, uploaded as it is.
 *
 * A quantized model_weights on the CUDA backend (quant != VB_QUANT_NONE)
 * has each of the seven projections of a layer point to a cuda_qweight:
 * a host struct whose vb_qweight has the host's shapes and device arrays
 * (q, scales, zeros, perm, g_idx). The backend's matmul_quant reads it.
 *
 * Every projection of one model shares one fp16 device scratch buffer of
 * cuda_qweight_scratch_elems of its largest projection: the dequantized
 * matrix for steps too large for the GEMV (quant_dequant.cu, then cuBLAS),
 * or a decode step's activations gathered into act order. It is made with
 * the weights, before the KV cache takes what is left, so a run never
 * allocates it during a step (or a CUDA graph's capture). */
#ifndef VB_CUDA_QWEIGHT_H
#define VB_CUDA_QWEIGHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels.h"
#include "model/model_config.h"
#include "model/model_load.h"
#include "model/model_weights.h"
#include "model/quant_weights.h"
#include "util/errors.h"

typedef struct cuda_qweight {
    vb_qweight w;      /* shapes as on the host; arrays in device memory */
    uint16_t *scratch; /* shared fp16 scratch (see above), cuda_qweights_attach_scratch */
    size_t scratch_elems;
    bool owns_scratch; /* the one projection that frees it */
    bool joined;       /* its arrays lie inside the first of its group's
                        * (cuda_qweights_join_layers): freed with that one */
    void *sz_tiles;    /* NULL, or the GEMV's tiled scales and zeros
                        * (cuda_qweights_tile_scales) of sz_tiles_rows rows
                        * from its first: its own, or its joined group's */
    int sz_tiles_rows;
    bool blocked;      /* q in row blocks (kernels.h vb_qmat; vb_gemv_quant_wants_blocks) */
} cuda_qweight;

/* Checks h (bits, shapes, groups, g_idx and perm ranges: a bad layout is
 * an input error naming `name`) and copies it to the device. Returns 0, or
 * -1 with err set and nothing allocated. */
int cuda_qweight_upload(cuda_qweight **out, const vb_qweight *h, const char *name, vb_err *err);

/* w's device arrays and shape as the kernels take them (kernels.h). */
vb_qmat cuda_qweight_qmat(const cuda_qweight *w);

/* Frees the device arrays (and the scratch when it owns it) and w. */
void cuda_qweight_free(cuda_qweight *w);

/* fp16 elements of scratch a projection of this shape needs: its
 * dequantized matrix, and room for VB_QGEMV_MAX_ROWS gathered x rows. */
size_t cuda_qweight_scratch_elems(int n_out, int n_in);

/* Device bytes the streaming loader will upload for spec s of a model
 * quantized as q (as memory_plan.c counts them), before reading it. */
uint64_t cuda_qweight_plan_bytes(const vb_quant_config *q, const tensor_spec *s);

/* After cuda_qweights_join_layers: gives each matrix the decode GEMV runs
 * (a joined q/k/v or gate/up group, o, down) its scales and zeros tiled
 * for that kernel (vb_qgemv_make_sz_tiles: one load a step instead of
 * four), where its layout has them; adds their bytes to dev->bytes. A
 * matrix without them (out of GPU memory, other layouts) runs the same
 * kernel reading the plain arrays, with the same results. Which matrices
 * get them: kernels/qgemv_tiles.h (memory_plan.c counts them alike). */
void cuda_qweights_tile_scales(model_weights *dev, const model_config *c);

/* Allocates one scratch for the quantized projections of dev (c's
 * layers) and points them all at it. Returns 0, or -1 with err set
 * (out of GPU memory, naming the bytes). */
int cuda_qweights_attach_scratch(model_weights *dev, const model_config *c, vb_err *err);

/* Moves the projections of each layer that read one input (q, k and v;
 * gate and up) into one allocation each for their packed weights, scales
 * and zeros, rows one matrix after another, so that one GEMV launch
 * reads them all (cuda_qweights_adjacent). Only matrices of one layout
 * (bits, columns, groups; no perm, no g_idx) are joined; a failed
 * allocation leaves the group apart (one launch each, as before), which
 * is not an error. The device bytes stay as they were. */
void cuda_qweights_join_layers(model_weights *dev, const model_config *c);

/* Whether w[0..n) lie one after another in one joined allocation
 * (cuda_qweights_join_layers), each matrix's rows right after the
 * previous one's. */
bool cuda_qweights_adjacent(const cuda_qweight *const w[], int n);

#endif

/* The CUDA backend: the backend interface (forward/backend.h) on one GPU,
 * fp16 activations, weights and KV cache, an fp32 residual stream, cuBLAS for the projections
 * (fp16 in, fp32 accumulation), the kernels in kernels/ for the rest, and
 * NCCL for the tensor-parallel all-reduce. */
#ifndef VB_BACKEND_CUDA_H
#define VB_BACKEND_CUDA_H

#include <nccl.h>
#include <stdbool.h>

#include "forward/backend.h"
#include "model/model_config.h"
#include "model/model_weights.h"
#include "model/tp_plan.h"
#include "util/env.h"
#include "util/errors.h"

/* Uses the current CUDA device. comm: the TP group's communicator, or NULL
 * for tp = 1. t: the environment knobs it takes its kernel choices from
 * (VB_NO_GEMV, VB_PROFILE, ...; util/env.h), or NULL for the defaults; it
 * also switches programmatic dependent launch, process-wide, by
 * VB_NO_PDL. Returns NULL (and fills err) on failure. */
vb_backend *cuda_backend_create(ncclComm_t comm, const vb_tuning *t, vb_err *err);

/* The kernels' process-wide switches (one GPU a process) from t: the GPU
 * the launchers choose by (VB_EMULATE_SM), programmatic dependent launch
 * (VB_NO_PDL) and the decode kernels' variants (VB_GEMV_L1_ALLOC, VB_QGEMV_L1_ALLOC, VB_QGEMV_X_SHARED,
 * VB_QGEMV_KS_BY_TILES, VB_QGEMV_UNROLL, VB_QGEMV_RING,
 * VB_DECODE_REDUCE_KERNEL, VB_DECODE_STAGES).
 * cuda_backend_create calls it; the micro-benchmarks too, so they time
 * the kernels as a run takes them. */
void cuda_kernel_switches_set(const vb_tuning *t);

/* How decode steps run (default: graphs on, eager off).
 *   graphs: record each decode batch-size bucket's step as a CUDA graph on
 *           first use and replay it (--no-cuda-graphs: false; decode steps
 *           are still padded to the buckets, so outputs are bit-identical);
 *   eager:  the --eager diagnostic: no graphs, no padding, and every op
 *           waited for and checked, so a fault names its op;
 *   batch_invariant: --batch-invariant (issue #22): fixed-order kernels
 *           only, so a row's bits never depend on the step's other rows
 *           (on every GPU the build runs on, V100 too; the longest
 *           sequence it takes: cuda_backend_invariant_positions).
 * A CUDA failure (the mode's workspaces) ends the process as CUDA_CHECK
 * does. */
void cuda_backend_set_mode(vb_backend *b, bool graphs, bool eager, bool batch_invariant);

/* The longest sequence, in positions, whose decode attention
 * --batch-invariant takes on this GPU: its fixed splits (the sm_80+
 * kernel's 512 x 512, the CUDA-core kernel's 512 x 64 on V100). */
int cuda_backend_invariant_positions(vb_backend *b);

/* Copies host weights (fp16 from model_load_host, or fp32 from
 * model_load_cpu, converted by the device kernel) to fp16 device memory;
 * values beyond fp16 range are clamped and counted in
 * dev->out_of_fp16_range. dev's tensors are cudaMalloc'ed. */
int cuda_weights_upload(model_weights *dev, const model_weights *host, const model_config *c,
                        const tp_plan *p, vb_err *err);
void cuda_weights_free(model_weights *dev, const model_config *c);

#endif

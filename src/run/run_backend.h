/* The backend `generate` runs on: the CPU backend, or the CUDA backend on
 * the GPU this rank's node-local rank picks (--device auto uses CUDA when
 * the build has it and a GPU is visible).
 *
 * It also answers the two questions the engine set-up asks of a backend:
 * how many bytes the KV cache may take (GPU: what is left under
 * --gpu-memory-utilization after weights and activations; CPU: a share of
 * the node's memory), and where the step's logits can be read on the host. */
#ifndef VB_RUN_BACKEND_H
#define VB_RUN_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include "forward/backend.h"
#include "model/model_config.h"
#include "model/model_weights.h"
#include "model/tp_plan.h"
#include "mpi/dist.h"
#include "run/run_config.h"
#include "util/errors.h"

typedef struct run_backend {
    vb_backend *b;
    bool cuda;
    const model_weights *w;  /* what the forward pass reads: host_w or dev */
    model_weights dev;       /* CUDA: the fp16 device copy */
    void *nccl;              /* CUDA: the TP group's communicator (ncclComm_t) */
    float *host_logits;      /* CUDA: host copy of a step's logits */
    size_t host_logits_cap;  /* floats */
    char gpu_name[256];
} run_backend;

/* Whether run_backend_open will pick CUDA (so weights can be loaded in
 * fp16, half the host memory of fp32). */
bool run_backend_wants_cuda(const run_config *o);

/* The CPU backend's threads on this rank: --threads, else VB_CPU_THREADS,
 * else the node's cores shared among its ranks (also the threads that
 * decode a quantized checkpoint for it at load). */
int run_backend_cpu_threads(const run_config *o, const vb_dist *d);

/* Picks and creates the backend; for CUDA selects the GPU, creates the
 * NCCL communicator and uploads host_w (fp16 or fp32) as fp16; the caller
 * may free host_w afterwards. With host_w NULL (CUDA only) the weights are
 * streamed from o->model_dir to the GPU instead (cuda_weights_load), with
 * no host copy of the model. Returns 0, or
 * VB_EXIT_USAGE (CUDA asked of a build or node without it) / 1 with err. */
int run_backend_open(run_backend *rb, const run_config *o, const vb_dist *d,
                     const model_config *c, const tp_plan *p, const model_weights *host_w,
                     vb_err *err);

/* Bytes the KV cache may take on this rank, measured after the forward
 * pass's buffers are allocated. cpu_budget is the CPU backend's share. */
double run_backend_kv_budget(const run_backend *rb, const run_config *o,
                             double cpu_budget);

/* The longest sequence in positions that --batch-invariant takes on this
 * backend (INT_MAX on the CPU). */
int run_backend_invariant_positions(const run_backend *rb);

/* The step's logits ([rows, vocab_local] fp32) in host memory. */
const float *run_backend_logits(run_backend *rb, const float *logits, size_t n);

void run_backend_close(run_backend *rb, const model_config *c);

#endif

/* CPU or CUDA backend for `generate`; see run_backend.h. */
#include "run/run_backend.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_backend.h"
#include "cpu/cpu_pool.h"
#include "mpi/watchdog.h"
#include "util/exit_codes.h"
#include "util/log.h"
#include "vb_config.h"

#if VB_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "cuda/backend_cuda.h"
#include "cuda/cuda_check.h"
#include "cuda/cuda_device.h"
#include "cuda/weights_stream.h"
#endif

bool run_backend_wants_cuda(const run_config *o)
{
#if VB_HAVE_CUDA
    if (o->device == VB_DEVICE_CPU)
        return false;
    if (o->device == VB_DEVICE_CUDA)
        return true;
    int n = 0;
    return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
#else
    (void)o;
    return false;
#endif
}

int run_backend_cpu_threads(const run_config *o, const vb_dist *d)
{
    if (o->threads > 0)
        return (int)o->threads;
    if (o->tuning.cpu_threads > 0)
        return o->tuning.cpu_threads;
    return cpu_pool_cores_per_rank(d->local_size);
}

int run_backend_open(run_backend *rb, const run_config *o, const vb_dist *d,
                     const model_config *c, const tp_plan *p, const model_weights *host_w,
                     vb_err *err)
{
    memset(rb, 0, sizeof *rb);
    rb->w = host_w;
#if !VB_HAVE_CUDA
    if (o->device == VB_DEVICE_CUDA) {
        vb_err_set(err, "--device cuda: this voltbatch was built without CUDA "
                        "(rebuild with nvcc on PATH, or use --device cpu)");
        return VB_EXIT_USAGE;
    }
#endif
    rb->cuda = run_backend_wants_cuda(o);
    char host[MPI_MAX_PROCESSOR_NAME] = "?";
    int host_len = 0;
    if (MPI_Get_processor_name(host, &host_len) != MPI_SUCCESS)
        snprintf(host, sizeof host, "?"); /* only the start-up line's host name */
    if (!rb->cuda && !host_w) {
        vb_err_set(err, "the CPU backend needs host weights (model_load_cpu)");
        return 1;
    }
    if (!rb->cuda) {
        rb->b = cpu_backend_create(run_backend_cpu_threads(o, d), d->tp_comm, d->local_size);
        if (!rb->b) {
            vb_err_set(err, "cannot create the CPU backend (out of memory)");
            return 1;
        }
        vb_info("rank %d on %s (tp %d/%d, dp %d/%d): CPU backend, %d threads", d->world_rank,
                host, d->tp_rank, d->tp, d->dp_rank, d->dp, cpu_backend_threads(rb->b));
        if (d->tp > 1) { /* for the watchdog's messages */
            char what[160];
            int first = d->world_rank - d->tp_rank;
            snprintf(what, sizeof what, "the MPI all-reduce of TP group %d (world ranks %d-%d)",
                     d->dp_rank, first, first + d->tp - 1);
            vb_watchdog_set_collective(what);
        }
        return 0;
    }
#if VB_HAVE_CUDA
    int dev = 0;
    char bus[32] = "?";
    if (cuda_select_device(d, &dev, bus, sizeof bus, err))
        return VB_EXIT_USAGE;
    struct cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
    snprintf(rb->gpu_name, sizeof rb->gpu_name, "%s", prop.name);
    vb_info("rank %d on %s (tp %d/%d, dp %d/%d): GPU %d %s, PCI %s", d->world_rank, host,
            d->tp_rank, d->tp, d->dp_rank, d->dp, dev, prop.name, bus);
    /* non-blocking, registered with the watchdog (cuda_device.h) */
    rb->nccl = cuda_nccl_comm_open(d, o->collective_timeout);
    rb->b = cuda_backend_create((ncclComm_t)rb->nccl, &o->tuning, err);
    if (!rb->b)
        return 1;
    cuda_backend_set_mode(rb->b, o->cuda_graphs, o->eager, o->batch_invariant);
    /* Without host weights: streamed from the checkpoint straight to the
     * GPU, so the host never holds a copy of the model (weights_stream.h). */
    if (host_w ? cuda_weights_upload(&rb->dev, host_w, c, p, err)
               : cuda_weights_load(&rb->dev, c, p, o->model_dir, &o->tuning, err))
        return 1;
    if (rb->dev.out_of_fp16_range)
        vb_warn("%llu weight values beyond the fp16 range were clamped to +-65504",
                (unsigned long long)rb->dev.out_of_fp16_range);
    rb->w = &rb->dev;
    return 0;
#else
    (void)c, (void)p;
    return 1;
#endif
}

int run_backend_invariant_positions(const run_backend *rb)
{
#if VB_HAVE_CUDA
    if (rb->cuda)
        return cuda_backend_invariant_positions(rb->b);
#endif
    (void)rb;
    return INT_MAX;
}

double run_backend_kv_budget(const run_backend *rb, const run_config *o,
                             double cpu_budget)
{
    if (!rb->cuda)
        return cpu_budget;
#if VB_HAVE_CUDA
    size_t free_b = 0, total = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total));
    /* What the run may use in all, minus what is already taken (weights,
     * activations, cuBLAS and NCCL buffers, other processes). */
    double allowed = (double)total * o->gpu_memory_utilization - (double)(total - free_b);
    return allowed > 0 ? allowed : 0;
#else
    (void)o;
    return cpu_budget;
#endif
}

const float *run_backend_logits(run_backend *rb, const float *logits, size_t n)
{
    if (!rb->cuda || !logits)
        return logits;
    if (n > rb->host_logits_cap) {
        free(rb->host_logits);
        rb->host_logits = malloc(n * sizeof(float));
        if (!rb->host_logits) {
            rb->host_logits_cap = 0;
            return NULL;
        }
        rb->host_logits_cap = n;
    }
    rb->b->to_host(rb->b, rb->host_logits, logits, n * sizeof(float));
    return rb->host_logits;
}

void run_backend_close(run_backend *rb, const model_config *c)
{
    if (rb->b)
        rb->b->destroy(rb->b);
#if VB_HAVE_CUDA
    if (rb->cuda) {
        cuda_weights_free(&rb->dev, c);
        cuda_nccl_comm_destroy((ncclComm_t)rb->nccl);
    }
#else
    (void)c;
#endif
    free(rb->host_logits);
    memset(rb, 0, sizeof *rb);
}

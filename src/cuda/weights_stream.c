/* cuda_weights_load: the checkpoint streamed straight to fp16 device
 * weights (see weights_stream.h).
 *
 * The pipeline, one CUDA stream and N pinned staging buffers used in turn:
 *
 *   CPU:  memcpy mmap -> pinned[i]      (this is where the disk is read)
 *   GPU:  pinned[i] -> device           (cudaMemcpyAsync)
 *         convert bf16/fp32 -> fp16     (kernels/convert.cu; fp16 sources
 *                                        are copied into place as they are)
 *         record done[i]
 *
 * Before pinned[i] is filled again the CPU waits for done[i], so while it
 * reads chunk k the GPU is copying and converting chunk k-1. A chunk is a
 * run of consecutive elements of the local slice; a column slice
 * (o_proj / down_proj under tp) is gathered row piece by row piece into
 * the staging buffer, so the device always receives the local matrix
 * contiguously. madvise(MADV_WILLNEED) on the next tensor's bytes lets the
 * kernel read ahead while the current one is copied (MADV_DONTNEED after
 * it keeps resident memory at the staging buffers), and a large chunk is
 * copied by several threads: a copy from the mmap waits on one page fault
 * (one read) at a time, so more threads keep more reads in flight, and
 * copy pages already cached several times faster.
 *
 * A quantized model's projections (quant_weights.h: AWQ, GPTQ,
 * compressed-tensors, --quantize int8) are not fp16 arrays: each is read
 * for this rank by quant_linear_load into a host vb_qweight (the decoding
 * of each format lives there, shared with the CPU backend; it runs on the
 * reader threads too), uploaded in
 * that packed layout (cuda_qweight.h) and freed, one projection at a time,
 * after the fp16 tensors have streamed; then the shared dequantization
 * scratch is made, so dev->bytes and the KV budget left after it count
 * both.
 *
 * Every tensor is looked up and checked (model_tensor_lookup, shared with
 * model_load_host) and every device tensor allocated before any weight
 * byte is read, so a bad checkpoint or a GPU too small fails in seconds,
 * not after minutes of reading. */
#include "cuda/weights_stream.h"

#include <cuda_runtime_api.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cuda/backend_cuda.h"
#include "cuda/cuda_check.h"
#include "cuda/cuda_qweight.h"
#include "kernels.h"
#include "model/model_load.h"
#include "model/quant_weights.h"
#include "model/safetensors.h"
#include "util/log.h"

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One tensor's local slice as a matrix [rows, cols] inside the checkpoint
 * matrix [t->rows, t->cols]: rows [row0, +rows), columns [col0, +cols). */
typedef struct slice {
    const tensor_spec *s;
    const st_tensor *t;
    const uint8_t *base;      /* the checkpoint tensor's first byte (mmap) */
    size_t es;                /* source element size */
    int64_t row0, col0, rows, cols;
} slice;

static int64_t slice_elems(const slice *sl)
{
    return sl->rows * sl->cols;
}

typedef struct streamer {
    cudaStream_t stream;
    int n_buf;
    size_t buf_bytes;
    int read_threads;
    size_t min_thread_bytes;
    uint8_t **host;           /* staging, pinned (pageable if pinning is refused) */
    bool pinned;
    void **dev_stage;         /* device copies of bf16 / fp32 chunks, converted from */
    cudaEvent_t *done;        /* buffer i's last use on the stream has finished */
    bool *in_use;
    int next;
    double t_read, t_wait;    /* seconds in memcpy from the mmap / waiting for a buffer */
} streamer;

static int streamer_open(streamer *sm, int n_buf, size_t buf_bytes, bool need_dev_stage,
                         vb_err *err)
{
    memset(sm, 0, sizeof *sm);
    sm->n_buf = n_buf;
    sm->buf_bytes = buf_bytes;
    sm->host = calloc((size_t)n_buf, sizeof *sm->host);
    sm->dev_stage = calloc((size_t)n_buf, sizeof *sm->dev_stage);
    sm->done = calloc((size_t)n_buf, sizeof *sm->done);
    sm->in_use = calloc((size_t)n_buf, sizeof *sm->in_use);
    if (!sm->host || !sm->dev_stage || !sm->done || !sm->in_use)
        return vb_err_set(err, "out of host memory for the weight staging buffers");
    CUDA_CHECK(cudaStreamCreateWithFlags(&sm->stream, cudaStreamNonBlocking));
    for (int i = 0; i < n_buf; i++)
        CUDA_CHECK(cudaEventCreateWithFlags(&sm->done[i], cudaEventDisableTiming));
    sm->pinned = true;
    for (int i = 0; i < n_buf && sm->pinned; i++)
        if (cudaHostAlloc((void **)&sm->host[i], buf_bytes, cudaHostAllocDefault) != cudaSuccess) {
            /* Pinning can be refused (a low locked-memory limit); pageable
             * buffers still work, the copies just overlap less. */
            cudaGetLastError();
            sm->host[i] = NULL;
            for (int j = 0; j < i; j++) {
                CUDA_CHECK(cudaFreeHost(sm->host[j]));
                sm->host[j] = NULL;
            }
            sm->pinned = false;
            vb_warn("cannot pin %d x %.1f MiB of host memory for the weight upload; using "
                    "pageable buffers (slower)", n_buf, (double)buf_bytes / (1 << 20));
        }
    for (int i = 0; i < n_buf && !sm->pinned; i++)
        if (!(sm->host[i] = malloc(buf_bytes)))
            return vb_err_set(err, "out of host memory for the weight staging buffers");
    for (int i = 0; need_dev_stage && i < n_buf; i++)
        if (cudaMalloc(&sm->dev_stage[i], buf_bytes) != cudaSuccess) {
            cudaGetLastError();
            sm->dev_stage[i] = NULL;
            return vb_err_set(err, "out of GPU memory for %d x %.1f MiB of weight staging "
                              "buffers", n_buf, (double)buf_bytes / (1 << 20));
        }
    return 0;
}

/* Safe on a partly opened streamer; waits for the stream first so no copy
 * is still reading a buffer being freed. */
static void streamer_close(streamer *sm)
{
    if (sm->stream)
        CUDA_CHECK(cudaStreamSynchronize(sm->stream));
    for (int i = 0; i < sm->n_buf; i++) {
        if (sm->host && sm->host[i]) {
            if (sm->pinned)
                CUDA_CHECK(cudaFreeHost(sm->host[i]));
            else
                free(sm->host[i]);
        }
        if (sm->dev_stage && sm->dev_stage[i])
            CUDA_CHECK(cudaFree(sm->dev_stage[i]));
        if (sm->done && sm->done[i])
            CUDA_CHECK(cudaEventDestroy(sm->done[i]));
    }
    if (sm->stream)
        CUDA_CHECK(cudaStreamDestroy(sm->stream));
    free(sm->host);
    free(sm->dev_stage);
    free(sm->done);
    free(sm->in_use);
    memset(sm, 0, sizeof *sm);
}

/* Copies elements [e0, e0 + m) of the local slice into dst, row pieces at
 * a time when the slice does not span whole checkpoint rows. */
static void gather(const slice *sl, int64_t e0, int64_t m, uint8_t *dst)
{
    const int64_t full = sl->t->cols;
    if (sl->cols == full) { /* whole rows: one contiguous range */
        memcpy(dst, sl->base + (size_t)((sl->row0 * full + e0) * (int64_t)sl->es),
               (size_t)m * sl->es);
        return;
    }
    for (int64_t e = e0; e < e0 + m;) {
        int64_t r = e / sl->cols, c = e % sl->cols;
        int64_t k = sl->cols - c < e0 + m - e ? sl->cols - c : e0 + m - e;
        memcpy(dst + (size_t)(e - e0) * sl->es,
               sl->base + (size_t)(((sl->row0 + r) * full + sl->col0 + c) * (int64_t)sl->es),
               (size_t)k * sl->es);
        e += k;
    }
}

typedef struct gather_part {
    const slice *sl;
    int64_t e0, m;
    uint8_t *dst;
} gather_part;

static void *gather_thread(void *arg)
{
    const gather_part *g = arg;
    gather(g->sl, g->e0, g->m, g->dst);
    return NULL;
}

/* gather() split over up to `threads` threads, each part at least
 * min_part_bytes; a thread that cannot be started has its part copied
 * here instead, so this cannot fail. */
static void gather_parallel(const slice *sl, int64_t e0, int64_t m, uint8_t *dst, int threads,
                            size_t min_part_bytes)
{
    int64_t by_size = (int64_t)((size_t)m * sl->es / (min_part_bytes ? min_part_bytes : 1));
    int t = threads < by_size ? threads : (int)by_size;
    if (t > m)
        t = (int)m;
    if (t > VB_WEIGHT_READ_THREADS_MAX)
        t = VB_WEIGHT_READ_THREADS_MAX;
    if (t <= 1) {
        gather(sl, e0, m, dst);
        return;
    }
    gather_part parts[VB_WEIGHT_READ_THREADS_MAX];
    pthread_t tid[VB_WEIGHT_READ_THREADS_MAX];
    bool started[VB_WEIGHT_READ_THREADS_MAX] = {false};
    for (int k = 0; k < t; k++) {
        int64_t a = m * k / t, b = m * (k + 1) / t;
        parts[k] = (gather_part){sl, e0 + a, b - a, dst + (size_t)a * sl->es};
    }
    for (int k = 1; k < t; k++)
        started[k] = pthread_create(&tid[k], NULL, gather_thread, &parts[k]) == 0;
    gather_thread(&parts[0]);
    for (int k = 1; k < t; k++) {
        if (!started[k])
            gather_thread(&parts[k]);
        else if (pthread_join(tid[k], NULL) != 0)
            abort(); /* joinable and ours: cannot happen */
    }
}

/* Gives the kernel advice about the pages of the slice's bytes:
 * MADV_WILLNEED to start reading them now, MADV_DONTNEED once they are
 * copied, to unmap them from this process (the page cache keeps them for
 * other ranks; a page shared with the next tensor is simply faulted in
 * again), so the mapped checkpoint does not add up to the whole rank's
 * weights in resident memory. Advice only: a refusal costs speed or
 * resident memory, never correctness, so the result is not needed. */
static void advise(const slice *sl, int advice)
{
    int64_t n = slice_elems(sl);
    if (n == 0)
        return;
    const int64_t full = sl->t->cols;
    uintptr_t lo = (uintptr_t)(sl->base + (size_t)((sl->row0 * full + sl->col0) * (int64_t)sl->es));
    uintptr_t hi = (uintptr_t)(sl->base + (size_t)(((sl->row0 + sl->rows - 1) * full + sl->col0 +
                                                    sl->cols) * (int64_t)sl->es));
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    lo &= ~(page - 1);
    (void)madvise((void *)lo, hi - lo, advice);
}

/* Streams one slice into the fp16 device tensor dst; bf16 / fp32 values
 * beyond fp16 range are counted in *d_oor (device). */
static void stream_slice(streamer *sm, const slice *sl, uint16_t *dst, unsigned long long *d_oor)
{
    int64_t n = slice_elems(sl);
    int64_t per_chunk = (int64_t)(sm->buf_bytes / sl->es);
    int src = sl->t->dtype == ST_F16 ? VB_SRC_F16 : sl->t->dtype == ST_BF16 ? VB_SRC_BF16
                                                                            : VB_SRC_F32;
    for (int64_t e0 = 0; e0 < n; e0 += per_chunk) {
        int64_t m = n - e0 < per_chunk ? n - e0 : per_chunk;
        int b = sm->next;
        sm->next = (sm->next + 1) % sm->n_buf;
        double t0 = now_seconds();
        if (sm->in_use[b])
            CUDA_CHECK(cudaEventSynchronize(sm->done[b]));
        double t1 = now_seconds();
        gather_parallel(sl, e0, m, sm->host[b], sm->read_threads, sm->min_thread_bytes);
        sm->t_wait += t1 - t0;
        sm->t_read += now_seconds() - t1;
        if (src == VB_SRC_F16) { /* already fp16: straight into place */
            CUDA_CHECK(cudaMemcpyAsync(dst + e0, sm->host[b], (size_t)m * 2,
                                       cudaMemcpyHostToDevice, sm->stream));
        } else {
            CUDA_CHECK(cudaMemcpyAsync(sm->dev_stage[b], sm->host[b], (size_t)m * sl->es,
                                       cudaMemcpyHostToDevice, sm->stream));
            CUDA_CHECK(vb_convert_to_fp16(sm->dev_stage[b], src, dst + e0, (size_t)m, d_oor,
                                          sm->stream));
        }
        CUDA_CHECK(cudaEventRecord(sm->done[b], sm->stream));
        sm->in_use[b] = true;
    }
}

/* Fills sl for spec s, or fails naming the tensor when the plan's range
 * lies outside it (lookup already checked the shape against the config). */
static int slice_of(slice *sl, const safetensors *st, const tensor_spec *s, const st_tensor *t,
                    vb_err *err)
{
    const st_file *f = &st->files[t->file];
    *sl = (slice){.s = s, .t = t, .es = st_dtype_size(t->dtype),
                  .base = f->map + f->data_start + t->begin};
    bool cols = s->split == SPLIT_COLS;
    sl->row0 = s->split == SPLIT_ROWS ? s->start : 0;
    sl->rows = cols ? t->rows : s->count;
    sl->col0 = cols ? s->start : 0;
    sl->cols = cols ? s->count : t->cols;
    if (sl->row0 < 0 || sl->rows < 0 || sl->row0 + sl->rows > t->rows || sl->col0 < 0 ||
        sl->cols < 0 || sl->col0 + sl->cols > t->cols)
        return vb_err_set(err, "%s: tensor '%s': this rank's rows [%lld, %lld) x columns "
                          "[%lld, %lld) lie outside its [%lld, %lld]", f->path, s->name,
                          (long long)sl->row0, (long long)(sl->row0 + sl->rows),
                          (long long)sl->col0, (long long)(sl->col0 + sl->cols),
                          (long long)t->rows, (long long)t->cols);
    return 0;
}

/* The quantized projections, one at a time: this rank's slice read and
 * decoded on the host (quant_linear_load, on the reader threads),
 * uploaded, freed. */
static int load_quantized(model_weights *dev, const model_config *c, const tp_plan *p,
                          const safetensors *st, const tensor_spec *specs, int n, int threads,
                          const char *model_dir, vb_err *err)
{
    for (int i = 0; i < n; i++) {
        const tensor_spec *s = &specs[i];
        if (s->quant == VB_QUANT_NONE)
            continue;
        vb_qweight *h = NULL;
        uint64_t oor = 0;
        if (quant_linear_load(&h, st, &c->quant, s, p->tp, threads, model_dir, &oor, err) != 0)
            return -1;
        if (oor)
            vb_warn("%s: '%s': %llu scales beyond fp16 range clamped to +-65504", model_dir,
                    s->name, (unsigned long long)oor);
        dev->out_of_fp16_range += oor;
        cuda_qweight *d = NULL;
        int rc = cuda_qweight_upload(&d, h, s->name, err);
        /* --quantize reads the float rows; a checkpoint, the packed bytes */
        const st_tensor *f = st_find(st, s->name);
        dev->bytes_read += c->quant.method == VB_QUANT_INT8 && f
                               ? (uint64_t)(s->split == SPLIT_ROWS ? s->count : s->rows) *
                                     (uint64_t)s->cols * st_dtype_size(f->dtype)
                               : h->bytes;
        quant_weight_free(h);
        if (rc != 0)
            return -1;
        *s->slot = d;
        dev->bytes += d->w.bytes;
    }
    return 0;
}

static int out_of_gpu_memory(vb_err *err, const tp_plan *p, uint64_t need, const char *what)
{
    size_t free_b = 0, total = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total));
    const double gib = 1024.0 * 1024 * 1024;
    return vb_err_set(err, "out of GPU memory for the weights%s: this rank's share at tp %d "
                      "needs %.2f GiB, the GPU has %.2f GiB free of %.2f GiB; use a larger "
                      "--tp (each rank holds about 1/tp of the weights)", what, p->tp,
                      (double)need / gib, (double)free_b / gib, (double)total / gib);
}

int cuda_weights_load_opts(model_weights *dev, const model_config *c, const tp_plan *p,
                           const char *model_dir, const weights_stream_opts *o, vb_err *err)
{
    double t_start = now_seconds();
    *dev = (model_weights){.dtype = VB_W_F16, .quant = c->quant.method};
    size_t staging_bytes = o->staging_bytes;
    int n_buffers = o->n_buffers;
    if (staging_bytes < 4)
        staging_bytes = 4;
    staging_bytes &= ~(size_t)3; /* whole fp32 elements */
    if (n_buffers < 2)
        n_buffers = 2;
    int n_max = model_tensor_count(c);
    tensor_spec *specs = calloc((size_t)n_max, sizeof *specs);
    slice *sl = calloc((size_t)n_max, sizeof *sl);
    dev->layers = calloc((size_t)c->n_layers, sizeof *dev->layers);
    dev->n_layers = c->n_layers;
    unsigned long long *d_oor = NULL, *oor = NULL;
    streamer sm = {0};
    safetensors st = {0};
    bool st_open = false;
    int rc = -1;
    if (!specs || !sl || !dev->layers) {
        vb_err_set(err, "%s: out of host memory", model_dir);
        goto out;
    }
    if (st_open_dir(&st, model_dir, err) != 0)
        goto out;
    st_open = true;

    /* Check everything and size it before reading a weight byte. */
    int n = model_tensor_specs(c, p, dev, specs);
    uint64_t need = 0;
    bool any_converted = false;
    size_t scratch_elems = 0;
    for (int i = 0; i < n; i++) {
        if (specs[i].quant != VB_QUANT_NONE) { /* read later by quant_linear_load */
            if (quant_linear_load(NULL, &st, &c->quant, &specs[i], p->tp, 1, model_dir,
                                  NULL, err) != 0)
                goto out;
            need += cuda_qweight_plan_bytes(&c->quant, &specs[i]);
            const tensor_spec *s = &specs[i];
            size_t e = cuda_qweight_scratch_elems(
                (int)(s->split == SPLIT_ROWS ? s->count : s->rows),
                (int)(s->split == SPLIT_COLS ? s->count : s->cols));
            scratch_elems = e > scratch_elems ? e : scratch_elems;
            continue;
        }
        const st_tensor *t = model_tensor_lookup(&st, &specs[i], model_dir, err);
        if (!t || slice_of(&sl[i], &st, &specs[i], t, err) != 0)
            goto out;
        need += (uint64_t)slice_elems(&sl[i]) * 2;
        any_converted |= t->dtype != ST_F16;
    }
    need += (uint64_t)scratch_elems * 2;
    size_t free_b = 0, total = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total));
    uint64_t stage = any_converted ? (uint64_t)n_buffers * staging_bytes : 0;
    if (need + stage > free_b) {
        out_of_gpu_memory(err, p, need + stage, "");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        if (specs[i].quant != VB_QUANT_NONE)
            continue;
        size_t bytes = (size_t)slice_elems(&sl[i]) * 2;
        if (cudaMalloc(specs[i].slot, bytes ? bytes : 2) != cudaSuccess) {
            cudaGetLastError();
            *specs[i].slot = NULL;
            char what[160];
            snprintf(what, sizeof what, " (at tensor '%s')", specs[i].name);
            out_of_gpu_memory(err, p, need + stage, what);
            goto out;
        }
    }
    /* One counter per tensor, so the warnings can name the tensor as
     * model_load_host's do without waiting for the GPU after each one. */
    CUDA_CHECK(cudaMalloc((void **)&d_oor, (size_t)(n ? n : 1) * sizeof *d_oor));
    if (streamer_open(&sm, n_buffers, staging_bytes, any_converted, err) != 0)
        goto out;
    sm.read_threads = o->read_threads > 1 ? o->read_threads : 1;
    sm.min_thread_bytes = o->min_thread_bytes;
    /* on the loader's stream: a non-blocking stream does not wait for the
     * legacy default stream */
    CUDA_CHECK(cudaMemsetAsync(d_oor, 0, (size_t)(n ? n : 1) * sizeof *d_oor, sm.stream));

    for (int i = 0; i < n; i++) {
        if (!sl[i].t) /* quantized: below */
            continue;
        if (i == 0)
            advise(&sl[0], MADV_WILLNEED);
        if (i + 1 < n && sl[i + 1].t)
            advise(&sl[i + 1], MADV_WILLNEED);
        stream_slice(&sm, &sl[i], (uint16_t *)*specs[i].slot, d_oor + i);
        advise(&sl[i], MADV_DONTNEED); /* copied into staging already */
        dev->bytes += (uint64_t)slice_elems(&sl[i]) * 2;
        dev->bytes_read += (uint64_t)slice_elems(&sl[i]) * sl[i].es;
    }
    CUDA_CHECK(cudaStreamSynchronize(sm.stream));
    if (c->quant.method != VB_QUANT_NONE) {
        if (load_quantized(dev, c, p, &st, specs, n, sm.read_threads, model_dir, err) != 0)
            goto out;
        cuda_qweights_join_layers(dev, c);
        if (cuda_qweights_attach_scratch(dev, c, err) != 0)
            goto out;
        cuda_qweights_tile_scales(dev, c); /* optional: after what a run needs */
    }

    oor = calloc((size_t)(n ? n : 1), sizeof *oor);
    if (!oor) {
        vb_err_set(err, "%s: out of host memory", model_dir);
        goto out;
    }
    CUDA_CHECK(cudaMemcpy(oor, d_oor, (size_t)(n ? n : 1) * sizeof *oor, cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; i++) {
        if (!sl[i].t)
            continue;
        if (oor[i])
            vb_warn("%s: tensor '%s': %llu values beyond fp16 range clamped to +-65504",
                    st.files[sl[i].t->file].path, specs[i].name, oor[i]);
        dev->out_of_fp16_range += oor[i];
    }
    if (c->tie_word_embeddings)
        dev->lm_head = dev->embed;
    dev->load_seconds = now_seconds() - t_start;
    vb_info("%s: streamed this rank's %.1f MiB (%.1f MiB read from the checkpoint) to the GPU "
            "in %.2f s, %.2f GB/s from storage (reading %.2f s, waiting for the GPU %.2f s, "
            "%d x %.1f MiB %s staging, %d reading threads)", model_dir,
            (double)dev->bytes / (1u << 20), (double)dev->bytes_read / (1u << 20),
            dev->load_seconds,
            dev->load_seconds > 0 ? (double)dev->bytes_read / dev->load_seconds / 1e9 : 0.0,
            sm.t_read, sm.t_wait, n_buffers, (double)staging_bytes / (1u << 20),
            sm.pinned ? "pinned" : "pageable", sm.read_threads);
    rc = 0;
out:
    streamer_close(&sm);
    if (d_oor)
        CUDA_CHECK(cudaFree(d_oor));
    free(oor);
    if (st_open)
        st_close(&st);
    free(specs);
    free(sl);
    if (rc != 0)
        cuda_weights_free(dev, c);
    return rc;
}

int cuda_weights_load(model_weights *dev, const model_config *c, const tp_plan *p,
                      const char *model_dir, const vb_tuning *t, vb_err *err)
{
    vb_tuning defaults;
    if (!t) {
        vb_tuning_defaults(&defaults);
        t = &defaults;
    }
    int threads = t->weight_read_threads;
    if (threads <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        threads = VB_WEIGHT_READ_THREADS_DEFAULT;
        if (cpus > 0 && cpus < threads)
            threads = (int)cpus;
    }
    weights_stream_opts o = {
        .staging_bytes = (size_t)t->weight_staging_bytes,
        .n_buffers = t->weight_staging_buffers,
        .read_threads = threads,
        .min_thread_bytes = (size_t)1 << 20,
    };
    return cuda_weights_load_opts(dev, c, p, model_dir, &o, err);
}

/* vb_qweight host -> device, and the shared dequantization scratch; see
 * cuda_qweight.h. */
#include "cuda/cuda_qweight.h"

#include <cuda_runtime_api.h>
#include <stdlib.h>

#include "cuda/cuda_check.h"
#include "model/memory_plan.h"
#include "kernels.h"

/* Bytes of a matrix's packed weights, and of its scales (its zeros alike). */
static size_t q_bytes_of(const vb_qweight *w)
{
    return (size_t)w->n_out * (size_t)w->n_in * (size_t)w->bits / 8;
}

static size_t sz_bytes_of(const vb_qweight *w)
{
    return (size_t)w->n_out * (size_t)w->n_groups * 2;
}

/* The layout rules of quant_weights.h the kernels rely on for in-bounds
 * reads: a checkpoint that breaks them is refused, not read past. */
static int check_layout(const vb_qweight *h, const char *name, vb_err *err)
{
    if (h->bits != 4 && h->bits != 8)
        return vb_err_set(err, "tensor '%s': %d-bit weights are not supported by the CUDA "
                          "backend (4 or 8)", name, h->bits);
    if (h->n_out <= 0 || h->n_in <= 0 || (h->bits == 4 && h->n_in % 2) || h->n_groups <= 0)
        return vb_err_set(err, "tensor '%s': quantized shape [%d, %d] with %d groups cannot be "
                          "run (positive sizes, an even input size at 4 bits)", name, h->n_out,
                          h->n_in, h->n_groups);
    if (!h->g_idx && (h->group_size <= 0 || (int64_t)h->group_size * h->n_groups != h->n_in))
        return vb_err_set(err, "tensor '%s': %d groups of %d columns do not cover its %d input "
                          "columns", name, h->n_groups, h->group_size, h->n_in);
    for (int j = 0; h->g_idx && j < h->n_in; j++)
        if (h->g_idx[j] < 0 || h->g_idx[j] >= h->n_groups)
            return vb_err_set(err, "tensor '%s': column %d is in group %d, outside its %d "
                              "groups", name, j, h->g_idx[j], h->n_groups);
    for (int j = 0; h->perm && j < h->n_in; j++)
        if (h->perm[j] < 0 || h->perm[j] >= h->n_in)
            return vb_err_set(err, "tensor '%s': act-order permutation entry %d is %d, outside "
                              "[0, %d)", name, j, h->perm[j], h->n_in);
    return 0;
}

static int dev_copy(void **dst, const void *src, size_t bytes, const char *name, vb_err *err)
{
    *dst = NULL;
    if (!src)
        return 0;
    if (cudaMalloc(dst, bytes ? bytes : 1) != cudaSuccess) {
        cudaGetLastError(); /* clear the out-of-memory status */
        *dst = NULL;
        return vb_err_set(err, "tensor '%s': out of GPU memory for %zu bytes of quantized "
                          "weights", name, bytes);
    }
    CUDA_CHECK(cudaMemcpy(*dst, src, bytes, cudaMemcpyHostToDevice));
    return 0;
}

int cuda_qweight_upload(cuda_qweight **out, const vb_qweight *h, const char *name, vb_err *err)
{
    *out = NULL;
    if (check_layout(h, name, err) != 0)
        return -1;
    cuda_qweight *d = calloc(1, sizeof *d);
    if (!d)
        return vb_err_set(err, "tensor '%s': out of host memory", name);
    d->w = *h;
    d->w.q = NULL;
    d->w.scales = d->w.zeros = NULL;
    d->w.perm = d->w.g_idx = NULL;
    size_t q_bytes = q_bytes_of(h), sz_bytes = sz_bytes_of(h);
    size_t col_bytes = (size_t)h->n_in * 4;
    if (dev_copy((void **)&d->w.q, h->q, q_bytes, name, err) ||
        dev_copy((void **)&d->w.scales, h->scales, sz_bytes, name, err) ||
        dev_copy((void **)&d->w.zeros, h->zeros, sz_bytes, name, err) ||
        dev_copy((void **)&d->w.perm, h->perm, col_bytes, name, err) ||
        dev_copy((void **)&d->w.g_idx, h->g_idx, col_bytes, name, err)) {
        cuda_qweight_free(d);
        return -1;
    }
    /* cudaMemcpy from pageable memory may return before its DMA lands,
     * and the backend's stream does not wait for the legacy stream */
    CUDA_CHECK(cudaDeviceSynchronize());
    /* 4-bit words into the GPU kernels' nibble order (kernels.h vb_qmat;
     * kernels/quant_interleave.cu): once, here, before any join moves them */
    if (h->bits == 4 && VB_Q4_INTERLEAVED(h->n_in)) {
        CUDA_CHECK(vb_quant_interleave4(d->w.q, q_bytes, 0));
        CUDA_CHECK(cudaDeviceSynchronize());
    }
    /* and into row blocks where the decode GEMV reads them so (kernels.h
     * vb_qmat), through a second buffer; in row order when that is short */
    const vb_qmat m = cuda_qweight_qmat(d);
    uint8_t *blocks = NULL;
    if (vb_gemv_quant_wants_blocks(&m)) {
        if (cudaMalloc((void **)&blocks, q_bytes) != cudaSuccess) {
            cudaGetLastError(); /* clear the out-of-memory status */
        } else {
            CUDA_CHECK(vb_quant_block_rows(blocks, d->w.q, h->n_out, q_bytes / h->n_out, 1, 0));
            CUDA_CHECK(cudaDeviceSynchronize());
            CUDA_CHECK(cudaFree(d->w.q));
            d->w.q = blocks;
            d->blocked = true;
        }
    }
    d->w.bytes = q_bytes + 2 * sz_bytes + (h->perm ? col_bytes : 0) + (h->g_idx ? col_bytes : 0);
    *out = d;
    return 0;
}

void cuda_qweight_free(cuda_qweight *w)
{
    if (!w)
        return;
    void *p[] = {w->joined ? NULL : w->w.q, w->joined ? NULL : w->w.scales,
                 w->joined ? NULL : w->w.zeros, w->w.perm, w->w.g_idx,
                 w->owns_scratch ? w->scratch : NULL, w->sz_tiles};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        if (p[i])
            CUDA_CHECK(cudaFree(p[i]));
    free(w);
}

vb_qmat cuda_qweight_qmat(const cuda_qweight *w)
{
    const vb_qweight *h = &w->w;
    return (vb_qmat){h->q,    h->scales, h->zeros, h->perm,       h->g_idx,
                     h->bits, h->n_out,  h->n_in,  h->group_size, h->n_groups,
                     w->sz_tiles_rows == h->n_out ? w->sz_tiles : NULL, w->blocked};
}

size_t cuda_qweight_scratch_elems(int n_out, int n_in)
{
    size_t m = (size_t)n_out * (size_t)n_in, x = (size_t)VB_QGEMV_MAX_ROWS * (size_t)n_in;
    return m > x ? m : x;
}

uint64_t cuda_qweight_plan_bytes(const vb_quant_config *q, const tensor_spec *s)
{
    uint64_t out = (uint64_t)(s->split == SPLIT_ROWS ? s->count : s->rows);
    uint64_t in = (uint64_t)(s->split == SPLIT_COLS ? s->count : s->cols);
    return memory_plan_qlinear_bytes(q, out, in, (uint64_t)s->cols);
}

static cuda_qweight **projections(layer_weights *L, cuda_qweight **p[7])
{
    p[0] = (cuda_qweight **)&L->q;
    p[1] = (cuda_qweight **)&L->k;
    p[2] = (cuda_qweight **)&L->v;
    p[3] = (cuda_qweight **)&L->o;
    p[4] = (cuda_qweight **)&L->gate;
    p[5] = (cuda_qweight **)&L->up;
    p[6] = (cuda_qweight **)&L->down;
    return p[0];
}

int cuda_qweights_attach_scratch(model_weights *dev, const model_config *c, vb_err *err)
{
    size_t elems = 0;
    cuda_qweight **p[7];
    for (int l = 0; l < c->n_layers; l++) {
        projections(&dev->layers[l], p);
        for (int i = 0; i < 7; i++)
            if (*p[i]) {
                size_t e = cuda_qweight_scratch_elems((*p[i])->w.n_out, (*p[i])->w.n_in);
                elems = e > elems ? e : elems;
            }
    }
    if (elems == 0)
        return 0;
    uint16_t *scratch = NULL;
    if (cudaMalloc((void **)&scratch, elems * 2) != cudaSuccess) {
        cudaGetLastError();
        return vb_err_set(err, "out of GPU memory for the quantized projections' %.1f MiB "
                          "dequantization buffer", (double)elems * 2 / (1 << 20));
    }
    bool owner = true;
    for (int l = 0; l < c->n_layers; l++) {
        projections(&dev->layers[l], p);
        for (int i = 0; i < 7; i++)
            if (*p[i]) {
                (*p[i])->scratch = scratch;
                (*p[i])->scratch_elems = elems;
                (*p[i])->owns_scratch = owner;
                owner = false;
            }
    }
    dev->bytes += (uint64_t)elems * 2;
    return 0;
}

static bool same_layout(const vb_qweight *a, const vb_qweight *b)
{
    return a->bits == b->bits && a->n_in == b->n_in && a->group_size == b->group_size &&
           a->n_groups == b->n_groups && !a->perm && !b->perm && !a->g_idx && !b->g_idx;
}

bool cuda_qweights_adjacent(const cuda_qweight *const w[], int n)
{
    for (int i = 1; i < n; i++) {
        const vb_qweight *a = &w[i - 1]->w, *b = &w[i]->w;
        if (!w[i]->joined || !same_layout(a, b) || w[i]->blocked != w[0]->blocked ||
            b->q != a->q + q_bytes_of(a) ||
            (const uint8_t *)b->scales != (const uint8_t *)a->scales + sz_bytes_of(a) ||
            (const uint8_t *)b->zeros != (const uint8_t *)a->zeros + sz_bytes_of(a))
            return false;
    }
    return n > 0;
}

/* One array of the group: a new allocation holding each member's piece
 * (at member i's offset), or NULL (nothing changed) when out of memory. */
static uint8_t *join_array(cuda_qweight *const w[], int n, size_t (*bytes)(const vb_qweight *),
                           int which)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += bytes(&w[i]->w);
    uint8_t *dst = NULL;
    if (cudaMalloc((void **)&dst, total) != cudaSuccess) {
        cudaGetLastError(); /* clear the out-of-memory status */
        return NULL;
    }
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        const vb_qweight *m = &w[i]->w;
        const void *src = which == 0 ? (const void *)m->q
                          : which == 1 ? (const void *)m->scales
                                       : (const void *)m->zeros;
        CUDA_CHECK(cudaMemcpy(dst + at, src, bytes(m), cudaMemcpyDeviceToDevice));
        at += bytes(m);
    }
    return dst;
}

/* Joins w[0..n) when they share a layout (see the header). */
static void join_group(cuda_qweight *const w[], int n)
{
    for (int i = 0; i < n; i++)
        if (!w[i] || w[i]->joined || !same_layout(&w[0]->w, &w[i]->w) ||
            w[i]->blocked != w[0]->blocked)
            return; /* (row blocks join as rows do: whole blocks of 8) */
    uint8_t *arr[3];
    for (int k = 0; k < 3; k++) {
        arr[k] = join_array(w, n, k == 0 ? q_bytes_of : sz_bytes_of, k);
        if (!arr[k]) {
            for (int j = 0; j < k; j++)
                CUDA_CHECK(cudaFree(arr[j]));
            return;
        }
    }
    size_t at[3] = {0, 0, 0};
    for (int i = 0; i < n; i++) {
        vb_qweight *m = &w[i]->w;
        size_t qb = q_bytes_of(m), sb = sz_bytes_of(m);
        CUDA_CHECK(cudaFree(m->q)); /* its own arrays until now */
        CUDA_CHECK(cudaFree(m->scales));
        CUDA_CHECK(cudaFree(m->zeros));
        m->q = arr[0] + at[0];
        m->scales = (uint16_t *)(arr[1] + at[1]);
        m->zeros = (uint16_t *)(arr[2] + at[2]);
        w[i]->joined = i > 0; /* the first frees the joined arrays */
        at[0] += qb;
        at[1] += sb;
        at[2] += sb;
    }
}

void cuda_qweights_join_layers(model_weights *dev, const model_config *c)
{
    for (int l = 0; l < c->n_layers; l++) {
        layer_weights *L = &dev->layers[l];
        cuda_qweight *qkv[3] = {L->q, L->k, L->v}, *gate_up[2] = {L->gate, L->up};
        join_group(qkv, 3);
        join_group(gate_up, 2);
    }
}

/* Tiles the scales and zeros of w[0..n) (one matrix, or a joined group:
 * their rows one after another) for the GEMV into w[0]; nothing where the
 * layout has none or the memory is short. Returns the bytes taken. */
static uint64_t tile_group(cuda_qweight *const w[], int n)
{
    if (!w[0] || (n > 1 && !cuda_qweights_adjacent((const cuda_qweight *const *)w, n)))
        return 0;
    vb_qmat m = cuda_qweight_qmat(w[0]);
    m.n_out = 0;
    for (int i = 0; i < n; i++)
        m.n_out += w[i]->w.n_out;
    const size_t bytes = vb_qgemv_sz_tiles_bytes(&m);
    void *dst = NULL;
    if (!bytes || cudaMalloc(&dst, bytes) != cudaSuccess) {
        cudaGetLastError(); /* clear the out-of-memory status */
        return 0;
    }
    CUDA_CHECK(vb_qgemv_make_sz_tiles(dst, &m, 0));
    CUDA_CHECK(cudaDeviceSynchronize());
    w[0]->sz_tiles = dst;
    w[0]->sz_tiles_rows = m.n_out;
    return bytes;
}

void cuda_qweights_tile_scales(model_weights *dev, const model_config *c)
{
    for (int l = 0; l < c->n_layers; l++) {
        layer_weights *L = &dev->layers[l];
        cuda_qweight *qkv[3] = {L->q, L->k, L->v}, *gate_up[2] = {L->gate, L->up};
        cuda_qweight *o[1] = {L->o}, *down[1] = {L->down};
        uint64_t b = tile_group(qkv, 3);
        if (!b) /* not joined: each alone */
            for (int i = 0; i < 3; i++)
                b += tile_group(&qkv[i], 1);
        uint64_t gu = tile_group(gate_up, 2);
        if (!gu)
            gu = tile_group(&gate_up[0], 1) + tile_group(&gate_up[1], 1);
        b += gu;
        b += tile_group(o, 1) + tile_group(down, 1);
        dev->bytes += b;
    }
}

/* Host weights -> fp16 device weights.
 *
 * fp16 host weights (model_load_host(..., VB_W_F16): half the host memory,
 * converted and range-counted while reading) are copied as they are. fp32
 * ones go through a device fp32 staging buffer and kernels/convert.cu, whose
 * clamping rule and count are the host's vb_float_to_half_clamped.
 *
 * A quantized model's projections (host vb_qweight, from model_load_cpu)
 * are copied in their packed layout (cuda_qweight.h), with the shared
 * dequantization scratch made here too, so dev->bytes counts both.
 *
 * generate streams weights from the safetensors mmap instead
 * (weights_stream.c, no host copy); this path serves callers that already
 * hold host weights, and the tests use it as the reference the stream is
 * compared with. */
#include <cuda_runtime_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cuda/backend_cuda.h"
#include "cuda/cuda_check.h"
#include "cuda/cuda_qweight.h"
#include "kernels.h"

typedef struct upload {
    float *staging;            /* device, fp32 */
    size_t staging_elems;
    unsigned long long *d_oor; /* device out-of-range counter */
    uint64_t bytes;            /* fp16 bytes uploaded */
} upload;

static int upload_tensor(upload *u, void **dst, const void *src, size_t n, vb_wdtype src_dtype,
                         vb_err *err)
{
    *dst = NULL;
    if (!src)
        return 0;
    if (cudaMalloc(dst, n * 2) != cudaSuccess) {
        cudaGetLastError();
        *dst = NULL;
        return vb_err_set(err, "out of GPU memory for weights (%zu fp16 elements more)", n);
    }
    u->bytes += n * 2;
    if (src_dtype == VB_W_F16) { /* converted (and range-counted) on the host */
        CUDA_CHECK(cudaMemcpy(*dst, src, n * 2, cudaMemcpyHostToDevice));
        return 0;
    }
    if (n > u->staging_elems) {
        if (u->staging)
            CUDA_CHECK(cudaFree(u->staging));
        u->staging = NULL;
        if (cudaMalloc((void **)&u->staging, n * sizeof(float)) != cudaSuccess) {
            cudaGetLastError();
            u->staging_elems = 0;
            return vb_err_set(err, "out of GPU memory staging a %zu-element tensor", n);
        }
        u->staging_elems = n;
    }
    CUDA_CHECK(cudaMemcpy(u->staging, src, n * sizeof(float), cudaMemcpyHostToDevice));
    CUDA_CHECK(vb_convert_to_fp16(u->staging, VB_SRC_F32, *dst, n, u->d_oor, 0));
    return 0;
}

/* The seven projections of a quantized model are vb_qweight structs
 * (model_weights.h), uploaded as they are (cuda_qweight.h): which of them
 * src is (0-6), or -1. */
static int projection_of(const layer_weights *h, const void *src)
{
    const void *p[] = {h->q, h->k, h->v, h->o, h->gate, h->up, h->down};
    for (int i = 0; src && i < 7; i++)
        if (src == p[i])
            return i;
    return -1;
}

static int upload_projection(upload *u, void **dst, const vb_qweight *h, int layer, int which,
                             vb_err *err)
{
    static const char *const names[] = {"self_attn.q_proj", "self_attn.k_proj",
                                        "self_attn.v_proj", "self_attn.o_proj",
                                        "mlp.gate_proj",    "mlp.up_proj",
                                        "mlp.down_proj"};
    char name[96];
    snprintf(name, sizeof name, "model.layers.%d.%s", layer, names[which]);
    cuda_qweight *d = NULL;
    if (cuda_qweight_upload(&d, h, name, err) != 0)
        return -1;
    *dst = d;
    u->bytes += d->w.bytes;
    return 0;
}

int cuda_weights_upload(model_weights *dev, const model_weights *host, const model_config *c,
                        const tp_plan *p, vb_err *err)
{
    size_t H = (size_t)c->hidden_size, hd = (size_t)c->head_dim;
    size_t q_rows = (size_t)p->heads_local * hd, kv_rows = (size_t)p->kv_heads_local * hd;
    size_t inter = (size_t)p->inter_local, vocab = (size_t)p->vocab_local;
    upload u = {0};
    CUDA_CHECK(cudaMalloc((void **)&u.d_oor, sizeof *u.d_oor));
    CUDA_CHECK(cudaMemset(u.d_oor, 0, sizeof *u.d_oor));
    *dev = (model_weights){.dtype = VB_W_F16, .quant = host->quant, .n_layers = c->n_layers};
    dev->layers = calloc((size_t)c->n_layers, sizeof *dev->layers);
    int rc = dev->layers ? 0 : vb_err_set(err, "out of host memory");
    if (!rc)
        rc = upload_tensor(&u, &dev->embed, host->embed, vocab * H, host->dtype, err);
    if (!rc && host->lm_head && host->lm_head != host->embed)
        rc = upload_tensor(&u, &dev->lm_head, host->lm_head, vocab * H, host->dtype, err);
    else
        dev->lm_head = dev->embed;
    if (!rc)
        rc = upload_tensor(&u, &dev->final_norm, host->final_norm, H, host->dtype, err);
    for (int l = 0; !rc && l < c->n_layers; l++) {
        const layer_weights *h = &host->layers[l];
        layer_weights *d = &dev->layers[l];
        struct {
            void **dst;
            const void *src;
            size_t n;
        } t[] = {
            {&d->input_norm, h->input_norm, H}, {&d->q, h->q, q_rows * H},
            {&d->k, h->k, kv_rows * H},         {&d->v, h->v, kv_rows * H},
            {&d->q_bias, h->q_bias, q_rows},    {&d->k_bias, h->k_bias, kv_rows},
            {&d->v_bias, h->v_bias, kv_rows},   {&d->q_norm, h->q_norm, hd},
            {&d->k_norm, h->k_norm, hd},        {&d->o, h->o, H * q_rows},
            {&d->post_norm, h->post_norm, H},   {&d->gate, h->gate, inter * H},
            {&d->up, h->up, inter * H},         {&d->down, h->down, H * inter},
        };
        for (size_t i = 0; !rc && i < sizeof t / sizeof t[0]; i++) {
            int which = host->quant != VB_QUANT_NONE ? projection_of(h, t[i].src) : -1;
            if (which >= 0)
                rc = upload_projection(&u, t[i].dst, t[i].src, l, which, err);
            else
                rc = upload_tensor(&u, t[i].dst, t[i].src, t[i].n, host->dtype, err);
        }
    }
    if (!rc && host->quant != VB_QUANT_NONE) {
        cuda_qweights_join_layers(dev, c);
        rc = cuda_qweights_attach_scratch(dev, c, err);
        if (!rc)
            cuda_qweights_tile_scales(dev, c); /* optional: after what a run needs */
    }
    dev->bytes += u.bytes; /* after the scratch, which attach_scratch counted */
    CUDA_CHECK(cudaDeviceSynchronize());
    unsigned long long oor = 0;
    CUDA_CHECK(cudaMemcpy(&oor, u.d_oor, sizeof oor, cudaMemcpyDeviceToHost));
    dev->out_of_fp16_range = oor + (host->dtype == VB_W_F16 ? host->out_of_fp16_range : 0);
    if (u.staging)
        CUDA_CHECK(cudaFree(u.staging));
    CUDA_CHECK(cudaFree(u.d_oor));
    if (rc)
        cuda_weights_free(dev, c);
    return rc;
}

void cuda_weights_free(model_weights *dev, const model_config *c)
{
    if (dev->lm_head && dev->lm_head != dev->embed)
        CUDA_CHECK(cudaFree(dev->lm_head));
    if (dev->embed)
        CUDA_CHECK(cudaFree(dev->embed));
    if (dev->final_norm)
        CUDA_CHECK(cudaFree(dev->final_norm));
    for (int l = 0; dev->layers && l < c->n_layers; l++) {
        layer_weights *d = &dev->layers[l];
        void *ptrs[] = {d->input_norm, d->q_bias, d->k_bias, d->v_bias, d->q_norm,
                        d->k_norm, d->post_norm};
        for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++)
            if (ptrs[i])
                CUDA_CHECK(cudaFree(ptrs[i]));
        void *proj[] = {d->q, d->k, d->v, d->o, d->gate, d->up, d->down};
        for (size_t i = 0; i < sizeof proj / sizeof proj[0]; i++) {
            if (dev->quant != VB_QUANT_NONE)
                cuda_qweight_free(proj[i]); /* NULL-safe; the scratch with its owner */
            else if (proj[i])
                CUDA_CHECK(cudaFree(proj[i]));
        }
    }
    free(dev->layers);
    *dev = (model_weights){0};
}

/* model_load_host / model_load_cpu: one rank's slices of every tensor,
 * read from the memory-mapped checkpoint and converted (see model_load.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* Whether the checkpoint stores a quantized tensor in place of the float
 * weight `name` ("x.weight": AWQ's and GPTQ's "x.qweight",
 * compressed-tensors' "x.weight_packed"), its name then in found: what a
 * missing weight's message names. */
static bool quantized_beside(const safetensors *st, const char *name, char *found, size_t cap)
{
    static const char *const suffixes[] = {"qweight", "weight_packed"};
    size_t n = strlen(name);
    if (n < 7 || strcmp(name + n - 7, ".weight") != 0 || n + 8 > cap)
        return false;
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        snprintf(found, cap, "%.*s.%s", (int)(n - 7), name, suffixes[i]);
        if (st_find(st, found))
            return true;
    }
    return false;
}

const st_tensor *model_tensor_lookup(const safetensors *st, const tensor_spec *s,
                                     const char *dir, vb_err *err)
{
    /* A quantized projection is read by quant_linear_load into its packed
     * layout (model_load_host in fp32, the CUDA streaming loader), never
     * as a float array: a reader that gets here asked for the wrong thing
     * (model_load_host in fp16). */
    if (s->quant != VB_QUANT_NONE) {
        vb_err_set(err, "%s: tensor '%s' is a quantized projection (%s): the fp16 host loader "
                   "does not read those (model_load_cpu and the CUDA loaders do)", dir, s->name,
                   vb_quant_method_name(s->quant));
        return NULL;
    }
    const st_tensor *t = st_find(st, s->name);
    if (!t) {
        char packed[320];
        if (quantized_beside(st, s->name, packed, sizeof packed))
            vb_err_set(err, "%s: tensor '%s' is missing from the checkpoint, which holds '%s' "
                       "in its place: a quantized checkpoint whose config.json has no "
                       "\"quantization_config\" (an older quantize_config.json is not read)",
                       dir, s->name, packed);
        else
            vb_err_set(err, "%s: tensor '%s' is missing from the checkpoint", dir, s->name);
        return NULL;
    }
    bool vec = s->cols == 1;
    bool ok = vec ? t->ndim == 1 && t->shape[0] == s->rows
                  : t->ndim == 2 && t->shape[0] == s->rows && t->shape[1] == s->cols;
    if (!ok) {
        char have[128] = "[", want[64];
        for (int d = 0; d < t->ndim; d++)
            snprintf(have + strlen(have), sizeof have - strlen(have), "%s%lld", d ? ", " : "",
                     (long long)t->shape[d]);
        strcat(have, "]");
        if (vec)
            snprintf(want, sizeof want, "[%lld]", (long long)s->rows);
        else
            snprintf(want, sizeof want, "[%lld, %lld]", (long long)s->rows, (long long)s->cols);
        vb_err_set(err, "%s: tensor '%s' has shape %s, config.json implies %s",
                   st->files[t->file].path, s->name, have, want);
        return NULL;
    }
    if (t->dtype != ST_F16 && t->dtype != ST_BF16 && t->dtype != ST_F32) {
        vb_err_set(err, "%s: tensor '%s': dtype %s is not supported (F16, BF16, F32)",
                   st->files[t->file].path, s->name, st_dtype_name(t->dtype));
        return NULL;
    }
    return t;
}

int model_check_weights(const model_config *c, int tp, const char *model_dir, vb_err *err)
{
    tp_plan p;
    if (tp_plan_make(&p, c, tp, 0, err) != 0)
        return -1;
    model_weights w = {0};
    int n_max = model_tensor_count(c);
    tensor_spec *specs = calloc((size_t)n_max, sizeof *specs);
    w.layers = calloc((size_t)c->n_layers, sizeof *w.layers);
    safetensors st;
    int rc = -1;
    if (!specs || !w.layers) {
        vb_err_set(err, "%s: out of memory", model_dir);
        goto out;
    }
    if (st_open_dir(&st, model_dir, err) != 0)
        goto out;
    int n = model_tensor_specs(c, &p, &w, specs);
    rc = 0;
    for (int i = 0; i < n && rc == 0; i++)
        if (specs[i].quant != VB_QUANT_NONE
                ? quant_linear_load(NULL, &st, &c->quant, &specs[i], tp, 1, model_dir, NULL,
                                    err) != 0
                : !model_tensor_lookup(&st, &specs[i], model_dir, err))
            rc = -1;
    /* the other ranks' slices of the quantized projections (their full
     * shapes and the other tensors are the same on every rank) */
    for (int rank = 1; rank < tp && rc == 0; rank++) {
        if (tp_plan_make(&p, c, tp, rank, err) != 0) {
            rc = -1;
            break;
        }
        n = model_tensor_specs(c, &p, &w, specs);
        for (int i = 0; i < n && rc == 0; i++)
            if (specs[i].quant != VB_QUANT_NONE &&
                quant_linear_load(NULL, &st, &c->quant, &specs[i], tp, 1, model_dir, NULL,
                                  err) != 0)
                rc = -1;
    }
    st_close(&st);
out:
    free(specs);
    free(w.layers);
    return rc;
}

int model_check_backend(const model_config *c, bool cuda, const char *model_dir, vb_err *err)
{
    /* Both backends run every quantized format (4 and 8 bits, each
     * projection's layout checked again at upload, cuda_qweight.c); what
     * a format or bit width the CUDA kernels lacked would be refused here,
     * before anything starts. */
    if (cuda && c->quant.method != VB_QUANT_NONE && c->quant.bits != 4 && c->quant.bits != 8)
        return vb_err_set(err, "%s: %d-bit quantized weights (%s) are not supported by the CUDA "
                          "backend (4 or 8 bits); run it with --device cpu", model_dir,
                          c->quant.bits, vb_quant_method_name(c->quant.method));
    return 0;
}

int model_load_host(model_weights *w, const model_config *c, const tp_plan *p,
                    const char *model_dir, vb_wdtype dtype, int threads, vb_err *err)
{
    double t0 = now_seconds();
    memset(w, 0, sizeof *w);
    w->dtype = dtype;
    w->quant = c->quant.method;
    size_t es = dtype == VB_W_F32 ? 4 : 2;
    int n_max = model_tensor_count(c);
    tensor_spec *specs = calloc((size_t)n_max, sizeof *specs);
    w->layers = calloc((size_t)c->n_layers, sizeof *w->layers);
    w->n_layers = c->n_layers;
    if (!specs || !w->layers) {
        free(specs);
        free(w->layers);
        w->layers = NULL;
        return vb_err_set(err, "%s: out of memory", model_dir);
    }
    safetensors st;
    if (st_open_dir(&st, model_dir, err) != 0) {
        free(specs);
        model_weights_free(w);
        return -1;
    }
    int n = model_tensor_specs(c, p, w, specs), rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const tensor_spec *s = &specs[i];
        if (s->quant != VB_QUANT_NONE && dtype == VB_W_F32) {
            vb_qweight *q = NULL;
            uint64_t oor = 0;
            rc = quant_linear_load(&q, &st, &c->quant, s, p->tp, threads, model_dir, &oor, err);
            if (rc)
                break;
            if (oor)
                vb_warn("%s: '%s': %llu scales beyond fp16 range clamped to +-65504", model_dir,
                        s->name, (unsigned long long)oor);
            *s->slot = q;
            w->bytes += q->bytes;
            const st_tensor *f = st_find(&st, s->name); /* --quantize: whole float rows */
            w->bytes_read += c->quant.method == VB_QUANT_INT8 && f
                                 ? (uint64_t)(s->split == SPLIT_ROWS ? s->count : s->rows) *
                                       (uint64_t)s->cols * st_dtype_size(f->dtype)
                                 : q->bytes;
            continue;
        }
        const st_tensor *t = model_tensor_lookup(&st, s, model_dir, err);
        if (!t) {
            rc = -1;
            break;
        }
        int64_t elems = s->split == SPLIT_COLS ? s->rows * s->count : s->count * s->cols;
        void *buf = malloc((size_t)(elems ? elems : 1) * es);
        if (!buf) {
            rc = vb_err_set(err, "%s: tensor '%s': out of memory for %lld values", model_dir,
                            s->name, (long long)elems);
            break;
        }
        *s->slot = buf;
        uint64_t oor = 0;
        rc = s->split == SPLIT_COLS
                 ? st_read_cols(&st, t, s->start, s->count, dtype, buf, &oor, err)
                 : st_read_rows(&st, t, s->split == SPLIT_NONE ? 0 : s->start, s->count, dtype,
                                buf, &oor, err);
        if (oor)
            vb_warn("%s: tensor '%s': %llu values beyond fp16 range clamped to +-65504",
                    st.files[t->file].path, s->name, (unsigned long long)oor);
        w->out_of_fp16_range += oor;
        w->bytes += (uint64_t)elems * es;
        w->bytes_read += (uint64_t)elems * st_dtype_size(t->dtype);
    }
    st_close(&st);
    free(specs);
    if (rc != 0) {
        model_weights_free(w);
        return -1;
    }
    if (c->tie_word_embeddings)
        w->lm_head = w->embed;
    w->load_seconds = now_seconds() - t0;
    vb_info("%s: loaded this rank's %.1f MiB (%.1f MiB read from the checkpoint) in %.2f s, "
            "%.2f GB/s from storage", model_dir, (double)w->bytes / (1u << 20),
            (double)w->bytes_read / (1u << 20), w->load_seconds,
            w->load_seconds > 0 ? (double)w->bytes_read / w->load_seconds / 1e9 : 0.0);
    return 0;
}

int model_load_cpu(model_weights *w, const model_config *c, const tp_plan *p,
                   const char *model_dir, vb_err *err)
{
    return model_load_host(w, c, p, model_dir, VB_W_F32, VB_QUANT_LOAD_THREADS_DEFAULT, err);
}

void model_weights_free(model_weights *w)
{
    if (!w)
        return;
    if (w->lm_head != w->embed)
        free(w->lm_head);
    free(w->embed);
    free(w->final_norm);
    for (int l = 0; w->layers && l < w->n_layers; l++) {
        layer_weights *L = &w->layers[l];
        void *all[] = {L->input_norm, L->q_bias, L->k_bias, L->v_bias, L->q_norm, L->k_norm,
                       L->post_norm};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            free(all[i]);
        void *proj[] = {L->q, L->k, L->v, L->o, L->gate, L->up, L->down};
        for (size_t i = 0; i < sizeof proj / sizeof proj[0]; i++) {
            if (w->quant != VB_QUANT_NONE)
                quant_weight_free(proj[i]);
            else
                free(proj[i]);
        }
    }
    free(w->layers);
    memset(w, 0, sizeof *w);
}

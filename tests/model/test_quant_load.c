/* Quantized checkpoints that must be refused, and the internal layout of
 * one that loads (issue #21).
 *
 * The checkpoints are tests/model/fixtures/quant_broken/ (written by
 * scripts/make-quant-fixtures: a good one, ok_awq, and one defect per
 * folder) and tests/forward/quant_fixtures/awq_g128 for the tensor-parallel
 * split; --quantize int8 against the compressed-tensors checkpoint of the
 * same model (tests/forward/quant_fixtures/int8_at_load_fp16). Every refusal must name the file or tensor (checked by substring);
 * numerical parity of every format lives in tests/forward
 * (forward_parity_quant_*).
 *
 * usage: test_quant_load BROKEN_DIR QUANT_FIXTURES_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu/cpu_backend.h"
#include "forward/forward.h"
#include "harness.h"
#include "model/model_config.h"
#include "model/model_load.h"
#include "model/quant_weights.h"
#include "model/safetensors.h"
#include "model/tp_plan.h"
#include "util/half.h"

static const char *broken, *quant;

static void path_of(char *dir, size_t n, const char *base, const char *name)
{
    snprintf(dir, n, "%s/%s", base, name);
}

/* config.json + tensor headers, as generate checks before anything starts
 * (exit 2 there); then the full load. Returns the first error. */
static int load_all(const char *dir, int tp, vb_err *err)
{
    model_config c;
    tp_plan p;
    model_weights w = {0};
    if (model_config_load(&c, dir, err) || tp_plan_make(&p, &c, tp, 0, err) ||
        model_check_weights(&c, tp, dir, err) || model_load_cpu(&w, &c, &p, dir, err))
        return -1;
    model_weights_free(&w);
    return 0;
}

static void expect_refused(const char *name, const char *want1, const char *want2)
{
    char dir[1024];
    path_of(dir, sizeof dir, broken, name);
    vb_err err = {{0}};
    int rc = load_all(dir, 1, &err);
    CHECK(rc != 0);
    if (rc != 0 && (!strstr(err.msg, want1) || (want2 && !strstr(err.msg, want2)))) {
        fprintf(stderr, "  %s: message lacks '%s'%s%s: %s\n", name, want1, want2 ? " / " : "",
                want2 ? want2 : "", err.msg);
        CHECK(0);
    }
}

static void test_refusals(void)
{
    expect_refused("awq_bad_qweight_shape", "model.layers.0.mlp.up_proj.qweight",
                   "has shape [64, 32], config.json implies [64, 16]");
    expect_refused("awq_missing_scales", "'model.layers.0.self_attn.k_proj.scales' is missing",
                   NULL);
    expect_refused("awq_group_not_dividing", "do not divide into AWQ groups of 48",
                   "model.layers.0.self_attn.q_proj");
    expect_refused("gptq_g_idx_out_of_range", "model.layers.0.self_attn.o_proj.g_idx'[5] = 99",
                   "outside the 2 groups");
    expect_refused("gptq_scales_dtype", "model.layers.0.mlp.down_proj.scales' has dtype I32",
                   NULL);
    expect_refused("ct_missing_zero_point", "model.layers.0.mlp.gate_proj.weight_zero_point",
                   "missing");
    expect_refused("ct_bad_weight_shape", "model.layers.0.self_attn.q_proj.weight_shape' is "
                   "[64, 32]", NULL);
    expect_refused("unknown_method", "quant_method 'bitsandbytes' is not supported",
                   "config.json");
    expect_refused("gptq_3bit", "3-bit gptq weights are not supported", "config.json");
}

/* awq_g128: o_proj has 256 input columns in groups of 128; --tp 4 would
 * give each rank 64. */
static void test_group_split_by_tp(void)
{
    char dir[1024];
    path_of(dir, sizeof dir, quant, "awq_g128");
    model_config c;
    tp_plan p;
    vb_err err = {{0}};
    CHECK(model_config_load(&c, dir, &err) == 0);
    CHECK_INT_EQ(c.quant.method, VB_QUANT_AWQ);
    CHECK_INT_EQ(c.quant.group_size, 128);
    CHECK(tp_plan_make(&p, &c, 2, 1, &err) == 0);
    CHECK(tp_plan_make(&p, &c, 4, 0, &err) != 0);
    CHECK(strstr(err.msg, "--tp 4 splits the awq quantization groups of 128") != NULL);
    CHECK(strstr(err.msg, "o_proj") != NULL);
    CHECK(strstr(err.msg, "keep them whole: 1, 2") != NULL);
    if (!strstr(err.msg, "keep them whole: 1, 2"))
        fprintf(stderr, "  message: %s\n", err.msg);
}

/* The layout of ok_awq (llama, hidden 64, intermediate 128, 4 heads of
 * 16, 2 kv heads, groups of 32) at tp 2, rank 1. */
static void test_layout(void)
{
    char dir[1024];
    path_of(dir, sizeof dir, broken, "ok_awq");
    model_config c;
    tp_plan p;
    model_weights w = {0};
    vb_err err = {{0}};
    if (model_config_load(&c, dir, &err) || tp_plan_make(&p, &c, 2, 1, &err) ||
        model_load_cpu(&w, &c, &p, dir, &err)) {
        fprintf(stderr, "  %s\n", err.msg);
        CHECK(0);
        return;
    }
    CHECK_INT_EQ(w.quant, VB_QUANT_AWQ);
    const vb_qweight *q = w.layers[0].q, *k = w.layers[0].k, *o = w.layers[0].o,
                     *d = w.layers[0].down;
    CHECK_INT_EQ(q->n_out, 32); /* 2 of 4 heads x 16 */
    CHECK_INT_EQ(q->n_in, 64);
    CHECK_INT_EQ(k->n_out, 16);
    CHECK_INT_EQ(o->n_out, 64);
    CHECK_INT_EQ(o->n_in, 32);  /* input split: one group of 32 */
    CHECK_INT_EQ(o->n_groups, 1);
    CHECK_INT_EQ(d->n_in, 64);
    CHECK_INT_EQ(d->n_groups, 2);
    CHECK_INT_EQ(q->bits, 4);
    CHECK_INT_EQ(q->group_size, 32);
    CHECK(q->perm == NULL && q->g_idx == NULL);
    /* zeros are integers in [0, 15], scales positive */
    for (int i = 0; i < q->n_out * q->n_groups; i++) {
        float z = vb_half_to_float(q->zeros[i]);
        CHECK(z >= 0 && z <= 15 && z == (float)(int)z);
        CHECK(vb_half_to_float(q->scales[i]) > 0);
    }
    model_weights_free(&w);
}

/* The CUDA backend runs quantized models (src/cuda/cuda_qweight.h), so
 * model_check_backend lets them through; the fp16 host loader, which
 * reads no quantized projections, and a backend without matmul_quant
 * refuse one with one clear line. */
static void test_backend_refusals(void)
{
    char dir[1024];
    path_of(dir, sizeof dir, broken, "ok_awq");
    model_config c;
    tp_plan p;
    model_weights w = {0};
    vb_err err = {{0}};
    CHECK(model_config_load(&c, dir, &err) == 0 && tp_plan_make(&p, &c, 1, 0, &err) == 0);
    CHECK(model_check_backend(&c, false, dir, &err) == 0);
    CHECK(model_check_backend(&c, true, dir, &err) == 0);
    CHECK(model_load_host(&w, &c, &p, dir, VB_W_F16, 1, &err) != 0);
    CHECK(strstr(err.msg, "is a quantized projection (awq)"));

    CHECK(model_load_cpu(&w, &c, &p, dir, &err) == 0);
    vb_backend *b = cpu_backend_create(1, MPI_COMM_NULL, 1);
    b->matmul_quant = NULL; /* as a backend without quantized kernels */
    forward_state f;
    CHECK(forward_init(&f, b, &c, &p, &w, 8, &err) != 0);
    CHECK(strstr(err.msg, "quantized weights (awq) are not supported by the cpu backend yet"));
    b->destroy(b);
    model_weights_free(&w);
}

/* --quantize int8 (quant_int8.c) on int8_at_load_fp16 and _bf16, float
 * models, gives each rank exactly the weights of the model's
 * compressed-tensors W8A16 channel checkpoint made by
 * scripts/make-quantized-checkpoint (w8a16_channel/): the same bytes of q,
 * scales and zeros, at tp 1 and on both ranks of tp 2 (o_proj and
 * down_proj then hold half of each row, with the scale of the whole row). */
static void int8_at_load(const char *name)
{
    char dir[1024], ct[1100];
    path_of(dir, sizeof dir, quant, name);
    snprintf(ct, sizeof ct, "%s/w8a16_channel", dir);
    for (int tp = 1; tp <= 2; tp++)
        for (int rank = 0; rank < tp; rank++) {
            model_config c, cc;
            tp_plan p, pc;
            model_weights w = {0}, wc = {0};
            vb_err err = {{0}};
            if (model_config_load(&c, dir, &err) ||
                quant_config_quantize(&c.quant, VB_QUANTIZE_INT8, dir, &err) ||
                tp_plan_make(&p, &c, tp, rank, &err) || model_load_cpu(&w, &c, &p, dir, &err) ||
                model_config_load(&cc, ct, &err) || tp_plan_make(&pc, &cc, tp, rank, &err) ||
                model_load_cpu(&wc, &cc, &pc, ct, &err)) {
                fprintf(stderr, "  %s\n", err.msg);
                CHECK(0);
                return;
            }
            CHECK_INT_EQ(w.quant, VB_QUANT_INT8);
            CHECK_INT_EQ(wc.quant, VB_QUANT_CT);
            for (int l = 0; l < c.n_layers; l++) {
                layer_weights *a = &w.layers[l], *b = &wc.layers[l];
                const vb_qweight *qa[] = {a->q, a->k, a->v, a->o, a->gate, a->up, a->down};
                const vb_qweight *qb[] = {b->q, b->k, b->v, b->o, b->gate, b->up, b->down};
                for (int i = 0; i < 7; i++) {
                    const vb_qweight *x = qa[i], *y = qb[i];
                    CHECK(x->bits == 8 && y->bits == 8 && x->n_out == y->n_out &&
                          x->n_in == y->n_in && x->n_groups == 1 && y->n_groups == 1 &&
                          x->group_size == y->group_size && !x->perm && !x->g_idx);
                    size_t n = (size_t)x->n_out * (size_t)x->n_in;
                    CHECK(memcmp(x->q, y->q, n) == 0);
                    CHECK(memcmp(x->scales, y->scales, sizeof(uint16_t) * (size_t)x->n_out) == 0);
                    CHECK(memcmp(x->zeros, y->zeros, sizeof(uint16_t) * (size_t)x->n_out) == 0);
                }
            }
            model_weights_free(&w);
            model_weights_free(&wc);
        }
}

static void test_int8_at_load(void)
{
    int8_at_load("int8_at_load_fp16");
    int8_at_load("int8_at_load_bf16");
}

/* Two vb_qweights hold the same bytes (shape, layout, values, scales,
 * zeros, act order). */
static bool same_qweight(const vb_qweight *x, const vb_qweight *y)
{
    if (x->bits != y->bits || x->n_out != y->n_out || x->n_in != y->n_in ||
        x->group_size != y->group_size || x->n_groups != y->n_groups || !x->perm != !y->perm ||
        !x->g_idx != !y->g_idx || x->bytes != y->bytes)
        return false;
    size_t nq = (size_t)x->n_out * (size_t)x->n_in * (size_t)x->bits / 8;
    size_t ns = sizeof(uint16_t) * (size_t)x->n_out * (size_t)x->n_groups;
    size_t ni = sizeof(int32_t) * (size_t)x->n_in;
    return memcmp(x->q, y->q, nq) == 0 && memcmp(x->scales, y->scales, ns) == 0 &&
           memcmp(x->zeros, y->zeros, ns) == 0 && (!x->perm || !memcmp(x->perm, y->perm, ni)) &&
           (!x->g_idx || !memcmp(x->g_idx, y->g_idx, ni));
}

/* A checkpoint decoded on 1 thread and on 3 (quant_rows.c: rows in
 * chunks of 8 at these sizes, so many chunks a projection, taken in
 * whatever order the threads get to them) gives the same bytes, every
 * format, at tp 1 and on both ranks of tp 2 (slices that start inside
 * the tensor). That the bytes are right is forward_parity_quant_*'s. */
static void threads_same(const char *name, bool quantize)
{
    char dir[1024];
    path_of(dir, sizeof dir, quant, name);
    for (int tp = 1; tp <= 2; tp++)
        for (int rank = 0; rank < tp; rank++) {
            model_config c;
            tp_plan p;
            model_weights w1 = {0}, w3 = {0};
            vb_err err = {{0}};
            if (model_config_load(&c, dir, &err) ||
                (quantize && quant_config_quantize(&c.quant, VB_QUANTIZE_INT8, dir, &err)) ||
                tp_plan_make(&p, &c, tp, rank, &err) ||
                model_load_host(&w1, &c, &p, dir, VB_W_F32, 1, &err) ||
                model_load_host(&w3, &c, &p, dir, VB_W_F32, 3, &err)) {
                fprintf(stderr, "  %s tp %d rank %d: %s\n", name, tp, rank, err.msg);
                CHECK(0);
                model_weights_free(&w1);
                return;
            }
            CHECK(w1.quant != VB_QUANT_NONE);
            int differ = 0;
            for (int l = 0; l < c.n_layers; l++) {
                layer_weights *a = &w1.layers[l], *b = &w3.layers[l];
                const vb_qweight *qa[] = {a->q, a->k, a->v, a->o, a->gate, a->up, a->down};
                const vb_qweight *qb[] = {b->q, b->k, b->v, b->o, b->gate, b->up, b->down};
                for (int i = 0; i < 7; i++)
                    differ += !same_qweight(qa[i], qb[i]);
            }
            if (differ)
                fprintf(stderr, "  %s tp %d rank %d: %d projections differ\n", name, tp, rank,
                        differ);
            CHECK_INT_EQ(differ, 0);
            model_weights_free(&w1);
            model_weights_free(&w3);
        }
}

/* A fixture checkpoint opened for quant_linear_load at tp 1: its config,
 * its files and the tensor list (whose slots point into w). */
typedef struct quant_ckpt {
    char dir[1024];
    model_config c;
    model_weights w;
    safetensors st;
    tensor_spec *specs;
    int n;
} quant_ckpt;

static bool ckpt_open(quant_ckpt *k, const char *name)
{
    memset(k, 0, sizeof *k);
    path_of(k->dir, sizeof k->dir, quant, name);
    tp_plan p;
    vb_err err = {{0}};
    if (model_config_load(&k->c, k->dir, &err) || tp_plan_make(&p, &k->c, 1, 0, &err) ||
        st_open_dir(&k->st, k->dir, &err)) {
        fprintf(stderr, "  %s: %s\n", name, err.msg);
        CHECK(0);
        return false;
    }
    k->specs = calloc((size_t)model_tensor_count(&k->c), sizeof *k->specs);
    k->w.layers = calloc((size_t)k->c.n_layers, sizeof *k->w.layers);
    k->w.n_layers = k->c.n_layers;
    k->n = k->specs && k->w.layers ? model_tensor_specs(&k->c, &p, &k->w, k->specs) : 0;
    return true;
}

static void ckpt_close(quant_ckpt *k)
{
    free(k->specs);
    model_weights_free(&k->w);
    st_close(&k->st);
}

/* Loads projection s whole and the part of it `part` names, both on
 * `threads` threads; false (the error reported, nothing kept) if either
 * fails. */
static bool load_whole_and_part(quant_ckpt *k, const char *name, const tensor_spec *s,
                                const tensor_spec *part, int threads, vb_qweight **whole,
                                vb_qweight **slice)
{
    vb_err err = {{0}};
    *whole = *slice = NULL;
    if (quant_linear_load(whole, &k->st, &k->c.quant, s, 1, threads, k->dir, NULL, &err) ||
        quant_linear_load(slice, &k->st, &k->c.quant, part, 1, threads, k->dir, NULL, &err)) {
        fprintf(stderr, "  %s %s: %s\n", name, s->name, err.msg);
        quant_weight_free(*whole);
        *whole = NULL;
        return false;
    }
    return true;
}

/* Any run of output rows, wherever it starts (row 3: not on an AWQ word
 * of 8 columns, nor a GPTQ / compressed-tensors zero word), decodes to
 * those rows of the whole tensor: the readers' slicing and their
 * word-at-a-time fast paths agree with each other. Every projection of
 * each checkpoint's first layer, 1 and 3 threads. */
static void row_slices(const char *name)
{
    quant_ckpt k;
    if (!ckpt_open(&k, name))
        return;
    int checked = 0;
    for (int i = 0; i < k.n; i++) {
        const tensor_spec *s = &k.specs[i];
        if (s->quant == VB_QUANT_NONE || strncmp(s->name, "model.layers.0.", 15) != 0)
            continue;
        for (int threads = 1; threads <= 3; threads += 2) {
            tensor_spec part = *s;
            part.split = SPLIT_ROWS;
            part.start = 3;
            part.count = s->rows - 5;
            vb_qweight *whole, *slice;
            if (!load_whole_and_part(&k, name, s, &part, threads, &whole, &slice)) {
                CHECK(0);
                continue;
            }
            size_t row = (size_t)whole->n_in * (size_t)whole->bits / 8;
            size_t sz = sizeof(uint16_t) * (size_t)whole->n_groups;
            bool same = slice->n_out == part.count && slice->n_in == whole->n_in &&
                        slice->n_groups == whole->n_groups &&
                        !memcmp(slice->q, whole->q + 3 * row, row * (size_t)part.count) &&
                        !memcmp(slice->scales, whole->scales + 3 * whole->n_groups,
                                sz * (size_t)part.count) &&
                        !memcmp(slice->zeros, whole->zeros + 3 * whole->n_groups,
                                sz * (size_t)part.count);
            if (!same)
                fprintf(stderr, "  %s %s rows [3, %lld), %d threads: not the whole tensor's\n",
                        name, s->name, (long long)(3 + part.count), threads);
            CHECK(same);
            checked++;
            quant_weight_free(whole);
            quant_weight_free(slice);
        }
    }
    CHECK_INT_EQ(checked, 14); /* 7 projections x 2 thread counts */
    ckpt_close(&k);
}

/* The same for a run of input columns that starts inside a word (column
 * 2), which act order allows (groups are not cut along the columns):
 * each slice column dequantizes to the whole tensor's value for that
 * checkpoint column, every output row. */
static void col_slices(const char *name)
{
    quant_ckpt k;
    if (!ckpt_open(&k, name))
        return;
    int checked = 0;
    for (int i = 0; i < k.n; i++) {
        const tensor_spec *s = &k.specs[i];
        if (s->quant == VB_QUANT_NONE || strncmp(s->name, "model.layers.0.", 15) != 0)
            continue;
        tensor_spec part = *s;
        part.split = SPLIT_COLS;
        part.start = 2;
        part.count = s->cols - 6;
        vb_qweight *whole, *slice;
        if (!load_whole_and_part(&k, name, s, &part, 3, &whole, &slice)) {
            CHECK(0);
            continue;
        }
        int rows = whole->n_out, wi = whole->n_in, si = slice->n_in;
        float *vw = malloc(sizeof(float) * (size_t)rows * (size_t)wi);
        float *vs = malloc(sizeof(float) * (size_t)rows * (size_t)si);
        int differ = -1;
        if (vw && vs && si == part.count) {
            quant_dequant_rows(whole, 0, rows, vw);
            quant_dequant_rows(slice, 0, rows, vs);
            differ = 0;
            /* internal column j is checkpoint column perm[j] (or j) */
            for (int o = 0; o < rows; o++)
                for (int j = 0; j < si; j++) {
                    int col = 2 + (slice->perm ? slice->perm[j] : j);
                    int jw = 0;
                    while (jw < wi && (whole->perm ? whole->perm[jw] : jw) != col)
                        jw++;
                    differ += jw == wi || vs[(size_t)o * si + j] != vw[(size_t)o * wi + jw];
                }
        }
        if (differ)
            fprintf(stderr, "  %s %s columns [2, %lld): %d values differ\n", name, s->name,
                    (long long)(2 + part.count), differ);
        CHECK_INT_EQ(differ, 0);
        checked++;
        free(vw);
        free(vs);
        quant_weight_free(whole);
        quant_weight_free(slice);
    }
    CHECK_INT_EQ(checked, 7);
    ckpt_close(&k);
}

static void test_row_slices(void)
{
    row_slices("awq_g32");
    row_slices("gptq4_g128_sym");
    row_slices("gptq8_g32_actorder_sym");
    row_slices("ct_w4a16_g64_asym");
    col_slices("gptq8_g32_actorder_sym");
    col_slices("gptq4_g64_actorder_asym");
    col_slices("ct_w4a16_g32_actorder_sym");
}

/* AWQ scales stored in fp32 beyond fp16's range are clamped to +-65504
 * and counted for the loader's warning, on 1 thread and on 3 (each thread
 * counts apart and quant_for_rows sums them: test_quant_rows holds the
 * threads so that all take part). A 64 x 32 projection, one group,
 * written here byte by byte. */
static void test_scale_clamp_counted(void)
{
    enum { OUT = 64, IN = 32 };
    char dir[] = "/tmp/vb_test_qclamp_XXXXXX", path[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    const char *name = "model.layers.0.mlp.gate_proj";
    char header[512];
    size_t qw = (size_t)IN * OUT / 8 * 4, qz = OUT / 8 * 4, sc = OUT * 4;
    snprintf(header, sizeof header,
             "{\"%s.qweight\":{\"dtype\":\"I32\",\"shape\":[%d,%d],\"data_offsets\":[0,%zu]},"
             "\"%s.qzeros\":{\"dtype\":\"I32\",\"shape\":[1,%d],\"data_offsets\":[%zu,%zu]},"
             "\"%s.scales\":{\"dtype\":\"F32\",\"shape\":[1,%d],\"data_offsets\":[%zu,%zu]}}",
             name, IN, OUT / 8, qw, name, OUT / 8, qw, qw + qz, name, OUT, qw + qz,
             qw + qz + sc);
    uint8_t data[IN * OUT / 2 + OUT / 2 + OUT * 4];
    memset(data, 0x35, qw + qz); /* any nibbles */
    float scales[OUT];
    for (int o = 0; o < OUT; o++)
        scales[o] = 0.01f * (float)(o + 1);
    scales[0] = 1e5f;    /* the first chunk */
    scales[17] = -7e4f;
    scales[40] = 65504.0f; /* in range: not counted */
    scales[41] = 65520.0f; /* rounds to infinity in fp16: counted */
    scales[63] = -1e9f;  /* the last chunk */
    memcpy(data + qw + qz, scales, sizeof scales);
    FILE *f = fopen(path, "wb");
    uint64_t len = strlen(header);
    CHECK(f && fwrite(&len, 8, 1, f) == 1 && fwrite(header, len, 1, f) == 1 &&
          fwrite(data, sizeof data, 1, f) == 1);
    if (f)
        fclose(f);
    safetensors st;
    vb_err err = {{0}};
    if (st_open_file(&st, path, &err) != 0) {
        fprintf(stderr, "  %s\n", err.msg);
        CHECK(0);
        return;
    }
    vb_quant_config qc = {.method = VB_QUANT_AWQ, .bits = 4, .group_size = IN};
    tensor_spec s = {.rows = OUT, .cols = IN, .split = SPLIT_NONE, .quant = VB_QUANT_AWQ};
    snprintf(s.name, sizeof s.name, "%s.weight", name);
    for (int threads = 1; threads <= 3; threads += 2) {
        vb_qweight *w = NULL;
        uint64_t oor = 0;
        CHECK_INT_EQ(quant_linear_load(&w, &st, &qc, &s, 1, threads, dir, &oor, &err), 0);
        CHECK_INT_EQ(oor, 4);
        if (w) {
            CHECK_INT_EQ(w->scales[0], 0x7bff);
            CHECK_INT_EQ(w->scales[17], 0xfbff);
            CHECK_INT_EQ(w->scales[40], 0x7bff);
            CHECK_INT_EQ(w->scales[63], 0xfbff);
        }
        quant_weight_free(w);
    }
    st_close(&st);
    unlink(path);
    rmdir(dir);
}

static void test_threads_same(void)
{
    static const char *const ckpts[] = {
        "awq_g128",          "awq_g32",          "gptq4_g64_actorder_asym",   "gptq4_g128_sym",
        "gptq8_g32_actorder_sym", "ct_w4a16_g32_actorder_sym", "ct_w4a16_g32_sym",
        "ct_w4a16_g64_asym", "ct_w8a16_channel_sym",
    };
    for (size_t i = 0; i < sizeof ckpts / sizeof ckpts[0]; i++)
        threads_same(ckpts[i], false);
    threads_same("int8_at_load_fp16", true);
}

/* --quantize int8 refuses a checkpoint that is already quantized; the
 * CUDA backend takes it like quantized checkpoints. */
static void test_int8_refusals(void)
{
    char dir[1024], awq[1024];
    path_of(dir, sizeof dir, quant, "int8_at_load_fp16");
    path_of(awq, sizeof awq, broken, "ok_awq");
    model_config c;
    tp_plan p;
    model_weights w = {0};
    vb_err err = {{0}};
    vb_quantize qz = VB_QUANTIZE_NONE;
    CHECK(vb_quantize_parse("int8", &qz) == 0 && qz == VB_QUANTIZE_INT8);
    CHECK(vb_quantize_parse("int4", &qz) != 0);
    CHECK(model_config_load(&c, awq, &err) == 0);
    CHECK(quant_config_quantize(&c.quant, VB_QUANTIZE_INT8, awq, &err) != 0);
    CHECK(strstr(err.msg, "--quantize int8: the checkpoint is already quantized") != NULL);
    CHECK(strstr(err.msg, "awq 4-bit); drop --quantize") != NULL);
    CHECK(model_config_load(&c, dir, &err) == 0);
    CHECK(quant_config_quantize(&c.quant, VB_QUANTIZE_NONE, dir, &err) == 0);
    CHECK_INT_EQ(c.quant.method, VB_QUANT_NONE);
    CHECK(quant_config_quantize(&c.quant, VB_QUANTIZE_INT8, dir, &err) == 0);
    CHECK(tp_plan_make(&p, &c, 1, 0, &err) == 0);
    CHECK(model_check_weights(&c, 1, dir, &err) == 0);
    CHECK(model_check_backend(&c, false, dir, &err) == 0);
    CHECK(model_check_backend(&c, true, dir, &err) == 0);
    CHECK(model_load_host(&w, &c, &p, dir, VB_W_F16, 1, &err) != 0);
    CHECK(strstr(err.msg, "is a quantized projection") != NULL);
}

/* config.json's quantization_config, as the publishers' tools write it:
 * parsed fields, or the refusal's words. */
static int parse_qc(const char *qc, model_config *c, vb_err *err)
{
    char dir[] = "/tmp/vb_quant_cfg_XXXXXX", path[64];
    if (!mkdtemp(dir))
        return vb_err_set(err, "mkdtemp failed");
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"model_type\": \"llama\", \"hidden_size\": 64, \"num_hidden_layers\": 1, "
               "\"num_attention_heads\": 4, \"intermediate_size\": 128, \"vocab_size\": 64, "
               "\"quantization_config\": %s}", qc);
    fclose(f);
    int rc = model_config_load(c, dir, err);
    unlink(path);
    rmdir(dir);
    return rc;
}

static void test_config_variants(void)
{
    model_config c;
    vb_err err = {{0}};
    /* AutoAWQ's older spelling */
    CHECK(parse_qc("{\"quant_method\": \"awq\", \"w_bit\": 4, \"q_group_size\": 64, "
                   "\"version\": \"GEMM\", \"zero_point\": true}", &c, &err) == 0);
    CHECK(c.quant.method == VB_QUANT_AWQ && c.quant.bits == 4 && c.quant.group_size == 64);
    CHECK(parse_qc("{\"quant_method\": \"awq\", \"bits\": 4, \"group_size\": 128, "
                   "\"version\": \"gemv\"}", &c, &err) != 0);
    CHECK(strstr(err.msg, "AWQ version 'gemv' is not supported") != NULL);
    /* GPTQModel's v2 zero points, per-channel groups */
    CHECK(parse_qc("{\"quant_method\": \"gptq\", \"bits\": 8, \"group_size\": -1, "
                   "\"desc_act\": false, \"sym\": false, \"checkpoint_format\": \"gptq_v2\"}",
                   &c, &err) == 0);
    CHECK(c.quant.zero_offset == 0 && c.quant.group_size == -1 && !c.quant.sym);
    CHECK(parse_qc("{\"quant_method\": \"gptq\", \"bits\": 4, \"group_size\": 128}", &c,
                   &err) == 0);
    CHECK(c.quant.zero_offset == 1 && c.quant.sym && !c.quant.desc_act);
    CHECK(parse_qc("{\"quant_method\": \"gptq\", \"bits\": 4, \"group_size\": 128, "
                   "\"checkpoint_format\": \"marlin\"}", &c, &err) != 0);
    CHECK(strstr(err.msg, "checkpoint_format 'marlin'") != NULL);
    CHECK(parse_qc("{\"quant_method\": \"gptq\", \"bits\": 4, \"group_size\": 100}", &c,
                   &err) != 0);
    CHECK(strstr(err.msg, "group_size 100 is not supported") != NULL);
    CHECK(parse_qc("{\"quant_method\": \"gptq\", \"bits\": 4, \"group_size\": 128, "
                   "\"lm_head\": true}", &c, &err) != 0);
    CHECK(strstr(err.msg, "quantized lm_head") != NULL);
    /* compressed-tensors: static act order keeps groups contiguous; activation
     * quantization (W8A8) and other formats are refused */
    const char *ct = "{\"quant_method\": \"compressed-tensors\", \"format\": \"%s\", "
                     "\"config_groups\": {\"g\": {\"targets\": [\"Linear\"], \"weights\": "
                     "{\"num_bits\": 4, \"type\": \"int\", \"symmetric\": true, "
                     "\"strategy\": \"group\", \"group_size\": 32, \"actorder\": %s}, "
                     "\"input_activations\": %s}}, \"ignore\": [\"lm_head\"]}";
    char buf[1024];
    snprintf(buf, sizeof buf, ct, "pack-quantized", "\"static\"", "null");
    CHECK(parse_qc(buf, &c, &err) == 0);
    CHECK(c.quant.method == VB_QUANT_CT && !c.quant.desc_act && c.quant.group_size == 32);
    snprintf(buf, sizeof buf, ct, "pack-quantized", "\"group\"", "null");
    CHECK(parse_qc(buf, &c, &err) == 0 && c.quant.desc_act);
    snprintf(buf, sizeof buf, ct, "pack-quantized", "null",
             "{\"num_bits\": 8, \"type\": \"int\"}");
    CHECK(parse_qc(buf, &c, &err) != 0);
    CHECK(strstr(err.msg, "activation quantization is not supported") != NULL);
    snprintf(buf, sizeof buf, ct, "float-quantized", "null", "null");
    CHECK(parse_qc(buf, &c, &err) != 0);
    CHECK(strstr(err.msg, "format 'float-quantized' is not supported") != NULL);
    CHECK(parse_qc("null", &c, &err) == 0 && c.quant.method == VB_QUANT_NONE);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: test_quant_load BROKEN_DIR QUANT_FIXTURES_DIR\n");
        return 2;
    }
    broken = argv[1];
    quant = argv[2];
    MPI_Init(&argc, &argv);
    RUN_TEST(test_refusals);
    RUN_TEST(test_config_variants);
    RUN_TEST(test_group_split_by_tp);
    RUN_TEST(test_layout);
    RUN_TEST(test_backend_refusals);
    RUN_TEST(test_int8_at_load);
    RUN_TEST(test_threads_same);
    RUN_TEST(test_row_slices);
    RUN_TEST(test_scale_clamp_counted);
    RUN_TEST(test_int8_refusals);
    int rc = test_summary();
    MPI_Finalize();
    return rc;
}

/* cuda_weights_load (the checkpoint streamed to the GPU through staging
 * buffers, src/cuda/weights_stream.c) against the reference path it
 * replaces: model_load_host(VB_W_F16) on the host, then
 * cuda_weights_upload. Tolerance: none; every device tensor must be
 * byte-identical, and the out-of-range counts (total and per rank) equal.
 *
 * Models: the forward fixtures (bf16), the model-loading fixtures (fp16,
 * bf16, fp32, sharded, tied and untied, q/k norms), one written by
 * make_tiny_model (bf16, larger: hidden 128), and two copies of fixtures
 * (fp32 and bf16) with values beyond fp16 range planted in every tensor,
 * so the device's clamping and counting are checked against the host's.
 * Each at tp 1, 2 and 4, every rank (tp_plan for rank r, no MPI), with
 * staging buffers from 6 bytes up, so chunk boundaries fall inside
 * tensors and inside the row pieces of column-split slices (o_proj,
 * down_proj), and with the default buffers once.
 *
 * usage: test_weights_stream FORWARD_FIXTURES MODEL_FIXTURES MAKE_TINY_MODEL */
#include <cuda_runtime_api.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cuda/backend_cuda.h"
#include "cuda/cuda_check.h"
#include "cuda/weights_stream.h"
#include "harness.h"
#include "model/model_config.h"
#include "model/model_load.h"
#include "model/safetensors.h"
#include "model/tp_plan.h"
#include "util/half.h"

static const char *forward_fixtures, *model_fixtures, *make_tiny_model;
static char tmp_dir[256];

/* Reads n fp16 values of a device tensor. */
static uint16_t *read_dev(const void *d, size_t n)
{
    uint16_t *h = malloc(n * 2 + 2);
    CUDA_CHECK(cudaMemcpy(h, d, n * 2, cudaMemcpyDeviceToHost));
    return h;
}

static int64_t local_elems(const tensor_spec *s)
{
    return s->split == SPLIT_COLS ? s->rows * s->count : s->count * s->cols;
}

/* Streams dir's weights for (tp, rank) with the given staging and compares
 * them with the reference ref. Returns the number of differing tensors. */
static int compare_streamed(const char *dir, const model_config *c, const tp_plan *p,
                            const model_weights *ref, const weights_stream_opts *o)
{
    vb_err err = {{0}};
    model_weights dev;
    int rc = o->staging_bytes ? cuda_weights_load_opts(&dev, c, p, dir, o, &err)
                              : cuda_weights_load(&dev, c, p, dir, NULL, &err);
    size_t staging = o->staging_bytes;
    int n_buf = o->n_buffers, threads = o->read_threads;
    if (rc != 0) {
        fprintf(stderr, "  %s tp %d rank %d staging %zu x %d, %d threads: %s\n", dir, p->tp,
                p->rank, staging, n_buf, threads, err.msg);
        CHECK_INT_EQ(rc, 0);
        return 1;
    }
    int n_max = model_tensor_count(c), bad = 0;
    tensor_spec *sr = calloc((size_t)n_max, sizeof *sr), *sd = calloc((size_t)n_max, sizeof *sd);
    model_weights refc = *ref; /* model_tensor_specs wants a non-const struct */
    int n = model_tensor_specs(c, p, &refc, sr);
    model_tensor_specs(c, p, &dev, sd);
    for (int i = 0; i < n; i++) {
        size_t m = (size_t)local_elems(&sr[i]);
        if (!*sd[i].slot) {
            fprintf(stderr, "  %s tp %d rank %d: tensor '%s' was not loaded\n", dir, p->tp,
                    p->rank, sr[i].name);
            bad++;
            continue;
        }
        uint16_t *a = read_dev(*sr[i].slot, m), *b = read_dev(*sd[i].slot, m);
        size_t diff = m;
        for (size_t k = 0; k < m && diff == m; k++)
            if (a[k] != b[k])
                diff = k;
        if (diff < m) {
            fprintf(stderr,
                    "  %s tp %d rank %d staging %zu x %d, %d threads: tensor '%s' (%zu values) "
                    "differs first at index %zu (row %zu, col %zu of the local slice): streamed "
                    "0x%04x (%g), reference 0x%04x (%g)\n",
                    dir, p->tp, p->rank, staging, n_buf, threads, sr[i].name, m, diff,
                    diff / (size_t)(sr[i].split == SPLIT_COLS ? sr[i].count : sr[i].cols),
                    diff % (size_t)(sr[i].split == SPLIT_COLS ? sr[i].count : sr[i].cols),
                    b[diff], vb_half_to_float(b[diff]), a[diff], vb_half_to_float(a[diff]));
            bad++;
        }
        free(a);
        free(b);
    }
    CHECK_INT_EQ(bad, 0);
    CHECK(c->tie_word_embeddings ? dev.lm_head == dev.embed
                                 : dev.lm_head != NULL && dev.lm_head != dev.embed);
    CHECK_INT_EQ(dev.bytes, ref->bytes);
    if (dev.out_of_fp16_range != ref->out_of_fp16_range)
        fprintf(stderr, "  %s tp %d rank %d staging %zu x %d, %d threads: out of fp16 range %llu, "
                "reference %llu\n", dir, p->tp, p->rank, staging, n_buf, threads,
                (unsigned long long)dev.out_of_fp16_range,
                (unsigned long long)ref->out_of_fp16_range);
    CHECK_INT_EQ(dev.out_of_fp16_range, ref->out_of_fp16_range);
    CHECK(dev.bytes_read > 0);
    free(sr);
    free(sd);
    cuda_weights_free(&dev, c);
    return bad;
}

/* Every tp in {1, 2, 4} the model allows, every rank, each setting
 * (staging_bytes 0: cuda_weights_load's defaults). Returns the
 * out-of-range count at tp 1 (for the planted tests). */
static uint64_t check_model(const char *dir, const weights_stream_opts *opts, int n_opts)
{
    vb_err err = {{0}};
    model_config c;
    if (model_config_load(&c, dir, &err) != 0) {
        fprintf(stderr, "  %s\n", err.msg);
        CHECK(0);
        return 0;
    }
    uint64_t oor_tp1 = 0;
    int tps[] = {1, 2, 4};
    for (int ti = 0; ti < 3; ti++) {
        tp_plan p;
        if (tp_plan_make(&p, &c, tps[ti], 0, &err) != 0) {
            fprintf(stderr, "  (%s: tp %d not possible: %s)\n", dir, tps[ti], err.msg);
            CHECK(tps[ti] != 1);
            continue;
        }
        for (int r = 0; r < tps[ti]; r++) {
            CHECK_INT_EQ(tp_plan_make(&p, &c, tps[ti], r, &err), 0);
            model_weights host, ref;
            if (model_load_host(&host, &c, &p, dir, VB_W_F16, 1, &err) != 0) {
                fprintf(stderr, "  %s: %s\n", dir, err.msg);
                CHECK(0);
                return 0;
            }
            if (cuda_weights_upload(&ref, &host, &c, &p, &err) != 0) {
                fprintf(stderr, "  %s: %s\n", dir, err.msg);
                CHECK(0);
                model_weights_free(&host);
                return 0;
            }
            ref.bytes = host.bytes; /* what the host path uploads, for the check */
            CHECK_INT_EQ(ref.out_of_fp16_range, host.out_of_fp16_range);
            if (tps[ti] == 1)
                oor_tp1 = host.out_of_fp16_range;
            model_weights_free(&host);
            for (int k = 0; k < n_opts; k++)
                compare_streamed(dir, &c, &p, &ref, &opts[k]);
            cuda_weights_free(&ref, &c);
        }
    }
    return oor_tp1;
}

/* {staging bytes, buffers, reading threads, least bytes per thread} */
static const weights_stream_opts small_opts[] = {
    {6, 2, 1, 0}, {100, 3, 3, 1}, {4092, 2, 4, 64}, {0, 0, 0, 0},
};
#define N_SMALL (int)(sizeof small_opts / sizeof small_opts[0])

static void test_forward_fixtures(void)
{
    const char *names[] = {"qwen2_tied", "qwen2_yarn", "llama_untied", "llama3_rope", "mistral",
                           "qwen3_qknorm"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/%s", forward_fixtures, names[i]);
        check_model(dir, small_opts, N_SMALL);
    }
}

static void test_model_fixtures(void)
{
    const char *names[] = {"qwen2-untied-bf16", "qwen2-untied-bf16-sharded", "qwen2-tied-fp32",
                           "llama-untied-fp16", "llama-tied-bf16", "mistral-untied-bf16",
                           "mistral-tied-fp16", "qwen3-untied-fp32", "qwen3-tied-bf16"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/%s", model_fixtures, names[i]);
        check_model(dir, small_opts, N_SMALL);
    }
}

static void test_tiny_model(void)
{
    char dir[512], cmd[2048];
    snprintf(dir, sizeof dir, "%s/tiny", tmp_dir);
    snprintf(cmd, sizeof cmd, "'%s' '%s' --layers 2 --hidden 128 > '%s/make_tiny_model.log' 2>&1",
             make_tiny_model, dir, tmp_dir);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "  %s failed (%d); see %s/make_tiny_model.log\n", cmd, rc, tmp_dir);
    CHECK_INT_EQ(rc, 0);
    if (rc != 0)
        return;
    const weights_stream_opts o[] = {
        {100, 2, 1, 0}, {1000, 4, 3, 16}, {65536, 2, 4, 4096}, {0, 0, 0, 0},
    };
    check_model(dir, o, 4);
}

static int copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    int ok = a && b;
    char buf[65536];
    size_t k;
    while (ok && (k = fread(buf, 1, sizeof buf, a)) > 0)
        ok = fwrite(buf, 1, k, b) == k;
    if (a)
        fclose(a);
    if (b)
        ok = fclose(b) == 0 && ok;
    return ok ? 0 : -1;
}

/* Copies model_fixtures/NAME (config.json + model.safetensors) to the
 * temporary directory and plants values beyond fp16 range in every
 * tensor: every 5th value set to +-(70000 + k) (and one value of 65519,
 * which rounds to 65504 and must not be counted). Returns the copy's
 * path. */
static const char *planted_copy(const char *name, char *dir, size_t dir_len)
{
    char from[1024], to[1024];
    snprintf(dir, dir_len, "%s/%s-planted", tmp_dir, name);
    if (mkdir(dir, 0755) != 0)
        return NULL;
    const char *files[] = {"config.json", "model.safetensors"};
    for (int i = 0; i < 2; i++) {
        snprintf(from, sizeof from, "%s/%s/%s", model_fixtures, name, files[i]);
        snprintf(to, sizeof to, "%s/%s", dir, files[i]);
        if (copy_file(from, to) != 0)
            return NULL;
    }
    safetensors st;
    vb_err err = {{0}};
    if (st_open_file(&st, to, &err) != 0) {
        fprintf(stderr, "  %s\n", err.msg);
        return NULL;
    }
    FILE *f = fopen(to, "r+b");
    int ok = f != NULL;
    for (int i = 0; ok && i < st.n_tensors; i++) {
        const st_tensor *t = &st.tensors[i];
        size_t es = st_dtype_size(t->dtype);
        int64_t n = t->rows * t->cols;
        for (int64_t k = i % 5; ok && k < n; k += 5) {
            float v = (k % 2 ? -1.0f : 1.0f) * (70000.0f + (float)k);
            if (k == i % 5 && i == 0)
                v = 65519.0f;
            uint8_t bytes[4];
            if (t->dtype == ST_F32) {
                memcpy(bytes, &v, 4);
            } else if (t->dtype == ST_BF16) {
                uint16_t h = vb_float_to_bf16(v);
                memcpy(bytes, &h, 2);
            } else {
                continue; /* fp16 cannot hold such values */
            }
            ok = fseek(f, (long)(st.files[0].data_start + t->begin + (uint64_t)k * es),
                       SEEK_SET) == 0 &&
                 fwrite(bytes, 1, es, f) == es;
        }
    }
    if (f)
        ok = fclose(f) == 0 && ok;
    st_close(&st);
    return ok ? dir : NULL;
}

static void test_out_of_range(void)
{
    const char *names[] = {"qwen2-tied-fp32", "qwen2-untied-bf16", "qwen3-untied-fp32"};
    const weights_stream_opts o[] = {{6, 2, 1, 0}, {100, 3, 3, 1}, {0, 0, 0, 0}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char dir[512];
        const char *d = planted_copy(names[i], dir, sizeof dir);
        if (!d)
            fprintf(stderr, "  cannot make the planted copy of %s in %s\n", names[i], tmp_dir);
        CHECK(d != NULL);
        if (!d)
            continue;
        uint64_t oor = check_model(d, o, 3);
        CHECK(oor > 0); /* the plant worked: the reference path counted them */
    }
}

/* A directory without a checkpoint and a tensor of the wrong shape are
 * refused with the file and tensor named, and nothing left to free. */
static void test_errors(void)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/qwen2-tied-fp32", model_fixtures);
    vb_err err = {{0}};
    model_config c;
    tp_plan p;
    CHECK_INT_EQ(model_config_load(&c, dir, &err), 0);
    CHECK_INT_EQ(tp_plan_make(&p, &c, 1, 0, &err), 0);
    model_weights dev;
    CHECK_INT_EQ(cuda_weights_load(&dev, &c, &p, tmp_dir, NULL, &err), -1);
    CHECK(strstr(err.msg, "model.safetensors") != NULL);
    CHECK(dev.embed == NULL && dev.layers == NULL);
    model_config wrong = c;
    wrong.hidden_size += 1; /* every matrix's shape now disagrees */
    CHECK_INT_EQ(cuda_weights_load(&dev, &wrong, &p, dir, NULL, &err), -1);
    CHECK(strstr(err.msg, "model.embed_tokens.weight") != NULL);
    CHECK(dev.embed == NULL && dev.layers == NULL);
}

int main(int argc, char **argv)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0)
        return test_skip("no CUDA device on this machine");
    if (argc != 4) {
        fprintf(stderr, "usage: test_weights_stream FORWARD_FIXTURES MODEL_FIXTURES "
                        "MAKE_TINY_MODEL\n");
        return 2;
    }
    forward_fixtures = argv[1];
    model_fixtures = argv[2];
    make_tiny_model = argv[3];
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/vb_weights_stream_XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN_TEST(test_forward_fixtures);
    RUN_TEST(test_model_fixtures);
    RUN_TEST(test_tiny_model);
    RUN_TEST(test_out_of_range);
    RUN_TEST(test_errors);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "  could not remove %s\n", tmp_dir);
    return test_summary();
}

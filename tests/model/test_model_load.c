/* Every rank's slices, for tp = 1, 2, 4, against the reference slices that
 * scripts/make-model-fixtures cut with torch indexing from the original
 * Hugging Face tensors (tests/model/fixtures/NAME/ref/tpN_rankR.safetensors,
 * fp32). Tolerance: none, the comparison is bitwise: fp16/bf16 -> fp32 is
 * exact, so the fp32 load must equal the reference bit for bit, and the fp16
 * load must equal the reference rounded with vb_float_to_half.
 *
 * usage: test_model_load FIXTURES_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "model/model_config.h"
#include "model/model_load.h"
#include "model/safetensors.h"
#include "model/tp_plan.h"
#include "util/half.h"

static const char *fixtures;

static const char *models[] = {
    "qwen2-untied-bf16", "qwen2-tied-fp32",   "llama-untied-fp16", "llama-tied-bf16",
    "mistral-untied-bf16", "mistral-tied-fp16", "qwen3-untied-fp32", "qwen3-tied-bf16",
};

/* Compares every slot of w to the matching reference tensor. */
static void compare_rank(const char *model, const char *ref_model, int tp, int rank)
{
    char dir[1024], refp[1200];
    snprintf(dir, sizeof dir, "%s/%s", fixtures, model);
    snprintf(refp, sizeof refp, "%s/%s/ref/tp%d_rank%d.safetensors", fixtures, ref_model, tp, rank);
    vb_err err = {{0}};
    model_config c;
    tp_plan p;
    model_weights w, wh;
    safetensors ref;
    if (model_config_load(&c, dir, &err) != 0 || tp_plan_make(&p, &c, tp, rank, &err) != 0 ||
        st_open_file(&ref, refp, &err) != 0) {
        fprintf(stderr, "  %s\n", err.msg);
        CHECK(0);
        return;
    }
    int rc32 = model_load_cpu(&w, &c, &p, dir, &err);
    if (rc32)
        fprintf(stderr, "  %s\n", err.msg);
    CHECK_INT_EQ(rc32, 0);
    int rc16 = model_load_host(&wh, &c, &p, dir, VB_W_F16, 1, &err);
    CHECK_INT_EQ(rc16, 0);
    if (rc32 || rc16) {
        st_close(&ref);
        return;
    }
    CHECK(c.tie_word_embeddings == (w.lm_head == w.embed));
    int nmax = model_tensor_count(&c);
    tensor_spec *s32 = calloc((size_t)nmax, sizeof *s32), *s16 = calloc((size_t)nmax, sizeof *s16);
    int n = model_tensor_specs(&c, &p, &w, s32);
    model_tensor_specs(&c, &p, &wh, s16);
    /* lm_head is compared too when tied: the reference has it as the
     * embedding's slice, and w.lm_head must equal it. */
    tensor_spec lm = {.name = "lm_head.weight", .slot = &w.lm_head};
    for (int i = 0; i <= n; i++) {
        const tensor_spec *s = i < n ? &s32[i] : &lm;
        if (i == n && !c.tie_word_embeddings)
            break;
        const st_tensor *t = st_find(&ref, s->name);
        if (!t) {
            fprintf(stderr, "  %s: no reference for %s\n", refp, s->name);
            CHECK(0);
            continue;
        }
        int64_t cnt = t->rows * t->cols;
        float *want = malloc((size_t)cnt * 4 + 4);
        CHECK_INT_EQ(st_read_rows(&ref, t, 0, t->rows, VB_W_F32, want, NULL, &err), 0);
        if (memcmp(want, *s->slot, (size_t)cnt * 4) != 0) {
            fprintf(stderr, "  %s tp%d rank%d: %s differs (fp32)\n", model, tp, rank, s->name);
            CHECK(0);
        }
        if (i < n) {
            const uint16_t *h = *s16[i].slot;
            int64_t bad = 0;
            for (int64_t j = 0; j < cnt; j++)
                bad += h[j] != vb_float_to_half(want[j]);
            if (bad) {
                fprintf(stderr, "  %s tp%d rank%d: %s differs (fp16, %lld values)\n", model, tp,
                        rank, s->name, (long long)bad);
                CHECK(0);
            }
        }
        free(want);
    }
    CHECK(w.bytes == 2 * wh.bytes);
    free(s32);
    free(s16);
    model_weights_free(&w);
    model_weights_free(&wh);
    CHECK(w.embed == NULL && w.layers == NULL);
    st_close(&ref);
}

static void test_all_models_all_ranks(void)
{
    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++)
        for (int tp = 1; tp <= 4; tp *= 2)
            for (int r = 0; r < tp; r++)
                compare_rank(models[m], models[m], tp, r);
}

static void test_sharded_equals_single(void)
{
    for (int tp = 1; tp <= 4; tp *= 2)
        for (int r = 0; r < tp; r++)
            compare_rank("qwen2-untied-bf16-sharded", "qwen2-untied-bf16", tp, r);
}

static void test_config_fields(void)
{
    char dir[1024];
    vb_err err;
    model_config c;
    snprintf(dir, sizeof dir, "%s/llama-untied-fp16", fixtures);
    CHECK_INT_EQ(model_config_load(&c, dir, &err), 0);
    CHECK_INT_EQ(c.arch, VB_ARCH_LLAMA);
    CHECK_INT_EQ(c.rope_scaling.type, VB_ROPE_LLAMA3);
    CHECK_NEAR(c.rope_scaling.factor, 8.0, 0);
    CHECK_NEAR(c.rope_scaling.original_max_position_embeddings, 64, 0);
    CHECK_NEAR(c.rope_theta, 10000.0, 0);
    CHECK(!c.attention_bias && !c.qk_norm && !c.tie_word_embeddings);
    CHECK_INT_EQ(c.vocab_size, 98);
    CHECK_INT_EQ(c.n_kv_heads, 2);
    CHECK_STR_EQ(c.torch_dtype, "float16");
    snprintf(dir, sizeof dir, "%s/qwen3-tied-bf16", fixtures);
    CHECK_INT_EQ(model_config_load(&c, dir, &err), 0);
    CHECK_INT_EQ(c.arch, VB_ARCH_QWEN3);
    CHECK_INT_EQ(c.head_dim, 16);
    CHECK(c.qk_norm && c.tie_word_embeddings && !c.attention_bias);
    snprintf(dir, sizeof dir, "%s/qwen2-tied-fp32", fixtures);
    CHECK_INT_EQ(model_config_load(&c, dir, &err), 0);
    CHECK(c.attention_bias);
    CHECK_INT_EQ(c.rope_scaling.type, VB_ROPE_DEFAULT);
}

/* A checkpoint whose shapes differ from config.json is refused from the
 * headers alone, naming the file, the tensor and both shapes: generate
 * runs this check before any output exists and exits 2 on it (issue 23). */
static void test_shape_mismatch_named(void)
{
    char dir[] = "/tmp/vb_test_shape_XXXXXX", st[1100], cfg[1100];
    if (!mkdtemp(dir)) {
        CHECK(!"mkdtemp failed");
        return;
    }
    snprintf(st, sizeof st, "%s/qwen2-tied-fp32/model.safetensors", fixtures);
    char link_path[64];
    snprintf(link_path, sizeof link_path, "%s/model.safetensors", dir);
    CHECK_INT_EQ(symlink(st, link_path), 0);
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    for (int inter = 48; inter <= 64; inter += 16) { /* the fixture's, then another */
        FILE *f = fopen(cfg, "w");
        CHECK(f != NULL);
        if (!f)
            break;
        fprintf(f, "{\"model_type\":\"qwen2\",\"hidden_size\":32,\"intermediate_size\":%d,"
                "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"num_hidden_layers\":2,"
                "\"vocab_size\":98,\"tie_word_embeddings\":true}", inter);
        CHECK_INT_EQ(fclose(f), 0);
        model_config c;
        vb_err err = {{0}};
        CHECK_INT_EQ(model_config_load(&c, dir, &err), 0);
        int rc = model_check_weights(&c, 1, dir, &err);
        CHECK_INT_EQ(rc, inter == 48 ? 0 : -1);
        if (inter == 64) {
            const char *want = "model.safetensors: tensor 'model.layers.0.mlp.gate_proj.weight' "
                               "has shape [48, 32], config.json implies [64, 32]";
            if (!strstr(err.msg, want))
                fprintf(stderr, "  got: %s\n", err.msg);
            CHECK(strstr(err.msg, want) != NULL);
        }
    }
    unlink(cfg);
    unlink(link_path);
    rmdir(dir);
}

static void test_tp_plan(void)
{
    model_config c = {.n_heads = 40, .n_kv_heads = 8, .intermediate_size = 13824,
                      .vocab_size = 152064, .head_dim = 128};
    tp_plan p;
    vb_err err;
    CHECK_INT_EQ(tp_plan_make(&p, &c, 4, 3, &err), 0);
    CHECK_INT_EQ(p.heads_local, 10);
    CHECK_INT_EQ(p.head_start, 30);
    CHECK_INT_EQ(p.kv_heads_local, 2);
    CHECK_INT_EQ(p.kv_head_start, 6);
    CHECK_INT_EQ(p.vocab_local, 38016);
    CHECK_INT_EQ(p.vocab_start, 3 * 38016);
    CHECK_INT_EQ(tp_plan_make(&p, &c, 3, 0, &err), -1);
    CHECK(strstr(err.msg, "40 attention heads do not divide by 3") != NULL);
    /* a refusal names every --tp that works (5 fails the 8 key/value heads,
     * 10 and more the intermediate size) */
    CHECK(strstr(err.msg, "--tp values that work: 1, 2, 4, 8") != NULL);
    /* tp 16 > 8 kv heads: each kv head on 2 ranks, matching its query heads
     * (but 40 heads do not divide by 16, so use 8 -> 16 on a 64-head model) */
    model_config d = c;
    d.n_heads = 64;
    d.intermediate_size = 16 * 100;
    CHECK_INT_EQ(tp_plan_make(&p, &d, 16, 5, &err), 0);
    CHECK_INT_EQ(p.kv_heads_local, 1);
    CHECK_INT_EQ(p.kv_head_start, 2);
    CHECK_INT_EQ(p.head_start / (d.n_heads / d.n_kv_heads), p.kv_head_start);
    model_config v = c;
    v.vocab_size = 98;
    CHECK_INT_EQ(tp_plan_make(&p, &v, 4, 3, &err), 0);
    CHECK_INT_EQ(p.vocab_start, 75);
    CHECK_INT_EQ(p.vocab_local, 23);
}

/* A --tp above a refused one can keep the quantization groups whole: 96
 * input columns of o_proj in groups of 32 split into 48 at tp 2 (refused)
 * but 32 at tp 3; the refusal listed only the values below the one asked
 * for ("1"), so it hid tp 3. */
static void test_tp_plan_quant_lists_larger(void)
{
    model_config c = {.n_heads = 6, .n_kv_heads = 6, .head_dim = 16, .intermediate_size = 192,
                      .vocab_size = 389};
    c.quant.method = VB_QUANT_AWQ;
    c.quant.bits = 4;
    c.quant.group_size = 32;
    tp_plan p;
    vb_err err = {{0}};
    CHECK_INT_EQ(tp_plan_make(&p, &c, 3, 2, &err), 0);
    CHECK_INT_EQ(tp_plan_make(&p, &c, 2, 0, &err), -1);
    CHECK(strstr(err.msg, "o_proj") != NULL);
    CHECK(strstr(err.msg, "keep them whole: 1, 3") != NULL);
    if (!strstr(err.msg, "keep them whole: 1, 3"))
        fprintf(stderr, "  message: %s\n", err.msg);
}

int main(int argc, char **argv)
{
    RUN_TEST(test_tp_plan);
    RUN_TEST(test_tp_plan_quant_lists_larger);
    if (argc < 2)
        return test_skip("usage: test_model_load FIXTURES_DIR");
    fixtures = argv[1];
    RUN_TEST(test_config_fields);
    RUN_TEST(test_shape_mismatch_named);
    RUN_TEST(test_all_models_all_ranks);
    RUN_TEST(test_sharded_equals_single);
    return test_summary();
}

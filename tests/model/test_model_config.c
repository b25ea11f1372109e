/* model_config_load on config.json variants written here: the classic
 * layout (rope_scaling with "type"), defaults, and the refusals. Values are
 * compared exactly (they are copied from the JSON, tolerance 0). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "model/model_config.h"
#include "model/tp_plan.h"

static char dir[] = "/tmp/vb_test_cfg_XXXXXX";

#define BASE "\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4," \
             "\"intermediate_size\":128,\"vocab_size\":100,\"max_position_embeddings\":32768"

static int load(model_config *c, vb_err *err, const char *config, const char *gen)
{
    char p[256];
    snprintf(p, sizeof p, "%s/config.json", dir);
    FILE *f = fopen(p, "w");
    fputs(config, f);
    fclose(f);
    snprintf(p, sizeof p, "%s/generation_config.json", dir);
    unlink(p);
    if (gen) {
        f = fopen(p, "w");
        fputs(gen, f);
        fclose(f);
    }
    return model_config_load(c, dir, err);
}

static void test_yarn_and_defaults(void)
{
    model_config c;
    vb_err err;
    int rc = load(&c, &err, "{\"model_type\":\"qwen2\"," BASE ",\"rope_scaling\":{\"type\":\"yarn\","
                  "\"factor\":4.0,\"original_max_position_embeddings\":32768},\"eos_token_id\":7}",
                  "{\"eos_token_id\":[5,6],\"temperature\":0.7,\"top_k\":20,\"top_p\":0.8,"
                  "\"min_p\":0.05,\"do_sample\":true}");
    CHECK_INT_EQ(rc, 0);
    CHECK_INT_EQ(c.rope_scaling.type, VB_ROPE_YARN);
    CHECK_NEAR(c.rope_scaling.factor, 4.0, 0);
    CHECK_NEAR(c.rope_scaling.beta_fast, 32.0, 0);
    CHECK_NEAR(c.rope_scaling.beta_slow, 1.0, 0);
    CHECK_NEAR(c.rope_theta, 10000.0, 0);
    CHECK_INT_EQ(c.n_kv_heads, 4); /* absent: as many as query heads */
    CHECK_INT_EQ(c.head_dim, 16);
    CHECK_INT_EQ(c.n_eos, 2);      /* generation_config wins */
    CHECK_INT_EQ(c.eos_token_ids[1], 6);
    CHECK_NEAR(c.gen_temperature, 0.7, 0);
    CHECK_INT_EQ(c.gen_top_k, 20);
    CHECK_NEAR(c.gen_min_p, 0.05, 0); /* transformers' MinPLogitsWarper reads it */
    CHECK(c.gen_do_sample);
    CHECK(c.attention_bias);
    rc = load(&c, &err, "{\"model_type\":\"llama\"," BASE ",\"rope_scaling\":null,"
              "\"rope_theta\":500000.0,\"num_key_value_heads\":2}", NULL);
    CHECK_INT_EQ(rc, 0);
    CHECK_INT_EQ(c.rope_scaling.type, VB_ROPE_DEFAULT);
    CHECK_NEAR(c.rope_theta, 500000.0, 0);
    CHECK(isnan(c.gen_temperature));
    CHECK(isnan(c.gen_min_p));
    CHECK(c.gen_max_new_tokens == -1); /* absent */
    CHECK_INT_EQ((int)strlen(c.gen_unapplied), 0);
    /* keys transformers' generate() applies and voltbatch does not are
     * named (the run warns), those at their neutral values not */
    rc = load(&c, &err, "{\"model_type\":\"llama\"," BASE "}",
              "{\"typical_p\":0.9,\"num_beams\":1,\"suppress_tokens\":[],"
              "\"no_repeat_ngram_size\":3,\"bad_words_ids\":null,\"forced_eos_token_id\":2}");
    CHECK_INT_EQ(rc, 0);
    CHECK(strcmp(c.gen_unapplied, "typical_p, no_repeat_ngram_size, forced_eos_token_id") == 0);
    /* stop strings end transformers' rows: a list or one string is named,
     * an empty list or null not; so is the eos-raising length penalty */
    rc = load(&c, &err, "{\"model_type\":\"llama\"," BASE "}", "{\"stop_strings\":[\"\\n\\n\"]}");
    CHECK_INT_EQ(rc, 0);
    CHECK_STR_EQ(c.gen_unapplied, "stop_strings");
    rc = load(&c, &err, "{\"model_type\":\"llama\"," BASE "}", "{\"stop_strings\":\"User:\"}");
    CHECK_INT_EQ(rc, 0);
    CHECK_STR_EQ(c.gen_unapplied, "stop_strings");
    rc = load(&c, &err, "{\"model_type\":\"llama\"," BASE "}",
              "{\"stop_strings\":[],\"max_new_tokens\":null}");
    CHECK_INT_EQ(rc, 0);
    CHECK_STR_EQ(c.gen_unapplied, "");
    rc = load(&c, &err, "{\"model_type\":\"llama\"," BASE "}", "{\"stop_strings\":null}");
    CHECK_INT_EQ(rc, 0);
    CHECK_STR_EQ(c.gen_unapplied, "");
    rc = load(&c, &err, "{\"model_type\":\"llama\"," BASE "}",
              "{\"exponential_decay_length_penalty\":[10,1.5]}");
    CHECK_INT_EQ(rc, 0);
    CHECK_STR_EQ(c.gen_unapplied, "exponential_decay_length_penalty");
    /* max_new_tokens: the rows' default budget (transformers, vLLM) */
    rc = load(&c, &err, "{\"model_type\":\"llama\"," BASE "}", "{\"max_new_tokens\":2048}");
    CHECK_INT_EQ(rc, 0);
    CHECK(c.gen_max_new_tokens == 2048);
    rc = load(&c, &err, "{\"model_type\":\"llama\"," BASE "}", "{\"max_new_tokens\":-1}");
    CHECK_INT_EQ(rc, -1);
    CHECK(strstr(err.msg, "\"max_new_tokens\" = -1 is out of range") != NULL);
    rc = load(&c, &err, "{\"model_type\":\"llama\"," BASE "}", "{\"max_new_tokens\":\"64\"}");
    CHECK_INT_EQ(rc, -1);
    CHECK(strstr(err.msg, "\"max_new_tokens\" is not an integer") != NULL);
    /* min_p outside [0, 1], as --min-p refuses it */
    rc = load(&c, &err, "{\"model_type\":\"llama\"," BASE "}", "{\"min_p\":1.5}");
    CHECK_INT_EQ(rc, -1);
    CHECK(strstr(err.msg, "\"min_p\" = 1.5 is out of range") != NULL);
    rc = load(&c, &err, "{\"model_type\":\"llama\"," BASE ",\"rope_scaling\":{\"rope_type\":"
              "\"linear\",\"factor\":2.0}}", NULL);
    CHECK_INT_EQ(rc, 0);
    CHECK_INT_EQ(c.rope_scaling.type, VB_ROPE_LINEAR);
    /* a temperature too small to divide the logits by (they overflowed to
     * +-Inf: every row an error row) is greedy, its limit; the smallest
     * that samples stays */
    rc = load(&c, &err, "{\"model_type\":\"llama\"," BASE "}",
              "{\"temperature\":1e-40,\"do_sample\":true}");
    CHECK_INT_EQ(rc, 0);
    CHECK_NEAR(c.gen_temperature, 0.0, 0);
    rc = load(&c, &err, "{\"model_type\":\"llama\"," BASE "}",
              "{\"temperature\":1e-5,\"do_sample\":true}");
    CHECK_INT_EQ(rc, 0);
    CHECK_NEAR(c.gen_temperature, 1e-5, 0);
    /* Qwen2.5 ships sliding_window but use_sliding_window false: full attention */
    rc = load(&c, &err, "{\"model_type\":\"qwen2\"," BASE ",\"sliding_window\":4096,"
              "\"use_sliding_window\":false}", NULL);
    CHECK_INT_EQ(rc, 0);
}

static void refused(const char *config, const char *expect)
{
    model_config c;
    vb_err err = {{0}};
    CHECK_INT_EQ(load(&c, &err, config, NULL), -1);
    if (!strstr(err.msg, expect))
        fprintf(stderr, "  expected '%s' in: %s\n", expect, err.msg);
    CHECK(strstr(err.msg, expect) != NULL);
    CHECK(strstr(err.msg, "config.json") != NULL);
}

static void test_refusals(void)
{
    refused("{\"model_type\":\"mistral\"," BASE ",\"sliding_window\":4096}",
            "sliding-window attention is not supported");
    refused("{\"model_type\":\"llama\"," BASE ",\"mlp_bias\":true}", "mlp_bias");
    refused("{\"model_type\":\"llama\"," BASE ",\"hidden_act\":\"gelu\"}", "hidden_act 'gelu'");
    refused("{\"model_type\":\"llama\"," BASE ",\"rope_scaling\":{\"rope_type\":\"longrope\"}}",
            "type 'longrope' is not supported");
    refused("{\"model_type\":\"llama\"," BASE ",\"rope_scaling\":{\"rope_type\":\"yarn\"}}",
            "needs a positive \"factor\"");
    refused("{\"model_type\":\"llama\"," BASE ",\"num_key_value_heads\":3}",
            "not a multiple of num_key_value_heads 3");
    refused("{\"model_type\":\"llama\",\"hidden_size\":64}", "\"num_hidden_layers\" is missing");
    refused("{\"model_type\":\"qwen2\"," BASE ",\"num_attention_heads\":\"4\"}",
            "\"num_attention_heads\" is not an integer");
    refused("not json", "config.json");
    /* a byte order mark (an editor's) is named, not quoted invisibly as
     * "'[' or '{' expected near ''" */
    refused("\xef\xbb\xbf{\"model_type\":\"llama\"," BASE "}", "UTF-8 byte order mark");
    /* a field of another JSON type is refused by name, not read as absent
     * (each ran with the default, session 43) */
    refused("{\"model_type\":\"llama\"," BASE ",\"hidden_act\":1}",
            "\"hidden_act\" is not a string");
    refused("{\"model_type\":\"llama\"," BASE ",\"rope_scaling\":{\"type\":5,\"factor\":2}}",
            "\"rope_scaling\": \"type\" is not a string");
    refused("{\"model_type\":\"mistral\"," BASE ",\"sliding_window\":\"128\"}",
            "\"sliding_window\" is not an integer");
    refused("{\"model_type\":\"qwen2\"," BASE ",\"use_sliding_window\":\"yes\"}",
            "\"use_sliding_window\" is not true or false");
    refused("{\"model_type\":\"llama\"," BASE ",\"tie_word_embeddings\":\"true\"}",
            "\"tie_word_embeddings\" is not true or false");
    /* what forward/rope.c does not compute, refused rather than run as
     * something else (transformers gives other logits for each) */
    refused("{\"model_type\":\"llama\"," BASE ",\"rope_scaling\":{\"type\":\"yarn\","
            "\"factor\":4,\"mscale\":0.707,\"mscale_all_dim\":1}}",
            "\"mscale\" with \"mscale_all_dim\" is not supported");
    refused("{\"model_type\":\"llama\"," BASE ",\"rope_scaling\":{\"type\":\"yarn\","
            "\"factor\":4,\"truncate\":false}}", "\"truncate\": false is not supported");
    /* sizes each in range whose products wrap 64 bits */
    refused("{\"model_type\":\"llama\",\"hidden_size\":1073741824,\"num_hidden_layers\":1000,"
            "\"num_attention_heads\":33554432,\"num_key_value_heads\":33554432,"
            "\"intermediate_size\":1073741824,\"vocab_size\":1073741824}",
            "more than 2^50 is not a model this can load");
    refused("{\"model_type\":\"llama\"," BASE ",\"partial_rotary_factor\":0.5}",
            "\"partial_rotary_factor\" = 0.5 is not supported");
    /* past the forward pass's limit: refused at load (exit 2), not after
     * the weights are read (exit 1), given or derived */
    refused("{\"model_type\":\"llama\"," BASE ",\"head_dim\":1024}",
            "head_dim 1024 is more than 512");
    refused("{\"model_type\":\"llama\",\"hidden_size\":4096,\"num_hidden_layers\":1,"
            "\"num_attention_heads\":4,\"intermediate_size\":128,\"vocab_size\":100}",
            "head_dim 1024 (hidden_size / num_attention_heads) is more than 512");
    model_config c;
    vb_err err = {{0}};
    CHECK_INT_EQ(load(&c, &err, "{\"model_type\":\"llama\"," BASE ",\"head_dim\":512}", NULL), 0);
    /* heads x head_dim past an int's range: with a GPTQ group of 96 the
     * wrapped width (1,536) let tp 2 cut o_proj's groups (helper hR) */
    refused("{\"model_type\":\"llama\",\"hidden_size\":32,\"num_hidden_layers\":1,"
            "\"num_attention_heads\":8388614,\"head_dim\":512,\"intermediate_size\":192,"
            "\"vocab_size\":100,\"quantization_config\":{\"quant_method\":\"gptq\","
            "\"bits\":4,\"group_size\":96,\"desc_act\":false}}",
            "num_attention_heads 8388614 x head_dim 512 = 4294970368 is more than 1073741824");
}

/* quantization_config's fields of another JSON type are refused by name,
 * not read as absent: a compressed-tensors "symmetric": "false" ran an
 * asymmetric checkpoint as symmetric (its zero points unread, other
 * logprobs, no message); GPTQ's "desc_act": "true", "checkpoint_format": 2
 * and AWQ's "zero_point": "false" ran with their defaults. */
#define QCFG "{\"model_type\":\"qwen2\"," BASE ",\"quantization_config\":"
#define CT_W(w) QCFG "{\"quant_method\":\"compressed-tensors\",\"format\":\"pack-quantized\"," \
    "\"config_groups\":{\"group_0\":{\"targets\":[\"Linear\"],\"weights\":{\"num_bits\":4," \
    "\"type\":\"int\",\"strategy\":\"group\",\"group_size\":32" w "}}}}}"
/* An absent "sliding_window" is transformers' default window (4096 for
 * Mistral, and for Qwen2/3 that set use_sliding_window), not none: a
 * Mistral config without the key ran with full attention. null is none;
 * Llama has no such field. */
/* Which layers slide, as transformers builds Qwen2/3's layer_types: the
 * given list, else those from max_window_layers (default 28) on; a model
 * with use_sliding_window and no such layer is full attention and runs.
 * LlamaConfig has no window: transformers ignores the key. */
static void test_sliding_layers(void)
{
    model_config c;
    vb_err err;
    /* 2 layers, the default max_window_layers 28: none slides */
    CHECK_INT_EQ(load(&c, &err, "{\"model_type\":\"qwen2\"," BASE ",\"use_sliding_window\":true,"
                      "\"sliding_window\":16}", NULL), 0);
    CHECK_INT_EQ(load(&c, &err, "{\"model_type\":\"qwen2\"," BASE ",\"use_sliding_window\":true,"
                      "\"sliding_window\":16,\"max_window_layers\":2}", NULL), 0);
    refused("{\"model_type\":\"qwen2\"," BASE ",\"use_sliding_window\":true,"
            "\"sliding_window\":16,\"max_window_layers\":1}", "sliding_window\" = 16");
    /* layer_types, where given, decides */
    CHECK_INT_EQ(load(&c, &err, "{\"model_type\":\"qwen3\"," BASE ",\"head_dim\":16,"
                      "\"use_sliding_window\":true,\"sliding_window\":16,\"max_window_layers\":0,"
                      "\"layer_types\":[\"full_attention\",\"full_attention\"]}", NULL), 0);
    refused("{\"model_type\":\"qwen3\"," BASE ",\"head_dim\":16,\"use_sliding_window\":true,"
            "\"sliding_window\":16,\"layer_types\":[\"full_attention\",\"sliding_attention\"]}",
            "sliding_window\" = 16");
    refused("{\"model_type\":\"qwen2\"," BASE ",\"use_sliding_window\":true,"
            "\"layer_types\":\"all\"}", "\"layer_types\" is not a list");
    refused("{\"model_type\":\"qwen2\"," BASE ",\"use_sliding_window\":true,"
            "\"max_window_layers\":\"1\"}", "\"max_window_layers\" is not an integer");
    /* Llama: the key is not transformers' (full attention) */
    CHECK_INT_EQ(load(&c, &err, "{\"model_type\":\"llama\"," BASE ",\"sliding_window\":16}", NULL),
                 0);
}

static void test_absent_sliding_window(void)
{
    refused("{\"model_type\":\"mistral\"," BASE "}", "no \"sliding_window\"");
    refused("{\"model_type\":\"qwen2\"," BASE ",\"use_sliding_window\":true,"
            "\"max_window_layers\":0}", "default window of 4096");
    refused("{\"model_type\":\"qwen3\"," BASE ",\"head_dim\":16,\"use_sliding_window\":true,"
            "\"max_window_layers\":1}", "default window of 4096");
    model_config c;
    vb_err err;
    CHECK_INT_EQ(load(&c, &err, "{\"model_type\":\"mistral\"," BASE ",\"sliding_window\":null}",
                      NULL), 0);
    CHECK_INT_EQ(load(&c, &err, "{\"model_type\":\"llama\"," BASE "}", NULL), 0);
    CHECK_INT_EQ(load(&c, &err, "{\"model_type\":\"qwen2\"," BASE "}", NULL), 0);
    /* the default window covers a context of 4096 */
    CHECK_INT_EQ(load(&c, &err, "{\"model_type\":\"mistral\",\"hidden_size\":64,"
                      "\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                      "\"intermediate_size\":128,\"vocab_size\":100,"
                      "\"max_position_embeddings\":4096}", NULL), 0);
}

/* An absent max_position_embeddings is transformers' default for the
 * class (it was 2048 for all): the context, and what YaRN's
 * original_max_position_embeddings defaults to. */
static void test_absent_max_positions(void)
{
#define NO_MAX "\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4," \
               "\"intermediate_size\":128,\"vocab_size\":100"
    model_config c;
    vb_err err;
    CHECK_INT_EQ(load(&c, &err, "{\"model_type\":\"qwen2\"," NO_MAX ",\"rope_scaling\":"
                      "{\"type\":\"yarn\",\"factor\":4.0}}", NULL), 0);
    CHECK_INT_EQ(c.max_position_embeddings, 32768);
    CHECK_NEAR(c.rope_scaling.original_max_position_embeddings, 32768, 0);
    CHECK_INT_EQ(load(&c, &err, "{\"model_type\":\"qwen3\"," NO_MAX "}", NULL), 0);
    CHECK_INT_EQ(c.max_position_embeddings, 32768);
    CHECK_INT_EQ(load(&c, &err, "{\"model_type\":\"mistral\"," NO_MAX ",\"sliding_window\":null}",
                      NULL), 0);
    CHECK_INT_EQ(c.max_position_embeddings, 131072);
    CHECK_INT_EQ(load(&c, &err, "{\"model_type\":\"llama\"," NO_MAX "}", NULL), 0);
    CHECK_INT_EQ(c.max_position_embeddings, 2048);
#undef NO_MAX
}

static void test_quant_config_types(void)
{
    model_config c;
    vb_err err = {{0}};
    CHECK_INT_EQ(load(&c, &err, CT_W(",\"symmetric\":false"), NULL), 0);
    CHECK(!c.quant.sym);
    refused(CT_W(",\"symmetric\":\"false\""),
            "\"config_groups\".group_0.weights: \"symmetric\" is not true or false");
    refused(CT_W(",\"dynamic\":\"local\""), "\"dynamic\" is not true or false");
    refused(CT_W(",\"strategy\":5"), "\"strategy\" is not a string");
    refused(CT_W(",\"actorder\":1"), "\"actorder\" is not a string");
    refused(QCFG "{\"quant_method\":\"gptq\",\"bits\":4,\"group_size\":32,\"desc_act\":\"true\"}}",
            "\"quantization_config\": \"desc_act\" is not true or false");
    refused(QCFG "{\"quant_method\":\"gptq\",\"bits\":4,\"group_size\":32,"
            "\"checkpoint_format\":2}}", "\"checkpoint_format\" is not a string");
    refused(QCFG "{\"quant_method\":\"gptq\",\"bits\":4,\"group_size\":32,\"lm_head\":1}}",
            "\"lm_head\" is not true or false");
    refused(QCFG "{\"quant_method\":\"awq\",\"bits\":4,\"group_size\":32,"
            "\"zero_point\":\"false\"}}", "\"zero_point\" is not true or false");
    refused(QCFG "{\"quant_method\":\"awq\",\"bits\":4,\"group_size\":32,\"version\":1}}",
            "\"version\" is not a string");
    refused(QCFG "{\"quant_method\":7}}", "\"quant_method\" is not a string");
    /* null still means absent */
    CHECK_INT_EQ(load(&c, &err, QCFG "{\"quant_method\":\"gptq\",\"bits\":4,\"group_size\":32,"
                      "\"desc_act\":null,\"checkpoint_format\":null}}", NULL), 0);
    CHECK(!c.quant.desc_act);
    CHECK_INT_EQ(c.quant.zero_offset, 1);
}

/* A GPTQ / compressed-tensors group size that does not divide a split
 * dimension (64 and down_proj's 352 columns: a shorter last group, whole
 * at tp 1) is cut by every --tp above 1. The plan used to skip that
 * dimension, so --tp 4 (o_proj's 128 columns cut) named "1, 2", and
 * --tp 2 then failed in the loader on down_proj. */
static void test_quant_short_group_tp(void)
{
    static const char *const methods[] = {
        "{\"quant_method\":\"gptq\",\"bits\":4,\"group_size\":64}",
        "{\"quant_method\":\"compressed-tensors\",\"format\":\"pack-quantized\","
        "\"config_groups\":{\"g\":{\"targets\":[\"Linear\"],\"weights\":{\"num_bits\":8,"
        "\"type\":\"int\",\"strategy\":\"group\",\"group_size\":64}}}}",
    };
    for (int i = 0; i < 2; i++) {
        char cfg[1024];
        snprintf(cfg, sizeof cfg, "{\"model_type\":\"qwen2\",\"hidden_size\":128,"
                 "\"num_hidden_layers\":2,\"num_attention_heads\":8,\"num_key_value_heads\":4,"
                 "\"intermediate_size\":352,\"vocab_size\":100,\"quantization_config\":%s}",
                 methods[i]);
        model_config c;
        tp_plan p;
        vb_err err = {{0}};
        CHECK_INT_EQ(load(&c, &err, cfg, NULL), 0);
        CHECK(tp_plan_make(&p, &c, 1, 0, &err) == 0);
        CHECK(tp_plan_make(&p, &c, 4, 0, &err) != 0);
        CHECK(strstr(err.msg, "keep them whole: 1") != NULL);
        CHECK(strstr(err.msg, "keep them whole: 1, 2") == NULL);
        if (!strstr(err.msg, "keep them whole: 1") || strstr(err.msg, "1, 2"))
            fprintf(stderr, "  tp 4: %s\n", err.msg);
        CHECK(tp_plan_make(&p, &c, 2, 0, &err) != 0);
        CHECK(strstr(err.msg, "down_proj") != NULL);
    }
}

/* Their harmless forms still load: null, the default values, mscale with
 * an explicit attention_factor (which transformers takes first). */
static void test_harmless_forms_accepted(void)
{
    model_config c;
    vb_err err = {{0}};
    CHECK_INT_EQ(load(&c, &err,
                      "{\"model_type\":\"llama\"," BASE ",\"hidden_act\":null,"
                      "\"tie_word_embeddings\":null,\"partial_rotary_factor\":1.0,"
                      "\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4,\"truncate\":true,"
                      "\"mscale\":0.707,\"mscale_all_dim\":1,\"attention_factor\":0.9}}",
                      "{\"do_sample\":null}"),
                 0);
    if (err.msg[0])
        fprintf(stderr, "  %s\n", err.msg);
    CHECK(!c.tie_word_embeddings);
    CHECK(c.rope_scaling.attention_factor == 0.9);
}

/* The same for a generation_config.json beside a good config.json. */
static void refused_gen(const char *gen, const char *expect)
{
    model_config c;
    vb_err err = {{0}};
    CHECK_INT_EQ(load(&c, &err, "{\"model_type\":\"qwen2\"," BASE "}", gen), -1);
    if (!strstr(err.msg, expect))
        fprintf(stderr, "  expected '%s' in: %s\n", expect, err.msg);
    CHECK(strstr(err.msg, expect) != NULL);
    CHECK(strstr(err.msg, "generation_config.json") != NULL);
}

/* Values that parse but cannot work (issue 23): each used to load, and the
 * run then failed every row with NaN logits or never stopped at eos. */
static void test_range_refusals(void)
{
    refused("{\"model_type\":\"llama\"," BASE ",\"rms_norm_eps\":-1}", "\"rms_norm_eps\" = -1");
    refused("{\"model_type\":\"llama\"," BASE ",\"rms_norm_eps\":0}", "\"rms_norm_eps\" = 0");
    refused("{\"model_type\":\"llama\"," BASE ",\"rope_theta\":0}", "\"rope_theta\" = 0");
    refused("{\"model_type\":\"llama\"," BASE ",\"rope_theta\":-10000}",
            "\"rope_theta\" = -10000");
    refused("{\"model_type\":\"llama\"," BASE ",\"rope_parameters\":{\"rope_type\":"
            "\"default\",\"rope_theta\":0}}", "\"rope_theta\" = 0");
    refused("{\"model_type\":\"llama\"," BASE ",\"rope_scaling\":{\"rope_type\":\"linear\","
            "\"factor\":-2}}", "needs a positive \"factor\"");
    refused("{\"model_type\":\"llama\"," BASE ",\"rope_scaling\":{\"rope_type\":\"yarn\","
            "\"factor\":4,\"original_max_position_embeddings\":0}}",
            "\"original_max_position_embeddings\" = 0");
    refused("{\"model_type\":\"llama\"," BASE ",\"rope_scaling\":{\"rope_type\":\"yarn\","
            "\"factor\":4,\"beta_fast\":-1}}", "\"beta_fast\" = -1");
    refused("{\"model_type\":\"llama\"," BASE ",\"rope_scaling\":{\"rope_type\":\"yarn\","
            "\"factor\":4,\"attention_factor\":-0.5}}", "\"attention_factor\" = -0.5");
    refused("{\"model_type\":\"llama\"," BASE ",\"rope_scaling\":{\"rope_type\":\"llama3\","
            "\"factor\":8,\"low_freq_factor\":0,\"high_freq_factor\":4}}",
            "\"low_freq_factor\" = 0");
    refused("{\"model_type\":\"llama\"," BASE ",\"rope_scaling\":{\"rope_type\":\"llama3\","
            "\"factor\":8,\"low_freq_factor\":4,\"high_freq_factor\":4}}",
            "\"high_freq_factor\" 4 must be greater than \"low_freq_factor\" 4");
    /* positive, yet the fp32 rotary frequencies are not finite (helper hR):
     * a theta or factor below fp32's range, YaRN over log(rope_theta 1) */
    refused("{\"model_type\":\"llama\"," BASE ",\"rope_theta\":1e-300}",
            "rotary frequencies that are not finite");
    refused("{\"model_type\":\"llama\"," BASE ",\"rope_scaling\":{\"rope_type\":\"linear\","
            "\"factor\":1e-300}}", "RoPE scaling linear (factor 1e-300)");
    refused("{\"model_type\":\"llama\"," BASE ",\"rope_scaling\":{\"rope_type\":\"llama3\","
            "\"factor\":1e-300}}", "rotary frequencies that are not finite");
    refused("{\"model_type\":\"llama\"," BASE ",\"rope_theta\":1,\"rope_scaling\":"
            "{\"rope_type\":\"yarn\",\"factor\":4}}", "\"rope_theta\" = 1 with RoPE scaling yarn");
    model_config c;
    vb_err err = {{0}};
    CHECK_INT_EQ(load(&c, &err, "{\"model_type\":\"llama\"," BASE ",\"rope_theta\":1}", NULL),
                 0); /* no rotation past i = 0, but finite */
    /* vocab_size is 100 in BASE: ids 0..99 */
    refused("{\"model_type\":\"qwen2\"," BASE ",\"eos_token_id\":100}",
            "\"eos_token_id\" 100 is outside the vocabulary [0, 100)");
    refused("{\"model_type\":\"qwen2\"," BASE ",\"eos_token_id\":[5,-1]}",
            "\"eos_token_id\"[1] -1 is outside the vocabulary [0, 100)");
    refused("{\"model_type\":\"qwen2\"," BASE ",\"eos_token_id\":4294967395}",
            "\"eos_token_id\" 4294967395 is outside the vocabulary");
    refused_gen("{\"eos_token_id\":[99,100]}",
                "\"eos_token_id\"[1] 100 is outside the vocabulary [0, 100)");
    refused_gen("{\"eos_token_id\":1000}", "\"eos_token_id\" 1000 is outside the vocabulary");
    refused_gen("{\"temperature\":-1}", "\"temperature\" = -1");
    refused_gen("{\"top_p\":1.5}", "\"top_p\" = 1.5");
    refused_gen("{\"top_k\":16777217}", "\"top_k\" = 16777217");
    refused_gen("{\"top_k\":\"20\"}", "\"top_k\" is not an integer");
    refused_gen("{\"repetition_penalty\":0}", "\"repetition_penalty\" = 0");
    refused_gen("{\"do_sample\":1}", "\"do_sample\" is not true or false");
}

/* The edges of those ranges still load. */
static void test_range_edges_accepted(void)
{
    model_config c;
    vb_err err = {{0}};
    int rc = load(&c, &err, "{\"model_type\":\"llama\"," BASE ",\"rms_norm_eps\":1e-12,"
                  "\"rope_theta\":0.5,\"eos_token_id\":[0,99],\"rope_scaling\":{\"rope_type\":"
                  "\"llama3\",\"factor\":8,\"low_freq_factor\":1,\"high_freq_factor\":4,"
                  "\"original_max_position_embeddings\":8192}}",
                  "{\"eos_token_id\":99,\"temperature\":0,\"top_p\":1,\"top_k\":-1,"
                  "\"repetition_penalty\":1}");
    if (rc)
        fprintf(stderr, "  %s\n", err.msg);
    CHECK_INT_EQ(rc, 0);
    CHECK_INT_EQ(c.n_eos, 1);
    CHECK_INT_EQ(c.eos_token_ids[0], 99);
    CHECK_INT_EQ(c.gen_top_k, 0); /* -1 (vLLM's "off") is top-k off */
}

/* The positions a model was made for (generate warns past them): yarn
 * stretches the original positions by its factor, llama3 does not change
 * max_position_embeddings (it is already the stretched length). */
static void test_positions(void)
{
    model_config c;
    vb_err err = {{0}};
    CHECK_INT_EQ(load(&c, &err, "{\"model_type\":\"qwen2\"," BASE "}", NULL), 0);
    CHECK_INT_EQ(model_config_positions(&c), 32768);
    CHECK_INT_EQ(load(&c, &err, "{\"model_type\":\"qwen2\"," BASE ",\"rope_scaling\":{"
                      "\"type\":\"yarn\",\"factor\":4.0,"
                      "\"original_max_position_embeddings\":32768}}", NULL), 0);
    CHECK_INT_EQ(model_config_positions(&c), 131072);
    CHECK_INT_EQ(load(&c, &err, "{\"model_type\":\"llama\"," BASE ",\"rope_scaling\":{"
                      "\"rope_type\":\"llama3\",\"factor\":8,\"low_freq_factor\":1,"
                      "\"high_freq_factor\":4,\"original_max_position_embeddings\":8192}}",
                      NULL), 0);
    CHECK_INT_EQ(model_config_positions(&c), 32768);
}

/* Sizes past what the arrays behind them hold are refused, not cut or
 * wrapped: an eos id past the kept ones used to be dropped (its rows ran
 * on to the length limit), a huge layer count overflowed the tensor count,
 * and a vocabulary smaller than --tp left a rank no logits (a division by
 * zero in the sampler). */
static void test_limits(void)
{
    char list[1024] = "", cfg[1536], gen[1536];
    for (int i = 0; i < VB_MAX_EOS; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d", i ? "," : "", i);
    model_config c;
    vb_err err = {{0}};
    snprintf(cfg, sizeof cfg, "{\"model_type\":\"qwen2\"," BASE ",\"eos_token_id\":[%s]}", list);
    CHECK_INT_EQ(load(&c, &err, cfg, NULL), 0); /* exactly VB_MAX_EOS: kept, all of them */
    CHECK_INT_EQ(c.n_eos, VB_MAX_EOS);
    CHECK_INT_EQ(c.eos_token_ids[VB_MAX_EOS - 1], VB_MAX_EOS - 1);
    snprintf(list + strlen(list), sizeof list - strlen(list), ",%d", VB_MAX_EOS);
    snprintf(cfg, sizeof cfg, "{\"model_type\":\"qwen2\"," BASE ",\"eos_token_id\":[%s]}", list);
    refused(cfg, "\"eos_token_id\" lists more than 64 ids");
    snprintf(gen, sizeof gen, "{\"eos_token_id\":[%s]}", list);
    refused_gen(gen, "\"eos_token_id\" lists more than 64 ids");

    refused("{\"model_type\":\"qwen2\",\"hidden_size\":64,\"num_hidden_layers\":306783379,"
            "\"num_attention_heads\":4,\"intermediate_size\":128,\"vocab_size\":100}",
            "\"num_hidden_layers\" = 306783379 is more than 4096");

    tp_plan p;
    CHECK_INT_EQ(load(&c, &err, "{\"model_type\":\"qwen2\",\"hidden_size\":64,"
                      "\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                      "\"intermediate_size\":128,\"vocab_size\":6}", NULL), 0);
    CHECK(tp_plan_make(&p, &c, 4, 3, &err) != 0); /* 2 + 2 + 2 + 0 */
    CHECK(strstr(err.msg, "--tp 4: the model's vocabulary of 6 tokens leaves the last rank none") !=
          NULL);
    CHECK(tp_plan_make(&p, &c, 2, 1, &err) == 0);
    CHECK_INT_EQ(p.vocab_local, 3);
    c.vocab_size = 7; /* 2 + 2 + 2 + 1: every rank has tokens */
    CHECK(tp_plan_make(&p, &c, 4, 3, &err) == 0);
    CHECK_INT_EQ(p.vocab_local, 1);
}

int main(void)
{
    if (!mkdtemp(dir))
        return test_skip("mkdtemp failed");
    RUN_TEST(test_yarn_and_defaults);
    RUN_TEST(test_refusals);
    RUN_TEST(test_absent_sliding_window);
    RUN_TEST(test_sliding_layers);
    RUN_TEST(test_absent_max_positions);
    RUN_TEST(test_quant_config_types);
    RUN_TEST(test_quant_short_group_tp);
    RUN_TEST(test_harmless_forms_accepted);
    RUN_TEST(test_range_refusals);
    RUN_TEST(test_range_edges_accepted);
    RUN_TEST(test_limits);
    RUN_TEST(test_positions);
    char p[256];
    snprintf(p, sizeof p, "%s/config.json", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/generation_config.json", dir);
    unlink(p);
    rmdir(dir);
    return test_summary();
}

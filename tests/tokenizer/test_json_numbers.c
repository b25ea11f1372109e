/* Issue 20, part 1: any number JSON allows loads in every file of a model
 * directory (config.json, generation_config.json, tokenizer.json,
 * tokenizer_config.json). transformers writes "model_max_length":
 * 1000000000000000019884624838656 into tokenizer_config.json, and Jansson
 * refused it ("too big integer"), stopping every run on such a model; a
 * real past double's range (1e400) was refused the same way. Only the
 * fields the tool uses are range-checked, and those refusals name the file
 * and the key (or the token). The files are written here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "tok_test_dir.h"
#include "model/model_config.h"
#include "tokenizer/tokenizer.h"


#define BIG "1000000000000000019884624838656"
#define HUGE_INT "1" /* 400 digits: past double's range too */                               \
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" \
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" \
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" \
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" \
    "0000"
/* Every JSON number form Jansson refused, in places no one reads. */
#define ODD_NUMBERS "\"n1\":" BIG ",\"n2\":-" BIG ",\"n3\":1e400,\"n4\":-1E+999,\"n5\":" HUGE_INT \
                    ",\"n6\":[" BIG ",{\"x\":1.5e308}],\"n7\":\"" BIG " in a string\",\"n8\":1e-400"

#define CONFIG_BASE "\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":2," \
                    "\"num_attention_heads\":4,\"intermediate_size\":128,\"max_position_embeddings\":4096"

/* A byte-free BPE: "ab" is one token. */
#define TOKENIZER(vocab_b)                                                                      \
    "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null," ODD_NUMBERS                    \
    ",\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":\"<unk>\","                    \
    "\"vocab\":{\"a\":0,\"b\":" vocab_b ",\"ab\":2,\"<unk>\":3},\"merges\":[\"a b\"]},"          \
    "\"added_tokens\":[{\"id\":4,\"content\":\"</s>\",\"special\":true}]}"

static void write_all(const char *config, const char *gen, const char *tok, const char *tok_cfg)
{
    tok_test_write("config.json", config);
    tok_test_write("generation_config.json", gen);
    tok_test_write("tokenizer.json", tok);
    tok_test_write("tokenizer_config.json", tok_cfg);
}

static const char *GOOD_CONFIG = "{" CONFIG_BASE ",\"vocab_size\":5,\"eos_token_id\":4," ODD_NUMBERS "}";
static const char *GOOD_GEN = "{\"eos_token_id\":[4],\"max_length\":" BIG ",\"top_k\":20," ODD_NUMBERS "}";
static const char *GOOD_TOK_CFG = "{\"model_max_length\":" BIG ",\"eos_token\":\"</s>\"," ODD_NUMBERS "}";

static int msg_has(const char *msg, const char *a, const char *b)
{
    int ok = strstr(msg, a) && (!b || strstr(msg, b));
    if (!ok)
        fprintf(stderr, "  message lacks \"%s\"%s%s: %s\n", a, b ? " / " : "", b ? b : "", msg);
    else
        printf("  refused: %s\n", msg);
    return ok;
}

/* The files as published (a 1e30 model_max_length and other huge numbers
 * nobody reads) load, and what the tool reads is as written. */
static void test_huge_numbers_load(void)
{
    write_all(GOOD_CONFIG, GOOD_GEN, TOKENIZER("1"), GOOD_TOK_CFG);
    vb_err err = {{0}};
    model_config c;
    int rc = model_config_load(&c, tok_test_dir, &err);
    CHECK_INT_EQ(rc, 0);
    if (rc)
        fprintf(stderr, "  %s\n", err.msg);
    else {
        CHECK_INT_EQ(c.vocab_size, 5);
        CHECK_INT_EQ(c.n_eos, 1);
        CHECK_INT_EQ(c.eos_token_ids[0], 4);
        CHECK_INT_EQ(c.gen_top_k, 20);
    }
    tokenizer *tok = tokenizer_load(tok_test_dir, &err);
    CHECK(tok != NULL);
    if (!tok) {
        fprintf(stderr, "  %s\n", err.msg);
        return;
    }
    tok_ids ids = {0};
    CHECK_INT_EQ(tokenizer_encode(tok, "ab</s>", 6, false, &ids, &err), 0);
    CHECK_INT_EQ(ids.n, 2);
    if (ids.n == 2) {
        CHECK_INT_EQ(ids.ids[0], 2);
        CHECK_INT_EQ(ids.ids[1], 4);
    }
    free(ids.ids);
    const int32_t *eos = NULL;
    CHECK_INT_EQ(tokenizer_eos_ids(tok, &eos), 1);
    CHECK_STR_EQ(tokenizer_eos_token(tok), "</s>");
    tokenizer_free(tok);
}

/* A huge number in a field the tool uses is refused, naming file and key;
 * an integral real (7.0, 1e30) is not an id; 2^32+3 is never read as 3. */
static void test_used_fields_refused(void)
{
    vb_err err = {{0}};
    model_config c;
    static const struct {
        const char *config, *gen, *needle;
    } cfg_bad[] = {
        {"{" CONFIG_BASE ",\"vocab_size\":" BIG "}", NULL, "vocab_size"},
        {"{" CONFIG_BASE ",\"vocab_size\":" HUGE_INT "}", NULL, "vocab_size"},
        {"{" CONFIG_BASE ",\"vocab_size\":5,\"eos_token_id\":" BIG "}", NULL, "eos_token_id"},
        {"{" CONFIG_BASE ",\"vocab_size\":5,\"eos_token_id\":[1," BIG "]}", NULL, "eos_token_id"},
        {"{" CONFIG_BASE ",\"vocab_size\":5,\"eos_token_id\":4294967299}", NULL, "eos_token_id"},
        {"{" CONFIG_BASE ",\"vocab_size\":5,\"rms_norm_eps\":-1e400}", NULL, "rms_norm_eps"},
        {"{" CONFIG_BASE ",\"vocab_size\":5}", "{\"top_k\":" BIG "}", "top_k"},
        {"{" CONFIG_BASE ",\"vocab_size\":5}", "{\"eos_token_id\":1e400}", "eos_token_id"},
        {"{" CONFIG_BASE ",\"vocab_size\":5}", "{\"temperature\":1e400}", "temperature"},
    };
    write_all(NULL, NULL, NULL, NULL);
    for (size_t i = 0; i < sizeof cfg_bad / sizeof cfg_bad[0]; i++) {
        write_all(cfg_bad[i].config, cfg_bad[i].gen, NULL, NULL);
        memset(&err, 0, sizeof err);
        int rc = model_config_load(&c, tok_test_dir, &err);
        CHECK_INT_EQ(rc, -1);
        if (rc == -1)
            CHECK(msg_has(err.msg, cfg_bad[i].gen ? "generation_config.json" : "config.json", cfg_bad[i].needle));
    }
    /* bos_token_id is stored, never used: 2^32+3 must not become id 3. */
    write_all("{" CONFIG_BASE ",\"vocab_size\":5,\"bos_token_id\":4294967299}", NULL, NULL, NULL);
    CHECK_INT_EQ(model_config_load(&c, tok_test_dir, &err), 0);
    CHECK(c.bos_token_id != 3);

    static const struct {
        const char *b, *needle;
    } ids_bad[] = {{BIG, "is not a token id"}, {"1e30", "1e30"}, {"7.0", "7.0"},
                   {"-" BIG, "is not a token id"}, {HUGE_INT, "is not a token id"}};
    for (size_t i = 0; i < sizeof ids_bad / sizeof ids_bad[0]; i++) {
        char json[4096];
        snprintf(json, sizeof json,
                 "{\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"vocab\":{\"a\":0,\"b\":%s,\"ab\":2,"
                 "\"<unk>\":3},\"merges\":[]}}",
                 ids_bad[i].b);
        write_all(NULL, NULL, json, NULL);
        memset(&err, 0, sizeof err);
        tokenizer *tok = tokenizer_load(tok_test_dir, &err);
        CHECK(tok == NULL);
        if (tok)
            tokenizer_free(tok);
        else
            CHECK(msg_has(err.msg, "tokenizer.json: model.vocab 'b'", ids_bad[i].needle));
    }
    write_all(NULL, "{\"eos_token_id\":[" BIG "]}", TOKENIZER("1"), GOOD_TOK_CFG);
    memset(&err, 0, sizeof err);
    tokenizer *tok = tokenizer_load(tok_test_dir, &err);
    CHECK(tok == NULL);
    if (tok)
        tokenizer_free(tok);
    else
        CHECK(msg_has(err.msg, "generation_config.json", "eos_token_id"));
    write_all(NULL, NULL, NULL, NULL);
}

int main(void)
{
    tok_test_dir_make("vb_test_jsonnum");
    RUN_TEST(test_huge_numbers_load);
    RUN_TEST(test_used_fields_refused);
    tok_test_dir_remove();
    return test_summary();
}

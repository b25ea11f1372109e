/* Tokenizer components without files from outside (issue 20, part 2): a
 * component we do not implement is refused at load with its name, never
 * approximated; and a few behaviours pinned on tiny tokenizers whose ids
 * follow from HF's rules by hand-checkable steps (the large comparison
 * against HF is tokenizer_parity):
 *   - a byte-level vocab lacking a byte drops it when there is no unk
 *     token (HF's BPE merge_word), and gives unk (fused) when there is;
 *   - Digits(individual_digits) then ByteLevel: two steps in a row;
 *   - Lowercase maps U+0130 to "i\u0307", as Rust's char::to_lowercase;
 *   - a NUL character is encoded like any other byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tokenizer.h"

/* Byte-level vocab: 'a' 'b' '1' '2' ' ' (as U+0120) and NUL (as U+0100),
 * "ab", and byte 'c' missing. */
#define BL_VOCAB "{\"a\":0,\"b\":1,\"1\":2,\"2\":3,\"\\u0120\":4,\"\\u0100\":5,\"ab\":6,\"<unk>\":7}"

static tokenizer *load(const char *normalizer, const char *pre, const char *model_extra, vb_err *err)
{
    char json[4096];
    snprintf(json, sizeof json,
             "{\"normalizer\":%s,\"pre_tokenizer\":%s,\"decoder\":{\"type\":\"ByteLevel\"},"
             "\"model\":{\"type\":\"BPE\",\"vocab\":" BL_VOCAB ",\"merges\":[\"a b\"]%s}}",
             normalizer, pre, model_extra);
    return tokenizer_load_json(json, strlen(json), "tokenizer.json", err);
}

static void expect_ids(tokenizer *tok, const char *text, size_t len, const int32_t *want, size_t n)
{
    tok_ids v = {0};
    vb_err err = {{0}};
    CHECK_INT_EQ(tokenizer_encode(tok, text, len, false, &v, &err), 0);
    CHECK_INT_EQ(v.n, n);
    for (size_t i = 0; i < n && i < v.n; i++)
        CHECK_INT_EQ(v.ids[i], want[i]);
    free(v.ids);
}

#define BL "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true}"

static void test_missing_byte_and_digits(void)
{
    vb_err err = {{0}};
    tokenizer *tok = load("null", "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Digits\","
                                  "\"individual_digits\":true}," BL "]}", "", &err);
    CHECK(tok != NULL);
    if (!tok) {
        fprintf(stderr, "  %s\n", err.msg);
        return;
    }
    /* "abc12": c has no token and no unk: dropped; 1 and 2 apart */
    expect_ids(tok, "abc12", 5, (const int32_t[]){6, 2, 3}, 3);
    /* NUL is a byte like any other */
    expect_ids(tok, "a\0b", 3, (const int32_t[]){0, 5, 1}, 3);
    tokenizer_free(tok);

    tok = load("null", BL, ",\"unk_token\":\"<unk>\",\"fuse_unk\":true", &err);
    CHECK(tok != NULL);
    if (tok) { /* "acccb": the c's become one fused unk */
        expect_ids(tok, "acccb", 5, (const int32_t[]){0, 7, 1}, 3);
        tokenizer_free(tok);
    }
}

static void test_lowercase_dotted_i(void)
{
    size_t n = 0;
    char *s = tok_lowercase("\xC4\xB0I\xCE\xA3", 5, &n); /* İ I Σ */
    CHECK(s != NULL);
    if (s) {
        CHECK_INT_EQ(n, 6);
        CHECK(memcmp(s, "i\xCC\x87i\xCF\x83", 6) == 0);
    }
    free(s);
}

static void expect_refused(const char *normalizer, const char *pre, const char *extra, const char *needle)
{
    vb_err err = {{0}};
    tokenizer *tok = load(normalizer, pre, extra, &err);
    CHECK(tok == NULL);
    if (tok) {
        fprintf(stderr, "  loaded; should be refused naming %s\n", needle);
        tokenizer_free(tok);
    } else if (!strstr(err.msg, needle)) {
        fprintf(stderr, "  message lacks \"%s\": %s\n", needle, err.msg);
        CHECK(0);
    } else {
        printf("  refused: %s\n", err.msg);
    }
}

static void test_unsupported_refused(void)
{
    expect_refused("{\"type\":\"BertNormalizer\"}", "null", "", "normalizer 'BertNormalizer'");
    expect_refused("{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},{\"type\":\"Precompiled\"}]}",
                   "null", "", "normalizer 'Precompiled'");
    expect_refused("{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" +\"},\"content\":\" \"}", "null", "",
                   "Replace with a regex");
    expect_refused("null", "{\"type\":\"BertPreTokenizer\"}", "", "pre_tokenizer 'BertPreTokenizer'");
    expect_refused("null", "{\"type\":\"UnicodeScripts\"}", "", "pre_tokenizer 'UnicodeScripts'");
    expect_refused("null", "{\"type\":\"CharDelimiterSplit\",\"delimiter\":\" \"}", "",
                   "pre_tokenizer 'CharDelimiterSplit'");
    expect_refused("null", "{\"type\":\"Sequence\",\"pretokenizers\":[" BL ",{\"type\":\"Digits\"}]}", "",
                   "pre_tokenizer 'Digits' after ByteLevel");
    expect_refused("null", "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"a\"},\"behavior\":\"Sideways\"}", "",
                   "behavior 'Sideways'");
    expect_refused("null", BL, ",\"dropout\":0.1", "dropout");
    expect_refused("null", BL, ",\"continuing_subword_prefix\":\"##\"", "continuing_subword_prefix");
}

int main(void)
{
    RUN_TEST(test_missing_byte_and_digits);
    RUN_TEST(test_lowercase_dotted_i);
    RUN_TEST(test_unsupported_refused);
    return test_summary();
}

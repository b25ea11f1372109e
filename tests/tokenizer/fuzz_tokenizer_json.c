/* libFuzzer target for the tokenizer.json loader: any byte string is
 * loaded as a tokenizer.json (tokenizer_load_json, no config files). One
 * that loads must then encode a few strings, and the file's own first bytes
 * as text, to ids that are all in its vocabulary, which decode whole, one
 * at a time through tok_stream, and with special tokens skipped. A broken
 * promise aborts, so libFuzzer keeps the input; ASan and UBSan check the
 * memory and arithmetic along the way.
 *
 * Built and run by scripts/fuzz-tokenizer; seeds in tests/tokenizer/fuzz_corpus. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *text)
{
    fprintf(stderr, "fuzz_tokenizer_json: %s (text \"%s\")\n", what, text);
    abort();
}

/* Streams ids back to text one at a time, as generate does. */
static void stream_all(const tokenizer *tok, const tok_ids *ids, bool skip_special, const char *text)
{
    tok_stream s;
    tok_stream_init(&s, tok, skip_special);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (size_t i = 0; i < ids->n; i++)
        if (tok_stream_push(&s, ids->ids[i], &buf, &len, &cap) < 0)
            fail("an encoded id does not stream", text);
    if (tok_stream_finish(&s, &buf, &len, &cap) < 0)
        fail("tok_stream_finish failed", text);
    if (buf && buf[len] != 0)
        fail("streamed text is not NUL-terminated", text);
    free(buf);
}

static void round_trip(const tokenizer *tok, const char *text, size_t n)
{
    tok_ids ids = {0};
    vb_err err;
    for (int add_special = 0; add_special < 2; add_special++) {
        ids.n = 0;
        if (tokenizer_encode(tok, text, n, add_special, &ids, &err) != 0)
            continue; /* invalid UTF-8, or a character the vocabulary lacks */
        for (size_t i = 0; i < ids.n; i++)
            if (ids.ids[i] < 0 || ids.ids[i] >= tokenizer_vocab_size(tok))
                fail("encode gave an id outside the vocabulary", text);
        for (int skip = 0; skip < 2; skip++) {
            char *out = NULL;
            size_t out_len = 0;
            if (tokenizer_decode(tok, ids.ids, ids.n, skip, &out, &out_len, &err) != 0)
                fail("an encoded id does not decode", text);
            free(out);
            stream_all(tok, &ids, skip, text);
        }
    }
    free(ids.ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vb_err err;
    tokenizer *tok = tokenizer_load_json((const char *)data, size, "fuzz/tokenizer.json", &err);
    if (!tok)
        return 0;
    static const char *const texts[] = {
        "Hello, world! \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xF0\x9F\x8C\x85", /* 日本語 🌅 */
        "  spaces\tand\nnewlines  ",
        "<s>a</s><|im_start|>user\nhi<|im_end|>",
        "e\xCC\x81 \xE2\x84\xAB \xEF\xAC\x81", /* NFC-sensitive */
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "",
        "bad \xC3\x28 utf-8", /* refused by encode, never a crash */
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        round_trip(tok, texts[i], strlen(texts[i]));
    /* The file's own bytes as text: the fuzzer's mutations reach the encoder. */
    size_t n = size < 256 ? size : 256;
    char *own = malloc(n + 1);
    if (own) {
        memcpy(own, data, n);
        own[n] = 0;
        round_trip(tok, own, n);
        free(own);
    }
    /* Ids just outside the vocabulary are refused, not read. */
    int32_t edge[] = {-1, tokenizer_vocab_size(tok), INT32_MAX, INT32_MIN};
    char *out = NULL;
    size_t out_len = 0;
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) {
        if (tokenizer_decode(tok, &edge[i], 1, false, &out, &out_len, &err) == 0)
            fail("an id outside the vocabulary decoded", "");
        tokenizer_is_special(tok, edge[i]);
    }
    tokenizer_token_id(tok, "<s>");
    tokenizer_free(tok);
    return 0;
}

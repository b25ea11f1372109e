/* Parts of src/tokenizer that need no tokenizer files: NFC (reference:
 * Python's unicodedata.normalize('NFC'), values written out below), UTF-8
 * validation and lossy repair (reference: Rust from_utf8_lossy semantics),
 * and stop strings split across chunks. Exact comparisons throughout. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tokenizer/stop.h"
#include "tokenizer/tok_internal.h"

static void check_nfc(const char *in, const char *want)
{
    size_t n;
    char *out = tok_nfc(in, strlen(in), &n);
    CHECK_STR_EQ(out, want);
    CHECK_INT_EQ(n, strlen(want));
    free(out);
}

static void test_nfc(void)
{
    check_nfc("plain ascii", "plain ascii");
    check_nfc("e\xCC\x81", "\xC3\xA9");                     /* e + U+0301 -> é */
    check_nfc("A\xCC\x8A", "\xC3\x85");                     /* A + ring -> Å */
    check_nfc("\xE2\x84\xAB", "\xC3\x85");                  /* U+212B ANGSTROM SIGN -> Å (singleton) */
    check_nfc("a\xCC\x80\xCC\x96" "b", "\xC3\xA0\xCC\x96" "b"); /* reorder: grave(230) after below(220), then compose */
    check_nfc("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8", "\xEA\xB0\x81"); /* Hangul L V T -> 각 */
    check_nfc("\xEA\xB0\x81", "\xEA\xB0\x81");
    check_nfc("\xEF\xAC\x81", "\xEF\xAC\x81");              /* ligature fi: NFC keeps it (NFKC would not) */
    check_nfc("\xE0\xA4\xA8\xE0\xA4\xBC", "\xE0\xA4\xA9");  /* Devanagari NA + nukta -> U+0929 */
    check_nfc("\xE0\xA5\x98", "\xE0\xA4\x95\xE0\xA4\xBC");  /* U+0958 is a composition exclusion */
}

static void test_utf8(void)
{
    CHECK_INT_EQ(tok_utf8_check("abc", 3), 3);
    CHECK_INT_EQ(tok_utf8_check("a\xC0\x80", 3), 1);        /* overlong */
    CHECK_INT_EQ(tok_utf8_check("\xED\xA0\x80", 3), 0);     /* surrogate */
    CHECK_INT_EQ(tok_utf8_check("\xF4\x90\x80\x80", 4), 0); /* > U+10FFFF */
    CHECK_INT_EQ(tok_utf8_check("\xF0\x9F\x98\x80", 4), 4);
    size_t n;
    char *s = tok_utf8_lossy("a\xF0\x9F\x98" "b", 5, &n);    /* cut 4-byte char: one U+FFFD */
    CHECK_STR_EQ(s, "a\xEF\xBF\xBD" "b");
    free(s);
    s = tok_utf8_lossy("\xFF\xFE", 2, &n);
    CHECK_STR_EQ(s, "\xEF\xBF\xBD\xEF\xBF\xBD");
    free(s);
}

static void test_stop_across_chunks(void)
{
    const char *stops[] = {"<|end|>", "\n\nUser:"};
    stop_matcher m;
    CHECK_INT_EQ(stop_matcher_init(&m, stops, 2), 0);
    size_t at = 0;
    CHECK(!stop_matcher_feed(&m, "Hello <|e", 9, &at));
    CHECK_INT_EQ(stop_matcher_safe_len(&m), 6); /* "<|e" might start a stop */
    CHECK(!stop_matcher_feed(&m, "n", 1, &at));
    CHECK(stop_matcher_feed(&m, "d|> tail", 8, &at));
    CHECK_INT_EQ(at, 6);
    stop_matcher_free(&m);

    CHECK_INT_EQ(stop_matcher_init(&m, stops, 2), 0);
    const char *pieces[] = {"answer", "\n", "\nUs", "er", ":"};
    bool hit = false;
    for (int i = 0; i < 5 && !hit; i++)
        hit = stop_matcher_feed(&m, pieces[i], strlen(pieces[i]), &at);
    CHECK(hit);
    CHECK_INT_EQ(at, 6);
    stop_matcher_free(&m);

    CHECK_INT_EQ(stop_matcher_init(&m, NULL, 0), 0); /* no stops: never stops, all safe */
    CHECK(!stop_matcher_feed(&m, "abc", 3, &at));
    CHECK_INT_EQ(stop_matcher_safe_len(&m), 3);
    stop_matcher_free(&m);

    int32_t eos[] = {151645, 151643};
    CHECK(stop_is_eos(eos, 2, 151643, false));
    CHECK(!stop_is_eos(eos, 2, 151643, true));
    CHECK(!stop_is_eos(eos, 2, 42, false));
}

int main(void)
{
    RUN_TEST(test_nfc);
    RUN_TEST(test_utf8);
    RUN_TEST(test_stop_across_chunks);
    return test_summary();
}

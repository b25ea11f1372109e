/* Parts of src/tokenizer that need no tokenizer files: NFC (reference:
 * Python's unicodedata.normalize('NFC'), values written out below), UTF-8
 * validation and lossy repair (reference: Rust from_utf8_lossy semantics),
 * and stop strings split across chunks. Exact comparisons throughout. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* One long run of combining marks out of canonical order: "a" and 300,000
 * pairs U+0301 (class 230) U+0316 (class 220). NFC puts every U+0316
 * first (a stable sort by class), then composes a + U+0301 -> U+00E1, as
 * Python's unicodedata does. utf8proc's ordering moved one mark a step at
 * a time: about 30 s for 100,000 pairs (Qwen2.5's tokenizer is NFC), 9x
 * that for 300,000; HF tokenizers takes 0.1 s. The bound is CPU time,
 * some hundred times what the sort needs. */
static void test_nfc_long_mark_run(void)
{
    enum { PAIRS = 300000 };
    char *in = malloc(1 + 4 * (size_t)PAIRS);
    size_t n = 0;
    in[n++] = 'a';
    for (int i = 0; i < PAIRS; i++) {
        memcpy(in + n, "\xCC\x81\xCC\x96", 4);
        n += 4;
    }
    clock_t t0 = clock();
    size_t out_n = 0;
    char *out = tok_nfc(in, n, &out_n);
    double cpu_s = (double)(clock() - t0) / CLOCKS_PER_SEC;
    CHECK(out != NULL);
    CHECK_INT_EQ(out_n, 2 + 4 * (size_t)PAIRS - 2);
    bool ok = out && memcmp(out, "\xC3\xA1", 2) == 0;
    for (size_t i = 0; ok && i < PAIRS; i++)
        ok = memcmp(out + 2 + 2 * i, "\xCC\x96", 2) == 0;
    for (size_t i = 0; ok && i + 1 < PAIRS; i++)
        ok = memcmp(out + 2 + 2 * (size_t)PAIRS + 2 * i, "\xCC\x81", 2) == 0;
    CHECK(ok);
    CHECK(cpu_s < 20.0);
    free(out);
    free(in);
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

/* Decoded in pieces as tok_stream does (a cut sequence carried into the
 * next piece), any byte string gives the text of decoding it at once, U+FFFD
 * for U+FFFD: a streamed completion (the one --stop reads) used to give one
 * U+FFFD for a whole bad sequence such as ED A0 (a surrogate's first two
 * bytes) where the whole decode gives two (session 31). */
static char *lossy_in_pieces(const char *s, size_t len, const size_t *cuts, int n_cuts)
{
    char *out = malloc(3 * len + 8), carry[8];
    size_t o = 0, nc = 0, at = 0;
    for (int k = 0; k <= n_cuts; k++) {
        size_t end = k < n_cuts ? cuts[k] : len;
        char piece[64];
        size_t m = nc + (end - at);
        memcpy(piece, carry, nc);
        memcpy(piece + nc, s + at, end - at);
        size_t used = tok_utf8_lossy_into(piece, m, k == n_cuts, out, &o);
        nc = m - used;
        CHECK(nc <= 3);
        memcpy(carry, piece + used, nc);
        at = end;
    }
    CHECK_INT_EQ(nc, 0);
    out[o] = 0;
    return out;
}

static void test_utf8_in_pieces(void)
{
    size_t cut = 9, n;
    char *want = tok_utf8_lossy("position\xED\xA0| cap", 15, &n);
    char *got = lossy_in_pieces("position\xED\xA0| cap", 15, &cut, 1);
    CHECK_STR_EQ(got, want);
    CHECK_STR_EQ(want, "position\xEF\xBF\xBD\xEF\xBF\xBD| cap");
    free(want);
    free(got);
    static const unsigned char alphabet[] = {'a',  0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0,
                                             0xC2, 0xDF, 0xE0, 0xE2, 0xED, 0xEF, 0xF0, 0xF4,
                                             0xF5, 0xFF, 0x82, 0xAC};
    unsigned state = 12345u;
    int bad = 0;
    for (int trial = 0; trial < 20000; trial++) {
        char s[24];
        state = state * 1103515245u + 12345u;
        size_t len = 1 + (state >> 16) % 20;
        for (size_t i = 0; i < len; i++) {
            state = state * 1103515245u + 12345u;
            s[i] = (char)alphabet[(state >> 16) % sizeof alphabet];
        }
        size_t cuts[8];
        int n_cuts = 0;
        for (size_t i = 1; i < len && n_cuts < 8; i++) {
            state = state * 1103515245u + 12345u;
            if ((state >> 16) % 3 == 0)
                cuts[n_cuts++] = i;
        }
        want = tok_utf8_lossy(s, len, &n);
        got = lossy_in_pieces(s, len, cuts, n_cuts);
        bad += strcmp(want, got) != 0;
        free(want);
        free(got);
    }
    CHECK_INT_EQ(bad, 0);
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
    /* a peek sees what feeding would, and feeds nothing */
    CHECK(!stop_matcher_peek(&m, "d|", 2, &at));
    CHECK(stop_matcher_peek(&m, "d|>", 3, &at));
    CHECK_INT_EQ(at, 6);
    at = 0;
    CHECK(!stop_matcher_peek(&m, "", 0, &at));
    CHECK_INT_EQ(stop_matcher_safe_len(&m), 6);
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
    RUN_TEST(test_nfc_long_mark_run);
    RUN_TEST(test_utf8);
    RUN_TEST(test_utf8_in_pieces);
    RUN_TEST(test_stop_across_chunks);
    return test_summary();
}

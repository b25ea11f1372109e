/* UTF-8 validation and lossy repair for the tokenizer: prompts must be valid
 * UTF-8 (else the row is an error), and decoded ids may not be (a sampled
 * byte token alone), where HF writes U+FFFD per bad subsequence. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

int tok_utf8_seq_len(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return 2;
    if (c >= 0xE0 && c <= 0xEF)
        return 3;
    if (c >= 0xF0 && c <= 0xF4)
        return 4;
    return 0;
}

/* Length of the valid sequence at s (1..4), or 0, with the strict second-byte
 * ranges (no overlongs, no surrogates, nothing past U+10FFFF). */
static int valid_seq(const unsigned char *s, size_t avail, int *maximal_bad)
{
    int n = tok_utf8_seq_len(s[0]);
    *maximal_bad = 1;
    if (n == 0)
        return 0;
    if (n == 1)
        return 1;
    unsigned char lo = 0x80, hi = 0xBF;
    if (s[0] == 0xE0) lo = 0xA0;
    else if (s[0] == 0xED) hi = 0x9F;
    else if (s[0] == 0xF0) lo = 0x90;
    else if (s[0] == 0xF4) hi = 0x8F;
    for (int i = 1; i < n; i++) {
        if ((size_t)i >= avail)
            { *maximal_bad = i; return 0; }
        unsigned char c = s[i];
        if (i == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF))
            { *maximal_bad = i; return 0; }
    }
    return n;
}

size_t tok_utf8_check(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        if (s[i] < 0x80) { i++; continue; }
        int bad, n = valid_seq(s + i, len - i, &bad);
        if (n == 0)
            return i;
        i += (size_t)n;
    }
    return len;
}

size_t tok_utf8_lossy_into(const char *str, size_t len, bool final, char *out, size_t *out_len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t o = *out_len, i = 0;
    while (i < len) {
        int bad, n = valid_seq(s + i, len - i, &bad);
        if (n > 0) {
            memcpy(out + o, s + i, (size_t)n);
            o += (size_t)n;
            i += (size_t)n;
            continue;
        }
        /* a lead whose sequence is valid so far but runs past the bytes
         * there are: the next bytes decide, unless there will be none */
        if (!final && tok_utf8_seq_len(s[i]) > 1 && i + (size_t)bad == len)
            break;
        memcpy(out + o, "\xEF\xBF\xBD", 3);
        o += 3;
        i += (size_t)bad;
    }
    *out_len = o;
    return i;
}

char *tok_utf8_lossy(const char *str, size_t len, size_t *out_len)
{
    char *out = malloc(3 * len + 1); /* each bad byte becomes at most 3 */
    if (!out)
        return NULL;
    size_t o = 0;
    tok_utf8_lossy_into(str, len, true, out, &o);
    out[o] = 0;
    if (out_len)
        *out_len = o;
    return out;
}

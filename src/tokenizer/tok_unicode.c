/* Unicode normalization forms and lowercase for the normalizers, from
 * utf8proc: a maintained library that follows Unicode releases, in place
 * of tables of our own. ASCII is unchanged by every form (and by lowercase
 * but for A-Z), and that is most text, so it skips the library. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/tok_internal.h"

static bool all_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return false;
    return true;
}

static char *copy(const char *s, size_t n, size_t *out_len)
{
    char *o = malloc(n + 1);
    if (o) {
        memcpy(o, s, n);
        o[n] = 0;
        *out_len = n;
    }
    return o;
}

char *tok_unicode_form(tok_norm_kind form, const char *s, size_t len, size_t *out_len)
{
    if (all_ascii(s, len))
        return copy(s, len, out_len);
    int opt = UTF8PROC_STABLE;
    switch (form) {
    case NORM_NFC: opt |= UTF8PROC_COMPOSE; break;
    case NORM_NFD: opt |= UTF8PROC_DECOMPOSE; break;
    case NORM_NFKC: opt |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    case NORM_NFKD: opt |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
    default: return NULL;
    }
    utf8proc_uint8_t *out = NULL;
    /* an explicit length, so a NUL character is text like any other */
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &out,
                                      (utf8proc_option_t)opt);
    if (n < 0)
        return NULL; /* out of memory; the text was checked to be UTF-8 */
    *out_len = (size_t)n;
    return (char *)out;
}

char *tok_nfc(const char *s, size_t len, size_t *out_len)
{
    return tok_unicode_form(NORM_NFC, s, len, out_len);
}

/* HF's Lowercase is Rust's char::to_lowercase on each character: the
 * simple mapping (utf8proc_tolower) except where SpecialCasing.txt has an
 * unconditional one, which for lowercase is only U+0130 (I with dot above
 * -> i + U+0307). No context: a final sigma stays σ, as in HF. */
char *tok_lowercase(const char *s, size_t len, size_t *out_len)
{
    char *o = malloc(2 * len + 1); /* a lowercase letter is never more than 2x the bytes (U+0130: 2 -> 3) */
    if (!o)
        return NULL;
    size_t w = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            o[w++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            i++;
            continue;
        }
        utf8proc_int32_t cp;
        utf8proc_ssize_t l = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &cp);
        if (l <= 0) { /* cannot happen on checked text; copy the byte */
            o[w++] = (char)c;
            i++;
            continue;
        }
        i += (size_t)l;
        if (cp == 0x130) {
            w += (size_t)utf8proc_encode_char('i', (utf8proc_uint8_t *)o + w);
            w += (size_t)utf8proc_encode_char(0x307, (utf8proc_uint8_t *)o + w);
        } else {
            w += (size_t)utf8proc_encode_char(utf8proc_tolower(cp), (utf8proc_uint8_t *)o + w);
        }
    }
    o[w] = 0;
    *out_len = w;
    return o;
}

/* Rust's char::is_whitespace, the Unicode White_Space property (PropList;
 * unchanged since Unicode 6.3), which HF's Strip strips. */
bool tok_is_white_space(uint32_t cp)
{
    return (cp >= 0x9 && cp <= 0xD) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
}

/* Length of the character at s[i] and its code point (s is valid UTF-8). */
size_t tok_utf8_next(const char *s, size_t len, size_t i, uint32_t *cp)
{
    utf8proc_int32_t c;
    utf8proc_ssize_t l = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &c);
    if (l <= 0) {
        *cp = (unsigned char)s[i];
        return 1;
    }
    *cp = (uint32_t)c;
    return (size_t)l;
}

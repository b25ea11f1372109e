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

/* Puts each maximal run of combining marks (canonical combining class
 * above 0) of buf[0..n) in canonical order: a stable sort by class, as
 * Unicode's canonical ordering is. utf8proc's own ordering is a gnome sort
 * that swaps one mark at a time, so text made of one long run of marks
 * out of order ("a" and 100,000 pairs of U+0301 U+0316, a 400 KB prompt)
 * took 29 s (HF tokenizers: 0.1 s) and grew with the square of the run.
 * Here a run is insertion-sorted when short (almost all text) and
 * counting-sorted by class (256 values) when long. tmp holds n entries. */
static void canonical_order(utf8proc_int32_t *buf, size_t n, utf8proc_int32_t *tmp)
{
    for (size_t i = 0; i < n;) {
        if (utf8proc_get_property(buf[i])->combining_class == 0) {
            i++;
            continue;
        }
        size_t e = i;
        while (e < n && utf8proc_get_property(buf[e])->combining_class != 0)
            e++;
        if (e - i <= 32) {
            for (size_t a = i + 1; a < e; a++) {
                utf8proc_int32_t c = buf[a];
                int cc = utf8proc_get_property(c)->combining_class;
                size_t b = a;
                for (; b > i && utf8proc_get_property(buf[b - 1])->combining_class > cc; b--)
                    buf[b] = buf[b - 1];
                buf[b] = c;
            }
        } else {
            size_t start[257] = {0};
            for (size_t a = i; a < e; a++)
                start[utf8proc_get_property(buf[a])->combining_class + 1]++;
            for (int c = 1; c <= 256; c++)
                start[c] += start[c - 1];
            for (size_t a = i; a < e; a++)
                tmp[start[utf8proc_get_property(buf[a])->combining_class]++] = buf[a];
            memcpy(buf + i, tmp, (e - i) * sizeof *buf);
        }
        i = e;
    }
}

/* utf8proc_map's steps with canonical_order in place of its ordering:
 * each code point decomposed (utf8proc_decompose_char), the marks put in
 * order, then composed and written back as UTF-8 (utf8proc_reencode, in
 * the same buffer, as utf8proc_map does). The text is valid UTF-8. */
static char *unicode_map(const char *s, size_t len, int opt, size_t *out_len)
{
    size_t cap = len + 16, n = 0;
    utf8proc_int32_t *buf = malloc(cap * sizeof *buf), *tmp = NULL;
    for (size_t i = 0; buf && i < len;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t l = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &cp);
        if (l <= 0)
            goto fail;
        i += (size_t)l;
        for (;;) {
            int boundclass = 0;
            /* one entry kept free: utf8proc_reencode writes a NUL past the text */
            utf8proc_ssize_t k = utf8proc_decompose_char(cp, buf + n, (utf8proc_ssize_t)(cap - n - 1),
                                                         (utf8proc_option_t)opt, &boundclass);
            if (k < 0)
                goto fail;
            if ((size_t)k < cap - n) {
                n += (size_t)k;
                break;
            }
            utf8proc_int32_t *p = realloc(buf, 2 * (cap + (size_t)k) * sizeof *buf);
            if (!p)
                goto fail;
            buf = p;
            cap = 2 * (cap + (size_t)k);
        }
    }
    if (!buf || !(tmp = malloc((n ? n : 1) * sizeof *tmp)))
        goto fail;
    canonical_order(buf, n, tmp);
    free(tmp);
    /* UTF-8 takes at most 4 bytes a code point: it fits where they were,
     * the NUL in the entry kept free */
    utf8proc_ssize_t m = utf8proc_reencode(buf, (utf8proc_ssize_t)n, (utf8proc_option_t)opt);
    if (m < 0)
        goto fail;
    char *out = realloc(buf, (size_t)m + 1);
    if (!out)
        out = (char *)buf;
    *out_len = (size_t)m;
    return out;
fail:
    free(buf);
    return NULL;
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
    /* an explicit length, so a NUL character is text like any other; NULL:
     * out of memory (the text was checked to be UTF-8) */
    return unicode_map(s, len, opt, out_len);
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

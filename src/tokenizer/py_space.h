/* Python's str.isspace() on UTF-8, as Jinja's trim / .strip() / .split()
 * and the chat templates' stripping see whitespace: the ASCII ones, the
 * information separators 0x1C-0x1F, and the Unicode White_Space / bidi
 * whitespace characters. Shared by the Jinja interpreter (jinja_*.c) and
 * the built-in chat templates (chat_template.c). */
#ifndef VB_TOKENIZER_PY_SPACE_H
#define VB_TOKENIZER_PY_SPACE_H

#include <stddef.h>

/* Bytes of the whitespace character at str[0..n), or 0 when there is none. */
static inline size_t py_space_len(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    if (n == 0)
        return 0;
    if (s[0] == ' ' || (s[0] >= 0x09 && s[0] <= 0x0D) || (s[0] >= 0x1C && s[0] <= 0x1F))
        return 1;
    if (n >= 2 && s[0] == 0xC2 && (s[1] == 0x85 || s[1] == 0xA0))
        return 2;
    if (n >= 3 && s[0] == 0xE1 && s[1] == 0x9A && s[2] == 0x80)
        return 3;
    if (n >= 3 && s[0] == 0xE2 && s[1] == 0x80 &&
        ((s[2] >= 0x80 && s[2] <= 0x8A) || s[2] == 0xA8 || s[2] == 0xA9 || s[2] == 0xAF))
        return 3;
    if (n >= 3 && s[0] == 0xE2 && s[1] == 0x81 && s[2] == 0x9F)
        return 3;
    if (n >= 3 && s[0] == 0xE3 && s[1] == 0x80 && s[2] == 0x80)
        return 3;
    return 0;
}

/* Python's str.lstrip() with no argument: the bytes of leading whitespace. */
static inline size_t py_lstrip_off(const char *s, size_t n)
{
    size_t i = 0, w;
    while ((w = py_space_len(s + i, n - i)) > 0)
        i += w;
    return i;
}

/* Python's str.rstrip() with no argument: the length that remains. */
static inline size_t py_rstrip_len(const char *s, size_t n)
{
    for (;;) {
        size_t w = 0; /* the trailing character's width: try each */
        for (size_t k = 1; k <= 3 && k <= n && !w; k++)
            if (py_space_len(s + n - k, k) == k)
                w = k;
        if (!w)
            return n;
        n -= w;
    }
}

#endif

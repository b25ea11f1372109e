/* A growable byte buffer: malloc'd, always NUL-terminated, with an oom
 * flag instead of a status per call, so a writer appends freely and checks
 * once at the end. The Jinja interpreter builds its output and strings in
 * it (jinja_*.c), the built-in chat templates their text
 * (chat_template.c). Zero-initialise; free p. */
#ifndef VB_TOKENIZER_JBUF_H
#define VB_TOKENIZER_JBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct jbuf {
    char *p;
    size_t n, cap;
    bool oom;
} jbuf;

/* Appends s[0..n) (which may hold NUL bytes); sets oom and keeps what it
 * had when it cannot grow. */
void jbuf_put(jbuf *b, const char *s, size_t n);
static inline void jbuf_puts(jbuf *b, const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    jbuf_put(b, s, n);
}

#endif

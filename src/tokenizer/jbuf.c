/* The growable byte buffer; see jbuf.h. */
#include "tokenizer/jbuf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void jbuf_put(jbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (n > SIZE_MAX / 4 || b->n + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < b->n + n + 1) {
            if (c > SIZE_MAX / 4) {
                b->oom = true;
                return;
            }
            c *= 2;
        }
        char *p = realloc(b->p, c);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = c;
    }
    if (n)
        memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

/* Whether bytes are valid UTF-8, by utf8proc (already linked for the
 * tokenizer's normalizers). Text from the command line and file paths go
 * into the run settings, which are JSON: jansson refuses other bytes. */
#ifndef VB_UTIL_UTF8_VALID_H
#define VB_UTIL_UTF8_VALID_H

#include <stdbool.h>
#include <stddef.h>

/* True when s[0..n) is valid UTF-8; else false and *bad_at (if not NULL)
 * the offset of the first byte that is not. */
bool vb_utf8_valid(const char *s, size_t n, size_t *bad_at);

#endif

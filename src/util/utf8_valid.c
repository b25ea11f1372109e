/* UTF-8 validity by utf8proc; see utf8_valid.h. */
#include "util/utf8_valid.h"

#include <utf8proc.h>

bool vb_utf8_valid(const char *s, size_t n, size_t *bad_at)
{
    size_t at = 0;
    while (at < n) {
        utf8proc_int32_t cp;
        const utf8proc_ssize_t len =
            utf8proc_iterate((const utf8proc_uint8_t *)s + at, (utf8proc_ssize_t)(n - at), &cp);
        if (len <= 0) {
            if (bad_at)
                *bad_at = at;
            return false;
        }
        at += (size_t)len;
    }
    return true;
}

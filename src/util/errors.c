/* Error values with one-line messages; see errors.h. */
#include "util/errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int vb_err_set(vb_err *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int vb_err_prefix(vb_err *err, const char *fmt, ...)
{
    if (err) {
        char prefix[VB_ERR_LEN];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof prefix, fmt, ap);
        va_end(ap);
        /* Shift the old message right and write "prefix: " in front; the
         * tail is cut when the whole line no longer fits. */
        size_t pl = strlen(prefix);
        if (pl > sizeof err->msg - 3)
            pl = sizeof err->msg - 3;
        memmove(err->msg + pl + 2, err->msg, sizeof err->msg - pl - 2);
        err->msg[sizeof err->msg - 1] = '\0';
        memcpy(err->msg, prefix, pl);
        err->msg[pl] = ':';
        err->msg[pl + 1] = ' ';
    }
    return -1;
}

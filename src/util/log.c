/* Rank-prefixed messages on stderr; see log.h. */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>

static int log_rank = -1;

void vb_log_set_rank(int world_rank, int world_size)
{
    log_rank = world_size > 1 ? world_rank : -1;
}

static void vb_vlog(const char *level, const char *fmt, va_list ap)
{
    char line[2048];
    int n;
    if (log_rank >= 0)
        n = snprintf(line, sizeof line, "voltbatch[rank %d]: %s", log_rank, level);
    else
        n = snprintf(line, sizeof line, "voltbatch: %s", level);
    if (n < 0 || (size_t)n >= sizeof line)
        n = 0;
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    /* One fputs per line so lines from threads do not interleave mid-line. */
    fprintf(stderr, "%s\n", line);
}

void vb_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vb_vlog("", fmt, ap);
    va_end(ap);
}

void vb_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vb_vlog("warning: ", fmt, ap);
    va_end(ap);
}

void vb_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vb_vlog("error: ", fmt, ap);
    va_end(ap);
}

/* A rank that stops during start-up, for tests: an LD_PRELOAD library that
 * sends SIGSTOP to its own process when it opens a chosen file, in one
 * chosen MPI rank only, as a node whose process is frozen or cut off while
 * the others go on.
 *   STOP_SHIM_PATH  fnmatch(3) pattern on the path given to open (unset:
 *                   the shim does nothing)
 *   STOP_SHIM_RANK  the world rank that stops (OMPI_COMM_WORLD_RANK or
 *                   PMI_RANK; default 1)
 *   STOP_SHIM_SLEEP  seconds to sleep there instead of stopping: a rank
 *                   that is slow, not lost (its other threads go on)
 * open, open64, openat and openat64 are covered. */
#undef _FILE_OFFSET_BITS
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static int my_rank(void)
{
    const char *s = getenv("OMPI_COMM_WORLD_RANK");
    if (!s)
        s = getenv("PMI_RANK");
    return s ? atoi(s) : -1;
}

static void maybe_stop(const char *path)
{
    const char *pat = getenv("STOP_SHIM_PATH");
    const char *want = getenv("STOP_SHIM_RANK");
    if (!pat || !pat[0] || !path || fnmatch(pat, path, 0) != 0)
        return;
    if (my_rank() != (want ? atoi(want) : 1))
        return;
    const char *nap = getenv("STOP_SHIM_SLEEP");
    if (nap && atoi(nap) > 0)
        sleep((unsigned)atoi(nap));
    else
        raise(SIGSTOP);
}

#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

static mode_t mode_arg(int flags, va_list ap)
{
    return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

#define SHIM_OPEN(name)                                  \
    int name(const char *path, int flags, ...)           \
    {                                                    \
        va_list ap;                                      \
        va_start(ap, flags);                             \
        mode_t m = mode_arg(flags, ap);                  \
        va_end(ap);                                      \
        maybe_stop(path);                                \
        return REAL(name)(path, flags, m);               \
    }
#define SHIM_OPENAT(name)                                \
    int name(int dirfd, const char *path, int flags, ...) \
    {                                                    \
        va_list ap;                                      \
        va_start(ap, flags);                             \
        mode_t m = mode_arg(flags, ap);                  \
        va_end(ap);                                      \
        maybe_stop(path);                                \
        return REAL(name)(dirfd, path, flags, m);        \
    }
SHIM_OPEN(open)
SHIM_OPEN(open64)
SHIM_OPENAT(openat)
SHIM_OPENAT(openat64)

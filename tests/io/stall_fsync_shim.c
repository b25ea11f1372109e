/* A process held just before it renames OUT.tmp, for tests: an LD_PRELOAD
 * library whose fsync(2) of a matching file never returns.
 *
 * pack and unpack sync OUT.tmp, whole, before renaming it over OUT; held
 * there, a test can signal the process while OUT.tmp certainly exists.
 *   STALL_SHIM_PATH  fnmatch(3) pattern of the synced paths held, e.g.
 *                    "*.jsonl.tmp" (unset: the shim does nothing)
 *   STALL_SHIM_MARK  a file created once the process is held
 * The held call waits in pause(2); a signal whose handler returns leaves
 * it waiting again. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void hold_if_matching(int fd)
{
    const char *pattern = getenv("STALL_SHIM_PATH");
    if (!pattern)
        return;
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 0)
        return;
    path[n] = '\0';
    if (fnmatch(pattern, path, 0) != 0)
        return;
    const char *mark = getenv("STALL_SHIM_MARK");
    if (mark) {
        int m = open(mark, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (m >= 0)
            close(m);
    }
    for (;;)
        pause();
}

int fsync(int fd)
{
    hold_if_matching(fd);
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return real(fd);
}

int fdatasync(int fd)
{
    hold_if_matching(fd);
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real(fd);
}

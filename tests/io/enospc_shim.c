/* A disk that fills up, for tests: an LD_PRELOAD library that makes writes
 * to chosen files fail as a full disk (or a failing one) does.
 *
 * Mounting a small tmpfs needs privileges a CI container may lack; this
 * needs none. The files are chosen by a glob on the path they were opened
 * by; writes to them pass until a byte budget is spent, then fail:
 *   ENOSPC_SHIM_PATH   fnmatch(3) pattern, e.g. "*\/run.h5.tmp" (unset: the
 *                      shim does nothing)
 *   ENOSPC_SHIM_AFTER  bytes that may still be written to matching files,
 *                      summed over them all in this process (default 0);
 *                      the count starts again at each open of a matching
 *                      file, so a test can vary it (setenv) between files
 *   ENOSPC_SHIM_ERRNO  "EIO" to fail with EIO instead of ENOSPC
 * A write that crosses the budget is cut short (as on a real disk); after
 * that every write, pwrite, writev, ftruncate, fallocate, fsync and
 * fdatasync on a matching file fails. That covers HDF5's sec2 driver
 * (pwrite or write, ftruncate at close) and the journal (write,
 * fdatasync, ftruncate). Files are matched when opened (open, openat,
 * creat and their 64-bit names; not fopen, whose open glibc makes
 * internally: neither HDF5 nor the journal writes through stdio). */
/* meson builds with 64-bit off_t, which renames ftruncate to ftruncate64
 * in the headers; the shim defines both names itself */
#undef _FILE_OFFSET_BITS
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define SHIM_MAX_FD 65536

static atomic_bool watched[SHIM_MAX_FD]; /* fds opened on a matching path */
static atomic_llong budget;              /* bytes left */

static long long initial_budget(void)
{
    const char *s = getenv("ENOSPC_SHIM_AFTER");
    long long b = s ? atoll(s) : 0;
    return b > 0 ? b : 0;
}

static int fail_errno(void)
{
    const char *s = getenv("ENOSPC_SHIM_ERRNO");
    return s && strcmp(s, "EIO") == 0 ? EIO : ENOSPC;
}

static bool path_matches(const char *path)
{
    const char *pat = getenv("ENOSPC_SHIM_PATH");
    return pat && pat[0] && path && fnmatch(pat, path, 0) == 0;
}

/* relative paths are matched as given; a pattern starting with '*'
 * covers both */
static void track(int fd, const char *path)
{
    if (fd < 0 || fd >= SHIM_MAX_FD)
        return;
    bool match = path_matches(path);
    atomic_store(&watched[fd], match);
    if (match)
        atomic_store(&budget, initial_budget());
}

static bool is_watched(int fd)
{
    return fd >= 0 && fd < SHIM_MAX_FD && atomic_load(&watched[fd]);
}

/* How many of n bytes may be written now: n, fewer, or 0 when the disk is
 * full (then the caller fails with fail_errno()). */
static size_t take(size_t n)
{
    long long left = atomic_load(&budget);
    for (;;) {
        size_t k = (unsigned long long)left < n ? (size_t)left : n;
        if (atomic_compare_exchange_weak(&budget, &left, left - (long long)k))
            return k;
    }
}

static bool full(void)
{
    return atomic_load(&budget) == 0;
}

#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

/* ---- opening and closing ------------------------------------------------ */

static mode_t mode_arg(int flags, va_list ap)
{
    return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t m = mode_arg(flags, ap);
    va_end(ap);
    int fd = REAL(open)(path, flags, m);
    track(fd, path);
    return fd;
}

int open64(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t m = mode_arg(flags, ap);
    va_end(ap);
    int fd = REAL(open64)(path, flags, m);
    track(fd, path);
    return fd;
}

int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t m = mode_arg(flags, ap);
    va_end(ap);
    int fd = REAL(openat)(dirfd, path, flags, m);
    track(fd, path);
    return fd;
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t m = mode_arg(flags, ap);
    va_end(ap);
    int fd = REAL(openat64)(dirfd, path, flags, m);
    track(fd, path);
    return fd;
}

int creat(const char *path, mode_t mode)
{
    int fd = REAL(creat)(path, mode);
    track(fd, path);
    return fd;
}

int creat64(const char *path, mode_t mode)
{
    int fd = REAL(creat64)(path, mode);
    track(fd, path);
    return fd;
}

int close(int fd)
{
    if (fd >= 0 && fd < SHIM_MAX_FD)
        atomic_store(&watched[fd], false);
    return REAL(close)(fd);
}

/* ---- writing ------------------------------------------------------------ */

ssize_t write(int fd, const void *buf, size_t n)
{
    if (!is_watched(fd) || n == 0)
        return REAL(write)(fd, buf, n);
    size_t k = take(n);
    if (k == 0) {
        errno = fail_errno();
        return -1;
    }
    return REAL(write)(fd, buf, k);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if (!is_watched(fd) || n == 0)
        return REAL(pwrite)(fd, buf, n, off);
    size_t k = take(n);
    if (k == 0) {
        errno = fail_errno();
        return -1;
    }
    return REAL(pwrite)(fd, buf, k, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
    if (!is_watched(fd) || n == 0)
        return REAL(pwrite64)(fd, buf, n, off);
    size_t k = take(n);
    if (k == 0) {
        errno = fail_errno();
        return -1;
    }
    return REAL(pwrite64)(fd, buf, k, off);
}

/* Writes the first iovecs that fit in the budget (a short write). */
ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    if (!is_watched(fd))
        return REAL(writev)(fd, iov, cnt);
    size_t total = 0;
    for (int i = 0; i < cnt; i++)
        total += iov[i].iov_len;
    if (total == 0)
        return REAL(writev)(fd, iov, cnt);
    size_t k = take(total);
    if (k == 0) {
        errno = fail_errno();
        return -1;
    }
    return REAL(write)(fd, iov[0].iov_base, k < iov[0].iov_len ? k : iov[0].iov_len);
}

/* Growing or shrinking a file needs no data blocks, but a full disk may
 * still refuse the metadata; failing it once full is what matters here. */
int ftruncate(int fd, off_t len)
{
    if (is_watched(fd) && full()) {
        errno = fail_errno();
        return -1;
    }
    return REAL(ftruncate)(fd, len);
}

int ftruncate64(int fd, off64_t len)
{
    if (is_watched(fd) && full()) {
        errno = fail_errno();
        return -1;
    }
    return REAL(ftruncate64)(fd, len);
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
    if (is_watched(fd) && full()) {
        errno = fail_errno();
        return -1;
    }
    return REAL(fallocate)(fd, mode, off, len);
}

/* posix_fallocate returns the error instead of setting errno */
int posix_fallocate(int fd, off_t off, off_t len)
{
    if (is_watched(fd) && full())
        return fail_errno();
    return REAL(posix_fallocate)(fd, off, len);
}

int fsync(int fd)
{
    if (is_watched(fd) && full()) {
        errno = fail_errno();
        return -1;
    }
    return REAL(fsync)(fd);
}

int fdatasync(int fd)
{
    if (is_watched(fd) && full()) {
        errno = fail_errno();
        return -1;
    }
    return REAL(fdatasync)(fd);
}

/* A rename that would outrun the data, for tests: an LD_PRELOAD library
 * that fails rename(2) (EIO) of a file whose contents were never synced.
 *
 * pack, unpack and generate write OUT.tmp and rename it over OUT. Without
 * an fsync of OUT.tmp first, a node crash can leave the rename on disk and
 * the data not (XFS, Lustre and other file systems that journal the
 * metadata alone): OUT empty, the user's old OUT gone with it. A crash
 * cannot be staged in a test; this makes the missing fsync fail the
 * rename instead.
 *   SYNC_SHIM_PATH  fnmatch(3) pattern of the renamed paths checked, e.g.
 *                   "*.tmp" (unset: the shim does nothing)
 * fsync and fdatasync record the file (device and inode) they synced; a
 * rename of a matching path whose file was not recorded fails with EIO
 * and a line on stderr. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHIM_MAX_SYNCED 256

static struct { dev_t dev; ino_t ino; } synced[SHIM_MAX_SYNCED];
static int n_synced;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void remember(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return;
    const dev_t dev = st.st_dev;
    const ino_t ino = st.st_ino;
    pthread_mutex_lock(&lock);
    if (n_synced < SHIM_MAX_SYNCED) {
        synced[n_synced].dev = dev;
        synced[n_synced].ino = ino;
        n_synced++;
    }
    pthread_mutex_unlock(&lock);
}

static bool was_synced(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return true; /* rename itself says what is wrong */
    bool found = false;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < n_synced && !found; i++)
        found = synced[i].dev == st.st_dev && synced[i].ino == st.st_ino;
    pthread_mutex_unlock(&lock);
    return found;
}

int fsync(int fd)
{
    static int (*real)(int);
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    int rc = real(fd);
    if (rc == 0)
        remember(fd);
    return rc;
}

int fdatasync(int fd)
{
    static int (*real)(int);
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    int rc = real(fd);
    if (rc == 0)
        remember(fd);
    return rc;
}

int rename(const char *from, const char *to)
{
    static int (*real)(const char *, const char *);
    if (!real)
        real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    const char *pat = getenv("SYNC_SHIM_PATH");
    if (pat && pat[0] && fnmatch(pat, from, 0) == 0 && !was_synced(from)) {
        fprintf(stderr, "unsynced_rename_shim: %s renamed to %s before an fsync\n", from, to);
        errno = EIO;
        return -1;
    }
    return real(from, to);
}

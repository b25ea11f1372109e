/* Start-up checks that an output-like path can be written; see writable.h. */
#include "util/writable.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int vb_refuse_no_directory(const char *path, const char *what, vb_err *err)
{
    /* the directory part of path, "." when it has none */
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 1;
    if (slash && n == 0)
        n = 1; /* "/x": the root */
    char *dir = malloc(n + 1);
    if (!dir)
        return vb_err_set(err, "%s %s: out of memory", what, path);
    memcpy(dir, slash ? path : ".", n);
    dir[n] = '\0';
    int rc = 0;
    struct stat st;
    if (stat(dir, &st) != 0)
        rc = vb_err_set(err, "%s %s cannot be written: its directory %s %s", what, path, dir,
                        errno == ENOENT ? "does not exist" : strerror(errno));
    else if (!S_ISDIR(st.st_mode))
        rc = vb_err_set(err, "%s %s cannot be written: %s is not a directory", what, path, dir);
    else if (access(dir, W_OK | X_OK) != 0)
        rc = vb_err_set(err, "%s %s cannot be written: its directory %s: %s", what, path, dir,
                        strerror(errno));
    free(dir);
    return rc;
}

int vb_refuse_unwritable(const char *path, const char *what, vb_err *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return vb_refuse_no_directory(path, what, err);
    if (S_ISDIR(st.st_mode))
        return vb_err_set(err, "%s %s is a directory: name a file", what, path);
    /* O_NONBLOCK: a FIFO without a reader fails at once (ENXIO) instead
     * of blocking the start-up */
    int fd = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return vb_err_set(err, "%s %s cannot be written: %s", what, path, strerror(errno));
    close(fd);
    return 0;
}

int vb_fsync_path(const char *path, vb_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vb_err_set(err, "%s: cannot open to sync: %s", path, strerror(errno));
    int rc = 0;
    if (fsync(fd) != 0)
        rc = vb_err_set(err, "%s: fsync failed: %s", path, strerror(errno));
    if (close(fd) != 0 && rc == 0)
        rc = vb_err_set(err, "%s: close after fsync failed: %s", path, strerror(errno));
    return rc;
}

/* See open_regular.h. */
#include "util/open_regular.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int vb_open_regular(const char *path, struct stat *st)
{
    /* O_NONBLOCK makes open() of a FIFO return at once; on a regular file
     * it changes nothing */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        return -2;
    }
    return fd;
}

bool vb_dangling_link(const char *path, char *why, size_t cap)
{
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISLNK(st.st_mode) || stat(path, &st) == 0 || errno != ENOENT)
        return false;
    char target[1024];
    ssize_t n = readlink(path, target, sizeof target - 1);
    target[n > 0 ? n : 0] = 0;
    snprintf(why, cap, "a symbolic link to '%s', which does not exist (a Hugging Face cache "
             "snapshot copied without its blobs? copy it with cp -rL)", target);
    return true;
}

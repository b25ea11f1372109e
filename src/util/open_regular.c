/* See open_regular.h. */
#include "util/open_regular.h"

#include <fcntl.h>
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

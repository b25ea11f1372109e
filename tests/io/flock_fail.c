/* The flock() of flock_fail.h. */
#include "flock_fail.h"

#include <errno.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <unistd.h>

int flock_fails_with;

int flock(int fd, int op)
{
    if (flock_fails_with) {
        errno = flock_fails_with;
        return -1;
    }
    return (int)syscall(SYS_flock, fd, op);
}

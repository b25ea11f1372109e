/* Opening a file from outside (a model directory's JSON, checkpoint and
 * template files) for reading: without blocking, and only a regular file.
 * open() of a FIFO blocks until a writer comes, and a signal only restarts
 * it: a FIFO in a model directory held the start-up for good (session
 * 43, the chat template's reader before). A device such as /dev/zero reads forever or as empty, a directory
 * fails only at the read. */
#ifndef VB_UTIL_OPEN_REGULAR_H
#define VB_UTIL_OPEN_REGULAR_H

#include <sys/stat.h>

/* The regular file at path opened read-only (O_CLOEXEC), st its fstat: a
 * descriptor >= 0; -1 when open() fails (errno says why); -2 when path is
 * not a regular file (nothing left open). */
int vb_open_regular(const char *path, struct stat *st);

#endif

/* Opening a file from outside (a model directory's JSON, checkpoint and
 * template files) for reading: without blocking, and only a regular file.
 * open() of a FIFO blocks until a writer comes, and a signal only restarts
 * it: a FIFO in a model directory held the start-up for good (session
 * 43, the chat template's reader before). A device such as /dev/zero reads forever or as empty, a directory
 * fails only at the read. */
#ifndef VB_UTIL_OPEN_REGULAR_H
#define VB_UTIL_OPEN_REGULAR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

/* The regular file at path opened read-only (O_CLOEXEC), st its fstat: a
 * descriptor >= 0; -1 when open() fails (errno says why); -2 when path is
 * not a regular file (nothing left open). */
int vb_open_regular(const char *path, struct stat *st);

/* Whether path is a symbolic link to nothing: a Hugging Face cache
 * snapshot copied without its blobs (cp -r keeps each link to
 * ../../blobs/HASH), or a blob deleted under it. Such a file is there but
 * broken, not absent: callers that skip an absent optional file, or say
 * the directory is not a model's, name it instead. When true, why holds
 * "a symbolic link to 'TARGET', which does not exist (...)" (cap bytes). */
bool vb_dangling_link(const char *path, char *why, size_t cap);

#endif

/* Whether a file a command writes at its end can be written, asked at its
 * start: a report in a directory that does not exist was found only after
 * the whole run (exit 1, and for `bench` the measurement lost with it). */
#ifndef VB_WRITABLE_H
#define VB_WRITABLE_H

#include "util/errors.h"

/* Refuses (-1, err naming `what`, the path and the cause) when the
 * directory that holds `path` does not exist, is no directory, or this
 * process may not create files in it. For files written beside their
 * name and renamed over it (the output). */
int vb_refuse_no_directory(const char *path, const char *what, vb_err *err);

/* Refuses when `path` cannot be written in place: an existing file that
 * does not open for writing (a directory, a read-only file), or a new one
 * whose directory vb_refuse_no_directory refuses. Nothing is created or
 * truncated. /dev/stdout and the like are fine. For the report. */
int vb_refuse_unwritable(const char *path, const char *what, vb_err *err);

/* fsyncs the file at `path` (-1, err naming it, on failure). Every file
 * written beside its name and renamed over it (generate's output, pack's
 * and unpack's) is synced before the rename: a node crash then leaves the
 * old file or the new one, never a renamed empty one (XFS, Lustre and the
 * like journal the rename without the data). */
int vb_fsync_path(const char *path, vb_err *err);

#endif

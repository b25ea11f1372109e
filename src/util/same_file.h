/* Whether two paths name one file, so that no command replaces or removes
 * one of its own inputs (`generate --input in.h5 --output ./in.h5
 * --overwrite`, `pack IN IN --overwrite`, an input named like the output's
 * temporary file).
 *
 * Paths are compared by what they reach, not by spelling: stat() follows
 * symlinks, and the device and inode numbers then match for ./x, a symlink
 * to x and a hard link to x alike. */
#ifndef VB_SAME_FILE_H
#define VB_SAME_FILE_H

#include <stdbool.h>

#include "util/errors.h"

/* True when a and b both exist and are the same file. A path that does not
 * exist (or cannot be stat()ed) is no file, so never the same as another. */
bool vb_same_file(const char *a, const char *b);

/* Whether a and b name one file, existing or not yet: the same file, or
 * the same last name in the same directory (by device and inode), after
 * following symlinks at the last name even where their target does not
 * exist yet. For two outputs of a run, which may not exist when it
 * starts. */
bool vb_same_path(const char *a, const char *b);

/* Whether the directory parts of a and b ("." when none) are one
 * directory (device and inode); a and b need not exist. */
bool vb_same_dir_part(const char *a, const char *b);
/* Whether path's directory part is the directory dir. */
bool vb_dir_part_is(const char *path, const char *dir);

/* Refuses to write `target` when it is the input `input`: returns -1 with
 * err naming both ("the output ./in.h5 and the input in.h5 are the same
 * file ..."), else 0. `what` says what target is to the command ("the
 * output", "the output's temporary file", "the report"). */
int vb_refuse_same_file(const char *input, const char *target, const char *what, vb_err *err);

/* Refuses (-1, err naming it) an output path that is a symbolic link, or
 * exists and is not a regular file: a device, FIFO, socket or directory.
 * Outputs are written to OUT.tmp and renamed over OUT, which would put a
 * regular file in place of /dev/full or a FIFO (as root, in /dev), or of
 * the link (/dev/stdout) while its target stays as it was. */
int vb_refuse_special_output(const char *path, const char *what, vb_err *err);

/* Refuses (-1, err naming it) when tmp, the name an output is written to
 * before its rename, exists: without --overwrite a file by that name is
 * someone's, not the command's to truncate or remove. */
int vb_refuse_existing_temp(const char *tmp, vb_err *err);

/* Removes path where it exists (a symlink itself, never the file it
 * points to): 0 when it is gone or never was, else -1 with err naming it
 * and the system's reason. Outputs are then created there anew: `pack IN
 * OUT --overwrite` with OUT.tmp a symlink to a user's file wrote through
 * the link before it removed OUT.tmp first (session 43). */
int vb_remove_if_there(const char *path, vb_err *err);

#endif

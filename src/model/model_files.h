/* What identifies a model directory's contents for --resume: the size and
 * modification time of each file the engine may read from it.
 *
 * The run settings name the model by its directory's real path; weights
 * replaced in place (a fine-tune saved over the old checkpoint, a shard
 * downloaded again) keep the path, and a resumed run would then write the
 * rest of the rows with another model into the same file. Hashing the
 * bytes would read every weight file a second time at start-up (minutes
 * for a 70B model on a parallel file system); size and mtime are one
 * stat() each and change whenever a file is written. A copy that keeps
 * mtimes (rsync -a, cp -p) has another path, which the settings already
 * refuse. */
#ifndef VB_MODEL_MODEL_FILES_H
#define VB_MODEL_MODEL_FILES_H

#include <jansson.h>

#include "util/errors.h"

/* A new object {NAME: {"size": BYTES, "mtime_ns": NS}} over the regular
 * files directly in `dir` (symlinks followed: a Hugging Face cache's
 * snapshot links to its blobs) whose names end in .safetensors, .json or
 * .jinja and do not begin with a dot. Entries that vanish or cannot be
 * stat()ed are left to the loader's own errors. NULL with `err` set when
 * the directory cannot be listed or memory runs out. */
json_t *model_files_json(const char *dir, vb_err *err);

/* One file's {"size": BYTES, "mtime_ns": NS} (a --chat-template file), or
 * NULL when it cannot be stat()ed or is no regular file. */
json_t *model_file_stamp(const char *path);

/* For the ranks' agreement at start-up (every rank must read the same
 * model, wherever its copy lies): model_files_json's files, each as
 * {"size": BYTES, "sampled_crc32": HEX}, a CRC-32 of its first and last
 * MiB (all of a small file). Independent of path and mtime, so node-local
 * copies made by cp agree; reads at most 2 MiB a file. */
json_t *model_files_fingerprints(const char *dir, vb_err *err);
json_t *model_file_fingerprint(const char *path);

#endif

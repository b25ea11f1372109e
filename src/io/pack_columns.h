/* pack's HDF5 side: the input schema's columns written a block of rows at
 * a time, as the lines are parsed, so pack's memory does not grow with its
 * input (io/pack.c parses; this file writes).
 *
 * Some of what a column looks like depends on rows not read yet: whether
 * an optional column exists at all (the first row with that key may be the
 * last), whether /id is int64 (every row has an integer id) or strings,
 * and whether /prompts is strings or the byte form (some prompt holds a
 * NUL, io/h5_text.h). The file must be the one a single write of all rows
 * made, so
 *   - an optional column is created at the first block that has the key,
 *     its earlier rows written with the schema's "unset" value ("" or -1);
 *   - an int64 /id that meets a string or absent id, and a string /prompts
 *     that meets a NUL, are rewritten in the other form (read back a block
 *     at a time) and the old dataset deleted. This happens at most once per
 *     column; the space the old one held is left to HDF5's free-space
 *     reuse (a deleted string column's text is not: HDF5 leaves its global
 *     heap objects), so such a file may be larger than a single write
 *     made. For a regular input file pack finds a NUL prompt while it
 *     counts the rows, so /prompts is rewritten only when read from a pipe.
 *
 * Layout: when the row count is known before the first write (a regular
 * input file, counted first), every column is contiguous with exactly that
 * many rows, as a single write made it: the input reader checks such a
 * column's storage and its variable-length descriptors in the file itself
 * (input_reader.c check_extent, h5_vlen_check.h), which it cannot for a
 * chunked one. Otherwise (a pipe) the columns are chunked, PACK_BLOCK rows
 * a chunk, with unlimited size, and grow with each block. */
#ifndef VB_IO_PACK_COLUMNS_H
#define VB_IO_PACK_COLUMNS_H

#include <hdf5.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/errors.h"

#define PACK_BLOCK 8192 /* rows parsed, then written, at a time */

/* One block of parsed rows; every array has n entries. */
typedef struct pack_block {
    size_t n;
    char *text[PACK_BLOCK];           /* prompt or messages JSON */
    size_t text_len[PACK_BLOCK];      /* its bytes: a prompt may hold NUL characters */
    char *id_str[PACK_BLOCK];         /* NULL = no id on that line */
    int64_t id_int[PACK_BLOCK];
    bool id_is_int[PACK_BLOCK];
    char *system[PACK_BLOCK];         /* NULL = none */
    int32_t max_new_tokens[PACK_BLOCK]; /* -1 = unset */
    int64_t seed[PACK_BLOCK];         /* -1 = unset */
} pack_block;

/* What the rows parsed so far (this block's included) hold. */
typedef struct pack_seen {
    bool kind_set, messages;          /* /messages instead of /prompts */
    bool any_id, all_ids_int, some_int_id;
    bool any_system, any_max, any_seed;
} pack_seen;

/* The file being written: its columns, -1 until created. */
typedef struct pack_out {
    hid_t f;
    hsize_t known_rows;               /* > 0: contiguous columns of this many rows */
    hsize_t rows;                     /* rows written */
    bool text_bytes, id_int;          /* /prompts in the byte form; /id int64 */
    bool prompts_bytes;               /* pack_out_create's */
    bool saw_nul;                     /* a prompt written held a NUL */
    hid_t text, id, system, max_new_tokens, seed;
    hid_t str_type, bytes_file_type, bytes_mem_type;
} pack_out;

/* A pack_out with nothing open (pack_out_close does nothing). */
void pack_out_init(pack_out *o);

/* Creates `path` exclusively (removing one there first: pack's own
 * temporary name). known_rows 0: the row count is not known (chunked
 * columns). prompts_bytes: some prompt is known to hold a NUL, so
 * /prompts is made the byte form from its first row (not rewritten when
 * that row comes). 0, or -1 with err naming path. */
int pack_out_create(pack_out *o, const char *path, hsize_t known_rows, bool prompts_bytes,
                    vb_err *err);

/* Writes block b as rows o->rows.. of every column s says exists. 0, or -1
 * with err naming the dataset. */
int pack_out_block(pack_out *o, const pack_block *b, const pack_seen *s, vb_err *err);

/* Closes the datasets and the file; -1 when a close fails (the data may
 * not be on disk). Safe after pack_out_init alone and after a failure
 * (then the caller keeps its first error and removes the file). */
int pack_out_close(pack_out *o, vb_err *err);

#endif

/* Input prompts from HDF5 shards (DESIGN.md "HDF5 files", Input).
 *
 * vb_input_open() expands the --input arguments (files, globs, directories
 * of .h5), checks every shard's schema before any work starts, and numbers
 * rows across shards in order. vb_input_read_rows() then reads only the rows
 * a group was given, so a dp group leader never touches the others' rows.
 *
 * Schema, one of:
 *   /prompts     1-D UTF-8 (or ASCII) strings, variable or fixed length, or
 *                the byte form (io/h5_text.h: vlen uint8, for prompts that
 *                hold NUL characters)
 *   /input_ids   1-D variable-length integers (read as int32)
 *   /messages    1-D strings, each a JSON array of {"role","content"}
 * optional, 1-D with the same length unless noted:
 *   /id              strings or integers (same kind in every shard; unsigned
 *                    64-bit ids kept as such, see vb_id_kind)
 *   /system          strings, or a scalar string for every row (an empty one:
 *                    none, the row takes --system)
 *   /max_new_tokens  integers; -1 = not set (use --max-new-tokens)
 *   /seed            integers; -1 = not set (derive from --seed and the row)
 *
 * Schema errors (missing dataset, wrong type or rank, mismatched lengths)
 * and metadata that disagrees with the file (a dataset whose storage does
 * not hold its rows or lies past the end of the file, absurd sizes) fail
 * the open with one line naming the file and the dataset: exit 2. Data
 * that HDF5 cannot read fails vb_input_read_rows the same way. A file so
 * damaged that the HDF5 library itself crashes or loops on it is caught
 * by reading it once in a child process first (io/input_check.h).
 * Bad rows (empty prompt, invalid UTF-8, malformed messages, max_new_tokens
 * below -1, negative seed) do not: the row carries an error message and the
 * engine writes it as a finish_reason=error row. */
#ifndef VB_IO_INPUT_READER_H
#define VB_IO_INPUT_READER_H

#include <stdbool.h>
#include <stdint.h>

#include "util/errors.h"

typedef enum vb_prompt_kind {
    VB_PROMPT_TEXT,     /* /prompts */
    VB_PROMPT_IDS,      /* /input_ids */
    VB_PROMPT_MESSAGES, /* /messages */
} vb_prompt_kind;

/* VB_ID_INT: signed, or unsigned of up to 32 bits (all fit an int64);
 * VB_ID_UINT: unsigned 64-bit, id_int holding its bits (hash ids above
 * 2^63 - 1 keep their value and the output's /id is unsigned too). */
typedef enum vb_id_kind { VB_ID_NONE, VB_ID_STRING, VB_ID_INT, VB_ID_UINT } vb_id_kind;

#define VB_ROW_ERROR_BYTES 160

typedef struct vb_input_shard {
    char *path;
    int64_t first_row, n_rows; /* rows [first_row, first_row + n_rows) overall */
    bool has_system, system_per_row;
    char *system_scalar;       /* the scalar /system, or NULL */
    bool has_max_new_tokens, has_seed;
} vb_input_shard;

typedef struct vb_input {
    vb_input_shard *shards;
    int n_shards;
    int64_t n_rows;            /* over all shards */
    vb_prompt_kind kind;       /* the same in every shard */
    vb_id_kind id_kind;        /* the same in every shard */
    uint32_t checksum;         /* CRC-32 of the shard files' bytes, in order
                                  (the journal header's input checksum) */
    const char *const *specs;  /* the --input arguments (the caller's memory) */
    int n_specs;
    char unread[512];          /* "PATH: /NAME", the first dataset at a shard's root
                                  that no column above reads (a typo such as
                                  /max_tokens), for a warning; "" when none */
} vb_input;

/* The root datasets the reader reads, as the warnings about `unread` list
 * them (input_reader.c's read_by_us holds the same names). */
#define VB_INPUT_DATASETS "/prompts, /input_ids, /messages, /id, /system, /max_new_tokens, /seed"

typedef struct vb_input_row {
    int64_t index;             /* row number across shards */
    char *text;                /* prompt, or the messages JSON; NULL for ids */
    size_t text_len;           /* text's bytes: a prompt may hold NUL characters */
    int32_t *ids;              /* /input_ids row, else NULL */
    int32_t n_ids;
    bool ids_out_of_range;     /* a token id outside int32 (0 in ids; the row an error) */
    char *id;                  /* string id (VB_ID_STRING), else NULL */
    int64_t id_int;            /* integer id (VB_ID_INT; VB_ID_UINT: its bits) */
    char *system;              /* per-row or scalar /system, or NULL */
    int32_t max_new_tokens;    /* -1 = not set */
    int64_t seed;              /* -1 = not set; seed_u64: an unsigned 64-bit seed's bits */
    bool seed_u64;             /* /seed is unsigned 64-bit: every value is a seed */
    char error[VB_ROW_ERROR_BYTES]; /* "" or why this row cannot run (bad row) */
} vb_input_row;

/* Expands and validates the inputs. specs are paths, globs (data/shard-NN.h5 written with a star) or
 * directories (their *.h5, sorted by name). Returns 0, or -1 with one line
 * naming the file and the dataset. vb_input_close() frees in both cases. */
int vb_input_open(vb_input *in, const char *const *specs, int n_specs, vb_err *err);

/* Whether the input argument spec, expanded now or by a later run (a
 * --resume), takes the file path, which need not exist yet: a directory's
 * *.h5 and *.hdf5 not starting with a dot, a glob's matches (its last
 * component compared by name in the same directory), or the file itself.
 * An output there would be read as an input shard when the run resumes. */
bool vb_input_spec_takes(const char *spec, const char *path);

/* Reads rows[0..n) (any order, each in [0, n_rows), no duplicates) into
 * out[0..n), which the caller allocates; out[k] is rows[k]. Bad rows are
 * returned with error set, not as a failure. Returns 0 or -1 (I/O error,
 * file changed under us) with err naming the file and dataset. */
int vb_input_read_rows(const vb_input *in, const int64_t *rows, int64_t n, vb_input_row *out,
                       vb_err *err);

void vb_input_rows_free(vb_input_row *rows, int64_t n);

/* A cheap per-row cost for sharding before tokenizing: prompt bytes (text,
 * messages) or token count (ids), plus the system prompt. Reads every row's
 * prompt once; rank 0 calls it and broadcasts the shard assignment. */
int vb_input_row_costs(const vb_input *in, int64_t *cost, vb_err *err);

void vb_input_close(vb_input *in);

/* Where the reader is about to call into HDF5 on an input file: opening
 * `path` and reading its metadata (dataset NULL), opening `dataset`
 * (first = last = -1), or reading its rows [first, last] (numbered within
 * the file). The isolated check (io/input_check.h) sends each step to its
 * parent, so that a crash or an endless loop inside the HDF5 library is
 * pinned on a file, a dataset and a block of rows. Process-wide; NULL (the
 * default) reports nothing. */
typedef void (*vb_input_trace_fn)(const char *path, const char *dataset, int64_t first,
                                  int64_t last);
void vb_input_set_trace(vb_input_trace_fn fn);

/* Reports one step to the trace function, if one is set. */
void vb_input_trace(const char *path, const char *dataset, int64_t first, int64_t last);

/* The most rows one input file may hold, and the longest fixed-length
 * string row: larger values come from a corrupt dimension or datatype
 * (2^31 rows would be a file of 32 GiB of references at least), and are
 * refused before they become an allocation. */
#define VB_INPUT_MAX_ROWS INT32_MAX
#define VB_INPUT_MAX_FIXED_STRING (16u << 20)


#endif

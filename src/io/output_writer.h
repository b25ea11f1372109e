/* The output HDF5 file (DESIGN.md "HDF5 files", Output).
 *
 * World rank 0 writes it once, from the finished rows it holds (vb_results),
 * at the end of a run and when a signal stops it. It is written to
 * "PATH.tmp" and renamed over PATH, so PATH is always either the previous
 * complete file or the new one, never half-written.
 *
 * Datasets, one element per finished (row, sample), sorted by (index, sample):
 *   /completions        UTF-8 strings (variable length)
 *   /output_ids         variable-length int32
 *   /prompt_tokens      int32
 *   /completion_tokens  int32
 *   /finish_reason      enum int8 {stop = 0, length = 1, error = 2}
 *   /error              UTF-8 strings, "" when fine
 *   /index              int64, the row in the inputs
 *   /id                 strings, int64, or uint64 where the input's was unsigned
 *                       64-bit, copied from the input (when it had /id)
 *   /sample             int32 (only with n > 1)
 *   /logprobs           variable-length float32, the chosen tokens' (with logprobs)
 *   /top_ids, /top_logprobs  variable-length int32 / float32, n_tokens x top_n
 *                       row-major (with logprobs N > 0; attribute top_n)
 * Root attributes: every run setting (model, tp, seed, sampling; strings,
 * int64 or double; unset ones left out), settings_json (the canonical text
 * --resume compares), dp, version, start_time and end_time (ISO 8601 UTC),
 * elapsed_s, throughput_tokens_per_s, rows_done, input_rows, complete (0/1). */
#ifndef VB_IO_OUTPUT_WRITER_H
#define VB_IO_OUTPUT_WRITER_H

#include <jansson.h>
#include <stdbool.h>

#include "io/results.h"
#include "util/errors.h"

typedef struct vb_output_meta {
    const json_t *settings;   /* vb_run_settings_json() */
    const json_t *sampling;   /* NULL, or the sampling in effect (name: number): each
                               * written as a root attribute where `settings` leaves
                               * it unset (generation_config.json's or the default) */
    int dp;
    const char *version;      /* VB_VERSION plus git revision */
    double start_time, end_time; /* Unix seconds */
    double throughput;        /* generated tokens per second */
    bool complete;            /* every row finished */
} vb_output_meta;

/* Writes PATH.tmp and renames it to PATH. Returns 0 or -1 with err naming
 * the file and dataset. */
int vb_output_write(const char *path, const vb_output_meta *meta, const vb_results *r,
                    vb_err *err);

/* Reads an output file. When r->slot is NULL, r is set up from the file
 * (input_rows and n attributes, or the largest index and sample seen);
 * otherwise rows are put into the given r (--resume). *settings_json gets
 * the settings_json attribute (NULL if absent; free() it) when not NULL.
 * Returns 0 or -1 naming the file and dataset. */
int vb_output_read(const char *path, vb_results *r, char **settings_json, vb_err *err);

/* *settings_json gets the file's settings_json attribute (NULL when it has
 * none; free() it) without reading any row: --resume compares it before
 * reading the rows into its own results. 0, or -1 when path is no output
 * file (vb_output_read's errors). */
int vb_output_read_settings(const char *path, char **settings_json, vb_err *err);

/* What an output file holds, known before its rows are read. */
typedef struct vb_output_shape {
    int64_t rows;       /* input_rows, or 1 + the largest index stored */
    int32_t n_samples;  /* n, or 1 + the largest sample stored */
    int32_t top_n;      /* the rows' top_n (-1: no logprobs) */
    vb_id_kind id_kind;
    int64_t stored;     /* rows the file holds */
    bool ascending;     /* keys (index, sample) strictly ascending, none
                         * negative: each once, in vb_results' order (what
                         * vb_output_write writes) */
} vb_output_shape;

/* Called once the shape is known, before any row: 0 goes on, anything
 * else ends the reading and is returned (> 0: stopped, no error). It may
 * change shape->top_n: the one rows are checked against. */
typedef int (*vb_output_begin_fn)(vb_output_shape *shape, void *ctx, vb_err *err);
/* Called for each row in the file's order; the row's buffers are the
 * reader's, valid during the call only. Nonzero ends the reading. */
typedef int (*vb_output_row_fn)(const vb_output_row *row, void *ctx, vb_err *err);

/* Reads an output file a block of rows at a time, so that what it holds is
 * never all in memory at once beside what fn makes of it (begin may be
 * NULL). Returns 0, -1 naming the file and dataset, or what begin or fn
 * returned to stop. */
int vb_output_each(const char *path, vb_output_begin_fn begin, vb_output_row_fn fn, void *ctx,
                   vb_err *err);

#endif

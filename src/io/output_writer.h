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

#endif

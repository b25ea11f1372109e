/* The output file's row columns (output_writer.h lists them), written a
 * block of rows at a time in (index, sample) order, so that writing an
 * output holds one block of rows, not every finished row.
 *
 * Every column is created at the start with exactly the rows the file will
 * hold, contiguous, as a single write of all rows made it (the same
 * datasets, types and values; HDF5 may place the variable-length data's
 * heap objects differently, so the file's bytes may differ). What a column
 * looks like must be known before the first block: whether /completions is
 * strings or the byte form (some completion holds a NUL, io/h5_text.h) is
 * counted as rows are put into the results (vb_results.n_nul). */
#ifndef VB_IO_OUTPUT_COLUMNS_H
#define VB_IO_OUTPUT_COLUMNS_H

#include <hdf5.h>
#include <stdbool.h>
#include <stddef.h>

#include "io/results.h"
#include "util/errors.h"

enum {
    OUT_COMPLETIONS, OUT_OUTPUT_IDS, OUT_PROMPT_TOKENS, OUT_COMPLETION_TOKENS, OUT_FINISH,
    OUT_ERROR, OUT_INDEX, OUT_ID, OUT_SAMPLE, OUT_LOGPROBS, OUT_TOP_IDS, OUT_TOP_LOGPROBS,
    OUT_NCOLS
};

/* The open datasets (-1: the column is not in this file) and the memory
 * types their blocks are written in. */
typedef struct out_columns {
    hid_t d[OUT_NCOLS], mtype[OUT_NCOLS], ftype[OUT_NCOLS];
    bool completion_bytes;   /* /completions in the byte form */
    bool id_strings;         /* /id holds strings (else int64 or uint64 bits) */
    size_t rows;             /* the file's rows */
    size_t written;          /* rows written so far */
} out_columns;

/* Creates every column r's rows need in file f (r->n_done rows each;
 * /top_ids and /top_logprobs with their top_n attribute). 0, or -1 with
 * err naming the dataset; out_columns_close then closes what was made. */
int out_columns_create(out_columns *c, hid_t f, const vb_results *r, vb_err *err);

/* Writes rows[0..m) (in key order) as the next m rows of every column. */
int out_columns_write(out_columns *c, const vb_results *r, const vb_output_row *const *rows,
                      size_t m, vb_err *err);

/* Closes the datasets and types; -1 with err (unless rc already failed)
 * when a dataset's close fails. Returns rc or -1. */
int out_columns_close(out_columns *c, int rc, vb_err *err);

#endif

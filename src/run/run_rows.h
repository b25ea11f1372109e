/* Finished rows of one dp group, and their trip to world rank 0.
 *
 * Each group collects the rows it finishes (vb_output_row, owning their
 * buffers) in a run_rows list; only the group's leader (tp_rank 0) keeps
 * them, the other TP ranks computed the same tokens. A leader packs its
 * list into one flat byte buffer to send it to world rank 0 (run_collect.h),
 * which unpacks it row by row into the journal and vb_results.
 *
 * The packed form is private to this file: a sequence of records, each a
 * fixed header followed by the variable parts (ids, logprobs, strings). */
#ifndef VB_RUN_ROWS_H
#define VB_RUN_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "io/results.h"
#include "util/errors.h"

typedef struct run_rows {
    vb_output_row *rows;
    int64_t n, cap;
    int32_t top_n;          /* as vb_results.top_n: -1 none, 0 chosen only, N top-N */
} run_rows;

void run_rows_init(run_rows *l, int32_t top_n);
void run_rows_free(run_rows *l);

/* Appends a row and takes ownership of its buffers (row is zeroed). Returns
 * 0 or -1 when out of memory (the row is freed then). */
int run_rows_take(run_rows *l, vb_output_row *row);

/* An error row (finish_reason=error, no tokens) with `msg`. */
int run_rows_add_error(run_rows *l, int64_t index, int32_t sample, const char *id,
                       int64_t id_int, int32_t prompt_tokens, const char *msg);

/* Packs every row into a malloc'd buffer of *n_bytes bytes, after
 * head_bytes bytes left for the caller (a message header), and empties the
 * list. Returns 0 or -1 when out of memory (the list is kept). */
int run_rows_pack(run_rows *l, size_t head_bytes, char **out, size_t *n_bytes);

/* Calls fn for every row packed in buf[0..n) (after the caller's header);
 * the row's buffers belong to the caller of fn only during the call.
 * Returns 0, or -1 with err (a torn record, or fn's failure). */
typedef int (*run_row_fn)(void *ctx, const vb_output_row *row, vb_err *err);
int run_rows_unpack(const char *buf, size_t n, run_row_fn fn, void *ctx, vb_err *err);

#endif

/* Finished rows, in memory, keyed by (input row, sample).
 *
 * World rank 0 holds one vb_results for the whole run: rows recovered from
 * the journal and the old output on --resume, then each row the groups send
 * as it finishes. It is what the journal records and what the output writer
 * writes, sorted by (index, sample). Putting the same key twice replaces the
 * row, so a row recomputed after a resume is never doubled. */
#ifndef VB_IO_RESULTS_H
#define VB_IO_RESULTS_H

#include <stdbool.h>
#include <stdint.h>

#include "io/input_reader.h"
#include "util/errors.h"

/* Stored as an HDF5 enum with these values (DESIGN.md). */
typedef enum vb_finish_reason {
    VB_FINISH_STOP = 0,   /* EOS or a stop string */
    VB_FINISH_LENGTH = 1, /* max_new_tokens or the context length reached */
    VB_FINISH_ERROR = 2,  /* bad row; `error` says why */
} vb_finish_reason;

typedef struct vb_output_row {
    int64_t index;          /* row in the inputs */
    int32_t sample;         /* 0..n-1 with --n */
    char *completion;       /* UTF-8; "" for error rows */
    size_t completion_len;  /* its bytes when it holds a NUL character; 0 = up to
                               its NUL (vb_output_row_completion_len) */
    int32_t *output_ids;    /* generated token ids */
    int32_t n_output_ids;
    int32_t prompt_tokens, completion_tokens;
    vb_finish_reason finish_reason;
    char *error;            /* "" or NULL when fine */
    char *id;               /* copied from the input (VB_ID_STRING) */
    int64_t id_int;         /* copied from the input (VB_ID_INT; VB_ID_UINT: its bits) */
    float *logprobs;        /* n_output_ids chosen-token logprobs, with --logprobs */
    int32_t *top_ids;       /* n_output_ids * top_n alternatives, row-major */
    float *top_logprobs;    /* same shape */
} vb_output_row;

typedef struct vb_results {
    int64_t n_rows;         /* input rows */
    int32_t n_samples;      /* --n (1 by default) */
    int32_t top_n;          /* -1: no logprobs; 0: chosen only; N: plus top-N */
    vb_id_kind id_kind;
    vb_output_row **slot;   /* n_rows * n_samples; NULL = not finished */
    int64_t n_done;         /* non-NULL slots */
} vb_results;

int vb_results_init(vb_results *r, int64_t n_rows, int32_t n_samples, int32_t top_n,
                    vb_id_kind id_kind, vb_err *err);

/* Deep-copies `row` in (the caller keeps its buffers); replaces a row with
 * the same key. Fails when index or sample is out of range. */
int vb_results_put(vb_results *r, const vb_output_row *row, vb_err *err);

bool vb_results_has(const vb_results *r, int64_t index, int32_t sample);

/* True when every sample of input row `index` is finished: the engine skips
 * such rows on --resume. */
bool vb_results_row_done(const vb_results *r, int64_t index);

void vb_results_free(vb_results *r);

/* The completion's bytes: completion_len, or strlen when that is 0 (rows
 * whose maker did not count NUL characters). */
size_t vb_output_row_completion_len(const vb_output_row *row);

/* Frees a row's buffers (not the struct). */
void vb_output_row_free(vb_output_row *row);

/* "stop", "length", "error" (or "?"); and back, -1 for an unknown name. */
const char *vb_finish_reason_name(vb_finish_reason f);
int vb_finish_reason_parse(const char *s);

#endif

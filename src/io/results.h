/* Finished rows keyed by (input row, sample).
 *
 * World rank 0 holds one vb_results for the whole run: rows recovered from
 * the journal and the old output on --resume, then each row the groups send
 * as it finishes. It is what the output writer writes, sorted by (index,
 * sample). Putting the same key twice replaces the row, so a row recomputed
 * after a resume is never doubled.
 *
 * A row is held in one of two ways:
 *   - located (vb_results_put_at): only where its record lies in a row
 *     store (the journal, journal.h vb_journal_store), plus the two facts
 *     the writer needs before it reads any row (an estimate of its bytes
 *     in the output, whether its completion holds a NUL): 16 bytes a row.
 *     This is how a run holds its rows: every finished row is in the
 *     journal already, and holding a copy of each besides made rank 0's
 *     memory grow with the job (~760 MB for 300,000 rows of 2.2 KB);
 *   - held (vb_results_put): a deep copy in memory, for readers without a
 *     journal (unpack of another writer's file, tests) and for the rows a
 *     failed journal could not take.
 * vb_results_get gives either back as a row. */
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

/* Reads the row whose record starts at byte `at` of a store into *row (the
 * caller frees it: vb_output_row_free). 0, or -1 with err naming the store. */
typedef int (*vb_row_fetch_fn)(void *ctx, int64_t at, int32_t top_n, vb_output_row *row,
                               vb_err *err);

typedef struct vb_row_store {
    vb_row_fetch_fn fetch;  /* NULL: no store */
    void *ctx;
} vb_row_store;

/* Where a finished row is. */
typedef struct vb_row_loc {
    int64_t at;             /* VB_ROW_NONE, VB_ROW_HELD (in slot[]), or > 0: its
                             * record's byte offset in the store (no record starts
                             * at 0: the journal's magic does) */
    uint32_t out_bytes;     /* its share of the output file (vb_output_row_bytes) */
    uint32_t flags;         /* VB_ROW_NUL: its completion holds a NUL character */
} vb_row_loc;

#define VB_ROW_NONE ((int64_t)0)  /* zero: the array is calloc'd, its pages touched
                                   * only as rows finish */
#define VB_ROW_HELD ((int64_t)-1)
#define VB_ROW_NUL 1u

typedef struct vb_results {
    int64_t n_rows;         /* input rows */
    int32_t n_samples;      /* --n (1 by default) */
    int32_t top_n;          /* -1: no logprobs; 0: chosen only; N: plus top-N */
    vb_id_kind id_kind;
    vb_row_loc *loc;        /* n_rows * n_samples, in (index, sample) order */
    vb_output_row **slot;   /* held rows (n_rows * n_samples; NULL until one is held,
                             * and NULL where a row is not held) */
    int64_t n_done;         /* finished rows */
    int64_t n_nul;          /* of those, completions holding a NUL character */
    uint64_t out_bytes;     /* their vb_output_row_bytes, added up */
    vb_row_store store;     /* where located rows are read from */
} vb_results;

int vb_results_init(vb_results *r, int64_t n_rows, int32_t n_samples, int32_t top_n,
                    vb_id_kind id_kind, vb_err *err);

/* Deep-copies `row` in (the caller keeps its buffers); replaces a row with
 * the same key. Fails when index or sample is out of range. */
int vb_results_put(vb_results *r, const vb_output_row *row, vb_err *err);

/* Records that `row` lies at byte `at` (> 0) of r->store, without copying
 * it; replaces a row with the same key (a held one is freed). Same
 * failures as vb_results_put. */
int vb_results_put_at(vb_results *r, const vb_output_row *row, int64_t at, vb_err *err);

bool vb_results_has(const vb_results *r, int64_t index, int32_t sample);

/* True when every sample of input row `index` is finished: the engine skips
 * such rows on --resume. */
bool vb_results_row_done(const vb_results *r, int64_t index);

/* The finished row in slot k (index * n_samples + sample): a held row's
 * pointer (*owned false), or a located one read from the store into
 * *buf (*owned true: the caller frees it with vb_output_row_free). A row
 * read back must have the slot's key: another is a damaged store. 0, or
 * -1 with err. */
int vb_results_get(const vb_results *r, size_t k, vb_output_row *buf,
                   const vb_output_row **row, bool *owned, vb_err *err);

/* The row's bytes in an output file, before HDF5's own overhead: each
 * vlen element's 16-byte reference in its dataset and its global-heap
 * object (a 16-byte header, the data rounded up to 8 bytes), and each
 * fixed-size element (output_writer.c's estimate of a file that cannot be
 * written). Saturates at UINT32_MAX. */
uint32_t vb_output_row_bytes(const vb_results *r, const vb_output_row *row);

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

/* One finished row as bytes, for the journal's records and for the message
 * a dp group leader sends world rank 0 (MPI_Send of MPI_BYTE) when a row
 * finishes. Host byte order: every rank of a job, and every supported host,
 * is little-endian.
 *
 * Layout: 'R', i64 index, i32 sample, u8 finish_reason, i32 prompt_tokens,
 * i32 completion_tokens, i64 id_int, str completion, str error, str id,
 * u32 n + i32[n] output_ids, u8 has_logprobs + f32[n], u32 m + i32[m]
 * top_ids + f32[m] top_logprobs; str = u32 length (0xFFFFFFFF = NULL) +
 * bytes. */
#ifndef VB_IO_ROW_CODEC_H
#define VB_IO_ROW_CODEC_H

#include <stdbool.h>
#include <stddef.h>

#include "io/results.h"

/* A growable byte buffer; oom is set (and later puts ignored) when realloc
 * fails. Zero-initialise; free(b.p) when done. */
typedef struct vb_bytes {
    unsigned char *p;
    size_t len, cap;
    bool oom;
} vb_bytes;

void vb_bytes_put(vb_bytes *b, const void *src, size_t n);

/* Appends the row's encoding to b (check b->oom). top_n as in vb_results. */
void vb_row_encode(vb_bytes *b, const vb_output_row *row, int32_t top_n);

/* Decodes one encoded row (exactly len bytes) into *row, which owns
 * malloc'd buffers afterwards (vb_output_row_free). top_n as in vb_results
 * (the run's): a row's top alternatives are none or top_n a token, as
 * vb_results_put copies them. Returns 0, or -1 for a malformed buffer (row
 * left empty). */
int vb_row_decode(const void *buf, size_t len, int32_t top_n, vb_output_row *row);

#endif

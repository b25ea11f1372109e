/* The journal: every finished row, appended as it finishes, so no finished
 * completion is lost to a time limit, a preemption or kill -9.
 *
 * World rank 0 owns it: OUT.journal beside OUT (the output path with
 * ".journal" appended). Layout (host byte order; every supported host is
 * little-endian):
 *   "VBJRNL01"                          8-byte magic
 *   record*: u32 length, u32 crc32(payload), payload[length]
 * The first record's payload is 'H' + the run settings as canonical JSON
 * (run_settings.h: model, seed, sampling, input checksum); each later one is
 * 'R' + one vb_output_row. A process killed mid-write leaves a torn last
 * record (short, or failing its CRC): readers ignore it and append mode cuts
 * it off. A bad record followed by good data is not a torn write and is
 * refused as corruption.
 *
 * Appends are buffered and written (write + fdatasync) when the last flush
 * is `flush_interval` seconds old (5 s by default: at most 5 s of finished
 * rows can be lost, and they are recomputed identically on --resume), and
 * whenever vb_journal_flush() is called (on a stop signal, at the end). */
#ifndef VB_IO_JOURNAL_H
#define VB_IO_JOURNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "io/results.h"
#include "util/errors.h"

#define VB_JOURNAL_FLUSH_SECONDS 5.0

typedef struct vb_journal vb_journal;

/* Creates (truncating) `path` and writes the magic and settings header,
 * flushed at once. */
int vb_journal_create(const char *path, const json_t *settings, vb_journal **out, vb_err *err);

/* Reads `path`: *settings gets the header object (NULL when even the header
 * is torn: treat the journal as empty), and every intact row record is put
 * into r (already set up by the caller; later records replace earlier ones
 * with the same key). *good_bytes is the length of the intact prefix and
 * *torn says whether anything after it was cut. Any of the out pointers may
 * be NULL. Returns -1 on I/O error, bad magic or mid-file corruption. */
int vb_journal_read(const char *path, json_t **settings, vb_results *r, int64_t *good_bytes,
                    bool *torn, vb_err *err);

/* Opens an existing journal for appending after its intact prefix
 * (`good_bytes` from vb_journal_read), cutting off a torn tail. */
int vb_journal_open_append(const char *path, int64_t good_bytes, vb_journal **out,
                           vb_err *err);

/* Appends one finished row (buffered; flushes when the interval is due). */
int vb_journal_append(vb_journal *j, const vb_output_row *row, int32_t top_n, vb_err *err);

/* Flushes when the interval is due, else does nothing: the engine calls it
 * once per step so buffered rows reach the disk within the interval even
 * when no row finishes for a while. */
int vb_journal_tick(vb_journal *j, vb_err *err);

/* Writes the buffer and fdatasyncs. Call on a stop signal and at the end. */
int vb_journal_flush(vb_journal *j, vb_err *err);

/* Tests only: changes the flush interval (seconds; 0 = every append). */
void vb_journal_set_flush_interval(vb_journal *j, double seconds);

/* Flushes and closes; NULL is fine. */
int vb_journal_close(vb_journal *j, vb_err *err);

/* "OUT.journal" for output path OUT, malloc'd. */
char *vb_journal_path_for(const char *output);

#endif

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
 * Appends are buffered (1 MiB at most: a larger burst is written as it
 * comes); the engine's vb_journal_tick() once a step writes them to the
 * file, and they are synced (fdatasync) when the last sync is
 * `flush_interval` seconds old (5 s by default: at most 5 s of finished
 * rows can be lost to a node crash, and they are recomputed identically on
 * --resume), and whenever vb_journal_flush() is called (on a stop signal,
 * at the end). Writing every step, not every interval, is what reports a
 * full disk or a removed journal at once, so a run stops instead of
 * computing rows it can no longer save.
 *
 * The first write, sync or removal failure is kept: every later call
 * returns it (vb_journal_failure() says it) and nothing more is written,
 * so the file stays an intact prefix (at most a torn last record) that
 * --resume can read. */
#ifndef VB_IO_JOURNAL_H
#define VB_IO_JOURNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "io/results.h"
#include "util/errors.h"

#define VB_JOURNAL_FLUSH_SECONDS 5.0

typedef struct vb_journal vb_journal;

/* One run per output: a journal open for writing (create, open_append)
 * holds an exclusive flock on it until it is closed, and both refuse (-1,
 * err naming the file and saying another run is writing it) a journal
 * that another process holds. vb_journal_check_unlocked() makes the same
 * refusal without keeping anything open (0 when `path` does not exist):
 * for a start-up that would remove the journal (--overwrite). */
int vb_journal_check_unlocked(const char *path, vb_err *err);

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

/* As vb_journal_read without the settings, but each row is put into r by
 * its place (vb_results_put_at: the record's byte offset), not copied:
 * --resume, whose journal is then opened for appending
 * (vb_journal_open_append) and read back through vb_journal_store. */
int vb_journal_read_located(const char *path, vb_results *r, int64_t *good_bytes, bool *torn,
                            vb_err *err);

/* Reads only the header: *settings as vb_journal_read gives it (NULL when
 * torn), the records after it neither read nor checked (vb_journal_read
 * does that), so a --resume compares its settings without reading the
 * whole journal twice. Returns -1 on I/O error, bad magic, or a header
 * record that is damaged and not the last. */
int vb_journal_read_header(const char *path, json_t **settings, vb_err *err);

/* Opens an existing journal for appending after its intact prefix
 * (`good_bytes` from vb_journal_read), cutting off a torn tail. */
int vb_journal_open_append(const char *path, int64_t good_bytes, vb_journal **out,
                           vb_err *err);

/* Appends one finished row (buffered; flushes when the interval is due). */
int vb_journal_append(vb_journal *j, const vb_output_row *row, int32_t top_n, vb_err *err);

/* The same, and *at gets the byte offset of the row's record (-1 when the
 * journal had failed before: the row was not taken), for
 * vb_results_put_at. A write that fails in this call (the interval was
 * due) returns -1 with *at set: the record stays in the buffer, where
 * vb_journal_store still reads it. */
int vb_journal_append_at(vb_journal *j, const vb_output_row *row, int32_t top_n, int64_t *at,
                         vb_err *err);

/* The journal as the store its rows are read back from (results.h) while
 * it is open: records written to the file, and those still buffered
 * (after a failure, what the file did not take). Read only from the
 * thread that appends. */
vb_row_store vb_journal_store(vb_journal *j);

/* Writes buffered rows to the file, and syncs it when the interval is due:
 * the engine calls it once per step, so a failure is seen the step it
 * happens and rows reach the disk within the interval even when no row
 * finishes for a while. */
int vb_journal_tick(vb_journal *j, vb_err *err);

/* Writes the buffer and fdatasyncs. Call on a stop signal and at the end. */
int vb_journal_flush(vb_journal *j, vb_err *err);

/* NULL while the journal is sound, else the message of its first failure
 * (it names the file). NULL for a NULL journal. */
const char *vb_journal_failure(const vb_journal *j);

/* Tests only: changes the flush interval (seconds; 0 = every append). */
void vb_journal_set_flush_interval(vb_journal *j, double seconds);

/* Flushes and closes (a failed journal: closes and returns its failure);
 * NULL is fine. */
int vb_journal_close(vb_journal *j, vb_err *err);

/* "OUT.journal" for output path OUT, malloc'd. */
char *vb_journal_path_for(const char *output);

#endif

/* Output-file policy at start-up: refuse, overwrite, or resume.
 *
 * The engine calls vb_output_prepare() on world rank 0 before any work (its
 * verdict is broadcast; exit 2 on failure). Then, for the whole run:
 *
 *   vb_results done;  vb_journal *j;
 *   vb_output_prepare(out, settings, resume, overwrite, &done, &j, &err);
 *   ... skip every row with vb_results_row_done(&done, row) ...
 *   for each finished row (or sample):
 *       vb_journal_append_at(j, &row, done.top_n, &at, &err);
 *       vb_results_put_at(&done, &row, at, &err);  // or vb_results_put when
 *                                                  // the journal failed
 *   on a stop (vb_stop_requested(), agreed across ranks) or at the end:
 *       vb_output_finish(out, &meta, &done, j, &err);   // exit 75 or 0
 *
 * Rules (DESIGN.md): without --resume or --overwrite an existing output or
 * journal is refused. --overwrite removes the journal at once and the
 * old output only when the run's loop starts (vb_output_drop_replaced), so
 * a start-up that fails keeps it. --resume loads the journal's
 * rows and the old output's rows and refuses settings that differ from
 * either's saved settings, naming the setting; with neither file present it
 * simply starts (a requeued job can always pass --resume). One run at a
 * time: while another process holds the output's journal (journal.h's
 * lock: a run on the same output still going) every mode is refused
 * before anything is read, removed or truncated. */
#ifndef VB_IO_RESUME_H
#define VB_IO_RESUME_H

#include <jansson.h>
#include <stdbool.h>

#include "io/journal.h"
#include "io/output_writer.h"
#include "io/results.h"
#include "util/errors.h"

/* Refuses (-1, err naming both paths) when the output, the names written
 * or removed beside it (OUTPUT.journal, OUTPUT.tmp) or the report (NULL:
 * none) is a file the run reads, however reached (./path, a symlink, a
 * hard link): one of the inputs' shard files, a file of the model
 * directory model_dir (its config, checkpoint and tokenizer: every file
 * in it; NULL: none), or `extra` (NULL: none; a --chat-template file);
 * or when the output exists and is no regular file (vb_refuse_special_output),
 * or the output's directory or the report cannot be written (writable.h).
 * Called before vb_output_prepare, which removes the first three under
 * --overwrite. */
int vb_output_check_inputs(const char *output, const char *report, const vb_input *in,
                           const char *model_dir, const char *extra, vb_err *err);

/* `settings` is vb_run_settings_json() of this run. `done` is set up here
 * for input_rows x n samples (taken from settings) with the given top_n and
 * id kind, its store the journal (done->store: rows are located, not held).
 * *journal is open for appending on success. On --resume, the old
 * output's rows that the journal lacks are copied into it first. */
int vb_output_prepare(const char *output, const json_t *settings, bool resume, bool overwrite,
                      int32_t top_n, vb_id_kind id_kind, vb_results *done,
                      vb_journal **journal, vb_err *err);

/* Under --overwrite, once the run has started (its engine is set up):
 * removes the old output that vb_output_prepare kept, so that a stopped or
 * killed run never leaves it beside the new run's journal. 0, or -1 with
 * err naming it. */
int vb_output_drop_replaced(const char *output, vb_err *err);

/* Flushes the journal, writes the output (temporary name, renamed) from
 * done's rows (located ones read back from the journal, a block at a
 * time), and, when meta->complete, closes and removes the journal (the
 * output now holds every row). When not complete the journal stays open
 * for more appends and stays on disk for --resume. A journal that failed
 * is not flushed but still read: the output gets every row it holds in
 * its file or its buffer, and the rows after its failure that done holds
 * itself; the caller reports the failure. */
int vb_output_finish(const char *output, const vb_output_meta *meta, vb_results *done,
                     vb_journal **journal, vb_err *err);

#endif

/* Finished rows from dp group leaders to world rank 0, which alone keeps
 * the journal and writes the output (DESIGN.md: "written once, by world
 * rank 0, from what the groups send it as rows finish").
 *
 * A leader calls vb_row_send() for each finished row and vb_rows_done_send()
 * once its share is finished (or it stopped). Rank 0, between its own
 * engine steps (it leads group 0 too), calls vb_row_poll() until it returns
 * 0, putting each row into its vb_results and journal, and counts the
 * groups' done messages before writing the output. The messages travel on
 * a communicator of their own (a dup of the world), so they never match the
 * engine's traffic, and rank 0 probes any tag there: MPI delivers one
 * sender's messages in order, so a group's done message never overtakes its
 * last rows. Rank 0 puts its own group's rows straight into its results:
 * a blocking send to itself could wait forever on a large row. */
#ifndef VB_IO_ROW_TRANSPORT_H
#define VB_IO_ROW_TRANSPORT_H

#include <mpi.h>
#include <stdbool.h>

#include "io/results.h"
#include "util/errors.h"

#define VB_TAG_ROW 7301
#define VB_TAG_ROWS_DONE 7302

typedef struct vb_row_channel {
    MPI_Comm comm; /* dup of the world communicator */
} vb_row_channel;

/* Collective over `world` (every rank calls it once at start-up). */
int vb_row_channel_open(vb_row_channel *ch, MPI_Comm world);
void vb_row_channel_close(vb_row_channel *ch);

/* Sends one row to `dest` (blocking until MPI has the buffer). */
int vb_row_send(const vb_row_channel *ch, const vb_output_row *row, int32_t top_n, int dest,
                vb_err *err);

/* Tells `dest` this rank will send no more rows. */
int vb_rows_done_send(const vb_row_channel *ch, int dest, vb_err *err);

/* Receives one message if there is one (wait = false) or waits for the
 * next (wait = true). Returns 1 with *row filled (caller frees with
 * vb_output_row_free), 2 when it was a done message (*src says whose), 0
 * when nothing was waiting, -1 on a malformed row (one not of top_n, the
 * senders' vb_row_send top_n). */
int vb_row_poll(const vb_row_channel *ch, bool wait, int32_t top_n, vb_output_row *row,
                int *src, vb_err *err);

#endif

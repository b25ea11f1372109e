/* Leader -> rank 0 row messages; see row_transport.h. */
#include "io/row_transport.h"

#include <stdlib.h>
#include <string.h>

#include "mpi/mpi_check.h"
#include "io/row_codec.h"

int vb_row_channel_open(vb_row_channel *ch, MPI_Comm world)
{
    MPI_CHECK(MPI_Comm_dup(world, &ch->comm));
    return 0;
}

void vb_row_channel_close(vb_row_channel *ch)
{
    if (ch->comm != MPI_COMM_NULL)
        MPI_CHECK(MPI_Comm_free(&ch->comm));
}

int vb_row_send(const vb_row_channel *ch, const vb_output_row *row, int32_t top_n, int dest,
                vb_err *err)
{
    vb_bytes b = {0};
    vb_row_encode(&b, row, top_n);
    if (b.oom || b.len > (size_t)INT32_MAX) {
        free(b.p);
        return vb_err_set(err, "row %lld: cannot encode for sending (out of memory)",
                          (long long)row->index);
    }
    MPI_CHECK(MPI_Send(b.p, (int)b.len, MPI_BYTE, dest, VB_TAG_ROW, ch->comm));
    free(b.p);
    return 0;
}

int vb_rows_done_send(const vb_row_channel *ch, int dest, vb_err *err)
{
    (void)err;
    MPI_CHECK(MPI_Send(NULL, 0, MPI_BYTE, dest, VB_TAG_ROWS_DONE, ch->comm));
    return 0;
}

int vb_row_poll(const vb_row_channel *ch, bool wait, int32_t top_n, vb_output_row *row,
                int *src, vb_err *err)
{
    MPI_Status st;
    int flag = 1;
    memset(row, 0, sizeof *row);
    /* Any tag: only our messages use this communicator, and matching both
     * tags keeps each sender's order (rows, then done). */
    if (wait)
        MPI_CHECK(MPI_Probe(MPI_ANY_SOURCE, MPI_ANY_TAG, ch->comm, &st));
    else
        MPI_CHECK(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, ch->comm, &flag, &st));
    if (!flag)
        return 0;
    int count = 0;
    MPI_CHECK(MPI_Get_count(&st, MPI_BYTE, &count));
    unsigned char *buf = malloc(count > 0 ? (size_t)count : 1);
    if (!buf)
        return vb_err_set(err, "receiving a row: out of memory (%d bytes)", count);
    MPI_CHECK(MPI_Recv(buf, count, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, ch->comm,
                       MPI_STATUS_IGNORE));
    if (src)
        *src = st.MPI_SOURCE;
    int rc = 2;
    if (st.MPI_TAG == VB_TAG_ROW)
        rc = vb_row_decode(buf, (size_t)count, top_n, row) == 0
                 ? 1
                 : vb_err_set(err, "row from rank %d is malformed (%d bytes)", st.MPI_SOURCE,
                              count);
    free(buf);
    return rc;
}

/* Every MPI call's status is checked through MPI_CHECK: on failure it names
 * the call, file and line, and aborts the job (MPI's default handler would
 * abort too, but without saying which call). */
#ifndef VB_MPI_CHECK_H
#define VB_MPI_CHECK_H

#include <mpi.h>

#include "util/errors.h"

void vb_mpi_fail(const char *call, int code, const char *file, int line)
    __attribute__((noreturn));

#define MPI_CHECK(call)                                          \
    do {                                                         \
        int vb_mpi_rc_ = (call);                                 \
        if (vb_mpi_rc_ != MPI_SUCCESS)                           \
            vb_mpi_fail(#call, vb_mpi_rc_, __FILE__, __LINE__);  \
    } while (0)

/* For the calls whose failure the caller reports in its own words instead
 * (rows on their way to rank 0: the run stops with its finished rows kept,
 * not an abort): sets err to "WHAT: CALL failed: <MPI's text>", returns -1. */
int vb_mpi_err(vb_err *err, int code, const char *call, const char *what);

#endif

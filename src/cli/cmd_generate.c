/* `voltbatch generate`: HDF5 prompts in, HDF5 completions out, under mpirun.
 *
 * Options are checked before MPI starts so a typo costs no allocation; the
 * layout (world size vs --tp) is checked by every rank before any work;
 * src/run/generate_run.c does the rest. */
#include <stdio.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "cli/generate_options.h"
#include "mpi/dist.h"
#include "mpi/mpi_check.h"
#include "run/generate_run.h"
#include "util/exit_codes.h"
#include "util/signals.h"

int cmd_generate(int argc, char **argv)
{
    static generate_options opts;
    int rc = generate_options_parse(&opts, argc, argv);
    if (rc != 0)
        return rc > 0 ? VB_EXIT_OK : VB_EXIT_USAGE;

    /* Before MPI_Init, which waits for every rank (minutes on a large job):
     * a stop signal then (SIGUSR1 forwarded by mpirun, the scheduler's
     * SIGTERM) must end in a clean stop (75), not kill the rank. Open MPI
     * leaves these handlers alone (it takes only SIGSEGV, SIGBUS, SIGFPE,
     * SIGABRT). */
    vb_signals_install();
    vb_dist_init(&argc, &argv);
    vb_dist dist = {0};
    vb_err err;
    if (vb_dist_setup(&dist, opts.run.tp, &err) != 0) {
        int rank = 0;
        MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
        if (rank == 0)
            fprintf(stderr, "voltbatch generate: %s\n", err.msg);
        vb_dist_finalize();
        return VB_EXIT_USAGE;
    }
    rc = generate_run(&opts.run, &dist);
    vb_dist_free(&dist);
    vb_dist_finalize();
    return rc;
}

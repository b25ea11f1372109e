/* Stop flag set by SIGTERM / SIGUSR1 / SIGINT; see signals.h. */
#include "util/signals.h"

#include <signal.h>
#include <string.h>

#include "mpi/mpi_check.h"
#include "util/exit_codes.h"

/* sig_atomic_t: the only type a handler may portably write. */
static volatile sig_atomic_t stop_signal = 0;

static void on_stop(int sig)
{
    if (sig == SIGINT && stop_signal != 0) {
        /* Second Ctrl-C: the user means it. */
        signal(SIGINT, SIG_DFL);
        raise(SIGINT);
        return;
    }
    if (stop_signal == 0)
        stop_signal = sig;
}

void vb_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

bool vb_stop_requested(void)
{
    return stop_signal != 0;
}

int vb_stop_signal(void)
{
    return (int)stop_signal;
}

void vb_request_stop(int sig)
{
    if (stop_signal == 0)
        stop_signal = sig ? sig : SIGTERM;
}

void vb_signals_reset(void)
{
    stop_signal = 0;
}

bool vb_stop_agreed(MPI_Comm comm, bool local_stop)
{
    int size = 1;
    MPI_CHECK(MPI_Comm_size(comm, &size));
    /* the signal apart from the caller's reason, so that a signal can be
     * marked on every rank and the caller's reason is not taken for one */
    int mine[2] = {(int)stop_signal, local_stop ? 1 : 0}, any[2] = {mine[0], mine[1]};
    if (size > 1)
        MPI_CHECK(MPI_Allreduce(mine, any, 2, MPI_INT, MPI_MAX, comm));
    if (any[0])
        vb_request_stop(any[0]);
    return any[0] != 0 || any[1] != 0;
}

int vb_stop_exit_status(void)
{
    return stop_signal ? VB_EXIT_STOPPED : VB_EXIT_OK;
}

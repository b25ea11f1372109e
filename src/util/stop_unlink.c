/* A file removed when a stop signal ends the process; see stop_unlink.h. */
#include "util/stop_unlink.h"

#include <string.h>
#include <unistd.h>

static const int stop_signals[VB_STOP_UNLINK_SIGNALS] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1};
static const char *volatile stop_unlinks; /* the file while it may exist */

static void on_stop_signal(int sig)
{
    const char *path = stop_unlinks;
    if (path)
        unlink(path); /* async-signal-safe */
    /* SA_RESETHAND made the action the default: it ends the process once
     * this handler returns */
    raise(sig);
}

void vb_stop_unlink_install(vb_stop_unlink *g, const char *path)
{
    stop_unlinks = path;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    for (int k = 0; k < VB_STOP_UNLINK_SIGNALS; k++) {
        g->installed[k] = sigaction(stop_signals[k], NULL, &g->old[k]) == 0 &&
                          g->old[k].sa_handler != SIG_IGN &&
                          sigaction(stop_signals[k], &sa, NULL) == 0;
    }
}

void vb_stop_unlink_remove(vb_stop_unlink *g)
{
    for (int k = 0; k < VB_STOP_UNLINK_SIGNALS; k++)
        if (g->installed[k])
            sigaction(stop_signals[k], &g->old[k], NULL);
    stop_unlinks = NULL;
}

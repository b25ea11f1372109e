/* A file removed when a stop signal ends the process.
 *
 * pack and unpack write OUT.tmp and rename it over OUT once whole; both
 * write as they read (a block of rows at a time), so OUT.tmp exists for
 * most of their run. Ended there by a stop signal (Ctrl-C, the batch
 * system's SIGTERM or SIGUSR1, a closed terminal's SIGHUP), the process
 * left OUT.tmp, and the next run refused to start without --overwrite.
 * While the guard is installed, those signals remove the file first and
 * then end the process by the same signal (the status a shell sees is the
 * same). A signal the caller ignores (nohup's SIGHUP) stays ignored; the
 * old handlers come back when the guard is removed. One guard at a time. */
#ifndef VB_STOP_UNLINK_H
#define VB_STOP_UNLINK_H

#include <signal.h>
#include <stdbool.h>

#define VB_STOP_UNLINK_SIGNALS 4

typedef struct vb_stop_unlink {
    struct sigaction old[VB_STOP_UNLINK_SIGNALS];
    bool installed[VB_STOP_UNLINK_SIGNALS];
} vb_stop_unlink;

/* From now on a stop signal removes path (kept, not copied: it must
 * outlive the guard) before the process ends by that signal. */
void vb_stop_unlink_install(vb_stop_unlink *g, const char *path);

/* Once path is gone or renamed: the old handlers back. */
void vb_stop_unlink_remove(vb_stop_unlink *g);

#endif

/* The never-hang watchdog: a thread that ends the whole job when this rank
 * makes no progress for longer than a deadline.
 *
 * A rank that dies is noticed by mpirun, which ends the job; a rank that
 * hangs (a stopped process, a wedged GPU, a lost network peer) leaves the
 * others blocked in a collective forever, burning the allocation. The main
 * thread arms the watchdog at the start of each engine step (and re-arms it
 * at the next): if a step takes longer than the deadline, the watchdog
 * prints which rank, step and phase were stuck, runs the rescue callback
 * (rank 0 flushes its journal, so every finished row survives) and calls
 * MPI_Abort, which ends every rank with status 1. */
#ifndef VB_WATCHDOG_H
#define VB_WATCHDOG_H

/* Starts the thread. timeout_s: the deadline per step (--collective-
 * timeout); the first step gets first_factor times as long (warm-up). */
int vb_watchdog_start(double timeout_s, double first_factor);

/* The step about to start; resets the deadline. phase is a string literal. */
void vb_watchdog_arm(const char *phase, long step);

/* No deadline (between phases that wait legitimately). */
void vb_watchdog_disarm(void);

/* Called on the watchdog thread just before MPI_Abort. */
void vb_watchdog_set_rescue(void (*fn)(void *), void *ctx);

void vb_watchdog_stop(void);

#endif

/* Stop requests from the batch system.
 *
 * Slurm and PBS send SIGTERM (or SIGUSR1 with --signal) before a time limit
 * or preemption, and a user presses Ctrl-C (SIGINT). None of these may kill
 * the job outright: finished rows must be saved. The handler only sets a
 * flag; the engine polls it between steps, flushes the journal, writes the
 * output, and exits VB_EXIT_STOPPED (75) so a requeued job runs --resume.
 *
 * Under MPI the signal may reach only some ranks (srun signals all, a
 * user's kill reaches one): the engine combines the flag across the ranks
 * that step together once per step (vb_stop_agreed) so every rank stops at
 * the same step.
 *
 * Open MPI's mpirun (4.1, measured) forwards SIGUSR1 to every rank (and
 * SIGUSR2, which is not a stop request: it ends a rank), so SIGUSR1 is the
 * signal to send it; SIGTERM, SIGINT and SIGHUP to mpirun start its own
 * abort: SIGCONT and SIGTERM to every rank, SIGKILL about a second later,
 * and exit 1 whatever the ranks return. README.md "Stopping a run" lists
 * the routes and the status each gives. */
#ifndef VB_SIGNALS_H
#define VB_SIGNALS_H

#include <mpi.h>
#include <stdbool.h>

/* Installs handlers for SIGTERM, SIGUSR1 and SIGINT (sigaction, SA_RESTART so
 * blocking I/O is not interrupted). A second SIGINT while a stop is pending
 * restores the default action, so a user can still force-quit a hung save. */
void vb_signals_install(void);

/* True once any of the three signals has arrived. Async-signal-safe read. */
bool vb_stop_requested(void);

/* The signal that asked to stop (first one), or 0. */
int vb_stop_signal(void);

/* Marks a stop as requested without a signal (the engine's collective
 * agreement, tests). */
void vb_request_stop(int sig);

/* The stop agreement: collective over comm, true on every rank when any
 * rank has a stop requested or passes local_stop (a reason of the
 * caller's own: the engine's failing journal, rank 0's stop notice). A
 * signal agreed this way is marked on every rank (vb_stop_requested,
 * vb_stop_exit_status), with the highest signal number asked. One
 * MPI_Allreduce of two ints, none when comm has one rank; the engine
 * calls it once per step on its TP group, so the group stops at one
 * step. */
bool vb_stop_agreed(MPI_Comm comm, bool local_stop);

/* The exit status for the end of a run: VB_EXIT_STOPPED (75) when a stop
 * was requested, else VB_EXIT_OK. */
int vb_stop_exit_status(void);

/* Clears the flag (tests; a new run in the same process). */
void vb_signals_reset(void);

#endif

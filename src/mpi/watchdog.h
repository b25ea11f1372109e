/* The never-hang watchdog: a thread that ends the whole job when this rank
 * makes no progress for longer than a deadline, or when the GPU
 * communicator reports an asynchronous error.
 *
 * A rank that dies is noticed by mpirun, which ends the job; a rank that
 * hangs (a stopped process, a wedged GPU, a lost network peer) leaves the
 * others blocked in a collective forever, burning the allocation. The main
 * thread arms the watchdog at the start of each engine step (and re-arms it
 * at the next): if a step takes longer than the deadline, or the
 * communicator hook reports an error, the watchdog
 *   1. asks every other rank for a heartbeat (over its own duplicate of
 *      MPI_COMM_WORLD, answered by their watchdog threads, which run while
 *      their main threads are blocked) and names the ranks that do not
 *      answer: those are the lost ones;
 *   2. prints rank, step, phase and collective, and the lost ranks;
 *   3. runs the rescue callback (rank 0 flushes its journal, so every
 *      finished row survives), here and, when the heartbeat reaches them,
 *      on the other ranks, which also print where they are;
 *   4. aborts the communicator through the hook (NCCL's kernels stop
 *      spinning), waiting for it a bounded time (an abort can itself hang);
 *   5. calls MPI_Abort, which ends every rank with status 1.
 *
 * A stop signal (SIGTERM, SIGUSR1) that arrives while a step is blocked
 * also runs the rescue, once: mpirun answers a dead rank by sending the
 * others SIGTERM and, a second later, SIGKILL.
 *
 * src/mpi does not depend on NCCL: the CUDA backend's creator registers
 * the communicator as a poll / abort pair of function pointers. */
#ifndef VB_WATCHDOG_H
#define VB_WATCHDOG_H

/* Starts the thread. timeout_s: the deadline per step (--collective-
 * timeout); the first step gets first_factor times as long (warm-up).
 * Collective over MPI_COMM_WORLD (it duplicates it for heartbeats): every
 * rank calls it at the same point. */
int vb_watchdog_start(double timeout_s, double first_factor);

/* The step about to start; resets the deadline. phase is a string literal. */
void vb_watchdog_arm(const char *phase, long step);

/* No deadline (between phases that wait legitimately). */
void vb_watchdog_disarm(void);

/* This rank is done with its steps and waits for others (rank 0 for the
 * other groups' last rows, every rank at the final barrier): a wait of no
 * set length, so no deadline; instead, every timeout_s the watchdog asks
 * every rank for a heartbeat (a probe the others do not take for the end
 * of the job) and ends the job, naming them, when some do not answer
 * within a few seconds: a stopped or cut-off rank of another group would
 * keep this one waiting forever. Arming again ends the wait. phase is a
 * string literal. */
void vb_watchdog_wait(const char *phase);

/* Called once on the watchdog thread when the job is ending: on the rank
 * that ends it, before the communicator abort and MPI_Abort, and on every
 * other rank when the ending rank's heartbeat reaches it. Never while the
 * main thread holds the rescue (below). */
void vb_watchdog_set_rescue(void (*fn)(void *), void *ctx);

/* The main thread holds the rescue while it touches what the rescue saves
 * (rank 0: the journal); a rescue waits for it at most two seconds. */
void vb_watchdog_hold_rescue(void);
void vb_watchdog_release_rescue(void);

/* The communicator the steps' collectives run on, for the messages
 * ("the MPI all-reduce of TP group 0 (world ranks 0-1)"); copied. */
void vb_watchdog_set_collective(const char *what);

/* The GPU communicator: poll(ctx, msg, len) returns non-zero with a message
 * when it holds an asynchronous error (called from the watchdog thread ten
 * times a second); abort(ctx) aborts it. Either may be NULL. Clearing
 * (all NULL) waits for a poll in progress, so the communicator can be
 * destroyed right after. */
void vb_watchdog_set_comm(int (*poll)(void *ctx, char *msg, int len), void (*abort)(void *ctx),
                          void *ctx);

/* Ends the job from the calling thread the way a timeout does (heartbeats,
 * message, rescue, communicator abort, MPI_Abort): for a fatal condition
 * found outside the watchdog thread, e.g. a communicator set-up that did
 * not finish in time. `what` says what happened. */
void vb_watchdog_fail(const char *what) __attribute__((noreturn));

/* Ranks that do not answer a heartbeat within wait_s: lost[i] = 1. Needs
 * the watchdog started; returns -1 (nothing known) without it or without
 * MPI_THREAD_MULTIPLE. Exposed for tests. */
int vb_watchdog_find_lost(double wait_s, unsigned char *lost, int n);

void vb_watchdog_stop(void);

#endif

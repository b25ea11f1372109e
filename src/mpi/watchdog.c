/* The never-hang watchdog; see watchdog.h. */
#include "mpi/watchdog.h"

#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mpi/mpi_check.h"
#include "util/log.h"
#include "util/signals.h"

#define WD_TICK_NS (100 * 1000 * 1000) /* checks ten times a second */
#define WD_HEARTBEAT_WAIT_S 2.0        /* a live rank's watchdog answers within a tick or two */
#define WD_ABORT_WAIT_S 3.0            /* a communicator abort that takes longer is left behind */
#define WD_TAG_PING 1  /* this rank is ending the job: are you alive? */
#define WD_TAG_PONG 2
#define WD_TAG_ALIVE 3 /* a waiting rank's probe: are you alive? (nothing is ending) */

static pthread_t wd_thread;
static pthread_mutex_t wd_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cond = PTHREAD_COND_INITIALIZER;
static bool wd_running, wd_armed, wd_first = true, wd_waiting;
static double wd_timeout, wd_first_factor, wd_deadline, wd_armed_at, wd_next_probe;
static const char *wd_phase = "start-up";
static long wd_step = -1;
static char wd_collective[160] = "none registered";
static void (*wd_rescue)(void *);
static void *wd_rescue_ctx;
static atomic_int wd_failing; /* the first failure ends the job; others wait */
static double wd_stop_seen;   /* when a stop signal was first seen (0: none) */
static bool wd_stop_saved;
#define WD_STOP_SAVE_S 0.1    /* a step still blocked this long after a stop signal */
/* Held by the main thread while it touches what the rescue saves (rank 0's
 * journal), so that the rescue never runs in the middle of an append. */
static pthread_mutex_t rescue_lock = PTHREAD_MUTEX_INITIALIZER;

/* The communicator hook, under its own lock so that a poll never holds up
 * arm() on the main thread, and clearing waits for a poll in progress. */
static pthread_mutex_t comm_lock = PTHREAD_MUTEX_INITIALIZER;
static int (*comm_poll)(void *, char *, int);
static void (*comm_abort)(void *);
static void *comm_ctx;

/* Heartbeats: a duplicate of MPI_COMM_WORLD that only watchdogs use, and
 * one outstanding send per peer (a peer that never takes it is lost). */
static pthread_mutex_t hb_lock = PTHREAD_MUTEX_INITIALIZER;
static MPI_Comm hb_comm = MPI_COMM_NULL;
static int hb_rank = -1, hb_size;
static MPI_Request *hb_req;
static long *hb_buf;
static atomic_int hb_pinged_by = -1; /* the first rank that asked whether we are alive */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* "at step N", or during start-up (no step yet) "before the first step" */
static const char *step_text(long step, char *buf, size_t n)
{
    if (step < 0)
        return "before the first step";
    snprintf(buf, n, "at step %ld", step);
    return buf;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* Sends `tag` with this rank's step to peer p unless the last message to p
 * is still pending. Errors are ignored: a peer that cannot be reached is
 * reported as not answering. hb_lock held. */
static void hb_send(int p, int tag)
{
    if (hb_req[p] != MPI_REQUEST_NULL) {
        int done = 0;
        if (MPI_Test(&hb_req[p], &done, MPI_STATUS_IGNORE) != MPI_SUCCESS || !done)
            return;
    }
    pthread_mutex_lock(&wd_lock);
    hb_buf[p] = wd_step;
    pthread_mutex_unlock(&wd_lock);
    if (MPI_Isend(&hb_buf[p], 1, MPI_LONG, p, tag, hb_comm, &hb_req[p]) != MPI_SUCCESS)
        hb_req[p] = MPI_REQUEST_NULL;
}

#define WD_RESCUE_WAIT_S 2.0 /* the main thread leaves its journal section within this */

/* Runs the rescue callback once, when the main thread is not inside what
 * it saves; after WD_RESCUE_WAIT_S it gives up (rows finished since the
 * last flush are then recomputed by --resume). */
static void run_rescue(int rank)
{
    pthread_mutex_lock(&wd_lock);
    void (*rescue)(void *) = wd_rescue;
    void *ctx = wd_rescue_ctx;
    pthread_mutex_unlock(&wd_lock);
    if (!rescue)
        return;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)WD_RESCUE_WAIT_S;
    if (pthread_mutex_timedlock(&rescue_lock, &until) != 0) {
        vb_error("rank %d: the main thread stayed in its journal section for %.0f s; rows "
                 "since the last journal flush will be recomputed by --resume",
                 rank, WD_RESCUE_WAIT_S);
        return;
    }
    rescue(ctx);
    pthread_mutex_unlock(&rescue_lock);
    fflush(stderr);
}

/* A ping means another rank is ending the job: every rank says where it
 * is (once), so the log shows the whole job's state, not only the stuck
 * rank's. */
static void report_pinged(int from)
{
    static bool reported;
    if (reported || atomic_load(&wd_failing))
        return;
    reported = true;
    pthread_mutex_lock(&wd_lock);
    long step = wd_step;
    const char *phase = wd_armed ? wd_phase : "between steps";
    char collective[sizeof wd_collective];
    memcpy(collective, wd_collective, sizeof collective);
    pthread_mutex_unlock(&wd_lock);
    char at[48];
    vb_error("rank %d: rank %d is ending the job; this rank is alive %s, phase: %s, "
             "collective: %s",
             hb_rank, from, step_text(step, at, sizeof at), phase, collective);
    /* rank 0 saves its finished rows before the abort reaches it */
    run_rescue(hb_rank);
}

/* Takes every heartbeat message waiting: pings are answered, pongs marked
 * in answered (may be NULL). Matched probes, so that two threads never
 * receive each other's message. hb_lock held. */
static void hb_service(unsigned char *answered)
{
    for (;;) {
        int flag = 0;
        MPI_Message m;
        MPI_Status st;
        if (MPI_Improbe(MPI_ANY_SOURCE, MPI_ANY_TAG, hb_comm, &flag, &m, &st) != MPI_SUCCESS ||
            !flag)
            return;
        long step = 0;
        if (MPI_Mrecv(&step, 1, MPI_LONG, &m, &st) != MPI_SUCCESS)
            return;
        if (st.MPI_TAG == WD_TAG_PING) {
            hb_send(st.MPI_SOURCE, WD_TAG_PONG);
            int none = -1; /* reported by watch(), outside hb_lock */
            atomic_compare_exchange_strong(&hb_pinged_by, &none, st.MPI_SOURCE);
        } else if (st.MPI_TAG == WD_TAG_ALIVE) {
            hb_send(st.MPI_SOURCE, WD_TAG_PONG);
        } else if (answered && st.MPI_SOURCE >= 0 && st.MPI_SOURCE < hb_size)
            answered[st.MPI_SOURCE] = 1;
    }
}

/* vb_watchdog_find_lost with the probe's tag: PING (the job is ending) or
 * ALIVE (a waiting rank's check). */
static int find_lost(double wait_s, unsigned char *lost, int n, int tag)
{
    if (hb_comm == MPI_COMM_NULL || n < hb_size)
        return -1;
    unsigned char *answered = calloc((size_t)hb_size, 1);
    if (!answered)
        return -1;
    answered[hb_rank] = 1;
    pthread_mutex_lock(&hb_lock);
    for (int p = 0; p < hb_size; p++)
        if (p != hb_rank)
            hb_send(p, tag);
    pthread_mutex_unlock(&hb_lock);
    double end = now_s() + wait_s;
    int missing = hb_size - 1;
    while (missing > 0 && now_s() < end) {
        pthread_mutex_lock(&hb_lock);
        hb_service(answered);
        pthread_mutex_unlock(&hb_lock);
        missing = 0;
        for (int p = 0; p < hb_size; p++)
            missing += !answered[p];
        if (missing)
            sleep_s(0.01);
    }
    for (int p = 0; p < n; p++)
        lost[p] = p < hb_size && !answered[p];
    free(answered);
    return 0;
}

int vb_watchdog_find_lost(double wait_s, unsigned char *lost, int n)
{
    return find_lost(wait_s, lost, n, WD_TAG_PING);
}

/* The ranks that do not answer a probe with tag (PING or ALIVE) within
 * WD_HEARTBEAT_WAIT_S, as "rank 3, 5" into buf; how many, or -1 when no
 * probe could be made (heartbeats off, out of memory). */
static int lost_ranks(int tag, char *buf, size_t len)
{
    buf[0] = '\0';
    unsigned char *lost = hb_comm == MPI_COMM_NULL ? NULL : calloc((size_t)hb_size, 1);
    if (!lost || find_lost(WD_HEARTBEAT_WAIT_S, lost, hb_size, tag)) {
        free(lost);
        return -1;
    }
    int n_lost = 0;
    size_t used = 0;
    for (int p = 0; p < hb_size && used + 16 < len; p++)
        if (lost[p]) {
            int k = snprintf(buf + used, len - used, "%s%d", n_lost++ ? ", " : "rank ", p);
            used += k > 0 ? (size_t)k : 0;
        }
    free(lost);
    return n_lost;
}

static void *run_abort(void *arg)
{
    atomic_int *done = arg;
    pthread_mutex_lock(&comm_lock);
    if (comm_abort)
        comm_abort(comm_ctx);
    comm_poll = NULL, comm_abort = NULL; /* aborted: never polled again */
    pthread_mutex_unlock(&comm_lock);
    atomic_store(done, 1);
    return NULL;
}

/* "; rank 1 did not answer a heartbeat within 2 s: it has died, stopped
 * or lost its network" into buf. */
static void describe_lost(char *buf, size_t len)
{
    buf[0] = '\0';
    pthread_mutex_lock(&wd_lock);
    bool running = wd_running;
    pthread_mutex_unlock(&wd_lock);
    if (!running) /* before the step loop: no heartbeats yet */
        return;
    if (hb_comm == MPI_COMM_NULL) {
        snprintf(buf, len, "; which rank is lost is unknown (MPI gave no "
                           "MPI_THREAD_MULTIPLE for heartbeats)");
        return;
    }
    char who[256];
    int n_lost = lost_ranks(WD_TAG_PING, who, sizeof who);
    if (n_lost > 0)
        snprintf(buf, len, "; lost %s (no answer to a heartbeat within %.0f s: died, stopped or "
                 "cut off)", who, WD_HEARTBEAT_WAIT_S);
    else if (n_lost == 0)
        snprintf(buf, len, "; every rank answered a heartbeat (a slow or wedged GPU or "
                           "communicator, not a lost process)");
}

void vb_watchdog_fail(const char *what)
{
    if (atomic_exchange(&wd_failing, 1)) {
        /* another thread is ending the job: let it finish */
        for (;;)
            sleep_s(1);
    }
    /* No MPI_CHECK on the way out: a failing call must not stop us from
     * reaching MPI_Abort. */
    int rank = -1;
    (void)MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    char lost[512];
    describe_lost(lost, sizeof lost);
    pthread_mutex_lock(&wd_lock);
    const char *phase = wd_phase;
    long step = wd_step;
    char collective[sizeof wd_collective];
    memcpy(collective, wd_collective, sizeof collective);
    pthread_mutex_unlock(&wd_lock);
    char at[48];
    vb_error("rank %d: %s %s, phase: %s, collective: %s%s; ending the job "
             "(raise --collective-timeout if steps are legitimately slower)",
             rank, what, step_text(step, at, sizeof at), phase, collective, lost);
    fflush(stderr);
    run_rescue(rank);
    /* The abort runs beside us: NCCL's abort waits for its own threads,
     * which can hang on a dead peer; MPI_Abort ends this process anyway. */
    static atomic_int aborted;
    pthread_t t;
    if (pthread_create(&t, NULL, run_abort, &aborted) == 0) {
        pthread_detach(t);
        for (double end = now_s() + WD_ABORT_WAIT_S; !atomic_load(&aborted) && now_s() < end;)
            sleep_s(0.01);
        if (!atomic_load(&aborted))
            vb_error("rank %d: the communicator abort did not return in %.0f s; ending anyway",
                     rank, WD_ABORT_WAIT_S);
    }
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

static void *watch(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&wd_lock);
    while (wd_running) {
        struct timespec wake;
        clock_gettime(CLOCK_REALTIME, &wake);
        wake.tv_nsec += WD_TICK_NS;
        if (wake.tv_nsec >= 1000000000L) {
            wake.tv_sec++;
            wake.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&wd_cond, &wd_lock, &wake);
        if (!wd_running)
            break;
        bool late = wd_armed && now_s() >= wd_deadline;
        double stuck = now_s() - wd_armed_at;
        bool probe = wd_waiting && now_s() >= wd_next_probe;
        if (probe)
            wd_next_probe = now_s() + wd_timeout;
        const char *waiting_for = wd_phase;
        /* A stop signal while a step is blocked: mpirun sends SIGTERM to
         * the others when a rank dies, then SIGKILL a moment later, and
         * the step never ends. Save the rows now, once, if the step has
         * not ended shortly after the signal. */
        if (vb_stop_requested() && wd_stop_seen == 0)
            wd_stop_seen = now_s();
        bool save = !wd_stop_saved && wd_stop_seen > 0 && wd_armed &&
                    wd_armed_at < wd_stop_seen && now_s() - wd_stop_seen >= WD_STOP_SAVE_S;
        if (save)
            wd_stop_saved = true;
        pthread_mutex_unlock(&wd_lock);
        if (save)
            run_rescue(hb_rank);

        /* other ranks' watchdogs may be asking whether we are alive */
        if (hb_comm != MPI_COMM_NULL) {
            pthread_mutex_lock(&hb_lock);
            hb_service(NULL);
            pthread_mutex_unlock(&hb_lock);
            int from = atomic_load(&hb_pinged_by);
            if (from >= 0)
                report_pinged(from);
        }
        char msg[256] = "";
        int comm_failed = 0;
        pthread_mutex_lock(&comm_lock);
        if (comm_poll)
            comm_failed = comm_poll(comm_ctx, msg, (int)sizeof msg);
        pthread_mutex_unlock(&comm_lock);
        if (comm_failed) {
            char what[320];
            snprintf(what, sizeof what, "the communicator reported an error (%s)", msg);
            vb_watchdog_fail(what);
        }
        if (late) {
            char what[96];
            snprintf(what, sizeof what, "no progress for %.0f s", stuck);
            vb_watchdog_fail(what);
        }
        char who[128];
        bool gone = probe && lost_ranks(WD_TAG_ALIVE, who, sizeof who) > 0;
        if (gone) {
            /* still waiting? A rank past the job's last barrier stops its
             * watchdog, so a probe in flight then goes unanswered: the
             * main thread ends the wait right after that barrier. */
            pthread_mutex_lock(&wd_lock);
            gone = wd_running && wd_waiting;
            pthread_mutex_unlock(&wd_lock);
        }
        if (gone) {
            char what[320];
            snprintf(what, sizeof what, "%s did not answer a heartbeat within %.0f s while this "
                     "rank was %s", who, WD_HEARTBEAT_WAIT_S, waiting_for);
            vb_watchdog_fail(what);
        }
        pthread_mutex_lock(&wd_lock);
    }
    pthread_mutex_unlock(&wd_lock);
    return NULL;
}

int vb_watchdog_start(double timeout_s, double first_factor)
{
    pthread_mutex_lock(&wd_lock);
    wd_timeout = timeout_s;
    wd_first_factor = first_factor;
    wd_running = true;
    wd_armed = false;
    wd_first = true;
    pthread_mutex_unlock(&wd_lock);
    /* Heartbeats need a second thread inside MPI while the main thread is
     * blocked in a collective. */
    int level = MPI_THREAD_SINGLE;
    MPI_CHECK(MPI_Query_thread(&level));
    hb_comm = MPI_COMM_NULL;
    if (level == MPI_THREAD_MULTIPLE) {
        MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &hb_comm));
        /* a send to a dead peer must come back as an error, not end us */
        MPI_CHECK(MPI_Comm_set_errhandler(hb_comm, MPI_ERRORS_RETURN));
        MPI_CHECK(MPI_Comm_rank(hb_comm, &hb_rank));
        MPI_CHECK(MPI_Comm_size(hb_comm, &hb_size));
        hb_req = malloc((size_t)hb_size * sizeof *hb_req);
        hb_buf = calloc((size_t)hb_size, sizeof *hb_buf);
        if (!hb_req || !hb_buf) {
            free(hb_req), free(hb_buf);
            hb_req = NULL, hb_buf = NULL;
            MPI_CHECK(MPI_Comm_free(&hb_comm));
            hb_comm = MPI_COMM_NULL;
        } else {
            for (int p = 0; p < hb_size; p++)
                hb_req[p] = MPI_REQUEST_NULL;
        }
    }
    if (pthread_create(&wd_thread, NULL, watch, NULL) != 0) {
        wd_running = false;
        return -1;
    }
    return 0;
}

void vb_watchdog_arm(const char *phase, long step)
{
    pthread_mutex_lock(&wd_lock);
    wd_armed_at = now_s();
    wd_deadline = wd_armed_at + wd_timeout * (wd_first ? wd_first_factor : 1.0);
    wd_first = false;
    wd_phase = phase;
    wd_step = step;
    wd_armed = true;
    wd_waiting = false;
    pthread_mutex_unlock(&wd_lock);
}

void vb_watchdog_disarm(void)
{
    pthread_mutex_lock(&wd_lock);
    wd_armed = false;
    wd_waiting = false;
    pthread_mutex_unlock(&wd_lock);
}

void vb_watchdog_wait(const char *phase)
{
    pthread_mutex_lock(&wd_lock);
    wd_armed = false;
    wd_waiting = true;
    wd_phase = phase;
    wd_next_probe = now_s() + wd_timeout;
    pthread_mutex_unlock(&wd_lock);
}

void vb_watchdog_set_rescue(void (*fn)(void *), void *ctx)
{
    pthread_mutex_lock(&wd_lock);
    wd_rescue = fn;
    wd_rescue_ctx = ctx;
    pthread_mutex_unlock(&wd_lock);
}

void vb_watchdog_hold_rescue(void)
{
    pthread_mutex_lock(&rescue_lock);
}

void vb_watchdog_release_rescue(void)
{
    pthread_mutex_unlock(&rescue_lock);
}

void vb_watchdog_set_collective(const char *what)
{
    pthread_mutex_lock(&wd_lock);
    snprintf(wd_collective, sizeof wd_collective, "%s", what ? what : "none registered");
    pthread_mutex_unlock(&wd_lock);
}

void vb_watchdog_set_comm(int (*poll)(void *ctx, char *msg, int len), void (*abort)(void *ctx),
                          void *ctx)
{
    pthread_mutex_lock(&comm_lock);
    comm_poll = poll;
    comm_abort = abort;
    comm_ctx = ctx;
    pthread_mutex_unlock(&comm_lock);
}

void vb_watchdog_stop(void)
{
    pthread_mutex_lock(&wd_lock);
    bool was = wd_running;
    wd_running = false;
    pthread_cond_signal(&wd_cond);
    pthread_mutex_unlock(&wd_lock);
    if (was)
        pthread_join(wd_thread, NULL);
    if (hb_comm != MPI_COMM_NULL) {
        /* a heartbeat still on its way to a peer that has finished is
         * dropped, not waited for: the run is over */
        for (int p = 0; p < hb_size; p++)
            if (hb_req[p] != MPI_REQUEST_NULL)
                MPI_CHECK(MPI_Request_free(&hb_req[p]));
        MPI_CHECK(MPI_Comm_free(&hb_comm));
        hb_comm = MPI_COMM_NULL;
    }
    free(hb_req), free(hb_buf);
    hb_req = NULL, hb_buf = NULL;
}

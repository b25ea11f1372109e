/* The never-hang watchdog; see watchdog.h. */
#include "dist/watchdog.h"

#include <mpi.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "util/log.h"

static pthread_t wd_thread;
static pthread_mutex_t wd_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cond = PTHREAD_COND_INITIALIZER;
static bool wd_running, wd_armed, wd_first = true;
static double wd_timeout, wd_first_factor, wd_deadline, wd_armed_at;
static const char *wd_phase = "";
static long wd_step;
static void (*wd_rescue)(void *);
static void *wd_rescue_ctx;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *watch(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&wd_lock);
    while (wd_running) {
        struct timespec wake;
        clock_gettime(CLOCK_REALTIME, &wake);
        wake.tv_nsec += 200 * 1000 * 1000; /* check five times a second */
        if (wake.tv_nsec >= 1000000000L) {
            wake.tv_sec++;
            wake.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&wd_cond, &wd_lock, &wake);
        if (!wd_running || !wd_armed || now_s() < wd_deadline)
            continue;
        int rank = -1;
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        vb_error("rank %d: no progress for %.0f s in %s at step %ld: a rank of this job has "
                 "probably died or hung (stopped process, wedged GPU, lost network peer); "
                 "ending the job (raise --collective-timeout if steps are legitimately slower)",
                 rank, now_s() - wd_armed_at, wd_phase, wd_step);
        void (*rescue)(void *) = wd_rescue;
        void *ctx = wd_rescue_ctx;
        pthread_mutex_unlock(&wd_lock);
        if (rescue)
            rescue(ctx);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, 1);
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
    pthread_mutex_unlock(&wd_lock);
}

void vb_watchdog_disarm(void)
{
    pthread_mutex_lock(&wd_lock);
    wd_armed = false;
    pthread_mutex_unlock(&wd_lock);
}

void vb_watchdog_set_rescue(void (*fn)(void *), void *ctx)
{
    pthread_mutex_lock(&wd_lock);
    wd_rescue = fn;
    wd_rescue_ctx = ctx;
    pthread_mutex_unlock(&wd_lock);
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
}

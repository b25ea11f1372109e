/* One step's sampling across a TP group (see run_sample.h). */
#include "run/run_sample.h"

#include <stdlib.h>
#include <string.h>

#include "engine/sampler_mpi.h"

/* Rows a step needs before its choices go to the pool: below this the
 * wake-up of the workers (tens of microseconds) costs more than it saves. */
#define CHOOSE_POOL_MIN_ROWS 32

int run_sampler_init(run_sampler *s, MPI_Comm tp_comm, int tp, int vocab_start,
                     int vocab_local, bool host_only, int choose_threads, vb_err *err)
{
    memset(s, 0, sizeof *s);
    s->tp_comm = tp_comm;
    s->tp = tp;
    s->vocab_start = vocab_start;
    s->vocab_local = vocab_local;
    s->host_only = host_only;
    if (sampler_workspace_init(&s->ws, vocab_local) != 0)
        return vb_err_set(err, "sampler: out of memory for a vocabulary slice of %d", vocab_local);
    if (choose_threads > 1 && !(s->choose_pool = cpu_pool_create(choose_threads))) {
        sampler_workspace_free(&s->ws);
        return vb_err_set(err, "sampler: cannot start %d threads", choose_threads);
    }
    return 0;
}

void run_sampler_free(run_sampler *s)
{
    sampler_workspace_free(&s->ws);
    if (s->choose_pool)
        cpu_pool_destroy(s->choose_pool);
    free(s->local);
    free(s->gathered);
    free(s->merged);
    free(s->params);
    free(s->logit_rows);
    memset(s, 0, sizeof *s);
}

static int reserve(run_sampler *s, int n, size_t bytes, vb_err *err)
{
    if (n > s->cap_rows) {
        const sampling_params **p = realloc(s->params, (size_t)n * sizeof *p);
        if (p)
            s->params = p;
        int *lr = p ? realloc(s->logit_rows, (size_t)n * sizeof *lr) : NULL;
        if (lr)
            s->logit_rows = lr;
        if (!p || !lr)
            return vb_err_set(err, "sampler: out of memory");
        s->cap_rows = n;
    }
    if (bytes > s->cap_local) {
        char *a = realloc(s->local, bytes);
        if (a) s->local = a;
        char *m = a ? realloc(s->merged, bytes) : NULL;
        if (m) s->merged = m;
        char *g = m ? realloc(s->gathered, bytes * (size_t)s->tp) : NULL;
        if (g) s->gathered = g;
        if (!a || !m || !g)
            return vb_err_set(err, "sampler: out of memory for %zu bytes of candidates", bytes);
        s->cap_local = bytes;
    }
    return 0;
}

/* The step's n_cand, and room for n rows of summaries. Returns n_cand or -1. */
static int prepare(run_sampler *s, const sampler_row *rows, int n, vb_err *err)
{
    /* Every rank of the group has the same rows, so the same n_cand and the
     * same failure verdict for the sizes; an out-of-memory on one rank only
     * would leave the others in the Allgather, which the watchdog handles. */
    if (reserve(s, n, 0, err))
        return -1;
    for (int i = 0; i < n; i++)
        s->params[i] = rows[i].params;
    int n_cand = sampler_candidates_needed(s->params, n);
    if (reserve(s, n, (size_t)n * sampler_summary_bytes(n_cand), err))
        return -1;
    return n_cand;
}

static void summarize_host(run_sampler *s, const sampler_row *rows, const float *const *logits,
                           int n, int n_cand)
{
    for (int i = 0; i < n; i++)
        sampler_summarize(&s->ws, &rows[i], logits[i], s->vocab_start, s->vocab_local, n_cand,
                          sampler_summary_at(s->local, i, n_cand));
    s->host_steps++;
}

/* A step's choices, in tasks of consecutive rows: each row's token is a
 * function of its own summary, so the split changes nothing. */
typedef struct choose_job {
    const sampler_row *rows;
    const char *merged;
    int n, n_cand, per_task;
    sample_result *out;
} choose_job;

static void choose_rows(void *arg, int task, int worker)
{
    (void)worker;
    const choose_job *j = arg;
    int end = (task + 1) * j->per_task < j->n ? (task + 1) * j->per_task : j->n;
    for (int i = task * j->per_task; i < end; i++)
        sampler_choose(&j->rows[i], sampler_summary_at_const(j->merged, i, j->n_cand), &j->out[i]);
}

/* From the local summaries on: exchange, merge, choose (the same on every
 * path and every rank). */
static int finish(run_sampler *s, const sampler_row *rows, int n, int n_cand, sample_result *out,
                  vb_err *err)
{
    if (s->tp > 1) {
        if (sampler_exchange_mpi(s->tp_comm, s->local, n, n_cand, s->gathered, err))
            return -1;
        sampler_merge_gathered(s->gathered, s->tp, n, n_cand, s->merged);
    } else {
        sampler_merge_gathered(s->local, 1, n, n_cand, s->merged);
    }
    choose_job j = {rows, s->merged, n, n_cand, n, out};
    if (s->choose_pool && n >= CHOOSE_POOL_MIN_ROWS) {
        int tasks = 4 * cpu_pool_threads(s->choose_pool); /* some slack for uneven rows */
        j.per_task = (n + tasks - 1) / tasks;
        cpu_pool_run(s->choose_pool, (n + j.per_task - 1) / j.per_task, choose_rows, &j);
    } else {
        choose_rows(&j, 0, 0); /* one task: every row */
    }
    return 0;
}

int run_sampler_step(run_sampler *s, const sampler_row *rows, const float *const *logits, int n,
                     sample_result *out, vb_err *err)
{
    if (n <= 0)
        return 0;
    int n_cand = prepare(s, rows, n, err);
    if (n_cand < 0)
        return -1;
    summarize_host(s, rows, logits, n, n_cand);
    return finish(s, rows, n, n_cand, out, err);
}

int run_sampler_step_backend(run_sampler *s, run_backend *rb, const float *logits,
                             size_t n_logits, const sampler_row *rows,
                             const float *const *row_logits, int n, sample_result *out,
                             vb_err *err)
{
    if (n <= 0)
        return 0;
    int n_cand = prepare(s, rows, n, err);
    if (n_cand < 0)
        return -1;
    vb_backend *b = rb->b;
    bool done = false;
    /* row_logits point into the backend's buffer: rows of vocab_local */
    for (int i = 0; i < n; i++)
        s->logit_rows[i] = (int)((row_logits[i] - logits) / s->vocab_local);
    if (b->sample && !s->host_only &&
        b->sample(b, logits, s->logit_rows, rows, n, s->vocab_local, n_cand, out) == 0) {
        /* the whole vocabulary on this rank: the decisions made where the
         * logits are, nothing left to exchange or merge */
        s->device_steps++;
        return 0;
    }
    if (b->summarize && !s->host_only) {
        done = b->summarize(b, logits, s->logit_rows, rows, n, s->vocab_start, s->vocab_local,
                            n_cand, s->local) == 0;
        if (done)
            s->device_steps++;
    }
    if (!done) {
        /* the CPU backend, or n_cand beyond the kernel's limit: the same
         * rows, copied to the host (a no-op on the CPU backend) */
        const float *host = run_backend_logits(rb, logits, n_logits);
        if (!host)
            return vb_err_set(err, "sampler: out of host memory for %zu logits", n_logits);
        for (int i = 0; i < n; i++)
            sampler_summarize(&s->ws, &rows[i], host + (row_logits[i] - logits), s->vocab_start,
                              s->vocab_local, n_cand, sampler_summary_at(s->local, i, n_cand));
        s->host_steps++;
    }
    return finish(s, rows, n, n_cand, out, err);
}

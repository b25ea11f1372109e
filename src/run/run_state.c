/* The run's state: failure agreement, and its release (see run_state.h). */
#include "run/run_state.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "model/model_load.h"
#include "mpi/mpi_check.h"
#include "run/run_feed.h"
#include "util/exit_codes.h"

double run_wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int run_agree(const run_state *r, int code, const char *phase, const vb_err *err)
{
    int worst = 0, first = INT_MAX, mine = code ? r->d->world_rank : INT_MAX;
    /* ranks that cannot agree on the outcome cannot end the job cleanly:
     * a failure here ends it (MPI_CHECK), never reads as "all went well" */
    MPI_CHECK(MPI_Allreduce(&code, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    MPI_CHECK(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    if (code && r->d->world_rank == first) {
        fprintf(stderr, "voltbatch %s: rank %d: %s: %s\n", r->cfg->command, r->d->world_rank,
                phase, err->msg);
        fflush(stderr);
    }
    return worst;
}

void run_die(const run_state *r, const char *phase, long step, const vb_err *err)
{
    fprintf(stderr, "voltbatch %s: rank %d (group %d): %s at step %ld: %s\n", r->cfg->command,
            r->d->world_rank, r->d->dp_rank, phase, step, err->msg);
    fflush(stderr);
    vb_dist_abort(VB_EXIT_FAILURE);
}

static void engine_free(run_engine *e, run_model *m)
{
    if (e->smp_init)
        run_sampler_free(&e->smp);
    if (e->sched_init)
        sched_free(&e->sched);
    if (e->sb_init)
        step_batch_free(&e->sb);
    if (e->fs_init)
        forward_free(&e->fs);
    if (e->kv_alloc)
        kv_cache_free(&e->kv, e->b);
    run_backend_close(&e->rb, &m->config);
    model_weights_free(&m->w);
}

static void work_free(run_work *w)
{
    run_feed_free(w);
    free(w->my_rows);
    free(w->group_of_row);
}

void run_state_free(run_state *r)
{
    vb_err err;
    bench_metrics_free(&r->stats.bm);
    engine_free(&r->eng, &r->model);
    work_free(&r->work);
    run_rows_free(&r->out.finished);
    if (r->out.journal)
        vb_journal_close(r->out.journal, &err);
    if (r->root && r->out.done.loc)
        vb_results_free(&r->out.done);
    if (r->out.settings)
        json_decref(r->out.settings);
    if (r->work.in_open)
        vb_input_close(&r->work.in);
#if RUN_HAVE_TOKENIZER
    chat_template_free(r->text.chat_tmpl);
    if (r->text.tok)
        tokenizer_free(r->text.tok);
#endif
}

/* The step loop: schedule -> batch -> forward -> sample -> finish (see
 * run_loop.h). */
#include "run/run_loop.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "mpi/mpi_check.h"
#include "mpi/watchdog.h"
#include "run/run_feed.h"
#include "run/run_root.h"
#include "util/signals.h"

#define RUN_SEND_INTERVAL_S 1.0     /* leaders send finished rows at most this often */

/* A step's sampling rows and what came of them, max_batch of each. */
typedef struct step_buffers {
    sampler_row *srows;
    const float **lp;           /* each row's logits */
    sample_result *res;
    int32_t *sampled;           /* the tokens, for the scheduler (0 for an error) */
    int *slot_of;               /* scheduler slot and sequence id of each row */
    int64_t *id_of;
} step_buffers;

static void step_buffers_free(step_buffers *sb)
{
    free(sb->srows);
    free(sb->lp);
    free(sb->res);
    free(sb->sampled);
    free(sb->slot_of);
    free(sb->id_of);
}

/* The buffers, the metrics and (every rank but 0) the ear for rank 0's
 * stop notice. */
static void loop_start(run_state *r, step_buffers *sb)
{
    const size_t max_seqs = (size_t)r->eng.max_batch;
    vb_err err = {{0}};
    sb->srows = calloc(max_seqs, sizeof *sb->srows);
    sb->lp = calloc(max_seqs, sizeof *sb->lp);
    sb->res = calloc(max_seqs, sizeof *sb->res);
    sb->sampled = calloc(max_seqs, sizeof *sb->sampled);
    sb->slot_of = calloc(max_seqs, sizeof *sb->slot_of);
    sb->id_of = calloc(max_seqs, sizeof *sb->id_of);
    /* the GPU holds fp16 weights, the CPU backend fp32; an int8 KV cache
     * reads a byte a value and a 4-byte scale a head row */
    double kv_elem = r->eng.kv.dtype == VB_KV_INT8 ? 1.0 + 4.0 / r->model.config.head_dim
                                                   : (double)r->eng.b->act_size;
    bench_model_cost cost;
    bench_model_cost_make(&cost, &r->model.config, &r->model.plan, r->eng.rb.cuda ? 2 : 4,
                          kv_elem);
    if (!sb->srows || !sb->lp || !sb->res || !sb->sampled || !sb->slot_of || !sb->id_of ||
        bench_metrics_init(&r->stats.bm, r->work.n_seqs_bound, &cost, r->eng.sched.kv.n_blocks,
                           r->eng.rb.cuda ? r->eng.b : NULL, &r->cfg->tuning)) {
        vb_err_set(&err, "out of memory");
        run_die(r, "starting the loop", 0, &err);
    }
    if (!r->root && run_stop_notice_post(&r->out.notice, MPI_COMM_WORLD, 0, false)) {
        vb_err_set(&err, "MPI_Ibcast of rank 0's stop notice failed");
        run_die(r, "starting the loop", 0, &err);
    }
}

/* Whether the group stops before this step: a stop signal on any of its
 * ranks, rank 0's journal failing, rank 0 telling every rank to stop, or
 * a block of the group's rows that could not be read. */
static bool group_stops(run_state *r)
{
    bool mine = vb_journal_failure(r->out.journal) || run_stop_notice_says_stop(&r->out.notice) ||
                r->work.read_failed;
    return vb_stop_agreed(r->d->tp_comm, mine);
}

/* Schedules the step and builds its batch. */
static const sched_step_plan *step_schedule(run_state *r, long step)
{
    run_engine *e = &r->eng;
    vb_err err = {{0}};
    const sched_step_plan *p = sched_step(&e->sched);
    if (p->n_seqs == 0) {
        vb_err_set(&err, e->sched.out_of_memory
                             ? "out of host memory for a row's tokens and KV block table"
                             : "the scheduler planned an empty step with sequences left");
        run_die(r, "scheduling", step, &err);
    }
    bench_metrics_plan(&r->stats.bm, p, sched_blocks_used(&e->sched));
    step_batch_clear(&e->sb);
    for (int i = 0; i < p->n_seqs; i++) {
        const sched_step_seq *q = &p->seqs[i];
        if (step_batch_add_seq(&e->sb, q->tokens, q->n_tokens, q->start, q->block_table,
                               q->n_blocks)) {
            vb_err_set(&err, "the step batch is full (%d sequences, %d tokens)", p->n_seqs,
                       p->n_tokens);
            run_die(r, "building the step batch", step, &err);
        }
    }
    return p;
}

/* The step's logits, in the backend's memory: the sampler summarizes them
 * there when the backend can (CUDA), else copies them to the host. */
static const float *step_forward(run_state *r, const sched_step_plan *p, long step)
{
    run_engine *e = &r->eng;
    long recorded = e->fs.b->graphs_recorded;
    const float *logits = forward_step(&e->fs, &e->sb, &e->kv);
    if (e->fs.b->graphs_recorded != recorded)
        bench_metrics_graph_recorded(&r->stats.bm);
    if (!logits) {
        vb_err err = {{0}};
        vb_err_set(&err, "forward_step refused a batch of %d tokens", p->n_tokens);
        run_die(r, "forward pass", step, &err);
    }
    bench_metrics_mark(&r->stats.bm, BENCH_FORWARD_DONE);
    return logits;
}

/* Samples a token for every sequence of the plan that samples this step
 * (the same on every rank of the group) and records its logprobs.
 * Returns how many sampled. */
static int step_sample(run_state *r, const sched_step_plan *p, const float *logits,
                       step_buffers *sb, long step)
{
    const int vocab_local = r->model.plan.vocab_local;
    for (int i = 0; i < p->n_seqs; i++) {
        const sched_step_seq *q = &p->seqs[i];
        if (q->sample_index < 0)
            continue;
        int j = q->sample_index;
        const sched_seq *sq = sched_seq_get(&r->eng.sched, q->slot);
        gen_seq *g = run_feed_seq(r, q->slot);
        sb->srows[j] = (sampler_row){
            .params = &g->params,
            .row = (uint32_t)g->row_index,
            .sample = (uint32_t)g->sample,
            .step = (uint32_t)q->n_generated,
            .prompt = sq->tokens,
            .n_prompt = sq->n_prompt,
            .generated = sq->tokens + sq->n_prompt,
            .n_generated = q->n_generated,
            .state_slot = q->slot + 1,
        };
        if (q->n_generated == 0) /* its prompt is in, once whatever the recomputations */
            r->stats.prompt_tokens_in += sq->n_prompt;
        sb->lp[j] = logits + (size_t)i * vocab_local;
        sb->slot_of[j] = q->slot;
        sb->id_of[j] = q->id;
    }
    int ns = p->n_samples;
    vb_err err = {{0}};
    if (run_sampler_step_backend(&r->eng.smp, &r->eng.rb, logits,
                                 (size_t)step_batch_n_out(&r->eng.sb) * (size_t)vocab_local,
                                 sb->srows, sb->lp, ns, sb->res, &err))
        run_die(r, "sampling", step, &err);
    bench_metrics_mark(&r->stats.bm, BENCH_SAMPLED);
    r->stats.tokens_sampled += ns;
    for (int j = 0; j < ns; j++) {
        sb->sampled[j] = sb->res[j].error ? 0 : sb->res[j].token;
        r->stats.draws_truncated += sb->res[j].truncated_inexact;
        if (run_seq_record(run_feed_seq(r, sb->slot_of[j]), &sb->res[j], (int)sb->srows[j].step,
                           r->work.top_n)) {
            vb_err_set(&err, "out of memory for logprobs");
            run_die(r, "sampling", step, &err);
        }
    }
    return ns;
}

/* The scheduler takes the step's tokens (the plan is invalid after
 * this; the buffers keep what the sequences need), then each sequence
 * sees its token and may finish. */
static void step_finish(run_state *r, const step_buffers *sb, int ns, long step)
{
    sched_step_done(&r->eng.sched, sb->sampled);
    for (int j = 0; j < ns; j++)
        run_seq_token(r, sb->id_of[j], sb->slot_of[j], sb->sampled[j], sb->res[j].error,
                      (int)sb->srows[j].step + 1, step);
}

/* The leader's finished rows: rank 0 files them (and the other groups'),
 * the others send them to rank 0 every RUN_SEND_INTERVAL_S. */
static void step_pass_rows(run_state *r, double *last_send, long step)
{
    if (!r->leader)
        return;
    vb_err err = {{0}};
    if (r->root) {
        vb_watchdog_hold_rescue(); /* the journal: not while the watchdog saves it */
        if (run_root_file_rows(r, false, &err))
            run_die(r, "collecting finished rows", step, &err);
        vb_watchdog_release_rescue();
    } else if (run_rows_send(&r->out.finished, MPI_COMM_WORLD, 0, false, false,
                             RUN_SEND_INTERVAL_S, last_send, &err)) {
        run_die(r, "sending finished rows", step, &err);
    }
}

/* Draws from a cut top-p / min-p set (sampler.h: the sampler keeps at
 * most SAMPLER_TRUNCATION_CANDIDATES tokens a rank when top-k is off, and
 * a flat distribution's nucleus can be larger: at temperature 1 and top-p
 * 0.95 SmolLM2's was in a third of its steps). transformers draws from the
 * whole set; such a draw never picks the tail's tokens, so the run says
 * how many there were and how to make them exact, once, by each group's
 * leader. */
static void warn_truncated_draws(const run_state *r)
{
    if (!r->leader || r->stats.draws_truncated == 0)
        return;
    fprintf(stderr,
            "voltbatch %s: warning: group %d: %" PRId64 " of %" PRId64 " sampled tokens were "
            "drawn from the %d most likely tokens alone, where top-p or min-p kept more "
            "(transformers draws from all of them); with a --top-k beside them every draw "
            "is transformers' for those settings\n",
            r->cfg->command, r->d->dp_rank, r->stats.draws_truncated, r->stats.tokens_sampled,
            SAMPLER_TRUNCATION_CANDIDATES);
}

bool run_loop(run_state *r)
{
    step_buffers sb = {0};
    loop_start(r, &sb);
    double last_send = MPI_Wtime(), last_progress = MPI_Wtime();
    bool stopped = false;
    long step = 0;
    for (;;) {
        /* the next blocks of rows when the waiting line runs short: the
         * same on every rank of the group (run_feed.h) */
        run_feed(r, step);
        /* a rank whose read failed stops through the group's agreement
         * below, not alone here: the others may still have work */
        if (sched_idle(&r->eng.sched) && !r->work.read_failed)
            break;
        /* each step must end within --collective-timeout (a hung rank
         * would leave the group blocked in its collectives) */
        vb_watchdog_arm("an engine step", step);
        bench_metrics_mark(&r->stats.bm, BENCH_STEP_START);
        if (group_stops(r)) {
            stopped = true;
            break;
        }
        const sched_step_plan *p = step_schedule(r, step);
        const float *logits = step_forward(r, p, step);
        int ns = step_sample(r, p, logits, &sb, step);
        step_finish(r, &sb, ns, step);
        step_pass_rows(r, &last_send, step);
        run_progress(r, &last_progress, false);
        bench_metrics_mark(&r->stats.bm, BENCH_STEP_END);
        step++;
    }
    /* when rank 0's group stopped (its journal failed, or a signal that
     * reached only some ranks), every other group stops too (else the
     * notice goes once they are done: run_root_finish) */
    if (r->root && stopped && run_stop_notice_post(&r->out.notice, MPI_COMM_WORLD, 0, true)) {
        vb_err err = {{0}};
        vb_err_set(&err, "MPI_Ibcast of the stop notice failed");
        run_die(r, "ending the loop", step, &err);
    }
    /* rank 0 may now wait for slower groups, and every rank for the last
     * at the end: a legitimate wait, but not for a rank that is gone */
    vb_watchdog_wait("waiting for the other groups to finish");
    step_buffers_free(&sb);
    warn_truncated_draws(r);
    return stopped;
}

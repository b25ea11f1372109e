/* World rank 0's filing, progress, output and report (see run_root.h). */
#include "run/run_root.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "git_revision.h"
#include "io/output_writer.h"
#include "io/resume.h"
#include "mpi/watchdog.h"
#include "vb_config.h"

#define RUN_PROGRESS_INTERVAL_S 5.0

/* "ETA 42s", "ETA 7m05s", "ETA 3h12m"; "ETA unknown" before this run
 * has finished a row to measure by. */
static void format_eta(double s, char *buf, size_t n)
{
    if (!(s >= 0) || s > 1e9) {
        snprintf(buf, n, "ETA unknown");
        return;
    }
    long t = (long)(s + 0.5);
    if (t < 60)
        snprintf(buf, n, "ETA %lds", t);
    else if (t < 3600)
        snprintf(buf, n, "ETA %ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, n, "ETA %ldh%02ldm", t / 3600, t / 60 % 60);
}

void run_progress(run_state *r, double *last, bool force)
{
    double now = MPI_Wtime();
    if (!r->root || (!force && now - *last < RUN_PROGRESS_INTERVAL_S))
        return;
    *last = now;
    int64_t total = r->out.done.n_rows * r->out.done.n_samples;
    double wall = run_wall_now(), el = wall - r->stats.t_start;
    /* the rows still to do at the pace of this run's rows so far (resumed
     * rows took no time here), from the start of the steps: loading is
     * over and does not recur */
    int64_t left = total - r->out.done.n_done, new_rows = r->out.coll.rows_new;
    double stepping = wall - r->stats.t_engine;
    char eta[32];
    format_eta(left <= 0 ? 0.0 : new_rows > 0 ? stepping * (double)left / (double)new_rows : -1.0,
               eta, sizeof eta);
    fprintf(stderr,
            "voltbatch %s: %" PRId64 "/%" PRId64 " rows done; group 0 of %d: %.1f "
            "prompt tokens/s, %.1f generated tokens/s, KV cache %.0f%% used; %s\n",
            r->cfg->command, r->out.done.n_done, total, r->d->dp,
            el > 0 ? (double)r->stats.prompt_tokens_in / el : 0.0,
            el > 0 ? r->stats.tokens_sampled / el : 0.0, 100.0 * sched_kv_use(&r->eng.sched), eta);
}

int run_root_file_rows(run_state *r, bool now, vb_err *err)
{
    run_output *out = &r->out;
    if (run_collector_take_local(&out->coll, &out->finished, err) ||
        run_collector_poll(&out->coll, false, err))
        return -1;
    if (out->journal &&
        (now ? vb_journal_flush(out->journal, err) : vb_journal_tick(out->journal, err)) < 0 &&
        !vb_journal_failure(out->journal))
        return -1;
    return 0;
}

/* The run-wide sampling in effect, by the settings' names; floats (the
 * sampler's) at 7 significant digits, so 0.7 reads 0.7. max_new_tokens is
 * the rows' without a /max_new_tokens of their own: README counts it
 * among the sampling settings, and its default was recorded nowhere.
 * NULL when out of memory (the attributes are then left out). */
static json_t *sampling_json(const sampling_params *p, long max_new_tokens)
{
    const struct { const char *name; float v; } reals[] = {
        {"temperature", p->temperature}, {"top_p", p->top_p}, {"min_p", p->min_p},
        {"repetition_penalty", p->repetition_penalty},
        {"frequency_penalty", p->frequency_penalty}, {"presence_penalty", p->presence_penalty},
    };
    json_t *o = json_pack("{sIsI}", "top_k", (json_int_t)p->top_k, "max_new_tokens",
                          (json_int_t)max_new_tokens);
    for (size_t i = 0; o && i < sizeof reals / sizeof reals[0]; i++) {
        char text[32];
        snprintf(text, sizeof text, "%.7g", reals[i].v);
        if (json_object_set_new(o, reals[i].name, json_real(strtod(text, NULL)))) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* elapsed and engine end where the output's writing starts: load_s +
 * engine_s = elapsed_s, and writing the output is neither */
static int write_report(const run_state *r, const char *path, double elapsed, double engine,
                        bool complete, vb_err *err)
{
    const run_collector *coll = &r->out.coll;
    const scheduler *sched = &r->eng.sched;
    json_t *j = json_pack("{s:s, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:b, "
                          "s:{s:I, s:I, s:I, s:f, s:I, s:I}}",
                          "model", r->model.path, "tp", r->d->tp, "dp", r->d->dp,
                          "input_rows", (json_int_t)r->work.in.n_rows,
                          "rows_done", (json_int_t)r->out.done.n_done,
                          "rows_this_run", (json_int_t)coll->rows_new,
                          "generated_tokens", (json_int_t)coll->tokens_new,
                          "prompt_tokens", (json_int_t)coll->prompt_tokens_new,
                          "elapsed_s", elapsed,
                          "load_s", r->stats.t_engine - r->stats.t_start,
                          "engine_s", engine,
                          "generated_tokens_per_s", elapsed > 0 ? coll->tokens_new / elapsed : 0.0,
                          /* the progress line's other rate, over the same time */
                          "prompt_tokens_per_s",
                          elapsed > 0 ? coll->prompt_tokens_new / elapsed : 0.0,
                          "complete", complete,
                          "group0", "steps", (json_int_t)sched->stats.steps,
                          "prefill_tokens", (json_int_t)sched->stats.prefill_tokens,
                          "decode_tokens", (json_int_t)sched->stats.decode_tokens,
                          "prefix_hit_rate", sched_prefix_hit_rate(sched),
                          "preemptions", (json_int_t)sched->stats.preemptions,
                          /* draws from a top-p / min-p set the sampler's
                           * candidates cut (run_loop.c warns of them) */
                          "truncated_draws", (json_int_t)r->stats.draws_truncated);
    /* group 0's latency, step breakdown, KV peak, MBU / MFU (bench_metrics.h) */
    const char *device = r->eng.rb.cuda ? r->eng.rb.gpu_name : NULL;
    /* and what the completions depend on, as --resume compares it: a
     * benchmark's report says which sampling it timed */
    if (!j || json_object_set_new(j, "metrics", bench_metrics_json(&r->stats.bm, device, engine)) ||
        (r->out.settings && json_object_set(j, "settings", r->out.settings)) ||
        /* settings holds null where generation_config.json or the
         * default decided: the sampling the rows were made (or the
         * benchmark timed) with, as the output's root attributes say */
        json_object_set_new(j, "sampling",
                            sampling_json(&r->work.sampling, r->work.max_new_tokens))) {
        json_decref(j);
        return vb_err_set(err, "%s: out of memory", path);
    }
    int rc = json_dump_file(j, path, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(j);
    if (rc)
        return vb_err_set(err, "%s: cannot write the report", path);
    return 0;
}

/* After a journal failure (kept in msg): says where the finished rows
 * are, given how writing the output went (out_rc, err). */
static void explain_journal_failure(const run_state *r, const char *msg, int out_rc,
                                    vb_err *err)
{
    char out_msg[VB_ERR_LEN];
    snprintf(out_msg, sizeof out_msg, "%s", err->msg);
    long steps = (long)r->eng.sched.stats.steps;
    if (out_rc == 0)
        vb_err_set(err, "%s; the run stopped after step %ld, and its %" PRId64 " finished rows "
                   "are in %s: rerun with --resume once the journal can be written",
                   msg, steps, r->out.done.n_done, r->cfg->output);
    else
        vb_err_set(err, "%s; the run stopped after step %ld, and the output could not be "
                   "written either: %s", msg, steps, out_msg);
}

/* Rank 0 after its own loop: the other groups' rows until every final
 * message is in (even after a failure: a leader left in its send would
 * hang the closing barrier), filed and written to the journal as in the
 * loop. When the journal fails meanwhile, rank 0's notice tells every rank
 * to stop at once; otherwise it goes, saying carry on, once all are done. */
static int collect_rest(run_state *r, vb_err *err)
{
    run_output *out = &r->out;
    int rc = 0;
    vb_err later;
    while (out->coll.pending_finals > 0) {
        if (run_collector_poll(&out->coll, false, rc ? &later : err) < 0 ||
            (out->journal && vb_journal_tick(out->journal, rc ? &later : err) < 0 &&
             !vb_journal_failure(out->journal)))
            rc = -1;
        if (!out->notice.posted && vb_journal_failure(out->journal) &&
            run_stop_notice_post(&out->notice, MPI_COMM_WORLD, 0, true) && rc == 0)
            rc = vb_err_set(err, "MPI_Ibcast of the stop notice failed");
        if (out->coll.pending_finals > 0)
            run_nap();
    }
    return rc;
}

/* The output file from every finished row (the journal is folded into it
 * and removed). *elapsed, *engine (the run's and the engine's wall time
 * up to here) and *complete are for the report. Returns 0 or -1 with err. */
static int write_output(run_state *r, double *elapsed, double *engine, bool *complete,
                        vb_err *err)
{
    run_output *out = &r->out;
    double end = run_wall_now();
    *elapsed = end - r->stats.t_start;
    *engine = end - r->stats.t_engine;
    const char *version = run_build_version();
    *complete = out->done.n_done == out->done.n_rows * out->done.n_samples;
    json_t *sampling = sampling_json(&r->work.sampling, r->work.max_new_tokens);
    vb_output_meta meta = {
        .settings = out->settings, .sampling = sampling, .dp = r->d->dp, .version = version,
        .start_time = r->stats.t_start, .end_time = end,
        .throughput = *elapsed > 0 ? out->coll.tokens_new / *elapsed : 0.0,
        .complete = *complete,
    };
    const int rc = vb_output_finish(r->cfg->output, &meta, &out->done, &out->journal, err);
    json_decref(sampling);
    return rc;
}

int run_root_finish(run_state *r, const char **phase, vb_err *err)
{
    run_output *out = &r->out;
    /* No rescue from here on (the journal becomes the output; this
     * waits out one in progress), so this group's rows go to disk
     * before waiting for slower groups, which may never come. */
    vb_watchdog_hold_rescue();
    vb_watchdog_set_rescue(NULL, NULL);
    vb_watchdog_release_rescue();
    int rc = run_root_file_rows(r, true, err);
    vb_err later;
    if (collect_rest(r, rc ? &later : err) < 0)
        rc = -1;
    if (rc)
        return 1;
    char jfail[VB_ERR_LEN] = "";
    if (vb_journal_failure(out->journal)) {
        *phase = "writing the journal";
        snprintf(jfail, sizeof jfail, "%s", vb_journal_failure(out->journal));
    }
    double elapsed = 0, engine = 0;
    bool complete = false;
    /* a failed journal is still read (its file and buffer) for the output */
    rc = write_output(r, &elapsed, &engine, &complete, err);
    if (jfail[0] && out->journal) {
        /* returns the failure copied above; the descriptor is freed all the same */
        vb_journal_close(out->journal, NULL);
        out->journal = out->coll.journal = NULL;
        out->done.store = (vb_row_store){0};
    }
    if (jfail[0]) {
        explain_journal_failure(r, jfail, rc, err);
        return 1;
    }
    if (rc == 0 && r->cfg->report &&
        write_report(r, r->cfg->report, elapsed, engine, complete, err))
        rc = -1;
    return rc ? 1 : 0;
}

const char *run_build_version(void)
{
    return VB_VERSION " (git " VB_GIT_REVISION ")";
}

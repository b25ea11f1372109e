/* `voltbatch generate`: the driver (see generate_run.h): the phase
 * sequence, and the phases that involve the whole world (inputs, the
 * output policy, rows to groups, the end). What each other part does is
 * listed in run_state.h. */
#include "run/generate_run.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/input_check.h"
#include "io/journal.h"
#include "io/resume.h"
#include "io/run_settings.h"
#include "io/shard.h"
#include "model/model_files.h"
#include "model/model_load.h"
#include "mpi/mpi_check.h"
#include "mpi/watchdog.h"
#include "run/run_backend.h"
#include "run/run_engine.h"
#include "run/run_loop.h"
#include "run/run_root.h"
#include "run/run_setup.h"
#include "run/run_state.h"
#include "tokenizer/chat_template.h"
#include "util/exit_codes.h"
#include "util/log.h"
#include "util/signals.h"

#define RUN_FIRST_STEP_TIMEOUT_FACTOR 4.0 /* the first step also warms up caches and kernels */

/* The watchdog's last act on rank 0: every finished row to disk. The main
 * thread is blocked in a collective then, not inside the journal. */
static void rescue_journal(void *ctx)
{
    run_state *r = ctx;
    vb_err err;
    if (r->out.journal && vb_journal_flush(r->out.journal, &err))
        vb_error("saving the journal: %s", err.msg);
    else
        vb_info("finished rows are saved in %s.journal: rerun with --resume", r->cfg->output);
}

static int bcast_i32(int32_t *a, int64_t n, MPI_Comm comm)
{
    for (int64_t off = 0; off < n; off += 1 << 28) {
        int64_t k = n - off < (1 << 28) ? n - off : (1 << 28);
        if (MPI_Bcast(a + off, (int)k, MPI_INT32_T, 0, comm) != MPI_SUCCESS)
            return -1;
    }
    return 0;
}

/* --- phases before the loop ------------------------------------------- */

/* config.json (with --quantize applied), this rank's share of the model,
 * and the checkpoint's tensors checked against it. */
static int phase_model(run_state *r, vb_err *err)
{
    const run_config *o = r->cfg;
    run_model *m = &r->model;
    int code = 0;
    if (model_config_load(&m->config, o->model_dir, err) ||
        quant_config_quantize(&m->config.quant, o->quantize, o->model_dir, err) ||
        tp_plan_make(&m->plan, &m->config, r->d->tp, r->d->tp_rank, err))
        code = VB_EXIT_USAGE;
    if ((code = run_agree(r, code, "model config", err)))
        return code;
    /* Every tensor's name, shape and dtype, from the headers alone: a
     * checkpoint that does not match config.json is a bad input (exit 2)
     * found before an output or journal exists, not a load failure. */
    if (model_check_weights(&m->config, r->d->tp, o->model_dir, err) ||
        model_check_backend(&m->config, run_backend_wants_cuda(o), o->model_dir, err))
        code = VB_EXIT_USAGE;
    if ((code = run_agree(r, code, "checkpoint", err)))
        return code;
    m->max_model_len = o->max_model_len > 0 ? o->max_model_len
                                            : m->config.max_position_embeddings;
    /* Positions past what the model was made for run, but their outputs
     * are the model's guess: said once, not refused (a user may know
     * better than config.json) */
    long made_for = model_config_positions(&m->config);
    if (r->root && m->max_model_len > made_for)
        fprintf(stderr, "voltbatch %s: warning: --max-model-len %ld is past the %ld positions "
                        "the model was made for (config.json's max_position_embeddings and "
                        "RoPE scaling): outputs that reach past them may be poor\n",
                o->command, (long)m->max_model_len, made_for);
    long lp = o->sampling.logprobs;
    r->work.top_n = lp > 0 ? (int32_t)(lp < SAMPLER_MAX_LOGPROBS ? lp : SAMPLER_MAX_LOGPROBS)
                           : -1;
    r->out.finished.top_n = r->work.top_n;
    return 0;
}

static int phase_inputs(run_state *r, vb_err *err)
{
    const run_config *o = r->cfg;
    int code = 0;
    /* Before any rank opens an input, rank 0 reads them all once in a child
     * process: a file so corrupt that the HDF5 library crashes or loops on
     * it then ends the job here, exit 2 naming it (io/input_check.h), not
     * with a segfault on the ranks that read it later. */
    bool not_input = false;
    if (r->root && vb_input_check_isolated(o->inputs, o->n_inputs, false,
                                           o->tuning.input_check_timeout, &not_input, err))
        code = VB_EXIT_USAGE;
    if ((code = run_agree(r, code, "inputs", err)))
        return code;
    r->work.in_open = true; /* vb_input_close frees after a failed open too */
    /* Rank 0 writes the output and the report: neither may be a file the
     * run reads, an input shard, a file of the model or the chat template
     * (--overwrite would remove it first). */
    const char *template_file =
        o->chat_template && chat_template_names_file(o->chat_template)
            ? o->chat_template
            : NULL;
    if (vb_input_open(&r->work.in, o->inputs, o->n_inputs, err) ||
        (r->root && vb_output_check_inputs(o->output, o->report, &r->work.in, o->model_dir,
                                           template_file, err)))
        code = VB_EXIT_USAGE;
    if (code == 0 && r->root && r->work.in.unread[0]) /* a typo'd column: io/input_reader.h */
        vb_warn("%s is not a dataset generate reads (" VB_INPUT_DATASETS "): ignored; later "
                "such datasets are not reported", r->work.in.unread);
    return run_agree(r, code, "inputs", err);
}

static int make_settings(run_state *r, vb_err *err)
{
    const run_config *o = r->cfg;
    const sampling_overrides *sp = &o->sampling;
    if (!realpath(o->model_dir, r->model.path))
        snprintf(r->model.path, sizeof r->model.path, "%s", o->model_dir);
    json_t *files = model_files_json(o->model_dir, err);
    if (!files)
        return VB_EXIT_USAGE;
    /* the template's variables as parsed (whitespace and key order then
     * do not matter), and a template file's stamp: either renders the
     * prompts otherwise, so --resume compares them */
    json_error_t je;
    json_t *kwargs = NULL, *tmpl_file = NULL;
    if (o->chat_template_kwargs &&
        !(kwargs = json_loads(o->chat_template_kwargs, JSON_DECODE_ANY, &je)))
        kwargs = json_string(o->chat_template_kwargs);
    if (o->chat_template && chat_template_names_file(o->chat_template))
        tmpl_file = model_file_stamp(o->chat_template);
    vb_run_settings s = {
        .model = r->model.path, .model_files = files, .tp = r->d->tp, .seed = sp->seed,
        .max_new_tokens = o->max_new_tokens, .temperature = sp->temperature, .top_p = sp->top_p,
        .top_k = sp->top_k, .min_p = sp->min_p, .repetition_penalty = sp->repetition_penalty,
        .frequency_penalty = sp->frequency_penalty, .presence_penalty = sp->presence_penalty,
        .n = o->n, .logprobs = sp->logprobs, .ignore_eos = o->ignore_eos, .stops = o->stops,
        .n_stops = o->n_stops, .chat = o->chat, .chat_template = o->chat_template,
        .system = o->system, .chat_template_kwargs = kwargs, .chat_template_file = tmpl_file,
        .max_model_len = o->max_model_len,
        .quantize = o->quantize == VB_QUANTIZE_NONE ? NULL : vb_quantize_name(o->quantize),
        .kv_cache_dtype = o->kv_cache_dtype == VB_KV_ACT ? NULL : vb_kv_dtype_name(o->kv_cache_dtype),
        .batch_invariant = o->batch_invariant,
        .version = run_build_version(),
        .input_checksum = r->work.in.checksum, .input_rows = r->work.in.n_rows,
    };
    const int bad_text = vb_run_settings_check_text(&s, err);
    r->out.settings = bad_text ? NULL : vb_run_settings_json(&s);
    json_decref(files);
    json_decref(kwargs);
    json_decref(tmpl_file);
    if (bad_text)
        return VB_EXIT_USAGE;
    if (!r->out.settings)
        return vb_err_set(err, "out of memory"), 1;
    return 0;
}

/* What every rank must have the same of, as JSON: the settings (but the
 * model's path and the files' mtimes, which differ between node-local
 * copies of one model: its files by content instead, model_files.h) and
 * what keeps a tensor-parallel group's schedules in step. NULL with err. */
static json_t *agreement_json(const run_state *r, vb_err *err)
{
    const run_config *o = r->cfg;
    json_t *a = json_deep_copy(r->out.settings);
    json_t *files = model_files_fingerprints(o->model_dir, err);
    if (!a || !files) {
        json_decref(a), json_decref(files);
        if (!files)
            return NULL;
        return vb_err_set(err, "out of memory"), NULL;
    }
    json_object_del(a, "model");
    json_object_set_new(a, "model_files", files);
    json_t *tmpl = json_object_get(a, "chat_template_file");
    if (tmpl && !json_is_null(tmpl)) {
        json_t *print = model_file_fingerprint(o->chat_template);
        json_object_set_new(a, "chat_template_file", print ? print : json_null());
    }
    json_object_set_new(a, "device", json_integer(o->device));
    json_object_set_new(a, "max_batch", json_integer(o->max_batch));
    json_object_set_new(a, "max_batched_tokens", json_integer(o->max_batched_tokens));
    json_object_set_new(a, "prefix_cache", json_boolean(o->prefix_cache));
    return a;
}

/* Up to 100 bytes of v as compact JSON ("absent" for NULL). */
static void agreement_text(const json_t *v, char *buf, size_t n)
{
    char *t = v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
    snprintf(buf, n, "%.100s%s", t ? t : "absent", t && strlen(t) > 100 ? "..." : "");
    free(t);
}

/* The first key (both directions; model_files by file, named "the
 * model's file NAME") where mine differs from rank 0's: -1 naming it. */
static int agreement_compare(const json_t *mine, const json_t *root, const char *of, int rank,
                             vb_err *err)
{
    const json_t *pair[2] = {mine, root};
    for (int side = 0; side < 2; side++) {
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)pair[side], key, v) {
            const json_t *a = json_object_get(mine, key), *b = json_object_get(root, key);
            if (a && b && json_equal((json_t *)a, (json_t *)b))
                continue;
            if (!of && strcmp(key, "model_files") == 0 && json_is_object(a) &&
                json_is_object(b)) {
                if (agreement_compare(a, b, "the model's file ", rank, err) < 0)
                    return -1;
                continue;
            }
            char sa[128], sb[128];
            agreement_text(a, sa, sizeof sa);
            agreement_text(b, sb, sizeof sb);
            return vb_err_set(err, "the ranks disagree: %s%s is %s on rank %d, %s on rank 0 "
                              "(every rank must run the same %s)", of ? of : "", key, sa, rank,
                              sb,
                              !of && strcmp(key, "version") == 0
                                  ? "voltbatch build: a node with another installed?"
                                  : "command line on the same model and inputs");
        }
    }
    return 0;
}

/* Every rank read the same model and inputs with the same settings: a
 * rank that differs (another command line, a model copy or input file
 * that differs, one replaced while the ranks read it) would otherwise
 * mix two models' halves in every row, or write rows of another model or
 * prompt under rank 0's settings, or fall out of step with its group.
 * Collective; VB_EXIT_USAGE naming the first difference. */
static int ranks_agree(const run_state *r, vb_err *err)
{
    json_t *mine = agreement_json(r, err);
    char *text = mine && r->root ? json_dumps(mine, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    long long len = text ? (long long)strlen(text) + 1 : 0;
    MPI_CHECK(MPI_Bcast(&len, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD));
    if (!r->root && len > 0 && !(text = malloc((size_t)len))) {
        /* every rank must take part in the broadcast: none can leave it */
        vb_err oom = {{0}};
        vb_err_set(&oom, "out of memory for rank 0's settings (%lld bytes)", len);
        run_die(r, "agreeing on the settings", -1, &oom);
    }
    if (len > 0)
        MPI_CHECK(MPI_Bcast(text, (int)len, MPI_CHAR, 0, MPI_COMM_WORLD));
    int code = 0;
    if (!mine || len == 0)
        code = mine ? (vb_err_set(err, "rank 0 could not describe its settings"), 1)
                    : VB_EXIT_USAGE;
    else if (!r->root) {
        json_error_t je;
        json_t *root = json_loads(text, 0, &je);
        if (!root)
            code = 1, vb_err_set(err, "rank 0's settings do not parse: %s", je.text);
        else if (agreement_compare(mine, root, NULL, r->d->world_rank, err) < 0)
            code = VB_EXIT_USAGE;
        json_decref(root);
    }
    free(text);
    json_decref(mine);
    return code;
}

/* The settings, then rank 0 applies the output policy (refuse an existing
 * output, overwrite it, or resume from its journal). */
static int phase_output(run_state *r, vb_err *err)
{
    const run_config *o = r->cfg;
    run_output *out = &r->out;
    int code = make_settings(r, err);
    if ((code = run_agree(r, code, "settings", err)))
        return code;
    if ((code = run_agree(r, ranks_agree(r, err), "settings", err)))
        return code;
    if (r->root &&
        vb_output_prepare(o->output, out->settings, o->resume, o->overwrite, r->work.top_n,
                          r->work.in.id_kind, &out->done, &out->journal, err))
        code = VB_EXIT_USAGE;
    if ((code = run_agree(r, code, "output", err)))
        return code;
    /* At most this many seconds of finished rows are lost to a SIGKILL
     * (VB_JOURNAL_FLUSH_SECONDS: tests shorten it; 5 s by default). */
    if (out->journal && o->tuning.journal_flush_seconds > 0)
        vb_journal_set_flush_interval(out->journal, o->tuning.journal_flush_seconds);
    return 0;
}

/* Rank 0 assigns the rows not finished yet to groups by cost (-1 = already
 * done). Returns 0, or an exit code with err. */
static int assign_rows(run_state *r, vb_err *err)
{
    run_work *wk = &r->work;
    int64_t n = wk->in.n_rows;
    int code = 0;
    int64_t *cost = calloc((size_t)n + 1, sizeof *cost);
    if (!cost)
        code = 1, vb_err_set(err, "out of memory for %" PRId64 " rows", n);
    else if (vb_input_row_costs(&wk->in, cost, err))
        code = VB_EXIT_USAGE;
    if (!code) {
        for (int64_t i = 0; i < n; i++)
            if (vb_results_row_done(&r->out.done, i))
                cost[i] = 0;
        if (vb_shard_assign(cost, n, r->d->dp, wk->group_of_row))
            code = 1, vb_err_set(err, "out of memory assigning rows to groups");
        for (int64_t i = 0; !code && i < n; i++)
            if (vb_results_row_done(&r->out.done, i))
                wk->group_of_row[i] = -1;
    }
    free(cost);
    return code;
}

/* Rank 0's assignment of rows to groups, for everyone. */
static int phase_shard(run_state *r, vb_err *err)
{
    run_work *wk = &r->work;
    int64_t n = wk->in.n_rows;
    int code = 0;
    wk->group_of_row = calloc((size_t)n + 1, sizeof *wk->group_of_row);
    if (!wk->group_of_row)
        code = 1, vb_err_set(err, "out of memory for %" PRId64 " rows", n);
    if (!code && r->root)
        code = assign_rows(r, err);
    code = run_agree(r, code, "assigning rows to groups", err);
    if (code)
        return code;
    if (bcast_i32(wk->group_of_row, n, MPI_COMM_WORLD)) {
        vb_err_set(err, "MPI_Bcast of the row assignment failed");
        return run_agree(r, 1, "assigning rows to groups", err);
    }
    wk->my_rows = malloc(((size_t)n + 1) * sizeof *wk->my_rows);
    if (wk->my_rows)
        wk->n_my_rows = vb_shard_rows_of(wk->group_of_row, n, r->d->dp_rank, wk->my_rows);
    code = wk->my_rows ? 0 : 1;
    if (code)
        vb_err_set(err, "out of memory");
    return run_agree(r, code, "assigning rows to groups", err);
}

/* The CPU backend reads fp32 host weights; the CUDA backend streams the
 * checkpoint to the GPU itself when it opens (run_backend_open with no
 * host weights), so no host copy of the model is made for it. */
static int phase_weights(run_state *r, vb_err *err)
{
    const run_config *o = r->cfg;
    run_model *m = &r->model;
    int code = 0;
    if (!run_backend_wants_cuda(o) &&
        model_load_host(&m->w, &m->config, &m->plan, o->model_dir, VB_W_F32,
                        run_backend_cpu_threads(o, r->d), err))
        code = 1;
    return run_agree(r, code, "loading weights", err);
}

/* Everything before the loop, in order; each phase agrees on failure
 * across the world, so every rank stops at the same one. */
static int phases_before_loop(run_state *r, vb_err *err)
{
    static const struct {
        int (*run)(run_state *, vb_err *);
        const char *name; /* for the watchdog's message: a string literal */
    } phases[] = {
        /* config.json, TP plan, checkpoint headers */
        {phase_model, "starting up (reading the model's config and checkpoint headers)"},
        /* checked in a child process, then opened */
        {phase_inputs, "starting up (checking and opening the inputs)"},
        /* tokenizer, chat template, eos ids */
        {run_phase_tokenizer, "starting up (loading the tokenizer)"},
        /* settings; refuse, overwrite or resume (rank 0) */
        {phase_output, "starting up (preparing the output)"},
        /* rows to dp groups by cost */
        {phase_shard, "starting up (assigning rows to groups)"},
        /* host weights for the CPU backend */
        {phase_weights, "starting up (loading weights)"},
        /* this group's first block of rows as sequences */
        {run_phase_rows, "starting up (reading this group's rows)"},
        /* backend, KV cache, scheduler, sampler; the first block queued */
        {run_phase_engine, "starting up (engine setup)"},
    };
    for (size_t i = 0; i < sizeof phases / sizeof phases[0]; i++) {
        /* Every start-up phase ends in collectives over the world (the
         * agreement on failure, broadcasts): a rank stopped or cut off
         * in one would keep the others there forever. Phases have no set
         * length (loading a large model takes minutes), so no deadline:
         * the watchdog asks every rank for a heartbeat each
         * --collective-timeout and ends the job naming the silent ones. */
        vb_watchdog_wait(phases[i].name);
        int code = phases[i].run(r, err);
        if (code)
            return code;
    }
    return 0;
}

/* --- the loop and the end --------------------------------------------- */

/* Rank 0 collects the other groups' rows; the watchdog keeps every step
 * within --collective-timeout (and on rank 0 saves the journal first when
 * it must end the job). */
static void start_loop(run_state *r)
{
    /* --overwrite: the old output went unread and stayed until now, when
     * every start-up check has passed (resume.h) */
    vb_err oerr = {{0}};
    if (r->root && r->cfg->overwrite && vb_output_drop_replaced(r->cfg->output, &oerr) < 0)
        run_die(r, "removing the output that --overwrite replaces", 0, &oerr);
    if (r->root)
        run_collector_init(&r->out.coll, MPI_COMM_WORLD, &r->out.done, r->out.journal,
                           r->d->dp - 1);
    if (r->root && r->out.journal) /* if the job must end, finished rows first */
        vb_watchdog_set_rescue(rescue_journal, r);
    r->stats.t_engine = run_wall_now();
}

static int phase_finish(run_state *r, bool stopped, vb_err *err)
{
    run_output *out = &r->out;
    int code = 0;
    if (r->leader && !r->root) {
        double last = 0;
        if (run_rows_send(&out->finished, MPI_COMM_WORLD, 0, true, stopped, 0, &last, err))
            code = 1;
    }
    const char *phase = "writing the output";
    if (r->root)
        code = run_root_finish(r, &phase, err);
    /* rank 0's notice, if it has not gone yet (every group is done now),
     * for the ranks that wait for it below */
    if (r->root && !out->notice.posted &&
        run_stop_notice_post(&out->notice, MPI_COMM_WORLD, 0, code != 0) && !code)
        code = 1, vb_err_set(err, "MPI_Ibcast of the stop notice failed");
    if (run_stop_notice_finish(&out->notice) && !code)
        code = 1, vb_err_set(err, "completing rank 0's stop notice (MPI_Test) failed");
    /* every final message is in (rank 0 waited for them): collectives are
     * safe again; wait for the slowest group without spinning (the
     * watchdog's heartbeats meanwhile end the job if a rank is gone; past
     * the barrier every rank is here: no more probes) */
    if (run_sleepy_barrier(MPI_COMM_WORLD) && !code)
        code = 1, vb_err_set(err, "the final barrier of the ranks (MPI_Ibarrier) failed");
    vb_watchdog_disarm();
    int stop_here = stopped, stop_any = 0;
    MPI_CHECK(MPI_Allreduce(&stop_here, &stop_any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    code = run_agree(r, code, phase, err);
    if (code)
        return code;
    /* A group that stopped because its input could not be read: the
     * finished rows are written (above); the run is a bad input's, exit 2,
     * with the reading rank's message */
    if (r->work.read_failed) {
        *err = r->work.read_err;
        char what[VB_ERR_LEN];
        snprintf(what, sizeof what, "%s", err->msg);
        vb_err_set(err, "%s; the rows finished before it are in %s: restore the input, then "
                   "--resume", what, r->cfg->output);
    }
    code = run_agree(r, r->work.read_failed ? VB_EXIT_USAGE : 0, "reading this group's rows",
                     err);
    if (code)
        return code;
    return stop_any ? VB_EXIT_STOPPED : VB_EXIT_OK;
}

/* A start-up that failed after the journal was begun (the KV cache does
 * not fit, a backend error) leaves no journal that holds no row: the same
 * command with other settings would find it and be refused ("already
 * exists", or under --resume the settings that caused the failure). A
 * journal with rows, or an old output's rows being resumed, stays. */
static void drop_empty_journal(run_state *r)
{
    if (!r->out.journal || r->out.done.n_done > 0)
        return;
    vb_err err;
    vb_journal_close(r->out.journal, &err);
    r->out.journal = NULL;
    char *jpath = vb_journal_path_for(r->cfg->output);
    if (jpath && unlink(jpath) != 0)
        fprintf(stderr, "voltbatch %s: warning: could not remove %s: %s\n", r->cfg->command,
                jpath, strerror(errno));
    free(jpath);
}

int generate_run(const run_config *o, const vb_dist *d)
{
    static run_state r;
    memset(&r, 0, sizeof r);
    r.cfg = o;
    r.d = d;
    r.leader = d->tp_rank == 0;
    r.root = d->world_rank == 0;
    r.stats.t_start = run_wall_now();
    run_rows_init(&r.out.finished, -1);
    /* First thing: a time limit's SIGTERM during start-up (loading a large
     * model takes minutes) must end in a clean stop (75), not a kill. */
    vb_signals_install();

    vb_err err = {{0}};
    /* The watchdog runs from the start: its heartbeats find a rank lost
     * during start-up too (phases_before_loop), and from the first step
     * it keeps each step within --collective-timeout. */
    int code = 0;
    if (vb_watchdog_start(o->collective_timeout, RUN_FIRST_STEP_TIMEOUT_FACTOR)) {
        vb_err_set(&err, "cannot start the watchdog thread");
        code = 1;
    }
    vb_watchdog_set_collective("the start-up agreement between phases (MPI over every rank)");
    code = run_agree(&r, code, "starting the watchdog", &err);
    if (code == 0)
        code = phases_before_loop(&r, &err);
    if (code && r.root)
        drop_empty_journal(&r);
    if (code == 0) {
        start_loop(&r);
        double last_progress = 0;
        bool stopped = run_loop(&r);
        code = phase_finish(&r, stopped, &err);
        vb_watchdog_stop();
        run_progress(&r, &last_progress, true);
    } else {
        vb_watchdog_stop(); /* every rank failed at the same phase (run_agree) */
    }
    run_state_free(&r);
    return code;
}

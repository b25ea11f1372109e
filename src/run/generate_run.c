/* `voltbatch generate`: the driver (see generate_run.h). */
#include "run/generate_run.h"

#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/sampler.h"
#include "engine/sampler_params.h"
#include "engine/scheduler.h"
#include "forward/forward.h"
#include "git_revision.h"
#include "io/input_check.h"
#include "io/input_reader.h"
#include "io/output_writer.h"
#include "io/resume.h"
#include "io/run_settings.h"
#include "io/shard.h"
#include "model/model_load.h"
#include "mpi/mpi_check.h"
#include "mpi/watchdog.h"
#include "run/bench_metrics.h"
#include "run/run_backend.h"
#include "run/run_collect.h"
#include "run/run_prompts.h"
#include "run/run_rows.h"
#include "run/run_sample.h"
#if RUN_HAVE_TOKENIZER
#include "tokenizer/stop.h"
#endif
#include "util/exit_codes.h"
#include "util/log.h"
#include "util/signals.h"
#include "vb_config.h"

#define RUN_BLOCK_SIZE 16
#define RUN_DEFAULT_MAX_NEW_TOKENS 256
#define RUN_SEND_INTERVAL_S 1.0     /* leaders send finished rows at most this often */
#define RUN_PROGRESS_INTERVAL_S 5.0
#define RUN_KV_MEMORY_FRACTION 0.25 /* of the node's memory, shared by its ranks */
#define RUN_FIRST_STEP_TIMEOUT_FACTOR 4.0 /* the first step also warms up caches and kernels */

/* One (row, sample) of this group: a scheduler sequence with id = its index. */
typedef struct gen_seq {
    int64_t row_local;          /* index into run_state.rows */
    int32_t sample;
    int32_t *prompt;
    int n_prompt;
    int max_new;
    sampling_params params;     /* the run's, with the row's /seed */
    float *logprobs;            /* [max_new] chosen tokens' (leader, with --logprobs) */
    int32_t *top_ids;           /* [max_new * top_n] */
    float *top_logprobs;
    /* with --stop: the completion decoded as it grows, and the matcher */
    bool streaming, stop_hit;
#if RUN_HAVE_TOKENIZER
    tok_stream ts;
    stop_matcher sm;
#endif
    char *text;
    size_t text_len, text_cap;
} gen_seq;

typedef struct run_state {
    const generate_options *o;
    const vb_dist *d;
    bool leader, root;
    model_config cfg;
    tp_plan plan;
    model_weights w;
    vb_input in;
    bool in_open;
    long max_model_len;
    int32_t top_n;              /* -1: no logprobs; N: chosen + N alternatives */
    json_t *settings;
    vb_results done;            /* rank 0: every finished row */
    vb_journal *journal;        /* rank 0 */
    int32_t *group_of_row;
    int64_t *my_rows, n_my_rows;
    vb_input_row *rows;         /* this group's rows */
    gen_seq *seqs;
    int64_t n_seqs;
    int max_seq_tokens;         /* prompt + max_new over the group's sequences */
    tokenizer *tok;             /* NULL when tokenizer.json could not be loaded */
    char tok_error[VB_ERR_LEN];
    chat_template *chat_tmpl;   /* --chat or /messages: the template rows are rendered with */
    int32_t eos[VB_MAX_EOS + 16];
    int n_eos;
    run_backend rb;             /* CPU or CUDA, and the weights it reads */
    vb_backend *b;              /* rb.b */
    vb_kv_cache kv;
    bool kv_alloc;
    forward_state fs;
    bool fs_init;
    step_batch sb;
    bool sb_init;
    scheduler sched;
    bool sched_init;
    run_sampler smp;
    bool smp_init;
    run_rows finished;          /* leader: rows not yet sent / filed */
    int64_t tokens_sampled;     /* by this group, for the progress line */
    run_collector coll;         /* rank 0 */
    run_stop_notice notice;     /* rank 0's stop verdict to the other ranks */
    double t_start;             /* Unix seconds */
    double t_engine;            /* when the step loop started (loading done) */
    bench_metrics bm;           /* latency, step times, KV peak: the report's "metrics" */
    char model_path[PATH_MAX];
} run_state;

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Every rank: the worst exit code of the phase; the lowest failing rank
 * prints its message, so a failure common to all ranks prints once. */
static int agree(const run_state *r, int code, const char *phase, const vb_err *err)
{
    int worst = 0, first = INT_MAX, mine = code ? r->d->world_rank : INT_MAX;
    MPI_Allreduce(&code, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (code && r->d->world_rank == first) {
        fprintf(stderr, "voltbatch generate: rank %d: %s: %s\n", r->d->world_rank, phase,
                err->msg);
        fflush(stderr);
    }
    return worst;
}

/* Inside the loop the groups run independently; a failure ends the job. */
static void die(const run_state *r, const char *phase, long step, const vb_err *err)
    __attribute__((noreturn));
static void die(const run_state *r, const char *phase, long step, const vb_err *err)
{
    fprintf(stderr, "voltbatch generate: rank %d (group %d): %s at step %ld: %s\n",
            r->d->world_rank, r->d->dp_rank, phase, step, err->msg);
    fflush(stderr);
    vb_dist_abort(VB_EXIT_FAILURE);
}

/* The watchdog's last act on rank 0: every finished row to disk. The main
 * thread is blocked in a collective then, not inside the journal. */
static void rescue_journal(void *ctx)
{
    run_state *r = ctx;
    vb_err err;
    if (r->journal && vb_journal_flush(r->journal, &err))
        vb_error("saving the journal: %s", err.msg);
    else
        vb_info("finished rows are saved in %s.journal: rerun with --resume", r->o->output);
}

static bool is_eos(const run_state *r, int32_t tok)
{
    for (int i = 0; i < r->n_eos; i++)
        if (r->eos[i] == tok)
            return true;
    return false;
}

static void add_eos(run_state *r, int32_t id)
{
    if (id < 0 || is_eos(r, id) || r->n_eos >= (int)(sizeof r->eos / sizeof r->eos[0]))
        return;
    r->eos[r->n_eos++] = id;
}

/* The tokenizer (every rank: each encodes its group's rows and decides stop
 * strings itself), the chat template, and the eos ids: config.json's and
 * generation_config.json's, plus the tokenizer's. Text inputs without a
 * tokenizer, or --chat without a template we render, stop here (exit 2). */
static int phase_tokenizer(run_state *r, vb_err *err)
{
    const generate_options *o = r->o;
    const bool text = r->in.kind != VB_PROMPT_IDS;
    int code = 0;
#if RUN_HAVE_TOKENIZER
    vb_err terr = {{0}};
    r->tok = tokenizer_load(o->model_dir, &terr);
    if (!r->tok) {
        snprintf(r->tok_error, sizeof r->tok_error, "%s", terr.msg);
        if (text || o->n_stops > 0)
            code = VB_EXIT_USAGE, vb_err_set(err, "%s", terr.msg);
        else if (r->root)
            fprintf(stderr, "voltbatch generate: warning: no tokenizer (%s); /completions will "
                            "be empty, /output_ids are complete\n", terr.msg);
    }
    if (!code && r->tok && text && (o->chat || r->in.kind == VB_PROMPT_MESSAGES)) {
        /* a template that does not parse stops the run here (exit 2);
         * one that fails on a row makes that row an error row */
        r->chat_tmpl = chat_template_open(r->tok, o->model_dir, o->chat_template,
                                          o->chat_template_kwargs, err);
        if (!r->chat_tmpl)
            code = VB_EXIT_USAGE, vb_err_prefix(err, "%s", o->chat ? "--chat" : "/messages");
    }
    if (r->tok) {
        const int32_t *ids = NULL;
        size_t n = tokenizer_eos_ids(r->tok, &ids);
        for (size_t i = 0; i < n; i++)
            add_eos(r, ids[i]);
    }
#else
    (void)text;
    if (o->n_stops > 0)
        code = VB_EXIT_USAGE, vb_err_set(err, "--stop needs the tokenizer (issue #4)");
#endif
    for (int i = 0; i < r->cfg.n_eos; i++)
        add_eos(r, r->cfg.eos_token_ids[i]);
    return agree(r, code, "tokenizer", err);
}

/* generation_config.json's sampling (greedy unless it says do_sample),
 * then the command line over it. */
static sampling_params run_sampling(const generate_options *o, const model_config *c)
{
    sampling_params md = sampling_params_default();
    if (c->gen_do_sample) {
        if (!isnan(c->gen_temperature)) md.temperature = (float)c->gen_temperature;
        if (!isnan(c->gen_top_p)) md.top_p = (float)c->gen_top_p;
        if (c->gen_top_k >= 0) md.top_k = c->gen_top_k;
    } else {
        md.temperature = 0; /* greedy */
    }
    if (!isnan(c->gen_repetition_penalty))
        md.repetition_penalty = (float)c->gen_repetition_penalty;
    return sampling_params_resolve(o, &md);
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

static int phase_settings(run_state *r, vb_err *err)
{
    const generate_options *o = r->o;
    if (!realpath(o->model_dir, r->model_path))
        snprintf(r->model_path, sizeof r->model_path, "%s", o->model_dir);
    vb_run_settings s = {
        .model = r->model_path, .tp = r->d->tp, .seed = o->seed,
        .max_new_tokens = o->max_new_tokens, .temperature = o->temperature, .top_p = o->top_p,
        .top_k = o->top_k, .min_p = o->min_p, .repetition_penalty = o->repetition_penalty,
        .frequency_penalty = o->frequency_penalty, .presence_penalty = o->presence_penalty,
        .n = o->n, .logprobs = o->logprobs, .ignore_eos = o->ignore_eos, .stops = o->stops,
        .n_stops = o->n_stops, .chat = o->chat, .chat_template = o->chat_template,
        .system = o->system, .max_model_len = o->max_model_len,
        .input_checksum = r->in.checksum, .input_rows = r->in.n_rows,
    };
    r->settings = vb_run_settings_json(&s);
    if (!r->settings)
        return vb_err_set(err, "out of memory");
    return 0;
}

/* Rank 0 assigns the rows not finished yet to groups by cost; everyone
 * gets the assignment (-1 = already done). */
static int phase_shard(run_state *r, vb_err *err)
{
    int64_t n = r->in.n_rows;
    int code = 0;
    r->group_of_row = calloc((size_t)n + 1, sizeof *r->group_of_row);
    if (!r->group_of_row)
        code = 1, vb_err_set(err, "out of memory for %" PRId64 " rows", n);
    if (!code && r->root) {
        int64_t *cost = calloc((size_t)n + 1, sizeof *cost);
        if (!cost)
            code = 1, vb_err_set(err, "out of memory for %" PRId64 " rows", n);
        else if (vb_input_row_costs(&r->in, cost, err))
            code = VB_EXIT_USAGE;
        if (!code) {
            for (int64_t i = 0; i < n; i++)
                if (vb_results_row_done(&r->done, i))
                    cost[i] = 0;
            if (vb_shard_assign(cost, n, r->d->dp, r->group_of_row))
                code = 1, vb_err_set(err, "out of memory assigning rows to groups");
            for (int64_t i = 0; !code && i < n; i++)
                if (vb_results_row_done(&r->done, i))
                    r->group_of_row[i] = -1;
        }
        free(cost);
    }
    code = agree(r, code, "assigning rows to groups", err);
    if (code)
        return code;
    if (bcast_i32(r->group_of_row, n, MPI_COMM_WORLD)) {
        vb_err_set(err, "MPI_Bcast of the row assignment failed");
        return agree(r, 1, "assigning rows to groups", err);
    }
    r->my_rows = malloc(((size_t)n + 1) * sizeof *r->my_rows);
    if (r->my_rows)
        r->n_my_rows = vb_shard_rows_of(r->group_of_row, n, r->d->dp_rank, r->my_rows);
    code = r->my_rows ? 0 : 1;
    if (code)
        vb_err_set(err, "out of memory");
    return agree(r, code, "assigning rows to groups", err);
}

/* Reads the group's rows and makes one sequence per (row, sample); bad rows
 * become error rows at once. */
static int phase_rows(run_state *r, vb_err *err)
{
    const generate_options *o = r->o;
    int code = 0;
    r->rows = calloc((size_t)r->n_my_rows + 1, sizeof *r->rows);
    int64_t n_samples = o->n > 0 ? o->n : 1;
    r->seqs = calloc((size_t)(r->n_my_rows * n_samples) + 1, sizeof *r->seqs);
    if (!r->rows || !r->seqs)
        code = 1, vb_err_set(err, "out of memory for %" PRId64 " rows", r->n_my_rows);
    else if (vb_input_read_rows(&r->in, r->my_rows, r->n_my_rows, r->rows, err))
        code = 1;
    if ((code = agree(r, code, "reading this group's rows", err)))
        return code;

    const sampling_params base = run_sampling(o, &r->cfg);
    long default_max_new = o->max_new_tokens >= 0 ? o->max_new_tokens : RUN_DEFAULT_MAX_NEW_TOKENS;
    r->max_seq_tokens = 1;
    const run_prompt_ctx pc = {
        .kind = r->in.kind, .tok = r->tok, .tok_error = r->tok_error, .chat_tmpl = r->chat_tmpl,
        .chat = o->chat, .system = o->system, .vocab_size = r->cfg.vocab_size,
        .max_model_len = r->max_model_len,
    };
    for (int64_t k = 0; k < r->n_my_rows && !code; k++) {
        const vb_input_row *row = &r->rows[k];
        int32_t *ids = NULL;
        int n_ids = 0;
        char why[256];
        int prc = run_prompt_ids(&pc, row, &ids, &n_ids, why, sizeof why);
        if (prc < 0) {
            code = 1, vb_err_set(err, "out of memory");
            break;
        }
        if (prc > 0) {
            for (int32_t s = 0; s < n_samples && r->leader && !code; s++)
                if (run_rows_add_error(&r->finished, row->index, s, row->id, row->id_int,
                                       row->n_ids, why))
                    code = 1, vb_err_set(err, "out of memory");
            continue;
        }
        long max_new = row->max_new_tokens >= 0 ? row->max_new_tokens : default_max_new;
        if (max_new > r->max_model_len - n_ids)
            max_new = r->max_model_len - n_ids;
        for (int32_t s = 0; s < n_samples; s++) {
            gen_seq *g = &r->seqs[r->n_seqs++];
            g->row_local = k;
            g->sample = s;
            g->prompt = ids; /* shared by the samples; freed with sample 0 */
            g->n_prompt = n_ids;
            g->max_new = (int)max_new;
            g->params = base;
            if (row->seed >= 0)
                g->params.seed = (uint64_t)row->seed;
#if RUN_HAVE_TOKENIZER
            if (o->n_stops > 0 && r->tok) {
                g->streaming = true;
                tok_stream_init(&g->ts, r->tok, true);
                if (stop_matcher_init(&g->sm, o->stops, (size_t)o->n_stops))
                    code = 1, vb_err_set(err, "out of memory");
            }
#endif
            if (n_ids + max_new > r->max_seq_tokens)
                r->max_seq_tokens = (int)(n_ids + max_new);
        }
    }
    return agree(r, code, "preparing rows", err);
}

static int phase_engine(run_state *r, vb_err *err)
{
    const generate_options *o = r->o;
    const model_config *c = &r->cfg;
    int code = 0;
    const char *what = "backend";
    code = run_backend_open(&r->rb, o, r->d, c, &r->plan, r->w.layers ? &r->w : NULL, err);
    r->b = r->rb.b;
    if (code)
        goto done;
    if (r->rb.cuda) /* on the GPU now; give the host memory back */
        model_weights_free(&r->w);

    /* The activations first, so the KV cache gets what remains. */
    what = "forward pass";
    int max_tokens = (int)o->max_batched_tokens;
    if (forward_init(&r->fs, r->b, c, &r->plan, r->rb.w, max_tokens, err)) {
        code = 1;
        goto done;
    }
    r->fs_init = true;
    /* one row of logits per sequence of a step, before the KV cache takes
     * what is left; rounded up to 32 for the rows a CUDA-graph bucket pads
     * a decode step to (cuda_graphs.h) */
    if (forward_reserve_logits(&r->fs, (int)((o->max_batch + 31) / 32 * 32))) {
        code = 1, vb_err_set(err, "out of %s memory for %ld rows of logits", r->b->name,
                             o->max_batch);
        goto done;
    }

    /* KV cache: enough blocks for max_batch sequences of the longest length,
     * bounded by the memory left (GPU: under --gpu-memory-utilization; CPU:
     * a share of the node's memory), and never fewer than the longest
     * sequence needs. The same count on every rank of the group. */
    what = "KV cache";
    int bs = RUN_BLOCK_SIZE;
    int per_seq = (r->max_seq_tokens + bs - 1) / bs;
    int64_t active = r->n_seqs < o->max_batch ? r->n_seqs : o->max_batch;
    if (active < 1)
        active = 1;
    int64_t want = active * per_seq;
    size_t block_bytes = kv_cache_block_bytes(r->b, c->n_layers, bs, r->plan.kv_heads_local,
                                              c->head_dim);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    double cpu_budget = pages > 0 && page > 0 ? (double)pages * page * RUN_KV_MEMORY_FRACTION /
                                                    (r->d->local_size > 0 ? r->d->local_size : 1)
                                              : 4e9;
    double budget = run_backend_kv_budget(&r->rb, o, cpu_budget);
    int64_t cap = block_bytes ? (int64_t)(budget / (double)block_bytes) : want;
    int64_t nb = want < cap ? want : cap;
    if (nb > INT_MAX / 2)
        nb = INT_MAX / 2;
    int num_blocks = (int)nb, agreed = num_blocks;
    MPI_CHECK(MPI_Allreduce(&num_blocks, &agreed, 1, MPI_INT, MPI_MIN, r->d->tp_comm));
    if (agreed < per_seq) {
        /* Every rank of the group sees the same agreed count, so all stop
         * here together. Say what would fit rather than failing later. */
        code = 1;
        vb_err_set(err,
                   "not enough %s memory for the KV cache: %.2f GiB left after the weights "
                   "and activations hold %ld tokens, but the longest sequence needs %d "
                   "(prompt + --max-new-tokens, at most --max-model-len %ld); use a larger --tp "
                   "(spreads the weights and the cache over more GPUs), a shorter "
                   "--max-model-len or --max-new-tokens, a smaller --max-batched-tokens, or a "
                   "higher --gpu-memory-utilization (now %.2f)",
                   r->b->name, budget / (1024.0 * 1024 * 1024), (long)agreed * bs,
                   r->max_seq_tokens,
                   o->max_model_len > 0 ? o->max_model_len : (long)c->max_position_embeddings,
                   o->gpu_memory_utilization);
        goto done;
    }
    if (kv_cache_alloc(&r->kv, r->b, c->n_layers, agreed, bs, r->plan.kv_heads_local,
                       c->head_dim, err)) {
        code = 1;
        goto done;
    }
    r->kv_alloc = true;

    if (step_batch_init(&r->sb, (int)o->max_batch, max_tokens, per_seq)) {
        code = 1, vb_err_set(err, "out of memory for the step batch");
        goto done;
    }
    r->sb_init = true;
    r->sb.all_logits = false;

    what = "scheduler";
    sched_options so = {.max_batch = (int)o->max_batch,
                        .max_batched_tokens = max_tokens,
                        .prefix_cache = o->prefix_cache};
    if (sched_init(&r->sched, &so, agreed, bs, err)) {
        code = 1;
        goto done;
    }
    r->sched_init = true;

    what = "sampler";
    if (run_sampler_init(&r->smp, r->d->tp_comm, r->d->tp, r->plan.vocab_start,
                         r->plan.vocab_local, o->tuning.host_sampler, err)) {
        code = 1;
        goto done;
    }
    r->smp_init = true;

    /* queue every sequence; one the cache can never hold is an error row */
    what = "queueing rows";
    for (int64_t i = 0; i < r->n_seqs && !code; i++) {
        gen_seq *g = &r->seqs[i];
        const vb_input_row *row = &r->rows[g->row_local];
        vb_err aerr = {{0}};
        if (g->max_new <= 0) { /* nothing to generate: done, "length" */
            if (r->leader) {
                vb_output_row w = {0};
                w.index = row->index;
                w.sample = g->sample;
                w.prompt_tokens = g->n_prompt;
                w.finish_reason = VB_FINISH_LENGTH;
                w.completion = strdup("");
                w.error = strdup("");
                w.id = row->id ? strdup(row->id) : NULL;
                w.id_int = row->id_int;
                w.output_ids = malloc(sizeof(int32_t));
                if (r->top_n >= 0)
                    w.logprobs = malloc(sizeof(float));
                if (!w.completion || !w.error || !w.output_ids || run_rows_take(&r->finished, &w))
                    code = 1, vb_err_set(err, "out of memory");
            }
            continue;
        }
        if (sched_add(&r->sched, i, g->prompt, g->n_prompt, g->max_new, &aerr) < 0) {
            if (r->leader && run_rows_add_error(&r->finished, row->index, g->sample, row->id,
                                                row->id_int, g->n_prompt, aerr.msg))
                code = 1, vb_err_set(err, "out of memory");
            continue;
        }
        if (r->leader && r->top_n >= 0) {
            size_t m = (size_t)g->max_new, t = (size_t)(r->top_n > 0 ? r->top_n : 0);
            g->logprobs = calloc(m, sizeof(float));
            if (t) {
                g->top_ids = calloc(m * t, sizeof(int32_t));
                g->top_logprobs = calloc(m * t, sizeof(float));
            }
            if (!g->logprobs || (t && (!g->top_ids || !g->top_logprobs)))
                code = 1, vb_err_set(err, "out of memory for logprobs");
        }
    }
done:
    if (code) {
        char phase[64];
        snprintf(phase, sizeof phase, "setting up the %s", what);
        return agree(r, code, phase, err);
    }
    return agree(r, 0, "engine setup", err);
}

/* --- the loop --------------------------------------------------------- */

/* The completion's text: what the stream decoded (cut at the stop string
 * with --stop), else the whole decode, skipping special tokens; "" without
 * a tokenizer. */
static char *completion_text(run_state *r, gen_seq *g, const int32_t *ids, int n, long step)
{
#if !RUN_HAVE_TOKENIZER
    (void)r, (void)g, (void)ids, (void)n, (void)step;
    return strdup("");
#else
    if (g->streaming) {
        if (!g->stop_hit)
            tok_stream_finish(&g->ts, &g->text, &g->text_len, &g->text_cap);
        char *t = malloc(g->text_len + 1);
        if (t) {
            if (g->text_len)
                memcpy(t, g->text, g->text_len);
            t[g->text_len] = '\0';
        }
        return t;
    }
    if (!r->tok)
        return strdup("");
    /* ids the tokenizer lacks (the model's padded vocabulary rows, which a
     * trained model never picks) decode to nothing */
    int32_t *known = malloc(((size_t)n + 1) * sizeof *known);
    if (!known)
        return NULL;
    int m = 0, limit = tokenizer_vocab_size(r->tok);
    for (int i = 0; i < n; i++)
        if (ids[i] >= 0 && ids[i] < limit)
            known[m++] = ids[i];
    char *out = NULL;
    size_t len = 0;
    vb_err err = {{0}};
    int rc = tokenizer_decode(r->tok, known, (size_t)m, true, &out, &len, &err);
    free(known);
    if (rc) {
        vb_warn("group %d step %ld: cannot decode a completion: %s", r->d->dp_rank, step, err.msg);
        return strdup("");
    }
    return out;
#endif
}

/* Feeds a sampled token to a --stop sequence's stream; true when a stop
 * string completed (the text is then cut where it starts). */
static bool stream_token(gen_seq *g, int32_t id)
{
#if !RUN_HAVE_TOKENIZER
    (void)g, (void)id;
    return false;
#else
    size_t before = g->text_len;
    if (tok_stream_push(&g->ts, id, &g->text, &g->text_len, &g->text_cap) < 0)
        return false;
    size_t at = 0;
    if (g->text_len > before &&
        stop_matcher_feed(&g->sm, g->text + before, g->text_len - before, &at)) {
        g->text_len = at;
        g->stop_hit = true;
        return true;
    }
    return false;
#endif
}

static void finish_seq(run_state *r, int slot, gen_seq *g, vb_finish_reason why, const char *msg,
                       long step)
{
    const sched_seq *sq = sched_seq_get(&r->sched, slot);
    int n_out = sq->n_tokens - sq->n_prompt;
    if (why == VB_FINISH_ERROR && n_out > 0)
        n_out--; /* the placeholder appended for the failed step */
    if (r->leader) {
        const vb_input_row *row = &r->rows[g->row_local];
        vb_output_row w = {0};
        vb_err err = {{0}};
        w.index = row->index;
        w.sample = g->sample;
        w.prompt_tokens = g->n_prompt;
        w.completion_tokens = n_out;
        w.n_output_ids = n_out;
        w.finish_reason = why;
        w.output_ids = malloc(((size_t)n_out + 1) * sizeof(int32_t));
        if (w.output_ids)
            memcpy(w.output_ids, sq->tokens + sq->n_prompt, (size_t)n_out * sizeof(int32_t));
        w.completion = completion_text(r, g, sq->tokens + sq->n_prompt, n_out, step);
        w.error = strdup(msg ? msg : "");
        w.id = row->id ? strdup(row->id) : NULL;
        w.id_int = row->id_int;
        w.logprobs = g->logprobs;
        w.top_ids = g->top_ids;
        w.top_logprobs = g->top_logprobs;
        g->logprobs = NULL;
        g->top_ids = NULL;
        g->top_logprobs = NULL;
        if (!w.output_ids || !w.completion || !w.error || (row->id && !w.id) ||
            run_rows_take(&r->finished, &w)) {
            vb_err_set(&err, "out of memory for a finished row");
            die(r, "finishing a row", step, &err);
        }
    }
    bench_metrics_seq_finish(&r->bm, g - r->seqs, n_out);
    sched_finish(&r->sched, slot);
}

static void progress(run_state *r, double *last, bool force)
{
    double now = MPI_Wtime();
    if (!r->root || (!force && now - *last < RUN_PROGRESS_INTERVAL_S))
        return;
    *last = now;
    int64_t total = r->done.n_rows * r->done.n_samples;
    double el = wall_now() - r->t_start;
    fprintf(stderr,
            "voltbatch generate: %" PRId64 "/%" PRId64 " rows done; group 0 of %d: %.1f "
            "generated tokens/s, KV cache %.0f%% used\n",
            r->done.n_done, total, r->d->dp, el > 0 ? r->tokens_sampled / el : 0.0,
            100.0 * sched_kv_use(&r->sched));
}

/* Rank 0, once a step (now: at the end): files finished rows (its own
 * group's and what other leaders sent) and writes the journal, syncing it
 * when due (now: at once). A journal failure is no error here: the journal
 * keeps it (vb_journal_failure), the next step's stop check ends the run
 * in order, and phase_finish reports it. */
static int root_file_rows(run_state *r, bool now, vb_err *err)
{
    if (run_collector_take_local(&r->coll, &r->finished, err) ||
        run_collector_poll(&r->coll, false, err))
        return -1;
    if (r->journal &&
        (now ? vb_journal_flush(r->journal, err) : vb_journal_tick(r->journal, err)) < 0 &&
        !vb_journal_failure(r->journal))
        return -1;
    return 0;
}

/* Runs this group's sequences to the end or to a stop request. Returns
 * true when stopped early. */
static bool run_loop(run_state *r)
{
    const int max_seqs = (int)r->o->max_batch;
    sampler_row *srows = calloc((size_t)max_seqs, sizeof *srows);
    const float **lp = calloc((size_t)max_seqs, sizeof *lp);
    sample_result *res = calloc((size_t)max_seqs, sizeof *res);
    int32_t *sampled = calloc((size_t)max_seqs, sizeof *sampled);
    int *slot_of = calloc((size_t)max_seqs, sizeof *slot_of);
    int64_t *id_of = calloc((size_t)max_seqs, sizeof *id_of);
    vb_err err = {{0}};
    long step = 0;
    bench_model_cost cost; /* the GPU holds fp16 weights, the CPU backend fp32 */
    bench_model_cost_make(&cost, &r->cfg, &r->plan, r->rb.cuda ? 2 : 4, (int)r->b->act_size);
    if (!srows || !lp || !res || !sampled || !slot_of || !id_of ||
        bench_metrics_init(&r->bm, r->n_seqs, &cost, r->sched.kv.n_blocks,
                           r->rb.cuda ? r->b : NULL, &r->o->tuning)) {
        vb_err_set(&err, "out of memory");
        die(r, "starting the loop", 0, &err);
    }
    const int vocab_local = r->plan.vocab_local;
    double last_send = MPI_Wtime(), last_progress = MPI_Wtime();
    bool stopped = false;
    if (!r->root && run_stop_notice_post(&r->notice, MPI_COMM_WORLD, 0, false)) {
        vb_err_set(&err, "MPI_Ibcast of rank 0's stop notice failed");
        die(r, "starting the loop", 0, &err);
    }

    while (!sched_idle(&r->sched)) {
        /* each step must end within --collective-timeout (a hung rank
         * would leave the group blocked in its collectives) */
        vb_watchdog_arm("an engine step", step);
        bench_metrics_mark(&r->bm, BENCH_STEP_START);
        /* a stop request, rank 0's journal failing, or rank 0 telling
         * every rank to stop: the whole group stops at the same step */
        int stop = vb_stop_requested() || vb_journal_failure(r->journal) ||
                   run_stop_notice_says_stop(&r->notice), any = stop;
        if (r->d->tp > 1)
            MPI_CHECK(MPI_Allreduce(&stop, &any, 1, MPI_INT, MPI_MAX, r->d->tp_comm));
        if (any) {
            stopped = true;
            break;
        }

        const sched_step_plan *p = sched_step(&r->sched);
        if (p->n_seqs == 0) {
            vb_err_set(&err, "the scheduler planned an empty step with sequences left");
            die(r, "scheduling", step, &err);
        }
        bench_metrics_plan(&r->bm, p, sched_blocks_used(&r->sched));
        step_batch_clear(&r->sb);
        for (int i = 0; i < p->n_seqs; i++) {
            const sched_step_seq *q = &p->seqs[i];
            if (step_batch_add_seq(&r->sb, q->tokens, q->n_tokens, q->start, q->block_table,
                                   q->n_blocks)) {
                vb_err_set(&err, "the step batch is full (%d sequences, %d tokens)",
                           p->n_seqs, p->n_tokens);
                die(r, "building the step batch", step, &err);
            }
        }
        /* in the backend's memory: the sampler summarizes it there when
         * the backend can (CUDA), else copies it to the host */
        long recorded = r->fs.b->graphs_recorded;
        const float *logits = forward_step(&r->fs, &r->sb, &r->kv);
        if (r->fs.b->graphs_recorded != recorded)
            bench_metrics_graph_recorded(&r->bm);
        if (!logits) {
            vb_err_set(&err, "forward_step refused a batch of %d tokens", p->n_tokens);
            die(r, "forward pass", step, &err);
        }
        bench_metrics_mark(&r->bm, BENCH_FORWARD_DONE);

        int ns = p->n_samples;
        for (int i = 0; i < p->n_seqs; i++) {
            const sched_step_seq *q = &p->seqs[i];
            if (q->sample_index < 0)
                continue;
            int j = q->sample_index;
            const sched_seq *sq = sched_seq_get(&r->sched, q->slot);
            gen_seq *g = &r->seqs[q->id];
            srows[j] = (sampler_row){
                .params = &g->params,
                .row = (uint32_t)r->rows[g->row_local].index,
                .sample = (uint32_t)g->sample,
                .step = (uint32_t)q->n_generated,
                .prompt = sq->tokens,
                .n_prompt = sq->n_prompt,
                .generated = sq->tokens + sq->n_prompt,
                .n_generated = q->n_generated,
                .state_slot = q->slot + 1,
            };
            lp[j] = logits + (size_t)i * vocab_local;
            slot_of[j] = q->slot;
            id_of[j] = q->id;
        }
        if (run_sampler_step_backend(&r->smp, &r->rb, logits,
                                     (size_t)step_batch_n_out(&r->sb) * (size_t)vocab_local,
                                     srows, lp, ns, res, &err))
            die(r, "sampling", step, &err);
        bench_metrics_mark(&r->bm, BENCH_SAMPLED);
        r->tokens_sampled += ns;
        for (int j = 0; j < ns; j++) {
            sampled[j] = res[j].error ? 0 : res[j].token;
            gen_seq *g = &r->seqs[id_of[j]];
            int t = (int)srows[j].step;
            if (g->logprobs && !res[j].error && t < g->max_new) {
                g->logprobs[t] = res[j].logprob;
                for (int k = 0; k < r->top_n && k < res[j].n_top; k++) {
                    g->top_ids[(size_t)t * r->top_n + k] = res[j].top_tokens[k];
                    g->top_logprobs[(size_t)t * r->top_n + k] = res[j].top_logprobs[k];
                }
            }
        }
        /* the plan is invalid after this; slot_of / id_of / srows.step kept */
        sched_step_done(&r->sched, sampled);
        for (int j = 0; j < ns; j++) {
            gen_seq *g = &r->seqs[id_of[j]];
            int generated = (int)srows[j].step + 1;
            if (res[j].error) {
                char msg[96];
                snprintf(msg, sizeof msg, "NaN or Inf in the logits at generated token %d",
                         generated - 1);
                finish_seq(r, slot_of[j], g, VB_FINISH_ERROR, msg, step);
            } else if (!r->o->ignore_eos && is_eos(r, sampled[j])) {
                finish_seq(r, slot_of[j], g, VB_FINISH_STOP, NULL, step);
            } else if (g->streaming && stream_token(g, sampled[j])) {
                finish_seq(r, slot_of[j], g, VB_FINISH_STOP, NULL, step);
            } else if (generated >= g->max_new) {
                finish_seq(r, slot_of[j], g, VB_FINISH_LENGTH, NULL, step);
            }
        }

        if (r->leader) {
            if (r->root) {
                vb_watchdog_hold_rescue(); /* the journal: not while the watchdog saves it */
                if (root_file_rows(r, false, &err))
                    die(r, "collecting finished rows", step, &err);
                vb_watchdog_release_rescue();
            } else if (run_rows_send(&r->finished, MPI_COMM_WORLD, 0, false, false,
                                     RUN_SEND_INTERVAL_S, &last_send, &err)) {
                die(r, "sending finished rows", step, &err);
            }
        }
        progress(r, &last_progress, false);
        bench_metrics_mark(&r->bm, BENCH_STEP_END);
        step++;
    }
    /* when rank 0's group stopped (its journal failed, or a signal that
     * reached only some ranks), every other group stops too (else the
     * notice goes once they are done: root_finish) */
    if (r->root && stopped && run_stop_notice_post(&r->notice, MPI_COMM_WORLD, 0, true)) {
        vb_err_set(&err, "MPI_Ibcast of the stop notice failed");
        die(r, "ending the loop", step, &err);
    }
    /* rank 0 may now wait for slower groups: a legitimate wait */
    vb_watchdog_disarm();
    free(srows);
    free(lp);
    free(res);
    free(sampled);
    free(slot_of);
    free(id_of);
    return stopped;
}

/* --- the end ---------------------------------------------------------- */

static int write_report(const run_state *r, const char *path, double elapsed, bool complete,
                        vb_err *err)
{
    double engine = wall_now() - r->t_engine;
    json_t *j = json_pack("{s:s, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:b, "
                          "s:{s:I, s:I, s:I, s:f, s:I}}",
                          "model", r->model_path, "tp", r->d->tp, "dp", r->d->dp,
                          "input_rows", (json_int_t)r->in.n_rows,
                          "rows_done", (json_int_t)r->done.n_done,
                          "rows_this_run", (json_int_t)r->coll.rows_new,
                          "generated_tokens", (json_int_t)r->coll.tokens_new,
                          "prompt_tokens", (json_int_t)r->coll.prompt_tokens_new,
                          "elapsed_s", elapsed,
                          "load_s", r->t_engine - r->t_start,
                          "engine_s", engine,
                          "generated_tokens_per_s", elapsed > 0 ? r->coll.tokens_new / elapsed : 0.0,
                          "complete", complete,
                          "group0", "steps", (json_int_t)r->sched.stats.steps,
                          "prefill_tokens", (json_int_t)r->sched.stats.prefill_tokens,
                          "decode_tokens", (json_int_t)r->sched.stats.decode_tokens,
                          "prefix_hit_rate", sched_prefix_hit_rate(&r->sched),
                          "preemptions", (json_int_t)r->sched.stats.preemptions);
    /* group 0's latency, step breakdown, KV peak, MBU / MFU (bench_metrics.h) */
    if (!j || json_object_set_new(j, "metrics", bench_metrics_json(&r->bm, r->rb.cuda
                                                                       ? r->rb.gpu_name
                                                                       : NULL,
                                                                   engine))) {
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
    long steps = (long)r->sched.stats.steps;
    if (out_rc == 0)
        vb_err_set(err, "%s; the run stopped after step %ld, and its %" PRId64 " finished rows "
                   "are in %s: rerun with --resume once the journal can be written",
                   msg, steps, r->done.n_done, r->o->output);
    else
        vb_err_set(err, "%s; the run stopped after step %ld, and the output could not be "
                   "written either: %s", msg, steps, out_msg);
}

/* Rank 0 after its own loop: the other groups' rows until every final
 * message is in (even after a failure: a leader left in its send would
 * hang the closing barrier), filed and written to the journal as in the
 * loop. When the journal fails meanwhile, rank 0's notice tells every rank
 * to stop at once; otherwise it goes, saying carry on, once all are done. */
static int root_collect_rest(run_state *r, vb_err *err)
{
    int rc = 0;
    vb_err later;
    while (r->coll.pending_finals > 0) {
        if (run_collector_poll(&r->coll, false, rc ? &later : err) < 0 ||
            (r->journal && vb_journal_tick(r->journal, rc ? &later : err) < 0 &&
             !vb_journal_failure(r->journal)))
            rc = -1;
        if (!r->notice.posted && vb_journal_failure(r->journal) &&
            run_stop_notice_post(&r->notice, MPI_COMM_WORLD, 0, true) && rc == 0)
            rc = vb_err_set(err, "MPI_Ibcast of the stop notice failed");
        if (r->coll.pending_finals > 0)
            run_nap();
    }
    return rc;
}

/* Rank 0 at the end: every finished row filed and synced, then the output
 * and the report. A failed journal does not keep the output from being
 * written (it holds the rows the journal lost), but the run fails naming
 * the journal (*phase says so). Returns 0 or 1. */
static int root_finish(run_state *r, const char **phase, vb_err *err)
{
    /* No rescue from here on (the journal becomes the output; this
     * waits out one in progress), so this group's rows go to disk
     * before waiting for slower groups, which may never come. */
    vb_watchdog_hold_rescue();
    vb_watchdog_set_rescue(NULL, NULL);
    vb_watchdog_release_rescue();
    int rc = root_file_rows(r, true, err);
    vb_err later;
    if (root_collect_rest(r, rc ? &later : err) < 0)
        rc = -1;
    if (rc)
        return 1;
    char jfail[VB_ERR_LEN] = "";
    if (vb_journal_failure(r->journal)) {
        *phase = "writing the journal";
        snprintf(jfail, sizeof jfail, "%s", vb_journal_failure(r->journal));
        /* returns the failure just copied; the descriptor is freed all the same */
        vb_journal_close(r->journal, NULL);
        r->journal = r->coll.journal = NULL;
    }
    double end = wall_now(), el = end - r->t_start;
    char version[128];
    snprintf(version, sizeof version, "%s (git %s)", VB_VERSION, VB_GIT_REVISION);
    bool complete = r->done.n_done == r->done.n_rows * r->done.n_samples;
    vb_output_meta meta = {
        .settings = r->settings, .dp = r->d->dp, .version = version,
        .start_time = r->t_start, .end_time = end,
        .throughput = el > 0 ? r->coll.tokens_new / el : 0.0, .complete = complete,
    };
    rc = vb_output_finish(r->o->output, &meta, &r->done, &r->journal, err);
    if (jfail[0]) {
        explain_journal_failure(r, jfail, rc, err);
        return 1;
    }
    if (rc == 0 && r->o->report && write_report(r, r->o->report, el, complete, err))
        rc = -1;
    return rc ? 1 : 0;
}

static int phase_finish(run_state *r, bool stopped, vb_err *err)
{
    int code = 0;
    if (r->leader && !r->root) {
        double last = 0;
        if (run_rows_send(&r->finished, MPI_COMM_WORLD, 0, true, stopped, 0, &last, err))
            code = 1;
    }
    const char *phase = "writing the output";
    if (r->root)
        code = root_finish(r, &phase, err);
    /* rank 0's notice, if it has not gone yet (every group is done now),
     * for the ranks that wait for it below */
    if (r->root && !r->notice.posted &&
        run_stop_notice_post(&r->notice, MPI_COMM_WORLD, 0, code != 0) && !code)
        code = 1, vb_err_set(err, "MPI_Ibcast of the stop notice failed");
    if (run_stop_notice_finish(&r->notice) && !code)
        code = 1, vb_err_set(err, "completing rank 0's stop notice (MPI_Test) failed");
    /* every final message is in (rank 0 waited for them): collectives are
     * safe again; wait for the slowest group without spinning */
    run_sleepy_barrier(MPI_COMM_WORLD);
    int stop_here = stopped, stop_any = 0;
    MPI_Allreduce(&stop_here, &stop_any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    code = agree(r, code, phase, err);
    if (code)
        return code;
    return stop_any ? VB_EXIT_STOPPED : VB_EXIT_OK;
}

static void cleanup(run_state *r)
{
    vb_err err;
    bench_metrics_free(&r->bm);
    if (r->smp_init)
        run_sampler_free(&r->smp);
    if (r->sched_init)
        sched_free(&r->sched);
    if (r->sb_init)
        step_batch_free(&r->sb);
    if (r->fs_init)
        forward_free(&r->fs);
    if (r->kv_alloc)
        kv_cache_free(&r->kv, r->b);
    run_backend_close(&r->rb, &r->cfg);
    model_weights_free(&r->w);
    for (int64_t i = 0; i < r->n_seqs; i++) {
        if (r->seqs[i].sample == 0)
            free(r->seqs[i].prompt);
        free(r->seqs[i].logprobs);
        free(r->seqs[i].top_ids);
        free(r->seqs[i].top_logprobs);
#if RUN_HAVE_TOKENIZER
        if (r->seqs[i].streaming)
            stop_matcher_free(&r->seqs[i].sm);
#endif
        free(r->seqs[i].text);
    }
    free(r->seqs);
    if (r->rows)
        vb_input_rows_free(r->rows, r->n_my_rows);
    free(r->rows);
    free(r->my_rows);
    free(r->group_of_row);
    run_rows_free(&r->finished);
    if (r->journal)
        vb_journal_close(r->journal, &err);
    if (r->root && r->done.slot)
        vb_results_free(&r->done);
    if (r->settings)
        json_decref(r->settings);
    if (r->in_open)
        vb_input_close(&r->in);
#if RUN_HAVE_TOKENIZER
    chat_template_free(r->chat_tmpl);
    if (r->tok)
        tokenizer_free(r->tok);
#endif
}

int generate_run(const generate_options *o, const vb_dist *d)
{
    static run_state r;
    memset(&r, 0, sizeof r);
    r.o = o;
    r.d = d;
    r.leader = d->tp_rank == 0;
    r.root = d->world_rank == 0;
    r.t_start = wall_now();
    run_rows_init(&r.finished, -1);
    vb_err err = {{0}};
    int code = 0;
    /* First thing: a time limit's SIGTERM during start-up (loading a large
     * model takes minutes) must end in a clean stop (75), not a kill. */
    vb_signals_install();


    if (model_config_load(&r.cfg, o->model_dir, &err) ||
        tp_plan_make(&r.plan, &r.cfg, d->tp, d->tp_rank, &err))
        code = VB_EXIT_USAGE;
    if ((code = agree(&r, code, "model config", &err)))
        goto out;
    /* Every tensor's name, shape and dtype, from the headers alone: a
     * checkpoint that does not match config.json is a bad input (exit 2)
     * found before an output or journal exists, not a load failure. */
    if (model_check_weights(&r.cfg, o->model_dir, &err))
        code = VB_EXIT_USAGE;
    if ((code = agree(&r, code, "checkpoint", &err)))
        goto out;
    r.max_model_len = o->max_model_len > 0 ? o->max_model_len : r.cfg.max_position_embeddings;
    r.top_n = o->logprobs > 0 ? (int32_t)(o->logprobs < SAMPLER_MAX_LOGPROBS ? o->logprobs
                                                                            : SAMPLER_MAX_LOGPROBS)
                              : -1;
    r.finished.top_n = r.top_n;

    /* Before any rank opens an input, rank 0 reads them all once in a child
     * process: a file so corrupt that the HDF5 library crashes or loops on
     * it then ends the job here, exit 2 naming it (io/input_check.h), not
     * with a segfault on the ranks that read it later. */
    bool not_input = false;
    if (r.root && vb_input_check_isolated(o->inputs, o->n_inputs, false,
                                          o->tuning.input_check_timeout, &not_input, &err))
        code = VB_EXIT_USAGE;
    if ((code = agree(&r, code, "inputs", &err)))
        goto out;

    r.in_open = true; /* vb_input_close frees after a failed open too */
    /* Rank 0 writes the output and the report: neither may be an input
     * (--overwrite would remove it first). */
    if (vb_input_open(&r.in, o->inputs, o->n_inputs, &err) ||
        (r.root && vb_output_check_inputs(o->output, o->report, &r.in, &err)))
        code = VB_EXIT_USAGE;
    if ((code = agree(&r, code, "inputs", &err)))
        goto out;

    if ((code = phase_tokenizer(&r, &err)))
        goto out;

    code = phase_settings(&r, &err) ? 1 : 0;
    if (!code && r.root &&
        vb_output_prepare(o->output, r.settings, o->resume, o->overwrite, r.top_n, r.in.id_kind,
                          &r.done, &r.journal, &err))
        code = VB_EXIT_USAGE;
    if ((code = agree(&r, code, "output", &err)))
        goto out;
    /* At most this many seconds of finished rows are lost to a SIGKILL
     * (VB_JOURNAL_FLUSH_SECONDS: tests shorten it; 5 s by default). */
    if (r.journal && o->tuning.journal_flush_seconds > 0)
        vb_journal_set_flush_interval(r.journal, o->tuning.journal_flush_seconds);

    if ((code = phase_shard(&r, &err)))
        goto out;

    /* The CPU backend reads fp32 host weights; the CUDA backend streams
     * the checkpoint to the GPU itself when it opens (run_backend_open with
     * no host weights), so no host copy of the model is made for it. */
    if (!run_backend_wants_cuda(o) &&
        model_load_host(&r.w, &r.cfg, &r.plan, o->model_dir, VB_W_F32, &err))
        code = 1;
    if ((code = agree(&r, code, "loading weights", &err)))
        goto out;

    if ((code = phase_rows(&r, &err)))
        goto out;
    if ((code = phase_engine(&r, &err)))
        goto out;

    if (r.root)
        run_collector_init(&r.coll, MPI_COMM_WORLD, &r.done, r.journal, d->dp - 1);
    if (vb_watchdog_start(o->collective_timeout, RUN_FIRST_STEP_TIMEOUT_FACTOR)) {
        vb_err_set(&err, "cannot start the watchdog thread");
        die(&r, "starting the watchdog", 0, &err);
    }
    if (r.root && r.journal) /* if the job must end, finished rows first */
        vb_watchdog_set_rescue(rescue_journal, &r);
    double last_progress = 0;
    r.t_engine = wall_now();
    bool stopped = run_loop(&r);
    code = phase_finish(&r, stopped, &err);
    vb_watchdog_stop();
    progress(&r, &last_progress, true);
out:
    cleanup(&r);
    return code;
}

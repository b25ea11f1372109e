/* The state of one `generate` run on one rank, shared by the files that
 * make up the driver:
 *
 *   generate_run.c  the phase sequence (and the phases that need the world:
 *                   inputs, output policy, rows to groups, the end)
 *   run_setup.c     tokenizer, eos ids, the sampling in effect
 *   run_feed.c      this group's rows, a block at a time, into the scheduler
 *   run_engine.c    backend, forward state, KV cache, scheduler, sampler
 *   run_loop.c      the step loop: schedule -> batch -> forward -> sample
 *                   -> finish
 *   run_seq.c       per sequence: logprobs, --stop streaming, completion
 *                   text, finishing
 *   run_root.c      world rank 0's part: filing rows, progress, output,
 *                   report
 *
 * The state is grouped by what each piece is for; a flag beside a member
 * says it was initialised (the clean-up frees only those). */
#ifndef VB_RUN_STATE_H
#define VB_RUN_STATE_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/scheduler.h"
#include "forward/forward.h"
#include "io/input_reader.h"
#include "io/journal.h"
#include "io/results.h"
#include "model/model_config.h"
#include "model/model_weights.h"
#include "model/tp_plan.h"
#include "mpi/dist.h"
#include "run/bench_metrics.h"
#include "run/run_backend.h"
#include "run/run_collect.h"
#include "run/run_config.h"
#include "run/run_prompts.h"
#include "run/run_rows.h"
#include "run/run_sample.h"
#include "run/run_seq.h"
#include "util/errors.h"

/* The model and how this rank holds it. */
typedef struct run_model {
    model_config config;
    tp_plan plan;
    model_weights w;            /* host weights (CPU backend; freed once on the GPU) */
    long max_model_len;         /* --max-model-len, else config.json's */
    char path[PATH_MAX];        /* the directory's real path: what the settings name */
} run_model;

/* Text and tokens: prompts in, completions out, where sequences end. */
typedef struct run_text {
    tokenizer *tok;             /* NULL when tokenizer.json could not be loaded */
    char tok_error[VB_ERR_LEN]; /* why not */
    chat_template *chat_tmpl;   /* --chat or /messages: the template rows are rendered with */
    int32_t eos[VB_MAX_EOS + VB_TOKENIZER_MAX_EOS]; /* config.json's and the tokenizer's */
    int n_eos;
} run_text;

/* The inputs, and this group's share of them as sequences. The rows are
 * read, tokenized and queued a block at a time as the scheduler's waiting
 * line drains (run_feed.h), so a rank holds one block's rows, the waiting
 * prompts and the running sequences, not its group's whole share. */
typedef struct run_work {
    vb_input in;
    bool in_open;
    int32_t *group_of_row;      /* every row's dp group; -1: done before (--resume) */
    int64_t *my_rows, n_my_rows;
    int64_t next_row;           /* my_rows[next_row] is the next row to read */
    bool read_failed;           /* a later block of rows could not be read (read_err
                                 * says why): the group stops as on a signal, the
                                 * finished rows are written, and the run exits 2 */
    vb_err read_err;
    int64_t n_samples;          /* --n */
    vb_input_row *block;        /* the rows read and not yet queued */
    int64_t n_block;
    gen_seq **made;             /* their sequences, in order, not yet queued */
    int64_t n_made;
    gen_seq **seq_of_slot;      /* the sequence in each scheduler slot, or NULL */
    int n_slot_cap;
    int64_t n_seqs;             /* sequences made so far; the next one's scheduler id */
    int64_t n_seqs_bound;       /* the most the group makes: exact when every row was
                                 * read before the engine (all_read), else rows x --n */
    bool all_read;              /* the group's rows all came in the first block */
    int max_seq_tokens;         /* prompt + max_new over the sequences read before the
                                 * engine that generate */
    int seq_max_blocks;         /* KV blocks a sequence may hold (the step batch's
                                 * block table); a later row needing more is an error row */
    int invariant_positions;    /* --batch-invariant: a sequence's positions at most
                                 * (0: no limit) */
    int32_t top_n;              /* -1: no logprobs; N: chosen + N alternatives */
    sampling_params sampling;   /* in effect for rows without their own settings: the
                                 * command line over generation_config.json; the
                                 * output's root attributes record it */
    long max_new_tokens;        /* in effect for rows without their own /max_new_tokens
                                 * (--max-new-tokens or the default), recorded with it */
} run_work;

/* What a step runs on. */
typedef struct run_engine {
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
    int step_tokens;            /* tokens a step computes at most: --max-batched-tokens,
                                 * or the automatic budget (run_engine.c) */
    int max_batch;              /* sequences a step holds at most: --max-batch, or
                                 * the automatic cap (run_engine.c) */
} run_engine;

/* Finished rows on their way to disk. */
typedef struct run_output {
    json_t *settings;           /* what the completions depend on (io/run_settings.h) */
    run_rows finished;          /* leader: rows not yet sent / filed */
    vb_results done;            /* rank 0: every finished row */
    vb_journal *journal;        /* rank 0 */
    run_collector coll;         /* rank 0 */
    run_stop_notice notice;     /* rank 0's stop verdict to the other ranks */
} run_output;

/* Times and counts for progress and the report. */
typedef struct run_stats {
    double t_start;             /* Unix seconds */
    double t_engine;            /* when the step loop started (loading done) */
    int64_t tokens_sampled;     /* by this group, for the progress line */
    int64_t draws_truncated;    /* of those, drawn from a cut top-p / min-p set: the
                                 * sampler's candidates did not hold it all (sampler.h) */
    /* prompt tokens of this group's sequences, each counted once, at its
     * first token (for the progress line: the rows' prompt, as the
     * report's prompt_tokens; the scheduler's prefill count also holds
     * the recomputation of preempted sequences, less prefix-cache hits) */
    int64_t prompt_tokens_in;
    bench_metrics bm;           /* latency, step times, KV peak: the report's "metrics" */
} run_stats;

typedef struct run_state {
    const run_config *cfg;
    const vb_dist *d;
    bool leader, root;          /* tp_rank 0; world rank 0 */
    run_model model;
    run_text text;
    run_work work;
    run_engine eng;
    run_output out;
    run_stats stats;
} run_state;

/* Every rank: the worst exit code of the phase; the lowest failing rank
 * prints its message, so a failure common to all ranks prints once. */
int run_agree(const run_state *r, int code, const char *phase, const vb_err *err);

/* Inside the loop the groups run independently; a failure ends the job. */
void run_die(const run_state *r, const char *phase, long step, const vb_err *err)
    __attribute__((noreturn));

/* Unix time in seconds. */
double run_wall_now(void);

/* Frees whatever the run got as far as making. */
void run_state_free(run_state *r);

#endif

/* Building a group's engine and queueing its sequences (see run_engine.h). */
#include "run/run_engine.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu/cpu_pool.h"
#include "model/memory_plan.h"
#include "model/model_load.h"
#include "mpi/mpi_check.h"
#include "run/run_feed.h"
#include "run/run_warm_up.h"
#include "util/exit_codes.h"

#define RUN_BLOCK_SIZE 16
#define RUN_KV_MEMORY_FRACTION 0.25 /* of the node's memory, shared by its ranks */
/* The automatic --max-batch. On a GPU the batch grows with what the KV
 * cache holds (the scheduler admits while blocks are free) up to 512, the
 * largest CUDA-graph bucket (cuda_graphs.h): past ~peak / bandwidth rows
 * (~180 on an H200, ~140 on a V100) a decode step's projections are
 * compute-bound, so more rows no longer lower a token's cost, while each
 * row still costs its logits (vocab x 4 bytes) and sampling. The CPU
 * backend keeps 256: it is the oracle, not the fast path. */
#define RUN_AUTO_BATCH_GPU VB_PLAN_MAX_SEQS
#define RUN_AUTO_BATCH_CPU 256
/* The automatic --max-batched-tokens. On a GPU a step's projections run
 * closer to the GEMM peak at 8,192 rows than at 4,096, and there are half
 * the steps: the throughput workload c (7B shape, 2,000 prompts, one
 * H200) went from 69.0 % to 70.3 % of its hardware limit, prefill MFU
 * 63.4 -> 68.1 % (tests/bench/RESULTS.md, session 13); the cost is the
 * first token's latency (c's TTFT p50 114 -> 212 ms) and ~0.7 GB more
 * activations at the 7B shape, taken from the KV cache. The CPU backend
 * keeps 4,096. */
#define RUN_AUTO_STEP_TOKENS_GPU VB_AUTO_STEP_TOKENS_GPU /* inspect's plan holds it too */
#define RUN_AUTO_STEP_TOKENS_CPU 4096

/* The backend, then the activations, so the KV cache gets what remains.
 * Returns 0, or an exit code with err. */
static int open_backend(run_state *r, vb_err *err)
{
    const run_config *o = r->cfg;
    run_engine *e = &r->eng;
    run_model *m = &r->model;
    int code = run_backend_open(&e->rb, o, r->d, &m->config, &m->plan,
                                m->w.layers ? &m->w : NULL, err);
    e->b = e->rb.b;
    if (code)
        return code;
    e->b->kv_dtype = o->kv_cache_dtype; /* before the cache is sized and made */
    if (e->rb.cuda) /* on the GPU now; give the host memory back */
        model_weights_free(&m->w);
    return 0;
}

/* The step's token budget: --max-batched-tokens when given, else the
 * automatic one. */
static int step_tokens(const run_state *r)
{
    long t = r->cfg->max_batched_tokens;
    return t > 0 ? (int)t : r->eng.rb.cuda ? RUN_AUTO_STEP_TOKENS_GPU : RUN_AUTO_STEP_TOKENS_CPU;
}

/* The batch cap: --max-batch when given, else the automatic one, never
 * more than the sequences there are or the step's token budget (a decode
 * is one token of it). */
static int batch_cap(const run_state *r)
{
    const run_config *o = r->cfg;
    int64_t cap = o->max_batch > 0 ? o->max_batch
                  : r->eng.rb.cuda ? RUN_AUTO_BATCH_GPU
                                   : RUN_AUTO_BATCH_CPU;
    if (o->max_batch <= 0) {
        if (cap > r->work.n_seqs_bound)
            cap = r->work.n_seqs_bound;
        if (cap > r->eng.step_tokens)
            cap = r->eng.step_tokens;
    }
    return cap < 1 ? 1 : (int)cap;
}

static int init_forward(run_state *r, vb_err *err)
{
    run_engine *e = &r->eng;
    e->step_tokens = step_tokens(r);
    e->max_batch = batch_cap(r);
    if (forward_init(&e->fs, e->b, &r->model.config, &r->model.plan, e->rb.w, e->step_tokens,
                     err))
        return 1;
    e->fs_init = true;
    /* one row of logits per sequence of a step, before the KV cache takes
     * what is left; rounded up to 32 for the rows a CUDA-graph bucket pads
     * a decode step to (cuda_graphs.h) */
    if (forward_reserve_logits(&e->fs, (e->max_batch + 31) / 32 * 32)) {
        vb_err_set(err, "out of %s memory for %d rows of logits", e->b->name, e->max_batch);
        return 1;
    }
    return 0;
}

/* Blocks of the KV cache this rank could hold. On a GPU: what
 * --gpu-memory-utilization leaves, up to what every sequence at its
 * longest could use (more cache than that is never touched); a larger
 * cache than the batch needs keeps sequences from being preempted and
 * more of the prefix cache. On the CPU: max_batch sequences of the
 * longest length, within a share of the node's memory. VB_KV_BLOCKS caps
 * either. */
static int kv_blocks_wanted(const run_state *r, int per_seq, double *budget)
{
    const model_config *c = &r->model.config;
    const int64_t n = r->work.n_seqs_bound;
    int64_t seqs = r->eng.rb.cuda ? n : n < r->eng.max_batch ? n : r->eng.max_batch;
    if (seqs < 1)
        seqs = 1;
    int64_t want = seqs * per_seq;
    size_t block_bytes = kv_cache_block_bytes(r->eng.b, c->n_layers, RUN_BLOCK_SIZE,
                                              r->model.plan.kv_heads_local, c->head_dim);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    double cpu_budget = pages > 0 && page > 0 ? (double)pages * page * RUN_KV_MEMORY_FRACTION /
                                                    (r->d->local_size > 0 ? r->d->local_size : 1)
                                              : 4e9;
    *budget = run_backend_kv_budget(&r->eng.rb, r->cfg, cpu_budget);
    int64_t cap = block_bytes ? (int64_t)(*budget / (double)block_bytes) : want;
    if (r->cfg->tuning.kv_blocks > 0 && r->cfg->tuning.kv_blocks < cap)
        cap = r->cfg->tuning.kv_blocks; /* VB_KV_BLOCKS */
    int64_t nb = want < cap ? want : cap;
    if (nb > INT_MAX / 2)
        nb = INT_MAX / 2;
    return (int)nb;
}

/* The KV positions of the longest sequence read before the engine (the
 * group's longest when they were all read: all_read; scheduler.h's
 * sched_kv_positions: its last token is never fed back); 1 without any. */
static int longest_positions(const run_state *r)
{
    return r->work.max_seq_tokens > 1 ? r->work.max_seq_tokens - 1 : 1;
}

/* The KV positions a sequence is given room for: the longest one's when
 * every row of the group was read (all_read); else, with rows still to be
 * read, the most any row may have (max_new is clipped to --max-model-len
 * less the prompt: fewer than --max-model-len positions), as vLLM sizes
 * a sequence's room; the --batch-invariant limit may lower it. */
static int sized_positions(const run_state *r)
{
    long p = r->work.all_read ? longest_positions(r) : r->model.max_model_len - 1;
    if (p < longest_positions(r))
        p = longest_positions(r);
    return p > INT_MAX / 2 ? INT_MAX / 2 : (int)p;
}

/* The refusal of a KV cache that cannot hold the longest sequence, saying
 * what would fit. On a GPU the cache takes what --gpu-memory-utilization
 * leaves after the weights and activations; the CPU backend's is a fixed
 * share of the node's memory (RUN_KV_MEMORY_FRACTION, split between the
 * ranks there), which neither a smaller step nor more ranks on the same
 * node enlarge. Returns VB_EXIT_USAGE (other settings run). */
static int explain_kv_shortfall(const run_state *r, double budget, int agreed, vb_err *err)
{
    const run_config *o = r->cfg;
    const run_engine *e = &r->eng;
    const double gib = budget / (1024.0 * 1024 * 1024);
    const long tokens = (long)agreed * RUN_BLOCK_SIZE;
    const long limit = o->max_model_len > 0 ? o->max_model_len
                                            : (long)r->model.config.max_position_embeddings;
    const int ranks = r->d->local_size > 0 ? r->d->local_size : 1;
    if (e->rb.cuda)
        vb_err_set(err,
                   "not enough %s memory for the KV cache: %.2f GiB left after the weights "
                   "and activations hold %ld tokens, but the longest sequence needs %d "
                   "(prompt + --max-new-tokens but the last, never fed back; at most "
                   "--max-model-len %ld); use a larger --tp "
                   "(spreads the weights and the cache over more GPUs), a shorter "
                   "--max-model-len or --max-new-tokens, a smaller --max-batched-tokens, or a "
                   "higher --gpu-memory-utilization (now %.2f)",
                   e->b->name, gib, tokens, longest_positions(r), limit,
                   o->gpu_memory_utilization);
    else
        vb_err_set(err,
                   "not enough %s memory for the KV cache: this rank's %.2f GiB (the CPU "
                   "backend's cache may take %.0f %% of the node's memory, shared by the %d "
                   "rank%s there) hold %ld tokens, but the longest sequence needs %d (prompt + "
                   "--max-new-tokens but the last, never fed back; at most --max-model-len %ld); "
                   "use a shorter "
                   "--max-model-len or --max-new-tokens, or fewer ranks a node (a larger --tp "
                   "over more nodes spreads the cache)",
                   e->b->name, gib, 100 * RUN_KV_MEMORY_FRACTION, ranks, ranks == 1 ? "" : "s",
                   tokens, longest_positions(r), limit);
    return VB_EXIT_USAGE;
}

/* The KV cache: the same block count on every rank of the group, sized
 * for per_seq blocks a sequence (the longest row when every row of the
 * group was read, else --max-model-len's bound: sized_positions) and never
 * smaller than the longest sequence read so far (min_blocks). Sizing past
 * one block by the first block's longest made a cache too small for a
 * later, longer row (an input sorted by length), which then became an
 * error row. A later row the cache can never hold is an error row
 * (sched_add). Returns 0, 2 when the settings ask for more than fits (a
 * usage error: other settings run), or 1 when the allocation fails. */
static int alloc_kv_cache(run_state *r, int per_seq, int min_blocks, int *n_blocks, vb_err *err)
{
    const run_config *o = r->cfg;
    const model_config *c = &r->model.config;
    run_engine *e = &r->eng;
    double budget = 0;
    int num_blocks = kv_blocks_wanted(r, per_seq, &budget), agreed = num_blocks;
    MPI_CHECK(MPI_Allreduce(&num_blocks, &agreed, 1, MPI_INT, MPI_MIN, r->d->tp_comm));
    if (agreed < min_blocks && o->tuning.kv_blocks > 0 && agreed == o->tuning.kv_blocks) {
        vb_err_set(err, "VB_KV_BLOCKS=%d holds %ld tokens, but the longest sequence needs %d "
                   "(prompt + --max-new-tokens but the last, never fed back): at least %d blocks",
                   agreed, (long)agreed * RUN_BLOCK_SIZE, longest_positions(r), min_blocks);
        return VB_EXIT_USAGE;
    }
    if (agreed < min_blocks) /* every rank of the group sees the same count: all stop here */
        return explain_kv_shortfall(r, budget, agreed, err);
    if (kv_cache_alloc(&e->kv, e->b, c->n_layers, agreed, RUN_BLOCK_SIZE,
                       r->model.plan.kv_heads_local, c->head_dim, err))
        return 1;
    e->kv_alloc = true;
    *n_blocks = agreed;
    return 0;
}

static int init_step_batch(run_state *r, int per_seq, vb_err *err)
{
    if (step_batch_init(&r->eng.sb, r->eng.max_batch, r->eng.step_tokens, per_seq)) {
        vb_err_set(err, "out of memory for the step batch");
        return 1;
    }
    r->eng.sb_init = true;
    r->eng.sb.all_logits = false;
    return 0;
}

static int init_scheduler(run_state *r, int n_blocks, vb_err *err)
{
    const run_config *o = r->cfg;
    sched_options so = {.max_batch = r->eng.max_batch,
                        .max_batched_tokens = r->eng.step_tokens,
                        .prefix_cache = o->prefix_cache};
    if (sched_init(&r->eng.sched, &so, n_blocks, RUN_BLOCK_SIZE, err))
        return 1;
    r->eng.sched_init = true;
    return 0;
}

/* Host threads for the sampler's choices (run_sample.h): on a GPU the
 * rank's share of the node's cores, at most RUN_CHOOSE_THREADS_MAX (they
 * run between steps, while the GPU waits for the next step's tokens); the
 * CPU backend's pool has the cores during its forward, its steps are few
 * rows, and it keeps one. */
#define RUN_CHOOSE_THREADS_MAX 8

static int choose_threads(const run_state *r)
{
    if (!r->eng.rb.cuda)
        return 1;
    int t = cpu_pool_cores_per_rank(r->d->local_size);
    return t > RUN_CHOOSE_THREADS_MAX ? RUN_CHOOSE_THREADS_MAX : t;
}

static int init_sampler(run_state *r, vb_err *err)
{
    if (run_sampler_init(&r->eng.smp, r->d->tp_comm, r->d->tp, r->model.plan.vocab_start,
                         r->model.plan.vocab_local, r->cfg->tuning.host_sampler,
                         choose_threads(r), err))
        return 1;
    r->eng.smp_init = true;
    return 0;
}

/* --batch-invariant's decode attention takes sequences of a bounded
 * length on a GPU: the longest sequence read so far beyond it refuses the
 * run; rows read later are held to it one by one (run_feed.c). Returns 0
 * or VB_EXIT_USAGE with err. */
static int check_invariant_positions(run_state *r, int min_blocks, int *per_seq, vb_err *err)
{
    if (!r->cfg->batch_invariant)
        return 0;
    const int limit = run_backend_invariant_positions(&r->eng.rb);
    if ((long)min_blocks * RUN_BLOCK_SIZE > limit) {
        vb_err_set(err,
                   "--batch-invariant on this GPU takes sequences of at most %d positions "
                   "(its decode attention's fixed splits), but the longest row needs %d "
                   "(prompt + --max-new-tokens but the last); use a smaller --max-new-tokens "
                   "or run without --batch-invariant",
                   limit, longest_positions(r));
        return VB_EXIT_USAGE;
    }
    if (!r->work.all_read) {
        r->work.invariant_positions = limit;
        if (*per_seq > limit / RUN_BLOCK_SIZE)
            *per_seq = limit / RUN_BLOCK_SIZE;
    }
    return 0;
}

int run_phase_engine(run_state *r, vb_err *err)
{
    const int min_blocks = (longest_positions(r) + RUN_BLOCK_SIZE - 1) / RUN_BLOCK_SIZE;
    int per_seq = (sized_positions(r) + RUN_BLOCK_SIZE - 1) / RUN_BLOCK_SIZE, n_blocks = 0;
    const char *what = "backend";
    int code = open_backend(r, err);
    if (!code)
        code = check_invariant_positions(r, min_blocks, &per_seq, err);
    if (!code) {
        what = "forward pass";
        code = init_forward(r, err);
    }
    if (!code) {
        what = "KV cache";
        code = alloc_kv_cache(r, per_seq, min_blocks, &n_blocks, err);
        if (!code)
            code = init_step_batch(r, per_seq, err);
    }
    if (!code) {
        what = "scheduler";
        code = init_scheduler(r, n_blocks, err);
    }
    if (!code) {
        what = "sampler";
        code = init_sampler(r, err);
    }
    if (!code) {
        what = "warm-up steps";
        code = run_warm_up(r, err);
    }
    if (!code) {
        what = "queueing rows";
        r->work.seq_max_blocks = per_seq;
        code = run_feed_queue(r, err);
    }
    if (code) {
        char phase[64];
        snprintf(phase, sizeof phase, "setting up the %s", what);
        return run_agree(r, code, phase, err);
    }
    return run_agree(r, 0, "engine setup", err);
}

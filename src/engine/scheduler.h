/* The scheduler: which tokens of which sequences the next forward step
 * computes, over the paged KV cache of kv_blocks.h.
 *
 * Continuous batching: sequences join and leave the running set every step.
 * Each step has a token budget (--max-batched-tokens) and a cap on running
 * sequences (--max-batch). Running decodes are served first (one token
 * each), then running prompts that are part-way through their prefill,
 * then waiting sequences in arrival order; a prompt longer than the budget
 * left is cut into chunks over several steps (chunked prefill).
 *
 * Admission keeps 1% of the blocks free while other sequences run (room
 * for their decodes). When a decode needs a new block and none is free, the most recently
 * admitted running sequence is preempted: it gives back all its blocks and
 * goes to the front of the waiting queue; when readmitted it recomputes its
 * prompt and the tokens it generated so far (often partly from the prefix
 * cache, since its full blocks were published). Sampling keys on the number
 * of generated tokens, so a preempted row produces the same completion.
 *
 * Prefix sharing inside one step: a waiting sequence whose next uncached
 * block is being computed right now by a running sequence (the --n samples
 * of one row, or rows sharing a system prompt that arrive together) waits
 * for it instead of computing it again, and the rows behind it are
 * admitted meanwhile; it then hits the cache.
 *
 * Everything is a function of the calls made: the same sequence of
 * sched_add / sched_step / sched_step_done / sched_finish calls gives the
 * same plans, block ids included.
 *
 * The generate loop per step:
 *     const sched_step_plan *p = sched_step(s);
 *     forward(p)   -> logits for every p->seqs[i] with sample_index >= 0
 *     sample       -> sampled[sample_index]
 *     sched_step_done(s, sampled);
 *     for finished rows: read sched_seq_get(s, slot)->tokens, sched_finish(s, slot)
 * A sequence that reached n_prompt + max_new_tokens must be finished before
 * the next sched_step (it is never planned again). sched_finish between
 * sched_step and sched_step_done is not allowed. A plan is never empty
 * while sequences are left: the earliest running sequence can always
 * preempt the later ones and fits the cache alone (sched_add checks),
 * unless the host ran out of memory for an admission (out_of_memory).
 *
 * Memory follows the running sequences: a queued one holds its prompt; the
 * room for its completion and its block table are made when it is first
 * considered for admission and freed when it finishes. */
#ifndef VB_SCHEDULER_H
#define VB_SCHEDULER_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/kv_blocks.h"
#include "engine/slot_queue.h"
#include "util/errors.h"

typedef struct sched_options {
    int max_batch;          /* running sequences at most */
    int max_batched_tokens; /* tokens computed per step at most */
    bool prefix_cache;      /* reuse published blocks on admission */
} sched_options;

struct sched_prompt; /* scheduler.c */

enum sched_seq_state { SCHED_SEQ_FREE, SCHED_SEQ_WAITING, SCHED_SEQ_RUNNING };

typedef struct sched_seq {
    int64_t id;             /* the caller's (e.g. row * n + sample) */
    enum sched_seq_state state;
    int32_t *tokens;        /* prompt then generated tokens (NULL while shared) */
    struct sched_prompt *shared; /* a waiting sample's prompt, shared with the row's
                                  * other samples until admission (sched_add_sample) */
    int n_prompt, n_tokens, capacity; /* capacity = n_prompt + max_new_tokens; the KV
                                       * cache holds capacity - 1 positions of it */
    int n_computed;         /* leading tokens whose KV is in the cache */
    int32_t *block_table;   /* blocks holding tokens [0, n_blocks * block_size) */
    int n_blocks, max_blocks;
    uint64_t *block_hash;   /* chain hashes of the first n_hashed full blocks */
    int n_hashed;
    int n_published;        /* leading blocks already offered to the prefix cache */
    int n_preemptions;
    int n_cached_tokens;    /* prefix-cache hit at the last admission */
    long planned_in_step;   /* bookkeeping: the step that last planned it */
} sched_seq;

/* One sequence's part of a step. The forward pass computes tokens at
 * positions [start, start + n_tokens), writes their K/V into the slots
 * the block table gives, and attends over positions [0, context_len). */
typedef struct sched_step_seq {
    int slot;               /* sched_seq_get(s, slot) */
    int64_t id;
    int start, n_tokens, context_len;
    const int32_t *tokens;  /* n_tokens ids: the sequence's tokens[start..] */
    int token_offset;       /* where they sit in the plan's flat arrays */
    const int32_t *block_table;
    int n_blocks;
    int n_generated;        /* generated tokens so far: the sampler's step */
    int sample_index;       /* >= 0: the last token's logits are sampled into
                             * sampled[sample_index]; -1: mid-prefill chunk */
    bool is_decode;         /* one token, the rest already cached */
} sched_step_seq;

typedef struct sched_step_plan {
    int n_seqs;             /* decodes first, then prefill chunks */
    sched_step_seq *seqs;
    int n_decode;           /* seqs[0..n_decode) are decodes */
    int n_samples;          /* seqs with sample_index >= 0 (numbered 0..n_samples-1 in order) */
    int n_tokens;           /* sum of seqs[i].n_tokens, <= max_batched_tokens */
    /* The same tokens flattened, for backends that batch all of them: */
    int32_t *token_ids;     /* [n_tokens] */
    int32_t *positions;     /* [n_tokens] position in its sequence */
    int64_t *slots;         /* [n_tokens] KV slot: block * block_size + position % block_size */
    int32_t *token_seq;     /* [n_tokens] index into seqs */
    int n_preempted;        /* sequences preempted while planning this step */
    int n_admitted;         /* waiting sequences admitted this step */
} sched_step_plan;

typedef struct sched_stats {
    long steps;
    long tokens_computed;       /* all positions computed (prefill + decode) */
    long prefill_tokens, decode_tokens;
    long prefix_query_tokens;   /* tokens looked up in the prefix cache at admission
                                 * (re-admissions after preemption count too) */
    long prefix_hit_tokens;     /* ... of which found cached */
    long preemptions;
    long max_blocks_used;
} sched_stats;

typedef struct scheduler {
    sched_options opt;
    kv_blocks kv;
    sched_seq *seqs;        /* slots; a free slot is reused by sched_add */
    int n_slots, cap_slots;
    int *free_slots, n_free_slots, cap_free_slots; /* finished slots, reused last-freed first */
    slot_queue waiting;     /* slots waiting for admission, front first */
    int *running, n_running;              /* slots, admission order */
    int *admit_hits;        /* scratch: prefix-cache blocks found on admission */
    int cap_admit_hits;
    sched_step_plan plan;
    bool plan_pending;      /* sched_step given, sched_step_done not yet */
    bool out_of_memory;     /* an admission found no host memory: the plan may be
                             * empty with sequences left, and the run cannot go on */
    sched_stats stats;
} scheduler;

int sched_init(scheduler *s, const sched_options *opt, int n_blocks, int block_size, vb_err *err);
void sched_free(scheduler *s);

/* The KV positions a sequence of n_prompt + max_new_tokens (>= 1) tokens
 * computes: every token but the last, which is sampled and never fed
 * back. What the cache must hold for it. */
static inline long sched_kv_positions(long n_prompt, long max_new_tokens)
{ return n_prompt + max_new_tokens - 1; }

/* Queues a sequence (its prompt is copied). Returns its slot, or -1 (err
 * filled) when it could never run: prompt empty, or its sched_kv_positions
 * need more blocks than the whole cache (the caller marks that row as an
 * error and goes on); SCHED_ADD_OUT_OF_MEMORY (err filled) when the host
 * has no memory for it, a failure of the run, not of the row. */
#define SCHED_ADD_OUT_OF_MEMORY (-2)
int sched_add(scheduler *s, int64_t id, const int32_t *prompt, int n_prompt,
              int max_new_tokens, vb_err *err);

/* Queues another sample of the sequence in like_slot (--n): the same
 * prompt, shared rather than copied while both wait (K samples held K
 * copies of every queued prompt); returns as sched_add. */
int sched_add_sample(scheduler *s, int64_t id, int like_slot, int max_new_tokens, vb_err *err);

/* Plans the next step. The plan, and the pointers in it, stay valid until
 * the next sched_* call that changes state. n_seqs == 0 means nothing is
 * left to run (sched_idle). */
const sched_step_plan *sched_step(scheduler *s);

/* Marks the planned tokens computed, publishes newly full blocks to the
 * prefix cache, and appends sampled[p->seqs[i].sample_index] to each
 * sampling sequence (dropped when the sequence is at capacity; the caller
 * must then finish it). sampled may be NULL when n_samples is 0. */
void sched_step_done(scheduler *s, const int32_t *sampled);

/* Ends a sequence (stop token, length, error): its blocks go back (full
 * computed ones stay cached), its slot is freed. Read its tokens first. */
void sched_finish(scheduler *s, int slot);

/* Valid until the next sched_add (the slot array may move). */
const sched_seq *sched_seq_get(const scheduler *s, int slot);
bool sched_idle(const scheduler *s);

/* A step's and the run's figures, for progress lines and the report. */
typedef struct sched_report {
    long steps;                 /* steps done */
    int step_seqs, step_tokens; /* the last planned step */
    int step_prefill_tokens, step_decode_tokens, step_preempted, step_admitted;
    int running, waiting;
    int kv_blocks_used, kv_blocks_total;
    double kv_use;              /* used / total */
    double prefix_hit_rate;     /* run so far: hit / queried tokens at admission */
    sched_stats totals;
} sched_report;

void sched_report_get(const scheduler *s, sched_report *r);

/* For progress lines and the report. */
static inline int sched_blocks_used(const scheduler *s) { return kv_blocks_n_used(&s->kv); }
static inline double sched_kv_use(const scheduler *s)
{ return (double)kv_blocks_n_used(&s->kv) / s->kv.n_blocks; }
static inline double sched_prefix_hit_rate(const scheduler *s)
{ return s->stats.prefix_query_tokens ? (double)s->stats.prefix_hit_tokens / s->stats.prefix_query_tokens : 0.0; }

#endif

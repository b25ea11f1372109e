/* The scheduler (see scheduler.h for the policy). */
#include "engine/scheduler.h"

#include <stdlib.h>
#include <string.h>

static int blocks_for(int n_tokens, int block_size) { return (n_tokens + block_size - 1) / block_size; }

int sched_init(scheduler *s, const sched_options *opt, int n_blocks, int block_size, vb_err *err)
{
    memset(s, 0, sizeof *s);
    if (opt->max_batch < 1 || opt->max_batched_tokens < 1)
        return vb_err_set(err, "scheduler: --max-batch (%d) and --max-batched-tokens (%d) must be at least 1",
                          opt->max_batch, opt->max_batched_tokens);
    s->opt = *opt;
    if (kv_blocks_init(&s->kv, n_blocks, block_size, err) < 0) return -1;
    size_t nb = (size_t)opt->max_batch, nt = (size_t)opt->max_batched_tokens;
    s->running = malloc(nb * sizeof *s->running);
    s->plan.seqs = malloc(nb * sizeof *s->plan.seqs);
    s->plan.token_ids = malloc(nt * sizeof *s->plan.token_ids);
    s->plan.positions = malloc(nt * sizeof *s->plan.positions);
    s->plan.slots = malloc(nt * sizeof *s->plan.slots);
    s->plan.token_seq = malloc(nt * sizeof *s->plan.token_seq);
    if (!s->running || !s->plan.seqs || !s->plan.token_ids || !s->plan.positions ||
        !s->plan.slots || !s->plan.token_seq) {
        sched_free(s);
        return vb_err_set(err, "scheduler: out of host memory");
    }
    return 0;
}

static void prompt_release(struct sched_prompt *sp);

static void seq_free_arrays(sched_seq *q)
{
    prompt_release(q->shared);
    q->shared = NULL;
    free(q->tokens);
    free(q->block_table);
    free(q->block_hash);
    q->tokens = NULL;
    q->block_table = NULL;
    q->block_hash = NULL;
}

void sched_free(scheduler *s)
{
    for (int i = 0; i < s->n_slots; i++) seq_free_arrays(&s->seqs[i]);
    free(s->seqs);
    free(s->free_slots);
    slot_queue_free(&s->waiting);
    free(s->running);
    free(s->admit_hits);
    free(s->plan.seqs);
    free(s->plan.token_ids);
    free(s->plan.positions);
    free(s->plan.slots);
    free(s->plan.token_seq);
    kv_blocks_free(&s->kv);
    memset(s, 0, sizeof *s);
}

static int grow(void **p, int *cap, int need, size_t elem)
{
    if (need <= *cap) return 0;
    int c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *q = realloc(*p, (size_t)c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

/* A prompt that waiting samples of one row share until each is admitted
 * (sched_add_sample): --n K queued K copies of every prompt. */
struct sched_prompt {
    int refs;
    int32_t *ids;
};

static void prompt_release(struct sched_prompt *sp)
{
    if (sp && --sp->refs == 0) {
        free(sp->ids);
        free(sp);
    }
}

/* A waiting slot for a sequence of n_prompt + max_new_tokens tokens, its
 * prompt not yet set; -1 or SCHED_ADD_OUT_OF_MEMORY with err. */
static int seq_new(scheduler *s, int64_t id, int n_prompt, int max_new_tokens, vb_err *err)
{
    int bs = s->kv.block_size;
    if (n_prompt < 1) return vb_err_set(err, "sequence %lld: empty prompt", (long long)id);
    if (max_new_tokens < 1)
        return vb_err_set(err, "sequence %lld: max_new_tokens %d must be at least 1", (long long)id, max_new_tokens);
    long capacity = (long)n_prompt + max_new_tokens;
    /* Its last token is sampled, never computed: the cache holds the others. */
    long positions = sched_kv_positions(n_prompt, max_new_tokens);
    if (positions > (long)s->kv.n_blocks * bs)
        return vb_err_set(err, "sequence %lld: %d prompt + %d new tokens need %ld KV blocks, the cache has %d "
                          "(lower --max-new-tokens or --max-model-len, or give the KV cache more memory)",
                          (long long)id, n_prompt, max_new_tokens, (positions + bs - 1) / bs, s->kv.n_blocks);
    /* Room first, so a failure leaves nothing half done. */
    if (grow((void **)&s->seqs, &s->cap_slots, s->n_slots + 1, sizeof *s->seqs) < 0 ||
        grow((void **)&s->free_slots, &s->cap_free_slots, s->n_slots + 1, sizeof *s->free_slots) < 0 ||
        slot_queue_reserve(&s->waiting, s->n_slots + 1) < 0) {
        vb_err_set(err, "scheduler: out of host memory");
        return SCHED_ADD_OUT_OF_MEMORY;
    }
    int slot = s->n_free_slots > 0 ? s->free_slots[s->n_free_slots - 1] : s->n_slots;
    sched_seq *q = &s->seqs[slot];
    memset(q, 0, sizeof *q);
    q->id = id;
    q->capacity = (int)capacity;
    q->max_blocks = blocks_for((int)positions, bs);
    q->n_prompt = q->n_tokens = n_prompt;
    q->planned_in_step = -1;
    return slot;
}

/* Puts seq_new's slot in the waiting line. */
static int seq_queue(scheduler *s, int slot)
{
    if (slot == s->n_slots) s->n_slots++;
    else s->n_free_slots--;
    s->seqs[slot].state = SCHED_SEQ_WAITING;
    slot_queue_push_back(&s->waiting, slot);
    return slot;
}

int sched_add(scheduler *s, int64_t id, const int32_t *prompt, int n_prompt,
              int max_new_tokens, vb_err *err)
{
    int slot = seq_new(s, id, n_prompt, max_new_tokens, err);
    if (slot < 0) return slot;
    sched_seq *q = &s->seqs[slot];
    /* The prompt alone: a job queues thousands of rows ahead, and room for
     * the completion and the block table waits for admission
     * (seq_make_room), so memory follows the rows in the batch. */
    q->tokens = malloc((size_t)n_prompt * sizeof *q->tokens);
    if (!q->tokens) {
        vb_err_set(err, "scheduler: out of host memory for sequence %lld", (long long)id);
        return SCHED_ADD_OUT_OF_MEMORY;
    }
    memcpy(q->tokens, prompt, (size_t)n_prompt * sizeof *prompt);
    return seq_queue(s, slot);
}

/* like's prompt as a shared one (its own copy moved there while it waits;
 * copied from its tokens once it was admitted), or NULL when out of memory. */
static struct sched_prompt *share_prompt(sched_seq *like)
{
    if (like->shared) {
        like->shared->refs++;
        return like->shared;
    }
    struct sched_prompt *sp = malloc(sizeof *sp);
    if (!sp) return NULL;
    sp->refs = 1;
    if (like->state == SCHED_SEQ_WAITING && !like->block_table) {
        sp->ids = like->tokens;
        like->tokens = NULL;
        like->shared = sp;
        sp->refs++;
        return sp;
    }
    sp->ids = malloc((size_t)like->n_prompt * sizeof *sp->ids);
    if (!sp->ids) {
        free(sp);
        return NULL;
    }
    memcpy(sp->ids, like->tokens, (size_t)like->n_prompt * sizeof *sp->ids);
    return sp;
}

int sched_add_sample(scheduler *s, int64_t id, int like_slot, int max_new_tokens, vb_err *err)
{
    int slot = seq_new(s, id, s->seqs[like_slot].n_prompt, max_new_tokens, err);
    if (slot < 0) return slot;
    /* after seq_new: the slot array may have moved */
    if (!(s->seqs[slot].shared = share_prompt(&s->seqs[like_slot]))) {
        vb_err_set(err, "scheduler: out of host memory for sequence %lld", (long long)id);
        return SCHED_ADD_OUT_OF_MEMORY;
    }
    return seq_queue(s, slot);
}

const sched_seq *sched_seq_get(const scheduler *s, int slot) { return &s->seqs[slot]; }

bool sched_idle(const scheduler *s) { return s->waiting.n == 0 && s->n_running == 0; }

/* The completion's tokens and the block table, made when the sequence is
 * first considered for admission (a preempted one keeps them). */
static int seq_make_room(sched_seq *q)
{
    if (q->block_table)
        return 0;
    int32_t *t = realloc(q->tokens, (size_t)q->capacity * sizeof *t);
    if (!t)
        return -1;
    q->tokens = t;
    if (q->shared) {
        memcpy(q->tokens, q->shared->ids, (size_t)q->n_prompt * sizeof *q->tokens);
        prompt_release(q->shared);
        q->shared = NULL;
    }
    q->block_table = malloc((size_t)q->max_blocks * sizeof *q->block_table);
    q->block_hash = malloc((size_t)q->max_blocks * sizeof *q->block_hash);
    if (!q->block_table || !q->block_hash) {
        free(q->block_table);
        free(q->block_hash);
        q->block_table = NULL;
        q->block_hash = NULL;
        return -1;
    }
    return 0;
}

/* Chain hashes of the first n_full blocks (all full of known tokens). */
static void seq_hash_blocks(scheduler *s, sched_seq *q, int n_full)
{
    int bs = s->kv.block_size;
    for (int j = q->n_hashed; j < n_full; j++)
        q->block_hash[j] = kv_blocks_chain_hash(j ? q->block_hash[j - 1] : 0, q->tokens + (size_t)j * bs, bs);
    if (n_full > q->n_hashed) q->n_hashed = n_full;
}

/* Last blocks first: published ones then sit nearer the LRU head than the
 * prefix blocks before them, so a chain is evicted from its end and its
 * shared start survives longest. */
static void seq_release_blocks(scheduler *s, sched_seq *q)
{
    for (int j = q->n_blocks - 1; j >= 0; j--) kv_blocks_release(&s->kv, q->block_table[j]);
    q->n_blocks = 0;
    q->n_published = 0;
    q->n_computed = 0;
}

static int running_index(const scheduler *s, int slot)
{
    for (int i = 0; i < s->n_running; i++)
        if (s->running[i] == slot) return i;
    return -1;
}

static void running_remove(scheduler *s, int slot)
{
    int i = running_index(s, slot);
    memmove(s->running + i, s->running + i + 1, (size_t)(s->n_running - i - 1) * sizeof *s->running);
    s->n_running--;
}

static void preempt(scheduler *s, int slot)
{
    sched_seq *q = &s->seqs[slot];
    seq_release_blocks(s, q);
    running_remove(s, slot);
    slot_queue_push_front(&s->waiting, slot); /* room: reserved for every slot */
    q->state = SCHED_SEQ_WAITING;
    q->n_preemptions++;
    s->plan.n_preempted++;
    s->stats.preemptions++;
}

/* The most recently admitted running sequence admitted after `slot` and
 * not already in this step's plan, or -1. */
static int pick_victim(const scheduler *s, int slot)
{
    int self = running_index(s, slot);
    for (int i = s->n_running - 1; i > self; i--)
        if (s->seqs[s->running[i]].planned_in_step != s->stats.steps) return s->running[i];
    return -1;
}

static bool alloc_blocks(scheduler *s, sched_seq *q, int end)
{
    int need = blocks_for(end, s->kv.block_size) - q->n_blocks;
    if (need > kv_blocks_n_free(&s->kv)) return false;
    for (int i = 0; i < need; i++) q->block_table[q->n_blocks++] = kv_blocks_alloc(&s->kv);
    return true;
}

static void plan_add(scheduler *s, int slot, int n_tokens, int *budget)
{
    sched_seq *q = &s->seqs[slot];
    sched_step_plan *p = &s->plan;
    sched_step_seq *st = &p->seqs[p->n_seqs++];
    st->slot = slot;
    st->id = q->id;
    st->start = q->n_computed;
    st->n_tokens = n_tokens;
    st->context_len = q->n_computed + n_tokens;
    st->tokens = q->tokens + q->n_computed;
    st->block_table = q->block_table;
    st->n_blocks = q->n_blocks;
    st->n_generated = q->n_tokens - q->n_prompt;
    st->is_decode = n_tokens == 1 && q->n_computed == q->n_tokens - 1 && q->n_computed > 0;
    st->sample_index = st->context_len == q->n_tokens ? p->n_samples++ : -1;
    q->planned_in_step = s->stats.steps;
    *budget -= n_tokens;
}

/* Running decodes, in admission order, one token each. */
static void plan_decodes(scheduler *s, const int *order, int n_order, int *budget)
{
    for (int i = 0; i < n_order && *budget > 0; i++) {
        int slot = order[i];
        sched_seq *q = &s->seqs[slot];
        if (q->state != SCHED_SEQ_RUNNING || q->n_tokens - q->n_computed != 1) continue;
        if (q->n_tokens >= q->capacity && q->n_tokens > q->n_prompt) continue; /* caller must finish it */
        bool self_preempted = false;
        while (!alloc_blocks(s, q, q->n_tokens)) {
            int victim = pick_victim(s, slot);
            if (victim < 0) {
                preempt(s, slot);
                self_preempted = true;
                break;
            }
            preempt(s, victim);
        }
        if (!self_preempted) plan_add(s, slot, 1, budget);
    }
}

/* Running prompts part-way through prefill: as large a chunk as the budget
 * allows, preempting later sequences for blocks, else a smaller chunk. */
static void plan_prefill_chunks(scheduler *s, const int *order, int n_order, int *budget)
{
    int bs = s->kv.block_size;
    for (int i = 0; i < n_order && *budget > 0; i++) {
        int slot = order[i];
        sched_seq *q = &s->seqs[slot];
        if (q->state != SCHED_SEQ_RUNNING || q->planned_in_step == s->stats.steps) continue;
        int remaining = q->n_tokens - q->n_computed;
        if (remaining <= 1) continue;
        int chunk = remaining < *budget ? remaining : *budget;
        while (!alloc_blocks(s, q, q->n_computed + chunk)) {
            int victim = pick_victim(s, slot);
            if (victim >= 0) {
                preempt(s, victim);
                continue;
            }
            int fits = (q->n_blocks + kv_blocks_n_free(&s->kv)) * bs - q->n_computed;
            if (fits < chunk) chunk = fits;
            if (chunk <= 0) break;
        }
        if (chunk > 0) plan_add(s, slot, chunk, budget);
    }
}

/* True when block j of q (not cached) is being computed by a running
 * sequence with the same chain: q should wait a step and hit it. */
static bool block_in_flight(const scheduler *s, const sched_seq *q, int j)
{
    int bs = s->kv.block_size;
    for (int i = 0; i < s->n_running; i++) {
        const sched_seq *r = &s->seqs[s->running[i]];
        if (r->n_hashed > j && r->block_hash[j] == q->block_hash[j] && r->n_computed < (j + 1) * bs)
            return true;
    }
    return false;
}

/* Waiting sequences in order, reusing cached prefix blocks. Stops at the
 * first that does not fit, so blocks go to rows in arrival order; skips
 * (and keeps in place) those waiting for a block in flight. */
static void plan_admissions(scheduler *s, int *budget)
{
    int bs = s->kv.block_size;
    int i = 0;
    while (i < s->waiting.n && *budget > 0 && s->n_running < s->opt.max_batch) {
        int slot = slot_queue_at(&s->waiting, i);
        sched_seq *q = &s->seqs[slot];
        if (seq_make_room(q) < 0) {
            s->out_of_memory = true; /* admit nothing; the caller ends the run */
            break;
        }
        /* At least the last token is computed: its logits give the next one. */
        int max_hit = s->opt.prefix_cache ? (q->n_tokens - 1) / bs : 0;
        if (grow((void **)&s->admit_hits, &s->cap_admit_hits, max_hit + 1, sizeof *s->admit_hits) < 0) {
            s->out_of_memory = true; /* admit nothing; the caller ends the run */
            break;
        }
        seq_hash_blocks(s, q, max_hit);
        int n_hit = 0, n_hit_free = 0;
        for (; n_hit < max_hit; n_hit++) {
            int b = kv_blocks_find(&s->kv, q->block_hash[n_hit], n_hit ? q->block_hash[n_hit - 1] : 0,
                                   q->tokens + (size_t)n_hit * bs);
            if (b == KV_NO_BLOCK) break;
            s->admit_hits[n_hit] = b;
            n_hit_free += s->kv.ref_count[b] == 0;
        }
        if (n_hit < max_hit && block_in_flight(s, q, n_hit)) {
            /* Looking past max_batch waiting rows cannot fill the batch
             * anyway; the cap keeps a line of thousands that share one
             * system prompt from being scanned every step. */
            if (++i >= s->opt.max_batch) break;
            continue;
        }
        int cached = n_hit * bs;
        int remaining = q->n_tokens - cached;
        int chunk = remaining < *budget ? remaining : *budget;
        /* After taking the hits off the free list, and keeping a 1% watermark
         * while others run: their decodes will need new blocks soon, and
         * filling the cache with a new prompt would only get it preempted
         * and its prefill thrown away. */
        int watermark = s->n_running > 0 ? (s->kv.n_blocks + 99) / 100 : 0;
        int avail = kv_blocks_n_free(&s->kv) - n_hit_free - watermark;
        if (blocks_for(cached + chunk, bs) - n_hit > avail) chunk = (n_hit + avail) * bs - cached;
        if (chunk <= 0) break;

        for (int j = 0; j < n_hit; j++) {
            kv_blocks_acquire(&s->kv, s->admit_hits[j]);
            q->block_table[j] = s->admit_hits[j];
        }
        q->n_blocks = n_hit;
        q->n_published = n_hit;
        q->n_computed = cached;
        q->n_cached_tokens = cached;
        alloc_blocks(s, q, cached + chunk); /* fits: checked above */
        s->stats.prefix_query_tokens += q->n_tokens;
        s->stats.prefix_hit_tokens += cached;

        slot_queue_remove_at(&s->waiting, i);
        q->state = SCHED_SEQ_RUNNING;
        s->running[s->n_running++] = slot;
        s->plan.n_admitted++;
        plan_add(s, slot, chunk, budget);
    }
}

/* Decodes first, then prefill chunks, each group in admission order, so
 * the forward pass sees the one-token rows together. */
static void plan_sort_decodes_first(sched_step_plan *p)
{
    int n_dec = 0;
    for (int i = 0; i < p->n_seqs; i++) {
        if (!p->seqs[i].is_decode) continue;
        sched_step_seq d = p->seqs[i];
        memmove(p->seqs + n_dec + 1, p->seqs + n_dec, (size_t)(i - n_dec) * sizeof *p->seqs);
        p->seqs[n_dec++] = d;
    }
    p->n_decode = n_dec;
    p->n_samples = 0;
    for (int i = 0; i < p->n_seqs; i++)
        if (p->seqs[i].sample_index >= 0) p->seqs[i].sample_index = p->n_samples++;
}

static void plan_flatten(scheduler *s)
{
    sched_step_plan *p = &s->plan;
    int bs = s->kv.block_size, t = 0;
    for (int i = 0; i < p->n_seqs; i++) {
        sched_step_seq *st = &p->seqs[i];
        st->token_offset = t;
        for (int k = 0; k < st->n_tokens; k++, t++) {
            int pos = st->start + k;
            p->token_ids[t] = st->tokens[k];
            p->positions[t] = pos;
            p->slots[t] = (int64_t)st->block_table[pos / bs] * bs + pos % bs;
            p->token_seq[t] = i;
        }
    }
    p->n_tokens = t;
}

const sched_step_plan *sched_step(scheduler *s)
{
    sched_step_plan *p = &s->plan;
    p->n_seqs = p->n_decode = p->n_samples = p->n_tokens = 0;
    p->n_preempted = p->n_admitted = 0;
    int budget = s->opt.max_batched_tokens;

    /* A snapshot of the running order: preemption edits s->running. */
    int order[s->n_running > 0 ? s->n_running : 1];
    int n_order = s->n_running;
    memcpy(order, s->running, (size_t)n_order * sizeof *order);
    plan_decodes(s, order, n_order, &budget);
    plan_prefill_chunks(s, order, n_order, &budget);
    plan_admissions(s, &budget);
    plan_sort_decodes_first(p);
    plan_flatten(s);
    s->plan_pending = p->n_seqs > 0;
    return p;
}

void sched_step_done(scheduler *s, const int32_t *sampled)
{
    sched_step_plan *p = &s->plan;
    if (!s->plan_pending) return;
    int bs = s->kv.block_size;
    for (int i = 0; i < p->n_seqs; i++) {
        sched_step_seq *st = &p->seqs[i];
        sched_seq *q = &s->seqs[st->slot];
        q->n_computed += st->n_tokens;
        if (st->is_decode) s->stats.decode_tokens += st->n_tokens;
        else s->stats.prefill_tokens += st->n_tokens;
        if (s->opt.prefix_cache) {
            int n_full = q->n_computed / bs;
            seq_hash_blocks(s, q, n_full);
            for (int j = q->n_published; j < n_full; j++)
                kv_blocks_publish(&s->kv, q->block_table[j], q->block_hash[j],
                                  j ? q->block_hash[j - 1] : 0, q->tokens + (size_t)j * bs);
            if (n_full > q->n_published) q->n_published = n_full;
        }
        if (st->sample_index >= 0 && q->n_tokens < q->capacity)
            q->tokens[q->n_tokens++] = sampled[st->sample_index];
    }
    s->stats.tokens_computed += p->n_tokens;
    if (kv_blocks_n_used(&s->kv) > s->stats.max_blocks_used) s->stats.max_blocks_used = kv_blocks_n_used(&s->kv);
    s->stats.steps++;
    s->plan_pending = false;
}

void sched_finish(scheduler *s, int slot)
{
    sched_seq *q = &s->seqs[slot];
    if (q->state == SCHED_SEQ_RUNNING) {
        seq_release_blocks(s, q);
        running_remove(s, slot);
    } else if (q->state == SCHED_SEQ_WAITING) {
        for (int i = 0; i < s->waiting.n; i++)
            if (slot_queue_at(&s->waiting, i) == slot) {
                slot_queue_remove_at(&s->waiting, i);
                break;
            }
    }
    seq_free_arrays(q);
    q->state = SCHED_SEQ_FREE;
    s->free_slots[s->n_free_slots++] = slot; /* room: grown with the slots */
}

void sched_report_get(const scheduler *s, sched_report *r)
{
    const sched_step_plan *p = &s->plan;
    memset(r, 0, sizeof *r);
    r->steps = s->stats.steps;
    r->step_seqs = p->n_seqs;
    r->step_tokens = p->n_tokens;
    for (int i = 0; i < p->n_seqs; i++) {
        if (p->seqs[i].is_decode) r->step_decode_tokens += p->seqs[i].n_tokens;
        else r->step_prefill_tokens += p->seqs[i].n_tokens;
    }
    r->step_preempted = p->n_preempted;
    r->step_admitted = p->n_admitted;
    r->running = s->n_running;
    r->waiting = s->waiting.n;
    r->kv_blocks_used = kv_blocks_n_used(&s->kv);
    r->kv_blocks_total = s->kv.n_blocks;
    r->kv_use = sched_kv_use(s);
    r->prefix_hit_rate = sched_prefix_hit_rate(s);
    r->totals = s->stats;
}

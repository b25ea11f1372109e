/* The group's rows into the scheduler a block at a time (see run_feed.h). */
#include "run/run_feed.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "mpi/watchdog.h"

/* Rows read (and tokenized) in one go: large enough for HDF5 to read
 * efficiently, small enough that a block's rows as read are a small part
 * of a rank's memory. */
#define RUN_FEED_BLOCK 8192

/* A row's prompt as read (text, ids, system prompt), once its ids are
 * made: what the run needs later is the row's index and id, and a job's
 * prompts held to its end were the bulk of each rank's memory. */
static void drop_row_text(vb_input_row *row)
{
    free(row->text);
    free(row->ids);
    free(row->system);
    row->text = row->system = NULL;
    row->ids = NULL;
    row->text_len = 0;
}

/* Sample s of row (prompt ids shared by the row's samples, max_new
 * tokens), with the next scheduler id; NULL when out of memory. */
static gen_seq *new_seq(run_state *r, const vb_input_row *row, int32_t s, int32_t *ids,
                        int n_ids, long max_new)
{
    run_work *wk = &r->work;
    gen_seq *g = calloc(1, sizeof *g);
    if (!g || (row->id && !(g->row_id = strdup(row->id)))) {
        free(g);
        return NULL;
    }
    g->id = wk->n_seqs++;
    g->row_index = row->index;
    g->row_id_int = row->id_int;
    g->sample = s;
    g->prompt = ids; /* shared by the samples until they are queued */
    g->n_prompt = n_ids;
    g->max_new = (int)max_new;
    g->params = wk->sampling;
    if (row->seed_u64 || row->seed >= 0) /* an unsigned 64-bit /seed: all values */
        g->params.seed = (uint64_t)row->seed;
    /* its stream is made at its first token (run_seq.c) */
    g->streaming = r->cfg->n_stops > 0 && r->text.tok;
    /* the KV cache is sized for the longest sequence read before the
     * engine; a row with nothing to generate is done at once and never
     * enters it */
    if (max_new > 0 && n_ids + max_new > wk->max_seq_tokens)
        wk->max_seq_tokens = (int)(n_ids + max_new);
    return g;
}

/* The n_samples sequences of a row, appended to the block's. Returns 0
 * or -1 when out of memory (the ids are then freed unless a sequence
 * holds them). */
static int add_row_seqs(run_state *r, const vb_input_row *row, int32_t *ids, int n_ids,
                        long max_new)
{
    run_work *wk = &r->work;
    for (int32_t s = 0; s < wk->n_samples; s++) {
        gen_seq *g = new_seq(r, row, s, ids, n_ids, max_new);
        if (!g) {
            if (s == 0)
                free(ids);
            return -1;
        }
        wk->made[wk->n_made++] = g;
    }
    return 0;
}

/* The block's rows as sequences, or as error rows (leader) when a prompt
 * cannot run. Returns 0 or 1 with err. */
static int make_seqs(run_state *r, vb_err *err)
{
    const run_config *o = r->cfg;
    run_work *wk = &r->work;
    const long max_model_len = r->model.max_model_len;
    const run_prompt_ctx pc = {
        .kind = wk->in.kind, .tok = r->text.tok, .tok_error = r->text.tok_error,
        .chat_tmpl = r->text.chat_tmpl, .chat = o->chat, .system = o->system,
        .vocab_size = r->model.config.vocab_size, .max_model_len = max_model_len,
    };
    for (int64_t k = 0; k < wk->n_block; k++) {
        vb_input_row *row = &wk->block[k];
        int32_t *ids = NULL;
        int n_ids = 0;
        char why[256];
        int prc = run_prompt_ids(&pc, row, &ids, &n_ids, why, sizeof why);
        int rc = prc;
        if (prc > 0) {
            rc = 0;
            for (int32_t s = 0; s < wk->n_samples && r->leader && !rc; s++)
                rc = run_rows_add_error(&r->out.finished, row->index, s, row->id, row->id_int,
                                        n_ids, why);
        } else if (prc == 0) {
            long max_new = row->max_new_tokens >= 0 ? row->max_new_tokens : wk->max_new_tokens;
            if (max_new > max_model_len - n_ids)
                max_new = max_model_len - n_ids;
            rc = add_row_seqs(r, row, ids, n_ids, max_new);
        }
        drop_row_text(row);
        if (rc) {
            vb_err_set(err, "out of memory");
            return 1;
        }
    }
    return 0;
}

int run_feed_read(run_state *r, vb_err *err)
{
    run_work *wk = &r->work;
    int64_t m = wk->n_my_rows - wk->next_row;
    if (m > RUN_FEED_BLOCK)
        m = RUN_FEED_BLOCK;
    if (m <= 0)
        return 0;
    wk->block = calloc((size_t)m, sizeof *wk->block);
    wk->made = calloc((size_t)(m * wk->n_samples), sizeof *wk->made);
    if (!wk->block || !wk->made) {
        vb_err_set(err, "out of memory for a block of %" PRId64 " rows", m);
        return 1;
    }
    wk->n_block = m; /* zeroed rows free cleanly if the read fails part-way */
    if (vb_input_read_rows(&wk->in, wk->my_rows + wk->next_row, m, wk->block, err)) {
        /* the rows are numbered across the inputs (a row of a later shard
         * is the shard's row plus the rows before it) */
        vb_err_prefix(err, "input rows %" PRId64 "-%" PRId64 " (numbered across the inputs)",
                      wk->my_rows[wk->next_row], wk->my_rows[wk->next_row + m - 1]);
        return 2;
    }
    wk->next_row += m;
    return make_seqs(r, err);
}

/* A sequence with nothing to generate: done at once, "length" (leader).
 * Returns 0 or -1 when out of memory. */
static int add_empty_row(run_state *r, const gen_seq *g)
{
    vb_output_row w = {0};
    w.index = g->row_index;
    w.sample = g->sample;
    w.prompt_tokens = g->n_prompt;
    w.finish_reason = VB_FINISH_LENGTH;
    w.completion = strdup("");
    w.error = strdup("");
    w.id = g->row_id ? strdup(g->row_id) : NULL;
    w.id_int = g->row_id_int;
    w.output_ids = malloc(sizeof(int32_t));
    if (r->work.top_n >= 0)
        w.logprobs = malloc(sizeof(float));
    if (!w.completion || !w.error || !w.output_ids || run_rows_take(&r->out.finished, &w))
        return -1;
    return 0;
}

/* Why g can never run where the engine was sized from a bound (rows read
 * after it opened): --batch-invariant's positions, or (never expected:
 * max_new is clipped to --max-model-len) the step batch's block table.
 * The cache's own limit is sched_add's to say. Returns true with g's
 * refusal in why, or false. */
static bool seq_too_long(const run_state *r, const gen_seq *g, vb_err *why)
{
    const run_work *wk = &r->work;
    const int bs = r->eng.sched.kv.block_size;
    const long positions = sched_kv_positions(g->n_prompt, g->max_new);
    const long blocks = (positions + bs - 1) / bs;
    if (wk->invariant_positions > 0 && blocks * bs > wk->invariant_positions) {
        vb_err_set(why, "--batch-invariant on this GPU takes sequences of at most %d positions "
                   "(its decode attention's fixed splits), but this row needs %ld (prompt + "
                   "--max-new-tokens but the last); use a smaller --max-new-tokens or run "
                   "without --batch-invariant", wk->invariant_positions, positions);
        return true;
    }
    if (blocks > wk->seq_max_blocks) {
        vb_err_set(why, "%d prompt + %d new tokens need %ld KV blocks, a sequence may hold %d "
                   "(lower --max-new-tokens or --max-model-len)", g->n_prompt, g->max_new,
                   blocks, wk->seq_max_blocks);
        return true;
    }
    return false;
}

/* Room for slot in seq_of_slot. Returns 0 or -1 when out of memory. */
static int slot_room(run_work *wk, int slot)
{
    if (slot < wk->n_slot_cap)
        return 0;
    int cap = wk->n_slot_cap ? wk->n_slot_cap : 64;
    while (cap <= slot)
        cap *= 2;
    gen_seq **p = realloc(wk->seq_of_slot, (size_t)cap * sizeof *p);
    if (!p)
        return -1;
    memset(p + wk->n_slot_cap, 0, (size_t)(cap - wk->n_slot_cap) * sizeof *p);
    wk->seq_of_slot = p;
    wk->n_slot_cap = cap;
    return 0;
}

/* Frees a sequence that was not queued (its prompt is the row's, freed
 * once the row's samples are queued). */
static void drop_seq(gen_seq *g)
{
    g->prompt = NULL;
    run_seq_free(g);
    free(g);
}

/* Queues g (sample 0's slot row_slot, whose prompt the row's other samples
 * share; -1 when it was not queued). Returns its slot, -1 when it became
 * an error row or was done at once (g freed then), or
 * SCHED_ADD_OUT_OF_MEMORY. */
static int queue_seq(run_state *r, gen_seq *g, int row_slot)
{
    run_work *wk = &r->work;
    vb_err aerr = {{0}};
    int rc = 0, slot = -1;
    if (g->max_new <= 0) {
        rc = r->leader ? add_empty_row(r, g) : 0;
    } else if (seq_too_long(r, g, &aerr)) {
        slot = -1;
    } else if (slot_room(wk, r->eng.sched.n_slots)) { /* the slot sched_add may take */
        rc = -1;
    } else {
        slot = g->sample > 0 && row_slot >= 0
                   ? sched_add_sample(&r->eng.sched, g->id, row_slot, g->max_new, &aerr)
                   : sched_add(&r->eng.sched, g->id, g->prompt, g->n_prompt, g->max_new, &aerr);
        if (slot == SCHED_ADD_OUT_OF_MEMORY) /* the run's failure: the row itself is fine */
            rc = -1, slot = -1;
    }
    if (slot >= 0) {
        g->keeps_logprobs = r->leader && wk->top_n >= 0; /* buffers at its first token */
        g->prompt = NULL; /* the scheduler holds it */
        wk->seq_of_slot[slot] = g;
        return slot;
    }
    if (!rc && g->max_new > 0 && r->leader)
        rc = run_rows_add_error(&r->out.finished, g->row_index, g->sample, g->row_id,
                                g->row_id_int, g->n_prompt, aerr.msg);
    drop_seq(g);
    return rc ? SCHED_ADD_OUT_OF_MEMORY : -1;
}

int run_feed_queue(run_state *r, vb_err *err)
{
    run_work *wk = &r->work;
    int row_slot = -1;       /* sample 0's, whose prompt the row's other samples share */
    int32_t *row_prompt = NULL;
    int code = 0;
    for (int64_t i = 0; i < wk->n_made; i++) {
        gen_seq *g = wk->made[i];
        wk->made[i] = NULL;
        const int32_t sample = g->sample;
        const bool last = i + 1 == wk->n_made || wk->made[i + 1]->sample == 0;
        if (sample == 0)
            row_prompt = g->prompt;
        int slot = -1;
        if (code) { /* after a failure: freed, not queued */
            drop_seq(g);
        } else if ((slot = queue_seq(r, g, row_slot)) == SCHED_ADD_OUT_OF_MEMORY) {
            code = 1;
            vb_err_set(err, "out of memory");
        }
        if (sample == 0)
            row_slot = slot;
        if (last) {
            free(row_prompt); /* the scheduler has its own copy */
            row_prompt = NULL;
        }
    }
    wk->n_made = 0;
    free(wk->made);
    wk->made = NULL;
    vb_input_rows_free(wk->block, wk->n_block);
    free(wk->block);
    wk->block = NULL;
    wk->n_block = 0;
    return code;
}

/* The waiting line's low-water mark, in sequences: a block of rows' worth,
 * and never fewer than admission may look at (run_feed.h) plus one. */
static int64_t low_water(const run_state *r)
{
    int64_t need = 2 * (int64_t)r->eng.max_batch + 1;
    return need > RUN_FEED_BLOCK ? need : RUN_FEED_BLOCK;
}

void run_feed(run_state *r, long step)
{
    run_work *wk = &r->work;
    const int64_t low = low_water(r);
    while (!wk->read_failed && wk->next_row < wk->n_my_rows && r->eng.sched.waiting.n < low) {
        /* tokenizing a block of long chat prompts may take longer than a
         * step's deadline: the watchdog waits without one meanwhile (the
         * next step arms it again) */
        vb_watchdog_wait("reading and tokenizing a block of this group's rows");
        vb_err err = {{0}};
        int rc = run_feed_read(r, &err);
        if (rc == 2) {
            /* An input that cannot be read now (cut off, changed or removed
             * since the start): a bad input, not a crash. The group stops at
             * the next step's agreement, as on a signal, so its finished
             * rows are written; the run then exits 2 with this message
             * (generate_run.c). */
            vb_input_rows_free(wk->block, wk->n_block);
            free(wk->block);
            free(wk->made);
            wk->block = NULL;
            wk->made = NULL;
            wk->n_block = wk->n_made = 0;
            wk->read_failed = true;
            wk->read_err = err;
            return;
        }
        if (rc || run_feed_queue(r, &err))
            run_die(r, "reading this group's rows", step, &err);
    }
}

bool run_feed_done(const run_state *r)
{
    return r->work.next_row >= r->work.n_my_rows && r->work.n_made == 0;
}

gen_seq *run_feed_seq(const run_state *r, int slot)
{
    return r->work.seq_of_slot[slot];
}

void run_feed_release(run_state *r, int slot)
{
    gen_seq *g = r->work.seq_of_slot[slot];
    r->work.seq_of_slot[slot] = NULL;
    if (g) {
        run_seq_free(g);
        free(g);
    }
}

void run_feed_free(run_work *wk)
{
    for (int64_t i = 0; i < wk->n_made; i++)
        if (wk->made[i]) {
            run_seq_free(wk->made[i]); /* sample 0 frees the row's prompt */
            free(wk->made[i]);
        }
    free(wk->made);
    if (wk->block)
        vb_input_rows_free(wk->block, wk->n_block);
    free(wk->block);
    for (int i = 0; i < wk->n_slot_cap; i++)
        if (wk->seq_of_slot[i]) {
            run_seq_free(wk->seq_of_slot[i]);
            free(wk->seq_of_slot[i]);
        }
    free(wk->seq_of_slot);
    wk->made = NULL;
    wk->block = NULL;
    wk->seq_of_slot = NULL;
    wk->n_made = wk->n_block = 0;
    wk->n_slot_cap = 0;
}

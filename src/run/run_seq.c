/* Per-sequence bookkeeping of the step loop (see run_seq.h). */
#include "run/run_seq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run/run_feed.h"
#include "run/run_state.h"
#include "util/log.h"

/* Opens g's --stop stream (the decoder's state and the stop matcher with
 * its copies of the stop strings) at its first token, not when it is
 * queued: made for every row of the group up front, they took memory in
 * proportion to the input (100,000 rows with 32 stops of 108 bytes:
 * +470 MB a rank, on every rank of the group). Closed once the row is
 * kept (stream_close). Returns 0 or -1 when out of memory. */
static int stream_open(const run_state *r, gen_seq *g)
{
#if RUN_HAVE_TOKENIZER
    if (!g->streaming || g->stream_open)
        return 0;
    tok_stream_init(&g->ts, r->text.tok, true);
    if (stop_matcher_init(&g->sm, r->cfg->stops, (size_t)r->cfg->n_stops)) {
        stop_matcher_free(&g->sm);
        return -1;
    }
    g->stream_open = true;
#else
    (void)r, (void)g;
#endif
    return 0;
}

/* Frees what the stream of a finished g holds (its text is in its output
 * row by now). */
static void stream_close(gen_seq *g)
{
#if RUN_HAVE_TOKENIZER
    if (g->stream_open)
        stop_matcher_free(&g->sm);
#endif
    g->stream_open = false;
    free(g->text);
    g->text = NULL;
    g->text_len = g->text_cap = 0;
}

/* g's logprobs buffers for max_new tokens. Made when g gets its first
 * token, not when it is queued: made for every row of the group up front,
 * they took max_new x (1 + 2 x top_n) x 4 bytes a row before a token was
 * generated (40,000 rows at 1024 tokens and --logprobs 64: 21 GB). */
static int logprobs_alloc(gen_seq *g, int32_t top_n)
{
    size_t m = (size_t)g->max_new, t = (size_t)(top_n > 0 ? top_n : 0);
    g->logprobs = calloc(m, sizeof(float));
    if (t) {
        g->top_ids = calloc(m * t, sizeof(int32_t));
        g->top_logprobs = calloc(m * t, sizeof(float));
    }
    return !g->logprobs || (t && (!g->top_ids || !g->top_logprobs)) ? -1 : 0;
}

int run_seq_record(gen_seq *g, const sample_result *res, int t, int32_t top_n)
{
    if (!g->keeps_logprobs || res->error || t >= g->max_new)
        return 0;
    if (!g->logprobs && logprobs_alloc(g, top_n))
        return -1;
    g->logprobs[t] = res->logprob;
    for (int k = 0; k < top_n && k < res->n_top; k++) {
        g->top_ids[(size_t)t * top_n + k] = res->top_tokens[k];
        g->top_logprobs[(size_t)t * top_n + k] = res->top_logprobs[k];
    }
    return 0;
}

bool run_seq_is_eos(const int32_t *eos, int n_eos, int32_t id)
{
    for (int i = 0; i < n_eos; i++)
        if (eos[i] == id)
            return true;
    return false;
}

/* The whole decode of ids, skipping special tokens; "" without a
 * tokenizer or when it fails (warned: the row keeps its output_ids). */
static char *decode_completion(const run_state *r, const int32_t *ids, int n, long step,
                               size_t *text_len)
{
#if !RUN_HAVE_TOKENIZER
    (void)r, (void)ids, (void)n, (void)step;
    return strdup("");
#else
    if (!r->text.tok)
        return strdup("");
    /* ids the tokenizer lacks (the model's padded vocabulary rows, which a
     * trained model never picks, and ids a tokenizer.json leaves
     * unassigned between its tokens) decode to nothing, as in Hugging
     * Face's decode and the --stop stream: one such id had failed the
     * whole decode, the row's text lost */
    int32_t *known = malloc(((size_t)n + 1) * sizeof *known);
    if (!known)
        return NULL;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (tokenizer_has_id(r->text.tok, ids[i]))
            known[m++] = ids[i];
    char *out = NULL;
    size_t len = 0;
    vb_err err = {{0}};
    int rc = tokenizer_decode(r->text.tok, known, (size_t)m, true, &out, &len, &err);
    free(known);
    if (rc) {
        vb_warn("group %d step %ld: cannot decode a completion: %s", r->d->dp_rank, step,
                err.msg);
        return strdup("");
    }
    *text_len = len;
    return out;
#endif
}

/* Ends a --stop sequence's stream: the text it still held (a ByteFallback
 * run of <0xNN> tokens is decoded only when it ends, a BPEDecoder's last
 * token at the end) goes through the matcher too, so a stop string in it
 * cuts the text as one found earlier would. Once; true when a stop string
 * was found, now or before. */
static bool stream_end(gen_seq *g)
{
#if !RUN_HAVE_TOKENIZER
    (void)g;
    return false;
#else
    if (g->stop_hit || g->stream_done)
        return g->stop_hit;
    g->stream_done = true;
    size_t before = g->text_len, at = 0;
    if (tok_stream_finish(&g->ts, &g->text, &g->text_len, &g->text_cap) < 0)
        return false;
    if (g->text_len > before &&
        stop_matcher_feed(&g->sm, g->text + before, g->text_len - before, &at)) {
        g->text_len = at;
        g->stop_hit = true;
    }
    return g->stop_hit;
#endif
}

/* The completion's text: what the stream decoded (cut at the stop string
 * with --stop), else the whole decode; *text_len its bytes (it may hold
 * NUL characters). */
static char *completion_text(const run_state *r, gen_seq *g, const int32_t *ids, int n,
                             long step, size_t *text_len)
{
    *text_len = 0;
#if RUN_HAVE_TOKENIZER
    if (g->streaming) {
        stream_end(g);
        char *t = malloc(g->text_len + 1);
        if (t) {
            if (g->text_len)
                memcpy(t, g->text, g->text_len);
            t[g->text_len] = '\0';
            *text_len = g->text_len;
        }
        return t;
    }
#else
    (void)g;
#endif
    return decode_completion(r, ids, n, step, text_len);
}

#if RUN_HAVE_TOKENIZER
/* Whether the text g's stream still holds (a <0xNN> run, decoded only
 * when it ends: CJK text or emoji on a Llama 2 / Mistral model; a
 * BPEDecoder's last token) completes a stop string: then it is flushed
 * and the row ends at this token, where the decode of its ids so far
 * shows the stop string, not when the run ends (or at --max-new-tokens)
 * with the tokens after the stop in /output_ids. */
static bool stream_held_stop(gen_seq *g)
{
    char *t = NULL;
    size_t n = 0, cap = 0, at = 0;
    bool hit = tok_stream_peek_end(&g->ts, &t, &n, &cap) > 0 &&
               stop_matcher_peek(&g->sm, t, n, &at);
    free(t);
    return hit && stream_end(g);
}
#endif

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
    return stream_held_stop(g);
#endif
}

/* The leader's output row for g: its tokens (taken from the scheduler),
 * text and logprobs (moved from g). Returns 0 or -1 when out of memory. */
static int keep_row(run_state *r, gen_seq *g, const sched_seq *sq, int n_out,
                    vb_finish_reason why, const char *msg, long step)
{
    vb_output_row w = {0};
    w.index = g->row_index;
    w.sample = g->sample;
    w.prompt_tokens = g->n_prompt;
    w.completion_tokens = n_out;
    w.n_output_ids = n_out;
    w.finish_reason = why;
    w.output_ids = malloc(((size_t)n_out + 1) * sizeof(int32_t));
    if (w.output_ids)
        memcpy(w.output_ids, sq->tokens + sq->n_prompt, (size_t)n_out * sizeof(int32_t));
    w.completion = completion_text(r, g, sq->tokens + sq->n_prompt, n_out, step, &w.completion_len);
    w.error = strdup(msg ? msg : "");
    w.id = g->row_id ? strdup(g->row_id) : NULL;
    w.id_int = g->row_id_int;
    w.logprobs = g->logprobs;
    w.top_ids = g->top_ids;
    w.top_logprobs = g->top_logprobs;
    g->logprobs = NULL;
    g->top_ids = NULL;
    g->top_logprobs = NULL;
    if (!w.output_ids || !w.completion || !w.error || (g->row_id && !w.id) ||
        run_rows_take(&r->out.finished, &w))
        return -1;
    return 0;
}

static void finish_seq(run_state *r, int64_t id, int slot, vb_finish_reason why,
                       const char *msg, long step)
{
    gen_seq *g = run_feed_seq(r, slot);
    const sched_seq *sq = sched_seq_get(&r->eng.sched, slot);
    int n_out = sq->n_tokens - sq->n_prompt;
    if (why == VB_FINISH_ERROR && n_out > 0)
        n_out--; /* the placeholder appended for the failed step */
    if (r->leader && keep_row(r, g, sq, n_out, why, msg, step)) {
        vb_err err = {{0}};
        vb_err_set(&err, "out of memory for a finished row");
        run_die(r, "finishing a row", step, &err);
    }
    stream_close(g);
    bench_metrics_seq_finish(&r->stats.bm, id, n_out);
    sched_finish(&r->eng.sched, slot);
    run_feed_release(r, slot); /* g is gone */
}

void run_seq_token(run_state *r, int64_t id, int slot, int32_t token, bool error,
                   int generated, long step)
{
    gen_seq *g = run_feed_seq(r, slot);
    if (stream_open(r, g)) {
        vb_err err = {{0}};
        vb_err_set(&err, "out of memory for a row's --stop stream");
        run_die(r, "generating", step, &err);
    }
    if (error) {
        char msg[96];
        snprintf(msg, sizeof msg, "NaN or Inf in the logits at generated token %d",
                 generated - 1);
        finish_seq(r, id, slot, VB_FINISH_ERROR, msg, step);
    } else if (!r->cfg->ignore_eos && run_seq_is_eos(r->text.eos, r->text.n_eos, token)) {
        /* the eos token's text is the completion's, as in the whole decode
         * without --stop: an eos id that is no special token (an ordinary
         * token a generation_config.json lists) was dropped with --stop */
        if (g->streaming)
            stream_token(g, token);
        finish_seq(r, id, slot, VB_FINISH_STOP, NULL, step);
    } else if (g->streaming && stream_token(g, token)) {
        finish_seq(r, id, slot, VB_FINISH_STOP, NULL, step);
    } else if (generated >= g->max_new) {
        /* a stop string the stream still held ends the row as a stop */
        bool stop = g->streaming && stream_end(g);
        finish_seq(r, id, slot, stop ? VB_FINISH_STOP : VB_FINISH_LENGTH, NULL, step);
    }
}

void run_seq_free(gen_seq *g)
{
    if (g->sample == 0)
        free(g->prompt);
    free(g->logprobs);
    free(g->top_ids);
    free(g->top_logprobs);
    stream_close(g);
    free(g->row_id);
    g->row_id = NULL;
}

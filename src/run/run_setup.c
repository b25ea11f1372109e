/* Tokenizer, eos ids, the sampling in effect and this group's first block
 * of rows (see run_setup.h). */
#include "run/run_setup.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/sampler_params.h"
#include "run/run_feed.h"
#include "util/exit_codes.h"

#define RUN_DEFAULT_MAX_NEW_TOKENS 256

static void add_eos(run_text *t, int32_t id)
{
    if (id < 0 || run_seq_is_eos(t->eos, t->n_eos, id) ||
        t->n_eos >= (int)(sizeof t->eos / sizeof t->eos[0]))
        return;
    t->eos[t->n_eos++] = id;
}

#if RUN_HAVE_TOKENIZER
/* The tokenizer and, for chat prompts, the template. Returns the exit
 * code (0, or VB_EXIT_USAGE with err). */
static int load_tokenizer(run_state *r, vb_err *err)
{
    const run_config *o = r->cfg;
    run_text *t = &r->text;
    const bool text = r->work.in.kind != VB_PROMPT_IDS;
    vb_err terr = {{0}};
    t->tok = tokenizer_load(o->model_dir, &terr);
    if (!t->tok) {
        snprintf(t->tok_error, sizeof t->tok_error, "%s", terr.msg);
        if (text || o->n_stops > 0) {
            vb_err_set(err, "%s", terr.msg);
            return VB_EXIT_USAGE;
        }
        if (r->root)
            fprintf(stderr, "voltbatch %s: warning: no tokenizer (%s); /completions will "
                            "be empty, /output_ids are complete\n", o->command, terr.msg);
        return 0;
    }
    if (text && (o->chat || r->work.in.kind == VB_PROMPT_MESSAGES)) {
        /* a template that does not parse stops the run here (exit 2);
         * one that fails on a row makes that row an error row */
        t->chat_tmpl = chat_template_open(t->tok, o->model_dir, o->chat_template,
                                          o->chat_template_kwargs, err);
        if (!t->chat_tmpl) {
            vb_err_prefix(err, "%s", o->chat ? "--chat" : "/messages");
            return VB_EXIT_USAGE;
        }
    }
    return 0;
}
#endif

/* Chat options where no chat template runs: with plain prompts or token
 * ids they would be dropped without a word (and recorded in the settings
 * as if they had been applied). A system prompt (--system, or an input
 * file's /system, which pack writes from a JSONL "system" field) or
 * --chat-template-kwargs need chat prompts (--chat, or a /messages
 * input); --chat (and --chat-template) need text. Returns the message,
 * written into buf, or NULL when every option given applies. */
static const char *chat_option_unused(const run_state *r, char *buf, size_t n)
{
    const vb_input *in = &r->work.in;
    const run_config *o = r->cfg;
    if (o->chat && in->kind == VB_PROMPT_IDS) {
        snprintf(buf, n, "--chat%s renders text prompts with the chat template; these are "
                 "token ids (/input_ids): pack text prompts, or leave --chat out",
                 o->chat_template ? " (--chat-template)" : "");
        return buf;
    }
    if (o->chat || in->kind == VB_PROMPT_MESSAGES)
        return NULL;
    const char *what = NULL, *file = "";
    if (o->system)
        what = "--system is the system prompt";
    else if (o->chat_template_kwargs)
        what = "--chat-template-kwargs sets variables";
    for (int i = 0; !what && i < in->n_shards; i++)
        if (in->shards[i].system_per_row || in->shards[i].system_scalar)
            file = in->shards[i].path, what = ": /system is the system prompt";
    if (!what)
        return NULL;
    snprintf(buf, n, "%s%s of chat prompts (--chat, or a /messages input); these are plain %s",
             file, what, in->kind == VB_PROMPT_IDS ? "/input_ids" : "/prompts");
    return buf;
}

#if RUN_HAVE_TOKENIZER
/* A --stop string that holds a special token's text among other text
 * ("<|im_end|>\n") cannot match where the model generates that token:
 * completions are decoded without special tokens (warn_special_stops
 * below); the run says which token (the first found). */
static void warn_stop_holding_special(const run_state *r, const char *stop)
{
    const int32_t n = tokenizer_vocab_size(r->text.tok);
    for (int32_t id = 0; id < n; id++) {
        if (!tokenizer_is_special(r->text.tok, id))
            continue;
        char *t = NULL;
        size_t len = 0;
        vb_err err;
        if (tokenizer_decode(r->text.tok, &id, 1, false, &t, &len, &err) == 0 && len > 0 &&
            strlen(stop) > len && strstr(stop, t)) {
            fprintf(stderr, "voltbatch %s: warning: --stop '%s' holds the special token %d (%s), "
                    "which completions are decoded without: it never matches where the model "
                    "generates that token\n", r->cfg->command, stop, (int)id, t);
            free(t);
            return;
        }
        free(t);
    }
}

/* A --stop string that is a special token's text (<|im_end|>, </s>)
 * never matches: completions are decoded without special tokens (as
 * transformers' skip_special_tokens and vLLM do), and the stop strings
 * are looked for in that text. It ran to --max-new-tokens without a word;
 * now the run says so (stopping at the token instead would be a new
 * meaning of --stop, not made here). Call after the eos ids are known. */
static void warn_special_stops(const run_state *r)
{
    const run_config *o = r->cfg;
    for (int i = 0; i < o->n_stops; i++) {
        int32_t id = tokenizer_token_id(r->text.tok, o->stops[i]);
        if (id < 0 || !tokenizer_is_special(r->text.tok, id)) {
            warn_stop_holding_special(r, o->stops[i]);
            continue;
        }
        const bool eos = run_seq_is_eos(r->text.eos, r->text.n_eos, id);
        fprintf(stderr, "voltbatch %s: warning: --stop '%s' is the special token %d, which "
                "completions are decoded without: it never matches%s\n", o->command,
                o->stops[i], (int)id,
                !eos ? ""
                : o->ignore_eos ? " (it is an end-of-sequence id, which --ignore-eos ignores)"
                                : " (it is an end-of-sequence id: rows end there already)");
    }
}
#endif

int run_phase_tokenizer(run_state *r, vb_err *err)
{
    int code = 0;
#if RUN_HAVE_TOKENIZER
    code = load_tokenizer(r, err);
    if (r->text.tok) {
        const int32_t *ids = NULL;
        size_t n = tokenizer_eos_ids(r->text.tok, &ids);
        for (size_t i = 0; i < n; i++)
            add_eos(&r->text, ids[i]);
    }
#else
    if (r->cfg->n_stops > 0)
        code = VB_EXIT_USAGE, vb_err_set(err, "--stop needs the tokenizer (issue #4)");
#endif
    for (int i = 0; i < r->model.config.n_eos; i++)
        add_eos(&r->text, r->model.config.eos_token_ids[i]);
#if RUN_HAVE_TOKENIZER
    if (r->root && r->text.tok)
        warn_special_stops(r);
#endif
    char why[4400];
    if (!code && chat_option_unused(r, why, sizeof why))
        code = VB_EXIT_USAGE, vb_err_set(err, "%s", why);
    return run_agree(r, code, "tokenizer", err);
}

/* generation_config.json's sampling, then the command line over it. Its
 * temperature only under do_sample (else greedy); its top_p, top_k and
 * min_p whenever the run samples, as transformers' generate() and vLLM
 * apply them: a --temperature on a model whose file has top_p but not
 * do_sample had sampled from the whole vocabulary. */
static sampling_params run_sampling(const run_config *o, const model_config *c)
{
    sampling_params md = sampling_params_default();
    if (!c->gen_do_sample)
        md.temperature = 0; /* greedy */
    else if (!isnan(c->gen_temperature))
        md.temperature = (float)c->gen_temperature;
    if (!isnan(c->gen_top_p)) md.top_p = (float)c->gen_top_p;
    if (!isnan(c->gen_min_p)) md.min_p = (float)c->gen_min_p;
    if (c->gen_top_k >= 0) md.top_k = c->gen_top_k;
    if (!isnan(c->gen_repetition_penalty))
        md.repetition_penalty = (float)c->gen_repetition_penalty;
    sampling_params p = sampling_params_resolve(&o->sampling, &md);
    /* top-k past the vocabulary keeps all of it, as top-k = the vocabulary
     * does; the sampler sizes each row's candidates by top_k, so 2^24 (the
     * option's limit) asked 34 GB at 256 rows a step and ended the run */
    if (p.top_k > c->vocab_size)
        p.top_k = c->vocab_size;
    return p;
}

/* --top-p, --top-k and --min-p shape sampling: at the resolved
 * temperature 0 (--temperature 0, bench's default, or none given and
 * generation_config.json without do_sample) they change nothing, which
 * transformers warns about too. */
static void warn_unused_sampling(const run_config *o, const sampling_params *base)
{
    const sampling_overrides *sp = &o->sampling;
    /* every one given is named: with only the first, a second (--top-p
     * 0.9 --min-p 0.1) was dropped without a word */
    const bool given[3] = {!isnan(sp->top_p), sp->top_k >= 0, !isnan(sp->min_p)};
    static const char *const names[3] = {"--top-p", "--top-k", "--min-p"};
    char opts[48] = "";
    int n = 0;
    for (int i = 0; i < 3; i++)
        if (given[i]) {
            size_t at = strlen(opts);
            snprintf(opts + at, sizeof opts - at, "%s%s", n++ ? ", " : "", names[i]);
        }
    if (n && base->temperature == 0)
        fprintf(stderr, "voltbatch %s: warning: %s %s no effect at temperature 0 (greedy%s): "
                "every row is greedy (inputs have no per-row temperature)\n", o->command, opts,
                n > 1 ? "have" : "has",
                isnan(sp->temperature) ? "; no --temperature, and the model's "
                                         "generation_config.json does not set do_sample"
                                       : "");
}

/* --n K at temperature 0 computes K copies of one greedy completion:
 * transformers refuses num_return_sequences > 1 without sampling; here the
 * rows are made (the output's shape is what was asked) but said to be
 * identical, so a run meant to sample is not spent K times over on
 * copies (a model whose generation_config.json lacks do_sample is greedy
 * by default). */
static void warn_identical_samples(const run_config *o, const sampling_params *base)
{
    if (o->n > 1 && base->temperature == 0)
        fprintf(stderr, "voltbatch %s: warning: --n %ld at temperature 0 (greedy%s): the %ld "
                "samples of each row are identical; give --temperature to sample\n",
                o->command, o->n,
                isnan(o->sampling.temperature) ? "; no --temperature, and the model's "
                                                 "generation_config.json does not set do_sample"
                                               : "",
                o->n);
}

/* Rank 0's warnings about the sampling in effect, once before the rows. */
static void warn_sampling(const run_state *r)
{
    const run_config *o = r->cfg;
    const sampling_params base = run_sampling(o, &r->model.config);
    if (r->root) {
        warn_unused_sampling(o, &base);
        warn_identical_samples(o, &base);
        /* transformers' generate() would apply them; vLLM, like this run,
         * does not (config_json.c) */
        if (r->model.config.gen_unapplied[0])
            fprintf(stderr, "voltbatch %s: warning: %s/generation_config.json sets %s, which "
                    "transformers' generate() applies and voltbatch does not: the rows are "
                    "made without them\n",
                    o->command, o->model_dir, r->model.config.gen_unapplied);
    }
}

/* The sampling and the token limit in effect for rows without their
 * own: the command line over generation_config.json; --max-new-tokens,
 * else generation_config.json's, else 256. */
static void set_defaults(run_state *r)
{
    const run_config *o = r->cfg;
    const long model_max_new = r->model.config.gen_max_new_tokens;
    r->work.sampling = run_sampling(o, &r->model.config);
    r->work.max_new_tokens = o->max_new_tokens >= 0 ? o->max_new_tokens
                             : model_max_new >= 0   ? model_max_new
                                                    : RUN_DEFAULT_MAX_NEW_TOKENS;
}

int run_phase_rows(run_state *r, vb_err *err)
{
    run_work *wk = &r->work;
    wk->n_samples = r->cfg->n > 0 ? r->cfg->n : 1;
    wk->max_seq_tokens = 1;
    set_defaults(r);
    warn_sampling(r);
    /* The first block before the engine: when it holds the group's rows
     * (all_read), the engine is sized from them exactly; the other blocks
     * are read as the scheduler's waiting line drains (run_feed.h) */
    int code = run_feed_read(r, err);
    wk->all_read = wk->next_row >= wk->n_my_rows;
    wk->n_seqs_bound = wk->all_read ? wk->n_seqs : wk->n_my_rows * wk->n_samples;
    return run_agree(r, code, "reading this group's rows", err);
}

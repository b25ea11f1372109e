/* Input rows to prompt ids (see run_prompts.h). */
#include "run/run_prompts.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/utf8_valid.h"

#if RUN_HAVE_TOKENIZER
/* A /messages row: JSON array of message objects -> chat template -> ids.
 * The objects go to the template as they are (a Jinja template may read
 * keys besides role and content); each needs a string role. */
static int encode_messages(const run_prompt_ctx *c, const vb_input_row *row, tok_ids *out,
                           char *why, size_t why_len)
{
    json_error_t jerr;
    json_t *a = json_loadb(row->text, row->text_len, JSON_ALLOW_NUL, &jerr); /* \u0000 is text */
    size_t n = json_is_array(a) ? json_array_size(a) : 0;
    if (n == 0) {
        json_decref(a);
        snprintf(why, why_len, "messages is not a non-empty JSON array of {\"role\", \"content\"}");
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(a, i);
        if (!json_string_value(json_object_get(m, "role")) || !json_object_get(m, "content")) {
            snprintf(why, why_len, "messages[%zu] needs a string \"role\" and a \"content\"", i);
            json_decref(a);
            return 1;
        }
    }
    vb_err err = {{0}};
    int rc = chat_template_encode(c->chat_tmpl, a, row->system ? row->system : c->system, out, &err);
    json_decref(a);
    if (rc) {
        snprintf(why, why_len, "%s", err.msg);
        return 1;
    }
    return 0;
}

static int encode_text(const run_prompt_ctx *c, const vb_input_row *row, tok_ids *out, char *why,
                       size_t why_len)
{
    if (c->kind == VB_PROMPT_MESSAGES || c->chat) {
        if (!c->chat_tmpl) {
            snprintf(why, why_len, "no chat template (the model has none; name one with "
                                   "--chat-template)");
            return 1;
        }
        if (c->kind == VB_PROMPT_MESSAGES)
            return encode_messages(c, row, out, why, why_len);
        chat_message m = {"user", row->text, row->text_len};
        vb_err err = {{0}};
        if (chat_template_encode_msgs(c->chat_tmpl, &m, 1, row->system ? row->system : c->system,
                                      out, &err)) {
            snprintf(why, why_len, "%s", err.msg);
            return 1;
        }
        return 0;
    }
    vb_err err = {{0}};
    if (tokenizer_encode(c->tok, row->text, row->text_len, true, out, &err)) { /* NUL characters too */
        snprintf(why, why_len, "%s", err.msg);
        return 1;
    }
    return 0;
}

/* A text row the reader refused for another of its values (max_new_tokens,
 * seed, id): its prompt's token count for the error row, as a row of ids
 * keeps its count; 0 where the text (or its system prompt) cannot be
 * encoded. */
static int refused_text_tokens(const run_prompt_ctx *c, const vb_input_row *row)
{
    size_t at = 0;
    if (!c->tok || !row->text || row->text_len == 0 ||
        !vb_utf8_valid(row->text, row->text_len, &at) ||
        (row->system && !vb_utf8_valid(row->system, strlen(row->system), &at)))
        return 0;
    tok_ids t = {0};
    char why[VB_ROW_ERROR_BYTES];
    int n = encode_text(c, row, &t, why, sizeof why) == 0 ? (int)t.n : 0;
    free(t.ids);
    return n;
}

#endif

int run_prompt_ids(const run_prompt_ctx *c, const vb_input_row *row, int32_t **ids, int *n,
                   char *why, size_t why_len)
{
    *ids = NULL;
    *n = 0;
    if (row->error[0]) { /* the reader's refusal; the row's tokens are still counted */
        *n = row->n_ids;
#if RUN_HAVE_TOKENIZER
        if (c->kind != VB_PROMPT_IDS)
            *n = refused_text_tokens(c, row);
#endif
        snprintf(why, why_len, "%s", row->error);
        return 1;
    }
#if RUN_HAVE_TOKENIZER
    tok_ids t = {0};
#else
    struct { int32_t *ids; size_t n; } t = {0};
#endif
    const int32_t *p = row->ids;
    long len = row->n_ids;
    if (c->kind != VB_PROMPT_IDS) {
        if (!c->tok || !row->text) {
            if (c->tok_error && c->tok_error[0])
                snprintf(why, why_len, "%s: %s", RUN_NO_TOKENIZER_MSG, c->tok_error);
            else
                snprintf(why, why_len, "%s", RUN_NO_TOKENIZER_MSG);
            return 1;
        }
#if RUN_HAVE_TOKENIZER
        int rc = encode_text(c, row, &t, why, why_len);
#else
        int rc = 1;
        snprintf(why, why_len, "%s", RUN_NO_TOKENIZER_MSG);
#endif
        if (rc) {
            free(t.ids);
            return rc;
        }
        p = t.ids;
        len = (long)t.n;
    }
    int rc = 1;
    *n = len > 0 ? (int)len : 0; /* the row's token count, for its error row too */
    if (len <= 0 || !p) {
        snprintf(why, why_len, "empty prompt (%s)",
                 c->kind == VB_PROMPT_IDS ? "no input_ids" : "no tokens after encoding");
        goto out;
    }
    for (long i = 0; i < len; i++)
        if (p[i] < 0 || p[i] >= c->vocab_size) {
            snprintf(why, why_len,
                     "token id %d at position %ld is outside the model's vocabulary (0..%d)",
                     p[i], i, c->vocab_size - 1);
            goto out;
        }
    if (len >= c->max_model_len) {
        snprintf(why, why_len,
                 "prompt has %ld tokens; the context is %ld (--max-model-len), leaving no room "
                 "to generate",
                 len, c->max_model_len);
        goto out;
    }
    *ids = malloc((size_t)len * sizeof **ids);
    if (!*ids) {
        rc = -1;
        goto out;
    }
    memcpy(*ids, p, (size_t)len * sizeof **ids);
    rc = 0;
out:
    free(t.ids);
    return rc;
}

/* The chat template a run uses (chat_template.h): the model's own Jinja
 * template, a .jinja file, or one of the built-in formats; and rendering a
 * conversation with it the way transformers' apply_chat_template calls
 * the template: messages, add_generation_prompt, tools and documents as
 * None, the special tokens (bos_token, eos_token, unk_token, pad_token)
 * and the caller's keyword arguments, which win over the tokens. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tokenizer/chat_template.h"
#include "tokenizer/jinja.h"
#include "util/json_file.h"
#include "util/open_regular.h"
#include "util/utf8_valid.h"

struct chat_template {
    const tokenizer *tok;
    chat_template_kind builtin; /* CHAT_TEMPLATE_NONE: jinja */
    jinja_template *jinja;
    json_t *vars;               /* special tokens and kwargs, copied into each render */
};

/* A whole small text file of valid UTF-8; NULL + err (missing: *missing
 * set, no err).
 * Opened without blocking and refused unless a regular file: a FIFO
 * blocked the start-up in open() for good (SIGTERM restarts it), and a
 * device such as /dev/zero read as an empty template. */
static char *read_text(const char *path, size_t *len, bool *missing, vb_err *err)
{
    struct stat st;
    int fd = vb_open_regular(path, &st);
    if (fd == -2) {
        vb_err_set(err, "%s: not a regular file", path);
        return NULL;
    }
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!f) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        if (missing && e == ENOENT)
            *missing = true;
        else
            vb_err_set(err, "%s: cannot open: %s", path, strerror(e));
        return NULL;
    }
    char *buf = NULL;
    if (st.st_size >= 0 && st.st_size < (64 << 20) && (buf = malloc((size_t)st.st_size + 1))) {
        *len = fread(buf, 1, (size_t)st.st_size, f);
        buf[*len] = 0;
        if (ferror(f) || *len != (size_t)st.st_size) {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    if (!buf) {
        vb_err_set(err, "%s: cannot read (or larger than 64 MiB)", path);
        return NULL;
    }
    /* every prompt it renders would be an error row naming no file */
    size_t bad = 0;
    if (!vb_utf8_valid(buf, *len, &bad)) {
        vb_err_set(err, "%s: not valid UTF-8 text (byte %zu)", path, bad + 1);
        free(buf);
        return NULL;
    }
    return buf;
}

/* tokenizer_config.json's token string: "x" or {"content": "x", ...}. */
static const char *config_token(const json_t *cfg, const char *key)
{
    const json_t *v = json_object_get(cfg, key);
    if (json_is_object(v))
        v = json_object_get(v, "content");
    return json_string_value(v);
}

/* The template's variables: the special tokens and kwargs_json's members
 * (*n_kwargs of them). */
static int set_vars(chat_template *ct, const char *model_dir, const char *kwargs_json,
                    size_t *n_kwargs, vb_err *err)
{
    *n_kwargs = 0;
    ct->vars = json_object();
    if (!ct->vars)
        return vb_err_set(err, "out of memory");
    const char *bos = tokenizer_bos_token(ct->tok), *eos = tokenizer_eos_token(ct->tok);
    if (bos)
        json_object_set_new(ct->vars, "bos_token", json_string(bos));
    if (eos)
        json_object_set_new(ct->vars, "eos_token", json_string(eos));
    if (model_dir) {
        /* unk and pad are not in the tokenizer; read them here. The file
         * was already read by tokenizer_load, which reports its errors;
         * integers as reals so that 1e30 limits do not matter here. */
        char path[4096];
        snprintf(path, sizeof path, "%s/tokenizer_config.json", model_dir);
        json_error_t je;
        json_t *cfg = vb_json_load_file(path, JSON_DECODE_INT_AS_REAL, &je);
        const char *keys[] = {"unk_token", "pad_token"};
        for (size_t i = 0; cfg && i < 2; i++) {
            const char *t = config_token(cfg, keys[i]);
            if (t)
                json_object_set_new(ct->vars, keys[i], json_string(t));
        }
        json_decref(cfg);
    }
    if (kwargs_json) {
        json_error_t je;
        json_t *kw = json_loads(kwargs_json, JSON_DECODE_ANY, &je);
        if (!json_is_object(kw)) {
            json_decref(kw);
            return vb_err_set(err, "--chat-template-kwargs: %s",
                              kw ? "not a JSON object" : je.text);
        }
        /* the conversation: transformers refuses either name as a kwarg
         * (a duplicate keyword argument, TypeError); here "messages" would
         * replace every row's conversation */
        const char *reserved[] = {"messages", "conversation"};
        for (size_t i = 0; i < 2; i++)
            if (json_object_get(kw, reserved[i])) {
                json_decref(kw);
                return vb_err_set(err, "--chat-template-kwargs: \"%s\" is the conversation "
                                  "itself (the prompts), not a template variable", reserved[i]);
            }
        *n_kwargs = json_object_size(kw);
        json_object_update(ct->vars, kw);
        json_decref(kw);
    }
    return 0;
}

bool chat_template_names_file(const char *name)
{
    size_t n = strlen(name);
    return strchr(name, '/') || (n > 6 && strcmp(name + n - 6, ".jinja") == 0);
}

chat_template *chat_template_open(const tokenizer *tok, const char *model_dir, const char *name,
                                  const char *kwargs_json, vb_err *err)
{
    chat_template *ct = calloc(1, sizeof *ct);
    if (!ct) {
        vb_err_set(err, "out of memory");
        return NULL;
    }
    ct->tok = tok;
    size_t n_kw = 0;
    if (set_vars(ct, model_dir, kwargs_json, &n_kw, err) < 0)
        goto fail;
    if (name && !chat_template_names_file(name)) {
        if (chat_template_by_name(name, &ct->builtin, err) < 0)
            goto fail;
        /* the built-in templates are C, not Jinja: they read no variables,
         * so kwargs (even add_generation_prompt: false) would be dropped
         * without a word */
        if (n_kw > 0) {
            vb_err_set(err, "--chat-template-kwargs: the built-in %s template takes no "
                       "variables (a Jinja template, the model's or a file's, does)", name);
            goto fail;
        }
        return ct;
    }
    char label[4200];
    char *text = NULL;
    size_t len = 0;
    if (name) {
        snprintf(label, sizeof label, "%s", name);
        if (!(text = read_text(name, &len, NULL, err)))
            goto fail;
    } else {
        bool missing = false;
        /* with tools, transformers renders with the model's "tool_use"
         * template when it has one: additional_chat_templates/tool_use.jinja
         * or the tokenizer_config.json list's entry */
        const json_t *tools = json_object_get(ct->vars, "tools");
        if (tools && !json_is_null(tools) && model_dir) {
            snprintf(label, sizeof label, "%s/additional_chat_templates/tool_use.jinja", model_dir);
            if (!(text = read_text(label, &len, &missing, err)) && !missing)
                goto fail;
            const char *tu = tokenizer_chat_template_tool_use(tok);
            if (!text && tu) {
                snprintf(label, sizeof label, "%s/tokenizer_config.json chat_template tool_use",
                         model_dir);
                len = strlen(tu);
                if (!(text = malloc(len + 1))) {
                    vb_err_set(err, "out of memory");
                    goto fail;
                }
                memcpy(text, tu, len + 1);
            }
        }
        if (!text) {
            missing = false;
            snprintf(label, sizeof label, "%s/chat_template.jinja", model_dir ? model_dir : ".");
            if (model_dir && !(text = read_text(label, &len, &missing, err)) && !missing)
                goto fail;
        }
    }
    if (text && strspn(text, " \t\r\n") == len) {
        /* it would render every prompt empty: each row an error */
        free(text);
        vb_err_set(err, "%s: the chat template is empty", label);
        goto fail;
    }
    if (text) {
        ct->jinja = jinja_parse(text, len, label, err);
        free(text);
    } else {
        const char *t = tokenizer_chat_template_text(tok);
        const char *why = tokenizer_chat_template_problem(tok);
        if (!t && why) {
            vb_err_set(err, "%s/tokenizer_config.json: %s, and there is no chat_template.jinja; "
                            "name a template with --chat-template chatml|llama3|llama2|FILE.jinja",
                       model_dir ? model_dir : ".", why);
            goto fail;
        }
        if (!t) {
            vb_err_set(err, "the model has no chat template (no chat_template in "
                            "tokenizer_config.json, no chat_template.jinja); name one with "
                            "--chat-template chatml|llama3|llama2|FILE.jinja");
            goto fail;
        }
        snprintf(label, sizeof label, "%s/tokenizer_config.json chat_template", model_dir ? model_dir : ".");
        ct->jinja = jinja_parse(t, strlen(t), label, err);
    }
    if (!ct->jinja)
        goto fail;
    return ct;
fail:
    chat_template_free(ct);
    return NULL;
}

void chat_template_free(chat_template *ct)
{
    if (!ct)
        return;
    jinja_free(ct->jinja);
    json_decref(ct->vars);
    free(ct);
}

const char *chat_template_label(const chat_template *ct)
{
    return ct->jinja ? "model" : chat_template_name(ct->builtin);
}

/* {"role": role, "content": content}; the strings unchecked, so text that
 * is not UTF-8 reaches the tokenizer, which names the byte. */
static json_t *message(const char *role, const char *content, size_t content_len)
{
    json_t *m = json_object();
    if (m && (json_object_set_new(m, "role", json_stringn_nocheck(role, strlen(role))) < 0 ||
              json_object_set_new(m, "content", json_stringn_nocheck(content, content_len)) < 0)) {
        json_decref(m);
        m = NULL;
    }
    return m;
}

static bool starts_with_system(const json_t *messages)
{
    const char *role = json_string_value(json_object_get(json_array_get(messages, 0), "role"));
    return role && strcmp(role, "system") == 0;
}

static int render_builtin(const chat_template *ct, const json_t *messages, const char *system,
                          char **out, size_t *out_len, vb_err *err)
{
    size_t n = json_array_size(messages);
    chat_message *m = calloc(n ? n : 1, sizeof *m);
    if (!m)
        return vb_err_set(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(messages, i);
        m[i].role = json_string_value(json_object_get(e, "role"));
        m[i].content = json_string_value(json_object_get(e, "content"));
        m[i].content_len = json_string_length(json_object_get(e, "content")); /* NUL characters too */
        if (!m[i].role || !m[i].content) {
            free(m);
            return vb_err_set(err, "messages[%zu] needs string \"role\" and \"content\"", i);
        }
    }
    int rc = chat_render(ct->tok, ct->builtin, m, n, system, out, out_len, err);
    free(m);
    return rc;
}

/* Message i as transformers' apply_chat_template hands it to the template
 * (5.x: _normalize_chat_messages, then _alias_reasoning_fields): keys whose
 * value is null left out (OpenAI-style "content": null or "tool_calls":
 * null read as present: "None" in the text, or a template's len() of
 * null), and the reasoning under every name templates read it by: the
 * first of reasoning_content, thinking, reasoning that is set becomes
 * "thinking" (first, as transformers' dict puts it) and
 * "reasoning_content". NULL + err when it is not an object. */
static json_t *normalized_message(const json_t *m, size_t i, vb_err *err)
{
    if (!json_is_object(m)) {
        vb_err_set(err, "messages[%zu] is not an object (a {\"role\", \"content\"} message)", i);
        return NULL;
    }
    static const char *const reasoning_keys[] = {"reasoning_content", "thinking", "reasoning"};
    json_t *reasoning = NULL;
    for (size_t k = 0; k < 3 && !reasoning; k++) {
        json_t *v = json_object_get(m, reasoning_keys[k]);
        if (v && !json_is_null(v))
            reasoning = v;
    }
    json_t *o = json_object();
    if (o && reasoning)
        json_object_set(o, "thinking", reasoning);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)m, key, v)
        if (o && !json_is_null(v))
            json_object_set(o, key, v);
    if (o && reasoning)
        json_object_set(o, "reasoning_content", reasoning);
    if (!o)
        vb_err_set(err, "out of memory");
    return o;
}

json_t *chat_messages_for_template(const json_t *messages, vb_err *err)
{
    if (!json_is_array(messages)) {
        vb_err_set(err, "messages is not a JSON array");
        return NULL;
    }
    if (json_array_size(messages) == 0) { /* transformers refuses it too */
        vb_err_set(err, "the conversation is empty (no messages)");
        return NULL;
    }
    json_t *a = json_array();
    for (size_t i = 0; a && i < json_array_size(messages); i++) {
        json_t *m = normalized_message(json_array_get(messages, i), i, err);
        if (!m || json_array_append_new(a, m) < 0) {
            json_decref(a);
            return NULL;
        }
    }
    if (!a)
        vb_err_set(err, "out of memory");
    return a;
}

int chat_template_render(const chat_template *ct, const json_t *messages, const char *system,
                         bool add_generation_prompt, char **out, size_t *out_len, vb_err *err)
{
    if (!json_is_array(messages))
        return vb_err_set(err, "messages is not a JSON array");
    if (!ct->jinja) {
        if (!add_generation_prompt)
            return vb_err_set(err, "the built-in templates always add the generation prompt");
        return render_builtin(ct, messages, system, out, out_len, err);
    }
    json_t *vars = json_object(), *msgs = json_array();
    int rc = -1;
    if (!vars || !msgs) {
        vb_err_set(err, "out of memory");
        goto done;
    }
    json_t *given = chat_messages_for_template(messages, err);
    if (!given)
        goto done;
    if (system && !starts_with_system(messages))
        json_array_append_new(msgs, message("system", system, strlen(system)));
    json_array_extend(msgs, given);
    json_decref(given);
    json_object_set(vars, "messages", msgs);
    json_object_set_new(vars, "add_generation_prompt", json_boolean(add_generation_prompt));
    json_object_set_new(vars, "tools", json_null());
    json_object_set_new(vars, "documents", json_null());
    json_object_update(vars, ct->vars);
    rc = jinja_render(ct->jinja, vars, out, out_len, err);
done:
    json_decref(msgs);
    json_decref(vars);
    return rc;
}

int chat_template_encode(const chat_template *ct, const json_t *messages, const char *system,
                         tok_ids *ids, vb_err *err)
{
    char *text;
    size_t len;
    if (chat_template_render(ct, messages, system, true, &text, &len, err) < 0)
        return -1;
    int rc = tokenizer_encode(ct->tok, text, len, false, ids, err);
    free(text);
    return rc;
}

int chat_template_encode_msgs(const chat_template *ct, const chat_message *msgs, size_t n,
                              const char *system, tok_ids *ids, vb_err *err)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, message(msgs[i].role, msgs[i].content, chat_message_len(&msgs[i]))) < 0) {
            json_decref(a);
            a = NULL;
        }
    if (!a)
        return vb_err_set(err, "out of memory");
    int rc = chat_template_encode(ct, a, system, ids, err);
    json_decref(a);
    return rc;
}

/* The three chat templates as C (chat_template.h). Each renderer follows its
 * Jinja source line by line; the comments name the Jinja construct where the
 * text is not obvious (trim, strip, default system prompt). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/chat_template.h"
#include "tokenizer/jbuf.h"
#include "tokenizer/py_space.h"

#define QWEN_DEFAULT_SYSTEM "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

/* The text is built in a jbuf (jbuf.h), the Jinja interpreter's buffer. */
static void puts_(jbuf *b, const char *s) { jbuf_puts(b, s); }

/* A message's content with its length: it may hold NUL characters. */
static void put_content(jbuf *b, const chat_message *m)
{
    jbuf_put(b, m->content, chat_message_len(m));
}

/* str with Python's str.strip() applied */
static void put_stripped(jbuf *b, const char *str, size_t n)
{
    size_t st = py_lstrip_off(str, n);
    jbuf_put(b, str + st, py_rstrip_len(str + st, n - st));
}

int chat_template_by_name(const char *name, chat_template_kind *out, vb_err *err)
{
    if (strcmp(name, "chatml") == 0 || strcmp(name, "qwen") == 0)
        *out = CHAT_TEMPLATE_CHATML;
    else if (strcmp(name, "llama3") == 0)
        *out = CHAT_TEMPLATE_LLAMA3;
    else if (strcmp(name, "llama2") == 0 || strcmp(name, "mistral") == 0)
        *out = CHAT_TEMPLATE_LLAMA2;
    else
        return vb_err_set(err, "--chat-template: '%s' is not a template we know (chatml, llama3, llama2)", name);
    return 0;
}

chat_template_kind chat_template_detect(const tokenizer *tok)
{
    const char *t = tokenizer_chat_template_text(tok);
    if (!t)
        return CHAT_TEMPLATE_NONE;
    if (strstr(t, "<|im_start|>"))
        return CHAT_TEMPLATE_CHATML;
    if (strstr(t, "<|start_header_id|>"))
        return CHAT_TEMPLATE_LLAMA3;
    if (strstr(t, "[INST]"))
        return CHAT_TEMPLATE_LLAMA2;
    return CHAT_TEMPLATE_NONE;
}

const char *chat_template_name(chat_template_kind kind)
{
    switch (kind) {
    case CHAT_TEMPLATE_CHATML: return "chatml";
    case CHAT_TEMPLATE_LLAMA3: return "llama3";
    case CHAT_TEMPLATE_LLAMA2: return "llama2";
    default: return "none";
    }
}

static void render_chatml(const tokenizer *tok, const chat_message *m, size_t n, const char *system, jbuf *b)
{
    /* Qwen2.5: a first system message, else the default system prompt (only
     * when the model's template has one). */
    const char *tmpl = tokenizer_chat_template_text(tok);
    size_t i = 0;
    const char *sys = NULL;
    size_t sys_len = 0;
    if (n && strcmp(m[0].role, "system") == 0) {
        sys = m[0].content;
        sys_len = chat_message_len(&m[0]);
        i = 1;
    } else if (system) {
        sys = system;
    } else if (tmpl && strstr(tmpl, QWEN_DEFAULT_SYSTEM)) {
        sys = QWEN_DEFAULT_SYSTEM;
    }
    if (sys) {
        puts_(b, "<|im_start|>system\n");
        jbuf_put(b, sys, i ? sys_len : strlen(sys));
        puts_(b, "<|im_end|>\n");
    }
    for (; i < n; i++) {
        puts_(b, "<|im_start|>");
        puts_(b, m[i].role);
        puts_(b, "\n");
        put_content(b, &m[i]);
        puts_(b, "<|im_end|>\n");
    }
    puts_(b, "<|im_start|>assistant\n");
}

static void render_llama3(const tokenizer *tok, const chat_message *m, size_t n, const char *system, jbuf *b)
{
    const char *bos = tokenizer_bos_token(tok);
    puts_(b, bos ? bos : "<|begin_of_text|>");
    if (system && !(n && strcmp(m[0].role, "system") == 0)) {
        puts_(b, "<|start_header_id|>system<|end_header_id|>\n\n");
        put_stripped(b, system, strlen(system));
        puts_(b, "<|eot_id|>");
    }
    for (size_t i = 0; i < n; i++) {
        puts_(b, "<|start_header_id|>");
        puts_(b, m[i].role);
        puts_(b, "<|end_header_id|>\n\n");
        put_stripped(b, m[i].content, chat_message_len(&m[i])); /* message['content'] | trim */
        puts_(b, "<|eot_id|>");
    }
    puts_(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static int render_llama2(const tokenizer *tok, const chat_message *m, size_t n, const char *system, jbuf *b,
                         vb_err *err)
{
    const char *bos = tokenizer_bos_token(tok), *eos = tokenizer_eos_token(tok);
    size_t i = 0;
    const char *sys = system;
    size_t sys_len = system ? strlen(system) : 0;
    if (n && strcmp(m[0].role, "system") == 0) {
        sys = m[0].content;
        sys_len = chat_message_len(&m[0]);
        i = 1;
    }
    for (size_t k = 0; i < n; i++, k++) {
        bool user = strcmp(m[i].role, "user") == 0;
        if (user != (k % 2 == 0))
            return vb_err_set(err, "chat template llama2: roles must alternate user/assistant (message %zu is '%s')",
                              i, m[i].role);
        /* The [INST] format has no turn for a tool, a function or a later
         * system message: rendered as an assistant turn they became the
         * model's own words, and Mistral v0.1's Jinja drops them without a
         * word; either way the prompt is not the conversation given. */
        if (!user && strcmp(m[i].role, "assistant") != 0)
            return vb_err_set(err, "chat template llama2: message %zu is '%s', which the format has "
                              "no turn for (user and assistant alternate after one system message)",
                              i, m[i].role);
        if (user) {
            puts_(b, bos ? bos : "<s>");
            puts_(b, "[INST] ");
            if (k == 0 && sys) {
                /* '<<SYS>>\n' + system + '\n<</SYS>>\n\n' + content, then .strip() */
                jbuf c = {0};
                puts_(&c, "<<SYS>>\n");
                jbuf_put(&c, sys, sys_len);
                puts_(&c, "\n<</SYS>>\n\n");
                put_content(&c, &m[i]);
                if (c.oom) {
                    free(c.p);
                    return vb_err_set(err, "out of memory");
                }
                put_stripped(b, c.p, c.n);
                free(c.p);
            } else {
                put_stripped(b, m[i].content, chat_message_len(&m[i]));
            }
            puts_(b, " [/INST]");
        } else {
            puts_(b, " ");
            put_stripped(b, m[i].content, chat_message_len(&m[i]));
            puts_(b, " ");
            puts_(b, eos ? eos : "</s>");
        }
    }
    return 0;
}

int chat_render(const tokenizer *tok, chat_template_kind kind, const chat_message *msgs, size_t n,
                const char *system, char **out, size_t *out_len, vb_err *err)
{
    jbuf b = {0};
    puts_(&b, "");
    int rc = 0;
    switch (kind) {
    case CHAT_TEMPLATE_CHATML: render_chatml(tok, msgs, n, system, &b); break;
    case CHAT_TEMPLATE_LLAMA3: render_llama3(tok, msgs, n, system, &b); break;
    case CHAT_TEMPLATE_LLAMA2: rc = render_llama2(tok, msgs, n, system, &b, err); break;
    default: rc = vb_err_set(err, "no chat template: the model's tokenizer_config.json has none we recognise; "
                                  "name one with --chat-template chatml|llama3|llama2");
    }
    if (rc == 0 && b.oom)
        rc = vb_err_set(err, "out of memory rendering a chat");
    if (rc < 0) {
        free(b.p);
        return -1;
    }
    *out = b.p;
    *out_len = b.n;
    return 0;
}

int chat_encode(const tokenizer *tok, chat_template_kind kind, const chat_message *msgs, size_t n,
                const char *system, tok_ids *ids, vb_err *err)
{
    char *text;
    size_t len;
    if (chat_render(tok, kind, msgs, n, system, &text, &len, err) < 0)
        return -1;
    int rc = tokenizer_encode(tok, text, len, false, ids, err);
    free(text);
    return rc;
}

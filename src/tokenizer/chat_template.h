/* Chat templates: a conversation ({role, content} list) to prompt ids.
 *
 * A model's own template (tokenizer_config.json's chat_template, a string
 * or the "default" of a list of named ones, or chat_template.jinja beside
 * it, which wins as in transformers) is run by the Jinja interpreter
 * (jinja.h), so the text equals transformers' apply_chat_template. Three
 * formats are also built in as C (chatml, llama3, llama2), for models
 * without a template, named with --chat-template. The text is then encoded
 * without the post-processor's extras, as transformers does. */
#ifndef VB_CHAT_TEMPLATE_H
#define VB_CHAT_TEMPLATE_H

#include <string.h>

#include "tokenizer/tokenizer.h"

typedef enum chat_template_kind {
    CHAT_TEMPLATE_NONE = 0,
    CHAT_TEMPLATE_CHATML,  /* Qwen: <|im_start|>role\n...<|im_end|>\n */
    CHAT_TEMPLATE_LLAMA3,  /* <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> */
    CHAT_TEMPLATE_LLAMA2,  /* Llama 2 / Mistral: <s>[INST] <<SYS>>...<</SYS>> ... [/INST] */
} chat_template_kind;

typedef struct chat_message {
    const char *role;    /* "system", "user", "assistant" */
    const char *content;
    size_t content_len;  /* its bytes when it holds NUL characters; 0: up to its NUL */
} chat_message;

/* The content's bytes: content_len, or strlen when that is 0. */
static inline size_t chat_message_len(const chat_message *m)
{
    return m->content_len ? m->content_len : strlen(m->content);
}

/* "chatml", "llama3", "llama2" (also "mistral", "qwen"); -1 + err otherwise. */
int chat_template_by_name(const char *name, chat_template_kind *out, vb_err *err);
/* Recognises the model's template text; CHAT_TEMPLATE_NONE when there is
 * none or it is not one we know. */
chat_template_kind chat_template_detect(const tokenizer *tok);
const char *chat_template_name(chat_template_kind kind);

/* Renders msgs (system: an extra system prompt used when msgs has none; may
 * be NULL) with the generation prompt appended. *out is malloc'd. */
int chat_render(const tokenizer *tok, chat_template_kind kind, const chat_message *msgs, size_t n,
                const char *system, char **out, size_t *out_len, vb_err *err);
/* chat_render, then tokenizer_encode(add_special=false) appending to ids. */
int chat_encode(const tokenizer *tok, chat_template_kind kind, const chat_message *msgs, size_t n,
                const char *system, tok_ids *ids, vb_err *err);

/* ---- the template a run uses ---- */
#include <jansson.h>

typedef struct chat_template chat_template;

/* name: NULL for the model's own template (chat_template.jinja in
 * model_dir, else tokenizer_config.json's); a built-in's name (chatml,
 * llama3, llama2, qwen, mistral); or a path to a .jinja file (contains
 * '/' or ends in ".jinja"). kwargs_json: NULL, or a JSON object whose
 * members become template variables (--chat-template-kwargs, e.g.
 * {"enable_thinking": false}). A template that does not parse is refused
 * here, naming its file and line. NULL + err; when the model has no
 * template and name is NULL, NULL with err saying to name one. */
/* Whether --chat-template's name is a file to read (contains '/' or ends
 * in ".jinja") rather than a built-in's name. */
bool chat_template_names_file(const char *name);

chat_template *chat_template_open(const tokenizer *tok, const char *model_dir, const char *name,
                                  const char *kwargs_json, vb_err *err);
void chat_template_free(chat_template *ct);
/* "model" (the model's own), or the built-in's name. */
const char *chat_template_label(const chat_template *ct);

/* Renders messages (a JSON array of message objects, passed to the
 * template as chat_messages_for_template gives them: role, content and any
 * other keys) as
 * apply_chat_template(messages, add_generation_prompt=...) with the
 * model's bos/eos/unk/pad tokens and the kwargs; system, when not NULL and
 * the messages do not start with a system message, is put first as one.
 * *out malloc'd. -1 + err (a render error: the row's error). */
/* The messages as transformers' apply_chat_template hands them to a
 * template (5.x): each message's keys whose value is null left out, the
 * reasoning under "thinking" and "reasoning_content" whichever of
 * reasoning_content / thinking / reasoning gave it. A new array, or NULL
 * with err for an empty conversation or a message that is no object (both
 * refused by transformers too). */
json_t *chat_messages_for_template(const json_t *messages, vb_err *err);

int chat_template_render(const chat_template *ct, const json_t *messages, const char *system,
                         bool add_generation_prompt, char **out, size_t *out_len, vb_err *err);
/* chat_template_render(add_generation_prompt=true), then
 * tokenizer_encode(add_special=false) appending to ids. */
int chat_template_encode(const chat_template *ct, const json_t *messages, const char *system,
                         tok_ids *ids, vb_err *err);
/* The same for {role, content} pairs. */
int chat_template_encode_msgs(const chat_template *ct, const chat_message *msgs, size_t n,
                              const char *system, tok_ids *ids, vb_err *err);

#endif

/* Chat templates: a conversation ({role, content} list) to prompt ids.
 *
 * We do not run Jinja. The three template families we support are
 * recognised from tokenizer_config.json's chat_template text (or named with
 * --chat-template) and rendered by C code that produces the same text as
 * transformers' apply_chat_template(add_generation_prompt=True); the text is
 * then encoded without the post-processor's extras, as transformers does. */
#ifndef VB_CHAT_TEMPLATE_H
#define VB_CHAT_TEMPLATE_H

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
} chat_message;

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

#endif

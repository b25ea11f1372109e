/* From an input row to the prompt's token ids, or the reason the row cannot
 * run (which becomes its finish_reason=error message; never a crash).
 *
 *   /input_ids  used as they are;
 *   /prompts    encoded by the tokenizer (with the post-processor's special
 *               tokens), or with --chat rendered as one user message by the
 *               chat template (system: the row's /system, else --system);
 *   /messages   rendered by the chat template (the model's own Jinja
 *               template unless --chat-template names another); a row the
 *               template fails on (raise_exception, a type error) is an
 *               error row naming the template's line.
 * Every prompt is then checked: not empty, every id inside the model's
 * vocabulary, shorter than the context. Without a tokenizer, text rows are
 * error rows saying so. */
#ifndef VB_RUN_PROMPTS_H
#define VB_RUN_PROMPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/input_reader.h"

/* The tokenizer (issue #4) is used when its headers are in the tree; a
 * tree without them builds too, and text rows become error rows. */
#if defined(__has_include)
#if __has_include("tokenizer/tokenizer.h") && __has_include("tokenizer/chat_template.h") && \
    __has_include("tokenizer/stop.h")
#define RUN_HAVE_TOKENIZER 1
#endif
#endif
#ifndef RUN_HAVE_TOKENIZER
#define RUN_HAVE_TOKENIZER 0
#endif

#if RUN_HAVE_TOKENIZER
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#else
typedef struct tokenizer tokenizer;
typedef struct chat_template chat_template;
static inline void chat_template_free(chat_template *ct) { (void)ct; }
#endif

#define RUN_NO_TOKENIZER_MSG "text prompts need the tokenizer (issue #4)"

typedef struct run_prompt_ctx {
    vb_prompt_kind kind;
    const tokenizer *tok;         /* NULL: none could be loaded */
    const char *tok_error;        /* why not ("" when unknown) */
    const chat_template *chat_tmpl; /* --chat or /messages: the template (NULL: none) */
    bool chat;                    /* --chat */
    const char *system;           /* --system, or NULL */
    int vocab_size;
    long max_model_len;
} run_prompt_ctx;

/* Returns 0 with *ids (malloc'd, *n > 0), 1 for a bad row with why filled
 * (*ids NULL, *n its token count where it has one: a prompt too long for
 * the context, an id out of the vocabulary; else 0), -1 when out of
 * memory. */
int run_prompt_ids(const run_prompt_ctx *c, const vb_input_row *row, int32_t **ids, int *n,
                   char *why, size_t why_len);

#endif

/* A Jinja interpreter for chat templates (the subset published templates
 * use), behaving as transformers' apply_chat_template environment does:
 * trim_blocks and lstrip_blocks on, autoescape off, loop controls
 * (break/continue), raise_exception(), strftime_now(), and tojson as
 * Python's json.dumps(ensure_ascii=False). Lists and dicts are immutable
 * (transformers renders in an ImmutableSandboxedEnvironment); namespace()
 * objects are the one mutable thing.
 *
 * jinja_parse refuses a template it cannot parse (a syntax error, or a tag
 * or construct outside the subset) with "NAME: line N: why"; jinja_render
 * fails with the same form for an error at run time (raise_exception, an
 * undefined value used as an object, a type error), which the caller turns
 * into an error row. Both are bounded: nesting depth, macro recursion,
 * output and memory per render have limits, so a hostile template cannot
 * overflow the stack or take the machine. */
#ifndef VB_JINJA_H
#define VB_JINJA_H

#include <jansson.h>
#include <stddef.h>

#include "util/errors.h"

typedef struct jinja_template jinja_template;

/* src[0..len) is the template text; name stands for it in messages (e.g.
 * "model/tokenizer_config.json chat_template"). NULL + err on a syntax
 * error. */
jinja_template *jinja_parse(const char *src, size_t len, const char *name, vb_err *err);
void jinja_free(jinja_template *t);

/* Renders with the variables of the JSON object vars (messages,
 * add_generation_prompt, bos_token, ...). *out is malloc'd and NUL
 * terminated; *out_len excludes the NUL. -1 + err on a render error. */
int jinja_render(const jinja_template *t, const json_t *vars, char **out, size_t *out_len,
                 vb_err *err);

#endif

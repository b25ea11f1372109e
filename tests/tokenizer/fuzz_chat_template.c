/* libFuzzer target for the Jinja chat-template interpreter: any byte
 * string is parsed as a template (jinja_parse). A parse error must name
 * the template and a line; a template that parses is rendered with a
 * conversation (system, user, assistant, a message with a list content and
 * tool calls), add_generation_prompt, bos/eos tokens and enable_thinking,
 * and must either give NUL-terminated text of the length it reports or
 * fail naming a line. A broken promise aborts, so libFuzzer keeps the
 * input; ASan and UBSan check memory and arithmetic. Built with smaller
 * step and memory limits than the tool's, so that a render stays inside
 * libFuzzer's time limit.
 *
 * Built and run by scripts/fuzz-chat-template; seeds in
 * tests/tokenizer/fuzz_chat_corpus (the published templates and the
 * one-feature cases of fixtures/chat_templates). */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/jinja.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *vars;

static void fail(const char *what, const char *msg)
{
    fprintf(stderr, "fuzz_chat_template: %s (%s)\n", what, msg);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!vars) {
        vars = json_loads(
            "{\"messages\": [{\"role\": \"system\", \"content\": \" Be brief. \"},"
            " {\"role\": \"user\", \"content\": \"Hi {{ x }} \\u00e9\"},"
            " {\"role\": \"assistant\", \"content\": \"<think>\\nr\\n</think>\\n\\nok\","
            "  \"tool_calls\": [{\"function\": {\"name\": \"f\", \"arguments\": {\"a\": [1, 2.5, null]}}}]},"
            " {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"t\"}]}],"
            " \"add_generation_prompt\": true, \"tools\": null, \"documents\": null,"
            " \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"enable_thinking\": false}",
            0, NULL);
        if (!vars)
            fail("fixed variables do not parse", "");
    }
    vb_err err = {{0}};
    jinja_template *t = jinja_parse((const char *)data, size, "fuzz", &err);
    if (!t) {
        if (strncmp(err.msg, "fuzz: line ", 11) != 0 && strcmp(err.msg, "fuzz: out of memory") != 0)
            fail("a parse error does not name the template and line", err.msg);
        return 0;
    }
    char *out = NULL;
    size_t len = 0;
    if (jinja_render(t, vars, &out, &len, &err) == 0) {
        if (!out || out[len] != 0)
            fail("rendered text is not NUL-terminated at its length", "");
        free(out);
    } else if (strncmp(err.msg, "fuzz: line ", 11) != 0 && strstr(err.msg, "out of memory") == NULL) {
        fail("a render error does not name the template and line", err.msg);
    }
    jinja_free(t);
    return 0;
}

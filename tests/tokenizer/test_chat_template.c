/* The Jinja interpreter against transformers (issue 20, part 3).
 *
 * fixtures/chat_templates/ (scripts/make-chat-template-fixtures writes it;
 * SOURCES.md names where each template comes from):
 *   expected.jsonl     published templates (Qwen2.5, Qwen3 with
 *                      enable_thinking, Llama 3 and 3.1, Mistral v1 and v3,
 *                      SmolLM2) rendered by apply_chat_template, with and
 *                      without system, multi-turn, add_generation_prompt on
 *                      and off: every render must be identical;
 *   jinja_cases.jsonl  one Jinja feature per template, rendered by
 *                      transformers' environment; render errors must fail
 *                      here too, and syntax errors must be refused at parse
 *                      naming jinja2's line.
 * Then the chat_template API over a model directory: the model's own
 * template (string, list of named templates, chat_template.jinja beside
 * it), --chat-template-kwargs, a built-in name, and a syntax error refused
 * at open. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/jinja.h"
#include "tokenizer/tokenizer.h"

static const char *fixdir;

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[n] = 0;
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

/* Each line of a JSONL file, parsed; fn returns nothing, checks inside. */
static size_t each_line(const char *name, void (*fn)(json_t *case_))
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", fixdir, name);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f)
        return 0;
    size_t n = 0;
    json_error_t je;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *c = json_loads(line, 0, &je);
        CHECK(c != NULL);
        if (c) {
            fn(c);
            n++;
        }
        json_decref(c);
    }
    free(line);
    fclose(f);
    return n;
}

static size_t n_equal, n_renders;

static void check_render(const jinja_template *t, const json_t *vars, const json_t *c, const char *what)
{
    char *out = NULL;
    size_t len = 0;
    vb_err err = {{0}};
    int rc = jinja_render(t, vars, &out, &len, &err);
    const char *want = json_string_value(json_object_get(c, "text"));
    n_renders++;
    if (json_object_get(c, "error")) {
        if (rc == 0)
            fprintf(stderr, "  %s: rendered, but transformers failed: %s\n", what,
                    json_string_value(json_object_get(c, "error")));
        CHECK(rc < 0);
        if (rc < 0) {
            CHECK(strstr(err.msg, ": line ") != NULL); /* names the template and line */
            n_equal++;
        }
    } else {
        if (rc < 0)
            fprintf(stderr, "  %s: %s\n", what, err.msg);
        CHECK(rc == 0);
        if (rc == 0 && want) {
            bool same = len == json_string_length(json_object_get(c, "text")) && memcmp(out, want, len) == 0;
            if (!same)
                fprintf(stderr, "  %s:\n    got  %s\n    want %s\n", what, out, want);
            CHECK(same);
            n_equal += same;
        }
    }
    free(out);
}

static void jinja_case(json_t *c)
{
    const char *src = json_string_value(json_object_get(c, "source"));
    vb_err err = {{0}};
    jinja_template *t = jinja_parse(src, strlen(src), "case", &err);
    json_t *line = json_object_get(c, "syntax_error_line");
    if (line) {
        char want[64];
        snprintf(want, sizeof want, "case: line %d:", (int)json_integer_value(line));
        if (t || !strstr(err.msg, want))
            fprintf(stderr, "  syntax error expected at line %d: %s\n    %s\n",
                    (int)json_integer_value(line), src, t ? "(parsed)" : err.msg);
        CHECK(t == NULL);
        CHECK(t == NULL && strstr(err.msg, want) != NULL);
        n_renders++;
        n_equal += t == NULL && strstr(err.msg, want) != NULL;
        jinja_free(t);
        return;
    }
    if (!t)
        fprintf(stderr, "  does not parse: %s\n    %s\n", src, err.msg);
    CHECK(t != NULL);
    if (t)
        check_render(t, json_object_get(c, "vars"), c, src);
    jinja_free(t);
}

static void test_jinja_features(void)
{
    n_equal = n_renders = 0;
    size_t n = each_line("jinja_cases.jsonl", jinja_case);
    printf("jinja features: %zu/%zu cases as transformers' Jinja\n", n_equal, n_renders);
    CHECK(n >= 50);
    CHECK_INT_EQ(n_equal, n);
}

static json_t *tokens;

static void template_case(json_t *c)
{
    const char *name = json_string_value(json_object_get(c, "template"));
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.jinja", fixdir, name);
    size_t len;
    char *src = slurp(path, &len);
    CHECK(src != NULL);
    if (!src)
        return;
    vb_err err = {{0}};
    jinja_template *t = jinja_parse(src, len, path, &err);
    if (!t)
        fprintf(stderr, "  %s\n", err.msg);
    CHECK(t != NULL);
    if (t) {
        /* what apply_chat_template passes: messages, tools and documents
         * (None), add_generation_prompt, special tokens, kwargs */
        json_t *vars = json_object();
        vb_err merr = {{0}};
        json_t *given = chat_messages_for_template(json_object_get(c, "messages"), &merr);
        json_object_set_new(vars, "messages", given ? given : json_array());
        json_object_set_new(vars, "tools", json_null());
        json_object_set_new(vars, "documents", json_null());
        json_object_set(vars, "add_generation_prompt", json_object_get(c, "add_generation_prompt"));
        const json_t *tk = json_object_get(tokens, name);
        const char *keys[] = {"bos_token", "eos_token"};
        for (int i = 0; i < 2; i++)
            if (json_is_string(json_object_get(tk, keys[i])))
                json_object_set(vars, keys[i], json_object_get(tk, keys[i]));
        json_object_update(vars, json_object_get(c, "kwargs"));
        char what[256];
        char *msgs = json_dumps(json_object_get(c, "messages"), JSON_COMPACT);
        snprintf(what, sizeof what, "%s agp=%d %.150s", name,
                 json_is_true(json_object_get(c, "add_generation_prompt")), msgs ? msgs : "");
        free(msgs);
        if (json_object_get(vars, "messages") && json_array_size(json_object_get(vars, "messages")))
            check_render(t, vars, c, what);
        else { /* refused before the template: transformers must have refused it */
            if (!json_object_get(c, "error"))
                fprintf(stderr, "  %s: refused (%s), transformers rendered it\n", what, merr.msg);
            CHECK(json_object_get(c, "error") != NULL);
            n_renders++;
            n_equal += json_object_get(c, "error") != NULL;
        }
        json_decref(vars);
    }
    jinja_free(t);
    free(src);
}

static void test_published_templates(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tokens.json", fixdir);
    tokens = json_load_file(path, 0, NULL);
    CHECK(tokens != NULL);
    n_equal = n_renders = 0;
    size_t n = each_line("expected.jsonl", template_case);
    printf("published templates: %zu/%zu renders identical to apply_chat_template\n", n_equal, n_renders);
    CHECK(n >= 100);
    CHECK_INT_EQ(n_equal, n);
    json_decref(tokens);
}

/* ---- the chat_template API over a model directory ---- */
static char model_dir[256];

/* A tokenizer.json with every byte of ASCII as a token and a few added
 * special tokens, enough to encode the rendered ChatML text. */
static void write_model(const char *config_extra, const char *jinja_file)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizer.json", model_dir);
    FILE *f = fopen(path, "w");
    fputs("{\"model\": {\"type\": \"BPE\", \"vocab\": {", f);
    for (int c = 32; c < 127; c++) {
        json_t *s = json_stringn((char[]){(char)c}, 1);
        char *k = json_dumps(s, JSON_ENCODE_ANY);
        fprintf(f, "%s%s: %d", c > 32 ? ", " : "", k, c);
        free(k);
        json_decref(s);
    }
    fputs(", \"\\n\": 10}, \"merges\": []},"
          " \"added_tokens\": [{\"id\": 200, \"content\": \"<|im_start|>\", \"special\": true},"
          " {\"id\": 201, \"content\": \"<|im_end|>\", \"special\": true}]}", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", model_dir);
    f = fopen(path, "w");
    fprintf(f, "{\"eos_token\": \"<|im_end|>\"%s}",
            config_extra);
    fclose(f);
    snprintf(path, sizeof path, "%s/chat_template.jinja", model_dir);
    unlink(path);
    if (jinja_file) {
        f = fopen(path, "w");
        fputs(jinja_file, f);
        fclose(f);
    }
}

static char *render_with(const char *name, const char *kwargs, const char *messages, const char *system,
                         vb_err *err)
{
    vb_err terr = {{0}};
    tokenizer *tok = tokenizer_load(model_dir, &terr);
    if (!tok) {
        snprintf(err->msg, sizeof err->msg, "tokenizer: %.480s", terr.msg);
        return NULL;
    }
    char *out = NULL;
    size_t len;
    chat_template *ct = chat_template_open(tok, model_dir, name, kwargs, err);
    json_t *m = json_loads(messages, 0, NULL);
    if (ct && chat_template_render(ct, m, system, true, &out, &len, err) < 0)
        out = NULL;
    tok_ids ids = {0};
    if (ct && out) { /* and the ids: the rendered text without extras */
        vb_err e2 = {{0}};
        int erc = chat_template_encode(ct, m, system, &ids, &e2);
        if (erc)
            fprintf(stderr, "  encode: %s\n", e2.msg);
        CHECK(erc == 0);
        CHECK(ids.n > 0 && ids.ids[0] == (strncmp(out, "<|im_start|>", 12) == 0 ? 200 : (unsigned char)out[0]));
    }
    free(ids.ids);
    json_decref(m);
    chat_template_free(ct);
    tokenizer_free(tok);
    return out;
}

#define QWEN3_TAIL "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}" \
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}"

static void test_model_directory(void)
{
    snprintf(model_dir, sizeof model_dir, "/tmp/vb-chat-XXXXXX");
    CHECK(mkdtemp(model_dir) != NULL);
    vb_err err = {{0}};
    const char *msgs = "[{\"role\": \"user\", \"content\": \"Hi\"}]";

    /* the model's own template as a string, with kwargs */
    write_model(", \"chat_template\": \"{% for m in messages %}<|im_start|>{{ m.role }}\\n{{ m.content }}<|im_end|>\\n"
                "{% endfor %}" QWEN3_TAIL "\"", NULL);
    char *out = render_with(NULL, NULL, msgs, NULL, &err);
    CHECK_STR_EQ(out, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    free(out);
    out = render_with(NULL, "{\"enable_thinking\": false}", msgs, NULL, &err);
    CHECK_STR_EQ(out, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
    free(out);
    /* --system goes first as a system message when the row has none */
    out = render_with(NULL, NULL, msgs, "Be brief.", &err);
    CHECK_STR_EQ(out, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    free(out);
    CHECK(render_with(NULL, "[1]", msgs, NULL, &err) == NULL);
    CHECK(strstr(err.msg, "--chat-template-kwargs") != NULL);

    /* a list of named templates: the default one */
    write_model(", \"chat_template\": [{\"name\": \"tool_use\", \"template\": \"TOOLS\"},"
                " {\"name\": \"default\", \"template\": \"D{{ messages | length }}{{ eos_token }}\"}]", NULL);
    out = render_with(NULL, NULL, msgs, NULL, &err);
    CHECK_STR_EQ(out, "D1<|im_end|>");
    free(out);
    /* with tools, the "tool_use" one, as transformers' get_chat_template
     * picks it (the default was used, session 31) */
    out = render_with(NULL, "{\"tools\": [{\"name\": \"f\"}]}", msgs, NULL, &err);
    CHECK_STR_EQ(out, "TOOLS");
    free(out);
    /* and additional_chat_templates/tool_use.jinja, transformers 5's file */
    char extra[512];
    snprintf(extra, sizeof extra, "%s/additional_chat_templates", model_dir);
    CHECK(mkdir(extra, 0700) == 0);
    snprintf(extra, sizeof extra, "%s/additional_chat_templates/tool_use.jinja", model_dir);
    FILE *tu = fopen(extra, "w");
    CHECK(tu != NULL);
    if (tu) {
        fputs("FILE{{ tools | length }}", tu);
        fclose(tu);
    }
    write_model("", "J{{ messages[0].content }}");
    out = render_with(NULL, "{\"tools\": [{\"name\": \"f\"}]}", msgs, NULL, &err);
    CHECK_STR_EQ(out, "FILE1");
    free(out);
    out = render_with(NULL, NULL, msgs, NULL, &err);
    CHECK_STR_EQ(out, "JHi");
    free(out);
    unlink(extra);
    snprintf(extra, sizeof extra, "%s/additional_chat_templates", model_dir);
    rmdir(extra);

    /* chat_template.jinja beside it wins over tokenizer_config.json's */
    write_model(", \"chat_template\": \"CONFIG\"", "J{{ messages[0].content }}{{ add_generation_prompt }}");
    out = render_with(NULL, NULL, msgs, NULL, &err);
    CHECK_STR_EQ(out, "JHiTrue");
    free(out);

    /* a built-in by name still works */
    out = render_with("chatml", NULL, msgs, NULL, &err);
    CHECK_STR_EQ(out, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    free(out);

    /* a syntax error is refused at open, naming the file and line */
    write_model("", "ok\n{% if x %}\nnever closed");
    CHECK(render_with(NULL, NULL, msgs, NULL, &err) == NULL);
    CHECK(strstr(err.msg, "chat_template.jinja: line ") != NULL);
    /* a render error (raise_exception) names the template and line */
    write_model("", "a\n{{ raise_exception('no system role') }}");
    CHECK(render_with(NULL, NULL, msgs, NULL, &err) == NULL);
    CHECK(strstr(err.msg, "line 2: the template raised an error: no system role") != NULL);
    /* no template at all: told to name one */
    write_model("", NULL);
    CHECK(render_with(NULL, NULL, msgs, NULL, &err) == NULL);
    CHECK(strstr(err.msg, "--chat-template") != NULL);

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", model_dir);
    CHECK(system(cmd) == 0);
}

/* Bounded: deep nesting, recursion and runaway output fail cleanly. */
static void test_limits(void)
{
    vb_err err = {{0}};
    char *deep = malloc(20001);
    for (int i = 0; i < 20000; i++)
        deep[i] = i < 10000 ? '(' : ')';
    deep[20000] = 0;
    char src[30000];
    snprintf(src, sizeof src, "{{ %s }}", deep);
    free(deep);
    CHECK(jinja_parse(src, strlen(src), "deep", &err) == NULL);
    CHECK(strstr(err.msg, "nested too deeply") != NULL);
    /* chains count as nesting: 20,000 "+ 1" (or filters, subscripts, ~)
     * parsed, and the render overflowed the stack (session 31); 150 links
     * still render */
    static const char *const links[] = {" + 1", "|string", "[0]", " ~ 1", " and 1"};
    for (size_t k = 0; k < sizeof links / sizeof links[0]; k++) {
        for (int n = 150; n <= 20000; n += 19850) {
            size_t ln = strlen(links[k]);
            char *chain = malloc(32 + (size_t)n * ln);
            size_t o = (size_t)sprintf(chain, "{{ %s", k == 2 ? "'x'" : "1");
            for (int i = 0; i < n; i++, o += ln)
                memcpy(chain + o, links[k], ln);
            strcpy(chain + o, " }}");
            jinja_template *ct = jinja_parse(chain, strlen(chain), "chain", &err);
            if (n > 200) {
                CHECK(ct == NULL && strstr(err.msg, "nested too deeply") != NULL);
            } else {
                char *r = NULL;
                size_t rl;
                json_t *none = json_object();
                CHECK(ct && jinja_render(ct, none, &r, &rl, &err) == 0);
                free(r);
                json_decref(none);
            }
            jinja_free(ct);
            free(chain);
        }
    }
    const char *rec = "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}";
    jinja_template *t = jinja_parse(rec, strlen(rec), "rec", &err);
    CHECK(t != NULL);
    char *out = NULL;
    size_t len;
    json_t *vars = json_object();
    CHECK(t && jinja_render(t, vars, &out, &len, &err) < 0);
    CHECK(strstr(err.msg, "nested more than") != NULL);
    jinja_free(t);
    /* an empty string repeated a huge number of times is empty, at once
     * (the fuzzer found the loop that ran it 4e12 times) */
    const char *empty_rep = "{{ '' * 4444444444440 }}|{{ 'ab' * 3 }}";
    t = jinja_parse(empty_rep, strlen(empty_rep), "empty_rep", &err);
    CHECK(t && jinja_render(t, vars, &out, &len, &err) == 0);
    CHECK(out && len == 7 && memcmp(out, "|ababab", 7) == 0);
    free(out);
    out = NULL;
    jinja_free(t);
    /* the render's size limit reached inside a filter names the limit,
     * not "out of memory" (a 16 MB string as a list of 16M values) */
    const char *as_list = "{{ ('x' * 16000000) | list | length }}";
    t = jinja_parse(as_list, strlen(as_list), "as_list", &err);
    CHECK(t && jinja_render(t, vars, &out, &len, &err) < 0);
    CHECK(strstr(err.msg, "as_list: line 1: the template used more than 256 MiB") != NULL);
    jinja_free(t);
    const char *big = "{% for i in range(1000000) %}{% for j in range(1000000) %}x{% endfor %}{% endfor %}";
    t = jinja_parse(big, strlen(big), "big", &err);
    CHECK(t && jinja_render(t, vars, &out, &len, &err) < 0);
    jinja_free(t);
    json_decref(vars);
}

/* A message holding an object of many keys (a tool call's arguments of
 * 300,000 keys, 5 MB of JSON): each key was looked up among those before
 * it on the way into the template, n^2 / 2 comparisons (40,000 keys took
 * 14 s, 300,000 would take many minutes; transformers takes well under a
 * second). The bound is CPU time, far above what the render needs. */
static void test_many_keys(void)
{
    enum { KEYS = 300000 };
    json_t *args = json_object();
    char key[32];
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof key, "k%d", i);
        json_object_set_new(args, key, json_integer(i));
    }
    json_t *vars = json_pack("{s:[{s:s, s:s, s:o}]}", "messages", "role", "user", "content", "x",
                             "args", args);
    const char *src = "{{ messages[0].args | length }} {{ messages[0].args['k299999'] }}";
    vb_err err = {{0}};
    jinja_template *t = jinja_parse(src, strlen(src), "many_keys", &err);
    char *out = NULL;
    size_t len = 0;
    clock_t t0 = clock();
    CHECK(t && jinja_render(t, vars, &out, &len, &err) == 0);
    double cpu_s = (double)(clock() - t0) / CLOCKS_PER_SEC;
    CHECK_STR_EQ(out ? out : "", "300000 299999");
    CHECK(cpu_s < 20.0);
    free(out);
    jinja_free(t);
    json_decref(vars);
}

int main(int argc, char **argv)
{
    fixdir = argc > 1 ? argv[1] : "tests/tokenizer/fixtures/chat_templates";
    RUN_TEST(test_jinja_features);
    RUN_TEST(test_published_templates);
    RUN_TEST(test_model_directory);
    RUN_TEST(test_limits);
    RUN_TEST(test_many_keys);
    return test_summary();
}

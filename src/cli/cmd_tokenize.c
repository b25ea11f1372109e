/* `voltbatch tokenize`: JSON Lines text in, token ids out (or back with
 * --decode), with the model's own tokenizer and chat template. Users count
 * and debug prompts with it; tests check the tokenizer from outside with it.
 *
 * Each input line is a JSON string, or an object with "text" (or, with
 * --chat, "messages": [{"role", "content"}...]); with --decode, a JSON array
 * of ids (or an object with "ids"). Each output line is a JSON array of ids
 * (a JSON string with --decode). A bad line gives {"error": "line N: ..."}
 * in its place, so lines stay aligned, and exit status 2 at the end. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "util/exit_codes.h"

enum { T_MODEL = 256, T_CHAT, T_DECODE, T_CHAT_TEMPLATE, T_CHAT_KWARGS, T_SYSTEM, T_KEEP_SPECIAL, T_HELP };

static const struct option tokenize_options[] = {
    {"model", required_argument, NULL, T_MODEL},
    {"chat", no_argument, NULL, T_CHAT},
    {"decode", no_argument, NULL, T_DECODE},
    {"chat-template", required_argument, NULL, T_CHAT_TEMPLATE},
    {"chat-template-kwargs", required_argument, NULL, T_CHAT_KWARGS},
    {"system", required_argument, NULL, T_SYSTEM},
    {"keep-special", no_argument, NULL, T_KEEP_SPECIAL},
    {"help", no_argument, NULL, T_HELP},
    {NULL, 0, NULL, 0},
};

static void tokenize_help(void)
{
    fputs("usage: voltbatch tokenize --model DIR [--chat [--chat-template NAME|FILE.jinja]\n"
          "                          [--chat-template-kwargs JSON] [--system TEXT]]\n"
          "                          [--decode [--keep-special]] < in.jsonl > out.jsonl\n"
          "\n"
          "Reads JSON Lines from stdin: strings, or objects with \"text\" (with --chat also\n"
          "\"messages\": [{\"role\", \"content\"}]); writes one JSON array of ids per line.\n"
          "--decode reads arrays of ids (or objects with \"ids\") and writes strings;\n"
          "special tokens are skipped unless --keep-special. A bad line gives\n"
          "{\"error\": ...} in its place and exit status 2.\n",
          stdout);
}

typedef struct tokenize_ctx {
    const tokenizer *tok;
    bool chat, decode, keep_special;
    const chat_template *tmpl;
    const char *system;
} tokenize_ctx;

/* One line to one JSON value on stdout; -1 with err on a bad line. */
static int tokenize_line(const tokenize_ctx *c, json_t *in, vb_err *err)
{
    json_t *res = NULL;
    if (c->decode) {
        json_t *arr = json_is_object(in) ? json_object_get(in, "ids") : in;
        if (!json_is_array(arr))
            return vb_err_set(err, "expected an array of ids (or an object with \"ids\")");
        size_t n = json_array_size(arr);
        int32_t *ids = malloc(sizeof(int32_t) * (n ? n : 1));
        if (!ids)
            return vb_err_set(err, "out of memory");
        for (size_t i = 0; i < n; i++) {
            json_t *v = json_array_get(arr, i);
            json_int_t id = json_integer_value(v);
            /* an id that tokenizer.json leaves unassigned too: the decode
             * called it "outside the vocabulary (0..N)", an id inside */
            if (!json_is_integer(v) || id < 0 || id > INT32_MAX ||
                !tokenizer_has_id(c->tok, (int32_t)id)) {
                free(ids);
                return vb_err_set(err, "element %zu is not a token id of this tokenizer", i);
            }
            ids[i] = (int32_t)id;
        }
        char *text = NULL;
        size_t len = 0;
        int rc = tokenizer_decode(c->tok, ids, n, !c->keep_special, &text, &len, err);
        free(ids);
        if (rc)
            return -1;
        res = json_stringn(text, len);
        free(text);
    } else {
        tok_ids ids = {0};
        int rc = 0;
        json_t *msgs = json_is_object(in) ? json_object_get(in, "messages") : NULL;
        const json_t *tv = json_is_string(in) ? in : json_is_object(in) ? json_object_get(in, "text") : NULL;
        const char *text = json_string_value(tv);
        /* the string's length, not strlen: a NUL character is text (issue 20) */
        size_t text_len = text ? json_string_length(tv) : 0;
        /* one of them, as pack takes "prompt" or "messages": with both,
         * --chat took the messages and plain mode the text, the other
         * dropped without a word */
        if (msgs && json_object_get(in, "text"))
            return vb_err_set(err, "has both \"text\" and \"messages\" (give one)");
        if (c->chat && json_is_array(msgs)) {
            rc = chat_template_encode(c->tmpl, msgs, c->system, &ids, err);
        } else if (!text && msgs && !c->chat) {
            /* pack's "messages" lines: the option that reads them, named */
            return vb_err_set(err, "\"messages\" is a chat prompt: add --chat");
        } else if (!text) {
            return vb_err_set(err, "expected a JSON string or an object with \"text\"%s",
                              c->chat ? " or \"messages\"" : "");
        } else if (c->chat) {
            chat_message m = {"user", text, text_len};
            rc = chat_template_encode_msgs(c->tmpl, &m, 1, c->system, &ids, err);
        } else {
            rc = tokenizer_encode(c->tok, text, text_len, true, &ids, err);
        }
        if (rc) {
            free(ids.ids);
            return -1;
        }
        res = json_array();
        for (size_t i = 0; res && i < ids.n; i++)
            json_array_append_new(res, json_integer(ids.ids[i]));
        free(ids.ids);
    }
    if (!res)
        return vb_err_set(err, "out of memory");
    char *s = json_dumps(res, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(res);
    if (!s)
        return vb_err_set(err, "out of memory");
    puts(s);
    free(s);
    return 0;
}

int cmd_tokenize(int argc, char **argv)
{
    tokenize_ctx c = {0};
    const char *model = NULL, *template_name = NULL, *kwargs = NULL;
    int opt;
    while ((opt = cli_next_option("tokenize", argc, argv, tokenize_options)) != -1) {
        switch (opt) {
        case T_MODEL: model = optarg; break;
        case T_CHAT: c.chat = true; break;
        case T_DECODE: c.decode = true; break;
        case T_CHAT_TEMPLATE: template_name = optarg; c.chat = true; break;
        case T_CHAT_KWARGS: kwargs = optarg; break;
        case T_SYSTEM:
            c.system = optarg;
            if (cli_require_utf8("tokenize", "--system", optarg))
                return VB_EXIT_USAGE;
            break;
        case T_KEEP_SPECIAL: c.keep_special = true; break;
        case T_HELP:
        case 'h': tokenize_help(); return VB_EXIT_OK;
        default: return VB_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_usage_error("tokenize", "unexpected argument '%s'", argv[optind]);
        return VB_EXIT_USAGE;
    }
    if (!model) {
        cli_usage_error("tokenize", "--model DIR is required");
        return VB_EXIT_USAGE;
    }
    if (c.chat && c.decode) {
        cli_usage_error("tokenize", "--chat and --decode contradict each other");
        return VB_EXIT_USAGE;
    }
    /* options that only apply with another: ignoring one silently gives
     * ids the user did not ask for */
    const char *needs_chat = c.system ? "--system" : kwargs ? "--chat-template-kwargs" : NULL;
    if (needs_chat && !c.chat) {
        cli_usage_error("tokenize", "%s applies to chat prompts: add --chat", needs_chat);
        return VB_EXIT_USAGE;
    }
    if (c.keep_special && !c.decode) {
        cli_usage_error("tokenize", "--keep-special applies to --decode");
        return VB_EXIT_USAGE;
    }
    vb_err err = {{0}};
    tokenizer *tok = tokenizer_load(model, &err);
    if (!tok) {
        fprintf(stderr, "voltbatch tokenize: %s\n", err.msg);
        return VB_EXIT_USAGE;
    }
    c.tok = tok;
    chat_template *tmpl = NULL;
    if (c.chat) {
        /* the model's own template unless --chat-template names one; a
         * template that does not parse is refused here */
        if (!(tmpl = chat_template_open(tok, model, template_name, kwargs, &err))) {
            fprintf(stderr, "voltbatch tokenize: %s\n", err.msg);
            tokenizer_free(tok);
            return VB_EXIT_USAGE;
        }
        c.tmpl = tmpl;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0, bad = 0;
    while ((n = getline(&line, &cap, stdin)) != -1) {
        lineno++;
        /* a UTF-8 byte order mark before the first line: dropped, as pack
         * drops it (RFC 8259 lets a parser ignore it) */
        if (lineno == 1 && n >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            memmove(line, line + 3, (size_t)n - 2);
            n -= 3;
        }
        json_error_t je;
        json_t *in = json_loadb(line, (size_t)n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        int rc = in ? tokenize_line(&c, in, &err) : vb_err_set(&err, "not JSON: %s", je.text);
        json_decref(in);
        if (rc) {
            bad++;
            char msg[VB_ERR_LEN + 64];
            snprintf(msg, sizeof msg, "line %ld: %s", lineno, err.msg);
            fprintf(stderr, "voltbatch tokenize: stdin: %s\n", msg);
            json_t *e = json_pack("{s:s}", "error", msg);
            char *s = e ? json_dumps(e, JSON_COMPACT) : NULL;
            puts(s ? s : "{\"error\": \"out of memory\"}");
            free(s);
            json_decref(e);
        }
    }
    free(line);
    chat_template_free(tmpl);
    tokenizer_free(tok);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "voltbatch tokenize: cannot write stdout\n");
        return VB_EXIT_FAILURE;
    }
    return bad ? VB_EXIT_USAGE : VB_EXIT_OK;
}

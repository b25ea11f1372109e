/* JSON Lines / text -> HDF5 input schema; see pack.h. */
#include "io/pack.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/pack_columns.h"
#include "util/log.h"
#include "util/stop_unlink.h"
#include "util/utf8_valid.h"
#include "util/writable.h"

/* The parse's state across blocks (the columns' rows are in a pack_block,
 * written and freed every PACK_BLOCK rows). */
typedef struct packer {
    pack_block *b;
    pack_seen seen;
    bool warned_key; /* a key pack does not read was reported */
} packer;

/* Frees the block's rows and empties it for the next ones. */
static void block_clear(pack_block *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->text[i]);
        free(b->id_str[i]);
        free(b->system[i]);
    }
    b->n = 0;
}

static bool blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
            return false;
    return true;
}

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static char *memdup0(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* An optional string key that must not hold a NUL character (ids and
 * system prompts are C strings on their way through the run). */
static int check_no_nul(const json_t *v, const char *key, const char *path, long lineno, vb_err *err)
{
    if (json_is_string(v) && strlen(json_string_value(v)) != json_string_length(v))
        return vb_err_set(err, "%s:%ld: \"%s\" holds a NUL character (\\u0000), which only \"prompt\" "
                          "and \"messages\" may", path, lineno, key);
    return 0;
}

/* A key pack does not read is left out of the file: said once (the first
 * such key and its line), since a typo ("max_tokens") would otherwise run
 * every row with the default silently. Other keys are kept by users for
 * their own bookkeeping, so this is a warning, not an error. */
static void warn_unread_key(packer *p, const json_t *o, const char *path, long lineno)
{
    static const char *const known[] = {"prompt", "messages", "id", "system", "max_new_tokens",
                                        "seed"};
    const char *key;
    json_t *v;
    if (p->warned_key)
        return;
    json_object_foreach((json_t *)o, key, v) {
        bool read = false;
        for (size_t k = 0; k < sizeof known / sizeof known[0] && !read; k++)
            read = strcmp(key, known[k]) == 0;
        if (!read) {
            p->warned_key = true;
            vb_warn("%s:%ld: \"%s\" is not a key pack reads (prompt, messages, id, system, "
                    "max_new_tokens, seed): left out; later such keys are not reported", path,
                    lineno, key);
            return;
        }
    }
}

/* Parses one JSONL object into the last row, b->n - 1. */
static int parse_json_line(packer *p, const char *line, size_t len, const char *path, long lineno,
                           vb_err *err)
{
    pack_block *b = p->b;
    pack_seen *s = &p->seen;
    json_error_t je;
    /* \u0000 is text like any other character (issue 20) */
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    size_t i = b->n - 1; /* the caller has counted the row already */
    int rc = -1;
    if (!o) {
        /* jansson reads integers as 64-bit signed: a seed past 2^63 - 1 */
        vb_err_set(err, "%s:%ld: not valid JSON: %s (column %d)%s", path, lineno, je.text,
                   je.column, strstr(je.text, "too big integer")
                                  ? "; integers here must be below 2^63" : "");
        return -1;
    }
    if (!json_is_object(o)) {
        vb_err_set(err, "%s:%ld: expected a JSON object with \"prompt\" or \"messages\"", path,
                   lineno);
        goto done;
    }
    json_t *prompt = json_object_get(o, "prompt"), *msgs = json_object_get(o, "messages");
    if (prompt && msgs) {
        vb_err_set(err, "%s:%ld: has both \"prompt\" and \"messages\" (give one)", path, lineno);
        goto done;
    }
    if (!prompt && !msgs) {
        vb_err_set(err, "%s:%ld: needs \"prompt\" (a string) or \"messages\" (a chat array)",
                   path, lineno);
        goto done;
    }
    bool is_msgs = msgs != NULL;
    if (s->kind_set && is_msgs != s->messages) {
        vb_err_set(err, "%s:%ld: has \"%s\" but earlier lines have \"%s\" (one file holds one "
                   "kind)", path, lineno, is_msgs ? "messages" : "prompt",
                   s->messages ? "messages" : "prompt");
        goto done;
    }
    s->kind_set = true;
    s->messages = is_msgs;
    if (prompt) {
        if (!json_is_string(prompt)) {
            vb_err_set(err, "%s:%ld: \"prompt\" must be a string", path, lineno);
            goto done;
        }
        b->text_len[i] = json_string_length(prompt);
        b->text[i] = memdup0(json_string_value(prompt), b->text_len[i]);
    } else {
        size_t k;
        json_t *m;
        if (!json_is_array(msgs)) {
            vb_err_set(err, "%s:%ld: \"messages\" must be an array of {\"role\", \"content\"}",
                       path, lineno);
            goto done;
        }
        /* a content of any kind, as generate takes it: null (an OpenAI
         * assistant turn with tool_calls), a list of {"type": "text"}
         * parts; the template renders or refuses it, row by row */
        json_array_foreach(msgs, k, m) {
            if (!json_is_object(m) || !json_is_string(json_object_get(m, "role")) ||
                !json_object_get(m, "content")) {
                vb_err_set(err, "%s:%ld: messages[%zu] needs a string \"role\" and a \"content\"",
                           path, lineno, k);
                goto done;
            }
        }
        /* a NUL in a content is written escaped, as \u0000 */
        b->text[i] = json_dumps(msgs, JSON_COMPACT);
        b->text_len[i] = b->text[i] ? strlen(b->text[i]) : 0;
    }
    if (!b->text[i]) {
        vb_err_set(err, "%s:%ld: out of memory", path, lineno);
        goto done;
    }
    json_t *v = json_object_get(o, "id");
    if (check_no_nul(v, "id", path, lineno, err) < 0 ||
        check_no_nul(json_object_get(o, "system"), "system", path, lineno, err) < 0)
        goto done;
    if (v && !json_is_null(v)) {
        s->any_id = true;
        if (json_is_integer(v)) {
            b->id_is_int[i] = true;
            s->some_int_id = true;
            b->id_int[i] = json_integer_value(v);
            char buf[32];
            snprintf(buf, sizeof buf, "%" PRId64, b->id_int[i]);
            b->id_str[i] = strdup(buf);
        } else if (json_is_string(v)) {
            s->all_ids_int = false;
            b->id_str[i] = strdup(json_string_value(v));
        } else {
            vb_err_set(err, "%s:%ld: \"id\" must be a string or an integer", path, lineno);
            goto done;
        }
    } else {
        s->all_ids_int = false;
    }
    v = json_object_get(o, "system");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v)) {
            vb_err_set(err, "%s:%ld: \"system\" must be a string", path, lineno);
            goto done;
        }
        s->any_system = true;
        b->system[i] = strdup(json_string_value(v));
    }
    v = json_object_get(o, "max_new_tokens");
    if (v && !json_is_null(v)) {
        /* -1 in the file is "unset": a row gives a count or leaves it out */
        if (!json_is_integer(v) || json_integer_value(v) > INT32_MAX ||
            json_integer_value(v) < 0) {
            vb_err_set(err, "%s:%ld: \"max_new_tokens\" must be an integer from 0 to %d (or "
                       "left out)", path, lineno, INT32_MAX);
            goto done;
        }
        s->any_max = true;
        b->max_new_tokens[i] = (int32_t)json_integer_value(v);
    }
    v = json_object_get(o, "seed");
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            vb_err_set(err, "%s:%ld: \"seed\" must be a non-negative integer", path, lineno);
            goto done;
        }
        s->any_seed = true;
        b->seed[i] = json_integer_value(v);
    }
    warn_unread_key(p, o, path, lineno);
    rc = 0;
done:
    json_decref(o);
    return rc;
}

/* The input's lines as pack takes them: a byte order mark dropped, blank
 * lines skipped, the line number kept for errors. */
typedef struct line_src {
    FILE *fp;
    const char *path;
    char *line;
    size_t cap;
    long lineno;
} line_src;

/* The next non-blank line in src->line (len bytes, NUL after them): 1, or
 * 0 at the end, or -1 with err set. */
static int next_line(line_src *src, size_t *len_out, vb_err *err)
{
    ssize_t len;
    while ((len = getline(&src->line, &src->cap, src->fp)) >= 0) {
        char *line = src->line;
        src->lineno++;
        /* A UTF-8 byte order mark before the first line (files saved by
         * Windows editors, Excel, PowerShell 5) is no part of a prompt and
         * no JSON: dropped (RFC 8259 lets a parser ignore it). */
        if (src->lineno == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            memmove(line, line + 3, (size_t)len - 2); /* and the NUL getline put */
            len -= 3;
        }
        /* UTF-16 (Windows "Unicode", PowerShell's Out-File): its mark is
         * named, not "not valid UTF-8 (byte 1)" or a JSON error */
        if (src->lineno == 1 && len >= 2 &&
            (memcmp(line, "\xFF\xFE", 2) == 0 || memcmp(line, "\xFE\xFF", 2) == 0))
            return vb_err_set(err, "%s: starts with a UTF-16 byte order mark; pack reads UTF-8 "
                              "(convert it first, e.g. iconv -f UTF-16 -t UTF-8)", src->path);
        /* a NUL byte in a text line is a NUL character of the prompt; in a
         * JSON line, where JSON forbids it raw, Jansson names it */
        if (blank(line) && (size_t)len == strlen(line))
            continue;
        *len_out = (size_t)len;
        return 1;
    }
    if (ferror(src->fp))
        return vb_err_set(err, "%s: read error", src->path);
    return 0;
}

/* JSON Lines or text: by the file's extension, else by its first
 * non-blank line (a '{' first: JSON Lines). */
typedef struct input_kind {
    bool decided, jsonl;
} input_kind;

static input_kind kind_by_name(const char *path)
{
    bool jsonl = ends_with(path, ".jsonl") || ends_with(path, ".json") ||
                 ends_with(path, ".ndjson");
    return (input_kind){.decided = jsonl || ends_with(path, ".txt"), .jsonl = jsonl};
}

static bool kind_jsonl(input_kind *k, const char *line)
{
    if (!k->decided) {
        while (*line == ' ' || *line == '\t')
            line++;
        k->jsonl = *line == '{';
        k->decided = true;
    }
    return k->jsonl;
}

/* Whether the prompt of this line holds a NUL character: a NUL byte in a
 * text line; in a JSON line, where a NUL can only be written \u0000, a
 * "prompt" string holding one (only lines with that escape are parsed; one
 * that does not parse is the second pass's to report). */
static bool prompt_has_nul(bool jsonl, const char *line, size_t len)
{
    if (!jsonl)
        return memchr(line, '\0', len) != NULL;
    const char *p = line, *end = line + len;
    while ((p = memchr(p, '\\', (size_t)(end - p))) && (end - p < 6 || memcmp(p, "\\u0000", 6)))
        p++;
    if (!p)
        return false;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
    json_t *prompt = json_object_get(o, "prompt");
    bool nul = json_is_string(prompt) &&
               strlen(json_string_value(prompt)) != json_string_length(prompt);
    json_decref(o);
    return nul;
}

/* The rows of a regular input file, and whether some prompt holds a NUL,
 * found before it is parsed so that every column is written with its final
 * size and form (pack_columns.h): /prompts is then never rewritten, which
 * would leave the strings' space in the file. rows 0 for a pipe or other
 * stream, which is read once. The file is then read again from its start. */
static int count_rows(line_src *src, uint64_t *rows, bool *nul, vb_err *err)
{
    struct stat st;
    *rows = 0;
    *nul = false;
    if (fstat(fileno(src->fp), &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    input_kind kind = kind_by_name(src->path);
    size_t len;
    int got;
    while ((got = next_line(src, &len, err)) > 0) {
        (*rows)++;
        if (!*nul)
            *nul = prompt_has_nul(kind_jsonl(&kind, src->line), src->line, len);
    }
    if (got < 0)
        return -1;
    if (fseek(src->fp, 0, SEEK_SET) != 0)
        return vb_err_set(err, "%s: cannot read it again from its start", src->path);
    src->lineno = 0;
    return 0;
}

/* Parses line (len bytes) into a new last row of p->b. */
static int parse_line(packer *p, bool jsonl, char *line, size_t len, const line_src *src,
                      vb_err *err)
{
    pack_block *b = p->b;
    size_t i = b->n;
    b->text[i] = b->id_str[i] = b->system[i] = NULL;
    b->id_is_int[i] = false;
    b->id_int[i] = 0;
    b->max_new_tokens[i] = -1;
    b->seed[i] = -1;
    b->text_len[i] = 0;
    b->n++; /* counted now so block_clear frees a half-filled row */
    if (jsonl)
        return parse_json_line(p, line, len, src->path, src->lineno, err);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    size_t bad = 0;
    if (!vb_utf8_valid(line, len, &bad))
        return vb_err_set(err, "%s:%ld: not valid UTF-8 (byte %zu)", src->path, src->lineno,
                          bad + 1);
    if (!(b->text[i] = memdup0(line, len)))
        return vb_err_set(err, "%s:%ld: out of memory", src->path, src->lineno);
    b->text_len[i] = len;
    return 0;
}

/* Writes the block's rows (creating the file at the first) and frees them. */
static int flush_block(packer *p, pack_out *o, const char *tmp, uint64_t known, bool nul,
                       vb_err *err)
{
    int rc = 0;
    if (o->f < 0)
        rc = pack_out_create(o, tmp, known, nul, err);
    if (rc == 0 && pack_out_block(o, p->b, &p->seen, err) < 0)
        rc = vb_err_prefix(err, "%s", tmp);
    block_clear(p->b);
    return rc;
}

/* A regular file that changed between the count and the parse: the
 * columns were made for the rows counted. */
static int changed_under_us(const char *path, vb_err *err)
{
    return vb_err_set(err, "%s: changed while pack read it (its lines differ from when they were "
                      "counted); run pack again once nothing writes to it", path);
}

/* Reads the input a line at a time, writing each PACK_BLOCK rows to tmp. */
static int pack_lines(packer *p, line_src *src, pack_out *o, const char *tmp, vb_err *err)
{
    uint64_t known = 0, rows = 0;
    bool nul = false;
    if (count_rows(src, &known, &nul, err) < 0)
        return -1;
    input_kind kind = kind_by_name(src->path);
    size_t len;
    int got;
    p->seen.all_ids_int = true;
    while ((got = next_line(src, &len, err)) > 0) {
        bool jsonl = kind_jsonl(&kind, src->line);
        if (known && rows == known)
            return changed_under_us(src->path, err);
        rows++;
        if (parse_line(p, jsonl, src->line, len, src, err) < 0)
            return -1;
        if (p->b->n == PACK_BLOCK && flush_block(p, o, tmp, known, nul, err) < 0)
            return -1;
    }
    if (got < 0)
        return -1;
    if (rows == 0)
        return vb_err_set(err, "%s: no prompts (the file is empty or blank)", src->path);
    if (known && rows != known)
        return changed_under_us(src->path, err);
    if (p->b->n && flush_block(p, o, tmp, known, nul, err) < 0)
        return -1;
    /* /prompts was made the byte form for a NUL no row had after all */
    if (nul && !o->saw_nul && !p->seen.messages)
        return changed_under_us(src->path, err);
    return 0;
}

/* One column, one type: integer ids among string (or absent) ones are
 * written as strings, which is said rather than done silently (unpack
 * writes ids past 2^63 - 1 as strings, the rest as numbers). */
static void warn_mixed_ids(const pack_seen *s, const char *in_path)
{
    if (s->any_id && !s->all_ids_int && s->some_int_id)
        vb_warn("%s: \"id\" is an integer on some lines and a string (or absent) on others: "
                "/id holds them all as strings", in_path);
}

/* OUT.tmp written, synced and renamed over OUT; removed on any error, so
 * OUT is either what it was or the whole new file. */
int vb_pack(const char *in_path, const char *out_path, vb_err *err)
{
    line_src src = {.path = in_path};
    packer p = {.b = calloc(1, sizeof *p.b)};
    pack_out o;
    pack_out_init(&o);
    size_t tl = strlen(out_path) + 5;
    char *tmp = malloc(tl);
    int rc = 0;
    if (!(src.fp = fopen(in_path, "r")))
        rc = vb_err_set(err, "%s: cannot open for reading", in_path);
    else if (!tmp || !p.b)
        rc = vb_err_set(err, "%s: out of memory", out_path);
    vb_stop_unlink guard = {0};
    if (rc == 0) {
        snprintf(tmp, tl, "%s.tmp", out_path);
        /* OUT.tmp exists from the first block written to the end */
        vb_stop_unlink_install(&guard, tmp);
        rc = pack_lines(&p, &src, &o, tmp, err);
    }
    if (rc == 0)
        warn_mixed_ids(&p.seen, in_path);
    bool created = o.f >= 0;
    vb_err close_err = {{0}}; /* after an error, that error is the one said */
    if (pack_out_close(&o, rc == 0 ? err : &close_err) < 0 && rc == 0)
        rc = vb_err_prefix(err, "%s", tmp);
    if (rc == 0) /* with --overwrite, a crash must not leave OUT empty */
        rc = vb_fsync_path(tmp, err);
    if (rc == 0 && rename(tmp, out_path) != 0)
        rc = vb_err_set(err, "%s: cannot rename to %s", tmp, out_path);
    if (rc < 0 && created)
        unlink(tmp);
    vb_stop_unlink_remove(&guard); /* tmp is gone or renamed: nothing to remove */
    if (src.fp)
        fclose(src.fp);
    free(src.line);
    if (p.b)
        block_clear(p.b);
    free(p.b);
    free(tmp);
    return rc;
}

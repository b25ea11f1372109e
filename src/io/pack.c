/* JSON Lines / text -> HDF5 input schema; see pack.h. */
#include "io/pack.h"

#include <hdf5.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/h5_text.h"
#include "io/h5_util.h"
#include "util/log.h"
#include "util/same_file.h"
#include "util/utf8_valid.h"
#include "util/writable.h"

/* Columns as parsed; every array has n entries. */
typedef struct packed {
    size_t n, cap;
    bool messages;              /* /messages instead of /prompts */
    char **text;                /* prompt or messages JSON */
    size_t *text_len;           /* its bytes: a prompt may hold NUL characters */
    char **id_str;              /* NULL = no id on that line */
    int64_t *id_int;
    bool *id_is_int;
    char **system;              /* NULL = none */
    int32_t *max_new_tokens;    /* -1 = unset */
    int64_t *seed;              /* -1 = unset */
    bool any_id, any_system, any_max, any_seed, all_ids_int;
    bool warned_key;            /* a key pack does not read was reported */
} packed;

static int grow(packed *p)
{
    if (p->n < p->cap)
        return 0;
    size_t cap = p->cap ? p->cap * 2 : 1024;
#define GROW(f)                                                   \
    do {                                                          \
        void *q = realloc(p->f, cap * sizeof *p->f);              \
        if (!q)                                                   \
            return -1;                                            \
        p->f = q;                                                 \
    } while (0)
    GROW(text);
    GROW(text_len);
    GROW(id_str);
    GROW(id_int);
    GROW(id_is_int);
    GROW(system);
    GROW(max_new_tokens);
    GROW(seed);
#undef GROW
    p->cap = cap;
    return 0;
}

static void packed_free(packed *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->text[i]);
        free(p->id_str[i]);
        free(p->system[i]);
    }
    free(p->text);
    free(p->text_len);
    free(p->id_str);
    free(p->id_int);
    free(p->id_is_int);
    free(p->system);
    free(p->max_new_tokens);
    free(p->seed);
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
static void warn_unread_key(packed *p, const json_t *o, const char *path, long lineno)
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

/* Parses one JSONL object into the last row, p->n - 1. */
static int parse_json_line(packed *p, const char *line, size_t len, const char *path, long lineno,
                           bool *kind_set, vb_err *err)
{
    json_error_t je;
    /* \u0000 is text like any other character (issue 20) */
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    size_t i = p->n - 1; /* the caller has counted the row already */
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
    if (*kind_set && is_msgs != p->messages) {
        vb_err_set(err, "%s:%ld: has \"%s\" but earlier lines have \"%s\" (one file holds one "
                   "kind)", path, lineno, is_msgs ? "messages" : "prompt",
                   p->messages ? "messages" : "prompt");
        goto done;
    }
    *kind_set = true;
    p->messages = is_msgs;
    if (prompt) {
        if (!json_is_string(prompt)) {
            vb_err_set(err, "%s:%ld: \"prompt\" must be a string", path, lineno);
            goto done;
        }
        p->text_len[i] = json_string_length(prompt);
        p->text[i] = memdup0(json_string_value(prompt), p->text_len[i]);
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
        p->text[i] = json_dumps(msgs, JSON_COMPACT);
        p->text_len[i] = p->text[i] ? strlen(p->text[i]) : 0;
    }
    if (!p->text[i]) {
        vb_err_set(err, "%s:%ld: out of memory", path, lineno);
        goto done;
    }
    json_t *v = json_object_get(o, "id");
    if (check_no_nul(v, "id", path, lineno, err) < 0 ||
        check_no_nul(json_object_get(o, "system"), "system", path, lineno, err) < 0)
        goto done;
    if (v && !json_is_null(v)) {
        p->any_id = true;
        if (json_is_integer(v)) {
            p->id_is_int[i] = true;
            p->id_int[i] = json_integer_value(v);
            char buf[32];
            snprintf(buf, sizeof buf, "%" PRId64, p->id_int[i]);
            p->id_str[i] = strdup(buf);
        } else if (json_is_string(v)) {
            p->all_ids_int = false;
            p->id_str[i] = strdup(json_string_value(v));
        } else {
            vb_err_set(err, "%s:%ld: \"id\" must be a string or an integer", path, lineno);
            goto done;
        }
    } else {
        p->all_ids_int = false;
    }
    v = json_object_get(o, "system");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v)) {
            vb_err_set(err, "%s:%ld: \"system\" must be a string", path, lineno);
            goto done;
        }
        p->any_system = true;
        p->system[i] = strdup(json_string_value(v));
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
        p->any_max = true;
        p->max_new_tokens[i] = (int32_t)json_integer_value(v);
    }
    v = json_object_get(o, "seed");
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            vb_err_set(err, "%s:%ld: \"seed\" must be a non-negative integer", path, lineno);
            goto done;
        }
        p->any_seed = true;
        p->seed[i] = json_integer_value(v);
    }
    warn_unread_key(p, o, path, lineno);
    rc = 0;
done:
    json_decref(o);
    return rc;
}

static int read_input(packed *p, const char *path, vb_err *err)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return vb_err_set(err, "%s: cannot open for reading", path);
    bool jsonl = ends_with(path, ".jsonl") || ends_with(path, ".json") ||
                 ends_with(path, ".ndjson");
    bool text = ends_with(path, ".txt");
    bool decided = jsonl || text, kind_set = false;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = 0;
    p->all_ids_int = true;
    while (rc == 0 && (len = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        /* A UTF-8 byte order mark before the first line (files saved by
         * Windows editors, Excel, PowerShell 5) is no part of a prompt and
         * no JSON: dropped (RFC 8259 lets a parser ignore it). */
        if (lineno == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            memmove(line, line + 3, (size_t)len - 2); /* and the NUL getline put */
            len -= 3;
        }
        /* UTF-16 (Windows "Unicode", PowerShell's Out-File): its mark is
         * named, not "not valid UTF-8 (byte 1)" or a JSON error */
        if (lineno == 1 && len >= 2 &&
            (memcmp(line, "\xFF\xFE", 2) == 0 || memcmp(line, "\xFE\xFF", 2) == 0)) {
            rc = vb_err_set(err, "%s: starts with a UTF-16 byte order mark; pack reads UTF-8 "
                            "(convert it first, e.g. iconv -f UTF-16 -t UTF-8)", path);
            break;
        }
        /* a NUL byte in a text line is a NUL character of the prompt; in a
         * JSON line, where JSON forbids it raw, Jansson names it */
        if (blank(line) && (size_t)len == strlen(line))
            continue;
        if (!decided) {
            const char *s = line;
            while (*s == ' ' || *s == '\t')
                s++;
            jsonl = *s == '{';
            decided = true;
        }
        if (grow(p) < 0) {
            rc = vb_err_set(err, "%s:%ld: out of memory", path, lineno);
            break;
        }
        size_t i = p->n;
        p->text[i] = p->id_str[i] = p->system[i] = NULL;
        p->id_is_int[i] = false;
        p->id_int[i] = 0;
        p->max_new_tokens[i] = -1;
        p->seed[i] = -1;
        p->n++; /* counted now so packed_free frees a half-filled row */
        p->text_len[i] = 0;
        if (jsonl) {
            rc = parse_json_line(p, line, (size_t)len, path, lineno, &kind_set, err);
        } else {
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                line[--len] = '\0';
            size_t bad = 0;
            if (!vb_utf8_valid(line, (size_t)len, &bad))
                rc = vb_err_set(err, "%s:%ld: not valid UTF-8 (byte %zu)", path, lineno, bad + 1);
            else if (!(p->text[i] = memdup0(line, (size_t)len)))
                rc = vb_err_set(err, "%s:%ld: out of memory", path, lineno);
            else
                p->text_len[i] = (size_t)len;
        }
    }
    if (rc == 0 && ferror(fp))
        rc = vb_err_set(err, "%s: read error", path);
    if (rc == 0 && p->n == 0)
        rc = vb_err_set(err, "%s: no prompts (the file is empty or blank)", path);
    free(line);
    fclose(fp);
    return rc;
}

static int write_strings(hid_t f, const char *name, char **col, size_t n, vb_err *err)
{
    const char **v = malloc((n ? n : 1) * sizeof *v);
    hid_t t = h5_vlen_utf8_type();
    int rc;
    if (!v || t < 0) {
        rc = vb_err_set(err, "/%s: out of memory", name);
    } else {
        for (size_t i = 0; i < n; i++)
            v[i] = col[i] ? col[i] : "";
        rc = h5_write_1d(f, name, t, t, n, v, err);
    }
    if (t >= 0)
        H5Tclose(t);
    free(v);
    return rc;
}

static int write_packed(const packed *p, const char *tmp, vb_err *err)
{
    h5_quiet();
    if (vb_remove_if_there(tmp, err) < 0)
        return -1;
    /* exclusively: never through a link or into a file made since */
    hid_t fapl = h5_fapl_unlocked(); /* tmp is this process's alone (h5_util.h) */
    hid_t f = fapl < 0 ? -1 : H5Fcreate(tmp, H5F_ACC_EXCL, H5P_DEFAULT, fapl);
    h5_close(fapl);
    if (f < 0)
        return vb_err_set(err, "%s: cannot create (directory writable? name too long?)", tmp);
    /* the byte form when a prompt holds a NUL (io/h5_text.h) */
    int rc = h5_write_texts(f, p->messages ? "messages" : "prompts", (const char *const *)p->text, p->text_len,
                            p->n, err);
    if (rc == 0 && p->any_id) {
        if (p->all_ids_int)
            rc = h5_write_1d(f, "id", H5T_STD_I64LE, H5T_NATIVE_INT64, p->n, p->id_int, err);
        else
            rc = write_strings(f, "id", p->id_str, p->n, err);
    }
    if (rc == 0 && p->any_system)
        rc = write_strings(f, "system", p->system, p->n, err);
    if (rc == 0 && p->any_max)
        rc = h5_write_1d(f, "max_new_tokens", H5T_STD_I32LE, H5T_NATIVE_INT32, p->n,
                         p->max_new_tokens, err);
    if (rc == 0 && p->any_seed)
        rc = h5_write_1d(f, "seed", H5T_STD_I64LE, H5T_NATIVE_INT64, p->n, p->seed, err);
    if (rc < 0)
        vb_err_prefix(err, "%s", tmp);
    if (H5Fclose(f) < 0 && rc == 0)
        rc = vb_err_set(err, "%s: close failed (disk full?)", tmp);
    return rc;
}

/* One column, one type: integer ids among string (or absent) ones are
 * written as strings, which is said rather than done silently (unpack
 * writes ids past 2^63 - 1 as strings, the rest as numbers). */
static void warn_mixed_ids(const packed *p, const char *in_path)
{
    bool some_int = false;
    for (size_t i = 0; i < p->n && !some_int; i++)
        some_int = p->id_is_int[i];
    if (p->any_id && !p->all_ids_int && some_int)
        vb_warn("%s: \"id\" is an integer on some lines and a string (or absent) on others: "
                "/id holds them all as strings", in_path);
}

int vb_pack(const char *in_path, const char *out_path, vb_err *err)
{
    packed p = {0};
    int rc = read_input(&p, in_path, err);
    if (rc == 0)
        warn_mixed_ids(&p, in_path);
    size_t tl = strlen(out_path) + 5;
    char *tmp = malloc(tl);
    if (rc == 0 && !tmp)
        rc = vb_err_set(err, "%s: out of memory", out_path);
    if (rc == 0) {
        snprintf(tmp, tl, "%s.tmp", out_path);
        rc = write_packed(&p, tmp, err);
        if (rc == 0) /* with --overwrite, a crash must not leave OUT empty */
            rc = vb_fsync_path(tmp, err);
        if (rc == 0 && rename(tmp, out_path) != 0)
            rc = vb_err_set(err, "%s: cannot rename to %s", tmp, out_path);
        if (rc < 0)
            unlink(tmp);
    }
    free(tmp);
    packed_free(&p);
    return rc;
}

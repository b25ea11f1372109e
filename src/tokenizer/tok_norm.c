/* The normalizer: tokenizer.json's "normalizer" as a list of steps applied
 * in order to each stretch of text between added tokens (HF's
 * Sequence), and loading it.
 *
 * Supported: NFC, NFD, NFKC, NFKD and Lowercase (utf8proc, tok_unicode.c),
 * Strip (left / right, Unicode White_Space), Prepend, Replace with a String
 * or a Regex pattern (PCRE2, matches found as the Split pre-tokenizer finds
 * them), and Sequence of these. Anything else is refused at load with its
 * name. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

/* HF's Strip: White_Space characters off the left and / or right end. */
static char *strip(const char *s, size_t n, bool left, bool right, size_t *out_n)
{
    size_t b = 0, e = n;
    while (left && b < e) {
        uint32_t cp;
        size_t l = tok_utf8_next(s, n, b, &cp);
        if (!tok_is_white_space(cp))
            break;
        b += l;
    }
    while (right && e > b) {
        size_t st = e - 1;
        while (st > b && ((unsigned char)s[st] & 0xC0) == 0x80)
            st--;
        uint32_t cp;
        tok_utf8_next(s, n, st, &cp);
        if (!tok_is_white_space(cp))
            break;
        e = st;
    }
    char *o = malloc(e - b + 1);
    if (o) {
        memcpy(o, s + b, e - b);
        o[e - b] = 0;
        *out_n = e - b;
    }
    return o;
}

static char *prepend(const char *s, size_t n, const char *pre, size_t *out_n)
{
    size_t lp = strlen(pre);
    char *out = malloc(n + lp + 1);
    if (!out)
        return NULL;
    memcpy(out, pre, lp);
    memcpy(out + lp, s, n);
    out[n + lp] = 0;
    *out_n = n + lp;
    return out;
}

/* HF's NormalizedString::replace with a Regex: every match (an empty one
 * too, which inserts) becomes `to`; NULL when out of memory or the regex
 * runs over its match limit. */
static char *replace_regex(const pcre2_code *re, const char *s, size_t n, const char *to, size_t *out_n)
{
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    tok_spans v = {0};
    char *out = NULL;
    if (md && tok_find_matches(re, s, n, md, &v) == 0) {
        size_t lt = strlen(to), need = 1;
        for (size_t i = 0; i < v.n; i++)
            need += v.a[i].match ? lt : v.a[i].e - v.a[i].s;
        out = malloc(need);
        size_t o = 0;
        for (size_t i = 0; out && i < v.n; i++) {
            const char *src = v.a[i].match ? to : s + v.a[i].s;
            size_t len = v.a[i].match ? lt : v.a[i].e - v.a[i].s;
            memcpy(out + o, src, len);
            o += len;
        }
        if (out) {
            out[o] = 0;
            *out_n = o;
        }
    }
    free(v.a);
    if (md)
        pcre2_match_data_free(md);
    return out;
}

int tok_normalize(const tokenizer *tok, const char *s, size_t n, char **buf, size_t *len)
{
    char *cur = malloc(n + 1);
    if (!cur)
        return -1;
    memcpy(cur, s, n);
    cur[n] = 0;
    size_t cn = n;
    for (size_t k = 0; k < tok->n_norm; k++) {
        const tok_norm *nm = &tok->norm[k];
        if (nm->kind == NORM_PREPEND && cn == 0)
            continue; /* HF prepends only to non-empty text */
        char *next = NULL;
        size_t nn = 0;
        switch (nm->kind) {
        case NORM_NFC: case NORM_NFD: case NORM_NFKC: case NORM_NFKD:
            next = tok_unicode_form(nm->kind, cur, cn, &nn);
            break;
        case NORM_LOWERCASE:
            next = tok_lowercase(cur, cn, &nn);
            break;
        case NORM_STRIP:
            next = strip(cur, cn, nm->strip_left, nm->strip_right, &nn);
            break;
        case NORM_PREPEND:
            next = prepend(cur, cn, nm->a, &nn);
            break;
        case NORM_REPLACE:
            next = nm->re ? replace_regex(nm->re, cur, cn, nm->b, &nn)
                          : tok_replace_all(cur, cn, nm->a, strlen(nm->a), nm->b, strlen(nm->b), &nn);
            break;
        }
        free(cur);
        if (!next)
            return -1;
        cur = next;
        cn = nn;
    }
    *buf = cur;
    *len = cn;
    return 0;
}

/* ---------------------------------------------------------------- loading */

static const char *type_of(const json_t *j)
{
    const json_t *t = json_object_get(j, "type");
    return json_is_string(t) ? json_string_value(t) : "(no type)";
}

static int read_bool(const json_t *j, const char *key, bool dflt, bool *out, const char *file, vb_err *err)
{
    const json_t *v = json_object_get(j, key);
    if (v && !json_is_boolean(v))
        return vb_err_set(err, "%s: normalizer %s: %s is not true or false", file, type_of(j), key);
    *out = v ? json_is_true(v) : dflt;
    return 0;
}

static int load_step(tok_norm *nm, const json_t *j, const char *file, vb_err *err)
{
    static const struct { const char *name; tok_norm_kind kind; } simple[] = {
        {"NFC", NORM_NFC}, {"NFD", NORM_NFD}, {"NFKC", NORM_NFKC}, {"NFKD", NORM_NFKD},
        {"Lowercase", NORM_LOWERCASE}};
    const char *type = type_of(j);
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++)
        if (strcmp(type, simple[i].name) == 0) {
            nm->kind = simple[i].kind;
            return 0;
        }
    if (strcmp(type, "Strip") == 0) {
        nm->kind = NORM_STRIP;
        return read_bool(j, "strip_left", true, &nm->strip_left, file, err) < 0 ||
                       read_bool(j, "strip_right", true, &nm->strip_right, file, err) < 0
                   ? -1 : 0;
    }
    if (strcmp(type, "Prepend") == 0) {
        const json_t *pre = json_object_get(j, "prepend");
        if (!json_is_string(pre))
            return vb_err_set(err, "%s: normalizer Prepend: prepend is not a string", file);
        nm->kind = NORM_PREPEND;
        nm->a = strdup(json_string_value(pre));
        return nm->a ? 0 : vb_err_set(err, "%s: out of memory", file);
    }
    if (strcmp(type, "Replace") == 0) {
        const json_t *pat = json_object_get(json_object_get(j, "pattern"), "String");
        const json_t *re = json_object_get(json_object_get(j, "pattern"), "Regex");
        const json_t *content = json_object_get(j, "content");
        if (!json_is_string(content) || (!json_is_string(re) && !(json_is_string(pat) && json_string_length(pat))))
            return vb_err_set(err, "%s: normalizer Replace needs a String (non-empty) or Regex pattern and a "
                                   "string content", file);
        nm->kind = NORM_REPLACE;
        nm->a = strdup(json_string_value(re ? re : pat));
        nm->b = strdup(json_string_value(content));
        if (!nm->a || !nm->b)
            return vb_err_set(err, "%s: out of memory", file);
        return re ? tok_compile_re(&nm->re, nm->a, "normalizer Replace", file, err) : 0;
    }
    return vb_err_set(err, "%s: normalizer '%s' is not supported (NFC, NFD, NFKC, NFKD, Lowercase, Strip, "
                           "Prepend, Replace, Sequence are)", file, type);
}

int tok_norm_load(tokenizer *tok, const json_t *j, const char *file, vb_err *err)
{
    if (!j || json_is_null(j))
        return 0;
    if (!json_is_object(j))
        return vb_err_set(err, "%s: normalizer is not an object", file);
    if (strcmp(type_of(j), "Sequence") == 0) {
        const json_t *arr = json_object_get(j, "normalizers");
        if (!json_is_array(arr))
            return vb_err_set(err, "%s: normalizer Sequence: normalizers is not a list", file);
        size_t i;
        const json_t *v;
        json_array_foreach(arr, i, v) {
            if (tok_norm_load(tok, v, file, err) < 0)
                return -1;
        }
        return 0;
    }
    if (tok->n_norm >= 64)
        return vb_err_set(err, "%s: normalizer has more than 64 steps", file);
    tok_norm *p = realloc(tok->norm, (tok->n_norm + 1) * sizeof *p);
    if (!p)
        return vb_err_set(err, "%s: out of memory", file);
    tok->norm = p;
    memset(&p[tok->n_norm], 0, sizeof *p);
    /* counted before loading, so tokenizer_free frees what a failed step made */
    return load_step(&tok->norm[tok->n_norm++], j, file, err);
}

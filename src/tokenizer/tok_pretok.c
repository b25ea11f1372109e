/* The pre-tokenizer: tokenizer.json's "pre_tokenizer" as a list of steps,
 * each of which cuts every piece the step before made (HF's
 * PreTokenizedString::split), then BPE on each final piece.
 *
 * Supported: Split (String or Regex pattern; Removed, Isolated,
 * MergedWithPrevious, MergedWithNext, Contiguous; invert), ByteLevel (with
 * and without its GPT-2 regex, add_prefix_space), Digits (individual or
 * not), Metaspace (prepend_scheme always / first / never, split),
 * Whitespace, WhitespaceSplit, Punctuation, and Sequence of these. Each is
 * HF's splitting rule over a regex, so one routine (split_piece) does them
 * all; the regexes spell out HF's char predicates (Rust's is_numeric,
 * is_whitespace, \w, is_punctuation) as Unicode properties. Anything else
 * is refused at load with its name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

#define GPT2_SPLIT "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
/* Rust regex's Unicode \w (UTS #18 Annex C), which HF's Whitespace uses;
 * PCRE2's own \w lacks the marks and Join_Control. */
#define RUST_W "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}"
/* Whitespace: \w+|[^\w\s]+, keeping the matches (HF: Invert + Removed). */
#define WHITESPACE_RE "[" RUST_W "]+|[^" RUST_W "\\p{White_Space}]+"
/* Rust's char::is_whitespace and char::is_numeric, one character a match. */
#define WHITE_SPACE_RE "\\p{White_Space}"
#define NUMERIC_RE "\\p{N}"
/* HF's is_punc: ASCII punctuation (which includes symbols like $ + < = > ^
 * ` | ~) or a Unicode P* character. */
#define PUNCT_RE "[\\p{P}!-/:-@\\[-`{-~]"

typedef tok_span span;
typedef tok_spans spans;

static int spans_push(spans *v, size_t s, size_t e, bool m)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 16;
        span *p = realloc(v->a, cap * sizeof *p);
        if (!p)
            return -1;
        v->a = p;
        v->cap = cap;
    }
    v->a[v->n++] = (span){s, e, m};
    return 0;
}

/* HF's find_matches over the regex: the text cut into gaps and matches,
 * matches found as onig's find_iter finds them (an empty match right at
 * the previous match's end is skipped by stepping one character on; other
 * empty matches count, and cut a gap in two). The Replace normalizer
 * (tok_norm.c) uses it too. */
int tok_find_matches(const pcre2_code *re, const char *s, size_t n, pcre2_match_data *md, spans *out)
{
    size_t prev = 0, last_end = 0;
    long last_match_end = -1;
    if (n == 0)
        return spans_push(out, 0, 0, false);
    while (last_end <= n) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, n, last_end, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0) /* a match or memory limit: an error row, never a different split */
            return -1;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (me == ms && last_match_end == (long)me) {
            int l = last_end < n ? tok_utf8_seq_len((unsigned char)s[last_end]) : 1;
            last_end += (size_t)(l ? l : 1);
            continue;
        }
        last_end = me;
        last_match_end = (long)me;
        if (prev != ms && spans_push(out, prev, ms, false) < 0)
            return -1;
        if (spans_push(out, ms, me, true) < 0)
            return -1;
        prev = me;
    }
    if (prev != n && spans_push(out, prev, n, false) < 0)
        return -1;
    return 0;
}

/* HF's SplitDelimiterBehavior over the spans, in place; a span whose
 * match flag ends false is kept, true is removed (Removed only). */
static void apply_behavior(spans *v, tok_split_behavior b)
{
    size_t o = 0;
    bool prev_match = false;
    switch (b) {
    case SPLIT_ISOLATED:
        for (size_t i = 0; i < v->n; i++)
            v->a[i].match = false;
        return;
    case SPLIT_REMOVED:
        return;
    case SPLIT_MERGED_PREV:
        for (size_t i = 0; i < v->n; i++) {
            span c = v->a[i];
            if (c.match && !prev_match && o > 0)
                v->a[o - 1].e = c.e;
            else
                v->a[o++] = (span){c.s, c.e, false};
            prev_match = c.match;
        }
        v->n = o;
        return;
    case SPLIT_MERGED_NEXT: /* the same from the right: a match joins what follows */
        o = v->n;
        for (size_t i = v->n; i-- > 0;) {
            span c = v->a[i];
            if (c.match && !prev_match && o < v->n)
                v->a[o].s = c.s;
            else
                v->a[--o] = (span){c.s, c.e, false};
            prev_match = c.match;
        }
        memmove(v->a, v->a + o, (v->n - o) * sizeof *v->a);
        v->n -= o;
        return;
    case SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < v->n; i++) {
            span c = v->a[i];
            if (c.match == prev_match && o > 0)
                v->a[o - 1].e = c.e;
            else
                v->a[o++] = (span){c.s, c.e, false};
            prev_match = c.match;
        }
        v->n = o;
        return;
    }
}

static int run_step(const tokenizer *tok, size_t k, const char *s, size_t n, bool at_start, pcre2_match_data *md,
                    tok_ids *out);

/* Cuts s with step k's regex and behaviour; each non-empty piece goes to
 * step k + 1 (HF drops empty splits). */
static int split_piece(const tokenizer *tok, size_t k, const pcre2_code *re, tok_split_behavior b, bool invert,
                       const char *s, size_t n, bool at_start, pcre2_match_data *md, tok_ids *out)
{
    spans v = {0};
    int rc = tok_find_matches(re, s, n, md, &v);
    if (rc == 0) {
        if (invert)
            for (size_t i = 0; i < v.n; i++)
                v.a[i].match = !v.a[i].match;
        apply_behavior(&v, b);
        for (size_t i = 0; i < v.n && rc == 0; i++)
            if (!v.a[i].match && v.a[i].e > v.a[i].s)
                rc = run_step(tok, k + 1, s + v.a[i].s, v.a[i].e - v.a[i].s, at_start && v.a[i].s == 0, md, out);
    }
    free(v.a);
    return rc;
}

/* Replaces every `from` with `to`; returns a malloc'd string. */
char *tok_replace_all(const char *s, size_t n, const char *from, size_t lf, const char *to, size_t lt,
                      size_t *out_n)
{
    size_t count = 0;
    for (size_t i = 0; lf && i + lf <= n;)
        if (memcmp(s + i, from, lf) == 0) { count++; i += lf; } else i++;
    char *out = malloc(n + count * (lt > lf ? lt - lf : 0) + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (lf && i + lf <= n && memcmp(s + i, from, lf) == 0) {
            memcpy(out + o, to, lt);
            o += lt;
            i += lf;
        } else {
            out[o++] = s[i++];
        }
    }
    out[o] = 0;
    *out_n = o;
    return out;
}

/* Metaspace: spaces become the replacement, which is prepended (always, or
 * only to the piece at the input's start), then the piece is cut before
 * each replacement (MergedWithNext). */
static int metaspace(const tokenizer *tok, size_t k, const tok_pretok *st, const char *s, size_t n, bool at_start,
                     pcre2_match_data *md, tok_ids *out)
{
    size_t lr = strlen(st->repl), l2;
    char *t = tok_replace_all(s, n, " ", 1, st->repl, lr, &l2);
    if (!t)
        return -1;
    bool want = st->prepend == 2 || (st->prepend == 1 && at_start);
    if (want && !(l2 >= lr && memcmp(t, st->repl, lr) == 0)) {
        char *p = malloc(l2 + lr + 1);
        if (!p) {
            free(t);
            return -1;
        }
        memcpy(p, st->repl, lr);
        memcpy(p + lr, t, l2 + 1);
        free(t);
        t = p;
        l2 += lr;
    }
    int rc = st->re ? split_piece(tok, k, st->re, SPLIT_MERGED_NEXT, false, t, l2, at_start, md, out)
                    : run_step(tok, k + 1, t, l2, at_start, md, out);
    free(t);
    return rc;
}

static int run_step(const tokenizer *tok, size_t k, const char *s, size_t n, bool at_start, pcre2_match_data *md,
                    tok_ids *out)
{
    if (k == tok->n_pretok)
        return tok_bpe_word(tok, s, n, out);
    const tok_pretok *st = &tok->pretok[k];
    if (st->kind == PT_METASPACE)
        return metaspace(tok, k, st, s, n, at_start, md, out);
    if (st->kind == PT_BYTE_LEVEL && st->add_prefix_space && n && s[0] != ' ') {
        char *t = malloc(n + 2);
        if (!t)
            return -1;
        t[0] = ' ';
        memcpy(t + 1, s, n);
        t[n + 1] = 0;
        int rc = st->re ? split_piece(tok, k, st->re, SPLIT_ISOLATED, false, t, n + 1, at_start, md, out)
                        : run_step(tok, k + 1, t, n + 1, at_start, md, out);
        free(t);
        return rc;
    }
    if (!st->re)
        return run_step(tok, k + 1, s, n, at_start, md, out);
    return split_piece(tok, k, st->re, st->behavior, st->invert, s, n, at_start, md, out);
}

int tok_pretok_run(const tokenizer *tok, const char *s, size_t n, bool at_start, pcre2_match_data *md,
                   tok_ids *out)
{
    return n ? run_step(tok, 0, s, n, at_start, md, out) : 0;
}

/* ---------------------------------------------------------------- loading */

static const char *type_of(const json_t *j)
{
    const json_t *t = json_object_get(j, "type");
    return json_is_string(t) ? json_string_value(t) : "(no type)";
}

/* Unicode's White_Space, what HF's regex engine (Oniguruma) takes \s for.
 * PCRE2 (10.42 at least) also counts U+180E, which Unicode 6.3 took out of
 * it: "\u180e's" split as whitespace then "'s" where HF keeps "\u180e'"
 * together (found by differential testing, session 31). */
#define TOK_WHITE_SPACE "\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}" \
                        "\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

/* pattern with \s as TOK_WHITE_SPACE (a class of its own outside a
 * class, its members inside one) and \S outside a class as its negation;
 * escapes, \Q..\E quotes and [:posix:] classes copied as they are.
 * malloc'd; NULL when out of memory. */
static char *white_space_as_hf(const char *p)
{
    size_t n = strlen(p), w = sizeof TOK_WHITE_SPACE - 1;
    char *out = malloc(n * (w + 4) / 2 + w + 8), *o = out;
    if (!out)
        return NULL;
    bool in_class = false;
    for (size_t i = 0; i < n;) {
        if (p[i] == '\\' && p[i + 1] == 'Q') { /* quoted up to \E */
            const char *e = strstr(p + i + 2, "\\E");
            size_t k = e ? (size_t)(e - (p + i)) + 2 : n - i;
            memcpy(o, p + i, k), o += k, i += k;
        } else if (p[i] == '\\' && (p[i + 1] == 's' || (p[i + 1] == 'S' && !in_class))) {
            const char *fmt = in_class ? "%s" : p[i + 1] == 's' ? "[%s]" : "[^%s]";
            o += sprintf(o, fmt, TOK_WHITE_SPACE);
            i += 2;
        } else if (p[i] == '\\' && p[i + 1]) {
            *o++ = p[i++];
            *o++ = p[i++];
        } else if (in_class && p[i] == '[' && p[i + 1] == ':') { /* [:alpha:] */
            const char *e = strstr(p + i + 2, ":]");
            size_t k = e ? (size_t)(e - (p + i)) + 2 : 1;
            memcpy(o, p + i, k), o += k, i += k;
        } else if (!in_class && p[i] == '[') {
            in_class = true;
            *o++ = p[i++];
            if (p[i] == '^')
                *o++ = p[i++];
            if (p[i] == ']') /* a literal ] first in a class */
                *o++ = p[i++];
        } else {
            if (in_class && p[i] == ']')
                in_class = false;
            *o++ = p[i++];
        }
    }
    *o = '\0';
    return out;
}

int tok_compile_re(pcre2_code **out, const char *pattern, const char *what, const char *file, vb_err *err)
{
    int code;
    PCRE2_SIZE off;
    char *hf = white_space_as_hf(pattern);
    if (!hf)
        return vb_err_set(err, "%s: out of memory", file);
    *out = pcre2_compile((PCRE2_SPTR)hf, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code, &off, NULL);
    free(hf);
    if (!*out) {
        PCRE2_UCHAR msg[128];
        pcre2_get_error_message(code, msg, sizeof msg);
        return vb_err_set(err, "%s: %s regex does not compile at offset %zu: %s", file, what,
                          (size_t)off, (char *)msg);
    }
    pcre2_jit_compile(*out, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    return 0;
}

/* A String pattern, matched literally. Each ASCII punctuation byte is
 * escaped (PCRE2 reads an escaped non-alphanumeric as itself); \Q..\E would
 * end early at a "\E" inside the text. */
static int compile_literal(pcre2_code **out, const char *text, const char *what, const char *file, vb_err *err)
{
    size_t n = strlen(text);
    char *re = malloc(2 * n + 1);
    if (!re)
        return vb_err_set(err, "%s: out of memory", file);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x80 && !((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
            re[o++] = '\\';
        re[o++] = (char)c;
    }
    re[o] = 0;
    int rc = tok_compile_re(out, re, what, file, err);
    free(re);
    return rc;
}

static int behavior_of(const json_t *j, const char *dflt, tok_split_behavior *b, const char *what, const char *file,
                       vb_err *err)
{
    const json_t *v = json_object_get(j, "behavior");
    const char *s = v ? json_string_value(v) : dflt;
    static const struct { const char *name; tok_split_behavior b; } names[] = {
        {"Removed", SPLIT_REMOVED}, {"Isolated", SPLIT_ISOLATED}, {"MergedWithPrevious", SPLIT_MERGED_PREV},
        {"MergedWithNext", SPLIT_MERGED_NEXT}, {"Contiguous", SPLIT_CONTIGUOUS}};
    for (size_t i = 0; s && i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0) {
            *b = names[i].b;
            return 0;
        }
    return vb_err_set(err, "%s: pre_tokenizer %s behavior '%s' is not supported (Removed, Isolated, "
                           "MergedWithPrevious, MergedWithNext, Contiguous are)", file, what, s ? s : "?");
}

static int load_bool(const json_t *j, const char *key, bool dflt, bool *out, const char *what, const char *file,
                     vb_err *err)
{
    const json_t *v = json_object_get(j, key);
    if (v && !json_is_null(v) && !json_is_boolean(v))
        return vb_err_set(err, "%s: pre_tokenizer %s: %s is not true or false", file, what, key);
    *out = json_is_boolean(v) ? json_is_true(v) : dflt;
    return 0;
}

static int load_metaspace(tokenizer *tok, tok_pretok *st, const json_t *j, const char *file, vb_err *err)
{
    const json_t *rv = json_object_get(j, "replacement");
    const char *r = rv ? json_string_value(rv) : "\xE2\x96\x81";
    /* HF's replacement is one character; an empty one would make the
     * vocab's decode loop never advance. */
    if (!r || !*r || (size_t)tok_utf8_seq_len((unsigned char)r[0]) != strlen(r))
        return vb_err_set(err, "%s: pre_tokenizer Metaspace replacement is not one character", file);
    if (tok->ms_repl && strcmp(tok->ms_repl, r) != 0)
        return vb_err_set(err, "%s: pre_tokenizer with two Metaspace replacements is not supported", file);
    st->kind = PT_METASPACE;
    st->repl = strdup(r);
    if (!st->repl || (!tok->ms_repl && !(tok->ms_repl = strdup(r))))
        return vb_err_set(err, "%s: out of memory", file);
    const json_t *sv = json_object_get(j, "prepend_scheme");
    const char *scheme = json_string_value(sv);
    bool aps = true, split = true;
    if (load_bool(j, "add_prefix_space", true, &aps, "Metaspace", file, err) < 0 ||
        load_bool(j, "split", true, &split, "Metaspace", file, err) < 0)
        return -1;
    if (scheme && strcmp(scheme, "always") && strcmp(scheme, "first") && strcmp(scheme, "never"))
        return vb_err_set(err, "%s: pre_tokenizer Metaspace prepend_scheme '%s' is not always, first or never",
                          file, scheme);
    st->prepend = scheme ? (strcmp(scheme, "never") == 0 ? 0 : strcmp(scheme, "first") == 0 ? 1 : 2) : aps ? 2 : 0;
    return split ? compile_literal(&st->re, r, "pre_tokenizer Metaspace", file, err) : 0;
}

static int load_step(tokenizer *tok, tok_pretok *st, const json_t *j, const char *file, vb_err *err)
{
    const char *type = type_of(j);
    char what[96]; /* names the step in a regex error */
    snprintf(what, sizeof what, "pre_tokenizer %s", type);
    st->behavior = SPLIT_ISOLATED;
    if (strcmp(type, "ByteLevel") == 0) {
        bool use_regex = true;
        st->kind = PT_BYTE_LEVEL;
        if (load_bool(j, "add_prefix_space", true, &st->add_prefix_space, type, file, err) < 0 ||
            load_bool(j, "use_regex", true, &use_regex, type, file, err) < 0)
            return -1;
        tok->byte_level = true;
        return use_regex ? tok_compile_re(&st->re, GPT2_SPLIT, what, file, err) : 0;
    }
    if (strcmp(type, "Metaspace") == 0)
        return load_metaspace(tok, st, j, file, err);
    st->kind = PT_SPLIT;
    if (strcmp(type, "Split") == 0) {
        const json_t *pat = json_object_get(j, "pattern");
        if (behavior_of(j, NULL, &st->behavior, type, file, err) < 0 ||
            load_bool(j, "invert", false, &st->invert, type, file, err) < 0)
            return -1;
        const json_t *re = json_object_get(pat, "Regex"), *str = json_object_get(pat, "String");
        if (json_is_string(re))
            return tok_compile_re(&st->re, json_string_value(re), what, file, err);
        if (json_is_string(str))
            return compile_literal(&st->re, json_string_value(str), what, file, err);
        return vb_err_set(err, "%s: pre_tokenizer Split has no String or Regex pattern", file);
    }
    if (strcmp(type, "Digits") == 0) {
        bool individual = false;
        if (load_bool(j, "individual_digits", false, &individual, type, file, err) < 0)
            return -1;
        st->behavior = individual ? SPLIT_ISOLATED : SPLIT_CONTIGUOUS;
        return tok_compile_re(&st->re, NUMERIC_RE, what, file, err);
    }
    if (strcmp(type, "Whitespace") == 0) {
        st->behavior = SPLIT_REMOVED;
        st->invert = true;
        return tok_compile_re(&st->re, WHITESPACE_RE, what, file, err);
    }
    if (strcmp(type, "WhitespaceSplit") == 0) {
        st->behavior = SPLIT_REMOVED;
        return tok_compile_re(&st->re, WHITE_SPACE_RE, what, file, err);
    }
    if (strcmp(type, "Punctuation") == 0) {
        if (behavior_of(j, "Isolated", &st->behavior, type, file, err) < 0)
            return -1;
        return tok_compile_re(&st->re, PUNCT_RE, what, file, err);
    }
    return vb_err_set(err, "%s: pre_tokenizer '%s' is not supported (ByteLevel, Split, Digits, Metaspace, "
                           "Whitespace, WhitespaceSplit, Punctuation, Sequence are)", file, type);
}

static int load_into(tokenizer *tok, const json_t *j, const char *file, vb_err *err)
{
    if (!j || json_is_null(j))
        return 0;
    if (!json_is_object(j))
        return vb_err_set(err, "%s: pre_tokenizer is not an object", file);
    if (strcmp(type_of(j), "Sequence") == 0) {
        const json_t *arr = json_object_get(j, "pretokenizers");
        if (!json_is_array(arr))
            return vb_err_set(err, "%s: pre_tokenizer Sequence: pretokenizers is not a list", file);
        size_t i;
        const json_t *v;
        json_array_foreach(arr, i, v) {
            if (load_into(tok, v, file, err) < 0)
                return -1;
        }
        return 0;
    }
    if (tok->n_pretok && tok->pretok[tok->n_pretok - 1].kind == PT_BYTE_LEVEL)
        /* ByteLevel maps each byte to a printable character after its own
         * split, so a later step would see 'Ġ' where we have ' '. */
        return vb_err_set(err, "%s: pre_tokenizer '%s' after ByteLevel is not supported", file, type_of(j));
    if (tok->n_pretok >= 64)
        return vb_err_set(err, "%s: pre_tokenizer has more than 64 steps", file);
    tok_pretok *p = realloc(tok->pretok, (tok->n_pretok + 1) * sizeof *p);
    if (!p)
        return vb_err_set(err, "%s: out of memory", file);
    tok->pretok = p;
    memset(&p[tok->n_pretok], 0, sizeof *p);
    /* counted before loading, so tokenizer_free frees what a failed step made */
    return load_step(tok, &tok->pretok[tok->n_pretok++], j, file, err);
}

int tok_pretok_load(tokenizer *tok, const json_t *j, const char *file, vb_err *err)
{
    return load_into(tok, j, file, err);
}

void tok_pretok_free(tokenizer *tok)
{
    for (size_t i = 0; i < tok->n_pretok; i++) {
        if (tok->pretok[i].re)
            pcre2_code_free(tok->pretok[i].re);
        free(tok->pretok[i].repl);
    }
    free(tok->pretok);
    tok->pretok = NULL;
    tok->n_pretok = 0;
}

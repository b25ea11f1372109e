/* Jinja's filters and tests, Python's string and dict methods, and the
 * global functions transformers gives templates (raise_exception,
 * strftime_now) besides jinja2's own (range, namespace, dict). Each follows
 * the Python it stands for; Unicode case as Python's str (jinja_case.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#include "tokenizer/jinja_internal.h"

#define RANGE_MAX 1000000

static bool terr(jrender *r, const jnode *at, const char *fmt, const char *a, const char *b)
{
    jerr(r, at, fmt, a, b);
    return false;
}

static const jv *kwarg(const jargs *a, const char *name)
{
    for (size_t i = 0; i < a->nkw; i++)
        if (strcmp(a->kwn[i], name) == 0)
            return &a->kwv[i];
    return NULL;
}

/* Argument i by position or by name; NULL when not given. */
static const jv *arg(const jargs *a, size_t i, const char *name)
{
    if (i < a->npos)
        return &a->pos[i];
    return name ? kwarg(a, name) : NULL;
}

static bool want_str(jrender *r, const jnode *at, const jv *v, const char *what)
{
    if (v && v->k == JV_STR)
        return true;
    return terr(r, at, "%s expects a string, not %s", what, v ? jv_type_name(*v) : "nothing");
}

static bool mklist(jrender *r, const jnode *at, size_t n, jlist **l, jv *out)
{
    if (!(*l = jlist_new(&r->ar, n)))
        return jerr_oom(r, at);
    out->k = JV_LIST;
    out->u.l = *l;
    return true;
}

/* ---- string helpers ---- */
static size_t cp_width(const char *s, size_t n)
{
    size_t w = 1;
    while (w < n && ((unsigned char)s[w] & 0xC0) == 0x80)
        w++;
    return w;
}

static bool in_chars(const char *c, size_t cn, const char *chars, size_t nchars)
{
    for (size_t i = 0; i < nchars;) {
        size_t w = cp_width(chars + i, nchars - i);
        if (w == cn && memcmp(chars + i, c, w) == 0)
            return true;
        i += w;
    }
    return false;
}

/* Python's str.strip / lstrip / rstrip: chars NULL for whitespace. */
static jv strip(jv s, const jv *chars, bool left, bool right)
{
    const char *p = s.u.s.p;
    size_t b = 0, e = s.u.s.n;
    bool ws = !chars || chars->k == JV_NONE;
    if (left)
        while (b < e) {
            size_t w = ws ? py_space_len(p + b, e - b) : cp_width(p + b, e - b);
            if (!w || (!ws && !in_chars(p + b, w, chars->u.s.p, chars->u.s.n)))
                break;
            b += w;
        }
    if (right)
        while (e > b) {
            size_t w = 1;
            while (w < e - b && ((unsigned char)p[e - w] & 0xC0) == 0x80)
                w++;
            bool hit = ws ? py_space_len(p + e - w, w) == w : in_chars(p + e - w, w, chars->u.s.p, chars->u.s.n);
            if (!hit)
                break;
            e -= w;
        }
    return jv_str(p + b, e - b);
}

static bool str_replace(jrender *r, const jnode *at, jv s, jv old, jv new_, int64_t count, jv *out)
{
    jbuf b = {0};
    jbuf_puts(&b, "");
    int64_t done = 0;
    if (old.u.s.n == 0) {
        /* Python inserts new before every character and at the end */
        size_t i = 0;
        for (; i <= s.u.s.n; done++) {
            if (count >= 0 && done >= count)
                break;
            jbuf_put(&b, new_.u.s.p, new_.u.s.n);
            if (i == s.u.s.n) {
                i++;
                break;
            }
            size_t w = cp_width(s.u.s.p + i, s.u.s.n - i);
            jbuf_put(&b, s.u.s.p + i, w);
            i += w;
        }
        if (i < s.u.s.n)
            jbuf_put(&b, s.u.s.p + i, s.u.s.n - i);
        return jbuf_to_jv(r, &b, out);
    }
    size_t i = 0;
    while (i < s.u.s.n) {
        if ((count < 0 || done < count) && i + old.u.s.n <= s.u.s.n &&
            memcmp(s.u.s.p + i, old.u.s.p, old.u.s.n) == 0) {
            jbuf_put(&b, new_.u.s.p, new_.u.s.n);
            i += old.u.s.n;
            done++;
        } else {
            jbuf_put(&b, s.u.s.p + i, 1);
            i++;
        }
    }
    (void)at;
    return jbuf_to_jv(r, &b, out);
}

/* Python's str.split(sep=None, maxsplit=-1). */
static bool str_split(jrender *r, const jnode *at, jv s, const jv *sep, int64_t maxsplit, jv *out)
{
    size_t cap = s.u.s.n + 1, n = 0;
    jv *parts = jarena_alloc(&r->ar, cap * sizeof *parts);
    if (!parts)
        return jerr_oom(r, at);
    const char *p = s.u.s.p;
    size_t len = s.u.s.n, i = 0;
    if (!sep || sep->k == JV_NONE) {
        for (;;) {
            size_t w;
            while (i < len && (w = py_space_len(p + i, len - i)) > 0)
                i += w;
            if (i >= len)
                break;
            size_t st = i;
            if (maxsplit >= 0 && (int64_t)n >= maxsplit) {
                /* the rest, less trailing whitespace, is the last part */
                jv rest = strip(jv_str(p + st, len - st), NULL, false, true);
                parts[n++] = rest;
                break;
            }
            while (i < len && py_space_len(p + i, len - i) == 0)
                i++;
            parts[n++] = jv_str(p + st, i - st);
        }
    } else {
        if (!want_str(r, at, sep, "split()"))
            return false;
        if (sep->u.s.n == 0)
            return jerr(r, at, "empty separator"), false;
        size_t st = 0;
        while (i + sep->u.s.n <= len && (maxsplit < 0 || (int64_t)n < maxsplit)) {
            if (memcmp(p + i, sep->u.s.p, sep->u.s.n) == 0) {
                parts[n++] = jv_str(p + st, i - st);
                i += sep->u.s.n;
                st = i;
            } else {
                i++;
            }
        }
        parts[n++] = jv_str(p + st, len - st);
    }
    jlist *l;
    if (!mklist(r, at, n, &l, out))
        return false;
    if (n) /* ''.split() is []: no list storage to copy into */
        memcpy(l->v, parts, n * sizeof *parts);
    return true;
}

static bool starts_ends(jrender *r, const jnode *at, jv s, const jv *arg0, bool ends, jv *out)
{
    if (!arg0)
        return jerr(r, at, "startswith/endswith need an argument"), false;
    const jv *cands = arg0;
    size_t nc = 1;
    if (arg0->k == JV_LIST) {
        cands = arg0->u.l->v;
        nc = arg0->u.l->n;
    }
    bool hit = false;
    for (size_t i = 0; i < nc && !hit; i++) {
        if (!want_str(r, at, &cands[i], ends ? "endswith()" : "startswith()"))
            return false;
        size_t k = cands[i].u.s.n;
        hit = k <= s.u.s.n && memcmp(ends ? s.u.s.p + s.u.s.n - k : s.u.s.p, cands[i].u.s.p, k) == 0;
    }
    *out = jv_bool(hit);
    return true;
}

bool jmethod(jrender *r, const jnode *at, jv obj, const char *name, const jargs *a, jv *out, bool *found)
{
    *found = true;
    if (obj.k == JV_STR) {
        const jv *a0 = arg(a, 0, NULL);
        if (strcmp(name, "strip") == 0 || strcmp(name, "lstrip") == 0 || strcmp(name, "rstrip") == 0) {
            if (a0 && a0->k != JV_NONE && !want_str(r, at, a0, name))
                return false;
            *out = strip(obj, a0, name[0] != 'r', name[0] != 'l');
            return true;
        }
        if (strcmp(name, "startswith") == 0 || strcmp(name, "endswith") == 0)
            return starts_ends(r, at, obj, a0, name[0] == 'e', out);
        if (strcmp(name, "split") == 0) {
            const jv *ms = arg(a, 1, "maxsplit");
            return str_split(r, at, obj, arg(a, 0, "sep"), ms && ms->k == JV_INT ? ms->u.i : -1, out);
        }
        if (strcmp(name, "lower") == 0 || strcmp(name, "upper") == 0 || strcmp(name, "capitalize") == 0 ||
            strcmp(name, "title") == 0)
            return jcase_convert(r, obj, name[0] == 'l'   ? JCASE_LOWER
                                         : name[0] == 'u' ? JCASE_UPPER
                                         : name[0] == 'c' ? JCASE_CAPITALIZE
                                                          : JCASE_TITLE_METHOD, out);
        if (strcmp(name, "replace") == 0) {
            const jv *o = arg(a, 0, NULL), *nw = arg(a, 1, NULL), *c = arg(a, 2, "count");
            if (!want_str(r, at, o, "replace()") || !want_str(r, at, nw, "replace()"))
                return false;
            return str_replace(r, at, obj, *o, *nw, c && c->k == JV_INT ? c->u.i : -1, out);
        }
        if (strcmp(name, "find") == 0 || strcmp(name, "count") == 0) {
            if (!want_str(r, at, a0, name))
                return false;
            int64_t hits = 0, first = -1;
            size_t k = a0->u.s.n;
            for (size_t i = 0; i + k <= obj.u.s.n;) {
                if (memcmp(obj.u.s.p + i, a0->u.s.p, k) == 0) {
                    if (first < 0)
                        first = (int64_t)ju8_len(obj.u.s.p, i);
                    hits++;
                    i += k ? k : 1;
                } else {
                    i++;
                }
            }
            if (k == 0)
                hits = (int64_t)ju8_len(obj.u.s.p, obj.u.s.n) + 1;
            *out = jv_int(name[0] == 'f' ? first : hits);
            return true;
        }
        if (strcmp(name, "join") == 0) {
            if (!a0 || a0->k != JV_LIST)
                return jerr(r, at, "join() expects a list"), false;
            jbuf b = {0};
            jbuf_puts(&b, "");
            for (size_t i = 0; i < a0->u.l->n; i++) {
                if (i)
                    jbuf_put(&b, obj.u.s.p, obj.u.s.n);
                jv_to_str(&b, a0->u.l->v[i]);
            }
            return jbuf_to_jv(r, &b, out);
        }
        if (strcmp(name, "isdigit") == 0 || strcmp(name, "isspace") == 0) {
            bool ok = obj.u.s.n > 0;
            for (size_t i = 0; i < obj.u.s.n && ok;) {
                size_t w = name[2] == 'd' ? (obj.u.s.p[i] >= '0' && obj.u.s.p[i] <= '9')
                                          : py_space_len(obj.u.s.p + i, obj.u.s.n - i);
                ok = w > 0;
                i += w ? w : 1;
            }
            *out = jv_bool(ok);
            return true;
        }
    } else if (obj.k == JV_DICT) {
        const jdict *d = obj.u.d;
        if (strcmp(name, "items") == 0 || strcmp(name, "keys") == 0 || strcmp(name, "values") == 0) {
            jlist *l;
            if (!mklist(r, at, d->n, &l, out))
                return false;
            for (size_t i = 0; i < d->n; i++) {
                if (name[0] == 'k') {
                    l->v[i] = d->k[i];
                } else if (name[0] == 'v') {
                    l->v[i] = d->v[i];
                } else {
                    jlist *pair;
                    if (!mklist(r, at, 2, &pair, &l->v[i]))
                        return false;
                    pair->tuple = true; /* Python's items() gives (key, value) */
                    pair->v[0] = d->k[i];
                    pair->v[1] = d->v[i];
                }
            }
            return true;
        }
        if (strcmp(name, "get") == 0) {
            const jv *k = arg(a, 0, NULL), *def = arg(a, 1, "default");
            if (!k)
                return jerr(r, at, "get() needs a key"), false;
            jv *v = jdict_get(d, *k);
            *out = v ? *v : def ? *def : jv_none();
            return true;
        }
    }
    *found = false;
    return true;
}

/* ---- filters ---- */
/* item.attribute, with dots for nested attributes (jinja2's attrgetter). */
static bool attr_path(jrender *r, const jnode *at, jv item, jv path, jv *out)
{
    if (path.k == JV_INT) {
        if (item.k == JV_LIST) {
            int64_t i = path.u.i < 0 ? path.u.i + (int64_t)item.u.l->n : path.u.i;
            *out = i >= 0 && (uint64_t)i < item.u.l->n ? item.u.l->v[i] : jv_undef("[index]", 7);
        } else {
            *out = jv_undef("[index]", 7);
        }
        return true;
    }
    if (path.k != JV_STR)
        return jerr(r, at, "attribute must be a string"), false;
    const char *p = path.u.s.p, *end = p + path.u.s.n;
    *out = item;
    while (p <= end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t n = dot ? (size_t)(dot - p) : (size_t)(end - p);
        if (out->k == JV_UNDEF)
            return jerr(r, at, "'%.*s' is undefined", (int)out->u.s.n, out->u.s.p), false;
        if (out->k == JV_DICT || out->k == JV_NS) {
            jv *v = jdict_get(out->u.d, jv_str(p, n));
            *out = v ? *v : jv_undef(p, n);
        } else {
            *out = jv_undef(p, n);
        }
        if (!dot)
            break;
        p = dot + 1;
    }
    return true;
}

/* The items of an iterable value (list, dict keys, string characters). */
static bool iter_items(jrender *r, const jnode *at, jv v, jlist **items)
{
    static jlist empty;
    switch (v.k) {
    case JV_LIST: *items = v.u.l; return true;
    case JV_UNDEF: *items = &empty; return true;
    case JV_DICT:
    case JV_NS: {
        jlist *l = jlist_new(&r->ar, v.u.d->n);
        if (!l)
            return jerr_oom(r, at);
        for (size_t i = 0; i < l->n; i++)
            l->v[i] = v.u.d->k[i];
        *items = l;
        return true;
    }
    case JV_STR: {
        size_t n = ju8_len(v.u.s.p, v.u.s.n);
        jlist *l = jlist_new(&r->ar, n);
        if (!l)
            return jerr_oom(r, at);
        for (size_t i = 0, o = 0; i < n; i++) {
            size_t w = cp_width(v.u.s.p + o, v.u.s.n - o);
            l->v[i] = jv_str(v.u.s.p + o, w);
            o += w;
        }
        *items = l;
        return true;
    }
    default:
        return terr(r, at, "'%s' object is not iterable%s", jv_type_name(v), "");
    }
}

/* select / reject / selectattr / rejectattr. */
static bool filter_select(jrender *r, const jnode *at, jv in, const jargs *a, bool by_attr, bool keep,
                          jv *out)
{
    jlist *items, *l;
    if (!iter_items(r, at, in, &items) || !mklist(r, at, items->n, &l, out))
        return false;
    size_t first = by_attr ? 1 : 0;
    if (by_attr && a->npos < 1)
        return jerr(r, at, "selectattr/rejectattr need an attribute"), false;
    const jv *test = a->npos > first ? &a->pos[first] : NULL;
    if (test && !want_str(r, at, test, "the test name"))
        return false;
    char tname[64];
    if (test)
        snprintf(tname, sizeof tname, "%.*s", (int)test->u.s.n, test->u.s.p);
    jargs targs = {.pos = a->pos + first + 1, .npos = a->npos > first + 1 ? a->npos - first - 1 : 0};
    size_t k = 0;
    for (size_t i = 0; i < items->n; i++) {
        jv v = items->v[i];
        if (by_attr && !attr_path(r, at, v, a->pos[0], &v))
            return false;
        bool t;
        if (test) {
            if (!jtest(r, at, tname, v, &targs, &t))
                return false;
        } else {
            t = jv_truthy(v);
        }
        if (t == keep)
            l->v[k++] = items->v[i];
    }
    l->n = k;
    l->lazy = true;
    return true;
}

static bool filter_map(jrender *r, const jnode *at, jv in, const jargs *a, jv *out)
{
    jlist *items, *l;
    if (!iter_items(r, at, in, &items) || !mklist(r, at, items->n, &l, out))
        return false;
    const jv *attr = kwarg(a, "attribute"), *def = kwarg(a, "default");
    if (!attr && a->npos < 1)
        return jerr(r, at, "map needs a filter name or attribute="), false;
    char fname[64] = "";
    if (!attr) {
        if (!want_str(r, at, &a->pos[0], "map()"))
            return false;
        snprintf(fname, sizeof fname, "%.*s", (int)a->pos[0].u.s.n, a->pos[0].u.s.p);
    }
    jargs fargs = {.pos = a->pos + 1, .npos = a->npos ? a->npos - 1 : 0};
    for (size_t i = 0; i < items->n; i++) {
        if (attr) {
            if (!attr_path(r, at, items->v[i], *attr, &l->v[i]))
                return false;
            if (l->v[i].k == JV_UNDEF && def)
                l->v[i] = *def;
        } else if (!jfilter(r, at, fname, items->v[i], &fargs, &l->v[i])) {
            return false;
        }
    }
    l->lazy = true;
    return true;
}

static bool filter_tojson(jrender *r, const jnode *at, jv in, const jargs *a, jv *out)
{
    const jv *ind = arg(a, 0, "indent"), *sk = kwarg(a, "sort_keys");
    int indent = -1;
    if (jv_is_lazy(in))
        return terr(r, at, "Object of type %s is not JSON serializable%s", "generator", "");
    if (ind && ind->k == JV_INT)
        indent = ind->u.i < 0 ? 0 : ind->u.i > 64 ? 64 : (int)ind->u.i;
    if (kwarg(a, "separators"))
        return jerr(r, at, "tojson(separators=...) is not supported"), false;
    jbuf b = {0};
    jbuf_puts(&b, "");
    const char *why = NULL;
    if (!jv_to_json(&b, in, indent, sk && jv_truthy(*sk), &why)) {
        free(b.p);
        return jerr(r, at, "tojson: %s", why), false;
    }
    return jbuf_to_jv(r, &b, out);
}

/* Length of the line boundary at p[i] as Python's str.splitlines() sees
 * it (\n, \r, \r\n, \v, \f, \x1c-\x1e, U+0085, U+2028, U+2029), or 0. */
static size_t line_break_len(const char *p, size_t n, size_t i)
{
    const unsigned char c = (unsigned char)p[i];
    if (c == '\r')
        return i + 1 < n && p[i + 1] == '\n' ? 2 : 1;
    if (c == '\n' || c == 0x0b || c == 0x0c || (c >= 0x1c && c <= 0x1e))
        return 1;
    if (c == 0xc2 && i + 1 < n && (unsigned char)p[i + 1] == 0x85)
        return 2;
    if (c == 0xe2 && i + 2 < n && (unsigned char)p[i + 1] == 0x80 &&
        ((unsigned char)p[i + 2] == 0xa8 || (unsigned char)p[i + 2] == 0xa9))
        return 3;
    return 0;
}

/* jinja2's do_indent: the lines of s + "\n" as str.splitlines() cuts them
 * (so \r\n, U+2028 and the other boundaries become "\n"), joined by "\n"
 * plus the indentation before each non-empty line after the first (before
 * every line after the first with blank=true, which therefore indents the
 * empty line a trailing newline leaves). A value that is not a string
 * fails there (s += "\n"), so it fails here too. */
static bool filter_indent(jrender *r, const jnode *at, jv in, const jargs *a, jv *out)
{
    if (!want_str(r, at, &in, "indent"))
        return false;
    const jv *w = arg(a, 0, "width"), *first = arg(a, 1, "first"), *blank = arg(a, 2, "blank");
    jbuf pad = {0};
    jbuf_puts(&pad, "");
    if (w && w->k == JV_STR)
        jbuf_put(&pad, w->u.s.p, w->u.s.n);
    else
        for (int64_t i = 0; i < (w && w->k == JV_INT ? (w->u.i > 256 ? 256 : w->u.i) : 4); i++)
            jbuf_puts(&pad, " ");
    const bool all = blank && jv_truthy(*blank);
    jbuf b = {0};
    jbuf_puts(&b, "");
    if (first && jv_truthy(*first))
        jbuf_put(&b, pad.p, pad.n);
    /* the lines of s + "\n" (an "\r" ending s and the "\n" are one break) */
    jbuf t = {0};
    jbuf_put(&t, in.u.s.p, in.u.s.n);
    jbuf_puts(&t, "\n");
    const char *p = t.p;
    const size_t n = t.n;
    size_t i = 0;
    bool first_line = true;
    while (!t.oom && i < n) {
        size_t e = i, bl = 0;
        while (!(bl = line_break_len(p, n, e)))
            e++; /* ends at the final "\n" at the latest */
        if (!first_line) {
            jbuf_puts(&b, "\n");
            if (all || e > i)
                jbuf_put(&b, pad.p, pad.n);
        }
        jbuf_put(&b, p + i, e - i);
        first_line = false;
        i = e + bl;
    }
    if (t.oom)
        b.oom = true;
    free(t.p);
    free(pad.p);
    return jbuf_to_jv(r, &b, out);
}

/* ---- int() and float() of a string, as Python reads it ---- */

/* The stripped string with each Unicode decimal digit (category Nd) as its
 * ASCII digit, as Python's int() and float() read them ("١٢" is 12), into
 * tmp (NUL-terminated). false when anything else is not ASCII or it does
 * not fit. Nd digits come in runs of ten from 0, so a digit's value is its
 * distance from the run's start. */
static bool py_num_ascii(jv t, char *tmp, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < t.u.s.n;) {
        unsigned char c = (unsigned char)t.u.s.p[i];
        if (k + 1 >= cap)
            return false;
        if (c < 0x80) {
            tmp[k++] = (char)c;
            i++;
            continue;
        }
        utf8proc_int32_t cp;
        utf8proc_ssize_t l = utf8proc_iterate((const utf8proc_uint8_t *)t.u.s.p + i,
                                              (utf8proc_ssize_t)(t.u.s.n - i), &cp);
        if (l <= 0 || utf8proc_category(cp) != UTF8PROC_CATEGORY_ND)
            return false;
        int v = 0;
        while (utf8proc_category(cp - 1 - v) == UTF8PROC_CATEGORY_ND)
            v++;
        tmp[k++] = (char)('0' + v % 10);
        i += (size_t)l;
    }
    tmp[k] = 0;
    return true;
}

/* A digit's value in bases up to 36 (letters either case), 99 if none. */
static int digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'Z')
        return c - 'A' + 10;
    return 99;
}

/* Python's int(s, base) on the ASCII form: a sign, the prefix 0x / 0o / 0b
 * (the one of base, or any with base 0, where a decimal may not start with
 * 0 unless all zeros), digits with single underscores between them (and
 * one after a prefix). 1: *v set; 0: not an int literal (ValueError);
 * -1: past int64 (Python has no limit; we refuse). */
static int py_parse_int(const char *s, int base, int64_t *v)
{
    bool neg = false;
    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    bool prefixed = false;
    if (s[0] == '0' && s[1]) {
        char x = (char)(s[1] | 0x20);
        int pb = x == 'x' ? 16 : x == 'o' ? 8 : x == 'b' ? 2 : 0;
        if (pb && (base == 0 || base == pb)) {
            base = pb;
            s += 2;
            prefixed = true;
            if (*s == '_')
                s++;
        }
    }
    bool zero_lead = base == 0;
    if (base == 0)
        base = 10;
    if (base < 2 || base > 36)
        return 0;
    uint64_t acc = 0;
    bool any = false, overflow = false, nonzero = false;
    const char first_digit = *s;
    for (; *s; s++) {
        if (*s == '_') {
            if (!any || !s[1] || s[1] == '_')
                return 0;
            continue;
        }
        int d = digit_value(*s);
        if (d >= base)
            return 0;
        if (d)
            nonzero = true;
        if (acc > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
            overflow = true;
        else
            acc = acc * (uint64_t)base + (uint64_t)d;
        any = true;
    }
    if (!any)
        return 0;
    /* int("010", 0) is a ValueError: base 0 takes no leading zeros */
    if (zero_lead && !prefixed && nonzero && first_digit == '0')
        return 0;
    if (overflow || acc > (uint64_t)INT64_MAX + (neg ? 1u : 0u))
        return -1;
    *v = neg ? (int64_t)(0 - acc) : (int64_t)acc;
    return 1;
}

/* Python's float(s) on the ASCII form: [sign] digits [. digits] [e [sign]
 * digits] (either side of the point may be empty, not both; single
 * underscores between digits), or inf / infinity / nan in any case. No hex
 * (C's strtod would read "0x10"). */
static bool py_parse_float(const char *s, double *f)
{
    const char *p = s;
    char buf[80];
    size_t k = 0;
    /* The sign of inf, kept apart: buf[0] holds it only when there is one */
    bool neg = *p == '-';
    if (*p == '+' || *p == '-')
        buf[k++] = *p++;
    if (strcasecmp(p, "inf") == 0 || strcasecmp(p, "infinity") == 0 || strcasecmp(p, "nan") == 0) {
        *f = strcasecmp(p, "nan") == 0 ? NAN : (neg ? -INFINITY : INFINITY);
        return true;
    }
    size_t mant = 0;
    bool point = false, exp = false, exp_digits = false;
    char prev = 0;
    for (; *p; p++) {
        char c = *p;
        if (k + 2 >= sizeof buf)
            return false;
        if (c >= '0' && c <= '9') {
            if (exp)
                exp_digits = true;
            else
                mant++;
            buf[k++] = c;
        } else if (c == '_') {
            if (!(prev >= '0' && prev <= '9') || !(p[1] >= '0' && p[1] <= '9'))
                return false;
        } else if (c == '.' && !point && !exp) {
            point = true;
            buf[k++] = c;
        } else if ((c == 'e' || c == 'E') && !exp && mant) {
            exp = true;
            buf[k++] = 'e';
            if (p[1] == '+' || p[1] == '-')
                buf[k++] = *++p;
        } else {
            return false;
        }
        prev = c;
    }
    if (!mant || (exp && !exp_digits))
        return false;
    buf[k] = 0;
    *f = strtod(buf, NULL);
    return true;
}

static const char *const FILTERS[] = {
    "abs", "capitalize", "count", "d", "default", "e", "escape", "first", "float", "indent", "int",
    "items", "join", "last", "length", "list", "lower", "map", "max", "min", "reject", "rejectattr",
    "replace", "reverse", "round", "safe", "select", "selectattr", "sort", "string", "sum", "title", "tojson",
    "trim", "unique", "upper", "wordcount",
};

static const char *const TESTS[] = {
    "!=", "<", "<=", "==", ">", ">=", "boolean", "callable", "defined", "divisibleby", "eq", "equalto",
    "escaped", "even", "false", "float", "ge", "gt", "greaterthan", "in", "integer", "iterable", "le",
    "lessthan", "lower", "lt", "mapping", "ne", "none", "number", "odd", "sameas", "sequence", "string",
    "true", "undefined", "upper",
};

static bool known(const char *const *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], name) == 0)
            return true;
    return false;
}

bool jfilter_known(const char *name) { return known(FILTERS, sizeof FILTERS / sizeof *FILTERS, name); }
bool jtest_known(const char *name) { return known(TESTS, sizeof TESTS / sizeof *TESTS, name); }

/* jinja2's sort, unique, min and max ignore the case of strings unless
 * case_sensitive=true. */
static bool has_non_ascii(jv s)
{
    for (size_t i = 0; i < s.u.s.n; i++)
        if ((unsigned char)s.u.s.p[i] >= 0x80)
            return true;
    return false;
}

/* jinja2's ignore_case: strings compare by their str.lower() (the full
 * Unicode mapping: "É" and "é" are one for unique, "İ" sorts as "i̇"),
 * in code point order, which is UTF-8 byte order. */
static bool compare_ci(jrender *r, jv a, jv b, bool ci, int *c)
{
    if (!ci || a.k != JV_STR || b.k != JV_STR)
        return jv_compare(a, b, c);
    if (has_non_ascii(a) || has_non_ascii(b)) {
        jv la, lb;
        if (!jcase_convert(r, a, JCASE_LOWER, &la) || !jcase_convert(r, b, JCASE_LOWER, &lb))
            return false;
        return jv_compare(la, lb, c);
    }
    size_t n = a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a.u.s.p[i], y = (unsigned char)b.u.s.p[i];
        x = (unsigned char)(x >= 'A' && x <= 'Z' ? x + 32 : x);
        y = (unsigned char)(y >= 'A' && y <= 'Z' ? y + 32 : y);
        if (x != y) {
            *c = x < y ? -1 : 1;
            return true;
        }
    }
    *c = (a.u.s.n > b.u.s.n) - (a.u.s.n < b.u.s.n);
    return true;
}

static bool sort_list(jrender *r, const jnode *at, jlist *l, bool reverse, bool ci)
{
    for (size_t i = 1; i < l->n; i++)
        for (size_t j = i; j > 0; j--) {
            int c;
            if (!compare_ci(r, l->v[j - 1], l->v[j], ci, &c))
                return terr(r, at, "cannot compare %s with %s", jv_type_name(l->v[j - 1]),
                            jv_type_name(l->v[j]));
            if (reverse ? c >= 0 : c <= 0)
                break;
            jv t = l->v[j];
            l->v[j] = l->v[j - 1];
            l->v[j - 1] = t;
        }
    return true;
}

bool jfilter(jrender *r, const jnode *at, const char *name, jv in, const jargs *a, jv *out)
{
    const jv *a0 = arg(a, 0, NULL);
    if (strcmp(name, "default") == 0 || strcmp(name, "d") == 0) {
        const jv *def = arg(a, 0, "default_value"), *boolean = arg(a, 1, "boolean");
        bool use = in.k == JV_UNDEF || (boolean && jv_truthy(*boolean) && !jv_truthy(in));
        *out = use ? (def ? *def : jv_str("", 0)) : in;
        return true;
    }
    if (strcmp(name, "safe") == 0) {
        *out = in;
        return true;
    }
    if (strcmp(name, "string") == 0)
        return jv_stringify(r, in, out);
    if (strcmp(name, "tojson") == 0)
        return filter_tojson(r, at, in, a, out);
    if (strcmp(name, "length") == 0 || strcmp(name, "count") == 0) {
        switch (in.k) {
        case JV_UNDEF: *out = jv_int(0); return true;
        case JV_STR: *out = jv_int((int64_t)ju8_len(in.u.s.p, in.u.s.n)); return true;
        case JV_LIST:
            if (in.u.l->lazy)
                return terr(r, at, "object of type '%s' has no len()%s", "generator", "");
            *out = jv_int((int64_t)in.u.l->n);
            return true;
        case JV_DICT:
        case JV_NS: *out = jv_int((int64_t)in.u.d->n); return true;
        default: return terr(r, at, "object of type '%s' has no len()%s", jv_type_name(in), "");
        }
    }
    if (strcmp(name, "select") == 0 || strcmp(name, "reject") == 0)
        return filter_select(r, at, in, a, false, name[0] == 's', out);
    if (strcmp(name, "selectattr") == 0 || strcmp(name, "rejectattr") == 0)
        return filter_select(r, at, in, a, true, name[0] == 's', out);
    if (strcmp(name, "map") == 0)
        return filter_map(r, at, in, a, out);
    if (strcmp(name, "items") == 0) {
        if (in.k == JV_UNDEF) {
            jlist *l;
            return mklist(r, at, 0, &l, out);
        }
        if (in.k != JV_DICT && in.k != JV_NS)
            return terr(r, at, "items filter expects a mapping, not %s%s", jv_type_name(in), "");
        jv d = in;
        d.k = JV_DICT;
        bool found;
        if (!jmethod(r, at, d, "items", a, out, &found))
            return false;
        out->u.l->lazy = true; /* jinja2's items filter is a generator */
        return true;
    }
    if (strcmp(name, "list") == 0) {
        jlist *items, *l;
        if (!iter_items(r, at, in, &items) || !mklist(r, at, items->n, &l, out))
            return false;
        if (items->n)
            memcpy(l->v, items->v, items->n * sizeof *l->v);
        return true;
    }
    if (strcmp(name, "first") == 0 || strcmp(name, "last") == 0) {
        jlist *items;
        if (!iter_items(r, at, in, &items))
            return false;
        if (name[0] == 'l' && jv_is_lazy(in)) /* next(iter(reversed(value))) */
            return terr(r, at, "'%s' object is not reversible%s", "generator", "");
        *out = items->n ? items->v[name[0] == 'f' ? 0 : items->n - 1] : jv_undef(name, strlen(name));
        return true;
    }
    if (strcmp(name, "reverse") == 0 || strcmp(name, "unique") == 0 || strcmp(name, "sort") == 0) {
        jlist *items, *l;
        if (!iter_items(r, at, in, &items) || !mklist(r, at, items->n, &l, out))
            return false;
        size_t k = 0;
        const jv *cs = kwarg(a, "case_sensitive");
        bool ci = !(cs && jv_truthy(*cs));
        for (size_t i = 0; i < items->n; i++) {
            jv v = items->v[name[0] == 'r' ? items->n - 1 - i : i];
            bool dup = false;
            for (size_t j = 0; name[0] == 'u' && j < k && !dup; j++) {
                int c = 1;
                dup = ci && v.k == JV_STR && l->v[j].k == JV_STR ? compare_ci(r, l->v[j], v, true, &c) && c == 0
                                                                   : jv_equal(l->v[j], v);
            }
            if (!dup)
                l->v[k++] = v;
        }
        l->n = k;
        /* unique is a generator; reverse is reversed(value), an iterator,
         * except of a generator, which is not reversible: list(value)
         * reversed then */
        l->lazy = name[0] == 'u' || (name[0] == 'r' && in.k != JV_STR && !jv_is_lazy(in));
        if (name[0] == 's') {
            const jv *rev = kwarg(a, "reverse");
            if (kwarg(a, "attribute"))
                return jerr(r, at, "sort(attribute=...) is not supported"), false;
            return sort_list(r, at, l, rev && jv_truthy(*rev), ci);
        }
        if (in.k == JV_STR && name[0] == 'r') {
            jbuf b = {0};
            jbuf_puts(&b, "");
            for (size_t i = 0; i < l->n; i++)
                jv_to_str(&b, l->v[i]);
            return jbuf_to_jv(r, &b, out);
        }
        return true;
    }
    if (strcmp(name, "sum") == 0 || strcmp(name, "min") == 0 || strcmp(name, "max") == 0) {
        jlist *items;
        if (!iter_items(r, at, in, &items))
            return false;
        if (name[1] == 'u') {
            int64_t s = 0;
            double f = 0;
            bool fl = false;
            for (size_t i = 0; i < items->n; i++) {
                jv v = items->v[i];
                if (v.k == JV_FLOAT) {
                    fl = true;
                    f += v.u.f;
                } else if (v.k == JV_INT || v.k == JV_BOOL) {
                    if (__builtin_add_overflow(s, v.k == JV_INT ? v.u.i : v.u.b, &s))
                        return jerr(r, at, "integer overflow"), false;
                } else {
                    return terr(r, at, "sum: unsupported item type %s%s", jv_type_name(v), "");
                }
            }
            *out = fl ? jv_float(f + (double)s) : jv_int(s);
            return true;
        }
        if (items->n == 0) {
            *out = jv_undef(name, 3);
            return true;
        }
        jv best = items->v[0];
        for (size_t i = 1; i < items->n; i++) {
            int c;
            const jv *cs = kwarg(a, "case_sensitive");
            if (!compare_ci(r, items->v[i], best, !(cs && jv_truthy(*cs)), &c))
                return terr(r, at, "cannot compare %s with %s", jv_type_name(items->v[i]), jv_type_name(best));
            if (name[1] == 'i' ? c < 0 : c > 0)
                best = items->v[i];
        }
        *out = best;
        return true;
    }
    if (strcmp(name, "join") == 0) {
        jlist *items;
        if (!iter_items(r, at, in, &items))
            return false;
        const jv *sep = arg(a, 0, "d"), *attr = arg(a, 1, "attribute");
        if (sep && !want_str(r, at, sep, "join()"))
            return false;
        jbuf b = {0};
        jbuf_puts(&b, "");
        for (size_t i = 0; i < items->n; i++) {
            jv v = items->v[i];
            if (attr && !attr_path(r, at, v, *attr, &v)) {
                free(b.p);
                return false;
            }
            if (i && sep)
                jbuf_put(&b, sep->u.s.p, sep->u.s.n);
            jv_to_str(&b, v);
        }
        return jbuf_to_jv(r, &b, out);
    }
    if (strcmp(name, "int") == 0 || strcmp(name, "float") == 0) {
        const jv *def = arg(a, 0, "default");
        bool is_int = name[0] == 'i';
        jv d = def ? *def : is_int ? jv_int(0) : jv_float(0.0);
        if (in.k == JV_INT || in.k == JV_BOOL) {
            int64_t i = in.k == JV_INT ? in.u.i : in.u.b;
            *out = is_int ? jv_int(i) : jv_float((double)i);
        } else if (in.k == JV_FLOAT) {
            /* jinja2's do_int: int(nan) is a ValueError, so the default;
             * int(inf) an OverflowError, which it lets through; a finite
             * float past int64 is a big int in Python, which we refuse
             * rather than give something else */
            if (is_int && isinf(in.u.f))
                return jerr(r, at, "OverflowError: cannot convert float infinity to integer"), false;
            if (is_int && !isnan(in.u.f) && !(in.u.f >= -0x1p63 && in.u.f < 0x1p63))
                return jerr(r, at, "int(): %g is past the 64-bit integers this renderer has",
                            in.u.f), false;
            if (is_int && isnan(in.u.f))
                *out = d;
            else
                *out = is_int ? jv_int((int64_t)in.u.f) : in;
        } else if (in.k == JV_STR) {
            /* jinja2's do_int: int(value, base), else int(float(value)),
             * else the default; do_float: float(value), else the default */
            const jv *bv = arg(a, 1, "base");
            int base = bv && bv->k == JV_INT && bv->u.i >= 0 && bv->u.i <= 36 ? (int)bv->u.i : 10;
            char tmp[80];
            double f;
            int64_t v;
            int got = 0;
            if (!py_num_ascii(strip(in, NULL, true, true), tmp, sizeof tmp)) {
                *out = d;
                return true;
            }
            if (is_int && (got = py_parse_int(tmp, base, &v)) < 0)
                return jerr(r, at, "int(): '%s' is past the 64-bit integers this renderer has",
                            tmp), false;
            if (is_int && got)
                *out = jv_int(v);
            else if (!py_parse_float(tmp, &f))
                *out = d;
            else if (!is_int)
                *out = jv_float(f);
            else /* int(float): inf is an OverflowError, nan a ValueError: the default */
                *out = f > -9.2e18 && f < 9.2e18 ? jv_int((int64_t)f) : d;
        } else if (in.k == JV_UNDEF) { /* Undefined.__int__ / __float__ fail */
            return jerr(r, at, "'%.*s' is undefined", (int)(in.u.s.n < 80 ? in.u.s.n : 80),
                        in.u.s.p ? in.u.s.p : ""), false;
        } else {
            *out = d;
        }
        return true;
    }
    if (strcmp(name, "abs") == 0) {
        if (in.k == JV_INT && in.u.i != INT64_MIN)
            *out = jv_int(in.u.i < 0 ? -in.u.i : in.u.i);
        else if (in.k == JV_FLOAT)
            *out = jv_float(in.u.f < 0 ? -in.u.f : in.u.f);
        else if (in.k == JV_BOOL)
            *out = jv_int(in.u.b);
        else
            return terr(r, at, "bad operand type for abs(): '%s'%s", jv_type_name(in), "");
        return true;
    }
    if (strcmp(name, "round") == 0) {
        /* jinja2's do_round: method "common" is Python's round(value,
         * precision) (halves to even, on the double's exact value; an int
         * stays an int), "floor" and "ceil" are math's on value x
         * 10^precision, divided back (a float) */
        const jv *prec = arg(a, 0, "precision"), *meth = arg(a, 1, "method");
        if (in.k != JV_INT && in.k != JV_FLOAT && in.k != JV_BOOL)
            return terr(r, at, "round expects a number, not %s%s", jv_type_name(in), "");
        if (prec && prec->k != JV_INT)
            return terr(r, at, "round: precision must be an integer, not %s%s",
                        jv_type_name(*prec), "");
        int64_t p = prec ? prec->u.i : 0;
        const char *method = "common";
        if (meth) {
            if (meth->k != JV_STR)
                return terr(r, at, "round: method must be a string%s%s", "", "");
            method = meth->u.s.n == 5 && memcmp(meth->u.s.p, "floor", 5) == 0  ? "floor"
                     : meth->u.s.n == 4 && memcmp(meth->u.s.p, "ceil", 4) == 0 ? "ceil"
                     : meth->u.s.n == 6 && memcmp(meth->u.s.p, "common", 6) == 0 ? "common"
                                                                                  : NULL;
            if (!method)
                return terr(r, at, "round: method must be common, ceil or floor%s%s", "", "");
        }
        double f = in.k == JV_FLOAT ? in.u.f : (double)(in.k == JV_INT ? in.u.i : in.u.b);
        double m = pow(10.0, (double)(p < -308 ? -308 : p > 308 ? 308 : p));
        if (strcmp(method, "common") != 0) {
            double x = strcmp(method, "floor") == 0 ? floor(f * m) : ceil(f * m);
            *out = jv_float(x / m);
            return true;
        }
        if (in.k != JV_FLOAT && p >= 0) { /* round(int, n >= 0) is the int */
            *out = in.k == JV_INT ? in : jv_int(in.u.b);
            return true;
        }
        double x = f;
        if (!isfinite(f) || fabs(f) >= 4503599627370496.0 || p > 17) {
            x = f; /* already whole, or finer than a double holds */
        } else if (p >= 0) {
            char buf[400]; /* printf rounds the exact value, halves to even: as Python */
            snprintf(buf, sizeof buf, "%.*f", (int)p, f);
            x = strtod(buf, NULL);
        } else {
            x = nearbyint(f * m) / m; /* the default mode: halves to even */
        }
        if (in.k != JV_FLOAT) /* round(int, negative n) is an int */
            *out = fabs(x) < 9.2e18 ? jv_int((int64_t)x) : in;
        else
            *out = jv_float(x);
        return true;
    }
    if (strcmp(name, "wordcount") == 0) {
        if (!want_str(r, at, &in, "wordcount"))
            return false;
        *out = jv_int(jcase_wordcount(r, in));
        return true;
    }
    /* the rest work on the string form */
    jv s;
    if (!jv_stringify(r, in, &s))
        return false;
    if (strcmp(name, "trim") == 0) {
        if (a0 && a0->k != JV_NONE && !want_str(r, at, a0, "trim"))
            return false;
        *out = strip(s, a0, true, true);
        return true;
    }
    if (strcmp(name, "upper") == 0 || strcmp(name, "lower") == 0 || strcmp(name, "capitalize") == 0 ||
        strcmp(name, "title") == 0) /* the title filter is jinja2's own, not str.title */
        return jcase_convert(r, s, name[0] == 'l'   ? JCASE_LOWER
                                   : name[0] == 'u' ? JCASE_UPPER
                                   : name[0] == 'c' ? JCASE_CAPITALIZE
                                                    : JCASE_TITLE_FILTER, out);
    if (strcmp(name, "replace") == 0) {
        const jv *o = arg(a, 0, "old"), *nw = arg(a, 1, "new"), *c = arg(a, 2, "count");
        jv os, ns;
        if (!o || !nw)
            return jerr(r, at, "replace needs two arguments"), false;
        if (!jv_stringify(r, *o, &os) || !jv_stringify(r, *nw, &ns))
            return false;
        return str_replace(r, at, s, os, ns, c && c->k == JV_INT ? c->u.i : -1, out);
    }
    if (strcmp(name, "indent") == 0)
        return filter_indent(r, at, in, a, out);
    if (strcmp(name, "escape") == 0 || strcmp(name, "e") == 0) {
        jbuf b = {0};
        jbuf_puts(&b, "");
        for (size_t i = 0; i < s.u.s.n; i++) {
            char c = s.u.s.p[i];
            const char *rep = c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;"
                            : c == '"' ? "&#34;" : c == '\'' ? "&#39;" : NULL;
            if (rep)
                jbuf_puts(&b, rep);
            else
                jbuf_put(&b, &c, 1);
        }
        return jbuf_to_jv(r, &b, out);
    }
    return terr(r, at, "no filter named '%s'%s", name, "");
}

/* ---- tests ---- */
bool jtest(jrender *r, const jnode *at, const char *name, jv in, const jargs *a, bool *out)
{
    const jv *a0 = arg(a, 0, NULL);
    int c;
    if (strcmp(name, "defined") == 0) *out = in.k != JV_UNDEF;
    else if (strcmp(name, "undefined") == 0) *out = in.k == JV_UNDEF;
    else if (strcmp(name, "none") == 0) *out = in.k == JV_NONE;
    else if (strcmp(name, "string") == 0) *out = in.k == JV_STR;
    else if (strcmp(name, "number") == 0) *out = in.k == JV_INT || in.k == JV_FLOAT || in.k == JV_BOOL;
    else if (strcmp(name, "integer") == 0) *out = in.k == JV_INT;
    else if (strcmp(name, "float") == 0) *out = in.k == JV_FLOAT;
    else if (strcmp(name, "boolean") == 0) *out = in.k == JV_BOOL;
    else if (strcmp(name, "true") == 0) *out = in.k == JV_BOOL && in.u.b;
    else if (strcmp(name, "false") == 0) *out = in.k == JV_BOOL && !in.u.b;
    else if (strcmp(name, "mapping") == 0) *out = in.k == JV_DICT;
    else if (strcmp(name, "iterable") == 0)
        *out = in.k == JV_STR || in.k == JV_LIST || in.k == JV_DICT || in.k == JV_UNDEF;
    else if (strcmp(name, "sequence") == 0)
        *out = in.k == JV_STR || in.k == JV_LIST || in.k == JV_DICT || in.k == JV_UNDEF;
    else if (strcmp(name, "callable") == 0) *out = in.k == JV_MACRO || in.k == JV_FUNC;
    else if (strcmp(name, "escaped") == 0) *out = false;
    else if (strcmp(name, "lower") == 0 || strcmp(name, "upper") == 0) {
        if (in.k != JV_STR)
            return terr(r, at, "'%s' test needs a string, not %s", name, jv_type_name(in));
        *out = jcase_is(in, name[0] == 'u');
    } else if (strcmp(name, "odd") == 0 || strcmp(name, "even") == 0 || strcmp(name, "divisibleby") == 0) {
        if (in.k != JV_INT && in.k != JV_BOOL)
            return terr(r, at, "'%s' test needs an integer, not %s", name, jv_type_name(in));
        int64_t v = in.k == JV_INT ? in.u.i : in.u.b;
        if (name[0] == 'd') {
            if (!a0 || a0->k != JV_INT || a0->u.i == 0)
                return jerr(r, at, "divisibleby needs a non-zero integer"), false;
            *out = v % a0->u.i == 0;
        } else {
            *out = (v % 2 != 0) == (name[0] == 'o');
        }
    } else if (strcmp(name, "sameas") == 0) {
        if (!a0)
            return jerr(r, at, "sameas needs an argument"), false;
        /* Python identity: None, True and False are singletons; other
         * values are taken as identical when equal and of one kind */
        *out = in.k == a0->k && jv_equal(in, *a0);
    } else if (strcmp(name, "in") == 0) {
        if (!a0)
            return jerr(r, at, "in needs an argument"), false;
        if (a0->k == JV_STR && in.k == JV_STR) {
            *out = false;
            for (size_t i = 0; i + in.u.s.n <= a0->u.s.n && !*out; i++)
                *out = memcmp(a0->u.s.p + i, in.u.s.p, in.u.s.n) == 0;
        } else if (a0->k == JV_LIST) {
            *out = false;
            for (size_t i = 0; i < a0->u.l->n && !*out; i++)
                *out = jv_equal(a0->u.l->v[i], in);
        } else if (a0->k == JV_DICT) {
            *out = jdict_get(a0->u.d, in) != NULL;
        } else {
            return terr(r, at, "'in' test: bad container %s%s", jv_type_name(*a0), "");
        }
    } else {
        bool eq = strcmp(name, "eq") == 0 || strcmp(name, "equalto") == 0 || strcmp(name, "==") == 0;
        bool ne = strcmp(name, "ne") == 0 || strcmp(name, "!=") == 0;
        int op = strcmp(name, "lt") == 0 || strcmp(name, "lessthan") == 0 || strcmp(name, "<") == 0 ? 1
               : strcmp(name, "le") == 0 || strcmp(name, "<=") == 0 ? 2
               : strcmp(name, "gt") == 0 || strcmp(name, "greaterthan") == 0 || strcmp(name, ">") == 0 ? 3
               : strcmp(name, "ge") == 0 || strcmp(name, ">=") == 0 ? 4 : 0;
        if (!eq && !ne && !op)
            return terr(r, at, "no test named '%s'%s", name, "");
        if (!a0)
            return terr(r, at, "test '%s' needs an argument%s", name, "");
        if (eq || ne) {
            *out = jv_equal(in, *a0) == eq;
        } else {
            if (!jv_compare(in, *a0, &c))
                return terr(r, at, "cannot compare %s with %s", jv_type_name(in), jv_type_name(*a0));
            *out = op == 1 ? c < 0 : op == 2 ? c <= 0 : op == 3 ? c > 0 : c >= 0;
        }
    }
    return true;
}

/* ---- global functions ---- */
bool jcall_func(jrender *r, jscope *s, const jnode *at, int fn, const jargs *a, jv *out)
{
    (void)s;
    if (fn == JF_RAISE) {
        jbuf b = {0};
        jbuf_puts(&b, "");
        if (a->npos)
            jv_to_str(&b, a->pos[0]);
        jerr(r, at, "the template raised an error: %s", b.p ? b.p : "");
        free(b.p);
        return false;
    }
    if (fn == JF_RANGE) {
        int64_t v[3] = {0, 0, 1};
        if (a->npos < 1 || a->npos > 3 || a->nkw)
            return jerr(r, at, "range expects 1 to 3 integer arguments"), false;
        for (size_t i = 0; i < a->npos; i++) {
            if (a->pos[i].k != JV_INT && a->pos[i].k != JV_BOOL)
                return terr(r, at, "range: '%s' object cannot be interpreted as an integer%s",
                            jv_type_name(a->pos[i]), "");
            v[a->npos == 1 ? 1 : i] = a->pos[i].k == JV_INT ? a->pos[i].u.i : a->pos[i].u.b;
        }
        if (v[2] == 0)
            return jerr(r, at, "range() arg 3 must not be zero"), false;
        double count = v[2] > 0 ? (v[1] > v[0] ? ((double)v[1] - (double)v[0] + (double)v[2] - 1) / (double)v[2] : 0)
                                : (v[0] > v[1] ? ((double)v[0] - (double)v[1] - (double)v[2] - 1) / (double)-v[2] : 0);
        if (count > RANGE_MAX)
            return jerr(r, at, "range() of more than %d items", RANGE_MAX), false;
        jlist *l;
        if (!mklist(r, at, (size_t)count, &l, out))
            return false;
        for (size_t i = 0; i < l->n; i++)
            l->v[i] = jv_int(v[0] + (int64_t)i * v[2]);
        return true;
    }
    if (fn == JF_NAMESPACE || fn == JF_DICT) {
        jdict *d = jarena_alloc(&r->ar, sizeof *d);
        if (!d)
            return jerr_oom(r, at);
        for (size_t i = 0; i < a->npos; i++) {
            if (a->pos[i].k != JV_DICT && a->pos[i].k != JV_NS)
                return jerr(r, at, "namespace()/dict() take a mapping and keyword arguments"), false;
            for (size_t k = 0; k < a->pos[i].u.d->n; k++)
                if (!jdict_set(&r->ar, d, a->pos[i].u.d->k[k], a->pos[i].u.d->v[k]))
                    return jerr_oom(r, at);
        }
        for (size_t i = 0; i < a->nkw; i++)
            if (!jdict_set(&r->ar, d, jv_str(a->kwn[i], strlen(a->kwn[i])), a->kwv[i]))
                return jerr_oom(r, at);
        out->k = fn == JF_NAMESPACE ? JV_NS : JV_DICT;
        out->u.d = d;
        return true;
    }
    if (fn == JF_STRFTIME) {
        if (a->npos != 1 || a->pos[0].k != JV_STR)
            return jerr(r, at, "strftime_now expects a format string"), false;
        char fmt[128], buf[256];
        snprintf(fmt, sizeof fmt, "%.*s", (int)a->pos[0].u.s.n, a->pos[0].u.s.p);
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        size_t n = strftime(buf, sizeof buf, fmt, &tm);
        char *p = jarena_strdup(&r->ar, buf, n);
        if (!p)
            return jerr_oom(r, at);
        *out = jv_str(p, n);
        return true;
    }
    return jerr(r, at, "not callable"), false;
}

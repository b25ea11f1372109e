/* Jinja values: the arena they live in, comparisons with Python's rules,
 * and the three ways a value becomes text (str, repr, json.dumps), each as
 * Python writes it, since templates print values with all three. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/jinja_internal.h"

struct jarena_chunk {
    jarena_chunk *next;
    size_t size, used;
    max_align_t data[];
};

void *jarena_alloc(jarena *a, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (n == 0)
        n = sizeof(max_align_t);
    if (a->failed || (a->limit && (n > a->limit || a->used > a->limit - n))) {
        a->over_limit = a->over_limit || !a->failed;
        a->failed = true;
        return NULL;
    }
    jarena_chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t size = n > 65536 ? n : 65536;
        c = malloc(sizeof *c + size);
        if (!c) {
            a->failed = true;
            return NULL;
        }
        c->size = size;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    a->used += n;
    memset(p, 0, n);
    return p;
}

char *jarena_strdup(jarena *a, const char *s, size_t n)
{
    char *p = jarena_alloc(a, n + 1);
    if (p) {
        if (n)
            memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

void jarena_free(jarena *a)
{
    jarena_chunk *c = a->head;
    while (c) {
        jarena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->used = 0;
}

/* ---- UTF-8 ---- */
size_t ju8_len(const char *s, size_t n)
{
    size_t cp = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            cp++;
    return cp;
}

size_t ju8_offset(const char *s, size_t n, size_t cp)
{
    size_t i = 0;
    while (i < n && cp > 0) {
        i++;
        while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
        cp--;
    }
    return i;
}

/* ---- dict / list ---- */
jlist *jlist_new(jarena *a, size_t n)
{
    jlist *l = jarena_alloc(a, sizeof *l);
    if (!l)
        return NULL;
    if (n && n > SIZE_MAX / sizeof(jv))
        return NULL;
    l->v = n ? jarena_alloc(a, n * sizeof(jv)) : NULL;
    if (n && !l->v)
        return NULL;
    l->n = n;
    return l;
}

jv *jdict_get(const jdict *d, jv key)
{
    for (size_t i = 0; d && i < d->n; i++)
        if (jv_equal(d->k[i], key))
            return &d->v[i];
    return NULL;
}

jv *jdict_get_str(const jdict *d, const char *key)
{
    return jdict_get(d, jv_str(key, strlen(key)));
}

bool jdict_set(jarena *a, jdict *d, jv key, jv val)
{
    jv *v = jdict_get(d, key);
    if (v) {
        *v = val;
        return true;
    }
    return jdict_append(a, d, key, val);
}

bool jdict_append(jarena *a, jdict *d, jv key, jv val)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        jv *k = jarena_alloc(a, cap * sizeof *k), *nv = jarena_alloc(a, cap * sizeof *nv);
        if (!k || !nv)
            return false;
        if (d->n) {
            memcpy(k, d->k, d->n * sizeof *k);
            memcpy(nv, d->v, d->n * sizeof *nv);
        }
        d->k = k;
        d->v = nv;
        d->cap = cap;
    }
    d->k[d->n] = key;
    d->v[d->n] = val;
    d->n++;
    return true;
}

/* ---- truth, equality, order ---- */
bool jv_truthy(jv v)
{
    switch (v.k) {
    case JV_UNDEF: case JV_NONE: return false;
    case JV_BOOL: return v.u.b;
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0.0;
    case JV_STR: return v.u.s.n > 0;
    case JV_LIST: return v.u.l->lazy || v.u.l->n > 0;
    case JV_DICT: return v.u.d->n > 0;
    default: return true;
    }
}

static bool is_num(jv v) { return v.k == JV_BOOL || v.k == JV_INT || v.k == JV_FLOAT; }
static double num(jv v) { return v.k == JV_FLOAT ? v.u.f : v.k == JV_INT ? (double)v.u.i : (double)v.u.b; }

bool jv_equal(jv a, jv b)
{
    if (is_num(a) && is_num(b)) {
        if (a.k != JV_FLOAT && b.k != JV_FLOAT)
            return (a.k == JV_INT ? a.u.i : a.u.b) == (b.k == JV_INT ? b.u.i : b.u.b);
        return num(a) == num(b);
    }
    if (a.k != b.k)
        return false;
    switch (a.k) {
    case JV_UNDEF: case JV_NONE: return true;
    case JV_STR: return a.u.s.n == b.u.s.n && memcmp(a.u.s.p, b.u.s.p, a.u.s.n) == 0;
    case JV_LIST:
        if (a.u.l->n != b.u.l->n)
            return false;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!jv_equal(a.u.l->v[i], b.u.l->v[i]))
                return false;
        return true;
    case JV_DICT:
        if (a.u.d->n != b.u.d->n)
            return false;
        for (size_t i = 0; i < a.u.d->n; i++) {
            jv *o = jdict_get(b.u.d, a.u.d->k[i]);
            if (!o || !jv_equal(a.u.d->v[i], *o))
                return false;
        }
        return true;
    case JV_NS: return a.u.d == b.u.d;
    case JV_MACRO: return a.u.m == b.u.m;
    case JV_FUNC: return a.u.fn == b.u.fn;
    case JV_LOOP: return a.u.loop == b.u.loop;
    default: return false;
    }
}

bool jv_compare(jv a, jv b, int *cmp)
{
    if (is_num(a) && is_num(b)) {
        double x = num(a), y = num(b);
        if (a.k == JV_INT && b.k == JV_INT)
            *cmp = (a.u.i > b.u.i) - (a.u.i < b.u.i);
        else
            *cmp = (x > y) - (x < y);
        return true;
    }
    if (a.k == JV_STR && b.k == JV_STR) {
        /* Python compares code points; UTF-8 byte order is the same order. */
        size_t n = a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n;
        int c = n ? memcmp(a.u.s.p, b.u.s.p, n) : 0;
        if (c == 0)
            c = (a.u.s.n > b.u.s.n) - (a.u.s.n < b.u.s.n);
        *cmp = (c > 0) - (c < 0);
        return true;
    }
    if (a.k == JV_LIST && b.k == JV_LIST) {
        for (size_t i = 0; i < a.u.l->n && i < b.u.l->n; i++) {
            if (jv_equal(a.u.l->v[i], b.u.l->v[i]))
                continue;
            return jv_compare(a.u.l->v[i], b.u.l->v[i], cmp);
        }
        *cmp = (a.u.l->n > b.u.l->n) - (a.u.l->n < b.u.l->n);
        return true;
    }
    return false;
}

const char *jv_type_name(jv v)
{
    static const char *const names[] = {"Undefined", "NoneType", "bool", "int", "float", "str",
                                        "list", "dict", "Namespace", "Macro", "function", "LoopContext"};
    return v.k < sizeof names / sizeof *names ? names[v.k] : "?";
}

/* ---- text forms ---- */
/* Python's repr(float): the shortest digits that read back the same, in
 * exponent form below 1e-4 or from 1e16 on. */
static void put_float(jbuf *b, double f)
{
    char tmp[64];
    if (isnan(f)) {
        jbuf_puts(b, "nan");
        return;
    }
    if (isinf(f)) {
        jbuf_puts(b, f < 0 ? "-inf" : "inf");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, f);
        if (strtod(tmp, NULL) == f)
            break;
    }
    /* tmp is d.ddde[+-]XX: rebuild it as Python would print it. */
    char digits[32];
    size_t nd = 0;
    const char *p = tmp;
    bool neg = false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9' && nd < sizeof digits - 1)
            digits[nd++] = *p;
    int exp = *p == 'e' ? atoi(p + 1) : 0;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = 0;
    jbuf out = {0};
    if (neg)
        jbuf_puts(&out, "-");
    if (exp < -4 || exp >= 16) {
        jbuf_put(&out, digits, 1);
        if (nd > 1) {
            jbuf_puts(&out, ".");
            jbuf_put(&out, digits + 1, nd - 1);
        }
        snprintf(tmp, sizeof tmp, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
        jbuf_puts(&out, tmp);
    } else if (exp < 0) {
        jbuf_puts(&out, "0.");
        for (int i = 0; i < -exp - 1; i++)
            jbuf_puts(&out, "0");
        jbuf_put(&out, digits, nd);
    } else {
        size_t ip = (size_t)exp + 1;
        for (size_t i = 0; i < ip; i++)
            jbuf_put(&out, i < nd ? &digits[i] : "0", 1);
        jbuf_puts(&out, ".");
        if (nd > ip)
            jbuf_put(&out, digits + ip, nd - ip);
        else
            jbuf_puts(&out, "0");
    }
    if (out.oom)
        b->oom = true;
    else
        jbuf_put(b, out.p, out.n);
    free(out.p);
}

/* Python's repr(str): quotes and backslash escaped, \n \r \t, other
 * characters that are not printable (str.isprintable: controls, format
 * characters, separators but the space, private use, unassigned) as
 * \xHH, \uHHHH or \UHHHHHHHH, the rest as they are. Bytes that are not
 * UTF-8 (a string sliced inside a character) pass through. */
static void put_repr_str(jbuf *b, const char *s, size_t n)
{
    bool sq = memchr(s, '\'', n) != NULL, dq = memchr(s, '"', n) != NULL;
    char q = sq && !dq ? '"' : '\'';
    jbuf_put(b, &q, 1);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        char tmp[16];
        if (c == (unsigned char)q || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            jbuf_put(b, tmp, 2);
        } else if (c == '\n') {
            jbuf_puts(b, "\\n");
        } else if (c == '\r') {
            jbuf_puts(b, "\\r");
        } else if (c == '\t') {
            jbuf_puts(b, "\\t");
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(tmp, sizeof tmp, "\\x%02x", c);
            jbuf_puts(b, tmp);
        } else if (c >= 0x80) {
            utf8proc_int32_t cp;
            utf8proc_ssize_t l = utf8proc_iterate((const utf8proc_uint8_t *)s + i,
                                                  (utf8proc_ssize_t)(n - i), &cp);
            if (l <= 0) {
                jbuf_put(b, &s[i], 1);
                i++;
                continue;
            }
            if (jcase_printable((uint32_t)cp)) {
                jbuf_put(b, &s[i], (size_t)l);
            } else {
                snprintf(tmp, sizeof tmp,
                         cp <= 0xff ? "\\x%02x" : cp <= 0xffff ? "\\u%04x" : "\\U%08x",
                         (unsigned)cp);
                jbuf_puts(b, tmp);
            }
            i += (size_t)l;
            continue;
        } else {
            jbuf_put(b, &s[i], 1);
        }
        i++;
    }
    jbuf_put(b, &q, 1);
}

void jv_repr(jbuf *b, jv v)
{
    char tmp[32];
    switch (v.k) {
    case JV_STR: put_repr_str(b, v.u.s.p, v.u.s.n); return;
    case JV_LIST:
        jbuf_puts(b, v.u.l->tuple ? "(" : "[");
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i)
                jbuf_puts(b, ", ");
            jv_repr(b, v.u.l->v[i]);
        }
        jbuf_puts(b, v.u.l->tuple ? (v.u.l->n == 1 ? ",)" : ")") : "]");
        return;
    case JV_DICT:
        jbuf_puts(b, "{");
        for (size_t i = 0; i < v.u.d->n; i++) {
            if (i)
                jbuf_puts(b, ", ");
            jv_repr(b, v.u.d->k[i]);
            jbuf_puts(b, ": ");
            jv_repr(b, v.u.d->v[i]);
        }
        jbuf_puts(b, "}");
        return;
    case JV_UNDEF: return;
    case JV_NONE: jbuf_puts(b, "None"); return;
    case JV_BOOL: jbuf_puts(b, v.u.b ? "True" : "False"); return;
    case JV_INT:
        snprintf(tmp, sizeof tmp, "%lld", (long long)v.u.i);
        jbuf_puts(b, tmp);
        return;
    case JV_FLOAT: put_float(b, v.u.f); return;
    case JV_NS: jbuf_puts(b, "<Namespace>"); return;
    case JV_MACRO: jbuf_puts(b, "<Macro>"); return;
    case JV_FUNC: jbuf_puts(b, "<function>"); return;
    default: jbuf_puts(b, "<LoopContext>"); return;
    }
}

void jv_to_str(jbuf *b, jv v)
{
    if (v.k == JV_STR)
        jbuf_put(b, v.u.s.p, v.u.s.n);
    else
        jv_repr(b, v);
}

static void put_json_str(jbuf *b, const char *s, size_t n)
{
    jbuf_puts(b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[8];
        switch (c) {
        case '"': jbuf_puts(b, "\\\""); break;
        case '\\': jbuf_puts(b, "\\\\"); break;
        case '\n': jbuf_puts(b, "\\n"); break;
        case '\r': jbuf_puts(b, "\\r"); break;
        case '\t': jbuf_puts(b, "\\t"); break;
        case '\b': jbuf_puts(b, "\\b"); break;
        case '\f': jbuf_puts(b, "\\f"); break;
        default:
            if (c < 0x20) {
                snprintf(tmp, sizeof tmp, "\\u%04x", c);
                jbuf_puts(b, tmp);
            } else {
                jbuf_put(b, (const char *)&s[i], 1);
            }
        }
    }
    jbuf_puts(b, "\"");
}

static void json_nl(jbuf *b, int indent, int level)
{
    jbuf_puts(b, "\n");
    for (int i = 0; i < indent * level; i++)
        jbuf_puts(b, " ");
}

static bool to_json(jbuf *b, jv v, int indent, bool sort_keys, int level, const char **why)
{
    char tmp[32];
    if (level > JINJA_MAX_DEPTH) {
        *why = "nested too deeply";
        return false;
    }
    switch (v.k) {
    case JV_NONE: jbuf_puts(b, "null"); return true;
    case JV_BOOL: jbuf_puts(b, v.u.b ? "true" : "false"); return true;
    case JV_INT:
        snprintf(tmp, sizeof tmp, "%lld", (long long)v.u.i);
        jbuf_puts(b, tmp);
        return true;
    case JV_FLOAT:
        if (isnan(v.u.f))
            jbuf_puts(b, "NaN");
        else if (isinf(v.u.f))
            jbuf_puts(b, v.u.f < 0 ? "-Infinity" : "Infinity");
        else
            put_float(b, v.u.f);
        return true;
    case JV_STR: put_json_str(b, v.u.s.p, v.u.s.n); return true;
    case JV_LIST:
        if (v.u.l->n == 0) {
            jbuf_puts(b, "[]");
            return true;
        }
        jbuf_puts(b, "[");
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i)
                jbuf_puts(b, indent >= 0 ? "," : ", ");
            if (indent >= 0)
                json_nl(b, indent, level + 1);
            if (!to_json(b, v.u.l->v[i], indent, sort_keys, level + 1, why))
                return false;
        }
        if (indent >= 0)
            json_nl(b, indent, level);
        jbuf_puts(b, "]");
        return true;
    case JV_DICT:
    case JV_NS: {
        const jdict *d = v.u.d;
        if (d->n == 0) {
            jbuf_puts(b, "{}");
            return true;
        }
        size_t order[d->n > 0 ? d->n : 1];
        for (size_t i = 0; i < d->n; i++) {
            order[i] = i;
            if (d->k[i].k != JV_STR) {
                *why = "only string keys are supported in tojson";
                return false;
            }
        }
        if (sort_keys) /* insertion sort: dicts in templates are small */
            for (size_t i = 1; i < d->n; i++)
                for (size_t j = i; j > 0; j--) {
                    int c = 0;
                    jv_compare(d->k[order[j - 1]], d->k[order[j]], &c);
                    if (c <= 0)
                        break;
                    size_t t = order[j];
                    order[j] = order[j - 1];
                    order[j - 1] = t;
                }
        jbuf_puts(b, "{");
        for (size_t i = 0; i < d->n; i++) {
            if (i)
                jbuf_puts(b, indent >= 0 ? "," : ", ");
            if (indent >= 0)
                json_nl(b, indent, level + 1);
            put_json_str(b, d->k[order[i]].u.s.p, d->k[order[i]].u.s.n);
            jbuf_puts(b, ": ");
            if (!to_json(b, d->v[order[i]], indent, sort_keys, level + 1, why))
                return false;
        }
        if (indent >= 0)
            json_nl(b, indent, level);
        jbuf_puts(b, "}");
        return true;
    }
    default:
        *why = v.k == JV_UNDEF ? "Undefined is not JSON serializable" : "value is not JSON serializable";
        return false;
    }
}

bool jv_to_json(jbuf *b, jv v, int indent, bool sort_keys, const char **why)
{
    return to_json(b, v, indent, sort_keys, 0, why);
}

jv jv_from_json(jarena *a, const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_TRUE: return jv_bool(true);
    case JSON_FALSE: return jv_bool(false);
    case JSON_INTEGER: return jv_int(json_integer_value(j));
    case JSON_REAL: return jv_float(json_real_value(j));
    case JSON_STRING: {
        size_t n = json_string_length(j);
        char *p = jarena_strdup(a, json_string_value(j), n);
        return p ? jv_str(p, n) : jv_none();
    }
    case JSON_ARRAY: {
        jlist *l = jlist_new(a, json_array_size(j));
        if (!l)
            return jv_none();
        for (size_t i = 0; i < l->n; i++)
            l->v[i] = jv_from_json(a, json_array_get(j, i));
        jv v = {.k = JV_LIST};
        v.u.l = l;
        return v;
    }
    case JSON_OBJECT: {
        jdict *d = jarena_alloc(a, sizeof *d);
        if (!d)
            return jv_none();
        const char *key;
        const json_t *val;
        /* a JSON object's keys are distinct already: jdict_set's look-up
         * of each made an object of n keys cost n^2 / 2 comparisons (a tool
         * call's arguments of 40,000 keys took 14 s to render) */
        json_object_foreach((json_t *)j, key, val) {
            char *k = jarena_strdup(a, key, strlen(key));
            if (!k || !jdict_append(a, d, jv_str(k, strlen(k)), jv_from_json(a, val)))
                break;
        }
        jv v = {.k = JV_DICT};
        v.u.d = d;
        return v;
    }
    default: return jv_none();
    }
}

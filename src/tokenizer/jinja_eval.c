/* Evaluating the syntax tree: expressions to values and statements to
 * output, with jinja2's semantics where templates depend on them (missing
 * names and keys are Undefined, `and`/`or` return an operand, a for loop's
 * assignments stay inside it, `set ns.x` changes a namespace). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/jinja_internal.h"

int jerr(jrender *r, const jnode *at, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vb_err_set(r->err, "%s: line %d: %s", r->t->name, at ? at->line : 0, msg);
}

bool jerr_oom(jrender *r, const jnode *at)
{
    if (r->ar.over_limit)
        jerr(r, at, "the template used more than %u MiB rendering this conversation",
             JINJA_MAX_ARENA >> 20);
    else
        jerr(r, at, "out of memory");
    return false;
}

jv jscope_get(const jscope *s, const char *name, size_t n)
{
    for (; s; s = s->parent)
        for (size_t i = s->n; i-- > 0;)
            if (s->lens[i] == n && memcmp(s->names[i], name, n) == 0)
                return s->vals[i];
    return jv_undef(name, n);
}

bool jscope_set(jrender *r, jscope *s, const char *name, size_t n, jv v)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->lens[i] == n && memcmp(s->names[i], name, n) == 0) {
            s->vals[i] = v;
            return true;
        }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        const char **names = jarena_alloc(&r->ar, cap * sizeof *names);
        size_t *lens = jarena_alloc(&r->ar, cap * sizeof *lens);
        jv *vals = jarena_alloc(&r->ar, cap * sizeof *vals);
        if (!names || !lens || !vals)
            return false;
        if (s->n) {
            memcpy(names, s->names, s->n * sizeof *names);
            memcpy(lens, s->lens, s->n * sizeof *lens);
            memcpy(vals, s->vals, s->n * sizeof *vals);
        }
        s->names = names;
        s->lens = lens;
        s->vals = vals;
        s->cap = cap;
    }
    s->names[s->n] = name;
    s->lens[s->n] = n;
    s->vals[s->n] = v;
    s->n++;
    return true;
}

bool jbuf_to_jv(jrender *r, jbuf *b, jv *out)
{
    char *p = b->oom ? NULL : jarena_strdup(&r->ar, b->p ? b->p : "", b->n);
    size_t n = b->n;
    free(b->p);
    *b = (jbuf){0};
    if (!p)
        return jerr_oom(r, NULL);
    *out = jv_str(p, n);
    return true;
}

/* Printing a generator: Python writes "<generator object ... at 0x...>",
 * which no render can equal, so it is refused (the template wants | list). */
static bool lazy_print_err(jrender *r, const jnode *at)
{
    jerr(r, at, "a generator (map, select, reject, selectattr, rejectattr, unique, items, reverse) "
                "printed as a string: transformers prints its address; add | list");
    return false;
}

bool jv_stringify(jrender *r, jv v, jv *out)
{
    if (jv_is_lazy(v))
        return lazy_print_err(r, NULL);
    if (v.k == JV_STR) {
        *out = v;
        return true;
    }
    jbuf b = {0};
    jv_to_str(&b, v);
    return jbuf_to_jv(r, &b, out);
}

static bool undefined_err(jrender *r, const jnode *at, jv v)
{
    jerr(r, at, "'%.*s' is undefined", (int)(v.u.s.n < 80 ? v.u.s.n : 80), v.u.s.p ? v.u.s.p : "");
    return false;
}

/* obj.name / obj['name'] when obj is not a list or string index. */
static bool get_attr(jrender *r, const jnode *at, jv obj, const char *name, size_t n, jv *out)
{
    if (obj.k == JV_UNDEF)
        return undefined_err(r, at, obj);
    if (obj.k == JV_DICT || obj.k == JV_NS) {
        jv *v = jdict_get(obj.u.d, jv_str(name, n));
        *out = v ? *v : jv_undef(name, n);
        return true;
    }
    if (obj.k == JV_LOOP) {
        const jloop *l = obj.u.loop;
        char key[16];
        snprintf(key, sizeof key, "%.*s", (int)(n < 15 ? n : 15), name);
        if (strcmp(key, "index") == 0)
            *out = jv_int(l->index0 + 1);
        else if (strcmp(key, "index0") == 0)
            *out = jv_int(l->index0);
        else if (strcmp(key, "revindex") == 0)
            *out = jv_int(l->length - l->index0);
        else if (strcmp(key, "revindex0") == 0)
            *out = jv_int(l->length - l->index0 - 1);
        else if (strcmp(key, "first") == 0)
            *out = jv_bool(l->index0 == 0);
        else if (strcmp(key, "last") == 0)
            *out = jv_bool(l->index0 == l->length - 1);
        else if (strcmp(key, "length") == 0)
            *out = jv_int(l->length);
        else if (strcmp(key, "previtem") == 0)
            *out = l->prev;
        else if (strcmp(key, "nextitem") == 0)
            *out = l->next;
        else if (strcmp(key, "depth") == 0)
            *out = jv_int(1);
        else if (strcmp(key, "depth0") == 0)
            *out = jv_int(0);
        else
            *out = jv_undef(name, n);
        return true;
    }
    *out = jv_undef(name, n);
    return true;
}

/* Python index i (negative from the end) into a sequence of n; false when
 * out of range. */
static bool py_index(int64_t i, size_t n, size_t *at)
{
    if (i < 0)
        i += (int64_t)n;
    if (i < 0 || (uint64_t)i >= n)
        return false;
    *at = (size_t)i;
    return true;
}

static bool get_item(jrender *r, const jnode *at, jv obj, jv key, jv *out)
{
    if (obj.k == JV_UNDEF)
        return undefined_err(r, at, obj);
    if (jv_is_lazy(obj)) { /* a generator has no items: jinja2's getitem gives undefined */
        *out = jv_undef("[item]", 6);
        return true;
    }
    if ((obj.k == JV_LIST || obj.k == JV_STR) && (key.k == JV_INT || key.k == JV_BOOL)) {
        int64_t i = key.k == JV_INT ? key.u.i : key.u.b;
        size_t k;
        if (obj.k == JV_LIST) {
            *out = py_index(i, obj.u.l->n, &k) ? obj.u.l->v[k] : jv_undef("[index]", 7);
            return true;
        }
        size_t len = ju8_len(obj.u.s.p, obj.u.s.n);
        if (!py_index(i, len, &k)) {
            *out = jv_undef("[index]", 7);
            return true;
        }
        size_t b = ju8_offset(obj.u.s.p, obj.u.s.n, k);
        size_t e = ju8_offset(obj.u.s.p, obj.u.s.n, k + 1);
        *out = jv_str(obj.u.s.p + b, e - b);
        return true;
    }
    if (obj.k == JV_DICT || obj.k == JV_NS) {
        jv *v = jdict_get(obj.u.d, key);
        *out = v ? *v : key.k == JV_STR ? jv_undef(key.u.s.p, key.u.s.n) : jv_undef("[key]", 5);
        return true;
    }
    if (key.k == JV_STR)
        return get_attr(r, at, obj, key.u.s.p, key.u.s.n, out);
    *out = jv_undef("[item]", 6);
    return true;
}

static bool slice_bound(jrender *r, jscope *s, const jnode *e, bool *given, int64_t *v)
{
    *given = false;
    if (!e)
        return true;
    jv x;
    if (!jeval(r, s, e, &x))
        return false;
    if (x.k == JV_NONE)
        return true;
    if (x.k != JV_INT && x.k != JV_BOOL)
        return jerr(r, e, "slice indices must be integers or None"), false;
    *given = true;
    *v = x.k == JV_INT ? x.u.i : x.u.b;
    return true;
}

/* Python's slice.indices(len) and the walk over it. */
static bool eval_slice(jrender *r, jscope *s, const jnode *e, jv *out)
{
    jv obj;
    if (!jeval(r, s, e->a, &obj))
        return false;
    bool g0, g1, g2;
    int64_t start = 0, stop = 0, step = 1;
    if (!slice_bound(r, s, e->kids[0], &g0, &start) || !slice_bound(r, s, e->kids[1], &g1, &stop) ||
        !slice_bound(r, s, e->kids[2], &g2, &step))
        return false;
    if (!g2)
        step = 1;
    if (step == 0)
        return jerr(r, e, "slice step cannot be zero"), false;
    if (obj.k == JV_UNDEF)
        return undefined_err(r, e, obj);
    if (jv_is_lazy(obj)) { /* a generator cannot be sliced: jinja2's getitem gives undefined */
        *out = jv_undef("[slice]", 7);
        return true;
    }
    if (obj.k != JV_LIST && obj.k != JV_STR)
        return jerr(r, e, "'%s' object is not subscriptable with a slice", jv_type_name(obj)), false;
    int64_t len = obj.k == JV_LIST ? (int64_t)obj.u.l->n : (int64_t)ju8_len(obj.u.s.p, obj.u.s.n);
    if (step > 0) {
        start = !g0 ? 0 : start < 0 ? (start + len < 0 ? 0 : start + len) : (start > len ? len : start);
        stop = !g1 ? len : stop < 0 ? (stop + len < 0 ? 0 : stop + len) : (stop > len ? len : stop);
    } else {
        start = !g0 ? len - 1 : start < 0 ? (start + len < 0 ? -1 : start + len) : (start >= len ? len - 1 : start);
        stop = !g1 ? -1 : stop < 0 ? (stop + len < 0 ? -1 : stop + len) : (stop >= len ? len - 1 : stop);
    }
    size_t count = 0;
    if (step > 0 && stop > start)
        count = (size_t)((stop - start + step - 1) / step);
    else if (step < 0 && start > stop)
        count = (size_t)((start - stop - step - 1) / -step);
    if (obj.k == JV_LIST) {
        jlist *l = jlist_new(&r->ar, count);
        if (!l)
            return jerr_oom(r, e);
        for (size_t i = 0; i < count; i++)
            l->v[i] = obj.u.l->v[start + (int64_t)i * step];
        out->k = JV_LIST;
        out->u.l = l;
        return true;
    }
    if (step == 1) {
        size_t b = ju8_offset(obj.u.s.p, obj.u.s.n, (size_t)start);
        size_t en = ju8_offset(obj.u.s.p, obj.u.s.n, (size_t)start + count);
        *out = jv_str(obj.u.s.p + b, en - b);
        return true;
    }
    jbuf b = {0};
    jbuf_puts(&b, "");
    for (size_t i = 0; i < count; i++) {
        size_t cp = (size_t)(start + (int64_t)i * step);
        size_t o = ju8_offset(obj.u.s.p, obj.u.s.n, cp), o2 = ju8_offset(obj.u.s.p, obj.u.s.n, cp + 1);
        jbuf_put(&b, obj.u.s.p + o, o2 - o);
    }
    return jbuf_to_jv(r, &b, out);
}

/* Arguments of a call, filter or test node: positional, then keyword. */
static bool eval_args(jrender *r, jscope *s, const jnode *e, size_t skip, jv *pos, const char **kwn,
                      jv *kwv, jargs *a)
{
    *a = (jargs){.pos = pos, .kwn = kwn, .kwv = kwv};
    for (size_t i = skip; i < e->nkids; i++) {
        jv v;
        if (!jeval(r, s, e->kids[i], &v))
            return false;
        if (e->names && e->names[i]) {
            kwn[a->nkw] = e->names[i];
            kwv[a->nkw++] = v;
        } else {
            if (a->nkw)
                return jerr(r, e, "positional argument follows keyword argument"), false;
            pos[a->npos++] = v;
        }
    }
    return true;
}

#define MAX_ARGS 32

static bool eval_call(jrender *r, jscope *s, const jnode *e, jv *out)
{
    if (e->nkids > MAX_ARGS)
        return jerr(r, e, "too many arguments"), false;
    jv pos[MAX_ARGS], kwv[MAX_ARGS];
    const char *kwn[MAX_ARGS];
    jargs a;
    jv fn;
    if (e->a->kind == JN_ATTR) {
        jv obj;
        if (!jeval(r, s, e->a->a, &obj))
            return false;
        if (obj.k == JV_UNDEF)
            return undefined_err(r, e, obj);
        if (!eval_args(r, s, e, 0, pos, kwn, kwv, &a))
            return false;
        if (obj.k == JV_LOOP && strcmp(e->a->s, "cycle") == 0) {
            if (a.npos == 0)
                return jerr(r, e, "no items for cycling given"), false;
            *out = pos[obj.u.loop->index0 % (int64_t)a.npos];
            return true;
        }
        if (obj.k == JV_STR || obj.k == JV_LIST || obj.k == JV_DICT) {
            bool found = false;
            if (!jmethod(r, e, obj, e->a->s, &a, out, &found))
                return false;
            if (found)
                return true;
        }
        if (!get_attr(r, e, obj, e->a->s, e->a->n, &fn))
            return false;
    } else {
        if (!jeval(r, s, e->a, &fn) || !eval_args(r, s, e, 0, pos, kwn, kwv, &a))
            return false;
    }
    if (fn.k == JV_MACRO)
        return jcall_macro(r, e, fn.u.m, &a, out);
    if (fn.k == JV_FUNC)
        return jcall_func(r, s, e, fn.u.fn, &a, out);
    if (fn.k == JV_UNDEF)
        return undefined_err(r, e, fn);
    return jerr(r, e, "'%s' object is not callable", jv_type_name(fn)), false;
}

static bool int_result(jrender *r, const jnode *e, bool overflow, int64_t v, jv *out)
{
    if (overflow)
        return jerr(r, e, "integer overflow"), false;
    *out = jv_int(v);
    return true;
}

static double fnum(jv v) { return v.k == JV_FLOAT ? v.u.f : v.k == JV_INT ? (double)v.u.i : (double)v.u.b; }
static bool isnum(jv v) { return v.k == JV_INT || v.k == JV_FLOAT || v.k == JV_BOOL; }
static int64_t inum(jv v) { return v.k == JV_INT ? v.u.i : v.k == JV_BOOL ? v.u.b : 0; }

static bool repeat(jrender *r, const jnode *e, jv seq, int64_t times, jv *out)
{
    if (times < 0)
        times = 0;
    size_t unit = seq.k == JV_STR ? seq.u.s.n : seq.u.l->n;
    if (unit && (uint64_t)times > (JINJA_MAX_ARENA / 16) / unit)
        return jerr(r, e, "repetition too large"), false;
    /* an empty sequence repeated is empty at once: the loop below must not
     * run '' * 4444444444440 times (a fuzzer's 10 s timeout) */
    if (unit == 0)
        times = 0;
    if (seq.k == JV_STR) {
        jbuf b = {0};
        jbuf_puts(&b, "");
        for (int64_t i = 0; i < times; i++)
            jbuf_put(&b, seq.u.s.p, seq.u.s.n);
        return jbuf_to_jv(r, &b, out);
    }
    jlist *l = jlist_new(&r->ar, unit * (size_t)times);
    if (!l)
        return jerr_oom(r, e);
    for (size_t i = 0; i < l->n; i++)
        l->v[i] = seq.u.l->v[i % unit];
    out->k = JV_LIST;
    out->u.l = l;
    return true;
}

static bool eval_binop(jrender *r, const jnode *e, jv a, jv b, jv *out)
{
    int op = e->op;
    if (op == JOP_CONCAT) {
        if (jv_is_lazy(a) || jv_is_lazy(b))
            return lazy_print_err(r, e);
        jbuf buf = {0};
        jbuf_puts(&buf, "");
        jv_to_str(&buf, a);
        jv_to_str(&buf, b);
        return jbuf_to_jv(r, &buf, out);
    }
    if (a.k == JV_UNDEF)
        return undefined_err(r, e, a);
    if (b.k == JV_UNDEF)
        return undefined_err(r, e, b);
    if (op == JOP_ADD && a.k == JV_STR && b.k == JV_STR) {
        char *p = jarena_alloc(&r->ar, a.u.s.n + b.u.s.n + 1);
        if (!p)
            return jerr_oom(r, e);
        memcpy(p, a.u.s.p, a.u.s.n);
        memcpy(p + a.u.s.n, b.u.s.p, b.u.s.n);
        *out = jv_str(p, a.u.s.n + b.u.s.n);
        return true;
    }
    if ((op == JOP_ADD || op == JOP_MUL) && (jv_is_lazy(a) || jv_is_lazy(b)))
        return jerr(r, e, "unsupported operand type(s) for %s: '%s' and '%s'",
                    op == JOP_ADD ? "+" : "*", jv_is_lazy(a) ? "generator" : jv_type_name(a),
                    jv_is_lazy(b) ? "generator" : jv_type_name(b)),
               false;
    if (op == JOP_ADD && a.k == JV_LIST && b.k == JV_LIST) {
        jlist *l = jlist_new(&r->ar, a.u.l->n + b.u.l->n);
        if (!l)
            return jerr_oom(r, e);
        for (size_t i = 0; i < a.u.l->n; i++)
            l->v[i] = a.u.l->v[i];
        for (size_t i = 0; i < b.u.l->n; i++)
            l->v[a.u.l->n + i] = b.u.l->v[i];
        out->k = JV_LIST;
        out->u.l = l;
        return true;
    }
    if (op == JOP_MUL && (a.k == JV_STR || a.k == JV_LIST) && (b.k == JV_INT || b.k == JV_BOOL))
        return repeat(r, e, a, inum(b), out);
    if (op == JOP_MUL && (b.k == JV_STR || b.k == JV_LIST) && (a.k == JV_INT || a.k == JV_BOOL))
        return repeat(r, e, b, inum(a), out);
    if (!isnum(a) || !isnum(b)) {
        static const char *const sym[] = {"", "+", "-", "*", "/", "//", "%", "**"};
        return jerr(r, e, "unsupported operand type(s) for %s: '%s' and '%s'",
                    op < 8 ? sym[op] : "?", jv_type_name(a), jv_type_name(b)), false;
    }
    bool ints = a.k != JV_FLOAT && b.k != JV_FLOAT;
    int64_t x = inum(a), y = inum(b), z;
    double fx = fnum(a), fy = fnum(b);
    switch (op) {
    case JOP_ADD:
        if (ints) {
            bool over = __builtin_add_overflow(x, y, &z);
            return int_result(r, e, over, z, out);
        }
        *out = jv_float(fx + fy);
        return true;
    case JOP_SUB:
        if (ints) {
            bool over = __builtin_sub_overflow(x, y, &z);
            return int_result(r, e, over, z, out);
        }
        *out = jv_float(fx - fy);
        return true;
    case JOP_MUL:
        if (ints) {
            bool over = __builtin_mul_overflow(x, y, &z);
            return int_result(r, e, over, z, out);
        }
        *out = jv_float(fx * fy);
        return true;
    case JOP_DIV:
        if (fy == 0)
            return jerr(r, e, "division by zero"), false;
        *out = jv_float(fx / fy);
        return true;
    case JOP_FLOORDIV:
    case JOP_MOD:
        if (ints) {
            if (y == 0)
                return jerr(r, e, "integer division or modulo by zero"), false;
            if (x == INT64_MIN && y == -1)
                return jerr(r, e, "integer overflow"), false;
            int64_t q = x / y, m = x % y;
            if (m != 0 && ((m < 0) != (y < 0))) { /* Python floors */
                q--;
                m += y;
            }
            *out = jv_int(op == JOP_MOD ? m : q);
            return true;
        }
        if (fy == 0)
            return jerr(r, e, "float division by zero"), false;
        if (op == JOP_FLOORDIV) {
            *out = jv_float(floor(fx / fy));
        } else {
            double m = fmod(fx, fy);
            if (m != 0 && ((m < 0) != (fy < 0)))
                m += fy;
            *out = jv_float(m);
        }
        return true;
    case JOP_POW:
        if (ints && y >= 0) {
            /* |x| <= 1 never overflows; otherwise 63 steps do at most */
            int64_t acc = 1;
            if (x == 0 || x == 1)
                acc = y == 0 ? 1 : x;
            else if (x == -1)
                acc = y % 2 ? -1 : 1;
            else
                for (int64_t i = 0; i < y; i++)
                    if (__builtin_mul_overflow(acc, x, &acc))
                        return jerr(r, e, "integer overflow"), false;
            *out = jv_int(acc);
            return true;
        }
        *out = jv_float(pow(fx, fy));
        return true;
    default: return jerr(r, e, "bad operator"), false;
    }
}

static bool contains(jrender *r, const jnode *e, jv item, jv seq, bool *out)
{
    switch (seq.k) {
    case JV_UNDEF: *out = false; return true;
    case JV_STR:
        if (item.k != JV_STR)
            return jerr(r, e, "'in <string>' requires string as left operand, not %s",
                        jv_type_name(item)), false;
        if (item.u.s.n == 0) {
            *out = true;
            return true;
        }
        *out = false;
        for (size_t i = 0; i + item.u.s.n <= seq.u.s.n && !*out; i++)
            *out = memcmp(seq.u.s.p + i, item.u.s.p, item.u.s.n) == 0;
        return true;
    case JV_LIST:
        *out = false;
        for (size_t i = 0; i < seq.u.l->n && !*out; i++)
            *out = jv_equal(seq.u.l->v[i], item);
        return true;
    case JV_DICT:
    case JV_NS: *out = jdict_get(seq.u.d, item) != NULL; return true;
    default:
        return jerr(r, e, "argument of type '%s' is not iterable", jv_type_name(seq)), false;
    }
}

static bool eval_cmp(jrender *r, const jnode *e, jv a, jv b, jv *out)
{
    bool res;
    int c = 0;
    switch (e->op) {
    case JOP_EQ: res = jv_equal(a, b); break;
    case JOP_NE: res = !jv_equal(a, b); break;
    case JOP_IN:
    case JOP_NOTIN:
        if (!contains(r, e, a, b, &res))
            return false;
        if (e->op == JOP_NOTIN)
            res = !res;
        break;
    default:
        if (a.k == JV_UNDEF)
            return undefined_err(r, e, a);
        if (b.k == JV_UNDEF)
            return undefined_err(r, e, b);
        if (!jv_compare(a, b, &c))
            return jerr(r, e, "'%s' not supported between instances of '%s' and '%s'",
                        e->op == JOP_LT ? "<" : e->op == JOP_LE ? "<=" : e->op == JOP_GT ? ">" : ">=",
                        jv_type_name(a), jv_type_name(b)), false;
        res = e->op == JOP_LT ? c < 0 : e->op == JOP_LE ? c <= 0 : e->op == JOP_GT ? c > 0 : c >= 0;
    }
    *out = jv_bool(res);
    return true;
}

static const struct { const char *name; int fn; } GLOBAL_FUNCS[] = {
    {"range", JF_RANGE}, {"namespace", JF_NAMESPACE}, {"raise_exception", JF_RAISE},
    {"strftime_now", JF_STRFTIME}, {"dict", JF_DICT},
};

bool jeval(jrender *r, jscope *s, const jnode *e, jv *out)
{
    if (++r->steps > JINJA_MAX_STEPS)
        return jerr(r, e, "the template took more than %ld steps", JINJA_MAX_STEPS), false;
    jv a, b;
    switch (e->kind) {
    case JN_LIT: *out = e->lit; return true;
    case JN_NAME:
        *out = jscope_get(s, e->s, e->n);
        if (out->k == JV_UNDEF)
            for (size_t i = 0; i < sizeof GLOBAL_FUNCS / sizeof *GLOBAL_FUNCS; i++)
                if (strcmp(e->s, GLOBAL_FUNCS[i].name) == 0) {
                    out->k = JV_FUNC;
                    out->u.fn = GLOBAL_FUNCS[i].fn;
                }
        return true;
    case JN_LIST: {
        jlist *l = jlist_new(&r->ar, e->nkids);
        if (!l)
            return jerr_oom(r, e);
        l->tuple = e->tuple;
        for (size_t i = 0; i < e->nkids; i++)
            if (!jeval(r, s, e->kids[i], &l->v[i]))
                return false;
        out->k = JV_LIST;
        out->u.l = l;
        return true;
    }
    case JN_DICT: {
        jdict *d = jarena_alloc(&r->ar, sizeof *d);
        if (!d)
            return jerr_oom(r, e);
        for (size_t i = 0; i + 1 < e->nkids; i += 2) {
            if (!jeval(r, s, e->kids[i], &a) || !jeval(r, s, e->kids[i + 1], &b))
                return false;
            if (!jdict_set(&r->ar, d, a, b))
                return jerr_oom(r, e);
        }
        out->k = JV_DICT;
        out->u.d = d;
        return true;
    }
    case JN_ATTR:
        return jeval(r, s, e->a, &a) && get_attr(r, e, a, e->s, e->n, out);
    case JN_ITEM:
        return jeval(r, s, e->a, &a) && jeval(r, s, e->b, &b) && get_item(r, e, a, b, out);
    case JN_SLICE: return eval_slice(r, s, e, out);
    case JN_CALL: return eval_call(r, s, e, out);
    case JN_FILTER:
    case JN_TEST: {
        if (e->nkids > MAX_ARGS)
            return jerr(r, e, "too many arguments"), false;
        jv pos[MAX_ARGS], kwv[MAX_ARGS];
        const char *kwn[MAX_ARGS];
        jargs args;
        if (!jeval(r, s, e->a, &a) || !eval_args(r, s, e, 0, pos, kwn, kwv, &args))
            return false;
        if (e->kind == JN_FILTER)
            return jfilter(r, e, e->s, a, &args, out);
        bool t;
        if (!jtest(r, e, e->s, a, &args, &t))
            return false;
        *out = jv_bool(t != e->neg);
        return true;
    }
    case JN_NEG:
    case JN_POS:
        if (!jeval(r, s, e->a, &a))
            return false;
        if (a.k == JV_UNDEF)
            return undefined_err(r, e, a);
        if (!isnum(a))
            return jerr(r, e, "bad operand type for unary %s: '%s'", e->kind == JN_NEG ? "-" : "+",
                        jv_type_name(a)), false;
        if (e->kind == JN_POS)
            *out = a.k == JV_BOOL ? jv_int(a.u.b) : a;
        else if (a.k == JV_FLOAT)
            *out = jv_float(-a.u.f);
        else if (inum(a) == INT64_MIN)
            return jerr(r, e, "integer overflow"), false;
        else
            *out = jv_int(-inum(a));
        return true;
    case JN_NOT:
        if (!jeval(r, s, e->a, &a))
            return false;
        *out = jv_bool(!jv_truthy(a));
        return true;
    case JN_AND:
    case JN_OR:
        if (!jeval(r, s, e->a, &a))
            return false;
        if (jv_truthy(a) == (e->kind == JN_OR)) {
            *out = a;
            return true;
        }
        return jeval(r, s, e->b, out);
    case JN_BINOP:
        return jeval(r, s, e->a, &a) && jeval(r, s, e->b, &b) && eval_binop(r, e, a, b, out);
    case JN_CMP:
        return jeval(r, s, e->a, &a) && jeval(r, s, e->b, &b) && eval_cmp(r, e, a, b, out);
    case JN_COND:
        if (!jeval(r, s, e->a, &a))
            return false;
        if (jv_truthy(a))
            return jeval(r, s, e->b, out);
        if (e->c)
            return jeval(r, s, e->c, out);
        *out = jv_undef("", 0);
        return true;
    default: return jerr(r, e, "not an expression"), false;
    }
}

/* ---- statements ---- */
enum { EXEC_OK = 0, EXEC_BREAK = 1, EXEC_CONTINUE = 2 };

static int exec_stmt(jrender *r, jscope *s, const jnode *n);

static int exec_for(jrender *r, jscope *s, const jnode *n)
{
    jv seq;
    if (!jeval(r, s, n->a, &seq))
        return -1;
    jlist *items;
    jlist tmp = {0};
    switch (seq.k) {
    case JV_LIST: items = seq.u.l; break;
    case JV_UNDEF: items = &tmp; break;
    case JV_DICT:
    case JV_NS:
        tmp.v = seq.u.d->k;
        tmp.n = seq.u.d->n;
        items = &tmp;
        break;
    case JV_STR: {
        size_t len = ju8_len(seq.u.s.p, seq.u.s.n);
        if (!(items = jlist_new(&r->ar, len)))
            return jerr_oom(r, n), -1;
        for (size_t i = 0, o = 0; i < len; i++) {
            size_t e = ju8_offset(seq.u.s.p, seq.u.s.n, i + 1);
            items->v[i] = jv_str(seq.u.s.p + o, e - o);
            o = e;
        }
        break;
    }
    default:
        return jerr(r, n, "'%s' object is not iterable", jv_type_name(seq));
    }
    jscope scope = {.parent = s};
    if (n->c) { /* the loop filter: items for which the condition holds */
        jlist *kept = jlist_new(&r->ar, items->n);
        if (!kept)
            return jerr_oom(r, n), -1;
        size_t k = 0;
        for (size_t i = 0; i < items->n; i++) {
            jscope f = {.parent = s};
            jv c;
            if (n->nnames == 1) {
                if (!jscope_set(r, &f, n->names[0], strlen(n->names[0]), items->v[i]))
                    return jerr_oom(r, n), -1;
            } else if (items->v[i].k == JV_LIST && items->v[i].u.l->n == n->nnames) {
                for (size_t t = 0; t < n->nnames; t++)
                    if (!jscope_set(r, &f, n->names[t], strlen(n->names[t]), items->v[i].u.l->v[t]))
                        return jerr_oom(r, n), -1;
            }
            if (!jeval(r, &f, n->c, &c))
                return -1;
            if (jv_truthy(c))
                kept->v[k++] = items->v[i];
        }
        kept->n = k;
        items = kept;
    }
    jloop *loop = jarena_alloc(&r->ar, sizeof *loop);
    if (!loop)
        return jerr_oom(r, n), -1;
    loop->length = (int64_t)items->n;
    for (size_t i = 0; i < items->n; i++) {
        scope.n = 0; /* each iteration starts from the enclosing scope */
        loop->index0 = (int64_t)i;
        loop->prev = i ? items->v[i - 1] : jv_undef("previtem", 8);
        loop->next = i + 1 < items->n ? items->v[i + 1] : jv_undef("nextitem", 8);
        jv lv = {.k = JV_LOOP};
        lv.u.loop = loop;
        jv item = items->v[i];
        if (n->nnames == 1) {
            if (!jscope_set(r, &scope, n->names[0], strlen(n->names[0]), item))
                return jerr_oom(r, n), -1;
        } else {
            if (item.k != JV_LIST || item.u.l->n != n->nnames)
                return jerr(r, n, "cannot unpack %s into %zu loop variables", jv_type_name(item),
                            n->nnames);
            for (size_t t = 0; t < n->nnames; t++)
                if (!jscope_set(r, &scope, n->names[t], strlen(n->names[t]), item.u.l->v[t]))
                    return jerr_oom(r, n), -1;
        }
        if (!jscope_set(r, &scope, "loop", 4, lv))
            return jerr_oom(r, n), -1;
        int rc = jexec_body(r, &scope, n->b);
        if (rc < 0)
            return -1;
        if (rc == EXEC_BREAK)
            break;
    }
    if (items->n == 0 && n->nkids)
        return jexec_body(r, s, n->kids[0]);
    return EXEC_OK;
}

bool jcapture(jrender *r, jscope *s, const jnode *body, jv *out)
{
    jbuf b = {0}, *saved = r->out;
    jbuf_puts(&b, "");
    r->out = &b;
    int rc = jexec_body(r, s, body);
    r->out = saved;
    if (rc < 0) {
        free(b.p);
        return false;
    }
    return jbuf_to_jv(r, &b, out);
}

bool jcall_macro(jrender *r, const jnode *at, const jnode *m, const jargs *a, jv *out)
{
    if (r->depth >= JINJA_MAX_CALL_DEPTH)
        return jerr(r, at, "macro calls nested more than %d deep", JINJA_MAX_CALL_DEPTH), false;
    if (a->npos > m->nnames)
        return jerr(r, at, "macro '%s' takes not more than %zu argument(s)", m->s, m->nnames), false;
    jscope scope = {.parent = r->globals};
    for (size_t k = 0; k < a->nkw; k++) {
        size_t i = 0;
        while (i < m->nnames && strcmp(m->names[i], a->kwn[k]) != 0)
            i++;
        if (i == m->nnames)
            return jerr(r, at, "macro '%s' has no argument '%s'", m->s, a->kwn[k]), false;
        if (i < a->npos)
            return jerr(r, at, "macro '%s' got multiple values for argument '%s'", m->s, a->kwn[k]), false;
    }
    r->depth++;
    bool ok = true;
    for (size_t i = 0; i < m->nnames && ok; i++) {
        jv v = jv_undef(m->names[i], strlen(m->names[i]));
        bool set = false;
        if (i < a->npos) {
            v = a->pos[i];
            set = true;
        }
        for (size_t k = 0; k < a->nkw && !set; k++)
            if (strcmp(m->names[i], a->kwn[k]) == 0) {
                v = a->kwv[k];
                set = true;
            }
        if (!set && m->kids[i])
            ok = jeval(r, &scope, m->kids[i], &v);
        if (ok && !jscope_set(r, &scope, m->names[i], strlen(m->names[i]), v))
            ok = jerr_oom(r, at);
    }
    ok = ok && jcapture(r, &scope, m->b, out);
    r->depth--;
    return ok;
}

static int exec_stmt(jrender *r, jscope *s, const jnode *n)
{
    jv v;
    switch (n->kind) {
    case JN_TEXT: jbuf_put(r->out, n->s, n->n); break;
    case JN_OUTPUT:
        if (!jeval(r, s, n->a, &v))
            return -1;
        if (jv_is_lazy(v))
            return lazy_print_err(r, n->a), -1;
        jv_to_str(r->out, v);
        break;
    case JN_IF:
        if (!jeval(r, s, n->a, &v))
            return -1;
        if (jv_truthy(v))
            return jexec_body(r, s, n->b);
        if (n->c)
            return n->c->kind == JN_IF ? exec_stmt(r, s, n->c) : jexec_body(r, s, n->c);
        break;
    case JN_FOR: return exec_for(r, s, n);
    case JN_SET:
        if (!jeval(r, s, n->a, &v))
            return -1;
        if (n->nnames) {
            jv ns = jscope_get(s, n->s, n->n);
            if (ns.k != JV_NS)
                return jerr(r, n, "cannot assign attribute on non-namespace object '%s'", n->s);
            const char *attr = n->names[0];
            if (!jdict_set(&r->ar, ns.u.d, jv_str(attr, strlen(attr)), v))
                return jerr_oom(r, n), -1;
        } else if (!jscope_set(r, s, n->s, n->n, v)) {
            return jerr_oom(r, n), -1;
        }
        break;
    case JN_SETBLOCK:
        if (!jcapture(r, s, n->b, &v) || !jscope_set(r, s, n->s, n->n, v))
            return -1;
        break;
    case JN_MACRO:
        v.k = JV_MACRO;
        v.u.m = n;
        if (!jscope_set(r, s, n->s, n->n, v))
            return jerr_oom(r, n), -1;
        break;
    case JN_BREAK: return EXEC_BREAK;
    case JN_CONTINUE: return EXEC_CONTINUE;
    case JN_BODY: return jexec_body(r, s, n);
    default: return jerr(r, n, "not a statement");
    }
    if (r->out->oom)
        return jerr_oom(r, n), -1;
    if (r->out->n > JINJA_MAX_ARENA)
        return jerr(r, n, "the output is longer than %u MiB", JINJA_MAX_ARENA >> 20);
    return EXEC_OK;
}

int jexec_body(jrender *r, jscope *s, const jnode *body)
{
    for (size_t i = 0; i < body->nkids; i++) {
        if (++r->steps > JINJA_MAX_STEPS)
            return jerr(r, body->kids[i], "the template took more than %ld steps", JINJA_MAX_STEPS);
        int rc = exec_stmt(r, s, body->kids[i]);
        if (rc != EXEC_OK)
            return rc;
    }
    return EXEC_OK;
}

int jinja_render(const jinja_template *t, const json_t *vars, char **out, size_t *out_len, vb_err *err)
{
    jrender r = {.t = t, .err = err};
    r.ar.limit = JINJA_MAX_ARENA;
    jbuf b = {0};
    jbuf_puts(&b, "");
    r.out = &b;
    jscope globals = {0};
    r.globals = &globals;
    int rc = 0;
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)vars, key, val) {
        char *k = jarena_strdup(&r.ar, key, strlen(key));
        jv v = jv_from_json(&r.ar, val);
        if (!k || r.ar.failed || !jscope_set(&r, &globals, k, strlen(k), v)) {
            rc = vb_err_set(err, "%s: out of memory", t->name);
            break;
        }
    }
    if (rc == 0)
        rc = jexec_body(&r, &globals, t->root) < 0 ? -1 : 0;
    if (rc == 0 && b.oom)
        rc = vb_err_set(err, "%s: out of memory", t->name);
    jarena_free(&r.ar);
    if (rc < 0) {
        free(b.p);
        return -1;
    }
    *out = b.p;
    *out_len = b.n;
    return 0;
}

/* Tokens to a syntax tree, by recursive descent with jinja2's grammar and
 * precedence (parser.py): conditional expression, or, and, not, comparisons,
 * + -, ~, * / // %, **, unary - +, then postfix (. [] ()), filters and
 * tests. Every read of the token array is bounded by JT_EOF at its end, and
 * recursion by JINJA_MAX_DEPTH, so any input parses or fails cleanly. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/jinja_internal.h"

typedef struct parser {
    const jtok *t;
    size_t i, n;
    jarena *a;
    const char *name;
    vb_err *err;
    int depth;
    int loops; /* enclosing for loops (break / continue are legal inside) */
    bool failed;
} parser;

static const jtok *peek(parser *p) { return &p->t[p->i < p->n ? p->i : p->n - 1]; }
static const jtok *peek2(parser *p) { return &p->t[p->i + 1 < p->n ? p->i + 1 : p->n - 1]; }
static const jtok *next(parser *p)
{
    const jtok *t = peek(p);
    if (p->i < p->n - 1)
        p->i++;
    return t;
}

static void *perr(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void *perr(parser *p, const char *fmt, ...)
{
    if (p->failed)
        return NULL;
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    vb_err_set(p->err, "%s: line %d: %s", p->name, peek(p)->line, msg);
    p->failed = true;
    return NULL;
}

static bool is_op(const jtok *t, const char *op)
{
    return t->kind == JT_OP && t->n == strlen(op) && memcmp(t->s, op, t->n) == 0;
}
static bool is_name(const jtok *t, const char *nm)
{
    return t->kind == JT_NAME && t->n == strlen(nm) && memcmp(t->s, nm, t->n) == 0;
}
static bool accept_op(parser *p, const char *op)
{
    if (!is_op(peek(p), op))
        return false;
    next(p);
    return true;
}
static bool expect_op(parser *p, const char *op)
{
    if (accept_op(p, op))
        return true;
    perr(p, "expected '%s'", op);
    return false;
}

static const char *tok_desc(const jtok *t, char *buf, size_t n)
{
    switch (t->kind) {
    case JT_EOF: return "end of template";
    case JT_BLOCK_END: return "end of statement block";
    case JT_VAR_END: return "end of print statement";
    case JT_NAME: case JT_OP: snprintf(buf, n, "'%.*s'", (int)(t->n < 40 ? t->n : 40), t->s); return buf;
    case JT_STRING: return "a string";
    default: return "a number";
    }
}

static jnode *node(parser *p, int kind)
{
    jnode *n = jarena_alloc(p->a, sizeof *n);
    if (!n)
        return perr(p, "out of memory");
    n->kind = (uint8_t)kind;
    n->line = peek(p)->line;
    return n;
}

/* A growable child list built in the arena. */
typedef struct kidv {
    jnode **v;
    const char **names;
    size_t n, cap;
} kidv;

static bool kid_push(parser *p, kidv *k, jnode *n, const char *name)
{
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 4;
        jnode **v = jarena_alloc(p->a, cap * sizeof *v);
        const char **nm = jarena_alloc(p->a, cap * sizeof *nm);
        if (!v || !nm) {
            perr(p, "out of memory");
            return false;
        }
        if (k->n) {
            memcpy(v, k->v, k->n * sizeof *v);
            memcpy(nm, k->names, k->n * sizeof *nm);
        }
        k->v = v;
        k->names = nm;
        k->cap = cap;
    }
    k->v[k->n] = n;
    k->names[k->n] = name;
    k->n++;
    return true;
}

static const char *name_dup(parser *p, const jtok *t)
{
    const char *s = jarena_strdup(p->a, t->s, t->n);
    if (!s)
        perr(p, "out of memory");
    return s;
}

static jnode *expr(parser *p);
static jnode *unary(parser *p, bool with_filter);

static bool enter(parser *p)
{
    if (++p->depth > JINJA_MAX_DEPTH) {
        perr(p, "nested too deeply (more than %d levels)", JINJA_MAX_DEPTH);
        return false;
    }
    return true;
}

/* Each link of a chain (a.b[c](d), x | f | g, a + b + c, a and b and c)
 * wraps the tree built so far in one more node, which evaluation recurses
 * through as through parentheses: so each link enter()s a level of
 * nesting, and the chain's function gives them back (depth as it found
 * it) when it returns the chain; a failure ends the parse, so its returns
 * need not. Without this, 20,000 "+ 1" parsed fine and the render
 * overflowed the stack (session 31). */

/* Call arguments after '(' up to ')': positional, then name=value. */
static bool call_args(parser *p, kidv *k)
{
    while (!accept_op(p, ")")) {
        if (p->failed)
            return false;
        if (k->n && !expect_op(p, ","))
            return false;
        if (accept_op(p, ")"))
            break;
        const char *kw = NULL;
        if (peek(p)->kind == JT_NAME && is_op(peek2(p), "=")) {
            kw = name_dup(p, next(p));
            next(p);
        } else if (is_op(peek(p), "*") || is_op(peek(p), "**")) {
            perr(p, "*args and **kwargs in calls are not supported");
            return false;
        }
        jnode *v = expr(p);
        if (!v || !kid_push(p, k, v, kw))
            return false;
    }
    return true;
}

static jnode *primary(parser *p)
{
    const jtok *t = peek(p);
    jnode *n;
    char buf[64];
    if (t->kind == JT_NAME) {
        next(p);
        if (is_name(t, "true") || is_name(t, "True") || is_name(t, "false") || is_name(t, "False")) {
            if (!(n = node(p, JN_LIT)))
                return NULL;
            n->lit = jv_bool(t->s[0] == 't' || t->s[0] == 'T');
            return n;
        }
        if (is_name(t, "none") || is_name(t, "None")) {
            if (!(n = node(p, JN_LIT)))
                return NULL;
            n->lit = jv_none();
            return n;
        }
        if (!(n = node(p, JN_NAME)) || !(n->s = name_dup(p, t)))
            return NULL;
        n->n = t->n;
        return n;
    }
    if (t->kind == JT_STRING) {
        /* adjacent literals join, as in Python */
        jbuf b = {0};
        jbuf_puts(&b, "");
        while (peek(p)->kind == JT_STRING) {
            const jtok *s = next(p);
            jbuf_put(&b, s->s, s->n);
        }
        n = node(p, JN_LIT);
        char *s = n && !b.oom ? jarena_strdup(p->a, b.p, b.n) : NULL;
        size_t sn = b.n;
        free(b.p);
        if (!s)
            return perr(p, "out of memory");
        n->lit = jv_str(s, sn);
        return n;
    }
    if (t->kind == JT_INT || t->kind == JT_FLOAT) {
        next(p);
        if (!(n = node(p, JN_LIT)))
            return NULL;
        n->lit = t->kind == JT_INT ? jv_int(t->i) : jv_float(t->f);
        return n;
    }
    if (is_op(t, "(")) {
        next(p);
        if (accept_op(p, ")")) {
            jnode *e = node(p, JN_LIST); /* () is an empty tuple */
            if (e)
                e->tuple = true;
            return e;
        }
        jnode *e = expr(p);
        if (!e)
            return NULL;
        if (!is_op(peek(p), ","))
            return expect_op(p, ")") ? e : NULL;
        kidv k = {0};
        if (!kid_push(p, &k, e, NULL))
            return NULL;
        while (accept_op(p, ",")) {
            if (is_op(peek(p), ")"))
                break;
            if (!(e = expr(p)) || !kid_push(p, &k, e, NULL))
                return NULL;
        }
        if (!expect_op(p, ")") || !(n = node(p, JN_LIST)))
            return NULL;
        n->tuple = true;
        n->kids = k.v;
        n->nkids = k.n;
        return n;
    }
    if (is_op(t, "[") || is_op(t, "{")) {
        bool dict = is_op(t, "{");
        next(p);
        kidv k = {0};
        const char *close = dict ? "}" : "]";
        while (!accept_op(p, close)) {
            if (k.n && !expect_op(p, ","))
                return NULL;
            if (accept_op(p, close))
                break;
            jnode *e = expr(p);
            if (!e || !kid_push(p, &k, e, NULL))
                return NULL;
            if (dict) {
                if (!expect_op(p, ":") || !(e = expr(p)) || !kid_push(p, &k, e, NULL))
                    return NULL;
            }
        }
        if (!(n = node(p, dict ? JN_DICT : JN_LIST)))
            return NULL;
        n->kids = k.v;
        n->nkids = k.n;
        return n;
    }
    return perr(p, "unexpected %s", tok_desc(t, buf, sizeof buf));
}

/* After '[': an index or a slice [start:stop:step]. */
static jnode *subscript(parser *p, jnode *obj)
{
    jnode *parts[3] = {NULL, NULL, NULL};
    int np = 0;
    bool slice = false;
    for (;;) {
        if (is_op(peek(p), ":")) {
            next(p);
            slice = true;
            if (++np > 2)
                return perr(p, "bad slice");
            continue;
        }
        if (is_op(peek(p), "]"))
            break;
        if (parts[np])
            return perr(p, "expected ']'");
        if (!(parts[np] = expr(p)))
            return NULL;
    }
    next(p);
    jnode *n = node(p, slice ? JN_SLICE : JN_ITEM);
    if (!n)
        return NULL;
    n->a = obj;
    if (slice) {
        n->kids = jarena_alloc(p->a, 3 * sizeof *n->kids);
        if (!n->kids)
            return perr(p, "out of memory");
        memcpy(n->kids, parts, sizeof parts);
        n->nkids = 3;
    } else {
        if (!parts[0])
            return perr(p, "expected an index");
        n->b = parts[0];
    }
    return n;
}

static jnode *postfix(parser *p, jnode *n)
{
    const int depth = p->depth;
    while (n) {
        if ((is_op(peek(p), ".") || is_op(peek(p), "[") || is_op(peek(p), "(")) && !enter(p))
            return NULL;
        if (accept_op(p, ".")) {
            const jtok *t = next(p);
            jnode *m = node(p, JN_ITEM);
            if (!m)
                return NULL;
            m->a = n;
            if (t->kind == JT_NAME) {
                m->kind = JN_ATTR;
                if (!(m->s = name_dup(p, t)))
                    return NULL;
                m->n = t->n;
            } else if (t->kind == JT_INT) {
                if (!(m->b = node(p, JN_LIT)))
                    return NULL;
                m->b->lit = jv_int(t->i);
            } else {
                return perr(p, "expected a name after '.'");
            }
            n = m;
        } else if (accept_op(p, "[")) {
            n = subscript(p, n);
        } else if (accept_op(p, "(")) {
            jnode *c = node(p, JN_CALL);
            kidv k = {0};
            if (!c || !call_args(p, &k))
                return NULL;
            c->a = n;
            c->kids = k.v;
            c->names = k.names;
            c->nkids = k.n;
            n = c;
        } else {
            break;
        }
    }
    p->depth = depth;
    return n;
}

/* A filter or test name (dotted names are allowed by jinja2). */
static bool filter_name(parser *p, jnode *f)
{
    const jtok *t = next(p);
    if (t->kind != JT_NAME) {
        perr(p, "expected a filter or test name");
        return false;
    }
    jbuf b = {0};
    jbuf_put(&b, t->s, t->n);
    while (is_op(peek(p), ".") && peek2(p)->kind == JT_NAME) {
        next(p);
        const jtok *u = next(p);
        jbuf_puts(&b, ".");
        jbuf_put(&b, u->s, u->n);
    }
    f->s = b.oom ? NULL : jarena_strdup(p->a, b.p, b.n);
    f->n = b.n;
    free(b.p);
    if (!f->s)
        perr(p, "out of memory");
    return f->s != NULL;
}

static jnode *filters_and_tests(parser *p, jnode *n)
{
    const int depth = p->depth;
    while (n && !p->failed) {
        if ((is_op(peek(p), "|") || is_name(peek(p), "is")) && !enter(p))
            return NULL;
        if (accept_op(p, "|")) {
            jnode *f = node(p, JN_FILTER);
            if (!f || !filter_name(p, f))
                return NULL;
            f->a = n;
            if (accept_op(p, "(")) {
                kidv k = {0};
                if (!call_args(p, &k))
                    return NULL;
                f->kids = k.v;
                f->names = k.names;
                f->nkids = k.n;
            }
            n = f;
        } else if (is_name(peek(p), "is")) {
            next(p);
            jnode *t = node(p, JN_TEST);
            if (!t)
                return NULL;
            if (is_name(peek(p), "not")) {
                next(p);
                t->neg = true;
            }
            if (!filter_name(p, t))
                return NULL;
            t->a = n;
            const jtok *a = peek(p);
            kidv k = {0};
            if (is_op(a, "(")) {
                next(p);
                if (!call_args(p, &k))
                    return NULL;
            } else if ((a->kind == JT_NAME && !is_name(a, "else") && !is_name(a, "or") &&
                        !is_name(a, "and") && !is_name(a, "if") && !is_name(a, "is") &&
                        !is_name(a, "in") && !is_name(a, "not")) ||
                       a->kind == JT_STRING || a->kind == JT_INT || a->kind == JT_FLOAT ||
                       is_op(a, "[") || is_op(a, "{")) {
                /* `x is divisibleby 3`, `x is sameas false`: one bare argument */
                jnode *arg = postfix(p, primary(p));
                if (!arg || !kid_push(p, &k, arg, NULL))
                    return NULL;
            }
            t->kids = k.v;
            t->names = k.names;
            t->nkids = k.n;
            n = t;
        } else {
            break;
        }
    }
    p->depth = depth;
    return n;
}

static jnode *unary(parser *p, bool with_filter)
{
    if (!enter(p))
        return NULL;
    jnode *n;
    if (is_op(peek(p), "-") || is_op(peek(p), "+")) {
        bool neg = is_op(next(p), "-");
        jnode *u = node(p, neg ? JN_NEG : JN_POS);
        if (!u || !(u->a = unary(p, false)))
            return NULL;
        n = u;
    } else {
        n = postfix(p, primary(p));
    }
    if (n && with_filter)
        n = filters_and_tests(p, n);
    p->depth--;
    return n;
}

static jnode *binop(parser *p, int op, jnode *l, jnode *r)
{
    if (!l || !r)
        return NULL;
    jnode *n = node(p, JN_BINOP);
    if (!n)
        return NULL;
    n->op = (uint8_t)op;
    n->a = l;
    n->b = r;
    return n;
}

static jnode *pow_expr(parser *p)
{
    const int depth = p->depth;
    jnode *l = unary(p, true);
    while (l && accept_op(p, "**"))
        l = enter(p) ? binop(p, JOP_POW, l, unary(p, true)) : NULL;
    p->depth = depth;
    return l;
}

static jnode *math2(parser *p)
{
    const int depth = p->depth;
    jnode *l = pow_expr(p);
    for (;;) {
        int op = is_op(peek(p), "*") ? JOP_MUL : is_op(peek(p), "/") ? JOP_DIV
               : is_op(peek(p), "//") ? JOP_FLOORDIV : is_op(peek(p), "%") ? JOP_MOD : 0;
        if (!l || !op) {
            p->depth = depth;
            return l;
        }
        next(p);
        l = enter(p) ? binop(p, op, l, pow_expr(p)) : NULL;
    }
}

static jnode *concat(parser *p)
{
    const int depth = p->depth;
    jnode *l = math2(p);
    while (l && accept_op(p, "~"))
        l = enter(p) ? binop(p, JOP_CONCAT, l, math2(p)) : NULL;
    p->depth = depth;
    return l;
}

static jnode *math1(parser *p)
{
    const int depth = p->depth;
    jnode *l = concat(p);
    for (;;) {
        int op = is_op(peek(p), "+") ? JOP_ADD : is_op(peek(p), "-") ? JOP_SUB : 0;
        if (!l || !op) {
            p->depth = depth;
            return l;
        }
        next(p);
        l = enter(p) ? binop(p, op, l, concat(p)) : NULL;
    }
}

static jnode *compare(parser *p)
{
    const int depth = p->depth;
    jnode *l = math1(p), *prev = NULL, *last = NULL;
    for (;;) {
        const jtok *t = peek(p);
        int op = is_op(t, "==") ? JOP_EQ : is_op(t, "!=") ? JOP_NE : is_op(t, "<") ? JOP_LT
               : is_op(t, "<=") ? JOP_LE : is_op(t, ">") ? JOP_GT : is_op(t, ">=") ? JOP_GE
               : is_name(t, "in") ? JOP_IN
               : (is_name(t, "not") && is_name(peek2(p), "in")) ? JOP_NOTIN : 0;
        if (!l || !op) {
            p->depth = depth;
            return l;
        }
        if (!enter(p))
            return NULL;
        next(p);
        if (op == JOP_NOTIN)
            next(p);
        jnode *r = math1(p);
        jnode *n = node(p, JN_CMP);
        if (!r || !n)
            return NULL;
        n->op = (uint8_t)op;
        n->b = r;
        if (!prev) {
            n->a = l;
            l = n;
        } else {
            /* a < b < c is (a < b) and (b < c), as in Python */
            n->a = last;
            jnode *both = node(p, JN_AND);
            if (!both)
                return NULL;
            both->a = l;
            both->b = n;
            l = both;
        }
        prev = n;
        last = r;
    }
}

static jnode *not_expr(parser *p)
{
    if (is_name(peek(p), "not")) {
        next(p);
        if (!enter(p))
            return NULL;
        jnode *n = node(p, JN_NOT);
        if (n && !(n->a = not_expr(p)))
            n = NULL;
        p->depth--;
        return n;
    }
    return compare(p);
}

static jnode *and_expr(parser *p)
{
    const int depth = p->depth;
    jnode *l = not_expr(p);
    while (l && is_name(peek(p), "and")) {
        if (!enter(p))
            return NULL;
        next(p);
        jnode *n = node(p, JN_AND);
        if (!n || !(n->b = not_expr(p)))
            return NULL;
        n->a = l;
        l = n;
    }
    p->depth = depth;
    return l;
}

static jnode *or_expr(parser *p)
{
    const int depth = p->depth;
    jnode *l = and_expr(p);
    while (l && is_name(peek(p), "or")) {
        if (!enter(p))
            return NULL;
        next(p);
        jnode *n = node(p, JN_OR);
        if (!n || !(n->b = and_expr(p)))
            return NULL;
        n->a = l;
        l = n;
    }
    p->depth = depth;
    return l;
}

static jnode *expr(parser *p)
{
    if (!enter(p))
        return NULL;
    jnode *l = or_expr(p);
    while (l && is_name(peek(p), "if")) {
        next(p);
        jnode *n = node(p, JN_COND);
        if (!n || !(n->a = or_expr(p)))
            return NULL;
        n->b = l;
        if (is_name(peek(p), "else")) {
            next(p);
            if (!(n->c = expr(p)))
                return NULL;
        }
        l = n;
    }
    p->depth--;
    return l;
}

/* ---- statements ---- */
static bool block_end(parser *p)
{
    char buf[64];
    if (peek(p)->kind == JT_BLOCK_END) {
        next(p);
        return true;
    }
    perr(p, "expected end of statement block, got %s", tok_desc(peek(p), buf, sizeof buf));
    return false;
}

/* Statements until one of the end tags (each a NUL-separated name in
 * ends); *which is the index of the tag found. The tag's name is consumed,
 * the rest of its block is left to the caller. */
static jnode *body(parser *p, const char *const *ends, size_t nends, size_t *which);

static jnode *stmt_if(parser *p)
{
    static const char *const ends[] = {"elif", "else", "endif"};
    jnode *n = node(p, JN_IF);
    /* jinja2 parses the test without the conditional expression
     * (parse_tuple(with_condexpr=False)): `if a if b else c` is its syntax
     * error, so it is ours too rather than a template that renders */
    if (!n || !enter(p) || !(n->a = or_expr(p)))
        return NULL;
    p->depth--;
    if (!block_end(p))
        return NULL;
    size_t w;
    if (!(n->b = body(p, ends, 3, &w)))
        return NULL;
    if (w == 0) {
        if (!(n->c = stmt_if(p)))
            return NULL;
        return n; /* the elif chain consumed endif */
    }
    if (w == 1) {
        if (!block_end(p) || !(n->c = body(p, ends + 2, 1, &w)))
            return NULL;
    }
    return block_end(p) ? n : NULL;
}

static jnode *stmt_for(parser *p)
{
    static const char *const ends[] = {"else", "endfor"};
    jnode *n = node(p, JN_FOR);
    if (!n)
        return NULL;
    kidv targets = {0};
    do {
        const jtok *t = next(p);
        if (t->kind != JT_NAME)
            return perr(p, "expected a loop variable name");
        const char *nm = name_dup(p, t);
        if (!nm || !kid_push(p, &targets, NULL, nm))
            return NULL;
    } while (accept_op(p, ","));
    n->names = targets.names;
    n->nnames = targets.n;
    if (!is_name(next(p), "in"))
        return perr(p, "expected 'in' in for loop");
    /* the iterable is parsed without the conditional expression, so that
     * `for x in y if cond` is the loop filter */
    if (!enter(p) || !(n->a = or_expr(p)))
        return NULL;
    p->depth--;
    if (is_name(peek(p), "if")) {
        next(p);
        if (!(n->c = expr(p)))
            return NULL;
    }
    if (is_name(peek(p), "recursive"))
        return perr(p, "recursive loops are not supported");
    if (!block_end(p))
        return NULL;
    size_t w;
    p->loops++;
    n->b = body(p, ends, 2, &w);
    p->loops--;
    if (!n->b)
        return NULL;
    if (w == 0) {
        jnode *e = NULL;
        if (!block_end(p) || !(e = body(p, ends + 1, 1, &w)))
            return NULL;
        n->kids = jarena_alloc(p->a, sizeof *n->kids);
        if (!n->kids)
            return perr(p, "out of memory");
        n->kids[0] = e;
        n->nkids = 1;
    }
    return block_end(p) ? n : NULL;
}

static jnode *stmt_set(parser *p)
{
    static const char *const ends[] = {"endset"};
    const jtok *t = next(p);
    if (t->kind != JT_NAME)
        return perr(p, "expected a name after 'set'");
    jnode *n = node(p, JN_SET);
    if (!n || !(n->s = name_dup(p, t)))
        return NULL;
    n->n = t->n;
    if (accept_op(p, ".")) {
        /* set ns.attr = value */
        const jtok *a = next(p);
        if (a->kind != JT_NAME)
            return perr(p, "expected an attribute name");
        n->names = jarena_alloc(p->a, sizeof *n->names);
        if (!n->names || !(n->names[0] = name_dup(p, a)))
            return perr(p, "out of memory");
        n->nnames = 1;
    } else if (is_op(peek(p), ",")) {
        return perr(p, "tuple assignment in set is not supported");
    }
    if (peek(p)->kind == JT_BLOCK_END || is_op(peek(p), "|")) {
        if (n->nnames)
            return perr(p, "block set needs a plain name");
        n->kind = JN_SETBLOCK;
        if (accept_op(p, "|"))
            return perr(p, "filters on block set are not supported");
        size_t w;
        if (!block_end(p) || !(n->b = body(p, ends, 1, &w)) || !block_end(p))
            return NULL;
        return n;
    }
    if (!expect_op(p, "=") || !(n->a = expr(p)))
        return NULL;
    if (is_op(peek(p), ",")) {
        /* set x = a, b: a tuple (printed "(a, b)", as jinja2's
         * parse_tuple makes it; `set x = a,` is the tuple (a,)) */
        kidv k = {0};
        if (!kid_push(p, &k, n->a, NULL))
            return NULL;
        while (accept_op(p, ",")) {
            if (peek(p)->kind == JT_BLOCK_END)
                break;
            jnode *e = expr(p);
            if (!e || !kid_push(p, &k, e, NULL))
                return NULL;
        }
        jnode *l = node(p, JN_LIST);
        if (!l)
            return NULL;
        l->kids = k.v;
        l->nkids = k.n;
        l->tuple = true;
        n->a = l;
    }
    return block_end(p) ? n : NULL;
}

static jnode *stmt_macro(parser *p)
{
    static const char *const ends[] = {"endmacro"};
    const jtok *t = next(p);
    if (t->kind != JT_NAME)
        return perr(p, "expected a macro name");
    jnode *n = node(p, JN_MACRO);
    if (!n || !(n->s = name_dup(p, t)))
        return NULL;
    n->n = t->n;
    if (!expect_op(p, "("))
        return NULL;
    kidv params = {0};
    while (!accept_op(p, ")")) {
        if (params.n && !expect_op(p, ","))
            return NULL;
        if (accept_op(p, ")"))
            break;
        const jtok *a = next(p);
        if (a->kind != JT_NAME)
            return perr(p, "expected a parameter name");
        const char *nm = name_dup(p, a);
        jnode *def = NULL;
        if (accept_op(p, "=") && !(def = expr(p)))
            return NULL;
        if (!nm || !kid_push(p, &params, def, nm))
            return NULL;
    }
    n->kids = params.v;
    n->names = params.names;
    n->nkids = n->nnames = params.n;
    size_t w;
    int loops = p->loops;
    p->loops = 0;
    if (!block_end(p) || !(n->b = body(p, ends, 1, &w)))
        return NULL;
    p->loops = loops;
    return block_end(p) ? n : NULL;
}

static jnode *statement(parser *p)
{
    char buf[64];
    const jtok *t = next(p);
    if (t->kind != JT_NAME)
        return perr(p, "expected a statement name, got %s", tok_desc(t, buf, sizeof buf));
    if (is_name(t, "if"))
        return stmt_if(p);
    if (is_name(t, "for"))
        return stmt_for(p);
    if (is_name(t, "set"))
        return stmt_set(p);
    if (is_name(t, "macro"))
        return stmt_macro(p);
    if (is_name(t, "break") || is_name(t, "continue")) {
        if (!p->loops)
            return perr(p, "'%.*s' outside a for loop", (int)t->n, t->s);
        jnode *n = node(p, is_name(t, "break") ? JN_BREAK : JN_CONTINUE);
        return n && block_end(p) ? n : NULL;
    }
    if (is_name(t, "generation")) {
        /* transformers' {% generation %} marks assistant text for masks;
         * for rendering it is a plain block */
        static const char *const ends[] = {"endgeneration"};
        size_t w;
        jnode *b;
        if (!block_end(p) || !(b = body(p, ends, 1, &w)) || !block_end(p))
            return NULL;
        return b;
    }
    return perr(p, "unknown or unsupported tag '%.*s'", (int)(t->n < 40 ? t->n : 40), t->s);
}

static jnode *body(parser *p, const char *const *ends, size_t nends, size_t *which)
{
    if (!enter(p))
        return NULL;
    jnode *b = node(p, JN_BODY);
    kidv k = {0};
    if (!b)
        return NULL;
    for (;;) {
        const jtok *t = peek(p);
        jnode *s = NULL;
        if (t->kind == JT_EOF) {
            if (nends) {
                perr(p, "unexpected end of template: '%s' missing", ends[nends - 1]);
                return NULL;
            }
            break;
        }
        if (t->kind == JT_TEXT) {
            next(p);
            if (!(s = node(p, JN_TEXT)))
                return NULL;
            s->line = t->line;
            s->s = t->s;
            s->n = t->n;
        } else if (t->kind == JT_VAR_BEGIN) {
            next(p);
            if (!(s = node(p, JN_OUTPUT)) || !(s->a = expr(p)))
                return NULL;
            if (peek(p)->kind != JT_VAR_END) {
                char buf[64];
                return perr(p, "expected end of print statement, got %s", tok_desc(peek(p), buf, sizeof buf));
            }
            next(p);
        } else if (t->kind == JT_BLOCK_BEGIN) {
            const jtok *nm = peek2(p);
            for (size_t i = 0; i < nends; i++)
                if (is_name(nm, ends[i])) {
                    next(p);
                    next(p);
                    *which = i;
                    b->kids = k.v;
                    b->nkids = k.n;
                    p->depth--;
                    return b;
                }
            next(p);
            if (nm->kind == JT_NAME &&
                (is_name(nm, "endif") || is_name(nm, "endfor") || is_name(nm, "else") ||
                 is_name(nm, "elif") || is_name(nm, "endmacro") || is_name(nm, "endset") ||
                 is_name(nm, "endgeneration")))
                return perr(p, "unexpected '%.*s'", (int)nm->n, nm->s);
            if (!(s = statement(p)))
                return NULL;
        } else {
            char buf[64];
            return perr(p, "unexpected %s", tok_desc(t, buf, sizeof buf));
        }
        if (!kid_push(p, &k, s, NULL))
            return NULL;
    }
    b->kids = k.v;
    b->nkids = k.n;
    p->depth--;
    return b;
}

jinja_template *jinja_parse(const char *src, size_t len, const char *name, vb_err *err)
{
    jinja_template *t = calloc(1, sizeof *t);
    if (!t || !(t->name = strdup(name ? name : "template"))) {
        free(t);
        vb_err_set(err, "out of memory");
        return NULL;
    }
    /* text nodes point into the source: keep a copy with the template */
    char *copy = (char *)jarena_strdup(&t->ar, src, len);
    if (!copy) {
        vb_err_set(err, "%s: out of memory", t->name);
        jinja_free(t);
        return NULL;
    }
    /* As Jinja's lexer reads a source: every line break (\r\n, \r, \n)
     * becomes \n, and one newline at the end is dropped
     * (keep_trailing_newline=False, transformers' setting). A template file
     * saved with CRLF rendered them, and one ending in a newline rendered
     * it (session 31). */
    size_t w = 0;
    for (size_t r = 0; r < len; r++) {
        if (copy[r] == '\r') {
            copy[w++] = '\n';
            if (r + 1 < len && copy[r + 1] == '\n')
                r++;
        } else {
            copy[w++] = copy[r];
        }
    }
    if (w > 0 && copy[w - 1] == '\n')
        w--;
    copy[w] = '\0';
    len = w;
    jtoks toks = {0};
    if (jinja_lex(copy, len, t->name, &t->ar, &toks, err) < 0) {
        free(toks.v);
        jinja_free(t);
        return NULL;
    }
    parser p = {.t = toks.v, .n = toks.n, .a = &t->ar, .name = t->name, .err = err};
    size_t end;
    t->root = body(&p, NULL, 0, &end);
    free(toks.v);
    if (!t->root) {
        if (!p.failed)
            vb_err_set(err, "%s: out of memory", t->name);
        jinja_free(t);
        return NULL;
    }
    return t;
}

void jinja_free(jinja_template *t)
{
    if (!t)
        return;
    jarena_free(&t->ar);
    free(t->name);
    free(t);
}

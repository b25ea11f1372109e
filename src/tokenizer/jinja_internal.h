/* Shared between the Jinja files: the arena, values, the syntax tree, the
 * lexer's tokens and the render state (jinja.h says what the interpreter
 * does). Everything a parse or a render allocates comes from an arena that
 * is freed whole, so values need no reference counts and an error can leave
 * at any point without leaks. */
#ifndef VB_JINJA_INTERNAL_H
#define VB_JINJA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer/jbuf.h"
#include "tokenizer/jinja.h"
#include "tokenizer/py_space.h"

/* Limits that keep a hostile template bounded (jinja.h). */
/* (The fuzzer builds with smaller ARENA and STEPS, to stay in its time limit.) */
#define JINJA_MAX_DEPTH 200            /* nested expressions / blocks while parsing */
#define JINJA_MAX_CALL_DEPTH 64        /* macro calls inside macro calls */
#ifndef JINJA_MAX_ARENA
#define JINJA_MAX_ARENA (256u << 20)   /* bytes one render may allocate */
#endif
#ifndef JINJA_MAX_STEPS
#define JINJA_MAX_STEPS 50000000L      /* statements and expressions one render evaluates */
#endif

/* ---- arena ---- */
typedef struct jarena_chunk jarena_chunk;
typedef struct jarena {
    jarena_chunk *head;
    size_t used, limit; /* total bytes handed out; 0 limit = none */
    bool failed;        /* an allocation was refused (out of memory or over limit) */
    bool over_limit;    /* ... and the first refusal was the limit's, not malloc's */
} jarena;

void *jarena_alloc(jarena *a, size_t n);            /* zeroed; NULL when refused */
char *jarena_strdup(jarena *a, const char *s, size_t n);
void jarena_free(jarena *a);

/* ---- values ---- */
typedef enum jv_kind {
    JV_UNDEF, /* a name or key that is not there: prints '', is false, fails as an object */
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STR,
    JV_LIST,  /* lists and tuples */
    JV_DICT,
    JV_NS,    /* namespace(): a dict whose attributes `set ns.x = ...` may change */
    JV_MACRO,
    JV_FUNC,  /* a global function (range, namespace, raise_exception, ...) */
    JV_LOOP,  /* the for loop's `loop` (attributes computed on access) */
} jv_kind;

typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jnode jnode;
typedef struct jloop jloop;

typedef struct jv {
    uint8_t k;
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            const char *p; /* not NUL-terminated in general; for JV_UNDEF, the missing name */
            size_t n;
        } s;
        jlist *l;
        jdict *d;
        const jnode *m;
        int fn;
        const jloop *loop;
    } u;
} jv;

struct jlist {
    jv *v;
    size_t n;
    bool tuple; /* printed as Python prints a tuple: (1, 2) */
    /* A generator or iterator in jinja2: what map, select, reject,
     * selectattr, rejectattr, unique and items give, and reverse of a list.
     * It is true even when empty (so `if messages | selectattr(...)` is
     * always taken, as in transformers), has no len(), is not reversible,
     * indexing it gives undefined, and it cannot be printed (Python prints
     * its address) or joined to a list with +. | list makes a list of it. */
    bool lazy;
};

static inline bool jv_is_lazy(jv v)
{
    return v.k == JV_LIST && v.u.l->lazy;
}

struct jdict {
    jv *k, *v;
    size_t n, cap;
};

struct jloop {
    int64_t index0, length;
    jv prev, next;
};

enum { JF_RANGE = 1, JF_NAMESPACE, JF_RAISE, JF_STRFTIME, JF_DICT, JF_CYCLER_UNUSED };

static inline jv jv_undef(const char *name, size_t n)
{
    jv v = {.k = JV_UNDEF};
    v.u.s.p = name;
    v.u.s.n = n;
    return v;
}
static inline jv jv_none(void) { return (jv){.k = JV_NONE}; }
static inline jv jv_bool(bool b) { jv v = {.k = JV_BOOL}; v.u.b = b; return v; }
static inline jv jv_int(int64_t i) { jv v = {.k = JV_INT}; v.u.i = i; return v; }
static inline jv jv_float(double f) { jv v = {.k = JV_FLOAT}; v.u.f = f; return v; }
static inline jv jv_str(const char *p, size_t n)
{
    jv v = {.k = JV_STR};
    v.u.s.p = p;
    v.u.s.n = n;
    return v;
}

bool jv_truthy(jv v);
bool jv_equal(jv a, jv b);
const char *jv_type_name(jv v);
/* Python's order for <, >, ...: -1/0/1 in *cmp, false when the two kinds do
 * not compare (a TypeError in Python). */
bool jv_compare(jv a, jv b, int *cmp);
/* dict lookup by key; NULL when absent. */
jv *jdict_get(const jdict *d, jv key);
jv *jdict_get_str(const jdict *d, const char *key);
/* Adds or replaces; false when the arena refused. */
bool jdict_set(jarena *a, jdict *d, jv key, jv val);
/* Adds a key the caller knows is not in d, without looking it up. */
bool jdict_append(jarena *a, jdict *d, jv key, jv val);
jlist *jlist_new(jarena *a, size_t n);

/* Python str(v) (what {{ v }} prints: True, None, 1.0, ['a', 1]). */
void jv_to_str(jbuf *b, jv v);
/* Python repr(v) (strings quoted as Python quotes them). */
void jv_repr(jbuf *b, jv v);
/* json.dumps(v, ensure_ascii=False, indent=indent (<0: none), sort_keys);
 * false with *why set for a value JSON cannot hold. */
bool jv_to_json(jbuf *b, jv v, int indent, bool sort_keys, const char **why);
/* A jansson value as a jinja value (arena copies). */
jv jv_from_json(jarena *a, const json_t *j);

/* UTF-8 helpers for Python's code-point string semantics. */
size_t ju8_len(const char *s, size_t n);                  /* code points */
size_t ju8_offset(const char *s, size_t n, size_t cp);     /* byte offset of code point cp (n when past) */

/* ---- syntax tree ---- */
typedef enum jnode_kind {
    /* expressions */
    JN_LIT, JN_NAME, JN_LIST, JN_DICT, JN_ATTR, JN_ITEM, JN_SLICE, JN_CALL, JN_FILTER, JN_TEST,
    JN_NEG, JN_POS, JN_NOT, JN_AND, JN_OR, JN_BINOP, JN_CMP, JN_COND,
    /* statements */
    JN_BODY, JN_TEXT, JN_OUTPUT, JN_IF, JN_FOR, JN_SET, JN_SETBLOCK, JN_MACRO, JN_BREAK,
    JN_CONTINUE, JN_CALLBLOCK_UNUSED,
} jnode_kind;

/* Binary operators and comparisons (JN_BINOP / JN_CMP op). */
enum { JOP_ADD = 1, JOP_SUB, JOP_MUL, JOP_DIV, JOP_FLOORDIV, JOP_MOD, JOP_POW, JOP_CONCAT,
       JOP_EQ, JOP_NE, JOP_LT, JOP_LE, JOP_GT, JOP_GE, JOP_IN, JOP_NOTIN };

struct jnode {
    uint8_t kind, op;
    bool neg;     /* JN_TEST: `is not` */
    int line;
    const char *s; /* names, filter / test names, text */
    size_t n;
    jnode *a, *b, *c;
    bool tuple;   /* JN_LIST written as (a, b) */
    jnode **kids; /* arguments, statements, list items, dict key/value pairs */
    size_t nkids;
    const char **names; /* keyword argument names (NULL: positional), macro params, for targets */
    size_t nnames;
    jv lit;
};

/* ---- lexer ---- */
typedef enum jtok_kind {
    JT_EOF, JT_TEXT, JT_VAR_BEGIN, JT_VAR_END, JT_BLOCK_BEGIN, JT_BLOCK_END, JT_NAME,
    JT_STRING, JT_INT, JT_FLOAT, JT_OP,
} jtok_kind;

typedef struct jtok {
    uint8_t kind;
    int line;
    const char *s; /* JT_TEXT, JT_NAME, JT_OP: the text; JT_STRING: the decoded string (arena) */
    size_t n;
    int64_t i;
    double f;
} jtok;

typedef struct jtoks {
    jtok *v;
    size_t n, cap;
} jtoks;

/* Splits src into tokens (text, tag delimiters, expression tokens),
 * applying trim_blocks, lstrip_blocks and the -/+ markers. -1 + err. */
int jinja_lex(const char *src, size_t len, const char *name, jarena *a, jtoks *out, vb_err *err);

struct jinja_template {
    jarena ar;
    char *name;
    jnode *root;
};

/* ---- render ---- */
typedef struct jscope jscope;
struct jscope {
    jscope *parent;
    const char **names;
    size_t *lens;
    jv *vals;
    size_t n, cap;
};

typedef struct jrender {
    const jinja_template *t;
    jarena ar;
    jbuf *out;
    jscope *globals;
    vb_err *err;
    int depth;
    long steps;
} jrender;

int jerr(jrender *r, const jnode *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A refused arena allocation's error: the render's size limit or out of
 * memory, whichever refused it. Returns false. */
bool jerr_oom(jrender *r, const jnode *at);
jv jscope_get(const jscope *s, const char *name, size_t n);
bool jscope_set(jrender *r, jscope *s, const char *name, size_t n, jv v);
/* Evaluates an expression; false with r->err set on an error. */
bool jeval(jrender *r, jscope *s, const jnode *e, jv *out);
/* A string value of the output of body run in a new scope (macros, block set). */
bool jcapture(jrender *r, jscope *s, const jnode *body, jv *out);
/* Renders the statement list; 0, or -1 with r->err. */
int jexec_body(jrender *r, jscope *s, const jnode *body);

/* Unicode case as Python's str (jinja_case.c): the upper, lower,
 * capitalize and title filters and methods (the title filter is jinja2's,
 * not str.title), wordcount's \w+ runs, and the lower / upper tests. */
typedef enum { JCASE_UPPER, JCASE_LOWER, JCASE_CAPITALIZE, JCASE_TITLE_METHOD,
               JCASE_TITLE_FILTER } jcase_mode;
bool jcase_convert(jrender *r, jv s, jcase_mode mode, jv *out);
int64_t jcase_wordcount(jrender *r, jv s);
bool jcase_is(jv s, bool upper);
/* Python's str.isprintable() of one code point (what repr leaves as it is). */
bool jcase_printable(uint32_t cp);

/* Builtins (jinja_builtins.c). args/kw: positional values, then keyword
 * names and values. */
typedef struct jargs {
    const jv *pos;
    size_t npos;
    const char *const *kwn;
    const jv *kwv;
    size_t nkw;
} jargs;
/* Whether a filter / test of that name exists (the parser refuses others at load). */
bool jfilter_known(const char *name);
bool jtest_known(const char *name);
bool jfilter(jrender *r, const jnode *at, const char *name, jv in, const jargs *args, jv *out);
bool jtest(jrender *r, const jnode *at, const char *name, jv in, const jargs *args, bool *out);
/* obj.name(args) for str, list and dict methods; *found false when obj has no such method. */
bool jmethod(jrender *r, const jnode *at, jv obj, const char *name, const jargs *args, jv *out,
             bool *found);
bool jcall_func(jrender *r, jscope *s, const jnode *at, int fn, const jargs *args, jv *out);
bool jcall_macro(jrender *r, const jnode *at, const jnode *macro, const jargs *args, jv *out);
/* String value of jbuf (copied into the arena; frees b). */
bool jbuf_to_jv(jrender *r, jbuf *b, jv *out);
/* str(v) as an arena string. */
bool jv_stringify(jrender *r, jv v, jv *out);

#endif

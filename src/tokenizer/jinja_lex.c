/* Template text to tokens, as jinja2's lexer does it with trim_blocks and
 * lstrip_blocks on (transformers' settings): text between tags, the tag
 * delimiters, and inside tags names, numbers, strings and operators.
 * Whitespace control is applied here, so the parser only sees the text
 * that is printed. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/jinja_internal.h"

static bool push(jtoks *t, jtok tok)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        jtok *v = realloc(t->v, cap * sizeof *v);
        if (!v)
            return false;
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n++] = tok;
    return true;
}

static int count_lines(const char *s, size_t n)
{
    int k = 0;
    for (size_t i = 0; i < n; i++)
        k += s[i] == '\n';
    return k;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void put_utf8(jbuf *b, unsigned long cp)
{
    char u[4];
    if (cp < 0x80) {
        u[0] = (char)cp;
        jbuf_put(b, u, 1);
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        jbuf_put(b, u, 2);
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        jbuf_put(b, u, 3);
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        jbuf_put(b, u, 4);
    }
}

/* A string literal's body with Python's escapes (jinja2 decodes them with
 * the unicode-escape codec); an unknown escape keeps its backslash. */
static bool unescape(const char *s, size_t n, jbuf *b)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\' || i + 1 >= n) {
            if (s[i] == '\r') { /* jinja2 normalises newlines in literals */
                jbuf_puts(b, "\n");
                if (i + 1 < n && s[i + 1] == '\n')
                    i++;
                continue;
            }
            jbuf_put(b, s + i, 1);
            continue;
        }
        char c = s[++i];
        int digits = 0;
        switch (c) {
        case 'n': jbuf_puts(b, "\n"); break;
        case 't': jbuf_puts(b, "\t"); break;
        case 'r': jbuf_puts(b, "\r"); break;
        case 'a': jbuf_puts(b, "\a"); break;
        case 'b': jbuf_puts(b, "\b"); break;
        case 'f': jbuf_puts(b, "\f"); break;
        case 'v': jbuf_puts(b, "\v"); break;
        case '\\': jbuf_puts(b, "\\"); break;
        case '\'': jbuf_puts(b, "'"); break;
        case '"': jbuf_puts(b, "\""); break;
        case '\n': break; /* a backslash-newline continues the line */
        case 'x': digits = 2; break;
        case 'u': digits = 4; break;
        case 'U': digits = 8; break;
        default:
            if (c >= '0' && c <= '7') {
                unsigned long cp = 0;
                size_t k = 0;
                for (; k < 3 && i + k < n && s[i + k] >= '0' && s[i + k] <= '7'; k++)
                    cp = cp * 8 + (unsigned long)(s[i + k] - '0');
                i += k - 1;
                put_utf8(b, cp);
            } else {
                jbuf_put(b, s + i - 1, 2);
            }
        }
        if (digits) {
            unsigned long cp = 0;
            for (int k = 0; k < digits; k++) {
                int h = i + 1 + (size_t)k < n ? hexval(s[i + 1 + k]) : -1;
                if (h < 0)
                    return false;
                cp = cp * 16 + (unsigned long)h;
            }
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return false;
            i += (size_t)digits;
            put_utf8(b, cp);
        }
    }
    return !b->oom;
}

static int lex_err(vb_err *err, const char *name, int line, const char *what)
{
    return vb_err_set(err, "%s: line %d: %s", name, line, what);
}

/* Tokens inside one tag, up to its end marker (at bracket depth 0). On
 * return *pos is past the marker and *strip_after / *keep_after say
 * whether it was "-%}" / "+%}". */
static int lex_tag(const char *src, size_t len, size_t *pos, int *line, bool block, const char *name,
                   jarena *a, jtoks *out, bool *strip_after, bool *keep_after, vb_err *err)
{
    size_t p = *pos;
    int depth = 0;
    const char close = block ? '%' : '}';
    for (;;) {
        while (p < len && (src[p] == ' ' || src[p] == '\t' || src[p] == '\n' || src[p] == '\r' ||
                           src[p] == '\f' || src[p] == '\v')) {
            *line += src[p] == '\n';
            p++;
        }
        if (p >= len)
            return lex_err(err, name, *line, block ? "unexpected end of template: '%}' missing"
                                                   : "unexpected end of template: '}}' missing");
        if (depth == 0) {
            size_t q = p;
            bool minus = false, plus = false;
            if (src[q] == '-' || (src[q] == '+' && block)) {
                minus = src[q] == '-';
                plus = src[q] == '+';
                q++;
            }
            if (q + 1 < len && src[q] == close && src[q + 1] == '}') {
                *strip_after = minus;
                *keep_after = plus;
                *pos = q + 2;
                return 0;
            }
        }
        jtok t = {.line = *line, .s = src + p};
        char c = src[p];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
            size_t q = p;
            while (q < len && ((src[q] >= 'a' && src[q] <= 'z') || (src[q] >= 'A' && src[q] <= 'Z') ||
                               (src[q] >= '0' && src[q] <= '9') || src[q] == '_'))
                q++;
            t.kind = JT_NAME;
            t.n = q - p;
            p = q;
        } else if (c >= '0' && c <= '9') {
            size_t q = p;
            bool is_float = false;
            while (q < len && ((src[q] >= '0' && src[q] <= '9') || src[q] == '_'))
                q++;
            if (q + 1 < len && src[q] == '.' && src[q + 1] >= '0' && src[q + 1] <= '9') {
                is_float = true;
                q++;
                while (q < len && ((src[q] >= '0' && src[q] <= '9') || src[q] == '_'))
                    q++;
            }
            if (q < len && (src[q] == 'e' || src[q] == 'E')) {
                size_t r = q + 1;
                if (r < len && (src[r] == '+' || src[r] == '-'))
                    r++;
                if (r < len && src[r] >= '0' && src[r] <= '9') {
                    is_float = true;
                    q = r;
                    while (q < len && src[q] >= '0' && src[q] <= '9')
                        q++;
                }
            }
            char num[64];
            size_t k = 0;
            for (size_t i = p; i < q && k < sizeof num - 1; i++)
                if (src[i] != '_')
                    num[k++] = src[i];
            num[k] = 0;
            if (q - p >= sizeof num - 1)
                return lex_err(err, name, *line, "number literal too long");
            t.kind = is_float ? JT_FLOAT : JT_INT;
            if (is_float) {
                t.f = strtod(num, NULL);
            } else {
                char *end;
                unsigned long long v = strtoull(num, &end, 10);
                if (v > INT64_MAX)
                    return lex_err(err, name, *line, "integer literal too big");
                t.i = (int64_t)v;
            }
            t.n = q - p;
            p = q;
        } else if (c == '\'' || c == '"') {
            size_t q = p + 1;
            while (q < len && src[q] != c) {
                if (src[q] == '\\' && q + 1 < len)
                    q++;
                q++;
            }
            if (q >= len)
                return lex_err(err, name, *line, "unterminated string");
            jbuf b = {0};
            jbuf_puts(&b, "");
            bool ok = unescape(src + p + 1, q - p - 1, &b);
            char *s = ok ? jarena_strdup(a, b.p, b.n) : NULL;
            size_t sn = b.n;
            free(b.p);
            if (!ok)
                return lex_err(err, name, *line, "bad escape in string literal");
            if (!s)
                return lex_err(err, name, *line, "out of memory");
            *line += count_lines(src + p, q - p);
            t.kind = JT_STRING;
            t.s = s;
            t.n = sn;
            p = q + 1;
        } else {
            static const char *const ops2[] = {"//", "**", "==", "!=", "<=", ">="};
            t.kind = JT_OP;
            t.n = 0;
            for (size_t k = 0; k < sizeof ops2 / sizeof *ops2; k++)
                if (p + 1 < len && src[p] == ops2[k][0] && src[p + 1] == ops2[k][1])
                    t.n = 2;
            if (!t.n) {
                if (!strchr("+-*/%~<>=()[]{},.:|!", c) || c == 0)
                    return lex_err(err, name, *line, "unexpected character in tag");
                t.n = 1;
                if (c == '(' || c == '[' || c == '{')
                    depth++;
                else if ((c == ')' || c == ']' || c == '}') && depth > 0)
                    depth--;
            }
            p += t.n;
        }
        if (!push(out, t))
            return lex_err(err, name, *line, "out of memory");
    }
}

int jinja_lex(const char *src, size_t len, const char *name, jarena *a, jtoks *out, vb_err *err)
{
    size_t pos = 0;
    int line = 1;
    bool line_starting = true, strip_next = false;
    for (;;) {
        size_t t = pos;
        while (t + 1 < len && !(src[t] == '{' && (src[t + 1] == '{' || src[t + 1] == '%' || src[t + 1] == '#')))
            t++;
        if (t + 1 >= len)
            t = len;
        const char *text = src + pos;
        size_t tn = t - pos;
        int text_line = line;
        if (strip_next) {
            size_t off = py_lstrip_off(text, tn);
            text_line += count_lines(text, off);
            text += off;
            tn -= off;
        }
        char kind = t < len ? src[t + 1] : 0;
        char sign = t + 2 < len ? src[t + 2] : 0;
        if (kind && sign == '-') {
            tn = py_rstrip_len(text, tn);
        } else if (kind && kind != '{' && sign != '+') {
            /* lstrip_blocks: spaces and tabs alone between the line start
             * and a block or comment tag go. */
            size_t l = tn;
            while (l > 0 && text[l - 1] != '\n')
                l--;
            if (l > 0 || line_starting) {
                size_t k = l;
                while (k < tn && py_space_len(text + k, tn - k))
                    k += py_space_len(text + k, tn - k);
                if (k == tn)
                    tn = l;
            }
        }
        if (tn > 0 && !push(out, (jtok){.kind = JT_TEXT, .line = text_line, .s = text, .n = tn}))
            return lex_err(err, name, line, "out of memory");
        line += count_lines(src + pos, t - pos);
        if (t >= len)
            break;
        pos = t + 2;
        if (sign == '-' || (sign == '+' && kind != '{'))
            pos++;
        bool strip_after = false, keep_after = false;
        if (kind == '#') {
            size_t q = pos;
            while (q + 1 < len && !(src[q] == '#' && src[q + 1] == '}'))
                q++;
            if (q + 1 >= len)
                return lex_err(err, name, line, "unterminated comment");
            strip_after = q > pos && src[q - 1] == '-';
            keep_after = q > pos && src[q - 1] == '+';
            line += count_lines(src + pos, q - pos);
            pos = q + 2;
        } else {
            bool block = kind == '%';
            if (!push(out, (jtok){.kind = block ? JT_BLOCK_BEGIN : JT_VAR_BEGIN, .line = line}))
                return lex_err(err, name, line, "out of memory");
            if (lex_tag(src, len, &pos, &line, block, name, a, out, &strip_after, &keep_after, err) < 0)
                return -1;
            if (!push(out, (jtok){.kind = block ? JT_BLOCK_END : JT_VAR_END, .line = line}))
                return lex_err(err, name, line, "out of memory");
            if (!block)
                keep_after = true; /* trim_blocks is for block and comment tags only */
        }
        strip_next = strip_after;
        line_starting = false;
        if (strip_after) {
            /* "-%}" strips the whitespace after it (the next text, above) */
        } else if (!keep_after && pos < len && src[pos] == '\n') {
            pos++; /* trim_blocks: the newline after a tag goes */
            line++;
            line_starting = true;
        }
    }
    /* jinja2 reports an unexpected end at the last token's line */
    if (!push(out, (jtok){.kind = JT_EOF, .line = out->n ? out->v[out->n - 1].line : 1}))
        return lex_err(err, name, line, "out of memory");
    return 0;
}

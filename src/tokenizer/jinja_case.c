/* Unicode case for the Jinja filters and string methods, as Python's str
 * does it (transformers renders chat templates with jinja2 on Python
 * strings): full mappings ("ß".upper() is "SS"), the Final_Sigma rule of
 * lower(), str.title()'s and jinja2's title filter's word boundaries,
 * wordcount as jinja2's \w+ runs, and `is lower` / `is upper`.
 *
 * utf8proc gives the one-to-one mappings and the general category;
 * jinja_case_table.h (scripts/make-jinja-case-table, from Python itself)
 * lists where Python differs from those. Bytes that are not UTF-8 (a
 * string sliced inside a character) pass through as they are. */
#include <stdint.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/jinja_case_table.h"
#include "tokenizer/jinja_internal.h"

#define RAW_BYTE 0x80000000u /* a byte that is no UTF-8, kept as it is */

/* The run of t (n runs, sorted, disjoint) holding cp, or NULL. */
static const jcase_run *run_of(const jcase_run *t, size_t n, uint32_t cp)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        const size_t mid = (lo + hi) / 2;
        if (cp < t[mid].lo)
            hi = mid;
        else if (cp > t[mid].hi)
            lo = mid + 1;
        else
            return &t[mid];
    }
    return NULL;
}

/* Python's class of one code point: 0 none, 1 lowercase, 2 uppercase,
 * 3 titlecase; "cased" is any but 0. */
static int case_class(uint32_t cp)
{
    if (cp & RAW_BYTE)
        return 0;
    const jcase_run *r = run_of(CASE_CLASS, sizeof CASE_CLASS / sizeof CASE_CLASS[0], cp);
    if (r)
        return r->k;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LL: return 1;
    case UTF8PROC_CATEGORY_LU: return 2;
    case UTF8PROC_CATEGORY_LT: return 3;
    default: return 0;
    }
}

/* Unicode's Case_Ignorable: Word_Break MidLetter, MidNumLet or
 * Single_Quote, or category Mn, Me, Cf, Lm, Sk (the Final_Sigma rule skips
 * these around U+03A3). */
static bool case_ignorable(uint32_t cp)
{
    static const uint32_t mid[] = {0x27,   0x2E,   0x3A,   0xB7,   0x387,  0x55F,
                                   0x5F4,  0x2018, 0x2019, 0x2024, 0x2027, 0xFE13,
                                   0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A};
    if (cp & RAW_BYTE)
        return false;
    for (size_t i = 0; i < sizeof mid / sizeof mid[0]; i++)
        if (cp == mid[i])
            return true;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_SK: return true;
    default: return false;
    }
}

/* Python's str.isprintable() of one code point: repr() writes the others
 * as \x, \u or \U escapes. Printable unless Cc, Cf, Cs, Co, Cn, Zl, Zp
 * or Zs (U+0020 excepted); PRINTABLE lists where Python's Unicode version
 * says otherwise than utf8proc's. */
bool jcase_printable(uint32_t cp)
{
    const jcase_run *r = run_of(PRINTABLE, sizeof PRINTABLE / sizeof PRINTABLE[0], cp);
    if (r)
        return r->k;
    if (cp == ' ')
        return true;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_ZS:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO: return false;
    default: return true;
    }
}

/* Python's str.isspace() characters: jinja2's title filter splits at
 * them (its \s). */
static bool py_space(uint32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 ||
           cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* A character of jinja2's \w (Python's str.isalnum() or '_'). */
static bool word_char(uint32_t cp)
{
    if (cp & RAW_BYTE)
        return false;
    if (cp == '_')
        return true;
    const utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) ||
           (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
}

typedef enum { MAP_UPPER, MAP_LOWER, MAP_TITLE } map_kind;

/* One code point's full mapping into to[0..2]; returns their count. */
static int map_one(uint32_t cp, map_kind kind, uint32_t to[3])
{
    if (cp & RAW_BYTE) {
        to[0] = cp;
        return 1;
    }
    const jcase_full *t = kind == MAP_UPPER ? CASE_UPPER : kind == MAP_LOWER ? CASE_LOWER : CASE_TITLE;
    size_t lo = 0, hi = kind == MAP_UPPER   ? sizeof CASE_UPPER / sizeof CASE_UPPER[0]
                        : kind == MAP_LOWER ? sizeof CASE_LOWER / sizeof CASE_LOWER[0]
                                            : sizeof CASE_TITLE / sizeof CASE_TITLE[0];
    while (lo < hi) {
        const size_t mid = (lo + hi) / 2;
        if (cp < t[mid].cp)
            hi = mid;
        else if (cp > t[mid].cp)
            lo = mid + 1;
        else {
            memcpy(to, t[mid].to, sizeof t[mid].to);
            return t[mid].n;
        }
    }
    const utf8proc_int32_t c = (utf8proc_int32_t)cp;
    to[0] = (uint32_t)(kind == MAP_UPPER   ? utf8proc_toupper(c)
                       : kind == MAP_LOWER ? utf8proc_tolower(c)
                                           : utf8proc_totitle(c));
    return 1;
}

/* cps[i] lowered with Python's Final_Sigma rule over cps[b..e): U+03A3
 * after a cased character and not before one (case-ignorable ones
 * skipped both ways) is the final form U+03C2. */
static int lower_at(const uint32_t *cps, size_t b, size_t e, size_t i, uint32_t to[3])
{
    if (cps[i] != 0x3A3)
        return map_one(cps[i], MAP_LOWER, to);
    size_t j = i;
    while (j > b && case_ignorable(cps[j - 1]))
        j--;
    bool final = j > b && case_class(cps[j - 1]) != 0;
    if (final) {
        j = i + 1;
        while (j < e && case_ignorable(cps[j]))
            j++;
        final = j == e || case_class(cps[j]) == 0;
    }
    to[0] = final ? 0x3C2 : 0x3C3;
    return 1;
}

/* The code point at s[*at] (or RAW_BYTE | the byte, where no UTF-8
 * starts), *at moved past it. */
static uint32_t next_cp(jv s, size_t *at)
{
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s.u.s.p;
    utf8proc_int32_t cp;
    const utf8proc_ssize_t len =
        utf8proc_iterate(p + *at, (utf8proc_ssize_t)(s.u.s.n - *at), &cp);
    if (len <= 0)
        return RAW_BYTE | p[(*at)++];
    *at += (size_t)len;
    return (uint32_t)cp;
}

/* s's code points into cps (arena), their count in *n. */
static uint32_t *decode(jrender *r, jv s, size_t *n)
{
    uint32_t *cps = jarena_alloc(&r->ar, (s.u.s.n + 1) * sizeof *cps);
    if (!cps)
        return NULL;
    size_t at = 0, k = 0;
    while (at < s.u.s.n)
        cps[k++] = next_cp(s, &at);
    *n = k;
    return cps;
}

typedef struct {
    char *p;
    size_t n;
} out_buf;

static void put(out_buf *o, const uint32_t *to, int n)
{
    for (int i = 0; i < n; i++) {
        if (to[i] & RAW_BYTE)
            o->p[o->n++] = (char)(to[i] & 0xFF);
        else
            o->n += (size_t)utf8proc_encode_char((utf8proc_int32_t)to[i],
                                                 (utf8proc_uint8_t *)o->p + o->n);
    }
}

/* jinja2's title filter splits at runs of these (its [-\s\(\{\[\<]+). */
static bool title_sep(uint32_t cp)
{
    return cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || py_space(cp);
}

bool jcase_convert(jrender *r, jv s, jcase_mode mode, jv *out)
{
    size_t n = 0;
    uint32_t *cps = decode(r, s, &n);
    /* at most 3 code points of 4 bytes for each one in */
    out_buf o = {cps ? jarena_alloc(&r->ar, 12 * n + 1) : NULL, 0};
    if (!o.p)
        return jerr_oom(r, NULL);
    uint32_t to[3];
    int k;
    if (mode == JCASE_TITLE_FILTER) {
        /* jinja2's do_title: each piece (a run of separators or of other
         * characters) as piece[0].upper() + piece[1:].lower() */
        for (size_t b = 0; b < n;) {
            size_t e = b + 1;
            while (e < n && title_sep(cps[e]) == title_sep(cps[b]))
                e++;
            k = map_one(cps[b], MAP_UPPER, to);
            put(&o, to, k);
            for (size_t i = b + 1; i < e; i++) {
                k = lower_at(cps, b + 1, e, i, to);
                put(&o, to, k);
            }
            b = e;
        }
    }
    bool prev_cased = false;
    for (size_t i = 0; mode != JCASE_TITLE_FILTER && i < n; i++) {
        if (mode == JCASE_UPPER)
            k = map_one(cps[i], MAP_UPPER, to);
        else if (mode == JCASE_LOWER)
            k = lower_at(cps, 0, n, i, to);
        else if (mode == JCASE_CAPITALIZE) /* str.capitalize (3.8+): title case, then lower */
            k = i == 0 ? map_one(cps[i], MAP_TITLE, to) : lower_at(cps, 0, n, i, to);
        else { /* str.title: title case after an uncased character, else lower */
            k = prev_cased ? lower_at(cps, 0, n, i, to) : map_one(cps[i], MAP_TITLE, to);
            prev_cased = case_class(cps[i]) != 0;
        }
        put(&o, to, k);
    }
    o.p[o.n] = '\0';
    *out = jv_str(o.p, o.n);
    return true;
}

int64_t jcase_wordcount(jrender *r, jv s)
{
    size_t n = 0;
    uint32_t *cps = decode(r, s, &n);
    int64_t words = 0;
    for (size_t i = 0; cps && i < n; i++)
        if (word_char(cps[i]) && (i == 0 || !word_char(cps[i - 1])))
            words++;
    return words;
}

bool jcase_is(jv s, bool upper)
{
    size_t at = 0;
    bool cased = false;
    while (at < s.u.s.n) {
        const int k = case_class(next_cp(s, &at)); /* a raw byte: class 0 */
        if (k == 3 || (k != 0 && (k == 2) != upper))
            return false; /* Python: a titlecase or other-case character */
        cased |= k != 0;
    }
    return cased;
}

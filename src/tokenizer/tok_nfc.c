/* Unicode NFC for normalizers that ask for it (Qwen2). Text that has no code
 * point at or above U+0300 is already NFC, and that is most text, so the
 * full decompose / reorder / compose pass runs only when needed. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode_tables.h"

enum { SBASE = 0xAC00, LBASE = 0x1100, VBASE = 0x1161, TBASE = 0x11A7,
       LCOUNT = 19, VCOUNT = 21, TCOUNT = 28, NCOUNT = VCOUNT * TCOUNT, SCOUNT = LCOUNT * NCOUNT };

static int ccc_of(uint32_t cp)
{
    if (cp < 0x300)
        return 0;
    size_t lo = 0, hi = vb_ccc_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (vb_ccc_table[mid][0] < cp) lo = mid + 1;
        else hi = mid;
    }
    return (lo < vb_ccc_count && vb_ccc_table[lo][0] == cp) ? (int)vb_ccc_table[lo][1] : 0;
}

static const uint32_t *decomp_of(uint32_t cp)
{
    size_t lo = 0, hi = vb_decomp_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (vb_decomp_table[mid][0] < cp) lo = mid + 1;
        else hi = mid;
    }
    return (lo < vb_decomp_count && vb_decomp_table[lo][0] == cp) ? vb_decomp_table[lo] : NULL;
}

static uint32_t compose(uint32_t a, uint32_t b)
{
    if (a >= LBASE && a < LBASE + LCOUNT && b >= VBASE && b < VBASE + VCOUNT)
        return SBASE + ((a - LBASE) * VCOUNT + (b - VBASE)) * TCOUNT;
    if (a >= SBASE && a < SBASE + SCOUNT && (a - SBASE) % TCOUNT == 0 && b > TBASE && b < TBASE + TCOUNT)
        return a + (b - TBASE);
    size_t lo = 0, hi = vb_comp_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const uint32_t *e = vb_comp_table[mid];
        if (e[0] < a || (e[0] == a && e[1] < b)) lo = mid + 1;
        else hi = mid;
    }
    if (lo < vb_comp_count && vb_comp_table[lo][0] == a && vb_comp_table[lo][1] == b)
        return vb_comp_table[lo][2];
    return 0;
}

/* Full canonical decomposition of cp appended to buf. */
static void decompose(uint32_t cp, uint32_t *buf, size_t *n)
{
    if (cp >= SBASE && cp < SBASE + SCOUNT) {
        uint32_t s = cp - SBASE;
        buf[(*n)++] = LBASE + s / NCOUNT;
        buf[(*n)++] = VBASE + (s % NCOUNT) / TCOUNT;
        if (s % TCOUNT)
            buf[(*n)++] = TBASE + s % TCOUNT;
        return;
    }
    const uint32_t *d = cp >= 0xC0 ? decomp_of(cp) : NULL;
    if (!d) {
        buf[(*n)++] = cp;
        return;
    }
    decompose(d[1], buf, n);
    if (d[2])
        decompose(d[2], buf, n);
}

static uint32_t next_cp(const unsigned char *s, size_t *i)
{
    unsigned char c = s[*i];
    int n = tok_utf8_seq_len(c);
    uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1Fu) : n == 3 ? (c & 0x0Fu) : (c & 0x07u);
    for (int k = 1; k < n; k++)
        cp = cp << 6 | (s[*i + (size_t)k] & 0x3Fu);
    *i += (size_t)(n ? n : 1);
    return cp;
}

static size_t put_cp(uint32_t cp, char *o)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F)); return 4;
}

char *tok_nfc(const char *str, size_t len, size_t *out_len)
{
    const unsigned char *s = (const unsigned char *)str;
    bool simple = true;
    for (size_t i = 0; i < len && simple; i++)
        simple = s[i] < 0xCC;
    char *out = malloc(len * 3 + 16);
    if (!out)
        return NULL;
    if (simple) {
        memcpy(out, str, len);
        out[len] = 0;
        *out_len = len;
        return out;
    }
    /* A decomposition is at most 4 code points per code point (Unicode's
     * longest canonical decomposition is 4; Hangul 3). */
    uint32_t *cps = malloc((len * 4 + 4) * sizeof *cps);
    if (!cps) {
        free(out);
        return NULL;
    }
    size_t n = 0, i = 0;
    while (i < len)
        decompose(next_cp(s, &i), cps, &n);
    /* Canonical ordering: stable insertion sort of each run of non-starters. */
    for (size_t k = 1; k < n; k++) {
        int ck = ccc_of(cps[k]);
        if (ck == 0)
            continue;
        size_t j = k;
        uint32_t v = cps[k];
        while (j > 0 && ccc_of(cps[j - 1]) > ck) {
            cps[j] = cps[j - 1];
            j--;
        }
        cps[j] = v;
    }
    /* Canonical composition (UAX #15): each mark composes with the last
     * starter unless blocked by a mark of equal or higher class. */
    size_t w = 0;
    long starter = -1;
    int last_ccc = 0;
    for (size_t k = 0; k < n; k++) {
        uint32_t cp = cps[k];
        int c = ccc_of(cp);
        if (starter >= 0) {
            bool adjacent = w == (size_t)starter + 1;
            if (adjacent || (last_ccc != 0 && last_ccc < c)) {
                uint32_t comp = compose(cps[starter], cp);
                if (comp) {
                    cps[starter] = comp;
                    continue;
                }
            }
        }
        if (c == 0)
            starter = (long)w;
        last_ccc = c;
        cps[w++] = cp;
    }
    size_t o = 0;
    for (size_t k = 0; k < w; k++)
        o += put_cp(cps[k], out + o);
    free(cps);
    out[o] = 0;
    *out_len = o;
    return out;
}

/* Rows as bytes: the journal's row records and the message a group leader
 * sends to world rank 0 when a row finishes; see row_codec.h. */
#include "io/row_codec.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ---- byte buffer --------------------------------------------------------- */

void vb_bytes_put(vb_bytes *b, const void *src, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_u32(vb_bytes *b, uint32_t v) { vb_bytes_put(b, &v, 4); }

/* n bytes of s (a completion may hold NUL characters), or absent. */
static void put_bytes(vb_bytes *b, const char *s, size_t len)
{
    if (!s) {
        put_u32(b, UINT32_MAX);
        return;
    }
    uint32_t n = (uint32_t)len;
    put_u32(b, n);
    vb_bytes_put(b, s, n);
}

static void put_str(vb_bytes *b, const char *s)
{
    put_bytes(b, s, s ? strlen(s) : 0);
}

void vb_row_encode(vb_bytes *b, const vb_output_row *w, int32_t top_n)
{
    uint8_t tag = 'R', fin = (uint8_t)w->finish_reason;
    uint32_t nt = w->n_output_ids > 0 ? (uint32_t)w->n_output_ids : 0;
    vb_bytes_put(b, &tag, 1);
    vb_bytes_put(b, &w->index, 8);
    vb_bytes_put(b, &w->sample, 4);
    vb_bytes_put(b, &fin, 1);
    vb_bytes_put(b, &w->prompt_tokens, 4);
    vb_bytes_put(b, &w->completion_tokens, 4);
    vb_bytes_put(b, &w->id_int, 8);
    put_bytes(b, w->completion, vb_output_row_completion_len(w));
    put_str(b, w->error);
    put_str(b, w->id);
    put_u32(b, nt);
    if (nt)
        vb_bytes_put(b, w->output_ids, nt * 4);
    uint8_t has_lp = top_n >= 0 && w->logprobs;
    vb_bytes_put(b, &has_lp, 1);
    if (has_lp)
        vb_bytes_put(b, w->logprobs, nt * 4);
    uint32_t ntop = top_n > 0 && w->top_ids && w->top_logprobs ? nt * (uint32_t)top_n : 0;
    put_u32(b, ntop);
    if (ntop) {
        vb_bytes_put(b, w->top_ids, (size_t)ntop * 4);
        vb_bytes_put(b, w->top_logprobs, (size_t)ntop * 4);
    }
}

/* ---- decoding ------------------------------------------------------------ */

typedef struct reader {
    const unsigned char *p;
    size_t len, at;
    bool bad;
} reader;

static const void *take(reader *r, size_t n)
{
    if (r->bad || n > r->len - r->at) {
        r->bad = true;
        return NULL;
    }
    const void *p = r->p + r->at;
    r->at += n;
    return p;
}

static void get(reader *r, void *dst, size_t n)
{
    const void *p = take(r, n);
    if (p)
        memcpy(dst, p, n);
    else
        memset(dst, 0, n);
}

/* malloc'd copy (NUL-terminated, *len bytes before it) or NULL (absent);
 * r->bad on a short or odd record. */
static char *get_bytes(reader *r, size_t *len)
{
    uint32_t n;
    *len = 0;
    get(r, &n, 4);
    if (r->bad || n == UINT32_MAX)
        return NULL;
    const char *p = take(r, n);
    if (!p)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) {
        r->bad = true;
        return NULL;
    }
    memcpy(s, p, n);
    s[n] = '\0';
    *len = n;
    return s;
}

static char *get_str(reader *r)
{
    size_t len;
    return get_bytes(r, &len);
}

static int decode_fields(reader *r, int32_t top_n, vb_output_row *w)
{
    memset(w, 0, sizeof *w);
    uint8_t fin = 0, has_lp = 0;
    get(r, &w->index, 8);
    get(r, &w->sample, 4);
    get(r, &fin, 1);
    w->finish_reason = (vb_finish_reason)fin;
    get(r, &w->prompt_tokens, 4);
    get(r, &w->completion_tokens, 4);
    get(r, &w->id_int, 8);
    w->completion = get_bytes(r, &w->completion_len);
    w->error = get_str(r);
    w->id = get_str(r);
    uint32_t nt = 0, ntop = 0;
    get(r, &nt, 4);
    const void *ids = take(r, (size_t)nt * 4);
    get(r, &has_lp, 1);
    const void *lp = has_lp ? take(r, (size_t)nt * 4) : NULL;
    get(r, &ntop, 4);
    const void *tid = ntop ? take(r, (size_t)ntop * 4) : NULL;
    const void *tlp = ntop ? take(r, (size_t)ntop * 4) : NULL;
    /* a count of alternatives other than top_n a token (a damaged or
     * hand-made record with a valid checksum) would have vb_results_put
     * copy past the buffer; a finish reason outside the output's enum
     * went into the output as is, which unpack and a later --resume then
     * refuse as inconsistent */
    if (r->bad || r->at != r->len || (ntop && (top_n <= 0 || ntop != (uint64_t)nt * top_n)) ||
        fin > VB_FINISH_ERROR)
        return -1;
    /* Point into the record; vb_results_put copies. Alignment: copy out. */
    w->n_output_ids = (int32_t)nt;
    w->output_ids = malloc((size_t)nt * 4 + 4);
    w->logprobs = lp ? malloc((size_t)nt * 4 + 4) : NULL;
    w->top_ids = tid ? malloc((size_t)ntop * 4) : NULL;
    w->top_logprobs = tlp ? malloc((size_t)ntop * 4) : NULL;
    if (!w->output_ids || (lp && !w->logprobs) || (tid && (!w->top_ids || !w->top_logprobs)))
        return -1;
    memcpy(w->output_ids, ids, (size_t)nt * 4);
    if (lp)
        memcpy(w->logprobs, lp, (size_t)nt * 4);
    if (tid) {
        memcpy(w->top_ids, tid, (size_t)ntop * 4);
        memcpy(w->top_logprobs, tlp, (size_t)ntop * 4);
    }
    return 0;
}

int vb_row_decode(const void *buf, size_t len, int32_t top_n, vb_output_row *w)
{
    const unsigned char *p = buf;
    if (len < 1 || p[0] != 'R') {
        memset(w, 0, sizeof *w);
        return -1;
    }
    reader rd = {p + 1, len - 1, 0, false};
    if (decode_fields(&rd, top_n, w) < 0) {
        vb_output_row_free(w);
        return -1;
    }
    return 0;
}

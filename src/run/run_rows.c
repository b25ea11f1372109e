/* Finished rows of one dp group and their gather to rank 0 (see run_rows.h). */
#include "run/run_rows.h"

#include <stdlib.h>
#include <string.h>

void run_rows_init(run_rows *l, int32_t top_n)
{
    memset(l, 0, sizeof *l);
    l->top_n = top_n;
}

void run_rows_free(run_rows *l)
{
    for (int64_t i = 0; i < l->n; i++)
        vb_output_row_free(&l->rows[i]);
    free(l->rows);
    memset(l, 0, sizeof *l);
}

int run_rows_take(run_rows *l, vb_output_row *row)
{
    if (l->n == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 64;
        vb_output_row *p = realloc(l->rows, (size_t)cap * sizeof *p);
        if (!p) {
            vb_output_row_free(row);
            memset(row, 0, sizeof *row);
            return -1;
        }
        l->rows = p;
        l->cap = cap;
    }
    l->rows[l->n++] = *row;
    memset(row, 0, sizeof *row);
    return 0;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int run_rows_add_error(run_rows *l, int64_t index, int32_t sample, const char *id,
                       int64_t id_int, int32_t prompt_tokens, const char *msg)
{
    vb_output_row row = {0};
    row.index = index;
    row.sample = sample;
    row.finish_reason = VB_FINISH_ERROR;
    row.prompt_tokens = prompt_tokens;
    row.completion = strdup("");
    row.error = strdup(msg);
    row.id = dup_or_null(id);
    row.id_int = id_int;
    if (!row.completion || !row.error || (id && !row.id)) {
        vb_output_row_free(&row);
        return -1;
    }
    return run_rows_take(l, &row);
}

/* --- packing: fixed header, then ids, logprobs, top ids, top logprobs,
 * completion, error, id (strings without their NUL) ------------------- */

typedef struct packed_head {
    int64_t index, id_int;
    int32_t sample, n_ids, prompt_tokens, completion_tokens, finish_reason;
    int32_t top_n;          /* -1: no logprobs arrays */
    int32_t has_id;
    uint32_t completion_len, error_len, id_len;
} packed_head;

static size_t slen(const char *s) { return s ? strlen(s) : 0; }

static size_t row_bytes(const vb_output_row *w, int32_t top_n)
{
    size_t b = sizeof(packed_head) + (size_t)w->n_output_ids * sizeof(int32_t);
    if (top_n >= 0)
        b += (size_t)w->n_output_ids * sizeof(float);
    if (top_n > 0)
        b += (size_t)w->n_output_ids * top_n * (sizeof(int32_t) + sizeof(float));
    return b + vb_output_row_completion_len(w) + slen(w->error) + slen(w->id);
}

static char *put(char *p, const void *src, size_t n)
{
    if (n)
        memcpy(p, src, n);
    return p + n;
}

int run_rows_pack(run_rows *l, size_t head_bytes, char **out, size_t *n_bytes)
{
    size_t total = head_bytes;
    for (int64_t i = 0; i < l->n; i++)
        total += row_bytes(&l->rows[i], l->top_n);
    char *buf = malloc(total ? total : 1), *p = buf + head_bytes;
    if (!buf)
        return -1;
    for (int64_t i = 0; i < l->n; i++) {
        vb_output_row *w = &l->rows[i];
        packed_head h = {
            .index = w->index, .id_int = w->id_int, .sample = w->sample,
            .n_ids = w->n_output_ids, .prompt_tokens = w->prompt_tokens,
            .completion_tokens = w->completion_tokens, .finish_reason = (int32_t)w->finish_reason,
            .top_n = l->top_n, .has_id = w->id != NULL,
            .completion_len = (uint32_t)vb_output_row_completion_len(w), .error_len = (uint32_t)slen(w->error),
            .id_len = (uint32_t)slen(w->id),
        };
        size_t n = (size_t)w->n_output_ids;
        p = put(p, &h, sizeof h);
        p = put(p, w->output_ids, n * sizeof(int32_t));
        if (l->top_n >= 0) {
            /* error rows may carry no arrays: write zeros */
            if (w->logprobs)
                p = put(p, w->logprobs, n * sizeof(float));
            else {
                memset(p, 0, n * sizeof(float));
                p += n * sizeof(float);
            }
        }
        if (l->top_n > 0) {
            size_t m = n * (size_t)l->top_n;
            if (w->top_ids && w->top_logprobs) {
                p = put(p, w->top_ids, m * sizeof(int32_t));
                p = put(p, w->top_logprobs, m * sizeof(float));
            } else {
                memset(p, 0, m * (sizeof(int32_t) + sizeof(float)));
                p += m * (sizeof(int32_t) + sizeof(float));
            }
        }
        p = put(p, w->completion, h.completion_len);
        p = put(p, w->error, h.error_len);
        p = put(p, w->id, h.id_len);
    }
    *out = buf;
    *n_bytes = total;
    for (int64_t i = 0; i < l->n; i++)
        vb_output_row_free(&l->rows[i]);
    l->n = 0;
    return 0;
}

static char *take_string(const char **p, const char *end, uint32_t n)
{
    if ((size_t)(end - *p) < n)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    memcpy(s, *p, n);
    s[n] = '\0';
    *p += n;
    return s;
}

static void *take_array(const char **p, const char *end, size_t bytes)
{
    if ((size_t)(end - *p) < bytes)
        return NULL;
    void *a = malloc(bytes ? bytes : 1);
    if (!a)
        return NULL;
    memcpy(a, *p, bytes);
    *p += bytes;
    return a;
}

int run_rows_unpack(const char *buf, size_t n, run_row_fn fn, void *ctx, vb_err *err)
{
    const char *p = buf, *end = buf + n;
    while (p < end) {
        packed_head h;
        if ((size_t)(end - p) < sizeof h)
            return vb_err_set(err, "gather: torn row record");
        memcpy(&h, p, sizeof h);
        p += sizeof h;
        if (h.n_ids < 0 || h.finish_reason < 0 || h.finish_reason > VB_FINISH_ERROR)
            return vb_err_set(err, "gather: bad row record");
        vb_output_row w = {0};
        size_t ni = (size_t)h.n_ids;
        w.index = h.index;
        w.id_int = h.id_int;
        w.sample = h.sample;
        w.n_output_ids = h.n_ids;
        w.prompt_tokens = h.prompt_tokens;
        w.completion_tokens = h.completion_tokens;
        w.finish_reason = (vb_finish_reason)h.finish_reason;
        int bad = !(w.output_ids = take_array(&p, end, ni * sizeof(int32_t)));
        if (!bad && h.top_n >= 0)
            bad = !(w.logprobs = take_array(&p, end, ni * sizeof(float)));
        if (!bad && h.top_n > 0) {
            size_t m = ni * (size_t)h.top_n;
            bad = !(w.top_ids = take_array(&p, end, m * sizeof(int32_t))) ||
                  !(w.top_logprobs = take_array(&p, end, m * sizeof(float)));
        }
        if (!bad)
            bad = !(w.completion = take_string(&p, end, h.completion_len)) ||
                  !(w.error = take_string(&p, end, h.error_len));
        w.completion_len = h.completion_len; /* NUL characters too */
        if (!bad && h.has_id)
            bad = !(w.id = take_string(&p, end, h.id_len));
        int rc = bad ? vb_err_set(err, "gather: bad row record or out of memory")
                     : fn(ctx, &w, err);
        vb_output_row_free(&w);
        if (rc)
            return -1;
    }
    return 0;
}

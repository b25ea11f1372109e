/* Finished rows keyed by (index, sample); see results.h. */
#include "io/results.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int vb_results_init(vb_results *r, int64_t n_rows, int32_t n_samples, int32_t top_n,
                    vb_id_kind id_kind, vb_err *err)
{
    memset(r, 0, sizeof *r);
    if (n_rows < 0 || n_samples < 1)
        return vb_err_set(err, "results: bad shape (%" PRId64 " rows, %d samples)", n_rows,
                          (int)n_samples);
    r->n_rows = n_rows;
    r->n_samples = n_samples;
    r->top_n = top_n;
    r->id_kind = id_kind;
    size_t slots = (size_t)n_rows * (size_t)n_samples;
    r->loc = calloc(slots ? slots : 1, sizeof *r->loc); /* every row VB_ROW_NONE */
    if (!r->loc)
        return vb_err_set(err, "results: out of memory for %zu rows", slots);
    return 0;
}

static void *dup_mem(const void *p, size_t bytes, bool *oom)
{
    if (!p)
        return NULL;
    void *c = malloc(bytes ? bytes : 1);
    if (!c) {
        *oom = true;
        return NULL;
    }
    memcpy(c, p, bytes);
    return c;
}

static char *dup_str(const char *s, bool *oom)
{
    return s ? dup_mem(s, strlen(s) + 1, oom) : NULL;
}

static uint64_t heap_object_bytes(uint64_t data)
{
    return data ? 16 + (data + 7) / 8 * 8 : 0;
}

static uint64_t vlen_bytes(uint64_t data)
{
    return 16 + heap_object_bytes(data);
}

uint32_t vb_output_row_bytes(const vb_results *r, const vb_output_row *w)
{
    uint64_t nt = w->n_output_ids > 0 ? (uint64_t)w->n_output_ids : 0;
    uint64_t top = r->top_n > 0 ? (uint64_t)r->top_n : 0;
    uint64_t bytes = vlen_bytes(w->completion ? strlen(w->completion) : 0) +
                     vlen_bytes(w->error ? strlen(w->error) : 0) + vlen_bytes(4 * nt) + 4 + 4 +
                     1 + 8; /* ids, tokens x2, finish, index */
    if (r->id_kind == VB_ID_STRING)
        bytes += vlen_bytes(w->id ? strlen(w->id) : 0);
    else if (r->id_kind == VB_ID_INT || r->id_kind == VB_ID_UINT)
        bytes += 8;
    if (r->n_samples > 1)
        bytes += 4;
    if (r->top_n >= 0)
        bytes += vlen_bytes(4 * nt);
    if (top)
        bytes += 2 * vlen_bytes(4 * nt * top);
    return bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)bytes;
}

static int check_key(const vb_results *r, const vb_output_row *row, vb_err *err)
{
    if (row->index < 0 || row->index >= r->n_rows || row->sample < 0 ||
        row->sample >= r->n_samples)
        return vb_err_set(err, "row %" PRId64 " sample %d is outside the run (%" PRId64
                          " rows, %d samples)", row->index, (int)row->sample, r->n_rows,
                          (int)r->n_samples);
    return 0;
}

/* Slot k's old row out (a held copy freed), the new one's facts in. */
static void place(vb_results *r, size_t k, const vb_output_row *row, int64_t at)
{
    vb_row_loc *l = &r->loc[k];
    if (l->at == VB_ROW_NONE) {
        r->n_done++;
    } else {
        r->n_nul -= (l->flags & VB_ROW_NUL) != 0;
        r->out_bytes -= l->out_bytes;
    }
    if (l->at == VB_ROW_HELD && at != VB_ROW_HELD) {
        vb_output_row_free(r->slot[k]);
        free(r->slot[k]);
        r->slot[k] = NULL;
    }
    size_t clen = vb_output_row_completion_len(row);
    bool nul = row->completion && memchr(row->completion, '\0', clen) != NULL;
    *l = (vb_row_loc){.at = at, .out_bytes = vb_output_row_bytes(r, row),
                      .flags = nul ? VB_ROW_NUL : 0};
    r->n_nul += nul;
    r->out_bytes += l->out_bytes;
}

int vb_results_put(vb_results *r, const vb_output_row *row, vb_err *err)
{
    if (check_key(r, row, err) < 0)
        return -1;
    if (!r->slot) {
        size_t slots = (size_t)r->n_rows * (size_t)r->n_samples;
        r->slot = calloc(slots ? slots : 1, sizeof *r->slot);
        if (!r->slot)
            return vb_err_set(err, "results: out of memory for %zu rows", slots);
    }
    vb_output_row *c = malloc(sizeof *c);
    if (!c)
        return vb_err_set(err, "row %" PRId64 ": out of memory", row->index);
    bool oom = false;
    size_t n = row->n_output_ids > 0 ? (size_t)row->n_output_ids : 0;
    size_t nt = r->top_n > 0 ? n * (size_t)r->top_n : 0;
    *c = *row;
    size_t clen = vb_output_row_completion_len(row);
    c->completion = row->completion ? dup_mem(row->completion, clen + 1, &oom) : NULL;
    c->completion_len = clen;
    c->error = dup_str(row->error, &oom);
    c->id = dup_str(row->id, &oom);
    c->output_ids = dup_mem(row->output_ids, n * sizeof(int32_t), &oom);
    c->logprobs = r->top_n >= 0 ? dup_mem(row->logprobs, n * sizeof(float), &oom) : NULL;
    c->top_ids = nt ? dup_mem(row->top_ids, nt * sizeof(int32_t), &oom) : NULL;
    c->top_logprobs = nt ? dup_mem(row->top_logprobs, nt * sizeof(float), &oom) : NULL;
    if (oom) {
        vb_output_row_free(c);
        free(c);
        return vb_err_set(err, "row %" PRId64 ": out of memory", row->index);
    }
    size_t k = (size_t)row->index * (size_t)r->n_samples + (size_t)row->sample;
    place(r, k, row, VB_ROW_HELD);
    if (r->slot[k]) {
        vb_output_row_free(r->slot[k]);
        free(r->slot[k]);
    }
    r->slot[k] = c;
    return 0;
}

int vb_results_put_at(vb_results *r, const vb_output_row *row, int64_t at, vb_err *err)
{
    if (check_key(r, row, err) < 0)
        return -1;
    if (at <= 0)
        return vb_err_set(err, "row %" PRId64 ": no place in the store", row->index);
    place(r, (size_t)row->index * (size_t)r->n_samples + (size_t)row->sample, row, at);
    return 0;
}

bool vb_results_has(const vb_results *r, int64_t index, int32_t sample)
{
    if (index < 0 || index >= r->n_rows || sample < 0 || sample >= r->n_samples)
        return false;
    return r->loc[index * r->n_samples + sample].at != VB_ROW_NONE;
}

bool vb_results_row_done(const vb_results *r, int64_t index)
{
    for (int32_t s = 0; s < r->n_samples; s++)
        if (!vb_results_has(r, index, s))
            return false;
    return true;
}

int vb_results_get(const vb_results *r, size_t k, vb_output_row *buf,
                   const vb_output_row **row, bool *owned, vb_err *err)
{
    *row = NULL;
    *owned = false;
    const int64_t at = r->loc[k].at;
    const int64_t index = (int64_t)(k / (size_t)r->n_samples);
    const int32_t sample = (int32_t)(k % (size_t)r->n_samples);
    if (at == VB_ROW_HELD) {
        *row = r->slot[k];
        return 0;
    }
    if (at == VB_ROW_NONE)
        return vb_err_set(err, "row %" PRId64 " sample %d is not finished", index, (int)sample);
    if (!r->store.fetch)
        return vb_err_set(err, "row %" PRId64 ": no store to read it from", index);
    if (r->store.fetch(r->store.ctx, at, r->top_n, buf, err) < 0)
        return -1;
    if (buf->index != index || buf->sample != sample) {
        vb_err_set(err, "the journal's record at byte %" PRId64 " holds row %" PRId64
                   " sample %d, not row %" PRId64 " sample %d (the journal was changed while "
                   "the run wrote it)", at, buf->index, (int)buf->sample, index, (int)sample);
        vb_output_row_free(buf);
        return -1;
    }
    *row = buf;
    *owned = true;
    return 0;
}

size_t vb_output_row_completion_len(const vb_output_row *row)
{
    return row->completion_len ? row->completion_len : row->completion ? strlen(row->completion) : 0;
}

void vb_output_row_free(vb_output_row *row)
{
    free(row->completion);
    free(row->error);
    free(row->id);
    free(row->output_ids);
    free(row->logprobs);
    free(row->top_ids);
    free(row->top_logprobs);
    memset(row, 0, sizeof *row);
}

void vb_results_free(vb_results *r)
{
    if (r->slot) {
        size_t slots = (size_t)r->n_rows * (size_t)r->n_samples;
        for (size_t i = 0; i < slots; i++)
            if (r->slot[i]) {
                vb_output_row_free(r->slot[i]);
                free(r->slot[i]);
            }
        free(r->slot);
    }
    free(r->loc);
    memset(r, 0, sizeof *r);
}

const char *vb_finish_reason_name(vb_finish_reason f)
{
    switch (f) {
    case VB_FINISH_STOP:
        return "stop";
    case VB_FINISH_LENGTH:
        return "length";
    case VB_FINISH_ERROR:
        return "error";
    }
    return "?";
}

int vb_finish_reason_parse(const char *s)
{
    if (strcmp(s, "stop") == 0)
        return VB_FINISH_STOP;
    if (strcmp(s, "length") == 0)
        return VB_FINISH_LENGTH;
    if (strcmp(s, "error") == 0)
        return VB_FINISH_ERROR;
    return -1;
}

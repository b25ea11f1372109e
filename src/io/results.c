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
    r->slot = calloc(slots ? slots : 1, sizeof *r->slot);
    if (!r->slot)
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

int vb_results_put(vb_results *r, const vb_output_row *row, vb_err *err)
{
    if (row->index < 0 || row->index >= r->n_rows || row->sample < 0 ||
        row->sample >= r->n_samples)
        return vb_err_set(err, "row %" PRId64 " sample %d is outside the run (%" PRId64
                          " rows, %d samples)", row->index, (int)row->sample, r->n_rows,
                          (int)r->n_samples);
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
    vb_output_row **s = &r->slot[row->index * r->n_samples + row->sample];
    if (*s) {
        vb_output_row_free(*s);
        free(*s);
    } else {
        r->n_done++;
    }
    *s = c;
    return 0;
}

bool vb_results_has(const vb_results *r, int64_t index, int32_t sample)
{
    if (index < 0 || index >= r->n_rows || sample < 0 || sample >= r->n_samples)
        return false;
    return r->slot[index * r->n_samples + sample] != NULL;
}

bool vb_results_row_done(const vb_results *r, int64_t index)
{
    for (int32_t s = 0; s < r->n_samples; s++)
        if (!vb_results_has(r, index, s))
            return false;
    return true;
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

/* One step's sampling across a TP group (see run_sample.h). */
#include "run/run_sample.h"

#include <stdlib.h>
#include <string.h>

#include "engine/sampler_mpi.h"

int run_sampler_init(run_sampler *s, MPI_Comm tp_comm, int tp, int vocab_start,
                     int vocab_local, vb_err *err)
{
    memset(s, 0, sizeof *s);
    s->tp_comm = tp_comm;
    s->tp = tp;
    s->vocab_start = vocab_start;
    s->vocab_local = vocab_local;
    if (sampler_workspace_init(&s->ws, vocab_local) != 0)
        return vb_err_set(err, "sampler: out of memory for a vocabulary slice of %d", vocab_local);
    return 0;
}

void run_sampler_free(run_sampler *s)
{
    sampler_workspace_free(&s->ws);
    free(s->local);
    free(s->gathered);
    free(s->merged);
    free(s->params);
    memset(s, 0, sizeof *s);
}

static int reserve(run_sampler *s, int n, size_t bytes, vb_err *err)
{
    if (n > s->cap_rows) {
        const sampling_params **p = realloc(s->params, (size_t)n * sizeof *p);
        if (!p)
            return vb_err_set(err, "sampler: out of memory");
        s->params = p;
        s->cap_rows = n;
    }
    if (bytes > s->cap_local) {
        char *a = realloc(s->local, bytes);
        if (a) s->local = a;
        char *m = a ? realloc(s->merged, bytes) : NULL;
        if (m) s->merged = m;
        char *g = m ? realloc(s->gathered, bytes * (size_t)s->tp) : NULL;
        if (g) s->gathered = g;
        if (!a || !m || !g)
            return vb_err_set(err, "sampler: out of memory for %zu bytes of candidates", bytes);
        s->cap_local = bytes;
    }
    return 0;
}

int run_sampler_step(run_sampler *s, const sampler_row *rows, const float *const *logits, int n,
                     sample_result *out, vb_err *err)
{
    if (n <= 0)
        return 0;
    /* Every rank of the group has the same rows, so the same n_cand and the
     * same failure verdict for the sizes; an out-of-memory on one rank only
     * would leave the others in the Allgather, which the watchdog handles. */
    if (reserve(s, n, 0, err))
        return -1;
    for (int i = 0; i < n; i++)
        s->params[i] = rows[i].params;
    int n_cand = sampler_candidates_needed(s->params, n);
    size_t bytes = (size_t)n * sampler_summary_bytes(n_cand);
    if (reserve(s, n, bytes, err))
        return -1;
    for (int i = 0; i < n; i++)
        sampler_summarize(&s->ws, &rows[i], logits[i], s->vocab_start, s->vocab_local, n_cand,
                          sampler_summary_at(s->local, i, n_cand));
    if (s->tp > 1) {
        if (sampler_exchange_mpi(s->tp_comm, s->local, n, n_cand, s->gathered, err))
            return -1;
        sampler_merge_gathered(s->gathered, s->tp, n, n_cand, s->merged);
    } else {
        sampler_merge_gathered(s->local, 1, n, n_cand, s->merged);
    }
    for (int i = 0; i < n; i++)
        sampler_choose(&rows[i], sampler_summary_at(s->merged, i, n_cand), &out[i]);
    return 0;
}

/* out[T, n_out] = x[T, n_in] * dequant(w)^T + bias for a weight-only
 * quantized projection (w a vb_qweight, model/quant_weights.h): the CPU
 * backend's matmul_quant, the oracle for the GPU's quantized kernels.
 *
 * Threads split the output rows in tiles of ROWS_PER_TASK, as cpu_matmul
 * does; each tile is dequantized to fp32 once into the worker's scratch
 * (w = (q - zero) * scale, the exact fp32 values the reference computes
 * from the checkpoint) and then multiplied against every token row, so
 * dequantization costs n_in per output row per call, not per token. With
 * act order the activations are gathered into the internal column order
 * (x[perm[j]]) once per call. Sums run in four lanes like cpu_matmul's
 * dot products; the order differs from transformers' by rounding only. */
#include <stdio.h>
#include <stdlib.h>

#include "cpu/cpu_internal.h"
#include "model/quant_weights.h"

enum { ROWS_PER_TASK = 16 };

typedef struct qmm_args {
    float *out;
    const float *x;           /* [T, n_in], internal column order */
    const vb_qweight *w;
    const float *bias;
    int T;
    float *scratch;           /* [threads][ROWS_PER_TASK * n_in] */
} qmm_args;

static void qmm_task(void *arg, int task, int worker)
{
    const qmm_args *m = arg;
    const vb_qweight *w = m->w;
    int o0 = task * ROWS_PER_TASK;
    int o1 = o0 + ROWS_PER_TASK < w->n_out ? o0 + ROWS_PER_TASK : w->n_out;
    float *tile = m->scratch + (size_t)worker * ROWS_PER_TASK * (size_t)w->n_in;
    quant_dequant_rows(w, o0, o1, tile);
    for (int t = 0; t < m->T; t++) {
        const float *xt = m->x + (size_t)t * w->n_in;
        for (int o = o0; o < o1; o++)
            m->out[(size_t)t * w->n_out + o] =
                cpu_dot(xt, tile + (size_t)(o - o0) * w->n_in, w->n_in) +
                (m->bias ? m->bias[o] : 0.0f);
    }
}

/* *buf holds at least `need` floats after this (grown as needed; out of
 * memory aborts, as the CPU backend's ops have no error path). */
static void grow_scratch(float **buf, size_t *cap, size_t need, const char *what)
{
    if (need <= *cap)
        return;
    float *p = realloc(*buf, need * sizeof(float));
    if (!p) {
        fprintf(stderr, "cpu backend: out of memory for %s\n", what);
        abort();
    }
    *buf = p;
    *cap = need;
}

void cpu_matmul_quant(vb_backend *b, void *out, const void *x, const void *w_, const void *bias,
                      int T, int n_in, int n_out)
{
    cpu_ctx *c = cpu_ctx_of(b);
    const vb_qweight *w = w_;
    if (w->n_in != n_in || w->n_out != n_out) {
        fprintf(stderr, "cpu backend: quantized weight [%d, %d] used as [%d, %d]\n", w->n_out,
                w->n_in, n_out, n_in);
        abort();
    }
    int threads = cpu_pool_threads(c->pool);
    size_t need = (size_t)threads * ROWS_PER_TASK * (size_t)n_in;
    const float *xs = x;
    if (w->perm)
        need += (size_t)T * (size_t)n_in;
    grow_scratch(&c->q_scratch, &c->q_scratch_cap, need, "a quantized matmul's scratch");
    if (w->perm) {
        float *xp = c->q_scratch + (size_t)threads * ROWS_PER_TASK * (size_t)n_in;
        for (int t = 0; t < T; t++)
            for (int j = 0; j < n_in; j++)
                xp[(size_t)t * n_in + j] = ((const float *)x)[(size_t)t * n_in + w->perm[j]];
        xs = xp;
    }
    qmm_args m = {out, xs, w, bias, T, c->q_scratch};
    cpu_pool_run(c->pool, (n_out + ROWS_PER_TASK - 1) / ROWS_PER_TASK, qmm_task, &m);
}

/* The norm fold's o and down projections (backend.h): matmul_quant into a
 * scratch, then each output added to the residual as rmsnorm adds `add`.
 * The same sums and adds as without the fold, so no CPU result changes;
 * what it gives is the fold's forward path (the norms taken over, declined
 * and made by rmsnorm) run by every quantized CPU test at tp 1. */
bool cpu_matmul_quant_resid(vb_backend *b, void *residual, const void *x, const void *w, int T,
                            int n_in, int n_out)
{
    cpu_ctx *c = cpu_ctx_of(b);
    const size_t n = (size_t)T * (size_t)n_out;
    grow_scratch(&c->out_scratch, &c->out_scratch_cap, n, "a quantized projection's output");
    cpu_matmul_quant(b, c->out_scratch, x, w, NULL, T, n_in, n_out);
    float *r = residual;
    for (size_t i = 0; i < n; i++)
        r[i] += c->out_scratch[i];
    return true;
}

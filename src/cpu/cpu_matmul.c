/* out[T, n_out] = x[T, n_in] * w[n_out, n_in]^T + bias: the CPU backend's
 * one hot loop (every projection and the lm_head go through it).
 *
 * Threads split the output columns (weight rows) in chunks, so each weight
 * byte is read by one thread. Inside a chunk a 2 x 4 register tile (two
 * token rows against four weight rows) with four independent partial sums
 * per pair lets the compiler vectorise without -ffast-math reordering;
 * the partial sums make the summation order differ from a naive dot
 * product by rounding only (~1e-7 relative). */
#include <stddef.h>

#include "cpu/cpu_internal.h"

enum { COLS_PER_TASK = 16 };

typedef struct mm_args {
    float *out;
    const float *x, *w, *bias;
    int T, n_in, n_out;
} mm_args;

/* Two x rows against four w rows, four lanes each. */
static void tile_2x4(const mm_args *m, int t, int o, float r[2][4])
{
    const float *x0 = m->x + (size_t)t * m->n_in, *x1 = x0 + m->n_in;
    const float *w0 = m->w + (size_t)o * m->n_in;
    const float *w1 = w0 + m->n_in, *w2 = w1 + m->n_in, *w3 = w2 + m->n_in;
    float acc[2][4][4] = {{{0}}};
    int n = m->n_in, i = 0;
    for (; i + 4 <= n; i += 4) {
        for (int l = 0; l < 4; l++) {
            float a0 = x0[i + l], a1 = x1[i + l];
            acc[0][0][l] += a0 * w0[i + l];
            acc[0][1][l] += a0 * w1[i + l];
            acc[0][2][l] += a0 * w2[i + l];
            acc[0][3][l] += a0 * w3[i + l];
            acc[1][0][l] += a1 * w0[i + l];
            acc[1][1][l] += a1 * w1[i + l];
            acc[1][2][l] += a1 * w2[i + l];
            acc[1][3][l] += a1 * w3[i + l];
        }
    }
    const float *ws[4] = {w0, w1, w2, w3};
    for (; i < n; i++)
        for (int c = 0; c < 4; c++) {
            acc[0][c][0] += x0[i] * ws[c][i];
            acc[1][c][0] += x1[i] * ws[c][i];
        }
    for (int a = 0; a < 2; a++)
        for (int c = 0; c < 4; c++)
            r[a][c] = (acc[a][c][0] + acc[a][c][1]) + (acc[a][c][2] + acc[a][c][3]);
}

static void mm_task(void *arg, int task, int worker)
{
    (void)worker;
    const mm_args *m = arg;
    int o0 = task * COLS_PER_TASK;
    int o1 = o0 + COLS_PER_TASK < m->n_out ? o0 + COLS_PER_TASK : m->n_out;
    int t = 0;
    for (; t + 2 <= m->T; t += 2) {
        int o = o0;
        for (; o + 4 <= o1; o += 4) {
            float r[2][4];
            tile_2x4(m, t, o, r);
            for (int a = 0; a < 2; a++)
                for (int c = 0; c < 4; c++)
                    m->out[(size_t)(t + a) * m->n_out + o + c] =
                        r[a][c] + (m->bias ? m->bias[o + c] : 0.0f);
        }
        for (; o < o1; o++)
            for (int a = 0; a < 2; a++)
                m->out[(size_t)(t + a) * m->n_out + o] =
                    cpu_dot(m->x + (size_t)(t + a) * m->n_in, m->w + (size_t)o * m->n_in,
                            m->n_in) +
                    (m->bias ? m->bias[o] : 0.0f);
    }
    for (; t < m->T; t++)
        for (int o = o0; o < o1; o++)
            m->out[(size_t)t * m->n_out + o] =
                cpu_dot(m->x + (size_t)t * m->n_in, m->w + (size_t)o * m->n_in, m->n_in) +
                (m->bias ? m->bias[o] : 0.0f);
}

void cpu_matmul(vb_backend *b, void *out, const void *x, const void *w,
                const void *bias, int T, int n_in, int n_out)
{
    mm_args m = {out, x, w, bias, T, n_in, n_out};
    int n_tasks = (n_out + COLS_PER_TASK - 1) / COLS_PER_TASK;
    cpu_pool_run(cpu_ctx_of(b)->pool, n_tasks, mm_task, &m);
}

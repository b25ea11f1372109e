/* Shared between the CPU backend's files: its state and the ops that live
 * in their own files (matmul, attention). */
#ifndef VB_CPU_INTERNAL_H
#define VB_CPU_INTERNAL_H

#include <mpi.h>

#include "cpu/cpu_pool.h"
#include "forward/backend.h"

typedef struct cpu_ctx {
    cpu_pool *pool;
    MPI_Comm tp_comm;         /* MPI_COMM_NULL without TP */
    int tp;
    const step_batch *step;   /* from step_begin */
    int *tok_seq;             /* [step->n_tokens] sequence of each new token */
    int tok_seq_cap;
    float *q_scratch;         /* cpu_matmul_quant: dequantized tiles, gathered inputs */
    size_t q_scratch_cap;     /* floats */
    float *out_scratch;       /* cpu_matmul_quant_resid: the projection before its add */
    size_t out_scratch_cap;   /* floats */
    float *reduce_scratch;    /* cpu_all_reduce_sum at tp > 2: every rank's chunk */
    size_t reduce_scratch_cap; /* floats */
} cpu_ctx;

static inline cpu_ctx *cpu_ctx_of(vb_backend *b)
{
    return (cpu_ctx *)b->ctx;
}

/* sum a[i] * b[i] in four interleaved lanes, added as (0 + 1) + (2 + 3):
 * the dot product of the CPU matmuls' edge rows (cpu_matmul.c) and of the
 * quantized matmul (cpu_qmatmul.c). */
static inline float cpu_dot(const float *a, const float *b, int n)
{
    float s[4] = {0, 0, 0, 0};
    int i = 0;
    for (; i + 4 <= n; i += 4)
        for (int l = 0; l < 4; l++)
            s[l] += a[i + l] * b[i + l];
    for (; i < n; i++)
        s[0] += a[i] * b[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

void cpu_matmul(vb_backend *b, void *out, const void *x, const void *w,
                const void *bias, int T, int n_in, int n_out);
void cpu_matmul_quant(vb_backend *b, void *out, const void *x, const void *w,
                      const void *bias, int T, int n_in, int n_out);
bool cpu_matmul_quant_resid(vb_backend *b, void *residual, const void *x, const void *w, int T,
                            int n_in, int n_out);
void cpu_rope_kv_write(vb_backend *b, void *q, void *k, const void *v,
                       void *k_cache, void *v_cache, const void *inv_freq,
                       float cos_sin_scale, int heads, int kv_heads,
                       int head_dim, int block_size);
void cpu_attention(vb_backend *b, void *out, const void *q, const void *k_cache,
                   const void *v_cache, int heads, int kv_heads, int head_dim,
                   int block_size, float scale);

#endif

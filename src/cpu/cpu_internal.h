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
} cpu_ctx;

static inline cpu_ctx *cpu_ctx_of(vb_backend *b)
{
    return (cpu_ctx *)b->ctx;
}

void cpu_matmul(vb_backend *b, void *out, const void *x, const void *w,
                const void *bias, int T, int n_in, int n_out);
void cpu_matmul_quant(vb_backend *b, void *out, const void *x, const void *w,
                      const void *bias, int T, int n_in, int n_out);
void cpu_rope_kv_write(vb_backend *b, void *q, void *k, const void *v,
                       void *k_cache, void *v_cache, const void *inv_freq,
                       float cos_sin_scale, int heads, int kv_heads,
                       int head_dim, int block_size);
void cpu_attention(vb_backend *b, void *out, const void *q, const void *k_cache,
                   const void *v_cache, int heads, int kv_heads, int head_dim,
                   int block_size, float scale);

#endif

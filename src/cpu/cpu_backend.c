/* The CPU backend's memory, the small element-wise ops, the TP all-reduce,
 * and the vb_backend table (see cpu_backend.h; matmul and attention live in
 * their own files). */
#include "cpu/cpu_backend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_internal.h"
#include "mpi/mpi_check.h"

static void *cpu_alloc(vb_backend *b, size_t bytes)
{
    (void)b;
    return calloc(1, bytes ? bytes : 1);
}

static void cpu_free(vb_backend *b, void *p)
{
    (void)b;
    free(p);
}

static void cpu_copy(vb_backend *b, void *dst, const void *src, size_t bytes)
{
    (void)b;
    memcpy(dst, src, bytes);
}

static int cpu_step_begin(vb_backend *b, const step_batch *sb, int max_rows)
{
    (void)max_rows; /* no padding on the CPU */
    cpu_ctx *c = cpu_ctx_of(b);
    c->step = sb;
    if (sb->n_tokens > c->tok_seq_cap) {
        int *p = realloc(c->tok_seq, sizeof(int) * (size_t)sb->n_tokens);
        if (!p) {
            fprintf(stderr, "cpu backend: out of memory for a step of %d tokens\n", sb->n_tokens);
            abort();
        }
        c->tok_seq = p;
        c->tok_seq_cap = sb->n_tokens;
    }
    for (int s = 0; s < sb->n_seqs; s++)
        for (int t = sb->seq_start[s]; t < sb->seq_start[s + 1]; t++)
            c->tok_seq[t] = s;
    return sb->n_tokens;
}

static void cpu_embed(vb_backend *b, void *out_, const void *table_, int hidden,
                      int vocab_start, int vocab_local)
{
    const step_batch *sb = cpu_ctx_of(b)->step;
    float *out = out_;
    const float *table = table_;
    for (int t = 0; t < sb->n_tokens; t++) {
        int r = sb->tokens[t] - vocab_start;
        float *o = out + (size_t)t * hidden;
        if (r >= 0 && r < vocab_local)
            memcpy(o, table + (size_t)r * hidden, sizeof(float) * (size_t)hidden);
        else
            memset(o, 0, sizeof(float) * (size_t)hidden);
    }
}

/* As transformers' RMSNorm in fp32: x * rsqrt(mean(x^2) + eps) * w. The sum
 * of squares is accumulated in double so the result does not depend on
 * the row length's rounding. */
static void cpu_rmsnorm(vb_backend *b, void *out_, void *resid_, const void *add_,
                        const void *w_, int rows, int dim, float eps)
{
    (void)b;
    float *out = out_, *resid = resid_;
    const float *add = add_, *w = w_;
    for (int r = 0; r < rows; r++) {
        float *x = resid + (size_t)r * dim, *o = out + (size_t)r * dim;
        if (add) {
            const float *a = add + (size_t)r * dim;
            for (int i = 0; i < dim; i++)
                x[i] += a[i];
        }
        double ss = 0.0;
        for (int i = 0; i < dim; i++)
            ss += (double)x[i] * x[i];
        float inv = 1.0f / sqrtf((float)(ss / dim) + eps);
        for (int i = 0; i < dim; i++)
            o[i] = w[i] * (x[i] * inv);
    }
}

static void cpu_rmsnorm_rows(vb_backend *b, void *x, const void *w, int rows, int dim, float eps)
{
    cpu_rmsnorm(b, x, x, NULL, w, rows, dim, eps);
}

/* Activations and the residual stream are both fp32 here: a copy. */
static void cpu_resid_load(vb_backend *b, void *resid, const void *x, size_t n)
{
    (void)b;
    memcpy(resid, x, n * sizeof(float));
}

static void cpu_silu_gate(vb_backend *b, void *out_, const void *gate_, const void *up_, size_t n)
{
    (void)b;
    float *out = out_;
    const float *gate = gate_, *up = up_;
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

static void cpu_last_rows(vb_backend *b, void *out, const void *in, int dim)
{
    const step_batch *sb = cpu_ctx_of(b)->step;
    for (int s = 0; s < sb->n_seqs; s++)
        memcpy((float *)out + (size_t)s * dim,
               (const float *)in + (size_t)(sb->seq_start[s + 1] - 1) * dim,
               sizeof(float) * (size_t)dim);
}

static void cpu_lm_head(vb_backend *b, float *logits, const void *x, const void *w,
                        int rows, int hidden, int vocab_local)
{
    cpu_matmul(b, logits, x, w, NULL, rows, hidden, vocab_local);
}

/* Sums buf over the group in rank order: every rank's partial values are
 * gathered and added as ((r0 + r1) + r2) + ..., so an element's sum does
 * not depend on how many elements the step has. MPI_Allreduce promises no
 * order (Open MPI picks its algorithm, and so the association of three or
 * more addends, by the message size), and a row's logits then changed with
 * the batch and data-parallel layout at tp 3 and more, against DESIGN.md's
 * reproducibility. Two addends are summed exactly alike in either order,
 * so tp 2 keeps the plain all-reduce. Buffers go in chunks of `chunk`
 * floats a rank (MPI counts are int; the gather needs tp x chunk). */
static int cpu_all_reduce_ordered(cpu_ctx *c, float *buf, size_t n, size_t chunk)
{
    size_t need = chunk * (size_t)c->tp;
    if (c->reduce_scratch_cap < need) {
        float *p = realloc(c->reduce_scratch, need * sizeof *p);
        if (!p)
            return -1;
        c->reduce_scratch = p;
        c->reduce_scratch_cap = need;
    }
    for (size_t off = 0; off < n; off += chunk) {
        size_t len = n - off < chunk ? n - off : chunk;
        MPI_CHECK(MPI_Allgather(buf + off, (int)len, MPI_FLOAT, c->reduce_scratch, (int)len,
                                MPI_FLOAT, c->tp_comm));
        for (size_t i = 0; i < len; i++) {
            float s = c->reduce_scratch[i];
            for (int r = 1; r < c->tp; r++)
                s += c->reduce_scratch[(size_t)r * len + i];
            buf[off + i] = s;
        }
    }
    return 0;
}

static void cpu_all_reduce_sum(vb_backend *b, void *buf, size_t n)
{
    cpu_ctx *c = cpu_ctx_of(b);
    if (c->tp <= 1)
        return;
    if (c->tp > 2) {
        if (cpu_all_reduce_ordered(c, buf, n, (size_t)1 << 18) != 0) {
            fprintf(stderr, "voltbatch: cpu backend: out of memory for the all-reduce's "
                            "%d x %zu floats\n", c->tp, (size_t)1 << 18);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        return;
    }
    const size_t chunk = (size_t)1 << 30;
    for (size_t off = 0; off < n; off += chunk) {
        size_t len = n - off < chunk ? n - off : chunk;
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, (float *)buf + off, (int)len, MPI_FLOAT,
                                MPI_SUM, c->tp_comm));
    }
}

static void cpu_destroy(vb_backend *b)
{
    if (!b)
        return;
    cpu_ctx *c = cpu_ctx_of(b);
    cpu_pool_destroy(c->pool);
    free(c->tok_seq);
    free(c->q_scratch);
    free(c->out_scratch);
    free(c->reduce_scratch);
    free(c);
    free(b);
}

vb_backend *cpu_backend_create(int n_threads, MPI_Comm tp_comm, int ranks_on_node)
{
    vb_backend *b = calloc(1, sizeof *b);
    cpu_ctx *c = calloc(1, sizeof *c);
    if (!b || !c) {
        free(b);
        free(c);
        return NULL;
    }
    c->tp_comm = tp_comm;
    c->tp = 1;
    if (tp_comm != MPI_COMM_NULL)
        MPI_CHECK(MPI_Comm_size(tp_comm, &c->tp));
    c->pool = cpu_pool_create(n_threads > 0 ? n_threads : cpu_pool_cores_per_rank(ranks_on_node));
    if (!c->pool) {
        free(b);
        free(c);
        return NULL;
    }
    b->name = "cpu";
    b->act_size = sizeof(float);
    b->resid_size = sizeof(float);
    b->kv_int8 = true;
    b->ctx = c;
    b->alloc = cpu_alloc;
    b->free = cpu_free;
    b->to_device = cpu_copy;
    b->to_host = cpu_copy;
    b->step_begin = cpu_step_begin;
    b->embed = cpu_embed;
    b->matmul = cpu_matmul;
    b->matmul_quant = cpu_matmul_quant;
    b->matmul_quant_resid = cpu_matmul_quant_resid;
    b->rmsnorm = cpu_rmsnorm;
    b->rmsnorm_rows = cpu_rmsnorm_rows;
    b->resid_load = cpu_resid_load;
    b->rope_kv_write = cpu_rope_kv_write;
    b->attention = cpu_attention;
    b->silu_gate = cpu_silu_gate;
    b->last_rows = cpu_last_rows;
    b->lm_head = cpu_lm_head;
    b->all_reduce_sum = cpu_all_reduce_sum;
    b->destroy = cpu_destroy;
    return b;
}

int cpu_backend_threads(const vb_backend *b)
{
    return cpu_pool_threads(((const cpu_ctx *)b->ctx)->pool);
}

/* The CUDA backend's ops: cuBLAS GEMMs and kernel launches on one stream;
 * see backend_cuda.h. Every call is checked (CUDA_CHECK / CUBLAS_CHECK /
 * NCCL_CHECK abort the job with the call, file and line). */
#include "cuda/backend_cuda.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_check.h"
#include "kernels.h"

typedef struct cuda_ctx {
    cudaStream_t stream;
    cublasHandle_t cublas;
    ncclComm_t comm;           /* NULL without TP */
    /* the current step's layout on the device (step_begin) */
    int n_tokens, n_seqs, max_blocks;
    int *d_tokens, *d_positions, *d_seq_start, *d_token_seq, *d_block_tables;
    int *h_token_seq;
    size_t cap_tokens, cap_seqs, cap_tables;
    /* attention work lists: decode tokens for the per-token kernel, tiles of
     * up to 16 prompt tokens (first, rows, seq) for the tensor-core kernel */
    int n_decode, n_tiles;
    int *d_decode, *h_decode, *d_tiles, *h_tiles;
    size_t cap_decode, cap_tiles;
} cuda_ctx;

static cuda_ctx *ctx_of(vb_backend *b)
{
    return (cuda_ctx *)b->ctx;
}

static void *cuda_alloc(vb_backend *b, size_t bytes)
{
    void *p = NULL;
    if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky out-of-memory status */
        return NULL;
    }
    /* On our stream: it does not synchronise with the legacy default
     * stream, so a plain cudaMemset could land after the first copy in. */
    CUDA_CHECK(cudaMemsetAsync(p, 0, bytes ? bytes : 1, ctx_of(b)->stream));
    CUDA_CHECK(cudaStreamSynchronize(ctx_of(b)->stream));
    return p;
}

static void cuda_free_buf(vb_backend *b, void *p)
{
    (void)b;
    if (p)
        CUDA_CHECK(cudaFree(p));
}

static void cuda_to_device(vb_backend *b, void *dst, const void *src, size_t bytes)
{
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx_of(b)->stream));
    CUDA_CHECK(cudaStreamSynchronize(ctx_of(b)->stream));
}

static void cuda_to_host(vb_backend *b, void *dst, const void *src, size_t bytes)
{
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ctx_of(b)->stream));
    CUDA_CHECK(cudaStreamSynchronize(ctx_of(b)->stream));
}

/* Device copies of the step layout grow with the largest step seen. */
static void grow(int **d, size_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    if (*d)
        CUDA_CHECK(cudaFree(*d));
    *cap = need < 64 ? 64 : need * 2;
    CUDA_CHECK(cudaMalloc((void **)d, *cap * sizeof(int)));
}

static void *host_alloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        vb_cuda_fail("host", "malloc", "out of memory", __FILE__, __LINE__);
    return p;
}

static void grow_token_arrays(cuda_ctx *c, size_t T)
{
    if (T <= c->cap_tokens)
        return;
    size_t cap = 0;
    grow(&c->d_tokens, &cap, T);
    cap = 0;
    grow(&c->d_positions, &cap, T);
    cap = 0;
    grow(&c->d_token_seq, &cap, T);
    cap = 0;
    grow(&c->d_decode, &cap, T);
    cap = 0;
    grow(&c->d_tiles, &cap, 3 * T);
    free(c->h_token_seq);
    free(c->h_decode);
    free(c->h_tiles);
    c->h_token_seq = host_alloc(2 * T * sizeof(int));
    c->h_decode = host_alloc(2 * T * sizeof(int));
    c->h_tiles = host_alloc(6 * T * sizeof(int));
    c->cap_tokens = 2 * T;
}

/* Splits the step's attention work: one-token sequences (decode) go to the
 * per-token kernel, longer runs to the tensor-core kernel in tiles of 16. */
static void build_attention_lists(cuda_ctx *c, const step_batch *sb)
{
    c->n_decode = 0;
    c->n_tiles = 0;
    for (int s = 0; s < sb->n_seqs; s++) {
        int t0 = sb->seq_start[s], n = sb->seq_start[s + 1] - t0;
        if (n == 1) {
            c->h_decode[c->n_decode++] = t0;
            continue;
        }
        for (int r = 0; r < n; r += 16) {
            int *tile = c->h_tiles + 3 * c->n_tiles++;
            tile[0] = t0 + r;
            tile[1] = n - r < 16 ? n - r : 16;
            tile[2] = s;
        }
    }
}

static void cuda_step_begin(vb_backend *b, const step_batch *sb)
{
    cuda_ctx *c = ctx_of(b);
    size_t T = (size_t)sb->n_tokens, S = (size_t)sb->n_seqs;
    size_t tables = S * (size_t)sb->max_blocks;
    grow_token_arrays(c, T);
    grow(&c->d_seq_start, &c->cap_seqs, S + 1);
    grow(&c->d_block_tables, &c->cap_tables, tables);
    for (size_t s = 0; s < S; s++)
        for (int t = sb->seq_start[s]; t < sb->seq_start[s + 1]; t++)
            c->h_token_seq[t] = (int)s;
    build_attention_lists(c, sb);
    c->n_tokens = (int)T;
    c->n_seqs = (int)S;
    c->max_blocks = sb->max_blocks;
    cudaStream_t st = c->stream;
    if (T) {
        CUDA_CHECK(cudaMemcpyAsync(c->d_tokens, sb->tokens, T * sizeof(int), cudaMemcpyHostToDevice, st));
        CUDA_CHECK(cudaMemcpyAsync(c->d_positions, sb->positions, T * sizeof(int), cudaMemcpyHostToDevice, st));
        CUDA_CHECK(cudaMemcpyAsync(c->d_token_seq, c->h_token_seq, T * sizeof(int), cudaMemcpyHostToDevice, st));
    }
    if (c->n_decode)
        CUDA_CHECK(cudaMemcpyAsync(c->d_decode, c->h_decode, (size_t)c->n_decode * sizeof(int), cudaMemcpyHostToDevice, st));
    if (c->n_tiles)
        CUDA_CHECK(cudaMemcpyAsync(c->d_tiles, c->h_tiles, (size_t)c->n_tiles * 3 * sizeof(int), cudaMemcpyHostToDevice, st));
    CUDA_CHECK(cudaMemcpyAsync(c->d_seq_start, sb->seq_start, (S + 1) * sizeof(int), cudaMemcpyHostToDevice, st));
    if (tables)
        CUDA_CHECK(cudaMemcpyAsync(c->d_block_tables, sb->block_tables, tables * sizeof(int), cudaMemcpyHostToDevice, st));
    /* the host arrays may change after we return */
    CUDA_CHECK(cudaStreamSynchronize(st));
}

static void cuda_embed(vb_backend *b, void *out, const void *table, int hidden, int vocab_start,
                       int vocab_local)
{
    cuda_ctx *c = ctx_of(b);
    CUDA_CHECK(vb_embed_f16(out, table, c->d_tokens, c->n_tokens, hidden, vocab_start,
                            vocab_local, c->stream));
}

/* Row-major out[T, n_out] = x[T, n_in] w[n_out, n_in]^T is, column-major,
 * out^T[n_out, T] = w^T x^T: op(A) = transpose of w (stored n_in x n_out). */
static void gemm(cuda_ctx *c, void *out, cudaDataType_t out_type, const void *x, const void *w,
                 int T, int n_in, int n_out)
{
    const float one = 1.0f, zero = 0.0f;
    CUBLAS_CHECK(cublasGemmEx(c->cublas, CUBLAS_OP_T, CUBLAS_OP_N, n_out, T, n_in, &one, w,
                              CUDA_R_16F, n_in, x, CUDA_R_16F, n_in, &zero, out, out_type, n_out,
                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

static void cuda_matmul(vb_backend *b, void *out, const void *x, const void *w, const void *bias,
                        int T, int n_in, int n_out)
{
    cuda_ctx *c = ctx_of(b);
    if (T == 0)
        return;
    gemm(c, out, CUDA_R_16F, x, w, T, n_in, n_out);
    if (bias)
        CUDA_CHECK(vb_add_bias_f16(out, bias, T, n_out, c->stream));
}

static void cuda_rmsnorm(vb_backend *b, void *out, void *residual, const void *add, const void *w,
                         int rows, int dim, float eps)
{
    CUDA_CHECK(vb_rmsnorm_residual_f16(out, residual, add, w, rows, dim, eps, ctx_of(b)->stream));
}

static void cuda_rmsnorm_rows(vb_backend *b, void *x, const void *w, int rows, int dim, float eps)
{
    CUDA_CHECK(vb_rmsnorm_rows_f16(x, w, rows, dim, eps, ctx_of(b)->stream));
}

static void cuda_resid_load(vb_backend *b, void *residual, const void *x, size_t n)
{
    CUDA_CHECK(vb_resid_load_f16(residual, x, n, ctx_of(b)->stream));
}

static void cuda_rope_kv_write(vb_backend *b, void *q, void *k, const void *v, void *k_cache,
                               void *v_cache, const void *inv_freq, float cos_sin_scale,
                               int heads, int kv_heads, int head_dim, int block_size)
{
    cuda_ctx *c = ctx_of(b);
    CUDA_CHECK(vb_rope_kv_write_f16(q, k, v, k_cache, v_cache, inv_freq, cos_sin_scale,
                                    c->d_positions, c->d_token_seq, c->d_block_tables,
                                    c->max_blocks, c->n_tokens, heads, kv_heads, head_dim,
                                    block_size, c->stream));
}

static void cuda_attention(vb_backend *b, void *out, const void *q, const void *k_cache,
                           const void *v_cache, int heads, int kv_heads, int head_dim,
                           int block_size, float scale)
{
    cuda_ctx *c = ctx_of(b);
    if (head_dim % 16 != 0 || getenv("VB_ATTENTION_PER_TOKEN")) {
        /* diagnostic / unusual head sizes: the per-token kernel for all */
        CUDA_CHECK(vb_attention_f16(out, q, k_cache, v_cache, NULL, c->d_positions,
                                    c->d_token_seq, c->d_block_tables, c->max_blocks,
                                    c->n_tokens, heads, kv_heads, head_dim, block_size, scale,
                                    c->stream));
        return;
    }
    CUDA_CHECK(vb_attention_f16(out, q, k_cache, v_cache, c->d_decode, c->d_positions,
                                c->d_token_seq, c->d_block_tables, c->max_blocks, c->n_decode,
                                heads, kv_heads, head_dim, block_size, scale, c->stream));
    CUDA_CHECK(vb_attention_prefill_f16(out, q, k_cache, v_cache, c->d_positions, c->d_tiles,
                                        c->n_tiles, c->d_block_tables, c->max_blocks, heads,
                                        kv_heads, head_dim, block_size, scale, c->stream));
}

static void cuda_silu_gate(vb_backend *b, void *out, const void *gate, const void *up, size_t n)
{
    CUDA_CHECK(vb_silu_gate_f16(out, gate, up, n, ctx_of(b)->stream));
}

static void cuda_last_rows(vb_backend *b, void *out, const void *in, int dim)
{
    cuda_ctx *c = ctx_of(b);
    CUDA_CHECK(vb_last_rows_f16(out, in, c->d_seq_start, c->n_seqs, dim, c->stream));
}

static void cuda_lm_head(vb_backend *b, float *logits, const void *x, const void *w, int rows,
                         int hidden, int vocab_local)
{
    if (rows == 0)
        return;
    gemm(ctx_of(b), logits, CUDA_R_32F, x, w, rows, hidden, vocab_local);
}

static void cuda_all_reduce_sum(vb_backend *b, void *buf, size_t n)
{
    cuda_ctx *c = ctx_of(b);
    if (!c->comm || n == 0)
        return;
    NCCL_CHECK(ncclAllReduce(buf, buf, n, ncclHalf, ncclSum, c->comm, c->stream));
}

static void cuda_destroy(vb_backend *b)
{
    if (!b)
        return;
    cuda_ctx *c = ctx_of(b);
    CUDA_CHECK(cudaStreamSynchronize(c->stream));
    int *bufs[] = {c->d_tokens,       c->d_positions, c->d_seq_start, c->d_token_seq,
                   c->d_block_tables, c->d_decode,    c->d_tiles};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i])
            CUDA_CHECK(cudaFree(bufs[i]));
    free(c->h_token_seq);
    free(c->h_decode);
    free(c->h_tiles);
    CUBLAS_CHECK(cublasDestroy(c->cublas));
    CUDA_CHECK(cudaStreamDestroy(c->stream));
    free(c);
    free(b);
}

vb_backend *cuda_backend_create(ncclComm_t comm, vb_err *err)
{
    vb_backend *b = calloc(1, sizeof *b);
    cuda_ctx *c = calloc(1, sizeof *c);
    if (!b || !c) {
        free(b);
        free(c);
        vb_err_set(err, "out of host memory creating the CUDA backend");
        return NULL;
    }
    CUDA_CHECK(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasCreate(&c->cublas));
    CUBLAS_CHECK(cublasSetStream(c->cublas, c->stream));
    c->comm = comm;
    *b = (vb_backend){
        .name = "cuda",
        .act_size = 2,
        .resid_size = 4,
        .ctx = c,
        .alloc = cuda_alloc,
        .free = cuda_free_buf,
        .to_device = cuda_to_device,
        .to_host = cuda_to_host,
        .step_begin = cuda_step_begin,
        .embed = cuda_embed,
        .matmul = cuda_matmul,
        .rmsnorm = cuda_rmsnorm,
        .rmsnorm_rows = cuda_rmsnorm_rows,
        .resid_load = cuda_resid_load,
        .rope_kv_write = cuda_rope_kv_write,
        .attention = cuda_attention,
        .silu_gate = cuda_silu_gate,
        .last_rows = cuda_last_rows,
        .lm_head = cuda_lm_head,
        .all_reduce_sum = cuda_all_reduce_sum,
        .destroy = cuda_destroy,
    };
    return b;
}

/* The CUDA backend's ops: cuBLAS GEMMs and kernel launches on one stream;
 * see backend_cuda.h. Every call is checked (CUDA_CHECK / CUBLAS_CHECK /
 * NCCL_CHECK abort the job with the call, file and line). */
#include "cuda/backend_cuda.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#include "cuda/cuda_check.h"
#include "cuda/cuda_graphs.h"
#include "cuda/cuda_profile.h"
#include "cuda/cuda_qweight.h"
#include "cuda/cuda_sampler.h"
#include "cuda/gemm_lt_invariant.h"
#include "kernels.h"

#define CUBLAS_WORKSPACE_BYTES ((size_t)32 << 20)
/* VB_GEMV_MAX_ROWS (util/env.h) is range-checked against the kernel's row
 * limit without including kernels.h; the two must agree. */
_Static_assert(VB_TUNING_GEMV_ROWS_MAX == VB_GEMV_MAX_ROWS, "VB_GEMV_MAX_ROWS range");

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
     * up to 16 prompt tokens (first, rows, seq) for the WMMA prefill kernel */
    int n_decode, n_tiles;
    int *d_decode, *h_decode, *d_tiles, *h_tiles;
    /* the sm_80+ prefill kernel's tiles, of up to mtile_tokens tokens (its
     * choice for the model's GQA group), made from the above at the step's
     * first attention call (mma_tiles); mtile_tokens 0: not yet this step */
    int n_mtiles, mtile_tokens;
    int *d_mtiles, *h_mtiles;
    size_t cap_decode, cap_tiles;
    /* host staging of the (possibly padded) tokens, positions, starts */
    int *h_tokens, *h_positions, *h_seq_start;
    size_t cap_staging;
    cuda_graphs graphs;        /* decode-step graphs (cuda_graphs.h) */
    bool pad_decode;           /* pad decode steps to graph buckets (off in eager mode) */
    bool graphable;            /* this step is a padded decode step (step_begin) */
    bool eager;                /* synchronise and check after every op */
    /* --batch-invariant (issue #22): every projection through cuBLASLt's
     * split-K-free algorithms (gemm_lt_invariant.h), or the fixed-order
     * kernel (kernels/gemm_invariant.cu) for shapes those fail; decode
     * attention through the fixed-split tensor-core kernel at every step
     * size; no GEMV paths, whose order would differ from the GEMM's */
    bool invariant;
    bool invariant_own_gemm;   /* VB_INVARIANT_OWN_GEMM=1: the kernel for every shape */
    gemm_lt_inv *inv_lt;       /* made with the mode */
    float *inv_workspace;      /* the invariant GEMM's split-mode partials and counters */
    size_t inv_workspace_bytes;
    /* --batch-invariant at tp > 1: every rank's partial rows gathered, then
     * summed in rank order (cuda_all_reduce_sum); made at the first
     * all-reduce, for the run's largest step (max_rows from step_begin) */
    int n_ranks;
    int max_rows;
    uint16_t *rank_parts;
    size_t cap_rank_parts;     /* halves */
    void *cublas_workspace;
    int n_sm;                  /* multiprocessors, for the decode-attention split */
    int l2_bytes;              /* L2 size, for decode attention's blocks per head */
    bool no_gemv;              /* VB_NO_GEMV=1: cuBLAS for small steps too (to compare) */
    bool no_rope_fusion;       /* VB_NO_ROPE_FUSION=1: RoPE/KV write as a kernel of its own */
    bool qkv_shallow;          /* VB_QKV_SHALLOW=1: the fused q/k/v GEMV one chunk deep */
    bool attention_per_token;  /* VB_ATTENTION_PER_TOKEN=1: the plain kernel for every step */
    bool decode_whole_groups;  /* VB_DECODE_WHOLE_GROUPS=1: a decode block per GQA group always */
    bool table_buckets;        /* VB_TABLE_BUCKETS=1: block tables of table_stride's width */
    bool qgemv_epilogue;       /* VB_QGEMV_EPILOGUE=1: SiLU-gate / RoPE in the quantized GEMV */
    bool norm_fold;            /* VB_NORM_FOLD=1: the norm fold's ops run (backend.h) */
    int table_blocks;          /* the engine's block-table width (max_blocks: the stride
                                * unless table_buckets) */
    bool prefill_wmma;         /* VB_PREFILL_WMMA=1: the sm_70 prefill kernel on newer GPUs too */
    bool prefill_mma16;        /* VB_PREFILL_MMA16=1: fp16 cache on the 16-rows-a-warp kernel */
    int prefill_wgmma;         /* VB_PREFILL_WGMMA 1..3 (default 3): fp16 cache on the
                                * wgmma kernel, variant VB_PREFILL_WGMMA - 1; 0 mma32 */
    bool no_fused;             /* VB_NO_FUSED_GEMV=1: GEMVs one matrix at a time (to compare) */
    int gemv_max_rows;         /* steps of up to this many rows take the GEMV (VB_GEMV_MAX_ROWS) */
    int sampler_pass1_chunks;  /* VB_SAMPLER_PASS1_CHUNKS for the sampler; 0: its choice */
    float *decode_workspace;   /* partials of split decode attention */
    float *decode_mma_workspace; /* partials of the sm_80+ decode kernel's splits (NULL: no such kernel) */
    size_t decode_mma_workspace_bytes;
    /* --batch-invariant without that kernel (V100): the CUDA-core decode
     * kernel's fixed-slice partials (attention_decode_invariant) */
    float *inv_decode_workspace;
    size_t inv_decode_workspace_bytes;
    cuda_sampler *sampler;     /* device-side sampling, made on first use */
    cuda_profile *prof;        /* VB_PROFILE=1: per-op GPU time (cuda_profile.h) */
    bool step_decode;          /* this step is all decode tokens (the profile's class) */
    cudaEvent_t timer[VB_TIMER_MARKS]; /* bench's step stamps (timer_mark) */
    unsigned timer_recorded;   /* bit i: timer[i] was recorded */
} cuda_ctx;

static cuda_ctx *ctx_of(vb_backend *b)
{
    return (cuda_ctx *)b->ctx;
}

/* --eager: waits for each op and checks it, so a fault names its op
 * rather than surfacing at the next synchronisation. */
static void op_done(cuda_ctx *c, const char *op)
{
    if (c->prof)
        cuda_profile_mark(c->prof, op, c->step_decode, c->stream);
    if (!c->eager)
        return;
    cudaError_t e = cudaStreamSynchronize(c->stream);
    if (e == cudaSuccess)
        e = cudaGetLastError();
    if (e != cudaSuccess)
        vb_cuda_fail("CUDA", op, cudaGetErrorString(e), __FILE__, __LINE__);
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
    if (!p)
        return;
    /* a graph may use the buffer; an address reused by a later alloc
     * would make it replay on the wrong data */
    cuda_graphs_clear(&ctx_of(b)->graphs);
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

/* bench's step split (backend.h): events on the stream, read after the
 * step, so the step runs as it would without the bench. */
static void cuda_timer_mark(vb_backend *b, int i)
{
    cuda_ctx *c = ctx_of(b);
    if (i < 0 || i >= VB_TIMER_MARKS)
        return;
    CUDA_CHECK(cudaEventRecord(c->timer[i], c->stream));
    c->timer_recorded |= 1u << i;
}

static double cuda_timer_seconds(vb_backend *b, int from, int to)
{
    cuda_ctx *c = ctx_of(b);
    if (from < 0 || to < 0 || from >= VB_TIMER_MARKS || to >= VB_TIMER_MARKS ||
        !(c->timer_recorded & (1u << from)) || !(c->timer_recorded & (1u << to)))
        return -1;
    CUDA_CHECK(cudaEventSynchronize(c->timer[to]));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, c->timer[from], c->timer[to]));
    return ms * 1e-3;
}

/* Device copies of the step layout grow with the largest step seen
 * (generously: every move drops the recorded graphs, which point at them). */
static void grow(cuda_ctx *c, int **d, size_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    cuda_graphs_clear(&c->graphs);
    if (*d)
        CUDA_CHECK(cudaFree(*d));
    *cap = need < 1024 ? 1024 : need * 2;
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
    T = T < 512 ? 512 : T; /* see grow() */
    size_t cap = 0;
    grow(c, &c->d_tokens, &cap, 2 * T);
    cap = 0;
    grow(c, &c->d_positions, &cap, 2 * T);
    cap = 0;
    grow(c, &c->d_token_seq, &cap, 2 * T);
    cap = 0;
    grow(c, &c->d_decode, &cap, 2 * T);
    cap = 0;
    grow(c, &c->d_tiles, &cap, 6 * T);
    cap = 0;
    grow(c, &c->d_mtiles, &cap, 6 * T);
    free(c->h_token_seq);
    free(c->h_decode);
    free(c->h_tiles);
    free(c->h_mtiles);
    free(c->h_tokens);
    free(c->h_positions);
    c->h_token_seq = host_alloc(2 * T * sizeof(int));
    c->h_decode = host_alloc(2 * T * sizeof(int));
    c->h_tiles = host_alloc(6 * T * sizeof(int));
    c->h_mtiles = host_alloc(6 * T * sizeof(int));
    c->h_tokens = host_alloc(2 * T * sizeof(int));
    c->h_positions = host_alloc(2 * T * sizeof(int));
    c->cap_tokens = 2 * T;
}

/* Splits the step's attention work: one-token sequences (decode) go to the
 * per-token kernel, longer runs to the tensor-core kernel in tiles of 16
 * (the WMMA kernel's; mma_tiles cuts the sm_80+ kernel's from them). */
static void build_attention_lists(cuda_ctx *c, const step_batch *sb)
{
    c->n_decode = 0;
    c->n_tiles = 0;
    c->mtile_tokens = 0;
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

/* The step's tiles for the sm_80+ prefill kernel: each sequence's run of
 * 16-token tiles (consecutive in h_tiles) cut again into tiles of up to
 * tt tokens, and copied to the device, stream-ordered before the kernel.
 * The pinned list is rewritten only at the next step's first attention
 * call, after that step's step_begin has synchronised the stream (so this
 * copy is done). Once a step: every layer has the same shape. */
static void mma_tiles(cuda_ctx *c, int tt)
{
    if (c->mtile_tokens == tt)
        return;
    c->n_mtiles = 0;
    for (int i = 0; i < c->n_tiles;) {
        const int seq = c->h_tiles[3 * i + 2], first = c->h_tiles[3 * i];
        int end = first;
        for (; i < c->n_tiles && c->h_tiles[3 * i + 2] == seq; i++)
            end = c->h_tiles[3 * i] + c->h_tiles[3 * i + 1];
        for (int t = first; t < end; t += tt) {
            int *tile = c->h_mtiles + 3 * c->n_mtiles++;
            tile[0] = t;
            tile[1] = end - t < tt ? end - t : tt;
            tile[2] = seq;
        }
    }
    CUDA_CHECK(cudaMemcpyAsync(c->d_mtiles, c->h_mtiles, (size_t)c->n_mtiles * 3 * sizeof(int),
                               cudaMemcpyHostToDevice, c->stream));
    c->mtile_tokens = tt;
}

/* Rows a step runs on: a decode step (one new token per sequence, logits
 * per sequence) is padded up to its graph bucket when that fits max_rows,
 * so that a recorded graph of that size replays it; other steps as they
 * are. Padding is applied with and without graphs (not in --eager), so
 * --no-cuda-graphs runs the very same kernels and GEMM shapes and gives
 * bit-identical outputs. */
static int step_rows(const cuda_ctx *c, const step_batch *sb, int max_rows)
{
    if (!c->pad_decode || sb->all_logits || sb->n_tokens != sb->n_seqs)
        return sb->n_tokens;
    int rows = cuda_graph_bucket(sb->n_seqs);
    return rows > 0 && rows <= max_rows ? rows : sb->n_tokens;
}

/* The stride of the step's block tables on the device: the engine's width
 * (sb->max_blocks, the model's whole context), or with VB_TABLE_BUCKETS
 * the power of two (at least 16) that holds the step's longest table
 * (sb->used_blocks), so that decode attention's grid (splits over the
 * stride: attention_decode_mma.cu) fits the contexts the step has. The
 * stride keys the CUDA graphs, so a recorded graph still replays only
 * steps of its own. */
static int table_stride(const cuda_ctx *c, const step_batch *sb)
{
    if (!c->table_buckets)
        return sb->max_blocks;
    int stride = 16;
    while (stride < sb->used_blocks)
        stride *= 2;
    return stride < sb->max_blocks ? stride : sb->max_blocks;
}

static int cuda_step_begin(vb_backend *b, const step_batch *sb, int max_rows)
{
    cuda_ctx *c = ctx_of(b);
    c->max_rows = max_rows;
    size_t T0 = (size_t)sb->n_tokens, S0 = (size_t)sb->n_seqs;
    int rows = step_rows(c, sb, max_rows);
    size_t T = (size_t)rows, S = S0 + (T - T0); /* padding rows are one-token sequences */
    const int stride = table_stride(c, sb);
    size_t tables = S0 * (size_t)stride;
    grow_token_arrays(c, T);
    grow(c, &c->d_seq_start, &c->cap_seqs, S + 1);
    grow(c, &c->d_block_tables, &c->cap_tables, tables);
    if (S + 1 > c->cap_staging) {
        free(c->h_seq_start);
        c->cap_staging = 2 * (S + 1);
        c->h_seq_start = host_alloc(c->cap_staging * sizeof(int));
    }
    memcpy(c->h_tokens, sb->tokens, T0 * sizeof(int));
    memcpy(c->h_positions, sb->positions, T0 * sizeof(int));
    memcpy(c->h_seq_start, sb->seq_start, (S0 + 1) * sizeof(int));
    for (size_t s = 0; s < S0; s++)
        for (int t = sb->seq_start[s]; t < sb->seq_start[s + 1]; t++)
            c->h_token_seq[t] = (int)s;
    /* inert padding: token 0 at position 0 in no sequence (token_seq -1:
     * the KV write and attention kernels skip it) */
    for (size_t t = T0; t < T; t++) {
        c->h_tokens[t] = 0;
        c->h_positions[t] = 0;
        c->h_token_seq[t] = -1;
        c->h_seq_start[S0 + 1 + (t - T0)] = (int)t + 1;
    }
    build_attention_lists(c, sb);
    for (size_t t = T0; t < T; t++)
        c->h_decode[c->n_decode++] = (int)t;
    c->n_tokens = (int)T;
    c->n_seqs = (int)S;
    c->max_blocks = stride;
    c->table_blocks = sb->max_blocks;
    c->graphable = c->pad_decode && !sb->all_logits && sb->n_tokens == sb->n_seqs &&
                   cuda_graph_bucket(rows) == rows;
    cudaStream_t st = c->stream;
    CUDA_CHECK(cudaMemcpyAsync(c->d_tokens, c->h_tokens, T * sizeof(int), cudaMemcpyHostToDevice, st));
    CUDA_CHECK(cudaMemcpyAsync(c->d_positions, c->h_positions, T * sizeof(int), cudaMemcpyHostToDevice, st));
    CUDA_CHECK(cudaMemcpyAsync(c->d_token_seq, c->h_token_seq, T * sizeof(int), cudaMemcpyHostToDevice, st));
    if (c->n_decode)
        CUDA_CHECK(cudaMemcpyAsync(c->d_decode, c->h_decode, (size_t)c->n_decode * sizeof(int), cudaMemcpyHostToDevice, st));
    if (c->n_tiles)
        CUDA_CHECK(cudaMemcpyAsync(c->d_tiles, c->h_tiles, (size_t)c->n_tiles * 3 * sizeof(int), cudaMemcpyHostToDevice, st));
    CUDA_CHECK(cudaMemcpyAsync(c->d_seq_start, c->h_seq_start, (S + 1) * sizeof(int), cudaMemcpyHostToDevice, st));
    if (tables && stride == sb->max_blocks)
        CUDA_CHECK(cudaMemcpyAsync(c->d_block_tables, sb->block_tables, tables * sizeof(int),
                                   cudaMemcpyHostToDevice, st));
    else if (tables) /* each row's first `stride` entries */
        CUDA_CHECK(cudaMemcpy2DAsync(c->d_block_tables, (size_t)stride * sizeof(int),
                                     sb->block_tables, (size_t)sb->max_blocks * sizeof(int),
                                     (size_t)stride * sizeof(int), S0, cudaMemcpyHostToDevice,
                                     st));
    c->step_decode = !sb->all_logits && sb->n_tokens == sb->n_seqs;
    if (c->prof) /* since the last op: the host's time between steps, then these copies */
        cuda_profile_mark(c->prof, "step_begin", c->step_decode, st);
    /* the host arrays may change after we return */
    CUDA_CHECK(cudaStreamSynchronize(st));
    return rows;
}

/* Graphs only for padded decode steps: their launches depend on nothing
 * but the row count, the block-table stride and the buffers. */
static int cuda_graph_begin(vb_backend *b, const void *owner, const void *cache)
{
    cuda_ctx *c = ctx_of(b);
    if (!c->graphs.enabled || !c->graphable)
        return 0;
    return cuda_graphs_begin(&c->graphs, owner, cache, c->n_tokens, c->max_blocks, c->stream);
}

static void cuda_graph_end(vb_backend *b)
{
    cuda_ctx *c = ctx_of(b);
    if (c->graphs.capturing) {
        cuda_graphs_end(&c->graphs, c->stream);
        b->graphs_recorded++;
    }
}

static void cuda_embed(vb_backend *b, void *out, const void *table, int hidden, int vocab_start,
                       int vocab_local)
{
    cuda_ctx *c = ctx_of(b);
    CUDA_CHECK(vb_embed_f16(out, table, c->d_tokens, c->n_tokens, hidden, vocab_start,
                            vocab_local, c->stream));
    op_done(c, "embed");
}

/* The GEMV kernel for steps of few rows, cuBLAS otherwise. */
static bool use_gemv(const cuda_ctx *c, int T, int n_in, const void *x, const void *w)
{
    return !c->invariant && !c->no_gemv && T <= c->gemv_max_rows &&
           vb_gemv_supported(T, n_in, x, w);
}

/* A projection in --batch-invariant mode: out's bits depend on x's row,
 * w and the bias only, at every T. cuBLASLt's split-K-free algorithms
 * where gemm_lt_inv_prepare accepts the shape (a shape keeps its path for
 * the run: prepared once, at its first use, which is a prefill step's,
 * never inside a decode graph's capture), else the fixed-order kernel
 * (kernels/gemm_invariant.cu). The shapes the kernel lacks (n_in not a
 * multiple of 16, unaligned rows) are no model's. */
static void gemm_invariant(cuda_ctx *c, void *out, bool out_f32, const void *x, const void *w,
                           const void *bias, int T, int n_in, int n_out)
{
    if (!c->invariant_own_gemm && gemm_lt_inv_prepare(c->inv_lt, w, n_in, n_out, out_f32)) {
        /* never a silent switch of path for one call: that would change its bits */
        if (((uintptr_t)x | (uintptr_t)w | (uintptr_t)out) % 16 != 0 ||
            !gemm_lt_inv_run(c->inv_lt, out, out_f32, x, w, T, n_in, n_out))
            vb_cuda_fail("CUDA", "gemm_invariant",
                         "--batch-invariant: a projection with rows not 16-byte aligned",
                         __FILE__, __LINE__);
        /* bias after the rounding, element by element (out_f32: logits, no bias) */
        if (bias)
            CUDA_CHECK(vb_add_bias_f16(out, bias, T, n_out, c->stream));
        return;
    }
    if (!vb_gemm_invariant_supported(n_in, n_out, x, w))
        vb_cuda_fail("CUDA", "gemm_invariant",
                     "--batch-invariant: a projection of a shape the fixed-order kernel "
                     "does not take (n_in not a multiple of 16, or unaligned rows)",
                     __FILE__, __LINE__);
    if (out_f32)
        CUDA_CHECK(vb_gemm_invariant_f32out(out, x, w, bias, T, n_in, n_out, c->inv_workspace,
                                            c->inv_workspace_bytes, c->stream));
    else
        CUDA_CHECK(vb_gemm_invariant_f16(out, x, w, bias, T, n_in, n_out, c->inv_workspace,
                                         c->inv_workspace_bytes, c->stream));
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

/* An fp16 projection with its bias by a GEMM: under --batch-invariant the
 * fixed-order one, else cuBLAS and the bias after it. */
static void gemm_bias(cuda_ctx *c, void *out, const void *x, const void *w, const void *bias,
                      int T, int n_in, int n_out)
{
    if (c->invariant) {
        gemm_invariant(c, out, false, x, w, bias, T, n_in, n_out);
        return;
    }
    gemm(c, out, CUDA_R_16F, x, w, T, n_in, n_out);
    if (bias)
        CUDA_CHECK(vb_add_bias_f16(out, bias, T, n_out, c->stream));
}

static void cuda_matmul(vb_backend *b, void *out, const void *x, const void *w, const void *bias,
                        int T, int n_in, int n_out)
{
    cuda_ctx *c = ctx_of(b);
    if (T == 0)
        return;
    if (!c->invariant && use_gemv(c, T, n_in, x, w))
        CUDA_CHECK(vb_gemv_f16(out, 0, x, w, bias, T, n_in, n_out, c->stream));
    else
        gemm_bias(c, out, x, w, bias, T, n_in, n_out);
    op_done(c, "matmul");
}

/* Whether quantized projections may take the register-dequant GEMV (and
 * its fused forms): not with VB_NO_GEMV=1, and not under --batch-invariant,
 * where every quantized projection is dequantized and multiplied by
 * gemm_invariant like an fp16 one. The GEMV's bits do not depend on the
 * step's rows, but a step of more than VB_QGEMV_MAX_ROWS rows, the kernel
 * the layout takes at one row (SIMT for groups smaller than a step) and
 * cuBLAS's tiling by the row count would: a row's completion would then
 * depend on what shares its steps. */
static bool quant_gemv_on(const cuda_ctx *c)
{
    return !c->no_gemv && !c->invariant;
}

/* A weight-only quantized projection (w a cuda_qweight, cuda_qweight.h).
 * Decode steps of up to VB_QGEMV_MAX_ROWS rows: the GEMV that dequantizes
 * in registers (gemv_quant.cu; x gathered into act order first), reading
 * the packed bytes once; a dequantize-and-GEMM round trip through fp16
 * would move 4x (4-bit) the weight bytes. Its own limit, not
 * VB_GEMV_MAX_ROWS (where cuBLAS on fp16 weights starts to win): up to 8
 * rows the quantized GEMV still reads 4x fewer bytes than any fp16 path.
 * Larger steps, shapes the GEMV does not take, and VB_NO_GEMV=1:
 * dequantize into the shared scratch (quant_dequant.cu, checkpoint
 * column order), then cuBLAS (every step under --batch-invariant, then
 * through gemm_invariant: quant_gemv_on). Measured (tests/bench/RESULTS.md, session
 * 22): the dequantization runs at ~3.7 TB/s, small beside prefill GEMMs
 * and ~4.5 ms a 7B decode step of ~256 rows (c at 1.00x fp16); a fused
 * dequantize + mma.sync GEMM for 9-256 rows (branch wip/qgemm) was 2-5x
 * slower than this path beside cuBLAS's sm_90 kernels. */
static void cuda_matmul_quant(vb_backend *b, void *out, const void *x, const void *w_,
                              const void *bias, int T, int n_in, int n_out)
{
    cuda_ctx *c = ctx_of(b);
    const cuda_qweight *cw = w_;
    const vb_qweight *w = &cw->w;
    if (w->n_in != n_in || w->n_out != n_out)
        vb_cuda_fail("CUDA", "matmul_quant", "quantized weight used with another shape",
                     __FILE__, __LINE__);
    if (T == 0)
        return;
    const vb_qmat m = cuda_qweight_qmat(cw);
    size_t gather = (size_t)T * (size_t)n_in;
    if (quant_gemv_on(c) && vb_gemv_quant_supported(T, w->bits, n_in, x, w->q) &&
        (!w->perm || gather <= cw->scratch_elems)) {
        const uint16_t *xs = x;
        if (w->perm) {
            CUDA_CHECK(vb_quant_gather_f16(cw->scratch, x, w->perm, T, n_in, c->stream));
            xs = cw->scratch;
        }
        CUDA_CHECK(vb_gemv_quant_f16(out, xs, &m, bias, T, c->stream));
    } else {
        if (!cw->scratch || cw->scratch_elems < (size_t)n_out * (size_t)n_in)
            vb_cuda_fail("CUDA", "matmul_quant", "no dequantization scratch for the weight "
                         "(cuda_qweights_attach_scratch)", __FILE__, __LINE__);
        CUDA_CHECK(vb_quant_dequant_f16(cw->scratch, &m, c->stream));
        gemm_bias(c, out, x, cw->scratch, bias, T, n_in, n_out);
    }
    op_done(c, "matmul_quant");
}

/* The n matrices joined at load as one (m: their rows one after another,
 * rows[i] each), when the step takes the fused GEMV; false otherwise. */
static bool joined_qmat(const cuda_ctx *c, const cuda_qweight *const w[], int n, int T,
                        const void *x, vb_qmat *m, int rows[VB_QGEMV_MAX_SEGS])
{
    if (!quant_gemv_on(c) || c->no_fused || T <= 0 || !cuda_qweights_adjacent(w, n) ||
        !vb_gemv_quant_supported(T, w[0]->w.bits, w[0]->w.n_in, x, w[0]->w.q))
        return false;
    *m = cuda_qweight_qmat(w[0]); /* joined: no perm, no g_idx */
    m->n_out = 0;
    for (int i = 0; i < n; i++)
        m->n_out += rows[i] = w[i]->w.n_out;
    m->sz_tiles = w[0]->sz_tiles_rows == m->n_out ? w[0]->sz_tiles : NULL; /* the group's */
    return true;
}

/* Quantized projections of one input joined at load
 * (cuda_qweights_join_layers) in one launch of the register-dequant GEMV,
 * each matrix's rows to its own output: for the decode steps it takes
 * (matmul_quant's conditions, no act order); false otherwise (the
 * forward's one matmul_quant each). */
static bool quant_segments(cuda_ctx *c, void *const out[], const void *x,
                           const cuda_qweight *const w[], const void *const bias[], int n, int T)
{
    vb_qmat m;
    int rows[VB_QGEMV_MAX_SEGS];
    if (!joined_qmat(c, w, n, T, x, &m, rows))
        return false;
    CUDA_CHECK(vb_gemv_quant_segs_f16((uint16_t *const *)out, x, &m,
                                      (const uint16_t *const *)bias, rows, n, T, c->stream));
    return true;
}

static bool cuda_matmul_qkv_quant(vb_backend *b, void *const out[3], const void *x,
                                  const void *const w[3], const void *const bias[3], int T,
                                  int n_in, const int n_out[3])
{
    cuda_ctx *c = ctx_of(b);
    const cuda_qweight *const cw[3] = {w[0], w[1], w[2]};
    for (int i = 0; i < 3; i++)
        if (cw[i]->w.n_in != n_in || cw[i]->w.n_out != n_out[i])
            vb_cuda_fail("CUDA", "matmul_qkv_quant", "quantized weight used with another shape",
                         __FILE__, __LINE__);
    if (!quant_segments(c, out, x, cw, bias, 3, T))
        return false;
    op_done(c, "matmul_qkv_quant");
    return true;
}

/* The kernels' form of the forward's norm (NULL: none). */
static const vb_gemv_norm *gemv_norm(const vb_norm_in *n, vb_gemv_norm *out)
{
    if (!n)
        return NULL;
    *out = (vb_gemv_norm){n->residual, n->w, n->eps};
    return out;
}

/* The norm fold's o and down projections (backend.h): the GEMV's
 * epilogue adds each output, rounded, to the residual stream
 * (vb_gemv_quant_resid_f16), where the step takes the mma kernel;
 * VB_NORM_FOLD (on by default). */
static bool cuda_matmul_quant_resid(vb_backend *b, void *residual, const void *x, const void *w_,
                                    int T, int n_in, int n_out)
{
    cuda_ctx *c = ctx_of(b);
    const cuda_qweight *cw = w_;
    const vb_qweight *w = &cw->w;
    if (w->n_in != n_in || w->n_out != n_out)
        vb_cuda_fail("CUDA", "matmul_quant_resid", "quantized weight used with another shape",
                     __FILE__, __LINE__);
    if (!c->norm_fold || !quant_gemv_on(c) || T <= 0 || w->perm ||
        !vb_gemv_quant_supported(T, w->bits, n_in, x, w->q))
        return false;
    const vb_qmat m = cuda_qweight_qmat(cw);
    const cudaError_t e = vb_gemv_quant_resid_f16(residual, x, &m, T, c->stream);
    if (e == cudaErrorNotSupported)
        return false; /* the SIMT kernel's layout: nothing launched */
    CUDA_CHECK(e);
    op_done(c, "matmul_quant_resid");
    return true;
}

/* matmul_qkv_quant with rope_kv_write in the GEMV's epilogue
 * (the default; VB_QGEMV_EPILOGUE=0 turns it off; kernels/gemv_quant.cu's paired rows): the same
 * bits in one launch. An int8 cache and the layouts the paired kernel
 * does not take go the two-kernel way. */
static bool cuda_matmul_qkv_rope_quant(vb_backend *b, void *const out[3], const void *x,
                                       const void *const w[3], const void *const bias[3], int T,
                                       int n_in, const int n_out[3], void *k_cache,
                                       void *v_cache, const void *inv_freq, float cos_sin_scale,
                                       int kv_heads, int head_dim, int block_size,
                                       const vb_norm_in *norm)
{
    cuda_ctx *c = ctx_of(b);
    const cuda_qweight *const cw[3] = {w[0], w[1], w[2]};
    vb_qmat m;
    int rows[VB_QGEMV_MAX_SEGS];
    if ((norm && !c->norm_fold) || !c->qgemv_epilogue || c->no_rope_fusion ||
        b->kv_dtype == VB_KV_INT8 ||
        !joined_qmat(c, cw, 3, T, x, &m, rows) || rows[0] != n_out[0] || rows[1] != n_out[1] ||
        rows[2] != n_out[2] || m.n_in != n_in || head_dim % 16 ||
        !vb_gemv_quant_pairs_supported(&m, T, x))
        return false;
    vb_gemv_rope r = {inv_freq,          cos_sin_scale, c->d_positions, c->d_token_seq,
                      c->d_block_tables, c->max_blocks, block_size,     head_dim,
                      kv_heads,          k_cache,       v_cache};
    vb_gemv_norm gn;
    const cudaError_t e = vb_gemv_quant_qkv_rope_f16((uint16_t *const *)out, x, &m,
                                                     (const uint16_t *const *)bias, rows, T, &r,
                                                     gemv_norm(norm, &gn), c->stream);
    if (e == cudaErrorNotSupported && norm)
        return false; /* nothing launched: the forward takes rmsnorm first */
    CUDA_CHECK(e);
    op_done(c, norm ? "matmul_qkv_rope_quant+norm" : "matmul_qkv_rope_quant");
    return true;
}

/* gate into out, up into the shared scratch (free during a projection
 * without act order: it holds gathered x or a dequantized matrix only
 * inside one matmul_quant), then silu(gate) * up into out. */
static bool cuda_matmul_gate_up_quant(vb_backend *b, void *out, const void *x,
                                      const void *w_gate, const void *w_up, int T, int n_in,
                                      int n_out, const vb_norm_in *norm)
{
    cuda_ctx *c = ctx_of(b);
    const cuda_qweight *const cw[2] = {w_gate, w_up};
    for (int i = 0; i < 2; i++)
        if (cw[i]->w.n_in != n_in || cw[i]->w.n_out != n_out)
            vb_cuda_fail("CUDA", "matmul_gate_up_quant",
                         "quantized weight used with another shape", __FILE__, __LINE__);
    vb_qmat m;
    int rows[VB_QGEMV_MAX_SEGS];
    if (norm && !c->norm_fold)
        return false;
    if (c->qgemv_epilogue && joined_qmat(c, cw, 2, T, x, &m, rows) &&
        vb_gemv_quant_pairs_supported(&m, T, x)) {
        /* the default (VB_QGEMV_EPILOGUE=1): silu(gate) * up in the GEMV's epilogue,
         * the bits of the two kernels below */
        vb_gemv_norm gn;
        const cudaError_t e =
            vb_gemv_quant_silu_f16(out, x, &m, T, gemv_norm(norm, &gn), c->stream);
        if (e == cudaErrorNotSupported && norm)
            return false; /* nothing launched: the forward takes rmsnorm first */
        CUDA_CHECK(e);
        op_done(c, norm ? "matmul_gate_up_quant+norm" : "matmul_gate_up_quant");
        return true;
    }
    if (norm) /* the two-kernel way does not make x */
        return false;
    if (!cw[1]->scratch || cw[1]->scratch_elems < (size_t)T * (size_t)n_out)
        return false;
    void *const outs[2] = {out, cw[1]->scratch};
    if (!quant_segments(c, outs, x, cw, NULL, 2, T))
        return false;
    CUDA_CHECK(vb_silu_gate_f16(out, out, cw[1]->scratch, (size_t)T * n_out, c->stream));
    op_done(c, "matmul_gate_up_quant");
    return true;
}

/* The fused small-step projections (backend.h): the GEMV kernel's
 * segments and gate/up modes; false (the forward's separate matmuls) when
 * the step is too large for a GEMV, with VB_NO_GEMV=1, or for shapes the
 * kernel does not take. */
/* The q, k and v segments of one GEMV launch; false when the step does
 * not take the fused GEMV. */
static bool qkv_segments(const cuda_ctx *c, vb_gemv_seg segs[3], void *const out[3],
                         const void *x, const void *const w[3], const void *const bias[3], int T,
                         int n_in, const int n_out[3])
{
    if (c->no_fused || T <= 0)
        return false;
    for (int i = 0; i < 3; i++) {
        if (!use_gemv(c, T, n_in, x, w[i]))
            return false;
        segs[i] = (vb_gemv_seg){w[i], bias[i], out[i], n_out[i]};
    }
    return true;
}

static bool cuda_matmul_qkv(vb_backend *b, void *const out[3], const void *x,
                            const void *const w[3], const void *const bias[3], int T, int n_in,
                            const int n_out[3])
{
    cuda_ctx *c = ctx_of(b);
    if (c->invariant) {
        /* --batch-invariant: steps of up to 8 rows in one chain launch, the
         * bits of the three projections gemm_invariant would make */
        if (c->no_fused || c->invariant_own_gemm ||
            !gemm_lt_inv_run_qkv(c->inv_lt, out, x, w, bias, T, n_in, n_out, NULL))
            return false;
        op_done(c, "matmul_qkv");
        return true;
    }
    vb_gemv_seg segs[3];
    if (!qkv_segments(c, segs, out, x, w, bias, T, n_in, n_out))
        return false;
    CUDA_CHECK(vb_gemv_multi_f16(segs, 3, 0, x, T, n_in, c->stream));
    op_done(c, "matmul_qkv");
    return true;
}

/* matmul_qkv with the RoPE / KV write in the GEMV's epilogue
 * (kernels/gemv_qkv_rope.cu): one kernel where the unfused path has two on
 * a decode step's chain (a1 4.19 -> 4.15 ms, tests/bench/RESULTS.md).
 * VB_NO_ROPE_FUSION=1 keeps the two kernels, to compare. */
static bool cuda_matmul_qkv_rope(vb_backend *b, void *const out[3], const void *x,
                                 const void *const w[3], const void *const bias[3], int T,
                                 int n_in, const int n_out[3], void *k_cache, void *v_cache,
                                 const void *inv_freq, float cos_sin_scale, int kv_heads,
                                 int head_dim, int block_size, const vb_norm_in *norm)
{
    cuda_ctx *c = ctx_of(b);
    vb_gemv_seg segs[3];
    if (norm) /* the fp16 GEMVs take no norm (yet) */
        return false;
    /* The epilogue writes fp16 rows; an int8 cache (--kv-cache-dtype
     * int8) would need the row's max over the warps of several pairs
     * first. Such steps take the unfused path (matmul_qkv, then
     * rope_kv_write's int8 kernel): one more small kernel a layer. */
    if (b->kv_dtype == VB_KV_INT8)
        return false;
    vb_gemv_rope r = {inv_freq,          cos_sin_scale, c->d_positions, c->d_token_seq,
                      c->d_block_tables, c->max_blocks, block_size,     head_dim,
                      kv_heads,          k_cache,       v_cache};
    if (c->invariant) {
        /* --batch-invariant: the chain launch of matmul_qkv with rope_kv_write's
         * rotation and cache store in its epilogue, the same bits */
        if (c->no_fused || c->no_rope_fusion || c->invariant_own_gemm ||
            !gemm_lt_inv_run_qkv(c->inv_lt, out, x, w, bias, T, n_in, n_out, &r))
            return false;
        op_done(c, "matmul_qkv_rope");
        return true;
    }
    if (c->no_rope_fusion || !qkv_segments(c, segs, out, x, w, bias, T, n_in, n_out) ||
        n_out[0] % head_dim || n_out[1] % head_dim || n_out[2] % head_dim)
        return false;
    CUDA_CHECK(vb_gemv_qkv_rope_f16(segs, x, T, n_in, &r, c->qkv_shallow, c->stream));
    op_done(c, "matmul_qkv_rope");
    return true;
}

static bool cuda_matmul_gate_up(vb_backend *b, void *out, const void *x, const void *w_gate,
                                const void *w_up, int T, int n_in, int n_out)
{
    cuda_ctx *c = ctx_of(b);
    if (c->invariant) {
        /* --batch-invariant: steps of up to 8 rows in one chain launch, the
         * bits of the two projections and silu_gate */
        if (c->no_fused || c->invariant_own_gemm ||
            !gemm_lt_inv_run_gate_up(c->inv_lt, out, x, w_gate, w_up, T, n_in, n_out))
            return false;
        op_done(c, "matmul_gate_up");
        return true;
    }
    if (c->no_fused || T <= 0 || !use_gemv(c, T, n_in, x, w_gate) ||
        !use_gemv(c, T, n_in, x, w_up))
        return false;
    CUDA_CHECK(vb_gemv_silu_gate_f16(out, x, w_gate, w_up, T, n_in, n_out,
                                     c->stream));
    op_done(c, "matmul_gate_up");
    return true;
}

static void cuda_rmsnorm(vb_backend *b, void *out, void *residual, const void *add, const void *w,
                         int rows, int dim, float eps)
{
    cuda_ctx *c = ctx_of(b);
    CUDA_CHECK(vb_rmsnorm_residual_f16(out, residual, add, w, rows, dim, eps, c->stream));
    op_done(c, "rmsnorm");
}

static void cuda_rmsnorm_rows(vb_backend *b, void *x, const void *w, int rows, int dim, float eps)
{
    cuda_ctx *c = ctx_of(b);
    CUDA_CHECK(vb_rmsnorm_rows_f16(x, w, rows, dim, eps, c->stream));
    op_done(c, "rmsnorm_rows");
}

static void cuda_resid_load(vb_backend *b, void *residual, const void *x, size_t n)
{
    cuda_ctx *c = ctx_of(b);
    CUDA_CHECK(vb_resid_load_f16(residual, x, n, c->stream));
    op_done(c, "resid_load");
}

static void cuda_rope_kv_write(vb_backend *b, void *q, void *k, const void *v, void *k_cache,
                               void *v_cache, const void *inv_freq, float cos_sin_scale,
                               int heads, int kv_heads, int head_dim, int block_size)
{
    cuda_ctx *c = ctx_of(b);
    if (b->kv_dtype == VB_KV_INT8)
        CUDA_CHECK(vb_rope_kv_write_kv8(q, k, v, k_cache, v_cache, inv_freq, cos_sin_scale,
                                        c->d_positions, c->d_token_seq, c->d_block_tables,
                                        c->max_blocks, c->n_tokens, heads, kv_heads, head_dim,
                                        block_size, c->stream));
    else
        CUDA_CHECK(vb_rope_kv_write_f16(q, k, v, k_cache, v_cache, inv_freq, cos_sin_scale,
                                        c->d_positions, c->d_token_seq, c->d_block_tables,
                                        c->max_blocks, c->n_tokens, heads, kv_heads, head_dim,
                                        block_size, c->stream));
    op_done(c, "rope_kv_write");
}

/* The per-token kernel (attention.cu) on T tokens (token_list NULL: all
 * of the step), on an fp16 or int8 cache. */
static void attention_per_token(cuda_ctx *c, bool kv8, void *out, const void *q,
                                const void *k_cache, const void *v_cache, const int *token_list,
                                int T, int heads, int kv_heads, int head_dim, int block_size,
                                float scale)
{
    if (kv8)
        CUDA_CHECK(vb_attention_kv8(out, q, k_cache, v_cache, token_list, c->d_positions,
                                    c->d_token_seq, c->d_block_tables, c->max_blocks, T, heads,
                                    kv_heads, head_dim, block_size, scale, c->stream));
    else
        CUDA_CHECK(vb_attention_f16(out, q, k_cache, v_cache, token_list, c->d_positions,
                                    c->d_token_seq, c->d_block_tables, c->max_blocks, T, heads,
                                    kv_heads, head_dim, block_size, scale, c->stream));
}

/* --batch-invariant decode attention on GPUs without the tensor-core
 * kernel (V100; on newer GPUs a shape or length it lacks is refused, as
 * there is no workspace for this path): the CUDA-core kernel with
 * slices of VB_DECODE_INVARIANT_SLICE positions (boundaries by position
 * alone), a block per GQA group, always through the combine (splits >= 2,
 * so the engine's table width does not change a token's path), the step's
 * tokens in chunks the workspace holds. decode_ctx: the engine's table
 * width in positions, which every token's context is within. */
static void attention_decode_invariant(cuda_ctx *c, bool kv8, void *out, const void *q,
                                       const void *k_cache, const void *v_cache, int heads,
                                       int kv_heads, int head_dim, int block_size, float scale,
                                       int decode_ctx)
{
    int splits = (decode_ctx + VB_DECODE_INVARIANT_SLICE - 1) / VB_DECODE_INVARIANT_SLICE;
    splits = splits < 2 ? 2 : splits;
    size_t token_bytes = vb_attention_decode_token_floats(heads, head_dim, splits) * sizeof(float);
    if (!c->inv_decode_workspace || !vb_attention_decode_supported(heads, kv_heads, head_dim) ||
        splits > VB_DECODE_MAX_SPLITS || token_bytes > c->inv_decode_workspace_bytes)
        vb_cuda_fail("CUDA", "attention",
                     "--batch-invariant: decode attention of a shape or length the fixed-split "
                     "kernels do not take (without the sm_80+ kernel: at most 8 query heads a "
                     "key/value head and 32,768 positions)",
                     __FILE__, __LINE__);
    const int chunk = (int)(c->inv_decode_workspace_bytes / token_bytes);
    for (int i0 = 0; i0 < c->n_decode; i0 += chunk) {
        const int n = c->n_decode - i0 < chunk ? c->n_decode - i0 : chunk;
        if (kv8)
            CUDA_CHECK(vb_attention_decode_kv8(
                out, c->inv_decode_workspace, q, k_cache, v_cache, c->d_decode + i0,
                c->d_positions, c->d_token_seq, c->d_block_tables, c->max_blocks, n, heads,
                kv_heads, head_dim, block_size, scale, heads / kv_heads, splits,
                VB_DECODE_INVARIANT_SLICE, c->stream));
        else
            CUDA_CHECK(vb_attention_decode_f16(
                out, c->inv_decode_workspace, q, k_cache, v_cache, c->d_decode + i0,
                c->d_positions, c->d_token_seq, c->d_block_tables, c->max_blocks, n, heads,
                kv_heads, head_dim, block_size, scale, heads / kv_heads, splits,
                VB_DECODE_INVARIANT_SLICE, c->stream));
    }
}

/* Each kernel below has an int8 twin (--kv-cache-dtype int8, the _kv8
 * entry points of kernels.h) that dequantizes K/V as it loads them and
 * otherwise runs the same code, so the choice of kernel is the same for
 * both caches. */
static void cuda_attention(vb_backend *b, void *out, const void *q, const void *k_cache,
                           const void *v_cache, int heads, int kv_heads, int head_dim,
                           int block_size, float scale)
{
    cuda_ctx *c = ctx_of(b);
    const bool kv8 = b->kv_dtype == VB_KV_INT8;
    if (head_dim % 16 != 0 || c->attention_per_token) {
        /* diagnostic / unusual head sizes: the per-token kernel for all */
        attention_per_token(c, kv8, out, q, k_cache, v_cache, NULL, c->n_tokens, heads, kv_heads,
                            head_dim, block_size, scale);
        return;
    }
    /* Decode tokens: the tensor-core kernel (kernels/attention_decode_mma.cu,
     * sm_80+) once the step has (token, kv head, split) blocks for a
     * quarter of the SMs, counting splits of VB_DECODE_MMA_SPLIT positions
     * over the block-table width (like its grid: not this step's lengths,
     * so a recorded graph's choice holds). On an H200 it was 1.6-3x the
     * CUDA-core kernel from there on (T = 8 at 1,024 positions, T = 1 at
     * 16,384) and slower below (T = 1 at 1,024: 20 us against 12;
     * tests/bench/RESULTS.md, 2026-12-02). The CUDA-core kernel below for
     * those small steps, V100, shapes the mma kernel lacks and under
     * VB_DECODE_WHOLE_GROUPS. Also, from 2 tokens on, where the table is
     * one split wide and the launch takes the kernel's deep pipeline (a
     * block an SM): on an H100 at 384 positions, T = 8 7.3 us against the
     * CUDA-core kernel's 15.0, T = 2 7.2 against 7.9; T = 1 6.7 against
     * 6.1 stays with the CUDA-core kernel (RESULTS.md, session 52). */
    /* the choice by the engine's table width (as before VB_TABLE_BUCKETS);
     * the grid by the stride (c->max_blocks) */
    int decode_ctx = c->table_blocks * block_size;
    int mma_splits = vb_attention_decode_mma_splits(decode_ctx);
    bool mma_fits = c->decode_mma_workspace && mma_splits <= VB_DECODE_MMA_MAX_SPLITS &&
                    vb_attention_decode_mma_supported(heads, kv_heads, head_dim);
    if (c->invariant && c->n_decode > 0 && !mma_fits) {
        attention_decode_invariant(c, kv8, out, q, k_cache, v_cache, heads, kv_heads, head_dim,
                                   block_size, scale, decode_ctx);
    } else if (c->n_decode > 0 && mma_fits &&
               (c->invariant ||
                (!c->decode_whole_groups &&
                 (4L * c->n_decode * kv_heads * mma_splits >= c->n_sm ||
                  (mma_splits == 1 && c->n_decode >= 2 &&
                   vb_attention_decode_mma_deep(c->n_decode, kv_heads, head_dim, 1)))))) {
        if (kv8)
            CUDA_CHECK(vb_attention_decode_mma_kv8(
                out, c->decode_mma_workspace, c->decode_mma_workspace_bytes, q, k_cache, v_cache,
                c->d_decode, c->d_positions, c->d_token_seq, c->d_block_tables, c->max_blocks,
                c->n_decode, heads, kv_heads, head_dim, block_size, scale, c->stream));
        else
            CUDA_CHECK(vb_attention_decode_mma_f16(
                out, c->decode_mma_workspace, c->decode_mma_workspace_bytes, q, k_cache, v_cache,
                c->d_decode, c->d_positions, c->d_token_seq, c->d_block_tables, c->max_blocks,
                c->n_decode, heads, kv_heads, head_dim, block_size, scale, c->stream));
    } else if (vb_attention_decode_supported(heads, kv_heads, head_dim)) {
        int max_ctx = c->max_blocks * block_size;
        int per_block = c->decode_whole_groups
                            ? heads / kv_heads
                            : vb_attention_decode_heads_per_block(c->n_decode, heads, kv_heads,
                                                                  head_dim, max_ctx, c->n_sm,
                                                                  c->l2_bytes);
        int splits = vb_attention_decode_splits(c->n_decode, heads / per_block, max_ctx, c->n_sm);
        if (kv8)
            CUDA_CHECK(vb_attention_decode_kv8(out, c->decode_workspace, q, k_cache, v_cache,
                                               c->d_decode, c->d_positions, c->d_token_seq,
                                               c->d_block_tables, c->max_blocks, c->n_decode,
                                               heads, kv_heads, head_dim, block_size, scale,
                                               per_block, splits, 0, c->stream));
        else
            CUDA_CHECK(vb_attention_decode_f16(out, c->decode_workspace, q, k_cache, v_cache,
                                               c->d_decode, c->d_positions, c->d_token_seq,
                                               c->d_block_tables, c->max_blocks, c->n_decode,
                                               heads, kv_heads, head_dim, block_size, scale,
                                               per_block, splits, 0, c->stream));
    } else {
        attention_per_token(c, kv8, out, q, k_cache, v_cache, c->d_decode, c->n_decode, heads,
                            kv_heads, head_dim, block_size, scale);
    }
    /* prefill tiles: on Hopper's fp16 cache the wgmma kernel (128-key
     * steps unless VB_PREFILL_WGMMA says otherwise; never under
     * --batch-invariant, whose bits are the mma32 kernel's), else mma.sync
     * with the softmax in registers where the GPU has it (sm_80+: 32 rows
     * a warp on the fp16 cache, 16 on the int8 one or with
     * VB_PREFILL_MMA16), WMMA otherwise */
    bool mma = c->n_tiles > 0 && (c->invariant || !c->prefill_wmma) &&
               vb_attention_prefill_mma_supported(heads, kv_heads, head_dim);
    if (mma)
        mma_tiles(c, vb_attention_prefill_mma_tile_tokens(heads, kv_heads));
    if (mma && kv8)
        CUDA_CHECK(vb_attention_prefill_mma_kv8(out, q, k_cache, v_cache, c->d_positions,
                                                c->d_mtiles, c->n_mtiles, c->d_block_tables,
                                                c->max_blocks, heads, kv_heads, head_dim,
                                                block_size, scale, c->stream));
    else if (mma && c->prefill_wgmma && !c->invariant && !c->prefill_mma16 &&
             vb_attention_prefill_wgmma_supported(heads, kv_heads, head_dim))
        CUDA_CHECK(vb_attention_prefill_wgmma_f16(out, q, k_cache, v_cache, c->d_positions,
                                                  c->d_mtiles, c->n_mtiles, c->d_block_tables,
                                                  c->max_blocks, heads, kv_heads, head_dim,
                                                  block_size, scale, c->prefill_wgmma - 1,
                                                  c->stream));
    else if (mma && !c->prefill_mma16 &&
             vb_attention_prefill_mma32_supported(heads, kv_heads, head_dim))
        CUDA_CHECK(vb_attention_prefill_mma32_f16(out, q, k_cache, v_cache, c->d_positions,
                                                  c->d_mtiles, c->n_mtiles, c->d_block_tables,
                                                  c->max_blocks, heads, kv_heads, head_dim,
                                                  block_size, scale, c->stream));
    else if (mma)
        CUDA_CHECK(vb_attention_prefill_mma_f16(out, q, k_cache, v_cache, c->d_positions,
                                                c->d_mtiles, c->n_mtiles, c->d_block_tables,
                                                c->max_blocks, heads, kv_heads, head_dim,
                                                block_size, scale, c->stream));
    else if (kv8)
        CUDA_CHECK(vb_attention_prefill_kv8(out, q, k_cache, v_cache, c->d_positions,
                                            c->d_tiles, c->n_tiles, c->d_block_tables,
                                            c->max_blocks, heads, kv_heads, head_dim,
                                            block_size, scale, c->stream));
    else
        CUDA_CHECK(vb_attention_prefill_f16(out, q, k_cache, v_cache, c->d_positions,
                                            c->d_tiles, c->n_tiles, c->d_block_tables,
                                            c->max_blocks, heads, kv_heads, head_dim,
                                            block_size, scale, c->stream));
    op_done(c, "attention");
}

static void cuda_silu_gate(vb_backend *b, void *out, const void *gate, const void *up, size_t n)
{
    cuda_ctx *c = ctx_of(b);
    CUDA_CHECK(vb_silu_gate_f16(out, gate, up, n, c->stream));
    op_done(c, "silu_gate");
}

static void cuda_last_rows(vb_backend *b, void *out, const void *in, int dim)
{
    cuda_ctx *c = ctx_of(b);
    CUDA_CHECK(vb_last_rows_f16(out, in, c->d_seq_start, c->n_seqs, dim, c->stream));
    op_done(c, "last_rows");
}

static void cuda_lm_head(vb_backend *b, float *logits, const void *x, const void *w, int rows,
                         int hidden, int vocab_local)
{
    cuda_ctx *c = ctx_of(b);
    if (rows == 0)
        return;
    if (c->invariant)
        gemm_invariant(c, logits, true, x, w, NULL, rows, hidden, vocab_local);
    else if (use_gemv(c, rows, hidden, x, w))
        CUDA_CHECK(vb_gemv_f16(logits, 1, x, w, NULL, rows, hidden, vocab_local, c->stream));
    else
        gemm(c, logits, CUDA_R_32F, x, w, rows, hidden, vocab_local);
    op_done(c, "lm_head");
}

/* --batch-invariant's all-reduce: NCCL picks its algorithm, protocol and
 * chunking by the message size, so the order in which an element's
 * partial sums meet would depend on the step's row count. Instead every
 * rank gathers all partials and sums them itself, in rank order (fp32,
 * rounded once: at tp 2 the bits of NCCL's fp16 sum), the same on every
 * rank and at every step size. The gather buffer is made once, for the
 * run's largest step, outside any graph capture: the first all-reduce
 * is a prefill step's. */
static void all_reduce_rank_order(cuda_ctx *c, void *buf, size_t n)
{
    if (!c->rank_parts) {
        enum cudaStreamCaptureStatus cs;
        CUDA_CHECK(cudaStreamIsCapturing(c->stream, &cs));
        if (cs != cudaStreamCaptureStatusNone)
            vb_cuda_fail("CUDA", "all_reduce_sum",
                         "--batch-invariant: the first all-reduce of the run inside a CUDA "
                         "graph capture", __FILE__, __LINE__);
        if (c->n_tokens <= 0 || c->max_rows < c->n_tokens)
            vb_cuda_fail("CUDA", "all_reduce_sum",
                         "--batch-invariant: an all-reduce outside a step, or of more rows "
                         "than the step's largest", __FILE__, __LINE__);
        const size_t row = n / (size_t)c->n_tokens; /* every all-reduce is T rows of H */
        c->cap_rank_parts = (size_t)c->max_rows * row * (size_t)c->n_ranks;
        CUDA_CHECK(cudaMalloc((void **)&c->rank_parts, c->cap_rank_parts * 2));
    }
    if (n * (size_t)c->n_ranks > c->cap_rank_parts)
        vb_cuda_fail("CUDA", "all_reduce_sum",
                     "--batch-invariant: an all-reduce larger than the run's largest step",
                     __FILE__, __LINE__);
    NCCL_CHECK_COMM(c->comm,
                    ncclAllGather(buf, c->rank_parts, n, ncclHalf, c->comm, c->stream));
    CUDA_CHECK(vb_sum_ranks_f16(buf, c->rank_parts, c->n_ranks, n, c->stream));
}

static void cuda_all_reduce_sum(vb_backend *b, void *buf, size_t n)
{
    cuda_ctx *c = ctx_of(b);
    if (!c->comm || n == 0)
        return;
    if (c->invariant && c->n_ranks > 1)
        all_reduce_rank_order(c, buf, n);
    else
        NCCL_CHECK_COMM(c->comm,
                        ncclAllReduce(buf, buf, n, ncclHalf, ncclSum, c->comm, c->stream));
    op_done(c, "all_reduce_sum");
}

static int cuda_summarize(vb_backend *b, const float *logits, const int *logit_rows,
                          const sampler_row *rows, int n, int vocab_offset, int n_local,
                          int n_cand, void *summaries)
{
    cuda_ctx *c = ctx_of(b);
    if (!c->sampler)
        c->sampler = cuda_sampler_create(c->stream, c->sampler_pass1_chunks);
    int r = cuda_sampler_summarize(c->sampler, logits, logit_rows, rows, n, vocab_offset, n_local,
                                   n_cand, summaries);
    op_done(c, "sampler");
    return r;
}

static int cuda_sample(vb_backend *b, const float *logits, const int *logit_rows,
                       const sampler_row *rows, int n, int n_vocab, int n_cand, sample_result *out)
{
    cuda_ctx *c = ctx_of(b);
    if (c->n_ranks > 1)
        return -1; /* a rank's summaries are not the merged ones */
    if (!c->sampler)
        c->sampler = cuda_sampler_create(c->stream, c->sampler_pass1_chunks);
    int r = cuda_sampler_sample(c->sampler, logits, logit_rows, rows, n, n_vocab, n_cand, out);
    if (r == 0) /* declined: summarize runs next and marks the op (one profile call a step) */
        op_done(c, "sampler");
    return r;
}

static void cuda_destroy(vb_backend *b)
{
    if (!b)
        return;
    cuda_ctx *c = ctx_of(b);
    CUDA_CHECK(cudaStreamSynchronize(c->stream));
    if (c->graphs.captured)
        vb_info("CUDA graphs: %ld decode graphs recorded, %ld steps replayed", c->graphs.captured,
                c->graphs.replayed);
    cuda_graphs_clear(&c->graphs);
    if (c->prof) {
        cuda_profile_report(c->prof);
        cuda_profile_destroy(c->prof);
    }
    cuda_sampler_destroy(c->sampler);
    int *bufs[] = {c->d_tokens,       c->d_positions, c->d_seq_start, c->d_token_seq,
                   c->d_block_tables, c->d_decode,    c->d_tiles,     c->d_mtiles};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i])
            CUDA_CHECK(cudaFree(bufs[i]));
    free(c->h_token_seq);
    free(c->h_decode);
    free(c->h_tiles);
    free(c->h_mtiles);
    free(c->h_tokens);
    free(c->h_positions);
    free(c->h_seq_start);
    CUBLAS_CHECK(cublasDestroy(c->cublas));
    if (c->cublas_workspace)
        CUDA_CHECK(cudaFree(c->cublas_workspace));
    if (c->decode_workspace)
        CUDA_CHECK(cudaFree(c->decode_workspace));
    if (c->decode_mma_workspace)
        CUDA_CHECK(cudaFree(c->decode_mma_workspace));
    if (c->inv_decode_workspace)
        CUDA_CHECK(cudaFree(c->inv_decode_workspace));
    if (c->inv_lt) {
        int prepared, accepted, chain;
        gemm_lt_inv_counts(c->inv_lt, &prepared, &accepted, &chain);
        if (prepared)
            vb_info("--batch-invariant: %d of %d projection shapes on cuBLASLt (%d with the "
                    "chain kernel for steps of up to 8 rows), the rest on the fixed-order kernel",
                    accepted, prepared, chain);
        gemm_lt_inv_destroy(c->inv_lt);
    }
    if (c->inv_workspace)
        CUDA_CHECK(cudaFree(c->inv_workspace));
    if (c->rank_parts)
        CUDA_CHECK(cudaFree(c->rank_parts));
    for (int i = 0; i < VB_TIMER_MARKS; i++)
        CUDA_CHECK(cudaEventDestroy(c->timer[i]));
    CUDA_CHECK(cudaStreamDestroy(c->stream));
    free(c);
    free(b);
}

void cuda_kernel_switches_set(const vb_tuning *t)
{
    /* first: the GPU the launchers below and every later choice see */
    vb_device_caps_emulate(vb_tuning_emulate_sm(t));
    /* programmatic dependent launch (kernels/pdl.cuh) where the GPU and
     * the build have it */
    vb_pdl_enable(!t->no_pdl);
    vb_gemv_l1_alloc(t->gemv_l1_alloc);
    vb_gemv_quant_l1_alloc(t->qgemv_l1_alloc);
    vb_gemv_quant_x_shared(t->qgemv_x_shared);
    vb_gemv_quant_ks_by_tiles(t->qgemv_ks_by_tiles);
    vb_gemv_quant_ks_balance(t->qgemv_ks_balance);
    vb_gemv_quant_unroll(vb_tuning_qgemv_unroll(t));
    vb_gemv_quant_ring(t->qgemv_ring);
    vb_gemv_quant_ring_scope(t->qgemv_ring_scope == 1);
    vb_gemv_quant_blocks(t->qgemv_blocks);
    vb_attention_decode_reduce_kernel(t->decode_reduce_kernel);
    vb_attention_decode_mma_stages(vb_tuning_decode_stages(t));
}

vb_backend *cuda_backend_create(ncclComm_t comm, const vb_tuning *t, vb_err *err)
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
    for (int i = 0; i < VB_TIMER_MARKS; i++)
        CUDA_CHECK(cudaEventCreate(&c->timer[i]));
    CUBLAS_CHECK(cublasCreate(&c->cublas));
    CUBLAS_CHECK(cublasSetStream(c->cublas, c->stream));
    /* cuBLAS may take workspace from its own pool, which a graph capture
     * must not do; a fixed one (32 MiB, NVIDIA's figure for Hopper) keeps
     * captured GEMMs valid on replay. */
    CUDA_CHECK(cudaMalloc(&c->cublas_workspace, CUBLAS_WORKSPACE_BYTES));
    CUBLAS_CHECK(cublasSetWorkspace(c->cublas, c->cublas_workspace, CUBLAS_WORKSPACE_BYTES));
    int dev = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&c->n_sm, cudaDevAttrMultiProcessorCount, dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&c->l2_bytes, cudaDevAttrL2CacheSize, dev));
    CUDA_CHECK(cudaMalloc((void **)&c->decode_workspace,
                          vb_attention_decode_workspace_bytes(c->n_sm)));
    vb_tuning defaults;
    if (!t) {
        vb_tuning_defaults(&defaults);
        t = &defaults;
    }
    cuda_kernel_switches_set(t); /* process-wide: one backend a process; first, as the
                                  * emulated GPU (VB_EMULATE_SM) decides what follows */
    /* The sm_80+ decode kernel's partials: a fixed size (its launcher runs the tokens in chunks that
     * fit), 0.47 MB a token at the 7B shape and 16k positions, so 64 MiB
     * takes ~140 such tokens a launch. */
    vb_device_caps caps;
    CUDA_CHECK(vb_device_caps_get(&caps));
    if (caps.major >= 8) {
        c->decode_mma_workspace_bytes = (size_t)64 << 20;
        CUDA_CHECK(cudaMalloc((void **)&c->decode_mma_workspace, c->decode_mma_workspace_bytes));
    }
    /* knobs for comparing the small-step paths (tests/bench/bench_gemv.c
     * measured the defaults) */
    c->no_gemv = t->no_gemv;
    c->no_fused = t->no_fused_gemv;
    c->no_rope_fusion = t->no_rope_fusion;
    c->qkv_shallow = t->qkv_shallow;
    c->attention_per_token = t->attention_per_token;
    c->decode_whole_groups = t->decode_whole_groups;
    c->table_buckets = t->table_buckets;
    c->qgemv_epilogue = t->qgemv_epilogue == 1;
    c->norm_fold = t->norm_fold;
    c->prefill_wmma = t->prefill_wmma;
    c->prefill_mma16 = t->prefill_mma16;
    c->prefill_wgmma = t->prefill_wgmma;
    c->gemv_max_rows = t->gemv_max_rows;
    c->sampler_pass1_chunks = t->sampler_pass1_chunks;
    c->invariant_own_gemm = t->invariant_own_gemm;
    if (t->profile)
        c->prof = cuda_profile_create();
    c->comm = comm;
    c->n_ranks = 1;
    if (comm)
        NCCL_CHECK_COMM(comm, ncclCommCount(comm, &c->n_ranks));
    c->graphs.enabled = !c->prof;
    c->pad_decode = true;
    *b = (vb_backend){
        .name = "cuda",
        .act_size = 2,
        .resid_size = 4,
        .ctx = c,
        .kv_int8 = true, /* every attention kernel has its int8 twin */
        .alloc = cuda_alloc,
        .free = cuda_free_buf,
        .to_device = cuda_to_device,
        .to_host = cuda_to_host,
        .timer_mark = cuda_timer_mark,
        .timer_seconds = cuda_timer_seconds,
        .step_begin = cuda_step_begin,
        .graph_begin = cuda_graph_begin,
        .graph_end = cuda_graph_end,
        .embed = cuda_embed,
        .matmul = cuda_matmul,
        .matmul_quant = cuda_matmul_quant,
        .matmul_qkv = cuda_matmul_qkv,
        .matmul_qkv_rope = cuda_matmul_qkv_rope,
        .matmul_qkv_rope_quant = cuda_matmul_qkv_rope_quant,
        .matmul_gate_up = cuda_matmul_gate_up,
        .matmul_qkv_quant = cuda_matmul_qkv_quant,
        .matmul_gate_up_quant = cuda_matmul_gate_up_quant,
        .matmul_quant_resid = cuda_matmul_quant_resid,
        .rmsnorm = cuda_rmsnorm,
        .rmsnorm_rows = cuda_rmsnorm_rows,
        .resid_load = cuda_resid_load,
        .rope_kv_write = cuda_rope_kv_write,
        .attention = cuda_attention,
        .silu_gate = cuda_silu_gate,
        .last_rows = cuda_last_rows,
        .lm_head = cuda_lm_head,
        .all_reduce_sum = cuda_all_reduce_sum,
        .summarize = cuda_summarize,
        .sample = cuda_sample,
        .destroy = cuda_destroy,
    };
    return b;
}

int cuda_backend_invariant_positions(vb_backend *b)
{
    return ctx_of(b)->decode_mma_workspace ? VB_DECODE_MMA_SPLIT * VB_DECODE_MMA_MAX_SPLITS
                                           : VB_DECODE_INVARIANT_SLICE * VB_DECODE_MAX_SPLITS;
}

void cuda_backend_set_mode(vb_backend *b, bool graphs, bool eager, bool batch_invariant)
{
    cuda_ctx *c = ctx_of(b);
    cuda_graphs_clear(&c->graphs);
    c->eager = eager;
    c->graphs.enabled = graphs && !eager && !c->prof;
    c->pad_decode = !eager;
    c->invariant = batch_invariant;
    if (!batch_invariant || c->inv_workspace)
        return;
    /* the fixed-split decode attention: the sm_80+ tensor-core kernel, or
     * without it (V100) the CUDA-core kernel with fixed slices, whose
     * partials take a workspace of their own: 64 MiB, a launch of ~72
     * tokens at the 7B shape and 32K positions, ~570 at 4K */
    if (!c->decode_mma_workspace) {
        c->inv_decode_workspace_bytes = (size_t)64 << 20;
        CUDA_CHECK(cudaMalloc((void **)&c->inv_decode_workspace, c->inv_decode_workspace_bytes));
    }
    /* Split mode's partials for steps of a few rows; larger steps, and
     * shapes beyond it, run in-block with the same bits. Zeroed once: the
     * kernel's tile counters start at zero and every launch leaves them so. */
    c->inv_workspace_bytes = (size_t)64 << 20;
    CUDA_CHECK(cudaMalloc((void **)&c->inv_workspace, c->inv_workspace_bytes));
    CUDA_CHECK(cudaMemset(c->inv_workspace, 0, c->inv_workspace_bytes));
    /* cuBLASLt's algorithms take cuBLAS's workspace (not the kernel's,
     * whose tile counters must stay zero between launches): one GEMM at a
     * time on the one stream, so the two never hold it at once */
    c->inv_lt = gemm_lt_inv_create(c->stream, c->cublas_workspace, CUBLAS_WORKSPACE_BYTES);
}

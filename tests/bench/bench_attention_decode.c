/* Decode attention timed on the GPU, as the backend launches it: the
 * CUDA-core split kernel and its reduce (kernels/attention_decode.cu,
 * "old") and, on sm_80+, the tensor-core kernel and its reduce
 * (kernels/attention_decode_mma.cu, "mma"), per step size T (sequences,
 * one new token each) and context length: the time of one layer's
 * attention, the bandwidth of the K/V bytes it must read (4 * ctx *
 * head_dim * kv_heads bytes a sequence) and that bandwidth as a share of
 * the copy bandwidth measured here first (cudaMemcpy device to device of
 * 1 GiB, read + write bytes / time, median of 5 after a warm-up: the
 * figure scripts/gpu-peaks reports). Shapes: the per-rank heads of
 * Qwen2.5-7B at tp 1 and Qwen2.5-14B at tp 2.
 *
 * The block-table width is the context (the engine sizes it to the
 * longest prompt + new tokens of the run), except for 1,150 positions in
 * a table of 1,280. Query heads a block and the
 * split count of the old kernel are the backend's
 * (vb_attention_decode_heads_per_block, vb_attention_decode_splits); the
 * mma kernel's splits are fixed by position, its workspace is the
 * backend's 64 MiB. The "pick" column says which kernel cuda_attention
 * takes for that step (the rule in src/cuda/backend_cuda.c, restated
 * here).
 *
 * Every sequence has its own KV blocks, laid out in a shuffled order so
 * the block table is followed as in a long-running cache; values are
 * small finite halves. Small steps get up to 256 copies of their cache
 * (256 MB in all), pass i reading copy i mod the count, so their K/V come
 * from memory as in the engine, not from L2. Each figure is a pass's
 * time in a CUDA graph of ITERS passes, PDL as the backend sets it
 * (bench_time_graph_us): what a decode step's graph replays, without the
 * host's launch cost, which is most of an eager launch of a few
 * microseconds.
 *
 * With a third argument int8, both kernels' int8 twins on an int8 cache
 * (--kv-cache-dtype int8, kernels/kv_int8.cuh): the bytes they must read
 * are then 2 * ctx * (head_dim + 4) * kv_heads a sequence.
 *
 * usage: bench_attention_decode [ITERS [SHAPE|all [int8]]]
 *        (on the GPU machine; no GPU: exits 77) */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_timing.h"
#include "cuda/cuda_check.h"
#include "forward/kv_int8.h"
#include "kernels.h"

#define BLOCK_SIZE 16
#define MMA_WORKSPACE ((size_t)64 << 20) /* the backend's (backend_cuda.c) */

typedef struct shape {
    const char *name;
    int heads, kv_heads, head_dim;
} shape;

static const shape shapes[] = {
    {"7b", 28, 4, 128},
    {"14b/2", 20, 4, 128},
};

/* one call of a decode attention kernel, as the backend makes it */
typedef struct decode_args {
    uint16_t *out, *q;
    void *k, *v;         /* fp16, or int8 when kv8: n_copies caches of cache_bytes */
    size_t cache_bytes;
    int n_copies;
    bool kv8;
    float *work, *mma_work;
    int *d_ids, *d_pos, *d_table;
    int max_blocks, T, per_block, splits;
    const shape *s;
    cudaStream_t stream;
} decode_args;

/* The arguments of pass i: its copy of the cache. */
static decode_args pass_args(const void *ctx, int i)
{
    decode_args d = *(const decode_args *)ctx;
    const size_t off = (size_t)(i % d.n_copies) * d.cache_bytes;
    d.k = (char *)d.k + off;
    d.v = (char *)d.v + off;
    return d;
}

static void decode_pass(void *ctx, int i)
{
    const decode_args dd = pass_args(ctx, i), *d = &dd;
    if (d->kv8)
        CUDA_CHECK(vb_attention_decode_kv8(d->out, d->work, d->q, d->k, d->v, d->d_ids, d->d_pos,
                                           d->d_ids, d->d_table, d->max_blocks, d->T,
                                           d->s->heads, d->s->kv_heads, d->s->head_dim,
                                           BLOCK_SIZE, 1.0f / sqrtf((float)d->s->head_dim),
                                           d->per_block, d->splits, 0, d->stream));
    else
        CUDA_CHECK(vb_attention_decode_f16(d->out, d->work, d->q, d->k, d->v, d->d_ids, d->d_pos,
                                           d->d_ids, d->d_table, d->max_blocks, d->T,
                                           d->s->heads, d->s->kv_heads, d->s->head_dim,
                                           BLOCK_SIZE, 1.0f / sqrtf((float)d->s->head_dim),
                                           d->per_block, d->splits, 0, d->stream));
}

static void decode_mma_pass(void *ctx, int i)
{
    const decode_args dd = pass_args(ctx, i), *d = &dd;
    if (d->kv8)
        CUDA_CHECK(vb_attention_decode_mma_kv8(d->out, d->mma_work, MMA_WORKSPACE, d->q, d->k,
                                               d->v, d->d_ids, d->d_pos, d->d_ids, d->d_table,
                                               d->max_blocks, d->T, d->s->heads, d->s->kv_heads,
                                               d->s->head_dim, BLOCK_SIZE,
                                               1.0f / sqrtf((float)d->s->head_dim), d->stream));
    else
        CUDA_CHECK(vb_attention_decode_mma_f16(d->out, d->mma_work, MMA_WORKSPACE, d->q, d->k,
                                               d->v, d->d_ids, d->d_pos, d->d_ids, d->d_table,
                                               d->max_blocks, d->T, d->s->heads, d->s->kv_heads,
                                               d->s->head_dim, BLOCK_SIZE,
                                               1.0f / sqrtf((float)d->s->head_dim), d->stream));
}

int main(int argc, char **argv)
{
    struct cudaDeviceProp prop;
    int iters = bench_start(argc, argv, 50, &prop);
    if (iters == 0)
        return 77;
    bench_pdl_from_env("bench_attention_decode");
    int n_sm = prop.multiProcessorCount;
    cudaStream_t stream;
    CUDA_CHECK(cudaStreamCreate(&stream));
    double copy_bw = bench_copy_bandwidth(stream);
    printf("bench_attention_decode on %s (%d SMs), %d iterations per timing, median of 5 after "
           "3 warm-up passes\ncopy bandwidth (read + write): %.0f GB/s\n",
           prop.name, n_sm, iters, copy_bw / 1e9);
    float *work, *mma_work = NULL;
    CUDA_CHECK(cudaMalloc((void **)&work, vb_attention_decode_workspace_bytes(n_sm)));
    bool have_mma = vb_attention_decode_mma_supported(28, 4, 128);
    if (have_mma) {
        CUDA_CHECK(cudaMalloc((void **)&mma_work, MMA_WORKSPACE));
    } else {
        printf("(no tensor-core decode kernel on this GPU / build: old kernel only)\n");
    }

    const int Ts[] = {1, 2, 8, 16, 32, 64, 150, 256};
    /* 384 positions: a1's last steps (128 prompt + 256 new tokens); 1,150
     * in a table of 1,280: the issue #19 workload's decode steps (1,024
     * prompt + 256 new tokens, ~half generated) */
    const int ctxs[] = {384, 1024, 1150, 4096, 16384}, widths[] = {384, 1024, 1280, 4096, 16384};
    /* a shape name: that shape alone ("all": every shape) */
    const char *only = argc > 2 && strcmp(argv[2], "all") != 0 ? argv[2] : NULL;
    const bool kv8 = argc > 3 && strcmp(argv[3], "int8") == 0;
    if (kv8)
        printf("int8 KV cache: the kernels' int8 twins\n");
    printf("%-6s %4s %6s | %5s %6s %9s %8s %6s | %6s %9s %8s %6s | %7s %4s\n", "shape", "T",
           "ctx", "heads", "splits", "old us", "GB/s", "%copy", "splits", "mma us", "GB/s",
           "%copy", "speedup", "pick");
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const shape *s = &shapes[si];
        if (only && strcmp(only, s->name) != 0)
            continue;
        for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++)
            for (size_t ci = 0; ci < sizeof ctxs / sizeof ctxs[0]; ci++) {
                int T = Ts[ti], ctx = ctxs[ci];
                int width = widths[ci];
                int max_blocks = width / BLOCK_SIZE, used = (ctx + BLOCK_SIZE - 1) / BLOCK_SIZE;
                int n_blocks = T * used;
                size_t row = (size_t)s->kv_heads * s->head_dim; /* halves a position */
                size_t cache_bytes =
                    kv8 ? (size_t)n_blocks * kv_int8_block_bytes(BLOCK_SIZE, s->kv_heads,
                                                                 s->head_dim)
                        : (size_t)n_blocks * BLOCK_SIZE * row * 2;
                uint16_t *q, *out;
                void *k, *v;
                /* copies of the cache, pass i reading copy i mod n_copies,
                 * so small steps' K/V come from memory as in the engine
                 * (where a layer's weights have passed through L2 since
                 * its last attention), not from L2 */
                int n_copies = (int)(((size_t)256 << 20) / cache_bytes);
                n_copies = n_copies < 1 ? 1 : n_copies > 256 ? 256 : n_copies;
                CUDA_CHECK(cudaMalloc(&k, cache_bytes * n_copies));
                CUDA_CHECK(cudaMalloc(&v, cache_bytes * n_copies));
                CUDA_CHECK(cudaMalloc((void **)&q, (size_t)T * s->heads * s->head_dim * 2));
                CUDA_CHECK(cudaMalloc((void **)&out, (size_t)T * s->heads * s->head_dim * 2));
                /* small finite halves (int8: values 17, scales ~1e-28): the
                 * speed does not depend on them */
                CUDA_CHECK(cudaMemset(k, 0x11, cache_bytes * n_copies));
                CUDA_CHECK(cudaMemset(v, 0x11, cache_bytes * n_copies));
                CUDA_CHECK(cudaMemset(q, 0x11, (size_t)T * s->heads * s->head_dim * 2));

                int *h_table = calloc((size_t)T * max_blocks, sizeof *h_table);
                int *h_ids = malloc((size_t)T * sizeof *h_ids);
                int *h_pos = malloc((size_t)T * sizeof *h_pos);
                int *perm = malloc((size_t)n_blocks * sizeof *perm);
                if (!h_table || !h_ids || !h_pos || !perm) {
                    fprintf(stderr, "bench_attention_decode: out of host memory\n");
                    return 1;
                }
                for (int b = 0; b < n_blocks; b++)
                    perm[b] = b;
                srand(1234);
                for (int b = n_blocks - 1; b > 0; b--) {
                    int j = rand() % (b + 1), tmp = perm[b];
                    perm[b] = perm[j];
                    perm[j] = tmp;
                }
                for (int t = 0; t < T; t++) {
                    h_ids[t] = t;          /* token t is sequence t's new token */
                    h_pos[t] = ctx - 1;    /* at the context's last position */
                    for (int b = 0; b < used; b++)
                        h_table[(size_t)t * max_blocks + b] = perm[t * used + b];
                }
                int *d_table, *d_ids, *d_pos;
                CUDA_CHECK(cudaMalloc((void **)&d_table, (size_t)T * max_blocks * sizeof(int)));
                CUDA_CHECK(cudaMalloc((void **)&d_ids, (size_t)T * sizeof(int)));
                CUDA_CHECK(cudaMalloc((void **)&d_pos, (size_t)T * sizeof(int)));
                CUDA_CHECK(cudaMemcpy(d_table, h_table, (size_t)T * max_blocks * sizeof(int),
                                      cudaMemcpyHostToDevice));
                CUDA_CHECK(cudaMemcpy(d_ids, h_ids, (size_t)T * sizeof(int), cudaMemcpyHostToDevice));
                CUDA_CHECK(cudaMemcpy(d_pos, h_pos, (size_t)T * sizeof(int), cudaMemcpyHostToDevice));

                int per_block = vb_attention_decode_heads_per_block(
                    T, s->heads, s->kv_heads, s->head_dim, width, n_sm, prop.l2CacheSize);
                int splits = vb_attention_decode_splits(T, s->heads / per_block, width, n_sm);
                decode_args args = {.out = out, .q = q, .k = k, .v = v,
                                    .cache_bytes = cache_bytes, .n_copies = n_copies,
                                    .kv8 = kv8, .work = work,
                                    .mma_work = mma_work, .d_ids = d_ids, .d_pos = d_pos,
                                    .d_table = d_table, .max_blocks = max_blocks, .T = T,
                                    .per_block = per_block, .splits = splits, .s = s,
                                    .stream = stream};
                double bytes = kv8 ? 2.0 * ctx * (s->head_dim + 4) * s->kv_heads * T
                                   : 4.0 * ctx * s->head_dim * s->kv_heads * T;
                double us = bench_time_graph_us(decode_pass, &args, stream, iters);
                double gbs = bytes / (us * 1e3);
                printf("%-6s %4d %6d | %5d %6d %9.1f %8.0f %5.1f%% |", s->name, T, ctx, per_block,
                       splits, us, gbs, 100.0 * gbs * 1e9 / copy_bw);
                if (have_mma) {
                    int mma_splits = vb_attention_decode_mma_splits(width);
                    double us2 = bench_time_graph_us(decode_mma_pass, &args, stream, iters);
                    double gbs2 = bytes / (us2 * 1e3);
                    /* cuda_attention's rule */
                    bool pick = 4L * T * s->kv_heads * mma_splits >= n_sm ||
                                (mma_splits == 1 && T >= 2 &&
                                 vb_attention_decode_mma_deep(T, s->kv_heads, s->head_dim, 1));
                    printf(" %6d %9.1f %8.0f %5.1f%% | %6.2fx %4s\n", mma_splits, us2, gbs2,
                           100.0 * gbs2 * 1e9 / copy_bw, us / us2, pick ? "mma" : "old");
                } else {
                    printf("\n");
                }
                free(h_table);
                free(h_ids);
                free(h_pos);
                free(perm);
                CUDA_CHECK(cudaFree(k));
                CUDA_CHECK(cudaFree(v));
                CUDA_CHECK(cudaFree(q));
                CUDA_CHECK(cudaFree(out));
                CUDA_CHECK(cudaFree(d_table));
                CUDA_CHECK(cudaFree(d_ids));
                CUDA_CHECK(cudaFree(d_pos));
            }
    }
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaFree(work));
    if (mma_work)
        CUDA_CHECK(cudaFree(mma_work));
    CUDA_CHECK(cudaStreamDestroy(stream));
    return 0;
}

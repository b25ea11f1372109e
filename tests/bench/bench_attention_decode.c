/* Decode attention timed on the GPU (kernels/attention_decode.cu, the
 * split kernel and its reduce, as the backend launches them): per step
 * size T (sequences, one new token each) and context length, the time of
 * one layer's attention and the bandwidth of the K/V bytes it must read
 * (4 * ctx * head_dim * kv_heads bytes a sequence), on the per-rank shapes
 * of Qwen2.5-7B at tp 1 and Qwen2.5-14B at tp 2. Query heads a block and
 * the split count are the backend's (vb_attention_decode_heads_per_block
 * and vb_attention_decode_splits over the block-table width, here
 * 32768 positions like the engine's default max-model-len for those
 * models, or the context where longer).
 *
 * Every sequence has its own KV blocks, laid out in a shuffled order so
 * the block table is followed as in a long-running cache. The K/V cache
 * (at most ~2 GB) is mostly not in L2, as in a decode step.
 *
 * usage: bench_attention_decode [ITERS]   (on the GPU machine; no GPU: exits 77) */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_timing.h"
#include "cuda/cuda_check.h"
#include "kernels.h"

#define BLOCK_SIZE 16
#define TABLE_POSITIONS 32768

typedef struct shape {
    const char *name;
    int heads, kv_heads, head_dim;
} shape;

static const shape shapes[] = {
    {"7b", 28, 4, 128},
    {"14b/2", 20, 4, 128},
};

/* one call of the decode attention, as the backend makes it */
typedef struct decode_args {
    uint16_t *out, *q, *k, *v;
    float *work;
    int *d_ids, *d_pos, *d_table;
    int max_blocks, T, per_block, splits;
    const shape *s;
    cudaStream_t stream;
} decode_args;

static void decode_pass(void *ctx, int i)
{
    (void)i; /* the same cache every pass */
    const decode_args *d = ctx;
    CUDA_CHECK(vb_attention_decode_f16(d->out, d->work, d->q, d->k, d->v, d->d_ids, d->d_pos,
                                       d->d_ids, d->d_table, d->max_blocks, d->T, d->s->heads,
                                       d->s->kv_heads, d->s->head_dim, BLOCK_SIZE,
                                       1.0f / sqrtf((float)d->s->head_dim), d->per_block, d->splits,
                                       d->stream));
}

int main(int argc, char **argv)
{
    struct cudaDeviceProp prop;
    int iters = bench_start(argc, argv, 50, &prop);
    if (iters == 0)
        return 77;
    int n_sm = prop.multiProcessorCount;
    printf("bench_attention_decode on %s (%d SMs), %d iterations per timing, median of 5\n",
           prop.name, n_sm, iters);
    cudaStream_t stream;
    CUDA_CHECK(cudaStreamCreate(&stream));
    float *work;
    CUDA_CHECK(cudaMalloc((void **)&work, vb_attention_decode_workspace_bytes(n_sm)));

    const int Ts[] = {1, 8, 64, 256};
    const int ctxs[] = {256, 1024, 4096, 16384};
    printf("%-6s %4s %6s %5s %7s %9s %8s\n", "shape", "T", "ctx", "heads", "splits", "us",
           "KV GB/s");
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const shape *s = &shapes[si];
        for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++)
            for (size_t ci = 0; ci < sizeof ctxs / sizeof ctxs[0]; ci++) {
                int T = Ts[ti], ctx = ctxs[ci];
                if ((long)T * ctx > (1L << 20))
                    continue; /* > 2 GB of K/V at this shape */
                int width = ctx > TABLE_POSITIONS ? ctx : TABLE_POSITIONS;
                int max_blocks = width / BLOCK_SIZE, used = (ctx + BLOCK_SIZE - 1) / BLOCK_SIZE;
                int n_blocks = T * used;
                size_t row = (size_t)s->kv_heads * s->head_dim; /* halves a position */
                size_t cache_elems = (size_t)n_blocks * BLOCK_SIZE * row;
                uint16_t *k, *v, *q, *out;
                CUDA_CHECK(cudaMalloc((void **)&k, cache_elems * 2));
                CUDA_CHECK(cudaMalloc((void **)&v, cache_elems * 2));
                CUDA_CHECK(cudaMalloc((void **)&q, (size_t)T * s->heads * s->head_dim * 2));
                CUDA_CHECK(cudaMalloc((void **)&out, (size_t)T * s->heads * s->head_dim * 2));
                /* small finite halves: the speed does not depend on them */
                CUDA_CHECK(cudaMemset(k, 0x11, cache_elems * 2));
                CUDA_CHECK(cudaMemset(v, 0x11, cache_elems * 2));
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
                decode_args args = {.out = out, .q = q, .k = k, .v = v, .work = work,
                                     .d_ids = d_ids, .d_pos = d_pos, .d_table = d_table,
                                     .max_blocks = max_blocks, .T = T, .per_block = per_block,
                                     .splits = splits, .s = s,
                                     .stream = stream};
                double us = bench_time_us(decode_pass, &args, stream, iters);
                double bytes = 4.0 * ctx * s->head_dim * s->kv_heads * T;
                printf("%-6s %4d %6d %5d %7d %9.1f %8.0f\n", s->name, T, ctx, per_block, splits, us,
                       bytes / (us * 1e3));
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
    CUDA_CHECK(cudaStreamDestroy(stream));
    return 0;
}

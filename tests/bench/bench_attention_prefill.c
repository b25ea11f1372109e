/* Prefill attention timed on the GPU, as the backend launches it: the
 * tensor-core kernel (kernels/attention_prefill_mma.cu, sm_80+) on the
 * prefill steps of the benchmark set's workloads, one layer's call each,
 * and the rate of causal FLOPs it reaches (4 * head_dim FLOPs per query
 * head and attended key: Q K^T and P V, the keys at or before the token).
 * Steps (the engine's default --max-batched-tokens 4096, tiles as
 * src/cuda/backend_cuda.c makes them: 16 tokens for the WMMA kernel,
 * vb_attention_prefill_mma_tile_tokens for the mma one):
 *   c      4 prompts of 1,024 tokens from position 0 (issue #19's c);
 *   b      2 prompts of 2,048 (the prefill-only workload b);
 *   d      the last 4,096-token chunk of a 16,384-token prompt (d);
 *   64k    the last chunk of a 65,000-token prompt (issue #19's long
 *          context), Qwen2.5-14B heads at tp 1;
 *   32k    a chunk of that prompt in the middle (positions 28,672 on).
 * The mma32 columns: the fp16 cache's default kernel since session 23 (32
 * query rows a warp, two blocks an SM; fp16 cache only); the mma columns
 * are the int8 cache's kernel (and VB_PREFILL_MMA16=1's) on the fp16 cache.
 * Where VB_PREFILL_WGMMA's kernel runs (sm_90a build, compute capability
 * 9.0, head_dim 128) three wgmma columns follow (its tiles without
 * swizzle, VB_PREFILL_WGMMA=1; with the 128-byte swizzle, =2; swizzled
 * with 128-key steps, =3), each with the count of values that differ from
 * the mma32 kernel's (0 expected for the first two).
 * With WMMA as a third argument the V100 / Turing kernel
 * (kernels/attention_prefill.cu) is timed too (slow on the long steps);
 * with int8 (third or fourth) the kernels' int8 twins on an int8 cache
 * (--kv-cache-dtype int8, kernels/kv_int8.cuh).
 *
 * Every sequence has its own KV blocks, shuffled (the block table is
 * followed as in a long-running cache). On the fp16 cache the queries,
 * keys and values are random halves in [-1, 1) (so the count of values
 * that differ between kernels means something: a constant would give
 * every kernel the same bits); the int8 cache holds one byte pattern.
 *
 * usage: bench_attention_prefill [ITERS [STEP|all [WMMA] [int8]]]   (on the
 * GPU machine; no GPU: exits 77) */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_timing.h"
#include "cuda/cuda_check.h"
#include "forward/kv_int8.h"
#include "kernels.h"
#include "util/half.h"

#define BLOCK_SIZE 16
#define TILE 16

typedef struct step_shape {
    const char *name;
    int heads, kv_heads, head_dim;
    int n_seqs, chunk, start; /* each sequence: positions start .. start + chunk - 1 */
} step_shape;

static const step_shape steps[] = {
    {"c", 28, 4, 128, 4, 1024, 0},
    {"b", 28, 4, 128, 2, 2048, 0},
    {"d", 28, 4, 128, 1, 4096, 12288},
    {"64k", 40, 8, 128, 1, 4096, 60904},
    {"32k", 40, 8, 128, 1, 4096, 28672},
};

typedef struct prefill_args {
    uint16_t *out, *q;
    void *k, *v; /* fp16, or int8 when kv8 */
    int *d_pos, *d_tiles, *d_mtiles, *d_table;
    int n_tiles, n_mtiles, max_blocks;
    const step_shape *s;
    bool wmma, kv8, mma32; /* mma32: the fp16 cache's default kernel */
    bool wgmma;            /* VB_PREFILL_WGMMA's kernel (sm_90a) */
    int variant;           /* its variant (VB_WGMMA_PLAIN ...) */
    cudaStream_t stream;
} prefill_args;

static void prefill_pass(void *ctx, int i)
{
    (void)i; /* the same cache every pass */
    const prefill_args *a = ctx;
    const step_shape *s = a->s;
    float scale = 1.0f / sqrtf((float)s->head_dim);
    if (a->wmma && a->kv8)
        CUDA_CHECK(vb_attention_prefill_kv8(a->out, a->q, a->k, a->v, a->d_pos, a->d_tiles,
                                            a->n_tiles, a->d_table, a->max_blocks, s->heads,
                                            s->kv_heads, s->head_dim, BLOCK_SIZE, scale,
                                            a->stream));
    else if (a->kv8)
        CUDA_CHECK(vb_attention_prefill_mma_kv8(a->out, a->q, a->k, a->v, a->d_pos, a->d_mtiles,
                                                a->n_mtiles, a->d_table, a->max_blocks, s->heads,
                                                s->kv_heads, s->head_dim, BLOCK_SIZE, scale,
                                                a->stream));
    else if (a->wgmma)
        CUDA_CHECK(vb_attention_prefill_wgmma_f16(a->out, a->q, a->k, a->v, a->d_pos, a->d_mtiles,
                                                  a->n_mtiles, a->d_table, a->max_blocks,
                                                  s->heads, s->kv_heads, s->head_dim, BLOCK_SIZE,
                                                  scale, a->variant, a->stream));
    else if (a->mma32)
        CUDA_CHECK(vb_attention_prefill_mma32_f16(a->out, a->q, a->k, a->v, a->d_pos, a->d_mtiles,
                                                  a->n_mtiles, a->d_table, a->max_blocks,
                                                  s->heads, s->kv_heads, s->head_dim, BLOCK_SIZE,
                                                  scale, a->stream));
    else if (a->wmma)
        CUDA_CHECK(vb_attention_prefill_f16(a->out, a->q, a->k, a->v, a->d_pos, a->d_tiles,
                                            a->n_tiles, a->d_table, a->max_blocks, s->heads,
                                            s->kv_heads, s->head_dim, BLOCK_SIZE, scale,
                                            a->stream));
    else
        CUDA_CHECK(vb_attention_prefill_mma_f16(a->out, a->q, a->k, a->v, a->d_pos, a->d_mtiles,
                                                a->n_mtiles, a->d_table, a->max_blocks, s->heads,
                                                s->kv_heads, s->head_dim, BLOCK_SIZE, scale,
                                                a->stream));
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "bench_attention_prefill: out of host memory\n");
        exit(1);
    }
    return p;
}

/* n random halves in [-1, 1) to the device buffer d (xorshift: the same
 * values every run). */
static void fill_random_halves(void *d, size_t n, uint64_t seed)
{
    const size_t chunk = (size_t)1 << 22;
    uint16_t *h = xmalloc(chunk * 2);
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t at = 0; at < n; at += chunk) {
        const size_t m = n - at < chunk ? n - at : chunk;
        for (size_t i = 0; i < m; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            h[i] = vb_float_to_half((float)(x >> 40) / (float)(1u << 23) - 1.0f);
        }
        CUDA_CHECK(cudaMemcpy((uint16_t *)d + at, h, m * 2, cudaMemcpyHostToDevice));
    }
    free(h);
}

/* One step: its cache, queries and work lists on the device, timed. */
static void run_step(const step_shape *s, int iters, bool with_wmma, bool kv8,
                     cudaStream_t stream)
{
    const int T = s->n_seqs * s->chunk, ctx = s->start + s->chunk;
    const int max_blocks = (ctx + BLOCK_SIZE - 1) / BLOCK_SIZE;
    const int n_blocks = s->n_seqs * max_blocks;
    const size_t row = (size_t)s->kv_heads * s->head_dim; /* halves a position */
    const size_t cache_bytes =
        kv8 ? (size_t)n_blocks * kv_int8_block_bytes(BLOCK_SIZE, s->kv_heads, s->head_dim)
            : (size_t)n_blocks * BLOCK_SIZE * row * 2;
    const size_t q_elems = (size_t)T * s->heads * s->head_dim;
    prefill_args a = {.s = s, .max_blocks = max_blocks, .kv8 = kv8, .stream = stream};
    CUDA_CHECK(cudaMalloc(&a.k, cache_bytes));
    CUDA_CHECK(cudaMalloc(&a.v, cache_bytes));
    CUDA_CHECK(cudaMalloc((void **)&a.q, q_elems * 2));
    CUDA_CHECK(cudaMalloc((void **)&a.out, q_elems * 2));
    if (kv8) { /* int8: values 17, scales ~1e-28 */
        CUDA_CHECK(cudaMemset(a.k, 0x11, cache_bytes));
        CUDA_CHECK(cudaMemset(a.v, 0x11, cache_bytes));
        CUDA_CHECK(cudaMemset(a.q, 0x11, q_elems * 2));
    } else {
        fill_random_halves(a.k, cache_bytes / 2, 1);
        fill_random_halves(a.v, cache_bytes / 2, 2);
        fill_random_halves(a.q, q_elems, 3);
    }

    int *table = xmalloc((size_t)n_blocks * sizeof *table); /* shuffled block ids */
    int *pos = xmalloc((size_t)T * sizeof *pos);
    int *tiles = xmalloc((size_t)3 * (T / TILE + s->n_seqs) * sizeof *tiles);
    int *mtiles = xmalloc((size_t)3 * T * sizeof *mtiles);
    const int mtt = vb_attention_prefill_mma_tile_tokens(s->heads, s->kv_heads);
    for (int b = 0; b < n_blocks; b++)
        table[b] = b;
    srand(1234);
    for (int b = n_blocks - 1; b > 0; b--) {
        int j = rand() % (b + 1), tmp = table[b];
        table[b] = table[j];
        table[j] = tmp;
    }
    double flops = 0;
    a.n_tiles = 0;
    for (int sq = 0; sq < s->n_seqs; sq++) {
        const int t0 = sq * s->chunk;
        for (int t = 0; t < s->chunk; t++) {
            pos[t0 + t] = s->start + t;
            flops += 4.0 * s->heads * s->head_dim * (s->start + t + 1);
        }
        for (int r = 0; r < s->chunk; r += TILE) {
            int *tile = tiles + 3 * a.n_tiles++;
            tile[0] = t0 + r;
            tile[1] = s->chunk - r < TILE ? s->chunk - r : TILE;
            tile[2] = sq;
        }
        for (int r = 0; mtt > 0 && r < s->chunk; r += mtt) {
            int *tile = mtiles + 3 * a.n_mtiles++;
            tile[0] = t0 + r;
            tile[1] = s->chunk - r < mtt ? s->chunk - r : mtt;
            tile[2] = sq;
        }
    }
    CUDA_CHECK(cudaMalloc((void **)&a.d_table, (size_t)n_blocks * sizeof(int)));
    CUDA_CHECK(cudaMalloc((void **)&a.d_pos, (size_t)T * sizeof(int)));
    CUDA_CHECK(cudaMalloc((void **)&a.d_tiles, (size_t)3 * a.n_tiles * sizeof(int)));
    CUDA_CHECK(cudaMemcpy(a.d_table, table, (size_t)n_blocks * sizeof(int),
                          cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(a.d_pos, pos, (size_t)T * sizeof(int), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(a.d_tiles, tiles, (size_t)3 * a.n_tiles * sizeof(int),
                          cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMalloc((void **)&a.d_mtiles,
                          (size_t)3 * (a.n_mtiles ? a.n_mtiles : 1) * sizeof(int)));
    CUDA_CHECK(cudaMemcpy(a.d_mtiles, mtiles, (size_t)3 * a.n_mtiles * sizeof(int),
                          cudaMemcpyHostToDevice));

    printf("%-4s %5d %5d %3d %5d %6d %7d |", s->name, s->heads, s->kv_heads, s->head_dim,
           s->n_seqs, s->chunk, s->start);
    if (vb_attention_prefill_mma_supported(s->heads, s->kv_heads, s->head_dim)) {
        double us = bench_time_us(prefill_pass, &a, stream, iters);
        printf(" %10.1f %8.1f |", us, flops / (us * 1e6));
    } else {
        printf(" %10s %8s |", "-", "-");
    }
    if (!kv8 && vb_attention_prefill_mma32_supported(s->heads, s->kv_heads, s->head_dim)) {
        /* the mma32 kernel's output against the mma one's, bit for bit */
        uint16_t *want = xmalloc(q_elems * 2), *got = xmalloc(q_elems * 2);
        prefill_pass(&a, 0);
        CUDA_CHECK(cudaMemcpy(want, a.out, q_elems * 2, cudaMemcpyDeviceToHost));
        a.mma32 = true;
        CUDA_CHECK(cudaMemset(a.out, 0xff, q_elems * 2));
        prefill_pass(&a, 0);
        CUDA_CHECK(cudaMemcpy(got, a.out, q_elems * 2, cudaMemcpyDeviceToHost));
        size_t differ = 0;
        for (size_t i = 0; i < q_elems; i++)
            differ += want[i] != got[i];
        double us = bench_time_us(prefill_pass, &a, stream, iters);
        printf(" %10.1f %8.1f | %zu differ |", us, flops / (us * 1e6), differ);
        if (vb_attention_prefill_wgmma_supported(s->heads, s->kv_heads, s->head_dim)) {
            /* the wgmma kernel's variants against the mma32 one (want: its
             * output now) */
            CUDA_CHECK(cudaMemcpy(want, a.out, q_elems * 2, cudaMemcpyDeviceToHost));
            a.wgmma = true;
            static const char *name[3] = {"wgmma", "wgmma sw128", "wgmma k128"};
            for (a.variant = VB_WGMMA_PLAIN; a.variant <= VB_WGMMA_K128; a.variant++) {
                CUDA_CHECK(cudaMemset(a.out, 0xff, q_elems * 2));
                prefill_pass(&a, 0);
                CUDA_CHECK(cudaMemcpy(got, a.out, q_elems * 2, cudaMemcpyDeviceToHost));
                differ = 0;
                for (size_t i = 0; i < q_elems; i++)
                    differ += want[i] != got[i];
                us = bench_time_us(prefill_pass, &a, stream, iters);
                printf(" %s %10.1f %8.1f | %zu differ from mma32 |",
                       name[a.variant], us, flops / (us * 1e6), differ);
            }
            a.wgmma = false;
            a.variant = VB_WGMMA_PLAIN;
        }
        a.mma32 = false;
        free(want);
        free(got);
    } else {
        printf(" %10s %8s |", "-", "-");
    }
    if (with_wmma) {
        a.wmma = true;
        double us = bench_time_us(prefill_pass, &a, stream, iters < 3 ? iters : 3);
        printf(" %10.1f %8.1f", us, flops / (us * 1e6));
    }
    printf("\n");
    free(table);
    free(pos);
    free(tiles);
    free(mtiles);
    CUDA_CHECK(cudaFree(a.k));
    CUDA_CHECK(cudaFree(a.v));
    CUDA_CHECK(cudaFree(a.q));
    CUDA_CHECK(cudaFree(a.out));
    CUDA_CHECK(cudaFree(a.d_table));
    CUDA_CHECK(cudaFree(a.d_pos));
    CUDA_CHECK(cudaFree(a.d_tiles));
    CUDA_CHECK(cudaFree(a.d_mtiles));
}

int main(int argc, char **argv)
{
    struct cudaDeviceProp prop;
    int iters = bench_start(argc, argv, 10, &prop);
    if (iters == 0)
        return 77;
    const char *only = argc > 2 && strcmp(argv[2], "all") != 0 ? argv[2] : NULL;
    bool with_wmma = false, kv8 = false;
    for (int i = 3; i < argc; i++) {
        with_wmma |= strcmp(argv[i], "WMMA") == 0;
        kv8 |= strcmp(argv[i], "int8") == 0;
    }
    cudaStream_t stream;
    CUDA_CHECK(cudaStreamCreate(&stream));
    printf("bench_attention_prefill on %s (%d SMs), %d iterations per timing, median of 5 "
           "after 3 warm-up passes; TFLOP/s of causal FLOPs\n",
           prop.name, prop.multiProcessorCount, iters);
    if (kv8)
        printf("int8 KV cache: the kernels' int8 twins\n");
    printf("%-4s %5s %5s %3s %5s %6s %7s | %10s %8s | %10s %8s |%s\n", "step", "heads", "kv",
           "hd", "seqs", "chunk", "start", "mma us", "TFLOP/s", "mma32 us", "TFLOP/s",
           with_wmma ? "    wmma us  TFLOP/s" : "");
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (!only || strcmp(only, steps[i].name) == 0)
            run_step(&steps[i], iters, with_wmma, kv8, stream);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaStreamDestroy(stream));
    return 0;
}

/* The sm_80+ tensor-core decode attention (kernels/attention_decode_mma.cu)
 * called directly against the CPU backend's attention (the fp32 oracle) on
 * random decode steps: batch sizes 1 to 150, contexts of 1 position, block
 * and split boundaries (15, 16, 17, 511, 512, 513) and ones that are
 * neither, GQA groups 1, 2, 7, 8, 12 and 16, head_dim 16, 64, 80, 128 and
 * 256, padding rows (no sequence: zeros), a block-table width past the
 * longest context (splits no token reaches), a workspace that takes a few
 * tokens at a time (several launches), and a non-power-of-2 block size.
 *
 * Also the property the fixed split size is for (issue #22): a token's
 * output is the same bits whether it runs alone or in a batch, with a
 * table width of one split or of many; and with the warps' pipelines 2
 * or 6 stages deep (a token alone takes 6, a batch 2).
 *
 * Inputs are fp16 values (both sides see the same); tolerance as
 * test_cuda_backend_ops' attention: max |gpu - cpu| / max |cpu| <= 1e-2
 * (probabilities and outputs stored in fp16). Output buffers are poisoned
 * with NaN first, so an element the kernel does not write fails. Skips
 * without a GPU, and on GPUs the kernel does not run on (before sm_80). */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_backend.h"
#include "cuda/cuda_check.h"
#include "forward/step_batch.h"
#include "harness.h"
#include "kernels.h"
#include "util/half.h"

static vb_backend *cpu;

static uint64_t rng = 987654321;
static float frand(void) /* uniform in [-1, 1) */
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng >> 11) / 4503599627370496.0 - 1.0);
}
static int irand(int n) /* 0 .. n-1 */
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (int)((rng >> 33) % (uint64_t)n);
}

static void *dev_copy(const void *h, size_t bytes)
{
    void *d = NULL;
    CUDA_CHECK(cudaMalloc(&d, bytes ? bytes : 4));
    if (bytes)
        CUDA_CHECK(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    return d;
}

/* One decode step on the device: n sequences with ctx[s] positions each
 * (the new token at ctx[s] - 1), then n_pad padding rows. */
typedef struct dstep {
    int n, n_pad, T, heads, kv_heads, hd, bs, width_blocks;
    int n_cache_blocks;
    int *ctx;
    int32_t *table;       /* [n, width_blocks], -1 past each context */
    float *q, *kc, *vc;   /* fp16 values as floats */
    uint16_t *d_q, *d_kc, *d_vc;
    int *d_ids, *d_pos, *d_seq, *d_table;
} dstep;

static uint16_t *dev_halves(const float *x, size_t n)
{
    uint16_t *h = malloc(n * 2 + 2);
    for (size_t i = 0; i < n; i++)
        h[i] = vb_float_to_half(x[i]);
    uint16_t *d = dev_copy(h, n * 2);
    free(h);
    return d;
}

static float *rand_halves(size_t n)
{
    float *x = malloc(n * sizeof *x + 4);
    for (size_t i = 0; i < n; i++)
        x[i] = vb_half_to_float(vb_float_to_half(frand()));
    return x;
}

/* Device index arrays for tokens of the step under a table width of
 * width_blocks (>= every sequence's blocks): token_list 0..T-1, the
 * positions, sequence ids (-1 for padding) and the table at that width. */
static void upload_indices(dstep *d, int width_blocks)
{
    int *ids = malloc(sizeof(int) * (size_t)d->T), *pos = malloc(sizeof(int) * (size_t)d->T),
        *seq = malloc(sizeof(int) * (size_t)d->T);
    int32_t *tab = malloc(sizeof(int32_t) * (size_t)d->n * width_blocks + 4);
    for (int t = 0; t < d->T; t++) {
        ids[t] = t;
        pos[t] = t < d->n ? d->ctx[t] - 1 : 0;
        seq[t] = t < d->n ? t : -1;
    }
    for (int s = 0; s < d->n; s++)
        for (int b = 0; b < width_blocks; b++)
            tab[(size_t)s * width_blocks + b] =
                b < d->width_blocks ? d->table[(size_t)s * d->width_blocks + b] : -1;
    if (d->d_ids) {
        CUDA_CHECK(cudaFree(d->d_ids));
        CUDA_CHECK(cudaFree(d->d_pos));
        CUDA_CHECK(cudaFree(d->d_seq));
        CUDA_CHECK(cudaFree(d->d_table));
    }
    d->d_ids = dev_copy(ids, sizeof(int) * (size_t)d->T);
    d->d_pos = dev_copy(pos, sizeof(int) * (size_t)d->T);
    d->d_seq = dev_copy(seq, sizeof(int) * (size_t)d->T);
    d->d_table = dev_copy(tab, sizeof(int32_t) * (size_t)d->n * width_blocks);
    free(ids);
    free(pos);
    free(seq);
    free(tab);
}

static void dstep_make(dstep *d, int n, const int *ctx, int n_pad, int heads, int kv_heads, int hd,
                       int bs)
{
    memset(d, 0, sizeof *d);
    d->n = n;
    d->n_pad = n_pad;
    d->T = n + n_pad;
    d->heads = heads;
    d->kv_heads = kv_heads;
    d->hd = hd;
    d->bs = bs;
    d->ctx = malloc(sizeof(int) * (size_t)n);
    int max_ctx = 1, total = 0;
    for (int s = 0; s < n; s++) {
        d->ctx[s] = ctx[s];
        max_ctx = ctx[s] > max_ctx ? ctx[s] : max_ctx;
        total += (ctx[s] + bs - 1) / bs;
    }
    d->width_blocks = (max_ctx + bs - 1) / bs;
    d->n_cache_blocks = total;
    /* every sequence's blocks, shuffled over the cache */
    int *perm = malloc(sizeof(int) * (size_t)total + 4);
    for (int b = 0; b < total; b++)
        perm[b] = b;
    for (int b = total - 1; b > 0; b--) {
        int j = irand(b + 1), tmp = perm[b];
        perm[b] = perm[j];
        perm[j] = tmp;
    }
    d->table = malloc(sizeof(int32_t) * (size_t)n * d->width_blocks + 4);
    for (int s = 0, next = 0; s < n; s++) {
        int nb = (ctx[s] + bs - 1) / bs;
        for (int b = 0; b < d->width_blocks; b++)
            d->table[(size_t)s * d->width_blocks + b] = b < nb ? perm[next + b] : -1;
        next += nb;
    }
    free(perm);
    size_t cache_n = (size_t)total * bs * kv_heads * hd;
    d->q = rand_halves((size_t)d->T * heads * hd);
    d->kc = rand_halves(cache_n);
    d->vc = rand_halves(cache_n);
    d->d_q = dev_halves(d->q, (size_t)d->T * heads * hd);
    d->d_kc = dev_halves(d->kc, cache_n);
    d->d_vc = dev_halves(d->vc, cache_n);
    upload_indices(d, d->width_blocks);
}

static void dstep_free(dstep *d)
{
    void *dev[] = {d->d_q, d->d_kc, d->d_vc, d->d_ids, d->d_pos, d->d_seq, d->d_table};
    for (int i = 0; i < 7; i++)
        CUDA_CHECK(cudaFree(dev[i]));
    free(d->ctx);
    free(d->table);
    free(d->q);
    free(d->kc);
    free(d->vc);
}

/* The CPU backend's attention for the step's real rows: [n, heads, hd]. */
static float *cpu_reference(const dstep *d)
{
    step_batch sb;
    step_batch_init(&sb, d->n, d->n, d->width_blocks);
    for (int s = 0; s < d->n; s++) {
        int32_t tok = 0;
        step_batch_add_seq(&sb, &tok, 1, d->ctx[s] - 1, d->table + (size_t)s * d->width_blocks,
                           (d->ctx[s] + d->bs - 1) / d->bs);
    }
    cpu->step_begin(cpu, &sb, sb.n_tokens);
    size_t cache_n = (size_t)d->n_cache_blocks * d->bs * d->kv_heads * d->hd;
    size_t qn = (size_t)d->n * d->heads * d->hd;
    float *cq = cpu->alloc(cpu, qn * 4 + 4), *ckc = cpu->alloc(cpu, cache_n * 4 + 4),
          *cvc = cpu->alloc(cpu, cache_n * 4 + 4), *cout = cpu->alloc(cpu, qn * 4 + 4);
    memcpy(cq, d->q, qn * 4);
    memcpy(ckc, d->kc, cache_n * 4);
    memcpy(cvc, d->vc, cache_n * 4);
    cpu->attention(cpu, cout, cq, ckc, cvc, d->heads, d->kv_heads, d->hd, d->bs,
                   1.0f / sqrtf((float)d->hd));
    float *ref = malloc(qn * 4 + 4);
    memcpy(ref, cout, qn * 4);
    cpu->free(cpu, cq);
    cpu->free(cpu, ckc);
    cpu->free(cpu, cvc);
    cpu->free(cpu, cout);
    step_batch_free(&sb);
    return ref;
}

/* The kernel on the step at a table width; the fp16 output's bits. */
static uint16_t *gpu_run(dstep *d, int width_blocks, size_t workspace_bytes, cudaError_t *err)
{
    upload_indices(d, width_blocks);
    size_t on = (size_t)d->T * d->heads * d->hd;
    uint16_t *d_out = NULL;
    float *d_work = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d_out, on * 2));
    CUDA_CHECK(cudaMemset(d_out, 0xff, on * 2)); /* NaN: unwritten elements fail */
    if (workspace_bytes) {
        CUDA_CHECK(cudaMalloc((void **)&d_work, workspace_bytes));
    }
    *err = vb_attention_decode_mma_f16(d_out, d_work, workspace_bytes, d->d_q, d->d_kc, d->d_vc,
                                       d->d_ids, d->d_pos, d->d_seq, d->d_table, width_blocks,
                                       d->T, d->heads, d->kv_heads, d->hd, d->bs,
                                       1.0f / sqrtf((float)d->hd), 0);
    if (*err == cudaSuccess)
        *err = cudaDeviceSynchronize();
    uint16_t *h = malloc(on * 2);
    CUDA_CHECK(cudaMemcpy(h, d_out, on * 2, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaFree(d_out));
    if (d_work)
        CUDA_CHECK(cudaFree(d_work));
    return h;
}

/* Checks real rows against the CPU and padding rows for zeros. */
static void check_rows(const char *what, const dstep *d, const float *ref, const uint16_t *got)
{
    size_t rn = (size_t)d->n * d->heads * d->hd, on = (size_t)d->T * d->heads * d->hd;
    double diff = 0, mag = 0;
    size_t bad = 0;
    for (size_t i = 0; i < rn; i++) {
        float g = vb_half_to_float(got[i]);
        if (!isfinite(g)) {
            bad++;
            continue;
        }
        double e = fabs((double)g - ref[i]);
        diff = e > diff ? e : diff;
        mag = fabs(ref[i]) > mag ? fabs(ref[i]) : mag;
    }
    size_t pad_bad = 0;
    for (size_t i = rn; i < on; i++)
        pad_bad += got[i] != 0 && got[i] != 0x8000;
    double rel = diff / (mag > 0 ? mag : 1);
    printf("  %-58s rel err %.2e%s%s\n", what, rel, bad ? "  (NaN/unwritten!)" : "",
           pad_bad ? "  (padding rows not zero!)" : "");
    CHECK_INT_EQ(bad, 0);
    CHECK_INT_EQ(pad_bad, 0);
    CHECK(rel <= 1e-2);
}

/* One case: the step at its own table width (and, when extra_blocks, a
 * wider one), workspace for all tokens or for `ws_tokens` at a time. */
static void run_case(int n, const int *ctx, int n_pad, int heads, int kv_heads, int hd, int bs,
                     int extra_blocks, int ws_tokens)
{
    dstep d;
    dstep_make(&d, n, ctx, n_pad, heads, kv_heads, hd, bs);
    float *ref = cpu_reference(&d);
    int max_ctx = 0;
    for (int s = 0; s < n; s++)
        max_ctx = ctx[s] > max_ctx ? ctx[s] : max_ctx;
    for (int wide = 0; wide <= (extra_blocks > 0); wide++) {
        int width = d.width_blocks + (wide ? extra_blocks : 0);
        int splits = vb_attention_decode_mma_splits(width * bs);
        size_t per = vb_attention_decode_mma_token_bytes(heads, hd, splits);
        size_t ws = per ? per * (size_t)(ws_tokens > 0 ? ws_tokens : d.T) : 0;
        cudaError_t err;
        uint16_t *got = gpu_run(&d, width, ws, &err);
        char name[160];
        snprintf(name, sizeof name, "G %d hd %d bs %d: %d seqs + %d pad, ctx <= %d, %d splits%s", heads / kv_heads,
                 hd, bs, n, n_pad, max_ctx, splits,
                 ws_tokens > 0 && ws_tokens < d.T ? ", chunked" : "");
        CHECK_INT_EQ(err, cudaSuccess);
        check_rows(name, &d, ref, got);
        free(got);
    }
    free(ref);
    dstep_free(&d);
}

static void test_boundaries(void)
{
    /* one position; around the block and split sizes; neither */
    const int one[1] = {1};
    const int edges[9] = {15, 16, 17, 511, 512, 513, 1000, 1025, 1537};
    const int shapes[][3] = {{4, 4, 64},  {8, 4, 128}, {28, 4, 128}, {16, 2, 128},
                             {12, 1, 64}, {16, 1, 128}, {8, 2, 16},  {14, 2, 80},
                             {16, 2, 256}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int *s = shapes[i];
        run_case(1, one, 0, s[0], s[1], s[2], 16, 0, 0);
        run_case(9, edges, 2, s[0], s[1], s[2], 16, 40, 0);
    }
    /* a block size that is not a power of 2 (divisions, not shifts) */
    run_case(9, edges, 1, 28, 4, 128, 12, 0, 0);
}

static void test_batches(void)
{
    /* 7B-shaped steps of 3, 64 and 150 sequences at random lengths up to
     * 1,400 (the workload averages ~1,150), with padding rows */
    const int ns[3] = {3, 64, 150};
    for (int k = 0; k < 3; k++) {
        int *ctx = malloc(sizeof(int) * (size_t)ns[k]);
        for (int s = 0; s < ns[k]; s++)
            ctx[s] = 1 + irand(1400);
        run_case(ns[k], ctx, k == 2 ? 2 : 1, 28, 4, 128, 16, 0, 0);
        free(ctx);
    }
    /* long contexts, GQA 8, head_dim 64 */
    const int longs[4] = {4096, 4000, 16384, 2};
    run_case(4, longs, 1, 16, 2, 64, 16, 0, 0);
}

static void test_chunked_workspace(void)
{
    /* partials of 3 tokens at a time: 22 tokens in 8 launches */
    int ctx[20];
    for (int s = 0; s < 20; s++)
        ctx[s] = 1 + irand(2000);
    run_case(20, ctx, 2, 28, 4, 128, 16, 0, 3);
    /* a workspace smaller than one token's partials is refused */
    dstep d;
    dstep_make(&d, 1, ctx, 0, 28, 4, 128, 16);
    cudaError_t err;
    const int wb = d.width_blocks + 64; /* >= 3 splits */
    size_t per = vb_attention_decode_mma_token_bytes(28, 128, vb_attention_decode_mma_splits(wb * 16));
    uint16_t *got = gpu_run(&d, wb, per - 4, &err);
    CHECK_INT_EQ(err, cudaErrorInvalidValue);
    free(got);
    dstep_free(&d);
}

/* A token's bits do not depend on the batch or the table width. */
static void test_batch_invariance(void)
{
    int ctx[24];
    for (int s = 0; s < 24; s++)
        ctx[s] = 1 + irand(1500);
    ctx[0] = 300; /* one split at its own width */
    ctx[1] = 512;
    ctx[2] = 513;
    dstep d;
    dstep_make(&d, 24, ctx, 0, 28, 4, 128, 16);
    const int hn = d.heads * d.hd;
    cudaError_t err;
    /* the whole batch at a width of 4,096 positions (8 splits) */
    size_t ws = vb_attention_decode_mma_token_bytes(28, 128, 8) * (size_t)d.T;
    uint16_t *batch = gpu_run(&d, 4096 / 16, ws, &err);
    CHECK_INT_EQ(err, cudaSuccess);
    int same = 0, checked = 0;
    for (int s = 0; s < 6; s++) {
        /* sequence s alone, at the narrowest width it fits */
        dstep one;
        memset(&one, 0, sizeof one);
        one = d;
        one.n = 1;
        one.T = 1;
        one.ctx = d.ctx + s;
        one.table = d.table + (size_t)s * d.width_blocks;
        one.width_blocks = d.width_blocks; /* row stride of the table above */
        one.d_ids = one.d_pos = one.d_seq = one.d_table = NULL;
        one.d_q = d.d_q + (size_t)s * hn;
        int w = (ctx[s] + 15) / 16;
        size_t ws1 = vb_attention_decode_mma_token_bytes(28, 128,
                                                         vb_attention_decode_mma_splits(w * 16));
        uint16_t *alone = gpu_run(&one, w, ws1, &err);
        CHECK_INT_EQ(err, cudaSuccess);
        same += memcmp(alone, batch + (size_t)s * hn, (size_t)hn * 2) == 0;
        checked++;
        free(alone);
        CUDA_CHECK(cudaFree(one.d_ids));
        CUDA_CHECK(cudaFree(one.d_pos));
        CUDA_CHECK(cudaFree(one.d_seq));
        CUDA_CHECK(cudaFree(one.d_table));
    }
    printf("  alone (own width) vs in a batch of 24 (width 4096): %d of %d rows bit-identical\n",
           same, checked);
    CHECK_INT_EQ(same, checked);
    free(batch);
    dstep_free(&d);
}

/* The deep pipeline (6 stages a warp, what a launch of no more blocks
 * than SMs takes) and the 2-stage one give the same bits, and both agree
 * with the CPU: the stage count only moves the loads ahead. */
static void test_stages(void)
{
    const int ctx[4] = {1000, 77, 513, 4096};
    const int shapes[][3] = {{28, 4, 128}, {16, 2, 64}, {8, 1, 80}, {16, 2, 256}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int *sh = shapes[i];
        dstep d;
        dstep_make(&d, 4, ctx, 1, sh[0], sh[1], sh[2], 16);
        float *ref = cpu_reference(&d);
        size_t ws = vb_attention_decode_mma_token_bytes(
                        sh[0], sh[2], vb_attention_decode_mma_splits(d.width_blocks * 16)) *
                    (size_t)d.T;
        cudaError_t err;
        vb_attention_decode_mma_stages(2);
        uint16_t *two = gpu_run(&d, d.width_blocks, ws, &err);
        CHECK_INT_EQ(err, cudaSuccess);
        vb_attention_decode_mma_stages(6);
        uint16_t *six = gpu_run(&d, d.width_blocks, ws, &err);
        CHECK_INT_EQ(err, cudaSuccess);
        vb_attention_decode_mma_stages(0);
        char name[120];
        snprintf(name, sizeof name, "G %d hd %d, 6 stages (where they fit)", sh[0] / sh[1],
                 sh[2]);
        check_rows(name, &d, ref, six);
        const size_t on = (size_t)d.T * d.heads * d.hd;
        printf("  %-58s %s\n", "  2 stages against 6:",
               memcmp(two, six, on * 2) == 0 ? "bit-identical" : "DIFFER");
        CHECK(memcmp(two, six, on * 2) == 0);
        free(two);
        free(six);
        free(ref);
        dstep_free(&d);
    }
    /* a stage count the kernel has no variant for is refused (one split:
     * no workspace needed) */
    dstep d;
    dstep_make(&d, 1, ctx + 1, 0, 28, 4, 128, 16);
    vb_attention_decode_mma_stages(3);
    cudaError_t err;
    uint16_t *got = gpu_run(&d, d.width_blocks, 0, &err);
    vb_attention_decode_mma_stages(0);
    CHECK_INT_EQ(err, cudaErrorInvalidValue);
    free(got);
    dstep_free(&d);
}

/* --quick: the boundary cases only (for compute-sanitizer runs) */
int main(int argc, char **argv)
{
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0)
        return test_skip("no CUDA device on this machine");
    if (!vb_attention_decode_mma_supported(28, 4, 128))
        return test_skip("the tensor-core decode kernel needs sm_80+ code on an sm_80+ GPU");
    cpu = cpu_backend_create(0, MPI_COMM_NULL, 1);
    if (!cpu) {
        fprintf(stderr, "no CPU backend\n");
        return 1;
    }
    RUN_TEST(test_boundaries);
    RUN_TEST(test_stages);
    if (!quick) {
        RUN_TEST(test_batches);
        RUN_TEST(test_chunked_workspace);
        RUN_TEST(test_batch_invariance);
    }
    cpu->destroy(cpu);
    return test_summary();
}

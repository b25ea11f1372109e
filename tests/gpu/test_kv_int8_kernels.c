/* The CUDA kernels of the int8 KV cache (--kv-cache-dtype int8, issue #21)
 * against the host's definition of it (src/forward/kv_int8.h / .c).
 *
 *  - The write (vb_rope_kv_write_kv8): q and k rotated exactly as the fp16
 *    kernel rotates them (bits), and every written cache row the bytes
 *    kv_int8_quantize gives for the rotated k and for v (values and fp32
 *    scale, bit for bit, at kv_int8.h's offsets), on random rows with
 *    magnitudes from 1e-3 to 6e4, rows of zeros, rows with an infinity,
 *    NaNs among finite values, ties at .5; slots the step does not write
 *    keep their bytes, and a padding row (no sequence) writes none. Head
 *    sizes 12, 18, 64, 80, 128 and 256.
 *  - The attention kernels' int8 twins (decode: the sm_80+ mma kernel, the
 *    CUDA-core kernel at a block per head and per group, one split and
 *    several; the per-token kernel; prefill: the sm_80+ mma kernel and
 *    the WMMA one), on random int8 caches of ragged steps (decodes, a
 *    prompt from scratch, chunks on cached prefixes, contexts across block
 *    and split boundaries, GQA 1 to 8, head_dim 64 to 256):
 *      1. against the fp32 host reference: the CPU backend's attention on
 *         the same int8 bytes (it dequantizes q * scale in fp32), max |gpu
 *         - cpu| / max |cpu| <= 1e-2 (as the fp16 tests: probabilities and
 *         outputs stored in fp16, here also the dequantized K/V);
 *      2. against the fp16 kernel on the cache dequantized to fp16 on the
 *         host (q * scale rounded to fp16): identical bits, the property
 *         kernels/kv_int8.cuh states.
 *    Outputs are poisoned with NaN first, so an element a kernel does not
 *    write fails.
 * Skips (77) without a GPU; the sm_80+ kernels' cases skip on older GPUs. */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_backend.h"
#include "cuda/cuda_check.h"
#include "forward/kv_int8.h"
#include "forward/step_batch.h"
#include "harness.h"
#include "kernels.h"
#include "util/half.h"

#define BS 16 /* the engine's block size */

static vb_backend *cpu;

static uint64_t rng = 20261202;
static double urand(void) /* uniform in [0, 1) */
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng >> 11) / 9007199254740992.0;
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

static void *host_copy(const void *d, size_t bytes)
{
    void *h = malloc(bytes ? bytes : 4);
    CUDA_CHECK(cudaDeviceSynchronize());
    if (bytes)
        CUDA_CHECK(cudaMemcpy(h, d, bytes, cudaMemcpyDeviceToHost));
    return h;
}

/* One fp16 row of n values of magnitude around `mag`, with the row kind:
 * 0 random, 1 zeros, 2 an infinity in it, 3 NaNs among finite values,
 * 4 odd integers up to 253 and a 254 (scale 2: x * (127 / max) = x / 2
 * lands on .5 ties, where rounding to even shows; mag unused). */
static void fill_row(uint16_t *x, int n, float mag, int kind)
{
    for (int i = 0; i < n; i++) {
        float v = (float)((urand() * 2 - 1) * mag);
        if (kind == 1)
            v = 0.0f;
        if (kind == 4)
            v = (float)(2 * irand(254) - 253);
        x[i] = vb_float_to_half(v);
    }
    if (kind == 4)
        x[irand(n)] = vb_float_to_half(urand() < 0.5 ? 254.0f : -254.0f);
    if (kind == 2)
        x[irand(n)] = urand() < 0.5 ? 0x7c00 : 0xfc00;
    if (kind == 3) {
        x[irand(n)] = 0x7e00;
        x[irand(n)] = 0xfe00;
    }
}

static float row_mag(void)
{
    static const float mags[] = {1e-3f, 0.05f, 1.0f, 3.0f, 100.0f, 6e4f};
    return mags[irand((int)(sizeof mags / sizeof mags[0]))];
}

/* --- the write ------------------------------------------------------- */

static void run_write_case(int heads, int kv_heads, int hd)
{
    /* tokens: 5 of a sequence from position 13 (crossing a block), one
     * decode at position 40, a padding row */
    const int T = 7, n_blocks = 8, max_blocks = 4;
    const int positions[7] = {13, 14, 15, 16, 17, 40, 0};
    const int token_seq[7] = {0, 0, 0, 0, 0, 1, -1};
    const int tables[8] = {5, 2, 7, 0, 1, 6, 3, 4};
    size_t qn = (size_t)T * heads * hd, kn = (size_t)T * kv_heads * hd;
    uint16_t *q = malloc(qn * 2), *k = malloc(kn * 2), *v = malloc(kn * 2);
    for (size_t r = 0; r < (size_t)T * heads; r++)
        fill_row(q + r * hd, hd, row_mag(), 0);
    for (size_t r = 0; r < (size_t)T * kv_heads; r++) {
        /* every kind of row somewhere, in k and in v */
        fill_row(k + r * hd, hd, row_mag(), (int)(r % 5));
        fill_row(v + r * hd, hd, row_mag(), (int)((r + 2) % 5));
    }
    float inv[128];
    for (int i = 0; i < hd / 2; i++)
        inv[i] = powf(10000.0f, -2.0f * (float)i / (float)hd);
    size_t cache_bytes = (size_t)n_blocks * kv_int8_block_bytes(BS, kv_heads, hd);
    unsigned char *poison = malloc(cache_bytes);
    for (size_t i = 0; i < cache_bytes; i++)
        poison[i] = (unsigned char)(0x5a ^ (i * 7));
    void *d_q8 = dev_copy(q, qn * 2), *d_k8 = dev_copy(k, kn * 2), *d_v = dev_copy(v, kn * 2);
    void *d_q16 = dev_copy(q, qn * 2), *d_k16 = dev_copy(k, kn * 2);
    void *d_kc = dev_copy(poison, cache_bytes), *d_vc = dev_copy(poison, cache_bytes);
    size_t c16n = (size_t)n_blocks * BS * kv_heads * hd;
    void *d_kc16 = NULL, *d_vc16 = NULL;
    CUDA_CHECK(cudaMalloc(&d_kc16, c16n * 2));
    CUDA_CHECK(cudaMalloc(&d_vc16, c16n * 2));
    float *d_inv = dev_copy(inv, sizeof(float) * (size_t)hd / 2);
    int *d_pos = dev_copy(positions, sizeof positions);
    int *d_seq = dev_copy(token_seq, sizeof token_seq);
    int *d_tab = dev_copy(tables, sizeof tables);

    CUDA_CHECK(vb_rope_kv_write_kv8(d_q8, d_k8, d_v, d_kc, d_vc, d_inv, 0.9f, d_pos, d_seq, d_tab,
                                    max_blocks, T, heads, kv_heads, hd, BS, 0));
    CUDA_CHECK(vb_rope_kv_write_f16(d_q16, d_k16, d_v, d_kc16, d_vc16, d_inv, 0.9f, d_pos, d_seq,
                                    d_tab, max_blocks, T, heads, kv_heads, hd, BS, 0));
    uint16_t *q8 = host_copy(d_q8, qn * 2), *k8 = host_copy(d_k8, kn * 2);
    uint16_t *q16 = host_copy(d_q16, qn * 2), *k16 = host_copy(d_k16, kn * 2);
    unsigned char *kc = host_copy(d_kc, cache_bytes), *vc = host_copy(d_vc, cache_bytes);

    /* the rotation: the fp16 kernel's bits */
    CHECK(memcmp(q8, q16, qn * 2) == 0);
    CHECK(memcmp(k8, k16, kn * 2) == 0);

    /* each written row: kv_int8_quantize's bytes of the rotated k and of
     * v; every other byte as it was */
    const uint16_t *src[2] = {k8, v};
    const unsigned char *got[2] = {kc, vc};
    size_t bad[2] = {0, 0};
    unsigned char *want = malloc(cache_bytes);
    float x[256];
    int8_t qv[256];
    for (int m = 0; m < 2; m++) {
        memcpy(want, poison, cache_bytes);
        for (int t = 0; t < T; t++) {
            if (token_seq[t] < 0)
                continue;
            size_t slot = (size_t)tables[token_seq[t] * max_blocks + positions[t] / BS] * BS +
                          (size_t)(positions[t] % BS);
            for (int h = 0; h < kv_heads; h++) {
                const uint16_t *r = src[m] + ((size_t)t * kv_heads + h) * hd;
                float sc;
                for (int i = 0; i < hd; i++)
                    x[i] = vb_half_to_float(r[i]);
                kv_int8_quantize(x, hd, qv, &sc);
                memcpy(want + kv_int8_values_at(slot, h, BS, kv_heads, hd), qv, (size_t)hd);
                memcpy(want + kv_int8_scale_at(slot, h, BS, kv_heads, hd), &sc, sizeof sc);
            }
        }
        for (size_t i = 0; i < cache_bytes; i++) {
            if (got[m][i] == want[i])
                continue;
            if (bad[m]++ == 0)
                printf("    %s cache: first difference at byte %zu: got 0x%02x, want 0x%02x\n",
                       m ? "V" : "K", i, got[m][i], want[i]);
        }
    }
    printf("  write heads %2d/%d hd %3d: %zu K and %zu V bytes of %zu differ from "
           "kv_int8_quantize's\n", heads, kv_heads, hd, bad[0], bad[1], cache_bytes);
    CHECK_INT_EQ(bad[0], 0);
    CHECK_INT_EQ(bad[1], 0);

    void *dev[] = {d_q8, d_k8, d_v, d_q16, d_k16, d_kc, d_vc, d_kc16, d_vc16, d_inv, d_pos, d_seq,
                   d_tab};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        CUDA_CHECK(cudaFree(dev[i]));
    void *host[] = {q, k, v, poison, q8, k8, q16, k16, kc, vc, want};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++)
        free(host[i]);
}

static void test_write(void)
{
    const int shapes[][3] = {{4, 2, 12}, {4, 2, 18}, {8, 2, 64},
                             {6, 3, 80}, {28, 4, 128}, {8, 1, 256}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        run_write_case(shapes[i][0], shapes[i][1], shapes[i][2]);
    /* blocks whose scales would not be 4-byte aligned (3 x 1 x (6 + 4)
     * bytes): refused */
    CHECK_INT_EQ(vb_rope_kv_write_kv8(NULL, NULL, NULL, NULL, NULL, NULL, 1.0f, NULL, NULL, NULL,
                                      1, 1, 2, 1, 6, 3, 0),
                 cudaErrorInvalidValue);
}

/* --- attention ------------------------------------------------------- */

/* A step of n sequences: sequence s has ctx[s] positions in the cache, the
 * last fresh[s] of them its new tokens (1: a decode token). */
typedef struct kstep {
    int n, T, heads, kv_heads, hd, width; /* width: the block table's */
    int n_blocks;
    int ctx[8], fresh[8];
    int32_t *table;                       /* [n, width], shuffled blocks */
    int *positions, *token_seq;           /* [T] */
    int n_decode, n_tiles, n_mtiles;
    int *decode, *tiles;                  /* decode token ids; (first, rows, seq) triples */
    int *mtiles;                          /* the sm_80+ prefill kernel's: its tile size */
    uint16_t *q;                          /* [T, heads, hd] fp16 */
    unsigned char *c8[2];                 /* K, V int8 caches (kv_int8.h layout) */
    uint16_t *c16[2];                     /* the same dequantized to fp16: q * scale */
    /* device copies */
    void *d_q, *d_c8[2], *d_c16[2];
    int *d_pos, *d_seq, *d_table, *d_decode, *d_tiles, *d_mtiles;
} kstep;

static void kstep_make(kstep *k, int n, const int *ctx, const int *fresh, int heads,
                       int kv_heads, int hd)
{
    memset(k, 0, sizeof *k);
    k->n = n;
    k->heads = heads;
    k->kv_heads = kv_heads;
    k->hd = hd;
    int max_ctx = 1;
    for (int s = 0; s < n; s++) {
        k->ctx[s] = ctx[s];
        k->fresh[s] = fresh[s];
        k->T += fresh[s];
        max_ctx = ctx[s] > max_ctx ? ctx[s] : max_ctx;
        k->n_blocks += (ctx[s] + BS - 1) / BS;
    }
    k->width = (max_ctx + BS - 1) / BS;
    int *perm = malloc(sizeof(int) * (size_t)k->n_blocks);
    for (int b = 0; b < k->n_blocks; b++)
        perm[b] = b;
    for (int b = k->n_blocks - 1; b > 0; b--) {
        int j = irand(b + 1), t = perm[b];
        perm[b] = perm[j];
        perm[j] = t;
    }
    k->table = malloc(sizeof(int32_t) * (size_t)n * k->width);
    for (int s = 0, next = 0; s < n; s++) {
        int nb = (ctx[s] + BS - 1) / BS;
        for (int b = 0; b < k->width; b++)
            k->table[(size_t)s * k->width + b] = b < nb ? perm[next + b] : 0;
        next += nb;
    }
    free(perm);
    k->positions = malloc(sizeof(int) * (size_t)k->T);
    k->token_seq = malloc(sizeof(int) * (size_t)k->T);
    k->decode = malloc(sizeof(int) * (size_t)k->T);
    k->tiles = malloc(sizeof(int) * 3 * (size_t)k->T);
    k->mtiles = malloc(sizeof(int) * 3 * (size_t)k->T);
    const int mtt = vb_attention_prefill_mma_tile_tokens(heads, kv_heads);
    for (int s = 0, t = 0; s < n; s++) {
        int t0 = t;
        for (int i = 0; i < fresh[s]; i++, t++) {
            k->positions[t] = ctx[s] - fresh[s] + i;
            k->token_seq[t] = s;
        }
        if (fresh[s] == 1) {
            k->decode[k->n_decode++] = t0;
            continue;
        }
        for (int r = 0; r < fresh[s]; r += 16) {
            int *tile = k->tiles + 3 * k->n_tiles++;
            tile[0] = t0 + r;
            tile[1] = fresh[s] - r < 16 ? fresh[s] - r : 16;
            tile[2] = s;
        }
        for (int r = 0; mtt > 0 && r < fresh[s]; r += mtt) {
            int *tile = k->mtiles + 3 * k->n_mtiles++;
            tile[0] = t0 + r;
            tile[1] = fresh[s] - r < mtt ? fresh[s] - r : mtt;
            tile[2] = s;
        }
    }
    size_t qn = (size_t)k->T * heads * hd;
    k->q = malloc(qn * 2);
    for (size_t i = 0; i < qn; i++)
        k->q[i] = vb_float_to_half((float)(urand() * 2 - 1));
    /* K and V rows of varied magnitudes, quantized by the host's rule */
    size_t bytes = (size_t)k->n_blocks * kv_int8_block_bytes(BS, kv_heads, hd);
    size_t rows = (size_t)k->n_blocks * BS * kv_heads;
    float x[256];
    int8_t qv[256];
    for (int m = 0; m < 2; m++) {
        k->c8[m] = calloc(bytes, 1);
        k->c16[m] = malloc(rows * hd * 2);
        for (size_t slot = 0; slot < (size_t)k->n_blocks * BS; slot++)
            for (int h = 0; h < kv_heads; h++) {
                float mag = (float)(0.2 + 3 * urand());
                for (int i = 0; i < hd; i++)
                    x[i] = (float)((urand() * 2 - 1) * mag);
                float sc;
                kv_int8_quantize(x, hd, qv, &sc);
                memcpy(k->c8[m] + kv_int8_values_at(slot, h, BS, kv_heads, hd), qv, (size_t)hd);
                memcpy(k->c8[m] + kv_int8_scale_at(slot, h, BS, kv_heads, hd), &sc, sizeof sc);
                uint16_t *dst = k->c16[m] + (slot * kv_heads + h) * hd;
                for (int i = 0; i < hd; i++)
                    dst[i] = vb_float_to_half((float)qv[i] * sc);
            }
        k->d_c8[m] = dev_copy(k->c8[m], bytes);
        k->d_c16[m] = dev_copy(k->c16[m], rows * hd * 2);
    }
    k->d_q = dev_copy(k->q, qn * 2);
    k->d_pos = dev_copy(k->positions, sizeof(int) * (size_t)k->T);
    k->d_seq = dev_copy(k->token_seq, sizeof(int) * (size_t)k->T);
    k->d_table = dev_copy(k->table, sizeof(int32_t) * (size_t)n * k->width);
    k->d_decode = dev_copy(k->decode, sizeof(int) * (size_t)(k->n_decode ? k->n_decode : 1));
    k->d_tiles = dev_copy(k->tiles, sizeof(int) * 3 * (size_t)(k->n_tiles ? k->n_tiles : 1));
    k->d_mtiles = dev_copy(k->mtiles, sizeof(int) * 3 * (size_t)(k->n_mtiles ? k->n_mtiles : 1));
}

static void kstep_free(kstep *k)
{
    void *dev[] = {k->d_q, k->d_c8[0], k->d_c8[1], k->d_c16[0], k->d_c16[1], k->d_pos, k->d_seq,
                   k->d_table, k->d_decode, k->d_tiles, k->d_mtiles};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        CUDA_CHECK(cudaFree(dev[i]));
    void *host[] = {k->table, k->positions, k->token_seq, k->decode, k->tiles, k->mtiles, k->q,
                    k->c8[0], k->c8[1], k->c16[0], k->c16[1]};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++)
        free(host[i]);
}

/* The CPU backend's attention on the int8 bytes (fp32, dequantized q *
 * scale): [T, heads, hd]. */
static float *cpu_reference(const kstep *k)
{
    step_batch sb;
    step_batch_init(&sb, k->n, k->T, k->width);
    int32_t toks[512] = {0};
    for (int s = 0; s < k->n; s++)
        step_batch_add_seq(&sb, toks, k->fresh[s], k->ctx[s] - k->fresh[s],
                           k->table + (size_t)s * k->width, (k->ctx[s] + BS - 1) / BS);
    cpu->step_begin(cpu, &sb, sb.n_tokens);
    size_t qn = (size_t)k->T * k->heads * k->hd;
    size_t bytes = (size_t)k->n_blocks * kv_int8_block_bytes(BS, k->kv_heads, k->hd);
    float *cq = cpu->alloc(cpu, qn * 4), *cout = cpu->alloc(cpu, qn * 4);
    void *ck = cpu->alloc(cpu, bytes), *cv = cpu->alloc(cpu, bytes);
    for (size_t i = 0; i < qn; i++)
        cq[i] = vb_half_to_float(k->q[i]);
    memcpy(ck, k->c8[0], bytes);
    memcpy(cv, k->c8[1], bytes);
    cpu->attention(cpu, cout, cq, ck, cv, k->heads, k->kv_heads, k->hd, BS,
                   1.0f / sqrtf((float)k->hd));
    float *ref = malloc(qn * 4);
    memcpy(ref, cout, qn * 4);
    cpu->free(cpu, cq);
    cpu->free(cpu, cout);
    cpu->free(cpu, ck);
    cpu->free(cpu, cv);
    step_batch_free(&sb);
    return ref;
}

/* P_PREFILL_MMA32 (the fp16 cache's default prefill kernel) has no int8
 * twin: its "int8" run is the mma kernel on the fp16 cache, so the twin
 * check holds it to that kernel's results bit for bit. P_PREFILL_WGMMA
 * and P_PREFILL_WGMMA_SW (its tiles swizzled) likewise against the mma32
 * kernel (sm_90a builds on compute capability 9.0, head_dim 128 only).
 * P_PREFILL_WGMMA_K128 (128-key steps: a softmax of its own) has its own
 * bits: its twin is a second run of it (the same bits every run).
 * P_DECODE_REDUCE: a block a head, 5 splits, on the fp16 cache both
 * times: the "int8" run combines the splits in the attention kernel (the
 * default), its twin in attention_decode_reduce
 * (vb_attention_decode_reduce_kernel(1)): the same bits.
 * P_DECODE_FIXED: the CUDA-core kernel's fixed slices (--batch-invariant
 * without the mma kernel), 32 positions a split or the fewest multiple of
 * 32 that keeps the splits within VB_DECODE_MAX_SPLITS, at least 2. */
enum path { P_DECODE_MMA, P_DECODE_HEAD, P_DECODE_GROUP, P_DECODE_REDUCE, P_DECODE_SPLIT,
            P_DECODE_FIXED, P_PER_TOKEN,
            P_PREFILL_MMA, P_PREFILL_WMMA, P_PREFILL_MMA32, P_PREFILL_WGMMA,
            P_PREFILL_WGMMA_SW, P_PREFILL_WGMMA_K128, P_COUNT };
static const char *path_name[P_COUNT] = {
    "decode, mma (sm_80+)", "decode, CUDA cores, a block a head",
    "decode, CUDA cores, a block a group", "decode, 5 splits, combine vs reduce kernel",
    "decode, CUDA cores, 3 splits", "decode, CUDA cores, fixed slices",
    "per-token kernel, every token", "prefill, mma (sm_80+)", "prefill, WMMA",
    "prefill, mma32 (vs mma, fp16 cache)", "prefill, wgmma (vs mma32, fp16 cache)",
    "prefill, wgmma swizzled (vs mma32)", "prefill, wgmma 128 keys (vs itself)"};

/* Runs one path on the int8 cache (kv8) or on the fp16 one; returns the
 * fp16 output [T, heads, hd] (NaN where not written), or NULL when the
 * path does not apply to the step or this GPU. */
static uint16_t *run_path(const kstep *k, enum path p, bool kv8, cudaError_t *err)
{
    const int T = k->T, heads = k->heads, kvh = k->kv_heads, hd = k->hd, G = heads / kvh;
    const float scale = 1.0f / sqrtf((float)hd);
    const void *kc = kv8 ? k->d_c8[0] : k->d_c16[0], *vc = kv8 ? k->d_c8[1] : k->d_c16[1];
    bool decode = p <= P_DECODE_FIXED, prefill = p >= P_PREFILL_MMA;
    if ((decode && k->n_decode == 0) || (prefill && k->n_tiles == 0))
        return NULL;
    if (p == P_DECODE_MMA && !vb_attention_decode_mma_supported(heads, kvh, hd))
        return NULL;
    if (decode && p != P_DECODE_MMA && !vb_attention_decode_supported(heads, kvh, hd))
        return NULL;
    if (p == P_PREFILL_MMA && !vb_attention_prefill_mma_supported(heads, kvh, hd))
        return NULL;
    if (p == P_PREFILL_MMA32 && !vb_attention_prefill_mma32_supported(heads, kvh, hd))
        return NULL;
    const bool wgmma = p == P_PREFILL_WGMMA || p == P_PREFILL_WGMMA_SW || p == P_PREFILL_WGMMA_K128;
    if (wgmma &&
        (!vb_attention_prefill_wgmma_supported(heads, kvh, hd) ||
         !vb_attention_prefill_mma32_supported(heads, kvh, hd)))
        return NULL;
    if (p == P_PER_TOKEN && hd > 256)
        return NULL;
    size_t on = (size_t)T * heads * hd;
    uint16_t *d_out = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d_out, on * 2));
    CUDA_CHECK(cudaMemset(d_out, 0xff, on * 2)); /* NaN: unwritten elements show */
    /* partials of any split count the cases use */
    int mma_splits = vb_attention_decode_mma_splits(k->width * BS);
    int slice = 32, fixed_splits;
    while ((k->width * BS + slice - 1) / slice > VB_DECODE_MAX_SPLITS)
        slice += 32;
    fixed_splits = (k->width * BS + slice - 1) / slice;
    fixed_splits = fixed_splits < 2 ? 2 : fixed_splits;
    int most = mma_splits > fixed_splits ? mma_splits : fixed_splits;
    size_t ws_bytes = (size_t)T * heads * (most > 5 ? most : 5) * (hd + 2) * 4;
    float *d_ws = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d_ws, ws_bytes));
    uint16_t *q = k->d_q;
    switch (p) {
    case P_DECODE_MMA:
        *err = kv8 ? vb_attention_decode_mma_kv8(d_out, d_ws, ws_bytes, q, kc, vc, k->d_decode,
                                                 k->d_pos, k->d_seq, k->d_table, k->width,
                                                 k->n_decode, heads, kvh, hd, BS, scale, 0)
                   : vb_attention_decode_mma_f16(d_out, d_ws, ws_bytes, q, kc, vc, k->d_decode,
                                                 k->d_pos, k->d_seq, k->d_table, k->width,
                                                 k->n_decode, heads, kvh, hd, BS, scale, 0);
        break;
    case P_DECODE_REDUCE:
        vb_attention_decode_reduce_kernel(!kv8);
        *err = vb_attention_decode_f16(d_out, d_ws, q, k->d_c16[0], k->d_c16[1], k->d_decode,
                                       k->d_pos, k->d_seq, k->d_table, k->width, k->n_decode,
                                       heads, kvh, hd, BS, scale, 1, 5, 0, 0);
        vb_attention_decode_reduce_kernel(0);
        break;
    case P_DECODE_HEAD:
    case P_DECODE_GROUP:
    case P_DECODE_SPLIT: {
        int per_block = p == P_DECODE_HEAD ? 1 : G, splits = p == P_DECODE_SPLIT ? 3 : 1;
        *err = kv8 ? vb_attention_decode_kv8(d_out, d_ws, q, kc, vc, k->d_decode, k->d_pos,
                                             k->d_seq, k->d_table, k->width, k->n_decode, heads,
                                             kvh, hd, BS, scale, per_block, splits, 0, 0)
                   : vb_attention_decode_f16(d_out, d_ws, q, kc, vc, k->d_decode, k->d_pos,
                                             k->d_seq, k->d_table, k->width, k->n_decode, heads,
                                             kvh, hd, BS, scale, per_block, splits, 0, 0);
        break;
    }
    case P_DECODE_FIXED:
        *err = kv8 ? vb_attention_decode_kv8(d_out, d_ws, q, kc, vc, k->d_decode, k->d_pos,
                                             k->d_seq, k->d_table, k->width, k->n_decode, heads,
                                             kvh, hd, BS, scale, G, fixed_splits, slice, 0)
                   : vb_attention_decode_f16(d_out, d_ws, q, kc, vc, k->d_decode, k->d_pos,
                                             k->d_seq, k->d_table, k->width, k->n_decode, heads,
                                             kvh, hd, BS, scale, G, fixed_splits, slice, 0);
        break;
    case P_PER_TOKEN:
        *err = kv8 ? vb_attention_kv8(d_out, q, kc, vc, NULL, k->d_pos, k->d_seq, k->d_table,
                                      k->width, T, heads, kvh, hd, BS, scale, 0)
                   : vb_attention_f16(d_out, q, kc, vc, NULL, k->d_pos, k->d_seq, k->d_table,
                                      k->width, T, heads, kvh, hd, BS, scale, 0);
        break;
    case P_PREFILL_MMA:
        *err = kv8 ? vb_attention_prefill_mma_kv8(d_out, q, kc, vc, k->d_pos, k->d_mtiles,
                                                  k->n_mtiles, k->d_table, k->width, heads, kvh,
                                                  hd, BS, scale, 0)
                   : vb_attention_prefill_mma_f16(d_out, q, kc, vc, k->d_pos, k->d_mtiles,
                                                  k->n_mtiles, k->d_table, k->width, heads, kvh,
                                                  hd, BS, scale, 0);
        break;
    case P_PREFILL_MMA32:
        *err = kv8 ? vb_attention_prefill_mma_f16(d_out, q, k->d_c16[0], k->d_c16[1], k->d_pos,
                                                  k->d_mtiles, k->n_mtiles, k->d_table, k->width,
                                                  heads, kvh, hd, BS, scale, 0)
                   : vb_attention_prefill_mma32_f16(d_out, q, k->d_c16[0], k->d_c16[1], k->d_pos,
                                                    k->d_mtiles, k->n_mtiles, k->d_table,
                                                    k->width, heads, kvh, hd, BS, scale, 0);
        break;
    case P_PREFILL_WGMMA:
    case P_PREFILL_WGMMA_SW:
    case P_PREFILL_WGMMA_K128:
        *err = kv8 && p != P_PREFILL_WGMMA_K128
                   ? vb_attention_prefill_mma32_f16(d_out, q, k->d_c16[0], k->d_c16[1], k->d_pos,
                                                    k->d_mtiles, k->n_mtiles, k->d_table,
                                                    k->width, heads, kvh, hd, BS, scale, 0)
                   : vb_attention_prefill_wgmma_f16(
                         d_out, q, k->d_c16[0], k->d_c16[1], k->d_pos, k->d_mtiles, k->n_mtiles,
                         k->d_table, k->width, heads, kvh, hd, BS, scale,
                         p == P_PREFILL_WGMMA      ? VB_WGMMA_PLAIN
                         : p == P_PREFILL_WGMMA_SW ? VB_WGMMA_SW128
                                                   : VB_WGMMA_K128,
                         0);
        break;
    case P_PREFILL_WMMA:
        *err = kv8 ? vb_attention_prefill_kv8(d_out, q, kc, vc, k->d_pos, k->d_tiles, k->n_tiles,
                                              k->d_table, k->width, heads, kvh, hd, BS, scale, 0)
                   : vb_attention_prefill_f16(d_out, q, kc, vc, k->d_pos, k->d_tiles, k->n_tiles,
                                              k->d_table, k->width, heads, kvh, hd, BS, scale, 0);
        break;
    default:
        break;
    }
    if (*err == cudaSuccess)
        *err = cudaDeviceSynchronize();
    uint16_t *h = host_copy(d_out, on * 2);
    CUDA_CHECK(cudaFree(d_out));
    CUDA_CHECK(cudaFree(d_ws));
    return h;
}

/* Token t's rows are the path's: decode paths the decode tokens, prefill
 * paths the tiles' tokens, the per-token kernel all. */
static bool path_writes(const kstep *k, enum path p, int t)
{
    bool is_decode = k->fresh[k->token_seq[t]] == 1;
    if (p == P_PER_TOKEN)
        return true;
    return p <= P_DECODE_FIXED ? is_decode : !is_decode;
}

static void run_attention_case(int n, const int *ctx, const int *fresh, int heads, int kv_heads,
                               int hd)
{
    kstep k;
    kstep_make(&k, n, ctx, fresh, heads, kv_heads, hd);
    float *ref = cpu_reference(&k);
    int max_ctx = 0;
    for (int s = 0; s < n; s++)
        max_ctx = ctx[s] > max_ctx ? ctx[s] : max_ctx;
    const size_t row = (size_t)heads * hd;
    for (int p = 0; p < P_COUNT; p++) {
        cudaError_t e8 = cudaSuccess, e16 = cudaSuccess;
        uint16_t *got = run_path(&k, (enum path)p, true, &e8);
        if (!got)
            continue;
        uint16_t *twin = run_path(&k, (enum path)p, false, &e16);
        double diff = 0, mag = 0;
        size_t unwritten = 0, not_twin = 0, compared = 0;
        for (int t = 0; t < k.T; t++) {
            if (!path_writes(&k, (enum path)p, t))
                continue;
            for (size_t i = t * row; i < (t + 1) * row; i++) {
                float g = vb_half_to_float(got[i]);
                compared++;
                not_twin += got[i] != twin[i];
                if (!isfinite(g)) {
                    unwritten++;
                    continue;
                }
                double d = fabs((double)g - ref[i]);
                diff = d > diff ? d : diff;
                mag = fabs(ref[i]) > mag ? fabs(ref[i]) : mag;
            }
        }
        double rel = diff / (mag > 0 ? mag : 1);
        printf("  G %d hd %3d ctx <= %4d %-38s rel err %.2e; %zu of %zu values differ from "
               "the fp16 kernel's%s\n", heads / kv_heads, hd, max_ctx, path_name[p], rel,
               not_twin, compared, unwritten ? "  (NaN/unwritten!)" : "");
        CHECK_INT_EQ(e8, cudaSuccess);
        CHECK_INT_EQ(e16, cudaSuccess);
        CHECK_INT_EQ(unwritten, 0);
        CHECK(rel <= 1e-2);
        if (p == P_PREFILL_WGMMA_K128) /* its own rounding, as close as the others' (<= 7e-4) */
            CHECK(rel <= 2e-3);
        CHECK_INT_EQ(not_twin, 0);
        free(got);
        free(twin);
    }
    free(ref);
    kstep_free(&k);
}

static void test_attention(void)
{
    /* decodes at and across block boundaries and a 1-position context, a
     * prompt from scratch (two tiles), a chunk on a cached prefix */
    const int ctx[6] = {1, 16, 17, 300, 33, 1000};
    const int fresh[6] = {1, 1, 1, 1, 33, 40};
    const int shapes[][3] = {{4, 4, 64}, {8, 2, 128}, {28, 4, 128}, {16, 2, 80}, {8, 1, 256},
                             {16, 2, 64}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        run_attention_case(6, ctx, fresh, shapes[i][0], shapes[i][1], shapes[i][2]);
    /* long decodes: several splits of the mma kernel (512 positions a split) */
    const int lctx[4] = {513, 1537, 2048, 4000}, lfresh[4] = {1, 1, 1, 1};
    run_attention_case(4, lctx, lfresh, 28, 4, 128);
}

/* A block size that leaves the int8 blocks misaligned for 16-byte copies:
 * refused, not misread. */
static void test_refusals(void)
{
    CHECK_INT_EQ(vb_attention_prefill_mma_kv8(NULL, NULL, NULL, NULL, NULL, NULL, 1, NULL, 1, 2,
                                              1, 64, 3, 1.0f, 0),
                 cudaErrorInvalidValue);
    CHECK_INT_EQ(vb_attention_decode_mma_kv8(NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL,
                                             NULL, 1, 1, 2, 1, 64, 3, 1.0f, 0),
                 cudaErrorInvalidValue);
    CHECK_INT_EQ(vb_attention_decode_kv8(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1,
                                         1, 2, 1, 64, 3, 1.0f, 1, 1, 0, 0),
                 cudaErrorInvalidValue);
}

int main(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0)
        return test_skip("no CUDA device on this machine");
    cpu = cpu_backend_create(0, MPI_COMM_NULL, 1);
    if (!cpu) {
        fprintf(stderr, "no CPU backend\n");
        return 1;
    }
    cpu->kv_dtype = VB_KV_INT8;
    RUN_TEST(test_write);
    RUN_TEST(test_attention);
    RUN_TEST(test_refusals);
    cpu->destroy(cpu);
    return test_summary();
}

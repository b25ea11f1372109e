/* The CUDA backend's quantized projections (issue #21) against the CPU
 * reference.
 *
 * 1. matmul_quant on random vb_qweights (4 and 8 bits; group sizes 16, 32,
 *    64, 128, 256 and per channel; act order's perm with and without g_idx;
 *    g_idx with a short last group; asymmetric and symmetric zeros; n_out
 *    not a multiple of the GEMV's rows per block or of the mma kernel's 16-row
 *    tiles, n_in the GEMV does not take) at T = 1, 3, 8, 64 and 300, each on
 *    both paths: the register-dequant GEMV (T <= 8 where the shape allows)
 *    and, with VB_NO_GEMV's knob, the dequantize + cuBLAS path. The GEMV
 *    runs as the entry point chooses, with the SIMT kernel forced, and,
 *    where the layout takes the mma kernel (gemv_quant.cu; sm_80+: 1, 2 or
 *    4 groups a step), with each split (KS 1, 2, 4, 8, 12 warps a tile,
 *    including step counts KS does not divide) and unroll (1, 2, 4) forced
 *    (U = 1 gives the bits U = 2 gives: a warp sums its steps in the same
 *    order).
 *    Reference: quant_dequant_rows (the CPU backend's dequantization,
 *    model/quant_load.c) times the same fp16-rounded x gathered through
 *    perm, summed in double. Tolerance:
 *    max |gpu - ref| / max |ref| <= 5e-3 (fp32 accumulation, fp16 output;
 *    the dequantize path also rounds each weight to fp16), as
 *    test_cuda_backend_ops.c's GEMMs. Outputs are poisoned with NaN first.
 *    Before that, each case's dequantization (vb_quant_dequant_f16) is
 *    compared bit for bit with the CPU's rounded to fp16.
 *    Then a layer's q, k, v and gate, up joined as the loaders join them,
 *    through the fused quantized ops (test_joined_projections), and the
 *    same with the SiLU-gate / RoPE + KV write in the GEMV's epilogue
 *    (VB_QGEMV_EPILOGUE's paired kernels) equal to them byte for byte
 *    (paired_check).
 * 2. With QUANT_FIXTURES_DIR as argv[1]: the streaming loader
 *    (cuda_weights_load, what generate uses) puts exactly the bytes of
 *    model_load_cpu + cuda_weights_upload on the GPU for every quantized
 *    projection of the fixtures (tests/forward/quant_fixtures, and
 *    int8_at_load_fp16 under --quantize int8), on both ranks of tp 2 too
 *    (tp_plan for rank r; no second process needed).
 * Skips (77) without a GPU. */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/backend_cuda.h"
#include "cuda/cuda_check.h"
#include "cuda/cuda_qweight.h"
#include "cuda/weights_stream.h"
#include "harness.h"
#include "kernels.h"
#include "model/model_load.h"
#include "model/quant_config.h"
#include "model/quant_weights.h"
#include "util/env.h"
#include "util/half.h"

#define TOL 5e-3


/* The ways one case is run: the GEMV as chosen, forced variants of it, and
 * the dequantize + cuBLAS path. */
typedef struct variant {
    const char *name;
    int nogemv;           /* the dequantize + cuBLAS backend */
    int path, ks, unroll; /* vb_gemv_quant_force */
    int mma;              /* only where the layout takes the mma kernel */
    int ring;             /* vb_gemv_quant_ring: the ring kernel's stages, 0 none */
    const char *same_as;  /* NULL, or an earlier variant whose bits it must give */
} variant;
static const variant variants[] = {
    {"gemv", 0, 0, 0, 0, 0, 0, NULL}, {"simt", 0, 1, 0, 0, 0, 0, NULL},
    {"mma ks1", 0, 0, 1, 0, 1, 0, NULL},
    {"mma ks2", 0, 0, 2, 0, 1, 0, NULL}, {"mma ks4", 0, 0, 4, 0, 1, 0, NULL},
    {"mma ks8", 0, 0, 8, 0, 1, 0, NULL},
    {"mma u2", 0, 0, 0, 2, 1, 0, NULL}, {"mma u4", 0, 0, 0, 4, 1, 0, NULL},
    {"dequant", 1, 0, 0, 0, 0, 0, NULL},
    /* the mma kernel's blocks looping over tiles (2 blocks: many tiles a
     * block even here), with one and with several tiles a block at a
     * time, and a block a tile group (the grid before the loop) */
    {"mma 2blk", 0, 4, 0, 0, 1, 0, NULL}, {"2blk ks2", 0, 4, 2, 2, 1, 0, NULL},
    {"2blk u4", 0, 4, 8, 4, 1, 0, NULL},
    {"mma grid", 0, 3, 0, 0, 1, 0, NULL}, {"mma ks12", 0, 0, 12, 0, 1, 0, NULL},
    {"2blk ks12", 0, 4, 12, 2, 1, 0, NULL},
    /* U = 1 (KS 8 and 12), whose bits must be U = 2's and 4's */
    {"mma u1", 0, 0, 0, 1, 1, 0, "mma u2"}, {"2blk u1", 0, 4, 8, 1, 1, 0, "2blk u4"},
    /* the ring kernel (where it takes the layout; else the mma kernel):
     * the mma kernel's bits at the same KS, at 2 to 8 stages, its blocks
     * looping over many tiles, a block a tile group, and KS 12. A forced
     * U (which the ring has none of) keeps each on the path of the
     * variant it must equal: unforced, the entry point takes the SIMT
     * kernel for groups smaller than a step at T = 1 */
    {"ring2", 0, 0, 0, 2, 1, 2, "mma u2"}, {"ring4", 0, 0, 0, 2, 1, 4, "mma u2"},
    {"ring8", 0, 0, 0, 2, 1, 8, "mma u2"}, {"2blk rng3", 0, 4, 8, 0, 1, 3, "2blk u4"},
    {"grid rng4", 0, 3, 0, 0, 1, 4, "mma grid"}, {"ks12 rng4", 0, 0, 12, 0, 1, 4, "mma ks12"},
};
#define N_VARIANTS (int)(sizeof variants / sizeof variants[0])

/* gpu_epi: VB_QGEMV_EPILOGUE=1; gpu_fold: that and VB_NORM_FOLD=1 */
static vb_backend *gpu, *gpu_nogemv, *gpu_epi, *gpu_fold;

/* Whether this GPU runs the tensor-core GEMV kernels (mma and ring:
 * compute capability 8.0 and newer). */
static bool qmma_runs(void)
{
    int dev = 0, major = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    return major >= 8;
}
static vb_tuning knobs;
static const char *fixtures;

static uint64_t rng = 2112;
static uint32_t next_u32(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng >> 33);
}
static float frand(void) /* uniform in [-1, 1) */
{
    return (float)((double)next_u32() / 2147483648.0 - 1.0);
}

typedef struct qcase {
    int bits, n_out, n_in;
    int group;   /* columns per group; 0: per channel */
    int perm;    /* act order: a random permutation of the input */
    int gidx;    /* irregular groups through g_idx (n_groups = n_in / group + 1) */
    int asym;    /* zeros anywhere in [0, 2^bits - 1]; else 2^(bits - 1) */
    int bias;
} qcase;

/* A random vb_qweight of case k, host memory (quant_weight_free). */
static vb_qweight *make_qweight(const qcase *k)
{
    vb_qweight *w = calloc(1, sizeof *w);
    int G = k->group ? k->group : k->n_in;
    w->bits = k->bits;
    w->n_out = k->n_out;
    w->n_in = k->n_in;
    if (k->gidx) {
        w->group_size = 0;
        w->n_groups = (k->n_in + G - 1) / G + 1;
        w->g_idx = malloc(sizeof(int32_t) * (size_t)k->n_in);
        /* nondecreasing, every group used, sizes uneven */
        for (int j = 0; j < k->n_in; j++)
            w->g_idx[j] = (int32_t)((int64_t)j * w->n_groups / k->n_in);
    } else {
        w->group_size = G;
        w->n_groups = k->n_in / G;
    }
    if (k->perm) {
        w->perm = malloc(sizeof(int32_t) * (size_t)k->n_in);
        for (int j = 0; j < k->n_in; j++)
            w->perm[j] = j;
        for (int j = k->n_in - 1; j > 0; j--) {
            int i = (int)(next_u32() % (uint32_t)(j + 1));
            int32_t t = w->perm[i];
            w->perm[i] = w->perm[j];
            w->perm[j] = t;
        }
    }
    size_t row_bytes = (size_t)k->n_in * (size_t)k->bits / 8;
    w->q = malloc((size_t)k->n_out * row_bytes);
    for (size_t i = 0; i < (size_t)k->n_out * row_bytes; i++)
        w->q[i] = (uint8_t)next_u32();
    size_t ng = (size_t)k->n_out * (size_t)w->n_groups;
    w->scales = malloc(ng * 2);
    w->zeros = malloc(ng * 2);
    int levels = 1 << k->bits;
    /* scales so that a weight is about 0.1 at 4 bits, 1 at 8 */
    float base = k->bits == 4 ? 0.015f : 0.008f;
    for (size_t i = 0; i < ng; i++) {
        w->scales[i] = vb_float_to_half(base * (1.0f + 0.5f * frand()));
        w->zeros[i] = vb_float_to_half(k->asym ? (float)(next_u32() % (uint32_t)levels)
                                               : (float)(levels / 2));
    }
    return w;
}

/* vb_quant_dequant_f16 (the large steps' path) writes, bit for bit, the
 * CPU backend's dequantized weights rounded once to fp16 (clamped), at
 * column perm[j] for internal column j: its word kernel for the common
 * layouts (no perm, no g_idx) and its per-weight kernel for the others. */
static void check_dequant_exact(const vb_qweight *h, const cuda_qweight *d, const char *name)
{
    size_t n = (size_t)h->n_out * (size_t)h->n_in;
    float *deq = malloc(sizeof(float) * n);
    uint16_t *got = malloc(n * 2);
    quant_dequant_rows(h, 0, h->n_out, deq);
    CUDA_CHECK(cudaMemset(d->scratch, 0xff, n * 2)); /* NaN */
    const vb_qmat m = cuda_qweight_qmat(d);
    CUDA_CHECK(vb_quant_dequant_f16(d->scratch, &m, NULL));
    CUDA_CHECK(cudaMemcpy(got, d->scratch, n * 2, cudaMemcpyDeviceToHost));
    size_t bad = 0;
    for (int o = 0; o < h->n_out; o++)
        for (int j = 0; j < h->n_in; j++) {
            float w = deq[(size_t)o * h->n_in + j];
            w = w > 65504.0f ? 65504.0f : w < -65504.0f ? -65504.0f : w;
            int col = h->perm ? h->perm[j] : j;
            bad += got[(size_t)o * h->n_in + col] != vb_float_to_half(w);
        }
    if (bad)
        fprintf(stderr, "  %s: %zu of %zu dequantized weights differ from the CPU's\n", name,
                bad, n);
    CHECK_INT_EQ(bad, 0);
    free(got);
    free(deq);
}

/* ref[t, o] = sum_j x[t, perm[j]] * dequant(w)[o, j] (+ bias[o]), double sums */
static float *reference(const vb_qweight *w, const float *x, const float *bias, int T)
{
    float *deq = malloc(sizeof(float) * (size_t)w->n_out * (size_t)w->n_in);
    quant_dequant_rows(w, 0, w->n_out, deq);
    float *ref = malloc(sizeof(float) * (size_t)T * (size_t)w->n_out);
    for (int t = 0; t < T; t++)
        for (int o = 0; o < w->n_out; o++) {
            double s = bias ? bias[o] : 0.0;
            const float *d = deq + (size_t)o * w->n_in;
            const float *xt = x + (size_t)t * w->n_in;
            for (int j = 0; j < w->n_in; j++)
                s += (double)xt[w->perm ? w->perm[j] : j] * d[j];
            ref[(size_t)t * w->n_out + o] = (float)s;
        }
    free(deq);
    return ref;
}

static void *to_gpu_f16(const float *x, size_t n)
{
    uint16_t *h = malloc(n * 2 + 2);
    for (size_t i = 0; i < n; i++)
        h[i] = vb_float_to_half(x[i]);
    void *d = gpu->alloc(gpu, n * 2 + 2);
    gpu->to_device(gpu, d, h, n * 2);
    free(h);
    return d;
}

/* n bytes at p set to 0xff (NaN halves), finished before the next launch:
 * the memset runs on the legacy default stream, which the backends'
 * streams (cudaStreamNonBlocking) do not wait for, so without the wait a
 * backend's kernel could write its output before the NaNs land over it. */
static void nan_fill(void *p, size_t n)
{
    CUDA_CHECK(cudaMemset(p, 0xff, n));
    CUDA_CHECK(cudaDeviceSynchronize());
}

/* max |got - want| / max |want|; a NaN (unwritten element) fails */
static double rel_err(const float *want, const uint16_t *got, size_t n, size_t *nan)
{
    double diff = 0, ref = 0;
    *nan = 0;
    for (size_t i = 0; i < n; i++) {
        float g = vb_half_to_float(got[i]);
        if (!isfinite(g)) {
            (*nan)++;
            continue;
        }
        double d = fabs((double)g - want[i]);
        diff = d > diff ? d : diff;
        ref = fabs(want[i]) > ref ? fabs(want[i]) : ref;
    }
    return diff / (ref > 0 ? ref : 1);
}

static void run_case(const qcase *k)
{
    vb_qweight *h = make_qweight(k);
    cuda_qweight *d = NULL;
    vb_err err = {{0}};
    char name[64];
    snprintf(name, sizeof name, "case %d-bit [%d, %d]", k->bits, k->n_out, k->n_in);
    if (cuda_qweight_upload(&d, h, name, &err) != 0) {
        fprintf(stderr, "  %s\n", err.msg);
        CHECK(0);
        quant_weight_free(h);
        return;
    }
    /* the scratch the loaders attach (cuda_qweights_attach_scratch) */
    d->scratch_elems = cuda_qweight_scratch_elems(k->n_out, k->n_in);
    CUDA_CHECK(cudaMalloc((void **)&d->scratch, d->scratch_elems * 2));
    d->owns_scratch = true;
    CHECK_INT_EQ(d->w.bytes, (uint64_t)k->n_out * k->n_in * k->bits / 8 +
                                 (uint64_t)k->n_out * h->n_groups * 4 +
                                 (h->perm ? 4ull * k->n_in : 0) + (h->g_idx ? 4ull * k->n_in : 0));
    static const int Ts[] = {1, 2, 3, 8, 64, 300};
    /* the mma kernel's layouts (gemv_quant.cu): no g_idx, whole steps of a
     * row (512 / bits columns), groups of whole steps or 2 or 4 groups of
     * whole 16-byte chunks a step */
    const int step_cols = 512 / k->bits, chunk_cols = step_cols / 4;
    const bool mma_layout =
        !h->g_idx && k->n_in % step_cols == 0 &&
        (h->group_size % step_cols == 0 ||
         (h->group_size % chunk_cols == 0 && step_cols % h->group_size == 0));
    /* row blocks where the upload takes them (kernels.h vb_qmat): every
     * kernel below also runs on a row-order copy and must give the same bits */
    CHECK(d->blocked == (qmma_runs() && knobs.qgemv_blocks &&
                         VB_QMAT_BLOCKED_OK(k->n_out, k->n_in, k->bits, h->g_idx, h->perm) &&
                         h->group_size % (512 / k->bits) == 0));
    uint8_t *q_blocks = d->w.q, *q_rows = NULL;
    const size_t q_bytes = (size_t)k->n_out * k->n_in * k->bits / 8;
    if (d->blocked) {
        CUDA_CHECK(cudaMalloc((void **)&q_rows, q_bytes));
        CUDA_CHECK(vb_quant_block_rows(q_rows, q_blocks, k->n_out, q_bytes / k->n_out, 0, 0));
        CUDA_CHECK(cudaDeviceSynchronize());
        d->w.q = q_rows, d->blocked = false;
        check_dequant_exact(h, d, name);
        d->w.q = q_blocks, d->blocked = true;
    }
    check_dequant_exact(h, d, name);
    /* the GEMV's tiled scales and zeros, as the loaders make them (o's
     * place in a one-layer model): each variant runs with and without
     * them, and must give the same bits (sz_tiles_rows 0: not used) */
    layer_weights L1 = {0};
    L1.o = d;
    model_weights dev1 = {.layers = &L1, .n_layers = 1};
    model_config c1 = {0};
    c1.n_layers = 1;
    cuda_qweights_tile_scales(&dev1, &c1);
    const bool tiled = d->sz_tiles != NULL;
    /* where the kernel takes them: groups of a power of two of whole steps,
     * rows of at least 64 steps (qgemv_tiles.h) */
    CHECK(tiled == (!h->g_idx && k->n_in % step_cols == 0 && h->group_size % step_cols == 0 &&
                    ((h->group_size / step_cols) & (h->group_size / step_cols - 1)) == 0 &&
                    k->n_in / step_cols >= 64));
    float *bias = NULL;
    void *d_bias = NULL;
    if (k->bias) {
        bias = malloc(sizeof(float) * (size_t)k->n_out);
        for (int o = 0; o < k->n_out; o++)
            bias[o] = vb_half_to_float(vb_float_to_half(frand()));
        d_bias = to_gpu_f16(bias, (size_t)k->n_out);
    }
    for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++) {
        int T = Ts[ti];
        size_t nx = (size_t)T * k->n_in, no = (size_t)T * k->n_out;
        float *x = malloc(sizeof(float) * nx);
        for (size_t i = 0; i < nx; i++)
            x[i] = vb_half_to_float(vb_float_to_half(frand()));
        float *ref = reference(h, x, bias, T);
        void *d_x = to_gpu_f16(x, nx);
        void *d_out = gpu->alloc(gpu, no * 2 + 2);
        uint16_t *got = malloc(no * 2 + 2);
        const bool takes_gemv = vb_gemv_quant_supported(T, k->bits, k->n_in, d_x, d->w.q);
        uint16_t *outs[N_VARIANTS] = {NULL}; /* each variant's output, for same_as */
        for (int vi = 0; vi < N_VARIANTS; vi++) {
            const variant *v = &variants[vi];
            if (!v->nogemv && vi > 0 && (!takes_gemv || (v->mma && !mma_layout)))
                continue; /* the forced variants only where they are a different kernel */
            vb_gemv_quant_ring(v->ring);
            const unsigned long ring_before = vb_gemv_quant_ring_launches();
            vb_backend *b = v->nogemv ? gpu_nogemv : gpu;
            for (int rows = 0; rows <= (int)(q_rows != NULL); rows++) {
                d->w.q = rows ? q_rows : q_blocks, d->blocked = !rows && q_rows;
                for (int with_tiles = 0; with_tiles <= (int)tiled; with_tiles++) {
                    d->sz_tiles_rows = with_tiles ? k->n_out : 0;
                    nan_fill(d_out, no * 2);
                    vb_gemv_quant_force(v->path, v->ks, v->unroll);
                    b->matmul_quant(b, d_out, d_x, d, d_bias, T, k->n_in, k->n_out);
                    vb_gemv_quant_force(0, 0, 0);
                    CUDA_CHECK(cudaDeviceSynchronize());
                    CUDA_CHECK(cudaGetLastError());
                    if (with_tiles || rows) { /* the bits of the plain arrays in row blocks */
                        uint16_t *other = malloc(no * 2 + 2);
                        b->to_host(b, other, d_out, no * 2);
                        const bool same = memcmp(other, got, no * 2) == 0;
                        if (!same)
                            printf("  %s: bits DIFFER%s%s\n", v->name,
                                   with_tiles ? " with tiled scales" : "",
                                   rows ? " in row order" : "");
                        CHECK(same);
                        free(other);
                    } else {
                        b->to_host(b, got, d_out, no * 2);
                    }
                }
            }
            d->w.q = q_blocks, d->blocked = q_rows != NULL;
            if (!v->nogemv && takes_gemv) {
                /* x read through L1 and the weights allocating there (the
                 * kernel before sessions 32 and 33): the same bits as the
                 * default (x in shared memory, weights streaming) */
                nan_fill(d_out, no * 2);
                vb_gemv_quant_x_shared(0);
                vb_gemv_quant_l1_alloc(1);
                vb_gemv_quant_force(v->path, v->ks, v->unroll);
                gpu->matmul_quant(gpu, d_out, d_x, d, d_bias, T, k->n_in, k->n_out);
                vb_gemv_quant_force(0, 0, 0);
                vb_gemv_quant_l1_alloc(knobs.qgemv_l1_alloc); /* the backend's, again */
                vb_gemv_quant_x_shared(knobs.qgemv_x_shared);
                CUDA_CHECK(cudaDeviceSynchronize());
                CUDA_CHECK(cudaGetLastError());
                uint16_t *old_got = malloc(no * 2 + 2);
                gpu->to_host(gpu, old_got, d_out, no * 2);
                CHECK(memcmp(old_got, got, no * 2) == 0);
                free(old_got);
            }
            vb_gemv_quant_ring(knobs.qgemv_ring); /* the backend's, again */
            /* the ring ran where it takes the layout (a power of two of
             * whole steps a group; plain scales read as 4-byte words: an
             * even count), on sm_80+ */
            const int gsteps = h->group_size / step_cols;
            if (v->ring && !h->g_idx && k->n_in % step_cols == 0 &&
                h->group_size % step_cols == 0 && gsteps > 0 && (gsteps & (gsteps - 1)) == 0 &&
                (long)k->n_out * h->n_groups % 2 == 0 && qmma_runs())
                CHECK(vb_gemv_quant_ring_launches() > ring_before);
            outs[vi] = malloc(no * 2 + 2);
            memcpy(outs[vi], got, no * 2);
            for (int ri = 0; v->same_as && ri < vi; ri++)
                if (!strcmp(variants[ri].name, v->same_as) && outs[ri]) {
                    const bool same = memcmp(outs[ri], got, no * 2) == 0;
                    if (!same)
                        printf("  %s: bits DIFFER from %s's\n", v->name, v->same_as);
                    CHECK(same);
                }
            size_t nan = 0;
            double rel = rel_err(ref, got, no, &nan);
            printf("  %d-bit [%5d, %4d] group %4d%s%s%s%s T %3d %-8s rel err %.2e%s\n",
                   k->bits, k->n_out, k->n_in, k->group, k->perm ? " perm" : "",
                   k->gidx ? " g_idx" : "", k->asym ? " asym" : " sym", k->bias ? " bias" : "",
                   T, v->nogemv || !takes_gemv ? "dequant" : v->name, rel,
                   nan ? "  (NaN/unwritten!)" : "");
            CHECK_INT_EQ(nan, 0);
            CHECK(rel <= TOL);
        }
        free(got);
        for (int vi = 0; vi < N_VARIANTS; vi++)
            free(outs[vi]);
        gpu->free(gpu, d_out);
        gpu->free(gpu, d_x);
        free(ref);
        free(x);
    }
    if (d_bias)
        gpu->free(gpu, d_bias);
    free(bias);
    if (q_rows)
        CUDA_CHECK(cudaFree(q_rows));
    cuda_qweight_free(d);
    quant_weight_free(h);
}

static void test_matmul_quant(void)
{
    static const qcase cases[] = {
        /* bits n_out n_in group perm gidx asym bias */
        {4, 72, 128, 32, 0, 0, 1, 0},
        {4, 1001, 512, 128, 0, 0, 1, 1},  /* n_out odd, not a multiple of 16 rows a block */
        {4, 257, 256, 128, 1, 0, 0, 0},   /* act order, whole groups */
        {4, 130, 384, 32, 1, 1, 1, 0},    /* act order on part of the input: g_idx */
        {4, 40, 320, 128, 0, 1, 1, 1},    /* a short last group (g_idx, no perm) */
        {4, 33, 96, 0, 0, 0, 1, 0},       /* per channel */
        {4, 48, 256, 16, 0, 0, 1, 0},     /* groups smaller than a 32-column chunk */
        {4, 50, 200, 40, 0, 0, 1, 0},     /* n_in the GEMV does not take: dequantize */
        {4, 3584, 1024, 128, 0, 0, 1, 0}, /* a real layer's row count */
        {4, 9000, 256, 64, 1, 0, 1, 1},   /* rows enough for whole rows per warp (KS 1) */
        {4, 72, 8192, 128, 0, 0, 1, 1},   /* long rows: the tiled scales and zeros */
        {4, 24, 8192, 0, 0, 0, 1, 0},     /* the same per channel (64 steps a group) */
        {8, 99, 256, 32, 0, 0, 1, 1},
        {8, 300, 512, 128, 1, 0, 0, 0},
        {8, 65, 160, 0, 0, 0, 0, 0},      /* per channel (--quantize int8, W8A16 channel) */
        {8, 70, 256, 32, 1, 1, 0, 0},
        {8, 17, 72, 24, 0, 0, 1, 0},      /* n_in not a multiple of 16: dequantize */
        {8, 9001, 128, 32, 0, 1, 1, 0},   /* KS 1, g_idx */
        {8, 40, 4096, 128, 1, 0, 0, 0},   /* tiled, 2 steps a group, act order */
        /* the mma kernel's layouts (sm_80+): 128-column steps at 4 bits, 64 at 8 */
        {4, 20000, 256, 128, 0, 0, 1, 1}, /* many tiles */
        {4, 40, 384, 0, 0, 0, 1, 0},      /* per channel: one group of 3 steps */
        {4, 24, 768, 256, 0, 0, 0, 0},    /* 2 steps a group; a half-empty second tile */
        {4, 77, 1152, 128, 0, 0, 1, 1},   /* 9 steps: no KS > 1 divides them */
        {8, 130, 192, 64, 0, 0, 1, 1},    /* 8-bit, one step a group, 3 steps */
        {8, 18000, 128, 0, 0, 0, 0, 0},   /* 8-bit per channel, many tiles */
        {8, 33, 1280, 128, 1, 0, 1, 0},   /* 8-bit act order (perm, whole groups), 20 steps */
        {8, 50, 128, 16, 0, 0, 1, 1},     /* 8-bit, 4 groups a step */
        {4, 3000, 512, 32, 0, 0, 1, 0},   /* 4 groups a step, many tiles */
        {4, 100, 640, 64, 1, 0, 1, 1},    /* 2 groups a step, act order */
        {8, 136, 1024, 128, 0, 0, 1, 1},  /* 8-bit in row blocks on sm_80+ (2 steps a group) */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&cases[i]);
}

/* Device bytes of n at p, copied to the host once every stream's work is
 * done (a backend's stream does not order with this copy's legacy
 * stream); and two device ranges equal (two NULLs are). */
static void *dev_bytes(const void *p, size_t n)
{
    void *h = malloc(n ? n : 1);
    CUDA_CHECK(cudaDeviceSynchronize());
    if (n)
        CUDA_CHECK(cudaMemcpy(h, p, n, cudaMemcpyDeviceToHost));
    return h;
}

static bool same_device(const void *a, const void *b, size_t n)
{
    if (!a || !b)
        return a == b;
    void *x = dev_bytes(a, n), *y = dev_bytes(b, n);
    bool same = memcmp(x, y, n) == 0;
    free(x);
    free(y);
    return same;
}

static void *dev_copy(const void *d, size_t n)
{
    void *c = gpu->alloc(gpu, n);
    CUDA_CHECK(cudaMemcpy(c, d, n, cudaMemcpyDeviceToDevice));
    return c;
}

static int *dev_ints(const int *h, size_t n)
{
    int *d = gpu->alloc(gpu, n * sizeof *d);
    gpu->to_device(gpu, d, h, n * sizeof *d);
    return d;
}

/* VB_QGEMV_EPILOGUE's paired kernels (gemv_quant.cu) against the plain
 * path's bits, where the layout takes them (one group a step or more, no
 * act order; vb_gemv_quant_pairs_supported says so exactly then):
 * - gate/up through a backend made with the knob (silu(gate) * up in the
 *   GEMV's epilogue) against matmul_gate_up_quant's GEMV + SiLU kernel
 *   (plain_gu, the default backend's result);
 * - q/k/v with RoPE and the KV write (vb_gemv_quant_qkv_rope_f16) against
 *   vb_gemv_quant_segs_f16 then vb_rope_kv_write_f16: q, k, v and both
 *   whole caches (written slots and the rest), two sequences' block
 *   tables, a cos/sin scale, and at T > 1 a last row with no sequence (a
 *   graph bucket's padding: rotated, not cached).
 * Byte for byte: each row's sum is the plain kernel's arithmetic. */
static void paired_check(cuda_qweight *const d[5], const int ns[5], int bits, int group,
                         int perm, int H, int T, const void *d_x, void *const d_bias[3],
                         const void *plain_gu)
{
    const bool expect = !perm && group % (512 / bits) == 0;
    vb_qmat gu = cuda_qweight_qmat(d[3]);
    gu.n_out = 2 * ns[3];
    gu.sz_tiles = NULL;
    CHECK(vb_gemv_quant_pairs_supported(&gu, T, d_x) == (group % (512 / bits) == 0));
    const size_t gu_bytes = (size_t)T * ns[3] * 2;
    void *epi_gu = gpu->alloc(gpu, gu_bytes);
    for (int ring = 0; ring <= 4; ring += 4) { /* the mma kernel, the ring kernel */
        nan_fill(epi_gu, gu_bytes);
        vb_gemv_quant_ring(ring);
        const unsigned long ring_before = vb_gemv_quant_ring_launches();
        CHECK(gpu_epi->matmul_gate_up_quant(gpu_epi, epi_gu, d_x, d[3], d[4], T, H, ns[3], NULL));
        vb_gemv_quant_ring(knobs.qgemv_ring);
        if (ring && expect && qmma_runs()) /* the ring took the paired rows */
            CHECK(vb_gemv_quant_ring_launches() > ring_before);
        CUDA_CHECK(cudaDeviceSynchronize());
        bool gu_same = same_device(plain_gu, epi_gu, gu_bytes);
        printf("  paired %d-bit group %d T %d gate/up (%s, ring %d): %s\n", bits, group, T,
               expect ? "SiLU in the epilogue" : "the plain path", ring,
               gu_same ? "same bits" : "DIFFER");
        CHECK(gu_same);
    }
    { /* VB_QGEMV_RING_SCOPE=pairs8: the ring for the 8-bit paired rows alone */
        vb_gemv_quant_ring(3);
        vb_gemv_quant_ring_scope(1);
        unsigned long before = vb_gemv_quant_ring_launches();
        nan_fill(epi_gu, gu_bytes);
        CHECK(gpu_epi->matmul_gate_up_quant(gpu_epi, epi_gu, d_x, d[3], d[4], T, H, ns[3], NULL));
        CUDA_CHECK(cudaDeviceSynchronize());
        CHECK((vb_gemv_quant_ring_launches() > before) == (expect && bits == 8 && qmma_runs()));
        CHECK(same_device(plain_gu, epi_gu, gu_bytes));
        before = vb_gemv_quant_ring_launches(); /* a plain matrix: never the ring */
        vb_qmat gate = cuda_qweight_qmat(d[3]);
        CUDA_CHECK(vb_gemv_quant_f16(epi_gu, d_x, &gate, NULL, T, 0));
        CHECK(vb_gemv_quant_ring_launches() == before);
        vb_gemv_quant_ring_scope(knobs.qgemv_ring_scope == 1);
        vb_gemv_quant_ring(knobs.qgemv_ring);
    }
    { /* KS 4 (VB_QGEMV_KS_BALANCE's pick for the joined 7B gate/up): the
       * paired kernel's bits against the plain path's at the same KS */
        void *plain4 = gpu->alloc(gpu, gu_bytes);
        nan_fill(plain4, gu_bytes);
        nan_fill(epi_gu, gu_bytes);
        vb_gemv_quant_force(0, 4, 2);
        CHECK(gpu->matmul_gate_up_quant(gpu, plain4, d_x, d[3], d[4], T, H, ns[3], NULL));
        CHECK(gpu_epi->matmul_gate_up_quant(gpu_epi, epi_gu, d_x, d[3], d[4], T, H, ns[3], NULL));
        vb_gemv_quant_force(0, 0, 0);
        CUDA_CHECK(cudaDeviceSynchronize());
        const bool same = same_device(plain4, epi_gu, gu_bytes);
        printf("  paired %d-bit group %d T %d gate/up at KS 4: %s\n", bits, group, T,
               same ? "same bits" : "DIFFER");
        CHECK(same);
        gpu->free(gpu, plain4);
    }
    gpu->free(gpu, epi_gu);
    if (perm)
        return; /* q in act order: not joined, nothing to pair */

    const int hd = 64, heads = ns[0] / hd, kv_heads = ns[1] / hd, bs = 16, n_blocks = 24;
    const int max_blocks = 8;
    vb_qmat qkv = cuda_qweight_qmat(d[0]);
    qkv.n_out = ns[0] + ns[1] + ns[2];
    qkv.sz_tiles = NULL;
    CHECK(vb_gemv_quant_pairs_supported(&qkv, T, d_x) == expect);
    if (!expect)
        return;
    int positions[8], token_seq[8], tables[2 * 8];
    for (int t = 0; t < T; t++) {
        positions[t] = 37 + 13 * t;
        token_seq[t] = T > 1 && t == T - 1 ? -1 : t % 2;
    }
    for (int i = 0; i < 2 * max_blocks; i++)
        tables[i] = (7 * i + 3) % n_blocks; /* distinct blocks, out of order */
    float inv[32];
    for (int i = 0; i < hd / 2; i++)
        inv[i] = powf(10000.0f, -2.0f * (float)i / (float)hd);
    float *d_inv = gpu->alloc(gpu, sizeof inv);
    gpu->to_device(gpu, d_inv, inv, sizeof inv);
    int *d_pos = dev_ints(positions, (size_t)T), *d_seq = dev_ints(token_seq, (size_t)T);
    int *d_tab = dev_ints(tables, 2 * max_blocks);
    const size_t cache_n = (size_t)n_blocks * bs * kv_heads * hd;
    float *c0 = malloc(sizeof(float) * cache_n);
    for (size_t i = 0; i < cache_n; i++)
        c0[i] = frand();
    void *kc[2], *vc[2], *out[2][3];
    kc[0] = to_gpu_f16(c0, cache_n);
    vc[0] = dev_copy(kc[0], cache_n * 2);
    kc[1] = dev_copy(kc[0], cache_n * 2);
    vc[1] = dev_copy(kc[0], cache_n * 2);
    for (int path = 0; path < 2; path++)
        for (int i = 0; i < 3; i++) {
            out[path][i] = gpu->alloc(gpu, (size_t)T * ns[i] * 2);
            CUDA_CHECK(cudaMemset(out[path][i], 0xff, (size_t)T * ns[i] * 2));
        }
    const int rows[3] = {ns[0], ns[1], ns[2]};
    const float scale = 0.9f; /* yarn's attention factor: any value but 1 */
    vb_qmat plain = qkv;
    plain.sz_tiles = d[0]->sz_tiles_rows == qkv.n_out ? d[0]->sz_tiles : NULL;
    CUDA_CHECK(vb_gemv_quant_segs_f16((uint16_t *const *)out[0], d_x, &plain,
                                      (const uint16_t *const *)d_bias, rows, 3, T, 0));
    CUDA_CHECK(vb_rope_kv_write_f16(out[0][0], out[0][1], out[0][2], kc[0], vc[0], d_inv, scale,
                                    d_pos, d_seq, d_tab, max_blocks, T, heads, kv_heads, hd, bs,
                                    0));
    vb_gemv_rope r = {d_inv, scale, d_pos, d_seq, d_tab, max_blocks, bs, hd, kv_heads,
                      kc[1], vc[1]};
    void *pristine = dev_copy(kc[1], cache_n * 2); /* the caches before any write */
    for (int ring = 0; ring <= 4; ring += 4) { /* the mma kernel, the ring kernel */
        CUDA_CHECK(cudaMemcpy(kc[1], pristine, cache_n * 2, cudaMemcpyDeviceToDevice));
        CUDA_CHECK(cudaMemcpy(vc[1], pristine, cache_n * 2, cudaMemcpyDeviceToDevice));
        for (int i = 0; i < 3; i++)
            CUDA_CHECK(cudaMemset(out[1][i], 0xff, (size_t)T * ns[i] * 2));
        vb_gemv_quant_ring(ring);
        const unsigned long ring_before = vb_gemv_quant_ring_launches();
        CUDA_CHECK(vb_gemv_quant_qkv_rope_f16((uint16_t *const *)out[1], d_x, &qkv,
                                              (const uint16_t *const *)d_bias, rows, T, &r, NULL, 0));
        vb_gemv_quant_ring(knobs.qgemv_ring);
        if (ring && qmma_runs())
            CHECK(vb_gemv_quant_ring_launches() > ring_before);
        CUDA_CHECK(cudaDeviceSynchronize());
        const char *names[5] = {"q", "k", "v", "k cache", "v cache"};
        for (int i = 0; i < 5; i++) {
            bool same = i < 3 ? same_device(out[0][i], out[1][i], (size_t)T * ns[i] * 2)
                              : same_device(i == 3 ? kc[0] : vc[0], i == 3 ? kc[1] : vc[1],
                                           cache_n * 2);
            printf("  paired %d-bit group %d T %d %s (RoPE in the epilogue, ring %d): %s\n",
                   bits, group, T, names[i], ring, same ? "same bits" : "DIFFER");
            CHECK(same);
        }
    }
    gpu->free(gpu, pristine);
    /* a head_dim the pairs cannot take: refused, nothing launched */
    vb_gemv_rope r48 = r;
    r48.head_dim = 40;
    CHECK(vb_gemv_quant_qkv_rope_f16((uint16_t *const *)out[1], d_x, &qkv,
                                     (const uint16_t *const *)d_bias, rows, T, &r48, NULL, 0) ==
          cudaErrorInvalidValue);
    for (int path = 0; path < 2; path++) {
        gpu->free(gpu, kc[path]);
        gpu->free(gpu, vc[path]);
        for (int i = 0; i < 3; i++)
            gpu->free(gpu, out[path][i]);
    }
    gpu->free(gpu, d_inv);
    gpu->free(gpu, d_pos);
    gpu->free(gpu, d_seq);
    gpu->free(gpu, d_tab);
    free(c0);
}

/* The norm fold (VB_NORM_FOLD, kernels.h vb_gemv_norm and
 * vb_gemv_quant_resid_f16) against the kernels it replaces, byte for byte:
 * - x made by the paired gate/up and q/k/v kernels from a residual
 *   (vb_gemv_norm; the x they are given is NaN, so it must not be read)
 *   against vb_rmsnorm_residual_f16 then the kernels on its x: the outputs
 *   and both caches, with the mma kernel and the ring kernel (which must
 *   have run), and through a backend with the knob (matmul_gate_up_quant);
 *   steps of more than 2 rows refused with nothing written;
 * - the gate matrix added to a residual in the GEMV's epilogue
 *   (vb_gemv_quant_resid_f16, and the backend's matmul_quant_resid)
 *   against vb_gemv_quant_f16 then vb_rmsnorm_residual_f16's add, with
 *   the mma kernel and the ring; the SIMT kernel's layouts refused. */
static void norm_fold_check(cuda_qweight *const d[5], const int ns[5], int bits, int group,
                            int perm, int H, int T, const void *const d_bias[3])
{
    /* the paired kernels' layout (q in act order: q, k and v not joined) */
    const bool pairs = group % (512 / bits) == 0 && qmma_runs();
    const float eps = 1e-6f;
    float *res = malloc(sizeof(float) * (size_t)T * H), *nw = malloc(sizeof(float) * H);
    for (int i = 0; i < T * H; i++)
        res[i] = 4.0f * frand(); /* fp32 values, not fp16's */
    for (int i = 0; i < H; i++)
        nw[i] = vb_half_to_float(vb_float_to_half(1.0f + 0.5f * frand()));
    float *d_res = gpu->alloc(gpu, sizeof(float) * (size_t)T * H);
    gpu->to_device(gpu, d_res, res, sizeof(float) * (size_t)T * H);
    void *d_w = to_gpu_f16(nw, (size_t)H);
    const size_t xb = (size_t)T * H * 2;
    void *d_xn = gpu->alloc(gpu, xb), *d_nan = gpu->alloc(gpu, xb);
    CUDA_CHECK(vb_rmsnorm_residual_f16(d_xn, d_res, NULL, d_w, T, H, eps, 0));
    CUDA_CHECK(cudaMemset(d_nan, 0xff, xb));
    const vb_gemv_norm norm = {d_res, d_w, eps};
    const bool takes = pairs && T <= 2; /* x in shared memory */

    /* gate/up */
    vb_qmat gu = cuda_qweight_qmat(d[3]);
    gu.n_out = 2 * ns[3];
    gu.sz_tiles = NULL;
    const size_t gb = (size_t)T * ns[3] * 2;
    void *want = gpu->alloc(gpu, gb), *got = gpu->alloc(gpu, gb);
    if (pairs)
        CUDA_CHECK(vb_gemv_quant_silu_f16(want, d_xn, &gu, T, NULL, 0));
    for (int ring = 0; ring <= 4 && pairs; ring += 4) {
        CUDA_CHECK(cudaMemset(got, 0xff, gb));
        vb_gemv_quant_ring(ring);
        const unsigned long before = vb_gemv_quant_ring_launches();
        const cudaError_t e = vb_gemv_quant_silu_f16(got, d_nan, &gu, T, &norm, 0);
        vb_gemv_quant_ring(knobs.qgemv_ring);
        CHECK(e == (takes ? cudaSuccess : cudaErrorNotSupported));
        if (!takes)
            break;
        if (ring)
            CHECK(vb_gemv_quant_ring_launches() > before);
        bool same = same_device(want, got, gb);
        printf("  norm fold %d-bit group %d T %d gate/up (ring %d): %s\n", bits, group, T, ring,
               same ? "same bits" : "DIFFER");
        CHECK(same);
    }
    { /* the backend's op with the knob: takes the norm exactly where the kernel does */
        nan_fill(got, gb);
        const vb_norm_in in = {d_res, d_w, eps};
        const bool took =
            gpu_fold->matmul_gate_up_quant(gpu_fold, got, d_nan, d[3], d[4], T, H, ns[3], &in);
        CHECK(took == takes);
        CHECK(!gpu_epi->matmul_gate_up_quant(gpu_epi, got, d_nan, d[3], d[4], T, H, ns[3], &in));
        if (took)
            CHECK(same_device(want, got, gb));
    }

    /* q/k/v with RoPE and the KV write */
    if (pairs && !perm) {
        const int hd = 64, kv_heads = ns[1] / hd, bs = 16, n_blocks = 8, max_blocks = 4;
        vb_qmat qkv = cuda_qweight_qmat(d[0]);
        qkv.n_out = ns[0] + ns[1] + ns[2];
        qkv.sz_tiles = NULL;
        int pos[8], seq[8], tab[8] = {3, 0, 6, 1, 7, 2, 5, 4};
        for (int t = 0; t < 8; t++) {
            pos[t] = 5 + 7 * t;
            seq[t] = t % 2;
        }
        float inv[32];
        for (int i = 0; i < hd / 2; i++)
            inv[i] = powf(10000.0f, -2.0f * (float)i / (float)hd);
        float *d_inv = gpu->alloc(gpu, sizeof inv);
        gpu->to_device(gpu, d_inv, inv, sizeof inv);
        int *d_pos = dev_ints(pos, 8), *d_seq = dev_ints(seq, 8), *d_tab = dev_ints(tab, 8);
        const size_t cb = (size_t)n_blocks * bs * kv_heads * hd * 2;
        void *cache[2][2], *out[2][3];
        for (int k = 0; k < 2; k++) {
            for (int j = 0; j < 2; j++) {
                cache[k][j] = gpu->alloc(gpu, cb);
                CUDA_CHECK(cudaMemset(cache[k][j], 0x3c, cb));
            }
            for (int i = 0; i < 3; i++) {
                out[k][i] = gpu->alloc(gpu, (size_t)T * ns[i] * 2);
                CUDA_CHECK(cudaMemset(out[k][i], 0xff, (size_t)T * ns[i] * 2));
            }
        }
        const int rows[3] = {ns[0], ns[1], ns[2]};
        vb_gemv_rope r = {d_inv, 1.0f, d_pos, d_seq, d_tab, max_blocks, bs, hd, kv_heads,
                          cache[0][0], cache[0][1]};
        CUDA_CHECK(vb_gemv_quant_qkv_rope_f16((uint16_t *const *)out[0], d_xn, &qkv,
                                              (const uint16_t *const *)d_bias, rows, T, &r,
                                              NULL, 0));
        r.k_cache = cache[1][0];
        r.v_cache = cache[1][1];
        for (int ring = 0; ring <= 4; ring += 4) {
            vb_gemv_quant_ring(ring);
            const cudaError_t e = vb_gemv_quant_qkv_rope_f16(
                (uint16_t *const *)out[1], d_nan, &qkv, (const uint16_t *const *)d_bias, rows,
                T, &r, &norm, 0);
            vb_gemv_quant_ring(knobs.qgemv_ring);
            CHECK(e == (takes ? cudaSuccess : cudaErrorNotSupported));
            bool same = true;
            for (int i = 0; i < 3; i++)
                same = same && same_device(out[0][i], out[1][i], (size_t)T * ns[i] * 2) == takes;
            for (int j = 0; j < 2; j++)
                same = same && same_device(cache[0][j], cache[1][j], cb) == takes;
            printf("  norm fold %d-bit group %d T %d q/k/v + caches (ring %d): %s\n", bits, group,
                   T, ring, !takes ? (same ? "refused, nothing written" : "WRITTEN")
                                   : same ? "same bits" : "DIFFER");
            CHECK(same);
        }
        for (int k = 0; k < 2; k++) {
            for (int j = 0; j < 2; j++)
                gpu->free(gpu, cache[k][j]);
            for (int i = 0; i < 3; i++)
                gpu->free(gpu, out[k][i]);
        }
        gpu->free(gpu, d_inv);
        gpu->free(gpu, d_pos);
        gpu->free(gpu, d_seq);
        gpu->free(gpu, d_tab);
    }

    /* the gate matrix into a residual of its width (as o and down) */
    const int n = ns[3];
    const vb_qmat g = cuda_qweight_qmat(d[3]);
    float *r0 = malloc(sizeof(float) * (size_t)T * n);
    for (int i = 0; i < T * n; i++)
        r0[i] = 4.0f * frand();
    float *ra = gpu->alloc(gpu, sizeof(float) * (size_t)T * n);
    float *rb = gpu->alloc(gpu, sizeof(float) * (size_t)T * n);
    gpu->to_device(gpu, ra, r0, sizeof(float) * (size_t)T * n);
    void *gw = to_gpu_f16(nw, (size_t)n), *hn = gpu->alloc(gpu, (size_t)T * n * 2);
    CUDA_CHECK(vb_gemv_quant_f16(got, d_xn, &g, NULL, T, 0));
    CUDA_CHECK(vb_rmsnorm_residual_f16(hn, ra, got, gw, T, n, eps, 0)); /* ra += got */
    /* the mma kernel's layouts (vb_gemv_quant_f16 takes the SIMT kernel for
     * groups smaller than a step at T = 1) */
    const bool mma = qmma_runs() && (T > 1 || group % (512 / bits) == 0);
    for (int ring = 0; ring <= 4; ring += 4) {
        gpu->to_device(gpu, rb, r0, sizeof(float) * (size_t)T * n);
        vb_gemv_quant_ring(ring);
        const cudaError_t e = vb_gemv_quant_resid_f16(rb, d_xn, &g, T, 0);
        vb_gemv_quant_ring(knobs.qgemv_ring);
        CHECK(e == (mma ? cudaSuccess : cudaErrorNotSupported));
        if (!mma)
            break;
        bool same = same_device(ra, rb, sizeof(float) * (size_t)T * n);
        printf("  norm fold %d-bit group %d T %d residual add (ring %d): %s\n", bits, group, T,
               ring, same ? "same bits" : "DIFFER");
        CHECK(same);
    }
    { /* the backend's op: the same where it runs */
        gpu->to_device(gpu, rb, r0, sizeof(float) * (size_t)T * n);
        const bool took = gpu_fold->matmul_quant_resid(gpu_fold, rb, d_xn, d[3], T, H, n);
        CHECK(took == mma);
        CHECK(!gpu_epi->matmul_quant_resid(gpu_epi, rb, d_xn, d[3], T, H, n));
        if (took)
            CHECK(same_device(ra, rb, sizeof(float) * (size_t)T * n));
    }
    gpu->free(gpu, ra);
    gpu->free(gpu, rb);
    gpu->free(gpu, gw);
    gpu->free(gpu, hn);
    free(r0);
    gpu->free(gpu, want);
    gpu->free(gpu, got);
    gpu->free(gpu, d_xn);
    gpu->free(gpu, d_nan);
    gpu->free(gpu, d_w);
    gpu->free(gpu, d_res);
    free(res);
    free(nw);
}

/* One layer's q, k, v and gate, up of one layout, joined as the loaders
 * join them (cuda_qweights_join_layers), through the backend's fused
 * quantized ops (one GEMV launch each group, its segments' outputs and
 * biases; silu(gate) * up) against the reference of each matrix, at T =
 * 1, 2, 3 and 8; and a group with act order, which stays apart (the ops
 * decline it and the forward takes one matmul_quant each). */
static void joined_case(int bits, int group, int perm, int H)
{
    const int Q = 256, KV = 64, I = 384;
    const qcase qc[5] = {
        {bits, Q, H, group, perm, 0, 1, 1}, {bits, KV, H, group, 0, 0, 1, 1},
        {bits, KV, H, group, 0, 0, 1, 1},   {bits, I, H, group, 0, 0, 1, 0},
        {bits, I, H, group, 0, 0, 1, 0},
    };
    vb_qweight *h[5];
    cuda_qweight *d[5];
    vb_err err = {{0}};
    for (int i = 0; i < 5; i++) {
        h[i] = make_qweight(&qc[i]);
        if (cuda_qweight_upload(&d[i], h[i], "joined", &err) != 0) {
            fprintf(stderr, "  %s\n", err.msg);
            CHECK(0);
            return;
        }
    }
    layer_weights L = {0};
    L.q = d[0], L.k = d[1], L.v = d[2], L.gate = d[3], L.up = d[4];
    model_weights dev = {0};
    dev.layers = &L;
    dev.n_layers = 1;
    model_config c = {0};
    c.n_layers = 1;
    cuda_qweights_join_layers(&dev, &c);
    CHECK_INT_EQ(cuda_qweights_attach_scratch(&dev, &c, &err), 0);
    cuda_qweights_tile_scales(&dev, &c);
    /* the mma kernel's one-group-a-step layouts with rows of 64 steps or
     * more get tiles, over the joined rows where joined (q alone in act
     * order: no g_idx here, so it too) */
    const bool tiles = group % (512 / bits) == 0 && H / (512 / bits) >= 64;
    CHECK((d[0]->sz_tiles != NULL) == tiles);
    CHECK((d[3]->sz_tiles != NULL) == tiles);
    if (tiles && !perm)
        CHECK_INT_EQ(d[0]->sz_tiles_rows, Q + 2 * KV);
    CHECK_INT_EQ(d[3]->sz_tiles_rows, tiles ? 2 * I : 0);
    const cuda_qweight *const qkv[3] = {d[0], d[1], d[2]}, *const gu[2] = {d[3], d[4]};
    CHECK(cuda_qweights_adjacent(qkv, 3) == !perm);
    CHECK(cuda_qweights_adjacent(gu, 2));
    float *bias[3];
    void *d_bias[3];
    for (int i = 0; i < 3; i++) {
        bias[i] = malloc(sizeof(float) * (size_t)qc[i].n_out);
        for (int o = 0; o < qc[i].n_out; o++)
            bias[i][o] = vb_half_to_float(vb_float_to_half(frand()));
        d_bias[i] = to_gpu_f16(bias[i], (size_t)qc[i].n_out);
    }
    static const int Ts[] = {1, 2, 3, 8};
    for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++) {
        int T = Ts[ti];
        float *x = malloc(sizeof(float) * (size_t)T * H);
        for (int i = 0; i < T * H; i++)
            x[i] = vb_half_to_float(vb_float_to_half(frand()));
        void *d_x = to_gpu_f16(x, (size_t)T * H);
        float *ref[5];
        void *d_out[5];
        for (int i = 0; i < 5; i++) {
            ref[i] = reference(h[i], x, i < 3 ? bias[i] : NULL, T);
            d_out[i] = gpu->alloc(gpu, (size_t)T * qc[i].n_out * 2);
            nan_fill(d_out[i], (size_t)T * qc[i].n_out * 2);
        }
        const void *const ws[3] = {d[0], d[1], d[2]};
        const void *const bs[3] = {d_bias[0], d_bias[1], d_bias[2]};
        const int ns[3] = {Q, KV, KV};
        void *const outs[3] = {d_out[0], d_out[1], d_out[2]};
        bool took = gpu->matmul_qkv_quant(gpu, outs, d_x, ws, bs, T, H, ns);
        CHECK(took == !perm);
        bool took_gu = gpu->matmul_gate_up_quant(gpu, d_out[3], d_x, d[3], d[4], T, H, I, NULL);
        CHECK(took_gu);
        CUDA_CHECK(cudaDeviceSynchronize());
        for (int i = 0; i < 3 && took; i++) {
            uint16_t *got = malloc((size_t)T * qc[i].n_out * 2);
            gpu->to_host(gpu, got, d_out[i], (size_t)T * qc[i].n_out * 2);
            size_t nan = 0;
            double rel = rel_err(ref[i], got, (size_t)T * qc[i].n_out, &nan);
            printf("  joined %d-bit group %d T %d %s rel err %.2e\n", bits, group, T,
                   i == 0 ? "q" : i == 1 ? "k" : "v", rel);
            CHECK_INT_EQ(nan, 0);
            CHECK(rel <= TOL);
            free(got);
        }
        if (took_gu) { /* silu(gate) * up from the references */
            size_t n = (size_t)T * I;
            float *want = malloc(sizeof(float) * n);
            for (size_t i = 0; i < n; i++) {
                float g = vb_half_to_float(vb_float_to_half(ref[3][i]));
                float u = vb_half_to_float(vb_float_to_half(ref[4][i]));
                want[i] = g / (1.0f + expf(-g)) * u;
            }
            uint16_t *got = malloc(n * 2);
            gpu->to_host(gpu, got, d_out[3], n * 2);
            size_t nan = 0;
            double rel = rel_err(want, got, n, &nan);
            printf("  joined %d-bit group %d T %d gate/up rel err %.2e\n", bits, group, T, rel);
            CHECK_INT_EQ(nan, 0);
            CHECK(rel <= 2 * TOL);
            free(got);
            free(want);
        }
        const int nn[5] = {Q, KV, KV, I, I};
        paired_check(d, nn, bits, group, perm, H, T, d_x, d_bias, d_out[3]);
        norm_fold_check(d, nn, bits, group, perm, H, T, (const void *const *)d_bias);
        for (int i = 0; i < 5; i++) {
            free(ref[i]);
            gpu->free(gpu, d_out[i]);
        }
        gpu->free(gpu, d_x);
        free(x);
    }
    for (int i = 0; i < 3; i++) {
        gpu->free(gpu, d_bias[i]);
        free(bias[i]);
    }
    for (int i = 0; i < 5; i++) {
        cuda_qweight_free(d[i]);
        quant_weight_free(h[i]);
    }
}

static void test_joined_projections(void)
{
    joined_case(4, 128, 0, 512); /* the mma kernel */
    joined_case(8, 128, 0, 512);
    joined_case(8, 64, 0, 512);  /* 8 bits: one group a step */
    joined_case(4, 256, 0, 1024); /* two steps a group */
    joined_case(4, 32, 0, 512);  /* the SIMT kernel at T = 1 */
    joined_case(4, 128, 1, 512); /* q in act order: q, k, v stay apart */
    joined_case(4, 128, 0, 8192); /* long rows: tiled scales over the joined rows */
    joined_case(4, 128, 1, 8192); /* tiled, q apart */
}

/* A layout the kernels cannot run is refused naming the tensor. */
static void test_upload_refusals(void)
{
    qcase k = {4, 8, 64, 32, 1, 1, 1, 0};
    vb_qweight *h = make_qweight(&k);
    cuda_qweight *d = NULL;
    vb_err err = {{0}};
    h->g_idx[5] = h->n_groups; /* out of range */
    CHECK(cuda_qweight_upload(&d, h, "model.layers.3.mlp.up_proj", &err) != 0 && !d);
    CHECK(strstr(err.msg, "model.layers.3.mlp.up_proj") != NULL);
    h->g_idx[5] = 0;
    h->perm[7] = -1;
    CHECK(cuda_qweight_upload(&d, h, "model.layers.3.mlp.up_proj", &err) != 0 && !d);
    CHECK(strstr(err.msg, "permutation") != NULL);
    h->perm[7] = 7;
    h->bits = 3;
    CHECK(cuda_qweight_upload(&d, h, "model.layers.3.mlp.up_proj", &err) != 0 && !d);
    CHECK(strstr(err.msg, "3-bit") != NULL);
    quant_weight_free(h);
}

static void streamed_equals_uploaded(const char *model, int tp, int rank)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", fixtures, model);
    model_config c;
    tp_plan p;
    model_weights host = {0}, up = {0}, st = {0};
    vb_err err = {{0}};
    if (model_config_load(&c, dir, &err) ||
        quant_config_quantize(&c.quant, strncmp(model, "int8_", 5) == 0 ? VB_QUANTIZE_INT8
                                                                         : VB_QUANTIZE_NONE,
                              dir, &err) ||
        tp_plan_make(&p, &c, tp, rank, &err) || model_load_cpu(&host, &c, &p, dir, &err) ||
        cuda_weights_upload(&up, &host, &c, &p, &err) ||
        cuda_weights_load(&st, &c, &p, dir, NULL, &err)) {
        fprintf(stderr, "  %s tp %d rank %d: %s\n", model, tp, rank, err.msg);
        CHECK(0);
        return;
    }
    CHECK(c.quant.method != VB_QUANT_NONE);
    CHECK_INT_EQ(st.quant, c.quant.method);
    CHECK_INT_EQ(st.bytes, up.bytes);
    int bad = 0;
    for (int l = 0; l < c.n_layers; l++) {
        layer_weights *a = &up.layers[l], *b = &st.layers[l];
        const cuda_qweight *qa[] = {a->q, a->k, a->v, a->o, a->gate, a->up, a->down};
        const cuda_qweight *qb[] = {b->q, b->k, b->v, b->o, b->gate, b->up, b->down};
        for (int i = 0; i < 7; i++) {
            const vb_qweight *x = &qa[i]->w, *y = &qb[i]->w;
            size_t q = (size_t)x->n_out * x->n_in * x->bits / 8;
            size_t sz = (size_t)x->n_out * x->n_groups * 2, col = (size_t)x->n_in * 4;
            bool ok = x->bits == y->bits && x->n_out == y->n_out && x->n_in == y->n_in &&
                      x->group_size == y->group_size && x->n_groups == y->n_groups &&
                      !x->perm == !y->perm && !x->g_idx == !y->g_idx &&
                      qb[i]->scratch && qb[i]->scratch_elems == qa[i]->scratch_elems;
            ok = ok && same_device(x->q, y->q, q) && same_device(x->scales, y->scales, sz) &&
                 same_device(x->zeros, y->zeros, sz) && same_device(x->perm, y->perm, col) &&
                 same_device(x->g_idx, y->g_idx, col);
            if (!ok && bad++ == 0)
                fprintf(stderr, "  %s tp %d rank %d: layer %d projection %d differs\n", model,
                        tp, rank, l, i);
        }
    }
    CHECK_INT_EQ(bad, 0);
    printf("  %s tp %d rank %d: streamed = uploaded (%.2f MiB on the GPU)\n", model, tp, rank,
           (double)st.bytes / (1 << 20));
    cuda_weights_free(&st, &c);
    cuda_weights_free(&up, &c);
    model_weights_free(&host);
}

static void test_streamed_quant(void)
{
    if (!fixtures) {
        printf("  (no fixtures directory given: skipped)\n");
        return;
    }
    static const char *models[] = {"awq_g128", "awq_g32", "gptq4_g64_actorder_asym",
                                   "gptq4_g128_sym", "gptq8_g32_actorder_sym",
                                   "ct_w4a16_g64_asym", "ct_w4a16_g32_sym",
                                   "ct_w8a16_channel_sym", "ct_w4a16_g32_actorder_sym",
                                   "int8_at_load_fp16"};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        for (int tp = 1; tp <= 2; tp++)
            for (int r = 0; r < tp; r++)
                streamed_equals_uploaded(models[i], tp, r);
}

/* The GPU's 4-bit nibble order (kernels.h vb_qmat, quant_interleave.cu):
 * the word whose column k holds k puts the even columns in its low half
 * and the odd ones in its high half; the kernel makes each word as the
 * host function does; sizes it cannot take are refused. */
static void test_interleave4(void)
{
    CHECK_INT_EQ(vb_quant_interleave4_word(0x76543210u), 0x75316420u);
    CHECK_INT_EQ(vb_quant_interleave4_word(0xF0000000u), 0xF0000000u); /* column 7 stays */
    CHECK_INT_EQ(vb_quant_interleave4_word(0x000000F0u), 0x000F0000u); /* column 1 -> nibble 4 */
    enum { N = 100003 };
    unsigned *h = malloc(N * sizeof *h), *back = malloc(N * sizeof *back);
    unsigned long long st = 12345;
    for (int i = 0; i < N; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        h[i] = (unsigned)(st >> 32);
    }
    uint8_t *d = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d, N * sizeof *h));
    CUDA_CHECK(cudaMemcpy(d, h, N * sizeof *h, cudaMemcpyHostToDevice));
    CUDA_CHECK(vb_quant_interleave4(d, N * sizeof *h, 0));
    CUDA_CHECK(cudaMemcpy(back, d, N * sizeof *h, cudaMemcpyDeviceToHost));
    int bad = 0;
    for (int i = 0; i < N; i++)
        bad += back[i] != vb_quant_interleave4_word(h[i]);
    CHECK_INT_EQ(bad, 0);
    CHECK(vb_quant_interleave4(d, 6, 0) == cudaErrorInvalidValue);     /* not whole words */
    CHECK(vb_quant_interleave4(d + 2, 8, 0) == cudaErrorInvalidValue); /* not word-aligned */
    CUDA_CHECK(cudaFree(d));
    free(h);
    free(back);
}

int main(int argc, char **argv)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0)
        return test_skip("no CUDA device on this machine");
    fixtures = argc > 1 ? argv[1] : NULL;
    vb_err err;
    if (vb_tuning_from_env(&knobs, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    knobs.qgemv_epilogue = 0; /* the plain path; gpu_epi the paired one */
    knobs.norm_fold = false;
    vb_tuning no_gemv = knobs, epi = knobs, fold;
    no_gemv.no_gemv = true;
    epi.qgemv_epilogue = 1;
    fold = epi;
    fold.norm_fold = true;
    gpu = cuda_backend_create(NULL, &knobs, &err);
    gpu_nogemv = gpu ? cuda_backend_create(NULL, &no_gemv, &err) : NULL;
    gpu_epi = gpu_nogemv ? cuda_backend_create(NULL, &epi, &err) : NULL;
    gpu_fold = gpu_epi ? cuda_backend_create(NULL, &fold, &err) : NULL;
    if (!gpu || !gpu_nogemv || !gpu_epi || !gpu_fold) {
        fprintf(stderr, "backend: %s\n", err.msg);
        return 1;
    }
    RUN_TEST(test_interleave4);
    RUN_TEST(test_matmul_quant);
    RUN_TEST(test_joined_projections);
    RUN_TEST(test_upload_refusals);
    RUN_TEST(test_streamed_quant);
    gpu->destroy(gpu);
    gpu_nogemv->destroy(gpu_nogemv);
    gpu_epi->destroy(gpu_epi);
    gpu_fold->destroy(gpu_fold);
    return test_summary();
}

/* The decode-step projections on weight-only quantized weights, timed on
 * the GPU (issue #21): vb_gemv_quant_f16 (kernels/gemv_quant.cu) at 4 and
 * 8 bits, group 128, at 4 bits with the same groups given through g_idx
 * (act order's path), and at 4 bits group 32 (4 groups in a step of the
 * mma kernel), against the fp16 GEMV (vb_gemv_f16) on the same
 * shapes, for 1, 2, 4 and 8 rows of x, on the per-rank matrices of
 * Qwen2.5-7B at tp 1: q/k/v as one 4608 x 3584 matrix, o 3584 x 3584,
 * gate and up (two launches of 18944 x 3584, as the backend makes them),
 * down 3584 x 18944.
 *
 * Each quantized case runs twice: the entry point's own choice (the mma
 * kernel on sm_80+ where the layout allows) and the SIMT kernel forced
 * (the kernel before the mma one, with its loops folded and PDL). Prints
 * each case's time, GB/s of the bytes it actually reads (packed weights,
 * scales, zeros, x, and g_idx where there is one), that as a fraction of
 * the copy bandwidth measured first (cudaMemcpy device to device of 1 GiB,
 * read + write, median of 5), and the speedup over fp16; then per
 * configuration the layer total at T = 1; then, at T = 1, the mma kernel
 * with each forced split (KS warps a 16-row tile) and unroll (steps loaded
 * ahead), the figures behind the launcher's choices; last, the mma
 * kernel (KS 8) on its resident blocks looping over the tiles (the
 * default) against a block a tile group, at T = 1 and 8.
 *
 * The weights in row blocks where the upload stores them so (kernels.h
 * vb_qmat; VB_QGEMV_BLOCKS=0: in row order, to compare).
 *
 * Each timed launch reads a different copy of the weights, so L2 (50-60 MB
 * on H100/H200) never holds them: a decode step reads each matrix once.
 * With l2, every launch reads one copy, which L2 holds where it fits
 * (q/k/v, o, down; not gate and up together): the kernels' speed with the
 * memory no longer the limit, the most a GPU with more bandwidth an SM (an
 * H200 against an H100: the same SMs, 41 % more bandwidth) could give
 * them. A change that is level on an H100's HBM and faster here is one
 * for the H200 (RESULTS.md session 41).
 * PDL as the backend sets it (on where the GPU has it, unless VB_NO_PDL=1),
 * for both kernels alike.
 *
 * With graph, each timing's launches are replayed from a CUDA graph, as a
 * decode step runs them: no host launch cost between them, which for
 * launches of a few microseconds (q/k/v, o) is part of what eager timing
 * measures.
 *
 * usage: bench_gemv_quant [ITERS [ring | tiles | SHAPE] [l2] [graph]]
 *   (on the GPU machine; no GPU: exits 77)
 *   ring: only the ring kernel's table (a GPU call's minutes are few);
 *   tiles: only the table of the tiles' balance over the SMs (tiles_table);
 *   SHAPE: only the first table, for the shapes whose name contains it
 *   ("down": one matrix's launches, e.g. under ncu); l2, graph: every
 *   timing so (above), with any of these or alone (every table) */
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_timing.h"
#include "cuda/cuda_check.h"
#include "kernels.h"


typedef struct shape {
    const char *name;
    int n_out, n_in;
    int mats; /* launches a pass over different weights of this shape (gate, up) */
} shape;

static const shape shapes[] = {
    {"7b qkv", 4608, 3584, 1},
    {"7b o", 3584, 3584, 1},
    {"7b gate_up", 18944, 3584, 2},
    {"7b down", 3584, 18944, 1},
};
#define N_SHAPES (int)(sizeof shapes / sizeof shapes[0])

typedef struct qconf {
    const char *name;
    int bits, group, gidx;
} qconf;

static const qconf confs[] = {
    {"4-bit g128", 4, 128, 0},
    {"8-bit g128", 8, 128, 0},
    {"4-bit g_idx", 4, 128, 1}, /* groups of 128 given through g_idx */
    {"4-bit g32", 4, 32, 0},    /* 4 groups a step of the mma kernel */
};
#define N_CONFS (int)(sizeof confs / sizeof confs[0])

static const int Ts[] = {1, 2, 4, 8};
#define N_TS 4

static cudaStream_t stream;
static uint16_t *x, *out_h;
static bool l2_resident; /* one copy of each matrix: L2 holds it where it fits */
static bool in_graph;    /* timings replay their launches from a CUDA graph */

/* 256-byte pieces, so every matrix's q, scales and zeros are aligned */
static size_t round_up(size_t n)
{
    return (n + 255) & ~(size_t)255;
}

/* copies of one shape's weights: each pass reads the next copy, >= 256 MB
 * in all; fp16 (bits 16) or quantized */
typedef struct wset {
    const shape *s;
    const qconf *q; /* NULL: fp16 */
    uint8_t *base;
    size_t q_bytes, sz_bytes, mat_bytes; /* per matrix: weights, scales (= zeros), all */
    size_t tiles_bytes;                  /* the GEMV's tiled scales and zeros, or 0 */
    int copies;
    int32_t *g_idx; /* device, [n_in], or NULL */
} wset;

static void wset_tile(wset *w);

static void wset_alloc(wset *w, const shape *s, const qconf *q)
{
    memset(w, 0, sizeof *w);
    w->s = s;
    w->q = q;
    size_t elems = (size_t)s->n_out * (size_t)s->n_in;
    if (q) {
        w->q_bytes = elems * (size_t)q->bits / 8;
        w->sz_bytes = (size_t)s->n_out * (size_t)(s->n_in / q->group) * 2;
        w->mat_bytes = round_up(w->q_bytes) + 2 * round_up(w->sz_bytes);
        const vb_qmat shape_only = {.bits = q->bits, .n_out = s->n_out, .n_in = s->n_in,
                                    .group_size = q->gidx ? 0 : q->group,
                                    .n_groups = s->n_in / q->group};
        w->tiles_bytes = q->gidx ? 0 : vb_qgemv_sz_tiles_bytes(&shape_only);
        w->mat_bytes += round_up(w->tiles_bytes);
    } else {
        w->q_bytes = elems * 2;
        w->mat_bytes = round_up(w->q_bytes);
    }
    size_t copy = w->mat_bytes * (size_t)s->mats;
    w->copies = l2_resident ? 1 : (int)(((size_t)256 << 20) / copy) + 2;
    CUDA_CHECK(cudaMalloc((void **)&w->base, copy * (size_t)w->copies));
    /* weights and scales 0x11 bytes (scales ~5.5e-4), zeros 0: finite
     * outputs; the speed does not depend on the values */
    CUDA_CHECK(cudaMemset(w->base, 0x11, copy * (size_t)w->copies));
    if (q)
        for (int c = 0; c < w->copies; c++)
            for (int m = 0; m < s->mats; m++)
                CUDA_CHECK(cudaMemset(w->base + copy * (size_t)c + w->mat_bytes * (size_t)m +
                                          round_up(w->q_bytes) + round_up(w->sz_bytes),
                                      0, w->sz_bytes));
    if (q && q->gidx) {
        int32_t *h = malloc(sizeof(int32_t) * (size_t)s->n_in);
        if (!h) {
            fprintf(stderr, "bench_gemv_quant: out of host memory\n");
            exit(1);
        }
        for (int j = 0; j < s->n_in; j++)
            h[j] = j / q->group;
        CUDA_CHECK(cudaMalloc((void **)&w->g_idx, sizeof(int32_t) * (size_t)s->n_in));
        CUDA_CHECK(cudaMemcpy(w->g_idx, h, sizeof(int32_t) * (size_t)s->n_in,
                              cudaMemcpyHostToDevice));
        free(h);
    }
    if (q)
        wset_tile(w);
}

static uint8_t *mat(const wset *w, int copy, int m);
static vb_qmat qmat_of(const wset *w, uint8_t *p);

/* each copy's tiled scales and zeros, from its scales and zeros */
static void wset_tile(wset *w)
{
    for (int c = 0; w->tiles_bytes && c < w->copies; c++)
        for (int m = 0; m < w->s->mats; m++) {
            vb_qmat q = qmat_of(w, mat(w, c, m));
            q.sz_tiles = NULL;
            CUDA_CHECK(vb_qgemv_make_sz_tiles((void *)(mat(w, c, m) + round_up(w->q_bytes) +
                                                       2 * round_up(w->sz_bytes)),
                                              &q, stream));
        }
    CUDA_CHECK(cudaStreamSynchronize(stream));
}

static void wset_free(wset *w)
{
    CUDA_CHECK(cudaFree(w->base));
    if (w->g_idx)
        CUDA_CHECK(cudaFree(w->g_idx));
}

static uint8_t *mat(const wset *w, int copy, int m)
{
    return w->base + w->mat_bytes * ((size_t)copy * (size_t)w->s->mats + (size_t)m);
}

/* bytes one pass reads: weights (+ scales, zeros, g_idx) and x, per launch */
static double pass_bytes(const wset *w, int T)
{
    double per = (double)w->q_bytes + 2.0 * (double)w->sz_bytes +
                 (w->g_idx ? 4.0 * w->s->n_in : 0.0) + 2.0 * T * (double)w->s->n_in;
    return per * w->s->mats;
}

typedef struct pass_args {
    const wset *w;
    int T;
} pass_args;

static void pass(void *ctx, int i)
{
    const pass_args *a = ctx;
    const wset *w = a->w;
    const shape *s = w->s;
    int c = i % w->copies;
    for (int m = 0; m < s->mats; m++) {
        uint8_t *p = mat(w, c, m);
        if (!w->q) {
            CUDA_CHECK(vb_gemv_f16(out_h, 0, x, (const uint16_t *)p, NULL, a->T, s->n_in,
                                   s->n_out, stream));
            continue;
        }
        vb_qmat q = qmat_of(w, p);
        CUDA_CHECK(vb_gemv_quant_f16(out_h, x, &q, NULL, a->T, stream));
    }
}

/* matrix p of w as the GEMV takes it, its tiled scales and zeros
 * included where the layout has them, in row blocks where the upload
 * would store it so (VB_QGEMV_BLOCKS; the weights' bytes are all alike,
 * so only the addresses change) */
static vb_qmat qmat_of(const wset *w, uint8_t *p)
{
    const shape *s = w->s;
    vb_qmat m = {p,
                 (const uint16_t *)(p + round_up(w->q_bytes)),
                 (const uint16_t *)(p + round_up(w->q_bytes) + round_up(w->sz_bytes)),
                 NULL,
                 w->g_idx,
                 w->q->bits,
                 s->n_out,
                 s->n_in,
                 w->q->gidx ? 0 : w->q->group,
                 s->n_in / w->q->group,
                 w->tiles_bytes ? p + round_up(w->q_bytes) + 2 * round_up(w->sz_bytes) : NULL,
                 0};
    m.blocked = vb_gemv_quant_wants_blocks(&m);
    return m;
}

static double copy_bw;

/* microseconds a pass of w at T rows, eager or from a graph (in_graph) */
static double pass_us(const wset *w, int T, int iters)
{
    pass_args a = {w, T};
    return in_graph ? bench_time_graph_us(pass, &a, stream, iters)
                    : bench_time_us(pass, &a, stream, iters);
}

/* time one variant; prints "us GB/s %copy" and returns us */
static double timed(const wset *w, int T, int iters, int print)
{
    double us = pass_us(w, T, iters);
    double gbs = pass_bytes(w, T) / (us * 1e3);
    if (print)
        printf("  %8.1f %6.0f %5.1f%%", us, gbs, 100.0 * gbs * 1e9 / copy_bw);
    return us;
}

/* The tiles' balance over the SMs: at T = 1, the default kernel on
 * matrices of 7B's two row lengths (o's and down's n_in) with n_out 16
 * rows times a count of tiles around the SM count (o and down have 224 on
 * an H100's or H200's 132 SMs: 92 SMs hold two, 40 one). Where a kernel's
 * time stays level from 224 tiles to 264 (two on every SM), the SMs
 * holding two set it, not the bytes. The fewest tiles give a launch's
 * floor, beside the fp16 GEMV's on the same rows. The launcher's KS (warps
 * a tile) changes with the tile count, so each quantized row is also
 * timed at KS 8 and 12 forced. */
static void tiles_table(int iters, int sms)
{
    const int per_sm[] = {10, 50, 100, 150, 170, 200, 250, 300}; /* tiles per 100 SMs */
    static const int kss[] = {0, 8, 12}; /* 0: the launcher's pick */
    static const char *const ks_label[] = {"auto", "8", "12"};
    printf("\nT = 1, the default kernel (and the fp16 GEMV) by tiles (16 rows each) on %d SMs, "
           "us (GB/s):\n",
           sms);
    printf("%-7s %-11s %-4s", "n_in", "weights", "KS");
    for (int k = 0; k < (int)(sizeof per_sm / sizeof per_sm[0]); k++)
        printf(" %7d tiles", per_sm[k] * sms / 100);
    printf("\n");
    for (int n = 0; n < 2; n++)
        for (int ci = -1; ci < 2; ci++)     /* -1: the fp16 GEMV */
            for (int ki = 0; ki < (ci < 0 ? 1 : 3); ki++) { /* KS: none for fp16 */
                printf("%-7d %-11s %-4s", n ? 18944 : 3584, ci < 0 ? "fp16" : confs[ci].name,
                       ks_label[ki]);
                vb_gemv_quant_force(0, kss[ki], 0);
                for (int k = 0; k < (int)(sizeof per_sm / sizeof per_sm[0]); k++) {
                    const shape s = {"tiles", 16 * (per_sm[k] * sms / 100), n ? 18944 : 3584, 1};
                    wset w;
                    wset_alloc(&w, &s, ci < 0 ? NULL : &confs[ci]);
                    double t = pass_us(&w, 1, iters);
                    printf(" %6.1f (%4.0f)", t, pass_bytes(&w, 1) / (t * 1e3));
                    wset_free(&w);
                }
                vb_gemv_quant_force(0, 0, 0);
                printf("\n");
            }
}

/* Two forced settings (vb_gemv_quant_force path and ks) side by side on
 * the group-128 configurations, T = 1 and 8, then a 7B layer's sums at
 * T = 1 against the fp16 GEMV's f16 microseconds. */
static void compare_two(const char *title, const char *a, const char *b,
                        const int force[2][2], int iters, double f16)
{
    printf("\n%s\n%-11s %-11s %2s  %8s %8s\n", title, "shape", "weights", "T", a, b);
    double layer[2][2] = {{0}};
    for (int si = 0; si < N_SHAPES; si++)
        for (int ci = 0; ci < 2; ci++) {
            wset w;
            wset_alloc(&w, &shapes[si], &confs[ci]);
            for (int T = 1; T <= 8; T += 7) {
                double t[2];
                for (int k = 0; k < 2; k++) {
                    vb_gemv_quant_force(force[k][0], force[k][1], 0);
                    t[k] = pass_us(&w, T, iters);
                    if (T == 1)
                        layer[ci][k] += t[k];
                }
                printf("%-11s %-11s %2d  %8.1f %8.1f\n", shapes[si].name, confs[ci].name, T,
                       t[0], t[1]);
            }
            vb_gemv_quant_force(0, 0, 0);
            wset_free(&w);
        }
    for (int ci = 0; ci < 2; ci++)
        printf("layer at T = 1, %-11s %8.1f %8.1f  (fp16 GEMV %.1f)\n", confs[ci].name,
               layer[ci][0], layer[ci][1], f16);
}

int main(int argc, char **argv)
{
    struct cudaDeviceProp prop;
    int iters = bench_start(argc, argv, 20, &prop);
    if (iters == 0)
        return 77;
    const vb_tuning knobs = bench_pdl_from_env("bench_gemv_quant"); /* and the L1 knobs */
    const char *only = NULL; /* a shape: the first table only */
    bool ring_only = false, tiles_only = false;
    for (int a = 2; a < argc; a++) {
        if (!strcmp(argv[a], "ring"))
            ring_only = true;
        else if (!strcmp(argv[a], "tiles"))
            tiles_only = true;
        else if (!strcmp(argv[a], "l2"))
            l2_resident = true;
        else if (!strcmp(argv[a], "graph"))
            in_graph = true;
        else
            only = argv[a];
    }
    CUDA_CHECK(cudaStreamCreate(&stream));
    copy_bw = bench_copy_bandwidth(stream);
    printf("bench_gemv_quant on %s (sm_%d%d), %d iterations per timing, median of 5, PDL %s, "
           "mma weights %s L1, x %s, weights in %s\n"
           "copy bandwidth (read + write): %.0f GB/s\n",
           prop.name, prop.major, prop.minor, iters, vb_pdl_enabled() ? "on" : "off",
           knobs.qgemv_l1_alloc ? "through" : "past",
           knobs.qgemv_x_shared ? "in shared memory at T <= 2" : "through L1",
           knobs.qgemv_blocks ? "row blocks where the upload takes them" : "row order",
           copy_bw / 1e9);
    if (l2_resident)
        printf("l2: every launch reads the same copy of its weights (L2-resident where they "
               "fit)\n");
    if (in_graph)
        printf("graph: each timing's launches replayed from a CUDA graph\n");
    CUDA_CHECK(cudaMalloc((void **)&x, (size_t)8 * 18944 * 2));
    CUDA_CHECK(cudaMalloc((void **)&out_h, (size_t)8 * 18944 * 2));
    CUDA_CHECK(cudaMemset(x, 0x11, (size_t)8 * 18944 * 2)); /* ~5.5e-4 halves */

    if (tiles_only) {
        tiles_table(iters, prop.multiProcessorCount);
        goto done;
    }
    /* [shape][T][0: fp16, 1 + 2 * conf: default, 2 + 2 * conf: SIMT] */
    double us[N_SHAPES][N_TS][1 + 2 * N_CONFS];
    if (!ring_only) {
        printf("\nGB/s: bytes read (packed weights + scales + zeros + x [+ g_idx]); %%copy: of "
               "the copy bandwidth;\nx fp16: fp16 GEMV time / this time. default: the entry "
               "point's choice; simt: the SIMT kernel forced.\n");
        printf("%-11s %-11s %2s  %8s %6s %6s  %8s %6s %6s %6s  %8s %6s %6s %6s\n", "shape",
               "weights", "T", "fp16 us", "GB/s", "%copy", "dflt us", "GB/s", "%copy", "x fp16",
               "simt us", "GB/s", "%copy", "x fp16");
    }
    for (int si = 0; si < N_SHAPES && !ring_only; si++) {
        const shape *s = &shapes[si];
        if (only && !strstr(s->name, only))
            continue;
        wset f;
        wset_alloc(&f, s, NULL);
        for (int ti = 0; ti < N_TS; ti++)
            us[si][ti][0] = timed(&f, Ts[ti], iters, 0);
        wset_free(&f);
        for (int ci = 0; ci < N_CONFS; ci++) {
            wset w;
            wset_alloc(&w, s, &confs[ci]);
            for (int ti = 0; ti < N_TS; ti++) {
                int T = Ts[ti];
                double fus = us[si][ti][0];
                double fgbs = ((double)s->n_out * s->n_in * 2 + 2.0 * T * s->n_in) * s->mats /
                              (fus * 1e3);
                printf("%-11s %-11s %2d  %8.1f %6.0f %5.1f%%", s->name, confs[ci].name, T, fus,
                       fgbs, 100.0 * fgbs * 1e9 / copy_bw);
                for (int path = 0; path < 2; path++) {
                    vb_gemv_quant_force(path, 0, 0);
                    double t = timed(&w, T, iters, 1);
                    printf(" %5.2fx", fus / t);
                    us[si][ti][1 + 2 * ci + path] = t;
                }
                vb_gemv_quant_force(0, 0, 0);
                printf("\n");
            }
            wset_free(&w);
        }
    }
    CUDA_CHECK(cudaGetLastError());
    double f16 = 0; /* the fp16 GEMV's layer at T = 1 */
    if (ring_only)
        goto ring;
    if (only)
        goto done;

    printf("\nper layer at T = 1 (q/k/v, o, gate + up, down), microseconds:\n");
    for (int si = 0; si < N_SHAPES; si++)
        f16 += us[si][0][0];
    printf("fp16 GEMV    %8.1f\n", f16);
    for (int ci = 0; ci < N_CONFS; ci++)
        for (int path = 0; path < 2; path++) {
            double t = 0;
            for (int si = 0; si < N_SHAPES; si++)
                t += us[si][0][1 + 2 * ci + path];
            printf("%-11s %-7s %8.1f  %.2fx the fp16 GEMV's speed\n", confs[ci].name,
                   path ? "simt" : "default", t, f16 / t);
        }

    /* the mma kernel's knobs at T = 1: forced KS and unroll (on sm_70 or
     * where the mma kernel does not run, every row is the SIMT kernel) */
    static const int kss[] = {0, 1, 2, 4, 8, 12}, unrolls[] = {0, 1, 2, 4};
    enum { N_KS = sizeof kss / sizeof kss[0], N_U = sizeof unrolls / sizeof unrolls[0] };
    printf("\nT = 1, the default kernel with forced KS (warps a 16-row tile) and unroll "
           "(steps loaded ahead; auto: the launcher's picks; unroll 1 runs at KS 8 and 12 only, "
           "2 elsewhere), us:\n%-11s %-11s %6s",
           "shape", "weights", "unroll");
    for (int k = 0; k < N_KS; k++) {
        char label[16];
        snprintf(label, sizeof label, k ? "KS %d" : "KS auto", kss[k]);
        printf("  %8s", label);
    }
    printf("\n");
    for (int si = 0; si < N_SHAPES; si++)
        for (int ci = 0; ci < 2; ci++) { /* the two group-128 configurations */
            wset w;
            wset_alloc(&w, &shapes[si], &confs[ci]);
            for (int u = 0; u < N_U; u++) {
                char label[16];
                snprintf(label, sizeof label, u ? "%d" : "auto", unrolls[u]);
                printf("%-11s %-11s %6s", shapes[si].name, confs[ci].name, label);
                for (int k = 0; k < N_KS; k++) {
                    vb_gemv_quant_force(0, kss[k], unrolls[u]);
                    printf("  %8.1f", pass_us(&w, 1, iters));
                }
                printf("\n");
            }
            vb_gemv_quant_force(0, 0, 0);
            wset_free(&w);
        }
    CUDA_CHECK(cudaGetLastError());

ring:
    /* the ring kernel (vb_gemv_quant_ring: each warp's weights copied
     * ahead into shared memory) at T = 1 by its stages, 0 the mma kernel;
     * KS the launcher's; and a layer's sum */
    static const int rings[] = {0, 2, 3, 4, 6, 8};
    enum { N_RINGS = sizeof rings / sizeof rings[0] };
    double ring_layer[2][N_RINGS] = {{0}};
    printf("\nT = 1, the ring kernel by stages (0: the mma kernel; where the ring kernel does "
           "not take the layout, the mma kernel), us:\n%-11s %-11s", "shape", "weights");
    for (int r = 0; r < N_RINGS; r++)
        printf("  %6s %d", "stages", rings[r]);
    printf("\n");
    for (int si = 0; si < N_SHAPES; si++)
        for (int ci = 0; ci < 2; ci++) {
            wset w;
            wset_alloc(&w, &shapes[si], &confs[ci]);
            printf("%-11s %-11s", shapes[si].name, confs[ci].name);
            for (int r = 0; r < N_RINGS; r++) {
                vb_gemv_quant_ring(rings[r]);
                const double t = pass_us(&w, 1, iters);
                ring_layer[ci][r] += t;
                printf("  %8.1f", t);
            }
            printf("\n");
            vb_gemv_quant_ring(knobs.qgemv_ring);
            wset_free(&w);
        }
    for (int ci = 0; ci < 2; ci++) {
        printf("ring layer at T = 1, %-11s", confs[ci].name);
        for (int r = 0; r < N_RINGS; r++)
            printf("  %8.1f", ring_layer[ci][r]);
        printf("\n");
    }
    CUDA_CHECK(cudaGetLastError());
    if (ring_only)
        goto done;

    /* the mma kernel's grid: its resident blocks looping over the tiles
     * (the default) against a block a tile group (path 3, before); ks 8
     * forces the mma kernel at T = 1 for 8-bit too */
    compare_two("the mma kernel's grid, us: resident blocks looping (default) / a block a "
                "tile group", "looping", "a block", (const int[2][2]){{0, 8}, {3, 8}}, iters,
                f16);
    /* the mma kernel's scales and zeros: tiled (the default where the
     * layout has them) against the plain arrays (path 5) */
    compare_two("scales and zeros, us: tiled (default) / plain arrays", "tiled", "plain",
                (const int[2][2]){{0, 0}, {5, 0}}, iters, f16);
    CUDA_CHECK(cudaGetLastError());
done:
    CUDA_CHECK(cudaFree(x));
    CUDA_CHECK(cudaFree(out_h));
    CUDA_CHECK(cudaStreamDestroy(stream));
    return 0;
}

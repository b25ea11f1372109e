/* Every CUDA backend op against the CPU backend's op (the fp32 oracle) on
 * random inputs of several shapes: ragged batches, cached prefixes, block
 * boundaries, non-contiguous block tables, GQA ratios 1, 4, 7, 8 and 12,
 * head_dim 16, 32, 64 and 128, a 32k-token context; the attention kernels
 * (decode: the CUDA-core split kernel, and on sm_80+ the mma.sync one for
 * steps with enough blocks; tensor-core tiles for prompt chunks: mma.sync
 * on sm_80+, and the WMMA kernel on any GPU through the VB_PREFILL_WMMA
 * knob); and with the int8 KV cache (--kv-cache-dtype int8) the same
 * rope / KV write and attention ops on every attention path.
 *
 * Inputs are rounded to fp16 first, so both backends see the same values
 * and the difference is the GPU's fp16 storage of results. Tolerance: max
 * |gpu - cpu| / max |cpu| <= 5e-3 (elementwise ops and GEMMs with fp32
 * accumulation), 1e-2 for attention (probabilities and outputs stored in
 * fp16). Output buffers are poisoned with NaN first, so an element a kernel
 * does not write fails the check. */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_backend.h"
#include "cuda/backend_cuda.h"
#include "cuda/cuda_check.h"
#include "forward/kv_int8.h"
#include "harness.h"
#include "kernels.h"
#include "util/half.h"

static vb_backend *cpu, *gpu;
static vb_tuning knobs; /* the environment's (util/env.h), as voltbatch reads it */

static uint64_t rng = 12345;
static float frand(void) /* uniform in [-1, 1) */
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng >> 11) / 4503599627370496.0 - 1.0);
}

/* n random values, already representable in fp16 */
static float *rand_vec(size_t n, float scale)
{
    float *x = malloc(n * sizeof *x + 4);
    for (size_t i = 0; i < n; i++)
        x[i] = vb_half_to_float(vb_float_to_half(frand() * scale));
    return x;
}

static void *cpu_copy(const float *x, size_t n)
{
    void *p = cpu->alloc(cpu, n * 4 + 4);
    memcpy(p, x, n * 4);
    return p;
}

static void *gpu_copy(const float *x, size_t n)
{
    uint16_t *h = malloc(n * 2 + 2);
    for (size_t i = 0; i < n; i++)
        h[i] = vb_float_to_half(x[i]);
    void *d = gpu->alloc(gpu, n * 2 + 2);
    gpu->to_device(gpu, d, h, n * 2);
    free(h);
    return d;
}

static void *gpu_poisoned(size_t n) /* fp16 buffer of NaN (0xffff) */
{
    void *d = gpu->alloc(gpu, n * 2 + 2);
    CUDA_CHECK(cudaMemset(d, 0xff, n * 2 + 2));
    CUDA_CHECK(cudaDeviceSynchronize()); /* before the backend's own stream uses it */
    return d;
}

static float *gpu_read(const void *d, size_t n)
{
    uint16_t *h = malloc(n * 2 + 2);
    float *f = malloc(n * 4 + 4);
    CUDA_CHECK(cudaDeviceSynchronize());
    gpu->to_host(gpu, h, d, n * 2);
    for (size_t i = 0; i < n; i++)
        f[i] = vb_half_to_float(h[i]);
    free(h);
    return f;
}

/* max |got - want| / max |want|; NaN anywhere counts as a failure. */
static void compare(const char *what, const float *want, const float *got, size_t n, double tol)
{
    double diff = 0, ref = 0;
    size_t nan = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i]) || !isfinite(want[i])) {
            nan++;
            continue;
        }
        double d = fabs((double)got[i] - want[i]);
        diff = d > diff ? d : diff;
        ref = fabs(want[i]) > ref ? fabs(want[i]) : ref;
    }
    double rel = diff / (ref > 0 ? ref : 1);
    printf("  %-44s rel err %.2e%s\n", what, rel, nan ? "  (NaN/unwritten elements!)" : "");
    CHECK_INT_EQ(nan, 0);
    CHECK(rel <= tol);
}

/* A step: n seqs, seq s has cached[s] tokens already and brings new[s]. */
typedef struct step_case {
    int n;
    int cached[6], fresh[6];
} step_case;

static void make_step(step_batch *sb, const step_case *sc, int block_size, int max_blocks)
{
    int total = 0;
    for (int s = 0; s < sc->n; s++)
        total += sc->fresh[s];
    step_batch_init(sb, sc->n, total, max_blocks);
    /* block ids: a fixed permutation so tables are not contiguous */
    int32_t *bt = malloc(sizeof(int32_t) * (size_t)max_blocks);
    int32_t *toks = malloc(sizeof(int32_t) * (size_t)total + 4);
    for (int s = 0; s < sc->n; s++) {
        int len = sc->cached[s] + sc->fresh[s];
        int nb = (len + block_size - 1) / block_size;
        for (int i = 0; i < nb; i++)
            bt[i] = (int32_t)(((size_t)s * max_blocks + (size_t)i) * 7919 % ((size_t)sc->n * max_blocks));
        for (int i = 0; i < sc->fresh[s]; i++)
            toks[i] = (int32_t)((s * 131 + i * 17) % 500);
        step_batch_add_seq(sb, toks, sc->fresh[s], sc->cached[s], bt, nb);
    }
    free(bt);
    free(toks);
}

static void test_matmul_and_lm_head(void)
{
    /* the last two through cuBLAS and the bias kernel, 16 and 2 bytes a load */
    const int shapes[][3] = {{1, 64, 128}, {4, 896, 1000}, {7, 896, 1000}, {64, 256, 96},
                             {16, 256, 1001}};
    for (size_t c = 0; c < 5; c++) {
        int T = shapes[c][0], K = shapes[c][1], N = shapes[c][2];
        float *x = rand_vec((size_t)T * K, 1), *w = rand_vec((size_t)N * K, 0.1f),
              *bias = rand_vec((size_t)N, 0.5f);
        float *want = cpu->alloc(cpu, (size_t)T * N * 4);
        void *cx = cpu_copy(x, (size_t)T * K), *cw = cpu_copy(w, (size_t)N * K),
             *cb = cpu_copy(bias, N);
        cpu->matmul(cpu, want, cx, cw, cb, T, K, N);
        void *gx = gpu_copy(x, (size_t)T * K), *gw = gpu_copy(w, (size_t)N * K),
             *gb = gpu_copy(bias, N), *gout = gpu_poisoned((size_t)T * N);
        gpu->matmul(gpu, gout, gx, gw, gb, T, K, N);
        float *got = gpu_read(gout, (size_t)T * N);
        char name[64];
        snprintf(name, sizeof name, "matmul+bias T=%d K=%d N=%d", T, K, N);
        compare(name, want, got, (size_t)T * N, 5e-3);
        free(got);

        /* lm_head: fp32 logits */
        cpu->lm_head(cpu, want, cx, cw, T, K, N);
        float *glog = gpu->alloc(gpu, (size_t)T * N * 4);
        CUDA_CHECK(cudaMemset(glog, 0xff, (size_t)T * N * 4));
        CUDA_CHECK(cudaDeviceSynchronize());
        gpu->lm_head(gpu, glog, gx, gw, T, K, N);
        float *got32 = malloc((size_t)T * N * 4);
        CUDA_CHECK(cudaDeviceSynchronize());
        gpu->to_host(gpu, got32, glog, (size_t)T * N * 4);
        snprintf(name, sizeof name, "lm_head (fp32 out) T=%d K=%d N=%d", T, K, N);
        compare(name, want, got32, (size_t)T * N, 5e-3);
        free(got32);
        void *gp[] = {gx, gw, gb, gout, glog};
        for (int i = 0; i < 5; i++)
            gpu->free(gpu, gp[i]);
        void *cp[] = {cx, cw, cb, want};
        for (int i = 0; i < 4; i++)
            cpu->free(cpu, cp[i]);
        free(x);
        free(w);
        free(bias);
    }
}

/* Long rows and many outputs: the GEMV launcher gives each row 4, 2 or 1
 * warps by how many blocks the GPU holds at once, so these output counts
 * take different splits (on an H200: 4 for 1500 rows, 2 for 3000, 1 for
 * 9001); n_in = 4104 is 513 chunks, not a multiple of any split's stride,
 * and 9001 leaves the last block part empty. */
static void test_gemv_split_rows(void)
{
    const int K = 4104, Ns[] = {1500, 3000, 9001};
    for (int T = 1; T <= 2; T++)
        for (size_t ni = 0; ni < sizeof Ns / sizeof Ns[0]; ni++) {
            int N = Ns[ni];
            float *x = rand_vec((size_t)T * K, 1), *w = rand_vec((size_t)N * K, 0.05f);
            float *wu = rand_vec((size_t)N * K, 0.05f);
            void *cx = cpu_copy(x, (size_t)T * K), *gx = gpu_copy(x, (size_t)T * K);
            void *cw = cpu_copy(w, (size_t)N * K), *gw = gpu_copy(w, (size_t)N * K);
            void *cup = cpu_copy(wu, (size_t)N * K), *gup = gpu_copy(wu, (size_t)N * K);
            float *want = cpu->alloc(cpu, (size_t)T * N * 4), *up = cpu->alloc(cpu, (size_t)T * N * 4);
            void *gout = gpu_poisoned((size_t)T * N);
            cpu->matmul(cpu, want, cx, cw, NULL, T, K, N);
            CUDA_CHECK(vb_gemv_f16(gout, 0, gx, gw, NULL, T, K, N, 0));
            char name[80];
            float *got = gpu_read(gout, (size_t)T * N);
            snprintf(name, sizeof name, "gemv T=%d K=%d N=%d", T, K, N);
            compare(name, want, got, (size_t)T * N, 5e-3);
            free(got);
            cpu->matmul(cpu, up, cx, cup, NULL, T, K, N);
            cpu->silu_gate(cpu, want, want, up, (size_t)T * N);
            CUDA_CHECK(vb_gemv_silu_gate_f16(gout, gx, gw, gup, T, K, N, 0));
            got = gpu_read(gout, (size_t)T * N);
            snprintf(name, sizeof name, "gemv silu(gate)*up T=%d K=%d N=%d", T, K, N);
            compare(name, want, got, (size_t)T * N, 5e-3);
            free(got);
            void *gp[] = {gx, gw, gup, gout};
            for (int k = 0; k < 4; k++)
                gpu->free(gpu, gp[k]);
            void *cp[] = {cx, cw, cup, want, up};
            for (int k = 0; k < 5; k++)
                cpu->free(cpu, cp[k]);
            free(x);
            free(w);
            free(wu);
        }
}

/* The GEMV kernel's every variant (x rows 1-8 against the kernel's
 * unrolled row counts, output counts that leave a block part empty, a bias
 * on some segments only, n_in from one 16-byte chunk to many) against the CPU backend, through the kernel's
 * entry points; then the backend's fused ops (matmul_qkv, matmul_gate_up)
 * as the forward calls them. */
static void test_gemv_paths(void)
{
    const int Ts[] = {1, 2, 3, 4, 5, 8}, Ks[] = {8, 896};
    const int N[3] = {96, 17, 33};
    for (size_t ki = 0; ki < 2; ki++)
        for (size_t ti = 0; ti < 6; ti++) {
                int T = Ts[ti], K = Ks[ki];
                float *x = rand_vec((size_t)T * K, 1);
                void *cx = cpu_copy(x, (size_t)T * K), *gx = gpu_copy(x, (size_t)T * K);
                vb_gemv_seg segs[3];
                float *w[3], *bias[3], *want[3];
                void *cw[3], *cb[3], *gw[3], *gb[3], *gout[3];
                for (int s = 0; s < 3; s++) {
                    w[s] = rand_vec((size_t)N[s] * K, 0.1f);
                    bias[s] = rand_vec((size_t)N[s], 0.5f);
                    cw[s] = cpu_copy(w[s], (size_t)N[s] * K);
                    cb[s] = s == 1 ? NULL : cpu_copy(bias[s], N[s]);
                    gw[s] = gpu_copy(w[s], (size_t)N[s] * K);
                    gb[s] = s == 1 ? NULL : gpu_copy(bias[s], N[s]);
                    gout[s] = gpu_poisoned((size_t)T * N[s]);
                    want[s] = cpu->alloc(cpu, (size_t)T * N[s] * 4);
                    cpu->matmul(cpu, want[s], cx, cw[s], cb[s], T, K, N[s]);
                    segs[s] = (vb_gemv_seg){gw[s], gb[s], gout[s], N[s]};
                }
                CUDA_CHECK(vb_gemv_multi_f16(segs, 3, 0, gx, T, K, 0));
                char name[80];
                for (int s = 0; s < 3; s++) {
                    float *got = gpu_read(gout[s], (size_t)T * N[s]);
                    snprintf(name, sizeof name, "gemv seg %d T=%d K=%d N=%d", s, T, K, N[s]);
                    compare(name, want[s], got, (size_t)T * N[s], 5e-3);
                    free(got);
                }
                /* gate/up: gate = segment 0's weights, up = another random matrix */
                float *wu = rand_vec((size_t)N[0] * K, 0.1f);
                void *gup = gpu_copy(wu, (size_t)N[0] * K), *cup = cpu_copy(wu, (size_t)N[0] * K);
                float *gate = cpu->alloc(cpu, (size_t)T * N[0] * 4),
                      *up = cpu->alloc(cpu, (size_t)T * N[0] * 4);
                cpu->matmul(cpu, gate, cx, cw[0], NULL, T, K, N[0]);
                cpu->matmul(cpu, up, cx, cup, NULL, T, K, N[0]);
                cpu->silu_gate(cpu, gate, gate, up, (size_t)T * N[0]);
                void *gact = gpu_poisoned((size_t)T * N[0]);
                CUDA_CHECK(vb_gemv_silu_gate_f16(gact, gx, gw[0], gup, T, K, N[0], 0));
                float *got = gpu_read(gact, (size_t)T * N[0]);
                snprintf(name, sizeof name, "gemv silu(gate)*up T=%d K=%d N=%d", T, K, N[0]);
                compare(name, gate, got, (size_t)T * N[0], 5e-3);
                free(got);
                free(wu);
                gpu->free(gpu, gup);
                gpu->free(gpu, gact);
                cpu->free(cpu, gate);
                cpu->free(cpu, up);
                cpu->free(cpu, cup);
                for (int s = 0; s < 3; s++) {
                    gpu->free(gpu, gw[s]);
                    gpu->free(gpu, gb[s]);
                    gpu->free(gpu, gout[s]);
                    cpu->free(cpu, cw[s]);
                    cpu->free(cpu, cb[s]);
                    cpu->free(cpu, want[s]);
                    free(w[s]);
                    free(bias[s]);
                }
                gpu->free(gpu, gx);
                cpu->free(cpu, cx);
                free(x);
            }

    /* the backend ops the forward calls; false for a step too large */
    const int T = 2, K = 64, n[3] = {64, 16, 16};
    float *x = rand_vec((size_t)T * K, 1), *w = rand_vec((size_t)64 * K, 0.1f);
    void *cx = cpu_copy(x, (size_t)T * K), *cw = cpu_copy(w, (size_t)64 * K);
    void *gx = gpu_copy(x, (size_t)T * K), *gw = gpu_copy(w, (size_t)64 * K);
    float *want = cpu->alloc(cpu, (size_t)T * 64 * 4), *want2 = cpu->alloc(cpu, (size_t)T * 64 * 4);
    void *go[3] = {gpu_poisoned((size_t)T * 64), gpu_poisoned((size_t)T * 16),
                   gpu_poisoned((size_t)T * 16)};
    const void *ws[3] = {gw, gw, gw}, *bs[3] = {NULL, NULL, NULL};
    CHECK(gpu->matmul_qkv(gpu, go, gx, ws, bs, T, K, n));
    cpu->matmul(cpu, want, cx, cw, NULL, T, K, 64);
    for (int s = 0; s < 3; s++) {
        /* the first n[s] rows of w: each output row t keeps the first n[s] columns */
        float *got = gpu_read(go[s], (size_t)T * n[s]);
        for (int t = 0; t < T; t++)
            compare(s ? "matmul_qkv k/v rows" : "matmul_qkv q rows", want + (size_t)t * 64,
                    got + (size_t)t * n[s], (size_t)n[s], 5e-3);
        free(got);
    }
    CHECK(gpu->matmul_gate_up(gpu, go[0], gx, gw, gw, T, K, 64));
    cpu->silu_gate(cpu, want2, want, want, (size_t)T * 64);
    float *got = gpu_read(go[0], (size_t)T * 64);
    compare("matmul_gate_up", want2, got, (size_t)T * 64, 5e-3);
    free(got);
    float *big = rand_vec((size_t)64 * K, 1);
    void *gbig = gpu_copy(big, (size_t)64 * K);
    CHECK(!gpu->matmul_qkv(gpu, go, gbig, ws, bs, 64, K, n)); /* 64 rows: cuBLAS's */
    CHECK(!gpu->matmul_gate_up(gpu, go[0], gbig, gw, gw, 64, K, 16));
    gpu->free(gpu, gbig);
    free(big);
    for (int s = 0; s < 3; s++)
        gpu->free(gpu, go[s]);
    gpu->free(gpu, gx);
    gpu->free(gpu, gw);
    cpu->free(cpu, cx);
    cpu->free(cpu, cw);
    cpu->free(cpu, want);
    cpu->free(cpu, want2);
    free(x);
    free(w);
}

static void *gpu_copy_f32(const float *x, size_t n) /* residual-stream buffers */
{
    void *d = gpu->alloc(gpu, n * 4 + 4);
    gpu->to_device(gpu, d, x, n * 4);
    return d;
}

static float *gpu_read_f32(const void *d, size_t n)
{
    float *f = malloc(n * 4 + 4);
    CUDA_CHECK(cudaDeviceSynchronize());
    gpu->to_host(gpu, f, d, n * 4);
    return f;
}

static void test_rmsnorm(void)
{
    /* 4-element vectors (kernels/rmsnorm.cu) at 64 .. 5,120, 300 rows of
     * the 7B width, 100 (25 vectors, a partial warp); 102 and 9,000 * 4
     * take the element-by-element kernel */
    const int shapes[][2] = {{1, 64}, {5, 896}, {33, 5120}, {3, 100}, {300, 3584}, {2, 102},
                             {2, 36000}};
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        int rows = shapes[c][0], dim = shapes[c][1];
        size_t n = (size_t)rows * dim;
        float *r = rand_vec(n, 2), *a = rand_vec(n, 1), *w = rand_vec(dim, 1);
        void *cr = cpu_copy(r, n), *ca = cpu_copy(a, n), *cw = cpu_copy(w, dim);
        float *cout = cpu->alloc(cpu, n * 4);
        cpu->rmsnorm(cpu, cout, cr, ca, cw, rows, dim, 1e-6f);
        void *gr = gpu_copy_f32(r, n), *ga = gpu_copy(a, n), *gw = gpu_copy(w, dim),
             *gout = gpu_poisoned(n);
        gpu->rmsnorm(gpu, gout, gr, ga, gw, rows, dim, 1e-6f);
        float *got = gpu_read(gout, n), *got_r = gpu_read_f32(gr, n);
        char name[64];
        snprintf(name, sizeof name, "residual add + rmsnorm rows=%d dim=%d", rows, dim);
        compare(name, cout, got, n, 5e-3);
        snprintf(name, sizeof name, "  (the updated fp32 residual)");
        compare(name, (float *)cr, got_r, n, 1e-6);
        free(got);
        /* plain, in place on activations (the qwen3 q/k norm form) */
        void *gx = gpu_copy(a, n), *cx = cpu_copy(a, n);
        cpu->rmsnorm_rows(cpu, cx, cw, rows, dim, 1e-6f);
        gpu->rmsnorm_rows(gpu, gx, gw, rows, dim, 1e-6f);
        got = gpu_read(gx, n);
        snprintf(name, sizeof name, "rmsnorm in place rows=%d dim=%d", rows, dim);
        compare(name, (float *)cx, got, n, 5e-3);
        free(got);
        /* resid_load: fp16 activations -> fp32 stream, exact */
        gpu->resid_load(gpu, gr, ga, n);
        free(got_r);
        got_r = gpu_read_f32(gr, n);
        compare("resid_load (fp16 -> fp32)", a, got_r, n, 0);
        free(got_r);
        void *gp[] = {gr, ga, gw, gout, gx};
        for (int i = 0; i < 5; i++)
            gpu->free(gpu, gp[i]);
        void *cp[] = {cr, ca, cw, cout, cx};
        for (int i = 0; i < 5; i++)
            cpu->free(cpu, cp[i]);
        free(r);
        free(a);
        free(w);
    }
}

/* The step timer bench's VB_STEP_SYNC=events reads (backend.h): stamps
 * around queued work give non-negative GPU times, a GEMM of known work
 * more than nothing, and a stamp never recorded reads negative. */
static void test_timer_stamps(void)
{
    CHECK(gpu->timer_mark && gpu->timer_seconds);
    CHECK(gpu->timer_seconds(gpu, 0, 1) < 0); /* nothing recorded yet */
    const int T = 512, K = 4096, N = 4096;
    float *x = rand_vec((size_t)T * K, 1), *w = rand_vec((size_t)N * K, 0.05f);
    void *gx = gpu_copy(x, (size_t)T * K), *gw = gpu_copy(w, (size_t)N * K);
    void *gout = gpu_poisoned((size_t)T * N);
    gpu->timer_mark(gpu, 0);
    for (int i = 0; i < 20; i++)
        gpu->matmul(gpu, gout, gx, gw, NULL, T, K, N);
    gpu->timer_mark(gpu, 1);
    gpu->timer_mark(gpu, 2);
    double busy = gpu->timer_seconds(gpu, 0, 1), idle = gpu->timer_seconds(gpu, 1, 2);
    printf("  20 GEMMs %dx%dx%d: %.3f ms between stamps, %.3f ms after\n", T, K, N, 1e3 * busy,
           1e3 * idle);
    /* 0.34 TFLOP: milliseconds on any GPU of ours, but seconds under
     * compute-sanitizer (11.3 s once under racecheck on an H200): the bound
     * only catches stamps that are not a duration at all */
    CHECK(busy > 0 && busy < 600);
    CHECK(idle >= 0 && idle < busy);
    CHECK(gpu->timer_seconds(gpu, 0, VB_TIMER_MARKS) < 0);
    void *gp[] = {gx, gw, gout};
    for (int i = 0; i < 3; i++)
        gpu->free(gpu, gp[i]);
    free(x);
    free(w);
}

static void test_silu_gate(void)
{
    /* 16-byte path (n % 8 == 0, several grid strides at 3M) and the 2-byte one */
    const size_t sizes[] = {1, 1000, 100003, 3000000};
    for (size_t c = 0; c < 4; c++) {
        size_t n = sizes[c];
        float *g = rand_vec(n, 4), *u = rand_vec(n, 2);
        void *cg = cpu_copy(g, n), *cu = cpu_copy(u, n);
        float *cout = cpu->alloc(cpu, n * 4);
        cpu->silu_gate(cpu, cout, cg, cu, n);
        void *gg = gpu_copy(g, n), *gu = gpu_copy(u, n), *gout = gpu_poisoned(n);
        gpu->silu_gate(gpu, gout, gg, gu, n);
        float *got = gpu_read(gout, n);
        char name[64];
        snprintf(name, sizeof name, "silu_gate n=%zu", n);
        compare(name, cout, got, n, 5e-3);
        free(got);
        gpu->free(gpu, gg);
        gpu->free(gpu, gu);
        gpu->free(gpu, gout);
        cpu->free(cpu, cg);
        cpu->free(cpu, cu);
        cpu->free(cpu, cout);
        free(g);
        free(u);
    }
}

/* vb_sum_ranks_f16 (--batch-invariant's all-reduce at tp > 1): each
 * element the fp32 sum of its ranks' halves in rank order, rounded once;
 * compared bit for bit with the same sum on the host, for 1, 2 and 3
 * ranks and sizes that take one and several grid strides. */
static void test_sum_ranks(void)
{
    const size_t sizes[] = {1, 3584, 5000003};
    for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; c++)
        for (int ranks = 1; ranks <= 3; ranks++) {
            const size_t n = sizes[c];
            uint16_t *parts = malloc(n * (size_t)ranks * 2), *want = malloc(n * 2),
                     *got = malloc(n * 2);
            CHECK(parts && want && got);
            for (size_t i = 0; i < n * (size_t)ranks; i++)
                parts[i] = vb_float_to_half(8.0f * frand());
            for (size_t i = 0; i < n; i++) {
                float acc = vb_half_to_float(parts[i]);
                for (int r = 1; r < ranks; r++)
                    acc += vb_half_to_float(parts[(size_t)r * n + i]);
                want[i] = vb_float_to_half(acc);
            }
            void *d_parts, *d_out;
            CUDA_CHECK(cudaMalloc(&d_parts, n * (size_t)ranks * 2));
            CUDA_CHECK(cudaMalloc(&d_out, n * 2));
            CUDA_CHECK(cudaMemcpy(d_parts, parts, n * (size_t)ranks * 2, cudaMemcpyHostToDevice));
            CUDA_CHECK(cudaMemset(d_out, 0xff, n * 2));
            CUDA_CHECK(vb_sum_ranks_f16(d_out, d_parts, ranks, n, 0));
            CUDA_CHECK(cudaMemcpy(got, d_out, n * 2, cudaMemcpyDeviceToHost));
            const bool same = memcmp(got, want, n * 2) == 0;
            if (!same)
                fprintf(stderr, "  sum_ranks n=%zu ranks=%d differs\n", n, ranks);
            CHECK(same);
            CUDA_CHECK(cudaFree(d_parts));
            CUDA_CHECK(cudaFree(d_out));
            free(parts);
            free(want);
            free(got);
        }
    CHECK(vb_sum_ranks_f16(NULL, NULL, 0, 8, 0) == cudaErrorInvalidValue);
}

/* embed on a vocabulary slice and last_rows, on a ragged step */
static void test_embed_and_last_rows(void)
{
    step_case sc = {3, {0, 0, 0}, {1, 9, 4}};
    step_batch sb;
    make_step(&sb, &sc, 16, 4);
    cpu->step_begin(cpu, &sb, sb.n_tokens);
    gpu->step_begin(gpu, &sb, sb.n_tokens);
    int hidden = 96, vstart = 100, vlocal = 300;
    float *table = rand_vec((size_t)vlocal * hidden, 1);
    void *ct = cpu_copy(table, (size_t)vlocal * hidden), *gt = gpu_copy(table, (size_t)vlocal * hidden);
    size_t n = (size_t)sb.n_tokens * hidden;
    float *cout = cpu->alloc(cpu, n * 4);
    void *gout = gpu_poisoned(n);
    cpu->embed(cpu, cout, ct, hidden, vstart, vlocal);
    gpu->embed(gpu, gout, gt, hidden, vstart, vlocal);
    float *got = gpu_read(gout, n);
    compare("embed (vocab slice [100, 400), ragged)", cout, got, n, 0);
    float *clast = cpu->alloc(cpu, (size_t)sb.n_seqs * hidden * 4);
    void *glast = gpu_poisoned((size_t)sb.n_seqs * hidden);
    cpu->last_rows(cpu, clast, cout, hidden);
    gpu->last_rows(gpu, glast, gout, hidden);
    float *got_last = gpu_read(glast, (size_t)sb.n_seqs * hidden);
    compare("last_rows", clast, got_last, (size_t)sb.n_seqs * hidden, 0);
    free(got);
    free(got_last);
    gpu->free(gpu, gt);
    gpu->free(gpu, gout);
    gpu->free(gpu, glast);
    cpu->free(cpu, ct);
    cpu->free(cpu, cout);
    cpu->free(cpu, clast);
    free(table);
    step_batch_free(&sb);
}

/* rope + KV write, then attention over the paged cache */
static void run_attention_case(int heads, int kv_heads, int hd, const step_case *sc)
{
    const int bs = 16;
    int max_len = 0;
    for (int s = 0; s < sc->n; s++)
        max_len = sc->cached[s] + sc->fresh[s] > max_len ? sc->cached[s] + sc->fresh[s] : max_len;
    int max_blocks = (max_len + bs - 1) / bs;
    step_batch sb;
    make_step(&sb, sc, bs, max_blocks);
    int T = sb.n_tokens;
    size_t cache_n = (size_t)sc->n * max_blocks * bs * kv_heads * hd;
    float *kc = rand_vec(cache_n, 1), *vc = rand_vec(cache_n, 1);
    float *q = rand_vec((size_t)T * heads * hd, 1), *k = rand_vec((size_t)T * kv_heads * hd, 1),
          *v = rand_vec((size_t)T * kv_heads * hd, 1);
    float *inv = malloc(sizeof(float) * (size_t)hd / 2);
    for (int i = 0; i < hd / 2; i++)
        inv[i] = (float)pow(10000.0, -2.0 * i / hd);
    cpu->step_begin(cpu, &sb, sb.n_tokens);
    gpu->step_begin(gpu, &sb, sb.n_tokens);

    void *ckc = cpu_copy(kc, cache_n), *cvc = cpu_copy(vc, cache_n);
    void *cq = cpu_copy(q, (size_t)T * heads * hd), *ck = cpu_copy(k, (size_t)T * kv_heads * hd),
         *cv = cpu_copy(v, (size_t)T * kv_heads * hd), *cinv = cpu_copy(inv, (size_t)hd / 2);
    void *gkc = gpu_copy(kc, cache_n), *gvc = gpu_copy(vc, cache_n);
    void *gq = gpu_copy(q, (size_t)T * heads * hd), *gk = gpu_copy(k, (size_t)T * kv_heads * hd),
         *gv = gpu_copy(v, (size_t)T * kv_heads * hd);
    float *ginv = gpu->alloc(gpu, sizeof(float) * (size_t)hd / 2);
    gpu->to_device(gpu, ginv, inv, sizeof(float) * (size_t)hd / 2);

    cpu->rope_kv_write(cpu, cq, ck, cv, ckc, cvc, cinv, 1.0f, heads, kv_heads, hd, bs);
    gpu->rope_kv_write(gpu, gq, gk, gv, gkc, gvc, ginv, 1.0f, heads, kv_heads, hd, bs);
    char name[96];
    float *got = gpu_read(gq, (size_t)T * heads * hd);
    snprintf(name, sizeof name, "rope q  heads %d/%d hd %d T %d", heads, kv_heads, hd, T);
    compare(name, cq, got, (size_t)T * heads * hd, 5e-3);
    free(got);
    got = gpu_read(gkc, cache_n);
    snprintf(name, sizeof name, "k cache after write (ctx up to %d)", max_len);
    compare(name, ckc, got, cache_n, 5e-3);
    free(got);
    got = gpu_read(gvc, cache_n);
    compare("v cache after write", cvc, got, cache_n, 5e-3);
    free(got);

    size_t on = (size_t)T * heads * hd;
    float *cout = cpu->alloc(cpu, on * 4);
    void *gout = gpu_poisoned(on);
    float scale = 1.0f / sqrtf((float)hd);
    cpu->attention(cpu, cout, cq, ckc, cvc, heads, kv_heads, hd, bs, scale);
    gpu->attention(gpu, gout, gq, gkc, gvc, heads, kv_heads, hd, bs, scale);
    got = gpu_read(gout, on);
    snprintf(name, sizeof name, "attention GQA %d hd %d ctx %d", heads / kv_heads, hd, max_len);
    compare(name, cout, got, on, 1e-2);
    free(got);

    void *gp[] = {gkc, gvc, gq, gk, gv, ginv, gout};
    for (int i = 0; i < 7; i++)
        gpu->free(gpu, gp[i]);
    void *cp[] = {ckc, cvc, cq, ck, cv, cinv, cout};
    for (int i = 0; i < 7; i++)
        cpu->free(cpu, cp[i]);
    free(kc);
    free(vc);
    free(q);
    free(k);
    free(v);
    free(inv);
    step_batch_free(&sb);
}

static void test_rope_kv_attention(void)
{
    /* prefill from scratch, a chunk on a cached prefix crossing a block
     * boundary, decodes at and after block boundaries */
    step_case ragged = {4, {0, 0, 40, 15}, {1, 17, 5, 1}};
    const int gqa[][2] = {{4, 4}, {8, 2}, {14, 2}, {32, 4}};
    for (int hdi = 0; hdi < 2; hdi++)
        for (int g = 0; g < 4; g++)
            run_attention_case(gqa[g][0], gqa[g][1], hdi ? 128 : 64, &ragged);
    /* the small head sizes of the fixture models */
    run_attention_case(4, 2, 16, &ragged);
    run_attention_case(4, 2, 32, &ragged);
    /* head sizes that leave lanes of a row idle (80: 10 of 16 lanes) and
     * the largest (256: 32 lanes a row, 16 O fragments a warp) */
    run_attention_case(8, 2, 80, &ragged);
    run_attention_case(8, 2, 256, &ragged);
    /* a GQA group wider than a block's 8 warps: two blocks a KV head, the
     * second with idle warps */
    run_attention_case(24, 2, 128, &ragged);
    /* a 32k context: one decode token and a 3-token chunk at the end */
    step_case longctx = {2, {32767, 32000}, {1, 3}};
    run_attention_case(8, 1, 128, &longctx);
    /* prefill-heavy, 7B-shaped heads: a 300-token prompt and a 40-token
     * chunk on a 1000-token cached prefix (tensor-core kernel) */
    step_case prefill = {2, {0, 1000}, {300, 40}};
    run_attention_case(28, 4, 128, &prefill);
    /* decode steps with enough (token, kv head, split of 512 positions)
     * blocks for the tensor-core decode kernel on sm_80+ (5 x 4 x 8 >= a
     * quarter of the SMs; the 32k case above takes it too, the ragged
     * ones the CUDA-core kernel; tests/gpu/test_attention_decode_mma.c covers its
     * shapes): GQA 1, 2, 7 and 8, a context of one position, contexts at
     * split boundaries, and a prompt chunk in the same step */
    step_case wide = {6, {3999, 511, 512, 0, 1300, 700}, {1, 1, 1, 1, 1, 20}};
    run_attention_case(4, 4, 128, &wide);
    run_attention_case(8, 4, 64, &wide);
    run_attention_case(28, 4, 128, &wide);
    run_attention_case(32, 4, 128, &wide);
}

static int *gpu_ints(const int *h, size_t n)
{
    int *d = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d, n * sizeof *d));
    CUDA_CHECK(cudaMemcpy(d, h, n * sizeof *d, cudaMemcpyHostToDevice));
    return d;
}

/* The q/k/v GEMV with RoPE and the KV write in its epilogue against the
 * two kernels it replaces (vb_gemv_multi_f16, then vb_rope_kv_write_f16):
 * q, k, v and both whole caches (written slots and untouched ones), GQA
 * 3:1, a bias on q and k only, a yarn-like cos/sin scale, T = 1 and 2
 * with the second row a padding row (no sequence: rotated, not cached). */
/* One shape of test_gemv_qkv_rope: heads, kv_heads, head_dim hd <= 128,
 * K input columns. */
static void qkv_rope_case(int heads, int kv_heads, int hd, int K)
{
    const int bs = 16, n_blocks = 8, max_blocks = 4;
    const int n[3] = {heads * hd, kv_heads * hd, kv_heads * hd};
    const size_t cache_n = (size_t)n_blocks * bs * kv_heads * hd;
    const int positions[2] = {37, 5}, token_seq[2] = {0, -1}, tables[4] = {6, 1, 3, 0};
    float inv[64];
    for (int i = 0; i < hd / 2; i++)
        inv[i] = powf(10000.0f, -2.0f * (float)i / (float)hd);
    float *kc0 = rand_vec(cache_n, 1), *vc0 = rand_vec(cache_n, 1);
    void *ginv = gpu_copy_f32(inv, (size_t)hd / 2);
    int *gpos = gpu_ints(positions, 2), *gseq = gpu_ints(token_seq, 2), *gtab = gpu_ints(tables, 4);
    for (int T = 1; T <= 2; T++) {
        float *x = rand_vec((size_t)T * K, 1);
        void *gx = gpu_copy(x, (size_t)T * K);
        void *gw[3], *gb[3], *out[2][3], *kc[2], *vc[2];
        for (int s = 0; s < 3; s++) {
            float *w = rand_vec((size_t)n[s] * K, 0.05f), *b = rand_vec((size_t)n[s], 0.5f);
            gw[s] = gpu_copy(w, (size_t)n[s] * K);
            gb[s] = s == 2 ? NULL : gpu_copy(b, (size_t)n[s]);
            free(w);
            free(b);
            for (int path = 0; path < 2; path++)
                out[path][s] = gpu_poisoned((size_t)T * n[s]);
        }
        for (int path = 0; path < 2; path++) {
            kc[path] = gpu_copy(kc0, cache_n);
            vc[path] = gpu_copy(vc0, cache_n);
        }
        vb_gemv_seg segs[2][3];
        for (int path = 0; path < 2; path++)
            for (int s = 0; s < 3; s++)
                segs[path][s] = (vb_gemv_seg){gw[s], gb[s], out[path][s], n[s]};
        /* path 0: the two kernels; path 1: the fused one */
        CUDA_CHECK(vb_gemv_multi_f16(segs[0], 3, 0, gx, T, K, 0));
        CUDA_CHECK(vb_rope_kv_write_f16(out[0][0], out[0][1], out[0][2], kc[0], vc[0], ginv, 0.9f,
                                        gpos, gseq, gtab, max_blocks, T, heads, kv_heads, hd, bs,
                                        0));
        vb_gemv_rope r = {ginv, 0.9f, gpos, gseq, gtab, max_blocks, bs, hd, kv_heads, kc[1], vc[1]};
        CUDA_CHECK(vb_gemv_qkv_rope_f16(segs[1], gx, T, K, &r, 0, 0));
        const char *names[3] = {"q", "k", "v"};
        char name[80];
        for (int s = 0; s < 3; s++) {
            float *want = gpu_read(out[0][s], (size_t)T * n[s]), *got = gpu_read(out[1][s], (size_t)T * n[s]);
            snprintf(name, sizeof name, "qkv+rope GEMV: %s, T=%d", names[s], T);
            compare(name, want, got, (size_t)T * n[s], 5e-3);
            free(want);
            free(got);
        }
        void *caches[2][2] = {{kc[0], vc[0]}, {kc[1], vc[1]}};
        for (int m = 0; m < 2; m++) {
            float *want = gpu_read(caches[0][m], cache_n), *got = gpu_read(caches[1][m], cache_n);
            snprintf(name, sizeof name, "qkv+rope GEMV: %s cache, T=%d", m ? "v" : "k", T);
            compare(name, want, got, cache_n, 5e-3);
            free(want);
            free(got);
        }
        /* the one-chunk kernel (shallow) gives the launcher's choice's bits:
         * the same chunks in the same order */
        float *deep[3];
        for (int s = 0; s < 3; s++)
            deep[s] = gpu_read(out[1][s], (size_t)T * n[s]);
        CUDA_CHECK(vb_gemv_qkv_rope_f16(segs[1], gx, T, K, &r, 1, 0));
        for (int s = 0; s < 3; s++) {
            float *one = gpu_read(out[1][s], (size_t)T * n[s]);
            CHECK(memcmp(one, deep[s], (size_t)T * n[s] * sizeof *one) == 0);
            free(one);
            free(deep[s]);
        }
        for (int s = 0; s < 3; s++) {
            gpu->free(gpu, gw[s]);
            if (gb[s])
                gpu->free(gpu, gb[s]);
            gpu->free(gpu, out[0][s]);
            gpu->free(gpu, out[1][s]);
        }
        for (int path = 0; path < 2; path++) {
            gpu->free(gpu, kc[path]);
            gpu->free(gpu, vc[path]);
        }
        gpu->free(gpu, gx);
        free(x);
    }
    /* a head_dim that does not divide the projection: refused */
    vb_gemv_seg bad[3] = {{NULL, NULL, NULL, 100}, {NULL, NULL, NULL, 128}, {NULL, NULL, NULL, 128}};
    vb_gemv_rope r = {ginv, 1.0f, gpos, gseq, gtab, max_blocks, bs, hd, kv_heads, (uint16_t *)1,
                      (uint16_t *)1};
    CHECK(vb_gemv_qkv_rope_f16(bad, NULL, 1, K, &r, 0, 0) == cudaErrorInvalidValue);
    gpu->free(gpu, ginv);
    CUDA_CHECK(cudaFree(gpos));
    CUDA_CHECK(cudaFree(gseq));
    CUDA_CHECK(cudaFree(gtab));
    free(kc0);
    free(vc0);
}

/* The fused q/k/v GEMV with RoPE and the cache write against the two
 * kernels: a small shape (the launcher's deep kernel, QR_DEEP chunks in
 * flight) and one whose grid is more than the deep kernel's resident
 * blocks (10,240 rows: the one-chunk kernel). */
static void test_gemv_qkv_rope(void)
{
    qkv_rope_case(6, 2, 64, 896);
    qkv_rope_case(64, 8, 128, 512);
}

/* Runs the attention cases on a second backend made with the knob at
 * `knob` (a bool of vb_tuning) on (the backend takes its knobs when it is
 * made): a path the default backend of this GPU does not take. */
static void run_attention_with(size_t knob, const int (*gqa)[3], int n_gqa)
{
    vb_tuning t = knobs;
    *(bool *)((char *)&t + knob) = true;
    vb_err err;
    vb_backend *normal = gpu;
    gpu = cuda_backend_create(NULL, &t, &err);
    if (!gpu) {
        fprintf(stderr, "backend: %s\n", err.msg);
        CHECK(gpu != NULL);
        gpu = normal;
        return;
    }
    step_case ragged = {4, {0, 0, 40, 15}, {1, 17, 5, 1}};
    for (int i = 0; i < n_gqa; i++)
        run_attention_case(gqa[i][0], gqa[i][1], gqa[i][2], &ragged);
    step_case prefill = {2, {0, 1000}, {300, 40}};
    run_attention_case(28, 4, 128, &prefill);
    gpu->destroy(gpu);
    gpu = normal;
}

/* The per-token kernel on every token (the backend's fallback path), so
 * both attention kernels are checked on prefill tokens. */
static void test_attention_per_token_path(void)
{
    const int gqa[][3] = {{8, 2, 128}};
    run_attention_with(offsetof(vb_tuning, attention_per_token), gqa, 1);
}

/* Decode attention with a block per GQA group at every size: by default
 * the small steps above take a block per query head (attention_decode.cu's
 * vb_attention_decode_heads_per_block), so both layouts are checked. */
static void test_decode_whole_groups_path(void)
{
    const int gqa[][3] = {{8, 2, 128}, {14, 2, 64}, {32, 4, 128}};
    run_attention_with(offsetof(vb_tuning, decode_whole_groups), gqa, 3);
}

/* The WMMA prefill kernel (V100's) on this GPU too: on sm_80+ the
 * default backend runs the mma.sync kernel, so both are checked here. */
static void test_prefill_wmma_path(void)
{
    const int gqa[][3] = {{8, 2, 64}, {24, 2, 128}};
    run_attention_with(offsetof(vb_tuning, prefill_wmma), gqa, 2);
}

/* The 16-rows-a-warp prefill kernel on the fp16 cache (VB_PREFILL_MMA16;
 * the default is the 32-rows one): groups of 1, 4, 7 and 12 heads (tiles
 * of 128, 32, 18 and 10 tokens). */
static void test_prefill_mma16_path(void)
{
    const int gqa[][3] = {{4, 4, 128}, {8, 2, 64}, {14, 2, 128}, {24, 2, 128}};
    run_attention_with(offsetof(vb_tuning, prefill_mma16), gqa, 4);
}

/* --kv-cache-dtype int8 through the backends' ops, on backends made with
 * that cache: rope_kv_write quantizes K (after RoPE) and V into the int8
 * layout and attention reads it, the CUDA backend against the CPU one.
 * The GPU quantizes the fp16-rounded rotated K, the CPU the fp32 one, so a
 * K value may land one step (max |row| / 127) apart: the caches are
 * compared dequantized, within 1e-2 of the largest value; V rows are not
 * rotated and quantize alike. Attention within 1e-2 as for fp16. The
 * kernels' bytes against kv_int8_quantize: test_kv_int8_kernels.c. */
static void dequantize_cache(float *out, const unsigned char *c, size_t slots, int kv_heads,
                             int hd)
{
    for (size_t slot = 0; slot < slots; slot++)
        for (int h = 0; h < kv_heads; h++) {
            const int8_t *qv = (const int8_t *)(c + kv_int8_values_at(slot, h, 16, kv_heads, hd));
            float sc;
            memcpy(&sc, c + kv_int8_scale_at(slot, h, 16, kv_heads, hd), sizeof sc);
            for (int i = 0; i < hd; i++)
                out[(slot * kv_heads + h) * hd + i] = (float)qv[i] * sc;
        }
}

static void run_attention_case_kv8(int heads, int kv_heads, int hd, const step_case *sc)
{
    const int bs = 16;
    int max_len = 0;
    for (int s = 0; s < sc->n; s++)
        max_len = sc->cached[s] + sc->fresh[s] > max_len ? sc->cached[s] + sc->fresh[s] : max_len;
    int max_blocks = (max_len + bs - 1) / bs;
    step_batch sb;
    make_step(&sb, sc, bs, max_blocks);
    int T = sb.n_tokens;
    size_t slots = (size_t)sc->n * max_blocks * bs;
    size_t bytes = (size_t)sc->n * max_blocks * kv_int8_block_bytes(bs, kv_heads, hd);
    /* the cached positions: random rows quantized here, the same bytes on both sides */
    unsigned char *init[2];
    float *row = rand_vec((size_t)hd, 1);
    int8_t qv[256];
    for (int m = 0; m < 2; m++) {
        init[m] = calloc(bytes, 1);
        for (size_t slot = 0; slot < slots; slot++)
            for (int h = 0; h < kv_heads; h++) {
                for (int i = 0; i < hd; i++)
                    row[i] = frand() * (0.5f + (float)(slot % 5));
                float s;
                kv_int8_quantize(row, hd, qv, &s);
                memcpy(init[m] + kv_int8_values_at(slot, h, bs, kv_heads, hd), qv, (size_t)hd);
                memcpy(init[m] + kv_int8_scale_at(slot, h, bs, kv_heads, hd), &s, sizeof s);
            }
    }
    float *q = rand_vec((size_t)T * heads * hd, 1), *k = rand_vec((size_t)T * kv_heads * hd, 1),
          *v = rand_vec((size_t)T * kv_heads * hd, 1);
    float *inv = malloc(sizeof(float) * (size_t)hd / 2);
    for (int i = 0; i < hd / 2; i++)
        inv[i] = (float)pow(10000.0, -2.0 * i / hd);
    cpu->step_begin(cpu, &sb, sb.n_tokens);
    gpu->step_begin(gpu, &sb, sb.n_tokens);
    void *ckc = cpu->alloc(cpu, bytes), *cvc = cpu->alloc(cpu, bytes);
    memcpy(ckc, init[0], bytes);
    memcpy(cvc, init[1], bytes);
    void *gkc = gpu->alloc(gpu, bytes), *gvc = gpu->alloc(gpu, bytes);
    gpu->to_device(gpu, gkc, init[0], bytes);
    gpu->to_device(gpu, gvc, init[1], bytes);
    void *cq = cpu_copy(q, (size_t)T * heads * hd), *ck = cpu_copy(k, (size_t)T * kv_heads * hd),
         *cv = cpu_copy(v, (size_t)T * kv_heads * hd), *cinv = cpu_copy(inv, (size_t)hd / 2);
    void *gq = gpu_copy(q, (size_t)T * heads * hd), *gk = gpu_copy(k, (size_t)T * kv_heads * hd),
         *gv = gpu_copy(v, (size_t)T * kv_heads * hd);
    float *ginv = gpu->alloc(gpu, sizeof(float) * (size_t)hd / 2);
    gpu->to_device(gpu, ginv, inv, sizeof(float) * (size_t)hd / 2);

    cpu->rope_kv_write(cpu, cq, ck, cv, ckc, cvc, cinv, 1.0f, heads, kv_heads, hd, bs);
    gpu->rope_kv_write(gpu, gq, gk, gv, gkc, gvc, ginv, 1.0f, heads, kv_heads, hd, bs);
    char name[96];
    float *got = gpu_read(gq, (size_t)T * heads * hd);
    snprintf(name, sizeof name, "int8 KV: rope q heads %d/%d hd %d T %d", heads, kv_heads, hd, T);
    compare(name, cq, got, (size_t)T * heads * hd, 5e-3);
    free(got);
    unsigned char *gbytes = malloc(bytes);
    float *want = malloc(slots * kv_heads * hd * 4), *have = malloc(slots * kv_heads * hd * 4);
    void *caches[2][2] = {{ckc, gkc}, {cvc, gvc}};
    for (int m = 0; m < 2; m++) {
        CUDA_CHECK(cudaDeviceSynchronize());
        gpu->to_host(gpu, gbytes, caches[m][1], bytes);
        dequantize_cache(want, caches[m][0], slots, kv_heads, hd);
        dequantize_cache(have, gbytes, slots, kv_heads, hd);
        snprintf(name, sizeof name, "int8 KV: %s cache after write (ctx up to %d)",
                 m ? "v" : "k", max_len);
        compare(name, want, have, slots * kv_heads * hd, 1e-2);
    }

    size_t on = (size_t)T * heads * hd;
    float *cout = cpu->alloc(cpu, on * 4);
    void *gout = gpu_poisoned(on);
    float scale = 1.0f / sqrtf((float)hd);
    cpu->attention(cpu, cout, cq, ckc, cvc, heads, kv_heads, hd, bs, scale);
    gpu->attention(gpu, gout, gq, gkc, gvc, heads, kv_heads, hd, bs, scale);
    got = gpu_read(gout, on);
    snprintf(name, sizeof name, "int8 KV: attention GQA %d hd %d ctx %d", heads / kv_heads, hd,
             max_len);
    compare(name, cout, got, on, 1e-2);
    free(got);

    void *gp[] = {gkc, gvc, gq, gk, gv, ginv, gout};
    for (int i = 0; i < 7; i++)
        gpu->free(gpu, gp[i]);
    void *cp[] = {ckc, cvc, cq, ck, cv, cinv, cout};
    for (int i = 0; i < 7; i++)
        cpu->free(cpu, cp[i]);
    void *hp[] = {init[0], init[1], row, q, k, v, inv, gbytes, want, have};
    for (size_t i = 0; i < sizeof hp / sizeof hp[0]; i++)
        free(hp[i]);
    step_batch_free(&sb);
}

/* The int8 cases on backends made with the int8 cache, the GPU's at its
 * default paths and with each attention knob (the per-token kernel, a
 * decode block per group, the WMMA prefill), so every int8 twin runs
 * behind cuda_attention's choice. */
static void test_kv_int8_ops(void)
{
    static const size_t knob[] = {0, offsetof(vb_tuning, attention_per_token),
                                  offsetof(vb_tuning, decode_whole_groups),
                                  offsetof(vb_tuning, prefill_wmma)};
    vb_backend *cpu16 = cpu, *gpu16 = gpu;
    step_case ragged = {4, {0, 0, 40, 15}, {1, 17, 5, 1}};
    step_case prefill = {2, {0, 1000}, {300, 40}};
    step_case wide = {6, {3999, 511, 512, 0, 1300, 700}, {1, 1, 1, 1, 1, 20}};
    for (size_t i = 0; i < sizeof knob / sizeof knob[0]; i++) {
        vb_tuning t = knobs;
        if (knob[i])
            *(bool *)((char *)&t + knob[i]) = true;
        vb_err err;
        gpu = cuda_backend_create(NULL, &t, &err);
        cpu = cpu_backend_create(0, MPI_COMM_NULL, 1);
        if (!gpu || !cpu) {
            fprintf(stderr, "backend: %s\n", err.msg);
            CHECK(gpu != NULL && cpu != NULL);
            break;
        }
        gpu->kv_dtype = VB_KV_INT8;
        cpu->kv_dtype = VB_KV_INT8;
        run_attention_case_kv8(8, 2, 128, &ragged);
        run_attention_case_kv8(14, 2, 64, &ragged);
        run_attention_case_kv8(4, 2, 16, &ragged);
        run_attention_case_kv8(28, 4, 128, &prefill);
        run_attention_case_kv8(28, 4, 128, &wide);
        if (i == 0) {
            run_attention_case_kv8(8, 2, 80, &ragged);
            run_attention_case_kv8(8, 2, 256, &ragged);
            run_attention_case_kv8(8, 4, 64, &wide);
        }
        gpu->destroy(gpu);
        cpu->destroy(cpu);
    }
    cpu = cpu16;
    gpu = gpu16;
}

int main(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0)
        return test_skip("no CUDA device on this machine");
    vb_err err;
    if (vb_tuning_from_env(&knobs, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    cpu = cpu_backend_create(0, MPI_COMM_NULL, 1);
    gpu = cuda_backend_create(NULL, &knobs, &err);
    if (!cpu || !gpu) {
        fprintf(stderr, "backend: %s\n", err.msg);
        return 1;
    }
    RUN_TEST(test_matmul_and_lm_head);
    RUN_TEST(test_gemv_paths);
    RUN_TEST(test_gemv_split_rows);
    RUN_TEST(test_gemv_qkv_rope);
    RUN_TEST(test_rmsnorm);
    RUN_TEST(test_silu_gate);
    RUN_TEST(test_sum_ranks);
    RUN_TEST(test_timer_stamps);
    RUN_TEST(test_embed_and_last_rows);
    RUN_TEST(test_rope_kv_attention);
    RUN_TEST(test_attention_per_token_path);
    RUN_TEST(test_decode_whole_groups_path);
    RUN_TEST(test_prefill_wmma_path);
    RUN_TEST(test_prefill_mma16_path);
    RUN_TEST(test_kv_int8_ops);
    cpu->destroy(cpu);
    gpu->destroy(gpu);
    return test_summary();
}

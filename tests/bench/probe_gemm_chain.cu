// Probe (issue #22): do cuBLASLt's GEMM kernels, pinned to one algorithm
// without split-K, compute each output element as a plain chain of
// tensor-core k16 steps, bit for bit the chain that mma.sync m16n8k16 (and
// wgmma m64n8k16) computes? If so, the batch-invariant mode can run
// cuBLAS's own kernels on large steps and a chain kernel of ours on small
// ones with identical bits.
//
// Standalone (not in meson): nvcc -arch=sm_90a -O2 -o probe
// tests/bench/probe_gemm_chain.cu -lcublasLt -lcublas
// usage: probe [reps]
#include <cublasLt.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CK(x)                                                                      \
    do {                                                                           \
        cudaError_t e_ = (x);                                                      \
        if (e_ != cudaSuccess) {                                                   \
            fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x,              \
                    cudaGetErrorString(e_));                                       \
            exit(1);                                                               \
        }                                                                          \
    } while (0)
#define LK(x)                                                                      \
    do {                                                                           \
        cublasStatus_t s_ = (x);                                                   \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                         \
            fprintf(stderr, "%s:%d %s: status %d\n", __FILE__, __LINE__, #x, (int)s_); \
            exit(1);                                                               \
        }                                                                          \
    } while (0)

// ---- the mma.sync chain: a warp = 16 outputs x 8 tokens, fragments straight
// from global memory (slow; a reference of the order, not a kernel to time).
__global__ void chain_mma_kernel(float *out, const __half *x, const __half *w, int T, int n_in,
                                 int n_out)
{
    const int lane = threadIdx.x & 31;
    const int o0 = (blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32) * 16;
    const int t0 = blockIdx.y * 8;
    if (o0 >= n_out)
        return;
    const int g = lane / 4, c = lane % 4;
    float acc[4] = {0.f, 0.f, 0.f, 0.f};
    const int tb = min(t0 + g, T - 1);
    for (int k = 0; k < n_in; k += 16) {
        unsigned a[4], b0, b1;
        a[0] = *(const unsigned *)(w + (size_t)(o0 + g) * n_in + k + 2 * c);
        a[1] = *(const unsigned *)(w + (size_t)(o0 + g + 8) * n_in + k + 2 * c);
        a[2] = *(const unsigned *)(w + (size_t)(o0 + g) * n_in + k + 2 * c + 8);
        a[3] = *(const unsigned *)(w + (size_t)(o0 + g + 8) * n_in + k + 2 * c + 8);
        b0 = *(const unsigned *)(x + (size_t)tb * n_in + k + 2 * c);
        b1 = *(const unsigned *)(x + (size_t)tb * n_in + k + 2 * c + 8);
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                     "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                     : "+f"(acc[0]), "+f"(acc[1]), "+f"(acc[2]), "+f"(acc[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    for (int i = 0; i < 4; i++) {
        const int o = o0 + g + (i >= 2 ? 8 : 0), t = t0 + 2 * c + (i & 1);
        if (t < T)
            out[(size_t)t * n_out + o] = acc[i];
    }
}

// ---- the wgmma chain: a warpgroup = 64 outputs x 8 tokens, k16 tiles copied
// to shared memory in the no-swizzle core-matrix layout (8 rows x 16 bytes a
// core matrix, 128 contiguous bytes): A core (i, j) (row block i, k half j)
// at (2 i + j) * 128 bytes, B core j at j * 128. `swap` exchanges the
// descriptors' two offsets (a probe of which one the hardware reads as
// which: the right one agrees with the mma.sync chain to rounding).
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL)
__device__ __forceinline__ uint64_t desc_encode(const void *smem, unsigned lbo, unsigned sbo)
{
    const unsigned addr = (unsigned)__cvta_generic_to_shared(smem);
    uint64_t d = 0;
    d |= (uint64_t)((addr & 0x3FFFF) >> 4);
    d |= (uint64_t)((lbo & 0x3FFFF) >> 4) << 16;
    d |= (uint64_t)((sbo & 0x3FFFF) >> 4) << 32;
    return d; /* base offset 0, swizzle 0 (none) */
}
#endif

__global__ void chain_wgmma_kernel(float *out, const __half *x, const __half *w, int T, int n_in,
                                   int n_out, int swap)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL)
    __shared__ __align__(128) __half sa[64 * 16];
    __shared__ __align__(128) __half sb[8 * 16];
    const int tid = threadIdx.x; /* 128 */
    const int o0 = blockIdx.x * 64, t0 = blockIdx.y * 8;
    float d[4] = {0.f, 0.f, 0.f, 0.f};
    for (int k = 0; k < n_in; k += 16) {
        /* A: 64 rows x 16 halves = 128 units of 8 halves; thread tid one unit */
        {
            const int r = tid / 2, j = tid % 2;
            const int4 v = *(const int4 *)(w + (size_t)(o0 + r) * n_in + k + 8 * j);
            const int i = r / 8, rr = r % 8;
            *(int4 *)((char *)sa + (2 * i + j) * 128 + rr * 16) = v;
        }
        if (tid < 16) {
            const int r = tid / 2, j = tid % 2;
            const int t = min(t0 + r, T - 1);
            const int4 v = *(const int4 *)(x + (size_t)t * n_in + k + 8 * j);
            *(int4 *)((char *)sb + j * 128 + r * 16) = v;
        }
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
        __syncthreads();
        const unsigned k_off = 128, mn_off = 256;
        const uint64_t da = swap ? desc_encode(sa, mn_off, k_off) : desc_encode(sa, k_off, mn_off);
        const uint64_t db = swap ? desc_encode(sb, mn_off, k_off) : desc_encode(sb, k_off, mn_off);
        asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
        asm volatile("{\n"
                     ".reg .pred p;\n"
                     "setp.ne.b32 p, %6, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n8k16.f32.f16.f16 "
                     "{%0, %1, %2, %3}, %4, %5, p, 1, 1, 0, 0;\n"
                     "}\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "l"(da), "l"(db), "r"(1));
        asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
        asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
        __syncthreads();
    }
    const int warp = tid / 32, lane = tid % 32, g = lane / 4, c = lane % 4;
    for (int i = 0; i < 4; i++) {
        const int o = o0 + 16 * warp + g + (i >= 2 ? 8 : 0), t = t0 + 2 * c + (i & 1);
        if (t < T)
            out[(size_t)t * n_out + o] = d[i];
    }
#endif
}

// ---- cuBLASLt: out[T, n_out] (col-major n_out x T) = w (col-major n_in x n_out)^T x
struct lt_gemm {
    cublasLtHandle_t h;
    cublasLtMatmulDesc_t desc;
    cudaDataType_t out_type;
    int n_in, n_out;
    void *ws;
    size_t ws_bytes;
};

static void lt_layouts(const lt_gemm *g, int T, cublasLtMatrixLayout_t *la, cublasLtMatrixLayout_t *lb,
                       cublasLtMatrixLayout_t *lc)
{
    LK(cublasLtMatrixLayoutCreate(la, CUDA_R_16F, g->n_in, g->n_out, g->n_in));
    LK(cublasLtMatrixLayoutCreate(lb, CUDA_R_16F, g->n_in, T, g->n_in));
    LK(cublasLtMatrixLayoutCreate(lc, g->out_type, g->n_out, T, g->n_out));
}

static int lt_heuristics(const lt_gemm *g, int T, cublasLtMatmulHeuristicResult_t *res, int want)
{
    cublasLtMatrixLayout_t la, lb, lc;
    lt_layouts(g, T, &la, &lb, &lc);
    cublasLtMatmulPreference_t pref;
    LK(cublasLtMatmulPreferenceCreate(&pref));
    uint64_t wsb = g->ws_bytes;
    LK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb,
                                            sizeof wsb));
    uint32_t al = 16;
    LK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al, 4));
    LK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al, 4));
    LK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al, 4));
    LK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al, 4));
    int n = 0;
    cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(g->h, g->desc, la, lb, lc, lc, pref, want, res, &n);
    if (s != CUBLAS_STATUS_SUCCESS)
        n = 0;
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(la);
    cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatrixLayoutDestroy(lc);
    return n;
}

static int lt_run(const lt_gemm *g, const cublasLtMatmulAlgo_t *algo, void *out, const __half *x,
                  const __half *w, int T)
{
    cublasLtMatrixLayout_t la, lb, lc;
    lt_layouts(g, T, &la, &lb, &lc);
    const float one = 1.f, zero = 0.f;
    cublasStatus_t s = cublasLtMatmul(g->h, g->desc, &one, w, la, x, lb, &zero, out, lc, out, lc, algo,
                                      g->ws, g->ws_bytes, 0);
    cublasLtMatrixLayoutDestroy(la);
    cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatrixLayoutDestroy(lc);
    return s == CUBLAS_STATUS_SUCCESS;
}

static void algo_describe(const cublasLtMatmulAlgo_t *a, char *buf, size_t n)
{
    int32_t id = -1;
    uint32_t tile = 0, splitk = 0, red = 0, swz = 0, custom = 0, stages = 0, inner = 0, cluster = 0;
    size_t w;
    cublasLtMatmulAlgoConfigGetAttribute(a, CUBLASLT_ALGO_CONFIG_ID, &id, sizeof id, &w);
    cublasLtMatmulAlgoConfigGetAttribute(a, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof tile, &w);
    cublasLtMatmulAlgoConfigGetAttribute(a, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk, sizeof splitk, &w);
    cublasLtMatmulAlgoConfigGetAttribute(a, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &red, sizeof red, &w);
    cublasLtMatmulAlgoConfigGetAttribute(a, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING, &swz, sizeof swz, &w);
    cublasLtMatmulAlgoConfigGetAttribute(a, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION, &custom, sizeof custom, &w);
    cublasLtMatmulAlgoConfigGetAttribute(a, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages, sizeof stages, &w);
    cublasLtMatmulAlgoConfigGetAttribute(a, CUBLASLT_ALGO_CONFIG_INNER_SHAPE_ID, &inner, sizeof inner, &w);
    cublasLtMatmulAlgoConfigGetAttribute(a, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID, &cluster, sizeof cluster, &w);
    snprintf(buf, n, "id %d tile %u splitk %u red %u swz %u custom %u stages %u inner %u cluster %u", id,
             tile, splitk, red, swz, custom, stages, inner, cluster);
}

static uint32_t algo_splitk(const cublasLtMatmulAlgo_t *a)
{
    uint32_t s = 0;
    size_t w;
    cublasLtMatmulAlgoConfigGetAttribute(a, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &s, sizeof s, &w);
    return s;
}

__global__ void fill_kernel(__half *p, size_t n, uint32_t seed, float scale)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        uint32_t h = (uint32_t)i * 2654435761u ^ seed;
        h ^= h >> 16;
        h *= 0x7feb352du;
        h ^= h >> 15;
        h *= 0x846ca68bu;
        h ^= h >> 16;
        p[i] = __float2half_rn(((float)(h & 0xFFFFFF) / 16777216.0f * 2.f - 1.f) * scale);
    }
}

// fp32 out -> fp16 bits (the fp16 entry point's output) where needed
__global__ void to_half_kernel(__half *o, const float *i, size_t n)
{
    for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < n; k += (size_t)gridDim.x * blockDim.x)
        o[k] = __float2half_rn(i[k]);
}

static size_t count_diff(const void *a, const void *b, size_t bytes_each, size_t n, double *max_rel,
                         const float *fa, const float *fb)
{
    size_t d = 0;
    double mr = 0;
    for (size_t i = 0; i < n; i++) {
        if (memcmp((const char *)a + i * bytes_each, (const char *)b + i * bytes_each, bytes_each))
            d++;
        if (fa && fb) {
            double den = fabs((double)fb[i]) + 1e-3;
            double r = fabs((double)fa[i] - fb[i]) / den;
            if (r > mr)
                mr = r;
        }
    }
    if (max_rel)
        *max_rel = mr;
    return d;
}

static float time_it(cudaEvent_t e0, cudaEvent_t e1, int reps, int (*fn)(void *), void *arg)
{
    fn(arg); /* warm-up */
    float best[64];
    int n = reps < 64 ? reps : 64;
    for (int r = 0; r < n; r++) {
        CK(cudaEventRecord(e0, 0));
        fn(arg);
        CK(cudaEventRecord(e1, 0));
        CK(cudaEventSynchronize(e1));
        CK(cudaEventElapsedTime(&best[r], e0, e1));
    }
    /* median */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && best[j] < best[j - 1]; j--) {
            float t = best[j];
            best[j] = best[j - 1];
            best[j - 1] = t;
        }
    return best[n / 2] * 1000.f;
}

struct run_arg {
    const lt_gemm *g;
    const cublasLtMatmulAlgo_t *algo; /* NULL: heuristic's first at this T */
    void *out;
    const __half *x, *w;
    int T;
    cublasLtMatmulAlgo_t best;
};

static int run_fn(void *p)
{
    run_arg *a = (run_arg *)p;
    return lt_run(a->g, a->algo ? a->algo : &a->best, a->out, a->x, a->w, a->T);
}

int main(int argc, char **argv)
{
    const int reps = argc > 1 ? atoi(argv[1]) : 9;
    struct {
        const char *name;
        int n_in, n_out, f32;
    } shapes[] = {
        {"7B qkv", 3584, 4608, 0},   {"7B o", 3584, 3584, 0},       {"7B gate_up", 3584, 37888, 0},
        {"7B down", 18944, 3584, 0}, {"7B lm_head", 3584, 152064, 1}, {"SmolLM2 q", 576, 576, 0},
        {"SmolLM2 gate_up", 576, 3072, 0}, {"SmolLM2 down", 1536, 576, 0},
    };
    const int Tmax = 8192;
    const int Ts[] = {1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192};
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    printf("GPU %s sm_%d%d, %d SMs, cuBLASLt %zu\n", prop.name, prop.major, prop.minor,
           prop.multiProcessorCount, cublasLtGetVersion());
    cublasLtHandle_t h;
    LK(cublasLtCreate(&h));
    size_t ws_bytes = 64u << 20;
    void *ws;
    CK(cudaMalloc(&ws, ws_bytes));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int n_in = shapes[si].n_in, n_out = shapes[si].n_out;
        const int T_big = shapes[si].f32 ? 2048 : Tmax;
        __half *x, *w;
        float *ref, *refw, *outf;
        void *out_big, *out_small;
        const size_t ob = shapes[si].f32 ? 4 : 2;
        CK(cudaMalloc(&x, (size_t)T_big * n_in * 2));
        CK(cudaMalloc(&w, (size_t)n_out * n_in * 2));
        CK(cudaMalloc(&ref, (size_t)64 * n_out * 4));
        CK(cudaMalloc(&refw, (size_t)64 * n_out * 4));
        CK(cudaMalloc(&outf, (size_t)64 * n_out * 4));
        CK(cudaMalloc(&out_big, (size_t)T_big * n_out * ob));
        CK(cudaMalloc(&out_small, (size_t)T_big * n_out * ob));
        fill_kernel<<<1024, 256>>>(x, (size_t)T_big * n_in, 1234u + si, 1.0f);
        fill_kernel<<<1024, 256>>>(w, (size_t)n_out * n_in, 777u + si, 1.0f / sqrtf((float)n_in) * 1.7f);
        CK(cudaGetLastError());
        /* chain references for the first 64 rows */
        chain_mma_kernel<<<dim3(n_out / 64, 8), 128>>>(ref, x, w, 64, n_in, n_out);
        CK(cudaGetLastError());
        CK(cudaDeviceSynchronize());
        const size_t nref = (size_t)64 * n_out;
        float *h_ref = (float *)malloc(nref * 4), *h_o = (float *)malloc(nref * 4);
        CK(cudaMemcpy(h_ref, ref, nref * 4, cudaMemcpyDeviceToHost));
        printf("\n== %s: n_in %d n_out %d out %s\n", shapes[si].name, n_in, n_out, shapes[si].f32 ? "f32" : "f16");
        for (int swap = 0; swap < 1; swap++) { /* swapped offsets fault: the first is right */
            CK(cudaMemset(refw, 0, nref * 4));
            chain_wgmma_kernel<<<dim3(n_out / 64, 8), 128>>>(refw, x, w, 64, n_in, n_out, swap);
            cudaError_t e = cudaDeviceSynchronize();
            if (e != cudaSuccess) {
                printf("wgmma chain (swap %d): %s\n", swap, cudaGetErrorString(e));
                exit(1);
            }
            CK(cudaMemcpy(h_o, refw, nref * 4, cudaMemcpyDeviceToHost));
            double mr;
            size_t d = count_diff(h_o, h_ref, 4, nref, &mr, h_o, h_ref);
            printf("wgmma chain (offsets %s) vs mma.sync chain: %zu of %zu fp32 differ, max rel %.3g\n",
                   swap ? "swapped" : "k, mn", d, nref, mr);
        }
        lt_gemm g;
        g.h = h;
        g.out_type = shapes[si].f32 ? CUDA_R_32F : CUDA_R_16F;
        g.n_in = n_in;
        g.n_out = n_out;
        g.ws = ws;
        g.ws_bytes = ws_bytes;
        LK(cublasLtMatmulDescCreate(&g.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
        cublasOperation_t opT = CUBLAS_OP_T, opN = CUBLAS_OP_N;
        LK(cublasLtMatmulDescSetAttribute(g.desc, CUBLASLT_MATMUL_DESC_TRANSA, &opT, sizeof opT));
        LK(cublasLtMatmulDescSetAttribute(g.desc, CUBLASLT_MATMUL_DESC_TRANSB, &opN, sizeof opN));
        /* candidates: heuristics at several T, split-K 1 only, deduplicated */
        cublasLtMatmulAlgo_t cand[64];
        int n_cand = 0;
        const int hT[] = {8192, 2048, 512, 256, 64, 16, 1};
        for (int hi = 0; hi < 7; hi++) {
            cublasLtMatmulHeuristicResult_t res[16];
            int n = lt_heuristics(&g, hT[hi] > T_big ? T_big : hT[hi], res, 16);
            for (int i = 0; i < n && n_cand < 64; i++) {
                char b[256];
                algo_describe(&res[i].algo, b, sizeof b);
                if (i == 0)
                    printf("heuristic first at T %d: %s\n", hT[hi], b);
                if (algo_splitk(&res[i].algo) > 1)
                    continue;
                int dup = 0;
                for (int j = 0; j < n_cand; j++)
                    dup |= !memcmp(&cand[j], &res[i].algo, sizeof cand[j]);
                if (!dup)
                    cand[n_cand++] = res[i].algo;
            }
        }
        printf("%d split-K-1 candidates\n", n_cand);
        /* default heuristic timing per T */
        printf("%-60s", "heuristic's first (any split)");
        for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++) {
            int T = Ts[ti];
            if (T > T_big)
                continue;
            cublasLtMatmulHeuristicResult_t res[1];
            run_arg a = {&g, NULL, out_small, x, w, T};
            if (lt_heuristics(&g, T, res, 1) < 1) {
                printf(" T%d:none", T);
                continue;
            }
            a.best = res[0].algo;
            printf(" T%d:%.1f", T, time_it(e0, e1, reps, run_fn, &a));
        }
        printf("\n");
        for (int ci = 0; ci < n_cand; ci++) {
            char b[256];
            algo_describe(&cand[ci], b, sizeof b);
            /* invariance: T_big rows, then subsets; chain match on 64 rows */
            if (!lt_run(&g, &cand[ci], out_big, x, w, T_big)) {
                printf("cand %d (%s): fails at T %d\n", ci, b, T_big);
                continue;
            }
            CK(cudaDeviceSynchronize());
            size_t inv_bad = 0;
            int unsupported = 0;
            const int subT[] = {1, 3, 8, 17, 64, 100, 256, 1000};
            const int offs[] = {0, 5, 64, 333};
            for (int a = 0; a < 8; a++)
                for (int b2 = 0; b2 < 4; b2++) {
                    int T = subT[a], off = offs[b2];
                    if (off + T > T_big)
                        continue;
                    if (!lt_run(&g, &cand[ci], out_small, x + (size_t)off * n_in, w, T)) {
                        unsupported++;
                        continue;
                    }
                    CK(cudaDeviceSynchronize());
                    size_t n = (size_t)T * n_out;
                    char *hb = (char *)malloc(n * ob), *hs = (char *)malloc(n * ob);
                    CK(cudaMemcpy(hb, (char *)out_big + (size_t)off * n_out * ob, n * ob, cudaMemcpyDeviceToHost));
                    CK(cudaMemcpy(hs, out_small, n * ob, cudaMemcpyDeviceToHost));
                    inv_bad += count_diff(hb, hs, ob, n, NULL, NULL, NULL);
                    free(hb);
                    free(hs);
                }
            /* chain: fp32 out compares acc bits; fp16 out compares rounded bits */
            size_t chain_bad;
            double mr = 0;
            if (shapes[si].f32) {
                CK(cudaMemcpy(h_o, out_big, nref * 4, cudaMemcpyDeviceToHost));
                chain_bad = count_diff(h_o, h_ref, 4, nref, &mr, h_o, h_ref);
            } else {
                __half *hh;
                CK(cudaMalloc(&hh, nref * 2));
                to_half_kernel<<<256, 256>>>(hh, ref, nref);
                CK(cudaDeviceSynchronize());
                char *a1 = (char *)malloc(nref * 2), *a2 = (char *)malloc(nref * 2);
                CK(cudaMemcpy(a1, hh, nref * 2, cudaMemcpyDeviceToHost));
                CK(cudaMemcpy(a2, out_big, nref * 2, cudaMemcpyDeviceToHost));
                chain_bad = count_diff(a1, a2, 2, nref, NULL, NULL, NULL);
                free(a1);
                free(a2);
                CK(cudaFree(hh));
            }
            printf("cand %d (%s): subsets differ %zu (unsupported %d); vs mma chain %zu of %zu differ\n  times us:",
                   ci, b, inv_bad, unsupported, chain_bad, nref);
            for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++) {
                int T = Ts[ti];
                if (T > T_big)
                    continue;
                run_arg a = {&g, &cand[ci], out_small, x, w, T};
                if (!run_fn(&a)) {
                    printf(" T%d:n/a", T);
                    continue;
                }
                printf(" T%d:%.1f", T, time_it(e0, e1, reps, run_fn, &a));
            }
            printf("\n");
            fflush(stdout);
        }
        cublasLtMatmulDescDestroy(g.desc);
        free(h_ref);
        free(h_o);
        cudaFree(x);
        cudaFree(w);
        cudaFree(ref);
        cudaFree(refw);
        cudaFree(outf);
        cudaFree(out_big);
        cudaFree(out_small);
    }
    return 0;
}

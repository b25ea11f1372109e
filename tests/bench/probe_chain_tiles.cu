// Probe (issue #22, session 16): how the chain kernel's copies are
// organised, against kernels/gemm_chain.cu's tiles, at T = 1 on the 7B
// shapes. Each variant computes the same chain of mma.sync k16 steps (bits
// compared with the real kernel's); only who issues the cp.async copies
// and the ring's shape differ: "pwN" = N warps that only load beside the
// mma warp (pw0: the mma warp loads too), "COLSxSTAGES" the ring. For
// gate/up also both matrices in one launch with the silu epilogue (PAIR),
// against vb_gemm_chain_silu's tiles and two plain launches. First, the
// latency of a dependent mma.sync chain from registers (cycles a step).
// Each timed launch reads another copy of the weights (>= 600 MB in all).
//
// Standalone (not in meson; on the GPU machine):
//   nvcc -arch=sm_90 -O3 -std=c++17 tests/bench/probe_chain_tiles.cu
//     kernels/gemm_chain.cu kernels/pdl.cu -Ikernels -Isrc -o probe
#include <cuda_fp16.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>
#include <algorithm>

#include "kernels.h"
#include "mma_sm80.cuh"
#include "pdl.cuh"

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { printf("%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e_)); exit(1); } } while (0)

struct vp {
    const __half *x, *w, *up;
    __half *out;
    int T, n_in, n_out;
};

__device__ __forceinline__ void bar_named(int id, int n)
{
    asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(n) : "memory");
}

template <int S>
__device__ __forceinline__ void wait_stages()
{
    asm volatile("cp.async.wait_group %0;\n" ::"n"(S - 2));
}

// COLS columns a stage, S stages, PW producer warps (0: the mma warp loads too)
template <int COLS, int S, int PW, bool PAIR = false>
__global__ void __launch_bounds__(32 * (1 + PW)) var_kernel(vp p)
{
    constexpr int LD = COLS + 8, ROWS = PAIR ? 40 : 24, STAGE = ROWS * LD, XR = ROWS - 8;
    constexpr int NP = 32 * (PW ? PW : 1);
    constexpr int CPR = COLS / 8; /* 16-byte chunks a row */
    constexpr int WPER = 16 * CPR / NP;
    constexpr int XPER = (8 * CPR + NP - 1) / NP;
    extern __shared__ uint4 smem[];
    __half *ring = (__half *)smem;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int o0 = blockIdx.x * 16;
    const int n_stages = (p.n_in + COLS - 1) / COLS;
    const bool producer = PW == 0 || warp > 0;
    const bool consumer = warp == 0;
    const int pt = PW ? threadIdx.x - 32 : lane;

    const __half *wsrc[WPER], *usrc[WPER];
    int wdst[WPER], wk[WPER];
    bool wok[WPER];
    const __half *xsrc[XPER];
    int xdst[XPER], xk[XPER];
    bool xok[XPER];
    if (producer) {
#pragma unroll
        for (int m = 0; m < WPER; m++) {
            const int id = pt + NP * m, r = id / CPR, kc = (id % CPR) * 8;
            wok[m] = o0 + r < p.n_out;
            wsrc[m] = p.w + (wok[m] ? (size_t)(o0 + r) * p.n_in + kc : 0);
            usrc[m] = PAIR ? p.up + (wok[m] ? (size_t)(o0 + r) * p.n_in + kc : 0) : nullptr;
            wdst[m] = r * LD + kc;
            wk[m] = kc;
        }
#pragma unroll
        for (int m = 0; m < XPER; m++) {
            const int id = pt + NP * m, t = id / CPR, kc = (id % CPR) * 8;
            xok[m] = id < 8 * CPR && t < p.T;
            xsrc[m] = p.x + (xok[m] ? (size_t)t * p.n_in + kc : 0);
            xdst[m] = (XR + t) * LD + kc;
            xk[m] = kc;
        }
    }
    auto load_w = [&](int s) {
        __half *dst = ring + (s % S) * STAGE;
        const int k0 = s * COLS;
#pragma unroll
        for (int m = 0; m < WPER; m++)
            if (wok[m] && k0 + wk[m] < p.n_in) {
                mma_cp_async16(dst + wdst[m], wsrc[m] + k0, 16);
                if (PAIR)
                    mma_cp_async16(dst + wdst[m] + 16 * LD, usrc[m] + k0, 16);
            }
    };
    auto load_x = [&](int s) {
        __half *dst = ring + (s % S) * STAGE;
        const int k0 = s * COLS;
#pragma unroll
        for (int m = 0; m < XPER; m++)
            if (xok[m] && k0 + xk[m] < p.n_in)
                mma_cp_async16(dst + xdst[m], xsrc[m] + k0, 16);
    };
    auto commit = [] { asm volatile("cp.async.commit_group;\n" ::); };

    if (producer) {
#pragma unroll
        for (int s = 0; s < S - 1; s++) {
            if (s < n_stages)
                load_w(s);
            commit();
        }
    }
    pdl_wait();
    pdl_launch_dependents();
    if (producer) {
#pragma unroll
        for (int s = 0; s < S - 1; s++) {
            if (s < n_stages)
                load_x(s);
            commit();
        }
    }
    const int g = lane >> 2, c = lane & 3;
    const __half *a_row = ring + (lane & 15) * LD + (lane >> 4) * 8;
    const __half *b_row = ring + (XR + g) * LD + 2 * c;
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f}, accu[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int s = 0; s < n_stages; s++) {
        if (producer)
            wait_stages<S>();
        if (PW)
            bar_named(1, 32 * (1 + PW));
        else
            __syncwarp();
        if (producer) {
            if (s + S - 1 < n_stages) {
                load_w(s + S - 1);
                load_x(s + S - 1);
            }
            commit();
        }
        if (consumer) {
            const int slot = (s % S) * STAGE;
            const int k0 = s * COLS, steps = min(COLS, p.n_in - k0) >> 4;
#pragma unroll
            for (int j = 0; j < COLS / 16; j++) {
                if (j < steps) {
                    unsigned a[4];
                    mma_ldmatrix_x4(a, a_row + slot + j * 16);
                    const unsigned b0 = *(const unsigned *)(b_row + slot + j * 16);
                    const unsigned b1 = *(const unsigned *)(b_row + slot + j * 16 + 8);
                    mma_m16n8k16(acc, a, b0, b1);
                    if (PAIR) {
                        mma_ldmatrix_x4(a, a_row + 16 * LD + slot + j * 16);
                        mma_m16n8k16(accu, a, b0, b1);
                    }
                }
            }
        }
    }
    if (consumer) {
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int o = o0 + g + (i >> 1) * 8, t = 2 * c + (i & 1);
            if (o < p.n_out && t < p.T) {
                __half h = __float2half_rn(acc[i]);
                if (PAIR) {
                    float gg = __half2float(h), u = __half2float(__float2half_rn(accu[i]));
                    h = __float2half(gg / (1.0f + __expf(-gg)) * u);
                }
                p.out[(size_t)t * p.n_out + o] = h;
            }
        }
    }
}

// the pure chain: n dependent mma steps from registers (ns a step)
__global__ void lat_kernel(int n, float *out, long long *cyc)
{
    unsigned a[4] = {threadIdx.x, threadIdx.x * 3u, 7u, 9u}, b0 = 1u, b1 = 2u;
    float acc[4] = {0, 0, 0, 0};
    long long t0 = clock64();
    for (int i = 0; i < n; i++)
        mma_m16n8k16(acc, a, b0, b1);
    long long t1 = clock64();
    out[threadIdx.x] = acc[0] + acc[1] + acc[2] + acc[3];
    if (threadIdx.x == 0)
        *cyc = t1 - t0;
}

typedef void (*launch_fn)(const vp &p, cudaStream_t st);

template <int COLS, int S, int PW, bool PAIR = false>
static void launch_var(const vp &p, cudaStream_t st)
{
    const size_t smem = (size_t)S * (PAIR ? 40 : 24) * (COLS + 8) * 2;
    static bool set;
    if (!set) {
        CK(cudaFuncSetAttribute(var_kernel<COLS, S, PW, PAIR>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        set = true;
    }
    CK(vb_launch_pdl(var_kernel<COLS, S, PW, PAIR>, dim3((p.n_out + 15) / 16), dim3(32 * (1 + PW)), smem, st, p));
}
static void launch_two_v0(const vp &p, cudaStream_t st) /* the old way: two launches (no silu) */
{
    CK(vb_gemm_chain(p.out, 0, p.x, p.w, p.T, p.n_in, p.n_out, st));
    CK(vb_gemm_chain(p.out, 0, p.x, p.up, p.T, p.n_in, p.n_out, st));
}
static void launch_pair_narrow(const vp &p, cudaStream_t st)
{
    CK(vb_gemm_chain_silu(p.out, p.x, p.w, p.up, p.T, p.n_in, p.n_out, VB_CHAIN_TILE_NARROW, st));
}
static void launch_pair_wide(const vp &p, cudaStream_t st)
{
    CK(vb_gemm_chain_silu(p.out, p.x, p.w, p.up, p.T, p.n_in, p.n_out, VB_CHAIN_TILE_WIDE, st));
}
static void launch_narrow(const vp &p, cudaStream_t st)
{
    vb_chain_seg sg = {p.w, nullptr, p.out, p.n_out};
    CK(vb_gemm_chain_multi(&sg, 1, 0, p.x, p.T, p.n_in, VB_CHAIN_TILE_NARROW, st));
}
static void launch_wide(const vp &p, cudaStream_t st)
{
    vb_chain_seg sg = {p.w, nullptr, p.out, p.n_out};
    CK(vb_gemm_chain_multi(&sg, 1, 0, p.x, p.T, p.n_in, VB_CHAIN_TILE_WIDE, st));
}

static void launch_v0(const vp &p, cudaStream_t st)
{
    CK(vb_gemm_chain(p.out, 0, p.x, p.w, p.T, p.n_in, p.n_out, st));
}

struct variant {
    const char *name;
    launch_fn fn;
};

int main()
{
    vb_pdl_enable(1);
    cudaStream_t st;
    CK(cudaStreamCreate(&st));
    {
        float *o;
        long long *cyc, h;
        CK(cudaMalloc(&o, 128));
        CK(cudaMalloc(&cyc, 8));
        for (int n : {224, 1184}) {
            lat_kernel<<<1, 32>>>(n, o, cyc);
            CK(cudaMemcpy(&h, cyc, 8, cudaMemcpyDeviceToHost));
            printf("pure mma chain: %d steps %lld cycles = %.1f cycles a step\n", n, h, (double)h / n);
        }
        int clk;
        CK(cudaDeviceGetAttribute(&clk, cudaDevAttrClockRate, 0));
        printf("clock %d kHz\n", clk);
    }
    variant vs[] = {
        {"v0 auto", launch_v0},
        {"narrow", launch_narrow},
        {"wide", launch_wide},
        {"128x6 pw0", launch_var<128, 6, 0>},
        {"128x8 pw0", launch_var<128, 8, 0>},
        {"256x4 pw2", launch_var<256, 4, 2>},
    };
    variant pv[] = {
        {"pair narrow", launch_pair_narrow},
        {"pair wide", launch_pair_wide},
        {"pair 128x6 pw0", launch_var<128, 6, 0, true>},
        {"pair 128x4 pw0", launch_var<128, 4, 0, true>},
        {"pair 128x6 pw1", launch_var<128, 6, 1, true>},
        {"pair 64x8 pw0", launch_var<64, 8, 0, true>},
        {"two launches", launch_two_v0},
    };
    const int nv = sizeof vs / sizeof vs[0];
    struct shp { const char *n; int n_out, n_in; } shapes[] = {
        {"q/o", 3584, 3584}, {"k/v", 512, 3584}, {"gate/up", 18944, 3584}, {"down", 3584, 18944}, {"odd", 1000, 3600}};
    for (auto &sh : shapes) {
        const size_t wbytes = (size_t)sh.n_out * sh.n_in * 2;
        int copies = (int)std::max<size_t>(3, (600u << 20) / wbytes);
        __half *w;
        CK(cudaMalloc(&w, wbytes * copies));
        // random fp16 in [-1, 1)
        {
            std::vector<__half> h(wbytes / 2);
            unsigned s = 1234 + sh.n_out;
            for (auto &v : h) { s = s * 1664525u + 1013904223u; v = __float2half(((s >> 8) & 0xFFFF) / 32768.0f - 1.0f); }
            for (int c = 0; c < copies; c++)
                CK(cudaMemcpy((char *)w + c * wbytes, h.data(), wbytes, cudaMemcpyHostToDevice));
        }
        __half *x, *out, *ref;
        CK(cudaMalloc(&x, (size_t)8 * sh.n_in * 2));
        CK(cudaMalloc(&out, (size_t)8 * sh.n_out * 2));
        CK(cudaMalloc(&ref, (size_t)8 * sh.n_out * 2));
        {
            std::vector<__half> h((size_t)8 * sh.n_in);
            unsigned s = 99;
            for (auto &v : h) { s = s * 1664525u + 1013904223u; v = __float2half(((s >> 8) & 0xFFFF) / 32768.0f - 1.0f); }
            CK(cudaMemcpy(x, h.data(), h.size() * 2, cudaMemcpyHostToDevice));
        }
        auto run_set = [&](variant *list, int n, bool pair) {
            const int T = 1;
            vp p = {x, w, w + (size_t)(1 % copies) * (wbytes / 2), ref, T, sh.n_in, sh.n_out};
            list[0].fn(p, st);
            CK(cudaStreamSynchronize(st));
            std::vector<unsigned short> hr((size_t)T * sh.n_out), ho(hr.size());
            CK(cudaMemcpy(hr.data(), ref, hr.size() * 2, cudaMemcpyDeviceToHost));
            for (int v = 0; v < n; v++) {
                vp q = p;
                q.out = out;
                CK(cudaMemset(out, 0xff, (size_t)8 * sh.n_out * 2));
                list[v].fn(q, st);
                CK(cudaStreamSynchronize(st));
                CK(cudaMemcpy(ho.data(), out, ho.size() * 2, cudaMemcpyDeviceToHost));
                const bool same = memcmp(ho.data(), hr.data(), hr.size() * 2) == 0;
                cudaEvent_t e0, e1;
                CK(cudaEventCreate(&e0));
                CK(cudaEventCreate(&e1));
                const int iters = 200;
                std::vector<float> ts;
                for (int rep = 0; rep < 7; rep++) {
                    CK(cudaEventRecord(e0, st));
                    for (int i = 0; i < iters; i++) {
                        q.w = w + (size_t)(i % copies) * (wbytes / 2);
                        q.up = w + (size_t)((i + 1) % copies) * (wbytes / 2);
                        list[v].fn(q, st);
                    }
                    CK(cudaEventRecord(e1, st));
                    CK(cudaEventSynchronize(e1));
                    float ms;
                    CK(cudaEventElapsedTime(&ms, e0, e1));
                    ts.push_back(ms * 1000 / iters);
                }
                std::sort(ts.begin(), ts.end());
                printf("%-8s T=%d %-15s %7.2f us  %6.0f GB/s  bits %s\n", sh.n, T, list[v].name, ts[3],
                       (pair ? 2 : 1) * wbytes / (ts[3] * 1e3), same ? "same" : "DIFFER");
                CK(cudaEventDestroy(e0));
                CK(cudaEventDestroy(e1));
            }
        };
        run_set(vs, nv, false);
        if (sh.n_out == 18944)
            run_set(pv, (int)(sizeof pv / sizeof pv[0]), true);
        CK(cudaFree(w));
        CK(cudaFree(x));
        CK(cudaFree(out));
        CK(cudaFree(ref));
    }
    return 0;
}

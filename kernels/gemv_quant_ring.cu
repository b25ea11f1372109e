// The quantized decode GEMV's ring kernel: gemv_quant.cu's mma kernel with
// the weights through a ring in shared memory (cp.async). The mma kernel
// holds the steps it loads ahead in registers: U steps loaded, then U
// computed, so a load is in flight only until it lands and then waits in
// registers while the warp computes; at ~14 cycles between a
// warp's instructions (session 32's ncu) a step of ~115 instructions takes
// ~0.8 us, longer than the load. The ring kernel copies each lane's 16-byte
// chunks (and the step's scales and zeros) with cp.async into a ring of D
// stages in its warp's part of shared memory, D - 1 steps ahead of the step
// it computes: the copies stay in flight without holding registers, and a
// warp has D - 1 KB of weights on the way at all times, across its tiles
// (the copies run ahead into the next tile as the mma kernel's loads do).
// The arithmetic is qmma_step's in the same order: the mma kernel's bits at
// the same KS. Layouts: one group a step or more (GPS 1), plain or tiled
// scales, plain or paired rows; KS 8 and 12. Behind vb_gemv_quant_ring,
// off by default: on an H200 slower than the mma kernel for every 4-bit
// 7B matrix, faster for the 8-bit gate/up and q/k/v at 3 stages
// (RESULTS.md, session 36; vb_gemv_quant_ring_scope).
//
// A stage is QRING_STAGE uint4s: the warp's 2 x 32 chunks (rows g, then
// rows g + 8, in lane order: 16-byte reads without bank conflicts), then
// the step's scales and zeros: tiled, each lane's 8-byte sz_tiles entry;
// plain, each quad's 16 bytes, lane c of quad g copying the 4-byte word
// that holds row g's scale (c = 0), row g + 8's (1), row g's zero (2), row
// g + 8's (3) (cp.async copies 4 bytes at least; the halves are picked
// when read).
#include <cuda_fp16.h>

#include "kernels.h"
#include "pdl.cuh"
#include "qmma_common.cuh"

#define QRING_STAGE 80
#define QRING_MAX 8 /* stages a warp at most (vb_gemv_quant_ring) */

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
/* the next step a warp's copies fetch: its tile, step, the tile's steps
 * (0 past the last tile) and rows, and the stage it goes to */
struct qring_cursor {
    int tile, s, steps, stage;
    qmma_rows rows;
};

__device__ __forceinline__ void qring_copy(void *dst, const void *src, int bytes)
{
    const unsigned d = mma_smem_addr(dst);
    if (bytes == 16) /* past L1, as the mma kernel's ldg_stream */
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(d), "l"(src) : "memory");
    else if (bytes == 8)
        asm volatile("cp.async.ca.shared.global [%0], [%1], 8;\n" ::"r"(d), "l"(src) : "memory");
    else
        asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(d), "l"(src) : "memory");
}

// Until at most n (0 .. QRING_MAX - 2) of this thread's latest groups of
// copies are pending (the instruction takes a constant).
__device__ __forceinline__ void qring_wait(int n)
{
    switch (n) {
    case 0: asm volatile("cp.async.wait_group 0;\n" ::: "memory"); break;
    case 1: asm volatile("cp.async.wait_group 1;\n" ::: "memory"); break;
    case 2: asm volatile("cp.async.wait_group 2;\n" ::: "memory"); break;
    case 3: asm volatile("cp.async.wait_group 3;\n" ::: "memory"); break;
    case 4: asm volatile("cp.async.wait_group 4;\n" ::: "memory"); break;
    case 5: asm volatile("cp.async.wait_group 5;\n" ::: "memory"); break;
    default: asm volatile("cp.async.wait_group 6;\n" ::: "memory"); break;
    }
}

// Lane's copies of step k.s of tile k.tile into stage k.stage, as one
// group (an empty one past the warp's last step, so that the i-th group is
// always the warp's i-th step); then the cursor to the warp's next step.
template <bool TILED, int PAIR>
__device__ __forceinline__ void qring_fetch(const qgemv_params &p, qring_cursor &k, uint4 *ring,
                                            int D, int KS, int part, int stride, int n_tiles,
                                            int steps, int lane)
{
    if (k.s < k.steps) {
        uint4 *st = ring + k.stage * QRING_STAGE;
        const int s = k.s;
        qring_copy(st + lane, k.rows.qa + p.step_chunks * s, 16);
        qring_copy(st + 32 + lane, k.rows.qb + p.step_chunks * s, 16);
        if (TILED) {
            qring_copy((uint2 *)(st + 64) + lane,
                       p.sz_tiles + k.rows.ga + (s >> p.group_shift) * 8, 8);
        } else {
            const int grp = s >> p.group_shift;
            const int c = lane & 3, idx = (c & 1 ? k.rows.gb : k.rows.ga) + grp;
            qring_copy((unsigned *)(st + 64) + lane,
                       (const unsigned *)(c < 2 ? p.scales : p.zeros) + (idx >> 1), 4);
        }
    }
    asm volatile("cp.async.commit_group;\n" ::: "memory");
    k.stage = k.stage + 1 == D ? 0 : k.stage + 1;
    k.s += KS;
    if (k.s >= k.steps) { /* the warp's next tile */
        k.tile += stride;
        k.s = part;
        k.steps = k.tile < n_tiles ? steps : 0;
        k.rows = qmma_rows_at<TILED, PAIR>(p, k.tile, lane >> 2, lane & 3);
    }
}
#endif

// The ring kernel (see above): the mma kernel's tiles, warps and epilogue,
// the weights through each warp's ring of p.ring stages at shared memory
// word p.ring_offset (past x where x is there). 3 blocks of 8 warps an SM
// by registers (2 of 12), as the mma kernel at U = 2; shared memory may
// allow fewer (the launcher asks).
template <int BITS, int KS, bool TILED, int PAIR>
__global__ void __launch_bounds__(32 * QMMA_BLOCK_WARPS(KS), KS > QMMA_WARPS ? 2 : 3)
    gemv_quant_ring_kernel(qgemv_params p)
{
    static_assert(PAIR == PAIR_NONE || !TILED, "paired rows: plain scales");
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    constexpr int SC = 512 / BITS;
    constexpr int TPB = QMMA_BLOCK_WARPS(KS) / KS;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, part = warp % KS;
    const int g = lane >> 2, c = lane & 3;
    const int n_tiles = (p.n_out + 15) / 16, stride = (int)gridDim.x * TPB;
    const int steps = p.n_in / SC, D = p.ring;
    const int xrow = g < p.rows ? g : 0;
    extern __shared__ uint4 s_x[];
    const uint4 *xr = (p.x_shared ? s_x : (const uint4 *)p.x) + (size_t)xrow * (p.n_in >> 3) +
                      c * (SC / 32);
    uint4 *ring = s_x + p.ring_offset + warp * D * QRING_STAGE;
    int tile = (int)blockIdx.x * TPB + warp / KS;
    qmma_rows cur = qmma_rows_at<TILED, PAIR>(p, tile, g, c);
    int my_steps = tile < n_tiles ? steps : 0;
    qring_cursor k = {tile, part, my_steps, 0, cur};
    for (int i = 0; i < D - 1; i++) /* weights only: before the wait */
        qring_fetch<TILED, PAIR>(p, k, ring, D, KS, part, stride, n_tiles, steps, lane);
    qmma_wait_copy_x(p, s_x);
    int stage = 0;
    for (int base = (int)blockIdx.x * TPB; base < n_tiles; base += stride) { // block-uniform
        const int next = tile + stride;
        const int next_steps = next < n_tiles ? steps : 0;
        float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        for (int s = part; s < my_steps; s += KS) {
            qring_wait(D - 2); /* this step's group has landed */
            const uint4 *st = ring + stage * QRING_STAGE;
            const uint4 wa = st[lane], wb = st[32 + lane];
            __half2 scale[1], zero;
            if (TILED) {
                const uint2 e = ((const uint2 *)(st + 64))[lane];
                scale[0] = u32_as_half2(e.x);
                zero = u32_as_half2(e.y);
            } else { /* each value the half its index's parity says */
                const uint4 e = st[64 + g];
                const int grp = s >> p.group_shift;
                const unsigned sel =
                    0x5410u + ((cur.ga + grp) & 1) * 0x0022u + ((cur.gb + grp) & 1) * 0x2200u;
                scale[0] = u32_as_half2(__byte_perm(e.x, e.y, sel));
                zero = u32_as_half2(__byte_perm(e.z, e.w, sel));
            }
            /* the next copies go to the stage the last step read */
            qring_fetch<TILED, PAIR>(p, k, ring, D, KS, part, stride, n_tiles, steps, lane);
            stage = stage + 1 == D ? 0 : stage + 1;
            qmma_step<BITS, 1>(acc, wa, wb, scale, zero, xr + (size_t)s * (SC / 8), c);
        }
        qmma_tile_finish<KS, PAIR>(p, acc, warp, lane, part, tile, my_steps);
        tile = next;
        cur = qmma_rows_at<TILED, PAIR>(p, next, g, c);
        my_steps = next_steps;
    }
#else
    __trap(); /* never launched below sm_80 (qmma_available) */
#endif
}

#define QRING_INSTANTIATE(KS)                                                                 \
    template __global__ void gemv_quant_ring_kernel<4, KS, false, PAIR_NONE>(qgemv_params);   \
    template __global__ void gemv_quant_ring_kernel<8, KS, false, PAIR_NONE>(qgemv_params);   \
    template __global__ void gemv_quant_ring_kernel<4, KS, true, PAIR_NONE>(qgemv_params);    \
    template __global__ void gemv_quant_ring_kernel<8, KS, true, PAIR_NONE>(qgemv_params);    \
    template __global__ void gemv_quant_ring_kernel<4, KS, false, PAIR_SILU>(qgemv_params);   \
    template __global__ void gemv_quant_ring_kernel<8, KS, false, PAIR_SILU>(qgemv_params);   \
    template __global__ void gemv_quant_ring_kernel<4, KS, false, PAIR_ROPE>(qgemv_params);   \
    template __global__ void gemv_quant_ring_kernel<8, KS, false, PAIR_ROPE>(qgemv_params);
QRING_INSTANTIATE(8)
QRING_INSTANTIATE(12)

#ifndef __CUDACC_RTC__
// The ring kernel's stages a warp (vb_gemv_quant_ring; 0: the mma kernel).
// Process-wide, as the switches above: the backend sets it from
// VB_QGEMV_RING.
static int ring_stages = 0;
static int ring_pairs8; /* vb_gemv_quant_ring_scope */
static unsigned long ring_launches; /* vb_gemv_quant_ring_launches */
extern "C" void vb_gemv_quant_ring(int stages)
{
    ring_stages = stages >= 2 && stages <= QRING_MAX ? stages : 0;
}

extern "C" void vb_gemv_quant_ring_scope(int pairs8_only)
{
    ring_pairs8 = pairs8_only != 0;
}

extern "C" unsigned long vb_gemv_quant_ring_launches(void)
{
    return ring_launches;
}

template <int KS>
static void (*ring_kernel_ks(int bits, bool tiled, int pair))(qgemv_params)
{
    if (pair == PAIR_SILU)
        return bits == 4 ? gemv_quant_ring_kernel<4, KS, false, PAIR_SILU>
                         : gemv_quant_ring_kernel<8, KS, false, PAIR_SILU>;
    if (pair == PAIR_ROPE)
        return bits == 4 ? gemv_quant_ring_kernel<4, KS, false, PAIR_ROPE>
                         : gemv_quant_ring_kernel<8, KS, false, PAIR_ROPE>;
    if (tiled)
        return bits == 4 ? gemv_quant_ring_kernel<4, KS, true, PAIR_NONE>
                         : gemv_quant_ring_kernel<8, KS, true, PAIR_NONE>;
    return bits == 4 ? gemv_quant_ring_kernel<4, KS, false, PAIR_NONE>
                     : gemv_quant_ring_kernel<8, KS, false, PAIR_NONE>;
}

// The ring kernel for p at KS 8 or 12 (qmma_common.cuh), where it takes
// the layout (gps 0: tiled scales, 1: plain ones read as 4-byte words,
// which needs them aligned and an even count; a power of two of steps a
// group, its index a shift) and its shared memory fits a block; else
// cudaErrorNotSupported, and the caller takes the mma kernel. A grid of the
// blocks resident (by registers and shared memory), as launch_mma's.
cudaError_t qgemv_ring_launch(const qgemv_params &p, int bits, int gps, int pair, int ks,
                              long blocks, int n_sm, int smem_optin, int force_path,
                              cudaStream_t stream)
{
    qgemv_params q = p;
    if (ring_stages < 2 || (ring_pairs8 && (pair == PAIR_NONE || bits != 8)) ||
        (ks != 8 && ks != 12) || (gps != 0 && gps != 1) ||
        q.group_shift < 0 ||
        (gps == 1 && (((uintptr_t)q.scales | (uintptr_t)q.zeros) % 4 ||
                      (long)q.n_out * q.n_groups % 2)))
        return cudaErrorNotSupported;
    const int warps = QMMA_BLOCK_WARPS(ks);
    q.ring = ring_stages;
    q.ring_offset = q.x_shared ? q.rows * (q.n_in >> 3) : 0;
    const size_t smem = ((size_t)q.ring_offset + (size_t)warps * ring_stages * QRING_STAGE) * 16;
    void (*k)(qgemv_params) = ks == 12 ? ring_kernel_ks<12>(bits, gps == 0, pair)
                                       : ring_kernel_ks<8>(bits, gps == 0, pair);
    /* once a kernel and size (a process, one GPU): its own shared memory
     * (s_part) and the dynamic part within the device's most a block, the
     * opt-in to that most, and the blocks an SM */
    static struct {
        void (*k)(qgemv_params);
        size_t smem;
        int resident; /* -1: does not fit */
    } seen[64];
    int resident = 0, i = 0;
    for (; i < 64 && seen[i].k && !resident; i++)
        if (seen[i].k == k && seen[i].smem == smem)
            resident = seen[i].resident;
    if (!resident) {
        cudaFuncAttributes attr;
        cudaError_t e = cudaFuncGetAttributes(&attr, k);
        if (e != cudaSuccess)
            return e;
        const long room = (long)smem_optin - (long)attr.sharedSizeBytes;
        if ((long)smem > room) {
            resident = -1;
        } else {
            e = cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)room);
            if (e == cudaSuccess)
                e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident, k, 32 * warps, smem);
            if (e != cudaSuccess)
                return e;
            if (resident < 1)
                resident = -1;
        }
        if (i < 64)
            seen[i] = {k, smem, resident};
    }
    if (resident < 0)
        return cudaErrorNotSupported;
    long grid = blocks;
    if (force_path != 3 && resident > 0 && grid > (long)resident * n_sm)
        grid = (long)resident * n_sm;
    if (force_path == 4 && grid > 2)
        grid = 2;
    ring_launches++;
    return vb_launch_pdl(k, dim3((unsigned)grid), dim3(32 * warps), smem, stream, q);
}
#endif

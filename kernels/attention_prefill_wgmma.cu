// The fp16 cache's prefill attention on Hopper's warpgroup MMA (wgmma,
// sm_90a), head_dim 128: the default there (issue #19's 64K case needs
// the long chunks' attention at ~330 TFLOP/s; the mma.sync kernel,
// attention_prefill_mma32.cu, tops out near 285 on an H200).
//
// The mma32 kernel's tiles (128 packed query rows, 128 / G tokens x the
// group's G heads), masks, softmax (mma_softmax.cuh) and P V chains. With
// 64-key steps (KT 64) a row's bits are that kernel's (a wgmma k16 step
// sums its 16 products as mma.sync's does), but on an H200 (session 27)
// 264 (no swizzle) / 280 (swizzled) TFLOP/s on the 64K step against
// mma32's 284: m64n64 products are too small. With 128-key steps (KT
// 128, swizzled; VB_PREFILL_WGMMA=3, the default) 469 TFLOP/s there
// (d's step 449, b's 314, c's 231 against 257, 201, 171); its softmax
// takes a running max a 128 keys, so its P rounds differently and its
// bits are its own (as close to fp32 as mma32's: test_kv_int8_kernels).
//
// Layout, FlashAttention-3's: two consumer warpgroups of 64 rows each and
// a producer warpgroup whose first warp (KT 64) or four warps (KT 128)
// gather each step's K and V through the block table into a ring of
// PFW_STAGES stages with cp.async and hand a stage over through mbarriers
// (full: the gathering lanes' copies landed, counted by
// cp.async.mbarrier.arrive.noinc; empty: the 8 consumer warps are done
// with it). The warpgroups never meet at a block barrier, so one's
// softmax can run under the other's products (session 24's version kept
// both in lockstep at a __syncthreads a step: 233 TFLOP/s); they also
// take turns issuing their products (FlashAttention-3's ping-pong: step
// s's P V and step s + 1's scores in one section, then the softmax), so
// one's softmax overlaps the other's tensor-core work. Q stays in
// registers as the A operand of S = Q K^T (m64nKTk16, B = K from shared
// memory); P, rounded to fp16 in registers, is the A operand of O += P V
// (m64n128k16, B = V, transposed read).
//
// Shared memory, KT 64 without swizzle: a 64 x 128 tile (K or V, a row a
// key) is 8 x 16 core matrices of 8 keys x 8 halves, each 128 contiguous bytes;
// key n's 16-byte chunk c sits at (n / 8) * 2048 + c * 128 + (n % 8) * 16.
// For S the tile is B K-major (K = head_dim): LBO, the step between core
// matrices along K, is 128, SBO (along N, the keys) 2048. For P V it is B
// MN-major (N = head_dim): LBO (along K, the keys) 2048, SBO 128. (LBO
// along K and SBO along M/N is the reading of PTX's matrix descriptor
// that session 24's layout probe confirmed for the K-major case.)
#include <cuda_fp16.h>

#include "attention_prefill_mma.cuh"
#include "kernels.h"
#include "mma_sm80.cuh"
#include "mma_softmax.cuh"

#define PFW_HD 128
#define PFW_NF (PFW_HD / 16)
#define PFW_CONSUMERS 256 /* two warpgroups */
#define PFW_THREADS (PFW_CONSUMERS + 128) /* and a producer warpgroup */
/* registers a thread after setmaxnreg: 256 x 216 + 128 x 72 = 64,512,
 * the 384 x 168 the block launched with (setmaxnreg moves, never adds).
 * At 216 ptxas serializes the 128-key kernel's wgmmas (C7512, an info
 * line of -Xptxas -v; it ran at 469 TFLOP/s so); 232 / 40 lifts that but
 * spills ~170 bytes (the gather's offsets): a leaner producer first. */
#define PFW_CONSUMER_REGS 216
#define PFW_PRODUCER_REGS 72
/* K or V of a step of KT keys (16 or 32 KB); a stage holds both. The
 * ring: 4 stages of 64-key steps, 3 of 128-key ones (192 KB). */
#define PFW_TILE_BYTES(KT) ((KT) * PFW_HD * 2)
#define PFW_STAGE_BYTES(KT) (2 * PFW_TILE_BYTES(KT))
#define PFW_STAGES(KT) ((KT) == 64 ? 4 : 3)
/* the producer warps that gather a step: one for 64 keys, the whole
 * producer warpgroup for 128 */
#define PFW_GATHER_WARPS(KT) ((KT) == 64 ? 1 : 4)

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define PFW_ON 1

__device__ __forceinline__ unsigned pfw_smem(const void *p)
{
    return (unsigned)__cvta_generic_to_shared(p);
}

// A shared-memory matrix descriptor: start address, LBO and SBO in
// 16-byte units (bits 0-13, 16-29, 32-45), base offset 0 (swizzled tiles
// start 1024-byte aligned), layout (bits 62-63) 0 without swizzle, 1 for
// the 128-byte swizzle.
template <bool SW128>
__device__ __forceinline__ unsigned long long pfw_desc(const void *p, unsigned lbo, unsigned sbo)
{
    typedef unsigned long long u64;
    return (u64)((pfw_smem(p) & 0x3ffff) >> 4) | (u64)((lbo & 0x3ffff) >> 4) << 16 |
           (u64)((sbo & 0x3ffff) >> 4) << 32 | (u64)(SW128 ? 1 : 0) << 62;
}

// Where key n's 16-byte chunk c (of 16: head_dim 128) of a K or V tile
// lies. Without swizzle, core matrices of 8 keys x 16 bytes: (n / 8) *
// 2048 + c * 128 + (n % 8) * 16. With the 128-byte swizzle (SW128) the
// tile is two halves of head_dim, each 64 keys x 128 bytes (8 KB, atoms
// of 8 keys x 128 bytes), the chunk's place in its row XORed with the
// key's row in the atom, as the hardware reads it: (c / 8) * 8192 + n *
// 128 + ((c % 8) ^ (n % 8)) * 16. Either way the 8 lanes that write one
// chunk index of 8 consecutive keys hit 8 distinct bank groups.
template <bool SW128, int KT>
__device__ __forceinline__ int pfw_at(int n, int c)
{
    return SW128 ? (c >> 3) * (KT * 128) + n * 128 + (((c & 7) ^ (n & 7)) << 4)
                 : (n >> 3) * 2048 + c * 128 + (n & 7) * 16;
}

// The descriptors of the scores' k16 slice kk (head_dim 16 kk ..) of a K
// tile (B K-major: LBO along K, SBO between 8-key groups; swizzled, K
// stays inside a 128-byte row, LBO unused) and of the P V slice kk (keys
// 16 kk ..) of a V tile (B MN-major: without swizzle LBO along K (keys),
// SBO along N (head_dim); swizzled, LBO between the 64-wide head_dim
// halves, SBO between 8-key groups).
template <bool SW128, int KT>
__device__ __forceinline__ unsigned long long pfw_desc_k(const unsigned char *k_tile, int kk)
{
    return SW128 ? pfw_desc<true>(k_tile + (kk >> 2) * (KT * 128) + (kk & 3) * 32, 16, 1024)
                 : pfw_desc<false>(k_tile + kk * 256, 128, 2048);
}

template <bool SW128, int KT>
__device__ __forceinline__ unsigned long long pfw_desc_v(const unsigned char *v_tile, int kk)
{
    return SW128 ? pfw_desc<true>(v_tile + kk * 2048, KT * 128, 1024)
                 : pfw_desc<false>(v_tile + kk * 4096, 2048, 128);
}

__device__ __forceinline__ void pfw_mbar_init(unsigned long long *bar, unsigned count)
{
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(pfw_smem(bar)), "r"(count));
}

// Waits until the barrier's phase of this parity has completed.
__device__ __forceinline__ void pfw_mbar_wait(unsigned long long *bar, unsigned parity)
{
    asm volatile("{\n"
                 ".reg .pred P1;\n"
                 "PFW_WAIT:\n"
                 "mbarrier.try_wait.parity.shared::cta.b64 P1, [%0], %1;\n"
                 "@P1 bra PFW_DONE;\n"
                 "bra PFW_WAIT;\n"
                 "PFW_DONE:\n"
                 "}\n" ::"r"(pfw_smem(bar)),
                 "r"(parity)
                 : "memory");
}

__device__ __forceinline__ void pfw_mbar_arrive(unsigned long long *bar)
{
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(pfw_smem(bar)) : "memory");
}

// The barrier's arrival once every cp.async this thread issued so far has
// landed (not counted up front: the barrier's count includes it).
__device__ __forceinline__ void pfw_mbar_arrive_cp_async(unsigned long long *bar)
{
    asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(pfw_smem(bar))
                 : "memory");
}

__device__ __forceinline__ void pfw_wgmma_fence(void)
{
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}

__device__ __forceinline__ void pfw_wgmma_commit_wait(void)
{
    asm volatile("wgmma.commit_group.sync.aligned;\n"
                 "wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
}

// Pins accumulator registers in place around the asynchronous products
// (the compiler must not move them while a wgmma may still write them).
template <int N>
__device__ __forceinline__ void pfw_fence_regs(float (&d)[N][4])
{
#pragma unroll
    for (int n = 0; n < N; n++)
        asm volatile("" : "+f"(d[n][0]), "+f"(d[n][1]), "+f"(d[n][2]), "+f"(d[n][3])::"memory");
}

// The scores' products of one k16 slice of a 64-key step: d[64 x 64] +=
// a[64 x 16] (registers, mma.sync's A layout per warp) x B, B K-major in
// shared memory (desc). A 128-key step's: the overload below.
__device__ __forceinline__ void pfw_wgmma_scores(float (&d)[8][4], const unsigned (&a)[4],
                                                 unsigned long long desc)
{
    asm volatile(
        "{\n"
        ".reg .pred p;\n"
        "setp.ne.b32 p, %37, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
        "{%32, %33, %34, %35}, %36, p, 1, 1, 0;\n"
        "}\n"
        : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]),
          "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]),
          "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]),
          "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]),
          "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), "+f"(d[6][0]),
          "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]),
          "+f"(d[7][2]), "+f"(d[7][3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "n"(1));
}

// d[64 x 128] += a[64 x 16] x B, B in shared memory (desc): MN-major
// (TRANS_B 1, transposed read: P V) or K-major (0: the scores of a
// 128-key step).
template <int TRANS_B>
__device__ __forceinline__ void pfw_wgmma_n128(float (&d)[16][4], const unsigned (&a)[4],
                                               unsigned long long desc)
{
    asm volatile(
        "{\n"
        ".reg .pred p;\n"
        "setp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
        "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
        "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, "
        "{%64, %65, %66, %67}, %68, p, 1, 1, %70;\n"
        "}\n"
        : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]),
          "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]),
          "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]),
          "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]),
          "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), "+f"(d[6][0]),
          "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]),
          "+f"(d[7][2]), "+f"(d[7][3]), "+f"(d[8][0]), "+f"(d[8][1]), "+f"(d[8][2]),
          "+f"(d[8][3]), "+f"(d[9][0]), "+f"(d[9][1]), "+f"(d[9][2]), "+f"(d[9][3]),
          "+f"(d[10][0]), "+f"(d[10][1]), "+f"(d[10][2]), "+f"(d[10][3]), "+f"(d[11][0]),
          "+f"(d[11][1]), "+f"(d[11][2]), "+f"(d[11][3]), "+f"(d[12][0]), "+f"(d[12][1]),
          "+f"(d[12][2]), "+f"(d[12][3]), "+f"(d[13][0]), "+f"(d[13][1]), "+f"(d[13][2]),
          "+f"(d[13][3]), "+f"(d[14][0]), "+f"(d[14][1]), "+f"(d[14][2]), "+f"(d[14][3]),
          "+f"(d[15][0]), "+f"(d[15][1]), "+f"(d[15][2]), "+f"(d[15][3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "n"(1), "n"(TRANS_B));
}

// The scores' products of one k16 slice of a 128-key step: m64n128k16.
__device__ __forceinline__ void pfw_wgmma_scores(float (&d)[16][4], const unsigned (&a)[4],
                                                 unsigned long long desc)
{
    pfw_wgmma_n128<0>(d, a, desc);
}

// Gather warp gw's copies of step s (KT keys) into its stage: the warp
// takes KT / PFW_GATHER_WARPS keys from gw times that; lane l their rows
// 8 o + (l % 8) and 16-byte chunks 4 i + l / 8 (i = 0..3), so the 8 lanes
// a shared-memory phase writes hit 8 distinct 16-byte bank groups
// (pfw_at), and a key's 4 chunks an instruction are 64 contiguous bytes
// of its row. Keys past last_pos are zero-filled.
template <bool SW128, int KT>
__device__ __forceinline__ void pfw_gather(unsigned char *stage, int s, int last_pos,
                                           const __half *k_cache, const __half *v_cache,
                                           const int *table, int block_size, int bs_shift,
                                           int kv_heads, int kvh, int gw, int lane)
{
    constexpr int ROWS = KT / PFW_GATHER_WARPS(KT) / 8; /* rows a lane */
    const int rl = lane & 7, cq = lane >> 3, j0 = s * KT;
    const int n0 = PFW_GATHER_WARPS(KT) == 1 ? 0 : gw * 8 * ROWS; /* the warp's first key */
    unsigned char *sk = stage, *sv = stage + PFW_TILE_BYTES(KT);
    size_t off[ROWS];
    int bytes[ROWS];
#pragma unroll
    for (int o = 0; o < ROWS; o++) { /* the rows' table entries first: their latencies overlap */
        const int j = j0 + n0 + 8 * o + rl;
        const int bi = bs_shift >= 0 ? j >> bs_shift : j / block_size;
        const int entry = j <= last_pos ? table[bi] : -1;
        off[o] = entry >= 0 ? (((size_t)entry * block_size + (j - bi * block_size)) * kv_heads +
                               kvh) * PFW_HD
                            : 0;
        bytes[o] = entry >= 0 ? 16 : 0;
    }
#pragma unroll
    for (int o = 0; o < ROWS; o++)
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int c = 4 * i + cq;
            const int at = pfw_at<SW128, KT>(n0 + 8 * o + rl, c);
            mma_cp_async16(sk + at, k_cache + off[o] + c * 8, bytes[o]);
            mma_cp_async16(sv + at, v_cache + off[o] + c * 8, bytes[o]);
        }
}
#endif

// Tiles as the mma32 kernel's (vb_attention_prefill_mma_tile_tokens
// tokens); blocks of PFW_THREADS threads, one an SM. A block of 9 warps
// at 184 registers does not launch (warps take registers in groups of
// four: 12 x 6,144 > 65,536), and at the 168 a launch of 288 or 384
// threads allows ptxas serialized every wgmma (C7512). So FlashAttention-
// 3's way: 384 threads launched at 168, then setmaxnreg moves registers
// from the producer warpgroup to the consumers. SW128: K and V tiles in
// the 128-byte swizzled layout (pfw_at), the ring 1024-byte aligned.
template <bool SW128, int KT>
__global__ void __launch_bounds__(PFW_THREADS, 1)
    attention_prefill_wgmma_kernel(__half *out, const __half *q, const __half *k_cache,
                                   const __half *v_cache, const int *positions, const int *tiles,
                                   int n_tiles, const int *block_tables, int max_blocks,
                                   int heads, int kv_heads, int block_size, int bs_shift,
                                   float scale_log2)
{
#ifdef PFW_ON
    extern __shared__ __align__(128) unsigned char smem_dyn[];
    /* the swizzle's atoms start at multiples of 1024 bytes (the launch
     * asks for that much more) */
    unsigned char *smem_raw =
        SW128 ? smem_dyn + ((1024 - (pfw_smem(smem_dyn) & 1023)) & 1023) : smem_dyn;
    constexpr int STAGES = PFW_STAGES(KT), STAGE_BYTES = PFW_STAGE_BYTES(KT);
    constexpr int GATHER_WARPS = PFW_GATHER_WARPS(KT);
    unsigned long long *full = (unsigned long long *)(smem_raw + (size_t)STAGES * STAGE_BYTES);
    unsigned long long *empty = full + STAGES;

    const int G = heads / kv_heads;
    const int tile = n_tiles - 1 - (int)blockIdx.x; /* longest first, as the mma kernels */
    const int kvh = blockIdx.y;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int t0 = tiles[3 * tile], rows = tiles[3 * tile + 1], seq = tiles[3 * tile + 2];
    const int R = rows * G; /* packed rows: token r / G, head r % G */
    const int *table = block_tables + (size_t)seq * max_blocks;
    const int last_pos = positions[t0 + rows - 1];
    const int n_steps = last_pos / KT + 1;

    if (threadIdx.x == 0) {
        for (int st = 0; st < STAGES; st++) {
            pfw_mbar_init(&full[st], 32 * GATHER_WARPS);
            pfw_mbar_init(&empty[st], PFW_CONSUMERS / 32);
        }
    }
    __syncthreads();

    if (warp >= PFW_CONSUMERS / 32) { /* the producer warpgroup: its first warps gather */
        asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(PFW_PRODUCER_REGS));
        const int gw = warp - PFW_CONSUMERS / 32;
        if (gw >= GATHER_WARPS)
            return;
        for (int s = 0; s < n_steps; s++) {
            const int st = s % STAGES;
            if (s >= STAGES) /* the consumers are done with the stage's last use */
                pfw_mbar_wait(&empty[st], ((s / STAGES) - 1) & 1);
            pfw_gather<SW128, KT>(smem_raw + (size_t)st * STAGE_BYTES, s, last_pos, k_cache,
                                  v_cache, table, block_size, bs_shift, kv_heads, kvh, gw, lane);
            pfw_mbar_arrive_cp_async(&full[st]);
        }
        asm volatile("cp.async.wait_all;\n" ::: "memory");
        return;
    }

    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(PFW_CONSUMER_REGS));
    const int g = lane >> 2, tq = lane & 3;
    /* this thread's rows: warpgroup w's 64, warp warp % 4's 16 of them */
    const int r_lo = 64 * (warp >> 2) + 16 * (warp & 3) + g, r_hi = r_lo + 8;
    const int pos_lo = r_lo < R ? positions[t0 + r_lo / G] : -1;
    const int pos_hi = r_hi < R ? positions[t0 + r_hi / G] : -1;
    const int n_unmasked = pfm_unmasked_steps<KT>(positions, t0, rows, n_steps, lane);

    /* Q rows r_lo and r_hi as A fragments (zeros past R), k16 slice kk:
     * columns 16 kk + 2 tq (+1) and + 8 */
    unsigned qa[PFW_NF][4];
    {
        const int rl = r_lo < R ? r_lo : 0, rh = r_hi < R ? r_hi : 0; /* in bounds */
        const __half *qlo = q + ((size_t)(t0 + rl / G) * heads + kvh * G + rl % G) * PFW_HD;
        const __half *qhi = q + ((size_t)(t0 + rh / G) * heads + kvh * G + rh % G) * PFW_HD;
#pragma unroll
        for (int kk = 0; kk < PFW_NF; kk++) {
            qa[kk][0] = r_lo < R ? *(const unsigned *)(qlo + 16 * kk + 2 * tq) : 0u;
            qa[kk][1] = r_hi < R ? *(const unsigned *)(qhi + 16 * kk + 2 * tq) : 0u;
            qa[kk][2] = r_lo < R ? *(const unsigned *)(qlo + 16 * kk + 8 + 2 * tq) : 0u;
            qa[kk][3] = r_hi < R ? *(const unsigned *)(qhi + 16 * kk + 8 + 2 * tq) : 0u;
        }
    }
    float o[2 * PFW_NF][4];
#pragma unroll
    for (int n = 0; n < 2 * PFW_NF; n++)
        o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    float m_lo = PFM_NEG_INF, m_hi = PFM_NEG_INF, l_lo = 0.0f, l_hi = 0.0f;

    // Step s's scores are issued in the section before its softmax: step
    // 0's alone, then each section has step s's P V and step s + 1's
    // scores (the last one's scores are of stage st again and unused:
    // a wgmma under a branch would make ptxas serialize them all).
    // FlashAttention-3's ping-pong: a warpgroup issues a section only on
    // its turn (named barrier 1 + wg, 256 threads: its own sync and the
    // other warpgroup's arrive) and hands the turn over once its products
    // are issued, so one warpgroup's softmax runs under the other's
    // products. The arrivals match the syncs: warpgroup 1 gives the first
    // turn and skips its last hand-over.
    const int wg = warp >> 2;
    float sc[KT / 8][4];
    pfw_mbar_wait(&full[0], 0);
    /* the producer's cp.async writes (generic proxy) before wgmma's reads */
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#pragma unroll
    for (int n = 0; n < KT / 8; n++)
        sc[n][0] = sc[n][1] = sc[n][2] = sc[n][3] = 0.0f;
    pfw_wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < PFW_NF; kk++) /* head_dim chunks 2 kk, 2 kk + 1 */
        pfw_wgmma_scores(sc, qa[kk], pfw_desc_k<SW128, KT>(smem_raw, kk));
    pfw_wgmma_commit_wait();
    pfw_fence_regs(sc);
    if (wg == 1)
        asm volatile("bar.arrive 1, 256;\n" ::: "memory");

    for (int s = 0; s < n_steps; s++) {
        const int st = s % STAGES;
        const unsigned char *sv = smem_raw + (size_t)st * STAGE_BYTES + PFW_TILE_BYTES(KT);
        unsigned pa[KT / 16][4];
        if (s < n_unmasked)
            pfm_scale_mask<false>(sc, s * KT, pos_lo, pos_hi, scale_log2, tq);
        else
            pfm_scale_mask<true>(sc, s * KT, pos_lo, pos_hi, scale_log2, tq);
        mma_softmax_step(sc, m_lo, m_hi, l_lo, l_hi, o, pa);

        const bool next = s + 1 < n_steps; /* block-uniform */
        const int nst = next ? (s + 1) % STAGES : st;
        if (next) {
            pfw_mbar_wait(&full[nst], ((s + 1) / STAGES) & 1);
            asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
        }
        const unsigned char *nsk = smem_raw + (size_t)nst * STAGE_BYTES;
#pragma unroll
        for (int n = 0; n < KT / 8; n++)
            sc[n][0] = sc[n][1] = sc[n][2] = sc[n][3] = 0.0f;
        if (wg == 0)
            asm volatile("bar.sync 1, 256;\n" ::: "memory");
        else
            asm volatile("bar.sync 2, 256;\n" ::: "memory");
        pfw_wgmma_fence();
        // All four key blocks, also those past last_pos that the mma
        // kernels skip: their P is exactly 0 and their V rows zeros, so
        // the sums are the same bits.
#pragma unroll
        for (int kk = 0; kk < KT / 16; kk++) /* key octets 2 kk, 2 kk + 1 */
            pfw_wgmma_n128<1>(o, pa[kk], pfw_desc_v<SW128, KT>(sv, kk));
#pragma unroll
        for (int kk = 0; kk < PFW_NF; kk++)
            pfw_wgmma_scores(sc, qa[kk], pfw_desc_k<SW128, KT>(nsk, kk));
        asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
        if (wg == 0)
            asm volatile("bar.arrive 2, 256;\n" ::: "memory");
        else if (next)
            asm volatile("bar.arrive 1, 256;\n" ::: "memory");
        asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
        pfw_fence_regs(o);
        pfw_fence_regs(sc);
        __syncwarp();
        if (lane == 0) /* this warp is done with stage st */
            pfw_mbar_arrive(&empty[st]);
    }
    pfm_store_rows(pfm_row_out(out, r_lo, R, G, kvh, t0, heads, PFW_HD),
                   pfm_row_out(out, r_hi, R, G, kvh, t0, heads, PFW_HD), o, l_lo, l_hi, tq);
#else
    __trap(); /* launched only where vb_attention_prefill_wgmma_supported */
#endif
}

template __global__ void attention_prefill_wgmma_kernel<false, 64>(
    __half *, const __half *, const __half *, const __half *, const int *, const int *, int,
    const int *, int, int, int, int, int, float);
template __global__ void attention_prefill_wgmma_kernel<true, 64>(
    __half *, const __half *, const __half *, const __half *, const int *, const int *, int,
    const int *, int, int, int, int, int, float);
template __global__ void attention_prefill_wgmma_kernel<true, 128>(
    __half *, const __half *, const __half *, const __half *, const int *, const int *, int,
    const int *, int, int, int, int, int, float);

#ifndef __CUDACC_RTC__
static size_t pfw_shared_bytes(int kt)
{
    /* the ring, then a full and an empty mbarrier a stage, and room to
     * align the ring to 1024 bytes (the swizzled layout) */
    return (size_t)PFW_STAGES(kt) * PFW_STAGE_BYTES(kt) +
           2 * PFW_STAGES(kt) * sizeof(unsigned long long) + 1024;
}

// Built for sm_90a: meson compiles this file alone with that target where
// the architecture list has 90, and defines VB_WGMMA_SM90A there.
extern "C" bool vb_attention_prefill_wgmma_supported(int heads, int kv_heads, int head_dim)
{
#ifdef VB_WGMMA_SM90A
    vb_device_caps caps;
    if (head_dim != PFW_HD || !vb_attention_prefill_mma_supported(heads, kv_heads, head_dim) ||
        vb_device_caps_get(&caps) != cudaSuccess)
        return false;
    return caps.major == 9 && caps.minor == 0 && pfw_shared_bytes(128) <= (size_t)caps.smem_optin &&
           pfw_shared_bytes(64) <= (size_t)caps.smem_optin;
#else
    (void)heads;
    (void)kv_heads;
    (void)head_dim;
    return false;
#endif
}

extern "C" cudaError_t vb_attention_prefill_wgmma_f16(uint16_t *out, const uint16_t *q,
                                                      const uint16_t *k_cache,
                                                      const uint16_t *v_cache,
                                                      const int *d_positions, const int *d_tiles,
                                                      int n_tiles, const int *d_block_tables,
                                                      int max_blocks, int heads, int kv_heads,
                                                      int head_dim, int block_size, float scale,
                                                      int variant, cudaStream_t stream)
{
    if (n_tiles == 0)
        return cudaSuccess;
    if (head_dim != PFW_HD || block_size <= 0 || variant < VB_WGMMA_PLAIN ||
        variant > VB_WGMMA_K128 || vb_attention_prefill_mma_tile_tokens(heads, kv_heads) < 1)
        return cudaErrorInvalidValue;
    const size_t smem = pfw_shared_bytes(variant == VB_WGMMA_K128 ? 128 : 64);
    const int bs_shift = pfm_block_shift(block_size);
    void (*kernel)(__half *, const __half *, const __half *, const __half *, const int *,
                   const int *, int, const int *, int, int, int, int, int, float) =
        variant == VB_WGMMA_K128  ? attention_prefill_wgmma_kernel<true, 128>
        : variant == VB_WGMMA_SW128 ? attention_prefill_wgmma_kernel<true, 64>
                                    : attention_prefill_wgmma_kernel<false, 64>;
    cudaError_t e =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e != cudaSuccess)
        return e;
    kernel<<<dim3((unsigned)n_tiles, (unsigned)kv_heads), PFW_THREADS, smem, stream>>>(
        (__half *)out, (const __half *)q, (const __half *)k_cache, (const __half *)v_cache,
        d_positions, d_tiles, n_tiles, d_block_tables, max_blocks, heads, kv_heads, block_size,
        bs_shift, scale * PFM_LOG2E);
    return cudaGetLastError();
}
#endif

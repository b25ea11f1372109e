// What the sampler's kernels share: the host's summary layout
// (src/engine/sampler.h) and the Philox-keyed Gumbel noise of
// src/engine/philox.c. Included by sampler_summary.cu, which makes the
// summaries, and sampler_choose.cu, which decides from them.
#ifndef VB_SAMPLER_COMMON_CUH
#define VB_SAMPLER_COMMON_CUH

// Host layout of sampler_summary (src/engine/sampler.h), 48 bytes; the
// host side (src/cuda/cuda_sampler.c) asserts the offsets.
struct ss_summary {
    double max_logit;
    double sum_exp;
    double best_score;
    float best_logit;
    int best_token;
    int n_cand;
    int bad;
    int has_more;
    int reserved;
};
struct ss_cand { // sample_candidate
    float logit;
    int token;
};

__device__ __forceinline__ float ss_inf_f(void) { return __int_as_float(0x7f800000); }
__device__ __forceinline__ double ss_inf_d(void) { return __longlong_as_double(0x7ff0000000000000ll); }

// ---- Philox4x32-10, as src/engine/philox.c (Random123 constants and rounds)
__device__ __forceinline__ void philox_round(unsigned c[4], unsigned k0, unsigned k1)
{
    unsigned hi0 = __umulhi(0xD2511F53u, c[0]), lo0 = 0xD2511F53u * c[0];
    unsigned hi1 = __umulhi(0xCD9E8D57u, c[2]), lo1 = 0xCD9E8D57u * c[2];
    unsigned r0 = hi1 ^ c[1] ^ k0, r1 = lo1, r2 = hi0 ^ c[3] ^ k1, r3 = lo0;
    c[0] = r0;
    c[1] = r1;
    c[2] = r2;
    c[3] = r3;
}

// -log(-log(u)), u uniform in (0, 1) keyed by (seed, row, sample, step,
// token): philox_sample_gumbel of the host.
static __device__ double ss_gumbel(unsigned long long seed, unsigned row, unsigned sample, unsigned step,
                            unsigned token)
{
    unsigned c[4] = {token, step, sample, row};
    unsigned k0 = (unsigned)seed, k1 = (unsigned)(seed >> 32);
    for (int i = 0; i < 10; i++) {
        if (i > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        philox_round(c, k0, k1);
    }
    unsigned long long bits = ((unsigned long long)(c[0] >> 6) << 26) | (unsigned long long)(c[1] >> 6);
    // exact: bits < 2^52, + 0.5 needs 53 bits, times a power of two
    double u = __dmul_rn(__dadd_rn((double)bits, 0.5), 1.0 / 4503599627370496.0);
    return -log(-log(u));
}

#endif

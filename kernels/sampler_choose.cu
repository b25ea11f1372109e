// The sampler's decision on the device: sampler_choose
// (src/engine/sampler_choose.c) for every row of a step, from the
// summaries sampler_summary.cu left in device memory. At tp 1 a rank's
// summary is the merged one, so only the choices (token, logprob,
// alternatives) come back to the host and the host spends nothing a row.
// Why: a sampled row's choice draws Gumbel noise for each kept candidate
// (a Philox block and two double logs each), ~5 us a row on one host
// core: 2.4 ms a step at ~490 rows of top-k 50 / top-p 0.95 (RESULTS.md,
// session 13), while the GPU does every row at once.
//
// One warp a row, the host's rules in the host's order:
//   - top-k, keeping the ties of the k-th;
//   - top-p: each candidate's exp(logit - top) in parallel (the same
//     double expression as the host's), then one lane sums them and walks
//     the mass in candidate order: the host's double additions and
//     divisions, one by one;
//   - min-p on the same exp values;
//   - the Gumbel-max draw over what is kept: lanes take candidates, the
//     warp keeps the largest score and, on equal scores, the first
//     candidate (the host's loop keeps the first by its strict >).
// exp and log are CUDA's double functions, within an ulp of glibc's (the
// summaries' Gumbel scores carry the same caveat, sampler_summary.cu): a
// decision can differ from the host's only at a tie of that size.
//
// sm_70 features only.
#include "kernels.h"
#include "sampler_common.cuh"

#define SC_WARPS 4 // rows a block

static_assert(sizeof(vb_sample_choice) == 16 + 8 * VB_SAMPLE_MAX_LOGPROBS,
              "vb_sample_choice: the host's sample_result");

__device__ __forceinline__ float sc_nan_f(void) { return __int_as_float(0x7fc00000); }

// How many of the row's candidates top-k, top-p and min-p keep (the
// host's kept_count), the same in every lane; *inexact as the host sets
// it. e: the warp's scratch, n_cand doubles.
__device__ int sc_kept(const ss_summary *m, const ss_cand *c, const vb_sample_row_args &a,
                       double *e, int lane, bool *inexact)
{
    int n = m->n_cand < a.own_cand ? m->n_cand : a.own_cand;
    const bool has_more = m->has_more || m->n_cand > a.own_cand;
    *inexact = false;
    if (n == 0)
        return 0;
    bool cut = false;
    if (a.top_k > 0) {
        int k = a.top_k < n ? a.top_k : n;
        while (k < n && c[k].logit == c[k - 1].logit) /* HF keeps ties with the k-th */
            k++;
        if (a.top_k <= n)
            cut = true;
        n = k;
    }
    const double top = c[0].logit;
    if (a.top_p < 1.0f || a.min_p > 0.0f) {
        for (int i = lane; i < n; i += 32)
            e[i] = exp((double)c[i].logit - top);
        __syncwarp();
    }
    if (a.top_p < 1.0f) {
        int k = 0;
        bool closed = false;
        if (lane == 0) { /* sequential sums, as the host's */
            double z = 0.0;
            if (a.top_k > 0) {
                for (int i = 0; i < n; i++)
                    z += e[i];
            } else {
                z = m->sum_exp * exp(m->max_logit - top);
            }
            double before = 0.0;
            while (k < n && (k == 0 || before < a.top_p))
                before += e[k++] / z;
            closed = before >= a.top_p;
        }
        k = __shfl_sync(0xffffffffu, k, 0);
        if (__shfl_sync(0xffffffffu, (int)closed, 0))
            cut = true;
        n = k;
    }
    if (a.min_p > 0.0f) {
        int k = 1;
        while (k < n && e[k] >= a.min_p)
            k++;
        if (k < n)
            cut = true;
        n = k;
    }
    *inexact = !cut && has_more;
    return n;
}

// The Gumbel-max draw over candidates [0, n): the index of the largest
// logit + noise, the first on equal scores; n > 0.
__device__ int sc_draw(const ss_cand *c, int n, const vb_sample_row_args &a, int lane)
{
    double best = -ss_inf_d();
    int at = 0x7fffffff;
    for (int i = lane; i < n; i += 32) {
        double s = (double)c[i].logit + ss_gumbel(a.seed, a.row, a.sample, a.step,
                                                   (unsigned)c[i].token);
        if (s > best) { /* i grows in a lane: the first of equal scores stays */
            best = s;
            at = i;
        }
    }
    for (int off = 16; off > 0; off >>= 1) {
        double ob = __shfl_xor_sync(0xffffffffu, best, off);
        int oi = __shfl_xor_sync(0xffffffffu, at, off);
        if (ob > best || (ob == best && oi < at)) {
            best = ob;
            at = oi;
        }
    }
    return at;
}

__global__ void __launch_bounds__(32 * SC_WARPS)
    sampler_choose_kernel(vb_sample_choice *out, const char *summaries, int n_cand,
                          const vb_sample_row_args *args, int n_rows)
{
    extern __shared__ double sc_scratch[]; // SC_WARPS x n_cand
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int r = blockIdx.x * SC_WARPS + warp;
    if (r >= n_rows)
        return; /* whole warps */
    double *e = sc_scratch + (size_t)warp * n_cand;
    const size_t stride = sizeof(ss_summary) + (size_t)n_cand * sizeof(ss_cand);
    const ss_summary *m = (const ss_summary *)(summaries + (size_t)r * stride);
    const ss_cand *c = (const ss_cand *)(m + 1);
    const vb_sample_row_args a = args[r];
    vb_sample_choice *o = out + r;
    /* the host starts from a zeroed sample_result */
    for (int i = lane; i < VB_SAMPLE_MAX_LOGPROBS; i += 32) {
        o->top_tokens[i] = 0;
        o->top_logprobs[i] = 0.0f;
    }
    if (lane == 0) {
        o->pad_[0] = o->pad_[1] = 0;
        o->truncated_inexact = 0;
        o->n_top = 0;
    }
    if (m->bad || m->best_token < 0 || !(m->max_logit > -ss_inf_d())) {
        if (lane == 0) {
            o->token = -1;
            o->error = 1;
            o->logprob = 0.0f;
        }
        return;
    }
    int token = m->best_token;
    float logit = m->best_logit;
    bool inexact = false;
    if (a.flags & VB_SAMPLE_TRUNCATE) {
        const int n = sc_kept(m, c, a, e, lane, &inexact);
        if (n > 0) { /* always: a row with a best token has a candidate */
            const int pick = sc_draw(c, n, a, lane);
            token = c[pick].token;
            logit = c[pick].logit;
        }
    }
    if (lane == 0) {
        o->token = token;
        o->error = 0;
        o->truncated_inexact = inexact ? 1 : 0;
        o->logprob = sc_nan_f(); /* not computed (see sampler_summarize) */
    }
    if (a.n_logprobs <= 0)
        return;
    const double log_z = m->max_logit + log(m->sum_exp);
    int n_top = a.n_logprobs < m->n_cand ? a.n_logprobs : m->n_cand;
    if (n_top > VB_SAMPLE_MAX_LOGPROBS)
        n_top = VB_SAMPLE_MAX_LOGPROBS;
    for (int i = lane; i < n_top; i += 32) {
        o->top_tokens[i] = c[i].token;
        o->top_logprobs[i] = (float)((double)c[i].logit - log_z);
    }
    if (lane == 0) {
        o->logprob = (float)((double)logit - log_z);
        o->n_top = n_top;
    }
}

#ifndef __CUDACC_RTC__ // the launcher: host code (NVRTC compiles only the kernels)
extern "C" cudaError_t vb_sampler_choose(vb_sample_choice *d_choices, const void *d_summaries,
                                         int n_cand, const vb_sample_row_args *d_args, int n_rows,
                                         cudaStream_t stream)
{
    if (n_rows < 0 || n_cand < 0 || n_cand > VB_SAMPLE_MAX_CAND)
        return cudaErrorInvalidValue;
    if (n_rows == 0)
        return cudaSuccess;
    const size_t smem = (size_t)SC_WARPS * (size_t)n_cand * sizeof(double); /* <= 32 KB */
    sampler_choose_kernel<<<(n_rows + SC_WARPS - 1) / SC_WARPS, 32 * SC_WARPS, smem, stream>>>(
        d_choices, (const char *)d_summaries, n_cand, d_args, n_rows);
    return cudaGetLastError();
}
#endif

/* Device-side sampling for the CUDA backend (see cuda_sampler.h). */
#include "cuda/cuda_sampler.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_check.h"
#include "cuda/cuda_seen.h"
#include "cuda/pinned_pair.h"
#include "kernels.h"

/* The kernel writes the host's sampler_summary layout byte for byte. */
_Static_assert(offsetof(sampler_summary, max_logit) == 0, "sampler_summary layout");
_Static_assert(offsetof(sampler_summary, sum_exp) == 8, "sampler_summary layout");
_Static_assert(offsetof(sampler_summary, best_score) == 16, "sampler_summary layout");
_Static_assert(offsetof(sampler_summary, best_logit) == 24, "sampler_summary layout");
_Static_assert(offsetof(sampler_summary, best_token) == 28, "sampler_summary layout");
_Static_assert(offsetof(sampler_summary, n_cand) == 32, "sampler_summary layout");
_Static_assert(offsetof(sampler_summary, bad) == 36, "sampler_summary layout");
_Static_assert(offsetof(sampler_summary, has_more) == 40, "sampler_summary layout");
_Static_assert(offsetof(sampler_summary, reserved) == 44, "sampler_summary layout");
_Static_assert(sizeof(sampler_summary) == 48, "sampler_summary layout");
_Static_assert(sizeof(sample_candidate) == 8 && offsetof(sample_candidate, token) == 4,
               "sample_candidate layout");
_Static_assert(sizeof(vb_sample_row_args) % 8 == 0, "vb_sample_row_args: an array of them");
/* The choice kernel writes the host's sample_result byte for byte. */
_Static_assert(offsetof(sample_result, token) == offsetof(vb_sample_choice, token) &&
                   offsetof(sample_result, error) == offsetof(vb_sample_choice, error) &&
                   offsetof(sample_result, truncated_inexact) ==
                       offsetof(vb_sample_choice, truncated_inexact) &&
                   offsetof(sample_result, logprob) == offsetof(vb_sample_choice, logprob) &&
                   offsetof(sample_result, n_top) == offsetof(vb_sample_choice, n_top) &&
                   offsetof(sample_result, top_tokens) == offsetof(vb_sample_choice, top_tokens) &&
                   offsetof(sample_result, top_logprobs) ==
                       offsetof(vb_sample_choice, top_logprobs) &&
                   sizeof(sample_result) == sizeof(vb_sample_choice) &&
                   sizeof(bool) == 1 && SAMPLER_MAX_LOGPROBS == VB_SAMPLE_MAX_LOGPROBS,
               "sample_result layout");

struct cuda_sampler {
    cudaStream_t stream;
    vb_sample_row_args *h_args, *d_args; /* h_ pinned */
    size_t cap_rows;
    vb_penalty_entry *h_pen, *d_pen;
    size_t cap_pen;
    void *h_out, *d_out;                 /* d_out: the summaries; h_out their copy */
    size_t cap_out;                      /* bytes */
    vb_sample_choice *h_choice, *d_choice; /* cuda_sampler_sample's decisions */
    size_t cap_choice;                   /* rows */
    void *d_scratch;                     /* chunk states, histograms, compact buffers (kernels.h) */
    size_t cap_scratch;                  /* bytes */
    int n_sm;                            /* multiprocessors: how far pass 1 is split */
    int pass1_chunks;                    /* fixed split (1-64), or 0: by n_sm */
    cuda_seen *seen;                     /* the rows' seen bitmaps (penalties) */
    /* host scratch for the generated tokens' counts, one slot per token
     * of the shard */
    int n_local;
    int32_t *counts;
    int32_t *touched;
    size_t cap_touched;
};

static void *host_or_die(void *p)
{
    if (!p)
        vb_cuda_fail("host", "malloc", "out of memory for the device sampler", __FILE__, __LINE__);
    return p;
}

cuda_sampler *cuda_sampler_create(cudaStream_t stream, int pass1_chunks)
{
    cuda_sampler *s = host_or_die(calloc(1, sizeof *s));
    s->stream = stream;
    s->pass1_chunks = pass1_chunks;
    s->seen = cuda_seen_create();
    int dev = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&s->n_sm, cudaDevAttrMultiProcessorCount, dev));
    if (vb_sampler_summary_bytes(0) != sizeof(sampler_summary) ||
        vb_sampler_summary_bytes(1) != sizeof(sampler_summary) + sizeof(sample_candidate))
        vb_cuda_fail("CUDA", "vb_sampler_summary_bytes", "kernel and host sampler_summary differ",
                     __FILE__, __LINE__);
    return s;
}

void cuda_sampler_destroy(cuda_sampler *s)
{
    if (!s)
        return;
    CUDA_CHECK(cudaStreamSynchronize(s->stream));
    pinned_pair_free((void **)&s->h_args, (void **)&s->d_args, &s->cap_rows);
    pinned_pair_free((void **)&s->h_pen, (void **)&s->d_pen, &s->cap_pen);
    pinned_pair_free(&s->h_out, &s->d_out, &s->cap_out);
    pinned_pair_free((void **)&s->h_choice, (void **)&s->d_choice, &s->cap_choice);
    if (s->d_scratch)
        CUDA_CHECK(cudaFree(s->d_scratch));
    cuda_seen_destroy(s->seen);
    free(s->counts);
    free(s->touched);
    free(s);
}

int cuda_sampler_max_candidates(void) { return VB_SAMPLE_MAX_CAND; }

/* How many blocks pass 1 of a row is split over: the kernel's choice for
 * this GPU, or the one the sampler was made with. */
static int pass1_chunks(const cuda_sampler *s, int n_rows, int n_local)
{
    if (s->pass1_chunks > 0)
        return s->pass1_chunks;
    return vb_sampler_pass1_chunks(n_rows, n_local, s->n_sm);
}

static int cmp_int32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Appends row's distinct generated tokens inside [off, off + n_local) to
 * h_pen with their counts, sorted by token for the kernel's binary search;
 * returns how many. Only rows with a frequency or presence penalty, over
 * the generated tokens only (the repetition penalty reads the row's seen
 * bitmap): a few hundred tokens at most, once a step. */
static int build_counts(cuda_sampler *s, const sampler_row *row, int off, int n_local, size_t at)
{
    const sampling_params *p = row->params;
    if (p->frequency_penalty == 0.0f && p->presence_penalty == 0.0f)
        return 0;
    if ((size_t)row->n_generated > s->cap_touched) {
        free(s->touched);
        s->touched = host_or_die(malloc((size_t)row->n_generated * sizeof *s->touched));
        s->cap_touched = (size_t)row->n_generated;
    }
    size_t n_touched = 0;
    for (int i = 0; i < row->n_generated; i++) {
        int32_t t = row->generated[i] - off;
        if (t < 0 || t >= n_local) /* not s->n_local: the capacity of the largest shard seen */
            continue;
        if (s->counts[t]++ == 0)
            s->touched[n_touched++] = t;
    }
    qsort(s->touched, n_touched, sizeof *s->touched, cmp_int32);
    size_t need = at + n_touched;
    if (need > s->cap_pen) {
        /* keep what earlier rows wrote: grow through a host copy */
        size_t keep = at;
        vb_penalty_entry *tmp = keep ? host_or_die(malloc(keep * sizeof *tmp)) : NULL;
        if (keep)
            memcpy(tmp, s->h_pen, keep * sizeof *tmp);
        pinned_pair_grow((void **)&s->h_pen, (void **)&s->d_pen, &s->cap_pen, need, sizeof *s->h_pen);
        if (keep)
            memcpy(s->h_pen, tmp, keep * sizeof *tmp);
        free(tmp);
    }
    for (size_t k = 0; k < n_touched; k++) {
        int32_t t = s->touched[k];
        s->h_pen[at + k] = (vb_penalty_entry){.token = t, .count = s->counts[t]};
        s->counts[t] = 0;
    }
    return (int)n_touched;
}

static bool has_penalties(const sampling_params *p)
{
    return p->repetition_penalty != 1.0f || p->frequency_penalty != 0.0f ||
           p->presence_penalty != 0.0f;
}

/* The rows' summaries into s->d_out, their arguments left in s->d_args
 * (the choice kernel reads them too); nothing waited for. */
static void summarize_on_device(cuda_sampler *s, const float *d_logits, const int *logit_rows,
                                const sampler_row *rows, int n, int vocab_offset, int n_local,
                                int n_cand)
{
    if (n_local > s->n_local) {
        free(s->counts);
        s->counts = host_or_die(calloc((size_t)n_local, sizeof *s->counts));
        s->n_local = n_local;
    }
    pinned_pair_grow((void **)&s->h_args, (void **)&s->d_args, &s->cap_rows, (size_t)n,
                     sizeof *s->h_args);
    int n_penalized = 0;
    for (int i = 0; i < n; i++)
        n_penalized += has_penalties(rows[i].params);
    cuda_seen_begin(s->seen, n_local, n_penalized);
    size_t n_pen = 0;
    for (int i = 0; i < n; i++) {
        const sampling_params *p = rows[i].params;
        bool greedy = sampler_is_greedy(p);
        int flags = greedy ? VB_SAMPLE_GREEDY : 0;
        if (!greedy && !sampler_truncates(p))
            flags |= VB_SAMPLE_GUMBEL;
        /* the same condition as sampler_summarize's need_lse */
        if (p->n_logprobs > 0 || (!greedy && p->top_k <= 0 && p->top_p < 1.0f))
            flags |= VB_SAMPLE_NEED_LSE;
        int seen_slot = -1, added_start = 0, added_count = 0;
        if (has_penalties(p)) {
            bool reset = false;
            seen_slot = cuda_seen_row(s->seen, &rows[i], vocab_offset, n_local, &added_start,
                                      &added_count, &reset);
            if (reset)
                flags |= VB_SAMPLE_SEEN_RESET;
            if (p->repetition_penalty != 1.0f)
                flags |= VB_SAMPLE_REPETITION;
        }
        if (!greedy && sampler_truncates(p))
            flags |= VB_SAMPLE_TRUNCATE;
        int count = build_counts(s, &rows[i], vocab_offset, n_local, n_pen);
        s->h_args[i] = (vb_sample_row_args){
            .seed = p->seed,
            .temperature = p->temperature,
            .repetition_penalty = p->repetition_penalty,
            .frequency_penalty = p->frequency_penalty,
            .presence_penalty = p->presence_penalty,
            .row = rows[i].row,
            .sample = rows[i].sample,
            .step = rows[i].step,
            .flags = flags,
            .logit_row = logit_rows[i],
            .pen_start = (int)n_pen,
            .pen_count = count,
            .seen_slot = seen_slot,
            .added_start = added_start,
            .added_count = added_count,
            .top_k = p->top_k,
            .top_p = p->top_p,
            .min_p = p->min_p,
            .n_logprobs = p->n_logprobs,
            .own_cand = sampler_candidates_needed(&p, 1),
        };
        n_pen += (size_t)count;
    }
    size_t bytes = (size_t)n * sampler_summary_bytes(n_cand);
    pinned_pair_grow(&s->h_out, &s->d_out, &s->cap_out, bytes, 1);
    if (n_pen == 0) /* the kernel still gets a valid pointer */
        pinned_pair_grow((void **)&s->h_pen, (void **)&s->d_pen, &s->cap_pen, 1, sizeof *s->h_pen);
    unsigned *d_seen = NULL;
    const int *d_added = NULL;
    bool any_added = cuda_seen_upload(s->seen, s->stream, &d_seen, &d_added);
    CUDA_CHECK(cudaMemcpyAsync(s->d_args, s->h_args, (size_t)n * sizeof *s->h_args,
                               cudaMemcpyHostToDevice, s->stream));
    if (n_pen)
        CUDA_CHECK(cudaMemcpyAsync(s->d_pen, s->h_pen, n_pen * sizeof *s->h_pen,
                                   cudaMemcpyHostToDevice, s->stream));
    int chunks = pass1_chunks(s, n, n_local);
    /* with candidates, VB_SAMPLE_COMPACT_CAP * 8 bytes a row (64 KB) */
    size_t scratch_bytes = vb_sampler_scratch_bytes(n, chunks, n_cand);
    if (scratch_bytes > s->cap_scratch) { /* its last users finished: the previous call synced */
        if (s->d_scratch)
            CUDA_CHECK(cudaFree(s->d_scratch));
        CUDA_CHECK(cudaMalloc(&s->d_scratch, scratch_bytes));
        s->cap_scratch = scratch_bytes;
    }
    /* no penalized row: the kernels without the penalties' paths */
    CUDA_CHECK(vb_sampler_summarize(s->d_out, s->d_scratch, chunks, d_logits, s->d_args, s->d_pen,
                                    n_penalized || any_added ? d_seen : NULL, d_added, any_added,
                                    n, vocab_offset, n_local, n_cand, s->stream));
}

int cuda_sampler_summarize(cuda_sampler *s, const float *d_logits, const int *logit_rows,
                           const sampler_row *rows, int n, int vocab_offset, int n_local,
                           int n_cand, void *summaries)
{
    if (n_cand > VB_SAMPLE_MAX_CAND || n_cand < 0)
        return -1;
    if (n <= 0)
        return 0;
    summarize_on_device(s, d_logits, logit_rows, rows, n, vocab_offset, n_local, n_cand);
    size_t bytes = (size_t)n * sampler_summary_bytes(n_cand);
    CUDA_CHECK(cudaMemcpyAsync(s->h_out, s->d_out, bytes, cudaMemcpyDeviceToHost, s->stream));
    CUDA_CHECK(cudaStreamSynchronize(s->stream));
    memcpy(summaries, s->h_out, bytes);
    return 0;
}

int cuda_sampler_sample(cuda_sampler *s, const float *d_logits, const int *logit_rows,
                        const sampler_row *rows, int n, int n_vocab, int n_cand,
                        sample_result *out)
{
    if (n_cand > VB_SAMPLE_MAX_CAND || n_cand < 0)
        return -1;
    if (n <= 0)
        return 0;
    bool draws = false;
    for (int i = 0; i < n && !draws; i++)
        draws = !sampler_is_greedy(rows[i].params) && sampler_truncates(rows[i].params);
    if (!draws)
        return -1; /* the host's choice is a copy of each best token: no launch for it */
    summarize_on_device(s, d_logits, logit_rows, rows, n, 0, n_vocab, n_cand);
    pinned_pair_grow((void **)&s->h_choice, (void **)&s->d_choice, &s->cap_choice, (size_t)n,
                     sizeof *s->h_choice);
    CUDA_CHECK(vb_sampler_choose(s->d_choice, s->d_out, n_cand, s->d_args, n, s->stream));
    CUDA_CHECK(cudaMemcpyAsync(s->h_choice, s->d_choice, (size_t)n * sizeof *s->h_choice,
                               cudaMemcpyDeviceToHost, s->stream));
    CUDA_CHECK(cudaStreamSynchronize(s->stream));
    memcpy(out, s->h_choice, (size_t)n * sizeof *out);
    return 0;
}

/* Device-side sampling for the CUDA backend (see cuda_sampler.h). */
#include "cuda/cuda_sampler.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_check.h"
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

/* The host sampler's predicates (engine/sampler_summarize.c), so both
 * paths decide greedy / Gumbel / log-sum-exp by the same code. */
bool sampler_is_greedy(const sampling_params *p);
bool sampler_truncates(const sampling_params *p);

struct cuda_sampler {
    cudaStream_t stream;
    vb_sample_row_args *h_args, *d_args; /* h_ pinned */
    size_t cap_rows;
    vb_penalty_entry *h_pen, *d_pen;
    size_t cap_pen;
    void *h_out, *d_out;
    size_t cap_out;                      /* bytes */
    void *d_pass1;                       /* pass 1's chunk states (kernels.h) */
    size_t cap_pass1;                    /* bytes */
    int n_sm;                            /* multiprocessors: how far pass 1 is split */
    /* host scratch for the penalty lists, one slot per token of the shard */
    int n_local;
    int32_t *counts;
    uint8_t *marks;                      /* bit 0: listed, bit 1: seen */
    int32_t *touched;
    size_t cap_touched;
};

static void *host_or_die(void *p)
{
    if (!p)
        vb_cuda_fail("host", "malloc", "out of memory for the device sampler", __FILE__, __LINE__);
    return p;
}

cuda_sampler *cuda_sampler_create(cudaStream_t stream)
{
    cuda_sampler *s = host_or_die(calloc(1, sizeof *s));
    s->stream = stream;
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
    if (s->h_args)
        CUDA_CHECK(cudaFreeHost(s->h_args));
    if (s->h_pen)
        CUDA_CHECK(cudaFreeHost(s->h_pen));
    if (s->h_out)
        CUDA_CHECK(cudaFreeHost(s->h_out));
    if (s->d_args)
        CUDA_CHECK(cudaFree(s->d_args));
    if (s->d_pen)
        CUDA_CHECK(cudaFree(s->d_pen));
    if (s->d_out)
        CUDA_CHECK(cudaFree(s->d_out));
    if (s->d_pass1)
        CUDA_CHECK(cudaFree(s->d_pass1));
    free(s->counts);
    free(s->marks);
    free(s->touched);
    free(s);
}

int cuda_sampler_max_candidates(void) { return VB_SAMPLE_MAX_CAND; }

/* A pinned host buffer and its device twin, grown to `bytes` (doubling, so
 * a growing batch reallocates a few times only). Called between steps,
 * when the stream is idle. */
static void grow_pair(void **h, void **d, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    if (*h)
        CUDA_CHECK(cudaFreeHost(*h));
    if (*d)
        CUDA_CHECK(cudaFree(*d));
    CUDA_CHECK(cudaMallocHost(h, n * elem));
    CUDA_CHECK(cudaMalloc(d, n * elem));
    *cap = n;
}

/* How many blocks pass 1 of a row is split over: the kernel's choice for
 * this GPU, or VB_SAMPLER_PASS1_CHUNKS (a diagnostic, and how the tests
 * run both paths; read each step, 1 to 64). */
static int pass1_chunks(const cuda_sampler *s, int n_rows, int n_local)
{
    const char *env = getenv("VB_SAMPLER_PASS1_CHUNKS");
    if (env && *env) {
        int c = atoi(env);
        if (c >= 1 && c <= 64)
            return c;
    }
    return vb_sampler_pass1_chunks(n_rows, n_local, s->n_sm);
}

static int cmp_int32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static void note_token(cuda_sampler *s, int32_t local, size_t *n_touched)
{
    if (!(s->marks[local] & 1)) {
        s->marks[local] |= 1;
        s->touched[(*n_touched)++] = local;
    }
}

/* Appends row's distinct history tokens inside [off, off + n_local) to
 * h_pen, sorted by token, with the flags the kernel needs; returns how
 * many. Mirrors process_logits of engine/sampler_summarize.c: the
 * repetition penalty looks at prompt + generated, once per token; the
 * frequency / presence penalties at the generated tokens' counts. */
static int build_penalties(cuda_sampler *s, const sampler_row *row, int off, int n_local,
                           size_t at)
{
    const sampling_params *p = row->params;
    bool rep = p->repetition_penalty != 1.0f;
    bool freq = p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f;
    if (!rep && !freq)
        return 0;
    size_t hist = (size_t)(rep ? row->n_prompt : 0) + (size_t)row->n_generated;
    if (hist > s->cap_touched) {
        free(s->touched);
        s->touched = host_or_die(malloc(hist * sizeof *s->touched));
        s->cap_touched = hist;
    }
    size_t n_touched = 0;
    if (rep)
        for (int i = 0; i < row->n_prompt; i++) {
            int32_t t = row->prompt[i] - off;
            if (t < 0 || t >= n_local) /* not s->n_local: the capacity of the largest shard seen */
                continue;
            note_token(s, t, &n_touched);
            s->marks[t] |= 2;
        }
    for (int i = 0; i < row->n_generated; i++) {
        int32_t t = row->generated[i] - off;
        if (t < 0 || t >= n_local)
            continue;
        note_token(s, t, &n_touched);
        if (rep)
            s->marks[t] |= 2;
        if (freq)
            s->counts[t]++;
    }
    /* Sorted by token for the kernel's binary search. A long history (a
     * sizeable share of the shard) is put in order by one scan of the
     * marks instead: linear, where the sort would be n log n per row. */
    if (n_touched > (size_t)n_local / 64) {
        size_t k = 0;
        for (int32_t t = 0; t < n_local && k < n_touched; t++)
            if (s->marks[t] & 1)
                s->touched[k++] = t;
    } else {
        qsort(s->touched, n_touched, sizeof *s->touched, cmp_int32);
    }
    size_t need = at + n_touched;
    if (need > s->cap_pen) {
        /* keep what earlier rows wrote: grow through a host copy */
        size_t keep = at;
        vb_penalty_entry *tmp = keep ? host_or_die(malloc(keep * sizeof *tmp)) : NULL;
        if (keep)
            memcpy(tmp, s->h_pen, keep * sizeof *tmp);
        grow_pair((void **)&s->h_pen, (void **)&s->d_pen, &s->cap_pen, need, sizeof *s->h_pen);
        if (keep)
            memcpy(s->h_pen, tmp, keep * sizeof *tmp);
        free(tmp);
    }
    for (size_t k = 0; k < n_touched; k++) {
        int32_t t = s->touched[k];
        s->h_pen[at + k] = (vb_penalty_entry){.token = t, .count = s->counts[t],
                                              .seen = (s->marks[t] & 2) ? 1 : 0};
        s->counts[t] = 0;
        s->marks[t] = 0;
    }
    return (int)n_touched;
}

int cuda_sampler_summarize(cuda_sampler *s, const float *d_logits, const int *logit_rows,
                           const sampler_row *rows, int n, int vocab_offset, int n_local,
                           int n_cand, void *summaries)
{
    if (n_cand > VB_SAMPLE_MAX_CAND || n_cand < 0)
        return -1;
    if (n <= 0)
        return 0;
    if (n_local > s->n_local) {
        free(s->counts);
        free(s->marks);
        s->counts = host_or_die(calloc((size_t)n_local, sizeof *s->counts));
        s->marks = host_or_die(calloc((size_t)n_local, sizeof *s->marks));
        s->n_local = n_local;
    }
    grow_pair((void **)&s->h_args, (void **)&s->d_args, &s->cap_rows, (size_t)n, sizeof *s->h_args);
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
        int count = build_penalties(s, &rows[i], vocab_offset, n_local, n_pen);
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
        };
        n_pen += (size_t)count;
    }
    size_t bytes = (size_t)n * sampler_summary_bytes(n_cand);
    grow_pair(&s->h_out, &s->d_out, &s->cap_out, bytes, 1);
    if (n_pen == 0) /* the kernel still gets a valid pointer */
        grow_pair((void **)&s->h_pen, (void **)&s->d_pen, &s->cap_pen, 1, sizeof *s->h_pen);
    CUDA_CHECK(cudaMemcpyAsync(s->d_args, s->h_args, (size_t)n * sizeof *s->h_args,
                               cudaMemcpyHostToDevice, s->stream));
    if (n_pen)
        CUDA_CHECK(cudaMemcpyAsync(s->d_pen, s->h_pen, n_pen * sizeof *s->h_pen,
                                   cudaMemcpyHostToDevice, s->stream));
    int chunks = pass1_chunks(s, n, n_local);
    size_t pass1_bytes = vb_sampler_pass1_bytes(n, chunks);
    if (pass1_bytes > s->cap_pass1) { /* its last users finished: the previous call synced */
        if (s->d_pass1)
            CUDA_CHECK(cudaFree(s->d_pass1));
        CUDA_CHECK(cudaMalloc(&s->d_pass1, pass1_bytes));
        s->cap_pass1 = pass1_bytes;
    }
    CUDA_CHECK(vb_sampler_summarize(s->d_out, s->d_pass1, chunks, d_logits, s->d_args, s->d_pen,
                                    n, vocab_offset, n_local, n_cand, s->stream));
    CUDA_CHECK(cudaMemcpyAsync(s->h_out, s->d_out, bytes, cudaMemcpyDeviceToHost, s->stream));
    CUDA_CHECK(cudaStreamSynchronize(s->stream));
    memcpy(summaries, s->h_out, bytes);
    return 0;
}

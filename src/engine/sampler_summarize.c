/* The per-shard half of the sampler: apply penalties and temperature to a
 * row's logits shard, then condense it into a sampler_summary (see
 * sampler.h). This half runs on every TP rank. */
#include "engine/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/philox.h"

sampling_params sampling_params_default(void)
{
    return (sampling_params){.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f,
                             .repetition_penalty = 1.0f, .frequency_penalty = 0.0f,
                             .presence_penalty = 0.0f, .seed = 0, .n_logprobs = 0};
}

bool sampler_is_greedy(const sampling_params *p) { return !(p->temperature > 0.0f); }

bool sampler_truncates(const sampling_params *p)
{
    return p->top_k > 0 || p->top_p < 1.0f || p->min_p > 0.0f;
}

int sampler_workspace_init(sampler_workspace *ws, int n_local)
{
    memset(ws, 0, sizeof *ws);
    ws->n_local = n_local;
    ws->processed = malloc((size_t)n_local * sizeof *ws->processed);
    ws->counts = calloc((size_t)n_local, sizeof *ws->counts);
    ws->seen = calloc((size_t)n_local, sizeof *ws->seen);
    if (!ws->processed || !ws->counts || !ws->seen) {
        sampler_workspace_free(ws);
        return -1;
    }
    return 0;
}

void sampler_workspace_free(sampler_workspace *ws)
{
    free(ws->processed);
    free(ws->counts);
    free(ws->seen);
    free(ws->heap);
    memset(ws, 0, sizeof *ws);
}

int sampler_candidates_needed(const sampling_params *const *params, int n_rows)
{
    int n = 1;
    for (int i = 0; i < n_rows; i++) {
        const sampling_params *p = params[i];
        if (!sampler_is_greedy(p)) {
            /* the k-th's ties are kept (HF), so room for some past it */
            if (p->top_k > 0 && p->top_k + SAMPLER_TOP_K_TIE_CANDIDATES > n)
                n = p->top_k + SAMPLER_TOP_K_TIE_CANDIDATES;
            if (p->top_k <= 0 && (p->top_p < 1.0f || p->min_p > 0.0f) && n < SAMPLER_TRUNCATION_CANDIDATES)
                n = SAMPLER_TRUNCATION_CANDIDATES;
        }
        if (p->n_logprobs > n) n = p->n_logprobs;
    }
    return n;
}

/* Steps 1-3 of sampler.h on the shard [off, off + n). The seen/counts
 * scratch is cleared again before returning, touching only the history. */
static void process_logits(sampler_workspace *ws, const sampler_row *row, const float *logits,
                           int off, int n, float *out)
{
    const sampling_params *p = row->params;
    memcpy(out, logits, (size_t)n * sizeof *out);
    if (p->repetition_penalty != 1.0f) {
        const float r = p->repetition_penalty;
        for (int pass = 0; pass < 2; pass++) {
            const int32_t *h = pass ? row->generated : row->prompt;
            int nh = pass ? row->n_generated : row->n_prompt;
            for (int i = 0; i < nh; i++) {
                int t = h[i] - off;
                if (t < 0 || t >= n || ws->seen[t]) continue;
                ws->seen[t] = 1; /* once per distinct token, as HF's gather/scatter */
                out[t] = out[t] < 0 ? out[t] * r : out[t] / r;
            }
        }
        for (int pass = 0; pass < 2; pass++) {
            const int32_t *h = pass ? row->generated : row->prompt;
            int nh = pass ? row->n_generated : row->n_prompt;
            for (int i = 0; i < nh; i++)
                if (h[i] - off >= 0 && h[i] - off < n) ws->seen[h[i] - off] = 0;
        }
    }
    if (p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f) {
        for (int i = 0; i < row->n_generated; i++) {
            int t = row->generated[i] - off;
            if (t >= 0 && t < n) ws->counts[t]++;
        }
        for (int i = 0; i < row->n_generated; i++) {
            int t = row->generated[i] - off;
            if (t < 0 || t >= n || ws->counts[t] == 0) continue;
            out[t] -= p->frequency_penalty * (float)ws->counts[t] + p->presence_penalty;
            ws->counts[t] = 0;
        }
    }
    if (!sampler_is_greedy(p))
        for (int i = 0; i < n; i++) out[i] /= p->temperature;
}

/* The total order every rank and every merge uses: higher logit first,
 * then lower token id, so candidate lists never depend on the split. */
static bool cand_better(sample_candidate a, sample_candidate b)
{
    return a.logit > b.logit || (a.logit == b.logit && a.token < b.token);
}

static int cand_compare_desc(const void *pa, const void *pb)
{
    sample_candidate a = *(const sample_candidate *)pa, b = *(const sample_candidate *)pb;
    return cand_better(a, b) ? -1 : cand_better(b, a) ? 1 : 0;
}

/* Min-heap on cand_better: the root is the worst kept candidate. */
static void heap_sift_down(sample_candidate *h, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && cand_better(h[w], h[l])) w = l;
        if (r < n && cand_better(h[w], h[r])) w = r;
        if (w == i) return;
        sample_candidate t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static void heap_sift_up(sample_candidate *h, int i)
{
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!cand_better(h[parent], h[i])) return;
        sample_candidate t = h[i];
        h[i] = h[parent];
        h[parent] = t;
        i = parent;
    }
}

void sampler_summarize(sampler_workspace *ws, const sampler_row *row, const float *logits_local,
                       int vocab_offset, int n_local, int n_cand, sampler_summary *out)
{
    const sampling_params *p = row->params;
    float *x = ws->processed;
    process_logits(ws, row, logits_local, vocab_offset, n_local, x);

    bool greedy = sampler_is_greedy(p), gumbel = !greedy && !sampler_truncates(p);
    /* The log-sum-exp costs an exp per token; only logprobs and top-p
     * over the whole vocabulary need it. */
    bool need_lse = p->n_logprobs > 0 || (!greedy && p->top_k <= 0 && p->top_p < 1.0f);
    if (ws->heap_cap < n_cand) {
        sample_candidate *h = realloc(ws->heap, (size_t)n_cand * sizeof *h);
        if (h) {
            ws->heap = h;
            ws->heap_cap = n_cand;
        } else {
            n_cand = ws->heap_cap; /* fewer candidates, never a crash */
        }
    }
    double max_logit = -INFINITY;
    int bad = 0, n_finite = 0;
    for (int i = 0; i < n_local; i++) {
        if (isnan(x[i]) || x[i] == INFINITY) bad = 1;
        else if (x[i] > max_logit) max_logit = x[i];
    }
    double sum_exp = 0.0, best_score = -INFINITY;
    float best_logit = -INFINITY;
    int32_t best_token = -1;
    int n_heap = 0;
    for (int i = 0; i < n_local; i++) {
        if (!(x[i] > -INFINITY) || x[i] == INFINITY) continue; /* -inf, NaN, +inf */
        n_finite++;
        if (need_lse) sum_exp += exp((double)x[i] - max_logit);
        int32_t token = vocab_offset + i;
        double score = x[i];
        if (gumbel) score += philox_sample_gumbel(p->seed, row->row, row->sample, row->step, (uint32_t)token);
        if (score > best_score) { /* strict: ties keep the lower id */
            best_score = score;
            best_logit = x[i];
            best_token = token;
        }
        sample_candidate c = {x[i], token};
        if (n_heap < n_cand) {
            ws->heap[n_heap] = c;
            heap_sift_up(ws->heap, n_heap++);
        } else if (n_cand > 0 && cand_better(c, ws->heap[0])) {
            ws->heap[0] = c;
            heap_sift_down(ws->heap, n_heap, 0);
        }
    }
    qsort(ws->heap, (size_t)n_heap, sizeof *ws->heap, cand_compare_desc);
    memset(out, 0, sizeof *out);
    out->max_logit = max_logit;
    out->sum_exp = sum_exp;
    out->best_score = best_score;
    out->best_logit = best_logit;
    out->best_token = best_token;
    out->n_cand = n_heap;
    out->bad = bad;
    out->has_more = n_finite > n_heap;
    memcpy(sampler_summary_cand(out), ws->heap, (size_t)n_heap * sizeof *ws->heap);
}

void sampler_summary_merge(const sampler_summary *const *parts, int n_parts, int n_cand,
                           sampler_summary *out)
{
    memset(out, 0, sizeof *out);
    out->max_logit = -INFINITY;
    out->best_score = -INFINITY;
    out->best_logit = -INFINITY;
    out->best_token = -1;
    for (int r = 0; r < n_parts; r++)
        if (parts[r]->max_logit > out->max_logit) out->max_logit = parts[r]->max_logit;
    int total = 0;
    for (int r = 0; r < n_parts; r++) {
        const sampler_summary *s = parts[r];
        out->bad |= s->bad;
        out->has_more |= s->has_more;
        total += s->n_cand;
        if (s->max_logit > -INFINITY) out->sum_exp += s->sum_exp * exp(s->max_logit - out->max_logit);
        if (s->best_token >= 0 &&
            (s->best_score > out->best_score ||
             (s->best_score == out->best_score && (out->best_token < 0 || s->best_token < out->best_token)))) {
            out->best_score = s->best_score;
            out->best_logit = s->best_logit;
            out->best_token = s->best_token;
        }
    }
    /* k-way merge of the sorted candidate lists. */
    int head[n_parts > 0 ? n_parts : 1];
    memset(head, 0, sizeof head);
    sample_candidate *dst = sampler_summary_cand(out);
    int n = 0;
    while (n < n_cand) {
        int pick = -1;
        for (int r = 0; r < n_parts; r++) {
            if (head[r] >= parts[r]->n_cand) continue;
            if (pick < 0 || cand_better(sampler_summary_cand_const(parts[r])[head[r]],
                                        sampler_summary_cand_const(parts[pick])[head[pick]]))
                pick = r;
        }
        if (pick < 0) break;
        dst[n++] = sampler_summary_cand_const(parts[pick])[head[pick]++];
    }
    out->n_cand = n;
    if (total > n) out->has_more = 1;
}

/* The decision half of the sampler: from a merged summary to the token,
 * its logprob and the top-N alternatives (see sampler.h). Every TP rank
 * runs it on the same merged summary and reaches the same token. */
#include "engine/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/philox.h"

/* How many of the merged candidates (best first) top-k, then top-p, then
 * min-p keep. Sets *inexact when the answer may need tokens beyond them. */
static int kept_count(const sampling_params *p, const sampler_summary *m, bool *inexact)
{
    const sample_candidate *c = sampler_summary_cand_const(m);
    /* Only as many candidates as this row alone would have asked for: the
     * batch may carry more (another row's larger top-k), and the row's
     * draw must not depend on its neighbours. */
    int own = sampler_candidates_needed(&p, 1);
    int n = m->n_cand < own ? m->n_cand : own;
    bool has_more = m->has_more || m->n_cand > own;
    *inexact = false;
    if (n == 0) return 0;
    /* cut: some filter stopped by its own rule, so the tokens past the
     * candidates (all worse than every candidate) would be cut too. */
    bool cut = false;
    if (p->top_k > 0) {
        int k = p->top_k < n ? p->top_k : n;
        while (k < n && c[k].logit == c[k - 1].logit) k++; /* HF keeps ties with the k-th */
        if (p->top_k <= n) cut = true;
        n = k;
    }
    double top = c[0].logit;
    if (p->top_p < 1.0f) {
        /* Probabilities over what is left: renormalised over the top-k
         * candidates when top-k ran, else over the whole vocabulary. */
        double z = 0.0;
        if (p->top_k > 0) {
            for (int i = 0; i < n; i++) z += exp((double)c[i].logit - top);
        } else {
            z = m->sum_exp * exp(m->max_logit - top);
        }
        double before = 0.0;
        int k = 0;
        while (k < n && (k == 0 || before < p->top_p)) before += exp((double)c[k++].logit - top) / z;
        if (before >= p->top_p) cut = true;
        n = k;
    }
    if (p->min_p > 0.0f) {
        int k = 1;
        while (k < n && exp((double)c[k].logit - top) >= p->min_p) k++;
        if (k < n) cut = true;
        n = k;
    }
    *inexact = !cut && has_more;
    return n;
}

int sampler_choose(const sampler_row *row, const sampler_summary *m, sample_result *out)
{
    const sampling_params *p = row->params;
    memset(out, 0, sizeof *out);
    out->token = -1;
    if (m->bad || m->best_token < 0 || !(m->max_logit > -INFINITY)) {
        out->error = true;
        return -1;
    }
    const sample_candidate *c = sampler_summary_cand_const(m);
    float logit;
    if (sampler_is_greedy(p) || !sampler_truncates(p)) {
        out->token = m->best_token;
        logit = m->best_logit;
    } else {
        int n = kept_count(p, m, &out->truncated_inexact);
        double best = -INFINITY;
        int pick = 0;
        for (int i = 0; i < n; i++) {
            double s = c[i].logit + philox_sample_gumbel(p->seed, row->row, row->sample, row->step,
                                                         (uint32_t)c[i].token);
            if (s > best) {
                best = s;
                pick = i;
            }
        }
        out->token = c[pick].token;
        logit = c[pick].logit;
    }
    if (p->n_logprobs <= 0) {
        out->logprob = NAN; /* not computed (see sampler_summarize) */
        return 0;
    }
    double log_z = m->max_logit + log(m->sum_exp);
    out->logprob = (float)(logit - log_z);
    int n_top = p->n_logprobs < m->n_cand ? p->n_logprobs : m->n_cand;
    if (n_top > SAMPLER_MAX_LOGPROBS) n_top = SAMPLER_MAX_LOGPROBS;
    for (int i = 0; i < n_top; i++) {
        out->top_tokens[i] = c[i].token;
        out->top_logprobs[i] = (float)(c[i].logit - log_z);
    }
    out->n_top = n_top;
    return 0;
}

static sampler_summary *summarize_whole(sampler_workspace *ws, const sampler_row *row,
                                        const float *logits, int n_vocab, int n_cand)
{
    sampler_summary *s = malloc(sampler_summary_bytes(n_cand));
    if (s) sampler_summarize(ws, row, logits, 0, n_vocab, n_cand, s);
    return s;
}

int sampler_sample(sampler_workspace *ws, const sampler_row *row, const float *logits,
                   int n_vocab, sample_result *out)
{
    const sampling_params *p = row->params;
    int n_cand = sampler_candidates_needed(&p, 1);
    sampler_summary *s = summarize_whole(ws, row, logits, n_vocab, n_cand);
    if (!s) {
        memset(out, 0, sizeof *out);
        out->token = -1;
        out->error = true;
        return -1;
    }
    int rc = sampler_choose(row, s, out);
    free(s);
    return rc;
}

int sampler_distribution(sampler_workspace *ws, const sampler_row *row, const float *logits,
                         int n_vocab, float *probs)
{
    const sampling_params *p = row->params;
    sampler_summary *s = summarize_whole(ws, row, logits, n_vocab, n_vocab);
    int rc = -1;
    if (!s) return -1;
    memset(probs, 0, (size_t)n_vocab * sizeof *probs);
    if (!s->bad && s->best_token >= 0) {
        const sample_candidate *c = sampler_summary_cand_const(s);
        bool inexact;
        int n = sampler_is_greedy(p) ? 1 : sampler_truncates(p) ? kept_count(p, s, &inexact) : s->n_cand;
        double z = 0.0;
        for (int i = 0; i < n; i++) z += exp((double)c[i].logit - c[0].logit);
        for (int i = 0; i < n; i++) probs[c[i].token] = (float)(exp((double)c[i].logit - c[0].logit) / z);
        rc = 0;
    }
    free(s);
    return rc;
}

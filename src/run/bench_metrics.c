/* Run measurements for bench and the report; see bench_metrics.h. */
#include "run/bench_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/memory_plan.h"

void bench_model_cost_make(bench_model_cost *mc, const model_config *c, const tp_plan *p,
                           int weight_elem, double kv_elem)
{
    double H = c->hidden_size, hd = c->head_dim;
    double q = (double)p->heads_local * hd, kv = (double)p->kv_heads_local * hd;
    double inter = p->inter_local, L = c->n_layers, V = p->vocab_local;
    double matmul = H * q + 2 * H * kv + q * H + 3 * H * inter; /* q, k, v, o; gate, up, down */
    double layer = matmul + 2 * H;                              /* + the two norms */
    if (c->attention_bias)
        layer += q + 2 * kv;
    if (c->qk_norm)
        layer += 2 * hd;
    /* lm_head is read in full every step; a tied model reads it as the
     * embedding, an untied one's input embedding only by a few rows */
    double params = L * layer + H /* final norm */ + V * H;
    memset(mc, 0, sizeof *mc);
    mc->weight_bytes = params * weight_elem;
    if (c->quant.method != VB_QUANT_NONE) { /* the projections in their packed layout */
        uint64_t lin = 0, qbytes = memory_plan_layer_qbytes(c, p, &lin);
        mc->weight_bytes += L * ((double)qbytes - (double)lin * weight_elem);
    }
    mc->kv_bytes_per_token = 2.0 * L * kv * kv_elem;
    mc->linear_flops_per_token = 2.0 * L * matmul;
    mc->head_flops_per_row = 2.0 * H * V;
    mc->attn_flops_per_pair = 4.0 * L * p->heads_local * hd;
}

void bench_step_cost(const bench_model_cost *mc, const sched_step_seq *seqs, int n_seqs,
                     double *flops, double *bytes, bool *prefill)
{
    double f = 0, kv_positions = 0;
    bool pre = false;
    for (int i = 0; i < n_seqs; i++) {
        const sched_step_seq *q = &seqs[i];
        double n = q->n_tokens, s = q->start;
        /* tokens at positions s .. s+n-1 attend s+1 .. s+n keys */
        double pairs = n * s + n * (n + 1) / 2;
        f += n * mc->linear_flops_per_token + pairs * mc->attn_flops_per_pair;
        if (q->sample_index >= 0)
            f += mc->head_flops_per_row;
        kv_positions += q->context_len;
        if (!q->is_decode)
            pre = true;
    }
    *flops = f;
    *bytes = mc->weight_bytes + kv_positions * mc->kv_bytes_per_token;
    *prefill = pre;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double at_quantile(const double *v, int64_t n, double q)
{
    double pos = q * (double)(n - 1);
    int64_t lo = (int64_t)pos;
    if (lo >= n - 1)
        return v[n - 1];
    double frac = pos - (double)lo;
    return v[lo] + (v[lo + 1] - v[lo]) * frac;
}

void bench_percentiles(double *v, int64_t n, bench_pct *out)
{
    memset(out, 0, sizeof *out);
    if (n <= 0)
        return;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += v[i];
    out->n = n;
    out->mean = sum / (double)n;
    out->p50 = at_quantile(v, n, 0.50);
    out->p90 = at_quantile(v, n, 0.90);
    out->p99 = at_quantile(v, n, 0.99);
}

void bench_peaks_path(const vb_tuning *t, char *path, size_t len)
{
    if (*t->gpu_peaks)
        snprintf(path, len, "%s", t->gpu_peaks);
    else if (*t->xdg_cache_home)
        snprintf(path, len, "%s/voltbatch/gpu-peaks.json", t->xdg_cache_home);
    else
        snprintf(path, len, "%s/.cache/voltbatch/gpu-peaks.json", *t->home ? t->home : ".");
}

int bench_peaks_load(const char *path, const char *device, bench_peaks *pk, char *why,
                     size_t why_len)
{
    memset(pk, 0, sizeof *pk);
    snprintf(pk->source, sizeof pk->source, "%s", path);
    json_error_t je;
    json_t *root = json_load_file(pk->source, 0, &je);
    if (!root) {
        snprintf(why, why_len, "no measured peaks (%s: %s); run scripts/gpu-peaks on this GPU",
                 pk->source, je.text);
        return -1;
    }
    json_t *e = json_object_get(root, device);
    double bw = json_number_value(json_object_get(e, "copy_bytes_per_s"));
    double fl = json_number_value(json_object_get(e, "gemm_fp16_flops_per_s"));
    int rc = 0;
    if (!json_is_object(e)) {
        snprintf(why, why_len, "%s has no entry for '%s'; run scripts/gpu-peaks on this GPU",
                 pk->source, device);
        rc = -1;
    } else if (!(bw > 0) || !(fl > 0)) {
        snprintf(why, why_len, "%s: '%s' lacks a positive copy_bytes_per_s or "
                               "gemm_fp16_flops_per_s; rerun scripts/gpu-peaks", pk->source, device);
        rc = -1;
    } else {
        pk->copy_bytes_per_s = bw;
        pk->gemm_flops_per_s = fl;
    }
    json_decref(root);
    return rc;
}

double bench_metrics_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int bench_metrics_init(bench_metrics *m, int64_t n_seqs, const bench_model_cost *cost,
                       int total_blocks, vb_backend *sync_b, const vb_tuning *t)
{
    vb_tuning defaults;
    if (!t) {
        vb_tuning_defaults(&defaults);
        t = &defaults;
    }
    memset(m, 0, sizeof *m);
    m->cost = *cost;
    m->n_seqs = n_seqs;
    m->total_blocks = total_blocks;
    m->seq = calloc((size_t)n_seqs + 1, sizeof *m->seq);
    m->cap_first_now = 64;
    m->first_now = malloc((size_t)m->cap_first_now * sizeof *m->first_now);
    m->cap_decode_steps = 1024;
    m->decode_step_s = malloc((size_t)m->cap_decode_steps * sizeof *m->decode_step_s);
    m->cap_work = 1024;
    m->work = malloc((size_t)m->cap_work * sizeof *m->work);
    if (!m->seq || !m->first_now || !m->decode_step_s || !m->work) {
        bench_metrics_free(m);
        return -1;
    }
    bench_peaks_path(t, m->peaks_path, sizeof m->peaks_path);
    bool no_sync = t->step_sync == VB_SYNC_NONE;
    if (sync_b && t->step_sync == VB_SYNC_EVENTS && sync_b->timer_mark &&
        sync_b->timer_seconds) {
        m->timer_b = sync_b;
        no_sync = true;
    }
    if (sync_b && !no_sync) {
        m->sync_buf = sync_b->alloc(sync_b, 4);
        if (!m->sync_buf) {
            bench_metrics_free(m);
            return -1;
        }
        m->sync_b = sync_b;
    }
    m->split_timed = !sync_b || m->sync_buf || m->timer_b;
    return 0;
}

void bench_metrics_free(bench_metrics *m)
{
    free(m->seq);
    free(m->first_now);
    free(m->decode_step_s);
    free(m->work);
    if (m->sync_buf)
        m->sync_b->free(m->sync_b, m->sync_buf);
    m->sync_buf = NULL;
    m->seq = NULL;
    m->first_now = NULL;
    m->decode_step_s = NULL;
    m->work = NULL;
}

void bench_metrics_plan(bench_metrics *m, const sched_step_plan *p, int blocks_used)
{
    if (!m->seq || !m->in_step)
        return;
    double now = bench_metrics_now();
    m->planned = true;
    m->t_planned = now;
    if (m->timer_b)
        m->timer_b->timer_mark(m->timer_b, 0);
    m->n_first_now = 0;
    bench_step_cost(&m->cost, p->seqs, p->n_seqs, &m->cur_flops, &m->cur_bytes, &m->cur_prefill);
    m->cur_tokens = p->n_tokens;
    for (int i = 0; i < p->n_seqs; i++) {
        const sched_step_seq *q = &p->seqs[i];
        if (q->id < 0 || q->id >= m->n_seqs)
            continue;
        bench_seq_times *t = &m->seq[q->id];
        if (t->admit == 0) /* a preempted sequence keeps its first admission */
            t->admit = now;
        if (q->sample_index >= 0 && q->n_generated == 0 && t->first == 0) {
            if (m->n_first_now == m->cap_first_now) {
                int64_t *grown = realloc(m->first_now, 2 * (size_t)m->cap_first_now *
                                                           sizeof *grown);
                if (!grown) /* a latency figure lost, not the run */
                    continue;
                m->first_now = grown;
                m->cap_first_now *= 2;
            }
            m->first_now[m->n_first_now++] = q->id;
        }
    }
    if (blocks_used > m->peak_blocks)
        m->peak_blocks = blocks_used;
    if (p->n_seqs > m->peak_seqs)
        m->peak_seqs = p->n_seqs;
}

/* The finished step's FLOPs and K/V bytes, for the roofline. */
static void keep_work(bench_metrics *m)
{
    if (m->n_work == m->cap_work) {
        bench_step_work *grown = realloc(m->work, 2 * (size_t)m->cap_work * sizeof *grown);
        if (!grown) {
            m->work_lost = true; /* reported null rather than wrong */
            return;
        }
        m->work = grown;
        m->cap_work *= 2;
    }
    m->work[m->n_work].flops = m->cur_flops;
    m->work[m->n_work].kv_bytes = m->cur_bytes - m->cost.weight_bytes;
    m->work[m->n_work].prefill = m->cur_prefill && !m->cur_recorded;
    m->n_work++;
}

void bench_metrics_mark(bench_metrics *m, enum bench_mark what)
{
    if (!m->seq)
        return;
    double now = bench_metrics_now();
    switch (what) {
    case BENCH_STEP_START:
        m->in_step = true;
        m->planned = false;
        m->cur_recorded = false;
        m->t_start = m->t_planned = m->t_forward = m->t_sampled = now;
        break;
    case BENCH_FORWARD_DONE:
        if (m->sync_buf) { /* wait for the queued forward pass (see the header) */
            char four[4];
            m->sync_b->to_host(m->sync_b, four, m->sync_buf, sizeof four);
            now = bench_metrics_now();
        }
        if (m->timer_b && m->in_step)
            m->timer_b->timer_mark(m->timer_b, 1);
        m->t_forward = now;
        break;
    case BENCH_SAMPLED:
        if (m->timer_b && m->in_step)
            m->timer_b->timer_mark(m->timer_b, 2);
        m->t_sampled = now;
        for (int i = 0; i < m->n_first_now; i++)
            m->seq[m->first_now[i]].first = now;
        m->n_first_now = 0;
        break;
    case BENCH_STEP_END: {
        if (!m->in_step || !m->planned)
            break;
        m->in_step = false;
        bench_step_class *c = m->cur_recorded ? &m->graph_record
                              : m->cur_prefill ? &m->prefill
                                               : &m->decode;
        double dt = now - m->t_start;
        c->steps++;
        c->time_s += dt;
        if (m->timer_b) { /* the GPU's stamps: plan, forward done, sampled */
            double fwd = m->timer_b->timer_seconds(m->timer_b, 0, 1);
            double smp = m->timer_b->timer_seconds(m->timer_b, 1, 2);
            if (fwd < 0 || smp < 0)
                m->split_timed = false; /* reported null rather than wrong */
            c->forward_s += fwd > 0 ? fwd : 0;
            c->sample_s += smp > 0 ? smp : 0;
        } else {
            c->forward_s += m->t_forward - m->t_planned;
            c->sample_s += m->t_sampled - m->t_forward;
        }
        c->tokens += m->cur_tokens;
        c->flops += m->cur_flops;
        c->bytes += m->cur_bytes;
        keep_work(m);
        if (c == &m->decode) {
            if (m->n_decode_steps == m->cap_decode_steps) {
                double *grown = realloc(m->decode_step_s, 2 * (size_t)m->cap_decode_steps *
                                                              sizeof *grown);
                if (!grown) /* the percentiles then cover the steps kept */
                    break;
                m->decode_step_s = grown;
                m->cap_decode_steps *= 2;
            }
            m->decode_step_s[m->n_decode_steps++] = dt;
        }
        break;
    }
    }
}

void bench_metrics_graph_recorded(bench_metrics *m)
{
    if (m->in_step)
        m->cur_recorded = true;
}

void bench_metrics_seq_finish(bench_metrics *m, int64_t id, int n_out)
{
    if (!m->seq || id < 0 || id >= m->n_seqs)
        return;
    m->seq[id].finish = bench_metrics_now();
    m->seq[id].n_out = n_out;
}

/* --- the report ----------------------------------------------------- */

static json_t *num_or_null(double v, bool ok)
{
    return ok ? json_real(v) : json_null();
}

static json_t *pct_json(const bench_pct *p)
{
    if (p->n == 0)
        return json_null();
    return json_pack("{s:I, s:f, s:f, s:f, s:f}", "n", (json_int_t)p->n, "p50", p->p50, "p90",
                     p->p90, "p99", p->p99, "mean", p->mean);
}

/* split: forward_s / sample_s / host_s were measured (split_timed) */
static json_t *class_json(const bench_step_class *c, bool split)
{
    double host = c->time_s - c->forward_s - c->sample_s;
    return json_pack("{s:I, s:f, s:o, s:o, s:o, s:f, s:f, s:f, s:o, s:o}", "steps",
                     (json_int_t)c->steps, "time_s", c->time_s, "forward_s",
                     num_or_null(c->forward_s, split), "sample_s", num_or_null(c->sample_s, split),
                     "host_s", num_or_null(host > 0 ? host : 0.0, split), "tokens", c->tokens,
                     "flops", c->flops, "bytes", c->bytes, "flops_per_s",
                     num_or_null(c->flops / c->time_s, c->time_s > 0), "bytes_per_s",
                     num_or_null(c->bytes / c->time_s, c->time_s > 0));
}

/* The four latency figures over the finished sequences. */
static int latency_json(const bench_metrics *m, json_t *out)
{
    int64_t n = m->n_seqs;
    double *ttft = malloc(((size_t)n + 1) * sizeof *ttft);
    double *tpot = malloc(((size_t)n + 1) * sizeof *tpot);
    double *queue = malloc(((size_t)n + 1) * sizeof *queue);
    double *e2e = malloc(((size_t)n + 1) * sizeof *e2e);
    int rc = -1;
    if (ttft && tpot && queue && e2e) {
        /* queue time from the first admission of the run (the engine's start) */
        double t0 = 0;
        for (int64_t i = 0; i < n; i++)
            if (m->seq[i].admit > 0 && (t0 == 0 || m->seq[i].admit < t0))
                t0 = m->seq[i].admit;
        int64_t a = 0, b = 0;
        for (int64_t i = 0; i < n; i++) {
            const bench_seq_times *t = &m->seq[i];
            if (t->admit == 0 || t->first == 0 || t->finish == 0)
                continue;
            ttft[a] = t->first - t->admit;
            queue[a] = t->admit - t0;
            e2e[a] = t->finish - t->admit;
            a++;
            if (t->n_out >= 2)
                tpot[b++] = (t->finish - t->first) / (t->n_out - 1);
        }
        bench_pct p;
        bench_percentiles(ttft, a, &p);
        rc = json_object_set_new(out, "ttft_s", pct_json(&p));
        bench_percentiles(tpot, b, &p);
        rc |= json_object_set_new(out, "tpot_s", pct_json(&p));
        bench_percentiles(queue, a, &p);
        rc |= json_object_set_new(out, "queue_s", pct_json(&p));
        bench_percentiles(e2e, a, &p);
        rc |= json_object_set_new(out, "latency_s", pct_json(&p));
    }
    free(ttft);
    free(tpot);
    free(queue);
    free(e2e);
    return rc;
}

void bench_roofline_of(const bench_step_work *steps, long n, double weight_bytes,
                       const bench_peaks *pk, bench_roofline *out)
{
    memset(out, 0, sizeof *out);
    double weights_s = weight_bytes / pk->copy_bytes_per_s;
    for (long i = 0; i < n; i++) {
        double compute_s = steps[i].flops / pk->gemm_flops_per_s;
        if (compute_s >= weights_s)
            out->compute_s += compute_s;
        else
            out->weights_s += weights_s;
        out->kv_s += steps[i].kv_bytes / pk->copy_bytes_per_s;
        out->bytes_only_s += steps[i].prefill ? compute_s : weights_s;
    }
    out->total_s = out->compute_s + out->weights_s + out->kv_s;
    out->bytes_only_s += out->kv_s;
}

/* roofline_s, roofline_fraction and roofline_parts into j: null without
 * peaks (pk NULL) or when a step's work was lost. Nonzero when out of
 * memory. */
static int roofline_json(const bench_metrics *m, json_t *j, const bench_peaks *pk,
                         double engine_s)
{
    bench_roofline roof = {0};
    bool ok = pk && !m->work_lost;
    if (ok)
        bench_roofline_of(m->work, m->n_work, m->cost.weight_bytes, pk, &roof);
    int rc = json_object_set_new(j, "roofline_s", num_or_null(roof.total_s, ok));
    rc |= json_object_set_new(j, "roofline_fraction",
                              num_or_null(engine_s > 0 ? roof.total_s / engine_s : 0.0,
                                          ok && engine_s > 0));
    rc |= json_object_set_new(j, "roofline_parts",
                              ok ? json_pack("{s:f, s:f, s:f, s:f}", "compute_s", roof.compute_s,
                                             "weights_s", roof.weights_s, "kv_s", roof.kv_s,
                                             "bytes_only_s", roof.bytes_only_s)
                                 : json_null());
    return rc;
}

json_t *bench_metrics_json(const bench_metrics *m, const char *device, double engine_s)
{
    if (!m->seq)
        return json_null();
    json_t *j = json_object();
    if (!j || latency_json(m, j)) {
        json_decref(j);
        return NULL;
    }
    double *steps = malloc(((size_t)m->n_decode_steps + 1) * sizeof *steps);
    if (!steps) {
        json_decref(j);
        return NULL;
    }
    memcpy(steps, m->decode_step_s, (size_t)m->n_decode_steps * sizeof *steps);
    bench_pct dp;
    bench_percentiles(steps, m->n_decode_steps, &dp);
    free(steps);

    bench_peaks pk;
    char why[768] = "";
    bool have = false;
    if (!device)
        snprintf(why, sizeof why, "CPU backend: no measured peaks");
    else
        have = bench_peaks_load(m->peaks_path, device, &pk, why, sizeof why) == 0;
    const bench_step_class *pre = &m->prefill, *dec = &m->decode;
    double all_t = pre->time_s + dec->time_s, all_f = pre->flops + dec->flops;
    double mbu = 0, mbu_fwd = 0, mfu = 0, mfu_pre = 0;
    bool ok_mbu = have && dec->time_s > 0, ok_fwd = have && m->split_timed && dec->forward_s > 0,
         ok_mfu = have && all_t > 0, ok_pre = have && pre->time_s > 0;
    if (ok_mbu)
        mbu = dec->bytes / dec->time_s / pk.copy_bytes_per_s;
    /* the same over the forward pass alone: what the kernels reach, apart
     * from the host's share of the step */
    if (ok_fwd)
        mbu_fwd = dec->bytes / dec->forward_s / pk.copy_bytes_per_s;
    if (ok_mfu)
        mfu = all_f / all_t / pk.gemm_flops_per_s;
    if (ok_pre)
        mfu_pre = pre->flops / pre->time_s / pk.gemm_flops_per_s;

    int rc = json_object_set_new(j, "decode_step_s", pct_json(&dp));
    rc |= json_object_set_new(
        j, "kv_cache",
        json_pack("{s:i, s:i, s:f, s:i}", "peak_blocks", m->peak_blocks, "total_blocks",
                  m->total_blocks, "peak_fraction",
                  m->total_blocks ? (double)m->peak_blocks / m->total_blocks : 0.0, "peak_seqs",
                  m->peak_seqs));
    rc |= json_object_set_new(j, "steps",
                              json_pack("{s:o, s:o, s:o}", "prefill",
                                        class_json(pre, m->split_timed), "decode",
                                        class_json(dec, m->split_timed), "graph_record",
                                        class_json(&m->graph_record, m->split_timed)));
    rc |= json_object_set_new(
        j, "per_step",
        json_pack("{s:f, s:f}", "weight_bytes", m->cost.weight_bytes, "kv_bytes_per_token",
                  m->cost.kv_bytes_per_token));
    rc |= json_object_set_new(j, "device", device ? json_string(device) : json_string("cpu"));
    rc |= json_object_set_new(
        j, "peaks",
        have ? json_pack("{s:f, s:f, s:s}", "copy_bytes_per_s", pk.copy_bytes_per_s,
                         "gemm_fp16_flops_per_s", pk.gemm_flops_per_s, "source", pk.source)
             : json_null());
    if (!have)
        rc |= json_object_set_new(j, "peaks_note", json_string(why));
    rc |= json_object_set_new(j, "mbu", num_or_null(mbu, ok_mbu));
    rc |= json_object_set_new(j, "mbu_forward", num_or_null(mbu_fwd, ok_fwd));
    rc |= json_object_set_new(j, "mfu", num_or_null(mfu, ok_mfu));
    rc |= json_object_set_new(j, "mfu_prefill", num_or_null(mfu_pre, ok_pre));
    rc |= roofline_json(m, j, have ? &pk : NULL, engine_s);
    if (rc) {
        json_decref(j);
        return NULL;
    }
    return j;
}

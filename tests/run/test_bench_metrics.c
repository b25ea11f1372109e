/* bench_metrics: the per-step bytes / FLOPs accounting, percentiles and the
 * MBU / MFU arithmetic against numbers computed by hand (below each check),
 * the peaks cache lookup, and the hooks' bookkeeping on a made-up run of
 * three sequences. No timing is asserted: only counts and the arithmetic
 * on figures the test sets itself. */
#include "harness.h"

#include <stdlib.h>
#include <unistd.h>

#include "bench/decode_step_7b.h"
#include "run/bench_metrics.h"

/* hidden 64, 2 layers, 4 heads of 16, 2 KV heads, intermediate 176, vocab
 * 256, untied, q/k/v bias (Qwen2-like) */
static model_config tiny_config(void)
{
    model_config c;
    memset(&c, 0, sizeof c);
    c.hidden_size = 64;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.head_dim = 16;
    c.intermediate_size = 176;
    c.vocab_size = 256;
    c.attention_bias = true;
    return c;
}

static tp_plan plan_of(int tp)
{
    tp_plan p = {.tp = tp, .rank = 0, .heads_local = 4 / tp, .kv_heads_local = 2 / tp,
                 .inter_local = 176 / tp, .vocab_local = 256 / tp};
    return p;
}

static void test_model_cost(void)
{
    model_config c = tiny_config();
    tp_plan p = plan_of(1);
    bench_model_cost mc;
    bench_model_cost_make(&mc, &c, &p, 2, 2);
    /* matmul per layer: q 64x64 + k, v 2 x 64x32 + o 64x64 + 3 x 64x176 = 46080;
     * layer params 46080 + 2 norms (128) + bias (64 + 32 + 32) = 46336;
     * weights read: 2 x 46336 + final norm 64 + lm_head 256x64 = 109120
     * (the untied input embedding is not read in full): x 2 bytes */
    CHECK_NEAR(mc.weight_bytes, 218240, 0);
    CHECK_NEAR(mc.kv_bytes_per_token, 2 * 2 * 32 * 2, 0); /* K+V x layers x 2 heads x 16 x fp16 */
    CHECK_NEAR(mc.linear_flops_per_token, 2 * 2 * 46080, 0);
    CHECK_NEAR(mc.head_flops_per_row, 2 * 64 * 256, 0);
    CHECK_NEAR(mc.attn_flops_per_pair, 4 * 2 * 4 * 16, 0);

    /* AWQ 4-bit, groups of 32: the seven projections read packed. Per
     * layer q 64x64: 2048 + 64 x 2 groups x 4 = 2560; k, v 32x64: 1280
     * each; o 2560; gate, up 176x64: 5632 + 1408 = 7040 each; down 64x176:
     * 5632 + 64 x 6 x 4 = 7168; 28928 in all, against 46080 x 2 in fp16 */
    bench_model_cost qm;
    model_config cq = c;
    cq.quant.method = VB_QUANT_AWQ;
    cq.quant.bits = 4;
    cq.quant.group_size = 32;
    bench_model_cost_make(&qm, &cq, &p, 2, 2);
    CHECK_NEAR(qm.weight_bytes, 218240 - 2 * (2 * 46080) + 2 * 28928, 0);
    CHECK_NEAR(qm.linear_flops_per_token, mc.linear_flops_per_token, 0); /* same FLOPs */

    /* tied: the lm_head is the embedding, read once either way */
    c.tie_word_embeddings = true;
    bench_model_cost tied;
    bench_model_cost_make(&tied, &c, &p, 2, 2);
    CHECK_NEAR(tied.weight_bytes, mc.weight_bytes, 0);

    /* tp 2 halves every split matrix: matmul per layer 23040 */
    c.tie_word_embeddings = false;
    tp_plan p2 = plan_of(2);
    bench_model_cost half;
    bench_model_cost_make(&half, &c, &p2, 2, 2);
    CHECK_NEAR(half.linear_flops_per_token, 2 * 2 * 23040, 0);
    CHECK_NEAR(half.attn_flops_per_pair, 4 * 2 * 2 * 16, 0);
    CHECK_NEAR(half.head_flops_per_row, 2 * 64 * 128, 0);
    /* 2 x (23040 + 128 + 64) + 64 + 128x64 = 54720 params, fp32 on the CPU */
    bench_model_cost cpu;
    bench_model_cost_make(&cpu, &c, &p2, 4, 4);
    CHECK_NEAR(cpu.weight_bytes, 54720.0 * 4, 0);
}

/* The 7B decode step the micro-benchmarks divide by (bench_sampler's
 * "% decode step") is the one bench counts: 14,141,238,272 bytes of
 * weights by hand (28 x (233,046,016 projections + 7,168 norms + 4,608
 * biases) + 3,584 + 544,997,376 lm_head, x 2 bytes; the untied input
 * embedding not read), not the 15.23e9 the GPU holds. */
static void test_decode_step_7b(void)
{
    model_config c;
    memset(&c, 0, sizeof c);
    c.hidden_size = 3584;
    c.n_layers = 28;
    c.n_heads = 28;
    c.n_kv_heads = 4;
    c.head_dim = 128;
    c.intermediate_size = 18944;
    c.vocab_size = 152064;
    c.attention_bias = true;
    tp_plan p = {.tp = 1, .heads_local = 28, .kv_heads_local = 4, .inter_local = 18944,
                 .vocab_local = 152064};
    bench_model_cost mc;
    bench_model_cost_make(&mc, &c, &p, 2, 2);
    CHECK_NEAR(mc.weight_bytes, 14141238272.0, 0);
    CHECK_NEAR(QWEN7B_STEP_WEIGHT_BYTES, mc.weight_bytes, 0);
    CHECK_NEAR(QWEN7B_KV_BYTES_PER_POSITION, mc.kv_bytes_per_token, 0);
}

static void test_step_cost(void)
{
    model_config c = tiny_config();
    tp_plan p = plan_of(1);
    bench_model_cost mc;
    bench_model_cost_make(&mc, &c, &p, 2, 2);
    sched_step_seq s[2] = {
        /* a decode at position 9: attends 10 keys */
        {.id = 1, .start = 9, .n_tokens = 1, .context_len = 10, .sample_index = 0,
         .n_generated = 3, .is_decode = true},
        /* a whole 4-token prompt: 1 + 2 + 3 + 4 = 10 pairs */
        {.id = 0, .start = 0, .n_tokens = 4, .context_len = 4, .sample_index = 1},
    };
    double flops = 0, bytes = 0;
    bool prefill = false;
    bench_step_cost(&mc, s, 2, &flops, &bytes, &prefill);
    /* 5 tokens x 184320 + 20 pairs x 512 + 2 sampled rows x 32768 */
    CHECK_NEAR(flops, 997376, 0);
    /* weights 218240 + 14 positions x 256 */
    CHECK_NEAR(bytes, 221824, 0);
    CHECK(prefill);

    /* a chunk in the middle of a prompt: positions 8..11 attend 9..12 keys
     * (42 pairs), nothing sampled */
    sched_step_seq chunk = {.id = 0, .start = 8, .n_tokens = 4, .context_len = 12,
                            .sample_index = -1};
    bench_step_cost(&mc, &chunk, 1, &flops, &bytes, &prefill);
    CHECK_NEAR(flops, 4 * 184320.0 + 42 * 512.0, 0);
    CHECK(prefill);
    bench_step_cost(&mc, s, 1, &flops, &bytes, &prefill);
    CHECK(!prefill);
    CHECK_NEAR(flops, 184320.0 + 10 * 512 + 32768, 0);
}

static void test_percentiles(void)
{
    double v[5] = {5, 1, 4, 2, 3};
    bench_pct p;
    bench_percentiles(v, 5, &p);
    CHECK_INT_EQ(p.n, 5);
    CHECK_NEAR(p.p50, 3, 1e-12);
    CHECK_NEAR(p.p90, 4.6, 1e-12); /* rank 0.9 x 4 = 3.6: 4 + 0.6 x (5 - 4) */
    CHECK_NEAR(p.p99, 4.96, 1e-12);
    CHECK_NEAR(p.mean, 3, 1e-12);
    double one = 0.25;
    bench_percentiles(&one, 1, &p);
    CHECK_NEAR(p.p50, 0.25, 0);
    CHECK_NEAR(p.p99, 0.25, 0);
    bench_percentiles(NULL, 0, &p);
    CHECK_INT_EQ(p.n, 0);
}

static char peaks_path[256];
static vb_tuning knobs; /* the defaults, the peaks cache at peaks_path */

static void write_peaks(void)
{
    snprintf(peaks_path, sizeof peaks_path, "/tmp/test_bench_metrics_%d.json", (int)getpid());
    FILE *f = fopen(peaks_path, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs("{\"Test GPU\": {\"copy_bytes_per_s\": 2e12, \"gemm_fp16_flops_per_s\": 1e15},"
          " \"Broken GPU\": {\"copy_bytes_per_s\": 0}}\n", f);
    fclose(f);
    vb_tuning_defaults(&knobs);
    snprintf(knobs.gpu_peaks, sizeof knobs.gpu_peaks, "%s", peaks_path);
}

static void test_peaks(void)
{
    bench_peaks pk;
    char why[768];
    CHECK_INT_EQ(bench_peaks_load(peaks_path, "Test GPU", &pk, why, sizeof why), 0);
    CHECK_NEAR(pk.copy_bytes_per_s, 2e12, 0);
    CHECK_NEAR(pk.gemm_flops_per_s, 1e15, 0);
    CHECK_STR_EQ(pk.source, peaks_path);
    CHECK_INT_EQ(bench_peaks_load(peaks_path, "Other GPU", &pk, why, sizeof why), -1);
    CHECK(strstr(why, "no entry for 'Other GPU'") != NULL);
    CHECK_INT_EQ(bench_peaks_load(peaks_path, "Broken GPU", &pk, why, sizeof why), -1);
    CHECK_INT_EQ(bench_peaks_load("/nonexistent/peaks.json", "Test GPU", &pk, why, sizeof why),
                 -1);
    CHECK(strstr(why, "scripts/gpu-peaks") != NULL);
}

/* Where the peaks cache is: VB_GPU_PEAKS, else under XDG_CACHE_HOME, else
 * under HOME, else under the working folder. */
static void test_peaks_path(void)
{
    vb_tuning t;
    vb_tuning_defaults(&t);
    char path[VB_TUNING_PATH_MAX + 64];
    bench_peaks_path(&t, path, sizeof path);
    CHECK_STR_EQ(path, "./.cache/voltbatch/gpu-peaks.json");
    strcpy(t.home, "/home/u");
    bench_peaks_path(&t, path, sizeof path);
    CHECK_STR_EQ(path, "/home/u/.cache/voltbatch/gpu-peaks.json");
    strcpy(t.xdg_cache_home, "/cache");
    bench_peaks_path(&t, path, sizeof path);
    CHECK_STR_EQ(path, "/cache/voltbatch/gpu-peaks.json");
    strcpy(t.gpu_peaks, "/site/peaks.json");
    bench_peaks_path(&t, path, sizeof path);
    CHECK_STR_EQ(path, "/site/peaks.json");
}

static double num(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    CHECK(json_is_number(v));
    return json_number_value(v);
}

/* MBU and MFU from step figures the test sets. */
static void test_utilisation(void)
{
    bench_model_cost mc = {0};
    bench_metrics m;
    CHECK_INT_EQ(bench_metrics_init(&m, 2, &mc, 100, NULL, &knobs), 0);
    m.decode.steps = 10;
    m.decode.time_s = 2.0;
    m.decode.forward_s = 1.5;
    m.decode.bytes = 3e12;
    m.decode.flops = 0.5e15;
    m.prefill.steps = 1;
    m.prefill.time_s = 1.0;
    m.prefill.flops = 1.0e15;
    m.peak_blocks = 25;
    json_t *j = bench_metrics_json(&m, "Test GPU", 0.0);
    CHECK(j != NULL);
    /* 3e12 bytes / 2 s / 2e12 bytes/s */
    CHECK_NEAR(num(j, "mbu"), 0.75, 1e-12);
    CHECK_NEAR(num(j, "mbu_forward"), 1.0, 1e-12); /* 3e12 / 1.5 s / 2e12 */
    /* (1e15 + 0.5e15) FLOPs / 3 s / 1e15 FLOP/s */
    CHECK_NEAR(num(j, "mfu"), 0.5, 1e-12);
    CHECK_NEAR(num(j, "mfu_prefill"), 1.0, 1e-12);
    CHECK_NEAR(num(json_object_get(j, "kv_cache"), "peak_fraction"), 0.25, 1e-12);
    CHECK(json_is_object(json_object_get(j, "peaks")));
    CHECK(json_is_null(json_object_get(j, "roofline_fraction"))); /* no engine time */
    json_decref(j);

    /* unknown GPU and the CPU: null, and a note why */
    j = bench_metrics_json(&m, "Other GPU", 10.0);
    CHECK(json_is_null(json_object_get(j, "mbu")));
    CHECK(json_is_null(json_object_get(j, "mbu_forward")));
    CHECK(json_is_null(json_object_get(j, "mfu")));
    CHECK(json_is_string(json_object_get(j, "peaks_note")));
    CHECK(json_is_null(json_object_get(j, "roofline_s")));
    CHECK(json_is_null(json_object_get(j, "roofline_fraction")));
    json_decref(j);
    j = bench_metrics_json(&m, NULL, 10.0);
    CHECK(json_is_null(json_object_get(j, "mfu_prefill")));
    CHECK(json_is_null(json_object_get(j, "roofline_s")));
    CHECK(json_is_null(json_object_get(j, "peaks")));
    CHECK_STR_EQ(json_string_value(json_object_get(j, "device")), "cpu");
    json_decref(j);
    bench_metrics_free(&m);
}

/* The roofline: each step bounded by the larger of its weight reads at the
 * copy bandwidth and its FLOPs at the GEMM peak, plus its K/V at the copy
 * bandwidth (bench_metrics.h). Peaks: 2e12 bytes/s, 1e15 FLOP/s; weights
 * 1e10 bytes, 5 ms a step at the copy bandwidth. */
static void test_roofline(void)
{
    bench_peaks pk = {.copy_bytes_per_s = 2e12, .gemm_flops_per_s = 1e15};
    bench_step_work steps[] = {
        {.flops = 3e14, .kv_bytes = 2e11, .prefill = true}, /* prompt step: 0.3 s of FLOPs + 0.1 s K/V */
        {.flops = 1e12, .kv_bytes = 4e10},  /* small decode: 5 ms of weights + 20 ms K/V */
        {.flops = 8e12, .kv_bytes = 0},     /* big decode: 8 ms of FLOPs > 5 ms weights */
        {.flops = 5e12, .kv_bytes = 1e9},   /* the tie counts as compute: 5 ms + 0.5 ms */
    };
    bench_roofline r;
    bench_roofline_of(steps, 4, 1e10, &pk, &r);
    CHECK_NEAR(r.compute_s, 0.3 + 0.008 + 0.005, 1e-12);
    CHECK_NEAR(r.weights_s, 0.005, 1e-12);
    CHECK_NEAR(r.kv_s, 0.1 + 0.02 + 0.0005, 1e-12);
    CHECK_NEAR(r.total_s, r.compute_s + r.weights_s + r.kv_s, 1e-15);
    /* the old definition: decode steps by their weight reads only */
    CHECK_NEAR(r.bytes_only_s, 0.3 + 3 * 0.005 + r.kv_s, 1e-12);
    /* no steps: no time */
    bench_roofline_of(steps, 0, 1e10, &pk, &r);
    CHECK_NEAR(r.total_s, 0, 0);

    /* through the report: the steps the hooks kept */
    bench_model_cost mc = {0};
    mc.weight_bytes = 1e10;
    bench_metrics m;
    CHECK_INT_EQ(bench_metrics_init(&m, 2, &mc, 100, NULL, &knobs), 0);
    memcpy(m.work, steps, sizeof steps);
    m.n_work = 4;
    m.decode.time_s = 3.0;
    json_t *j = bench_metrics_json(&m, "Test GPU", 8.0);
    CHECK(j != NULL);
    double want = 0.313 + 0.005 + 0.1205;
    CHECK_NEAR(num(j, "roofline_s"), want, 1e-9);
    CHECK_NEAR(num(j, "roofline_fraction"), want / 8.0, 1e-12);
    json_t *parts = json_object_get(j, "roofline_parts");
    CHECK_NEAR(num(parts, "compute_s"), 0.313, 1e-12);
    CHECK_NEAR(num(parts, "weights_s"), 0.005, 1e-12);
    CHECK_NEAR(num(parts, "kv_s"), 0.1205, 1e-12);
    CHECK_NEAR(num(parts, "bytes_only_s"), 0.3 + 0.015 + 0.1205, 1e-12);
    json_decref(j);
    /* a step whose work was lost: no roofline rather than a wrong one */
    m.work_lost = true;
    j = bench_metrics_json(&m, "Test GPU", 8.0);
    CHECK(json_is_null(json_object_get(j, "roofline_s")));
    CHECK(json_is_null(json_object_get(j, "roofline_parts")));
    json_decref(j);
    bench_metrics_free(&m);
}

/* The report of a run whose step split was not measured: MBU still a
 * number, the split and mbu_forward null. */
static void check_split_null(json_t *j)
{
    CHECK(json_is_number(json_object_get(j, "mbu")));
    CHECK(json_is_null(json_object_get(j, "mbu_forward")));
    json_t *dec = json_object_get(json_object_get(j, "steps"), "decode");
    CHECK(json_is_null(json_object_get(dec, "forward_s")));
    CHECK(json_is_null(json_object_get(dec, "sample_s")));
    CHECK(json_is_null(json_object_get(dec, "host_s")));
}

/* A GPU backend not waited for (VB_STEP_SYNC=0): whole steps and MBU as
 * before, the forward / sampling / host split and mbu_forward null, not
 * the launch-time figures the marks would then hold. */
static void test_unsynced_split(void)
{
    bench_model_cost mc = {0};
    bench_metrics m;
    vb_backend gpu_like = {0}; /* never called: no sync buffer is made */
    vb_tuning unsynced = knobs;
    unsynced.step_sync = VB_SYNC_NONE;
    CHECK_INT_EQ(bench_metrics_init(&m, 1, &mc, 10, &gpu_like, &unsynced), 0);
    CHECK(!m.split_timed);
    m.decode.steps = 10;
    m.decode.time_s = 2.0;
    m.decode.forward_s = 0.001; /* launch time only */
    m.decode.bytes = 3e12;
    json_t *j = bench_metrics_json(&m, "Test GPU", 0.0);
    CHECK(j != NULL);
    CHECK_NEAR(num(j, "mbu"), 0.75, 1e-12);
    CHECK_NEAR(num(json_object_get(json_object_get(j, "steps"), "decode"), "time_s"), 2.0, 1e-12);
    check_split_null(j);
    json_decref(j);
    bench_metrics_free(&m);

    /* the CPU backend needs no wait: its split is measured */
    CHECK_INT_EQ(bench_metrics_init(&m, 1, &mc, 10, NULL, &knobs), 0);
    CHECK(m.split_timed);
    bench_metrics_free(&m);
}

/* A backend whose GPU stamps are made up: stamp i at i x 0.25 s, or none
 * readable. */
static int stamps[8], n_stamps;
static bool stamps_unreadable;
static void fake_mark(vb_backend *b, int i)
{
    (void)b;
    stamps[n_stamps++ % 8] = i;
}
static double fake_seconds(vb_backend *b, int from, int to)
{
    (void)b;
    return stamps_unreadable ? -1.0 : (to - from) * 0.25;
}

static void one_decode_step(bench_metrics *m)
{
    sched_step_seq dec = {.id = 0, .start = 4, .n_tokens = 1, .context_len = 5,
                          .sample_index = 0, .n_generated = 1, .is_decode = true};
    sched_step_plan d = {.n_seqs = 1, .seqs = &dec, .n_decode = 1, .n_samples = 1,
                         .n_tokens = 1};
    bench_metrics_mark(m, BENCH_STEP_START);
    bench_metrics_plan(m, &d, 1);
    bench_metrics_mark(m, BENCH_FORWARD_DONE);
    bench_metrics_mark(m, BENCH_SAMPLED);
    bench_metrics_mark(m, BENCH_STEP_END);
}

/* VB_STEP_SYNC=events: the step split comes from the backend's stamps
 * (plan, forward done, sampled), not the host clock; stamps that cannot
 * be read make it null. */
static void test_event_split(void)
{
    bench_model_cost mc = {0};
    bench_metrics m;
    vb_backend gpu_like = {.timer_mark = fake_mark, .timer_seconds = fake_seconds};
    vb_tuning events = knobs;
    events.step_sync = VB_SYNC_EVENTS;
    CHECK_INT_EQ(bench_metrics_init(&m, 1, &mc, 10, &gpu_like, &events), 0);
    CHECK(m.split_timed && m.timer_b == &gpu_like && !m.sync_buf);
    n_stamps = 0;
    stamps_unreadable = false;
    one_decode_step(&m);
    CHECK_INT_EQ(n_stamps, 3);
    CHECK(stamps[0] == 0 && stamps[1] == 1 && stamps[2] == 2);
    CHECK_NEAR(m.decode.forward_s, 0.25, 0);
    CHECK_NEAR(m.decode.sample_s, 0.25, 0);
    json_t *j = bench_metrics_json(&m, "Test GPU", 0.0);
    json_t *dec = json_object_get(json_object_get(j, "steps"), "decode");
    CHECK_NEAR(num(dec, "forward_s"), 0.25, 0);
    json_decref(j);
    stamps_unreadable = true;
    one_decode_step(&m);
    CHECK(!m.split_timed);
    j = bench_metrics_json(&m, "Test GPU", 0.0);
    check_split_null(j);
    json_decref(j);
    bench_metrics_free(&m);

    /* the CPU backend has no stamps to take: its host-clock split stays */
    CHECK_INT_EQ(bench_metrics_init(&m, 1, &mc, 10, NULL, &events), 0);
    CHECK(m.split_timed && !m.timer_b);
    bench_metrics_free(&m);
}

/* The hooks over a made-up run: seq 0 (prompt 4, 3 tokens out) and seq 1
 * (prompt 2, 1 token out) prefill together, then seq 0 decodes twice, once
 * more recording a CUDA graph and once after; seq 2 is never run. */
static void test_hooks(void)
{
    model_config c = tiny_config();
    tp_plan tp = plan_of(1);
    bench_model_cost mc;
    bench_model_cost_make(&mc, &c, &tp, 2, 2);
    bench_metrics m;
    CHECK_INT_EQ(bench_metrics_init(&m, 3, &mc, 64, NULL, &knobs), 0);
    sched_step_seq pre[2] = {
        {.id = 0, .start = 0, .n_tokens = 4, .context_len = 4, .sample_index = 0},
        {.id = 1, .start = 0, .n_tokens = 2, .context_len = 2, .sample_index = 1},
    };
    sched_step_plan p = {.n_seqs = 2, .seqs = pre, .n_samples = 2, .n_tokens = 6};
    bench_metrics_mark(&m, BENCH_STEP_START);
    bench_metrics_plan(&m, &p, 2);
    bench_metrics_mark(&m, BENCH_FORWARD_DONE);
    bench_metrics_mark(&m, BENCH_SAMPLED);
    bench_metrics_seq_finish(&m, 1, 1);
    bench_metrics_mark(&m, BENCH_STEP_END);
    for (int k = 0; k < 2; k++) {
        sched_step_seq dec = {.id = 0, .start = 4 + k, .n_tokens = 1, .context_len = 5 + k,
                              .sample_index = 0, .n_generated = 1 + k, .is_decode = true};
        sched_step_plan d = {.n_seqs = 1, .seqs = &dec, .n_decode = 1, .n_samples = 1,
                             .n_tokens = 1};
        bench_metrics_mark(&m, BENCH_STEP_START);
        bench_metrics_plan(&m, &d, 1 + k * 4);
        bench_metrics_mark(&m, BENCH_FORWARD_DONE);
        bench_metrics_mark(&m, BENCH_SAMPLED);
        if (k == 1)
            bench_metrics_seq_finish(&m, 0, 3);
        bench_metrics_mark(&m, BENCH_STEP_END);
    }
    /* a step stopped before planning is not counted */
    bench_metrics_mark(&m, BENCH_STEP_START);
    bench_metrics_mark(&m, BENCH_STEP_END);
    /* a decode step that recorded a CUDA graph: counted apart, in no
     * decode figure; the next step is a decode step again */
    for (int k = 0; k < 2; k++) {
        sched_step_seq dec = {.id = 0, .start = 6, .n_tokens = 1, .context_len = 7,
                              .sample_index = 0, .n_generated = 3, .is_decode = true};
        sched_step_plan d = {.n_seqs = 1, .seqs = &dec, .n_decode = 1, .n_samples = 1,
                             .n_tokens = 1};
        bench_metrics_mark(&m, BENCH_STEP_START);
        bench_metrics_plan(&m, &d, 5);
        if (k == 0)
            bench_metrics_graph_recorded(&m);
        bench_metrics_mark(&m, BENCH_FORWARD_DONE);
        bench_metrics_mark(&m, BENCH_SAMPLED);
        bench_metrics_mark(&m, BENCH_STEP_END);
    }
    /* outside a step the mark does nothing */
    bench_metrics_graph_recorded(&m);
    CHECK(!m.cur_recorded);

    CHECK_INT_EQ(m.prefill.steps, 1);
    CHECK_INT_EQ(m.decode.steps, 3);
    CHECK_INT_EQ(m.graph_record.steps, 1);
    CHECK_NEAR(m.prefill.tokens, 6, 0);
    CHECK_NEAR(m.decode.tokens, 3, 0);
    CHECK_NEAR(m.graph_record.tokens, 1, 0);
    CHECK_INT_EQ(m.peak_blocks, 5);
    CHECK_INT_EQ(m.peak_seqs, 2); /* the prompt step's two sequences */
    CHECK_INT_EQ(m.n_decode_steps, 3);
    /* weights three times + 5, 6 and 7 positions of KV; the recording
     * step's own 7 positions in its class */
    CHECK_NEAR(m.decode.bytes, 3 * 218240.0 + 18 * 256.0, 0);
    CHECK_NEAR(m.graph_record.bytes, 218240.0 + 7 * 256.0, 0);
    CHECK(m.seq[0].first > 0 && m.seq[1].first > 0 && m.seq[2].admit == 0);
    /* every counted step's work kept for the roofline, in order: the
     * prompt step (6 + 2 positions of K/V), decodes at 5 and 6, the
     * recording step at 7, the last decode at 7 */
    CHECK_INT_EQ(m.n_work, 5);
    const double kv_want[5] = {6 * 256.0, 5 * 256.0, 6 * 256.0, 7 * 256.0, 7 * 256.0};
    for (int i = 0; i < 5 && i < m.n_work; i++)
        CHECK_NEAR(m.work[i].kv_bytes, kv_want[i], 1e-6);
    CHECK_NEAR(m.work[0].flops, m.prefill.flops, 0);
    CHECK(m.work[0].prefill && !m.work[1].prefill && !m.work[3].prefill);

    json_t *j = bench_metrics_json(&m, NULL, 10.0);
    CHECK(j != NULL);
    json_t *ttft = json_object_get(j, "ttft_s"), *tpot = json_object_get(j, "tpot_s");
    CHECK_NEAR(num(ttft, "n"), 2, 0);          /* seq 2 never ran */
    CHECK_NEAR(num(tpot, "n"), 1, 0);          /* seq 1 has one token: no per-token figure */
    CHECK_NEAR(num(json_object_get(j, "decode_step_s"), "n"), 3, 0);
    json_t *steps = json_object_get(j, "steps");
    CHECK_NEAR(num(json_object_get(steps, "decode"), "steps"), 3, 0);
    CHECK_NEAR(num(json_object_get(steps, "graph_record"), "steps"), 1, 0);
    CHECK_NEAR(num(json_object_get(j, "kv_cache"), "peak_blocks"), 5, 0);
    CHECK_NEAR(num(json_object_get(j, "kv_cache"), "peak_seqs"), 2, 0);
    json_decref(j);
    bench_metrics_free(&m);
}

int main(void)
{
    write_peaks();
    RUN_TEST(test_model_cost);
    RUN_TEST(test_decode_step_7b);
    RUN_TEST(test_step_cost);
    RUN_TEST(test_percentiles);
    RUN_TEST(test_peaks);
    RUN_TEST(test_peaks_path);
    RUN_TEST(test_utilisation);
    RUN_TEST(test_roofline);
    RUN_TEST(test_unsynced_split);
    RUN_TEST(test_event_split);
    RUN_TEST(test_hooks);
    unlink(peaks_path);
    return test_summary();
}

/* What a run measures for `bench` and the --report (issue #8): per-row
 * latency, the step-time breakdown, peak KV use, and the bytes and FLOPs
 * each step must move, from which model-bandwidth and model-FLOPs
 * utilisation (MBU, MFU) follow against the GPU's measured peaks
 * (scripts/gpu-peaks caches them).
 *
 * The generate loop calls a few hooks per step (bench_metrics_mark at the
 * step's start, after the forward pass, after sampling and at its end;
 * bench_metrics_plan after scheduling; bench_metrics_seq_finish when a
 * sequence ends). Everything is measured on each rank of a group for its
 * own share of the model; the report (rank 0) shows group 0's figures.
 *
 * Accounting, per rank (so with tp N each GPU is compared with its own
 * peak):
 *   bytes a step must move = the weights it reads (every matrix, the
 *     untied input embedding excepted: a lookup reads only a few rows)
 *     + the K/V of every position attended (context_len per sequence);
 *   FLOPs of a step = 2 x layer matmul parameters x tokens computed
 *     + 2 x hidden x local vocab per sampled row (lm_head)
 *     + 4 x layers x local heads x head_dim per (query, key) pair
 *       (QK^T and PV; causal: a token at position i attends i + 1 keys).
 *   MBU = decode steps' bytes / their time / copy bandwidth (and over
 *     their forward time alone, "mbu_forward");
 *   MFU = all steps' FLOPs / their time / fp16 GEMM peak (and the same
 *     over the steps that hold prompt tokens, "mfu_prefill").
 *   roofline_s, the workload's hardware limit on this rank's GPU: the time
 *     the run could not beat at the measured peaks, summed over its steps
 *     (prefill, decode and graph-recording ones alike):
 *       max(weight_bytes / copy bandwidth, the step's FLOPs / fp16 GEMM peak)
 *     + the K/V bytes of every position the step attends / copy bandwidth;
 *     roofline_fraction = roofline_s / engine_s (the engine's wall time,
 *     load excluded); "roofline_parts" splits roofline_s into compute_s
 *     (the steps whose FLOPs bound them: prompt steps, and decode steps
 *     past ~peak / bandwidth rows, ~180 on an H200, where the projections
 *     are compute-bound), weights_s (the others' weight reads) and kv_s;
 *     "bytes_only_s" is the earlier definition, for comparing with old
 *     figures.
 *     The matmuls and the attention are not assumed to overlap. Not
 *     counted: the logits, activations, sampling and communication.
 *     Before 2026-12-02 the decode steps counted their weight reads only,
 *     never their FLOPs: that limit was below what the GEMM peak allows
 *     once a decode batch passes ~180 rows (7B, 256 rows: 3.4 ms of
 *     weights, 4.8 ms of FLOPs), so it could not be reached there.
 * A step is a decode step when every sequence in it computes one
 * generated token; any prompt token makes it a prefill step. A step that
 * recorded a CUDA graph (bench_metrics_graph_recorded) is neither: its
 * time holds the one-time capture and instantiation of the graph (and the
 * first loads of the kernels in it), ~20 ms at 7B against a 4 ms step,
 * the set-up an engine that captures at start-up does before its first
 * request. It is counted apart ("graph_record") and left out of the
 * decode / prefill figures, MBU and MFU; per-sequence latencies (TTFT,
 * TPOT) keep it.
 *
 * On a GPU the forward pass only queues work; the sampler waits for it.
 * By default (VB_STEP_SYNC=events) the step is split between the two by
 * the backend's GPU time stamps (timer_mark at the plan, the forward mark
 * and the sampled mark, read at the step's end; checked once on an H200:
 * decode steps split as with the wait within 4 %, RESULTS.md session 19);
 * a stamp that cannot be read makes the split null. VB_STEP_SYNC=1 has
 * the forward mark wait for the backend's stream (a 4-byte copy to the
 * host) instead: a few microseconds of launch bubble per step before the
 * sampler's kernels (0.3-1.2 points of a1's MBU on an H200, RESULTS.md),
 * in every GPU run, generate's too: the default until 2026-12-04.
 * VB_STEP_SYNC=0 waits for nothing and reports the split null. */
#ifndef VB_BENCH_METRICS_H
#define VB_BENCH_METRICS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/scheduler.h"
#include "forward/backend.h"
#include "model/model_config.h"
#include "model/tp_plan.h"
#include "util/env.h"

/* What one step costs this rank, from the model's shape alone. */
typedef struct bench_model_cost {
    double weight_bytes;           /* weights one step reads */
    double kv_bytes_per_token;     /* K and V of one position, every layer */
    double linear_flops_per_token; /* 2 x the layers' matmul parameters */
    double head_flops_per_row;     /* 2 x hidden x vocab_local */
    double attn_flops_per_pair;    /* 4 x layers x heads_local x head_dim */
} bench_model_cost;

/* weight_elem: bytes per weight (2 on the GPU, 4 on the CPU backend);
 * the projections of a quantized model count their packed bytes
 * (model/memory_plan.h). kv_elem: bytes per KV-cache element (an int8
 * cache: 1 + its scale's share). */
void bench_model_cost_make(bench_model_cost *mc, const model_config *c, const tp_plan *p,
                           int weight_elem, double kv_elem);

/* The FLOPs and bytes of one planned step; *prefill is true when the step
 * holds any prompt token. */
void bench_step_cost(const bench_model_cost *mc, const sched_step_seq *seqs, int n_seqs,
                     double *flops, double *bytes, bool *prefill);

typedef struct bench_pct {
    int64_t n;
    double p50, p90, p99, mean;
} bench_pct;

/* Percentiles with linear interpolation between the closest ranks (numpy's
 * default); sorts v. n == 0 gives all zeros and n 0. */
void bench_percentiles(double *v, int64_t n, bench_pct *out);

/* The measured peaks of one GPU model. */
typedef struct bench_peaks {
    double copy_bytes_per_s;  /* device-to-device copy, read + write bytes / s */
    double gemm_flops_per_s;  /* fp16 cuBLAS GEMM, fp32 accumulate */
    char source[VB_TUNING_PATH_MAX + 64]; /* the cache file */
} bench_peaks;

/* The peaks cache: t's VB_GPU_PEAKS, else $XDG_CACHE_HOME/voltbatch/gpu-peaks.json,
 * else $HOME/.cache/voltbatch/gpu-peaks.json. Fills `path`. */
void bench_peaks_path(const vb_tuning *t, char *path, size_t len);

/* Looks `device` (cudaDeviceProp.name, e.g. "NVIDIA H200") up in the
 * cache file `path`. Returns 0, or -1 with `why` saying what is missing
 * (never a guessed number). */
int bench_peaks_load(const char *path, const char *device, bench_peaks *pk, char *why,
                     size_t why_len);

/* Time spent in one kind of step. */
typedef struct bench_step_class {
    long steps;
    double time_s;            /* whole steps: scheduling to bookkeeping */
    double forward_s;         /* from the plan to the end of the forward pass: the
                               * step batch, the launches, the GPU's work */
    double sample_s;          /* sampling (with tp: the candidate exchange) */
    double tokens;            /* positions computed */
    double flops, bytes;
} bench_step_class;

typedef struct bench_seq_times {
    double admit, first, finish; /* seconds on the monotonic clock; 0 = not yet */
    int n_out;
} bench_seq_times;

enum bench_mark { BENCH_STEP_START, BENCH_FORWARD_DONE, BENCH_SAMPLED, BENCH_STEP_END };

/* What one counted step asked of the GPU, for the roofline. */
typedef struct bench_step_work {
    double flops;    /* all of the step's FLOPs (bench_step_cost) */
    double kv_bytes; /* K/V of the positions it attends */
    bool prefill;    /* holds a prompt token */
} bench_step_work;

typedef struct bench_metrics {
    bench_model_cost cost;
    int64_t n_seqs;
    bench_seq_times *seq;     /* by sequence id */
    int64_t *first_now;       /* ids whose first token this step samples */
    int n_first_now, cap_first_now;
    double *decode_step_s;    /* every decode step's time, for its percentiles */
    long n_decode_steps, cap_decode_steps;
    bench_step_work *work;    /* every counted step's work, for the roofline */
    long n_work, cap_work;
    bool work_lost;           /* a step's work could not be kept: no roofline */
    /* the step in progress */
    bool in_step, planned, cur_prefill, cur_recorded;
    double t_start, t_planned, t_forward, t_sampled, cur_flops, cur_bytes, cur_tokens;
    bench_step_class prefill, decode, graph_record;
    int peak_blocks, total_blocks;
    int peak_seqs;            /* the most sequences one step computed (decodes and
                               * prefill chunks): the batch the cache allowed */
    vb_backend *sync_b;       /* the GPU backend to wait for at the forward mark */
    void *sync_buf;           /* 4 bytes of its memory */
    vb_backend *timer_b;      /* VB_STEP_SYNC=events: its GPU stamps split the step */
    char peaks_path[VB_TUNING_PATH_MAX + 64]; /* the peaks cache (bench_peaks_path) */
    bool split_timed;         /* forward_s / sample_s measure what they say: the
                               * CPU backend, a GPU one waited for, or its stamps
                               * all read; else (VB_STEP_SYNC=0, an unreadable
                               * stamp) they, host_s and mbu_forward are null */
} bench_metrics;

/* sync_b: the backend whose queued work the forward mark waits for (the
 * GPU's), or NULL (the CPU backend runs synchronously). t: the knobs
 * (VB_STEP_SYNC, where the peaks cache is; util/env.h), or NULL for the
 * defaults. 0, or -1 when out of memory. */
int bench_metrics_init(bench_metrics *m, int64_t n_seqs, const bench_model_cost *cost,
                       int total_blocks, vb_backend *sync_b, const vb_tuning *t);
void bench_metrics_free(bench_metrics *m);

void bench_metrics_mark(bench_metrics *m, enum bench_mark what);
/* After scheduling: the step's cost, admissions, whose first token it
 * samples, and the KV blocks in use. */
void bench_metrics_plan(bench_metrics *m, const sched_step_plan *p, int blocks_used);
void bench_metrics_seq_finish(bench_metrics *m, int64_t id, int n_out);
/* During a step: its forward pass recorded a CUDA graph (see above). */
void bench_metrics_graph_recorded(bench_metrics *m);

/* Seconds on the clock the hooks use. */
double bench_metrics_now(void);

/* The roofline (see the header) and its parts, in seconds. */
typedef struct bench_roofline {
    double compute_s, weights_s, kv_s, total_s;
    double bytes_only_s; /* the definition before 2026-12-02: decode steps'
                          * weight reads, never their FLOPs (the header) */
} bench_roofline;

/* The roofline of n steps that each read weight_bytes of weights, at
 * these peaks. */
void bench_roofline_of(const bench_step_work *steps, long n, double weight_bytes,
                       const bench_peaks *pk, bench_roofline *out);

/* The report's "metrics" object: latency percentiles, step breakdown, KV
 * peak, per-step bytes and FLOPs and, for a GPU with cached peaks, MBU,
 * MFU, roofline_s and roofline_fraction (null otherwise, with
 * "peaks_note" saying why). device: the GPU's name, or NULL for the CPU
 * backend; engine_s: the engine's wall time. NULL when out of memory. */
json_t *bench_metrics_json(const bench_metrics *m, const char *device, double engine_s);

#endif

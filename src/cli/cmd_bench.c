/* `voltbatch bench`: the normal engine on synthetic prompts, for the one
 * figure users choose a batch tool by (issue #8).
 *
 * Rank 0 writes N prompts of --input-len random token ids (after
 * --prefix-len ids every prompt shares) to a scratch folder, every rank
 * runs `generate` on them with --ignore-eos and --output-len new tokens,
 * and rank 0 prints the report's figures: requests/s, prompt and generated
 * tokens/s over the engine time (loading excluded), the load time, and the
 * report's "metrics" (run/bench_metrics.h): latency percentiles, the step
 * breakdown, peak KV use, MBU and MFU against the peaks scripts/gpu-peaks
 * cached. --input FILE benchmarks a real input instead.
 *
 * --length-dist lognormal (issue #19) gives each row its own prompt and
 * output length (run/bench_input.h draws them), the output one as the row's
 * /max_new_tokens, so a mixed-length file is timed like a real one; rank 0
 * adds the workload ("bench": settings and realised totals) to the report,
 * so every figure says which prompts it was measured on. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "cli/generate_options.h"
#include "mpi/dist.h"
#include "mpi/mpi_check.h"
#include "model/model_config.h"
#include "run/bench_input.h"
#include "run/generate_run.h"
#include "util/exit_codes.h"
#include "util/signals.h"

enum { B_MODEL = 256, B_TP, B_INPUT_LEN, B_OUTPUT_LEN, B_NUM_PROMPTS, B_INPUT, B_REPORT,
       B_DEVICE, B_SEED, B_MAX_BATCH, B_MAX_BATCHED_TOKENS, B_NO_PREFIX_CACHE, B_PREFIX_LEN,
       B_GPU_MEM, B_MAX_MODEL_LEN, B_NO_CUDA_GRAPHS, B_BATCH_INVARIANT, B_QUANTIZE, B_KV_CACHE_DTYPE, B_TEMPERATURE, B_TOP_P,
       B_TOP_K, B_MIN_P, B_LENGTH_DIST, B_INPUT_LEN_RANGE, B_OUTPUT_LEN_RANGE, B_KEEP_SCRATCH,
       B_HELP };

static const struct option bench_options[] = {
    {"model", required_argument, NULL, B_MODEL},
    {"tp", required_argument, NULL, B_TP},
    {"input-len", required_argument, NULL, B_INPUT_LEN},
    {"output-len", required_argument, NULL, B_OUTPUT_LEN},
    {"num-prompts", required_argument, NULL, B_NUM_PROMPTS},
    {"input", required_argument, NULL, B_INPUT},
    {"report", required_argument, NULL, B_REPORT},
    {"device", required_argument, NULL, B_DEVICE},
    {"seed", required_argument, NULL, B_SEED},
    {"max-batch", required_argument, NULL, B_MAX_BATCH},
    {"max-batched-tokens", required_argument, NULL, B_MAX_BATCHED_TOKENS},
    {"no-prefix-cache", no_argument, NULL, B_NO_PREFIX_CACHE},
    {"prefix-len", required_argument, NULL, B_PREFIX_LEN},
    {"gpu-memory-utilization", required_argument, NULL, B_GPU_MEM},
    {"max-model-len", required_argument, NULL, B_MAX_MODEL_LEN},
    {"no-cuda-graphs", no_argument, NULL, B_NO_CUDA_GRAPHS},
    {"batch-invariant", no_argument, NULL, B_BATCH_INVARIANT},
    {"quantize", required_argument, NULL, B_QUANTIZE},
    {"kv-cache-dtype", required_argument, NULL, B_KV_CACHE_DTYPE},
    {"temperature", required_argument, NULL, B_TEMPERATURE},
    {"top-p", required_argument, NULL, B_TOP_P},
    {"top-k", required_argument, NULL, B_TOP_K},
    {"min-p", required_argument, NULL, B_MIN_P},
    {"length-dist", required_argument, NULL, B_LENGTH_DIST},
    {"input-len-range", required_argument, NULL, B_INPUT_LEN_RANGE},
    {"output-len-range", required_argument, NULL, B_OUTPUT_LEN_RANGE},
    {"keep-scratch", no_argument, NULL, B_KEEP_SCRATCH},
    {"help", no_argument, NULL, B_HELP},
    {NULL, 0, NULL, 0},
};

static void bench_help(void)
{
    fputs("usage: mpirun -np N voltbatch bench --model DIR [--tp N] [--input-len N]\n"
          "           [--output-len N] [--num-prompts N] [--prefix-len N] [--input FILE]\n"
          "           [--report FILE.json] [--length-dist lognormal\n"
          "           [--input-len-range MIN:MAX] [--output-len-range MIN:MAX]]\n"
          "           [--keep-scratch]\n"
          "\n"
          "Runs the engine on synthetic prompts (random token ids, --ignore-eos) and prints\n"
          "requests/s, prompt / generated tokens/s over the engine time, latency\n"
          "percentiles, the step-time breakdown, peak KV-cache use and, on a GPU whose\n"
          "peaks scripts/gpu-peaks measured, bandwidth and FLOPs utilisation.\n"
          "\n"
          "  --input-len N        prompt tokens of each prompt's own (default 1024); with\n"
          "                       --length-dist lognormal, their mean\n"
          "  --prefix-len N       before them, N tokens every prompt shares (default 0)\n"
          "  --output-len N       generated tokens per prompt (default 256; EOS is ignored,\n"
          "                       each row makes them all); with lognormal, their mean\n"
          "  --length-dist D      fixed (default): every row --input-len and --output-len;\n"
          "                       lognormal: each row's two lengths drawn from\n"
          "                       log-normals of sigma 0.8 (of ln length) and\n"
          "                       mu = ln(mean) - sigma^2 / 2, rounded and clamped to the\n"
          "                       ranges below (the output length is the row's\n"
          "                       /max_new_tokens). The clamps move the mean: 600 in\n"
          "                       16:4096 -> 596.8, 300 in 1:2048 -> 298.4; the report\n"
          "                       records the expected and the realised means. Drawn\n"
          "                       from --seed (SplitMix64; a row's lengths do not depend\n"
          "                       on --num-prompts): the same lengths on every rerun\n"
          "  --input-len-range MIN:MAX\n"
          "                       clamps of the lognormal prompt lengths (default 1 to\n"
          "                       8 x the mean, which must lie inside; --prefix-len adds)\n"
          "  --output-len-range MIN:MAX\n"
          "                       the same for the output lengths\n"
          "  --num-prompts N      prompts (default 512)\n"
          "  --input FILE         benchmark this input file instead of synthetic prompts\n"
          "                       (its rows as they are: --num-prompts, --input-len,\n"
          "                       --prefix-len, --length-dist lognormal are refused)\n"
          "  --report FILE        the generate report (JSON) with every figure\n"
          "  --keep-scratch       leave the scratch folder (prompts.h5, out.h5,\n"
          "                       report.json) and print its path: the exact prompts,\n"
          "                       for a rerun\n"
          "  --temperature F      0 = greedy (the default here); with --top-p, --top-k,\n"
          "                       --min-p as generate, to time sampled runs (the model's\n"
          "                       generation_config.json fills what is not given)\n"
          "  --device, --seed, --max-batch, --max-batched-tokens, --no-prefix-cache,\n"
          "  --gpu-memory-utilization, --max-model-len, --no-cuda-graphs, --quantize,\n"
          "  --kv-cache-dtype, --batch-invariant: as\n"
          "  generate; --seed also draws the synthetic prompts' ids and lengths\n"
          "\n"
          "The report's keys (JSON; times in seconds):\n"
          "  rows_this_run, prompt_tokens, generated_tokens, load_s, engine_s, elapsed_s;\n"
          "  settings: what the command line asked (null: not given); sampling: the\n"
          "    sampling timed (temperature, top_k, top_p, min_p, the three penalties;\n"
          "    max_new_tokens: of rows without their own), generation_config.json's\n"
          "    values and the defaults included;\n"
          "  bench: the workload asked for: length_dist (fixed, lognormal, or input:\n"
          "    --input FILE, then only input), num_prompts, prefix_len, seed,\n"
          "    lognormal_sigma (null when fixed), input_len and output_len: {mean (as\n"
          "    asked), min, max, clamped_mean (the expected mean after the clamps),\n"
          "    realised_mean, tokens (the rows' sum)}, prompt_tokens (with the prefixes),\n"
          "    output_tokens;\n"
          "  group0: steps, prefill_tokens, decode_tokens, prefix_hit_rate, preemptions,\n"
          "    truncated_draws (tokens drawn from a top-p / min-p set the sampler cut);\n"
          "  metrics (group 0, measured on rank 0 for its share of the model):\n"
          "    ttft_s, tpot_s, queue_s, latency_s, decode_step_s: {n, p50, p90, p99, mean}\n"
          "      over sequences (ttft: admission to first token; tpot: first to last\n"
          "      token / (tokens - 1); queue: engine start to admission; latency:\n"
          "      admission to finish) or decode steps; null when none\n"
          "    kv_cache: {peak_blocks, total_blocks, peak_fraction, peak_seqs (the most\n"
          "      sequences one step computed: how many the cache let run at once)}\n"
          "    steps: {prefill, decode, graph_record}: {steps, time_s, forward_s, sample_s,\n"
          "      host_s, tokens, flops, bytes, flops_per_s, bytes_per_s}; a decode step\n"
          "      computes only generated tokens, any prompt token makes it a prefill step,\n"
          "      a step that recorded a CUDA graph (one-time set-up) is graph_record and\n"
          "      in neither (nor in mbu, mfu, decode_step_s; ttft and tpot keep it); forward_s\n"
          "      runs from the plan to the end of the forward pass (on a GPU the mark\n"
          "      waits for the stream), sample_s to the sampled tokens, host_s is the rest;\n"
          "      VB_STEP_SYNC=0: no wait (a few microseconds less a step), and these three\n"
          "      and mbu_forward are null; VB_STEP_SYNC=events: no wait, the split from the\n"
          "      GPU's time stamps (not yet checked on a GPU)\n"
          "    per_step: {weight_bytes, kv_bytes_per_token} this rank reads\n"
          "    device (GPU name or \"cpu\"), peaks: {copy_bytes_per_s,\n"
          "      gemm_fp16_flops_per_s, source} or null with peaks_note saying why\n"
          "    mbu: decode bytes / decode time / copy bandwidth; mbu_forward: the same\n"
          "      over the decode steps' forward_s\n"
          "    mfu: all FLOPs / all step time / fp16 GEMM peak; mfu_prefill: the same over\n"
          "      the prefill steps alone\n"
          "    roofline_s: the workload's hardware limit, summed over steps: max(weight\n"
          "      bytes / copy bandwidth, the step's FLOPs / GEMM peak) + its K/V bytes / copy\n"
          "      bandwidth; roofline_fraction: roofline_s / engine_s; roofline_parts:\n"
          "      {compute_s, weights_s, kv_s} (what bounds the steps) and bytes_only_s\n"
          "      (the definition before 2026-12-02: decode steps' FLOPs not counted)\n"
          "    (null without measured peaks: always on the CPU backend)\n"
          "  Bytes and FLOPs are counted as src/run/bench_metrics.h says: weights read +\n"
          "  K/V attended; 2 x matmul parameters per token + lm_head per sampled row +\n"
          "  attention per (query, key) pair; per rank, against one GPU's peaks.\n"
          "Peaks: $VB_GPU_PEAKS, else $XDG_CACHE_HOME/voltbatch/gpu-peaks.json, else\n"
          "~/.cache/voltbatch/gpu-peaks.json, as scripts/gpu-peaks writes them.\n",
          stdout);
}

/* --- the printed summary: the report's figures, null ones said so --- */

static double num(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static const char *str(json_t *j, const char *key)
{
    const char *v = json_string_value(json_object_get(j, key));
    return v ? v : "?";
}

static void print_pct(json_t *m, const char *key, const char *label)
{
    json_t *p = json_object_get(m, key);
    if (!json_is_object(p)) {
        printf("  %-20s     null (none measured)\n", label);
        return;
    }
    printf("  %-20s p50 %9.2f  p90 %9.2f  p99 %9.2f  mean %9.2f ms  (n %.0f)\n", label,
           1e3 * num(p, "p50"), 1e3 * num(p, "p90"), 1e3 * num(p, "p99"), 1e3 * num(p, "mean"),
           num(p, "n"));
}

static void print_class(json_t *steps, const char *key)
{
    json_t *c = json_object_get(steps, key);
    double t = num(c, "time_s");
    char split[96] = "forward / sampling / host not measured (VB_STEP_SYNC)";
    if (!isnan(num(c, "forward_s")))
        snprintf(split, sizeof split, "forward %5.1f%%, sampling %5.1f%%, host %5.1f%%",
                 t > 0 ? 100 * num(c, "forward_s") / t : 0.0,
                 t > 0 ? 100 * num(c, "sample_s") / t : 0.0,
                 t > 0 ? 100 * num(c, "host_s") / t : 0.0);
    /* a class without steps (a run whose rows end at their prompt step)
     * has no rates: the report's null, said so rather than printed nan */
    char rates[64] = "FLOP/s and B/s null";
    if (!isnan(num(c, "flops_per_s")))
        snprintf(rates, sizeof rates, "%.3g FLOP/s, %.3g B/s", num(c, "flops_per_s"),
                 num(c, "bytes_per_s"));
    printf("  %-7s steps %7.0f %9.3f s: %s; %.3g tokens, %s\n", key, num(c, "steps"), t, split,
           num(c, "tokens"), rates);
}

static void print_util(json_t *m, const char *key, const char *label)
{
    double v = num(m, key);
    if (isnan(v))
        printf("  %-20s     null\n", label);
    else
        printf("  %-20s %8.1f %%\n", label, 100 * v);
}

static void print_summary(json_t *r)
{
    double engine = num(r, "engine_s");
    double rows = num(r, "rows_this_run"), gen = num(r, "generated_tokens"),
           prompt = num(r, "prompt_tokens");
    printf("  load                 %8.2f s\n", num(r, "load_s"));
    printf("  engine               %8.2f s\n", engine);
    if (engine > 0)
        printf("  requests/s           %8.2f\n  prompt tokens/s      %8.1f\n"
               "  generated tokens/s   %8.1f\n",
               rows / engine, prompt / engine, gen / engine);
    json_t *g0 = json_object_get(r, "group0");
    printf("  prefix cache hits    %8.1f %%, preemptions %.0f\n",
           100 * num(g0, "prefix_hit_rate"), num(g0, "preemptions"));
    json_t *m = json_object_get(r, "metrics");
    if (!json_is_object(m)) {
        printf("  metrics              null (the engine did not run)\n");
        return;
    }
    printf("group 0 (rank 0's share of the model):\n");
    print_pct(m, "ttft_s", "time to first token");
    print_pct(m, "tpot_s", "time per output tok");
    print_pct(m, "queue_s", "queue before admit");
    print_pct(m, "latency_s", "admission to finish");
    print_pct(m, "decode_step_s", "decode step");
    json_t *kv = json_object_get(m, "kv_cache");
    printf("  KV cache peak        %8.0f of %.0f blocks (%.1f %%), %.0f sequences at once\n",
           num(kv, "peak_blocks"), num(kv, "total_blocks"), 100 * num(kv, "peak_fraction"),
           num(kv, "peak_seqs"));
    json_t *steps = json_object_get(m, "steps");
    print_class(steps, "prefill");
    print_class(steps, "decode");
    json_t *rec = json_object_get(steps, "graph_record");
    if (num(rec, "steps") > 0)
        printf("  graph recording      %8.0f steps %.3f s (one-time CUDA graph set-up: not in\n"
               "                       the decode and prefill figures, MBU, MFU)\n",
               num(rec, "steps"), num(rec, "time_s"));
    json_t *ps = json_object_get(m, "per_step");
    printf("  per step             %8.3g weight bytes + %.3g KV bytes per context token\n",
           num(ps, "weight_bytes"), num(ps, "kv_bytes_per_token"));
    json_t *pk = json_object_get(m, "peaks");
    if (json_is_object(pk))
        printf("  peaks (%s)  copy %.0f GB/s, fp16 GEMM %.1f TFLOP/s (%s)\n",
               str(m, "device"),
               num(pk, "copy_bytes_per_s") / 1e9, num(pk, "gemm_fp16_flops_per_s") / 1e12,
               str(pk, "source"));
    else
        printf("  peaks                null: %s\n", str(m, "peaks_note"));
    print_util(m, "mbu", "MBU (decode)");
    print_util(m, "mbu_forward", "MBU (decode forward)");
    print_util(m, "mfu", "MFU (all steps)");
    print_util(m, "mfu_prefill", "MFU (prefill steps)");
    double roof = num(m, "roofline_s");
    if (isnan(roof)) {
        printf("  roofline                 null\n");
    } else {
        json_t *parts = json_object_get(m, "roofline_parts");
        printf("  roofline             %8.2f s: the run is at %.1f %% of the hardware limit\n"
               "                       (FLOPs-bound steps %.2f s, weight reads %.2f s, K/V %.2f s)\n",
               roof, 100 * num(m, "roofline_fraction"), num(parts, "compute_s"),
               num(parts, "weights_s"), num(parts, "kv_s"));
    }
}

/* --- the synthetic workload: one length per side, or per-row lengths from a
 * clamped log-normal (issue #19's mixed-length workload f) --- */

#define BENCH_MAX_LEN (1L << 20)

/* One side of the rows (prompt or output lengths). Fixed lengths are their
 * own range (min = max = mean). */
typedef struct bench_len {
    long mean, min, max;
    bool range_given;
    int32_t *rows;    /* rank 0, lognormal: each row's length */
    long long tokens; /* rank 0: the rows' sum */
} bench_len;

typedef struct bench_workload {
    bool lognormal;
    long num_prompts, prefix_len;
    bench_len in, out;
    const char *synthetic_opt; /* the last option given that only shapes
                                * synthetic prompts (NULL: none) */
} bench_workload;

/* MIN:MAX with 1 <= MIN <= MAX <= BENCH_MAX_LEN. */
static int parse_range(const char *opt, const char *s, bench_len *l)
{
    char *end = NULL;
    errno = 0;
    long lo = strtol(s, &end, 10), hi = 0;
    bool ok = end != s && *end == ':' && errno != ERANGE;
    if (ok) {
        const char *m = end + 1;
        hi = strtol(m, &end, 10);
        ok = end != m && *end == '\0' && errno != ERANGE;
    }
    if (!ok)
        cli_usage_error("bench", "%s: '%s' is not MIN:MAX (two integers, e.g. 16:4096)", opt, s);
    else if (lo < 1)
        cli_usage_error("bench", "%s: MIN is %ld; a length is at least 1", opt, lo);
    else if (lo > hi)
        cli_usage_error("bench", "%s: MIN %ld is above MAX %ld", opt, lo, hi);
    else if (hi > BENCH_MAX_LEN)
        cli_usage_error("bench", "%s: MAX %ld is above %ld", opt, hi, BENCH_MAX_LEN);
    else {
        l->min = lo;
        l->max = hi;
        l->range_given = true;
        return 0;
    }
    return -1;
}

/* A lognormal side's clamps: given, or 1 to 8 x the mean (about 0.1 % of
 * rows clamped at sigma 0.8); the mean must lie inside them. */
static int settle_range(const char *mean_opt, const char *range_opt, bench_len *l)
{
    if (!l->range_given) {
        l->min = 1;
        l->max = 8 * l->mean < BENCH_MAX_LEN ? 8 * l->mean : BENCH_MAX_LEN;
    }
    if (l->mean >= l->min && l->mean <= l->max)
        return 0;
    cli_usage_error("bench", "%s %ld (the mean) is outside %s %ld:%ld", mean_opt, l->mean,
                    range_opt, l->min, l->max);
    return -1;
}

/* Once every option is read: the ranges' use checked, the fixed sides made
 * their own range. Returns 0 or -1 after a usage error. */
static int settle_workload(bench_workload *w, bool have_input)
{
    /* an input file's rows are what they are: an option that would shape
     * synthetic ones is refused, not silently ignored */
    if (have_input && w->synthetic_opt && !w->lognormal) {
        cli_usage_error("bench", "%s shapes synthetic prompts; --input FILE brings its own "
                                 "(give one of them)", w->synthetic_opt);
        return -1;
    }
    if (!w->lognormal) {
        const char *opt = w->in.range_given    ? "--input-len-range"
                          : w->out.range_given ? "--output-len-range"
                                               : NULL;
        if (opt) {
            cli_usage_error("bench", "%s needs --length-dist lognormal", opt);
            return -1;
        }
        w->in.min = w->in.max = w->in.mean;
        w->out.min = w->out.max = w->out.mean;
        return 0;
    }
    if (have_input) {
        cli_usage_error("bench", "--length-dist lognormal draws synthetic prompts; --input FILE "
                                 "brings its own (give one of them)");
        return -1;
    }
    return settle_range("--input-len", "--input-len-range", &w->in) ||
           settle_range("--output-len", "--output-len-range", &w->out);
}

/* A row that ends before its output length would time other work than
 * asked: the longest prompt and output must fit the model's length. */
static int check_fits(const bench_workload *w, const model_config *cfg, long max_model_len,
                      vb_err *err)
{
    long limit = max_model_len > 0 ? max_model_len : cfg->max_position_embeddings;
    long need = w->prefix_len + w->in.max + w->out.max;
    if (need <= limit)
        return 0;
    return vb_err_set(err, "prompts of up to %ld tokens (--prefix-len + the longest input) and "
                           "up to %ld new tokens need %ld positions, above the model's %ld "
                           "(--max-model-len, else max_position_embeddings): shorten them",
                      w->prefix_len + w->in.max, w->out.max, need, limit);
}

/* Rank 0: draws the lognormal lengths, sums both sides, writes the prompts. */
static int write_synthetic(const char *path, bench_workload *w, int32_t n_ids, uint64_t seed,
                           vb_err *err)
{
    const int64_t n = w->num_prompts;
    if (w->lognormal) {
        w->in.rows = malloc(sizeof(int32_t) * (size_t)n);
        w->out.rows = malloc(sizeof(int32_t) * (size_t)n);
        if (!w->in.rows || !w->out.rows)
            return vb_err_set(err, "out of memory for %lld prompt lengths", (long long)n);
        bench_lengths_lognormal(w->in.rows, n, (double)w->in.mean, (int32_t)w->in.min,
                                (int32_t)w->in.max, seed, 0);
        bench_lengths_lognormal(w->out.rows, n, (double)w->out.mean, (int32_t)w->out.min,
                                (int32_t)w->out.max, seed, 1);
    }
    w->in.tokens = w->out.tokens = 0;
    for (int64_t r = 0; r < n; r++) {
        w->in.tokens += w->in.rows ? w->in.rows[r] : w->in.mean;
        w->out.tokens += w->out.rows ? w->out.rows[r] : w->out.mean;
    }
    bench_input_spec spec = {
        .n_prompts = n, .prefix_len = (int)w->prefix_len, .input_len = (int)w->in.mean,
        .input_lens = w->in.rows, .output_lens = w->out.rows, .first_id = 0, .n_ids = n_ids,
        .seed = seed,
    };
    return bench_input_write(path, &spec, err);
}

static json_t *side_json(const bench_len *l, bool lognormal, long n)
{
    double expected = lognormal ? bench_lognormal_clamped_mean((double)l->mean, (double)l->min,
                                                               (double)l->max)
                                : (double)l->mean;
    return json_pack("{s:I, s:I, s:I, s:f, s:f, s:I}", "mean", (json_int_t)l->mean, "min",
                     (json_int_t)l->min, "max", (json_int_t)l->max, "clamped_mean", expected,
                     "realised_mean", n > 0 ? (double)l->tokens / (double)n : 0.0, "tokens",
                     (json_int_t)l->tokens);
}

/* The report's "bench": what the figures were measured on, to reproduce
 * them (seed as text: a u64, as the run settings write it). */
static json_t *workload_json(const bench_workload *w, const char *input, uint64_t seed)
{
    if (input)
        return json_pack("{s:s, s:s}", "length_dist", "input", "input", input);
    char seed_text[32];
    snprintf(seed_text, sizeof seed_text, "%llu", (unsigned long long)seed);
    return json_pack("{s:s, s:I, s:I, s:s, s:o, s:o, s:o, s:I, s:I}", "length_dist",
                     w->lognormal ? "lognormal" : "fixed", "num_prompts",
                     (json_int_t)w->num_prompts, "prefix_len", (json_int_t)w->prefix_len, "seed",
                     seed_text, "lognormal_sigma",
                     w->lognormal ? json_real(BENCH_LOGNORMAL_SIGMA) : json_null(), "input_len",
                     side_json(&w->in, w->lognormal, w->num_prompts), "output_len",
                     side_json(&w->out, w->lognormal, w->num_prompts), "prompt_tokens",
                     (json_int_t)(w->prefix_len * w->num_prompts + w->in.tokens),
                     "output_tokens", (json_int_t)w->out.tokens);
}

/* The first line of the summary: which workload ran. */
static void print_workload(const bench_workload *w, const char *input, double rows)
{
    printf("%.0f prompts", rows);
    if (input)
        return;
    printf(" of ");
    if (w->prefix_len)
        printf("%ld shared + ", w->prefix_len);
    if (!w->lognormal) {
        printf("%ld tokens -> %ld tokens", w->in.mean, w->out.mean);
        return;
    }
    printf("lognormal %ld-%ld tokens (mean %.1f) -> %ld-%ld tokens (mean %.1f)", w->in.min,
           w->in.max, (double)w->in.tokens / (double)w->num_prompts, w->out.min, w->out.max,
           (double)w->out.tokens / (double)w->num_prompts);
}

/* Rank 0 after the run: the workload into the report, the summary out. */
static int finish_report(const char *path, const bench_workload *w, const char *input,
                         const run_config *o, const vb_dist *d)
{
    json_error_t je;
    json_t *r = json_load_file(path, 0, &je);
    if (!r) {
        fprintf(stderr, "voltbatch bench: %s: %s\n", path, je.text);
        return VB_EXIT_FAILURE;
    }
    if (json_object_set_new(r, "bench", workload_json(w, input, o->sampling.seed)) ||
        json_dump_file(r, path, JSON_INDENT(2) | JSON_SORT_KEYS)) {
        fprintf(stderr, "voltbatch bench: %s: cannot add the workload to the report\n", path);
        json_decref(r);
        return VB_EXIT_FAILURE;
    }
    printf("bench: %s, tp %d x dp %d, ", o->model_dir, d->tp, d->dp);
    print_workload(w, input, (double)json_integer_value(json_object_get(r, "rows_this_run")));
    printf("%s\n", o->prefix_cache ? "" : ", no prefix cache");
    json_int_t gen = json_integer_value(json_object_get(r, "generated_tokens"));
    if (!input && gen != w->out.tokens)
        printf("  note: %lld tokens generated, the rows asked for %lld (error rows?)\n",
               (long long)gen, w->out.tokens);
    print_summary(r);
    json_decref(r);
    return VB_EXIT_OK;
}

/* The scratch folder bench made: its prompts, the run's output and what
 * a stopped run leaves beside it (journal, temporary file), the report
 * when no --report named one. Only these names: a folder holding anything
 * else stays, and is said to. */
static void remove_scratch(const char *dir)
{
    static const char *const names[] = {"prompts.h5", "out.h5", "out.h5.journal", "out.h5.tmp",
                                        "report.json"};
    char path[PATH_MAX + 32];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    if (rmdir(dir) != 0)
        fprintf(stderr, "voltbatch bench: warning: the scratch folder %s stays: %s\n", dir,
                strerror(errno));
}

int cmd_bench(int argc, char **argv)
{
    static generate_options opts;
    memset(&opts, 0, sizeof opts);
    /* --help before the environment is read (generate's defaults below):
     * a bad VB_* knob is no reason to refuse the help */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            bench_help();
            return VB_EXIT_OK;
        }
    /* generate's defaults, then bench's */
    char *gen_argv[] = {"generate", "--model", "-", "--input", "-", "--output", "-", NULL};
    optind = 1;
    if (generate_options_parse(&opts, 7, gen_argv) != 0) /* the environment knobs: out of range */
        return VB_EXIT_USAGE;
    run_config *o = &opts.run;
    o->command = "bench";
    o->model_dir = NULL;
    o->n_inputs = 0;
    o->sampling.temperature = 0;
    o->ignore_eos = true;
    o->overwrite = true;
    bench_workload w = {.num_prompts = 512, .in.mean = 1024, .out.mean = 256};
    long v = 0;
    bool keep_scratch = false;
    const char *input = NULL, *report = NULL;
    optind = 1;
    int c;
    while ((c = cli_next_option("bench", argc, argv, bench_options)) != -1) {
        const char *opt = cli_option_name(bench_options, c);
        int rc = 0;
        switch (c) {
        case B_MODEL: o->model_dir = optarg; break;
        case B_TP: rc = cli_parse_int("bench", opt, optarg, 1, VB_MAX_TP, &v); o->tp = (int)v; break;
        case B_INPUT_LEN: w.synthetic_opt = "--input-len"; rc = cli_parse_int("bench", opt, optarg, 1, BENCH_MAX_LEN, &w.in.mean); break;
        case B_OUTPUT_LEN: rc = cli_parse_int("bench", opt, optarg, 1, BENCH_MAX_LEN, &w.out.mean); break;
        case B_NUM_PROMPTS: w.synthetic_opt = "--num-prompts"; rc = cli_parse_int("bench", opt, optarg, 1, 1L << 30, &w.num_prompts); break;
        case B_LENGTH_DIST:
            if (strcmp(optarg, "lognormal") == 0) w.lognormal = true;
            else if (strcmp(optarg, "fixed") == 0) w.lognormal = false;
            else { cli_usage_error("bench", "--length-dist: '%s' is not one of fixed, lognormal", optarg); return VB_EXIT_USAGE; }
            break;
        case B_INPUT_LEN_RANGE: rc = parse_range(opt, optarg, &w.in); break;
        case B_OUTPUT_LEN_RANGE: rc = parse_range(opt, optarg, &w.out); break;
        case B_KEEP_SCRATCH: keep_scratch = true; break;
        case B_INPUT: input = optarg; break;
        case B_REPORT: report = optarg; break;
        case B_DEVICE:
            if (strcmp(optarg, "cpu") == 0) o->device = VB_DEVICE_CPU;
            else if (strcmp(optarg, "cuda") == 0) o->device = VB_DEVICE_CUDA;
            else if (strcmp(optarg, "auto") == 0) o->device = VB_DEVICE_AUTO;
            else { cli_usage_error("bench", "--device: '%s' is not one of auto, cpu, cuda", optarg); return VB_EXIT_USAGE; }
            break;
        case B_SEED: rc = cli_parse_u64("bench", opt, optarg, &o->sampling.seed); break;
        case B_MAX_BATCH: rc = cli_parse_int("bench", opt, optarg, 1, 65536, &o->max_batch); break;
        case B_MAX_BATCHED_TOKENS:
            rc = cli_parse_int("bench", opt, optarg, 1, VB_MAX_BATCHED_TOKENS,
                               &o->max_batched_tokens);
            break;
        case B_NO_PREFIX_CACHE: o->prefix_cache = false; break;
        case B_PREFIX_LEN: w.synthetic_opt = "--prefix-len"; rc = cli_parse_int("bench", opt, optarg, 0, BENCH_MAX_LEN, &w.prefix_len); break;
        case B_GPU_MEM:
            rc = cli_parse_double("bench", opt, optarg, VB_MIN_GPU_MEMORY_UTILIZATION, 1.0,
                                  &o->gpu_memory_utilization);
            break;
        case B_MAX_MODEL_LEN:
            rc = cli_parse_int("bench", opt, optarg, 1, VB_MAX_MODEL_LEN, &o->max_model_len);
            break;
        case B_NO_CUDA_GRAPHS: o->cuda_graphs = false; break;
        case B_BATCH_INVARIANT: o->batch_invariant = true; break;
        case B_QUANTIZE:
            if (vb_quantize_parse(optarg, &o->quantize) != 0) {
                cli_usage_error("bench", "--quantize: '%s' is not supported (int8)", optarg);
                return VB_EXIT_USAGE;
            }
            break;
        case B_KV_CACHE_DTYPE:
            if (vb_kv_dtype_parse(optarg, &o->kv_cache_dtype) != 0) {
                cli_usage_error("bench", "--kv-cache-dtype: '%s' is not supported (fp16, int8)",
                                optarg);
                return VB_EXIT_USAGE;
            }
            break;
        case B_TEMPERATURE:
            rc = cli_parse_temperature("bench", opt, optarg, &o->sampling.temperature);
            break;
        case B_TOP_P: rc = cli_parse_double("bench", opt, optarg, 0, 1, &o->sampling.top_p); break;
        case B_TOP_K: rc = cli_parse_int("bench", opt, optarg, 0, 1L << 24, &o->sampling.top_k); break;
        case B_MIN_P: rc = cli_parse_double("bench", opt, optarg, 0, 1, &o->sampling.min_p); break;
        case B_HELP:
        case 'h': bench_help(); return VB_EXIT_OK;
        default: return VB_EXIT_USAGE;
        }
        if (rc)
            return VB_EXIT_USAGE;
    }
    if (optind < argc) {
        cli_usage_error("bench", "unexpected argument '%s'", argv[optind]);
        return VB_EXIT_USAGE;
    }
    if (!o->model_dir) {
        cli_usage_error("bench", "--model DIR is required");
        return VB_EXIT_USAGE;
    }
    /* the report is read back to add the workload: a device or FIFO
     * (/dev/null) would be found only after the whole measurement */
    struct stat rst;
    if (report && stat(report, &rst) == 0 && !S_ISREG(rst.st_mode)) {
        cli_usage_error("bench", "--report %s is not a regular file: bench reads the report "
                        "back to add the workload", report);
        return VB_EXIT_USAGE;
    }
    if (settle_workload(&w, input != NULL))
        return VB_EXIT_USAGE;
    o->max_new_tokens = w.lognormal ? -1 : w.out.mean; /* lognormal: each row's /max_new_tokens */

    /* as generate: a stop signal while MPI and the prompts start (minutes
     * for a large synthetic set) ends in a clean stop, not a kill */
    vb_signals_install();
    vb_dist_init(&argc, &argv);
    vb_dist d = {0};
    vb_err err = {{0}};
    int rank = 0;
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    if (vb_dist_setup(&d, o->tp, &err) != 0) {
        if (rank == 0)
            fprintf(stderr, "voltbatch bench: %s\n", err.msg);
        vb_dist_finalize();
        return VB_EXIT_USAGE;
    }
    /* rank 0 makes the scratch folder and the prompts; everyone gets the path */
    char dir[PATH_MAX] = "", in_path[PATH_MAX + 32] = "", out_path[PATH_MAX + 32] = "",
         rep_path[PATH_MAX + 32] = "";
    int code = 0;
    if (rank == 0) {
        const char *tmp = o->tuning.tmpdir;
        int len = snprintf(dir, sizeof dir, "%s/voltbatch-bench-XXXXXX", *tmp ? tmp : "/tmp");
        model_config cfg;
        if (len < 0 || (size_t)len >= sizeof dir || !mkdtemp(dir)) {
            code = VB_EXIT_FAILURE;
            fprintf(stderr, "voltbatch bench: cannot create a scratch folder %s\n", dir);
            dir[0] = '\0'; /* nothing of ours to remove */
        } else if (!input) {
            snprintf(in_path, sizeof in_path, "%s/prompts.h5", dir);
            if (model_config_load(&cfg, o->model_dir, &err) ||
                check_fits(&w, &cfg, o->max_model_len, &err) ||
                write_synthetic(in_path, &w, cfg.vocab_size < 32000 ? cfg.vocab_size : 32000,
                                o->sampling.seed, &err)) {
                fprintf(stderr, "voltbatch bench: %s\n", err.msg);
                code = VB_EXIT_USAGE;
            }
        }
        /* stopped while the prompts were written: no run to start */
        if (code == 0 && vb_stop_requested())
            code = VB_EXIT_STOPPED;
    }
    MPI_CHECK(MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD));
    MPI_CHECK(MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD));
    if (code == 0) {
        snprintf(in_path, sizeof in_path, "%s/prompts.h5", dir);
        snprintf(out_path, sizeof out_path, "%s/out.h5", dir);
        snprintf(rep_path, sizeof rep_path, "%s/report.json", dir);
        opts.inputs[0] = input ? input : in_path;
        o->n_inputs = 1;
        o->output = out_path;
        o->report = report ? report : rep_path;
        code = generate_run(o, &d);
    }
    if (rank == 0 && code == 0)
        code = finish_report(o->report, &w, input, o, &d);
    if (rank == 0 && code == VB_EXIT_STOPPED)
        fprintf(stderr, "voltbatch bench: stopped by a signal before the end: no figures (bench "
                        "has no --resume; run it again)\n");
    if (rank == 0 && dir[0] && keep_scratch)
        printf("bench: the scratch files stay in %s\n", dir);
    else if (rank == 0 && dir[0]) /* a user's --report lies outside it and stays */
        remove_scratch(dir);
    free(w.in.rows);
    free(w.out.rows);
    vb_dist_free(&d);
    vb_dist_finalize();
    return code;
}

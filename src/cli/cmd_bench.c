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
 * cached. --input FILE benchmarks a real input instead. */
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

enum { B_MODEL = 256, B_TP, B_INPUT_LEN, B_OUTPUT_LEN, B_NUM_PROMPTS, B_INPUT, B_REPORT,
       B_DEVICE, B_SEED, B_MAX_BATCH, B_MAX_BATCHED_TOKENS, B_NO_PREFIX_CACHE, B_PREFIX_LEN,
       B_GPU_MEM, B_MAX_MODEL_LEN, B_NO_CUDA_GRAPHS, B_QUANTIZE, B_TEMPERATURE, B_TOP_P,
       B_TOP_K, B_MIN_P, B_HELP };

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
    {"quantize", required_argument, NULL, B_QUANTIZE},
    {"temperature", required_argument, NULL, B_TEMPERATURE},
    {"top-p", required_argument, NULL, B_TOP_P},
    {"top-k", required_argument, NULL, B_TOP_K},
    {"min-p", required_argument, NULL, B_MIN_P},
    {"help", no_argument, NULL, B_HELP},
    {NULL, 0, NULL, 0},
};

static void bench_help(void)
{
    fputs("usage: mpirun -np N voltbatch bench --model DIR [--tp N] [--input-len N]\n"
          "           [--output-len N] [--num-prompts N] [--prefix-len N] [--input FILE]\n"
          "           [--report FILE.json]\n"
          "\n"
          "Runs the engine on synthetic prompts (random token ids, --ignore-eos) and prints\n"
          "requests/s, prompt / generated tokens/s over the engine time, latency\n"
          "percentiles, the step-time breakdown, peak KV-cache use and, on a GPU whose\n"
          "peaks scripts/gpu-peaks measured, bandwidth and FLOPs utilisation.\n"
          "\n"
          "  --input-len N        prompt tokens of each prompt's own (default 1024)\n"
          "  --prefix-len N       before them, N tokens every prompt shares (default 0)\n"
          "  --output-len N       generated tokens per prompt (default 256)\n"
          "  --num-prompts N      prompts (default 512)\n"
          "  --input FILE         benchmark this input file instead of synthetic prompts\n"
          "  --report FILE        the generate report (JSON) with every figure\n"
          "  --temperature F      0 = greedy (the default here); with --top-p, --top-k,\n"
          "                       --min-p as generate, to time sampled runs (the model's\n"
          "                       generation_config.json fills what is not given)\n"
          "  --device, --seed, --max-batch, --max-batched-tokens, --no-prefix-cache,\n"
          "  --gpu-memory-utilization, --max-model-len, --no-cuda-graphs, --quantize: as\n"
          "  generate\n"
          "\n"
          "The report's keys (JSON; times in seconds):\n"
          "  rows_this_run, prompt_tokens, generated_tokens, load_s, engine_s, elapsed_s;\n"
          "  group0: steps, prefill_tokens, decode_tokens, prefix_hit_rate, preemptions;\n"
          "  metrics (group 0, measured on rank 0 for its share of the model):\n"
          "    ttft_s, tpot_s, queue_s, latency_s, decode_step_s: {n, p50, p90, p99, mean}\n"
          "      over sequences (ttft: admission to first token; tpot: first to last\n"
          "      token / (tokens - 1); queue: engine start to admission; latency:\n"
          "      admission to finish) or decode steps; null when none\n"
          "    kv_cache: {peak_blocks, total_blocks, peak_fraction}\n"
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
          "    mfu: all FLOPs / all step time / fp16 GEMM peak; mfu_prefill: prefill steps'\n"
          "    roofline_s: the workload's hardware limit (prompt steps' FLOPs / GEMM peak\n"
          "      + decode steps' weight reads and every K/V byte attended / copy\n"
          "      bandwidth); roofline_fraction: roofline_s / engine_s\n"
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
    printf("  %-7s steps %7.0f %9.3f s: %s; %.3g tokens, %.3g FLOP/s, %.3g B/s\n", key,
           num(c, "steps"), t, split, num(c, "tokens"), num(c, "flops_per_s"),
           num(c, "bytes_per_s"));
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
    printf("  KV cache peak        %8.0f of %.0f blocks (%.1f %%)\n", num(kv, "peak_blocks"),
           num(kv, "total_blocks"), 100 * num(kv, "peak_fraction"));
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
    if (isnan(roof))
        printf("  roofline                 null\n");
    else
        printf("  roofline             %8.2f s: the run is at %.1f %% of the hardware limit\n",
               roof, 100 * num(m, "roofline_fraction"));
}

int cmd_bench(int argc, char **argv)
{
    static generate_options opts;
    memset(&opts, 0, sizeof opts);
    /* generate's defaults, then bench's */
    char *gen_argv[] = {"generate", "--model", "-", "--input", "-", "--output", "-", NULL};
    optind = 1;
    if (generate_options_parse(&opts, 7, gen_argv) != 0) /* the environment knobs: out of range */
        return VB_EXIT_USAGE;
    run_config *o = &opts.run;
    o->model_dir = NULL;
    o->n_inputs = 0;
    o->sampling.temperature = 0;
    o->ignore_eos = true;
    o->overwrite = true;
    long input_len = 1024, output_len = 256, num_prompts = 512, prefix_len = 0, v = 0;
    const char *input = NULL, *report = NULL;
    optind = 1;
    int c;
    while ((c = cli_next_option("bench", argc, argv, bench_options)) != -1) {
        const char *opt = cli_option_name(bench_options, c);
        int rc = 0;
        switch (c) {
        case B_MODEL: o->model_dir = optarg; break;
        case B_TP: rc = cli_parse_int("bench", opt, optarg, 1, 4096, &v); o->tp = (int)v; break;
        case B_INPUT_LEN: rc = cli_parse_int("bench", opt, optarg, 1, 1L << 20, &input_len); break;
        case B_OUTPUT_LEN: rc = cli_parse_int("bench", opt, optarg, 1, 1L << 20, &output_len); break;
        case B_NUM_PROMPTS: rc = cli_parse_int("bench", opt, optarg, 1, 1L << 30, &num_prompts); break;
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
            rc = cli_parse_int("bench", opt, optarg, 1, 1L << 20, &o->max_batched_tokens);
            break;
        case B_NO_PREFIX_CACHE: o->prefix_cache = false; break;
        case B_PREFIX_LEN: rc = cli_parse_int("bench", opt, optarg, 0, 1L << 20, &prefix_len); break;
        case B_GPU_MEM:
            rc = cli_parse_double("bench", opt, optarg, 0.01, 1.0, &o->gpu_memory_utilization);
            break;
        case B_MAX_MODEL_LEN: rc = cli_parse_int("bench", opt, optarg, 1, 1L << 24, &o->max_model_len); break;
        case B_NO_CUDA_GRAPHS: o->cuda_graphs = false; break;
        case B_QUANTIZE:
            if (vb_quantize_parse(optarg, &o->quantize) != 0) {
                cli_usage_error("bench", "--quantize: '%s' is not supported (int8)", optarg);
                return VB_EXIT_USAGE;
            }
            break;
        case B_TEMPERATURE:
            rc = cli_parse_double("bench", opt, optarg, 0, 100, &o->sampling.temperature);
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
    o->max_new_tokens = output_len;

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
    char dir[PATH_MAX] = "", in_path[PATH_MAX + 32], out_path[PATH_MAX + 32],
         rep_path[PATH_MAX + 32];
    int code = 0;
    if (rank == 0) {
        const char *tmp = o->tuning.tmpdir;
        int len = snprintf(dir, sizeof dir, "%s/voltbatch-bench-XXXXXX", *tmp ? tmp : "/tmp");
        model_config cfg;
        if (len < 0 || (size_t)len >= sizeof dir || !mkdtemp(dir)) {
            code = VB_EXIT_FAILURE;
            fprintf(stderr, "voltbatch bench: cannot create a scratch folder %s\n", dir);
        } else if (!input) {
            snprintf(in_path, sizeof in_path, "%s/prompts.h5", dir);
            if (model_config_load(&cfg, o->model_dir, &err) ||
                bench_input_write(in_path, num_prompts, (int)prefix_len, (int)input_len, 0,
                                  cfg.vocab_size < 32000 ? cfg.vocab_size : 32000,
                                  o->sampling.seed, &err)) {
                fprintf(stderr, "voltbatch bench: %s\n", err.msg);
                code = VB_EXIT_USAGE;
            }
        }
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
    if (rank == 0 && code == 0) {
        json_error_t je;
        json_t *r = json_load_file(o->report, 0, &je);
        if (!r) {
            fprintf(stderr, "voltbatch bench: %s: %s\n", o->report, je.text);
            code = VB_EXIT_FAILURE;
        } else {
            double rows = (double)json_integer_value(json_object_get(r, "rows_this_run"));
            printf("bench: %s, tp %d x dp %d, %.0f prompts", o->model_dir, d.tp, d.dp, rows);
            if (!input && prefix_len)
                printf(" of %ld shared + %ld tokens -> %ld tokens", prefix_len, input_len,
                       output_len);
            else if (!input)
                printf(" of %ld tokens -> %ld tokens", input_len, output_len);
            printf("%s\n", o->prefix_cache ? "" : ", no prefix cache");
            print_summary(r);
            json_decref(r);
        }
    }
    if (rank == 0 && dir[0]) { /* the scratch files; a user's --report stays */
        unlink(in_path);
        unlink(out_path);
        if (!report)
            unlink(rep_path);
        rmdir(dir);
    }
    vb_dist_free(&d);
    vb_dist_finalize();
    return code;
}

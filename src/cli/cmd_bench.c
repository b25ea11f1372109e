/* `voltbatch bench`: the normal engine on synthetic prompts, for the one
 * figure users choose a batch tool by (issue #8).
 *
 * Rank 0 writes N prompts of --input-len random token ids to a scratch
 * folder, every rank runs `generate` on them with --ignore-eos and
 * --output-len new tokens, and rank 0 prints the report's figures:
 * requests/s, prompt and generated tokens/s over the engine time (loading
 * excluded), plus the load time. --input FILE benchmarks a real input
 * instead. Latency percentiles and bandwidth/FLOPs utilisation are still
 * to come (issue #8). */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "cli/generate_options.h"
#include "dist/dist.h"
#include "dist/mpi_check.h"
#include "model/model_config.h"
#include "run/bench_input.h"
#include "run/generate_run.h"
#include "util/exit_codes.h"

enum { B_MODEL = 256, B_TP, B_INPUT_LEN, B_OUTPUT_LEN, B_NUM_PROMPTS, B_INPUT, B_REPORT,
       B_DEVICE, B_SEED, B_MAX_BATCH, B_MAX_BATCHED_TOKENS, B_NO_PREFIX_CACHE, B_HELP };

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
    {"help", no_argument, NULL, B_HELP},
    {NULL, 0, NULL, 0},
};

static void bench_help(void)
{
    fputs("usage: mpirun -np N voltbatch bench --model DIR [--tp N] [--input-len N]\n"
          "           [--output-len N] [--num-prompts N] [--input FILE] [--report FILE.json]\n"
          "\n"
          "Runs the engine on synthetic prompts (random token ids, --ignore-eos) and prints\n"
          "requests/s and prompt / generated tokens/s over the engine time.\n"
          "\n"
          "  --input-len N        prompt tokens (default 1024)\n"
          "  --output-len N       generated tokens per prompt (default 256)\n"
          "  --num-prompts N      prompts (default 512)\n"
          "  --input FILE         benchmark this input file instead of synthetic prompts\n"
          "  --report FILE        the generate report (JSON) with every figure\n"
          "  --device, --seed, --max-batch, --max-batched-tokens, --no-prefix-cache: as generate\n",
          stdout);
}

int cmd_bench(int argc, char **argv)
{
    static generate_options o;
    memset(&o, 0, sizeof o);
    /* generate's defaults, then bench's */
    char *gen_argv[] = {"generate", "--model", "-", "--input", "-", "--output", "-", NULL};
    optind = 1;
    if (generate_options_parse(&o, 7, gen_argv) != 0)
        return VB_EXIT_FAILURE;
    o.model_dir = NULL;
    o.n_inputs = 0;
    o.temperature = 0;
    o.ignore_eos = true;
    o.overwrite = true;
    long input_len = 1024, output_len = 256, num_prompts = 512, v = 0;
    const char *input = NULL, *report = NULL;
    optind = 1;
    int c;
    while ((c = cli_next_option("bench", argc, argv, bench_options)) != -1) {
        const char *opt = cli_option_name(bench_options, c);
        int rc = 0;
        switch (c) {
        case B_MODEL: o.model_dir = optarg; break;
        case B_TP: rc = cli_parse_int("bench", opt, optarg, 1, 4096, &v); o.tp = (int)v; break;
        case B_INPUT_LEN: rc = cli_parse_int("bench", opt, optarg, 1, 1L << 20, &input_len); break;
        case B_OUTPUT_LEN: rc = cli_parse_int("bench", opt, optarg, 1, 1L << 20, &output_len); break;
        case B_NUM_PROMPTS: rc = cli_parse_int("bench", opt, optarg, 1, 1L << 30, &num_prompts); break;
        case B_INPUT: input = optarg; break;
        case B_REPORT: report = optarg; break;
        case B_DEVICE:
            if (strcmp(optarg, "cpu") == 0) o.device = VB_DEVICE_CPU;
            else if (strcmp(optarg, "cuda") == 0) o.device = VB_DEVICE_CUDA;
            else if (strcmp(optarg, "auto") == 0) o.device = VB_DEVICE_AUTO;
            else { cli_usage_error("bench", "--device: '%s' is not one of auto, cpu, cuda", optarg); return VB_EXIT_USAGE; }
            break;
        case B_SEED: rc = cli_parse_u64("bench", opt, optarg, &o.seed); break;
        case B_MAX_BATCH: rc = cli_parse_int("bench", opt, optarg, 1, 65536, &o.max_batch); break;
        case B_MAX_BATCHED_TOKENS:
            rc = cli_parse_int("bench", opt, optarg, 1, 1L << 20, &o.max_batched_tokens);
            break;
        case B_NO_PREFIX_CACHE: o.prefix_cache = false; break;
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
    if (!o.model_dir) {
        cli_usage_error("bench", "--model DIR is required");
        return VB_EXIT_USAGE;
    }
    o.max_new_tokens = output_len;

    vb_dist_init(&argc, &argv);
    vb_dist d = {0};
    vb_err err = {{0}};
    int rank = 0;
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    if (vb_dist_setup(&d, o.tp, &err) != 0) {
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
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/voltbatch-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        model_config cfg;
        if (!mkdtemp(dir)) {
            code = VB_EXIT_FAILURE;
            fprintf(stderr, "voltbatch bench: cannot create a scratch folder %s\n", dir);
        } else if (!input) {
            snprintf(in_path, sizeof in_path, "%s/prompts.h5", dir);
            if (model_config_load(&cfg, o.model_dir, &err) ||
                bench_input_write(in_path, num_prompts, (int)input_len, 0,
                                  cfg.vocab_size < 32000 ? cfg.vocab_size : 32000, o.seed, &err)) {
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
        o.inputs[0] = input ? input : in_path;
        o.n_inputs = 1;
        o.output = out_path;
        o.report = report ? report : rep_path;
        code = generate_run(&o, &d);
    }
    if (rank == 0 && code == 0) {
        json_error_t je;
        json_t *r = json_load_file(o.report, 0, &je);
        if (!r) {
            fprintf(stderr, "voltbatch bench: %s: %s\n", o.report, je.text);
            code = VB_EXIT_FAILURE;
        } else {
            double engine = json_number_value(json_object_get(r, "engine_s"));
            double rows = (double)json_integer_value(json_object_get(r, "rows_this_run"));
            double gen = (double)json_integer_value(json_object_get(r, "generated_tokens"));
            double prompt = (double)json_integer_value(json_object_get(r, "prompt_tokens"));
            printf("bench: %s, tp %d x dp %d, %.0f prompts", o.model_dir, d.tp, d.dp, rows);
            if (!input)
                printf(" of %ld tokens -> %ld tokens", input_len, output_len);
            printf("\n  load                 %8.2f s\n",
                   json_number_value(json_object_get(r, "load_s")));
            printf("  engine               %8.2f s\n", engine);
            if (engine > 0)
                printf("  requests/s           %8.2f\n  prompt tokens/s      %8.1f\n"
                       "  generated tokens/s   %8.1f\n",
                       rows / engine, prompt / engine, gen / engine);
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

/* `voltbatch generate` options: table, help text and checks. */
#include "cli/generate_options.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli_args.h"
#include "engine/sampler.h"

/* --help states the cut in words */
_Static_assert(SAMPLER_TRUNCATION_CANDIDATES == 256, "generate --help says 256 tokens");

enum {
    OPT_MODEL = 256, OPT_INPUT, OPT_OUTPUT, OPT_REPORT, OPT_TP, OPT_DEVICE,
    OPT_MAX_NEW_TOKENS, OPT_TEMPERATURE, OPT_TOP_P, OPT_TOP_K, OPT_MIN_P,
    OPT_REPETITION_PENALTY, OPT_FREQUENCY_PENALTY, OPT_PRESENCE_PENALTY, OPT_SEED,
    OPT_N, OPT_LOGPROBS, OPT_IGNORE_EOS, OPT_STOP, OPT_CHAT, OPT_CHAT_TEMPLATE,
    OPT_SYSTEM, OPT_CHAT_TEMPLATE_KWARGS, OPT_MAX_MODEL_LEN, OPT_GPU_MEMORY_UTILIZATION, OPT_MAX_BATCH,
    OPT_MAX_BATCHED_TOKENS, OPT_NO_PREFIX_CACHE, OPT_NO_CUDA_GRAPHS, OPT_EAGER, OPT_BATCH_INVARIANT,
    OPT_THREADS, OPT_COLLECTIVE_TIMEOUT, OPT_RESUME, OPT_OVERWRITE, OPT_QUANTIZE, OPT_KV_CACHE_DTYPE, OPT_HELP,
};

static const struct option generate_long_options[] = {
    {"model", required_argument, NULL, OPT_MODEL},
    {"input", required_argument, NULL, OPT_INPUT},
    {"output", required_argument, NULL, OPT_OUTPUT},
    {"report", required_argument, NULL, OPT_REPORT},
    {"tp", required_argument, NULL, OPT_TP},
    {"device", required_argument, NULL, OPT_DEVICE},
    {"quantize", required_argument, NULL, OPT_QUANTIZE},
    {"kv-cache-dtype", required_argument, NULL, OPT_KV_CACHE_DTYPE},
    {"max-new-tokens", required_argument, NULL, OPT_MAX_NEW_TOKENS},
    {"temperature", required_argument, NULL, OPT_TEMPERATURE},
    {"top-p", required_argument, NULL, OPT_TOP_P},
    {"top-k", required_argument, NULL, OPT_TOP_K},
    {"min-p", required_argument, NULL, OPT_MIN_P},
    {"repetition-penalty", required_argument, NULL, OPT_REPETITION_PENALTY},
    {"frequency-penalty", required_argument, NULL, OPT_FREQUENCY_PENALTY},
    {"presence-penalty", required_argument, NULL, OPT_PRESENCE_PENALTY},
    {"seed", required_argument, NULL, OPT_SEED},
    {"n", required_argument, NULL, OPT_N},
    {"logprobs", required_argument, NULL, OPT_LOGPROBS},
    {"ignore-eos", no_argument, NULL, OPT_IGNORE_EOS},
    {"stop", required_argument, NULL, OPT_STOP},
    {"chat", no_argument, NULL, OPT_CHAT},
    {"chat-template", required_argument, NULL, OPT_CHAT_TEMPLATE},
    {"system", required_argument, NULL, OPT_SYSTEM},
    {"chat-template-kwargs", required_argument, NULL, OPT_CHAT_TEMPLATE_KWARGS},
    {"max-model-len", required_argument, NULL, OPT_MAX_MODEL_LEN},
    {"gpu-memory-utilization", required_argument, NULL, OPT_GPU_MEMORY_UTILIZATION},
    {"max-batch", required_argument, NULL, OPT_MAX_BATCH},
    {"max-batched-tokens", required_argument, NULL, OPT_MAX_BATCHED_TOKENS},
    {"no-prefix-cache", no_argument, NULL, OPT_NO_PREFIX_CACHE},
    {"no-cuda-graphs", no_argument, NULL, OPT_NO_CUDA_GRAPHS},
    {"eager", no_argument, NULL, OPT_EAGER},
    {"batch-invariant", no_argument, NULL, OPT_BATCH_INVARIANT},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"collective-timeout", required_argument, NULL, OPT_COLLECTIVE_TIMEOUT},
    {"resume", no_argument, NULL, OPT_RESUME},
    {"overwrite", no_argument, NULL, OPT_OVERWRITE},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

void generate_options_print_help(void)
{
    fputs(
        "usage: mpirun -np N voltbatch generate --model DIR --input IN.h5 [--input ...]\n"
        "                                      --output OUT.h5 [options]\n"
        "\n"
        "Runs every prompt of the inputs through the model and writes the completions.\n"
        "World size must be a multiple of --tp; world/tp groups split the prompts.\n"
        "\n"
        "inputs and outputs:\n"
        "  --model DIR                 Hugging Face model directory (config.json, *.safetensors,\n"
        "                              tokenizer.json)\n"
        "  --input FILE|GLOB|DIR       prompt shards (HDF5, see `voltbatch pack`); repeatable,\n"
        "                              rows are numbered across shards in order\n"
        "  --output FILE               output HDF5 (written to OUTPUT.tmp, renamed at end)\n"
        "  --resume                    continue a stopped run from OUTPUT.journal\n"
        "  --overwrite                 replace an existing output, journal and OUTPUT.tmp (never\n"
        "                              a file the run reads: an input, the model's, a template)\n"
        "  --report FILE               JSON report: throughput, timings per phase, utilisation\n"
        "\n"
        "sampling (unset values come from generation_config.json, else greedy):\n"
        "  --max-new-tokens N          tokens to generate per row (default: the model's\n"
        "                              generation_config.json max_new_tokens, else 256)\n"
        "  --temperature F             0 = greedy, else 1e-5 to 100\n"
        "  --top-p F  --top-k N  --min-p F\n"
        "                              top-p and min-p without --top-k keep 256 tokens at most\n"
        "                              (the run warns of draws that cut, report: truncated_draws)\n"
        "  --repetition-penalty F  --frequency-penalty F  --presence-penalty F\n"
        "  --seed N                    per-row random streams keyed by (seed, row, sample, step)\n"
        "  --n K                       K samples per prompt\n"
        "  --logprobs N                record the chosen tokens' logprobs and N (1-64) alternatives:\n"
        "                              log-softmax of the logits after the penalties and the\n"
        "                              temperature (1 when greedy), before top-k/top-p/min-p\n"
        "  --stop TEXT                 stop string (repeatable)\n"
        "  --ignore-eos                do not stop at end-of-sequence tokens: --max-new-tokens\n"
        "                              each row (a --stop string still ends one)\n"
        "\n"
        "prompts:\n"
        "  --chat                      render prompts with the model's chat template\n"
        "  --chat-template NAME        chatml, llama3, llama2 or FILE.jinja (default: the\n"
        "                              model's own Jinja template)\n"
        "  --chat-template-kwargs JSON template variables, e.g. '{\"enable_thinking\": false}'\n"
        "  --system TEXT               system prompt for --chat (rows' /system overrides)\n"
        "\n"
        "engine:\n"
        "  --tp N                      tensor-parallel group size (default 1)\n"
        "  --device auto|cpu|cuda      backend (default auto: cuda when a GPU is present)\n"
        "  --quantize int8             quantize the projections of an fp16/bf16/fp32 checkpoint\n"
        "                              at load: int8 per output channel, symmetric (see\n"
        "                              README, Quantized checkpoints)\n"
        "  --kv-cache-dtype fp16|int8  the KV cache's elements (default fp16, fp32 on the CPU\n"
        "                              backend): int8 with a scale per token and head holds\n"
        "                              twice the tokens\n"
        "  --max-model-len N           context limit, prompt and completion together (default:\n"
        "                              the model's): a prompt of N tokens or more is an error\n"
        "                              row, a completion ends there (finish_reason length)\n"
        "  --gpu-memory-utilization F  fraction of GPU memory to plan for (default 0.9)\n"
        "  --max-batch N               sequences per step at most (default: as many as the KV\n"
        "                              cache and --max-batched-tokens allow, up to 512 on a\n"
        "                              GPU; 256 on the CPU)\n"
        "  --max-batched-tokens N      tokens per step, prefill chunks included (default 8192\n"
        "                              on a GPU, 4096 on the CPU)\n"
        "  --no-prefix-cache           do not reuse KV blocks of shared prompt prefixes\n"
        "  --no-cuda-graphs            decode steps without CUDA graphs (same outputs)\n"
        "  --eager                     diagnostic: no graphs, check every kernel synchronously\n"
        "  --batch-invariant           on a GPU, a row's completion never depends on the rows\n"
        "                              sharing its steps (--max-batch, order, resume, graphs,\n"
        "                              chunking, prefix cache): fixed-order kernels, V100+;\n"
        "                              quantized weights dequantized each step (the CPU\n"
        "                              backend always is invariant)\n"
        "  --threads N                 CPU backend threads per rank\n"
        "  --collective-timeout SEC    abort the job when a collective stalls (default 300)\n"
        "\n"
        "environment:\n"
        "  VB_JOURNAL_FLUSH_SECONDS    how often finished rows reach OUTPUT.journal on disk\n"
        "                              (default 5: at most that much finished work is lost\n"
        "                              to a SIGKILL)\n"
        "  VB_CPU_THREADS              CPU backend threads per rank (as --threads)\n"
        "\n"
        "exit status: 0 done, 2 usage or input error, 75 stopped by a signal (resume with\n"
        "--resume), 1 any other failure.\n",
        stdout);
}

static void generate_options_defaults(generate_options *o)
{
    memset(o, 0, sizeof *o);
    run_config *c = &o->run;
    c->command = "generate";
    c->inputs = o->inputs;
    c->stops = o->stops;
    c->tp = 1;
    c->device = VB_DEVICE_AUTO;
    c->max_new_tokens = -1;
    c->sampling = (sampling_overrides){
        .temperature = NAN, .top_p = NAN, .top_k = -1, .min_p = NAN,
        .repetition_penalty = NAN, .frequency_penalty = NAN, .presence_penalty = NAN,
        .seed = 0, .logprobs = 0,
    };
    c->n = 1;
    c->max_model_len = -1;
    c->gpu_memory_utilization = 0.9;
    c->max_batch = 0; /* automatic: run_engine.c */
    c->max_batched_tokens = 0; /* automatic: run_engine.c */
    c->prefix_cache = true;
    c->cuda_graphs = true;
    c->threads = -1;
    c->collective_timeout = 300.0;
    vb_tuning_defaults(&c->tuning);
}

int generate_options_parse(generate_options *o, int argc, char **argv)
{
    const char *cmd = "generate";
    generate_options_defaults(o);
    run_config *cfg = &o->run;
    sampling_overrides *sp = &cfg->sampling;
    int c;
    while ((c = cli_next_option(cmd, argc, argv, generate_long_options)) != -1) {
        const char *opt = cli_option_name(generate_long_options, c);
        long v = 0;
        int rc = 0;
        switch (c) {
        case OPT_MODEL: cfg->model_dir = optarg; break;
        case OPT_INPUT:
            if (cfg->n_inputs == VB_MAX_INPUTS) {
                cli_usage_error(cmd, "--input: more than %d inputs; use a directory or glob",
                                VB_MAX_INPUTS);
                return -1;
            }
            o->inputs[cfg->n_inputs++] = optarg;
            break;
        case OPT_OUTPUT: cfg->output = optarg; break;
        case OPT_REPORT: cfg->report = optarg; break;
        case OPT_TP:
            rc = cli_parse_int(cmd, opt, optarg, 1, VB_MAX_TP, &v);
            cfg->tp = (int)v;
            break;
        case OPT_DEVICE:
            if (strcmp(optarg, "auto") == 0) cfg->device = VB_DEVICE_AUTO;
            else if (strcmp(optarg, "cpu") == 0) cfg->device = VB_DEVICE_CPU;
            else if (strcmp(optarg, "cuda") == 0) cfg->device = VB_DEVICE_CUDA;
            else {
                cli_usage_error(cmd, "--device: '%s' is not one of auto, cpu, cuda", optarg);
                return -1;
            }
            break;
        case OPT_QUANTIZE:
            if (vb_quantize_parse(optarg, &cfg->quantize) != 0) {
                cli_usage_error(cmd, "--quantize: '%s' is not supported (int8)", optarg);
                return -1;
            }
            break;
        case OPT_KV_CACHE_DTYPE:
            if (vb_kv_dtype_parse(optarg, &cfg->kv_cache_dtype) != 0) {
                cli_usage_error(cmd, "--kv-cache-dtype: '%s' is not supported (fp16, int8)", optarg);
                return -1;
            }
            break;
        case OPT_MAX_NEW_TOKENS:
            rc = cli_parse_int(cmd, opt, optarg, 0, 1L << 24, &cfg->max_new_tokens);
            break;
        case OPT_TEMPERATURE:
            rc = cli_parse_temperature(cmd, opt, optarg, &sp->temperature);
            break;
        case OPT_TOP_P: rc = cli_parse_double(cmd, opt, optarg, 0, 1, &sp->top_p); break;
        case OPT_TOP_K: rc = cli_parse_int(cmd, opt, optarg, 0, 1L << 24, &sp->top_k); break;
        case OPT_MIN_P: rc = cli_parse_double(cmd, opt, optarg, 0, 1, &sp->min_p); break;
        case OPT_REPETITION_PENALTY:
            rc = cli_parse_double(cmd, opt, optarg, 0.01, 100, &sp->repetition_penalty);
            break;
        case OPT_FREQUENCY_PENALTY:
            rc = cli_parse_double(cmd, opt, optarg, -2, 2, &sp->frequency_penalty);
            break;
        case OPT_PRESENCE_PENALTY:
            rc = cli_parse_double(cmd, opt, optarg, -2, 2, &sp->presence_penalty);
            break;
        case OPT_SEED: rc = cli_parse_u64(cmd, opt, optarg, &sp->seed); break;
        case OPT_N: rc = cli_parse_int(cmd, opt, optarg, 1, 1024, &cfg->n); break;
        /* 1 to 64: the chosen token's logprob comes with at least one
         * alternative (0, the default's value, would record nothing) */
        case OPT_LOGPROBS: rc = cli_parse_int(cmd, opt, optarg, 1, 64, &sp->logprobs); break;
        case OPT_IGNORE_EOS: cfg->ignore_eos = true; break;
        case OPT_STOP:
            if (cfg->n_stops == VB_MAX_STOPS) {
                cli_usage_error(cmd, "--stop: at most %d stop strings", VB_MAX_STOPS);
                return -1;
            }
            if (optarg[0] == '\0') {
                cli_usage_error(cmd, "--stop: the stop string is empty");
                return -1;
            }
            if (cli_require_utf8(cmd, opt, optarg))
                return -1;
            o->stops[cfg->n_stops++] = optarg;
            break;
        case OPT_CHAT: cfg->chat = true; break;
        case OPT_CHAT_TEMPLATE: cfg->chat_template = optarg; cfg->chat = true; break;
        case OPT_SYSTEM: cfg->system = optarg; rc = cli_require_utf8(cmd, opt, optarg); break;
        case OPT_CHAT_TEMPLATE_KWARGS: cfg->chat_template_kwargs = optarg; break;
        case OPT_MAX_MODEL_LEN:
            rc = cli_parse_int(cmd, opt, optarg, 1, VB_MAX_MODEL_LEN, &cfg->max_model_len);
            break;
        case OPT_GPU_MEMORY_UTILIZATION:
            rc = cli_parse_double(cmd, opt, optarg, VB_MIN_GPU_MEMORY_UTILIZATION, 1.0,
                                  &cfg->gpu_memory_utilization);
            break;
        case OPT_MAX_BATCH: rc = cli_parse_int(cmd, opt, optarg, 1, 65536, &cfg->max_batch); break;
        case OPT_MAX_BATCHED_TOKENS:
            rc = cli_parse_int(cmd, opt, optarg, 1, VB_MAX_BATCHED_TOKENS, &cfg->max_batched_tokens);
            break;
        case OPT_NO_PREFIX_CACHE: cfg->prefix_cache = false; break;
        case OPT_NO_CUDA_GRAPHS: cfg->cuda_graphs = false; break;
        case OPT_EAGER: cfg->eager = true; cfg->cuda_graphs = false; break;
        case OPT_BATCH_INVARIANT: cfg->batch_invariant = true; break;
        case OPT_THREADS: rc = cli_parse_int(cmd, opt, optarg, 1, 4096, &cfg->threads); break;
        case OPT_COLLECTIVE_TIMEOUT:
            rc = cli_parse_double(cmd, opt, optarg, 1, 86400, &cfg->collective_timeout);
            break;
        case OPT_RESUME: cfg->resume = true; break;
        case OPT_OVERWRITE: cfg->overwrite = true; break;
        case OPT_HELP:
        case 'h':
            generate_options_print_help();
            return 1;
        default:
            return -1;
        }
        if (rc != 0)
            return -1;
    }
    if (optind < argc) {
        cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
        return -1;
    }
    if (!cfg->model_dir) {
        cli_usage_error(cmd, "--model DIR is required");
        return -1;
    }
    if (cfg->n_inputs == 0) {
        cli_usage_error(cmd, "--input FILE is required");
        return -1;
    }
    if (!cfg->output) {
        cli_usage_error(cmd, "--output FILE is required");
        return -1;
    }
    if (cfg->resume && cfg->overwrite) {
        cli_usage_error(cmd, "--resume and --overwrite contradict each other");
        return -1;
    }
    /* the one reading of the environment: a bad knob stops the job here,
     * before MPI starts, as a bad option does */
    vb_err err;
    if (vb_tuning_from_env(&cfg->tuning, &err) != 0) {
        fprintf(stderr, "voltbatch: %s\n", err.msg);
        return -1;
    }
    return 0;
}

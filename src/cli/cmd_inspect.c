/* `voltbatch inspect`: the architecture, parameter count and memory plan
 * per rank, from config.json alone (no weights needed), so a user can pick
 * --tp and --gpu-memory-utilization before copying a checkpoint to the
 * cluster. --check-weights also opens the checkpoint and checks every
 * tensor's header, shape and dtype without reading the weights. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "model/memory_plan.h"
#include "model/model_config.h"
#include "model/model_load.h"
#include "model/tp_plan.h"
#include "util/exit_codes.h"
#include "vb_config.h"

#if VB_HAVE_CUDA
#include <cuda_runtime.h>
#endif

static const struct option inspect_options[] = {
    {"model", required_argument, NULL, 1},
    {"tp", required_argument, NULL, 2},
    {"gpu-memory", required_argument, NULL, 3},
    {"gpu-memory-utilization", required_argument, NULL, 4},
    {"max-model-len", required_argument, NULL, 5},
    {"json", no_argument, NULL, 6},
    {"check-weights", no_argument, NULL, 7},
    {"quantize", required_argument, NULL, 8},
    {"kv-cache-dtype", required_argument, NULL, 9},
    {"max-batched-tokens", required_argument, NULL, 10},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void inspect_help(void)
{
    fputs("usage: voltbatch inspect --model DIR [--tp N] [--gpu-memory BYTES|auto]\n"
          "                         [--gpu-memory-utilization F] [--max-model-len N]\n"
          "                         [--json] [--check-weights] [--quantize int8]\n"
          "                         [--kv-cache-dtype fp16|int8] [--max-batched-tokens N]\n"
          "\n"
          "Prints the architecture, parameter count and memory plan per rank, from\n"
          "config.json alone.\n"
          "\n"
          "  --tp N                      tensor-parallel ranks (default 1)\n"
          "  --gpu-memory BYTES|auto     memory of one GPU, e.g. 32GiB or 32510MiB; auto\n"
          "                              asks the GPU (default: auto when one is present)\n"
          "  --gpu-memory-utilization F  fraction of it to use (default 0.9)\n"
          "  --max-model-len N           longest sequence (default max_position_embeddings)\n"
          "  --json                      one JSON object on stdout\n"
          "  --check-weights             also check the checkpoint's headers and shapes\n"
          "  --quantize int8             plan for generate --quantize int8: the projections\n"
          "                              int8 per output channel, the rest fp16\n"
          "  --kv-cache-dtype fp16|int8  plan for generate's: int8 holds ~twice the tokens\n"
          "  --max-batched-tokens N      plan for generate's step: activations for N tokens\n"
          "                              (default 8192, generate's on a GPU)\n",
          stdout);
}

/* Memory of GPU 0, or 0 when there is none (or no CUDA backend). */
static uint64_t gpu_total_memory(void)
{
#if VB_HAVE_CUDA
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
        return total_b;
#endif
    return 0;
}

static const char *arch_name(vb_arch a)
{
    switch (a) {
    case VB_ARCH_QWEN2: return "qwen2";
    case VB_ARCH_LLAMA: return "llama";
    case VB_ARCH_MISTRAL: return "mistral";
    case VB_ARCH_QWEN3: return "qwen3";
    }
    return "?";
}

static const char *rope_name(vb_rope_type t)
{
    switch (t) {
    case VB_ROPE_DEFAULT: return "none";
    case VB_ROPE_LINEAR: return "linear";
    case VB_ROPE_LLAMA3: return "llama3";
    case VB_ROPE_YARN: return "yarn";
    }
    return "?";
}

/* "fp16", or the quantized projections' format beside the fp16 rest:
 * "awq int4, group 128 + fp16". */
static const char *weights_format(const model_config *c, char *buf, size_t n)
{
    const vb_quant_config *q = &c->quant;
    if (q->method == VB_QUANT_NONE)
        return "fp16";
    if (q->group_size > 0)
        snprintf(buf, n, "%s int%d, group %d + fp16", vb_quant_method_name(q->method), q->bits,
                 q->group_size);
    else
        snprintf(buf, n, "%s int%d, per channel + fp16", vb_quant_method_name(q->method),
                 q->bits);
    return buf;
}

static double gib(uint64_t b) { return (double)b / (1024.0 * 1024.0 * 1024.0); }
static double mib(uint64_t b) { return (double)b / (1024.0 * 1024.0); }

static void print_text(const char *dir, const model_config *c, const tp_plan *p,
                       const memory_plan *m)
{
    char buf[64];
    const char *fmt = weights_format(c, buf, sizeof buf);
    printf("model          %s\n", dir);
    printf("architecture   %s: %d layers, hidden %d, %d heads (%d kv, head_dim %d), "
           "intermediate %d, vocab %d%s%s%s\n", arch_name(c->arch), c->n_layers, c->hidden_size,
           c->n_heads, c->n_kv_heads, c->head_dim, c->intermediate_size, c->vocab_size,
           c->attention_bias ? ", qkv bias" : "", c->qk_norm ? ", q/k norm" : "",
           c->tie_word_embeddings ? ", tied embeddings" : "");
    printf("rope           theta %g, scaling %s", c->rope_theta, rope_name(c->rope_scaling.type));
    if (c->rope_scaling.type != VB_ROPE_DEFAULT)
        printf(" (factor %g)", c->rope_scaling.factor);
    printf(", max_position_embeddings %d\n", c->max_position_embeddings);
    printf("parameters     %.2fe9 (%llu), checkpoint dtype %s\n", (double)m->parameters / 1e9,
           (unsigned long long)m->parameters, c->torch_dtype[0] ? c->torch_dtype : "?");
    printf("tp %-11d per rank: %d heads, %d kv heads%s, intermediate %d, vocab %d (last rank %d)\n",
           p->tp, p->heads_local, p->kv_heads_local,
           p->tp > c->n_kv_heads ? " (replicated)" : "", p->inter_local, p->vocab_local,
           c->vocab_size - (p->tp - 1) * p->vocab_local);
    printf("weights        %.2f GiB per rank (%s)\n", gib(m->weight_bytes_per_rank), fmt);
    printf("kv cache       %llu bytes per token per rank (%s K and V, %d layers x %d kv heads "
           "x %d%s)\n", (unsigned long long)m->kv_bytes_per_token,
           vb_kv_dtype_name(m->kv_dtype), c->n_layers, p->kv_heads_local, c->head_dim,
           m->kv_dtype == VB_KV_INT8 ? ", + an fp32 scale a head" : "");
    if (!m->gpu_memory) {
        printf("memory plan    no GPU memory size: give --gpu-memory (e.g. 32GiB) for KV tokens\n");
        return;
    }
    printf("memory plan per rank:\n");
    printf("  %-24s %10.1f MiB  %.2f GiB x %.2f\n", "budget", mib(m->budget), gib(m->gpu_memory),
           m->utilization);
    printf("  %-24s %10.1f MiB  %s\n", "weights", mib(m->weight_bytes_per_rank), fmt);
    for (int i = 0; i < m->n_overhead; i++)
        printf("  %-24s %10.1f MiB  %s\n", m->overhead[i].name, mib(m->overhead[i].bytes),
               m->overhead[i].how);
    printf("  %-24s %10.1f MiB  %lld blocks of %d = %lld tokens\n", "kv_cache",
           mib(m->kv_cache_bytes), (long long)m->kv_blocks, VB_KV_BLOCK_TOKENS,
           (long long)m->kv_tokens);
    printf("kv tokens      %lld per rank; %.1f sequences of max-model-len %d\n",
           (long long)m->kv_tokens, (double)m->kv_tokens / m->max_model_len, m->max_model_len);
    if (!m->weights_fit)
        printf("warning        the weights and buffers (%.2f GiB) exceed the budget (%.2f GiB): "
               "nothing is left for the KV cache; raise --tp%s or use a larger GPU\n",
               gib(m->weight_bytes_per_rank + m->overhead_bytes), gib(m->budget),
               c->quant.method == VB_QUANT_NONE ? ", quantize (--quantize int8)" : "");
    else if (m->kv_tokens < m->max_model_len)
        printf("warning        one sequence of max-model-len %d does not fit; lower "
               "--max-model-len or raise --tp\n", m->max_model_len);
    /* as generate warns: the plan holds, the outputs past them may not */
    const long made_for = model_config_positions(c);
    if (m->max_model_len > made_for)
        printf("warning        max-model-len %d is past the %ld positions the model was made "
               "for (config.json's max_position_embeddings and RoPE scaling): outputs that "
               "reach past them may be poor\n", m->max_model_len, made_for);
}

static int print_json(const model_config *c, const tp_plan *p, const memory_plan *m)
{
    char fmt[64];
    json_t *o = json_object(), *lines = json_array();
    json_object_set_new(o, "architecture", json_string(arch_name(c->arch)));
    json_object_set_new(o, "model_type", json_string(c->model_type));
    json_object_set_new(o, "parameters", json_integer((json_int_t)m->parameters));
    json_object_set_new(o, "tp", json_integer(p->tp));
    json_object_set_new(o, "layers", json_integer(c->n_layers));
    json_object_set_new(o, "hidden_size", json_integer(c->hidden_size));
    json_object_set_new(o, "heads", json_integer(c->n_heads));
    json_object_set_new(o, "kv_heads", json_integer(c->n_kv_heads));
    json_object_set_new(o, "head_dim", json_integer(c->head_dim));
    json_object_set_new(o, "intermediate_size", json_integer(c->intermediate_size));
    json_object_set_new(o, "vocab_size", json_integer(c->vocab_size));
    json_object_set_new(o, "tie_word_embeddings", json_boolean(c->tie_word_embeddings));
    json_object_set_new(o, "rope_scaling", json_string(rope_name(c->rope_scaling.type)));
    json_object_set_new(o, "weight_bytes_per_rank", json_integer((json_int_t)m->weight_bytes_per_rank));
    json_object_set_new(o, "weights_format", json_string(weights_format(c, fmt, sizeof fmt)));
    json_object_set_new(o, "kv_bytes_per_token_per_rank", json_integer((json_int_t)m->kv_bytes_per_token));
    json_object_set_new(o, "kv_cache_dtype", json_string(vb_kv_dtype_name(m->kv_dtype)));
    json_object_set_new(o, "max_model_len", json_integer(m->max_model_len));
    if (m->gpu_memory) {
        json_object_set_new(o, "gpu_memory_bytes", json_integer((json_int_t)m->gpu_memory));
        json_object_set_new(o, "gpu_memory_utilization", json_real(m->utilization));
        json_object_set_new(o, "budget_bytes", json_integer((json_int_t)m->budget));
        for (int i = 0; i < m->n_overhead; i++) {
            json_t *l = json_object();
            json_object_set_new(l, "name", json_string(m->overhead[i].name));
            json_object_set_new(l, "bytes", json_integer((json_int_t)m->overhead[i].bytes));
            json_object_set_new(l, "how", json_string(m->overhead[i].how));
            json_array_append_new(lines, l);
        }
        json_object_set_new(o, "overhead_bytes", json_integer((json_int_t)m->overhead_bytes));
        json_object_set_new(o, "kv_cache_bytes_per_rank", json_integer((json_int_t)m->kv_cache_bytes));
        json_object_set_new(o, "kv_blocks_per_rank", json_integer(m->kv_blocks));
        json_object_set_new(o, "kv_tokens_per_rank", json_integer(m->kv_tokens));
        /* whether the weights and buffers leave room for any KV cache, and
         * for one sequence of max_model_len */
        json_object_set_new(o, "weights_fit", json_boolean(m->weights_fit));
        json_object_set_new(o, "fits_one_sequence",
                            json_boolean(m->kv_tokens >= m->max_model_len));
    } else {
        json_object_set_new(o, "kv_tokens_per_rank", json_null());
    }
    json_object_set_new(o, "overhead", lines);
    int rc = json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(o);
    return rc == 0 ? VB_EXIT_OK : VB_EXIT_FAILURE;
}

int cmd_inspect(int argc, char **argv)
{
    const char *model = NULL, *gpu_mem = NULL;
    long tp = 1, max_len = 0, step_tokens = 0;
    double util = 0.9;
    int json = 0, check = 0, c;
    vb_quantize quantize = VB_QUANTIZE_NONE;
    vb_kv_dtype kv_dtype = VB_KV_ACT;
    while ((c = cli_next_option("inspect", argc, argv, inspect_options)) != -1) {
        switch (c) {
        case 'h':
            inspect_help();
            return VB_EXIT_OK;
        case 1: model = optarg; break;
        case 2:
            if (cli_parse_int("inspect", "--tp", optarg, 1, VB_MAX_TP, &tp) != 0)
                return VB_EXIT_USAGE;
            break;
        case 3: gpu_mem = optarg; break;
        case 4:
            /* generate's range: a plan for a fraction generate refuses
             * would describe a run that cannot start */
            if (cli_parse_double("inspect", "--gpu-memory-utilization", optarg,
                                 VB_MIN_GPU_MEMORY_UTILIZATION, 1.0, &util) != 0)
                return VB_EXIT_USAGE;
            break;
        case 5:
            if (cli_parse_int("inspect", "--max-model-len", optarg, 1, VB_MAX_MODEL_LEN,
                              &max_len) != 0)
                return VB_EXIT_USAGE;
            break;
        case 6: json = 1; break;
        case 7: check = 1; break;
        case 8:
            if (vb_quantize_parse(optarg, &quantize) != 0) {
                cli_usage_error("inspect", "--quantize: '%s' is not supported (int8)", optarg);
                return VB_EXIT_USAGE;
            }
            break;
        case 9:
            if (vb_kv_dtype_parse(optarg, &kv_dtype) != 0) {
                cli_usage_error("inspect", "--kv-cache-dtype: '%s' is not supported (fp16, int8)",
                                optarg);
                return VB_EXIT_USAGE;
            }
            break;
        case 10:
            if (cli_parse_int("inspect", "--max-batched-tokens", optarg, 1, VB_MAX_BATCHED_TOKENS,
                              &step_tokens) != 0)
                return VB_EXIT_USAGE;
            break;
        default: return VB_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_usage_error("inspect", "unexpected argument '%s'", argv[optind]);
        return VB_EXIT_USAGE;
    }
    if (!model) {
        cli_usage_error("inspect", "--model DIR is required");
        return VB_EXIT_USAGE;
    }
    uint64_t mem = 0;
    if (gpu_mem && strcmp(gpu_mem, "auto") != 0) {
        if (cli_parse_bytes("inspect", "--gpu-memory", gpu_mem, &mem) != 0)
            return VB_EXIT_USAGE;
        if (mem == 0) { /* it read as "no size given": no plan, exit 0 */
            cli_usage_error("inspect", "--gpu-memory: '%s' is no memory (give e.g. 32GiB)", gpu_mem);
            return VB_EXIT_USAGE;
        }
    } else {
        mem = gpu_total_memory();
        if (gpu_mem && !mem) {
            cli_usage_error("inspect", "--gpu-memory auto: no GPU found%s; give a size such as 32GiB",
                            VB_HAVE_CUDA ? "" : " (built without CUDA)");
            return VB_EXIT_USAGE;
        }
    }
    vb_err err = {{0}};
    model_config cfg;
    tp_plan plan;
    if (model_config_load(&cfg, model, &err) != 0 ||
        quant_config_quantize(&cfg.quant, quantize, model, &err) != 0 ||
        tp_plan_make(&plan, &cfg, (int)tp, 0, &err) != 0 ||
        (check && model_check_weights(&cfg, (int)tp, model, &err) != 0)) {
        fprintf(stderr, "voltbatch inspect: %s\n", err.msg);
        return VB_EXIT_USAGE;
    }
    memory_plan m;
    memory_plan_make(&m, &cfg, &plan, mem, util, (int)max_len, kv_dtype, (int)step_tokens);
    if (json)
        return print_json(&cfg, &plan, &m);
    print_text(model, &cfg, &plan, &m);
    if (check)
        printf("weights check  every tensor present with the right shape and dtype\n");
    return VB_EXIT_OK;
}

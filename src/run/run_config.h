/* What one `voltbatch generate` run is asked to do: files, layout, what to
 * generate, how prompts are made, engine limits, and the environment's
 * tuning knobs.
 *
 * cli/ fills it once (from generate's command line, or bench's settings)
 * and hands it down as one value; nothing under run/ reads the options or
 * the environment, so lower floors do not depend on how a value was
 * spelled. Values the user did not give keep their unset markers (NAN for
 * reals, -1 for counts): the run resolves them against the model's
 * generation_config.json and its own defaults, and the output's settings
 * record what was actually asked. */
#ifndef VB_RUN_CONFIG_H
#define VB_RUN_CONFIG_H

#include <stdbool.h>

#include "engine/sampler_params.h"
#include "forward/kv_dtype.h"
#include "model/quant_config.h"
#include "util/env.h"

enum vb_device { VB_DEVICE_AUTO, VB_DEVICE_CPU, VB_DEVICE_CUDA };

typedef struct run_config {
    const char *command;         /* "generate" or "bench": what messages start with */

    /* files */
    const char *model_dir;
    const char *const *inputs;   /* n_inputs files, globs or directories of .h5 shards */
    int n_inputs;
    const char *output;
    const char *report;          /* JSON report, or NULL */
    bool resume;                 /* continue from OUTPUT.journal */
    bool overwrite;              /* replace an existing output and journal */

    /* layout and backend */
    int tp;                      /* tensor-parallel group size */
    enum vb_device device;
    vb_quantize quantize;        /* --quantize: weights quantized at load (model/quant_int8.c) */
    vb_kv_dtype kv_cache_dtype;  /* --kv-cache-dtype (forward/kv_int8.h) */

    /* what is generated */
    sampling_overrides sampling; /* the user's; the model's fill the unset ones */
    long max_new_tokens;         /* -1 = unset (a row's /max_new_tokens, else
                                  * generation_config.json's, else 256) */
    long n;                      /* samples per prompt */
    bool ignore_eos;
    const char *const *stops;    /* n_stops stop strings, none empty */
    int n_stops;

    /* prompts */
    bool chat;
    const char *chat_template;   /* NULL = the model's own (tokenizer_config.json or
                                    chat_template.jinja) */
    const char *chat_template_kwargs; /* JSON object of template variables, or NULL */
    const char *system;

    /* engine */
    long max_model_len;          /* -1 = from config.json */
    double gpu_memory_utilization;
    long max_batch;              /* sequences per step at most; 0: automatic (run_engine.c) */
    long max_batched_tokens;     /* token budget per step (prefill chunks + decodes);
                                  * 0: automatic (run_engine.c) */
    bool prefix_cache;
    bool cuda_graphs;
    bool eager;                  /* diagnostic: no graphs, synchronous checks after each op */
    bool batch_invariant;        /* --batch-invariant: a row's bits never depend on the rows
                                  * that share its steps (README, Batch-invariant results) */
    long threads;                /* CPU backend threads per rank; -1 = cores / local ranks */
    double collective_timeout;   /* seconds */

    /* the VB_* environment knobs (and TMPDIR, HOME, XDG_CACHE_HOME), read
     * once by cli/ before MPI starts */
    vb_tuning tuning;
} run_config;

#endif

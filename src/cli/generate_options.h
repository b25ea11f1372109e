/* Everything `voltbatch generate` can be told, parsed and range-checked.
 *
 * Values the user did not give are marked unset (NAN for reals, -1 for
 * counts) so the engine can fall back to generation_config.json and then to
 * its own defaults, and so the output's root attributes record what was
 * actually used. */
#ifndef VB_GENERATE_OPTIONS_H
#define VB_GENERATE_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "util/env.h"

#define VB_MAX_INPUTS 4096
#define VB_MAX_STOPS 32

enum vb_device { VB_DEVICE_AUTO, VB_DEVICE_CPU, VB_DEVICE_CUDA };

typedef struct generate_options {
    const char *model_dir;
    const char *inputs[VB_MAX_INPUTS]; /* files, globs or directories of .h5 shards */
    int n_inputs;
    const char *output;
    const char *report;          /* --report FILE.json, or NULL */

    int tp;                      /* tensor-parallel group size */
    enum vb_device device;

    /* sampling; NAN / -1 = unset */
    long max_new_tokens;
    double temperature;
    double top_p;
    long top_k;
    double min_p;
    double repetition_penalty;
    double frequency_penalty;
    double presence_penalty;
    uint64_t seed;
    long n;                      /* samples per prompt */
    long logprobs;               /* top-N alternatives to record; 0 = none, -1 = unset */
    bool ignore_eos;
    const char *stops[VB_MAX_STOPS];
    int n_stops;

    /* prompts */
    bool chat;
    const char *chat_template;   /* NULL = the model's own (tokenizer_config.json / chat_template.jinja) */
    const char *chat_template_kwargs; /* JSON object of template variables, or NULL */
    const char *system;

    /* engine */
    long max_model_len;          /* -1 = from config.json */
    double gpu_memory_utilization;
    long max_batch;              /* sequences per step */
    long max_batched_tokens;     /* token budget per step (prefill chunks + decodes) */
    bool prefix_cache;
    bool cuda_graphs;
    bool eager;                  /* diagnostic: no graphs, synchronous checks after each op */
    long threads;                /* CPU backend threads per rank; -1 = cores / local ranks */
    double collective_timeout;   /* seconds */

    /* output file handling */
    bool resume;
    bool overwrite;

    /* the VB_* environment knobs (and TMPDIR, HOME, XDG_CACHE_HOME), read
     * once by generate_options_parse and handed down from here */
    vb_tuning tuning;
} generate_options;

/* Parses argv (argv[0] is "generate") and reads the environment knobs
 * into o->tuning (util/env.h). Returns 0, 1 when --help was printed
 * (exit 0), or -1 after printing a one-line error (exit 2): a bad option
 * or a knob out of range. */
int generate_options_parse(generate_options *o, int argc, char **argv);

void generate_options_print_help(void);

#endif

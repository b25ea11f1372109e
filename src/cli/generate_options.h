/* Everything `voltbatch generate` can be told, parsed and range-checked
 * into the run's configuration (run/run_config.h), the one value the run
 * is handed.
 *
 * Values the user did not give are marked unset (NAN for reals, -1 for
 * counts) so the engine can fall back to generation_config.json and then to
 * its own defaults, and so the output's root attributes record what was
 * actually used. */
#ifndef VB_GENERATE_OPTIONS_H
#define VB_GENERATE_OPTIONS_H

#include "run/run_config.h"

#define VB_MAX_INPUTS 4096
#define VB_MAX_STOPS 32

typedef struct generate_options {
    run_config run;                    /* what the run is handed (generate_run) */
    /* the storage behind run.inputs and run.stops (so the struct is not
     * to be copied: run points into it) */
    const char *inputs[VB_MAX_INPUTS]; /* files, globs or directories of .h5 shards */
    const char *stops[VB_MAX_STOPS];
} generate_options;

/* Parses argv (argv[0] is "generate") and reads the environment knobs
 * into o->run.tuning (util/env.h). Returns 0, 1 when --help was printed
 * (exit 0), or -1 after printing a one-line error (exit 2): a bad option
 * or a knob out of range. */
int generate_options_parse(generate_options *o, int argc, char **argv);

void generate_options_print_help(void);

#endif

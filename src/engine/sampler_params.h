/* Sampling settings for a run: the command line over the model's
 * generation_config.json over voltbatch's defaults. */
#ifndef VB_SAMPLER_PARAMS_H
#define VB_SAMPLER_PARAMS_H

#include "cli/generate_options.h"
#include "engine/sampler.h"

/* Each value the user set in o (not NAN / -1) wins; the rest come from
 * model_defaults (the caller fills it from generation_config.json on top of
 * sampling_params_default(); NULL = voltbatch's defaults). The seed is
 * always o->seed. A per-row /seed column replaces .seed row by row. */
sampling_params sampling_params_resolve(const generate_options *o, const sampling_params *model_defaults);

#endif

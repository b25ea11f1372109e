/* Sampling settings for a run: the user's over the model's
 * generation_config.json over voltbatch's defaults.
 *
 * The user's settings arrive as sampling_overrides (filled by cli/ from the
 * command line, held in run/run_config.h): each value is either set or
 * marked unset, so the model's defaults can fill the gaps and the output
 * can record what the user actually asked for. */
#ifndef VB_SAMPLER_PARAMS_H
#define VB_SAMPLER_PARAMS_H

#include <stdint.h>

#include "engine/sampler.h"

typedef struct sampling_overrides {
    /* NAN = unset */
    double temperature;
    double top_p;
    double min_p;
    double repetition_penalty;
    double frequency_penalty;
    double presence_penalty;
    long top_k;                  /* -1 = unset */
    long logprobs;               /* top-N alternatives to record; 0 = none, -1 = unset */
    uint64_t seed;               /* always used (a row's /seed replaces it) */
} sampling_overrides;

/* Each value set in u (not NAN / -1) wins; the rest come from
 * model_defaults (the caller fills it from generation_config.json on top of
 * sampling_params_default(); NULL = voltbatch's defaults). The seed is
 * always u->seed. A per-row /seed column replaces .seed row by row. */
sampling_params sampling_params_resolve(const sampling_overrides *u,
                                        const sampling_params *model_defaults);

#endif

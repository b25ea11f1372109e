/* Resolving sampling settings (see sampler_params.h). */
#include "engine/sampler_params.h"

#include <math.h>

sampling_params sampling_params_resolve(const sampling_overrides *u,
                                        const sampling_params *model_defaults)
{
    sampling_params p = model_defaults ? *model_defaults : sampling_params_default();
    if (!isnan(u->temperature)) p.temperature = (float)u->temperature;
    if (u->top_k >= 0) p.top_k = (int)u->top_k;
    if (!isnan(u->top_p)) p.top_p = (float)u->top_p;
    if (!isnan(u->min_p)) p.min_p = (float)u->min_p;
    if (!isnan(u->repetition_penalty)) p.repetition_penalty = (float)u->repetition_penalty;
    if (!isnan(u->frequency_penalty)) p.frequency_penalty = (float)u->frequency_penalty;
    if (!isnan(u->presence_penalty)) p.presence_penalty = (float)u->presence_penalty;
    if (u->logprobs >= 0)
        p.n_logprobs = u->logprobs > SAMPLER_MAX_LOGPROBS ? SAMPLER_MAX_LOGPROBS : (int)u->logprobs;
    p.seed = u->seed;
    return p;
}

/* Resolving sampling settings (see sampler_params.h). */
#include "engine/sampler_params.h"

#include <math.h>

sampling_params sampling_params_resolve(const generate_options *o, const sampling_params *model_defaults)
{
    sampling_params p = model_defaults ? *model_defaults : sampling_params_default();
    if (!isnan(o->temperature)) p.temperature = (float)o->temperature;
    if (o->top_k >= 0) p.top_k = (int)o->top_k;
    if (!isnan(o->top_p)) p.top_p = (float)o->top_p;
    if (!isnan(o->min_p)) p.min_p = (float)o->min_p;
    if (!isnan(o->repetition_penalty)) p.repetition_penalty = (float)o->repetition_penalty;
    if (!isnan(o->frequency_penalty)) p.frequency_penalty = (float)o->frequency_penalty;
    if (!isnan(o->presence_penalty)) p.presence_penalty = (float)o->presence_penalty;
    if (o->logprobs >= 0) p.n_logprobs = o->logprobs > SAMPLER_MAX_LOGPROBS ? SAMPLER_MAX_LOGPROBS : (int)o->logprobs;
    p.seed = o->seed;
    return p;
}

/* RoPE frequencies exactly as Hugging Face transformers computes them
 * (modeling_rope_utils: default, linear, llama3 and yarn), so the forward
 * pass matches it past the original context too. Host code, run once at
 * forward_init; the backend's rope op only multiplies positions by these. */
#ifndef VB_ROPE_H
#define VB_ROPE_H

#include "model/model_config.h"

/* Fills inv_freq[head_dim / 2] and *cos_sin_scale (yarn's attention factor,
 * applied to cos and sin; 1 for the other types). */
void rope_inv_freq(const model_config *c, float *inv_freq, float *cos_sin_scale);

#endif

/* Philox4x32-10, the counter-based random generator of Salmon et al.,
 * "Parallel random numbers: as easy as 1, 2, 3" (SC 2011, Random123).
 *
 * The sampler needs random numbers that depend only on *what* they are for
 * (seed, row, sample, step, token), never on how many were drawn before or
 * which rows share the batch. A counter-based generator gives exactly that:
 * the output is a pure function of (counter, key). The same function is
 * written for the GPU sampling kernel; the known-answer vectors in
 * tests/engine/test_philox.c pin both to the published algorithm. */
#ifndef VB_PHILOX_H
#define VB_PHILOX_H

#include <stdint.h>

typedef struct philox4x32_ctr {
    uint32_t v[4];
} philox4x32_ctr;

typedef struct philox4x32_key {
    uint32_t v[2];
} philox4x32_key;

/* Ten rounds of Philox4x32 on `ctr` under `key`. */
philox4x32_ctr philox4x32_10(philox4x32_ctr ctr, philox4x32_key key);

/* A uniform double in the open interval (0, 1), 52 random bits, taken from
 * the first two output words. Never 0 or 1, so log(u) and log(-log(u)) are
 * finite. */
double philox_uniform_open(philox4x32_ctr out);

/* The sampler's keyed draw: uniform (0,1) for (seed, row, sample, step,
 * token). Counter = (token, step, sample, row), key = seed's two halves. */
double philox_sample_uniform(uint64_t seed, uint32_t row, uint32_t sample,
                             uint32_t step, uint32_t token);

/* Standard Gumbel noise -log(-log(u)) for the same key: adding it to
 * logits and taking the argmax samples from their softmax (Gumbel-max). */
double philox_sample_gumbel(uint64_t seed, uint32_t row, uint32_t sample,
                            uint32_t step, uint32_t token);

#endif

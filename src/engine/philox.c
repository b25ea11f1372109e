/* Philox4x32-10 (see philox.h). Constants and round structure as in
 * Random123's philox.h: two 32x32->64 multiplies per round, Weyl-sequence
 * key bumps between rounds. */
#include "engine/philox.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u /* golden ratio */
#define PHILOX_W1 0xBB67AE85u /* sqrt(3) - 1 */

static philox4x32_ctr philox_round(philox4x32_ctr c, philox4x32_key k)
{
    uint64_t p0 = (uint64_t)PHILOX_M0 * c.v[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * c.v[2];
    philox4x32_ctr r;
    r.v[0] = (uint32_t)(p1 >> 32) ^ c.v[1] ^ k.v[0];
    r.v[1] = (uint32_t)p1;
    r.v[2] = (uint32_t)(p0 >> 32) ^ c.v[3] ^ k.v[1];
    r.v[3] = (uint32_t)p0;
    return r;
}

philox4x32_ctr philox4x32_10(philox4x32_ctr ctr, philox4x32_key key)
{
    for (int i = 0; i < 10; i++) {
        if (i > 0) {
            key.v[0] += PHILOX_W0;
            key.v[1] += PHILOX_W1;
        }
        ctr = philox_round(ctr, key);
    }
    return ctr;
}

double philox_uniform_open(philox4x32_ctr out)
{
    uint64_t bits = ((uint64_t)(out.v[0] >> 6) << 26) | (uint64_t)(out.v[1] >> 6); /* 26 + 26 bits */
    /* +0.5 centres each of the 2^52 cells, so 0 and 1 are unreachable: the
     * largest value, 1 - 2^-53, is still exact in a double (53 bits would
     * round up to 1.0). */
    return ((double)bits + 0.5) * (1.0 / 4503599627370496.0);
}

double philox_sample_uniform(uint64_t seed, uint32_t row, uint32_t sample,
                             uint32_t step, uint32_t token)
{
    philox4x32_ctr c = {{token, step, sample, row}};
    philox4x32_key k = {{(uint32_t)seed, (uint32_t)(seed >> 32)}};
    return philox_uniform_open(philox4x32_10(c, k));
}

double philox_sample_gumbel(uint64_t seed, uint32_t row, uint32_t sample,
                            uint32_t step, uint32_t token)
{
    return -log(-log(philox_sample_uniform(seed, row, sample, step, token)));
}

/* Synthetic prompts for `voltbatch bench`; see bench_input.h. */
#include "run/bench_input.h"

#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/h5_util.h"

/* Output k of SplitMix64 seeded with `seed` (its state after k steps of the
 * golden-ratio increment, mixed): indexable, so a row's draws need no
 * shared stream. */
static uint64_t splitmix64_at(uint64_t seed, uint64_t k)
{
    uint64_t z = seed + (k + 1) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* (0, 1]: never 0, whose log Box-Muller cannot take */
static double unit_open0(uint64_t x)
{
    return (double)((x >> 11) + 1) * 0x1p-53;
}

void bench_lengths_lognormal(int32_t *out, int64_t n, double mean, int32_t min_len,
                             int32_t max_len, uint64_t seed, int stream)
{
    const double sigma = BENCH_LOGNORMAL_SIGMA;
    const double mu = log(mean) - sigma * sigma / 2;
    const double two_pi = 6.283185307179586;
    for (int64_t r = 0; r < n; r++) {
        uint64_t k = 4 * (uint64_t)r + 2 * (uint64_t)stream;
        double u1 = unit_open0(splitmix64_at(seed, k));
        double u2 = unit_open0(splitmix64_at(seed, k + 1));
        double z = sqrt(-2 * log(u1)) * cos(two_pi * u2);
        /* rounded to nearest (not truncated: that would lower the mean by
         * half a token), clamped in double: a far tail can pass INT32_MAX */
        double len = floor(exp(mu + sigma * z) + 0.5);
        out[r] = len < min_len ? min_len : len > max_len ? max_len : (int32_t)len;
    }
}

static double normal_cdf(double x)
{
    return 0.5 * erfc(-x / sqrt(2.0));
}

double bench_lognormal_clamped_mean(double mean, double min_len, double max_len)
{
    const double s = BENCH_LOGNORMAL_SIGMA;
    const double mu = log(mean) - s * s / 2;
    /* the clamps in standard units of ln X; E[X; X < c] = mean Phi((ln c - mu) / s - s) */
    const double a = (log(min_len) - mu) / s, b = (log(max_len) - mu) / s;
    return min_len * normal_cdf(a) + max_len * (1 - normal_cdf(b)) +
           mean * (normal_cdf(b - s) - normal_cdf(a - s));
}

/* The ids of every row in one buffer, rows[] pointing into it. */
static int32_t *fill_ids(const bench_input_spec *s, hvl_t *rows)
{
    size_t total = 0;
    for (int64_t r = 0; r < s->n_prompts; r++)
        total += (size_t)s->prefix_len + (size_t)(s->input_lens ? s->input_lens[r] : s->input_len);
    int32_t *ids = malloc(sizeof(int32_t) * total + 4);
    if (!ids)
        return NULL;
    uint64_t x = s->seed * 0x9e3779b97f4a7c15ull + 1;
    int32_t *p = ids;
    for (int64_t r = 0; r < s->n_prompts; r++) {
        const int len = s->prefix_len + (s->input_lens ? s->input_lens[r] : s->input_len);
        if (r > 0 && s->prefix_len > 0) /* the shared part: row 0's first ids */
            memcpy(p, ids, (size_t)s->prefix_len * sizeof *p);
        for (int k = r > 0 ? s->prefix_len : 0; k < len; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            p[k] = s->first_id + (int32_t)((x >> 33) % (uint64_t)s->n_ids);
        }
        rows[r].len = (size_t)len;
        rows[r].p = p;
        p += len;
    }
    return ids;
}

int bench_input_write(const char *path, const bench_input_spec *s, vb_err *err)
{
    h5_quiet();
    hvl_t *rows = calloc((size_t)s->n_prompts + 1, sizeof *rows);
    int32_t *ids = rows ? fill_ids(s, rows) : NULL;
    if (!rows || !ids) {
        free(rows);
        return vb_err_set(err, "%s: out of memory for %lld synthetic prompts", path,
                          (long long)s->n_prompts);
    }
    int rc = -1;
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t vt = H5Tvlen_create(H5T_NATIVE_INT32);
    if (f < 0 || vt < 0)
        vb_err_set(err, "%s: cannot create the synthetic input", path);
    else
        rc = h5_write_1d(f, "input_ids", vt, vt, (size_t)s->n_prompts, rows, err);
    if (rc == 0 && s->output_lens) /* the reader takes any integer type */
        rc = h5_write_1d(f, "max_new_tokens", H5T_STD_I32LE, H5T_NATIVE_INT32,
                         (size_t)s->n_prompts, s->output_lens, err);
    if (vt >= 0 && H5Tclose(vt) < 0 && rc == 0)
        rc = vb_err_set(err, "%s: closing a type failed", path);
    if (f >= 0 && H5Fclose(f) < 0 && rc == 0)
        rc = vb_err_set(err, "%s: cannot close the synthetic input", path);
    free(rows);
    free(ids);
    return rc;
}

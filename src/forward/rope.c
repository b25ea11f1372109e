/* RoPE inverse frequencies: see rope.h. transformers computes the base
 * frequencies in fp32 (torch.float) and the yarn/llama3 corrections in fp32
 * tensors with Python-double scalars; we keep the same precision at each
 * step, since at position p an error e in inv_freq moves the angle by p*e. */
#include "forward/rope.h"

#include <math.h>

static float clampf(float x, float lo, float hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

/* yarn: the dimension at which the wavelength makes num_rot rotations over
 * the original context (find_correction_dim in transformers). */
static double yarn_correction_dim(double num_rot, int dim, double base, double orig_ctx)
{
    return (dim * log(orig_ctx / (num_rot * 2 * M_PI))) / (2 * log(base));
}

void rope_inv_freq(const model_config *c, float *inv_freq, float *cos_sin_scale)
{
    const vb_rope_scaling *rs = &c->rope_scaling;
    int dim = c->head_dim, half = dim / 2;
    float base = (float)c->rope_theta;
    *cos_sin_scale = 1.0f;

    /* base ** (arange(0, dim, 2).float() / dim), all in fp32 */
    for (int i = 0; i < half; i++)
        inv_freq[i] = 1.0f / powf(base, (float)(2 * i) / (float)dim);

    switch (rs->type) {
    case VB_ROPE_DEFAULT:
        break;
    case VB_ROPE_LINEAR:
        for (int i = 0; i < half; i++)
            inv_freq[i] = inv_freq[i] / (float)rs->factor;
        break;
    case VB_ROPE_LLAMA3: {
        /* Long wavelengths are divided by factor, short ones kept, the band
         * between interpolated smoothly (_compute_llama3_parameters). */
        double factor = rs->factor, old_ctx = rs->original_max_position_embeddings;
        double lo = rs->low_freq_factor, hi = rs->high_freq_factor;
        double low_wavelen = old_ctx / lo, high_wavelen = old_ctx / hi;
        for (int i = 0; i < half; i++) {
            float f = inv_freq[i];
            float wavelen = (float)(2 * M_PI) / f;
            float scaled = wavelen > (float)low_wavelen ? f / (float)factor : f;
            if (!(wavelen < (float)high_wavelen) && !(wavelen > (float)low_wavelen)) {
                float smooth = ((float)old_ctx / wavelen - (float)lo) / (float)(hi - lo);
                scaled = (1.0f - smooth) * scaled / (float)factor + smooth * scaled;
            }
            inv_freq[i] = scaled;
        }
        break;
    }
    case VB_ROPE_YARN: {
        /* Blend of interpolated (divided by factor) and extrapolated
         * frequencies with a linear ramp between the correction dims, and
         * cos/sin scaled by the attention factor (_compute_yarn_parameters;
         * truncate = true, transformers' default). */
        double factor = rs->factor;
        double attn = rs->attention_factor;
        if (attn <= 0)
            attn = factor <= 1 ? 1.0 : 0.1 * log(factor) + 1.0;
        *cos_sin_scale = (float)attn;
        double beta_fast = rs->beta_fast > 0 ? rs->beta_fast : 32;
        double beta_slow = rs->beta_slow > 0 ? rs->beta_slow : 1;
        double orig = rs->original_max_position_embeddings;
        double low = floor(yarn_correction_dim(beta_fast, dim, c->rope_theta, orig));
        double high = ceil(yarn_correction_dim(beta_slow, dim, c->rope_theta, orig));
        if (low < 0)
            low = 0;
        if (high > dim - 1)
            high = dim - 1;
        if (low == high)
            high += 0.001; /* as transformers: avoid a zero-width ramp */
        for (int i = 0; i < half; i++) {
            float pos_freq = powf(base, (float)(2 * i) / (float)dim);
            float extrap = 1.0f / pos_freq;
            float interp = 1.0f / ((float)factor * pos_freq);
            float ramp = clampf(((float)i - (float)low) / (float)(high - low), 0.0f, 1.0f);
            float extrap_factor = 1.0f - ramp;
            inv_freq[i] = interp * (1.0f - extrap_factor) + extrap * extrap_factor;
        }
        break;
    }
    }
}

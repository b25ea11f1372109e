/* Quantizing one K or V row for the int8 KV cache: see kv_int8.h. */
#include "forward/kv_int8.h"

#include <math.h>
#include <string.h>

#include "forward/kv_dtype.h"

void kv_int8_quantize(const float *x, int n, int8_t *q, float *scale)
{
    float amax = 0.0f;
    for (int i = 0; i < n; i++)
        amax = fmaxf(amax, fabsf(x[i]));
    if (!(amax > 0.0f) || !isfinite(amax)) {
        /* zeros, or a row already broken upstream: store zeros rather
         * than spread NaN through the scale into every later step */
        memset(q, 0, (size_t)n);
        *scale = 0.0f;
        return;
    }
    float s = amax / 127.0f, inv = 127.0f / amax;
    for (int i = 0; i < n; i++) {
        float r = nearbyintf(x[i] * inv); /* the default mode: to nearest, ties to even */
        if (isnan(r))
            r = 0.0f; /* a NaN among finite values: defined, not UB in the cast */
        q[i] = (int8_t)(r > 127.0f ? 127 : r < -127.0f ? -127 : (int)r);
    }
    *scale = s;
}

int vb_kv_dtype_parse(const char *s, vb_kv_dtype *out)
{
    if (!strcmp(s, "fp16") || !strcmp(s, "auto")) {
        *out = VB_KV_ACT;
        return 0;
    }
    if (!strcmp(s, "int8")) {
        *out = VB_KV_INT8;
        return 0;
    }
    return -1;
}

const char *vb_kv_dtype_name(vb_kv_dtype d)
{
    return d == VB_KV_INT8 ? "int8" : "fp16";
}

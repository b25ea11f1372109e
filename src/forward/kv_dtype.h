/* The KV cache's element type (--kv-cache-dtype), a value of its own so
 * that the run's configuration, the cache and the backends share it
 * without pulling each other's headers in. */
#ifndef VB_KV_DTYPE_H
#define VB_KV_DTYPE_H

typedef enum vb_kv_dtype {
    VB_KV_ACT = 0, /* the backend's activation type: fp32 on the CPU, fp16 on CUDA */
    VB_KV_INT8,    /* int8 with an fp32 scale per token and head (forward/kv_int8.h) */
} vb_kv_dtype;

/* "fp16" (VB_KV_ACT: the name users know it by) or "int8"; 0, or -1 for
 * anything else. */
int vb_kv_dtype_parse(const char *s, vb_kv_dtype *out);
const char *vb_kv_dtype_name(vb_kv_dtype d);

#endif

/* Shared by the quantized-checkpoint readers (quant_awq.c, quant_gptq.c,
 * quant_ct.c; quant_int8.c, which quantizes a float checkpoint at load)
 * and quant_load.c: the decoded slice each reader produces, the checked
 * tensor access they use and the threads that decode (quant_rows.c). Not
 * for other folders (tests/model's tests of them aside). */
#ifndef VB_QUANT_INTERNAL_H
#define VB_QUANT_INTERNAL_H

#include <string.h>

#include "model/quant_weights.h"

/* One projection's slice for this rank, decoded but not yet laid out:
 * values one byte each in checkpoint column order, every group of the
 * tensor (the slice's g_idx points into them). */
typedef struct quant_raw {
    int bits;
    int64_t n_out, n_in;      /* the slice */
    int64_t in_full;          /* the checkpoint's input columns */
    int group_size;           /* the checkpoint's (in_full for one group per row) */
    int64_t n_groups;         /* the checkpoint's groups: scale/zero columns */
    uint8_t *qv;              /* [n_out][n_in] unsigned */
    uint16_t *scale, *zero;   /* fp16 [n_out][n_groups], zero in unsigned units */
    int32_t *gidx;            /* [n_in] group of each slice column */
} quant_raw;

/* What a reader is asked: names, the full shape and this rank's part. */
typedef struct quant_req {
    const safetensors *st;
    const vb_quant_config *qc;
    const tensor_spec *s;
    char prefix[96];          /* s->name without ".weight" */
    const char *dir;
    int64_t o0, no;           /* output rows kept */
    int64_t i0, ni;           /* input columns kept */
    bool check_only;          /* validate, allocate and decode nothing */
    uint64_t *oor;            /* fp16 range counter for converted scales */
    int threads;              /* decoding threads (<= 1: the caller's alone) */
} quant_req;

int quant_awq_read(const quant_req *r, quant_raw *out, vb_err *err);
int quant_gptq_read(const quant_req *r, quant_raw *out, vb_err *err);
int quant_ct_read(const quant_req *r, quant_raw *out, vb_err *err);
/* --quantize int8: the float weight quantized here (quant_int8.c). */
int quant_int8_read(const quant_req *r, quant_raw *out, vb_err *err);

/* prefix + suffix, checked: present, dtype one of want[0..n_want), ndim
 * and (when >= 0) each dimension. NULL with err naming file and tensor;
 * with optional = true, a missing tensor gives NULL and no error. */
const st_tensor *quant_tensor(const quant_req *r, const char *suffix, const st_dtype *want,
                              int n_want, int ndim, int64_t d0, int64_t d1, bool optional,
                              vb_err *err);

#define QUANT_TILE 64 /* values a side of the readers' transposing tiles */

/* Decodes output rows [0, r->no) as fn(rq, ctx, o_begin, o_end, err) over
 * chunks of rows on r->threads threads, so a 7B checkpoint's ~6.5 billion
 * packed values do not take a minute on one core. rq is a copy of r with
 * its own fp16 range counter (added into r->oor at the end), so fn may
 * call quant_half. Chunks write disjoint rows of the output; the result
 * is the same for any thread count. On failure returns -1 with the error
 * of the first failing chunk in row order. */
typedef int (*quant_rows_fn)(const quant_req *rq, void *ctx, int64_t o_begin, int64_t o_end,
                             vb_err *err);
int quant_for_rows(const quant_req *r, quant_rows_fn fn, void *ctx, vb_err *err);

/* The first byte of t's data (shapes were checked by quant_tensor, and
 * the data range against the file when the checkpoint was opened). */
const uint8_t *quant_data(const quant_req *r, const st_tensor *t);

/* Word i of a packed int32 array (unaligned-safe). */
static inline uint32_t quant_word(const uint8_t *data, int64_t i)
{
    uint32_t v;
    memcpy(&v, data + (size_t)i * 4, 4);
    return v;
}

/* The file holding t, for messages. */
const char *quant_file(const quant_req *r, const st_tensor *t);
/* Element i of an I32 / I64 tensor (unaligned-safe). */
int64_t quant_int(const quant_req *r, const st_tensor *t, int64_t i);
/* Element i of an F16 / BF16 / F32 tensor as fp16 bits (counted into
 * r->oor when beyond the fp16 range). */
uint16_t quant_half(const quant_req *r, const st_tensor *t, int64_t i);

/* Allocates out's arrays for r's slice (n_groups columns of scales). */
int quant_raw_alloc(const quant_req *r, quant_raw *out, int bits, int group_size,
                    int64_t n_groups, vb_err *err);

#endif

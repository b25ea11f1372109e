/* The safetensors header parser: 8-byte little-endian length, then a JSON
 * object {name: {dtype, shape, data_offsets}, "__metadata__": {...}}.
 *
 * Pure (no I/O) so the fuzzer can drive it. Everything in the header is
 * untrusted: lengths and products are checked for overflow before use. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "model/safetensors.h"

/* Larger headers than this are not checkpoints (a 72B model's is ~100 KiB). */
#define ST_MAX_HEADER (100u << 20)

static const struct {
    const char *name;
    st_dtype dtype;
    size_t size;
} dtypes[] = {
    {"F16", ST_F16, 2},   {"BF16", ST_BF16, 2}, {"F32", ST_F32, 4},
    {"F64", ST_F64, 8},   {"I64", ST_I64, 8},   {"U64", ST_U64, 8},
    {"I32", ST_I32, 4},   {"U32", ST_U32, 4},   {"I16", ST_I16, 2},
    {"U16", ST_U16, 2},   {"I8", ST_I8, 1},     {"U8", ST_U8, 1},
    {"BOOL", ST_BOOL, 1}, {"F8_E4M3", ST_F8_E4M3, 1}, {"F8_E5M2", ST_F8_E5M2, 1},
};
#define N_DTYPES (sizeof dtypes / sizeof dtypes[0])

const char *st_dtype_name(st_dtype d)
{
    for (size_t i = 0; i < N_DTYPES; i++)
        if (dtypes[i].dtype == d)
            return dtypes[i].name;
    return "?";
}

size_t st_dtype_size(st_dtype d)
{
    for (size_t i = 0; i < N_DTYPES; i++)
        if (dtypes[i].dtype == d)
            return dtypes[i].size;
    return 0;
}

static int cmp_begin(const void *a, const void *b)
{
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

/* Checks one entry and fills t (name not set). */
static int parse_entry(const char *fname, const char *name, json_t *e, uint64_t data_size,
                       st_tensor *t, vb_err *err)
{
    if (!json_is_object(e))
        return vb_err_set(err, "%s: tensor '%s': header entry is not an object", fname, name);
    json_t *jd = json_object_get(e, "dtype"), *js = json_object_get(e, "shape"),
           *jo = json_object_get(e, "data_offsets");
    if (!json_is_string(jd))
        return vb_err_set(err, "%s: tensor '%s': no dtype string", fname, name);
    size_t esize = 0;
    for (size_t i = 0; i < N_DTYPES; i++)
        if (strcmp(json_string_value(jd), dtypes[i].name) == 0) {
            t->dtype = dtypes[i].dtype;
            esize = dtypes[i].size;
        }
    if (!esize)
        return vb_err_set(err, "%s: tensor '%s': unknown dtype '%.16s'", fname, name,
                          json_string_value(jd));
    if (!json_is_array(js) || json_array_size(js) > ST_MAX_DIMS)
        return vb_err_set(err, "%s: tensor '%s': shape is not an array of at most %d sizes",
                          fname, name, ST_MAX_DIMS);
    t->ndim = (int)json_array_size(js);
    uint64_t count = 1;
    for (int d = 0; d < t->ndim; d++) {
        json_t *x = json_array_get(js, (size_t)d);
        if (!json_is_integer(x) || json_integer_value(x) < 0)
            return vb_err_set(err, "%s: tensor '%s': shape[%d] is not a size", fname, name, d);
        t->shape[d] = json_integer_value(x);
        uint64_t s = (uint64_t)t->shape[d];
        if (s && count > UINT64_MAX / s / esize)
            return vb_err_set(err, "%s: tensor '%s': shape overflows", fname, name);
        count *= s;
    }
    if (!json_is_array(jo) || json_array_size(jo) != 2 ||
        !json_is_integer(json_array_get(jo, 0)) || !json_is_integer(json_array_get(jo, 1)))
        return vb_err_set(err, "%s: tensor '%s': data_offsets is not [begin, end]", fname, name);
    json_int_t b = json_integer_value(json_array_get(jo, 0)),
               en = json_integer_value(json_array_get(jo, 1));
    if (b < 0 || en < b)
        return vb_err_set(err, "%s: tensor '%s': data_offsets [%lld, %lld] are not a byte range",
                          fname, name, (long long)b, (long long)en);
    if ((uint64_t)en > data_size)
        return vb_err_set(err, "%s: tensor '%s': data_offsets [%lld, %lld] run past the end of "
                          "the data section (%llu bytes): file truncated or offsets corrupt",
                          fname, name, (long long)b, (long long)en, (unsigned long long)data_size);
    t->begin = (uint64_t)b;
    t->end = (uint64_t)en;
    if (count * esize != t->end - t->begin)
        return vb_err_set(err, "%s: tensor '%s': %llu bytes for shape and dtype %s need %llu",
                          fname, name, (unsigned long long)(t->end - t->begin),
                          json_string_value(jd), (unsigned long long)(count * esize));
    t->rows = t->ndim ? t->shape[0] : 1;
    t->cols = t->rows ? (int64_t)(count / (uint64_t)t->rows) : 0;
    if (t->ndim && !t->rows)
        t->cols = 0;
    return 0;
}

int st_parse_header(const uint8_t *buf, size_t size, const char *fname, int file_index,
                    st_tensor **tensors, int *n, uint64_t *data_start, vb_err *err)
{
    if (size < 8)
        return vb_err_set(err, "%s: truncated: %zu bytes, not even a header length", fname, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | buf[i];
    if (hlen > size - 8)
        return vb_err_set(err, "%s: header length %llu runs past the end of the file (%zu bytes); "
                          "truncated or not a safetensors file", fname, (unsigned long long)hlen, size);
    if (hlen > ST_MAX_HEADER)
        return vb_err_set(err, "%s: header length %llu is implausibly large", fname,
                          (unsigned long long)hlen);
    uint64_t data_size = size - 8 - hlen;
    json_error_t je;
    json_t *root = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return vb_err_set(err, "%s: header is not valid JSON (%s, at byte %d)", fname, je.text,
                          je.position);
    if (!json_is_object(root)) {
        json_decref(root);
        return vb_err_set(err, "%s: header is not a JSON object", fname);
    }
    int first = *n, rc = 0;
    size_t n_new = json_object_size(root);
    st_tensor *grown = realloc(*tensors, (size_t)(*n + (int)n_new + 1) * sizeof **tensors);
    if (!grown) {
        json_decref(root);
        return vb_err_set(err, "%s: out of memory for %zu tensors", fname, n_new);
    }
    *tensors = grown;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0)
            continue;
        st_tensor *t = &(*tensors)[*n];
        memset(t, 0, sizeof *t);
        if ((rc = parse_entry(fname, key, val, data_size, t, err)) != 0)
            break;
        t->file = file_index;
        if (!(t->name = strdup(key))) {
            rc = vb_err_set(err, "%s: out of memory", fname);
            break;
        }
        (*n)++;
    }
    json_decref(root);
    int n_file = *n - first;
    if (rc == 0 && n_file > 1) {
        /* Overlap check: sort this file's tensors by offset, each must start at
         * or after the previous one's end. Empty tensors overlap nothing. */
        const st_tensor **by = malloc((size_t)n_file * sizeof *by);
        if (!by)
            rc = vb_err_set(err, "%s: out of memory", fname);
        for (int i = 0; by && i < n_file; i++)
            by[i] = &(*tensors)[first + i];
        if (by) {
            qsort(by, (size_t)n_file, sizeof *by, cmp_begin);
            const st_tensor *prev = NULL;
            for (int i = 0; i < n_file && rc == 0; i++) {
                if (by[i]->begin == by[i]->end)
                    continue;
                if (prev && by[i]->begin < prev->end)
                    rc = vb_err_set(err, "%s: tensors '%s' and '%s' overlap (bytes [%llu, %llu) "
                                    "and [%llu, %llu))", fname, prev->name, by[i]->name,
                                    (unsigned long long)prev->begin, (unsigned long long)prev->end,
                                    (unsigned long long)by[i]->begin, (unsigned long long)by[i]->end);
                prev = by[i];
            }
            free(by);
        }
    }
    if (rc != 0) {
        for (int i = first; i < *n; i++)
            free((*tensors)[i].name);
        *n = first;
        return -1;
    }
    *data_start = 8 + hlen;
    return 0;
}

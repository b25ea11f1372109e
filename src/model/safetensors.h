/* Reading Hugging Face safetensors checkpoints, single file or sharded.
 *
 * Files are memory-mapped read-only; a read touches only the pages of the
 * rows or columns asked for, so a rank reads little more than its own
 * slice from a shared file system. Every header is checked before any
 * tensor is used: header length inside the file, known dtype,
 * shape x dtype size == byte length, offsets inside the data section and
 * not overlapping, no duplicate names. Errors name the file and tensor.
 *
 * A tensor is addressed as a matrix [rows, cols]: rows = shape[0] (1 for a
 * scalar), cols = the product of the remaining dimensions (1 for 1-D). */
#ifndef VB_SAFETENSORS_H
#define VB_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "model/model_weights.h"
#include "util/errors.h"

#define ST_MAX_DIMS 8

typedef enum st_dtype {
    ST_F16, ST_BF16, ST_F32,                      /* readable */
    ST_F64, ST_I64, ST_U64, ST_I32, ST_U32, ST_I16, ST_U16,
    ST_I8, ST_U8, ST_BOOL, ST_F8_E4M3, ST_F8_E5M2, /* parsed, refused on read */
} st_dtype;

typedef struct st_tensor {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t rows, cols;
    uint64_t begin, end;  /* byte offsets inside the file's data section */
    int file;             /* index into safetensors.files */
} st_tensor;

typedef struct st_file {
    char *path;
    const uint8_t *map;   /* whole file, read-only */
    size_t size;
    uint64_t data_start;  /* 8 + header length */
} st_file;

typedef struct safetensors {
    st_file *files;
    int n_files;
    st_tensor *tensors;   /* sorted by name */
    int n_tensors;
} safetensors;

const char *st_dtype_name(st_dtype d);
size_t st_dtype_size(st_dtype d);

/* Parses and checks the header of one file image (buf, size): the pure part,
 * shared with the fuzzer. Appends to *tensors / *n (realloc'd; names
 * malloc'd), each with .file = file_index. `fname` is for messages. */
int st_parse_header(const uint8_t *buf, size_t size, const char *fname, int file_index,
                    st_tensor **tensors, int *n, uint64_t *data_start, vb_err *err);

/* Opens DIR/model.safetensors.index.json and every shard it names, or else
 * DIR/model.safetensors. */
int st_open_dir(safetensors *st, const char *model_dir, vb_err *err);
/* Opens one file. */
int st_open_file(safetensors *st, const char *path, vb_err *err);
void st_close(safetensors *st);

/* NULL when absent. */
const st_tensor *st_find(const safetensors *st, const char *name);

/* Copies rows [row0, row0 + nrows) (all columns) or columns [col0, col0 +
 * ncols) (all rows) of t into dst, converted to F32 or F16, row-major.
 * Conversion to F16 clamps finite values beyond +-65504 and adds how many
 * to *out_of_range (may be NULL). */
int st_read_rows(const safetensors *st, const st_tensor *t, int64_t row0, int64_t nrows,
                 vb_wdtype out, void *dst, uint64_t *out_of_range, vb_err *err);
int st_read_cols(const safetensors *st, const st_tensor *t, int64_t col0, int64_t ncols,
                 vb_wdtype out, void *dst, uint64_t *out_of_range, vb_err *err);

#endif

/* Opening, looking up and reading safetensors checkpoints (see
 * safetensors.h). The header parser is in safetensors_header.c. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/safetensors.h"
#include "util/half.h"
#include "util/json_file.h"
#include "util/open_regular.h"

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

/* Maps one file and parses its header into st. */
static int add_file(safetensors *st, const char *path, vb_err *err)
{
    struct stat sb;
    int fd = vb_open_regular(path, &sb);
    if (fd == -2)
        return vb_err_set(err, "%s: not a regular file", path);
    if (fd < 0)
        return vb_err_set(err, "%s: %s", path, strerror(errno));
    size_t size = (size_t)sb.st_size;
    const uint8_t *map = NULL;
    if (size > 0) {
        map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) {
            close(fd);
            return vb_err_set(err, "%s: mmap failed: %s", path, strerror(errno));
        }
    }
    close(fd); /* the mapping keeps the file */
    st_file *grown = realloc(st->files, (size_t)(st->n_files + 1) * sizeof *grown);
    if (!grown) {
        if (map)
            munmap((void *)map, size);
        return vb_err_set(err, "%s: out of memory", path);
    }
    st->files = grown;
    st_file *f = &st->files[st->n_files];
    f->path = strdup(path);
    f->map = map;
    f->size = size;
    st->n_files++;
    if (!f->path)
        return vb_err_set(err, "%s: out of memory", path);
    return st_parse_header(map ? map : (const uint8_t *)"", size, path, st->n_files - 1,
                           &st->tensors, &st->n_tensors, &f->data_start, err);
}

/* Sorts by name for st_find and refuses a name found twice (two shards). */
static int finish(safetensors *st, vb_err *err)
{
    if (st->n_tensors > 1)
        qsort(st->tensors, (size_t)st->n_tensors, sizeof *st->tensors, cmp_name);
    for (int i = 1; i < st->n_tensors; i++)
        if (strcmp(st->tensors[i - 1].name, st->tensors[i].name) == 0)
            return vb_err_set(err, "tensor '%s' appears in both %s and %s", st->tensors[i].name,
                              st->files[st->tensors[i - 1].file].path,
                              st->files[st->tensors[i].file].path);
    return 0;
}

int st_open_file(safetensors *st, const char *path, vb_err *err)
{
    memset(st, 0, sizeof *st);
    if (add_file(st, path, err) != 0 || finish(st, err) != 0) {
        st_close(st);
        return -1;
    }
    return 0;
}

static int open_index(safetensors *st, const char *dir, const char *index_path, vb_err *err)
{
    json_error_t je;
    json_t *root = vb_json_load_file(index_path, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return vb_err_set(err, "%s: %s (line %d)", index_path, je.text, je.line);
    json_t *map = json_object_get(root, "weight_map");
    int rc = 0;
    if (!json_is_object(map))
        rc = vb_err_set(err, "%s: no \"weight_map\" object", index_path);
    /* Each shard once, in the order first named. */
    const char **opened = calloc(json_object_size(map) + 1, sizeof *opened);
    int n_opened = 0;
    const char *name;
    json_t *v;
    if (rc == 0)
        json_object_foreach(map, name, v) {
            if (!json_is_string(v)) {
                rc = vb_err_set(err, "%s: weight_map entry '%s' is not a file name", index_path, name);
                break;
            }
            const char *shard = json_string_value(v);
            if (strchr(shard, '/') || strcmp(shard, "..") == 0 || !*shard) {
                rc = vb_err_set(err, "%s: shard '%s' for tensor '%s' is not a file name in the "
                                "model directory", index_path, shard, name);
                break;
            }
            int seen = 0;
            for (int i = 0; i < n_opened && !seen; i++)
                seen = strcmp(opened[i], shard) == 0;
            if (seen)
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, shard);
            if (access(path, R_OK) != 0) {
                const int e = errno;
                char why[1200];
                if (vb_dangling_link(path, why, sizeof why))
                    rc = vb_err_set(err, "%s: %s, listed in %s for tensor '%s'", path, why,
                                    index_path, name);
                else
                    rc = vb_err_set(err, "%s: missing shard (%s), listed in %s for tensor '%s'",
                                    path, strerror(e), index_path, name);
                break;
            }
            if ((rc = add_file(st, path, err)) != 0)
                break;
            opened[n_opened++] = shard;
        }
    if (rc == 0 && (rc = finish(st, err)) == 0)
        json_object_foreach(map, name, v) {
            const st_tensor *t = st_find(st, name);
            if (!t || strcmp(strrchr(st->files[t->file].path, '/') + 1, json_string_value(v)) != 0) {
                rc = vb_err_set(err, "%s: tensor '%s' listed in %s is not in that file", index_path,
                                name, json_string_value(v));
                break;
            }
        }
    free(opened);
    json_decref(root);
    return rc;
}

int st_open_dir(safetensors *st, const char *model_dir, vb_err *err)
{
    memset(st, 0, sizeof *st);
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", model_dir);
    int rc;
    char why[1200];
    if (access(path, F_OK) == 0) {
        rc = open_index(st, model_dir, path, err);
    } else {
        /* a broken link is named, not taken for an absent file */
        if (vb_dangling_link(path, why, sizeof why))
            return vb_err_set(err, "%s: %s", path, why);
        snprintf(path, sizeof path, "%s/model.safetensors", model_dir);
        if (access(path, F_OK) != 0) {
            if (vb_dangling_link(path, why, sizeof why))
                return vb_err_set(err, "%s: %s", path, why);
            return vb_err_set(err, "%s: no model.safetensors or model.safetensors.index.json "
                              "(only safetensors checkpoints are read)", model_dir);
        }
        rc = add_file(st, path, err);
        if (rc == 0)
            rc = finish(st, err);
    }
    if (rc != 0)
        st_close(st);
    return rc;
}

void st_close(safetensors *st)
{
    for (int i = 0; i < st->n_files; i++) {
        if (st->files[i].map)
            munmap((void *)st->files[i].map, st->files[i].size);
        free(st->files[i].path);
    }
    for (int i = 0; i < st->n_tensors; i++)
        free(st->tensors[i].name);
    free(st->files);
    free(st->tensors);
    memset(st, 0, sizeof *st);
}

const st_tensor *st_find(const safetensors *st, const char *name)
{
    if (!st->n_tensors)
        return NULL;
    st_tensor key = {.name = (char *)name};
    return bsearch(&key, st->tensors, (size_t)st->n_tensors, sizeof key, cmp_name);
}

/* Converts n contiguous source elements. The source may be unaligned (the
 * data section starts wherever the header ends), so elements are memcpy'd. */
static void convert(const uint8_t *src, st_dtype in, int64_t n, vb_wdtype out, void *dst,
                    uint64_t *oor)
{
    float *df = dst;
    uint16_t *dh = dst;
    for (int64_t i = 0; i < n; i++) {
        float f;
        uint16_t h;
        if (in == ST_F32) {
            memcpy(&f, src + 4 * i, 4);
        } else {
            memcpy(&h, src + 2 * i, 2);
            if (in == ST_F16 && out == VB_W_F16) {
                dh[i] = h; /* bit copy, no round trip */
                continue;
            }
            f = in == ST_F16 ? vb_half_to_float(h) : vb_bf16_to_float(h);
        }
        if (out == VB_W_F32)
            df[i] = f;
        else
            dh[i] = vb_float_to_half_clamped(f, oor);
    }
}

static int check_read(const safetensors *st, const st_tensor *t, vb_err *err)
{
    if (t->dtype != ST_F16 && t->dtype != ST_BF16 && t->dtype != ST_F32)
        return vb_err_set(err, "%s: tensor '%s': dtype %s is not supported (F16, BF16, F32)",
                          st->files[t->file].path, t->name, st_dtype_name(t->dtype));
    return 0;
}

int st_read_rows(const safetensors *st, const st_tensor *t, int64_t row0, int64_t nrows,
                 vb_wdtype out, void *dst, uint64_t *out_of_range, vb_err *err)
{
    if (check_read(st, t, err) != 0)
        return -1;
    if (row0 < 0 || nrows < 0 || row0 + nrows > t->rows)
        return vb_err_set(err, "%s: tensor '%s': rows [%lld, %lld) outside its %lld rows",
                          st->files[t->file].path, t->name, (long long)row0,
                          (long long)(row0 + nrows), (long long)t->rows);
    const st_file *f = &st->files[t->file];
    size_t es = st_dtype_size(t->dtype);
    const uint8_t *src = f->map + f->data_start + t->begin + (uint64_t)row0 * (uint64_t)t->cols * es;
    convert(src, t->dtype, nrows * t->cols, out, dst, out_of_range);
    return 0;
}

int st_read_cols(const safetensors *st, const st_tensor *t, int64_t col0, int64_t ncols,
                 vb_wdtype out, void *dst, uint64_t *out_of_range, vb_err *err)
{
    if (check_read(st, t, err) != 0)
        return -1;
    if (col0 < 0 || ncols < 0 || col0 + ncols > t->cols)
        return vb_err_set(err, "%s: tensor '%s': columns [%lld, %lld) outside its %lld columns",
                          st->files[t->file].path, t->name, (long long)col0,
                          (long long)(col0 + ncols), (long long)t->cols);
    const st_file *f = &st->files[t->file];
    size_t es = st_dtype_size(t->dtype), os = out == VB_W_F32 ? 4 : 2;
    const uint8_t *base = f->map + f->data_start + t->begin;
    for (int64_t r = 0; r < t->rows; r++)
        convert(base + ((uint64_t)r * (uint64_t)t->cols + (uint64_t)col0) * es, t->dtype, ncols,
                out, (uint8_t *)dst + (size_t)r * (size_t)ncols * os, out_of_range);
    return 0;
}

/* pack's columns written a block at a time; see pack_columns.h. */
#include "io/pack_columns.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/h5_text.h"
#include "io/h5_util.h"
#include "util/same_file.h"

/* The columns' names (the text column's depends on the kind). */
#define TEXT_NAME(s) ((s)->messages ? "messages" : "prompts")

/* What an unset row holds, by the column's memory type. */
typedef enum { UNSET_STRING, UNSET_INT32, UNSET_INT64 } unset_kind;

void pack_out_init(pack_out *o)
{
    *o = (pack_out){.f = -1, .text = -1, .id = -1, .system = -1, .max_new_tokens = -1,
                    .seed = -1, .str_type = -1, .bytes_file_type = -1, .bytes_mem_type = -1};
}

int pack_out_create(pack_out *o, const char *path, hsize_t known_rows, bool prompts_bytes,
                    vb_err *err)
{
    pack_out_init(o);
    o->known_rows = known_rows;
    o->prompts_bytes = prompts_bytes;
    h5_quiet();
    if (vb_remove_if_there(path, err) < 0)
        return -1;
    o->str_type = h5_vlen_utf8_type();
    o->bytes_file_type = H5Tvlen_create(H5T_STD_U8LE);
    o->bytes_mem_type = H5Tvlen_create(H5T_NATIVE_UCHAR);
    if (o->str_type < 0 || o->bytes_file_type < 0 || o->bytes_mem_type < 0)
        return vb_err_set(err, "%s: cannot make the columns' types", path);
    /* exclusively: never through a link or into a file made since */
    hid_t fapl = h5_fapl_unlocked(); /* path is this process's alone (h5_util.h) */
    o->f = fapl < 0 ? -1 : H5Fcreate(path, H5F_ACC_EXCL, H5P_DEFAULT, fapl);
    h5_close(fapl);
    if (o->f < 0)
        return vb_err_set(err, "%s: cannot create (directory writable? name too long?)", path);
    return 0;
}

/* A new column: contiguous of known_rows rows (the layout a single write
 * of them all gave), else chunked and empty, to grow block by block. */
static int col_create(const pack_out *o, const char *name, hid_t file_type, hid_t *d, vb_err *err)
{
    hsize_t dim = o->known_rows, max = H5S_UNLIMITED, chunk = PACK_BLOCK;
    hid_t space = H5Screate_simple(1, &dim, o->known_rows ? NULL : &max);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (dcpl >= 0 && !o->known_rows && H5Pset_chunk(dcpl, 1, &chunk) < 0) {
        h5_close(dcpl);
        dcpl = -1;
    }
    *d = space < 0 || dcpl < 0 ? -1
                               : H5Dcreate2(o->f, name, file_type, space, H5P_DEFAULT, dcpl,
                                            H5P_DEFAULT);
    h5_close(dcpl);
    h5_close(space);
    if (*d < 0)
        return vb_err_set(err, "/%s: cannot create dataset", name);
    return 0;
}

/* Rows [start, start + m) of the 1-D dataset d: its file space with them
 * selected, and a memory space of m (caller closes both). */
static int select_block(hid_t d, hsize_t start, hsize_t m, hid_t *fs, hid_t *ms)
{
    *fs = H5Dget_space(d);
    *ms = H5Screate_simple(1, &m, NULL);
    if (*fs < 0 || *ms < 0 ||
        H5Sselect_hyperslab(*fs, H5S_SELECT_SET, &start, NULL, &m, NULL) < 0) {
        h5_close(*fs);
        h5_close(*ms);
        *fs = *ms = -1;
        return -1;
    }
    return 0;
}

/* Writes m rows at start, growing a chunked column to hold them first. */
static int col_write(const pack_out *o, hid_t d, const char *name, hid_t mem_type, hsize_t start,
                     size_t m, const void *buf, vb_err *err)
{
    hsize_t end = start + m;
    if (m == 0)
        return 0;
    if (!o->known_rows && H5Dset_extent(d, &end) < 0)
        return vb_err_set(err, "/%s: cannot grow to %llu rows", name, (unsigned long long)end);
    hid_t fs, ms;
    if (select_block(d, start, m, &fs, &ms) < 0)
        return vb_err_set(err, "/%s: cannot select rows %llu-%llu", name,
                          (unsigned long long)start + 1, (unsigned long long)end);
    int rc = 0;
    if (H5Dwrite(d, mem_type, ms, fs, H5P_DEFAULT, buf) < 0)
        rc = vb_err_set(err, "/%s: write failed (disk full?)", name);
    h5_close(fs);
    h5_close(ms);
    return rc;
}

/* Rows [0, upto) of a column created late, given the unset value: the
 * rows before the first one with the key. */
static int fill_unset(const pack_out *o, hid_t d, const char *name, unset_kind kind,
                      hsize_t upto, vb_err *err)
{
    void *buf = malloc(PACK_BLOCK * sizeof(int64_t));
    if (!buf)
        return vb_err_set(err, "/%s: out of memory", name);
    hid_t mt = kind == UNSET_STRING ? o->str_type
               : kind == UNSET_INT32 ? H5T_NATIVE_INT32 : H5T_NATIVE_INT64;
    for (size_t i = 0; i < PACK_BLOCK; i++) {
        if (kind == UNSET_STRING)
            ((const char **)buf)[i] = "";
        else if (kind == UNSET_INT32)
            ((int32_t *)buf)[i] = -1;
        else
            ((int64_t *)buf)[i] = -1;
    }
    int rc = 0;
    for (hsize_t r = 0; r < upto && rc == 0; r += PACK_BLOCK)
        rc = col_write(o, d, name, mt, r, upto - r < PACK_BLOCK ? upto - r : PACK_BLOCK, buf, err);
    free(buf);
    return rc;
}

/* A column created when its key first appears, with its earlier rows. */
static int col_open_late(const pack_out *o, hid_t *d, const char *name, hid_t file_type,
                         unset_kind kind, vb_err *err)
{
    if (*d >= 0)
        return 0;
    if (col_create(o, name, file_type, d, err) < 0)
        return -1;
    return fill_unset(o, *d, name, kind, o->rows, err);
}

/* Moves column `name` aside (to be rewritten into a new one of that name
 * and then deleted); *old is the moved dataset. */
static int col_move_aside(pack_out *o, hid_t *d, const char *name, const char *aside, hid_t *old,
                          vb_err *err)
{
    *old = *d;
    *d = -1;
    if (H5Lmove(o->f, name, o->f, aside, H5P_DEFAULT, H5P_DEFAULT) < 0)
        return vb_err_set(err, "/%s: cannot rename to /%s to rewrite it", name, aside);
    return 0;
}

static int col_delete_aside(pack_out *o, hid_t old, const char *aside, vb_err *err)
{
    int rc = 0;
    if (H5Dclose(old) < 0)
        rc = vb_err_set(err, "/%s: close failed", aside);
    if (rc == 0 && H5Ldelete(o->f, aside, H5P_DEFAULT) < 0)
        rc = vb_err_set(err, "/%s: cannot delete", aside);
    return rc;
}

/* /id was int64 while every row had an integer id; a row without one, or
 * with a string, makes the column strings: rows written so far become the
 * integers' decimal digits, as the string column holds them. */
static int ids_to_strings(pack_out *o, vb_err *err)
{
    hid_t old;
    if (col_move_aside(o, &o->id, "id", "id.int64", &old, err) < 0) {
        h5_close(old);
        return -1;
    }
    o->id_int = false;
    int64_t *v = malloc(PACK_BLOCK * sizeof *v);
    char (*digits)[24] = malloc(PACK_BLOCK * sizeof *digits);
    const char **s = malloc(PACK_BLOCK * sizeof *s);
    int rc = !v || !digits || !s ? vb_err_set(err, "/id: out of memory") : 0;
    if (rc == 0)
        rc = col_create(o, "id", o->str_type, &o->id, err);
    for (hsize_t r = 0; r < o->rows && rc == 0; r += PACK_BLOCK) {
        size_t m = o->rows - r < PACK_BLOCK ? o->rows - r : PACK_BLOCK;
        hid_t fs, ms;
        if (select_block(old, r, m, &fs, &ms) < 0 ||
            H5Dread(old, H5T_NATIVE_INT64, ms, fs, H5P_DEFAULT, v) < 0)
            rc = vb_err_set(err, "/id.int64: cannot read back rows %llu-%llu",
                            (unsigned long long)r + 1, (unsigned long long)(r + m));
        h5_close(fs);
        h5_close(ms);
        for (size_t i = 0; i < m && rc == 0; i++) {
            snprintf(digits[i], sizeof digits[i], "%" PRId64, v[i]);
            s[i] = digits[i];
        }
        if (rc == 0)
            rc = col_write(o, o->id, "id", o->str_type, r, m, s, err);
    }
    free(v);
    free(digits);
    free(s);
    if (rc == 0)
        return col_delete_aside(o, old, "id.int64", err);
    h5_close(old);
    return rc;
}

/* /prompts was strings while no prompt held a NUL; one that does makes
 * it the byte form (h5_text.h): rows written so far are read back and
 * written as bytes. */
static int prompts_to_bytes(pack_out *o, vb_err *err)
{
    hid_t old;
    if (col_move_aside(o, &o->text, "prompts", "prompts.strings", &old, err) < 0) {
        h5_close(old);
        return -1;
    }
    o->text_bytes = true;
    int64_t *rows = malloc(PACK_BLOCK * sizeof *rows);
    char **t = calloc(PACK_BLOCK, sizeof *t);
    size_t *lens = malloc(PACK_BLOCK * sizeof *lens);
    hvl_t *v = malloc(PACK_BLOCK * sizeof *v);
    int rc = !rows || !t || !lens || !v ? vb_err_set(err, "/prompts: out of memory") : 0;
    if (rc == 0)
        rc = col_create(o, "prompts", o->bytes_file_type, &o->text, err);
    for (hsize_t r = 0; r < o->rows && rc == 0; r += PACK_BLOCK) {
        size_t m = o->rows - r < PACK_BLOCK ? o->rows - r : PACK_BLOCK;
        for (size_t i = 0; i < m; i++)
            rows[i] = (int64_t)(r + i);
        rc = h5_read_texts(old, rows, m, t, lens, "/prompts.strings", err);
        for (size_t i = 0; i < m && rc == 0; i++)
            v[i] = (hvl_t){lens[i], t[i]};
        if (rc == 0)
            rc = col_write(o, o->text, "prompts", o->bytes_mem_type, r, m, v, err);
        for (size_t i = 0; i < m; i++) {
            free(t[i]);
            t[i] = NULL;
        }
    }
    free(rows);
    free(t);
    free(lens);
    free(v);
    if (rc == 0)
        return col_delete_aside(o, old, "prompts.strings", err);
    h5_close(old);
    return rc;
}

static bool block_has_nul(const pack_block *b)
{
    for (size_t i = 0; i < b->n; i++)
        if (memchr(b->text[i], '\0', b->text_len[i]))
            return true;
    return false;
}

/* Strings of a block, an absent one (NULL) written as "". */
static int write_strings(const pack_out *o, hid_t d, const char *name, char *const *col,
                         const pack_block *b, vb_err *err)
{
    const char **v = malloc((b->n ? b->n : 1) * sizeof *v);
    if (!v)
        return vb_err_set(err, "/%s: out of memory", name);
    for (size_t i = 0; i < b->n; i++)
        v[i] = col[i] ? col[i] : "";
    int rc = col_write(o, d, name, o->str_type, o->rows, b->n, v, err);
    free(v);
    return rc;
}

static int write_text(pack_out *o, const pack_block *b, const pack_seen *s, vb_err *err)
{
    const char *name = TEXT_NAME(s);
    /* messages keep a NUL escaped in their JSON: always strings */
    bool nul = !s->messages && block_has_nul(b);
    o->saw_nul = o->saw_nul || nul;
    if (o->text < 0) {
        o->text_bytes = !s->messages && (nul || o->prompts_bytes);
        if (col_create(o, name, o->text_bytes ? o->bytes_file_type : o->str_type, &o->text,
                       err) < 0)
            return -1;
    } else if (nul && !o->text_bytes && prompts_to_bytes(o, err) < 0) {
        return -1;
    }
    if (!o->text_bytes)
        return write_strings(o, o->text, name, b->text, b, err);
    hvl_t *v = malloc(b->n * sizeof *v);
    if (!v)
        return vb_err_set(err, "/%s: out of memory", name);
    for (size_t i = 0; i < b->n; i++)
        v[i] = (hvl_t){b->text_len[i], b->text[i]};
    int rc = col_write(o, o->text, name, o->bytes_mem_type, o->rows, b->n, v, err);
    free(v);
    return rc;
}

static int write_ids(pack_out *o, const pack_block *b, const pack_seen *s, vb_err *err)
{
    if (o->id < 0) {
        /* int64 only while every row so far has an integer id, which
         * rows before this block (had there been any without an id)
         * would have ruled out */
        o->id_int = s->all_ids_int && o->rows == 0;
        if (o->id_int ? col_create(o, "id", H5T_STD_I64LE, &o->id, err) < 0
                      : col_open_late(o, &o->id, "id", o->str_type, UNSET_STRING, err) < 0)
            return -1;
    } else if (o->id_int && !s->all_ids_int && ids_to_strings(o, err) < 0) {
        return -1;
    }
    if (o->id_int)
        return col_write(o, o->id, "id", H5T_NATIVE_INT64, o->rows, b->n, b->id_int, err);
    return write_strings(o, o->id, "id", b->id_str, b, err);
}

int pack_out_block(pack_out *o, const pack_block *b, const pack_seen *s, vb_err *err)
{
    if (write_text(o, b, s, err) < 0)
        return -1;
    if (s->any_id && write_ids(o, b, s, err) < 0)
        return -1;
    if (s->any_system &&
        (col_open_late(o, &o->system, "system", o->str_type, UNSET_STRING, err) < 0 ||
         write_strings(o, o->system, "system", b->system, b, err) < 0))
        return -1;
    if (s->any_max &&
        (col_open_late(o, &o->max_new_tokens, "max_new_tokens", H5T_STD_I32LE, UNSET_INT32,
                       err) < 0 ||
         col_write(o, o->max_new_tokens, "max_new_tokens", H5T_NATIVE_INT32, o->rows, b->n,
                   b->max_new_tokens, err) < 0))
        return -1;
    if (s->any_seed &&
        (col_open_late(o, &o->seed, "seed", H5T_STD_I64LE, UNSET_INT64, err) < 0 ||
         col_write(o, o->seed, "seed", H5T_NATIVE_INT64, o->rows, b->n, b->seed, err) < 0))
        return -1;
    o->rows += b->n;
    return 0;
}

int pack_out_close(pack_out *o, vb_err *err)
{
    int rc = 0;
    hid_t *ds[] = {&o->text, &o->id, &o->system, &o->max_new_tokens, &o->seed};
    for (size_t k = 0; k < sizeof ds / sizeof ds[0]; k++) {
        if (*ds[k] >= 0 && H5Dclose(*ds[k]) < 0 && rc == 0)
            rc = vb_err_set(err, "a dataset's close failed (disk full?)");
        *ds[k] = -1;
    }
    h5_close(o->str_type);
    h5_close(o->bytes_file_type);
    h5_close(o->bytes_mem_type);
    o->str_type = o->bytes_file_type = o->bytes_mem_type = -1;
    if (o->f >= 0 && H5Fclose(o->f) < 0 && rc == 0)
        rc = vb_err_set(err, "close failed (disk full?)");
    o->f = -1;
    return rc;
}

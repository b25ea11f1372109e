/* Text columns that may hold NUL characters; see h5_text.h. */
#include "io/h5_text.h"

#include <stdlib.h>
#include <string.h>

#include "io/h5_util.h"

bool h5_is_byte_text(hid_t type)
{
    if (H5Tget_class(type) != H5T_VLEN)
        return false;
    hid_t base = H5Tget_super(type);
    bool ok = base >= 0 && H5Tget_class(base) == H5T_INTEGER && H5Tget_size(base) == 1;
    if (base >= 0)
        H5Tclose(base);
    return ok;
}

bool h5_dataset_is_byte_text(hid_t f, const char *name)
{
    if (!h5_exists(f, name))
        return false;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t t = d >= 0 ? H5Dget_type(d) : -1;
    bool ok = t >= 0 && h5_is_byte_text(t);
    if (t >= 0)
        H5Tclose(t);
    if (d >= 0)
        H5Dclose(d);
    return ok;
}

/* The file's byte type as a memory type of the same signedness: bytes
 * stored as int8 (numpy's default for b"..." arrays) read as unsigned
 * would be converted, every byte above 0x7F clamped to 0; read as signed
 * chars they are the same bytes. */
static hid_t byte_memory_type(hid_t dset)
{
    hid_t t = H5Dget_type(dset), base = t >= 0 ? H5Tget_super(t) : -1;
    bool is_signed = base >= 0 && H5Tget_sign(base) == H5T_SGN_2;
    if (base >= 0)
        H5Tclose(base);
    if (t >= 0)
        H5Tclose(t);
    return H5Tvlen_create(is_signed ? H5T_NATIVE_SCHAR : H5T_NATIVE_UCHAR);
}

/* The byte form: one read of the selected rows, copied out (each with a
 * NUL after it) and HDF5's allocations freed, also after a failed read. */
static int read_byte_rows(hid_t dset, const int64_t *rows, size_t n, char **out, size_t *lens, const char *what,
                          vb_err *err)
{
    hid_t mt = byte_memory_type(dset), fs = -1, ms = -1;
    hvl_t *v = calloc(n ? n : 1, sizeof *v);
    int rc = 0;
    if (mt < 0 || !v)
        rc = vb_err_set(err, "%s: out of memory for %zu rows", what, n);
    else if (h5_select_rows(dset, rows, n, &fs, &ms) < 0)
        rc = vb_err_set(err, "%s: cannot select rows", what);
    else if (H5Dread(dset, mt, ms, fs, H5P_DEFAULT, v) < 0)
        rc = h5_read_failed(err, what, rows, n, 0);
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (v[i].len > 0 && !v[i].p) {
            rc = vb_err_set(err, "%s: row %lld: %zu bytes without data: the file is corrupt", what,
                            (long long)(rows ? rows[i] : (int64_t)i), v[i].len);
            break;
        }
        if (!(out[i] = malloc(v[i].len + 1))) {
            rc = vb_err_set(err, "%s: out of memory", what);
            break;
        }
        if (v[i].len)
            memcpy(out[i], v[i].p, v[i].len);
        out[i][v[i].len] = '\0';
        lens[i] = v[i].len;
    }
    if (v && ms >= 0 && h5_reclaim(mt, ms, v) < 0 && rc == 0)
        rc = vb_err_set(err, "%s: cannot free the rows read", what);
    free(v);
    if (mt >= 0)
        H5Tclose(mt);
    if (fs >= 0)
        H5Sclose(fs);
    if (ms >= 0)
        H5Sclose(ms);
    return rc;
}

int h5_read_texts(hid_t dset, const int64_t *rows, size_t n, char **out, size_t *lens, const char *what,
                  vb_err *err)
{
    for (size_t i = 0; i < n; i++) {
        out[i] = NULL;
        lens[i] = 0;
    }
    hid_t t = H5Dget_type(dset);
    if (t < 0)
        return vb_err_set(err, "%s: cannot read its type", what);
    bool bytes = h5_is_byte_text(t);
    H5Tclose(t);
    if (!bytes) {
        if (h5_read_strings(dset, rows, n, out, what, err) < 0)
            return -1;
        for (size_t i = 0; i < n; i++)
            lens[i] = strlen(out[i]);
        return 0;
    }
    int rc = read_byte_rows(dset, rows, n, out, lens, what, err);
    if (rc < 0)
        for (size_t i = 0; i < n; i++) {
            free(out[i]);
            out[i] = NULL;
        }
    return rc;
}

int h5_write_texts(hid_t file, const char *name, const char *const *texts, const size_t *lens, size_t n,
                   vb_err *err)
{
    bool has_nul = false;
    for (size_t i = 0; lens && i < n && !has_nul; i++)
        has_nul = memchr(texts[i], '\0', lens[i]) != NULL;
    if (!has_nul) {
        hid_t t = h5_vlen_utf8_type();
        if (t < 0)
            return vb_err_set(err, "/%s: cannot make a string type", name);
        int rc = h5_write_1d(file, name, t, t, n, texts, err);
        H5Tclose(t);
        return rc;
    }
    hvl_t *v = malloc((n ? n : 1) * sizeof *v);
    hid_t ft = H5Tvlen_create(H5T_STD_U8LE), mt = H5Tvlen_create(H5T_NATIVE_UCHAR);
    int rc;
    if (!v || ft < 0 || mt < 0) {
        rc = vb_err_set(err, "/%s: out of memory", name);
    } else {
        for (size_t i = 0; i < n; i++)
            v[i] = (hvl_t){lens[i], (void *)texts[i]};
        rc = h5_write_1d(file, name, ft, mt, n, v, err);
    }
    if (ft >= 0)
        H5Tclose(ft);
    if (mt >= 0)
        H5Tclose(mt);
    free(v);
    return rc;
}

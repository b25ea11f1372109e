/* HDF5 helpers; see h5_util.h. */
#include "io/h5_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void h5_quiet(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

/* The deepest description on the error stack (walked upward, the first
 * one): HDF5 stacks "unable to open file" over the cause (a lock, a
 * consistency flag, the OS error). */
static herr_t deepest_reason(unsigned n, const H5E_error2_t *e, void *data)
{
    (void)n;
    char *buf = data;
    if (!buf[0] && e->desc && e->desc[0])
        snprintf(buf, 256, "%s", e->desc);
    return 0;
}

/* Whether HDF5's "unable to lock file, errno = N, ..." says another
 * process holds the lock (EWOULDBLOCK: flock's answer to a writer's
 * exclusive lock) rather than that the file system has no locks at all
 * (ENOLCK on NFS without lockd, ENOSYS, EINVAL): those need
 * HDF5_USE_FILE_LOCKING=FALSE, and blaming a writer that does not exist
 * sent users looking for one. A reason without an errno counts as held. */
static bool lock_held_elsewhere(const char *reason)
{
    const char *e = strstr(reason, "errno = ");
    if (!e)
        return true;
    long n = strtol(e + strlen("errno = "), NULL, 10);
    return n == EWOULDBLOCK || n == EAGAIN;
}

int h5_open_failed(const char *path, vb_err *err)
{
    char reason[256] = "";
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, deepest_reason, reason);
    const char *hint = "";
    /* "unable to lock file, errno = 11, ..." (HDF5 1.10-1.14); not a bare
     * "lock", which a truncated file's "sblock->base_addr" also holds */
    if (strstr(reason, "truncated file"))
        hint = "; the file is shorter than its own header says: cut off (a full disk, an "
               "unfinished copy or a killed writer), not readable as it is";
    else if ((strstr(reason, "unable to lock") || strstr(reason, "lock file")) &&
             lock_held_elsewhere(reason))
        hint = "; another process has it open for writing (HDF5's file lock; "
               "HDF5_USE_FILE_LOCKING=FALSE reads it anyway, at the risk of a half-written file)";
    else if (strstr(reason, "unable to lock") || strstr(reason, "lock file"))
        hint = "; the file system refused HDF5's file lock (NFS without a lock daemon, some "
               "parallel file systems): HDF5_USE_FILE_LOCKING=FALSE reads it without one";
    else if (strstr(reason, "already open") || strstr(reason, "h5clear"))
        hint = "; a writer has it open, or one that was killed left it marked open "
               "(h5clear -s FILE clears the mark once no writer remains)";
    if (reason[0])
        return vb_err_set(err, "%s: cannot open as HDF5 (%s)%s", path, reason, hint);
    return vb_err_set(err, "%s: cannot open as HDF5", path);
}

int h5_read_failed(vb_err *err, const char *what, const int64_t *rows, size_t n,
                   int64_t first)
{
    char reason[256] = "";
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, deepest_reason, reason);
    long long a = rows && n ? rows[0] : first, b = rows && n ? rows[n - 1] : first + (int64_t)n - 1;
    if (n == 0)
        b = a;
    if (reason[0])
        return vb_err_set(err, "%s: rows %lld-%lld: read failed (%s)", what, a, b, reason);
    return vb_err_set(err, "%s: rows %lld-%lld: read failed", what, a, b);
}

hid_t h5_fapl_unlocked(void)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0)
        return -1;
#if H5_VERSION_GE(1, 12, 1) || (H5_VERS_MAJOR == 1 && H5_VERS_MINOR == 10 && H5_VERS_RELEASE >= 7)
    if (H5Pset_file_locking(fapl, false, true) < 0) {
        H5Pclose(fapl);
        return -1;
    }
#endif
    return fapl;
}

hid_t h5_vlen_utf8_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0)
        return -1;
    if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

herr_t h5_reclaim(hid_t mem_type, hid_t space, void *buf)
{
#if H5_VERSION_GE(1, 12, 0)
    return H5Treclaim(mem_type, space, H5P_DEFAULT, buf);
#else
    return H5Dvlen_reclaim(mem_type, space, H5P_DEFAULT, buf);
#endif
}

herr_t h5_close(hid_t id)
{
    if (id < 0)
        return 0;
    switch (H5Iget_type(id)) {
    case H5I_FILE: return H5Fclose(id);
    case H5I_GROUP: return H5Gclose(id);
    case H5I_DATATYPE: return H5Tclose(id);
    case H5I_DATASPACE: return H5Sclose(id);
    case H5I_DATASET: return H5Dclose(id);
    case H5I_ATTR: return H5Aclose(id);
    case H5I_GENPROP_LST: return H5Pclose(id);
    default: return H5Idec_ref(id) < 0 ? -1 : 0; /* any other kind: its last reference */
    }
}

bool h5_exists(hid_t file, const char *name)
{
    return H5Lexists(file, name, H5P_DEFAULT) > 0;
}

bool h5_type_is_uint64(hid_t t)
{
    return t >= 0 && H5Tget_class(t) == H5T_INTEGER && H5Tget_sign(t) == H5T_SGN_NONE &&
           H5Tget_size(t) == 8;
}

bool h5_is_uint64(hid_t dset)
{
    hid_t t = H5Dget_type(dset);
    bool u = h5_type_is_uint64(t);
    h5_close(t);
    return u;
}

int h5_select_rows(hid_t dset, const int64_t *rows, size_t n, hid_t *file_space,
                   hid_t *mem_space)
{
    *file_space = H5Dget_space(dset);
    if (*file_space < 0)
        return -1;
    hsize_t mdim = n;
    *mem_space = H5Screate_simple(1, &mdim, NULL);
    if (*mem_space < 0) {
        H5Sclose(*file_space);
        return -1;
    }
    herr_t st;
    if (n == 0) {
        st = H5Sselect_none(*file_space);
        if (st >= 0)
            st = H5Sselect_none(*mem_space);
    } else if (!rows) {
        hsize_t start = 0, count = n;
        st = H5Sselect_hyperslab(*file_space, H5S_SELECT_SET, &start, NULL, &count, NULL);
    } else {
        /* Few runs of consecutive rows: a union of hyperslabs. Many runs
         * (a dp group's rows are scattered by the cost sharding): a point
         * list, because building a hyperslab union is quadratic in the
         * number of runs in HDF5 1.10 (50,000 runs take minutes). Callers
         * pass ascending rows (input_reader sorts and maps back), so the
         * memory order is the file order either way. */
        size_t runs = 1;
        for (size_t i = 1; i < n; i++)
            runs += rows[i] != rows[i - 1] + 1;
        if (runs > 32) {
            hsize_t *coords = malloc(n * sizeof *coords);
            if (!coords) {
                H5Sclose(*file_space);
                H5Sclose(*mem_space);
                return -1;
            }
            for (size_t i = 0; i < n; i++)
                coords[i] = (hsize_t)rows[i];
            st = H5Sselect_elements(*file_space, H5S_SELECT_SET, n, coords);
            free(coords);
            goto selected;
        }
        st = H5Sselect_none(*file_space);
        size_t i = 0;
        while (st >= 0 && i < n) {
            size_t j = i + 1;
            while (j < n && rows[j] == rows[j - 1] + 1)
                j++;
            hsize_t start = (hsize_t)rows[i], count = j - i;
            st = H5Sselect_hyperslab(*file_space, H5S_SELECT_OR, &start, NULL, &count, NULL);
            i = j;
        }
    }
selected:
    if (st < 0) {
        H5Sclose(*file_space);
        H5Sclose(*mem_space);
        return -1;
    }
    return 0;
}

/* Fixed-length strings are read this many bytes at a time at most: a
 * block of rows times a long string type must not become one allocation
 * (nor overflow one). */
#define H5_FIXED_READ_BYTES ((size_t)64 << 20)

static char *dup_fixed(const char *s, size_t size, H5T_str_t pad)
{
    size_t len = strnlen(s, size);
    if (pad == H5T_STR_SPACEPAD)
        while (len > 0 && s[len - 1] == ' ')
            len--;
    char *c = malloc(len + 1);
    if (c) {
        memcpy(c, s, len);
        c[len] = '\0';
    }
    return c;
}

/* Whether a NUL-padded or space-padded string holds data after a NUL (a
 * NUL-terminated one ends at its first NUL by definition): strnlen would
 * cut it there, "ab\0cd" read as "ab" and two ids "k\0" "1" and "k\0" "2"
 * as one. */
static bool inner_nul(const char *s, size_t size, H5T_str_t pad)
{
    if (pad == H5T_STR_NULLTERM)
        return false;
    for (size_t k = strnlen(s, size); k < size; k++)
        if (s[k] != '\0' && !(pad == H5T_STR_SPACEPAD && s[k] == ' '))
            return true;
    return false;
}

/* Selects rows[at..at+m) (rows NULL: at..at+m-1) of a 1-D dataset. */
static int select_piece(hid_t dset, const int64_t *rows, size_t at, size_t m, hid_t *fspace,
                        hid_t *mspace)
{
    if (rows)
        return h5_select_rows(dset, rows + at, m, fspace, mspace);
    if (h5_select_rows(dset, NULL, m, fspace, mspace) < 0)
        return -1;
    hsize_t start = at, count = m;
    if (m > 0 && H5Sselect_hyperslab(*fspace, H5S_SELECT_SET, &start, NULL, &count, NULL) < 0) {
        H5Sclose(*fspace);
        H5Sclose(*mspace);
        return -1;
    }
    return 0;
}

/* The variable-length branch of h5_read_strings: one read of the selected
 * rows, copied out of HDF5's allocations, which are then freed, also after
 * a failed read (a read that fails halfway may have filled some rows). */
static int read_var_strings(hid_t dset, hid_t mtype, hid_t fspace, hid_t mspace,
                            const int64_t *rows, size_t n, char **out, const char *what,
                            vb_err *err)
{
    if (H5Tset_size(mtype, H5T_VARIABLE) < 0)
        return vb_err_set(err, "%s: cannot make a string type", what);
    char **v = calloc(n ? n : 1, sizeof *v);
    if (!v)
        return vb_err_set(err, "%s: out of memory for %zu rows", what, n);
    int rc = 0;
    if (H5Dread(dset, mtype, mspace, fspace, H5P_DEFAULT, v) < 0)
        rc = h5_read_failed(err, what, rows, n, 0);
    for (size_t i = 0; i < n && rc == 0; i++)
        if (!(out[i] = strdup(v[i] ? v[i] : "")))
            rc = vb_err_set(err, "%s: out of memory", what);
    if (h5_reclaim(mtype, mspace, v) < 0 && rc == 0)
        rc = vb_err_set(err, "%s: cannot free vlen strings", what);
    free(v);
    return rc;
}

/* The fixed-length branch of h5_read_strings: rows in pieces of at most
 * H5_FIXED_READ_BYTES, each copied out without its padding. */
static int read_fixed_strings(hid_t dset, hid_t ftype, hid_t mtype, const int64_t *rows,
                              size_t n, char **out, const char *what, vb_err *err)
{
    size_t size = H5Tget_size(ftype);
    H5T_str_t pad = H5Tget_strpad(ftype);
    if (size == 0 || pad < 0 || H5Tset_size(mtype, size) < 0 || H5Tset_strpad(mtype, pad) < 0)
        return vb_err_set(err, "%s: cannot make a string type", what);
    size_t per = size >= H5_FIXED_READ_BYTES ? 1 : H5_FIXED_READ_BYTES / size;
    char *buf = malloc(size * (n < per ? (n ? n : 1) : per));
    if (!buf)
        return vb_err_set(err, "%s: out of memory for strings of %zu bytes", what, size);
    int rc = 0;
    for (size_t at = 0; at < n && rc == 0; at += per) {
        size_t m = n - at < per ? n - at : per;
        hid_t fs = -1, ms = -1;
        if (select_piece(dset, rows, at, m, &fs, &ms) < 0) {
            rc = vb_err_set(err, "%s: cannot select rows", what);
            break;
        }
        if (H5Dread(dset, mtype, ms, fs, H5P_DEFAULT, buf) < 0)
            rc = h5_read_failed(err, what, rows ? rows + at : NULL, m, (int64_t)at);
        for (size_t i = 0; i < m && rc == 0; i++) {
            if (inner_nul(buf + i * size, size, pad))
                rc = vb_err_set(err, "%s: row %lld: a NUL character inside a fixed-length string "
                                "(what follows it would be lost); store such text as "
                                "variable-length strings or bytes (voltbatch pack does)", what,
                                (long long)(rows ? rows[at + i] : (int64_t)(at + i)));
            else if (!(out[at + i] = dup_fixed(buf + i * size, size, pad)))
                rc = vb_err_set(err, "%s: out of memory", what);
        }
        H5Sclose(fs);
        H5Sclose(ms);
    }
    free(buf);
    return rc;
}

int h5_read_strings(hid_t dset, const int64_t *rows, size_t n, char **out, const char *what,
                    vb_err *err)
{
    int rc = -1;
    hid_t ftype = -1, mtype = -1, fspace = -1, mspace = -1;
    for (size_t i = 0; i < n; i++)
        out[i] = NULL;
    ftype = H5Dget_type(dset);
    if (ftype < 0 || H5Tget_class(ftype) != H5T_STRING) {
        vb_err_set(err, "%s: not a string dataset", what);
        goto done;
    }
    if (h5_select_rows(dset, rows, n, &fspace, &mspace) < 0) {
        vb_err_set(err, "%s: cannot select rows", what);
        goto done;
    }
    htri_t var = H5Tis_variable_str(ftype);
    if (var < 0) {
        vb_err_set(err, "%s: cannot read its string type", what);
        goto done;
    }
    mtype = H5Tcopy(H5T_C_S1);
    if (mtype < 0 || H5Tset_cset(mtype, H5Tget_cset(ftype)) < 0) {
        vb_err_set(err, "%s: cannot make a string type", what);
        goto done;
    }
    if (var ? read_var_strings(dset, mtype, fspace, mspace, rows, n, out, what, err) < 0
            : read_fixed_strings(dset, ftype, mtype, rows, n, out, what, err) < 0)
        goto done;
    rc = 0;
done:
    if (rc < 0)
        for (size_t i = 0; i < n; i++) {
            free(out[i]);
            out[i] = NULL;
        }
    h5_close(mtype);
    h5_close(ftype);
    h5_close(fspace);
    h5_close(mspace);
    return rc;
}

int h5_read_scalar_string(hid_t dset, char **out, const char *what, vb_err *err)
{
    int rc = -1;
    hid_t ftype = H5Dget_type(dset), mtype = -1, space = H5Dget_space(dset);
    *out = NULL;
    if (ftype < 0 || space < 0 || H5Tget_class(ftype) != H5T_STRING) {
        vb_err_set(err, "%s: not a string", what);
        goto done;
    }
    /* H5S_ALL reads every element into room for one: only a scalar fits
     * (a null dataspace has none to read). */
    H5S_class_t sclass = H5Sget_simple_extent_type(space);
    if (sclass == H5S_NULL) {
        *out = strdup("");
        rc = *out ? 0 : vb_err_set(err, "%s: out of memory", what);
        goto done;
    }
    if (sclass != H5S_SCALAR) {
        vb_err_set(err, "%s: not a scalar", what);
        goto done;
    }
    mtype = H5Tcopy(ftype);
    if (mtype < 0 || H5Tset_cset(mtype, H5Tget_cset(ftype)) < 0) {
        vb_err_set(err, "%s: cannot make a string type", what);
        goto done;
    }
    if (H5Tis_variable_str(ftype) > 0) {
        char *v = NULL;
        if (H5Dread(dset, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) < 0) {
            vb_err_set(err, "%s: read failed", what);
            goto done;
        }
        *out = strdup(v ? v : "");
        if (h5_reclaim(mtype, space, &v) < 0) {
            free(*out);
            *out = NULL;
            vb_err_set(err, "%s: cannot free the string read", what);
            goto done;
        }
    } else {
        size_t size = H5Tget_size(ftype);
        char *b = size > 0 && size < SIZE_MAX ? calloc(size + 1, 1) : NULL;
        if (!b || H5Dread(dset, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, b) < 0) {
            free(b);
            vb_err_set(err, "%s: read failed", what);
            goto done;
        }
        *out = dup_fixed(b, size, H5Tget_strpad(ftype));
        free(b);
    }
    if (!*out) {
        vb_err_set(err, "%s: out of memory", what);
        goto done;
    }
    rc = 0;
done:
    h5_close(mtype);
    h5_close(ftype);
    h5_close(space);
    return rc;
}

int h5_write_1d(hid_t file, const char *name, hid_t file_type, hid_t mem_type, size_t n,
                const void *buf, vb_err *err)
{
    hsize_t dim = n;
    hid_t space = H5Screate_simple(1, &dim, NULL);
    if (space < 0)
        return vb_err_set(err, "/%s: cannot create dataspace", name);
    hid_t d = H5Dcreate2(file, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = 0;
    if (d < 0) {
        rc = vb_err_set(err, "/%s: cannot create dataset", name);
    } else {
        if (n > 0 && H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
            rc = vb_err_set(err, "/%s: write failed", name);
        if (H5Dclose(d) < 0 && rc == 0)
            rc = vb_err_set(err, "/%s: close failed", name);
    }
    H5Sclose(space);
    return rc;
}

static int attr_write(hid_t obj, const char *name, hid_t type, const void *v, vb_err *err)
{
    hid_t space = H5Screate(H5S_SCALAR);
    if (space < 0)
        return vb_err_set(err, "attribute %s: cannot create dataspace", name);
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    int rc = 0;
    if (a < 0 || H5Awrite(a, type, v) < 0)
        rc = vb_err_set(err, "attribute %s: write failed", name);
    h5_close(a);
    H5Sclose(space);
    return rc;
}

int h5_attr_string(hid_t obj, const char *name, const char *value, vb_err *err)
{
    hid_t t = h5_vlen_utf8_type();
    if (t < 0)
        return vb_err_set(err, "attribute %s: cannot make a string type", name);
    const char *v = value ? value : "";
    int rc = attr_write(obj, name, t, &v, err);
    H5Tclose(t);
    return rc;
}

int h5_attr_int64(hid_t obj, const char *name, int64_t value, vb_err *err)
{
    return attr_write(obj, name, H5T_NATIVE_INT64, &value, err);
}

int h5_attr_double(hid_t obj, const char *name, double value, vb_err *err)
{
    return attr_write(obj, name, H5T_NATIVE_DOUBLE, &value, err);
}

int h5_read_attr_string(hid_t obj, const char *name, char **out)
{
    *out = NULL;
    if (H5Aexists(obj, name) <= 0)
        return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0)
        return -1;
    int rc = -1;
    hid_t ft = H5Aget_type(a), space = H5Aget_space(a);
    hid_t mt = -1;
    if (ft >= 0 && space >= 0 && H5Tget_class(ft) == H5T_STRING) {
        mt = H5Tcopy(ft);
        if (H5Tis_variable_str(ft) > 0) {
            char *v = NULL;
            if (H5Aread(a, mt, &v) >= 0) {
                *out = strdup(v ? v : "");
                h5_reclaim(mt, space, &v);
                rc = *out ? 0 : -1;
            }
        } else {
            size_t size = H5Tget_size(ft);
            char *b = calloc(size + 1, 1);
            if (b && H5Aread(a, mt, b) >= 0) {
                *out = dup_fixed(b, size, H5Tget_strpad(ft));
                rc = *out ? 0 : -1;
            }
            free(b);
        }
    }
    h5_close(mt);
    h5_close(ft);
    h5_close(space);
    H5Aclose(a);
    return rc;
}

/* Small HDF5 helpers shared by the input reader, the output writer and pack.
 *
 * HDF5 prints its whole error stack on stderr by default; our errors are one
 * line, so h5_quiet() turns that off and each call's status is checked by the
 * caller, which names the file and dataset. The helpers here hide the two
 * HDF5 quirks every reader trips on: variable- vs fixed-length strings, and
 * the vlen reclaim call that was renamed in 1.12. */
#ifndef VB_IO_H5_UTIL_H
#define VB_IO_H5_UTIL_H

#include <hdf5.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/errors.h"

/* Silences HDF5's automatic error printing (process-wide, idempotent). */
void h5_quiet(void);

/* Right after an H5Fopen of path failed: err = "PATH: cannot open as HDF5"
 * with HDF5's own reason (its error stack, which h5_quiet keeps from being
 * printed), and what to do for the usual ones: a file another process
 * holds open for writing (HDF5's file lock), a file system that refuses
 * the lock itself (NFS without a lock daemon), one a killed writer left
 * marked open (h5clear). Returns -1. */
int h5_open_failed(const char *path, vb_err *err);

/* A file access property list (caller closes it; -1 on failure) for a
 * file this process alone writes under a temporary name (an output's
 * OUT.tmp, pack's): without HDF5's file lock where the library can turn
 * it off (1.10.7+, 1.12.1+). The lock guards readers against a writer;
 * nobody reads a .tmp, and a file system that refuses locks (ENOLCK: NFS
 * without a lock daemon, which HDF5's best-effort locking does not let
 * pass) made every create fail, at the end of a whole run. */
hid_t h5_fapl_unlocked(void);

/* Right after an H5Dread of rows[0..n) (ascending; NULL: first + 0..n-1)
 * of a 1-D dataset failed: err = "WHAT: rows A-B: read failed (REASON)",
 * REASON HDF5's own (its error stack, gone after the next call): "data
 * error detected by Fletcher32 checksum" says the file's bytes are
 * damaged, where a bare "read failed" said nothing. Returns -1. */
int h5_read_failed(vb_err *err, const char *what, const int64_t *rows, size_t n,
                   int64_t first);

/* A variable-length UTF-8 string type (caller closes it). */
hid_t h5_vlen_utf8_type(void);

/* Frees what H5Dread allocated for vlen data read with mem_type. */
herr_t h5_reclaim(hid_t mem_type, hid_t space, void *buf);

/* Closes an HDF5 handle of any kind (file, group, dataset, dataspace,
 * datatype, attribute, property list; any other through its reference
 * count); a negative id, one never opened, is skipped (returns 0). For
 * clean-up ladders, which close whatever a failed call left open and
 * already hold the error that matters: they may ignore the status. */
herr_t h5_close(hid_t id);

/* True when `name` is a link in `file` (false on any error). */
bool h5_exists(hid_t file, const char *name);

/* True when type `t` is unsigned 64-bit integers (values up to 2^64 - 1,
 * beyond an int64); h5_is_uint64 the same for dataset `dset`'s type.
 * False otherwise or on any error. */
bool h5_type_is_uint64(hid_t t);
bool h5_is_uint64(hid_t dset);

/* Reads `n` strings at `rows` (sorted or not; NULL = rows 0..n-1) of the
 * 1-D string dataset `dset` (variable or fixed length, any padding) into
 * malloc'd NUL-terminated copies. Returns 0 or -1 with err naming `what`. */
int h5_read_strings(hid_t dset, const int64_t *rows, size_t n, char **out, const char *what,
                    vb_err *err);

/* Reads a scalar string dataset or attribute value into a malloc'd copy. */
int h5_read_scalar_string(hid_t dset, char **out, const char *what, vb_err *err);

/* Selects `rows` (NULL = first n) in the file space of a 1-D dataset and
 * returns the file and memory dataspaces (caller closes both). */
int h5_select_rows(hid_t dset, const int64_t *rows, size_t n, hid_t *file_space,
                   hid_t *mem_space);

/* Writes a 1-D dataset named `name` of n elements from `buf` in memory type
 * `mem_type`, stored as `file_type`. n may be 0. */
int h5_write_1d(hid_t file, const char *name, hid_t file_type, hid_t mem_type, size_t n,
                const void *buf, vb_err *err);

/* Root attributes: string, int64, double. */
int h5_attr_string(hid_t obj, const char *name, const char *value, vb_err *err);
int h5_attr_int64(hid_t obj, const char *name, int64_t value, vb_err *err);
int h5_attr_double(hid_t obj, const char *name, double value, vb_err *err);
/* Reads a string attribute; returns -1 when absent or not a string. */
int h5_read_attr_string(hid_t obj, const char *name, char **out);

#endif

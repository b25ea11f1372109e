/* Text columns whose rows may hold a NUL character (DESIGN.md, HDF5 files).
 *
 * HDF5's variable-length strings end at the first NUL byte, both when
 * written and when read, yet U+0000 is valid UTF-8 text that a prompt or a
 * completion may contain (`\u0000` in JSON). Such a column is stored as a
 * 1-D variable-length sequence of unsigned 8-bit integers instead: each
 * row's UTF-8 bytes with their length. Writers use it only when some row
 * holds a NUL, so every other file keeps its plain string column; readers
 * accept both (and fixed-length strings). With h5py such a row reads as a
 * uint8 array: bytes(row).decode(). */
#ifndef VB_IO_H5_TEXT_H
#define VB_IO_H5_TEXT_H

#include <hdf5.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/errors.h"

/* True when type is the byte form: a vlen sequence of 1-byte integers. */
bool h5_is_byte_text(hid_t type);
/* The same for the dataset `name` of file f (false when absent). */
bool h5_dataset_is_byte_text(hid_t f, const char *name);

/* Reads n rows (rows NULL = 0..n-1) of a string or byte-form dataset into
 * malloc'd NUL-terminated copies with their lengths in lens (the length
 * counts NUL characters inside; for string rows it is strlen). 0, or -1
 * with err naming `what`. */
int h5_read_texts(hid_t dset, const int64_t *rows, size_t n, char **out, size_t *lens, const char *what,
                  vb_err *err);

/* Writes the 1-D text dataset `name`: variable-length UTF-8 strings, or
 * the byte form when some texts[i] holds a NUL within its lens[i] bytes
 * (lens NULL: every text ends at its NUL). n may be 0. */
int h5_write_texts(hid_t file, const char *name, const char *const *texts, const size_t *lens, size_t n,
                   vb_err *err);

#endif

/* The references of variable-length data, checked before HDF5 follows them.
 *
 * A variable-length string or sequence is stored as a descriptor in the
 * dataset (a length, the file address of a global heap collection and an
 * object index) and its bytes in that collection. HDF5 1.10 trusts both:
 * an index past the collection's objects reads through a wild pointer, an
 * object larger than the length overflows the read buffer, a length of
 * 2^32 allocates and clears 4 GiB, and a collection whose free-space
 * object has size 0 loops forever (H5HG_read, H5T__conv_vlen,
 * H5HG__cache_heap_deserialize). For a contiguous dataset the descriptors
 * sit at a known offset, so they and the collections they name can be
 * read and checked here first: every length fits the file, every
 * collection parses with each object inside it, and every referenced
 * object exists with exactly the referenced size.
 *
 * Other layouts (compact, chunked, external) are not checked here; for
 * them, and for whatever else HDF5 may trip on, the input check's child
 * process (io/input_check.h) remains the net. */
#ifndef VB_IO_H5_VLEN_CHECK_H
#define VB_IO_H5_VLEN_CHECK_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "util/errors.h"

/* The absolute file offset where what HDF5 will read of file f (at path)
 * ends: the end of the file on disk, or before it the end of the space the
 * superblock says is allocated (its EOA; a damaged one can fall short of
 * the data, and HDF5 1.10 then fills what lies beyond it with garbage
 * rather than fail). Returns 0, or -1 when neither can be read. */
int h5_readable_end(hid_t f, const char *path, uint64_t *end);

/* Checks rows[0..n) (ascending; NULL = the one element of a scalar) of the
 * variable-length dataset d of file f, at `path`. Returns 0 when they are
 * sound or cannot be checked this way, -1 with err naming the file, the
 * dataset `name` and the row. */
int h5_vlen_check_rows(hid_t f, hid_t d, const char *path, const char *name,
                       const int64_t *rows, size_t n, vb_err *err);

#endif

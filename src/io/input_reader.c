/* HDF5 input shards: expand, validate, read selected rows; see input_reader.h. */
#include "io/input_reader.h"

#include <dirent.h>
#include <fnmatch.h>
#include <glob.h>
#include <hdf5.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/crc32.h"
#include "io/h5_text.h"
#include "io/h5_util.h"
#include "io/h5_vlen_check.h"
#include "util/same_file.h"
#include "util/utf8_valid.h"

static const char *const prompt_names[] = {"/prompts", "/input_ids", "/messages"};

static vb_input_trace_fn trace_fn;

void vb_input_set_trace(vb_input_trace_fn fn)
{
    trace_fn = fn;
}

void vb_input_trace(const char *path, const char *dataset, int64_t first, int64_t last)
{
    if (trace_fn)
        trace_fn(path, dataset, first, last);
}

/* ---- expanding --input arguments ---------------------------------------- */

static int add_path(vb_input *in, const char *path, vb_err *err)
{
    /* HDF5 opens (and blocks on) a FIFO or a device: a FIFO input hung
     * the start-up, SIGTERM or not */
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return vb_err_set(err, "%s: not a regular file (an input is an HDF5 file)", path);
    vb_input_shard *s = realloc(in->shards, (size_t)(in->n_shards + 1) * sizeof *s);
    if (!s)
        return vb_err_set(err, "%s: out of memory", path);
    in->shards = s;
    memset(&s[in->n_shards], 0, sizeof *s);
    s[in->n_shards].path = strdup(path);
    if (!s[in->n_shards].path)
        return vb_err_set(err, "%s: out of memory", path);
    in->n_shards++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int add_directory(vb_input *in, const char *dir, vb_err *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return vb_err_set(err, "%s: cannot open directory", dir);
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !(ends_with(e->d_name, ".h5") || ends_with(e->d_name, ".hdf5")))
            continue;
        char **nn = realloc(names, (n + 1) * sizeof *nn);
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *p = malloc(len);
        if (!nn || !p) {
            free(p);
            if (nn)
                names = nn;
            rc = vb_err_set(err, "%s: out of memory", dir);
            break;
        }
        names = nn;
        snprintf(p, len, "%s/%s", dir, e->d_name);
        names[n++] = p;
    }
    closedir(d);
    if (rc == 0 && n == 0)
        rc = vb_err_set(err, "%s: directory holds no .h5 files", dir);
    if (rc == 0)
        qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        if (rc == 0)
            rc = add_path(in, names[i], err);
        free(names[i]);
    }
    free(names);
    return rc;
}

static int expand_spec(vb_input *in, const char *spec, vb_err *err)
{
    struct stat st;
    if (stat(spec, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return add_directory(in, spec, err);
        return add_path(in, spec, err);
    }
    if (strpbrk(spec, "*?[")) {
        glob_t g;
        int r = glob(spec, 0, NULL, &g);
        if (r == GLOB_NOMATCH)
            return vb_err_set(err, "%s: no file matches", spec);
        if (r != 0)
            return vb_err_set(err, "%s: cannot expand the pattern", spec);
        int rc = 0;
        /* glob() sorts by name: the shard order is the name order. */
        for (size_t i = 0; i < g.gl_pathc && rc == 0; i++)
            rc = add_path(in, g.gl_pathv[i], err);
        globfree(&g);
        return rc;
    }
    return vb_err_set(err, "%s: no such file", spec);
}

/* ---- validation ---------------------------------------------------------- */

/* The bytes one element of type t takes in the file. A variable-length
 * element (string or sequence) is stored as a 4-byte length and a global
 * heap id (a file address and a 4-byte index); H5Tget_size gives its size
 * in memory instead. 0 when unknown. */
static size_t disk_element_size(hid_t f, hid_t t)
{
    if (H5Tget_class(t) != H5T_VLEN && H5Tis_variable_str(t) <= 0)
        return H5Tget_size(t);
    hid_t fcpl = H5Fget_create_plist(f);
    if (fcpl < 0)
        return 0;
    size_t sizeof_addr = 0, sizeof_size = 0;
    herr_t st = H5Pget_sizes(fcpl, &sizeof_addr, &sizeof_size);
    H5Pclose(fcpl);
    return st < 0 ? 0 : 4 + sizeof_addr + 4;
}

/* The dataset's metadata against the file it is in: the rows its storage
 * holds and where that storage lies. A flipped bit in a dimension or a
 * layout message shows here, before it becomes a huge allocation or a read
 * past the end of the file. Data kept outside the file (external storage,
 * virtual datasets) and chunked data (compressed, or with chunks never
 * written) cannot be sized this way; for those the row limit remains. */
static int check_extent(hid_t f, hid_t d, hid_t t, const char *path, const char *name, int64_t n,
                        vb_err *err)
{
    if (n > VB_INPUT_MAX_ROWS)
        return vb_err_set(err, "%s: %s has %" PRId64 " rows, more than one input file may hold "
                          "(%d): the file is corrupt, or split it into shards", path, name, n,
                          VB_INPUT_MAX_ROWS);
    uint64_t fsize = 0;
    hid_t dcpl = H5Dget_create_plist(d);
    if (dcpl < 0 || h5_readable_end(f, path, &fsize) < 0) {
        h5_close(dcpl);
        return vb_err_set(err, "%s: %s: cannot read its storage layout", path, name);
    }
    H5D_layout_t layout = H5Pget_layout(dcpl);
    int external = H5Pget_external_count(dcpl);
    H5Pclose(dcpl);
    if (layout < 0 || external < 0)
        return vb_err_set(err, "%s: %s: cannot read its storage layout", path, name);
    if (layout == H5D_VIRTUAL || external > 0)
        return 0;
    hsize_t storage = H5Dget_storage_size(d); /* 0: not allocated (fill values) */
    if (storage > fsize)
        return vb_err_set(err, "%s: %s: its data (%llu bytes) is larger than the file (%llu "
                          "bytes): the file is corrupt or truncated", path, name,
                          (unsigned long long)storage, (unsigned long long)fsize);
    if (storage == 0 || (layout != H5D_CONTIGUOUS && layout != H5D_COMPACT))
        return 0;
    size_t elem = disk_element_size(f, t);
    if (elem == 0 || storage % elem != 0 || storage / elem != (hsize_t)n)
        return vb_err_set(err, "%s: %s: %" PRId64 " rows of %zu bytes do not make its %llu bytes "
                          "of storage: the file is corrupt", path, name, n, elem,
                          (unsigned long long)storage);
    haddr_t at = layout == H5D_CONTIGUOUS ? H5Dget_offset(d) : HADDR_UNDEF;
    if (at != HADDR_UNDEF && (at > fsize || storage > fsize - at))
        return vb_err_set(err, "%s: %s: its data (%llu bytes at byte %llu) lies past the end of "
                          "the file (%llu bytes): the file is corrupt or truncated", path, name,
                          (unsigned long long)storage, (unsigned long long)at,
                          (unsigned long long)fsize);
    return 0;
}

/* A filter this HDF5 library lacks, with a way round that works. h5repack
 * runs on the same library: without the filter it cannot read the data,
 * warns, and exits 0 with a file that lacks the dataset (the advice used
 * to be "h5repack -f GZIP=4 IN OUT", which gave "no /prompts" next).
 * h5py's lzf (32000) exists only inside h5py, not as a plugin. */
static int missing_filter(const char *path, const char *name, H5Z_filter_t id,
                          const char *fname, vb_err *err)
{
    if (id == 32000)
        return vb_err_set(err, "%s: %s is stored with HDF5 filter 32000 (lzf), h5py's own, which "
                          "HDF5 libraries and tools lack: copy it with h5py into a dataset with "
                          "compression=\"gzip\" (h5repack cannot read lzf: it writes the file "
                          "without the dataset)", path, name);
    return vb_err_set(err, "%s: %s is stored with HDF5 filter %d (%s), which this HDF5 library "
                      "does not have: set HDF5_PLUGIN_PATH to a directory with the filter's "
                      "plugin (pip's hdf5plugin has blosc, zstd, lz4, bitshuffle); with it "
                      "h5repack -f GZIP=4 IN OUT can also rewrite the file (without it, "
                      "h5repack writes the file without the dataset)", path, name, (int)id,
                      fname[0] ? fname : "unnamed");
}

/* Data this build cannot read, or that lies outside the file: refused when
 * the file is checked, naming the cause. A filter the HDF5 library lacks
 * (h5py's lzf, blosc and zstd plugins) failed as a bare "read failed", and
 * only on files big enough for a chunk to compress; a virtual dataset's or
 * external storage's data is not in the file (nor in the input checksum a
 * --resume compares), as an external link's is not. */
static int check_storage(hid_t d, const char *path, const char *name, vb_err *err)
{
    hid_t dcpl = H5Dget_create_plist(d);
    if (dcpl < 0)
        return vb_err_set(err, "%s: %s: cannot read its storage layout", path, name);
    int rc = 0;
    if (H5Pget_layout(dcpl) == H5D_VIRTUAL || H5Pget_external_count(dcpl) > 0)
        rc = vb_err_set(err, "%s: %s keeps its data in other files (a virtual dataset or "
                        "external storage); the data must be stored in the input file (h5repack "
                        "-l CONTI IN OUT copies it in; a plain h5repack keeps it where it is)",
                        path, name);
    int nf = rc ? 0 : H5Pget_nfilters(dcpl);
    for (int k = 0; k < nf && rc == 0; k++) {
        unsigned flags = 0, config = 0;
        size_t n_values = 0;
        char fname[64] = "";
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)k, &flags, &n_values, NULL, sizeof fname,
                                         fname, &config);
        if (id < 0)
            rc = vb_err_set(err, "%s: %s: cannot read its filters", path, name);
        else if (H5Zfilter_avail(id) <= 0)
            rc = missing_filter(path, name, id, fname, err);
    }
    H5Pclose(dcpl);
    return rc;
}

/* A fixed-length string type longer than any prompt: a corrupt datatype. */
static int check_string_size(hid_t t, const char *path, const char *name, vb_err *err)
{
    if (H5Tget_class(t) != H5T_STRING || H5Tis_variable_str(t) > 0)
        return 0;
    size_t size = H5Tget_size(t);
    if (size == 0 || size > VB_INPUT_MAX_FIXED_STRING)
        return vb_err_set(err, "%s: %s: fixed-length strings of %zu bytes (1 to %u bytes a row "
                          "are read): the file is corrupt", path, name, size,
                          VB_INPUT_MAX_FIXED_STRING);
    return 0;
}

/* True when t is of class want (for H5T_VLEN: a sequence of integers). */
static bool type_is(hid_t t, H5T_class_t want)
{
    if (H5Tget_class(t) != want)
        return false;
    if (want != H5T_VLEN)
        return true;
    hid_t base = H5Tget_super(t);
    bool ok = base >= 0 && H5Tget_class(base) == H5T_INTEGER;
    h5_close(base);
    return ok;
}

/* Checks the open dataset d (type t, space s): its type, its rank, and its
 * size against the file. Returns 0 with its length (-1 for a scalar) in
 * *len, or -1. */
static int check_shape(hid_t f, hid_t d, hid_t t, hid_t s, const char *path, const char *name,
                       H5T_class_t want, const char *want_words, bool allow_scalar,
                       int64_t *len, vb_err *err)
{
    if (want == H5T_VLEN && H5Tget_class(t) == H5T_INTEGER) /* numpy's natural way */
        return vb_err_set(err, "%s: %s is an array of integers of rank %d; token ids are one "
                          "variable-length row each, a 1-D dataset (h5py: "
                          "dtype=h5py.vlen_dtype(np.int32))", path, name,
                          H5Sget_simple_extent_ndims(s));
    if (!type_is(t, want))
        return vb_err_set(err, "%s: %s has the wrong type (expected %s)", path, name, want_words);
    if (check_string_size(t, path, name, err) < 0)
        return -1;
    int rank = H5Sget_simple_extent_ndims(s);
    if (rank == 0 && allow_scalar) {
        *len = -1;
        return check_extent(f, d, t, path, name, 1, err);
    }
    if (rank != 1)
        return vb_err_set(err, "%s: %s has rank %d, expected a 1-D dataset%s", path, name, rank,
                          allow_scalar ? " or a scalar" : "");
    hsize_t dim = 0;
    if (H5Sget_simple_extent_dims(s, &dim, NULL) < 0)
        return vb_err_set(err, "%s: %s: cannot read its length", path, name);
    *len = dim > (hsize_t)INT64_MAX ? INT64_MAX : (int64_t)dim;
    return check_extent(f, d, t, path, name, *len, err);
}

/* A soft link whose target cannot be opened (deleted, or never made):
 * said with the target's path, which h5ls shows, rather than as "not a
 * dataset" of a name the user sees listed. */
static void dangling_link(hid_t f, const char *path, const char *name, size_t size, vb_err *err)
{
    char target[256] = "";
    if (size == 0 || size > sizeof target ||
        H5Lget_val(f, name, target, sizeof target, H5P_DEFAULT) < 0)
        target[0] = '\0';
    target[sizeof target - 1] = '\0';
    if (target[0])
        vb_err_set(err, "%s: %s is a soft link to %s, which does not exist in the file", path,
                   name, target);
    else
        vb_err_set(err, "%s: %s is a soft link whose target does not exist in the file", path,
                   name);
}

/* Opens `name` as a 1-D (or, with allow_scalar, 0-D) dataset, checks its
 * type class and its size against the file, and returns its length (-1
 * for scalar) in *len. */
static hid_t open_checked(hid_t f, const char *path, const char *name, H5T_class_t want,
                          const char *want_words, bool allow_scalar, int64_t *len, vb_err *err)
{
    vb_input_trace(path, name, -1, -1);
    /* Data in another file through an external link: neither sized against
     * this file (it read as "past the end of the file") nor covered by the
     * input checksum a --resume compares, so refused, with the ways round. */
    H5L_info_t link;
    if (H5Lget_info(f, name, &link, H5P_DEFAULT) >= 0 && link.type == H5L_TYPE_EXTERNAL) {
        vb_err_set(err, "%s: %s is an external link to another file; the data must be stored in "
                   "the input file (copy it in with h5copy, or give the linked file as --input)",
                   path, name);
        return -1;
    }
    /* H5Oopen + H5Iget_type rather than H5Oget_info_by_name, whose
     * signature changed in HDF5 1.12. */
    hid_t obj = H5Oopen(f, name, H5P_DEFAULT);
    H5I_type_t kind = obj >= 0 ? H5Iget_type(obj) : H5I_BADID;
    h5_close(obj);
    if (obj < 0 && H5Lget_info(f, name, &link, H5P_DEFAULT) >= 0 &&
        link.type == H5L_TYPE_SOFT) {
        dangling_link(f, path, name, link.u.val_size, err);
        return -1;
    }
    if (kind != H5I_DATASET) {
        vb_err_set(err, "%s: %s is not a dataset", path, name);
        return -1;
    }
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) {
        vb_err_set(err, "%s: %s: cannot open dataset", path, name);
        return -1;
    }
    hid_t t = H5Dget_type(d), s = H5Dget_space(d);
    int ok = 0;
    if (t < 0 || s < 0)
        vb_err_set(err, "%s: %s: cannot read type or shape", path, name);
    else
        ok = check_storage(d, path, name, err) == 0 &&
             check_shape(f, d, t, s, path, name, want, want_words, allow_scalar, len, err) == 0;
    h5_close(t);
    h5_close(s);
    if (!ok) {
        H5Dclose(d);
        return -1;
    }
    return d;
}

/* The type class of dataset `name` (H5T_NO_CLASS when it cannot be
 * opened, or is an external link, which is not followed: open_checked
 * then says why). */
static H5T_class_t dataset_class(hid_t f, const char *name)
{
    H5L_info_t link;
    if (H5Lget_info(f, name, &link, H5P_DEFAULT) < 0 || link.type == H5L_TYPE_EXTERNAL)
        return H5T_NO_CLASS;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT), t = d >= 0 ? H5Dget_type(d) : -1;
    H5T_class_t c = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    h5_close(t);
    h5_close(d);
    return c;
}

static int check_optional(hid_t f, const char *path, const char *name, H5T_class_t want,
                          const char *words, const char *pname, int64_t n, bool allow_scalar,
                          bool *present,
                          int64_t *len_out, vb_err *err)
{
    *present = false;
    vb_input_trace(path, name, -1, -1);
    if (!h5_exists(f, name))
        return 0;
    int64_t len = 0;
    hid_t d = open_checked(f, path, name, want, words, allow_scalar, &len, err);
    if (d < 0)
        return -1;
    H5Dclose(d);
    if (len >= 0 && len != n)
        return vb_err_set(err, "%s: %s has %" PRId64 " rows but %s has %" PRId64
                          " (lengths must match)", path, name, len, pname, n);
    *present = true;
    if (len_out)
        *len_out = len;
    return 0;
}

/* The root datasets a shard may hold: anything else is not read. */
static bool read_by_us(const char *name)
{
    static const char *const known[] = {"prompts", "input_ids", "messages", "id", "system",
                                        "max_new_tokens", "seed"};
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
        if (strcmp(name, known[k]) == 0)
            return true;
    return false;
}

/* H5Literate callback: stops (1) at the first dataset we do not read,
 * its name in data (char[256]). External links are not followed, and
 * groups (a writer's metadata) are not datasets a typo makes. */
static herr_t find_unread(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    if (read_by_us(name) || info->type == H5L_TYPE_EXTERNAL)
        return 0;
    hid_t obj = H5Oopen(g, name, H5P_DEFAULT);
    bool dataset = obj >= 0 && H5Iget_type(obj) == H5I_DATASET;
    h5_close(obj);
    if (!dataset)
        return 0;
    snprintf(data, 256, "%s", name);
    return 1;
}

/* Records the shard's first unread root dataset in in->unread (when no
 * shard before named one): a misspelt per-row column would otherwise run
 * every row with the command line's value without a word, as pack warns
 * about a JSONL key it does not read. A failed iteration only loses the
 * warning: the datasets read are checked on their own. */
static void note_unread(vb_input *in, hid_t f, const char *path)
{
    char name[256] = "";
    vb_input_trace(path, NULL, -1, -1); /* the file's metadata again, not the last dataset */
    if (in->unread[0] ||
        H5Literate(f, H5_INDEX_NAME, H5_ITER_INC, NULL, find_unread, name) <= 0 || !name[0])
        return;
    snprintf(in->unread, sizeof in->unread, "%s: /%s", path, name);
}

static int validate_shard(vb_input *in, int si, vb_err *err)
{
    vb_input_shard *sh = &in->shards[si];
    const char *path = sh->path;
    vb_input_trace(path, NULL, -1, -1);
    if (H5Fis_hdf5(path) <= 0)
        return vb_err_set(err, "%s: not an HDF5 file (or not readable)", path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        return h5_open_failed(path, err);
    int rc = -1;
    int kind = -1, n_kinds = 0;
    for (int k = 0; k < 3; k++)
        if (h5_exists(f, prompt_names[k])) {
            if (kind < 0)
                kind = k;
            n_kinds++;
        }
    if (n_kinds == 0) {
        vb_err_set(err, "%s: no /prompts, /input_ids or /messages dataset (one is required)",
                   path);
        goto done;
    }
    if (n_kinds > 1) {
        vb_err_set(err, "%s: holds more than one of /prompts, /input_ids, /messages (keep one)",
                   path);
        goto done;
    }
    if (si > 0 && (vb_prompt_kind)kind != in->kind) {
        vb_err_set(err, "%s: has %s but %s has %s (every shard needs the same kind)", path,
                   prompt_names[kind], in->shards[0].path, prompt_names[in->kind]);
        goto done;
    }
    in->kind = (vb_prompt_kind)kind;
    int64_t n = 0;
    hid_t d = kind == VB_PROMPT_IDS
                  ? open_checked(f, path, "/input_ids", H5T_VLEN,
                                 "variable-length integers", false, &n, err)
              : kind == VB_PROMPT_TEXT && h5_dataset_is_byte_text(f, "/prompts")
                  ? open_checked(f, path, "/prompts", H5T_VLEN, "strings, or vlen uint8 text",
                                 false, &n, err) /* the byte form: prompts with NUL */
                  : open_checked(f, path, prompt_names[kind], H5T_STRING, "strings", false, &n,
                                 err);
    if (d < 0)
        goto done;
    H5Dclose(d);
    sh->n_rows = n;

    /* /id: strings or integers, the same kind in every shard. */
    vb_id_kind idk = VB_ID_NONE;
    vb_input_trace(path, "/id", -1, -1);
    if (h5_exists(f, "/id")) {
        int64_t len = 0;
        /* checked as the class it is: a string /id of the wrong rank (or
         * storage) failed the string check, and the integer one then said
         * "wrong type", hiding the real cause */
        const bool strings = dataset_class(f, "/id") == H5T_STRING;
        hid_t di = open_checked(f, path, "/id", strings ? H5T_STRING : H5T_INTEGER,
                                "strings or integers", false, &len, err);
        if (di < 0)
            goto done;
        idk = strings ? VB_ID_STRING : h5_is_uint64(di) ? VB_ID_UINT : VB_ID_INT;
        H5Dclose(di);
        if (len != n) {
            vb_err_set(err, "%s: /id has %" PRId64 " rows but %s has %" PRId64
                       " (lengths must match)", path, len, prompt_names[kind], n);
            goto done;
        }
    }
    if (si > 0 && idk != in->id_kind) {
        static const char *const words[] = {"no /id", "string ids", "integer ids",
                                            "unsigned 64-bit ids"};
        vb_err_set(err, "%s: /id: has %s but %s has %s (every shard needs the same)", path,
                   words[idk], in->shards[0].path, words[in->id_kind]);
        goto done;
    }
    in->id_kind = idk;

    int64_t slen = 0;
    if (check_optional(f, path, "/system", H5T_STRING, "strings", prompt_names[kind], n, true, &sh->has_system,
                       &slen, err) < 0 ||
        check_optional(f, path, "/max_new_tokens", H5T_INTEGER, "integers", prompt_names[kind], n,
                       false, &sh->has_max_new_tokens, NULL, err) < 0 ||
        check_optional(f, path, "/seed", H5T_INTEGER, "integers", prompt_names[kind], n, false,
                       &sh->has_seed, NULL, err) < 0) {
        goto done;
    }
    if (sh->has_system && slen < 0) {
        vb_input_trace(path, "/system", 0, 0);
        hid_t ds = H5Dopen2(f, "/system", H5P_DEFAULT);
        if (ds >= 0 && h5_vlen_check_rows(f, ds, path, "/system", NULL, 1, err) < 0) {
            H5Dclose(ds);
            goto done;
        }
        if (ds < 0 || h5_read_scalar_string(ds, &sh->system_scalar, "/system", err) < 0) {
            h5_close(ds);
            vb_err_prefix(err, "%s", path);
            goto done;
        }
        H5Dclose(ds);
        /* an empty scalar is none, as an empty per-row entry is: the rows
         * take --system */
        if (sh->system_scalar && !sh->system_scalar[0]) {
            free(sh->system_scalar);
            sh->system_scalar = NULL;
        }
    }
    sh->system_per_row = sh->has_system && slen >= 0;
    note_unread(in, f, path);
    rc = 0;
done:
    if (H5Fclose(f) < 0 && rc == 0)
        rc = vb_err_set(err, "%s: close failed", path);
    return rc;
}

static int checksum_file(const char *path, uint32_t *crc, vb_err *err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return vb_err_set(err, "%s: cannot open for reading", path);
    static unsigned char buf[1 << 16];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, fp)) > 0)
        *crc = vb_crc32(*crc, buf, got);
    int bad = ferror(fp);
    fclose(fp);
    return bad ? vb_err_set(err, "%s: read error", path) : 0;
}

/* One shard file reached twice (two --input naming it, a glob and a file
 * in it, a directory and a symlink into it): its rows would run twice and
 * appear twice in the output. Refused naming both paths; stat() follows
 * symlinks, so a link and its target, or two hard links, are one file.
 * Sorting the (device, inode) pairs keeps 1,000s of shards cheap. */
typedef struct shard_id {
    dev_t dev;
    ino_t ino;
    int index;
} shard_id;

static int cmp_shard_id(const void *a, const void *b)
{
    const shard_id *x = a, *y = b;
    if (x->dev != y->dev)
        return x->dev < y->dev ? -1 : 1;
    if (x->ino != y->ino)
        return x->ino < y->ino ? -1 : 1;
    return x->index - y->index;
}

static int refuse_repeated_shards(const vb_input *in, vb_err *err)
{
    shard_id *ids = malloc((size_t)(in->n_shards ? in->n_shards : 1) * sizeof *ids);
    if (!ids)
        return vb_err_set(err, "out of memory listing the inputs");
    int n = 0;
    for (int i = 0; i < in->n_shards; i++) {
        struct stat st;
        if (stat(in->shards[i].path, &st) == 0) /* else the shard's own check names it */
            ids[n++] = (shard_id){st.st_dev, st.st_ino, i};
    }
    qsort(ids, (size_t)n, sizeof *ids, cmp_shard_id);
    int rc = 0;
    for (int i = 1; i < n && rc == 0; i++)
        if (ids[i].dev == ids[i - 1].dev && ids[i].ino == ids[i - 1].ino)
            rc = vb_err_set(err, "%s and %s are the same input file (given twice by --input: "
                            "its rows would run twice)", in->shards[ids[i - 1].index].path,
                            in->shards[ids[i].index].path);
    free(ids);
    return rc;
}

bool vb_input_spec_takes(const char *spec, const char *path)
{
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    struct stat st;
    if (stat(spec, &st) == 0 && S_ISDIR(st.st_mode)) { /* add_directory's rule */
        return vb_dir_part_is(path, spec) && base[0] != '.' &&
               (ends_with(base, ".h5") || ends_with(base, ".hdf5"));
    }
    if (strpbrk(spec, "*?[")) {
        const char *sslash = strrchr(spec, '/'), *pattern = sslash ? sslash + 1 : spec;
        if (strcspn(spec, "*?[") < (size_t)(pattern - spec)) /* a pattern over directories */
            return fnmatch(spec, path, FNM_PATHNAME | FNM_PERIOD) == 0;
        return vb_same_dir_part(spec, path) && fnmatch(pattern, base, FNM_PERIOD) == 0;
    }
    return vb_same_path(spec, path);
}

int vb_input_open(vb_input *in, const char *const *specs, int n_specs, vb_err *err)
{
    memset(in, 0, sizeof *in);
    in->specs = specs;
    in->n_specs = n_specs;
    h5_quiet();
    if (n_specs < 1)
        return vb_err_set(err, "no input given (--input FILE.h5, a glob or a directory)");
    for (int i = 0; i < n_specs; i++)
        if (expand_spec(in, specs[i], err) < 0)
            return -1;
    if (refuse_repeated_shards(in, err) < 0)
        return -1;
    for (int i = 0; i < in->n_shards; i++) {
        if (validate_shard(in, i, err) < 0)
            return -1;
        in->shards[i].first_row = in->n_rows;
        in->n_rows += in->shards[i].n_rows;
    }
    uint32_t crc = 0;
    for (int i = 0; i < in->n_shards; i++)
        if (checksum_file(in->shards[i].path, &crc, err) < 0)
            return -1;
    in->checksum = crc;
    return 0;
}

void vb_input_close(vb_input *in)
{
    for (int i = 0; i < in->n_shards; i++) {
        free(in->shards[i].path);
        free(in->shards[i].system_scalar);
    }
    free(in->shards);
    memset(in, 0, sizeof *in);
}

/* ---- reading rows -------------------------------------------------------- */


/* s with each byte that is not part of valid UTF-8 replaced by U+FFFD,
 * in place of s (freed); s itself when out of memory. */
static char *utf8_repaired(char *s)
{
    size_t n = strlen(s), at = 0, o = 0;
    char *out = malloc(3 * n + 1);
    if (!out)
        return s;
    for (size_t i = 0; i < n;) {
        if (vb_utf8_valid(s + i, n - i, &at)) {
            memcpy(out + o, s + i, n - i);
            o += n - i;
            break;
        }
        memcpy(out + o, s + i, at);
        memcpy(out + o + at, "\xEF\xBF\xBD", 3);
        o += at + 3;
        i += at + 1;
    }
    out[o] = '\0';
    free(s);
    return out;
}

/* Sets row->error for rows the engine must not run. */
static void check_row(vb_prompt_kind kind, vb_input_row *r)
{
    size_t at = 0;
    /* An /id is copied into the output's UTF-8 column: one that is not
     * UTF-8 makes the row an error and is written repaired (it went
     * through as it was, and unpack then dropped it without a word). */
    if (r->id && !vb_utf8_valid(r->id, strlen(r->id), &at)) {
        snprintf(r->error, sizeof r->error, "id is not valid UTF-8 (byte %zu)", at + 1);
        r->id = utf8_repaired(r->id);
        return;
    }
    if (kind == VB_PROMPT_IDS) {
        if (r->n_ids == 0)
            snprintf(r->error, sizeof r->error, "empty prompt (no input_ids)");
    } else if (r->text_len == 0) {
        snprintf(r->error, sizeof r->error, "empty prompt");
    } else if (!vb_utf8_valid(r->text, r->text_len, &at)) {
        snprintf(r->error, sizeof r->error, "prompt is not valid UTF-8 (byte %zu)", at + 1);
    } else if (kind == VB_PROMPT_MESSAGES) {
        json_error_t je;
        json_t *m = json_loadb(r->text, r->text_len, JSON_ALLOW_NUL, &je); /* \u0000 is text */
        if (!m) {
            /* jansson's reason: a lone surrogate (\ud800) says so */
            snprintf(r->error, sizeof r->error, "messages is not valid JSON: %.100s (column %d)",
                     je.text, je.column);
        } else if (!json_is_array(m) || json_array_size(m) == 0) {
            snprintf(r->error, sizeof r->error,
                     "messages is not a non-empty JSON array of {\"role\", \"content\"}");
        } else {
            size_t i;
            json_t *msg;
            /* a content of any kind: the template renders null, a list
             * of parts, ... as transformers hands them over, or refuses
             * the row itself */
            json_array_foreach(m, i, msg) {
                if (!json_is_string(json_object_get(msg, "role")) || !json_object_get(msg, "content")) {
                    snprintf(r->error, sizeof r->error,
                             "messages[%zu] needs a string \"role\" and a \"content\"", i);
                    break;
                }
            }
        }
        json_decref(m);
    }
    if (r->error[0] == '\0' && r->system && !vb_utf8_valid(r->system, strlen(r->system), &at))
        snprintf(r->error, sizeof r->error, "system is not valid UTF-8 (byte %zu)", at + 1);
    if (r->error[0] == '\0' && r->max_new_tokens < -1)
        snprintf(r->error, sizeof r->error, "max_new_tokens is %d (negative)",
                 (int)r->max_new_tokens);
    if (r->error[0] == '\0' && !r->seed_u64 && r->seed < -1)
        snprintf(r->error, sizeof r->error, "seed is negative");
}

/* HDF5 converts an integer outside the memory type's range by clamping it,
 * without a word (a token id 2^31 + 3 in an int64 file reads as
 * 2147483647). A token id, an /id, a seed must not change on the way in:
 * reads of integers go through a transfer list whose conversion callback
 * aborts the read instead. */
static H5T_conv_ret_t refuse_out_of_range(H5T_conv_except_t except, hid_t src, hid_t dst,
                                          void *src_buf, void *dst_buf, void *ctx)
{
    (void)src, (void)dst, (void)src_buf, (void)dst_buf, (void)ctx;
    return except == H5T_CONV_EXCEPT_RANGE_HI || except == H5T_CONV_EXCEPT_RANGE_LOW
               ? H5T_CONV_ABORT
               : H5T_CONV_UNHANDLED;
}

/* A dataset transfer property list for exact integer reads (caller
 * closes it), or -1. */
static hid_t exact_ints_dxpl(void)
{
    hid_t p = H5Pcreate(H5P_DATASET_XFER);
    if (p >= 0 && H5Pset_type_conv_cb(p, refuse_out_of_range, NULL) < 0) {
        H5Pclose(p);
        p = -1;
    }
    return p;
}

/* Reports the read of rows[0..n) (ascending) to the trace. */
static void trace_rows(const char *path, const char *name, const int64_t *rows, size_t n)
{
    if (n > 0)
        vb_input_trace(path, name, rows[0], rows[n - 1]);
}

/* Rows of an integer column as int64s; an unsigned 64-bit dataset's as
 * uint64 (the bits: its values past 2^63 - 1 would stop an int64 read),
 * *u64 (when not NULL) saying which. */
static int read_ints(hid_t f, const char *path, const char *name, const int64_t *rows,
                     size_t n, int64_t *out, bool *u64, vb_err *err)
{
    trace_rows(path, name, rows, n);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT), fs = -1, ms = -1, xfer = exact_ints_dxpl();
    const bool unsigned64 = d >= 0 && h5_is_uint64(d);
    if (u64)
        *u64 = unsigned64;
    int rc = 0;
    if (d < 0 || xfer < 0 || h5_select_rows(d, rows, n, &fs, &ms) < 0 ||
        H5Dread(d, unsigned64 ? H5T_NATIVE_UINT64 : H5T_NATIVE_INT64, ms, fs, xfer, out) < 0)
        rc = vb_err_set(err, "%s: %s: rows %" PRId64 "-%" PRId64 ": read failed (a value beyond "
                        "int64, or the file is corrupt)", path, name, n ? rows[0] : 0,
                        n ? rows[n - 1] : 0);
    h5_close(xfer);
    h5_close(fs);
    h5_close(ms);
    h5_close(d);
    return rc;
}

/* Reads text rows with their lengths (the byte form may hold NUL), or,
 * with lens NULL, string rows. */
static int read_texts(hid_t f, const char *path, const char *name, const int64_t *rows,
                      size_t n, char **out, size_t *lens, vb_err *err)
{
    trace_rows(path, name, rows, n);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0)
        return vb_err_set(err, "%s: %s: cannot open dataset", path, name);
    if (h5_vlen_check_rows(f, d, path, name, rows, n, err) < 0) {
        H5Dclose(d);
        return -1;
    }
    int rc = lens ? h5_read_texts(d, rows, n, out, lens, name, err)
                  : h5_read_strings(d, rows, n, out, name, err);
    H5Dclose(d);
    if (rc < 0)
        vb_err_prefix(err, "%s", path);
    return rc;
}

static int read_strings(hid_t f, const char *path, const char *name, const int64_t *rows,
                        size_t n, char **out, vb_err *err)
{
    return read_texts(f, path, name, rows, n, out, NULL, err);
}

/* Copies one /input_ids row that HDF5 read (v, int64 values; an unsigned
 * 64-bit file's bits) into a malloc'd int32 array. HDF5 fills p for every
 * non-empty sequence; a NULL p or a length no prompt can have is refused
 * rather than trusted. A value outside 0 .. 2^31 - 1 (no vocabulary has
 * it) makes the row an error (its message in bad, else bad[0] = 0), not
 * the whole read: the job goes on with the other rows. */
static int copy_id_row(const hvl_t *v, const char *path, int64_t row, bool u64, int32_t **ids,
                       int32_t *n_ids, char *bad, size_t bad_size, vb_err *err)
{
    bad[0] = '\0';
    if (v->len > (size_t)INT32_MAX || (v->len > 0 && !v->p))
        return vb_err_set(err, "%s: /input_ids: row %" PRId64 ": a sequence of %zu token ids "
                          "%s: the file is corrupt", path, row, v->len,
                          v->p ? "(more than 2^31)" : "without data");
    *n_ids = (int32_t)v->len;
    *ids = malloc((v->len ? v->len : 1) * sizeof(int32_t));
    if (!*ids)
        return vb_err_set(err, "%s: /input_ids: row %" PRId64 ": out of memory for %zu ids",
                          path, row, v->len);
    const int64_t *w = v->p;
    for (size_t i = 0; i < v->len; i++) {
        if (w[i] < 0 || w[i] > INT32_MAX) {
            if (!bad[0]) {
                if (u64)
                    snprintf(bad, bad_size, "token id %" PRIu64 " at position %zu is outside "
                             "any vocabulary (0..2^31 - 1)", (uint64_t)w[i], i);
                else
                    snprintf(bad, bad_size, "token id %" PRId64 " at position %zu is outside "
                             "any vocabulary (0..2^31 - 1)", w[i], i);
            }
            (*ids)[i] = 0;
        } else {
            (*ids)[i] = (int32_t)w[i];
        }
    }
    return 0;
}

/* Whether a variable-length dataset's base type is unsigned 64-bit. */
static bool vlen_base_is_uint64(hid_t d)
{
    hid_t t = H5Dget_type(d), b = t >= 0 ? H5Tget_super(t) : -1;
    bool u = h5_type_is_uint64(b);
    h5_close(b);
    h5_close(t);
    return u;
}

/* Rows of /input_ids, read as int64 (or an unsigned 64-bit file's as
 * uint64): a token id outside int32 is one row's error (copy_id_row, into
 * bad[i]), where HDF5's conversion to int32 would stop the whole read. */
static int read_id_rows(hid_t f, const char *path, const int64_t *rows, size_t n,
                        int32_t **ids, int32_t *n_ids, char (*bad)[VB_ROW_ERROR_BYTES],
                        vb_err *err)
{
    trace_rows(path, "/input_ids", rows, n);
    hid_t d = H5Dopen2(f, "/input_ids", H5P_DEFAULT), fs = -1, ms = -1, xfer = exact_ints_dxpl();
    const bool u64 = d >= 0 && vlen_base_is_uint64(d);
    hid_t mt = H5Tvlen_create(u64 ? H5T_NATIVE_UINT64 : H5T_NATIVE_INT64);
    hvl_t *v = calloc(n ? n : 1, sizeof *v);
    int rc = -1;
    if (d >= 0 && h5_vlen_check_rows(f, d, path, "/input_ids", rows, n, err) < 0)
        goto done;
    if (d < 0 || mt < 0 || xfer < 0 || !v || h5_select_rows(d, rows, n, &fs, &ms) < 0 ||
        H5Dread(d, mt, ms, fs, xfer, v) < 0) {
        vb_err_set(err, "%s: /input_ids: rows %" PRId64 "-%" PRId64 ": read failed (the file is "
                   "corrupt)", path, n ? rows[0] : 0, n ? rows[n - 1] : 0);
        if (v && ms >= 0)
            h5_reclaim(mt, ms, v); /* rows a failed read filled; its status adds nothing */
        goto done;
    }
    rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = copy_id_row(&v[i], path, rows[i], u64, &ids[i], &n_ids[i], bad[i],
                         sizeof bad[i], err);
    if (h5_reclaim(mt, ms, v) < 0 && rc == 0)
        rc = vb_err_set(err, "%s: /input_ids: cannot free the rows read", path);
done:
    free(v);
    h5_close(xfer);
    h5_close(mt);
    h5_close(fs);
    h5_close(ms);
    h5_close(d);
    return rc;
}

/* Reads local rows lrows[0..n) (ascending) of one shard into dst[k] =
 * &out[pos[k]]. */
static int read_shard_rows(const vb_input *in, const vb_input_shard *sh, const int64_t *lrows,
                           const int64_t *pos, size_t n, vb_input_row *out, vb_err *err)
{
    vb_input_trace(sh->path, NULL, -1, -1);
    hid_t f = H5Fopen(sh->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        return h5_open_failed(sh->path, err);
    int rc = -1;
    char **strs = calloc(n ? n : 1, sizeof *strs);
    int32_t **ids = calloc(n ? n : 1, sizeof *ids);
    int32_t *n_ids = calloc(n ? n : 1, sizeof *n_ids);
    int64_t *ints = calloc(n ? n : 1, sizeof *ints);
    char(*bad)[VB_ROW_ERROR_BYTES] = calloc(n ? n : 1, sizeof *bad);
    if (!strs || !ids || !n_ids || !ints || !bad) {
        vb_err_set(err, "%s: out of memory", sh->path);
        goto done;
    }
    if (in->kind == VB_PROMPT_IDS) {
        if (read_id_rows(f, sh->path, lrows, n, ids, n_ids, bad, err) < 0)
            goto done;
        for (size_t k = 0; k < n; k++) {
            out[pos[k]].ids = ids[k];
            out[pos[k]].n_ids = n_ids[k];
            memcpy(out[pos[k]].error, bad[k], sizeof bad[k]); /* check_row adds the rest */
            out[pos[k]].ids_out_of_range = bad[k][0] != '\0';
            ids[k] = NULL;
        }
    } else {
        size_t *lens = calloc(n ? n : 1, sizeof *lens);
        int trc = lens ? read_texts(f, sh->path, prompt_names[in->kind], lrows, n, strs, lens, err)
                       : vb_err_set(err, "%s: out of memory", sh->path);
        for (size_t k = 0; k < n && trc == 0; k++) {
            out[pos[k]].text = strs[k];
            out[pos[k]].text_len = lens[k];
            strs[k] = NULL;
        }
        free(lens);
        if (trc < 0)
            goto done;
    }
    if (in->id_kind == VB_ID_STRING) {
        if (read_strings(f, sh->path, "/id", lrows, n, strs, err) < 0)
            goto done;
        for (size_t k = 0; k < n; k++) {
            out[pos[k]].id = strs[k];
            strs[k] = NULL;
        }
    } else if (in->id_kind == VB_ID_INT || in->id_kind == VB_ID_UINT) {
        /* an unsigned 64-bit id's bits in the int64 (vb_id_kind: every
         * shard's /id of the kind the first's is, checked at open) */
        if (read_ints(f, sh->path, "/id", lrows, n, ints, NULL, err) < 0)
            goto done;
        for (size_t k = 0; k < n; k++)
            out[pos[k]].id_int = ints[k];
    }
    if (sh->system_per_row) {
        if (read_strings(f, sh->path, "/system", lrows, n, strs, err) < 0)
            goto done;
        /* An empty entry is a row without one (as -1 in /seed): pack writes
         * "" for the rows of a file that leave it out, which then take
         * --system or the template's own, whatever the other rows hold. */
        for (size_t k = 0; k < n; k++) {
            if (strs[k] && !strs[k][0]) {
                free(strs[k]);
                strs[k] = NULL;
            }
            out[pos[k]].system = strs[k];
            strs[k] = NULL;
        }
    } else if (sh->system_scalar) {
        for (size_t k = 0; k < n; k++)
            if (!(out[pos[k]].system = strdup(sh->system_scalar))) {
                vb_err_set(err, "%s: out of memory", sh->path);
                goto done;
            }
    }
    bool u64 = false; /* the column is unsigned 64-bit (read_ints) */
    if (sh->has_max_new_tokens) {
        if (read_ints(f, sh->path, "/max_new_tokens", lrows, n, ints, &u64, err) < 0)
            goto done;
        for (size_t k = 0; k < n; k++) { /* beyond int32: capped (the model's length caps it) */
            vb_input_row *o = &out[pos[k]];
            o->max_new_tokens = (u64 && ints[k] < 0) || ints[k] > INT32_MAX ? INT32_MAX
                                : ints[k] < INT32_MIN                    ? INT32_MIN
                                                                         : (int32_t)ints[k];
            /* said with the file's value: check_row would name the clamped one */
            if (!u64 && ints[k] < INT32_MIN && !o->error[0])
                snprintf(o->error, sizeof o->error, "max_new_tokens is %" PRId64 " (negative)",
                         ints[k]);
        }
    }
    if (sh->has_seed) {
        if (read_ints(f, sh->path, "/seed", lrows, n, ints, &u64, err) < 0)
            goto done;
        for (size_t k = 0; k < n; k++) {
            out[pos[k]].seed = ints[k];
            out[pos[k]].seed_u64 = u64;
        }
    }
    rc = 0;
done:
    if (strs)
        for (size_t k = 0; k < n; k++)
            free(strs[k]);
    if (ids)
        for (size_t k = 0; k < n; k++)
            free(ids[k]);
    free(strs);
    free(ids);
    free(n_ids);
    free(ints);
    free(bad);
    if (H5Fclose(f) < 0 && rc == 0)
        rc = vb_err_set(err, "%s: close failed", sh->path);
    return rc;
}

typedef struct {
    int64_t row, pos;
} row_pos;

static int by_row(const void *a, const void *b)
{
    const row_pos *x = a, *y = b;
    return (x->row > y->row) - (x->row < y->row);
}

int vb_input_read_rows(const vb_input *in, const int64_t *rows, int64_t n, vb_input_row *out,
                       vb_err *err)
{
    h5_quiet();
    size_t un = (size_t)n;
    row_pos *rp = malloc((un ? un : 1) * sizeof *rp);
    int64_t *lrows = malloc((un ? un : 1) * sizeof *lrows);
    int64_t *pos = malloc((un ? un : 1) * sizeof *pos);
    if (!rp || !lrows || !pos) {
        free(rp);
        free(lrows);
        free(pos);
        return vb_err_set(err, "reading %" PRId64 " rows: out of memory", n);
    }
    int rc = 0;
    for (size_t k = 0; k < un; k++) {
        memset(&out[k], 0, sizeof out[k]);
        out[k].index = rows[k];
        out[k].max_new_tokens = -1;
        out[k].seed = -1;
        rp[k] = (row_pos){rows[k], (int64_t)k};
        if (rows[k] < 0 || rows[k] >= in->n_rows)
            rc = vb_err_set(err, "row %" PRId64 " is outside the inputs (%" PRId64 " rows)",
                            rows[k], in->n_rows);
    }
    if (rc == 0)
        qsort(rp, un, sizeof *rp, by_row);
    size_t k = 0;
    for (int s = 0; s < in->n_shards && rc == 0 && k < un; s++) {
        const vb_input_shard *sh = &in->shards[s];
        size_t m = 0;
        while (k < un && rp[k].row < sh->first_row + sh->n_rows) {
            lrows[m] = rp[k].row - sh->first_row;
            pos[m] = rp[k].pos;
            m++, k++;
        }
        if (m > 0)
            rc = read_shard_rows(in, sh, lrows, pos, m, out, err);
    }
    if (rc == 0)
        for (size_t i = 0; i < un; i++)
            check_row(in->kind, &out[i]);
    else
        vb_input_rows_free(out, n);
    free(rp);
    free(lrows);
    free(pos);
    return rc;
}

void vb_input_rows_free(vb_input_row *rows, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        free(rows[i].text);
        free(rows[i].ids);
        free(rows[i].id);
        free(rows[i].system);
        rows[i].text = rows[i].id = rows[i].system = NULL;
        rows[i].ids = NULL;
    }
}

int vb_input_row_costs(const vb_input *in, int64_t *cost, vb_err *err)
{
    /* In blocks, so the peak memory is one block of prompts, not the file. */
    enum { BLOCK = 8192 };
    int64_t *rows = malloc(BLOCK * sizeof *rows);
    vb_input_row *r = malloc(BLOCK * sizeof *r);
    if (!rows || !r) {
        free(rows);
        free(r);
        return vb_err_set(err, "row costs: out of memory");
    }
    int rc = 0;
    for (int64_t b = 0; b < in->n_rows && rc == 0; b += BLOCK) {
        int64_t m = in->n_rows - b < BLOCK ? in->n_rows - b : BLOCK;
        for (int64_t i = 0; i < m; i++)
            rows[i] = b + i;
        rc = vb_input_read_rows(in, rows, m, r, err);
        if (rc < 0)
            break;
        for (int64_t i = 0; i < m; i++) {
            int64_t c = r[i].text ? (int64_t)r[i].text_len : r[i].n_ids;
            if (r[i].system)
                c += (int64_t)strlen(r[i].system);
            cost[b + i] = c;
        }
        vb_input_rows_free(r, m);
    }
    free(rows);
    free(r);
    return rc;
}

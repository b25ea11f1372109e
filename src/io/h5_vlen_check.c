/* Variable-length references checked before HDF5 follows them; see
 * h5_vlen_check.h.
 *
 * The file format (HDF5 specification, "Disk Format: Level 1E Global
 * Heap"; the same in every library version from 1.8 to 1.14), all
 * little-endian:
 *   descriptor   length (4) | collection address (sizeof_addr) | index (4)
 *                address 0 = a null element, which HDF5 does not follow
 *   collection   "GCOL" | version 1 | 3 reserved | size (sizeof_size),
 *                padded to a multiple of 8; then objects until `size`
 *   object       index (2) | references (2) | 4 reserved |
 *                data size (sizeof_size) | data, padded to a multiple of 8
 *                index 0 is the free space: its size covers its header
 *                and it is not padded; fewer bytes left than an object
 *                header are free space too
 * Addresses are relative to the base address (the user block's size).
 * An element's object holds length x (the base type's size in the file)
 * bytes: one byte a character for strings. */
#include "io/h5_vlen_check.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GCOL_MAX_BYTES ((uint64_t)256 << 20) /* larger collections are left unchecked */
#define CACHE_MAX 256                          /* collections remembered per call */
#define DESC_BATCH 4096                        /* descriptors read at a time */

static uint64_t align8(uint64_t x)
{
    return (x + 7) / 8 * 8;
}

/* Little-endian unsigned integer of `width` bytes (1 to 8). */
static uint64_t le(const unsigned char *p, size_t width)
{
    uint64_t x = 0;
    for (size_t i = width; i-- > 0;)
        x = x << 8 | p[i];
    return x;
}

typedef struct obj_entry {
    uint16_t idx;
    uint64_t size;
} obj_entry;

/* One parsed collection: its objects sorted by index. ok = false: it does
 * not parse (every reference into it is refused). */
typedef struct collection {
    uint64_t addr;
    bool ok, unchecked;
    obj_entry *obj;
    size_t n_obj;
} collection;

typedef struct vlen_file {
    int fd;
    uint64_t fsize, base;   /* where what HDF5 reads ends (h5_readable_end); base address */
    size_t sizeof_addr, sizeof_size;
    uint64_t elem_bytes;    /* bytes per element of the base type in the file */
    collection cache[CACHE_MAX];
    size_t n_cached;
} vlen_file;

static int pread_all(int fd, void *buf, size_t n, uint64_t at)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(at + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static int by_idx(const void *a, const void *b)
{
    const obj_entry *x = a, *y = b;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Walks the objects of a collection image the way HDF5's deserializer
 * does, but refuses what would send it astray: a zero-size free-space
 * object (an endless loop), an object that runs past the collection, an
 * index seen twice. */
static bool parse_objects(vlen_file *vf, const unsigned char *img, uint64_t size, collection *c)
{
    uint64_t objhdr = 8 + vf->sizeof_size;
    uint64_t p = align8(8 + vf->sizeof_size);
    c->obj = malloc((size / objhdr + 1) * sizeof *c->obj);
    if (!c->obj)
        return false;
    while (p < size) {
        if (p + objhdr > size)
            break; /* too small for a header: free space */
        uint16_t idx = (uint16_t)le(img + p, 2);
        uint64_t osize = le(img + p + 8, vf->sizeof_size);
        uint64_t need = idx > 0 ? objhdr + align8(osize) : osize;
        if (need == 0 || osize > size || need > size - p)
            return false;
        if (idx > 0)
            c->obj[c->n_obj++] = (obj_entry){idx, osize};
        p += need;
    }
    qsort(c->obj, c->n_obj, sizeof *c->obj, by_idx);
    for (size_t i = 1; i < c->n_obj; i++)
        if (c->obj[i].idx == c->obj[i - 1].idx)
            return false;
    return true;
}

/* Reads and parses the collection at file address addr into c. */
static void load_collection(vlen_file *vf, uint64_t addr, collection *c)
{
    memset(c, 0, sizeof *c);
    c->addr = addr;
    unsigned char hdr[16];
    uint64_t at = vf->base + addr, hdr_len = 8 + vf->sizeof_size;
    if (at > vf->fsize || vf->fsize - at < hdr_len || pread_all(vf->fd, hdr, hdr_len, at) < 0)
        return;
    uint64_t size = le(hdr + 8, vf->sizeof_size);
    if (memcmp(hdr, "GCOL", 4) != 0 || hdr[4] != 1 || size < align8(hdr_len) ||
        size > vf->fsize - at)
        return;
    if (size > GCOL_MAX_BYTES) {
        c->ok = c->unchecked = true;
        return;
    }
    unsigned char *img = malloc(size);
    if (!img) {
        c->ok = c->unchecked = true; /* no memory to check: HDF5 will not have any either */
        return;
    }
    c->ok = pread_all(vf->fd, img, size, at) == 0 && parse_objects(vf, img, size, c);
    free(img);
}

static collection *find_collection(vlen_file *vf, uint64_t addr)
{
    for (size_t i = 0; i < vf->n_cached; i++)
        if (vf->cache[i].addr == addr)
            return &vf->cache[i];
    if (vf->n_cached == CACHE_MAX) {
        for (size_t i = 0; i < vf->n_cached; i++)
            free(vf->cache[i].obj);
        vf->n_cached = 0;
    }
    collection *c = &vf->cache[vf->n_cached++];
    load_collection(vf, addr, c);
    return c;
}

/* NULL when the descriptor d is sound, else why not. */
static const char *check_descriptor(vlen_file *vf, const unsigned char *d)
{
    uint64_t len = le(d, 4), addr = le(d + 4, vf->sizeof_addr);
    uint64_t idx = le(d + 4 + vf->sizeof_addr, 4);
    if (addr == 0)
        return NULL; /* a null element */
    if (len > vf->fsize / vf->elem_bytes)
        return "its length is larger than the file";
    if (idx == 0 || idx > UINT16_MAX)
        return "it names no global heap object";
    collection *c = find_collection(vf, addr);
    if (!c->ok)
        return "the global heap collection it names is damaged or outside the file";
    if (c->unchecked)
        return NULL;
    obj_entry key = {(uint16_t)idx, 0};
    obj_entry *o = bsearch(&key, c->obj, c->n_obj, sizeof *c->obj, by_idx);
    if (!o)
        return "its global heap object does not exist";
    if (o->size != len * vf->elem_bytes)
        return "its global heap object's size differs from its length";
    return NULL;
}

int h5_readable_end(hid_t f, const char *path, uint64_t *end)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    *end = (uint64_t)st.st_size;
#if H5_VERSION_GE(1, 10, 2)
    hid_t fcpl = H5Fget_create_plist(f);
    hsize_t base = 0;
    haddr_t eoa = HADDR_UNDEF;
    if (fcpl >= 0 && H5Pget_userblock(fcpl, &base) >= 0 && H5Fget_eoa(f, &eoa) >= 0 &&
        eoa != HADDR_UNDEF && base + eoa < *end)
        *end = base + eoa;
    if (fcpl >= 0)
        H5Pclose(fcpl);
#else
    (void)f; /* no H5Fget_eoa before 1.10.2: the file's size is the limit */
#endif
    return 0;
}

/* The file's address and length sizes and base address, from its
 * creation property list; -1 when the file is not one checked here. */
static int file_geometry(hid_t f, vlen_file *vf)
{
    hid_t fcpl = H5Fget_create_plist(f);
    if (fcpl < 0)
        return -1;
    hsize_t ub = 0;
    int rc = H5Pget_sizes(fcpl, &vf->sizeof_addr, &vf->sizeof_size) < 0 ||
                     H5Pget_userblock(fcpl, &ub) < 0
                 ? -1
                 : 0;
    H5Pclose(fcpl);
    vf->base = ub;
    /* Every writer's default. With smaller sizes (H5Pset_sizes), HDF5 1.10
     * still writes 8-byte lengths in the global heap: such rare files are
     * left to the child process rather than parsed on a guess. */
    if (vf->sizeof_addr != 8 || vf->sizeof_size != 8)
        rc = -1;
    return rc;
}

/* Where the descriptors lie: 0 with *at set for a contiguous, allocated
 * dataset in this file; 1 when it cannot be checked this way. */
static int descriptors_at(hid_t d, haddr_t *at)
{
    hid_t dcpl = H5Dget_create_plist(d);
    if (dcpl < 0)
        return 1;
    H5D_layout_t layout = H5Pget_layout(dcpl);
    int external = H5Pget_external_count(dcpl);
    H5Pclose(dcpl);
    if (layout != H5D_CONTIGUOUS || external != 0)
        return 1;
    *at = H5Dget_offset(d);
    return *at == HADDR_UNDEF ? 1 : 0;
}

/* Bytes per element of the base type in the file: 1 for strings. */
static uint64_t base_bytes(hid_t d)
{
    hid_t t = H5Dget_type(d);
    if (t < 0)
        return 0;
    uint64_t n = 0;
    if (H5Tis_variable_str(t) > 0) {
        n = 1;
    } else if (H5Tget_class(t) == H5T_VLEN) {
        hid_t b = H5Tget_super(t);
        n = b >= 0 ? H5Tget_size(b) : 0;
        if (b >= 0)
            H5Tclose(b);
    }
    H5Tclose(t);
    return n;
}

/* Checks the descriptors of rows[i0..i1) (consecutive rows). */
static int check_run(vlen_file *vf, uint64_t desc_at, const int64_t *rows, size_t i0, size_t i1,
                     const char *path, const char *name, vb_err *err)
{
    uint64_t dsz = 8 + vf->sizeof_addr;
    static unsigned char buf[DESC_BATCH * 16];
    for (size_t i = i0; i < i1; i += DESC_BATCH) {
        size_t m = i1 - i < DESC_BATCH ? i1 - i : DESC_BATCH;
        uint64_t first = rows ? (uint64_t)rows[i] : 0, at = desc_at + first * dsz;
        if (at > vf->fsize || m * dsz > vf->fsize - at || pread_all(vf->fd, buf, m * dsz, at) < 0)
            return vb_err_set(err, "%s: %s: rows %" PRIu64 "-%" PRIu64 ": cannot read their "
                              "descriptors: the file is corrupt or truncated", path, name, first,
                              first + m - 1);
        for (size_t k = 0; k < m; k++) {
            const char *why = check_descriptor(vf, buf + k * dsz);
            if (why)
                return vb_err_set(err, "%s: %s: row %" PRIu64 ": %s: the file is corrupt", path,
                                  name, first + k, why);
        }
    }
    return 0;
}

int h5_vlen_check_rows(hid_t f, hid_t d, const char *path, const char *name,
                       const int64_t *rows, size_t n, vb_err *err)
{
    static vlen_file vf;
    memset(&vf, 0, sizeof vf);
    haddr_t desc = 0;
    vf.elem_bytes = base_bytes(d);
    if (vf.elem_bytes == 0 || descriptors_at(d, &desc) != 0 || file_geometry(f, &vf) < 0 ||
        h5_readable_end(f, path, &vf.fsize) < 0)
        return 0; /* not a layout checked here; open_checked has sized the rest */
    vf.fd = open(path, O_RDONLY | O_CLOEXEC);
    if (vf.fd < 0)
        return vb_err_set(err, "%s: cannot open for reading", path);
    int rc = 0;
    size_t i = 0;
    while (rc == 0 && i < (rows ? n : 1)) {
        size_t j = i + 1;
        while (rows && j < n && rows[j] == rows[j - 1] + 1)
            j++;
        rc = check_run(&vf, desc, rows, i, rows ? j : 1, path, name, err);
        i = j;
    }
    for (size_t k = 0; k < vf.n_cached; k++)
        free(vf.cache[k].obj);
    close(vf.fd);
    return rc;
}

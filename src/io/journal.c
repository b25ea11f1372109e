/* Append-only, CRC-checked journal of finished rows; see journal.h. */
#include "io/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/crc32.h"
#include "io/row_codec.h"
#include "io/run_settings.h"

static const char magic[8] = {'V', 'B', 'J', 'R', 'N', 'L', '0', '1'};

/* The most the write buffer holds between ticks: an append past it writes
 * the buffer (no sync) at once, and a buffer grown past it (one record
 * larger) is freed once written. Rows finished in one burst (300,000
 * --max-new-tokens 0 rows in one tick) were buffered whole, and the
 * buffer kept that capacity (1 GB) to the end of the run. */
#define JOURNAL_BUF_BOUND ((size_t)1 << 20)

struct vb_journal {
    char *path;
    int fd;
    unsigned char *buf; /* records not yet written */
    size_t len, cap;
    int64_t end;        /* the file's bytes written so far: where buf[0] goes */
    bool unsynced;      /* written since the last fdatasync */
    double flush_interval, last_flush;
    char failure[VB_ERR_LEN]; /* "" while the journal is sound */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

char *vb_journal_path_for(const char *output)
{
    size_t n = strlen(output) + sizeof ".journal";
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s.journal", output);
    return p;
}

/* Record = u32 length, u32 crc, payload. */
static void put_record(vb_bytes *b, const vb_bytes *payload)
{
    uint32_t len = (uint32_t)payload->len, crc = vb_crc32(0, payload->p, payload->len);
    vb_bytes_put(b, &len, 4);
    vb_bytes_put(b, &crc, 4);
    vb_bytes_put(b, payload->p, payload->len);
}

/* ---- reading ------------------------------------------------------------- */

/* The journal is read a record at a time (pread), never whole: it holds
 * every finished row, and reading it into one buffer beside the results
 * made of it held them twice (a buffer that grew by doubling, up to twice
 * the file in address space). */
enum { SCAN_PIECE = 1 << 16 };

typedef struct jreader {
    const char *path;
    int fd;
    size_t len;         /* the file's size when opened */
    unsigned char *buf; /* the current record's payload */
    size_t cap;
} jreader;

static int jr_open(jreader *jr, const char *path, vb_err *err)
{
    *jr = (jreader){.path = path, .fd = open(path, O_RDONLY | O_CLOEXEC)};
    if (jr->fd < 0)
        return vb_err_set(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(jr->fd, &st) != 0) {
        int e = errno;
        close(jr->fd);
        return vb_err_set(err, "%s: cannot stat: %s", path, strerror(e));
    }
    jr->len = (size_t)st.st_size;
    return 0;
}

static void jr_close(jreader *jr)
{
    close(jr->fd);
    free(jr->buf);
    jr->buf = NULL;
}

/* Exactly n bytes at offset `at` (the file shrinking meanwhile is a read
 * error: it is the caller's own journal, not one being written). */
static int jr_read(const jreader *jr, size_t at, void *dst, size_t n, vb_err *err)
{
    unsigned char *p = dst;
    while (n > 0) {
        ssize_t got = pread(jr->fd, p, n, (off_t)at);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return vb_err_set(err, "%s: read error", jr->path);
        p += got;
        at += (size_t)got;
        n -= (size_t)got;
    }
    return 0;
}

/* The n-byte payload at `at` into jr->buf, grown to the largest record. */
static int jr_payload(jreader *jr, size_t at, size_t n, vb_err *err)
{
    if (n > jr->cap) {
        unsigned char *q = realloc(jr->buf, n);
        if (!q)
            return vb_err_set(err, "%s: out of memory reading the journal", jr->path);
        jr->buf = q;
        jr->cap = n;
    }
    return jr_read(jr, at, jr->buf, n, err);
}

/* Whether the file holds only zero bytes from `from` to its end. */
static int all_zero_from(const jreader *jr, size_t from, bool *zero, vb_err *err)
{
    unsigned char *piece = malloc(SCAN_PIECE);
    if (!piece)
        return vb_err_set(err, "%s: out of memory reading the journal", jr->path);
    int rc = 0;
    *zero = true;
    for (size_t at = from; rc == 0 && *zero && at < jr->len; at += SCAN_PIECE) {
        size_t n = jr->len - at < SCAN_PIECE ? jr->len - at : SCAN_PIECE;
        rc = jr_read(jr, at, piece, n, err);
        for (size_t i = 0; rc == 0 && i < n && *zero; i++)
            *zero = piece[i] == 0;
    }
    free(piece);
    return rc;
}

/* Whether the n bytes at `at` have CRC crc (read a piece at a time). */
static int crc_matches(const jreader *jr, size_t at, size_t n, uint32_t crc,
                       unsigned char *piece, bool *match, vb_err *err)
{
    uint32_t c = 0;
    for (size_t done = 0; done < n;) {
        size_t k = n - done < SCAN_PIECE ? n - done : SCAN_PIECE;
        if (jr_read(jr, at + done, piece, k, err) < 0)
            return -1;
        c = vb_crc32(c, piece, k);
        done += k;
    }
    *match = c == crc;
    return 0;
}

/* Whether a whole row record (a length that fits, type 'R', its CRC)
 * starts anywhere in [from, end of file). A torn write leaves nothing whole
 * after the cut; damage in the middle of the file does. The file is read a
 * window of record heads at a time, each candidate's payload apart. */
static int whole_record_after(const jreader *jr, size_t from, bool *found, vb_err *err)
{
    const size_t len = jr->len;
    unsigned char *win = malloc(SCAN_PIECE + 8), *piece = malloc(SCAN_PIECE);
    int rc = win && piece ? 0 : vb_err_set(err, "%s: out of memory reading the journal", jr->path);
    *found = false;
    for (size_t base = from; rc == 0 && !*found && base + 9 <= len; base += SCAN_PIECE) {
        size_t n = len - base < SCAN_PIECE + 8 ? len - base : SCAN_PIECE + 8;
        rc = jr_read(jr, base, win, n, err);
        for (size_t k = 0; rc == 0 && !*found && k < SCAN_PIECE && k + 9 <= n; k++) {
            const size_t p = base + k;
            uint32_t rlen, crc;
            memcpy(&rlen, win + k, 4);
            if (rlen == 0 || rlen > len - p - 8 || win[k + 8] != 'R')
                continue;
            memcpy(&crc, win + k + 4, 4);
            rc = crc_matches(jr, p + 8, rlen, crc, piece, found, err);
        }
    }
    free(win);
    free(piece);
    return rc;
}

/* The record at `at`: 1 with its payload in jr->buf and its length in
 * *rlen_out; 0 when the file ends there in a torn write; -1 on damage in
 * the middle of the file or an I/O error. */
static int read_record(jreader *jr, size_t at, uint32_t *rlen_out, vb_err *err)
{
    const size_t len = jr->len;
    unsigned char head[8];
    uint32_t rlen, crc;
    bool whole = false, zero = false;
    if (len - at < 8)
        return 0;
    if (jr_read(jr, at, head, 8, err) < 0)
        return -1;
    memcpy(&rlen, head, 4);
    memcpy(&crc, head + 4, 4);
    if (rlen > len - at - 8) {
        /* A length past the end is a torn last record, unless whole
         * records follow: then the length itself is damaged, and taking it
         * for a tail cut off every row after it (append mode truncates
         * there) without a word */
        if (whole_record_after(jr, at + 1, &whole, err) < 0)
            return -1;
        if (whole)
            return vb_err_set(err, "%s: record at byte %zu gives a length (%u) past the end of "
                              "the file but whole records follow (the file is damaged)",
                              jr->path, at, rlen);
        return 0;
    }
    if (jr_payload(jr, at + 8, rlen, err) < 0)
        return -1;
    if (vb_crc32(0, jr->buf, rlen) != crc || rlen == 0) {
        /* The last record, or zero bytes to the end: a torn write. A crash
         * can leave the file longer than what reached the disk, the rest
         * read as zeros (the size was journaled by the file system before
         * the data: XFS, some parallel file systems); no record is all
         * zeros (the length is > 0). */
        if (at + 8 + rlen == len)
            return 0;
        if (all_zero_from(jr, at, &zero, err) < 0)
            return -1;
        if (zero)
            return 0;
        return vb_err_set(err, "%s: record at byte %zu fails its checksum and is not the last "
                          "(the file is damaged)", jr->path, at);
    }
    *rlen_out = rlen;
    return 1;
}

/* One intact record's payload: the header (the first record) parsed into
 * *header, or a row put into r (NULL: rows not decoded): copied in, or
 * with `located` only its place (the record's offset). */
static int take_record(const jreader *jr, size_t at, uint32_t rlen, json_t **header,
                       vb_results *r, bool located, vb_err *err)
{
    const unsigned char *payload = jr->buf;
    bool first = at == sizeof magic;
    if (first != (payload[0] == 'H') || (payload[0] != 'H' && payload[0] != 'R'))
        return vb_err_set(err, "%s: record at byte %zu has an unexpected type", jr->path, at);
    if (payload[0] == 'H') {
        json_error_t je;
        *header = json_loadb((const char *)payload + 1, rlen - 1, 0, &je);
        if (!*header || !json_is_object(*header))
            return vb_err_set(err, "%s: header is not a JSON object", jr->path);
        return 0;
    }
    if (!r)
        return 0;
    vb_output_row w;
    if (vb_row_decode(payload, rlen, r->top_n, &w) < 0)
        return vb_err_set(err, "%s: row record at byte %zu is malformed", jr->path, at);
    int rc = located ? vb_results_put_at(r, &w, (int64_t)at, err) : vb_results_put(r, &w, err);
    vb_output_row_free(&w);
    return rc < 0 ? vb_err_prefix(err, "%s", jr->path) : 0;
}

/* Reads records from the start until the end of the intact prefix (or,
 * header_only, until the header): *at the prefix's end, *cut whether
 * anything after it was cut. */
static int scan_records(jreader *jr, bool header_only, json_t **header, vb_results *r,
                        bool located, size_t *at, bool *cut, vb_err *err)
{
    unsigned char head[sizeof magic];
    *at = 0;
    *cut = false;
    if (jr->len < sizeof magic) {
        /* Killed before even the magic was written: an empty journal. */
        *cut = jr->len > 0;
        return 0;
    }
    if (jr_read(jr, 0, head, sizeof magic, err) < 0)
        return -1;
    if (memcmp(head, magic, sizeof magic) != 0)
        return vb_err_set(err, "%s: not a voltbatch journal (bad magic)", jr->path);
    *at = sizeof magic;
    while (*at < jr->len) {
        uint32_t rlen = 0;
        int got = read_record(jr, *at, &rlen, err);
        if (got <= 0) {
            *cut = got == 0;
            return got;
        }
        if (take_record(jr, *at, rlen, header, r, located, err) < 0)
            return -1;
        *at += 8 + rlen;
        if (header_only && *header)
            break;
    }
    return 0;
}

static int journal_read(const char *path, bool header_only, json_t **settings, vb_results *r,
                        bool located, int64_t *good_bytes, bool *torn, vb_err *err)
{
    if (settings)
        *settings = NULL;
    jreader jr;
    if (jr_open(&jr, path, err) < 0)
        return -1;
    json_t *header = NULL;
    size_t at = 0;
    bool cut = false;
    int rc = scan_records(&jr, header_only, &header, r, located, &at, &cut, err);
    jr_close(&jr);
    if (rc < 0) {
        json_decref(header);
        return -1;
    }
    if (good_bytes)
        *good_bytes = header ? (int64_t)at : 0;
    if (torn)
        *torn = cut;
    if (settings)
        *settings = header;
    else
        json_decref(header);
    return 0;
}

int vb_journal_read(const char *path, json_t **settings, vb_results *r, int64_t *good_bytes,
                    bool *torn, vb_err *err)
{
    return journal_read(path, false, settings, r, false, good_bytes, torn, err);
}

int vb_journal_read_located(const char *path, vb_results *r, int64_t *good_bytes, bool *torn,
                            vb_err *err)
{
    return journal_read(path, false, NULL, r, true, good_bytes, torn, err);
}

int vb_journal_read_header(const char *path, json_t **settings, vb_err *err)
{
    return journal_read(path, true, settings, NULL, false, NULL, NULL, err);
}

/* ---- writing ------------------------------------------------------------- */

static int write_fully(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static vb_journal *journal_new(const char *path, int fd)
{
    vb_journal *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->path = strdup(path);
    j->fd = fd;
    j->flush_interval = VB_JOURNAL_FLUSH_SECONDS;
    j->last_flush = now_s();
    if (!j->path) {
        free(j);
        return NULL;
    }
    return j;
}

/* ---- one run per output ---------------------------------------------------
 *
 * The journal's own descriptor holds an exclusive flock(2) for the whole
 * run (the kernel drops it when the process ends, however it ends). A
 * second run on the same output (a requeued job while the first still
 * runs, the same output in two job scripts) finds it locked and is refused
 * before it removes, truncates or appends anything: otherwise the two
 * interleave records, and the one that ends last writes its rows over the
 * other's output. flock is per open file description (an fopen/fclose of
 * the same file elsewhere in the process does not drop it) and reaches
 * across nodes on NFS (as a whole-file lock), GPFS and Lustre mounted with
 * -o flock. Where the file system has no locks (ENOSYS, EOPNOTSUPP,
 * ENOLCK: Lustre without -o flock; EBADF: a lock emulation that wants
 * another open mode) the run goes on unlocked, as before. */
static int lock_or_refuse(int fd, const char *path, vb_err *err)
{
    int rc;
    while ((rc = flock(fd, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR)
        ;
    if (rc == 0 || errno == ENOSYS || errno == EOPNOTSUPP || errno == ENOLCK || errno == EBADF)
        return 0;
    if (errno == EWOULDBLOCK)
        return vb_err_set(err, "%s is locked: another voltbatch run is writing this output now; "
                          "wait for it to end (or stop it), then --resume", path);
    return vb_err_set(err, "%s: cannot lock: %s", path, strerror(errno));
}

/* After the lock: the name still leads to the locked file, not to one a
 * run that ended meanwhile removed (or a new run created after that). */
static int still_named(int fd, const char *path, vb_err *err)
{
    struct stat a, b;
    if (fstat(fd, &a) != 0 || stat(path, &b) != 0 || a.st_dev != b.st_dev ||
        a.st_ino != b.st_ino)
        return vb_err_set(err, "%s: removed or replaced by another run while this one started; "
                          "run again", path);
    return 0;
}

static int open_locked(const char *path, int flags, vb_err *err)
{
    int fd = open(path, flags | O_CLOEXEC, 0644);
    if (fd < 0)
        return vb_err_set(err, "%s: cannot open: %s", path, strerror(errno));
    if (lock_or_refuse(fd, path, err) < 0 || still_named(fd, path, err) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int vb_journal_check_unlocked(const char *path, vb_err *err)
{
    /* opened for writing, as the run will: NFS takes flock as a whole-file
     * write lock, refused (EBADF) on a descriptor opened read-only */
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return 0; /* none (or not writable: opening it for the run says why) */
    int rc = lock_or_refuse(fd, path, err);
    close(fd); /* drops the probe's lock */
    return rc;
}

int vb_journal_create(const char *path, const json_t *settings, vb_journal **out, vb_err *err)
{
    *out = NULL;
    /* Locked before it is truncated: a file by this name may be another
     * run's journal. */
    int fd = open_locked(path, O_RDWR | O_CREAT, err);
    if (fd < 0)
        return -1;
    if (ftruncate(fd, 0) != 0) {
        int e = errno;
        close(fd);
        return vb_err_set(err, "%s: cannot truncate: %s", path, strerror(e));
    }
    vb_journal *j = journal_new(path, fd);
    if (!j) {
        close(fd);
        return vb_err_set(err, "%s: out of memory", path);
    }
    char *text = vb_run_settings_dump(settings);
    vb_bytes payload = {0}, rec = {0};
    uint8_t tag = 'H';
    vb_bytes_put(&payload, &tag, 1);
    if (text)
        vb_bytes_put(&payload, text, strlen(text));
    vb_bytes_put(&rec, magic, sizeof magic);
    put_record(&rec, &payload);
    free(text);
    free(payload.p);
    if (!text || rec.oom || payload.oom) {
        free(rec.p);
        vb_journal_close(j, NULL);
        return vb_err_set(err, "%s: out of memory", path);
    }
    j->buf = rec.p;
    j->len = rec.len;
    j->cap = rec.cap;
    if (vb_journal_flush(j, err) < 0) {
        vb_journal_close(j, NULL);
        return -1;
    }
    *out = j;
    return 0;
}

int vb_journal_open_append(const char *path, int64_t good_bytes, vb_journal **out,
                           vb_err *err)
{
    *out = NULL;
    int fd = open_locked(path, O_RDWR, err);
    if (fd < 0)
        return -1;
    /* Cut the torn tail so the next record follows the last intact one. */
    if (ftruncate(fd, (off_t)good_bytes) != 0 || lseek(fd, 0, SEEK_END) < 0 ||
        fdatasync(fd) != 0) {
        int e = errno;
        close(fd);
        return vb_err_set(err, "%s: cannot cut the torn tail: %s", path, strerror(e));
    }
    vb_journal *j = journal_new(path, fd);
    if (!j) {
        close(fd);
        return vb_err_set(err, "%s: out of memory", path);
    }
    j->end = good_bytes;
    *out = j;
    return 0;
}

/* The first I/O failure is kept and every later call returns it: a
 * journal that lost a record is not written to again (it would hold rows
 * after a gap, or fill the buffer without end). */
static int journal_fail(vb_journal *j, vb_err *err, const char *what, int e)
{
    if (!j->failure[0])
        snprintf(j->failure, sizeof j->failure, "%s: %s%s%s%s", j->path, what, e ? ": " : "",
                 e ? strerror(e) : "",
                 e == ENOSPC || e == EDQUOT ? " (disk full or over quota)" : "");
    return vb_err_set(err, "%s", j->failure);
}

/* Writes the buffer (no sync). A file with no name left (the journal or
 * its directory was removed) takes writes that no --resume will find:
 * that is a failure too. */
static int journal_write(vb_journal *j, vb_err *err)
{
    if (j->failure[0])
        return vb_err_set(err, "%s", j->failure);
    if (j->len == 0)
        return 0;
    if (write_fully(j->fd, j->buf, j->len) < 0)
        return journal_fail(j, err, "write failed", errno);
    j->end += (int64_t)j->len;
    j->len = 0;
    j->unsynced = true;
    if (j->cap > JOURNAL_BUF_BOUND) {
        free(j->buf);
        j->buf = NULL;
        j->cap = 0;
    }
    struct stat st;
    if (fstat(j->fd, &st) != 0)
        return journal_fail(j, err, "fstat failed", errno);
    if (st.st_nlink == 0)
        return journal_fail(j, err, "was removed (or its directory) while the run was writing it",
                            0);
    return 0;
}

int vb_journal_append(vb_journal *j, const vb_output_row *row, int32_t top_n, vb_err *err)
{
    int64_t at;
    return vb_journal_append_at(j, row, top_n, &at, err);
}

int vb_journal_append_at(vb_journal *j, const vb_output_row *row, int32_t top_n, int64_t *at,
                         vb_err *err)
{
    *at = -1;
    if (j->failure[0])
        return vb_err_set(err, "%s", j->failure);
    const int64_t place = j->end + (int64_t)j->len;
    vb_bytes payload = {0};
    vb_row_encode(&payload, row, top_n);
    vb_bytes rec = {j->buf, j->len, j->cap, false};
    put_record(&rec, &payload);
    free(payload.p);
    if (rec.oom || payload.oom)
        return vb_err_set(err, "%s: out of memory buffering row %" PRId64, j->path, row->index);
    j->buf = rec.p;
    j->len = rec.len;
    j->cap = rec.cap;
    *at = place; /* buffered: the record is readable (vb_journal_store) from here on */
    if (now_s() - j->last_flush >= j->flush_interval)
        return vb_journal_flush(j, err);
    if (j->len >= JOURNAL_BUF_BOUND)
        return journal_write(j, err);
    return 0;
}

int vb_journal_flush(vb_journal *j, vb_err *err)
{
    if (journal_write(j, err) < 0)
        return -1;
    if (fdatasync(j->fd) != 0 && errno != EINVAL)
        return journal_fail(j, err, "fdatasync failed", errno);
    j->unsynced = false;
    j->last_flush = now_s();
    return 0;
}

int vb_journal_tick(vb_journal *j, vb_err *err)
{
    if (journal_write(j, err) < 0)
        return -1;
    if (j->unsynced && now_s() - j->last_flush >= j->flush_interval)
        return vb_journal_flush(j, err);
    return 0;
}

/* ---- reading rows back while writing ---------------------------------------
 *
 * The output is written from the journal (results.h: the run holds only
 * where each row's record is). A record still in the buffer is read from
 * it: after a failed write the buffer keeps what the file did not take,
 * so the output still gets those rows. Everything before j->end was
 * written through this descriptor (opened read-write for this), and reads
 * back from the page cache even when the name was removed meanwhile. */
static int journal_fetch(void *ctx, int64_t at, int32_t top_n, vb_output_row *row, vb_err *err)
{
    vb_journal *j = ctx;
    memset(row, 0, sizeof *row);
    unsigned char head[8];
    uint32_t rlen = 0, crc = 0;
    const bool buffered = at >= j->end;
    const size_t off = buffered ? (size_t)(at - j->end) : 0;
    if (at < 8 || (buffered && off + 8 > j->len))
        return vb_err_set(err, "%s: no record at byte %" PRId64, j->path, at);
    if (buffered) {
        memcpy(head, j->buf + off, 8);
    } else {
        jreader jr = {.path = j->path, .fd = j->fd};
        if (jr_read(&jr, (size_t)at, head, 8, err) < 0)
            return -1;
    }
    memcpy(&rlen, head, 4);
    memcpy(&crc, head + 4, 4);
    const int64_t stored = buffered ? j->end + (int64_t)j->len : j->end;
    if (rlen == 0 || (int64_t)rlen > stored - at - 8)
        return vb_err_set(err, "%s: record at byte %" PRId64 " gives a length (%u) past the "
                          "end of the file (the file was changed while the run wrote it)",
                          j->path, at, rlen);
    unsigned char *payload = buffered ? j->buf + off + 8 : malloc(rlen);
    if (!payload)
        return vb_err_set(err, "%s: out of memory reading the journal", j->path);
    int rc = 0;
    if (!buffered) {
        jreader jr = {.path = j->path, .fd = j->fd};
        rc = jr_read(&jr, (size_t)at + 8, payload, rlen, err);
    }
    if (rc == 0 && vb_crc32(0, payload, rlen) != crc)
        rc = vb_err_set(err, "%s: record at byte %" PRId64 " fails its checksum (the file was "
                        "changed while the run wrote it)", j->path, at);
    if (rc == 0 && vb_row_decode(payload, rlen, top_n, row) < 0)
        rc = vb_err_set(err, "%s: row record at byte %" PRId64 " is malformed", j->path, at);
    if (!buffered)
        free(payload);
    return rc;
}

vb_row_store vb_journal_store(vb_journal *j)
{
    return (vb_row_store){.fetch = j ? journal_fetch : NULL, .ctx = j};
}

const char *vb_journal_failure(const vb_journal *j)
{
    return j && j->failure[0] ? j->failure : NULL;
}

void vb_journal_set_flush_interval(vb_journal *j, double seconds)
{
    j->flush_interval = seconds;
}

int vb_journal_close(vb_journal *j, vb_err *err)
{
    if (!j)
        return 0;
    int rc = vb_journal_flush(j, err); /* a failed journal: its failure */
    if (close(j->fd) != 0 && rc == 0)
        rc = vb_err_set(err, "%s: close failed: %s", j->path, strerror(errno));
    free(j->buf);
    free(j->path);
    free(j);
    return rc;
}

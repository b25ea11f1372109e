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

struct vb_journal {
    char *path;
    int fd;
    unsigned char *buf; /* records not yet written */
    size_t len, cap;
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

static int read_all(const char *path, unsigned char **data, size_t *len, vb_err *err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return vb_err_set(err, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    unsigned char *p = malloc(cap);
    size_t got;
    while (p && (got = fread(p + n, 1, cap - n, fp)) > 0) {
        n += got;
        if (n == cap) {
            unsigned char *q = realloc(p, cap * 2);
            if (!q) {
                free(p);
                p = NULL;
                break;
            }
            p = q;
            cap *= 2;
        }
    }
    int bad = ferror(fp);
    fclose(fp);
    if (!p)
        return vb_err_set(err, "%s: out of memory reading the journal", path);
    if (bad) {
        free(p);
        return vb_err_set(err, "%s: read error", path);
    }
    *data = p;
    *len = n;
    return 0;
}

static bool all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* Whether a whole row record (a length that fits, type 'R', its CRC)
 * starts anywhere in data[from, len). A torn write leaves nothing whole
 * after the cut; damage in the middle of the file does. */
static bool whole_record_after(const unsigned char *data, size_t len, size_t from)
{
    for (size_t p = from; p + 9 <= len; p++) {
        uint32_t rlen, crc;
        memcpy(&rlen, data + p, 4);
        if (rlen == 0 || rlen > len - p - 8 || data[p + 8] != 'R')
            continue;
        memcpy(&crc, data + p + 4, 4);
        if (vb_crc32(0, data + p + 8, rlen) == crc)
            return true;
    }
    return false;
}

int vb_journal_read(const char *path, json_t **settings, vb_results *r, int64_t *good_bytes,
                    bool *torn, vb_err *err)
{
    if (settings)
        *settings = NULL;
    unsigned char *data = NULL;
    size_t len = 0;
    if (read_all(path, &data, &len, err) < 0)
        return -1;
    int rc = 0;
    size_t at = 0;
    bool cut = false;
    json_t *header = NULL;
    if (len < sizeof magic) {
        /* Killed before even the magic was written: an empty journal. */
        cut = len > 0;
        goto done;
    }
    if (memcmp(data, magic, sizeof magic) != 0) {
        rc = vb_err_set(err, "%s: not a voltbatch journal (bad magic)", path);
        goto done;
    }
    at = sizeof magic;
    while (at < len) {
        uint32_t rlen, crc;
        if (len - at < 8) {
            cut = true;
            break;
        }
        memcpy(&rlen, data + at, 4);
        memcpy(&crc, data + at + 4, 4);
        if (rlen > len - at - 8) {
            /* A length past the end is a torn last record, unless whole
             * records follow: then the length itself is damaged, and
             * taking it for a tail cut off every row after it (append
             * mode truncates there) without a word */
            if (whole_record_after(data, len, at + 1)) {
                rc = vb_err_set(err, "%s: record at byte %zu gives a length (%u) past the end of "
                                "the file but whole records follow (the file is damaged)", path,
                                at, rlen);
                goto done;
            }
            cut = true;
            break;
        }
        const unsigned char *payload = data + at + 8;
        if (vb_crc32(0, payload, rlen) != crc || rlen == 0) {
            /* The last record, or zero bytes to the end: a torn write.
             * A crash can leave the file longer than what reached the
             * disk, the rest read as zeros (the size was journaled by the
             * file system before the data: XFS, some parallel file
             * systems); no record is all zeros (the length is > 0). */
            if (at + 8 + rlen == len || all_zero(data + at, len - at)) {
                cut = true;
                break;
            }
            rc = vb_err_set(err, "%s: record at byte %zu fails its checksum and is not the last "
                            "(the file is damaged)", path, at);
            goto done;
        }
        bool first = at == sizeof magic;
        if (first != (payload[0] == 'H') || (payload[0] != 'H' && payload[0] != 'R')) {
            rc = vb_err_set(err, "%s: record at byte %zu has an unexpected type", path, at);
            goto done;
        }
        if (payload[0] == 'H') {
            json_error_t je;
            header = json_loadb((const char *)payload + 1, rlen - 1, 0, &je);
            if (!header || !json_is_object(header)) {
                rc = vb_err_set(err, "%s: header is not a JSON object", path);
                goto done;
            }
        } else if (r) {
            vb_output_row w;
            int drc = vb_row_decode(payload, rlen, r->top_n, &w);
            if (drc < 0) {
                rc = vb_err_set(err, "%s: row record at byte %zu is malformed", path, at);
                goto done;
            }
            drc = vb_results_put(r, &w, err);
            vb_output_row_free(&w);
            if (drc < 0) {
                rc = vb_err_prefix(err, "%s", path);
                goto done;
            }
        }
        at += 8 + rlen;
    }
done:
    free(data);
    if (rc == 0) {
        if (good_bytes)
            *good_bytes = header ? (int64_t)at : 0;
        if (torn)
            *torn = cut;
        if (settings)
            *settings = header;
        else
            json_decref(header);
    } else {
        json_decref(header);
    }
    return rc;
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
    int fd = open_locked(path, O_WRONLY | O_CREAT, err);
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
    int fd = open_locked(path, O_WRONLY, err);
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
    j->len = 0;
    j->unsynced = true;
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
    if (j->failure[0])
        return vb_err_set(err, "%s", j->failure);
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
    if (now_s() - j->last_flush >= j->flush_interval)
        return vb_journal_flush(j, err);
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

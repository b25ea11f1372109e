/* Append-only, CRC-checked journal of finished rows; see journal.h. */
#include "io/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/crc32.h"
#include "io/run_settings.h"

static const char magic[8] = {'V', 'B', 'J', 'R', 'N', 'L', '0', '1'};

struct vb_journal {
    char *path;
    int fd;
    unsigned char *buf; /* records not yet written */
    size_t len, cap;
    double flush_interval, last_flush;
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

/* ---- byte buffer --------------------------------------------------------- */

typedef struct bytes {
    unsigned char *p;
    size_t len, cap;
    bool oom;
} bytes;

static void put(bytes *b, const void *src, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_u32(bytes *b, uint32_t v) { put(b, &v, 4); }

static void put_str(bytes *b, const char *s)
{
    if (!s) {
        put_u32(b, UINT32_MAX);
        return;
    }
    uint32_t n = (uint32_t)strlen(s);
    put_u32(b, n);
    put(b, s, n);
}

/* Record = u32 length, u32 crc, payload. */
static void put_record(bytes *b, const bytes *payload)
{
    put_u32(b, (uint32_t)payload->len);
    put_u32(b, vb_crc32(0, payload->p, payload->len));
    put(b, payload->p, payload->len);
}

static void encode_row(bytes *b, const vb_output_row *w, int32_t top_n)
{
    uint8_t tag = 'R', fin = (uint8_t)w->finish_reason;
    uint32_t nt = w->n_output_ids > 0 ? (uint32_t)w->n_output_ids : 0;
    put(b, &tag, 1);
    put(b, &w->index, 8);
    put(b, &w->sample, 4);
    put(b, &fin, 1);
    put(b, &w->prompt_tokens, 4);
    put(b, &w->completion_tokens, 4);
    put(b, &w->id_int, 8);
    put_str(b, w->completion);
    put_str(b, w->error);
    put_str(b, w->id);
    put_u32(b, nt);
    if (nt)
        put(b, w->output_ids, nt * 4);
    uint8_t has_lp = top_n >= 0 && w->logprobs;
    put(b, &has_lp, 1);
    if (has_lp)
        put(b, w->logprobs, nt * 4);
    uint32_t ntop = top_n > 0 && w->top_ids && w->top_logprobs ? nt * (uint32_t)top_n : 0;
    put_u32(b, ntop);
    if (ntop) {
        put(b, w->top_ids, (size_t)ntop * 4);
        put(b, w->top_logprobs, (size_t)ntop * 4);
    }
}

/* ---- decoding ------------------------------------------------------------ */

typedef struct reader {
    const unsigned char *p;
    size_t len, at;
    bool bad;
} reader;

static const void *take(reader *r, size_t n)
{
    if (r->bad || n > r->len - r->at) {
        r->bad = true;
        return NULL;
    }
    const void *p = r->p + r->at;
    r->at += n;
    return p;
}

static void get(reader *r, void *dst, size_t n)
{
    const void *p = take(r, n);
    if (p)
        memcpy(dst, p, n);
    else
        memset(dst, 0, n);
}

/* malloc'd copy or NULL (absent); r->bad on a short or odd record. */
static char *get_str(reader *r)
{
    uint32_t n;
    get(r, &n, 4);
    if (r->bad || n == UINT32_MAX)
        return NULL;
    const char *p = take(r, n);
    if (!p)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) {
        r->bad = true;
        return NULL;
    }
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static int decode_row(reader *r, vb_output_row *w)
{
    memset(w, 0, sizeof *w);
    uint8_t fin = 0, has_lp = 0;
    get(r, &w->index, 8);
    get(r, &w->sample, 4);
    get(r, &fin, 1);
    w->finish_reason = (vb_finish_reason)fin;
    get(r, &w->prompt_tokens, 4);
    get(r, &w->completion_tokens, 4);
    get(r, &w->id_int, 8);
    w->completion = get_str(r);
    w->error = get_str(r);
    w->id = get_str(r);
    uint32_t nt = 0, ntop = 0;
    get(r, &nt, 4);
    const void *ids = take(r, (size_t)nt * 4);
    get(r, &has_lp, 1);
    const void *lp = has_lp ? take(r, (size_t)nt * 4) : NULL;
    get(r, &ntop, 4);
    const void *tid = ntop ? take(r, (size_t)ntop * 4) : NULL;
    const void *tlp = ntop ? take(r, (size_t)ntop * 4) : NULL;
    if (r->bad || r->at != r->len)
        return -1;
    /* Point into the record; vb_results_put copies. Alignment: copy out. */
    w->n_output_ids = (int32_t)nt;
    w->output_ids = malloc((size_t)nt * 4 + 4);
    w->logprobs = lp ? malloc((size_t)nt * 4 + 4) : NULL;
    w->top_ids = tid ? malloc((size_t)ntop * 4) : NULL;
    w->top_logprobs = tlp ? malloc((size_t)ntop * 4) : NULL;
    if (!w->output_ids || (lp && !w->logprobs) || (tid && (!w->top_ids || !w->top_logprobs)))
        return -1;
    memcpy(w->output_ids, ids, (size_t)nt * 4);
    if (lp)
        memcpy(w->logprobs, lp, (size_t)nt * 4);
    if (tid) {
        memcpy(w->top_ids, tid, (size_t)ntop * 4);
        memcpy(w->top_logprobs, tlp, (size_t)ntop * 4);
    }
    return 0;
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
            cut = true;
            break;
        }
        const unsigned char *payload = data + at + 8;
        if (vb_crc32(0, payload, rlen) != crc || rlen == 0) {
            if (at + 8 + rlen == len) { /* the last record: a torn write */
                cut = true;
                break;
            }
            rc = vb_err_set(err, "%s: record at byte %zu fails its checksum and is not the last "
                            "(the file is damaged; --overwrite starts over)", path, at);
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
            reader rd = {payload + 1, rlen - 1, 0, false};
            vb_output_row w;
            int drc = decode_row(&rd, &w);
            if (drc < 0) {
                vb_output_row_free(&w);
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

int vb_journal_create(const char *path, const json_t *settings, vb_journal **out, vb_err *err)
{
    *out = NULL;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return vb_err_set(err, "%s: cannot create: %s", path, strerror(errno));
    vb_journal *j = journal_new(path, fd);
    if (!j) {
        close(fd);
        return vb_err_set(err, "%s: out of memory", path);
    }
    char *text = vb_run_settings_dump(settings);
    bytes payload = {0}, rec = {0};
    uint8_t tag = 'H';
    put(&payload, &tag, 1);
    if (text)
        put(&payload, text, strlen(text));
    put(&rec, magic, sizeof magic);
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
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return vb_err_set(err, "%s: cannot open for appending: %s", path, strerror(errno));
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

int vb_journal_append(vb_journal *j, const vb_output_row *row, int32_t top_n, vb_err *err)
{
    bytes payload = {0};
    encode_row(&payload, row, top_n);
    bytes rec = {j->buf, j->len, j->cap, false};
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
    if (j->len > 0 && write_fully(j->fd, j->buf, j->len) < 0)
        return vb_err_set(err, "%s: write failed: %s (disk full?)", j->path, strerror(errno));
    j->len = 0;
    if (fdatasync(j->fd) != 0 && errno != EINVAL)
        return vb_err_set(err, "%s: fdatasync failed: %s", j->path, strerror(errno));
    j->last_flush = now_s();
    return 0;
}

void vb_journal_set_flush_interval(vb_journal *j, double seconds)
{
    j->flush_interval = seconds;
}

int vb_journal_close(vb_journal *j, vb_err *err)
{
    if (!j)
        return 0;
    int rc = vb_journal_flush(j, err);
    if (close(j->fd) != 0 && rc == 0)
        rc = vb_err_set(err, "%s: close failed: %s", j->path, strerror(errno));
    free(j->buf);
    free(j->path);
    free(j);
    return rc;
}

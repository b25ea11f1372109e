/* Journal: round trip, torn last record at every cut point, CRC damage at
 * the end (torn) and in the middle (refused), a damaged length in the
 * middle (refused, also across the reader's pieces), a tail of zeros
 * (torn), the header read alone,
 * append after a torn tail, one open journal at a time (locked),
 * writes at each tick, a burst of rows written a MiB at a time, a journal
 * removed under the run, a row record
 * of another top_n (refused), rows located in the journal (results.h:
 * vb_results_put_at) read back from its buffer, its file and, once it
 * failed (removed under the run), through its open descriptor, rows after
 * the failure held, the output written from them as from held rows, a key
 * put twice (the later wins, counted once), and the CRC-32
 * check value. Reference for CRC-32: the catalogue check value
 * of "123456789", 0xCBF43926 (zlib.crc32 gives the same). */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "io/crc32.h"
#include "io/journal.h"
#include "io/output_writer.h"
#include "io_test_util.h"

static const char *dir;

static void test_crc32_check_value(void)
{
    CHECK_INT_EQ(vb_crc32(0, "123456789", 9), 0xCBF43926u);
    /* Chaining equals one pass. */
    CHECK_INT_EQ(vb_crc32(vb_crc32(0, "1234", 4), "56789", 5), 0xCBF43926u);
}

static json_t *settings(void)
{
    vb_run_settings s = test_settings();
    return vb_run_settings_json(&s);
}

/* Writes rows 0..n-1 (2 samples, top_n 2) to path; returns file size. */
static off_t write_journal(const char *path, int n)
{
    json_t *s = settings();
    vb_journal *j = NULL;
    vb_err err = {{0}};
    CHECK_INT_EQ(vb_journal_create(path, s, &j, &err), 0);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 2; k++) {
            vb_output_row r = test_row(i, k, 2);
            CHECK_INT_EQ(vb_journal_append(j, &r, 2, &err), 0);
        }
    CHECK_INT_EQ(vb_journal_close(j, &err), 0);
    json_decref(s);
    struct stat st;
    stat(path, &st);
    return st.st_size;
}

static void test_round_trip(void)
{
    const char *p = test_path(dir, "rt.journal");
    write_journal(p, 20);
    vb_results r;
    vb_err err = {{0}};
    CHECK_INT_EQ(vb_results_init(&r, 100, 2, 2, VB_ID_STRING, &err), 0);
    json_t *saved = NULL, *now = settings();
    bool torn = true;
    int64_t good = 0;
    CHECK_INT_EQ(vb_journal_read(p, &saved, &r, &good, &torn, &err), 0);
    CHECK(!torn);
    CHECK_INT_EQ(r.n_done, 40);
    CHECK(saved != NULL);
    CHECK_INT_EQ(vb_run_settings_compare(saved, now, p, &err), 0);
    for (int i = 0; i < 20; i++)
        for (int k = 0; k < 2; k++) {
            vb_output_row want = test_row(i, k, 2);
            CHECK(test_rows_equal(r.slot[i * 2 + k], &want, 2));
            CHECK_STR_EQ(r.slot[i * 2 + k]->id, want.id);
        }
    CHECK(!vb_results_row_done(&r, 20));
    CHECK(vb_results_row_done(&r, 19));
    json_decref(saved);
    json_decref(now);
    vb_results_free(&r);
}

/* A row record whose count of top alternatives is not top_n a token (a
 * hand-made record with a valid checksum: the journal written at top_n 2,
 * read as top_n 3) is refused as malformed, not copied past its buffer. */
static void test_top_count_must_match(void)
{
    const char *p = test_path(dir, "top.journal");
    write_journal(p, 3);
    vb_results r;
    vb_err err = {{0}};
    CHECK_INT_EQ(vb_results_init(&r, 100, 2, 3, VB_ID_STRING, &err), 0);
    CHECK(vb_journal_read(p, NULL, &r, NULL, NULL, &err) < 0);
    CHECK(strstr(err.msg, "malformed") != NULL);
    vb_results_free(&r);
}

/* A record whose finish reason is none of the output's enum (stop, length,
 * error), checksum and all: refused as malformed when read, not carried
 * into the output, which unpack and a later --resume would then refuse as
 * inconsistent (the fuzzer, scripts/fuzz-journal, found the decoder taking
 * any byte; helper hR the same by patching a stopped run's journal). */
static void test_finish_reason_must_be_known(void)
{
    const char *p = test_path(dir, "fin.journal");
    json_t *s = settings();
    vb_journal *j = NULL;
    vb_err err = {{0}};
    CHECK_INT_EQ(vb_journal_create(p, s, &j, &err), 0);
    vb_output_row w = test_row(0, 0, 2);
    w.finish_reason = (vb_finish_reason)7;
    CHECK_INT_EQ(vb_journal_append(j, &w, 2, &err), 0);
    CHECK_INT_EQ(vb_journal_close(j, &err), 0);
    json_decref(s);
    vb_results r;
    CHECK_INT_EQ(vb_results_init(&r, 100, 2, 2, VB_ID_STRING, &err), 0);
    CHECK(vb_journal_read(p, NULL, &r, NULL, NULL, &err) < 0);
    CHECK(strstr(err.msg, "malformed") != NULL);
    CHECK_INT_EQ((int)r.n_done, 0);
    vb_results_free(&r);
}

/* Every proper prefix cut inside the last record reads back as n-1 rows. */
static void test_torn_last_record_every_cut(void)
{
    const char *full = test_path(dir, "full.journal");
    const char *one_less = test_path(dir, "less.journal");
    off_t size = write_journal(full, 5);
    /* 5 rows x 2 samples: the last record starts where 9 records end. */
    json_t *s = settings();
    vb_journal *j;
    vb_err err = {{0}};
    vb_journal_create(one_less, s, &j, &err);
    for (int i = 0; i < 5; i++)
        for (int k = 0; k < 2; k++) {
            if (i == 4 && k == 1)
                break;
            vb_output_row r = test_row(i, k, 2);
            vb_journal_append(j, &r, 2, &err);
        }
    vb_journal_close(j, &err);
    json_decref(s);
    struct stat st;
    stat(one_less, &st);
    off_t last_start = st.st_size;
    int bad = 0;
    const char *p = test_path(dir, "cut.journal");
    for (off_t cut = last_start + 1; cut < size; cut++) {
        int in = open(full, O_RDONLY), out = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        char *buf = malloc((size_t)cut);
        if (read(in, buf, (size_t)cut) != cut || write(out, buf, (size_t)cut) != cut)
            bad++;
        close(in);
        close(out);
        free(buf);
        vb_results r;
        vb_results_init(&r, 100, 2, 2, VB_ID_STRING, &err);
        bool torn = false;
        int64_t good = -1;
        if (vb_journal_read(p, NULL, &r, &good, &torn, &err) != 0 || !torn || r.n_done != 9 ||
            good != last_start)
            bad++;
        vb_results_free(&r);
    }
    CHECK_INT_EQ(bad, 0);
}

static void flip_byte(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    unsigned char c;
    CHECK(pread(fd, &c, 1, at) == 1);
    c ^= 0x40;
    CHECK(pwrite(fd, &c, 1, at) == 1);
    close(fd);
}

static void test_crc_damage(void)
{
    vb_err err = {{0}};
    const char *p = test_path(dir, "crc.journal");
    off_t size = write_journal(p, 3);
    /* Damage in the last record's payload: a torn write, ignored. */
    flip_byte(p, size - 3);
    vb_results r;
    vb_results_init(&r, 100, 2, 2, VB_ID_STRING, &err);
    bool torn = false;
    CHECK_INT_EQ(vb_journal_read(p, NULL, &r, NULL, &torn, &err), 0);
    CHECK(torn);
    CHECK_INT_EQ(r.n_done, 5);
    vb_results_free(&r);
    /* Damage in the middle: refused, one line naming the file. */
    write_journal(p, 3);
    flip_byte(p, size / 2);
    vb_results_init(&r, 100, 2, 2, VB_ID_STRING, &err);
    CHECK_INT_EQ(vb_journal_read(p, NULL, &r, NULL, NULL, &err), -1);
    CHECK(strstr(err.msg, "crc.journal") != NULL);
    CHECK(strchr(err.msg, '\n') == NULL);
    fprintf(stderr, "  message: %s\n", err.msg);
    vb_results_free(&r);
    /* Zeros to the end (a crash left the file longer than its data): a
     * torn tail, the records before it kept; but zeros followed by
     * anything else are damage. */
    write_journal(p, 3);
    int zfd = open(p, O_WRONLY | O_APPEND);
    static const unsigned char zeros[100];
    CHECK(write(zfd, zeros, sizeof zeros) == (ssize_t)sizeof zeros);
    close(zfd);
    int64_t good = 0;
    torn = false;
    vb_results_init(&r, 100, 2, 2, VB_ID_STRING, &err);
    CHECK_INT_EQ(vb_journal_read(p, NULL, &r, &good, &torn, &err), 0);
    CHECK(torn);
    CHECK_INT_EQ(good, (int64_t)size);
    CHECK_INT_EQ(r.n_done, 6);
    vb_results_free(&r);
    zfd = open(p, O_WRONLY | O_APPEND);
    CHECK(write(zfd, "x", 1) == 1);
    close(zfd);
    CHECK_INT_EQ(vb_journal_read(p, NULL, NULL, NULL, NULL, &err), -1);
    CHECK(strstr(err.msg, "is not the last") != NULL);
    /* Not a journal at all. */
    int fd = open(p, O_WRONLY | O_TRUNC);
    CHECK(write(fd, "hello world, not a journal", 26) == 26);
    close(fd);
    CHECK_INT_EQ(vb_journal_read(p, NULL, NULL, NULL, NULL, &err), -1);
    CHECK(strstr(err.msg, "not a voltbatch journal") != NULL);
}

/* A record length damaged in the middle of the file so that it points past
 * the end: whole records follow, so it is damage, refused. It was taken
 * for a torn tail, and --resume dropped every row after it and cut the
 * journal there (finished work lost without a word). A torn last record
 * whose length runs past the end is still a torn tail. */
static void test_length_damage(void)
{
    vb_err err = {{0}};
    const char *p = test_path(dir, "len.journal");
    off_t size = write_journal(p, 3);
    /* the header record's length, then the first row record's */
    int fd = open(p, O_RDWR);
    uint32_t hlen = 0, big = 0x7fffffffu;
    CHECK(pread(fd, &hlen, 4, 8) == 4);
    off_t first_row = 8 + 8 + (off_t)hlen;
    CHECK(pwrite(fd, &big, 4, first_row) == 4);
    close(fd);
    vb_results r;
    vb_results_init(&r, 100, 2, 2, VB_ID_STRING, &err);
    CHECK_INT_EQ(vb_journal_read(p, NULL, &r, NULL, NULL, &err), -1);
    CHECK(strstr(err.msg, "len.journal") != NULL);
    CHECK(strstr(err.msg, "whole records follow") != NULL);
    fprintf(stderr, "  message: %s\n", err.msg);
    vb_results_free(&r);
    /* the last record's length past the end: torn, the rows before kept */
    write_journal(p, 3);
    uint32_t rl = 0;
    off_t at = 8, last = 8;
    fd = open(p, O_RDWR);
    while (at < size && pread(fd, &rl, 4, at) == 4) {
        last = at;
        at += 8 + (off_t)rl;
    }
    CHECK(pwrite(fd, &big, 4, last) == 4);
    close(fd);
    bool torn = false;
    vb_results_init(&r, 100, 2, 2, VB_ID_STRING, &err);
    CHECK_INT_EQ(vb_journal_read(p, NULL, &r, NULL, &torn, &err), 0);
    CHECK(torn);
    CHECK_INT_EQ(r.n_done, 5);
    vb_results_free(&r);
}

/* The same damage in a journal of many pieces of the reader's 64 KiB
 * window: the whole records that follow are found across the pieces (the
 * journal is read a record at a time, not whole), the last of them too. */
static void test_length_damage_long_journal(void)
{
    vb_err err = {{0}};
    const char *p = test_path(dir, "lenlong.journal");
    off_t size = write_journal(p, 2000);
    CHECK(size > 4 * 65536);
    int fd = open(p, O_RDWR);
    uint32_t rl = 0, big = 0x7fffffffu;
    off_t at = 8, before_last = 8, last = 8;
    while (at < size && pread(fd, &rl, 4, at) == 4) {
        before_last = last;
        last = at;
        at += 8 + (off_t)rl;
    }
    CHECK(pwrite(fd, &big, 4, before_last) == 4);
    close(fd);
    vb_results r;
    vb_results_init(&r, 2000, 2, 2, VB_ID_STRING, &err);
    CHECK_INT_EQ(vb_journal_read(p, NULL, &r, NULL, NULL, &err), -1);
    CHECK(strstr(err.msg, "whole records follow") != NULL);
    vb_results_free(&r);
}

/* vb_journal_read_header reads the settings and stops: damage after the
 * header is vb_journal_read's to find (--resume reads the rows after
 * comparing the settings), and a torn header is no settings, as there. */
static void test_header_alone(void)
{
    vb_err err = {{0}};
    const char *p = test_path(dir, "hdr.journal");
    write_journal(p, 3);
    uint32_t hlen = 0;
    int fd = open(p, O_RDWR);
    CHECK(pread(fd, &hlen, 4, 8) == 4);
    /* a byte of the first row record's payload: its checksum fails */
    CHECK(pwrite(fd, "\xff", 1, 8 + 8 + (off_t)hlen + 8 + 2) == 1);
    close(fd);
    CHECK_INT_EQ(vb_journal_read(p, NULL, NULL, NULL, NULL, &err), -1);
    json_t *saved = NULL, *now = settings();
    CHECK_INT_EQ(vb_journal_read_header(p, &saved, &err), 0);
    CHECK(saved && json_equal(saved, now));
    json_decref(saved);
    json_decref(now);
    CHECK(truncate(p, 8 + 8 + hlen - 1) == 0);
    json_t *sentinel = json_object();
    saved = sentinel;
    CHECK_INT_EQ(vb_journal_read_header(p, &saved, &err), 0);
    CHECK(saved == NULL);
    json_decref(sentinel);
}

static void test_append_after_torn_tail(void)
{
    vb_err err = {{0}};
    const char *p = test_path(dir, "append.journal");
    off_t size = write_journal(p, 4);
    CHECK(truncate(p, size - 5) == 0);
    int64_t good = 0;
    bool torn = false;
    CHECK_INT_EQ(vb_journal_read(p, NULL, NULL, &good, &torn, &err), 0);
    CHECK(torn);
    vb_journal *j = NULL;
    CHECK_INT_EQ(vb_journal_open_append(p, good, &j, &err), 0);
    vb_output_row r = test_row(3, 1, 2);
    CHECK_INT_EQ(vb_journal_append(j, &r, 2, &err), 0);
    r = test_row(50, 0, 2);
    CHECK_INT_EQ(vb_journal_append(j, &r, 2, &err), 0);
    CHECK_INT_EQ(vb_journal_close(j, &err), 0);
    vb_results res;
    vb_results_init(&res, 100, 2, 2, VB_ID_STRING, &err);
    CHECK_INT_EQ(vb_journal_read(p, NULL, &res, NULL, &torn, &err), 0);
    CHECK(!torn);
    CHECK_INT_EQ(res.n_done, 9);
    CHECK(vb_results_has(&res, 50, 0));
    vb_results_free(&res);
}

/* One run per output: an open journal is locked; a second open (another
 * run's, here another open file description of this process, which
 * flock(2) treats alike) is refused and changes nothing; once closed, the
 * journal opens again. */
static void test_locked_while_open(void)
{
    vb_err err = {{0}};
    const char *p = test_path(dir, "lock.journal");
    off_t size = write_journal(p, 2);
    int64_t good = 0;
    CHECK_INT_EQ(vb_journal_read(p, NULL, NULL, &good, NULL, &err), 0);
    CHECK_INT_EQ(vb_journal_check_unlocked(p, &err), 0);
    vb_journal *first = NULL, *second = NULL;
    CHECK_INT_EQ(vb_journal_open_append(p, good, &first, &err), 0);
    CHECK_INT_EQ(vb_journal_check_unlocked(p, &err), -1);
    CHECK(strstr(err.msg, "lock.journal is locked: another voltbatch run") != NULL);
    err.msg[0] = 0;
    CHECK_INT_EQ(vb_journal_open_append(p, 8, &second, &err), -1);
    CHECK(second == NULL && strstr(err.msg, "is locked") != NULL);
    json_t *s = settings();
    CHECK_INT_EQ(vb_journal_create(p, s, &second, &err), -1);
    CHECK(second == NULL);
    struct stat st;
    CHECK(stat(p, &st) == 0 && st.st_size == size); /* neither cut nor truncated */
    CHECK_INT_EQ(vb_journal_close(first, &err), 0);
    CHECK_INT_EQ(vb_journal_check_unlocked(p, &err), 0);
    CHECK_INT_EQ(vb_journal_create(p, s, &second, &err), 0);
    CHECK_INT_EQ(vb_journal_close(second, &err), 0);
    json_decref(s);
    /* No journal: nothing to lock, nothing refused. */
    CHECK_INT_EQ(vb_journal_check_unlocked(test_path(dir, "none.journal"), &err), 0);
}

/* Rows appended within the flush interval stay buffered; a flush writes
 * them (what a stop signal does). */
static void test_flush_on_demand(void)
{
    vb_err err = {{0}};
    const char *p = test_path(dir, "flush.journal");
    json_t *s = settings();
    vb_journal *j;
    CHECK_INT_EQ(vb_journal_create(p, s, &j, &err), 0);
    vb_journal_set_flush_interval(j, 3600);
    struct stat st0, st1, st2;
    stat(p, &st0);
    vb_output_row r = test_row(1, 0, 2);
    vb_journal_append(j, &r, 2, &err);
    stat(p, &st1);
    CHECK_INT_EQ(st1.st_size, st0.st_size);
    CHECK_INT_EQ(vb_journal_flush(j, &err), 0);
    stat(p, &st2);
    CHECK(st2.st_size > st1.st_size);
    vb_journal_append(j, &r, 2, &err);
    vb_journal_set_flush_interval(j, 0);
    CHECK_INT_EQ(vb_journal_tick(j, &err), 0); /* due: written */
    vb_journal_append(j, &r, 2, &err);
    struct stat st3;
    stat(p, &st3);
    CHECK(st3.st_size > st2.st_size);
    vb_journal_close(j, &err);
    json_decref(s);
}

/* The engine ticks once a step: buffered rows reach the file at that tick
 * even when the sync is not due, so a full disk or a failing device shows
 * within a step, not a flush interval later (issue #23). */
static void test_tick_writes_at_once(void)
{
    vb_err err = {{0}};
    const char *p = test_path(dir, "tick.journal");
    json_t *s = settings();
    vb_journal *j;
    CHECK_INT_EQ(vb_journal_create(p, s, &j, &err), 0);
    vb_journal_set_flush_interval(j, 3600);
    struct stat st0, st1;
    stat(p, &st0);
    vb_output_row r = test_row(2, 0, 2);
    CHECK_INT_EQ(vb_journal_append(j, &r, 2, &err), 0);
    CHECK_INT_EQ(vb_journal_tick(j, &err), 0);
    stat(p, &st1);
    CHECK(st1.st_size > st0.st_size);
    CHECK_INT_EQ(vb_journal_close(j, &err), 0);
    json_decref(s);
}

/* KiB of this process's memory from /proc/self/status (VmRSS: resident
 * now; VmHWM: its peak so far), -1 when unreadable. */
static long status_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0)
            v = atol(line + strlen(key));
    if (f)
        fclose(f);
    return v;
}

/* Rows finished in one burst (80 MB between two ticks) are written as
 * they come, a MiB at a time: they were buffered whole, and the buffer
 * kept the burst's capacity to the end of the run (peak and resident
 * memory 80+ MB above the start; now about 1 MiB). Every row reaches the
 * file. */
static void test_write_buffer_bounded(void)
{
    vb_err err = {{0}};
    const char *p = test_path(dir, "burst.journal");
    json_t *s = settings();
    vb_journal *j;
    CHECK_INT_EQ(vb_journal_create(p, s, &j, &err), 0);
    vb_journal_set_flush_interval(j, 3600);
    static char big[4001];
    memset(big, 'a', sizeof big - 1);
    enum { ROWS = 20000 };
    long rss0 = status_kib("VmRSS:"), hwm0 = status_kib("VmHWM:");
    for (int i = 0; i < ROWS; i++) {
        vb_output_row r = test_row(i, 0, 2);
        r.completion = big;
        CHECK_INT_EQ(vb_journal_append(j, &r, 2, &err), 0);
    }
    CHECK_INT_EQ(vb_journal_tick(j, &err), 0);
    long rss1 = status_kib("VmRSS:"), hwm1 = status_kib("VmHWM:");
    fprintf(stderr, "  VmRSS %ld -> %ld KiB, VmHWM %ld -> %ld KiB\n", rss0, rss1, hwm0, hwm1);
    CHECK(rss0 > 0 && rss1 - rss0 < 16384);
    CHECK(hwm0 > 0 && hwm1 - hwm0 < 16384);
    CHECK_INT_EQ(vb_journal_close(j, &err), 0);
    json_decref(s);
    vb_results r;
    int64_t good = 0;
    struct stat st;
    vb_results_init(&r, ROWS, 1, 2, VB_ID_STRING, &err);
    CHECK_INT_EQ(vb_journal_read(p, NULL, &r, &good, NULL, &err), 0);
    CHECK_INT_EQ(r.n_done, ROWS);
    CHECK(stat(p, &st) == 0 && good == (int64_t)st.st_size);
    vb_results_free(&r);
    unlink(p);
}

/* A journal removed under the run (rm, its directory deleted) takes writes
 * that no --resume would find: the next tick fails naming it, and the
 * failure stays (every later call returns it, nothing more is buffered). */
static void test_removed_under_the_run(void)
{
    vb_err err = {{0}};
    const char *p = test_path(dir, "removed.journal");
    json_t *s = settings();
    vb_journal *j;
    CHECK_INT_EQ(vb_journal_create(p, s, &j, &err), 0);
    vb_journal_set_flush_interval(j, 3600);
    CHECK(vb_journal_failure(j) == NULL);
    CHECK_INT_EQ(unlink(p), 0);
    vb_output_row r = test_row(3, 0, 2);
    CHECK_INT_EQ(vb_journal_append(j, &r, 2, &err), 0); /* buffered */
    CHECK_INT_EQ(vb_journal_tick(j, &err), -1);
    CHECK(strstr(err.msg, p) != NULL);
    CHECK(strstr(err.msg, "removed") != NULL);
    CHECK(vb_journal_failure(j) != NULL);
    memset(&err, 0, sizeof err);
    CHECK_INT_EQ(vb_journal_append(j, &r, 2, &err), -1);
    CHECK(strstr(err.msg, "removed") != NULL);
    CHECK_INT_EQ(vb_journal_flush(j, &err), -1);
    CHECK_INT_EQ(vb_journal_close(j, &err), -1);
    json_decref(s);
}

/* Every located row of r reads back as test_row made it. */
static int located_rows_equal(const vb_results *r, int n, int samples)
{
    int bad = 0;
    vb_err err = {{0}};
    for (int i = 0; i < n; i++)
        for (int k = 0; k < samples; k++) {
            vb_output_row buf, want = test_row(i, k, 2);
            const vb_output_row *got = NULL;
            bool owned = false;
            if (vb_results_get(r, (size_t)(i * samples + k), &buf, &got, &owned, &err) < 0) {
                fprintf(stderr, "  row %d/%d: %s\n", i, k, err.msg);
                bad++;
                continue;
            }
            bad += !test_rows_equal(got, &want, 2) || strcmp(got->id, want.id) != 0;
            if (owned)
                vb_output_row_free(&buf);
        }
    return bad;
}

static void test_rows_located(void)
{
    vb_err err = {{0}};
    const char *p = test_path(dir, "located.journal");
    json_t *s = settings();
    vb_journal *j;
    vb_results r, held;
    CHECK_INT_EQ(vb_journal_create(p, s, &j, &err), 0);
    vb_journal_set_flush_interval(j, 3600);
    CHECK_INT_EQ(vb_results_init(&r, 30, 2, 2, VB_ID_STRING, &err), 0);
    CHECK_INT_EQ(vb_results_init(&held, 30, 2, 2, VB_ID_STRING, &err), 0);
    r.store = vb_journal_store(j);
    for (int i = 0; i < 20; i++)
        for (int k = 0; k < 2; k++) {
            vb_output_row w = test_row(i, k, 2);
            int64_t at = -1;
            CHECK_INT_EQ(vb_journal_append_at(j, &w, 2, &at, &err), 0);
            CHECK(at > 0);
            CHECK_INT_EQ(vb_results_put_at(&r, &w, at, &err), 0);
            CHECK_INT_EQ(vb_results_put(&held, &w, &err), 0);
        }
    CHECK(r.slot == NULL); /* nothing held */
    CHECK_INT_EQ(r.n_done, 40);
    CHECK_INT_EQ(located_rows_equal(&r, 20, 2), 0); /* from the buffer */
    CHECK_INT_EQ(vb_journal_flush(j, &err), 0);
    CHECK_INT_EQ(located_rows_equal(&r, 20, 2), 0); /* from the file */
    /* A key put twice: the later record is the row, counted once. */
    vb_output_row again = test_row(4, 1, 2);
    int64_t at = -1;
    uint64_t bytes = r.out_bytes;
    CHECK_INT_EQ(vb_journal_append_at(j, &again, 2, &at, &err), 0);
    CHECK_INT_EQ(vb_results_put_at(&r, &again, at, &err), 0);
    CHECK_INT_EQ(r.n_done, 40);
    CHECK(r.out_bytes == bytes);
    CHECK_INT_EQ(r.loc[4 * 2 + 1].at, at);
    CHECK_INT_EQ(r.out_bytes, held.out_bytes);
    /* The journal removed: the next write fails (it finds no name left);
     * the rows it wrote still read back through its descriptor, and a row
     * after the failure is held. */
    CHECK_INT_EQ(unlink(p), 0);
    for (int i = 20; i < 25; i++) {
        vb_output_row w = test_row(i, 0, 2);
        CHECK_INT_EQ(vb_journal_append_at(j, &w, 2, &at, &err), 0);
        CHECK_INT_EQ(vb_results_put_at(&r, &w, at, &err), 0);
        CHECK_INT_EQ(vb_results_put(&held, &w, &err), 0);
    }
    CHECK_INT_EQ(vb_journal_tick(j, &err), -1);
    CHECK(vb_journal_failure(j) != NULL);
    vb_output_row late = test_row(25, 0, 2);
    CHECK_INT_EQ(vb_journal_append_at(j, &late, 2, &at, &err), -1);
    CHECK_INT_EQ(at, -1);
    CHECK_INT_EQ(vb_results_put(&r, &late, &err), 0);
    CHECK_INT_EQ(vb_results_put(&held, &late, &err), 0);
    CHECK_INT_EQ(located_rows_equal(&r, 20, 2), 0);
    int bad = 0;
    for (int i = 20; i < 26; i++) {
        vb_output_row buf, want = test_row(i, 0, 2);
        const vb_output_row *got = NULL;
        bool owned = false;
        if (vb_results_get(&r, (size_t)(i * 2), &buf, &got, &owned, &err) < 0) {
            bad++;
            continue;
        }
        bad += !test_rows_equal(got, &want, 2);
        CHECK(owned == (i < 25)); /* the last one is held */
        if (owned)
            vb_output_row_free(&buf);
    }
    CHECK_INT_EQ(bad, 0);
    /* The output written from the journal holds what the held rows' does. */
    const char *o1 = test_path(dir, "located.h5"), *o2 = test_path(dir, "held.h5");
    vb_output_meta meta = {.settings = s, .dp = 1, .version = "t"};
    CHECK_INT_EQ(vb_output_write(o1, &meta, &r, &err), 0);
    CHECK_INT_EQ(vb_output_write(o2, &meta, &held, &err), 0);
    vb_results b1 = {0}, b2 = {0};
    CHECK_INT_EQ(vb_output_read(o1, &b1, NULL, &err), 0);
    CHECK_INT_EQ(vb_output_read(o2, &b2, NULL, &err), 0);
    CHECK_INT_EQ(b1.n_done, 46);
    CHECK_INT_EQ(b2.n_done, 46);
    int differ = 0;
    for (size_t i = 0; i < 60 && b1.slot && b2.slot; i++)
        differ += !b1.slot[i] != !b2.slot[i] ||
                  (b1.slot[i] && !test_rows_equal(b1.slot[i], b2.slot[i], 2));
    CHECK_INT_EQ(differ, 0);
    vb_results_free(&b1);
    vb_results_free(&b2);
    CHECK_INT_EQ(vb_journal_close(j, NULL), -1);
    vb_results_free(&r);
    vb_results_free(&held);
    json_decref(s);
}

int main(void)
{
    dir = test_tmpdir();
    RUN_TEST(test_crc32_check_value);
    RUN_TEST(test_round_trip);
    RUN_TEST(test_top_count_must_match);
    RUN_TEST(test_finish_reason_must_be_known);
    RUN_TEST(test_torn_last_record_every_cut);
    RUN_TEST(test_crc_damage);
    RUN_TEST(test_length_damage);
    RUN_TEST(test_length_damage_long_journal);
    RUN_TEST(test_header_alone);
    RUN_TEST(test_append_after_torn_tail);
    RUN_TEST(test_locked_while_open);
    RUN_TEST(test_flush_on_demand);
    RUN_TEST(test_tick_writes_at_once);
    RUN_TEST(test_write_buffer_bounded);
    RUN_TEST(test_removed_under_the_run);
    RUN_TEST(test_rows_located);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_summary();
}

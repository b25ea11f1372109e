/* libFuzzer target for the journal reader (--resume reads OUT.journal, a
 * file a killed or crashed run, a full disk or a damaged file system may
 * have left in any state) and the row codec it shares with the rows ranks
 * send rank 0.
 *
 * Input: byte 0 picks the run's rows (1-64), byte 1 its samples (1-4) and
 * top_n (-1..5), byte 2 bit 0 whether the records' checksums are made
 * right (so the decoder is reached, not only the checksum test) or taken
 * from the input; then records, each a u16 length, (without made
 * checksums) a u32 checksum, and that many payload bytes (fewer at the
 * end: a torn record). The journal file is the magic and those records.
 *
 * Checked besides ASan/UBSan/leaks: a row the decoder accepts encodes to
 * bytes that decode again to the same encoding (what the decoder takes is
 * a row the writer could have written), and a journal the reader accepts
 * yields only rows inside the run's shape, with a finish reason the
 * output's enum has (another value made an output voltbatch could not
 * read back).
 *
 * Built and run by scripts/fuzz-journal; seeds in tests/io/fuzz_journal_corpus
 * (tests/io/make_journal_fuzz_seeds.py). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/crc32.h"
#include "io/journal.h"
#include "io/row_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char magic[8] = {'V', 'B', 'J', 'R', 'N', 'L', '0', '1'};

/* decode -> encode -> decode -> encode: the two encodings are the same */
static void check_roundtrip(const uint8_t *p, size_t n, int32_t top_n)
{
    vb_output_row w;
    if (vb_row_decode(p, n, top_n, &w) != 0)
        return;
    vb_bytes a = {0}, b = {0};
    vb_row_encode(&a, &w, top_n);
    vb_output_row w2;
    if (a.oom || vb_row_decode(a.p, a.len, top_n, &w2) != 0) {
        fprintf(stderr, "a decoded row's own encoding does not decode\n");
        abort();
    }
    vb_row_encode(&b, &w2, top_n);
    if (b.oom || b.len != a.len || memcmp(a.p, b.p, a.len) != 0) {
        fprintf(stderr, "a decoded row encodes differently the second time\n");
        abort();
    }
    vb_output_row_free(&w);
    vb_output_row_free(&w2);
    free(a.p);
    free(b.p);
}

/* the journal image: magic, then the input's records */
static vb_bytes journal_image(const uint8_t *data, size_t size, int make_crc, int32_t top_n)
{
    vb_bytes j = {0};
    vb_bytes_put(&j, magic, sizeof magic);
    size_t at = 0;
    while (at + 2 <= size) {
        uint16_t len16;
        memcpy(&len16, data + at, 2);
        at += 2;
        uint32_t crc = 0;
        if (!make_crc) {
            if (at + 4 > size)
                break;
            memcpy(&crc, data + at, 4);
            at += 4;
        }
        size_t n = len16 < size - at ? len16 : size - at;
        if (make_crc)
            crc = vb_crc32(0, data + at, n);
        uint32_t len = len16; /* the record's own length, even where torn */
        vb_bytes_put(&j, &len, 4);
        vb_bytes_put(&j, &crc, 4);
        vb_bytes_put(&j, data + at, n);
        check_roundtrip(data + at, n, top_n);
        at += n;
    }
    return j;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    const int64_t n_rows = 1 + data[0] % 64;
    const int32_t n_samples = 1 + (data[1] & 3);
    const int32_t top_n = (int32_t)((data[1] >> 2) % 7) - 1;
    vb_bytes img = journal_image(data + 3, size - 3, data[2] & 1, top_n);
    if (img.oom)
        abort();

    char path[64];
    snprintf(path, sizeof path, "/tmp/fuzz-journal.%d", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(img.p, 1, img.len, f) != img.len || fclose(f) != 0)
        abort();
    free(img.p);

    vb_results r;
    vb_err err;
    if (vb_results_init(&r, n_rows, n_samples, top_n, VB_ID_NONE, &err) != 0)
        abort();
    json_t *settings = NULL;
    int64_t good = 0;
    bool torn = false;
    if (vb_journal_read(path, &settings, &r, &good, &torn, &err) == 0) {
        if (good < 0 || (size_t)good > 8 + size * 3)
            abort();
        /* vb_journal_read holds its rows (slot[] exists once one is put) */
        if (!r.slot && r.n_done != 0)
            abort();
        for (int64_t i = 0; r.slot && i < r.n_rows * r.n_samples; i++) {
            const vb_output_row *w = r.slot[i];
            if (w && (w->index != i / r.n_samples || w->sample != i % r.n_samples ||
                      w->n_output_ids < 0 || w->finish_reason > VB_FINISH_ERROR))
                abort();
        }
    }
    json_decref(settings);
    vb_results_free(&r);
    unlink(path);
    return 0;
}

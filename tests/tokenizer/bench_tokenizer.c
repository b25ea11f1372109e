/* Encoding speed of our tokenizer, for scripts/bench-tokenizer (built by
 * meson, never run as a test: speed is not asserted anywhere in the suite).
 *
 *   bench_tokenizer MODEL_DIR TEXTS.jsonl RUNS [IDS_OUT]
 *
 * TEXTS.jsonl holds one JSON string per line. Loading the tokenizer and
 * reading the texts are not timed; one untimed warm-up pass, then RUNS timed
 * passes that encode every string with add_special=true (as HF
 * encode(add_special_tokens=True)), each into a fresh id array as a real row
 * gets. Prints one JSON object: bytes, strings, tokens and the seconds
 * (wall and thread CPU) of each timed pass. IDS_OUT, when given, receives
 * the ids, one line of space-separated ids per string, for the script to
 * compare with HF's. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokenizer/tokenizer.h"

typedef struct text {
    char *s;
    size_t len;
} text;

static double now(clockid_t clk)
{
    struct timespec t;
    clock_gettime(clk, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static text *read_texts(const char *path, size_t *n, size_t *bytes)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return NULL;
    }
    size_t cap = 1024;
    text *t = malloc(cap * sizeof *t);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    *n = *bytes = 0;
    while (t && (len = getline(&line, &lcap, f)) > 0) {
        json_error_t je;
        json_t *j = json_loadb(line, (size_t)len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!j || !json_is_string(j)) {
            fprintf(stderr, "%s: line %zu: not a JSON string (%s)\n", path, *n + 1, j ? "" : je.text);
            exit(1);
        }
        if (*n == cap) {
            text *p = realloc(t, (cap *= 2) * sizeof *t);
            if (!p)
                exit(1);
            t = p;
        }
        size_t sl = json_string_length(j);
        t[*n].s = malloc(sl + 1);
        if (!t[*n].s)
            exit(1);
        memcpy(t[*n].s, json_string_value(j), sl + 1);
        t[*n].len = sl;
        *bytes += sl;
        (*n)++;
        json_decref(j);
    }
    free(line);
    fclose(f);
    return t;
}

/* One pass over all texts; returns the number of ids, or -1 on an error. */
static long encode_all(const tokenizer *tok, const text *t, size_t n, FILE *ids_out)
{
    long total = 0;
    for (size_t i = 0; i < n; i++) {
        tok_ids v = {0};
        vb_err err = {{0}};
        if (tokenizer_encode(tok, t[i].s, t[i].len, true, &v, &err) < 0) {
            fprintf(stderr, "text %zu: %s\n", i + 1, err.msg);
            return -1;
        }
        total += (long)v.n;
        if (ids_out) {
            for (size_t k = 0; k < v.n; k++)
                fprintf(ids_out, k ? " %d" : "%d", v.ids[k]);
            fputc('\n', ids_out);
        }
        free(v.ids);
    }
    return total;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_tokenizer MODEL_DIR TEXTS.jsonl RUNS [IDS_OUT]\n");
        return 2;
    }
    int runs = atoi(argv[3]);
    if (runs < 1) {
        fprintf(stderr, "bench_tokenizer: RUNS must be at least 1, got '%s'\n", argv[3]);
        return 2;
    }
    vb_err err = {{0}};
    tokenizer *tok = tokenizer_load(argv[1], &err);
    if (!tok) {
        fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
        return 1;
    }
    size_t n, bytes;
    text *t = read_texts(argv[2], &n, &bytes);
    if (!t)
        return 1;
    FILE *ids_out = NULL;
    if (argc > 4 && !(ids_out = fopen(argv[4], "w"))) {
        perror(argv[4]);
        return 1;
    }
    long tokens = encode_all(tok, t, n, ids_out); /* warm-up (and the ids) */
    if (ids_out && fclose(ids_out) != 0) {
        perror(argv[4]);
        return 1;
    }
    if (tokens < 0)
        return 1;
    printf("{\"bytes\": %zu, \"strings\": %zu, \"tokens\": %ld, \"wall_s\": [", bytes, n, tokens);
    double *cpu = malloc((size_t)runs * sizeof *cpu);
    for (int r = 0; r < runs; r++) {
        double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_THREAD_CPUTIME_ID);
        long got = encode_all(tok, t, n, NULL);
        double w1 = now(CLOCK_MONOTONIC), c1 = now(CLOCK_THREAD_CPUTIME_ID);
        if (got != tokens) {
            fprintf(stderr, "bench_tokenizer: run %d gave %ld ids, the warm-up %ld\n", r + 1, got, tokens);
            return 1;
        }
        cpu[r] = c1 - c0;
        printf(r ? ", %.6f" : "%.6f", w1 - w0);
    }
    printf("], \"cpu_s\": [");
    for (int r = 0; r < runs; r++)
        printf(r ? ", %.6f" : "%.6f", cpu[r]);
    printf("]}\n");
    free(cpu);
    for (size_t i = 0; i < n; i++)
        free(t[i].s);
    free(t);
    tokenizer_free(tok);
    return 0;
}

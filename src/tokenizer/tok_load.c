/* Loading tokenizer.json (+ tokenizer_config.json, generation_config.json)
 * into the tables encode and decode use (tok_internal.h).
 *
 * Byte-level vocabularies are stored as raw bytes (the GPT-2 byte<->char map
 * undone at load), so encoding never builds mapped strings and decoding is a
 * table lookup. Every part of the file we do not implement is an error that
 * names it, never a silent difference in ids. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

#define GPT2_SPLIT "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

/* GPT-2's map from code points back to bytes: printable Latin-1 bytes map to
 * themselves, the rest to U+0100.. in byte order. */
static void byte_level_decoder(int16_t *cp_to_byte /* [324] */)
{
    for (int i = 0; i < 324; i++)
        cp_to_byte[i] = -1;
    int n = 0;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        if (printable)
            cp_to_byte[b] = (int16_t)b;
        else
            cp_to_byte[256 + n++] = (int16_t)b;
    }
}

/* Byte-level piece (UTF-8 of mapped chars) -> raw bytes into out; returns
 * the length, or -1 when a char is outside the map. */
static long unmap_byte_level(const int16_t *cp_to_byte, const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp;
        if (c < 0x80) { cp = c; i += 1; }
        else if ((c & 0xE0) == 0xC0 && i + 1 < n) { cp = (c & 0x1Fu) << 6 | (s[i + 1] & 0x3F); i += 2; }
        else return -1;
        if (cp >= 324 || cp_to_byte[cp] < 0)
            return -1;
        out[o++] = (char)cp_to_byte[cp];
    }
    return (long)o;
}

static char *dup_bytes(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

static const char *json_type_name(const json_t *j)
{
    const json_t *t = json_object_get(j, "type");
    return json_is_string(t) ? json_string_value(t) : "(no type)";
}

static int load_normalizer(tokenizer *tok, const json_t *j, const char *file, vb_err *err)
{
    if (!j || json_is_null(j))
        return 0;
    const char *type = json_type_name(j);
    if (strcmp(type, "Sequence") == 0) {
        const json_t *arr = json_object_get(j, "normalizers");
        size_t i;
        const json_t *v;
        json_array_foreach(arr, i, v) {
            if (load_normalizer(tok, v, file, err) < 0)
                return -1;
        }
        return 0;
    }
    tok_norm nm = {0};
    if (strcmp(type, "NFC") == 0) {
        nm.kind = NORM_NFC;
    } else if (strcmp(type, "Prepend") == 0) {
        nm.kind = NORM_PREPEND;
        nm.a = strdup(json_string_value(json_object_get(j, "prepend")) ? json_string_value(json_object_get(j, "prepend")) : "");
    } else if (strcmp(type, "Replace") == 0) {
        const json_t *pat = json_object_get(json_object_get(j, "pattern"), "String");
        const json_t *content = json_object_get(j, "content");
        if (!json_is_string(pat) || !json_is_string(content) || json_string_length(pat) == 0)
            return vb_err_set(err, "%s: normalizer Replace with a regex pattern is not supported (String patterns only)", file);
        nm.kind = NORM_REPLACE;
        nm.a = strdup(json_string_value(pat));
        nm.b = strdup(json_string_value(content));
    } else {
        return vb_err_set(err, "%s: normalizer '%s' is not supported (NFC, Prepend, Replace, Sequence are)", file, type);
    }
    tok_norm *p = realloc(tok->norm, (tok->n_norm + 1) * sizeof *p);
    if (!p)
        return vb_err_set(err, "%s: out of memory", file);
    tok->norm = p;
    tok->norm[tok->n_norm++] = nm;
    return 0;
}

static int compile_split(tokenizer *tok, const char *pattern, const char *file, vb_err *err)
{
    if (tok->split_re)
        return vb_err_set(err, "%s: pre_tokenizer with two split regexes is not supported", file);
    int code;
    PCRE2_SIZE off;
    tok->split_re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                                  &code, &off, NULL);
    if (!tok->split_re) {
        PCRE2_UCHAR msg[128];
        pcre2_get_error_message(code, msg, sizeof msg);
        return vb_err_set(err, "%s: pre_tokenizer regex does not compile at offset %zu: %s", file,
                          (size_t)off, (char *)msg);
    }
    pcre2_jit_compile(tok->split_re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    return 0;
}

static int load_pre_tokenizer(tokenizer *tok, const json_t *j, const char *file, vb_err *err)
{
    if (!j || json_is_null(j))
        return 0;
    const char *type = json_type_name(j);
    if (strcmp(type, "Sequence") == 0) {
        size_t i;
        const json_t *v;
        json_array_foreach(json_object_get(j, "pretokenizers"), i, v) {
            if (load_pre_tokenizer(tok, v, file, err) < 0)
                return -1;
        }
        return 0;
    }
    if (strcmp(type, "ByteLevel") == 0) {
        tok->byte_level = true;
        tok->add_prefix_space = json_is_true(json_object_get(j, "add_prefix_space"));
        const json_t *ur = json_object_get(j, "use_regex");
        if (!ur || json_is_true(ur))
            return compile_split(tok, GPT2_SPLIT, file, err);
        return 0;
    }
    if (strcmp(type, "Split") == 0) {
        const json_t *pat = json_object_get(j, "pattern");
        const char *beh = json_string_value(json_object_get(j, "behavior"));
        if (!beh || strcmp(beh, "Isolated") != 0 || json_is_true(json_object_get(j, "invert")))
            return vb_err_set(err, "%s: pre_tokenizer Split with behavior '%s'%s is not supported (Isolated only)",
                              file, beh ? beh : "?", json_is_true(json_object_get(j, "invert")) ? " and invert" : "");
        const json_t *re = json_object_get(pat, "Regex");
        if (json_is_string(re))
            return compile_split(tok, json_string_value(re), file, err);
        const json_t *str = json_object_get(pat, "String");
        if (json_is_string(str)) {
            char buf[512];
            snprintf(buf, sizeof buf, "\\Q%s\\E", json_string_value(str));
            return compile_split(tok, buf, file, err);
        }
        return vb_err_set(err, "%s: pre_tokenizer Split has no pattern", file);
    }
    if (strcmp(type, "Metaspace") == 0) {
        tok->metaspace = true;
        const char *r = json_string_value(json_object_get(j, "replacement"));
        tok->ms_repl = strdup(r ? r : "\xE2\x96\x81");
        const char *scheme = json_string_value(json_object_get(j, "prepend_scheme"));
        const json_t *aps = json_object_get(j, "add_prefix_space");
        tok->ms_prepend = scheme ? (strcmp(scheme, "never") == 0 ? 0 : strcmp(scheme, "first") == 0 ? 1 : 2)
                                 : (aps && !json_is_true(aps) ? 0 : 2);
        const json_t *sp = json_object_get(j, "split");
        tok->ms_split = !sp || json_is_true(sp);
        return 0;
    }
    return vb_err_set(err, "%s: pre_tokenizer '%s' is not supported (ByteLevel, Split, Metaspace, Sequence are)",
                      file, type);
}

static int load_post_processor(tokenizer *tok, const json_t *j, const char *file, vb_err *err)
{
    if (!j || json_is_null(j))
        return 0;
    const char *type = json_type_name(j);
    if (strcmp(type, "Sequence") == 0) {
        size_t i;
        const json_t *v;
        json_array_foreach(json_object_get(j, "processors"), i, v) {
            if (load_post_processor(tok, v, file, err) < 0)
                return -1;
        }
        return 0;
    }
    if (strcmp(type, "ByteLevel") == 0)
        return 0; /* only moves offsets */
    if (strcmp(type, "TemplateProcessing") != 0)
        return vb_err_set(err, "%s: post_processor '%s' is not supported (TemplateProcessing, ByteLevel are)", file, type);
    const json_t *specials = json_object_get(j, "special_tokens");
    bool seen_seq = false;
    size_t i;
    const json_t *item;
    json_array_foreach(json_object_get(j, "single"), i, item) {
        if (json_object_get(item, "Sequence")) {
            seen_seq = true;
            continue;
        }
        const char *name = json_string_value(json_object_get(json_object_get(item, "SpecialToken"), "id"));
        const json_t *ids = json_object_get(json_object_get(specials, name ? name : ""), "ids");
        size_t k;
        const json_t *idv;
        json_array_foreach(ids, k, idv) {
            int32_t *dst = seen_seq ? tok->post_suffix : tok->post_prefix;
            size_t *n = seen_seq ? &tok->n_post_suffix : &tok->n_post_prefix;
            if (*n >= 4)
                return vb_err_set(err, "%s: post_processor adds more than 4 tokens", file);
            dst[(*n)++] = (int32_t)json_integer_value(idv);
        }
    }
    return 0;
}

static int load_decoder(tokenizer *tok, const json_t *j, const char *file, vb_err *err)
{
    if (!j || json_is_null(j)) {
        tok->dec_kind = tok->byte_level ? DEC_BYTE_LEVEL : DEC_SENTENCEPIECE;
        return 0;
    }
    const char *type = json_type_name(j);
    if (strcmp(type, "ByteLevel") == 0) {
        tok->dec_kind = DEC_BYTE_LEVEL;
        return 0;
    }
    if (strcmp(type, "Metaspace") == 0) {
        tok->dec_kind = DEC_SENTENCEPIECE;
        const char *scheme = json_string_value(json_object_get(j, "prepend_scheme"));
        tok->sp_strip_start = scheme && strcmp(scheme, "never") == 0 ? 0 : 1;
        return 0;
    }
    if (strcmp(type, "Sequence") == 0) {
        tok->dec_kind = DEC_SENTENCEPIECE;
        size_t i;
        const json_t *v;
        json_array_foreach(json_object_get(j, "decoders"), i, v) {
            const char *t = json_type_name(v);
            if (strcmp(t, "Strip") == 0)
                tok->sp_strip_start = (int)json_integer_value(json_object_get(v, "start"));
            else if (strcmp(t, "Replace") == 0 || strcmp(t, "ByteFallback") == 0 || strcmp(t, "Fuse") == 0)
                continue; /* what DEC_SENTENCEPIECE does */
            else if (strcmp(t, "ByteLevel") == 0)
                tok->dec_kind = DEC_BYTE_LEVEL;
            else
                return vb_err_set(err, "%s: decoder '%s' is not supported", file, t);
        }
        return 0;
    }
    return vb_err_set(err, "%s: decoder '%s' is not supported (ByteLevel, Metaspace, SentencePiece Sequence are)",
                      file, type);
}

static int parse_byte_piece(const char *s, size_t n)
{
    /* "<0xNN>" */
    if (n != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>')
        return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        v = v * 16 + (c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1000);
    }
    return v >= 0 ? v : -1;
}

static int load_vocab(tokenizer *tok, const json_t *model, const json_t *added, const char *file, vb_err *err)
{
    const json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab))
        return vb_err_set(err, "%s: model.vocab is missing or not an object", file);
    int32_t max_id = -1;
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)vocab, key, v) {
        if (json_integer_value(v) > max_id)
            max_id = (int32_t)json_integer_value(v);
    }
    size_t i;
    json_array_foreach(added, i, v) {
        if (json_integer_value(json_object_get(v, "id")) > max_id)
            max_id = (int32_t)json_integer_value(json_object_get(v, "id"));
    }
    tok->n_vocab = max_id + 1;
    size_t nv = (size_t)tok->n_vocab;
    tok->piece = calloc(nv, sizeof *tok->piece);
    tok->piece_len = calloc(nv, sizeof *tok->piece_len);
    tok->dec = calloc(nv, sizeof *tok->dec);
    tok->dec_len = calloc(nv, sizeof *tok->dec_len);
    tok->flags = calloc(nv, 1);
    if (!tok->piece || !tok->piece_len || !tok->dec || !tok->dec_len || !tok->flags ||
        tok_str_map_init(&tok->vocab, json_object_size(vocab) + json_array_size(added)) < 0)
        return vb_err_set(err, "%s: out of memory for %zu tokens", file, nv);

    int16_t cp_to_byte[324];
    byte_level_decoder(cp_to_byte);
    const char *repl = tok->ms_repl ? tok->ms_repl : "\xE2\x96\x81";
    size_t repl_len = strlen(repl);
    json_object_foreach((json_t *)vocab, key, v) {
        int32_t id = (int32_t)json_integer_value(v);
        size_t klen = strlen(key);
        char *p = malloc(klen + 1);
        if (!p)
            return vb_err_set(err, "%s: out of memory", file);
        long n = (long)klen;
        if (tok->byte_level) {
            n = unmap_byte_level(cp_to_byte, key, klen, p);
            if (n < 0)
                return vb_err_set(err, "%s: vocab entry '%s' (id %d) is not byte-level text", file, key, id);
        } else {
            memcpy(p, key, klen);
        }
        p[n] = 0;
        tok->piece[id] = p;
        tok->piece_len[id] = (uint32_t)n;
        if (tok_str_map_put(&tok->vocab, p, (uint32_t)n, id) < 0)
            return vb_err_set(err, "%s: vocabulary table full", file);
        if (tok->byte_level) {
            tok->dec[id] = p;
            tok->dec_len[id] = (uint32_t)n;
        } else {
            int b = parse_byte_piece(p, (size_t)n);
            if (b >= 0) {
                tok->flags[id] |= TOKF_BYTE;
                tok->dec[id] = dup_bytes((const char *)&(char){(char)b}, 1);
                tok->dec_len[id] = 1;
                continue;
            }
            /* The SentencePiece decoder turns the meta-space back into ' '. */
            char *d = malloc(klen + 1);
            size_t o = 0;
            for (size_t k = 0; k < klen;) {
                if (k + repl_len <= klen && memcmp(key + k, repl, repl_len) == 0) {
                    d[o++] = ' ';
                    k += repl_len;
                } else {
                    d[o++] = key[k++];
                }
            }
            d[o] = 0;
            tok->dec[id] = d;
            tok->dec_len[id] = (uint32_t)o;
        }
    }
    return 0;
}

/* Indexes the added tokens whose normalized flag is `normalized` by the
 * first byte of their match text, longest first: a scan takes the first
 * that fits, which is the longest, as HF's leftmost-longest matcher does. A
 * token whose match normalised to nothing is never found (nor is it in HF). */
static int index_added(tokenizer *tok, bool normalized, uint32_t **by_byte, uint32_t *n_by_byte)
{
    for (int b = 0; b < 256; b++) {
        uint32_t n = 0;
        for (size_t k = 0; k < tok->n_added; k++)
            n += tok->added[k].normalized == normalized && tok->added[k].match_len &&
                 (unsigned char)tok->added[k].match[0] == b;
        if (!n)
            continue;
        by_byte[b] = malloc(n * sizeof(uint32_t));
        if (!by_byte[b])
            return -1;
        for (size_t k = 0; k < tok->n_added; k++)
            if (tok->added[k].normalized == normalized && tok->added[k].match_len &&
                (unsigned char)tok->added[k].match[0] == b)
                by_byte[b][n_by_byte[b]++] = (uint32_t)k;
        uint32_t *ix = by_byte[b];
        for (uint32_t x = 1; x < n; x++)
            for (uint32_t y = x; y > 0 && tok->added[ix[y]].match_len > tok->added[ix[y - 1]].match_len; y--) {
                uint32_t t = ix[y];
                ix[y] = ix[y - 1];
                ix[y - 1] = t;
            }
    }
    return 0;
}

static int load_added(tokenizer *tok, const json_t *added, const char *file, vb_err *err)
{
    tok->n_added = json_array_size(added);
    tok->added = calloc(tok->n_added + 1, sizeof *tok->added);
    if (!tok->added)
        return vb_err_set(err, "%s: out of memory", file);
    size_t i;
    const json_t *v;
    json_array_foreach(added, i, v) {
        tok_added *a = &tok->added[i];
        const char *content = json_string_value(json_object_get(v, "content"));
        if (!content || !*content)
            return vb_err_set(err, "%s: added_tokens[%zu] has no content", file, i);
        if (json_is_true(json_object_get(v, "single_word")))
            return vb_err_set(err, "%s: added token '%s' has single_word=true, which is not supported", file, content);
        a->content = strdup(content);
        a->len = strlen(content);
        a->id = (int32_t)json_integer_value(json_object_get(v, "id"));
        a->special = json_is_true(json_object_get(v, "special"));
        a->lstrip = json_is_true(json_object_get(v, "lstrip"));
        a->rstrip = json_is_true(json_object_get(v, "rstrip"));
        a->normalized = json_is_true(json_object_get(v, "normalized"));
        a->match = a->content;
        a->match_len = a->len;
        if (a->normalized && tok_normalize(tok, a->content, a->len, &a->match, &a->match_len) < 0)
            return vb_err_set(err, "%s: out of memory", file);
        int32_t id = a->id;
        if (id < 0 || id >= tok->n_vocab)
            return vb_err_set(err, "%s: added token '%s' has id %d out of range", file, content, id);
        tok->flags[id] |= TOKF_ADDED | (a->special ? TOKF_SPECIAL : 0);
        /* Added tokens decode to their text, whatever the model's pieces do. */
        if (tok->dec[id] != tok->piece[id])
            free(tok->dec[id]);
        tok->dec[id] = dup_bytes(a->content, a->len);
        tok->dec_len[id] = (uint32_t)a->len;
        if (!tok->piece[id]) {
            tok->piece[id] = dup_bytes(a->content, a->len);
            tok->piece_len[id] = (uint32_t)a->len;
        }
        tok_str_map_put(&tok->vocab, a->content, (uint32_t)a->len, id);
    }
    for (size_t k = 0; k < tok->n_added; k++)
        tok->n_norm_added += tok->added[k].normalized;
    if (index_added(tok, false, tok->raw_added_by_byte, tok->n_raw_added_by_byte) < 0 ||
        index_added(tok, true, tok->norm_added_by_byte, tok->n_norm_added_by_byte) < 0)
        return vb_err_set(err, "%s: out of memory", file);
    return 0;
}

static int32_t model_piece_id(const tokenizer *tok, const int16_t *cp_to_byte, const char *s, size_t n, char *buf)
{
    if (tok->byte_level) {
        long m = unmap_byte_level(cp_to_byte, s, n, buf);
        return m < 0 ? -1 : tok_str_map_get(&tok->vocab, buf, (size_t)m);
    }
    return tok_str_map_get(&tok->vocab, s, n);
}

static int load_merges(tokenizer *tok, const json_t *model, const char *file, vb_err *err)
{
    const json_t *merges = json_object_get(model, "merges");
    size_t n = json_array_size(merges);
    if (tok_pair_map_init(&tok->merges, n) < 0)
        return vb_err_set(err, "%s: out of memory for %zu merges", file, n);
    int16_t cp_to_byte[324];
    byte_level_decoder(cp_to_byte);
    char *cat = NULL, *buf = NULL;
    size_t cat_cap = 0;
    size_t i;
    const json_t *m;
    json_array_foreach(merges, i, m) {
        const char *a, *b;
        size_t la, lb;
        if (json_is_string(m)) {
            a = json_string_value(m);
            const char *sp = strchr(a + 1, ' ');
            if (!sp)
                return vb_err_set(err, "%s: merges[%zu] '%s' is not 'left right'", file, i, a);
            la = (size_t)(sp - a);
            b = sp + 1;
            lb = strlen(b);
        } else if (json_is_array(m) && json_array_size(m) == 2) {
            a = json_string_value(json_array_get(m, 0));
            b = json_string_value(json_array_get(m, 1));
            if (!a || !b)
                return vb_err_set(err, "%s: merges[%zu] is not two strings", file, i);
            la = strlen(a);
            lb = strlen(b);
        } else {
            return vb_err_set(err, "%s: merges[%zu] is neither a string nor a pair", file, i);
        }
        if (la + lb + 1 > cat_cap) {
            cat_cap = 2 * (la + lb + 1);
            free(cat);
            free(buf);
            cat = malloc(cat_cap);
            buf = malloc(cat_cap);
        }
        int32_t ia = model_piece_id(tok, cp_to_byte, a, la, buf);
        int32_t ib = model_piece_id(tok, cp_to_byte, b, lb, buf);
        memcpy(cat, a, la);
        memcpy(cat + la, b, lb);
        int32_t im = model_piece_id(tok, cp_to_byte, cat, la + lb, buf);
        if (ia < 0 || ib < 0 || im < 0) {
            free(cat);
            free(buf);
            return vb_err_set(err, "%s: merges[%zu] uses a token that is not in the vocab", file, i);
        }
        tok_pair_map_put(&tok->merges, ia, ib, (int32_t)i, im);
    }
    free(cat);
    free(buf);
    return 0;
}

static const char *token_string(const json_t *j)
{
    if (json_is_string(j))
        return json_string_value(j);
    return json_string_value(json_object_get(j, "content")); /* AddedToken form */
}

static void add_eos(tokenizer *tok, int32_t id)
{
    if (id < 0 || id >= tok->n_vocab)
        return;
    for (size_t i = 0; i < tok->n_eos; i++)
        if (tok->eos_ids[i] == id)
            return;
    if (tok->n_eos < sizeof tok->eos_ids / sizeof tok->eos_ids[0])
        tok->eos_ids[tok->n_eos++] = id;
}

/* tokenizer_config.json and generation_config.json are optional: a model dir
 * without them still tokenizes, it just has no template and fewer eos ids. */
static int load_configs(tokenizer *tok, const char *dir, vb_err *err)
{
    char path[4096];
    json_error_t je;
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    json_t *gen = json_load_file(path, 0, &je);
    if (gen) {
        const json_t *e = json_object_get(gen, "eos_token_id");
        if (json_is_integer(e))
            add_eos(tok, (int32_t)json_integer_value(e));
        size_t i;
        const json_t *v;
        json_array_foreach(e, i, v) add_eos(tok, (int32_t)json_integer_value(v));
        json_decref(gen);
    }
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    json_t *cfg = json_load_file(path, 0, &je);
    if (!cfg) {
        FILE *f = fopen(path, "r");
        if (f) {
            fclose(f);
            return vb_err_set(err, "%s: line %d: %s", path, je.line, je.text);
        }
        return 0;
    }
    const json_t *ct = json_object_get(cfg, "chat_template");
    if (json_is_string(ct)) {
        tok->chat_template = strdup(json_string_value(ct));
    } else if (json_is_array(ct)) { /* [{name, template}]: the "default" one */
        size_t i;
        const json_t *v;
        json_array_foreach(ct, i, v) {
            const char *name = json_string_value(json_object_get(v, "name"));
            if (name && strcmp(name, "default") == 0)
                tok->chat_template = strdup(json_string_value(json_object_get(v, "template")));
        }
    }
    const char *bos = token_string(json_object_get(cfg, "bos_token"));
    const char *eos = token_string(json_object_get(cfg, "eos_token"));
    tok->bos_token = bos ? strdup(bos) : NULL;
    tok->eos_token = eos ? strdup(eos) : NULL;
    if (eos)
        add_eos(tok, tokenizer_token_id(tok, eos));
    json_decref(cfg);
    return 0;
}

tokenizer *tokenizer_load(const char *model_dir, vb_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", model_dir);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) {
        vb_err_set(err, "%s: %s (line %d)", path, je.text, je.line);
        return NULL;
    }
    tokenizer *tok = calloc(1, sizeof *tok);
    tok->unk_id = -1;
    for (int b = 0; b < 256; b++)
        tok->byte_id[b] = -1;
    const json_t *model = json_object_get(root, "model");
    const json_t *added = json_object_get(root, "added_tokens");
    const char *mtype = json_string_value(json_object_get(model, "type"));
    const char *csp = json_string_value(json_object_get(model, "continuing_subword_prefix"));
    const char *eow = json_string_value(json_object_get(model, "end_of_word_suffix"));
    int rc = 0;
    if (!mtype || strcmp(mtype, "BPE") != 0)
        rc = vb_err_set(err, "%s: model type '%s' is not supported (BPE only)", path, mtype ? mtype : "?");
    else if ((csp && *csp) || (eow && *eow))
        rc = vb_err_set(err, "%s: BPE continuing_subword_prefix / end_of_word_suffix are not supported", path);
    else if (json_is_number(json_object_get(model, "dropout")) && json_number_value(json_object_get(model, "dropout")) > 0)
        rc = vb_err_set(err, "%s: BPE dropout is not supported", path);
    if (rc == 0)
        rc = load_normalizer(tok, json_object_get(root, "normalizer"), path, err);
    if (rc == 0)
        rc = load_pre_tokenizer(tok, json_object_get(root, "pre_tokenizer"), path, err);
    if (rc == 0 && !tok->byte_level && json_is_object(json_object_get(root, "decoder")) &&
        strcmp(json_type_name(json_object_get(root, "decoder")), "ByteLevel") == 0)
        tok->byte_level = true;
    if (rc == 0)
        rc = load_vocab(tok, model, added, path, err);
    if (rc == 0)
        rc = load_added(tok, added, path, err);
    if (rc == 0)
        rc = load_merges(tok, model, path, err);
    if (rc == 0)
        rc = load_post_processor(tok, json_object_get(root, "post_processor"), path, err);
    if (rc == 0)
        rc = load_decoder(tok, json_object_get(root, "decoder"), path, err);
    if (rc == 0) {
        tok->byte_fallback = json_is_true(json_object_get(model, "byte_fallback"));
        tok->fuse_unk = json_is_true(json_object_get(model, "fuse_unk"));
        tok->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
        const char *unk = json_string_value(json_object_get(model, "unk_token"));
        if (unk)
            tok->unk_id = tok_str_map_get(&tok->vocab, unk, strlen(unk));
        for (int c = 0; c < 128; c++) {
            char ch = (char)c;
            tok->ascii_id[c] = tok_str_map_get(&tok->vocab, &ch, 1);
        }
        for (int b = 0; b < 256; b++) {
            if (tok->byte_level) {
                char c = (char)b;
                tok->byte_id[b] = tok_str_map_get(&tok->vocab, &c, 1);
            } else if (tok->byte_fallback) {
                char name[8];
                snprintf(name, sizeof name, "<0x%02X>", b);
                tok->byte_id[b] = tok_str_map_get(&tok->vocab, name, 6);
            }
        }
        if (tok->byte_level)
            for (int b = 0; b < 256 && rc == 0; b++)
                if (tok->byte_id[b] < 0)
                    rc = vb_err_set(err, "%s: byte-level vocab lacks the token for byte 0x%02X", path, b);
    }
    json_decref(root);
    if (rc == 0)
        rc = load_configs(tok, model_dir, err);
    if (rc < 0) {
        tokenizer_free(tok);
        return NULL;
    }
    return tok;
}

void tokenizer_free(tokenizer *tok)
{
    if (!tok)
        return;
    for (int32_t i = 0; i < tok->n_vocab; i++) {
        if (tok->dec && tok->dec[i] != tok->piece[i])
            free(tok->dec[i]);
        if (tok->piece)
            free(tok->piece[i]);
    }
    free(tok->piece);
    free(tok->piece_len);
    free(tok->dec);
    free(tok->dec_len);
    free(tok->flags);
    tok_str_map_free(&tok->vocab);
    tok_pair_map_free(&tok->merges);
    for (size_t i = 0; i < tok->n_norm; i++) {
        free(tok->norm[i].a);
        free(tok->norm[i].b);
    }
    free(tok->norm);
    if (tok->split_re)
        pcre2_code_free(tok->split_re);
    free(tok->ms_repl);
    for (size_t i = 0; i < tok->n_added; i++) {
        if (tok->added[i].match != tok->added[i].content)
            free(tok->added[i].match);
        free(tok->added[i].content);
    }
    free(tok->added);
    for (int b = 0; b < 256; b++) {
        free(tok->raw_added_by_byte[b]);
        free(tok->norm_added_by_byte[b]);
    }
    free(tok->chat_template);
    free(tok->bos_token);
    free(tok->eos_token);
    free(tok);
}

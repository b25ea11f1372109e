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
#include <sys/stat.h>
#include <unistd.h>

#include "tokenizer/tok_internal.h"
#include "util/json_file.h"
#include "util/open_regular.h"

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

uint32_t tok_byte_to_cp(unsigned char b)
{
    int16_t cp_to_byte[324];
    byte_level_decoder(cp_to_byte);
    for (uint32_t cp = 0; cp < 324; cp++)
        if (cp_to_byte[cp] == b)
            return cp;
    return b; /* not reached: the map covers every byte */
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

const char *tok_json_type(const json_t *j)
{
    const json_t *t = json_object_get(j, "type");
    return json_is_string(t) ? json_string_value(t) : "(no type)";
}

/* Ids index the tables, so each is checked before anything is indexed by it.
 * Real vocabularies are dense (Llama 3: 128,256 tokens on ids 0..128,255),
 * so ids must stay below twice the file's token count plus 1024, which
 * leaves room for holes, and below 2^24, which caps the tables at a few
 * hundred MB whatever the file says. */
#define TOK_MAX_IDS (1 << 24)

static int64_t id_limit(size_t n_tokens)
{
    /* n_tokens counts JSON entries, so it is below the file's size */
    int64_t lim = 2 * (int64_t)n_tokens + 1024;
    return lim < TOK_MAX_IDS ? lim : TOK_MAX_IDS;
}

/* A token's text fit for a one-line message: at most 64 bytes, not cutting
 * a character, control bytes shown as '?'. */
const char *tok_shown(const char *s, size_t n, char buf[static 72])
{
    size_t o = n <= 64 ? n : 64;
    while (o < n && o > 0 && ((unsigned char)s[o] & 0xC0) == 0x80)
        o--;
    for (size_t i = 0; i < o; i++)
        buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    if (o < n) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = 0;
    return buf;
}

/* A JSON value as the file spells it, for messages ("7" stays quoted). */
const char *tok_json_text(const json_t *v, char buf[static 72])
{
    char *s = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    const char *t = v ? (s ? s : "?") : "(missing)";
    tok_shown(t, strlen(t), buf);
    free(s);
    return buf;
}

/* A token id from the file: a JSON integer in [0, limit). Otherwise an
 * error naming where it is and which token ("model.vocab 'b'"). */
int tok_read_id(const json_t *v, int64_t limit, const char *file, const char *where, const char *token,
                   int32_t *id, vb_err *err)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) < limit) {
        *id = (int32_t)json_integer_value(v);
        return 0;
    }
    char name[72], text[72];
    return vb_err_set(err, "%s: %s '%s': id %s is not a token id (an integer from 0 to %lld)", file, where,
                      tok_shown(token, strlen(token), name), tok_json_text(v, text),
                      (long long)limit - 1);
}

/* An optional boolean flag: absent, true or false. */
static int read_flag(const json_t *obj, const char *key, bool *out, const char *file, const char *where,
                     const char *token, vb_err *err)
{
    const json_t *v = json_object_get(obj, key);
    if (v && !json_is_boolean(v)) {
        char name[72], text[72];
        return vb_err_set(err, "%s: %s '%s': %s is %s, not true or false", file, where,
                          tok_shown(token, strlen(token), name), key, tok_json_text(v, text));
    }
    *out = json_is_true(v);
    return 0;
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

/* Each added_tokens entry: an object with non-empty text content and
 * boolean flags, so later passes read them without checking. */
static int check_added_entry(const json_t *v, size_t i, const char *file, vb_err *err)
{
    const json_t *content = json_object_get(v, "content");
    if (!json_is_object(v) || !json_is_string(content) || json_string_length(content) == 0) {
        char text[72];
        return vb_err_set(err, "%s: added_tokens[%zu]: content %s is not a non-empty string", file, i,
                          tok_json_text(content, text));
    }
    static const char *const flags[] = {"special", "lstrip", "rstrip", "normalized", "single_word"};
    char where[48];
    snprintf(where, sizeof where, "added_tokens[%zu]", i);
    for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++) {
        bool b;
        if (read_flag(v, flags[k], &b, file, where, json_string_value(content), err) < 0)
            return -1;
    }
    return 0;
}

/* The first pass over the ids, before any table is indexed by one: every
 * model.vocab value and added_tokens[].id is an integer in range. Returns
 * the highest id, or -1 with err set. */
static int64_t check_ids(const json_t *vocab, const json_t *added, const char *file, vb_err *err)
{
    if (added && !json_is_null(added) && !json_is_array(added))
        return vb_err_set(err, "%s: added_tokens is not a list", file);
    int64_t limit = id_limit(json_object_size(vocab) + json_array_size(added));
    int32_t max_id = -1, id;
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)vocab, key, v) {
        if (tok_read_id(v, limit, file, "model.vocab", key, &id, err) < 0)
            return -1;
        max_id = id > max_id ? id : max_id;
    }
    size_t i;
    json_array_foreach(added, i, v) {
        char where[48];
        snprintf(where, sizeof where, "added_tokens[%zu]", i);
        if (check_added_entry(v, i, file, err) < 0 ||
            tok_read_id(json_object_get(v, "id"), limit, file, where, json_string_value(json_object_get(v, "content")),
                    &id, err) < 0)
            return -1;
        max_id = id > max_id ? id : max_id;
    }
    if (max_id < 0)
        return vb_err_set(err, "%s: model.vocab and added_tokens hold no token", file);
    return max_id;
}

/* Two model.vocab entries on one id: the error names both. */
static int duplicate_vocab_id(const json_t *vocab, const char *key, int32_t id, const char *file, vb_err *err)
{
    const char *other = "?", *k;
    const json_t *v;
    json_object_foreach((json_t *)vocab, k, v) {
        if (json_integer_value(v) == id && strcmp(k, key) != 0) {
            other = k;
            break;
        }
    }
    char a[72], b[72];
    return vb_err_set(err, "%s: model.vocab '%s': id %d is also '%s'", file, tok_shown(key, strlen(key), a), id,
                      tok_shown(other, strlen(other), b));
}

/* What a SentencePiece piece decodes to: the meta-space back to ' '. */
static char *sp_decoded(const char *key, size_t klen, const char *repl, size_t *out_len)
{
    size_t repl_len = strlen(repl); /* one character: load_metaspace checked it */
    char *d = malloc(klen + 1);
    if (!d)
        return NULL;
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
    *out_len = o;
    return d;
}

/* One model.vocab entry into the tables: its piece, its map entry, and
 * what it decodes to. Takes ownership of p (stored before anything fails,
 * so tokenizer_free frees it). */
static int put_vocab_piece(tokenizer *tok, int32_t id, const char *key, char *p, size_t n, const char *file,
                           vb_err *err)
{
    tok->piece[id] = p;
    tok->piece_len[id] = (uint32_t)n;
    if (tok_str_map_put(&tok->vocab, p, (uint32_t)n, id) < 0)
        return vb_err_set(err, "%s: vocabulary table full", file);
    if (tok->byte_level) {
        tok->dec[id] = p;
        tok->dec_len[id] = (uint32_t)n;
        return 0;
    }
    int b = parse_byte_piece(p, n);
    size_t dn = 1;
    if (b >= 0) {
        tok->flags[id] |= TOKF_BYTE;
        tok->dec[id] = dup_bytes((const char *)&(char){(char)b}, 1);
    } else {
        tok->dec[id] = sp_decoded(key, strlen(key), tok->ms_repl ? tok->ms_repl : "\xE2\x96\x81", &dn);
    }
    if (!tok->dec[id])
        return vb_err_set(err, "%s: out of memory", file);
    tok->dec_len[id] = (uint32_t)dn;
    return 0;
}

static int load_vocab(tokenizer *tok, const json_t *model, const json_t *added, const char *file, vb_err *err)
{
    const json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab))
        return vb_err_set(err, "%s: model.vocab is missing or not an object", file);
    int64_t max_id = check_ids(vocab, added, file, err);
    if (max_id < 0)
        return -1;
    size_t nv = (size_t)max_id + 1;
    tok->piece = calloc(nv, sizeof *tok->piece);
    tok->piece_len = calloc(nv, sizeof *tok->piece_len);
    tok->dec = calloc(nv, sizeof *tok->dec);
    tok->dec_len = calloc(nv, sizeof *tok->dec_len);
    tok->flags = calloc(nv, 1);
    if (!tok->piece || !tok->piece_len || !tok->dec || !tok->dec_len || !tok->flags ||
        tok_str_map_init(&tok->vocab, json_object_size(vocab) + json_array_size(added)) < 0)
        return vb_err_set(err, "%s: out of memory for %zu tokens", file, nv);
    tok->n_vocab = (int32_t)nv; /* only now: tokenizer_free walks the tables by it */

    int16_t cp_to_byte[324];
    byte_level_decoder(cp_to_byte);
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)vocab, key, v) {
        int32_t id = (int32_t)json_integer_value(v); /* checked by check_ids */
        if (tok->piece[id])
            return duplicate_vocab_id(vocab, key, id, file, err);
        size_t klen = strlen(key);
        char *p = malloc(klen + 1);
        if (!p)
            return vb_err_set(err, "%s: out of memory", file);
        long n = (long)klen;
        if (tok->byte_level)
            n = unmap_byte_level(cp_to_byte, key, klen, p);
        else
            memcpy(p, key, klen);
        if (n < 0) {
            char name[72];
            free(p);
            return vb_err_set(err, "%s: model.vocab '%s' (id %d) is not byte-level text", file,
                              tok_shown(key, klen, name), id);
        }
        p[n] = 0;
        if (put_vocab_piece(tok, id, key, p, (size_t)n, file, err) < 0)
            return -1;
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


/* An added token on an id another added token already has: the same token
 * listed twice is harmless; two texts on one id are refused. */
static int check_added_twice(const tokenizer *tok, size_t i, const char *file, vb_err *err)
{
    const tok_added *a = &tok->added[i];
    for (size_t k = 0; k < i; k++) {
        const tok_added *b = &tok->added[k];
        if (b->id == a->id && strcmp(b->content, a->content) != 0) {
            char x[72], y[72];
            return vb_err_set(err, "%s: added_tokens[%zu] '%s': id %d is also added token '%s'", file, i,
                              tok_shown(a->content, a->len, x), a->id, tok_shown(b->content, b->len, y));
        }
    }
    return 0;
}

/* One added token (checked by check_ids) into the tables. */
static int put_added(tokenizer *tok, size_t i, const json_t *v, const char *file, vb_err *err)
{
    tok_added *a = &tok->added[i];
    const char *content = json_string_value(json_object_get(v, "content"));
    if (json_is_true(json_object_get(v, "single_word")))
        return vb_err_set(err, "%s: added token '%s' has single_word=true, which is not supported", file, content);
    a->content = strdup(content);
    if (!a->content)
        return vb_err_set(err, "%s: out of memory", file);
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
    if ((tok->flags[id] & TOKF_ADDED) && check_added_twice(tok, i, file, err) < 0)
        return -1;
    tok->flags[id] |= TOKF_ADDED | (a->special ? TOKF_SPECIAL : 0);
    /* Added tokens decode to their text, whatever the model's pieces do. */
    char *d = dup_bytes(a->content, a->len);
    if (!d)
        return vb_err_set(err, "%s: out of memory", file);
    if (tok->dec[id] != tok->piece[id])
        free(tok->dec[id]);
    tok->dec[id] = d;
    tok->dec_len[id] = (uint32_t)a->len;
    if (!tok->piece[id]) {
        tok->piece[id] = dup_bytes(a->content, a->len);
        if (!tok->piece[id])
            return vb_err_set(err, "%s: out of memory", file);
        tok->piece_len[id] = (uint32_t)a->len;
    }
    if (tok_str_map_put(&tok->vocab, a->content, (uint32_t)a->len, id) < 0)
        return vb_err_set(err, "%s: vocabulary table full", file);
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
        if (put_added(tok, i, v, file, err) < 0)
            return -1;
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

/* One model.merges entry's two tokens as the file spells them: "left right"
 * (split at its one space, as HF does: "a b c" and "a  b" are refused) or
 * ["left", "right"]. */
static int merge_parts(const json_t *m, size_t i, const char *parts[2], size_t lens[2], const char *file,
                       vb_err *err)
{
    if (json_is_string(m)) {
        const char *s = json_string_value(m);
        const char *sp = strchr(s, ' ');
        if (!sp || sp == s || !sp[1] || strchr(sp + 1, ' ')) {
            char name[72];
            return vb_err_set(err, "%s: merges[%zu] '%s' is not 'left right' (two tokens, one space)", file, i,
                              tok_shown(s, strlen(s), name));
        }
        parts[0] = s;
        lens[0] = (size_t)(sp - s);
        parts[1] = sp + 1;
        lens[1] = strlen(sp + 1);
        return 0;
    }
    const json_t *l = json_array_get(m, 0), *r = json_array_get(m, 1);
    if (!json_is_array(m) || json_array_size(m) != 2 || !json_is_string(l) || !json_is_string(r))
        return vb_err_set(err, "%s: merges[%zu] is neither 'left right' nor a pair of strings", file, i);
    parts[0] = json_string_value(l);
    lens[0] = json_string_length(l);
    parts[1] = json_string_value(r);
    lens[1] = json_string_length(r);
    return 0;
}

/* A merge's token that is not in the vocabulary, named as the file has it. */
static int merge_unknown(const char *what, const char *s, size_t n, size_t i, const char *file, vb_err *err)
{
    char name[72];
    return vb_err_set(err, "%s: merges[%zu]: %s'%s' is not in the vocab", file, i, what, tok_shown(s, n, name));
}

/* The merged token of a merge is left + right without right's first
 * prefix_len bytes (the continuing_subword_prefix as the file spells it),
 * as HF builds it. */
static int load_merges(tokenizer *tok, const json_t *model, const char *file, vb_err *err)
{
    const char *csp = json_string_value(json_object_get(model, "continuing_subword_prefix"));
    size_t prefix_len = csp ? strlen(csp) : 0;
    const json_t *merges = json_object_get(model, "merges");
    if (merges && !json_is_null(merges) && !json_is_array(merges))
        return vb_err_set(err, "%s: model.merges is not a list", file);
    size_t n = json_array_size(merges);
    if (n > INT32_MAX) /* ranks are int32 */
        return vb_err_set(err, "%s: %zu merges are too many", file, n);
    if (tok_pair_map_init(&tok->merges, n) < 0)
        return vb_err_set(err, "%s: out of memory for %zu merges", file, n);
    int16_t cp_to_byte[324];
    byte_level_decoder(cp_to_byte);
    char *cat = NULL, *buf = NULL;
    size_t cat_cap = 0;
    int rc = 0;
    size_t i;
    const json_t *m;
    json_array_foreach(merges, i, m) {
        const char *part[2] = {NULL, NULL};
        size_t len[2] = {0, 0};
        if ((rc = merge_parts(m, i, part, len, file, err)) < 0)
            break;
        if (len[1] < prefix_len) { /* HF's slice would panic */
            char name[72];
            rc = vb_err_set(err, "%s: merges[%zu]: '%s' is shorter than continuing_subword_prefix", file, i,
                            tok_shown(part[1], len[1], name));
            break;
        }
        size_t need = len[0] + len[1] + 1;
        if (need > cat_cap) {
            free(cat);
            free(buf);
            cat_cap = 2 * need;
            cat = malloc(cat_cap);
            buf = malloc(cat_cap); /* unmapped bytes are never longer than the text */
            if (!cat || !buf) {
                rc = vb_err_set(err, "%s: out of memory", file);
                break;
            }
        }
        int32_t ia = model_piece_id(tok, cp_to_byte, part[0], len[0], buf);
        int32_t ib = model_piece_id(tok, cp_to_byte, part[1], len[1], buf);
        memcpy(cat, part[0], len[0]);
        memcpy(cat + len[0], part[1] + prefix_len, len[1] - prefix_len);
        size_t cat_len = len[0] + len[1] - prefix_len;
        int32_t im = model_piece_id(tok, cp_to_byte, cat, cat_len, buf);
        if (ia < 0 || ib < 0 || im < 0) {
            rc = ia < 0 ? merge_unknown("", part[0], len[0], i, file, err)
               : ib < 0 ? merge_unknown("", part[1], len[1], i, file, err)
                        : merge_unknown("the merged token ", cat, cat_len, i, file, err);
            break;
        }
        if (tok_pair_map_put(&tok->merges, ia, ib, (int32_t)i, im) < 0) {
            rc = vb_err_set(err, "%s: merge table full", file);
            break;
        }
    }
    free(cat);
    free(buf);
    return rc;
}

static const char *token_string(const json_t *j)
{
    if (json_is_string(j))
        return json_string_value(j);
    return json_string_value(json_object_get(j, "content")); /* AddedToken form */
}

/* Adds id to the end-of-sequence ids; more than the array holds is an
 * error naming path (an id dropped would let its rows run on). */
static int add_eos_id(tokenizer *tok, int32_t id, const char *path, vb_err *err)
{
    if (id < 0 || id >= tok->n_vocab)
        return 0; /* past this tokenizer's ids: nothing it decodes */
    for (size_t i = 0; i < tok->n_eos; i++)
        if (tok->eos_ids[i] == id)
            return 0;
    if (tok->n_eos == sizeof tok->eos_ids / sizeof tok->eos_ids[0])
        return vb_err_set(err, "%s: more than %zu end-of-sequence ids", path, tok->n_eos);
    tok->eos_ids[tok->n_eos++] = id;
    return 0;
}

/* One generation_config.json eos_token_id entry: an integer that fits an
 * id, never truncated into one (2^32+3 is not 3). */
static int read_eos(tokenizer *tok, const json_t *v, const char *path, vb_err *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX) {
        char text[72];
        return vb_err_set(err, "%s: eos_token_id %s is not a token id", path, tok_json_text(v, text));
    }
    return add_eos_id(tok, (int32_t)json_integer_value(v), path, err);
}

static int load_generation_config(tokenizer *tok, const char *dir, vb_err *err)
{
    char path[4096];
    json_error_t je;
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    json_t *gen = vb_json_load_file(path, 0, &je);
    if (!gen)
        return 0; /* optional; config.c reports one that does not parse */
    const json_t *e = json_object_get(gen, "eos_token_id");
    int rc = 0;
    if (json_is_array(e)) {
        size_t i;
        const json_t *v;
        json_array_foreach(e, i, v) {
            if ((rc = read_eos(tok, v, path, err)) < 0)
                break;
        }
    } else if (e && !json_is_null(e)) {
        rc = read_eos(tok, e, path, err);
    }
    json_decref(gen);
    return rc;
}

/* tokenizer_config.json's chat_template: text, or [{name, template}] of
 * which the "default" one is used. */
static int load_chat_template(tokenizer *tok, const json_t *ct, const char *path, vb_err *err)
{
    const char *text = json_string_value(ct);
    size_t i;
    const json_t *v;
    /* not an error here: only --chat uses it (chat_model.c says why not) */
    if (ct && !json_is_null(ct) && !json_is_string(ct) && !json_is_array(ct))
        snprintf(tok->chat_template_problem, sizeof tok->chat_template_problem,
                 "its chat_template is neither a string nor a list of named templates");
    else if (json_is_array(ct))
        snprintf(tok->chat_template_problem, sizeof tok->chat_template_problem,
                 "its chat_template list has no template named \"default\"");
    json_array_foreach(ct, i, v) {
        const char *name = json_string_value(json_object_get(v, "name"));
        /* transformers takes "tool_use" instead of "default" when the
         * template gets tools (PreTrainedTokenizerBase.get_chat_template) */
        const char *body = json_string_value(json_object_get(v, "template"));
        if (name && strcmp(name, "tool_use") == 0 && body && !tok->chat_template_tool_use &&
            !(tok->chat_template_tool_use = strdup(body)))
            return vb_err_set(err, "%s: out of memory", path);
        if (!name || strcmp(name, "default") != 0)
            continue;
        text = json_string_value(json_object_get(v, "template"));
        if (!text)
            return vb_err_set(err, "%s: chat_template 'default' has no template text", path);
        tok->chat_template_problem[0] = '\0';
        break;
    }
    if (text && !(tok->chat_template = strdup(text)))
        return vb_err_set(err, "%s: out of memory", path);
    return 0;
}

/* tokenizer_config.json and generation_config.json are optional: a model dir
 * without them still tokenizes, it just has no template and fewer eos ids. */
static int load_configs(tokenizer *tok, const char *dir, vb_err *err)
{
    if (load_generation_config(tok, dir, err) < 0)
        return -1;
    char path[4096];
    json_error_t je;
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    json_t *cfg = vb_json_load_file(path, 0, &je);
    if (!cfg) {
        /* there but unreadable, malformed or not a regular file: refused;
         * missing: none (stat, not open: a FIFO would block) */
        struct stat st;
        char why[1200];
        if (vb_dangling_link(path, why, sizeof why)) /* not absent: its template, its eos */
            return vb_err_set(err, "%s: %s", path, why);
        if (stat(path, &st) == 0)
            return vb_err_set(err, "%s: line %d: %s", path, je.line, je.text);
        return 0;
    }
    if (!json_is_object(cfg)) { /* an array read as "no template, no tokens" */
        json_decref(cfg);
        return vb_err_set(err, "%s: not a JSON object", path);
    }
    int rc = load_chat_template(tok, json_object_get(cfg, "chat_template"), path, err);
    const char *bos = token_string(json_object_get(cfg, "bos_token"));
    const char *eos = token_string(json_object_get(cfg, "eos_token"));
    tok->bos_token = bos ? strdup(bos) : NULL;
    tok->eos_token = eos ? strdup(eos) : NULL;
    if (rc == 0 && ((bos && !tok->bos_token) || (eos && !tok->eos_token)))
        rc = vb_err_set(err, "%s: out of memory", path);
    if (rc == 0 && eos)
        rc = add_eos_id(tok, tokenizer_token_id(tok, eos), path, err);
    json_decref(cfg);
    return rc;
}

/* continuing_subword_prefix or end_of_word_suffix as piece bytes: NULL
 * when absent or empty (HF adds nothing then); byte-level files spell it
 * in the GPT-2 map, undone here as for the vocab. */
static int load_affix(tokenizer *tok, const json_t *model, const char *key, char **out, size_t *out_len,
                      const char *path, vb_err *err)
{
    const json_t *v = json_object_get(model, key);
    if (v && !json_is_null(v) && !json_is_string(v))
        return vb_err_set(err, "%s: model.%s is not a string", path, key);
    const char *s = json_string_value(v);
    if (!s || !*s)
        return 0;
    size_t n = strlen(s);
    if (!(*out = malloc(n + 1)))
        return vb_err_set(err, "%s: out of memory", path);
    long m = (long)n;
    if (tok->byte_level) {
        int16_t cp_to_byte[324];
        byte_level_decoder(cp_to_byte);
        m = unmap_byte_level(cp_to_byte, s, n, *out);
    } else {
        memcpy(*out, s, n);
    }
    if (m < 0) {
        char name[72];
        return vb_err_set(err, "%s: model.%s '%s' is not byte-level text", path, key, tok_shown(s, n, name));
    }
    (*out)[m] = 0;
    *out_len = (size_t)m;
    return 0;
}

/* The BPE model's switches and the lookup tables built from the vocab. */
static int load_model_flags(tokenizer *tok, const json_t *model, const char *path, vb_err *err)
{
    if (load_affix(tok, model, "continuing_subword_prefix", &tok->csp, &tok->csp_len, path, err) < 0 ||
        load_affix(tok, model, "end_of_word_suffix", &tok->eow, &tok->eow_len, path, err) < 0)
        return -1;
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
            /* -1 when the vocab lacks it (SmolLM2 lacks 21 bytes): such a
             * byte becomes unk, or is dropped without one, as in HF */
            tok->byte_id[b] = tok_str_map_get(&tok->vocab, &c, 1);
        } else if (tok->byte_fallback) {
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", b);
            tok->byte_id[b] = tok_str_map_get(&tok->vocab, name, 6);
        }
    }
    return 0;
}

/* Everything tokenizer.json holds, from its parsed root (which it frees);
 * path names the file in messages. */
static tokenizer *tokenizer_from_json(json_t *root, const char *path, vb_err *err)
{
    tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) {
        json_decref(root);
        vb_err_set(err, "%s: out of memory", path);
        return NULL;
    }
    tok->unk_id = -1;
    for (int b = 0; b < 256; b++)
        tok->byte_id[b] = -1;
    const json_t *model = json_object_get(root, "model");
    const json_t *added = json_object_get(root, "added_tokens");
    const char *mtype = json_string_value(json_object_get(model, "type"));
    int rc = 0;
    if (!mtype || strcmp(mtype, "BPE") != 0)
        rc = vb_err_set(err, "%s: model type '%s' is not supported (BPE only)", path, mtype ? mtype : "?");
    else if (json_is_number(json_object_get(model, "dropout")) && json_number_value(json_object_get(model, "dropout")) > 0)
        rc = vb_err_set(err, "%s: BPE dropout is not supported", path);
    if (rc == 0)
        rc = tok_norm_load(tok, json_object_get(root, "normalizer"), path, err);
    if (rc == 0)
        rc = tok_pretok_load(tok, json_object_get(root, "pre_tokenizer"), path, err);
    if (rc == 0 && !tok->byte_level && json_is_object(json_object_get(root, "decoder")) &&
        strcmp(tok_json_type(json_object_get(root, "decoder")), "ByteLevel") == 0)
        tok->byte_level = true;
    if (rc == 0)
        rc = load_vocab(tok, model, added, path, err);
    if (rc == 0)
        rc = load_added(tok, added, path, err);
    if (rc == 0)
        rc = load_merges(tok, model, path, err);
    if (rc == 0)
        rc = tok_post_processor_load(tok, json_object_get(root, "post_processor"), path, err);
    if (rc == 0)
        rc = load_model_flags(tok, model, path, err);
    if (rc == 0) /* after the model: a decoder may name its suffix */
        rc = tok_decoder_load(tok, json_object_get(root, "decoder"), path, err);
    json_decref(root);
    if (rc < 0) {
        tokenizer_free(tok);
        return NULL;
    }
    return tok;
}

tokenizer *tokenizer_load_json(const char *json, size_t len, const char *name, vb_err *err)
{
    json_error_t je;
    json_t *root = vb_json_loadb(json, len, 0, &je);
    if (!root) {
        vb_err_set(err, "%s: %s (line %d)", name, je.text, je.line);
        return NULL;
    }
    return tokenizer_from_json(root, name, err);
}

tokenizer *tokenizer_load(const char *model_dir, vb_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", model_dir);
    json_error_t je;
    json_t *root = vb_json_load_file(path, 0, &je);
    char why[1200];
    if (!root && vb_dangling_link(path, why, sizeof why)) {
        vb_err_set(err, "%s: %s", path, why);
        return NULL;
    }
    if (!root && access(path, F_OK) != 0) {
        /* a SentencePiece-only directory is the likely case: say what is read */
        char model[4096];
        snprintf(model, sizeof model, "%s/tokenizer.model", model_dir);
        vb_err_set(err, "%s: no such file (the tokenizer is read from tokenizer.json, the "
                   "Hugging Face tokenizers format%s)", path,
                   access(model, F_OK) == 0
                       ? "; this directory's SentencePiece tokenizer.model is not read: "
                         "transformers' AutoTokenizer.from_pretrained(DIR).save_pretrained(DIR) "
                         "writes tokenizer.json beside it"
                       : "");
        return NULL;
    }
    if (!root) {
        if (je.line > 0)
            vb_err_set(err, "%s: %s (line %d)", path, je.text, je.line);
        else
            vb_err_set(err, "%s: %s", path, je.text);
        return NULL;
    }
    tokenizer *tok = tokenizer_from_json(root, path, err);
    if (tok && load_configs(tok, model_dir, err) < 0) {
        tokenizer_free(tok);
        return NULL;
    }
    return tok;
}

void tokenizer_free(tokenizer *tok)
{
    if (!tok)
        return;
    /* n_vocab is set only once every per-id table is allocated */
    for (int32_t i = 0; i < tok->n_vocab; i++) {
        if (tok->dec[i] != tok->piece[i])
            free(tok->dec[i]);
        free(tok->piece[i]);
        if (tok->dec_alt)
            free(tok->dec_alt[i]);
    }
    free(tok->dec_alt);
    free(tok->dec_alt_len);
    free(tok->csp);
    free(tok->eow);
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
        if (tok->norm[i].re)
            pcre2_code_free(tok->norm[i].re);
    }
    free(tok->norm);
    tok_pretok_free(tok);
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
    free(tok->chat_template_tool_use);
    free(tok->bos_token);
    free(tok->eos_token);
    free(tok);
}

/* tokenizer.json's "post_processor" (what encode adds around the ids) and
 * "decoder" (what each id's text becomes on the way back), loaded after the
 * vocabulary and the added tokens (tok_load.c).
 *
 * Post-processors: TemplateProcessing (its "single" template), ByteLevel
 * (offsets only: nothing to do), RobertaProcessing (cls ... sep) and
 * Sequence of these, each around what the ones before it made, as HF
 * applies them. Decoders: ByteLevel, Metaspace, the SentencePiece
 * Sequence (Replace, ByteFallback, Fuse, Strip), BPEDecoder (the model's
 * end_of_word_suffix) and WordPiece (a continuing prefix, with cleanup).
 * Anything else is refused at load with its name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

/* ---------------------------------------------------------------- post-processor */

/* One processor's additions (pre, suf) around what the tokenizer adds so far. */
static int wrap_post(tokenizer *tok, const int32_t *pre, size_t npre, const int32_t *suf, size_t nsuf,
                     const char *file, vb_err *err)
{
    size_t cap = sizeof tok->post_prefix / sizeof tok->post_prefix[0];
    if (tok->n_post_prefix + npre > cap || tok->n_post_suffix + nsuf > cap)
        return vb_err_set(err, "%s: post_processor adds more than %zu tokens before or after the text", file, cap);
    memmove(tok->post_prefix + npre, tok->post_prefix, tok->n_post_prefix * sizeof *pre);
    memcpy(tok->post_prefix, pre, npre * sizeof *pre);
    tok->n_post_prefix += npre;
    memcpy(tok->post_suffix + tok->n_post_suffix, suf, nsuf * sizeof *suf);
    tok->n_post_suffix += nsuf;
    return 0;
}

/* An id the post-processor adds: a token of the vocabulary. */
static int post_id(const tokenizer *tok, const json_t *v, const char *what, const char *name, int32_t *id,
                   const char *file, vb_err *err)
{
    if (tok_read_id(v, tok->n_vocab, file, what, name, id, err) < 0)
        return -1;
    if (!tok->dec[*id]) {
        char nm[72];
        return vb_err_set(err, "%s: %s '%s': id %d is not in the vocabulary", file, what,
                          tok_shown(name, strlen(name), nm), *id);
    }
    return 0;
}

/* One SpecialToken of a TemplateProcessing "single" list: its ids (from
 * special_tokens) appended to dst[*n], at most 8. */
static int template_special(const tokenizer *tok, const json_t *specials, const json_t *item, int32_t *dst,
                            size_t *n, const char *file, vb_err *err)
{
    const char *name = json_string_value(json_object_get(item, "id"));
    if (!name)
        return vb_err_set(err, "%s: post_processor TemplateProcessing: a SpecialToken has no id", file);
    char nm[72];
    const json_t *ids = json_object_get(json_object_get(specials, name), "ids");
    if (!json_object_get(specials, name))
        return vb_err_set(err, "%s: post_processor TemplateProcessing: single names special token '%s', which "
                               "special_tokens lacks", file, tok_shown(name, strlen(name), nm));
    if (!json_is_array(ids))
        return vb_err_set(err, "%s: post_processor special token '%s': ids is not a list", file,
                          tok_shown(name, strlen(name), nm));
    size_t k;
    const json_t *idv;
    json_array_foreach(ids, k, idv) {
        int32_t id;
        if (post_id(tok, idv, "post_processor special token", name, &id, file, err) < 0)
            return -1;
        if (*n >= 8)
            return vb_err_set(err, "%s: post_processor adds more than 8 tokens", file);
        dst[(*n)++] = id;
    }
    return 0;
}

static int load_template(tokenizer *tok, const json_t *j, const char *file, vb_err *err)
{
    const json_t *specials = json_object_get(j, "special_tokens");
    const json_t *single = json_object_get(j, "single");
    if (!json_is_array(single))
        return vb_err_set(err, "%s: post_processor TemplateProcessing: single is not a list", file);
    int32_t pre[8], suf[8];
    size_t npre = 0, nsuf = 0;
    bool seen_seq = false;
    size_t i;
    const json_t *item;
    json_array_foreach(single, i, item) {
        const json_t *special = json_object_get(item, "SpecialToken");
        if (json_object_get(item, "Sequence"))
            seen_seq = true;
        else if (!json_is_object(special))
            return vb_err_set(err, "%s: post_processor TemplateProcessing: single[%zu] is neither a Sequence "
                                   "nor a SpecialToken", file, i);
        else if (template_special(tok, specials, special, seen_seq ? suf : pre, seen_seq ? &nsuf : &npre, file,
                                  err) < 0)
            return -1;
    }
    return wrap_post(tok, pre, npre, suf, nsuf, file, err);
}

/* RobertaProcessing: cls before, sep after ("cls": ["<s>", 0]); its
 * trim_offsets and add_prefix_space move offsets only. */
static int load_roberta(tokenizer *tok, const json_t *j, const char *file, vb_err *err)
{
    int32_t id[2];
    static const char *const keys[2] = {"cls", "sep"};
    for (int k = 0; k < 2; k++) {
        const json_t *pair = json_object_get(j, keys[k]);
        const char *name = json_string_value(json_array_get(pair, 0));
        if (!json_is_array(pair) || json_array_size(pair) != 2 || !name)
            return vb_err_set(err, "%s: post_processor RobertaProcessing: %s is not [token, id]", file, keys[k]);
        char what[64];
        snprintf(what, sizeof what, "post_processor RobertaProcessing %s", keys[k]);
        if (post_id(tok, json_array_get(pair, 1), what, name, &id[k], file, err) < 0)
            return -1;
    }
    return wrap_post(tok, &id[0], 1, &id[1], 1, file, err);
}

int tok_post_processor_load(tokenizer *tok, const json_t *j, const char *file, vb_err *err)
{
    if (!j || json_is_null(j))
        return 0;
    const char *type = tok_json_type(j);
    if (strcmp(type, "Sequence") == 0) {
        size_t i;
        const json_t *v;
        json_array_foreach(json_object_get(j, "processors"), i, v) {
            if (tok_post_processor_load(tok, v, file, err) < 0)
                return -1;
        }
        return 0;
    }
    if (strcmp(type, "ByteLevel") == 0)
        return 0; /* only moves offsets */
    if (strcmp(type, "TemplateProcessing") == 0)
        return load_template(tok, j, file, err);
    if (strcmp(type, "RobertaProcessing") == 0)
        return load_roberta(tok, j, file, err);
    return vb_err_set(err, "%s: post_processor '%s' is not supported (TemplateProcessing, ByteLevel, "
                           "RobertaProcessing, Sequence are)", file, type);
}

/* ---------------------------------------------------------------- decoder */

/* The Strip decoder of SentencePiece files strips `start` leading spaces. */
static int load_strip(tokenizer *tok, const json_t *j, const char *file, vb_err *err)
{
    const json_t *start = json_object_get(j, "start"), *stop = json_object_get(j, "stop");
    const char *content = json_string_value(json_object_get(j, "content"));
    char text[72];
    if (!json_is_integer(start) || json_integer_value(start) < 0 || json_integer_value(start) > 1024)
        return vb_err_set(err, "%s: decoder Strip start %s is not a count from 0 to 1024", file,
                          tok_json_text(start, text));
    if (!content || strcmp(content, " ") != 0 || (stop && !(json_is_integer(stop) && json_integer_value(stop) == 0)))
        return vb_err_set(err, "%s: decoder Strip of anything but leading spaces (content ' ', stop 0) is not "
                               "supported", file);
    tok->sp_strip_start = (int)json_integer_value(start);
    return 0;
}

/* The token string HF's decoders see for id: an added token's content; a
 * vocab token as the file keys it (byte-level: the GPT-2 map applied
 * again, since without the ByteLevel decoder HF leaves it mapped). */
static char *token_string(const tokenizer *tok, int32_t id, size_t *n)
{
    const char *p = (tok->flags[id] & TOKF_ADDED) ? tok->dec[id] : tok->piece[id];
    size_t len = (tok->flags[id] & TOKF_ADDED) ? tok->dec_len[id] : tok->piece_len[id];
    bool map = tok->byte_level && !(tok->flags[id] & TOKF_ADDED);
    char *s = malloc(2 * len + 1);
    if (!s)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t cp = map ? tok_byte_to_cp((unsigned char)p[i]) : (unsigned char)p[i];
        if (cp < 0x80 || !map) {
            s[o++] = (char)cp;
        } else { /* below U+0800: two bytes */
            s[o++] = (char)(0xC0 | (cp >> 6));
            s[o++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    s[o] = 0;
    *n = o;
    return s;
}

/* Every `from` in s replaced by `to`, s freed; NULL when out of memory. */
static char *replace_in(char *s, size_t *n, const char *from, const char *to)
{
    if (!s)
        return NULL;
    size_t out_n = 0;
    char *r = tok_replace_all(s, *n, from, strlen(from), to, strlen(to), &out_n);
    free(s);
    *n = out_n;
    return r;
}

/* HF's WordPiece decoder cleanup: spaces before punctuation and
 * contractions, in HF's order. */
static char *wordpiece_cleanup(char *s, size_t *n)
{
    static const char *const pairs[][2] = {
        {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"}, {" 'm", "'m"},
        {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
    for (size_t k = 0; s && k < sizeof pairs / sizeof pairs[0]; k++)
        s = replace_in(s, n, pairs[k][0], pairs[k][1]);
    return s;
}

/* One id's two texts: dec (a token in the middle) and dec_alt (the last
 * token for BPEDecoder, the first for WordPiece). */
static int context_texts(const tokenizer *tok, int32_t id, const char *affix, bool cleanup, char **mid,
                         size_t *mid_n, char **alt, size_t *alt_n)
{
    size_t n = 0;
    char *base = token_string(tok, id, &n);
    if (!base)
        return -1;
    if (tok->dec_kind == DEC_BPE_SUFFIX) {
        size_t m = n;
        char *copy = malloc(n + 1);
        if (copy)
            memcpy(copy, base, n + 1);
        *mid = replace_in(base, &m, affix, " ");
        *mid_n = m;
        *alt = replace_in(copy, &n, affix, "");
        *alt_n = n;
    } else {
        size_t la = strlen(affix), m = n;
        /* the first token as it is; any other loses its prefix, or gets a space */
        char *rest = malloc(n + 2);
        if (rest) {
            bool prefixed = la <= n && memcmp(base, affix, la) == 0;
            if (prefixed) {
                memcpy(rest, base + la, n - la + 1);
                m = n - la;
            } else {
                rest[0] = ' ';
                memcpy(rest + 1, base, n + 1);
                m = n + 1;
            }
        }
        *alt = cleanup ? wordpiece_cleanup(base, &n) : base;
        *alt_n = n;
        *mid = rest && cleanup ? wordpiece_cleanup(rest, &m) : rest;
        *mid_n = m;
    }
    return *mid && *alt ? 0 : -1;
}

/* BPEDecoder and WordPiece: both texts of every id, computed once. */
static int load_context_decoder(tokenizer *tok, tok_dec_kind kind, const char *affix, bool cleanup,
                                const char *file, vb_err *err)
{
    tok->dec_kind = kind;
    tok->dec_alt = calloc((size_t)tok->n_vocab, sizeof *tok->dec_alt);
    tok->dec_alt_len = calloc((size_t)tok->n_vocab, sizeof *tok->dec_alt_len);
    if (!tok->dec_alt || !tok->dec_alt_len)
        return vb_err_set(err, "%s: out of memory", file);
    for (int32_t id = 0; id < tok->n_vocab; id++) {
        if (!tok->dec[id])
            continue;
        char *mid = NULL, *alt = NULL;
        size_t mid_n = 0, alt_n = 0;
        if (context_texts(tok, id, affix, cleanup, &mid, &mid_n, &alt, &alt_n) < 0) {
            free(mid);
            free(alt);
            return vb_err_set(err, "%s: out of memory", file);
        }
        if (tok->dec[id] != tok->piece[id])
            free(tok->dec[id]);
        tok->dec[id] = mid;
        tok->dec_len[id] = (uint32_t)mid_n;
        tok->dec_alt[id] = alt;
        tok->dec_alt_len[id] = (uint32_t)alt_n;
    }
    return 0;
}

/* An optional string option of a decoder, dflt when absent. */
static int decoder_string(const json_t *j, const char *key, const char *dflt, const char **out, const char *type,
                          const char *file, vb_err *err)
{
    const json_t *v = json_object_get(j, key);
    if (v && !json_is_string(v))
        return vb_err_set(err, "%s: decoder %s: %s is not a string", file, type, key);
    *out = v ? json_string_value(v) : dflt;
    return 0;
}

int tok_decoder_load(tokenizer *tok, const json_t *j, const char *file, vb_err *err)
{
    if (!j || json_is_null(j)) {
        tok->dec_kind = tok->byte_level ? DEC_BYTE_LEVEL : DEC_SENTENCEPIECE;
        return 0;
    }
    const char *type = tok_json_type(j);
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
    if (strcmp(type, "BPEDecoder") == 0) {
        const char *suffix = NULL;
        if (decoder_string(j, "suffix", "</w>", &suffix, type, file, err) < 0)
            return -1;
        if (!*suffix) /* replacing "" would put text between every character */
            return vb_err_set(err, "%s: decoder BPEDecoder with an empty suffix is not supported", file);
        return load_context_decoder(tok, DEC_BPE_SUFFIX, suffix, false, file, err);
    }
    if (strcmp(type, "WordPiece") == 0) {
        const char *prefix = NULL;
        const json_t *cleanup = json_object_get(j, "cleanup");
        if (decoder_string(j, "prefix", "##", &prefix, type, file, err) < 0)
            return -1;
        if (cleanup && !json_is_boolean(cleanup))
            return vb_err_set(err, "%s: decoder WordPiece: cleanup is not true or false", file);
        return load_context_decoder(tok, DEC_WORDPIECE, prefix, !cleanup || json_is_true(cleanup), file, err);
    }
    if (strcmp(type, "Sequence") == 0) {
        tok->dec_kind = DEC_SENTENCEPIECE;
        size_t i;
        const json_t *v;
        json_array_foreach(json_object_get(j, "decoders"), i, v) {
            const char *t = tok_json_type(v);
            if (strcmp(t, "Strip") == 0) {
                if (load_strip(tok, v, file, err) < 0)
                    return -1;
            } else if (strcmp(t, "ByteFallback") == 0) {
                tok->dec_byte_fallback = true; /* its rule for invalid runs: tok_decode.c */
            } else if (strcmp(t, "Replace") == 0 || strcmp(t, "Fuse") == 0) {
                continue; /* what DEC_SENTENCEPIECE does */
            } else if (strcmp(t, "ByteLevel") == 0) {
                tok->dec_kind = DEC_BYTE_LEVEL;
            } else {
                return vb_err_set(err, "%s: decoder '%s' in a Sequence is not supported", file, t);
            }
        }
        return 0;
    }
    return vb_err_set(err, "%s: decoder '%s' is not supported (ByteLevel, Metaspace, BPEDecoder, WordPiece, "
                           "SentencePiece Sequence are)", file, type);
}

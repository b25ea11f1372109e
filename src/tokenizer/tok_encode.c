/* Text -> ids: added tokens first (normalized=false ones on the raw text),
 * then per remaining segment normalise, find the normalized=true added tokens
 * in the normalised text, pre-tokenize (regex split or Metaspace) and BPE
 * each piece between them. The order and the per-segment normalisation
 * follow HF tokenizers (AddedVocabulary::extract_and_normalize), so ids
 * match it. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Pre-tokenizes and BPEs one normalised piece; takes ownership of buf.
 * first: the piece starts the input (Metaspace prepend_scheme "first"). */
static int encode_normalized(const tokenizer *tok, char *buf, size_t len, bool first, pcre2_match_data *md,
                             tok_ids *out)
{
    int rc = tok_pretok_run(tok, buf, len, first, md, out);
    free(buf);
    return rc;
}

/* Longest added token of one index (raw or normalized) whose match text
 * starts at s[i], or NULL. */
static const tok_added *added_at(const tokenizer *tok, uint32_t *const *by_byte, const uint32_t *n_by_byte,
                                 const char *s, size_t n, size_t i)
{
    unsigned char c = (unsigned char)s[i];
    for (uint32_t k = 0; k < n_by_byte[c]; k++) {
        const tok_added *a = &tok->added[by_byte[c][k]];
        if (a->match_len <= n - i && memcmp(s + i, a->match, a->match_len) == 0)
            return a;
    }
    return NULL;
}

/* Splits s at the added tokens of one index, leftmost-longest, with their
 * lstrip/rstrip eating the whitespace beside them. Calls piece() for each
 * stretch between (possibly empty; at = its offset in s) and pushes each
 * token's id. */
typedef int (*piece_fn)(const tokenizer *tok, const char *s, size_t n, size_t at, bool first,
                        pcre2_match_data *md, tok_ids *out);
static int split_added(const tokenizer *tok, uint32_t *const *by_byte, const uint32_t *n_by_byte, const char *s,
                       size_t len, bool first, piece_fn piece, pcre2_match_data *md, tok_ids *out)
{
    size_t seg = 0, i = 0;
    int rc = 0;
    while (i < len && rc == 0) {
        const tok_added *a = n_by_byte[(unsigned char)s[i]] ? added_at(tok, by_byte, n_by_byte, s, len, i) : NULL;
        if (!a) {
            i++;
            continue;
        }
        size_t ms = i, me = i + a->match_len;
        if (a->lstrip)
            while (ms > seg && is_space((unsigned char)s[ms - 1]))
                ms--;
        if (a->rstrip)
            while (me < len && is_space((unsigned char)s[me]))
                me++;
        rc = piece(tok, s + seg, ms - seg, seg, first, md, out);
        if (rc == 0)
            rc = tok_ids_push(out, a->id);
        seg = i = me;
    }
    if (rc == 0)
        rc = piece(tok, s + seg, len - seg, seg, first, md, out);
    return rc;
}

/* A piece of normalised text between normalized=true added tokens. HF's
 * Metaspace "first" prepends only to the piece at the input's start. */
static int normalized_piece(const tokenizer *tok, const char *s, size_t n, size_t at, bool first,
                            pcre2_match_data *md, tok_ids *out)
{
    char *buf = malloc(n + 1);
    if (!buf)
        return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    return encode_normalized(tok, buf, n, first && at == 0, md, out);
}

/* A stretch of raw text between normalized=false added tokens: normalised
 * as a whole (a Prepend normalizer prepends once per stretch), then split at
 * the normalized=true added tokens. first: the stretch starts the input. */
static int raw_segment(const tokenizer *tok, const char *s, size_t n, size_t at, bool first,
                       pcre2_match_data *md, tok_ids *out)
{
    if (n == 0)
        return 0;
    char *buf;
    size_t len;
    if (tok_normalize(tok, s, n, &buf, &len) < 0)
        return -1;
    if (!tok->n_norm_added)
        return encode_normalized(tok, buf, len, first && at == 0, md, out);
    int rc = split_added(tok, tok->norm_added_by_byte, tok->n_norm_added_by_byte, buf, len, first && at == 0,
                         normalized_piece, md, out);
    free(buf);
    return rc;
}

int tokenizer_encode(const tokenizer *tok, const char *text, size_t len, bool add_special, tok_ids *out,
                     vb_err *err)
{
    size_t bad = tok_utf8_check(text, len);
    if (bad < len)
        return vb_err_set(err, "invalid UTF-8 at byte %zu (0x%02X)", bad + 1,
                          (unsigned char)text[bad]);
    size_t start_n = out->n;
    /* one pair: the splits need only the whole match */
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    int rc = md ? 0 : -1;
    for (size_t k = 0; add_special && k < tok->n_post_prefix && rc == 0; k++)
        rc = tok_ids_push(out, tok->post_prefix[k]);
    if (rc == 0)
        rc = split_added(tok, tok->raw_added_by_byte, tok->n_raw_added_by_byte, text, len, true, raw_segment, md,
                         out);
    for (size_t k = 0; add_special && k < tok->n_post_suffix && rc == 0; k++)
        rc = tok_ids_push(out, tok->post_suffix[k]);
    if (md)
        pcre2_match_data_free(md);
    if (rc < 0) {
        out->n = start_n;
        return vb_err_set(err, "out of memory, a character the vocabulary cannot encode, or the "
                               "pre-tokenizer regex over its match limit");
    }
    return 0;
}

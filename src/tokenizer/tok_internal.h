/* The tokenizer's insides, shared by the files of src/tokenizer only. */
#ifndef VB_TOK_INTERNAL_H
#define VB_TOK_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>

#include "tokenizer/tok_hash.h"
#include "tokenizer/tokenizer.h"

/* One added token (tokenizer.json "added_tokens"), found in the text before
 * BPE as HF finds it: normalized=false ones on the raw text first; then, in
 * each stretch between those, after normalisation, the normalized=true ones,
 * whose `match` is their content run through the same normalizer. */
typedef struct tok_added {
    char *content;
    size_t len;
    char *match;      /* the text it is found as: content, or normalize(content) */
    size_t match_len;
    int32_t id;
    bool special, lstrip, rstrip, normalized;
} tok_added;

/* A normalizer step; a Sequence is a list of these, applied in order. */
typedef enum {
    NORM_NFC, NORM_NFD, NORM_NFKC, NORM_NFKD, NORM_LOWERCASE, NORM_STRIP, NORM_PREPEND, NORM_REPLACE
} tok_norm_kind;
typedef struct tok_norm {
    tok_norm_kind kind;
    char *a, *b;                 /* PREPEND: a = text; REPLACE: a -> b */
    pcre2_code *re;              /* REPLACE with a Regex pattern: its matches -> b */
    bool strip_left, strip_right; /* STRIP */
} tok_norm;

/* The decoder, as what is done to each id's text (tok_postdec.c):
 * BYTE_LEVEL and SENTENCEPIECE decode each id to fixed bytes (the latter
 * then strips leading spaces once); BPE_SUFFIX (HF's BPEDecoder) turns the
 * model's end_of_word_suffix into a space, or into nothing on the last
 * token; WORDPIECE drops the continuing prefix, or puts a space before a
 * token without it, except on the first token (then its cleanup). The two
 * context-dependent ones keep a second text per id in dec_alt: the last
 * token's (BPE_SUFFIX) or the first token's (WORDPIECE). */
typedef enum { DEC_BYTE_LEVEL, DEC_SENTENCEPIECE, DEC_BPE_SUFFIX, DEC_WORDPIECE } tok_dec_kind;

/* How a split step keeps what its regex matched (HF's SplitDelimiterBehavior). */
typedef enum { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS } tok_split_behavior;
/* One pre-tokenizer step: a regex split (Split, Digits, Whitespace,
 * WhitespaceSplit, Punctuation), ByteLevel (an optional prefix space, then
 * its GPT-2 regex when use_regex), or Metaspace. */
typedef enum { PT_SPLIT, PT_BYTE_LEVEL, PT_METASPACE } tok_pt_kind;
typedef struct tok_pretok {
    tok_pt_kind kind;
    pcre2_code *re;        /* NULL: no split (ByteLevel without regex, Metaspace without split) */
    tok_split_behavior behavior;
    bool invert;
    bool add_prefix_space; /* ByteLevel */
    char *repl;            /* Metaspace replacement */
    int prepend;           /* Metaspace: 0 never, 1 first, 2 always */
} tok_pretok;

struct tokenizer {
    int32_t n_vocab;       /* highest id + 1 */
    char **piece;          /* id -> token bytes as keyed in `vocab` (raw bytes for byte-level) */
    uint32_t *piece_len;
    char **dec;            /* id -> bytes it decodes to */
    uint32_t *dec_len;
    unsigned char *flags;  /* TOKF_* per id */
    tok_str_map vocab;     /* piece -> id, added tokens included */
    tok_pair_map merges;   /* (left, right) -> rank, merged id */

    /* model: BPE */
    bool byte_level;       /* pieces are byte-level (GPT-2 byte<->char map) */
    bool byte_fallback, fuse_unk, ignore_merges;
    bool dec_byte_fallback; /* the decoder has ByteFallback: <0xNN> runs decode as it says */
    int32_t unk_id;        /* -1 when none */
    /* continuing_subword_prefix (on every character but a word's first) and
     * end_of_word_suffix (on its last), as piece bytes (byte-level: the
     * GPT-2 map undone); NULL when absent or empty */
    char *csp, *eow;
    size_t csp_len, eow_len;
    int32_t byte_id[256];  /* byte-level: id of byte b; byte fallback: id of <0xNN>; -1 absent */
    int32_t ascii_id[128]; /* id of the one-character piece c (vocab lookup of it; -1 absent) */

    tok_norm *norm;
    size_t n_norm;

    tok_pretok *pretok;    /* pre-tokenizer steps, applied in order (tok_pretok.c) */
    size_t n_pretok;
    char *ms_repl;         /* a Metaspace step's replacement ("\u2581"), which pieces decode back to ' ' */

    tok_dec_kind dec_kind;
    int sp_strip_start;    /* SentencePiece decoder: leading spaces stripped once */
    char **dec_alt;        /* BPE_SUFFIX: id's text as the last token; WORDPIECE: as the first */
    uint32_t *dec_alt_len;

    /* what the post_processor adds (TemplateProcessing single,
     * RobertaProcessing's cls and sep), each processor of a Sequence
     * around what the ones before it made */
    int32_t post_prefix[8], post_suffix[8];
    size_t n_post_prefix, n_post_suffix;

    tok_added *added;
    size_t n_added;
    /* added tokens by first byte of `match`, longest first, so a scan tries
     * few: raw_* the normalized=false ones, norm_* the normalized=true ones */
    uint32_t *raw_added_by_byte[256];
    uint32_t n_raw_added_by_byte[256];
    uint32_t *norm_added_by_byte[256];
    uint32_t n_norm_added_by_byte[256];
    size_t n_norm_added;

    char *chat_template, *bos_token, *eos_token;
    char *chat_template_tool_use; /* a chat_template list's "tool_use" entry, or NULL */
    /* why tokenizer_config.json's chat_template was not taken, when it is
     * there but not a string or a list holding a "default" template */
    char chat_template_problem[96];
    int32_t eos_ids[VB_TOKENIZER_MAX_EOS];
    size_t n_eos;
};

#define TOKF_SPECIAL 1u
#define TOKF_ADDED 2u
#define TOKF_BYTE 4u /* a <0xNN> byte-fallback piece: dec is the one byte */

/* BPE on one pre-token (bytes), appending ids. Merges by rank with a heap:
 * O(n log n) in the word's length. */
int tok_bpe_word(const tokenizer *tok, const char *w, size_t n, tok_ids *out);

/* Pre-tokenizes s (normalised text) and BPEs each piece (tok_pretok.c).
 * at_start: s begins the input (Metaspace's prepend_scheme "first"). md:
 * match data of at least one pair. -1: out of memory, a regex over its
 * match limit, or a character the vocabulary cannot encode. */
int tok_pretok_run(const tokenizer *tok, const char *s, size_t n, bool at_start, pcre2_match_data *md,
                   tok_ids *out);
/* tokenizer.json's "pre_tokenizer" into tok->pretok; refuses what is not
 * supported, naming it. */
int tok_pretok_load(tokenizer *tok, const json_t *j, const char *file, vb_err *err);
void tok_pretok_free(tokenizer *tok);
/* Every `from` (lf bytes, lf > 0) replaced by `to`: a malloc'd string. */
char *tok_replace_all(const char *s, size_t n, const char *from, size_t lf, const char *to, size_t lt,
                      size_t *out_n);

/* HF's find_matches over a regex (tok_pretok.c): s cut into spans, each
 * a match or a gap between matches, in order; an empty match counts
 * (except right at the previous match's end), as onig's find_iter has it.
 * -1: out of memory or the regex over its match limit. */
typedef struct tok_span {
    size_t s, e;
    bool match;
} tok_span;
typedef struct tok_spans {
    tok_span *a;
    size_t n, cap;
} tok_spans;
int tok_find_matches(const pcre2_code *re, const char *s, size_t n, pcre2_match_data *md, tok_spans *out);
/* Compiles a tokenizer.json Regex pattern as HF's onig reads it (UTF,
 * Unicode properties), JIT when it can; what names the part in the error. */
int tok_compile_re(pcre2_code **out, const char *pattern, const char *what, const char *file, vb_err *err);

/* Runs the normalizer steps on s (tok_norm.c); *buf is malloc'd. */
int tok_normalize(const tokenizer *tok, const char *s, size_t n, char **buf, size_t *len);

/* Appends to a tok_ids; -1 on out of memory. */
int tok_ids_push(tok_ids *v, int32_t id);

/* UTF-8 helpers (tok_utf8.c). */
/* Offset of the first invalid byte, or len when all is valid UTF-8. */
size_t tok_utf8_check(const char *s, size_t len);
/* Length of a valid UTF-8 sequence that starts with byte c (1..4), 0 if not a lead. */
int tok_utf8_seq_len(unsigned char c);
/* Replaces bytes that are not UTF-8 with U+FFFD (maximal subparts, as Rust's
 * from_utf8_lossy). Returns a malloc'd string. */
char *tok_utf8_lossy(const char *s, size_t len, size_t *out_len);
/* The same, appended at out + *out_len (room for 3 x len bytes), for text
 * that comes in pieces: unless final, a sequence valid so far but cut by
 * the end is left for the next piece. Returns the bytes consumed; the
 * result over all pieces is tok_utf8_lossy's over their concatenation. */
size_t tok_utf8_lossy_into(const char *s, size_t len, bool final, char *out, size_t *out_len);

/* Unicode from utf8proc (tok_unicode.c), on valid UTF-8, into malloc'd
 * buffers; NULL when out of memory. form: NORM_NFC, _NFD, _NFKC, _NFKD. */
char *tok_unicode_form(tok_norm_kind form, const char *s, size_t len, size_t *out_len);
char *tok_nfc(const char *s, size_t len, size_t *out_len);
char *tok_lowercase(const char *s, size_t len, size_t *out_len);
bool tok_is_white_space(uint32_t cp);
size_t tok_utf8_next(const char *s, size_t len, size_t i, uint32_t *cp);

/* tokenizer.json's "normalizer" into tok->norm (tok_norm.c); refuses what
 * is not supported, naming it. */
int tok_norm_load(tokenizer *tok, const json_t *j, const char *file, vb_err *err);

/* tokenizer.json's "post_processor" and "decoder" (tok_postdec.c), loaded
 * after the vocabulary and the added tokens; refuse what is not supported,
 * naming it. */
int tok_post_processor_load(tokenizer *tok, const json_t *j, const char *file, vb_err *err);
int tok_decoder_load(tokenizer *tok, const json_t *j, const char *file, vb_err *err);

/* Shared by the loaders (tok_load.c). */
const char *tok_json_type(const json_t *j);
/* s[0..n) fit for a one-line message (at most 64 bytes, control bytes '?'). */
const char *tok_shown(const char *s, size_t n, char buf[static 72]);
/* A JSON value as the file spells it, for messages. */
const char *tok_json_text(const json_t *v, char buf[static 72]);
/* A token id in [0, limit), or an error naming file, where and token. */
int tok_read_id(const json_t *v, int64_t limit, const char *file, const char *where, const char *token,
                int32_t *id, vb_err *err);
/* GPT-2's byte -> code point map (byte-level vocabularies). */
uint32_t tok_byte_to_cp(unsigned char b);

#endif

/* The tokenizer's insides, shared by the files of src/tokenizer only. */
#ifndef VB_TOK_INTERNAL_H
#define VB_TOK_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
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
typedef enum { NORM_NFC, NORM_PREPEND, NORM_REPLACE } tok_norm_kind;
typedef struct tok_norm {
    tok_norm_kind kind;
    char *a, *b; /* PREPEND: a = text; REPLACE: a -> b */
} tok_norm;

typedef enum { DEC_BYTE_LEVEL, DEC_SENTENCEPIECE } tok_dec_kind;

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
    int32_t unk_id;        /* -1 when none */
    int32_t byte_id[256];  /* byte-level: id of byte b; byte fallback: id of <0xNN>; -1 absent */
    int32_t ascii_id[128]; /* id of the one-character piece c (vocab lookup of it; -1 absent) */

    tok_norm *norm;
    size_t n_norm;

    /* pre-tokenizer */
    pcre2_code *split_re;  /* Split (Isolated) or ByteLevel(use_regex) regex, or NULL */
    bool add_prefix_space; /* ByteLevel */
    bool metaspace;        /* Metaspace pre-tokenizer */
    char *ms_repl;         /* its replacement ("▁") */
    int ms_prepend;        /* 0 never, 1 first, 2 always */
    bool ms_split;

    tok_dec_kind dec_kind;
    int sp_strip_start;    /* SentencePiece decoder: leading spaces stripped once */

    int32_t post_prefix[4], post_suffix[4]; /* TemplateProcessing single */
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
    int32_t eos_ids[16];
    size_t n_eos;
};

#define TOKF_SPECIAL 1u
#define TOKF_ADDED 2u
#define TOKF_BYTE 4u /* a <0xNN> byte-fallback piece: dec is the one byte */

/* BPE on one pre-token (bytes), appending ids. Merges by rank with a heap:
 * O(n log n) in the word's length. */
int tok_bpe_word(const tokenizer *tok, const char *w, size_t n, tok_ids *out);

/* Runs the normalizer steps on s (tok_encode.c); *buf is malloc'd. */
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

/* NFC of s (valid UTF-8) into a malloc'd buffer (tok_nfc.c). */
char *tok_nfc(const char *s, size_t len, size_t *out_len);

#endif

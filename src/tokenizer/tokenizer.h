/* Text <-> token ids, from a Hugging Face model directory's tokenizer.json.
 *
 * Prompts come in as UTF-8 text and leave as ids (tokenizer_encode); sampled
 * ids go back to text (tokenizer_decode for a whole sequence, tok_stream for
 * a completion that grows one id at a time and must never emit half a
 * character). Supported: byte-level BPE and SentencePiece-style BPE with
 * byte fallback, continuing_subword_prefix and end_of_word_suffix, with
 * the file's added/special tokens; normalizers NFC, NFD, NFKC, NFKD,
 * Lowercase, Strip, Prepend, Replace (String or Regex) and Sequence
 * (tok_norm.c); pre-tokenizers ByteLevel, Split (every behavior, invert),
 * Digits, Metaspace, Whitespace, WhitespaceSplit, Punctuation and Sequence
 * (tok_pretok.c); post-processors TemplateProcessing, ByteLevel,
 * RobertaProcessing, Sequence and decoders ByteLevel, Metaspace,
 * BPEDecoder, WordPiece and the SentencePiece Sequence (tok_postdec.c).
 * Anything else is a load error that names the part of tokenizer.json we
 * do not support.
 *
 * A loaded tokenizer is read-only: any number of threads may encode and
 * decode with it at once. */
#ifndef VB_TOKENIZER_H
#define VB_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/errors.h"

typedef struct tokenizer tokenizer;

/* A growable id array; encode appends to it. Zero-initialise, free ids. */
typedef struct tok_ids {
    int32_t *ids;
    size_t n, cap;
} tok_ids;

/* Loads DIR/tokenizer.json plus, when present, tokenizer_config.json (chat
 * template, eos token) and generation_config.json (eos ids). NULL + err. */
tokenizer *tokenizer_load(const char *model_dir, vb_err *err);
/* tokenizer.json's text alone (no config files), as the fuzzer feeds it;
 * name stands for the file in messages. NULL + err. Every id in the file
 * (model.vocab, added_tokens, template ids) must be a JSON integer from 0
 * to below min(2^24, 2 * the file's token count + 1024), or the load is
 * refused naming the token. */
tokenizer *tokenizer_load_json(const char *json, size_t len, const char *name, vb_err *err);
void tokenizer_free(tokenizer *tok);

/* Appends the ids of text[0..len) to out. add_special adds what the file's
 * post_processor adds (Llama 2's <s>), as HF encode(add_special_tokens=True)
 * does. Invalid UTF-8 returns -1 with the byte offset in err (the row
 * becomes an error row); nothing is appended then. */
int tokenizer_encode(const tokenizer *tok, const char *text, size_t len, bool add_special,
                     tok_ids *out, vb_err *err);

/* Whole-sequence decode into a malloc'd NUL-terminated string (*out_len
 * without the NUL). Bytes that do not form UTF-8 become U+FFFD, as HF does.
 * Ids out of range are an error. */
int tokenizer_decode(const tokenizer *tok, const int32_t *ids, size_t n, bool skip_special,
                     char **out, size_t *out_len, vb_err *err);

int32_t tokenizer_vocab_size(const tokenizer *tok); /* highest id + 1 */
bool tokenizer_is_special(const tokenizer *tok, int32_t id);
/* Whether id has a token: below tokenizer_vocab_size and not an id that
 * tokenizer.json leaves unassigned (its ids need not be contiguous). */
bool tokenizer_has_id(const tokenizer *tok, int32_t id);
/* Id of an exact token string (vocab or added), or -1. */
int32_t tokenizer_token_id(const tokenizer *tok, const char *s);
/* End-of-sequence ids: generation_config.json's eos_token_id (int or
 * list) plus tokenizer_config.json's eos_token, without duplicates. */
size_t tokenizer_eos_ids(const tokenizer *tok, const int32_t **ids);
/* at most this many (more in generation_config.json is refused) */
#define VB_TOKENIZER_MAX_EOS 64
/* tokenizer_config.json's chat_template text, or NULL. */
const char *tokenizer_chat_template_text(const tokenizer *tok);
/* When that is NULL although tokenizer_config.json has a chat_template:
 * why it was not taken (for the error of a --chat run); else NULL. */
const char *tokenizer_chat_template_problem(const tokenizer *tok);
/* A chat_template list's "tool_use" template (the one transformers renders
 * with when tools are given), or NULL. */
const char *tokenizer_chat_template_tool_use(const tokenizer *tok);
/* bos/eos token strings from tokenizer_config.json (NULL when absent). */
const char *tokenizer_bos_token(const tokenizer *tok);
const char *tokenizer_eos_token(const tokenizer *tok);

/* Incremental decoding for one request. Push each sampled id; what comes
 * back is only whole UTF-8 characters, so streamed text never splits one.
 * Special tokens are skipped (skip_special) as in tokenizer_decode. */
/* A run of <0xNN> byte tokens is held this many bytes at most: a full one
 * gives out its valid characters and keeps the rest (tokenizer_decode the
 * same, so streamed and whole text agree; HF's rule for the whole run
 * differs only where a run past this holds an invalid byte). Small: every
 * sequence of a run has a stream. */
#define TOK_BYTE_RUN_MAX 32

typedef struct tok_stream {
    const tokenizer *tok;
    bool skip_special;
    bool started;        /* a token has been emitted (SentencePiece strips one leading space;
                            WordPiece puts none before the first) */
    bool has_held;       /* BPEDecoder: held is pushed but not emitted, since its */
    int32_t held;        /* suffix becomes a space unless it is the last token */
    unsigned char pending[8];
    size_t n_pending;    /* bytes of an unfinished character */
    unsigned char run[TOK_BYTE_RUN_MAX]; /* a ByteFallback decoder's run of <0xNN> bytes */
    size_t n_run;
} tok_stream;

void tok_stream_init(tok_stream *s, const tokenizer *tok, bool skip_special);
/* Appends the newly complete text for id to *buf (malloc'd, grown as
 * needed; *len and *cap track it). Returns bytes appended, or -1 for an id
 * out of range. With a BPEDecoder a token's text comes one push late (or
 * at finish): its suffix is a space unless it is the last token. */
long tok_stream_push(tok_stream *s, int32_t id, char **buf, size_t *len, size_t *cap);
/* At the end of a request: flushes an unfinished character as U+FFFD. */
long tok_stream_finish(tok_stream *s, char **buf, size_t *len, size_t *cap);
/* The text tok_stream_finish would add if the request ended now, short of
 * an unfinished character (the end of the whole decode of the ids so far):
 * a <0xNN> run, a BPEDecoder's held token. Appended to *buf as by push;
 * s is unchanged. Returns the bytes appended (0, buf untouched, when the
 * stream holds neither), or -1 when out of memory. */
long tok_stream_peek_end(const tok_stream *s, char **buf, size_t *len, size_t *cap);

#endif

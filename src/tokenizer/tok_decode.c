/* Ids -> text, whole (tokenizer_decode) or one id at a time (tok_stream),
 * plus the small read-only accessors. Each id's bytes are precomputed at
 * load, so decoding is concatenation plus UTF-8 repair. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

int32_t tokenizer_vocab_size(const tokenizer *tok) { return tok->n_vocab; }

bool tokenizer_is_special(const tokenizer *tok, int32_t id)
{
    return id >= 0 && id < tok->n_vocab && (tok->flags[id] & TOKF_SPECIAL);
}

bool tokenizer_has_id(const tokenizer *tok, int32_t id)
{
    return id >= 0 && id < tok->n_vocab && tok->dec[id];
}

int32_t tokenizer_token_id(const tokenizer *tok, const char *s)
{
    for (size_t i = 0; i < tok->n_added; i++)
        if (strcmp(tok->added[i].content, s) == 0)
            return tok->added[i].id;
    return tok_str_map_get(&tok->vocab, s, strlen(s));
}

size_t tokenizer_eos_ids(const tokenizer *tok, const int32_t **ids)
{
    *ids = tok->eos_ids;
    return tok->n_eos;
}

const char *tokenizer_chat_template_text(const tokenizer *tok) { return tok->chat_template; }
const char *tokenizer_chat_template_tool_use(const tokenizer *tok)
{
    return tok->chat_template_tool_use;
}
const char *tokenizer_chat_template_problem(const tokenizer *tok)
{
    return tok->chat_template_problem[0] ? tok->chat_template_problem : NULL;
}
const char *tokenizer_bos_token(const tokenizer *tok) { return tok->bos_token; }
const char *tokenizer_eos_token(const tokenizer *tok) { return tok->eos_token; }

static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    char *p = realloc(*buf, c);
    if (!p)
        return -1;
    *buf = p;
    *cap = c;
    return 0;
}

/* Id's text; alt: its other text for BPEDecoder (as the last token) and
 * WordPiece (as the first), the same text for the other decoders. */
static void id_text(const tokenizer *tok, int32_t id, bool alt, const char **b, size_t *n)
{
    bool use_alt = alt && tok->dec_alt;
    *b = use_alt ? tok->dec_alt[id] : tok->dec[id];
    *n = use_alt ? tok->dec_alt_len[id] : tok->dec_len[id];
}

/* Whether id is a <0xNN> token that a ByteFallback decoder gathers into
 * runs. */
static bool in_byte_run(const tokenizer *tok, int32_t id)
{
    return tok->dec_byte_fallback && (tok->flags[id] & TOKF_BYTE);
}

/* HF's ByteFallback decoder on a run of <0xNN> tokens: their bytes when
 * they are valid UTF-8 together, else one U+FFFD per token (the valid
 * characters among them too). Writes at most 3 n bytes to out; returns
 * how many. */
static size_t byte_run_text(const unsigned char *run, size_t n, char *out)
{
    if (n == 0)
        return 0;
    if (tok_utf8_check((const char *)run, n) == n) {
        memcpy(out, run, n);
        return n;
    }
    for (size_t k = 0; k < n; k++)
        memcpy(out + 3 * k, "\xEF\xBF\xBD", 3);
    return 3 * n;
}

/* A full run (n_run == TOK_BYTE_RUN_MAX) makes room: its valid prefix goes
 * to out as text (a long run of valid characters, as CJK text is on a
 * SentencePiece model, is never cut inside a character), or, when it
 * starts with an invalid byte, the whole run by the ByteFallback rule.
 * Returns the bytes written; *n_run is what stays. */
static size_t byte_run_make_room(unsigned char *run, size_t *n_run, char *out)
{
    size_t ok = tok_utf8_check((const char *)run, *n_run);
    if (ok == 0) {
        size_t w = byte_run_text(run, *n_run, out);
        *n_run = 0;
        return w;
    }
    memcpy(out, run, ok);
    memmove(run, run + ok, *n_run - ok);
    *n_run -= ok;
    return ok;
}

int tokenizer_decode(const tokenizer *tok, const int32_t *ids, size_t n, bool skip_special, char **out,
                     size_t *out_len, vb_err *err)
{
    size_t total = 0, first = n, last = n; /* the first and last tokens decoded (not skipped) */
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= tok->n_vocab || !tok->dec[ids[i]])
            return vb_err_set(err, "token id %d at position %zu is outside the vocabulary (0..%d)", ids[i], i,
                              tok->n_vocab - 1);
        total += tok->dec_len[ids[i]] + (tok->dec_alt ? tok->dec_alt_len[ids[i]] : 0);
        if (!(skip_special && (tok->flags[ids[i]] & TOKF_SPECIAL))) {
            first = first == n ? i : first;
            last = i;
        }
    }
    char *raw = malloc(3 * total + 1); /* a byte token may become U+FFFD */
    if (!raw)
        return vb_err_set(err, "out of memory decoding %zu ids", n);
    size_t o = 0, n_run = 0;
    unsigned char run[TOK_BYTE_RUN_MAX];
    for (size_t i = 0; i < n; i++) {
        if (skip_special && (tok->flags[ids[i]] & TOKF_SPECIAL))
            continue;
        if (in_byte_run(tok, ids[i])) { /* gathered, decoded when the run ends */
            if (n_run == TOK_BYTE_RUN_MAX)
                o += byte_run_make_room(run, &n_run, raw + o);
            run[n_run++] = (unsigned char)tok->dec[ids[i]][0];
            continue;
        }
        o += byte_run_text(run, n_run, raw + o);
        n_run = 0;
        const char *b;
        size_t len;
        id_text(tok, ids[i], tok->dec_kind == DEC_BPE_SUFFIX ? i == last : i == first, &b, &len);
        memcpy(raw + o, b, len);
        o += len;
    }
    o += byte_run_text(run, n_run, raw + o);
    size_t start = 0;
    if (tok->dec_kind == DEC_SENTENCEPIECE) /* the Strip decoder, once on the fused text */
        while ((int)start < tok->sp_strip_start && start < o && raw[start] == ' ')
            start++;
    *out = tok_utf8_lossy(raw + start, o - start, out_len);
    free(raw);
    return *out ? 0 : vb_err_set(err, "out of memory decoding %zu ids", n);
}

void tok_stream_init(tok_stream *s, const tokenizer *tok, bool skip_special)
{
    memset(s, 0, sizeof *s);
    s->tok = tok;
    s->skip_special = skip_special;
    s->held = -1;
}

/* Emits the characters of pending+bytes, keeping a sequence that the next
 * bytes may still finish: the same text, U+FFFD for U+FFFD, as decoding
 * all the bytes at once (tok_utf8_lossy's maximal subparts). */
static long emit(tok_stream *s, const char *bytes, size_t n, char **buf, size_t *len, size_t *cap, bool final)
{
    size_t before = *len, m = s->n_pending + n;
    if (grow(buf, cap, *len + 3 * m + 1) < 0)
        return -1;
    char small[64], *joined = m <= sizeof small ? small : malloc(m);
    if (!joined)
        return -1;
    memcpy(joined, s->pending, s->n_pending);
    memcpy(joined + s->n_pending, bytes, n);
    size_t used = tok_utf8_lossy_into(joined, m, final, *buf, len);
    /* what is left is the start of one sequence: at most 3 bytes */
    s->n_pending = m - used;
    memcpy(s->pending, joined + used, s->n_pending);
    if (joined != small)
        free(joined);
    (*buf)[*len] = 0;
    return (long)(*len - before);
}

/* The stream's run of <0xNN> bytes, decoded as a ByteFallback decoder
 * does (byte_run_text), through emit; when the run is full (room), only
 * what byte_run_make_room gives out. */
static long flush_run(tok_stream *s, char **buf, size_t *len, size_t *cap, bool room)
{
    char text[3 * TOK_BYTE_RUN_MAX];
    size_t n, at = 0;
    if (room) {
        n = byte_run_make_room(s->run, &s->n_run, text);
    } else {
        n = byte_run_text(s->run, s->n_run, text);
        s->n_run = 0;
    }
    if (!s->started && s->tok->dec_kind == DEC_SENTENCEPIECE) /* the Strip, as on the first token */
        for (int k = 0; k < s->tok->sp_strip_start && at < n && text[at] == ' '; k++)
            at++;
    if (n)
        s->started = true;
    return emit(s, text + at, n - at, buf, len, cap, false);
}

/* Nothing to append this time: the buffer is still allocated and ended. */
static long emit_nothing(char **buf, size_t *len, size_t *cap)
{
    if (grow(buf, cap, *len + 1) < 0)
        return -1;
    (*buf)[*len] = 0;
    return 0;
}

long tok_stream_push(tok_stream *s, int32_t id, char **buf, size_t *len, size_t *cap)
{
    const tokenizer *tok = s->tok;
    if (id < 0 || id >= tok->n_vocab || !tok->dec[id])
        return -1;
    if (s->skip_special && (tok->flags[id] & TOKF_SPECIAL))
        return emit_nothing(buf, len, cap);
    long emitted = 0;
    if (in_byte_run(tok, id)) { /* kept until the run ends, as tokenizer_decode */
        if (s->n_run == TOK_BYTE_RUN_MAX && (emitted = flush_run(s, buf, len, cap, true)) < 0)
            return -1;
        s->run[s->n_run++] = (unsigned char)tok->dec[id][0];
        return emitted ? emitted : emit_nothing(buf, len, cap);
    }
    if (s->n_run && (emitted = flush_run(s, buf, len, cap, false)) < 0)
        return -1;
    const char *b = tok->dec[id];
    size_t n = tok->dec_len[id];
    if (tok->dec_kind == DEC_BPE_SUFFIX) { /* emit the one before, now known not to be last */
        bool had = s->has_held;
        int32_t prev = s->held;
        s->has_held = true;
        s->held = id;
        if (!had)
            return emit_nothing(buf, len, cap);
        b = tok->dec[prev];
        n = tok->dec_len[prev];
    } else if (tok->dec_kind == DEC_WORDPIECE) {
        id_text(tok, id, !s->started, &b, &n);
        s->started = true;
    }
    if (!s->started && tok->dec_kind == DEC_SENTENCEPIECE) {
        for (int k = 0; k < tok->sp_strip_start && n && *b == ' '; k++) {
            b++;
            n--;
        }
    }
    if (tok->dec_len[id])
        s->started = true;
    long more = emit(s, b, n, buf, len, cap, false);
    return more < 0 ? -1 : emitted + more;
}

/* The text the stream still holds: its <0xNN> run, a BPEDecoder's last
 * token (its suffix becomes nothing); final: an unfinished character too,
 * as U+FFFD. */
static long end_text(tok_stream *s, char **buf, size_t *len, size_t *cap, bool final)
{
    long emitted = 0;
    if (s->n_run && (emitted = flush_run(s, buf, len, cap, false)) < 0)
        return -1;
    if (s->has_held) { /* the last token: its suffix becomes nothing */
        const char *b;
        size_t n;
        id_text(s->tok, s->held, true, &b, &n);
        s->has_held = false;
        long more = emit(s, b, n, buf, len, cap, final);
        return more < 0 ? -1 : emitted + more;
    }
    long more = emit(s, "", 0, buf, len, cap, final);
    return more < 0 ? -1 : emitted + more;
}

long tok_stream_finish(tok_stream *s, char **buf, size_t *len, size_t *cap)
{
    return end_text(s, buf, len, cap, true);
}

long tok_stream_peek_end(const tok_stream *s, char **buf, size_t *len, size_t *cap)
{
    if (!s->n_run && !s->has_held)
        return 0;
    tok_stream copy = *s; /* no pointers of its own: s stays as it is */
    return end_text(&copy, buf, len, cap, false);
}

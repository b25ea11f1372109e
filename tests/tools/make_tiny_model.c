/* make_tiny_model: writes a small, deterministic, random-weight model of
 * the Qwen2 architecture as a Hugging Face model directory:
 *   config.json, generation_config.json, model.safetensors (bf16),
 *   tokenizer.json, tokenizer_config.json.
 *
 * A fresh machine cannot download a model, yet the README's first command
 * must run the whole pipeline; this is that model. Its tokenizer is a real
 * byte-level BPE (Qwen2's pre-tokenizer regex, GPT-2 byte mapping) whose
 * merges are learned here from a built-in English text, so Hugging Face
 * `tokenizers` can load it too. Same arguments, same bytes, every time.
 *
 * usage: make_tiny_model OUT_DIR [--layers N] [--hidden N] [--seed N]
 *                        [--shape qwen2.5-7b|qwen2.5-14b] [--quant awq4|gptq8]
 *                        [--yarn FACTOR]
 * --shape writes a model of that real architecture's sizes (random weights,
 * uniform with std 0.02, for GPU runs at scale); its vocabulary is the
 * model's (152064) while the tokenizer stays this small one.
 * --quant writes the seven projections of each layer as random weight-only
 * quantized tensors instead (issue #21's speed runs): AWQ 4-bit (GEMM
 * layout) or GPTQ 8-bit (classic format, no act order), group 128 where
 * every input width divides by it, else 32; random integers, a constant
 * symmetric zero (8, 128) and scales making the weights' std ~0.02. A
 * checkpoint quantized from the bf16 model (scripts/make-quantized-
 * checkpoint) reads the same bytes but takes minutes at 7B; the speed of
 * the kernels does not depend on which integers they read.
 * --yarn adds Qwen2.5's long-context setting to config.json: rope_scaling
 * {"type": "yarn", "factor": FACTOR, "original_max_position_embeddings":
 * max_position_embeddings} (issue #19's 64K case: the 14B shape with
 * factor 4 and --max-model-len 65536). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/half.h"

#define N_MERGES 250

static const char *training_text =
    "The quick brown fox jumps over the lazy dog. A batch job reads a file of "
    "prompts, runs the model on every GPU of the allocation, writes the answers "
    "and exits. The cluster scheduler gives the job a time limit; when the time "
    "is up the job is stopped, and the finished rows must never be lost. What is "
    "the capital of France? The capital of France is Paris. Write a short poem "
    "about the sea. The sea is wide and the sea is deep, and the waves are "
    "singing the sailors to sleep. Explain how a transformer works: the tokens "
    "are embedded, attention mixes information between positions, and a "
    "feed-forward network transforms each position. Count from one to ten: one, "
    "two, three, four, five, six, seven, eight, nine, ten. Hello, world! This is "
    "a test of the tokenizer with some numbers like 1234 and 2026, and words "
    "that repeat: there, their, they, then, them, these, those, this, that.";

/* --- deterministic random numbers (splitmix64 + Box-Muller) --------------- */

static uint64_t rng_state;
static int fast_random; /* --shape: uniform values, 10x faster than Box-Muller */

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_uniform(void)
{
    return ((double)(rng_next() >> 11) + 0.5) / 9007199254740992.0;
}

static float rng_normal(float std)
{
    double u1 = rng_uniform(), u2 = rng_uniform();
    return (float)(std * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* --- byte-level BPE: GPT-2's byte -> printable code point mapping -------- */

static int byte_to_codepoint[256];

static void init_byte_mapping(void)
{
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        byte_to_codepoint[b] = printable ? b : 256 + n++;
    }
}

static size_t put_utf8(char *out, int cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2; /* the mapping never exceeds U+07FF */
}

typedef struct token {
    char text[64]; /* mapped UTF-8 */
} token;

static token vocab[256 + N_MERGES];
static int n_vocab;
static int merge_left[N_MERGES], merge_right[N_MERGES];

/* Learns N_MERGES merges from training_text: words are split before each
 * space (so " the" is a word, as the Qwen2 regex does), pairs counted inside
 * words, the most frequent pair merged; ties go to the lowest ids so the
 * result is deterministic. */
static void learn_merges(void)
{
    for (int b = 0; b < 256; b++) {
        size_t k = put_utf8(vocab[b].text, byte_to_codepoint[b]);
        vocab[b].text[k] = '\0';
    }
    n_vocab = 256;
    size_t len = strlen(training_text);
    int *seq = malloc(len * sizeof *seq);
    int *word_start = malloc((len + 1) * sizeof *word_start);
    int n = 0;
    for (size_t i = 0; i < len; i++) {
        word_start[n] = (i == 0 || training_text[i] == ' ');
        seq[n++] = (unsigned char)training_text[i];
    }
    int *counts = malloc(sizeof(int) * (256 + N_MERGES) * (256 + N_MERGES));
    for (int m = 0; m < N_MERGES; m++) {
        int nv = n_vocab;
        memset(counts, 0, sizeof(int) * (size_t)nv * (size_t)nv);
        for (int i = 0; i + 1 < n; i++)
            if (!word_start[i + 1])
                counts[seq[i] * nv + seq[i + 1]]++;
        int best, a, b;
        char merged[sizeof vocab[0].text * 2];
        for (;;) {
            int best_count = 1;
            best = -1;
            for (int p = 0; p < nv * nv; p++)
                if (counts[p] > best_count) {
                    best = p;
                    best_count = counts[p];
                }
            if (best < 0)
                break;
            a = best / nv;
            b = best % nv;
            snprintf(merged, sizeof merged, "%s%s", vocab[a].text, vocab[b].text);
            /* A string the vocab already has (reached by another split) or
             * one too long would make a second id for the same text. */
            int seen = strlen(merged) >= sizeof vocab[0].text;
            for (int v = 0; v < n_vocab && !seen; v++)
                seen = strcmp(vocab[v].text, merged) == 0;
            if (!seen)
                break;
            counts[best] = 0;
        }
        if (best < 0)
            break;
        merge_left[m] = a;
        merge_right[m] = b;
        memcpy(vocab[n_vocab].text, merged, strlen(merged) + 1);
        int out = 0;
        for (int i = 0; i < n; i++) {
            if (i + 1 < n && seq[i] == a && seq[i + 1] == b && !word_start[i + 1]) {
                word_start[out] = word_start[i];
                seq[out++] = n_vocab;
                i++;
            } else {
                word_start[out] = word_start[i];
                seq[out++] = seq[i];
            }
        }
        n = out;
        n_vocab++;
    }
    free(counts);
    free(seq);
    free(word_start);
}

/* --- files ---------------------------------------------------------------- */

static const char *special_tokens[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
#define N_SPECIAL 3

static const char *qwen2_regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static const char *chatml_template =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

static void die(const char *what, const char *path)
{
    fprintf(stderr, "make_tiny_model: %s %s: %s\n", what, path, strerror(errno));
    exit(1);
}

static void write_json(const char *dir, const char *name, json_t *j)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (json_dump_file(j, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0)
        die("cannot write", path);
    json_decref(j);
}

static json_t *byte_level(void)
{
    return json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 0,
                     "trim_offsets", 0, "use_regex", 0);
}

static void write_tokenizer(const char *dir)
{
    json_t *added = json_array();
    for (int i = 0; i < N_SPECIAL; i++)
        json_array_append_new(
            added, json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", n_vocab + i,
                             "content", special_tokens[i], "single_word", 0, "lstrip", 0,
                             "rstrip", 0, "normalized", 0, "special", 1));
    json_t *vocab_obj = json_object();
    for (int i = 0; i < n_vocab; i++)
        json_object_set_new(vocab_obj, vocab[i].text, json_integer(i));
    json_t *merges = json_array();
    for (int m = 0; m < n_vocab - 256; m++) {
        char line[160];
        snprintf(line, sizeof line, "%s %s", vocab[merge_left[m]].text,
                 vocab[merge_right[m]].text);
        json_array_append_new(merges, json_string(line));
    }
    json_t *split = json_pack("{s:s, s:{s:s}, s:s, s:b}", "type", "Split", "pattern", "Regex",
                              qwen2_regex, "behavior", "Isolated", "invert", 0);
    json_t *tok = json_pack(
        "{s:s, s:n, s:n, s:o, s:{s:s}, s:{s:s, s:[o, o]}, s:o, s:o, s:{s:s, s:n, s:n, "
        "s:s, s:s, s:b, s:b, s:b, s:o, s:o}}",
        "version", "1.0", "truncation", "padding", "added_tokens", added, "normalizer", "type",
        "NFC", "pre_tokenizer", "type", "Sequence", "pretokenizers", split, byte_level(),
        "post_processor", byte_level(), "decoder", byte_level(), "model", "type", "BPE",
        "dropout", "unk_token", "continuing_subword_prefix", "", "end_of_word_suffix", "",
        "fuse_unk", 0, "byte_fallback", 0, "ignore_merges", 0, "vocab", vocab_obj, "merges",
        merges);
    write_json(dir, "tokenizer.json", tok);

    json_t *decoder = json_object();
    for (int i = 0; i < N_SPECIAL; i++) {
        char id[16];
        snprintf(id, sizeof id, "%d", n_vocab + i);
        json_object_set_new(decoder, id,
                            json_pack("{s:s, s:b, s:b, s:b, s:b, s:b}", "content",
                                      special_tokens[i], "lstrip", 0, "normalized", 0,
                                      "rstrip", 0, "single_word", 0, "special", 1));
    }
    json_t *cfg = json_pack(
        "{s:b, s:o, s:[s, s], s:n, s:s, s:b, s:s, s:s, s:i, s:s, s:s, s:s}", "add_prefix_space",
        0, "added_tokens_decoder", decoder, "additional_special_tokens", "<|im_start|>",
        "<|im_end|>", "bos_token", "chat_template", chatml_template, "clean_up_tokenization_spaces",
        0, "eos_token", "<|im_end|>", "errors", "replace", "model_max_length", 2048,
        "pad_token", "<|endoftext|>", "split_special_tokens", "false", "tokenizer_class",
        "Qwen2Tokenizer");
    /* split_special_tokens is a boolean in HF files */
    json_object_set_new(cfg, "split_special_tokens", json_false());
    write_json(dir, "tokenizer_config.json", cfg);
}

enum { KIND_MATRIX, KIND_NORM, KIND_BIAS, KIND_QBITS, KIND_QZERO, KIND_QSCALE, KIND_GIDX };

typedef struct tensor_spec {
    char name[96];
    int64_t rows, cols; /* cols == 0: 1-D */
    int kind;           /* KIND_*: matrix (std 0.02), norm (1 + noise), bias, all bf16;
                         * the quantized tensors: random int32 words, a constant int32
                         * word (value), fp16 scales around value * 1e-6, int32 g_idx
                         * (index / value) */
    int64_t value;
} tensor_spec;

static int tensor_bytes_per(const tensor_spec *t)
{
    return t->kind == KIND_QBITS || t->kind == KIND_QZERO || t->kind == KIND_GIDX ? 4 : 2;
}

static const char *tensor_dtype(const tensor_spec *t)
{
    return tensor_bytes_per(t) == 4 ? "I32" : t->kind == KIND_QSCALE ? "F16" : "BF16";
}

static void write_safetensors(const char *dir, const tensor_spec *t, int n)
{
    json_t *hdr = json_object();
    json_object_set_new(hdr, "__metadata__", json_pack("{s:s}", "format", "pt"));
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        uint64_t bytes = (uint64_t)t[i].rows * (uint64_t)(t[i].cols ? t[i].cols : 1) *
                         (uint64_t)tensor_bytes_per(&t[i]);
        json_t *shape = t[i].cols ? json_pack("[I, I]", (json_int_t)t[i].rows, (json_int_t)t[i].cols)
                                  : json_pack("[I]", (json_int_t)t[i].rows);
        json_object_set_new(hdr, t[i].name,
                            json_pack("{s:s, s:o, s:[I, I]}", "dtype", tensor_dtype(&t[i]),
                                      "shape", shape,
                                      "data_offsets", (json_int_t)off, (json_int_t)(off + bytes)));
        off += bytes;
    }
    char *text = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(hdr);
    size_t hlen = strlen(text);
    size_t padded = (hlen + 7) & ~(size_t)7; /* data 8-byte aligned, padded with spaces */
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    if (!f)
        die("cannot write", path);
    uint8_t len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    fwrite(len8, 1, 8, f);
    fwrite(text, 1, hlen, f);
    for (size_t i = hlen; i < padded; i++)
        fputc(' ', f);
    free(text);
    /* Values in chunks through one buffer: the 7B/14B shapes write 15-30 GB. */
    enum { CHUNK = 1 << 20 };
    uint16_t *buf = malloc(sizeof(uint16_t) * CHUNK);
    uint32_t *buf32 = malloc(sizeof(uint32_t) * CHUNK);
    if (!buf || !buf32)
        die("out of memory for", path);
    for (int i = 0; i < n; i++) {
        uint64_t count = (uint64_t)t[i].rows * (uint64_t)(t[i].cols ? t[i].cols : 1);
        for (uint64_t k0 = 0; k0 < count; k0 += CHUNK) {
            size_t m = count - k0 < CHUNK ? (size_t)(count - k0) : CHUNK;
            if (tensor_bytes_per(&t[i]) == 4) { /* little-endian host, as safetensors */
                for (size_t k = 0; k < m; k++)
                    buf32[k] = t[i].kind == KIND_QBITS   ? (uint32_t)rng_next()
                               : t[i].kind == KIND_QZERO ? (uint32_t)t[i].value
                                                         : (uint32_t)((k0 + k) / (uint64_t)t[i].value);
                if (fwrite(buf32, sizeof(uint32_t), m, f) != m)
                    die("cannot write", path);
                continue;
            }
            if (t[i].kind == KIND_QSCALE) { /* value * 1e-6, +-20 % */
                for (size_t k = 0; k < m; k++)
                    buf[k] = vb_float_to_half((float)((double)t[i].value * 1e-6 *
                                                      (0.8 + 0.4 * rng_uniform())));
                if (fwrite(buf, sizeof(uint16_t), m, f) != m)
                    die("cannot write", path);
                continue;
            }
            for (size_t k = 0; k < m; k++) {
                float v;
                if (fast_random) /* uniform, std 0.02: sqrt(3) * 0.02 * [-1, 1) */
                    v = (float)(((double)(rng_next() >> 11) / 4503599627370496.0 - 1.0) * 0.034641);
                else
                    v = t[i].kind == KIND_NORM ? rng_normal(0.05f) : rng_normal(0.02f);
                if (t[i].kind == KIND_NORM)
                    v += 1.0f;
                buf[k] = vb_float_to_bf16(v); /* little-endian host, as safetensors */
            }
            if (fwrite(buf, sizeof(uint16_t), m, f) != m)
                die("cannot write", path);
        }
    }
    free(buf);
    free(buf32);
    if (fclose(f) != 0)
        die("cannot write", path);
}

/* The tensors of projection w ([out, in], name "<prefix>.weight") in the
 * --quant format: AWQ 4-bit (GEMM): qweight [in, out/8], qzeros [in/g,
 * out/8] (8 in each nibble), scales [in/g, out]; GPTQ 8-bit (classic, v1
 * zeros: zero - 1 = 127 in each byte): qweight [in/4, out], qzeros [in/g,
 * out/4], scales [in/g, out], g_idx [in] = j / g. Scales: the std of
 * q - zero is ~4.6 (4 bits) and ~74 (8 bits), so 0.02 / that. Returns how
 * many it wrote. */
static int quant_specs(tensor_spec *t, const tensor_spec *w, int bits, int group)
{
    char prefix[80]; /* + ".qweight" fits a name */
    snprintf(prefix, sizeof prefix, "%.*s", (int)(strlen(w->name) - strlen(".weight")), w->name);
    const int64_t out = w->rows, in = w->cols;
    int n = 0;
    t[n] = (tensor_spec){"", bits == 4 ? in : in / 4, bits == 4 ? out / 8 : out, KIND_QBITS, 0};
    snprintf(t[n++].name, sizeof t->name, "%s.qweight", prefix);
    t[n] = (tensor_spec){"", in / group, bits == 4 ? out / 8 : out / 4, KIND_QZERO,
                         bits == 4 ? (int64_t)0x88888888u : (int64_t)0x7F7F7F7Fu};
    snprintf(t[n++].name, sizeof t->name, "%s.qzeros", prefix);
    t[n] = (tensor_spec){"", in / group, out, KIND_QSCALE, bits == 4 ? 4300 : 270};
    snprintf(t[n++].name, sizeof t->name, "%s.scales", prefix);
    if (bits == 8) {
        t[n] = (tensor_spec){"", in, 0, KIND_GIDX, group};
        snprintf(t[n++].name, sizeof t->name, "%s.g_idx", prefix);
    }
    return n;
}

int main(int argc, char **argv)
{
    static const char usage[] =
        "usage: make_tiny_model OUT_DIR [--layers N] [--hidden N] [--seed N]\n"
        "                       [--shape qwen2.5-7b|qwen2.5-14b] [--quant awq4|gptq8]\n"
        "                       [--yarn FACTOR]\n";
    if (argc < 2 || argv[1][0] == '-') {
        fputs(usage, stderr);
        return 2;
    }
    /* options come in pairs: a last one without its value (`--quant` at
     * the end) was skipped, and an unquantized model written */
    if (argc % 2 != 0) {
        fprintf(stderr, "make_tiny_model: %s needs a value\n%s", argv[argc - 1], usage);
        return 2;
    }
    const char *dir = argv[1];
    int layers = 2, hidden = 64, heads = 0, kv_heads = 0, head_dim = 16, inter = 0, vocab = 0;
    int tie = 1, max_pos = 2048;
    double rope_theta = 10000.0;
    uint64_t seed = 20261122;
    int quant_bits = 0; /* --quant: 4 (AWQ) or 8 (GPTQ) */
    double yarn = 0;    /* --yarn: rope_scaling's factor, 0 for none */
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--layers") == 0)
            layers = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--hidden") == 0)
            hidden = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seed") == 0) {
            /* not a number was seed 0, a model other than asked for */
            char *end;
            errno = 0;
            seed = strtoull(argv[i + 1], &end, 10);
            if (end == argv[i + 1] || *end || errno || argv[i + 1][0] == '-') {
                fprintf(stderr, "make_tiny_model: --seed takes a non-negative integer\n");
                return 2;
            }
        }
        else if (strcmp(argv[i], "--yarn") == 0) {
            char *end;
            yarn = strtod(argv[i + 1], &end);
            if (*end || !(yarn > 1.0 && yarn <= 64.0)) {
                fprintf(stderr, "make_tiny_model: --yarn takes a factor in (1, 64]\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--quant") == 0 && strcmp(argv[i + 1], "awq4") == 0)
            quant_bits = 4;
        else if (strcmp(argv[i], "--quant") == 0 && strcmp(argv[i + 1], "gptq8") == 0)
            quant_bits = 8;
        else if (strcmp(argv[i], "--shape") == 0 && strcmp(argv[i + 1], "qwen2.5-7b") == 0) {
            hidden = 3584, layers = 28, heads = 28, kv_heads = 4, head_dim = 128;
            inter = 18944, vocab = 152064, tie = 0, max_pos = 32768, rope_theta = 1e6;
            fast_random = 1;
        } else if (strcmp(argv[i], "--shape") == 0 && strcmp(argv[i + 1], "qwen2.5-14b") == 0) {
            hidden = 5120, layers = 48, heads = 40, kv_heads = 8, head_dim = 128;
            inter = 13824, vocab = 152064, tie = 0, max_pos = 32768, rope_theta = 1e6;
            fast_random = 1;
        }
        else {
            fprintf(stderr, "make_tiny_model: unknown option or value '%s %s'\n%s", argv[i],
                    argv[i + 1], usage);
            return 2;
        }
    }
    if (layers < 1 || layers > 64 || hidden < 32 || hidden > 8192 || hidden % 32) {
        fprintf(stderr, "make_tiny_model: --layers 1..64, --hidden a multiple of 32\n");
        return 2;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        die("cannot create", dir);
    rng_state = seed;
    init_byte_mapping();
    learn_merges();

    if (!heads) { /* the tiny default: head_dim 16, GQA 2 */
        heads = hidden / 16;
        kv_heads = heads / 2;
        inter = hidden * 11 / 4 / 8 * 8; /* Qwen2-like ratio, a multiple of 8 */
    }
    const int vocab_size = vocab ? vocab : (n_vocab + N_SPECIAL + 63) / 64 * 64; /* padded like Qwen's */
    const int eos = n_vocab + 2, endoftext = n_vocab;
    /* --quant: group 128 where every projection's input width divides by
     * it (the real shapes), else 32 (the tiny ones); AWQ packs 8 outputs a
     * word, GPTQ 8-bit 4 inputs (and 4 zeros of outputs) */
    const int q_in = heads * head_dim; /* o's input width */
    int group = hidden % 128 == 0 && inter % 128 == 0 && q_in % 128 == 0 ? 128 : 32;
    if (quant_bits && (hidden % group || inter % group || q_in % group ||
                       (kv_heads * head_dim) % 8 || q_in % 8 || inter % 8 || hidden % 8)) {
        fprintf(stderr, "make_tiny_model: --quant needs widths that divide into groups of 32\n");
        return 2;
    }

    write_tokenizer(dir);
    json_t *config =
               json_pack("{s:[s], s:f, s:i, s:i, s:s, s:i, s:i, s:i, s:i, s:s, s:i, s:i, s:i, "
                         "s:f, s:f, s:i, s:b, s:s, s:s, s:b, s:b, s:i}",
                         "architectures", "Qwen2ForCausalLM", "attention_dropout", 0.0,
                         "bos_token_id", endoftext, "eos_token_id", eos, "hidden_act", "silu",
                         "hidden_size", hidden, "intermediate_size", inter,
                         "max_position_embeddings", max_pos, "max_window_layers", layers,
                         "model_type", "qwen2", "num_attention_heads", heads,
                         "num_hidden_layers", layers, "num_key_value_heads", kv_heads,
                         "rms_norm_eps", 1e-6, "rope_theta", rope_theta, "sliding_window", max_pos,
                         "tie_word_embeddings", tie, "torch_dtype", "bfloat16",
                         "transformers_version", "4.45.0", "use_cache", 1,
                         "use_sliding_window", 0, "vocab_size", vocab_size);
    if (quant_bits == 4)
        json_object_set_new(config, "quantization_config",
                            json_pack("{s:s, s:i, s:i, s:b, s:s}", "quant_method", "awq", "bits", 4,
                                      "group_size", group, "zero_point", 1, "version", "gemm"));
    else if (quant_bits == 8)
        json_object_set_new(config, "quantization_config",
                            json_pack("{s:s, s:i, s:i, s:b, s:b, s:s}", "quant_method", "gptq",
                                      "bits", 8, "group_size", group, "desc_act", 0, "sym", 1,
                                      "checkpoint_format", "gptq"));
    if (yarn > 0)
        json_object_set_new(config, "rope_scaling",
                            json_pack("{s:s, s:f, s:i}", "type", "yarn", "factor", yarn,
                                      "original_max_position_embeddings", max_pos));
    write_json(dir, "config.json", config);
    write_json(dir, "generation_config.json",
               json_pack("{s:i, s:b, s:[i, i], s:f, s:f, s:i, s:f}", "bos_token_id", endoftext,
                         "do_sample", 1, "eos_token_id", eos, endoftext,
                         "repetition_penalty", 1.05, "temperature", 0.7, "top_k", 20, "top_p",
                         0.8));

    tensor_spec *t = calloc((size_t)(4 + 40 * layers), sizeof *t);
    int n = 0;
    t[n++] = (tensor_spec){"model.embed_tokens.weight", vocab_size, hidden, KIND_MATRIX, 0};
    for (int l = 0; l < layers; l++) {
        const char *p = "model.layers";
        tensor_spec s[] = {
            {"", hidden, 0, KIND_NORM, 0},
            {"", heads * head_dim, hidden, KIND_MATRIX, 0},
            {"", heads * head_dim, 0, KIND_BIAS, 0},
            {"", kv_heads * head_dim, hidden, KIND_MATRIX, 0},
            {"", kv_heads * head_dim, 0, KIND_BIAS, 0},
            {"", kv_heads * head_dim, hidden, KIND_MATRIX, 0},
            {"", kv_heads * head_dim, 0, KIND_BIAS, 0},
            {"", hidden, heads * head_dim, KIND_MATRIX, 0},
            {"", hidden, 0, KIND_NORM, 0},
            {"", inter, hidden, KIND_MATRIX, 0},
            {"", inter, hidden, KIND_MATRIX, 0},
            {"", hidden, inter, KIND_MATRIX, 0},
        };
        const char *names[] = {
            "input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.q_proj.bias",
            "self_attn.k_proj.weight", "self_attn.k_proj.bias", "self_attn.v_proj.weight",
            "self_attn.v_proj.bias", "self_attn.o_proj.weight", "post_attention_layernorm.weight",
            "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight",
        };
        for (int k = 0; k < 12; k++) {
            s[k].name[0] = '\0';
            snprintf(s[k].name, sizeof s[k].name, "%s.%d.%s", p, l, names[k]);
            if (quant_bits && s[k].kind == KIND_MATRIX)
                n += quant_specs(&t[n], &s[k], quant_bits, group);
            else
                t[n++] = s[k];
        }
    }
    t[n++] = (tensor_spec){"model.norm.weight", hidden, 0, KIND_NORM, 0};
    if (!tie)
        t[n++] = (tensor_spec){"lm_head.weight", vocab_size, hidden, KIND_MATRIX, 0};
    write_safetensors(dir, t, n);
    free(t);
    printf("%s: qwen2, %d layers, hidden %d, %d heads (%d kv), vocab %d (%d tokens)\n", dir,
           layers, hidden, heads, kv_heads, vocab_size, n_vocab + N_SPECIAL);
    return 0;
}

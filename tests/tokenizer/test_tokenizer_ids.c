/* Token ids read from a model directory's tokenizer files (issue 23, defect
 * 2). Every id in tokenizer.json (model.vocab, added_tokens, the merges'
 * tokens, TemplateProcessing's special_tokens ids) and generation_config.json's
 * eos_token_id must be a JSON integer in range, or the load is refused with
 * the file and the token named. Before the fix a negative id wrote before
 * the vocabulary arrays (a crash or heap corruption), 2^32+3 and "7" were
 * silently read as 3 and 0, and 2^31-1 overflowed an int.
 *
 * Each case runs in a child process with an alarm, so a crash or a hang in
 * the loader fails that case (and the program) while the others still run.
 * The files are tiny and written here, so nothing is needed from outside. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "tok_test_dir.h"
#include "tokenizer/tokenizer.h"

/* A SentencePiece-style BPE (no pre-tokenizer): "ab" encodes to [2]. */
#define VOCAB "{\"a\":0,\"b\":1,\"ab\":2,\"<unk>\":3}"
#define MERGES "[\"a b\"]"
#define ADDED "[{\"id\":4,\"content\":\"<s>\",\"special\":true}]"
#define TEMPLATE(ids)                                                                           \
    ",\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":"       \
    "{\"id\":\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],"              \
    "\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":" ids ",\"tokens\":[\"<s>\"]}}}"


/* tokenizer.json from its parts; extra goes at the top level. */
static void write_tokenizer(const char *vocab, const char *merges, const char *added, const char *extra)
{
    char json[4096];
    snprintf(json, sizeof json,
             "{\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"vocab\":%s,\"merges\":%s},"
             "\"added_tokens\":%s%s}",
             vocab, merges, added, extra);
    tok_test_write("tokenizer.json", json);
}

/* In a child (alarm 10 s): the load must fail with every needle in the
 * message. Exit 0 when it does; the parent reports crashes and hangs. */
static int child_refuses(const char *needle1, const char *needle2)
{
    alarm(10);
    vb_err err = {{0}};
    tokenizer *tok = tokenizer_load(tok_test_dir, &err);
    if (tok) {
        fprintf(stderr, "  loaded; should be refused (naming %s)\n", needle1);
        tokenizer_free(tok);
        return 1;
    }
    int bad = 0;
    const char *needles[] = {needle1, needle2};
    for (int i = 0; i < 2; i++)
        if (needles[i] && !strstr(err.msg, needles[i])) {
            fprintf(stderr, "  message lacks \"%s\": %s\n", needles[i], err.msg);
            bad = 1;
        }
    if (!bad)
        printf("  refused: %s\n", err.msg); /* the log shows each message */
    fflush(stdout); /* the child leaves by _exit */
    return bad;
}

/* Runs child_refuses in a fork; a signal or a non-zero exit fails the check. */
static void expect_refused(const char *what, const char *needle1, const char *needle2)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        CHECK(pid >= 0);
        return;
    }
    if (pid == 0)
        _exit(child_refuses(needle1, needle2));
    int st = 0;
    if (waitpid(pid, &st, 0) != pid) {
        perror("waitpid");
        CHECK(0);
        return;
    }
    if (WIFSIGNALED(st))
        fprintf(stderr, "  %s: the loader died of signal %d%s\n", what, WTERMSIG(st),
                WTERMSIG(st) == SIGALRM ? " (hung 10 s)" : "");
    else if (WEXITSTATUS(st))
        fprintf(stderr, "  %s: not refused as it should be (above)\n", what);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void reset_configs(void)
{
    tok_test_write("generation_config.json", NULL);
    tok_test_write("tokenizer_config.json", NULL);
}

/* The well-formed forms still load and encode as before. */
static void test_good_files_load(void)
{
    reset_configs();
    write_tokenizer(VOCAB, MERGES, ADDED, TEMPLATE("[4]"));
    vb_err err = {{0}};
    tokenizer *tok = tokenizer_load(tok_test_dir, &err);
    CHECK(tok != NULL);
    if (!tok) {
        fprintf(stderr, "  %s\n", err.msg);
        return;
    }
    tok_ids ids = {0};
    CHECK_INT_EQ(tokenizer_encode(tok, "ab<s>a", 6, true, &ids, &err), 0);
    CHECK_INT_EQ(ids.n, 4);
    if (ids.n == 4) {
        CHECK_INT_EQ(ids.ids[0], 4); /* the template's <s> */
        CHECK_INT_EQ(ids.ids[1], 2);
        CHECK_INT_EQ(ids.ids[2], 4);
        CHECK_INT_EQ(ids.ids[3], 0);
    }
    free(ids.ids);
    CHECK_INT_EQ(tokenizer_vocab_size(tok), 5);
    tokenizer_free(tok);

    /* A gap in the ids, an added token repeating a vocab entry, the pair
     * form of merges, and an eos id list all load. */
    write_tokenizer("{\"a\":0,\"b\":1,\"ab\":2,\"<unk>\":3,\"<s>\":9}", "[[\"a\",\"b\"]]",
                    "[{\"id\":9,\"content\":\"<s>\",\"special\":true}]", "");
    tok_test_write("generation_config.json", "{\"eos_token_id\":[9,2]}");
    tok = tokenizer_load(tok_test_dir, &err);
    CHECK(tok != NULL);
    if (tok) {
        CHECK_INT_EQ(tokenizer_vocab_size(tok), 10);
        const int32_t *eos = NULL;
        CHECK_INT_EQ(tokenizer_eos_ids(tok, &eos), 2);
        char *text = NULL;
        size_t n = 0;
        CHECK_INT_EQ(tokenizer_decode(tok, (const int32_t[]){2, 5}, 2, false, &text, &n, &err), -1);
        free(text);
        tokenizer_free(tok);
    } else {
        fprintf(stderr, "  %s\n", err.msg);
    }
    reset_configs();
}

/* model.vocab: negative, past int32, past uint32, a string, a float, a
 * duplicate, and far beyond the file's token count. */
static void test_vocab_ids(void)
{
    reset_configs();
    static const struct {
        const char *b;
        const char *needle;
    } bad[] = {
        {"-1", "-1"}, {"2147483647", "2147483647"}, {"4294967299", "4294967299"},
        {"\"7\"", "\"7\""}, {"1.5", "1.5"}, {"16777216", "16777216"}, {"5000", "5000"},
        {"null", "null"}, {"true", "true"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char vocab[128];
        snprintf(vocab, sizeof vocab, "{\"a\":0,\"b\":%s,\"ab\":2,\"<unk>\":3}", bad[i].b);
        write_tokenizer(vocab, "[]", "[]", "");
        expect_refused(bad[i].b, "'b'", bad[i].needle);
    }
    write_tokenizer("{\"a\":0,\"b\":0,\"ab\":2,\"<unk>\":3}", "[]", "[]", "");
    expect_refused("duplicate vocab id", "'b'", "'a'");
    write_tokenizer("[\"a\",\"b\"]", "[]", "[]", "");
    expect_refused("vocab not an object", "model.vocab", "tokenizer.json");
}

static void test_added_ids(void)
{
    reset_configs();
    static const char *bad_ids[] = {"-1", "2147483647", "4294967300", "\"4\"", "4.0", "null"};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        char added[128];
        snprintf(added, sizeof added, "[{\"id\":%s,\"content\":\"<s>\",\"special\":true}]", bad_ids[i]);
        write_tokenizer(VOCAB, MERGES, added, "");
        expect_refused(bad_ids[i], "'<s>'", "added_tokens");
    }
    write_tokenizer(VOCAB, MERGES, "[{\"content\":\"<s>\"}]", "");
    expect_refused("added token without id", "'<s>'", "id");
    write_tokenizer(VOCAB, MERGES, "[{\"id\":4,\"content\":5}]", "");
    expect_refused("added token content a number", "added_tokens[0]", "content");
    write_tokenizer(VOCAB, MERGES, "[{\"id\":4,\"content\":\"<s>\",\"special\":\"yes\"}]", "");
    expect_refused("added token flag a string", "'<s>'", "special");
    write_tokenizer(VOCAB, MERGES, "[{\"id\":4,\"content\":\"<s>\"},{\"id\":4,\"content\":\"</s>\"}]", "");
    expect_refused("two added tokens on one id", "'</s>'", "'<s>'");
    write_tokenizer(VOCAB, MERGES, "{\"<s>\":4}", "");
    expect_refused("added_tokens not a list", "added_tokens", "tokenizer.json");
}

/* Both merge forms: malformed entries and tokens not in the vocabulary. */
static void test_merges(void)
{
    reset_configs();
    static const struct {
        const char *merges;
        const char *needle1, *needle2;
    } bad[] = {
        {"[\"\"]", "merges[0]", NULL},          /* empty: read past the string before */
        {"[\"ab\"]", "merges[0]", "'ab'"},       /* no space */
        {"[\"a b c\"]", "merges[0]", "'a b c'"}, /* two spaces: HF refuses it too */
        {"[\"a \"]", "merges[0]", NULL},
        {"[\" a\"]", "merges[0]", NULL},
        {"[\"a c\"]", "merges[0]", "'c'"},       /* c is not a token */
        {"[\"b a\"]", "merges[0]", "'ba'"},      /* the merged token is not either */
        {"[[\"a\"]]", "merges[0]", NULL},
        {"[[\"a\",\"b\",\"ab\"]]", "merges[0]", NULL},
        {"[[\"a\",5]]", "merges[0]", NULL},
        {"[[\"a\",\"c\"]]", "merges[0]", "'c'"},
        {"[\"a b\",7]", "merges[1]", NULL},
        {"\"a b\"", "model.merges", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_tokenizer(VOCAB, bad[i].merges, ADDED, "");
        expect_refused(bad[i].merges, bad[i].needle1, bad[i].needle2);
    }
}

/* TemplateProcessing's ids are pushed into every encoded prompt. */
static void test_post_processor_ids(void)
{
    reset_configs();
    write_tokenizer(VOCAB, MERGES, ADDED, TEMPLATE("[-1]"));
    expect_refused("template id -1", "'<s>'", "-1");
    write_tokenizer(VOCAB, MERGES, ADDED, TEMPLATE("[\"4\"]"));
    expect_refused("template id \"4\"", "'<s>'", "\"4\"");
    write_tokenizer(VOCAB, MERGES, ADDED, TEMPLATE("[99999]"));
    expect_refused("template id past the vocabulary", "'<s>'", "99999");
    write_tokenizer(VOCAB, MERGES, ADDED, TEMPLATE("[4294967300]"));
    expect_refused("template id 2^32+4", "'<s>'", "4294967300");
    write_tokenizer(VOCAB, MERGES, ADDED, TEMPLATE("4"));
    expect_refused("template ids not a list", "'<s>'", "ids");
    write_tokenizer(VOCAB, MERGES, ADDED,
                    ",\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":"
                    "{\"id\":\"<bos>\",\"type_id\":0}}],\"special_tokens\":{}}");
    expect_refused("template names a missing special token", "'<bos>'", "special_tokens");
}

/* Other values the loader reads that corrupted memory or were truncated. */
static void test_other_values(void)
{
    reset_configs();
    write_tokenizer(VOCAB, MERGES, ADDED, "");
    tok_test_write("generation_config.json", "{\"eos_token_id\":4294967299}");
    expect_refused("eos id 2^32+3", "generation_config.json", "4294967299");
    tok_test_write("generation_config.json", "{\"eos_token_id\":[4,\"4\"]}");
    expect_refused("eos id a string", "generation_config.json", "\"4\"");
    reset_configs();
    tok_test_write("tokenizer_config.json", "{\"chat_template\":[{\"name\":\"default\",\"template\":5}]}");
    expect_refused("chat template not a string", "tokenizer_config.json", "template");
    reset_configs();
    /* An empty Metaspace replacement made the vocab's decode loop run
     * forever, writing past its buffer. */
    write_tokenizer(VOCAB, MERGES, ADDED,
                    ",\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"\"}");
    expect_refused("empty Metaspace replacement", "Metaspace", "replacement");
    write_tokenizer(VOCAB, MERGES, ADDED,
                    ",\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Strip\","
                    "\"content\":\" \",\"start\":-1,\"stop\":0}]}");
    expect_refused("Strip start -1", "Strip", "start");
}

/* A pre-tokenizer regex that backtracks past PCRE2's match limit: encode
 * must fail the row, not take the rest of the text as one piece (what a
 * failed match meant before, silently giving other ids than HF). */
static void test_regex_match_limit(void)
{
    reset_configs();
    write_tokenizer("{\"a\":0,\"b\":1,\"<unk>\":2}", "[]", "[]",
                    ",\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(a|aa)+\\\\d\"},"
                    "\"behavior\":\"Isolated\",\"invert\":false}");
    vb_err err = {{0}};
    tokenizer *tok = tokenizer_load(tok_test_dir, &err);
    CHECK(tok != NULL);
    if (!tok) {
        fprintf(stderr, "  %s\n", err.msg);
        return;
    }
    char text[80];
    memset(text, 'a', sizeof text);
    tok_ids ids = {0};
    CHECK_INT_EQ(tokenizer_encode(tok, text, sizeof text, false, &ids, &err), -1);
    CHECK_INT_EQ(ids.n, 0);
    /* where it matches, it still splits: "aa1" (1 is <unk>), then "b" */
    CHECK_INT_EQ(tokenizer_encode(tok, "aa1b", 4, false, &ids, &err), 0);
    CHECK_INT_EQ(ids.n, 4);
    free(ids.ids);
    tokenizer_free(tok);
}

/* The in-memory entry point (the fuzzer's) refuses the same way, naming
 * the name it was given, and loads every seed of the fuzz corpus: a seed
 * the loader refused would leave the fuzzer short of a whole layout. */
static const char *g_seeds;

static char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    char *buf = f ? malloc(1 << 16) : NULL;
    *n = buf ? fread(buf, 1, 1 << 16, f) : 0;
    if (f && (ferror(f) || !feof(f))) { /* seeds are small; a longer one is a mistake */
        free(buf);
        buf = NULL;
    }
    if (f)
        fclose(f);
    return buf;
}

static void test_load_json(void)
{
    static const char bad[] = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":-1},\"merges\":[]}}";
    vb_err err = {{0}};
    tokenizer *tok = tokenizer_load_json(bad, sizeof bad - 1, "mem.json", &err);
    CHECK(tok == NULL);
    tokenizer_free(tok);
    CHECK(strstr(err.msg, "mem.json: model.vocab 'b': id -1") == err.msg);
    if (!g_seeds)
        return;
    static const char *const seeds[] = {"bytelevel-bpe.json", "sentencepiece-bytefallback.json",
                                        "added-template.json", "affixes-wordpiece-roberta.json",
                                        "suffix-bpedecoder.json"};
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", g_seeds, seeds[i]);
        size_t n = 0;
        char *json = read_all(path, &n);
        CHECK(json != NULL);
        tok = json ? tokenizer_load_json(json, n, seeds[i], &err) : NULL;
        if (json && !tok)
            fprintf(stderr, "  %s\n", err.msg);
        CHECK(tok != NULL);
        tok_ids ids = {0};
        if (tok)
            CHECK_INT_EQ(tokenizer_encode(tok, "the world", 9, true, &ids, &err), 0);
        CHECK(ids.n > 0);
        free(ids.ids);
        tokenizer_free(tok);
        free(json);
    }
}

/* argv[1]: the fuzz seed folder (tests/tokenizer/fuzz_corpus), optional. */
int main(int argc, char **argv)
{
    g_seeds = argc > 1 ? argv[1] : NULL;
    tok_test_dir_make("vb-tok-ids");
    RUN_TEST(test_good_files_load);
    RUN_TEST(test_vocab_ids);
    RUN_TEST(test_added_ids);
    RUN_TEST(test_merges);
    RUN_TEST(test_post_processor_ids);
    RUN_TEST(test_other_values);
    RUN_TEST(test_regex_match_limit);
    RUN_TEST(test_load_json);
    tok_test_write("tokenizer.json", NULL);
    reset_configs();
    tok_test_dir_remove();
    return test_summary();
}

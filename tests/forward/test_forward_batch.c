/* The reproducibility promise at the forward-pass level: a sequence's
 * logits are bitwise the same whether it runs alone or batched with
 * others, whatever block ids it gets, and whether its prompt is prefilled
 * in one step or in chunks (CPU backend, tp = 1; the chunked case is
 * compared with tolerance 1e-5 relative, since attention over a cached
 * prefix is the same sum but the prompt's matmul rows are the same bits).
 * Model: tests/forward/fixtures/qwen2_tied (from make-forward-fixtures).
 * Also: forward_step refuses a batch larger than forward_init's max_tokens. */
#include <stdlib.h>

#include "cpu/cpu_backend.h"
#include "forward/forward.h"
#include "harness.h"
#include "model/model_load.h"

static const char *model_dir;
static model_config cfg;
static tp_plan plan;
static model_weights w;

/* Runs prompt A (and optionally B, C before it) and returns A's last-token
 * logits (caller frees). chunk = 0: whole prompts in one step. */
static float *run(int with_others, int block_base, int chunk)
{
    static const int32_t A[] = {5, 17, 42, 99, 3, 250, 7, 8, 9, 10, 11, 300, 1, 2, 3, 4, 5, 6, 7};
    static const int32_t B[] = {1, 2, 3}, C[] = {100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117};
    int nA = (int)(sizeof A / sizeof A[0]);
    vb_err err;
    vb_backend *b = cpu_backend_create(2, MPI_COMM_NULL, 1);
    vb_kv_cache kv;
    forward_state fs;
    step_batch sb;
    kv_cache_alloc(&kv, b, cfg.n_layers, 16, 4, plan.kv_heads_local, cfg.head_dim, &err);
    forward_init(&fs, b, &cfg, &plan, &w, 64, &err);
    step_batch_init(&sb, 4, 64, 8);
    int32_t btA[5] = {block_base + 4, block_base + 0, block_base + 6, block_base + 2, block_base + 5};
    /* A's blocks never overlap B's or C's, for either block_base */
    int32_t btB[1] = {1}, btC[5] = {3, 7, 8, 9, 10};
    const float *logits = NULL;
    int done = 0;
    while (done < nA) {
        int n = chunk ? (nA - done < chunk ? nA - done : chunk) : nA;
        step_batch_clear(&sb);
        CHECK_INT_EQ(sb.used_blocks, 0);
        if (with_others && done == 0) {
            step_batch_add_seq(&sb, B, 3, 0, btB, 1);
            step_batch_add_seq(&sb, C, 18, 0, btC, 5);
            CHECK_INT_EQ(sb.used_blocks, 5); /* the most a row holds: C's */
        }
        step_batch_add_seq(&sb, A + done, n, done, btA, (done + n + 3) / 4);
        logits = forward_step(&fs, &sb, &kv);
        done += n;
    }
    float *out = malloc(sizeof(float) * (size_t)plan.vocab_local);
    memcpy(out, logits + (size_t)(sb.n_seqs - 1) * plan.vocab_local, sizeof(float) * (size_t)plan.vocab_local);

    /* a batch over max_tokens is refused */
    step_batch big;
    step_batch_init(&big, 1, 65, 17);
    int32_t toks[65] = {0}, bt[17] = {0};
    step_batch_add_seq(&big, toks, 65, 0, bt, 17);
    CHECK(forward_step(&fs, &big, &kv) == NULL);
    step_batch_free(&big);

    step_batch_free(&sb);
    forward_free(&fs);
    kv_cache_free(&kv, b);
    b->destroy(b);
    return out;
}

static void test_batch_and_blocks_do_not_change_bits(void)
{
    float *alone = run(0, 0, 0), *batched = run(1, 0, 0), *moved = run(0, 1, 0);
    size_t bytes = sizeof(float) * (size_t)plan.vocab_local;
    CHECK(memcmp(alone, batched, bytes) == 0);
    CHECK(memcmp(alone, moved, bytes) == 0);
    float *chunked = run(1, 0, 5);
    CHECK(memcmp(alone, chunked, bytes) == 0);
    free(alone);
    free(batched);
    free(moved);
    free(chunked);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return test_skip("usage: test_forward_batch MODEL_DIR");
    model_dir = argv[1];
    vb_err err;
    if (model_config_load(&cfg, model_dir, &err) || tp_plan_make(&plan, &cfg, 1, 0, &err) ||
        model_load_cpu(&w, &cfg, &plan, model_dir, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    RUN_TEST(test_batch_and_blocks_do_not_change_bits);
    model_weights_free(&w);
    return test_summary();
}

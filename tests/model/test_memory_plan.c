/* inspect's memory plan against what the engine allocates for the same
 * settings: the activations line equals the bytes forward_init asks a
 * backend with the CUDA backend's element sizes (fp16 activations, fp32
 * residual) for, at tp 1 and on a rank whose key/value head is replicated
 * (helper hR: the plan counted an "act" buffer of intermediate width that
 * does not exist and left out the o/down output and the LM head's rows). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward/forward.h"
#include "harness.h"
#include "model/memory_plan.h"

/* A backend that only counts what it is asked for. */
static size_t counted;

static void *count_alloc(vb_backend *b, size_t bytes)
{
    (void)b;
    counted += bytes;
    return calloc(1, bytes ? bytes : 1);
}

static void count_free(vb_backend *b, void *p)
{
    (void)b;
    free(p);
}

static void count_to_device(vb_backend *b, void *dst, const void *src, size_t bytes)
{
    (void)b;
    memcpy(dst, src, bytes);
}

/* forward_init's activation bytes at T tokens (its RoPE inverse
 * frequencies, head_dim/2 floats, are not activations). */
static uint64_t forward_bytes(const model_config *c, const tp_plan *p, int T)
{
    vb_backend b = {.name = "count", .act_size = 2, .resid_size = 4,
                    .alloc = count_alloc, .free = count_free, .to_device = count_to_device};
    model_weights w = {0};
    forward_state f;
    vb_err err = {{0}};
    counted = 0;
    CHECK_INT_EQ(forward_init(&f, &b, c, p, &w, T, &err), 0);
    forward_free(&f);
    return counted - (uint64_t)(c->head_dim / 2) * sizeof(float);
}

static uint64_t plan_line(const memory_plan *m, const char *name)
{
    for (int i = 0; i < m->n_overhead; i++)
        if (strcmp(m->overhead[i].name, name) == 0)
            return m->overhead[i].bytes;
    return 0;
}

static void check_activations(const model_config *c, int tp, int rank, int T)
{
    tp_plan p;
    vb_err err = {{0}};
    CHECK_INT_EQ(tp_plan_make(&p, c, tp, rank, &err), 0);
    memory_plan m;
    memory_plan_make(&m, c, &p, 80ull << 30, 0.9, 0, VB_KV_ACT, T);
    const uint64_t planned = plan_line(&m, "activations"), made = forward_bytes(c, &p, T);
    if (planned != made)
        fprintf(stderr, "  tp %d rank %d, %d tokens: planned %llu bytes, forward_init %llu\n",
                tp, rank, T, (unsigned long long)planned, (unsigned long long)made);
    CHECK(planned == made);
}

static void test_activations_as_allocated(void)
{
    /* a Qwen2.5-7B shape (28 heads, 4 kv heads, head_dim 128) */
    model_config c = {.hidden_size = 3584, .n_layers = 28, .n_heads = 28, .n_kv_heads = 4,
                      .head_dim = 128, .intermediate_size = 18944, .vocab_size = 152064,
                      .max_position_embeddings = 32768, .rope_theta = 1e6};
    c.rope_scaling.type = VB_ROPE_DEFAULT;
    c.rope_scaling.factor = 1;
    check_activations(&c, 1, 0, 64);
    check_activations(&c, 2, 1, 100);
    /* tp 8 > 4 kv heads: replicated, one a rank */
    c.n_heads = 32;
    check_activations(&c, 8, 5, 16);
}

int main(void)
{
    RUN_TEST(test_activations_as_allocated);
    return test_summary();
}

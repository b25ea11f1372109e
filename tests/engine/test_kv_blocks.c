/* kv_blocks: allocation and release, the LRU free list, prefix-cache
 * publish / find / acquire, eviction order, and the invariant checker.
 * Exact expectations: the manager is deterministic. */
#include "harness.h"

#include "engine/kv_blocks.h"

static void check_ok(const kv_blocks *kv)
{
    vb_err err = {{0}};
    int rc = kv_blocks_check(kv, &err);
    if (rc != 0) fprintf(stderr, "  %s\n", err.msg);
    CHECK_INT_EQ(rc, 0);
}

static void test_alloc_all_then_release(void)
{
    kv_blocks kv;
    CHECK_INT_EQ(kv_blocks_init(&kv, 4, 16, NULL), 0);
    for (int i = 0; i < 4; i++) CHECK_INT_EQ(kv_blocks_alloc(&kv), i);
    CHECK_INT_EQ(kv_blocks_alloc(&kv), KV_NO_BLOCK);
    CHECK_INT_EQ(kv_blocks_n_used(&kv), 4);
    check_ok(&kv);
    kv_blocks_release(&kv, 2);
    CHECK_INT_EQ(kv_blocks_n_free(&kv), 1);
    CHECK_INT_EQ(kv_blocks_alloc(&kv), 2);
    for (int i = 0; i < 4; i++) kv_blocks_release(&kv, i);
    CHECK_INT_EQ(kv_blocks_n_used(&kv), 0);
    check_ok(&kv);
    kv_blocks_free(&kv);
}

static void test_init_rejects_empty(void)
{
    kv_blocks kv;
    vb_err err = {{0}};
    CHECK_INT_EQ(kv_blocks_init(&kv, 0, 16, &err), -1);
    CHECK(strstr(err.msg, "blocks") != NULL);
}

static void test_chain_hash_depends_on_parent_and_tokens(void)
{
    int32_t a[4] = {1, 2, 3, 4}, b[4] = {1, 2, 3, 5};
    uint64_t h = kv_blocks_chain_hash(0, a, 4);
    CHECK(h != 0);
    CHECK(h == kv_blocks_chain_hash(0, a, 4));
    CHECK(h != kv_blocks_chain_hash(0, b, 4));
    CHECK(h != kv_blocks_chain_hash(h, a, 4));
    CHECK(kv_blocks_chain_hash(0, a, 3) != kv_blocks_chain_hash(0, a, 4));
}

static void test_publish_find_and_hit_on_free_block(void)
{
    kv_blocks kv;
    kv_blocks_init(&kv, 3, 2, NULL);
    int32_t t0[2] = {7, 8}, t1[2] = {9, 10};
    uint64_t h0 = kv_blocks_chain_hash(0, t0, 2), h1 = kv_blocks_chain_hash(h0, t1, 2);
    int b0 = kv_blocks_alloc(&kv), b1 = kv_blocks_alloc(&kv);
    CHECK(kv_blocks_publish(&kv, b0, h0, 0, t0));
    CHECK(kv_blocks_publish(&kv, b1, h1, h0, t1));
    CHECK(!kv_blocks_publish(&kv, b1, h1, h0, t1)); /* already published */
    CHECK_INT_EQ(kv_blocks_find(&kv, h0, 0, t0), b0);
    CHECK_INT_EQ(kv_blocks_find(&kv, h1, h0, t1), b1);
    CHECK_INT_EQ(kv_blocks_find(&kv, h1, 0, t1), KV_NO_BLOCK);  /* wrong parent */
    CHECK_INT_EQ(kv_blocks_find(&kv, h0, 0, t1), KV_NO_BLOCK);  /* same hash, other tokens */

    /* Shared: a second holder, then both release; it stays findable. */
    kv_blocks_acquire(&kv, b0);
    CHECK_INT_EQ(kv.ref_count[b0], 2);
    kv_blocks_release(&kv, b0);
    kv_blocks_release(&kv, b0);
    kv_blocks_release(&kv, b1);
    CHECK_INT_EQ(kv_blocks_n_free(&kv), 3);
    CHECK_INT_EQ(kv_blocks_find(&kv, h0, 0, t0), b0);
    kv_blocks_acquire(&kv, b0); /* hit on a free cached block */
    CHECK_INT_EQ(kv_blocks_n_free(&kv), 2);
    check_ok(&kv);

    /* A second block with the same chain is not published over the first. */
    int b2 = kv_blocks_alloc(&kv);
    CHECK_INT_EQ(b2, 2); /* the never-published block goes first */
    CHECK(!kv_blocks_publish(&kv, b2, h0, 0, t0));
    kv_blocks_release(&kv, b2);
    kv_blocks_release(&kv, b0);
    check_ok(&kv);
    kv_blocks_free(&kv);
}

/* Unpublished free blocks are reused before cached ones; cached ones in
 * least-recently-released order, and the eviction removes them from the
 * table. */
static void test_lru_eviction_order(void)
{
    kv_blocks kv;
    kv_blocks_init(&kv, 3, 1, NULL);
    int32_t tok[3] = {100, 101, 102};
    uint64_t h[3];
    for (int i = 0; i < 3; i++) {
        h[i] = kv_blocks_chain_hash(0, &tok[i], 1);
        CHECK_INT_EQ(kv_blocks_alloc(&kv), i);
    }
    kv_blocks_publish(&kv, 0, h[0], 0, &tok[0]);
    kv_blocks_publish(&kv, 1, h[1], 0, &tok[1]);
    kv_blocks_release(&kv, 1); /* released first: evicted first */
    kv_blocks_release(&kv, 0);
    kv_blocks_release(&kv, 2); /* unpublished: reused before both */
    CHECK_INT_EQ(kv_blocks_alloc(&kv), 2);
    CHECK_INT_EQ(kv.n_evicted, 0);
    CHECK_INT_EQ(kv_blocks_alloc(&kv), 1);
    CHECK_INT_EQ(kv.n_evicted, 1);
    CHECK_INT_EQ(kv_blocks_find(&kv, h[1], 0, &tok[1]), KV_NO_BLOCK);
    CHECK_INT_EQ(kv_blocks_find(&kv, h[0], 0, &tok[0]), 0);
    check_ok(&kv);
    kv_blocks_free(&kv);
}

int main(void)
{
    RUN_TEST(test_alloc_all_then_release);
    RUN_TEST(test_init_rejects_empty);
    RUN_TEST(test_chain_hash_depends_on_parent_and_tokens);
    RUN_TEST(test_publish_find_and_hit_on_free_block);
    RUN_TEST(test_lru_eviction_order);
    return test_summary();
}

/* slot_queue against a plain array doing the same random pushes and
 * removals (including across the ring's wrap and through growth). */
#include "harness.h"

#include <stdlib.h>

#include "engine/slot_queue.h"

static void test_matches_plain_array(void)
{
    slot_queue q = {0};
    int ref[4096], n = 0, bad = 0;
    srand(5);
    for (int op = 0; op < 20000; op++) {
        int kind = rand() % 4, v = rand();
        if (n >= 4000) kind = 2;
        if (kind == 0) {
            CHECK_INT_EQ(slot_queue_reserve(&q, n + 1), 0);
            slot_queue_push_back(&q, v);
            ref[n++] = v;
        } else if (kind == 1) {
            CHECK_INT_EQ(slot_queue_reserve(&q, n + 1), 0);
            slot_queue_push_front(&q, v);
            memmove(ref + 1, ref, (size_t)n * sizeof *ref);
            ref[0] = v;
            n++;
        } else if (n > 0) {
            int i = kind == 2 ? rand() % n : 0;
            slot_queue_remove_at(&q, i);
            memmove(ref + i, ref + i + 1, (size_t)(n - i - 1) * sizeof *ref);
            n--;
        }
        if (q.n != n) bad++;
        for (int i = 0; i < n && i < q.n; i++) bad += slot_queue_at(&q, i) != ref[i];
    }
    CHECK_INT_EQ(bad, 0);
    slot_queue_free(&q);
}

int main(void)
{
    RUN_TEST(test_matches_plain_array);
    return test_summary();
}

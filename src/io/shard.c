/* Cost-balanced row assignment (LPT greedy); see shard.h.
 *
 * LPT is within 4/3 of optimal in the worst case and, for thousands of rows
 * where no single prompt is a large share of a group's total, within a
 * fraction of a percent: the last rows placed are the shortest, and they
 * fill the gaps the long ones left. */
#include "io/shard.h"

#include <stdlib.h>

typedef struct {
    int64_t cost, row;
} costed_row;

static int by_cost_desc(const void *a, const void *b)
{
    const costed_row *x = a, *y = b;
    if (x->cost != y->cost)
        return x->cost > y->cost ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

/* Min-heap of groups keyed by (total, group id) so ties go to the lowest id
 * and the result never depends on heap internals. */
typedef struct {
    int64_t total;
    int32_t group;
} group_load;

static int load_less(const group_load *a, const group_load *b)
{
    return a->total != b->total ? a->total < b->total : a->group < b->group;
}

static void sift_down(group_load *h, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && load_less(&h[l], &h[m]))
            m = l;
        if (r < n && load_less(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        group_load t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

int vb_shard_assign(const int64_t *cost, int64_t n, int dp, int32_t *group_of_row)
{
    if (dp < 1 || n < 0)
        return -1;
    costed_row *order = malloc((size_t)(n ? n : 1) * sizeof *order);
    group_load *heap = malloc((size_t)dp * sizeof *heap);
    if (!order || !heap) {
        free(order);
        free(heap);
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        order[i].cost = cost[i] > 0 ? cost[i] : 0;
        order[i].row = i;
    }
    qsort(order, (size_t)n, sizeof *order, by_cost_desc);
    for (int g = 0; g < dp; g++)
        heap[g] = (group_load){0, g};
    for (int64_t k = 0; k < n; k++) {
        group_of_row[order[k].row] = heap[0].group;
        heap[0].total += order[k].cost;
        sift_down(heap, dp, 0);
    }
    free(order);
    free(heap);
    return 0;
}

int64_t vb_shard_rows_of(const int32_t *group_of_row, int64_t n, int group, int64_t *rows_out)
{
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (group_of_row[i] == group)
            rows_out[m++] = i;
    return m;
}

int64_t vb_shard_group_cost(const int64_t *cost, const int32_t *group_of_row, int64_t n,
                            int group)
{
    int64_t s = 0;
    for (int64_t i = 0; i < n; i++)
        if (group_of_row[i] == group && cost[i] > 0)
            s += cost[i];
    return s;
}

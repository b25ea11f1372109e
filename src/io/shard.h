/* Data-parallel sharding: which dp group runs which input row.
 *
 * Groups should finish together, so rows are split by cost (prompt tokens,
 * or bytes as a stand-in before tokenizing), not by count. The split is a
 * pure function of (costs, dp): every rank computes the same assignment, or
 * rank 0 computes it and broadcasts, with no further coordination. */
#ifndef VB_IO_SHARD_H
#define VB_IO_SHARD_H

#include <stdint.h>

/* Assigns each of n rows to one of dp groups (group_of_row[i] in [0, dp)),
 * longest-processing-time first: rows by descending cost (ties by row
 * number) each go to the group with the smallest total so far (ties to the
 * lowest group). Deterministic. Negative costs count as 0. Returns 0, or -1
 * when dp < 1 or memory runs out. */
int vb_shard_assign(const int64_t *cost, int64_t n, int dp, int32_t *group_of_row);

/* The rows of `group`, ascending, into rows_out (room for n); returns how
 * many. Ascending order lets a group leader read its rows in file order. */
int64_t vb_shard_rows_of(const int32_t *group_of_row, int64_t n, int group, int64_t *rows_out);

/* Sum of cost over a group's rows (for reports and the balance test). */
int64_t vb_shard_group_cost(const int64_t *cost, const int32_t *group_of_row, int64_t n,
                            int group);

#endif

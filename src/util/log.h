/* Messages to stderr, prefixed with the program and, under MPI, the rank.
 *
 * Batch logs from many ranks interleave; every line names its rank so a
 * failure can be traced to a node. Rank 0 alone prints progress. */
#ifndef VB_LOG_H
#define VB_LOG_H

/* Called once MPI is up; before that, lines carry no rank. */
void vb_log_set_rank(int world_rank, int world_size);

void vb_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vb_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vb_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif

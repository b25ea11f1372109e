/* Synthetic prompts for `voltbatch bench`: an input file of token ids. */
#ifndef VB_BENCH_INPUT_H
#define VB_BENCH_INPUT_H

#include <stdint.h>

#include "util/errors.h"

/* Writes `path` with /input_ids: n_prompts rows of prefix_len ids shared by
 * every row (a system prompt, for the prefix cache) followed by input_len
 * ids of the row's own, all drawn uniformly from [first_id, first_id +
 * n_ids); the same for the same seed. */
int bench_input_write(const char *path, int64_t n_prompts, int prefix_len, int input_len,
                      int32_t first_id, int32_t n_ids, uint64_t seed, vb_err *err);

#endif

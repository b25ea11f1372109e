/* Which part of every tensor a rank keeps under tensor parallelism.
 *
 * Megatron split: q/k/v and gate/up by output rows (attention by whole
 * heads; key/value heads replicated when tp exceeds their count), o_proj
 * and down_proj by input columns, embedding and lm_head by vocabulary rows
 * (ceil(vocab / tp) per rank, the last rank shorter). Filled by
 * tp_plan_make() (tp_plan.c, issue #3). */
#ifndef VB_TP_PLAN_H
#define VB_TP_PLAN_H

#include "model/model_config.h"
#include "util/errors.h"

typedef struct tp_plan {
    int tp, rank;
    int heads_local, head_start;        /* query heads [head_start, +heads_local) */
    int kv_heads_local, kv_head_start;  /* key/value heads kept (replicas when tp > kv heads) */
    int inter_local, inter_start;       /* MLP intermediate rows */
    int vocab_local, vocab_start;       /* embedding / lm_head rows */
} tp_plan;

/* Fails with a clear message when heads or the intermediate size do not
 * divide by tp (or tp does not divide by the key/value heads when it
 * exceeds them), naming every --tp value the model runs at. */
int tp_plan_make(tp_plan *p, const model_config *c, int tp, int rank, vb_err *err);

#endif

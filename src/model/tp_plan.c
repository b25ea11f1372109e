/* tp_plan_make: the Megatron split of one rank (see tp_plan.h). */
#include "model/tp_plan.h"

int tp_plan_make(tp_plan *p, const model_config *c, int tp, int rank, vb_err *err)
{
    if (tp < 1 || rank < 0 || rank >= tp)
        return vb_err_set(err, "--tp %d: rank %d is not in [0, %d)", tp, rank, tp);
    if (c->n_heads % tp)
        return vb_err_set(err, "--tp %d: the model's %d attention heads do not divide by %d",
                          tp, c->n_heads, tp);
    if (tp <= c->n_kv_heads ? c->n_kv_heads % tp : tp % c->n_kv_heads)
        return vb_err_set(err, "--tp %d: the model's %d key/value heads neither divide by %d nor "
                          "divide it", tp, c->n_kv_heads, tp);
    if (c->intermediate_size % tp)
        return vb_err_set(err, "--tp %d: intermediate_size %d does not divide by %d", tp,
                          c->intermediate_size, tp);
    p->tp = tp;
    p->rank = rank;
    p->heads_local = c->n_heads / tp;
    p->head_start = rank * p->heads_local;
    if (tp <= c->n_kv_heads) {
        p->kv_heads_local = c->n_kv_heads / tp;
        p->kv_head_start = rank * p->kv_heads_local;
    } else {
        /* Each kv head is replicated on tp / n_kv ranks: those whose query
         * heads form its group. */
        p->kv_heads_local = 1;
        p->kv_head_start = rank / (tp / c->n_kv_heads);
    }
    p->inter_local = c->intermediate_size / tp;
    p->inter_start = rank * p->inter_local;
    /* ceil split: every rank but the last gets the same count, so a token id
     * maps to its rank with one division. */
    int per = (c->vocab_size + tp - 1) / tp;
    p->vocab_start = rank * per < c->vocab_size ? rank * per : c->vocab_size;
    int end = p->vocab_start + per < c->vocab_size ? p->vocab_start + per : c->vocab_size;
    p->vocab_local = end - p->vocab_start;
    return 0;
}

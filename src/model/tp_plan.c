/* tp_plan_make: the Megatron split of one rank (see tp_plan.h). */
#include "model/tp_plan.h"

#include <stdio.h>
#include <string.h>

/* The heads and sizes divide by tp (the checks of tp_plan_make). */
static bool splits(const model_config *c, int tp)
{
    return c->n_heads % tp == 0 &&
           (tp <= c->n_kv_heads ? c->n_kv_heads % tp == 0 : tp % c->n_kv_heads == 0) &&
           c->intermediate_size % tp == 0;
}

/* A quantized checkpoint's groups run along the input dimension; o_proj
 * and down_proj are split by input columns, and a group cut in two would
 * would leave a rank with part of a group, which the kernels' layout (one
 * scale per whole group) does not describe. Act-order
 * GPTQ keeps its scales whole on every rank instead (quant_weights.h). */
static const char *cut_group(const model_config *c, int tp)
{
    int g = c->quant.group_size;
    if (c->quant.method == VB_QUANT_NONE || g <= 0 || c->quant.desc_act || tp == 1)
        return NULL;
    /* Every rank but the last must hold whole groups, so a group size
     * that does not divide the whole dimension is cut by any tp above 1:
     * GPTQ and compressed-tensors allow that (a shorter last group, whole
     * at tp 1), and skipping it here listed such a --tp as one that keeps
     * the groups whole, which the loader then refused. AWQ refuses it at
     * any tp: the loader names the tensor. */
    bool short_last_ok = c->quant.method != VB_QUANT_AWQ;
    int o_in = c->n_heads * c->head_dim, d_in = c->intermediate_size;
    if ((o_in % g == 0 || short_last_ok) && (o_in / tp) % g)
        return "o_proj";
    if ((d_in % g == 0 || short_last_ok) && (d_in / tp) % g)
        return "down_proj";
    return NULL;
}

/* The ceil split of the vocabulary (tp_plan_make) leaves every rank a
 * token: a rank without one has no logits to sample from. */
static bool vocab_splits(const model_config *c, int tp)
{
    return c->vocab_size >= 1 &&
           (long long)((c->vocab_size + tp - 1) / tp) * (tp - 1) < c->vocab_size;
}

/* Writes the --tp values this model runs at, "1, 2, 4, 8", into out. Each
 * divides the heads, so none exceeds their count; listing them all, not
 * only those below a refused value, matters because a larger tp can keep
 * quantization groups whole where a smaller one cuts them (96 columns in
 * groups of 32: tp 2 gives 48 a rank, tp 3 gives 32). */
static void working_tps(const model_config *c, char *out, size_t size)
{
    out[0] = '\0';
    for (int t = 1; t <= c->n_heads && strlen(out) + 8 < size; t++)
        if (splits(c, t) && vocab_splits(c, t) && !cut_group(c, t))
            snprintf(out + strlen(out), size - strlen(out), "%s%d", out[0] ? ", " : "", t);
    if (!out[0])
        snprintf(out, size, "none");
}

/* Refuses a tp the heads, key/value heads, intermediate size or the
 * vocabulary do not split by, naming the values that work. */
static int refuse_shape(const model_config *c, int tp, vb_err *err)
{
    char ok[160];
    working_tps(c, ok, sizeof ok);
    if (c->n_heads % tp)
        return vb_err_set(err, "--tp %d: the model's %d attention heads do not divide by %d; "
                          "--tp values that work: %s", tp, c->n_heads, tp, ok);
    if (tp <= c->n_kv_heads ? c->n_kv_heads % tp : tp % c->n_kv_heads)
        return vb_err_set(err, "--tp %d: the model's %d key/value heads neither divide by %d nor "
                          "divide it; --tp values that work: %s", tp, c->n_kv_heads, tp, ok);
    if (c->intermediate_size % tp)
        return vb_err_set(err, "--tp %d: intermediate_size %d does not divide by %d; --tp values "
                          "that work: %s", tp, c->intermediate_size, tp, ok);
    return vb_err_set(err, "--tp %d: the model's vocabulary of %d tokens leaves the last rank "
                      "none (each rank takes %d); --tp values that work: %s", tp, c->vocab_size,
                      c->vocab_size > 0 ? (c->vocab_size + tp - 1) / tp : 0, ok);
}

int tp_plan_make(tp_plan *p, const model_config *c, int tp, int rank, vb_err *err)
{
    if (tp < 1 || rank < 0 || rank >= tp)
        return vb_err_set(err, "--tp %d: rank %d is not in [0, %d)", tp, rank, tp);
    if (!splits(c, tp) || !vocab_splits(c, tp))
        return refuse_shape(c, tp, err);
    const char *cut = cut_group(c, tp);
    if (cut) {
        char ok[160];
        working_tps(c, ok, sizeof ok);
        return vb_err_set(err, "--tp %d splits the %s quantization groups of %d input columns "
                          "of %s across ranks (each rank would hold %d of its %d columns); "
                          "--tp values that keep them whole: %s", tp,
                          vb_quant_method_name(c->quant.method), c->quant.group_size, cut,
                          strcmp(cut, "o_proj") == 0 ? c->n_heads / tp * c->head_dim
                                                     : c->intermediate_size / tp,
                          strcmp(cut, "o_proj") == 0 ? c->n_heads * c->head_dim
                                                     : c->intermediate_size,
                          ok);
    }
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

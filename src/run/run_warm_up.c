/* The engine's warm-up steps (see run_warm_up.h). */
#include "run/run_warm_up.h"

#include "util/log.h"

/* The made-up sequence's prompt: more tokens than a GEMV step takes (the
 * prefill's GEMM and attention kernels run), all in the cache's first
 * block with the decode token after them. */
#define WARM_UP_PREFILL 15

static bool wanted(const run_state *r)
{
    switch (r->cfg->tuning.warm_up) {
    case VB_WARM_UP_OFF:
        return false;
    case VB_WARM_UP_ON:
        return true;
    default: /* auto: only a GPU has one-time costs worth moving */
        return r->eng.rb.cuda;
    }
}

/* One step of the made-up sequence: n tokens from position pos0, in the
 * cache's first block. Returns 0, or 1 with err. */
static int warm_up_step(run_engine *e, int n, int pos0, vb_err *err)
{
    static const int32_t tokens[WARM_UP_PREFILL] = {0}; /* token 0: every vocabulary has it */
    const int32_t block = 0;
    step_batch_clear(&e->sb);
    if (step_batch_add_seq(&e->sb, tokens, n, pos0, &block, 1) ||
        !forward_step(&e->fs, &e->sb, &e->kv)) {
        vb_err_set(err, "the warm-up's step of %d token%s at position %d was refused", n,
                   n == 1 ? "" : "s", pos0);
        return 1;
    }
    return 0;
}

int run_warm_up(run_state *r, vb_err *err)
{
    run_engine *e = &r->eng;
    if (!wanted(r))
        return 0;
    /* the prompt as long as the step's token budget and the block allow,
     * leaving the block's last position to the decode token */
    int n = WARM_UP_PREFILL;
    if (n > e->step_tokens)
        n = e->step_tokens;
    if (n > e->kv.block_size - 1)
        n = e->kv.block_size - 1;
    const double t0 = run_wall_now();
    const long recorded = e->b->graphs_recorded;
    if (warm_up_step(e, n, 0, err) || warm_up_step(e, 1, n, err))
        return 1;
    /* wait for the GPU, so the time below is the warm-up's */
    float one = 0;
    e->b->to_host(e->b, &one, e->fs.logits, sizeof one);
    if (r->leader)
        vb_info("warm-up: a %d-token prefill and a 1-token decode step (%s) in %.1f ms, "
                "before the first row",
                n, e->b->graphs_recorded != recorded ? "its CUDA graph recorded" : "no CUDA graph",
                1e3 * (run_wall_now() - t0));
    return 0;
}

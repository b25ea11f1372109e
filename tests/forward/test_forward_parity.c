/* Parity of the forward pass on the CPU backend with Hugging Face
 * transformers (fp32, CPU, eager attention).
 *
 *   [mpirun -np TP] test_forward_parity FIXTURES_DIR TP [MODEL ...]
 *
 * With VB_TEST_BACKEND=cuda the same checks run on the CUDA backend (fp16
 * weights and activations, one GPU per rank, NCCL), with the fp16
 * tolerances of issue #7: per position ||ours - ref||_2 / ||ref||_2 <= 1e-2
 * (and the max-norm ratio <= 2e-2), teacher-forced greedy tokens >= 99%
 * identical over all the models of the run (>= 98 % each). It skips (77)
 * without enough GPUs.
 *
 * With VB_TEST_KV_DTYPE=int8 (either backend) the KV cache is int8 with a
 * scale per token and head (forward/kv_int8.h), checked with wider
 * tolerances (REL_TOL_KV_INT8, MISMATCH_FRAC_KV_INT8 below, per model and
 * over all of them).
 *
 * Quantized checkpoints (issue #21: AWQ, GPTQ, compressed-tensors) run the
 * same checks with the same CPU tolerances, on tests/forward/quant_fixtures
 * (scripts/make-quant-fixtures: the reference is transformers on the
 * checkpoint dequantized by scripts/dequantize-reference).
 *
 * References come from scripts/make-forward-fixtures (small random models
 * saved with save_pretrained; logits and greedy continuations computed by
 * transformers; versions in each reference.json). For each model:
 *  - prompt logits: the first n_logit_prompts prompts in ONE ragged step,
 *    every position's logits;
 *    per position, max_j |ours - ref| / max_j |ref| over the whole
 *    vocabulary (each rank checks its slice, the maxima are all-reduced)
 *    must be <= 1e-4;
 *  - greedy continuations of all (50) prompts, 64 tokens each: prefill in chunks of 7 tokens per sequence (so
 *    later chunks attend to cached blocks), then one-token decode steps
 *    with all sequences batched; blocks interleaved across sequences so
 *    every lookup goes through the block table; argmax over the split
 *    vocabulary by MAXLOC all-reduce (ties: lowest id, as torch.argmax).
 *    The tokens must be identical; the fixtures guarantee a top-2 gap
 *    >= 1e-4 at every reference step (our logits differ by ~1e-5), so rounding cannot flip them. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_backend.h"
#include "mpi/dist.h"
#include "mpi/mpi_check.h"
#include "forward/forward.h"
#include "harness.h"
#include "model/model_load.h"
#include "util/env.h"
#include "vb_config.h"
#if VB_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "cuda/backend_cuda.h"
#include "cuda/cuda_device.h"
#endif

#define REL_TOL 1e-4
#define REL_TOL_FP16 1e-2
#define MISMATCH_FRAC_FP16 0.01
/* fp16 greedy agreement is judged over all the models of a run (>= 99 %),
 * with each model allowed twice that: the quantized fixtures hold 240
 * tokens a model, where 3 misses (98.75 %) are within the noise of a true
 * 99.5 % (ct_w4a16_g64_asym on the H200: 237/240, the nine pooled 99.7 %);
 * a broken kernel misses far more. */
#define MISMATCH_FRAC_FP16_MODEL 0.02
static long pooled_mismatches, pooled_compared;
/* The int8 KV cache on these random models: relative L2 2-6 % and 96.5-98.3 %
 * of greedy tokens at the first run (a tiny random model's near-uniform
 * logits magnify the K/V rounding); a wrong scale or layout lands far
 * outside. The acceptance figure is the real model's
 * (test_int8_agreement). */
#define REL_TOL_KV_INT8 0.08
#define MISMATCH_FRAC_KV_INT8 0.05
/* On the GPU the K and V rows are fp16 before they are quantized, so the
 * fp16 path's misses (MISMATCH_FRAC_FP16_MODEL) come on top of the CPU's
 * int8 ones (3.5 % at worst, llama_untied): 8 %, a first bound not yet
 * measured on a GPU; a wrong scale or layout misses most tokens. */
#define MISMATCH_FRAC_KV_INT8_CUDA 0.08

static bool use_cuda;
static bool kv_int8; /* VB_TEST_KV_DTYPE=int8: the int8 KV cache, its own tolerances */
#if VB_HAVE_CUDA
static ncclComm_t nccl;
#endif
#define BLOCK 16
#define CHUNK 7

static vb_dist d;
static vb_tuning knobs; /* VB_CPU_THREADS, the CUDA knobs: as voltbatch reads them */
static const char *fixtures;
static const char *model_name;

#define MAX_PROMPTS 64

typedef struct reference {
    int n_prompts, n_logit_prompts, vocab;
    int32_t *prompt[MAX_PROMPTS], *cont[MAX_PROMPTS];
    int prompt_len[MAX_PROMPTS], cont_len[MAX_PROMPTS];
    float *logits;  /* [sum of the first n_logit_prompts prompt lengths, vocab] */
} reference;

static int32_t *json_ids(json_t *a, int *n)
{
    *n = (int)json_array_size(a);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(*n > 0 ? *n : 1));
    for (int i = 0; i < *n; i++)
        ids[i] = (int32_t)json_integer_value(json_array_get(a, (size_t)i));
    return ids;
}

static int load_reference(reference *r, const char *dir)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/reference.json", dir);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) {
        fprintf(stderr, "%s: %s\n", path, je.text);
        return -1;
    }
    json_t *ps = json_object_get(root, "prompts"), *cs = json_object_get(root, "continuations");
    r->n_prompts = (int)json_array_size(ps);
    if (r->n_prompts > MAX_PROMPTS)
        r->n_prompts = MAX_PROMPTS;
    r->n_logit_prompts = (int)json_integer_value(json_object_get(root, "n_logit_prompts"));
    r->vocab = (int)json_integer_value(json_object_get(root, "vocab_size"));
    size_t rows = 0;
    for (int i = 0; i < r->n_prompts; i++) {
        r->prompt[i] = json_ids(json_array_get(ps, (size_t)i), &r->prompt_len[i]);
        r->cont[i] = json_ids(json_array_get(cs, (size_t)i), &r->cont_len[i]);
        if (i < r->n_logit_prompts)
            rows += (size_t)r->prompt_len[i];
    }
    json_decref(root);
    snprintf(path, sizeof path, "%s/logits.f32", dir);
    FILE *f = fopen(path, "rb");
    r->logits = malloc(sizeof(float) * rows * (size_t)r->vocab);
    size_t got = f ? fread(r->logits, sizeof(float), rows * (size_t)r->vocab, f) : 0;
    if (f)
        fclose(f);
    if (got != rows * (size_t)r->vocab) {
        fprintf(stderr, "%s: expected %zu floats, read %zu\n", path, rows * (size_t)r->vocab, got);
        return -1;
    }
    return 0;
}

static void free_reference(reference *r)
{
    for (int i = 0; i < r->n_prompts; i++) {
        free(r->prompt[i]);
        free(r->cont[i]);
    }
    free(r->logits);
}

/* Blocks of sequence s: s, s + n, s + 2n, ... (interleaved on purpose). */
static void block_table(int32_t *bt, int s, int n_seqs, int n_blocks)
{
    for (int i = 0; i < n_blocks; i++)
        bt[i] = s + i * n_seqs;
}

/* Argmax of one row over the whole vocabulary: local best, then MAXLOC. */
static int global_argmax(const float *row, const tp_plan *p)
{
    struct { float v; int i; } in = {-INFINITY, 0}, out;
    for (int j = 0; j < p->vocab_local; j++)
        if (row[j] > in.v) {
            in.v = row[j];
            in.i = p->vocab_start + j;
        }
    MPI_CHECK(MPI_Allreduce(&in, &out, 1, MPI_FLOAT_INT, MPI_MAXLOC, d.tp_comm));
    return out.i;
}

/* The logits of a step in host memory (the CUDA backend's are on the GPU). */
static const float *logits_on_host(vb_backend *b, const float *logits, const step_batch *sb,
                                   const tp_plan *p, float *host)
{
    if (!use_cuda || !logits)
        return logits;
    b->to_host(b, host, logits, sizeof(float) * (size_t)step_batch_n_out(sb) * p->vocab_local);
    return host;
}

/* The norm fold (backend.h) changes no bit: sb's step once more with the
 * backend's fold and once without it, the logits compared byte for byte
 * (the CPU backend at tp 1 with quantized weights: the forward's fold
 * path, its declines included, against the plain one). Rewrites the
 * step's K/V rows with the same values. */
static void check_fold_same(vb_backend *b, forward_state *fs, const step_batch *sb,
                            const vb_kv_cache *kv, const tp_plan *plan, float *host)
{
    bool (*fold)(vb_backend *, void *, const void *, const void *, int, int, int) =
        b->matmul_quant_resid;
    if (use_cuda || !fold || fs->w->quant == VB_QUANT_NONE || plan->tp != 1)
        return;
    const size_t n = (size_t)step_batch_n_out(sb) * (size_t)plan->vocab_local;
    float *with = malloc(sizeof(float) * n);
    memcpy(with, logits_on_host(b, forward_step(fs, sb, kv), sb, plan, host), sizeof(float) * n);
    b->matmul_quant_resid = NULL;
    const float *without = logits_on_host(b, forward_step(fs, sb, kv), sb, plan, host);
    b->matmul_quant_resid = fold;
    const bool same = memcmp(with, without, sizeof(float) * n) == 0;
    if (d.world_rank == 0)
        printf("  %s: the norm fold's %d-token step %s the plain one's bits\n", model_name,
               sb->n_tokens, same ? "gives" : "DOES NOT give");
    CHECK(same);
    free(with);
}

static void run_model(void)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", fixtures, model_name);
    vb_err err = {{0}};
    model_config cfg;
    tp_plan plan;
    model_weights w = {0};
    reference ref = {0};
    if (model_config_load(&cfg, dir, &err) || tp_plan_make(&plan, &cfg, d.tp, d.tp_rank, &err) ||
        model_load_cpu(&w, &cfg, &plan, dir, &err)) {
        fprintf(stderr, "  %s: %s\n", dir, err.msg);
        CHECK(0);
        return;
    }
    CHECK(load_reference(&ref, dir) == 0);
    CHECK_INT_EQ(ref.vocab, cfg.vocab_size);

    int n = ref.n_prompts, nl = ref.n_logit_prompts, total = 0, max_len = 0, max_blocks = 0;
    for (int i = 0; i < n; i++) {
        if (i < nl)
            total += ref.prompt_len[i];
        int len = ref.prompt_len[i] + ref.cont_len[i];
        max_len = len > max_len ? len : max_len;
    }
    max_blocks = (max_len + BLOCK - 1) / BLOCK;

    const model_weights *wrun = &w;
    vb_backend *b = NULL;
#if VB_HAVE_CUDA
    model_weights wdev = {0};
    if (use_cuda) {
        b = cuda_backend_create(nccl, &knobs, &err);
        if (cuda_weights_upload(&wdev, &w, &cfg, &plan, &err) != 0) {
            fprintf(stderr, "  %s: %s\n", dir, err.msg);
            CHECK(0);
            return;
        }
        wrun = &wdev;
    }
#endif
    if (!use_cuda)
        b = cpu_backend_create(knobs.cpu_threads, d.tp_comm, d.local_size);
    vb_kv_cache kv;
    forward_state fs;
    step_batch sb;
    CHECK(b != NULL);
    if (kv_int8)
        b->kv_dtype = VB_KV_INT8;
    CHECK(kv_cache_alloc(&kv, b, cfg.n_layers, n * max_blocks, BLOCK, plan.kv_heads_local,
                         cfg.head_dim, &err) == 0);
    int max_tokens = total > n * CHUNK ? total : n * CHUNK;
    CHECK(forward_init(&fs, b, &cfg, &plan, wrun, max_tokens, &err) == 0);
    float *host_logits = malloc(sizeof(float) * (size_t)max_tokens * (size_t)plan.vocab_local);
    CHECK(step_batch_init(&sb, n, max_tokens, max_blocks) == 0);
    int32_t bt[64];

    /* 1. prompt logits, the first nl prompts in one step */
    for (int s = 0; s < nl; s++) {
        int nb = (ref.prompt_len[s] + BLOCK - 1) / BLOCK;
        block_table(bt, s, n, nb);
        step_batch_add_seq(&sb, ref.prompt[s], ref.prompt_len[s], 0, bt, nb);
    }
    sb.all_logits = true;
    const float *logits = logits_on_host(b, forward_step(&fs, &sb, &kv), &sb, &plan, host_logits);
    double worst = 0, worst_l2 = 0;
    for (int t = 0; t < total; t++) {
        const float *ours = logits + (size_t)t * plan.vocab_local;
        const float *want = ref.logits + (size_t)t * ref.vocab + plan.vocab_start;
        double loc[2] = {0, 0}, glob[2], sq[2] = {0, 0}, sq_all[2];
        for (int j = 0; j < plan.vocab_local; j++) {
            double diff = fabs((double)ours[j] - want[j]);
            loc[0] = diff > loc[0] ? diff : loc[0];
            loc[1] = fabs(want[j]) > loc[1] ? fabs(want[j]) : loc[1];
            sq[0] += diff * diff;
            sq[1] += (double)want[j] * want[j];
        }
        MPI_CHECK(MPI_Allreduce(loc, glob, 2, MPI_DOUBLE, MPI_MAX, d.tp_comm));
        MPI_CHECK(MPI_Allreduce(sq, sq_all, 2, MPI_DOUBLE, MPI_SUM, d.tp_comm));
        double rel = glob[0] / (glob[1] > 0 ? glob[1] : 1);
        double rel_l2 = sqrt(sq_all[0] / (sq_all[1] > 0 ? sq_all[1] : 1));
        worst = rel > worst ? rel : worst;
        worst_l2 = rel_l2 > worst_l2 ? rel_l2 : worst_l2;
    }
    if (kv_int8) {
        CHECK(worst_l2 <= REL_TOL_KV_INT8);
        CHECK(worst <= 2 * REL_TOL_KV_INT8);
    } else if (use_cuda) {
        /* fp16: ||ours - ref|| / ||ref|| per position (issue #7's "relative
         * error"), and the max-norm ratio within twice that */
        CHECK(worst_l2 <= REL_TOL_FP16);
        CHECK(worst <= 2 * REL_TOL_FP16);
    } else {
        CHECK(worst <= REL_TOL);
    }
    check_fold_same(b, &fs, &sb, &kv, &plan, host_logits); /* prompts: a step of many rows */

    /* 2. greedy continuations: chunked prefill, then batched decode */
    int32_t *seq[MAX_PROMPTS];
    int len[MAX_PROMPTS], done_prefill[MAX_PROMPTS] = {0}, mismatches = 0, compared = 0;
    for (int s = 0; s < n; s++) {
        seq[s] = malloc(sizeof(int32_t) * (size_t)max_len);
        memcpy(seq[s], ref.prompt[s], sizeof(int32_t) * (size_t)ref.prompt_len[s]);
        len[s] = ref.prompt_len[s];
    }
    for (;;) {
        step_batch_clear(&sb);
        sb.all_logits = false;
        int who[MAX_PROMPTS], m = 0;
        for (int s = 0; s < n; s++) {
            int pos0, cnt;
            if (done_prefill[s] < ref.prompt_len[s]) {
                pos0 = done_prefill[s];
                cnt = ref.prompt_len[s] - pos0 < CHUNK ? ref.prompt_len[s] - pos0 : CHUNK;
            } else if (len[s] < ref.prompt_len[s] + ref.cont_len[s]) {
                pos0 = len[s] - 1;
                cnt = 1;
            } else {
                continue;
            }
            int nb = (pos0 + cnt + BLOCK - 1) / BLOCK;
            block_table(bt, s, n, nb);
            step_batch_add_seq(&sb, seq[s] + pos0, cnt, pos0, bt, nb);
            who[m++] = s;
            if (done_prefill[s] < ref.prompt_len[s])
                done_prefill[s] += cnt;
        }
        if (m == 0)
            break;
        logits = logits_on_host(b, forward_step(&fs, &sb, &kv), &sb, &plan, host_logits);
        for (int i = 0; i < m; i++) {
            int s = who[i];
            /* a sequence still mid-prompt produces no token */
            if (sb.ctx_len[i] < ref.prompt_len[s] || sb.ctx_len[i] < len[s])
                continue;
            int tok = global_argmax(logits + (size_t)i * plan.vocab_local, &plan);
            int k = len[s] - ref.prompt_len[s];
            compared++;
            if (tok != ref.cont[s][k]) {
                if (mismatches++ == 0 && d.tp_rank == 0)
                    fprintf(stderr, "  prompt %d, new token %d: got %d, transformers %d\n", s, k, tok,
                            ref.cont[s][k]);
            }
            seq[s][len[s]++] = ref.cont[s][k]; /* teacher-force so one miss does not cascade */
        }
    }
    { /* a decode step of one row (a1's), prompt 0's last token again */
        step_batch_clear(&sb);
        sb.all_logits = false;
        int nb = (len[0] + BLOCK - 1) / BLOCK;
        block_table(bt, 0, n, nb);
        step_batch_add_seq(&sb, seq[0] + len[0] - 1, 1, len[0] - 1, bt, nb);
        check_fold_same(b, &fs, &sb, &kv, &plan, host_logits);
    }
    int want_compared = 0;
    for (int s = 0; s < n; s++)
        want_compared += ref.cont_len[s];
    if (kv_int8)
        CHECK(mismatches <=
              (use_cuda ? MISMATCH_FRAC_KV_INT8_CUDA : MISMATCH_FRAC_KV_INT8) * compared);
    else if (use_cuda)
        CHECK(mismatches <= MISMATCH_FRAC_FP16_MODEL * compared);
    else
        CHECK_INT_EQ(mismatches, 0);
    pooled_mismatches += mismatches;
    pooled_compared += compared;
    CHECK_INT_EQ(compared, want_compared);
    if (d.world_rank == 0)
        printf("  %s %s tp=%d: prompt logits rel err max-norm %.3g, L2 %.3g (%d positions); "
               "greedy %d/%d tokens identical (%d prompts)%s\n", b->name, model_name, d.tp, worst,
               worst_l2, total, compared - mismatches, compared, n,
               kv_int8 ? ", int8 KV cache" : "");

    for (int s = 0; s < n; s++)
        free(seq[s]);
    step_batch_free(&sb);
    forward_free(&fs);
    kv_cache_free(&kv, b);
    b->destroy(b);
    free(host_logits);
#if VB_HAVE_CUDA
    if (use_cuda)
        cuda_weights_free(&wdev, &cfg);
#endif
    model_weights_free(&w);
    free_reference(&ref);
}

static void check_pooled(void)
{
    if (d.world_rank == 0)
        printf("  all models: greedy %ld/%ld tokens identical\n",
               pooled_compared - pooled_mismatches, pooled_compared);
    CHECK(pooled_mismatches <=
          (kv_int8 ? MISMATCH_FRAC_KV_INT8_CUDA : MISMATCH_FRAC_FP16) * pooled_compared);
}

int main(int argc, char **argv)
{
    vb_dist_init(&argc, &argv);
    if (argc < 3) {
        fprintf(stderr, "usage: test_forward_parity FIXTURES_DIR TP [MODEL ...]\n");
        return 2;
    }
    fixtures = argv[1];
    vb_err err;
    if (vb_dist_setup(&d, atoi(argv[2]), &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    if (vb_tuning_from_env(&knobs, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const char *backend = getenv("VB_TEST_BACKEND");
    use_cuda = backend && strcmp(backend, "cuda") == 0;
    const char *kv_dtype = getenv("VB_TEST_KV_DTYPE");
    kv_int8 = kv_dtype && strcmp(kv_dtype, "int8") == 0;
    if (use_cuda) {
#if VB_HAVE_CUDA
        int count = 0;
        if (cudaGetDeviceCount(&count) != cudaSuccess || count < d.local_size) {
            if (d.world_rank == 0)
                printf("SKIP: %d rank(s) need as many GPUs, %d visible\n", d.local_size, count);
            vb_dist_free(&d);
            vb_dist_finalize();
            return 77;
        }
        int dev = 0;
        if (cuda_select_device(&d, &dev, NULL, 0, &err) != 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        nccl = cuda_nccl_comm_create(&d);
#else
        printf("SKIP: built without CUDA\n");
        return 77;
#endif
    }
    static const char *all[] = {"qwen2_tied", "llama_untied", "mistral", "qwen3_qknorm",
                                "llama3_rope", "qwen2_yarn"};
    int n_models = argc > 3 ? argc - 3 : (int)(sizeof all / sizeof all[0]);
    for (int i = 0; i < n_models; i++) {
        model_name = argc > 3 ? argv[3 + i] : all[i];
        test_run(model_name, run_model);
    }
    if (use_cuda && pooled_compared > 0)
        test_run("greedy over all models", check_pooled);
    int rc = test_summary();
    vb_dist_free(&d);
    vb_dist_finalize();
    return rc;
}

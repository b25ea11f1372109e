/* The environment knobs: the table, the defaults and the one reading of
 * the environment (see env.h). */
#include "util/env.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A WORD knob's index is stored through an int. */
_Static_assert(sizeof(enum vb_step_sync) == sizeof(int), "enum vb_step_sync is an int");
_Static_assert(sizeof(enum vb_warm_up) == sizeof(int), "enum vb_warm_up is an int");

#define AT(field) offsetof(vb_tuning, field)
#define BOOL_KNOB(name, field, what) {name, VB_KNOB_BOOL, 0, 1, NULL, "0", AT(field), what}
#define PATH_KNOB(name, field, what) {name, VB_KNOB_PATH, 0, 0, NULL, "", AT(field), what}

/* Every variable voltbatch reads. README's knob table lists the VB_ ones
 * (tests/unit/test_env_knobs.sh keeps the two in step); a new knob gets a
 * row here, a field in vb_tuning and a README line, nothing else. */
static const vb_knob knobs[] = {
    /* CUDA backend (backend_cuda.c, made once per run) */
    BOOL_KNOB("VB_PROFILE", profile,
              "per-op GPU time, decode and prefill tables in the log at exit (CUDA graphs off)"),
    /* default 2: on an H200 the GEMV kernel is 1.5x cuBLAS at 1 row, 1.2x
     * at 2 and slower from 4 on (tests/bench/bench_gemv.c; RESULTS.md) */
    {"VB_GEMV_MAX_ROWS", VB_KNOB_INT, 0, VB_TUNING_GEMV_ROWS_MAX, NULL, "2", AT(gemv_max_rows),
     "steps of up to N rows use the GEMV kernel, larger ones cuBLAS"},
    BOOL_KNOB("VB_NO_GEMV", no_gemv, "cuBLAS for every projection"),
    BOOL_KNOB("VB_NO_FUSED_GEMV", no_fused_gemv,
              "GEMVs one matrix at a time instead of q/k/v (gate/up) in one launch"),
    BOOL_KNOB("VB_NO_ROPE_FUSION", no_rope_fusion,
              "RoPE and the KV write as a kernel of their own, not in the q/k/v GEMV's epilogue"),
    BOOL_KNOB("VB_QKV_SHALLOW", qkv_shallow,
              "the fused q/k/v GEMV of fp16 decode steps with one chunk of its rows in flight "
              "a lane (the kernel before session 30) instead of three (the same bits; to compare)"),
    BOOL_KNOB("VB_GEMV_L1_ALLOC", gemv_l1_alloc,
              "the fp16 decode GEMV's weight loads allocate in L1 (before session 32) instead "
              "of streaming past it (the same results; to compare)"),
    BOOL_KNOB("VB_QGEMV_L1_ALLOC", qgemv_l1_alloc,
              "the quantized decode GEMV's weight loads allocate in L1 (before session 32) "
              "instead of streaming past it (the same results; to compare)"),
    /* the same bits either way (tests/gpu/test_cuda_quant.c); 7B AWQ decode
     * steps 2.53 -> 2.46 ms on an H100 (RESULTS.md, session 33) */
    {"VB_QGEMV_X_SHARED", VB_KNOB_INT, 0, 1, NULL, "1", AT(qgemv_x_shared),
     "1 (default): the quantized decode GEMV (tensor-core kernel) copies x into shared "
     "memory and reads its fragments there (steps of 1 or 2 rows, up to 64 KB of x); 0 "
     "reads x through L1 (the kernel before session 33; the same results)"},
    BOOL_KNOB("VB_QGEMV_KS_BY_TILES", qgemv_ks_by_tiles,
              "the quantized decode GEMV takes 12 warps a 16-row tile for every matrix of at "
              "most 4 tiles an SM (before session 34), also where those blocks need two waves "
              "(the 7B q/k/v); by default 8 there (fp32 sums in another order)"),
    /* 7B AWQ decode steps 2.21 -> 2.14 ms on an H100 (RESULTS.md, session 46) */
    {"VB_QGEMV_KS_BALANCE", VB_KNOB_INT, 0, 1, NULL, "1", AT(qgemv_ks_balance),
     "1 (default): where the quantized decode GEMV would take 8 warps a 16-row tile, it "
     "takes 4 where those fill the GPU's waves to 95 % (the joined 7B gate/up); 0 always "
     "8 there, as before session 46 (fp32 sums in another order)"},
    /* the same bits at every U (tests/gpu/test_cuda_quant.c) */
    {"VB_QGEMV_UNROLL", VB_KNOB_WORD, 0, 0, "0|1|2|4", "0", AT(qgemv_unroll),
     "the quantized decode GEMV's (tensor-core kernel) steps loaded ahead a lane: 1 (4 "
     "blocks of 8 warps an SM; slower or level on an H100), 2 or 4; 0 (default) the "
     "launcher's choice"},
    /* the same bits as the mma kernel (tests/gpu/test_cuda_quant.c); measured
     * on an H200, RESULTS.md session 36 */
    {"VB_QGEMV_RING", VB_KNOB_INT, 0, 8, NULL, "0", AT(qgemv_ring),
     "stages (2-8) of the quantized decode GEMV's ring kernel: each warp copies its weights "
     "that many steps ahead into shared memory (cp.async) instead of registers; 0 (default) "
     "or 1: the mma kernel (the same results; slower on an H200 but for the 8-bit gate/up "
     "and q/k/v at 3 stages)"},
    {"VB_QGEMV_RING_SCOPE", VB_KNOB_WORD, 0, 0, "all|pairs8", "all", AT(qgemv_ring_scope),
     "where VB_QGEMV_RING's ring kernel runs: all (default) the layouts it takes, pairs8 "
     "only the 8-bit paired GEMVs (gate/up, q/k/v), where 3 stages beat the mma kernel on "
     "an H200 (an experiment, not yet measured end to end)"},
    /* the same bits either way (tests/gpu/test_cuda_quant.c); RESULTS.md
     * session 39 */
    {"VB_QGEMV_BLOCKS", VB_KNOB_INT, 0, 1, NULL, "1", AT(qgemv_blocks),
     "1 (default): on sm_80+ GPUs quantized weights are stored in blocks of 8 rows, step by "
     "step, so that the decode GEMV's warp loads read whole 512-byte runs; 0 in row order "
     "(the layout before session 39; the same results)"},
    BOOL_KNOB("VB_ATTENTION_PER_TOKEN", attention_per_token,
              "the plain per-token attention kernel for every step"),
    BOOL_KNOB("VB_DECODE_WHOLE_GROUPS", decode_whole_groups,
              "decode attention with a block per GQA group at every step size"),
    /* the same bits either way (tests/gpu/test_kv_int8_kernels.c) */
    BOOL_KNOB("VB_DECODE_REDUCE_KERNEL", decode_reduce_kernel,
              "decode attention's splits combined by a kernel of their own after it (before "
              "session 34) instead of by each head group's last split block (the same results; "
              "to compare)"),
    /* the same bits at both (tests/gpu/test_attention_decode_mma.c) */
    {"VB_DECODE_STAGES", VB_KNOB_WORD, 0, 0, "0|2|6", "0", AT(decode_stages),
     "the tensor-core decode attention's pipeline stages a warp: 2 or 6 (tiles in flight "
     "ahead); 0 (default) 6 where a launch has no more blocks than the GPU has SMs (batch 1), "
     "else 2 (the same results)"},
    BOOL_KNOB("VB_TABLE_BUCKETS", table_buckets,
              "block tables on the GPU as wide as the step's longest sequence needs (a power "
              "of two), not the model's whole context: fewer decode attention splits at short "
              "contexts (no change at a1 on an H200: off by default)"),
    /* its bits are the separate kernels' (tests/gpu/test_cuda_quant.c
     * checks that); 1-2 % faster 7B AWQ decode steps on an H200 (RESULTS.md,
     * session 29) */
    {"VB_QGEMV_EPILOGUE", VB_KNOB_INT, 0, 1, NULL, "1", AT(qgemv_epilogue),
     "1 (default): quantized decode steps take the SiLU-gate (gate/up) and RoPE with the KV "
     "write (q/k/v) in the GEMV's epilogue, one launch instead of two (group 128 at 4 bits, "
     "64 or 128 at 8); 0 the separate kernels (the same bits)"},
    /* the same bits either way (tests/gpu/test_cuda_quant.c; a1 outputs
     * compared, RESULTS.md sessions 36-37, the GPU forward tests run with
     * it on in session 37); 1-2 % faster quantized 7B decode steps */
    {"VB_NORM_FOLD", VB_KNOB_BOOL, 0, 1, NULL, "1", AT(norm_fold),
     "1 (default): quantized decode steps at tp 1 without the RMSNorm kernels: o and down "
     "add themselves to the residual stream in their GEMV's epilogue and the next paired "
     "GEMV (q/k/v, gate/up) makes its normed input itself (two launches a layer fewer; the "
     "same results; 1-2 % faster 7B AWQ and GPTQ-8 decode steps on an H100 and an H200); 0 "
     "the RMSNorm kernels"},
    BOOL_KNOB("VB_NO_PDL", no_pdl,
              "launch the decode kernels plainly, without programmatic dependent launch"),
    BOOL_KNOB("VB_PREFILL_WMMA", prefill_wmma,
              "prefill attention with the WMMA kernel (V100's) on sm_80+ GPUs too"),
    BOOL_KNOB("VB_PREFILL_MMA16", prefill_mma16,
              "prefill attention on an fp16 cache with the 16-rows-a-warp mma kernel "
              "instead of the 32-rows one (to compare; the same results)"),
    {"VB_PREFILL_WGMMA", VB_KNOB_INT, 0, 3, NULL, "3", AT(prefill_wgmma),
     "prefill attention on an fp16 cache with the wgmma kernel where it runs (sm_90a builds "
     "on compute capability 9.0, head_dim 128, not under --batch-invariant): 3 (default) "
     "128-key steps, 1 and 2 the 64-key steps of the mma32 kernel (its bits) with tiles "
     "without swizzle / 128-byte swizzled, 0 the mma32 kernel"},
    BOOL_KNOB("VB_INVARIANT_OWN_GEMM", invariant_own_gemm,
              "--batch-invariant projections on the fixed-order kernel, not cuBLASLt's "
              "split-K-free algorithms"),
    /* the GPU tests under it: tests/gpu/meson.build's _sm70 tests */
    {"VB_EMULATE_SM", VB_KNOB_WORD, 0, 0, "0|70", "0", AT(emulate_sm),
     "70: choose every kernel as on a V100 (compute capability 7.0, 96 KB of shared memory "
     "a block) on a newer GPU: the WMMA, SIMT and plain kernels, no PDL, quantized weights "
     "in row order, so that the GPU tests cover a V100's paths where none is at hand (the "
     "kernels are still this GPU's build: its speed says nothing of a V100's); 0 (default) "
     "the GPU's own"},
    {"VB_SAMPLER_PASS1_CHUNKS", VB_KNOB_INT, 1, 64, NULL, "auto", AT(sampler_pass1_chunks),
     "blocks a row the device sampler's first pass is split over (auto: enough for the GPU)"},
    /* CUDA weight upload (weights_stream.c) */
    {"VB_WEIGHT_STAGING_BYTES", VB_KNOB_LONG, 1, 1099511627776.0, NULL, "67108864",
     AT(weight_staging_bytes), "bytes of each pinned staging buffer of the weight upload"},
    {"VB_WEIGHT_STAGING_BUFFERS", VB_KNOB_INT, 1, 1024, NULL, "2", AT(weight_staging_buffers),
     "staging buffers of the weight upload (fewer than 2: 2)"},
    {"VB_WEIGHT_READ_THREADS", VB_KNOB_INT, 1, 1024, NULL, "auto", AT(weight_read_threads),
     "threads copying the checkpoint into a staging buffer, and decoding a quantized "
     "checkpoint's projections (auto: 4, at most the CPUs online; more than 32: 32)"},
    /* the run (run/) */
    BOOL_KNOB("VB_HOST_SAMPLER", host_sampler,
              "sample on the host from copied logits instead of on the GPU"),
    {"VB_CPU_THREADS", VB_KNOB_INT, 1, 4096, NULL, "auto", AT(cpu_threads),
     "CPU backend threads per rank, as --threads, which wins (auto: cores / ranks on the node)"},
    /* preemption end to end on any machine (tests/run/test_preemption.sh):
     * the CPU's cache is otherwise sized for every sequence at once */
    {"VB_KV_BLOCKS", VB_KNOB_INT, 1, 1073741823, NULL, "auto", AT(kv_blocks),
     "at most N blocks of 16 tokens in each rank's KV cache (auto: what memory and the "
     "settings allow)"},
    /* default events: the wait of 1 is a stall of every GPU run's decode
     * steps (generate's too), 0.3-1.2 points of a1's MBU (RESULTS.md) */
    {"VB_STEP_SYNC", VB_KNOB_WORD, 0, 0, "1|0|events", "events", AT(step_sync),
     "how a GPU step is split into forward and sampling for the report: events (default) "
     "by GPU time stamps, 1 by waiting for the GPU after the forward pass, 0 not at all "
     "(split null)"},
    /* the first 7B decode step on an H100 took ~40 ms against 2-5 (lazy
     * module loading, the graph's recording): run/run_warm_up.h. Default 0
     * until a GPU has run generate_cuda's warm-up checks (session 53 had
     * no GPU after the change); then auto */
    {"VB_WARM_UP", VB_KNOB_WORD, 0, 0, "auto|0|1", "0", AT(warm_up),
     "auto: on a GPU, a 15-token prefill and a 1-token decode step of a made-up sequence "
     "before the first row, so that loading the kernels and recording the batch-1 CUDA "
     "graph are start-up time, not the first rows' (the same results); 0 (default until "
     "checked on a GPU) never; 1 on any backend"},
    /* default 300: a block of 4096 rows reads in well under a second; a
     * stalled parallel file system can take minutes (io/input_check.c) */
    {"VB_INPUT_CHECK_TIMEOUT", VB_KNOB_REAL, 0, 86400, NULL, "300", AT(input_check_timeout),
     "seconds the input check may read one block of rows before the file counts as corrupt"},
    {"VB_JOURNAL_FLUSH_SECONDS", VB_KNOB_REAL, 0, 86400, NULL, "5", AT(journal_flush_seconds),
     "seconds between flushes of finished rows to OUTPUT.journal (what a SIGKILL can lose)"},
    PATH_KNOB("VB_GPU_PEAKS", gpu_peaks,
              "bench's measured GPU peaks (unset: $XDG_CACHE_HOME/voltbatch/gpu-peaks.json, "
              "else ~/.cache/voltbatch/gpu-peaks.json)"),
    /* standard variables */
    PATH_KNOB("TMPDIR", tmpdir, "where bench makes its scratch folder (unset: /tmp)"),
    PATH_KNOB("HOME", home, "the home folder: the peaks cache's default place"),
    PATH_KNOB("XDG_CACHE_HOME", xdg_cache_home, "the cache folder: the peaks cache's default place"),
};

const vb_knob *vb_knobs(size_t *n)
{
    *n = sizeof knobs / sizeof knobs[0];
    return knobs;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"}, *const no[] = {"0", "false", "no", "off"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return *out = true, 0;
        if (strcasecmp(s, no[i]) == 0)
            return *out = false, 0;
    }
    return -1;
}

static int parse_whole(const char *s, double lo, double hi, long *out)
{
    char *end = NULL;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (end == s || *end || errno == ERANGE || (double)x < lo || (double)x > hi)
        return -1;
    *out = x;
    return 0;
}

/* The index of s among words ("a|b|c"), or -1. */
static int word_index(const char *words, const char *s)
{
    size_t n = strlen(s);
    int i = 0;
    for (const char *w = words; *w; i++) {
        size_t len = strcspn(w, "|");
        if (len == n && strncmp(w, s, n) == 0)
            return i;
        w += len + (w[len] == '|');
    }
    return -1;
}

/* A number knob that only takes 0 or 1. */
static bool is_switch(const vb_knob *k)
{
    return k->type == VB_KNOB_INT && k->lo == 0 && k->hi == 1;
}

/* "want ..." for k's message. */
static void describe(const vb_knob *k, char *buf, size_t len)
{
    if (k->type == VB_KNOB_BOOL || is_switch(k)) {
        snprintf(buf, len, "want 0 or 1 (or true/false, yes/no, on/off)");
        return;
    }
    switch (k->type) {
    case VB_KNOB_BOOL: break;
    case VB_KNOB_INT:
    case VB_KNOB_LONG: snprintf(buf, len, "want a whole number from %.0f to %.0f", k->lo, k->hi); break;
    case VB_KNOB_REAL: snprintf(buf, len, "want a number above %g and at most %g", k->lo, k->hi); break;
    case VB_KNOB_WORD: {
        size_t at = (size_t)snprintf(buf, len, "want one of ");
        for (const char *w = k->words; *w && at + 3 < len; w++) {
            if (*w == '|') {
                buf[at++] = ',';
                buf[at++] = ' ';
            } else {
                buf[at++] = *w;
            }
        }
        buf[at < len ? at : len - 1] = '\0';
        break;
    }
    case VB_KNOB_PATH:
        snprintf(buf, len, "want at most %d bytes", VB_TUNING_PATH_MAX - 1);
        break;
    }
}

/* Parses s into k's field of t; "auto" (numbers) and "" (paths) are the
 * component's own choice, stored as zero. Returns 0 or -1. */
static int set_knob(vb_tuning *t, const vb_knob *k, const char *s, bool allow_auto)
{
    void *field = (char *)t + k->offset;
    long x = 0;
    double r = 0;
    int w = 0;
    bool on = false;
    bool auto_value = allow_auto && strcmp(s, "auto") == 0;
    switch (k->type) {
    case VB_KNOB_BOOL:
        return parse_bool(s, (bool *)field);
    case VB_KNOB_INT:
    case VB_KNOB_LONG:
        /* a 0-or-1 number is a switch like the bool knobs (README's table
         * writes both as switches): VB_NORM_FOLD=off was taken and
         * VB_QGEMV_EPILOGUE=off refused */
        if (is_switch(k) && !parse_bool(s, &on)) {
            x = on;
        } else if (!auto_value && parse_whole(s, k->lo, k->hi, &x)) {
            return -1;
        }
        if (k->type == VB_KNOB_INT)
            *(int *)field = (int)x;
        else
            *(long *)field = x;
        return 0;
    case VB_KNOB_REAL: {
        char *end = NULL;
        r = strtod(s, &end);
        if (end == s || *end || !isfinite(r) || !(r > k->lo) || r > k->hi)
            return -1;
        *(double *)field = r;
        return 0;
    }
    case VB_KNOB_WORD:
        if ((w = word_index(k->words, s)) < 0)
            return -1;
        *(int *)field = w;
        return 0;
    case VB_KNOB_PATH:
        if (strlen(s) >= VB_TUNING_PATH_MAX)
            return -1;
        strcpy((char *)field, s);
        return 0;
    }
    return -1;
}

void vb_tuning_defaults(vb_tuning *t)
{
    memset(t, 0, sizeof *t);
    for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++)
        if (set_knob(t, &knobs[i], knobs[i].dflt, true) != 0)
            abort(); /* a bad default in the table: tests/unit/test_env.c catches it */
}

int vb_tuning_read(vb_tuning *t, vb_env_lookup lookup, void *ctx, vb_err *err)
{
    vb_tuning_defaults(t);
    for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++) {
        const vb_knob *k = &knobs[i];
        const char *v = lookup(k->name, ctx);
        /* empty is unset, as it always was: `VB_NO_GEMV= voltbatch ...` */
        if (!v || !*v)
            continue;
        if (set_knob(t, k, v, false) != 0) {
            char want[160];
            describe(k, want, sizeof want);
            if (k->type == VB_KNOB_PATH)
                return vb_err_set(err, "%s: %zu bytes long; %s", k->name, strlen(v), want);
            return vb_err_set(err, "%s=%.64s: %s (%s)", k->name, v, want, k->what);
        }
    }
    return 0;
}

static const char *from_environment(const char *name, void *ctx)
{
    (void)ctx;
    return getenv(name);
}

int vb_tuning_from_env(vb_tuning *t, vb_err *err)
{
    return vb_tuning_read(t, from_environment, NULL, err);
}

extern char **environ;

char *const *vb_env_all(void)
{
    return environ;
}

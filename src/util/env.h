/* Every environment variable voltbatch reads, read once, in one place.
 *
 * The VB_* knobs are for diagnosis and comparison (README's table; none
 * changes results beyond fp16 rounding); TMPDIR, HOME and XDG_CACHE_HOME
 * are the standard ones. The command layer fills a vb_tuning once, before
 * any work starts, and hands it down as a value: the backends, the weight
 * upload, the sampler, bench's metrics and the journal read their fields,
 * never the environment. A value out of range is refused here with one
 * line naming the variable and what it accepts (exit 2), instead of being
 * ignored somewhere deep in a run.
 *
 * The table in env.c (name, type, range, default, what it does) is the
 * single source of truth; tests/unit/test_env_knobs.sh checks that
 * README's table lists exactly its VB_* names. */
#ifndef VB_ENV_H
#define VB_ENV_H

#include <stdbool.h>
#include <stddef.h>

#include "util/errors.h"

/* Longest path a knob may hold, terminator included. */
#define VB_TUNING_PATH_MAX 4096
/* Largest VB_GEMV_MAX_ROWS: the GEMV kernel's row limit (kernels.h
 * VB_GEMV_MAX_ROWS; the CUDA backend asserts the two agree). */
#define VB_TUNING_GEMV_ROWS_MAX 8

/* VB_STEP_SYNC: how a run splits a GPU step into forward and sampling
 * (run/bench_metrics.h). In the order of the knob's words "1|0|events". */
enum vb_step_sync {
    VB_SYNC_WAIT,   /* 1: the forward mark waits for the GPU */
    VB_SYNC_NONE,   /* 0: no wait; the split is not measured */
    VB_SYNC_EVENTS, /* events (default): no wait; the split from GPU time stamps */
};

/* VB_WARM_UP: whether the engine runs its warm-up steps before the first
 * row (run/run_warm_up.h). In the order of the knob's words "auto|0|1". */
enum vb_warm_up {
    VB_WARM_UP_AUTO, /* auto: on a GPU */
    VB_WARM_UP_OFF,  /* 0 (the default for now, env.c): never */
    VB_WARM_UP_ON,   /* 1: on any backend (the CPU's tests) */
};

typedef struct vb_tuning {
    /* CUDA backend: which kernels and paths a step takes */
    bool profile;             /* VB_PROFILE */
    bool no_gemv;             /* VB_NO_GEMV */
    bool no_fused_gemv;       /* VB_NO_FUSED_GEMV */
    bool no_rope_fusion;      /* VB_NO_ROPE_FUSION */
    bool qkv_shallow;         /* VB_QKV_SHALLOW */
    bool qgemv_l1_alloc;      /* VB_QGEMV_L1_ALLOC */
    bool gemv_l1_alloc;       /* VB_GEMV_L1_ALLOC */
    int qgemv_x_shared;       /* VB_QGEMV_X_SHARED: 1 x in shared memory */
    bool qgemv_ks_by_tiles;   /* VB_QGEMV_KS_BY_TILES */
    int qgemv_ks_balance;     /* VB_QGEMV_KS_BALANCE: 1 KS by the waves' balance */
    int qgemv_unroll;         /* VB_QGEMV_UNROLL's word: 0 the launcher's U, 1, 2, 3 U = 1, 2, 4 */
    int qgemv_ring;           /* VB_QGEMV_RING: the ring kernel's stages, 0 off */
    int qgemv_ring_scope;     /* VB_QGEMV_RING_SCOPE's word: 0 all, 1 pairs8 */
    int qgemv_blocks;         /* VB_QGEMV_BLOCKS: 1 quantized weights in row blocks (sm_80+) */
    bool attention_per_token; /* VB_ATTENTION_PER_TOKEN */
    bool decode_whole_groups; /* VB_DECODE_WHOLE_GROUPS */
    bool decode_reduce_kernel; /* VB_DECODE_REDUCE_KERNEL */
    int decode_stages;        /* VB_DECODE_STAGES's word: 0 the launcher's rule, 1 2, 2 6 */
    bool table_buckets;       /* VB_TABLE_BUCKETS */
    int qgemv_epilogue;       /* VB_QGEMV_EPILOGUE: 1 SiLU-gate / RoPE in the quantized GEMV */
    bool norm_fold;           /* VB_NORM_FOLD */
    bool prefill_wmma;        /* VB_PREFILL_WMMA */
    bool prefill_mma16;       /* VB_PREFILL_MMA16 */
    int prefill_wgmma;        /* VB_PREFILL_WGMMA: 0 off, else 1 + the kernel's variant */
    bool no_pdl;              /* VB_NO_PDL */
    bool invariant_own_gemm;  /* VB_INVARIANT_OWN_GEMM */
    int gemv_max_rows;        /* VB_GEMV_MAX_ROWS */
    int sampler_pass1_chunks; /* VB_SAMPLER_PASS1_CHUNKS; 0: the kernel's choice */
    int emulate_sm;           /* VB_EMULATE_SM's word: 0 the GPU's own, 1 a V100's (70) */
    /* CUDA weight upload */
    long weight_staging_bytes;  /* VB_WEIGHT_STAGING_BYTES */
    int weight_staging_buffers; /* VB_WEIGHT_STAGING_BUFFERS */
    int weight_read_threads;    /* VB_WEIGHT_READ_THREADS; 0: the loader's choice */
    /* the run */
    bool host_sampler;            /* VB_HOST_SAMPLER */
    int cpu_threads;              /* VB_CPU_THREADS; 0: cores / ranks on the node */
    int kv_blocks;                /* VB_KV_BLOCKS; 0: what memory allows */
    enum vb_step_sync step_sync;  /* VB_STEP_SYNC */
    enum vb_warm_up warm_up;      /* VB_WARM_UP */
    double journal_flush_seconds; /* VB_JOURNAL_FLUSH_SECONDS */
    double input_check_timeout;   /* VB_INPUT_CHECK_TIMEOUT */
    char gpu_peaks[VB_TUNING_PATH_MAX]; /* VB_GPU_PEAKS; "": the cache's usual place */
    /* standard variables; "" when unset */
    char tmpdir[VB_TUNING_PATH_MAX];
    char home[VB_TUNING_PATH_MAX];
    char xdg_cache_home[VB_TUNING_PATH_MAX];
} vb_tuning;

/* VB_QGEMV_UNROLL as the U it names (its word's index in "0|1|2|4"). */
static inline int vb_tuning_qgemv_unroll(const vb_tuning *t)
{
    static const int u[4] = {0, 1, 2, 4};
    return t->qgemv_unroll >= 0 && t->qgemv_unroll < 4 ? u[t->qgemv_unroll] : 0;
}

/* VB_DECODE_STAGES as the stage count it names (0: the launcher's rule). */
static inline int vb_tuning_decode_stages(const vb_tuning *t)
{
    static const int st[3] = {0, 2, 6};
    return t->decode_stages >= 0 && t->decode_stages < 3 ? st[t->decode_stages] : 0;
}

/* VB_EMULATE_SM as the compute capability it names (0: none). */
static inline int vb_tuning_emulate_sm(const vb_tuning *t)
{
    return t->emulate_sm == 1 ? 70 : 0;
}

typedef enum vb_knob_type {
    VB_KNOB_BOOL, /* 0|1 (also false|true, no|yes, off|on) -> bool */
    VB_KNOB_INT,  /* a whole number in [lo, hi] -> int */
    VB_KNOB_LONG, /* a whole number in [lo, hi] -> long */
    VB_KNOB_REAL, /* a number above lo, at most hi -> double */
    VB_KNOB_WORD, /* one of `words` ('|'-separated) -> its index, an enum */
    VB_KNOB_PATH, /* any text shorter than VB_TUNING_PATH_MAX -> char[] */
} vb_knob_type;

/* One row of the table. */
typedef struct vb_knob {
    const char *name;
    vb_knob_type type;
    double lo, hi;      /* INT, LONG, REAL */
    const char *words;  /* WORD */
    const char *dflt;   /* the value when unset or empty, as a user would
                         * write it; "auto" (numbers) or "" (paths): zero,
                         * the component chooses, as `what` says */
    size_t offset;      /* of the field in vb_tuning */
    const char *what;   /* one line */
} vb_knob;

/* The table and its length. */
const vb_knob *vb_knobs(size_t *n);

/* Every knob at its default. */
void vb_tuning_defaults(vb_tuning *t);

/* The value of variable `name`, or NULL when unset. */
typedef const char *(*vb_env_lookup)(const char *name, void *ctx);

/* Fills t from lookup (defaults for unset or empty variables). Returns 0,
 * or -1 with err naming the first bad variable and what it accepts, e.g.
 * "VB_GEMV_MAX_ROWS=9: want a whole number from 0 to 8 (...)". */
int vb_tuning_read(vb_tuning *t, vb_env_lookup lookup, void *ctx, vb_err *err);

/* vb_tuning_read over the process environment: the one place src/ reads it. */
int vb_tuning_from_env(vb_tuning *t, vb_err *err);

/* The whole environment, handed unchanged to a child process
 * (io/input_check.c runs `voltbatch __check-input` with it): HDF5's own
 * variables (HDF5_USE_FILE_LOCKING, HDF5_PLUGIN_PATH) and the loader's
 * LD_LIBRARY_PATH must reach the child as they reached this process. No
 * variable is read here. */
char *const *vb_env_all(void);

#endif

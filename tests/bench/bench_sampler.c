/* The device sampler (src/cuda/cuda_sampler.c) timed by step size, two
 * ways a step: the summaries to the host then sampler_choose there on one
 * thread (the path of tp > 1, and of tp 1 before the `sample` op), and
 * cuda_sampler_sample (the `sample` op at tp 1: the decisions made on the
 * device, kernels/sampler_choose.cu), for 1 to 1,024 rows over a
 * 152,064-token vocabulary (Qwen2.5) in seven modes:
 *   greedy        --temperature 0 (one candidate a row)
 *   top-p         --temperature 0.8 --top-p 0.95 (256 candidates a row)
 *   top-k         --temperature 0.8 --top-k 50 --top-p 0.95 (50 candidates a row)
 *   min-p         --temperature 0.8 --min-p 0.05: 256 candidates a row as
 *                 top-p, without the log-sum-exp (top-p's sum over the
 *                 whole row): the difference between the two is that sum
 *   penalty       greedy with --repetition-penalty 1.1 over a 1,024-token
 *                 prompt: the seen bitmaps are built on the first step,
 *                 then each step sends the one token a row gained
 *   qwen-cs       top-k's settings with the repetition penalty 1.05 of
 *                 Qwen2.5's generation_config.json, which `generate` and
 *                 `bench` apply by default: the sampled workloads (cs, fs)
 *                 on a Qwen2.5 model as run
 *   qwen-c        greedy with that penalty (c on a Qwen2.5 model)
 * Each figure is the wall time of the step's calls (they end with the
 * tokens on the host), the median of 21 steps after 3 warm-up steps.
 * Printed beside the device decisions' time: the fp32 logits read per
 * second against the copy bandwidth, and that time as a share of the
 * decode step's own lower bound (modes with nothing to draw, greedy and
 * penalty, have no device choice: "-", and the share is the host path's,
 * which is then the run's) on the Qwen2.5-7B
 * shape (14.1 GB of weights + 1,024 positions of K/V per row, read once at
 * the copy bandwidth given as argv[2], default the H200's 4,191 GB/s):
 * issue 19 asks for a few percent of a decode step at every batch size.
 *
 * usage: bench_sampler [STEPS [COPY_GBS [CHUNKS [MODE [SPAN]]]]]
 *   CHUNKS: blocks a row's pass 1 and compaction are split over (1-64), 0
 *   (default) the kernel's choice; MODE: run only the modes whose name
 *   contains it ("" for all); SPAN: logits uniform over [-SPAN, SPAN)
 *   (default 10; narrower spans, as a random-weight model's logits may
 *   be, leave the truncation more tokens a row to sort). On the GPU
 *   machine; no GPU: exits 77. */
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cuda/cuda_check.h"
#include "cuda/cuda_sampler.h"
#include "decode_step_7b.h"
#include "engine/sampler.h"

#define VOCAB 152064
#define PROMPT 1024
#define MAX_ROWS 1024
#define WARMUP 3

/* the Qwen2.5-7B decode step's bytes (decode_step_7b.h): its weights, and
 * per row the K/V of PROMPT positions */
#define STEP_WEIGHT_BYTES QWEN7B_STEP_WEIGHT_BYTES
#define ROW_KV_BYTES (PROMPT * QWEN7B_KV_BYTES_PER_POSITION)

typedef struct mode {
    const char *name;
    sampling_params p;
    int n_cand;
} mode;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int n_dev = 0;
    if (cudaGetDeviceCount(&n_dev) != cudaSuccess || n_dev == 0) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    int steps = argc > 1 ? atoi(argv[1]) : 21;
    if (steps < 1)
        steps = 21;
    double copy_gbs = argc > 2 ? atof(argv[2]) : 4191.0;
    if (copy_gbs <= 0)
        copy_gbs = 4191.0;
    int chunks = argc > 3 ? atoi(argv[3]) : 0;
    if (chunks < 0 || chunks > 64)
        chunks = 0;
    const char *only = argc > 4 ? argv[4] : NULL;
    double span = argc > 5 ? atof(argv[5]) : 10.0;
    if (!(span > 0.0))
        span = 10.0;

    /* logits: a smooth random field, so top-p keeps a realistic few hundred */
    size_t n_logits = (size_t)MAX_ROWS * VOCAB;
    float *h_logits = malloc(n_logits * sizeof *h_logits);
    int32_t *prompt = malloc((size_t)MAX_ROWS * PROMPT * sizeof *prompt);
    int32_t *generated = calloc((size_t)MAX_ROWS * (WARMUP + steps + 1), sizeof *generated);
    sampler_row *rows = calloc(MAX_ROWS, sizeof *rows);
    int *logit_rows = malloc(MAX_ROWS * sizeof *logit_rows);
    void *summaries = malloc((size_t)MAX_ROWS * sampler_summary_bytes(SAMPLER_TRUNCATION_CANDIDATES));
    sample_result *res = malloc(MAX_ROWS * sizeof *res);
    if (!h_logits || !prompt || !generated || !rows || !logit_rows || !summaries || !res) {
        fprintf(stderr, "bench_sampler: out of host memory\n");
        return 1;
    }
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < n_logits; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        h_logits[i] = ((float)((x >> 40) % 20000) / 1000.0f - 10.0f) * (float)(span / 10.0);
    }
    for (size_t i = 0; i < (size_t)MAX_ROWS * PROMPT; i++)
        prompt[i] = (int32_t)(i * 2654435761u % VOCAB);
    float *d_logits = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d_logits, n_logits * sizeof *d_logits));
    CUDA_CHECK(cudaMemcpy(d_logits, h_logits, n_logits * sizeof *d_logits,
                          cudaMemcpyHostToDevice));
    cudaStream_t stream;
    CUDA_CHECK(cudaStreamCreate(&stream));
    cuda_sampler *s = cuda_sampler_create(stream, chunks);

    /* name, temperature, top-p, top-k, min-p, repetition penalty, candidates */
    static const struct {
        const char *name;
        float temperature, top_p;
        int top_k;
        float min_p, repetition_penalty;
        int n_cand;
    } settings[] = {
        {"greedy", 0.0f, 1.0f, 0, 0.0f, 1.0f, 1},
        {"top-p", 0.8f, 0.95f, 0, 0.0f, 1.0f, SAMPLER_TRUNCATION_CANDIDATES},
        {"penalty", 0.0f, 1.0f, 0, 0.0f, 1.1f, 1},
        {"top-k", 0.8f, 0.95f, 50, 0.0f, 1.0f, 50},
        {"min-p", 0.8f, 1.0f, 0, 0.05f, 1.0f, SAMPLER_TRUNCATION_CANDIDATES},
        /* the sampled workloads (cs, fs) on a Qwen2.5 model: its
         * generation_config.json's repetition penalty 1.05 applies */
        {"qwen-cs", 0.8f, 0.95f, 50, 0.0f, 1.05f, 50},
        {"qwen-c", 0.0f, 1.0f, 0, 0.0f, 1.05f, 1},
    };
    enum { N_MODES = sizeof settings / sizeof settings[0] };
    mode modes[N_MODES];
    for (int m = 0; m < N_MODES; m++) {
        modes[m].name = settings[m].name;
        modes[m].p = sampling_params_default();
        modes[m].p.temperature = settings[m].temperature;
        modes[m].p.top_p = settings[m].top_p;
        modes[m].p.top_k = settings[m].top_k;
        modes[m].p.min_p = settings[m].min_p;
        modes[m].p.repetition_penalty = settings[m].repetition_penalty;
        modes[m].n_cand = settings[m].n_cand;
    }

    static const int batches[] = {1, 8, 64, 256, 1024};
    printf("%-8s %5s %14s %14s %12s %10s %14s\n", "mode", "rows", "host choice us",
           "dev choice us", "logits GB/s", "% copy", "% decode step");
    double *t = malloc((size_t)steps * sizeof *t), *th = malloc((size_t)steps * sizeof *th);
    for (int m = 0; m < N_MODES; m++) {
        if (only && !strstr(modes[m].name, only))
            continue;
        const bool truncates =
            !sampler_is_greedy(&modes[m].p) && sampler_truncates(&modes[m].p);
        for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
            int n = batches[b];
            for (int i = 0; i < n; i++) {
                rows[i] = (sampler_row){.params = &modes[m].p,
                                        .row = (uint32_t)i,
                                        .prompt = prompt + (size_t)i * PROMPT,
                                        .n_prompt = PROMPT,
                                        .generated = generated + (size_t)i * (WARMUP + steps + 1),
                                        .state_slot = i + 1};
                logit_rows[i] = i;
            }
            for (int step = 0; step < WARMUP + steps; step++) {
                for (int i = 0; i < n; i++) {
                    rows[i].step = (uint32_t)step;
                    rows[i].n_generated = step; /* 0 on the first: the bitmaps are rebuilt */
                    ((int32_t *)rows[i].generated)[step] = (step * 7919 + i) % VOCAB;
                }
                /* the same step twice: the key (row, step) gives both the
                 * same draws, and the penalty state sees no new token the
                 * second time */
                double t0 = now_s();
                if (cuda_sampler_summarize(s, d_logits, logit_rows, rows, n, 0, VOCAB,
                                           modes[m].n_cand, summaries) != 0) {
                    fprintf(stderr, "bench_sampler: %d candidates refused\n", modes[m].n_cand);
                    return 1;
                }
                for (int i = 0; i < n; i++)
                    sampler_choose(&rows[i],
                                   sampler_summary_at_const(summaries, i, modes[m].n_cand),
                                   &res[i]);
                double t1 = now_s();
                /* rows that draw from no truncated set: the host's choice
                 * is a copy of each summary's best token, no device choice */
                if (truncates &&
                    cuda_sampler_sample(s, d_logits, logit_rows, rows, n, VOCAB, modes[m].n_cand,
                                        res) != 0) {
                    fprintf(stderr, "bench_sampler: %d candidates refused\n", modes[m].n_cand);
                    return 1;
                }
                if (step >= WARMUP) {
                    th[step - WARMUP] = t1 - t0;
                    t[step - WARMUP] = now_s() - t1;
                }
            }
            qsort(t, (size_t)steps, sizeof *t, cmp_double);
            qsort(th, (size_t)steps, sizeof *th, cmp_double);
            double sec = t[steps / 2];
            double gbs = (double)n * VOCAB * sizeof(float) / sec / 1e9;
            double step_s = (STEP_WEIGHT_BYTES + n * ROW_KV_BYTES) / (copy_gbs * 1e9);
            if (truncates)
                printf("%-8s %5d %14.1f %14.1f %12.0f %10.1f %14.2f\n", modes[m].name, n,
                       1e6 * th[steps / 2], 1e6 * sec, gbs, 100.0 * gbs / copy_gbs,
                       100.0 * sec / step_s);
            else /* the host choice's time is the whole sampler's */
                printf("%-8s %5d %14.1f %14s %12s %10s %14.2f\n", modes[m].name, n,
                       1e6 * th[steps / 2], "-", "-", "-", 100.0 * th[steps / 2] / step_s);
        }
    }
    cuda_sampler_destroy(s);
    CUDA_CHECK(cudaStreamDestroy(stream));
    CUDA_CHECK(cudaFree(d_logits));
    free(t);
    free(th);
    free(res);
    free(summaries);
    free(logit_rows);
    free(rows);
    free(generated);
    free(prompt);
    free(h_logits);
    return 0;
}

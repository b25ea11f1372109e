/* Helpers shared by the io tests: temporary directories, sample rows and
 * settings. Header-only (static) so each test stays one program. */
#ifndef VB_TEST_IO_UTIL_H
#define VB_TEST_IO_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/results.h"
#include "io/run_settings.h"

/* mkdtemp under TMPDIR (or /tmp); the path lives in a static buffer. */
static inline const char *test_tmpdir(void)
{
    static char dir[512];
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/vbio-XXXXXX", base && base[0] ? base : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
    return dir;
}

static inline char *test_path(const char *dir, const char *name)
{
    static char buf[8][600];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 600, "%s/%s", dir, name);
    return p;
}

static inline vb_run_settings test_settings(void)
{
    static const char *const stops[] = {"</s>", "\n\n"};
    vb_run_settings s = {
        .model = "/models/qwen2.5-0.5b", .tp = 2, .seed = 1234, .max_new_tokens = 64,
        .temperature = 0.7, .top_p = 0.8, .top_k = 20, .min_p = NAN,
        .repetition_penalty = NAN, .frequency_penalty = NAN, .presence_penalty = NAN,
        .n = 1, .logprobs = -1, .stops = stops, .n_stops = 2, .chat = true,
        .max_model_len = -1, .input_checksum = 0xdeadbeef, .input_rows = 100,
    };
    return s;
}

/* A deterministic row for (index, sample); buffers are static per call. */
static inline vb_output_row test_row(int64_t index, int32_t sample, int top_n)
{
    static int32_t ids[64], top_ids[256];
    static float lp[64], top_lp[256];
    static char completion[128], id[32];
    int n = (int)(index % 7) + (sample * 3) % 5;
    for (int i = 0; i < n; i++) {
        ids[i] = (int32_t)(index * 31 + i);
        lp[i] = -0.125f * (float)(i + 1);
        for (int k = 0; k < top_n; k++) {
            top_ids[i * top_n + k] = (int32_t)(index + k);
            top_lp[i * top_n + k] = -0.5f * (float)(k + 1);
        }
    }
    snprintf(completion, sizeof completion, "réponse %lld/%d ✓", (long long)index, sample);
    snprintf(id, sizeof id, "row-%lld", (long long)index);
    vb_output_row r = {
        .index = index, .sample = sample, .completion = completion, .output_ids = ids,
        .n_output_ids = n, .prompt_tokens = (int32_t)(10 + index), .completion_tokens = n,
        .finish_reason = index % 3 == 0 ? VB_FINISH_ERROR : index % 3 == 1 ? VB_FINISH_STOP
                                                                            : VB_FINISH_LENGTH,
        .error = index % 3 == 0 ? "prompt is longer than the context (9000 > 8192)" : "",
        .id = id, .id_int = index * 10,
        .logprobs = top_n >= 0 ? lp : NULL,
        .top_ids = top_n > 0 ? top_ids : NULL, .top_logprobs = top_n > 0 ? top_lp : NULL,
    };
    return r;
}

/* Field-by-field equality of two rows (top_n alternatives per token). */
static inline int test_rows_equal(const vb_output_row *a, const vb_output_row *b, int top_n)
{
    if (a->index != b->index || a->sample != b->sample || a->n_output_ids != b->n_output_ids ||
        a->prompt_tokens != b->prompt_tokens || a->completion_tokens != b->completion_tokens ||
        a->finish_reason != b->finish_reason)
        return 0;
    if (strcmp(a->completion ? a->completion : "", b->completion ? b->completion : "") ||
        strcmp(a->error ? a->error : "", b->error ? b->error : ""))
        return 0;
    size_t n = (size_t)a->n_output_ids;
    if (n && memcmp(a->output_ids, b->output_ids, n * 4))
        return 0;
    if (top_n >= 0 && n && (!a->logprobs || !b->logprobs || memcmp(a->logprobs, b->logprobs, n * 4)))
        return 0;
    if (top_n > 0 && n &&
        (memcmp(a->top_ids, b->top_ids, n * top_n * 4) ||
         memcmp(a->top_logprobs, b->top_logprobs, n * top_n * 4)))
        return 0;
    return 1;
}

#endif

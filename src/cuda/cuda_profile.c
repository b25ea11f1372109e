/* Per-op GPU time from stream events (VB_PROFILE=1): see cuda_profile.h. */
#include "cuda/cuda_profile.h"

#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#include "cuda/cuda_check.h"

#define PROFILE_EVENTS 1024 /* marks held before the stream is waited for */
#define PROFILE_OPS 64      /* distinct (op, class) rows */

typedef struct profile_row {
    const char *op; /* a string literal of the backend's */
    bool decode;
    long calls;
    double ms;
} profile_row;

struct cuda_profile {
    cudaEvent_t ev[PROFILE_EVENTS];
    const char *op[PROFILE_EVENTS];
    bool decode[PROFILE_EVENTS];
    int n; /* events recorded; ev[0] is the base the next interval starts from */
    profile_row rows[PROFILE_OPS];
    int n_rows;
};

cuda_profile *cuda_profile_create(void)
{
    cuda_profile *p = calloc(1, sizeof *p);
    if (!p)
        vb_cuda_fail("host", "calloc", "out of memory", __FILE__, __LINE__);
    for (int i = 0; i < PROFILE_EVENTS; i++)
        CUDA_CHECK(cudaEventCreate(&p->ev[i]));
    return p;
}

static profile_row *row_of(cuda_profile *p, const char *op, bool decode)
{
    for (int i = 0; i < p->n_rows; i++)
        if (p->rows[i].decode == decode && strcmp(p->rows[i].op, op) == 0)
            return &p->rows[i];
    if (p->n_rows == PROFILE_OPS)
        return NULL;
    p->rows[p->n_rows] = (profile_row){op, decode, 0, 0.0};
    return &p->rows[p->n_rows++];
}

/* Waits for the recorded events, charges each interval to its op, keeps
 * the last event as the next base. */
static void drain(cuda_profile *p)
{
    if (p->n < 2)
        return;
    CUDA_CHECK(cudaEventSynchronize(p->ev[p->n - 1]));
    for (int i = 1; i < p->n; i++) {
        float ms = 0;
        CUDA_CHECK(cudaEventElapsedTime(&ms, p->ev[i - 1], p->ev[i]));
        profile_row *r = row_of(p, p->op[i], p->decode[i]);
        if (r) {
            r->calls++;
            r->ms += ms;
        }
    }
    cudaEvent_t last = p->ev[p->n - 1];
    p->ev[p->n - 1] = p->ev[0];
    p->ev[0] = last;
    p->n = 1;
}

void cuda_profile_mark(cuda_profile *p, const char *op, bool decode, cudaStream_t st)
{
    if (p->n == PROFILE_EVENTS)
        drain(p);
    CUDA_CHECK(cudaEventRecord(p->ev[p->n], st));
    p->op[p->n] = op;
    p->decode[p->n] = decode;
    p->n++;
}

static int by_time(const void *a, const void *b)
{
    const profile_row *x = a, *y = b;
    return x->ms < y->ms ? 1 : x->ms > y->ms ? -1 : 0;
}

void cuda_profile_report(cuda_profile *p)
{
    drain(p);
    qsort(p->rows, (size_t)p->n_rows, sizeof p->rows[0], by_time);
    for (int pass = 0; pass < 2; pass++) {
        bool decode = pass == 0;
        double total = 0;
        for (int i = 0; i < p->n_rows; i++)
            if (p->rows[i].decode == decode)
                total += p->rows[i].ms;
        if (total <= 0)
            continue;
        vb_info("profile (VB_PROFILE), %s steps: %.1f ms of GPU stream time", decode ? "decode" : "prefill",
                total);
        vb_info("  %-16s %8s %10s %10s %6s", "op", "calls", "total ms", "mean us", "%");
        for (int i = 0; i < p->n_rows; i++) {
            const profile_row *r = &p->rows[i];
            if (r->decode == decode)
                vb_info("  %-16s %8ld %10.2f %10.1f %6.1f", r->op, r->calls, r->ms,
                        1e3 * r->ms / (double)r->calls, 100.0 * r->ms / total);
        }
    }
}

void cuda_profile_destroy(cuda_profile *p)
{
    if (!p)
        return;
    for (int i = 0; i < PROFILE_EVENTS; i++)
        CUDA_CHECK(cudaEventDestroy(p->ev[i]));
    free(p);
}

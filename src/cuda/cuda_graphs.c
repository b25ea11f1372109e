/* Capture and replay of decode-step graphs; see cuda_graphs.h. */
#include "cuda/cuda_graphs.h"

#include "cuda/cuda_check.h"

int cuda_graph_bucket(int n)
{
    if (n <= 0)
        return 0;
    if (n <= 8) {
        int b = 1;
        while (b < n)
            b *= 2;
        return b;
    }
    if (n <= 256)
        return (n + 7) / 8 * 8;
    if (n <= 512)
        return (n + 31) / 32 * 32;
    return 0;
}

bool cuda_graphs_begin(cuda_graphs *g, const void *owner, const void *cache, int rows,
                       int stride, cudaStream_t st)
{
    for (int i = 0; i < g->n; i++) {
        const cuda_graph_entry *e = &g->e[i];
        if (e->owner == owner && e->cache == cache && e->rows == rows && e->stride == stride) {
            CUDA_CHECK(cudaGraphLaunch(e->exec, st));
            g->replayed++;
            return true;
        }
    }
    if (g->n == CUDA_GRAPHS_MAX)
        cuda_graphs_clear(g); /* only when keys churn (many owners); correct, just slower */
    g->pending = (cuda_graph_entry){.owner = owner, .cache = cache, .rows = rows, .stride = stride};
    /* Thread-local: a CUDA call on another thread (none today) must not
     * invalidate this capture, nor be refused because of it. */
    CUDA_CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
    g->capturing = true;
    return false;
}

void cuda_graphs_end(cuda_graphs *g, cudaStream_t st)
{
    cudaGraph_t graph = NULL;
    g->capturing = false;
    CUDA_CHECK(cudaStreamEndCapture(st, &graph));
    cuda_graph_entry *e = &g->e[g->n];
    *e = g->pending;
    CUDA_CHECK(cudaGraphInstantiate(&e->exec, graph, 0));
    CUDA_CHECK(cudaGraphDestroy(graph));
    g->n++;
    g->captured++;
    CUDA_CHECK(cudaGraphLaunch(e->exec, st));
}

void cuda_graphs_clear(cuda_graphs *g)
{
    for (int i = 0; i < g->n; i++)
        CUDA_CHECK(cudaGraphExecDestroy(g->e[i].exec));
    g->n = 0;
}

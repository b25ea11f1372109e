/* CUDA graphs for decode steps (DESIGN.md "Engine"): a decode step of a
 * given batch size launches the same few hundred kernels, GEMMs and NCCL
 * all-reduces every time, so the first step of each batch-size bucket is
 * captured on the backend's stream and later steps replay it with one
 * launch, taking the per-kernel launch cost off the host.
 *
 * A captured graph bakes in every pointer and size of its launches. The
 * backend keeps those fixed: the step's layout lives in device arrays that
 * only move when they grow (which drops every graph), the batch is padded
 * up to the bucket's row count with inert rows, and a graph is keyed by
 * (owner, cache, rows, block-table stride) so another forward state or KV
 * cache never replays one that is not its own. */
#ifndef VB_CUDA_GRAPHS_H
#define VB_CUDA_GRAPHS_H

#include <cuda_runtime_api.h>
#include <stdbool.h>

#define CUDA_GRAPHS_MAX 96 /* buckets up to 512 rows: 1,2,4,8 then steps of 8, then 32 */

typedef struct cuda_graph_entry {
    const void *owner, *cache;
    int rows, stride;
    cudaGraphExec_t exec;
} cuda_graph_entry;

typedef struct cuda_graphs {
    bool enabled;
    int n;
    cuda_graph_entry e[CUDA_GRAPHS_MAX];
    bool capturing;
    cuda_graph_entry pending; /* the key being captured */
    long captured, replayed;  /* counters for the log */
} cuda_graphs;

/* Rows a decode step of n sequences is padded to (its bucket), or 0 when
 * n is past the largest bucket (such steps run without a graph). */
int cuda_graph_bucket(int n);

/* Replays the graph for this key on st and returns true, or returns false
 * after starting a capture on st (the caller then issues the step's work
 * and calls cuda_graphs_end). */
bool cuda_graphs_begin(cuda_graphs *g, const void *owner, const void *cache, int rows,
                       int stride, cudaStream_t st);

/* Ends the capture begun by cuda_graphs_begin, keeps the graph and
 * launches it (capturing does not run the work). */
void cuda_graphs_end(cuda_graphs *g, cudaStream_t st);

/* Drops every graph (a buffer they use moved or was freed). */
void cuda_graphs_clear(cuda_graphs *g);

#endif

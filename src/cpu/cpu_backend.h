/* The CPU backend: plain C, fp32 activations, KV cache and weights,
 * threaded with a pthread pool, tensor parallel through MPI_Allreduce over
 * the TP communicator. It is the readable numerical oracle the CUDA backend
 * is tested against, and how CI and laptops run the whole pipeline. */
#ifndef VB_CPU_BACKEND_H
#define VB_CPU_BACKEND_H

#include <mpi.h>

#include "forward/backend.h"

/* n_threads <= 0: the cores online divided by the ranks on this node
 * (the caller passes --threads or VB_CPU_THREADS when given). tp_comm may be
 * MPI_COMM_NULL or a communicator of size 1 for no tensor parallelism.
 * Returns NULL when out of memory. */
vb_backend *cpu_backend_create(int n_threads, MPI_Comm tp_comm, int ranks_on_node);

/* Threads the backend runs with (for logs and reports). */
int cpu_backend_threads(const vb_backend *b);

#endif

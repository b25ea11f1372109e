/* A small fixed thread pool for the CPU backend: cpu_pool_run() hands out
 * task indices 0..n-1 to the workers and the calling thread, and returns
 * when all are done. Tasks are claimed one at a time from an atomic
 * counter, so uneven tasks (attention rows of different lengths) balance. */
#ifndef VB_CPU_POOL_H
#define VB_CPU_POOL_H

typedef void (*cpu_task_fn)(void *arg, int task, int worker);

typedef struct cpu_pool cpu_pool;

/* The node's online cores divided among ranks_on_node ranks, at least 1:
 * the share of threads a rank's pool takes by default. */
int cpu_pool_cores_per_rank(int ranks_on_node);

/* n_threads counts the caller: 1 runs everything on the calling thread. */
cpu_pool *cpu_pool_create(int n_threads);
void cpu_pool_destroy(cpu_pool *p);
int cpu_pool_threads(const cpu_pool *p);

/* Runs fn(arg, task, worker) for task in [0, n_tasks); worker is in
 * [0, threads) and names a thread's scratch space. Not reentrant. */
void cpu_pool_run(cpu_pool *p, int n_tasks, cpu_task_fn fn, void *arg);

#endif

/* VB_PROFILE=1: where the GPU time of a run goes, per backend op.
 *
 * An event is recorded on the backend's stream after every op; the time
 * between consecutive events is charged to the later op (its kernels plus
 * any wait of the GPU for the host before them, which is the point: a gap
 * the host leaves shows up, under the step layout copies ("step_begin") or
 * the op that follows it). Steps are classed decode (every sequence brings
 * one token) or prefill (the rest), so the two tables do not blur.
 *
 * Profiling turns CUDA graphs off (events cannot time a replayed graph's
 * nodes) and keeps the graph buckets' padding, so the shapes are the ones
 * a normal run launches; host launch costs that graphs hide are then in
 * the figures too. The table goes to the log when the backend closes. */
#ifndef VB_CUDA_PROFILE_H
#define VB_CUDA_PROFILE_H

#include <cuda_runtime_api.h>
#include <stdbool.h>

typedef struct cuda_profile cuda_profile;

cuda_profile *cuda_profile_create(void);
/* after op was issued on st, in a step of the given class */
void cuda_profile_mark(cuda_profile *p, const char *op, bool decode, cudaStream_t st);
/* prints the table (rank 0's log and every rank's, through vb_info) */
void cuda_profile_report(cuda_profile *p);
void cuda_profile_destroy(cuda_profile *p);

#endif

/* Sampler candidate exchange over MPI (see sampler_mpi.h). The NCCL path
 * of the GPU backend can gather the same flat buffer. */
#include "engine/sampler_mpi.h"

#include <limits.h>

int sampler_exchange_mpi(MPI_Comm comm, const void *local, int n_rows, int n_cand,
                         void *gathered, vb_err *err)
{
    size_t bytes = (size_t)n_rows * sampler_summary_bytes(n_cand);
    if (bytes > INT_MAX)
        return vb_err_set(err, "sampler: %d rows x %d candidates is %zu bytes, over one MPI message; "
                          "lower --max-batch or --top-k", n_rows, n_cand, bytes);
    int rc = MPI_Allgather(local, (int)bytes, MPI_BYTE, gathered, (int)bytes, MPI_BYTE, comm);
    if (rc != MPI_SUCCESS) {
        char msg[MPI_MAX_ERROR_STRING];
        int len = 0;
        MPI_Error_string(rc, msg, &len);
        return vb_err_set(err, "sampler: MPI_Allgather of candidates failed: %s", msg);
    }
    return 0;
}

void sampler_merge_gathered(const void *gathered, int n_ranks, int n_rows, int n_cand,
                            void *merged)
{
    const sampler_summary *parts[n_ranks > 0 ? n_ranks : 1];
    size_t rank_stride = (size_t)n_rows * sampler_summary_bytes(n_cand);
    for (int i = 0; i < n_rows; i++) {
        for (int r = 0; r < n_ranks; r++)
            parts[r] = sampler_summary_at((char *)gathered + (size_t)r * rank_stride, i, n_cand);
        sampler_summary_merge(parts, n_ranks, n_cand, sampler_summary_at(merged, i, n_cand));
    }
}

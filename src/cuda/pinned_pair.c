/* Pinned host + device buffer pairs (see pinned_pair.h). */
#include "cuda/pinned_pair.h"

#include "cuda/cuda_check.h"

void pinned_pair_grow(void **h, void **d, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    pinned_pair_free(h, d, cap);
    CUDA_CHECK(cudaMallocHost(h, n * elem));
    CUDA_CHECK(cudaMalloc(d, n * elem));
    *cap = n;
}

void pinned_pair_free(void **h, void **d, size_t *cap)
{
    if (*h)
        CUDA_CHECK(cudaFreeHost(*h));
    if (*d)
        CUDA_CHECK(cudaFree(*d));
    *h = *d = NULL;
    *cap = 0;
}

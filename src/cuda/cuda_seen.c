/* The device sampler's per-sequence seen bitmaps (see cuda_seen.h). */
#include "cuda/cuda_seen.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_check.h"
#include "cuda/pinned_pair.h"
#include "kernels.h"

typedef struct seen_entry {
    int key;             /* state_slot of the owner; 0: none (free, or a row without a key) */
    uint32_t row, sample;
    long synced;         /* history tokens (prompt + generated) in the bitmap */
    unsigned long stamp; /* the last call that used it */
} seen_entry;

struct cuda_seen {
    unsigned *d_seen;    /* the arena: cap entries of words words */
    int words, cap;
    seen_entry *entries;
    int *entry_of_key;   /* [cap_keys]: key -> entry, -1 none */
    int cap_keys;
    unsigned long calls;
    int *h_added, *d_added; /* the call's tokens to add (local ids); h_ pinned */
    size_t cap_added, n_added;
    bool any_update;
};

static void *host_or_die(void *p)
{
    if (!p)
        vb_cuda_fail("host", "malloc", "out of memory for the sampler's penalty state", __FILE__,
                     __LINE__);
    return p;
}

cuda_seen *cuda_seen_create(void)
{
    return host_or_die(calloc(1, sizeof(cuda_seen)));
}

void cuda_seen_destroy(cuda_seen *s)
{
    if (!s)
        return;
    if (s->d_seen)
        CUDA_CHECK(cudaFree(s->d_seen));
    pinned_pair_free((void **)&s->h_added, (void **)&s->d_added, &s->cap_added);
    free(s->entries);
    free(s->entry_of_key);
    free(s);
}

/* The arena grown to cap entries, its bitmaps kept (a device copy). */
static void grow_arena(cuda_seen *s, int cap)
{
    unsigned *d = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d, (size_t)cap * (size_t)s->words * sizeof *d));
    if (s->d_seen) {
        CUDA_CHECK(cudaMemcpy(d, s->d_seen, (size_t)s->cap * (size_t)s->words * sizeof *d,
                              cudaMemcpyDeviceToDevice));
        CUDA_CHECK(cudaFree(s->d_seen));
    }
    s->d_seen = d;
    seen_entry *e = host_or_die(realloc(s->entries, (size_t)cap * sizeof *e));
    memset(e + s->cap, 0, (size_t)(cap - s->cap) * sizeof *e);
    s->entries = e;
    s->cap = cap;
}

void cuda_seen_begin(cuda_seen *s, int n_local, int n_rows)
{
    int words = (int)vb_sampler_seen_words(n_local);
    if (words != s->words) { /* another slice size: every bitmap is void */
        if (s->d_seen)
            CUDA_CHECK(cudaFree(s->d_seen));
        s->d_seen = NULL;
        free(s->entries);
        s->entries = NULL;
        s->cap = 0;
        free(s->entry_of_key); /* its entries are gone (and the arena may regrow smaller) */
        s->entry_of_key = NULL;
        s->cap_keys = 0;
        s->words = words;
    }
    /* twice the rows: this step's sequences and the next step's
     * newcomers fit without evicting each other */
    if (2 * n_rows > s->cap)
        grow_arena(s, 2 * n_rows > 2 * s->cap ? 2 * n_rows : 2 * s->cap);
    s->calls++;
    s->n_added = 0;
    s->any_update = false;
}

/* An entry no row of this call uses: a free one, else the least recently
 * used (begin made room: cap >= 2 rows). */
static int take_entry(cuda_seen *s)
{
    int best = -1;
    for (int e = 0; e < s->cap; e++) {
        const seen_entry *x = &s->entries[e];
        if (x->stamp == s->calls)
            continue;
        if (x->key == 0 && x->stamp == 0)
            return e;
        if (best < 0 || x->stamp < s->entries[best].stamp)
            best = e;
    }
    if (best < 0)
        vb_cuda_fail("host", "cuda_seen_row", "more rows than cuda_seen_begin was told", __FILE__,
                     __LINE__);
    const seen_entry *old = &s->entries[best];
    if (old->key > 0 && old->key < s->cap_keys && s->entry_of_key[old->key] == best)
        s->entry_of_key[old->key] = -1;
    return best;
}

static void map_key(cuda_seen *s, int key, int entry)
{
    if (key >= s->cap_keys) {
        int n = s->cap_keys ? s->cap_keys : 256;
        while (n <= key)
            n *= 2;
        int *m = host_or_die(realloc(s->entry_of_key, (size_t)n * sizeof *m));
        for (int i = s->cap_keys; i < n; i++)
            m[i] = -1;
        s->entry_of_key = m;
        s->cap_keys = n;
    }
    s->entry_of_key[key] = entry;
}

static void queue_token(cuda_seen *s, int32_t token, int vocab_offset, int n_local)
{
    int64_t t = (int64_t)token - vocab_offset;
    if (t < 0 || t >= n_local) /* another rank's slice */
        return;
    if (s->n_added == s->cap_added) {
        /* keep what earlier rows queued: grow through a host copy */
        size_t keep = s->n_added;
        int *tmp = keep ? host_or_die(malloc(keep * sizeof *tmp)) : NULL;
        if (keep)
            memcpy(tmp, s->h_added, keep * sizeof *tmp);
        pinned_pair_grow((void **)&s->h_added, (void **)&s->d_added, &s->cap_added, keep + 1,
                         sizeof *s->h_added);
        if (keep)
            memcpy(s->h_added, tmp, keep * sizeof *tmp);
        free(tmp);
    }
    s->h_added[s->n_added++] = (int)t;
}

int cuda_seen_row(cuda_seen *s, const sampler_row *row, int vocab_offset, int n_local,
                  int *added_start, int *added_count, bool *reset)
{
    const long n_hist = (long)row->n_prompt + row->n_generated;
    const int key = row->state_slot;
    int e = key > 0 && key < s->cap_keys ? s->entry_of_key[key] : -1;
    bool keep = e >= 0 && s->entries[e].key == key && s->entries[e].row == row->row &&
                s->entries[e].sample == row->sample && row->n_generated > 0 &&
                s->entries[e].synced <= n_hist && s->entries[e].stamp != s->calls;
    if (!keep) {
        e = take_entry(s);
        s->entries[e] = (seen_entry){.key = key > 0 ? key : 0, .row = row->row,
                                     .sample = row->sample, .synced = 0};
        if (key > 0)
            map_key(s, key, e);
    }
    seen_entry *x = &s->entries[e];
    x->stamp = s->calls;
    *reset = !keep;
    *added_start = (int)s->n_added;
    for (long i = x->synced; i < n_hist; i++)
        queue_token(s, i < row->n_prompt ? row->prompt[i] : row->generated[i - row->n_prompt],
                    vocab_offset, n_local);
    *added_count = (int)(s->n_added - (size_t)*added_start);
    x->synced = n_hist;
    if (*reset || *added_count > 0)
        s->any_update = true;
    return e;
}

bool cuda_seen_upload(cuda_seen *s, cudaStream_t stream, unsigned **d_seen, const int **d_added)
{
    if (s->n_added)
        CUDA_CHECK(cudaMemcpyAsync(s->d_added, s->h_added, s->n_added * sizeof *s->h_added,
                                   cudaMemcpyHostToDevice, stream));
    *d_seen = s->d_seen;
    *d_added = s->d_added;
    return s->any_update;
}

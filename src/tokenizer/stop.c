/* Stop strings across token boundaries (stop.h). The text of one completion
 * is only ever searched in tail + new chunk, so the work per token is the
 * chunk plus the longest stop string, not the whole completion. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/stop.h"

int stop_matcher_init(stop_matcher *m, const char *const *stops, size_t n)
{
    memset(m, 0, sizeof *m);
    m->stops = calloc(n + 1, sizeof *m->stops);
    m->stop_lens = calloc(n + 1, sizeof *m->stop_lens);
    if (!m->stops || !m->stop_lens)
        return -1;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(stops[i]);
        if (!l)
            continue;
        if (!(m->stops[m->n_stops] = strdup(stops[i])))
            return -1; /* stop_matcher_free frees what was made */
        m->stop_lens[m->n_stops++] = l;
        if (l > m->max_len)
            m->max_len = l;
    }
    m->tail = malloc(m->max_len + 1);
    return m->tail ? 0 : -1;
}

void stop_matcher_free(stop_matcher *m)
{
    for (size_t i = 0; i < m->n_stops; i++)
        free(m->stops[i]);
    free(m->stops);
    free(m->stop_lens);
    free(m->tail);
    memset(m, 0, sizeof *m);
}

/* The earliest start (offset in the stream) of a stop string complete in
 * tail + text, or false. *w is that window, malloc'd (NULL when out of
 * memory: no hit). */
static bool search(const stop_matcher *m, const char *text, size_t len, char **w,
                   size_t *stop_at)
{
    /* window = tail (the text just before this chunk) + chunk */
    size_t wn = m->tail_len + len;
    *w = malloc(wn);
    if (!*w)
        return false;
    memcpy(*w, m->tail, m->tail_len);
    memcpy(*w + m->tail_len, text, len);
    size_t base = m->seen - m->tail_len; /* offset of w[0] in the stream */
    bool hit = false;
    size_t best = 0;
    for (size_t i = 0; i < m->n_stops; i++) {
        size_t l = m->stop_lens[i];
        for (size_t p = 0; p + l <= wn; p++) {
            if ((*w)[p] == m->stops[i][0] && memcmp(*w + p, m->stops[i], l) == 0) {
                if (!hit || base + p < best)
                    best = base + p;
                hit = true;
                break;
            }
        }
    }
    if (hit)
        *stop_at = best;
    return hit;
}

bool stop_matcher_feed(stop_matcher *m, const char *text, size_t len, size_t *stop_at)
{
    if (m->n_stops == 0 || len == 0) {
        m->seen += len;
        return false;
    }
    char *w;
    bool hit = search(m, text, len, &w, stop_at);
    if (!w)
        return false;
    size_t wn = m->tail_len + len;
    m->seen += len;
    size_t keep = m->max_len - 1 < wn ? m->max_len - 1 : wn;
    memcpy(m->tail, w + wn - keep, keep);
    m->tail_len = keep;
    free(w);
    return hit;
}

bool stop_matcher_peek(const stop_matcher *m, const char *text, size_t len, size_t *stop_at)
{
    if (m->n_stops == 0 || len == 0)
        return false;
    char *w;
    bool hit = search(m, text, len, &w, stop_at);
    free(w);
    return hit;
}

size_t stop_matcher_safe_len(const stop_matcher *m)
{
    /* Hold back the longest suffix of the tail that is a prefix of a stop. */
    size_t hold = 0;
    for (size_t i = 0; i < m->n_stops; i++) {
        size_t l = m->stop_lens[i];
        for (size_t k = (l - 1 < m->tail_len ? l - 1 : m->tail_len); k > hold; k--)
            if (memcmp(m->tail + m->tail_len - k, m->stops[i], k) == 0) {
                hold = k;
                break;
            }
    }
    return m->seen - hold;
}

bool stop_is_eos(const int32_t *eos_ids, size_t n, int32_t id, bool ignore_eos)
{
    if (ignore_eos)
        return false;
    for (size_t i = 0; i < n; i++)
        if (eos_ids[i] == id)
            return true;
    return false;
}

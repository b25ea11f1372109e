/* Stop conditions for one request: eos ids, and stop strings matched on the
 * decoded text, across token boundaries (a stop string may arrive split over
 * several tokens, so the matcher keeps the tail that could still start one). */
#ifndef VB_STOP_H
#define VB_STOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct stop_matcher {
    char **stops;       /* owned copies */
    size_t *stop_lens;
    size_t n_stops;
    size_t max_len;
    char *tail;         /* the last max_len-1 bytes of text seen */
    size_t tail_len;
    size_t seen;        /* bytes fed so far */
} stop_matcher;

/* Copies the strings; empty strings are ignored. -1 on out of memory. */
int stop_matcher_init(stop_matcher *m, const char *const *stops, size_t n);
void stop_matcher_free(stop_matcher *m);

/* Feeds the next decoded text. Returns true when a stop string is complete;
 * *stop_at is then where it starts, as a byte offset in all text fed so far
 * (the completion is cut there, the stop string itself not included). When
 * several stops complete in one chunk, the earliest start wins. */
bool stop_matcher_feed(stop_matcher *m, const char *text, size_t len, size_t *stop_at);

/* Whether feeding text next would complete a stop string (*stop_at as
 * stop_matcher_feed gives it), without feeding it: m is unchanged. */
bool stop_matcher_peek(const stop_matcher *m, const char *text, size_t len, size_t *stop_at);

/* How many bytes of the text fed so far can be shown to a reader for sure:
 * the rest might still become the start of a stop string. */
size_t stop_matcher_safe_len(const stop_matcher *m);

/* True when id is one of the eos ids (and ignore_eos is false). */
bool stop_is_eos(const int32_t *eos_ids, size_t n, int32_t id, bool ignore_eos);

#endif

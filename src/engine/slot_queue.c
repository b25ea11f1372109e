/* Ring-buffer deque of slots (see slot_queue.h). */
#include "engine/slot_queue.h"

#include <stdlib.h>

int slot_queue_reserve(slot_queue *q, int need)
{
    if (need <= q->cap) return 0;
    int cap = q->cap ? q->cap : 16;
    while (cap < need) cap *= 2;
    int *buf = malloc((size_t)cap * sizeof *buf);
    if (!buf) return -1;
    for (int i = 0; i < q->n; i++) buf[i] = slot_queue_at(q, i);
    free(q->buf);
    q->buf = buf;
    q->cap = cap;
    q->head = 0;
    return 0;
}

void slot_queue_free(slot_queue *q)
{
    free(q->buf);
    q->buf = NULL;
    q->cap = q->head = q->n = 0;
}

void slot_queue_push_back(slot_queue *q, int v)
{
    q->buf[(q->head + q->n) % q->cap] = v;
    q->n++;
}

void slot_queue_push_front(slot_queue *q, int v)
{
    q->head = (q->head + q->cap - 1) % q->cap;
    q->buf[q->head] = v;
    q->n++;
}

void slot_queue_remove_at(slot_queue *q, int i)
{
    if (i < q->n / 2) {
        /* Shift the entries before i one place back, then drop the head. */
        for (int k = i; k > 0; k--) q->buf[(q->head + k) % q->cap] = q->buf[(q->head + k - 1) % q->cap];
        q->head = (q->head + 1) % q->cap;
    } else {
        for (int k = i; k < q->n - 1; k++) q->buf[(q->head + k) % q->cap] = q->buf[(q->head + k + 1) % q->cap];
    }
    q->n--;
}

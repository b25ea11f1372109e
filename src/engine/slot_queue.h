/* A double-ended queue of sequence slots (ring buffer), for the
 * scheduler's waiting line: new rows join the back, preempted ones go back
 * to the front, admission takes from near the front. Every operation the
 * scheduler does per step is O(1) or O(position), so a line of many
 * thousand rows costs nothing per step. */
#ifndef VB_SLOT_QUEUE_H
#define VB_SLOT_QUEUE_H

typedef struct slot_queue {
    int *buf;
    int cap, head, n;
} slot_queue;

/* Makes room for `need` entries in all. Returns 0 or -1 (out of memory). */
int slot_queue_reserve(slot_queue *q, int need);
void slot_queue_free(slot_queue *q);

/* Both need room (slot_queue_reserve) first. */
void slot_queue_push_back(slot_queue *q, int v);
void slot_queue_push_front(slot_queue *q, int v);

static inline int slot_queue_at(const slot_queue *q, int i) { return q->buf[(q->head + i) % q->cap]; }

/* Removes entry i, keeping the order of the rest. */
void slot_queue_remove_at(slot_queue *q, int i);

#endif

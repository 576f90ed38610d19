/*
** queue.h: intrusive circular doubly-linked list (after libuv's uv__queue).
** Nodes live inside the structs they link, so linking never allocates and an
** element unlinks itself in O(1): that is what lets a cancelled waiter leave a
** wait list without a trace.
*/
#ifndef WEFT_QUEUE_H
#define WEFT_QUEUE_H

#include <stddef.h>

typedef struct weft_queue {
  struct weft_queue *next;
  struct weft_queue *prev;
} weft_queue;

#define weft_queue_data(ptr, type, field) \
  ((type *)((char *)(ptr) - offsetof(type, field)))

static inline void weft_queue_init(weft_queue *q) {
  q->next = q;
  q->prev = q;
}

static inline int weft_queue_empty(const weft_queue *q) {
  return q->next == q;
}

/* An unlinked node points at itself: remove() leaves it that way, so
   "is it linked?" is a pointer test and removing twice is harmless. */
static inline int weft_queue_linked(const weft_queue *q) {
  return q->next != q && q->next != NULL;
}

static inline weft_queue *weft_queue_head(const weft_queue *q) {
  return q->next;
}

static inline void weft_queue_insert_tail(weft_queue *h, weft_queue *q) {
  q->next = h;
  q->prev = h->prev;
  q->prev->next = q;
  h->prev = q;
}

static inline void weft_queue_insert_head(weft_queue *h, weft_queue *q) {
  q->next = h->next;
  q->prev = h;
  q->next->prev = q;
  h->next = q;
}

static inline void weft_queue_remove(weft_queue *q) {
  q->prev->next = q->next;
  q->next->prev = q->prev;
  q->next = q;
  q->prev = q;
}

/* Moves every element of h to the tail of n, leaving h empty. */
static inline void weft_queue_move(weft_queue *h, weft_queue *n) {
  if (weft_queue_empty(h))
    return;
  n->prev->next = h->next;
  h->next->prev = n->prev;
  h->prev->next = n;
  n->prev = h->prev;
  weft_queue_init(h);
}

#endif

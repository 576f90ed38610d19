/*
** heap.h: min-heap of deadlines, ordered by time then by insertion sequence so
** that equal deadlines fire FIFO (libuv's timers use the same tie-break).
** The nodes are intrusive (a weft_deadline lives inside its owner and knows
** its slot); the array holds each deadline's time and sequence next to its
** pointer, so sifting compares contiguous memory instead of chasing owners
** scattered over the heap. Only the array is allocated, and it only grows.
*/
#ifndef WEFT_HEAP_H
#define WEFT_HEAP_H

#include <stdint.h>
#include <stdlib.h>

typedef struct weft_deadline weft_deadline;
typedef void (*weft_deadline_cb)(weft_deadline *d);

struct weft_deadline {
  double when;          /* runtime clock, seconds */
  size_t slot;          /* index in the heap array, or WEFT_HEAP_NONE */
  weft_deadline_cb fire;
};

#define WEFT_HEAP_NONE ((size_t)-1)

typedef struct weft_heap_entry {
  double when;
  uint64_t seq;         /* FIFO tie-break among equal deadlines */
  weft_deadline *d;
} weft_heap_entry;

typedef struct weft_heap {
  weft_heap_entry *items;
  size_t n, cap;
  uint64_t seq;
} weft_heap;

static inline int weft_deadline_armed(const weft_deadline *d) {
  return d->slot != WEFT_HEAP_NONE;
}

static inline int weft__heap_less(const weft_heap_entry *a, const weft_heap_entry *b) {
  return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static inline void weft__heap_place(weft_heap *h, size_t i, weft_heap_entry e) {
  h->items[i] = e;
  e.d->slot = i;
}

static inline void weft__heap_up(weft_heap *h, size_t i) {
  weft_heap_entry e = h->items[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!weft__heap_less(&e, &h->items[parent]))
      break;
    weft__heap_place(h, i, h->items[parent]);
    i = parent;
  }
  weft__heap_place(h, i, e);
}

static inline void weft__heap_down(weft_heap *h, size_t i) {
  weft_heap_entry e = h->items[i];
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= h->n)
      break;
    if (child + 1 < h->n && weft__heap_less(&h->items[child + 1], &h->items[child]))
      child++;
    if (!weft__heap_less(&h->items[child], &e))
      break;
    weft__heap_place(h, i, h->items[child]);
    i = child;
  }
  weft__heap_place(h, i, e);
}

/* Arms d at d->when. Returns 0, or -1 when the array cannot grow (the
   deadline is then not armed). */
static inline int weft_heap_insert(weft_heap *h, weft_deadline *d) {
  weft_heap_entry e;
  if (h->n == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 64;
    weft_heap_entry *items = (weft_heap_entry *)realloc(h->items, cap * sizeof *items);
    if (items == NULL)
      return -1;
    h->items = items;
    h->cap = cap;
  }
  e.when = d->when;
  e.seq = h->seq++;
  e.d = d;
  weft__heap_place(h, h->n++, e);
  weft__heap_up(h, d->slot);
  return 0;
}

static inline void weft_heap_remove(weft_heap *h, weft_deadline *d) {
  size_t i = d->slot;
  weft_heap_entry last;
  if (i == WEFT_HEAP_NONE)
    return;
  d->slot = WEFT_HEAP_NONE;
  last = h->items[--h->n];
  if (last.d == d)
    return;
  weft__heap_place(h, i, last);
  if (i > 0 && weft__heap_less(&last, &h->items[(i - 1) / 2]))
    weft__heap_up(h, i);
  else
    weft__heap_down(h, i);
}

static inline weft_deadline *weft_heap_min(const weft_heap *h) {
  return h->n ? h->items[0].d : NULL;
}

/* Moves every deadline by delta seconds (order is kept). */
static inline void weft_heap_shift(weft_heap *h, double delta) {
  size_t i;
  for (i = 0; i < h->n; i++) {
    h->items[i].when += delta;
    h->items[i].d->when = h->items[i].when;
  }
}

/* Restores the order after the times were changed in place. */
static inline void weft_heap_heapify(weft_heap *h) {
  size_t i = h->n / 2;
  while (i-- > 0)
    weft__heap_down(h, i);
}

#endif

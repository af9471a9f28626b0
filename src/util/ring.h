/* The one growable ring of the library: a FIFO of pointers (used from the
 * back alone, a stack), its buffer doubling up to a limit. The queues and
 * the thread-safe queue keep their items in it. Growing is the only
 * operation that can fail; everything else is inline and branch-light,
 * for the queues' hot paths. */
#ifndef AIOC_UTIL_RING_H
#define AIOC_UTIL_RING_H

#include <stdbool.h>
#include <stddef.h>

typedef struct aioc__ring {
  void **v;
  size_t cap;  /* slots allocated */
  size_t head; /* slot of the front item */
  size_t len;  /* items held */
} aioc__ring;

static inline void aioc__ring_init(aioc__ring *r) {
  r->v = NULL;
  r->cap = r->head = r->len = 0;
}

static inline bool aioc__ring_has_room(const aioc__ring *r) {
  return r->len < r->cap;
}

/* The slot of the k-th item from the front (k < cap). */
static inline size_t aioc__ring_slot(const aioc__ring *r, size_t k) {
  size_t i = r->head + k;
  return i >= r->cap ? i - r->cap : i;
}

/* Appends item; there must be room. */
static inline void aioc__ring_push_back(aioc__ring *r, void *item) {
  r->v[aioc__ring_slot(r, r->len)] = item;
  r->len++;
}

/* Removes and returns the front item; the ring must not be empty. */
static inline void *aioc__ring_pop_front(aioc__ring *r) {
  void *item = r->v[r->head];
  if (++r->head == r->cap) r->head = 0;
  r->len--;
  return item;
}

/* Removes and returns the back item; the ring must not be empty. */
static inline void *aioc__ring_pop_back(aioc__ring *r) {
  r->len--;
  return r->v[aioc__ring_slot(r, r->len)];
}

/* The k-th item from the front (k < len). */
static inline void *aioc__ring_at(const aioc__ring *r, size_t k) {
  return r->v[aioc__ring_slot(r, k)];
}

/* Makes room for one more item, doubling the buffer (16 slots at first)
 * up to max slots. Returns 0, or -ENOMEM (r unchanged). The ring must be
 * full and below max. */
AIOC_HIDDEN int aioc__ring_grow(aioc__ring *r, size_t max);

/* Makes room for n items in all, in one allocation. Returns 0, or -ENOMEM
 * (r unchanged). */
AIOC_HIDDEN int aioc__ring_reserve(aioc__ring *r, size_t n);

/* Hands the buffer and its items to *out (freed later with
 * aioc__ring_free()) and leaves r empty. */
static inline void aioc__ring_take(aioc__ring *r, aioc__ring *out) {
  *out = *r;
  aioc__ring_init(r);
}

/* Frees the buffer, calling item_free (if set) on each item, front first. */
AIOC_HIDDEN void aioc__ring_free(aioc__ring *r, void (*item_free)(void *));

#endif

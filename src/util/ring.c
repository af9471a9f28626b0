/* The growable ring (see ring.h). */
#include "common.h"

/* Resizes the buffer to n slots (n >= r->len). */
static int resize(aioc__ring *r, size_t n) {
  if (n > SIZE_MAX / sizeof(void *)) return -ENOMEM;
  void **v;
  if (r->head == 0) {
    /* In order already: realloc may grow it in place. */
    v = aioc__realloc(r->v, n * sizeof *v);
    if (!v) return -ENOMEM;
  } else {
    /* Unrolled so that the front item lands in slot 0. */
    v = aioc__alloc(n * sizeof *v);
    if (!v) return -ENOMEM;
    for (size_t k = 0; k < r->len; k++) v[k] = aioc__ring_at(r, k);
    aioc__free(r->v);
    r->head = 0;
  }
  r->v = v;
  r->cap = n;
  return 0;
}

int aioc__ring_grow(aioc__ring *r, size_t max) {
  size_t n = r->cap ? r->cap * 2 : 16;
  if (n > max) n = max;
  return resize(r, n);
}

int aioc__ring_reserve(aioc__ring *r, size_t n) {
  return r->cap < n ? resize(r, n) : 0;
}

void aioc__ring_free(aioc__ring *r, void (*item_free)(void *)) {
  if (item_free)
    for (size_t k = 0; k < r->len; k++) item_free(aioc__ring_at(r, k));
  aioc__free(r->v);
  aioc__ring_init(r);
}

/* Timers: a 4-ary min-heap ordered by (deadline, sequence).
 *
 * The heap never reads a clock: deadlines are parameters, so the virtual
 * clock and the real one share this code. The entries carry the deadline
 * inline so that sifting touches the heap array only; the sequence (FIFO
 * for equal deadlines) is read from the node on ties. */
#include <stdlib.h>

#include "loop.h"

static inline bool before(const aioc__heap_entry *a,
                          const aioc__heap_entry *b) {
  if (a->when != b->when) return a->when < b->when;
  return a->t->seq < b->t->seq;
}

static inline void place(aioc__heap_entry *h, uint32_t i, aioc__heap_entry e) {
  h[i] = e;
  e.t->idx = i;
}

static void sift_up(aioc__heap_entry *h, uint32_t i) {
  aioc__heap_entry e = h[i];
  while (i > 0) {
    uint32_t p = (i - 1) / 4;
    if (!before(&e, &h[p])) break;
    place(h, i, h[p]);
    i = p;
  }
  place(h, i, e);
}

static void sift_down(aioc__heap_entry *h, uint32_t n, uint32_t i) {
  aioc__heap_entry e = h[i];
  for (;;) {
    uint32_t c = 4 * i + 1;
    if (c >= n) break;
    uint32_t best = c, end = c + 4 < n ? c + 4 : n;
    for (uint32_t k = c + 1; k < end; k++)
      if (before(&h[k], &h[best])) best = k;
    if (!before(&h[best], &e)) break;
    place(h, i, h[best]);
    i = best;
  }
  place(h, i, e);
}

static void remove_at(aioc_loop *loop, uint32_t i) {
  aioc__heap_entry *h = loop->heap;
  h[i].t->idx = AIOC__NOTIMER;
  uint32_t last = --loop->nheap;
  if (i == last) return;
  place(h, i, h[last]);
  if (i > 0 && before(&h[i], &h[(i - 1) / 4]))
    sift_up(h, i);
  else
    sift_down(h, loop->nheap, i);
}

void aioc__timer_disarm(aioc_loop *loop, aioc__timer *t) {
  if (t->idx != AIOC__NOTIMER) remove_at(loop, t->idx);
  t->when = AIOC__NEVER;
}

int aioc__timer_arm(aioc_loop *loop, aioc__timer *t, int64_t when) {
  if (t->idx != AIOC__NOTIMER) remove_at(loop, t->idx);
  t->when = when;
  if (when == AIOC__NEVER) return 0;
  if (loop->nheap == loop->capheap) {
    uint32_t cap = loop->capheap ? loop->capheap * 2 : 64;
    aioc__heap_entry *h = aioc__realloc(loop->heap, cap * sizeof *h);
    if (!h) {
      t->when = AIOC__NEVER; /* not armed: no deadline to report */
      return -ENOMEM;
    }
    loop->heap = h;
    loop->capheap = cap;
  }
  t->seq = loop->timer_seq++;
  uint32_t i = loop->nheap++;
  loop->heap[i] = (aioc__heap_entry){when, t};
  t->idx = i;
  sift_up(loop->heap, i);
  return 0;
}

/* Used by the loop: fires every timer due at now, in order. */
AIOC_HIDDEN size_t aioc__timers_fire(aioc_loop *loop, int64_t now);
size_t aioc__timers_fire(aioc_loop *loop, int64_t now) {
  size_t n = 0;
  while (loop->nheap && loop->heap[0].when <= now) {
    aioc__timer *t = loop->heap[0].t;
    int64_t lag = now - loop->heap[0].when;
    loop->m.lag_total += lag;
    if (lag > loop->m.lag_max) loop->m.lag_max = lag;
    remove_at(loop, 0);
    if (aioc__unlikely(loop->trace)) {
      aioc__trace_timer(loop, t, lag);
      t->fire(loop, t);
      aioc__trace_ctx_clear(loop);
    } else {
      t->fire(loop, t);
    }
    n++;
  }
  loop->m.timers_fired += n;
  return n;
}

/* Queue: FIFO (ring), LIFO (stack) and priority (binary heap, ties FIFO),
 * bounded or not, with task_done/join and Python 3.13's shutdown.
 *
 * Hand-off keeps two invariants: getters wait only while the queue is
 * empty (a put gives its item straight to the first getter), and putters
 * wait only while it is full (a get moves the first putter's item in and
 * wakes it). A waiter woken by a hand-off has its item delivered or taken
 * already, so cancelling it afterwards loses nothing; one woken by a
 * cancellation or timeout was unlinked first and got nothing. */
#include "sync.h"

typedef struct pslot {
  void *item;
  uint64_t seq; /* put order: FIFO among equal priorities */
} pslot;

struct aioc_queue {
  /* hot: the buffer */
  aioc__ring ring; /* FIFO, LIFO: the items (a stack for LIFO) */
  size_t limit;    /* capacity, SIZE_MAX when unbounded */
  uint8_t kind;
  bool shutdown;
  aioc__wlist getters; /* non-empty only while size == 0 */
  aioc__wlist putters; /* non-empty only while size == limit */
  size_t unfinished;   /* put and not yet task_done */
  /* cold */
  pslot *heap;        /* PRIORITY: the items */
  size_t hlen, hcap;  /* entries used, allocated */
  aioc__wlist joiners;
  uint64_t seq;
  aioc_compare_fn compare;
  aioc_free_fn item_free;
  aioc_loop *loop;
  int capacity;
  AIOC__ARMOR_FIELD
};

#define QUEUE_OK(q, fn) AIOC__ARMOR_OK(q, AIOC__MAGIC_QUEUE, fn, "queue")

/* ---- the buffer ---- */

static int cmp_int(const void *a, const void *b) {
  intptr_t x = AIOC_TO_INT(a), y = AIOC_TO_INT(b);
  return (x > y) - (x < y);
}

static inline bool before(const aioc_queue *q, const pslot *a,
                          const pslot *b) {
  int c = q->compare(a->item, b->item);
  return c != 0 ? c < 0 : a->seq < b->seq;
}

/* Items queued, whatever the kind. */
static inline size_t qlen(const aioc_queue *q) {
  return aioc__likely(q->kind != AIOC_QUEUE_PRIORITY) ? q->ring.len : q->hlen;
}

static int heap_push(aioc_queue *q, void *item) {
  if (q->hlen == q->hcap) {
    /* More room, doubling up to the capacity. */
    size_t n = q->hcap ? q->hcap * 2 : 16;
    if (n > q->limit) n = q->limit;
    if (n > SIZE_MAX / sizeof(pslot)) return -ENOMEM;
    pslot *h = aioc__realloc(q->heap, n * sizeof *h);
    if (!h) return -ENOMEM;
    q->heap = h;
    q->hcap = n;
  }
  pslot *h = q->heap;
  pslot e = {item, q->seq++};
  size_t i = q->hlen++;
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!before(q, &e, &h[p])) break;
    h[i] = h[p];
    i = p;
  }
  h[i] = e;
  return 0;
}

static void *heap_pop(aioc_queue *q) {
  pslot *h = q->heap;
  void *top = h[0].item;
  size_t n = --q->hlen; /* entries left after the pop */
  pslot e = h[n];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && before(q, &h[c + 1], &h[c])) c++;
    if (!before(q, &h[c], &e)) break;
    h[i] = h[c];
    i = c;
  }
  if (n) h[i] = e;
  return top;
}

/* Appends item; there is room below the limit. Returns 0 or -ENOMEM. */
static inline int push(aioc_queue *q, void *item) {
  if (aioc__unlikely(q->kind == AIOC_QUEUE_PRIORITY))
    return heap_push(q, item);
  if (aioc__unlikely(!aioc__ring_has_room(&q->ring))) {
    int rc = aioc__ring_grow(&q->ring, q->limit);
    if (rc) return rc;
  }
  aioc__ring_push_back(&q->ring, item);
  return 0;
}

/* Removes the next item; the queue is not empty. */
static inline void *pop(aioc_queue *q) {
  if (aioc__likely(q->kind == AIOC_QUEUE_FIFO))
    return aioc__ring_pop_front(&q->ring);
  if (q->kind == AIOC_QUEUE_LIFO) return aioc__ring_pop_back(&q->ring);
  return heap_pop(q);
}

/* The items of a detached buffer go to item_free in the order they would
 * have come out (heap order for priority), and the buffer is freed. */
static void drop_items(uint8_t kind, aioc__ring *r, pslot *heap, size_t hlen,
                       aioc_free_fn item_free) {
  if (item_free) {
    for (size_t k = 0; k < hlen; k++) item_free(heap[k].item);
    if (kind == AIOC_QUEUE_LIFO)
      while (r->len) item_free(aioc__ring_pop_back(r));
  }
  aioc__free(heap);
  aioc__ring_free(r, item_free);
}

int aioc__queue_reserve(aioc_queue *q, size_t n) {
  if (q->kind == AIOC_QUEUE_PRIORITY) return -EINVAL;
  if (n > q->limit) n = q->limit;
  return aioc__ring_reserve(&q->ring, n);
}

/* ---- lifetime ---- */

int aioc_queue_new(aioc_queue **out, int capacity,
                   const aioc_queue_options *opts) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (capacity < 0) return -EINVAL;
  aioc_queue_options o = {AIOC_QUEUE_FIFO, NULL, NULL};
  if (opts) o = *opts;
  if (o.kind != AIOC_QUEUE_FIFO && o.kind != AIOC_QUEUE_LIFO &&
      o.kind != AIOC_QUEUE_PRIORITY)
    return -EINVAL;
  aioc_queue *q = aioc__calloc(1, sizeof *q);
  if (!q) return -ENOMEM;
  q->limit = capacity ? (size_t)capacity : SIZE_MAX;
  q->kind = (uint8_t)o.kind;
  q->compare = o.compare ? o.compare : cmp_int;
  q->item_free = o.item_free;
  q->capacity = capacity;
  aioc__wlist_init(&q->getters);
  aioc__wlist_init(&q->putters);
  aioc__wlist_init(&q->joiners);
  AIOC__ARMOR_SET(q, AIOC__MAGIC_QUEUE);
  *out = q;
  return 0;
}

void aioc_queue_free(aioc_queue *q) {
  if (q && !QUEUE_OK(q, "aioc_queue_free")) return;
  if (!q) return;
  aioc__sync_destroy_list(&q->getters);
  aioc__sync_destroy_list(&q->putters);
  aioc__sync_destroy_list(&q->joiners);
  drop_items(q->kind, &q->ring, q->heap, q->hlen, q->item_free);
  AIOC__ARMOR_SET(q, AIOC__MAGIC_DEAD);
  aioc__free(q);
}

/* ---- put and get ---- */

/* Puts without waiting: 0, AIOC_EFULL, -ESHUTDOWN or -ENOMEM. */
static inline int put_now(aioc_queue *q, void *item) {
  if (aioc__unlikely(q->shutdown)) return -ESHUTDOWN;
  if (aioc__unlikely(q->getters.n)) {
    aioc__swait *g = aioc__wlist_first(&q->getters);
    g->item = item;
    q->unfinished++;
    aioc__sync_deliver(g, 0);
    return 0;
  }
  if (qlen(q) >= q->limit) return AIOC_EFULL;
  int rc = push(q, item);
  if (aioc__unlikely(rc)) return rc;
  q->unfinished++;
  return 0;
}

/* Gets without waiting: 0, AIOC_EEMPTY or -ESHUTDOWN. */
static inline int get_now(aioc_queue *q, void **item) {
  if (aioc__likely(qlen(q))) {
    *item = pop(q);
    if (aioc__unlikely(q->putters.n)) {
      /* The slot just freed takes the first putter's item: it cannot
       * fail, the buffer is allocated up to the limit by now. */
      aioc__swait *p = aioc__wlist_first(&q->putters);
      push(q, p->item);
      q->unfinished++;
      aioc__sync_deliver(p, 0);
    }
    return 0;
  }
  return q->shutdown ? -ESHUTDOWN : AIOC_EEMPTY;
}

/* Everything but a FIFO put into free, allocated room: hand-off to a
 * getter, growth, the other kinds, shutdown, and waiting. Kept out of
 * line so that the fast path needs no frame for the waiter node. */
static __attribute__((noinline)) int put_slow(aioc_queue *q, void *item,
                                              double timeout) {
  aioc__coop_check(); /* the fast path's tick found the budget spent */
  if (aioc__unlikely(!q || aioc__sync_bad_timeout(timeout))) return -EINVAL;
  int rc = put_now(q, item);
  if (rc != AIOC_EFULL) return rc;
  aioc_task *t;
  rc = aioc__sync_task(&q->loop, &t);
  if (rc) return rc;
  aioc__swait s;
  s.item = item;
  s.aux = 0;
  /* 0: a getter moved the item in. Otherwise it never entered. */
  return aioc__sync_park(t, &s, &q->putters, timeout);
}

int aioc_queue_put(aioc_queue *q, void *item, double timeout) {
  if (q && !QUEUE_OK(q, "aioc_queue_put")) return -EINVAL;
  /* The common case, B5's: room in the ring, no getter waiting (getters
   * wait only on an empty queue), not shut down, timeout valid. */
  if (aioc__likely(aioc__coop_take() && q && q->kind == AIOC_QUEUE_FIFO &&
                   aioc__ring_has_room(&q->ring) && !q->getters.n &&
                   !q->shutdown && timeout >= 0)) {
    aioc__ring_push_back(&q->ring, item);
    q->unfinished++;
    return 0;
  }
  return put_slow(q, item, timeout);
}

static __attribute__((noinline)) int get_slow(aioc_queue *q, void **item,
                                              double timeout) {
  aioc__coop_check();
  if (aioc__likely(item != NULL)) *item = NULL;
  if (aioc__unlikely(!q || !item || aioc__sync_bad_timeout(timeout)))
    return -EINVAL;
  int rc = get_now(q, item);
  if (rc != AIOC_EEMPTY) return rc;
  aioc_task *t;
  rc = aioc__sync_task(&q->loop, &t);
  if (rc) return rc;
  aioc__swait s;
  s.item = NULL;
  s.aux = 0;
  rc = aioc__sync_park(t, &s, &q->getters, timeout);
  /* 0: a putter handed the item over. Otherwise nothing was taken. */
  if (rc == 0) *item = s.item;
  return rc;
}

int aioc_queue_get(aioc_queue *q, void **item, double timeout) {
  if (q && !QUEUE_OK(q, "aioc_queue_get")) {
    if (item) *item = NULL;
    return -EINVAL;
  }
  /* The common case: a FIFO item and no putter to let in (putters wait
   * only on a full queue). */
  if (aioc__likely(aioc__coop_take() && q && item &&
                   q->kind == AIOC_QUEUE_FIFO && q->ring.len &&
                   !q->putters.n && timeout >= 0)) {
    *item = aioc__ring_pop_front(&q->ring);
    return 0;
  }
  return get_slow(q, item, timeout);
}

int aioc_queue_try_put(aioc_queue *q, void *item) {
  if (q && !QUEUE_OK(q, "aioc_queue_try_put")) return -EINVAL;
  if (!q) return -EINVAL;
  return put_now(q, item);
}

int aioc_queue_try_get(aioc_queue *q, void **item) {
  if (q && !QUEUE_OK(q, "aioc_queue_try_get")) return -EINVAL;
  if (item) *item = NULL;
  if (!q || !item) return -EINVAL;
  return get_now(q, item);
}

/* ---- task_done, join, shutdown ---- */

int aioc_queue_task_done(aioc_queue *q) {
  if (q && !QUEUE_OK(q, "aioc_queue_task_done")) return -EINVAL;
  if (!q) return -EINVAL;
  if (q->unfinished == 0) return AIOC_ESTATE;
  if (--q->unfinished == 0) aioc__sync_deliver_all(&q->joiners, 0);
  return 0;
}

int aioc_queue_join(aioc_queue *q, double timeout) {
  if (q && !QUEUE_OK(q, "aioc_queue_join")) return -EINVAL;
  if (!q || aioc__sync_bad_timeout(timeout)) return -EINVAL;
  if (q->unfinished == 0) return 0;
  aioc_task *t;
  int rc = aioc__sync_task(&q->loop, &t);
  if (rc) return rc;
  aioc__swait s;
  s.item = NULL;
  s.aux = 0;
  return aioc__sync_park(t, &s, &q->joiners, timeout);
}

int aioc_queue_shutdown(aioc_queue *q, int immediate) {
  if (q && !QUEUE_OK(q, "aioc_queue_shutdown")) return -EINVAL;
  if (!q) return -EINVAL;
  q->shutdown = true;
  aioc__ring ring;
  aioc__ring_init(&ring);
  pslot *heap = NULL;
  size_t hlen = 0, n = qlen(q);
  if (immediate && n) {
    /* Detached first: item_free is user code and runs last. */
    aioc__ring_take(&q->ring, &ring);
    heap = q->heap;
    hlen = q->hlen;
    q->heap = NULL;
    q->hlen = q->hcap = 0;
    q->unfinished -= n < q->unfinished ? n : q->unfinished;
    if (q->unfinished == 0) aioc__sync_deliver_all(&q->joiners, 0);
  }
  aioc__sync_deliver_all(&q->getters, -ESHUTDOWN);
  aioc__sync_deliver_all(&q->putters, -ESHUTDOWN);
  if (n && immediate) drop_items(q->kind, &ring, heap, hlen, q->item_free);
  return 0;
}

/* ---- state ---- */

size_t aioc_queue_size(const aioc_queue *q) { return q ? qlen(q) : 0; }

int aioc_queue_capacity(const aioc_queue *q) {
  return q ? q->capacity : -EINVAL;
}

int aioc_queue_is_empty(const aioc_queue *q) {
  return !q || qlen(q) == 0;
}

int aioc_queue_is_full(const aioc_queue *q) {
  return q && qlen(q) >= q->limit;
}

int aioc_queue_is_shutdown(const aioc_queue *q) { return q && q->shutdown; }

/* ---- the queue as an iterator ---- */

static int queue_iter_next(void *self, void **item, double timeout) {
  int rc = aioc_queue_get(self, item, timeout);
  return rc == -ESHUTDOWN ? AIOC_EXHAUSTED : rc;
}

/* Closing the iterator shuts the queue down at once (waiting producers
 * get -ESHUTDOWN, items left go to item_free); freeing it frees the
 * queue: the iterator owns its source, as every *_iter does. */
static int queue_iter_close(void *self) {
  aioc_queue *q = self;
  return q->shutdown ? 0 : aioc_queue_shutdown(q, 1);
}

static void queue_iter_free(void *self) {
  aioc_queue_free(self);
}

static const aioc_iter_vtable queue_iter_vt = {
    queue_iter_next, queue_iter_close, queue_iter_free};

int aioc_queue_iter(aioc_iter **out, aioc_queue *q) {
  if (q && !QUEUE_OK(q, "aioc_queue_iter")) {
    if (out) *out = NULL;
    return -EINVAL;
  }
  if (!q) {
    if (out) *out = NULL;
    return -EINVAL;
  }
  int rc = aioc_iter_new(out, &queue_iter_vt, q);
  if (rc == 0) aioc_iter_set_item_free(*out, q->item_free);
  return rc;
}

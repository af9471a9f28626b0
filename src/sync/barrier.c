/* Barrier: the task that completes a round hands every waiter its arrival
 * index and wakes them, and the next round starts at once (asyncio's
 * draining phase is not needed when the wake-ups are hand-offs). A waiter
 * that leaves (cancelled, timed out) simply leaves the round, and indices
 * are given at release in arrival order, so they stay 0..parties-1 with
 * no duplicates even after someone left. */
#include "sync.h"

struct aioc_barrier {
  aioc__wlist waiters; /* the current round, in arrival order */
  aioc_loop *loop;
  int parties;
  bool broken;
};

int aioc_barrier_new(aioc_barrier **out, int parties) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (parties < 1) return -EINVAL;
  aioc_barrier *b = aioc__alloc(sizeof *b);
  if (!b) return -ENOMEM;
  aioc__wlist_init(&b->waiters);
  b->loop = NULL;
  b->parties = parties;
  b->broken = false;
  *out = b;
  return 0;
}

void aioc_barrier_free(aioc_barrier *b) {
  if (!b) return;
  aioc__sync_destroy_list(&b->waiters);
  aioc__free(b);
}

int aioc_barrier_wait(aioc_barrier *b, double timeout) {
  if (!b || aioc__sync_bad_timeout(timeout)) return -EINVAL;
  if (b->broken) return AIOC_EBROKEN;
  if (b->waiters.n + 1 == (size_t)b->parties) {
    intptr_t i = 0;
    aioc__swait *s;
    while ((s = aioc__wlist_first(&b->waiters))) {
      s->aux = i++;
      aioc__sync_deliver(s, 0);
    }
    return b->parties - 1;
  }
  aioc_task *t;
  int rc = aioc__sync_task(&b->loop, &t);
  if (rc) return rc;
  aioc__swait s;
  s.item = NULL;
  s.aux = 0;
  rc = aioc__sync_park(t, &s, &b->waiters, timeout);
  return rc ? rc : (int)s.aux;
}

int aioc_barrier_abort(aioc_barrier *b) {
  if (!b) return -EINVAL;
  b->broken = true;
  aioc__sync_deliver_all(&b->waiters, AIOC_EBROKEN);
  return 0;
}

int aioc_barrier_reset(aioc_barrier *b) {
  if (!b) return -EINVAL;
  aioc__sync_deliver_all(&b->waiters, AIOC_EBROKEN);
  b->broken = false;
  return 0;
}

int aioc_barrier_parties(const aioc_barrier *b) {
  return b ? b->parties : -EINVAL;
}

int aioc_barrier_n_waiting(const aioc_barrier *b) {
  return b ? (int)b->waiters.n : -EINVAL;
}

int aioc_barrier_is_broken(const aioc_barrier *b) {
  return b && b->broken;
}

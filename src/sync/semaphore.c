/* Semaphore and BoundedSemaphore. A released unit goes straight to the
 * first waiter, so a newcomer never overtakes a task that waits (the
 * fairness asyncio only gained in 3.11.x), and a waiter that was handed a
 * unit keeps it even if it is cancelled before it runs. */
#include <limits.h>

#include "sync.h"

struct aioc_semaphore {
  aioc__wlist waiters; /* non-empty only while value == 0 */
  aioc_loop *loop;
  int value;
  int bound; /* -1: unbounded */
};

static int make(aioc_semaphore **out, int value, bool bounded) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (value < 0) return -EINVAL;
  aioc_semaphore *s = aioc__alloc(sizeof *s);
  if (!s) return -ENOMEM;
  aioc__wlist_init(&s->waiters);
  s->loop = NULL;
  s->value = value;
  s->bound = bounded ? value : -1;
  *out = s;
  return 0;
}

int aioc_semaphore_new(aioc_semaphore **out, int value) {
  return make(out, value, false);
}

int aioc_bounded_semaphore_new(aioc_semaphore **out, int value) {
  return make(out, value, true);
}

void aioc_semaphore_free(aioc_semaphore *s) {
  if (!s) return;
  aioc__sync_destroy_list(&s->waiters);
  aioc__free(s);
}

int aioc_semaphore_acquire(aioc_semaphore *s, double timeout) {
  if (!s || aioc__sync_bad_timeout(timeout)) return -EINVAL;
  aioc__coop_tick();
  if (s->value > 0) {
    s->value--;
    return 0;
  }
  aioc_task *t;
  int rc = aioc__sync_task(&s->loop, &t);
  if (rc) return rc;
  aioc__swait w;
  w.item = NULL;
  w.aux = 0;
  return aioc__sync_park(t, &w, &s->waiters, timeout);
}

int aioc_semaphore_try_acquire(aioc_semaphore *s) {
  if (!s) return -EINVAL;
  if (s->value == 0) return -EAGAIN;
  s->value--;
  return 0;
}

int aioc_semaphore_release(aioc_semaphore *s) {
  if (!s) return -EINVAL;
  if (s->bound >= 0 && s->value >= s->bound) return -EOVERFLOW;
  aioc__swait *w = aioc__wlist_first(&s->waiters);
  if (w) {
    aioc__sync_deliver(w, 0);
    return 0;
  }
  if (s->value == INT_MAX) return -EOVERFLOW;
  s->value++;
  return 0;
}

int aioc_semaphore_value(const aioc_semaphore *s) {
  return s ? s->value : -EINVAL;
}

int aioc_semaphore_is_locked(const aioc_semaphore *s) {
  return s && s->value == 0;
}

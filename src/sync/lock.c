/* Lock: FIFO, owned by a task, handed straight to the first waiter. */
#include "sync.h"

int aioc_lock_new(aioc_lock **out) {
  if (!out) return -EINVAL;
  *out = NULL;
  aioc_lock *l = aioc__alloc(sizeof *l);
  if (!l) return -ENOMEM;
  aioc__wlist_init(&l->waiters);
  l->owner = NULL;
  l->loop = NULL;
  *out = l;
  return 0;
}

void aioc_lock_free(aioc_lock *l) {
  if (!l) return;
  aioc__sync_destroy_list(&l->waiters);
  aioc__free(l);
}

int aioc__lock_acquire(aioc_lock *l, aioc_task *t, double timeout,
                       bool *gone) {
  if (gone) *gone = false;
  /* Free implies no waiters: a release hands the lock to the first. */
  if (!l->owner) {
    l->owner = t;
    return 0;
  }
  if (l->owner == t) return -EDEADLK;
  aioc__swait s;
  s.item = NULL;
  s.aux = 0;
  int rc = aioc__sync_park(t, &s, &l->waiters, timeout);
  if (gone) *gone = s.gone;
  /* 0: the releaser already made t the owner, whatever happened since. */
  return rc;
}

void aioc__lock_release(aioc_lock *l) {
  aioc__swait *s = aioc__wlist_first(&l->waiters);
  if (s) {
    l->owner = s->tw.t;
    aioc__sync_deliver(s, 0);
  } else {
    l->owner = NULL;
  }
}

int aioc_lock_acquire(aioc_lock *l, double timeout) {
  if (!l || aioc__sync_bad_timeout(timeout)) return -EINVAL;
  aioc__coop_tick();
  aioc_task *t;
  int rc = aioc__sync_task(&l->loop, &t);
  if (rc) return rc;
  return aioc__lock_acquire(l, t, timeout, NULL);
}

int aioc_lock_try_acquire(aioc_lock *l) {
  if (!l) return -EINVAL;
  aioc_task *t;
  int rc = aioc__sync_task(&l->loop, &t);
  if (rc) return rc;
  if (l->owner == t) return -EDEADLK;
  if (l->owner) return -EBUSY;
  l->owner = t;
  return 0;
}

int aioc_lock_release(aioc_lock *l) {
  if (!l) return -EINVAL;
  aioc_task *t = aioc__current();
  if (!t || l->owner != t) return -EPERM;
  aioc__lock_release(l);
  return 0;
}

int aioc_lock_is_locked(const aioc_lock *l) {
  return l && l->owner != NULL;
}

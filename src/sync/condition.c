/* Condition: waiters queue in order; notify hands each of the first n a
 * wake-up (they leave the queue at once, so a cancelled waiter, which the
 * unhook already removed, can never be picked). The lock is re-acquired
 * uninterruptibly after the wait, so a notified waiter returns 0 and its
 * cancellation shows at its next suspension point: no notification is
 * lost and none is doubled (Python 3.13 resorts to a spurious wake-up). */
#include "sync.h"

struct aioc_condition {
  aioc__wlist waiters;
  aioc_lock *lock;
  aioc_loop *loop;
  bool own_lock;
};

int aioc_condition_new(aioc_condition **out, aioc_lock *lock) {
  if (!out) return -EINVAL;
  *out = NULL;
  aioc_condition *c = aioc__alloc(sizeof *c);
  if (!c) return -ENOMEM;
  c->own_lock = lock == NULL;
  if (!lock && aioc_lock_new(&lock) < 0) {
    aioc__free(c);
    return -ENOMEM;
  }
  aioc__wlist_init(&c->waiters);
  c->lock = lock;
  c->loop = NULL;
  *out = c;
  return 0;
}

void aioc_condition_free(aioc_condition *c) {
  if (!c) return;
  aioc__sync_destroy_list(&c->waiters);
  if (c->own_lock) aioc_lock_free(c->lock);
  aioc__free(c);
}

aioc_lock *aioc_condition_lock(aioc_condition *c) {
  return c ? c->lock : NULL;
}

int aioc_condition_acquire(aioc_condition *c, double timeout) {
  return c ? aioc_lock_acquire(c->lock, timeout) : -EINVAL;
}

int aioc_condition_release(aioc_condition *c) {
  return c ? aioc_lock_release(c->lock) : -EINVAL;
}

/* One wait of t (which holds the lock) until deadline. */
static int wait_until(aioc_condition *c, aioc_task *t, int64_t deadline) {
  aioc_lock *l = c->lock;
  bool own = c->own_lock;
  aioc__swait s;
  s.item = NULL;
  s.aux = 0;
  /* Queue first: a wait that fails early keeps the lock untouched. */
  int rc = aioc__sync_enqueue(t, &s, &c->waiters, deadline);
  if (rc) return rc;
  aioc__lock_release(l);
  rc = aioc__twait_suspend(&s.tw);
  /* c may be gone now: only l (if it is not c's) and s are used. */
  if (s.gone && own) return -ECANCELED;
  bool lock_gone;
  t->r->nocancel++;
  int arc = aioc__lock_acquire(l, t, AIOC_FOREVER, &lock_gone);
  t->r->nocancel--;
  if (arc) return -ECANCELED; /* the lock itself was freed */
  return s.gone ? -ECANCELED : rc;
}

static int check_owner(aioc_condition *c, double timeout, aioc_task **t) {
  if (!c || aioc__sync_bad_timeout(timeout)) return -EINVAL;
  int rc = aioc__sync_task(&c->loop, t);
  if (rc) return rc;
  return c->lock->owner == *t ? 0 : -EPERM;
}

int aioc_condition_wait(aioc_condition *c, double timeout) {
  aioc_task *t;
  int rc = check_owner(c, timeout, &t);
  if (rc) return rc;
  return wait_until(c, t, aioc__sync_deadline(t, timeout));
}

int aioc_condition_wait_for(aioc_condition *c, aioc_predicate_fn pred,
                            void *arg, double timeout) {
  if (!pred) return -EINVAL;
  aioc_task *t;
  int rc = check_owner(c, timeout, &t);
  if (rc) return rc;
  int64_t deadline = aioc__sync_deadline(t, timeout);
  while (!pred(arg)) {
    rc = wait_until(c, t, deadline);
    if (rc) return rc;
  }
  return 0;
}

int aioc_condition_notify(aioc_condition *c, int n) {
  if (!c || n < 0) return -EINVAL;
  aioc_task *t = aioc__current();
  if (!t || c->lock->owner != t) return -EPERM;
  int k = 0;
  aioc__swait *s;
  while (k < n && (s = aioc__wlist_first(&c->waiters))) {
    aioc__sync_deliver(s, 0);
    k++;
  }
  return k;
}

int aioc_condition_notify_all(aioc_condition *c) {
  if (!c) return -EINVAL;
  aioc_task *t = aioc__current();
  if (!t || c->lock->owner != t) return -EPERM;
  return (int)aioc__sync_deliver_all(&c->waiters, 0);
}

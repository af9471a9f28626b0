/* Lock: FIFO hand-off, owner checks, timeouts, cancellation, free with waiters.
 *
 * Every primitive is checked for fairness order, for timeouts that leave
 * its state untouched, and for cancellation safety (a hand-off followed by
 * a cancel in the same iteration: the waiter keeps what it got; a cancel
 * followed by a hand-off: the next waiter, or the primitive, gets it). */
#include "sync_common.h"

/* ---- Lock ---------------------------------------------------------------- */

typedef struct lk {
  aioc_lock *l;
  int id;
  double hold;
  double timeout;
  int rc, rc2;
  double at;
  int owned;
} lk;

static int lock_worker(void *arg, void **res) {
  (void)res;
  lk *w = arg;
  w->rc = aioc_lock_acquire(w->l, w->timeout);
  w->at = aioc_time();
  if (w->rc) return 0;
  log_add(w->id);
  w->owned = owns(w->l);
  IGNORE_RC(aioc_sleep(w->hold));
  CHECK_RC(aioc_lock_release(w->l), 0);
  return 0;
}

static int lock_fifo_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  log_reset();
  aioc_lock *l;
  CHECK_RC(aioc_lock_new(&l), 0);
  CHECK(!aioc_lock_is_locked(l));
  CHECK_RC(aioc_lock_release(l), -EPERM);
  CHECK_RC(aioc_lock_acquire(l, AIOC_FOREVER), 0);
  CHECK(aioc_lock_is_locked(l));
  CHECK_RC(aioc_lock_acquire(l, AIOC_FOREVER), -EDEADLK);
  CHECK_RC(aioc_lock_try_acquire(l), -EDEADLK);
  lk w[5];
  aioc_task *ts[5];
  for (int i = 0; i < 5; i++) {
    w[i] = (lk){.l = l, .id = i, .hold = 1.0, .timeout = AIOC_FOREVER};
    ts[i] = spawn(lock_worker, &w[i]);
  }
  CHECK_RC(aioc_sleep(0.5), 0); /* all five queue, in spawn order */
  CHECK_RC(aioc_lock_release(l), 0);
  /* Handed to the first waiter: nobody can barge in. */
  CHECK(aioc_lock_is_locked(l));
  CHECK_RC(aioc_lock_try_acquire(l), -EBUSY);
  CHECK_RC(aioc_lock_release(l), -EPERM);
  /* main queues behind the other four. */
  CHECK_RC(aioc_lock_acquire(l, AIOC_FOREVER), 0);
  log_add(99);
  CHECK_DBL(aioc_time(), 5.5, EPS);
  for (int i = 0; i < 5; i++) {
    CHECK_RC(join(ts[i]), 0);
    CHECK_RC(w[i].rc, 0);
    CHECK(w[i].owned);
    CHECK_DBL(w[i].at, 0.5 + i, EPS);
  }
  CHECK_LOG(0, 1, 2, 3, 4, 99);
  CHECK_RC(aioc_lock_release(l), 0);
  CHECK(!aioc_lock_is_locked(l));
  CHECK_RC(aioc_lock_try_acquire(l), 0);
  CHECK_RC(aioc_lock_release(l), 0);
  aioc_lock_free(l);
  return 0;
}

TEST(test_lock_fifo) {
  CHECK_RC(run_main(lock_fifo_main, NULL, NULL), 0);
}

TEST(test_lock_bad_input) {
  aioc_lock *l;
  CHECK_RC(aioc_lock_new(NULL), -EINVAL);
  CHECK_RC(aioc_lock_new(&l), 0);
  CHECK_RC(aioc_lock_acquire(NULL, 1), -EINVAL);
  CHECK_RC(aioc_lock_acquire(l, -1), -EINVAL);
  CHECK_RC(aioc_lock_acquire(l, NAN), -EINVAL);
  CHECK_RC(aioc_lock_acquire(l, AIOC_FOREVER), AIOC_ENOTASK);
  CHECK_RC(aioc_lock_try_acquire(l), AIOC_ENOTASK);
  CHECK_RC(aioc_lock_try_acquire(NULL), -EINVAL);
  CHECK_RC(aioc_lock_release(l), -EPERM);
  CHECK_RC(aioc_lock_release(NULL), -EINVAL);
  CHECK(!aioc_lock_is_locked(NULL));
  aioc_lock_free(l);
  aioc_lock_free(NULL);
}

static int lock_timeout_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  log_reset();
  aioc_lock *l;
  CHECK_RC(aioc_lock_new(&l), 0);
  CHECK_RC(aioc_lock_acquire(l, 0), 0); /* free: timeout 0 is fine */
  CHECK_RC(aioc_lock_release(l), 0);
  CHECK_RC(aioc_lock_acquire(l, AIOC_FOREVER), 0);
  lk a = {.l = l, .id = 1, .timeout = 1.0};
  lk b = {.l = l, .id = 2, .timeout = 10.0};
  lk z = {.l = l, .id = 3, .timeout = 0};
  aioc_task *ta = spawn(lock_worker, &a);
  aioc_task *tb = spawn(lock_worker, &b);
  aioc_task *tz = spawn(lock_worker, &z);
  CHECK_RC(aioc_sleep(5.0), 0);
  /* a gave up at 1.0 and left no trace: main still owns the lock. */
  CHECK_RC(a.rc, -ETIMEDOUT);
  CHECK_DBL(a.at, 1.0, EPS);
  CHECK_RC(z.rc, -ETIMEDOUT);
  CHECK_DBL(z.at, 0.0, EPS);
  CHECK(owns(l));
  CHECK_RC(aioc_lock_release(l), 0);
  CHECK_RC(join(ta), 0);
  CHECK_RC(join(tb), 0);
  CHECK_RC(join(tz), 0);
  CHECK_RC(b.rc, 0);
  CHECK_DBL(b.at, 5.0, EPS);
  CHECK_LOG(2);
  CHECK(!aioc_lock_is_locked(l));
  aioc_lock_free(l);
  return 0;
}

TEST(test_lock_timeout) {
  CHECK_RC(run_main(lock_timeout_main, NULL, NULL), 0);
}

/* Acquires, then waits once more (where a cancellation shows), releases. */
static int lock_cancel_worker(void *arg, void **res) {
  (void)res;
  lk *w = arg;
  w->rc = aioc_lock_acquire(w->l, AIOC_FOREVER);
  if (w->rc) return w->rc;
  w->owned = owns(w->l);
  w->rc2 = aioc_sleep(0);
  CHECK_RC(aioc_lock_release(w->l), 0);
  return w->rc2;
}

static int lock_cancel_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_lock *l;
  CHECK_RC(aioc_lock_new(&l), 0);

  /* Hand-off, then cancel in the same iteration: the waiter owns the
   * lock, sees the cancellation at its next wait and releases. */
  CHECK_RC(aioc_lock_acquire(l, AIOC_FOREVER), 0);
  lk w = {.l = l};
  aioc_task *t = spawn(lock_cancel_worker, &w);
  settle();
  CHECK_RC(aioc_lock_release(l), 0);
  CHECK_EQ(aioc_task_cancel(t, NULL), 1);
  CHECK_RC(join(t), -ECANCELED);
  CHECK_RC(w.rc, 0);
  CHECK(w.owned);
  CHECK_RC(w.rc2, -ECANCELED);
  CHECK(!aioc_lock_is_locked(l));

  /* Cancel, then release: the waiter got nothing, the lock is free. */
  CHECK_RC(aioc_lock_acquire(l, AIOC_FOREVER), 0);
  lk v = {.l = l};
  t = spawn(lock_cancel_worker, &v);
  settle();
  CHECK_EQ(aioc_task_cancel(t, NULL), 1);
  CHECK_RC(aioc_lock_release(l), 0);
  CHECK(!aioc_lock_is_locked(l));
  CHECK_RC(join(t), -ECANCELED);
  CHECK_RC(v.rc, -ECANCELED);
  CHECK(!aioc_lock_is_locked(l));

  /* Cancel the first of two waiters, then release: the second gets it. */
  CHECK_RC(aioc_lock_acquire(l, AIOC_FOREVER), 0);
  lk p = {.l = l}, q = {.l = l};
  aioc_task *tp = spawn(lock_cancel_worker, &p);
  aioc_task *tq = spawn(lock_cancel_worker, &q);
  settle();
  aioc_task_cancel(tp, NULL);
  CHECK_RC(aioc_lock_release(l), 0);
  CHECK_RC(join(tp), -ECANCELED);
  CHECK_RC(join(tq), 0);
  CHECK_RC(p.rc, -ECANCELED);
  CHECK_RC(q.rc, 0);
  CHECK(q.owned);
  CHECK(!aioc_lock_is_locked(l));
  aioc_lock_free(l);
  return 0;
}

TEST(test_lock_cancel_at_handoff) {
  CHECK_RC(run_main(lock_cancel_main, NULL, NULL), 0);
}

/* A waiter inside a deadline scope. */
static int lock_scope_worker(void *arg, void **res) {
  (void)res;
  lk *w = arg;
  aioc_scope *s;
  CHECK_RC(aioc_timeout_enter(&s, 1.0), 0);
  w->rc = aioc_lock_acquire(w->l, AIOC_FOREVER);
  w->at = aioc_time();
  if (w->rc == 0) aioc_lock_release(w->l);
  CHECK_RC(aioc_scope_exit(s), -ETIMEDOUT);
  aioc_scope_free(s);
  return 0;
}

static int lock_scope_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_lock *l;
  CHECK_RC(aioc_lock_new(&l), 0);
  CHECK_RC(aioc_lock_acquire(l, AIOC_FOREVER), 0);
  lk w = {.l = l};
  aioc_task *t = spawn(lock_scope_worker, &w);
  CHECK_RC(aioc_sleep(2.0), 0);
  CHECK_RC(w.rc, -ETIMEDOUT);
  CHECK_DBL(w.at, 1.0, EPS);
  CHECK(owns(l));
  CHECK_RC(aioc_lock_release(l), 0);
  CHECK_RC(join(t), 0);
  aioc_lock_free(l);
  return 0;
}

TEST(test_lock_deadline_scope) {
  CHECK_RC(run_main(lock_scope_main, NULL, NULL), 0);
}

static int lock_free_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_lock *l;
  CHECK_RC(aioc_lock_new(&l), 0);
  CHECK_RC(aioc_lock_acquire(l, AIOC_FOREVER), 0);
  lk a = {.l = l, .timeout = AIOC_FOREVER};
  lk b = {.l = l, .timeout = 3.0};
  aioc_task *ta = spawn(lock_worker, &a);
  aioc_task *tb = spawn(lock_worker, &b);
  settle();
  aioc_lock_free(l); /* wakes both before the memory goes */
  CHECK_RC(join(ta), 0);
  CHECK_RC(join(tb), 0);
  CHECK_RC(a.rc, -ECANCELED);
  CHECK_RC(b.rc, -ECANCELED);
  CHECK_DBL(aioc_time(), 0.0, EPS);
  return 0;
}

TEST(test_lock_free_with_waiters) {
  CHECK_RC(run_main(lock_free_main, NULL, NULL), 0);
}

/* A primitive belongs to the loop of its first waiter. */
static int bind_first_main(void *arg, void **res) {
  (void)res;
  aioc_lock *l = arg;
  CHECK_RC(aioc_lock_acquire(l, AIOC_FOREVER), 0);
  CHECK_RC(aioc_lock_release(l), 0);
  return 0;
}

static int bind_second_main(void *arg, void **res) {
  (void)res;
  aioc_lock *l = arg;
  CHECK_RC(aioc_lock_acquire(l, AIOC_FOREVER), -EINVAL);
  CHECK_RC(aioc_lock_try_acquire(l), -EINVAL);
  return 0;
}

TEST(test_loop_binding) {
  aioc_lock *l;
  CHECK_RC(aioc_lock_new(&l), 0);
  /* Both loops open at once, so that they cannot share an address. */
  aioc_loop *a = test_loop(1), *b = test_loop(1);
  aioc_task *ta, *tb;
  CHECK_RC(aioc_spawn_ex(&ta, a, bind_first_main, l, NULL), 0);
  CHECK_RC(aioc_loop_run_until_complete(a, aioc_task_future(ta)), 0);
  CHECK_RC(aioc_spawn_ex(&tb, b, bind_second_main, l, NULL), 0);
  CHECK_RC(aioc_loop_run_until_complete(b, aioc_task_future(tb)), 0);
  CHECK_RC(aioc_future_result(aioc_task_future(ta), NULL), 0);
  CHECK_RC(aioc_future_result(aioc_task_future(tb), NULL), 0);
  aioc_task_unref(ta);
  aioc_task_unref(tb);
  CLOSE_CLEAN(a);
  CLOSE_CLEAN(b);
  aioc_lock_free(l);
}

CHECK_MAIN(120)

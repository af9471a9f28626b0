/* Condition: notify order, wait_for, cancellation and timeouts with the lock
 * re-acquired, free.
 *
 * Every primitive is checked for fairness order, for timeouts that leave
 * its state untouched, and for cancellation safety (a hand-off followed by
 * a cancel in the same iteration: the waiter keeps what it got; a cancel
 * followed by a hand-off: the next waiter, or the primitive, gets it). */
#include "sync_common.h"

/* ---- Condition ----------------------------------------------------------- */

typedef struct cw {
  aioc_condition *c;
  int id;
  double timeout;
  int rc, rc2;
  int held_after;
  double at;
} cw;

static int cond_waiter(void *arg, void **res) {
  (void)res;
  cw *w = arg;
  CHECK_RC(aioc_condition_acquire(w->c, AIOC_FOREVER), 0);
  w->rc = aioc_condition_wait(w->c, w->timeout);
  w->at = aioc_time();
  w->held_after = owns(aioc_condition_lock(w->c));
  log_add(w->id);
  w->rc2 = aioc_sleep(0);
  CHECK_RC(aioc_condition_release(w->c), 0);
  return 0;
}

static int cond_notify_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  log_reset();
  aioc_condition *c;
  CHECK_RC(aioc_condition_new(&c, NULL), 0);
  CHECK_RC(aioc_condition_wait(c, AIOC_FOREVER), -EPERM);
  CHECK_RC(aioc_condition_notify(c, 1), -EPERM);
  CHECK_RC(aioc_condition_notify_all(c), -EPERM);
  cw w[4];
  aioc_task *ts[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (cw){.c = c, .id = i + 1, .timeout = AIOC_FOREVER};
    ts[i] = spawn(cond_waiter, &w[i]);
  }
  settle();
  CHECK_RC(aioc_condition_acquire(c, AIOC_FOREVER), 0);
  CHECK_RC(aioc_condition_notify(c, -1), -EINVAL);
  CHECK_EQ(aioc_condition_notify(c, 1), 1);
  CHECK_RC(aioc_condition_release(c), 0);
  settle();
  CHECK_LOG(1);
  CHECK_RC(aioc_condition_acquire(c, AIOC_FOREVER), 0);
  CHECK_EQ(aioc_condition_notify(c, 2), 2);
  CHECK_RC(aioc_condition_release(c), 0);
  settle();
  CHECK_LOG(1, 2, 3);
  CHECK_RC(aioc_condition_acquire(c, AIOC_FOREVER), 0);
  CHECK_EQ(aioc_condition_notify_all(c), 1);
  CHECK_EQ(aioc_condition_notify_all(c), 0);
  CHECK_RC(aioc_condition_release(c), 0);
  for (int i = 0; i < 4; i++) {
    CHECK_RC(join(ts[i]), 0);
    CHECK_RC(w[i].rc, 0);
    CHECK(w[i].held_after);
  }
  CHECK_LOG(1, 2, 3, 4);
  aioc_condition_free(c);
  return 0;
}

TEST(test_condition_notify_order) {
  CHECK_RC(run_main(cond_notify_main, NULL, NULL), 0);
}

static int cond_cancel_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  log_reset();
  aioc_condition *c;
  CHECK_RC(aioc_condition_new(&c, NULL), 0);

  /* Cancel W1, then notify one: W2 gets the notification. */
  cw w1 = {.c = c, .id = 1, .timeout = AIOC_FOREVER};
  cw w2 = {.c = c, .id = 2, .timeout = AIOC_FOREVER};
  aioc_task *t1 = spawn(cond_waiter, &w1);
  aioc_task *t2 = spawn(cond_waiter, &w2);
  settle();
  CHECK_RC(aioc_condition_acquire(c, AIOC_FOREVER), 0);
  aioc_task_cancel(t1, NULL);
  CHECK_EQ(aioc_condition_notify(c, 1), 1);
  CHECK_RC(aioc_condition_release(c), 0);
  CHECK_RC(join(t1), 0);
  CHECK_RC(join(t2), 0);
  CHECK_RC(w1.rc, -ECANCELED);
  CHECK(w1.held_after); /* the lock is held again even when cancelled */
  CHECK_RC(w2.rc, 0);
  CHECK(w2.held_after);

  /* Notify one, then cancel it in the same iteration: it was notified and
   * returns 0 (the cancellation shows at its next wait); the other
   * waiter was not woken, so nothing was doubled either. */
  cw w3 = {.c = c, .id = 3, .timeout = AIOC_FOREVER};
  cw w4 = {.c = c, .id = 4, .timeout = AIOC_FOREVER};
  aioc_task *t3 = spawn(cond_waiter, &w3);
  aioc_task *t4 = spawn(cond_waiter, &w4);
  settle();
  CHECK_RC(aioc_condition_acquire(c, AIOC_FOREVER), 0);
  CHECK_EQ(aioc_condition_notify(c, 1), 1);
  aioc_task_cancel(t3, NULL);
  CHECK_RC(aioc_condition_release(c), 0);
  CHECK_RC(join(t3), 0);
  CHECK_RC(w3.rc, 0);
  CHECK(w3.held_after);
  CHECK_RC(w3.rc2, -ECANCELED);
  settle();
  CHECK(!aioc_future_is_done(aioc_task_future(t4))); /* still waiting */
  CHECK_RC(aioc_condition_acquire(c, AIOC_FOREVER), 0);
  CHECK_EQ(aioc_condition_notify(c, 1), 1);
  CHECK_RC(aioc_condition_release(c), 0);
  CHECK_RC(join(t4), 0);
  CHECK_RC(w4.rc, 0);
  CHECK_LOG(1, 2, 3, 4);
  aioc_condition_free(c);
  return 0;
}

TEST(test_condition_cancel_keeps_notify) {
  CHECK_RC(run_main(cond_cancel_main, NULL, NULL), 0);
}

static int cond_timeout_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  log_reset();
  aioc_condition *c;
  CHECK_RC(aioc_condition_new(&c, NULL), 0);
  /* Times out at 1.0 but gets the lock back only when main lets go. */
  cw w = {.c = c, .id = 1, .timeout = 1.0};
  aioc_task *t = spawn(cond_waiter, &w);
  settle();
  CHECK_RC(aioc_condition_acquire(c, AIOC_FOREVER), 0);
  CHECK_RC(aioc_sleep(2.0), 0);
  CHECK_EQ(aioc_condition_notify(c, 1), 0); /* it left the queue */
  CHECK_RC(aioc_condition_release(c), 0);
  CHECK_RC(join(t), 0);
  CHECK_RC(w.rc, -ETIMEDOUT);
  CHECK_DBL(w.at, 2.0, EPS);
  CHECK(w.held_after);
  /* Timeout 0 fails at once and keeps the lock. */
  CHECK_RC(aioc_condition_acquire(c, AIOC_FOREVER), 0);
  CHECK_RC(aioc_condition_wait(c, 0), -ETIMEDOUT);
  CHECK(owns(aioc_condition_lock(c)));
  CHECK_RC(aioc_condition_wait(c, -1), -EINVAL);
  CHECK_RC(aioc_condition_release(c), 0);
  aioc_condition_free(c);
  return 0;
}

TEST(test_condition_timeout) {
  CHECK_RC(run_main(cond_timeout_main, NULL, NULL), 0);
}

typedef struct counter {
  aioc_condition *c;
  int n;
  int want;
  int rc;
  double at;
} counter;

static int reached(void *arg) {
  counter *k = arg;
  return k->n >= k->want;
}

static int cond_wait_for_worker(void *arg, void **res) {
  (void)res;
  counter *k = arg;
  CHECK_RC(aioc_condition_acquire(k->c, AIOC_FOREVER), 0);
  k->rc = aioc_condition_wait_for(k->c, reached, k, AIOC_FOREVER);
  k->at = aioc_time();
  CHECK(owns(aioc_condition_lock(k->c)));
  CHECK_RC(aioc_condition_release(k->c), 0);
  return 0;
}

static int cond_wait_for_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_lock *l;
  aioc_condition *c;
  CHECK_RC(aioc_lock_new(&l), 0);
  CHECK_RC(aioc_condition_new(&c, l), 0); /* an external lock */
  CHECK(aioc_condition_lock(c) == l);
  counter k = {.c = c, .want = 3};
  aioc_task *t = spawn(cond_wait_for_worker, &k);
  for (int i = 0; i < 5; i++) {
    CHECK_RC(aioc_sleep(1.0), 0);
    CHECK_RC(aioc_lock_acquire(l, AIOC_FOREVER), 0);
    k.n++;
    CHECK_RC(aioc_condition_notify_all(c), k.n <= 3 ? 1 : 0);
    CHECK_RC(aioc_lock_release(l), 0);
  }
  CHECK_RC(join(t), 0);
  CHECK_RC(k.rc, 0);
  CHECK_DBL(k.at, 3.0, EPS);
  /* Whole-call timeout. */
  k.want = 100;
  CHECK_RC(aioc_lock_acquire(l, AIOC_FOREVER), 0);
  CHECK_RC(aioc_condition_wait_for(c, reached, &k, 2.5), -ETIMEDOUT);
  CHECK_DBL(aioc_time(), 7.5, EPS);
  CHECK(owns(l));
  CHECK_RC(aioc_condition_wait_for(c, NULL, &k, 1), -EINVAL);
  k.want = 0; /* already true: no wait */
  CHECK_RC(aioc_condition_wait_for(c, reached, &k, 0), 0);
  CHECK_RC(aioc_lock_release(l), 0);
  aioc_condition_free(c);
  aioc_lock_free(l);
  return 0;
}

TEST(test_condition_wait_for) {
  CHECK_RC(run_main(cond_wait_for_main, NULL, NULL), 0);
}

/* Touches nothing of the condition after its wait returns. */
typedef struct fw {
  aioc_condition *c;
  aioc_lock *l;
  int rc;
  int held_after;
} fw;

static int cond_free_waiter(void *arg, void **res) {
  (void)res;
  fw *w = arg;
  CHECK_RC(aioc_condition_acquire(w->c, AIOC_FOREVER), 0);
  w->rc = aioc_condition_wait(w->c, AIOC_FOREVER);
  if (w->l) {
    w->held_after = owns(w->l);
    if (w->held_after) aioc_lock_release(w->l);
  }
  return 0;
}

static int cond_free_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  /* Own lock: the waiter returns -ECANCELED without any lock. */
  aioc_condition *c;
  CHECK_RC(aioc_condition_new(&c, NULL), 0);
  fw a = {.c = c};
  aioc_task *ta = spawn(cond_free_waiter, &a);
  settle();
  aioc_condition_free(c);
  CHECK_RC(join(ta), 0);
  CHECK_RC(a.rc, -ECANCELED);
  /* External lock: the waiter gets it back. */
  aioc_lock *l;
  CHECK_RC(aioc_lock_new(&l), 0);
  CHECK_RC(aioc_condition_new(&c, l), 0);
  fw b = {.c = c, .l = l};
  aioc_task *tb = spawn(cond_free_waiter, &b);
  settle();
  aioc_condition_free(c);
  CHECK_RC(join(tb), 0);
  CHECK_RC(b.rc, -ECANCELED);
  CHECK(b.held_after);
  CHECK(!aioc_lock_is_locked(l));
  aioc_lock_free(l);
  return 0;
}

TEST(test_condition_free_with_waiters) {
  CHECK_RC(aioc_condition_new(NULL, NULL), -EINVAL);
  CHECK_RC(aioc_condition_wait(NULL, 1), -EINVAL);
  CHECK_RC(aioc_condition_notify(NULL, 1), -EINVAL);
  CHECK_RC(aioc_condition_notify_all(NULL), -EINVAL);
  CHECK_RC(aioc_condition_acquire(NULL, 1), -EINVAL);
  CHECK_RC(aioc_condition_release(NULL), -EINVAL);
  aioc_condition_free(NULL);
  CHECK_RC(run_main(cond_free_main, NULL, NULL), 0);
}

CHECK_MAIN(120)

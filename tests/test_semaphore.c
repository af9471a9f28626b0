/* Semaphore and BoundedSemaphore: FIFO units, overflow, cancellation.
 *
 * Every primitive is checked for fairness order, for timeouts that leave
 * its state untouched, and for cancellation safety (a hand-off followed by
 * a cancel in the same iteration: the waiter keeps what it got; a cancel
 * followed by a hand-off: the next waiter, or the primitive, gets it). */
#include "sync_common.h"

/* ---- Semaphore ----------------------------------------------------------- */

typedef struct sw {
  aioc_semaphore *s;
  int id;
  double hold;
  double timeout;
  int rc, rc2;
  double at;
} sw;

static int sem_worker(void *arg, void **res) {
  (void)res;
  sw *w = arg;
  w->rc = aioc_semaphore_acquire(w->s, w->timeout);
  w->at = aioc_time();
  if (w->rc) return 0;
  log_add(w->id);
  w->rc2 = aioc_sleep(w->hold);
  CHECK_RC(aioc_semaphore_release(w->s), 0);
  return 0;
}

static int sem_fifo_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  log_reset();
  aioc_semaphore *s;
  CHECK_RC(aioc_semaphore_new(&s, 2), 0);
  sw w[5];
  aioc_task *ts[5];
  for (int i = 0; i < 5; i++) {
    w[i] = (sw){.s = s, .id = i, .hold = 1.0, .timeout = AIOC_FOREVER};
    ts[i] = spawn(sem_worker, &w[i]);
  }
  CHECK_RC(aioc_sleep(0.5), 0);
  CHECK_EQ(aioc_semaphore_value(s), 0);
  CHECK(aioc_semaphore_is_locked(s));
  CHECK_RC(aioc_semaphore_try_acquire(s), -EAGAIN);
  for (int i = 0; i < 5; i++)
    CHECK_RC(join(ts[i]), 0);
  static const double at[] = {0, 0, 1, 1, 2};
  for (int i = 0; i < 5; i++)
    CHECK_DBL(w[i].at, at[i], EPS);
  CHECK_LOG(0, 1, 2, 3, 4);
  CHECK_EQ(aioc_semaphore_value(s), 2);

  /* No barging: a unit released while a task waits is that task's. */
  CHECK_RC(aioc_semaphore_acquire(s, 0), 0);
  CHECK_RC(aioc_semaphore_acquire(s, 0), 0);
  sw v = {.s = s, .id = 9, .timeout = AIOC_FOREVER};
  aioc_task *tv = spawn(sem_worker, &v);
  settle();
  CHECK_RC(aioc_semaphore_release(s), 0);
  CHECK_EQ(aioc_semaphore_value(s), 0);
  CHECK_RC(aioc_semaphore_try_acquire(s), -EAGAIN);
  CHECK_RC(join(tv), 0);
  CHECK_RC(aioc_semaphore_release(s), 0);
  CHECK_EQ(aioc_semaphore_value(s), 2);

  /* Timeout: nothing taken. */
  CHECK_RC(aioc_semaphore_acquire(s, 0), 0);
  CHECK_RC(aioc_semaphore_acquire(s, 0), 0);
  CHECK_RC(aioc_semaphore_acquire(s, 0), -ETIMEDOUT);
  double t0 = aioc_time();
  CHECK_RC(aioc_semaphore_acquire(s, 1.5), -ETIMEDOUT);
  CHECK_DBL(aioc_time() - t0, 1.5, EPS);
  CHECK_EQ(aioc_semaphore_value(s), 0);
  CHECK_RC(aioc_semaphore_release(s), 0);
  CHECK_RC(aioc_semaphore_release(s), 0);
  CHECK_EQ(aioc_semaphore_value(s), 2);
  aioc_semaphore_free(s);
  return 0;
}

TEST(test_semaphore_fifo) {
  CHECK_RC(run_main(sem_fifo_main, NULL, NULL), 0);
}

static int sem_cancel_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_semaphore *s;
  CHECK_RC(aioc_semaphore_new(&s, 1), 0);
  CHECK_RC(aioc_semaphore_acquire(s, AIOC_FOREVER), 0);
  /* Hand-off then cancel: the waiter keeps the unit, and gives it back. */
  sw a = {.s = s, .timeout = AIOC_FOREVER};
  aioc_task *ta = spawn(sem_worker, &a);
  settle();
  CHECK_RC(aioc_semaphore_release(s), 0);
  aioc_task_cancel(ta, NULL);
  CHECK_RC(join(ta), 0);
  CHECK_RC(a.rc, 0);
  CHECK_RC(a.rc2, -ECANCELED);
  CHECK_EQ(aioc_semaphore_value(s), 1);
  /* Cancel then release: the unit stays free. */
  CHECK_RC(aioc_semaphore_acquire(s, AIOC_FOREVER), 0);
  sw b = {.s = s, .timeout = AIOC_FOREVER};
  aioc_task *tb = spawn(sem_worker, &b);
  settle();
  aioc_task_cancel(tb, NULL);
  CHECK_RC(aioc_semaphore_release(s), 0);
  CHECK_EQ(aioc_semaphore_value(s), 1);
  CHECK_RC(join(tb), 0);
  CHECK_RC(b.rc, -ECANCELED);
  /* Freed under a waiter. */
  CHECK_RC(aioc_semaphore_acquire(s, AIOC_FOREVER), 0);
  sw c = {.s = s, .timeout = AIOC_FOREVER};
  aioc_task *tc = spawn(sem_worker, &c);
  settle();
  aioc_semaphore_free(s);
  CHECK_RC(join(tc), 0);
  CHECK_RC(c.rc, -ECANCELED);
  return 0;
}

TEST(test_semaphore_cancel_at_handoff) {
  CHECK_RC(run_main(sem_cancel_main, NULL, NULL), 0);
}

TEST(test_bounded_semaphore) {
  aioc_semaphore *s;
  CHECK_RC(aioc_semaphore_new(&s, -1), -EINVAL);
  CHECK_RC(aioc_bounded_semaphore_new(&s, -1), -EINVAL);
  CHECK_RC(aioc_semaphore_new(NULL, 1), -EINVAL);
  CHECK_RC(aioc_semaphore_acquire(NULL, 1), -EINVAL);
  CHECK_RC(aioc_semaphore_release(NULL), -EINVAL);
  CHECK_RC(aioc_semaphore_value(NULL), -EINVAL);
  CHECK_RC(aioc_bounded_semaphore_new(&s, 2), 0);
  CHECK_RC(aioc_semaphore_release(s), -EOVERFLOW);
  CHECK_EQ(aioc_semaphore_value(s), 2);                 /* unchanged */
  CHECK_RC(aioc_semaphore_acquire(s, AIOC_FOREVER), 0); /* no wait needed */
  CHECK_RC(aioc_semaphore_try_acquire(s), 0);
  CHECK_RC(aioc_semaphore_try_acquire(s), -EAGAIN);
  CHECK_RC(aioc_semaphore_acquire(s, AIOC_FOREVER), AIOC_ENOTASK);
  CHECK_RC(aioc_semaphore_acquire(s, NAN), -EINVAL);
  CHECK_RC(aioc_semaphore_release(s), 0);
  CHECK_RC(aioc_semaphore_release(s), 0);
  CHECK_RC(aioc_semaphore_release(s), -EOVERFLOW);
  CHECK_EQ(aioc_semaphore_value(s), 2);
  aioc_semaphore_free(s);
  /* Unbounded semaphores may grow past their initial value. */
  CHECK_RC(aioc_semaphore_new(&s, 0), 0);
  CHECK(aioc_semaphore_is_locked(s));
  CHECK_RC(aioc_semaphore_release(s), 0);
  CHECK_RC(aioc_semaphore_release(s), 0);
  CHECK_EQ(aioc_semaphore_value(s), 2);
  aioc_semaphore_free(s);
  CHECK_RC(aioc_semaphore_new(&s, 2147483647), 0);
  CHECK_RC(aioc_semaphore_release(s), -EOVERFLOW);
  aioc_semaphore_free(s);
  aioc_semaphore_free(NULL);
}

CHECK_MAIN(120)

/* Synchronization primitives and queues: Lock, Event, Condition,
 * Semaphore, BoundedSemaphore, Barrier, Queue (FIFO, LIFO, priority,
 * shutdown, task_done/join) on the virtual clock, and the thread-safe
 * queue with real threads on a real-clock loop.
 *
 * Besides the basics, every primitive is checked for fairness order, for
 * timeouts that leave its state untouched, and for the cancellation-safety
 * cases: a hand-off followed by a cancel in the same loop iteration (the
 * waiter keeps what it was handed) and a cancel followed by a hand-off
 * (the next waiter, or the primitive, gets it). */
#include <math.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "check.h"

#define EPS 1e-6

/* ---- harness ------------------------------------------------------------- */

/* check_run_main() (check.h), virtual clock unless real. */
static int run_main_ex(aioc_fn fn, void *arg, int virtual_clock) {
  return check_run_main(fn, arg, virtual_clock, NULL);
}

static int run_main(aioc_fn fn, void *arg) { return run_main_ex(fn, arg, 1); }


static aioc_task *spawn(aioc_fn fn, void *arg) {
  aioc_task *t = NULL;
  CHECK_RC(aioc_spawn(&t, fn, arg), 0);
  return t;
}

/* Awaits and releases t; returns its code. */
static int join(aioc_task *t) {
  int rc = aioc_task_await(t, NULL);
  aioc_task_unref(t);
  return rc;
}

/* Lets every ready task run until all of them wait (without moving the
 * virtual clock). */
static void settle(void) {
  for (int i = 0; i < 8; i++)
    IGNORE_RC(aioc_sleep(0));
}

/* Does the current task own l? */
static int owns(aioc_lock *l) { return aioc_lock_try_acquire(l) == -EDEADLK; }

/* ---- error codes --------------------------------------------------------- */

static void test_error_codes(void) {
  CHECK_STR(aioc_err_name(AIOC_EBROKEN), "AIOC_EBROKEN");
  CHECK_STR(aioc_err_name(AIOC_EFULL), "AIOC_EFULL");
  CHECK_STR(aioc_err_name(AIOC_EEMPTY), "AIOC_EEMPTY");
  CHECK_STR(aioc_strerror(-ESHUTDOWN), "shut down");
  CHECK_STR(aioc_strerror(AIOC_EBROKEN), "barrier is broken");
  CHECK_STR(aioc_strerror(AIOC_EFULL), "queue is full");
  CHECK_STR(aioc_strerror(AIOC_EEMPTY), "queue is empty");
  /* One code per condition: the errno ESHUTDOWN, named as such. */
  CHECK_STR(aioc_err_name(-ESHUTDOWN), "ESHUTDOWN");
}

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

static void test_lock_fifo(void) {
  CHECK_RC(run_main(lock_fifo_main, NULL), 0);
}

static void test_lock_bad_input(void) {
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

static void test_lock_timeout(void) {
  CHECK_RC(run_main(lock_timeout_main, NULL), 0);
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

static void test_lock_cancel_at_handoff(void) {
  CHECK_RC(run_main(lock_cancel_main, NULL), 0);
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

static void test_lock_deadline_scope(void) {
  CHECK_RC(run_main(lock_scope_main, NULL), 0);
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

static void test_lock_free_with_waiters(void) {
  CHECK_RC(run_main(lock_free_main, NULL), 0);
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

static void test_loop_binding(void) {
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

/* ---- Event --------------------------------------------------------------- */

typedef struct ew {
  aioc_event *e;
  int id;
  double timeout;
  int rc;
  double at;
} ew;

static int event_waiter(void *arg, void **res) {
  (void)res;
  ew *w = arg;
  w->rc = aioc_event_wait(w->e, w->timeout);
  w->at = aioc_time();
  if (w->rc == 0) log_add(w->id);
  return 0;
}

static int event_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  log_reset();
  aioc_event *e;
  CHECK_RC(aioc_event_new(&e), 0);
  CHECK(!aioc_event_is_set(e));
  ew w[4];
  aioc_task *ts[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (ew){.e = e, .id = i, .timeout = i == 3 ? 1.0 : AIOC_FOREVER};
    ts[i] = spawn(event_waiter, &w[i]);
  }
  CHECK_RC(aioc_sleep(2.0), 0);
  CHECK_RC(w[3].rc, -ETIMEDOUT);
  CHECK_DBL(w[3].at, 1.0, EPS);
  /* The three left are woken; clearing at once does not undo that. */
  CHECK_EQ(aioc_event_set(e), 3);
  CHECK(aioc_event_is_set(e));
  CHECK_RC(aioc_event_clear(e), 0);
  CHECK(!aioc_event_is_set(e));
  for (int i = 0; i < 4; i++) CHECK_RC(join(ts[i]), 0);
  for (int i = 0; i < 3; i++) {
    CHECK_RC(w[i].rc, 0);
    CHECK_DBL(w[i].at, 2.0, EPS);
  }
  CHECK_LOG(0, 1, 2);
  /* A set event does not wait, even with timeout 0. */
  CHECK_EQ(aioc_event_set(e), 0);
  CHECK_RC(aioc_event_wait(e, 0), 0);
  CHECK_RC(aioc_event_clear(e), 0);
  CHECK_RC(aioc_event_wait(e, 0), -ETIMEDOUT);
  /* Cancelled waiter. */
  ew c = {.e = e, .timeout = AIOC_FOREVER};
  aioc_task *tc = spawn(event_waiter, &c);
  settle();
  aioc_task_cancel(tc, NULL);
  CHECK_RC(join(tc), 0);
  CHECK_RC(c.rc, -ECANCELED);
  CHECK_EQ(aioc_event_set(e), 0); /* nobody left waiting */
  /* Freed under a waiter. */
  CHECK_RC(aioc_event_clear(e), 0);
  ew f = {.e = e, .timeout = AIOC_FOREVER};
  aioc_task *tf = spawn(event_waiter, &f);
  settle();
  aioc_event_free(e);
  CHECK_RC(join(tf), 0);
  CHECK_RC(f.rc, -ECANCELED);
  return 0;
}

static void test_event(void) {
  aioc_event *e;
  CHECK_RC(aioc_event_new(NULL), -EINVAL);
  CHECK_RC(aioc_event_new(&e), 0);
  CHECK_RC(aioc_event_wait(e, AIOC_FOREVER), AIOC_ENOTASK);
  CHECK_RC(aioc_event_wait(e, -1), -EINVAL);
  CHECK_RC(aioc_event_wait(NULL, 1), -EINVAL);
  CHECK_RC(aioc_event_set(NULL), -EINVAL);
  CHECK_RC(aioc_event_clear(NULL), -EINVAL);
  CHECK_EQ(aioc_event_set(e), 0);
  CHECK_RC(aioc_event_wait(e, AIOC_FOREVER), 0); /* set: no task needed */
  aioc_event_free(e);
  CHECK_RC(run_main(event_main, NULL), 0);
}

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

static void test_condition_notify_order(void) {
  CHECK_RC(run_main(cond_notify_main, NULL), 0);
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

static void test_condition_cancel_keeps_notify(void) {
  CHECK_RC(run_main(cond_cancel_main, NULL), 0);
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

static void test_condition_timeout(void) {
  CHECK_RC(run_main(cond_timeout_main, NULL), 0);
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

static void test_condition_wait_for(void) {
  CHECK_RC(run_main(cond_wait_for_main, NULL), 0);
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

static void test_condition_free_with_waiters(void) {
  CHECK_RC(aioc_condition_new(NULL, NULL), -EINVAL);
  CHECK_RC(aioc_condition_wait(NULL, 1), -EINVAL);
  CHECK_RC(aioc_condition_notify(NULL, 1), -EINVAL);
  CHECK_RC(aioc_condition_notify_all(NULL), -EINVAL);
  CHECK_RC(aioc_condition_acquire(NULL, 1), -EINVAL);
  CHECK_RC(aioc_condition_release(NULL), -EINVAL);
  aioc_condition_free(NULL);
  CHECK_RC(run_main(cond_free_main, NULL), 0);
}

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
  for (int i = 0; i < 5; i++) CHECK_RC(join(ts[i]), 0);
  static const double at[] = {0, 0, 1, 1, 2};
  for (int i = 0; i < 5; i++) CHECK_DBL(w[i].at, at[i], EPS);
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

static void test_semaphore_fifo(void) {
  CHECK_RC(run_main(sem_fifo_main, NULL), 0);
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

static void test_semaphore_cancel_at_handoff(void) {
  CHECK_RC(run_main(sem_cancel_main, NULL), 0);
}

static void test_bounded_semaphore(void) {
  aioc_semaphore *s;
  CHECK_RC(aioc_semaphore_new(&s, -1), -EINVAL);
  CHECK_RC(aioc_bounded_semaphore_new(&s, -1), -EINVAL);
  CHECK_RC(aioc_semaphore_new(NULL, 1), -EINVAL);
  CHECK_RC(aioc_semaphore_acquire(NULL, 1), -EINVAL);
  CHECK_RC(aioc_semaphore_release(NULL), -EINVAL);
  CHECK_RC(aioc_semaphore_value(NULL), -EINVAL);
  CHECK_RC(aioc_bounded_semaphore_new(&s, 2), 0);
  CHECK_RC(aioc_semaphore_release(s), -EOVERFLOW);
  CHECK_EQ(aioc_semaphore_value(s), 2); /* unchanged */
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

/* ---- Barrier ------------------------------------------------------------- */

typedef struct bw {
  aioc_barrier *b;
  int id;
  double delay;
  double timeout;
  int rounds;
  int rc[4];
  double at;
} bw;

static int barrier_worker(void *arg, void **res) {
  (void)res;
  bw *w = arg;
  if (w->delay > 0) IGNORE_RC(aioc_sleep(w->delay));
  for (int r = 0; r < w->rounds; r++) {
    w->rc[r] = aioc_barrier_wait(w->b, w->timeout);
    w->at = aioc_time();
    if (w->rc[r] < 0) break;
  }
  return 0;
}

static int barrier_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_barrier *b;
  CHECK_RC(aioc_barrier_new(&b, 3), 0);
  CHECK_EQ(aioc_barrier_parties(b), 3);
  bw w[3];
  aioc_task *ts[3];
  for (int i = 0; i < 3; i++) {
    w[i] = (bw){.b = b, .id = i, .delay = i, .timeout = AIOC_FOREVER,
                .rounds = 2};
    ts[i] = spawn(barrier_worker, &w[i]);
  }
  CHECK_RC(aioc_sleep(1.5), 0);
  CHECK_EQ(aioc_barrier_n_waiting(b), 2);
  for (int i = 0; i < 3; i++) CHECK_RC(join(ts[i]), 0);
  /* Arrival order gives the index; the one that completes the round gets
   * parties - 1. Round 2: all arrive at 2.0 in the order woken. */
  for (int i = 0; i < 3; i++) {
    CHECK_EQ(w[i].rc[0], i);
    CHECK_DBL(w[i].at, 2.0, EPS);
  }
  int seen = 0;
  for (int i = 0; i < 3; i++) seen |= 1 << w[i].rc[1];
  CHECK_EQ(seen, 7);
  CHECK_EQ(aioc_barrier_n_waiting(b), 0);
  CHECK(!aioc_barrier_is_broken(b));

  /* A waiter that times out leaves the round; the indices stay dense. */
  bw a = {.b = b, .timeout = 1.0, .rounds = 1};
  bw p = {.b = b, .timeout = AIOC_FOREVER, .rounds = 1};
  aioc_task *ta = spawn(barrier_worker, &a);
  aioc_task *tp = spawn(barrier_worker, &p);
  CHECK_RC(aioc_sleep(1.5), 0);
  CHECK_RC(a.rc[0], -ETIMEDOUT);
  CHECK_EQ(aioc_barrier_n_waiting(b), 1);
  CHECK(!aioc_barrier_is_broken(b));
  bw q = {.b = b, .timeout = AIOC_FOREVER, .rounds = 1};
  aioc_task *tq = spawn(barrier_worker, &q);
  settle();
  CHECK_EQ(aioc_barrier_n_waiting(b), 2);
  CHECK_EQ(aioc_barrier_wait(b, AIOC_FOREVER), 2);
  CHECK_RC(join(ta), 0);
  CHECK_RC(join(tp), 0);
  CHECK_RC(join(tq), 0);
  CHECK_EQ(p.rc[0], 0);
  CHECK_EQ(q.rc[0], 1);

  /* A cancelled waiter leaves the round too. */
  bw c = {.b = b, .timeout = AIOC_FOREVER, .rounds = 1};
  aioc_task *tc = spawn(barrier_worker, &c);
  settle();
  CHECK_EQ(aioc_barrier_n_waiting(b), 1);
  aioc_task_cancel(tc, NULL);
  CHECK_RC(join(tc), 0);
  CHECK_RC(c.rc[0], -ECANCELED);
  CHECK_EQ(aioc_barrier_n_waiting(b), 0);
  aioc_barrier_free(b);
  return 0;
}

static void test_barrier(void) {
  CHECK_RC(run_main(barrier_main, NULL), 0);
}

static int barrier_abort_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_barrier *b;
  CHECK_RC(aioc_barrier_new(&b, 3), 0);
  bw w[2];
  aioc_task *ts[2];
  for (int i = 0; i < 2; i++) {
    w[i] = (bw){.b = b, .timeout = AIOC_FOREVER, .rounds = 1};
    ts[i] = spawn(barrier_worker, &w[i]);
  }
  settle();
  CHECK_RC(aioc_barrier_abort(b), 0);
  CHECK(aioc_barrier_is_broken(b));
  for (int i = 0; i < 2; i++) {
    CHECK_RC(join(ts[i]), 0);
    CHECK_RC(w[i].rc[0], AIOC_EBROKEN);
  }
  CHECK_RC(aioc_barrier_wait(b, AIOC_FOREVER), AIOC_EBROKEN);
  CHECK_RC(aioc_barrier_wait(b, 0), AIOC_EBROKEN);
  /* reset: usable again. */
  CHECK_RC(aioc_barrier_reset(b), 0);
  CHECK(!aioc_barrier_is_broken(b));
  /* reset with waiters: they fail, the barrier is not broken. */
  for (int i = 0; i < 2; i++) {
    w[i] = (bw){.b = b, .timeout = AIOC_FOREVER, .rounds = 1};
    ts[i] = spawn(barrier_worker, &w[i]);
  }
  settle();
  CHECK_RC(aioc_barrier_reset(b), 0);
  for (int i = 0; i < 2; i++) {
    CHECK_RC(join(ts[i]), 0);
    CHECK_RC(w[i].rc[0], AIOC_EBROKEN);
  }
  CHECK(!aioc_barrier_is_broken(b));
  CHECK_EQ(aioc_barrier_n_waiting(b), 0);
  /* Freed under a waiter. */
  w[0] = (bw){.b = b, .timeout = AIOC_FOREVER, .rounds = 1};
  ts[0] = spawn(barrier_worker, &w[0]);
  settle();
  aioc_barrier_free(b);
  CHECK_RC(join(ts[0]), 0);
  CHECK_RC(w[0].rc[0], -ECANCELED);
  return 0;
}

static void test_barrier_abort_reset(void) {
  aioc_barrier *b;
  CHECK_RC(aioc_barrier_new(&b, 0), -EINVAL);
  CHECK_RC(aioc_barrier_new(&b, -3), -EINVAL);
  CHECK_RC(aioc_barrier_new(NULL, 2), -EINVAL);
  CHECK_RC(aioc_barrier_wait(NULL, 1), -EINVAL);
  CHECK_RC(aioc_barrier_abort(NULL), -EINVAL);
  CHECK_RC(aioc_barrier_reset(NULL), -EINVAL);
  CHECK_RC(aioc_barrier_parties(NULL), -EINVAL);
  CHECK_RC(aioc_barrier_n_waiting(NULL), -EINVAL);
  CHECK_RC(aioc_barrier_new(&b, 1), 0);
  CHECK_EQ(aioc_barrier_wait(b, AIOC_FOREVER), 0); /* one party: no wait */
  CHECK_EQ(aioc_barrier_wait(b, 0), 0);
  aioc_barrier_free(b);
  CHECK_RC(aioc_barrier_new(&b, 2), 0);
  CHECK_RC(aioc_barrier_wait(b, AIOC_FOREVER), AIOC_ENOTASK);
  CHECK_RC(aioc_barrier_wait(b, -1), -EINVAL);
  aioc_barrier_free(b);
  aioc_barrier_free(NULL);
  CHECK_RC(run_main(barrier_abort_main, NULL), 0);
}

/* ---- Queue: order and bad input ------------------------------------------ */

typedef struct pitem {
  int prio;
  int id;
} pitem;

static int by_prio(const void *a, const void *b) {
  const pitem *x = a, *y = b;
  return (x->prio > y->prio) - (x->prio < y->prio);
}

static void test_queue_order(void) {
  aioc_queue *q;
  void *it;
  /* FIFO, with the ring wrapping and growing. */
  CHECK_RC(aioc_queue_new(&q, 0, NULL), 0);
  int next_in = 0, next_out = 0;
  for (int round = 0; round < 50; round++) {
    for (int i = 0; i < round * 3 + 7; i++)
      CHECK_RC(aioc_queue_try_put(q, AIOC_INT(next_in++)), 0);
    for (int i = 0; i < round * 2 + 5; i++) {
      CHECK_RC(aioc_queue_try_get(q, &it), 0);
      CHECK_EQ(AIOC_TO_INT(it), next_out++);
    }
  }
  while (aioc_queue_try_get(q, &it) == 0) CHECK_EQ(AIOC_TO_INT(it), next_out++);
  CHECK_EQ(next_out, next_in);
  CHECK_RC(aioc_queue_try_get(q, &it), AIOC_EEMPTY);
  CHECK(it == NULL);
  aioc_queue_free(q);

  /* LIFO. */
  aioc_queue_options o = {.kind = AIOC_QUEUE_LIFO};
  CHECK_RC(aioc_queue_new(&q, 0, &o), 0);
  for (int i = 0; i < 40; i++) CHECK_RC(aioc_queue_try_put(q, AIOC_INT(i)), 0);
  for (int i = 39; i >= 0; i--) {
    CHECK_RC(aioc_queue_try_get(q, &it), 0);
    CHECK_EQ(AIOC_TO_INT(it), i);
  }
  aioc_queue_free(q);

  /* Priority, items compared as integers by default. */
  o = (aioc_queue_options){.kind = AIOC_QUEUE_PRIORITY};
  CHECK_RC(aioc_queue_new(&q, 0, &o), 0);
  unsigned x = 12345;
  for (int i = 0; i < 500; i++) {
    x = x * 1103515245u + 12345u;
    CHECK_RC(aioc_queue_try_put(q, AIOC_INT((int)(x >> 16) % 1000 - 500)), 0);
  }
  intptr_t prev = INTPTR_MIN;
  for (int i = 0; i < 500; i++) {
    CHECK_RC(aioc_queue_try_get(q, &it), 0);
    CHECK(AIOC_TO_INT(it) >= prev);
    prev = AIOC_TO_INT(it);
  }
  CHECK(aioc_queue_is_empty(q));
  aioc_queue_free(q);

  /* Priority with a compare function: equal priorities come out FIFO. */
  static pitem items[] = {{2, 0}, {1, 1}, {2, 2}, {1, 3}, {0, 4},
                          {2, 5}, {1, 6}, {0, 7}, {3, 8}, {1, 9}};
  static const int want[] = {4, 7, 1, 3, 6, 9, 0, 2, 5, 8};
  o = (aioc_queue_options){.kind = AIOC_QUEUE_PRIORITY, .compare = by_prio};
  CHECK_RC(aioc_queue_new(&q, 10, &o), 0);
  for (int i = 0; i < 10; i++) CHECK_RC(aioc_queue_try_put(q, &items[i]), 0);
  CHECK(aioc_queue_is_full(q));
  CHECK_RC(aioc_queue_try_put(q, &items[0]), AIOC_EFULL);
  for (int i = 0; i < 10; i++) {
    CHECK_RC(aioc_queue_try_get(q, &it), 0);
    CHECK_EQ(((pitem *)it)->id, want[i]);
  }
  aioc_queue_free(q);
}

static void test_queue_bad_input(void) {
  aioc_queue *q;
  void *it = AIOC_INT(7);
  CHECK_RC(aioc_queue_new(&q, -1, NULL), -EINVAL);
  CHECK_RC(aioc_queue_new(NULL, 1, NULL), -EINVAL);
  aioc_queue_options bad = {.kind = (aioc_queue_kind)7};
  CHECK_RC(aioc_queue_new(&q, 1, &bad), -EINVAL);
  CHECK_RC(aioc_queue_new(&q, 2, NULL), 0);
  CHECK_EQ(aioc_queue_capacity(q), 2);
  CHECK_RC(aioc_queue_capacity(NULL), -EINVAL);
  CHECK_RC(aioc_queue_put(NULL, it, 1), -EINVAL);
  CHECK_RC(aioc_queue_put(q, it, -1), -EINVAL);
  CHECK_RC(aioc_queue_put(q, it, NAN), -EINVAL);
  CHECK_RC(aioc_queue_get(q, NULL, 1), -EINVAL);
  CHECK_RC(aioc_queue_get(q, &it, -0.5), -EINVAL);
  CHECK(it == NULL);
  CHECK_RC(aioc_queue_try_put(NULL, it), -EINVAL);
  CHECK_RC(aioc_queue_try_get(NULL, &it), -EINVAL);
  CHECK_RC(aioc_queue_try_get(q, NULL), -EINVAL);
  CHECK_RC(aioc_queue_join(NULL, 1), -EINVAL);
  CHECK_RC(aioc_queue_task_done(NULL), -EINVAL);
  CHECK_RC(aioc_queue_shutdown(NULL, 0), -EINVAL);
  /* Outside a task: fine while nothing must wait. */
  CHECK_RC(aioc_queue_get(q, &it, AIOC_FOREVER), AIOC_ENOTASK);
  CHECK_RC(aioc_queue_put(q, AIOC_INT(1), AIOC_FOREVER), 0);
  CHECK_RC(aioc_queue_put(q, AIOC_INT(2), 0), 0);
  CHECK_RC(aioc_queue_put(q, AIOC_INT(3), AIOC_FOREVER), AIOC_ENOTASK);
  CHECK_RC(aioc_queue_try_put(q, AIOC_INT(3)), AIOC_EFULL);
  CHECK_EQ(aioc_queue_size(q), 2);
  CHECK(aioc_queue_is_full(q));
  CHECK_RC(aioc_queue_join(q, AIOC_FOREVER), AIOC_ENOTASK);
  CHECK_RC(aioc_queue_get(q, &it, 0), 0);
  CHECK_EQ(AIOC_TO_INT(it), 1);
  CHECK_RC(aioc_queue_try_get(q, &it), 0);
  CHECK_EQ(AIOC_TO_INT(it), 2);
  CHECK_RC(aioc_queue_get(q, &it, 0), AIOC_ENOTASK);
  CHECK_RC(aioc_queue_task_done(q), 0);
  CHECK_RC(aioc_queue_task_done(q), 0);
  CHECK_RC(aioc_queue_task_done(q), AIOC_ESTATE);
  CHECK_RC(aioc_queue_join(q, AIOC_FOREVER), 0); /* nothing outstanding */
  CHECK(aioc_queue_is_empty(q));
  CHECK(!aioc_queue_is_shutdown(q));
  CHECK_EQ(aioc_queue_size(NULL), 0);
  aioc_queue_free(q);
  aioc_queue_free(NULL);
}

/* ---- Queue: waiting, timeouts, cancellation ------------------------------ */

typedef struct qw {
  aioc_queue *q;
  int id;
  int n;          /* items to put or get */
  int base;       /* first item put */
  double timeout; /* per call */
  double delay;   /* before each call */
  int rc;
  void *item;
  double at;
  int got[64];
  int ngot;
} qw;

static int q_getter(void *arg, void **res) {
  (void)res;
  qw *w = arg;
  for (int i = 0; i < (w->n ? w->n : 1); i++) {
    if (w->delay > 0) IGNORE_RC(aioc_sleep(w->delay));
    w->rc = aioc_queue_get(w->q, &w->item, w->timeout);
    w->at = aioc_time();
    if (w->rc) break;
    if (w->ngot < 64) w->got[w->ngot++] = (int)AIOC_TO_INT(w->item);
    log_add(w->id);
  }
  return 0;
}

static int q_putter(void *arg, void **res) {
  (void)res;
  qw *w = arg;
  for (int i = 0; i < (w->n ? w->n : 1); i++) {
    if (w->delay > 0) IGNORE_RC(aioc_sleep(w->delay));
    w->rc = aioc_queue_put(w->q, AIOC_INT(w->base + i), w->timeout);
    w->at = aioc_time();
    if (w->rc) break;
    w->ngot++;
  }
  return 0;
}

static int queue_wait_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  log_reset();
  aioc_queue *q;
  CHECK_RC(aioc_queue_new(&q, 2, NULL), 0);
  /* A producer of 6 items against a consumer taking one per second. */
  qw p = {.q = q, .n = 6, .base = 100, .timeout = AIOC_FOREVER};
  qw c = {.q = q, .id = 1, .n = 6, .timeout = AIOC_FOREVER, .delay = 1.0};
  aioc_task *tp = spawn(q_putter, &p);
  aioc_task *tc = spawn(q_getter, &c);
  CHECK_RC(join(tp), 0);
  CHECK_RC(p.rc, 0);
  /* The 6th put found room when the 4th get freed a slot. */
  CHECK_DBL(p.at, 4.0, EPS);
  CHECK_RC(join(tc), 0);
  CHECK_DBL(c.at, 6.0, EPS);
  CHECK_EQ(c.ngot, 6);
  for (int i = 0; i < 6 && i < c.ngot; i++) CHECK_EQ(c.got[i], 100 + i);
  /* Getters wait in order and receive in order; a newcomer does not
   * overtake them. */
  log_reset();
  qw g[3];
  aioc_task *tg[3];
  for (int i = 0; i < 3; i++) {
    g[i] = (qw){.q = q, .id = i + 1, .timeout = AIOC_FOREVER};
    tg[i] = spawn(q_getter, &g[i]);
  }
  settle();
  void *it;
  CHECK_RC(aioc_queue_put(q, AIOC_INT(10), 0), 0);
  CHECK_RC(aioc_queue_try_get(q, &it), AIOC_EEMPTY);
  CHECK_RC(aioc_queue_put(q, AIOC_INT(20), 0), 0);
  CHECK_RC(aioc_queue_put(q, AIOC_INT(30), 0), 0);
  for (int i = 0; i < 3; i++) {
    CHECK_RC(join(tg[i]), 0);
    CHECK_EQ(AIOC_TO_INT(g[i].item), 10 * (i + 1));
  }
  CHECK_LOG(1, 2, 3);
  /* Putters wait in order too. */
  CHECK_RC(aioc_queue_put(q, AIOC_INT(1), 0), 0);
  CHECK_RC(aioc_queue_put(q, AIOC_INT(2), 0), 0);
  qw pp[3];
  aioc_task *tpp[3];
  for (int i = 0; i < 3; i++) {
    pp[i] = (qw){.q = q, .base = 3 + i, .timeout = AIOC_FOREVER};
    tpp[i] = spawn(q_putter, &pp[i]);
  }
  settle();
  for (int i = 1; i <= 5; i++) {
    CHECK_RC(aioc_queue_get(q, &it, AIOC_FOREVER), 0);
    CHECK_EQ(AIOC_TO_INT(it), i);
  }
  for (int i = 0; i < 3; i++) CHECK_RC(join(tpp[i]), 0);
  aioc_queue_free(q);
  return 0;
}

static void test_queue_wait_and_fairness(void) {
  CHECK_RC(run_main(queue_wait_main, NULL), 0);
}

static int queue_timeout_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_queue *q;
  void *it;
  CHECK_RC(aioc_queue_new(&q, 1, NULL), 0);
  /* A timed-out get leaves the queue untouched: the next put is queued,
   * not handed to a phantom getter. */
  qw g = {.q = q, .timeout = 1.0};
  aioc_task *tg = spawn(q_getter, &g);
  CHECK_RC(aioc_sleep(2.0), 0);
  CHECK_RC(g.rc, -ETIMEDOUT);
  CHECK_DBL(g.at, 1.0, EPS);
  CHECK(g.item == NULL);
  CHECK_RC(join(tg), 0);
  CHECK_RC(aioc_queue_put(q, AIOC_INT(5), 0), 0);
  CHECK_EQ(aioc_queue_size(q), 1);
  /* A timed-out put leaves it untouched too: its item never entered. */
  qw p = {.q = q, .base = 6, .timeout = 1.0};
  aioc_task *tp = spawn(q_putter, &p);
  CHECK_RC(aioc_sleep(2.0), 0);
  CHECK_RC(join(tp), 0);
  CHECK_RC(p.rc, -ETIMEDOUT);
  CHECK_DBL(p.at, 3.0, EPS);
  CHECK_EQ(aioc_queue_size(q), 1);
  CHECK_RC(aioc_queue_get(q, &it, 0), 0);
  CHECK_EQ(AIOC_TO_INT(it), 5);
  CHECK_RC(aioc_queue_get(q, &it, 0), -ETIMEDOUT);
  CHECK_RC(aioc_queue_task_done(q), 0);
  CHECK_RC(aioc_queue_task_done(q), AIOC_ESTATE); /* 6 was never counted */
  /* A deadline scope bounds a get the same way. */
  aioc_scope *s;
  CHECK_RC(aioc_timeout_enter(&s, 0.5), 0);
  CHECK_RC(aioc_queue_get(q, &it, AIOC_FOREVER), -ETIMEDOUT);
  CHECK_RC(aioc_scope_exit(s), -ETIMEDOUT);
  aioc_scope_free(s);
  CHECK_DBL(aioc_time(), 4.5, EPS);
  CHECK_EQ(aioc_queue_size(q), 0);
  aioc_queue_free(q);
  return 0;
}

static void test_queue_timeout_untouched(void) {
  CHECK_RC(run_main(queue_timeout_main, NULL), 0);
}

static int queue_cancel_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  log_reset();
  aioc_queue *q;
  void *it;
  CHECK_RC(aioc_queue_new(&q, 1, NULL), 0);

  /* put, then cancel the getter, in the same iteration: the item was
   * handed over, so the getter returns it (and sees the cancellation at
   * its next wait). */
  qw a = {.q = q, .id = 1, .n = 2, .timeout = AIOC_FOREVER};
  aioc_task *ta = spawn(q_getter, &a);
  settle();
  CHECK_RC(aioc_queue_put(q, AIOC_INT(41), 0), 0);
  aioc_task_cancel(ta, NULL);
  CHECK_RC(join(ta), 0);
  CHECK_EQ(a.ngot, 1);
  CHECK_EQ(a.got[0], 41);
  CHECK_RC(a.rc, -ECANCELED); /* the second get */
  CHECK_EQ(aioc_queue_size(q), 0);

  /* cancel, then put: the getter got nothing, the item is queued. */
  qw b = {.q = q, .id = 2, .timeout = AIOC_FOREVER};
  aioc_task *tb = spawn(q_getter, &b);
  settle();
  aioc_task_cancel(tb, NULL);
  CHECK_RC(aioc_queue_put(q, AIOC_INT(42), 0), 0);
  CHECK_RC(join(tb), 0);
  CHECK_RC(b.rc, -ECANCELED);
  CHECK_EQ(b.ngot, 0);
  CHECK_EQ(aioc_queue_size(q), 1);

  /* Putter side. The queue is full (42); P waits with 43. get, then cancel
   * P: 43 went in. */
  qw p = {.q = q, .base = 43, .timeout = AIOC_FOREVER};
  aioc_task *tp = spawn(q_putter, &p);
  settle();
  CHECK_RC(aioc_queue_get(q, &it, 0), 0);
  CHECK_EQ(AIOC_TO_INT(it), 42);
  aioc_task_cancel(tp, NULL);
  CHECK_RC(join(tp), 0);
  CHECK_RC(p.rc, 0);
  CHECK_EQ(aioc_queue_size(q), 1);
  /* cancel P2 (with 44), then get: 44 never went in. */
  qw p2 = {.q = q, .base = 44, .timeout = AIOC_FOREVER};
  aioc_task *tp2 = spawn(q_putter, &p2);
  settle();
  aioc_task_cancel(tp2, NULL);
  CHECK_RC(aioc_queue_get(q, &it, 0), 0);
  CHECK_EQ(AIOC_TO_INT(it), 43);
  CHECK_RC(join(tp2), 0);
  CHECK_RC(p2.rc, -ECANCELED);
  CHECK_EQ(aioc_queue_size(q), 0);

  /* A deadline and a put due at the same instant: whichever runs first,
   * the item is either the getter's or still queued, never lost. */
  for (int order = 0; order < 2; order++) {
    qw c = {.q = q, .id = 3, .timeout = order ? 1.0 : AIOC_FOREVER};
    aioc_task *tc = NULL;
    if (order) tc = spawn(q_getter, &c);
    qw d = {.q = q, .base = 50 + order, .delay = 1.0,
            .timeout = AIOC_FOREVER};
    aioc_task *td = spawn(q_putter, &d);
    if (!order) {
      c.timeout = 1.0;
      tc = spawn(q_getter, &c);
    }
    CHECK_RC(join(tc), 0);
    CHECK_RC(join(td), 0);
    CHECK_RC(d.rc, 0);
    if (c.rc == 0) {
      CHECK_EQ(c.got[0], 50 + order);
      CHECK_EQ(aioc_queue_size(q), 0);
    } else {
      CHECK_RC(c.rc, -ETIMEDOUT);
      CHECK_EQ(aioc_queue_size(q), 1);
      CHECK_RC(aioc_queue_get(q, &it, 0), 0);
      CHECK_EQ(AIOC_TO_INT(it), 50 + order);
    }
  }
  aioc_queue_free(q);
  return 0;
}

static void test_queue_cancel_safety(void) {
  CHECK_RC(run_main(queue_cancel_main, NULL), 0);
}

/* ---- Queue: task_done / join --------------------------------------------- */

typedef struct jw {
  aioc_queue *q;
  double timeout;
  int rc;
  double at;
} jw;

static int q_joiner(void *arg, void **res) {
  (void)res;
  jw *j = arg;
  j->rc = aioc_queue_join(j->q, j->timeout);
  j->at = aioc_time();
  return 0;
}

static int q_worker(void *arg, void **res) {
  (void)res;
  aioc_queue *q = arg;
  void *it;
  int rc;
  while ((rc = aioc_queue_get(q, &it, AIOC_FOREVER)) == 0) {
    IGNORE_RC(aioc_sleep((double)AIOC_TO_INT(it)));
    CHECK_RC(aioc_queue_task_done(q), 0);
  }
  return rc == -ESHUTDOWN ? 0 : rc;
}

static int queue_join_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_queue *q;
  CHECK_RC(aioc_queue_new(&q, 0, NULL), 0);
  for (int i = 1; i <= 3; i++) CHECK_RC(aioc_queue_put(q, AIOC_INT(i), 0), 0);
  jw j1 = {.q = q, .timeout = AIOC_FOREVER};
  jw j2 = {.q = q, .timeout = 2.0};
  aioc_task *t1 = spawn(q_joiner, &j1);
  aioc_task *t2 = spawn(q_joiner, &j2);
  aioc_task *w = spawn(q_worker, q);
  CHECK_RC(join(t1), 0);
  CHECK_RC(join(t2), 0);
  CHECK_RC(j1.rc, 0);
  CHECK_DBL(j1.at, 6.0, EPS); /* 1 + 2 + 3 seconds of work */
  CHECK_RC(j2.rc, -ETIMEDOUT);
  CHECK_DBL(j2.at, 2.0, EPS);
  CHECK_RC(aioc_queue_join(q, 0), 0);
  CHECK_RC(aioc_queue_shutdown(q, 0), 0);
  CHECK_RC(join(w), 0);
  /* A cancelled joiner. */
  aioc_queue_free(q);
  CHECK_RC(aioc_queue_new(&q, 0, NULL), 0);
  CHECK_RC(aioc_queue_put(q, AIOC_INT(1), 0), 0);
  jw j3 = {.q = q, .timeout = AIOC_FOREVER};
  aioc_task *t3 = spawn(q_joiner, &j3);
  settle();
  aioc_task_cancel(t3, NULL);
  CHECK_RC(join(t3), 0);
  CHECK_RC(j3.rc, -ECANCELED);
  aioc_queue_free(q);
  return 0;
}

static void test_queue_task_done_join(void) {
  CHECK_RC(run_main(queue_join_main, NULL), 0);
}

/* ---- Queue: shutdown ----------------------------------------------------- */

static int g_freed;
static void count_free(void *p) {
  g_freed++;
  free(p);
}

static int queue_shutdown_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_queue *q;
  void *it;
  CHECK_RC(aioc_queue_new(&q, 2, NULL), 0);
  /* Getters waiting on an empty queue are woken with ESHUTDOWN. */
  qw g = {.q = q, .timeout = AIOC_FOREVER};
  aioc_task *tg = spawn(q_getter, &g);
  settle();
  CHECK_RC(aioc_queue_shutdown(q, 0), 0);
  CHECK(aioc_queue_is_shutdown(q));
  CHECK_RC(join(tg), 0);
  CHECK_RC(g.rc, -ESHUTDOWN);
  aioc_queue_free(q);

  /* Putters waiting on a full queue are woken with ESHUTDOWN; what is
   * queued can still be taken, then gets fail. */
  CHECK_RC(aioc_queue_new(&q, 2, NULL), 0);
  CHECK_RC(aioc_queue_put(q, AIOC_INT(1), 0), 0);
  CHECK_RC(aioc_queue_put(q, AIOC_INT(2), 0), 0);
  qw p = {.q = q, .base = 3, .timeout = AIOC_FOREVER};
  aioc_task *tp = spawn(q_putter, &p);
  jw j = {.q = q, .timeout = AIOC_FOREVER};
  aioc_task *tj = spawn(q_joiner, &j);
  settle();
  CHECK_RC(aioc_queue_shutdown(q, 0), 0);
  CHECK_RC(join(tp), 0);
  CHECK_RC(p.rc, -ESHUTDOWN);
  CHECK_RC(aioc_queue_put(q, AIOC_INT(9), AIOC_FOREVER), -ESHUTDOWN);
  CHECK_RC(aioc_queue_try_put(q, AIOC_INT(9)), -ESHUTDOWN);
  CHECK_EQ(aioc_queue_size(q), 2);
  CHECK_RC(aioc_queue_get(q, &it, AIOC_FOREVER), 0);
  CHECK_EQ(AIOC_TO_INT(it), 1);
  CHECK_RC(aioc_queue_try_get(q, &it), 0);
  CHECK_EQ(AIOC_TO_INT(it), 2);
  CHECK_RC(aioc_queue_get(q, &it, AIOC_FOREVER), -ESHUTDOWN);
  CHECK_RC(aioc_queue_try_get(q, &it), -ESHUTDOWN);
  /* A normal shutdown does not release join: the items taken are not
   * done yet. */
  settle();
  CHECK(!aioc_future_is_done(aioc_task_future(tj)));
  CHECK_RC(aioc_queue_task_done(q), 0);
  CHECK_RC(aioc_queue_task_done(q), 0);
  CHECK_RC(join(tj), 0);
  CHECK_RC(j.rc, 0);
  aioc_queue_free(q);

  /* Immediate: the items left are dropped and count as done, join and
   * getters are released. */
  aioc_queue_options o = {.item_free = count_free};
  CHECK_RC(aioc_queue_new(&q, 0, &o), 0);
  g_freed = 0;
  for (int i = 0; i < 5; i++) {
    int *v = malloc(sizeof *v);
    *v = i;
    CHECK_RC(aioc_queue_put(q, v, 0), 0);
  }
  CHECK_RC(aioc_queue_get(q, &it, 0), 0);
  CHECK_EQ(*(int *)it, 0);
  free(it);
  CHECK_RC(aioc_queue_task_done(q), 0);
  jw j2 = {.q = q, .timeout = AIOC_FOREVER};
  aioc_task *tj2 = spawn(q_joiner, &j2);
  settle();
  CHECK_RC(aioc_queue_shutdown(q, 0), 0);
  settle();
  CHECK(!aioc_future_is_done(aioc_task_future(tj2)));
  CHECK_EQ(aioc_queue_size(q), 4);
  CHECK_RC(aioc_queue_shutdown(q, 1), 0); /* made immediate */
  CHECK_EQ(g_freed, 4);
  CHECK_EQ(aioc_queue_size(q), 0);
  CHECK_RC(join(tj2), 0);
  CHECK_RC(j2.rc, 0);
  CHECK_RC(aioc_queue_get(q, &it, AIOC_FOREVER), -ESHUTDOWN);
  CHECK_RC(aioc_queue_put(q, NULL, AIOC_FOREVER), -ESHUTDOWN);
  aioc_queue_free(q);
  CHECK_EQ(g_freed, 4);

  /* Immediate with an item taken but not done: join stays blocked until
   * that one is done. */
  CHECK_RC(aioc_queue_new(&q, 0, NULL), 0);
  CHECK_RC(aioc_queue_put(q, AIOC_INT(1), 0), 0);
  CHECK_RC(aioc_queue_put(q, AIOC_INT(2), 0), 0);
  CHECK_RC(aioc_queue_get(q, &it, 0), 0);
  jw j3 = {.q = q, .timeout = AIOC_FOREVER};
  aioc_task *tj3 = spawn(q_joiner, &j3);
  qw g2 = {.q = q, .timeout = AIOC_FOREVER};
  settle();
  CHECK_RC(aioc_queue_shutdown(q, 1), 0);
  settle();
  CHECK(!aioc_future_is_done(aioc_task_future(tj3)));
  CHECK_RC(aioc_queue_task_done(q), 0);
  CHECK_RC(join(tj3), 0);
  CHECK_RC(j3.rc, 0);
  aioc_task *tg2 = spawn(q_getter, &g2);
  CHECK_RC(join(tg2), 0);
  CHECK_RC(g2.rc, -ESHUTDOWN);
  aioc_queue_free(q);
  return 0;
}

static void test_queue_shutdown(void) {
  CHECK_RC(run_main(queue_shutdown_main, NULL), 0);
}

static int queue_free_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_queue *q1, *q2;
  aioc_queue_options o = {.item_free = count_free};
  CHECK_RC(aioc_queue_new(&q1, 1, NULL), 0);
  CHECK_RC(aioc_queue_new(&q2, 1, &o), 0);
  qw g = {.q = q1, .timeout = AIOC_FOREVER};
  aioc_task *tg = spawn(q_getter, &g);
  int *v = malloc(sizeof *v);
  CHECK_RC(aioc_queue_put(q2, v, 0), 0);
  qw p = {.q = q2, .base = 7, .timeout = 10.0};
  aioc_task *tp = spawn(q_putter, &p);
  jw j = {.q = q2, .timeout = AIOC_FOREVER};
  aioc_task *tj = spawn(q_joiner, &j);
  settle();
  g_freed = 0;
  aioc_queue_free(q1);
  aioc_queue_free(q2);
  CHECK_EQ(g_freed, 1); /* the queued item; the putter keeps its own */
  CHECK_RC(join(tg), 0);
  CHECK_RC(join(tp), 0);
  CHECK_RC(join(tj), 0);
  CHECK_RC(g.rc, -ECANCELED);
  CHECK_RC(p.rc, -ECANCELED);
  CHECK_RC(j.rc, -ECANCELED);
  CHECK_DBL(aioc_time(), 0.0, EPS);
  return 0;
}

static void test_queue_free_with_waiters(void) {
  CHECK_RC(run_main(queue_free_main, NULL), 0);
}

/* ---- Queue: producer/consumer stress ------------------------------------- */

enum { NPROD = 40, NCONS = 25, PER = 400 };

typedef struct stress {
  aioc_queue *q;
  unsigned seed;
  long long sum;
  long count;
  int cancelled_seen;
} stress;

static unsigned rnd(unsigned *s) {
  *s ^= *s << 13;
  *s ^= *s >> 17;
  *s ^= *s << 5;
  return *s;
}

typedef struct sarg {
  stress *st;
  int id;
  unsigned seed;
} sarg;

static const double pick_timeout[] = {0, 0.0005, 0.002, AIOC_FOREVER};

static int stress_producer(void *arg, void **res) {
  (void)res;
  sarg *a = arg;
  for (int i = 0; i < PER; i++) {
    long v = (long)a->id * PER + i + 1;
    for (;;) {
      double to = pick_timeout[rnd(&a->seed) % 4];
      int rc = aioc_queue_put(a->st->q, AIOC_INT(v), to);
      if (rc == 0) break;
      if (rc != -ETIMEDOUT) return rc; /* the same item is retried */
    }
    unsigned r = rnd(&a->seed) % 8;
    if (r == 0)
      IGNORE_RC(aioc_sleep(0));
    else if (r == 1)
      IGNORE_RC(aioc_sleep(0.001 * (rnd(&a->seed) % 3)));
  }
  return 0;
}

static int stress_consumer(void *arg, void **res) {
  (void)res;
  sarg *a = arg;
  stress *st = a->st;
  for (;;) {
    void *it;
    double to = pick_timeout[rnd(&a->seed) % 4];
    int rc = aioc_queue_get(st->q, &it, to);
    if (rc == 0) {
      st->sum += AIOC_TO_INT(it);
      st->count++;
      CHECK_RC(aioc_queue_task_done(st->q), 0);
      if (rnd(&a->seed) % 4 == 0)
        IGNORE_RC(aioc_sleep(0.0005 * (rnd(&a->seed) % 4)));
      continue;
    }
    if (rc == -ETIMEDOUT) continue;
    if (rc == -ECANCELED) {
      st->cancelled_seen++;
      return 0;
    }
    CHECK_RC(rc, -ESHUTDOWN);
    return 0;
  }
}

static int stress_main(void *arg, void **res) {
  (void)res;
  int kind = (int)AIOC_TO_INT(arg);
  stress st = {.seed = 99};
  aioc_queue_options o = {.kind = (aioc_queue_kind)kind};
  CHECK_RC(aioc_queue_new(&st.q, 8, &o), 0);
  static sarg pa[NPROD], ca[NCONS];
  aioc_task *pt[NPROD], *ct[NCONS];
  for (int i = 0; i < NCONS; i++) {
    ca[i] = (sarg){&st, i, 1000u + (unsigned)i * 7919u};
    ct[i] = spawn(stress_consumer, &ca[i]);
  }
  for (int i = 0; i < NPROD; i++) {
    pa[i] = (sarg){&st, i, 5000u + (unsigned)i * 104729u};
    pt[i] = spawn(stress_producer, &pa[i]);
  }
  /* Cancel a fifth of the consumers at staggered moments: whatever they
   * were handed is counted, nothing is lost. */
  for (int i = 0; i < NCONS; i += 5) {
    IGNORE_RC(aioc_sleep(0.003));
    aioc_task_cancel(ct[i], NULL);
  }
  for (int i = 0; i < NPROD; i++) CHECK_RC(join(pt[i]), 0);
  CHECK_RC(aioc_queue_join(st.q, AIOC_FOREVER), 0);
  CHECK_RC(aioc_queue_shutdown(st.q, 0), 0);
  for (int i = 0; i < NCONS; i++) CHECK_RC(join(ct[i]), 0);
  long n = (long)NPROD * PER;
  CHECK_EQ(st.count, n);
  CHECK_EQ(st.sum, (long long)n * (n + 1) / 2);
  CHECK_EQ(st.cancelled_seen, (NCONS + 4) / 5);
  CHECK_EQ(aioc_queue_size(st.q), 0);
  aioc_queue_free(st.q);
  return 0;
}

static void test_queue_stress(void) {
  CHECK_RC(run_main(stress_main, AIOC_INT(AIOC_QUEUE_FIFO)), 0);
  CHECK_RC(run_main(stress_main, AIOC_INT(AIOC_QUEUE_LIFO)), 0);
  CHECK_RC(run_main(stress_main, AIOC_INT(AIOC_QUEUE_PRIORITY)), 0);
}

/* ---- thread-safe queue --------------------------------------------------- */

static double mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_tsqueue_plain(void) {
  aioc_tsqueue *q;
  void *it = AIOC_INT(1);
  CHECK_RC(aioc_tsqueue_new(&q, -1, NULL), -EINVAL);
  CHECK_RC(aioc_tsqueue_new(NULL, 1, NULL), -EINVAL);
  CHECK_RC(aioc_tsqueue_new(&q, 2, count_free), 0);
  CHECK_RC(aioc_tsqueue_put(NULL, it, 1), -EINVAL);
  CHECK_RC(aioc_tsqueue_put(q, it, -1), -EINVAL);
  CHECK_RC(aioc_tsqueue_get(q, NULL, 1), -EINVAL);
  CHECK_RC(aioc_tsqueue_get(q, &it, NAN), -EINVAL);
  CHECK_RC(aioc_tsqueue_try_put(NULL, it), -EINVAL);
  CHECK_RC(aioc_tsqueue_try_get(q, NULL), -EINVAL);
  CHECK_RC(aioc_tsqueue_shutdown(NULL, 0), -EINVAL);
  CHECK_RC(aioc_tsqueue_try_get(q, &it), AIOC_EEMPTY);
  CHECK_RC(aioc_tsqueue_get(q, &it, 0), -ETIMEDOUT);
  double t0 = mono();
  CHECK_RC(aioc_tsqueue_get(q, &it, 0.02), -ETIMEDOUT);
  CHECK(mono() - t0 >= 0.019);
  for (int i = 0; i < 2; i++) {
    int *v = malloc(sizeof *v);
    *v = i;
    CHECK_RC(aioc_tsqueue_put(q, v, 0), 0);
  }
  CHECK_RC(aioc_tsqueue_try_put(q, NULL), AIOC_EFULL);
  t0 = mono();
  CHECK_RC(aioc_tsqueue_put(q, NULL, 0.02), -ETIMEDOUT);
  CHECK(mono() - t0 >= 0.019);
  CHECK_EQ(aioc_tsqueue_size(q), 2);
  CHECK_RC(aioc_tsqueue_get(q, &it, AIOC_FOREVER), 0);
  CHECK_EQ(*(int *)it, 0);
  free(it);
  CHECK_RC(aioc_tsqueue_shutdown(q, 0), 0);
  CHECK_RC(aioc_tsqueue_put(q, NULL, 1), -ESHUTDOWN);
  CHECK_RC(aioc_tsqueue_try_put(q, NULL), -ESHUTDOWN);
  CHECK_EQ(aioc_tsqueue_size(q), 1);
  g_freed = 0;
  aioc_tsqueue_free(q); /* the one left goes to item_free */
  CHECK_EQ(g_freed, 1);
  /* Immediate shutdown drops. */
  CHECK_RC(aioc_tsqueue_new(&q, 0, count_free), 0);
  for (int i = 0; i < 3; i++)
    CHECK_RC(aioc_tsqueue_put(q, malloc(4), 0), 0);
  g_freed = 0;
  CHECK_RC(aioc_tsqueue_shutdown(q, 1), 0);
  CHECK_EQ(g_freed, 3);
  CHECK_RC(aioc_tsqueue_get(q, &it, AIOC_FOREVER), -ESHUTDOWN);
  CHECK_RC(aioc_tsqueue_try_get(q, &it), -ESHUTDOWN);
  aioc_tsqueue_free(q);
  aioc_tsqueue_free(NULL);
  CHECK_EQ(aioc_tsqueue_size(NULL), 0);
}

/* In a callback of a running loop the queue must not block. */
static void ts_callback(void *arg) {
  aioc_tsqueue *q = arg;
  void *it;
  CHECK_RC(aioc_tsqueue_get(q, &it, 1.0), AIOC_ERUNNING);
  CHECK_RC(aioc_tsqueue_put(q, AIOC_INT(1), 1.0), 0); /* room: no wait */
  CHECK_RC(aioc_tsqueue_put(q, AIOC_INT(2), 1.0), AIOC_ERUNNING);
  CHECK_RC(aioc_tsqueue_get(q, &it, 1.0), 0);
  CHECK_EQ(AIOC_TO_INT(it), 1);
}

typedef struct tw {
  aioc_tsqueue *q;
  double timeout;
  int rc;
  void *item;
} tw;

static int ts_getter(void *arg, void **res) {
  (void)res;
  tw *w = arg;
  w->rc = aioc_tsqueue_get(w->q, &w->item, w->timeout);
  return 0;
}

static int ts_task_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_tsqueue *q;
  void *it;
  CHECK_RC(aioc_tsqueue_new(&q, 1, NULL), 0);
  CHECK_RC(aioc_call_soon(NULL, aioc_get_running_loop(), ts_callback, q), 0);
  CHECK_RC(aioc_sleep(0), 0);
  CHECK_RC(aioc_sleep(0), 0);
  /* Timeout (real clock: a lower bound only). */
  double t0 = mono();
  CHECK_RC(aioc_tsqueue_get(q, &it, 0.02), -ETIMEDOUT);
  CHECK(mono() - t0 >= 0.019);
  /* A waiting task cancelled, then an item put: it stays queued. */
  tw a = {.q = q, .timeout = AIOC_FOREVER};
  aioc_task *ta = spawn(ts_getter, &a);
  settle();
  aioc_task_cancel(ta, NULL);
  CHECK_RC(aioc_tsqueue_put(q, AIOC_INT(5), 0), 0);
  CHECK_RC(join(ta), 0);
  CHECK_RC(a.rc, -ECANCELED);
  CHECK_EQ(aioc_tsqueue_size(q), 1);
  CHECK_RC(aioc_tsqueue_get(q, &it, 0), 0);
  /* An item put, then the task cancelled: the task has it. */
  tw b = {.q = q, .timeout = AIOC_FOREVER};
  aioc_task *tb = spawn(ts_getter, &b);
  settle();
  CHECK_RC(aioc_tsqueue_put(q, AIOC_INT(6), 0), 0);
  aioc_task_cancel(tb, NULL);
  CHECK_RC(join(tb), 0);
  CHECK_RC(b.rc, 0);
  CHECK_EQ(AIOC_TO_INT(b.item), 6);
  CHECK_EQ(aioc_tsqueue_size(q), 0);
  /* A deadline in scope. */
  aioc_scope *s;
  CHECK_RC(aioc_timeout_enter(&s, 0.01), 0);
  CHECK_RC(aioc_tsqueue_get(q, &it, AIOC_FOREVER), -ETIMEDOUT);
  CHECK_RC(aioc_scope_exit(s), -ETIMEDOUT);
  aioc_scope_free(s);
  /* Freed under a waiting task of this loop. */
  tw c = {.q = q, .timeout = AIOC_FOREVER};
  aioc_task *tc = spawn(ts_getter, &c);
  settle();
  aioc_tsqueue_free(q);
  CHECK_RC(join(tc), 0);
  CHECK_RC(c.rc, -ECANCELED);
  return 0;
}

static void test_tsqueue_task(void) {
  CHECK_RC(run_main_ex(ts_task_main, NULL, 0), 0);
}

/* Thread <-> task in both directions through small queues. */
enum { TS_N = 20000 };

typedef struct bridge {
  aioc_tsqueue *to_task, *to_thread;
  int rc;
  long n;
  long long sum;
  int in_order;
} bridge;

static void *thread_producer(void *arg) {
  bridge *b = arg;
  for (long i = 1; i <= TS_N; i++) {
    int rc = aioc_tsqueue_put(b->to_task, AIOC_INT(i), 10.0);
    if (rc) {
      b->rc = rc;
      break;
    }
  }
  aioc_tsqueue_shutdown(b->to_task, 0);
  return NULL;
}

static void *thread_consumer(void *arg) {
  bridge *b = arg;
  void *it;
  int rc;
  b->in_order = 1;
  while ((rc = aioc_tsqueue_get(b->to_thread, &it, 10.0)) == 0) {
    b->n++;
    if (AIOC_TO_INT(it) != b->n) b->in_order = 0;
    b->sum += AIOC_TO_INT(it);
  }
  b->rc = rc == -ESHUTDOWN ? 0 : rc;
  return NULL;
}

static int bridge_main(void *arg, void **res) {
  (void)res;
  bridge *b = arg;
  /* thread -> task */
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, thread_producer, b), 0);
  void *it;
  int rc;
  long n = 0;
  int in_order = 1;
  while ((rc = aioc_tsqueue_get(b->to_task, &it, 10.0)) == 0) {
    n++;
    if (AIOC_TO_INT(it) != n) in_order = 0;
  }
  CHECK_RC(rc, -ESHUTDOWN);
  pthread_join(th, NULL);
  CHECK_RC(b->rc, 0);
  CHECK_EQ(n, TS_N);
  CHECK(in_order);
  /* task -> thread */
  CHECK_EQ(pthread_create(&th, NULL, thread_consumer, b), 0);
  for (long i = 1; i <= TS_N; i++)
    CHECK_RC(aioc_tsqueue_put(b->to_thread, AIOC_INT(i), 10.0), 0);
  CHECK_RC(aioc_tsqueue_shutdown(b->to_thread, 0), 0);
  /* Let the thread finish without blocking the loop: wait in a task. */
  while (aioc_tsqueue_size(b->to_thread) > 0)
    IGNORE_RC(aioc_sleep(0.001));
  pthread_join(th, NULL);
  CHECK_RC(b->rc, 0);
  CHECK_EQ(b->n, TS_N);
  CHECK(b->in_order);
  CHECK_EQ(b->sum, (long long)TS_N * (TS_N + 1) / 2);
  return 0;
}

static void test_tsqueue_bridge(void) {
  bridge b;
  memset(&b, 0, sizeof b);
  CHECK_RC(aioc_tsqueue_new(&b.to_task, 4, NULL), 0);
  CHECK_RC(aioc_tsqueue_new(&b.to_thread, 4, NULL), 0);
  CHECK_RC(run_main_ex(bridge_main, &b, 0), 0);
  aioc_tsqueue_free(b.to_task);
  aioc_tsqueue_free(b.to_thread);
}

/* A task getting with tiny timeouts while a thread puts: timeouts race
 * with cross-thread hand-offs, and every item must arrive once, in
 * order. The thread also echoes items back (a round trip through two
 * queues). */
typedef struct race {
  aioc_tsqueue *q, *back;
  int rc;
} race;

static void *race_thread(void *arg) {
  race *r = arg;
  for (long i = 1; i <= TS_N; i++) {
    int rc = aioc_tsqueue_put(r->q, AIOC_INT(i), 10.0);
    if (rc) {
      r->rc = rc;
      break;
    }
    if (i % 100 == 0) {
      void *it;
      rc = aioc_tsqueue_get(r->back, &it, 10.0);
      if (rc || AIOC_TO_INT(it) != i) {
        r->rc = rc ? rc : -EPROTO;
        break;
      }
    }
  }
  aioc_tsqueue_shutdown(r->q, 0);
  return NULL;
}

static int race_main(void *arg, void **res) {
  (void)res;
  race *r = arg;
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, race_thread, r), 0);
  long next = 1, timeouts = 0;
  int rc;
  for (;;) {
    void *it;
    rc = aioc_tsqueue_get(r->q, &it, (timeouts % 3) ? 0.00001 : 0);
    if (rc == -ETIMEDOUT) {
      timeouts++;
      continue;
    }
    if (rc) break;
    CHECK_EQ(AIOC_TO_INT(it), next);
    if (next % 100 == 0)
      CHECK_RC(aioc_tsqueue_put(r->back, it, AIOC_FOREVER), 0);
    next++;
  }
  CHECK_RC(rc, -ESHUTDOWN);
  pthread_join(th, NULL);
  CHECK_RC(r->rc, 0);
  CHECK_EQ(next - 1, TS_N);
  CHECK(timeouts > 0);
  return 0;
}

static void test_tsqueue_timeout_race(void) {
  race r = {0};
  CHECK_RC(aioc_tsqueue_new(&r.q, 2, NULL), 0);
  CHECK_RC(aioc_tsqueue_new(&r.back, 1, NULL), 0);
  CHECK_RC(run_main_ex(race_main, &r, 0), 0);
  aioc_tsqueue_free(r.q);
  aioc_tsqueue_free(r.back);
}

/* Blocked threads are released by a shutdown, and a thread blocked in get
 * gets an item put by a task. */
typedef struct blk {
  aioc_tsqueue *q;
  atomic_int started;
  int rc;
  void *item;
} blk;

static void *blocked_getter(void *arg) {
  blk *b = arg;
  atomic_store(&b->started, 1);
  b->rc = aioc_tsqueue_get(b->q, &b->item, 30.0);
  return NULL;
}

static int blocked_main(void *arg, void **res) {
  (void)res;
  (void)arg;
  aioc_tsqueue *q;
  CHECK_RC(aioc_tsqueue_new(&q, 1, NULL), 0);
  blk a = {.q = q};
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, blocked_getter, &a), 0);
  while (!atomic_load(&a.started))
    IGNORE_RC(aioc_sleep(0.001));
  IGNORE_RC(aioc_sleep(0.02));
  CHECK_RC(aioc_tsqueue_put(q, AIOC_INT(77), AIOC_FOREVER), 0);
  pthread_join(th, NULL);
  CHECK_RC(a.rc, 0);
  CHECK_EQ(AIOC_TO_INT(a.item), 77);
  blk b = {.q = q};
  CHECK_EQ(pthread_create(&th, NULL, blocked_getter, &b), 0);
  while (!atomic_load(&b.started))
    IGNORE_RC(aioc_sleep(0.001));
  IGNORE_RC(aioc_sleep(0.02));
  CHECK_RC(aioc_tsqueue_shutdown(q, 0), 0);
  pthread_join(th, NULL);
  CHECK_RC(b.rc, -ESHUTDOWN);
  aioc_tsqueue_free(q);
  return 0;
}

/* A loop closes while a wake-up for one of its tasks is on its way: the
 * task is abandoned, the wake-up dropped, and the queue's memory still
 * goes when it is freed (LeakSanitizer checks that in the ASan build). */
static int tsq_getter(void *arg, void **res) {
  return aioc_tsqueue_get(arg, res, AIOC_FOREVER);
}

static void stop_loop(void *loop) { aioc_loop_stop(loop); }

static void count_reports(void *n, aioc_loop *loop, const aioc_report *r) {
  (void)loop;
  (void)r;
  (*(int *)n)++;
}

static void test_tsqueue_loop_closed(void) {
  aioc_tsqueue *q;
  CHECK_RC(aioc_tsqueue_new(&q, 1, NULL), 0);
  aioc_loop *loop = test_loop(1);
  int reports = 0;
  aioc_loop_set_report_handler(loop, count_reports, &reports);
  aioc_task *t;
  CHECK_RC(aioc_spawn_ex(&t, loop, tsq_getter, q, NULL), 0);
  CHECK_RC(aioc_call_soon(NULL, loop, stop_loop, loop), 0);
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  /* The task waits in get(); the loop is not running, so the put sends it
   * a wake-up through the loop's thread-safe queue. */
  CHECK_RC(aioc_tsqueue_put(q, AIOC_INT(5), 0), 0);
  CHECK_RC(aioc_loop_close(loop), 0);
  aioc_loop_free(loop);
  CHECK_EQ(reports, 1); /* the abandoned task */
  CHECK_EQ(aioc_future_state(aioc_task_future(t)), AIOC_FUTURE_CANCELLED);
  aioc_task_unref(t);
  aioc_tsqueue_free(q);
}

static void test_tsqueue_blocked_threads(void) {
  CHECK_RC(run_main_ex(blocked_main, NULL, 0), 0);
}

/* The queue through the iterator interface, with a timeout between items:
 * a timed-out next leaves the queue untouched; shutdown ends the
 * iteration. */
static int iter_producer(void *arg, void **result) {
  (void)result;
  aioc_queue *q = arg;
  static const double pauses[] = {0.1, 0.1, 1.5, 0.1};
  for (int i = 0; i < 4; i++) {
    int rc = aioc_sleep(pauses[i]);
    if (rc == 0) rc = aioc_queue_put(q, AIOC_INT(i), AIOC_FOREVER);
    if (rc < 0) return rc;
  }
  aioc_queue_shutdown(q, 0);
  return 0;
}

static int queue_iter_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_queue *q;
  CHECK_RC(aioc_queue_new(&q, 0, NULL), 0);
  aioc_iter *src, *it;
  CHECK_RC(aioc_queue_iter(&src, q), 0);
  aioc_timed_options o = {.between = 1.0};
  CHECK_RC(aioc_iter_timed(&it, src, &o), 0);
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, iter_producer, q), 0);
  void *x;
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), 0);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), 0);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), -ETIMEDOUT);
  CHECK_EQ(aioc_queue_size(q), 0);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), 0); /* the late item */
  CHECK_EQ(AIOC_TO_INT(x), 2);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), 0);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), AIOC_EXHAUSTED);
  CHECK_RC(aioc_task_await(t, NULL), 0);
  aioc_task_unref(t);
  aioc_iter_free(it); /* frees q: the iterator owns it */
  return 0;
}

static void test_queue_iter(void) {
  aioc_run_options o = {.loop.virtual_clock = 1};
  CHECK_RC(aioc_run_ex(queue_iter_main, NULL, NULL, &o), 0);
}

/* The iterator owns its queue: closing it shuts the queue down at once,
 * so a producer still waiting for room learns that nobody will read. */
static int blocked_producer(void *arg, void **result) {
  (void)result;
  aioc_queue *q = arg;
  int rc = 0;
  for (int i = 0; i < 3 && rc == 0; i++)
    rc = aioc_queue_put(q, AIOC_INT(i), AIOC_FOREVER);
  return rc;
}

static int queue_iter_close_main(void *arg, void **result) {
  (void)arg, (void)result;
  aioc_queue *q;
  CHECK_RC(aioc_queue_new(&q, 1, NULL), 0);
  aioc_iter *it;
  CHECK_RC(aioc_queue_iter(&it, q), 0);
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, blocked_producer, q), 0);
  void *x;
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), 0);
  CHECK_EQ(AIOC_TO_INT(x), 0);
  CHECK_RC(aioc_sleep(1.0), 0); /* the producer waits for room */
  CHECK(!aioc_future_is_done(aioc_task_future(t)));
  CHECK_RC(aioc_iter_close(it), 0);
  CHECK(aioc_queue_is_shutdown(q));
  CHECK_RC(aioc_task_await(t, NULL), -ESHUTDOWN);
  aioc_task_unref(t);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), AIOC_EXHAUSTED);
  aioc_iter_free(it); /* frees q */
  return 0;
}

static void test_queue_iter_owns_queue(void) {
  aioc_run_options o = {.loop.virtual_clock = 1};
  CHECK_RC(aioc_run_ex(queue_iter_close_main, NULL, NULL, &o), 0);
}

/* ---- a cross-thread wake-up that cannot be allocated ---- */

/* libc's realloc, failing every allocation of the calling thread while
 * its fail_all is set. Installed while no task record is alive. */
static __thread int fail_all;
static void *thread_failing_realloc(void *ud, void *p, size_t n) {
  (void)ud;
  if (n == 0) {
    free(p);
    return NULL;
  }
  if (fail_all) return NULL;
  return realloc(p, n);
}

typedef struct wakeup {
  aioc_tsqueue *q;
  sem_t go;
  int put_rc;
  aioc_task *consumer;
  bool guard_fired;
} wakeup;

/* Puts one item for the task waiting on the loop's thread, with every
 * allocation of this thread failing. */
static void *nomem_producer(void *arg) {
  wakeup *w = arg;
  sem_wait(&w->go);
  fail_all = 1;
  w->put_rc = aioc_tsqueue_put(w->q, AIOC_INT(42), 0);
  fail_all = 0;
  return NULL;
}

/* Runs once the consumer waits in the queue. */
static void wakeup_go(void *arg) {
  sem_post(&((wakeup *)arg)->go);
}

static void wakeup_guard(void *arg) {
  wakeup *w = arg;
  w->guard_fired = true;
  aioc_task_cancel(w->consumer, "guard");
}

static int wakeup_main(void *arg, void **res) {
  (void)res;
  wakeup *w = arg;
  aioc_loop *loop = aioc_get_running_loop();
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, nomem_producer, w), 0);
  w->consumer = aioc_current_task();
  aioc_handle *guard;
  CHECK_RC(aioc_call_later(&guard, loop, 30, wakeup_guard, w), 0);
  CHECK_RC(aioc_call_soon(NULL, loop, wakeup_go, w), 0);
  void *it = NULL;
  CHECK_RC(aioc_tsqueue_get(w->q, &it, AIOC_FOREVER), 0);
  CHECK_EQ(AIOC_TO_INT(it), 42);
  /* Woken by the hand-off, not by the guard's cancellation. */
  CHECK(!w->guard_fired);
  aioc_handle_cancel(guard);
  aioc_handle_unref(guard);
  pthread_join(th, NULL);
  CHECK_RC(w->put_rc, 0);
  return 0;
}

/* A put from another thread hands its item to a task waiting on a loop
 * and must wake that task even when nothing can be allocated then: the
 * wake-up is allocated when the task begins to wait. */
static void test_tsqueue_wakeup_nomem(void) {
  aioc_set_allocator(thread_failing_realloc, NULL);
  wakeup w;
  memset(&w, 0, sizeof w);
  sem_init(&w.go, 0, 0);
  CHECK_RC(aioc_tsqueue_new(&w.q, 1, NULL), 0);
  CHECK_RC(run_main_ex(wakeup_main, &w, 0), 0);
  aioc_tsqueue_free(w.q);
  sem_destroy(&w.go);
  aioc_set_allocator(NULL, NULL);
}

int main(void) {
  watchdog(120);
  RUN(test_error_codes);
  RUN(test_lock_fifo);
  RUN(test_lock_bad_input);
  RUN(test_lock_timeout);
  RUN(test_lock_cancel_at_handoff);
  RUN(test_lock_deadline_scope);
  RUN(test_lock_free_with_waiters);
  RUN(test_loop_binding);
  RUN(test_event);
  RUN(test_condition_notify_order);
  RUN(test_condition_cancel_keeps_notify);
  RUN(test_condition_timeout);
  RUN(test_condition_wait_for);
  RUN(test_condition_free_with_waiters);
  RUN(test_semaphore_fifo);
  RUN(test_semaphore_cancel_at_handoff);
  RUN(test_bounded_semaphore);
  RUN(test_barrier);
  RUN(test_barrier_abort_reset);
  RUN(test_queue_order);
  RUN(test_queue_bad_input);
  RUN(test_queue_wait_and_fairness);
  RUN(test_queue_timeout_untouched);
  RUN(test_queue_cancel_safety);
  RUN(test_queue_task_done_join);
  RUN(test_queue_shutdown);
  RUN(test_queue_free_with_waiters);
  RUN(test_queue_stress);
  RUN(test_tsqueue_plain);
  RUN(test_tsqueue_task);
  RUN(test_tsqueue_bridge);
  RUN(test_tsqueue_timeout_race);
  RUN(test_tsqueue_blocked_threads);
  RUN(test_tsqueue_loop_closed);
  RUN(test_tsqueue_wakeup_nomem);
  RUN(test_queue_iter);
  RUN(test_queue_iter_owns_queue);
  return check_report();
}

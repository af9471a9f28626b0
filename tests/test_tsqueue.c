/* The thread-safe queue: real threads and tasks of real-clock loops.
 *
 * Every primitive is checked for fairness order, for timeouts that leave
 * its state untouched, and for cancellation safety (a hand-off followed by
 * a cancel in the same iteration: the waiter keeps what it got; a cancel
 * followed by a hand-off: the next waiter, or the primitive, gets it). */
#include "sync_common.h"

/* ---- thread-safe queue --------------------------------------------------- */

static double mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

TEST(test_tsqueue_plain) {
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

TEST(test_tsqueue_task) {
  CHECK_RC(run_main_real(ts_task_main, NULL, NULL), 0);
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

TEST(test_tsqueue_bridge) {
  bridge b;
  memset(&b, 0, sizeof b);
  CHECK_RC(aioc_tsqueue_new(&b.to_task, 4, NULL), 0);
  CHECK_RC(aioc_tsqueue_new(&b.to_thread, 4, NULL), 0);
  CHECK_RC(run_main_real(bridge_main, &b, NULL), 0);
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

TEST(test_tsqueue_timeout_race) {
  race r = {0};
  CHECK_RC(aioc_tsqueue_new(&r.q, 2, NULL), 0);
  CHECK_RC(aioc_tsqueue_new(&r.back, 1, NULL), 0);
  CHECK_RC(run_main_real(race_main, &r, NULL), 0);
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

static void stop_loop(void *loop) {
  aioc_loop_stop(loop);
}

static void count_reports(void *n, aioc_loop *loop, const aioc_report *r) {
  (void)loop;
  (void)r;
  (*(int *)n)++;
}

TEST(test_tsqueue_loop_closed) {
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

TEST(test_tsqueue_blocked_threads) {
  CHECK_RC(run_main_real(blocked_main, NULL, NULL), 0);
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

TEST(test_queue_iter) {
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

TEST(test_queue_iter_owns_queue) {
  aioc_run_options o = {.loop.virtual_clock = 1};
  CHECK_RC(aioc_run_ex(queue_iter_close_main, NULL, NULL, &o), 0);
}

CHECK_MAIN(120)

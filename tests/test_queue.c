/* Queue (FIFO, LIFO, priority): order, bad input, waiting, timeouts,
 * cancellation, task_done/join, shutdown, the iterator, a producer/consumer
 * stress; the error codes of the sync layer.
 *
 * Every primitive is checked for fairness order, for timeouts that leave
 * its state untouched, and for cancellation safety (a hand-off followed by
 * a cancel in the same iteration: the waiter keeps what it got; a cancel
 * followed by a hand-off: the next waiter, or the primitive, gets it). */
#include "sync_common.h"

/* ---- Queue: order and bad input ------------------------------------------ */

typedef struct pitem {
  int prio;
  int id;
} pitem;

static int by_prio(const void *a, const void *b) {
  const pitem *x = a, *y = b;
  return (x->prio > y->prio) - (x->prio < y->prio);
}

TEST(test_queue_order) {
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
  while (aioc_queue_try_get(q, &it) == 0)
    CHECK_EQ(AIOC_TO_INT(it), next_out++);
  CHECK_EQ(next_out, next_in);
  CHECK_RC(aioc_queue_try_get(q, &it), AIOC_EEMPTY);
  CHECK(it == NULL);
  aioc_queue_free(q);

  /* LIFO. */
  aioc_queue_options o = {.kind = AIOC_QUEUE_LIFO};
  CHECK_RC(aioc_queue_new(&q, 0, &o), 0);
  for (int i = 0; i < 40; i++)
    CHECK_RC(aioc_queue_try_put(q, AIOC_INT(i)), 0);
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
  for (int i = 0; i < 10; i++)
    CHECK_RC(aioc_queue_try_put(q, &items[i]), 0);
  CHECK(aioc_queue_is_full(q));
  CHECK_RC(aioc_queue_try_put(q, &items[0]), AIOC_EFULL);
  for (int i = 0; i < 10; i++) {
    CHECK_RC(aioc_queue_try_get(q, &it), 0);
    CHECK_EQ(((pitem *)it)->id, want[i]);
  }
  aioc_queue_free(q);
}

TEST(test_queue_bad_input) {
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
  for (int i = 0; i < 6 && i < c.ngot; i++)
    CHECK_EQ(c.got[i], 100 + i);
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
  for (int i = 0; i < 3; i++)
    CHECK_RC(join(tpp[i]), 0);
  aioc_queue_free(q);
  return 0;
}

TEST(test_queue_wait_and_fairness) {
  CHECK_RC(run_main(queue_wait_main, NULL, NULL), 0);
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

TEST(test_queue_timeout_untouched) {
  CHECK_RC(run_main(queue_timeout_main, NULL, NULL), 0);
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
    qw d = {.q = q, .base = 50 + order, .delay = 1.0, .timeout = AIOC_FOREVER};
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

TEST(test_queue_cancel_safety) {
  CHECK_RC(run_main(queue_cancel_main, NULL, NULL), 0);
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
  for (int i = 1; i <= 3; i++)
    CHECK_RC(aioc_queue_put(q, AIOC_INT(i), 0), 0);
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

TEST(test_queue_task_done_join) {
  CHECK_RC(run_main(queue_join_main, NULL, NULL), 0);
}

/* ---- Queue: shutdown ----------------------------------------------------- */

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

TEST(test_queue_shutdown) {
  CHECK_RC(run_main(queue_shutdown_main, NULL, NULL), 0);
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

TEST(test_queue_free_with_waiters) {
  CHECK_RC(run_main(queue_free_main, NULL, NULL), 0);
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
  for (int i = 0; i < NPROD; i++)
    CHECK_RC(join(pt[i]), 0);
  CHECK_RC(aioc_queue_join(st.q, AIOC_FOREVER), 0);
  CHECK_RC(aioc_queue_shutdown(st.q, 0), 0);
  for (int i = 0; i < NCONS; i++)
    CHECK_RC(join(ct[i]), 0);
  long n = (long)NPROD * PER;
  CHECK_EQ(st.count, n);
  CHECK_EQ(st.sum, (long long)n * (n + 1) / 2);
  CHECK_EQ(st.cancelled_seen, (NCONS + 4) / 5);
  CHECK_EQ(aioc_queue_size(st.q), 0);
  aioc_queue_free(st.q);
  return 0;
}

TEST(test_queue_stress) {
  CHECK_RC(run_main(stress_main, AIOC_INT(AIOC_QUEUE_FIFO), NULL), 0);
  CHECK_RC(run_main(stress_main, AIOC_INT(AIOC_QUEUE_LIFO), NULL), 0);
  CHECK_RC(run_main(stress_main, AIOC_INT(AIOC_QUEUE_PRIORITY), NULL), 0);
}

/* ---- error codes --------------------------------------------------------- */

TEST(test_error_codes) {
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

CHECK_MAIN(120)

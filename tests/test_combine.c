/* Combinators on the virtual clock: sleep, wait_for, gather, wait,
 * as_completed, TaskGroup, deadline scopes and shields, with_timeout.
 * Every timing is checked exactly against the loop's virtual time. */
#include <math.h>

#include "check.h"
#include "loop/loop.h" /* the timer heap's size, to fill it */

#define EPS 1e-6

/* ---- harness ------------------------------------------------------------ */

/* A child: sleeps d seconds, then returns value or fails. On a failed
 * sleep it records what the sleep returned and the time, and runs its
 * "cleanup", which may fail with cleanup_code. */
typedef struct child {
  double d;
  int value;
  int fail;          /* fail with this code after the sleep (0: succeed) */
  int swallow;       /* on -ECANCELED, return value instead */
  int cleanup_code;  /* on a failed sleep, return this (0: the sleep's rc) */
  const char *msg;   /* message for fail / cleanup_code */
  /* observed */
  int started;
  int sleep_rc;
  double woke_at;
  int cleaned;
} child;

static int child_fn(void *arg, void **result) {
  child *c = arg;
  c->started = 1;
  c->sleep_rc = 12345;
  int rc = aioc_sleep(c->d);
  c->sleep_rc = rc;
  c->woke_at = aioc_time();
  if (rc < 0) {
    c->cleaned = 1; /* cleanup code runs after the sleep was interrupted */
    if (rc == -ECANCELED && c->swallow) {
      *result = AIOC_INT(c->value);
      return 0;
    }
    if (c->cleanup_code) return aioc_error(c->cleanup_code, "%s", c->msg);
    return rc;
  }
  if (c->fail) return aioc_error(c->fail, "%s", c->msg);
  *result = AIOC_INT(c->value);
  return 0;
}

static child mk(double d, int value) {
  child c;
  memset(&c, 0, sizeof c);
  c.d = d;
  c.value = value;
  return c;
}

static child mk_fail(double d, int code, const char *msg) {
  child c = mk(d, 0);
  c.fail = code;
  c.msg = msg;
  return c;
}

static aioc_task *spawn_child(child *c) {
  aioc_task *t = NULL;
  CHECK_RC(aioc_spawn(&t, child_fn, c), 0);
  return t;
}

static aioc_future *fut(aioc_task *t) { return aioc_task_future(t); }

/* ---- sleep -------------------------------------------------------------- */

typedef struct sleeper {
  double d;
  int id;
} sleeper;

static int sleep_log_fn(void *arg, void **result) {
  (void)result;
  sleeper *s = arg;
  int rc = aioc_sleep(s->d);
  if (rc < 0) return rc;
  log_add(s->id);
  CHECK_DBL(aioc_time(), s->d, EPS);
  return 0;
}

static int sleep_order_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  log_reset();
  static sleeper ss[] = {{3.0, 3}, {1.0, 1}, {2.5, 25}, {0.5, 5}, {2.0, 2}};
  aioc_task *ts[5];
  for (int i = 0; i < 5; i++) CHECK_RC(aioc_spawn(&ts[i], sleep_log_fn, &ss[i]), 0);
  for (int i = 0; i < 5; i++) {
    CHECK_RC(aioc_task_await(ts[i], NULL), 0);
    aioc_task_unref(ts[i]);
  }
  CHECK_DBL(aioc_time(), 3.0, EPS);
  static const int want[] = {5, 1, 2, 25, 3};
  CHECK_EQ(g_nlog, 5);
  for (int i = 0; i < 5 && i < g_nlog; i++) CHECK_EQ(g_log[i], want[i]);
  return 0;
}

TEST(test_sleep_order) {
  CHECK_RC(run_main(sleep_order_main, NULL, NULL), 0);
}

static int yield_fn(void *arg, void **result) {
  (void)result;
  int id = (int)AIOC_TO_INT(arg);
  log_add(id * 10);
  CHECK_RC(aioc_sleep(0), 0);
  log_add(id * 10 + 1);
  CHECK_RC(aioc_sleep(0), 0);
  log_add(id * 10 + 2);
  return 0;
}

static int sleep0_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  log_reset();
  aioc_task *ts[3];
  for (int i = 0; i < 3; i++)
    CHECK_RC(aioc_spawn(&ts[i], yield_fn, AIOC_INT(i + 1)), 0);
  for (int i = 0; i < 3; i++) {
    CHECK_RC(aioc_task_await(ts[i], NULL), 0);
    aioc_task_unref(ts[i]);
  }
  static const int want[] = {10, 20, 30, 11, 21, 31, 12, 22, 32};
  CHECK_EQ(g_nlog, 9);
  for (int i = 0; i < 9 && i < g_nlog; i++) CHECK_EQ(g_log[i], want[i]);
  CHECK_DBL(aioc_time(), 0.0, 0); /* sleep(0) does not move the clock */
  return 0;
}

TEST(test_sleep_zero_yields_fifo) {
  CHECK_RC(run_main(sleep0_main, NULL, NULL), 0);
}

/* sleep(0) lets a task that became ready before it run first. */
static int marker_fn(void *arg, void **result) {
  (void)arg;
  (void)result;
  log_add(2);
  return 0;
}

static int sleep0_other_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  log_reset();
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, marker_fn, NULL), 0);
  log_add(1);
  CHECK_RC(aioc_sleep(0), 0);
  log_add(3);
  CHECK_EQ(g_nlog, 3);
  for (int i = 0; i < g_nlog; i++) CHECK_EQ(g_log[i], i + 1);
  CHECK(aioc_future_is_done(fut(t)));
  aioc_task_unref(t);
  return 0;
}

TEST(test_sleep_zero_lets_ready_run) {
  CHECK_RC(run_main(sleep0_other_main, NULL, NULL), 0);
}

static int sleep_bad_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  CHECK_RC(aioc_sleep(-1.0), -EINVAL);
  CHECK_RC(aioc_sleep(-1e-12), -EINVAL);
  CHECK_RC(aioc_sleep(NAN), -EINVAL);
  CHECK_RC(aioc_sleep(-INFINITY), -EINVAL);
  CHECK_DBL(aioc_time(), 0.0, 0);
  CHECK_RC(aioc_sleep(0.25), 0);
  CHECK_DBL(aioc_time(), 0.25, EPS);
  return 0;
}

TEST(test_sleep_bad) {
  CHECK_RC(run_main(sleep_bad_main, NULL, NULL), 0);
  /* Outside a task. */
  CHECK_RC(aioc_sleep(1.0), AIOC_ENOTASK);
  CHECK_RC(aioc_sleep(0), AIOC_ENOTASK);
  aioc_loop *loop = test_loop(1);
  CHECK_RC(aioc_sleep(1.0), AIOC_ENOTASK);
  CLOSE_CLEAN(loop);
}

/* A sleeping task cancelled from outside wakes at once with -ECANCELED. */
static int sleep_cancel_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  child c = mk(10.0, 1);
  aioc_task *t = spawn_child(&c);
  CHECK_RC(aioc_sleep(1.5), 0);
  CHECK_EQ(aioc_task_cancel(t, "stop it"), 1);
  CHECK_RC(aioc_task_await(t, NULL), -ECANCELED);
  CHECK_RC(c.sleep_rc, -ECANCELED);
  CHECK_DBL(c.woke_at, 1.5, EPS);
  CHECK_EQ(aioc_future_state(fut(t)), AIOC_FUTURE_CANCELLED);
  CHECK_STR(aioc_future_error_message(fut(t)), "stop it");
  aioc_task_unref(t);
  return 0;
}

TEST(test_sleep_cancelled) {
  CHECK_RC(run_main(sleep_cancel_main, NULL, NULL), 0);
}

/* ---- wait_for ----------------------------------------------------------- */

static int wait_for_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  /* In time. */
  child a = mk(1.0, 42);
  aioc_task *t = spawn_child(&a);
  void *r = NULL;
  CHECK_RC(aioc_wait_for(fut(t), &r, 5.0), 0);
  CHECK_EQ(AIOC_TO_INT(r), 42);
  CHECK_DBL(aioc_time(), 1.0, EPS);
  aioc_task_unref(t);

  /* Too late: -ETIMEDOUT at the deadline, the task cancelled. */
  child b = mk(10.0, 1);
  t = spawn_child(&b);
  r = AIOC_INT(99);
  CHECK_RC(aioc_wait_for(fut(t), &r, 2.0), -ETIMEDOUT);
  CHECK(r == NULL);
  CHECK_DBL(aioc_time(), 3.0, EPS);
  CHECK_EQ(aioc_future_state(fut(t)), AIOC_FUTURE_CANCELLED);
  CHECK_RC(b.sleep_rc, -ECANCELED);
  CHECK(b.cleaned); /* waited for: its cleanup ran before wait_for returned */
  CHECK_DBL(b.woke_at, 3.0, EPS);
  aioc_task_unref(t);

  /* The task swallows the cancellation and returns a result: nothing is
   * lost, wait_for returns it. */
  child c = mk(10.0, 7);
  c.swallow = 1;
  t = spawn_child(&c);
  r = NULL;
  CHECK_RC(aioc_wait_for(fut(t), &r, 2.0), 0);
  CHECK_EQ(AIOC_TO_INT(r), 7);
  CHECK_RC(c.sleep_rc, -ECANCELED);
  CHECK_DBL(aioc_time(), 5.0, EPS);
  CHECK_EQ(aioc_future_state(fut(t)), AIOC_FUTURE_DONE);
  aioc_task_unref(t);

  /* A failure in time passes through. */
  child d = mk_fail(0.5, -EIO, "disk");
  t = spawn_child(&d);
  CHECK_RC(aioc_wait_for(fut(t), NULL, 2.0), -EIO);
  CHECK_STR(aioc_error_message(), "disk");
  CHECK_DBL(aioc_time(), 5.5, EPS);
  aioc_task_unref(t);

  /* AIOC_FOREVER: no limit. */
  child e = mk(1000.0, 8);
  t = spawn_child(&e);
  CHECK_RC(aioc_wait_for(fut(t), &r, AIOC_FOREVER), 0);
  CHECK_EQ(AIOC_TO_INT(r), 8);
  CHECK_DBL(aioc_time(), 1005.5, EPS);
  aioc_task_unref(t);

  /* A plain future, timed out: cancelled. */
  aioc_future *f;
  CHECK_RC(aioc_future_new(&f, NULL), 0);
  CHECK_RC(aioc_wait_for(f, NULL, 0.5), -ETIMEDOUT);
  CHECK_EQ(aioc_future_state(f), AIOC_FUTURE_CANCELLED);
  CHECK_DBL(aioc_time(), 1006.0, EPS);
  aioc_future_unref(f);

  /* Already done, zero timeout: the result, no wait. */
  CHECK_RC(aioc_future_new(&f, NULL), 0);
  CHECK_RC(aioc_future_set_result(f, AIOC_INT(3), NULL), 0);
  CHECK_RC(aioc_wait_for(f, &r, 0.0), 0);
  CHECK_EQ(AIOC_TO_INT(r), 3);
  aioc_future_unref(f);

  /* Bad input. */
  CHECK_RC(aioc_future_new(&f, NULL), 0);
  CHECK_RC(aioc_wait_for(f, NULL, -1.0), -EINVAL);
  CHECK_RC(aioc_wait_for(f, NULL, NAN), -EINVAL);
  CHECK_RC(aioc_wait_for(NULL, NULL, 1.0), -EINVAL);
  CHECK_EQ(aioc_future_state(f), AIOC_FUTURE_PENDING);
  aioc_future_unref(f);
  CHECK_DBL(aioc_time(), 1006.0, EPS);
  return 0;
}

TEST(test_wait_for) {
  CHECK_RC(run_main(wait_for_main, NULL, NULL), 0);
}

/* The task awaiting with wait_for is itself cancelled: -ECANCELED, and
 * (as asyncio) the awaited task is cancelled too. */
typedef struct wf_outer {
  child *inner;
  aioc_task *inner_t;
  int rc;
} wf_outer;

static int wf_outer_fn(void *arg, void **result) {
  (void)result;
  wf_outer *o = arg;
  o->inner_t = spawn_child(o->inner);
  o->rc = aioc_wait_for(fut(o->inner_t), NULL, 5.0);
  return o->rc;
}

static int wait_for_cancel_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  child in = mk(10.0, 1);
  wf_outer o = {.inner = &in, .rc = 12345};
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, wf_outer_fn, &o), 0);
  CHECK_RC(aioc_sleep(1.0), 0);
  aioc_task_cancel(t, NULL);
  CHECK_RC(aioc_task_await(t, NULL), -ECANCELED);
  CHECK_RC(o.rc, -ECANCELED);
  CHECK_DBL(aioc_time(), 1.0, EPS);
  aioc_task_unref(t);
  /* The inner task is cancelled (asyncio.wait_for cancels it). */
  CHECK_RC(aioc_task_await(o.inner_t, NULL), -ECANCELED);
  CHECK_RC(in.sleep_rc, -ECANCELED);
  CHECK_DBL(in.woke_at, 1.0, EPS);
  aioc_task_unref(o.inner_t);
  return 0;
}

TEST(test_wait_for_outer_cancelled) {
  CHECK_RC(run_main(wait_for_cancel_main, NULL, NULL), 0);
}

/* ---- gather ------------------------------------------------------------- */

static void set2_cb(void *arg) {
  CHECK_RC(aioc_future_set_result((aioc_future *)arg, AIOC_INT(2), NULL), 0);
}

static int gather_order_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  child cs[4] = {mk(3.0, 30), mk(1.0, 10), mk(2.0, 20), mk(0.0, 5)};
  aioc_task *ts[4];
  aioc_future *fs[4];
  for (int i = 0; i < 4; i++) {
    ts[i] = spawn_child(&cs[i]);
    fs[i] = fut(ts[i]);
  }
  void *res[4];
  CHECK_RC(aioc_gather(fs, 4, res, NULL, 0), 0);
  CHECK_EQ(AIOC_TO_INT(res[0]), 30);
  CHECK_EQ(AIOC_TO_INT(res[1]), 10);
  CHECK_EQ(AIOC_TO_INT(res[2]), 20);
  CHECK_EQ(AIOC_TO_INT(res[3]), 5);
  CHECK_DBL(aioc_time(), 3.0, EPS);
  for (int i = 0; i < 4; i++)
    aioc_task_unref(ts[i]);

  /* Empty. */
  CHECK_RC(aioc_gather(NULL, 0, NULL, NULL, 0), 0);
  CHECK_RC(aioc_gather(fs, 0, res, NULL, 0), 0);
  int codes[1];
  CHECK_RC(aioc_gather(NULL, 0, NULL, codes, 0), 0);
  CHECK_DBL(aioc_time(), 3.0, EPS);

  /* Bad input. */
  CHECK_RC(aioc_gather(NULL, 2, NULL, NULL, 0), -EINVAL);
  aioc_future *withnull[2] = {NULL, NULL};
  CHECK_RC(aioc_gather(withnull, 2, NULL, NULL, 0), -EINVAL);
  aioc_future *self[1] = {fut(aioc_current_task())};
  CHECK_RC(aioc_gather(self, 1, NULL, NULL, 0), -EINVAL);

  /* Futures already done, and plain futures. */
  aioc_future *f1, *f2;
  CHECK_RC(aioc_future_new(&f1, NULL), 0);
  CHECK_RC(aioc_future_new(&f2, NULL), 0);
  CHECK_RC(aioc_future_set_result(f1, AIOC_INT(1), NULL), 0);
  aioc_future *two[2] = {f1, f2};
  aioc_loop *loop = aioc_get_running_loop();
  CHECK(loop != NULL);
  CHECK_RC(aioc_call_later(NULL, loop, 0.5, set2_cb, f2), 0);
  CHECK_RC(aioc_gather(two, 2, res, NULL, 0), 0);
  CHECK_EQ(AIOC_TO_INT(res[0]), 1);
  CHECK_EQ(AIOC_TO_INT(res[1]), 2);
  CHECK_DBL(aioc_time(), 3.5, EPS);
  aioc_future_unref(f1);
  aioc_future_unref(f2);
  return 0;
}

TEST(test_gather_order) {
  CHECK_RC(run_main(gather_order_main, NULL, NULL), 0);
  /* Outside a task: not a suspension point there. */
  aioc_loop *loop = test_loop(1);
  aioc_future *f;
  CHECK_RC(aioc_future_new(&f, loop), 0);
  aioc_future *one[1] = {f};
  size_t nd = 9, np = 9;
  CHECK_RC(aioc_gather(one, 1, NULL, NULL, 0), AIOC_ENOTASK);
  CHECK_RC(
      aioc_wait(one, 1, AIOC_WAIT_ALL_COMPLETED, NULL, &nd, NULL, &np, 1.0),
      AIOC_ENOTASK);
  CHECK_RC(aioc_wait_for(f, NULL, 1.0), AIOC_ENOTASK);
  CHECK_EQ(aioc_future_state(f), AIOC_FUTURE_PENDING);
  aioc_as_completed *it;
  CHECK_RC(aioc_as_completed_new(&it, one, 1, AIOC_FOREVER), 0);
  aioc_future *got;
  CHECK_RC(aioc_as_completed_next(it, &got, 1.0), AIOC_ENOTASK);
  aioc_as_completed_free(it);
  aioc_future_unref(f);
  CLOSE_CLEAN(loop);
}

/* The first failure is returned (with its message); the others are
 * cancelled and waited for: their sleeps returned -ECANCELED and their
 * cleanup ran before gather returned; results that had succeeded stay. */
static int gather_fail_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  /* fs[1] would fail later than fs[2]: the first in time wins. */
  child cs[4] = {mk(0.5, 4), mk_fail(5.0, -ENOSPC, "later"),
                 mk_fail(1.0, -EIO, "A failed"), mk(10.0, 100)};
  aioc_task *ts[4];
  aioc_future *fs[4];
  for (int i = 0; i < 4; i++) {
    ts[i] = spawn_child(&cs[i]);
    fs[i] = fut(ts[i]);
  }
  void *res[4] = {AIOC_INT(-1), AIOC_INT(-1), AIOC_INT(-1), AIOC_INT(-1)};
  CHECK_RC(aioc_gather(fs, 4, res, NULL, 0), -EIO);
  CHECK_STR(aioc_error_message(), "A failed");
  CHECK_DBL(aioc_time(), 1.0, EPS);
  CHECK_EQ(AIOC_TO_INT(res[0]), 4); /* succeeded before the failure */
  CHECK(res[1] == NULL);
  CHECK(res[2] == NULL);
  CHECK(res[3] == NULL);
  CHECK_EQ(aioc_future_state(fs[0]), AIOC_FUTURE_DONE);
  CHECK_EQ(aioc_future_state(fs[1]), AIOC_FUTURE_CANCELLED);
  CHECK_EQ(aioc_future_state(fs[2]), AIOC_FUTURE_DONE);
  CHECK_EQ(aioc_future_state(fs[3]), AIOC_FUTURE_CANCELLED);
  for (int i = 1; i < 4; i += 2) {
    CHECK_RC(cs[i].sleep_rc, -ECANCELED);
    CHECK(cs[i].cleaned);
    CHECK_DBL(cs[i].woke_at, 1.0, EPS);
  }
  CHECK(!cs[0].cleaned);
  for (int i = 0; i < 4; i++)
    aioc_task_unref(ts[i]);
  return 0;
}

TEST(test_gather_first_error_cancels) {
  CHECK_RC(run_main(gather_fail_main, NULL, NULL), 0);
}

static int gather_keep_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  child cs[3] = {mk(5.0, 50), mk_fail(1.0, -EPIPE, "B failed"), mk(3.0, 30)};
  aioc_task *ts[3];
  aioc_future *fs[3];
  for (int i = 0; i < 3; i++) {
    ts[i] = spawn_child(&cs[i]);
    fs[i] = fut(ts[i]);
  }
  void *res[3];
  CHECK_RC(aioc_gather(fs, 3, res, NULL, AIOC_GATHER_KEEP_RUNNING), -EPIPE);
  CHECK_STR(aioc_error_message(), "B failed");
  CHECK_DBL(aioc_time(), 1.0, EPS);
  /* The others still run. */
  CHECK_EQ(aioc_future_state(fs[0]), AIOC_FUTURE_RUNNING);
  CHECK_EQ(aioc_future_state(fs[2]), AIOC_FUTURE_RUNNING);
  CHECK_EQ(aioc_task_cancelling(ts[0]), 0);
  CHECK_EQ(aioc_task_cancelling(ts[2]), 0);
  void *r;
  CHECK_RC(aioc_task_await(ts[2], &r), 0);
  CHECK_EQ(AIOC_TO_INT(r), 30);
  CHECK_DBL(aioc_time(), 3.0, EPS);
  CHECK_RC(aioc_task_await(ts[0], &r), 0);
  CHECK_EQ(AIOC_TO_INT(r), 50);
  CHECK_DBL(aioc_time(), 5.0, EPS);
  CHECK(!cs[0].cleaned && !cs[2].cleaned);
  for (int i = 0; i < 3; i++)
    aioc_task_unref(ts[i]);
  return 0;
}

TEST(test_gather_keep_running) {
  CHECK_RC(run_main(gather_keep_main, NULL, NULL), 0);
}

/* codes[] (return_exceptions=True): every outcome is collected, nothing
 * is cancelled, 0 is returned. */
static int gather_codes_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  child cs[4] = {mk_fail(1.0, -EIO, "first"), mk(2.0, 20),
                 mk_fail(3.0, -EPIPE, "third"), mk(4.0, 40)};
  aioc_task *ts[4];
  aioc_future *fs[4];
  for (int i = 0; i < 4; i++) {
    ts[i] = spawn_child(&cs[i]);
    fs[i] = fut(ts[i]);
  }
  /* The last one is cancelled before it starts. */
  CHECK_EQ(aioc_task_cancel(ts[3], NULL), 1);
  void *res[4];
  int codes[4] = {99, 99, 99, 99};
  CHECK_RC(aioc_gather(fs, 4, res, codes, 0), 0);
  CHECK_DBL(aioc_time(), 3.0, EPS);
  CHECK_RC(codes[0], -EIO);
  CHECK_RC(codes[1], 0);
  CHECK_RC(codes[2], -EPIPE);
  CHECK_RC(codes[3], -ECANCELED);
  CHECK(res[0] == NULL);
  CHECK_EQ(AIOC_TO_INT(res[1]), 20);
  CHECK(res[2] == NULL);
  CHECK(res[3] == NULL);
  CHECK(!cs[3].started); /* cancelled before it started: never ran */
  CHECK(!cs[1].cleaned && !cs[2].cleaned);
  CHECK_STR(aioc_future_error_message(fs[0]), "first");
  CHECK_STR(aioc_future_error_message(fs[2]), "third");
  for (int i = 0; i < 4; i++)
    aioc_task_unref(ts[i]);
  return 0;
}

TEST(test_gather_codes) {
  CHECK_RC(run_main(gather_codes_main, NULL, NULL), 0);
}

/* The gathering task is cancelled: its children are cancelled and waited
 * for, and gather returns -ECANCELED. */
typedef struct gatherer {
  child *cs;
  size_t n;
  aioc_task **ts;
  int rc;
  double returned_at;
} gatherer;

static int gatherer_fn(void *arg, void **result) {
  (void)result;
  gatherer *g = arg;
  aioc_future *fs[8];
  for (size_t i = 0; i < g->n; i++) {
    g->ts[i] = spawn_child(&g->cs[i]);
    fs[i] = fut(g->ts[i]);
  }
  g->rc = aioc_gather(fs, g->n, NULL, NULL, 0);
  g->returned_at = aioc_time();
  for (size_t i = 0; i < g->n; i++) {
    /* Children are finished by now, every one of them. */
    CHECK(aioc_future_is_done(fs[i]));
  }
  return g->rc;
}

static int gather_cancelled_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  child cs[2] = {mk(5.0, 1), mk(10.0, 2)};
  aioc_task *ts[2] = {NULL, NULL};
  gatherer g = {.cs = cs, .n = 2, .ts = ts, .rc = 12345};
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, gatherer_fn, &g), 0);
  CHECK_RC(aioc_sleep(1.0), 0);
  CHECK_EQ(aioc_task_cancel(t, NULL), 1);
  CHECK_RC(aioc_task_await(t, NULL), -ECANCELED);
  CHECK_RC(g.rc, -ECANCELED);
  CHECK_DBL(g.returned_at, 1.0, EPS);
  for (int i = 0; i < 2; i++) {
    CHECK_EQ(aioc_future_state(fut(ts[i])), AIOC_FUTURE_CANCELLED);
    CHECK_RC(cs[i].sleep_rc, -ECANCELED);
    CHECK(cs[i].cleaned);
    CHECK_DBL(cs[i].woke_at, 1.0, EPS);
    aioc_task_unref(ts[i]);
  }
  aioc_task_unref(t);
  CHECK_DBL(aioc_time(), 1.0, EPS);
  return 0;
}

TEST(test_gather_cancelled) {
  CHECK_RC(run_main(gather_cancelled_main, NULL, NULL), 0);
}

/* A deadline in scope: -ETIMEDOUT, children cancelled. */
static int gather_deadline_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  child cs[2] = {mk(1.0, 1), mk(10.0, 2)};
  aioc_task *ts[2];
  aioc_future *fs[2];
  for (int i = 0; i < 2; i++) {
    ts[i] = spawn_child(&cs[i]);
    fs[i] = fut(ts[i]);
  }
  aioc_scope *s;
  CHECK_RC(aioc_timeout_enter(&s, 2.0), 0);
  void *res[2];
  CHECK_RC(aioc_gather(fs, 2, res, NULL, 0), -ETIMEDOUT);
  CHECK_RC(aioc_scope_exit(s), -ETIMEDOUT);
  aioc_scope_free(s);
  CHECK_DBL(aioc_time(), 2.0, EPS);
  CHECK_EQ(aioc_future_state(fs[0]), AIOC_FUTURE_DONE);
  CHECK_EQ(aioc_future_state(fs[1]), AIOC_FUTURE_CANCELLED);
  CHECK(cs[1].cleaned);
  void *r;
  CHECK_RC(aioc_future_result(fs[0], &r), 0);
  CHECK_EQ(AIOC_TO_INT(r), 1);
  for (int i = 0; i < 2; i++)
    aioc_task_unref(ts[i]);
  return 0;
}

TEST(test_gather_deadline) {
  CHECK_RC(run_main(gather_deadline_main, NULL, NULL), 0);
}

/* ---- wait --------------------------------------------------------------- */

static int wait_first_completed_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  child cs[3] = {mk(3.0, 3), mk(1.0, 1), mk(2.0, 2)};
  aioc_task *ts[3];
  aioc_future *fs[3];
  for (int i = 0; i < 3; i++) {
    ts[i] = spawn_child(&cs[i]);
    fs[i] = fut(ts[i]);
  }
  aioc_future *done[3] = {0}, *pending[3] = {0};
  size_t nd = 99, np = 99;
  CHECK_RC(aioc_wait(fs, 3, AIOC_WAIT_FIRST_COMPLETED, done, &nd, pending, &np,
                     AIOC_FOREVER),
           0);
  CHECK_DBL(aioc_time(), 1.0, EPS);
  CHECK_EQ(nd, 1);
  CHECK_EQ(np, 2);
  CHECK(done[0] == fs[1]);
  CHECK(pending[0] == fs[0]);
  CHECK(pending[1] == fs[2]);
  /* Nothing cancelled. */
  CHECK_EQ(aioc_future_state(fs[0]), AIOC_FUTURE_RUNNING);
  CHECK_EQ(aioc_future_state(fs[2]), AIOC_FUTURE_RUNNING);

  /* Again: the one already done satisfies it at once. */
  CHECK_RC(aioc_wait(fs, 3, AIOC_WAIT_FIRST_COMPLETED, done, &nd, NULL, &np,
                     AIOC_FOREVER),
           0);
  CHECK_DBL(aioc_time(), 1.0, EPS);
  CHECK_EQ(nd, 1);
  CHECK_EQ(np, 2);

  /* ALL_COMPLETED. */
  CHECK_RC(aioc_wait(fs, 3, AIOC_WAIT_ALL_COMPLETED, done, &nd, pending, &np,
                     AIOC_FOREVER),
           0);
  CHECK_DBL(aioc_time(), 3.0, EPS);
  CHECK_EQ(nd, 3);
  CHECK_EQ(np, 0);
  for (int i = 0; i < 3; i++) CHECK(done[i] == fs[i]);
  for (int i = 0; i < 3; i++) {
    void *r;
    CHECK_RC(aioc_future_result(fs[i], &r), 0);
    CHECK_EQ(AIOC_TO_INT(r), cs[i].value);
    CHECK(!cs[i].cleaned);
    aioc_task_unref(ts[i]);
  }

  /* Empty. */
  CHECK_RC(aioc_wait(NULL, 0, AIOC_WAIT_ALL_COMPLETED, NULL, &nd, NULL, &np,
                     AIOC_FOREVER),
           0);
  CHECK_EQ(nd, 0);
  CHECK_EQ(np, 0);
  /* Bad input. */
  CHECK_RC(
      aioc_wait(fs, 3, AIOC_WAIT_ALL_COMPLETED, NULL, NULL, NULL, NULL, -1.0),
      -EINVAL);
  CHECK_RC(
      aioc_wait(fs, 3, AIOC_WAIT_ALL_COMPLETED, NULL, NULL, NULL, NULL, NAN),
      -EINVAL);
  CHECK_RC(
      aioc_wait(NULL, 3, AIOC_WAIT_ALL_COMPLETED, NULL, NULL, NULL, NULL, 1.0),
      -EINVAL);
  CHECK_RC(aioc_wait(fs, 0, (aioc_wait_when)7, NULL, NULL, NULL, NULL, 1.0),
           -EINVAL);
  CHECK_DBL(aioc_time(), 3.0, EPS);
  return 0;
}

TEST(test_wait_first_completed_all) {
  CHECK_RC(run_main(wait_first_completed_main, NULL, NULL), 0);
}

static int wait_first_exception_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  child cs[3] = {mk(1.0, 1), mk_fail(2.0, -EIO, "bad"), mk(5.0, 5)};
  aioc_task *ts[3];
  aioc_future *fs[3];
  for (int i = 0; i < 3; i++) {
    ts[i] = spawn_child(&cs[i]);
    fs[i] = fut(ts[i]);
  }
  aioc_future *done[3], *pending[3];
  size_t nd, np;
  CHECK_RC(aioc_wait(fs, 3, AIOC_WAIT_FIRST_EXCEPTION, done, &nd, pending, &np,
                     AIOC_FOREVER),
           0);
  CHECK_DBL(aioc_time(), 2.0, EPS);
  CHECK_EQ(nd, 2);
  CHECK_EQ(np, 1);
  CHECK(done[0] == fs[0]);
  CHECK(done[1] == fs[1]);
  CHECK(pending[0] == fs[2]);
  CHECK_RC(aioc_future_error(fs[1]), -EIO);
  CHECK_EQ(aioc_future_state(fs[2]), AIOC_FUTURE_RUNNING);
  CHECK_EQ(aioc_task_cancelling(ts[2]), 0);
  /* No failure among the rest: FIRST_EXCEPTION waits for all. */
  aioc_future *rest[2] = {fs[0], fs[2]};
  CHECK_RC(aioc_wait(rest, 2, AIOC_WAIT_FIRST_EXCEPTION, done, &nd, pending,
                     &np, AIOC_FOREVER),
           0);
  CHECK_DBL(aioc_time(), 5.0, EPS);
  CHECK_EQ(nd, 2);
  CHECK_EQ(np, 0);
  for (int i = 0; i < 3; i++)
    aioc_task_unref(ts[i]);
  return 0;
}

TEST(test_wait_first_exception) {
  CHECK_RC(run_main(wait_first_exception_main, NULL, NULL), 0);
}

/* The timeout argument: 0 returned, the sets tell, nothing cancelled. */
static int wait_timeout_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  child cs[3] = {mk(1.0, 1), mk(5.0, 5), mk(10.0, 10)};
  aioc_task *ts[3];
  aioc_future *fs[3];
  for (int i = 0; i < 3; i++) {
    ts[i] = spawn_child(&cs[i]);
    fs[i] = fut(ts[i]);
  }
  aioc_future *done[3], *pending[3];
  size_t nd, np;
  CHECK_RC(
      aioc_wait(fs, 3, AIOC_WAIT_ALL_COMPLETED, done, &nd, pending, &np, 2.5),
      0);
  CHECK_DBL(aioc_time(), 2.5, EPS);
  CHECK_EQ(nd, 1);
  CHECK_EQ(np, 2);
  CHECK(done[0] == fs[0]);
  CHECK(pending[0] == fs[1] && pending[1] == fs[2]);
  for (int i = 1; i < 3; i++) {
    CHECK_EQ(aioc_future_state(fs[i]), AIOC_FUTURE_RUNNING);
    CHECK_EQ(aioc_task_cancelling(ts[i]), 0);
  }
  /* FIRST_COMPLETED with a zero timeout: polls. */
  aioc_future *late[2] = {fs[1], fs[2]};
  CHECK_RC(aioc_wait(late, 2, AIOC_WAIT_FIRST_COMPLETED, done, &nd, pending,
                     &np, 0.0),
           0);
  CHECK_DBL(aioc_time(), 2.5, EPS);
  CHECK_EQ(nd, 0);
  CHECK_EQ(np, 2);
  /* FIRST_EXCEPTION with a timeout before anything fails. */
  CHECK_RC(aioc_wait(late, 2, AIOC_WAIT_FIRST_EXCEPTION, done, &nd, pending,
                     &np, 1.0),
           0);
  CHECK_DBL(aioc_time(), 3.5, EPS);
  CHECK_EQ(nd, 0);
  CHECK_EQ(np, 2);
  /* They finish normally later. */
  void *r;
  CHECK_RC(aioc_task_await(ts[1], &r), 0);
  CHECK_EQ(AIOC_TO_INT(r), 5);
  CHECK_RC(aioc_task_await(ts[2], &r), 0);
  CHECK_EQ(AIOC_TO_INT(r), 10);
  CHECK_DBL(aioc_time(), 10.0, EPS);
  for (int i = 0; i < 3; i++) {
    CHECK(!cs[i].cleaned);
    aioc_task_unref(ts[i]);
  }
  return 0;
}

TEST(test_wait_timeout) {
  CHECK_RC(run_main(wait_timeout_main, NULL, NULL), 0);
}

/* A deadline in scope (not the timeout argument): -ETIMEDOUT. */
static int wait_deadline_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  child c = mk(5.0, 5);
  aioc_task *t = spawn_child(&c);
  aioc_future *fs[1] = {fut(t)};
  aioc_scope *s;
  CHECK_RC(aioc_timeout_enter(&s, 1.0), 0);
  size_t nd = 99, np = 99;
  CHECK_RC(aioc_wait(fs, 1, AIOC_WAIT_ALL_COMPLETED, NULL, &nd, NULL, &np, 3.0),
           -ETIMEDOUT);
  CHECK_RC(aioc_scope_exit(s), -ETIMEDOUT);
  aioc_scope_free(s);
  CHECK_DBL(aioc_time(), 1.0, EPS);
  CHECK_EQ(aioc_future_state(fs[0]), AIOC_FUTURE_RUNNING); /* not cancelled */
  CHECK_RC(aioc_task_await(t, NULL), 0);
  CHECK_DBL(aioc_time(), 5.0, EPS);
  aioc_task_unref(t);
  return 0;
}

TEST(test_wait_deadline_in_scope) {
  CHECK_RC(run_main(wait_deadline_main, NULL, NULL), 0);
}

/* ---- as_completed ------------------------------------------------------- */

static int as_completed_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  child cs[4] = {mk(3.0, 3), mk(1.0, 1), mk(2.0, 2), mk(2.0, 22)};
  aioc_task *ts[4];
  aioc_future *fs[4];
  for (int i = 0; i < 4; i++) {
    ts[i] = spawn_child(&cs[i]);
    fs[i] = fut(ts[i]);
  }
  aioc_as_completed *it;
  CHECK_RC(aioc_as_completed_new(&it, fs, 4, AIOC_FOREVER), 0);
  static const int order[] = {1, 2, 3, 0};
  static const double at[] = {1.0, 2.0, 2.0, 3.0};
  for (int k = 0; k < 4; k++) {
    aioc_future *f = NULL;
    CHECK_RC(aioc_as_completed_next(it, &f, AIOC_FOREVER), 0);
    CHECK(f == fs[order[k]]);
    CHECK_DBL(aioc_time(), at[k], EPS);
    void *r;
    if (f) {
      CHECK_RC(aioc_future_result(f, &r), 0);
      CHECK_EQ(AIOC_TO_INT(r), cs[order[k]].value);
    }
  }
  aioc_future *f = fs[0];
  CHECK_EQ(aioc_as_completed_next(it, &f, AIOC_FOREVER), AIOC_EXHAUSTED);
  CHECK(f == NULL);
  CHECK_EQ(aioc_as_completed_next(it, &f, 1.0), AIOC_EXHAUSTED);
  CHECK_DBL(aioc_time(), 3.0, EPS);
  aioc_as_completed_free(it);
  aioc_as_completed_free(NULL);

  /* Already done futures come first, in the order given. */
  CHECK_RC(aioc_as_completed_new(&it, fs, 2, AIOC_FOREVER), 0);
  CHECK_RC(aioc_as_completed_next(it, &f, 0.0), 0);
  CHECK(f == fs[0]);
  CHECK_RC(aioc_as_completed_next(it, &f, 0.0), 0);
  CHECK(f == fs[1]);
  CHECK_EQ(aioc_as_completed_next(it, &f, 0.0), AIOC_EXHAUSTED);
  aioc_as_completed_free(it);

  /* Empty. */
  CHECK_RC(aioc_as_completed_new(&it, NULL, 0, AIOC_FOREVER), 0);
  CHECK_EQ(aioc_as_completed_next(it, &f, AIOC_FOREVER), AIOC_EXHAUSTED);
  aioc_as_completed_free(it);
  /* Bad input. */
  it = (aioc_as_completed *)&it;
  CHECK_RC(aioc_as_completed_new(&it, fs, 2, -1.0), -EINVAL);
  CHECK(it == NULL);
  CHECK_RC(aioc_as_completed_new(&it, fs, 2, NAN), -EINVAL);
  CHECK_RC(aioc_as_completed_new(&it, NULL, 2, 1.0), -EINVAL);
  CHECK_DBL(aioc_time(), 3.0, EPS);
  for (int i = 0; i < 4; i++)
    aioc_task_unref(ts[i]);
  return 0;
}

TEST(test_as_completed) {
  CHECK_RC(run_main(as_completed_main, NULL, NULL), 0);
}

/* The whole-iteration timeout. */
static int as_completed_whole_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  child cs[2] = {mk(5.0, 5), mk(1.0, 1)};
  aioc_task *ts[2];
  aioc_future *fs[2];
  for (int i = 0; i < 2; i++) {
    ts[i] = spawn_child(&cs[i]);
    fs[i] = fut(ts[i]);
  }
  aioc_as_completed *it;
  CHECK_RC(aioc_as_completed_new(&it, fs, 2, 2.5), 0);
  aioc_future *f;
  CHECK_RC(aioc_as_completed_next(it, &f, AIOC_FOREVER), 0);
  CHECK(f == fs[1]);
  CHECK_DBL(aioc_time(), 1.0, EPS);
  CHECK_RC(aioc_as_completed_next(it, &f, AIOC_FOREVER), -ETIMEDOUT);
  CHECK(f == NULL);
  CHECK_DBL(aioc_time(), 2.5, EPS);
  /* Past the whole deadline: -ETIMEDOUT at once. */
  CHECK_RC(aioc_as_completed_next(it, &f, 10.0), -ETIMEDOUT);
  CHECK_DBL(aioc_time(), 2.5, EPS);
  /* Nothing was cancelled. */
  CHECK_EQ(aioc_future_state(fs[0]), AIOC_FUTURE_RUNNING);
  aioc_as_completed_free(it);
  CHECK_RC(aioc_task_await(ts[0], NULL), 0);
  CHECK_DBL(aioc_time(), 5.0, EPS);
  for (int i = 0; i < 2; i++)
    aioc_task_unref(ts[i]);
  return 0;
}

TEST(test_as_completed_whole_timeout) {
  CHECK_RC(run_main(as_completed_whole_main, NULL, NULL), 0);
}

/* The per-item timeout: -ETIMEDOUT, then the late item still comes. */
static int as_completed_item_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  child cs[2] = {mk(5.0, 5), mk(2.0, 2)};
  aioc_task *ts[2];
  aioc_future *fs[2];
  for (int i = 0; i < 2; i++) {
    ts[i] = spawn_child(&cs[i]);
    fs[i] = fut(ts[i]);
  }
  aioc_as_completed *it;
  CHECK_RC(aioc_as_completed_new(&it, fs, 2, AIOC_FOREVER), 0);
  aioc_future *f;
  CHECK_RC(aioc_as_completed_next(it, &f, 3.0), 0);
  CHECK(f == fs[1]);
  CHECK_DBL(aioc_time(), 2.0, EPS);
  CHECK_RC(aioc_as_completed_next(it, &f, 1.0), -ETIMEDOUT);
  CHECK(f == NULL);
  CHECK_DBL(aioc_time(), 3.0, EPS);
  CHECK_RC(aioc_as_completed_next(it, &f, 0.5), -ETIMEDOUT);
  CHECK_DBL(aioc_time(), 3.5, EPS);
  CHECK_EQ(aioc_future_state(fs[0]), AIOC_FUTURE_RUNNING);
  CHECK_RC(aioc_as_completed_next(it, &f, AIOC_FOREVER), 0);
  CHECK(f == fs[0]);
  CHECK_DBL(aioc_time(), 5.0, EPS);
  CHECK_EQ(aioc_as_completed_next(it, &f, AIOC_FOREVER), AIOC_EXHAUSTED);
  aioc_as_completed_free(it);

  /* An item that completes while nobody waits is not lost either. */
  child c3 = mk(1.0, 3);
  aioc_task *t3 = spawn_child(&c3);
  aioc_future *f3[1] = {fut(t3)};
  CHECK_RC(aioc_as_completed_new(&it, f3, 1, AIOC_FOREVER), 0);
  CHECK_RC(aioc_sleep(2.0), 0);
  CHECK_RC(aioc_as_completed_next(it, &f, 0.0), 0);
  CHECK(f == f3[0]);
  CHECK_DBL(aioc_time(), 7.0, EPS);
  aioc_as_completed_free(it);
  aioc_task_unref(t3);
  for (int i = 0; i < 2; i++)
    aioc_task_unref(ts[i]);
  return 0;
}

TEST(test_as_completed_item_timeout) {
  CHECK_RC(run_main(as_completed_item_main, NULL, NULL), 0);
}

/* ---- TaskGroup ---------------------------------------------------------- */

static int tg_join_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_taskgroup *g;
  CHECK_RC(aioc_taskgroup_new(&g), 0);
  child cs[3] = {mk(2.0, 2), mk(1.0, 1), mk(3.0, 3)};
  aioc_task *ts[3];
  for (int i = 0; i < 3; i++)
    CHECK_RC(aioc_taskgroup_spawn(g, &ts[i], child_fn, &cs[i], NULL), 0);
  CHECK_RC(aioc_taskgroup_join(g), 0);
  CHECK_DBL(aioc_time(), 3.0, EPS);
  CHECK_EQ(aioc_taskgroup_errors(g, 0, NULL, NULL), 0);
  for (int i = 0; i < 3; i++) {
    void *r;
    CHECK_RC(aioc_future_result(fut(ts[i]), &r), 0);
    CHECK_EQ(AIOC_TO_INT(r), cs[i].value);
    aioc_task_unref(ts[i]);
  }
  /* Joined: no more spawns, no second join. */
  child late = mk(1.0, 0);
  aioc_task *lt = (aioc_task *)&lt;
  CHECK_RC(aioc_taskgroup_spawn(g, &lt, child_fn, &late, NULL), AIOC_ESTATE);
  CHECK(lt == NULL);
  CHECK(!late.started);
  aioc_taskgroup_free(g);
  aioc_taskgroup_free(NULL);

  /* An empty group joins at once. */
  CHECK_RC(aioc_taskgroup_new(&g), 0);
  CHECK_RC(aioc_taskgroup_join(g), 0);
  aioc_taskgroup_free(g);
  CHECK_DBL(aioc_time(), 3.0, EPS);
  return 0;
}

TEST(test_taskgroup_join) {
  CHECK_RC(run_main(tg_join_main, NULL, NULL), 0);
  aioc_taskgroup *g = (aioc_taskgroup *)&g;
  CHECK_RC(aioc_taskgroup_new(&g), AIOC_ENOTASK);
}

/* One task fails: the siblings and the owner are cancelled (the owner's
 * own wait outside join fails with -ECANCELED at that moment); join
 * withdraws the owner's cancellation and returns the first error; every
 * error is kept, in order. */
static int tg_fail_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_taskgroup *g;
  CHECK_RC(aioc_taskgroup_new(&g), 0);
  child a = mk_fail(1.0, -EIO, "a failed");
  child b = mk(10.0, 0);
  b.cleanup_code = -EPIPE;
  b.msg = "b cleanup";
  child c = mk(10.0, 0);
  aioc_task *ta, *tb, *tc;
  CHECK_RC(aioc_taskgroup_spawn(g, &ta, child_fn, &a, NULL), 0);
  CHECK_RC(aioc_taskgroup_spawn(g, &tb, child_fn, &b, NULL), 0);
  CHECK_RC(aioc_taskgroup_spawn(g, &tc, child_fn, &c, NULL), 0);
  /* The owner does something else meanwhile: it is cancelled. */
  CHECK_RC(aioc_sleep(20.0), -ECANCELED);
  CHECK_DBL(aioc_time(), 1.0, EPS);
  CHECK_EQ(aioc_task_cancelling(aioc_current_task()), 1);
  /* Shutting down: no new task. */
  child d = mk(1.0, 0);
  CHECK_RC(aioc_taskgroup_spawn(g, NULL, child_fn, &d, NULL), AIOC_ESTATE);
  CHECK(!d.started);
  CHECK_RC(aioc_taskgroup_join(g), -EIO);
  CHECK_STR(aioc_error_message(), "a failed");
  CHECK_DBL(aioc_time(), 1.0, EPS);
  CHECK_EQ(aioc_task_cancelling(aioc_current_task()), 0);
  int code = 0;
  const char *msg = NULL;
  CHECK_EQ(aioc_taskgroup_errors(g, 0, &code, &msg), 2);
  CHECK_RC(code, -EIO);
  CHECK_STR(msg, "a failed");
  CHECK_EQ(aioc_taskgroup_errors(g, 1, &code, &msg), 2);
  CHECK_RC(code, -EPIPE);
  CHECK_STR(msg, "b cleanup");
  CHECK_RC(b.sleep_rc, -ECANCELED);
  CHECK_RC(c.sleep_rc, -ECANCELED);
  CHECK(b.cleaned && c.cleaned);
  CHECK_DBL(c.woke_at, 1.0, EPS);
  CHECK_EQ(aioc_future_state(fut(tc)), AIOC_FUTURE_CANCELLED);
  CHECK_EQ(aioc_future_state(fut(tb)), AIOC_FUTURE_DONE);
  /* The owner is no longer cancelled: it can wait again. */
  CHECK_RC(aioc_sleep(1.0), 0);
  CHECK_DBL(aioc_time(), 2.0, EPS);
  /* Spawning after join is refused. */
  CHECK_RC(aioc_taskgroup_spawn(g, NULL, child_fn, &c, NULL), AIOC_ESTATE);
  aioc_taskgroup_free(g);
  aioc_task_unref(ta);
  aioc_task_unref(tb);
  aioc_task_unref(tc);
  return 0;
}

TEST(test_taskgroup_failure) {
  CHECK_RC(run_main(tg_fail_main, NULL, NULL), 0);
}

/* A task fails while the owner is already in join: the siblings are
 * cancelled, join returns the error when they have all finished. */
static int tg_fail_in_join_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_taskgroup *g;
  CHECK_RC(aioc_taskgroup_new(&g), 0);
  child a = mk(10.0, 0), b = mk_fail(2.0, -ENOSPC, "full"), c = mk(0.5, 5);
  CHECK_RC(aioc_taskgroup_spawn(g, NULL, child_fn, &a, NULL), 0);
  CHECK_RC(aioc_taskgroup_spawn(g, NULL, child_fn, &b, NULL), 0);
  CHECK_RC(aioc_taskgroup_spawn(g, NULL, child_fn, &c, NULL), 0);
  CHECK_RC(aioc_taskgroup_join(g), -ENOSPC);
  CHECK_DBL(aioc_time(), 2.0, EPS);
  CHECK_RC(a.sleep_rc, -ECANCELED);
  CHECK(a.cleaned);
  CHECK_RC(c.sleep_rc, 0);
  CHECK_EQ(aioc_taskgroup_errors(g, 0, NULL, NULL), 1);
  CHECK_EQ(aioc_task_cancelling(aioc_current_task()), 0);
  aioc_taskgroup_free(g);
  CHECK_RC(aioc_sleep(1.0), 0);
  return 0;
}

TEST(test_taskgroup_failure_in_join) {
  CHECK_RC(run_main(tg_fail_in_join_main, NULL, NULL), 0);
}

/* The owner is cancelled from outside while joining: the children are
 * cancelled and waited for, join returns -ECANCELED. */
typedef struct tg_owner {
  child cs[2];
  aioc_task *ts[2];
  int join_rc;
  double joined_at;
  int spawn_after_rc;
} tg_owner;

static int tg_owner_fn(void *arg, void **result) {
  (void)result;
  tg_owner *o = arg;
  aioc_taskgroup *g;
  CHECK_RC(aioc_taskgroup_new(&g), 0);
  for (int i = 0; i < 2; i++)
    CHECK_RC(aioc_taskgroup_spawn(g, &o->ts[i], child_fn, &o->cs[i], NULL), 0);
  o->join_rc = aioc_taskgroup_join(g);
  o->joined_at = aioc_time();
  o->spawn_after_rc = aioc_taskgroup_spawn(g, NULL, child_fn, &o->cs[0], NULL);
  aioc_taskgroup_free(g);
  return o->join_rc;
}

static int tg_outside_cancel_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  tg_owner o;
  memset(&o, 0, sizeof o);
  o.cs[0] = mk(5.0, 1);
  o.cs[1] = mk(10.0, 2);
  o.join_rc = 12345;
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, tg_owner_fn, &o), 0);
  CHECK_RC(aioc_sleep(1.0), 0);
  CHECK_EQ(aioc_task_cancel(t, "from outside"), 1);
  CHECK_RC(aioc_task_await(t, NULL), -ECANCELED);
  CHECK_RC(o.join_rc, -ECANCELED);
  CHECK_DBL(o.joined_at, 1.0, EPS);
  CHECK_RC(o.spawn_after_rc, AIOC_ESTATE);
  for (int i = 0; i < 2; i++) {
    CHECK_RC(o.cs[i].sleep_rc, -ECANCELED);
    CHECK(o.cs[i].cleaned);
    CHECK_DBL(o.cs[i].woke_at, 1.0, EPS);
    CHECK_EQ(aioc_future_state(fut(o.ts[i])), AIOC_FUTURE_CANCELLED);
    aioc_task_unref(o.ts[i]);
  }
  aioc_task_unref(t);
  return 0;
}

TEST(test_taskgroup_owner_cancelled) {
  CHECK_RC(run_main(tg_outside_cancel_main, NULL, NULL), 0);
}

/* join by a task that does not own the group: AIOC_ESTATE. */
typedef struct tg_other {
  aioc_taskgroup *g;
  int rc;
} tg_other;
static int tg_other_join_fn(void *arg, void **result) {
  (void)result;
  tg_other *o = arg;
  o->rc = aioc_taskgroup_join(o->g);
  return 0;
}

static int tg_not_owner_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  tg_other o = {.rc = 12345};
  CHECK_RC(aioc_taskgroup_new(&o.g), 0);
  child c = mk(1.0, 1);
  CHECK_RC(aioc_taskgroup_spawn(o.g, NULL, child_fn, &c, NULL), 0);
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, tg_other_join_fn, &o), 0);
  CHECK_RC(aioc_task_await(t, NULL), 0);
  aioc_task_unref(t);
  CHECK_RC(o.rc, AIOC_ESTATE);
  CHECK_RC(aioc_taskgroup_join(o.g), 0);
  CHECK_DBL(aioc_time(), 1.0, EPS);
  aioc_taskgroup_free(o.g);
  return 0;
}

TEST(test_taskgroup_not_owner) {
  CHECK_RC(run_main(tg_not_owner_main, NULL, NULL), 0);
}

/* ---- deadline scopes ---------------------------------------------------- */

static int timeout_scope_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_scope *s;
  /* Expires. */
  CHECK_RC(aioc_timeout_enter(&s, 2.0), 0);
  CHECK_DBL(aioc_scope_deadline(s), 2.0, EPS);
  CHECK(!aioc_scope_is_expired(s));
  CHECK_RC(aioc_sleep(5.0), -ETIMEDOUT);
  CHECK_DBL(aioc_time(), 2.0, EPS);
  CHECK(aioc_scope_is_expired(s));
  /* Level-triggered: every later wait inside fails too, at once. */
  CHECK_RC(aioc_sleep(1.0), -ETIMEDOUT);
  CHECK_RC(aioc_sleep(0), -ETIMEDOUT);
  CHECK_RC(aioc_yield(), -ETIMEDOUT);
  CHECK_DBL(aioc_time(), 2.0, EPS);
  CHECK_RC(aioc_scope_exit(s), -ETIMEDOUT);
  aioc_scope_free(s);
  /* Outside it, waits work again. */
  CHECK_RC(aioc_sleep(1.0), 0);
  CHECK_DBL(aioc_time(), 3.0, EPS);

  /* Does not expire. */
  CHECK_RC(aioc_timeout_enter(&s, 5.0), 0);
  CHECK_RC(aioc_sleep(1.0), 0);
  CHECK_RC(aioc_scope_exit(s), 0);
  aioc_scope_free(s);
  CHECK_DBL(aioc_time(), 4.0, EPS);
  /* The disarmed deadline does not fire later. */
  CHECK_RC(aioc_sleep(10.0), 0);
  CHECK_DBL(aioc_time(), 14.0, EPS);

  /* Absolute deadline. */
  CHECK_RC(aioc_timeout_at_enter(&s, 15.5), 0);
  CHECK_DBL(aioc_scope_deadline(s), 15.5, EPS);
  CHECK_RC(aioc_sleep(3.0), -ETIMEDOUT);
  CHECK_DBL(aioc_time(), 15.5, EPS);
  CHECK_RC(aioc_scope_exit(s), -ETIMEDOUT);
  aioc_scope_free(s);

  /* AIOC_FOREVER: no deadline. */
  CHECK_RC(aioc_timeout_enter(&s, AIOC_FOREVER), 0);
  CHECK(aioc_scope_deadline(s) == AIOC_FOREVER);
  CHECK_RC(aioc_sleep(100.0), 0);
  CHECK_RC(aioc_scope_exit(s), 0);
  aioc_scope_free(s);
  CHECK_DBL(aioc_time(), 115.5, EPS);

  /* Zero: expires at the first wait. */
  CHECK_RC(aioc_timeout_enter(&s, 0.0), 0);
  CHECK_RC(aioc_sleep(1.0), -ETIMEDOUT);
  CHECK_RC(aioc_scope_exit(s), -ETIMEDOUT);
  aioc_scope_free(s);
  CHECK_DBL(aioc_time(), 115.5, EPS);

  /* Bad input. */
  s = (aioc_scope *)&s;
  CHECK_RC(aioc_timeout_enter(&s, -1.0), -EINVAL);
  CHECK(s == NULL);
  CHECK_RC(aioc_timeout_enter(&s, NAN), -EINVAL);
  CHECK_RC(aioc_move_on_enter(&s, -1.0), -EINVAL);
  CHECK_RC(aioc_shield_enter(&s, NAN), -EINVAL);
  CHECK_RC(aioc_timeout_at_enter(&s, NAN), -EINVAL);
  CHECK_RC(aioc_timeout_enter(NULL, 1.0), -EINVAL);
  CHECK_RC(aioc_scope_exit(NULL), -EINVAL);
  CHECK_RC(aioc_sleep(1.0), 0); /* nothing was left open */
  return 0;
}

TEST(test_timeout_scope) {
  CHECK_RC(run_main(timeout_scope_main, NULL, NULL), 0);
  aioc_scope *s = (aioc_scope *)&s;
  CHECK_RC(aioc_timeout_enter(&s, 1.0), AIOC_ENOTASK);
  CHECK(s == NULL);
  CHECK_RC(aioc_move_on_enter(&s, 1.0), AIOC_ENOTASK);
  CHECK_RC(aioc_shield_enter(&s, 1.0), AIOC_ENOTASK);
  CHECK_RC(aioc_timeout_at_enter(&s, 1.0), AIOC_ENOTASK);
}

static int nested_scopes_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_scope *outer, *inner;
  /* The outer deadline is earlier: it wins. */
  CHECK_RC(aioc_timeout_enter(&outer, 2.0), 0);
  CHECK_RC(aioc_timeout_enter(&inner, 5.0), 0);
  CHECK_RC(aioc_sleep(10.0), -ETIMEDOUT);
  CHECK_DBL(aioc_time(), 2.0, EPS);
  CHECK(!aioc_scope_is_expired(inner));
  CHECK(aioc_scope_is_expired(outer));
  CHECK_RC(aioc_scope_exit(inner), 0); /* not its own deadline */
  aioc_scope_free(inner);
  CHECK_RC(aioc_sleep(1.0), -ETIMEDOUT); /* still inside outer */
  CHECK_RC(aioc_scope_exit(outer), -ETIMEDOUT);
  aioc_scope_free(outer);
  CHECK_DBL(aioc_time(), 2.0, EPS);

  /* The inner deadline is earlier: it wins; the outer goes on. */
  CHECK_RC(aioc_timeout_enter(&outer, 5.0), 0);
  CHECK_RC(aioc_timeout_enter(&inner, 1.0), 0);
  CHECK_RC(aioc_sleep(10.0), -ETIMEDOUT);
  CHECK_DBL(aioc_time(), 3.0, EPS);
  CHECK(aioc_scope_is_expired(inner));
  CHECK(!aioc_scope_is_expired(outer));
  CHECK_RC(aioc_scope_exit(inner), -ETIMEDOUT);
  aioc_scope_free(inner);
  CHECK_RC(aioc_sleep(1.0), 0);
  CHECK_DBL(aioc_time(), 4.0, EPS);
  CHECK_RC(aioc_sleep(10.0), -ETIMEDOUT);
  CHECK_DBL(aioc_time(), 7.0, EPS);
  CHECK_RC(aioc_scope_exit(outer), -ETIMEDOUT);
  aioc_scope_free(outer);

  /* Exiting out of order: -EINVAL, nothing changes. */
  CHECK_RC(aioc_timeout_enter(&outer, 10.0), 0);
  CHECK_RC(aioc_timeout_enter(&inner, 1.0), 0);
  CHECK_RC(aioc_scope_exit(outer), -EINVAL);
  CHECK_RC(aioc_sleep(5.0), -ETIMEDOUT); /* inner still in force */
  CHECK_DBL(aioc_time(), 8.0, EPS);
  CHECK_RC(aioc_scope_exit(inner), -ETIMEDOUT);
  aioc_scope_free(inner);
  CHECK_RC(aioc_scope_exit(outer), 0);
  aioc_scope_free(outer);
  CHECK_RC(aioc_sleep(20.0), 0); /* outer's deadline (17) is gone */
  CHECK_DBL(aioc_time(), 28.0, EPS);
  return 0;
}

TEST(test_nested_scopes) {
  CHECK_RC(run_main(nested_scopes_main, NULL, NULL), 0);
}

/* A scope is exited only by the task that entered it. */
typedef struct foreign {
  aioc_scope *s;
  int rc;
} foreign;
static int foreign_exit_fn(void *arg, void **result) {
  (void)result;
  foreign *f = arg;
  f->rc = aioc_scope_exit(f->s); /* refused: f->s stays open */
  return 0;
}

static int foreign_exit_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  foreign f = {.rc = 12345};
  CHECK_RC(aioc_timeout_enter(&f.s, 3.0), 0);
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, foreign_exit_fn, &f), 0);
  CHECK_RC(aioc_task_await(t, NULL), 0);
  aioc_task_unref(t);
  CHECK_RC(f.rc, -EINVAL);
  CHECK_RC(aioc_sleep(5.0), -ETIMEDOUT);
  CHECK_DBL(aioc_time(), 3.0, EPS);
  CHECK_RC(aioc_scope_exit(f.s), -ETIMEDOUT);
  aioc_scope_free(f.s);
  return 0;
}

TEST(test_scope_exit_by_other_task) {
  CHECK_RC(run_main(foreign_exit_main, NULL, NULL), 0);
}

static int move_on_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_scope *s;
  CHECK_RC(aioc_move_on_enter(&s, 2.0), 0);
  CHECK_RC(aioc_sleep(5.0), -ETIMEDOUT);
  CHECK_DBL(aioc_time(), 2.0, EPS);
  CHECK(aioc_scope_is_expired(s));
  CHECK_RC(aioc_scope_exit(s), 0);
  aioc_scope_free(s);
  CHECK_RC(aioc_sleep(1.0), 0);
  CHECK_DBL(aioc_time(), 3.0, EPS);
  /* Not expiring. */
  CHECK_RC(aioc_move_on_enter(&s, 2.0), 0);
  CHECK_RC(aioc_sleep(1.0), 0);
  CHECK(!aioc_scope_is_expired(s));
  CHECK_RC(aioc_scope_exit(s), 0);
  aioc_scope_free(s);
  CHECK_DBL(aioc_time(), 4.0, EPS);
  /* Inside a timeout scope whose deadline is later. */
  aioc_scope *outer;
  CHECK_RC(aioc_timeout_enter(&outer, 10.0), 0);
  CHECK_RC(aioc_move_on_enter(&s, 1.0), 0);
  CHECK_RC(aioc_sleep(5.0), -ETIMEDOUT);
  CHECK_RC(aioc_scope_exit(s), 0);
  aioc_scope_free(s);
  CHECK(!aioc_scope_is_expired(outer));
  CHECK_RC(aioc_sleep(1.0), 0);
  CHECK_RC(aioc_scope_exit(outer), 0);
  aioc_scope_free(outer);
  CHECK_DBL(aioc_time(), 6.0, EPS);
  return 0;
}

TEST(test_move_on) {
  CHECK_RC(run_main(move_on_main, NULL, NULL), 0);
}

static int reschedule_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_scope *s;
  /* Later. */
  CHECK_RC(aioc_timeout_enter(&s, 2.0), 0);
  CHECK_RC(aioc_scope_reschedule(s, aioc_time() + 10.0), 0);
  CHECK_DBL(aioc_scope_deadline(s), 10.0, EPS);
  CHECK_RC(aioc_sleep(5.0), 0);
  CHECK_DBL(aioc_time(), 5.0, EPS);
  /* Earlier, from a running wait's point of view: moved to 6. */
  CHECK_RC(aioc_scope_reschedule(s, 6.0), 0);
  CHECK_DBL(aioc_scope_deadline(s), 6.0, EPS);
  CHECK_RC(aioc_sleep(5.0), -ETIMEDOUT);
  CHECK_DBL(aioc_time(), 6.0, EPS);
  /* Expired: too late to move it. */
  CHECK_RC(aioc_scope_reschedule(s, 100.0), AIOC_ESTATE);
  CHECK_RC(aioc_scope_exit(s), -ETIMEDOUT);
  aioc_scope_free(s);

  /* Removed (AIOC_FOREVER), then set again. */
  CHECK_RC(aioc_timeout_enter(&s, 1.0), 0);
  CHECK_RC(aioc_scope_reschedule(s, AIOC_FOREVER), 0);
  CHECK(aioc_scope_deadline(s) == AIOC_FOREVER);
  CHECK_RC(aioc_sleep(50.0), 0);
  CHECK_DBL(aioc_time(), 56.0, EPS);
  CHECK_RC(aioc_scope_reschedule(s, 57.0), 0);
  CHECK_RC(aioc_sleep(50.0), -ETIMEDOUT);
  CHECK_DBL(aioc_time(), 57.0, EPS);
  CHECK_RC(aioc_scope_exit(s), -ETIMEDOUT);
  aioc_scope_free(s);

  /* To the past: expires at the next wait, without moving the clock. */
  CHECK_RC(aioc_move_on_enter(&s, 5.0), 0);
  CHECK_RC(aioc_scope_reschedule(s, 1.0), 0);
  CHECK_RC(aioc_sleep(3.0), -ETIMEDOUT);
  CHECK_DBL(aioc_time(), 57.0, EPS);
  CHECK(aioc_scope_is_expired(s));
  CHECK_RC(aioc_scope_exit(s), 0);
  aioc_scope_free(s);

  CHECK_RC(aioc_scope_reschedule(NULL, 1.0), -EINVAL);
  CHECK_RC(aioc_timeout_enter(&s, 1.0), 0);
  CHECK_RC(aioc_scope_reschedule(s, NAN), -EINVAL);
  CHECK_DBL(aioc_scope_deadline(s), 58.0, EPS);
  CHECK_RC(aioc_scope_exit(s), 0);
  aioc_scope_free(s);
  return 0;
}

TEST(test_scope_reschedule) {
  CHECK_RC(run_main(reschedule_main, NULL, NULL), 0);
}

/* A deadline already past when the scope is entered (0 seconds, a past
 * time) or rescheduled expires it at once: the first suspension point
 * inside fails, aioc_yield() and aioc_sleep(0) included (asyncio: `async
 * with timeout(0): await sleep(0)` raises TimeoutError). A call whose
 * answer is there returns it without checks. */
static int sleeps_under_scope(void *arg, void **result) {
  (void)result;
  aioc_scope **sp = arg;
  CHECK_RC(aioc_timeout_enter(sp, 10.0), 0);
  int rc = aioc_sleep(5.0);
  IGNORE_RC(aioc_scope_exit(*sp));
  return rc;
}

static int expired_at_entry_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_scope *s;
  aioc_future *done;
  CHECK_RC(aioc_future_new(&done, NULL), 0);
  CHECK_RC(aioc_future_set_result(done, AIOC_INT(4), NULL), 0);
  void *r;

  /* 0 seconds: yield, sleep(0) and sleep(1) all fail, no time passes. */
  CHECK_RC(aioc_timeout_enter(&s, 0.0), 0);
  CHECK(aioc_scope_is_expired(s));
  CHECK_RC(aioc_yield(), -ETIMEDOUT);
  CHECK_RC(aioc_sleep(0), -ETIMEDOUT);
  CHECK_RC(aioc_sleep(1.0), -ETIMEDOUT);
  CHECK_RC(aioc_await(done, &r), 0); /* the answer is there: no check */
  CHECK_EQ(AIOC_TO_INT(r), 4);
  CHECK_RC(aioc_scope_exit(s), -ETIMEDOUT);
  aioc_scope_free(s);
  CHECK_DBL(aioc_time(), 0.0, EPS);

  /* The first wait inside is the one that fails. */
  CHECK_RC(aioc_timeout_enter(&s, 0.0), 0);
  CHECK_RC(aioc_sleep(0), -ETIMEDOUT);
  IGNORE_RC(aioc_scope_exit(s));
  aioc_scope_free(s);

  /* A past absolute time, and exactly now. */
  CHECK_RC(aioc_sleep(2.0), 0);
  CHECK_RC(aioc_timeout_at_enter(&s, aioc_time() - 1.0), 0);
  CHECK_RC(aioc_yield(), -ETIMEDOUT);
  CHECK_DBL(aioc_scope_deadline(s), 1.0, EPS);
  CHECK_RC(aioc_scope_exit(s), -ETIMEDOUT);
  aioc_scope_free(s);
  CHECK_RC(aioc_timeout_at_enter(&s, aioc_time()), 0);
  CHECK_RC(aioc_yield(), -ETIMEDOUT);
  CHECK_RC(aioc_scope_exit(s), -ETIMEDOUT);
  aioc_scope_free(s);

  /* move_on: the waits fail, its exit does not. */
  CHECK_RC(aioc_move_on_enter(&s, 0.0), 0);
  CHECK_RC(aioc_yield(), -ETIMEDOUT);
  CHECK_RC(aioc_scope_exit(s), 0);
  CHECK(aioc_scope_is_expired(s));
  aioc_scope_free(s);

  /* A shield of 0 seconds. */
  CHECK_RC(aioc_shield_enter(&s, 0.0), 0);
  CHECK_RC(aioc_sleep(0), -ETIMEDOUT);
  CHECK_RC(aioc_scope_exit(s), -ETIMEDOUT);
  aioc_scope_free(s);

  /* Rescheduled into the past: expired at once. */
  CHECK_RC(aioc_timeout_enter(&s, 10.0), 0);
  CHECK_RC(aioc_yield(), 0);
  CHECK_RC(aioc_scope_reschedule(s, aioc_time() - 0.5), 0);
  CHECK(aioc_scope_is_expired(s));
  CHECK_DBL(aioc_scope_deadline(s), 1.5, EPS);
  CHECK_RC(aioc_yield(), -ETIMEDOUT);
  CHECK_RC(aioc_scope_reschedule(s, 100.0), AIOC_ESTATE);
  CHECK_RC(aioc_scope_exit(s), -ETIMEDOUT);
  aioc_scope_free(s);

  /* Rescheduled into the past by another task while its owner waits:
   * the owner is woken at once with -ETIMEDOUT. */
  aioc_scope *other = NULL;
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, sleeps_under_scope, &other), 0);
  CHECK_RC(aioc_sleep(1.0), 0);
  CHECK_RC(aioc_scope_reschedule(other, aioc_time()), 0);
  CHECK_RC(aioc_task_await(t, NULL), -ETIMEDOUT);
  CHECK_DBL(aioc_time(), 3.0, EPS);
  aioc_task_unref(t);
  aioc_scope_free(other);

  /* A deadline still ahead lets the first yield through. */
  CHECK_RC(aioc_timeout_enter(&s, 1.0), 0);
  CHECK_RC(aioc_yield(), 0);
  CHECK_RC(aioc_sleep(0), 0);
  CHECK_RC(aioc_scope_exit(s), 0);
  aioc_scope_free(s);
  aioc_future_unref(done);
  return 0;
}

TEST(test_scope_expired_at_entry) {
  CHECK_RC(run_main(expired_at_entry_main, NULL, NULL), 0);
}

/* A cancelled task can still wait inside a shield; the shield's own
 * deadline gives -ETIMEDOUT; outside it the cancellation is back. */
typedef struct shielded {
  int rc1, rc2, rc3, exit_rc, rc4;
  double t1, t2, t3;
} shielded;

static int shielded_fn(void *arg, void **result) {
  (void)result;
  shielded *s = arg;
  s->rc1 = aioc_sleep(10.0); /* cancelled at 1 */
  s->t1 = aioc_time();
  aioc_scope *sh;
  CHECK_RC(aioc_shield_enter(&sh, 3.0), 0);
  CHECK_DBL(aioc_scope_deadline(sh), 4.0, EPS);
  s->rc2 = aioc_sleep(1.0); /* works: shielded */
  s->t2 = aioc_time();
  s->rc3 = aioc_sleep(10.0); /* the shield's deadline: 4 */
  s->t3 = aioc_time();
  s->exit_rc = aioc_scope_exit(sh);
  aioc_scope_free(sh);
  s->rc4 = aioc_sleep(1.0); /* cancelled again */
  return s->rc4;
}

static int shield_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  shielded s;
  memset(&s, 0x55, sizeof s);
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, shielded_fn, &s), 0);
  CHECK_RC(aioc_sleep(1.0), 0);
  CHECK_EQ(aioc_task_cancel(t, NULL), 1);
  CHECK_RC(aioc_task_await(t, NULL), -ECANCELED);
  CHECK_RC(s.rc1, -ECANCELED);
  CHECK_DBL(s.t1, 1.0, EPS);
  CHECK_RC(s.rc2, 0);
  CHECK_DBL(s.t2, 2.0, EPS);
  CHECK_RC(s.rc3, -ETIMEDOUT);
  CHECK_DBL(s.t3, 4.0, EPS);
  CHECK_RC(s.exit_rc, -ETIMEDOUT);
  CHECK_RC(s.rc4, -ECANCELED);
  CHECK_DBL(aioc_time(), 4.0, EPS);
  aioc_task_unref(t);
  return 0;
}

TEST(test_shield_scope) {
  CHECK_RC(run_main(shield_main, NULL, NULL), 0);
}

/* Cancellation arriving while the task waits inside a shield does not
 * interrupt that wait; it takes effect after the shield. An outer deadline
 * does not reach inside the shield either. */
typedef struct shielded2 {
  int rc1, exit_rc, rc2;
  double t1, t2;
} shielded2;

static int shielded2_fn(void *arg, void **result) {
  (void)result;
  shielded2 *s = arg;
  aioc_scope *sh;
  CHECK_RC(aioc_shield_enter(&sh, AIOC_FOREVER), 0);
  s->rc1 = aioc_sleep(3.0); /* cancel arrives at 1: not interrupted */
  s->t1 = aioc_time();
  s->exit_rc = aioc_scope_exit(sh);
  aioc_scope_free(sh);
  s->rc2 = aioc_sleep(1.0);
  s->t2 = aioc_time();
  return s->rc2;
}

static int shield_main2(void *arg, void **result) {
  (void)arg;
  (void)result;
  shielded2 s;
  memset(&s, 0x55, sizeof s);
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, shielded2_fn, &s), 0);
  CHECK_RC(aioc_sleep(1.0), 0);
  CHECK_EQ(aioc_task_cancel(t, NULL), 1);
  CHECK_RC(aioc_task_await(t, NULL), -ECANCELED);
  CHECK_RC(s.rc1, 0);
  CHECK_DBL(s.t1, 3.0, EPS);
  CHECK_RC(s.exit_rc, 0);
  CHECK_RC(s.rc2, -ECANCELED);
  CHECK_DBL(s.t2, 3.0, EPS);
  aioc_task_unref(t);

  /* An outer deadline waits for the shield to end. */
  aioc_scope *outer, *sh;
  CHECK_RC(aioc_timeout_enter(&outer, 1.0), 0); /* deadline 4 */
  CHECK_RC(aioc_shield_enter(&sh, 10.0), 0);
  CHECK_RC(aioc_sleep(3.0), 0);
  CHECK_DBL(aioc_time(), 6.0, EPS);
  CHECK_RC(aioc_scope_exit(sh), 0);
  aioc_scope_free(sh);
  CHECK(aioc_scope_is_expired(outer));
  CHECK_RC(aioc_sleep(1.0), -ETIMEDOUT);
  CHECK_RC(aioc_scope_exit(outer), -ETIMEDOUT);
  aioc_scope_free(outer);
  CHECK_DBL(aioc_time(), 6.0, EPS);
  return 0;
}

TEST(test_shield_blocks_cancel_and_outer_deadline) {
  CHECK_RC(run_main(shield_main2, NULL, NULL), 0);
}

/* ---- with_timeout ------------------------------------------------------- */

static int body_sleep(void *arg) {
  double d = *(double *)arg;
  int rc = aioc_sleep(d);
  if (rc < 0) return rc;
  log_add((int)d);
  return 0;
}

static int body_fail(void *arg) {
  (void)arg;
  return aioc_error(-EPIPE, "body failed");
}

static int with_timeout_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  log_reset();
  double d1 = 1.0, d5 = 5.0;
  CHECK_RC(aioc_with_timeout(2.0, body_sleep, &d1), 0);
  CHECK_DBL(aioc_time(), 1.0, EPS);
  CHECK_EQ(g_nlog, 1);
  CHECK_RC(aioc_with_timeout(2.0, body_sleep, &d5), -ETIMEDOUT);
  CHECK_DBL(aioc_time(), 3.0, EPS);
  CHECK_EQ(g_nlog, 1);
  CHECK_RC(aioc_with_timeout(2.0, body_fail, NULL), -EPIPE);
  CHECK_STR(aioc_error_message(), "body failed");
  CHECK_RC(aioc_with_timeout(-1.0, body_sleep, &d1), -EINVAL);
  CHECK_RC(aioc_with_timeout(1.0, NULL, NULL), -EINVAL);
  CHECK_RC(aioc_with_timeout(AIOC_FOREVER, body_sleep, &d5), 0);
  CHECK_DBL(aioc_time(), 8.0, EPS);
  /* No scope was left open. */
  CHECK_RC(aioc_sleep(10.0), 0);
  CHECK_DBL(aioc_time(), 18.0, EPS);
  return 0;
}

TEST(test_with_timeout) {
  CHECK_RC(run_main(with_timeout_main, NULL, NULL), 0);
}

/* ---- a timer that cannot be armed --------------------------------------- */

/* A guard 1000 s away completes the future a wait that went ahead without
 * its timer would otherwise hang on; the rest fills the heap. */
static void guard_complete(void *arg) {
  IGNORE_RC(aioc_future_set_result(arg, NULL, NULL));
}
static void nop_cb(void *arg) { (void)arg; }

static void fill_timer_heap(aioc_future *guarded) {
  aioc_loop *loop = aioc_get_running_loop();
  CHECK_RC(aioc_call_later(NULL, loop, 1000, guard_complete, guarded), 0);
  for (int i = 1; loop->nheap < loop->capheap; i++)
    CHECK_RC(aioc_call_later(NULL, loop, 1000 + i, nop_cb, NULL), 0);
}

static int timer_nomem_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_future *f;
  CHECK_RC(aioc_future_new(&f, NULL), 0);
  aioc_scope *s;
  /* A scope with no deadline yet, so that its reschedule needs room. */
  CHECK_RC(aioc_timeout_enter(&s, AIOC_FOREVER), 0);
  fill_timer_heap(f);
  check_fail_grow = true;
  CHECK_RC(aioc_sleep(5.0), -ENOMEM);
  aioc_scope *s2 = (aioc_scope *)&s2;
  CHECK_RC(aioc_timeout_enter(&s2, 5.0), -ENOMEM);
  CHECK(s2 == NULL);
  CHECK_RC(aioc_wait_for(f, NULL, 5.0), -ENOMEM);
  aioc_future *done[1], *pending[1];
  size_t nd = 9, np = 9;
  CHECK_RC(aioc_wait(&f, 1, AIOC_WAIT_ALL_COMPLETED, done, &nd, pending, &np,
                     5.0),
           -ENOMEM);
  aioc_as_completed *it;
  CHECK_RC(aioc_as_completed_new(&it, &f, 1, AIOC_FOREVER), 0);
  aioc_future *got;
  CHECK_RC(aioc_as_completed_next(it, &got, 5.0), -ENOMEM);
  aioc_as_completed_free(it);
  CHECK_RC(aioc_scope_reschedule(s, aioc_time() + 5.0), -ENOMEM);
  CHECK(aioc_scope_deadline(s) == AIOC_FOREVER); /* none was armed */
  check_fail_grow = false;
  CHECK_DBL(aioc_time(), 0.0, EPS);
  CHECK_EQ(aioc_future_state(f), AIOC_FUTURE_PENDING);
  CHECK_RC(aioc_scope_exit(s), 0);
  aioc_scope_free(s);
  /* What needs no timer still works; the guard ends the wait. */
  CHECK_RC(aioc_await(f, NULL), 0);
  CHECK_DBL(aioc_time(), 1000.0, EPS);
  aioc_future_unref(f);
  return 0;
}

/* A wait whose timeout cannot be armed (the timer heap cannot grow) fails
 * with -ENOMEM at once, never waits without limit. */
TEST(test_timer_nomem) {
  aioc_set_allocator(check_grow_failing_realloc, NULL);
  CHECK_RC(run_main(timer_nomem_main, NULL, NULL), 0);
  aioc_set_allocator(NULL, NULL);
}

/* ---- aioc_run_ex with the virtual clock --------------------------------- */

static int run_ex_main(void *arg, void **result) {
  (void)arg;
  child c = mk(1000.0, 9);
  aioc_task *t = spawn_child(&c);
  void *r;
  int rc = aioc_wait_for(fut(t), &r, 2000.0);
  aioc_task_unref(t);
  if (rc < 0) return rc;
  CHECK_DBL(aioc_time(), 1000.0, EPS);
  *result = r;
  return 0;
}

TEST(test_run_ex_virtual) {
  aioc_run_options o;
  memset(&o, 0, sizeof o);
  o.loop.virtual_clock = 1;
  void *r = NULL;
  CHECK_RC(aioc_run_ex(run_ex_main, NULL, &r, &o), 0);
  CHECK_EQ(AIOC_TO_INT(r), 9);
}

/* Exit and free are two steps: after exit the scope is still readable
 * (asyncio's cm.expired() after the block), and its deadline no longer
 * applies. */
static int scope_after_exit_main(void *arg, void **result) {
  (void)arg, (void)result;
  aioc_scope *s;
  CHECK_RC(aioc_timeout_enter(&s, 1.0), 0);
  CHECK_RC(aioc_sleep(2.0), -ETIMEDOUT);
  CHECK_RC(aioc_scope_exit(s), -ETIMEDOUT);
  CHECK(aioc_scope_is_expired(s));
  CHECK_DBL(aioc_scope_deadline(s), 1.0, EPS);
  CHECK_RC(aioc_scope_exit(s), -EINVAL);                /* exited already */
  CHECK_RC(aioc_scope_reschedule(s, 5.0), AIOC_ESTATE); /* likewise */
  CHECK_RC(aioc_sleep(1.0), 0); /* its deadline no longer applies */
  aioc_scope_free(s);
  aioc_scope_free(NULL); /* harmless */
  return 0;
}

TEST(test_scope_readable_after_exit) {
  CHECK_RC(run_main(scope_after_exit_main, NULL, NULL), 0);
}

/* Freeing a scope that is still open takes it out of its task's scopes:
 * its deadline stops applying, the scopes around it keep theirs. */
static int scope_free_open_main(void *arg, void **result) {
  (void)arg, (void)result;
  aioc_scope *outer, *inner;
  CHECK_RC(aioc_timeout_enter(&outer, 10.0), 0);
  CHECK_RC(aioc_timeout_enter(&inner, 1.0), 0);
  aioc_scope_free(inner); /* open, and the innermost */
  CHECK_RC(aioc_sleep(5.0), 0);
  CHECK_DBL(aioc_time(), 5.0, EPS);
  CHECK_RC(aioc_sleep(10.0), -ETIMEDOUT); /* outer still in force */
  CHECK_RC(aioc_scope_exit(outer), -ETIMEDOUT);
  aioc_scope_free(outer);
  return 0;
}

TEST(test_scope_free_while_open) {
  CHECK_RC(run_main(scope_free_open_main, NULL, NULL), 0);
}

/* A scope its task left open ends with the task and is still its owner's
 * to free (nothing read from the dead task's stack). */
static aioc_scope *left_open;
static int leaves_scope_open_fn(void *arg, void **result) {
  (void)arg, (void)result;
  return aioc_timeout_enter(&left_open, 3.0);
}

static int scope_left_open_main(void *arg, void **result) {
  (void)arg, (void)result;
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, leaves_scope_open_fn, NULL), 0);
  CHECK_RC(aioc_task_await(t, NULL), 0);
  aioc_task_unref(t);
  CHECK(left_open != NULL);
  CHECK_RC(aioc_sleep(5.0), 0); /* its timer was disarmed at the end */
  CHECK(!aioc_scope_is_expired(left_open));
  aioc_scope_free(left_open);
  return 0;
}

TEST(test_scope_left_open_by_task) {
  CHECK_RC(run_main(scope_left_open_main, NULL, NULL), 0);
}

CHECK_MAIN(30)

/* Generators, the iterator interface, per-item timeouts, helpers and
 * async context managers. Timings on the virtual clock. */
#include <fenv.h>
#include <math.h>

#include "check.h"
#include "task/task.h" /* the loop's timer heap */
#include "timer_fill.h"

static aioc_run_options vopts(void) {
  aioc_run_options o = {.loop.virtual_clock = 1};
  return o;
}

/* ---- bodies ---- */

static int produced; /* how far the body got: laziness */
static int cleanups; /* cleanup ran (exactly once is checked) */

/* Yields 1..n; counts cleanup however it ends. */
static int count_to(void *arg, aioc_gen *g) {
  int n = (int)AIOC_TO_INT(arg);
  int rc = 0;
  for (int i = 1; i <= n && rc == 0; i++) {
    produced = i;
    rc = aioc_gen_yield(g, AIOC_INT(i), NULL);
  }
  cleanups++;
  return rc == AIOC_EGENEXIT ? 0 : rc;
}

/* Sleeps pauses[i] before yielding i; the array ends with a negative. */
static int paced(void *arg, aioc_gen *g) {
  const double *pauses = arg;
  int rc = 0;
  for (int i = 0; pauses[i] >= 0 && rc == 0; i++) {
    rc = aioc_sleep(pauses[i]);
    if (rc == 0) rc = aioc_gen_yield(g, AIOC_INT(i), NULL);
  }
  /* Cleanup may wait: it runs in a shield. */
  aioc_scope *s;
  CHECK_RC(aioc_shield_enter(&s, 1), 0);
  IGNORE_RC(aioc_sleep(0.01));
  IGNORE_RC(aioc_scope_exit(s));
  aioc_scope_free(s);
  cleanups++;
  return rc == AIOC_EGENEXIT ? 0 : rc;
}

/* ---- basics ---- */

static int basics_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_gen *g;
  produced = cleanups = 0;
  CHECK_RC(aioc_gen_new(&g, count_to, AIOC_INT(3), NULL), 0);
  CHECK_EQ(produced, 0); /* lazy: nothing runs before the first next */
  void *it;
  for (int i = 1; i <= 3; i++) {
    CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), 0);
    CHECK_EQ(AIOC_TO_INT(it), i);
    CHECK_EQ(produced, i); /* ran exactly up to this yield */
  }
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), AIOC_EXHAUSTED);
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), AIOC_EXHAUSTED);
  CHECK(aioc_gen_is_finished(g));
  CHECK_EQ(cleanups, 1);
  aioc_gen_free(g);
  return 0;
}

TEST(test_basics) {
  aioc_run_options o = vopts();
  CHECK_RC(aioc_run_ex(basics_main, NULL, NULL, &o), 0);
}

/* From plain code: no task, the loop runs underneath. */
TEST(test_plain_code) {
  aioc_loop *loop = test_loop(1);
  aioc_gen *g;
  produced = cleanups = 0;
  CHECK_RC(aioc_gen_new(&g, count_to, AIOC_INT(5), NULL), 0);
  void *it;
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), 0);
  CHECK_EQ(AIOC_TO_INT(it), 1);
  CHECK(!aioc_loop_is_running(loop));
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), 0);
  CHECK_EQ(AIOC_TO_INT(it), 2);
  CHECK_RC(aioc_gen_close(g), 0); /* consumer stops early */
  CHECK_EQ(cleanups, 1);
  CHECK_EQ(produced, 2);
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), AIOC_EXHAUSTED);
  aioc_gen_free(g);
  /* An awaiting body from plain code, on the virtual clock. */
  static const double pauses[] = {0.5, 0.5, -1};
  CHECK_RC(aioc_gen_new(&g, paced, (void *)pauses, NULL), 0);
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), 0);
  CHECK_DBL(aioc_loop_time(loop), 0.5, 1e-9);
  CHECK_RC(aioc_gen_next(g, &it, 0.1), -ETIMEDOUT);
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), 0);
  CHECK_EQ(AIOC_TO_INT(it), 1);
  CHECK_DBL(aioc_loop_time(loop), 1.0, 1e-9);
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), AIOC_EXHAUSTED);
  aioc_gen_free(g);
  CLOSE_CLEAN(loop);
}

/* ---- the seed 000 scenario: a timeout between chunks ---- */

static int chunks_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  static const double pauses[] = {0.1, 0.1, 2.0, 0.1, -1};
  aioc_gen *g;
  cleanups = 0;
  CHECK_RC(aioc_gen_new(&g, paced, (void *)pauses, NULL), 0);
  void *it;
  CHECK_RC(aioc_gen_next(g, &it, 1.0), 0);
  CHECK_EQ(AIOC_TO_INT(it), 0);
  CHECK_RC(aioc_gen_next(g, &it, 1.0), 0);
  CHECK_EQ(AIOC_TO_INT(it), 1);
  CHECK_DBL(aioc_time(), 0.2, 1e-9);
  /* The producer pauses 2 s: the consumer times out, the producer goes
   * on. */
  CHECK_RC(aioc_gen_next(g, &it, 1.0), -ETIMEDOUT);
  CHECK_DBL(aioc_time(), 1.2, 1e-9);
  /* Resume: the late chunk still arrives, nothing lost. */
  CHECK_RC(aioc_gen_next(g, &it, 1.5), 0);
  CHECK_EQ(AIOC_TO_INT(it), 2);
  CHECK_DBL(aioc_time(), 2.2, 1e-9);
  CHECK_RC(aioc_gen_next(g, &it, 1.0), 0);
  CHECK_EQ(AIOC_TO_INT(it), 3);
  CHECK_RC(aioc_gen_next(g, &it, 1.0), AIOC_EXHAUSTED);
  CHECK_EQ(cleanups, 1);
  aioc_gen_free(g);
  CHECK_EQ(cleanups, 1);
  return 0;
}

TEST(test_timeout_between_chunks) {
  aioc_run_options o = vopts();
  CHECK_RC(aioc_run_ex(chunks_main, NULL, NULL, &o), 0);
}

/* A producer that finishes its item after the consumer gave up: the item
 * waits for the next call, even when that call comes much later. */
static int late_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  static const double pauses[] = {1.0, -1};
  aioc_gen *g;
  CHECK_RC(aioc_gen_new(&g, paced, (void *)pauses, NULL), 0);
  void *it;
  CHECK_RC(aioc_gen_next(g, &it, 0.5), -ETIMEDOUT);
  CHECK_RC(aioc_sleep(3), 0); /* the item is produced meanwhile */
  CHECK_RC(aioc_gen_next(g, &it, 0), 0);
  CHECK_EQ(AIOC_TO_INT(it), 0);
  CHECK_DBL(aioc_time(), 3.5, 1e-9);
  aioc_gen_free(g);
  return 0;
}

TEST(test_item_kept_after_timeout) {
  aioc_run_options o = vopts();
  CHECK_RC(aioc_run_ex(late_main, NULL, NULL, &o), 0);
}

/* Python's wait_for(anext()) behaviour, when asked for. */
static int cancel_on_timeout_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  static const double pauses[] = {0.1, 5.0, 0.1, -1};
  aioc_gen_options go = {.flags = AIOC_GEN_CANCEL_ON_TIMEOUT};
  aioc_gen *g;
  cleanups = 0;
  CHECK_RC(aioc_gen_new(&g, paced, (void *)pauses, &go), 0);
  void *it;
  CHECK_RC(aioc_gen_next(g, &it, 1.0), 0);
  CHECK_RC(aioc_gen_next(g, &it, 1.0), -ETIMEDOUT);
  CHECK_RC(aioc_gen_next(g, &it, 1.0), AIOC_EXHAUSTED);
  CHECK_EQ(cleanups, 1);
  aioc_gen_free(g);
  CHECK_EQ(cleanups, 1);
  return 0;
}

TEST(test_cancel_on_timeout) {
  aioc_run_options o = vopts();
  CHECK_RC(aioc_run_ex(cancel_on_timeout_main, NULL, NULL, &o), 0);
}

/* The consumer's deadline scope applies to next() like any wait. */
static int scope_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  static const double pauses[] = {2.0, -1};
  aioc_gen *g;
  CHECK_RC(aioc_gen_new(&g, paced, (void *)pauses, NULL), 0);
  aioc_scope *s;
  CHECK_RC(aioc_timeout_enter(&s, 0.5), 0);
  void *it;
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), -ETIMEDOUT);
  CHECK_RC(aioc_scope_exit(s), -ETIMEDOUT);
  aioc_scope_free(s);
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), 0);
  CHECK_DBL(aioc_time(), 2.0, 1e-9);
  aioc_gen_free(g);
  return 0;
}

TEST(test_deadline_scope) {
  aioc_run_options o = vopts();
  CHECK_RC(aioc_run_ex(scope_main, NULL, NULL, &o), 0);
}

/* ---- send, throw, close ---- */

/* Echoes what it is sent, doubled; a thrown -EAGAIN is answered with -1. */
static int echo(void *arg, aioc_gen *g) {
  (void)arg;
  void *x = AIOC_INT(0);
  for (;;) {
    void *sent;
    int rc = aioc_gen_yield(g, x, &sent);
    if (rc == -EAGAIN) {
      x = AIOC_INT(-1);
      continue;
    }
    if (rc < 0) return rc == AIOC_EGENEXIT ? 0 : rc;
    x = AIOC_INT(AIOC_TO_INT(sent) * 2);
  }
}

static int send_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_gen *g;
  CHECK_RC(aioc_gen_new(&g, echo, NULL, NULL), 0);
  void *it;
  CHECK_RC(aioc_gen_send(g, AIOC_INT(5), &it, AIOC_FOREVER), -EINVAL);
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), 0);
  CHECK_EQ(AIOC_TO_INT(it), 0);
  CHECK_RC(aioc_gen_send(g, AIOC_INT(21), &it, AIOC_FOREVER), 0);
  CHECK_EQ(AIOC_TO_INT(it), 42);
  CHECK_RC(aioc_gen_throw(g, -EAGAIN, &it, AIOC_FOREVER), 0);
  CHECK_EQ(AIOC_TO_INT(it), -1);
  /* An error the body does not handle comes back. */
  CHECK_RC(aioc_gen_throw(g, -EPIPE, &it, AIOC_FOREVER), -EPIPE);
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), AIOC_EXHAUSTED);
  CHECK_RC(aioc_gen_throw(g, 5, &it, AIOC_FOREVER), -EINVAL);
  aioc_gen_free(g);
  return 0;
}

TEST(test_send_throw) {
  CHECK_RC(aioc_run(send_main, NULL, NULL), 0);
}

/* A body that yields while being closed. */
static int stubborn(void *arg, aioc_gen *g) {
  (void)arg;
  int rc;
  do {
    rc = aioc_gen_yield(g, NULL, NULL);
  } while (rc == 0);
  /* Told to close: yields again (a bug), which is refused at once. */
  CHECK_RC(aioc_gen_yield(g, NULL, NULL), AIOC_EGENEXIT);
  cleanups++;
  return 0;
}

static int close_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_gen *g;
  void *it;
  cleanups = 0;
  /* Unstarted: closing never runs the body. */
  produced = 0;
  CHECK_RC(aioc_gen_new(&g, count_to, AIOC_INT(3), NULL), 0);
  CHECK_RC(aioc_gen_close(g), 0);
  CHECK_EQ(produced, 0);
  CHECK_EQ(cleanups, 0);
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), AIOC_EXHAUSTED);
  aioc_gen_free(g);
  /* Yielding while closing. */
  CHECK_RC(aioc_gen_new(&g, stubborn, NULL, NULL), 0);
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), 0);
  CHECK_RC(aioc_gen_close(g), AIOC_EGENYIELD);
  CHECK(aioc_gen_is_finished(g));
  CHECK_EQ(cleanups, 1);
  CHECK_RC(aioc_gen_close(g), 0);
  aioc_gen_free(g);
  CHECK_EQ(cleanups, 1);
  return 0;
}

TEST(test_close) {
  CHECK_RC(aioc_run(close_main, NULL, NULL), 0);
}

/* ---- errors and every close path ---- */

static int failing(void *arg, aioc_gen *g) {
  (void)arg;
  int rc = aioc_gen_yield(g, AIOC_INT(1), NULL);
  if (rc < 0) return rc;
  cleanups++;
  return aioc_error(-EPROTO, "bad chunk %d", 2);
}

static int error_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_gen *g;
  cleanups = 0;
  CHECK_RC(aioc_gen_new(&g, failing, NULL, NULL), 0);
  void *it;
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), 0);
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), -EPROTO);
  CHECK_STR(aioc_error_message(), "bad chunk 2");
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), AIOC_EXHAUSTED);
  CHECK_EQ(cleanups, 1);
  aioc_gen_free(g);
  return 0;
}

/* The body fails while nobody waits (the consumer timed out): the error
 * and its message wait for the next call. */
static int late_failure(void *arg, aioc_gen *g) {
  (void)g;
  (void)arg;
  int rc = aioc_sleep(2);
  if (rc < 0) return rc;
  return aioc_error(-ENODATA, "stream ended early");
}

static int late_error_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_gen *g;
  CHECK_RC(aioc_gen_new(&g, late_failure, NULL, NULL), 0);
  void *it;
  CHECK_RC(aioc_gen_next(g, &it, 1), -ETIMEDOUT);
  CHECK_RC(aioc_gen_send(g, AIOC_INT(1), &it, 1), -EAGAIN); /* busy */
  CHECK_RC(aioc_sleep(5), 0);
  CHECK_RC(aioc_gen_next(g, &it, 1), -ENODATA);
  CHECK_STR(aioc_error_message(), "stream ended early");
  CHECK_RC(aioc_gen_next(g, &it, 1), AIOC_EXHAUSTED);
  aioc_gen_free(g);
  return 0;
}

TEST(test_producer_error) {
  aioc_run_options o = vopts();
  CHECK_RC(aioc_run_ex(late_error_main, NULL, NULL, &o), 0);
  CHECK_RC(aioc_run(error_main, NULL, NULL), 0);
}

static int driver(void *arg, void **result) {
  (void)result;
  void *it;
  return aioc_gen_next(arg, &it, AIOC_FOREVER);
}

static int cancelled_consumer_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  static const double pauses[] = {5.0, -1};
  aioc_gen *g;
  cleanups = 0;
  CHECK_RC(aioc_gen_new(&g, paced, (void *)pauses, NULL), 0);
  aioc_task *t, *t2;
  CHECK_RC(aioc_spawn(&t, driver, g), 0);
  CHECK_RC(aioc_sleep(1), 0);
  /* A second consumer while the first waits. */
  CHECK_RC(aioc_spawn(&t2, driver, g), 0);
  CHECK_RC(aioc_task_await(t2, NULL), -EBUSY);
  aioc_task_unref(t2);
  /* The consumer is cancelled mid-wait: the producer keeps its place. */
  aioc_task_cancel(t, NULL);
  CHECK_RC(aioc_task_await(t, NULL), -ECANCELED);
  aioc_task_unref(t);
  CHECK_EQ(cleanups, 0);
  void *it;
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), 0);
  CHECK_DBL(aioc_time(), 5.0, 1e-9);
  aioc_gen_free(g);
  CHECK_EQ(cleanups, 1);
  /* Closing while the producer is busy cancels it; cleanup runs once. */
  cleanups = 0;
  CHECK_RC(aioc_gen_new(&g, paced, (void *)pauses, NULL), 0);
  CHECK_RC(aioc_gen_next(g, &it, 1), -ETIMEDOUT);
  double before = aioc_time();
  CHECK_RC(aioc_gen_close(g), 0);
  CHECK_EQ(cleanups, 1);
  CHECK(aioc_time() - before < 1); /* did not wait for the 5 s pause */
  aioc_gen_free(g);
  CHECK_EQ(cleanups, 1);
  return 0;
}

TEST(test_close_paths) {
  aioc_run_options o = vopts();
  CHECK_RC(aioc_run_ex(cancelled_consumer_main, NULL, NULL, &o), 0);
}

/* Generators left open when main returns, or when the loop closes, run
 * their cleanup. */
static aioc_gen *left_open[2];
static int leave_open_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  static const double pauses[] = {0.1, 0.1, 0.1, -1};
  void *it;
  for (int i = 0; i < 2; i++) {
    CHECK_RC(aioc_gen_new(&left_open[i], paced, (void *)pauses, NULL), 0);
    CHECK_RC(aioc_gen_next(left_open[i], &it, AIOC_FOREVER), 0);
  }
  return 0;
}

TEST(test_loop_closes_generators) {
  aioc_run_options o = vopts();
  cleanups = 0;
  CHECK_RC(aioc_run_ex(leave_open_main, NULL, NULL, &o), 0);
  CHECK_EQ(cleanups, 2);
  for (int i = 0; i < 2; i++) {
    CHECK(aioc_gen_is_finished(left_open[i]));
    aioc_gen_free(left_open[i]);
  }
  /* Through aioc_loop_close, from plain code. */
  aioc_loop *loop = test_loop(1);
  cleanups = 0;
  aioc_gen *g;
  CHECK_RC(aioc_gen_new(&g, count_to, AIOC_INT(3), NULL), 0);
  void *it;
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), 0);
  CHECK_RC(aioc_loop_close(loop), 0);
  aioc_loop_free(loop);
  CHECK_EQ(cleanups, 1);
  aioc_gen_free(g);
}

TEST(test_bad_input) {
  void *it;
  aioc_gen *g;
  CHECK_RC(aioc_gen_new(NULL, count_to, NULL, NULL), -EINVAL);
  CHECK_RC(aioc_gen_new(&g, NULL, NULL, NULL), -EINVAL);
  CHECK_RC(aioc_gen_next(NULL, &it, 1), -EINVAL);
  aioc_loop *loop = test_loop(1);
  CHECK_RC(aioc_gen_new(&g, count_to, AIOC_INT(1), NULL), 0);
  CHECK_RC(aioc_gen_next(g, &it, -1), -EINVAL);
  CHECK_RC(aioc_gen_next(g, &it, NAN), -EINVAL);
  CHECK_RC(aioc_gen_yield(g, NULL, NULL), -EINVAL); /* not from its body */
  CHECK_RC(aioc_gen_close(NULL), -EINVAL);
  aioc_gen_free(g);
  aioc_gen_free(NULL);
  CHECK_RC(aioc_iter_next(NULL, &it, 1), -EINVAL);
  CHECK_RC(aioc_iter_timed(NULL, NULL, NULL), -EINVAL);
  CLOSE_CLEAN(loop);
}

/* ---- the timed iterator ---- */

static aioc_iter *paced_iter(const double *pauses) {
  aioc_gen *g;
  aioc_iter *it;
  CHECK_RC(aioc_gen_new(&g, paced, (void *)pauses, NULL), 0);
  CHECK_RC(aioc_gen_iter(&it, g), 0);
  return it;
}

static int timed_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  void *x;
  /* first: 0.5 s to the first item. */
  static const double slow_start[] = {1.0, 0.1, -1};
  aioc_iter *it;
  aioc_timed_options o = {.first = 0.5};
  CHECK_RC(aioc_iter_timed(&it, paced_iter(slow_start), &o), 0);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), -ETIMEDOUT);
  CHECK_DBL(aioc_time(), 0.5, 1e-9);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), -ETIMEDOUT); /* still 1st */
  aioc_iter_free(it);
  /* between: 0.3 s between items. */
  double t0 = aioc_time();
  static const double gap[] = {0.1, 0.2, 0.5, 0.1, -1};
  aioc_timed_options b = {.between = 0.3};
  CHECK_RC(aioc_iter_timed(&it, paced_iter(gap), &b), 0);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), 0);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), 0);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), -ETIMEDOUT);
  CHECK_DBL(aioc_time() - t0, 0.6, 1e-9);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), 0); /* the late one */
  CHECK_EQ(AIOC_TO_INT(x), 2);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), 0);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), AIOC_EXHAUSTED);
  aioc_iter_free(it);
  /* total: 1 s for the whole stream, then always -ETIMEDOUT. */
  t0 = aioc_time();
  static const double steady[] = {0.4, 0.4, 0.4, 0.4, -1};
  aioc_timed_options tt = {.total = 1.0};
  CHECK_RC(aioc_iter_timed(&it, paced_iter(steady), &tt), 0);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), 0);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), 0);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), -ETIMEDOUT);
  CHECK_DBL(aioc_time() - t0, 1.0, 1e-9);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), -ETIMEDOUT);
  aioc_iter_free(it);
  /* A zero-initialised struct sets no limit: slow items all come. */
  t0 = aioc_time();
  static const double slow[] = {100.0, 200.0, -1};
  aioc_timed_options none = {0};
  CHECK_RC(aioc_iter_timed(&it, paced_iter(slow), &none), 0);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), 0);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), 0);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), AIOC_EXHAUSTED);
  CHECK(aioc_time() - t0 >= 300.0 - 1e-6); /* waited as long as it took */
  aioc_iter_free(it);
  /* A negative limit is refused. */
  aioc_timed_options bad = {.first = -1};
  aioc_iter *src = paced_iter(steady);
  CHECK_RC(aioc_iter_timed(&it, src, &bad), -EINVAL);
  aioc_iter_free(src);
  return 0;
}

TEST(test_timed_iterator) {
  aioc_run_options o = vopts();
  CHECK_RC(aioc_run_ex(timed_main, NULL, NULL, &o), 0);
}

/* ---- helpers ---- */

static int times_ten(void *arg, void *item, void **out) {
  (void)arg;
  *out = AIOC_INT(AIOC_TO_INT(item) * 10);
  return 0;
}

static int is_odd(void *arg, void *item) {
  (void)arg;
  return AIOC_TO_INT(item) % 2 != 0;
}

static aioc_iter *count_iter(int n) {
  aioc_gen *g;
  aioc_iter *it;
  CHECK_RC(aioc_gen_new(&g, count_to, AIOC_INT(n), NULL), 0);
  CHECK_RC(aioc_gen_iter(&it, g), 0);
  return it;
}

static int fail_on_two(void *arg, void *item, void **out) {
  (void)arg;
  if (AIOC_TO_INT(item) == 2) return aioc_error(-EIO, "no twos");
  *out = item;
  return 0;
}

static int helpers_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  void **v;
  size_t n;
  aioc_iter *it, *a, *b;
  /* [x * 10 for x in count(1..6) if x odd][:2] */
  CHECK_RC(aioc_iter_filter(&a, count_iter(6), is_odd, NULL, NULL), 0);
  CHECK_RC(aioc_iter_map(&b, a, times_ten, NULL), 0);
  CHECK_RC(aioc_iter_take(&it, b, 2), 0);
  CHECK_RC(aioc_iter_collect(it, &v, &n, AIOC_FOREVER), 0);
  CHECK_EQ(n, 2);
  CHECK_EQ(AIOC_TO_INT(v[0]), 10);
  CHECK_EQ(AIOC_TO_INT(v[1]), 30);
  aioc_mem_free(v);
  aioc_iter_free(it);
  /* an error of the function ends the iteration */
  CHECK_RC(aioc_iter_map(&it, count_iter(5), fail_on_two, NULL), 0);
  void *y;
  CHECK_RC(aioc_iter_next(it, &y, AIOC_FOREVER), 0);
  CHECK_RC(aioc_iter_next(it, &y, AIOC_FOREVER), -EIO);
  CHECK_RC(aioc_iter_next(it, &y, AIOC_FOREVER), AIOC_EXHAUSTED);
  aioc_iter_free(it);
  /* enumerate */
  CHECK_RC(aioc_iter_enumerate(&it, count_iter(3)), 0);
  void *x;
  for (size_t i = 0; i < 3; i++) {
    CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), 0);
    aioc_indexed *e = x;
    CHECK_EQ(e->index, i);
    CHECK_EQ(AIOC_TO_INT(e->item), (long)i + 1);
  }
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), AIOC_EXHAUSTED);
  aioc_iter_free(it);
  /* chain */
  aioc_iter *two[2] = {count_iter(2), count_iter(3)};
  CHECK_RC(aioc_iter_chain(&it, two, 2), 0);
  CHECK_RC(aioc_iter_collect(it, &v, &n, AIOC_FOREVER), 0);
  CHECK_EQ(n, 5);
  CHECK_EQ(AIOC_TO_INT(v[2]), 1);
  aioc_mem_free(v);
  aioc_iter_free(it);
  /* zip ends with the shortest */
  aioc_iter *pair[2] = {count_iter(2), count_iter(5)};
  CHECK_RC(aioc_iter_zip(&it, pair, 2), 0);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), 0);
  CHECK_EQ(AIOC_TO_INT(((void **)x)[1]), 1);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), 0);
  CHECK_EQ(AIOC_TO_INT(((void **)x)[0]), 2);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), AIOC_EXHAUSTED);
  aioc_iter_free(it);
  /* merge: items as they arrive */
  static const double fast[] = {0.1, 0.1, 0.1, -1};
  static const double slow[] = {0.25, 0.25, -1};
  aioc_iter *ms[2] = {paced_iter(slow), paced_iter(fast)};
  CHECK_RC(aioc_iter_merge(&it, ms, 2), 0);
  double t0 = aioc_time();
  CHECK_RC(aioc_iter_collect(it, &v, &n, AIOC_FOREVER), 0);
  CHECK_EQ(n, 5);
  CHECK_DBL(aioc_time() - t0, 0.51, 1e-6); /* + the 0.01 s cleanup */
  aioc_mem_free(v);
  aioc_iter_free(it);
  /* chunks: by count, and by time */
  CHECK_RC(aioc_iter_chunks(&it, count_iter(5), 2, AIOC_FOREVER), 0);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), 0);
  CHECK_EQ(((aioc_chunk *)x)->n, 2);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), 0);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), 0);
  CHECK_EQ(((aioc_chunk *)x)->n, 1);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), AIOC_EXHAUSTED);
  aioc_iter_free(it);
  static const double bursts[] = {0.1, 0.1, 1.0, 0.1, -1};
  CHECK_RC(aioc_iter_chunks(&it, paced_iter(bursts), 10, 0.5), 0);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), 0);
  CHECK_EQ(((aioc_chunk *)x)->n, 2); /* the time limit closed it */
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), 0);
  CHECK_EQ(((aioc_chunk *)x)->n, 2); /* the late item was not lost */
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), AIOC_EXHAUSTED);
  aioc_iter_free(it);
  /* closing a helper closes its source (the generator's cleanup runs) */
  cleanups = 0;
  CHECK_RC(aioc_iter_map(&it, count_iter(9), times_ten, NULL), 0);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), 0);
  CHECK_RC(aioc_iter_close(it), 0);
  CHECK_EQ(cleanups, 1);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), AIOC_EXHAUSTED);
  aioc_iter_free(it);
  CHECK_EQ(cleanups, 1);
  return 0;
}

TEST(test_helpers) {
  aioc_run_options o = vopts();
  CHECK_RC(aioc_run_ex(helpers_main, NULL, NULL, &o), 0);
}

/* Items a helper drew but cannot deliver go to their source's item
 * destructor: zip's incomplete last tuple, a partial chunk and the items
 * merge's pumps hold when closed. */
static int dropped[8];
static void drop_count(void *item) { dropped[AIOC_TO_INT(item) & 7]++; }

/* Yields from, from + 1, ... (arg: from * 16 + count), pausing pause_s
 * before each item after the first. */
static double pause_s;
static int yield_range(void *arg, aioc_gen *g) {
  int from = AIOC_TO_INT(arg) / 16, n = AIOC_TO_INT(arg) % 16, rc = 0;
  for (int i = 0; i < n && rc == 0; i++) {
    if (i > 0 && pause_s > 0) rc = aioc_sleep(pause_s);
    if (rc == 0) rc = aioc_gen_yield(g, AIOC_INT(from + i), NULL);
  }
  return rc == AIOC_EGENEXIT || rc == -ECANCELED ? 0 : rc;
}

static aioc_iter *range_iter(int from, int n, int owned) {
  aioc_gen_options o = {.item_free = owned ? drop_count : NULL};
  aioc_gen *g;
  CHECK_RC(aioc_gen_new(&g, yield_range, AIOC_INT(from * 16 + n), &o), 0);
  aioc_iter *it;
  CHECK_RC(aioc_gen_iter(&it, g), 0);
  return it;
}

static int drop_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  void *x;
  /* zip: 0 1 2 against 0 1: the third tuple ends with item 2 drawn. */
  memset(dropped, 0, sizeof dropped);
  pause_s = 0;
  aioc_iter *zs[2] = {range_iter(0, 3, 1), range_iter(0, 2, 0)};
  aioc_iter *z;
  CHECK_RC(aioc_iter_zip(&z, zs, 2), 0);
  CHECK_RC(aioc_iter_next(z, &x, AIOC_FOREVER), 0);
  CHECK_RC(aioc_iter_next(z, &x, AIOC_FOREVER), 0);
  CHECK_RC(aioc_iter_next(z, &x, AIOC_FOREVER), AIOC_EXHAUSTED);
  CHECK_EQ(dropped[2], 1);
  CHECK_EQ(dropped[0] + dropped[1], 0);
  aioc_iter_free(z);
  CHECK_EQ(dropped[2], 1);

  /* chunks: item 4 gathered, then the caller's timeout, then close. */
  memset(dropped, 0, sizeof dropped);
  pause_s = 1.0;
  aioc_iter *c;
  CHECK_RC(aioc_iter_chunks(&c, range_iter(4, 2, 1), 4, AIOC_FOREVER), 0);
  CHECK_RC(aioc_iter_next(c, &x, 0.1), -ETIMEDOUT);
  CHECK_EQ(dropped[4], 0);
  aioc_iter_free(c);
  CHECK_EQ(dropped[4], 1);
  CHECK_EQ(dropped[5], 0); /* never produced */

  /* merge: one item taken; the other pump's item is dropped at close. */
  memset(dropped, 0, sizeof dropped);
  pause_s = 0;
  aioc_iter *ms[2] = {range_iter(1, 3, 1), range_iter(6, 3, 1)};
  aioc_iter *m;
  CHECK_RC(aioc_iter_merge(&m, ms, 2), 0);
  CHECK_RC(aioc_iter_next(m, &x, AIOC_FOREVER), 0);
  int got = AIOC_TO_INT(x);
  CHECK(got == 1 || got == 6);
  aioc_iter_free(m);
  int total = 0;
  for (int i = 0; i < 8; i++) total += dropped[i];
  CHECK_EQ(total, 1);
  CHECK_EQ(dropped[got == 1 ? 6 : 1], 1);
  return 0;
}

TEST(test_item_destructors) {
  CHECK_RC(run_main(drop_main, NULL, NULL), 0);
}

/* as_completed through the iterator interface */
static int sleeper(void *arg, void **result) {
  *result = arg;
  return aioc_sleep(AIOC_TO_INT(arg) / 10.0);
}

static int ac_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_task *t[3];
  aioc_future *f[3];
  int d[3] = {3, 1, 2};
  for (int i = 0; i < 3; i++) {
    CHECK_RC(aioc_spawn(&t[i], sleeper, AIOC_INT(d[i])), 0);
    f[i] = aioc_task_future(t[i]);
  }
  aioc_as_completed *ac;
  CHECK_RC(aioc_as_completed_new(&ac, f, 3, AIOC_FOREVER), 0);
  aioc_iter *it;
  CHECK_RC(aioc_as_completed_iter(&it, ac), 0);
  int expect[3] = {1, 2, 3};
  void *x;
  for (int i = 0; i < 3; i++) {
    CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), 0);
    void *r;
    IGNORE_RC(aioc_future_result(x, &r));
    CHECK_EQ(AIOC_TO_INT(r), expect[i]);
  }
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), AIOC_EXHAUSTED);
  aioc_iter_free(it);
  for (int i = 0; i < 3; i++)
    aioc_task_unref(t[i]);
  return 0;
}

TEST(test_as_completed_iter) {
  aioc_run_options o = vopts();
  CHECK_RC(aioc_run_ex(ac_main, NULL, NULL, &o), 0);
}

/* ---- context managers ---- */

static char trace[256];

typedef struct res {
  const char *name;
  int exit_result; /* what exit returns (0 propagate, 1 suppress, <0 fail) */
  int seen;        /* the body code exit received */
} res;

static int res_enter(void *self, void **bound) {
  res *r = self;
  int rc = aioc_sleep(0.1); /* enter may wait */
  if (rc < 0) return rc;
  strcat(trace, "+");
  strcat(trace, r->name);
  *bound = r;
  return 0;
}

static int res_exit(void *self, int body_rc) {
  res *r = self;
  r->seen = body_rc;
  /* exit may wait, even after a cancellation (it runs in a shield) */
  if (aioc_sleep(0.1) != 0) strcat(trace, "!");
  strcat(trace, "-");
  strcat(trace, r->name);
  return r->exit_result;
}

static const aioc_cm_vtable res_vt = {res_enter, res_exit};

static int body_ok(void *arg, void *bound) {
  (void)arg;
  strcat(trace, " body:");
  strcat(trace, ((res *)bound)->name);
  strcat(trace, " ");
  return 0;
}

static int body_fail(void *arg, void *bound) {
  (void)arg;
  (void)bound;
  return -EIO;
}

static int body_sleeps(void *arg, void *bound) {
  (void)arg;
  (void)bound;
  return aioc_sleep(10);
}

static int inner_with(void *arg, void *bound) {
  aioc_cm *reader = arg;
  (void)bound;
  return aioc_with(reader, body_ok, NULL, NULL);
}

static int cm_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  res provider = {"provider", 0, 99}, reader = {"reader", 0, 99};
  aioc_cm pcm = {&res_vt, &provider, 0}, rcm = {&res_vt, &reader, 0};
  trace[0] = 0;
  CHECK_RC(aioc_with(&pcm, inner_with, &rcm, NULL), 0);
  CHECK_STR(trace, "+provider+reader body:reader -reader-provider");
  /* exit sees the error; not suppressed, then suppressed */
  CHECK_RC(aioc_with(&pcm, body_fail, NULL, NULL), -EIO);
  CHECK_RC(provider.seen, -EIO);
  provider.exit_result = 1;
  CHECK_RC(aioc_with(&pcm, body_fail, NULL, NULL), 0);
  /* exit fails while the body failed: both reported */
  provider.exit_result = -ENOSPC;
  int erc;
  CHECK_RC(aioc_with(&pcm, body_fail, NULL, &erc), -EIO);
  CHECK_RC(erc, -ENOSPC);
  CHECK_RC(aioc_with(&pcm, body_ok, NULL, &erc), -ENOSPC);
  provider.exit_result = 0;
  /* exit runs, and can wait, when the body is cancelled */
  trace[0] = 0;
  aioc_task_cancel(aioc_current_task(), NULL);
  CHECK_RC(aioc_with(&pcm, body_sleeps, NULL, NULL), -ECANCELED);
  aioc_task_uncancel(aioc_current_task());
  CHECK_STR(trace, ""); /* enter failed (cancelled): body and exit not run */
  trace[0] = 0;
  aioc_scope *s;
  CHECK_RC(aioc_timeout_enter(&s, 1), 0);
  CHECK_RC(aioc_with(&pcm, body_sleeps, NULL, NULL), -ETIMEDOUT);
  IGNORE_RC(aioc_scope_exit(s));
  aioc_scope_free(s);
  CHECK_STR(trace, "+provider-provider"); /* exit slept in its shield */
  CHECK_RC(provider.seen, -ETIMEDOUT);
  return 0;
}

TEST(test_context_managers) {
  aioc_run_options o = vopts();
  CHECK_RC(aioc_run_ex(cm_main, NULL, NULL, &o), 0);
  /* The same manager from plain code: the loop runs underneath. */
  aioc_loop *loop = test_loop(1);
  res plain = {"plain", 0, 99};
  aioc_cm cm = {&res_vt, &plain, 0};
  trace[0] = 0;
  CHECK_RC(aioc_with(&cm, body_ok, NULL, NULL), 0);
  CHECK_STR(trace, "+plain body:plain -plain");
  CLOSE_CLEAN(loop);
}

/* asynccontextmanager */
static int managed(void *arg, aioc_gen *g) {
  res *r = arg;
  strcat(trace, "+");
  strcat(trace, r->name);
  int rc = aioc_gen_yield(g, r, NULL);
  r->seen = rc;
  strcat(trace, "-");
  strcat(trace, r->name);
  if (rc == -EIO && r->exit_result == 1) aioc_cm_suppress(g);
  return rc == -EIO && r->exit_result == 1 ? 0 : rc;
}

static int gen_cm_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  res r = {"g", 0, 99};
  aioc_cm cm;
  CHECK_RC(aioc_gen_cm(&cm, managed, &r), 0);
  trace[0] = 0;
  CHECK_RC(aioc_with(&cm, body_ok, NULL, NULL), 0);
  CHECK_STR(trace, "+g body:g -g");
  CHECK_RC(aioc_with(&cm, body_fail, NULL, NULL), -EIO);
  CHECK_RC(r.seen, -EIO); /* the error arrived at the yield */
  r.exit_result = 1;
  CHECK_RC(aioc_with(&cm, body_fail, NULL, NULL), 0);
  aioc_gen_cm_free(&cm);
  /* exit stack: reverse order */
  res a = {"a", 0, 0}, b = {"b", 0, 0}, c = {"c", 0, 0};
  aioc_cm ca = {&res_vt, &a, 0}, cb = {&res_vt, &b, 0}, cc = {&res_vt, &c, 0};
  aioc_exit_stack *st;
  CHECK_RC(aioc_exit_stack_new(&st), 0);
  trace[0] = 0;
  void *bound;
  CHECK_RC(aioc_exit_stack_enter(st, &ca, &bound), 0);
  CHECK(bound == &a);
  CHECK_RC(aioc_exit_stack_enter(st, &cb, NULL), 0);
  CHECK_RC(aioc_exit_stack_enter(st, &cc, NULL), 0);
  b.exit_result = 1; /* b suppresses what c passed on */
  CHECK_RC(aioc_exit_stack_close(st, -EIO), 0);
  CHECK_STR(trace, "+a+b+c-c-b-a");
  CHECK_RC(c.seen, -EIO);
  CHECK_RC(a.seen, 0);
  aioc_exit_stack_free(st);
  return 0;
}

TEST(test_gen_cm_and_exit_stack) {
  aioc_run_options o = vopts();
  CHECK_RC(aioc_run_ex(gen_cm_main, NULL, NULL, &o), 0);
}

/* ---- regressions ---- */

static int yield_then_sleep(void *arg, aioc_gen *g) {
  (void)arg;
  int rc = aioc_gen_yield(g, AIOC_INT(1), NULL);
  IGNORE_RC(aioc_sleep(1));
  return rc == AIOC_EGENEXIT ? 0 : rc;
}

static void free_in_callback(void *arg) { aioc_gen_free(arg); }

static int sleep_then_yield(void *arg, aioc_gen *g) {
  (void)arg;
  IGNORE_RC(aioc_sleep(10)); /* cancelled by the close */
  /* yields anyway: refused, the body must end */
  CHECK_RC(aioc_gen_yield(g, AIOC_INT(1), NULL), AIOC_EGENEXIT);
  return 0;
}

static aioc_future *never;
static int blocks_forever(void *arg, aioc_gen *g) {
  (void)arg;
  int rc = aioc_await(never, NULL);
  if (rc == 0) rc = aioc_gen_yield(g, NULL, NULL);
  return rc == AIOC_EGENEXIT ? 0 : rc;
}

static int outer_of(void *arg, aioc_gen *g) {
  void *x;
  int rc = aioc_gen_next(arg, &x, AIOC_FOREVER);
  if (rc == 0) rc = aioc_gen_yield(g, x, NULL);
  return rc == AIOC_EGENEXIT || rc == AIOC_EXHAUSTED ? 0 : rc;
}

static int regressions_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  void *it;
  /* A generator freed from a callback while its body still runs frees
   * itself when the body ends, even while the loop shuts down. */
  aioc_gen *g;
  CHECK_RC(aioc_gen_new(&g, yield_then_sleep, NULL, NULL), 0);
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), 0);
  CHECK_RC(aioc_call_soon(NULL, aioc_get_running_loop(), free_in_callback, g),
           0);
  CHECK_RC(aioc_sleep(0), 0);
  /* Closing a busy body that yields after its cancellation ends. */
  CHECK_RC(aioc_gen_new(&g, sleep_then_yield, NULL, NULL), 0);
  CHECK_RC(aioc_gen_next(g, &it, 0.1), -ETIMEDOUT);
  CHECK_RC(aioc_gen_close(g), AIOC_EGENYIELD);
  aioc_gen_free(g);
  /* Nested generators: the outer consumer's timeout applies even though
   * only the inner body blocks. */
  CHECK_RC(aioc_future_new(&never, NULL), 0);
  aioc_gen *inner, *outer;
  CHECK_RC(aioc_gen_new(&inner, blocks_forever, NULL, NULL), 0);
  CHECK_RC(aioc_gen_new(&outer, outer_of, inner, NULL), 0);
  double t0 = aioc_time();
  CHECK_RC(aioc_gen_next(outer, &it, 0.1), -ETIMEDOUT);
  CHECK_DBL(aioc_time() - t0, 0.1, 1e-9);
  aioc_gen_free(outer);
  aioc_gen_free(inner);
  aioc_future_unref(never);
  /* A first next refused by an expired deadline leaves no task behind. */
  int before = aioc_all_tasks(NULL, NULL, 0);
  aioc_scope *s;
  CHECK_RC(aioc_timeout_enter(&s, 0), 0);
  IGNORE_RC(aioc_sleep(0.01));
  CHECK_RC(aioc_gen_new(&g, count_to, AIOC_INT(2), NULL), 0);
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), -ETIMEDOUT);
  IGNORE_RC(aioc_scope_exit(s));
  aioc_scope_free(s);
  aioc_gen_free(g);
  CHECK_EQ(aioc_all_tasks(NULL, NULL, 0), before);
  return 0;
}

TEST(test_regressions) {
  aioc_run_options o = vopts();
  o.loop.quiet = 0;
  CHECK_RC(aioc_run_ex(regressions_main, NULL, NULL, &o), 0);
}

/* ---- floating-point control state ---- */

/* A generator body runs as part of its consumer: the rounding mode passes
 * along with each hand-off, both ways, as asyncio's context does. Other
 * tasks keep their own across suspensions. (With the ucontext fallback,
 * swapcontext() gives every context its own instead.) */
static int fp_seen[3];

static int fp_body(void *arg, aioc_gen *g) {
  (void)arg;
  fp_seen[0] = fegetround();
  fesetround(FE_DOWNWARD);
  int rc = aioc_gen_yield(g, AIOC_INT(1), NULL);
  fp_seen[1] = fegetround();
  CHECK_RC(aioc_sleep(0.01), 0); /* blocks in the loop: its own state */
  fp_seen[2] = fegetround();
  fesetround(FE_TONEAREST);
  return rc;
}

/* Sleeps before its item and after it (arg: seconds), so that the
 * consumer's wait ends by timeout or by the body's end. */
static int fp_slow(void *arg, aioc_gen *g) {
  double d = *(double *)arg;
  int rc = aioc_sleep(d);
  if (rc == 0) rc = aioc_gen_yield(g, AIOC_INT(2), NULL);
  if (rc == 0) rc = aioc_sleep(d);
  return rc == AIOC_EGENEXIT ? 0 : rc;
}

static int fp_other(void *arg, void **result) {
  (void)arg;
  (void)result;
  fesetround(FE_UPWARD);
  for (int i = 0; i < 4; i++) {
    CHECK_RC(aioc_sleep(0.005), 0);
    CHECK_EQ(fegetround(), FE_UPWARD);
  }
  fesetround(FE_TONEAREST);
  return 0;
}

static int fp_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_task *other;
  CHECK_RC(aioc_spawn(&other, fp_other, NULL), 0);
  CHECK_RC(aioc_sleep(0), 0);
  aioc_gen *g;
  CHECK_RC(aioc_gen_new(&g, fp_body, NULL, NULL), 0);
  fesetround(FE_UPWARD);
  void *it;
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), 0);
#if !defined(AIOC_UCONTEXT)
  CHECK_EQ(fp_seen[0], FE_UPWARD);
  CHECK_EQ(fegetround(), FE_DOWNWARD);
#else
  CHECK_EQ(fegetround(), FE_UPWARD);
#endif
  fesetround(FE_TOWARDZERO);
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), AIOC_EXHAUSTED);
#if !defined(AIOC_UCONTEXT)
  CHECK_EQ(fp_seen[1], FE_TOWARDZERO);
  CHECK_EQ(fp_seen[2], FE_TOWARDZERO);
#endif
  fesetround(FE_TONEAREST);
  aioc_gen_free(g);

  /* The wait ends by timeout, then by the body's end after it blocked:
   * the consumer resumes from the loop, still with its own mode. */
  static double pause = 0.05;
  CHECK_RC(aioc_gen_new(&g, fp_slow, &pause, NULL), 0);
  fesetround(FE_UPWARD);
  CHECK_RC(aioc_gen_next(g, &it, 0.01), -ETIMEDOUT);
  CHECK_EQ(fegetround(), FE_UPWARD);
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), 0);
  CHECK_EQ(AIOC_TO_INT(it), 2);
  CHECK_EQ(fegetround(), FE_UPWARD);
  fesetround(FE_DOWNWARD);
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), AIOC_EXHAUSTED);
  CHECK_EQ(fegetround(), FE_DOWNWARD);
  fesetround(FE_TONEAREST);
  aioc_gen_free(g);
  CHECK_RC(aioc_task_await(other, NULL), 0);
  aioc_task_unref(other);
  CHECK_EQ(fegetround(), FE_TONEAREST);
  return 0;
}

TEST(test_fp_state) {
  CHECK_RC(run_main(fp_main, NULL, NULL), 0);
}

/* ---- a timer that cannot be armed ---- */

static int waits_for_event(void *arg, aioc_gen *g) {
  (void)arg;
  int rc = aioc_event_wait(nomem_ev, AIOC_FOREVER);
  if (rc == 0) rc = aioc_gen_yield(g, AIOC_INT(7), NULL);
  return rc == AIOC_EGENEXIT ? 0 : rc;
}

static int gen_nomem_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_gen *g;
  void *it = NULL;
  CHECK_RC(aioc_gen_new(&g, waits_for_event, NULL, NULL), 0);
  fill_timer_heap(aioc_get_running_loop());
  /* The body starts and blocks: the lazy deadline cannot be armed. */
  check_fail_grow = true;
  CHECK_RC(aioc_gen_next(g, &it, 0.05), -ENOMEM);
  CHECK_DBL(aioc_time(), 0.0, 1e-9);
  /* The body is busy (it kept its place): the deadline is armed first. */
  CHECK_RC(aioc_gen_next(g, &it, 0.05), -ENOMEM);
  CHECK_DBL(aioc_time(), 0.0, 1e-9);
  check_fail_grow = false;
  CHECK(!aioc_event_is_set(nomem_ev));
  /* Nothing was lost: the same item comes when asked without a limit. */
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), 0);
  CHECK_EQ(AIOC_TO_INT(it), 7);
  CHECK_DBL(aioc_time(), 1000.0, 1e-9);
  aioc_gen_free(g);
  return 0;
}

/* aioc_gen_next() with a timeout whose timer cannot be armed fails with
 * -ENOMEM at once, from a task and from plain code, instead of waiting
 * as long as the body takes. */
TEST(test_gen_timer_nomem) {
  aioc_set_allocator(check_grow_failing_realloc, NULL);
  CHECK_RC(aioc_event_new(&nomem_ev), 0);
  CHECK_RC(run_main(gen_nomem_main, NULL, NULL), 0);
  aioc_event_free(nomem_ev);
  /* Plain code. */
  CHECK_RC(aioc_event_new(&nomem_ev), 0);
  aioc_loop *loop = test_loop(1);
  aioc_gen *g;
  void *it = NULL;
  CHECK_RC(aioc_gen_new(&g, waits_for_event, NULL, NULL), 0);
  fill_timer_heap(loop);
  check_fail_grow = true;
  CHECK_RC(aioc_gen_next(g, &it, 0.05), -ENOMEM);
  check_fail_grow = false;
  CHECK_DBL(aioc_loop_time(loop), 0.0, 1e-9);
  CHECK(!aioc_event_is_set(nomem_ev));
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), 0);
  CHECK_EQ(AIOC_TO_INT(it), 7);
  CHECK_DBL(aioc_loop_time(loop), 1000.0, 1e-9);
  aioc_gen_free(g);
  CLOSE_CLEAN(loop);
  aioc_event_free(nomem_ev);
  aioc_set_allocator(NULL, NULL);
}

/* ---- the return value (Generator[Y, S, R]) ---- */

static int nfreed; /* values passed to count_free */
static void count_free(void *p) {
  nfreed++;
  free(p);
}

/* Yields 1..n, then returns "done" (also when closed early). */
static int returns_done(void *arg, aioc_gen *g) {
  int n = (int)AIOC_TO_INT(arg);
  int rc = 0;
  for (int i = 1; i <= n && rc == 0; i++)
    rc = aioc_gen_yield(g, AIOC_INT(i), NULL);
  if (rc != 0 && rc != AIOC_EGENEXIT) return rc;
  return aioc_gen_return(g, strdup("done"));
}

/* Sets a return value, then fails: the value is destroyed. */
static int returns_then_fails(void *arg, aioc_gen *g) {
  (void)arg;
  CHECK_RC(aioc_gen_return(g, strdup("lost")), 0);
  return aioc_error(-EIO, "failed after setting its value");
}

/* The checks shared by a task and plain code. */
static void return_value_checks(void) {
  aioc_gen_options o = {.return_free = count_free};
  aioc_gen *g;
  void *it, *v;
  nfreed = 0;
  CHECK_RC(aioc_gen_new(&g, returns_done, AIOC_INT(2), &o), 0);
  CHECK_RC(aioc_gen_result(g, &v), AIOC_ESTATE); /* not started */
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), 0);
  CHECK_RC(aioc_gen_result(g, &v), AIOC_ESTATE); /* not ended */
  CHECK(v == NULL);
  CHECK_RC(aioc_gen_return(g, NULL), -EINVAL); /* not from its body */
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), 0);
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), AIOC_EXHAUSTED);
  CHECK_RC(aioc_gen_result(g, &v), 0);
  CHECK_STR(v, "done");
  free(v);                             /* the caller's */
  CHECK_RC(aioc_gen_result(g, &v), 0); /* taken: nothing more */
  CHECK(v == NULL);
  aioc_gen_free(g);
  CHECK_EQ(nfreed, 0);
  /* Never taken: return_free destroys it with the generator. */
  CHECK_RC(aioc_gen_new(&g, returns_done, AIOC_INT(0), &o), 0);
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), AIOC_EXHAUSTED);
  aioc_gen_free(g);
  CHECK_EQ(nfreed, 1);
  /* Closed early: what the body returns on its way out (as Python 3.13's
   * close()). */
  CHECK_RC(aioc_gen_new(&g, returns_done, AIOC_INT(5), &o), 0);
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), 0);
  CHECK_RC(aioc_gen_close(g), 0);
  CHECK_RC(aioc_gen_result(g, &v), 0);
  CHECK_STR(v, "done");
  free(v);
  aioc_gen_free(g);
  /* An error wins: the value is destroyed, the code is the result. */
  CHECK_RC(aioc_gen_new(&g, returns_then_fails, NULL, &o), 0);
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), -EIO);
  CHECK_EQ(nfreed, 2);
  CHECK_RC(aioc_gen_result(g, &v), -EIO);
  CHECK(v == NULL);
  aioc_gen_free(g);
  /* Closed before it started: ended with no value. */
  CHECK_RC(aioc_gen_new(&g, returns_done, AIOC_INT(1), &o), 0);
  CHECK_RC(aioc_gen_close(g), 0);
  CHECK_RC(aioc_gen_result(g, &v), 0);
  CHECK(v == NULL);
  CHECK_RC(aioc_gen_result(NULL, &v), -EINVAL);
  CHECK_RC(aioc_gen_result(g, NULL), -EINVAL);
  aioc_gen_free(g);
  CHECK_EQ(nfreed, 2);
}

static int return_value_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  return_value_checks();
  return 0;
}

TEST(test_return_value) {
  CHECK_RC(run_main(return_value_main, NULL, NULL), 0);
  aioc_loop *loop = test_loop(1);
  return_value_checks(); /* plain code */
  CLOSE_CLEAN(loop);
}

/* ---- who owns a value whose yield failed ---- */

/* Catches the close at its yield and yields again while closing: that
 * yield fails (AIOC_EGENEXIT) and its value goes to item_free. */
static int yields_in_close(void *arg, aioc_gen *g) {
  (void)arg;
  int rc = aioc_gen_yield(g, strdup("taken"), NULL);
  CHECK_RC(rc, AIOC_EGENEXIT);
  rc = aioc_gen_yield(g, strdup("refused"), NULL);
  CHECK_RC(rc, AIOC_EGENEXIT);
  return 0;
}

/* Works in a shield past its consumer's timeout (which cancels it), then
 * yields: the yield fails with -ECANCELED and its value goes to
 * item_free. With a deadline in scope instead, -ETIMEDOUT. */
static int yields_when_stopped(void *arg, aioc_gen *g) {
  aioc_scope *dl = NULL, *sh;
  if (arg) CHECK_RC(aioc_timeout_enter(&dl, 0.01), 0);
  CHECK_RC(aioc_shield_enter(&sh, 1), 0);
  CHECK_RC(aioc_sleep(0.1), 0);
  IGNORE_RC(aioc_scope_exit(sh));
  aioc_scope_free(sh);
  int rc = aioc_gen_yield(g, strdup("refused"), NULL);
  CHECK_RC(rc, arg ? -ETIMEDOUT : -ECANCELED);
  if (dl) {
    IGNORE_RC(aioc_scope_exit(dl));
    aioc_scope_free(dl);
  }
  return rc;
}

/* Yields a value the consumer takes, then gets a thrown code at that
 * yield: the value is the consumer's, the body does not touch it. */
static int gets_thrown(void *arg, aioc_gen *g) {
  (void)arg;
  return aioc_gen_yield(g, strdup("taken"), NULL);
}

static int yield_ownership_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_gen_options o = {.item_free = count_free};
  aioc_gen *g;
  void *it;
  /* A close under way. */
  nfreed = 0;
  CHECK_RC(aioc_gen_new(&g, yields_in_close, NULL, &o), 0);
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), 0);
  CHECK_STR(it, "taken");
  free(it);
  CHECK_RC(aioc_gen_close(g), AIOC_EGENYIELD);
  CHECK_EQ(nfreed, 1); /* "refused", not "taken" */
  aioc_gen_free(g);
  CHECK_EQ(nfreed, 1);
  /* A cancellation (cancel-on-timeout), then a deadline in scope. */
  for (int deadline = 0; deadline <= 1; deadline++) {
    nfreed = 0;
    aioc_gen_options oc = {.item_free = count_free,
                           .flags = AIOC_GEN_CANCEL_ON_TIMEOUT};
    CHECK_RC(aioc_gen_new(&g, yields_when_stopped, deadline ? &oc : NULL,
                          deadline ? &o : &oc),
             0);
    if (deadline)
      CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), -ETIMEDOUT);
    else {
      CHECK_RC(aioc_gen_next(g, &it, 0.05), -ETIMEDOUT);
      CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), AIOC_EXHAUSTED);
    }
    CHECK(it == NULL);
    CHECK_EQ(nfreed, 1);
    aioc_gen_free(g);
    CHECK_EQ(nfreed, 1);
  }
  /* A throw after the value was taken. */
  nfreed = 0;
  CHECK_RC(aioc_gen_new(&g, gets_thrown, NULL, &o), 0);
  CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), 0);
  void *again;
  CHECK_RC(aioc_gen_throw(g, -EIO, &again, AIOC_FOREVER), -EIO);
  CHECK_STR(it, "taken"); /* still ours */
  free(it);
  aioc_gen_free(g);
  CHECK_EQ(nfreed, 0);
  return 0;
}

/* One rule for a yielded value, whatever the yield returns: it is never
 * the body's again. Delivered, it is the consumer's; refused (a close
 * under way, a cancellation, a deadline), it goes to item_free. */
TEST(test_yield_ownership) {
  CHECK_RC(run_main(yield_ownership_main, NULL, NULL), 0);
}

/* ---- error messages in plain code ---- */

static int fails_with_message(void *arg, aioc_gen *g) {
  int rc = aioc_gen_yield(g, AIOC_INT(1), NULL);
  if (rc < 0) return rc;
  if (arg) IGNORE_RC(aioc_sleep(0.01)); /* fails when plain code waits */
  return aioc_error(-EIO, "body failed (%s)", arg ? "waited" : "at once");
}

/* A body's error reaches plain code with its message, through
 * aioc_error_message(), whether plain code waited for it or found it
 * there. */
TEST(test_plain_error_message) {
  aioc_loop *loop = test_loop(1);
  for (int waited = 0; waited <= 1; waited++) {
    aioc_gen *g;
    void *it;
    CHECK_RC(aioc_gen_new(&g, fails_with_message, waited ? g_log : NULL, NULL),
             0);
    CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), 0);
    if (!waited) {
      /* The body fails while nobody waits; the next request finds it. */
      CHECK_RC(aioc_gen_next(g, &it, 0), -ETIMEDOUT);
    }
    CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), -EIO);
    CHECK_STR(aioc_error_message(),
              waited ? "body failed (waited)" : "body failed (at once)");
    CHECK_RC(aioc_gen_next(g, &it, AIOC_FOREVER), AIOC_EXHAUSTED);
    aioc_gen_free(g);
  }
  CLOSE_CLEAN(loop);
}

CHECK_MAIN(120)

/* The event loop: lifetime, callbacks and their order, timers, handles,
 * the clock (real and virtual), the run functions, thread-safe calls,
 * bad input, reports, error names and the version. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define CHECK_OWN_LOG /* ilog below: callbacks append to it */
#include "check.h"
#include "loop/loop.h" /* the internal poller: aioc__poll_add/del */
#include <sys/epoll.h>

/* ---- helpers ---------------------------------------------------------- */

/* A log of small integers, appended by callbacks. */
typedef struct ilog {
  int v[256];
  int n;
} ilog;

static ilog g_log;

static void log_reset(void) { memset(&g_log, 0, sizeof g_log); }

static void log_cb(void *arg) {
  if (g_log.n < 256) g_log.v[g_log.n++] = (int)AIOC_TO_INT(arg);
}

static void stop_cb(void *arg) { aioc_loop_stop((aioc_loop *)arg); }

static int counter;
static void count_cb(void *arg) {
  (void)arg;
  counter++;
}

/* Records the loop time at which it runs. */
static double g_times[64];
static int g_ntimes;
static void time_cb(void *arg) {
  if (g_ntimes < 64) g_times[g_ntimes++] = aioc_loop_time((aioc_loop *)arg);
}

static void wall_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* ---- lifetime --------------------------------------------------------- */

TEST(test_new_close) {
  aioc_loop *loop = NULL;
  CHECK_RC(aioc_loop_new(&loop, NULL), 0);
  CHECK(loop != NULL);
  CHECK(!aioc_loop_is_running(loop));
  CHECK(!aioc_loop_is_closed(loop));
  CHECK(aioc_get_running_loop() == NULL);
  CHECK_RC(aioc_loop_close(loop), 0);
  aioc_loop_free(loop);

  aioc_loop_options o = {.virtual_clock = 1, .quiet = 1};
  CHECK_RC(aioc_loop_new(&loop, &o), 0);
  CHECK_DBL(aioc_loop_time(loop), 0.0, 0);
  CHECK_EQ(aioc_all_tasks(loop, NULL, 0), 0);
  CLOSE_CLEAN(loop);

  CHECK_RC(aioc_loop_new(NULL, NULL), -EINVAL);
}

/* Closing from inside the running loop is refused and closes nothing. */
static int close_rc_inside = 1;
static int running_inside = 0;
static aioc_loop *running_seen = NULL;
static void close_inside_cb(void *arg) {
  aioc_loop *loop = arg;
  running_seen = aioc_get_running_loop();
  running_inside = aioc_loop_is_running(loop);
  close_rc_inside = aioc_loop_close(loop);
  aioc_loop_stop(loop);
}

TEST(test_close_running) {
  aioc_loop *loop = test_loop(1);
  CHECK_RC(aioc_call_soon(NULL, loop, close_inside_cb, loop), 0);
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  CHECK_RC(close_rc_inside, AIOC_ERUNNING);
  CHECK(running_seen == loop);
  CHECK(running_inside);
  CHECK(!aioc_loop_is_running(loop));
  CHECK(!aioc_loop_is_closed(loop));
  CHECK(aioc_get_running_loop() == NULL);
  /* Still usable: nothing was closed. */
  counter = 0;
  CHECK_RC(aioc_call_soon(NULL, loop, count_cb, NULL), 0);
  CHECK_RC(aioc_call_soon(NULL, loop, stop_cb, loop), 0);
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  CHECK_EQ(counter, 1);
  CLOSE_CLEAN(loop);
}

/* A closed loop is observed from the report handler that its close calls
 * (the loop is closed but still valid there): every use is refused with
 * AIOC_ECLOSED, and a second close too. */
typedef struct closed_probe {
  int calls;
  int is_closed;
  int close_rc, soon_rc, later_rc, at_rc, ts_rc, spawn_rc, future_rc, run_rc,
      run_once_rc, set_current_rc;
  aioc_handle *h;
  aioc_task *t;
  aioc_future *f;
} closed_probe;

static int never_runs_fn(void *arg, void **result) {
  (void)result;
  (*(int *)arg)++;
  return 0;
}

static int ran_never = 0;

static void closed_probe_report(void *arg, aioc_loop *loop,
                                const aioc_report *r) {
  closed_probe *p = arg;
  (void)r;
  if (p->calls++) return;
  p->is_closed = aioc_loop_is_closed(loop);
  p->close_rc = aioc_loop_close(loop);
  p->soon_rc = aioc_call_soon(&p->h, loop, count_cb, NULL);
  p->later_rc = aioc_call_later(NULL, loop, 1.0, count_cb, NULL);
  p->at_rc = aioc_call_at(NULL, loop, 1.0, count_cb, NULL);
  p->ts_rc = aioc_call_soon_threadsafe(loop, count_cb, NULL);
  p->spawn_rc = aioc_spawn_ex(&p->t, loop, never_runs_fn, &ran_never, NULL);
  p->future_rc = aioc_future_new(&p->f, loop);
  p->run_rc = aioc_loop_run_forever(loop);
  p->run_once_rc = aioc_loop_run_once(loop);
  p->set_current_rc = aioc_loop_set_current(loop);
}

static int sleeper_fn(void *arg, void **result) {
  (void)arg;
  (void)result;
  return aioc_sleep(1000.0);
}

TEST(test_closed_loop_refuses) {
  aioc_loop *loop = test_loop(1);
  closed_probe p;
  memset(&p, 0, sizeof p);
  p.close_rc = p.soon_rc = p.later_rc = p.at_rc = p.ts_rc = p.spawn_rc =
      p.future_rc = p.run_rc = p.run_once_rc = p.set_current_rc = 12345;
  CHECK_RC(aioc_loop_set_report_handler(loop, closed_probe_report, &p), 0);
  aioc_task *t;
  CHECK_RC(aioc_spawn_ex(&t, loop, sleeper_fn, NULL, NULL), 0);
  CHECK(aioc_loop_run_once(loop) >= 0); /* t starts, sleeps */
  CHECK_EQ(aioc_all_tasks(loop, NULL, 0), 1);
  counter = 0;
  CHECK_RC(aioc_loop_close(loop), 0);
  aioc_loop_free(loop);
  CHECK_EQ(p.calls, 1);
  CHECK(p.is_closed);
  CHECK_RC(p.close_rc, AIOC_ECLOSED);
  CHECK_RC(p.soon_rc, AIOC_ECLOSED);
  CHECK(p.h == NULL);
  CHECK_RC(p.later_rc, AIOC_ECLOSED);
  CHECK_RC(p.at_rc, AIOC_ECLOSED);
  CHECK_RC(p.ts_rc, AIOC_ECLOSED);
  CHECK_RC(p.spawn_rc, AIOC_ECLOSED);
  CHECK(p.t == NULL);
  CHECK_RC(p.future_rc, AIOC_ECLOSED);
  CHECK(p.f == NULL);
  CHECK_RC(p.run_rc, AIOC_ECLOSED);
  CHECK_RC(p.run_once_rc, AIOC_ECLOSED);
  CHECK_RC(p.set_current_rc, AIOC_ECLOSED);
  CHECK_EQ(counter, 0);
  CHECK_EQ(ran_never, 0);
  /* The pending task's handle is still valid, and it ended cancelled. */
  CHECK_EQ(aioc_future_state(aioc_task_future(t)), AIOC_FUTURE_CANCELLED);
  aioc_handle_unref(p.h);
  aioc_task_unref(p.t);
  aioc_future_unref(p.f);
  aioc_task_unref(t);
}

/* ---- call_soon, call_later, call_at ------------------------------------ */

TEST(test_call_soon_fifo) {
  aioc_loop *loop = test_loop(1);
  log_reset();
  for (int i = 0; i < 100; i++)
    CHECK_RC(aioc_call_soon(NULL, loop, log_cb, AIOC_INT(i)), 0);
  CHECK_RC(aioc_call_soon(NULL, loop, stop_cb, loop), 0);
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  CHECK_EQ(g_log.n, 100);
  for (int i = 0; i < g_log.n; i++) CHECK_EQ(g_log.v[i], i);
  CHECK_DBL(aioc_loop_time(loop), 0.0, 0);
  CLOSE_CLEAN(loop);
}

/* Callbacks scheduled by a callback run after those already scheduled. */
static void chain_a(void *arg) {
  log_cb(AIOC_INT(1));
  CHECK_RC(aioc_call_soon(NULL, (aioc_loop *)arg, log_cb, AIOC_INT(4)), 0);
}
static void chain_b(void *arg) {
  log_cb(AIOC_INT(2));
  CHECK_RC(aioc_call_soon(NULL, (aioc_loop *)arg, log_cb, AIOC_INT(5)), 0);
}

TEST(test_call_soon_nested_order) {
  aioc_loop *loop = test_loop(1);
  log_reset();
  CHECK_RC(aioc_call_soon(NULL, loop, chain_a, loop), 0);
  CHECK_RC(aioc_call_soon(NULL, loop, chain_b, loop), 0);
  CHECK_RC(aioc_call_soon(NULL, loop, log_cb, AIOC_INT(3)), 0);
  CHECK_RC(aioc_call_later(NULL, loop, 0.5, stop_cb, loop), 0);
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  CHECK_EQ(g_log.n, 5);
  for (int i = 0; i < g_log.n; i++) CHECK_EQ(g_log.v[i], i + 1);
  CLOSE_CLEAN(loop);
}

TEST(test_call_later_order) {
  aioc_loop *loop = test_loop(1);
  log_reset();
  g_ntimes = 0;
  static const double delays[] = {3.0, 1.0, 2.5, 0.25, 2.0, 0.0};
  for (int i = 0; i < 6; i++)
    CHECK_RC(aioc_call_later(NULL, loop, delays[i], log_cb, AIOC_INT(i)), 0);
  for (int i = 0; i < 6; i++)
    CHECK_RC(aioc_call_later(NULL, loop, delays[i], time_cb, loop), 0);
  CHECK_RC(aioc_call_later(NULL, loop, 3.0, stop_cb, loop), 0);
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  static const int want[] = {5, 3, 1, 4, 2, 0};
  static const double wtimes[] = {0.0, 0.25, 1.0, 2.0, 2.5, 3.0};
  CHECK_EQ(g_log.n, 6);
  for (int i = 0; i < 6; i++) CHECK_EQ(g_log.v[i], want[i]);
  CHECK_EQ(g_ntimes, 6);
  for (int i = 0; i < 6; i++) CHECK_DBL(g_times[i], wtimes[i], 1e-6);
  CHECK_DBL(aioc_loop_time(loop), 3.0, 1e-6);
  CLOSE_CLEAN(loop);
}

/* call_at: absolute times; equal deadlines run in scheduling order, also
 * when mixed with call_later that lands on the same deadline; a deadline
 * in the past runs in the next iteration without moving the clock back. */
TEST(test_call_at_equal_deadlines_fifo) {
  aioc_loop *loop = test_loop(1);
  log_reset();
  CHECK_RC(aioc_call_at(NULL, loop, 5.0, log_cb, AIOC_INT(0)), 0);
  CHECK_RC(aioc_call_at(NULL, loop, 2.0, log_cb, AIOC_INT(100)), 0);
  CHECK_RC(aioc_call_at(NULL, loop, 5.0, log_cb, AIOC_INT(1)), 0);
  CHECK_RC(aioc_call_later(NULL, loop, 5.0, log_cb, AIOC_INT(2)), 0);
  CHECK_RC(aioc_call_at(NULL, loop, 5.0, log_cb, AIOC_INT(3)), 0);
  CHECK_RC(aioc_call_at(NULL, loop, 7.0, log_cb, AIOC_INT(200)), 0);
  CHECK_RC(aioc_call_at(NULL, loop, 5.0, log_cb, AIOC_INT(4)), 0);
  CHECK_RC(aioc_call_at(NULL, loop, 5.0, log_cb, AIOC_INT(5)), 0);
  CHECK_RC(aioc_call_at(NULL, loop, 7.0, stop_cb, loop), 0);
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  static const int want[] = {100, 0, 1, 2, 3, 4, 5, 200};
  CHECK_EQ(g_log.n, 8);
  for (int i = 0; i < 8 && i < g_log.n; i++) CHECK_EQ(g_log.v[i], want[i]);
  CHECK_DBL(aioc_loop_time(loop), 7.0, 1e-6);

  /* In the past: runs next, the clock stays at 7. */
  log_reset();
  g_ntimes = 0;
  CHECK_RC(aioc_call_at(NULL, loop, 1.0, log_cb, AIOC_INT(9)), 0);
  CHECK_RC(aioc_call_at(NULL, loop, -3.0, log_cb, AIOC_INT(8)), 0);
  CHECK_RC(aioc_call_at(NULL, loop, 1.0, time_cb, loop), 0);
  CHECK_RC(aioc_call_later(NULL, loop, 1.0, stop_cb, loop), 0);
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  CHECK_EQ(g_log.n, 2);
  CHECK_EQ(g_log.v[0], 8); /* earlier deadline first */
  CHECK_EQ(g_log.v[1], 9);
  CHECK_EQ(g_ntimes, 1);
  CHECK_DBL(g_times[0], 7.0, 1e-6);
  CHECK_DBL(aioc_loop_time(loop), 8.0, 1e-6);
  CLOSE_CLEAN(loop);
}

/* Many timers in scrambled order with many ties: the heap must deliver
 * them sorted by (deadline, scheduling order). */
TEST(test_timer_heap_many) {
  aioc_loop *loop = test_loop(1);
  log_reset();
  enum { N = 200 };
  static int deadline_of[N];
  aioc_handle *hs[N];
  unsigned x = 12345;
  for (int i = 0; i < N; i++) {
    x = x * 1103515245u + 12345u;
    deadline_of[i] = (int)((x >> 16) % 20); /* 0..19: many ties */
    CHECK_RC(
        aioc_call_at(&hs[i], loop, 1.0 + deadline_of[i], log_cb, AIOC_INT(i)),
        0);
  }
  /* Cancel every seventh: they must vanish without disturbing the rest. */
  for (int i = 0; i < N; i += 7) CHECK_EQ(aioc_handle_cancel(hs[i]), 1);
  CHECK_RC(aioc_call_at(NULL, loop, 50.0, stop_cb, loop), 0);
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  int expect = N - (N + 6) / 7;
  CHECK_EQ(g_log.n, expect);
  int k = 0;
  for (int d = 0; d < 20; d++)
    for (int i = 0; i < N; i++)
      if (deadline_of[i] == d && i % 7 != 0) {
        if (k < g_log.n && g_log.v[k] != i) {
          CHECK_EQ(g_log.v[k], i);
          d = 20;
          break;
        }
        k++;
      }
  CHECK_EQ(k, expect);
  for (int i = 0; i < N; i++)
    aioc_handle_unref(hs[i]);
  CLOSE_CLEAN(loop);
}

/* ---- handles ------------------------------------------------------------ */

static int cancel_other_rc;
static void cancel_other_cb(void *arg) {
  cancel_other_rc = aioc_handle_cancel(*(aioc_handle **)arg);
}

TEST(test_handle_cancel) {
  aioc_loop *loop = test_loop(1);
  log_reset();
  aioc_handle *h1, *h2, *h3, *h4;
  CHECK_RC(aioc_call_later(&h1, loop, 1.0, log_cb, AIOC_INT(1)), 0);
  CHECK_RC(aioc_call_later(&h2, loop, 2.0, log_cb, AIOC_INT(2)), 0);
  CHECK_RC(aioc_call_soon(&h3, loop, log_cb, AIOC_INT(3)), 0);
  CHECK_RC(aioc_call_soon(&h4, loop, log_cb, AIOC_INT(4)), 0);
  CHECK(h1 && h2 && h3 && h4);
  CHECK(!aioc_handle_is_cancelled(h1));
  CHECK_EQ(aioc_handle_cancel(h1), 1);
  CHECK(aioc_handle_is_cancelled(h1));
  CHECK_EQ(aioc_handle_cancel(h1), 0); /* twice: harmless */
  CHECK_EQ(aioc_handle_cancel(h3), 1); /* a call_soon too */
  CHECK_EQ(aioc_handle_cancel(h3), 0);
  CHECK_RC(aioc_call_later(NULL, loop, 3.0, stop_cb, loop), 0);
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  CHECK_EQ(g_log.n, 2);
  CHECK_EQ(g_log.v[0], 4);
  CHECK_EQ(g_log.v[1], 2);
  /* Cancelling after it ran: 0, and it does not count as cancelled. */
  CHECK_EQ(aioc_handle_cancel(h2), 0);
  CHECK(!aioc_handle_is_cancelled(h2));
  CHECK_EQ(aioc_handle_cancel(h4), 0);
  CHECK_EQ(aioc_handle_cancel(NULL), -EINVAL);
  aioc_handle_unref(h1);
  aioc_handle_unref(h2);
  aioc_handle_unref(h3);
  aioc_handle_unref(h4);
  aioc_handle_unref(NULL);

  /* Due in the same iteration: the first cancels the second, which is
   * already out of the timer heap but has not run: it must not run. */
  log_reset();
  CHECK_RC(aioc_call_later(&h1, loop, 1.0, cancel_other_cb, &h2), 0);
  CHECK_RC(aioc_call_later(&h2, loop, 1.0, log_cb, AIOC_INT(7)), 0);
  CHECK_RC(aioc_call_later(NULL, loop, 2.0, stop_cb, loop), 0);
  cancel_other_rc = 12345;
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  CHECK_EQ(cancel_other_rc, 1);
  CHECK_EQ(g_log.n, 0);
  CHECK(aioc_handle_is_cancelled(h2));
  CHECK(!aioc_handle_is_cancelled(h1));
  CHECK_EQ(aioc_handle_cancel(h1), 0); /* it ran */
  aioc_handle_unref(h1);
  aioc_handle_unref(h2);
  CLOSE_CLEAN(loop);
}

/* call_soon handles in one batch: the first cancels the third. */
TEST(test_handle_cancel_same_batch) {
  aioc_loop *loop = test_loop(1);
  log_reset();
  aioc_handle *h1, *h2, *h3;
  CHECK_RC(aioc_call_soon(&h1, loop, cancel_other_cb, &h3), 0);
  CHECK_RC(aioc_call_soon(&h2, loop, log_cb, AIOC_INT(2)), 0);
  CHECK_RC(aioc_call_soon(&h3, loop, log_cb, AIOC_INT(3)), 0);
  cancel_other_rc = 12345;
  CHECK(aioc_loop_run_once(loop) >= 0);
  CHECK_EQ(cancel_other_rc, 1);
  CHECK_EQ(g_log.n, 1);
  CHECK_EQ(g_log.v[0], 2);
  CHECK(aioc_handle_is_cancelled(h3));
  aioc_handle_unref(h1);
  aioc_handle_unref(h2);
  aioc_handle_unref(h3);
  CHECK(aioc_loop_run_once(loop) >= 0);
  CHECK_EQ(g_log.n, 1);
  CLOSE_CLEAN(loop);
}

/* A released handle's callback still runs; releasing after it ran, and
 * cancelling before releasing, leak nothing (ASan checks). */
TEST(test_handle_release) {
  aioc_loop *loop = test_loop(1);
  log_reset();
  aioc_handle *h1, *h2, *h3;
  CHECK_RC(aioc_call_later(&h1, loop, 1.0, log_cb, AIOC_INT(1)), 0);
  CHECK_RC(aioc_call_soon(&h2, loop, log_cb, AIOC_INT(2)), 0);
  CHECK_RC(aioc_call_later(&h3, loop, 0.5, log_cb, AIOC_INT(3)), 0);
  aioc_handle_unref(h1);
  aioc_handle_unref(h2);
  CHECK_RC(aioc_call_later(NULL, loop, 2.0, stop_cb, loop), 0);
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  CHECK_EQ(g_log.n, 3);
  CHECK_EQ(g_log.v[0], 2);
  CHECK_EQ(g_log.v[1], 3);
  CHECK_EQ(g_log.v[2], 1);
  aioc_handle_unref(h3);
  /* A handle for a callback that never runs (loop closed first). */
  aioc_handle *h4;
  CHECK_RC(aioc_call_later(&h4, loop, 100.0, log_cb, AIOC_INT(4)), 0);
  CLOSE_CLEAN(loop);
  aioc_handle_unref(h4);
  CHECK_EQ(g_log.n, 3);
}

/* ---- clock ------------------------------------------------------------- */

static double cached_a, cached_b;
static void cached_time_cb(void *arg) {
  aioc_loop *loop = arg;
  cached_a = aioc_loop_time(loop);
  /* Let the real clock move on by at least 2 ms. */
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  do {
    clock_gettime(CLOCK_MONOTONIC, &t1);
  } while ((t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec) <
           2000000L);
  cached_b = aioc_loop_time(loop);
}

TEST(test_time_cached_monotonic) {
  aioc_loop *loop = test_loop(0);
  g_ntimes = 0;
  CHECK_RC(aioc_call_soon(NULL, loop, cached_time_cb, loop), 0);
  CHECK_RC(aioc_call_soon(NULL, loop, time_cb, loop), 0);
  double scheduled = aioc_loop_time(loop); /* fresh: the loop is not running */
  CHECK_RC(aioc_call_later(NULL, loop, 0.003, time_cb, loop), 0);
  CHECK_RC(aioc_call_later(NULL, loop, 0.003, stop_cb, loop), 0);
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  /* Within one iteration the time does not change. */
  CHECK_DBL(cached_a, cached_b, 0);
  CHECK(cached_a > 0);
  CHECK_EQ(g_ntimes, 2);
  CHECK_DBL(g_times[0], cached_a, 0); /* same iteration */
  /* Later iterations: monotonic, and the 3 ms timer did not fire early
   * (its deadline counts from when it was scheduled). */
  CHECK(g_times[1] >= g_times[0]);
  CHECK(g_times[1] >= scheduled + 0.003 - 1e-9);
  CHECK(g_times[0] >= scheduled);
  CLOSE_CLEAN(loop);
}

/* Virtual clock: a long timer fires at once in wall time (the watchdog
 * would kill a real wait) and the clock then reads the deadline exactly. */
TEST(test_virtual_clock) {
  aioc_loop *loop = test_loop(1);
  g_ntimes = 0;
  CHECK_DBL(aioc_loop_time(loop), 0.0, 0);
  CHECK_DBL(aioc_time(), 0.0, 0);
  CHECK_RC(aioc_call_later(NULL, loop, 100.0, time_cb, loop), 0);
  CHECK_RC(aioc_call_later(NULL, loop, 100.0, stop_cb, loop), 0);
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  CHECK_EQ(g_ntimes, 1);
  CHECK(g_times[0] == 100.0);
  CHECK(aioc_loop_time(loop) == 100.0);
  CHECK(aioc_time() == 100.0);
  /* A huge delay: still instant. */
  CHECK_RC(aioc_call_later(NULL, loop, 1e6, stop_cb, loop), 0);
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  CHECK_DBL(aioc_loop_time(loop), 1e6 + 100.0, 1e-6);
  CLOSE_CLEAN(loop);
}

/* Virtual time moves only when nothing is ready: a chain of call_soon
 * callbacks all run at time 0, before an earlier-scheduled timer. */
static int chain_left;
static void chain_cb(void *arg) {
  aioc_loop *loop = arg;
  log_cb(AIOC_INT((int)(aioc_loop_time(loop) * 1000)));
  if (--chain_left > 0) CHECK_RC(aioc_call_soon(NULL, loop, chain_cb, loop), 0);
}
static void chain_timer_cb(void *arg) {
  log_cb(AIOC_INT(-1 - chain_left));
  aioc_loop_stop((aioc_loop *)arg);
}

TEST(test_virtual_clock_waits_for_ready) {
  aioc_loop *loop = test_loop(1);
  log_reset();
  chain_left = 10;
  CHECK_RC(aioc_call_later(NULL, loop, 0.001, chain_timer_cb, loop), 0);
  CHECK_RC(aioc_call_soon(NULL, loop, chain_cb, loop), 0);
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  CHECK_EQ(g_log.n, 11);
  for (int i = 0; i < 10 && i < g_log.n; i++) CHECK_EQ(g_log.v[i], 0);
  CHECK_EQ(g_log.v[10], -1); /* chain finished (0 left) before the timer */
  CHECK_DBL(aioc_loop_time(loop), 0.001, 1e-9);
  CLOSE_CLEAN(loop);
}

/* ---- run functions ---------------------------------------------------- */

/* Stop from a callback: the rest of the current batch still runs, the
 * callbacks that batch schedules wait for the next run. */
static void stop_and_schedule_cb(void *arg) {
  aioc_loop *loop = arg;
  log_cb(AIOC_INT(1));
  aioc_loop_stop(loop);
  CHECK_RC(aioc_call_soon(NULL, loop, log_cb, AIOC_INT(3)), 0);
}

TEST(test_run_forever_stop) {
  aioc_loop *loop = test_loop(1);
  log_reset();
  CHECK_RC(aioc_call_soon(NULL, loop, stop_and_schedule_cb, loop), 0);
  CHECK_RC(aioc_call_soon(NULL, loop, log_cb, AIOC_INT(2)), 0);
  CHECK_RC(aioc_call_later(NULL, loop, 4.0, log_cb, AIOC_INT(4)), 0);
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  CHECK(!aioc_loop_is_running(loop));
  CHECK_EQ(g_log.n, 2);
  CHECK_EQ(g_log.v[0], 1);
  CHECK_EQ(g_log.v[1], 2);
  CHECK_DBL(aioc_loop_time(loop), 0.0, 0);
  /* Run again: the rest follows. */
  CHECK_RC(aioc_call_later(NULL, loop, 4.0, stop_cb, loop), 0);
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  CHECK_EQ(g_log.n, 4);
  CHECK_EQ(g_log.v[2], 3);
  CHECK_EQ(g_log.v[3], 4);
  CHECK_DBL(aioc_loop_time(loop), 4.0, 1e-6);
  CLOSE_CLEAN(loop);
}

/* stop() on a loop that does not run: the next run returns after one
 * iteration (as asyncio does), so what was ready does run. */
TEST(test_stop_before_run) {
  aioc_loop *loop = test_loop(1);
  log_reset();
  CHECK_RC(aioc_call_soon(NULL, loop, log_cb, AIOC_INT(1)), 0);
  CHECK_RC(aioc_call_later(NULL, loop, 5.0, log_cb, AIOC_INT(2)), 0);
  CHECK_RC(aioc_loop_stop(loop), 0);
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  CHECK_EQ(g_log.n, 1); /* one iteration: the ready callback, not the timer */
  if (g_log.n == 0) aioc_loop_run_once(loop); /* do not leave it behind */
  /* The stop was consumed: the next run goes on until stopped again. */
  CHECK_RC(aioc_call_later(NULL, loop, 6.0, stop_cb, loop), 0);
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  CHECK_EQ(g_log.n, 2);
  CHECK_EQ(g_log.v[g_log.n - 1], 2);
  CHECK_DBL(aioc_loop_time(loop), 6.0, 1e-6);
  CLOSE_CLEAN(loop);
}

static int sleep_and_return(void *arg, void **result) {
  double d = *(double *)arg;
  int rc = aioc_sleep(d);
  if (rc < 0) return rc;
  *result = AIOC_INT(77);
  return 0;
}

static int fail_fn(void *arg, void **result) {
  (void)arg;
  (void)result;
  return aioc_error(-EIO, "boom");
}

static void set_result_cb(void *arg) {
  CHECK_RC(aioc_future_set_result((aioc_future *)arg, AIOC_INT(5), NULL), 0);
}

TEST(test_run_until_complete) {
  aioc_loop *loop = test_loop(1);
  double d = 2.5;
  aioc_task *t;
  CHECK_RC(aioc_spawn_ex(&t, loop, sleep_and_return, &d, NULL), 0);
  /* A callback after the task's end must not have run yet on return. */
  counter = 0;
  CHECK_RC(aioc_call_later(NULL, loop, 3.0, count_cb, NULL), 0);
  CHECK_RC(aioc_loop_run_until_complete(loop, aioc_task_future(t)), 0);
  CHECK(aioc_future_is_done(aioc_task_future(t)));
  CHECK_DBL(aioc_loop_time(loop), 2.5, 1e-6);
  CHECK_EQ(counter, 0);
  void *r = NULL;
  CHECK_RC(aioc_future_result(aioc_task_future(t), &r), 0);
  CHECK_EQ(AIOC_TO_INT(r), 77);
  /* Already done: returns at once. */
  CHECK_RC(aioc_loop_run_until_complete(loop, aioc_task_future(t)), 0);
  aioc_task_unref(t);

  /* A failed task: run_until_complete still returns 0 ("whatever its
   * outcome"); the error is in the future. */
  CHECK_RC(aioc_spawn_ex(&t, loop, fail_fn, NULL, NULL), 0);
  CHECK_RC(aioc_loop_run_until_complete(loop, aioc_task_future(t)), 0);
  CHECK_RC(aioc_future_error(aioc_task_future(t)), -EIO);
  CHECK_STR(aioc_future_error_message(aioc_task_future(t)), "boom");
  aioc_task_unref(t);

  /* A plain future completed by a timer callback. */
  aioc_future *f;
  CHECK_RC(aioc_future_new(&f, loop), 0);
  CHECK_RC(aioc_loop_run_until_complete(loop, NULL), -EINVAL);
  CHECK_RC(aioc_loop_run_until_complete(NULL, f), -EINVAL);
  aioc_loop *other = NULL;
  CHECK_RC(aioc_loop_new(&other, NULL), 0);
  CHECK_RC(aioc_loop_run_until_complete(other, f), -EINVAL);
  CHECK_RC(aioc_loop_close(other), 0);
  aioc_loop_free(other);
  double before = aioc_loop_time(loop);
  CHECK_RC(aioc_call_later(NULL, loop, 1.5, set_result_cb, f), 0);
  CHECK_RC(aioc_loop_run_until_complete(loop, f), 0);
  CHECK_DBL(aioc_loop_time(loop), before + 1.5, 1e-6);
  r = NULL;
  CHECK_RC(aioc_future_result(f, &r), 0);
  CHECK_EQ(AIOC_TO_INT(r), 5);
  CHECK_EQ(counter, 1); /* the 3.0 callback ran on the way */
  aioc_future_unref(f);
  CLOSE_CLEAN(loop);
}

/* stop() makes run_until_complete return -EINTR with the future pending. */
TEST(test_run_until_complete_stopped) {
  aioc_loop *loop = test_loop(1);
  aioc_future *f;
  CHECK_RC(aioc_future_new(&f, loop), 0);
  CHECK_RC(aioc_call_later(NULL, loop, 1.0, stop_cb, loop), 0);
  CHECK_RC(aioc_loop_run_until_complete(loop, f), -EINTR);
  CHECK(!aioc_future_is_done(f));
  CHECK_DBL(aioc_loop_time(loop), 1.0, 1e-6);
  aioc_future_unref(f);
  CLOSE_CLEAN(loop);
}

/* run_once runs what was ready when the iteration began, without
 * waiting, and returns how many items it ran. */
static void chain_once(void *arg) {
  log_cb(AIOC_INT(1));
  CHECK_RC(aioc_call_soon(NULL, (aioc_loop *)arg, log_cb, AIOC_INT(3)), 0);
}

TEST(test_run_once) {
  aioc_loop *loop = test_loop(1);
  log_reset();
  CHECK_RC(aioc_loop_run_once(loop), 0); /* nothing to do: returns at once */
  CHECK_RC(aioc_call_soon(NULL, loop, chain_once, loop), 0);
  CHECK_RC(aioc_call_soon(NULL, loop, log_cb, AIOC_INT(2)), 0);
  CHECK_RC(aioc_call_later(NULL, loop, 10.0, log_cb, AIOC_INT(99)), 0);
  CHECK_RC(aioc_loop_run_once(loop), 2);
  CHECK_EQ(g_log.n, 2);
  CHECK(!aioc_loop_is_running(loop));
  CHECK(aioc_get_running_loop() == NULL);
  CHECK_RC(aioc_loop_run_once(loop), 1);
  CHECK_EQ(g_log.n, 3);
  CHECK_EQ(g_log.v[2], 3);
  /* Only a timer left: run_once does not wait for it. */
  CHECK_RC(aioc_loop_run_once(loop), 0);
  CHECK_EQ(g_log.n, 3);
  CHECK_RC(aioc_loop_run_once(NULL), -EINVAL);
  /* Let the timer fire to close clean. */
  CHECK_RC(aioc_call_later(NULL, loop, 10.0, stop_cb, loop), 0);
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  CHECK_EQ(g_log.n, 4);
  CLOSE_CLEAN(loop);
}

/* Running a loop from inside a running loop is refused. */
static int nested_forever_rc, nested_once_rc, nested_other_rc;
static void nested_run_cb(void *arg) {
  aioc_loop *loop = arg;
  nested_forever_rc = aioc_loop_run_forever(loop);
  nested_once_rc = aioc_loop_run_once(loop);
  aioc_loop *other = NULL;
  if (aioc_loop_new(&other, NULL) == 0) {
    nested_other_rc = aioc_loop_run_once(other);
    aioc_loop_free(other);
  }
  aioc_loop_stop(loop);
}

TEST(test_run_nested_refused) {
  aioc_loop *loop = test_loop(1);
  CHECK_RC(aioc_call_soon(NULL, loop, nested_run_cb, loop), 0);
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  CHECK_RC(nested_forever_rc, AIOC_ERUNNING);
  CHECK_RC(nested_once_rc, AIOC_ERUNNING);
  CHECK_RC(nested_other_rc, AIOC_ERUNNING);
  CLOSE_CLEAN(loop);
}

/* ---- threads ------------------------------------------------------------ */

typedef struct ts_ctx {
  aioc_loop *loop;
  atomic_int ran;
  atomic_int rc;
  pthread_t loop_thread;
  pthread_t cb_thread;
  int delay_ms;
} ts_ctx;

static void ts_cb(void *arg) {
  ts_ctx *c = arg;
  c->cb_thread = pthread_self();
  atomic_fetch_add(&c->ran, 1);
  aioc_loop_stop(c->loop);
}

static void *ts_thread(void *arg) {
  ts_ctx *c = arg;
  wall_sleep_ms(c->delay_ms); /* the loop is blocked in epoll by now */
  atomic_store(&c->rc, aioc_call_soon_threadsafe(c->loop, ts_cb, c));
  return NULL;
}

/* A real-clock loop with nothing to do blocks with no timeout; a call from
 * another thread must wake it, and the callback runs on the loop's thread.
 * (A missed wake-up hangs: the watchdog catches it.) */
TEST(test_call_soon_threadsafe) {
  aioc_loop *loop = test_loop(0);
  for (int round = 0; round < 3; round++) {
    ts_ctx c = {.loop = loop, .delay_ms = round == 0 ? 50 : round};
    atomic_init(&c.ran, 0);
    atomic_init(&c.rc, 12345);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, ts_thread, &c), 0);
    CHECK_RC(aioc_loop_run_forever(loop), 0);
    pthread_join(th, NULL);
    CHECK_RC(atomic_load(&c.rc), 0);
    CHECK_EQ(atomic_load(&c.ran), 1);
    CHECK(pthread_equal(c.cb_thread, pthread_self()));
  }
  CLOSE_CLEAN(loop);
}

/* Many threads, many calls: each runs exactly once. */
typedef struct ts_many {
  aioc_loop *loop;
  atomic_int done_threads;
} ts_many;
static int many_count;
static void many_cb(void *arg) {
  (void)arg;
  many_count++;
}
static void *many_thread(void *arg) {
  ts_many *m = arg;
  for (int i = 0; i < 500; i++)
    if (aioc_call_soon_threadsafe(m->loop, many_cb, NULL) != 0) abort();
  atomic_fetch_add(&m->done_threads, 1);
  return NULL;
}
static void many_check_cb(void *arg) {
  ts_many *m = arg;
  if (atomic_load(&m->done_threads) == 4 && many_count == 2000)
    aioc_loop_stop(m->loop);
  else
    CHECK_RC(aioc_call_later(NULL, m->loop, 0.001, many_check_cb, m), 0);
}

TEST(test_call_soon_threadsafe_many) {
  aioc_loop *loop = test_loop(0);
  ts_many m = {.loop = loop};
  atomic_init(&m.done_threads, 0);
  many_count = 0;
  pthread_t th[4];
  for (int i = 0; i < 4; i++)
    CHECK_EQ(pthread_create(&th[i], NULL, many_thread, &m), 0);
  CHECK_RC(aioc_call_soon(NULL, loop, many_check_cb, &m), 0);
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  CHECK_EQ(many_count, 2000);
  CLOSE_CLEAN(loop);
}

static void *stop_thread(void *arg) {
  ts_ctx *c = arg;
  wall_sleep_ms(c->delay_ms);
  atomic_store(&c->rc, aioc_loop_stop(c->loop));
  return NULL;
}

/* aioc_loop_stop is thread-safe and wakes a loop blocked in epoll. */
TEST(test_stop_from_thread) {
  aioc_loop *loop = test_loop(0);
  ts_ctx c = {.loop = loop, .delay_ms = 50};
  atomic_init(&c.ran, 0);
  atomic_init(&c.rc, 12345);
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, stop_thread, &c), 0);
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  pthread_join(th, NULL);
  CHECK_RC(atomic_load(&c.rc), 0);
  CHECK(!aioc_loop_is_running(loop));
  CLOSE_CLEAN(loop);
}

/* ---- bad input -------------------------------------------------------- */

TEST(test_bad_input) {
  aioc_loop *loop = test_loop(1);
  aioc_handle *h = (aioc_handle *)&h;
  CHECK_RC(aioc_call_soon(&h, NULL, count_cb, NULL), -EINVAL);
  CHECK(h == NULL);
  h = (aioc_handle *)&h;
  CHECK_RC(aioc_call_soon(&h, loop, NULL, NULL), -EINVAL);
  CHECK(h == NULL);
  CHECK_RC(aioc_call_later(NULL, NULL, 1.0, count_cb, NULL), -EINVAL);
  CHECK_RC(aioc_call_later(NULL, loop, 1.0, NULL, NULL), -EINVAL);
  h = (aioc_handle *)&h;
  CHECK_RC(aioc_call_later(&h, loop, -1.0, count_cb, NULL), -EINVAL);
  CHECK(h == NULL);
  CHECK_RC(aioc_call_later(NULL, loop, -1e-9, count_cb, NULL), -EINVAL);
  CHECK_RC(aioc_call_later(NULL, loop, NAN, count_cb, NULL), -EINVAL);
  CHECK_RC(aioc_call_later(NULL, loop, INFINITY, count_cb, NULL), -EINVAL);
  CHECK_RC(aioc_call_later(NULL, loop, AIOC_FOREVER, count_cb, NULL), -EINVAL);
  CHECK_RC(aioc_call_later(NULL, loop, -INFINITY, count_cb, NULL), -EINVAL);
  CHECK_RC(aioc_call_at(NULL, NULL, 1.0, count_cb, NULL), -EINVAL);
  CHECK_RC(aioc_call_at(NULL, loop, 1.0, NULL, NULL), -EINVAL);
  CHECK_RC(aioc_call_at(NULL, loop, NAN, count_cb, NULL), -EINVAL);
  CHECK_RC(aioc_call_at(NULL, loop, INFINITY, count_cb, NULL), -EINVAL);
  CHECK_RC(aioc_call_soon_threadsafe(NULL, count_cb, NULL), -EINVAL);
  CHECK_RC(aioc_call_soon_threadsafe(loop, NULL, NULL), -EINVAL);
  CHECK_RC(aioc_loop_close(NULL), -EINVAL);
  CHECK_RC(aioc_loop_run_forever(NULL), -EINVAL);
  CHECK_RC(aioc_loop_run_once(NULL), -EINVAL);
  CHECK_RC(aioc_loop_stop(NULL), -EINVAL);
  CHECK_RC(aioc_loop_set_report_handler(NULL, NULL, NULL), -EINVAL);
  CHECK_RC(aioc_handle_cancel(NULL), -EINVAL);
  CHECK(!aioc_handle_is_cancelled(NULL));
  CHECK(!aioc_loop_is_running(NULL));
  CHECK(!aioc_loop_is_closed(NULL));
  /* Nothing was scheduled by the failed calls. */
  counter = 0;
  CHECK_RC(aioc_call_later(NULL, loop, 1e3, stop_cb, loop), 0);
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  CHECK_EQ(counter, 0);
  CHECK_DBL(aioc_loop_time(loop), 1e3, 1e-6);
  CLOSE_CLEAN(loop);
}

/* ---- reports ---------------------------------------------------------- */

typedef struct reports {
  int n;
  char message[4][96];
  char task[4][32];
  int code[4];
  char detail[4][64];
  aioc_loop *loop[4];
} reports;

static void capture_report(void *arg, aioc_loop *loop, const aioc_report *r) {
  reports *rs = arg;
  if (rs->n >= 4) {
    rs->n++;
    return;
  }
  int i = rs->n++;
  snprintf(rs->message[i], sizeof rs->message[i], "%s",
           r->message ? r->message : "(null)");
  snprintf(rs->task[i], sizeof rs->task[i], "%s",
           r->task ? aioc_task_name(r->task) : "(none)");
  rs->code[i] = r->code;
  snprintf(rs->detail[i], sizeof rs->detail[i], "%s",
           r->detail ? r->detail : "(null)");
  rs->loop[i] = loop;
}

TEST(test_report_unretrieved) {
  aioc_loop *loop = test_loop(1);
  reports rs;
  memset(&rs, 0, sizeof rs);
  CHECK_RC(aioc_loop_set_report_handler(loop, capture_report, &rs), 0);
  aioc_task *t;
  aioc_task_options o = {.name = "failer"};
  CHECK_RC(aioc_spawn_ex(&t, loop, fail_fn, NULL, &o), 0);
  CHECK_RC(aioc_loop_run_until_complete(loop, aioc_task_future(t)), 0);
  CHECK_EQ(rs.n, 0); /* not yet: someone may still retrieve it */
  aioc_task_unref(t);
  CHECK_EQ(rs.n, 1);
  CHECK_STR(rs.message[0], "Task exception was never retrieved");
  CHECK_STR(rs.task[0], "failer");
  CHECK_RC(rs.code[0], -EIO);
  CHECK_STR(rs.detail[0], "boom");
  CHECK(rs.loop[0] == loop);

  /* Retrieved: no report. */
  CHECK_RC(aioc_spawn_ex(&t, loop, fail_fn, NULL, &o), 0);
  CHECK_RC(aioc_loop_run_until_complete(loop, aioc_task_future(t)), 0);
  CHECK_RC(aioc_future_result(aioc_task_future(t), NULL), -EIO);
  aioc_task_unref(t);
  CHECK_EQ(rs.n, 1);

  /* A task nobody holds a handle to reports when it ends. */
  CHECK_RC(aioc_spawn_ex(NULL, loop, fail_fn, NULL, &o), 0);
  CHECK_RC(aioc_call_later(NULL, loop, 1.0, stop_cb, loop), 0);
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  CHECK_EQ(rs.n, 2);
  CHECK_STR(rs.message[1], "Task exception was never retrieved");
  CHECK_RC(rs.code[1], -EIO);

  /* A plain future's error. */
  aioc_future *f;
  CHECK_RC(aioc_future_new(&f, loop), 0);
  CHECK_RC(aioc_future_set_error(f, -EPIPE, "pipe %d", 7), 0);
  aioc_future_unref(f);
  CHECK_EQ(rs.n, 3);
  CHECK_STR(rs.message[2], "Future exception was never retrieved");
  CHECK_STR(rs.task[2], "(none)");
  CHECK_RC(rs.code[2], -EPIPE);
  CHECK_STR(rs.detail[2], "pipe 7");
  CLOSE_CLEAN(loop);
  CHECK_EQ(rs.n, 3);
}

TEST(test_report_pending_at_close) {
  aioc_loop *loop = test_loop(1);
  reports rs;
  memset(&rs, 0, sizeof rs);
  CHECK_RC(aioc_loop_set_report_handler(loop, capture_report, &rs), 0);
  aioc_task *t;
  aioc_task_options o = {.name = "stuck"};
  CHECK_RC(aioc_spawn_ex(&t, loop, sleeper_fn, NULL, &o), 0);
  CHECK_RC(aioc_call_later(NULL, loop, 5.0, stop_cb, loop), 0);
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  CHECK_EQ(aioc_future_state(aioc_task_future(t)), AIOC_FUTURE_RUNNING);
  CHECK_EQ(aioc_all_tasks(loop, NULL, 0), 1);
  aioc_task *all[2] = {NULL, NULL};
  CHECK_EQ(aioc_all_tasks(loop, all, 2), 1);
  CHECK(all[0] == t);
  CHECK_EQ(rs.n, 0);
  CHECK_RC(aioc_loop_close(loop), 0);
  aioc_loop_free(loop);
  CHECK_EQ(rs.n, 1);
  CHECK_STR(rs.message[0], "Task was destroyed but it is pending");
  CHECK_STR(rs.task[0], "stuck");
  /* The handle stays valid; the task is marked cancelled. */
  CHECK_EQ(aioc_future_state(aioc_task_future(t)), AIOC_FUTURE_CANCELLED);
  CHECK_RC(aioc_future_error(aioc_task_future(t)), -ECANCELED);
  aioc_task_unref(t);
  CHECK_EQ(rs.n, 1);

  /* A quiet loop does not report. */
  aioc_loop_options qo = {.virtual_clock = 1, .quiet = 1};
  CHECK_RC(aioc_loop_new(&loop, &qo), 0);
  CHECK_RC(aioc_loop_set_report_handler(loop, capture_report, &rs), 0);
  CHECK_RC(aioc_spawn_ex(NULL, loop, sleeper_fn, NULL, &o), 0);
  CHECK_RC(aioc_call_later(NULL, loop, 5.0, stop_cb, loop), 0);
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  CHECK_EQ(aioc_all_tasks(loop, NULL, 0), 1);
  CHECK_RC(aioc_loop_close(loop), 0);
  aioc_loop_free(loop);
  CHECK_EQ(rs.n, 1);
}

/* ---- errors, version ------------------------------------------------- */

TEST(test_strerror_names) {
  CHECK_STR(aioc_err_name(-ETIMEDOUT), "ETIMEDOUT");
  CHECK_STR(aioc_err_name(-ECANCELED), "ECANCELED");
  CHECK_STR(aioc_err_name(-EINVAL), "EINVAL");
  CHECK_STR(aioc_err_name(AIOC_ECLOSED), "AIOC_ECLOSED");
  CHECK_STR(aioc_err_name(AIOC_ENOTASK), "AIOC_ENOTASK");
  CHECK_STR(aioc_err_name(AIOC_ERUNNING), "AIOC_ERUNNING");
  CHECK_STR(aioc_err_name(-3999), "UNKNOWN");
  CHECK_STR(aioc_err_name(-123456), "UNKNOWN");
  CHECK_STR(aioc_strerror(-ETIMEDOUT), strerror(ETIMEDOUT));
  CHECK_STR(aioc_strerror(-ECANCELED), strerror(ECANCELED));
  CHECK_STR(aioc_strerror(AIOC_ECLOSED), "event loop is closed");
  CHECK_STR(aioc_strerror(AIOC_ENOTASK), "called outside a task");
  CHECK(aioc_strerror(-123456) != NULL);
  CHECK(aioc_strerror(123456) != NULL);
  CHECK(aioc_strerror(AIOC_EXHAUSTED) != NULL);
  /* The library's codes lie outside the errno range and are distinct. */
  CHECK(AIOC_ENOTASK < -4000 && AIOC_ESTACK < -4000);
  CHECK(AIOC_ECLOSED != AIOC_ESTATE && AIOC_ERUNNING != AIOC_ENOLOOP);
}

TEST(test_version) {
  CHECK_EQ(aioc_version(), AIOC_VERSION_HEX);
  CHECK_EQ(aioc_version(), (0u << 16) | (2u << 8) | 0u);
  char buf[32];
  snprintf(buf, sizeof buf, "%d.%d.%d", AIOC_VERSION_MAJOR, AIOC_VERSION_MINOR,
           AIOC_VERSION_PATCH);
  CHECK_STR(aioc_version_string(), buf);
}

/* ---- close and free are two verbs ---- */

/* aioc_loop_close() ends the loop's use and keeps its memory; a second
 * close says so; aioc_loop_free() frees it. */
TEST(test_close_then_free) {
  aioc_loop *loop = test_loop(1);
  CHECK_RC(aioc_loop_close(loop), 0);
  CHECK(aioc_loop_is_closed(loop)); /* readable: close did not free */
  CHECK_RC(aioc_loop_close(loop), AIOC_ECLOSED);
  CHECK_RC(aioc_call_soon(NULL, loop, count_cb, NULL), AIOC_ECLOSED);
  aioc_loop_free(loop);
  aioc_loop_free(NULL); /* harmless */
}

/* aioc_loop_free() of a loop nobody closed closes it first: the pending
 * task is reported, ends cancelled, and its handle stays readable. */
TEST(test_free_closes_first) {
  aioc_loop *loop = test_loop(1);
  reports rs;
  memset(&rs, 0, sizeof rs);
  CHECK_RC(aioc_loop_set_report_handler(loop, capture_report, &rs), 0);
  aioc_task *t;
  CHECK_RC(aioc_spawn_ex(&t, loop, sleeper_fn, NULL, NULL), 0);
  CHECK(aioc_loop_run_once(loop) >= 0);
  aioc_loop_free(loop);
  CHECK_EQ(rs.n, 1);
  CHECK_STR(rs.message[0], "Task was destroyed but it is pending");
  CHECK_EQ(aioc_future_state(aioc_task_future(t)), AIOC_FUTURE_CANCELLED);
  aioc_task_unref(t); /* the loop's memory went with this last reference */
}

/* The loop a thread gets from aioc_loop_current() is the thread's: it is
 * closed and freed when the thread exits (its pending task says so). */
static reports thread_rs;
static void *implicit_loop_thread(void *arg) {
  (void)arg;
  aioc_loop *loop = aioc_loop_current();
  if (!loop) return NULL;
  IGNORE_RC(aioc_loop_set_report_handler(loop, capture_report, &thread_rs));
  aioc_task *t;
  if (aioc_spawn(&t, sleeper_fn, NULL) == 0) {
    if (aioc_loop_run_once(loop) < 0) thread_rs.n = -100;
    aioc_task_unref(t);
  }
  return loop;
}

TEST(test_implicit_loop_freed_at_thread_exit) {
  memset(&thread_rs, 0, sizeof thread_rs);
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, implicit_loop_thread, NULL), 0);
  void *loop = NULL;
  CHECK_EQ(pthread_join(th, &loop), 0);
  CHECK(loop != NULL);
  CHECK_EQ(thread_rs.n, 1); /* closed at the thread's exit */
  CHECK_STR(thread_rs.message[0], "Task was destroyed but it is pending");
  CHECK(thread_rs.loop[0] == loop);
}

/* A closed implicit loop is replaced by a fresh one on the next call. */
TEST(test_implicit_loop_replaced_after_close) {
  CHECK_RC(aioc_loop_set_current(NULL), 0);
  aioc_loop *a = aioc_loop_current();
  CHECK(a != NULL);
  CHECK(aioc_loop_current() == a);
  CHECK_RC(aioc_loop_close(a), 0);
  aioc_loop *b = aioc_loop_current(); /* a is freed here: it was owned */
  CHECK(b != NULL);
  CHECK(!aioc_loop_is_closed(b));
  aioc_loop_free(b);
}

/* ---- the positive codes ---- */

TEST(test_positive_codes_named) {
  CHECK_STR(aioc_err_name(AIOC_EXHAUSTED), "AIOC_EXHAUSTED");
  CHECK_STR(aioc_err_name(AIOC_NORESULT), "AIOC_NORESULT");
  CHECK(strcmp(aioc_strerror(AIOC_EXHAUSTED), "unknown error") != 0);
  CHECK(strcmp(aioc_strerror(AIOC_NORESULT), "unknown error") != 0);
  CHECK(AIOC_EXHAUSTED > 0 && AIOC_NORESULT > 0);
  CHECK(AIOC_EXHAUSTED != AIOC_NORESULT);
  CHECK_STR(aioc_err_name(-ESHUTDOWN), "ESHUTDOWN");
  CHECK_STR(aioc_strerror(-ESHUTDOWN), "shut down");
}

/* A task function's positive return is "no result" wherever it runs: the
 * task succeeds with NULL, a value stored anyway goes to result_free, and
 * aioc_run() returns 0. */
static int freed_results;
static void count_free(void *p) {
  (void)p;
  freed_results++;
}

static int noresult_fn(void *arg, void **result) {
  (void)arg;
  *result = AIOC_INT(42); /* ignored: the code says there is none */
  return AIOC_NORESULT;
}

static int noresult_main(void *arg, void **result) {
  (void)arg, (void)result;
  aioc_task *t;
  aioc_task_options o = {.result_free = count_free};
  CHECK_RC(aioc_spawn_ex(&t, NULL, noresult_fn, NULL, &o), 0);
  void *r = AIOC_INT(7);
  CHECK_RC(aioc_task_await(t, &r), 0);
  CHECK(r == NULL);
  CHECK_EQ(aioc_future_state(aioc_task_future(t)), AIOC_FUTURE_DONE);
  aioc_task_unref(t);
  return 0;
}

TEST(test_noresult_everywhere) {
  freed_results = 0;
  CHECK_RC(run_main(noresult_main, NULL, NULL), 0);
  CHECK_EQ(freed_results, 1);
  void *r = AIOC_INT(9);
  CHECK_RC(aioc_run(noresult_fn, NULL, &r), 0);
  CHECK(r == NULL);
}

/* ---- the internal poller (for the I/O layer) ---- */

typedef struct io_probe {
  int fds[2];
  int calls;
  uint32_t events;
  int del_other; /* fd whose registration the callback removes */
} io_probe;

static void on_readable(aioc_loop *loop, int fd, uint32_t events, void *arg) {
  io_probe *p = arg;
  p->calls++;
  p->events = events;
  char buf[16];
  ssize_t r = read(fd, buf, sizeof buf);
  (void)r;
  if (p->del_other >= 0) {
    aioc__poll_del(loop, p->del_other);
    p->del_other = -1;
  }
  aioc_loop_stop(loop);
}

TEST(test_poller) {
  aioc_loop *loop = test_loop(0);
  io_probe a = {.del_other = -1}, b = {.del_other = -1};
  CHECK_EQ(pipe(a.fds), 0);
  CHECK_EQ(pipe(b.fds), 0);
  CHECK_RC(aioc__poll_add(loop, a.fds[0], EPOLLIN, on_readable, &a), 0);
  CHECK_RC(aioc__poll_add(loop, b.fds[0], EPOLLIN, on_readable, &b), 0);
  CHECK_RC(aioc__poll_add(loop, -1, EPOLLIN, on_readable, &a), -EINVAL);
  /* readiness wakes a loop that has nothing else to do */
  CHECK_EQ(write(a.fds[1], "x", 1), 1);
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  CHECK_EQ(a.calls, 1);
  CHECK(a.events & EPOLLIN);
  /* both ready in one poll; the first callback removes the other: it is
   * not called */
  a.del_other = b.fds[0];
  b.del_other = a.fds[0];
  CHECK_EQ(write(a.fds[1], "x", 1), 1);
  CHECK_EQ(write(b.fds[1], "y", 1), 1);
  CHECK_RC(aioc_loop_run_forever(loop), 0);
  CHECK_EQ(a.calls + b.calls, 2); /* exactly one more callback ran */
  CHECK_RC(aioc__poll_del(loop, a.fds[0]) == 0 ? 0 : aioc__poll_del(loop, b.fds[0]), 0);
  CHECK_RC(aioc__poll_del(loop, a.fds[0]), -ENOENT);
  CHECK_RC(aioc__poll_del(loop, b.fds[0]), -ENOENT);
  for (int i = 0; i < 2; i++) {
    close(a.fds[i]);
    close(b.fds[i]);
  }
  CLOSE_CLEAN(loop);
}

CHECK_MAIN(30)

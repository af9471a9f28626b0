/* Seeing inside a running program: the loop's counters and metrics, task
 * timings. Timing checks are lower bounds only (a busy machine makes
 * everything slower, never faster). */
#include <math.h>
#include <time.h>

#include "check.h"

/* A loop observing flags (virtual clock unless real), made current. */
static aioc_loop *obs_loop(int virtual_clock, unsigned flags) {
  aioc_loop *loop = NULL;
  aioc_loop_options o = {.virtual_clock = virtual_clock, .observe = flags};
  if (aioc_loop_new(&loop, &o) != 0) exit(2);
  aioc_loop_set_current(loop);
  return loop;
}

/* Runs fn(arg) as a task named "main" on loop until it ends; its code. */
static int run_on(aioc_loop *loop, aioc_fn fn, void *arg) {
  aioc_task *t = NULL;
  aioc_task_options o = {.name = "main"};
  CHECK_RC(aioc_spawn_ex(&t, loop, fn, arg, &o), 0);
  CHECK_RC(aioc_loop_run_until_complete(loop, aioc_task_future(t)), 0);
  int rc = aioc_future_result(aioc_task_future(t), NULL);
  aioc_task_unref(t);
  return rc;
}

/* Keeps the CPU for at least seconds of the monotonic clock. */
static void busy(double seconds) {
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  do {
    clock_gettime(CLOCK_MONOTONIC, &b);
  } while ((double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9 <
           seconds);
}

/* ---- metrics ---------------------------------------------------------- */

static int yielder(void *arg, void **res) {
  (void)res;
  for (int i = 0; i < AIOC_TO_INT(arg); i++)
    if (aioc_yield() != 0) return -1;
  return 0;
}

static int sleeper(void *arg, void **res) {
  (void)res;
  for (int i = 0; i < AIOC_TO_INT(arg); i++)
    if (aioc_sleep(0.5) != 0) return -1;
  return 0;
}

/* Three tasks yield, one sleeps: the counters match the workload. */
static int counters_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_task *t[4];
  for (int i = 0; i < 3; i++)
    CHECK_RC(aioc_spawn(&t[i], yielder, AIOC_INT(10)), 0);
  CHECK_RC(aioc_spawn(&t[3], sleeper, AIOC_INT(4)), 0);
  for (int i = 0; i < 4; i++) {
    CHECK_RC(aioc_task_await(t[i], NULL), 0);
    aioc_task_unref(t[i]);
  }
  aioc_loop_metrics m;
  CHECK_RC(aioc_yield(), 0);
  CHECK_RC(aioc_spawn(&t[0], yielder, AIOC_INT(0)), 0);
  CHECK_RC(aioc_loop_get_metrics(NULL, &m), 0);
  CHECK_EQ(m.ready, 1); /* the task just spawned */
  CHECK_RC(aioc_task_await(t[0], NULL), 0);
  aioc_task_unref(t[0]);
  return 0;
}

TEST(test_loop_counters) {
  aioc_loop *loop = obs_loop(1, 0);
  aioc_loop_metrics m;
  CHECK_RC(aioc_loop_get_metrics(loop, &m), 0);
  CHECK_EQ(m.iterations, 0);
  CHECK_EQ(m.timers_fired, 0);
  CHECK_RC(run_on(loop, counters_main, NULL), 0);
  CHECK_RC(aioc_loop_get_metrics(loop, &m), 0);
  /* Each round of yields is a batch of its own. */
  CHECK_INT(m.iterations, >=, 11);
  CHECK_EQ(m.timers_fired, 4); /* the sleeps */
  CHECK_DBL(m.lag_max, 0, 0);  /* virtual time is never late */
  CHECK_DBL(m.lag_total, 0, 0);
  /* Timing was not asked for. */
  CHECK_EQ(m.task_runs, 0);
  CHECK_DBL(m.task_time, 0, 0);
  CHECK_DBL(m.poll_time, 0, 0);
  CHECK_RC(aioc_loop_get_metrics(loop, NULL), -EINVAL);
  CLOSE_CLEAN(loop);
}

/* A timer due while a task keeps the CPU fires late by at least that. */
static int late_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_task *s;
  CHECK_RC(aioc_spawn(&s, sleeper, AIOC_INT(1)), 0);
  CHECK_RC(aioc_yield(), 0); /* the sleeper arms its 0.5 s timer */
  CHECK_RC(aioc_sleep(0.45), 0);
  busy(0.2); /* the sleeper's deadline passes meanwhile */
  CHECK_RC(aioc_task_await(s, NULL), 0);
  aioc_task_unref(s);
  return 0;
}

TEST(test_loop_lag) {
  aioc_loop *loop = obs_loop(0, 0);
  CHECK_RC(run_on(loop, late_main, NULL), 0);
  aioc_loop_metrics m;
  CHECK_RC(aioc_loop_get_metrics(loop, &m), 0);
  CHECK_EQ(m.timers_fired, 2);
  CHECK_INT(m.lag_max * 1000, >=, 140);
  CHECK(m.lag_total >= m.lag_max);
  CLOSE_CLEAN(loop);
}

/* ---- task timing ------------------------------------------------------ */

typedef struct timing {
  aioc_task *spinner, *waiter;
} timing;

static int spinner(void *arg, void **res) {
  (void)arg;
  (void)res;
  busy(0.02);
  CHECK_RC(aioc_yield(), 0);
  busy(0.03);
  return 0;
}

static int timing_main(void *arg, void **res) {
  (void)res;
  timing *tm = arg;
  CHECK_RC(aioc_spawn(&tm->waiter, yielder, AIOC_INT(3)), 0);
  CHECK_RC(aioc_spawn(&tm->spinner, spinner, NULL), 0);
  CHECK_RC(aioc_task_await(tm->waiter, NULL), 0);
  CHECK_RC(aioc_task_await(tm->spinner, NULL), 0);
  /* Running now: the current run counts. */
  aioc_task_metrics me;
  CHECK_RC(aioc_task_get_metrics(aioc_current_task(), &me), 0);
  CHECK_INT(me.runs, >=, 2);
  return 0;
}

TEST(test_task_timing) {
  aioc_loop *loop = obs_loop(1, AIOC_OBSERVE_TIMING);
  timing tm = {0};
  CHECK_RC(run_on(loop, timing_main, &tm), 0);
  aioc_task_metrics s, w;
  CHECK_RC(aioc_task_get_metrics(tm.spinner, &s), 0);
  CHECK_RC(aioc_task_get_metrics(tm.waiter, &w), 0);
  /* The spinner ran twice: 20 ms, then 30 ms. */
  CHECK_EQ(s.runs, 2);
  CHECK_INT(s.run_time * 1000, >=, 49.9);
  CHECK_INT(s.run_max * 1000, >=, 29.9);
  CHECK(s.run_max <= s.run_time);
  /* The waiter yielded three times: four runs, and it was ready while
   * the spinner spun (spawned with it, then woken by each yield). */
  CHECK_EQ(w.runs, 4);
  CHECK_INT(w.ready_time * 1000, >=, 49.9);
  CHECK(w.run_time < s.run_time);
  CHECK_EQ(w.stack_used, 0); /* stacks were not observed */
  aioc_loop_metrics m;
  CHECK_RC(aioc_loop_get_metrics(loop, &m), 0);
  CHECK_INT(m.task_runs, >=, 2 + 4 + 2); /* main: started, woken once */
  CHECK(m.task_time >= s.run_time + w.run_time);
  aioc_task_unref(tm.spinner);
  aioc_task_unref(tm.waiter);
  CLOSE_CLEAN(loop);
}

/* Without timing, a task has no metrics. */
TEST(test_task_timing_off) {
  aioc_loop *loop = obs_loop(1, 0);
  timing tm = {0};
  CHECK_RC(aioc_spawn(&tm.spinner, yielder, AIOC_INT(2)), 0);
  CHECK_RC(aioc_loop_run_until_complete(loop, aioc_task_future(tm.spinner)),
           0);
  aioc_task_metrics s;
  s.runs = 7;
  CHECK_RC(aioc_task_get_metrics(tm.spinner, &s), -ENODATA);
  CHECK_EQ(s.runs, 0);
  CHECK_RC(aioc_task_get_metrics(NULL, &s), -EINVAL);
  CHECK_RC(aioc_task_get_metrics(tm.spinner, NULL), -EINVAL);
  aioc_task_unref(tm.spinner);
  CLOSE_CLEAN(loop);
}

/* The poller's time: a real sleep is spent there. */
static int nap(void *arg, void **res) {
  (void)arg;
  (void)res;
  return aioc_sleep(0.05);
}

TEST(test_poll_time_and_env) {
  setenv("AIOC_OBSERVE", "stacks,timing", 1);
  aioc_loop *loop = obs_loop(0, 0); /* options give no flag: the env's */
  unsetenv("AIOC_OBSERVE");
  CHECK_RC(run_on(loop, nap, NULL), 0);
  aioc_loop_metrics m;
  CHECK_RC(aioc_loop_get_metrics(loop, &m), 0);
  CHECK_INT(m.poll_time * 1000, >=, 45);
  CHECK_INT(m.task_runs, >=, 2);
  CLOSE_CLEAN(loop);
}

CHECK_MAIN(60)

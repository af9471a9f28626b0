/* Group, Pool, Yielder, OrderedYielder, driven from plain code and from
 * tasks. Timings on the virtual clock, except the cross-thread tests. */
#include <pthread.h>

#include "check.h"
#include "task/task.h" /* the loop's timer heap */
#include "timer_fill.h"

static int running, max_running, finished, cleaned;

/* f(c): sleeps a little, returns its argument (a char). The sleep comes
 * from a fixed table so that the completion order is known. */
static const double delays[] = {0.07, 0.02, 0.05, 0.01, 0.06, 0.03, 0.04};

static int f(void *arg, void **result) {
  char c = (char)AIOC_TO_INT(arg);
  running++;
  if (running > max_running) max_running = running;
  int rc = aioc_sleep(delays[c - 'a']);
  running--;
  if (rc < 0) {
    cleaned++;
    return rc;
  }
  finished++;
  *result = AIOC_INT(c);
  return 0;
}

static void reset(void) { running = max_running = finished = cleaned = 0; }

TEST(test_group_plain) {
  aioc_loop *loop = test_loop(1);
  reset();
  aioc_group *g;
  CHECK_RC(aioc_group_new(&g, NULL), 0);
  for (char c = 'a'; c <= 'g'; c++)
    CHECK_RC(aioc_group_spawn(g, f, AIOC_INT(c)), 0);
  CHECK_EQ(aioc_group_pending(g), 7);
  CHECK_RC(aioc_group_join(g, AIOC_FOREVER), 0);
  CHECK_EQ(finished, 7);
  CHECK_EQ(max_running, 7);
  CHECK(!aioc_loop_is_running(loop)); /* plain code goes on */
  CHECK_DBL(aioc_loop_time(loop), 0.07, 1e-9);
  /* joined again, and reused */
  CHECK_RC(aioc_group_join(g, AIOC_FOREVER), 0);
  CHECK_RC(aioc_group_spawn(g, f, AIOC_INT('b')), 0);
  CHECK_RC(aioc_group_join(g, AIOC_FOREVER), 0);
  CHECK_EQ(finished, 8);
  aioc_group_free(g);
  /* an empty group joins at once */
  CHECK_RC(aioc_group_new(&g, NULL), 0);
  CHECK_RC(aioc_group_join(g, AIOC_FOREVER), 0);
  aioc_group_free(g);
  CLOSE_CLEAN(loop);
}

TEST(test_pool) {
  aioc_loop *loop = test_loop(1);
  aioc_group *p;
  CHECK_RC(aioc_pool_new(&p, 0), -EINVAL);
  CHECK_RC(aioc_pool_new(&p, -3), -EINVAL);
  for (long n = 1; n <= 2; n++) {
    reset();
    CHECK_RC(aioc_pool_new(&p, n), 0);
    for (char c = 'a'; c <= 'g'; c++)
      CHECK_RC(aioc_group_spawn(p, f, AIOC_INT(c)), 0);
    CHECK_RC(aioc_group_join(p, AIOC_FOREVER), 0);
    CHECK_EQ(finished, 7);
    CHECK_EQ(max_running, n);
    aioc_group_free(p);
  }
  /* Pool(1): strictly one after the other, in spawn order. */
  CHECK_DBL(aioc_loop_time(loop), 0.28 + 0.15, 1e-6);
  CLOSE_CLEAN(loop);
}

/* ---- Yielder ---- */

TEST(test_yielder) {
  aioc_loop *loop = test_loop(1);
  for (int ordered = 0; ordered <= 1; ordered++) {
    reset();
    aioc_yielder *y;
    CHECK_RC(aioc_yielder_new(&y, ordered, NULL), 0);
    for (char c = 'a'; c <= 'g'; c++)
      CHECK_RC(aioc_yielder_spawn(y, f, AIOC_INT(c)), 0);
    char got[8] = {0};
    void *it;
    int i = 0, rc;
    while ((rc = aioc_yielder_next(y, &it, AIOC_FOREVER)) == 0)
      got[i++] = (char)AIOC_TO_INT(it);
    CHECK_RC(rc, AIOC_EXHAUSTED);
    CHECK_RC(aioc_yielder_next(y, &it, AIOC_FOREVER), AIOC_EXHAUSTED);
    /* completion order (by delay), or spawn order */
    CHECK_STR(got, ordered ? "abcdefg" : "dbfgcea");
    aioc_yielder_free(y);
  }
  CLOSE_CLEAN(loop);
}

/* The loop runs only until the next result is ready. */
TEST(test_yielder_lazy) {
  aioc_loop *loop = test_loop(1);
  reset();
  aioc_yielder *y;
  CHECK_RC(aioc_yielder_new(&y, 0, NULL), 0);
  for (char c = 'a'; c <= 'g'; c++)
    CHECK_RC(aioc_yielder_spawn(y, f, AIOC_INT(c)), 0);
  void *it;
  CHECK_RC(aioc_yielder_next(y, &it, AIOC_FOREVER), 0);
  CHECK_EQ(AIOC_TO_INT(it), 'd');
  CHECK_DBL(aioc_loop_time(loop), 0.01, 1e-9);
  CHECK_EQ(finished, 1);
  /* a per-call timeout: nothing lost */
  CHECK_RC(aioc_yielder_next(y, &it, 0.005), -ETIMEDOUT);
  CHECK_RC(aioc_yielder_next(y, &it, AIOC_FOREVER), 0);
  CHECK_EQ(AIOC_TO_INT(it), 'b');
  /* stopping early cancels the rest and waits for their cleanup */
  CHECK_RC(aioc_yielder_close(y), 0);
  CHECK_EQ(cleaned, 5);
  CHECK_RC(aioc_yielder_next(y, &it, AIOC_FOREVER), AIOC_EXHAUSTED);
  CHECK_RC(aioc_yielder_spawn(y, f, AIOC_INT('a')), AIOC_ESTATE);
  aioc_yielder_free(y);
  CLOSE_CLEAN(loop);
}

/* "No result" versus a result that is NULL or 0; put. */
static int no_result(void *arg, void **result) {
  (void)arg;
  (void)result;
  return AIOC_NORESULT;
}

static int null_result(void *arg, void **result) {
  (void)arg;
  *result = NULL;
  return 0;
}

static int putter(void *arg, void **result) {
  (void)result;
  aioc_yielder *y = arg;
  IGNORE_RC(aioc_sleep(0.01));
  CHECK_RC(aioc_yielder_put(y, AIOC_INT(7)), 0);
  return AIOC_NORESULT;
}

TEST(test_noresult_and_put) {
  aioc_loop *loop = test_loop(1);
  for (int ordered = 0; ordered <= 1; ordered++) {
    aioc_yielder *y;
    CHECK_RC(aioc_yielder_new(&y, ordered, NULL), 0);
    CHECK_RC(aioc_yielder_spawn(y, no_result, NULL), 0);
    CHECK_RC(aioc_yielder_spawn(y, null_result, NULL), 0);
    CHECK_RC(aioc_yielder_put(y, AIOC_INT(5)), 0);
    CHECK_RC(aioc_yielder_spawn(y, putter, y), 0);
    void *it;
    /* Unordered, the put (done at once) comes before the task's result;
     * ordered, in the order of the calls. */
    void *first = ordered ? NULL : AIOC_INT(5);
    void *second = ordered ? AIOC_INT(5) : NULL;
    CHECK_RC(aioc_yielder_next(y, &it, AIOC_FOREVER), 0);
    CHECK(it == first); /* a NULL result is still a result */
    CHECK_RC(aioc_yielder_next(y, &it, AIOC_FOREVER), 0);
    CHECK(it == second);
    CHECK_RC(aioc_yielder_next(y, &it, AIOC_FOREVER), 0);
    CHECK_EQ(AIOC_TO_INT(it), 7);
    CHECK_RC(aioc_yielder_next(y, &it, AIOC_FOREVER), AIOC_EXHAUSTED);
    aioc_yielder_free(y);
  }
  CLOSE_CLEAN(loop);
}

/* A value stored with AIOC_NORESULT is no result: it goes to result_free
 * (never yielded, never lost), in both kinds of Yielder. */
static int freed_values;
static void count_value_free(void *p) {
  free(p);
  freed_values++;
}

static int noresult_with_value(void *arg, void **result) {
  (void)arg;
  *result = malloc(16);
  return AIOC_NORESULT;
}

TEST(test_noresult_value_freed) {
  aioc_loop *loop = test_loop(1);
  for (int ordered = 0; ordered <= 1; ordered++) {
    freed_values = 0;
    aioc_group_options o = {.result_free = count_value_free};
    aioc_yielder *y;
    CHECK_RC(aioc_yielder_new(&y, ordered, &o), 0);
    CHECK_RC(aioc_yielder_spawn(y, noresult_with_value, NULL), 0);
    CHECK_RC(aioc_yielder_put(y, AIOC_INT(3)), 0);
    void *it;
    CHECK_RC(aioc_yielder_next(y, &it, AIOC_FOREVER), 0);
    CHECK_EQ(AIOC_TO_INT(it), 3);
    CHECK_RC(aioc_yielder_next(y, &it, AIOC_FOREVER), AIOC_EXHAUSTED);
    CHECK_EQ(freed_values, 1);
    aioc_yielder_free(y);
  }
  CLOSE_CLEAN(loop);
}

/* The scoped form. */
static int yielding_body(void *arg, aioc_yielder *y) {
  char *out = arg;
  for (char c = 'a'; c <= 'g'; c++)
    CHECK_RC(aioc_yielder_spawn(y, f, AIOC_INT(c)), 0);
  void *it;
  int i = 0;
  while (aioc_yielder_next(y, &it, AIOC_FOREVER) == 0 && i < 3)
    out[i++] = (char)AIOC_TO_INT(it);
  return 0; /* stops early: the scope cancels the rest */
}

TEST(test_yielding_scope) {
  aioc_loop *loop = test_loop(1);
  reset();
  char out[8] = {0};
  CHECK_RC(aioc_yielding(1, NULL, yielding_body, out), 0);
  CHECK_STR(out, "abc");
  CHECK_EQ(finished + cleaned, 7);
  CLOSE_CLEAN(loop);
}

/* ---- the seed's nested loops: 10 outer tasks each spawning 10 inner
 * tasks of 0.1 s into one group: 0.2 s, not 11 s ---- */

static aioc_group *nested_group;
static int inner_done;

static int f2(void *arg, void **result) {
  (void)arg;
  (void)result;
  int rc = aioc_sleep(0.1);
  inner_done += rc == 0;
  return rc;
}

static int outer(void *arg, void **result) {
  (void)arg;
  (void)result;
  int rc = aioc_sleep(0.1); /* f1 */
  if (rc < 0) return rc;
  for (int i = 0; i < 10; i++)
    CHECK_RC(aioc_group_spawn(nested_group, f2, NULL), 0);
  return 0;
}

TEST(test_nested) {
  aioc_loop *loop = test_loop(1);
  inner_done = 0;
  CHECK_RC(aioc_group_new(&nested_group, NULL), 0);
  for (int i = 0; i < 10; i++)
    CHECK_RC(aioc_group_spawn(nested_group, outer, NULL), 0);
  CHECK_RC(aioc_group_join(nested_group, AIOC_FOREVER), 0);
  CHECK_EQ(inner_done, 100);
  CHECK_DBL(aioc_loop_time(loop), 0.2, 1e-9);
  aioc_group_free(nested_group);
  CLOSE_CLEAN(loop);
}

/* ---- the seed's "sequential yield from" caveat ---- */

static aioc_yielder *caveat_y;
static int f1_f2_sequential(void *arg, void **result) {
  (void)arg;
  (void)result;
  IGNORE_RC(aioc_sleep(0.1)); /* t1 = yield from f1() */
  IGNORE_RC(aioc_sleep(0.1)); /* t2 = yield from f2() */
  CHECK_RC(aioc_yielder_put(caveat_y, AIOC_INT(1)), 0);
  return AIOC_NORESULT;
}

static int sleep_tenth(void *arg, void **result) {
  (void)arg;
  (void)result;
  return aioc_sleep(0.1);
}

static int f1_f2_concurrent(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_task *t1, *t2;
  CHECK_RC(aioc_spawn(&t1, sleep_tenth, NULL), 0);
  CHECK_RC(aioc_spawn(&t2, sleep_tenth, NULL), 0);
  aioc_future *fs[2] = {aioc_task_future(t1), aioc_task_future(t2)};
  IGNORE_RC(aioc_wait(fs, 2, AIOC_WAIT_ALL_COMPLETED, NULL, NULL, NULL, NULL,
                      AIOC_FOREVER));
  aioc_task_unref(t1);
  aioc_task_unref(t2);
  CHECK_RC(aioc_yielder_put(caveat_y, AIOC_INT(1)), 0);
  return AIOC_NORESULT;
}

static double first_result_time(aioc_fn fn) {
  aioc_loop *loop = test_loop(1);
  CHECK_RC(aioc_yielder_new(&caveat_y, 0, NULL), 0);
  for (int i = 0; i < 100; i++)
    CHECK_RC(aioc_yielder_spawn(caveat_y, fn, NULL), 0);
  void *it;
  CHECK_RC(aioc_yielder_next(caveat_y, &it, AIOC_FOREVER), 0);
  double t = aioc_loop_time(loop);
  while (aioc_yielder_next(caveat_y, &it, AIOC_FOREVER) == 0) {
  }
  aioc_yielder_free(caveat_y);
  CLOSE_CLEAN(loop);
  return t;
}

TEST(test_sequential_caveat) {
  CHECK_DBL(first_result_time(f1_f2_sequential), 0.2, 1e-9);
  CHECK_DBL(first_result_time(f1_f2_concurrent), 0.1, 1e-9);
}

/* ---- errors ---- */

static int failer(void *arg, void **result) {
  (void)result;
  int rc = aioc_sleep(0.015);
  if (rc < 0) return rc;
  return aioc_error((int)AIOC_TO_INT(arg), "job failed with %d",
                    (int)AIOC_TO_INT(arg));
}

TEST(test_errors) {
  aioc_loop *loop = test_loop(1);
  /* fail fast: the first error cancels the rest */
  reset();
  aioc_group *g;
  CHECK_RC(aioc_group_new(&g, NULL), 0);
  for (char c = 'a'; c <= 'g'; c++)
    CHECK_RC(aioc_group_spawn(g, f, AIOC_INT(c)), 0);
  CHECK_RC(aioc_group_spawn(g, failer, AIOC_INT(-EIO)), 0);
  CHECK_RC(aioc_group_join(g, AIOC_FOREVER), -EIO);
  CHECK_EQ(finished, 1); /* only d (0.01) was done by 0.015 */
  CHECK_EQ(cleaned, 6);
  int code;
  const char *msg;
  CHECK_EQ(aioc_group_errors(g, 0, &code, &msg), 1);
  CHECK_STR(msg, "job failed with -5");
  /* reusable afterwards */
  CHECK_RC(aioc_group_spawn(g, f, AIOC_INT('a')), 0);
  CHECK_RC(aioc_group_join(g, AIOC_FOREVER), 0);
  aioc_group_free(g);
  /* collect: everything runs, every error is listed */
  reset();
  aioc_group_options o = {.policy = AIOC_GROUP_COLLECT};
  CHECK_RC(aioc_group_new(&g, &o), 0);
  CHECK_RC(aioc_group_spawn(g, failer, AIOC_INT(-EIO)), 0);
  for (char c = 'a'; c <= 'g'; c++)
    CHECK_RC(aioc_group_spawn(g, f, AIOC_INT(c)), 0);
  CHECK_RC(aioc_group_spawn(g, failer, AIOC_INT(-EPIPE)), 0);
  CHECK_RC(aioc_group_join(g, AIOC_FOREVER), -EIO);
  CHECK_EQ(finished, 7);
  CHECK_EQ(aioc_group_errors(g, 1, &code, NULL), 2);
  CHECK_RC(code, -EPIPE);
  aioc_group_free(g);
  /* a Yielder: the error arrives in its place */
  aioc_yielder *y;
  CHECK_RC(aioc_yielder_new(&y, 1, &o), 0);
  CHECK_RC(aioc_yielder_spawn(y, f, AIOC_INT('a')), 0);
  CHECK_RC(aioc_yielder_spawn(y, failer, AIOC_INT(-EPROTO)), 0);
  CHECK_RC(aioc_yielder_spawn(y, f, AIOC_INT('c')), 0);
  void *it;
  CHECK_RC(aioc_yielder_next(y, &it, AIOC_FOREVER), 0);
  CHECK_RC(aioc_yielder_next(y, &it, AIOC_FOREVER), -EPROTO);
  CHECK_RC(aioc_yielder_next(y, &it, AIOC_FOREVER), 0);
  CHECK_EQ(AIOC_TO_INT(it), 'c');
  CHECK_RC(aioc_yielder_next(y, &it, AIOC_FOREVER), AIOC_EXHAUSTED);
  aioc_yielder_free(y);
  CLOSE_CLEAN(loop);
}

/* ---- inside a task; bad input ---- */

static aioc_group *own_group;
static int joins_own_group(void *arg, void **result) {
  (void)arg;
  (void)result;
  return aioc_group_join(own_group, AIOC_FOREVER);
}

static int task_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  reset();
  CHECK_RC(aioc_group_new(&own_group, NULL), 0);
  for (char c = 'a'; c <= 'c'; c++)
    CHECK_RC(aioc_group_spawn(own_group, f, AIOC_INT(c)), 0);
  CHECK_RC(aioc_group_spawn(own_group, joins_own_group, NULL), 0);
  /* join suspends this task; the inner join was refused, and that error
   * (fail fast) cancelled the others */
  CHECK_RC(aioc_group_join(own_group, AIOC_FOREVER), -EDEADLK);
  CHECK_EQ(finished, 0);
  CHECK_EQ(cleaned, 3);
  /* a timeout: the tasks keep running, a later join finishes */
  CHECK_RC(aioc_group_spawn(own_group, f, AIOC_INT('a')), 0);
  CHECK_RC(aioc_group_join(own_group, 0.01), -ETIMEDOUT);
  CHECK_EQ(aioc_group_pending(own_group), 1);
  CHECK_RC(aioc_group_join(own_group, AIOC_FOREVER), 0);
  CHECK_EQ(finished, 1);
  aioc_group_free(own_group);
  return 0;
}

TEST(test_in_task_and_bad_input) {
  aioc_run_options o = {.loop.virtual_clock = 1};
  CHECK_RC(aioc_run_ex(task_main, NULL, NULL, &o), 0);
  aioc_loop *loop = test_loop(1);
  aioc_group *g;
  CHECK_RC(aioc_group_new(NULL, NULL), -EINVAL);
  aioc_group_options bad = {.limit = -1};
  CHECK_RC(aioc_group_new(&g, &bad), -EINVAL);
  CHECK_RC(aioc_group_spawn(NULL, f, NULL), -EINVAL);
  CHECK_RC(aioc_group_new(&g, NULL), 0);
  CHECK_RC(aioc_group_spawn(g, NULL, NULL), -EINVAL);
  CHECK_RC(aioc_group_join(g, -1), -EINVAL);
  CHECK_RC(aioc_group_close(g), 0);
  CHECK_RC(aioc_group_spawn(g, f, AIOC_INT('a')), AIOC_ESTATE);
  aioc_group_free(g);
  aioc_group_free(NULL);
  aioc_yielder_free(NULL);
  CLOSE_CLEAN(loop);
}

/* ---- threads ---- */

typedef struct spawner {
  aioc_group *g;
  int n;
} spawner;

static int quick(void *arg, void **result) {
  (void)arg;
  (void)result;
  __atomic_fetch_add(&finished, 1, __ATOMIC_SEQ_CST);
  return aioc_sleep(0.001);
}

static void *spawn_from_thread(void *arg) {
  spawner *s = arg;
  for (int i = 0; i < s->n; i++)
    CHECK_RC(aioc_group_spawn(s->g, quick, NULL), 0);
  return NULL;
}

static int slow_first(void *arg, void **result) {
  (void)arg;
  (void)result;
  return aioc_sleep(0.2); /* keeps the join waiting while the thread spawns */
}

TEST(test_spawn_from_thread) {
  aioc_loop *loop = test_loop(0);
  finished = 0;
  aioc_group *g;
  CHECK_RC(aioc_group_new(&g, NULL), 0);
  CHECK_RC(aioc_group_spawn(g, slow_first, NULL), 0);
  spawner s = {g, 200};
  pthread_t th;
  pthread_create(&th, NULL, spawn_from_thread, &s);
  CHECK_RC(aioc_group_join(g, AIOC_FOREVER), 0);
  pthread_join(th, NULL);
  /* whatever arrived after the join is picked up by the next one */
  CHECK_RC(aioc_group_join(g, AIOC_FOREVER), 0);
  CHECK_EQ(finished, 200);
  aioc_group_free(g);
  CLOSE_CLEAN(loop);
}

/* Loops in several threads at once, each driving its own group. */
static int thread_job(void *arg, void **result) {
  (void)arg;
  (void)result;
  return aioc_sleep(0.1);
}

static void *own_loop_thread(void *arg) {
  int *ok = arg;
  aioc_loop *loop;
  aioc_loop_options o = {.virtual_clock = 1};
  CHECK_RC(aioc_loop_new(&loop, &o), 0);
  aioc_loop_set_current(loop);
  aioc_yielder *y;
  CHECK_RC(aioc_yielder_new(&y, 1, NULL), 0);
  for (char c = 'a'; c <= 'g'; c++)
    CHECK_RC(aioc_yielder_spawn(y, thread_job, NULL), 0);
  void *it;
  int n = 0;
  while (aioc_yielder_next(y, &it, AIOC_FOREVER) == 0)
    n++;
  /* thread_job returns no value: it is yielded as NULL */
  aioc_yielder_free(y);
  *ok = n == 7 && aioc_loop_time(loop) > 0.099;
  aioc_loop_free(loop);
  return NULL;
}

TEST(test_loops_in_threads) {
  pthread_t th[4];
  int ok[4] = {0};
  for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, own_loop_thread, &ok[i]);
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    CHECK_EQ(ok[i], 1);
  }
}

/* Tasks cancelled before they ever ran still count as finished. */
static int fails_now(void *arg, void **result) {
  (void)arg;
  (void)result;
  return aioc_error(-EPIPE, "failed at once");
}

static aioc_group *self_group;
static int frees_own_group(void *arg, void **result) {
  (void)arg;
  (void)result;
  CHECK_RC(aioc_group_close(self_group), -EDEADLK);
  aioc_group_free(self_group); /* freed when the last task ends */
  return 0;
}

TEST(test_unstarted_tasks_settle) {
  aioc_loop *loop = test_loop(1);
  reset();
  aioc_group *g;
  CHECK_RC(aioc_group_new(&g, NULL), 0);
  CHECK_RC(aioc_group_spawn(g, fails_now, NULL), 0);
  for (char c = 'a'; c <= 'g'; c++)
    CHECK_RC(aioc_group_spawn(g, f, AIOC_INT(c)), 0);
  CHECK_RC(aioc_group_join(g, AIOC_FOREVER), -EPIPE);
  CHECK_EQ(aioc_group_pending(g), 0);
  CHECK_EQ(finished + cleaned, 0); /* none ever started */
  CHECK_RC(aioc_group_spawn(g, f, AIOC_INT('a')), 0); /* joined: usable */
  aioc_group_free(g); /* closes the unstarted one */
  /* closed right after spawning, before the loop ever ran */
  CHECK_RC(aioc_group_new(&g, NULL), 0);
  for (char c = 'a'; c <= 'g'; c++)
    CHECK_RC(aioc_group_spawn(g, f, AIOC_INT(c)), 0);
  CHECK_RC(aioc_group_close(g), 0);
  CHECK_EQ(aioc_group_pending(g), 0);
  aioc_group_free(g);
  /* a pooled Yielder stopped right after its first result */
  aioc_group_options o = {.limit = 2};
  aioc_yielder *y;
  CHECK_RC(aioc_yielder_new(&y, 0, &o), 0);
  for (char c = 'a'; c <= 'g'; c++)
    CHECK_RC(aioc_yielder_spawn(y, f, AIOC_INT(c)), 0);
  void *it;
  CHECK_RC(aioc_yielder_next(y, &it, AIOC_FOREVER), 0);
  CHECK_RC(aioc_yielder_close(y), 0);
  aioc_yielder_free(y);
  /* a group freed by one of its own tasks */
  reset();
  CHECK_RC(aioc_group_new(&self_group, NULL), 0);
  CHECK_RC(aioc_group_spawn(self_group, f, AIOC_INT('a')), 0);
  CHECK_RC(aioc_group_spawn(self_group, frees_own_group, NULL), 0);
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, f, AIOC_INT('g')),
           0); /* lets the loop run to the end */
  CHECK_RC(aioc_block_on(aioc_task_future(t), NULL), 0);
  aioc_task_unref(t);
  CHECK_EQ(cleaned, 1); /* 'a' was cancelled by the close */
  CLOSE_CLEAN(loop);
}

/* One waiter at a time: a close while another task joins does not wait
 * but cancels; the join sees the end. */
static aioc_group *busy_group;
static int joiner(void *arg, void **result) {
  (void)arg;
  (void)result;
  return aioc_group_join(busy_group, 2.0);
}

static int busy_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  reset();
  CHECK_RC(aioc_group_new(&busy_group, NULL), 0);
  for (char c = 'a'; c <= 'g'; c++)
    CHECK_RC(aioc_group_spawn(busy_group, f, AIOC_INT(c)), 0);
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, joiner, NULL), 0);
  CHECK_RC(aioc_sleep(0.005), 0);
  CHECK_RC(aioc_group_close(busy_group), -EBUSY);
  CHECK_RC(aioc_task_await(t, NULL), 0);
  CHECK_EQ(cleaned, 7);
  CHECK_DBL(aioc_time(), 0.005, 1e-9);
  aioc_task_unref(t);
  aioc_group_free(busy_group);
  return 0;
}

TEST(test_one_waiter) {
  aioc_run_options o = {.loop.virtual_clock = 1};
  CHECK_RC(aioc_run_ex(busy_main, NULL, NULL, &o), 0);
}

/* ---- allocation failures ---- */

/* libc's realloc, failing on demand: every growth of a block (the timer
 * heap) while fail_grow is set, the fail_nth-th allocation from now on the
 * calling thread, or all of them on the calling thread while fail_all is
 * set. Installed while no task record is alive (records come from the
 * hook then). */
static bool fail_grow;
static __thread int fail_nth, fail_all;
static void *test_realloc(void *ud, void *p, size_t n) {
  (void)ud;
  if (n == 0) {
    free(p);
    return NULL;
  }
  if ((fail_grow && p) || fail_all) return NULL;
  if (fail_nth > 0 && --fail_nth == 0) return NULL;
  return realloc(p, n);
}

static int waits_for_event(void *arg, void **result) {
  (void)arg;
  int rc = aioc_event_wait(nomem_ev, AIOC_FOREVER);
  if (rc < 0) return rc;
  *result = AIOC_INT(5);
  return 0;
}

/* A join or next with a timeout whose timer cannot be armed fails with
 * -ENOMEM at once instead of waiting as long as the tasks take. */
TEST(test_timer_nomem) {
  aioc_set_allocator(test_realloc, NULL);
  aioc_loop *loop = test_loop(1);
  CHECK_RC(aioc_event_new(&nomem_ev), 0);
  aioc_group *g;
  aioc_yielder *y;
  void *it = NULL;
  CHECK_RC(aioc_group_new(&g, NULL), 0);
  CHECK_RC(aioc_group_spawn(g, waits_for_event, NULL), 0);
  CHECK_RC(aioc_yielder_new(&y, 0, NULL), 0);
  CHECK_RC(aioc_yielder_spawn(y, waits_for_event, NULL), 0);
  fill_timer_heap(loop);
  fail_grow = true;
  CHECK_RC(aioc_group_join(g, 0.05), -ENOMEM);
  CHECK_RC(aioc_yielder_next(y, &it, 0.05), -ENOMEM);
  fail_grow = false;
  CHECK_DBL(aioc_loop_time(loop), 0.0, 1e-9);
  CHECK(!aioc_event_is_set(nomem_ev));
  CHECK_EQ(aioc_group_pending(g), 1);
  /* Nothing was lost. */
  CHECK_RC(aioc_group_join(g, AIOC_FOREVER), 0);
  CHECK_DBL(aioc_loop_time(loop), 1000.0, 1e-9);
  CHECK_RC(aioc_yielder_next(y, &it, AIOC_FOREVER), 0);
  CHECK_EQ(AIOC_TO_INT(it), 5);
  CHECK_RC(aioc_yielder_next(y, &it, AIOC_FOREVER), AIOC_EXHAUSTED);
  aioc_group_free(g);
  aioc_yielder_free(y);
  CLOSE_CLEAN(loop);
  aioc_event_free(nomem_ev);
  aioc_set_allocator(NULL, NULL);
}

/* ---- error messages in plain code ---- */

/* Plain code joining a Group or reading a Yielder gets the failed task's
 * message: from the group or yielder, and from aioc_error_message(). */
TEST(test_plain_error_messages) {
  aioc_loop *loop = test_loop(1);
  aioc_group *g;
  CHECK_RC(aioc_group_new(&g, NULL), 0);
  CHECK(aioc_group_error_message(g) == NULL);
  CHECK_RC(aioc_group_spawn(g, failer, AIOC_INT(-EIO)), 0);
  CHECK_RC(aioc_group_join(g, AIOC_FOREVER), -EIO);
  CHECK_STR(aioc_group_error_message(g), "job failed with -5");
  CHECK_STR(aioc_error_message(), "job failed with -5");
  CHECK_RC(aioc_group_join(g, AIOC_FOREVER), 0); /* the next join */
  CHECK(aioc_group_error_message(g) == NULL);
  CHECK_STR(aioc_error_message(), "job failed with -5"); /* kept */
  aioc_group_free(g);
  aioc_group_options o = {.policy = AIOC_GROUP_COLLECT};
  aioc_yielder *y;
  void *it;
  CHECK_RC(aioc_yielder_new(&y, 1, &o), 0);
  CHECK_RC(aioc_yielder_spawn(y, failer, AIOC_INT(-EPROTO)), 0);
  CHECK_RC(aioc_yielder_spawn(y, f, AIOC_INT('a')), 0);
  CHECK_RC(aioc_yielder_spawn(y, failer, AIOC_INT(-EPIPE)), 0);
  CHECK_RC(aioc_yielder_next(y, &it, AIOC_FOREVER), -EPROTO);
  CHECK_STR(aioc_yielder_error_message(y), "job failed with -71");
  CHECK_STR(aioc_error_message(), "job failed with -71");
  CHECK_RC(aioc_yielder_next(y, &it, AIOC_FOREVER), 0);
  CHECK(aioc_yielder_error_message(y) == NULL); /* until the next call */
  CHECK_RC(aioc_yielder_next(y, &it, AIOC_FOREVER), -EPIPE);
  CHECK_STR(aioc_yielder_error_message(y), "job failed with -32");
  CHECK_STR(aioc_error_message(), "job failed with -32");
  CHECK_RC(aioc_yielder_next(y, &it, AIOC_FOREVER), AIOC_EXHAUSTED);
  aioc_yielder_free(y);
  CHECK(aioc_yielder_error_message(NULL) == NULL);
  CHECK(aioc_group_error_message(NULL) == NULL);
  CLOSE_CLEAN(loop);
}

/* ---- a spawn that cannot create its task ---- */

static int nran;
static int counts(void *arg, void **result) {
  (void)arg;
  nran++;
  *result = AIOC_INT(nran);
  return 0;
}

/* Fails the n-th allocation of a spawn (or put) for every n until one
 * succeeds: each failed call returns -ENOMEM and leaves nothing behind:
 * the function never runs, nothing is pending, join and next see
 * nothing. */
static void spawn_failures(aioc_group *g, aioc_yielder *y, bool put) {
  int n;
  nran = 0;
  for (n = 1; n < 100; n++) {
    fail_nth = n;
    int rc = y ? (put ? aioc_yielder_put(y, AIOC_INT(9))
                      : aioc_yielder_spawn(y, counts, NULL))
               : aioc_group_spawn(g, counts, NULL);
    bool hit = fail_nth == 0;
    fail_nth = 0;
    if (!hit) {
      CHECK_RC(rc, 0);
      break;
    }
    CHECK_RC(rc, -ENOMEM);
    if (g) CHECK_EQ(aioc_group_pending(g), 0);
    if (y) {
      void *it;
      CHECK_RC(aioc_yielder_next(y, &it, AIOC_FOREVER), AIOC_EXHAUSTED);
    } else {
      CHECK_RC(aioc_group_join(g, AIOC_FOREVER), 0);
      CHECK_EQ(aioc_group_errors(g, 0, NULL, NULL), 0);
    }
    CHECK_EQ(nran, 0);
  }
  CHECK(n > 1);
  /* The one that succeeded runs once. */
  if (y) {
    void *it;
    CHECK_RC(aioc_yielder_next(y, &it, AIOC_FOREVER), 0);
    CHECK_EQ(AIOC_TO_INT(it), put ? 9 : 1);
    CHECK_RC(aioc_yielder_next(y, &it, AIOC_FOREVER), AIOC_EXHAUSTED);
  } else {
    CHECK_RC(aioc_group_join(g, AIOC_FOREVER), 0);
  }
  CHECK_EQ(nran, put ? 0 : 1);
}

typedef struct xspawn {
  aioc_yielder *y;
  int rc;
} xspawn;

/* From another thread: the second allocation (the thread-safe call that
 * carries the spawn) fails. */
static void *spawn_failing_call(void *arg) {
  xspawn *x = arg;
  fail_nth = 2;
  x->rc = aioc_yielder_spawn(x->y, counts, NULL);
  fail_nth = 0;
  return NULL;
}

TEST(test_spawn_failures) {
  aioc_set_allocator(test_realloc, NULL);
  aioc_loop *loop = test_loop(1);
  aioc_group *g;
  aioc_yielder *y;
  CHECK_RC(aioc_group_new(&g, NULL), 0);
  spawn_failures(g, NULL, false);
  aioc_group_free(g);
  CHECK_RC(aioc_pool_new(&g, 2), 0);
  spawn_failures(g, NULL, false);
  aioc_group_free(g);
  for (int ordered = 0; ordered <= 1; ordered++) {
    CHECK_RC(aioc_yielder_new(&y, ordered, NULL), 0);
    spawn_failures(NULL, y, false);
    spawn_failures(NULL, y, true);
    aioc_yielder_free(y);
  }
  /* From another thread, into an OrderedYielder: the failed spawn takes
   * no place in the order. */
  CHECK_RC(aioc_yielder_new(&y, 1, NULL), 0);
  nran = 0;
  xspawn x = {y, 0};
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, spawn_failing_call, &x), 0);
  pthread_join(th, NULL);
  CHECK_RC(x.rc, -ENOMEM);
  void *it;
  CHECK_RC(aioc_yielder_next(y, &it, AIOC_FOREVER), AIOC_EXHAUSTED);
  CHECK_EQ(nran, 0);
  aioc_yielder_free(y);
  CLOSE_CLEAN(loop);
  /* A closed loop: nothing is counted either. */
  loop = test_loop(1);
  CHECK_RC(aioc_group_new(&g, NULL), 0);
  CHECK_RC(aioc_yielder_new(&y, 1, NULL), 0);
  CHECK_RC(aioc_loop_close(loop), 0);
  CHECK_RC(aioc_group_spawn(g, counts, NULL), AIOC_ECLOSED);
  CHECK_EQ(aioc_group_pending(g), 0);
  CHECK_RC(aioc_yielder_spawn(y, counts, NULL), AIOC_ECLOSED);
  aioc_group_free(g);
  aioc_yielder_free(y);
  aioc_loop_free(loop);
  aioc_set_allocator(NULL, NULL);
}

CHECK_MAIN(120)

/* Seed 004, example Nested Loops: "When you have multiple levels of loops,
 * each depends on some blocking data, your situation is worse in raw
 * asyncio".
 *
 *   1. a sync example
 *
 *   def f1():
 *       time.sleep(0.1)
 *       return random.random()
 *
 *   def f2(v1):
 *       time.sleep(0.1)
 *       return random.random()
 *
 *   for _ in range(10):
 *       v1 = f1()
 *       for _ in range(10):
 *           f2(v1)
 *
 *   "Now we need to wait f1 10 times, plus f2 100 times, it takes 11
 *   seconds to finish. But the optimal time for this problem is only 0.2
 *   seconds"
 *
 *   2. using asyncio: f1 and f2 coroutines (asyncio.sleep(0.1)); the
 *   second loop as a coroutine, one task per outer iteration
 *
 *   @asyncio.coroutine
 *   def inner_task(v1):
 *       for _ in range(10):
 *           yield from f2(v1)
 *
 *   "But this only parallels on the first loop, not the seconds one."
 *   Then two levels of tasks:
 *
 *   level1 = []
 *   level2 = []
 *
 *   @asyncio.coroutine
 *   def inner_task(v1):
 *       for _ in range(10)
 *           level2.append(asyncio.async(f2(v1)))
 *
 *   for _ in range(10):
 *       level1.append(asyncio.async(inner_task))
 *
 *   loop = asyncio.get_event_loop()
 *   loop.run_until_complete(asyncio.wait(level1))
 *   loop.run_until_complete(asyncio.wait(level2))
 *
 *   3. using Group
 *
 *   g = Group()
 *
 *   @asyncio.coroutine
 *   def inner_task(v1):
 *       for _ in range(10)
 *           g.spawn(f2(v1))
 *
 *   for _ in range(10):
 *       g.spawn(inner_task(v1))
 *
 *   g.join()
 *
 * The README's asyncio and Group snippets leave out where v1 comes from;
 * as in the sync version, each outer task gets it from f1() first
 * (v1 = yield from f1()). The values (random.random()) are never used;
 * here v1 is the outer index and f2 returns v1 too.
 *
 * All four run from plain code, each on a fresh virtual-clock loop so that
 * its time starts at 0: the sync loop blocks on each sleep in turn
 * (time.sleep is a sleeping task plus aioc_block_on()): 11.0 s. The inner
 * loop as a coroutine: 1.1 s. Two task levels: 0.2 s, with the two lists
 * and two run_until_complete. The Group: 0.2 s, with the inner tasks
 * spawned into the group being joined, which waits for them too.
 */
#include "seed_004_common.h"
#include "seed_004_examples.h"

#define NOUTER 10
#define NINNER 10

static int f1_done, f2_done;

/* ---- 1. sync ---- */

static int f1_sync(int v1, int *out) {
  int rc = seed004_blocking_sleep(0.1); /* time.sleep(0.1) */
  if (rc < 0) return rc;
  f1_done++;
  *out = v1; /* return random.random() */
  return 0;
}

static int f2_sync(int v1) {
  int rc = seed004_blocking_sleep(0.1); /* time.sleep(0.1) */
  if (rc < 0) return rc;
  f2_done++;
  (void)v1;
  return 0;
}

static int sync_version(void) {
  int rc = 0;
  for (int i = 0; rc == 0 && i < NOUTER; i++) { /* for _ in range(10): */
    int v1;
    rc = f1_sync(i, &v1);                            /* v1 = f1() */
    for (int j = 0; rc == 0 && j < NINNER; j++) /* for _ in range(10): */
      rc = f2_sync(v1);                         /*   f2(v1) */
  }
  return rc;
}

/* ---- the coroutines ---- */

static int f1(void *arg, void **result) {
  int rc = aioc_sleep(0.1); /* yield from asyncio.sleep(0.1) */
  if (rc < 0) return rc;
  f1_done++;
  *result = arg;
  return 0;
}

static int f2(void *arg, void **result) {
  int rc = aioc_sleep(0.1); /* yield from asyncio.sleep(0.1) */
  if (rc < 0) return rc;
  f2_done++;
  *result = arg;
  return 0;
}

/* asyncio.wait(fs) as a task, for run_until_complete. */
typedef struct wait_all {
  aioc_future *fs[NOUTER * NINNER];
  size_t n;
} wait_all;

static int wait_all_task(void *arg, void **result) {
  (void)result;
  wait_all *w = arg;
  return aioc_wait(w->fs, w->n, AIOC_WAIT_ALL_COMPLETED, NULL, NULL, NULL, NULL,
                   AIOC_FOREVER);
}

/* run_until_complete(asyncio.wait(ts[0..n))) from plain code. */
static int run_until_all_done(aioc_task *const *ts, size_t n) {
  static wait_all w;
  w.n = 0;
  for (size_t i = 0; i < n; i++) w.fs[w.n++] = aioc_task_future(ts[i]);
  aioc_task *waiter;
  int rc = aioc_spawn(&waiter, wait_all_task, &w);
  if (rc < 0) return rc;
  rc = aioc_block_on(aioc_task_future(waiter), NULL);
  aioc_task_unref(waiter);
  return rc;
}

/* Releases ts[0..n), cancelling those not done (on an error only). */
static void drop_tasks(aioc_task **ts, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (!aioc_future_is_done(aioc_task_future(ts[i])))
      aioc_task_cancel(ts[i], NULL);
    aioc_task_unref(ts[i]);
    ts[i] = NULL;
  }
}

/* ---- 2a. asyncio, the inner loop as a coroutine ---- */

static int inner_task_sequential(void *arg, void **result) {
  (void)result;
  void *v1;
  int rc = f1(arg, &v1); /* v1 = yield from f1() */
  for (int j = 0; rc == 0 && j < NINNER; j++) { /* for _ in range(10): */
    void *r;
    rc = f2(v1, &r); /* yield from f2(v1) */
  }
  return rc;
}

static int asyncio_one_level(void) {
  aioc_task *tasks[NOUTER];
  size_t n = 0;
  int rc = 0;
  for (int i = 0; rc == 0 && i < NOUTER; i++) { /* for _ in range(10): */
    rc = aioc_spawn(&tasks[n], inner_task_sequential, AIOC_INT(i));
    if (rc == 0) n++;
  }
  if (rc == 0) rc = run_until_all_done(tasks, n);
  drop_tasks(tasks, n);
  return rc;
}

/* ---- 2b. asyncio, two task levels ---- */

static aioc_task *level1[NOUTER], *level2[NOUTER * NINNER];
static size_t nlevel1, nlevel2;

static int inner_task_level(void *arg, void **result) {
  (void)result;
  void *v1;
  int rc = f1(arg, &v1); /* v1 = yield from f1() */
  for (int j = 0; rc == 0 && j < NINNER; j++) { /* for _ in range(10): */
    rc = aioc_spawn(&level2[nlevel2], f2, v1); /* level2.append(...) */
    if (rc == 0) nlevel2++;
  }
  return rc;
}

static int asyncio_two_levels(void) {
  nlevel1 = nlevel2 = 0;
  int rc = 0;
  for (int i = 0; rc == 0 && i < NOUTER; i++) { /* for _ in range(10): */
    rc = aioc_spawn(&level1[nlevel1], inner_task_level, AIOC_INT(i));
    if (rc == 0) nlevel1++;
  }
  /* loop.run_until_complete(asyncio.wait(level1)) */
  if (rc == 0) rc = run_until_all_done(level1, nlevel1);
  /* loop.run_until_complete(asyncio.wait(level2)) */
  if (rc == 0) rc = run_until_all_done(level2, nlevel2);
  drop_tasks(level1, nlevel1);
  drop_tasks(level2, nlevel2);
  return rc;
}

/* ---- 3. Group ---- */

static int outer_tasks, inner_tasks;
static size_t pending_after_outer_max;

static int inner_task_group(void *arg, void **result) {
  (void)result;
  aioc_group *g = arg;
  void *v1;
  int rc = f1(AIOC_INT(outer_tasks++), &v1); /* v1 = yield from f1() */
  for (int j = 0; rc == 0 && j < NINNER; j++) { /* for _ in range(10): */
    rc = aioc_group_spawn(g, f2, v1);           /*   g.spawn(f2(v1)) */
    if (rc == 0) inner_tasks++;
  }
  size_t pending = aioc_group_pending(g);
  if (pending > pending_after_outer_max) pending_after_outer_max = pending;
  return rc;
}

static int group_version(void) {
  outer_tasks = inner_tasks = 0;
  pending_after_outer_max = 0;
  aioc_group *g = NULL;
  int rc = aioc_group_new(&g, NULL); /* g = Group() */
  for (int i = 0; rc == 0 && i < NOUTER; i++) /* for _ in range(10): */
    rc = aioc_group_spawn(g, inner_task_group, g); /* g.spawn(inner_task) */
  if (rc == 0) rc = aioc_group_join(g, AIOC_FOREVER); /* g.join() */
  aioc_group_free(g);
  return rc;
}

/* ---- the four, timed ---- */

typedef struct variant {
  const char *what;
  int (*fn)(void);
  double loop_time; /* virtual clock */
  int f1_done, f2_done;
} variant;

static variant variants[] = {
    {"1. sync", sync_version, -1, 0, 0},
    {"2. asyncio, inner loop as a coroutine", asyncio_one_level, -1, 0, 0},
    {"2. asyncio, two task levels", asyncio_two_levels, -1, 0, 0},
    {"3. Group", group_version, -1, 0, 0},
};
#define NVARIANTS (sizeof variants / sizeof *variants)

static int run(void) {
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < NVARIANTS; i++) {
    aioc_loop *loop;
    rc = seed_plain_begin(&loop);
    if (rc < 0) break;
    f1_done = f2_done = 0;
    rc = variants[i].fn();
    if (rc == 0) {
      variants[i].loop_time = aioc_loop_time(loop);
      variants[i].f1_done = f1_done;
      variants[i].f2_done = f2_done;
      seed_out("%s: took %.1f seconds (%d f1, %d f2)", variants[i].what,
               variants[i].loop_time, f1_done, f2_done);
    }
    int crc = seed_plain_end(loop);
    if (rc == 0) rc = crc;
  }
  return rc;
}

const seed_example seed_004_9_nested_loops = {
    "Nested-Loops",
    "10 x (f1 + 10 x f2) of 0.1 s: 11.0 s in sync code, 1.1 s with one task "
    "level, 0.2 s with two, 0.2 s with a Group the tasks spawn into",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const char *const expected[] = {
      "1. sync: took 11.0 seconds (10 f1, 100 f2)",
      ("2. asyncio, inner loop as a coroutine: took 1.1 seconds (10 f1, 100 "
       "f2)"),
      "2. asyncio, two task levels: took 0.2 seconds (10 f1, 100 f2)",
      "3. Group: took 0.2 seconds (10 f1, 100 f2)",
  };
  int fails = 0;
  seed_capture_begin();
  SEED_CHECK(fails, run() == 0);
  SEED_EXPECT(fails, "Nested-Loops", expected);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  /* Sums of 0.1 s steps are not exact in binary: 1e-9 for those; the
   * Group's (and the two levels') 0.1 + 0.1 is exactly 0.2. */
  SEED_CHECK(fails, variants[0].loop_time > 11.0 - 1e-9 &&
                        variants[0].loop_time < 11.0 + 1e-9);
  SEED_CHECK(fails, variants[1].loop_time > 1.1 - 1e-9 &&
                        variants[1].loop_time < 1.1 + 1e-9);
  SEED_CHECK(fails, variants[2].loop_time == 0.2);
  SEED_CHECK(fails, variants[3].loop_time == 0.2);
  for (size_t i = 0; i < NVARIANTS; i++) {
    SEED_CHECK(fails, variants[i].f1_done == NOUTER);
    SEED_CHECK(fails, variants[i].f2_done == NOUTER * NINNER);
  }
  /* The Group version: 10 outer tasks, 100 inner tasks spawned into the
   * group while it was being joined, all waited for by that one join. */
  SEED_CHECK(fails, outer_tasks == NOUTER);
  SEED_CHECK(fails, inner_tasks == NOUTER * NINNER);
  SEED_CHECK(fails, pending_after_outer_max >= NINNER);
  SEED_CHECK(fails, nlevel1 == NOUTER && nlevel2 == NOUTER * NINNER);
  return seed_verdict("seed_004_9_nested_loops", fails);
}
#endif

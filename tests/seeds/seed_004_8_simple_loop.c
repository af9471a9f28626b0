/* Seed 004, example Simple Loop: "Even in simplest case, Group can make
 * the below code cleaner".
 *
 *   1. using asyncio
 *
 *   @asyncio.coroutine
 *   def f1():
 *       yield from asyncio.sleep(1.0)
 *
 *   tasks = [asyncio.async(f1()) for _ in range(10)]
 *   asyncio.get_event_loop().run_until_complete(asyncio.wait(tasks))
 *
 *   2. using Group
 *
 *   g = Group()
 *   for _ in range(10):
 *       g.spawn(f1())
 *   g.join()
 *
 * Both from plain code, on the same virtual-clock loop. The asyncio way
 * needs the task handles, a coroutine to wait on them (asyncio.wait is
 * one; in C a small task around aioc_wait()) and aioc_block_on() for
 * run_until_complete(); the Group keeps the tasks itself. Both take 1.0 s
 * for the ten sleeps of 1.0 s.
 */
#include "seed_004_common.h"
#include "seed_004_examples.h"

#define NTASKS 10

static int f1_done;

static int f1(void *arg, void **result) {
  (void)arg, (void)result;
  int rc = aioc_sleep(1.0); /* yield from asyncio.sleep(1.0) */
  if (rc < 0) return rc;
  f1_done++;
  return 0;
}

/* asyncio.wait(tasks) as a task: the futures are its argument. */
typedef struct wait_all {
  aioc_future *fs[NTASKS];
  size_t n;
} wait_all;

static int wait_all_task(void *arg, void **result) {
  (void)result;
  wait_all *w = arg;
  return aioc_wait(w->fs, w->n, AIOC_WAIT_ALL_COMPLETED, NULL, NULL, NULL, NULL,
                   AIOC_FOREVER);
}

static double asyncio_took, group_took;

static int with_asyncio(void) {
  double t0 = aioc_time();
  aioc_task *tasks[NTASKS] = {NULL};
  wait_all w = {{NULL}, 0};
  int rc = 0;
  for (int i = 0; rc == 0 && i < NTASKS; i++) { /* tasks = [...] */
    rc = aioc_spawn(&tasks[i], f1, NULL);
    if (rc == 0) w.fs[w.n++] = aioc_task_future(tasks[i]);
  }
  aioc_task *waiter = NULL;
  if (rc == 0) rc = aioc_spawn(&waiter, wait_all_task, &w);
  if (rc == 0) /* run_until_complete(asyncio.wait(tasks)) */
    rc = aioc_block_on(aioc_task_future(waiter), NULL);
  aioc_task_unref(waiter);
  for (int i = 0; i < NTASKS; i++) {
    if (rc < 0 && tasks[i]) aioc_task_cancel(tasks[i], NULL);
    aioc_task_unref(tasks[i]);
  }
  if (rc == 0) {
    asyncio_took = aioc_time() - t0;
    seed_out("1. asyncio: run_until_complete(asyncio.wait(tasks)) returned "
             "after %.1f s, %d f1 done",
             asyncio_took, f1_done);
  }
  return rc;
}

static int with_group(void) {
  double t0 = aioc_time();
  aioc_group *g = NULL;
  int rc = aioc_group_new(&g, NULL); /* g = Group() */
  for (int i = 0; rc == 0 && i < NTASKS; i++) /* for _ in range(10): */
    rc = aioc_group_spawn(g, f1, NULL);         /*   g.spawn(f1()) */
  if (rc == 0) rc = aioc_group_join(g, AIOC_FOREVER); /* g.join() */
  aioc_group_free(g);
  if (rc == 0) {
    group_took = aioc_time() - t0;
    seed_out("2. Group: joined after %.1f s, %d f1 done", group_took,
             f1_done);
  }
  return rc;
}

static int run(void) {
  aioc_loop *loop;
  int rc = seed_plain_begin(&loop);
  if (rc < 0) return rc;
  f1_done = 0;
  asyncio_took = group_took = -1;
  rc = with_asyncio();
  if (rc == 0) {
    f1_done = 0;
    rc = with_group();
  }
  int crc = seed_plain_end(loop);
  return rc < 0 ? rc : crc;
}

const seed_example seed_004_8_simple_loop = {
    "Simple-Loop",
    "ten f1() of sleep(1.0): asyncio's tasks + wait + run_until_complete, "
    "then a Group's spawn and join; both 1.0 s",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const char *const expected[] = {
      "1. asyncio: run_until_complete(asyncio.wait(tasks)) returned after "
      "1.0 s, 10 f1 done",
      "2. Group: joined after 1.0 s, 10 f1 done",
  };
  int fails = 0;
  seed_capture_begin();
  SEED_CHECK(fails, run() == 0);
  SEED_EXPECT(fails, "Simple-Loop", expected);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  SEED_CHECK(fails, asyncio_took == 1.0);
  SEED_CHECK(fails, group_took == 1.0);
  return seed_verdict("seed_004_8_simple_loop", fails);
}
#endif

/* Seed 002, example 1-sync-async-execution: two coroutines hand control to
 * each other at every sleep(0); gather waits for both.
 *
 *   async def foo():
 *       print('Running in foo')
 *       await asyncio.sleep(0)
 *       print('Explicit context switch to foo again')
 *
 *   async def bar():
 *       print('Explicit context to bar')
 *       await asyncio.sleep(0)
 *       print('Implicit context switch back to bar')
 *
 *   async def main():
 *       tasks = [foo(), bar()]
 *       await asyncio.gather(*tasks)
 *
 *   asyncio.run(main())
 */
#include "seed_002_examples.h"

static int foo(void *arg, void **result) {
  (void)arg, (void)result;
  seed_out("Running in foo");
  int rc = aioc_sleep(0);
  if (rc < 0) return rc;
  seed_out("Explicit context switch to foo again");
  return 0;
}

static int bar(void *arg, void **result) {
  (void)arg, (void)result;
  seed_out("Explicit context to bar");
  int rc = aioc_sleep(0);
  if (rc < 0) return rc;
  seed_out("Implicit context switch back to bar");
  return 0;
}

static int amain(void *arg, void **result) {
  (void)arg, (void)result;
  aioc_task *tasks[2] = {NULL, NULL};
  int rc = seed_spawn(&tasks[0], foo, NULL, "foo", NULL);
  if (rc == 0) rc = seed_spawn(&tasks[1], bar, NULL, "bar", NULL);
  if (rc == 0) {
    aioc_future *fs[2] = {aioc_task_future(tasks[0]),
                          aioc_task_future(tasks[1])};
    rc = aioc_gather(fs, 2, NULL, NULL, 0);
  }
  seed_release_all(tasks, 2);
  return rc;
}

static int run(void) { return seed_run(amain, NULL); }

const seed_example seed_002_1_sync_async = {
    "1-sync-async-execution",
    "foo and bar hand control to each other at every sleep(0); gather waits "
    "for both",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const char *const expected[] = {
      "Running in foo",
      "Explicit context to bar",
      "Explicit context switch to foo again",
      "Implicit context switch back to bar",
  };
  int fails = 0;
  seed_capture_begin();
  SEED_CHECK(fails, run() == 0);
  SEED_EXPECT(fails, "1-sync-async-execution", expected);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  return seed_verdict("seed_002_1_sync_async", fails);
}
#endif

/* Seed 002, example 1b-cooperatively-scheduled: while gr1 and gr2 wait on
 * "external services" (sleep 2), gr3 gets work done; the loop clock shows
 * they all started at once.
 *
 *   start = time.time()
 *   def tic():
 *       return 'at %1.1f seconds' % (time.time() - start)
 *
 *   async def gr1():
 *       print('gr1 started work: {}'.format(tic()))
 *       await asyncio.sleep(2)
 *       print('gr1 ended work: {}'.format(tic()))
 *   async def gr2(): ... the same, printing 'gr2 Ended work'
 *   async def gr3():
 *       print("Let's do some stuff while the coroutines are blocked, {}"
 *             .format(tic()))
 *       await asyncio.sleep(1)
 *       print("Done!")
 *
 *   async def main():
 *       tasks = [gr1(), gr2(), gr3()]
 *       await asyncio.gather(*tasks)
 *
 * time.time() becomes the loop's (virtual) clock, so the timings are exact.
 */
#include "seed_002_examples.h"

static double start;

static const char *tic(char *buf, size_t n) {
  snprintf(buf, n, "at %1.1f seconds", aioc_time() - start);
  return buf;
}

static int gr1(void *arg, void **result) {
  (void)arg, (void)result;
  char t[32];
  seed_out("gr1 started work: %s", tic(t, sizeof t));
  int rc = aioc_sleep(2);
  if (rc < 0) return rc;
  seed_out("gr1 ended work: %s", tic(t, sizeof t));
  return 0;
}

static int gr2(void *arg, void **result) {
  (void)arg, (void)result;
  char t[32];
  seed_out("gr2 started work: %s", tic(t, sizeof t));
  int rc = aioc_sleep(2);
  if (rc < 0) return rc;
  seed_out("gr2 Ended work: %s", tic(t, sizeof t));
  return 0;
}

static int gr3(void *arg, void **result) {
  (void)arg, (void)result;
  char t[32];
  seed_out("Let's do some stuff while the coroutines are blocked, %s",
           tic(t, sizeof t));
  int rc = aioc_sleep(1);
  if (rc < 0) return rc;
  seed_out("Done!");
  return 0;
}

static int amain(void *arg, void **result) {
  (void)arg, (void)result;
  static const struct {
    aioc_fn fn;
    const char *name;
  } grs[3] = {{gr1, "gr1"}, {gr2, "gr2"}, {gr3, "gr3"}};
  start = aioc_time();
  aioc_task *tasks[3] = {NULL, NULL, NULL};
  aioc_future *fs[3];
  int rc = 0;
  for (int i = 0; i < 3 && rc == 0; i++) {
    rc = seed_spawn(&tasks[i], grs[i].fn, NULL, grs[i].name, NULL);
    if (rc == 0) fs[i] = aioc_task_future(tasks[i]);
  }
  if (rc == 0) rc = aioc_gather(fs, 3, NULL, NULL, 0);
  seed_release_all(tasks, 3);
  return rc;
}

static int run(void) { return seed_run(amain, NULL); }

const seed_example seed_002_1b_cooperative = {
    "1b-cooperatively-scheduled",
    "gr1 and gr2 wait 2 s on \"services\" while gr3 works; all start at 0.0 "
    "(loop clock)",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const char *const expected[] = {
      "gr1 started work: at 0.0 seconds",
      "gr2 started work: at 0.0 seconds",
      "Let's do some stuff while the coroutines are blocked, at 0.0 seconds",
      "Done!",
      "gr1 ended work: at 2.0 seconds",
      "gr2 Ended work: at 2.0 seconds",
  };
  int fails = 0;
  seed_capture_begin();
  SEED_CHECK(fails, run() == 0);
  SEED_EXPECT(fails, "1b-cooperatively-scheduled", expected);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  return seed_verdict("seed_002_1b_cooperative", fails);
}
#endif

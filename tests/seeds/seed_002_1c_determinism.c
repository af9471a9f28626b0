/* Seed 002, example 1c-determinism-sync-async: the same nine tasks of
 * random length run in call order when synchronous, in completion order
 * when concurrent.
 *
 *   def task(pid):
 *       sleep(random.randint(0, 2) * 0.001)
 *       print('Task %s done' % pid)
 *
 *   async def task_coro(pid):
 *       await asyncio.sleep(random.randint(0, 2) * 0.001)
 *       print('Task %s done' % pid)
 *
 *   def synchronous():
 *       for i in range(1, 10):
 *           task(i)
 *
 *   async def asynchronous():
 *       tasks = [task_coro(i) for i in range(1, 10)]
 *       await asyncio.gather(*tasks)
 *
 *   print('Synchronous:')
 *   synchronous()
 *   print('Asynchronous:')
 *   asyncio.run(asynchronous())
 *
 * The synchronous part really blocks (at most 18 ms in all); the
 * asynchronous part runs on the virtual clock. --check seeds the PRNG with
 * fixed seeds and verifies that the asynchronous order is exactly the order
 * of increasing sleep, ties in spawn (FIFO) order.
 */
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "seed_002_examples.h"

#define NTASKS 9

/* random.randint() on a seeded splitmix64 generator. */
static uint64_t rng_state;

static int randint(int lo, int hi) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return lo + (int)(z % (uint64_t)(hi - lo + 1));
}

/* Synchronous non-deterministic task. */
static void task(int pid) {
  struct timespec ts = {0, randint(0, 2) * 1000000L};
  nanosleep(&ts, NULL);
  seed_out("Task %d done", pid);
}

/* Coroutine non-deterministic task. */
static int task_coro(void *arg, void **result) {
  (void)result;
  int rc = aioc_sleep(randint(0, 2) * 0.001);
  if (rc < 0) return rc;
  seed_out("Task %d done", (int)AIOC_TO_INT(arg));
  return 0;
}

static void synchronous(void) {
  for (int i = 1; i < NTASKS + 1; i++) task(i);
}

static int asynchronous(void *arg, void **result) {
  (void)arg, (void)result;
  aioc_task *tasks[NTASKS] = {NULL};
  aioc_future *fs[NTASKS];
  int rc = 0;
  for (int i = 0; i < NTASKS && rc == 0; i++) {
    rc = seed_spawn(&tasks[i], task_coro, AIOC_INT(i + 1), NULL, NULL);
    if (rc == 0) fs[i] = aioc_task_future(tasks[i]);
  }
  if (rc == 0) rc = aioc_gather(fs, NTASKS, NULL, NULL, 0);
  seed_release_all(tasks, NTASKS);
  return rc;
}

static int run_seeded(uint64_t seed) {
  rng_state = seed;
  seed_out("Synchronous:");
  synchronous();
  seed_out("Asynchronous:");
  return seed_run(asynchronous, NULL);
}

static int run(void) {
  return run_seeded((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32));
}

const seed_example seed_002_1c_determinism = {
    "1c-determinism-sync-async",
    "nine tasks with random sleeps (0-2 ms): in call order when synchronous, "
    "in completion order when concurrent",
    run};

#ifndef SEED_NO_MAIN
/* The article's lines for one seed: the synchronous part in call order,
 * then the asynchronous part sorted by sleep, ties in spawn order. The
 * draws replay the program's: nine for task(), then nine for task_coro()
 * (each task draws before its first suspension, and they start in spawn
 * order). Returns non-zero if the asynchronous order is not 1..9. */
static int expected_lines(uint64_t seed, char lines[][32]) {
  rng_state = seed;
  for (int i = 0; i < NTASKS; i++) randint(0, 2);
  int ms[NTASKS];
  for (int i = 0; i < NTASKS; i++) ms[i] = randint(0, 2);
  int n = 0, shuffled = 0, prev = 0;
  snprintf(lines[n++], 32, "Synchronous:");
  for (int i = 1; i <= NTASKS; i++) snprintf(lines[n++], 32, "Task %d done", i);
  snprintf(lines[n++], 32, "Asynchronous:");
  for (int d = 0; d <= 2; d++)
    for (int i = 0; i < NTASKS; i++)
      if (ms[i] == d) {
        snprintf(lines[n++], 32, "Task %d done", i + 1);
        if (i + 1 < prev) shuffled = 1;
        prev = i + 1;
      }
  return shuffled;
}

int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const uint64_t seeds[] = {2018, 42, 0x5eed002};
  int fails = 0, shuffled = 0;
  for (size_t s = 0; s < sizeof seeds / sizeof *seeds; s++) {
    char lines[2 * NTASKS + 2][32];
    const char *expected[2 * NTASKS + 2];
    shuffled += expected_lines(seeds[s], lines);
    for (int i = 0; i < 2 * NTASKS + 2; i++) expected[i] = lines[i];
    char what[64];
    snprintf(what, sizeof what, "1c-determinism-sync-async (seed %llu)",
             (unsigned long long)seeds[s]);
    seed_capture_begin();
    SEED_CHECK(fails, run_seeded(seeds[s]) == 0);
    SEED_EXPECT(fails, what, expected);
    SEED_CHECK(fails, seed_reports() == 0);
    seed_capture_end();
  }
  /* The seeds must show what the example is about. */
  SEED_CHECK(fails, shuffled > 0);
  return seed_verdict("seed_002_1c_determinism", fails);
}
#endif

/* Seed 002, "the same example using threads": asyncio does not make a
 * blocking call non-blocking, but a thread pool can run it while the loop
 * goes on (the article points to concurrent.futures; asyncio has
 * to_thread for it). gr1 and gr2 make a real blocking call (sleep(2) of
 * the C library, as time.sleep) in the loop's default thread pool with
 * aioc_to_thread(); gr3 gets its work done on the loop meanwhile.
 *
 *   async def gr1():
 *       print('gr1 started work: {}'.format(tic()))
 *       await asyncio.to_thread(time.sleep, 2)
 *       print('gr1 ended work: {}'.format(tic()))
 *   async def gr2(): ... the same, printing 'gr2 Ended work'
 *   async def gr3():
 *       print("Let's do some stuff while the coroutines are blocked, {}"
 *             .format(tic()))
 *       await asyncio.sleep(1)
 *       print("Done!")
 *
 * The blocking calls take real time, so this example runs on the real
 * clock: the two calls overlap (2 s in all, not 4), and the order in
 * which the two threads finish may vary; --check allows for both. */
#include <time.h>
#include <unistd.h>

#include "seed_002_examples.h"

static double start;

static const char *tic(char *buf, size_t n) {
  snprintf(buf, n, "at %1.1f seconds", aioc_time() - start);
  return buf;
}

/* When each blocking call began and ended (monotonic seconds), for the
 * check that the two ran at the same time. */
static double call_span[2][2];

static double mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The blocking call: time.sleep(2). */
static int blocking_sleep(void *arg, void **result) {
  (void)result;
  double *span = arg;
  span[0] = mono_now();
  struct timespec ts = {2, 0};
  while (nanosleep(&ts, &ts) != 0)
    continue;
  span[1] = mono_now();
  return 0;
}

static int gr_blocked(const char *name, const char *ended, double *span) {
  char t[32];
  seed_out("%s started work: %s", name, tic(t, sizeof t));
  int rc = aioc_to_thread(NULL, blocking_sleep, span);
  if (rc < 0) return rc;
  seed_out("%s %s work: %s", name, ended, tic(t, sizeof t));
  return 0;
}

static int gr1(void *arg, void **result) {
  (void)arg, (void)result;
  return gr_blocked("gr1", "ended", call_span[0]);
}

static int gr2(void *arg, void **result) {
  (void)arg, (void)result;
  return gr_blocked("gr2", "Ended", call_span[1]);
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
  aioc_loop_set_report_handler(aioc_get_running_loop(), seed_report, NULL);
  static const aioc_fn grs[3] = {gr1, gr2, gr3};
  static const char *const names[3] = {"gr1", "gr2", "gr3"};
  start = aioc_time();
  aioc_task *tasks[3] = {NULL, NULL, NULL};
  aioc_future *fs[3];
  int rc = 0;
  for (int i = 0; i < 3 && rc == 0; i++) {
    rc = seed_spawn(&tasks[i], grs[i], NULL, names[i], NULL);
    if (rc == 0) fs[i] = aioc_task_future(tasks[i]);
  }
  if (rc == 0) rc = aioc_gather(fs, 3, NULL, NULL, 0);
  seed_release_all(tasks, 3);
  return rc;
}

/* asyncio.run() on the real clock. */
static int run(void) { return aioc_run(amain, NULL, NULL); }

const seed_example seed_002_1e_threads = {
    "1b-cooperatively-scheduled, with threads",
    "gr1 and gr2 make a real blocking call (sleep 2) in the thread pool "
    "with aioc_to_thread() while gr3 works on the loop (real clock)",
    run};

#ifndef SEED_NO_MAIN
/* Is line "<prefix> at S seconds" with S within [lo, hi]? */
static int timed_line(const char *line, const char *prefix, double lo,
                      double hi) {
  size_t n = strlen(prefix);
  double s;
  if (strncmp(line, prefix, n) != 0) return 0;
  if (sscanf(line + n, " at %lf seconds", &s) != 1) return 0;
  return s >= lo && s <= hi;
}

int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  int fails = 0;
  seed_capture_begin();
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  SEED_CHECK(fails, run() == 0);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double took = (double)(t1.tv_sec - t0.tv_sec) +
                (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  char **l = seed_state.lines;
  SEED_CHECK(fails, seed_state.n == 6);
  if (seed_state.n == 6) {
    /* All three start at once; gr3 is done while the calls block. */
    SEED_CHECK(fails, timed_line(l[0], "gr1 started work:", 0, 0.5));
    SEED_CHECK(fails, timed_line(l[1], "gr2 started work:", 0, 0.5));
    SEED_CHECK(fails,
               timed_line(l[2],
                          "Let's do some stuff while the coroutines are "
                          "blocked,",
                          0, 0.5));
    SEED_CHECK(fails, strcmp(l[3], "Done!") == 0);
    /* Both calls end after their 2 s, in either order. */
    int a = timed_line(l[4], "gr1 ended work:", 1.95, 30) &&
            timed_line(l[5], "gr2 Ended work:", 1.95, 30);
    int b = timed_line(l[4], "gr2 Ended work:", 1.95, 30) &&
            timed_line(l[5], "gr1 ended work:", 1.95, 30);
    SEED_CHECK(fails, a || b);
  }
  /* The two blocking calls overlapped: each began before the other
   * ended. */
  SEED_CHECK(fails, took >= 1.95);
  SEED_CHECK(fails, call_span[0][0] < call_span[1][1] &&
                        call_span[1][0] < call_span[0][1]);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  return seed_verdict("seed_002_1e_threads", fails);
}
#endif

/* Seed 004, example Pool: the same spawns with a concurrency limit.
 *
 *   p = Pool(2)
 *   for c in chars:
 *       p.spawn(f(c))
 *   p.join()
 *
 * "The only differences between Pool and Group is that a Pool initializes
 * with a integer as the limiting concurrency." aioc_pool_new(&p, 2) is a
 * Group that runs at most two of its tasks at once; the others wait their
 * turn in spawn order, each starting the moment a running one returns. f
 * prints when it starts and when it returns; the join is later than the
 * Group's (0.203 s instead of 0.095 s), as two lanes of work have to carry
 * the seven sleeps:
 *
 *   lane 1: a 0.000-0.064, d 0.064-0.073, e 0.073-0.125, g 0.125-0.163
 *   lane 2: b 0.000-0.027, c 0.027-0.108, f 0.108-0.203
 */
#include "seed_004_common.h"
#include "seed_004_examples.h"

static int run(void) {
  aioc_loop *loop;
  int rc = seed_plain_begin(&loop);
  if (rc < 0) return rc;
  seed004_reset(2);
  aioc_group *p = NULL;
  rc = aioc_pool_new(&p, 2); /* p = Pool(2) */
  for (int i = 0; rc == 0 && i < SEED004_NCHARS; i++) /* for c in chars: */
    rc = aioc_group_spawn(p, seed004_f, AIOC_INT(seed004_chars[i]));
  if (rc == 0) rc = aioc_group_join(p, AIOC_FOREVER); /* p.join() */
  if (rc == 0)
    seed_out("joined at %.3f s (loop time); at most %d ran at once",
             aioc_loop_time(loop), seed004_max_running);
  aioc_group_free(p);
  int crc = seed_plain_end(loop);
  return rc < 0 ? rc : crc;
}

const seed_example seed_004_2_pool = {
    "Pool",
    "the same spawns into Pool(2): at most two run at once, the others start "
    "in spawn order as soon as one returns",
    run};

#ifndef SEED_NO_MAIN
/* The schedule of a pool of n lanes, computed apart from the library: each
 * char in spawn order takes the lane that frees first. Returns the end of
 * the last one. */
static double pool_schedule(int n) {
  double lane[SEED004_NCHARS] = {0};
  double last = 0;
  for (int i = 0; i < SEED004_NCHARS; i++) {
    int best = 0;
    for (int l = 1; l < n; l++)
      if (lane[l] < lane[best]) best = l;
    lane[best] += seed004_delay[i];
    if (lane[best] > last) last = lane[best];
  }
  return last;
}

int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const char *const expected[] = {
      "t=0.000 f('a') starts, sleeps 0.064 s (1 running)",
      "t=0.000 f('b') starts, sleeps 0.027 s (2 running)",
      "t=0.027 f('b') returns",
      "t=0.027 f('c') starts, sleeps 0.081 s (2 running)",
      "t=0.064 f('a') returns",
      "t=0.064 f('d') starts, sleeps 0.009 s (2 running)",
      "t=0.073 f('d') returns",
      "t=0.073 f('e') starts, sleeps 0.052 s (2 running)",
      "t=0.108 f('c') returns",
      "t=0.108 f('f') starts, sleeps 0.095 s (2 running)",
      "t=0.125 f('e') returns",
      "t=0.125 f('g') starts, sleeps 0.038 s (2 running)",
      "t=0.163 f('g') returns",
      "t=0.203 f('f') returns",
      "joined at 0.203 s (loop time); at most 2 ran at once",
  };
  int fails = 0;
  seed_capture_begin();
  SEED_CHECK(fails, run() == 0);
  SEED_EXPECT(fails, "Pool", expected);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  SEED_CHECK(fails, seed004_started == SEED004_NCHARS);
  SEED_CHECK(fails, seed004_finished == SEED004_NCHARS);
  SEED_CHECK(fails, seed004_max_running == 2);

  /* For every limit, at most that many at once, and the join at the end of
   * the schedule computed above (Pool(7) and beyond: the Group's). */
  for (long n = 1; n <= SEED004_NCHARS + 1; n++) {
    aioc_loop *loop;
    SEED_CHECK(fails, seed_plain_begin(&loop) == 0);
    seed004_reset(0);
    aioc_group *p = NULL;
    SEED_CHECK(fails, aioc_pool_new(&p, n) == 0);
    for (int i = 0; i < SEED004_NCHARS; i++)
      SEED_CHECK(fails, aioc_group_spawn(p, seed004_f,
                                         AIOC_INT(seed004_chars[i])) == 0);
    SEED_CHECK(fails, aioc_group_join(p, AIOC_FOREVER) == 0);
    SEED_CHECK(fails, seed004_finished == SEED004_NCHARS);
    SEED_CHECK(fails, seed004_max_running ==
                          (n < SEED004_NCHARS ? n : SEED004_NCHARS));
    double want = pool_schedule(n < SEED004_NCHARS ? (int)n : SEED004_NCHARS);
    if (!(aioc_loop_time(loop) > want - 1e-9 &&
          aioc_loop_time(loop) < want + 1e-9)) {
      fprintf(stderr, "Pool(%ld): joined at %.9f, expected %.9f\n", n,
              aioc_loop_time(loop), want);
      fails++;
    }
    SEED_CHECK(fails, !aioc_loop_is_running(loop));
    aioc_group_free(p);
    SEED_CHECK(fails, seed_plain_end(loop) == 0);
  }
  /* Pool(0) is no pool. */
  aioc_loop *loop;
  SEED_CHECK(fails, seed_plain_begin(&loop) == 0);
  aioc_group *p = NULL;
  SEED_CHECK(fails, aioc_pool_new(&p, 0) == -EINVAL);
  SEED_CHECK(fails, seed_plain_end(loop) == 0);
  return seed_verdict("seed_004_2_pool", fails);
}
#endif

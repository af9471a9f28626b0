/* Seed 004, example Group: spawn coroutines into a group from plain code,
 * then join them.
 *
 *   @asyncio.coroutine
 *   def f(c):
 *       yield from asyncio.sleep(random.random()/10)
 *       return c
 *
 *   chars = 'abcdefg'
 *
 *   g = Group()
 *   for c in chars:
 *       g.spawn(f(c))
 *   g.join()
 *
 * "You might find that there is no explicit event loop [...] an event loop
 * starts and runs until all tasks in group joins, then the event loop
 * stops, allows synced calls from outside." The port is plain code too: no
 * aioc_run, no task of its own. aioc_group_join() runs the thread's loop
 * (a virtual-clock loop made current by seed_plain_begin()) until the
 * seven tasks are done, and returns with the loop stopped. The group joins
 * at the longest sleep, 0.095 s, not at the sum of the sleeps.
 */
#include "seed_004_common.h"
#include "seed_004_examples.h"

static int run(void) {
  aioc_loop *loop;
  int rc = seed_plain_begin(&loop);
  if (rc < 0) return rc;
  seed004_reset(1);
  aioc_group *g = NULL;
  rc = aioc_group_new(&g, NULL); /* g = Group() */
  for (int i = 0; rc == 0 && i < SEED004_NCHARS; i++) /* for c in chars: */
    rc = aioc_group_spawn(g, seed004_f, AIOC_INT(seed004_chars[i]));
  if (rc == 0) {
    seed_out("spawned %zu tasks; loop running: %s, loop time %.3f s",
             aioc_group_pending(g), aioc_loop_is_running(loop) ? "yes" : "no",
             aioc_loop_time(loop));
    rc = aioc_group_join(g, AIOC_FOREVER); /* g.join() */
  }
  if (rc == 0) {
    seed_out("finished in the order %s", seed004_done_order);
    seed_out("joined at %.3f s (loop time); %zu pending, loop running: %s",
             aioc_loop_time(loop), aioc_group_pending(g),
             aioc_loop_is_running(loop) ? "yes" : "no");
  }
  aioc_group_free(g);
  int crc = seed_plain_end(loop);
  return rc < 0 ? rc : crc;
}

const seed_example seed_004_1_group = {
    "Group",
    "plain code spawns f(c) for 'abcdefg' into a Group and joins: the loop "
    "runs underneath only until all seven are done",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const char *const expected[] = {
      "spawned 7 tasks; loop running: no, loop time 0.000 s",
      "t=0.009 f('d') returns",
      "t=0.027 f('b') returns",
      "t=0.038 f('g') returns",
      "t=0.052 f('e') returns",
      "t=0.064 f('a') returns",
      "t=0.081 f('c') returns",
      "t=0.095 f('f') returns",
      "finished in the order dbgeacf",
      "joined at 0.095 s (loop time); 0 pending, loop running: no",
  };
  int fails = 0;
  seed_capture_begin();
  SEED_CHECK(fails, run() == 0);
  SEED_EXPECT(fails, "Group", expected);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  /* All seven finished, all at once (a Group has no limit), in the order
   * of their sleeps. */
  char by_delay[SEED004_NCHARS + 1];
  seed004_by_delay(by_delay);
  SEED_CHECK(fails, seed004_finished == SEED004_NCHARS);
  SEED_CHECK(fails, seed004_max_running == SEED004_NCHARS);
  SEED_CHECK(fails, strcmp(seed004_done_order, by_delay) == 0);

  /* The join took exactly the longest sleep, and left the loop stopped:
   * plain code goes on, and the same loop can run again (a second group
   * on it joins a longest sleep later). */
  aioc_loop *loop;
  SEED_CHECK(fails, seed_plain_begin(&loop) == 0);
  seed004_reset(0);
  aioc_group *g = NULL;
  SEED_CHECK(fails, aioc_group_new(&g, NULL) == 0);
  for (int i = 0; i < SEED004_NCHARS; i++)
    SEED_CHECK(fails, aioc_group_spawn(g, seed004_f,
                                       AIOC_INT(seed004_chars[i])) == 0);
  SEED_CHECK(fails, aioc_group_join(g, AIOC_FOREVER) == 0);
  SEED_CHECK(fails, aioc_loop_time(loop) == seed004_longest());
  SEED_CHECK(fails, !aioc_loop_is_running(loop));
  SEED_CHECK(fails, aioc_get_running_loop() == NULL);
  SEED_CHECK(fails, aioc_group_pending(g) == 0);
  for (int i = 0; i < SEED004_NCHARS; i++)
    SEED_CHECK(fails, aioc_group_spawn(g, seed004_f,
                                       AIOC_INT(seed004_chars[i])) == 0);
  SEED_CHECK(fails, aioc_group_join(g, AIOC_FOREVER) == 0);
  SEED_CHECK(fails, seed004_finished == 2 * SEED004_NCHARS);
  SEED_CHECK(fails, aioc_loop_time(loop) == 2 * seed004_longest());
  SEED_CHECK(fails, !aioc_loop_is_running(loop));
  aioc_group_free(g);
  SEED_CHECK(fails, seed_plain_end(loop) == 0);
  return seed_verdict("seed_004_1_group", fails);
}
#endif

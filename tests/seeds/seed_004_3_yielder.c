/* Seed 004, example Yielder: a plain generator whose items are the results
 * of coroutines, in the order they complete.
 *
 *   def gen_func():
 *       y = Yielder()
 *       for c in chars:
 *           y.spawn(f(c))
 *       yield from y.yielding()
 *
 *   print(list(gen_func()))
 *   # outputs an unordered version of ['b', 'd', 'c', 'e', 'f', 'g', 'a']
 *
 * gen_func() delegates everything to y.yielding(), so in C it returns the
 * Yielder as an iterator (aioc_yielder_iter(), which takes ownership) and
 * list() is aioc_iter_collect(). The list is the order of the sleeps.
 *
 * "Under the hood, Yielder runs an event loop until the first
 * non-None-return coroutine completed, then stops the loop and yield." The
 * second half shows it: two next() calls from plain code, each returning
 * as soon as its result is ready (the loop time moves by the sleep of
 * that result and no further), then the iterator is dropped, which
 * cancels the five tasks still sleeping and waits for their cleanup.
 */
#include <stdlib.h>

#include "seed_004_common.h"
#include "seed_004_examples.h"

/* gen_func(): *out yields f(c)'s results as they complete. */
static int gen_func(aioc_iter **out) {
  aioc_yielder *y;
  int rc = aioc_yielder_new(&y, 0, NULL); /* y = Yielder() */
  if (rc < 0) return rc;
  for (int i = 0; rc == 0 && i < SEED004_NCHARS; i++) /* for c in chars: */
    rc = aioc_yielder_spawn(y, seed004_f, AIOC_INT(seed004_chars[i]));
  if (rc == 0) rc = aioc_yielder_iter(out, y); /* yield from y.yielding() */
  if (rc < 0) aioc_yielder_free(y);
  return rc;
}

/* What list(gen_func()) gave, for the checks. */
static char listed[SEED004_NCHARS + 2];

static int print_list(void) {
  aioc_iter *it;
  int rc = gen_func(&it);
  if (rc < 0) return rc;
  void **items = NULL;
  size_t n = 0;
  rc = aioc_iter_collect(it, &items, &n, AIOC_FOREVER); /* list(...) */
  aioc_iter_free(it);
  if (rc == 0) {
    char buf[128];
    seed004_format_list(buf, sizeof buf, items, n);
    seed_out("%s", buf); /* print(...) */
    seed004_items_str(listed, sizeof listed, items, n);
  }
  aioc_mem_free(items);
  return rc;
}

static int step_by_step(void) {
  aioc_iter *it;
  int rc = gen_func(&it);
  if (rc < 0) return rc;
  double t0 = aioc_time();
  for (int i = 0; i < 2 && rc == 0; i++) {
    void *item;
    rc = aioc_iter_next(it, &item, AIOC_FOREVER);
    if (rc == 0)
      seed_out("next() -> '%c' after %.3f s; loop running: %s, %d done, "
               "%d sleeping",
               (char)AIOC_TO_INT(item), aioc_time() - t0,
               aioc_loop_is_running(aioc_loop_current()) ? "yes" : "no",
               seed004_finished, seed004_running);
  }
  aioc_iter_free(it); /* the generator is dropped */
  if (rc == 0)
    seed_out("dropped after %.3f s: %d cancelled, %d sleeping",
             aioc_time() - t0, seed004_started - seed004_finished,
             seed004_running);
  return rc;
}

static int run(void) {
  aioc_loop *loop;
  int rc = seed_plain_begin(&loop);
  if (rc < 0) return rc;
  seed004_reset(0);
  rc = print_list();
  if (rc == 0) {
    seed_out("list() done at %.3f s (loop time)", aioc_loop_time(loop));
    seed004_reset(0);
    rc = step_by_step();
  }
  int crc = seed_plain_end(loop);
  return rc < 0 ? rc : crc;
}

const seed_example seed_004_3_yielder = {
    "Yielder",
    "a generator of f(c)'s results in completion order: list(gen_func()), "
    "then next() by next(), the loop running only until each result",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const char *const expected[] = {
      "['d', 'b', 'g', 'e', 'a', 'c', 'f']",
      "list() done at 0.095 s (loop time)",
      "next() -> 'd' after 0.009 s; loop running: no, 1 done, 6 sleeping",
      "next() -> 'b' after 0.027 s; loop running: no, 2 done, 5 sleeping",
      "dropped after 0.027 s: 5 cancelled, 0 sleeping",
  };
  int fails = 0;
  seed_capture_begin();
  SEED_CHECK(fails, run() == 0);
  SEED_EXPECT(fails, "Yielder", expected);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  /* The list is the order of increasing sleep, computed from the table. */
  char by_delay[SEED004_NCHARS + 1];
  seed004_by_delay(by_delay);
  SEED_CHECK(fails, strcmp(listed, by_delay) == 0);
  return seed_verdict("seed_004_3_yielder", fails);
}
#endif

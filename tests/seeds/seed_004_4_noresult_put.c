/* Seed 004, example Yielder, its rule for None and y.put():
 *
 *   "Note that Yielder only captures results that returns something, i.e.
 *   if you spawn a coroutine that doesn't return anything, or returns
 *   None, Yielder will not yield that value. You can also use y.put method
 *   to explicitly declare what items to be yielded."
 *
 * The README has no code for it; in its style:
 *
 *   @asyncio.coroutine
 *   def nothing():              # returns None: not yielded
 *       yield from asyncio.sleep(0.01)
 *
 *   @asyncio.coroutine
 *   def zero():                 # returns something: yielded
 *       yield from asyncio.sleep(0.02)
 *       return 0
 *
 *   @asyncio.coroutine
 *   def putter():               # returns None, but puts two items
 *       yield from asyncio.sleep(0.03)
 *       y.put('p')
 *       y.put('q')
 *
 *   y = Yielder()
 *   y.spawn(nothing()); y.spawn(zero()); y.spawn(putter())
 *   y.put('x')
 *   print(list(y.yielding()))   # ['x', 0, 'p', 'q']
 *
 * In C a task always has a result slot, so "returned None" cannot be told
 * by the value: a task says it has no result by returning AIOC_NORESULT
 * (positive, not an error). A task that returns 0 leaves a result that is
 * yielded even when it is NULL (which is also C's 0): zero() below sets
 * *result = NULL and the list shows it as NULL. y.put('x') from plain
 * code comes out first, being ready before any task ran.
 */
#include <stdlib.h>

#include "seed_004_common.h"
#include "seed_004_examples.h"

static int nothing_ran, zero_ran, putter_ran;

static int nothing(void *arg, void **result) {
  (void)arg, (void)result;
  int rc = aioc_sleep(0.01);
  if (rc < 0) return rc;
  nothing_ran++;
  return AIOC_NORESULT; /* returns None: not yielded */
}

static int zero(void *arg, void **result) {
  (void)arg;
  int rc = aioc_sleep(0.02);
  if (rc < 0) return rc;
  zero_ran++;
  *result = NULL; /* return 0: a result, yielded */
  return 0;
}

static int putter(void *arg, void **result) {
  (void)result;
  aioc_yielder *y = arg;
  int rc = aioc_sleep(0.03);
  if (rc < 0) return rc;
  putter_ran++;
  rc = aioc_yielder_put(y, AIOC_INT('p')); /* y.put('p') */
  if (rc == 0) rc = aioc_yielder_put(y, AIOC_INT('q')); /* y.put('q') */
  return rc < 0 ? rc : AIOC_NORESULT;
}

/* What the list was, and what next() said after the end, for the checks. */
static char listed[8];
static int after_end;

static int run(void) {
  aioc_loop *loop;
  int rc = seed_plain_begin(&loop);
  if (rc < 0) return rc;
  nothing_ran = zero_ran = putter_ran = 0;
  memset(listed, 0, sizeof listed);
  after_end = 0;
  aioc_yielder *y = NULL;
  rc = aioc_yielder_new(&y, 0, NULL); /* y = Yielder() */
  if (rc == 0) rc = aioc_yielder_spawn(y, nothing, NULL);
  if (rc == 0) rc = aioc_yielder_spawn(y, zero, NULL);
  if (rc == 0) rc = aioc_yielder_spawn(y, putter, y);
  if (rc == 0) rc = aioc_yielder_put(y, AIOC_INT('x')); /* y.put('x') */
  void *items[8];
  size_t n = 0;
  while (rc == 0) {
    void *item;
    rc = aioc_yielder_next(y, &item, AIOC_FOREVER);
    if (rc != 0) break;
    if (item)
      seed_out("t=%.3f yielded '%c'", aioc_loop_time(loop),
               (char)AIOC_TO_INT(item));
    else
      seed_out("t=%.3f yielded NULL (a task returned 0 with a NULL result)",
               aioc_loop_time(loop));
    if (n < sizeof items / sizeof *items) items[n++] = item;
  }
  if (rc == AIOC_EXHAUSTED) {
    rc = 0;
    char buf[128];
    seed004_format_list(buf, sizeof buf, items, n);
    seed_out("%s", buf);
    seed004_items_str(listed, sizeof listed, items, n);
    void *item;
    after_end = aioc_yielder_next(y, &item, AIOC_FOREVER);
    seed_out("nothing() ran %d time(s) and returned AIOC_NORESULT: nothing "
             "yielded for it",
             nothing_ran);
    seed_out("next() after the end: %s",
             after_end == AIOC_EXHAUSTED ? "AIOC_EXHAUSTED"
                                         : aioc_err_name(after_end));
  }
  aioc_yielder_free(y);
  int crc = seed_plain_end(loop);
  return rc < 0 ? rc : crc;
}

const seed_example seed_004_4_noresult_put = {
    "Yielder-None-and-put",
    "a task returning AIOC_NORESULT (Python's None) yields nothing, y.put() "
    "yields what it is given, a 0/NULL result is still a result",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const char *const expected[] = {
      "t=0.000 yielded 'x'",
      "t=0.020 yielded NULL (a task returned 0 with a NULL result)",
      "t=0.030 yielded 'p'",
      "t=0.030 yielded 'q'",
      "['x', NULL, 'p', 'q']",
      ("nothing() ran 1 time(s) and returned AIOC_NORESULT: nothing yielded "
       "for it"),
      "next() after the end: AIOC_EXHAUSTED",
  };
  int fails = 0;
  seed_capture_begin();
  SEED_CHECK(fails, run() == 0);
  SEED_EXPECT(fails, "Yielder-None-and-put", expected);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  SEED_CHECK(fails, strcmp(listed, "x0pq") == 0);
  SEED_CHECK(fails, nothing_ran == 1 && zero_ran == 1 && putter_ran == 1);
  SEED_CHECK(fails, after_end == AIOC_EXHAUSTED);
  return seed_verdict("seed_004_4_noresult_put", fails);
}
#endif

/* Seed 004, example OrderedYielder: the results in spawn order.
 *
 *   def gen_func():
 *       y = OrderedYielder()
 *       for c in chars:
 *           y.spawn(f(c))
 *       yield from y.yielding()
 *
 *   print(list(gen_func()))
 *   # ['a', 'b', 'c', 'd', 'e', 'f', 'g']
 *
 *   "And also there is ordered_yielding works just like yielding"
 *
 * The first half is the Yielder example with aioc_yielder_new(&y, 1, ...)
 * (ordered): the same tasks, completing in the same order d b g e a c f,
 * come out a b c d e f g. The second half is ordered_yielding, the scoped
 * form aioc_yielding(1, ...), used straight from plain code; its block
 * notes when each result came: a result that completed early waits for
 * those spawned before it ('b', done at 0.027, comes with 'a' at 0.064).
 */
#include <stdlib.h>

#include "seed_004_common.h"
#include "seed_004_examples.h"

static int gen_func(aioc_iter **out) {
  aioc_yielder *y;
  int rc = aioc_yielder_new(&y, 1, NULL); /* y = OrderedYielder() */
  if (rc < 0) return rc;
  for (int i = 0; rc == 0 && i < SEED004_NCHARS; i++) /* for c in chars: */
    rc = aioc_yielder_spawn(y, seed004_f, AIOC_INT(seed004_chars[i]));
  if (rc == 0) rc = aioc_yielder_iter(out, y); /* yield from y.yielding() */
  if (rc < 0) aioc_yielder_free(y);
  return rc;
}

/* What each half listed, for the checks. */
static char listed[2][SEED004_NCHARS + 2];

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
    seed004_items_str(listed[0], sizeof listed[0], items, n);
  }
  aioc_mem_free(items);
  return rc;
}

/* with ordered_yielding() as y: spawn, then take every result, noting the
 * loop time it came at. */
static int ordered_body(void *arg, aioc_yielder *y) {
  (void)arg;
  int rc = 0;
  for (int i = 0; rc == 0 && i < SEED004_NCHARS; i++)
    rc = aioc_yielder_spawn(y, seed004_f, AIOC_INT(seed004_chars[i]));
  void *items[SEED004_NCHARS + 1];
  double at[SEED004_NCHARS + 1];
  size_t n = 0;
  double t0 = aioc_time();
  while (rc == 0) { /* for c in y: */
    void *item;
    rc = aioc_yielder_next(y, &item, AIOC_FOREVER);
    if (rc == 0 && n < SEED004_NCHARS + 1) {
      at[n] = aioc_time() - t0;
      items[n++] = item;
    }
  }
  if (rc != AIOC_EXHAUSTED) return rc;
  char buf[256];
  seed004_format_list(buf, sizeof buf, items, n);
  seed_out("%s", buf);
  seed004_items_str(listed[1], sizeof listed[1], items, n);
  size_t len = (size_t)snprintf(buf, sizeof buf, "came after:");
  for (size_t i = 0; i < n && len < sizeof buf; i++)
    len += (size_t)snprintf(buf + len, sizeof buf - len, "%s '%c' %.3f",
                            i ? "," : "", (char)AIOC_TO_INT(items[i]), at[i]);
  seed_out("%s", buf);
  return 0;
}

static int run(void) {
  aioc_loop *loop;
  int rc = seed_plain_begin(&loop);
  if (rc < 0) return rc;
  memset(listed, 0, sizeof listed);
  seed004_reset(0);
  rc = print_list();
  if (rc == 0) {
    seed_out("list() done at %.3f s; completion order was %s",
             aioc_loop_time(loop), seed004_done_order);
    seed004_reset(0);
    rc = aioc_yielding(1, NULL, ordered_body, NULL); /* ordered_yielding() */
  }
  int crc = seed_plain_end(loop);
  return rc < 0 ? rc : crc;
}

const seed_example seed_004_7_ordered_yielder = {
    "OrderedYielder",
    "the same tasks through OrderedYielder and ordered_yielding: results in "
    "spawn order, an early one waiting for those before it",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const char *const expected[] = {
      "['a', 'b', 'c', 'd', 'e', 'f', 'g']",
      "list() done at 0.095 s; completion order was dbgeacf",
      "['a', 'b', 'c', 'd', 'e', 'f', 'g']",
      ("came after: 'a' 0.064, 'b' 0.064, 'c' 0.081, 'd' 0.081, 'e' 0.081, "
       "'f' 0.095, 'g' 0.095"),
  };
  int fails = 0;
  seed_capture_begin();
  SEED_CHECK(fails, run() == 0);
  SEED_EXPECT(fails, "OrderedYielder", expected);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  SEED_CHECK(fails, strcmp(listed[0], "abcdefg") == 0);
  SEED_CHECK(fails, strcmp(listed[1], "abcdefg") == 0);
  return seed_verdict("seed_004_7_ordered_yielder", fails);
}
#endif

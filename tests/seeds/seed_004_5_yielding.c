/* Seed 004, example yielding: the Yielder as a context manager, inside a
 * generator.
 *
 *   def gen_func2():
 *       with yielding() as y:
 *           for c in chars:
 *               y.spawn(f(c))
 *           yield from y
 *
 *   print(list(gen_func2()))
 *   # outputs an unordered version of ['b', 'd', 'c', 'e', 'f', 'g', 'a']
 *
 * gen_func2 is a generator here too (aioc_gen): its body enters the scoped
 * form aioc_yielding(0, ...), whose block spawns the seven f(c) and hands
 * every result on with aioc_gen_yield() ("yield from y"). list() is
 * aioc_iter_collect() over the generator, from plain code.
 *
 * The with block is what makes stopping early safe: closing the generator
 * after three items makes the pending yield return AIOC_EGENEXIT, the
 * block returns, and aioc_yielding() closes the Yielder — cancelling the
 * four tasks still sleeping and waiting for their cleanup — before the
 * close returns to plain code.
 */
#include <stdlib.h>

#include "seed_004_common.h"
#include "seed_004_examples.h"

/* The with block: spawns, then "yield from y". */
static int with_body(void *arg, aioc_yielder *y) {
  aioc_gen *g = arg;
  int rc = 0;
  for (int i = 0; rc == 0 && i < SEED004_NCHARS; i++) /* for c in chars: */
    rc = aioc_yielder_spawn(y, seed004_f, AIOC_INT(seed004_chars[i]));
  while (rc == 0) { /* yield from y */
    void *item;
    rc = aioc_yielder_next(y, &item, AIOC_FOREVER);
    if (rc == 0) rc = aioc_gen_yield(g, item, NULL);
  }
  return rc == AIOC_EXHAUSTED ? 0 : rc; /* AIOC_EGENEXIT: being closed */
}

/* def gen_func2(): with yielding() as y: ... */
static int gen_func2(void *arg, aioc_gen *g) {
  (void)arg;
  return aioc_yielding(0, NULL, with_body, g);
}

static char listed[SEED004_NCHARS + 2];
static int left_sleeping;

static int print_list(void) {
  aioc_gen *g;
  int rc = aioc_gen_new(&g, gen_func2, NULL, NULL);
  if (rc < 0) return rc;
  aioc_iter *it;
  rc = aioc_gen_iter(&it, g);
  if (rc < 0) {
    aioc_gen_free(g);
    return rc;
  }
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

/* Three items, then the generator is closed. */
static int stop_early(void) {
  aioc_gen *g;
  int rc = aioc_gen_new(&g, gen_func2, NULL, NULL);
  if (rc < 0) return rc;
  double t0 = aioc_time();
  void *items[3];
  size_t n = 0;
  while (rc == 0 && n < 3) {
    rc = aioc_gen_next(g, &items[n], AIOC_FOREVER);
    if (rc == 0) n++;
  }
  int crc = aioc_gen_close(g); /* leaves the with block */
  if (rc == 0) rc = crc;
  if (rc == 0) {
    char buf[64];
    seed004_format_list(buf, sizeof buf, items, n);
    left_sleeping = seed004_running;
    seed_out("first three %s after %.3f s; closed: %d cancelled by the with "
             "block, %d left sleeping",
             buf, aioc_time() - t0, seed004_started - seed004_finished,
             seed004_running);
  }
  aioc_gen_free(g);
  return rc;
}

static int run(void) {
  aioc_loop *loop;
  int rc = seed_plain_begin(&loop);
  if (rc < 0) return rc;
  seed004_reset(0);
  left_sleeping = -1;
  rc = print_list();
  if (rc == 0) {
    seed_out("list() done at %.3f s (loop time)", aioc_loop_time(loop));
    seed004_reset(0);
    rc = stop_early();
  }
  int crc = seed_plain_end(loop);
  return rc < 0 ? rc : crc;
}

const seed_example seed_004_5_yielding = {
    "yielding",
    "the scoped form inside a generator: with yielding() as y: spawn, yield "
    "from y; closing the generator early cancels what is left",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const char *const expected[] = {
      "['d', 'b', 'g', 'e', 'a', 'c', 'f']",
      "list() done at 0.095 s (loop time)",
      ("first three ['d', 'b', 'g'] after 0.038 s; closed: 4 cancelled by the "
       "with block, 0 left sleeping"),
  };
  int fails = 0;
  seed_capture_begin();
  SEED_CHECK(fails, run() == 0);
  SEED_EXPECT(fails, "yielding", expected);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  char by_delay[SEED004_NCHARS + 1];
  seed004_by_delay(by_delay);
  SEED_CHECK(fails, strcmp(listed, by_delay) == 0);
  SEED_CHECK(fails, left_sleeping == 0);
  return seed_verdict("seed_004_5_yielding", fails);
}
#endif

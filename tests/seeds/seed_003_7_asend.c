/* Seed 003, example 7: values passed both ways with asend().
 *
 *   async def advanced_generator(y):
 *       for i in range(0, 10):
 *           x = await do_something(y)
 *           y = yield x
 *
 *   it = advanced_generator(first_y)
 *   x = await anext(it)
 *   while True:
 *       y = await do_something_else(x)
 *       try:
 *           x = await it.asend(y)
 *       except StopAsyncIteration:
 *           break
 *
 * anext() is aioc_gen_next(), it.asend(y) is aioc_gen_send(it, y, ...):
 * the value becomes what the pending aioc_gen_yield() returns in *sent.
 * The first request cannot send (there is no yield to resume yet), which
 * is why the article starts with anext(). Here first_y = 1,
 * do_something(y) takes 0.1 s and returns 2 * y, do_something_else(x)
 * takes 0.1 s and returns x + 1; values travel as AIOC_INT().
 */
#include "seed_003_examples.h"

#define FIRST_Y 1
#define ROUNDS 10

static int do_something(intptr_t y, intptr_t *x) {
  int rc = aioc_sleep(0.1);
  *x = 2 * y;
  return rc;
}

static int do_something_else(intptr_t x, intptr_t *y) {
  int rc = aioc_sleep(0.1);
  *y = x + 1;
  return rc;
}

static int advanced_generator(void *arg, aioc_gen *g) {
  intptr_t y = AIOC_TO_INT(arg);
  for (int i = 0; i < ROUNDS; i++) {
    intptr_t x;
    int rc = do_something(y, &x);
    if (rc < 0) return rc;
    seed_out("t=%.2f advanced_generator: x = await do_something(%ld) = %ld, "
             "yield x",
             aioc_time(), (long)y, (long)x);
    void *sent;
    rc = aioc_gen_yield(g, AIOC_INT(x), &sent); /* y = yield x */
    if (rc < 0) return rc == AIOC_EGENEXIT ? 0 : rc;
    y = AIOC_TO_INT(sent);
  }
  return 0;
}

typedef struct outcome {
  int sends;
  intptr_t last_x;
} outcome;

static int amain(void *arg, void **result) {
  (void)result;
  outcome *o = arg;
  aioc_gen *it;
  int rc = aioc_gen_new(&it, advanced_generator, AIOC_INT(FIRST_Y), NULL);
  if (rc < 0) return rc;
  void *xv;
  rc = aioc_gen_next(it, &xv, AIOC_FOREVER); /* x = await anext(it) */
  intptr_t x = AIOC_TO_INT(xv);
  if (rc == 0) seed_out("t=%.2f main: x = await anext(it) = %ld", aioc_time(),
                        (long)x);
  while (rc == 0) {
    intptr_t y;
    if ((rc = do_something_else(x, &y)) < 0) break;
    seed_out("t=%.2f main: y = await do_something_else(%ld) = %ld, "
             "x = await it.asend(y)",
             aioc_time(), (long)x, (long)y);
    rc = aioc_gen_send(it, AIOC_INT(y), &xv, AIOC_FOREVER);
    if (rc == AIOC_EXHAUSTED) {
      seed_out("t=%.2f main: StopAsyncIteration, break", aioc_time());
      rc = 0;
      break;
    }
    if (rc == 0) {
      o->sends++;
      x = AIOC_TO_INT(xv);
    }
  }
  o->last_x = x;
  aioc_gen_free(it);
  return rc;
}

static int run_outcome(outcome *o) {
  memset(o, 0, sizeof *o);
  return seed_run(amain, o);
}

static int run(void) {
  outcome o;
  return run_outcome(&o);
}

const seed_example seed_003_7_asend = {
    "asend",
    "advanced_generator: x = anext(it), then y = do_something_else(x), "
    "x = asend(it, y) (aioc_gen_send) until StopAsyncIteration",
    run};

#ifndef SEED_NO_MAIN
/* The first request of a generator cannot send a value. */
static int first_send_main(void *arg, void **result) {
  (void)result;
  int *fails = arg;
  aioc_gen *it;
  int rc = aioc_gen_new(&it, advanced_generator, AIOC_INT(FIRST_Y), NULL);
  if (rc < 0) return rc;
  void *xv;
  SEED_CHECK(*fails, aioc_gen_send(it, AIOC_INT(5), &xv, 1) == -EINVAL);
  SEED_CHECK(*fails, !aioc_gen_is_finished(it));
  aioc_gen_free(it);
  return 0;
}

int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  /* x: 2, 6, 14, ..., 2046; y = x + 1; 0.1 s per step. */
  static const char *const expected[] = {
      "t=0.10 advanced_generator: x = await do_something(1) = 2, yield x",
      "t=0.10 main: x = await anext(it) = 2",
      "t=0.20 main: y = await do_something_else(2) = 3, x = await it.asend(y)",
      "t=0.30 advanced_generator: x = await do_something(3) = 6, yield x",
      "t=0.40 main: y = await do_something_else(6) = 7, x = await it.asend(y)",
      "t=0.50 advanced_generator: x = await do_something(7) = 14, yield x",
      "t=0.60 main: y = await do_something_else(14) = 15, "
      "x = await it.asend(y)",
      "t=0.70 advanced_generator: x = await do_something(15) = 30, yield x",
      "t=0.80 main: y = await do_something_else(30) = 31, "
      "x = await it.asend(y)",
      "t=0.90 advanced_generator: x = await do_something(31) = 62, yield x",
      "t=1.00 main: y = await do_something_else(62) = 63, "
      "x = await it.asend(y)",
      "t=1.10 advanced_generator: x = await do_something(63) = 126, yield x",
      "t=1.20 main: y = await do_something_else(126) = 127, "
      "x = await it.asend(y)",
      "t=1.30 advanced_generator: x = await do_something(127) = 254, yield x",
      "t=1.40 main: y = await do_something_else(254) = 255, "
      "x = await it.asend(y)",
      "t=1.50 advanced_generator: x = await do_something(255) = 510, yield x",
      "t=1.60 main: y = await do_something_else(510) = 511, "
      "x = await it.asend(y)",
      "t=1.70 advanced_generator: x = await do_something(511) = 1022, "
      "yield x",
      "t=1.80 main: y = await do_something_else(1022) = 1023, "
      "x = await it.asend(y)",
      "t=1.90 advanced_generator: x = await do_something(1023) = 2046, "
      "yield x",
      "t=2.00 main: y = await do_something_else(2046) = 2047, "
      "x = await it.asend(y)",
      "t=2.00 main: StopAsyncIteration, break",
  };
  int fails = 0;
  outcome o;
  seed_capture_begin();
  SEED_CHECK(fails, run_outcome(&o) == 0);
  SEED_EXPECT(fails, "asend", expected);
  SEED_CHECK(fails, o.sends == ROUNDS - 1);
  SEED_CHECK(fails, o.last_x == 2046);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  SEED_CHECK(fails, seed_run(first_send_main, &fails) == 0);
  return seed_verdict("seed_003_7_asend", fails);
}
#endif

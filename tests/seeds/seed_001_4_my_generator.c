/* Seed 001, example my_generator: a generator with two yields, consumed by
 * a for loop.
 *
 *   def my_generator() -> Generator[YieldType, None, None]:
 *       yield some_value
 *       yield another_value
 *
 *   gen = my_generator()
 *   for value in gen:
 *       print(value)
 *
 * Generator[YieldType, SendType, ReturnType] in aioc: every yield hands a
 * void * (the values here are strings), aioc_gen_send() is the send type
 * (unused here: the body passes NULL for *sent), and the body's int return
 * code is the return type (0: the iteration ends). The for loop is
 * aioc_gen_iter() + aioc_iter_next() from plain code; the generator runs on
 * the thread's loop (made on first use, closed at the end).
 */
#include "seed_001_examples.h"
#include "seed_plain.h"

static int my_generator(void *arg, aioc_gen *g) {
  (void)arg;
  static const char some_value[] = "some_value";
  static const char another_value[] = "another_value";
  int rc = aioc_gen_yield(g, (void *)some_value, NULL);
  if (rc == 0) rc = aioc_gen_yield(g, (void *)another_value, NULL);
  return rc == AIOC_EGENEXIT ? 0 : rc;
}

static int loop_over(int *count) {
  aioc_gen *g;
  aioc_iter *gen;
  int rc = aioc_gen_new(&g, my_generator, NULL, NULL);
  if (rc < 0) return rc;
  if ((rc = aioc_gen_iter(&gen, g)) < 0) {
    aioc_gen_free(g);
    return rc;
  }
  void *value;
  while ((rc = aioc_iter_next(gen, &value, AIOC_FOREVER)) == 0) {
    seed_out("%s", (const char *)value);
    (*count)++;
  }
  aioc_iter_free(gen); /* and the generator */
  return rc == AIOC_EXHAUSTED ? 0 : rc;
}

static int run_count(int *count) {
  *count = 0;
  int rc = loop_over(count);
  int crc = seed_plain_close_implicit();
  return rc < 0 ? rc : crc;
}

static int run(void) {
  int count;
  return run_count(&count);
}

const seed_example seed_001_4_my_generator = {
    "my_generator",
    "yield some_value, yield another_value: a generator looped over through "
    "aioc_gen_iter() from plain code",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const char *const expected[] = {"some_value", "another_value"};
  int fails = 0, count;
  seed_capture_begin();
  SEED_CHECK(fails, run_count(&count) == 0);
  SEED_EXPECT(fails, "my_generator", expected);
  SEED_CHECK(fails, count == 2);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  return seed_verdict("seed_001_4_my_generator", fails);
}
#endif

/* Seed 003, example 6: async iteration, over an async generator and over a
 * hand-written async iterator.
 *
 *   async def generator_method():
 *       yield 3
 *
 *   async for r in generator_method():   # fine, prints 3
 *       print(r)
 *
 *   async for grain in reader.get_grains():
 *       await do_a_thing(grain)
 *   # is equivalent to
 *   it = reader.get_grains().__aiter__()
 *   while True:
 *       try:
 *           grain = await anext(it)
 *       except StopAsyncIteration:
 *           break
 *       await do_a_thing(grain)
 *
 * generator_method is an aioc generator; `async for` is aioc_gen_iter()
 * and aioc_iter_next() until AIOC_EXHAUSTED. reader.get_grains() is an
 * async iterator written by hand (the article's __aiter__/__anext__): an
 * aioc_iter whose next() awaits the I/O that loads each grain (0.04 s),
 * honouring the timeout it is given; the loop is the article's expansion,
 * anext() and a break on StopAsyncIteration. (The article's other point,
 * that `await generator_method()` raises, has no C counterpart: a
 * generator is not a future, and the compiler refuses the await.)
 */
#include "seed_003_examples.h"

/* ---- the async generator ---- */

static int generator_method(void *arg, aioc_gen *g) {
  (void)arg;
  int rc = aioc_gen_yield(g, AIOC_INT(3), NULL);
  return rc == AIOC_EGENEXIT ? 0 : rc;
}

/* ---- reader.get_grains(): a hand-written async iterator ---- */

#define NGRAINS 3
#define LOAD_TIME 0.04

typedef struct grains {
  int next, count;
  int loading;     /* a grain is being loaded */
  double ready_at; /* loop time it will be there */
} grains;

/* async def __anext__(self): the next grain, once loaded. A timeout leaves
 * the load going: the next call waits for the same grain. */
static int grains_anext(void *self, void **item, double timeout) {
  grains *g = self;
  if (g->next == g->count) return AIOC_EXHAUSTED;
  if (!g->loading) {
    g->loading = 1;
    g->ready_at = aioc_time() + LOAD_TIME;
  }
  double left = g->ready_at - aioc_time();
  if (left > timeout) {
    int rc = aioc_sleep(timeout);
    return rc < 0 ? rc : -ETIMEDOUT;
  }
  if (left > 0) {
    int rc = aioc_sleep(left);
    if (rc < 0) return rc;
  }
  g->loading = 0;
  *item = AIOC_INT(g->next++);
  return 0;
}

static void grains_free(void *self) { free(self); }

static const aioc_iter_vtable grains_vt = {grains_anext, NULL, grains_free};

/* reader.get_grains().__aiter__() */
static int get_grains(aioc_iter **out, int count) {
  grains *g = calloc(1, sizeof *g);
  if (!g) return -ENOMEM;
  g->count = count;
  int rc = aioc_iter_new(out, &grains_vt, g);
  if (rc < 0) free(g);
  return rc;
}

static int do_a_thing(intptr_t grain) {
  int rc = aioc_sleep(0.01);
  if (rc == 0) seed_out("t=%.2f await do_a_thing(grain %d)", aioc_time(),
                        (int)grain);
  return rc;
}

typedef struct outcome {
  int values, grains;
} outcome;

static int amain(void *arg, void **result) {
  (void)result;
  outcome *o = arg;
  /* async for r in generator_method(): print(r) */
  aioc_gen *g;
  aioc_iter *gen;
  int rc = aioc_gen_new(&g, generator_method, NULL, NULL);
  if (rc < 0) return rc;
  if ((rc = aioc_gen_iter(&gen, g)) < 0) {
    aioc_gen_free(g);
    return rc;
  }
  void *r;
  while ((rc = aioc_iter_next(gen, &r, AIOC_FOREVER)) == 0) {
    seed_out("%d", (int)AIOC_TO_INT(r));
    o->values++;
  }
  aioc_iter_free(gen);
  if (rc != AIOC_EXHAUSTED) return rc;

  /* it = reader.get_grains().__aiter__(); while True: ... */
  aioc_iter *it;
  if ((rc = get_grains(&it, NGRAINS)) < 0) return rc;
  seed_out("t=%.2f it = reader.get_grains().__aiter__()", aioc_time());
  for (;;) {
    void *grain;
    rc = aioc_iter_next(it, &grain, AIOC_FOREVER); /* await anext(it) */
    if (rc == AIOC_EXHAUSTED) {
      seed_out("t=%.2f anext(it): StopAsyncIteration, break", aioc_time());
      rc = 0;
      break;
    }
    if (rc < 0) break;
    seed_out("t=%.2f grain = await anext(it): grain %d", aioc_time(),
             (int)AIOC_TO_INT(grain));
    o->grains++;
    if ((rc = do_a_thing(AIOC_TO_INT(grain))) < 0) break;
  }
  aioc_iter_free(it);
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

const seed_example seed_003_6_async_for = {
    "async-for",
    "async for over an async generator (prints 3), then a hand-written async "
    "iterator driven by anext() until StopAsyncIteration",
    run};

#ifndef SEED_NO_MAIN
/* The hand-written iterator keeps the per-item timeout contract: a
 * timeout leaves the load going, nothing is lost. */
static int timeout_main(void *arg, void **result) {
  (void)result;
  int *fails = arg;
  aioc_iter *it;
  int rc = get_grains(&it, 1);
  if (rc < 0) return rc;
  void *grain = AIOC_INT(-1);
  SEED_CHECK(*fails, aioc_iter_next(it, &grain, 0.03) == -ETIMEDOUT);
  SEED_CHECK(*fails, aioc_iter_next(it, &grain, 0.03) == 0);
  SEED_CHECK(*fails, AIOC_TO_INT(grain) == 0);
  SEED_CHECK(*fails, aioc_time() > 0.0399 && aioc_time() < 0.0401);
  SEED_CHECK(*fails, aioc_iter_next(it, &grain, 0.03) == AIOC_EXHAUSTED);
  aioc_iter_free(it);
  return 0;
}

int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const char *const expected[] = {
      "3",
      "t=0.00 it = reader.get_grains().__aiter__()",
      "t=0.04 grain = await anext(it): grain 0",
      "t=0.05 await do_a_thing(grain 0)",
      "t=0.09 grain = await anext(it): grain 1",
      "t=0.10 await do_a_thing(grain 1)",
      "t=0.14 grain = await anext(it): grain 2",
      "t=0.15 await do_a_thing(grain 2)",
      "t=0.15 anext(it): StopAsyncIteration, break",
  };
  int fails = 0;
  outcome o;
  seed_capture_begin();
  SEED_CHECK(fails, run_outcome(&o) == 0);
  SEED_EXPECT(fails, "async-for", expected);
  SEED_CHECK(fails, o.values == 1 && o.grains == NGRAINS);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  SEED_CHECK(fails, seed_run(timeout_main, &fails) == 0);
  return seed_verdict("seed_003_6_async_for", fails);
}
#endif

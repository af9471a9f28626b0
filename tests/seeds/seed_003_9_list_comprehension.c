/* Seed 003, example 9: an asynchronous list comprehension.
 *
 *   l = [await x.run() async for x in gen if not (await x.skip())]
 *
 * which is shorthand for
 *
 *   async def _list():
 *       r = []
 *       async for x in gen:
 *           if not (await x.skip()):
 *               r.append(await x.run())
 *       return r
 *   l = await _list()
 *
 * Unlike the generator comprehension it is awaited where it stands, so it
 * belongs in asynchronous code: here, in the main task. In aioc it is the
 * same filter + map (seed_003_common.h) drained by aioc_iter_collect(),
 * which waits for every item and returns a malloc'ed array.
 */
#include "seed_003_common.h"
#include "seed_003_examples.h"

typedef struct outcome {
  size_t n;
  int l[SEED003_NJOBS];
} outcome;

static int amain(void *arg, void **result) {
  (void)result;
  outcome *o = arg;
  aioc_iter *gen, *it;
  int rc = seed003_jobs_iter(&gen);
  if (rc < 0) return rc;
  if ((rc = seed003_sync_method(&it, gen)) < 0) return rc;
  void **items;
  size_t n;
  rc = aioc_iter_collect(it, &items, &n, AIOC_FOREVER); /* l = [...] */
  aioc_iter_free(it);
  if (rc == 0) {
    char buf[128] = "[";
    for (size_t i = 0; i < n; i++) {
      size_t len = strlen(buf);
      snprintf(buf + len, sizeof buf - len, "%s%d", i ? ", " : "",
               (int)AIOC_TO_INT(items[i]));
      if (i < SEED003_NJOBS) o->l[i] = (int)AIOC_TO_INT(items[i]);
    }
    strncat(buf, "]", sizeof buf - strlen(buf) - 1);
    o->n = n;
    seed_out("t=%.2f l = %s", aioc_time(), buf);
  }
  aioc_mem_free(items);
  return rc;
}

static int run_outcome(outcome *o) {
  memset(o, 0, sizeof *o);
  seed003_skips = seed003_runs = 0;
  return seed_run(amain, o);
}

static int run(void) {
  outcome o;
  return run_outcome(&o);
}

const seed_example seed_003_9_list_comprehension = {
    "async-list-comprehension",
    "l = [await x.run() async for x in gen if not (await x.skip())]: the "
    "same helpers drained by aioc_iter_collect() in a task",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const char *const expected[] = {SEED003_TRACE,
                                         "t=0.35 l = [1, 9, 25]"};
  int fails = 0;
  outcome o;
  seed_capture_begin();
  SEED_CHECK(fails, run_outcome(&o) == 0);
  SEED_EXPECT(fails, "async-list-comprehension", expected);
  SEED_CHECK(fails, o.n == 3 && o.l[0] == 1 && o.l[1] == 9 && o.l[2] == 25);
  SEED_CHECK(fails, seed003_skips == SEED003_NJOBS && seed003_runs == 3);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  return seed_verdict("seed_003_9_list_comprehension", fails);
}
#endif

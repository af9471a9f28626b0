/* Seed 003, example 8: an asynchronous generator comprehension, built in
 * synchronous code.
 *
 *   def sync_method(gen):
 *       # This is a synchronous method
 *       it = (
 *           await x.run()
 *           async for x in gen
 *           if not (await x.skip())
 *       )
 *       return it
 *
 * "the statement itself does not actually execute any asynchronous code (it
 * merely creates the generator object) and so can be used anywhere,
 * including in synchronous code". Here sync_method (seed_003_common.h:
 * aioc_iter_filter() then aioc_iter_map(), lazy) is called from plain
 * code, with no task and no loop running: nothing runs yet. The awaits
 * happen when a task iterates over the result:
 *
 *   async for r in it:
 *       print(r)
 *
 * The loop is a virtual-clock loop made current for the thread; the
 * consumer task is spawned on it and waited for with aioc_block_on(), the
 * plain-code asyncio.run(consume(it)).
 */
#include "seed_003_common.h"
#include "seed_003_examples.h"
#include "seed_plain.h"

typedef struct outcome {
  int built_without_running; /* no callback ran while building */
  int results[SEED003_NJOBS];
  int n;
} outcome;

static int consume(void *arg, void **result) {
  (void)result;
  void **a = arg;
  aioc_iter *it = a[0];
  outcome *o = a[1];
  void *r;
  int rc;
  seed_out("t=%.2f async for r in it:", aioc_time());
  while ((rc = aioc_iter_next(it, &r, AIOC_FOREVER)) == 0) {
    seed_out("t=%.2f print(r): %d", aioc_time(), (int)AIOC_TO_INT(r));
    if (o->n < SEED003_NJOBS) o->results[o->n++] = (int)AIOC_TO_INT(r);
  }
  return rc == AIOC_EXHAUSTED ? 0 : rc;
}

static int run_outcome(outcome *o) {
  memset(o, 0, sizeof *o);
  seed003_skips = seed003_runs = 0;
  aioc_loop *loop;
  int rc = seed_plain_begin(&loop);
  if (rc < 0) return rc;
  aioc_iter *gen, *it = NULL;
  rc = seed003_jobs_iter(&gen);
  if (rc == 0) rc = seed003_sync_method(&it, gen); /* plain code */
  if (rc == 0) {
    o->built_without_running = seed003_skips == 0 && seed003_runs == 0;
    seed_out("sync_method(gen) returned it; nothing has run yet");
    aioc_task *t;
    void *args[2] = {it, o};
    rc = aioc_spawn(&t, consume, args);
    if (rc == 0) {
      rc = aioc_block_on(aioc_task_future(t), NULL);
      aioc_task_unref(t);
    }
  }
  aioc_iter_free(it); /* closes the map, the filter and the generator */
  int crc = seed_plain_end(loop);
  return rc < 0 ? rc : crc;
}

static int run(void) {
  outcome o;
  return run_outcome(&o);
}

const seed_example seed_003_8_gen_comprehension = {
    "async-generator-comprehension",
    "(await x.run() async for x in gen if not (await x.skip())) built in "
    "sync code with aioc_iter_filter + aioc_iter_map; a task iterates",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const char *const expected[] = {
      "sync_method(gen) returned it; nothing has run yet",
      "t=0.00 async for r in it:",
      "t=0.01 x=1: await x.skip() -> False",
      "t=0.11 x=1: await x.run() -> 1",
      "t=0.11 print(r): 1",
      "t=0.12 x=2: await x.skip() -> True",
      "t=0.13 x=3: await x.skip() -> False",
      "t=0.23 x=3: await x.run() -> 9",
      "t=0.23 print(r): 9",
      "t=0.24 x=4: await x.skip() -> True",
      "t=0.25 x=5: await x.skip() -> False",
      "t=0.35 x=5: await x.run() -> 25",
      "t=0.35 print(r): 25",
  };
  int fails = 0;
  outcome o;
  seed_capture_begin();
  SEED_CHECK(fails, run_outcome(&o) == 0);
  SEED_EXPECT(fails, "async-generator-comprehension", expected);
  SEED_CHECK(fails, o.built_without_running);
  SEED_CHECK(fails, o.n == 3 && o.results[0] == 1 && o.results[1] == 9 &&
                        o.results[2] == 25);
  SEED_CHECK(fails, seed003_skips == SEED003_NJOBS && seed003_runs == 3);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  return seed_verdict("seed_003_8_gen_comprehension", fails);
}
#endif

/* Seed 000, example 3: the article's exact behaviour. asyncio.wait_for()
 * cancels what it waits for on timeout, so
 *
 *   result = await asyncio.wait_for(self._iterator.__anext__(), timeout)
 *
 * kills the async generator: CancelledError is thrown in at the worker's
 * await, its `finally` runs, and every later __anext__ raises
 * StopAsyncIteration; the chunks it had not sent yet are lost.
 *
 * aioc keeps the producer alive by default (example 2); the generator
 * option AIOC_GEN_CANCEL_ON_TIMEOUT asks for Python's behaviour. The same
 * client (1 s per chunk, waits again after a timeout) now sees one timeout
 * at 1.20, the worker's cleanup runs once (its sleep returned
 * -ECANCELED), and the next call ends the response: 2 chunks only.
 * --check also runs the same client from plain code and expects the same
 * lines.
 */
#include "seed_000_common.h"
#include "seed_000_examples.h"
#include "seed_plain.h"

typedef struct outcome {
  seed000_worker w;
  seed000_client c;
  int finished, next_after, cleanups_after_free;
} outcome;

/* The call and its client; works inside a task and from plain code. */
static int call(outcome *o) {
  aioc_gen *g;
  memset(o, 0, sizeof *o);
  int rc = seed000_call(&g, &o->w, AIOC_GEN_CANCEL_ON_TIMEOUT);
  if (rc < 0) return rc;
  seed_out("t=%.2f client: call sent; each chunk within %.0f s, "
           "a timeout cancels the worker",
           aioc_time(), SEED000_PER_CHUNK);
  rc = seed000_client_loop(g, &o->c);
  o->finished = aioc_gen_is_finished(g);
  void *chunk;
  o->next_after = aioc_gen_next(g, &chunk, SEED000_PER_CHUNK);
  aioc_gen_free(g); /* the body has ended: its cleanup does not run again */
  o->cleanups_after_free = o->w.cleanups;
  return rc;
}

static int amain(void *arg, void **result) {
  (void)result;
  return call(arg);
}

static int run_outcome(outcome *o) { return seed_run(amain, o); }

static int run(void) {
  outcome o;
  return run_outcome(&o);
}

const seed_example seed_000_3_cancel_on_timeout = {
    "cancel-on-timeout",
    "with AIOC_GEN_CANCEL_ON_TIMEOUT a timeout kills the worker as "
    "wait_for(anext()) does: its cleanup runs once, the rest is lost",
    run};

#ifndef SEED_NO_MAIN
/* The same client from plain code, on a virtual-clock loop. */
static int run_plain(outcome *o) {
  aioc_loop *loop;
  int rc = seed_plain_begin(&loop);
  if (rc < 0) return rc;
  rc = call(o);
  int crc = seed_plain_end(loop);
  return rc < 0 ? rc : crc;
}

static int check_outcome(const outcome *o) {
  int fails = 0;
  SEED_CHECK(fails, o->c.chunks == 2);
  SEED_CHECK(fails, o->c.timeouts == 1);
  SEED_CHECK(fails, o->w.sent == 2);
  SEED_CHECK(fails, o->w.end_rc == -ECANCELED);
  SEED_CHECK(fails, o->finished);
  SEED_CHECK(fails, o->next_after == AIOC_EXHAUSTED);
  SEED_CHECK(fails, o->cleanups_after_free == 1);
  return fails;
}

int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const char *const expected[] = {
      "t=0.00 client: call sent; each chunk within 1 s, a timeout cancels "
      "the worker",
      "t=0.10 worker: sends chunk 1/4",
      "t=0.10 client: got chunk 1/4",
      "t=0.20 worker: sends chunk 2/4",
      "t=0.20 client: got chunk 2/4",
      "t=1.20 client: no chunk within 1 s (ETIMEDOUT), waiting again",
      "t=1.20 worker: cancelled, reply queue deleted",
      "t=1.20 client: end of the response (AIOC_EXHAUSTED) after 2 chunk(s), "
      "1 timeout(s)",
  };
  int fails = 0;
  outcome o;
  seed_capture_begin();
  SEED_CHECK(fails, run_outcome(&o) == 0);
  SEED_EXPECT(fails, "cancel-on-timeout (task)", expected);
  fails += check_outcome(&o);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();

  seed_capture_begin();
  SEED_CHECK(fails, run_plain(&o) == 0);
  SEED_EXPECT(fails, "cancel-on-timeout (plain code)", expected);
  fails += check_outcome(&o);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  return seed_verdict("seed_000_3_cancel_on_timeout", fails);
}
#endif

/* Seed 000, example 2: a timeout on each "next chunk" call, without the
 * wrapper class. The article's __anext__ is
 *
 *   result = await asyncio.wait_for(self._iterator.__anext__(), timeout)
 *
 * which in aioc is aioc_gen_next(g, &chunk, timeout) itself: the per-call
 * timeout is part of the generator's next(). A timeout leaves the worker at
 * work (it keeps its place); the client may report it and ask again, and
 * the late chunk arrives on a later call. The response ends with
 * AIOC_EXHAUSTED (StopAsyncIteration) when the worker's generator returns.
 *
 * The client is seed000_client_loop() (seed_000_common.h): 1 s per chunk,
 * gives up after 3 timeouts in a row. The worker's 2.5 s pause before
 * chunk 3 costs two timeouts (at 1.20 and 2.20); chunk 3 comes at 2.70.
 * --check also runs the same client from plain code (no task: the loop
 * runs underneath aioc_gen_next()) and expects the same lines, and checks
 * a client that gives up after its first timeout: freeing the generator
 * while the worker computes cancels it, and its cleanup runs once.
 */
#include "seed_000_common.h"
#include "seed_000_examples.h"
#include "seed_plain.h"

typedef struct outcome {
  seed000_worker w;
  seed000_client c;
} outcome;

/* The call and its client; works inside a task and from plain code. */
static int call(outcome *o) {
  aioc_gen *g;
  memset(o, 0, sizeof *o);
  int rc = seed000_call(&g, &o->w, 0);
  if (rc < 0) return rc;
  seed_out("t=%.2f client: call sent; each chunk within %.0f s", aioc_time(),
           SEED000_PER_CHUNK);
  rc = seed000_client_loop(g, &o->c);
  aioc_gen_free(g);
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

const seed_example seed_000_2_next_timeout = {
    "next-with-timeout",
    "aioc_gen_next(g, 1 s) per chunk: two timeouts while the worker "
    "computes, then the late chunk, then AIOC_EXHAUSTED",
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
  SEED_CHECK(fails, o->c.chunks == SEED000_NCHUNKS);
  SEED_CHECK(fails, o->c.timeouts == 2);
  SEED_CHECK(fails, o->w.sent == SEED000_NCHUNKS);
  SEED_CHECK(fails, o->w.cleanups == 1);
  SEED_CHECK(fails, o->w.end_rc == 0);
  return fails;
}

/* A client that gives up at the first timeout and frees the response. */
static int give_up_main(void *arg, void **result) {
  (void)result;
  seed000_worker *w = arg;
  aioc_gen *g;
  int rc = seed000_call(&g, w, 0);
  if (rc < 0) return rc;
  void *chunk;
  while ((rc = aioc_gen_next(g, &chunk, SEED000_PER_CHUNK)) == 0)
    continue;
  aioc_gen_free(g);
  return rc == -ETIMEDOUT ? 0 : -EPROTO;
}

int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const char *const expected[] = {
      "t=0.00 client: call sent; each chunk within 1 s",
      "t=0.10 worker: sends chunk 1/4",
      "t=0.10 client: got chunk 1/4",
      "t=0.20 worker: sends chunk 2/4",
      "t=0.20 client: got chunk 2/4",
      "t=1.20 client: no chunk within 1 s (ETIMEDOUT), waiting again",
      "t=2.20 client: no chunk within 1 s (ETIMEDOUT), waiting again",
      "t=2.70 worker: sends chunk 3/4",
      "t=2.70 client: got chunk 3/4",
      "t=2.80 worker: sends chunk 4/4",
      "t=2.80 client: got chunk 4/4",
      "t=2.80 worker: response complete, reply queue deleted",
      "t=2.80 client: end of the response (AIOC_EXHAUSTED) after 4 chunk(s), "
      "2 timeout(s)",
  };
  int fails = 0;
  outcome o;
  seed_capture_begin();
  SEED_CHECK(fails, run_outcome(&o) == 0);
  SEED_EXPECT(fails, "next-with-timeout (task)", expected);
  fails += check_outcome(&o);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();

  seed_capture_begin();
  SEED_CHECK(fails, run_plain(&o) == 0);
  SEED_EXPECT(fails, "next-with-timeout (plain code)", expected);
  fails += check_outcome(&o);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();

  seed000_worker w = {0, 0, 0};
  seed_capture_begin();
  SEED_CHECK(fails, seed_run(give_up_main, &w) == 0);
  SEED_CHECK(fails, w.sent == 2);
  SEED_CHECK(fails, w.cleanups == 1);
  SEED_CHECK(fails, w.end_rc == -ECANCELED);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  return seed_verdict("seed_000_2_next_timeout", fails);
}
#endif

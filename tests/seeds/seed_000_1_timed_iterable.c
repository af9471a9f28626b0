/* Seed 000, example 1: AsyncTimedIterable. The client of an RPC service
 * over RabbitMQ reads the worker's response chunk by chunk; `async for`
 * has no timeout, and wait_for() around the whole loop would limit the
 * whole response, not the time between chunks. The article's wrapper puts
 * the timeout on each __anext__:
 *
 *   class AsyncTimedIterable:
 *       def __init__(self, iterable, timeout=0):
 *           class AsyncTimedIterator:
 *               def __init__(self):
 *                   self._iterator = iterable.__aiter__()
 *               async def __anext__(self):
 *                   try:
 *                       result = await asyncio.wait_for(
 *                           self._iterator.__anext__(), int(timeout))
 *                       if not result:
 *                           raise StopAsyncIteration
 *                       return result
 *                   except asyncio.TimeoutError as e:
 *                       raise e
 *           self._factory = AsyncTimedIterator
 *       def __aiter__(self):
 *           return self._factory()
 *
 *   timed_iter = AsyncTimedIterable(iter, 30)
 *   async for r in timed_iter:
 *       pass
 *
 * In aioc the wrapper is aioc_iter_timed() with a limit "between" items,
 * over aioc_gen_iter() of the response generator (here 1 s, so the worker's
 * 2.5 s pause before chunk 3 times out). The end of the response is the
 * generator's return (AIOC_EXHAUSTED), the role of the article's empty
 * last chunk. Unlike wait_for(), the timeout does not kill the worker: it
 * keeps its place, and when the client comes back to the same iterator
 * later, chunk 3 (produced meanwhile) is there; nothing is lost.
 */
#include "seed_000_common.h"
#include "seed_000_examples.h"

#define BETWEEN 1.0   /* seconds allowed between two chunks */
#define COME_BACK 2.0 /* seconds the client does something else */

typedef struct outcome {
  seed000_worker w;
  int chunks, timeouts, finished_after;
} outcome;

static int amain(void *arg, void **result) {
  (void)result;
  outcome *o = arg;
  aioc_gen *g;
  aioc_iter *response, *timed_iter;
  int rc = seed000_call(&g, &o->w, 0);
  if (rc < 0) return rc;
  if ((rc = aioc_gen_iter(&response, g)) < 0) {
    aioc_gen_free(g);
    return rc;
  }
  aioc_timed_options limits = {.between = BETWEEN};
  if ((rc = aioc_iter_timed(&timed_iter, response, &limits)) < 0) {
    aioc_iter_free(response);
    return rc;
  }
  seed_out("t=%.2f client: async for r in AsyncTimedIterable(response, %.0f)",
           aioc_time(), BETWEEN);
  for (;;) {
    void *r;
    rc = aioc_iter_next(timed_iter, &r, AIOC_FOREVER);
    if (rc == 0) {
      o->chunks++;
      seed_out("t=%.2f client: got %s", aioc_time(), (const char *)r);
    } else if (rc == AIOC_EXHAUSTED) {
      seed_out("t=%.2f client: StopAsyncIteration, the loop ends after %d "
               "chunks",
               aioc_time(), o->chunks);
      rc = 0;
      break;
    } else if (rc == -ETIMEDOUT && o->timeouts == 0) {
      o->timeouts++;
      seed_out("t=%.2f client: asyncio.TimeoutError: no chunk for %.0f s",
               aioc_time(), BETWEEN);
      seed_out("t=%.2f client: does something else for %.0f s, then resumes "
               "the same iterator",
               aioc_time(), COME_BACK);
      if ((rc = aioc_sleep(COME_BACK)) < 0) break;
    } else {
      break; /* a second timeout, or an error: raise it */
    }
  }
  o->finished_after = aioc_gen_is_finished(g);
  aioc_iter_free(timed_iter); /* frees the generator too */
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

const seed_example seed_000_1_timed_iterable = {
    "AsyncTimedIterable",
    "async for over aioc_iter_timed(between = 1 s): a 2.5 s pause raises "
    "TimeoutError, yet the worker keeps its place and nothing is lost",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const char *const expected[] = {
      "t=0.00 client: async for r in AsyncTimedIterable(response, 1)",
      "t=0.10 worker: sends chunk 1/4",
      "t=0.10 client: got chunk 1/4",
      "t=0.20 worker: sends chunk 2/4",
      "t=0.20 client: got chunk 2/4",
      "t=1.20 client: asyncio.TimeoutError: no chunk for 1 s",
      "t=1.20 client: does something else for 2 s, then resumes the same "
      "iterator",
      "t=2.70 worker: sends chunk 3/4",
      "t=3.20 client: got chunk 3/4",
      "t=3.30 worker: sends chunk 4/4",
      "t=3.30 client: got chunk 4/4",
      "t=3.30 worker: response complete, reply queue deleted",
      "t=3.30 client: StopAsyncIteration, the loop ends after 4 chunks",
  };
  int fails = 0;
  outcome o;
  seed_capture_begin();
  SEED_CHECK(fails, run_outcome(&o) == 0);
  SEED_EXPECT(fails, "AsyncTimedIterable", expected);
  SEED_CHECK(fails, o.chunks == SEED000_NCHUNKS);
  SEED_CHECK(fails, o.timeouts == 1);
  SEED_CHECK(fails, o.w.sent == SEED000_NCHUNKS);
  SEED_CHECK(fails, o.w.cleanups == 1);
  SEED_CHECK(fails, o.w.end_rc == 0);
  SEED_CHECK(fails, o.finished_after);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  return seed_verdict("seed_000_1_timed_iterable", fails);
}
#endif

/* What the examples of seed 000 share: the RPC worker's response, an async
 * generator that sends its chunks with pauses in between (the third one
 * takes longer than the client wants to wait between chunks), and the
 * client loop of examples 2 and 3, which asks for each chunk with a
 * per-call timeout.
 *
 * Timeline of the response (virtual clock): chunk 1/4 at 0.10 s, 2/4 at
 * 0.20, 3/4 at 2.70 (2.5 s of work), 4/4 at 2.80, then the end. */
#ifndef AIOC_SEED_000_COMMON_H
#define AIOC_SEED_000_COMMON_H

#include "seed_util.h"

#define SEED000_NCHUNKS 4

/* Seconds of work before each chunk. */
static const double seed000_pauses[SEED000_NCHUNKS] = {0.1, 0.1, 2.5, 0.1};

static const char *const seed000_chunks[SEED000_NCHUNKS] = {
    "chunk 1/4", "chunk 2/4", "chunk 3/4", "chunk 4/4"};

/* What the worker did, for the checks. */
typedef struct seed000_worker {
  int sent;     /* chunks yielded */
  int cleanups; /* times its cleanup ran: exactly once, however it ends */
  int end_rc;   /* the code its body ended with */
} seed000_worker;

/* The response stream: an async generator over the worker's chunks.
 *
 *   async def response(call):
 *       try:
 *           for pause, chunk in zip(PAUSES, CHUNKS):
 *               await asyncio.sleep(pause)       # the worker computes
 *               yield chunk
 *       finally:
 *           delete the exclusive reply queue
 *
 * The chunks are static strings (borrowed by the consumer). */
static inline int seed000_response(void *arg, aioc_gen *g) {
  seed000_worker *w = arg;
  int rc = 0;
  for (int i = 0; i < SEED000_NCHUNKS && rc == 0; i++) {
    rc = aioc_sleep(seed000_pauses[i]);
    if (rc < 0) break;
    seed_out("t=%.2f worker: sends %s", aioc_time(), seed000_chunks[i]);
    w->sent++;
    rc = aioc_gen_yield(g, (void *)seed000_chunks[i], NULL);
  }
  /* finally: runs once, whether the response ended, was closed (the yield
   * returned AIOC_EGENEXIT) or was cancelled in a sleep. Nothing here
   * waits, so a pending cancellation cannot cut it short. */
  w->cleanups++;
  w->end_rc = rc;
  if (rc == 0)
    seed_out("t=%.2f worker: response complete, reply queue deleted",
             aioc_time());
  else
    seed_out("t=%.2f worker: %s, reply queue deleted", aioc_time(),
             rc == -ECANCELED ? "cancelled" : aioc_err_name(rc));
  return rc;
}

/* Creates the response generator (named "response") with the given
 * AIOC_GEN_* flags. */
static inline int seed000_call(aioc_gen **g, seed000_worker *w,
                               unsigned flags) {
  aioc_gen_options o;
  memset(&o, 0, sizeof o);
  o.name = "response";
  o.flags = flags;
  return aioc_gen_new(g, seed000_response, w, &o);
}

/* What the client of examples 2 and 3 saw. */
typedef struct seed000_client {
  int chunks;   /* chunks received */
  int timeouts; /* -ETIMEDOUT seen */
} seed000_client;

/* Seconds the client waits for each chunk, and the number of timeouts in a
 * row after which it would give up. */
#define SEED000_PER_CHUNK 1.0
#define SEED000_MAX_TIMEOUTS 3

/* The client of examples 2 and 3: every chunk is awaited with a per-call
 * timeout; a timeout is reported and the client waits again; the response
 * ends with AIOC_EXHAUSTED (StopAsyncIteration). The same code runs inside
 * a task and from plain code. Returns 0, or the error that stopped it. */
static inline int seed000_client_loop(aioc_gen *g, seed000_client *c) {
  int in_a_row = 0;
  for (;;) {
    void *chunk;
    int rc = aioc_gen_next(g, &chunk, SEED000_PER_CHUNK);
    if (rc == 0) {
      in_a_row = 0;
      c->chunks++;
      seed_out("t=%.2f client: got %s", aioc_time(), (const char *)chunk);
    } else if (rc == AIOC_EXHAUSTED) {
      seed_out("t=%.2f client: end of the response (AIOC_EXHAUSTED) after %d "
               "chunk(s), %d timeout(s)",
               aioc_time(), c->chunks, c->timeouts);
      return 0;
    } else if (rc == -ETIMEDOUT && ++in_a_row < SEED000_MAX_TIMEOUTS) {
      c->timeouts++;
      seed_out("t=%.2f client: no chunk within %.0f s (ETIMEDOUT), "
               "waiting again",
               aioc_time(), SEED000_PER_CHUNK);
    } else {
      seed_out("t=%.2f client: giving up: %s", aioc_time(),
               aioc_strerror(rc));
      return rc;
    }
  }
}

#endif /* AIOC_SEED_000_COMMON_H */

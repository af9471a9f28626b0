/* Seed 000, the story itself: an RPC service whose worker answers in
 * chunks, and a client that limits the time between two chunks, not the
 * time of the whole call. The article's setting is RabbitMQ (a request
 * queue per method, the replies on the client's exclusive queue); aioc's
 * RPC layer gives the same shape through one API whatever carries the
 * messages, here the local in-process transport:
 *
 *   worker:  a handler registered for "report", yielding the chunks with
 *            aioc_rpc_yield() (the same pauses as the other examples);
 *   client:  aioc_rpc_call() gives the response as an iterator, and each
 *            aioc_iter_next(it, &chunk, 1 s) is the article's
 *            wait_for(__anext__(), timeout).
 *
 * Two timeouts while the worker computes chunk 3, then the late chunk,
 * then the end. --check also runs a client that gives up at its first
 * timeout: freeing the response tells the worker, whose sleep is
 * cancelled, and its cleanup runs once. */
#include "seed_000_common.h"
#include "seed_000_examples.h"

/* The worker's handler for "report". */
static int report(void *arg, aioc_rpc_request *req) {
  seed000_worker *w = arg;
  int rc = 0;
  for (int i = 0; i < SEED000_NCHUNKS && rc == 0; i++) {
    rc = aioc_sleep(seed000_pauses[i]);
    if (rc < 0) break;
    seed_out("t=%.2f worker: sends %s", aioc_time(), seed000_chunks[i]);
    w->sent++;
    rc = aioc_rpc_yield(req, seed000_chunks[i], strlen(seed000_chunks[i]));
  }
  w->cleanups++;
  w->end_rc = rc;
  if (rc == 0)
    seed_out("t=%.2f worker: response complete", aioc_time());
  else
    seed_out("t=%.2f worker: %s, stops", aioc_time(),
             rc == -ECANCELED ? "cancelled" : aioc_err_name(rc));
  return rc == AIOC_EGENEXIT ? 0 : rc;
}

typedef struct outcome {
  seed000_worker w;
  seed000_client c;
  int give_up_at; /* the client gives up at this many timeouts (0: never) */
} outcome;

static int client(aioc_rpc_client *c, outcome *o) {
  aioc_iter *it;
  int rc = aioc_rpc_call(&it, c, "report", "q3", 2, NULL);
  if (rc < 0) return rc;
  seed_out("t=%.2f client: call sent; each chunk within %.0f s", aioc_time(),
           SEED000_PER_CHUNK);
  int in_a_row = 0;
  for (;;) {
    void *item;
    rc = aioc_iter_next(it, &item, SEED000_PER_CHUNK);
    if (rc == 0) {
      aioc_rpc_chunk *chunk = item;
      in_a_row = 0;
      o->c.chunks++;
      seed_out("t=%.2f client: got %s", aioc_time(), chunk->data);
      aioc_rpc_chunk_free(chunk);
    } else if (rc == AIOC_EXHAUSTED) {
      seed_out("t=%.2f client: end of the response (AIOC_EXHAUSTED) after %d "
               "chunk(s), %d timeout(s)",
               aioc_time(), o->c.chunks, o->c.timeouts);
      rc = 0;
      break;
    } else if (rc == -ETIMEDOUT &&
               ++in_a_row < (o->give_up_at ? o->give_up_at
                                           : SEED000_MAX_TIMEOUTS)) {
      o->c.timeouts++;
      seed_out("t=%.2f client: no chunk within %.0f s (ETIMEDOUT), "
               "waiting again",
               aioc_time(), SEED000_PER_CHUNK);
    } else {
      seed_out("t=%.2f client: giving up: %s", aioc_time(), aioc_strerror(rc));
      break;
    }
  }
  aioc_iter_free(it); /* before the end: the worker is told */
  return rc;
}

static int amain(void *arg, void **result) {
  (void)result;
  outcome *o = arg;
  aioc_rpc_transport *tr;
  aioc_rpc_server *s = NULL;
  aioc_rpc_client *c = NULL;
  int rc = aioc_rpc_local_new(&tr);
  if (rc < 0) return rc;
  if ((rc = aioc_rpc_server_new(&s, tr, NULL)) == 0 &&
      (rc = aioc_rpc_server_register(s, "report", report, &o->w)) == 0 &&
      (rc = aioc_rpc_server_start(s)) == 0 &&
      (rc = aioc_rpc_client_new(&c, tr, NULL)) == 0) {
    rc = client(c, o);
    /* The worker finishes (or stops) before the service closes. */
    int src = aioc_rpc_server_shutdown(s, 5);
    if (rc == 0) rc = src;
  }
  aioc_rpc_client_free(c);
  aioc_rpc_server_free(s);
  aioc_rpc_transport_free(tr);
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

/* The demo's look inside (demo.c): the same call on a loop with the
 * options lo (the virtual clock always), with inspect(arg) running beside
 * it as a task named "inspector", and at_end(arg) called in the main task
 * once the call is over, before the loop closes. */
typedef struct inspected {
  outcome o;
  aioc_fn inspect;
  void (*at_end)(void *arg);
  void *arg;
} inspected;

static int amain_inspected(void *arg, void **result) {
  inspected *in = arg;
  aioc_task_options to = {.name = "inspector"};
  aioc_task *t;
  int rc = aioc_spawn_ex(&t, NULL, in->inspect, in->arg, &to);
  if (rc < 0) return rc;
  rc = amain(&in->o, result);
  int irc = aioc_await(aioc_task_future(t), NULL);
  aioc_task_unref(t);
  if (in->at_end) in->at_end(in->arg);
  return rc < 0 ? rc : irc;
}

int seed000_rpc_inspected(const aioc_loop_options *lo, aioc_fn inspect,
                          void (*at_end)(void *arg), void *arg) {
  inspected in;
  memset(&in, 0, sizeof in);
  in.inspect = inspect;
  in.at_end = at_end;
  in.arg = arg;
  aioc_run_options o;
  memset(&o, 0, sizeof o);
  o.loop = *lo;
  o.loop.virtual_clock = 1;
  seed_tramp t = {amain_inspected, &in};
  return aioc_run_ex(seed_tramp_main, &t, NULL, &o);
}

const seed_example seed_000_4_rpc = {
    "rpc",
    "the RPC service itself: a worker's handler yields chunks, the client "
    "reads the call's response with 1 s between chunks (local transport)",
    run};

#ifndef SEED_NO_MAIN
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
      "t=2.80 worker: response complete",
      "t=2.80 client: got chunk 4/4",
      "t=2.80 client: end of the response (AIOC_EXHAUSTED) after 4 chunk(s), "
      "2 timeout(s)",
  };
  int fails = 0;
  outcome o;
  seed_capture_begin();
  SEED_CHECK(fails, run_outcome(&o) == 0);
  SEED_EXPECT(fails, "rpc", expected);
  SEED_CHECK(fails, o.c.chunks == SEED000_NCHUNKS);
  SEED_CHECK(fails, o.c.timeouts == 2);
  SEED_CHECK(fails, o.w.sent == SEED000_NCHUNKS);
  SEED_CHECK(fails, o.w.cleanups == 1);
  SEED_CHECK(fails, o.w.end_rc == 0);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();

  /* Giving up at the first timeout: the worker is cancelled in its sleep
   * before chunk 3, and its cleanup runs once. */
  static const char *const give_up[] = {
      "t=0.00 client: call sent; each chunk within 1 s",
      "t=0.10 worker: sends chunk 1/4",
      "t=0.10 client: got chunk 1/4",
      "t=0.20 worker: sends chunk 2/4",
      "t=0.20 client: got chunk 2/4",
      "t=1.20 client: giving up: Connection timed out",
      "t=1.20 worker: cancelled, stops",
  };
  memset(&o, 0, sizeof o);
  o.give_up_at = 1;
  seed_capture_begin();
  SEED_CHECK(fails, seed_run(amain, &o) == -ETIMEDOUT);
  SEED_EXPECT(fails, "rpc (giving up)", give_up);
  SEED_CHECK(fails, o.w.sent == 2);
  SEED_CHECK(fails, o.w.cleanups == 1);
  SEED_CHECK(fails, o.w.end_rc == -ECANCELED);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  return seed_verdict("seed_000_4_rpc", fails);
}
#endif

/* Seed 003, example 5: one resource, used from synchronous and from
 * asynchronous code.
 *
 *   # Perform some IO operations synchronously
 *   with RemoteResource(*some_parameters) as connection:
 *       connection.send(some_data)
 *       new_data = connection.recv()
 *
 *   # Perform the same IO operations asynchronously
 *   async with RemoteResource(*some_parameters) as connection:
 *       await connection.send(some_data)
 *       new_data = await connection.recv()
 *
 * Python needs two protocols (__enter__/__exit__ and __aenter__/__aexit__)
 * and two sessions. In aioc one manager and one block serve both:
 * aioc_with() called from plain code (main(), no task) runs the loop
 * underneath until the block is done, and inside a task it is the async
 * with. The plain-code half runs on a virtual-clock loop made current for
 * the thread, the task half under aioc_run; both print the same timings.
 */
#include "seed_003_examples.h"
#include "seed_plain.h"

typedef struct remote_resource {
  const char *host;
  int port;
  int connected;
  int opens, closes;
} remote_resource;

typedef struct exchange {
  const char *some_data;
  const char *new_data;
} exchange;

static int rr_enter(void *self, void **bound) {
  remote_resource *r = self;
  int rc = aioc_sleep(0.1);
  if (rc < 0) return rc;
  r->connected = 1;
  r->opens++;
  seed_out("t=%.2f RemoteResource: connected to %s:%d", aioc_time(), r->host,
           r->port);
  *bound = r; /* the connection */
  return 0;
}

static int rr_exit(void *self, int body_rc) {
  remote_resource *r = self;
  (void)body_rc;
  int rc = aioc_sleep(0.05);
  r->connected = 0;
  r->closes++;
  seed_out("t=%.2f RemoteResource: closed", aioc_time());
  return rc < 0 ? rc : 0;
}

static const aioc_cm_vtable rr_vt = {rr_enter, rr_exit};

static int connection_send(remote_resource *c, const char *data) {
  if (!c->connected) return -ENOTCONN;
  int rc = aioc_sleep(0.02);
  if (rc < 0) return rc;
  seed_out("t=%.2f connection.send('%s')", aioc_time(), data);
  return 0;
}

static int connection_recv(remote_resource *c, const char **data) {
  if (!c->connected) return -ENOTCONN;
  int rc = aioc_sleep(0.03);
  if (rc < 0) return rc;
  *data = "pong";
  seed_out("t=%.2f connection.recv() -> '%s'", aioc_time(), *data);
  return 0;
}

/* The block, the same for both halves. */
static int block(void *arg, void *bound) {
  exchange *x = arg;
  remote_resource *connection = bound;
  int rc = connection_send(connection, x->some_data);
  if (rc == 0) rc = connection_recv(connection, &x->new_data);
  return rc;
}

static int use_resource(remote_resource *r, exchange *x) {
  memset(r, 0, sizeof *r);
  r->host = "example.org";
  r->port = 7000;
  x->some_data = "ping";
  x->new_data = NULL;
  aioc_cm cm = {&rr_vt, r, 0};
  int rc = aioc_with(&cm, block, x, NULL);
  if (rc == 0) seed_out("new_data = '%s'", x->new_data);
  return rc;
}

typedef struct outcome {
  remote_resource r[2];
  exchange x[2];
  int rc[2];
} outcome;

static int amain(void *arg, void **result) {
  (void)result;
  outcome *o = arg;
  return use_resource(&o->r[1], &o->x[1]);
}

static int run_outcome(outcome *o) {
  memset(o, 0, sizeof *o);
  seed_out("-- from plain code: with RemoteResource(...) as connection");
  aioc_loop *loop;
  int rc = seed_plain_begin(&loop);
  if (rc == 0) {
    rc = o->rc[0] = use_resource(&o->r[0], &o->x[0]);
    int crc = seed_plain_end(loop);
    if (rc == 0) rc = crc;
  }
  if (rc < 0) return rc;
  seed_out("-- inside a task: async with RemoteResource(...) as connection");
  return o->rc[1] = seed_run(amain, o);
}

static int run(void) {
  outcome o;
  return run_outcome(&o);
}

const seed_example seed_003_5_sync_and_async = {
    "sync-and-async",
    "RemoteResource used with the same aioc_with() from plain code (the loop "
    "runs underneath) and from inside a task",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const char *const expected[] = {
      "-- from plain code: with RemoteResource(...) as connection",
      "t=0.10 RemoteResource: connected to example.org:7000",
      "t=0.12 connection.send('ping')",
      "t=0.15 connection.recv() -> 'pong'",
      "t=0.20 RemoteResource: closed",
      "new_data = 'pong'",
      "-- inside a task: async with RemoteResource(...) as connection",
      "t=0.10 RemoteResource: connected to example.org:7000",
      "t=0.12 connection.send('ping')",
      "t=0.15 connection.recv() -> 'pong'",
      "t=0.20 RemoteResource: closed",
      "new_data = 'pong'",
  };
  int fails = 0;
  outcome o;
  seed_capture_begin();
  SEED_CHECK(fails, run_outcome(&o) == 0);
  SEED_EXPECT(fails, "sync-and-async", expected);
  for (int i = 0; i < 2; i++) {
    SEED_CHECK(fails, o.rc[i] == 0);
    SEED_CHECK(fails, o.r[i].opens == 1 && o.r[i].closes == 1);
    SEED_CHECK(fails, o.x[i].new_data && !strcmp(o.x[i].new_data, "pong"));
  }
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  return seed_verdict("seed_003_5_sync_and_async", fails);
}
#endif

/* Seed 003, example 1: two nested asynchronous context managers.
 *
 *   async with FlowProvider(store_url) as provider:
 *       async with provider.open_read(flow_id, config=config) as reader:
 *           frames = await reader.read(720, count=480)
 *           # Do other things using reader
 *       # Do other things using provider
 *   # Do something with frames
 *
 * FlowProvider() and provider.open_read() are plain functions that return
 * a manager (an aioc_cm: an enter/exit vtable and its object); the setup
 * and teardown await (connecting to the store, opening the flow). Each
 * `async with` is aioc_with(cm, body, arg, &exit_rc): enter binds the
 * object the body receives, exit always runs with the body's code. The
 * order is the article's: enter provider, enter reader, read, exit reader,
 * exit provider; `frames` is still there afterwards. --check also makes
 * reader.read() fail: both exits still run, innermost first, and see the
 * error, which propagates out of both blocks.
 */
#include "seed_003_examples.h"

#define STORE_URL "https://flowstore.example/"
#define FLOW_ID "flow-42"

/* FlowProvider(store_url): a connection to the flow store. */
typedef struct flow_provider {
  const char *store_url;
  int connected;
} flow_provider;

/* What provider.open_read() opens. */
typedef struct flow_reader {
  flow_provider *provider;
  const char *flow_id;
  const char *config;
  int open;
  int fail_read; /* for the check: reader.read() raises OSError */
} flow_reader;

typedef struct frames {
  int first, count;
} frames;

static const char *exc(int rc) { return rc ? aioc_err_name(rc) : "None"; }

/* ---- FlowProvider ---- */

static int provider_aenter(void *self, void **bound) {
  flow_provider *p = self;
  int rc = aioc_sleep(0.1); /* connecting */
  if (rc < 0) return rc;
  p->connected = 1;
  seed_out("t=%.2f FlowProvider.__aenter__: connected to %s, bound to "
           "provider",
           aioc_time(), p->store_url);
  *bound = p;
  return 0;
}

static int provider_aexit(void *self, int body_rc) {
  flow_provider *p = self;
  int rc = aioc_sleep(0.05); /* disconnecting */
  p->connected = 0;
  seed_out("t=%.2f FlowProvider.__aexit__(%s): disconnected", aioc_time(),
           exc(body_rc));
  return rc < 0 ? rc : 0; /* 0: whatever the body raised propagates */
}

static const aioc_cm_vtable provider_vt = {provider_aenter, provider_aexit};

static aioc_cm FlowProvider(flow_provider *p, const char *store_url) {
  p->store_url = store_url;
  p->connected = 0;
  aioc_cm cm = {&provider_vt, p, 0};
  return cm;
}

/* ---- provider.open_read() ---- */

static int reader_aenter(void *self, void **bound) {
  flow_reader *r = self;
  if (!r->provider->connected) return -ENOTCONN;
  int rc = aioc_sleep(0.05); /* opening the flow */
  if (rc < 0) return rc;
  r->open = 1;
  seed_out("t=%.2f open_read.__aenter__: %s opened, bound to reader",
           aioc_time(), r->flow_id);
  *bound = r;
  return 0;
}

static int reader_aexit(void *self, int body_rc) {
  flow_reader *r = self;
  int rc = aioc_sleep(0.05); /* closing it */
  r->open = 0;
  seed_out("t=%.2f open_read.__aexit__(%s): %s closed", aioc_time(),
           exc(body_rc), r->flow_id);
  return rc < 0 ? rc : 0;
}

static const aioc_cm_vtable reader_vt = {reader_aenter, reader_aexit};

static aioc_cm provider_open_read(flow_provider *provider, flow_reader *r,
                                  const char *flow_id, const char *config) {
  int fail_read = r->fail_read;
  memset(r, 0, sizeof *r);
  r->provider = provider;
  r->flow_id = flow_id;
  r->config = config;
  r->fail_read = fail_read;
  aioc_cm cm = {&reader_vt, r, 0};
  return cm;
}

/* await reader.read(start, count=count) */
static int reader_read(flow_reader *r, int start, int count, frames *out) {
  if (!r->open || !r->provider->connected) return -ENOTCONN;
  int rc = aioc_sleep(0.2);
  if (rc < 0) return rc;
  if (r->fail_read) {
    seed_out("t=%.2f reader.read(%d, count=%d): raises %s", aioc_time(),
             start, count, aioc_err_name(-EIO));
    return aioc_error(-EIO, "read of %s failed", r->flow_id);
  }
  out->first = start;
  out->count = count;
  seed_out("t=%.2f frames = await reader.read(%d, count=%d): %d frames",
           aioc_time(), start, count, count);
  return 0;
}

/* ---- the blocks ---- */

typedef struct example {
  frames frames;
  flow_reader reader;
} example;

static int reader_block(void *arg, void *bound) {
  example *e = arg;
  flow_reader *reader = bound;
  int rc = reader_read(reader, 720, 480, &e->frames);
  if (rc < 0) return rc;
  seed_out("t=%.2f # Do other things using reader", aioc_time());
  return 0;
}

static int provider_block(void *arg, void *bound) {
  example *e = arg;
  flow_provider *provider = bound;
  aioc_cm reader = provider_open_read(provider, &e->reader, FLOW_ID,
                                      "config");
  int rc = aioc_with(&reader, reader_block, e, NULL);
  if (rc < 0) return rc;
  seed_out("t=%.2f # Do other things using provider", aioc_time());
  return 0;
}

static int amain(void *arg, void **result) {
  (void)result;
  example *e = arg;
  flow_provider p;
  aioc_cm provider = FlowProvider(&p, STORE_URL);
  int rc = aioc_with(&provider, provider_block, e, NULL);
  if (rc < 0) {
    seed_out("t=%.2f async with raised %s", aioc_time(), aioc_err_name(rc));
    return rc;
  }
  seed_out("t=%.2f # Do something with frames: %d..%d are still here",
           aioc_time(), e->frames.first,
           e->frames.first + e->frames.count - 1);
  return 0;
}

static int run_example(example *e, int fail_read) {
  memset(e, 0, sizeof *e);
  e->reader.fail_read = fail_read;
  return seed_run(amain, e);
}

static int run(void) {
  example e;
  return run_example(&e, 0);
}

const seed_example seed_003_1_nested_managers = {
    "async-with-nested",
    "async with FlowProvider() as provider: async with provider.open_read() "
    "as reader: setup and teardown in order, frames kept",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const char *const expected[] = {
      "t=0.10 FlowProvider.__aenter__: connected to "
      "https://flowstore.example/, bound to provider",
      "t=0.15 open_read.__aenter__: flow-42 opened, bound to reader",
      "t=0.35 frames = await reader.read(720, count=480): 480 frames",
      "t=0.35 # Do other things using reader",
      "t=0.40 open_read.__aexit__(None): flow-42 closed",
      "t=0.40 # Do other things using provider",
      "t=0.45 FlowProvider.__aexit__(None): disconnected",
      "t=0.45 # Do something with frames: 720..1199 are still here",
  };
  static const char *const expected_fail[] = {
      "t=0.10 FlowProvider.__aenter__: connected to "
      "https://flowstore.example/, bound to provider",
      "t=0.15 open_read.__aenter__: flow-42 opened, bound to reader",
      "t=0.35 reader.read(720, count=480): raises EIO",
      "t=0.40 open_read.__aexit__(EIO): flow-42 closed",
      "t=0.45 FlowProvider.__aexit__(EIO): disconnected",
      "t=0.45 async with raised EIO",
  };
  int fails = 0;
  example e;
  seed_capture_begin();
  SEED_CHECK(fails, run_example(&e, 0) == 0);
  SEED_EXPECT(fails, "async-with-nested", expected);
  SEED_CHECK(fails, e.frames.first == 720 && e.frames.count == 480);
  SEED_CHECK(fails, !e.reader.open);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();

  seed_capture_begin();
  SEED_CHECK(fails, run_example(&e, 1) == -EIO);
  SEED_EXPECT(fails, "async-with-nested (read fails)", expected_fail);
  SEED_CHECK(fails, !e.reader.open);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  return seed_verdict("seed_003_1_nested_managers", fails);
}
#endif

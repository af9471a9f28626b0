/* Seed 003, example 2: what __aexit__ returns decides whether the body's
 * exception propagates.
 *
 *   async with AsyncCM as ctx:
 *       ...
 *   # is the same as:
 *   ctx = await AsyncCM.__aenter__()
 *   try:
 *       ...
 *   except Exception as e:
 *       if not await AsyncCM.__aexit__(type(e), e, e.__traceback__):
 *           raise e
 *   else:
 *       await AsyncCM.__aexit__(None, None, None)
 *
 * In aioc, exit(self, body_rc) gets the body's code (0: None, None, None)
 * and returns 1 (truthy: the error was handled, aioc_with() returns 0), 0
 * (falsy: the error propagates, aioc_with() returns it) or a negative code
 * (exit itself failed). After a body that completed, exit's truthy answer
 * is ignored. When exit fails while the body had failed, nothing is lost:
 * aioc_with() returns the body's error and *exit_rc holds exit's.
 *
 * The manager here is a connection whose __aexit__ awaits its close and
 * handles ConnectionResetError (-ECONNRESET) only; the five cases run in
 * one task.
 */
#include "seed_003_examples.h"

typedef struct connection {
  int close_fails; /* __aexit__ raises BrokenPipeError (-EPIPE) */
  int aenters, aexits;
} connection;

static const char *exc(int rc) { return rc ? aioc_err_name(rc) : "None"; }

static int conn_aenter(void *self, void **bound) {
  connection *c = self;
  int rc = aioc_sleep(0.01);
  if (rc < 0) return rc;
  c->aenters++;
  seed_out("  __aenter__: connected");
  *bound = c;
  return 0;
}

static int conn_aexit(void *self, int body_rc) {
  connection *c = self;
  c->aexits++;
  int rc = aioc_sleep(0.01); /* closing awaits */
  if (rc < 0) return rc;
  if (c->close_fails) {
    seed_out("  __aexit__(%s): the close raises EPIPE", exc(body_rc));
    return -EPIPE;
  }
  if (body_rc == 0) {
    seed_out("  __aexit__(None, None, None) -> True (ignored)");
    return 1;
  }
  if (body_rc == -ECONNRESET) {
    seed_out("  __aexit__(ECONNRESET) -> True: handled, suppressed");
    return 1;
  }
  seed_out("  __aexit__(%s) -> False: propagates", exc(body_rc));
  return 0;
}

static const aioc_cm_vtable conn_vt = {conn_aenter, conn_aexit};

typedef struct scenario {
  const char *title;
  int body_rc;     /* what the body raises (0: it completes) */
  int close_fails; /* __aexit__ fails */
  int want_rc, want_exit_rc;
} scenario;

static const scenario scenarios[] = {
    {"the body completes", 0, 0, 0, 0},
    {"the body raises ECONNRESET, which __aexit__ handles", -ECONNRESET, 0, 0,
     0},
    {"the body raises EIO, which __aexit__ does not handle", -EIO, 0, -EIO, 0},
    {"the body raises EIO and __aexit__ fails with EPIPE", -EIO, 1, -EIO,
     -EPIPE},
    {"the body completes and __aexit__ fails with EPIPE", 0, 1, -EPIPE,
     -EPIPE},
};
#define NSCENARIOS (sizeof scenarios / sizeof *scenarios)

static int body(void *arg, void *bound) {
  const scenario *s = arg;
  (void)bound;
  if (s->body_rc) {
    seed_out("  body: raises %s", aioc_err_name(s->body_rc));
    return s->body_rc;
  }
  seed_out("  body: completes");
  return 0;
}

typedef struct outcome {
  int rc[NSCENARIOS], exit_rc[NSCENARIOS];
  int aenters, aexits;
} outcome;

static int amain(void *arg, void **result) {
  (void)result;
  outcome *o = arg;
  for (size_t i = 0; i < NSCENARIOS; i++) {
    const scenario *s = &scenarios[i];
    connection c = {s->close_fails, 0, 0};
    aioc_cm cm = {&conn_vt, &c, 0};
    seed_out("-- %s", s->title);
    int exit_rc;
    int rc = aioc_with(&cm, body, (void *)s, &exit_rc);
    o->rc[i] = rc;
    o->exit_rc[i] = exit_rc;
    o->aenters += c.aenters;
    o->aexits += c.aexits;
    seed_out("  async with: %s, exit_rc %s",
             rc == 0 ? "nothing raised" : aioc_err_name(rc),
             aioc_err_name(exit_rc));
  }
  return 0;
}

static int run_outcome(outcome *o) {
  memset(o, 0, sizeof *o);
  return seed_run(amain, o);
}

static int run(void) {
  outcome o;
  return run_outcome(&o);
}

const seed_example seed_003_2_aexit = {
    "aexit-suppress",
    "__aexit__ returns True (suppressed: aioc_with gives 0) or False (the "
    "error propagates); a failing exit is reported in exit_rc",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const char *const expected[] = {
      "-- the body completes",
      "  __aenter__: connected",
      "  body: completes",
      "  __aexit__(None, None, None) -> True (ignored)",
      "  async with: nothing raised, exit_rc OK",
      "-- the body raises ECONNRESET, which __aexit__ handles",
      "  __aenter__: connected",
      "  body: raises ECONNRESET",
      "  __aexit__(ECONNRESET) -> True: handled, suppressed",
      "  async with: nothing raised, exit_rc OK",
      "-- the body raises EIO, which __aexit__ does not handle",
      "  __aenter__: connected",
      "  body: raises EIO",
      "  __aexit__(EIO) -> False: propagates",
      "  async with: EIO, exit_rc OK",
      "-- the body raises EIO and __aexit__ fails with EPIPE",
      "  __aenter__: connected",
      "  body: raises EIO",
      "  __aexit__(EIO): the close raises EPIPE",
      "  async with: EIO, exit_rc EPIPE",
      "-- the body completes and __aexit__ fails with EPIPE",
      "  __aenter__: connected",
      "  body: completes",
      "  __aexit__(None): the close raises EPIPE",
      "  async with: EPIPE, exit_rc EPIPE",
  };
  int fails = 0;
  outcome o;
  seed_capture_begin();
  SEED_CHECK(fails, run_outcome(&o) == 0);
  SEED_EXPECT(fails, "aexit-suppress", expected);
  for (size_t i = 0; i < NSCENARIOS; i++) {
    SEED_CHECK(fails, o.rc[i] == scenarios[i].want_rc);
    SEED_CHECK(fails, o.exit_rc[i] == scenarios[i].want_exit_rc);
  }
  SEED_CHECK(fails, o.aenters == (int)NSCENARIOS);
  SEED_CHECK(fails, o.aexits == (int)NSCENARIOS);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  return seed_verdict("seed_003_2_aexit", fails);
}
#endif

/* Seed 003, example 3: @asynccontextmanager. The setup before the yield is
 * what __aenter__ would do, the yielded object is what `as` binds, the
 * code after the yield is the teardown; an exception raised in the body of
 * the `async with` is raised by the yield.
 *
 *   @asynccontextmanager
 *   async def ExampleAsyncCM(a_param, b_param):
 *       obj = await setup(a_param, b_param)
 *       try:
 *           yield obj
 *       except ConnectionResetError:
 *           print('handled')           # suppressed
 *       finally:
 *           await teardown(obj)
 *
 *   async with ExampleAsyncCM('a', 'b') as obj:
 *       ...
 *
 * In aioc the generator becomes a manager with aioc_gen_cm(); the body's
 * code arrives as aioc_gen_yield()'s return value (0 when the body
 * completed). The generator suppresses the error it handles with
 * aioc_cm_suppress(); any other error propagates (the generator returns
 * it, or returns 0 without suppressing: the same). Three blocks: one
 * completes, one raises ConnectionResetError (handled), one raises OSError
 * (propagates). The teardown runs every time.
 */
#include "seed_003_examples.h"

typedef struct params {
  const char *a_param, *b_param;
  int setups, teardowns;
} params;

typedef struct obj {
  const char *a, *b;
} obj;

static int ExampleAsyncCM(void *arg, aioc_gen *g) {
  params *p = arg;
  int rc = aioc_sleep(0.01); /* obj = await setup(a_param, b_param) */
  if (rc < 0) return rc;
  obj o = {p->a_param, p->b_param};
  p->setups++;
  seed_out("  setup('%s', '%s'): obj ready", o.a, o.b);
  rc = aioc_gen_yield(g, &o, NULL); /* the body runs here */
  if (rc == -ECONNRESET) {
    seed_out("  the yield raised ECONNRESET: handled");
    aioc_cm_suppress(g);
    rc = 0;
  } else if (rc < 0) {
    seed_out("  the yield raised %s", aioc_err_name(rc));
  }
  /* finally: */
  int trc = aioc_sleep(0.01); /* await teardown(obj) */
  p->teardowns++;
  seed_out("  teardown(obj)");
  return rc < 0 ? rc : trc;
}

static int block(void *arg, void *bound) {
  int raise = *(const int *)arg;
  obj *o = bound;
  seed_out("  body: uses obj('%s', '%s')%s%s", o->a, o->b,
           raise ? ", raises " : "", raise ? aioc_err_name(raise) : "");
  return raise;
}

typedef struct outcome {
  int rc[3];
  int setups, teardowns;
} outcome;

static int amain(void *arg, void **result) {
  (void)result;
  outcome *o = arg;
  static const struct {
    const char *title;
    int raise;
  } blocks[3] = {
      {"the body completes", 0},
      {"the body raises ConnectionResetError", -ECONNRESET},
      {"the body raises OSError", -EIO},
  };
  params p = {"a", "b", 0, 0};
  aioc_cm cm;
  int rc = aioc_gen_cm(&cm, ExampleAsyncCM, &p);
  if (rc < 0) return rc;
  for (int i = 0; i < 3; i++) {
    seed_out("-- %s", blocks[i].title);
    rc = aioc_with(&cm, block, (void *)&blocks[i].raise, NULL);
    o->rc[i] = rc;
    seed_out("  async with: %s",
             rc == 0 ? "nothing raised" : aioc_err_name(rc));
  }
  aioc_gen_cm_free(&cm);
  o->setups = p.setups;
  o->teardowns = p.teardowns;
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

const seed_example seed_003_3_asynccontextmanager = {
    "asynccontextmanager",
    "a generator as a manager (aioc_gen_cm): setup, yield obj, teardown; "
    "the body's error arrives at the yield, aioc_cm_suppress handles it",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const char *const expected[] = {
      "-- the body completes",
      "  setup('a', 'b'): obj ready",
      "  body: uses obj('a', 'b')",
      "  teardown(obj)",
      "  async with: nothing raised",
      "-- the body raises ConnectionResetError",
      "  setup('a', 'b'): obj ready",
      "  body: uses obj('a', 'b'), raises ECONNRESET",
      "  the yield raised ECONNRESET: handled",
      "  teardown(obj)",
      "  async with: nothing raised",
      "-- the body raises OSError",
      "  setup('a', 'b'): obj ready",
      "  body: uses obj('a', 'b'), raises EIO",
      "  the yield raised EIO",
      "  teardown(obj)",
      "  async with: EIO",
  };
  int fails = 0;
  outcome o;
  seed_capture_begin();
  SEED_CHECK(fails, run_outcome(&o) == 0);
  SEED_EXPECT(fails, "asynccontextmanager", expected);
  SEED_CHECK(fails, o.rc[0] == 0 && o.rc[1] == 0 && o.rc[2] == -EIO);
  SEED_CHECK(fails, o.setups == 3 && o.teardowns == 3);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  return seed_verdict("seed_003_3_asynccontextmanager", fails);
}
#endif

/* Seed 003, example 4: several managers entered one after the other and
 * exited in reverse order, contextlib.AsyncExitStack (the library support
 * for what example 1 writes as nested blocks).
 *
 *   @asynccontextmanager
 *   async def connect(name, handles=None):
 *       await open(name)
 *       try:
 *           yield name
 *       except handles:
 *           pass                      # suppressed
 *       finally:
 *           await close(name)
 *
 *   async with AsyncExitStack() as stack:
 *       for name in ("db", "cache", "queue"):
 *           await stack.enter_async_context(connect(name))
 *       ...
 *
 * aioc_exit_stack_enter() enters each manager (here aioc_gen_cm()
 * generators) and aioc_exit_stack_close(stack, body_rc) exits them in
 * reverse order, each seeing the code the previous exits left. The second
 * block raises ConnectionResetError: "queue" sees it and lets it through,
 * "cache" handles it, so "db" sees no error and the block ends cleanly.
 */
#include "seed_003_examples.h"

#define NCONN 3

typedef struct service {
  const char *name;
  int handles; /* the error its manager suppresses (0: none) */
  int opened, closed;
} service;

static int connect(void *arg, aioc_gen *g) {
  service *s = arg;
  int rc = aioc_sleep(0.01); /* await open(name) */
  if (rc < 0) return rc;
  s->opened++;
  seed_out("  open %s", s->name);
  rc = aioc_gen_yield(g, (void *)s->name, NULL);
  int handled = rc < 0 && rc == s->handles;
  int crc = aioc_sleep(0.01); /* finally: await close(name) */
  s->closed++;
  seed_out("  close %s (sees %s)%s", s->name,
           rc ? aioc_err_name(rc) : "no error", handled ? ": handled" : "");
  if (handled) {
    aioc_cm_suppress(g);
    return 0;
  }
  return rc < 0 ? rc : crc;
}

typedef struct outcome {
  int rc[2];
  int opened, closed;
} outcome;

/* One `async with AsyncExitStack()` block whose body raises body_rc. */
static int with_stack(service *services, aioc_cm *cms, int body_rc) {
  aioc_exit_stack *stack;
  int rc = aioc_exit_stack_new(&stack);
  if (rc < 0) return rc;
  for (int i = 0; i < NCONN && rc == 0; i++) {
    void *bound;
    rc = aioc_exit_stack_enter(stack, &cms[i], &bound);
    if (rc == 0 && strcmp(bound, services[i].name) != 0) rc = -EPROTO;
  }
  if (rc == 0) {
    seed_out("  body: uses db, cache, queue%s%s", body_rc ? ", raises " : "",
             body_rc ? aioc_err_name(body_rc) : "");
    rc = body_rc;
  }
  rc = aioc_exit_stack_close(stack, rc);
  aioc_exit_stack_free(stack);
  return rc;
}

static int amain(void *arg, void **result) {
  (void)result;
  outcome *o = arg;
  service services[NCONN] = {
      {"db", 0, 0, 0}, {"cache", -ECONNRESET, 0, 0}, {"queue", 0, 0, 0}};
  aioc_cm cms[NCONN];
  int rc = 0, n = 0;
  for (; n < NCONN && rc == 0; n++)
    if ((rc = aioc_gen_cm(&cms[n], connect, &services[n])) < 0) break;
  if (rc == 0) {
    seed_out("-- the block completes");
    o->rc[0] = with_stack(services, cms, 0);
    seed_out("  async with: %s",
             o->rc[0] == 0 ? "nothing raised" : aioc_err_name(o->rc[0]));
    seed_out("-- the block raises ConnectionResetError");
    o->rc[1] = with_stack(services, cms, -ECONNRESET);
    seed_out("  async with: %s",
             o->rc[1] == 0 ? "nothing raised" : aioc_err_name(o->rc[1]));
  }
  for (int i = 0; i < n; i++) aioc_gen_cm_free(&cms[i]);
  for (int i = 0; i < NCONN; i++) {
    o->opened += services[i].opened;
    o->closed += services[i].closed;
  }
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

const seed_example seed_003_4_exit_stack = {
    "AsyncExitStack",
    "aioc_exit_stack: db, cache, queue entered in order and exited in "
    "reverse; cache's exit suppresses the error queue's let through",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const char *const expected[] = {
      "-- the block completes",
      "  open db",
      "  open cache",
      "  open queue",
      "  body: uses db, cache, queue",
      "  close queue (sees no error)",
      "  close cache (sees no error)",
      "  close db (sees no error)",
      "  async with: nothing raised",
      "-- the block raises ConnectionResetError",
      "  open db",
      "  open cache",
      "  open queue",
      "  body: uses db, cache, queue, raises ECONNRESET",
      "  close queue (sees ECONNRESET)",
      "  close cache (sees ECONNRESET): handled",
      "  close db (sees no error)",
      "  async with: nothing raised",
  };
  int fails = 0;
  outcome o;
  seed_capture_begin();
  SEED_CHECK(fails, run_outcome(&o) == 0);
  SEED_EXPECT(fails, "AsyncExitStack", expected);
  SEED_CHECK(fails, o.rc[0] == 0 && o.rc[1] == 0);
  SEED_CHECK(fails, o.opened == 2 * NCONN && o.closed == 2 * NCONN);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  return seed_verdict("seed_003_4_exit_stack", fails);
}
#endif

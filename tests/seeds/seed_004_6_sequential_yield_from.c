/* Seed 004, example Sequential "yield from"s: the caveat of yielding.
 *
 *   @asyncio.coroutine
 *   def f()
 *       t1 = yield from f1()
 *       t2 = yield from f2()
 *       y.put(t1 + t2)
 *
 *   "This code alone is ok, but if you use it in a loop, spawning
 *   thousands of async tasks of "f", then the event loop need to wait for
 *   all f1s complete before it can schedule f2. Thus the yielding
 *   processing won't yield anything, it will block until all "f1"s done
 *   and some "f2"s done too. If there're no dependecies between "f1" and
 *   "f2", the following modification works just fine"
 *
 *   @asyncio.coroutine
 *   def f()
 *       t1 = asyncio.async(f1())
 *       t2 = asyncio.async(f2())
 *       yield from asyncio.wait([t1, t2])
 *       y.put(t1.result() + t2.result())
 *
 * f1 and f2 sleep 0.1 s each and return 1 and 2. A Yielder runs 100 tasks
 * of f and plain code takes the results. With the sequential awaits the
 * first result comes at 0.2 s (every f1, then the f2s); with f1 and f2 as
 * two tasks awaited together it comes at 0.1 s. On the virtual clock the
 * difference is exactly the length of f2.
 */
#include "seed_004_common.h"
#include "seed_004_examples.h"

#define NTASKS 100

static int f1_calls, f2_calls;

static int f1(void *arg, void **result) {
  (void)arg;
  int rc = aioc_sleep(0.1);
  if (rc < 0) return rc;
  f1_calls++;
  *result = AIOC_INT(1);
  return 0;
}

static int f2(void *arg, void **result) {
  (void)arg;
  int rc = aioc_sleep(0.1);
  if (rc < 0) return rc;
  f2_calls++;
  *result = AIOC_INT(2);
  return 0;
}

/* The slow way: t1 = yield from f1(); t2 = yield from f2(); y.put(t1+t2).
 * "yield from" a coroutine is a plain call inside the task. */
static int f_sequential(void *arg, void **result) {
  (void)result;
  aioc_yielder *y = arg;
  void *t1 = NULL, *t2 = NULL;
  int rc = f1(NULL, &t1);
  if (rc == 0) rc = f2(NULL, &t2);
  if (rc == 0)
    rc = aioc_yielder_put(y, AIOC_INT(AIOC_TO_INT(t1) + AIOC_TO_INT(t2)));
  return rc < 0 ? rc : AIOC_NORESULT;
}

/* The fast way: both as tasks, waited for together. */
static int f_concurrent(void *arg, void **result) {
  (void)result;
  aioc_yielder *y = arg;
  aioc_task *t[2] = {NULL, NULL};
  int rc = aioc_spawn(&t[0], f1, NULL); /* t1 = asyncio.async(f1()) */
  if (rc == 0) rc = aioc_spawn(&t[1], f2, NULL); /* t2 = ... f2() */
  if (rc == 0) {
    aioc_future *fs[2] = {aioc_task_future(t[0]), aioc_task_future(t[1])};
    rc = aioc_wait(fs, 2, AIOC_WAIT_ALL_COMPLETED, NULL, NULL, NULL, NULL,
                   AIOC_FOREVER); /* yield from asyncio.wait([t1, t2]) */
  }
  void *r1 = NULL, *r2 = NULL;
  if (rc == 0) rc = aioc_future_result(aioc_task_future(t[0]), &r1);
  if (rc == 0) rc = aioc_future_result(aioc_task_future(t[1]), &r2);
  if (rc == 0) /* y.put(t1.result() + t2.result()) */
    rc = aioc_yielder_put(y, AIOC_INT(AIOC_TO_INT(r1) + AIOC_TO_INT(r2)));
  if (rc < 0) { /* not on the way the example takes */
    if (t[0]) aioc_task_cancel(t[0], NULL);
    if (t[1]) aioc_task_cancel(t[1], NULL);
  }
  aioc_task_unref(t[0]);
  aioc_task_unref(t[1]);
  return rc < 0 ? rc : AIOC_NORESULT;
}

/* What one way gave, for the checks. */
typedef struct outcome {
  double first, last;
  int n;
  long sum;
  int f1_calls, f2_calls;
} outcome;

static outcome seq_out, conc_out;

static int measure(const char *what, aioc_fn f, outcome *o) {
  aioc_loop *loop;
  int rc = seed_plain_begin(&loop);
  if (rc < 0) return rc;
  memset(o, 0, sizeof *o);
  f1_calls = f2_calls = 0;
  aioc_yielder *y = NULL;
  rc = aioc_yielder_new(&y, 0, NULL);
  for (int i = 0; rc == 0 && i < NTASKS; i++) rc = aioc_yielder_spawn(y, f, y);
  while (rc == 0) { /* for item in y.yielding(): */
    void *item;
    rc = aioc_yielder_next(y, &item, AIOC_FOREVER);
    if (rc != 0) break;
    if (o->n++ == 0) o->first = aioc_loop_time(loop);
    o->sum += AIOC_TO_INT(item);
  }
  if (rc == AIOC_EXHAUSTED) {
    rc = 0;
    o->last = aioc_loop_time(loop);
    o->f1_calls = f1_calls;
    o->f2_calls = f2_calls;
    seed_out("%s: first result at %.1f s, all %d at %.1f s", what, o->first,
             o->n, o->last);
  }
  aioc_yielder_free(y);
  int crc = seed_plain_end(loop);
  return rc < 0 ? rc : crc;
}

static int run(void) {
  int rc = measure("sequential yield from f1(), f2()", f_sequential,
                   &seq_out);
  if (rc == 0)
    rc = measure("f1(), f2() as two tasks, waited together", f_concurrent,
                 &conc_out);
  return rc;
}

const seed_example seed_004_6_sequential_yield_from = {
    "Sequential-yield-from",
    "100 tasks put f1()+f2() into a Yielder: awaited one after the other the "
    "first result comes at 0.2 s, as two tasks at 0.1 s",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const char *const expected[] = {
      "sequential yield from f1(), f2(): first result at 0.2 s, all 100 at "
      "0.2 s",
      "f1(), f2() as two tasks, waited together: first result at 0.1 s, all "
      "100 at 0.1 s",
  };
  int fails = 0;
  seed_capture_begin();
  SEED_CHECK(fails, run() == 0);
  SEED_EXPECT(fails, "Sequential-yield-from", expected);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  /* Exact on the virtual clock: 0.1 + 0.1 is 0.2 in binary too. */
  SEED_CHECK(fails, seq_out.first == 0.2 && seq_out.last == 0.2);
  SEED_CHECK(fails, conc_out.first == 0.1 && conc_out.last == 0.1);
  const outcome *both[2] = {&seq_out, &conc_out};
  for (int i = 0; i < 2; i++) {
    SEED_CHECK(fails, both[i]->n == NTASKS);
    SEED_CHECK(fails, both[i]->sum == 3L * NTASKS);
    SEED_CHECK(fails, both[i]->f1_calls == NTASKS);
    SEED_CHECK(fails, both[i]->f2_calls == NTASKS);
  }
  return seed_verdict("seed_004_6_sequential_yield_from", fails);
}
#endif

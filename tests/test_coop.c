/* The cooperative budget: a task whose operations never wait (a queue
 * that is never empty, a socket that is always readable) starves the
 * others without it, and lets them run after at most K operations with
 * it; the operations keep their meaning when the budget makes them
 * yield. */
#include <limits.h>
#include <sys/socket.h>

#include "check.h"

#define ROUNDS 20000

typedef struct starve {
  aioc_queue *q;
  aioc_stream *s;
  aioc_task *other; /* spawned by the busy task once it is busy */
  bool other_ran;
  long ops_before; /* operations the busy task had done when it saw the
                      other task's mark; -1: not during its run */
} starve;

/* Needs the loop: a yield through it, then its mark. */
static int needs_loop(void *arg, void **res) {
  (void)res;
  starve *st = arg;
  int rc = aioc_sleep(0);
  st->other_ran = true;
  return rc;
}

/* Gets an item and puts it back, ROUNDS times: the queue is never empty
 * and never full, so no operation waits. */
static int busy_queue(void *arg, void **res) {
  (void)res;
  starve *st = arg;
  st->ops_before = -1;
  if (aioc_spawn(&st->other, needs_loop, st) != 0) return -ENOMEM;
  long ops = 0;
  for (int i = 0; i < ROUNDS; i++) {
    if (st->other_ran && st->ops_before < 0) st->ops_before = ops;
    void *it;
    if (aioc_queue_get(st->q, &it, AIOC_FOREVER) != 0) return -1;
    if (aioc_queue_put(st->q, it, AIOC_FOREVER) != 0) return -1;
    ops += 2;
  }
  return 0;
}

static int starve_main(void *arg, void **res) {
  (void)res;
  starve *st = arg;
  st->other_ran = false;
  if (aioc_queue_new(&st->q, 4, NULL) != 0) return -ENOMEM;
  if (aioc_queue_put(st->q, AIOC_INT(1), 0) != 0) return -1;
  aioc_task *a;
  if (aioc_spawn(&a, busy_queue, st)) return -ENOMEM;
  int ra = aioc_task_await(a, NULL);
  int rb = st->other ? aioc_task_await(st->other, NULL) : -1;
  aioc_task_unref(a);
  aioc_task_unref(st->other);
  aioc_queue_free(st->q);
  return ra ? ra : rb;
}

/* Runs starve_main on a virtual-clock loop with budget (0: default). */
static long run_starve(unsigned budget, aioc_fn fn) {
  aioc_loop *loop = NULL;
  aioc_loop_options o = {.virtual_clock = 1, .coop_budget = budget};
  CHECK_RC(aioc_loop_new(&loop, &o), 0);
  starve st = {0};
  aioc_task *t = NULL;
  CHECK_RC(aioc_spawn_ex(&t, loop, fn, &st, NULL), 0);
  CHECK_RC(aioc_loop_run_until_complete(loop, aioc_task_future(t)), 0);
  CHECK_RC(aioc_future_error(aioc_task_future(t)), 0);
  aioc_task_unref(t);
  CLOSE_CLEAN(loop);
  CHECK(st.other_ran);
  return st.ops_before;
}

/* Without the budget the other task waits for the whole run (it runs
 * only once the busy task has ended); with it, it runs once the busy
 * task has spent two budgets at most (one to let it start, one to let
 * it through the loop), give or take the round the busy task finishes. */
TEST(test_budget_stops_queue_starvation) {
  CHECK_EQ(run_starve(UINT_MAX, starve_main), -1);
  long k = run_starve(16, starve_main);
  CHECK_INT(k, >=, 0);
  CHECK_INT(k, <=, 2 * 16 + 2);
  k = run_starve(0, starve_main); /* the default, 128 */
  CHECK_INT(k, >=, 0);
  CHECK_INT(k, <=, 2 * 128 + 2);
  k = run_starve(1, starve_main);
  CHECK_INT(k, <=, 4);
}

/* The environment variable, when the options give no budget. */
TEST(test_budget_env) {
  setenv("AIOC_COOP_BUDGET", "never", 1);
  CHECK_EQ(run_starve(0, starve_main), -1);
  setenv("AIOC_COOP_BUDGET", "8", 1);
  long k = run_starve(0, starve_main);
  CHECK_INT(k, >=, 0);
  CHECK_INT(k, <=, 2 * 8 + 2);
  /* The options win over the variable. */
  CHECK_EQ(run_starve(UINT_MAX, starve_main), -1);
  unsetenv("AIOC_COOP_BUDGET");
}

/* A socket that is always readable: the reader never waits. */
static int busy_stream(void *arg, void **res) {
  (void)res;
  starve *st = arg;
  st->ops_before = -1;
  char c;
  size_t n;
  /* The first read waits for the poller; from then on the socket stays
   * readable. */
  if (aioc_stream_read(st->s, &c, 1, &n, AIOC_FOREVER) != 0 || n != 1)
    return -1;
  if (aioc_spawn(&st->other, needs_loop, st) != 0) return -ENOMEM;
  long ops = 0;
  for (int i = 1; i < ROUNDS; i++) {
    if (st->other_ran && st->ops_before < 0) st->ops_before = ops;
    if (aioc_stream_read(st->s, &c, 1, &n, AIOC_FOREVER) != 0 || n != 1)
      return -1;
    ops++;
  }
  return 0;
}

static int stream_main(void *arg, void **res) {
  (void)res;
  starve *st = arg;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return -errno;
  static char data[ROUNDS];
  memset(data, 'x', sizeof data);
  if (write(sv[1], data, sizeof data) != (ssize_t)sizeof data) return -EIO;
  if (aioc_stream_from_fd(&st->s, sv[0], NULL) != 0) return -ENOMEM;
  aioc_task *a;
  if (aioc_spawn(&a, busy_stream, st)) return -ENOMEM;
  int ra = aioc_task_await(a, NULL);
  int rb = st->other ? aioc_task_await(st->other, NULL) : -1;
  aioc_task_unref(a);
  aioc_task_unref(st->other);
  aioc_stream_free(st->s);
  close(sv[1]);
  return ra ? ra : rb;
}

TEST(test_budget_stops_stream_starvation) {
  CHECK_EQ(run_starve(UINT_MAX, stream_main), -1);
  long k = run_starve(16, stream_main);
  CHECK_INT(k, >=, 0);
  CHECK_INT(k, <=, 2 * 16 + 2);
}

/* ---- the operations keep their meaning under budget 1 ---- */

typedef struct pc {
  aioc_queue *q;
  aioc_lock *lock;
  aioc_semaphore *sem;
  aioc_event *ev;
  long long sum;
  int inside, max_inside;
  int acquired;
} pc;

static int producer(void *arg, void **res) {
  (void)res;
  pc *p = arg;
  for (int i = 1; i <= 1000; i++)
    if (aioc_queue_put(p->q, AIOC_INT(i), AIOC_FOREVER) != 0) return -1;
  return 0;
}

static int consumer(void *arg, void **res) {
  (void)res;
  pc *p = arg;
  for (int i = 0; i < 1000; i++) {
    void *it;
    if (aioc_queue_get(p->q, &it, AIOC_FOREVER) != 0) return -1;
    p->sum += AIOC_TO_INT(it);
  }
  return 0;
}

static int locker(void *arg, void **res) {
  (void)res;
  pc *p = arg;
  for (int i = 0; i < 200; i++) {
    if (aioc_lock_acquire(p->lock, AIOC_FOREVER) != 0) return -1;
    p->inside++;
    if (p->inside > p->max_inside) p->max_inside = p->inside;
    if (aioc_event_wait(p->ev, AIOC_FOREVER) != 0) return -1; /* set */
    p->inside--;
    if (aioc_lock_release(p->lock) != 0) return -1;
    if (aioc_semaphore_acquire(p->sem, AIOC_FOREVER) != 0) return -1;
    p->acquired++;
    if (aioc_semaphore_release(p->sem) != 0) return -1;
  }
  return 0;
}

static int ops_main(void *arg, void **res) {
  (void)res;
  pc *p = arg;
  aioc_task *t[5];
  if (aioc_spawn(&t[0], producer, p) || aioc_spawn(&t[1], consumer, p) ||
      aioc_spawn(&t[2], locker, p) || aioc_spawn(&t[3], locker, p) ||
      aioc_spawn(&t[4], locker, p))
    return -ENOMEM;
  int rc = 0;
  for (int i = 0; i < 5; i++) {
    /* Awaiting a done future ticks the budget too. */
    if (aioc_task_await(t[i], NULL) != 0) rc = -1;
    if (aioc_task_await(t[i], NULL) != 0) rc = -1;
    aioc_task_unref(t[i]);
  }
  return rc;
}

static void run_ops(unsigned budget) {
  pc p = {0};
  CHECK_RC(aioc_queue_new(&p.q, 8, NULL), 0);
  CHECK_RC(aioc_lock_new(&p.lock), 0);
  CHECK_RC(aioc_semaphore_new(&p.sem, 2), 0);
  CHECK_RC(aioc_event_new(&p.ev), 0);
  CHECK_RC(aioc_event_set(p.ev), 0);
  aioc_loop *loop = NULL;
  aioc_loop_options o = {.virtual_clock = 1, .coop_budget = budget};
  CHECK_RC(aioc_loop_new(&loop, &o), 0);
  aioc_task *t = NULL;
  CHECK_RC(aioc_spawn_ex(&t, loop, ops_main, &p, NULL), 0);
  CHECK_RC(aioc_loop_run_until_complete(loop, aioc_task_future(t)), 0);
  CHECK_RC(aioc_future_error(aioc_task_future(t)), 0);
  aioc_task_unref(t);
  CLOSE_CLEAN(loop);
  CHECK_EQ(p.sum, 1000LL * 1001 / 2);
  CHECK_EQ(p.max_inside, 1); /* the budget's yields inside the lock */
  CHECK_EQ(p.acquired, 600);
  aioc_queue_free(p.q);
  aioc_lock_free(p.lock);
  aioc_semaphore_free(p.sem);
  aioc_event_free(p.ev);
}

TEST(test_budget_keeps_semantics) {
  run_ops(1);
  run_ops(2);
  run_ops(UINT_MAX);
}

/* Operations from callbacks and plain code never yield (there is no task
 * to yield): a spent budget only starts again. */
static void cb_puts(void *arg) {
  aioc_queue *q = arg;
  for (int i = 0; i < 10; i++)
    CHECK_RC(aioc_queue_put(q, AIOC_INT(i), 0), 0);
}

TEST(test_budget_outside_tasks) {
  aioc_loop *loop = NULL;
  aioc_loop_options o = {.virtual_clock = 1, .coop_budget = 1};
  CHECK_RC(aioc_loop_new(&loop, &o), 0);
  aioc_queue *q;
  CHECK_RC(aioc_queue_new(&q, 0, NULL), 0);
  CHECK_RC(aioc_call_soon(NULL, loop, cb_puts, q), 0);
  CHECK_EQ(aioc_loop_run_once(loop), 1);
  for (int i = 0; i < 10; i++) {
    void *it;
    CHECK_RC(aioc_queue_get(q, &it, 0), 0);
    CHECK_EQ(AIOC_TO_INT(it), i);
  }
  aioc_queue_free(q);
  CLOSE_CLEAN(loop);
}

CHECK_MAIN(120)

/* Barrier: rounds, indices, abort, reset, waiters that leave.
 *
 * Every primitive is checked for fairness order, for timeouts that leave
 * its state untouched, and for cancellation safety (a hand-off followed by
 * a cancel in the same iteration: the waiter keeps what it got; a cancel
 * followed by a hand-off: the next waiter, or the primitive, gets it). */
#include "sync_common.h"

/* ---- Barrier ------------------------------------------------------------- */

typedef struct bw {
  aioc_barrier *b;
  int id;
  double delay;
  double timeout;
  int rounds;
  int rc[4];
  double at;
} bw;

static int barrier_worker(void *arg, void **res) {
  (void)res;
  bw *w = arg;
  if (w->delay > 0) IGNORE_RC(aioc_sleep(w->delay));
  for (int r = 0; r < w->rounds; r++) {
    w->rc[r] = aioc_barrier_wait(w->b, w->timeout);
    w->at = aioc_time();
    if (w->rc[r] < 0) break;
  }
  return 0;
}

static int barrier_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_barrier *b;
  CHECK_RC(aioc_barrier_new(&b, 3), 0);
  CHECK_EQ(aioc_barrier_parties(b), 3);
  bw w[3];
  aioc_task *ts[3];
  for (int i = 0; i < 3; i++) {
    w[i] =
        (bw){.b = b, .id = i, .delay = i, .timeout = AIOC_FOREVER, .rounds = 2};
    ts[i] = spawn(barrier_worker, &w[i]);
  }
  CHECK_RC(aioc_sleep(1.5), 0);
  CHECK_EQ(aioc_barrier_n_waiting(b), 2);
  for (int i = 0; i < 3; i++)
    CHECK_RC(join(ts[i]), 0);
  /* Arrival order gives the index; the one that completes the round gets
   * parties - 1. Round 2: all arrive at 2.0 in the order woken. */
  for (int i = 0; i < 3; i++) {
    CHECK_EQ(w[i].rc[0], i);
    CHECK_DBL(w[i].at, 2.0, EPS);
  }
  int seen = 0;
  for (int i = 0; i < 3; i++)
    seen |= 1 << w[i].rc[1];
  CHECK_EQ(seen, 7);
  CHECK_EQ(aioc_barrier_n_waiting(b), 0);
  CHECK(!aioc_barrier_is_broken(b));

  /* A waiter that times out leaves the round; the indices stay dense. */
  bw a = {.b = b, .timeout = 1.0, .rounds = 1};
  bw p = {.b = b, .timeout = AIOC_FOREVER, .rounds = 1};
  aioc_task *ta = spawn(barrier_worker, &a);
  aioc_task *tp = spawn(barrier_worker, &p);
  CHECK_RC(aioc_sleep(1.5), 0);
  CHECK_RC(a.rc[0], -ETIMEDOUT);
  CHECK_EQ(aioc_barrier_n_waiting(b), 1);
  CHECK(!aioc_barrier_is_broken(b));
  bw q = {.b = b, .timeout = AIOC_FOREVER, .rounds = 1};
  aioc_task *tq = spawn(barrier_worker, &q);
  settle();
  CHECK_EQ(aioc_barrier_n_waiting(b), 2);
  CHECK_EQ(aioc_barrier_wait(b, AIOC_FOREVER), 2);
  CHECK_RC(join(ta), 0);
  CHECK_RC(join(tp), 0);
  CHECK_RC(join(tq), 0);
  CHECK_EQ(p.rc[0], 0);
  CHECK_EQ(q.rc[0], 1);

  /* A cancelled waiter leaves the round too. */
  bw c = {.b = b, .timeout = AIOC_FOREVER, .rounds = 1};
  aioc_task *tc = spawn(barrier_worker, &c);
  settle();
  CHECK_EQ(aioc_barrier_n_waiting(b), 1);
  aioc_task_cancel(tc, NULL);
  CHECK_RC(join(tc), 0);
  CHECK_RC(c.rc[0], -ECANCELED);
  CHECK_EQ(aioc_barrier_n_waiting(b), 0);
  aioc_barrier_free(b);
  return 0;
}

TEST(test_barrier) {
  CHECK_RC(run_main(barrier_main, NULL, NULL), 0);
}

static int barrier_abort_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_barrier *b;
  CHECK_RC(aioc_barrier_new(&b, 3), 0);
  bw w[2];
  aioc_task *ts[2];
  for (int i = 0; i < 2; i++) {
    w[i] = (bw){.b = b, .timeout = AIOC_FOREVER, .rounds = 1};
    ts[i] = spawn(barrier_worker, &w[i]);
  }
  settle();
  CHECK_RC(aioc_barrier_abort(b), 0);
  CHECK(aioc_barrier_is_broken(b));
  for (int i = 0; i < 2; i++) {
    CHECK_RC(join(ts[i]), 0);
    CHECK_RC(w[i].rc[0], AIOC_EBROKEN);
  }
  CHECK_RC(aioc_barrier_wait(b, AIOC_FOREVER), AIOC_EBROKEN);
  CHECK_RC(aioc_barrier_wait(b, 0), AIOC_EBROKEN);
  /* reset: usable again. */
  CHECK_RC(aioc_barrier_reset(b), 0);
  CHECK(!aioc_barrier_is_broken(b));
  /* reset with waiters: they fail, the barrier is not broken. */
  for (int i = 0; i < 2; i++) {
    w[i] = (bw){.b = b, .timeout = AIOC_FOREVER, .rounds = 1};
    ts[i] = spawn(barrier_worker, &w[i]);
  }
  settle();
  CHECK_RC(aioc_barrier_reset(b), 0);
  for (int i = 0; i < 2; i++) {
    CHECK_RC(join(ts[i]), 0);
    CHECK_RC(w[i].rc[0], AIOC_EBROKEN);
  }
  CHECK(!aioc_barrier_is_broken(b));
  CHECK_EQ(aioc_barrier_n_waiting(b), 0);
  /* Freed under a waiter. */
  w[0] = (bw){.b = b, .timeout = AIOC_FOREVER, .rounds = 1};
  ts[0] = spawn(barrier_worker, &w[0]);
  settle();
  aioc_barrier_free(b);
  CHECK_RC(join(ts[0]), 0);
  CHECK_RC(w[0].rc[0], -ECANCELED);
  return 0;
}

TEST(test_barrier_abort_reset) {
  aioc_barrier *b;
  CHECK_RC(aioc_barrier_new(&b, 0), -EINVAL);
  CHECK_RC(aioc_barrier_new(&b, -3), -EINVAL);
  CHECK_RC(aioc_barrier_new(NULL, 2), -EINVAL);
  CHECK_RC(aioc_barrier_wait(NULL, 1), -EINVAL);
  CHECK_RC(aioc_barrier_abort(NULL), -EINVAL);
  CHECK_RC(aioc_barrier_reset(NULL), -EINVAL);
  CHECK_RC(aioc_barrier_parties(NULL), -EINVAL);
  CHECK_RC(aioc_barrier_n_waiting(NULL), -EINVAL);
  CHECK_RC(aioc_barrier_new(&b, 1), 0);
  CHECK_EQ(aioc_barrier_wait(b, AIOC_FOREVER), 0); /* one party: no wait */
  CHECK_EQ(aioc_barrier_wait(b, 0), 0);
  aioc_barrier_free(b);
  CHECK_RC(aioc_barrier_new(&b, 2), 0);
  CHECK_RC(aioc_barrier_wait(b, AIOC_FOREVER), AIOC_ENOTASK);
  CHECK_RC(aioc_barrier_wait(b, -1), -EINVAL);
  aioc_barrier_free(b);
  aioc_barrier_free(NULL);
  CHECK_RC(run_main(barrier_abort_main, NULL, NULL), 0);
}

CHECK_MAIN(120)

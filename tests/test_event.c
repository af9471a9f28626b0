/* Event: set, clear, waiters woken, timeouts.
 *
 * Every primitive is checked for fairness order, for timeouts that leave
 * its state untouched, and for cancellation safety (a hand-off followed by
 * a cancel in the same iteration: the waiter keeps what it got; a cancel
 * followed by a hand-off: the next waiter, or the primitive, gets it). */
#include "sync_common.h"

/* ---- Event --------------------------------------------------------------- */

typedef struct ew {
  aioc_event *e;
  int id;
  double timeout;
  int rc;
  double at;
} ew;

static int event_waiter(void *arg, void **res) {
  (void)res;
  ew *w = arg;
  w->rc = aioc_event_wait(w->e, w->timeout);
  w->at = aioc_time();
  if (w->rc == 0) log_add(w->id);
  return 0;
}

static int event_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  log_reset();
  aioc_event *e;
  CHECK_RC(aioc_event_new(&e), 0);
  CHECK(!aioc_event_is_set(e));
  ew w[4];
  aioc_task *ts[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (ew){.e = e, .id = i, .timeout = i == 3 ? 1.0 : AIOC_FOREVER};
    ts[i] = spawn(event_waiter, &w[i]);
  }
  CHECK_RC(aioc_sleep(2.0), 0);
  CHECK_RC(w[3].rc, -ETIMEDOUT);
  CHECK_DBL(w[3].at, 1.0, EPS);
  /* The three left are woken; clearing at once does not undo that. */
  CHECK_EQ(aioc_event_set(e), 3);
  CHECK(aioc_event_is_set(e));
  CHECK_RC(aioc_event_clear(e), 0);
  CHECK(!aioc_event_is_set(e));
  for (int i = 0; i < 4; i++)
    CHECK_RC(join(ts[i]), 0);
  for (int i = 0; i < 3; i++) {
    CHECK_RC(w[i].rc, 0);
    CHECK_DBL(w[i].at, 2.0, EPS);
  }
  CHECK_LOG(0, 1, 2);
  /* A set event does not wait, even with timeout 0. */
  CHECK_EQ(aioc_event_set(e), 0);
  CHECK_RC(aioc_event_wait(e, 0), 0);
  CHECK_RC(aioc_event_clear(e), 0);
  CHECK_RC(aioc_event_wait(e, 0), -ETIMEDOUT);
  /* Cancelled waiter. */
  ew c = {.e = e, .timeout = AIOC_FOREVER};
  aioc_task *tc = spawn(event_waiter, &c);
  settle();
  aioc_task_cancel(tc, NULL);
  CHECK_RC(join(tc), 0);
  CHECK_RC(c.rc, -ECANCELED);
  CHECK_EQ(aioc_event_set(e), 0); /* nobody left waiting */
  /* Freed under a waiter. */
  CHECK_RC(aioc_event_clear(e), 0);
  ew f = {.e = e, .timeout = AIOC_FOREVER};
  aioc_task *tf = spawn(event_waiter, &f);
  settle();
  aioc_event_free(e);
  CHECK_RC(join(tf), 0);
  CHECK_RC(f.rc, -ECANCELED);
  return 0;
}

TEST(test_event) {
  aioc_event *e;
  CHECK_RC(aioc_event_new(NULL), -EINVAL);
  CHECK_RC(aioc_event_new(&e), 0);
  CHECK_RC(aioc_event_wait(e, AIOC_FOREVER), AIOC_ENOTASK);
  CHECK_RC(aioc_event_wait(e, -1), -EINVAL);
  CHECK_RC(aioc_event_wait(NULL, 1), -EINVAL);
  CHECK_RC(aioc_event_set(NULL), -EINVAL);
  CHECK_RC(aioc_event_clear(NULL), -EINVAL);
  CHECK_EQ(aioc_event_set(e), 0);
  CHECK_RC(aioc_event_wait(e, AIOC_FOREVER), 0); /* set: no task needed */
  aioc_event_free(e);
  CHECK_RC(run_main(event_main, NULL, NULL), 0);
}

CHECK_MAIN(120)

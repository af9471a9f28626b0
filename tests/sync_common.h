/* Helpers shared by the tests of the synchronization primitives. */
#ifndef AIOC_TEST_SYNC_COMMON_H
#define AIOC_TEST_SYNC_COMMON_H
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "check.h"

#define EPS 1e-6

static inline aioc_task *spawn(aioc_fn fn, void *arg) {
  aioc_task *t = NULL;
  CHECK_RC(aioc_spawn(&t, fn, arg), 0);
  return t;
}

/* Awaits and releases t; returns its code. */
static inline int join(aioc_task *t) {
  int rc = aioc_task_await(t, NULL);
  aioc_task_unref(t);
  return rc;
}

/* Lets every ready task run until all of them wait (without moving the
 * virtual clock). */
static inline void settle(void) {
  for (int i = 0; i < 8; i++)
    IGNORE_RC(aioc_sleep(0));
}

/* Does the current task own l? */
static inline int owns(aioc_lock *l) {
  return aioc_lock_try_acquire(l) == -EDEADLK;
}

/* An item destructor that counts. */
__attribute__((unused)) static int g_freed;
static inline void count_free(void *p) {
  g_freed++;
  free(p);
}

#endif

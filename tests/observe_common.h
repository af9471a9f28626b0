/* What the tests of the observation layer share: a loop made with the
 * given options and made current, and a function run on it as a task. */
#ifndef AIOC_TEST_OBSERVE_COMMON_H
#define AIOC_TEST_OBSERVE_COMMON_H

#include "check.h"

/* A new loop with options o, made current (exits 2 if it cannot be
 * made). */
static inline aioc_loop *loop_with(aioc_loop_options o) {
  aioc_loop *loop = NULL;
  if (aioc_loop_new(&loop, &o) != 0) exit(2);
  aioc_loop_set_current(loop);
  return loop;
}

/* Runs fn(arg) as a task named "main" on loop until it ends; its code. */
static inline int run_on(aioc_loop *loop, aioc_fn fn, void *arg) {
  aioc_task *t = NULL;
  aioc_task_options o = {.name = "main"};
  CHECK_RC(aioc_spawn_ex(&t, loop, fn, arg, &o), 0);
  CHECK_RC(aioc_loop_run_until_complete(loop, aioc_task_future(t)), 0);
  int rc = aioc_future_result(aioc_task_future(t), NULL);
  aioc_task_unref(t);
  return rc;
}

#endif

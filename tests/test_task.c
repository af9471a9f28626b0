/* Futures and tasks: spawning, awaiting, results and errors, cancellation,
 * shields, deadline scopes, diagnostics, block_on, aioc_run. */
#include "check.h"

static int ret_index(void *arg, void **result) {
  *result = arg;
  return 0;
}

static int spawn_many(void *arg, void **result) {
  int n = (int)AIOC_TO_INT(arg);
  aioc_task **ts = calloc((size_t)n, sizeof *ts);
  for (int i = 0; i < n; i++) CHECK_RC(aioc_spawn(&ts[i], ret_index, AIOC_INT(i)), 0);
  long sum = 0;
  for (int i = 0; i < n; i++) {
    void *r;
    CHECK_RC(aioc_task_await(ts[i], &r), 0);
    sum += AIOC_TO_INT(r);
    aioc_task_release(ts[i]);
  }
  free(ts);
  *result = AIOC_INT(sum);
  return 0;
}

static void test_spawn_await(void) {
  void *r;
  CHECK_RC(aioc_run(spawn_many, AIOC_INT(1000), &r), 0);
  CHECK_EQ(AIOC_TO_INT(r), 999 * 1000 / 2);
}

int main(void) {
  watchdog(120);
  RUN(test_spawn_await);
  return check_report();
}

/* The loop's clock: monotonic time cached per iteration, or virtual
 * time, and deadlines in nanoseconds. */
#include <math.h>
#include <time.h>

#include "loop.h"

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t aioc__now(aioc_loop *loop) {
  /* Cached only within an iteration: outside a run, time is read fresh. */
  if ((!loop->now_valid || !loop->running) && !loop->virtual_clock) {
    loop->now = mono_ns();
    loop->now_valid = true;
  }
  return loop->now;
}

int64_t aioc__deadline_at(double when) {
  if (!(when < 9.2e9)) return AIOC__NEVER; /* also inf */
  if (when < -9.2e9) return INT64_MIN + 1;
  return (int64_t)llround(when * 1e9);
}

int64_t aioc__deadline_after(aioc_loop *loop, double seconds) {
  /* A relative deadline counts from now, not from the start of a long
   * iteration: sleep(1) must not end early. The cache is refreshed. */
  if (!loop->virtual_clock) {
    loop->now = mono_ns();
    loop->now_valid = true;
  }
  int64_t now = loop->now;
  if (!(seconds < 9.2e9)) return AIOC__NEVER;
  int64_t d = (int64_t)(seconds * 1e9 + 0.5); /* nearest ns */
  if (d > AIOC__NEVER - now) return AIOC__NEVER;
  return now + d;
}

double aioc_loop_time(aioc_loop *loop) {
  if (!loop || !AIOC__LOOP_OK(loop, "aioc_loop_time")) return 0;
  return (double)aioc__now(loop) / 1e9;
}

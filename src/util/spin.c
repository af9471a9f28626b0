/* Bounded spin-waits, for a thread that expects another one to hand it
 * something within microseconds (an executor's thread waiting for jobs,
 * a loop waiting for their results): cheaper than going to sleep and
 * being woken, as long as the wait is short. */
#include <sched.h>

#include "common.h"

/* Past this, each look at the clock yields the CPU as well: on a busy
 * machine the thread we wait for may be queued behind us on our CPU. */
#define YIELD_AFTER_NS 2000

bool aioc__spin_wait(bool (*done)(void *arg), void *arg, int64_t limit_ns) {
  int64_t t0 = aioc__clock_ns();
  for (unsigned i = 1;; i++) {
    if (done(arg)) return true;
    aioc__cpu_relax();
    if ((i & 63) == 0) {
      int64_t spent = aioc__clock_ns() - t0;
      if (spent > limit_ns) return done(arg);
      if (spent > YIELD_AFTER_NS) sched_yield();
    }
  }
}

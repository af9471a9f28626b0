/* aioc/observe.h: seeing inside a running program.
 *
 * Loop and task metrics, the dump of a loop's tasks (what each waits on,
 * where, for how long, who spawned it, who awaits it), stack use per spawn
 * site, and a flight recorder of the loop's last events. What costs time
 * on the hot paths is off unless a loop asks for it with the observe
 * flags of aioc_loop_options (or the AIOC_OBSERVE environment variable);
 * the loop's counters are always kept.
 */
#ifndef AIOC_OBSERVE_H
#define AIOC_OBSERVE_H

#include <stdio.h>

#include "task.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The observe flags of aioc_loop_options.observe (or AIOC_OBSERVE, a
 * comma-separated list of "timing", "spawns", "stacks", "events" or
 * "all", read by aioc_loop_new() when the options give no flag). */
typedef enum aioc_observe_flags {
  /* Per-task run and ready times and the loop's time in tasks and in the
   * poller: two reads of the monotonic clock per task switch. */
  AIOC_OBSERVE_TIMING = 1,
  /* Each task's spawner and spawn site: a small record allocated per
   * spawn. */
  AIOC_OBSERVE_SPAWNS = 2,
  /* Each task's stack high-water mark when it ends, per spawn site, with
   * a report for a task that used more than 75% of its stack (implies
   * AIOC_OBSERVE_SPAWNS). */
  AIOC_OBSERVE_STACKS = 4,
  /* The flight recorder: the loop's last events in a ring. */
  AIOC_OBSERVE_EVENTS = 8,
  AIOC_OBSERVE_ALL = 15
} aioc_observe_flags;

/* ---- metrics ---------------------------------------------------------- */

/* A loop's metrics since it was created. Times are in seconds. */
typedef struct aioc_loop_metrics {
  uint64_t iterations;   /* batches of ready items run */
  size_t ready;          /* items in the ready queue now */
  uint64_t timers_fired; /* timers that fired (timeouts, sleeps, calls) */
  double lag_max;        /* the latest a timer fired after its deadline */
  double lag_total;      /* the sum of those delays (lag_total /
                            timers_fired is the mean loop lag) */
  /* With AIOC_OBSERVE_TIMING only, 0 otherwise: */
  uint64_t task_runs; /* times a task was resumed (or started) */
  double task_time;   /* time spent running tasks */
  double poll_time;   /* time spent in the poller, waiting included */
} aioc_loop_metrics;

/* Fills *out with the loop's metrics (loop NULL: the thread's current
 * loop). Loop lag is measured against the loop's cached clock, so a
 * timer is late by at least how long the tasks before it ran; under the
 * virtual clock it is always 0. Returns 0, or -EINVAL (out NULL, or no
 * loop). */
AIOC_API int aioc_loop_get_metrics(aioc_loop *loop, aioc_loop_metrics *out);

/* A task's metrics (AIOC_OBSERVE_TIMING; stack use: AIOC_OBSERVE_STACKS).
 * Times in seconds, measured with the monotonic clock (the virtual
 * clock does not move while tasks run). */
typedef struct aioc_task_metrics {
  uint64_t runs;     /* times it was started or resumed */
  double run_time;   /* total time it ran */
  double run_max;    /* its longest single run (start or resume to the
                        next suspension or its end) */
  double ready_time; /* time it spent ready (spawned or woken) but not
                        yet running */
  size_t stack_used; /* high-water mark of its stack in bytes (to the
                        page), once it has ended; 0 before */
  size_t stack_size; /* the size of that stack, guard excluded */
} aioc_task_metrics;

/* Fills *out with t's metrics, while t lives and after it has ended.
 * Returns 0; -ENODATA if t's loop did not observe its timing when t was
 * spawned (*out zeroed); -EINVAL for NULL. */
AIOC_API int aioc_task_get_metrics(const aioc_task *t, aioc_task_metrics *out);

#ifdef __cplusplus
}
#endif
#endif /* AIOC_OBSERVE_H */

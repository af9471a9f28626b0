/* Loop and task metrics (aioc_loop_get_metrics, aioc_task_get_metrics):
 * the loop keeps its counters always, the task layer its timings when
 * the loop observes them (AIOC_OBSERVE_TIMING); this file reads them. */
#include <string.h>

#include "../task/task.h"

static double secs(int64_t ns) { return (double)ns / 1e9; }

int aioc_loop_get_metrics(aioc_loop *loop, aioc_loop_metrics *out) {
  if (loop && !AIOC__LOOP_OK(loop, "aioc_loop_get_metrics")) return -EINVAL;
  if (!loop) loop = aioc__running ? aioc__running : aioc__thread_current;
  if (!out || !loop) return -EINVAL;
  const aioc__loop_counters *m = &loop->m;
  *out = (aioc_loop_metrics){.iterations = m->iterations,
                             .ready = loop->ready.len,
                             .timers_fired = m->timers_fired,
                             .lag_max = secs(m->lag_max),
                             .lag_total = secs(m->lag_total),
                             .task_runs = m->task_runs,
                             .task_time = secs(m->task_ns),
                             .poll_time = secs(m->poll_ns)};
  return 0;
}

int aioc_task_get_metrics(const aioc_task *t, aioc_task_metrics *out) {
  if (out) memset(out, 0, sizeof *out);
  if (!t || !out || !AIOC__TASK_OK(t, "aioc_task_get_metrics"))
    return -EINVAL;
  const aioc__tobs *o = t->f.ext ? t->f.ext->obs : NULL;
  if (!o) return -ENODATA;
  int64_t run = o->run_ns, max = o->run_max;
  if (o->run_start) {
    /* Running now: the run so far counts. */
    int64_t d = aioc__clock_ns() - o->run_start;
    run += d;
    if (d > max) max = d;
  }
  *out = (aioc_task_metrics){.runs = o->runs,
                             .run_time = secs(run),
                             .run_max = secs(max),
                             .ready_time = secs(o->ready_ns),
                             .stack_used = o->stack_used,
                             .stack_size = o->stack_size};
  return 0;
}

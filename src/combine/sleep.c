/* sleep and wait_for. */
#include <math.h>

#include "../task/task.h"

int aioc_sleep(double seconds) {
  if (isnan(seconds) || seconds < 0) return -EINVAL;
  aioc_task *t = aioc__current();
  if (!t) return AIOC_ENOTASK;
  int rc = aioc__task_check(t);
  if (rc) return rc;
  if (seconds == 0) {
    aioc__task_yield(t);
    return 0;
  }
  aioc__twait tw;
  aioc__twait_init(&tw, t, NULL, 0); /* the timer ends it well */
  rc = aioc__twait_arm(&tw, t->f.loop,
                       aioc__deadline_after(t->f.loop, seconds));
  if (rc < 0) return rc;
  return aioc__twait_suspend(&tw);
}

int aioc_wait_for(aioc_future *f, void **result, double timeout) {
  if (result) *result = NULL;
  if (!f || isnan(timeout) || timeout < 0 ||
      !AIOC__FUTURE_OK(f, "aioc_wait_for"))
    return -EINVAL;
  aioc_task *t = aioc__current();
  if (!t) return AIOC_ENOTASK;
  aioc_scope *s;
  int rc = aioc_timeout_enter(&s, timeout);
  if (rc < 0) return rc;
  rc = aioc_await(f, result);
  int src = aioc_scope_exit(s);
  aioc_scope_free(s);
  if ((rc == -ETIMEDOUT || rc == -ECANCELED) &&
      f->state == AIOC_FUTURE_PENDING) {
    /* Our deadline, an outer one, or the waiting task's cancellation: f
     * is cancelled and waited for (as asyncio). */
    aioc_future_ref(f);
    aioc_future_cancel(f, rc == -ECANCELED ? "wait_for cancelled"
                                           : "wait_for timed out");
    aioc__await_uninterruptible(t, f);
    if (rc == -ETIMEDOUT && src == -ETIMEDOUT) {
      /* A task may finish despite the cancellation: nothing is lost. */
      rc = f->state == AIOC_FUTURE_CANCELLED ? -ETIMEDOUT
                                             : aioc__future_take(f, result, t);
    }
    aioc_future_unref(f);
  }
  return rc;
}

/* A place where one task, or plain code running the loop, waits for a
 * condition, with an optional timeout (see task.h). */
#include "task.h"

static void wp_fire(aioc_loop *loop, aioc__timer *tm) {
  (void)loop;
  aioc__waitpoint *wp = aioc__container_of(tm, aioc__waitpoint, tm);
  if (wp->waiter)
    aioc__task_interrupt(wp->waiter, -ETIMEDOUT);
  else
    wp->timed_out = true;
}

static void wp_unhook(aioc_task *t, aioc__wait *w) {
  aioc__waitpoint *wp = aioc__container_of(w, aioc__waitpoint, w);
  if (wp->tm.idx != AIOC__NOTIMER) aioc__timer_disarm(t->f.loop, &wp->tm);
}

void aioc__waitpoint_init(aioc__waitpoint *wp, aioc_loop *loop) {
  wp->w.unhook = wp_unhook;
  aioc__timer_init(&wp->tm, wp_fire);
  wp->loop = loop;
  wp->waiter = NULL;
  wp->waiting = wp->timed_out = false;
  wp->cond = NULL;
  wp->arg = NULL;
}

static bool plain_done(void *arg) {
  aioc__waitpoint *wp = arg;
  return wp->cond(wp->arg) || wp->timed_out;
}

int aioc__waitpoint_wait(aioc__waitpoint *wp, bool (*cond)(void *), void *arg,
                         double timeout, bool uninterruptible) {
  if (cond(arg)) return 0;
  if (wp->waiting) return -EBUSY;
  aioc_task *c = aioc__current();
  if (!c && aioc__running) return AIOC_ERUNNING;
  /* No timer, no wait: a wait that could not be bounded must not wait
   * without limit. */
  if (timeout != AIOC_FOREVER &&
      aioc__timer_arm(wp->loop, &wp->tm,
                      aioc__deadline_after(wp->loop, timeout)) < 0)
    return -ENOMEM;
  wp->cond = cond;
  wp->arg = arg;
  wp->waiting = true;
  wp->timed_out = false;
  int rc = 0;
  if (c) {
    wp->waiter = c;
    if (uninterruptible) c->r->nocancel++;
    while (!cond(arg)) {
      rc = uninterruptible ? 0 : aioc__task_check(c);
      if (rc == 0) rc = aioc__task_suspend(c, &wp->w);
      if (rc < 0) break;
    }
    if (uninterruptible) c->r->nocancel--;
    wp->waiter = NULL;
  } else {
    rc = aioc__loop_run(wp->loop, plain_done, wp);
    if (rc == 0 && !cond(arg)) rc = -ETIMEDOUT;
  }
  if (wp->tm.idx != AIOC__NOTIMER) aioc__timer_disarm(wp->loop, &wp->tm);
  wp->waiting = false;
  return rc;
}

void aioc__waitpoint_notify(aioc__waitpoint *wp) {
  aioc_task *t = wp->waiter;
  if (t && aioc__task_waits_on(t, &wp->w) && wp->cond(wp->arg)) {
    if (wp->tm.idx != AIOC__NOTIMER) aioc__timer_disarm(wp->loop, &wp->tm);
    aioc__task_wake(t, 0);
  }
}

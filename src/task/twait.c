/* The one wait with an optional timer (see task.h), and the waitpoint
 * built on it: a place where one task, or plain code running the loop,
 * waits for a condition. */
#include "task.h"

void aioc__twait_fire(aioc_loop *loop, aioc__timer *tm) {
  (void)loop;
  aioc__twait *tw = aioc__container_of(tm, aioc__twait, tm);
  tw->expired = true;
  if (tw->t) {
    /* The unhook detaches it; the timer has fired already. */
    if (aioc__task_waits_on(tw->t, &tw->w))
      aioc__task_interrupt(tw->t, tw->expiry);
  } else if (tw->detach) {
    tw->detach(tw); /* plain code: its loop run sees expired */
  }
}

void aioc__twait_unhook(aioc_task *t, aioc__wait *w) {
  aioc__twait *tw = aioc__container_of(w, aioc__twait, w);
  if (tw->detach) tw->detach(tw);
  aioc__twait_disarm(tw, t->f.loop);
}

int aioc__twait_arm(aioc__twait *tw, aioc_loop *loop, int64_t deadline) {
  if (deadline == AIOC__NEVER) return 0;
  return aioc__timer_arm(loop, &tw->tm, deadline) < 0 ? -ENOMEM : 0;
}

void aioc__twait_wake(aioc__twait *tw, int rc) {
  if (tw->detach) tw->detach(tw);
  aioc__twait_disarm(tw, tw->t->f.loop);
  aioc__task_wake(tw->t, rc);
}

/* ---- a task parked on a list ---- */

static void lwait_detach(aioc__twait *tw) {
  aioc__list_del(&aioc__container_of(tw, aioc__lwait, tw)->link);
}

int aioc__lwait_park(aioc__list *l, aioc_task *t, int64_t deadline) {
  aioc__lwait w;
  aioc__twait_init(&w.tw, t, lwait_detach, -ETIMEDOUT);
  aioc__list_init(&w.link);
  int rc = aioc__task_check(t);
  if (rc) return rc;
  if (deadline != AIOC__NEVER) {
    if (deadline <= aioc__now(t->f.loop)) return -ETIMEDOUT;
    if ((rc = aioc__twait_arm(&w.tw, t->f.loop, deadline)) < 0) return rc;
  }
  aioc__list_push_back(l, &w.link);
  return aioc__twait_suspend(&w.tw);
}

void aioc__lwait_wake_all(aioc__list *l, int rc) {
  aioc__list *n;
  while ((n = aioc__list_first(l)) != NULL)
    aioc__twait_wake(&aioc__container_of(n, aioc__lwait, link)->tw, rc);
}

/* ---- the waitpoint ---- */

void aioc__waitpoint_init(aioc__waitpoint *wp, aioc_loop *loop) {
  aioc__twait_init(&wp->tw, NULL, NULL, -ETIMEDOUT);
  wp->loop = loop;
  wp->waiting = false;
  wp->cond = NULL;
  wp->arg = NULL;
}

static bool plain_done(void *arg) {
  aioc__waitpoint *wp = arg;
  return wp->cond(wp->arg) || wp->tw.expired;
}

int aioc__waitpoint_wait(aioc__waitpoint *wp, bool (*cond)(void *), void *arg,
                         double timeout, bool uninterruptible) {
  if (cond(arg)) return 0;
  if (wp->waiting) return -EBUSY;
  aioc_task *c = aioc__current();
  if (!c && aioc__running) return AIOC_ERUNNING;
  aioc__twait_init(&wp->tw, c, NULL, -ETIMEDOUT);
  /* No timer, no wait: a wait that could not be bounded must not wait
   * without limit. */
  int rc = aioc__twait_arm(&wp->tw, wp->loop,
                           timeout == AIOC_FOREVER
                               ? AIOC__NEVER
                               : aioc__deadline_after(wp->loop, timeout));
  if (rc < 0) return rc;
  wp->cond = cond;
  wp->arg = arg;
  wp->waiting = true;
  if (c) {
    if (uninterruptible) c->r->nocancel++;
    while (!cond(arg)) {
      rc = uninterruptible ? 0 : aioc__task_check(c);
      if (rc == 0) rc = aioc__twait_suspend(&wp->tw);
      if (rc < 0) break;
    }
    if (uninterruptible) c->r->nocancel--;
  } else {
    rc = aioc__loop_run(wp->loop, plain_done, wp);
    if (rc == 0 && !cond(arg)) rc = -ETIMEDOUT;
  }
  aioc__twait_disarm(&wp->tw, wp->loop);
  wp->tw.t = NULL;
  wp->waiting = false;
  return rc;
}

void aioc__waitpoint_notify(aioc__waitpoint *wp) {
  if (aioc__twait_is_parked(&wp->tw) && wp->cond(wp->arg))
    aioc__twait_wake(&wp->tw, 0);
}

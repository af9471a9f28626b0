/* The waiter queue shared by Lock, Event, Condition, Semaphore, Barrier
 * and Queue (see sync.h for the hand-off rules). */
#include "sync.h"

/* The per-call timeout: the task is interrupted, which unlinks the node
 * through the unhook exactly as a cancellation would. */
static void swait_fire(aioc_loop *loop, aioc__timer *tm) {
  (void)loop;
  aioc__swait *s = aioc__container_of(tm, aioc__swait, tm);
  if (aioc__task_waits_on(s->t, &s->w)) aioc__task_interrupt(s->t, -ETIMEDOUT);
}

static void swait_unhook(aioc_task *t, aioc__wait *w) {
  aioc__swait *s = aioc__container_of(w, aioc__swait, w);
  aioc__wlist_del(s);
  aioc__timer_disarm(t->f.loop, &s->tm);
}

int aioc__sync_enqueue(aioc_task *t, aioc__swait *s, aioc__wlist *list,
                       int64_t deadline) {
  s->gone = false;
  s->list = NULL;
  s->t = t;
  s->w.unhook = swait_unhook;
  aioc__timer_init(&s->tm, swait_fire);
  int rc = aioc__task_check(t);
  if (rc) return rc;
  if (deadline != AIOC__NEVER) {
    if (deadline <= aioc__now(t->f.loop)) return -ETIMEDOUT;
    rc = aioc__timer_arm(t->f.loop, &s->tm, deadline);
    if (rc < 0) return rc;
  }
  aioc__list_push_back(&list->head, &s->link);
  list->n++;
  s->list = list;
  return 0;
}

size_t aioc__sync_deliver_all(aioc__wlist *l, int rc) {
  size_t n = 0;
  aioc__swait *s;
  while ((s = aioc__wlist_first(l))) {
    aioc__sync_deliver(s, rc);
    n++;
  }
  return n;
}

void aioc__sync_destroy_list(aioc__wlist *l) {
  aioc__swait *s;
  while ((s = aioc__wlist_first(l))) {
    s->gone = true;
    aioc__sync_deliver(s, -ECANCELED);
  }
}

int aioc__sync_task(aioc_loop **loop, aioc_task **t) {
  aioc_task *cur = aioc__current();
  *t = cur;
  if (!cur) return AIOC_ENOTASK;
  if (aioc__unlikely(*loop != cur->f.loop)) {
    /* Bound to the loop of its first user, as asyncio's primitives. */
    if (*loop) return -EINVAL;
    *loop = cur->f.loop;
  }
  return 0;
}

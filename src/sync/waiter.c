/* The waiter queue shared by Lock, Event, Condition, Semaphore, Barrier
 * and Queue (see sync.h for the hand-off rules). */
#include "sync.h"

/* Whatever ends the wait (a delivery, the per-call timer, cancellation, a
 * deadline, the loop's close), the node leaves its list first. */
static void swait_detach(aioc__twait *tw) {
  aioc__wlist_del(aioc__container_of(tw, aioc__swait, tw));
}

int aioc__sync_enqueue(aioc_task *t, aioc__swait *s, aioc__wlist *list,
                       int64_t deadline) {
  s->gone = false;
  s->list = NULL;
  aioc__twait_init(&s->tw, t, swait_detach, -ETIMEDOUT);
  int rc = aioc__task_check(t);
  if (rc) return rc;
  if (deadline != AIOC__NEVER) {
    if (deadline <= aioc__now(t->f.loop)) return -ETIMEDOUT;
    rc = aioc__twait_arm(&s->tw, t->f.loop, deadline);
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

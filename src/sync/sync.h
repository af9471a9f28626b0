/* Synchronization internals: the waiter queue every loop-bound primitive
 * is built on, and the lock, which the condition shares.
 *
 * A waiter is a node on the waiting task's stack, queued on one of the
 * primitive's lists. It leaves the list in exactly one of two ways:
 *   - the primitive delivers to it (aioc__sync_deliver): it is unlinked,
 *     its timer stopped and its task woken with the code given. Anything
 *     handed over (lock ownership, an item, an index) is stored in the
 *     node or the primitive before the wake, and the task no longer waits
 *     on anything, so a later cancel cannot undo the hand-off;
 *   - the task is interrupted (cancellation, a deadline, its own timer,
 *     its loop closing): the task layer calls the unhook, which unlinks it
 *     before anyone could deliver to it.
 * So a waiter that returns -ECANCELED / -ETIMEDOUT was handed nothing. */
#ifndef AIOC_SYNC_INTERNAL_H
#define AIOC_SYNC_INTERNAL_H

#include "../task/task.h"

/* A FIFO of waiters, with its length. */
typedef struct aioc__wlist {
  aioc__list head;
  size_t n;
} aioc__wlist;

typedef struct aioc__swait {
  aioc__twait tw;       /* the task, and the per-call timeout */
  aioc__list link;
  aioc__wlist *list;    /* the list it waits on; NULL once it left */
  void *item;           /* queues: the item handed to a getter / offered */
  intptr_t aux;         /* barrier: the arrival index */
  bool gone;            /* the primitive was freed under it */
} aioc__swait;

static inline void aioc__wlist_init(aioc__wlist *l) {
  aioc__list_init(&l->head);
  l->n = 0;
}

static inline aioc__swait *aioc__wlist_first(aioc__wlist *l) {
  return l->n ? aioc__container_of(l->head.next, aioc__swait, link) : NULL;
}

static inline void aioc__wlist_del(aioc__swait *s) {
  if (!s->list) return;
  aioc__list_del(&s->link);
  s->list->n--;
  s->list = NULL;
}

/* Wakes the waiter s with rc (0: what it waited for was handed over).
 * It leaves its list first. */
static inline void aioc__sync_deliver(aioc__swait *s, int rc) {
  aioc__twait_wake(&s->tw, rc); /* detach: aioc__wlist_del */
}

/* Delivers rc to every waiter of l (in order); returns how many. */
AIOC_HIDDEN size_t aioc__sync_deliver_all(aioc__wlist *l, int rc);

/* Delivers -ECANCELED to every waiter of l, marking them gone: the
 * primitive is about to be freed. */
AIOC_HIDDEN void aioc__sync_destroy_list(aioc__wlist *l);

/* Checks that timeout is >= 0 and not NaN. */
static inline bool aioc__sync_bad_timeout(double timeout) {
  return !(timeout >= 0);
}

/* Gets the current task for a wait on a primitive bound to *loop (binding
 * it to the task's loop on first use). Returns 0, AIOC_ENOTASK or -EINVAL
 * (a task of another loop). */
AIOC_HIDDEN int aioc__sync_task(aioc_loop **loop, aioc_task **t);

/* The deadline in loop ns of a wait of timeout seconds starting now
 * (AIOC__NEVER for AIOC_FOREVER). */
static inline int64_t aioc__sync_deadline(aioc_task *t, double timeout) {
  return timeout == AIOC_FOREVER ? AIOC__NEVER
                                 : aioc__deadline_after(t->f.loop, timeout);
}

/* Queues the current task t on list as s (filled in here; s->item and
 * s->aux as the caller set them) with a timer for deadline (loop ns,
 * AIOC__NEVER: none). Returns 0 when queued (the caller then suspends with
 * aioc__twait_suspend(&s->tw)), or, queuing nothing: -ECANCELED /
 * -ETIMEDOUT (already cancelled, a deadline in scope passed, or deadline
 * not in the future), -ENOMEM (no room for the timer). s->gone is false
 * either way. */
AIOC_HIDDEN int aioc__sync_enqueue(aioc_task *t, aioc__swait *s,
                                   aioc__wlist *list, int64_t deadline);

/* aioc__sync_enqueue() then suspend: returns the code the task was woken
 * with (what the deliverer gave, -ETIMEDOUT for the timer or a deadline in
 * scope, -ECANCELED) or the early code of aioc__sync_enqueue(). */
static inline int aioc__sync_park_until(aioc_task *t, aioc__swait *s,
                                        aioc__wlist *list, int64_t deadline) {
  int rc = aioc__sync_enqueue(t, s, list, deadline);
  return rc ? rc : aioc__twait_suspend(&s->tw);
}

/* The same with a timeout in seconds (>= 0, AIOC_FOREVER: none). */
static inline int aioc__sync_park(aioc_task *t, aioc__swait *s,
                                  aioc__wlist *list, double timeout) {
  return aioc__sync_park_until(t, s, list, aioc__sync_deadline(t, timeout));
}

/* Allocates room for n items (FIFO or LIFO queue, up to its capacity), so
 * that putting up to n items never fails for lack of memory. Returns 0,
 * -ENOMEM or -EINVAL (a priority queue). */
AIOC_HIDDEN int aioc__queue_reserve(aioc_queue *q, size_t n);

/* ---- the lock (shared with the condition) ---- */

struct aioc_lock {
  aioc__wlist waiters;
  aioc_task *owner; /* NULL when free */
  aioc_loop *loop;  /* bound on first wait */
};

/* Acquires l for t (a task of l's loop), waiting at most timeout seconds.
 * The condition re-acquires with the task marked uninterruptible. Returns
 * as aioc_lock_acquire(); *gone (may be NULL) tells whether l was freed
 * during the wait. */
AIOC_HIDDEN int aioc__lock_acquire(aioc_lock *l, aioc_task *t, double timeout,
                                   bool *gone);

/* Releases l (owned by the caller): ownership goes to the first waiter. */
AIOC_HIDDEN void aioc__lock_release(aioc_lock *l);

#endif

/* aioc/sync.h: Lock, Event, Condition, Semaphore, BoundedSemaphore,
 * Barrier, Queue (FIFO, LIFO, priority) and a thread-safe queue.
 *
 * asyncio's primitives, with three guarantees asyncio lacks:
 *
 *  - Hand-off. A lock, a semaphore unit, a queue item or a notification
 *    goes straight to the first waiter, in arrival order (strictly fair),
 *    and once it has been handed over the wait returns success even if
 *    the waiter is cancelled before it runs again (the cancellation then
 *    shows at its next suspension point). A wait that ends with
 *    -ECANCELED or -ETIMEDOUT was never handed anything: no item is lost,
 *    no lock is left held, no notification is swallowed.
 *  - Every waiting call is a suspension point with a per-call timeout
 *    (AIOC_FOREVER: no limit; 0: do not wait; negative or NaN: -EINVAL)
 *    and honours the task's cancellation and the deadlines in scope:
 *    -ECANCELED when the task is cancelled, -ETIMEDOUT when the timeout
 *    or a deadline in scope passes, -ENOMEM if the timer for the timeout
 *    could not be armed. A call that can complete at once does so without
 *    suspending and without looking at cancellation (as an await of a
 *    finished future).
 *  - Destroying a primitive that has waiters wakes each of them with
 *    -ECANCELED before its memory is freed.
 *
 * Every object here except aioc_tsqueue belongs to the loop of the first
 * task that waits on it; a task of another loop gets -EINVAL. None of them
 * is thread-safe except aioc_tsqueue. Waiting calls that must wait outside
 * a task return AIOC_ENOTASK. */
#ifndef AIOC_SYNC_H
#define AIOC_SYNC_H

#include "gen.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Lock -------------------------------------------------------------
 *
 * A mutual-exclusion lock owned by a task. Unlike asyncio's, it knows its
 * owner: only the owner may release it. It is not reentrant. */

typedef struct aioc_lock aioc_lock;

/* Creates an unlocked lock. Returns 0, -EINVAL (out NULL) or -ENOMEM. */
AIOC_API AIOC_NODISCARD int aioc_lock_new(aioc_lock **out);

/* Frees the lock. Tasks waiting to acquire it are woken with -ECANCELED
 * first. The lock may be held (its owner then must not release it). NULL
 * is harmless. */
AIOC_API void aioc_lock_free(aioc_lock *l);

/* Suspension point: acquires the lock for the current task, waiting at
 * most timeout seconds behind the tasks that asked before it (FIFO).
 * Returns 0 (the task owns the lock), -ETIMEDOUT, -ECANCELED, -EDEADLK
 * (the task already owns it), AIOC_ENOTASK (not in a task), -EINVAL (NULL,
 * bad timeout, a lock bound to another loop), or -ECANCELED when the lock
 * is freed during the wait. */
AIOC_API AIOC_NODISCARD int aioc_lock_acquire(aioc_lock *l, double timeout);

/* Acquires the lock only if it is free and nobody waits for it. Returns 0,
 * -EBUSY (held), -EDEADLK (held by the current task), AIOC_ENOTASK or
 * -EINVAL. */
AIOC_API AIOC_NODISCARD int aioc_lock_try_acquire(aioc_lock *l);

/* Releases the lock; the first waiter, if any, becomes the owner at once.
 * Returns 0, -EPERM if the current task does not own it (also outside a
 * task), or -EINVAL. */
AIOC_API int aioc_lock_release(aioc_lock *l);

/* Non-zero while the lock is held. */
AIOC_API int aioc_lock_is_locked(const aioc_lock *l);

/* ---- Event ------------------------------------------------------------ */

typedef struct aioc_event aioc_event;

/* Creates an event that is not set. Returns 0, -EINVAL or -ENOMEM. */
AIOC_API AIOC_NODISCARD int aioc_event_new(aioc_event **out);

/* Frees the event; its waiters are woken with -ECANCELED first. NULL is
 * harmless. */
AIOC_API void aioc_event_free(aioc_event *e);

/* Sets the event and wakes every task waiting for it (they return 0 even
 * if the event is cleared before they run). Returns the number of tasks
 * woken, or -EINVAL. */
AIOC_API int aioc_event_set(aioc_event *e);

/* Clears the event. Returns 0 or -EINVAL. */
AIOC_API int aioc_event_clear(aioc_event *e);

/* Non-zero while the event is set. */
AIOC_API int aioc_event_is_set(const aioc_event *e);

/* Suspension point: returns 0 at once if the event is set, else waits at
 * most timeout seconds for aioc_event_set(). Returns 0, -ETIMEDOUT,
 * -ECANCELED, AIOC_ENOTASK, -EINVAL. */
AIOC_API AIOC_NODISCARD int aioc_event_wait(aioc_event *e, double timeout);

/* ---- Condition ----------------------------------------------------------
 *
 * A condition variable over an aioc_lock. A notification goes to the
 * waiters in the order they started waiting. A waiter that is cancelled
 * or times out before it is notified leaves the queue at once, so the
 * notification goes to the next one; a waiter that was notified returns 0
 * (its cancellation shows at its next suspension point), so no
 * notification is ever lost and there are no spurious wake-ups. */

typedef struct aioc_condition aioc_condition;

/* Creates a condition over lock, or over a lock of its own if lock is
 * NULL. A lock given here must outlive the condition; several conditions
 * may share one lock. Returns 0, -EINVAL or -ENOMEM. */
AIOC_API AIOC_NODISCARD int aioc_condition_new(aioc_condition **out,
                                               aioc_lock *lock);

/* Frees the condition (and its own lock, not one given to
 * aioc_condition_new()). Waiters are woken with -ECANCELED first; they
 * then hold the lock again if it was given to aioc_condition_new(), not if
 * it was the condition's own. NULL is harmless. */
AIOC_API void aioc_condition_free(aioc_condition *c);

/* The condition's lock. Borrowed. */
AIOC_API aioc_lock *aioc_condition_lock(aioc_condition *c);

/* aioc_lock_acquire() / aioc_lock_release() of the condition's lock. */
AIOC_API AIOC_NODISCARD int aioc_condition_acquire(aioc_condition *c,
                                                   double timeout);
AIOC_API int aioc_condition_release(aioc_condition *c);

/* Suspension point: the current task must hold the lock. Releases it,
 * waits at most timeout seconds for a notification, then acquires the
 * lock again before returning, whatever the outcome (the re-acquisition
 * is not subject to the timeout, cancellation or deadlines). Returns 0
 * (notified), -ETIMEDOUT, -ECANCELED, -EPERM (the lock is not held by the
 * current task: nothing happens), AIOC_ENOTASK, -EINVAL. If the condition
 * is freed during the wait, returns -ECANCELED (see
 * aioc_condition_free() for the lock). */
AIOC_API AIOC_NODISCARD int aioc_condition_wait(aioc_condition *c,
                                                double timeout);

/* A predicate for aioc_condition_wait_for(): non-zero when satisfied. */
typedef int (*aioc_predicate_fn)(void *arg);

/* Suspension point: with the lock held, waits until pred(arg) returns
 * non-zero (checked first, then after each notification, always with the
 * lock held). timeout bounds the whole call. Returns 0 when the predicate
 * holds, or the first failure of aioc_condition_wait() (the lock is held
 * again in every case except a freed condition). */
AIOC_API AIOC_NODISCARD int aioc_condition_wait_for(aioc_condition *c,
                                                    aioc_predicate_fn pred,
                                                    void *arg, double timeout);

/* Wakes up to n (>= 0) waiters, longest-waiting first. The current task
 * must hold the lock. Returns the number woken, -EPERM (lock not held by
 * the current task), or -EINVAL. */
AIOC_API int aioc_condition_notify(aioc_condition *c, int n);

/* Wakes every waiter. Returns as aioc_condition_notify(). */
AIOC_API int aioc_condition_notify_all(aioc_condition *c);

/* ---- Semaphore and BoundedSemaphore ----------------------------------- */

typedef struct aioc_semaphore aioc_semaphore;

/* Creates a semaphore with value (>= 0) units. Returns 0, -EINVAL
 * (negative value) or -ENOMEM. */
AIOC_API AIOC_NODISCARD int aioc_semaphore_new(aioc_semaphore **out, int value);

/* Creates a bounded semaphore: releasing it above its initial value is an
 * error. Returns as aioc_semaphore_new(). */
AIOC_API AIOC_NODISCARD int aioc_bounded_semaphore_new(aioc_semaphore **out,
                                                       int value);

/* Frees the semaphore; waiters are woken with -ECANCELED first. NULL is
 * harmless. */
AIOC_API void aioc_semaphore_free(aioc_semaphore *s);

/* Suspension point: takes one unit, waiting at most timeout seconds behind
 * earlier waiters (FIFO: a unit released while tasks wait goes to the
 * first of them, never to a newcomer). Returns 0, -ETIMEDOUT, -ECANCELED,
 * AIOC_ENOTASK, -EINVAL. */
AIOC_API AIOC_NODISCARD int aioc_semaphore_acquire(aioc_semaphore *s,
                                                   double timeout);

/* Takes one unit if one is free. Returns 0, -EAGAIN or -EINVAL. */
AIOC_API AIOC_NODISCARD int aioc_semaphore_try_acquire(aioc_semaphore *s);

/* Returns one unit (to the first waiter if any). Returns 0, -EOVERFLOW (a
 * bounded semaphore already at its initial value, or INT_MAX units:
 * nothing changes), or -EINVAL. */
AIOC_API int aioc_semaphore_release(aioc_semaphore *s);

/* The number of free units (>= 0), or -EINVAL. */
AIOC_API int aioc_semaphore_value(const aioc_semaphore *s);

/* Non-zero when no unit is free (an acquire would wait). */
AIOC_API int aioc_semaphore_is_locked(const aioc_semaphore *s);

/* ---- Barrier ----------------------------------------------------------
 *
 * parties tasks meet: each aioc_barrier_wait() blocks until parties tasks
 * wait, then all of them go on and the barrier is ready for the next
 * round. A waiter that is cancelled or times out leaves the round (the
 * barrier is not broken; asyncio behaves the same on cancellation). */

typedef struct aioc_barrier aioc_barrier;

/* Creates a barrier for parties (>= 1) tasks. Returns 0, -EINVAL or
 * -ENOMEM. */
AIOC_API AIOC_NODISCARD int aioc_barrier_new(aioc_barrier **out, int parties);

/* Frees the barrier; waiters are woken with -ECANCELED first. NULL is
 * harmless. */
AIOC_API void aioc_barrier_free(aioc_barrier *b);

/* Suspension point: waits at most timeout seconds for the round to fill.
 * Returns the task's arrival index in the round (0 for the first to
 * arrive, parties - 1 for the one that completed the round), AIOC_EBROKEN
 * (the barrier is broken, or was aborted or reset during the wait),
 * -ETIMEDOUT, -ECANCELED, AIOC_ENOTASK, -EINVAL. */
AIOC_API AIOC_NODISCARD int aioc_barrier_wait(aioc_barrier *b, double timeout);

/* Breaks the barrier: current waiters and every later wait return
 * AIOC_EBROKEN until aioc_barrier_reset(). Returns 0 or -EINVAL. */
AIOC_API int aioc_barrier_abort(aioc_barrier *b);

/* Returns the barrier to its empty, unbroken state; current waiters
 * return AIOC_EBROKEN. Returns 0 or -EINVAL. */
AIOC_API int aioc_barrier_reset(aioc_barrier *b);

/* The number of tasks the barrier needs, or -EINVAL. */
AIOC_API int aioc_barrier_parties(const aioc_barrier *b);

/* The number of tasks waiting in the current round, or -EINVAL. */
AIOC_API int aioc_barrier_n_waiting(const aioc_barrier *b);

/* Non-zero while the barrier is broken. */
AIOC_API int aioc_barrier_is_broken(const aioc_barrier *b);

/* ---- Queue ------------------------------------------------------------
 *
 * asyncio.Queue, LifoQueue and PriorityQueue, with Python 3.13's
 * shutdown. Items are void * (integers via AIOC_INT) and belong to the
 * queue between put and get. */

typedef struct aioc_queue aioc_queue;

/* The order in which items come out. */
typedef enum aioc_queue_kind {
  AIOC_QUEUE_FIFO = 0,    /* first in, first out */
  AIOC_QUEUE_LIFO = 1,    /* last in, first out */
  AIOC_QUEUE_PRIORITY = 2 /* smallest first by compare; ties FIFO */
} aioc_queue_kind;

/* Orders two items of a priority queue (the items themselves, not
 * pointers to them): negative if a comes out before b, positive if after,
 * 0 if equal. */
typedef int (*aioc_compare_fn)(const void *a, const void *b);

/* Options for aioc_queue_new(). Zero-initialise. */
typedef struct aioc_queue_options {
  aioc_queue_kind kind;
  /* AIOC_QUEUE_PRIORITY: the order; NULL compares the items as integers
   * (AIOC_TO_INT). Items that compare equal come out in FIFO order. */
  aioc_compare_fn compare;
  /* Destroys items the queue drops: on immediate shutdown and on free.
   * NULL: they are simply forgotten. */
  aioc_free_fn item_free;
} aioc_queue_options;

/* Creates a queue holding at most capacity items (0: unbounded). opts may
 * be NULL (FIFO). Returns 0, -EINVAL (out NULL, negative capacity, bad
 * kind) or -ENOMEM. */
AIOC_API AIOC_NODISCARD int aioc_queue_new(aioc_queue **out, int capacity,
                                           const aioc_queue_options *opts);

/* Frees the queue. Waiting putters, getters and joiners are woken with
 * -ECANCELED first (a putter keeps its item); items still queued are
 * passed to item_free. NULL is harmless. */
AIOC_API void aioc_queue_free(aioc_queue *q);

/* Suspension point: adds item, waiting at most timeout seconds for room
 * (FIFO among putters). If a getter waits, the item goes straight to the
 * first one. Returns 0, -ESHUTDOWN (the queue is shut down, before or
 * during the wait: the item was not queued), -ETIMEDOUT, -ECANCELED (in
 * both the item was not queued and the queue is untouched), -ENOMEM,
 * AIOC_ENOTASK, -EINVAL. */
AIOC_API AIOC_NODISCARD int aioc_queue_put(aioc_queue *q, void *item,
                                           double timeout);

/* Suspension point: removes an item into *item, waiting at most timeout
 * seconds for one (FIFO among getters). After a shutdown it still returns
 * the items left, then -ESHUTDOWN. Returns 0, -ESHUTDOWN,
 * -ETIMEDOUT, -ECANCELED (for both, *item is NULL and nothing was taken:
 * an item put meanwhile stays queued), AIOC_ENOTASK, -EINVAL. */
AIOC_API AIOC_NODISCARD int aioc_queue_get(aioc_queue *q, void **item,
                                           double timeout);

/* The queue as an iterator (the interface of aioc/gen.h): next() is
 * aioc_queue_get() with its timeout (a timed-out next leaves the queue
 * untouched), and a shut-down queue that has been drained ends the
 * iteration with AIOC_EXHAUSTED. The iterator takes ownership of q, as
 * every *_iter constructor does: closing the iterator shuts q down at once
 * (aioc_queue_shutdown(q, 1): producers still waiting get -ESHUTDOWN), and
 * freeing it frees q, so producers must be done with q by then. On
 * failure the caller keeps q. Returns 0, -EINVAL or -ENOMEM. */
AIOC_API AIOC_NODISCARD int aioc_queue_iter(aioc_iter **out, aioc_queue *q);

/* Adds item without waiting. Returns 0, AIOC_EFULL, -ESHUTDOWN,
 * -ENOMEM, -EINVAL. */
AIOC_API AIOC_NODISCARD int aioc_queue_try_put(aioc_queue *q, void *item);

/* Removes an item without waiting. Returns 0, AIOC_EEMPTY, -ESHUTDOWN
 * (shut down and empty), -EINVAL. */
AIOC_API AIOC_NODISCARD int aioc_queue_try_get(aioc_queue *q, void **item);

/* Marks one item taken by a getter as processed (asyncio's task_done).
 * Returns 0, AIOC_ESTATE (more calls than items put), -EINVAL. */
AIOC_API int aioc_queue_task_done(aioc_queue *q);

/* Suspension point: waits at most timeout seconds until every item put has
 * been marked done (at once if none is outstanding). Returns 0,
 * -ETIMEDOUT, -ECANCELED, AIOC_ENOTASK, -EINVAL. */
AIOC_API AIOC_NODISCARD int aioc_queue_join(aioc_queue *q, double timeout);

/* Shuts the queue down (Python 3.13): later puts fail with -ESHUTDOWN,
 * waiting putters are woken with -ESHUTDOWN, gets return what is left
 * and then -ESHUTDOWN, waiting getters are woken with -ESHUTDOWN.
 * If immediate is non-zero, the items left are dropped (passed to
 * item_free) and counted as done, which may release aioc_queue_join().
 * A second call may make a shutdown immediate. Returns 0 or -EINVAL. */
AIOC_API int aioc_queue_shutdown(aioc_queue *q, int immediate);

/* The number of items queued (0 for NULL). */
AIOC_API size_t aioc_queue_size(const aioc_queue *q);

/* The capacity given to aioc_queue_new() (0: unbounded), or -EINVAL. */
AIOC_API int aioc_queue_capacity(const aioc_queue *q);

/* Non-zero when the queue holds no item. */
AIOC_API int aioc_queue_is_empty(const aioc_queue *q);

/* Non-zero when a bounded queue holds capacity items. */
AIOC_API int aioc_queue_is_full(const aioc_queue *q);

/* Non-zero once aioc_queue_shutdown() was called. */
AIOC_API int aioc_queue_is_shutdown(const aioc_queue *q);

/* ---- Thread-safe queue ------------------------------------------------
 *
 * A FIFO queue shared between threads and loops: the bridge between
 * blocking code and tasks. Every function is thread-safe. put and get
 * adapt to where they are called: in a task they suspend the task (a
 * suspension point, as aioc_queue_put/get); on a thread with no running
 * loop they block the thread (cancellation and deadlines do not exist
 * there; the timeout still applies); in a callback of a running loop they
 * must not block and return AIOC_ERUNNING if they would have to wait.
 * Hand-off and the guarantees above hold across threads: an item is never
 * lost to a timeout or a cancellation. A task that must wait allocates
 * its wake-up then (the thread-safe call that another thread's put, get
 * or shutdown posts to its loop), so handing something to a waiter never
 * fails for lack of memory: that wait returns -ENOMEM instead, having
 * changed nothing. */

typedef struct aioc_tsqueue aioc_tsqueue;

/* Creates a thread-safe FIFO queue of capacity items (0: unbounded).
 * item_free (may be NULL) destroys items dropped by an immediate shutdown
 * or by free. Returns 0, -EINVAL (out NULL, negative capacity), -ENOMEM or
 * a pthread error. */
AIOC_API AIOC_NODISCARD int aioc_tsqueue_new(aioc_tsqueue **out, int capacity,
                                             aioc_free_fn item_free);

/* Frees the queue once no thread will call it again. Threads and tasks
 * blocked in it return -ECANCELED (its memory lives until the last of
 * them has left); items left are passed to item_free. NULL is harmless. */
AIOC_API void aioc_tsqueue_free(aioc_tsqueue *q);

/* Adds item, waiting at most timeout seconds for room (see above for how
 * it waits). Returns 0, -ESHUTDOWN, -ETIMEDOUT, -ECANCELED (task
 * cancelled, or the queue freed), AIOC_ERUNNING, -ENOMEM, -EINVAL. On
 * failure the item was not queued and stays the caller's. */
AIOC_API AIOC_NODISCARD int aioc_tsqueue_put(aioc_tsqueue *q, void *item,
                                             double timeout);

/* Removes an item into *item, waiting at most timeout seconds. After a
 * shutdown, returns the items left, then -ESHUTDOWN. Returns 0,
 * -ESHUTDOWN, -ETIMEDOUT, -ECANCELED, AIOC_ERUNNING, -ENOMEM (a task
 * that had to wait: nothing was taken), -EINVAL. */
AIOC_API AIOC_NODISCARD int aioc_tsqueue_get(aioc_tsqueue *q, void **item,
                                             double timeout);

/* Adds item without waiting. Returns 0, AIOC_EFULL, -ESHUTDOWN,
 * -ENOMEM, -EINVAL. */
AIOC_API AIOC_NODISCARD int aioc_tsqueue_try_put(aioc_tsqueue *q, void *item);

/* Removes an item without waiting. Returns 0, AIOC_EEMPTY, -ESHUTDOWN,
 * -EINVAL. */
AIOC_API AIOC_NODISCARD int aioc_tsqueue_try_get(aioc_tsqueue *q, void **item);

/* Shuts the queue down as aioc_queue_shutdown() does (no join here).
 * Returns 0 or -EINVAL. */
AIOC_API int aioc_tsqueue_shutdown(aioc_tsqueue *q, int immediate);

/* The number of items queued at the moment of the call (0 for NULL). */
AIOC_API size_t aioc_tsqueue_size(aioc_tsqueue *q);

#ifdef __cplusplus
}
#endif
#endif /* AIOC_SYNC_H */

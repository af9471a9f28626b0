/* aioc/combine.h: sleep, wait_for, gather, wait, as_completed, TaskGroup.
 *
 * Every function here is a suspension point (except the constructors and
 * destructors) and honours cancellation and the deadlines in scope. */
#ifndef AIOC_COMBINE_H
#define AIOC_COMBINE_H

#include "task.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Suspension point: waits seconds (>= 0). aioc_sleep(0) lets the other
 * ready tasks run first. Cancellation and deadlines are checked first,
 * for 0 too. Returns 0, -EINVAL (negative or NaN), -ECANCELED,
 * -ETIMEDOUT, AIOC_ENOTASK, -ENOMEM (no room for its timer). */
AIOC_API AIOC_NODISCARD int aioc_sleep(double seconds);

/* Suspension point: waits for f at most timeout seconds (AIOC_FOREVER: no
 * limit). On expiry f is cancelled (as asyncio.wait_for does) and waited
 * for, and -ETIMEDOUT is returned, unless f (a task) finished with a result
 * despite the cancellation: then 0 and the result, nothing is lost. When
 * the waiting task is cancelled or an outer deadline passes, f is cancelled
 * and waited for too, and -ECANCELED / -ETIMEDOUT is returned. Otherwise
 * returns as aioc_await(), or -ENOMEM when the timeout's timer cannot be
 * armed (nothing waited). */
AIOC_API AIOC_NODISCARD int aioc_wait_for(aioc_future *f, void **result,
                                          double timeout);

/* Flags for aioc_gather(). */
enum {
  /* Do not cancel the others when one fails (asyncio's default leaves them
   * running; aioc cancels them unless this flag is given). */
  AIOC_GATHER_KEEP_RUNNING = 1
};

/* Suspension point: waits for every future of fs[0..n) and stores their
 * results in results[0..n) (if not NULL), in the order given.
 * If codes is NULL: the first failure is returned (its message becomes the
 * task's error message); the others are cancelled and waited for (unless
 * AIOC_GATHER_KEEP_RUNNING), and the results of those that had succeeded
 * stay in results[] for the caller to free.
 * If codes is not NULL (return_exceptions=True): every outcome is
 * collected, codes[i] is 0 or the error of fs[i], and 0 is returned.
 * If the waiting task is cancelled or a deadline passes, the futures are
 * cancelled and waited for, and -ECANCELED / -ETIMEDOUT is returned.
 * Returns -EINVAL for fs NULL with n > 0 or a NULL element. */
AIOC_API AIOC_NODISCARD int aioc_gather(aioc_future *const *fs, size_t n,
                                        void **results, int *codes,
                                        unsigned flags);

/* When aioc_wait() returns. */
typedef enum aioc_wait_when {
  AIOC_WAIT_ALL_COMPLETED = 0,
  AIOC_WAIT_FIRST_COMPLETED = 1,
  AIOC_WAIT_FIRST_EXCEPTION = 2
} aioc_wait_when;

/* Suspension point: waits until the condition holds or timeout seconds
 * pass (AIOC_FOREVER: no limit), then fills done[] and pending[] (each may
 * be NULL; each needs room for n) with the futures in the order given, and
 * their counts. Nothing is cancelled, not even on timeout (as asyncio).
 * Returns 0 (also on timeout), -EINVAL, -ECANCELED, -ETIMEDOUT (a deadline
 * in scope, not the timeout argument), -ENOMEM (also when the timeout's
 * timer cannot be armed: nothing waited). */
AIOC_API AIOC_NODISCARD int aioc_wait(aioc_future *const *fs, size_t n,
                                      aioc_wait_when when, aioc_future **done,
                                      size_t *ndone, aioc_future **pending,
                                      size_t *npending, double timeout);

/* ---- as_completed ----------------------------------------------------- */

typedef struct aioc_as_completed aioc_as_completed;

/* Creates an iterator over fs[0..n) that yields each future as it
 * completes. timeout bounds the whole iteration (AIOC_FOREVER: none). The
 * iterator holds references to the futures. Returns 0, -EINVAL, -ENOMEM,
 * AIOC_ECLOSED. */
AIOC_API AIOC_NODISCARD int aioc_as_completed_new(aioc_as_completed **out,
                                                  aioc_future *const *fs,
                                                  size_t n, double timeout);

/* Suspension point: waits for the next future to complete (at most
 * item_timeout seconds for this one item; AIOC_FOREVER: no limit) and
 * stores it in *f (borrowed: valid while the iterator lives). Returns 0,
 * AIOC_EXHAUSTED when all were delivered, -ETIMEDOUT when the whole or the
 * per-item timeout expired (the iterator stays usable after a per-item
 * timeout: nothing is lost), -ECANCELED, -ENOMEM (the timer of a finite
 * timeout cannot be armed: nothing waited, nothing lost). */
AIOC_API AIOC_NODISCARD int aioc_as_completed_next(aioc_as_completed *it,
                                                   aioc_future **f,
                                                   double item_timeout);

/* Frees the iterator and its references. Futures still pending keep
 * running. NULL is harmless. */
AIOC_API void aioc_as_completed_free(aioc_as_completed *it);

/* ---- TaskGroup --------------------------------------------------------- */

typedef struct aioc_taskgroup aioc_taskgroup;

/* Creates a TaskGroup owned by the current task. Returns 0, -ENOMEM or
 * AIOC_ENOTASK. */
AIOC_API AIOC_NODISCARD int aioc_taskgroup_new(aioc_taskgroup **out);

/* Spawns fn(arg) in the group (options may be NULL). When a task of the
 * group fails (an error other than cancellation), the others are
 * cancelled, and so is the owner task until aioc_taskgroup_join() (which
 * withdraws that cancellation). Returns as aioc_spawn_ex(), or AIOC_ESTATE
 * once the group is joined or shutting down. */
AIOC_API AIOC_NODISCARD int aioc_taskgroup_spawn(aioc_taskgroup *g,
                                                 aioc_task **out, aioc_fn fn,
                                                 void *arg,
                                                 const aioc_task_options *opts);

/* Suspension point: waits for every task of the group. If the owner is
 * cancelled or a deadline passes meanwhile, the tasks are cancelled and
 * still waited for. Returns 0, the first error of a task (all of them
 * are kept: aioc_taskgroup_errors()), -ECANCELED or -ETIMEDOUT. Must be
 * called by the owner task (AIOC_ESTATE otherwise). */
AIOC_API AIOC_NODISCARD int aioc_taskgroup_join(aioc_taskgroup *g);

/* The number of tasks of the group that failed; for i below it, *code and
 * *message (may be NULL) describe the i-th failure in order of occurrence.
 * Returns the count. */
AIOC_API int aioc_taskgroup_errors(const aioc_taskgroup *g, size_t i,
                                   int *code, const char **message);

/* Frees the group; if it was not joined, its tasks are cancelled first (they
 * still run their cleanup). NULL is harmless. */
AIOC_API void aioc_taskgroup_free(aioc_taskgroup *g);

#ifdef __cplusplus
}
#endif
#endif /* AIOC_COMBINE_H */

/* aioc/group.h: aioutils' Group, Pool, Yielder and OrderedYielder —
 * async work driven from plain synchronous code.
 *
 * Spawn coroutine functions into a group, then join it. Called from plain
 * code (no loop running on the thread), join runs the thread's loop until
 * every task of the group has finished — including tasks the group's own
 * tasks spawned into it, to any depth — and returns with the loop stopped.
 * Called from inside a task, join suspends that task instead. A Yielder
 * hands the tasks' results to a plain iterator as they come. */
#ifndef AIOC_GROUP_H
#define AIOC_GROUP_H

#include "gen.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aioc_group aioc_group;
typedef struct aioc_yielder aioc_yielder;

/* What happens when a task of a group fails (returns a negative code
 * other than a cancellation the group caused). */
typedef enum aioc_group_policy {
  /* The first failure cancels every other task of the group (and the
   * spawns still waiting in a Pool); join or next returns that error once
   * they have all finished their cleanup. The default. */
  AIOC_GROUP_FAIL_FAST = 0,
  /* Every task runs to its end; join returns the first error and
   * aioc_group_errors() lists them all; a Yielder's next returns each
   * error in its place and goes on. */
  AIOC_GROUP_COLLECT = 1
} aioc_group_policy;

typedef struct aioc_group_options {
  long limit;              /* tasks running at once; 0: no limit (Group) */
  aioc_group_policy policy;
  size_t stack_size;       /* 0: the loop's default */
  aioc_free_fn result_free; /* Yielder: destroys results never taken */
} aioc_group_options;

/* ---- Group and Pool ------------------------------------------------------ */

/* Creates a group on the thread's current loop (opts may be NULL). The
 * calling thread owns the group: join and free it there. Returns 0,
 * -EINVAL (negative limit), -ENOMEM. */
AIOC_API AIOC_NODISCARD int aioc_group_new(aioc_group **out,
                                           const aioc_group_options *opts);

/* A Group that runs at most n of its tasks at once (n >= 1; 0 or negative:
 * -EINVAL); the others wait their turn in spawn order. */
AIOC_API AIOC_NODISCARD int aioc_pool_new(aioc_group **out, long n);

/* Spawns fn(arg) into the group; with a Pool at its limit the spawn waits
 * its turn. Safe from any thread: from a thread other than the group's
 * owner the spawn is handed to the group's loop (aioc_call_soon_threadsafe)
 * and counts as pending at once, so a join in progress waits for it.
 * Returns 0, -EINVAL, -ENOMEM, AIOC_ECLOSED (the group's loop is closed),
 * or AIOC_ESTATE when the group is being torn down (closed or freed) or
 * failed under AIOC_GROUP_FAIL_FAST and not yet joined.
 *
 * On failure nothing happened: fn was not called and never will be, arg
 * is still the caller's, nothing counts as pending, and no join or next
 * will see that spawn. On the owner thread the task is created by the
 * call itself (so its failure is returned here), except for a spawn that
 * waits its turn in a Pool, and a spawn from another thread: their task
 * is created when they are placed, and if that fails the spawn ends as a
 * failure of the group with that code (-ENOMEM, "cannot spawn the task"),
 * fn not called, as any task failure (join, next, the policy). */
AIOC_API AIOC_NODISCARD int aioc_group_spawn(aioc_group *g, aioc_fn fn,
                                             void *arg);

/* Waits until every task of the group has finished (and tasks spawned
 * meanwhile), at most timeout seconds (AIOC_FOREVER: no limit). From plain
 * code the thread's loop runs until then; inside a task the task suspends.
 * Returns 0, the first error of a task (see the policy; the group is then
 * ready for reuse, errors readable until the next join; its message is
 * aioc_group_error_message(), and also the joining task's
 * aioc_error_message(), or from plain code the thread's), -ETIMEDOUT (the
 * tasks keep running; join again later), -ENOMEM (the timer of a finite
 * timeout could not be armed: nothing was waited for, the tasks keep
 * running), -ECANCELED (the joining task was cancelled: the group's tasks
 * are not), -EDEADLK when called from one of
 * the group's own tasks, AIOC_ERUNNING from a callback of a running loop,
 * -EBUSY (another join is in progress), -EINVAL. Joining an empty group
 * returns 0 at once. */
AIOC_API AIOC_NODISCARD int aioc_group_join(aioc_group *g, double timeout);

/* The number of tasks running or waiting their turn now. */
AIOC_API size_t aioc_group_pending(const aioc_group *g);

/* The message of the error the last join returned (the first of
 * aioc_group_errors()), or NULL (none, or it had no message). Valid until
 * the next join. */
AIOC_API const char *aioc_group_error_message(const aioc_group *g);

/* Failures of the last join: returns their count; for i below it, *code and
 * *message (may be NULL) describe the i-th, in order of occurrence. */
AIOC_API int aioc_group_errors(const aioc_group *g, size_t i, int *code,
                               const char **message);

/* Cancels every task of the group and the waiting spawns, and waits for
 * their cleanup (running the loop from plain code). Later spawns return
 * AIOC_ESTATE. Returns 0; AIOC_ERUNNING from a callback, -EDEADLK from
 * one of the group's own tasks and -EBUSY while a join or next of another
 * task is in progress: it does not wait then, but the tasks are cancelled
 * all the same (and that join or next sees them end). */
AIOC_API int aioc_group_close(aioc_group *g);

/* Closes (if needed) and frees the group. Where close cannot wait (a
 * callback, one of its own tasks) the group frees itself when its last
 * task has ended. NULL is harmless. */
AIOC_API void aioc_group_free(aioc_group *g);

/* ---- Yielder and OrderedYielder ------------------------------------------ */

/* Creates a Yielder: results of its tasks come out of aioc_yielder_next()
 * in completion order, or in spawn order when ordered is non-zero
 * (OrderedYielder). opts as for groups (limit makes it a pool). */
AIOC_API AIOC_NODISCARD int aioc_yielder_new(aioc_yielder **out, int ordered,
                                             const aioc_group_options *opts);

/* Spawns fn(arg); its result will be yielded unless it returns
 * AIOC_NORESULT. Thread-safe as aioc_group_spawn(), and fails the same
 * way: on failure nothing happened (fn not called, arg the caller's,
 * nothing pending, no place taken in an OrderedYielder's order). */
AIOC_API AIOC_NODISCARD int aioc_yielder_spawn(aioc_yielder *y, aioc_fn fn,
                                               void *arg);

/* Adds a value to be yielded, as aioutils' y.put(): in an OrderedYielder
 * it takes its place after everything spawned or put before it. From a
 * task of the yielder, from plain code, or (thread-safe) another thread.
 * Returns 0, -EINVAL, -ENOMEM, AIOC_ECLOSED (from another thread: the
 * loop is closed) or AIOC_ESTATE (closed). On failure nothing happened:
 * value is still the caller's and takes no place. */
AIOC_API AIOC_NODISCARD int aioc_yielder_put(aioc_yielder *y, void *value);

/* The next result, at most timeout seconds away. From plain code the loop
 * runs only until that result is ready, then control returns; inside a
 * task, the task suspends. Returns 0 with *item (the caller owns it),
 * AIOC_EXHAUSTED once every task finished and every result was taken (and
 * on every call after that, until something is spawned or put again), a
 * task's error (see the policy; its message is aioc_yielder_error_message()
 * until the next call, and also the calling task's aioc_error_message(),
 * or from plain code the thread's), -ETIMEDOUT (nothing lost:
 * the tasks keep running), -ENOMEM (the timer of a finite timeout could
 * not be armed: nothing was waited for, nothing lost), -ECANCELED, -EBUSY
 * (another consumer is waiting), AIOC_ERUNNING (in a callback), -EDEADLK (from
 * one of its own tasks), -EINVAL. */
AIOC_API AIOC_NODISCARD int aioc_yielder_next(aioc_yielder *y, void **item,
                                              double timeout);

/* The message of the task error the last aioc_yielder_next() returned, or
 * NULL (it returned something else, or the error had no message). Valid
 * until the next aioc_yielder_next() or aioc_yielder_free(). */
AIOC_API const char *aioc_yielder_error_message(const aioc_yielder *y);

/* Stops early: cancels the pending tasks and waits for their cleanup;
 * results not taken are destroyed with result_free. Later next() calls
 * return AIOC_EXHAUSTED. Returns 0, or, where it cannot wait (the tasks
 * are cancelled all the same), AIOC_ERUNNING, -EDEADLK or -EBUSY as
 * aioc_group_close() does; -EINVAL for NULL. */
AIOC_API int aioc_yielder_close(aioc_yielder *y);

/* Closes (if needed) and frees. NULL is harmless. */
AIOC_API void aioc_yielder_free(aioc_yielder *y);

/* The yielder as an iterator (aioc_iter); the iterator takes ownership. */
AIOC_API AIOC_NODISCARD int aioc_yielder_iter(aioc_iter **out, aioc_yielder *y);

/* The scoped form of aioutils' yielding() / ordered_yielding(): creates a
 * (ordered) Yielder, calls body(arg, y) — which spawns and iterates —
 * then closes the Yielder (cancelling what is still pending and waiting
 * for its cleanup, whatever body returned) and frees it. Returns body's
 * code. Works from plain code and inside a task. */
AIOC_API AIOC_NODISCARD int
aioc_yielding(int ordered, const aioc_group_options *opts,
              int (*body)(void *arg, aioc_yielder *y), void *arg);

#ifdef __cplusplus
}
#endif
#endif /* AIOC_GROUP_H */

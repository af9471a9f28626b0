/* aioc/task.h: futures, tasks, cancellation, deadline scopes, aioc_run.
 *
 * A task runs a coroutine function on its own stack, so the function reads
 * top to bottom and keeps its locals across waits. Functions documented as
 * "suspension point" may switch to other tasks; whenever one would have to
 * wait, it returns -ECANCELED once the task is cancelled and -ETIMEDOUT
 * once a deadline in scope has passed. A call whose answer is already
 * there returns it without waiting and without those checks (as awaiting
 * a done future in asyncio). aioc_yield() and aioc_sleep() (0 included)
 * always count as waits: they always check. */
#ifndef AIOC_TASK_H
#define AIOC_TASK_H

#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aioc_scope aioc_scope;

/* A coroutine function. It returns 0 and stores its result in *result
 * (which starts as NULL); or AIOC_NORESULT (any positive code means the
 * same): it succeeded with no result, and *result is ignored (a value
 * stored there anyway goes to the task's result_free); or a negative
 * code: the task then fails with that code (and the message given to
 * aioc_error(), if any), or ends cancelled when the code is -ECANCELED. */
typedef int (*aioc_fn)(void *arg, void **result);

/* ---- Futures -------------------------------------------------------- */

/* Future states. A future is pending, then done or cancelled for good. A
 * task is pending until it starts, then running (executing or suspended)
 * until it finishes (concurrent.futures' RUNNING); a plain future is never
 * running. */
enum {
  AIOC_FUTURE_PENDING = 0,
  AIOC_FUTURE_DONE = 1,
  AIOC_FUTURE_CANCELLED = 2,
  AIOC_FUTURE_RUNNING = 3
};

/* Creates a pending future on loop (NULL: the thread's current loop). The
 * caller owns one reference. Returns 0, -ENOMEM or AIOC_ECLOSED. */
AIOC_API AIOC_NODISCARD int aioc_future_new(aioc_future **out, aioc_loop *loop);

/* Adds a reference. Returns f. */
AIOC_API aioc_future *aioc_future_ref(aioc_future *f);

/* Drops a reference; the last one frees the future. A result that nobody
 * took is passed to its destructor; an error that nobody retrieved is
 * reported ("Future exception was never retrieved"). NULL is harmless. */
AIOC_API void aioc_future_unref(aioc_future *f);

/* Completes f with a result. free_fn (may be NULL) destroys the result if
 * nobody takes it. Returns 0, -EINVAL, or AIOC_ESTATE if f is done. */
AIOC_API AIOC_NODISCARD int aioc_future_set_result(aioc_future *f, void *result,
                                                   aioc_free_fn free_fn);

/* Completes f with an error: code (negative) and an optional printf-style
 * message. Returns 0, -EINVAL (NULL or code >= 0) or AIOC_ESTATE. */
AIOC_API AIOC_NODISCARD int aioc_future_set_error(aioc_future *f, int code,
                                                  const char *fmt, ...)
    AIOC_PRINTF(3, 4);

/* Attaches a payload to f's error (f must have failed); the future owns it
 * and destroys it with free_fn. Returns 0, -EINVAL or AIOC_ESTATE. */
AIOC_API AIOC_NODISCARD int aioc_future_set_error_payload(aioc_future *f,
                                                          void *payload,
                                                          aioc_free_fn free_fn);

/* Cancels a pending future; its done-callbacks run soon. Returns 1 if
 * cancelled, 0 if f was already done (harmless). For a task, this is
 * aioc_task_cancel(). */
AIOC_API int aioc_future_cancel(aioc_future *f, const char *msg);

/* Returns AIOC_FUTURE_PENDING, AIOC_FUTURE_RUNNING (a task that has
 * started and not finished), AIOC_FUTURE_DONE or AIOC_FUTURE_CANCELLED
 * (-EINVAL for NULL). Not done is PENDING or RUNNING: test "not done"
 * with !aioc_future_is_done(). */
AIOC_API int aioc_future_state(const aioc_future *f);

/* Returns non-zero once f is done or cancelled (never while running). */
AIOC_API int aioc_future_is_done(const aioc_future *f);

/* Returns non-zero if f ended cancelled (0 for NULL). */
AIOC_API int aioc_future_is_cancelled(const aioc_future *f);

/* Takes f's outcome without waiting: 0 with the result in *result (which
 * may be NULL), the error code, -ECANCELED, or AIOC_ESTATE when f is still
 * pending. The caller then owns the result. Marks the error retrieved. */
AIOC_API AIOC_NODISCARD int aioc_future_result(aioc_future *f, void **result);

/* f's error code (0 if f succeeded or is pending, -ECANCELED if cancelled).
 * Marks the error retrieved. */
AIOC_API int aioc_future_error(aioc_future *f);

/* The message of f's error or cancellation, or NULL. Valid while f lives. */
AIOC_API const char *aioc_future_error_message(const aioc_future *f);

/* The payload of f's error, or NULL. Owned by f. */
AIOC_API void *aioc_future_error_payload(const aioc_future *f);

/* Registers cb(arg) to run (via the loop, not at once) when f is done. If
 * f is already done, cb is scheduled now. Returns 0, -EINVAL or -ENOMEM. */
AIOC_API AIOC_NODISCARD int
aioc_future_add_done_callback(aioc_future *f, aioc_callback cb, void *arg);

/* Removes every registration of (cb, arg); returns how many were removed. */
AIOC_API int aioc_future_remove_done_callback(aioc_future *f, aioc_callback cb,
                                              void *arg);

/* The loop f belongs to. */
AIOC_API aioc_loop *aioc_future_loop(const aioc_future *f);

/* Suspension point: waits until f is done and takes its outcome as
 * aioc_future_result() does. Returns 0, f's error code, -ECANCELED (f was
 * cancelled, or the waiting task was), -ETIMEDOUT (a deadline in scope),
 * -EDEADLK (a task awaiting itself), AIOC_ENOTASK outside a task (use
 * aioc_block_on() there), -EINVAL for NULL or a future of another loop.
 * When f fails, its message becomes the current task's error message, so
 * returning the code passes both on. */
AIOC_API AIOC_NODISCARD int aioc_await(aioc_future *f, void **result);

/* Bridge from plain code: outside any running loop, runs f's loop (on this
 * thread) until f is done and returns its outcome as aioc_await() does.
 * Inside a task of f's loop it is aioc_await(). Returns AIOC_ERUNNING if
 * called from a callback (not a task) of a running loop. */
AIOC_API AIOC_NODISCARD int aioc_block_on(aioc_future *f, void **result);

/* Creates a future that mirrors inner, except that cancelling the outer one
 * does not cancel inner — so aioc_wait_for(), aioc_gather() and the other
 * calls that cancel what they wait on leave inner running. The caller owns
 * *outer. Returns 0, -EINVAL or -ENOMEM. */
AIOC_API AIOC_NODISCARD int aioc_shield(aioc_future **outer,
                                        aioc_future *inner);

/* ---- Tasks ---------------------------------------------------------- */

/* Options for aioc_spawn_ex(). Zero-initialise. */
typedef struct aioc_task_options {
  const char *name;        /* copied; NULL: "Task-N" (N mod 2^32) */
  size_t stack_size;       /* 0: the loop's default */
  aioc_free_fn result_free; /* destroys a result nobody took */
} aioc_task_options;

/* Spawns fn(arg) as a task on the thread's current loop; it starts in a
 * later iteration, after the tasks and callbacks already scheduled. If out
 * is not NULL it receives a handle the caller owns (release it with
 * aioc_task_unref()); the task runs to its end either way: the loop owns
 * a running task. Returns 0, -EINVAL (fn NULL), -ENOMEM, AIOC_ECLOSED. */
AIOC_API AIOC_NODISCARD int aioc_spawn(aioc_task **out, aioc_fn fn, void *arg);

/* aioc_spawn() with a loop (NULL: current) and options. */
AIOC_API AIOC_NODISCARD int aioc_spawn_ex(aioc_task **out, aioc_loop *loop,
                                          aioc_fn fn, void *arg,
                                          const aioc_task_options *opts);

/* The future view of a task: await it, read its outcome, add callbacks.
 * Borrowed: valid as long as the task handle. */
AIOC_API aioc_future *aioc_task_future(aioc_task *t);

/* Suspension point: aioc_await(aioc_task_future(t), result). */
AIOC_API AIOC_NODISCARD int aioc_task_await(aioc_task *t, void **result);

/* Adds a reference to a task handle. Returns t. */
AIOC_API aioc_task *aioc_task_ref(aioc_task *t);

/* Releases a task handle. The task keeps running if it has not finished.
 * NULL is harmless. */
AIOC_API void aioc_task_unref(aioc_task *t);

/* The task running now, or NULL outside tasks. Borrowed. */
AIOC_API aioc_task *aioc_current_task(void);

/* The task's name. */
AIOC_API const char *aioc_task_name(const aioc_task *t);

/* Returns non-zero while t runs: it has started and not finished, whether
 * it is executing or suspended (aioc_future_state() is then
 * AIOC_FUTURE_RUNNING). 0 before it starts, once it finished, for NULL. */
AIOC_API int aioc_task_is_running(const aioc_task *t);

/* Fills tasks[0..cap) with the loop's unfinished tasks (NULL: current
 * loop) and returns how many there are (which may exceed cap). Borrowed
 * pointers. */
AIOC_API int aioc_all_tasks(aioc_loop *loop, aioc_task **tasks, size_t cap);

/* Requests cancellation of t with an optional message. A task not yet
 * started ends cancelled without running; a suspended one is woken with
 * -ECANCELED; from then on every suspension point of t returns -ECANCELED
 * (outside shielded regions) until t finishes or uncancels. Returns 1 if
 * a request was made, 0 if t had already finished (harmless), -EINVAL. */
AIOC_API int aioc_task_cancel(aioc_task *t, const char *msg);

/* Withdraws one cancellation request; returns the number still pending.
 * When it reaches 0 the task's waits no longer fail with -ECANCELED. */
AIOC_API int aioc_task_uncancel(aioc_task *t);

/* The number of pending cancellation requests of t (saturating at 65535). */
AIOC_API int aioc_task_cancelling(const aioc_task *t);

/* Sets the current task's error message (printf-style) and returns code,
 * so that `return aioc_error(-EIO, "read %s", path);` fails the task with
 * both. In a job of an executor (aioc/thread.h) the message goes to the
 * job's outcome the same way. Elsewhere it only returns code. */
AIOC_API int aioc_error(int code, const char *fmt, ...) AIOC_PRINTF(2, 3);

/* The current task's error message (the last aioc_error(), or the message
 * of the last failed await), or NULL. Outside a task (plain code, and
 * callbacks): the message of the last failure of a task or generator body
 * that this thread received from aioc_group_join(), aioc_yielder_next(),
 * a generator request, aioc_block_on() or aioc_run(), or NULL if that
 * failure had none; a thread-local copy (up to 511 bytes), kept until the
 * next such failure. */
AIOC_API const char *aioc_error_message(void);

/* Suspension point: lets every other ready task and callback run once, then
 * continues. Returns 0, -ECANCELED or -ETIMEDOUT as any wait does (it
 * always checks, first). */
AIOC_API AIOC_NODISCARD int aioc_yield(void);

/* ---- Deadline scopes and shields --------------------------------------
 *
 * A scope is entered and exited by the same task, in LIFO order. Scopes
 * nest; the earliest deadline in force wins. */

/* Enters a deadline scope that expires seconds from now (AIOC_FOREVER: no
 * deadline yet). After it expires, every suspension point inside returns
 * -ETIMEDOUT. A deadline already past (0 seconds; a past time for the
 * variants below) enters an expired scope: the first suspension point
 * inside fails, aioc_yield() and aioc_sleep(0) included (asyncio's
 * `timeout(0)` around `sleep(0)`), and so does its exit. Returns 0,
 * -EINVAL (negative/NaN), -ENOMEM, AIOC_ENOTASK. */
AIOC_API AIOC_NODISCARD int aioc_timeout_enter(aioc_scope **out,
                                               double seconds);

/* The same with an absolute loop time. */
AIOC_API AIOC_NODISCARD int aioc_timeout_at_enter(aioc_scope **out,
                                                  double when);

/* The "move on" variant: waits inside still fail with -ETIMEDOUT when it
 * expires, but exiting it returns 0; aioc_scope_is_expired() tells. */
AIOC_API AIOC_NODISCARD int aioc_move_on_enter(aioc_scope **out,
                                               double seconds);

/* Enters a shielded region: cancellation of the task and outer deadlines
 * do not reach the waits inside, so cleanup can still wait. It has its own
 * deadline (seconds, AIOC_FOREVER allowed but discouraged), after which the
 * waits inside return -ETIMEDOUT. */
AIOC_API AIOC_NODISCARD int aioc_shield_enter(aioc_scope **out, double seconds);

/* Moves the scope's deadline to loop time when (AIOC_FOREVER: none). A
 * time already past expires the scope at once (a wait in progress inside
 * is woken with -ETIMEDOUT). Returns 0, -EINVAL, -ENOMEM, or AIOC_ESTATE
 * if the scope already expired or was exited. */
AIOC_API int aioc_scope_reschedule(aioc_scope *s, double when);

/* The scope's deadline in loop time (AIOC_FOREVER if none). */
AIOC_API double aioc_scope_deadline(const aioc_scope *s);

/* Non-zero once the scope's deadline has passed while it was open, or had
 * passed when it was entered or rescheduled (still readable after
 * aioc_scope_exit()). */
AIOC_API int aioc_scope_is_expired(const aioc_scope *s);

/* Exits the scope: its deadline no longer applies. The scope stays
 * readable (aioc_scope_is_expired(), aioc_scope_deadline()) until
 * aioc_scope_free(). Returns -ETIMEDOUT if a timeout scope (or shield)
 * expired while open, 0 otherwise (move-on scopes always 0); -EINVAL if s
 * is not the innermost open scope of the current task (nothing changes
 * then). */
AIOC_API AIOC_NODISCARD int aioc_scope_exit(aioc_scope *s);

/* Frees a scope. A scope still open is taken out of its task's scopes
 * first (its deadline stops applying); a scope left open when its task
 * ended was closed then and still needs freeing. (A task abandoned by its
 * closing loop never runs again: the scopes it held open are freed with
 * it.) NULL is harmless. */
AIOC_API void aioc_scope_free(aioc_scope *s);

/* Runs body(arg) inside a timeout scope and returns body's result, or
 * -ETIMEDOUT if the deadline expired. */
AIOC_API AIOC_NODISCARD int
aioc_with_timeout(double seconds, int (*body)(void *arg), void *arg);

/* ---- Running -------------------------------------------------------- */

/* Options for aioc_run_ex(). */
typedef struct aioc_run_options {
  aioc_loop_options loop;
  /* Seconds to let leftover tasks finish after main returns, once they are
   * cancelled (0: 5 seconds). Tasks still alive then are reported. */
  double shutdown_timeout;
} aioc_run_options;

/* The asyncio.run() equivalent: creates a loop, makes it current, runs
 * main(arg) as a task named "main" to its end, cancels every task left and
 * lets them clean up, reports tasks that refuse to finish (once each:
 * "Task ignored its cancellation and did not finish"), closes the loop.
 * *result (if not NULL) receives main's result. Returns main's code, or
 * AIOC_ERUNNING when called inside a running loop. */
AIOC_API AIOC_NODISCARD int aioc_run(aioc_fn main, void *arg, void **result);
AIOC_API AIOC_NODISCARD int aioc_run_ex(aioc_fn main, void *arg, void **result,
                                        const aioc_run_options *opts);

#ifdef __cplusplus
}
#endif
#endif /* AIOC_TASK_H */

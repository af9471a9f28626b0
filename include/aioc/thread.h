/* aioc/thread.h: the executor (thread pools, to_thread, run_in_executor)
 * and run_coroutine_threadsafe.
 *
 * Blocking work (a blocking library call, a file read, CPU-heavy code)
 * must not run on a loop's thread. It goes to an executor: a pool of
 * threads that runs jobs, each an aioc_fn (`int fn(void *arg, void
 * **result)`, the type of a task function, so any task function can run
 * in a thread too). A job's outcome is what fn returns, as for a task: 0
 * and *result, a positive code (AIOC_NORESULT: no result), or a negative
 * code with the message fn gave to aioc_error(), which works on an
 * executor thread as it does in a task.
 *
 * Giving up on a job: when the task awaiting it is cancelled or its
 * deadline passes (a deadline scope, aioc_wait_for()), or the future of
 * aioc_run_in_executor() is cancelled, a job that has not started is
 * dropped (fn is never called), and a running job is told so:
 * aioc_job_is_cancelled() turns non-zero on its thread, and fn may poll it
 * and return early. A thread cannot be interrupted, so the caller does not
 * wait for that: its wait returns at once, the job is abandoned, and the
 * result it produces anyway goes to the result destructor
 * (aioc_job_options.result_free). Abandoned jobs are counted, and when the
 * loop closes the count is reported through its report handler
 * (aioc_loop_set_report_handler()): "Executor jobs were abandoned while
 * running", its detail "N jobs abandoned while running (M still running at
 * close)".
 *
 * Each loop has a default executor, created on first use and shut down
 * and freed when the loop closes; aioc_to_thread() and
 * aioc_run_in_executor() with a NULL executor use it. Executors of one's
 * own keep one kind of blocking work from starving another (a pool of 2
 * for slow disk reads beside the default one). An executor is
 * thread-safe: any thread and any loop may submit to it.
 *
 * The other direction, run_coroutine_threadsafe: a plain thread submits a
 * task function to a loop running in another thread and gets a
 * thread-safe future, which it may wait on (blocking, with a timeout),
 * cancel (cancelling the task in its loop) and free. */
#ifndef AIOC_THREAD_H
#define AIOC_THREAD_H

#include "task.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aioc_executor aioc_executor;
typedef struct aioc_tsfuture aioc_tsfuture;

/* ---- Executors ---------------------------------------------------------- */

/* Options for aioc_executor_new(). Zero-initialise. */
typedef struct aioc_executor_options {
  /* The most threads the pool runs (0: the number of CPUs plus 4, at most
   * 32, as Python's ThreadPoolExecutor). Threads start as jobs need them
   * and stay until the executor closes. */
  int threads;
  /* How long aioc_executor_close() waits for running jobs to return, in
   * seconds (0: 5 s; AIOC_FOREVER: no limit). */
  double shutdown_timeout;
} aioc_executor_options;

/* Creates an executor (opts may be NULL: all defaults). No thread starts
 * before the first job. Returns 0, -EINVAL (out NULL, negative threads,
 * negative or NaN shutdown_timeout), -ENOMEM or a negated pthread error. */
AIOC_API AIOC_NODISCARD int aioc_executor_new(aioc_executor **out,
                                              const aioc_executor_options *opts);

/* Shuts the executor down: later submissions return -ESHUTDOWN, jobs not
 * started are dropped (their awaiters get -ESHUTDOWN), running jobs see
 * aioc_job_is_cancelled() and are waited for at most shutdown_timeout
 * seconds (blocking the calling thread: the awaiters of those jobs get
 * their outcome once their loop runs again). Threads still in a job then
 * are left to end on their own; they keep what they use alive. Thread-safe.
 * Returns 0, AIOC_ECLOSED (already closed), -EDEADLK (called from one of
 * its own jobs: nothing is waited for, the rest is done) or -EINVAL. */
AIOC_API int aioc_executor_close(aioc_executor *ex);

/* Closes the executor if needed and releases it: its memory goes when the
 * last of its jobs and threads is done with it. NULL is harmless. */
AIOC_API void aioc_executor_free(aioc_executor *ex);

/* Options for aioc_run_in_executor(). Zero-initialise. */
typedef struct aioc_job_options {
  /* Destroys a result nobody will take (the job was abandoned, or its
   * future released without taking the result). May run on the
   * executor's thread. */
  aioc_free_fn result_free;
} aioc_job_options;

/* Submits fn(arg) to ex (NULL: the default executor of the thread's
 * current loop) and gives a future of that loop in *out (the caller owns
 * a reference: aioc_future_unref()), done with the job's outcome when it
 * returns. Await it, wait for it with a timeout (aioc_wait_for()), gather
 * it. Cancelling the future (aioc_future_cancel(), or any call that
 * cancels what it waits on) gives up the job as the header comment says;
 * the future is then cancelled at once. Not a suspension point: usable
 * from tasks, callbacks and plain code (aioc_block_on() waits for the
 * future there). Returns 0, -EINVAL (out or fn NULL), -ENOMEM, -ESHUTDOWN
 * (ex closed), AIOC_ECLOSED or a negated pthread error (no thread could
 * be started and none runs). On failure fn is never called. */
AIOC_API AIOC_NODISCARD int aioc_run_in_executor(aioc_future **out,
                                                 aioc_executor *ex,
                                                 aioc_fn fn, void *arg,
                                                 const aioc_job_options *opts);

/* Suspension point: runs fn(arg) on the default executor of the running
 * loop and waits for its outcome (asyncio's to_thread). Returns fn's code
 * (its message becomes the task's aioc_error_message(), so returning the
 * code passes both on) with its result in *result (result may be NULL
 * when fn gives none); -ECANCELED or -ETIMEDOUT when the task is
 * cancelled or a deadline passes first (the job is given up: see the
 * header comment; its result is then lost, so use aioc_run_in_executor()
 * with a result_free for results that own memory); -ENOMEM, AIOC_ECLOSED
 * or a negated pthread error, fn not called. From plain code (no loop
 * running on the thread) it runs the thread's current loop until the job
 * is done, as aioc_block_on() does; from a callback of a running loop it
 * returns AIOC_ERUNNING. */
AIOC_API AIOC_NODISCARD int aioc_to_thread(void **result, aioc_fn fn,
                                           void *arg);

/* Called from a job: non-zero once the job has been given up (its
 * awaiter was cancelled or timed out, its future was cancelled, its
 * executor or its loop closed), 0 otherwise and outside jobs. A job that
 * may run long should poll it and return (-ECANCELED, say). */
AIOC_API int aioc_job_is_cancelled(void);

/* ---- run_coroutine_threadsafe -------------------------------------------- */

/* Thread-safe: asks loop (running in another thread, or later) to spawn
 * fn(arg) as a task (opts as for aioc_spawn_ex(), copied; NULL: defaults;
 * result_free also destroys a result the future's owner never took) and
 * gives a thread-safe future of its outcome in *out, which the caller
 * frees with aioc_tsfuture_free(). If the loop closes before the task
 * could be spawned, the future ends with AIOC_ECLOSED; if the task is
 * abandoned with its loop, with -ECANCELED. Returns 0, -EINVAL (out, loop
 * or fn NULL), -ENOMEM, a negated pthread error, or AIOC_ECLOSED (the
 * loop is closed: nothing was submitted). The caller must know the loop is
 * not freed meanwhile, as for aioc_call_soon_threadsafe(). */
AIOC_API AIOC_NODISCARD int
aioc_run_coroutine_threadsafe(aioc_tsfuture **out, aioc_loop *loop,
                              aioc_fn fn, void *arg,
                              const aioc_task_options *opts);

/* Blocks the calling thread until the task is done, at most timeout
 * seconds (0: only looks), and gives its outcome: 0 with the result in
 * *result (result may be NULL; the first call that asks for the result
 * takes it, later ones get NULL), the task's error code (its message:
 * aioc_tsfuture_error_message()), -ECANCELED (the task was cancelled),
 * AIOC_ECLOSED (see aioc_run_coroutine_threadsafe()), -ETIMEDOUT (not done
 * in time: nothing changes), -EINVAL (NULL, negative or NaN timeout), or
 * AIOC_ERUNNING when a non-zero timeout is asked for on a thread where a
 * loop runs (blocking would stall that loop; await a future there).
 * Thread-safe. */
AIOC_API AIOC_NODISCARD int aioc_tsfuture_wait(aioc_tsfuture *f,
                                               void **result, double timeout);

/* Thread-safe: cancels the task in its loop (aioc_task_cancel(); a task
 * not yet spawned never runs). The future is done once the task has
 * ended: wait for it to know how. Returns 1 if a request was made, 0 if
 * the future was already done or cancelled (harmless), -EINVAL for NULL.
 * Never fails for lack of memory. */
AIOC_API int aioc_tsfuture_cancel(aioc_tsfuture *f);

/* Non-zero once the task's outcome is there (0 for NULL). Thread-safe. */
AIOC_API int aioc_tsfuture_is_done(const aioc_tsfuture *f);

/* The message of the task's failure or cancellation, or NULL (none, or
 * not done). Valid until aioc_tsfuture_free(). Thread-safe. */
AIOC_API const char *aioc_tsfuture_error_message(const aioc_tsfuture *f);

/* Releases the future. The task keeps running if it has not finished; a
 * result nobody took goes to result_free. Thread-safe. NULL is harmless. */
AIOC_API void aioc_tsfuture_free(aioc_tsfuture *f);

#ifdef __cplusplus
}
#endif
#endif /* AIOC_THREAD_H */

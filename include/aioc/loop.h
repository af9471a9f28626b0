/* aioc/loop.h: the event loop.
 *
 * One loop per thread. A loop and its tasks belong to the thread that runs
 * it; only the functions marked "thread-safe" may be called from other
 * threads. */
#ifndef AIOC_LOOP_H
#define AIOC_LOOP_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aioc_loop aioc_loop;
typedef struct aioc_handle aioc_handle;
typedef struct aioc_future aioc_future;
typedef struct aioc_task aioc_task;

/* A plain callback run by the loop (call_soon, call_later, done-callbacks). */
typedef void (*aioc_callback)(void *arg);

/* Options for aioc_loop_new(). Zero-initialise and set what you need. */
typedef struct aioc_loop_options {
  /* Default stack size of the loop's tasks in bytes, guard page included
   * (0: 128 KiB, or the AIOC_STACK_SIZE environment variable). Rounded up
   * to a power of two between 16 KiB and 64 MiB. */
  size_t stack_size;
  /* Non-zero: virtual clock. Time starts at 0 and moves only when nothing
   * is ready to run and no I/O is pending: it then jumps to the next
   * deadline at once (a task waiting for another thread does not hold it
   * back). Timeout logic runs instantly and deterministically.
   * aioc_loop_run_once() never moves it. */
  int virtual_clock;
  /* Non-zero: at close, do not print tasks that are still pending. */
  int quiet;
  /* What the loop observes beyond its counters: AIOC_OBSERVE_* flags of
   * aioc/observe.h, or'ed (0: the AIOC_OBSERVE environment variable's,
   * else none). */
  unsigned observe;
  /* The flight recorder's ring (aioc/trace.h), with AIOC_OBSERVE_EVENTS:
   * how many events it keeps (0: the AIOC_TRACE_EVENTS environment
   * variable's, else 4096). */
  unsigned trace_events;
  /* The stall detector (aioc/observe.h): a task that runs longer than
   * this many seconds without reaching a suspension point is reported
   * (0: the AIOC_STALL environment variable's, else off). */
  double stall_threshold;
  /* The cooperative budget: operations a task may find ready in a row
   * (a queue's get or put, a free lock or semaphore, a set event, a done
   * future, buffered stream data) before the next one yields first, so
   * that a task whose operations never wait cannot starve the others
   * (0: the AIOC_COOP_BUDGET environment variable's, a number or "never",
   * else 128; UINT_MAX: never). */
  unsigned coop_budget;
  /* Seeded schedules (aioc/testing.h), with virtual_clock only (ignored
   * otherwise): a non-zero seed perturbs the order in which the ready
   * tasks of one batch run (callbacks keep theirs), the same seed giving
   * the same order (0: the AIOC_SCHEDULE_SEED environment variable's,
   * else the plain order). */
  uint64_t schedule_seed;
  /* Non-zero: serve the debugging socket that aioc-ps reads (see
   * aioc/observe.h; 0: on if the AIOC_DEBUG_SOCKET environment variable
   * is set). */
  int debug_socket;
} aioc_loop_options;

/* Creates a loop. It is not yet the thread's current loop; it becomes the
 * running loop while one of the run functions runs it. Out-of-range stack
 * sizes are rounded into range. Returns 0, -EINVAL (out NULL), -ENOMEM, or
 * the error of epoll_create1()/eventfd() (-EMFILE, ...). */
AIOC_API AIOC_NODISCARD int aioc_loop_new(aioc_loop **out,
                                          const aioc_loop_options *opts);

/* Closes a loop that is not running; it is freed by aioc_loop_free().
 * Generators left unfinished run their cleanup first. Pending tasks
 * cannot be run any more: each is reported on stderr (unless the loop is
 * quiet) as "Task was destroyed but it is pending", ends cancelled, and
 * its handle stays valid until unreferenced. Callbacks not yet run are
 * dropped. Every later call on the loop returns AIOC_ECLOSED (a second
 * close too). Returns 0, -EINVAL (NULL), AIOC_ERUNNING (called while the
 * loop runs: nothing is closed) or AIOC_ECLOSED. */
AIOC_API int aioc_loop_close(aioc_loop *loop);

/* Frees a loop, closing it first if it is not closed. Its memory lives on
 * while futures, tasks or handles of it are referenced (they stay safe to
 * read and unreference). A running loop is not freed (a message on stderr
 * says so). NULL is harmless. Built with AIOC_DEBUG_ARMOR (Debug builds),
 * a call given a loop, handle, future, task or scope already freed (a
 * double free, a use after free) reports "<call>: not a live <kind> (freed
 * or corrupt)" on stderr and is refused (-EINVAL, or nothing done). */
AIOC_API void aioc_loop_free(aioc_loop *loop);

/* Returns the loop running on this thread (inside a task or a callback), or
 * NULL when none is running (asyncio's get_running_loop()). */
AIOC_API aioc_loop *aioc_get_running_loop(void);

/* Returns the thread's loop: the running one, else the one set with
 * aioc_loop_set_current(), else a loop created on first use (with default
 * options). The thread owns that implicit loop: it is freed when the thread
 * exits (a program's main thread exits with the process), or earlier with
 * aioc_loop_free(); once closed, the next call creates a fresh one.
 * Returns NULL only when that creation fails for lack of memory. */
AIOC_API aioc_loop *aioc_loop_current(void);

/* Makes loop the thread's current loop (NULL clears it). The loop must not
 * run on another thread. Returns 0, or AIOC_ECLOSED. */
AIOC_API int aioc_loop_set_current(aioc_loop *loop);

/* Runs the loop until f is done, then returns. A suspension point only in
 * the sense that other tasks run; must not be called from inside a task or
 * callback of a running loop (returns AIOC_ERUNNING). The loop is the
 * thread's current loop while it runs. Returns 0 when f finished (whatever
 * its outcome), -EINVAL, AIOC_ECLOSED, AIOC_ERUNNING, or -EINTR when
 * aioc_loop_stop() stopped the loop first. */
AIOC_API AIOC_NODISCARD int aioc_loop_run_until_complete(aioc_loop *loop,
                                                         aioc_future *f);

/* Runs the loop until aioc_loop_stop(). Returns 0, -EINVAL, AIOC_ECLOSED or
 * AIOC_ERUNNING. */
AIOC_API int aioc_loop_run_forever(aioc_loop *loop);

/* Runs one iteration of the loop (ready callbacks and tasks, expired timers,
 * I/O readiness) without waiting. Returns the number of items run or a
 * negative code as aioc_loop_run_forever() does. */
AIOC_API int aioc_loop_run_once(aioc_loop *loop);

/* Asks a running loop to stop after the current iteration. Harmless on a
 * loop that does not run (the next run returns after one iteration, as
 * asyncio does). Thread-safe. Returns 0 or -EINVAL. */
AIOC_API int aioc_loop_stop(aioc_loop *loop);

/* Returns non-zero while the loop runs. */
AIOC_API int aioc_loop_is_running(const aioc_loop *loop);

/* Returns non-zero once aioc_loop_close() has begun on the loop. */
AIOC_API int aioc_loop_is_closed(const aioc_loop *loop);

/* The loop's monotonic clock in seconds, read once per iteration and
 * cached (virtual time in virtual-clock mode). */
AIOC_API double aioc_loop_time(aioc_loop *loop);

/* aioc_loop_time() of the thread's current loop (0 if it has none). */
AIOC_API double aioc_time(void);

/* Schedules cb(arg) to run in the next iteration, after the callbacks
 * already scheduled (FIFO). If out is not NULL it receives a handle the
 * caller owns: release it with aioc_handle_unref() (the callback runs
 * whether or not the handle is released). Returns 0, -EINVAL, -ENOMEM or
 * AIOC_ECLOSED. Not thread-safe: use aioc_call_soon_threadsafe() from other
 * threads. */
AIOC_API AIOC_NODISCARD int aioc_call_soon(aioc_handle **out, aioc_loop *loop,
                                           aioc_callback cb, void *arg);

/* Schedules cb(arg) to run delay seconds from now (delay >= 0, finite).
 * Callbacks with equal deadlines run in the order they were scheduled.
 * out as in aioc_call_soon(). Returns 0, -EINVAL (negative or NaN delay),
 * -ENOMEM or AIOC_ECLOSED. */
AIOC_API AIOC_NODISCARD int aioc_call_later(aioc_handle **out, aioc_loop *loop,
                                            double delay, aioc_callback cb,
                                            void *arg);

/* Schedules cb(arg) at loop time when (a deadline in the past runs in the
 * next iteration). Same contract as aioc_call_later(). */
AIOC_API AIOC_NODISCARD int aioc_call_at(aioc_handle **out, aioc_loop *loop,
                                         double when, aioc_callback cb,
                                         void *arg);

/* Cancels the callback if it has not run yet; returns 1 if this call
 * cancelled it, 0 if it had already run or been cancelled (harmless), or
 * -EINVAL for NULL. */
AIOC_API int aioc_handle_cancel(aioc_handle *h);

/* Returns non-zero if the handle was cancelled. */
AIOC_API int aioc_handle_is_cancelled(const aioc_handle *h);

/* Releases the caller's reference to a handle. NULL is harmless. */
AIOC_API void aioc_handle_unref(aioc_handle *h);

/* Thread-safe: schedules cb(arg) on loop from any thread and wakes the loop
 * if it waits. Returns 0, -EINVAL, -ENOMEM or AIOC_ECLOSED (close has
 * begun). The caller must know the loop is not freed: a call that may
 * overlap aioc_loop_free() is a use-after-free, as with any handle. */
AIOC_API AIOC_NODISCARD int
aioc_call_soon_threadsafe(aioc_loop *loop, aioc_callback cb, void *arg);

/* What the loop reports: "Task exception was never retrieved" and
 * "Future exception was never retrieved" (an error nobody looked at, when
 * its last reference goes), "Task was destroyed but it is pending" (its
 * loop closed first), "Task ignored its cancellation and did not finish"
 * (aioc_run's grace period ran out; such a task is not reported again as
 * destroyed when aioc_run closes its loop: one report per task). */
typedef struct aioc_report {
  const char *message; /* "Task exception was never retrieved", ... */
  aioc_task *task;     /* the task concerned, or NULL */
  int code;            /* the error code concerned, or 0 */
  const char *detail;  /* the error's message, or NULL */
  const char *task_name; /* the task's name, or NULL */
} aioc_report;

typedef void (*aioc_report_fn)(void *arg, aioc_loop *loop,
                               const aioc_report *report);

/* Replaces the loop's report handler (NULL: the default, which prints to
 * stderr). Returns 0 or -EINVAL. */
AIOC_API int aioc_loop_set_report_handler(aioc_loop *loop, aioc_report_fn fn,
                                          void *arg);

/* Prints a report the way the default handler does. */
AIOC_API void aioc_loop_default_report(aioc_loop *loop,
                                       const aioc_report *report);

#ifdef __cplusplus
}
#endif
#endif /* AIOC_LOOP_H */

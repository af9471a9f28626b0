/* aioc/observe.h: seeing inside a running program.
 *
 * Loop and task metrics, the dump of a loop's tasks (what each waits on,
 * where, for how long, who spawned it, who awaits it, its call stack),
 * stack use per spawn site, the stall detector, and the debugging socket
 * through which the aioc-ps tool reads them from another process. What
 * costs time
 * on the hot paths is off unless a loop asks for it with the observe
 * flags of aioc_loop_options (or the AIOC_OBSERVE environment variable);
 * the loop's counters are always kept.
 *
 * Call sites: <aioc.h> wraps the public waits (aioc_await, aioc_sleep,
 * aioc_queue_get, aioc_lock_acquire, ... listed at the end of this
 * header) and aioc_spawn / aioc_spawn_ex in macros of the same name that
 * note the caller's file and line (a thread-local store of the address of
 * a static record) before the call, so that a dump says where each task
 * waits. The functions are unchanged: their address can be taken, and
 * `(aioc_await)(f, &r)` calls one without the note. Define AIOC_NO_SITES
 * before including <aioc.h> to go without the macros (sites are then
 * unknown). The macros use GNU C statement expressions (GCC, Clang).
 */
#ifndef AIOC_OBSERVE_H
#define AIOC_OBSERVE_H

#include <stdio.h>

#include "signal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The observe flags of aioc_loop_options.observe (or AIOC_OBSERVE, a
 * comma-separated list of "timing", "spawns", "stacks", "events" or
 * "all", read by aioc_loop_new() when the options give no flag). */
typedef enum aioc_observe_flags {
  /* Per-task run and ready times and the loop's time in tasks and in the
   * poller: two reads of the monotonic clock per task switch. */
  AIOC_OBSERVE_TIMING = 1,
  /* Each task's spawner and spawn site: a small record allocated per
   * spawn. */
  AIOC_OBSERVE_SPAWNS = 2,
  /* Each task's stack high-water mark when it ends, per spawn site, with
   * a report for a task that used more than 75% of its stack (implies
   * AIOC_OBSERVE_SPAWNS). */
  AIOC_OBSERVE_STACKS = 4,
  /* The flight recorder (aioc/trace.h): a ring of the loop's last
   * events. */
  AIOC_OBSERVE_EVENTS = 8,
  AIOC_OBSERVE_ALL = 15
} aioc_observe_flags;

/* ---- metrics ---------------------------------------------------------- */

/* A loop's metrics since it was created. Times are in seconds. */
typedef struct aioc_loop_metrics {
  uint64_t iterations;   /* batches of ready items run */
  size_t ready;          /* items in the ready queue now */
  uint64_t timers_fired; /* timers that fired (timeouts, sleeps, calls) */
  double lag_max;        /* the latest a timer fired after its deadline */
  double lag_total;      /* the sum of those delays (lag_total /
                            timers_fired is the mean loop lag) */
  /* With AIOC_OBSERVE_TIMING only, 0 otherwise: */
  uint64_t task_runs; /* times a task was resumed (or started) */
  double task_time;   /* time spent running tasks */
  double poll_time;   /* time spent in the poller, waiting included */
} aioc_loop_metrics;

/* Fills *out with the loop's metrics (loop NULL: the thread's current
 * loop). Loop lag is measured against the loop's cached clock, so a
 * timer is late by at least how long the tasks before it ran; under the
 * virtual clock it is always 0. Returns 0, or -EINVAL (out NULL, or no
 * loop). */
AIOC_API int aioc_loop_get_metrics(aioc_loop *loop, aioc_loop_metrics *out);

/* A task's metrics (AIOC_OBSERVE_TIMING; stack use: AIOC_OBSERVE_STACKS).
 * Times in seconds, measured with the monotonic clock (the virtual
 * clock does not move while tasks run). */
typedef struct aioc_task_metrics {
  uint64_t runs;     /* times it was started or resumed */
  double run_time;   /* total time it ran */
  double run_max;    /* its longest single run (start or resume to the
                        next suspension or its end) */
  double ready_time; /* time it spent ready (spawned or woken) but not
                        yet running */
  size_t stack_used; /* high-water mark of its stack in bytes (to the
                        page), once it has ended; 0 before */
  size_t stack_size; /* the size of that stack, guard excluded */
} aioc_task_metrics;

/* Fills *out with t's metrics, while t lives and after it has ended.
 * Returns 0; -ENODATA if t's loop did not observe its timing when t was
 * spawned (*out zeroed); -EINVAL for NULL. */
AIOC_API int aioc_task_get_metrics(const aioc_task *t, aioc_task_metrics *out);

/* ---- task dumps ------------------------------------------------------- */

/* What a suspended task waits on. */
typedef enum aioc_wait_kind {
  AIOC_WAIT_KIND_NONE,      /* not suspended */
  AIOC_WAIT_KIND_FUTURE,    /* a future or a task (aioc_await, ...) */
  AIOC_WAIT_KIND_SLEEP,     /* aioc_sleep */
  AIOC_WAIT_KIND_QUEUE,     /* a queue (put or get) */
  AIOC_WAIT_KIND_LOCK,
  AIOC_WAIT_KIND_EVENT,
  AIOC_WAIT_KIND_CONDITION,
  AIOC_WAIT_KIND_SEMAPHORE,
  AIOC_WAIT_KIND_BARRIER,
  AIOC_WAIT_KIND_FD,        /* an fd's readiness */
  AIOC_WAIT_KIND_STREAM,    /* a stream's read or drain */
  AIOC_WAIT_KIND_ITERATOR,  /* a generator or an iterator */
  AIOC_WAIT_KIND_GROUP,     /* several futures (gather, wait, ...) */
  AIOC_WAIT_KIND_OTHER      /* a wait reached without a site */
} aioc_wait_kind;

/* A call site noted by the macros: a static record. */
typedef struct aioc_site {
  const char *file;
  int line;
  const char *call;    /* "aioc_queue_get", ... */
  aioc_wait_kind kind; /* what that call waits on */
} aioc_site;

/* A task's state in a dump. */
typedef enum aioc_task_state {
  AIOC_TASK_STATE_SCHEDULED, /* spawned, has not run yet */
  AIOC_TASK_STATE_READY,     /* woken, waits for the CPU */
  AIOC_TASK_STATE_RUNNING,   /* the task that asks */
  AIOC_TASK_STATE_SUSPENDED  /* waits on something */
} aioc_task_state;

/* One live task of a loop, as aioc_loop_get_tasks() sees it. Pointers
 * stay valid while the task lives (the name: until the task is renamed
 * or freed). */
typedef struct aioc_task_info {
  aioc_task *task;             /* not referenced: do not keep it */
  uint32_t id;                 /* the N of "Task-N": spawn order */
  const char *name;
  aioc_task_state state;
  aioc_wait_kind wait_kind;    /* AIOC_WAIT_KIND_NONE unless suspended */
  const aioc_site *wait_site;  /* where it waits, or NULL (unknown) */
  aioc_future *wait_future;    /* the future it awaits, or NULL */
  uint32_t awaits;             /* the id of the task it awaits, or 0 */
  double waited;    /* seconds suspended so far, loop time; -1: unknown */
  double deadline;  /* loop time its wait ends at the latest (its timeout
                       or a deadline scope), AIOC_FOREVER: none */
  uint32_t spawner; /* id of the task that spawned it, 0: plain code or
                       unknown (needs AIOC_OBSERVE_SPAWNS) */
  const aioc_site *spawn_site; /* where it was spawned, or NULL */
} aioc_task_info;

/* Fills out[0..cap) with the live tasks of loop (NULL: the thread's
 * running or current loop): started ones first, newest first, then those
 * waiting to start, in order. The tasks awaiting a task are the entries
 * whose awaits is its id. Returns the number of live tasks (more than
 * cap: only cap were filled), or -EINVAL (no loop, or out NULL with cap
 * not 0). */
AIOC_API int aioc_loop_get_tasks(aioc_loop *loop, aioc_task_info *out,
                                 size_t cap);

/* Writes a readable dump of loop's live tasks (NULL: the thread's running
 * or current loop) to out: the loop's metrics, then each task with its
 * state, what it waits on, where and for how long, its spawner and the
 * tasks awaiting it (and its timings when observed), the call stack of
 * each suspended task (aioc_task_get_stack(), a frame a line), then the
 * await tree. Call it on the loop's thread. Returns 0, -EINVAL or
 * -ENOMEM. */
AIOC_API int aioc_loop_dump(aioc_loop *loop, FILE *out);

/* Dumps loop's tasks (NULL: the thread's current loop) to out (NULL:
 * stderr) each time signum arrives, as Go dumps its goroutines on
 * SIGQUIT. The signal is received through aioc_signal_add() (a signalfd:
 * see aioc/signal.h for the rules on threads), so the dump runs on the
 * loop's thread, between tasks, never in a signal handler: it is safe
 * whatever the loop was doing when the signal came, and it waits until
 * the running task reaches a suspension point (a task blocking the loop
 * delays the dump). *out receives the handler: aioc_signal_free() stops
 * the dumps. Returns 0, or the codes of aioc_signal_add(). */
AIOC_API AIOC_NODISCARD int aioc_loop_dump_on_signal(aioc_signal **out,
                                                     aioc_loop *loop,
                                                     int signum, FILE *to);

/* "future", "queue", ... for a kind; "?" for a value out of range. */
AIOC_API const char *aioc_wait_kind_name(aioc_wait_kind kind);

/* aioc_task_state's "scheduled", "ready", "running", "suspended". */
AIOC_API const char *aioc_task_state_name(aioc_task_state state);

/* ---- stack use -------------------------------------------------------- */

/* The stack use of the tasks spawned at one site (AIOC_OBSERVE_STACKS):
 * high-water marks, measured when each task ends, to the page. */
typedef struct aioc_stack_use {
  const aioc_site *site; /* the spawn site, NULL: unknown (a spawn without
                            the macros, or the library's own) */
  uint64_t tasks;        /* tasks that ended */
  size_t max_used;       /* the most any of them used, bytes */
  size_t mean_used;      /* their mean, bytes */
  size_t stack_size;     /* the usable size of their stacks, bytes */
} aioc_stack_use;

/* Fills out[0..cap) with the stack use of loop's tasks (NULL: the
 * thread's running or current loop) per spawn site, in the order the
 * sites were first seen. A task that used more than 75% of its stack is
 * also reported when it ends, through the loop's report handler ("Task
 * used more than 75% of its stack", its use in the detail), unless the
 * loop is quiet. Returns the number of sites (more than cap: only cap
 * were filled), or -EINVAL (no loop, or out NULL with cap not 0). */
AIOC_API int aioc_loop_get_stack_use(aioc_loop *loop, aioc_stack_use *out,
                                     size_t cap);

/* Writes the same as a table to out, the site with the highest
 * high-water mark first. Returns 0, -EINVAL or -ENOMEM. */
AIOC_API int aioc_loop_write_stack_use(aioc_loop *loop, FILE *out);

/* ---- out-of-process inspection (aioc-ps) ------------------------------ */

/* The path of the debugging socket that loop (NULL: the thread's running
 * or current loop) serves for the aioc-ps tool, or NULL when it serves
 * none. A loop serves one when aioc_loop_options.debug_socket is set or
 * the AIOC_DEBUG_SOCKET environment variable is (any value), from the
 * first time it runs until it is closed: a Unix socket named
 * "<pid>.<n>.sock" in $XDG_RUNTIME_DIR/aioc, or in /tmp/aioc-<uid>
 * without that variable (a directory of the user's, mode 0700), that
 * only the same user (or root) may use. The loop answers it between
 * tasks, from its own thread, without a task of its own: a task that
 * blocks the loop blocks the answers too. A socket that cannot be set
 * up does not fail the loop: it is reported once through the loop's
 * report handler ("Debugging socket not served", the reason in the
 * detail) and the loop runs without it. The string lives until the loop
 * is closed. See aioc-ps(1). */
AIOC_API const char *aioc_loop_debug_socket(aioc_loop *loop);

/* Writes to out what loop's debugging socket answers to request (loop
 * NULL: the thread's running or current loop): "tasks", a line
 * "tasks N time T pid P" then a line per live task, in the order of
 * aioc_loop_get_tasks(), of 13 tab-separated fields (id, name, state,
 * wait kind, wait call, wait file, wait line, seconds waited, seconds
 * to the deadline, id of the task awaited, id of the spawner, spawn
 * file, spawn line; "-" when unknown or none; a tab, a newline or a
 * backslash in a name or a file is written \t, \n or \\); "dump",
 * the text of aioc_loop_dump(); "metrics", one "name value" line per
 * field of aioc_loop_metrics and "tasks N"; "stacks", the table of
 * aioc_loop_write_stack_use(). Anything from the first newline of
 * request on is ignored. Call it on the loop's thread. Returns 0,
 * -EINVAL (no loop, out or request NULL, request unknown) or -ENOMEM. */
AIOC_API int aioc_loop_write_debug(aioc_loop *loop, const char *request,
                                   FILE *out);

/* ---- stalls and call stacks ------------------------------------------ */

/* The most frames a stall report or aioc_task_get_stack() holds. */
#define AIOC_STACK_FRAMES_MAX 64

/* A stall: a task of a loop with a stall threshold (aioc_loop_options.
 * stall_threshold, or AIOC_STALL) that ran longer than the threshold
 * without reaching a suspension point. Valid during the handler's call
 * only. */
typedef struct aioc_stall_report {
  aioc_loop *loop;
  uint32_t task_id;      /* the N of "Task-N" */
  const char *task_name; /* its name ("Task-N" when it has none) */
  double blocked;        /* seconds it has run without suspending, as
                            the detector saw it (at least the threshold;
                            when ended: the total, to within a check
                            period) */
  int ended;             /* 0: the task still blocks the loop; 1: it
                            has suspended or ended since the report */
  void *const *frames;   /* its call stack when the stall was seen,
                            innermost first: the interrupted instruction,
                            then return addresses; NULL when unavailable
                            (and in the report of the end) */
  size_t nframes;
} aioc_stall_report;

/* A stall handler: called on the detector's thread, not the loop's,
 * once when a stall is seen and once when it ends. It must not call
 * the library's functions on the loop (the loop's thread is busy), nor
 * aioc_loop_set_stall_handler(). */
typedef void (*aioc_stall_fn)(void *arg, const aioc_stall_report *report);

/* Replaces the stall handler of loop (fn NULL: the default, which writes
 * each report to stderr with aioc_stall_report_write()). It matters only
 * when the loop has a stall threshold: a loop with one is watched while
 * it runs by a thread of the library, which signals the loop's thread
 * (aioc_stall_signal()) to take the call stack of a stalled task. Call
 * it on the loop's thread. Returns 0, -EINVAL (loop NULL or freed) or
 * -ENOMEM. */
AIOC_API int aioc_loop_set_stall_handler(aioc_loop *loop, aioc_stall_fn fn,
                                         void *arg);

/* Writes a stall report to out, as the default handler does: a line
 * naming the task and how long it blocked, then its stack, a frame a
 * line (aioc_frame_describe()). Returns 0, or -EINVAL for NULL. */
AIOC_API int aioc_stall_report_write(const aioc_stall_report *report,
                                     FILE *out);

/* The signal the stall detector sends a stalled loop's thread to take
 * the task's call stack: SIGRTMAX - 2 unless the AIOC_STALL_SIGNAL
 * environment variable names another real-time signal when the first
 * watched loop runs. Its handler is installed then, with SA_RESTART and
 * SA_ONSTACK; a program must not take that signal for itself. */
AIOC_API int aioc_stall_signal(void);

/* Fills frames[0..cap) with the call stack of task t, suspended (or
 * woken and not yet resumed), walked through its saved frame pointers
 * from the point where it switched out, innermost first (return
 * addresses; the first ones are the library's suspension). Call it on
 * t's loop's thread. Returns the number of frames filled; 0 when t has
 * no stack to walk (not started, ended, or running: the caller itself);
 * -EINVAL for NULL, or frames NULL with cap not 0. */
AIOC_API int aioc_task_get_stack(const aioc_task *t, void **frames,
                                 size_t cap);

/* Writes a readable name of the code at pc, a return address or an
 * instruction address, to buf (at most cap bytes, NUL included): the
 * function and the offset into it, then the object it is in
 * ("work_loop+0x2a (server)"), or the object and the offset into it
 * when no symbol covers pc ("(libaioc.so.1+0x1f3c0)": give it to
 * addr2line). Functions are found in the dynamic symbol table
 * (dladdr()), else in the symbol table of the object's file, read once
 * and kept mapped (static and hidden functions, when the file is not
 * stripped). Safe on any thread, not in a signal handler. Returns the
 * length written (truncated to cap - 1), or -EINVAL (buf NULL or cap
 * 0). */
AIOC_API int aioc_frame_describe(const void *pc, char *buf, size_t cap);

/* ---- the call-site macros --------------------------------------------- */

/* Internal: the site of the next wait, and of the next spawn, of the
 * calling thread (set by the macros, taken by the library). */
AIOC_API extern __thread const aioc_site *aioc__site_next;
AIOC_API extern __thread const aioc_site *aioc__spawn_next;

#if !defined(AIOC_NO_SITES) && !defined(AIOC_BUILDING) &&                      \
    (defined(__GNUC__) || defined(__clang__))
#define AIOC__CAT2(a, b) a##b
#define AIOC__CAT(a, b) AIOC__CAT2(a, b)
#define AIOC__SITE_CALL(var, slot, kind, fn, ...)                              \
  __extension__({                                                              \
    static const aioc_site var = {__FILE__, __LINE__, #fn, kind};              \
    slot = &var;                                                               \
    fn(__VA_ARGS__);                                                           \
  })
#define AIOC__WAIT(kind, fn, ...)                                              \
  AIOC__SITE_CALL(AIOC__CAT(aioc__site_, __COUNTER__), aioc__site_next,       \
                  AIOC_WAIT_KIND_##kind, fn, __VA_ARGS__)
#define AIOC__SPAWN(fn, ...)                                                   \
  AIOC__SITE_CALL(AIOC__CAT(aioc__site_, __COUNTER__), aioc__spawn_next,      \
                  AIOC_WAIT_KIND_NONE, fn, __VA_ARGS__)

#define aioc_spawn(...) AIOC__SPAWN(aioc_spawn, __VA_ARGS__)
#define aioc_spawn_ex(...) AIOC__SPAWN(aioc_spawn_ex, __VA_ARGS__)
#define aioc_await(...) AIOC__WAIT(FUTURE, aioc_await, __VA_ARGS__)
#define aioc_task_await(...) AIOC__WAIT(FUTURE, aioc_task_await, __VA_ARGS__)
#define aioc_wait_for(...) AIOC__WAIT(FUTURE, aioc_wait_for, __VA_ARGS__)
#define aioc_gather(...) AIOC__WAIT(GROUP, aioc_gather, __VA_ARGS__)
#define aioc_sleep(...) AIOC__WAIT(SLEEP, aioc_sleep, __VA_ARGS__)
#define aioc_queue_get(...) AIOC__WAIT(QUEUE, aioc_queue_get, __VA_ARGS__)
#define aioc_queue_put(...) AIOC__WAIT(QUEUE, aioc_queue_put, __VA_ARGS__)
#define aioc_lock_acquire(...) AIOC__WAIT(LOCK, aioc_lock_acquire, __VA_ARGS__)
#define aioc_event_wait(...) AIOC__WAIT(EVENT, aioc_event_wait, __VA_ARGS__)
#define aioc_condition_wait(...)                                               \
  AIOC__WAIT(CONDITION, aioc_condition_wait, __VA_ARGS__)
#define aioc_condition_wait_for(...)                                           \
  AIOC__WAIT(CONDITION, aioc_condition_wait_for, __VA_ARGS__)
#define aioc_semaphore_acquire(...)                                            \
  AIOC__WAIT(SEMAPHORE, aioc_semaphore_acquire, __VA_ARGS__)
#define aioc_barrier_wait(...) AIOC__WAIT(BARRIER, aioc_barrier_wait, __VA_ARGS__)
#define aioc_wait_readable(...) AIOC__WAIT(FD, aioc_wait_readable, __VA_ARGS__)
#define aioc_wait_writable(...) AIOC__WAIT(FD, aioc_wait_writable, __VA_ARGS__)
#define aioc_stream_read(...) AIOC__WAIT(STREAM, aioc_stream_read, __VA_ARGS__)
#define aioc_stream_readexactly(...)                                           \
  AIOC__WAIT(STREAM, aioc_stream_readexactly, __VA_ARGS__)
#define aioc_stream_readline(...)                                              \
  AIOC__WAIT(STREAM, aioc_stream_readline, __VA_ARGS__)
#define aioc_stream_readuntil(...)                                             \
  AIOC__WAIT(STREAM, aioc_stream_readuntil, __VA_ARGS__)
#define aioc_stream_drain(...) AIOC__WAIT(STREAM, aioc_stream_drain, __VA_ARGS__)
#define aioc_gen_next(...) AIOC__WAIT(ITERATOR, aioc_gen_next, __VA_ARGS__)
#define aioc_iter_next(...) AIOC__WAIT(ITERATOR, aioc_iter_next, __VA_ARGS__)
#define aioc_tsqueue_get(...) AIOC__WAIT(QUEUE, aioc_tsqueue_get, __VA_ARGS__)
#endif

#ifdef __cplusplus
}
#endif
#endif /* AIOC_OBSERVE_H */

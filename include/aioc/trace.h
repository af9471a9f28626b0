/* aioc/trace.h: the flight recorder.
 *
 * A loop that observes AIOC_OBSERVE_EVENTS (aioc/observe.h) keeps a ring
 * of its last events: spawns, runs, suspensions with their call site,
 * wake-ups with their cause, timer fires, fd readiness, cancellations,
 * task ends and errors. The ring is allocated when the loop is created
 * (aioc_loop_options.trace_events events, or AIOC_TRACE_EVENTS, else
 * 4096) and overwrites its oldest event when full. It is read as
 * structured data, or written as Chrome trace-event JSON (Perfetto and
 * chrome://tracing open it; tools/aioc-trace2svg.py draws it as an SVG
 * timeline, one lane per task): on demand, on a signal, and by itself
 * when a task's error goes unobserved: the loop's report "Task exception
 * was never retrieved" then writes the trace as aioc_loop_trace_save()
 * does with path NULL, and its detail ends with "; trace written to
 * <path>". Read it on the loop's thread. */
#ifndef AIOC_TRACE_H
#define AIOC_TRACE_H

#include <stdio.h>

#include "observe.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What an event records. */
typedef enum aioc_trace_kind {
  AIOC_TRACE_SPAWN,   /* task was spawned (other: its spawner, site: where) */
  AIOC_TRACE_RUN,     /* task starts or resumes running */
  AIOC_TRACE_SUSPEND, /* task parks (site: where, wait_kind: on what) */
  AIOC_TRACE_YIELD,   /* task gives up the CPU and stays ready */
  AIOC_TRACE_WAKE,    /* task is made ready (cause: by what, code: the
                         code its wait returns) */
  AIOC_TRACE_END,     /* task's function returned (code: its code) */
  AIOC_TRACE_ERROR,   /* task ended with an error (code: the error) */
  AIOC_TRACE_CANCEL,  /* task's cancellation was asked (other: by which
                         task, 0: plain code or a callback) */
  AIOC_TRACE_TIMER,   /* a timer fired (timer: which, code: how late, us) */
  AIOC_TRACE_FD       /* an fd was ready (fd, events: EPOLLIN, ...) */
} aioc_trace_kind;

/* What made a task ready (AIOC_TRACE_WAKE). */
typedef enum aioc_trace_cause {
  AIOC_TRACE_CAUSE_NONE,     /* not a wake-up */
  AIOC_TRACE_CAUSE_TASK,     /* another task (other: its id) */
  AIOC_TRACE_CAUSE_TIMER,    /* a timer: a timeout, a sleep (timer) */
  AIOC_TRACE_CAUSE_FD,       /* an fd's readiness (fd, events) */
  AIOC_TRACE_CAUSE_CANCEL,   /* a cancellation */
  AIOC_TRACE_CAUSE_CALLBACK  /* a callback, or plain code */
} aioc_trace_cause;

/* One event of the ring. */
typedef struct aioc_trace_event {
  double time;            /* seconds of the monotonic clock (CLOCK_MONOTONIC,
                             not the loop's clock) */
  aioc_trace_kind kind;
  uint32_t task;          /* the task's id (the N of "Task-N"), 0: none */
  aioc_trace_cause cause; /* AIOC_TRACE_WAKE only */
  uint32_t other;         /* a second task's id (see the kinds), 0: none */
  int code;               /* see the kinds, 0 otherwise */
  int fd;                 /* AIOC_TRACE_FD, a wake by an fd; -1 otherwise */
  uint32_t events;        /* the fd's epoll events, 0 otherwise */
  aioc_wait_kind wait_kind; /* AIOC_TRACE_SUSPEND: what the task waits on */
  const aioc_site *site;  /* SPAWN, SUSPEND: the call site, or NULL */
  const void *timer;      /* TIMER, a wake by a timer: the timer's address
                             (an identity, not to be dereferenced) */
} aioc_trace_event;

/* Copies the events held by loop's recorder (loop NULL: the thread's
 * running or current loop) to out[0..cap), oldest first; if lost is not
 * NULL, *lost receives the number of events overwritten by the ring's
 * wrap since the loop was created or last cleared. Returns the number of
 * events held (more than cap: only the oldest cap were copied), -ENODATA
 * (the loop records no events: AIOC_OBSERVE_EVENTS was off when it was
 * created) or -EINVAL (no loop, or out NULL with cap not 0). */
AIOC_API int aioc_loop_trace_get(aioc_loop *loop, aioc_trace_event *out,
                                 size_t cap, uint64_t *lost);

/* Empties loop's ring (NULL: the thread's running or current loop) and
 * zeroes its count of lost events; task names noted at spawn are kept.
 * Returns 0, -ENODATA (no recorder) or -EINVAL (no loop). */
AIOC_API int aioc_loop_trace_clear(aioc_loop *loop);

/* Writes the events held by loop's recorder (NULL: the thread's running
 * or current loop) to out as Chrome trace-event JSON (an object with a
 * "traceEvents" array): one lane ("tid") per task, named by a
 * "thread_name" metadata event, and the lane 0, "loop", for timers and
 * fds; each run as an "X" event from its start or resume to its next
 * suspension (or to now for the running task); spawns, suspensions with
 * their site, wake-ups with their cause, cancellations, ends, errors,
 * timer fires and fd readiness as instant events ("i") with "args".
 * Times ("ts", "dur") are microseconds from the oldest event held.
 * Returns 0, -ENODATA (no recorder), -EINVAL (no loop, out NULL),
 * -ENOMEM, or -EIO (a write to out failed). */
AIOC_API int aioc_loop_trace_write(aioc_loop *loop, FILE *out);

/* Writes the same to the file path (created or truncated); path NULL: a
 * new file aioc-trace-<pid>-<n>.json in the directory named by the
 * AIOC_TRACE_DIR environment variable, else the current directory. If
 * name is not NULL, name[0..cap) receives the path written (truncated to
 * fit, terminated). Returns 0, the codes of aioc_loop_trace_write(), or
 * the error of opening the file (-EACCES, -ENOENT, ...). */
AIOC_API int aioc_loop_trace_save(aioc_loop *loop, const char *path,
                                  char *name, size_t cap);

/* Writes loop's trace (NULL: the thread's current loop) with
 * aioc_loop_trace_save() to path (NULL: a new file each time, as there)
 * each time signum arrives. The signal is received through
 * aioc_signal_add() (a signalfd: see aioc/signal.h for the rules on
 * threads), so the trace is written on the loop's thread, between tasks,
 * never in a signal handler. path must stay valid until the handler is
 * freed. *out receives the handler: aioc_signal_free() stops the writes.
 * Returns 0, -ENODATA (the loop records no events), or the codes of
 * aioc_signal_add(). */
AIOC_API AIOC_NODISCARD int aioc_loop_trace_on_signal(aioc_signal **out,
                                                      aioc_loop *loop,
                                                      int signum,
                                                      const char *path);

/* "spawn", "run", "suspend", "yield", "wake", "end", "error", "cancel",
 * "timer", "fd" for a kind; "?" for a value out of range. */
AIOC_API const char *aioc_trace_kind_name(aioc_trace_kind kind);

/* "none", "task", "timer", "fd", "cancel", "callback" for a cause; "?"
 * for a value out of range. */
AIOC_API const char *aioc_trace_cause_name(aioc_trace_cause cause);

#ifdef __cplusplus
}
#endif
#endif /* AIOC_TRACE_H */

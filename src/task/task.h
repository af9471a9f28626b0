/* Task layer internals: futures, waiters, tasks, suspension, scopes. */
#ifndef AIOC_TASK_INTERNAL_H
#define AIOC_TASK_INTERNAL_H

#include "../loop/loop.h"

/* Something waiting for a future: notified (without running user code)
 * when the future completes. Nodes usually live on the waiting task's
 * stack. The waiters of a future form a ring; the future points at the
 * first one (NULL: none). next is NULL while a waiter is detached. (A
 * headless ring keeps the future, and so the 64-byte task record, one
 * pointer smaller than a list head of src/util/list.h would.) */
typedef struct aioc__waiter aioc__waiter;
struct aioc__waiter {
  aioc__waiter *next, *prev;
  aioc_future *f; /* the future waited on, while attached */
  void (*notify)(aioc__waiter *self, aioc_future *f);
};

/* The rarely needed part of a future, allocated on first need: error
 * message and payload, how to free an untaken result, and for tasks a
 * name and a stack size of their own. Plain futures have one from the
 * start, so that setting their result never fails. */
typedef struct aioc__fext {
  char *msg;
  void *payload;
  aioc_free_fn payload_free;
  aioc_free_fn result_free;
  char *name;      /* tasks: given, or "Task-<id>" once asked for */
  void (*on_block)(aioc_task *t); /* tasks: see aioc__task_set_on_block */
  size_t stride;   /* tasks: stack stride, 0 for the loop's */
  struct aioc__tobs *obs; /* tasks of an observing loop, or NULL */
} aioc__fext;

/* What an observing loop (loop->observe) keeps of a task, from its spawn
 * to the free of its record; times in ns of the monotonic clock. */
typedef struct aioc__tobs {
  uint32_t spawner;   /* tid of the task that spawned it, 0: plain code */
  const aioc_site *spawn_site; /* where (observe.h's macros), or NULL */
  int64_t ready_at;   /* made ready then (0: not ready) */
  int64_t run_start;  /* running since */
  uint64_t runs;
  int64_t run_ns, run_max, ready_ns;
  size_t stack_used, stack_size;
} aioc__tobs;

/* The observation hooks of the task layer (task.c), called on the slow
 * path (t->f.slow), which observed tasks take: t starts or resumes
 * running (in), stops (out), is made ready (ready). Each records the
 * flight recorder's event when the loop has one (loop->trace), the
 * task's timings when the loop observes them and (in, out) what the stall
 * detector watches. A task of a loop watched for stalls has the slow bit
 * without a side record (t->f.ext may be NULL on the slow path). */
AIOC_HIDDEN void aioc__tobs_in(aioc_task *t);
AIOC_HIDDEN void aioc__tobs_out(aioc_task *t);
AIOC_HIDDEN void aioc__tobs_ready(aioc_task *t);
/* t's function returned rc (tobs_out, and the end's event). */
AIOC_HIDDEN void aioc__tobs_end(aioc_task *t, int rc);

/* The flight recorder's task hooks (src/observe/trace.c), called with
 * loop->trace set, from the hooks above and from the cold paths of
 * spawning and cancelling. */
AIOC_HIDDEN void aioc__trace_spawn(aioc_task *t, uint32_t spawner,
                                   const aioc_site *site);
AIOC_HIDDEN void aioc__trace_run(aioc_task *t);
AIOC_HIDDEN void aioc__trace_out(aioc_task *t);
AIOC_HIDDEN void aioc__trace_wake(aioc_task *t);
AIOC_HIDDEN void aioc__trace_end(aioc_task *t, int rc);
AIOC_HIDDEN void aioc__trace_cancel(aioc_task *t);
/* A task's error nobody retrieved is reported: writes the trace to a new
 * file and returns detail with the file's name (allocated), or NULL (not
 * written, or no memory). */
AIOC_HIDDEN char *aioc__trace_unretrieved(aioc_loop *loop, const char *detail);

/* Stack use of the tasks spawned at one site (AIOC_OBSERVE_STACKS). */
typedef struct aioc__stack_site {
  const aioc_site *site; /* NULL: unknown */
  uint64_t tasks;
  size_t max_used, stack_size;
  uint64_t sum_used;
} aioc__stack_site;

/* The future t is suspended in aioc_await() on, or NULL. */
AIOC_HIDDEN aioc_future *aioc__task_awaiting(const aioc_task *t);

static inline bool aioc__observes_timing(const aioc_loop *loop) {
  return aioc__unlikely(loop->observe & AIOC_OBSERVE_TIMING);
}

/* A future, and the first 56 bytes of a task record. A task record is 64
 * bytes in all: spawning a million tasks is bound by touching fresh
 * memory, so the state a task needs only while it runs (its context,
 * scopes, wait, error message) lives in its stack frame (aioc__trun) and
 * the cold part in ext. */
struct aioc_future {
  uintptr_t qnext; /* tasks: link in the ready queue (loop.h) */
  aioc_loop *loop;
  aioc__waiter *waiters;
  void *result;    /* tasks: holds the argument until the task starts */
  aioc__fext *ext; /* NULL until needed (tasks) */
  int32_t err;
  uint32_t refs;
  uint8_t state : 2; /* pending, done, cancelled (running: see tstate) */
  uint8_t is_task : 1;
  uint8_t retrieved : 1;    /* outcome observed by someone */
  uint8_t result_taken : 1; /* ownership of the result passed on */
  /* Tasks only (here so that the record stays at 64 bytes). */
  uint8_t queued : 1;
  uint8_t slow : 1; /* blocking and waking take the slow path: ext->on_block
                       is set, or the task is observed (ext->obs, or its
                       loop's flight recorder) */
  uint8_t reported : 1;      /* reported abandoned by aioc_run: its
                                loop's close does not report it again */
  uint8_t tstate;            /* a whole byte: written on every switch */
  uint16_t cancel_requested; /* pending requests, saturating */
  uint32_t tid;                  /* "Task-<tid>": spawn count, mod 2^32 */
  AIOC__ARMOR_FIELD /* debug builds only: the record grows to 72 bytes */
};

/* What a suspended task waits on: unhook() detaches it (for cancellation
 * and deadlines) before the task is woken by someone else. */
typedef struct aioc__wait aioc__wait;
struct aioc__wait {
  void (*unhook)(aioc_task *t, aioc__wait *self);
};

enum { T_CREATED, T_READY, T_RUNNING, T_SUSPENDED, T_FINISHED };

/* The one wait with an optional timer, which every suspension of the
 * layers above goes through (sleep, wait, the waitpoint, the sync
 * waiters, generators, the thread-safe queue, I/O): a task (or plain code
 * running the loop, t NULL) waits until someone wakes it
 * (aioc__twait_wake), its timer fires, or it is interrupted
 * (cancellation, a deadline in scope, its loop closing). Whatever the
 * way out, detach (if set) runs exactly once first, to leave the list or
 * object the waiter is queued on, and the timer is disarmed. */
typedef struct aioc__twait aioc__twait;
struct aioc__twait {
  aioc__wait w;   /* what the task layer sees */
  aioc__timer tm; /* armed only for a finite deadline */
  aioc_task *t;   /* the waiting task; NULL: plain code */
  void (*detach)(aioc__twait *self);
  int expiry;     /* the code the timer wakes the task with */
  bool expired;   /* the timer fired */
};

/* What a task has while it has a stack: it lives in the frame at the top
 * of that stack (task_main), which is touched anyway. */
/* The live-object operations of started tasks. */
AIOC_HIDDEN extern const aioc__live_ops aioc__task_live_ops;

typedef struct aioc__trun {
  aioc__coro coro;
  aioc__live live; /* in loop->live, ops aioc__task_live_ops */
  aioc_task *task;
  aioc_fn fn;
  void *arg;
  aioc_scope *scopes; /* innermost first */
  aioc__wait *wait;   /* set while suspended on something */
  char *errmsg;       /* message for errcode (aioc_error, failed awaits) */
  int errcode;
  int wake_rc;
  uint32_t nocancel; /* internal uninterruptible waits */
  /* The last wait, for dumps: its call site (the macros of observe.h;
   * NULL: unknown) and when it began (loop ns, -1: unknown). */
  const aioc_site *site;
  int64_t wait_since;
} aioc__trun;

struct aioc_task {
  aioc_future f;
  union {
    aioc_fn fn;    /* T_CREATED: the function (its argument: f.result) */
    aioc__trun *r; /* started, until its stack goes back to the pool */
  };
};

#if UINTPTR_MAX == UINT64_MAX && !AIOC__ARMOR
_Static_assert(sizeof(aioc_task) == 64, "a task record is 64 bytes");
#endif

/* Armor checks (see common.h): a future call takes a plain future or a
 * task; a task call, a task only. */
#define AIOC__FUTURE_OK(f, fn)                                                 \
  AIOC__ARMOR_CHECK((f)->armor == AIOC__MAGIC_FUTURE ||                        \
                        (f)->armor == AIOC__MAGIC_TASK,                        \
                    fn, "future")
#define AIOC__TASK_OK(t, fn) AIOC__ARMOR_OK(&(t)->f, AIOC__MAGIC_TASK, fn, "task")
#define AIOC__SCOPE_OK(s, fn) AIOC__ARMOR_OK(s, AIOC__MAGIC_SCOPE, fn, "scope")

/* Has t a stack (and so t->r)? */
static inline bool aioc__task_started(const aioc_task *t) {
  return t->f.tstate != T_CREATED && t->f.tstate != T_FINISHED;
}

/* Is t suspended on w (for timers and notifications that may come late)? */
static inline bool aioc__task_waits_on(const aioc_task *t,
                                       const aioc__wait *w) {
  return t->f.tstate == T_SUSPENDED && t->r->wait == w;
}

struct aioc_scope {
  aioc__timer tm;
  aioc_scope *parent;
  aioc_task *task;
  uint8_t kind; /* SCOPE_TIMEOUT, SCOPE_MOVE_ON, SCOPE_SHIELD */
  bool expired;
  bool entered; /* between enter and exit (or its task's end) */
  int64_t deadline; /* readable after exit, when the timer is disarmed */
  AIOC__ARMOR_FIELD
};
AIOC_HIDDEN void aioc__scope_unlink(aioc_scope *s);
enum { SCOPE_TIMEOUT, SCOPE_MOVE_ON, SCOPE_SHIELD };

/* ---- futures ---- */
static inline void aioc__future_init(aioc_future *f, aioc_loop *loop,
                                     bool is_task) {
  *f = (aioc_future){.loop = loop,
                     .refs = 1,
                     .state = AIOC_FUTURE_PENDING,
                     .is_task = is_task,
                     .tstate = T_CREATED};
  AIOC__ARMOR_SET(f, is_task ? AIOC__MAGIC_TASK : AIOC__MAGIC_FUTURE);
  aioc__loop_ref(loop);
}
AIOC_HIDDEN void aioc__future_add_waiter(aioc_future *f, aioc__waiter *w);
AIOC_HIDDEN void aioc__future_del_waiter(aioc__waiter *w);
/* Sets the outcome and notifies the waiters. msg may be NULL. */
AIOC_HIDDEN void aioc__future_finish(aioc_future *f, uint8_t state, int err,
                                     void *result, char *msg);
/* Takes the outcome for an awaiter; passes the error message on to t. */
AIOC_HIDDEN int aioc__future_take(aioc_future *f, void **result,
                                  aioc_task *t);
AIOC_HIDDEN void aioc__future_free(aioc_future *f);

/* ---- tasks ---- */
static inline aioc_task *aioc__current(void) {
  aioc_loop *loop = aioc__running;
  return loop ? loop->current : NULL;
}

/* 0, or -ECANCELED / -ETIMEDOUT if the task must not wait any more. */
AIOC_HIDDEN int aioc__task_check_slow(aioc_task *t);
static inline int aioc__task_check(aioc_task *t) {
  if (aioc__likely(!t->f.cancel_requested && !t->r->scopes)) return 0;
  return aioc__task_check_slow(t);
}

/* Parks the running task t on w; returns the code it is woken with. */
AIOC_HIDDEN int aioc__task_suspend(aioc_task *t, aioc__wait *w);
/* Wakes a suspended task (its wait must already be detached). */
AIOC_HIDDEN void aioc__task_wake(aioc_task *t, int rc);
/* Detaches whatever t waits on and wakes it with rc. */
AIOC_HIDDEN void aioc__task_interrupt(aioc_task *t, int rc);
/* Requeues the running task and lets the loop run (sleep(0)). */
AIOC_HIDDEN void aioc__task_yield(aioc_task *t);
AIOC_HIDDEN void aioc__task_set_errmsg(aioc_task *t, int code, char *msg);
AIOC_HIDDEN const char *aioc__task_display_name(const aioc_task *t);

/* Creates a task without scheduling it (queue false) or scheduling it
 * like aioc_spawn_ex (queue true). */
AIOC_HIDDEN int aioc__task_create(aioc_task **out, aioc_loop *loop, aioc_fn fn,
                                  void *arg, const aioc_task_options *opts,
                                  bool queue);

/* The generator hand-offs: the running task `from` parks on w (a wait
 * its caller owns, woken by a later hand-off or through the loop) and
 * `to` runs right now, with no loop round trip. The two are one logical
 * thread: the floating-point control state passes over
 * (aioc__coro_switch_inherit). Each returns from's wake code once from is
 * resumed. */

/* `to` has never run: it starts. If it cannot (no stack, or cancelled
 * first), it ends, from is not parked, and the code is returned. */
AIOC_HIDDEN int aioc__task_transfer(aioc_task *from, aioc__wait *w,
                                    aioc_task *to);

/* `to` has started and is parked on a wait the caller owns, which it
 * leaves without its unhook; it resumes with wake code rc. */
static inline int aioc__task_switch_to(aioc_task *from, aioc__wait *w,
                                       aioc_task *to, int rc) {
  /* A generator's body has the slow bit for its on_block function: the
   * hooks only when its loop observes something. */
  bool timed = aioc__unlikely(from->f.slow) && from->f.loop->observe;
  if (aioc__unlikely(timed)) aioc__tobs_out(from);
  from->r->wait = w;
  from->f.tstate = T_SUSPENDED;
  to->r->wake_rc = rc;
  to->r->wait = NULL;
  to->f.tstate = T_RUNNING;
  to->f.loop->current = to;
  /* One logical thread: the cooperative budget goes on counting. */
  aioc__coro_switch_inherit(&from->r->coro, &to->r->coro);
  if (aioc__unlikely(timed)) aioc__tobs_in(from);
  return from->r->wake_rc;
}

/* Puts a task (created, or woken) on its loop's ready queue. */
static inline void aioc__task_push(aioc_task *t) {
  t->f.queued = 1;
  aioc__queue_push(t->f.loop, (aioc__qnode *)&t->f.qnext, AIOC__QTASK);
}

/* Calls fn(t, arg) for every unfinished task of the loop: started ones,
 * then those waiting in the ready queue to start. fn may cancel t. */
AIOC_HIDDEN void aioc__tasks_each(aioc_loop *loop,
                                  void (*fn)(aioc_task *t, void *arg),
                                  void *arg);

/* The cold part of f, allocated if missing (NULL when out of memory). */
AIOC_HIDDEN aioc__fext *aioc__future_ext(aioc_future *f);

/* Called (when set) as a generator's body task is about to block in the
 * loop: the gen layer arms its consumer's deadline lazily. */
/* Makes fn(t) run each time t is about to block in the loop (a
 * generator's body: its consumer's deadline starts to matter then).
 * Returns 0 or -ENOMEM. */
/* A failure of a library call: the code, with its message (formatted,
 * truncated to 1 KiB) for the current task (aioc_error()) or, from plain
 * code, the thread's (aioc_error_message() outside a task). */
AIOC_HIDDEN int aioc__fail(int code, const char *fmt, ...) AIOC_PRINTF(2, 3);

AIOC_HIDDEN int aioc__task_set_on_block(aioc_task *t, void (*fn)(aioc_task *));

/* Does t have an on_block function? */
static inline bool aioc__task_has_on_block(const aioc_task *t) {
  return t->f.slow && t->f.ext && t->f.ext->on_block;
}

/* ---- the timed wait (twait.c) ---- */

AIOC_HIDDEN void aioc__twait_unhook(aioc_task *t, aioc__wait *w);
AIOC_HIDDEN void aioc__twait_fire(aioc_loop *loop, aioc__timer *tm);

/* Prepares tw for a wait of t (NULL: plain code) that the timer ends with
 * expiry (-ETIMEDOUT, or 0 for a sleep). Cheap: generators do it for each
 * item. */
static inline void aioc__twait_init(aioc__twait *tw, aioc_task *t,
                                    void (*detach)(aioc__twait *),
                                    int expiry) {
  tw->w.unhook = aioc__twait_unhook;
  tw->t = t;
  tw->detach = detach;
  tw->expiry = expiry;
  tw->expired = false;
  /* Not armed; arming sets the rest of the timer. */
  tw->tm.idx = AIOC__NOTIMER;
  tw->tm.fire = aioc__twait_fire;
}

/* Arms the timer for deadline (loop ns; AIOC__NEVER: no timer). Returns
 * 0, or -ENOMEM when the timer cannot be armed: a wait with a deadline
 * must not then wait at all. A deadline already reached fires at the
 * loop's next iteration. Re-arming an armed wait never fails. */
AIOC_HIDDEN int aioc__twait_arm(aioc__twait *tw, aioc_loop *loop,
                                int64_t deadline);

/* Is the timer armed? */
static inline bool aioc__twait_armed(const aioc__twait *tw) {
  return tw->tm.idx != AIOC__NOTIMER;
}

/* Stops the timer (if armed). */
static inline void aioc__twait_disarm(aioc__twait *tw, aioc_loop *loop) {
  if (tw->tm.idx != AIOC__NOTIMER) aioc__timer_disarm(loop, &tw->tm);
}

/* Parks the task on tw: returns the code it is woken with. */
static inline int aioc__twait_suspend(aioc__twait *tw) {
  return aioc__task_suspend(tw->t, &tw->w);
}

/* Is the task parked on tw (and not yet woken)? */
static inline bool aioc__twait_is_parked(const aioc__twait *tw) {
  return tw->t && aioc__task_waits_on(tw->t, &tw->w);
}

/* Wakes the task parked on tw with rc: it leaves what it is queued on
 * (detach) and its timer stops. */
AIOC_HIDDEN void aioc__twait_wake(aioc__twait *tw, int rc);

/* The same for a waker that has already taken the waiter off its list
 * itself (under a lock its detach would take): detach does not run. */
static inline void aioc__twait_wake_detached(aioc__twait *tw, int rc) {
  aioc__twait_disarm(tw, tw->t->f.loop);
  aioc__task_wake(tw->t, rc);
}

/* A task parked on a list of waiters (a stream's drainers, a server's
 * closers): the timed wait above, queued on the list, which it leaves
 * whatever ends the wait. */
typedef struct aioc__lwait {
  aioc__twait tw;
  aioc__list link;
} aioc__lwait;

/* Parks t on l until aioc__lwait_wake_all(), deadline (loop ns;
 * AIOC__NEVER: none) or an interruption. Returns the wake code, or at
 * once -ECANCELED / -ETIMEDOUT (cancelled, a deadline in scope or this
 * one passed) or -ENOMEM (no timer): nothing queued then. */
AIOC_HIDDEN int aioc__lwait_park(aioc__list *l, aioc_task *t,
                                 int64_t deadline);

/* Wakes every task parked on l with rc. */
AIOC_HIDDEN void aioc__lwait_wake_all(aioc__list *l, int rc);

/* A place where one waiter — a task, or plain code running the loop —
 * waits for a condition, with an optional timeout (Group, merge). */
typedef struct aioc__waitpoint {
  aioc__twait tw;    /* tw.t: the task waiting, or NULL */
  aioc_loop *loop;
  bool waiting;      /* someone waits (task or plain code) */
  bool (*cond)(void *);
  void *arg;
} aioc__waitpoint;
AIOC_HIDDEN void aioc__waitpoint_init(aioc__waitpoint *wp, aioc_loop *loop);
/* Waits until cond(arg) holds: 0, -ETIMEDOUT, -ECANCELED (not when
 * uninterruptible, which takes no timeout), -EBUSY (someone waits
 * already), AIOC_ERUNNING (in a callback), -ENOMEM (the timer of a finite
 * timeout could not be armed: nothing waited) or a loop error. */
AIOC_HIDDEN int aioc__waitpoint_wait(aioc__waitpoint *wp, bool (*cond)(void *),
                                     void *arg, double timeout,
                                     bool uninterruptible);
/* The condition may hold now: wakes the waiting task if it does. */
AIOC_HIDDEN void aioc__waitpoint_notify(aioc__waitpoint *wp);

/* A list of errors (code and message), as TaskGroup and Group keep. */
typedef struct aioc__errent {
  int code;
  char *msg;
} aioc__errent;
typedef struct aioc__errlist {
  aioc__errent *v;
  size_t n, cap;
} aioc__errlist;
AIOC_HIDDEN void aioc__errlist_add(aioc__errlist *l, int code, const char *msg);
/* The count; for i below it, the i-th entry in *code and *msg. */
AIOC_HIDDEN int aioc__errlist_get(const aioc__errlist *l, size_t i, int *code,
                                  const char **msg);
/* The first error's code (0 if none); its message goes to t if not NULL. */
AIOC_HIDDEN int aioc__errlist_first(const aioc__errlist *l, aioc_task *t);
AIOC_HIDDEN void aioc__errlist_clear(aioc__errlist *l);
AIOC_HIDDEN void aioc__errlist_free(aioc__errlist *l);

/* Where aioc_error() puts its message when no task runs on the thread
 * (set by the thread layer around a job: *sink receives the formatted
 * message, replacing and freeing an earlier one); NULL: dropped. */
AIOC_HIDDEN extern __thread char **aioc__error_sink;

/* Waits for f ignoring cancellation and deadlines (internal cleanup). */
AIOC_HIDDEN void aioc__await_uninterruptible(aioc_task *t, aioc_future *f);

#endif

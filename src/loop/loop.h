/* Loop layer internals: ready queue, timers, poller, clock. */
#ifndef AIOC_LOOP_INTERNAL_H
#define AIOC_LOOP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "../coro/coro.h"

/* The ready queue holds two kinds of node, each starting with its link:
 * runnables (callback handles and the like), whose run() says what to do,
 * and tasks, which have no run pointer (a task record is 64 bytes and
 * those 8 would be an eighth of it). A link to a task has its low bit set
 * (AIOC__QTASK); the loop steps tasks through loop->step_task, which the
 * task layer sets when it creates the loop's first task (the loop knows
 * nothing of tasks). */
typedef struct aioc__qnode {
  uintptr_t next;
} aioc__qnode;

typedef struct aioc__runnable aioc__runnable;
struct aioc__runnable {
  uintptr_t next;
  void (*run)(aioc__runnable *self);
};
#define AIOC__QTASK ((uintptr_t)1)

typedef struct aioc__queue {
  uintptr_t head;     /* tagged link to the first node, 0 when empty */
  aioc__qnode *tail;
  size_t len;
} aioc__queue;

/* A timer: an entry in the loop's heap, fired by moving its owner to the
 * ready queue (no user code runs while timers are collected). */
typedef struct aioc__timer aioc__timer;
struct aioc__timer {
  int64_t when;  /* loop time in ns */
  uint64_t seq;  /* ties fire in the order armed */
  uint32_t idx;  /* heap position, AIOC__NOTIMER when not armed */
  void (*fire)(aioc_loop *loop, aioc__timer *self);
};
#define AIOC__NOTIMER UINT32_MAX
#define AIOC__NEVER INT64_MAX

typedef struct aioc__heap_entry {
  int64_t when;
  aioc__timer *t;
} aioc__heap_entry;

/* An object that lives on a loop until it ends (a started task, a
 * generator). It carries its own operations, so the loop ends what is
 * left when it closes without knowing the layers above it. */
typedef struct aioc__live aioc__live;
typedef struct aioc__live_ops {
  /* Asked once before the loop closes (at aioc_run()'s end and in
   * aioc_loop_close()), with the loop free to run: end gracefully (a
   * generator runs its cleanup). May run the loop, which may end (and
   * free) other live objects. NULL: nothing to do. */
  void (*shutdown)(aioc__live *n);
  /* The loop closes under it: n is already unlinked; end at once,
   * running nothing. */
  void (*abandon)(aioc__live *n);
} aioc__live_ops;
struct aioc__live {
  aioc__list link; /* in loop->live */
  const aioc__live_ops *ops;
  bool shut; /* shutdown was asked */
};

/* Per-loop state of a layer above (the DNS channel, the signal
 * dispatcher), found by its key: the address of a static object of that
 * layer. A loop has at most a few; each is created on first need, and
 * linked on the live list as well to be told of the close. */
typedef struct aioc__slot {
  aioc__list link; /* in loop->slots */
  const void *key;
} aioc__slot;

/* Something posted to a loop from any thread (aioc__post()): a runnable
 * chained on the loop's lock-free stack and queued as it is when the loop
 * takes the stack, so draining allocates nothing. Its run is called on
 * the loop's thread, in the order of posting; on a closed loop
 * (loop->closed) it only releases what it holds. */
typedef struct aioc__posted aioc__posted;
struct aioc__posted {
  aioc__runnable rq;
  aioc__posted *next;
};

/* A thread-safe call: a callback and its argument, posted. */
typedef struct aioc__tscall {
  aioc__posted node;
  aioc_loop *loop;
  aioc_callback cb;
  aioc_callback drop; /* instead of cb if the loop closes first, or NULL */
  void *arg;
} aioc__tscall;

/* Work a layer asks the loop to do once the current batch of ready items
 * has run, before the loop looks for new events (the executor hands the
 * jobs its tasks submitted in a batch to its threads in one go). Linked
 * at most once; its owner unlinks it (aioc__defer_cancel) when it goes. */
typedef struct aioc__deferred aioc__deferred;
struct aioc__deferred {
  aioc__list link; /* in loop->deferred */
  void (*run)(aioc__deferred *self);
};

/* aioc_call_soon_threadsafe() that calls drop(arg) (on the closing loop's
 * thread, no lock held) instead of cb(arg) if the loop closes before cb
 * could run: for callers that must release what the call holds. */
AIOC_HIDDEN int aioc__call_soon_threadsafe_ex(aioc_loop *loop,
                                              aioc_callback cb,
                                              aioc_callback drop, void *arg);

/* Shared within the loop layer. */
AIOC_HIDDEN extern __thread aioc_loop *aioc__thread_current;
AIOC_HIDDEN size_t aioc__timers_fire(aioc_loop *loop, int64_t now);
AIOC_HIDDEN void aioc__drain_threadsafe(aioc_loop *loop);
AIOC_HIDDEN void aioc__poll_io(aioc_loop *loop, int64_t timeout_ns);

/* The same in two steps, for a caller that must not fail later for lack
 * of memory: aioc__tscall_new() allocates the call (NULL: out of memory;
 * free an unused one with aioc__free()), aioc__tscall_post() queues it on
 * loop and allocates nothing. post returns 0 (the loop owns c), or
 * AIOC_ECLOSED (c is still the caller's). Any thread may post, the
 * loop's own included. */
AIOC_HIDDEN aioc__tscall *aioc__tscall_new(aioc_callback cb, aioc_callback drop,
                                           void *arg);
AIOC_HIDDEN int aioc__tscall_post(aioc_loop *loop, aioc__tscall *c);

/* Posts p (its rq.run set) to loop from any thread: 0, or AIOC_ECLOSED
 * (p is still the caller's). Once posted, p may run (and be freed by its
 * run) before this returns. */
AIOC_HIDDEN int aioc__post(aioc_loop *loop, aioc__posted *p);
/* The loop's close: marks the stack closed (posts fail from then on),
 * waits for posters still inside, and returns what was left, oldest
 * first, for aioc__post_drop_all() once the loop's objects are gone. */
AIOC_HIDDEN aioc__posted *aioc__post_close(aioc_loop *loop);
AIOC_HIDDEN void aioc__post_drop_all(aioc__posted *p);

/* The poller: I/O readiness callbacks keyed by fd. */
typedef void (*aioc__io_fn)(aioc_loop *loop, int fd, uint32_t events,
                            void *arg);

/* The loop's metrics (aioc_loop_metrics): the counters are kept always,
 * the times (ns) with AIOC_OBSERVE_TIMING only. */
typedef struct aioc__loop_counters {
  uint64_t iterations, timers_fired, task_runs;
  int64_t lag_max, lag_total, task_ns, poll_ns;
} aioc__loop_counters;

struct aioc_loop {
  aioc__queue ready;
  aioc__coro main_coro; /* the thread's own context while running */
  aioc_task *current;   /* task running now, NULL in callbacks */
  int64_t now;          /* cached time (ns) */
  bool now_valid;
  bool virtual_clock;
  bool running;
  bool closed;
  bool quiet;
  atomic_bool stopping;
  size_t stack_stride;
  uint64_t refs;        /* the struct lives until futures let go */
  uint64_t timer_seq;
  uint64_t task_seq;
  /* timers */
  aioc__heap_entry *heap;
  uint32_t nheap, capheap;
  /* poller */
  int epfd;
  int evfd;
  size_t nfds; /* fds registered besides the eventfd */
  struct aioc__ioreg **io; /* registrations indexed by fd */
  size_t nio;
  uint32_t iter;
  size_t batch_left; /* items of the current iteration still to run */
  void (*step_task)(void *task); /* runs a task node (set by the task layer) */
  bool (*run_done)(void *); /* the condition the loop runs until */
  void *run_arg;
  /* Thread-safe calls: a lock-free stack of posted calls, newest first
   * (AIOC__TS_CLOSED once the loop closed), taken whole by the loop. Its
   * line is written by every poster, so it is kept apart from the loop's
   * own fields and from `polling`, which posters only read. */
  char ts_pad0[64];
  _Atomic(aioc__posted *) ts_head;
  atomic_bool ts_woken;  /* the eventfd was written for this sleep */
  atomic_int ts_posting; /* posters inside aioc__post() */
  char ts_pad1[64];
  atomic_bool polling; /* the loop may be asleep in epoll_wait */
  char ts_pad2[64];
  /* Thread-safe calls the layers above announced (an executor's jobs in
   * flight): while some are due and waiting for them lately paid off
   * (ts_hot, see run.c), the loop spins a little for them before it
   * sleeps. Loop thread only. */
  size_t ts_expect;
  bool ts_hot;
  aioc__list deferred; /* aioc__deferred, run after the current batch */
  /* objects living on the loop (list), unfinished tasks (count) */
  aioc__list live; /* aioc__live objects: started tasks, generators */
  size_t nlive;
  aioc__list slots; /* aioc__slot: the layers' per-loop state */
  aioc__coro_relay relay; /* switch hand-offs on the loop's thread */
  /* reports */
  aioc_report_fn report_fn;
  void *report_arg;
  /* the stack scavenger: its next pass (AIOC__NEVER: not armed). Outside
   * the timer heap: it neither moves the virtual clock nor keeps tasks
   * from starting the next batch themselves. */
  int64_t scav_when;
  uint32_t scav_tick;
  /* The thread layer's state for this loop (its default executor, its
   * jobs in flight), NULL until used; the loop never reads it. */
  void *thread_state;
  /* Observation (observe.h): the AIOC_OBSERVE_* flags, the counters
   * always kept, and the layer's own state (NULL until needed). */
  unsigned observe;
  aioc__loop_counters m;
  /* Stack use per spawn site (AIOC_OBSERVE_STACKS), kept by the task
   * layer, freed with the loop. */
  struct aioc__stack_site *stack_sites;
  size_t nstack_sites, capstack_sites;
  /* The options of the observation features, as aioc_loop_new() read
   * them (options, else environment); each feature keeps its own state
   * in the pointer beside its option (NULL until needed). */
  unsigned trace_events;   /* flight recorder ring size, 0: default */
  /* The flight recorder (src/observe/trace.c): allocated by
   * aioc_loop_new() with AIOC_OBSERVE_EVENTS (trace_events is then the
   * ring's capacity), NULL otherwise; freed with the loop's memory. */
  struct aioc__trace *trace;
  double stall_threshold;  /* seconds, 0: off */
  struct aioc__stall *stall;
  unsigned coop_budget;    /* operations in a row (UINT_MAX: never) */
  uint64_t schedule_seed;  /* 0: plain order (always 0 on a real clock) */
  /* The test kit's state (testing.c): the seeded schedule's generator
   * and batch buffer, the tasks waiting for quiescence. NULL until a
   * seeded batch or aioc_wait_all_tasks_blocked() needs it. */
  struct aioc__sched *sched;
  /* The debugging socket (src/observe/debugsock.c): asked for, and its
   * state once the loop's first run opened it (debug_socket is cleared
   * if that failed, so it is tried once). */
  bool debug_socket;
  struct aioc__debugsock *debugsock;
  AIOC__ARMOR_FIELD /* live from aioc_loop_new() to aioc_loop_free() */
};

/* Armor check (see common.h): a loop the user has not freed. */
#define AIOC__LOOP_OK(l, fn) AIOC__ARMOR_OK(l, AIOC__MAGIC_LOOP, fn, "loop")

/* The loop running on this thread. */
extern AIOC_TLS aioc_loop *aioc__running;

/* loop, or else the thread's running loop, or else its current one
 * (never one created for the asking): what a function given NULL for a
 * loop works on. */
static inline aioc_loop *aioc__loop_pick(aioc_loop *loop) {
  if (loop) return loop;
  return aioc__running ? aioc__running : aioc__thread_current;
}

static inline void aioc__loop_ref(aioc_loop *loop) {
  loop->refs++;
}
AIOC_HIDDEN void aioc__loop_free(aioc_loop *loop);
static inline void aioc__loop_unref(aioc_loop *loop) {
  if (aioc__unlikely(--loop->refs == 0)) aioc__loop_free(loop);
}

static inline void aioc__queue_push(aioc_loop *loop, aioc__qnode *n,
                                    uintptr_t tag) {
  n->next = 0;
  if (loop->ready.tail)
    loop->ready.tail->next = (uintptr_t)n | tag;
  else
    loop->ready.head = (uintptr_t)n | tag;
  loop->ready.tail = n;
  loop->ready.len++;
}

static inline void aioc__ready_push(aioc_loop *loop, aioc__runnable *r) {
  aioc__queue_push(loop, (aioc__qnode *)r, 0);
}

/* Takes the first node off the ready queue: its tagged link (0: empty). */
static inline uintptr_t aioc__ready_pop(aioc_loop *loop) {
  uintptr_t e = loop->ready.head;
  if (!e) return 0;
  aioc__qnode *n = (aioc__qnode *)(e & ~AIOC__QTASK);
  loop->ready.head = n->next;
  if (!n->next) loop->ready.tail = NULL;
  loop->ready.len--;
  return e;
}

/* Runs what a tagged link from the ready queue names. */
static inline void aioc__ready_run(aioc_loop *loop, uintptr_t e) {
  if (e & AIOC__QTASK) {
    loop->step_task((void *)(e & ~AIOC__QTASK));
  } else {
    aioc__runnable *r = (aioc__runnable *)e;
    r->run(r);
  }
}

/* Current loop time in ns (refreshed once per iteration). */
AIOC_HIDDEN int64_t aioc__now(aioc_loop *loop);

/* Converts a delay in seconds (>= 0, may be infinite) to a deadline in ns,
 * saturating at AIOC__NEVER. */
AIOC_HIDDEN int64_t aioc__deadline_after(aioc_loop *loop, double seconds);
AIOC_HIDDEN int64_t aioc__deadline_at(double when);

/* Arms (or re-arms) t at when (ns); AIOC__NEVER disarms. Returns 0, or
 * -ENOMEM when the heap cannot grow (t is then disarmed, its when
 * AIOC__NEVER): a caller about to wait must not wait without its timer.
 * Re-arming an armed timer never fails. */
AIOC_HIDDEN int aioc__timer_arm(aioc_loop *loop, aioc__timer *t, int64_t when);
AIOC_HIDDEN void aioc__timer_disarm(aioc_loop *loop, aioc__timer *t);

static inline void aioc__timer_init(aioc__timer *t,
                                    void (*fire)(aioc_loop *, aioc__timer *)) {
  t->when = AIOC__NEVER;
  t->seq = 0;
  t->idx = AIOC__NOTIMER;
  t->fire = fire;
}

/* Registers interest in fd's readiness (EPOLLIN/EPOLLOUT...), or changes
 * the events and callback of a registered fd: fn(loop, fd, events, arg)
 * runs from the loop's poll whenever fd is ready. For the I/O layer and
 * third-party libraries. Returns 0, -EINVAL, -ENOMEM or epoll's error. */
AIOC_HIDDEN int aioc__poll_add(aioc_loop *loop, int fd, uint32_t events,
                               aioc__io_fn fn, void *arg);
/* Removes fd's registration (before the fd is closed). Returns 0, -ENOENT
 * (not registered) or -EINVAL. */
AIOC_HIDDEN int aioc__poll_del(aioc_loop *loop, int fd);
/* Stops calling fd's callback but keeps its kernel registration, so
 * that an aioc__poll_add() with the same events soon after costs no
 * system call (libcurl removes and adds a kept-alive connection's socket
 * around every request on it). The first event on a parked fd (its peer
 * closed or sent data) removes the registration. Only for an fd whose
 * owner calls aioc__poll_del() before closing it: a closed fd leaves the
 * kernel's set by itself, and a new fd with its number would be taken
 * for registered. Returns 0 or -ENOENT (not registered). */
AIOC_HIDDEN int aioc__poll_park(aioc_loop *loop, int fd);
/* Is fd registered? Then *fn and *arg (either may be NULL) are its
 * callback and argument: the I/O layer finds its own per-fd state there. */
AIOC_HIDDEN bool aioc__poll_get(aioc_loop *loop, int fd, aioc__io_fn *fn,
                                void **arg);
/* drop(arg) runs when the loop closes with fd still registered (after the
 * loop's tasks were abandoned), so the layer that registered it frees what
 * arg holds. */
AIOC_HIDDEN void aioc__poll_set_drop(aioc_loop *loop, int fd,
                                     void (*drop)(void *arg));
/* The loop's close: every registration is dropped (see above). */
AIOC_HIDDEN void aioc__poll_drop_all(aioc_loop *loop);

/* The flight recorder (src/observe/trace.c): created with the loop
 * (-ENOMEM), freed with it. The loop layer's hooks, behind loop->trace:
 * a timer fires, an fd is ready (each records the event and is the cause
 * of the wake-ups that follow until aioc__trace_ctx_clear()). */
AIOC_HIDDEN int aioc__trace_new(aioc_loop *loop);
AIOC_HIDDEN void aioc__trace_free(aioc_loop *loop);
AIOC_HIDDEN void aioc__trace_timer(aioc_loop *loop, const void *timer,
                                   int64_t lag);
AIOC_HIDDEN void aioc__trace_fd(aioc_loop *loop, int fd, uint32_t events);
AIOC_HIDDEN void aioc__trace_ctx_clear(aioc_loop *loop);

/* Reports through the loop's handler (loop may be closed, not freed). */
AIOC_HIDDEN void aioc__report(aioc_loop *loop, const aioc_report *r);

/* The stack's mark of a closed loop: posts fail from then on. */
#define AIOC__TS_CLOSED ((aioc__posted *)(uintptr_t)1)

/* Are thread-safe calls waiting (a hint: read without ordering)? */
static inline bool aioc__ts_pending(aioc_loop *loop) {
  return atomic_load_explicit(&loop->ts_head, memory_order_relaxed) != NULL;
}

/* Asks for d->run(d) after the current batch (nothing if already asked). */
static inline void aioc__defer(aioc_loop *loop, aioc__deferred *d) {
  if (!aioc__list_is_linked(&d->link))
    aioc__list_push_back(&loop->deferred, &d->link);
}

static inline void aioc__defer_cancel(aioc__deferred *d) {
  aioc__list_del(&d->link);
}

/* Can the next iteration start without the loop's own work: no timers,
 * no fds, no deferred work, no thread-safe calls, no stop, run condition
 * not met? Then a task may start it itself. */
static inline bool aioc__loop_can_continue(aioc_loop *loop) {
  return !loop->nheap && !loop->nfds && aioc__list_is_empty(&loop->deferred) &&
         !aioc__ts_pending(loop) &&
         !atomic_load_explicit(&loop->stopping, memory_order_relaxed) &&
         !(loop->run_done && loop->run_done(loop->run_arg));
}

/* ---- the scheduling decision, in one place ----
 *
 * An iteration runs, in order, the nodes that were ready when its batch
 * began (aioc__sched_begin); nodes made ready meanwhile wait for the next
 * iteration, as in asyncio. The count left lives in the loop, so that a
 * task giving up the CPU may run the next node itself (one switch
 * instead of two through the loop): aioc__sched_peek() names that node,
 * aioc__sched_take() takes it. When the batch is over and the next
 * iteration needs none of the loop's own work (aioc__loop_can_continue),
 * peeking begins the next batch at once. */

static inline void aioc__sched_begin(aioc_loop *loop) {
  loop->batch_left = loop->ready.len;
  loop->m.iterations++;
}

/* A seeded schedule (testing.c): permutes the tasks of the batch that
 * run_once() begins (loop->schedule_seed non-zero). A seeded loop's
 * batches all begin there: while it runs, its run_done always says
 * "done" to aioc__loop_can_continue(), so no task begins one itself, and
 * the batch path of an unseeded loop has nothing to test. */
AIOC_HIDDEN void aioc__sched_shuffle(aioc_loop *loop);

/* The tagged link of the node to run next, still queued; 0: nothing may
 * run before the loop does its own work. */
static inline uintptr_t aioc__sched_peek(aioc_loop *loop) {
  if (!loop->batch_left) {
    if (!loop->ready.head || !aioc__loop_can_continue(loop)) return 0;
    aioc__sched_begin(loop);
  }
  return loop->ready.head;
}

/* Takes the node aioc__sched_peek() named off the queue. */
static inline void aioc__sched_take(aioc_loop *loop) {
  loop->batch_left--;
  aioc__ready_pop(loop);
}

/* The next node of the current batch, taken off the queue, or 0 when the
 * batch is over (the loop's own loop). */
static inline uintptr_t aioc__sched_next(aioc_loop *loop) {
  if (!loop->batch_left) return 0;
  loop->batch_left--;
  return aioc__ready_pop(loop);
}

/* ---- the cooperative budget (testing.c) ----
 *
 * An operation that may complete without suspending (a queue's get or
 * put, a free lock, a set event, a done future, buffered stream data)
 * ticks the budget first: after loop->coop_budget ticks in a row of the
 * same task, the tick yields (the operation then goes on as if called
 * after aioc_yield()). The count is the thread's (one loop runs on a
 * thread at a time), in a thread-local, so that a tick is a decrement of
 * memory and a branch, with no loop or task to load: it restarts
 * whenever a task gives up the CPU (switch_out and the hand-offs of
 * task.c) or starts. From plain code or a callback a spent budget only
 * restarts. */
extern AIOC_TLS uint32_t aioc__coop_left;

/* The budget is spent: restarts the count and, in a task of a loop with
 * a budget, yields. */
AIOC_HIDDEN void aioc__coop_spent(void);

static inline void aioc__coop_tick(void) {
  if (aioc__unlikely(--aioc__coop_left == 0)) aioc__coop_spent();
}

/* The tick of a fast path that must stay a leaf (no call): false when
 * the budget is spent, and the caller must then go to its slow path,
 * which calls aioc__coop_check() first. */
static inline bool aioc__coop_take(void) {
  return --aioc__coop_left != 0;
}

static inline void aioc__coop_check(void) {
  if (aioc__unlikely(aioc__coop_left == 0)) aioc__coop_spent();
}

static inline void aioc__coop_reset(aioc_loop *loop) {
  aioc__coop_left = loop->coop_budget;
}

/* The budget when neither the options nor AIOC_COOP_BUDGET give one
 * (measured on B5: docs/design.md, "The test kit and the cooperative
 * budget"). */
#define AIOC__COOP_DEFAULT 128u

/* Frees loop->sched (the loop's free). */
AIOC_HIDDEN void aioc__sched_free(aioc_loop *loop);

/* Runs iterations until done(arg) is true or the loop stops. */
AIOC_HIDDEN int aioc__loop_run(aioc_loop *loop, bool (*done)(void *),
                               void *arg);

/* Links a live object (see aioc__live); the count of unfinished tasks is
 * loop->nlive, kept by the task layer. */
static inline void aioc__live_add(aioc_loop *loop, aioc__live *n,
                                  const aioc__live_ops *ops) {
  n->ops = ops;
  n->shut = false;
  aioc__list_push_front(&loop->live, &n->link);
}

static inline void aioc__live_del(aioc__live *n) {
  aioc__list_del(&n->link);
}

/* The state linked under key, or NULL. */
static inline aioc__slot *aioc__slot_find(aioc_loop *loop, const void *key) {
  aioc__list_each(l, &loop->slots) {
    aioc__slot *s = aioc__container_of(l, aioc__slot, link);
    if (s->key == key) return s;
  }
  return NULL;
}

static inline void aioc__slot_add(aioc_loop *loop, aioc__slot *s,
                                  const void *key) {
  s->key = key;
  aioc__list_push_back(&loop->slots, &s->link);
}

static inline void aioc__slot_del(aioc__slot *s) {
  aioc__list_del(&s->link);
}

/* The debugging socket (observe/debugsock.c): opened by the loop's first
 * run when loop->debug_socket asks for it (a failure is reported and
 * clears the request), closed and removed by aioc_loop_close(). */
AIOC_HIDDEN void aioc__debugsock_start(aioc_loop *loop);
AIOC_HIDDEN void aioc__debugsock_stop(aioc_loop *loop);

/* Asks every live object with a shutdown operation to end, once each,
 * running the loop as they need (see aioc__live_ops). */
AIOC_HIDDEN void aioc__loop_shutdown_live(aioc_loop *loop);

#endif

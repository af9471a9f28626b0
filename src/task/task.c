/* Tasks: spawning, stepping, suspension, cancellation.
 *
 * A task gets its stack only when it first runs and gives it back the
 * moment it finishes, so short tasks reuse one hot stack: spawning a
 * million trivial tasks touches one stack, not a million. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "task.h"
#include "../observe/stall.h"

/* ---- names, messages ---- */

/* Unnamed tasks get "Task-<id>" the first time anyone asks: formatting it
 * at spawn would cost more than the rest of a spawn. */
const char *aioc__task_display_name(const aioc_task *t) {
  aioc_task *m = (aioc_task *)t;
  if (t->f.ext && t->f.ext->name) return t->f.ext->name;
  char buf[32];
  snprintf(buf, sizeof buf, "Task-%lu", (unsigned long)t->f.tid);
  aioc__fext *e = aioc__future_ext(&m->f);
  if (e) e->name = aioc__strdup(buf);
  return e && e->name ? e->name : "Task";
}

const char *aioc_task_name(const aioc_task *t) {
  if (!t || !AIOC__TASK_OK(t, "aioc_task_name")) return NULL;
  return aioc__task_display_name(t);
}

int aioc_task_is_running(const aioc_task *t) {
  return t && AIOC__TASK_OK(t, "aioc_task_is_running") &&
         aioc__task_started(t);
}

void aioc__task_set_errmsg(aioc_task *t, int code, char *msg) {
  if (!aioc__task_started(t)) {
    aioc__free(msg); /* only a task with a stack can be asked for it */
    return;
  }
  aioc__free(t->r->errmsg);
  t->r->errmsg = msg;
  t->r->errcode = code;
}

__thread char **aioc__error_sink;

int aioc_error(int code, const char *fmt, ...) {
  aioc_task *t = aioc__current();
  if (!fmt || (!t && !aioc__error_sink)) return code;
  va_list ap;
  va_start(ap, fmt);
  char *msg = aioc__vformat(fmt, ap);
  va_end(ap);
  if (t) {
    aioc__task_set_errmsg(t, code, msg);
  } else {
    aioc__free(*aioc__error_sink);
    *aioc__error_sink = msg;
  }
  return code;
}

int aioc__fail(int code, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (aioc__current()) return aioc_error(code, "%s", buf);
  aioc__plain_error_set(buf);
  return code;
}

const char *aioc_error_message(void) {
  aioc_task *t = aioc__current();
  return t ? t->r->errmsg : aioc__plain_error_get();
}

/* ---- observation (loop->observe) ---- */

/* The sites the macros of observe.h note before a wait and a spawn. */
AIOC_API AIOC_TLS const aioc_site *aioc__site_next;
AIOC_API AIOC_TLS const aioc_site *aioc__spawn_next;

static aioc__tobs *tobs(const aioc_task *t) {
  return t->f.ext ? t->f.ext->obs : NULL;
}

/* The hooks run for every task on the slow path; each does what its
 * loop observes: the flight recorder's events (loop->trace, for every
 * task of the loop), the timings (a task with a record). */
void aioc__tobs_in(aioc_task *t) {
  aioc_loop *loop = t->f.loop;
  if (loop->trace) aioc__trace_run(t);
  if (loop->stall) aioc__stall_in(t);
  aioc__tobs *o = tobs(t);
  if (!o || !aioc__observes_timing(loop)) return;
  int64_t now = aioc__clock_ns();
  if (o->ready_at) {
    o->ready_ns += now - o->ready_at;
    o->ready_at = 0;
  }
  o->run_start = now;
  o->runs++;
  loop->m.task_runs++;
}

static void tobs_stop(aioc_task *t) {
  aioc__tobs *o = tobs(t);
  if (!o || !o->run_start) return;
  int64_t d = aioc__clock_ns() - o->run_start;
  o->run_start = 0;
  o->run_ns += d;
  if (d > o->run_max) o->run_max = d;
  t->f.loop->m.task_ns += d;
}

void aioc__tobs_out(aioc_task *t) {
  if (t->f.loop->trace) aioc__trace_out(t);
  if (t->f.loop->stall) aioc__stall_out(t);
  tobs_stop(t);
}

void aioc__tobs_end(aioc_task *t, int rc) {
  if (t->f.loop->trace) aioc__trace_end(t, rc);
  if (t->f.loop->stall) aioc__stall_out(t);
  tobs_stop(t);
}

void aioc__tobs_ready(aioc_task *t) {
  aioc_loop *loop = t->f.loop;
  /* A task that yields makes itself ready: its yield says so. */
  if (loop->trace && !(aioc__running == loop && loop->current == t))
    aioc__trace_wake(t);
  aioc__tobs *o = tobs(t);
  if (o && aioc__observes_timing(loop)) o->ready_at = aioc__clock_ns();
}

/* A task spawned on an observing loop takes the slow path, with a record
 * when its timing or spawner is observed (without memory for them it is
 * not observed, and the spawn goes on). */
static __attribute__((noinline)) int tobs_spawned(aioc_task *t) {
  aioc_loop *loop = t->f.loop;
  const aioc_site *site = aioc__spawn_next;
  aioc__spawn_next = NULL;
  /* Watched for stalls: the slow path tells the detector of each run. */
  if (loop->observe & AIOC__OBSERVE_STALL) t->f.slow = 1;
  if (!(loop->observe & (AIOC_OBSERVE_TIMING | AIOC_OBSERVE_SPAWNS |
                         AIOC_OBSERVE_EVENTS)))
    return 0;
  aioc__fext *e = aioc__future_ext(&t->f);
  if (!e) return 0;
  aioc_task *cur = aioc__running == loop ? loop->current : NULL;
  uint32_t spawner = cur ? cur->f.tid : 0;
  if (loop->observe & (AIOC_OBSERVE_TIMING | AIOC_OBSERVE_SPAWNS)) {
    aioc__tobs *o = aioc__calloc(1, sizeof *o);
    if (!o) return 0;
    e->obs = o;
    o->spawner = spawner;
    o->spawn_site = site;
    if (loop->observe & AIOC_OBSERVE_TIMING) o->ready_at = aioc__clock_ns();
  }
  t->f.slow = 1;
  if (loop->trace) aioc__trace_spawn(t, spawner, site);
  return 0;
}

/* ---- stack use (AIOC_OBSERVE_STACKS) ----
 *
 * A stack's pages are made resident by the kernel as the task touches
 * them, from the top down. An observed task starts with every page of
 * its stack but the top one given back (MADV_DONTNEED); when it ends,
 * the lowest resident page (mincore) is its high-water mark, to the
 * page. Pages below the frame that measures are given back again, so the
 * next task on the stack (in place, or after the pool) starts clean. */

static size_t page_size(void) {
  static size_t ps;
  if (!ps) ps = (size_t)sysconf(_SC_PAGESIZE);
  return ps;
}

/* Gives back the pages of [lo, end) (end rounded down to a page). */
static void stack_clear(char *lo, char *end) {
  size_t ps = page_size();
  uintptr_t a = ((uintptr_t)lo + ps - 1) & ~(uintptr_t)(ps - 1);
  uintptr_t b = (uintptr_t)end & ~(uintptr_t)(ps - 1);
  if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

/* Before t first runs on st (observed, stacks on): a clean stack. */
static void stack_prepare(aioc__stack *st) {
  stack_clear(aioc__stack_lo(st), aioc__stack_hi(st));
}

/* The aggregate of t's spawn site, created on first need (NULL: no
 * memory). */
static aioc__stack_site *stack_site(aioc_loop *loop, const aioc_site *site) {
  for (size_t i = 0; i < loop->nstack_sites; i++)
    if (loop->stack_sites[i].site == site) return &loop->stack_sites[i];
  if (loop->nstack_sites == loop->capstack_sites) {
    size_t cap = loop->capstack_sites ? loop->capstack_sites * 2 : 8;
    aioc__stack_site *v =
        aioc__realloc(loop->stack_sites, cap * sizeof *v);
    if (!v) return NULL;
    loop->stack_sites = v;
    loop->capstack_sites = cap;
  }
  aioc__stack_site *s = &loop->stack_sites[loop->nstack_sites++];
  *s = (aioc__stack_site){.site = site};
  return s;
}

/* t ends on st: its function has returned, this frame and the ones it
 * calls are all that is left on the stack. Pages from two below this
 * frame's down are dead: measured, then given back (the system calls'
 * own frames stay above them). */
static __attribute__((noinline)) void stack_measure(aioc_task *t,
                                                    aioc__stack *st) {
  aioc__tobs *o = tobs(t);
  if (!o) return;
  size_t ps = page_size();
  char *lo = aioc__stack_lo(st), *hi = aioc__stack_hi(st);
  char *a = (char *)(((uintptr_t)lo + ps - 1) & ~(uintptr_t)(ps - 1));
  volatile char probe = 0;
  char *end = (char *)(((uintptr_t)&probe & ~(uintptr_t)(ps - 1)) - 2 * ps);
  if (end < a) end = a;
  char *low = end; /* the frames above count at least */
  unsigned char vec[256];
  for (char *p = a; p < end;) {
    size_t n = (size_t)(end - p) / ps;
    if (n > sizeof vec) n = sizeof vec;
    if (mincore(p, n * ps, vec) != 0) break;
    size_t i = 0;
    while (i < n && !(vec[i] & 1)) i++;
    if (i < n) {
      low = p + i * ps;
      break;
    }
    p += n * ps;
  }
  o->stack_used = (size_t)(hi - low);
  o->stack_size = (size_t)(hi - lo);
  if (low < end) stack_clear(low, end);
  aioc_loop *loop = t->f.loop;
  aioc__stack_site *s = stack_site(loop, o->spawn_site);
  if (s) {
    s->tasks++;
    s->sum_used += o->stack_used;
    if (o->stack_used > s->max_used) s->max_used = o->stack_used;
    s->stack_size = o->stack_size;
  }
  if (o->stack_used * 4 > o->stack_size * 3 && !loop->quiet) {
    char detail[256];
    const aioc_site *ss = o->spawn_site;
    int k = snprintf(detail, sizeof detail, "%zu of %zu bytes used (%.0f%%)",
                     o->stack_used, o->stack_size,
                     100.0 * (double)o->stack_used / (double)o->stack_size);
    if (ss && k > 0 && (size_t)k < sizeof detail)
      snprintf(detail + k, sizeof detail - (size_t)k, ", spawned at %s:%d",
               ss->file, ss->line);
    aioc_report rep = {.message = "Task used more than 75% of its stack",
                       .task = t,
                       .detail = detail,
                       .task_name = aioc__task_display_name(t)};
    aioc__report(loop, &rep);
  }
}

/* ---- lifetime ---- */

void aioc__task_free(aioc_task *t) { aioc__future_free(&t->f); }

static void task_unref(aioc_task *t) {
  aioc_future_unref(&t->f);
}

/* Sets the outcome of a task that ends: ran to its end, was cancelled
 * before starting, could not start (msg says why), or was abandoned by its
 * closing loop. */
static void task_complete(aioc_task *t, int rc, void *result, char *msg) {
  aioc_loop *loop = t->f.loop;
  aioc__trun *r = t->f.tstate == T_CREATED ? NULL : t->r;
  loop->nlive--;
  t->f.tstate = T_FINISHED;
  if (r) {
    aioc__live_del(&r->live);
    /* Scopes the function left open (a bug): they end with the task and
     * stay their owner's to free. */
    while (r->scopes)
      aioc__scope_unlink(r->scopes);
    if (rc < 0 && rc != -ECANCELED && !msg && r->errmsg &&
        r->errcode == rc) {
      msg = r->errmsg;
      r->errmsg = NULL;
    }
  }
  if (rc == -ECANCELED) {
    /* The message given to aioc_task_cancel() is already in ext. */
    aioc__free(msg);
    aioc__future_finish(&t->f, AIOC_FUTURE_CANCELLED, -ECANCELED, NULL, NULL);
  } else if (rc < 0) {
    aioc__future_finish(&t->f, AIOC_FUTURE_DONE, rc, NULL, msg);
  } else {
    if (rc > 0 && result) {
      /* AIOC_NORESULT (any positive code): no result, whatever *result
       * says; one set anyway goes to its destructor. */
      if (t->f.ext && t->f.ext->result_free) t->f.ext->result_free(result);
      result = NULL;
    }
    aioc__future_finish(&t->f, AIOC_FUTURE_DONE, 0, result, NULL);
  }
  if (r) {
    aioc__free(r->errmsg);
    r->errmsg = NULL;
  }
}

/* The task to run next on the stack of t, which just ended, without
 * leaving it: the next task of this iteration's batch (or of the next
 * iteration, if it may start here, as in switch_out) when it has never
 * run and wants a stack of this size. t's loop reference is dropped here,
 * so only when that runs no user code (a result or an error report to
 * free). Saves the switches and the stack round trip of a short task. */
static aioc_task *next_on_stack(aioc_loop *loop, aioc_task *t,
                                size_t stride) {
  if (t->f.refs == 1 && (t->f.err || t->f.ext)) return NULL;
  uintptr_t e = aioc__sched_peek(loop);
  if (!(e & AIOC__QTASK)) return NULL;
  aioc_task *n = (aioc_task *)(e & ~AIOC__QTASK);
  if (n->f.tstate != T_CREATED || n->f.cancel_requested) return NULL;
  aioc__fext *x = n->f.ext;
  if ((x && x->stride ? x->stride : loop->stack_stride) != stride)
    return NULL;
  aioc__sched_take(loop);
  n->f.queued = 0;
  n->f.tstate = T_RUNNING;
  loop->current = n;
  task_unref(t);
  return n;
}

/* The bottom frame of every stack a task runs on: the task's running state
 * lives here, at the top of the stack. When the task ends, the next one
 * may start in the same frame (next_on_stack). */
static void task_main(void *p) {
  aioc_task *t = p;
  aioc_loop *loop = t->f.loop;
  size_t stride = loop->relay.start_stride;
  aioc__trun r;
  r.coro = loop->relay.start;
  aioc__coro_started(&r.coro);
  for (;;) {
    r.task = t;
    r.fn = t->fn;
    r.arg = t->f.result;
    r.scopes = NULL;
    r.wait = NULL;
    r.errmsg = NULL;
    r.errcode = 0;
    r.wake_rc = 0;
    r.nocancel = 0;
    r.site = NULL;
    r.wait_since = -1;
    aioc__live_add(loop, &r.live, &aioc__task_live_ops);
    aioc__coop_reset(loop);
    t->f.result = NULL;
    t->r = &r;
    bool slow = t->f.slow;
    if (aioc__unlikely(slow)) aioc__tobs_in(t);
    void *result = NULL;
    int rc = r.fn(r.arg, &result);
    if (aioc__unlikely(slow)) {
      aioc__tobs_end(t, rc);
      if (loop->observe & AIOC_OBSERVE_STACKS)
        stack_measure(t, r.coro.stack);
    }
    task_complete(t, rc, result, NULL);
    t->r = NULL;
    if (!(t = next_on_stack(loop, t, stride))) break;
    aioc__stack_set_owner(r.coro.stack, t->f.ext ? t->f.ext->name : NULL,
                          t->f.tid);
  }
  /* Whoever runs next gives the stack back (it cannot be freed under us);
   * nothing may read r once we have left. */
  loop->relay.exited = r.coro.stack;
  aioc__coro_exit(&r.coro, &loop->main_coro);
}

int aioc__task_set_on_block(aioc_task *t, void (*fn)(aioc_task *)) {
  aioc__fext *e = aioc__future_ext(&t->f);
  if (!e) return -ENOMEM;
  e->on_block = fn;
  t->f.slow = fn != NULL || e->obs || t->f.loop->trace ||
              (t->f.loop->observe & AIOC__OBSERVE_STALL);
  return 0;
}

/* Gets a task that has never run ready to: its stack, and its first
 * context in loop->relay.start, which the next switch must go to. On
 * failure the task ends (with -ECANCELED if it was cancelled first, else
 * the stack error) and the code is returned; the caller then drops the
 * loop's reference. */
static int task_start(aioc_task *t) {
  aioc_loop *loop = t->f.loop;
  if (t->f.cancel_requested) {
    /* Cancelled before it started: it never runs (as in asyncio). */
    if (aioc__unlikely(t->f.slow)) aioc__tobs_end(t, -ECANCELED);
    task_complete(t, -ECANCELED, NULL, NULL);
    return -ECANCELED;
  }
  aioc__fext *e = t->f.ext;
  size_t stride = e && e->stride ? e->stride : loop->stack_stride;
  aioc__stack *st;
  int rc = aioc__stack_get(stride, &st);
  if (rc < 0) {
    task_complete(t, rc, NULL, aioc__strdup("no coroutine stack available"));
    return rc;
  }
  aioc__stack_set_owner(st, e ? e->name : NULL, t->f.tid);
  if (aioc__unlikely(t->f.slow) && (loop->observe & AIOC_OBSERVE_STACKS))
    stack_prepare(st);
  aioc__coro_make(&loop->relay.start, st, task_main, t);
  loop->relay.start_stride = stride;
  return 0;
}

/* A task that never started, on a loop that closed before it could. */
static void task_abandon_created(aioc_task *t) {
  aioc_loop *loop = t->f.loop;
  if (!loop->quiet && !t->f.reported) {
    aioc_report rep = {.message = "Task was destroyed but it is pending",
                       .task = t,
                       .task_name = aioc__task_display_name(t)};
    aioc__report(loop, &rep);
  }
  task_complete(t, -ECANCELED, NULL, NULL);
}

/* One step of a task taken off the ready queue: start or resume it until
 * it suspends or ends. */
static void task_step(void *p) {
  aioc_task *t = p;
  aioc_loop *loop = t->f.loop;
  t->f.queued = 0;
  if (aioc__unlikely(t->f.tstate == T_FINISHED || loop->closed)) {
    if (t->f.tstate == T_CREATED) task_abandon_created(t);
    task_unref(t); /* the queue held the loop's reference */
    return;
  }
  aioc__coro *to;
  if (t->f.tstate == T_CREATED) {
    if (task_start(t) < 0) {
      task_unref(t);
      return;
    }
    to = &loop->relay.start;
  } else {
    to = &t->r->coro;
  }
  t->f.tstate = T_RUNNING;
  loop->current = t;
  aioc__coro_switch(&loop->main_coro, to);
  /* Control may have passed from task to task before coming back: the one
   * that returned it is loop->current. */
  aioc_task *back = loop->current;
  loop->current = NULL;
  if (back->f.tstate == T_FINISHED) {
    aioc__stack_put(loop->relay.exited);
    loop->relay.exited = NULL;
    task_unref(back); /* the loop's reference */
  }
}

/* Gives up the CPU: straight to the next task of this iteration's batch
 * when it is a started task (one switch instead of two), else to the
 * loop. */
static void switch_out(aioc_task *t) {
  aioc_loop *loop = t->f.loop;
  aioc__coop_reset(loop);
  uintptr_t e = aioc__sched_peek(loop);
  if (e & AIOC__QTASK) {
    aioc_task *next = (aioc_task *)(e & ~AIOC__QTASK);
    if (next->f.tstate == T_READY) {
      aioc__sched_take(loop);
      next->f.queued = 0;
      next->f.tstate = T_RUNNING;
      loop->current = next;
      if (next != t) aioc__coro_switch(&t->r->coro, &next->r->coro);
      return;
    }
  }
  aioc__coro_switch(&t->r->coro, &loop->main_coro);
}

/* The loop closes under a task that started and has not finished. */
static void task_abandon(aioc__live *n);
const aioc__live_ops aioc__task_live_ops = {NULL, task_abandon};

static void task_abandon(aioc__live *n) {
  aioc__trun *r = aioc__container_of(n, aioc__trun, live);
  aioc_task *t = r->task;
  aioc_loop *loop = t->f.loop;
  if (!loop->quiet && !t->f.reported) {
    aioc_report rep = {.message = "Task was destroyed but it is pending",
                       .task = t,
                       .task_name = aioc__task_display_name(t)};
    aioc__report(loop, &rep);
  }
  if (r->wait) {
    r->wait->unhook(t, r->wait);
    r->wait = NULL;
  }
  /* Its code never runs again, so nobody else can free the scopes it
   * holds open (a task that ends by itself leaves them to their owner). */
  while (r->scopes) aioc_scope_free(r->scopes);
  /* Put back on the live list so that task_complete can unlink it. */
  aioc__live_add(loop, &r->live, &aioc__task_live_ops);
  task_complete(t, -ECANCELED, NULL, NULL);
  /* Its frames are abandoned: C cannot unwind them. */
  aioc__stack_put(r->coro.stack);
  t->r = NULL;
  if (!t->f.queued) task_unref(t);
}

void aioc__tasks_each(aioc_loop *loop, void (*fn)(aioc_task *t, void *arg),
                      void *arg) {
  aioc__list_each(l, &loop->live) {
    aioc__live *n = aioc__container_of(l, aioc__live, link);
    if (n->ops == &aioc__task_live_ops)
      fn(aioc__container_of(n, aioc__trun, live)->task, arg);
  }
  for (uintptr_t e = loop->ready.head; e;) {
    aioc__qnode *q = (aioc__qnode *)(e & ~AIOC__QTASK);
    uintptr_t next = q->next;
    if (e & AIOC__QTASK) {
      aioc_task *t = (aioc_task *)q;
      if (t->f.tstate == T_CREATED) fn(t, arg);
    }
    e = next;
  }
}

int aioc__task_transfer(aioc_task *from, aioc__wait *w, aioc_task *to) {
  aioc_loop *loop = to->f.loop;
  int rc = task_start(to);
  if (rc < 0) {
    task_unref(to);
    return rc;
  }
  bool slow = aioc__unlikely(from->f.slow) && loop->observe;
  if (aioc__unlikely(slow)) aioc__tobs_out(from);
  from->r->wait = w;
  from->f.tstate = T_SUSPENDED;
  aioc__coro *c = &loop->relay.start;
  to->f.tstate = T_RUNNING;
  loop->current = to;
  aioc__coro_switch_inherit(&from->r->coro, c);
  if (aioc__unlikely(slow)) aioc__tobs_in(from);
  return from->r->wake_rc;
}

int aioc_spawn_ex(aioc_task **out, aioc_loop *loop, aioc_fn fn, void *arg,
                  const aioc_task_options *opts) {
  return aioc__task_create(out, loop, fn, arg, opts, true);
}

int aioc__task_create(aioc_task **out, aioc_loop *loop, aioc_fn fn, void *arg,
                      const aioc_task_options *opts, bool queue) {
  if (out) *out = NULL;
  if (!fn) return -EINVAL;
  if (loop && !AIOC__LOOP_OK(loop, "aioc_spawn_ex")) return -EINVAL;
  if (!loop) loop = aioc__running ? aioc__running : aioc_loop_current();
  if (!loop) return -ENOMEM;
  if (loop->closed) return AIOC_ECLOSED;
  aioc_task *t = aioc__slab_alloc(AIOC__SLAB_TASK, sizeof *t);
  if (!t) return -ENOMEM;
  loop->step_task = task_step; /* how the loop runs a task node */
  aioc__future_init(&t->f, loop, true);
  t->f.result = arg;
  t->f.tid = (uint32_t)++loop->task_seq;
  t->fn = fn;
  if (opts && (opts->name || opts->stack_size || opts->result_free)) {
    aioc__fext *e = aioc__future_ext(&t->f);
    if (!e || (opts->name && !(e->name = aioc__strdup(opts->name)))) {
      aioc__future_free(&t->f);
      return -ENOMEM;
    }
    if (opts->stack_size) e->stride = aioc__stack_stride(opts->stack_size);
    e->result_free = opts->result_free;
  }
  loop->nlive++;
  if (out) {
    t->f.refs++;
    *out = t;
  }
  if (queue) aioc__task_push(t);
  /* Last, a tail call: the check costs the hot path no register. */
  if (aioc__unlikely(loop->observe)) return tobs_spawned(t);
  return 0;
}

int aioc_spawn(aioc_task **out, aioc_fn fn, void *arg) {
  return aioc__task_create(out, NULL, fn, arg, NULL, true);
}

aioc_future *aioc_task_future(aioc_task *t) {
  if (!t || !AIOC__TASK_OK(t, "aioc_task_future")) return NULL;
  return &t->f;
}

int aioc_task_await(aioc_task *t, void **result) {
  if (!t || !AIOC__TASK_OK(t, "aioc_task_await")) {
    if (result) *result = NULL;
    return -EINVAL;
  }
  return aioc_await(&t->f, result);
}

aioc_task *aioc_task_ref(aioc_task *t) {
  if (t && AIOC__TASK_OK(t, "aioc_task_ref")) t->f.refs++;
  return t;
}

void aioc_task_unref(aioc_task *t) {
  if (t && AIOC__TASK_OK(t, "aioc_task_unref")) task_unref(t);
}

aioc_task *aioc_current_task(void) { return aioc__current(); }

typedef struct collect {
  aioc_task **tasks;
  size_t cap, n;
} collect;

static void collect_one(aioc_task *t, void *arg) {
  collect *c = arg;
  if (c->tasks && c->n < c->cap) c->tasks[c->n] = t;
  c->n++;
}

int aioc_all_tasks(aioc_loop *loop, aioc_task **tasks, size_t cap) {
  if (loop && !AIOC__LOOP_OK(loop, "aioc_all_tasks")) return 0;
  if (!loop) loop = aioc__running ? aioc__running : aioc_loop_current();
  if (!loop) return 0;
  collect c = {tasks, cap, 0};
  aioc__tasks_each(loop, collect_one, &c);
  return (int)c.n;
}

/* ---- suspension ---- */

/* The slow path of a task that blocks or yields (t->f.slow): its
 * on_block function, its observation. w NULL: a yield. */
static __attribute__((noinline)) int block_slow(aioc_task *t,
                                                aioc__wait *w) {
  if (t->f.ext && t->f.ext->on_block) t->f.ext->on_block(t);
  t->r->wait = w;
  if (w) {
    t->r->site = aioc__site_next;
    aioc__site_next = NULL;
    /* An observed task reads the clock; one that only takes the slow
     * path (an on_block function, a loop watched for stalls) does as
     * the fast path does. */
    aioc_loop *loop = t->f.loop;
    t->r->wait_since = tobs(t)          ? aioc__now(loop)
                       : loop->now_valid ? loop->now
                                         : -1;
    t->f.tstate = T_SUSPENDED;
  } else {
    t->r->wake_rc = 0;
    t->f.tstate = T_READY;
    aioc__task_push(t);
  }
  aioc__tobs_out(t);
  if (!w) aioc__tobs_ready(t);
  switch_out(t);
  aioc__tobs_in(t);
  return t->r->wake_rc;
}

int aioc__task_suspend(aioc_task *t, aioc__wait *w) {
  if (aioc__unlikely(t->f.slow)) return block_slow(t, w);
  aioc_loop *loop = t->f.loop;
  t->r->wait = w;
  /* For dumps: where (the site the macros noted) and since when (the
   * iteration's time, when the loop has read it). */
  t->r->site = aioc__site_next;
  aioc__site_next = NULL;
  t->r->wait_since = loop->now_valid ? loop->now : -1;
  t->f.tstate = T_SUSPENDED;
  switch_out(t);
  return t->r->wake_rc;
}

void aioc__task_wake(aioc_task *t, int rc) {
  t->r->wait = NULL;
  t->r->wake_rc = rc;
  t->f.tstate = T_READY;
  if (aioc__unlikely(t->f.slow)) aioc__tobs_ready(t);
  aioc__task_push(t);
}

void aioc__task_interrupt(aioc_task *t, int rc) {
  aioc__wait *w = t->r->wait;
  if (!w) return;
  t->r->wait = NULL;
  w->unhook(t, w);
  aioc__task_wake(t, rc);
}

void aioc__task_yield(aioc_task *t) {
  if (aioc__unlikely(t->f.slow)) {
    block_slow(t, NULL);
    return;
  }
  t->r->wake_rc = 0;
  t->r->wait = NULL;
  t->f.tstate = T_READY;
  aioc__task_push(t);
  switch_out(t);
}

int aioc_yield(void) {
  aioc_task *t = aioc__current();
  if (!t) return AIOC_ENOTASK;
  int rc = aioc__task_check(t);
  if (rc) return rc;
  aioc__task_yield(t);
  return 0;
}

/* Is the chain from the innermost scope out to the task shielded? */
static bool shielded(const aioc_task *t) {
  for (aioc_scope *s = t->r->scopes; s; s = s->parent)
    if (s->kind == SCOPE_SHIELD) return true;
  return false;
}

int aioc__task_check_slow(aioc_task *t) {
  if (t->r->nocancel) return 0;
  bool timed = false, shield = false;
  for (aioc_scope *s = t->r->scopes; s; s = s->parent) {
    if (s->expired) timed = true;
    if (s->kind == SCOPE_SHIELD) {
      shield = true;
      break;
    }
  }
  /* Cancellation is an explicit request: it wins over deadlines. */
  if (!shield && t->f.cancel_requested) return -ECANCELED;
  return timed ? -ETIMEDOUT : 0;
}

/* ---- await ---- */

typedef struct awaitw {
  aioc__wait w;
  aioc__waiter n;
  aioc_task *t;
} awaitw;

static void await_notify(aioc__waiter *n, aioc_future *f) {
  (void)f;
  awaitw *a = aioc__container_of(n, awaitw, n);
  aioc__task_wake(a->t, 0);
}

static void await_unhook(aioc_task *t, aioc__wait *w) {
  (void)t;
  awaitw *a = aioc__container_of(w, awaitw, w);
  aioc__future_del_waiter(&a->n);
}

aioc_future *aioc__task_awaiting(const aioc_task *t) {
  if (t->f.tstate != T_SUSPENDED || !t->r->wait ||
      t->r->wait->unhook != await_unhook)
    return NULL;
  return aioc__container_of(t->r->wait, awaitw, w)->n.f;
}

int aioc_await(aioc_future *f, void **result) {
  if (result) *result = NULL;
  if (!f || !AIOC__FUTURE_OK(f, "aioc_await")) return -EINVAL;
  aioc_task *t = aioc__current();
  if (!t) return AIOC_ENOTASK;
  if (f->loop != t->f.loop) return -EINVAL;
  if (f == &t->f) return -EDEADLK;
  aioc__coop_tick();
  if (f->state == AIOC_FUTURE_PENDING) {
    int rc = aioc__task_check(t);
    if (rc) return rc;
    awaitw a = {.w.unhook = await_unhook, .n.notify = await_notify, .t = t};
    aioc__future_add_waiter(f, &a.n);
    rc = aioc__task_suspend(t, &a.w);
    if (rc < 0) return rc;
  }
  return aioc__future_take(f, result, t);
}

void aioc__await_uninterruptible(aioc_task *t, aioc_future *f) {
  if (f->state != AIOC_FUTURE_PENDING) return;
  t->r->nocancel++;
  awaitw a = {.w.unhook = await_unhook, .n.notify = await_notify, .t = t};
  aioc__future_add_waiter(f, &a.n);
  aioc__task_suspend(t, &a.w);
  t->r->nocancel--;
}

/* ---- cancellation ---- */

int aioc_task_cancel(aioc_task *t, const char *msg) {
  if (!t || !AIOC__TASK_OK(t, "aioc_task_cancel")) return -EINVAL;
  if (t->f.state != AIOC_FUTURE_PENDING) return 0;
  if (t->f.cancel_requested < UINT16_MAX) t->f.cancel_requested++;
  if (aioc__unlikely(t->f.loop->trace)) aioc__trace_cancel(t);
  if (msg) {
    /* The message the task's cancellation will carry. */
    char *m = aioc__strdup(msg);
    aioc__fext *e = m ? aioc__future_ext(&t->f) : NULL;
    if (e) {
      aioc__free(e->msg);
      e->msg = m;
    } else {
      aioc__free(m);
    }
  }
  if (t->f.tstate == T_SUSPENDED && t->r->wait && !t->r->nocancel &&
      !shielded(t))
    aioc__task_interrupt(t, -ECANCELED);
  return 1;
}

int aioc_task_uncancel(aioc_task *t) {
  if (!t || !AIOC__TASK_OK(t, "aioc_task_uncancel")) return -EINVAL;
  if (t->f.cancel_requested > 0) t->f.cancel_requested--;
  return t->f.cancel_requested;
}

int aioc_task_cancelling(const aioc_task *t) {
  if (!t || !AIOC__TASK_OK(t, "aioc_task_cancelling")) return -EINVAL;
  return t->f.cancel_requested;
}

/* Tasks: spawning, stepping, suspension, cancellation.
 *
 * A task gets its stack only when it first runs and gives it back the
 * moment it finishes, so short tasks reuse one hot stack: spawning a
 * million trivial tasks touches one stack, not a million. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "task.h"

/* ---- names, messages ---- */

/* Unnamed tasks get "Task-<id>" the first time anyone asks: formatting it
 * at spawn would cost more than the rest of a spawn. */
const char *aioc__task_display_name(const aioc_task *t) {
  if (t->name) return t->name;
  char buf[32];
  snprintf(buf, sizeof buf, "Task-%llu", (unsigned long long)t->id);
  ((aioc_task *)t)->name = aioc__strdup(buf);
  return t->name ? t->name : "Task";
}

const char *aioc_task_name(const aioc_task *t) {
  return t ? aioc__task_display_name(t) : NULL;
}

void aioc__task_set_errmsg(aioc_task *t, int code, char *msg) {
  aioc__free(t->errmsg);
  t->errmsg = msg;
  t->errcode = code;
}

int aioc_error(int code, const char *fmt, ...) {
  aioc_task *t = aioc__current();
  if (!t || !fmt) return code;
  va_list ap;
  va_start(ap, fmt);
  char *msg = aioc__vformat(fmt, ap);
  va_end(ap);
  aioc__task_set_errmsg(t, code, msg);
  return code;
}

const char *aioc_error_message(void) {
  aioc_task *t = aioc__current();
  return t ? t->errmsg : NULL;
}

/* ---- lifetime ---- */

void aioc__task_free(aioc_task *t) {
  /* The future's release may report the task by name: free it after. */
  char *name = t->name, *errmsg = t->errmsg;
  aioc__future_free(&t->f);
  aioc__free(name);
  aioc__free(errmsg);
}

static void task_unref(aioc_task *t) { aioc_future_release(&t->f); }

/* Sets the outcome of a task that ends (ran to its end, was cancelled
 * before starting, or was abandoned by its closing loop). */
static void task_complete(aioc_task *t, int rc, void *result) {
  aioc_loop *loop = t->f.loop;
  aioc__live_del(loop, &t->live);
  t->tstate = T_FINISHED;
  /* Scopes the function left open (a bug, but not a leak). */
  while (t->scopes) {
    aioc_scope *s = t->scopes;
    t->scopes = s->parent;
    aioc__timer_disarm(loop, &s->tm);
    aioc__free(s);
  }
  if (rc == -ECANCELED) {
    /* The message given to aioc_task_cancel() is already in einfo. */
    aioc__future_finish(&t->f, AIOC_CANCELLED, -ECANCELED, NULL, NULL);
  } else if (rc < 0) {
    char *msg = NULL;
    if (t->errmsg && t->errcode == rc) {
      msg = t->errmsg;
      t->errmsg = NULL;
    }
    aioc__future_finish(&t->f, AIOC_DONE, rc, NULL, msg);
  } else {
    aioc__future_finish(&t->f, AIOC_DONE, 0, result, NULL);
  }
}

static void task_main(void *p) {
  aioc_task *t = p;
  aioc__coro_started(&t->coro);
  void *result = NULL;
  int rc = t->fn(t->arg, &result);
  task_complete(t, rc, result);
  aioc__coro_exit(&t->coro, &t->f.loop->main_coro);
}

void (*aioc__gen_blocked)(aioc_task *t);

/* Gives a task that has never run its stack. On failure the task ends
 * (with -ECANCELED if it was cancelled first, else the stack error) and the
 * code is returned; the caller then drops the loop's reference. */
static int task_start(aioc_task *t) {
  if (t->cancel_requested) {
    /* Cancelled before it started: it never runs (as in asyncio). */
    task_complete(t, -ECANCELED, NULL);
    return -ECANCELED;
  }
  aioc__stack *st;
  int rc = aioc__stack_get(t->stride, &st);
  if (rc < 0) {
    aioc__task_set_errmsg(t, rc, aioc__strdup("no coroutine stack available"));
    task_complete(t, rc, NULL);
    return rc;
  }
  aioc__stack_set_owner(st, t->name, t->id);
  aioc__coro_make(&t->coro, st, task_main, t);
  return 0;
}

/* One step of a task: start or resume it until it suspends or ends. */
static void task_run(aioc__runnable *r) {
  aioc_task *t = aioc__container_of(r, aioc_task, f.rq);
  aioc_loop *loop = t->f.loop;
  t->queued = 0;
  if (t->tstate == T_FINISHED || loop->closed) {
    /* Abandoned while queued: the queue held the loop's reference. */
    task_unref(t);
    return;
  }
  if (t->tstate == T_CREATED && task_start(t) < 0) {
    task_unref(t);
    return;
  }
  t->tstate = T_RUNNING;
  loop->current = t;
  aioc__coro_switch(&loop->main_coro, &t->coro);
  /* Control may have passed from task to task before coming back: the one
   * that returned it is loop->current. */
  aioc_task *back = loop->current;
  loop->current = NULL;
  if (back->tstate == T_FINISHED) {
    aioc__stack_put(back->coro.stack);
    back->coro.stack = NULL;
    task_unref(back); /* the loop's reference */
  }
}

/* Gives up the CPU: straight to the next task of this iteration's batch
 * when it is a started task (one switch instead of two), else to the
 * loop. */
static void switch_out(aioc_task *t) {
  aioc_loop *loop = t->f.loop;
  aioc__runnable *r = loop->ready.head;
  if (!loop->batch_left && r && aioc__loop_can_continue(loop))
    loop->batch_left = loop->ready.len; /* the next iteration, started here */
  if (loop->batch_left && r && r->run == task_run) {
    aioc_task *next = aioc__container_of(r, aioc_task, f.rq);
    if (next->tstate == T_READY) {
      loop->batch_left--;
      loop->ready.head = r->next;
      if (!r->next) loop->ready.tail = NULL;
      loop->ready.len--;
      next->queued = 0;
      next->tstate = T_RUNNING;
      loop->current = next;
      if (next != t) aioc__coro_switch(&t->coro, &next->coro);
      return;
    }
  }
  aioc__coro_switch(&t->coro, &loop->main_coro);
}

/* The loop closes under a task that has not finished. */
static void task_abandon(aioc__live *n) {
  aioc_task *t = aioc__container_of(n, aioc_task, live);
  aioc_loop *loop = t->f.loop;
  if (!loop->quiet) {
    aioc_report rep = {.message = "Task was destroyed but it is pending",
                       .task = t};
    aioc__report(loop, &rep);
  }
  if (t->wait) {
    t->wait->unhook(t, t->wait);
    t->wait = NULL;
  }
  /* Put back on the live list so that task_complete can unlink it. */
  aioc__live_add(loop, &t->live);
  task_complete(t, -ECANCELED, NULL);
  if (t->coro.stack) {
    /* Its frames are abandoned: C cannot unwind them. */
    aioc__stack_put(t->coro.stack);
    t->coro.stack = NULL;
  }
  if (!t->queued) task_unref(t);
}

/* The loop layer calls back into this one through a hook, set once. */
__attribute__((constructor)) static void task_layer_init(void) {
  aioc__live_abandon = task_abandon;
}

int aioc__task_transfer(aioc_task *from, aioc_task *to) {
  aioc_loop *loop = to->f.loop;
  if (to->tstate == T_CREATED) {
    int rc = task_start(to);
    if (rc < 0) {
      task_unref(to);
      return rc;
    }
  }
  to->wait = NULL;
  to->tstate = T_RUNNING;
  loop->current = to;
  aioc__coro_switch(&from->coro, &to->coro);
  return from->wake_rc;
}

int aioc_spawn_ex(aioc_task **out, aioc_loop *loop, aioc_fn fn, void *arg,
                  const aioc_task_options *opts) {
  return aioc__task_create(out, loop, fn, arg, opts, true);
}

int aioc__task_create(aioc_task **out, aioc_loop *loop, aioc_fn fn, void *arg,
                      const aioc_task_options *opts, bool queue) {
  if (out) *out = NULL;
  if (!fn) return -EINVAL;
  if (!loop) loop = aioc__running ? aioc__running : aioc_loop_current();
  if (!loop) return -ENOMEM;
  if (loop->closed) return AIOC_ECLOSED;
  aioc_task *t = aioc__slab_alloc(AIOC__SLAB_TASK, sizeof *t);
  if (!t) return -ENOMEM;
  aioc__future_init(&t->f, loop, true);
  t->f.rq.run = task_run;
  memset(&t->coro, 0, sizeof t->coro);
  t->fn = fn;
  t->arg = arg;
  t->name = NULL;
  t->id = ++loop->task_seq;
  t->scopes = NULL;
  t->wait = NULL;
  t->errmsg = NULL;
  t->errcode = 0;
  t->wake_rc = 0;
  t->cancel_requested = 0;
  t->nocancel = 0;
  t->stride = (uint32_t)loop->stack_stride;
  t->tstate = T_CREATED;
  t->is_gen = 0;
  t->queued = 0;
  if (opts) {
    if (opts->name && !(t->name = aioc__strdup(opts->name))) {
      aioc__future_free(&t->f);
      return -ENOMEM;
    }
    if (opts->stack_size)
      t->stride = (uint32_t)aioc__stack_stride(opts->stack_size);
    t->f.result_free = opts->result_free;
  }
  aioc__live_add(loop, &t->live);
  if (out) {
    t->f.refs++;
    *out = t;
  }
  if (queue) {
    t->queued = 1;
    aioc__ready_push(loop, &t->f.rq);
  }
  return 0;
}

int aioc_spawn(aioc_task **out, aioc_fn fn, void *arg) {
  return aioc_spawn_ex(out, NULL, fn, arg, NULL);
}

aioc_future *aioc_task_future(aioc_task *t) { return t ? &t->f : NULL; }

int aioc_task_await(aioc_task *t, void **result) {
  if (!t) {
    if (result) *result = NULL;
    return -EINVAL;
  }
  return aioc_await(&t->f, result);
}

aioc_task *aioc_task_retain(aioc_task *t) {
  if (t) t->f.refs++;
  return t;
}

void aioc_task_release(aioc_task *t) {
  if (t) task_unref(t);
}

aioc_task *aioc_current_task(void) { return aioc__current(); }

int aioc_all_tasks(aioc_loop *loop, aioc_task **tasks, size_t cap) {
  if (!loop) loop = aioc__running ? aioc__running : aioc_loop_current();
  if (!loop) return 0;
  size_t i = 0;
  for (aioc__live *n = loop->live.next; n != &loop->live; n = n->next, i++)
    if (tasks && i < cap) tasks[i] = aioc__container_of(n, aioc_task, live);
  return (int)i;
}

/* ---- suspension ---- */

int aioc__task_suspend(aioc_task *t, aioc__wait *w) {
  if (aioc__unlikely(t->is_gen)) aioc__gen_blocked(t);
  t->wait = w;
  t->tstate = T_SUSPENDED;
  switch_out(t);
  return t->wake_rc;
}

void aioc__task_wake(aioc_task *t, int rc) {
  t->wait = NULL;
  t->wake_rc = rc;
  t->tstate = T_READY;
  t->queued = 1;
  aioc__ready_push(t->f.loop, &t->f.rq);
}

void aioc__task_interrupt(aioc_task *t, int rc) {
  aioc__wait *w = t->wait;
  if (!w) return;
  t->wait = NULL;
  w->unhook(t, w);
  aioc__task_wake(t, rc);
}

void aioc__task_yield(aioc_task *t) {
  if (aioc__unlikely(t->is_gen)) aioc__gen_blocked(t);
  t->wake_rc = 0;
  t->wait = NULL;
  t->tstate = T_READY;
  t->queued = 1;
  aioc__ready_push(t->f.loop, &t->f.rq);
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
  for (aioc_scope *s = t->scopes; s; s = s->parent)
    if (s->kind == SCOPE_SHIELD) return true;
  return false;
}

int aioc__task_check_slow(aioc_task *t) {
  if (t->nocancel) return 0;
  bool timed = false, shield = false;
  for (aioc_scope *s = t->scopes; s; s = s->parent) {
    if (s->expired) timed = true;
    if (s->kind == SCOPE_SHIELD) {
      shield = true;
      break;
    }
  }
  /* Cancellation is an explicit request: it wins over deadlines. */
  if (!shield && t->cancel_requested) return -ECANCELED;
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

int aioc_await(aioc_future *f, void **result) {
  if (result) *result = NULL;
  if (!f) return -EINVAL;
  aioc_task *t = aioc__current();
  if (!t) return AIOC_ENOTASK;
  if (f->loop != t->f.loop) return -EINVAL;
  if (f == &t->f) return -EDEADLK;
  if (f->state == AIOC_PENDING) {
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
  if (f->state != AIOC_PENDING) return;
  t->nocancel++;
  awaitw a = {.w.unhook = await_unhook, .n.notify = await_notify, .t = t};
  aioc__future_add_waiter(f, &a.n);
  aioc__task_suspend(t, &a.w);
  t->nocancel--;
}

/* ---- cancellation ---- */

int aioc_task_cancel(aioc_task *t, const char *msg) {
  if (!t) return -EINVAL;
  if (t->f.state != AIOC_PENDING) return 0;
  t->cancel_requested++;
  if (msg) {
    /* The message the task's cancellation will carry. */
    char *m = aioc__strdup(msg);
    if (m) {
      if (!t->f.einfo) t->f.einfo = aioc__calloc(1, sizeof *t->f.einfo);
      if (t->f.einfo) {
        aioc__free(t->f.einfo->msg);
        t->f.einfo->msg = m;
      } else {
        aioc__free(m);
      }
    }
  }
  if (t->tstate == T_SUSPENDED && t->wait && !t->nocancel && !shielded(t))
    aioc__task_interrupt(t, -ECANCELED);
  return 1;
}

int aioc_task_uncancel(aioc_task *t) {
  if (!t) return -EINVAL;
  if (t->cancel_requested > 0) t->cancel_requested--;
  return t->cancel_requested;
}

int aioc_task_cancelling(const aioc_task *t) {
  return t ? t->cancel_requested : -EINVAL;
}

/* Futures: outcome, waiters, done-callbacks, reference counting, shield. */
#include <stdarg.h>
#include <string.h>

#include "task.h"

void aioc__future_add_waiter(aioc_future *f, aioc__waiter *w) {
  aioc__waiter *h = f->waiters;
  w->f = f;
  if (!h) {
    w->next = w->prev = w;
    f->waiters = w;
    return;
  }
  w->next = h;
  w->prev = h->prev;
  h->prev->next = w;
  h->prev = w;
}

void aioc__future_del_waiter(aioc__waiter *w) {
  if (!w->next) return;
  aioc_future *f = w->f;
  if (w->next == w) {
    f->waiters = NULL;
  } else {
    w->prev->next = w->next;
    w->next->prev = w->prev;
    if (f->waiters == w) f->waiters = w->next;
  }
  w->next = w->prev = NULL;
}

aioc__fext *aioc__future_ext(aioc_future *f) {
  if (!f->ext) f->ext = aioc__calloc(1, sizeof *f->ext);
  return f->ext;
}

void aioc__future_finish(aioc_future *f, uint8_t state, int err,
                         void *result, char *msg) {
  f->state = state;
  f->err = state == AIOC_FUTURE_CANCELLED ? -ECANCELED : err;
  f->result = result;
  if (msg) {
    aioc__fext *e = aioc__future_ext(f);
    if (e) {
      aioc__free(e->msg);
      e->msg = msg;
    } else {
      aioc__free(msg);
    }
  }
  /* Waiters are detached one by one so that a notify may add or remove
   * other waiters safely. */
  aioc__waiter *w;
  while ((w = f->waiters) != NULL) {
    aioc__future_del_waiter(w);
    w->notify(w, f);
  }
}

int aioc__future_take(aioc_future *f, void **result, aioc_task *t) {
  f->retrieved = 1;
  if (f->state == AIOC_FUTURE_DONE && f->err == 0) {
    if (result) {
      *result = f->result;
      f->result_taken = 1;
    }
    return 0;
  }
  if (t && f->ext && f->ext->msg)
    aioc__task_set_errmsg(t, f->err, aioc__strdup(f->ext->msg));
  return f->err;
}

static void report_unretrieved(aioc_future *f) {
  char *buf = NULL;
  aioc_report r = {
      .message = f->is_task ? "Task exception was never retrieved"
                            : "Future exception was never retrieved",
      .task = f->is_task ? (aioc_task *)f : NULL,
      .task_name = f->is_task ? aioc__task_display_name((aioc_task *)f) : NULL,
      .code = f->err,
      .detail = f->ext ? f->ext->msg : NULL};
  /* The flight recorder's trace goes to a file the report names. */
  if (aioc__unlikely(f->loop->trace) && f->is_task &&
      (buf = aioc__trace_unretrieved(
           f->loop, r.detail ? r.detail : aioc_strerror(r.code))) != NULL)
    r.detail = buf;
  aioc__report(f->loop, &r);
  aioc__free(buf);
}

void aioc__future_free(aioc_future *f) {
  if (f->state == AIOC_FUTURE_DONE && f->err && !f->retrieved)
    report_unretrieved(f);
  aioc__fext *e = f->ext;
  if (e) {
    if (f->state == AIOC_FUTURE_DONE && !f->err && !f->result_taken &&
        e->result_free)
      e->result_free(f->result);
    if (e->payload_free) e->payload_free(e->payload);
    aioc__free(e->msg);
    aioc__free(e->name);
    aioc__free(e->obs);
    aioc__free(e);
  }
  aioc_loop *loop = f->loop;
  AIOC__ARMOR_SET(f, AIOC__MAGIC_DEAD);
  if (f->is_task)
    aioc__slab_free(AIOC__SLAB_TASK, f);
  else
    aioc__free(f);
  aioc__loop_unref(loop);
}

/* ---- public ---- */

int aioc_future_new(aioc_future **out, aioc_loop *loop) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (loop && !AIOC__LOOP_OK(loop, "aioc_future_new")) return -EINVAL;
  if (!loop) loop = aioc_loop_current();
  if (!loop) return -ENOMEM;
  if (loop->closed) return AIOC_ECLOSED;
  aioc_future *f = aioc__alloc(sizeof *f);
  if (!f) return -ENOMEM;
  aioc__future_init(f, loop, false);
  if (!aioc__future_ext(f)) {
    aioc__loop_unref(loop);
    AIOC__ARMOR_SET(f, AIOC__MAGIC_DEAD);
    aioc__free(f);
    return -ENOMEM;
  }
  *out = f;
  return 0;
}

aioc_future *aioc_future_ref(aioc_future *f) {
  if (f && AIOC__FUTURE_OK(f, "aioc_future_ref")) f->refs++;
  return f;
}

AIOC_HIDDEN void aioc__task_free(aioc_task *t);

void aioc_future_unref(aioc_future *f) {
  if (!f || !AIOC__FUTURE_OK(f, "aioc_future_unref") || --f->refs) return;
  if (f->is_task)
    aioc__task_free((aioc_task *)f);
  else
    aioc__future_free(f);
}

int aioc_future_set_result(aioc_future *f, void *result, aioc_free_fn fr) {
  if (!f || !AIOC__FUTURE_OK(f, "aioc_future_set_result") || f->is_task)
    return -EINVAL;
  if (f->state != AIOC_FUTURE_PENDING) return AIOC_ESTATE;
  f->ext->result_free = fr; /* plain futures have ext from the start */
  aioc__future_finish(f, AIOC_FUTURE_DONE, 0, result, NULL);
  return 0;
}

int aioc_future_set_error(aioc_future *f, int code, const char *fmt, ...) {
  if (!f || !AIOC__FUTURE_OK(f, "aioc_future_set_error") || f->is_task ||
      code >= 0)
    return -EINVAL;
  if (f->state != AIOC_FUTURE_PENDING) return AIOC_ESTATE;
  char *msg = NULL;
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    msg = aioc__vformat(fmt, ap);
    va_end(ap);
  }
  aioc__future_finish(
      f, code == -ECANCELED ? AIOC_FUTURE_CANCELLED : AIOC_FUTURE_DONE, code,
      NULL, msg);
  return 0;
}

int aioc_future_set_error_payload(aioc_future *f, void *payload,
                                  aioc_free_fn fr) {
  if (!f || !AIOC__FUTURE_OK(f, "aioc_future_set_error_payload"))
    return -EINVAL;
  if (f->state == AIOC_FUTURE_PENDING || f->err == 0) return AIOC_ESTATE;
  aioc__fext *e = aioc__future_ext(f);
  if (!e) return -ENOMEM;
  if (e->payload_free) e->payload_free(e->payload);
  e->payload = payload;
  e->payload_free = fr;
  return 0;
}

int aioc_future_cancel(aioc_future *f, const char *msg) {
  if (!f || !AIOC__FUTURE_OK(f, "aioc_future_cancel")) return -EINVAL;
  if (f->is_task) return aioc_task_cancel((aioc_task *)f, msg);
  if (f->state != AIOC_FUTURE_PENDING) return 0;
  aioc__future_finish(f, AIOC_FUTURE_CANCELLED, -ECANCELED, NULL,
                      msg ? aioc__strdup(msg) : NULL);
  return 1;
}

int aioc_future_state(const aioc_future *f) {
  if (!f || !AIOC__FUTURE_OK(f, "aioc_future_state")) return -EINVAL;
  /* Stored states are pending, done and cancelled; running is read from
   * the task's own state, so nothing else needs to know about it. */
  if (f->state == AIOC_FUTURE_PENDING && f->is_task &&
      aioc__task_started((const aioc_task *)f))
    return AIOC_FUTURE_RUNNING;
  return f->state;
}

int aioc_future_is_done(const aioc_future *f) {
  return f && AIOC__FUTURE_OK(f, "aioc_future_is_done") &&
         f->state != AIOC_FUTURE_PENDING;
}

int aioc_future_is_cancelled(const aioc_future *f) {
  return f && AIOC__FUTURE_OK(f, "aioc_future_is_cancelled") &&
         f->state == AIOC_FUTURE_CANCELLED;
}

int aioc_future_result(aioc_future *f, void **result) {
  if (result) *result = NULL;
  if (!f || !AIOC__FUTURE_OK(f, "aioc_future_result")) return -EINVAL;
  if (f->state == AIOC_FUTURE_PENDING) return AIOC_ESTATE;
  return aioc__future_take(f, result, NULL);
}

int aioc_future_error(aioc_future *f) {
  if (!f || !AIOC__FUTURE_OK(f, "aioc_future_error")) return -EINVAL;
  if (f->state != AIOC_FUTURE_PENDING) f->retrieved = 1;
  return f->err;
}

const char *aioc_future_error_message(const aioc_future *f) {
  if (!f || !AIOC__FUTURE_OK(f, "aioc_future_error_message")) return NULL;
  return f->ext ? f->ext->msg : NULL;
}

void *aioc_future_error_payload(const aioc_future *f) {
  if (!f || !AIOC__FUTURE_OK(f, "aioc_future_error_payload")) return NULL;
  return f->ext ? f->ext->payload : NULL;
}

aioc_loop *aioc_future_loop(const aioc_future *f) {
  if (!f || !AIOC__FUTURE_OK(f, "aioc_future_loop")) return NULL;
  return f->loop;
}

/* ---- done-callbacks: a waiter that is also a runnable ---- */

typedef struct cbnode {
  aioc__waiter w;
  aioc__runnable rq;
  aioc_future *f;
  aioc_callback cb;
  void *arg;
} cbnode;

static void cb_run(aioc__runnable *r) {
  cbnode *n = aioc__container_of(r, cbnode, rq);
  aioc_future *f = n->f;
  if (!f->loop->closed) n->cb(n->arg);
  aioc__free(n);
  aioc_future_unref(f);
}

static void cb_notify(aioc__waiter *w, aioc_future *f) {
  cbnode *n = aioc__container_of(w, cbnode, w);
  aioc__ready_push(f->loop, &n->rq);
}

int aioc_future_add_done_callback(aioc_future *f, aioc_callback cb,
                                  void *arg) {
  if (!f || !cb || !AIOC__FUTURE_OK(f, "aioc_future_add_done_callback"))
    return -EINVAL;
  cbnode *n = aioc__alloc(sizeof *n);
  if (!n) return -ENOMEM;
  n->w.notify = cb_notify;
  n->w.next = n->w.prev = NULL;
  n->rq.run = cb_run;
  n->f = aioc_future_ref(f);
  n->cb = cb;
  n->arg = arg;
  if (f->state != AIOC_FUTURE_PENDING)
    aioc__ready_push(f->loop, &n->rq);
  else
    aioc__future_add_waiter(f, &n->w);
  return 0;
}

int aioc_future_remove_done_callback(aioc_future *f, aioc_callback cb,
                                     void *arg) {
  if (!f || !AIOC__FUTURE_OK(f, "aioc_future_remove_done_callback"))
    return -EINVAL;
  int removed = 0;
  /* Matching nodes move to a list of their own, then are freed. */
  aioc__waiter *w = f->waiters, *gone = NULL;
  size_t n = 0;
  if (w) {
    do {
      n++;
      w = w->next;
    } while (w != f->waiters);
  }
  for (; n; n--) {
    aioc__waiter *next = w->next;
    if (w->notify == cb_notify) {
      cbnode *c = aioc__container_of(w, cbnode, w);
      if (c->cb == cb && c->arg == arg) {
        aioc__future_del_waiter(w);
        w->next = gone;
        gone = w;
      }
    }
    w = next;
  }
  while (gone) {
    aioc__waiter *next = gone->next;
    aioc__free(aioc__container_of(gone, cbnode, w));
    f->refs--; /* the node's reference; f is still held by the caller */
    removed++;
    gone = next;
  }
  return removed;
}

/* ---- shield ---- */

typedef struct shieldnode {
  aioc__waiter w;
  aioc_future *outer;
} shieldnode;

static void shield_notify(aioc__waiter *w, aioc_future *inner) {
  shieldnode *n = aioc__container_of(w, shieldnode, w);
  aioc_future *outer = n->outer;
  if (outer->state == AIOC_FUTURE_PENDING) {
    if (inner->state == AIOC_FUTURE_CANCELLED) {
      aioc_future_cancel(outer, aioc_future_error_message(inner));
    } else if (inner->err) {
      const char *m = aioc_future_error_message(inner);
      aioc__future_finish(outer, AIOC_FUTURE_DONE, inner->err, NULL,
                          m ? aioc__strdup(m) : NULL);
    } else {
      /* The result travels on; whoever takes it from outer owns it. */
      if (!inner->result_taken) {
        outer->ext->result_free = inner->ext ? inner->ext->result_free : NULL;
        inner->result_taken = 1;
      }
      aioc__future_finish(outer, AIOC_FUTURE_DONE, 0, inner->result, NULL);
    }
    inner->retrieved = 1; /* the outer one carries the outcome on */
  }
  aioc_future_unref(outer);
  aioc__free(n);
  aioc_future_unref(inner);
}

int aioc_shield(aioc_future **outer, aioc_future *inner) {
  if (!outer) return -EINVAL;
  *outer = NULL;
  if (!inner || !AIOC__FUTURE_OK(inner, "aioc_shield")) return -EINVAL;
  aioc_future *o;
  int rc = aioc_future_new(&o, inner->loop);
  if (rc < 0) return rc;
  shieldnode *n = aioc__alloc(sizeof *n);
  if (!n) {
    aioc_future_unref(o);
    return -ENOMEM;
  }
  n->w.notify = shield_notify;
  n->outer = aioc_future_ref(o);
  aioc_future_ref(inner);
  if (inner->state != AIOC_FUTURE_PENDING)
    shield_notify(&n->w, inner);
  else
    aioc__future_add_waiter(inner, &n->w);
  *outer = o;
  return 0;
}

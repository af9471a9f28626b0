/* Generators.
 *
 * The body runs as a task of its own (so that a consumer's timeout or
 * cancellation never reaches it), but is driven without the loop in the
 * common case: a consumer task asking for an item switches straight into
 * the body, and the body's yield switches straight back (two context
 * switches per item). Only when the body blocks in the loop does the
 * consumer wait like any task, with its deadline armed at that moment: a
 * deadline cannot expire while no time passes for the loop, so arming it
 * lazily changes nothing but the cost.
 *
 * From plain code (no running loop) the body is scheduled like a task and
 * the thread's loop runs until the item is there. */
#include <math.h>
#include <string.h>

#include "gen.h"

enum { G_NEW, G_PARKED, G_BUSY, G_DONE };

/* A consumer waiting for an item (task or plain code). Its timer is armed
 * lazily (see above); its detach leaves the generator. */
typedef struct genwait {
  aioc__twait tw; /* tw.t: the consumer task, NULL for plain code */
  aioc_gen *g;
  double timeout;
  bool delivered;
  bool nomem; /* plain code: the timer could not be armed */
  int rc;
  void *item;
} genwait;

struct aioc_gen {
  aioc_loop *loop;
  aioc__live link; /* in loop->live, ops gen_live_ops */
  aioc_task *task; /* the body, from the first request on */
  aioc_gen_fn fn;
  void *arg;
  char *name;
  size_t stack_size;
  unsigned flags;
  aioc_free_fn item_free;
  aioc_free_fn return_free;
  uint8_t state;
  bool closing, yielded_in_close, suppress, orphan;
  void *resume_val; /* what the pending yield returns in *sent */
  aioc__wait park;  /* the body parked at a yield */
  genwait *cw;     /* the consumer waiting now */
  bool have_item;  /* produced while nobody waited */
  void *item;
  int end_rc;
  char *end_msg; /* the body's error message, kept until delivered */
  bool end_delivered;
  bool has_ret; /* the body set a return value not yet taken */
  void *ret;
};

/* ---- the consumer's wait ---- */

/* The consumer is resumed by the loop instead of by its body (timeout,
 * cancellation, the body's end): it continues with the floating-point
 * control state its body has (they are one logical thread), which the
 * hand-off into the body did not save. */
static void cw_take_fpenv(genwait *cw) {
  aioc_task *b = cw->g->task;
  bool saved = b && aioc__task_started(b) && b->f.tstate != T_RUNNING;
  aioc__coro_fpenv_adopt(&cw->tw.t->r->coro, saved ? &b->r->coro : NULL);
}

/* Timeout, cancellation, the loop's close (for plain code: the timeout):
 * the consumer stops waiting for this generator. */
static void cw_detach(aioc__twait *tw) {
  genwait *cw = aioc__container_of(tw, genwait, tw);
  if (cw->g->cw == cw) cw->g->cw = NULL;
  if (tw->t) cw_take_fpenv(cw);
}

/* Only the fields every request needs: this is the per-item path. */
static inline void cw_init(genwait *cw, aioc_gen *g, aioc_task *t,
                           double timeout) {
  aioc__twait_init(&cw->tw, t, cw_detach, -ETIMEDOUT);
  cw->g = g;
  cw->timeout = timeout;
  cw->delivered = cw->nomem = false;
}

/* Arms the consumer's deadline: 0, or -ENOMEM when the timer cannot be
 * armed (a consumer with a timeout must then not wait at all). */
static int cw_arm(genwait *cw) {
  if (aioc__twait_armed(&cw->tw) || cw->tw.expired ||
      cw->timeout == AIOC_FOREVER)
    return 0;
  return aioc__twait_arm(&cw->tw, cw->g->loop,
                         aioc__deadline_after(cw->g->loop, cw->timeout));
}

/* The body is about to block in the loop: its consumer's deadline starts
 * to matter now. If it cannot be armed, the consumer stops waiting with
 * -ENOMEM (the body keeps its place, as after a timeout). */
static void gen_blocked(aioc_task *t) {
  aioc_gen *g = t->r->arg;
  genwait *cw = g->cw;
  if (!cw) return;
  if (cw_arm(cw) < 0) {
    if (cw->tw.t) {
      aioc__task_interrupt(cw->tw.t, -ENOMEM);
    } else {
      cw->nomem = true;
      g->cw = NULL;
    }
    return;
  }
  /* A consumer that is itself a generator's body blocks too: so does its
   * own consumer, and so on outwards. */
  aioc_task *ct = g->cw->tw.t;
  if (ct && aioc__task_has_on_block(ct)) gen_blocked(ct);
}

/* Hands an outcome to the waiting consumer without switching to it. */
static genwait *deliver(aioc_gen *g, int rc, void *item) {
  genwait *cw = g->cw;
  g->cw = NULL;
  cw->rc = rc;
  cw->item = item;
  cw->delivered = true;
  aioc__twait_disarm(&cw->tw, g->loop);
  return cw;
}

/* ---- the body ---- */

static void finish(aioc_gen *g, int rc);

static void park_unhook(aioc_task *t, aioc__wait *w) {
  (void)t;
  aioc_gen *g = aioc__container_of(w, aioc_gen, park);
  g->state = G_BUSY; /* cancelled at its yield: it runs again */
}

static int gen_body(void *arg, void **result) {
  (void)result;
  aioc_gen *g = arg;
  int rc = g->fn(g->arg, g);
  finish(g, rc);
  /* The outcome travels through the generator, not the task. */
  return 0;
}

static void gen_free_struct(aioc_gen *g);

static void drop_return(aioc_gen *g) {
  if (g->has_ret && g->return_free) g->return_free(g->ret);
  g->has_ret = false;
  g->ret = NULL;
}

static void finish(aioc_gen *g, int rc) {
  if (rc == AIOC_EGENEXIT) rc = 0;
  g->state = G_DONE;
  g->end_rc = rc;
  if (rc != 0) drop_return(g); /* only a body that ended well returns */
  aioc_task *self = g->task;
  if (rc < 0 && self->r->errmsg && self->r->errcode == rc) {
    if (g->cw && g->cw->tw.t)
      aioc__task_set_errmsg(g->cw->tw.t, rc, aioc__strdup(self->r->errmsg));
    else /* for plain code, or a later request */
      g->end_msg = aioc__strdup(self->r->errmsg);
  }
  if (g->cw) {
    genwait *cw = deliver(g, rc == 0 || rc == -ECANCELED ? AIOC_EXHAUSTED : rc,
                          NULL);
    g->end_delivered = true;
    if (cw->tw.t) {
      cw_take_fpenv(cw); /* the body runs: its state is the current one */
      aioc__task_wake(cw->tw.t, 0);
    }
  }
  if (g->orphan) gen_free_struct(g);
}

AIOC__HANDOFF int aioc_gen_yield(aioc_gen *g, void *value, void **sent) {
  if (sent) *sent = NULL;
  aioc_task *t = aioc__current();
  genwait *cw0;
  if (aioc__likely(g && t && t == g->task && !g->closing &&
                   !t->f.cancel_requested &&
                   !t->r->scopes && (cw0 = g->cw) != NULL && cw0->tw.t)) {
    /* The common case on its own: straight back to a waiting consumer. */
    g->state = G_PARKED;
    deliver(g, 0, value);
    int rc = aioc__task_switch_to(t, &g->park, cw0->tw.t, 0);
    if (rc == 0 && sent) *sent = g->resume_val;
    g->resume_val = NULL;
    return rc;
  }
  if (!g || !t || t != g->task) return -EINVAL;
  /* From here on the value is the generator's, whatever the outcome: a
   * value that cannot be handed over goes to item_free (gen.h). */
  if (g->closing) {
    /* Yielding while being closed: refused at once. */
    g->yielded_in_close = true;
    if (g->item_free) g->item_free(value);
    return AIOC_EGENEXIT;
  }
  /* A cancelled body (cancel-on-timeout) must not park with the cancel
   * pending: cancellation stays level-triggered. */
  int rc = aioc__task_check(t);
  if (rc) {
    if (g->item_free) g->item_free(value);
    return rc;
  }
  g->state = G_PARKED;
  genwait *cw = g->cw;
  if (cw && cw->tw.t) {
    /* Straight back to the consumer task. */
    deliver(g, 0, value);
    rc = aioc__task_switch_to(t, &g->park, cw->tw.t, 0);
  } else {
    if (cw)
      deliver(g, 0, value); /* plain code: the loop run ends */
    else {
      g->have_item = true; /* nobody waits any more (timed out) */
      g->item = value;
    }
    rc = aioc__task_suspend(t, &g->park);
  }
  if (rc == 0 && sent) *sent = g->resume_val;
  g->resume_val = NULL;
  return rc;
}

/* ---- creation ---- */

static void gen_shutdown(aioc__live *n);
static void gen_abandon(aioc__live *n) {
  (void)n; /* unlinked: nothing runs */
}
static const aioc__live_ops gen_live_ops = {gen_shutdown, gen_abandon};

int aioc_gen_new(aioc_gen **out, aioc_gen_fn fn, void *arg,
                 const aioc_gen_options *opts) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (!fn) return -EINVAL;
  aioc_loop *loop = aioc__running ? aioc__running : aioc_loop_current();
  if (!loop) return -ENOMEM;
  if (loop->closed) return AIOC_ECLOSED;
  aioc_gen *g = aioc__calloc(1, sizeof *g);
  if (!g) return -ENOMEM;
  g->loop = loop;
  g->fn = fn;
  g->arg = arg;
  g->park.unhook = park_unhook;
  if (opts) {
    if (opts->name && !(g->name = aioc__strdup(opts->name))) {
      aioc__free(g);
      return -ENOMEM;
    }
    g->stack_size = opts->stack_size;
    g->flags = opts->flags;
    g->item_free = opts->item_free;
    g->return_free = opts->return_free;
  }
  aioc__loop_ref(loop);
  aioc__live_add(loop, &g->link, &gen_live_ops);
  *out = g;
  return 0;
}

/* The body task, created at the first request (not scheduled). */
static int ensure_task(aioc_gen *g) {
  if (g->task) return 0;
  char buf[32];
  const char *name = g->name;
  if (!name) {
    snprintf(buf, sizeof buf, "gen-%llu",
             (unsigned long long)(g->loop->task_seq + 1));
    name = buf;
  }
  aioc_task_options o = {.name = name, .stack_size = g->stack_size};
  int rc = aioc__task_create(&g->task, g->loop, gen_body, g, &o, false);
  if (rc < 0) return rc;
  return aioc__task_set_on_block(g->task, gen_blocked);
}

/* ---- requests ---- */

static bool plain_done(void *arg) {
  genwait *cw = arg;
  return cw->delivered || cw->tw.expired || cw->nomem;
}

/* Plain code received the body's error: its message goes to
 * aioc_error_message() there. */
static void plain_end_msg(aioc_gen *g) {
  aioc__plain_error_set(g->end_msg);
  aioc__free(g->end_msg);
  g->end_msg = NULL;
}

/* Outcome once the body has ended: its error once, then exhausted. */
static int ended(aioc_gen *g) {
  if (!g->end_delivered && g->end_rc < 0 && g->end_rc != -ECANCELED) {
    g->end_delivered = true;
    aioc_task *c = aioc__current();
    if (c && g->end_msg) {
      aioc__task_set_errmsg(c, g->end_rc, g->end_msg);
      g->end_msg = NULL;
    } else if (!c) {
      plain_end_msg(g);
    }
    return g->end_rc;
  }
  g->end_delivered = true;
  return AIOC_EXHAUSTED;
}

/* The body is about to handle a request (its yield returns val in
 * *sent; the code it returns is given to its wake-up). */
static void resume_body(aioc_gen *g, void *val) {
  g->resume_val = val;
  g->state = G_BUSY;
}

/* What a request returns once the consumer runs again. */
static int settle(aioc_gen *g, genwait *cw, int rc, void **item) {
  if (cw->delivered) {
    if (item) *item = cw->item;
    return cw->rc;
  }
  if (rc == -ETIMEDOUT && (g->flags & AIOC_GEN_CANCEL_ON_TIMEOUT) &&
      g->state != G_DONE)
    aioc_task_cancel(g->task, "generator next() timed out");
  return rc;
}

AIOC__HANDOFF static int request(aioc_gen *g, int how, void *val,
                                 double timeout, void **item) {
  if (item) *item = NULL;
  if (!g || isnan(timeout) || timeout < 0) return -EINVAL;
  if (g->state == G_DONE) return ended(g);
  if (g->cw) return -EBUSY;
  /* A value or error sent now would have no yield to go to: the body is
   * still busy, or its item waits to be taken with next(). */
  if ((how != 0 || val) && (g->have_item || g->state == G_BUSY))
    return -EAGAIN;
  if (g->have_item) {
    g->have_item = false;
    if (item) *item = g->item;
    g->item = NULL;
    return 0;
  }
  if (g->state == G_NEW) {
    if (val) return -EINVAL; /* nothing to send to yet */
    if (how < 0) {
      /* Thrown into a body that never ran: it ends with that error. */
      g->state = G_DONE;
      g->end_rc = how;
      g->end_delivered = true;
      return how;
    }
  }
  aioc_task *c = aioc__current();
  if (c && c == g->task) return -EDEADLK;
  if (!c && aioc__running) return AIOC_ERUNNING;
  int rc = c ? aioc__task_check(c) : 0;
  if (rc) return rc;
  rc = ensure_task(g);
  if (rc < 0) return rc;

  genwait cw;
  cw_init(&cw, g, c, timeout);
  if (c) {
    g->cw = &cw;
    if (g->state == G_BUSY) {
      /* Still producing since an earlier timeout: wait for it. */
      if (cw_arm(&cw) < 0) {
        g->cw = NULL;
        return -ENOMEM;
      }
      rc = aioc__twait_suspend(&cw.tw);
    } else if (g->state == G_PARKED) {
      resume_body(g, val);
      rc = aioc__task_switch_to(c, &cw.tw.w, g->task, how);
    } else {
      resume_body(g, val);
      rc = aioc__task_transfer(c, &cw.tw.w, g->task);
      if (rc < 0 && !cw.delivered && g->state != G_DONE &&
          g->task->f.tstate == T_FINISHED) {
        /* The body could not start (no stack, or cancelled first): the
         * consumer never left; the generator is over. */
        g->cw = NULL;
        g->state = G_DONE;
        g->end_rc = rc;
        g->end_delivered = true;
        return rc;
      }
    }
  } else {
    /* Plain code: schedule the body and run the loop until it answers,
     * the deadline armed first (no timer: no request). */
    if (cw_arm(&cw) < 0) return -ENOMEM;
    g->cw = &cw;
    if (g->state != G_BUSY) {
      bool fresh = g->state == G_NEW;
      resume_body(g, val);
      if (fresh) {
        aioc__task_push(g->task);
      } else {
        aioc__task_wake(g->task, how);
      }
    }
    rc = aioc__loop_run(g->loop, plain_done, &cw);
    aioc__twait_disarm(&cw.tw, g->loop);
    if (g->cw == &cw) g->cw = NULL;
    if (rc == 0 && !cw.delivered) rc = cw.nomem ? -ENOMEM : -ETIMEDOUT;
    if (cw.delivered && cw.rc < 0 && g->state == G_DONE) plain_end_msg(g);
  }
  return settle(g, &cw, rc, item);
}

/* The common case on its own: a task asks a body parked at its yield, with
 * nothing pending and no cancellation or deadline in the way. */
AIOC__HANDOFF int aioc_gen_next(aioc_gen *g, void **item, double timeout) {
  aioc_task *c;
  if (aioc__likely(g && timeout >= 0 && g->state == G_PARKED && !g->cw &&
                   !g->have_item && (c = aioc__current()) != NULL &&
                   c != g->task && !c->f.cancel_requested &&
                   !c->r->scopes)) {
    genwait cw;
    cw_init(&cw, g, c, timeout);
    g->cw = &cw;
    resume_body(g, NULL);
    int rc = aioc__task_switch_to(c, &cw.tw.w, g->task, 0);
    if (aioc__likely(cw.delivered)) {
      if (item) *item = cw.item;
      return cw.rc;
    }
    return settle(g, &cw, rc, item);
  }
  return request(g, 0, NULL, timeout, item);
}

int aioc_gen_send(aioc_gen *g, void *value, void **item, double timeout) {
  return request(g, 0, value, timeout, item);
}

int aioc_gen_throw(aioc_gen *g, int code, void **item, double timeout) {
  if (code >= 0) return -EINVAL;
  return request(g, code, NULL, timeout, item);
}

int aioc_gen_is_finished(const aioc_gen *g) {
  return g && g->state == G_DONE;
}

/* ---- closing ---- */

static bool body_done(void *arg) { return ((aioc_gen *)arg)->state == G_DONE; }

static void drop_item(aioc_gen *g) {
  if (g->have_item && g->item_free) g->item_free(g->item);
  g->have_item = false;
  g->item = NULL;
}

/* Tells a started body to end: at its yield (AIOC_EGENEXIT) when parked,
 * by cancellation when busy elsewhere (after a consumer's timeout). */
static void request_close(aioc_gen *g, const char *why) {
  g->closing = true;
  if (g->state == G_PARKED) {
    resume_body(g, NULL);
    aioc__task_wake(g->task, AIOC_EGENEXIT);
  } else {
    aioc_task_cancel(g->task, why);
  }
}

int aioc_gen_close(aioc_gen *g) {
  if (!g) return -EINVAL;
  drop_item(g);
  if (g->state == G_NEW) {
    g->state = G_DONE;
    g->end_delivered = true;
    return 0;
  }
  if (g->state == G_DONE) return 0;
  aioc_task *c = aioc__current();
  if (!c && aioc__running) return AIOC_ERUNNING;
  if (c && c == g->task) return -EDEADLK; /* closing itself from its body */
  request_close(g, "generator closed");
  /* Cleanup always completes: wait regardless of our own cancellation. */
  aioc_future *f = aioc_task_future(g->task);
  if (c) {
    aioc__await_uninterruptible(c, f);
  } else {
    int rc = aioc__loop_run(g->loop, body_done, g);
    if (rc < 0 && g->state != G_DONE) return rc;
  }
  if (g->yielded_in_close) return AIOC_EGENYIELD;
  int rc = g->end_delivered ? 0 : ended(g);
  return rc == AIOC_EXHAUSTED ? 0 : rc;
}

static void gen_free_struct(aioc_gen *g) {
  aioc_loop *loop = g->loop;
  aioc__live_del(&g->link);
  drop_item(g);
  drop_return(g);
  aioc_task *t = g->task;
  aioc__free(g->name);
  aioc__free(g->end_msg);
  aioc__free(g);
  if (t) aioc_task_unref(t);
  aioc__loop_unref(loop);
}

void aioc_gen_free(aioc_gen *g) {
  if (!g) return;
  if (g->state != G_DONE && g->state != G_NEW &&
      !aioc__current() && aioc__running) {
    /* In a callback: nothing can wait here. The body is told to close and
     * the generator frees itself when the body ends. */
    g->orphan = true;
    request_close(g, "generator freed");
    return;
  }
  aioc_gen_close(g);
  if (g->state != G_DONE && g->state != G_NEW) {
    g->orphan = true; /* could not wait (closed loop): leave it to end */
    return;
  }
  gen_free_struct(g);
}

/* The loop closes (or aioc_run ends): every unfinished generator runs its
 * cleanup now. */
/* Closes a generator its loop is about to close (asyncio's
 * shutdown_asyncgens), running the loop until its cleanup is done. */
static void gen_shutdown(aioc__live *n) {
  aioc_gen *g = aioc__container_of(n, aioc_gen, link);
  if (g->state != G_PARKED && g->state != G_BUSY) return;
  if (!g->orphan) {
    AIOC__IGNORE(aioc_gen_close(g));
    return;
  }
  /* Its owner freed it already: it frees itself when the body ends, so
   * wait on the body's task, not on the generator. */
  aioc_loop *loop = g->loop;
  aioc_task *t = aioc_task_ref(g->task);
  request_close(g, "loop is closing");
  /* Not running (the caller checked) and not closed: it runs. */
  AIOC__IGNORE(aioc_loop_run_until_complete(loop, aioc_task_future(t)));
  aioc_task_unref(t);
}

/* ---- the return value ---- */

int aioc_gen_return(aioc_gen *g, void *value) {
  aioc_task *t = aioc__current();
  if (!g || !t || t != g->task || g->state == G_DONE) return -EINVAL;
  drop_return(g);
  g->has_ret = true;
  g->ret = value;
  return 0;
}

int aioc_gen_result(aioc_gen *g, void **value) {
  if (value) *value = NULL;
  if (!g || !value) return -EINVAL;
  if (g->state != G_DONE) return AIOC_ESTATE;
  if (g->end_rc < 0) return g->end_rc;
  *value = g->ret; /* the caller's from now on */
  g->has_ret = false;
  g->ret = NULL;
  return 0;
}

/* ---- for the context managers ---- */

void aioc_cm_suppress(aioc_gen *g) {
  if (g) g->suppress = true;
}

bool aioc__gen_suppressed(const aioc_gen *g) { return g->suppress; }

aioc_free_fn aioc__gen_item_free(const aioc_gen *g) { return g->item_free; }

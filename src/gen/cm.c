/* Async context managers: the scoped form, generator-based managers, and
 * the exit stack. Exit always runs, inside a shielded region with its own
 * grace deadline, so that cleanup can wait even after a cancellation. */
#include <math.h>

#include "gen.h"

static double grace_of(const aioc_cm *cm) {
  return cm->exit_grace > 0 ? cm->exit_grace : 5.0;
}

/* Runs exit in a shield; returns exit's code. */
static int shielded_exit(const aioc_cm *cm, int body_rc) {
  aioc_scope *s = NULL;
  int src = aioc_shield_enter(&s, grace_of(cm));
  int erc = cm->vt->exit(cm->self, body_rc);
  if (src == 0) {
    /* A grace that ran out showed as exit's own -ETIMEDOUT. */
    AIOC__IGNORE(aioc_scope_exit(s));
    aioc_scope_free(s);
  }
  return erc;
}

/* Combines the body's code and exit's: suppression, or both failures. */
static int settle(int body_rc, int erc, int *exit_rc) {
  if (exit_rc) *exit_rc = erc < 0 ? erc : 0;
  if (erc == 1) return 0;
  if (erc < 0) return body_rc < 0 ? body_rc : erc;
  return body_rc;
}

typedef struct with_call {
  const aioc_cm *cm;
  int (*body)(void *, void *);
  void *arg;
  int exit_rc;
} with_call;

static int with_in_task(with_call *w) {
  void *bound = NULL;
  int rc = w->cm->vt->enter(w->cm->self, &bound);
  if (rc < 0) return rc;
  int brc = w->body(w->arg, bound);
  int erc = shielded_exit(w->cm, brc);
  return settle(brc, erc, &w->exit_rc);
}

/* Runs fn(arg) in the current task, or, from plain code, in a task with
 * the loop underneath: managers may wait in enter and exit. */
static int in_task(aioc_fn fn, void *arg) {
  if (aioc__current()) return fn(arg, NULL);
  if (aioc__running) return AIOC_ERUNNING;
  aioc_task *t;
  int rc = aioc_spawn(&t, fn, arg);
  if (rc < 0) return rc;
  rc = aioc_block_on(aioc_task_future(t), NULL);
  aioc_task_unref(t);
  return rc;
}

static int with_task(void *arg, void **result) {
  (void)result;
  return with_in_task(arg);
}

int aioc_with(const aioc_cm *cm, int (*body)(void *, void *), void *arg,
              int *exit_rc) {
  if (exit_rc) *exit_rc = 0;
  if (!cm || !cm->vt || !cm->vt->enter || !cm->vt->exit || !body)
    return -EINVAL;
  with_call w = {cm, body, arg, 0};
  int rc = in_task(with_task, &w);
  if (exit_rc) *exit_rc = w.exit_rc;
  return rc;
}

/* ---- asynccontextmanager ---- */

typedef struct gencm {
  aioc_gen_fn fn;
  void *arg;
  aioc_gen *g;
} gencm;

static int gencm_enter(void *self, void **bound) {
  gencm *c = self;
  if (c->g) return AIOC_ESTATE; /* entered twice */
  int rc = aioc_gen_new(&c->g, c->fn, c->arg, NULL);
  if (rc < 0) return rc;
  rc = aioc_gen_next(c->g, bound, AIOC_FOREVER);
  if (rc == 0) return 0;
  aioc_gen_free(c->g);
  c->g = NULL;
  return rc == AIOC_EXHAUSTED ? aioc_error(-EPROTO, "generator didn't yield")
                              : rc;
}

static int gencm_exit(void *self, int body_rc) {
  gencm *c = self;
  if (!c->g) return AIOC_ESTATE;
  void *again = NULL;
  int rc = body_rc == 0 ? aioc_gen_next(c->g, &again, AIOC_FOREVER)
                        : aioc_gen_throw(c->g, body_rc, &again, AIOC_FOREVER);
  int erc;
  if (rc == 0) {
    erc = aioc_error(AIOC_EGENYIELD, "generator didn't stop");
  } else if (rc == AIOC_EXHAUSTED) {
    erc = body_rc < 0 && aioc__gen_suppressed(c->g) ? 1 : 0;
  } else if (rc == body_rc) {
    erc = 0; /* passed on: the body's error propagates */
  } else {
    erc = rc;
  }
  aioc_gen_free(c->g);
  c->g = NULL;
  return erc;
}

static const aioc_cm_vtable gencm_vt = {gencm_enter, gencm_exit};

int aioc_gen_cm(aioc_cm *cm, aioc_gen_fn fn, void *arg) {
  if (!cm || !fn) return -EINVAL;
  gencm *c = aioc__calloc(1, sizeof *c);
  if (!c) return -ENOMEM;
  c->fn = fn;
  c->arg = arg;
  cm->vt = &gencm_vt;
  cm->self = c;
  cm->exit_grace = 0;
  return 0;
}

void aioc_gen_cm_free(aioc_cm *cm) {
  if (!cm || cm->vt != &gencm_vt) return;
  gencm *c = cm->self;
  if (c->g) aioc_gen_free(c->g);
  aioc__free(c);
  cm->self = NULL;
}

/* ---- exit stack ---- */

struct aioc_exit_stack {
  aioc_cm *v;
  size_t n, cap;
};

int aioc_exit_stack_new(aioc_exit_stack **out) {
  if (!out) return -EINVAL;
  *out = aioc__calloc(1, sizeof **out);
  return *out ? 0 : -ENOMEM;
}

typedef struct stack_call {
  aioc_exit_stack *s;
  const aioc_cm *cm;
  void *bound;
  int rc;
} stack_call;

static int stack_enter_task(void *arg, void **result) {
  (void)result;
  stack_call *c = arg;
  return c->cm->vt->enter(c->cm->self, &c->bound);
}

int aioc_exit_stack_enter(aioc_exit_stack *s, const aioc_cm *cm,
                          void **bound) {
  if (bound) *bound = NULL;
  if (!s || !cm || !cm->vt || !cm->vt->enter || !cm->vt->exit)
    return -EINVAL;
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 4;
    aioc_cm *v = aioc__realloc(s->v, cap * sizeof *v);
    if (!v) return -ENOMEM;
    s->v = v;
    s->cap = cap;
  }
  stack_call c = {s, cm, NULL, 0};
  int rc = in_task(stack_enter_task, &c);
  if (rc < 0) return rc;
  s->v[s->n++] = *cm;
  if (bound) *bound = c.bound;
  return 0;
}

static int stack_close_task(void *arg, void **result) {
  (void)result;
  stack_call *c = arg;
  int rc = c->rc;
  while (c->s->n) {
    const aioc_cm *cm = &c->s->v[--c->s->n];
    int erc = shielded_exit(cm, rc);
    if (erc == 1)
      rc = 0;
    else if (erc < 0)
      rc = erc; /* a failing exit replaces the code it was given */
  }
  c->rc = rc;
  return 0;
}

int aioc_exit_stack_close(aioc_exit_stack *s, int body_rc) {
  if (!s) return -EINVAL;
  stack_call c = {s, NULL, NULL, body_rc};
  int rc = in_task(stack_close_task, &c);
  return rc < 0 ? rc : c.rc;
}

void aioc_exit_stack_free(aioc_exit_stack *s) {
  if (!s) return;
  if (s->n) aioc_exit_stack_close(s, 0);
  aioc__free(s->v);
  aioc__free(s);
}

/* TaskGroup: structured concurrency. When one task fails, the others and
 * the owner are cancelled; join waits for all and reports every error. */
#include <string.h>

#include "../task/task.h"

typedef struct tgnode {
  aioc__waiter n;
  aioc_taskgroup *g;
  aioc_task *t;
} tgnode;

struct aioc_taskgroup {
  aioc__wait w;
  aioc_task *owner;
  tgnode **nodes;
  size_t n, cap;
  size_t running;
  aioc__errlist errors;
  bool aborting;       /* siblings cancelled */
  bool owner_cancelled; /* we cancelled the owner: join withdraws it */
  bool joining;
  bool closed;
  AIOC__ARMOR_FIELD
};

#define TG_OK(g, fn) AIOC__ARMOR_OK(g, AIOC__MAGIC_TASKGROUP, fn, "taskgroup")

static void abort_all(aioc_taskgroup *g) {
  if (g->aborting) return;
  g->aborting = true;
  for (size_t i = 0; i < g->n; i++)
    if (g->nodes[i]->t->f.state == AIOC_FUTURE_PENDING)
      aioc_task_cancel(g->nodes[i]->t, "TaskGroup is aborting");
}

static void tg_notify(aioc__waiter *n, aioc_future *f) {
  tgnode *node = aioc__container_of(n, tgnode, n);
  aioc_taskgroup *g = node->g;
  g->running--;
  if (f->state == AIOC_FUTURE_DONE && f->err) {
    f->retrieved = 1; /* the group reports it */
    aioc__errlist_add(&g->errors, f->err, aioc_future_error_message(f));
    abort_all(g);
    if (!g->joining && !g->owner_cancelled &&
        g->owner->f.state == AIOC_FUTURE_PENDING) {
      g->owner_cancelled = true;
      aioc_task_cancel(g->owner, "a task of its TaskGroup failed");
    }
  }
  if (g->running == 0 && aioc__task_waits_on(g->owner, &g->w))
    aioc__task_wake(g->owner, 0);
}

static void tg_unhook(aioc_task *t, aioc__wait *w) {
  (void)t;
  (void)w;
}

int aioc_taskgroup_new(aioc_taskgroup **out) {
  if (!out) return -EINVAL;
  *out = NULL;
  aioc_task *t = aioc__current();
  if (!t) return AIOC_ENOTASK;
  aioc_taskgroup *g = aioc__calloc(1, sizeof *g);
  if (!g) return -ENOMEM;
  g->owner = t;
  g->w.unhook = tg_unhook;
  AIOC__ARMOR_SET(g, AIOC__MAGIC_TASKGROUP);
  *out = g;
  return 0;
}

int aioc_taskgroup_spawn(aioc_taskgroup *g, aioc_task **out, aioc_fn fn,
                         void *arg, const aioc_task_options *opts) {
  if (out) *out = NULL;
  if (!g || !fn || !TG_OK(g, "aioc_taskgroup_spawn")) return -EINVAL;
  if (g->closed || g->aborting) return AIOC_ESTATE;
  if (g->n == g->cap) {
    size_t cap = g->cap ? g->cap * 2 : 8;
    tgnode **nodes = aioc__realloc(g->nodes, cap * sizeof *nodes);
    if (!nodes) return -ENOMEM;
    g->nodes = nodes;
    g->cap = cap;
  }
  tgnode *node = aioc__alloc(sizeof *node);
  if (!node) return -ENOMEM;
  aioc_task *t;
  int rc = aioc_spawn_ex(&t, g->owner->f.loop, fn, arg, opts);
  if (rc < 0) {
    aioc__free(node);
    return rc;
  }
  node->g = g;
  node->t = t;
  node->n.notify = tg_notify;
  aioc__future_add_waiter(&t->f, &node->n);
  g->nodes[g->n++] = node;
  g->running++;
  if (out) *out = aioc_task_ref(t);
  return 0;
}

int aioc_taskgroup_join(aioc_taskgroup *g) {
  if (!g || !TG_OK(g, "aioc_taskgroup_join")) return -EINVAL;
  aioc_task *t = aioc__current();
  if (t != g->owner) return AIOC_ESTATE;
  if (g->closed) return AIOC_ESTATE;
  g->joining = true;
  int interrupted = 0;
  while (g->running) {
    int rc = aioc__task_check(t);
    if (rc == 0) rc = aioc__task_suspend(t, &g->w);
    if (rc < 0) {
      /* Our own cancellation of the owner is not an interruption. */
      bool own = rc == -ECANCELED && g->owner_cancelled &&
                 t->f.cancel_requested == 1;
      if (!own) interrupted = rc;
      abort_all(g);
      break;
    }
  }
  if (g->running) {
    /* The tasks were cancelled; wait for their cleanup regardless. */
    t->r->nocancel++;
    while (g->running) aioc__task_suspend(t, &g->w);
    t->r->nocancel--;
  }
  g->closed = true;
  if (g->owner_cancelled) {
    aioc_task_uncancel(t);
    g->owner_cancelled = false;
  }
  int first = aioc__errlist_first(&g->errors, t);
  return first ? first : interrupted;
}

int aioc_taskgroup_errors(const aioc_taskgroup *g, size_t i, int *code,
                          const char **message) {
  if (!g || !TG_OK(g, "aioc_taskgroup_errors")) return -EINVAL;
  return aioc__errlist_get(&g->errors, i, code, message);
}

void aioc_taskgroup_free(aioc_taskgroup *g) {
  if (!g || !TG_OK(g, "aioc_taskgroup_free")) return;
  if (g->running) abort_all(g);
  if (g->owner_cancelled) aioc_task_uncancel(g->owner);
  for (size_t i = 0; i < g->n; i++) {
    aioc__future_del_waiter(&g->nodes[i]->n);
    aioc_task_unref(g->nodes[i]->t);
    aioc__free(g->nodes[i]);
  }
  aioc__errlist_free(&g->errors);
  aioc__free(g->nodes);
  AIOC__ARMOR_SET(g, AIOC__MAGIC_DEAD);
  aioc__free(g);
}

/* gather: wait for many futures, results in order.
 *
 * Unlike asyncio's, a failing gather does not leave its siblings running:
 * they are cancelled and waited for (unless AIOC_GATHER_KEEP_RUNNING). */
#include "../task/task.h"

typedef struct gather gather;
typedef struct gnode {
  aioc__waiter n;
  gather *g;
  size_t i;
} gnode;

struct gather {
  aioc__wait w;
  aioc_task *t;
  size_t remaining;
  bool fail_fast;
  bool failed;
  size_t first; /* the first future to fail, in completion order */
};

static void gather_notify(aioc__waiter *n, aioc_future *f) {
  gnode *node = aioc__container_of(n, gnode, n);
  gather *g = node->g;
  g->remaining--;
  if (f->err && !g->failed) {
    g->failed = true;
    g->first = node->i;
  }
  if (aioc__task_waits_on(g->t, &g->w) &&
      (g->remaining == 0 || (g->fail_fast && f->err)))
    aioc__task_wake(g->t, 0);
}

static void gather_unhook(aioc_task *t, aioc__wait *w) {
  /* The nodes stay registered; gather removes them itself. */
  (void)t;
  (void)w;
}

static void cancel_and_drain(aioc_task *t, aioc_future *const *fs, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (fs[i]->state == AIOC_FUTURE_PENDING)
      aioc_future_cancel(fs[i], "gather");
  for (size_t i = 0; i < n; i++) aioc__await_uninterruptible(t, fs[i]);
}

int aioc_gather(aioc_future *const *fs, size_t n, void **results, int *codes,
                unsigned flags) {
  if (results)
    for (size_t i = 0; i < n; i++) results[i] = NULL;
  if (codes)
    for (size_t i = 0; i < n; i++) codes[i] = 0;
  if (n && !fs) return -EINVAL;
  for (size_t i = 0; i < n; i++)
    if (!fs[i] || !AIOC__FUTURE_OK(fs[i], "aioc_gather")) return -EINVAL;
  aioc_task *t = aioc__current();
  if (!t) return AIOC_ENOTASK;
  for (size_t i = 0; i < n; i++)
    if (fs[i]->loop != t->f.loop || fs[i] == &t->f) return -EINVAL;
  if (n == 0) return 0;

  gather g = {.w.unhook = gather_unhook, .t = t, .fail_fast = !codes,
              .first = SIZE_MAX};
  gnode *nodes = aioc__calloc(n, sizeof *nodes);
  if (!nodes) return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    aioc_future_ref(fs[i]);
    nodes[i].g = &g;
    nodes[i].i = i;
    nodes[i].n.notify = gather_notify;
    if (fs[i]->state == AIOC_FUTURE_PENDING) {
      aioc__future_add_waiter(fs[i], &nodes[i].n);
      g.remaining++;
    } else if (fs[i]->err && !g.failed) {
      g.failed = true;
      g.first = i;
    }
  }
  int rc = 0;
  while (g.remaining && !(g.fail_fast && g.failed)) {
    rc = aioc__task_check(t);
    if (!rc) rc = aioc__task_suspend(t, &g.w);
    if (rc < 0) break;
  }
  for (size_t i = 0; i < n; i++) aioc__future_del_waiter(&nodes[i].n);
  aioc__free(nodes);

  if (rc < 0) {
    /* The gathering task was cancelled or timed out: so are the futures. */
    cancel_and_drain(t, fs, n);
  } else if (g.fail_fast && g.failed && !(flags & AIOC_GATHER_KEEP_RUNNING)) {
    cancel_and_drain(t, fs, n);
  }
  /* Outcomes, in order; without codes[], the first failure is returned. */
  int first = 0;
  if (!codes && g.failed && rc == 0)
    first = aioc__future_take(fs[g.first], NULL, t);
  for (size_t i = 0; i < n; i++) {
    aioc_future *f = fs[i];
    if (f->state == AIOC_FUTURE_PENDING) continue;
    if (f->err == 0)
      aioc__future_take(f, results ? &results[i] : NULL, t);
    else if (codes)
      codes[i] = aioc__future_take(f, NULL, t);
  }
  for (size_t i = 0; i < n; i++)
    aioc_future_unref(fs[i]);
  if (rc < 0) return rc;
  return codes ? 0 : first;
}

/* wait (FIRST_COMPLETED / FIRST_EXCEPTION / ALL_COMPLETED) and the
 * as_completed iterator. */
#include <math.h>

#include "../task/task.h"

/* A wait woken by its timer returns this positive code ("timed out",
 * not an error: the caller reports what is done so far). */
#define WOKEN_BY_TIMER 1

/* Suspends until woken by a notify, the timer, or an interruption. */
static int park(aioc__twait *tw, int64_t deadline) {
  aioc_task *t = tw->t;
  int rc = aioc__task_check(t);
  if (rc) return rc;
  if (deadline != AIOC__NEVER) {
    if (deadline <= aioc__now(t->f.loop)) return WOKEN_BY_TIMER;
    if (!aioc__twait_armed(tw) && aioc__twait_arm(tw, t->f.loop, deadline) < 0)
      return -ENOMEM;
  }
  return aioc__twait_suspend(tw);
}

static void notify_task(aioc__twait *tw) {
  if (aioc__twait_is_parked(tw)) aioc__twait_wake(tw, 0);
}

/* ---- wait ---- */

typedef struct wstate {
  aioc__twait tw;
  aioc_wait_when when;
  size_t pending;
  bool met;
} wstate;

typedef struct wnode {
  aioc__waiter n;
  wstate *s;
} wnode;

static bool is_exception(const aioc_future *f) {
  return f->state == AIOC_FUTURE_DONE && f->err;
}

static void wait_notify(aioc__waiter *n, aioc_future *f) {
  wstate *s = aioc__container_of(n, wnode, n)->s;
  s->pending--;
  if (s->pending == 0 || s->when == AIOC_WAIT_FIRST_COMPLETED ||
      (s->when == AIOC_WAIT_FIRST_EXCEPTION && is_exception(f))) {
    s->met = true;
    notify_task(&s->tw);
  }
}

int aioc_wait(aioc_future *const *fs, size_t n, aioc_wait_when when,
              aioc_future **done, size_t *ndone, aioc_future **pending,
              size_t *npending, double timeout) {
  if (ndone) *ndone = 0;
  if (npending) *npending = 0;
  if ((n && !fs) || isnan(timeout) || timeout < 0) return -EINVAL;
  if (when != AIOC_WAIT_ALL_COMPLETED && when != AIOC_WAIT_FIRST_COMPLETED &&
      when != AIOC_WAIT_FIRST_EXCEPTION)
    return -EINVAL;
  aioc_task *t = aioc__current();
  if (!t) return AIOC_ENOTASK;
  for (size_t i = 0; i < n; i++)
    if (!fs[i] || !AIOC__FUTURE_OK(fs[i], "aioc_wait") ||
        fs[i]->loop != t->f.loop || fs[i] == &t->f)
      return -EINVAL;

  wstate s = {.when = when};
  aioc__twait_init(&s.tw, t, NULL, WOKEN_BY_TIMER);
  wnode *nodes = n ? aioc__calloc(n, sizeof *nodes) : NULL;
  if (n && !nodes) return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    aioc_future *f = fs[i];
    nodes[i].s = &s;
    nodes[i].n.notify = wait_notify;
    if (f->state == AIOC_FUTURE_PENDING) {
      aioc__future_add_waiter(f, &nodes[i].n);
      s.pending++;
    } else if (when == AIOC_WAIT_FIRST_COMPLETED ||
               (when == AIOC_WAIT_FIRST_EXCEPTION && is_exception(f))) {
      s.met = true;
    }
  }
  if (s.pending == 0) s.met = true;
  int rc = 0;
  int64_t deadline = aioc__deadline_after(t->f.loop, timeout);
  while (!s.met) {
    rc = park(&s.tw, deadline);
    if (rc != 0) break;
  }
  aioc__twait_disarm(&s.tw, t->f.loop);
  for (size_t i = 0; i < n; i++) aioc__future_del_waiter(&nodes[i].n);
  aioc__free(nodes);
  if (rc < 0) return rc;
  size_t nd = 0, np = 0;
  for (size_t i = 0; i < n; i++) {
    if (fs[i]->state != AIOC_FUTURE_PENDING) {
      if (done) done[nd] = fs[i];
      nd++;
    } else {
      if (pending) pending[np] = fs[i];
      np++;
    }
  }
  if (ndone) *ndone = nd;
  if (npending) *npending = np;
  return 0;
}

/* ---- as_completed ---- */

typedef struct acnode {
  aioc__waiter n;
  aioc_as_completed *it;
  size_t i;
} acnode;

struct aioc_as_completed {
  aioc_loop *loop;
  size_t n;
  aioc_future **fs;
  acnode *nodes;
  size_t *queue; /* indices in completion order */
  size_t qhead, qtail;
  size_t delivered;
  int64_t deadline;
  aioc__twait *waiting; /* the waiting task's wait, or NULL */
  AIOC__ARMOR_FIELD
};

#define AC_OK(it, fn)                                                          \
  AIOC__ARMOR_OK(it, AIOC__MAGIC_AS_COMPLETED, fn, "as_completed iterator")

static void ac_notify(aioc__waiter *n, aioc_future *f) {
  (void)f;
  acnode *node = aioc__container_of(n, acnode, n);
  aioc_as_completed *it = node->it;
  it->queue[it->qtail++] = node->i;
  if (it->waiting) notify_task(it->waiting);
}

int aioc_as_completed_new(aioc_as_completed **out, aioc_future *const *fs,
                          size_t n, double timeout) {
  if (!out) return -EINVAL;
  *out = NULL;
  if ((n && !fs) || isnan(timeout) || timeout < 0) return -EINVAL;
  aioc_loop *loop = n ? NULL : aioc_loop_current();
  for (size_t i = 0; i < n; i++) {
    if (!fs[i] || !AIOC__FUTURE_OK(fs[i], "aioc_as_completed_new"))
      return -EINVAL;
    if (!loop) loop = fs[i]->loop;
    if (fs[i]->loop != loop) return -EINVAL;
  }
  if (!loop) return -ENOMEM;
  if (loop->closed) return AIOC_ECLOSED;
  aioc_as_completed *it = aioc__calloc(1, sizeof *it);
  if (!it) return -ENOMEM;
  it->loop = loop;
  it->n = n;
  if (n) {
    it->fs = aioc__calloc(n, sizeof *it->fs);
    it->nodes = aioc__calloc(n, sizeof *it->nodes);
    it->queue = aioc__calloc(n, sizeof *it->queue);
    if (!it->fs || !it->nodes || !it->queue) {
      aioc__free(it->fs);
      aioc__free(it->nodes);
      aioc__free(it->queue);
      aioc__free(it);
      return -ENOMEM;
    }
  }
  it->deadline = aioc__deadline_after(loop, timeout);
  AIOC__ARMOR_SET(it, AIOC__MAGIC_AS_COMPLETED);
  for (size_t i = 0; i < n; i++) {
    it->fs[i] = aioc_future_ref(fs[i]);
    it->nodes[i].it = it;
    it->nodes[i].i = i;
    it->nodes[i].n.notify = ac_notify;
    if (fs[i]->state == AIOC_FUTURE_PENDING)
      aioc__future_add_waiter(fs[i], &it->nodes[i].n);
    else
      it->queue[it->qtail++] = i;
  }
  *out = it;
  return 0;
}

int aioc_as_completed_next(aioc_as_completed *it, aioc_future **f,
                           double item_timeout) {
  if (f) *f = NULL;
  if (!it || !f || isnan(item_timeout) || item_timeout < 0 ||
      !AC_OK(it, "aioc_as_completed_next"))
    return -EINVAL;
  if (it->delivered == it->n) return AIOC_EXHAUSTED;
  if (it->qhead == it->qtail) {
    aioc_task *t = aioc__current();
    if (!t) return AIOC_ENOTASK;
    if (t->f.loop != it->loop) return -EINVAL;
    if (it->waiting) return -EBUSY;
    int64_t deadline = aioc__deadline_after(it->loop, item_timeout);
    if (it->deadline < deadline) deadline = it->deadline;
    aioc__twait tw;
    aioc__twait_init(&tw, t, NULL, WOKEN_BY_TIMER);
    it->waiting = &tw;
    int rc = 0;
    while (it->qhead == it->qtail && rc == 0) rc = park(&tw, deadline);
    aioc__twait_disarm(&tw, t->f.loop);
    it->waiting = NULL;
    if (it->qhead == it->qtail) return rc == WOKEN_BY_TIMER ? -ETIMEDOUT : rc;
  }
  *f = it->fs[it->queue[it->qhead++]];
  it->delivered++;
  return 0;
}

void aioc_as_completed_free(aioc_as_completed *it) {
  if (!it || !AC_OK(it, "aioc_as_completed_free")) return;
  for (size_t i = 0; i < it->n; i++) {
    aioc__future_del_waiter(&it->nodes[i].n);
    aioc_future_unref(it->fs[i]);
  }
  aioc__free(it->fs);
  aioc__free(it->nodes);
  aioc__free(it->queue);
  AIOC__ARMOR_SET(it, AIOC__MAGIC_DEAD);
  aioc__free(it);
}

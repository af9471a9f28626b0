/* merge: items from several iterators as they arrive.
 *
 * Each source is pumped by a task of its own that holds at most one item
 * (so sources are not drained ahead of the consumer), hands it over, and
 * waits to be asked again. A consumer timeout leaves the pumps in place. */
#include <math.h>
#include <stdlib.h>

#include "gen.h"

typedef struct merger merger;

typedef struct pump {
  merger *m;
  size_t i;
  aioc_task *task;
  aioc__wait park;
  bool parked, queued, done;
  int rc;
  void *item;
} pump;

struct merger {
  aioc_iter **src;
  size_t n;
  pump *p;
  size_t *fifo; /* pumps holding an outcome, in arrival order */
  size_t head, tail, count;
  size_t live; /* pumps not yet exhausted */
  bool started, failed;
  aioc__waitpoint wp; /* the consumer waiting */
};

static void consumer_notify(merger *m) { aioc__waitpoint_notify(&m->wp); }

static void park_unhook(aioc_task *t, aioc__wait *w) {
  (void)t;
  aioc__container_of(w, pump, park)->parked = false;
}

static int pump_main(void *arg, void **result) {
  (void)result;
  pump *p = arg;
  merger *m = p->m;
  for (;;) {
    void *x = NULL;
    int rc = aioc_iter_next(m->src[p->i], &x, AIOC_FOREVER);
    if (rc == -ECANCELED && aioc_task_cancelling(p->task)) return 0;
    p->rc = rc;
    p->item = x;
    p->queued = true;
    m->fifo[m->tail++ % m->n] = p->i;
    m->count++;
    consumer_notify(m);
    if (rc != 0) {
      p->done = true;
      return 0;
    }
    /* Wait until the consumer took it and wants more. */
    p->parked = true;
    int prc = aioc__task_suspend(p->task, &p->park);
    if (prc < 0) return 0; /* cancelled: merge is closing */
  }
}

/* Spawns the pumps. A pump that cannot be spawned ends the merge with
 * that error once the others have been drained (it counts as an ended
 * source carrying the error). */
static int start(merger *m) {
  m->started = true;
  for (size_t i = 0; i < m->n; i++) {
    aioc_task_options o = {.name = "merge-pump"};
    int rc = aioc_spawn_ex(&m->p[i].task, NULL, pump_main, &m->p[i], &o);
    if (rc < 0) {
      m->p[i].task = NULL;
      m->p[i].rc = rc;
      m->p[i].done = m->p[i].queued = true;
      m->fifo[m->tail++ % m->n] = i;
      m->count++;
    }
  }
  return 0;
}

/* Something to hand out, or nothing left at all. */
static bool ready(void *arg) {
  merger *m = arg;
  return m->count > 0 || m->live == 0;
}

static int merge_next(void *self, void **item, double timeout) {
  merger *m = self;
  if (m->failed) return AIOC_EXHAUSTED;
  if (m->wp.waiting) return -EBUSY; /* one consumer at a time */
  aioc_task *c = aioc__current();
  if (!c && aioc__running) return AIOC_ERUNNING;
  if (!m->started) {
    int rc = start(m);
    if (rc < 0) return rc;
  }
  for (;;) {
    while (m->count) {
      pump *p = &m->p[m->fifo[m->head++ % m->n]];
      m->count--;
      p->queued = false;
      int rc = p->rc;
      if (rc == AIOC_EXHAUSTED) {
        m->live--;
        continue;
      }
      if (rc < 0) {
        m->failed = true;
        return rc;
      }
      *item = p->item;
      if (p->parked) {
        p->parked = false;
        aioc__task_wake(p->task, 0); /* fetch the next one */
      }
      return 0;
    }
    if (m->live == 0) return AIOC_EXHAUSTED;
    int rc = aioc__waitpoint_wait(&m->wp, ready, m, timeout, false);
    if (rc < 0) return rc;
  }
}

static int merge_close(void *self) {
  merger *m = self;
  if (m->started) {
    for (size_t i = 0; i < m->n; i++)
      if (m->p[i].task) aioc_task_cancel(m->p[i].task, "merge closed");
    aioc_task *c = aioc__current();
    for (size_t i = 0; i < m->n; i++) {
      if (!m->p[i].task) continue;
      aioc_future *f = aioc_task_future(m->p[i].task);
      if (c)
        aioc__await_uninterruptible(c, f);
      else if (!aioc__running)
        AIOC__IGNORE(aioc_loop_run_until_complete(f->loop, f));
    }
  }
  /* Items the pumps fetched that nobody will take. */
  while (m->count) {
    pump *p = &m->p[m->fifo[m->head++ % m->n]];
    m->count--;
    p->queued = false;
    if (p->rc == 0) aioc__iter_drop(m->src[p->i], p->item);
  }
  int first = 0;
  for (size_t i = 0; i < m->n; i++) {
    int rc = aioc_iter_close(m->src[i]);
    if (rc < 0 && !first) first = rc;
  }
  return first;
}

static void merge_free(void *self) {
  merger *m = self;
  for (size_t i = 0; i < m->n; i++) {
    aioc_task_unref(m->p[i].task);
    aioc_iter_free(m->src[i]);
  }
  aioc__free(m->src);
  aioc__free(m->p);
  aioc__free(m->fifo);
  aioc__free(m);
}

static const aioc_iter_vtable merge_vt = {merge_next, merge_close, merge_free};

int aioc_iter_merge(aioc_iter **out, aioc_iter *const *v, size_t n) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (n && !v) return -EINVAL;
  for (size_t i = 0; i < n; i++)
    if (!v[i]) return -EINVAL;
  merger *m = aioc__calloc(1, sizeof *m);
  if (!m) return -ENOMEM;
  size_t k = n ? n : 1;
  m->src = aioc__calloc(k, sizeof *m->src);
  m->p = aioc__calloc(k, sizeof *m->p);
  m->fifo = aioc__calloc(k, sizeof *m->fifo);
  if (!m->src || !m->p || !m->fifo) {
    aioc__free(m->src);
    aioc__free(m->p);
    aioc__free(m->fifo);
    aioc__free(m);
    return -ENOMEM;
  }
  m->n = n;
  m->live = n;
  aioc__waitpoint_init(&m->wp, aioc_loop_current());
  for (size_t i = 0; i < n; i++) {
    m->src[i] = v[i];
    m->p[i].m = m;
    m->p[i].i = i;
    m->p[i].park.unhook = park_unhook;
  }
  int rc = aioc_iter_new(out, &merge_vt, m);
  if (rc < 0) {
    for (size_t i = 0; i < n; i++) m->src[i] = NULL;
    m->n = 0;
    merge_free(m);
  }
  return rc;
}

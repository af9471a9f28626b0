/* The iterator interface, its adapters, and the timed wrapper. */
#include <math.h>

#include "gen.h"

struct aioc_iter {
  const aioc_iter_vtable *vt;
  void *self;
  aioc_free_fn item_free; /* for items a helper drops, or NULL */
  bool closed;
};

int aioc_iter_new(aioc_iter **out, const aioc_iter_vtable *vt, void *self) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (!vt || !vt->next) return -EINVAL;
  aioc_iter *it = aioc__alloc(sizeof *it);
  if (!it) return -ENOMEM;
  it->vt = vt;
  it->self = self;
  it->item_free = NULL;
  it->closed = false;
  *out = it;
  return 0;
}

void aioc_iter_set_item_free(aioc_iter *it, aioc_free_fn fn) {
  if (it) it->item_free = fn;
}

void aioc__iter_drop(aioc_iter *it, void *item) {
  if (it && it->item_free) it->item_free(item);
}

int aioc_iter_next(aioc_iter *it, void **item, double timeout) {
  if (item) *item = NULL;
  if (!it || !item || isnan(timeout) || timeout < 0) return -EINVAL;
  if (it->closed) return AIOC_EXHAUSTED;
  return it->vt->next(it->self, item, timeout);
}

int aioc_iter_close(aioc_iter *it) {
  if (!it) return -EINVAL;
  if (it->closed) return 0;
  it->closed = true;
  return it->vt->close ? it->vt->close(it->self) : 0;
}

void aioc_iter_free(aioc_iter *it) {
  if (!it) return;
  aioc_iter_close(it);
  if (it->vt->free) it->vt->free(it->self);
  aioc__free(it);
}

/* ---- generators ---- */

static int gen_next(void *self, void **item, double timeout) {
  return aioc_gen_next(self, item, timeout);
}
static int gen_close(void *self) { return aioc_gen_close(self); }
static void gen_free(void *self) { aioc_gen_free(self); }

static const aioc_iter_vtable gen_vt = {gen_next, gen_close, gen_free};

int aioc_gen_iter(aioc_iter **out, aioc_gen *g) {
  if (!g) {
    if (out) *out = NULL;
    return -EINVAL;
  }
  int rc = aioc_iter_new(out, &gen_vt, g);
  if (rc == 0) (*out)->item_free = aioc__gen_item_free(g);
  return rc;
}

/* ---- as_completed ---- */

static int ac_next(void *self, void **item, double timeout) {
  aioc_future *f;
  int rc = aioc_as_completed_next(self, &f, timeout);
  if (rc == 0) *item = f;
  return rc;
}
static void ac_free(void *self) { aioc_as_completed_free(self); }

static const aioc_iter_vtable ac_vt = {ac_next, NULL, ac_free};

int aioc_as_completed_iter(aioc_iter **out, aioc_as_completed *ac) {
  if (!ac) {
    if (out) *out = NULL;
    return -EINVAL;
  }
  return aioc_iter_new(out, &ac_vt, ac);
}

/* ---- timed ---- */

typedef struct timed {
  aioc_iter *src;
  double first, between, total;
  bool started, got_first, total_expired;
  double start;  /* loop time of the first request */
  double anchor; /* the last item, or the last timeout: windows restart */
} timed;

/* A zero field is "no limit", as in every options struct. */
static double lim(double v) {
  return v == 0 ? AIOC_FOREVER : v;
}

static int timed_next(void *self, void **item, double timeout) {
  timed *t = self;
  if (t->total_expired) return -ETIMEDOUT;
  double now = aioc_time();
  if (!t->started) {
    t->started = true;
    t->start = t->anchor = now;
  }
  /* "first" until an item came, "between" after; both count from the
   * anchor, so a call after a timeout gets a fresh window (the producer
   * kept its place). "total" counts from the first request. */
  double window = t->got_first ? t->between : t->first;
  double limit = timeout;
  if (window != AIOC_FOREVER) limit = fmin(limit, window - (now - t->anchor));
  bool by_total = false;
  if (t->total != AIOC_FOREVER) {
    double left = t->total - (now - t->start);
    if (left <= limit) {
      limit = left;
      by_total = true;
    }
  }
  if (limit < 0) limit = 0;
  int rc = aioc_iter_next(t->src, item, limit);
  if (rc == 0) {
    t->got_first = true;
    t->anchor = aioc_time();
  } else if (rc == -ETIMEDOUT) {
    t->anchor = aioc_time();
    if (by_total) t->total_expired = true;
  }
  return rc;
}

static int timed_close(void *self) { return aioc_iter_close(((timed *)self)->src); }

static void timed_free(void *self) {
  timed *t = self;
  aioc_iter_free(t->src);
  aioc__free(t);
}

static const aioc_iter_vtable timed_vt = {timed_next, timed_close, timed_free};

int aioc_iter_timed(aioc_iter **out, aioc_iter *src,
                    const aioc_timed_options *o) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (!src) return -EINVAL;
  double v[3] = {AIOC_FOREVER, AIOC_FOREVER, AIOC_FOREVER};
  if (o) {
    v[0] = lim(o->first);
    v[1] = lim(o->between);
    v[2] = lim(o->total);
  }
  for (int i = 0; i < 3; i++)
    if (isnan(v[i]) || v[i] < 0) return -EINVAL;
  timed *t = aioc__calloc(1, sizeof *t);
  if (!t) return -ENOMEM;
  t->src = src;
  t->first = v[0];
  t->between = v[1];
  t->total = v[2];
  int rc = aioc_iter_new(out, &timed_vt, t);
  if (rc < 0) aioc__free(t);
  return rc;
}

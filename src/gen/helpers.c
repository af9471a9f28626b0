/* Iterator helpers: the C counterparts of async comprehensions. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"

/* Sources shared by the helpers: an array of owned iterators. */
typedef struct srcs {
  aioc_iter **v;
  size_t n;
} srcs;

static int srcs_init(srcs *s, aioc_iter *const *v, size_t n) {
  s->n = n;
  s->v = aioc__calloc(n ? n : 1, sizeof *s->v);
  if (!s->v) return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    if (!v[i]) {
      aioc__free(s->v);
      return -EINVAL;
    }
    s->v[i] = v[i];
  }
  return 0;
}

static int srcs_close(srcs *s) {
  int first = 0;
  for (size_t i = 0; i < s->n; i++) {
    int rc = aioc_iter_close(s->v[i]);
    if (rc < 0 && !first) first = rc;
  }
  return first;
}

static void srcs_free(srcs *s) {
  for (size_t i = 0; i < s->n; i++) aioc_iter_free(s->v[i]);
  aioc__free(s->v);
}

/* Wraps state whose first member is a srcs. */
static int wrap(aioc_iter **out, const aioc_iter_vtable *vt, void *state) {
  int rc = aioc_iter_new(out, vt, state);
  if (rc < 0) {
    aioc__free(((srcs *)state)->v);
    aioc__free(state);
  }
  return rc;
}

static int one_close(void *self) { return srcs_close(self); }
static void one_free(void *self) {
  srcs_free(self);
  aioc__free(self);
}

/* ---- map ---- */

typedef struct mapper {
  srcs s;
  aioc_map_fn fn;
  void *arg;
  bool failed; /* an error of fn ended the iteration */
} mapper;

static int map_next(void *self, void **item, double timeout) {
  mapper *m = self;
  if (m->failed) return AIOC_EXHAUSTED;
  void *x;
  int rc = aioc_iter_next(m->s.v[0], &x, timeout);
  if (rc != 0) return rc;
  rc = m->fn(m->arg, x, item);
  if (rc < 0) m->failed = true;
  return rc;
}

static const aioc_iter_vtable map_vt = {map_next, one_close, one_free};

int aioc_iter_map(aioc_iter **out, aioc_iter *src, aioc_map_fn fn, void *arg) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (!src || !fn) return -EINVAL;
  mapper *m = aioc__calloc(1, sizeof *m);
  if (!m) return -ENOMEM;
  int rc = srcs_init(&m->s, &src, 1);
  if (rc < 0) {
    aioc__free(m);
    return rc;
  }
  m->fn = fn;
  m->arg = arg;
  return wrap(out, &map_vt, m);
}

/* ---- filter ---- */

typedef struct filt {
  srcs s;
  aioc_pred_fn pred;
  void *arg;
  aioc_free_fn drop;
  bool failed; /* an error of pred ended the iteration */
} filt;

static int filter_next(void *self, void **item, double timeout) {
  filt *f = self;
  if (f->failed) return AIOC_EXHAUSTED;
  /* The timeout covers the wait for a matching item. */
  double deadline = timeout == AIOC_FOREVER ? AIOC_FOREVER
                                            : aioc_time() + timeout;
  for (;;) {
    double left = deadline == AIOC_FOREVER ? AIOC_FOREVER
                                           : fmax(0, deadline - aioc_time());
    void *x;
    int rc = aioc_iter_next(f->s.v[0], &x, left);
    if (rc != 0) return rc;
    rc = f->pred(f->arg, x);
    if (rc < 0) {
      f->failed = true;
      if (f->drop) f->drop(x);
      return rc;
    }
    if (rc) {
      *item = x;
      return 0;
    }
    if (f->drop) f->drop(x);
  }
}

static const aioc_iter_vtable filter_vt = {filter_next, one_close, one_free};

int aioc_iter_filter(aioc_iter **out, aioc_iter *src, aioc_pred_fn pred,
                     void *arg, aioc_free_fn drop) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (!src || !pred) return -EINVAL;
  filt *f = aioc__calloc(1, sizeof *f);
  if (!f) return -ENOMEM;
  int rc = srcs_init(&f->s, &src, 1);
  if (rc < 0) {
    aioc__free(f);
    return rc;
  }
  f->pred = pred;
  f->arg = arg;
  f->drop = drop;
  return wrap(out, &filter_vt, f);
}

/* ---- take ---- */

typedef struct taker {
  srcs s;
  size_t left;
} taker;

static int take_next(void *self, void **item, double timeout) {
  taker *t = self;
  if (t->left == 0) return AIOC_EXHAUSTED;
  int rc = aioc_iter_next(t->s.v[0], item, timeout);
  if (rc == 0 && --t->left == 0) srcs_close(&t->s); /* done with it */
  return rc;
}

static const aioc_iter_vtable take_vt = {take_next, one_close, one_free};

int aioc_iter_take(aioc_iter **out, aioc_iter *src, size_t n) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (!src) return -EINVAL;
  taker *t = aioc__calloc(1, sizeof *t);
  if (!t) return -ENOMEM;
  int rc = srcs_init(&t->s, &src, 1);
  if (rc < 0) {
    aioc__free(t);
    return rc;
  }
  t->left = n;
  return wrap(out, &take_vt, t);
}

/* ---- enumerate ---- */

typedef struct enumer {
  srcs s;
  size_t next_index;
  aioc_indexed cur;
} enumer;

static int enum_next(void *self, void **item, double timeout) {
  enumer *e = self;
  void *x;
  int rc = aioc_iter_next(e->s.v[0], &x, timeout);
  if (rc != 0) return rc;
  e->cur.index = e->next_index++;
  e->cur.item = x;
  *item = &e->cur;
  return 0;
}

static const aioc_iter_vtable enum_vt = {enum_next, one_close, one_free};

int aioc_iter_enumerate(aioc_iter **out, aioc_iter *src) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (!src) return -EINVAL;
  enumer *e = aioc__calloc(1, sizeof *e);
  if (!e) return -ENOMEM;
  int rc = srcs_init(&e->s, &src, 1);
  if (rc < 0) {
    aioc__free(e);
    return rc;
  }
  return wrap(out, &enum_vt, e);
}

/* ---- chain ---- */

typedef struct chain {
  srcs s;
  size_t i;
} chain;

static int chain_next(void *self, void **item, double timeout) {
  chain *c = self;
  while (c->i < c->s.n) {
    int rc = aioc_iter_next(c->s.v[c->i], item, timeout);
    if (rc != AIOC_EXHAUSTED) return rc;
    aioc_iter_close(c->s.v[c->i]);
    c->i++;
  }
  return AIOC_EXHAUSTED;
}

static const aioc_iter_vtable chain_vt = {chain_next, one_close, one_free};

int aioc_iter_chain(aioc_iter **out, aioc_iter *const *v, size_t n) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (n && !v) return -EINVAL;
  chain *c = aioc__calloc(1, sizeof *c);
  if (!c) return -ENOMEM;
  int rc = srcs_init(&c->s, v, n);
  if (rc < 0) {
    aioc__free(c);
    return rc;
  }
  return wrap(out, &chain_vt, c);
}

/* ---- zip ---- */

typedef struct zipper {
  srcs s;
  void **tuple;
  size_t have; /* items of the current tuple already drawn */
  bool ended;
} zipper;

/* The items of an incomplete tuple go to their sources' destructors. */
static void zip_drop(zipper *z) {
  for (size_t i = 0; i < z->have; i++)
    aioc__iter_drop(z->s.v[i], z->tuple[i]);
  z->have = 0;
}

static int zip_next(void *self, void **item, double timeout) {
  zipper *z = self;
  if (z->ended || z->s.n == 0) return AIOC_EXHAUSTED;
  /* A timeout keeps what was drawn: the next call completes the tuple. */
  while (z->have < z->s.n) {
    int rc = aioc_iter_next(z->s.v[z->have], &z->tuple[z->have], timeout);
    if (rc == AIOC_EXHAUSTED) {
      z->ended = true;
      zip_drop(z);
    }
    if (rc != 0) return rc;
    z->have++;
  }
  z->have = 0;
  *item = z->tuple;
  return 0;
}

static int zip_close(void *self) {
  zip_drop(self);
  return one_close(self);
}

static void zip_free(void *self) {
  zipper *z = self;
  aioc__free(z->tuple);
  one_free(z);
}

static const aioc_iter_vtable zip_vt = {zip_next, zip_close, zip_free};

int aioc_iter_zip(aioc_iter **out, aioc_iter *const *v, size_t n) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (n && !v) return -EINVAL;
  zipper *z = aioc__calloc(1, sizeof *z);
  if (!z) return -ENOMEM;
  z->tuple = aioc__calloc(n ? n : 1, sizeof *z->tuple);
  int rc = z->tuple ? srcs_init(&z->s, v, n) : -ENOMEM;
  if (rc < 0) {
    aioc__free(z->tuple);
    aioc__free(z);
    return rc;
  }
  int wrc = aioc_iter_new(out, &zip_vt, z);
  if (wrc < 0) {
    aioc__free(z->tuple);
    aioc__free(z->s.v);
    aioc__free(z);
  }
  return wrc;
}

/* ---- chunks ---- */

typedef struct chunker {
  srcs s;
  size_t max;
  double max_seconds;
  aioc_chunk cur;
  size_t pending; /* items kept after a timeout of the caller */
  double first_at;
  bool ended;
} chunker;

static int chunk_next(void *self, void **item, double timeout) {
  chunker *c = self;
  if (c->pending == 0 && c->ended) return AIOC_EXHAUSTED;
  double start = aioc_time();
  while (c->pending < c->max && !c->ended) {
    double limit = timeout == AIOC_FOREVER
                       ? AIOC_FOREVER
                       : fmax(0, timeout - (aioc_time() - start));
    bool by_chunk = false;
    if (c->pending > 0 && c->max_seconds != AIOC_FOREVER) {
      double left = fmax(0, c->max_seconds - (aioc_time() - c->first_at));
      if (left <= limit) {
        limit = left;
        by_chunk = true;
      }
    }
    void *x;
    int rc = aioc_iter_next(c->s.v[0], &x, limit);
    if (rc == AIOC_EXHAUSTED) {
      c->ended = true;
      break;
    }
    if (rc == -ETIMEDOUT && by_chunk) break; /* the chunk's time is up */
    if (rc != 0) return rc; /* keeps the items gathered so far */
    if (c->pending == 0) c->first_at = aioc_time();
    c->cur.items[c->pending++] = x;
  }
  if (c->pending == 0) return AIOC_EXHAUSTED;
  c->cur.n = c->pending;
  c->pending = 0;
  *item = &c->cur;
  return 0;
}

/* Items gathered for a chunk that will not be handed out. */
static int chunk_close(void *self) {
  chunker *c = self;
  for (size_t i = 0; i < c->pending; i++)
    aioc__iter_drop(c->s.v[0], c->cur.items[i]);
  c->pending = 0;
  return one_close(c);
}

static void chunk_free(void *self) {
  chunker *c = self;
  aioc__free(c->cur.items);
  one_free(c);
}

static const aioc_iter_vtable chunk_vt = {chunk_next, chunk_close, chunk_free};

int aioc_iter_chunks(aioc_iter **out, aioc_iter *src, size_t max_items,
                     double max_seconds) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (!src || max_items == 0 || isnan(max_seconds) || max_seconds < 0)
    return -EINVAL;
  chunker *c = aioc__calloc(1, sizeof *c);
  if (!c) return -ENOMEM;
  c->cur.items = aioc__calloc(max_items, sizeof *c->cur.items);
  int rc = c->cur.items ? srcs_init(&c->s, &src, 1) : -ENOMEM;
  if (rc < 0) {
    aioc__free(c->cur.items);
    aioc__free(c);
    return rc;
  }
  c->max = max_items;
  c->max_seconds = max_seconds;
  int wrc = aioc_iter_new(out, &chunk_vt, c);
  if (wrc < 0) {
    aioc__free(c->cur.items);
    aioc__free(c->s.v);
    aioc__free(c);
  }
  return wrc;
}

/* ---- collect ---- */

int aioc_iter_collect(aioc_iter *it, void ***items, size_t *n, double timeout) {
  if (items) *items = NULL;
  if (n) *n = 0;
  if (!it || !items || !n || isnan(timeout) || timeout < 0) return -EINVAL;
  double deadline = timeout == AIOC_FOREVER ? AIOC_FOREVER
                                            : aioc_time() + timeout;
  size_t cap = 0, len = 0;
  void **v = NULL;
  int rc;
  for (;;) {
    double left = deadline == AIOC_FOREVER ? AIOC_FOREVER
                                           : fmax(0, deadline - aioc_time());
    void *x;
    rc = aioc_iter_next(it, &x, left);
    if (rc != 0) break;
    if (len == cap) {
      cap = cap ? cap * 2 : 16;
      void **nv = aioc__realloc(v, cap * sizeof *nv);
      if (!nv) {
        aioc__iter_drop(it, x); /* drawn, but nowhere to keep it */
        rc = -ENOMEM;
        break;
      }
      v = nv;
    }
    v[len++] = x;
  }
  *items = v;
  *n = len;
  return rc == AIOC_EXHAUSTED ? 0 : rc;
}

/* Group, Pool, Yielder, OrderedYielder: async work driven from plain code.
 *
 * Every spawn becomes a job: a task running a wrapper that calls the user
 * function and then accounts for it in the group (pending count, pool
 * turn, errors, results). join and next wait for the group's condition:
 * from plain code by running the loop until it holds, inside a task by
 * suspending. Spawns from other threads travel through
 * aioc_call_soon_threadsafe; the pending count is atomic so that a join in
 * progress sees them at once. */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "../task/task.h"

typedef struct gjob gjob;
struct gjob {
  aioc__waiter node; /* on the task's future: settles a job that never ran */
  aioc__list link;  /* pool queue, or yielder result list */
  aioc__list order; /* ordered yielder: spawn order */
  aioc_group *g;
  aioc_fn fn;
  void *arg;
  aioc_task *task;
  aioc__list run;    /* running list (for cancellation) */
  /* outcome */
  bool done, is_put;
  int rc;
  void *value;
  char *msg;
};

struct aioc_group {
  aioc_loop *loop;
  pthread_t owner;
  pthread_mutex_t lock; /* cross-thread spawns and puts */
  long limit;
  aioc_group_policy policy;
  size_t stack_size;
  aioc_free_fn result_free;
  atomic_size_t pending; /* running + waiting their turn + in flight */
  size_t nrunning;
  aioc__list queue;   /* pool: waiting their turn (gjob.link) */
  aioc__list running; /* gjob.run */
  aioc__errlist errors;
  atomic_bool failed, closing; /* read by spawns from other threads */
  bool in_join, orphan;
  bool wait_all;        /* close: wait for every task, not for a result */
  bool errors_reported; /* a join returned them: the next one starts clean */
  aioc__waitpoint wp; /* the one waiter: join, next or close */
  /* yielder */
  bool yielder, ordered;
  atomic_bool exhausted; /* reset by spawns and puts from any thread */
  aioc__list ready; /* completion order (gjob.link) */
  aioc__list order; /* spawn order (gjob.order), under lock */
  char *last_msg; /* the message of the error next returned last */
  AIOC__ARMOR_FIELD /* AIOC__MAGIC_GROUP or _YIELDER until the memory goes */
};

/* A Yielder is a group too: the group calls it makes on itself pass. */
#define GROUP_OK(g, fn)                                                        \
  AIOC__ARMOR_CHECK((g)->armor == AIOC__MAGIC_GROUP ||                         \
                        (g)->armor == AIOC__MAGIC_YIELDER,                     \
                    fn, "group")
#define YIELDER_OK(y, fn)                                                      \
  AIOC__ARMOR_OK(&(y)->g, AIOC__MAGIC_YIELDER, fn, "yielder")

struct aioc_yielder {
  struct aioc_group g;
};

/* ---- waiting ---- */

static bool condition(aioc_group *g);

static bool condition_cb(void *arg) { return condition(arg); }

static void wake_waiter(aioc_group *g) { aioc__waitpoint_notify(&g->wp); }

/* Waits for condition(g): 0, -ETIMEDOUT, -ECANCELED, -EBUSY, or a loop
 * error. With uninterruptible, cancellation and deadlines are ignored
 * (cleanup). */
static int wait_cond(aioc_group *g, double timeout, bool uninterruptible) {
  return aioc__waitpoint_wait(&g->wp, condition_cb, g, timeout,
                              uninterruptible);
}

/* ---- jobs ---- */

/* A failure that no caller is waiting for: it is the job's outcome. */
#define IGNORE_DEFERRED(x) AIOC__IGNORE(x)

static gjob *job_of_link(aioc__list *l) {
  return l ? aioc__container_of(l, gjob, link) : NULL;
}

static gjob *job_of_order(aioc__list *l) {
  return l ? aioc__container_of(l, gjob, order) : NULL;
}

static void job_free(gjob *j) {
  aioc__free(j->msg);
  aioc__free(j);
}

static int start_job(aioc_group *g, gjob *j, bool sync);

static void cancel_all(aioc_group *g) {
  aioc__list_each(l, &g->running) {
    gjob *j = aioc__container_of(l, gjob, run);
    if (j->task) aioc_task_cancel(j->task, "group is stopping");
  }
  /* Spawns still waiting their turn never start. */
  gjob *j;
  while ((j = job_of_link(aioc__list_pop_front(&g->queue)))) {
    j->done = true;
    j->rc = -ECANCELED;
    atomic_fetch_sub(&g->pending, 1);
    if (!g->ordered) job_free(j);
  }
}

static void push_ready(aioc_group *g, gjob *j) {
  aioc__list_push_back(&g->ready, &j->link);
}

/* A job's function returned (or the job was settled without running). */
static void group_destroy(aioc_group *g);

static void job_done(gjob *j, int rc, void *value, const char *msg) {
  aioc_group *g = j->g;
  aioc__future_del_waiter(&j->node);
  j->done = true;
  j->rc = rc;
  j->value = value;
  bool ours = rc == -ECANCELED && (g->failed || g->closing);
  if (rc < 0 && !ours) {
    aioc__errlist_add(&g->errors, rc, msg);
    if (msg) j->msg = aioc__strdup(msg);
    if (g->policy == AIOC_GROUP_FAIL_FAST && !g->failed) {
      g->failed = true;
      cancel_all(g);
    }
  }
  if (aioc__list_is_linked(&j->run)) {
    aioc__list_del(&j->run);
    g->nrunning--;
  }
  if (g->yielder && !g->ordered) {
    if (rc == 0 || (rc < 0 && !ours)) push_ready(g, j);
    else job_free(j);
  } else if (!g->yielder) {
    job_free(j);
  }
  atomic_fetch_sub(&g->pending, 1);
  /* The next spawn waiting its turn. */
  while (!aioc__list_is_empty(&g->queue) &&
         (g->limit == 0 || (long)g->nrunning < g->limit))
    IGNORE_DEFERRED(
        start_job(g, job_of_link(aioc__list_pop_front(&g->queue)), false));
  wake_waiter(g);
  /* Freed while its tasks still ran (from a callback or one of them). */
  if (g->orphan && atomic_load(&g->pending) == 0) group_destroy(g);
}

/* The job's task ended without running job_main to its end: cancelled
 * before it started, or abandoned by its closing loop. */
static void job_task_done(aioc__waiter *n, aioc_future *f) {
  gjob *j = aioc__container_of(n, gjob, node);
  if (!j->done) job_done(j, f->err ? f->err : -ECANCELED, NULL, NULL);
}

static int job_main(void *arg, void **result) {
  (void)result;
  gjob *j = arg;
  void *value = NULL;
  int rc = j->fn(j->arg, &value);
  if (rc > 0 && value) {
    /* AIOC_NORESULT: no result, whatever value says; one stored anyway
     * goes to the destructor, as for any task. */
    if (j->g->result_free) j->g->result_free(value);
    value = NULL;
  }
  aioc_task *t = j->task;
  aioc__trun *r = t->r;
  const char *msg = rc < 0 && r->errmsg && r->errcode == rc ? r->errmsg : NULL;
  job_done(j, rc, value, msg);
  /* The group reports the outcome; the task itself ends quietly. */
  return 0;
}

/* Starts j's task. sync: the spawn call is still under way on the owner
 * thread, and a failure is returned to it with nothing changed (the
 * caller takes the job back); otherwise (a Pool's turn, a spawn from
 * another thread) the job ends as a failure of the group. */
static int start_job(aioc_group *g, gjob *j, bool sync) {
  aioc_task_options o = {.stack_size = g->stack_size};
  aioc__list_push_front(&g->running, &j->run);
  g->nrunning++;
  int rc = aioc_spawn_ex(&j->task, g->loop, job_main, j, &o);
  if (rc < 0 && sync) {
    aioc__list_del(&j->run);
    g->nrunning--;
  } else if (rc < 0) {
    job_done(j, rc, NULL, "cannot spawn the task");
  } else {
    j->node.notify = job_task_done;
    aioc__future_add_waiter(aioc_task_future(j->task), &j->node);
    /* The handle is only needed to cancel it; the task runs regardless. */
    aioc_task_unref(j->task);
  }
  return rc;
}

/* Runs on the group's thread: places a job (now, or in the pool's queue).
 * sync as for start_job(): returns the code of a task that could not be
 * created then. */
static int place(aioc_group *g, gjob *j, bool sync) {
  if (g->closing || (g->failed && g->policy == AIOC_GROUP_FAIL_FAST)) {
    j->done = true;
    j->rc = -ECANCELED;
    atomic_fetch_sub(&g->pending, 1);
    if (!g->ordered) job_free(j);
    wake_waiter(g);
    return 0;
  }
  if (j->is_put) {
    j->done = true;
    j->rc = 0;
    if (!g->ordered) push_ready(g, j);
    atomic_fetch_sub(&g->pending, 1);
    wake_waiter(g);
    return 0;
  }
  if (g->limit && (long)g->nrunning >= g->limit) {
    aioc__list_push_back(&g->queue, &j->link);
    return 0;
  }
  return start_job(g, j, sync);
}

static void place_cb(void *arg) {
  gjob *j = arg;
  IGNORE_DEFERRED(place(j->g, j, false));
}

/* The loop closed before a spawn from another thread could be placed:
 * it never runs. */
static void place_drop(void *arg) {
  gjob *j = arg;
  aioc_group *g = j->g;
  j->done = true;
  j->rc = -ECANCELED;
  atomic_fetch_sub(&g->pending, 1);
  if (!g->ordered) job_free(j);
}

/* Takes back a job whose spawn failed: it was never counted, never has
 * a place in the spawn order. */
static void unsubmit(aioc_group *g, gjob *j) {
  pthread_mutex_lock(&g->lock);
  atomic_fetch_sub(&g->pending, 1);
  aioc__list_del(&j->order); /* (detached unless ordered) */
  pthread_mutex_unlock(&g->lock);
  job_free(j);
}

/* A task function's (fn == NULL: a put's) entry into the group. */
static int submit(aioc_group *g, aioc_fn fn, void *arg, bool is_put,
                  void *value) {
  if (!g || (!fn && !is_put)) return -EINVAL;
  /* Torn down, or failed (fail fast) and not yet joined. */
  if (g->closing || (g->failed && g->policy == AIOC_GROUP_FAIL_FAST))
    return AIOC_ESTATE;
  gjob *j = aioc__calloc(1, sizeof *j);
  if (!j) return -ENOMEM;
  j->g = g;
  aioc__list_init(&j->link);
  aioc__list_init(&j->order);
  aioc__list_init(&j->run);
  j->fn = fn;
  j->arg = arg;
  j->is_put = is_put;
  j->value = value;
  bool same_thread = pthread_equal(pthread_self(), g->owner);
  /* From another thread: the call that carries the job is allocated
   * before the job counts, so that nothing is counted in vain. */
  aioc__tscall *call = NULL;
  if (!same_thread && !(call = aioc__tscall_new(place_cb, place_drop, j))) {
    job_free(j);
    return -ENOMEM;
  }
  pthread_mutex_lock(&g->lock);
  atomic_fetch_add(&g->pending, 1);
  g->exhausted = false;
  if (g->ordered) {
    /* Spawn order is the order of this call, whichever thread made it. */
    aioc__list_push_back(&g->order, &j->order);
  }
  pthread_mutex_unlock(&g->lock);
  int rc;
  if (same_thread) {
    /* Its task is created now (unless it waits its turn in a Pool): a
     * failure is the caller's to see, with nothing done. */
    rc = place(g, j, true);
    if (rc < 0) unsubmit(g, j);
    return rc;
  }
  rc = aioc__tscall_post(g->loop, call);
  if (rc < 0) {
    /* The loop is gone: the job never runs. */
    aioc__free(call);
    unsubmit(g, j);
  }
  return rc;
}

/* ---- Group ---- */

static int group_init(aioc_group *g, const aioc_group_options *o) {
  if (o && o->limit < 0) return -EINVAL;
  aioc_loop *loop = aioc__running ? aioc__running : aioc_loop_current();
  if (!loop) return -ENOMEM;
  if (loop->closed) return AIOC_ECLOSED;
  g->loop = loop;
  aioc__loop_ref(loop);
  g->owner = pthread_self();
  pthread_mutex_init(&g->lock, NULL);
  if (o) {
    g->limit = o->limit;
    g->policy = o->policy;
    g->stack_size = o->stack_size;
    g->result_free = o->result_free;
  }
  aioc__list_init(&g->queue);
  aioc__list_init(&g->running);
  aioc__list_init(&g->ready);
  aioc__list_init(&g->order);
  aioc__waitpoint_init(&g->wp, loop);
  atomic_init(&g->pending, 0);
  return 0;
}

int aioc_group_new(aioc_group **out, const aioc_group_options *opts) {
  if (!out) return -EINVAL;
  *out = NULL;
  aioc_group *g = aioc__calloc(1, sizeof *g);
  if (!g) return -ENOMEM;
  int rc = group_init(g, opts);
  if (rc < 0) {
    aioc__free(g);
    return rc;
  }
  AIOC__ARMOR_SET(g, AIOC__MAGIC_GROUP);
  *out = g;
  return 0;
}

int aioc_pool_new(aioc_group **out, long n) {
  if (out) *out = NULL;
  if (n <= 0) return -EINVAL;
  aioc_group_options o = {.limit = n};
  return aioc_group_new(out, &o);
}

int aioc_group_spawn(aioc_group *g, aioc_fn fn, void *arg) {
  if (g && !GROUP_OK(g, "aioc_group_spawn")) return -EINVAL;
  return submit(g, fn, arg, false, NULL);
}

size_t aioc_group_pending(const aioc_group *g) {
  if (g && !GROUP_OK(g, "aioc_group_pending")) return 0;
  return g ? atomic_load(&((aioc_group *)g)->pending) : 0;
}

/* Is the running task one of g's own? */
static bool own_task(aioc_group *g) {
  aioc_task *c = aioc__current();
  if (!c || c->r->fn != job_main) return false;
  return ((gjob *)c->r->arg)->g == g;
}

static bool condition(aioc_group *g) {
  if (!g->yielder || g->wait_all) return atomic_load(&g->pending) == 0;
  /* A Yielder: a result to hand out, or nothing left at all. */
  if (g->ordered) {
    pthread_mutex_lock(&g->lock);
    gjob *h = NULL;
    aioc__list_each(l, &g->order) {
      h = job_of_order(l);
      if (!(h->done && h->rc > 0)) break; /* rc > 0: no result */
      h = NULL;
    }
    bool ready = h && h->done;
    pthread_mutex_unlock(&g->lock);
    if (ready) return true;
  } else if (!aioc__list_is_empty(&g->ready)) {
    return true;
  }
  return atomic_load(&g->pending) == 0;
}

int aioc_group_join(aioc_group *g, double timeout) {
  if (g && !GROUP_OK(g, "aioc_group_join")) return -EINVAL;
  if (!g || isnan(timeout) || timeout < 0) return -EINVAL;
  if (own_task(g)) return -EDEADLK;
  if (g->in_join || g->wp.waiting) return -EBUSY;
  if (g->errors_reported) {
    aioc__errlist_clear(&g->errors);
    g->errors_reported = false;
  }
  g->in_join = true;
  int rc = wait_cond(g, timeout, false);
  g->in_join = false;
  if (rc < 0) return rc;
  aioc_task *c = aioc__current();
  int first = aioc__errlist_first(&g->errors, c);
  if (first < 0 && !c) {
    /* Plain code has no task to carry the message: aioc_error_message()
     * gives it there. */
    const char *msg = NULL;
    aioc__errlist_get(&g->errors, 0, NULL, &msg);
    aioc__plain_error_set(msg);
  }
  g->errors_reported = true;
  g->failed = false; /* ready for reuse */
  return first;
}

const char *aioc_group_error_message(const aioc_group *g) {
  if (g && !GROUP_OK(g, "aioc_group_error_message")) return NULL;
  const char *msg = NULL;
  if (g && g->errors_reported) aioc__errlist_get(&g->errors, 0, NULL, &msg);
  return msg;
}

int aioc_group_errors(const aioc_group *g, size_t i, int *code,
                      const char **message) {
  if (g && !GROUP_OK(g, "aioc_group_errors")) return -EINVAL;
  if (!g) return -EINVAL;
  return aioc__errlist_get(&g->errors, i, code, message);
}

static void drop_results(aioc_group *g) {
  aioc__list *l;
  while ((l = aioc__list_pop_front(g->ordered ? &g->order : &g->ready))) {
    gjob *j = g->ordered ? job_of_order(l) : job_of_link(l);
    if (j->done && j->rc == 0 && g->result_free) g->result_free(j->value);
    job_free(j);
  }
}

int aioc_group_close(aioc_group *g) {
  if (g && !GROUP_OK(g, "aioc_group_close")) return -EINVAL;
  if (!g) return -EINVAL;
  g->closing = true;
  cancel_all(g);
  /* Waiting is impossible from a callback or from one of its own tasks:
   * the tasks are cancelled, their cleanup goes on without us. */
  if (!aioc__current() && aioc__running) return AIOC_ERUNNING;
  if (own_task(g)) return -EDEADLK;
  /* A join or next in progress elsewhere sees the end; one waiter only. */
  if (g->wp.waiting || g->in_join) return -EBUSY;
  /* Their cleanup always completes. */
  /* Wait for all, not for a result. (The jobs still settle as a
   * Yielder's: an OrderedYielder's stay in the order list, which
   * drop_results frees, and a result goes to result_free there.) */
  g->wait_all = true;
  int rc = wait_cond(g, AIOC_FOREVER, true);
  g->wait_all = false;
  if (g->yielder) {
    drop_results(g);
    g->exhausted = true;
  }
  return rc < 0 ? rc : 0;
}

static void group_destroy(aioc_group *g) {
  drop_results(g);
  aioc__free(g->last_msg);
  aioc__errlist_free(&g->errors);
  pthread_mutex_destroy(&g->lock);
  aioc__loop_unref(g->loop);
  AIOC__ARMOR_SET(g, AIOC__MAGIC_DEAD);
  aioc__free(g);
}

void aioc_group_free(aioc_group *g) {
  if (g && !GROUP_OK(g, "aioc_group_free")) return;
  if (!g) return;
  if (atomic_load(&g->pending) || !aioc__list_is_empty(&g->ready) ||
      !aioc__list_is_empty(&g->order)) {
    int rc = aioc_group_close(g);
    if (rc < 0 && atomic_load(&g->pending)) {
      /* Cannot wait here (a callback, or one of its own tasks): the
       * cancelled tasks finish on their own and the last one frees it. */
      g->orphan = true;
      return;
    }
  }
  group_destroy(g);
}

/* ---- Yielder ---- */

int aioc_yielder_new(aioc_yielder **out, int ordered,
                     const aioc_group_options *opts) {
  if (!out) return -EINVAL;
  *out = NULL;
  aioc_yielder *y = aioc__calloc(1, sizeof *y);
  if (!y) return -ENOMEM;
  int rc = group_init(&y->g, opts);
  if (rc < 0) {
    aioc__free(y);
    return rc;
  }
  y->g.yielder = true;
  y->g.ordered = ordered != 0;
  AIOC__ARMOR_SET(&y->g, AIOC__MAGIC_YIELDER);
  *out = y;
  return 0;
}

int aioc_yielder_spawn(aioc_yielder *y, aioc_fn fn, void *arg) {
  if (y && !YIELDER_OK(y, "aioc_yielder_spawn")) return -EINVAL;
  return y ? submit(&y->g, fn, arg, false, NULL) : -EINVAL;
}

int aioc_yielder_put(aioc_yielder *y, void *value) {
  if (y && !YIELDER_OK(y, "aioc_yielder_put")) return -EINVAL;
  return y ? submit(&y->g, NULL, NULL, true, value) : -EINVAL;
}

/* Takes the next deliverable outcome, if any: 1 when one was taken. */
static int take(aioc_group *g, int *rc, void **item) {
  gjob *j;
  if (g->ordered) {
    pthread_mutex_lock(&g->lock);
    while ((j = job_of_order(aioc__list_first(&g->order))) && j->done &&
           j->rc > 0) {
      aioc__list_del(&j->order); /* AIOC_NORESULT: nothing to hand out */
      job_free(j);
    }
    if (j && j->done)
      aioc__list_del(&j->order);
    else
      j = NULL;
    pthread_mutex_unlock(&g->lock);
    /* Cancelled by the group (fail fast, close): not an outcome. */
    if (j && j->rc == -ECANCELED && (g->failed || g->closing)) {
      job_free(j);
      return take(g, rc, item);
    }
  } else {
    j = job_of_link(aioc__list_pop_front(&g->ready));
  }
  if (!j) return 0;
  *rc = j->rc;
  *item = j->rc == 0 ? j->value : NULL;
  if (j->rc < 0) {
    /* The message goes with the code: to the calling task, or to plain
     * code's aioc_error_message(); and aioc_yielder_error_message(). */
    aioc_task *c = aioc__current();
    if (c && j->msg)
      aioc__task_set_errmsg(c, j->rc, aioc__strdup(j->msg));
    else if (!c)
      aioc__plain_error_set(j->msg);
    aioc__free(g->last_msg);
    g->last_msg = j->msg;
    j->msg = NULL;
  }
  job_free(j);
  return 1;
}

int aioc_yielder_next(aioc_yielder *y, void **item, double timeout) {
  if (y && !YIELDER_OK(y, "aioc_yielder_next")) {
    if (item) *item = NULL;
    return -EINVAL;
  }
  if (item) *item = NULL;
  if (!y || !item || isnan(timeout) || timeout < 0) return -EINVAL;
  aioc_group *g = &y->g;
  aioc__free(g->last_msg); /* valid until this call */
  g->last_msg = NULL;
  if (g->exhausted) return AIOC_EXHAUSTED;
  if (own_task(g)) return -EDEADLK;
  if (g->wp.waiting || g->in_join) return -EBUSY; /* one consumer at a time */
  for (;;) {
    int rc;
    if (take(g, &rc, item)) {
      if (rc < 0 && g->policy == AIOC_GROUP_FAIL_FAST) {
        /* The rest were cancelled; wait for their cleanup, then end. */
        aioc_group_close(g);
      }
      return rc;
    }
    if (atomic_load(&g->pending) == 0) {
      /* Under the lock: a spawn from another thread clears the flag there
       * after counting itself. */
      pthread_mutex_lock(&g->lock);
      bool done = atomic_load(&g->pending) == 0;
      if (done) g->exhausted = true;
      pthread_mutex_unlock(&g->lock);
      if (done) return AIOC_EXHAUSTED;
      continue;
    }
    rc = wait_cond(g, timeout, false);
    if (rc < 0) return rc;
  }
}

const char *aioc_yielder_error_message(const aioc_yielder *y) {
  if (y && !YIELDER_OK(y, "aioc_yielder_error_message")) return NULL;
  return y ? y->g.last_msg : NULL;
}

int aioc_yielder_close(aioc_yielder *y) {
  if (y && !YIELDER_OK(y, "aioc_yielder_close")) return -EINVAL;
  return y ? aioc_group_close(&y->g) : -EINVAL;
}

void aioc_yielder_free(aioc_yielder *y) {
  if (y && !YIELDER_OK(y, "aioc_yielder_free")) return;
  if (y) aioc_group_free(&y->g);
}

static int y_next(void *self, void **item, double timeout) {
  return aioc_yielder_next(self, item, timeout);
}
static int y_close(void *self) { return aioc_yielder_close(self); }
static void y_free(void *self) { aioc_yielder_free(self); }
static const aioc_iter_vtable y_vt = {y_next, y_close, y_free};

int aioc_yielder_iter(aioc_iter **out, aioc_yielder *y) {
  if (y && !YIELDER_OK(y, "aioc_yielder_iter")) {
    if (out) *out = NULL;
    return -EINVAL;
  }
  if (!y) {
    if (out) *out = NULL;
    return -EINVAL;
  }
  return aioc_iter_new(out, &y_vt, y);
}

int aioc_yielding(int ordered, const aioc_group_options *opts,
                  int (*body)(void *arg, aioc_yielder *y), void *arg) {
  if (!body) return -EINVAL;
  aioc_yielder *y;
  int rc = aioc_yielder_new(&y, ordered, opts);
  if (rc < 0) return rc;
  rc = body(arg, y);
  aioc_yielder_close(y);
  aioc_yielder_free(y);
  return rc;
}

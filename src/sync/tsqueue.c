/* The thread-safe queue: the bridge between blocking threads and loops.
 *
 * One mutex guards everything. Waiters, threads and tasks alike, queue
 * as nodes on their own stacks, and hand-off works as in the loop-bound
 * queue: whoever frees a slot or brings an item delivers to the first
 * waiter (sets node->rc and node->item) and removes it from its list.
 *
 *  - A thread waiter sleeps on a condition variable of its own (on its
 *    stack) until its node is delivered or its timeout passes; a timeout
 *    finds the node either still queued (it unlinks it: nothing was
 *    handed over) or delivered (it takes the outcome).
 *  - A task waiter of the loop running on the delivering thread is woken
 *    directly. One of another thread's loop cannot be touched from here:
 *    its node moves to the `granted` list and a wake-up callback goes to
 *    its loop (aioc_call_soon_threadsafe) carrying the queue, not the
 *    node, so it never refers to a node whose task has moved on. The
 *    callback, on the loop's thread, wakes the tasks of its loop found in
 *    `granted`. The call is allocated by the task when it starts waiting
 *    (a wait that cannot get one fails with -ENOMEM), so a delivery never
 *    fails for lack of memory and never leaves a task waiting for what
 *    it was already handed. If the task is cancelled or times out meanwhile,
 * its unhook takes the node out of `granted` itself and the task returns the
 * outcome it was handed (an item is never dropped).
 *
 * The memory lives while anyone may still lock the mutex: the owner,
 * each thread blocked inside, each node in `granted` and each wake-up
 * callback in flight holds a reference (counted under the mutex). */
#include <pthread.h>
#include <time.h>

#include "sync.h"

#define TS_WAITING 1 /* node->rc until delivered */

typedef struct tsnode tsnode;
struct tsnode {
  aioc__list link; /* detached (pointing at itself) when in no list */
  void *item;
  int rc;
  pthread_cond_t *cv; /* a blocked thread's, or NULL for a task */
  /* a task's wait */
  aioc__twait tw;
  aioc_loop *loop;
  aioc_tsqueue *q;
  aioc__tscall *wake; /* the task's wake-up, until posted or freed */
};

struct aioc_tsqueue {
  pthread_mutex_t mu;
  size_t refs;
  aioc__ring ring;
  size_t limit;
  aioc__list getters, putters, granted; /* of tsnode */
  aioc_free_fn item_free;
  bool shutdown;
};

/* ---- lists ---- */

static tsnode *first(aioc__list *l) {
  return aioc__container_of(l->next, tsnode, link);
}

static void list_del(tsnode *n) { aioc__list_del(&n->link); }

/* ---- lifetime ---- */

static void destroy(aioc_tsqueue *q) {
  pthread_mutex_destroy(&q->mu);
  aioc__ring_free(&q->ring, NULL);
  aioc__free(q);
}

/* Drops a reference with the mutex held, and unlocks. */
static void unlock_unref(aioc_tsqueue *q) {
  bool last = --q->refs == 0;
  pthread_mutex_unlock(&q->mu);
  if (last) destroy(q);
}

int aioc_tsqueue_new(aioc_tsqueue **out, int capacity,
                     aioc_free_fn item_free) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (capacity < 0) return -EINVAL;
  aioc_tsqueue *q = aioc__calloc(1, sizeof *q);
  if (!q) return -ENOMEM;
  int e = pthread_mutex_init(&q->mu, NULL);
  if (e) {
    aioc__free(q);
    return -e;
  }
  q->refs = 1;
  q->limit = capacity ? (size_t)capacity : SIZE_MAX;
  q->item_free = item_free;
  aioc__list_init(&q->getters);
  aioc__list_init(&q->putters);
  aioc__list_init(&q->granted);
  *out = q;
  return 0;
}

/* ---- the items ---- */

static int push(aioc_tsqueue *q, void *item) {
  if (!aioc__ring_has_room(&q->ring)) {
    int rc = aioc__ring_grow(&q->ring, q->limit);
    if (rc) return rc;
  }
  aioc__ring_push_back(&q->ring, item);
  return 0;
}

/* ---- delivery ---- */

static void wake_cb(void *arg);
static void wake_drop(void *arg);

/* Hands rc (and n->item, set by the caller) to the waiter n, which leaves
 * its list. Mutex held. */
static void deliver(aioc_tsqueue *q, tsnode *n, int rc) {
  list_del(n);
  n->rc = rc;
  if (n->cv) {
    pthread_cond_signal(n->cv);
    return;
  }
  if (aioc__running == n->loop) {
    /* The task's own loop runs on this thread: wake it now. */
    aioc__twait_wake_detached(&n->tw, 0);
    return;
  }
  aioc__list_push_back(&q->granted, &n->link);
  q->refs++; /* the node's, while in granted */
  q->refs++; /* the callback's */
  /* The wake-up was allocated when the task began to wait: posting it
   * allocates nothing. A loop that is closing refuses it; its close
   * abandons the task, whose unhook takes the node out of granted. */
  aioc__tscall *c = n->wake;
  n->wake = NULL;
  if (aioc__tscall_post(n->loop, c) < 0) {
    q->refs--;
    aioc__free(c);
  }
}

/* On a loop's thread: wakes that loop's tasks whose nodes were granted. */
static void wake_cb(void *arg) {
  aioc_tsqueue *q = arg;
  aioc_loop *loop = aioc__running;
  pthread_mutex_lock(&q->mu);
  aioc__list_each(l, &q->granted) {
    tsnode *n = aioc__container_of(l, tsnode, link);
    if (n->loop == loop) {
      list_del(n);
      q->refs--; /* the node's; the callback's keeps q alive */
      aioc__twait_wake_detached(&n->tw, 0);
    }
  }
  unlock_unref(q);
}

/* The wake-up's loop closed before it could run: its tasks were abandoned
 * (their nodes left granted then); only the callback's reference is
 * left. */
static void wake_drop(void *arg) {
  aioc_tsqueue *q = arg;
  pthread_mutex_lock(&q->mu);
  unlock_unref(q);
}

/* Delivers rc to every waiter of list. */
static void deliver_all(aioc_tsqueue *q, aioc__list *list, int rc) {
  while (!aioc__list_is_empty(list)) deliver(q, first(list), rc);
}

/* ---- waiting ---- */

/* Cancellation, a deadline, the timer or the loop's close: the node leaves
 * whichever list holds it. If it was already granted, its outcome stays
 * in the node for the task to take. */
static void task_detach(aioc__twait *tw) {
  tsnode *n = aioc__container_of(tw, tsnode, tw);
  aioc_tsqueue *q = n->q;
  pthread_mutex_lock(&q->mu);
  /* A wake-up not posted is not needed any more (and a task abandoned by
   * its closing loop never returns to free it). */
  aioc__tscall *c = n->wake;
  n->wake = NULL;
  if (aioc__list_is_linked(&n->link)) {
    bool granted = n->rc != TS_WAITING;
    list_del(n);
    if (granted) {
      unlock_unref(q); /* the node's reference */
      aioc__free(c);
      return;
    }
  }
  pthread_mutex_unlock(&q->mu);
  aioc__free(c);
}

/* Where the caller is: in a task (*t set), on a thread with no running
 * loop (*t NULL), or in a callback of a running loop (AIOC_ERUNNING). */
static int context(aioc_task **t) {
  aioc_loop *loop = aioc__running;
  *t = loop ? loop->current : NULL;
  return loop && !*t ? AIOC_ERUNNING : 0;
}

static struct timespec abs_deadline(double timeout) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  double whole = (double)(time_t)timeout;
  long ns = (long)((timeout - whole) * 1e9);
  ts.tv_sec += (time_t)whole;
  ts.tv_nsec += ns;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return ts;
}

/* Waits on list as n (n->item set by the caller) with the mutex held, and
 * returns with it released. Returns n's outcome (0 and n->item, or the
 * code delivered) or the wait's own failure. */
static int wait_node(aioc_tsqueue *q, aioc__list *list, tsnode *n,
                     double timeout) {
  aioc_task *t;
  int rc = context(&t);
  if (rc) goto out;
  if (timeout == 0) {
    rc = -ETIMEDOUT;
    goto out;
  }
  n->rc = TS_WAITING;
  if (!t) {
    /* A plain thread: block on a condition variable of our own. */
    pthread_condattr_t ca;
    pthread_cond_t cv;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    rc = -pthread_cond_init(&cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc) goto out;
    n->cv = &cv;
    bool timed = timeout < 1e9; /* beyond 30 years: no limit */
    struct timespec ts;
    if (timed) ts = abs_deadline(timeout);
    aioc__list_push_back(list, &n->link);
    q->refs++;
    while (n->rc == TS_WAITING) {
      int e = timed ? pthread_cond_timedwait(&cv, &q->mu, &ts)
                    : pthread_cond_wait(&cv, &q->mu);
      if (e == ETIMEDOUT && n->rc == TS_WAITING) {
        list_del(n);
        n->rc = -ETIMEDOUT;
      }
    }
    rc = n->rc;
    unlock_unref(q);
    pthread_cond_destroy(&cv);
    return rc;
  }
  /* A task: suspend it. */
  rc = aioc__task_check(t);
  if (rc) goto out;
  n->cv = NULL;
  n->loop = t->f.loop;
  n->q = q;
  n->wake = NULL;
  aioc__twait_init(&n->tw, t, task_detach, -ETIMEDOUT);
  int64_t deadline = AIOC__NEVER;
  if (timeout != AIOC_FOREVER) {
    deadline = aioc__deadline_after(n->loop, timeout);
    if (deadline <= aioc__now(n->loop)) {
      rc = -ETIMEDOUT;
      goto out;
    }
  }
  /* The wake-up a deliverer on another thread will post (see deliver). */
  n->wake = aioc__tscall_new(wake_cb, wake_drop, q);
  if (!n->wake) {
    rc = -ENOMEM;
    goto out;
  }
  if (deadline != AIOC__NEVER) {
    rc = aioc__twait_arm(&n->tw, n->loop, deadline);
    if (rc < 0) {
      aioc__free(n->wake);
      goto out;
    }
  }
  aioc__list_push_back(list, &n->link);
  pthread_mutex_unlock(&q->mu);
  rc = aioc__twait_suspend(&n->tw);
  /* Not posted: woken on this thread, or it left by its unhook. */
  aioc__free(n->wake);
  /* n is in no list now. Its rc was written under the mutex before the
   * wake-up (or the unhook) that resumed us took the mutex on this
   * thread, so it can be read without it. */
  return n->rc == TS_WAITING ? rc : n->rc;
out:
  pthread_mutex_unlock(&q->mu);
  return rc;
}

/* ---- put and get ---- */

/* Mutex held: 0, AIOC_EFULL, -ESHUTDOWN or -ENOMEM. */
static int put_now(aioc_tsqueue *q, void *item) {
  if (q->shutdown) return -ESHUTDOWN;
  if (!aioc__list_is_empty(&q->getters)) {
    tsnode *g = first(&q->getters);
    g->item = item;
    deliver(q, g, 0);
    return 0;
  }
  if (q->ring.len >= q->limit) return AIOC_EFULL;
  return push(q, item);
}

/* Mutex held: 0, AIOC_EEMPTY or -ESHUTDOWN. */
static int get_now(aioc_tsqueue *q, void **item) {
  if (q->ring.len) {
    *item = aioc__ring_pop_front(&q->ring);
    if (!aioc__list_is_empty(&q->putters)) {
      tsnode *p = first(&q->putters);
      push(q, p->item); /* a slot was just freed: cannot fail */
      deliver(q, p, 0);
    }
    return 0;
  }
  return q->shutdown ? -ESHUTDOWN : AIOC_EEMPTY;
}

int aioc_tsqueue_put(aioc_tsqueue *q, void *item, double timeout) {
  if (!q || aioc__sync_bad_timeout(timeout)) return -EINVAL;
  pthread_mutex_lock(&q->mu);
  int rc = put_now(q, item);
  if (rc != AIOC_EFULL) {
    pthread_mutex_unlock(&q->mu);
    return rc;
  }
  tsnode n;
  n.item = item;
  return wait_node(q, &q->putters, &n, timeout);
}

int aioc_tsqueue_get(aioc_tsqueue *q, void **item, double timeout) {
  if (item) *item = NULL;
  if (!q || !item || aioc__sync_bad_timeout(timeout)) return -EINVAL;
  pthread_mutex_lock(&q->mu);
  int rc = get_now(q, item);
  if (rc != AIOC_EEMPTY) {
    pthread_mutex_unlock(&q->mu);
    return rc;
  }
  tsnode n;
  n.item = NULL;
  rc = wait_node(q, &q->getters, &n, timeout);
  if (rc == 0) *item = n.item;
  return rc;
}

int aioc_tsqueue_try_put(aioc_tsqueue *q, void *item) {
  if (!q) return -EINVAL;
  pthread_mutex_lock(&q->mu);
  int rc = put_now(q, item);
  pthread_mutex_unlock(&q->mu);
  return rc;
}

int aioc_tsqueue_try_get(aioc_tsqueue *q, void **item) {
  if (item) *item = NULL;
  if (!q || !item) return -EINVAL;
  pthread_mutex_lock(&q->mu);
  int rc = get_now(q, item);
  pthread_mutex_unlock(&q->mu);
  return rc;
}

/* ---- shutdown and free ---- */

/* Mutex held: wakes every waiter with rc and detaches the items (if
 * drop) into *items for the caller to free outside the mutex. */
static void close_locked(aioc_tsqueue *q, int rc, bool drop,
                         aioc__ring *items) {
  q->shutdown = true;
  aioc__ring_init(items);
  if (drop) aioc__ring_take(&q->ring, items);
  deliver_all(q, &q->getters, rc);
  deliver_all(q, &q->putters, rc);
}

int aioc_tsqueue_shutdown(aioc_tsqueue *q, int immediate) {
  if (!q) return -EINVAL;
  aioc__ring items;
  pthread_mutex_lock(&q->mu);
  close_locked(q, -ESHUTDOWN, immediate, &items);
  aioc_free_fn item_free = q->item_free;
  pthread_mutex_unlock(&q->mu);
  aioc__ring_free(&items, item_free);
  return 0;
}

void aioc_tsqueue_free(aioc_tsqueue *q) {
  if (!q) return;
  aioc__ring items;
  pthread_mutex_lock(&q->mu);
  close_locked(q, -ECANCELED, true, &items);
  aioc_free_fn item_free = q->item_free;
  unlock_unref(q);
  aioc__ring_free(&items, item_free);
}

size_t aioc_tsqueue_size(aioc_tsqueue *q) {
  if (!q) return 0;
  pthread_mutex_lock(&q->mu);
  size_t n = q->ring.len;
  pthread_mutex_unlock(&q->mu);
  return n;
}

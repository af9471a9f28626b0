/* Executors: thread pools running jobs for loops (to_thread,
 * run_in_executor).
 *
 * A job lives between two worlds. Its executor's mutex guards what the
 * threads see (the queue, the state, the loop it reports to); the rest
 * (who awaits it, the loop's list of jobs in flight) belongs to its loop's
 * thread. A job reports back through a thread-safe call that is part of
 * it, so completing one never needs memory.
 *
 * The hand-over takes no lock on the loop's side. Jobs submitted by the
 * tasks of a running loop wait in the loop's outbox until its batch of
 * ready items has run; the batch's jobs are then pushed in one go on the
 * pool's inbox, a lock-free stack that a thread of the pool takes whole
 * into the pool's queue (under the mutex, which the loops leave alone).
 * The loop wakes a thread only when none is awake to look at the inbox:
 * it pushes, then reads the count of threads awake (busy or spinning); a
 * thread that goes idle takes itself off the count, then looks at the
 * inbox once more (the two sides of a Dekker pair, with full fences).
 *
 * States, under the executor's mutex (the outbox is its loop's own):
 *   INBOX    pushed on the inbox, not yet taken into the queue
 *   DROPPED  given up while on the inbox (or its loop closed): the thread
 *            that takes the inbox finishes it instead of queueing it
 *   QUEUED   waiting for a thread; giving up unlinks it and drops it
 *   RUNNING  a thread runs it; giving up raises its cancellation flag and
 *            forgets the awaiter (the loop side does not wait)
 *   POSTED   done, its call queued on the loop: the call (or, if the loop
 *            closes first, the call's drop) finishes it there
 *   ORPHAN   done, but its loop had closed: the loop's abandon frees it
 * A job whose loop closes while it runs or waits on the inbox is detached
 * (loop NULL): its thread frees it, touching nothing of the loop.
 *
 * An idle thread of a pool takes one of three roles (mutex):
 *   spinner  at most one: the thread that just ran out of work polls the
 *            inbox for SPIN_NS before it goes idle, so the next batch of
 *            a loop that submits in bursts finds it awake (no futex call
 *            on either side); a spin that finds nothing stops spinning
 *            until a sleep turns out shorter than 4 * SPIN_NS
 *   watcher  at most one, while jobs run or wait: looks every WATCH_NS
 *            (doubling up to WATCH_MAX_NS while nothing waits; a hand-over
 *            brings a look further off than WATCH_SOON_NS forward) and
 *            takes waiting jobs itself when none was taken since its last
 *            look, the sign that the busy threads are blocked
 *   sleeper  the others, each on its condition variable, woken last in
 *            first out, to take jobs when no thread is awake (or those
 *            awake have taken none for WATCH_NS), or to become the watcher
 * So a pool of short jobs runs them on the threads already awake without
 * waking others, and one of blocking jobs grows to as many threads as it
 * needs.
 *
 * Each loop that used an executor has a record of its own (loopx, in
 * the loop's slot keyed by lx_ops), a live object of the loop: its jobs in
 * flight, its default executor, the count of abandoned jobs, the outbox.
 * The loop's close runs its abandon, which settles every job, reports the
 * count and frees the default executor. */
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "../task/task.h"

enum { J_INBOX, J_DROPPED, J_QUEUED, J_RUNNING, J_POSTED, J_ORPHAN };

typedef struct jobwait jobwait;
typedef struct loopx loopx;
typedef struct job job;

/* Laid out by who touches what, a cache line each: the loop's own
 * (first, where the slab links a free job), what the loop writes and a
 * pool's thread only reads, and all that the thread writes (which the
 * loop reads back). From the slab, a job starts on a line. */
struct job {
  /* the loop thread's */
  aioc__list link; /* in its loopx's jobs */
  aioc_future *f;  /* run_in_executor's future, with its waiter fw */
  aioc__waiter fw;
  aioc_executor *ex;
  /* set by the loop */
  aioc_fn fn;
  void *arg;
  aioc_loop *loop; /* mutex; NULL once its loop closed under it */
  aioc_free_fn result_free;
  atomic_int cancelled;
  bool outbox;     /* in lx->outbox, not yet handed over (loop thread) */
  loopx *lx;
  jobwait *tw;     /* to_thread's waiting task */
  /* written by the thread: in the outbox or the queue (on the inbox,
   * qlink.next chains it), its state, its outcome (before POSTED or
   * ORPHAN), its way back to the loop */
  aioc__list qlink;
  int state; /* mutex */
  int rc;
  void *result;
  char *msg;
  aioc__posted done;
};

/* Whole lines: from the slab's page-aligned chunks, every job starts on
 * a line. */
#define JOB_SIZE ((sizeof(job) + 63) & ~(size_t)63)

/* A thread of the pool: joined at close, or left to end on its own. It
 * sleeps on a condition variable of its own, so that the pool wakes the
 * thread that went to sleep last (its cache is the warmest) and tells it
 * why. */
typedef struct wslot wslot;
enum { WAKE_NONE, WAKE_TAKE, WAKE_WATCH };
struct wslot {
  pthread_t th;
  aioc_executor *ex;
  pthread_cond_t cv;
  wslot *next_sleeper; /* in ex->sleepers */
  int wake;            /* WAKE_*: why it was woken or started */
  bool started, exited;
};

enum { W_VACANT, W_ASKED, W_HELD }; /* the watcher role */

/* The inbox's mark of a closed pool. */
#define INBOX_CLOSED ((job *)(uintptr_t)1)

/* Fields apart by who writes them, so that a loop pushing jobs and the
 * threads taking them do not fight over lines they do not share. */
struct aioc_executor {
  /* set once (closed: once more, by the close) */
  int max;
  double grace;
  wslot *slots;
  atomic_bool closed;
  char pad0[64];
  /* the hand-over */
  _Atomic(job *) inbox; /* newest first; INBOX_CLOSED once closed */
  atomic_int nawake;    /* threads busy, spinning or woken to take jobs */
  atomic_bool spinning; /* a thread polls the inbox (mutex to write) */
  atomic_llong last_take; /* monotonic ns of the last job taken (mutex) */
  atomic_llong watch_due; /* the watcher's next look if far off, or 0 */
  char pad1[64];
  atomic_size_t refs; /* the owner, each thread, each job */
  char pad2[64];
  /* the threads' side */
  pthread_mutex_t mu;
  pthread_cond_t watch; /* the watcher waits here */
  pthread_cond_t gone;  /* close waits here for threads to leave */
  aioc__list queue;
  size_t nqueued;
  uint64_t ntaken;      /* jobs taken from the queue so far */
  int nthreads, nbusy;
  wslot *sleepers;      /* the last to sleep first */
  int ntaking;          /* threads woken or started to take jobs, on
                           their way (counted awake) */
  int watcher;          /* W_* */
  bool watch_kicked;    /* the watcher was told to take jobs (counted) */
  bool watch_soon;      /* the watcher was told to look again soon */
  bool spin_off;        /* the last spin found nothing: sleep at once */
  AIOC__ARMOR_FIELD
};

struct loopx {
  aioc__live live;
  aioc__slot slot; /* found by the key &lx_ops */
  aioc_loop *loop;
  aioc__list jobs;
  aioc__list outbox;    /* jobs of the current batch, not yet handed over */
  size_t noutbox;
  aioc__deferred flush; /* hands the outbox over */
  aioc_executor *dflt;
  size_t abandoned;
};

/* to_thread's waiting task: the task layer's timed wait (no timer: the
 * deadlines in scope bound it), whose detach gives the job up. */
struct jobwait {
  aioc__twait tw;
  job *j;
  void *result;
  char *msg;
  int rc;
};

/* The job this thread runs, for aioc_job_is_cancelled(). */
static __thread job *tl_job;
static __thread aioc_executor *tl_ex;

/* ---- executor lifetime ---- */

static void ex_unref(aioc_executor *ex) {
  if (atomic_fetch_sub(&ex->refs, 1) != 1) return;
  for (int i = 0; i < ex->max; i++) pthread_cond_destroy(&ex->slots[i].cv);
  pthread_cond_destroy(&ex->watch);
  pthread_cond_destroy(&ex->gone);
  pthread_mutex_destroy(&ex->mu);
  AIOC__ARMOR_SET(ex, AIOC__MAGIC_DEAD);
  aioc__free(ex->slots);
  aioc__free(ex);
}

static int default_threads(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) n = 1;
  n += 4;
  return n > 32 ? 32 : (int)n;
}

int aioc_executor_new(aioc_executor **out, const aioc_executor_options *o) {
  if (!out) return -EINVAL;
  *out = NULL;
  int threads = o ? o->threads : 0;
  double grace = o ? o->shutdown_timeout : 0;
  if (threads < 0 || !(grace >= 0)) return -EINVAL;
  aioc_executor *ex = aioc__calloc(1, sizeof *ex);
  if (!ex) return -ENOMEM;
  ex->max = threads ? threads : default_threads();
  ex->grace = grace ? grace : 5.0;
  ex->slots = aioc__calloc((size_t)ex->max, sizeof *ex->slots);
  if (!ex->slots) {
    aioc__free(ex);
    return -ENOMEM;
  }
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  int e = pthread_mutex_init(&ex->mu, NULL);
  if (!e && (e = pthread_cond_init(&ex->watch, &ca)) != 0)
    pthread_mutex_destroy(&ex->mu);
  if (!e && (e = pthread_cond_init(&ex->gone, &ca)) != 0) {
    pthread_cond_destroy(&ex->watch);
    pthread_mutex_destroy(&ex->mu);
  }
  int ncv = 0;
  while (!e && ncv < ex->max &&
         (e = pthread_cond_init(&ex->slots[ncv].cv, NULL)) == 0)
    ncv++;
  if (e && ncv) {
    while (ncv--) pthread_cond_destroy(&ex->slots[ncv].cv);
    pthread_cond_destroy(&ex->gone);
    pthread_cond_destroy(&ex->watch);
    pthread_mutex_destroy(&ex->mu);
  }
  pthread_condattr_destroy(&ca);
  if (e) {
    aioc__free(ex->slots);
    aioc__free(ex);
    return -e;
  }
  aioc__list_init(&ex->queue);
  atomic_init(&ex->inbox, NULL);
  atomic_init(&ex->nawake, 0);
  atomic_init(&ex->spinning, false);
  atomic_init(&ex->last_take, 0);
  atomic_init(&ex->watch_due, 0);
  atomic_init(&ex->closed, false);
  atomic_init(&ex->refs, 1);
  AIOC__ARMOR_SET(ex, AIOC__MAGIC_EXECUTOR);
  *out = ex;
  return 0;
}

/* ---- the threads ---- */

/* Jobs come from the thread's slab: a loop with many in flight
 * allocates and frees them in bursts, which malloc's per-thread cache
 * does not absorb. One freed on a pool's thread (its loop closed) stays
 * in that thread's slab. */
static void job_free(job *j) {
  aioc_executor *ex = j->ex;
  if (j->msg) aioc__free(j->msg);
  aioc__slab_free(AIOC__SLAB_JOB, j);
  ex_unref(ex);
}

static void free_result(job *j) {
  if (j->rc == 0 && j->result && j->result_free) j->result_free(j->result);
  j->result = NULL;
}

/* A job is done (it returned, or was dropped): report it to its loop.
 * Mutex held (or on its loop's thread, for a job no thread has seen).
 * Returns true when the caller must free it (its loop closed under it). */
static bool job_complete(job *j) {
  if (!j->loop) return true;
  /* Before the post: once posted, the loop may free j at any moment. */
  j->state = J_POSTED;
  if (aioc__post(j->loop, &j->done) < 0)
    j->state = J_ORPHAN; /* closed since: its loop's abandon frees it */
  return false;
}

/* The spinner's time: about a loop's iteration, the time for a loop to
 * hand over the next batch of a burst (to_thread in a loop of tasks). */
#define SPIN_NS 20000
/* The watcher's first look, and its longest wait while all is well. */
#define WATCH_NS 50000
#define WATCH_MAX_NS 10000000
/* Jobs handed over while the watcher's next look is further off than
 * this bring it forward (see push_jobs()). */
#define WATCH_SOON_NS 1000000
/* How long the watcher stays once every thread is idle. */
#define WATCH_IDLE_NS 50000000
/* A batch hands its jobs over by this many at most. */
#define FLUSH_EVERY 16

static bool is_spinning(aioc_executor *ex) {
  return atomic_load_explicit(&ex->spinning, memory_order_relaxed);
}

/* Have the busy threads taken no job for WATCH_NS? Then they may be
 * blocked in their jobs, and jobs waiting need another thread. */
static bool stalled(aioc_executor *ex) {
  return aioc__clock_ns() -
             atomic_load_explicit(&ex->last_take, memory_order_relaxed) >
         WATCH_NS;
}

static bool inbox_full(aioc_executor *ex) {
  return atomic_load_explicit(&ex->inbox, memory_order_relaxed) != NULL;
}

static bool work_or_close(void *p) {
  aioc_executor *ex = p;
  return inbox_full(ex) ||
         atomic_load_explicit(&ex->closed, memory_order_relaxed);
}

/* Moves a chain taken from the inbox (newest first) into the queue,
 * oldest first (mutex held). Jobs given up meanwhile are finished
 * instead; those whose loop closed are freed (they never ran). With rc,
 * every job ends with it instead of being queued. */
static void queue_chain(aioc_executor *ex, job *c, int rc) {
  job *r = NULL;
  while (c) {
    job *next = (job *)c->qlink.next;
    c->qlink.next = (aioc__list *)r;
    r = c;
    c = next;
  }
  while (r) {
    job *next = (job *)r->qlink.next;
    aioc__list_init(&r->qlink);
    if (r->state == J_DROPPED || rc) {
      if (r->state != J_DROPPED) r->rc = rc;
      r->state = J_RUNNING; /* as if a thread had taken it */
      if (job_complete(r)) job_free(r);
    } else {
      r->state = J_QUEUED;
      aioc__list_push_back(&ex->queue, &r->qlink);
      ex->nqueued++;
    }
    r = next;
  }
}

/* Takes the inbox into the queue (mutex held, pool open). Returns
 * whether the queue has jobs. */
static bool take_inbox(aioc_executor *ex) {
  if (inbox_full(ex))
    queue_chain(ex, atomic_exchange_explicit(&ex->inbox, NULL,
                                             memory_order_acquire),
                0);
  return ex->nqueued > 0;
}

/* Starts one more thread (mutex held): to take jobs (counted awake
 * here), or else to be the watcher the pool asked for. */
static int start_thread(aioc_executor *ex, bool take);

/* Wakes the thread that went to sleep last, telling it why (mutex
 * held). Returns false when none sleeps. */
static bool wake_sleeper(aioc_executor *ex, int why) {
  wslot *s = ex->sleepers;
  if (!s) return false;
  ex->sleepers = s->next_sleeper;
  s->wake = why;
  pthread_cond_signal(&s->cv);
  return true;
}

/* Makes sure someone watches the queue (mutex held): the jobs running
 * may block. A sleeper takes the role, else a new thread. */
static void want_watcher(aioc_executor *ex) {
  if (ex->watcher != W_VACANT || ex->max < 2) return;
  if (wake_sleeper(ex, WAKE_WATCH) ||
      (ex->nthreads < ex->max && start_thread(ex, false) == 0))
    ex->watcher = W_ASKED;
}

/* Jobs were pushed (mutex held) and no thread is awake to see them soon:
 * none is, or those that are have been busy with their jobs for a while
 * (see stalled()). One is woken (or started) to take them. Returns 0, or
 * the error of a pool that has no thread at all and cannot start one. */
static int kick(aioc_executor *ex) {
  if (ex->ntaking || ex->watch_kicked) return 0; /* one is on its way */
  if (atomic_load(&ex->nawake) > 0 && (is_spinning(ex) || !stalled(ex)))
    return 0;
  if (wake_sleeper(ex, WAKE_TAKE)) {
    ex->ntaking++;
    atomic_fetch_add(&ex->nawake, 1);
  } else if (ex->watcher == W_HELD) {
    ex->watch_kicked = true;
    atomic_fetch_add(&ex->nawake, 1);
    pthread_cond_signal(&ex->watch);
  } else if (ex->nthreads < ex->max) {
    int rc = start_thread(ex, true);
    if (rc < 0 && ex->nthreads == 0) return rc;
  }
  /* Otherwise every thread is busy or on its way: a sleeper woken to
   * watch takes the jobs if the busy ones stay stuck. */
  return 0;
}

/* Takes the first queued job (mutex held, queue not empty). */
static job *take(aioc_executor *ex) {
  aioc__list *l = aioc__list_pop_front(&ex->queue);
  ex->nqueued--;
  ex->ntaken++;
  ex->nbusy++;
  atomic_store_explicit(&ex->last_take, aioc__clock_ns(), memory_order_relaxed);
  job *j = aioc__container_of(l, job, qlink);
  j->state = J_RUNNING;
  /* While jobs run, someone sees to it that the next ones do not wait
   * behind a job that blocks. */
  want_watcher(ex);
  return j;
}

/* The watcher's watch (mutex held; the role is taken here). Returns true
 * when it is to take jobs (then counted awake), false when the pool
 * closes or nothing runs or waits any more. */
static bool watch(aioc_executor *ex) {
  ex->watcher = W_HELD;
  int64_t wait_ns = WATCH_NS, idle_since = 0;
  uint64_t seen = ex->ntaken;
  bool work = false;
  for (;;) {
    if (ex->watch_soon) {
      ex->watch_soon = false;
      wait_ns = WATCH_NS;
    }
    int64_t due = aioc__clock_ns() + wait_ns;
    atomic_store_explicit(&ex->watch_due, wait_ns > WATCH_SOON_NS ? due : 0,
                          memory_order_relaxed);
    struct timespec dl = {.tv_sec = due / 1000000000,
                          .tv_nsec = due % 1000000000};
    pthread_cond_timedwait(&ex->watch, &ex->mu, &dl);
    atomic_store_explicit(&ex->watch_due, 0, memory_order_relaxed);
    if (atomic_load_explicit(&ex->closed, memory_order_relaxed)) break;
    if (ex->watch_kicked) { /* counted by the kick */
      ex->watch_kicked = false;
      work = true;
      break;
    }
    bool waiting = ex->nqueued || inbox_full(ex);
    bool others = atomic_load(&ex->nawake) > 0;
    if (waiting && (!others || ex->ntaken == seen)) {
      /* Nobody else to take them, or no job taken since the last look:
       * the busy threads may be blocked. */
      atomic_fetch_add(&ex->nawake, 1);
      work = true;
      break;
    }
    if (!waiting && ex->nbusy == 0 && !is_spinning(ex)) {
      /* All idle: the role goes once that lasts (a burst of jobs after a
       * short pause finds the watcher still there, and wakes nobody). */
      int64_t now = aioc__clock_ns();
      if (!idle_since)
        idle_since = now;
      else if (now - idle_since > WATCH_IDLE_NS)
        break;
    } else {
      idle_since = 0;
    }
    /* All is well: look again later, less often while nothing waits. */
    seen = ex->ntaken;
    if (!waiting && (wait_ns *= 2) > WATCH_MAX_NS) wait_ns = WATCH_MAX_NS;
  }
  ex->watcher = W_VACANT;
  return work;
}

/* An idle thread, not counted awake (mutex held), waits until it is to
 * take jobs (then counted) or the pool closes (false): as the watcher
 * when it is asked to be, or when jobs run or wait and nobody watches,
 * else as a sleeper. */
static bool idle(aioc_executor *ex, wslot *s) {
  for (;;) {
    if (atomic_load_explicit(&ex->closed, memory_order_relaxed)) return false;
    int why = s->wake;
    s->wake = WAKE_NONE;
    if (why == WAKE_TAKE) {
      ex->ntaking--; /* counted by the kick */
      return true;
    }
    if ((why == WAKE_WATCH && ex->watcher == W_ASKED) ||
        (ex->watcher == W_VACANT && (ex->nbusy > 0 || is_spinning(ex) ||
                                     ex->nqueued || inbox_full(ex)))) {
      if (watch(ex)) return true;
      continue;
    }
    s->next_sleeper = ex->sleepers;
    ex->sleepers = s;
    while (s->wake == WAKE_NONE &&
           !atomic_load_explicit(&ex->closed, memory_order_relaxed))
      pthread_cond_wait(&s->cv, &ex->mu);
  }
}

/* The next job for a thread counted awake (mutex held), or NULL when the
 * pool closed (the thread is then no longer counted). */
static job *next_job(aioc_executor *ex, wslot *s) {
  bool spun = false;
  for (;;) {
    if (atomic_load_explicit(&ex->closed, memory_order_relaxed)) {
      atomic_fetch_sub(&ex->nawake, 1);
      return NULL;
    }
    if (take_inbox(ex)) return take(ex);
    /* Spinning pays when jobs come back within SPIN_NS: one spin that
     * finds nothing stops it until a sleep turns out that short. */
    if (!spun && !ex->spin_off && !is_spinning(ex)) {
      spun = true;
      atomic_store_explicit(&ex->spinning, true, memory_order_relaxed);
      pthread_mutex_unlock(&ex->mu);
      bool got = aioc__spin_wait(work_or_close, ex, SPIN_NS);
      pthread_mutex_lock(&ex->mu);
      atomic_store_explicit(&ex->spinning, false, memory_order_relaxed);
      if (!got) ex->spin_off = true;
      continue;
    }
    /* Idle: off the count first, then one more look at the inbox (a loop
     * pushes first, then reads the count). */
    atomic_fetch_sub(&ex->nawake, 1);
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load(&ex->inbox) != NULL) {
      atomic_fetch_add(&ex->nawake, 1);
      continue;
    }
    int64_t t0 = aioc__clock_ns();
    if (!idle(ex, s)) return NULL;
    if (aioc__clock_ns() - t0 < SPIN_NS * 4) ex->spin_off = false;
    spun = false;
  }
}

static void run_job(job *j) {
  void *result = NULL;
  char *msg = NULL;
  tl_job = j;
  aioc__error_sink = &msg;
  int rc = j->fn(j->arg, &result);
  aioc__error_sink = NULL;
  tl_job = NULL;
  if (rc != 0 || !result) {
    /* No result (AIOC_NORESULT) or a failure: a value stored anyway
     * goes to the destructor, as for tasks. */
    if (result && j->result_free) j->result_free(result);
    result = NULL;
    if (rc > 0) rc = 0;
  }
  if (rc == 0 || rc == -ECANCELED) {
    aioc__free(msg);
    msg = NULL;
  }
  j->result = result;
  j->msg = msg;
  j->rc = rc;
}

static void *worker(void *p) {
  wslot *s = p;
  aioc_executor *ex = s->ex;
  tl_ex = ex;
  pthread_mutex_lock(&ex->mu);
  /* Started to take jobs (its wake is WAKE_TAKE), or to watch. */
  bool go = idle(ex, s);
  job *j;
  while (go && (j = next_job(ex, s)) != NULL) {
    pthread_mutex_unlock(&ex->mu);
    run_job(j);
    pthread_mutex_lock(&ex->mu);
    ex->nbusy--;
    if (job_complete(j)) {
      /* Its loop is gone: nobody takes the result. */
      pthread_mutex_unlock(&ex->mu);
      free_result(j);
      job_free(j);
      pthread_mutex_lock(&ex->mu);
    }
  }
  ex->nthreads--;
  s->exited = true;
  pthread_cond_broadcast(&ex->gone);
  pthread_mutex_unlock(&ex->mu);
  ex_unref(ex);
  return NULL;
}

static int start_thread(aioc_executor *ex, bool take) {
  wslot *s = NULL;
  for (int i = 0; i < ex->max; i++)
    if (!ex->slots[i].started) {
      s = &ex->slots[i];
      break;
    }
  if (!s) return -EAGAIN;
  s->ex = ex;
  s->exited = false;
  s->wake = take ? WAKE_TAKE : WAKE_WATCH;
  atomic_fetch_add(&ex->refs, 1);
  if (take) {
    ex->ntaking++;
    atomic_fetch_add(&ex->nawake, 1);
  }
  int e = pthread_create(&s->th, NULL, worker, s);
  if (e) {
    if (take) {
      ex->ntaking--;
      atomic_fetch_sub(&ex->nawake, 1);
    }
    atomic_fetch_sub(&ex->refs, 1);
    return -e;
  }
  s->started = true;
  ex->nthreads++;
  return 0;
}

/* Ends the jobs of a chain (linked through qlink.next, their loop's
 * thread, never seen by a thread of the pool) with rc. */
static void end_chain(job *c, int rc) {
  while (c) {
    job *next = (job *)c->qlink.next;
    aioc__list_init(&c->qlink);
    c->rc = rc;
    c->state = J_RUNNING; /* as if a thread had taken it */
    job_complete(c);      /* its loop is running: never NULL */
    c = next;
  }
}

/* Hands over a chain of jobs of ex, first..last linked newest first
 * through qlink.next (their loop's thread). On a closed pool, or one
 * that cannot run a thread, each ends at once with the error. */
static void push_jobs(aioc_executor *ex, job *first, job *last) {
  job *h = atomic_load_explicit(&ex->inbox, memory_order_relaxed);
  do {
    if (h == INBOX_CLOSED) {
      end_chain(first, -ESHUTDOWN);
      return;
    }
    last->qlink.next = (aioc__list *)h;
  } while (!atomic_compare_exchange_weak_explicit(
      &ex->inbox, &h, first, memory_order_release, memory_order_relaxed));
  /* The mirror image of a thread going idle (next_job). */
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_load(&ex->nawake) > 0 && (is_spinning(ex) || !stalled(ex))) {
    /* A thread awake will take them, unless its job blocks: then the
     * watcher does, so its next look must not be far off. */
    int64_t due = atomic_load_explicit(&ex->watch_due, memory_order_relaxed);
    if (!due || due - aioc__clock_ns() < WATCH_SOON_NS) return;
    pthread_mutex_lock(&ex->mu);
    if (ex->watcher == W_HELD && !ex->watch_soon) {
      ex->watch_soon = true;
      atomic_store_explicit(&ex->watch_due, 0, memory_order_relaxed);
      pthread_cond_signal(&ex->watch);
    }
    pthread_mutex_unlock(&ex->mu);
    return;
  }
  pthread_mutex_lock(&ex->mu);
  int rc = kick(ex);
  if (rc < 0 && !atomic_load_explicit(&ex->closed, memory_order_relaxed)) {
    /* No thread at all, and none can start: what is on the inbox ends
     * here with the error. */
    queue_chain(ex, atomic_exchange(&ex->inbox, NULL), rc);
  }
  pthread_mutex_unlock(&ex->mu);
}

int aioc_job_is_cancelled(void) {
  job *j = tl_job;
  return j && atomic_load_explicit(&j->cancelled, memory_order_relaxed);
}

int aioc_executor_close(aioc_executor *ex) {
  if (!ex || !AIOC__ARMOR_OK(ex, AIOC__MAGIC_EXECUTOR, "aioc_executor_close",
                             "executor"))
    return -EINVAL;
  pthread_mutex_lock(&ex->mu);
  if (atomic_load_explicit(&ex->closed, memory_order_relaxed)) {
    pthread_mutex_unlock(&ex->mu);
    return AIOC_ECLOSED;
  }
  atomic_store(&ex->closed, true);
  /* Jobs not started are dropped: their awaiters learn it from their
   * loops. Freeing one whose loop closed is left for after the lock. */
  queue_chain(ex, atomic_exchange(&ex->inbox, INBOX_CLOSED), 0);
  aioc__list dead;
  aioc__list_init(&dead);
  aioc__list *l;
  while ((l = aioc__list_pop_front(&ex->queue)) != NULL) {
    job *j = aioc__container_of(l, job, qlink);
    j->rc = -ESHUTDOWN;
    j->state = J_RUNNING; /* as if a thread had taken it */
    if (job_complete(j)) aioc__list_push_back(&dead, &j->qlink);
  }
  ex->nqueued = 0;
  while (wake_sleeper(ex, WAKE_NONE)) {
  }
  pthread_cond_broadcast(&ex->watch);
  bool self = tl_ex == ex;
  if (!self) {
    /* Running jobs were told when their awaiters gave up; closing tells
     * the others that time is short. They are waited for a while. */
    bool forever = ex->grace > 1e9;
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    if (!forever) {
      time_t whole = (time_t)ex->grace;
      long ns = dl.tv_nsec + (long)((ex->grace - (double)whole) * 1e9);
      dl.tv_sec += whole + ns / 1000000000L;
      dl.tv_nsec = ns % 1000000000L;
    }
    while (ex->nthreads > 0) {
      if (forever)
        pthread_cond_wait(&ex->gone, &ex->mu);
      else if (pthread_cond_timedwait(&ex->gone, &ex->mu, &dl) == ETIMEDOUT)
        break;
    }
  }
  /* Threads that left are joined; the others (still in a job, or this
   * one) end on their own, holding their reference. */
  for (int i = 0; i < ex->max; i++) {
    wslot *s = &ex->slots[i];
    if (!s->started) continue;
    s->started = false;
    if (s->exited)
      pthread_join(s->th, NULL);
    else
      pthread_detach(s->th);
  }
  pthread_mutex_unlock(&ex->mu);
  while ((l = aioc__list_pop_front(&dead)) != NULL) {
    job *j = aioc__container_of(l, job, qlink);
    job_free(j);
  }
  return self ? -EDEADLK : 0;
}

void aioc_executor_free(aioc_executor *ex) {
  if (!ex || !AIOC__ARMOR_OK(ex, AIOC__MAGIC_EXECUTOR, "aioc_executor_free",
                             "executor"))
    return;
  AIOC__IGNORE(aioc_executor_close(ex));
  ex_unref(ex);
}

/* ---- the loop's side ---- */

static void lx_abandon(aioc__live *n);
static const aioc__live_ops lx_ops = {NULL, lx_abandon};

/* The end of the loop's batch: the jobs its tasks submitted meanwhile go
 * to their pools, one push (and at most one wake-up) per pool. */
static void lx_flush(aioc__deferred *d) {
  loopx *lx = aioc__container_of(d, loopx, flush);
  while (!aioc__list_is_empty(&lx->outbox)) {
    aioc_executor *ex =
        aioc__container_of(aioc__list_first(&lx->outbox), job, qlink)->ex;
    /* This pool's jobs, chained newest first through qlink.next. */
    job *first = NULL, *last = NULL;
    for (aioc__list *l = lx->outbox.next, *next; l != &lx->outbox; l = next) {
      next = l->next;
      job *j = aioc__container_of(l, job, qlink);
      if (j->ex != ex) continue;
      aioc__list_del(l);
      lx->noutbox--;
      j->outbox = false;
      j->state = J_INBOX;
      j->qlink.next = (aioc__list *)first;
      first = j;
      if (!last) last = j;
    }
    push_jobs(ex, first, last);
  }
}

static loopx *loopx_get(aioc_loop *loop) {
  aioc__slot *sl = aioc__slot_find(loop, &lx_ops);
  if (sl) return aioc__container_of(sl, loopx, slot);
  loopx *lx;
  lx = aioc__calloc(1, sizeof *lx);
  if (!lx) return NULL;
  lx->loop = loop;
  aioc__list_init(&lx->jobs);
  aioc__list_init(&lx->outbox);
  aioc__list_init(&lx->flush.link);
  lx->flush.run = lx_flush;
  aioc__live_add(loop, &lx->live, &lx_ops);
  aioc__slot_add(loop, &lx->slot, &lx_ops);
  return lx;
}

static void job_posted(aioc__runnable *r);

/* A job for loop on ex (NULL: the loop's default executor), not yet
 * submitted. */
static int job_new(job **out, aioc_loop *loop, aioc_executor **pex,
                   aioc_fn fn, void *arg, aioc_free_fn result_free) {
  *out = NULL;
  if (loop->closed) return AIOC_ECLOSED;
  loopx *lx = loopx_get(loop);
  if (!lx) return -ENOMEM;
  if (!*pex) {
    if (!lx->dflt) {
      int rc = aioc_executor_new(&lx->dflt, NULL);
      if (rc < 0) return rc;
    }
    *pex = lx->dflt;
  }
  job *j = aioc__slab_alloc(AIOC__SLAB_JOB, JOB_SIZE);
  if (!j) return -ENOMEM;
  j->ex = *pex;
  j->fn = fn;
  j->arg = arg;
  j->result = NULL;
  j->msg = NULL;
  j->rc = 0;
  atomic_init(&j->cancelled, 0);
  j->result_free = result_free;
  j->done.rq.run = job_posted;
  j->loop = loop;
  j->lx = lx;
  j->f = NULL;
  j->tw = NULL;
  j->outbox = false;
  aioc__list_init(&j->link);
  aioc__list_init(&j->qlink);
  *out = j;
  return 0;
}

/* Submits j and links it to its loop. From a task or callback of its
 * running loop the job waits in the outbox for the end of the batch;
 * otherwise it goes to its pool at once. */
static int job_submit(job *j) {
  aioc_executor *ex = j->ex;
  if (atomic_load_explicit(&ex->closed, memory_order_relaxed))
    return -ESHUTDOWN;
  atomic_fetch_add(&ex->refs, 1); /* held by j from here (job_free) */
  loopx *lx = j->lx;
  aioc__list_push_back(&lx->jobs, &j->link);
  lx->loop->ts_expect++; /* until j leaves lx->jobs (job_unlink) */
  if (aioc__running == lx->loop) {
    j->outbox = true;
    aioc__list_push_back(&lx->outbox, &j->qlink);
    /* A long batch hands its jobs over as it goes, so that the pool
     * works while the loop still runs the batch. */
    if (++lx->noutbox >= FLUSH_EVERY)
      lx_flush(&lx->flush);
    else
      aioc__defer(lx->loop, &lx->flush);
  } else {
    j->state = J_INBOX;
    push_jobs(ex, j, j);
  }
  return 0;
}

/* j leaves its loop's jobs (loop thread). */
static void job_unlink(job *j) {
  aioc__list_del(&j->link);
  j->lx->loop->ts_expect--;
}

/* A job that could not be submitted (it holds no reference yet). */
static void job_unsubmitted(job *j) {
  aioc__slab_free(AIOC__SLAB_JOB, j);
}

/* Hands the outcome to whoever awaits it, or to the destructor. Loop
 * thread, j off its loop's list. */
static void job_deliver(job *j) {
  if (j->tw) {
    jobwait *tw = j->tw;
    tw->j = NULL;
    j->tw = NULL;
    tw->rc = j->rc;
    tw->result = j->result;
    tw->msg = j->msg;
    j->result = NULL;
    j->msg = NULL;
    aioc__twait_wake(&tw->tw, 0);
  } else if (j->f) {
    aioc_future *f = j->f;
    j->f = NULL;
    aioc__future_del_waiter(&j->fw);
    if (f->state == AIOC_FUTURE_PENDING) {
      if (j->rc == 0) {
        f->ext->result_free = j->result_free;
        aioc__future_finish(f, AIOC_FUTURE_DONE, 0, j->result, NULL);
      } else {
        aioc__future_finish(f,
                            j->rc == -ECANCELED ? AIOC_FUTURE_CANCELLED
                                                : AIOC_FUTURE_DONE,
                            j->rc, NULL, j->msg);
        j->msg = NULL;
      }
      j->result = NULL;
    }
    aioc_future_unref(f);
  }
  free_result(j);
}

/* The job's outcome reached its loop's thread. */
static void job_done(job *j) {
  job_unlink(j);
  job_deliver(j);
  job_free(j); /* with its call */
}

/* The job's run_in_executor future (if any) ends cancelled: its loop
 * closes, or closed, under it. */
static void job_cancel_future(job *j) {
  aioc_future *f = j->f;
  if (!f) return;
  j->f = NULL;
  aioc__future_del_waiter(&j->fw);
  if (f->state == AIOC_FUTURE_PENDING)
    aioc__future_finish(f, AIOC_FUTURE_CANCELLED, -ECANCELED, NULL, NULL);
  aioc_future_unref(f);
}

/* The loop closed before the outcome could be delivered (the loop's
 * abandon has already let go of the awaiters). */
static void job_drop(job *j) {
  aioc__list_del(&j->link); /* the loop's abandon unlinked it already */
  if (j->tw) {
    j->tw->j = NULL;
    j->tw = NULL;
  }
  job_cancel_future(j);
  free_result(j);
  job_free(j);
}

/* The job's post, run by its loop (done) or by its closing (dropped). */
static void job_posted(aioc__runnable *r) {
  job *j = aioc__container_of(r, job, done.rq);
  if (!j->loop->closed)
    job_done(j);
  else
    job_drop(j);
}

/* The awaiter gives up on j (loop thread; j->tw and j->f already
 * cleared or about to be ignored). */
static void job_give_up(job *j) {
  aioc_executor *ex = j->ex;
  if (j->outbox) {
    /* Never handed to its pool: dropped the same way. */
    j->outbox = false;
    j->lx->noutbox--;
    aioc__list_del(&j->qlink);
    j->rc = -ECANCELED;
    j->state = J_RUNNING;
    job_complete(j);
    return;
  }
  pthread_mutex_lock(&ex->mu);
  switch (j->state) {
  case J_INBOX:
    /* Not even queued: whoever takes the inbox finishes it. */
    j->rc = -ECANCELED;
    j->state = J_DROPPED;
    break;
  case J_QUEUED:
    /* Never started: dropped. Its call finishes it on the loop (so that
     * a future being completed is not freed under its completion). */
    aioc__list_del(&j->qlink);
    ex->nqueued--;
    j->rc = -ECANCELED;
    j->state = J_RUNNING;
    job_complete(j); /* the loop is j->loop: it is never NULL here */
    break;
  case J_RUNNING:
    atomic_store(&j->cancelled, 1);
    j->lx->abandoned++;
    break;
  default: /* done: the outcome goes to the destructor */
    break;
  }
  pthread_mutex_unlock(&ex->mu);
}

/* run_in_executor's future ended before the job did (cancelled, or set
 * by someone): give up the job. */
static void fut_notify(aioc__waiter *w, aioc_future *f) {
  (void)f;
  job *j = aioc__container_of(w, job, fw);
  job_give_up(j);
}

/* The loop closes: settle every job of its own, report the abandoned
 * ones, free the default executor. */
static void lx_abandon(aioc__live *n) {
  loopx *lx = aioc__container_of(n, loopx, live);
  aioc_loop *loop = lx->loop;
  size_t still = 0;
  aioc__defer_cancel(&lx->flush);
  aioc__list *l;
  while ((l = aioc__list_pop_front(&lx->jobs)) != NULL) {
    job *j = aioc__container_of(l, job, link);
    loop->ts_expect--;
    if (j->tw) {
      j->tw->j = NULL;
      j->tw = NULL;
    }
    if (j->outbox) {
      aioc__list_del(&j->qlink);
      job_cancel_future(j);
      job_free(j);
      continue;
    }
    aioc_executor *ex = j->ex;
    pthread_mutex_lock(&ex->mu);
    int state = j->state;
    if (state == J_QUEUED) {
      aioc__list_del(&j->qlink);
      ex->nqueued--;
    }
    if (state == J_RUNNING) {
      /* Its thread frees it when it returns; the loop is no longer its. */
      j->loop = NULL;
      if (!atomic_exchange(&j->cancelled, 1)) still++;
    }
    if (state == J_INBOX || state == J_DROPPED) {
      /* The thread that takes the inbox frees it. */
      j->loop = NULL;
      j->state = J_DROPPED;
    }
    pthread_mutex_unlock(&ex->mu);
    if (state == J_POSTED) continue; /* its call's drop finishes it */
    job_cancel_future(j);
    if (state == J_RUNNING || state == J_INBOX || state == J_DROPPED) continue;
    if (state == J_QUEUED) j->rc = -ECANCELED;
    free_result(j);
    job_free(j);
  }
  size_t total = lx->abandoned + still;
  if (total) {
    char detail[128];
    snprintf(detail, sizeof detail,
             "%zu job%s abandoned while running (%zu still running at close)",
             total, total == 1 ? "" : "s", still);
    aioc_report r = {.message = "Executor jobs were abandoned while running",
                     .detail = detail};
    aioc__report(loop, &r);
  }
  aioc__slot_del(&lx->slot);
  aioc_executor *d = lx->dflt;
  aioc__free(lx);
  aioc_executor_free(d);
}

/* ---- public ---- */

int aioc_run_in_executor(aioc_future **out, aioc_executor *ex, aioc_fn fn,
                         void *arg, const aioc_job_options *opts) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (!fn) return -EINVAL;
  if (ex && !AIOC__ARMOR_OK(ex, AIOC__MAGIC_EXECUTOR, "aioc_run_in_executor",
                            "executor"))
    return -EINVAL;
  aioc_loop *loop = aioc_loop_current();
  if (!loop) return -ENOMEM;
  aioc_future *f;
  int rc = aioc_future_new(&f, loop);
  if (rc < 0) return rc;
  job *j;
  rc = job_new(&j, loop, &ex, fn, arg, opts ? opts->result_free : NULL);
  if (rc < 0) {
    aioc_future_unref(f);
    return rc;
  }
  j->f = aioc_future_ref(f);
  j->fw.notify = fut_notify;
  aioc__future_add_waiter(f, &j->fw);
  rc = job_submit(j);
  if (rc < 0) {
    aioc__future_del_waiter(&j->fw);
    job_unsubmitted(j);
    aioc_future_unref(f);
    aioc_future_unref(f);
    return rc;
  }
  *out = f;
  return 0;
}

static void jobwait_detach(aioc__twait *w) {
  jobwait *tw = aioc__container_of(w, jobwait, tw);
  job *j = tw->j;
  if (!j) return;
  tw->j = NULL;
  j->tw = NULL;
  job_give_up(j);
}

int aioc_to_thread(void **result, aioc_fn fn, void *arg) {
  if (result) *result = NULL;
  if (!fn) return -EINVAL;
  aioc_task *t = aioc__current();
  if (!t) {
    if (aioc__running) return AIOC_ERUNNING;
    /* Plain code: the thread's loop runs until the job is done. */
    aioc_future *f;
    int rc = aioc_run_in_executor(&f, NULL, fn, arg, NULL);
    if (rc < 0) return rc;
    rc = aioc_block_on(f, result);
    aioc_future_unref(f);
    return rc;
  }
  int rc = aioc__task_check(t);
  if (rc) return rc;
  aioc_executor *ex = NULL;
  job *j;
  rc = job_new(&j, t->f.loop, &ex, fn, arg, NULL);
  if (rc < 0) return rc;
  jobwait tw; /* the rest is written by the delivery */
  tw.j = j;
  aioc__twait_init(&tw.tw, t, jobwait_detach, -ETIMEDOUT);
  j->tw = &tw;
  rc = job_submit(j);
  if (rc < 0) {
    job_unsubmitted(j);
    return rc;
  }
  rc = aioc__twait_suspend(&tw.tw);
  if (rc < 0) return rc; /* the detach gave the job up */
  if (tw.msg)
    aioc__task_set_errmsg(t, tw.rc, tw.msg); /* passed on with the code */
  if (result)
    *result = tw.result;
  return tw.rc;
}

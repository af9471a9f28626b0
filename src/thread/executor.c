/* Executors: thread pools running jobs for loops (to_thread,
 * run_in_executor).
 *
 * A job lives between two worlds. Its executor's mutex guards what the
 * threads see (the queue, the state, the loop it reports to); the rest
 * (who awaits it, the loop's list of jobs in flight) belongs to its loop's
 * thread. A job reports back through a thread-safe call allocated when it
 * is submitted, so completing one never needs memory.
 *
 * States, under the executor's mutex:
 *   QUEUED   waiting for a thread; giving up unlinks it and drops it
 *   RUNNING  a thread runs it; giving up raises its cancellation flag and
 *            forgets the awaiter (the loop side does not wait)
 *   POSTED   done, its call queued on the loop: the call (or, if the loop
 *            closes first, the call's drop) finishes it there
 *   ORPHAN   done, but its loop had closed: the loop's abandon frees it
 * A running job whose loop closes is detached (loop NULL): its thread
 * frees it when it returns, touching nothing of the loop.
 *
 * Each loop that used an executor has a record of its own (loopx, in
 * the loop's slot keyed by lx_ops), a live object of the loop: its jobs in flight, its
 * default executor, the count of abandoned jobs. The loop's close runs its
 * abandon, which settles every job, reports the count and frees the
 * default executor. */
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "../task/task.h"

enum { J_QUEUED, J_RUNNING, J_POSTED, J_ORPHAN };

typedef struct jobwait jobwait;
typedef struct loopx loopx;
typedef struct job job;

struct job {
  aioc__list qlink; /* in the executor's queue (mutex) */
  aioc__list link;  /* in its loopx's jobs (loop thread) */
  aioc_executor *ex;
  aioc_fn fn;
  void *arg;
  /* the outcome, written by the thread before POSTED/ORPHAN */
  void *result;
  char *msg;
  int rc;
  int state;        /* mutex */
  atomic_int cancelled;
  aioc_free_fn result_free;
  aioc__tscall *call;
  aioc_loop *loop;  /* mutex; NULL once its loop closed under it */
  /* the loop thread's side */
  loopx *lx;
  aioc_future *f;   /* run_in_executor's future, with its waiter fw */
  aioc__waiter fw;
  jobwait *tw;      /* to_thread's waiting task */
};

/* A thread of the pool: joined at close, or left to end on its own. */
typedef struct wslot {
  pthread_t th;
  aioc_executor *ex;
  bool started, exited;
} wslot;

struct aioc_executor {
  pthread_mutex_t mu;
  pthread_cond_t work; /* idle threads wait here */
  pthread_cond_t gone; /* close waits here for threads to leave */
  aioc__list queue;
  int max, nthreads, nidle, nsignaled, nbusy;
  bool closed;
  /* One idle thread at a time spins briefly before it sleeps: a job
   * submitted meanwhile claims it (spin_claimed) with no futex call on
   * either side. */
  bool spinning;
  atomic_bool spin_claimed;
  atomic_size_t refs; /* the owner, each thread, each job */
  double grace;
  wslot *slots;
  AIOC__ARMOR_FIELD
};

struct loopx {
  aioc__live live;
  aioc__slot slot; /* found by the key &lx_ops */
  aioc_loop *loop;
  aioc__list jobs;
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
  pthread_cond_destroy(&ex->work);
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
  if (!e && (e = pthread_cond_init(&ex->work, NULL)) != 0)
    pthread_mutex_destroy(&ex->mu);
  if (!e && (e = pthread_cond_init(&ex->gone, &ca)) != 0) {
    pthread_cond_destroy(&ex->work);
    pthread_mutex_destroy(&ex->mu);
  }
  pthread_condattr_destroy(&ca);
  if (e) {
    aioc__free(ex->slots);
    aioc__free(ex);
    return -e;
  }
  aioc__list_init(&ex->queue);
  atomic_init(&ex->refs, 1);
  atomic_init(&ex->spin_claimed, false);
  AIOC__ARMOR_SET(ex, AIOC__MAGIC_EXECUTOR);
  *out = ex;
  return 0;
}

/* ---- the threads ---- */

static void job_free(job *j) {
  aioc_executor *ex = j->ex;
  aioc__free(j->msg);
  aioc__free(j);
  ex_unref(ex);
}

static void free_result(job *j) {
  if (j->rc == 0 && j->result && j->result_free) j->result_free(j->result);
  j->result = NULL;
}

/* A job is done (it returned, or was dropped by its executor's close):
 * report it to its loop. Mutex held. Returns true when the caller must
 * free it (its loop closed under it while it ran). */
static bool job_complete(job *j) {
  if (!j->loop) return true;
  /* Before the post: once posted, the loop may free j at any moment. */
  j->state = J_POSTED;
  if (aioc__tscall_post(j->loop, j->call) < 0)
    j->state = J_ORPHAN; /* closed since: its loop's abandon frees it */
  return false;
}

/* The spin before sleeping: a few microseconds, the time for a loop to
 * hand over the next job of a burst (to_thread in a loop of tasks). */
#define SPIN_NS 20000

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}

static void spin_for_work(aioc_executor *ex) {
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (unsigned i = 1;; i++) {
    if (atomic_load_explicit(&ex->spin_claimed, memory_order_acquire)) return;
    cpu_relax();
    if ((i & 63) == 0) {
      clock_gettime(CLOCK_MONOTONIC, &t);
      if ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) >
          SPIN_NS)
        return;
    }
  }
}

static void *worker(void *p) {
  wslot *s = p;
  aioc_executor *ex = s->ex;
  tl_ex = ex;
  pthread_mutex_lock(&ex->mu);
  for (;;) {
    while (aioc__list_is_empty(&ex->queue) && !ex->closed) {
      if (!ex->spinning) {
        ex->spinning = true;
        atomic_store_explicit(&ex->spin_claimed, false, memory_order_relaxed);
        pthread_mutex_unlock(&ex->mu);
        spin_for_work(ex);
        pthread_mutex_lock(&ex->mu);
        ex->spinning = false;
        if (!aioc__list_is_empty(&ex->queue) || ex->closed) break;
      }
      ex->nidle++;
      pthread_cond_wait(&ex->work, &ex->mu);
      ex->nidle--;
      if (ex->nsignaled) ex->nsignaled--;
    }
    aioc__list *l = aioc__list_pop_front(&ex->queue);
    if (!l) break; /* closed, nothing left */
    job *j = aioc__container_of(l, job, qlink);
    j->state = J_RUNNING;
    ex->nbusy++;
    pthread_mutex_unlock(&ex->mu);

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

    pthread_mutex_lock(&ex->mu);
    ex->nbusy--;
    if (job_complete(j)) {
      /* Its loop is gone: nobody takes the result. */
      pthread_mutex_unlock(&ex->mu);
      free_result(j);
      aioc__free(j->call);
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

/* Starts one more thread. Mutex held. */
static int start_thread(aioc_executor *ex) {
  wslot *s = NULL;
  for (int i = 0; i < ex->max; i++)
    if (!ex->slots[i].started) {
      s = &ex->slots[i];
      break;
    }
  if (!s) return -EAGAIN;
  s->ex = ex;
  atomic_fetch_add(&ex->refs, 1);
  int e = pthread_create(&s->th, NULL, worker, s);
  if (e) {
    atomic_fetch_sub(&ex->refs, 1);
    return -e;
  }
  s->started = true;
  ex->nthreads++;
  return 0;
}

/* Queues j. Returns 0, -ESHUTDOWN or a thread error when no thread runs. */
static int submit(aioc_executor *ex, job *j) {
  pthread_mutex_lock(&ex->mu);
  if (ex->closed) {
    pthread_mutex_unlock(&ex->mu);
    return -ESHUTDOWN;
  }
  bool spinner = ex->spinning && !atomic_load_explicit(&ex->spin_claimed,
                                                       memory_order_relaxed);
  if (!spinner && ex->nidle <= ex->nsignaled && ex->nthreads < ex->max) {
    int rc = start_thread(ex);
    if (rc < 0 && ex->nthreads == 0) {
      pthread_mutex_unlock(&ex->mu);
      return rc;
    }
  }
  j->state = J_QUEUED;
  aioc__list_push_back(&ex->queue, &j->qlink);
  if (spinner) {
    atomic_store_explicit(&ex->spin_claimed, true, memory_order_release);
  } else if (ex->nidle > ex->nsignaled) {
    ex->nsignaled++;
    pthread_cond_signal(&ex->work);
  }
  pthread_mutex_unlock(&ex->mu);
  return 0;
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
  if (ex->closed) {
    pthread_mutex_unlock(&ex->mu);
    return AIOC_ECLOSED;
  }
  ex->closed = true;
  /* Jobs not started are dropped: their awaiters learn it from their
   * loops. Freeing one whose loop closed is left for after the lock. */
  aioc__list dead;
  aioc__list_init(&dead);
  aioc__list *l;
  while ((l = aioc__list_pop_front(&ex->queue)) != NULL) {
    job *j = aioc__container_of(l, job, qlink);
    j->rc = -ESHUTDOWN;
    j->state = J_RUNNING; /* as if a thread had taken it */
    if (job_complete(j)) aioc__list_push_back(&dead, &j->qlink);
  }
  pthread_cond_broadcast(&ex->work);
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
    aioc__free(j->call);
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

static loopx *loopx_get(aioc_loop *loop) {
  aioc__slot *sl = aioc__slot_find(loop, &lx_ops);
  if (sl) return aioc__container_of(sl, loopx, slot);
  loopx *lx;
  lx = aioc__calloc(1, sizeof *lx);
  if (!lx) return NULL;
  lx->loop = loop;
  aioc__list_init(&lx->jobs);
  aioc__live_add(loop, &lx->live, &lx_ops);
  aioc__slot_add(loop, &lx->slot, &lx_ops);
  return lx;
}

static void job_done(void *p);
static void job_drop(void *p);

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
  job *j = aioc__calloc(1, sizeof *j);
  if (!j) return -ENOMEM;
  j->call = aioc__tscall_new(job_done, job_drop, j);
  if (!j->call) {
    aioc__free(j);
    return -ENOMEM;
  }
  j->ex = *pex;
  j->fn = fn;
  j->arg = arg;
  j->result_free = result_free;
  j->loop = loop;
  j->lx = lx;
  aioc__list_init(&j->link);
  *out = j;
  return 0;
}

/* Submits j and links it to its loop. */
static int job_submit(job *j) {
  aioc_executor *ex = j->ex;
  atomic_fetch_add(&ex->refs, 1); /* held by j from here (job_free) */
  int rc = submit(ex, j);
  if (rc == 0) aioc__list_push_back(&j->lx->jobs, &j->link);
  return rc;
}

/* A job that could not be submitted. */
static void job_unsubmitted(job *j) {
  aioc__free(j->call);
  job_free(j);
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

/* The job's call, on its loop's thread. */
static void job_done(void *p) {
  job *j = p;
  aioc__list_del(&j->link);
  job_deliver(j);
  job_free(j); /* the call frees itself */
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

/* The loop closed before the call could run (the loop's abandon has
 * already let go of the awaiters). */
static void job_drop(void *p) {
  job *j = p;
  aioc__list_del(&j->link);
  if (j->tw) {
    j->tw->j = NULL;
    j->tw = NULL;
  }
  job_cancel_future(j);
  free_result(j);
  job_free(j);
}

/* The awaiter gives up on j (loop thread; j->tw and j->f already
 * cleared or about to be ignored). */
static void job_give_up(job *j) {
  aioc_executor *ex = j->ex;
  pthread_mutex_lock(&ex->mu);
  switch (j->state) {
  case J_QUEUED:
    /* Never started: dropped. Its call finishes it on the loop (so that
     * a future being completed is not freed under its completion). */
    aioc__list_del(&j->qlink);
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
  aioc__list *l;
  while ((l = aioc__list_pop_front(&lx->jobs)) != NULL) {
    job *j = aioc__container_of(l, job, link);
    if (j->tw) {
      j->tw->j = NULL;
      j->tw = NULL;
    }
    aioc_executor *ex = j->ex;
    pthread_mutex_lock(&ex->mu);
    int state = j->state;
    if (state == J_QUEUED) aioc__list_del(&j->qlink);
    if (state == J_RUNNING) {
      /* Its thread frees it when it returns; the loop is no longer its. */
      j->loop = NULL;
      if (!atomic_exchange(&j->cancelled, 1)) still++;
    }
    pthread_mutex_unlock(&ex->mu);
    if (state == J_POSTED) continue; /* its call's drop finishes it */
    job_cancel_future(j);
    if (state == J_RUNNING) continue;
    if (state == J_QUEUED) j->rc = -ECANCELED;
    free_result(j);
    aioc__free(j->call);
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
  jobwait tw = {.j = j};
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

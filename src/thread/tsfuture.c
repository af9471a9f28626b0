/* run_coroutine_threadsafe: a task spawned on a loop from another thread,
 * and the thread-safe future of its outcome.
 *
 * Everything the submitting thread may touch is under the future's mutex.
 * Two thread-safe calls are allocated up front: the spawn, posted at once,
 * and the cancellation, posted by aioc_tsfuture_cancel(); so cancelling
 * never fails for lack of memory. On the loop, a waiter on the task's
 * future (notified synchronously, even when the closing loop abandons the
 * task) copies the outcome over. References: the caller's, the loop
 * side's (until the outcome is in), and a posted cancellation's. */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "../task/task.h"

struct aioc_tsfuture {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int refs;
  bool done, taken, cancel_asked;
  int rc;
  void *result;
  char *msg;
  aioc_free_fn result_free;
  /* the spawn's inputs, used once on the loop's thread */
  aioc_loop *loop;
  aioc_fn fn;
  void *arg;
  char *name;
  size_t stack_size;
  aioc__tscall *cancel_call; /* until posted (or freed) */
  /* the loop's side */
  aioc_task *task;
  aioc__waiter tw;
  AIOC__ARMOR_FIELD
};

static void destroy(aioc_tsfuture *f) {
  if (f->done && f->rc == 0 && !f->taken && f->result && f->result_free)
    f->result_free(f->result);
  aioc__free(f->msg);
  aioc__free(f->name);
  aioc__free(f->cancel_call);
  pthread_cond_destroy(&f->cv);
  pthread_mutex_destroy(&f->mu);
  AIOC__ARMOR_SET(f, AIOC__MAGIC_DEAD);
  aioc__free(f);
}

/* Drops a reference with the mutex held, and unlocks. */
static void unlock_unref(aioc_tsfuture *f) {
  bool last = --f->refs == 0;
  pthread_mutex_unlock(&f->mu);
  if (last) destroy(f);
}

/* The outcome is in; the loop side lets go. */
static void complete(aioc_tsfuture *f, int rc, void *result, char *msg) {
  pthread_mutex_lock(&f->mu);
  f->done = true;
  f->rc = rc;
  f->result = result;
  f->msg = msg;
  pthread_cond_broadcast(&f->cv);
  unlock_unref(f);
}

/* The task ended (ran, failed, cancelled, or abandoned by its loop). */
static void task_notify(aioc__waiter *w, aioc_future *tf) {
  aioc_tsfuture *f = aioc__container_of(w, aioc_tsfuture, tw);
  void *result = NULL;
  int rc = aioc__future_take(tf, &result, NULL);
  char *msg = rc < 0 && tf->ext && tf->ext->msg ? aioc__strdup(tf->ext->msg)
                                               : NULL;
  /* The loop holds its own reference while a task ends: this is not the
   * last. */
  aioc_task *t = f->task;
  f->task = NULL;
  aioc_task_unref(t);
  complete(f, rc, result, msg);
}

static void spawn_cb(void *arg) {
  aioc_tsfuture *f = arg;
  pthread_mutex_lock(&f->mu);
  bool cancelled = f->cancel_asked;
  pthread_mutex_unlock(&f->mu);
  if (cancelled) {
    complete(f, -ECANCELED, NULL, NULL);
    return;
  }
  aioc_task_options o = {.name = f->name,
                         .stack_size = f->stack_size,
                         .result_free = f->result_free};
  aioc_task *t;
  int rc = aioc_spawn_ex(&t, f->loop, f->fn, f->arg, &o);
  if (rc < 0) {
    complete(f, rc, NULL, aioc__strdup("cannot spawn the task"));
    return;
  }
  f->task = t;
  f->tw.notify = task_notify;
  aioc__future_add_waiter(&t->f, &f->tw);
}

/* The loop closed before the spawn could run. */
static void spawn_drop(void *arg) {
  complete(arg, AIOC_ECLOSED, NULL, NULL);
}

static void cancel_cb(void *arg) {
  aioc_tsfuture *f = arg;
  if (f->task) aioc_task_cancel(f->task, "cancelled by aioc_tsfuture_cancel");
  pthread_mutex_lock(&f->mu);
  unlock_unref(f);
}

static void cancel_drop(void *arg) {
  aioc_tsfuture *f = arg;
  pthread_mutex_lock(&f->mu);
  unlock_unref(f);
}

int aioc_run_coroutine_threadsafe(aioc_tsfuture **out, aioc_loop *loop,
                                  aioc_fn fn, void *arg,
                                  const aioc_task_options *opts) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (!loop || !fn ||
      !AIOC__ARMOR_OK(loop, AIOC__MAGIC_LOOP, "aioc_run_coroutine_threadsafe",
                      "loop"))
    return -EINVAL;
  aioc_tsfuture *f = aioc__calloc(1, sizeof *f);
  if (!f) return -ENOMEM;
  f->loop = loop;
  f->fn = fn;
  f->arg = arg;
  f->refs = 2; /* the caller's, the loop side's */
  if (opts) {
    f->stack_size = opts->stack_size;
    f->result_free = opts->result_free;
  }
  aioc__tscall *spawn = aioc__tscall_new(spawn_cb, spawn_drop, f);
  f->cancel_call = aioc__tscall_new(cancel_cb, cancel_drop, f);
  int rc = -ENOMEM;
  if (!spawn || !f->cancel_call ||
      (opts && opts->name && !(f->name = aioc__strdup(opts->name))))
    goto fail;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  int e = pthread_mutex_init(&f->mu, NULL);
  if (!e && (e = pthread_cond_init(&f->cv, &ca)) != 0)
    pthread_mutex_destroy(&f->mu);
  pthread_condattr_destroy(&ca);
  if (e) {
    rc = -e;
    goto fail;
  }
  AIOC__ARMOR_SET(f, AIOC__MAGIC_TSFUTURE);
  rc = aioc__tscall_post(loop, spawn);
  if (rc < 0) {
    aioc__free(spawn);
    f->refs = 1;
    destroy(f);
    return rc;
  }
  *out = f;
  return 0;
fail:
  aioc__free(spawn);
  aioc__free(f->cancel_call);
  aioc__free(f->name);
  aioc__free(f);
  return rc;
}

#define TSF_OK(f, fn) AIOC__ARMOR_OK(f, AIOC__MAGIC_TSFUTURE, fn, "tsfuture")

int aioc_tsfuture_wait(aioc_tsfuture *f, void **result, double timeout) {
  if (result) *result = NULL;
  if (!f || !TSF_OK(f, "aioc_tsfuture_wait") || !(timeout >= 0))
    return -EINVAL;
  pthread_mutex_lock(&f->mu);
  if (!f->done && timeout > 0) {
    if (aioc__running) {
      pthread_mutex_unlock(&f->mu);
      return AIOC_ERUNNING;
    }
    if (timeout > 1e9) {
      while (!f->done) pthread_cond_wait(&f->cv, &f->mu);
    } else {
      struct timespec dl;
      clock_gettime(CLOCK_MONOTONIC, &dl);
      time_t whole = (time_t)timeout;
      long ns = dl.tv_nsec + (long)((timeout - (double)whole) * 1e9);
      dl.tv_sec += whole + ns / 1000000000L;
      dl.tv_nsec = ns % 1000000000L;
      while (!f->done)
        if (pthread_cond_timedwait(&f->cv, &f->mu, &dl) == ETIMEDOUT) break;
    }
  }
  int rc = -ETIMEDOUT;
  if (f->done) {
    rc = f->rc;
    if (rc == 0 && result && !f->taken) {
      *result = f->result;
      f->taken = true;
    }
  }
  pthread_mutex_unlock(&f->mu);
  return rc;
}

int aioc_tsfuture_cancel(aioc_tsfuture *f) {
  if (!f || !TSF_OK(f, "aioc_tsfuture_cancel")) return -EINVAL;
  pthread_mutex_lock(&f->mu);
  if (f->done || f->cancel_asked) {
    pthread_mutex_unlock(&f->mu);
    return 0;
  }
  f->cancel_asked = true;
  aioc__tscall *c = f->cancel_call;
  f->cancel_call = NULL;
  f->refs++; /* the posted call's */
  if (aioc__tscall_post(f->loop, c) < 0) {
    /* The loop is closing: its close ends the task (or drops the spawn)
     * all the same. */
    f->refs--;
    aioc__free(c);
  }
  pthread_mutex_unlock(&f->mu);
  return 1;
}

int aioc_tsfuture_is_done(const aioc_tsfuture *f) {
  if (!f || !TSF_OK(f, "aioc_tsfuture_is_done")) return 0;
  aioc_tsfuture *m = (aioc_tsfuture *)f;
  pthread_mutex_lock(&m->mu);
  int d = m->done;
  pthread_mutex_unlock(&m->mu);
  return d;
}

const char *aioc_tsfuture_error_message(const aioc_tsfuture *f) {
  if (!f || !TSF_OK(f, "aioc_tsfuture_error_message")) return NULL;
  aioc_tsfuture *m = (aioc_tsfuture *)f;
  pthread_mutex_lock(&m->mu);
  const char *msg = m->done ? m->msg : NULL;
  pthread_mutex_unlock(&m->mu);
  return msg;
}

void aioc_tsfuture_free(aioc_tsfuture *f) {
  if (!f || !TSF_OK(f, "aioc_tsfuture_free")) return;
  pthread_mutex_lock(&f->mu);
  unlock_unref(f);
}

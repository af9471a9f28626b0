/* Thread-safe calls and stop: the only entry points other threads may
 * use. A call is allocated by the caller and queued as it is, so
 * draining allocates nothing; the eventfd is written only when the loop
 * announced it may sleep. */
#include <unistd.h>

#include "loop.h"

static void wake(aioc_loop *loop) {
  uint64_t one = 1;
  ssize_t r = write(loop->evfd, &one, sizeof one);
  (void)r;
}

static void tscall_run(aioc__runnable *r);

int aioc_call_soon_threadsafe(aioc_loop *loop, aioc_callback cb, void *arg) {
  if (loop && !AIOC__LOOP_OK(loop, "aioc_call_soon_threadsafe"))
    return -EINVAL;
  return aioc__call_soon_threadsafe_ex(loop, cb, NULL, arg);
}

int aioc__call_soon_threadsafe_ex(aioc_loop *loop, aioc_callback cb,
                                  aioc_callback drop, void *arg) {
  if (!loop || !cb) return -EINVAL;
  aioc__tscall *c = aioc__tscall_new(cb, drop, arg);
  if (!c) return -ENOMEM;
  int rc = aioc__tscall_post(loop, c);
  if (rc < 0) aioc__free(c);
  return rc;
}

aioc__tscall *aioc__tscall_new(aioc_callback cb, aioc_callback drop,
                               void *arg) {
  aioc__tscall *c = aioc__alloc(sizeof *c);
  if (!c) return NULL;
  c->rq.run = tscall_run;
  c->loop = NULL;
  c->cb = cb;
  c->drop = drop;
  c->arg = arg;
  return c;
}

int aioc__tscall_post(aioc_loop *loop, aioc__tscall *c) {
  c->next = NULL;
  c->loop = loop;
  pthread_mutex_lock(&loop->ts_lock);
  if (loop->closed) {
    pthread_mutex_unlock(&loop->ts_lock);
    return AIOC_ECLOSED;
  }
  if (loop->ts_tail)
    loop->ts_tail->next = c;
  else
    loop->ts_head = c;
  loop->ts_tail = c;
  atomic_store(&loop->ts_pending, true);
  /* Only a loop that may sleep needs the eventfd (see poll.c for the
   * fence). Still under the lock: aioc_loop_close() takes it before
   * closing the eventfd. */
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_load(&loop->polling)) wake(loop);
  pthread_mutex_unlock(&loop->ts_lock);
  return 0;
}

static void tscall_run(aioc__runnable *r) {
  aioc__tscall *c = aioc__container_of(r, aioc__tscall, rq);
  if (!c->loop->closed)
    c->cb(c->arg);
  else if (c->drop)
    c->drop(c->arg);
  aioc__free(c);
}

void aioc__drain_threadsafe(aioc_loop *loop) {
  pthread_mutex_lock(&loop->ts_lock);
  aioc__tscall *c = loop->ts_head;
  loop->ts_head = loop->ts_tail = NULL;
  atomic_store(&loop->ts_pending, false);
  pthread_mutex_unlock(&loop->ts_lock);
  /* Each runs in this iteration, after what is already ready; nothing is
   * allocated here, so nothing can be dropped for lack of memory. */
  while (c) {
    aioc__tscall *next = c->next;
    aioc__ready_push(loop, &c->rq);
    c = next;
  }
}

int aioc_loop_stop(aioc_loop *loop) {
  if (!loop || !AIOC__LOOP_OK(loop, "aioc_loop_stop")) return -EINVAL;
  /* The loop re-checks `stopping` after announcing it may sleep. The lock
   * keeps the eventfd open while we write to it. */
  pthread_mutex_lock(&loop->ts_lock);
  atomic_store(&loop->stopping, true);
  atomic_thread_fence(memory_order_seq_cst); /* see aioc__tscall_post() */
  if (!loop->closed && atomic_load(&loop->polling)) wake(loop);
  pthread_mutex_unlock(&loop->ts_lock);
  return 0;
}

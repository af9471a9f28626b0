/* Thread-safe calls and stop: the only entry points other threads may
 * use. A call is allocated by the caller (or is part of its record) and
 * pushed as it is on a lock-free stack that the loop takes whole, so
 * neither side allocates or locks. The eventfd is written only when the
 * loop announced it may sleep, and once per sleep whatever the number of
 * posters. */
#include <sched.h>
#include <unistd.h>

#include "loop.h"

static void wake(aioc_loop *loop) {
  uint64_t one = 1;
  ssize_t r = write(loop->evfd, &one, sizeof one);
  (void)r;
}

/* A poster is inside while it may touch the loop; the close waits for
 * every one to leave before it closes the eventfd (and before the loop
 * can be freed), so a call may run, and its loop close, the moment it is
 * pushed. Seq_cst: the close's mark on the stack, then its look at the
 * count, against a poster's count, then its look at the stack. */
static inline void posting_enter(aioc_loop *loop) {
  atomic_fetch_add(&loop->ts_posting, 1);
}

static inline void posting_leave(aioc_loop *loop) {
  atomic_fetch_sub_explicit(&loop->ts_posting, 1, memory_order_release);
}

/* After a push or a stop: wakes the loop if it may be asleep. */
static void wake_if_polling(aioc_loop *loop) {
  /* The push above and the load below must not be reordered (the loop
   * does the mirror image, see poll.c): an explicit full fence, since
   * some emulators give sequentially consistent stores and loads only
   * release/acquire order. */
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_load(&loop->polling) && !atomic_exchange(&loop->ts_woken, true))
    wake(loop);
}

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

static void tscall_run(aioc__runnable *r);

aioc__tscall *aioc__tscall_new(aioc_callback cb, aioc_callback drop,
                               void *arg) {
  aioc__tscall *c = aioc__alloc(sizeof *c);
  if (!c) return NULL;
  c->node.rq.run = tscall_run;
  c->loop = NULL;
  c->cb = cb;
  c->drop = drop;
  c->arg = arg;
  return c;
}

int aioc__tscall_post(aioc_loop *loop, aioc__tscall *c) {
  c->loop = loop;
  return aioc__post(loop, &c->node);
}

static void tscall_run(aioc__runnable *r) {
  aioc__tscall *c = aioc__container_of(r, aioc__tscall, node.rq);
  if (!c->loop->closed)
    c->cb(c->arg);
  else if (c->drop)
    c->drop(c->arg);
  aioc__free(c);
}

int aioc__post(aioc_loop *loop, aioc__posted *p) {
  posting_enter(loop);
  aioc__posted *h = atomic_load_explicit(&loop->ts_head, memory_order_relaxed);
  do {
    if (h == AIOC__TS_CLOSED) {
      posting_leave(loop);
      return AIOC_ECLOSED;
    }
    p->next = h;
  } while (!atomic_compare_exchange_weak_explicit(&loop->ts_head, &h, p,
                                                  memory_order_release,
                                                  memory_order_relaxed));
  wake_if_polling(loop);
  posting_leave(loop);
  return 0;
}

/* The stack, oldest first. */
static aioc__posted *reverse(aioc__posted *p) {
  aioc__posted *out = NULL;
  while (p) {
    aioc__posted *next = p->next;
    p->next = out;
    out = p;
    p = next;
  }
  return out;
}

void aioc__drain_threadsafe(aioc_loop *loop) {
  aioc__posted *p =
      atomic_exchange_explicit(&loop->ts_head, NULL, memory_order_acquire);
  if (!p) return;
  /* Each runs in this iteration, after what is already ready; nothing is
   * allocated here, so nothing can be dropped for lack of memory. */
  for (p = reverse(p); p;) {
    aioc__posted *next = p->next;
    aioc__ready_push(loop, &p->rq);
    p = next;
  }
}

aioc__posted *aioc__post_close(aioc_loop *loop) {
  aioc__posted *p = atomic_exchange(&loop->ts_head, AIOC__TS_CLOSED);
  /* Posters that saw the stack open may still read the loop or write
   * the eventfd: a few instructions each. */
  for (unsigned i = 1; atomic_load(&loop->ts_posting) != 0; i++) {
    aioc__cpu_relax();
    if ((i & 63) == 0) sched_yield(); /* one may have lost its CPU */
  }
  return reverse(p);
}

void aioc__post_drop_all(aioc__posted *p) {
  while (p) {
    aioc__posted *next = p->next;
    p->rq.run(&p->rq); /* the loop is closed: it releases, runs nothing */
    p = next;
  }
}

int aioc_loop_stop(aioc_loop *loop) {
  if (!loop || !AIOC__LOOP_OK(loop, "aioc_loop_stop")) return -EINVAL;
  /* The loop re-checks `stopping` after announcing it may sleep; being a
   * poster keeps the eventfd open while we write to it. */
  posting_enter(loop);
  atomic_store(&loop->stopping, true);
  if (atomic_load(&loop->ts_head) != AIOC__TS_CLOSED) {
    /* Not through ts_woken: a stop always writes when the loop polls. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load(&loop->polling)) wake(loop);
  }
  posting_leave(loop);
  return 0;
}

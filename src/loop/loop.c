/* The event loop: ready queue, timers, epoll, thread-safe wake-up, clock.
 *
 * One iteration: drain thread-safe calls, poll I/O (only when it can
 * matter: fds registered, or nothing else to do), move expired timers to
 * the ready queue, then run the items that were ready when the batch began
 * (newly scheduled ones wait for the next iteration, as in asyncio). */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

AIOC_TLS aioc_loop *aioc__running;
void (*aioc__live_abandon)(aioc__live *n);
void (*aioc__shutdown_gens)(aioc_loop *loop);
static __thread aioc_loop *thread_current;
/* The loop aioc_loop_current() created for this thread: the thread owns
 * it, and a thread-specific key frees it when the thread exits. */
static __thread aioc_loop *thread_owned;
static pthread_key_t owned_key;
static pthread_once_t owned_once = PTHREAD_ONCE_INIT;

AIOC_HIDDEN size_t aioc__timers_fire(aioc_loop *loop, int64_t now);

/* ---- clock ---- */

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t aioc__now(aioc_loop *loop) {
  /* Cached only within an iteration: outside a run, time is read fresh. */
  if ((!loop->now_valid || !loop->running) && !loop->virtual_clock) {
    loop->now = mono_ns();
    loop->now_valid = true;
  }
  return loop->now;
}

int64_t aioc__deadline_at(double when) {
  if (!(when < 9.2e9)) return AIOC__NEVER; /* also inf */
  if (when < -9.2e9) return INT64_MIN + 1;
  return (int64_t)llround(when * 1e9);
}

int64_t aioc__deadline_after(aioc_loop *loop, double seconds) {
  /* A relative deadline counts from now, not from the start of a long
   * iteration: sleep(1) must not end early. The cache is refreshed. */
  if (!loop->virtual_clock) {
    loop->now = mono_ns();
    loop->now_valid = true;
  }
  int64_t now = loop->now;
  if (!(seconds < 9.2e9)) return AIOC__NEVER;
  int64_t d = (int64_t)(seconds * 1e9 + 0.5); /* nearest ns */
  if (d > AIOC__NEVER - now) return AIOC__NEVER;
  return now + d;
}

double aioc_loop_time(aioc_loop *loop) {
  if (!loop) return 0;
  return (double)aioc__now(loop) / 1e9;
}

double aioc_time(void) {
  aioc_loop *loop = aioc__running ? aioc__running : thread_current;
  return loop ? aioc_loop_time(loop) : 0;
}

/* ---- creation, lifetime ---- */

int aioc_loop_new(aioc_loop **out, const aioc_loop_options *opts) {
  if (!out) return -EINVAL;
  *out = NULL;
  aioc_loop *loop = aioc__calloc(1, sizeof *loop);
  if (!loop) return -ENOMEM;
  loop->epfd = epoll_create1(EPOLL_CLOEXEC);
  loop->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (loop->epfd < 0 || loop->evfd < 0) {
    int err = -errno;
    if (loop->epfd >= 0) close(loop->epfd);
    if (loop->evfd >= 0) close(loop->evfd);
    aioc__free(loop);
    return err;
  }
  /* Events carry the fd, looked up at delivery (a callback may remove
   * another fd's registration in the same poll); the eventfd is marked. */
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
  epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->evfd, &ev);
  pthread_mutex_init(&loop->ts_lock, NULL);
  loop->refs = 1;
  loop->stack_stride = aioc__stack_stride(opts ? opts->stack_size : 0);
  loop->virtual_clock = opts && opts->virtual_clock;
  loop->quiet = opts && opts->quiet;
  loop->live.next = loop->live.prev = &loop->live;
  loop->gens.next = loop->gens.prev = &loop->gens;
  aioc__overflow_install();
  *out = loop;
  return 0;
}

void aioc__loop_free(aioc_loop *loop) {
  pthread_mutex_destroy(&loop->ts_lock);
  aioc__free(loop);
}

int aioc_loop_close(aioc_loop *loop) {
  if (!loop) return -EINVAL;
  if (loop->closed) return AIOC_ECLOSED;
  if (loop->running) return AIOC_ERUNNING;
  /* Generators left unfinished run their cleanup first (asyncio's
   * shutdown_asyncgens). */
  if (loop->ngens && aioc__shutdown_gens) aioc__shutdown_gens(loop);
  pthread_mutex_lock(&loop->ts_lock);
  loop->closed = true;
  pthread_mutex_unlock(&loop->ts_lock);
  /* Tasks that can no longer run: each reports itself and ends cancelled.
   * Abandoning one may schedule others (its waiters), which are dropped
   * with the ready queue below. */
  while (loop->live.next != &loop->live) {
    aioc__live *n = loop->live.next;
    aioc__live_del(n);
    aioc__live_abandon(n);
  }
  /* Callbacks never run: drop them. Every runnable (and task step)
   * checks loop->closed and only cleans up; tasks that never started
   * report themselves there. */
  uintptr_t e;
  while ((e = aioc__ready_pop(loop)) != 0) aioc__ready_run(e);
  while (loop->nheap) {
    aioc__timer *t = loop->heap[0].t;
    aioc__timer_disarm(loop, t);
    t->fire(loop, t); /* fired on a closed loop: owners clean up */
    while ((e = aioc__ready_pop(loop)) != 0) aioc__ready_run(e);
  }
  aioc__free(loop->heap);
  loop->heap = NULL;
  pthread_mutex_lock(&loop->ts_lock);
  aioc__tscall *c = loop->ts_head;
  loop->ts_head = loop->ts_tail = NULL;
  close(loop->epfd);
  close(loop->evfd);
  pthread_mutex_unlock(&loop->ts_lock);
  for (size_t i = 0; i < loop->nio; i++) aioc__free(loop->io[i]);
  aioc__free(loop->io);
  loop->io = NULL;
  loop->nio = loop->nfds = 0;
  while (c) {
    aioc__tscall *next = c->next;
    if (c->drop) c->drop(c->arg);
    aioc__free(c);
    c = next;
  }
  if (thread_current == loop) thread_current = NULL;
  aioc__stack_trim(64);
  return 0;
}

void aioc_loop_free(aioc_loop *loop) {
  if (!loop) return;
  if (loop->running) {
    fprintf(stderr, "aioc_loop_free: the loop is running; not freed\n");
    return;
  }
  if (!loop->closed) aioc_loop_close(loop);
  if (thread_owned == loop) {
    thread_owned = NULL;
    pthread_setspecific(owned_key, NULL);
  }
  if (thread_current == loop) thread_current = NULL;
  aioc__loop_unref(loop);
}

static void owned_exit(void *p) {
  if (p == thread_owned) aioc_loop_free(p);
}

static int owned_key_rc;
static void owned_key_make(void) {
  owned_key_rc = pthread_key_create(&owned_key, owned_exit);
}

aioc_loop *aioc_get_running_loop(void) {
  return aioc__running;
}

aioc_loop *aioc_loop_current(void) {
  if (aioc__running) return aioc__running;
  if (thread_current) return thread_current;
  if (thread_owned && !thread_owned->closed)
    return thread_current = thread_owned;
  /* A closed implicit loop is replaced (it was the thread's to free). */
  aioc_loop_free(thread_owned);
  aioc_loop *loop;
  if (aioc_loop_new(&loop, NULL) < 0) return NULL;
  pthread_once(&owned_once, owned_key_make);
  if (owned_key_rc != 0 || pthread_setspecific(owned_key, loop) != 0) {
    aioc_loop_free(loop);
    return NULL;
  }
  thread_owned = thread_current = loop;
  return loop;
}

int aioc_loop_set_current(aioc_loop *loop) {
  if (loop && loop->closed) return AIOC_ECLOSED;
  thread_current = loop;
  return 0;
}

int aioc_loop_is_running(const aioc_loop *loop) {
  return loop && loop->running;
}

int aioc_loop_is_closed(const aioc_loop *loop) { return loop && loop->closed; }

/* ---- handles ---- */

struct aioc_handle {
  aioc__runnable rq;
  aioc__timer tm;
  aioc_loop *loop;
  aioc_callback cb;
  void *arg;
  uint32_t refs;
  bool cancelled, ran;
};

static void handle_unref(aioc_handle *h) {
  if (--h->refs) return;
  aioc_loop *loop = h->loop;
  aioc__free(h);
  aioc__loop_unref(loop);
}

static void handle_run(aioc__runnable *r) {
  aioc_handle *h = aioc__container_of(r, aioc_handle, rq);
  if (!h->cancelled && !h->loop->closed) {
    h->ran = true;
    h->cb(h->arg);
  }
  handle_unref(h);
}

static void handle_fire(aioc_loop *loop, aioc__timer *t) {
  aioc_handle *h = aioc__container_of(t, aioc_handle, tm);
  aioc__ready_push(loop, &h->rq);
}

static int schedule(aioc_loop *loop, int64_t when, aioc_callback cb,
                    void *arg, aioc_handle **out) {
  if (out) *out = NULL;
  if (!loop || !cb) return -EINVAL;
  if (loop->closed) return AIOC_ECLOSED;
  aioc_handle *h = aioc__alloc(sizeof *h);
  if (!h) return -ENOMEM;
  h->loop = loop;
  h->cb = cb;
  h->arg = arg;
  h->refs = out ? 2 : 1;
  h->cancelled = h->ran = false;
  h->rq.run = handle_run;
  aioc__timer_init(&h->tm, handle_fire);
  if (when == INT64_MIN) {
    aioc__ready_push(loop, &h->rq);
  } else if (aioc__timer_arm(loop, &h->tm, when) < 0) {
    aioc__free(h);
    return -ENOMEM;
  }
  aioc__loop_ref(loop);
  if (out) *out = h;
  return 0;
}

int aioc_call_soon(aioc_handle **out, aioc_loop *loop, aioc_callback cb,
                   void *arg) {
  return schedule(loop, INT64_MIN, cb, arg, out);
}

int aioc_call_later(aioc_handle **out, aioc_loop *loop, double delay,
                    aioc_callback cb, void *arg) {
  if (out) *out = NULL;
  if (isnan(delay) || delay < 0 || isinf(delay)) return -EINVAL;
  if (!loop) return -EINVAL;
  return schedule(loop, aioc__deadline_after(loop, delay), cb, arg, out);
}

int aioc_call_at(aioc_handle **out, aioc_loop *loop, double when,
                 aioc_callback cb, void *arg) {
  if (out) *out = NULL;
  if (isnan(when) || isinf(when)) return -EINVAL;
  int64_t w = aioc__deadline_at(when);
  if (w == INT64_MIN) w++;
  return schedule(loop, w, cb, arg, out);
}

int aioc_handle_cancel(aioc_handle *h) {
  if (!h) return -EINVAL;
  if (h->cancelled || h->ran) return 0;
  h->cancelled = true;
  if (h->tm.idx != AIOC__NOTIMER) {
    aioc__timer_disarm(h->loop, &h->tm);
    handle_unref(h); /* the loop's reference: it will never run */
  }
  return 1;
}

int aioc_handle_is_cancelled(const aioc_handle *h) {
  return h && h->cancelled;
}

void aioc_handle_unref(aioc_handle *h) {
  if (h) handle_unref(h);
}

/* ---- thread-safe calls ---- */

static void wake(aioc_loop *loop) {
  uint64_t one = 1;
  ssize_t r = write(loop->evfd, &one, sizeof one);
  (void)r;
}

static void tscall_run(aioc__runnable *r);

int aioc_call_soon_threadsafe(aioc_loop *loop, aioc_callback cb, void *arg) {
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
  /* Only a loop that may sleep needs the eventfd. Still under the lock:
   * aioc_loop_close() takes it before closing the eventfd. */
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

static void drain_threadsafe(aioc_loop *loop) {
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
  if (!loop) return -EINVAL;
  /* The loop re-checks `stopping` after announcing it may sleep. The lock
   * keeps the eventfd open while we write to it. */
  pthread_mutex_lock(&loop->ts_lock);
  atomic_store(&loop->stopping, true);
  if (!loop->closed && atomic_load(&loop->polling)) wake(loop);
  pthread_mutex_unlock(&loop->ts_lock);
  return 0;
}

/* ---- poller ---- */

typedef struct aioc__ioreg {
  aioc__io_fn fn;
  void *arg;
  int fd;
} io_reg;

int aioc__poll_add(aioc_loop *loop, int fd, uint32_t events, aioc__io_fn fn,
                   void *arg) {
  if (!loop || fd < 0 || !fn) return -EINVAL;
  if ((size_t)fd >= loop->nio) {
    size_t n = loop->nio ? loop->nio : 64;
    while (n <= (size_t)fd) n *= 2;
    io_reg **v = aioc__realloc(loop->io, n * sizeof *v);
    if (!v) return -ENOMEM;
    for (size_t i = loop->nio; i < n; i++) v[i] = NULL;
    loop->io = v;
    loop->nio = n;
  }
  io_reg *r = loop->io[fd];
  bool fresh = !r;
  if (fresh && !(r = aioc__alloc(sizeof *r))) return -ENOMEM;
  struct epoll_event ev = {.events = events, .data.u64 = (uint64_t)fd};
  if (epoll_ctl(loop->epfd, fresh ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev) <
      0) {
    int err = -errno;
    if (fresh) aioc__free(r);
    return err;
  }
  r->fn = fn;
  r->arg = arg;
  r->fd = fd;
  if (fresh) {
    loop->io[fd] = r;
    loop->nfds++;
  }
  return 0;
}

int aioc__poll_del(aioc_loop *loop, int fd) {
  if (!loop || fd < 0) return -EINVAL;
  if ((size_t)fd >= loop->nio || !loop->io[fd]) return -ENOENT;
  epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
  aioc__free(loop->io[fd]);
  loop->io[fd] = NULL;
  loop->nfds--;
  return 0;
}

static void poll_io(aioc_loop *loop, int64_t timeout_ns) {
  struct epoll_event evs[64];
  int n;
  if (timeout_ns != 0) {
    atomic_store(&loop->polling, true);
    /* A thread-safe call queued before we announced we may sleep. */
    if (atomic_load(&loop->ts_pending) || atomic_load(&loop->stopping))
      timeout_ns = 0;
  }
  if (timeout_ns < 0) {
    n = epoll_wait(loop->epfd, evs, 64, -1);
  } else {
    struct timespec ts = {.tv_sec = timeout_ns / 1000000000,
                          .tv_nsec = timeout_ns % 1000000000};
    n = epoll_pwait2(loop->epfd, evs, 64, &ts, NULL);
    if (n < 0 && errno == ENOSYS)
      n = epoll_wait(loop->epfd, evs, 64,
                     (int)((timeout_ns + 999999) / 1000000));
  }
  atomic_store(&loop->polling, false);
  loop->now_valid = false;
  for (int i = 0; i < n; i++) {
    uint64_t key = evs[i].data.u64;
    if (key == UINT64_MAX) {
      uint64_t v;
      ssize_t rr = read(loop->evfd, &v, sizeof v);
      (void)rr;
      continue;
    }
    /* Removed by an earlier callback of this poll: nothing to call. */
    io_reg *r = key < loop->nio ? loop->io[key] : NULL;
    if (r) r->fn(loop, r->fd, evs[i].events, r->arg);
  }
}

/* ---- running ---- */

static size_t run_once(aioc_loop *loop, bool may_block) {
  loop->now_valid = false;
  if (atomic_load_explicit(&loop->ts_pending, memory_order_relaxed))
    drain_threadsafe(loop);
  bool idle = loop->ready.head == 0;
  if (idle && may_block && !atomic_load(&loop->stopping)) {
    int64_t timeout = -1;
    if (loop->nheap) {
      if (loop->virtual_clock) {
        timeout = 0;
      } else {
        timeout = loop->heap[0].when - aioc__now(loop);
        if (timeout < 0) timeout = 0;
      }
    }
    if (timeout != 0 || loop->nfds) poll_io(loop, timeout);
    if (atomic_load(&loop->ts_pending)) drain_threadsafe(loop);
    /* Virtual time jumps only when nothing else can happen first. */
    if (loop->virtual_clock && loop->nheap && loop->ready.head == 0 &&
        loop->heap[0].when > loop->now)
      loop->now = loop->heap[0].when;
  } else if (loop->nfds && (++loop->iter % 61 == 0 || idle)) {
    poll_io(loop, 0);
  }
  if (loop->nheap) aioc__timers_fire(loop, aioc__now(loop));
  /* Tasks may hand control straight to the next ready task of this batch
   * (see task.c), so the count lives in the loop. */
  loop->batch_left = loop->ready.len;
  size_t ran = 0;
  while (loop->batch_left) {
    loop->batch_left--;
    ran++;
    aioc__ready_run(aioc__ready_pop(loop));
  }
  return ran;
}

int aioc__loop_run(aioc_loop *loop, bool (*done)(void *), void *arg) {
  if (!loop) return -EINVAL;
  if (loop->closed) return AIOC_ECLOSED;
  if (loop->running || aioc__running) return AIOC_ERUNNING;
  loop->running = true;
  aioc__running = loop;
  aioc_loop *saved = thread_current;
  thread_current = loop;
  aioc__coro_init_thread(&loop->main_coro);
  loop->run_done = done;
  loop->run_arg = arg;
  int rc = 0;
  while (!(done && done(arg))) {
    /* As in asyncio, a stop requested before the run still lets one
     * iteration happen. */
    run_once(loop, true);
    if (atomic_load(&loop->stopping)) {
      rc = done && !done(arg) ? -EINTR : 0;
      break;
    }
  }
  atomic_store(&loop->stopping, false);
  loop->run_done = NULL;
  aioc__running = NULL;
  if (thread_current == loop && saved != loop) thread_current = saved;
  loop->running = false;
  return rc;
}

int aioc_loop_run_forever(aioc_loop *loop) {
  return aioc__loop_run(loop, NULL, NULL);
}

int aioc_loop_run_once(aioc_loop *loop) {
  if (!loop) return -EINVAL;
  if (loop->closed) return AIOC_ECLOSED;
  if (loop->running || aioc__running) return AIOC_ERUNNING;
  loop->running = true;
  aioc__running = loop;
  aioc__coro_init_thread(&loop->main_coro);
  size_t ran = run_once(loop, false);
  aioc__running = NULL;
  loop->running = false;
  return (int)ran;
}

/* ---- reports ---- */

int aioc_loop_set_report_handler(aioc_loop *loop, aioc_report_fn fn,
                                 void *arg) {
  if (!loop) return -EINVAL;
  loop->report_fn = fn;
  loop->report_arg = arg;
  return 0;
}

AIOC_HIDDEN const char *aioc__task_display_name(const aioc_task *t);

void aioc_loop_default_report(aioc_loop *loop, const aioc_report *r) {
  (void)loop;
  fprintf(stderr, "aioc: %s\n", r->message);
  if (r->task) fprintf(stderr, "  task: %s\n", aioc__task_display_name(r->task));
  if (r->code)
    fprintf(stderr, "  error: %s (%d): %s\n", aioc_err_name(r->code), r->code,
            r->detail ? r->detail : aioc_strerror(r->code));
  else if (r->detail)
    fprintf(stderr, "  detail: %s\n", r->detail);
}

void aioc__report(aioc_loop *loop, const aioc_report *r) {
  if (loop && loop->report_fn)
    loop->report_fn(loop->report_arg, loop, r);
  else
    aioc_loop_default_report(loop, r);
}

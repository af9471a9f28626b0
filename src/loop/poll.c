/* The poller: epoll registrations keyed by fd, looked up at delivery, so
 * a callback may remove another fd's registration within the same poll. */
#include <sys/epoll.h>
#include <unistd.h>

#include "loop.h"

typedef struct aioc__ioreg {
  aioc__io_fn fn;
  void *arg;
  void (*drop)(void *arg); /* at the loop's close, if set */
  uint32_t events;
  int fd;
} io_reg;

int aioc__poll_add(aioc_loop *loop, int fd, uint32_t events, aioc__io_fn fn,
                   void *arg) {
  if (!loop || fd < 0 || !fn) return -EINVAL;
  if ((size_t)fd >= loop->nio) {
    size_t n = loop->nio ? loop->nio : 64;
    while (n <= (size_t)fd)
      n *= 2;
    io_reg **v = aioc__realloc(loop->io, n * sizeof *v);
    if (!v) return -ENOMEM;
    for (size_t i = loop->nio; i < n; i++)
      v[i] = NULL;
    loop->io = v;
    loop->nio = n;
  }
  io_reg *r = loop->io[fd];
  bool fresh = !r;
  if (!fresh && r->events == events) {
    r->fn = fn; /* nothing for the kernel to change */
    r->arg = arg;
    return 0;
  }
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
  r->events = events;
  r->fd = fd;
  if (fresh) {
    r->drop = NULL;
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

static void parked_event(aioc_loop *loop, int fd, uint32_t events,
                         void *arg) {
  (void)events, (void)arg;
  aioc__poll_del(loop, fd);
}

int aioc__poll_park(aioc_loop *loop, int fd) {
  io_reg *r = fd >= 0 && (size_t)fd < loop->nio ? loop->io[fd] : NULL;
  if (!r) return -ENOENT;
  r->fn = parked_event;
  r->arg = NULL;
  r->drop = NULL;
  return 0;
}

bool aioc__poll_get(aioc_loop *loop, int fd, aioc__io_fn *fn, void **arg) {
  io_reg *r = fd >= 0 && (size_t)fd < loop->nio ? loop->io[fd] : NULL;
  if (!r) return false;
  if (fn) *fn = r->fn;
  if (arg) *arg = r->arg;
  return true;
}

void aioc__poll_set_drop(aioc_loop *loop, int fd, void (*drop)(void *arg)) {
  if (fd >= 0 && (size_t)fd < loop->nio && loop->io[fd])
    loop->io[fd]->drop = drop;
}

void aioc__poll_drop_all(aioc_loop *loop) {
  for (size_t i = 0; i < loop->nio; i++) {
    io_reg *r = loop->io[i];
    if (!r) continue;
    loop->io[i] = NULL;
    if (r->drop) r->drop(r->arg);
    aioc__free(r);
  }
  aioc__free(loop->io);
  loop->io = NULL;
  loop->nio = loop->nfds = 0;
}

void aioc__poll_io(aioc_loop *loop, int64_t timeout_ns) {
  struct epoll_event evs[64];
  int n;
  if (timeout_ns != 0) {
    atomic_store(&loop->polling, true);
    /* The store above and the load below must not be reordered (the
     * poster does the mirror image): an explicit full fence, since some
     * emulators give sequentially consistent stores and loads only
     * release/acquire order. */
    atomic_thread_fence(memory_order_seq_cst);
    /* A thread-safe call queued before we announced we may sleep. */
    if (atomic_load(&loop->ts_head) || atomic_load(&loop->stopping))
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
      /* Read: the next poster that sees us polling writes again (see
       * tscall.c). Posts that found the flag set are drained after this
       * poll. */
      atomic_store(&loop->ts_woken, false);
      continue;
    }
    /* Removed by an earlier callback of this poll: nothing to call. */
    io_reg *r = key < loop->nio ? loop->io[key] : NULL;
    if (!r) continue;
    if (aioc__unlikely(loop->trace)) {
      aioc__trace_fd(loop, r->fd, evs[i].events);
      r->fn(loop, r->fd, evs[i].events, r->arg);
      aioc__trace_ctx_clear(loop);
    } else {
      r->fn(loop, r->fd, evs[i].events, r->arg);
    }
  }
}

/* fd readiness: the per-fd state on the loop's poller, task waits on it
 * (through the one timed wait), and asyncio's reader/writer callbacks.
 *
 * An fd without callbacks is registered once, edge-triggered, for both
 * directions, and stays registered: a stream's read that finds no data
 * waits for the next edge with no epoll_ctl at all. A public wait checks
 * the fd's level with poll() first, so an edge consumed earlier is never
 * waited for. An fd with a callback is level-triggered (asyncio runs the
 * callback at every iteration while the fd is ready), registered for the
 * directions that have a callback or a waiter. */
#include <poll.h>

#include "io.h"

#define ET_EVENTS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)

aioc_loop *aioc__io_loop(void) {
  return aioc__running ? aioc__running : aioc_loop_current();
}

static void io_event(aioc_loop *loop, int fd, uint32_t events, void *arg);

/* The events io should be registered for now. */
static uint32_t wanted(const aioc__iofd *io) {
  if (!io->cb[0] && !io->cb[1]) return ET_EVENTS;
  uint32_t e = 0;
  if (io->cb[0] || aioc__list_is_linked(&io->waiters[AIOC__RD]))
    e |= EPOLLIN | EPOLLRDHUP;
  if (io->cb[1] || aioc__list_is_linked(&io->waiters[AIOC__WR]))
    e |= EPOLLOUT;
  return e;
}

/* Brings the registration in line with wanted(). A failure here (the fd
 * was closed behind the loop's back) leaves the old registration. */
static int update(aioc__iofd *io) {
  uint32_t e = wanted(io);
  if (e == io->reg) return 0;
  int rc = aioc__poll_add(io->loop, io->fd, e, io_event, io);
  if (rc == 0) io->reg = e;
  return rc;
}

static void drop(void *arg) {
  aioc__iofd *io = arg;
  /* The loop closed; its tasks were abandoned already (their waits
   * detached), so nobody waits any more. */
  for (int d = 0; d < 2; d++) {
    aioc__list *l;
    while ((l = aioc__list_pop_front(&io->waiters[d])) != NULL)
      aioc__container_of(l, aioc__iowait, link)->io = NULL;
  }
  if (io->ops && io->ops->dropped) io->ops->dropped(io);
  aioc__free(io);
}

int aioc__iofd_get(aioc_loop *loop, int fd, aioc__iofd **out) {
  aioc__io_fn fn;
  void *arg;
  if (aioc__poll_get(loop, fd, &fn, &arg)) {
    if (fn != io_event) return -EBUSY;
    *out = arg;
    return 0;
  }
  aioc__iofd *io = aioc__calloc(1, sizeof *io);
  if (!io) return -ENOMEM;
  io->loop = loop;
  io->fd = fd;
  /* Assume ready: the first operation finds out (and a read that would
   * wait for the first report would cost an iteration). */
  io->ready = EPOLLIN | EPOLLOUT;
  aioc__list_init(&io->waiters[0]);
  aioc__list_init(&io->waiters[1]);
  int rc = aioc__poll_add(loop, fd, ET_EVENTS, io_event, io);
  if (rc < 0) {
    aioc__free(io);
    return rc;
  }
  io->reg = ET_EVENTS;
  aioc__poll_set_drop(loop, fd, drop);
  *out = io;
  return 0;
}

void aioc__iofd_wake(aioc__iofd *io, int dir, int rc) {
  aioc__list *l;
  while ((l = aioc__list_first(&io->waiters[dir])) != NULL)
    aioc__twait_wake(&aioc__container_of(l, aioc__iowait, link)->tw, rc);
}

void aioc__iofd_release(aioc__iofd *io, int rc) {
  io->cb[0] = io->cb[1] = NULL; /* no registration updates while waking */
  io->reg = 0;
  aioc__iofd_wake(io, AIOC__RD, rc);
  aioc__iofd_wake(io, AIOC__WR, rc);
  aioc__poll_del(io->loop, io->fd);
  aioc__free(io);
}

static void iowait_detach(aioc__twait *tw) {
  aioc__iowait *w = aioc__container_of(tw, aioc__iowait, tw);
  aioc__list_del(&w->link);
  /* A level-triggered fd stops watching a direction nobody wants. */
  if (w->io && w->io->reg && !(w->io->reg & EPOLLET)) update(w->io);
}

int aioc__iofd_wait(aioc__iofd *io, aioc_task *t, int dir, int64_t deadline) {
  aioc__iowait w;
  aioc__twait_init(&w.tw, t, iowait_detach, -ETIMEDOUT);
  aioc__list_init(&w.link);
  w.io = io;
  int rc = aioc__task_check(t);
  if (rc) return rc;
  if (deadline != AIOC__NEVER) {
    if (deadline <= aioc__now(io->loop)) return -ETIMEDOUT;
    rc = aioc__twait_arm(&w.tw, io->loop, deadline);
    if (rc < 0) return rc;
  }
  aioc__list_push_back(&io->waiters[dir], &w.link);
  if (!(io->reg & EPOLLET) && (rc = update(io)) < 0) {
    aioc__list_del(&w.link);
    aioc__twait_disarm(&w.tw, io->loop);
    return rc;
  }
  return aioc__twait_suspend(&w.tw);
}

/* Runs the callback of direction d if it is still the one set (a callback
 * may remove or replace the others, or forget the fd). */
static bool run_cb(aioc_loop *loop, int fd, aioc__iofd *io, int d,
                   uint32_t events) {
  aioc_fd_fn fn = io->cb[d];
  if (!fn) return true;
  fn(io->cbarg[d], fd, events);
  void *arg;
  aioc__io_fn f;
  /* Still the same registration? */
  return aioc__poll_get(loop, fd, &f, &arg) && arg == io;
}

static void io_event(aioc_loop *loop, int fd, uint32_t events, void *arg) {
  aioc__iofd *io = arg;
  io->ready |= events;
  if (io->ops && !io->ops->event(io, events)) return;
  if (events & AIOC__RD_EVENTS) aioc__iofd_wake(io, AIOC__RD, 0);
  if (events & AIOC__WR_EVENTS) aioc__iofd_wake(io, AIOC__WR, 0);
  if ((events & AIOC__RD_EVENTS) && !run_cb(loop, fd, io, 0, events)) return;
  if (events & AIOC__WR_EVENTS) run_cb(loop, fd, io, 1, events);
}

/* ---- the public calls ---- */

static int fd_wait(int fd, int dir, double timeout) {
  if (fd < 0 || aioc__io_bad_timeout(timeout)) return -EINVAL;
  struct pollfd p = {.fd = fd, .events = dir == AIOC__RD ? POLLIN : POLLOUT};
  int n = poll(&p, 1, 0);
  if (n < 0) return -errno;
  if (n > 0) return (p.revents & POLLNVAL) ? -EBADF : 0;
  aioc_task *t = aioc__current();
  if (!t) return AIOC_ENOTASK;
  aioc_loop *loop = t->f.loop;
  int64_t deadline = aioc__io_deadline(loop, timeout);
  aioc__iofd *io;
  int rc = aioc__task_check(t);
  if (rc) return rc;
  if ((rc = aioc__iofd_get(loop, fd, &io)) < 0) return rc;
  if (io->ops) return -EBUSY;
  /* The level was checked above, after every report the poller made so
   * far: an edge from now on wakes the wait. */
  io->ready &= ~(dir == AIOC__RD ? (uint32_t)EPOLLIN : (uint32_t)EPOLLOUT);
  return aioc__iofd_wait(io, t, dir, deadline);
}

int aioc_wait_readable(int fd, double timeout) {
  return fd_wait(fd, AIOC__RD, timeout);
}

int aioc_wait_writable(int fd, double timeout) {
  return fd_wait(fd, AIOC__WR, timeout);
}

static aioc_loop *pick_loop(aioc_loop *loop) {
  return loop ? loop : aioc__io_loop();
}

static int add_cb(aioc_loop *loop, int fd, int d, aioc_fd_fn fn, void *arg) {
  if (fd < 0 || !fn) return -EINVAL;
  loop = pick_loop(loop);
  if (!loop) return -ENOMEM;
  if (!AIOC__LOOP_OK(loop, "aioc_add_reader")) return -EINVAL;
  if (loop->closed) return AIOC_ECLOSED;
  aioc__iofd *io;
  int rc = aioc__iofd_get(loop, fd, &io);
  if (rc < 0) return rc;
  if (io->ops) return -EBUSY;
  aioc_fd_fn old = io->cb[d];
  void *oldarg = io->cbarg[d];
  io->cb[d] = fn;
  io->cbarg[d] = arg;
  if ((rc = update(io)) < 0) {
    io->cb[d] = old;
    io->cbarg[d] = oldarg;
  }
  return rc;
}

int aioc_add_reader(aioc_loop *loop, int fd, aioc_fd_fn fn, void *arg) {
  return add_cb(loop, fd, AIOC__RD, fn, arg);
}

int aioc_add_writer(aioc_loop *loop, int fd, aioc_fd_fn fn, void *arg) {
  return add_cb(loop, fd, AIOC__WR, fn, arg);
}

/* The state of fd if the loop has it (NULL), or a negative code. */
static int lookup(aioc_loop *loop, int fd, aioc__iofd **out) {
  *out = NULL;
  if (fd < 0) return -EINVAL;
  loop = pick_loop(loop);
  if (!loop || loop->closed) return 0;
  aioc__io_fn fn;
  void *arg;
  if (!aioc__poll_get(loop, fd, &fn, &arg)) return 0;
  if (fn != io_event || ((aioc__iofd *)arg)->ops) return -EBUSY;
  *out = arg;
  return 0;
}

static int remove_cb(aioc_loop *loop, int fd, int d) {
  aioc__iofd *io;
  int rc = lookup(loop, fd, &io);
  if (rc < 0 || !io || !io->cb[d]) return rc;
  io->cb[d] = NULL;
  io->cbarg[d] = NULL;
  update(io); /* back to edge-triggered when no callback is left */
  return 1;
}

int aioc_remove_reader(aioc_loop *loop, int fd) {
  return remove_cb(loop, fd, AIOC__RD);
}

int aioc_remove_writer(aioc_loop *loop, int fd) {
  return remove_cb(loop, fd, AIOC__WR);
}

int aioc_fd_forget(aioc_loop *loop, int fd) {
  aioc__iofd *io;
  int rc = lookup(loop, fd, &io);
  if (rc < 0 || !io) return rc;
  aioc__iofd_release(io, -EBADF);
  return 1;
}

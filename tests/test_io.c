/* fd readiness: task waits (level-triggered, several waiters, timeouts,
 * cancellation, deadlines, an fd forgotten while waited on), the reader
 * and writer callbacks (level-triggered, replaced, removed from within),
 * and the loop closing with fds registered. Pipes and socket pairs. */
#define _GNU_SOURCE /* pipe2 */
#include <math.h>
#include <sys/epoll.h>

#include "io_common.h"

static void mkpipe(int p[2]) {
  if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
    perror("pipe2");
    exit(2);
  }
}

typedef struct waiter {
  int fd;
  int write; /* wait for writable */
  double timeout;
  int rc;
  int done;
} waiter;

static int wait_task(void *arg, void **res) {
  (void)res;
  waiter *w = arg;
  w->rc = w->write ? aioc_wait_writable(w->fd, w->timeout)
                   : aioc_wait_readable(w->fd, w->timeout);
  w->done = 1;
  return 0;
}

static int readable_main(void *arg, void **res) {
  (void)arg, (void)res;
  int p[2];
  mkpipe(p);
  /* Not readable: waits, up to its timeout. */
  CHECK_RC(aioc_wait_readable(p[0], 0), -ETIMEDOUT);
  CHECK_RC(aioc_wait_readable(p[0], 0.02), -ETIMEDOUT);
  /* Several waiters on one fd: all wake when it becomes readable. */
  waiter w[3];
  aioc_task *t[3];
  for (int i = 0; i < 3; i++) {
    w[i] = (waiter){.fd = p[0], .timeout = AIOC_FOREVER};
    t[i] = spawn_io(wait_task, &w[i]);
  }
  settle_io();
  for (int i = 0; i < 3; i++) CHECK(!w[i].done);
  CHECK_EQ(write(p[1], "x", 1), 1);
  for (int i = 0; i < 3; i++) {
    CHECK_RC(join_io(t[i]), 0);
    CHECK_RC(w[i].rc, 0);
  }
  /* Level-triggered: still readable (nothing was read), so at once. */
  CHECK_RC(aioc_wait_readable(p[0], 0), 0);
  CHECK_RC(aioc_wait_readable(p[0], AIOC_FOREVER), 0);
  char c;
  CHECK_EQ(read(p[0], &c, 1), 1);
  /* Cancellation, and a deadline in scope. */
  waiter x = {.fd = p[0], .timeout = AIOC_FOREVER};
  aioc_task *xt = spawn_io(wait_task, &x);
  settle_io();
  aioc_task_cancel(xt, NULL);
  CHECK_RC(join_io(xt), 0);
  CHECK_RC(x.rc, -ECANCELED);
  aioc_scope *sc;
  CHECK_RC(aioc_timeout_enter(&sc, 0.02), 0);
  CHECK_RC(aioc_wait_readable(p[0], AIOC_FOREVER), -ETIMEDOUT);
  CHECK_RC(aioc_scope_exit(sc), -ETIMEDOUT);
  aioc_scope_free(sc);
  /* The fd forgotten while waited on: -EBADF. */
  x = (waiter){.fd = p[0], .timeout = AIOC_FOREVER};
  xt = spawn_io(wait_task, &x);
  settle_io();
  CHECK_EQ(aioc_fd_forget(NULL, p[0]), 1);
  CHECK_EQ(aioc_fd_forget(NULL, p[0]), 0);
  CHECK_RC(join_io(xt), 0);
  CHECK_RC(x.rc, -EBADF);
  /* End of file counts as readable. */
  close(p[1]);
  CHECK_RC(aioc_wait_readable(p[0], 1), 0);
  close(p[0]);
  /* A closed fd; a regular file (always ready); bad input. */
  CHECK_RC(aioc_wait_readable(p[0], 1), -EBADF);
  int f = open("/dev/null", O_RDONLY);
  CHECK_RC(aioc_wait_readable(f, 1), 0);
  CHECK_RC(aioc_wait_writable(f, 1), 0);
  close(f);
  CHECK_RC(aioc_wait_readable(-1, 1), -EINVAL);
  CHECK_RC(aioc_wait_readable(0, -1), -EINVAL);
  CHECK_RC(aioc_wait_readable(0, NAN), -EINVAL);
  return 0;
}

TEST(test_wait_readable) { io_run(readable_main, NULL); }

static int writable_main(void *arg, void **res) {
  (void)arg, (void)res;
  int p[2];
  mkpipe(p);
  CHECK_RC(aioc_wait_writable(p[1], 0), 0);
  /* Fill the pipe: not writable until a reader makes room. */
  static char buf[65536];
  while (write(p[1], buf, sizeof buf) > 0) {
  }
  CHECK_RC(aioc_wait_writable(p[1], 0.02), -ETIMEDOUT);
  waiter w = {.fd = p[1], .write = 1, .timeout = 5};
  aioc_task *t = spawn_io(wait_task, &w);
  settle_io();
  CHECK(!w.done);
  while (read(p[0], buf, sizeof buf) > 0) {
  }
  CHECK_RC(join_io(t), 0);
  CHECK_RC(w.rc, 0);
  /* A reader and a writer on one fd (a socket), each its own direction. */
  int sv[2];
  sock_pair(sv);
  fcntl(sv[1], F_SETFL, O_NONBLOCK);
  waiter r = {.fd = sv[1], .timeout = 5};
  t = spawn_io(wait_task, &r);
  settle_io();
  CHECK_RC(aioc_wait_writable(sv[1], 1), 0);
  CHECK(!r.done);
  CHECK_EQ(write(sv[0], "y", 1), 1);
  CHECK_RC(join_io(t), 0);
  CHECK_RC(r.rc, 0);
  CHECK(aioc_fd_forget(NULL, p[0]) >= 0);
  CHECK(aioc_fd_forget(NULL, p[1]) >= 0);
  CHECK(aioc_fd_forget(NULL, sv[1]) >= 0);
  close(p[0]);
  close(p[1]);
  close(sv[0]);
  close(sv[1]);
  CHECK_RC(aioc_wait_writable(-3, 1), -EINVAL);
  return 0;
}

TEST(test_wait_writable) { io_run(writable_main, NULL); }

/* ---- callbacks ----------------------------------------------------------- */

typedef struct cbstate {
  int calls;
  int fd;
  int remove_at; /* remove itself at this call (0: never) */
  unsigned events;
} cbstate;

static void on_ready(void *arg, int fd, unsigned events) {
  cbstate *c = arg;
  c->calls++;
  c->events = events;
  CHECK_EQ(fd, c->fd);
  if (c->calls == c->remove_at) CHECK_EQ(aioc_remove_reader(NULL, fd), 1);
}

static void on_writable(void *arg, int fd, unsigned events) {
  cbstate *c = arg;
  (void)events;
  c->calls++;
  if (c->calls == c->remove_at) CHECK_EQ(aioc_remove_writer(NULL, fd), 1);
}

static void forget_self(void *arg, int fd, unsigned events) {
  cbstate *c = arg;
  (void)events;
  c->calls++;
  CHECK_EQ(aioc_fd_forget(NULL, fd), 1);
}

static int callbacks_main(void *arg, void **res) {
  (void)arg, (void)res;
  int p[2];
  mkpipe(p);
  cbstate a = {.fd = p[0]}, b = {.fd = p[0]};
  CHECK_RC(aioc_add_reader(NULL, p[0], on_ready, &a), 0);
  for (int i = 0; i < 5; i++) CHECK_RC(aioc_sleep(0.001), 0);
  CHECK_EQ(a.calls, 0);
  CHECK_EQ(write(p[1], "x", 1), 1);
  /* Level-triggered: called at every iteration while readable. */
  for (int i = 0; i < 5; i++) CHECK_RC(aioc_sleep(0.001), 0);
  CHECK(a.calls >= 3);
  CHECK(a.events & EPOLLIN);
  /* Replaced: only the new one runs. */
  int before = a.calls;
  CHECK_RC(aioc_add_reader(NULL, p[0], on_ready, &b), 0);
  for (int i = 0; i < 3; i++) CHECK_RC(aioc_sleep(0.001), 0);
  CHECK_EQ(a.calls, before);
  CHECK(b.calls >= 1);
  /* A task waits on the same fd meanwhile. */
  CHECK_RC(aioc_wait_readable(p[0], 1), 0);
  /* Removed: no more calls. */
  CHECK_EQ(aioc_remove_reader(NULL, p[0]), 1);
  CHECK_EQ(aioc_remove_reader(NULL, p[0]), 0);
  before = b.calls;
  for (int i = 0; i < 3; i++) CHECK_RC(aioc_sleep(0.001), 0);
  CHECK_EQ(b.calls, before);
  /* A callback that removes itself at its third call. */
  cbstate c = {.fd = p[0], .remove_at = 3};
  CHECK_RC(aioc_add_reader(NULL, p[0], on_ready, &c), 0);
  for (int i = 0; i < 8; i++) CHECK_RC(aioc_sleep(0.001), 0);
  CHECK_EQ(c.calls, 3);
  /* A writer callback; one that forgets its fd. */
  cbstate w = {.fd = p[1], .remove_at = 2};
  CHECK_RC(aioc_add_writer(NULL, p[1], on_writable, &w), 0);
  for (int i = 0; i < 5; i++) CHECK_RC(aioc_sleep(0.001), 0);
  CHECK_EQ(w.calls, 2);
  cbstate f = {.fd = p[0]};
  CHECK_RC(aioc_add_reader(NULL, p[0], forget_self, &f), 0);
  for (int i = 0; i < 5; i++) CHECK_RC(aioc_sleep(0.001), 0);
  CHECK_EQ(f.calls, 1);
  /* Bad input. */
  CHECK_RC(aioc_add_reader(NULL, -1, on_ready, &a), -EINVAL);
  CHECK_RC(aioc_add_reader(NULL, p[0], NULL, &a), -EINVAL);
  CHECK_RC(aioc_add_writer(NULL, 1000000, on_ready, &a), -EBADF);
  int file = open("/dev/null", O_RDONLY);
  CHECK_RC(aioc_add_reader(NULL, file, on_ready, &a), -EPERM);
  close(file);
  CHECK_EQ(aioc_remove_writer(NULL, -1), -EINVAL);
  CHECK_EQ(aioc_fd_forget(NULL, -1), -EINVAL);
  CHECK(aioc_fd_forget(NULL, p[1]) >= 0);
  close(p[0]);
  close(p[1]);
  return 0;
}

TEST(test_callbacks) { io_run(callbacks_main, NULL); }

/* The loop closes with fds registered and a callback set: nothing leaks
 * (LeakSanitizer checks in the ASan build), and the fds stay open. */
TEST(test_loop_close_with_fds) {
  aioc_loop *loop = test_loop(0);
  int p[2];
  mkpipe(p);
  cbstate a = {.fd = p[0]};
  CHECK_RC(aioc_add_reader(loop, p[0], on_ready, &a), 0);
  CHECK_RC(aioc_add_writer(loop, p[1], on_writable, &a), 0);
  CLOSE_CLEAN(loop);
  CHECK_EQ(write(p[1], "z", 1), 1);
  close(p[0]);
  close(p[1]);
}

CHECK_MAIN(60)

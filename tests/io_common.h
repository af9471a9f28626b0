/* Helpers shared by the I/O tests: a main task on a real-clock loop,
 * loopback servers, raw sockets for the peer's side. */
#ifndef AIOC_TEST_IO_COMMON_H
#define AIOC_TEST_IO_COMMON_H
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "check.h"

/* Runs fn(arg) as the main task of a fresh real-clock loop (I/O needs the
 * real clock): it must return 0, the loop must close clean, no report. */
static inline void io_run(aioc_fn fn, void *arg) {
  CHECK_RC(run_main_real(fn, arg, NULL), 0);
}

static inline aioc_task *spawn_io(aioc_fn fn, void *arg) {
  aioc_task *t = NULL;
  CHECK_RC(aioc_spawn(&t, fn, arg), 0);
  return t;
}

/* Awaits and releases t; returns its code. */
static inline int join_io(aioc_task *t) {
  int rc = aioc_task_await(t, NULL);
  aioc_task_unref(t);
  return rc;
}

/* Lets the other ready tasks run a few times. */
static inline void settle_io(void) {
  for (int i = 0; i < 8; i++) IGNORE_RC(aioc_sleep(0));
}

/* A blocking loopback client socket connected to port (127.0.0.1). */
static inline int raw_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -errno;
  }
  return fd;
}

/* A non-blocking socket pair (the test's end, then the stream's end). */
static inline void sock_pair(int sv[2]) {
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    perror("socketpair");
    exit(2);
  }
}

/* A free loopback TCP port with nothing listening (bound then closed). */
static inline int dead_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t l = sizeof a;
  bind(fd, (struct sockaddr *)&a, sizeof a);
  getsockname(fd, (struct sockaddr *)&a, &l);
  close(fd);
  return ntohs(a.sin_port);
}

#endif

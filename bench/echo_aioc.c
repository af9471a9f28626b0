/* B6: the aioc echo server. Usage: echo_aioc [--loops N] PORT. Listens on
 * 127.0.0.1:PORT and echoes every byte back on each connection, one task
 * per connection; exits 0 on SIGTERM or SIGINT. Prints only errors.
 *
 * With --loops N (B6n), N loops on N threads each listen on PORT with
 * SO_REUSEPORT, and the kernel spreads the connections over them: the
 * one-loop-per-core pattern of docs/servers.md. */
#include <aioc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int stop_pipe[2];

static void on_signal(int sig) {
  (void)sig;
  char c = 0;
  ssize_t r = write(stop_pipe[1], &c, 1);
  (void)r;
}

static int echo(void *arg, aioc_stream *s) {
  (void)arg;
  char buf[16384];
  for (;;) {
    size_t n;
    if (aioc_stream_read(s, buf, sizeof buf, &n, AIOC_FOREVER) < 0 || n == 0)
      return 0;
    if (aioc_stream_write(s, buf, n) < 0 ||
        aioc_stream_drain(s, AIOC_FOREVER) < 0)
      return 0;
  }
}

typedef struct server_args {
  int port;
  int reuse_port;
} server_args;

static int serve(void *arg, void **result) {
  (void)result;
  server_args *a = arg;
  aioc_server_options o = {.reuse_port = a->reuse_port};
  aioc_server *srv;
  int rc = aioc_start_server(&srv, "127.0.0.1", a->port, echo, NULL, &o);
  if (rc < 0) {
    fprintf(stderr, "echo_aioc: listen: %s\n", aioc_strerror(rc));
    return rc;
  }
  /* The signal handler only writes to a pipe that nobody reads: every
   * loop sees it readable. */
  rc = aioc_wait_readable(stop_pipe[0], AIOC_FOREVER);
  aioc_server_close(srv);
  aioc_server_cancel_connections(srv);
  if (aioc_server_wait_closed(srv, 5) < 0)
    fprintf(stderr, "echo_aioc: connections did not end\n");
  aioc_server_free(srv);
  aioc_fd_forget(NULL, stop_pipe[0]);
  return rc < 0 ? rc : 0;
}

static void *loop_thread(void *arg) {
  return (void *)(intptr_t)aioc_run(serve, arg, NULL);
}

int main(int argc, char **argv) {
  int loops = 1, i = 1;
  if (argc == 4 && strcmp(argv[1], "--loops") == 0) {
    loops = atoi(argv[2]);
    i = 3;
  }
  if (argc != i + 1 || atoi(argv[i]) <= 0 || atoi(argv[i]) > 65535 ||
      loops < 1 || loops > 256) {
    fprintf(stderr, "usage: echo_aioc [--loops N] PORT\n");
    return 2;
  }
  server_args a = {.port = atoi(argv[i]), .reuse_port = loops > 1};
  if (pipe(stop_pipe) != 0) return 1;
  struct sigaction sa = {.sa_handler = on_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  if (loops == 1) return aioc_run(serve, &a, NULL) < 0 ? 1 : 0;
  pthread_t t[256];
  int failed = 0;
  for (int k = 0; k < loops; k++)
    if (pthread_create(&t[k], NULL, loop_thread, &a) != 0) {
      loops = k;
      failed = 1;
      on_signal(0);
    }
  for (int k = 0; k < loops; k++) {
    void *rc;
    pthread_join(t[k], &rc);
    if ((intptr_t)rc < 0) failed = 1;
  }
  return failed;
}

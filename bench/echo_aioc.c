/* B6: the aioc echo server. Usage: echo_aioc PORT. Listens on
 * 127.0.0.1:PORT and echoes every byte back on each connection, one task
 * per connection; exits 0 on SIGTERM or SIGINT. Prints only errors. */
#include <aioc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
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

static int serve(void *arg, void **result) {
  (void)result;
  aioc_server *srv;
  int rc = aioc_start_server(&srv, "127.0.0.1", *(int *)arg, echo, NULL, NULL);
  if (rc < 0) {
    fprintf(stderr, "echo_aioc: listen: %s\n", aioc_strerror(rc));
    return rc;
  }
  /* The signal handler only writes to a pipe; the loop sees it. */
  rc = aioc_wait_readable(stop_pipe[0], AIOC_FOREVER);
  aioc_server_close(srv);
  aioc_server_cancel_connections(srv);
  if (aioc_server_wait_closed(srv, 5) < 0)
    fprintf(stderr, "echo_aioc: connections did not end\n");
  aioc_server_free(srv);
  aioc_fd_forget(NULL, stop_pipe[0]);
  return rc < 0 ? rc : 0;
}

int main(int argc, char **argv) {
  if (argc != 2 || atoi(argv[1]) <= 0 || atoi(argv[1]) > 65535) {
    fprintf(stderr, "usage: echo_aioc PORT\n");
    return 2;
  }
  int port = atoi(argv[1]);
  if (pipe(stop_pipe) != 0) return 1;
  struct sigaction sa = {.sa_handler = on_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  int rc = aioc_run(serve, &port, NULL);
  return rc < 0 ? 1 : 0;
}

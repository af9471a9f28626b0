/* An echo server: every line a client sends comes back.
 *
 *   echo_server [PORT]      (default 8888; listens on 127.0.0.1)
 *
 * Try it with `nc 127.0.0.1 8888`. It stops on SIGINT (Ctrl-C) or SIGTERM
 * with a graceful shutdown: no new clients, 2 s for the connected ones to
 * finish, then their handlers are cancelled and the program exits 0. The
 * signal handler only writes a byte to a pipe; the main task waits for the
 * pipe with aioc_wait_readable(), so the signal is never lost, whatever
 * the loop is doing when it comes. */
#include <aioc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int stop_pipe[2];

static void on_signal(int sig) {
  (void)sig;
  char c = 1;
  ssize_t r = write(stop_pipe[1], &c, 1); /* async-signal-safe */
  (void)r;
}

/* One task per connection. */
static int handle(void *arg, aioc_stream *s) {
  (void)arg;
  char line[4096];
  for (;;) {
    size_t n;
    int rc = aioc_stream_readline(s, line, sizeof line, &n, 300.0);
    if (rc == -EMSGSIZE) continue; /* too long: skipped */
    if (rc < 0 || n == 0) return 0;  /* idle, reset, cancelled, or the end */
    if (aioc_stream_write(s, line, n) < 0 ||
        aioc_stream_drain(s, 30.0) < 0)
      return 0;
  }
}

static int serve(void *arg, void **result) {
  (void)result;
  int port = *(int *)arg;
  aioc_server *srv;
  int rc = aioc_start_server(&srv, "127.0.0.1", port, handle, NULL, NULL);
  if (rc < 0) {
    fprintf(stderr, "echo_server: cannot listen on port %d: %s\n", port,
            aioc_strerror(rc));
    return rc;
  }
  printf("echo_server: listening on 127.0.0.1:%d (Ctrl-C stops)\n",
         aioc_server_port(srv));
  fflush(stdout);
  rc = aioc_wait_readable(stop_pipe[0], AIOC_FOREVER);
  printf("echo_server: stopping, %zu connection(s) open\n",
         aioc_server_connections(srv));
  aioc_server_close(srv);
  if (aioc_server_wait_closed(srv, 2.0) == -ETIMEDOUT) {
    aioc_server_cancel_connections(srv);
    if (aioc_server_wait_closed(srv, 5.0) < 0)
      fprintf(stderr, "echo_server: connections did not end\n");
  }
  aioc_server_free(srv);
  aioc_fd_forget(NULL, stop_pipe[0]);
  printf("echo_server: bye\n");
  return rc < 0 ? rc : 0;
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 8888;
  if (port < 0 || port > 65535 || pipe(stop_pipe) != 0) return 2;
  struct sigaction sa = {.sa_handler = on_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  return aioc_run(serve, &port, NULL) == 0 ? 0 : 1;
}

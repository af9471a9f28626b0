/* An echo server: every line a client sends comes back.
 *
 *   echo_server [PORT]      (default 8888; listens on 127.0.0.1)
 *
 * Try it with `nc 127.0.0.1 8888`. It stops on SIGINT (Ctrl-C) or SIGTERM
 * with a graceful shutdown: no new clients, 2 s for the connected ones to
 * finish, then their handlers are cancelled and the program exits 0. The
 * main task reads the two signals as an iterator on the loop (signalfd):
 * a signal that comes while the loop is busy is not lost. */
#include <aioc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
  static const int stop_signals[] = {SIGINT, SIGTERM};
  aioc_iter *signals;
  int rc = aioc_signal_iter(&signals, NULL, stop_signals, 2);
  if (rc < 0) {
    fprintf(stderr, "echo_server: cannot handle signals: %s\n",
            aioc_strerror(rc));
    return rc;
  }
  aioc_server *srv;
  rc = aioc_start_server(&srv, "127.0.0.1", port, handle, NULL, NULL);
  if (rc < 0) {
    fprintf(stderr, "echo_server: cannot listen on port %d: %s\n", port,
            aioc_strerror(rc));
    aioc_iter_free(signals);
    return rc;
  }
  printf("echo_server: listening on 127.0.0.1:%d (Ctrl-C stops)\n",
         aioc_server_port(srv));
  fflush(stdout);
  void *sig;
  rc = aioc_iter_next(signals, &sig, AIOC_FOREVER);
  printf("echo_server: %s, stopping, %zu connection(s) open\n",
         rc == 0 ? strsignal(AIOC_TO_INT(sig)) : aioc_strerror(rc),
         aioc_server_connections(srv));
  aioc_server_close(srv);
  if (aioc_server_wait_closed(srv, 2.0) == -ETIMEDOUT) {
    aioc_server_cancel_connections(srv);
    if (aioc_server_wait_closed(srv, 5.0) < 0)
      fprintf(stderr, "echo_server: connections did not end\n");
  }
  aioc_server_free(srv);
  aioc_iter_free(signals);
  printf("echo_server: bye\n");
  return rc < 0 ? rc : 0;
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 8888;
  if (port < 0 || port > 65535) return 2;
  return aioc_run(serve, &port, NULL) == 0 ? 0 : 1;
}

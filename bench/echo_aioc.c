/* B6: the aioc echo server. Usage: echo_aioc [--loops N] [--tls CERT KEY]
 * PORT. Listens on
 * 127.0.0.1:PORT and echoes every byte back on each connection, one task
 * per connection; exits 0 on SIGTERM or SIGINT. Prints only errors.
 *
 * With --loops N (B6n), N loops on N threads each listen on PORT with
 * SO_REUSEPORT, and the kernel spreads the connections over them: the
 * one-loop-per-core pattern of docs/servers.md. With --tls (B6tls) it
 * serves TLS (OpenSSL, TLS 1.3 as the client asks) with the certificate
 * and key of the given PEM files. */
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
  const char *cert, *key; /* TLS when set */
} server_args;

static int serve(void *arg, void **result) {
  (void)result;
  server_args *a = arg;
  aioc_server_options o = {.reuse_port = a->reuse_port};
  aioc_server *srv;
  aioc_tls_context *tls = NULL;
  int rc = 0;
  if (a->cert) {
    aioc_tls_options t = {.server = 1, .cert_file = a->cert,
                          .key_file = a->key};
    rc = aioc_tls_context_new(&tls, &t);
  }
  if (rc == 0)
    rc = tls ? aioc_tls_start_server(&srv, "127.0.0.1", a->port, echo, NULL,
                                     tls, &o)
             : aioc_start_server(&srv, "127.0.0.1", a->port, echo, NULL, &o);
  aioc_tls_context_free(tls); /* the server keeps it */
  if (rc < 0) {
    fprintf(stderr, "echo_aioc: listen: %s\n", aioc_error_message());
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
  server_args a = {0};
  for (;;) {
    if (argc - i >= 3 && strcmp(argv[i], "--loops") == 0) {
      loops = atoi(argv[i + 1]);
      i += 2;
    } else if (argc - i >= 4 && strcmp(argv[i], "--tls") == 0) {
      a.cert = argv[i + 1];
      a.key = argv[i + 2];
      i += 3;
    } else {
      break;
    }
  }
  if (argc != i + 1 || atoi(argv[i]) <= 0 || atoi(argv[i]) > 65535 ||
      loops < 1 || loops > 256) {
    fprintf(stderr, "usage: echo_aioc [--loops N] [--tls CERT KEY] PORT\n");
    return 2;
  }
  a.port = atoi(argv[i]);
  a.reuse_port = loops > 1;
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

/* A line echo server on several loops: one loop per thread, every loop
 * listening on the same port with SO_REUSEPORT, so that the kernel spreads
 * the incoming connections over the loops (and so over the cores).
 *
 *   multiloop_server [-n LOOPS] [PORT]
 *
 * LOOPS defaults to the number of CPUs, PORT to 8888 (0: any free port);
 * it listens on 127.0.0.1 and prints the port. On SIGINT or SIGTERM every
 * loop stops accepting, gives its connections 2 s to finish, cancels the
 * rest, and the program prints each loop's share of the work and exits 0.
 *
 * The pattern (docs/servers.md, "One loop per core"): each thread runs
 * aioc_run() with its own loop; nothing of one loop is touched from
 * another thread except through aioc_call_soon_threadsafe(). The signals
 * are blocked in every thread and taken by the main thread with
 * sigwait(), which then asks each loop to stop. */
#include <aioc.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct worker {
  int index;
  int port; /* in: the port to listen on; out: the port it listens on */
  pthread_t thread;
  /* set by the worker's loop thread, read by the main thread after the
   * handshake below (the mutex orders them) */
  aioc_loop *loop;
  aioc_event *stop;
  int status; /* 0 starting, 1 serving, negative: could not start */
  /* the loop's share, counted on its own thread, read after the join */
  unsigned long connections, lines;
} worker;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

/* One task per connection, on the loop that accepted it. */
static int handle(void *arg, aioc_stream *s) {
  worker *w = arg;
  w->connections++;
  char line[4096];
  for (;;) {
    size_t n;
    int rc = aioc_stream_readline(s, line, sizeof line, &n, 300.0);
    if (rc == -EMSGSIZE) continue; /* too long: skipped */
    if (rc < 0 || n == 0) return 0;
    w->lines++;
    if (aioc_stream_write(s, line, n) < 0 || aioc_stream_drain(s, 30.0) < 0)
      return 0;
  }
}

static void announce(worker *w, int status) {
  pthread_mutex_lock(&mu);
  w->status = status;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}

/* The main task of one loop. */
static int serve(void *arg, void **result) {
  (void)result;
  worker *w = arg;
  aioc_server_options o = {.reuse_port = 1};
  aioc_server *srv;
  int rc = aioc_event_new(&w->stop);
  if (rc == 0 &&
      (rc = aioc_start_server(&srv, "127.0.0.1", w->port, handle, w, &o)) < 0)
    fprintf(stderr, "multiloop_server: loop %d: %s\n", w->index,
            aioc_error_message());
  if (rc < 0) {
    aioc_event_free(w->stop);
    announce(w, rc);
    return rc;
  }
  w->port = aioc_server_port(srv);
  w->loop = aioc_get_running_loop();
  announce(w, 1);
  rc = aioc_event_wait(w->stop, AIOC_FOREVER);
  aioc_server_close(srv);
  if (aioc_server_wait_closed(srv, 2.0) == -ETIMEDOUT) {
    aioc_server_cancel_connections(srv);
    if (aioc_server_wait_closed(srv, 5.0) < 0)
      fprintf(stderr, "multiloop_server: loop %d: connections did not end\n",
              w->index);
  }
  aioc_server_free(srv);
  aioc_event_free(w->stop);
  return rc;
}

static void *thread_main(void *arg) {
  worker *w = arg;
  int rc = aioc_run(serve, w, NULL);
  if (rc < 0 && w->status == 1)
    fprintf(stderr, "multiloop_server: loop %d: %s\n", w->index,
            aioc_strerror(rc));
  return NULL;
}

/* Runs on the worker's loop: the only way another thread touches it. */
static void stop_cb(void *arg) {
  worker *w = arg;
  aioc_event_set(w->stop);
}

static int start(worker *w) {
  if (pthread_create(&w->thread, NULL, thread_main, w) != 0) return -EAGAIN;
  pthread_mutex_lock(&mu);
  while (w->status == 0) pthread_cond_wait(&cv, &mu);
  int st = w->status;
  pthread_mutex_unlock(&mu);
  if (st < 0) pthread_join(w->thread, NULL);
  return st < 0 ? st : 0;
}

int main(int argc, char **argv) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  int port = 8888, i = 1;
  if (argc > 2 && strcmp(argv[1], "-n") == 0) {
    n = atol(argv[2]);
    i = 3;
  }
  if (argc > i) port = atoi(argv[i++]);
  if (argc > i || n < 1 || n > 1024 || port < 0 || port > 65535) {
    fprintf(stderr, "usage: multiloop_server [-n LOOPS] [PORT]\n");
    return 2;
  }
  /* Blocked here, so in every thread created from now on: only sigwait()
   * below takes them. */
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

  worker *w = calloc((size_t)n, sizeof *w);
  if (!w) return 1;
  int started = 0, rc = 0;
  for (; started < n; started++) {
    w[started].index = started;
    /* the first loop picks the port when asked for any; the others join
     * it */
    w[started].port = started ? w[0].port : port;
    if ((rc = start(&w[started])) < 0) break;
  }
  if (started > 0) {
    printf("multiloop_server: %d loop(s) listening on 127.0.0.1:%d "
           "(Ctrl-C stops)\n",
           started, w[0].port);
    fflush(stdout);
  }
  if (rc == 0) {
    int sig;
    sigwait(&stop_signals, &sig);
    printf("multiloop_server: %s, stopping\n", strsignal(sig));
  }
  for (int k = 0; k < started; k++)
    if (aioc_call_soon_threadsafe(w[k].loop, stop_cb, &w[k]) < 0)
      fprintf(stderr, "multiloop_server: loop %d already closed\n", k);
  unsigned long total = 0;
  for (int k = 0; k < started; k++) {
    pthread_join(w[k].thread, NULL);
    total += w[k].connections;
  }
  for (int k = 0; k < started; k++)
    printf("loop %d: %lu connection(s) (%.0f%%), %lu line(s)\n", k,
           w[k].connections,
           total ? 100.0 * (double)w[k].connections / (double)total : 0.0,
           w[k].lines);
  printf("multiloop_server: bye\n");
  free(w);
  return rc < 0 ? 1 : 0;
}

/* B10, aioc's side: streaming calls through aioc's RPC layer, each call
 * answered by 5 chunks of 64 bytes, with INFLIGHT calls kept going (one
 * task per call slot).
 *
 *   b10_aioc local CALLS INFLIGHT
 *       the local transport: client and server in this one process, on
 *       one loop
 *   b10_aioc PORT CALLS INFLIGHT WORKERS
 *       the AMQP transport through the broker on 127.0.0.1:PORT: WORKERS
 *       worker processes (forked before any loop exists), each with its
 *       own connection and a server of prefetch 64, and this process's
 *       client on its own connection; WORKERS 0: the workers are
 *       elsewhere (b10_aioc worker, or bench/peers/b10_pika.py --worker),
 *       serving the names' prefix given by --prefix P after the arguments
 *   b10_aioc worker PORT PREFIX
 *       one worker, serving until SIGTERM or SIGINT (for checking that
 *       aioc and the peers understand each other)
 *
 * The client publishes its requests without publisher confirms
 * (aioc_rpc_amqp_options.unconfirmed_requests), as the peers do.
 *
 * Chunk latency is measured as bench/peers/b10_raw.c measures it: from
 * the moment the call is made (just before its request is sent) to the
 * moment the client holds the chunk (here: the response iterator's next()
 * returned it), for every data chunk; p50 and p99 over all of them.
 *
 * Prints one line of JSON, the same fields as b10_raw:
 *   {"calls_per_s": ..., "p50_ms": ..., "p99_ms": ..., "calls": ...,
 *    "inflight": ..., "workers": ...}
 * and exits 0; exits 1 if a call failed or a chunk was wrong. */
#include <aioc.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNKS 5
#define CHUNK_LEN 64
#define METHOD "b10"
#define PREFETCH 64

#define MUST(x)                                                                \
  do {                                                                         \
    int must_rc_ = (x);                                                        \
    if (must_rc_ < 0) {                                                        \
      const char *must_msg_ = aioc_error_message();                            \
      fprintf(stderr, "b10_aioc: %s:%d: %s: %s%s%s\n", __FILE__, __LINE__, #x, \
              aioc_strerror(must_rc_), must_msg_ ? ": " : "",                  \
              must_msg_ ? must_msg_ : "");                                     \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char url[128];
static char prefix[64];

/* ---- the handler: 5 chunks of 64 bytes ---- */

static int handler(void *arg, aioc_rpc_request *req) {
  (void)arg;
  char chunk[CHUNK_LEN];
  memset(chunk, 'x', sizeof chunk);
  for (int i = 0; i < CHUNKS; i++) {
    int rc = aioc_rpc_yield(req, chunk, sizeof chunk);
    if (rc) return rc == AIOC_EGENEXIT ? 0 : rc;
  }
  return 0;
}

static int serve(aioc_rpc_transport *tr, aioc_rpc_server **out) {
  aioc_rpc_server_options so = {.prefetch = PREFETCH};
  int rc = aioc_rpc_server_new(out, tr, &so);
  if (rc == 0) rc = aioc_rpc_server_register(*out, METHOD, handler, NULL);
  if (rc == 0) rc = aioc_rpc_server_start(*out);
  return rc;
}

/* ---- a worker process ---- */

static int ready_fd = -1;

static int worker_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_rpc_amqp_options ao = {.prefix = prefix};
  aioc_rpc_transport *tr;
  aioc_rpc_server *s;
  MUST(aioc_rpc_amqp_new(&tr, url, &ao));
  MUST(serve(tr, &s));
  /* Ready once its consumer is set up on the broker. */
  aioc_rpc_amqp_counters k;
  while (aioc_rpc_amqp_stats(tr, &k) == 0 && !k.serving)
    MUST(aioc_sleep(0.005));
  if (ready_fd >= 0) {
    char one = 1;
    if (write(ready_fd, &one, 1) != 1) exit(1);
    close(ready_fd);
  }
  /* Serves until the client is done and kills it, or a signal. */
  static const int stop[] = {SIGINT, SIGTERM};
  aioc_iter *signals;
  void *sig;
  MUST(aioc_signal_iter(&signals, NULL, stop, 2));
  int rc = aioc_iter_next(signals, &sig, AIOC_FOREVER);
  (void)rc;
  aioc_iter_free(signals);
  rc = aioc_rpc_server_shutdown(s, 1);
  aioc_rpc_server_free(s);
  aioc_rpc_transport_free(tr);
  return 0;
}

/* ---- the client ---- */

typedef struct bench {
  aioc_rpc_client *c;
  long calls, next, done;
  double *lat;
  size_t nlat;
  int failed;
} bench;

static int slot_main(void *arg, void **result) {
  (void)result;
  bench *b = arg;
  static const char req[16] = "request-payload";
  while (b->next < b->calls && !b->failed) {
    b->next++;
    double sent = now();
    aioc_iter *it;
    int rc = aioc_rpc_call(&it, b->c, METHOD, req, sizeof req, NULL);
    if (rc < 0) {
      const char *m = aioc_error_message();
      fprintf(stderr, "b10_aioc: call: %s%s%s\n", aioc_strerror(rc),
              m ? ": " : "", m ? m : "");
      b->failed = 1;
      return rc;
    }
    int got = 0;
    for (;;) {
      void *item;
      rc = aioc_iter_next(it, &item, AIOC_FOREVER);
      if (rc != 0) break;
      aioc_rpc_chunk *ch = item;
      b->lat[b->nlat++] = now() - sent;
      if (ch->len != CHUNK_LEN || ch->seq != (uint32_t)got ||
          ch->data[0] != 'x')
        b->failed = 1;
      got++;
      aioc_rpc_chunk_free(ch);
    }
    aioc_iter_free(it);
    if (rc != AIOC_EXHAUSTED || got != CHUNKS) {
      const char *m = aioc_error_message();
      fprintf(stderr, "b10_aioc: call ended with %s%s%s after %d chunk(s)\n",
              rc == AIOC_EXHAUSTED ? "its end" : aioc_strerror(rc),
              m && rc != AIOC_EXHAUSTED ? ": " : "",
              m && rc != AIOC_EXHAUSTED ? m : "", got);
      b->failed = 1;
      return rc < 0 ? rc : -EPROTO;
    }
    b->done++;
  }
  return AIOC_NORESULT;
}

typedef struct client_arg {
  long calls;
  int inflight, workers;
  bool local;
  double elapsed;
  bench b;
} client_arg;

static int client_main(void *arg, void **result) {
  (void)result;
  client_arg *a = arg;
  aioc_rpc_transport *tr;
  aioc_rpc_server *s = NULL;
  if (a->local) {
    MUST(aioc_rpc_local_new(&tr));
    MUST(serve(tr, &s));
  } else {
    /* Requests without publisher confirms: the exchange b10_raw and
     * b10_pika make (neither confirms its requests). */
    aioc_rpc_amqp_options ao = {.prefix = prefix, .unconfirmed_requests = 1};
    MUST(aioc_rpc_amqp_new(&tr, url, &ao));
  }
  bench *b = &a->b;
  MUST(aioc_rpc_client_new(&b->c, tr, NULL));
  b->calls = a->calls;
  b->lat = calloc((size_t)a->calls * CHUNKS, sizeof *b->lat);
  if (!b->lat) return -ENOMEM;
  aioc_task **t = calloc((size_t)a->inflight, sizeof *t);
  if (!t) return -ENOMEM;
  double t0 = now();
  for (int i = 0; i < a->inflight; i++)
    MUST(aioc_spawn(&t[i], slot_main, b));
  for (int i = 0; i < a->inflight; i++) {
    int trc = aioc_task_await(t[i], NULL);
    (void)trc; /* a failed slot says so and sets b->failed */
    aioc_task_unref(t[i]);
  }
  a->elapsed = now() - t0;
  free(t);
  aioc_rpc_client_free(b->c);
  if (s) {
    int rc = aioc_rpc_server_shutdown(s, 1);
    (void)rc;
  }
  aioc_rpc_server_free(s);
  aioc_rpc_transport_free(tr);
  return 0;
}

static int cmp(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return a < b ? -1 : a > b;
}

static void usage(void) {
  fprintf(stderr, "usage: b10_aioc local CALLS INFLIGHT\n"
                  "       b10_aioc PORT CALLS INFLIGHT WORKERS [--prefix P]\n"
                  "       b10_aioc worker PORT PREFIX\n");
  exit(2);
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "worker") == 0) {
    snprintf(url, sizeof url, "amqp://guest:guest@127.0.0.1:%d", atoi(argv[2]));
    snprintf(prefix, sizeof prefix, "%s", argv[3]);
    return aioc_run(worker_main, NULL, NULL) == 0 ? 0 : 1;
  }
  if (argc < 4) usage();
  client_arg a = {0};
  a.local = strcmp(argv[1], "local") == 0;
  const char *given_prefix = NULL;
  if (!a.local && argc == 7 && strcmp(argv[5], "--prefix") == 0) {
    given_prefix = argv[6];
    argc = 5;
  }
  if (a.local ? argc != 4 : argc != 5) usage();
  a.calls = atol(argv[2]);
  a.inflight = atoi(argv[3]);
  a.workers = a.local ? 0 : atoi(argv[4]);
  if (a.calls < 1 || a.inflight < 1 || a.workers < 0 ||
      (a.workers == 0 && !a.local && !given_prefix))
    usage();
  pid_t *pids = NULL;
  if (!a.local) {
    int port = atoi(argv[1]);
    snprintf(url, sizeof url, "amqp://guest:guest@127.0.0.1:%d", port);
    if (given_prefix)
      snprintf(prefix, sizeof prefix, "%s", given_prefix);
    else
      snprintf(prefix, sizeof prefix, "b10aioc.%d.", (int)getpid());
    /* The workers start before this process has a loop, and each tells
     * when its consumer is up (the client's requests are mandatory: with
     * no queue yet they would come back). */
    int p[2];
    if (pipe(p) < 0) return 1;
    pids = calloc((size_t)a.workers + 1, sizeof *pids);
    for (int w = 0; w < a.workers; w++) {
      pids[w] = fork();
      if (pids[w] < 0) return 1;
      if (pids[w] == 0) {
        close(p[0]);
        ready_fd = p[1];
        int rc = aioc_run(worker_main, NULL, NULL);
        _exit(rc == 0 ? 0 : 1);
      }
    }
    close(p[1]);
    for (int w = 0; w < a.workers; w++) {
      char one;
      if (read(p[0], &one, 1) != 1) {
        fprintf(stderr, "b10_aioc: a worker did not start\n");
        for (int k = 0; k < a.workers; k++)
          kill(pids[k], SIGKILL);
        return 1;
      }
    }
    close(p[0]);
  }
  int rc = aioc_run(client_main, &a, NULL);
  if (pids) {
    for (int w = 0; w < a.workers; w++)
      kill(pids[w], SIGKILL);
    for (int w = 0; w < a.workers; w++)
      waitpid(pids[w], NULL, 0);
    free(pids);
  }
  bench *b = &a.b;
  if (rc != 0 || b->failed || b->done != a.calls) {
    fprintf(stderr, "b10_aioc: failed (%s; %ld of %ld calls done)\n",
            aioc_strerror(rc), b->done, a.calls);
    return 1;
  }
  qsort(b->lat, b->nlat, sizeof *b->lat, cmp);
  printf("{\"calls_per_s\": %.0f, \"p50_ms\": %.4f, \"p99_ms\": %.4f, "
         "\"calls\": %ld, \"inflight\": %d, \"workers\": %d}\n",
         (double)b->done / a.elapsed, b->nlat ? b->lat[b->nlat / 2] * 1e3 : 0,
         b->nlat ? b->lat[b->nlat * 99 / 100] * 1e3 : 0, b->done, a.inflight,
         a.workers);
  free(b->lat);
  return 0;
}

/* aioc demo: a tour of the seed articles' examples, ported to C.
 *
 *   seed 000  timeouts between the chunks of an async generator (an RPC
 *             service over RabbitMQ, the AsyncTimedIterable wrapper)
 *   seed 001  "Async Python. Deep Dive": iterators and generators
 *   seed 002  "AsyncIO for the Working Python Developer" (Yeray Diaz)
 *   seed 003  "Python Asyncio Part 3 - Asynchronous Context Managers and
 *             Asynchronous Iterators" (BBC R&D)
 *   seed 004  the aioutils README: Group, Pool, Yielder, OrderedYielder
 *   then a look inside a running program: seed 000's RPC call dumped
 *   mid-stream with every observation on (demo --trace FILE also writes
 *   its flight recorder's events as a Chrome trace, which make demo
 *   draws as an SVG timeline), and the stall detector's report of a
 *   task that blocks the loop;
 *   and, last, a TCP echo exchange on loopback (the I/O layer), on the
 *   real clock.
 *
 * The examples are not repeated here: the demo is built from the seed ports
 * themselves (tests/seeds/seed_*.c, compiled with SEED_NO_MAIN), and runs
 * each one after a line saying what it shows. Most examples wait on the
 * virtual clock, so their timings are the articles' and they are instant.
 * The exceptions run on the real clock: 002/1e (blocking calls in
 * threads) and seed 002's HTTP examples, 1d to 4a, whose requests are
 * real (libcurl) and go to a local server on 127.0.0.1 that stands in for
 * the article's services (no network is needed: the service that must not
 * resolve is under the reserved .invalid domain). Their timings vary a
 * little from run to run, as does 002/1c's asynchronous order, which is
 * random, as in the article. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "seed_000_examples.h"
#include "seed_001_examples.h"
#include "seed_002_examples.h"
#include "seed_003_examples.h"
#include "seed_004_examples.h"

#define SEED_ENTRY(name) &name,
static const seed_example *const seed_000[] = {SEED_000_EXAMPLES(SEED_ENTRY)};
static const seed_example *const seed_001[] = {SEED_001_EXAMPLES(SEED_ENTRY)};
static const seed_example *const seed_002[] = {SEED_002_EXAMPLES(SEED_ENTRY)};
static const seed_example *const seed_003[] = {SEED_003_EXAMPLES(SEED_ENTRY)};
static const seed_example *const seed_004[] = {SEED_004_EXAMPLES(SEED_ENTRY)};
#undef SEED_ENTRY

/* One seed article and its examples, in the article's order. */
typedef struct seed_article {
  const char *id;
  const char *title;
  const seed_example *const *examples;
  size_t n;
} seed_article;

#define SEED_ARTICLE(id, title, arr) {id, title, arr, sizeof arr / sizeof *arr}
static const seed_article tour[] = {
    SEED_ARTICLE("000",
                 "timeouts between the chunks of an async generator (RPC "
                 "over RabbitMQ, AsyncTimedIterable)",
                 seed_000),
    SEED_ARTICLE("001", "\"Async Python. Deep Dive\": iterators and generators",
                 seed_001),
    SEED_ARTICLE("002",
                 "\"AsyncIO for the Working Python Developer\" (Yeray Diaz)",
                 seed_002),
    SEED_ARTICLE("003",
                 "\"Python Asyncio Part 3 - Asynchronous Context Managers "
                 "and Asynchronous Iterators\" (BBC R&D)",
                 seed_003),
    SEED_ARTICLE("004",
                 "the aioutils README: Group, Pool, Yielder, OrderedYielder "
                 "driven from plain code",
                 seed_004),
};
#undef SEED_ARTICLE

/* ---- the TCP echo exchange ---- */

static int echo_handler(void *arg, aioc_stream *s) {
  (void)arg;
  char line[128];
  size_t n;
  while (aioc_stream_readline(s, line, sizeof line, &n, 5) == 0 && n) {
    printf("  server: echoing %.*s", (int)n, line);
    if (aioc_stream_write(s, line, n) < 0 || aioc_stream_drain(s, 5) < 0)
      break;
  }
  return 0;
}

static int echo_main(void *arg, void **result) {
  (void)arg, (void)result;
  aioc_server *srv;
  int rc = aioc_start_server(&srv, "127.0.0.1", 0, echo_handler, NULL, NULL);
  if (rc < 0) return rc;
  aioc_stream *s;
  rc = aioc_open_connection(&s, "127.0.0.1", aioc_server_port(srv), NULL, 5);
  printf("  client: connected to 127.0.0.1\n");
  static const char *const lines[] = {"hello\n", "over TCP\n", "bye\n"};
  for (int i = 0; i < 3 && rc == 0; i++) {
    char back[128];
    size_t n;
    printf("  client: sending %s", lines[i]);
    fflush(stdout);
    rc = aioc_stream_write(s, lines[i], strlen(lines[i]));
    if (rc == 0) rc = aioc_stream_readline(s, back, sizeof back, &n, 5);
    if (rc == 0) printf("  client: got back %.*s", (int)n, back);
  }
  if (s) {
    aioc_stream_close(s); /* the server's handler reads the end */
    if (rc == 0) rc = aioc_stream_wait_closed(s, 5);
    aioc_stream_free(s);
  }
  aioc_server_close(srv);
  int wrc = aioc_server_wait_closed(srv, 5);
  aioc_server_free(srv);
  printf("  server closed\n");
  return rc < 0 ? rc : wrc;
}

/* ---- seeing inside: seed 000's RPC call, dumped mid-stream ---- */

/* The inspector: at t=1.5 s the client has waited 1.3 s for chunk 3 (one
 * timeout behind it) and the worker sleeps before sending it. */
static int inspect(void *arg, void **result) {
  (void)arg, (void)result;
  int rc = aioc_sleep(1.5);
  if (rc < 0) return rc;
  printf("  -- the loop's tasks at t=%.2f, mid-stream --\n", aioc_time());
  fflush(stdout);
  return aioc_loop_dump(NULL, stdout);
}

/* Once the call is over: the flight recorder's events, as a Chrome
 * trace (make demo draws it as an SVG timeline, one lane per task). */
static void save_trace(void *arg) {
  const char *path = arg;
  if (!path) return;
  int rc = aioc_loop_trace_save(NULL, path, NULL, 0);
  if (rc < 0)
    printf("!! the trace could not be written to %s: %s\n", path,
           aioc_strerror(rc));
  else
    printf("  -- the call's events, as a Chrome trace: %s --\n", path);
}

static int observe_section(const char *trace_path) {
  aioc_loop_options lo = {.observe = AIOC_OBSERVE_ALL};
  return seed000_rpc_inspected(&lo, inspect, save_trace, (void *)trace_path);
}

/* ---- seeing inside: a task that blocks the loop ---- */

/* A long computation on the loop's thread, as a program would run by
 * mistake (a blocking call does the same: nothing else runs until it
 * returns). */
static __attribute__((noinline)) void blocking_call(void) {
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  volatile unsigned long spin = 0;
  do {
    for (int i = 0; i < 100000; i++) spin++;
    clock_gettime(CLOCK_MONOTONIC, &t);
  } while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) <
           300000000L);
}

static int blocker(void *arg, void **result) {
  (void)arg, (void)result;
  int rc = aioc_sleep(0.01);
  if (rc < 0) return rc;
  printf("  blocker: computes for 300 ms without a suspension point\n");
  fflush(stdout);
  blocking_call();
  printf("  blocker: back\n");
  return 0;
}

/* The detector's reports, on its own thread: written to stdout. */
static void on_stall(void *arg, const aioc_stall_report *r) {
  (void)arg;
  aioc_stall_report_write(r, stdout);
  fflush(stdout);
}

static int stall_main(void *arg, void **result) {
  (void)arg, (void)result;
  int rc = aioc_loop_set_stall_handler(aioc_get_running_loop(), on_stall,
                                       NULL);
  aioc_task *t;
  aioc_task_options to = {.name = "blocker"};
  if (rc == 0) rc = aioc_spawn_ex(&t, NULL, blocker, NULL, &to);
  if (rc < 0) return rc;
  rc = aioc_task_await(t, NULL);
  aioc_task_unref(t);
  return rc;
}

static int stall_section(void) {
  aioc_run_options o;
  memset(&o, 0, sizeof o);
  o.loop.stall_threshold = 0.1; /* report a task running 100 ms on end */
  return aioc_run_ex(stall_main, NULL, NULL, &o);
}

int main(int argc, char **argv) {
  /* demo [--trace FILE]: where the look inside writes its trace */
  const char *trace_path = NULL;
  if (argc == 3 && strcmp(argv[1], "--trace") == 0) {
    trace_path = argv[2];
  } else if (argc != 1) {
    fprintf(stderr, "usage: demo [--trace FILE]\n");
    return 2;
  }
  size_t narticles = sizeof tour / sizeof *tour, total = 0;
  int failed = 0;
  for (size_t a = 0; a < narticles; a++) total += tour[a].n;
  printf("aioc %s demo: %zu seed articles, %zu examples in C\n",
         aioc_version_string(), narticles, total);
  printf("(virtual clock: the articles' timings, exact and instant; real "
         "clock for 002/1e and seed 002's HTTP examples)\n");
  for (size_t a = 0; a < narticles; a++) {
    printf("\n######## seed %s: %s\n", tour[a].id, tour[a].title);
    for (size_t i = 0; i < tour[a].n; i++) {
      const seed_example *ex = tour[a].examples[i];
      printf("\n== %s: %s\n", ex->name, ex->about);
      fflush(stdout);
      int rc = ex->run();
      if (rc != 0) {
        printf("!! %s failed: %s (%s)\n", ex->name, aioc_err_name(rc),
               aioc_strerror(rc));
        failed++;
      }
    }
  }
  printf("\n######## seeing inside: seed 000's RPC call dumped mid-stream"
         "\n\n");
  fflush(stdout);
  if (observe_section(trace_path) != 0) {
    printf("!! the look inside failed\n");
    failed++;
  }
  printf("\n######## seeing inside: the stall detector reports a task that "
         "blocks the loop\n\n");
  fflush(stdout);
  if (stall_section() != 0) {
    printf("!! the stall section failed\n");
    failed++;
  }
  printf("\n######## network I/O: a TCP echo exchange on loopback\n\n");
  fflush(stdout);
  int rc = aioc_run(echo_main, NULL, NULL);
  if (rc != 0) {
    printf("!! the echo exchange failed: %s (%s)\n", aioc_err_name(rc),
           aioc_strerror(rc));
    failed++;
  }
  fflush(stdout);
  return failed ? 1 : 0;
}

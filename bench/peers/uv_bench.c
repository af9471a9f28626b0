/* libuv peer for aioc's benchmarks (see bench/README.md).
 *
 * Usage: uv_bench WORKLOAD [-n N]
 *
 * WORKLOAD is one of B1, B3, B4c: the workloads that fit libuv's callback
 * style (it has no tasks, so no B2 and no B4 with sleeping tasks). It runs
 * once and prints result lines on stdout:
 *
 *   RESULT workload=B1 runtime=libuv value=160 unit=ns/task lower_is_better=1
 *
 * N is 1,000,000 unless -n N or the environment variable BENCH_N says
 * otherwise. Figures are per callback (per timer), so they compare with the
 * per-task figures of the other runtimes.
 *
 * Build: cc -O2 -o uv_bench uv_bench.c -luv
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#define DEFAULT_N 1000000
#define SEED 12345u

/* ---------------------------------------------------------------- helpers */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A VmXXX field of /proc/self/status, in bytes (0 if absent). */
static long long status_bytes(const char *field) {
  char line[256];
  size_t len = strlen(field);
  long long kib = 0;
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL) return 0;
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, field, len) == 0 && line[len] == ':') {
      kib = atoll(line + len + 1);
      break;
    }
  }
  fclose(f);
  return kib * 1024;
}

/* Resets VmHWM to the current RSS (Linux >= 4.0), so that the peak read later
 * belongs to the workload, and returns the baseline RSS. */
static long long reset_peak_rss(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (f != NULL) {
    fputs("5", f);
    fclose(f);
  }
  return status_bytes("VmRSS");
}

static double per_task_bytes(long long peak, long long base, size_t n) {
  return peak > base ? (double)(peak - base) / (double)n : 0.0;
}

static void result(const char *workload, double value, const char *unit) {
  printf("RESULT workload=%s runtime=libuv value=%.6g unit=%s "
         "lower_is_better=1\n",
         workload, value, unit);
  fflush(stdout);
}

static void die(const char *msg) {
  fprintf(stderr, "uv_bench: %s\n", msg);
  exit(1);
}

static void check(int rc, const char *what) {
  if (rc != 0) {
    fprintf(stderr, "uv_bench: %s: %s\n", what, uv_strerror(rc));
    exit(1);
  }
}

/* splitmix64: a small seeded PRNG, the same sequence on every run. */
static uint64_t rng_state = SEED;
static uint64_t rng_next(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void free_on_close(uv_handle_t *h) {
  free(h->data);
}

/* ---------------------------------------------------------------- B1 */

/* B1 has no tasks in libuv; the closest honest analogue of "spawn a trivial
 * task and join it" is a heap-allocated idle handle per task (what
 * an "idle callback"): started before the loop runs,
 * its callback stores the task's result (its index) and closes the handle,
 * and the close callback frees it. A timer with timeout 0 would go through
 * the timer heap, a check handle would need the loop to block first; an idle
 * handle is the cheapest "run this once on the next iteration". The join is
 * uv_run returning once every handle is closed; the results are then summed
 * from an array, as the Go peer does. */
struct b1_task {
  uv_idle_t idle;
  size_t index;
};

static size_t *b1_results;

static void b1_on_idle(uv_idle_t *h) {
  struct b1_task *t = h->data;
  b1_results[t->index] = t->index;
  uv_close((uv_handle_t *)h, free_on_close);
}

static void b1(size_t n) {
  uv_loop_t loop;
  long long base, peak;
  double t0, t1;
  size_t i;
  unsigned long long sum = 0;

  check(uv_loop_init(&loop), "uv_loop_init");
  base = reset_peak_rss();
  t0 = now_s();
  b1_results = malloc(n * sizeof *b1_results);
  if (b1_results == NULL) die("out of memory");
  for (i = 0; i < n; i++) {
    struct b1_task *t = malloc(sizeof *t);
    if (t == NULL) die("out of memory");
    t->index = i;
    t->idle.data = t;
    check(uv_idle_init(&loop, &t->idle), "uv_idle_init");
    check(uv_idle_start(&t->idle, b1_on_idle), "uv_idle_start");
  }
  check(uv_run(&loop, UV_RUN_DEFAULT), "uv_run");
  for (i = 0; i < n; i++)
    sum += b1_results[i];
  t1 = now_s();
  peak = status_bytes("VmHWM");
  if (sum != (unsigned long long)n * (n - 1) / 2) die("B1: wrong sum");
  free(b1_results);
  check(uv_loop_close(&loop), "uv_loop_close");
  result("B1", (t1 - t0) * 1e9 / (double)n, "ns/task");
  result("B1rss", per_task_bytes(peak, base, n), "B/task");
}

/* ---------------------------------------------------------------- B3, B4c */

/* One heap-allocated timer per "task": libuv has timers, not tasks, so B3
 * measures the memory of a pending timer (uv_timer_t plus malloc overhead) and
 * B4c the timer heap's cost. The callback counts itself and closes the
 * handle; the close callback frees it. */
static size_t timers_fired;

static void on_timer(uv_timer_t *h) {
  timers_fired++;
  uv_close((uv_handle_t *)h, free_on_close);
}

/* Starts n timers, the i-th with timeout ms(i) milliseconds, and runs the
 * loop until all have fired and closed. */
static void run_timers(uv_loop_t *loop, size_t n, uint64_t (*ms)(size_t)) {
  size_t i;
  timers_fired = 0;
  /* libuv measures a timeout from the loop's cached "now"; refresh it as the
   * timers are created (every 256 of them: microseconds of drift at most),
   * so that, as with the other runtimes' call_later or time.Sleep, every
   * deadline counts from the moment its timer was started, not from before
   * the whole batch was created. */
  for (i = 0; i < n; i++) {
    uv_timer_t *t = malloc(sizeof *t);
    if (t == NULL) die("out of memory");
    if ((i & 255) == 0) uv_update_time(loop);
    check(uv_timer_init(loop, t), "uv_timer_init");
    t->data = t;
    check(uv_timer_start(t, on_timer, ms(i), 0), "uv_timer_start");
  }
  check(uv_run(loop, UV_RUN_DEFAULT), "uv_run");
  if (timers_fired != n) die("not every timer fired");
}

static uint64_t one_second(size_t i) {
  (void)i;
  return 1000;
}

/* Uniform in [0, 1000] ms: libuv timers have millisecond resolution. */
static uint64_t random_ms(size_t i) {
  (void)i;
  return rng_next() % 1001;
}

/* B3: n timers of 1 s pending at once. Figures: peak resident bytes per
 * timer (B3) and the wall time (B3wall). */
static void b3(size_t n) {
  uv_loop_t loop;
  long long base, peak;
  double t0, t1;

  check(uv_loop_init(&loop), "uv_loop_init");
  base = reset_peak_rss();
  t0 = now_s();
  run_timers(&loop, n, one_second);
  t1 = now_s();
  peak = status_bytes("VmHWM");
  check(uv_loop_close(&loop), "uv_loop_close");
  result("B3", per_task_bytes(peak, base, n), "B/task");
  result("B3wall", t1 - t0, "s");
}

/* B4c: n timers with random deadlines in [0, 1 s]. Figure: the wall time
 * from the first timer started to the last callback, minus 1 s. */
static void b4c(size_t n) {
  uv_loop_t loop;
  double t0, t1;

  check(uv_loop_init(&loop), "uv_loop_init");
  t0 = now_s();
  run_timers(&loop, n, random_ms);
  t1 = now_s();
  check(uv_loop_close(&loop), "uv_loop_close");
  result("B4c", t1 - t0 - 1.0, "s");
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv) {
  const char *workload = NULL;
  const char *env = getenv("BENCH_N");
  long long n = env != NULL && *env != '\0' ? atoll(env) : DEFAULT_N;
  int i;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
      n = atoll(argv[++i]);
    else if (workload == NULL)
      workload = argv[i];
    else
      workload = "";
  }
  if (workload == NULL || *workload == '\0' || n < 1) {
    fprintf(stderr, "usage: uv_bench B1|B3|B4c [-n N]\n");
    return 2;
  }
  if (strcmp(workload, "B1") == 0)
    b1((size_t)n);
  else if (strcmp(workload, "B3") == 0)
    b3((size_t)n);
  else if (strcmp(workload, "B4c") == 0)
    b4c((size_t)n);
  else {
    fprintf(stderr, "uv_bench: workload %s does not fit libuv\n", workload);
    return 2;
  }
  return 0;
}

/* aioc side of the benchmarks B1-B4 (see bench/README.md). One workload per
 * run; prints RESULT lines that bench/run.py collects:
 *   RESULT workload=B1 runtime=aioc value=83.0 unit=ns/task lower_is_better=1
 * Sizes can be reduced with BENCH_N for quick runs. */
#include <aioc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

/* A failed call ends the benchmark: a run that skipped work would measure
 * something easier than it says. */
#define MUST(x)                                                                \
  do {                                                                         \
    int must_rc_ = (x);                                                        \
    if (must_rc_ < 0) {                                                        \
      fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x,               \
              aioc_strerror(must_rc_));                                        \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

static long n_default(long n) {
  const char *e = getenv("BENCH_N");
  return e && *e ? atol(e) : n;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Resident memory: VmRSS + VmPTE (page tables are part of the cost). */
static long status_kb(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = 0;
  size_t k = strlen(key);
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, key, k) == 0) v = atol(line + k + 1);
  if (f) fclose(f);
  return v;
}

static void result(const char *w, double v, const char *unit) {
  printf("RESULT workload=%s runtime=aioc value=%.6g unit=%s "
         "lower_is_better=1\n", w, v, unit);
  fflush(stdout);
}

/* ---- B1: spawn N trivial tasks, join all, sum ---- */

static int ret_index(void *arg, void **res) {
  *res = arg;
  return 0;
}

static int b1_main(void *arg, void **res) {
  long n = (long)(intptr_t)arg;
  aioc_task **ts = malloc((size_t)n * sizeof *ts);
  long rss0 = status_kb("VmRSS:");
  double t0 = now_s();
  for (long i = 0; i < n; i++)
    if (aioc_spawn(&ts[i], ret_index, AIOC_INT(i)) != 0) return -ENOMEM;
  long long sum = 0;
  for (long i = 0; i < n; i++) {
    void *r;
    if (aioc_task_await(ts[i], &r) != 0) return -EIO;
    sum += AIOC_TO_INT(r);
    aioc_task_unref(ts[i]);
  }
  double t1 = now_s();
  long hwm = status_kb("VmHWM:");
  free(ts);
  if (sum != (long long)n * (n - 1) / 2) {
    fprintf(stderr, "B1: wrong sum %lld\n", sum);
    return -EIO;
  }
  result("B1", (t1 - t0) * 1e9 / n, "ns/task");
  result("B1rss", (double)(hwm - rss0) * 1024 / n, "B/task");
  *res = NULL;
  return 0;
}

/* The floor under B1 on this machine: a million tasks alive at once need
 * a million 64-byte records in fresh memory, and the first write to each
 * fresh page costs a page fault (on a virtual machine, a trip through the
 * hypervisor too). This writes one 64-byte record's worth into every 64
 * bytes of a fresh mapping as large as n records, and reports the time
 * per record: no spawn can cost less. */
static void b1_touch_floor(long n) {
  size_t len = (size_t)n * 64;
  char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return;
  double t0 = now_s();
  for (size_t i = 0; i < len; i += 64) memset(p + i, 1, 64);
  double t1 = now_s();
  munmap(p, len);
  result("B1floor", (t1 - t0) * 1e9 / n, "ns/task");
}

/* ---- B2: two tasks hand control back and forth ---- */

static int b2_player(void *arg, void **res) {
  long n = (long)(intptr_t)arg;
  (void)res;
  for (long i = 0; i < n; i++)
    if (aioc_sleep(0) != 0) return -EIO;
  return 0;
}

static int b2_main(void *arg, void **res) {
  long total = (long)(intptr_t)arg;
  aioc_task *a, *b;
  double t0 = now_s();
  MUST(aioc_spawn(&a, b2_player, AIOC_INT(total / 2)));
  MUST(aioc_spawn(&b, b2_player, AIOC_INT(total / 2)));
  MUST(aioc_task_await(a, NULL));
  MUST(aioc_task_await(b, NULL));
  double t1 = now_s();
  aioc_task_unref(a);
  aioc_task_unref(b);
  result("B2", (t1 - t0) * 1e9 / total, "ns/switch");
  *res = NULL;
  return 0;
}

/* ---- B3: N concurrent tasks each sleeping 1 s ---- */

static int sleeper(void *arg, void **res) {
  double *d = arg;
  (void)res;
  return aioc_sleep(*d);
}

static int b3_main(void *arg, void **res) {
  long n = (long)(intptr_t)arg;
  aioc_task **ts = malloc((size_t)n * sizeof *ts);
  static double one = 1.0;
  long rss0 = status_kb("VmRSS:") + status_kb("VmPTE:");
  double t0 = now_s();
  for (long i = 0; i < n; i++)
    if (aioc_spawn(&ts[i], sleeper, &one) != 0) return -ENOMEM;
  /* Let every task start and park in its sleep, then measure. */
  MUST(aioc_sleep(0));
  MUST(aioc_sleep(0));
  long rss1 = status_kb("VmRSS:") + status_kb("VmPTE:");
  for (long i = 0; i < n; i++) {
    MUST(aioc_task_await(ts[i], NULL));
    aioc_task_unref(ts[i]);
  }
  double t1 = now_s();
  free(ts);
  result("B3", (double)(rss1 - rss0) * 1024 / n, "B/task");
  result("B3wall", t1 - t0, "s");
  *res = NULL;
  return 0;
}

/* ---- B4: N sleeping tasks with random deadlines in [0, 1 s] ---- */

static int b4_main(void *arg, void **res) {
  long n = (long)(intptr_t)arg;
  aioc_task **ts = malloc((size_t)n * sizeof *ts);
  double *d = malloc((size_t)n * sizeof *d);
  srand(12345);
  for (long i = 0; i < n; i++) d[i] = (double)rand() / RAND_MAX;
  double t0 = now_s();
  for (long i = 0; i < n; i++)
    if (aioc_spawn(&ts[i], sleeper, &d[i]) != 0) return -ENOMEM;
  for (long i = 0; i < n; i++) {
    MUST(aioc_task_await(ts[i], NULL));
    aioc_task_unref(ts[i]);
  }
  double t1 = now_s();
  free(ts);
  free(d);
  result("B4", t1 - t0 - 1.0, "s");
  *res = NULL;
  return 0;
}

/* B4c: the same deadlines as plain timer callbacks. */
static long b4c_left;
static void b4c_cb(void *arg) {
  (void)arg;
  b4c_left--;
}

static int b4c_main(void *arg, void **res) {
  long n = (long)(intptr_t)arg;
  aioc_loop *loop = aioc_get_running_loop();
  srand(12345);
  b4c_left = n;
  double t0 = now_s();
  for (long i = 0; i < n; i++)
    if (aioc_call_later(NULL, loop, (double)rand() / RAND_MAX, b4c_cb, NULL) !=
        0)
      return -ENOMEM;
  while (b4c_left)
    MUST(aioc_sleep(0.001));
  double t1 = now_s();
  result("B4c", t1 - t0 - 1.0, "s");
  *res = NULL;
  return 0;
}

/* ---- B7: a generator of N items, plainly and with a timeout per item ---- */

static int b7_gen(void *arg, aioc_gen *g) {
  long n = (long)(intptr_t)arg;
  for (long i = 0; i < n; i++)
    if (aioc_gen_yield(g, AIOC_INT(i), NULL) != 0) return 0;
  return 0;
}

static int b7_timed; /* B7t: a timeout on every item */

static int b7_main(void *arg, void **res) {
  long n = (long)(intptr_t)arg;
  const char *w = b7_timed ? "B7t" : "B7";
  double timeout = b7_timed ? 1.0 : AIOC_FOREVER;
  aioc_gen *g;
  if (aioc_gen_new(&g, b7_gen, AIOC_INT(n), NULL) != 0) return -ENOMEM;
  long long sum = 0;
  void *item;
  double t0 = now_s();
  int rc;
  while ((rc = aioc_gen_next(g, &item, timeout)) == 0)
    sum += AIOC_TO_INT(item);
  double t1 = now_s();
  aioc_gen_free(g);
  if (rc != AIOC_EXHAUSTED || sum != (long long)n * (n - 1) / 2) {
    fprintf(stderr, "%s: rc %d, sum %lld\n", w, rc, sum);
    return -EIO;
  }
  result(w, (t1 - t0) * 1e9 / n, "ns/item");
  *res = NULL;
  return 0;
}

/* ---- B7i: an async iterator object (no generator body, no switch) ---- */

/* The C form of an async iterator class whose __anext__ returns at once
 * (seed 001's EfficientFile): a step function behind aioc_iter_new(). The
 * asyncio peer is such a class; B7 is the generator form. */
typedef struct counter {
  long i, n;
} counter;

static int counter_next(void *self, void **item, double timeout) {
  (void)timeout;
  counter *c = self;
  if (c->i >= c->n) return AIOC_EXHAUSTED;
  *item = AIOC_INT(c->i++);
  return 0;
}

static int counter_close(void *self) {
  (void)self;
  return 0;
}

static void counter_free(void *self) { (void)self; }

static int b7i_main(void *arg, void **res) {
  static const aioc_iter_vtable vt = {counter_next, counter_close,
                                      counter_free};
  counter c = {0, (long)(intptr_t)arg};
  aioc_iter *it;
  if (aioc_iter_new(&it, &vt, &c) != 0) return -ENOMEM;
  long long sum = 0;
  void *item;
  double t0 = now_s();
  int rc;
  while ((rc = aioc_iter_next(it, &item, AIOC_FOREVER)) == 0)
    sum += AIOC_TO_INT(item);
  double t1 = now_s();
  aioc_iter_free(it);
  if (rc != AIOC_EXHAUSTED || sum != (long long)c.n * (c.n - 1) / 2) {
    fprintf(stderr, "B7i: rc %d, sum %lld\n", rc, sum);
    return -EIO;
  }
  result("B7i", (t1 - t0) * 1e9 / c.n, "ns/item");
  *res = NULL;
  return 0;
}

/* ---- B8: aioutils' nested example in real time; Pool(100) ---- */

static aioc_group *b8_group;

static int b8_inner(void *arg, void **res) {
  (void)arg;
  (void)res;
  return aioc_sleep(0.1);
}

static int b8_outer(void *arg, void **res) {
  (void)arg;
  (void)res;
  int rc = aioc_sleep(0.1);
  for (int i = 0; i < 10 && rc == 0; i++)
    rc = aioc_group_spawn(b8_group, b8_inner, NULL);
  return rc;
}

/* Driven from plain code, as in the seed: the Group runs the loop. */
static int b8_nested(void) {
  MUST(aioc_group_new(&b8_group, NULL));
  double t0 = now_s();
  for (int i = 0; i < 10; i++)
    MUST(aioc_group_spawn(b8_group, b8_outer, NULL));
  int rc = aioc_group_join(b8_group, AIOC_FOREVER);
  double t1 = now_s();
  aioc_group_free(b8_group);
  if (rc != 0) return 1;
  result("B8", (t1 - t0) * 1e3, "ms");
  return 0;
}

static int b8_short(void *arg, void **res) {
  (void)arg;
  (void)res;
  return aioc_sleep(0);
}

static int b8_pool(long n) {
  aioc_group *p;
  MUST(aioc_pool_new(&p, 100));
  double t0 = now_s();
  for (long i = 0; i < n; i++)
    MUST(aioc_group_spawn(p, b8_short, NULL));
  int rc = aioc_group_join(p, AIOC_FOREVER);
  double t1 = now_s();
  aioc_group_free(p);
  if (rc != 0) return 1;
  result("B8p", (t1 - t0) * 1e9 / n, "ns/task");
  return 0;
}

/* ---- B6x: to_thread of a trivial function, 100 in flight ---- */

static int b6x_trivial(void *arg, void **res) {
  *res = arg;
  return 0;
}

typedef struct b6x_state {
  long left; /* calls not yet made */
  long sum;
} b6x_state;

/* One of 100 workers: calls to_thread until the calls run out. */
static int b6x_worker(void *arg, void **res) {
  (void)res;
  b6x_state *s = arg;
  while (s->left > 0) {
    long i = s->left--;
    void *r;
    int rc = aioc_to_thread(&r, b6x_trivial, AIOC_INT(i));
    if (rc < 0) return rc;
    s->sum += AIOC_TO_INT(r);
  }
  return AIOC_NORESULT;
}

static int b6x_main(void *arg, void **res) {
  (void)res;
  long n = AIOC_TO_INT(arg);
  enum { INFLIGHT = 100 };
  b6x_state s = {n, 0};
  aioc_task *t[INFLIGHT];
  /* The pool's threads start on first use: one warm-up call. */
  void *r;
  MUST(aioc_to_thread(&r, b6x_trivial, NULL));
  double t0 = now_s();
  for (int i = 0; i < INFLIGHT; i++) MUST(aioc_spawn(&t[i], b6x_worker, &s));
  for (int i = 0; i < INFLIGHT; i++) {
    MUST(aioc_task_await(t[i], NULL));
    aioc_task_unref(t[i]);
  }
  double t1 = now_s();
  if (s.sum != n * (n + 1) / 2) {
    fprintf(stderr, "B6x: wrong sum %ld\n", s.sum);
    return -EPROTO;
  }
  result("B6x", (t1 - t0) * 1e6 / n, "us/call");
  return 0;
}

int main(int argc, char **argv) {
  const char *w = argc > 1 ? argv[1] : "B1";
  aioc_fn fn;
  long n;
  if (strcmp(w, "B1") == 0) {
    fn = b1_main;
    n = n_default(1000000);
  } else if (strcmp(w, "B2") == 0) {
    fn = b2_main;
    n = n_default(2000000);
  } else if (strcmp(w, "B3") == 0) {
    fn = b3_main;
    n = n_default(1000000);
  } else if (strcmp(w, "B4") == 0) {
    fn = b4_main;
    n = n_default(1000000);
  } else if (strcmp(w, "B4c") == 0) {
    fn = b4c_main;
    n = n_default(1000000);
  } else if (strcmp(w, "B8") == 0) {
    return b8_nested();
  } else if (strcmp(w, "B8p") == 0) {
    return b8_pool(n_default(100000));
  } else if (strcmp(w, "B7") == 0 || strcmp(w, "B7t") == 0) {
    b7_timed = strcmp(w, "B7t") == 0;
    fn = b7_main;
    n = n_default(1000000);
  } else if (strcmp(w, "B6x") == 0) {
    fn = b6x_main;
    n = n_default(10000);
  } else if (strcmp(w, "B7i") == 0) {
    fn = b7i_main;
    n = n_default(1000000);
  } else {
    fprintf(stderr, "usage: %s B1|B2|B3|B4|B4c|B6x|B7|B7t|B7i|B8|B8p\n",
            argv[0]);
    return 2;
  }
  int rc = aioc_run(fn, AIOC_INT(n), NULL);
  if (rc != 0) {
    fprintf(stderr, "%s failed: %s\n", w, aioc_strerror(rc));
    return 1;
  }
  if (fn == b1_main) b1_touch_floor(n);
  return 0;
}

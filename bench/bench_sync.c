/* aioc side of the synchronization benchmarks (see bench/README.md). One
 * workload per run; prints RESULT lines that bench/run.py collects:
 *   RESULT workload=B5 runtime=aioc value=9.5 unit=ns/item lower_is_better=1
 *
 * B5: one producer task and one consumer task pass 2,000,000 integers
 * through an aioc_queue of capacity 64; the consumer checks the sum.
 * Figure: wall time per item. Like B2 it ignores BENCH_N: B5 always passes
 * 2,000,000 items unless a count is given after the workload (for
 * profiling: `bench_sync B5 50000000`). */
#include <aioc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define B5_ITEMS 2000000L
#define B5_CAPACITY 64

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void result(const char *w, double v, const char *unit) {
  printf("RESULT workload=%s runtime=aioc value=%.3f unit=%s "
         "lower_is_better=1\n", w, v, unit);
  fflush(stdout);
}

/* ---- B5: producer -> queue(64) -> consumer ---- */

typedef struct b5 {
  const char *id; /* "B5", or "B5nocoop" (the cooperative budget off) */
  aioc_queue *q;
  long n;
  long long sum;
} b5;

static int b5_producer(void *arg, void **res) {
  (void)res;
  b5 *b = arg;
  for (long i = 0; i < b->n; i++) {
    int rc = aioc_queue_put(b->q, AIOC_INT(i), AIOC_FOREVER);
    if (rc) return rc;
  }
  return 0;
}

static int b5_consumer(void *arg, void **res) {
  (void)res;
  b5 *b = arg;
  long long sum = 0;
  for (long i = 0; i < b->n; i++) {
    void *it;
    int rc = aioc_queue_get(b->q, &it, AIOC_FOREVER);
    if (rc) return rc;
    sum += AIOC_TO_INT(it);
  }
  b->sum = sum;
  return 0;
}

static int b5_main(void *arg, void **res) {
  (void)res;
  b5 *b = arg;
  if (aioc_queue_new(&b->q, B5_CAPACITY, NULL) != 0) return -ENOMEM;
  aioc_task *p, *c;
  double t0 = now_s();
  if (aioc_spawn(&p, b5_producer, b) || aioc_spawn(&c, b5_consumer, b))
    return -ENOMEM;
  int rp = aioc_task_await(p, NULL);
  int rcons = aioc_task_await(c, NULL);
  double t1 = now_s();
  aioc_task_unref(p);
  aioc_task_unref(c);
  aioc_queue_free(b->q);
  if (rp || rcons) {
    fprintf(stderr, "B5: producer %s, consumer %s\n", aioc_err_name(rp),
            aioc_err_name(rcons));
    return -EIO;
  }
  long long want = (long long)b->n * (b->n - 1) / 2;
  if (b->sum != want) {
    fprintf(stderr, "B5: wrong sum %lld, expected %lld\n", b->sum, want);
    return -EIO;
  }
  result(b->id, (t1 - t0) * 1e9 / (double)b->n, "ns/item");
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2 && argc != 3) {
    fprintf(stderr, "usage: bench_sync B5 [ITEMS]\n");
    return 2;
  }
  if (strcmp(argv[1], "B5") == 0 || strcmp(argv[1], "B5nocoop") == 0) {
    /* B5nocoop: the same with the cooperative budget off, to show what
     * the budget costs B5. */
    if (strcmp(argv[1], "B5nocoop") == 0)
      setenv("AIOC_COOP_BUDGET", "never", 1);
    b5 b = {.id = argv[1], .n = argc == 3 ? atol(argv[2]) : B5_ITEMS};
    if (b.n < 1) {
      fprintf(stderr, "bench_sync: bad item count %s\n", argv[2]);
      return 2;
    }
    return aioc_run(b5_main, &b, NULL) == 0 ? 0 : 1;
  }
  fprintf(stderr, "bench_sync: unknown workload %s\n", argv[1]);
  return 2;
}

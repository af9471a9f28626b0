/* Allocation failures: one small program that uses most of the library
 * (spawn, gather, a TaskGroup, generators with timeouts and
 * aioc_iter_timed, a Group and a Yielder driven from plain code, a queue,
 * the thread-safe queue with a second thread, the executor, and streams
 * over a socket pair) runs once for every N, with the N-th allocation
 * failing, until a run completes without reaching N. Each run is a forked
 * child with a watchdog. At every N the
 * program must end with a clean code (-ENOMEM, or a code that follows
 * from it), without a crash or a hang, and without a leak: the live
 * allocations counted through the hook are back to zero once the loop is
 * freed (and LeakSanitizer, in the ASan build, finds nothing). Coroutine
 * stacks are mapped, not allocated: they are not counted. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "check.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define HAVE_LSAN 1
#endif

/* ---- the hook: counts, and fails the fail_at-th call ---- */

static atomic_long n_calls, n_live;
static long fail_at;
static atomic_bool injected;

static void *hook(void *ud, void *p, size_t n) {
  (void)ud;
  if (n == 0) {
    if (p) {
      free(p);
      atomic_fetch_sub(&n_live, 1);
    }
    return NULL;
  }
  if (atomic_fetch_add(&n_calls, 1) + 1 == fail_at) {
    atomic_store(&injected, true);
    return NULL;
  }
  void *r = realloc(p, n);
  if (r && !p) atomic_fetch_add(&n_live, 1);
  return r;
}

/* ---- outcomes ---- */

static bool unexpected; /* a code or value that no failure explains */

/* The codes an allocation failure may end a step with: its own, the
 * cancellation of the others it causes, and the shutdown of a queue
 * whose producer gave up. */
static bool allowed(int rc) {
  return rc == -ENOMEM || rc == -ECANCELED || rc == -ESHUTDOWN;
}

/* A step returned rc instead of what it should have. */
static int fail(int rc, int line) {
  if (!allowed(rc)) {
    printf("line %d: unexpected %s (%d)\n", line, aioc_err_name(rc), rc);
    unexpected = true;
  }
  return rc < 0 ? rc : -EPROTO;
}

#define STEP(call, want)                                                       \
  do {                                                                         \
    int rc_ = (call);                                                          \
    if (rc_ != (want)) {                                                       \
      rc = fail(rc_, __LINE__);                                                \
      goto out;                                                                \
    }                                                                          \
  } while (0)

/* A value that must be what it is whatever failed. */
#define VALUE(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      printf("line %d: wrong value: %s\n", __LINE__, #cond);                   \
      unexpected = true;                                                       \
    }                                                                          \
  } while (0)

/* ---- task functions and generator bodies ---- */

static int sleeper(void *arg, void **result) {
  (void)result;
  return aioc_sleep((double)AIOC_TO_INT(arg) / 1000);
}

static int valued(void *arg, void **result) {
  int rc = aioc_sleep(0.001);
  if (rc < 0) return rc;
  *result = arg;
  return 0;
}

static int failing(void *arg, void **result) {
  (void)arg;
  (void)result;
  int rc = aioc_sleep(0.002);
  if (rc < 0) return rc;
  return aioc_error(-EIO, "failing on purpose");
}

/* Yields 1, works 0.1 s, yields 2, returns 3. */
static int slow_counter(void *arg, aioc_gen *g) {
  (void)arg;
  int rc = aioc_gen_yield(g, AIOC_INT(1), NULL);
  if (rc == 0) rc = aioc_sleep(0.1);
  if (rc == 0) rc = aioc_gen_yield(g, AIOC_INT(2), NULL);
  if (rc == AIOC_EGENEXIT) return 0;
  if (rc < 0) return rc;
  return aioc_gen_return(g, AIOC_INT(3));
}

/* ---- plain code ---- */

static int plain_group(void) {
  aioc_group *g;
  int rc = aioc_group_new(&g, NULL);
  if (rc < 0) return fail(rc, __LINE__);
  STEP(aioc_group_spawn(g, sleeper, AIOC_INT(10)), 0);
  STEP(aioc_group_spawn(g, sleeper, AIOC_INT(20)), 0);
  STEP(aioc_group_join(g, 0.015), -ETIMEDOUT);
  STEP(aioc_group_join(g, AIOC_FOREVER), 0);
out:
  aioc_group_free(g);
  return rc;
}

static int plain_yielder(void) {
  aioc_group_options o = {.policy = AIOC_GROUP_COLLECT};
  aioc_yielder *y;
  void *it;
  int rc = aioc_yielder_new(&y, 1, &o);
  if (rc < 0) return fail(rc, __LINE__);
  STEP(aioc_yielder_spawn(y, valued, AIOC_INT(1)), 0);
  STEP(aioc_yielder_spawn(y, failing, NULL), 0);
  STEP(aioc_yielder_put(y, AIOC_INT(3)), 0);
  STEP(aioc_yielder_next(y, &it, 1.0), 0);
  VALUE(AIOC_TO_INT(it) == 1);
  STEP(aioc_yielder_next(y, &it, 1.0), -EIO);
  STEP(aioc_yielder_next(y, &it, 1.0), 0);
  VALUE(AIOC_TO_INT(it) == 3);
  STEP(aioc_yielder_next(y, &it, 1.0), AIOC_EXHAUSTED);
out:
  aioc_yielder_free(y);
  return rc;
}

/* From plain code or a task alike. */
static int generator(void) {
  aioc_gen *g;
  void *it, *v;
  int rc = aioc_gen_new(&g, slow_counter, NULL, NULL);
  if (rc < 0) return fail(rc, __LINE__);
  STEP(aioc_gen_next(g, &it, AIOC_FOREVER), 0);
  VALUE(AIOC_TO_INT(it) == 1);
  STEP(aioc_gen_next(g, &it, 0.05), -ETIMEDOUT);
  STEP(aioc_gen_next(g, &it, AIOC_FOREVER), 0);
  VALUE(AIOC_TO_INT(it) == 2);
  STEP(aioc_gen_next(g, &it, AIOC_FOREVER), AIOC_EXHAUSTED);
  STEP(aioc_gen_result(g, &v), 0);
  VALUE(AIOC_TO_INT(v) == 3);
out:
  aioc_gen_free(g);
  return rc;
}

/* ---- inside a task ---- */

static int spawn_gather(void) {
  aioc_task *t[2] = {NULL, NULL};
  void *res[2];
  int rc = 0;
  STEP(aioc_spawn(&t[0], valued, AIOC_INT(1)), 0);
  STEP(aioc_spawn(&t[1], valued, AIOC_INT(2)), 0);
  aioc_future *fs[2] = {aioc_task_future(t[0]), aioc_task_future(t[1])};
  STEP(aioc_gather(fs, 2, res, NULL, 0), 0);
  VALUE(AIOC_TO_INT(res[0]) == 1 && AIOC_TO_INT(res[1]) == 2);
out:
  for (int i = 0; i < 2; i++) {
    if (!t[i]) continue;
    aioc_task_cancel(t[i], NULL);
    IGNORE_RC(aioc_task_await(t[i], NULL));
    aioc_task_unref(t[i]);
  }
  return rc;
}

static int taskgroup(void) {
  aioc_taskgroup *tg;
  int rc = aioc_taskgroup_new(&tg);
  if (rc < 0) return fail(rc, __LINE__);
  int src = aioc_taskgroup_spawn(tg, NULL, sleeper, AIOC_INT(5), NULL);
  if (src == 0)
    src = aioc_taskgroup_spawn(tg, NULL, sleeper, AIOC_INT(7), NULL);
  /* Joined whatever happened: what was spawned ends here. */
  int jrc = aioc_taskgroup_join(tg);
  aioc_taskgroup_free(tg);
  if (src != 0) return fail(src, __LINE__);
  if (jrc != 0) return fail(jrc, __LINE__);
  return 0;
}

static int timed_iteration(void) {
  aioc_gen *g;
  aioc_iter *src, *it;
  void *x;
  int rc = aioc_gen_new(&g, slow_counter, NULL, NULL);
  if (rc < 0) return fail(rc, __LINE__);
  rc = aioc_gen_iter(&src, g);
  if (rc < 0) {
    aioc_gen_free(g);
    return fail(rc, __LINE__);
  }
  aioc_timed_options o = {.between = 0.06};
  rc = aioc_iter_timed(&it, src, &o);
  if (rc < 0) {
    aioc_iter_free(src);
    return fail(rc, __LINE__);
  }
  STEP(aioc_iter_next(it, &x, AIOC_FOREVER), 0);
  VALUE(AIOC_TO_INT(x) == 1);
  STEP(aioc_iter_next(it, &x, AIOC_FOREVER), -ETIMEDOUT);
  STEP(aioc_iter_next(it, &x, AIOC_FOREVER), 0);
  VALUE(AIOC_TO_INT(x) == 2);
  STEP(aioc_iter_next(it, &x, AIOC_FOREVER), AIOC_EXHAUSTED);
out:
  aioc_iter_free(it);
  return rc;
}

static int producer(void *arg, void **result) {
  (void)result;
  for (int i = 1; i <= 3; i++) {
    int rc = aioc_queue_put(arg, AIOC_INT(i), AIOC_FOREVER);
    if (rc < 0) return rc;
  }
  return AIOC_NORESULT;
}

static int queue(void) {
  aioc_queue *q;
  aioc_task *p = NULL;
  void *x;
  int rc = aioc_queue_new(&q, 1, NULL);
  if (rc < 0) return fail(rc, __LINE__);
  STEP(aioc_spawn(&p, producer, q), 0);
  for (int i = 1; i <= 3; i++) {
    int grc = aioc_queue_get(q, &x, 1.0);
    if (grc == -ETIMEDOUT && aioc_future_is_done(aioc_task_future(p)))
      grc = aioc_future_error(aioc_task_future(p)); /* it gave up */
    STEP(grc, 0);
    VALUE(AIOC_TO_INT(x) == i);
  }
  STEP(aioc_queue_get(q, &x, 0.01), -ETIMEDOUT);
  STEP(aioc_task_await(p, NULL), 0);
out:
  aioc_queue_shutdown(q, 1); /* a producer still waiting gives up */
  if (p) {
    IGNORE_RC(aioc_task_await(p, NULL));
    aioc_task_unref(p);
  }
  aioc_queue_free(q);
  return rc;
}

typedef struct tsq {
  aioc_tsqueue *q;
  int rc;
} tsq;

static void *ts_producer(void *arg) {
  tsq *t = arg;
  for (int i = 1; i <= 3 && t->rc == 0; i++)
    t->rc = aioc_tsqueue_put(t->q, AIOC_INT(i), 10.0);
  aioc_tsqueue_shutdown(t->q, 0);
  return NULL;
}

static int tsqueue(void) {
  tsq t = {NULL, 0};
  int rc = aioc_tsqueue_new(&t.q, 1, NULL);
  if (rc < 0) return fail(rc, __LINE__);
  pthread_t th;
  if (pthread_create(&th, NULL, ts_producer, &t) != 0) {
    aioc_tsqueue_free(t.q);
    return fail(-EAGAIN, __LINE__);
  }
  int n = 0;
  void *x;
  int grc;
  while ((grc = aioc_tsqueue_get(t.q, &x, AIOC_FOREVER)) == 0) {
    n++;
    VALUE(AIOC_TO_INT(x) == n);
  }
  aioc_tsqueue_shutdown(t.q, 1); /* a producer still waiting gives up */
  pthread_join(th, NULL);
  aioc_tsqueue_free(t.q);
  if (grc == -ESHUTDOWN && n == 3) return 0;
  /* The producer gave up (and shut the queue down), or the get failed. */
  if (grc == -ESHUTDOWN && t.rc < 0) return fail(t.rc, __LINE__);
  return fail(grc, __LINE__);
}

/* The executor: the default pool, a pool of one, an error's message. */
static int job_add(void *arg, void **result) {
  *result = AIOC_INT(AIOC_TO_INT(arg) + 1);
  return 0;
}

static int job_fail(void *arg, void **result) {
  (void)arg;
  (void)result;
  return aioc_error(-EIO, "job failing on purpose");
}

static int executor(void) {
  void *x;
  int rc = 0;
  aioc_executor *ex = NULL;
  aioc_future *f = NULL;
  STEP(aioc_to_thread(&x, job_add, AIOC_INT(1)), 0);
  VALUE(AIOC_TO_INT(x) == 2);
  aioc_executor_options o = {.threads = 1};
  STEP(aioc_executor_new(&ex, &o), 0);
  STEP(aioc_run_in_executor(&f, ex, job_fail, NULL, NULL), 0);
  STEP(aioc_await(f, &x), -EIO);
out:
  aioc_future_unref(f);
  aioc_executor_free(ex);
  return rc;
}

/* Two streams over a socket pair: a write, buffered reads, a timed lines
 * iterator. */
static int io_streams(void) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return -EIO;
  aioc_stream *a = NULL, *b = NULL;
  aioc_iter *lines = NULL, *it = NULL;
  int rc = 0;
  if ((rc = aioc_stream_from_fd(&a, sv[0], NULL)) < 0) {
    close(sv[0]);
    close(sv[1]);
    return fail(rc, __LINE__);
  }
  if ((rc = aioc_stream_from_fd(&b, sv[1], NULL)) < 0) {
    close(sv[1]);
    aioc_stream_free(a);
    return fail(rc, __LINE__);
  }
  STEP(aioc_stream_write(a, "ab\ncd\nef", 8), 0);
  char buf[4];
  size_t got;
  STEP(aioc_stream_readexactly(b, buf, 3, &got, 1), 0);
  VALUE(got == 3 && memcmp(buf, "ab\n", 3) == 0);
  STEP(aioc_stream_lines_iter(&lines, b), 0);
  b = NULL;
  aioc_timed_options to = {.between = 1};
  STEP(aioc_iter_timed(&it, lines, &to), 0);
  lines = NULL;
  void *item;
  STEP(aioc_iter_next(it, &item, 1), 0);
  VALUE(((const aioc_bytes *)item)->len == 3);
  aioc_stream_close(a);
  STEP(aioc_iter_next(it, &item, 1), 0);
  VALUE(((const aioc_bytes *)item)->len == 2);
  STEP(aioc_iter_next(it, &item, 1), AIOC_EXHAUSTED);
out:
  aioc_iter_free(it);
  aioc_iter_free(lines);
  aioc_stream_free(b);
  aioc_stream_free(a);
  return rc;
}

static int main_task(void *arg, void **result) {
  (void)arg;
  (void)result;
  int rc = spawn_gather();
  if (rc == 0) rc = taskgroup();
  if (rc == 0) rc = generator();
  if (rc == 0) rc = timed_iteration();
  if (rc == 0) rc = queue();
  if (rc == 0) rc = tsqueue();
  if (rc == 0) rc = executor();
  if (rc == 0) rc = io_streams();
  return rc;
}

static void silent(void *arg, aioc_loop *loop, const aioc_report *r) {
  (void)arg;
  (void)loop;
  (void)r;
}

/* The whole program: 0, or the code it stopped with. */
static int program(void) {
  aioc_loop *loop;
  aioc_loop_options lo = {.virtual_clock = 1, .quiet = 1};
  int rc = aioc_loop_new(&loop, &lo);
  if (rc < 0) return fail(rc, __LINE__);
  aioc_loop_set_report_handler(loop, silent, NULL);
  IGNORE_RC(aioc_loop_set_current(loop));
  rc = plain_group();
  if (rc == 0) rc = plain_yielder();
  if (rc == 0) rc = generator();
  if (rc == 0) {
    aioc_task *t;
    rc = aioc_spawn(&t, main_task, NULL);
    if (rc < 0) {
      rc = fail(rc, __LINE__);
    } else {
      int lrc = aioc_loop_run_until_complete(loop, aioc_task_future(t));
      rc = lrc < 0 ? fail(lrc, __LINE__)
                   : aioc_future_result(aioc_task_future(t), NULL);
      aioc_task_unref(t);
    }
  }
  if (aioc_all_tasks(loop, NULL, 0) != 0) {
    printf("tasks left on the loop\n");
    unexpected = true;
  }
  aioc_loop_free(loop);
  return rc;
}

/* ---- one run ---- */

enum { RUN_INJECTED = 0, RUN_COMPLETE = 10 };

static int run(void *arg) {
  /* The hook goes in before any other call of the library. */
  fail_at = (long)(intptr_t)arg;
  aioc_set_allocator(hook, NULL);
  alarm(20); /* a hang kills the child */
  int rc = program();
  long live = atomic_load(&n_live);
  if (live != 0) {
    printf("%ld allocation(s) not freed\n", live);
    return 3;
  }
  if (unexpected) return 4;
  if (rc != 0 && !allowed(rc)) {
    printf("ended with %s (%d)\n", aioc_err_name(rc), rc);
    return 5;
  }
  if (!atomic_load(&injected) && rc != 0) {
    printf("failed with nothing injected: %s (%d)\n", aioc_err_name(rc), rc);
    return 6;
  }
#ifdef HAVE_LSAN
  if (__lsan_do_recoverable_leak_check()) return 7;
#endif
  return atomic_load(&injected) ? RUN_INJECTED : RUN_COMPLETE;
}

static int child(void *arg) {
  int rc = run(arg);
  fflush(stdout); /* the child leaves with _exit() */
  return rc;
}

int main(void) {
  static char out[8192];
  int failures = 0;
  /* TEST_ALLOC_N=n: that run alone, in this process (for a debugger). */
  const char *only = getenv("TEST_ALLOC_N");
  if (only) {
    int rc = run((void *)(intptr_t)atol(only));
    printf("run: %d, %ld allocation(s)\n", rc, atomic_load(&n_calls));
    return rc;
  }
  long n;
  for (n = 1; n < 100000; n++) {
    int status = run_in_child(child, (void *)(intptr_t)n, out, sizeof out);
    if (WIFEXITED(status) && WEXITSTATUS(status) == RUN_COMPLETE) break;
    if (WIFEXITED(status) && WEXITSTATUS(status) == RUN_INJECTED) continue;
    failures++;
    if (failures <= 20) {
      if (WIFSIGNALED(status))
        printf("N=%ld: killed by signal %d\n", n, WTERMSIG(status));
      else
        printf("N=%ld: exit status %d\n", n, WEXITSTATUS(status));
      printf("%s", out);
      fflush(stdout);
    }
  }
  printf("%ld allocation(s) failed one at a time, %d failure(s)\n", n - 1,
         failures);
  if (failures || n < 10) {
    printf("FAIL\n");
    return 1;
  }
  printf("all checks passed\n");
  return 0;
}

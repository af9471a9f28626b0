/* Seeing inside a running program: the loop's counters and metrics, task
 * timings. Timing checks are lower bounds only (a busy machine makes
 * everything slower, never faster). */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "observe_common.h"

/* A loop observing flags (virtual clock unless real), made current. */
static aioc_loop *obs_loop(int virtual_clock, unsigned flags) {
  return loop_with(
      (aioc_loop_options){.virtual_clock = virtual_clock, .observe = flags});
}

/* Keeps the CPU for at least seconds of the monotonic clock. */
static void busy(double seconds) {
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  do {
    clock_gettime(CLOCK_MONOTONIC, &b);
  } while ((double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9 <
           seconds);
}

/* ---- metrics ---------------------------------------------------------- */

static int yielder(void *arg, void **res) {
  (void)res;
  for (int i = 0; i < AIOC_TO_INT(arg); i++)
    if (aioc_yield() != 0) return -1;
  return 0;
}

static int sleeper(void *arg, void **res) {
  (void)res;
  for (int i = 0; i < AIOC_TO_INT(arg); i++)
    if (aioc_sleep(0.5) != 0) return -1;
  return 0;
}

/* Three tasks yield, one sleeps: the counters match the workload. */
static int counters_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_task *t[4];
  for (int i = 0; i < 3; i++)
    CHECK_RC(aioc_spawn(&t[i], yielder, AIOC_INT(10)), 0);
  CHECK_RC(aioc_spawn(&t[3], sleeper, AIOC_INT(4)), 0);
  for (int i = 0; i < 4; i++) {
    CHECK_RC(aioc_task_await(t[i], NULL), 0);
    aioc_task_unref(t[i]);
  }
  aioc_loop_metrics m;
  CHECK_RC(aioc_yield(), 0);
  CHECK_RC(aioc_spawn(&t[0], yielder, AIOC_INT(0)), 0);
  CHECK_RC(aioc_loop_get_metrics(NULL, &m), 0);
  CHECK_EQ(m.ready, 1); /* the task just spawned */
  CHECK_RC(aioc_task_await(t[0], NULL), 0);
  aioc_task_unref(t[0]);
  return 0;
}

TEST(test_loop_counters) {
  aioc_loop *loop = obs_loop(1, 0);
  aioc_loop_metrics m;
  CHECK_RC(aioc_loop_get_metrics(loop, &m), 0);
  CHECK_EQ(m.iterations, 0);
  CHECK_EQ(m.timers_fired, 0);
  CHECK_RC(run_on(loop, counters_main, NULL), 0);
  CHECK_RC(aioc_loop_get_metrics(loop, &m), 0);
  /* Each round of yields is a batch of its own. */
  CHECK_INT(m.iterations, >=, 11);
  CHECK_EQ(m.timers_fired, 4); /* the sleeps */
  CHECK_DBL(m.lag_max, 0, 0);  /* virtual time is never late */
  CHECK_DBL(m.lag_total, 0, 0);
  /* Timing was not asked for. */
  CHECK_EQ(m.task_runs, 0);
  CHECK_DBL(m.task_time, 0, 0);
  CHECK_DBL(m.poll_time, 0, 0);
  CHECK_RC(aioc_loop_get_metrics(loop, NULL), -EINVAL);
  CLOSE_CLEAN(loop);
}

/* A timer due while a task keeps the CPU fires late by at least that. */
static int late_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_task *s;
  CHECK_RC(aioc_spawn(&s, sleeper, AIOC_INT(1)), 0);
  CHECK_RC(aioc_yield(), 0); /* the sleeper arms its 0.5 s timer */
  CHECK_RC(aioc_sleep(0.45), 0);
  busy(0.2); /* the sleeper's deadline passes meanwhile */
  CHECK_RC(aioc_task_await(s, NULL), 0);
  aioc_task_unref(s);
  return 0;
}

TEST(test_loop_lag) {
  aioc_loop *loop = obs_loop(0, 0);
  CHECK_RC(run_on(loop, late_main, NULL), 0);
  aioc_loop_metrics m;
  CHECK_RC(aioc_loop_get_metrics(loop, &m), 0);
  CHECK_EQ(m.timers_fired, 2);
  CHECK_INT(m.lag_max * 1000, >=, 140);
  CHECK(m.lag_total >= m.lag_max);
  CLOSE_CLEAN(loop);
}

/* ---- task timing ------------------------------------------------------ */

typedef struct timing {
  aioc_task *spinner, *waiter;
} timing;

static int spinner(void *arg, void **res) {
  (void)arg;
  (void)res;
  busy(0.02);
  CHECK_RC(aioc_yield(), 0);
  busy(0.03);
  return 0;
}

static int timing_main(void *arg, void **res) {
  (void)res;
  timing *tm = arg;
  CHECK_RC(aioc_spawn(&tm->waiter, yielder, AIOC_INT(3)), 0);
  CHECK_RC(aioc_spawn(&tm->spinner, spinner, NULL), 0);
  CHECK_RC(aioc_task_await(tm->waiter, NULL), 0);
  CHECK_RC(aioc_task_await(tm->spinner, NULL), 0);
  /* Running now: the current run counts. */
  aioc_task_metrics me;
  CHECK_RC(aioc_task_get_metrics(aioc_current_task(), &me), 0);
  CHECK_INT(me.runs, >=, 2);
  return 0;
}

TEST(test_task_timing) {
  aioc_loop *loop = obs_loop(1, AIOC_OBSERVE_TIMING);
  timing tm = {0};
  CHECK_RC(run_on(loop, timing_main, &tm), 0);
  aioc_task_metrics s, w;
  CHECK_RC(aioc_task_get_metrics(tm.spinner, &s), 0);
  CHECK_RC(aioc_task_get_metrics(tm.waiter, &w), 0);
  /* The spinner ran twice: 20 ms, then 30 ms. */
  CHECK_EQ(s.runs, 2);
  CHECK_INT(s.run_time * 1000, >=, 49.9);
  CHECK_INT(s.run_max * 1000, >=, 29.9);
  CHECK(s.run_max <= s.run_time);
  /* The waiter yielded three times: four runs, and it was ready while
   * the spinner spun (spawned with it, then woken by each yield). */
  CHECK_EQ(w.runs, 4);
  CHECK_INT(w.ready_time * 1000, >=, 49.9);
  CHECK(w.run_time < s.run_time);
  CHECK_EQ(w.stack_used, 0); /* stacks were not observed */
  aioc_loop_metrics m;
  CHECK_RC(aioc_loop_get_metrics(loop, &m), 0);
  CHECK_INT(m.task_runs, >=, 2 + 4 + 2); /* main: started, woken once */
  CHECK(m.task_time >= s.run_time + w.run_time);
  aioc_task_unref(tm.spinner);
  aioc_task_unref(tm.waiter);
  CLOSE_CLEAN(loop);
}

/* Without timing, a task has no metrics. */
TEST(test_task_timing_off) {
  aioc_loop *loop = obs_loop(1, 0);
  timing tm = {0};
  CHECK_RC(aioc_spawn(&tm.spinner, yielder, AIOC_INT(2)), 0);
  CHECK_RC(aioc_loop_run_until_complete(loop, aioc_task_future(tm.spinner)),
           0);
  aioc_task_metrics s;
  s.runs = 7;
  CHECK_RC(aioc_task_get_metrics(tm.spinner, &s), -ENODATA);
  CHECK_EQ(s.runs, 0);
  CHECK_RC(aioc_task_get_metrics(NULL, &s), -EINVAL);
  CHECK_RC(aioc_task_get_metrics(tm.spinner, NULL), -EINVAL);
  aioc_task_unref(tm.spinner);
  CLOSE_CLEAN(loop);
}

/* The poller's time: a real sleep is spent there. */
static int nap(void *arg, void **res) {
  (void)arg;
  (void)res;
  return aioc_sleep(0.05);
}

TEST(test_poll_time_and_env) {
  setenv("AIOC_OBSERVE", "stacks,timing", 1);
  aioc_loop *loop = obs_loop(0, 0); /* options give no flag: the env's */
  unsetenv("AIOC_OBSERVE");
  CHECK_RC(run_on(loop, nap, NULL), 0);
  aioc_loop_metrics m;
  CHECK_RC(aioc_loop_get_metrics(loop, &m), 0);
  CHECK_INT(m.poll_time * 1000, >=, 45);
  CHECK_INT(m.task_runs, >=, 2);
  CLOSE_CLEAN(loop);
}

/* ---- task dumps ------------------------------------------------------ */

typedef struct dumpw {
  aioc_queue *q;
  aioc_task *consumer;
  int get_line, spawn_line;
} dumpw;

static int consumer(void *arg, void **res) {
  (void)res;
  dumpw *d = arg;
  void *item;
  d->get_line = __LINE__ + 1;
  int rc = aioc_queue_get(d->q, &item, 5.0);
  CHECK_RC(rc, 0);
  CHECK_EQ(AIOC_TO_INT(item), 42);
  return 0;
}

static int awaiter(void *arg, void **res) {
  (void)res;
  dumpw *d = arg;
  return aioc_task_await(d->consumer, NULL);
}

static char *dump_text(aioc_loop *loop) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  CHECK_RC(aioc_loop_dump(loop, f), 0);
  fclose(f);
  return buf;
}

static const aioc_task_info *find(const aioc_task_info *v, int n,
                                  const char *name) {
  for (int i = 0; i < n; i++)
    if (strcmp(v[i].name, name) == 0) return &v[i];
  return NULL;
}

static int dump_main(void *arg, void **res) {
  (void)res;
  dumpw *d = arg;
  CHECK_RC(aioc_queue_new(&d->q, 0, NULL), 0);
  aioc_task_options co = {.name = "consumer"}, wo = {.name = "waiter"},
                    lo = {.name = "late"};
  d->spawn_line = __LINE__ + 1;
  CHECK_RC(aioc_spawn_ex(&d->consumer, NULL, consumer, d, &co), 0);
  aioc_task *w, *late;
  CHECK_RC(aioc_spawn_ex(&w, NULL, awaiter, d, &wo), 0);
  CHECK_RC(aioc_sleep(1.0), 0); /* both wait meanwhile */
  CHECK_RC(aioc_spawn_ex(&late, NULL, yielder, AIOC_INT(0), &lo), 0);

  aioc_task_info v[8];
  int n = aioc_loop_get_tasks(NULL, v, 8);
  CHECK_EQ(n, 4);
  CHECK_EQ(aioc_loop_get_tasks(NULL, NULL, 0), 4);
  CHECK_RC(aioc_loop_get_tasks(NULL, NULL, 3), -EINVAL);
  const aioc_task_info *c = find(v, n, "consumer"), *wi = find(v, n, "waiter"),
                       *m = find(v, n, "main"), *l = find(v, n, "late");
  CHECK(c && wi && m && l);
  if (!c || !wi || !m || !l) return -1;
  CHECK_EQ(m->state, AIOC_TASK_STATE_RUNNING);
  CHECK_EQ(l->state, AIOC_TASK_STATE_SCHEDULED);
  CHECK_EQ(c->state, AIOC_TASK_STATE_SUSPENDED);
  CHECK_EQ(c->wait_kind, AIOC_WAIT_KIND_QUEUE);
  CHECK(c->wait_site != NULL);
  if (c->wait_site) {
    CHECK_EQ(c->wait_site->line, d->get_line);
    CHECK(strstr(c->wait_site->file, "test_observe.c") != NULL);
    CHECK_STR(c->wait_site->call, "aioc_queue_get");
  }
  CHECK_DBL(c->waited, 1.0, 1e-9);  /* virtual time */
  CHECK_DBL(c->deadline, 5.0, 1e-9); /* its timeout, armed at 0 */
  CHECK_EQ(c->spawner, m->id);
  CHECK(c->spawn_site && c->spawn_site->line == d->spawn_line);
  CHECK(c->task == d->consumer);
  CHECK_EQ(wi->state, AIOC_TASK_STATE_SUSPENDED);
  CHECK_EQ(wi->wait_kind, AIOC_WAIT_KIND_FUTURE);
  CHECK_EQ(wi->awaits, c->id);
  CHECK(wi->wait_future == aioc_task_future(d->consumer));
  CHECK(isinf(wi->deadline));
  CHECK_STR(aioc_wait_kind_name(AIOC_WAIT_KIND_QUEUE), "queue");
  CHECK_STR(aioc_task_state_name(AIOC_TASK_STATE_SUSPENDED), "suspended");
  CHECK_STR(aioc_wait_kind_name((aioc_wait_kind)99), "?");

  char *text = dump_text(NULL);
  char want[128];
  snprintf(want, sizeof want,
           "consumer (id %u): suspended on queue in aioc_queue_get at ",
           (unsigned)c->id);
  CHECK(strstr(text, want) != NULL);
  snprintf(want, sizeof want, "test_observe.c:%d, for 1.000 s", d->get_line);
  CHECK(strstr(text, want) != NULL);
  snprintf(want, sizeof want, "awaited by waiter (id %u)", (unsigned)wi->id);
  CHECK(strstr(text, want) != NULL);
  snprintf(want, sizeof want, "spawned by main (id %u) at test_observe.c:%d",
           (unsigned)m->id, d->spawn_line);
  CHECK(strstr(text, want) != NULL);
  CHECK(strstr(text, "late (id ") && strstr(text, "): scheduled"));
  CHECK(strstr(text, "await tree:\n") != NULL);
  snprintf(want, sizeof want, "    └── consumer (id %u) aioc_queue_get",
           (unsigned)c->id);
  CHECK(strstr(text, want) != NULL);
  if (check_failures || getenv("AIOC_TEST_SHOW")) fputs(text, stderr);
  free(text);

  CHECK_RC(aioc_queue_put(d->q, AIOC_INT(42), AIOC_FOREVER), 0);
  CHECK_RC(aioc_task_await(w, NULL), 0);
  CHECK_RC(aioc_task_await(late, NULL), 0);
  aioc_task_unref(w);
  aioc_task_unref(late);
  aioc_task_unref(d->consumer);
  aioc_queue_free(d->q);
  return 0;
}

TEST(test_dump) {
  aioc_loop *loop = obs_loop(1, AIOC_OBSERVE_SPAWNS);
  dumpw d = {0};
  CHECK_RC(run_on(loop, dump_main, &d), 0);
  CLOSE_CLEAN(loop);
}

/* Without observation the dump still names the wait and its site. */
static int dump_plain_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_task *t;
  aioc_task_options o = {.name = "napper"};
  CHECK_RC(aioc_spawn_ex(&t, NULL, nap, NULL, &o), 0);
  CHECK_RC(aioc_yield(), 0);
  aioc_task_info v[4];
  int n = aioc_loop_get_tasks(NULL, v, 4);
  const aioc_task_info *i = find(v, n, "napper");
  CHECK(i != NULL);
  if (i) {
    CHECK_EQ(i->wait_kind, AIOC_WAIT_KIND_SLEEP);
    CHECK(i->wait_site && strcmp(i->wait_site->call, "aioc_sleep") == 0);
    CHECK_DBL(i->deadline, 0.05, 1e-9);
    CHECK_EQ(i->spawner, 0); /* spawners were not observed */
  }
  int rc = aioc_task_await(t, NULL);
  aioc_task_unref(t);
  return rc;
}

TEST(test_dump_unobserved) {
  aioc_loop *loop = obs_loop(1, 0);
  CHECK_RC(run_on(loop, dump_plain_main, NULL), 0);
  CLOSE_CLEAN(loop);
}

/* A dump on a signal, landing while two tasks switch back and forth: it
 * is read from the loop, between tasks, whenever it comes. */
static atomic_int pinging = 1;

static void *signaller(void *arg) {
  (void)arg;
  for (int i = 0; i < 200 && pinging; i++) {
    kill(getpid(), SIGUSR1);
    usleep(200);
  }
  return NULL;
}

static int pinger(void *arg, void **res) {
  (void)res;
  long n = (long)(intptr_t)arg;
  for (long i = 0; i < n; i++)
    if (aioc_yield() != 0) return -1;
  return 0;
}

typedef struct sigdump {
  FILE *f;
} sigdump;

static int sig_main(void *arg, void **res) {
  (void)res;
  sigdump *s = arg;
  aioc_signal *h;
  CHECK_RC(aioc_loop_dump_on_signal(&h, NULL, SIGUSR1, s->f), 0);
  pthread_t th;
  pthread_create(&th, NULL, signaller, NULL);
  aioc_task *a, *b;
  CHECK_RC(aioc_spawn(&a, pinger, AIOC_INT(200000)), 0);
  CHECK_RC(aioc_spawn(&b, pinger, AIOC_INT(200000)), 0);
  CHECK_RC(aioc_task_await(a, NULL), 0);
  CHECK_RC(aioc_task_await(b, NULL), 0);
  pinging = 0;
  pthread_join(th, NULL);
  CHECK_RC(aioc_sleep(0.01), 0); /* the last signal is read */
  aioc_task_unref(a);
  aioc_task_unref(b);
  aioc_signal_free(h);
  return 0;
}

TEST(test_dump_on_signal) {
  aioc_loop *loop = obs_loop(0, 0);
  char *buf = NULL;
  size_t len = 0;
  sigdump s = {open_memstream(&buf, &len)};
  CHECK_RC(run_on(loop, sig_main, &s), 0);
  fclose(s.f);
  CHECK(buf && strstr(buf, "main (id 1): ") != NULL);
  CHECK(buf && strstr(buf, "loop 0x") != NULL);
  free(buf);
  CLOSE_CLEAN(loop);
}

/* ---- stack use -------------------------------------------------------- */

static __attribute__((noinline)) void use_stack(size_t bytes) {
  volatile char buf[4096];
  buf[0] = 1;
  buf[4095] = 1;
  if (bytes > sizeof buf) use_stack(bytes - sizeof buf);
  buf[1] = buf[0];
}

static int stack_user(void *arg, void **res) {
  (void)res;
  use_stack((size_t)AIOC_TO_INT(arg) * 1024);
  return 0;
}

typedef struct stacks {
  int heavy_line, light_line;
  aioc_task *heavy;
} stacks;

static int stacks_main(void *arg, void **res) {
  (void)res;
  stacks *s = arg;
  aioc_task_options big = {.stack_size = 256 * 1024};
  /* One task using 200 KiB of 256, then small ones on the same stack
   * size: each is measured alone. */
  s->heavy_line = __LINE__ + 1;
  CHECK_RC(aioc_spawn_ex(&s->heavy, NULL, stack_user, AIOC_INT(200), &big), 0);
  CHECK_RC(aioc_task_await(s->heavy, NULL), 0);
  for (int i = 0; i < 3; i++) {
    aioc_task *t;
    s->light_line = __LINE__ + 1;
    CHECK_RC(aioc_spawn_ex(&t, NULL, stack_user, AIOC_INT(1), &big), 0);
    CHECK_RC(aioc_task_await(t, NULL), 0);
    aioc_task_unref(t);
  }
  aioc_task *mid;
  CHECK_RC(aioc_spawn(&mid, stack_user, AIOC_INT(40)), 0);
  CHECK_RC(aioc_task_await(mid, NULL), 0);
  aioc_task_metrics m;
  CHECK_RC(aioc_task_get_metrics(mid, &m), 0);
  CHECK_INT(m.stack_used, >=, 40 * 1024);
  CHECK_INT(m.stack_used, <, 64 * 1024);
  CHECK_INT(m.stack_size, >, 100 * 1024); /* the loop's 128 KiB */
  aioc_task_unref(mid);
  return 0;
}

static int stack_reports;
static char stack_detail[256];

static void stack_report(void *arg, aioc_loop *loop, const aioc_report *r) {
  (void)arg;
  (void)loop;
  if (strcmp(r->message, "Task used more than 75% of its stack") == 0) {
    stack_reports++;
    snprintf(stack_detail, sizeof stack_detail, "%s", r->detail);
  }
}

TEST(test_stack_use) {
  aioc_loop *loop = obs_loop(1, AIOC_OBSERVE_STACKS);
  aioc_loop_set_report_handler(loop, stack_report, NULL);
  stacks s = {0};
  CHECK_RC(run_on(loop, stacks_main, &s), 0);
  aioc_task_metrics m;
  CHECK_RC(aioc_task_get_metrics(s.heavy, &m), 0);
  CHECK_INT(m.stack_used, >=, 200 * 1024);
  CHECK_INT(m.stack_used, <, m.stack_size);
  aioc_task_unref(s.heavy);
  /* Reported once, with its spawn site. */
  CHECK_EQ(stack_reports, 1);
  char want[64];
  snprintf(want, sizeof want, "test_observe.c:%d", s.heavy_line);
  CHECK(strstr(stack_detail, want) != NULL);
  CHECK(strstr(stack_detail, " bytes used (") != NULL);

  aioc_stack_use u[8];
  int n = aioc_loop_get_stack_use(loop, u, 8);
  CHECK_EQ(n, 4); /* heavy, light, mid, and main (spawned by run_on) */
  const aioc_stack_use *heavy = NULL, *light = NULL;
  for (int i = 0; i < n && i < 8; i++) {
    if (u[i].site && u[i].site->line == s.heavy_line) heavy = &u[i];
    if (u[i].site && u[i].site->line == s.light_line) light = &u[i];
  }
  CHECK(heavy && light);
  if (heavy && light) {
    CHECK_EQ(heavy->tasks, 1);
    CHECK_INT(heavy->max_used, >=, 200 * 1024);
    CHECK_EQ(light->tasks, 3);
    /* The heavy task's pages did not count for the light ones. */
    CHECK_INT(light->max_used, <, 32 * 1024);
    CHECK_INT(light->mean_used, <=, light->max_used);
    CHECK_EQ(light->stack_size, heavy->stack_size);
  }
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  CHECK_RC(aioc_loop_write_stack_use(loop, f), 0);
  fclose(f);
  CHECK(buf && strstr(buf, "spawned at") != NULL);
  /* The heaviest site first. */
  CHECK(buf && strstr(buf, want) != NULL &&
        strstr(buf, want) < strstr(buf, "test_observe.c:") + 1);
  free(buf);
  CHECK_RC(aioc_loop_get_stack_use(loop, NULL, 1), -EINVAL);
  CHECK_EQ(aioc_loop_get_stack_use(loop, NULL, 0), 4);
  CLOSE_CLEAN(loop);
}

/* Without the flag nothing is measured. */
TEST(test_stack_use_off) {
  aioc_loop *loop = obs_loop(1, AIOC_OBSERVE_TIMING);
  CHECK_RC(run_on(loop, nap, NULL), 0);
  CHECK_EQ(aioc_loop_get_stack_use(loop, NULL, 0), 0);
  CLOSE_CLEAN(loop);
}

CHECK_MAIN(60)

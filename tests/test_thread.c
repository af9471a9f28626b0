/* The executor (to_thread, run_in_executor, thread pools) and
 * run_coroutine_threadsafe: real threads, real-clock loops where a job
 * must actually run, generous bounds, no upper bound on time. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "check.h"

/* ---- helpers ---------------------------------------------------------- */

/* A gate a job blocks on until the test opens it. */
typedef struct gate {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool open;
  atomic_int entered; /* jobs that reached the gate */
} gate;

static void gate_init(gate *g) {
  pthread_mutex_init(&g->mu, NULL);
  pthread_cond_init(&g->cv, NULL);
  g->open = false;
  atomic_init(&g->entered, 0);
}

static void gate_open(gate *g) {
  pthread_mutex_lock(&g->mu);
  g->open = true;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
}

static void gate_pass(gate *g) {
  atomic_fetch_add(&g->entered, 1);
  pthread_mutex_lock(&g->mu);
  while (!g->open) pthread_cond_wait(&g->cv, &g->mu);
  pthread_mutex_unlock(&g->mu);
}

/* Sleeps a little on the loop (real clock) until *flag is at least want,
 * at most 20 s. */
static int wait_flag(atomic_int *flag, int want) {
  for (int i = 0; i < 4000 && atomic_load(flag) < want; i++) {
    int rc = aioc_sleep(0.005);
    if (rc < 0) return rc;
  }
  return atomic_load(flag) >= want ? 0 : -ETIMEDOUT;
}

/* The same from a plain thread. */
static void spin_flag(atomic_int *flag, int want) {
  for (int i = 0; i < 4000 && atomic_load(flag) < want; i++) usleep(5000);
}

static pthread_t g_main_thread;
static atomic_int g_ran;
static atomic_int g_saw_cancel;
static atomic_int g_freed;

static void count_free(void *p) {
  atomic_fetch_add(&g_freed, 1);
  free(p);
}

/* Returns arg + 1, and checks it runs on another thread. */
static int add_one(void *arg, void **result) {
  atomic_fetch_add(&g_ran, 1);
  if (pthread_equal(pthread_self(), g_main_thread)) return -EPERM;
  *result = AIOC_INT(AIOC_TO_INT(arg) + 1);
  return 0;
}

static int fails_io(void *arg, void **result) {
  (void)result;
  return aioc_error(-EIO, "cannot read %s", (const char *)arg);
}

static int no_result(void *arg, void **result) {
  (void)arg;
  *result = &g_ran; /* stored anyway, and ignored */
  return AIOC_NORESULT;
}

static int no_result_heap(void *arg, void **result) {
  (void)arg;
  *result = malloc(8); /* stored anyway: goes to result_free */
  return AIOC_NORESULT;
}

/* Blocks at the gate. */
static int blocked(void *arg, void **result) {
  gate_pass(arg);
  *result = malloc(16);
  return 0;
}

/* Runs until it is told to give up, then returns a result nobody takes. */
static int polls_flag(void *arg, void **result) {
  atomic_int *started = arg;
  atomic_fetch_add(started, 1);
  for (int i = 0; i < 20000 && !aioc_job_is_cancelled(); i++) usleep(1000);
  if (aioc_job_is_cancelled()) atomic_fetch_add(&g_saw_cancel, 1);
  *result = AIOC_INT(1);
  return 0;
}

/* The same with a result that owns memory. */
static int polls_flag_heap(void *arg, void **result) {
  polls_flag(arg, result);
  *result = malloc(32);
  return 0;
}

static int counts_run(void *arg, void **result) {
  (void)arg;
  (void)result;
  atomic_fetch_add(&g_ran, 1);
  return AIOC_NORESULT;
}

/* Reports of one loop. */
static int g_nreports;
static char g_detail[256];
static void keep_report(void *arg, aioc_loop *loop, const aioc_report *r) {
  (void)arg;
  (void)loop;
  g_nreports++;
  if (r->detail) snprintf(g_detail, sizeof g_detail, "%s", r->detail);
}

/* Runs fn(arg) as "main" on a fresh real-clock loop with keep_report,
 * closes it, and returns main's code. */
static int run_real(aioc_fn fn, void *arg) {
  aioc_loop *loop = test_loop(0);
  g_nreports = 0;
  g_detail[0] = 0;
  aioc_loop_set_report_handler(loop, keep_report, NULL);
  aioc_task *t;
  CHECK_RC(aioc_spawn_ex(&t, loop, fn, arg, NULL), 0);
  CHECK_RC(aioc_loop_run_until_complete(loop, aioc_task_future(t)), 0);
  int rc = aioc_future_result(aioc_task_future(t), NULL);
  aioc_task_unref(t);
  CLOSE_CLEAN(loop);
  return rc;
}

/* ---- results and errors ------------------------------------------------ */

static int results_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  void *r = NULL;
  CHECK_RC(aioc_to_thread(&r, add_one, AIOC_INT(41)), 0);
  CHECK_EQ(AIOC_TO_INT(r), 42);
  CHECK_RC(aioc_to_thread(NULL, add_one, AIOC_INT(1)), 0);
  CHECK_RC(aioc_to_thread(&r, NULL, NULL), -EINVAL);
  /* An error and its message reach the task. */
  CHECK_RC(aioc_to_thread(&r, fails_io, "/x"), -EIO);
  CHECK_STR(aioc_error_message(), "cannot read /x");
  /* AIOC_NORESULT: success with no result. */
  r = AIOC_INT(7);
  CHECK_RC(aioc_to_thread(&r, no_result, NULL), 0);
  CHECK(r == NULL);
  /* run_in_executor's future: result, error with message, result_free. */
  aioc_future *f;
  aioc_job_options o = {.result_free = count_free};
  CHECK_RC(aioc_run_in_executor(&f, NULL, add_one, AIOC_INT(9), &o), 0);
  CHECK_RC(aioc_await(f, &r), 0);
  CHECK_EQ(AIOC_TO_INT(r), 10);
  aioc_future_unref(f);
  CHECK_RC(aioc_run_in_executor(&f, NULL, fails_io, "/y", NULL), 0);
  CHECK_RC(aioc_await(f, &r), -EIO);
  CHECK_STR(aioc_future_error_message(f), "cannot read /y");
  aioc_future_unref(f);
  atomic_store(&g_freed, 0);
  CHECK_RC(aioc_run_in_executor(&f, NULL, no_result_heap, NULL, &o), 0);
  CHECK_RC(aioc_await(f, &r), 0);
  CHECK(r == NULL);
  CHECK_EQ(atomic_load(&g_freed), 1);
  aioc_future_unref(f);
  /* A result never taken goes to result_free with the future. */
  gate g;
  gate_init(&g);
  gate_open(&g);
  CHECK_RC(aioc_run_in_executor(&f, NULL, blocked, &g, &o), 0);
  CHECK_RC(aioc_await(f, NULL), 0);
  aioc_future_unref(f);
  CHECK_EQ(atomic_load(&g_freed), 2);
  /* The failure of a job passes on with its message. */
  return aioc_to_thread(NULL, fails_io, "/z");
}

TEST(test_results_and_errors) {
  g_main_thread = pthread_self();
  CHECK_RC(run_real(results_main, NULL), -EIO);
  CHECK_EQ(g_nreports, 0);
}

/* Many jobs in flight from many tasks: every result arrives. */
static int one_call(void *arg, void **result) {
  void *r;
  int rc = aioc_to_thread(&r, add_one, arg);
  if (rc == 0 && AIOC_TO_INT(r) != AIOC_TO_INT(arg) + 1) rc = -EPROTO;
  *result = r;
  return rc;
}

static int many_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  enum { N = 200 };
  aioc_task *t[N];
  for (int i = 0; i < N; i++)
    CHECK_RC(aioc_spawn(&t[i], one_call, AIOC_INT(i)), 0);
  long sum = 0;
  for (int i = 0; i < N; i++) {
    void *r;
    CHECK_RC(aioc_task_await(t[i], &r), 0);
    sum += AIOC_TO_INT(r);
    aioc_task_unref(t[i]);
  }
  CHECK_EQ(sum, (long)N * (N + 1) / 2);
  return 0;
}

TEST(test_many_in_flight) {
  g_main_thread = pthread_self();
  CHECK_RC(run_real(many_main, NULL), 0);
  CHECK_EQ(g_nreports, 0);
}

/* ---- giving up: queued jobs are dropped, running ones see the flag ---- */

typedef struct pools {
  aioc_executor *a, *b;
  gate g;
} pools;

static int dropped_main(void *arg, void **result) {
  (void)result;
  pools *p = arg;
  aioc_future *blocker, *queued, *timed;
  aioc_job_options o = {.result_free = count_free};
  CHECK_RC(aioc_run_in_executor(&blocker, p->a, blocked, &p->g, &o), 0);
  /* The only thread is taken: these wait in the queue. */
  CHECK_RC(aioc_run_in_executor(&queued, p->a, counts_run, NULL, NULL), 0);
  CHECK_RC(aioc_run_in_executor(&timed, p->a, counts_run, NULL, NULL), 0);
  CHECK_RC(wait_flag(&p->g.entered, 1), 0);
  /* Cancelled future: the job is dropped at once. */
  CHECK_EQ(aioc_future_cancel(queued, NULL), 1);
  CHECK(aioc_future_is_cancelled(queued));
  /* wait_for's timeout: the same, through the future. */
  CHECK_RC(aioc_wait_for(timed, NULL, 0.05), -ETIMEDOUT);
  CHECK(aioc_future_is_cancelled(timed));
  /* to_thread in a deadline scope, queued behind the blocker too: the
   * default pool is not this one, so use run_in_executor + await in a
   * scope. */
  aioc_scope *s;
  aioc_future *scoped;
  CHECK_RC(aioc_run_in_executor(&scoped, p->a, counts_run, NULL, NULL), 0);
  CHECK_RC(aioc_timeout_enter(&s, 0.05), 0);
  CHECK_RC(aioc_await(scoped, NULL), -ETIMEDOUT);
  CHECK_RC(aioc_scope_exit(s), -ETIMEDOUT);
  aioc_scope_free(s);
  CHECK_EQ(aioc_future_cancel(scoped, NULL), 1); /* the awaiter gives up */
  /* A pool of one thread, blocked, does not starve another pool. */
  void *r;
  aioc_future *other;
  CHECK_RC(aioc_run_in_executor(&other, p->b, add_one, AIOC_INT(1), NULL), 0);
  CHECK_RC(aioc_await(other, &r), 0);
  CHECK_EQ(AIOC_TO_INT(r), 2);
  aioc_future_unref(other);
  /* Now the blocker ends; the dropped jobs never run. */
  gate_open(&p->g);
  CHECK_RC(aioc_await(blocker, &r), 0);
  free(r);
  aioc_future *after;
  CHECK_RC(aioc_run_in_executor(&after, p->a, counts_run, NULL, NULL), 0);
  CHECK_RC(aioc_await(after, NULL), 0);
  CHECK_EQ(atomic_load(&g_ran), 2); /* `other` and `after` only */
  aioc_future_unref(after);
  aioc_future_unref(blocker);
  aioc_future_unref(queued);
  aioc_future_unref(timed);
  aioc_future_unref(scoped);
  return 0;
}

TEST(test_queued_job_dropped_and_pools) {
  g_main_thread = pthread_self();
  pools p;
  gate_init(&p.g);
  aioc_executor_options one = {.threads = 1};
  CHECK_RC(aioc_executor_new(&p.a, &one), 0);
  CHECK_RC(aioc_executor_new(&p.b, &one), 0);
  atomic_store(&g_ran, 0);
  CHECK_RC(run_real(dropped_main, &p), 0);
  CHECK_EQ(g_nreports, 0); /* nothing was abandoned while running */
  aioc_executor_free(p.a);
  aioc_executor_free(p.b);
}

/* A running job whose awaiter times out, or is cancelled, sees the flag;
 * its result goes to result_free; the loop's close reports the count. */
static atomic_int g_started;

static int awaits_polling(void *arg, void **result) {
  (void)arg;
  (void)result;
  return aioc_to_thread(NULL, polls_flag, &g_started);
}

static int running_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  /* Timeout of a to_thread in a scope, once the job runs (the job must
   * start before the deadline: 2 s leaves room for an emulator under
   * load, where 0.1 s was once not enough and the job was dropped). */
  aioc_scope *s;
  CHECK_RC(aioc_timeout_enter(&s, 2.0), 0);
  CHECK_RC(aioc_to_thread(NULL, polls_flag, &g_started), -ETIMEDOUT);
  CHECK_RC(aioc_scope_exit(s), -ETIMEDOUT);
  aioc_scope_free(s);
  CHECK_EQ(atomic_load(&g_started), 1);
  CHECK_RC(wait_flag(&g_saw_cancel, 1), 0);
  /* Cancellation of the awaiting task. */
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, awaits_polling, NULL), 0);
  CHECK_RC(wait_flag(&g_started, 2), 0);
  CHECK_EQ(aioc_task_cancel(t, NULL), 1);
  CHECK_RC(aioc_task_await(t, NULL), -ECANCELED);
  aioc_task_unref(t);
  CHECK_RC(wait_flag(&g_saw_cancel, 2), 0);
  /* A cancelled future of a running job: its result goes to result_free. */
  aioc_future *f;
  aioc_job_options o = {.result_free = count_free};
  atomic_store(&g_freed, 0);
  CHECK_RC(aioc_run_in_executor(&f, NULL, polls_flag_heap, &g_started, &o),
           0);
  CHECK_RC(wait_flag(&g_started, 3), 0);
  CHECK_RC(aioc_wait_for(f, NULL, 0.05), -ETIMEDOUT);
  CHECK_RC(wait_flag(&g_saw_cancel, 3), 0);
  CHECK_RC(wait_flag(&g_freed, 1), 0); /* freed once the call came back */
  aioc_future_unref(f);
  return 0;
}

TEST(test_running_job_flag_and_report) {
  atomic_store(&g_started, 0);
  atomic_store(&g_saw_cancel, 0);
  CHECK_RC(run_real(running_main, NULL), 0);
  CHECK_EQ(g_nreports, 1);
  CHECK_STR(g_detail, "3 jobs abandoned while running (0 still running at "
                      "close)");
}

/* A loop closed while a job runs: the job sees the flag, its result goes to
 * result_free on its thread, the report counts it as still running. */
TEST(test_loop_closed_under_running_job) {
  aioc_loop *loop = test_loop(0);
  g_nreports = 0;
  aioc_loop_set_report_handler(loop, keep_report, NULL);
  atomic_store(&g_started, 0);
  atomic_store(&g_saw_cancel, 0);
  atomic_store(&g_freed, 0);
  aioc_future *f;
  aioc_job_options o = {.result_free = count_free};
  CHECK_RC(aioc_run_in_executor(&f, NULL, polls_flag_heap, &g_started, &o),
           0);
  spin_flag(&g_started, 1);
  CHECK_EQ(atomic_load(&g_started), 1);
  CHECK_RC(aioc_loop_close(loop), 0);
  /* The default executor waited for its thread: all is settled. */
  CHECK_EQ(atomic_load(&g_saw_cancel), 1);
  CHECK_EQ(atomic_load(&g_freed), 1);
  CHECK(aioc_future_is_cancelled(f));
  CHECK_EQ(g_nreports, 1);
  CHECK_STR(g_detail, "1 job abandoned while running (1 still running at "
                      "close)");
  aioc_future_unref(f);
  aioc_loop_free(loop);
}

/* ---- the pool grows for blocking jobs ---------------------------------- */

/* Jobs that each wait until all of them have started: they finish only
 * if the pool runs every one on a thread of its own (a pool that kept
 * them queued behind a blocked thread would let them time out). */
typedef struct rendezvous {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int want, in;
} rendezvous;

static int meets(void *arg, void **result) {
  rendezvous *m = arg;
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += 20;
  int rc = 0;
  pthread_mutex_lock(&m->mu);
  if (++m->in == m->want) pthread_cond_broadcast(&m->cv);
  while (m->in < m->want && rc == 0)
    if (pthread_cond_timedwait(&m->cv, &m->mu, &dl) == ETIMEDOUT)
      rc = -ETIMEDOUT;
  pthread_mutex_unlock(&m->mu);
  *result = AIOC_INT(1);
  return rc;
}

typedef struct grow_args {
  aioc_executor *ex;
  rendezvous m;
} grow_args;

static int grow_main(void *arg, void **result) {
  (void)result;
  grow_args *g = arg;
  enum { N = 6 };
  /* Twice: from an idle pool, then from one whose threads are awake. */
  for (int round = 0; round < 2; round++) {
    g->m.in = 0;
    aioc_future *f[N];
    for (int i = 0; i < N; i++)
      CHECK_RC(aioc_run_in_executor(&f[i], g->ex, meets, &g->m, NULL), 0);
    for (int i = 0; i < N; i++) {
      void *r;
      CHECK_RC(aioc_await(f[i], &r), 0);
      CHECK_EQ(AIOC_TO_INT(r), 1);
      aioc_future_unref(f[i]);
    }
    /* Short jobs in between run on the threads already there. */
    for (int i = 0; i < 50; i++) {
      void *r;
      CHECK_RC(aioc_to_thread(&r, add_one, AIOC_INT(i)), 0);
      CHECK_EQ(AIOC_TO_INT(r), i + 1);
    }
  }
  return 0;
}

TEST(test_blocking_jobs_get_threads) {
  g_main_thread = pthread_self();
  grow_args g;
  pthread_mutex_init(&g.m.mu, NULL);
  pthread_cond_init(&g.m.cv, NULL);
  g.m.want = 6;
  aioc_executor_options six = {.threads = 6};
  CHECK_RC(aioc_executor_new(&g.ex, &six), 0);
  CHECK_RC(run_real(grow_main, &g), 0);
  CHECK_EQ(g_nreports, 0);
  aioc_executor_free(g.ex);
  pthread_cond_destroy(&g.m.cv);
  pthread_mutex_destroy(&g.m.mu);
}

/* A job submitted while another blocks runs beside it, whether or not
 * the pool was busy just before (its threads had just taken jobs). */
static int waits_for_partner(void *arg, void **result) {
  atomic_int *flag = arg;
  atomic_fetch_add(flag, 1); /* started */
  for (int i = 0; i < 20000 && atomic_load(flag) < 2; i++) usleep(1000);
  *result = AIOC_INT(atomic_load(flag) >= 2);
  return 0;
}

static int partner(void *arg, void **result) {
  atomic_fetch_add((atomic_int *)arg, 1);
  *result = AIOC_INT(1);
  return 0;
}

static int late_partner_main(void *arg, void **result) {
  (void)result;
  aioc_executor *ex = arg;
  for (int round = 0; round < 3; round++) {
    /* Round 0 from an idle pool, then right after a burst of short jobs. */
    for (int i = 0; round && i < 200; i++)
      CHECK_RC(aioc_to_thread(NULL, add_one, AIOC_INT(i)), 0);
    atomic_int flag;
    atomic_init(&flag, 0);
    aioc_future *a, *b;
    CHECK_RC(aioc_run_in_executor(&a, ex, waits_for_partner, &flag, NULL), 0);
    /* The partner goes in as soon as the first has started, before the
     * pool could tell that it blocks. */
    for (long i = 0; i < 100000000 && atomic_load(&flag) < 1; i++)
      CHECK_RC(aioc_yield(), 0);
    CHECK_RC(wait_flag(&flag, 1), 0);
    CHECK_RC(aioc_run_in_executor(&b, ex, partner, &flag, NULL), 0);
    void *r;
    CHECK_RC(aioc_await(b, &r), 0);
    CHECK_RC(aioc_await(a, &r), 0);
    CHECK_EQ(AIOC_TO_INT(r), 1); /* the partner ran while it waited */
    aioc_future_unref(a);
    aioc_future_unref(b);
  }
  return 0;
}

TEST(test_job_beside_a_blocked_one) {
  g_main_thread = pthread_self();
  aioc_executor *ex;
  aioc_executor_options two = {.threads = 2};
  CHECK_RC(aioc_executor_new(&ex, &two), 0);
  CHECK_RC(run_real(late_partner_main, ex), 0);
  aioc_executor_free(ex);
  CHECK_RC(run_real(late_partner_main, NULL), 0); /* the default pool */
}

/* ---- giving up at every stage, several pools ---------------------------- */

static int short_sleep(void *arg, void **result) {
  usleep((useconds_t)(AIOC_TO_INT(arg) % 7) * 30);
  *result = AIOC_INT(AIOC_TO_INT(arg) + 1);
  return 0;
}

typedef struct storm {
  aioc_executor *pools[2];
  atomic_int done, cancelled;
} storm;

typedef struct storm_call {
  storm *s;
  int i;
} storm_call;

static int storm_task(void *arg, void **result) {
  (void)result;
  storm_call *c = arg;
  for (int k = 0; k < 20; k++) {
    int i = c->i * 20 + k;
    void *r;
    int rc;
    if (i % 3 == 0) {
      rc = aioc_to_thread(&r, short_sleep, AIOC_INT(i));
    } else {
      aioc_future *f;
      rc = aioc_run_in_executor(&f, c->s->pools[i % 2], short_sleep,
                                AIOC_INT(i), NULL);
      if (rc < 0) return rc;
      rc = aioc_await(f, &r);
      aioc_future_unref(f);
    }
    if (rc == -ECANCELED) {
      atomic_fetch_add(&c->s->cancelled, 1);
      return rc;
    }
    if (rc < 0) return rc;
    if (AIOC_TO_INT(r) != i + 1) return -EPROTO;
    atomic_fetch_add(&c->s->done, 1);
  }
  return 0;
}

static int storm_main(void *arg, void **result) {
  (void)result;
  storm *s = arg;
  enum { N = 60 };
  aioc_task *t[N];
  storm_call c[N];
  for (int i = 0; i < N; i++) {
    c[i] = (storm_call){s, i};
    CHECK_RC(aioc_spawn(&t[i], storm_task, &c[i]), 0);
  }
  /* Cancel a third of the tasks at various points of their calls: jobs
   * in the outbox, on the inbox, queued and running. */
  for (int i = 0; i < N; i += 3) {
    for (int y = 0; y < i % 5; y++) CHECK_RC(aioc_yield(), 0);
    IGNORE_RC(aioc_task_cancel(t[i], NULL));
  }
  for (int i = 0; i < N; i++) {
    int rc = aioc_task_await(t[i], NULL);
    if (rc != -ECANCELED) CHECK_RC(rc, 0);
    aioc_task_unref(t[i]);
  }
  CHECK(atomic_load(&s->done) > 0);
  return 0;
}

TEST(test_giving_up_under_load) {
  storm s;
  atomic_init(&s.done, 0);
  atomic_init(&s.cancelled, 0);
  aioc_executor_options two = {.threads = 2};
  CHECK_RC(aioc_executor_new(&s.pools[0], &two), 0);
  CHECK_RC(aioc_executor_new(&s.pools[1], NULL), 0);
  CHECK_RC(run_real(storm_main, &s), 0);
  aioc_executor_free(s.pools[0]);
  aioc_executor_free(s.pools[1]);
}

/* A loop closed with jobs handed over but not queued (a pool whose only
 * thread is blocked), running, and done: each is settled, none leaks. */
static int leaves_jobs(void *arg, void **result) {
  (void)result;
  pools *p = arg;
  aioc_future *f;
  aioc_job_options o = {.result_free = count_free};
  CHECK_RC(aioc_run_in_executor(&f, p->a, blocked, &p->g, &o), 0);
  aioc_future_unref(f);
  CHECK_RC(wait_flag(&p->g.entered, 1), 0);
  for (int i = 0; i < 30; i++) {
    CHECK_RC(aioc_run_in_executor(&f, i % 2 ? p->a : p->b, counts_run, NULL,
                                  NULL),
             0);
    aioc_future_unref(f);
    if (i == 10) CHECK_RC(aioc_yield(), 0); /* a batch handed over */
  }
  return 0;
}

TEST(test_loop_closed_with_jobs_everywhere) {
  pools p;
  gate_init(&p.g);
  aioc_executor_options one = {.threads = 1};
  CHECK_RC(aioc_executor_new(&p.a, &one), 0);
  CHECK_RC(aioc_executor_new(&p.b, NULL), 0);
  aioc_loop *loop = test_loop(0);
  aioc_loop_set_report_handler(loop, keep_report, NULL);
  g_nreports = 0;
  atomic_store(&g_freed, 0);
  aioc_task *t;
  CHECK_RC(aioc_spawn_ex(&t, loop, leaves_jobs, &p, NULL), 0);
  CHECK_RC(aioc_loop_run_until_complete(loop, aioc_task_future(t)), 0);
  CHECK_RC(aioc_future_result(aioc_task_future(t), NULL), 0);
  aioc_task_unref(t);
  CHECK_RC(aioc_loop_close(loop), 0);
  CHECK_EQ(g_nreports, 1); /* the blocked job, abandoned while running */
  gate_open(&p.g);
  aioc_executor_free(p.a); /* waits for the blocked job */
  aioc_executor_free(p.b);
  CHECK_EQ(atomic_load(&g_freed), 1); /* its result, freed on its thread */
  aioc_loop_free(loop);
}

/* ---- plain code and callbacks ------------------------------------------ */

static void in_callback(void *arg) {
  int *rc = arg;
  *rc = aioc_to_thread(NULL, add_one, NULL);
}

TEST(test_plain_code_and_callbacks) {
  g_main_thread = pthread_self();
  aioc_loop *loop = test_loop(0);
  void *r;
  /* Plain code: the loop runs until the job is done. */
  CHECK_RC(aioc_to_thread(&r, add_one, AIOC_INT(5)), 0);
  CHECK_EQ(AIOC_TO_INT(r), 6);
  CHECK_RC(aioc_to_thread(&r, fails_io, "/p"), -EIO);
  CHECK_STR(aioc_error_message(), "cannot read /p");
  aioc_future *f;
  CHECK_RC(aioc_run_in_executor(&f, NULL, add_one, AIOC_INT(1), NULL), 0);
  CHECK_RC(aioc_block_on(f, &r), 0);
  CHECK_EQ(AIOC_TO_INT(r), 2);
  aioc_future_unref(f);
  /* A callback must not block its loop. */
  int rc = 0;
  aioc_handle *h;
  CHECK_RC(aioc_call_soon(&h, loop, in_callback, &rc), 0);
  aioc_handle_unref(h);
  CHECK_RC(aioc_loop_run_once(loop), 1);
  CHECK_RC(rc, AIOC_ERUNNING);
  /* Bad arguments. */
  CHECK_RC(aioc_run_in_executor(NULL, NULL, add_one, NULL, NULL), -EINVAL);
  CHECK_RC(aioc_run_in_executor(&f, NULL, NULL, NULL, NULL), -EINVAL);
  CHECK(f == NULL);
  CHECK_EQ(aioc_job_is_cancelled(), 0);
  CLOSE_CLEAN(loop);
}

/* ---- executor lifetime --------------------------------------------------- */

static void *opener(void *arg) {
  usleep(20000);
  gate_open(arg);
  return NULL;
}

static int closes_own(void *arg, void **result) {
  (void)result;
  return aioc_executor_close(arg);
}

TEST(test_executor_close) {
  aioc_executor *ex;
  aioc_executor_options bad = {.threads = -1};
  CHECK_RC(aioc_executor_new(&ex, &bad), -EINVAL);
  bad = (aioc_executor_options){.shutdown_timeout = -1};
  CHECK_RC(aioc_executor_new(&ex, &bad), -EINVAL);
  CHECK_RC(aioc_executor_new(NULL, NULL), -EINVAL);
  CHECK_RC(aioc_executor_close(NULL), -EINVAL);
  aioc_executor_free(NULL);

  aioc_loop *loop = test_loop(0);
  aioc_executor_options one = {.threads = 1};
  CHECK_RC(aioc_executor_new(&ex, &one), 0);
  gate g;
  gate_init(&g);
  aioc_future *b, *q;
  atomic_store(&g_ran, 0);
  atomic_store(&g_freed, 0);
  aioc_job_options o = {.result_free = count_free};
  CHECK_RC(aioc_run_in_executor(&b, ex, blocked, &g, &o), 0);
  CHECK_RC(aioc_run_in_executor(&q, ex, counts_run, NULL, NULL), 0);
  spin_flag(&g.entered, 1);
  /* Close from another thread while the blocker runs: it waits for it. */
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, opener, &g), 0);
  CHECK_RC(aioc_executor_close(ex), 0);
  pthread_join(th, NULL);
  CHECK_RC(aioc_executor_close(ex), AIOC_ECLOSED);
  aioc_future *late;
  CHECK_RC(aioc_run_in_executor(&late, ex, counts_run, NULL, NULL),
           -ESHUTDOWN);
  void *r;
  CHECK_RC(aioc_block_on(b, &r), 0); /* it ran to its end */
  free(r);
  CHECK_RC(aioc_block_on(q, NULL), -ESHUTDOWN); /* dropped */
  CHECK_EQ(atomic_load(&g_ran), 0);
  aioc_future_unref(b);
  aioc_future_unref(q);
  aioc_executor_free(ex);

  /* A job closing its own executor does not wait for itself. */
  CHECK_RC(aioc_executor_new(&ex, NULL), 0);
  CHECK_RC(aioc_run_in_executor(&b, ex, closes_own, ex, NULL), 0);
  CHECK_RC(aioc_block_on(b, NULL), -EDEADLK);
  aioc_future_unref(b);
  aioc_executor_free(ex);
  CLOSE_CLEAN(loop);
}

/* ---- run_coroutine_threadsafe -------------------------------------------- */

typedef struct lthread {
  aioc_loop *loop;
  pthread_t th;
  atomic_int ready;
} lthread;

static int lt_until_stopped(void *arg, void **result) {
  (void)result;
  lthread *lt = arg;
  atomic_store(&lt->ready, 1);
  /* Runs until the loop is stopped: the tasks come from elsewhere. */
  return AIOC_NORESULT;
}

static void *lt_main(void *arg) {
  lthread *lt = arg;
  aioc_task *t;
  if (aioc_spawn_ex(&t, lt->loop, lt_until_stopped, lt, NULL) == 0)
    aioc_task_unref(t);
  aioc_loop_run_forever(lt->loop);
  return NULL;
}

static void lt_start(lthread *lt) {
  aioc_loop_options o = {.quiet = 1};
  if (aioc_loop_new(&lt->loop, &o) != 0) exit(2);
  atomic_init(&lt->ready, 0);
  if (pthread_create(&lt->th, NULL, lt_main, lt) != 0) exit(2);
  spin_flag(&lt->ready, 1);
}

static void lt_stop(lthread *lt) {
  aioc_loop_stop(lt->loop);
  pthread_join(lt->th, NULL);
  CHECK_RC(aioc_loop_close(lt->loop), 0);
}

static int remote_add(void *arg, void **result) {
  int rc = aioc_sleep(0.01);
  if (rc < 0) return rc;
  *result = malloc(sizeof(long));
  *(long *)*result = AIOC_TO_INT(arg) + 1;
  return 0;
}

static int remote_fail(void *arg, void **result) {
  (void)arg;
  (void)result;
  return aioc_error(-EBADMSG, "remote says no");
}

static int remote_forever(void *arg, void **result) {
  (void)result;
  atomic_fetch_add((atomic_int *)arg, 1);
  int rc = aioc_sleep(3600);
  atomic_fetch_add(&g_saw_cancel, rc == -ECANCELED);
  return rc;
}

static int wait_in_task(void *arg, void **result) {
  (void)result;
  return aioc_tsfuture_wait(arg, NULL, 1.0);
}

TEST(test_run_coroutine_threadsafe) {
  lthread lt;
  lt_start(&lt);
  aioc_tsfuture *f;
  void *r;
  CHECK_RC(aioc_run_coroutine_threadsafe(NULL, lt.loop, remote_add, NULL,
                                         NULL),
           -EINVAL);
  CHECK_RC(aioc_run_coroutine_threadsafe(&f, NULL, remote_add, NULL, NULL),
           -EINVAL);
  /* A result, taken once; the wait blocks this thread. */
  aioc_task_options to = {.result_free = count_free};
  CHECK_RC(aioc_run_coroutine_threadsafe(&f, lt.loop, remote_add, AIOC_INT(1),
                                         &to),
           0);
  CHECK_RC(aioc_tsfuture_wait(f, &r, AIOC_FOREVER), 0);
  CHECK(aioc_tsfuture_is_done(f));
  CHECK_EQ(*(long *)r, 2);
  free(r);
  CHECK_RC(aioc_tsfuture_wait(f, &r, 0), 0);
  CHECK(r == NULL);
  aioc_tsfuture_free(f);
  /* A result never taken goes to result_free. */
  atomic_store(&g_freed, 0);
  CHECK_RC(aioc_run_coroutine_threadsafe(&f, lt.loop, remote_add, AIOC_INT(1),
                                         &to),
           0);
  CHECK_RC(aioc_tsfuture_wait(f, NULL, AIOC_FOREVER), 0);
  aioc_tsfuture_free(f);
  CHECK_EQ(atomic_load(&g_freed), 1);
  /* An error with its message. */
  CHECK_RC(aioc_run_coroutine_threadsafe(&f, lt.loop, remote_fail, NULL, NULL),
           0);
  CHECK_RC(aioc_tsfuture_wait(f, &r, 10.0), -EBADMSG);
  CHECK_STR(aioc_tsfuture_error_message(f), "remote says no");
  aioc_tsfuture_free(f);
  /* Timeout, then cancel: the task is cancelled in its loop. */
  atomic_int started;
  atomic_init(&started, 0);
  atomic_store(&g_saw_cancel, 0);
  CHECK_RC(aioc_run_coroutine_threadsafe(&f, lt.loop, remote_forever, &started,
                                         NULL),
           0);
  CHECK_RC(aioc_tsfuture_wait(f, &r, 0.05), -ETIMEDOUT);
  CHECK_RC(aioc_tsfuture_wait(f, &r, 0), -ETIMEDOUT);
  CHECK_RC(aioc_tsfuture_wait(f, &r, -1), -EINVAL);
  CHECK(!aioc_tsfuture_is_done(f));
  spin_flag(&started, 1);
  CHECK_EQ(aioc_tsfuture_cancel(f), 1);
  CHECK_EQ(aioc_tsfuture_cancel(f), 0);
  CHECK_RC(aioc_tsfuture_wait(f, &r, AIOC_FOREVER), -ECANCELED);
  CHECK_EQ(atomic_load(&g_saw_cancel), 1);
  aioc_tsfuture_free(f);
  /* Waiting from a task would stall its loop. */
  CHECK_RC(aioc_run_coroutine_threadsafe(&f, lt.loop, remote_forever, &started,
                                         NULL),
           0);
  aioc_tsfuture *g;
  CHECK_RC(aioc_run_coroutine_threadsafe(&g, lt.loop, wait_in_task, f, NULL),
           0);
  CHECK_RC(aioc_tsfuture_wait(g, NULL, AIOC_FOREVER), AIOC_ERUNNING);
  aioc_tsfuture_free(g);
  /* Freed before the end: the task runs on; its loop's close ends it. */
  aioc_tsfuture_free(f);
  lt_stop(&lt);
  /* A closed loop takes nothing. */
  CHECK_RC(aioc_run_coroutine_threadsafe(&f, lt.loop, remote_add, NULL, NULL),
           AIOC_ECLOSED);
  aioc_loop_free(lt.loop);
}

/* The loop closes before the spawn, or under the task. */
TEST(test_run_coroutine_threadsafe_loop_closes) {
  aioc_loop *loop;
  aioc_loop_options o = {.quiet = 1};
  CHECK_RC(aioc_loop_new(&loop, &o), 0);
  aioc_tsfuture *f, *g;
  CHECK_RC(aioc_run_coroutine_threadsafe(&f, loop, remote_add, NULL, NULL), 0);
  CHECK_RC(aioc_loop_close(loop), 0); /* never ran */
  CHECK_RC(aioc_tsfuture_wait(f, NULL, 1.0), AIOC_ECLOSED);
  aioc_tsfuture_free(f);
  aioc_loop_free(loop);

  lthread lt;
  lt_start(&lt);
  atomic_int started;
  atomic_init(&started, 0);
  CHECK_RC(aioc_run_coroutine_threadsafe(&g, lt.loop, remote_forever, &started,
                                         NULL),
           0);
  spin_flag(&started, 1);
  aioc_loop_set_report_handler(lt.loop, keep_report, NULL);
  lt_stop(&lt); /* the task is abandoned */
  CHECK_RC(aioc_tsfuture_wait(g, NULL, 1.0), -ECANCELED);
  aioc_tsfuture_free(g);
  aioc_loop_free(lt.loop);
}

CHECK_MAIN(60)

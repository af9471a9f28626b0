/* Futures and tasks: spawning, awaiting, results and errors, cancellation,
 * shields, diagnostics, block_on, aioc_run, bad input, a million tasks. */
#include <math.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "check.h"
#include "task/task.h" /* the waitpoint, the loop's timer heap */

/* ---- helpers ---- */

static int ret_index(void *arg, void **result) {
  *result = arg;
  return 0;
}

static int sleep_arg(void *arg, void **result) {
  (void)result;
  return aioc_sleep(*(double *)arg);
}

/* Captures reports instead of printing them. */
typedef struct reports {
  int n;
  char last[256];
  char detail[256];
  int code;
} reports;

static void capture(void *arg, aioc_loop *loop, const aioc_report *r) {
  (void)loop;
  reports *rep = arg;
  rep->n++;
  snprintf(rep->last, sizeof rep->last, "%s", r->message);
  snprintf(rep->detail, sizeof rep->detail, "%s", r->detail ? r->detail : "");
  rep->code = r->code;
}

/* ---- spawning and awaiting ---- */

static int spawn_many(void *arg, void **result) {
  int n = (int)AIOC_TO_INT(arg);
  aioc_task **ts = calloc((size_t)n, sizeof *ts);
  for (int i = 0; i < n; i++)
    CHECK_RC(aioc_spawn(&ts[i], ret_index, AIOC_INT(i)), 0);
  long sum = 0;
  for (int i = 0; i < n; i++) {
    void *r;
    CHECK_RC(aioc_task_await(ts[i], &r), 0);
    sum += AIOC_TO_INT(r);
    aioc_task_unref(ts[i]);
  }
  free(ts);
  *result = AIOC_INT(sum);
  return 0;
}

TEST(test_spawn_await) {
  void *r;
  CHECK_RC(aioc_run(spawn_many, AIOC_INT(1000), &r), 0);
  CHECK_EQ(AIOC_TO_INT(r), 999 * 1000 / 2);
}

/* Tasks start in spawn order, after the spawner yields. */
static char order[64];
static int append(void *arg, void **result) {
  (void)result;
  strcat(order, (const char *)arg);
  return 0;
}

static int start_order(void *arg, void **result) {
  (void)arg;
  (void)result;
  order[0] = 0;
  CHECK_RC(aioc_spawn(NULL, append, "a"), 0);
  CHECK_RC(aioc_spawn(NULL, append, "b"), 0);
  strcat(order, "M");
  CHECK_RC(aioc_spawn(NULL, append, "c"), 0);
  CHECK_RC(aioc_sleep(0), 0);
  strcat(order, "m");
  return 0;
}

TEST(test_start_order) {
  CHECK_RC(aioc_run(start_order, NULL, NULL), 0);
  CHECK_STR(order, "Mabcm");
}

/* A task whose handle was released at once still runs to its end. */
static int fire_forget_flag;
static int set_flag_later(void *arg, void **result) {
  (void)arg;
  (void)result;
  CHECK_RC(aioc_sleep(1.0), 0);
  fire_forget_flag = 1;
  return 0;
}

static int fire_and_forget(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, set_flag_later, NULL), 0);
  aioc_task_unref(t);
  CHECK_RC(aioc_spawn(NULL, set_flag_later, NULL), 0);
  return aioc_sleep(2.0);
}

TEST(test_fire_and_forget) {
  aioc_run_options o = {.loop.virtual_clock = 1};
  fire_forget_flag = 0;
  CHECK_RC(aioc_run_ex(fire_and_forget, NULL, NULL, &o), 0);
  CHECK_EQ(fire_forget_flag, 1);
}

/* ---- errors ---- */

static int fail_eio(void *arg, void **result) {
  (void)result;
  CHECK_RC(aioc_sleep(0), 0);
  return aioc_error(-EIO, "cannot read %s", (const char *)arg);
}

static int pass_on(void *arg, void **result) {
  (void)result;
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, fail_eio, arg), 0);
  int rc = aioc_task_await(t, NULL);
  aioc_task_unref(t);
  CHECK_RC(rc, -EIO);
  CHECK_STR(aioc_error_message(), "cannot read data.bin");
  return rc; /* code and message travel on */
}

static int error_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_task *t;
  aioc_task_options o = {.name = "middle"};
  CHECK_RC(aioc_spawn_ex(&t, NULL, pass_on, "data.bin", &o), 0);
  void *r = (void *)1;
  CHECK_RC(aioc_task_await(t, &r), -EIO);
  CHECK(r == NULL);
  aioc_future *f = aioc_task_future(t);
  CHECK_EQ(aioc_future_state(f), AIOC_FUTURE_DONE);
  CHECK_RC(aioc_future_error(f), -EIO);
  CHECK_STR(aioc_future_error_message(f), "cannot read data.bin");
  CHECK_STR(aioc_task_name(t), "middle");
  aioc_task_unref(t);
  return 0;
}

TEST(test_error_propagation) {
  CHECK_RC(aioc_run(error_main, NULL, NULL), 0);
}

/* An error nobody retrieved is reported, with the task's name. */
static int unretrieved_main(void *arg, void **result) {
  (void)result;
  reports *rep = arg;
  aioc_loop_set_report_handler(aioc_get_running_loop(), capture, rep);
  aioc_task_options o = {.name = "lonely"};
  CHECK_RC(aioc_spawn_ex(NULL, NULL, fail_eio, "x", &o), 0);
  CHECK_RC(aioc_sleep(0.1), 0);
  return 0;
}

TEST(test_unretrieved_error_reported) {
  reports rep = {0};
  aioc_run_options o = {.loop.virtual_clock = 1};
  CHECK_RC(aioc_run_ex(unretrieved_main, &rep, NULL, &o), 0);
  CHECK_EQ(rep.n, 1);
  CHECK_STR(rep.last, "Task exception was never retrieved");
  CHECK_STR(rep.detail, "cannot read x");
  CHECK_RC(rep.code, -EIO);
}

/* Results nobody took are destroyed; taken ones are not. */
static int freed_count;
static void count_free(void *p) {
  freed_count++;
  free(p);
}

static int alloc_result(void *arg, void **result) {
  (void)arg;
  *result = malloc(16);
  return 0;
}

static int result_owner_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_task_options o = {.result_free = count_free};
  aioc_task *a, *b;
  CHECK_RC(aioc_spawn_ex(&a, NULL, alloc_result, NULL, &o), 0);
  CHECK_RC(aioc_spawn_ex(&b, NULL, alloc_result, NULL, &o), 0);
  void *r;
  CHECK_RC(aioc_task_await(a, &r), 0);
  free(r); /* taken: ours now */
  CHECK_RC(aioc_task_await(b, NULL), 0);
  aioc_task_unref(a);
  aioc_task_unref(b); /* not taken: destroyed with the task */
  return 0;
}

TEST(test_result_ownership) {
  freed_count = 0;
  CHECK_RC(aioc_run(result_owner_main, NULL, NULL), 0);
  CHECK_EQ(freed_count, 1);
}

/* ---- plain futures ---- */

static void complete_later(void *arg) {
  CHECK_RC(aioc_future_set_result(arg, AIOC_INT(42), NULL), 0);
}

static int callbacks_seen[4];
static int ncallbacks;
static void record_cb(void *arg) {
  callbacks_seen[ncallbacks++] = (int)AIOC_TO_INT(arg);
}

static int future_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_future *f;
  CHECK_RC(aioc_future_new(&f, NULL), 0);
  CHECK_EQ(aioc_future_state(f), AIOC_FUTURE_PENDING);
  void *r;
  CHECK_RC(aioc_future_result(f, &r), AIOC_ESTATE);
  ncallbacks = 0;
  CHECK_RC(aioc_future_add_done_callback(f, record_cb, AIOC_INT(1)), 0);
  CHECK_RC(aioc_future_add_done_callback(f, record_cb, AIOC_INT(2)), 0);
  CHECK_RC(aioc_future_add_done_callback(f, record_cb, AIOC_INT(3)), 0);
  CHECK_EQ(aioc_future_remove_done_callback(f, record_cb, AIOC_INT(2)), 1);
  CHECK_RC(
      aioc_call_later(NULL, aioc_get_running_loop(), 0.5, complete_later, f),
      0);
  CHECK_RC(aioc_await(f, &r), 0);
  CHECK_EQ(AIOC_TO_INT(r), 42);
  CHECK_DBL(aioc_time(), 0.5, 1e-9);
  CHECK_RC(aioc_future_set_result(f, NULL, NULL), AIOC_ESTATE);
  CHECK_RC(aioc_sleep(0), 0); /* callbacks run via the loop */
  CHECK_EQ(ncallbacks, 2);
  CHECK_EQ(callbacks_seen[0], 1);
  CHECK_EQ(callbacks_seen[1], 3);
  aioc_future_unref(f);

  /* Errors with a payload. */
  CHECK_RC(aioc_future_new(&f, NULL), 0);
  CHECK_RC(aioc_future_set_error_payload(f, NULL, NULL), AIOC_ESTATE);
  CHECK_RC(aioc_future_set_error(f, 0, "no"), -EINVAL);
  CHECK_RC(aioc_future_set_error(f, -EPROTO, "bad frame %d", 7), 0);
  CHECK_RC(aioc_future_set_error_payload(f, malloc(8), free), 0);
  CHECK_RC(aioc_await(f, &r), -EPROTO);
  CHECK_STR(aioc_future_error_message(f), "bad frame 7");
  CHECK(aioc_future_error_payload(f) != NULL);
  aioc_future_unref(f);

  /* Cancel a plain future: its awaiter gets -ECANCELED. */
  CHECK_RC(aioc_future_new(&f, NULL), 0);
  CHECK_EQ(aioc_future_cancel(f, "stop"), 1);
  CHECK_EQ(aioc_future_cancel(f, "again"), 0);
  CHECK_RC(aioc_await(f, &r), -ECANCELED);
  CHECK_EQ(aioc_future_state(f), AIOC_FUTURE_CANCELLED);
  CHECK_STR(aioc_future_error_message(f), "stop");
  aioc_future_unref(f);
  return 0;
}

TEST(test_futures) {
  aioc_run_options o = {.loop.virtual_clock = 1};
  CHECK_RC(aioc_run_ex(future_main, NULL, NULL, &o), 0);
}

/* ---- cancellation ---- */

typedef struct cancel_probe {
  int first, second, cleanup, after_uncancel;
  int ran;
} cancel_probe;

/* Level-triggered: every wait after cancellation fails, until uncancel. */
static int victim(void *arg, void **result) {
  (void)result;
  cancel_probe *p = arg;
  p->ran = 1;
  p->first = aioc_sleep(10);
  p->second = aioc_sleep(10);
  CHECK_RC(aioc_yield(), -ECANCELED);
  CHECK_EQ(aioc_task_cancelling(aioc_current_task()), 1);
  /* Cleanup that must wait runs in a shield with its own deadline. */
  aioc_scope *s;
  CHECK_RC(aioc_shield_enter(&s, 5), 0);
  p->cleanup = aioc_sleep(1);
  CHECK_RC(aioc_scope_exit(s), 0);
  aioc_scope_free(s);
  return -ECANCELED;
}

static int cancel_main(void *arg, void **result) {
  (void)result;
  cancel_probe *p = arg;
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, victim, p), 0);
  CHECK_RC(aioc_sleep(1), 0);
  CHECK_EQ(aioc_task_cancel(t, "enough"), 1);
  CHECK_RC(aioc_task_await(t, NULL), -ECANCELED);
  CHECK_DBL(aioc_time(), 2.0, 1e-9); /* the shielded cleanup took 1 s */
  CHECK_EQ(aioc_future_state(aioc_task_future(t)), AIOC_FUTURE_CANCELLED);
  CHECK_STR(aioc_future_error_message(aioc_task_future(t)), "enough");
  CHECK_EQ(aioc_task_cancel(t, NULL), 0); /* finished: harmless */
  aioc_task_unref(t);
  return 0;
}

TEST(test_cancel_level_triggered) {
  cancel_probe p = {0};
  aioc_run_options o = {.loop.virtual_clock = 1};
  CHECK_RC(aioc_run_ex(cancel_main, &p, NULL, &o), 0);
  CHECK_RC(p.first, -ECANCELED);
  CHECK_RC(p.second, -ECANCELED);
  CHECK_RC(p.cleanup, 0);
}

/* Cancelled before it started: the function never runs. */
static int cancel_early_main(void *arg, void **result) {
  (void)result;
  cancel_probe *p = arg;
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, victim, p), 0);
  aioc_task_cancel(t, NULL);
  CHECK_RC(aioc_task_await(t, NULL), -ECANCELED);
  aioc_task_unref(t);
  return 0;
}

TEST(test_cancel_before_start) {
  cancel_probe p = {0};
  CHECK_RC(aioc_run(cancel_early_main, &p, NULL), 0);
  CHECK_EQ(p.ran, 0);
}

/* uncancel swallows one cancellation: waits work again. */
static int swallow(void *arg, void **result) {
  cancel_probe *p = arg;
  p->first = aioc_sleep(10);
  if (p->first == -ECANCELED) aioc_task_uncancel(aioc_current_task());
  p->after_uncancel = aioc_sleep(1);
  *result = AIOC_INT(7);
  return 0;
}

static int uncancel_main(void *arg, void **result) {
  (void)result;
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, swallow, arg), 0);
  CHECK_RC(aioc_sleep(1), 0);
  aioc_task_cancel(t, NULL);
  void *r;
  CHECK_RC(aioc_task_await(t, &r), 0);
  CHECK_EQ(AIOC_TO_INT(r), 7);
  aioc_task_unref(t);
  return 0;
}

TEST(test_uncancel) {
  cancel_probe p = {0};
  aioc_run_options o = {.loop.virtual_clock = 1};
  CHECK_RC(aioc_run_ex(uncancel_main, &p, NULL, &o), 0);
  CHECK_RC(p.first, -ECANCELED);
  CHECK_RC(p.after_uncancel, 0);
}

/* A task woken by its awaited future before the cancel arrives gets the
 * result; the cancellation fires at its next wait (as asyncio). */
static int woken_then_cancelled(void *arg, void **result) {
  (void)result;
  aioc_future *f = arg;
  void *r;
  CHECK_RC(aioc_await(f, &r), 0);
  CHECK_EQ(AIOC_TO_INT(r), 5);
  return aioc_sleep(1);
}

static int race_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_future *f;
  CHECK_RC(aioc_future_new(&f, NULL), 0);
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, woken_then_cancelled, f), 0);
  CHECK_RC(aioc_sleep(0), 0);
  CHECK_RC(aioc_future_set_result(f, AIOC_INT(5), NULL), 0);
  aioc_task_cancel(t, NULL); /* t is ready, not yet resumed */
  CHECK_RC(aioc_task_await(t, NULL), -ECANCELED);
  aioc_task_unref(t);
  aioc_future_unref(f);
  return 0;
}

TEST(test_cancel_after_wakeup) {
  CHECK_RC(aioc_run(race_main, NULL, NULL), 0);
}

/* shield(): cancelling the waiter does not cancel the inner task. */
static int shield_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  static double two = 2.0;
  aioc_task *inner;
  CHECK_RC(aioc_spawn(&inner, sleep_arg, &two), 0);
  aioc_future *outer;
  CHECK_RC(aioc_shield(&outer, aioc_task_future(inner)), 0);
  CHECK_RC(aioc_wait_for(outer, NULL, 1.0), -ETIMEDOUT);
  CHECK_EQ(aioc_future_state(outer), AIOC_FUTURE_CANCELLED);
  CHECK_EQ(aioc_future_state(aioc_task_future(inner)), AIOC_FUTURE_RUNNING);
  CHECK_RC(aioc_task_await(inner, NULL), 0);
  CHECK_DBL(aioc_time(), 2.0, 1e-9);
  aioc_future_unref(outer);
  aioc_task_unref(inner);
  return 0;
}

TEST(test_shield_future) {
  aioc_run_options o = {.loop.virtual_clock = 1};
  CHECK_RC(aioc_run_ex(shield_main, NULL, NULL, &o), 0);
}

/* ---- running state ---- */

/* A task is pending until it starts, running (executing or suspended)
 * until it finishes, then done or cancelled (concurrent.futures' states). */
static int observe_self(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_task *me = aioc_current_task();
  CHECK(aioc_task_is_running(me));
  CHECK_EQ(aioc_future_state(aioc_task_future(me)), AIOC_FUTURE_RUNNING);
  CHECK(!aioc_future_is_done(aioc_task_future(me)));
  return aioc_sleep(1.0);
}

static int running_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_task *t, *early;
  CHECK_RC(aioc_spawn(&t, observe_self, NULL), 0);
  aioc_future *f = aioc_task_future(t);
  CHECK_EQ(aioc_future_state(f), AIOC_FUTURE_PENDING); /* not started */
  CHECK(!aioc_task_is_running(t));
  CHECK_RC(aioc_sleep(0.5), 0);
  CHECK_EQ(aioc_future_state(f), AIOC_FUTURE_RUNNING); /* suspended */
  CHECK(aioc_task_is_running(t));
  CHECK(!aioc_future_is_done(f));
  CHECK(!aioc_future_is_cancelled(f));
  CHECK_RC(aioc_task_await(t, NULL), 0);
  CHECK_EQ(aioc_future_state(f), AIOC_FUTURE_DONE);
  CHECK(!aioc_task_is_running(t));
  CHECK(!aioc_future_is_cancelled(f));
  /* Cancelled while running, and before it started. */
  CHECK_RC(aioc_spawn(&early, observe_self, NULL), 0);
  aioc_task_unref(t);
  CHECK_RC(aioc_spawn(&t, observe_self, NULL), 0);
  CHECK_EQ(aioc_task_cancel(early, NULL), 1);
  CHECK_RC(aioc_sleep(0.5), 0);
  CHECK_EQ(aioc_future_state(aioc_task_future(early)), AIOC_FUTURE_CANCELLED);
  CHECK(aioc_future_is_cancelled(aioc_task_future(early)));
  CHECK(!aioc_task_is_running(early));
  CHECK_EQ(aioc_task_cancel(t, NULL), 1);
  CHECK(aioc_task_is_running(t)); /* until it has ended */
  CHECK_RC(aioc_task_await(t, NULL), -ECANCELED);
  CHECK(aioc_future_is_cancelled(aioc_task_future(t)));
  CHECK(!aioc_task_is_running(t));
  aioc_task_unref(t);
  aioc_task_unref(early);
  /* A plain future is never running. */
  aioc_future *p;
  CHECK_RC(aioc_future_new(&p, NULL), 0);
  CHECK_EQ(aioc_future_state(p), AIOC_FUTURE_PENDING);
  CHECK(!aioc_future_is_cancelled(p));
  CHECK_EQ(aioc_future_cancel(p, NULL), 1);
  CHECK(aioc_future_is_cancelled(p));
  aioc_future_unref(p);
  CHECK(!aioc_task_is_running(NULL));
  CHECK(!aioc_future_is_cancelled(NULL));
  CHECK_RC(aioc_future_state(NULL), -EINVAL);
  return 0;
}

TEST(test_running_state) {
  CHECK_RC(run_main(running_main, NULL, NULL), 0);
}

/* ---- aioc_run: leftovers are cancelled and cleaned up ---- */

static int cleaned_up;
static int leftover(void *arg, void **result) {
  (void)arg;
  (void)result;
  int rc = aioc_sleep(100);
  if (rc == -ECANCELED) {
    aioc_scope *s;
    CHECK_RC(aioc_shield_enter(&s, 1), 0);
    if (aioc_sleep(0.5) == 0) cleaned_up++;
    IGNORE_RC(aioc_scope_exit(s));
    aioc_scope_free(s);
  }
  return rc;
}

/* Its frames never run again once aioc_run abandons it: the library frees
 * the scope it holds open (LeakSanitizer checks). */
static int stubborn(void *arg, void **result) {
  (void)arg;
  (void)result;
  /* Ignores every cancellation: a bug aioc_run reports. */
  aioc_scope *s;
  CHECK_RC(aioc_shield_enter(&s, AIOC_FOREVER), 0);
  IGNORE_RC(aioc_sleep(1000));
  IGNORE_RC(aioc_scope_exit(s));
  aioc_scope_free(s);
  return 0;
}

static int leftovers_main(void *arg, void **result) {
  (void)result;
  for (int i = 0; i < 3; i++)
    CHECK_RC(aioc_spawn(NULL, leftover, NULL), 0);
  if (arg) CHECK_RC(aioc_spawn(NULL, stubborn, NULL), 0);
  return aioc_sleep(0.1);
}

TEST(test_run_cleans_up) {
  aioc_run_options o = {.loop.virtual_clock = 1, .loop.quiet = 1};
  cleaned_up = 0;
  CHECK_RC(aioc_run_ex(leftovers_main, NULL, NULL, &o), 0);
  CHECK_EQ(cleaned_up, 3);
  /* A task that refuses to finish does not hang aioc_run. */
  cleaned_up = 0;
  o.shutdown_timeout = 2;
  CHECK_RC(aioc_run_ex(leftovers_main, AIOC_INT(1), NULL, &o), 0);
  CHECK_EQ(cleaned_up, 3);
}

/* A task that ignores its cancellation past the grace period is reported
 * once ("ignored its cancellation"), not again when the loop closes. */
typedef struct report_log {
  int n;
  char msgs[4][64];
  aioc_task *tasks[4];
} report_log;

static void log_report(void *arg, aioc_loop *loop, const aioc_report *r) {
  (void)loop;
  report_log *l = arg;
  if (l->n < 4) {
    snprintf(l->msgs[l->n], sizeof l->msgs[0], "%s", r->message);
    l->tasks[l->n] = r->task;
  }
  l->n++;
}

static int ignores_cancel(void *arg, void **result) {
  (void)arg;
  (void)result;
  for (;;)
    if (aioc_sleep(1.0) == -ECANCELED)
      aioc_task_uncancel(aioc_current_task());
  return 0;
}

static aioc_task *ignorer;
static int ignorer_main(void *arg, void **result) {
  (void)result;
  CHECK_RC(aioc_loop_set_report_handler(aioc_get_running_loop(), log_report,
                                        arg),
           0);
  aioc_task_options o = {.name = "deaf"};
  CHECK_RC(aioc_spawn_ex(&ignorer, NULL, ignores_cancel, NULL, &o), 0);
  CHECK_RC(aioc_sleep(0.5), 0);
  return 0;
}

TEST(test_run_reports_ignored_once) {
  report_log l;
  memset(&l, 0, sizeof l);
  aioc_run_options o = {.loop.virtual_clock = 1, .shutdown_timeout = 2.5};
  CHECK_RC(aioc_run_ex(ignorer_main, &l, NULL, &o), 0);
  CHECK_EQ(l.n, 1);
  CHECK_STR(l.msgs[0], "Task ignored its cancellation and did not finish");
  CHECK(l.tasks[0] == ignorer);
  CHECK_STR(aioc_task_name(ignorer), "deaf");
  CHECK(aioc_future_is_cancelled(aioc_task_future(ignorer)));
  aioc_task_unref(ignorer);
  /* The same task on a quiet loop is not reported at all. */
  memset(&l, 0, sizeof l);
  o.loop.quiet = 1;
  CHECK_RC(aioc_run_ex(ignorer_main, &l, NULL, &o), 0);
  CHECK_EQ(l.n, 0);
  aioc_task_unref(ignorer);
}

/* ---- block_on: the bridge from plain code ---- */

static int add_one_later(void *arg, void **result) {
  CHECK_RC(aioc_sleep(0.25), 0);
  *result = AIOC_INT(AIOC_TO_INT(arg) + 1);
  return 0;
}

static int block_on_inside(void *arg, void **result) {
  (void)arg;
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, add_one_later, AIOC_INT(1)), 0);
  void *r;
  CHECK_RC(aioc_block_on(aioc_task_future(t), &r), 0); /* awaits here */
  aioc_task_unref(t);
  *result = r;
  return 0;
}

static void from_callback(void *arg) {
  int *rc = arg;
  aioc_future *f;
  CHECK_RC(aioc_future_new(&f, NULL), 0);
  *rc = aioc_block_on(f, NULL);
  aioc_future_unref(f);
}

TEST(test_block_on) {
  aioc_loop *loop = test_loop(1);
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, add_one_later, AIOC_INT(41)), 0);
  void *r;
  CHECK_RC(aioc_block_on(aioc_task_future(t), &r), 0);
  CHECK_EQ(AIOC_TO_INT(r), 42);
  CHECK_DBL(aioc_loop_time(loop), 0.25, 1e-9);
  CHECK(!aioc_loop_is_running(loop)); /* back in plain code */
  aioc_task_unref(t);
  /* Again, and from inside a task. */
  CHECK_RC(aioc_spawn(&t, block_on_inside, NULL), 0);
  CHECK_RC(aioc_block_on(aioc_task_future(t), &r), 0);
  CHECK_EQ(AIOC_TO_INT(r), 2);
  aioc_task_unref(t);
  /* From a callback of a running loop it must not nest. */
  int rc = 0;
  CHECK_RC(aioc_call_soon(NULL, loop, from_callback, &rc), 0);
  aioc_future *f;
  CHECK_RC(aioc_future_new(&f, loop), 0);
  CHECK_RC(aioc_call_later(NULL, loop, 1, complete_later, f), 0);
  CHECK_RC(aioc_block_on(f, NULL), 0);
  CHECK_RC(rc, AIOC_ERUNNING);
  aioc_future_unref(f);
  CLOSE_CLEAN(loop);
}

/* ---- bad input ---- */

static int self_await(void *arg, void **result) {
  (void)arg;
  (void)result;
  return aioc_task_await(aioc_current_task(), NULL);
}

static int bad_input_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  CHECK_RC(aioc_await(NULL, NULL), -EINVAL);
  CHECK_RC(aioc_task_await(NULL, NULL), -EINVAL);
  CHECK_RC(aioc_task_cancel(NULL, NULL), -EINVAL);
  CHECK_RC(aioc_spawn(NULL, NULL, NULL), -EINVAL);
  CHECK_RC(aioc_sleep(-1), -EINVAL);
  CHECK_RC(aioc_sleep(NAN), -EINVAL);
  aioc_scope *s;
  CHECK_RC(aioc_timeout_enter(&s, -0.5), -EINVAL);
  CHECK_RC(aioc_timeout_enter(&s, NAN), -EINVAL);
  CHECK_RC(aioc_wait_for(NULL, NULL, 1), -EINVAL);
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, self_await, NULL), 0);
  CHECK_RC(aioc_task_await(t, NULL), -EDEADLK);
  aioc_task_unref(t);
  /* A future of another loop. */
  aioc_loop *other;
  CHECK_RC(aioc_loop_new(&other, NULL), 0);
  aioc_future *f;
  CHECK_RC(aioc_future_new(&f, other), 0);
  CHECK_RC(aioc_await(f, NULL), -EINVAL);
  aioc_future_unref(f);
  CHECK_RC(aioc_loop_close(other), 0);
  aioc_loop_free(other);
  CHECK_RC(aioc_run(self_await, NULL, NULL), AIOC_ERUNNING);
  return 0;
}

TEST(test_bad_input) {
  CHECK_RC(aioc_run(bad_input_main, NULL, NULL), 0);
  /* Outside any task. */
  CHECK_RC(aioc_sleep(1), AIOC_ENOTASK);
  CHECK_RC(aioc_yield(), AIOC_ENOTASK);
  aioc_loop *loop = test_loop(1);
  aioc_future *f;
  CHECK_RC(aioc_future_new(&f, loop), 0);
  CHECK_RC(aioc_await(f, NULL), AIOC_ENOTASK);
  aioc_scope *s;
  CHECK_RC(aioc_timeout_enter(&s, 1), AIOC_ENOTASK);
  CHECK_RC(aioc_run(NULL, NULL, NULL), -EINVAL);
  aioc_future_unref(f);
  CLOSE_CLEAN(loop);
  /* A closed loop refuses work. */
  aioc_loop *closed;
  CHECK_RC(aioc_loop_new(&closed, NULL), 0);
  aioc_loop_free(closed);
  /* (the pointer is invalid now: only a fresh loop can be tested) */
  aioc_loop *l2 = test_loop(1);
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, ret_index, NULL), 0);
  aioc_task_unref(t);
  reports rep = {0};
  aioc_loop_set_report_handler(l2, capture, &rep);
  CHECK_RC(aioc_loop_close(l2), 0);
  aioc_loop_free(l2); /* the unstarted task is reported */
  CHECK_EQ(rep.n, 1);
  CHECK_STR(rep.last, "Task was destroyed but it is pending");
}

/* ---- current task, all tasks, names ---- */

static int names_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  CHECK_STR(aioc_task_name(aioc_current_task()), "main");
  aioc_task *t;
  static double one = 1.0;
  CHECK_RC(aioc_spawn(&t, sleep_arg, &one), 0);
  CHECK(strncmp(aioc_task_name(t), "Task-", 5) == 0);
  aioc_task *all[4];
  CHECK_EQ(aioc_all_tasks(NULL, all, 4), 2);
  CHECK_RC(aioc_task_await(t, NULL), 0);
  CHECK_EQ(aioc_all_tasks(NULL, all, 4), 1);
  CHECK(all[0] == aioc_current_task());
  aioc_task_unref(t);
  return 0;
}

TEST(test_names_and_all_tasks) {
  aioc_run_options o = {.loop.virtual_clock = 1};
  CHECK_RC(aioc_run_ex(names_main, NULL, NULL, &o), 0);
  CHECK(aioc_current_task() == NULL);
}

/* ---- per-task stack size ---- */

static int deep(void *arg, void **result) {
  (void)arg;
  volatile char buf[200 * 1024];
  buf[0] = 1;
  buf[sizeof buf - 1] = 2;
  *result = AIOC_INT(buf[0] + buf[sizeof buf - 1]);
  return 0;
}

static int stack_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_task_options o = {.stack_size = 512 * 1024};
  aioc_task *t;
  CHECK_RC(aioc_spawn_ex(&t, NULL, deep, NULL, &o), 0);
  void *r;
  CHECK_RC(aioc_task_await(t, &r), 0);
  CHECK_EQ(AIOC_TO_INT(r), 3);
  aioc_task_unref(t);
  return 0;
}

TEST(test_stack_size) {
  CHECK_RC(aioc_run(stack_main, NULL, NULL), 0);
}

/* ---- tasks started on the stack of the task before them ---- */

/* When a task ends, the next new task of the batch may start on its stack
 * without a switch. Order, callbacks in between, a cancellation before the
 * start, a stack size of its own, an error nobody retrieves and
 * fire-and-forget tasks must all behave as if each task had its own
 * turn. */
static char inplace_log[64];

static int log_tag(void *arg, void **result) {
  strcat(inplace_log, (const char *)arg);
  *result = arg;
  return 0;
}

static int log_fail(void *arg, void **result) {
  (void)result;
  strcat(inplace_log, (const char *)arg);
  return aioc_error(-EIO, "in-place failure");
}

/* Needs its 512 KiB stack: 200 KiB of locals, touched page by page from
 * the top, so that a smaller stack would meet its guard page. */
static int log_deep(void *arg, void **result) {
  volatile char buf[200 * 1024];
  for (long i = (long)sizeof buf - 1; i >= 0; i -= 2048) buf[i] = 1;
  buf[0] = 1;
  strcat(inplace_log, (const char *)arg);
  *result = AIOC_INT(buf[0] + buf[sizeof buf - 1]);
  return 0;
}

static void log_cb(void *arg) { strcat(inplace_log, (const char *)arg); }

static int inplace_main(void *arg, void **result) {
  (void)result;
  reports *rep = arg;
  aioc_loop_set_report_handler(aioc_get_running_loop(), capture, rep);
  inplace_log[0] = 0;
  aioc_task *a, *b, *c, *d, *e;
  aioc_task_options big = {.stack_size = 512 * 1024};
  CHECK_RC(aioc_spawn(&a, log_tag, "a"), 0);
  CHECK_RC(aioc_spawn(NULL, log_tag, "g"), 0);
  CHECK_RC(aioc_spawn(NULL, log_tag, "h"), 0);
  CHECK_RC(aioc_spawn_ex(&b, NULL, log_deep, "b", &big), 0);
  CHECK_RC(aioc_spawn(&c, log_tag, "c"), 0);
  CHECK_RC(aioc_call_soon(NULL, aioc_get_running_loop(), log_cb, "k"), 0);
  CHECK_RC(aioc_spawn(NULL, log_fail, "f"), 0);
  CHECK_RC(aioc_spawn(&d, log_tag, "d"), 0);
  CHECK_RC(aioc_spawn(&e, log_tag, "e"), 0);
  CHECK_EQ(aioc_task_cancel(d, NULL), 1);
  CHECK_EQ(aioc_all_tasks(NULL, NULL, 0), 9);
  CHECK_RC(aioc_sleep(0), 0);
  CHECK_STR(inplace_log, "aghbckfe");
  CHECK_EQ(aioc_all_tasks(NULL, NULL, 0), 1);
  void *r;
  CHECK_RC(aioc_task_await(a, &r), 0);
  CHECK_STR((const char *)r, "a");
  CHECK_RC(aioc_task_await(b, &r), 0);
  CHECK_EQ(AIOC_TO_INT(r), 2);
  CHECK_RC(aioc_task_await(c, &r), 0);
  CHECK_STR((const char *)r, "c");
  CHECK_RC(aioc_task_await(d, &r), -ECANCELED);
  CHECK_RC(aioc_task_await(e, &r), 0);
  CHECK_STR((const char *)r, "e");
  aioc_task *all[5] = {a, b, c, d, e};
  for (int i = 0; i < 5; i++)
    aioc_task_unref(all[i]);
  return 0;
}

TEST(test_started_in_place) {
  reports rep = {0};
  CHECK_RC(aioc_run(inplace_main, &rep, NULL), 0);
  CHECK_EQ(rep.n, 1);
  CHECK_STR(rep.last, "Task exception was never retrieved");
  CHECK_STR(rep.detail, "in-place failure");
}

/* A stack overflow names the task that overflowed, also when it started
 * on the stack of the task before it. */
static int dive(int n) {
  volatile char pad[512];
  pad[0] = (char)n;
  pad[sizeof pad - 1] = (char)n;
  if (n > 1000000) return 0;
  return dive(n + 1) + pad[7];
}

static int overflow_task(void *arg, void **result) {
  (void)arg;
  *result = AIOC_INT(dive(0));
  return 0;
}

static int overflow_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_task_options o = {.name = "second-deep"};
  CHECK_RC(aioc_spawn(NULL, ret_index, NULL), 0);
  aioc_task *t;
  CHECK_RC(aioc_spawn_ex(&t, NULL, overflow_task, NULL, &o), 0);
  IGNORE_RC(aioc_task_await(t, NULL));
  return 0;
}

static int overflow_child(void *arg) {
  (void)arg;
  IGNORE_RC(aioc_run(overflow_main, NULL, NULL));
  return 0;
}

TEST(test_overflow_names_task) {
#if defined(__SANITIZE_ADDRESS__)
  printf("  (skipped under ASan, which reports overflows itself)\n");
  return;
#endif
#if defined(__SANITIZE_THREAD__)
  /* The child inherits thread-locals the parent's loops wrote, which TSan
   * reports as a race across fork(). */
  printf("  (skipped under TSan, which does not follow fork())\n");
  return;
#endif
  if (getenv("AIOC_TEST_VALGRIND") || getenv("AIOC_TEST_QEMU")) {
    printf("  (skipped: guard pages or SIGSEGV not ours here)\n");
    return;
  }
  char buf[1024];
  int status = run_in_child(overflow_child, NULL, buf, sizeof buf);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
  CHECK(strstr(buf, "stack overflow in task 'second-deep'") != NULL);
}

/* ---- a timer that cannot be armed ---- */

/* Fills the loop's timer heap to its capacity, the first timer being a
 * guard 1000 s away that makes the condition true (so a wait that went
 * ahead without its timer ends then instead of hanging). */
static bool guard_fired;
static aioc__waitpoint *guard_wp;
static void guard_cb(void *arg) {
  (void)arg;
  guard_fired = true;
  if (guard_wp) aioc__waitpoint_notify(guard_wp);
}
static void nop_cb(void *arg) { (void)arg; }
static bool guard_cond(void *arg) {
  (void)arg;
  return guard_fired;
}

static void fill_timer_heap(aioc_loop *loop) {
  guard_fired = false;
  CHECK_RC(aioc_call_later(NULL, loop, 1000, guard_cb, NULL), 0);
  for (int i = 1; loop->nheap < loop->capheap; i++)
    CHECK_RC(aioc_call_later(NULL, loop, 1000 + i, nop_cb, NULL), 0);
}

static int waitpoint_nomem_main(void *arg, void **result) {
  (void)result;
  aioc__waitpoint *wp = arg;
  fill_timer_heap(aioc_get_running_loop());
  check_fail_grow = true;
  int rc = aioc__waitpoint_wait(wp, guard_cond, NULL, 5.0, false);
  check_fail_grow = false;
  CHECK_RC(rc, -ENOMEM);
  CHECK_DBL(aioc_time(), 0.0, 1e-9);
  CHECK(!guard_fired);
  /* Without a timeout no timer is needed. */
  check_fail_grow = true;
  CHECK_RC(aioc__waitpoint_wait(wp, guard_cond, NULL, AIOC_FOREVER, false), 0);
  check_fail_grow = false;
  CHECK_DBL(aioc_time(), 1000.0, 1e-9);
  return 0;
}

/* The one waiting place with an optional timeout (Group join, Yielder and
 * merge next use it) fails with -ENOMEM when its timer cannot be armed,
 * in a task and in plain code, instead of waiting without limit. */
TEST(test_waitpoint_timer_nomem) {
  aioc_set_allocator(check_grow_failing_realloc, NULL);
  aioc_loop *loop = test_loop(1);
  aioc__waitpoint wp;
  aioc__waitpoint_init(&wp, loop);
  guard_wp = &wp;
  aioc_task *t;
  CHECK_RC(aioc_spawn_ex(&t, loop, waitpoint_nomem_main, &wp, NULL), 0);
  CHECK_RC(aioc_loop_run_until_complete(loop, aioc_task_future(t)), 0);
  CHECK_RC(aioc_future_result(aioc_task_future(t), NULL), 0);
  aioc_task_unref(t);
  /* Plain code, the loop not running. */
  fill_timer_heap(loop);
  double t0 = aioc_loop_time(loop);
  check_fail_grow = true;
  int rc = aioc__waitpoint_wait(&wp, guard_cond, NULL, 5.0, false);
  check_fail_grow = false;
  CHECK_RC(rc, -ENOMEM);
  CHECK_DBL(aioc_loop_time(loop), t0, 1e-9);
  CHECK(!guard_fired);
  guard_wp = NULL;
  CLOSE_CLEAN(loop);
  aioc_set_allocator(NULL, NULL);
}

/* ---- debug armor: double frees and uses after free ---- */

#if defined(AIOC_DEBUG_ARMOR)
/* An allocator that keeps every freed block (a quarantine), so that the
 * stamp of a freed object stays readable, and that counts the blocks
 * freed twice. */
enum { QMAX = 4096 };
static void *quarantine[QMAX];
static int nquarantine, double_frees;
static void *quarantine_realloc(void *ud, void *p, size_t n) {
  (void)ud;
  if (n) return realloc(p, n);
  if (!p) return NULL;
  for (int i = 0; i < nquarantine; i++)
    if (quarantine[i] == p) {
      double_frees++;
      return NULL;
    }
  if (nquarantine < QMAX)
    quarantine[nquarantine++] = p;
  else
    free(p);
  return NULL;
}

static void quarantine_release(void) {
  for (int i = 0; i < nquarantine; i++) free(quarantine[i]);
  nquarantine = 0;
}

/* stderr, captured in a temporary file. */
static FILE *captured;
static int saved_stderr;
static void stderr_capture(void) {
  fflush(stderr);
  captured = tmpfile();
  saved_stderr = dup(2);
  dup2(fileno(captured), 2);
}
static void stderr_restore(char *buf, size_t cap) {
  fflush(stderr);
  dup2(saved_stderr, 2);
  close(saved_stderr);
  rewind(captured);
  size_t n = fread(buf, 1, cap - 1, captured);
  buf[n] = 0;
  fclose(captured);
}

static int scope_twice(void *arg, void **result) {
  (void)arg;
  (void)result;
  aioc_scope *s;
  CHECK_RC(aioc_timeout_enter(&s, 5.0), 0);
  CHECK_RC(aioc_scope_exit(s), 0);
  aioc_scope_free(s);
  aioc_scope_free(s); /* double free */
  CHECK_RC(aioc_scope_exit(s), -EINVAL);
  CHECK_RC(aioc_scope_reschedule(s, 1.0), -EINVAL);
  return 0;
}
#endif

/* With AIOC_DEBUG_ARMOR (Debug builds), a double free or a use after free
 * of a future, a task, a scope or a loop is reported with the call's name
 * and refused, instead of corrupting memory. */
TEST(test_armor) {
#if !defined(AIOC_DEBUG_ARMOR)
  printf("  (skipped: built without AIOC_DEBUG_ARMOR)\n");
#else
  char buf[2048];
  aioc_set_allocator(quarantine_realloc, NULL);
  double_frees = 0;
  aioc_loop *loop = test_loop(1);
  /* A future. */
  aioc_future *f;
  CHECK_RC(aioc_future_new(&f, loop), 0);
  aioc_future_unref(f);
  stderr_capture();
  aioc_future_unref(f);
  int rc1 = aioc_future_cancel(f, NULL);
  int rc2 = aioc_future_set_result(f, NULL, NULL);
  stderr_restore(buf, sizeof buf);
  CHECK_RC(rc1, -EINVAL);
  CHECK_RC(rc2, -EINVAL);
  CHECK(strstr(buf, "aioc_future_unref: not a live future (freed or "
                    "corrupt)") != NULL);
  CHECK(strstr(buf, "aioc_future_cancel: not a live future") != NULL);
  CHECK(strstr(buf, "aioc_future_set_result: not a live future") != NULL);
  /* A task, and a scope freed twice inside one. */
  aioc_task *t;
  CHECK_RC(aioc_spawn_ex(&t, loop, scope_twice, NULL, NULL), 0);
  stderr_capture();
  int rc3 = aioc_loop_run_until_complete(loop, aioc_task_future(t));
  stderr_restore(buf, sizeof buf);
  CHECK_RC(rc3, 0);
  CHECK(strstr(buf, "aioc_scope_free: not a live scope (freed or corrupt)") !=
        NULL);
  CHECK(strstr(buf, "aioc_scope_exit: not a live scope") != NULL);
  CHECK(strstr(buf, "aioc_scope_reschedule: not a live scope") != NULL);
  CHECK_RC(aioc_future_result(aioc_task_future(t), NULL), 0);
  aioc_task_unref(t); /* the last reference: freed */
  stderr_capture();
  aioc_task_unref(t);
  int rc4 = aioc_task_cancel(t, NULL);
  const char *name = aioc_task_name(t);
  aioc_future *tf = aioc_task_future(t);
  stderr_restore(buf, sizeof buf);
  CHECK_RC(rc4, -EINVAL);
  CHECK(name == NULL);
  CHECK(tf == NULL);
  CHECK(strstr(buf, "aioc_task_unref: not a live task (freed or corrupt)") !=
        NULL);
  CHECK(strstr(buf, "aioc_task_cancel: not a live task") != NULL);
  CLOSE_CLEAN(loop);
  /* A loop freed twice, and used after its free. */
  stderr_capture();
  aioc_loop_free(loop);
  int rc5 = aioc_loop_close(loop);
  int rc6 = aioc_call_soon(NULL, loop, nop_cb, NULL);
  stderr_restore(buf, sizeof buf);
  CHECK_RC(rc5, -EINVAL);
  CHECK_RC(rc6, -EINVAL);
  CHECK(strstr(buf, "aioc_loop_free: not a live loop (freed or corrupt)") !=
        NULL);
  CHECK(strstr(buf, "aioc_loop_close: not a live loop") != NULL);
  CHECK(strstr(buf, "aioc_call_soon: not a live loop") != NULL);
  /* A group, a Yielder and a queue freed twice and used after. */
  loop = test_loop(1);
  aioc_group *g;
  aioc_yielder *y;
  aioc_queue *q;
  CHECK_RC(aioc_group_new(&g, NULL), 0);
  CHECK_RC(aioc_yielder_new(&y, 0, NULL), 0);
  CHECK_RC(aioc_queue_new(&q, 0, NULL), 0);
  aioc_group_free(g);
  aioc_yielder_free(y);
  aioc_queue_free(q);
  stderr_capture();
  aioc_group_free(g);
  int rc7 = aioc_group_join(g, 1.0);
  aioc_yielder_free(y);
  void *item;
  int rc8 = aioc_yielder_next(y, &item, 1.0);
  aioc_queue_free(q);
  int rc9 = aioc_queue_try_put(q, NULL);
  stderr_restore(buf, sizeof buf);
  CHECK_RC(rc7, -EINVAL);
  CHECK_RC(rc8, -EINVAL);
  CHECK_RC(rc9, -EINVAL);
  CHECK(strstr(buf, "aioc_group_free: not a live group") != NULL);
  CHECK(strstr(buf, "aioc_group_join: not a live group") != NULL);
  CHECK(strstr(buf, "aioc_yielder_free: not a live yielder") != NULL);
  CHECK(strstr(buf, "aioc_yielder_next: not a live yielder") != NULL);
  CHECK(strstr(buf, "aioc_queue_free: not a live queue") != NULL);
  CHECK(strstr(buf, "aioc_queue_try_put: not a live queue") != NULL);
  CLOSE_CLEAN(loop);
  CHECK_EQ(double_frees, 0);
  aioc_set_allocator(NULL, NULL);
  quarantine_release();
#endif
}

/* ---- a million tasks alive at once (stock vm.max_map_count) ---- */

static int million_main(void *arg, void **result) {
  long n = (long)AIOC_TO_INT(arg);
  static double one = 1.0;
  aioc_task **ts = malloc((size_t)n * sizeof *ts);
  for (long i = 0; i < n; i++) CHECK_RC(aioc_spawn(&ts[i], sleep_arg, &one), 0);
  CHECK_RC(aioc_sleep(0.5), 0);
  /* All are alive, each parked in its sleep on its own stack. */
  CHECK_EQ(aioc_all_tasks(NULL, NULL, 0), n + 1);
  long ok = 0;
  for (long i = 0; i < n; i++) {
    ok += aioc_task_await(ts[i], NULL) == 0;
    aioc_task_unref(ts[i]);
  }
  free(ts);
  CHECK_DBL(aioc_time(), 1.0, 1e-9);
  *result = AIOC_INT(ok);
  return 0;
}

TEST(test_million_tasks) {
  /* Under sanitizers, valgrind or qemu, a tenth of the size. */
  long n = 1000000;
#if defined(__SANITIZE_ADDRESS__)
  n = 100000;
#endif
#if defined(__SANITIZE_THREAD__)
  n = 4000; /* each stack holds a TSan fiber; TSan allows 8128 */
#endif
  if (getenv("AIOC_TEST_QEMU") || getenv("AIOC_TEST_VALGRIND")) n = 20000;
  aioc_run_options o = {.loop.virtual_clock = 1};
  void *r;
  CHECK_RC(aioc_run_ex(million_main, AIOC_INT(n), &r, &o), 0);
  CHECK_EQ(AIOC_TO_INT(r), n);
}

CHECK_MAIN(240)

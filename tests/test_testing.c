/* The test kit: seeded schedules (the same seed replays the same order,
 * callbacks keep theirs, a planted order-dependent bug is found and
 * replayed), aioc_test_seeds(), aioc_wait_all_tasks_blocked(). */
#include <math.h>
#include <sys/socket.h>

#include "check.h"

/* ---- seeded schedules ------------------------------------------------- */

#define NWORKERS 8

typedef struct order {
  int log[4 * NWORKERS];
  int n;
} order;

typedef struct worker {
  order *o;
  int id;
} worker;

static int order_worker(void *arg, void **res) {
  (void)res;
  worker *w = arg;
  w->o->log[w->o->n++] = w->id;
  if (aioc_yield() != 0) return -1;
  w->o->log[w->o->n++] = 100 + w->id;
  return 0;
}

static int order_main(void *arg, void **res) {
  (void)res;
  order *o = arg;
  worker w[NWORKERS];
  aioc_task *t[NWORKERS];
  for (int i = 0; i < NWORKERS; i++) {
    w[i] = (worker){o, i};
    if (aioc_spawn(&t[i], order_worker, &w[i]) != 0) return -ENOMEM;
  }
  int rc = 0;
  for (int i = 0; i < NWORKERS; i++) {
    if (aioc_task_await(t[i], NULL) != 0) rc = -1;
    aioc_task_unref(t[i]);
  }
  return rc;
}

/* The order in which the workers ran, on a virtual-clock loop (or a real
 * one) with seed. */
static void record(uint64_t seed, int virtual_clock, order *o) {
  memset(o, 0, sizeof *o);
  aioc_loop *loop = NULL;
  aioc_loop_options opts = {.virtual_clock = virtual_clock,
                            .schedule_seed = seed};
  CHECK_RC(aioc_loop_new(&loop, &opts), 0);
  aioc_task *t = NULL;
  CHECK_RC(aioc_spawn_ex(&t, loop, order_main, o, NULL), 0);
  CHECK_RC(aioc_loop_run_until_complete(loop, aioc_task_future(t)), 0);
  CHECK_RC(aioc_future_error(aioc_task_future(t)), 0);
  aioc_task_unref(t);
  CLOSE_CLEAN(loop);
  CHECK_EQ(o->n, 2 * NWORKERS);
}

static bool same(const order *a, const order *b) {
  return a->n == b->n && memcmp(a->log, b->log, sizeof a->log) == 0;
}

static bool plain(const order *o) {
  for (int i = 0; i < NWORKERS; i++)
    if (o->log[i] != i || o->log[NWORKERS + i] != 100 + i) return false;
  return true;
}

/* Every worker logs once per batch: each half of the log is a
 * permutation of its ids. */
static bool permutation(const order *o) {
  for (int half = 0; half < 2; half++) {
    int seen = 0;
    for (int i = 0; i < NWORKERS; i++) {
      int v = o->log[half * NWORKERS + i] - half * 100;
      if (v < 0 || v >= NWORKERS || (seen & (1 << v))) return false;
      seen |= 1 << v;
    }
  }
  return true;
}

/* Seed 0 keeps the plain order; a seed gives the same order every time;
 * other seeds give other orders. */
TEST(test_seed_replays_order) {
  order a, b;
  record(0, 1, &a);
  CHECK(plain(&a));
  record(12345, 1, &a);
  record(12345, 1, &b);
  CHECK(same(&a, &b));
  CHECK(permutation(&a));
  int differ = 0, unplain = 0;
  for (uint64_t s = 1; s <= 16; s++) {
    record(s, 1, &b);
    CHECK(permutation(&b));
    if (!same(&a, &b)) differ++;
    if (!plain(&b)) unplain++;
  }
  /* 8! orders per batch: a repeat among 16 seeds would be a broken
   * generator. */
  CHECK_INT(differ, >=, 15);
  CHECK_INT(unplain, >=, 15);
}

/* The seed needs the virtual clock: a real-clock loop ignores it. */
TEST(test_seed_needs_virtual_clock) {
  order o;
  record(777, 0, &o);
  CHECK(plain(&o));
  aioc_loop *loop = NULL;
  aioc_loop_options opts = {.schedule_seed = 777};
  CHECK_RC(aioc_loop_new(&loop, &opts), 0);
  CHECK_EQ(aioc_loop_schedule_seed(loop), 0);
  aioc_loop_free(loop);
  opts.virtual_clock = 1;
  CHECK_RC(aioc_loop_new(&loop, &opts), 0);
  CHECK_EQ(aioc_loop_schedule_seed(loop), 777);
  aioc_loop_free(loop);
  CHECK_EQ(aioc_loop_schedule_seed(NULL), 0);
  /* The environment variable, when the options give no seed. */
  setenv("AIOC_SCHEDULE_SEED", "99", 1);
  opts.schedule_seed = 0;
  CHECK_RC(aioc_loop_new(&loop, &opts), 0);
  CHECK_EQ(aioc_loop_schedule_seed(loop), 99);
  aioc_loop_free(loop);
  unsetenv("AIOC_SCHEDULE_SEED");
}

/* call_soon callbacks keep their FIFO order and their places among the
 * tasks; only tasks trade places. */
typedef struct mixed {
  int log[64];
  int n;
} mixed;
static mixed g_mixed;

static void mixed_cb(void *arg) {
  g_mixed.log[g_mixed.n++] = AIOC_TO_INT(arg);
}

static int mixed_task(void *arg, void **res) {
  (void)res;
  g_mixed.log[g_mixed.n++] = AIOC_TO_INT(arg);
  return 0;
}

TEST(test_seed_keeps_callback_order) {
  for (uint64_t seed = 1; seed <= 8; seed++) {
    memset(&g_mixed, 0, sizeof g_mixed);
    aioc_loop *loop = NULL;
    aioc_loop_options opts = {.virtual_clock = 1, .schedule_seed = seed};
    CHECK_RC(aioc_loop_new(&loop, &opts), 0);
    /* callbacks 0, 2, 4, ... 18; tasks 101, 103, ... 119 between them */
    for (int i = 0; i < 10; i++) {
      CHECK_RC(aioc_call_soon(NULL, loop, mixed_cb, AIOC_INT(2 * i)), 0);
      CHECK_RC(
          aioc_spawn_ex(NULL, loop, mixed_task, AIOC_INT(101 + 2 * i), NULL),
          0);
    }
    CHECK_EQ(aioc_loop_run_once(loop), 20);
    CHECK_EQ(g_mixed.n, 20);
    int tasks_moved = 0;
    for (int i = 0; i < 20; i++) {
      if (i % 2 == 0) {
        CHECK_EQ(g_mixed.log[i], i); /* callbacks in place, in order */
      } else {
        CHECK(g_mixed.log[i] > 100);
        if (g_mixed.log[i] != 100 + i) tasks_moved++;
      }
    }
    CHECK_INT(tasks_moved, >, 0);
    CLOSE_CLEAN(loop);
  }
}

/* A planted order-dependent bug: the reader assumes the writer, spawned
 * first, has run before it. The plain order hides it. */
static int g_shared;

static int bug_writer(void *arg, void **res) {
  (void)arg;
  (void)res;
  g_shared = 1;
  return 0;
}

static int bug_reader(void *arg, void **res) {
  (void)arg;
  (void)res;
  return g_shared == 1 ? 0 : aioc_error(-EIO, "the writer had not run");
}

static int bug_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  g_shared = 0;
  aioc_task *w, *r;
  if (aioc_spawn(&w, bug_writer, NULL) || aioc_spawn(&r, bug_reader, NULL))
    return -ENOMEM;
  int rc = aioc_task_await(w, NULL);
  int rr = aioc_task_await(r, NULL);
  aioc_task_unref(w);
  aioc_task_unref(r);
  return rc ? rc : rr;
}

/* aioc_test_seeds() with its stderr captured into out (a temporary
 * file in place of fd 2 for the call). */
static int seeds_captured(uint64_t first, unsigned count, uint64_t *failed,
                          char *out, size_t cap) {
  FILE *tmp = tmpfile();
  if (!tmp) return -errno;
  fflush(stderr);
  int saved = dup(2);
  dup2(fileno(tmp), 2);
  int rc = aioc_test_seeds(bug_main, NULL, first, count, failed);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  rewind(tmp);
  size_t n = fread(out, 1, cap - 1, tmp);
  out[n] = 0;
  fclose(tmp);
  return rc;
}

TEST(test_seeds_find_and_replay_bug) {
  /* The plain order passes. */
  CHECK_RC(run_main(bug_main, NULL, NULL), 0);
  /* Some seed of 1..64 fails; the helper stops there and names it. */
  uint64_t failed = 0;
  CHECK_EQ(aioc_test_seeds(bug_main, NULL, 1, 64, &failed), 1);
  CHECK(failed >= 1 && failed <= 64);
  /* Seeds before it passed; it fails again alone (the replay). */
  uint64_t again = 0;
  if (failed > 1) {
    CHECK_EQ(aioc_test_seeds(bug_main, NULL, 1, (unsigned)(failed - 1), &again),
             0);
    CHECK_EQ(again, 0);
  }
  for (int i = 0; i < 3; i++) {
    CHECK_EQ(aioc_test_seeds(bug_main, NULL, failed, 1, &again), 1);
    CHECK_EQ(again, failed);
  }
  /* Some other seed passes. */
  int passing = 0;
  char scratch[256]; /* the failures' lines, not shown */
  for (uint64_t s = 1; s <= 64; s++)
    if (seeds_captured(s, 1, NULL, scratch, sizeof scratch) == 0) passing++;
  CHECK_INT(passing, >, 0);
  CHECK_INT(passing, <, 64);
  /* The message, and the replay through the environment. */
  char out[4096];
  uint64_t got = 0;
  CHECK_EQ(seeds_captured(1, 64, &got, out, sizeof out), 1);
  CHECK_EQ(got, failed);
  char want[256];
  snprintf(want, sizeof want,
           "failed under seed %llu (AIOC_SCHEDULE_SEED=%llu to replay)\n",
           (unsigned long long)failed, (unsigned long long)failed);
  CHECK_STR(out, want);
  char env[32];
  snprintf(env, sizeof env, "%llu", (unsigned long long)failed);
  setenv("AIOC_SCHEDULE_SEED", env, 1);
  /* The variable wins over the range: only its seed runs. */
  CHECK_EQ(seeds_captured(1000000, 10, &got, out, sizeof out), 1);
  unsetenv("AIOC_SCHEDULE_SEED");
  CHECK_EQ(got, failed);
  CHECK_STR(out, want);
}

static int ok_main(void *arg, void **res) {
  (void)res;
  (*(int *)arg)++;
  return aioc_sleep(1);
}

TEST(test_seeds_arguments) {
  uint64_t failed = 7;
  CHECK_RC(aioc_test_seeds(NULL, NULL, 1, 1, &failed), -EINVAL);
  CHECK_EQ(failed, 0);
  CHECK_RC(aioc_test_seeds(ok_main, NULL, 0, 1, NULL), -EINVAL);
  CHECK_RC(aioc_test_seeds(ok_main, NULL, 1, 0, NULL), -EINVAL);
  CHECK_RC(aioc_test_seeds(ok_main, NULL, UINT64_MAX, 2, NULL), -EINVAL);
  int runs = 0;
  CHECK_RC(aioc_test_seeds(ok_main, &runs, UINT64_MAX, 1, &failed), 0);
  CHECK_RC(aioc_test_seeds(ok_main, &runs, 5, 10, &failed), 0);
  CHECK_EQ(runs, 11);
  CHECK_EQ(failed, 0);
}

/* ---- wait_all_tasks_blocked ------------------------------------------- */

typedef struct quiet {
  aioc_event *ev;
  aioc_queue *q;
  int yields;
  int woke;
  bool stop;
  int fd; /* readable end of a socketpair, or -1 */
  int fd_seen;
} quiet;

static int q_event(void *arg, void **res) {
  (void)res;
  quiet *s = arg;
  int rc = aioc_event_wait(s->ev, AIOC_FOREVER);
  s->woke++;
  return rc;
}

static int q_sleep(void *arg, void **res) {
  (void)res;
  (void)arg;
  return aioc_sleep(10);
}

static int q_yielder(void *arg, void **res) {
  (void)res;
  quiet *s = arg;
  for (int i = 0; i < 5; i++) {
    if (aioc_yield() != 0) return -1;
    s->yields++;
  }
  void *it;
  return aioc_queue_get(s->q, &it, AIOC_FOREVER);
}

static int q_main(void *arg, void **res) {
  (void)res;
  quiet *s = arg;
  aioc_task *t[3];
  if (aioc_spawn(&t[0], q_event, s) || aioc_spawn(&t[1], q_sleep, s) ||
      aioc_spawn(&t[2], q_yielder, s))
    return -ENOMEM;
  CHECK_RC(aioc_wait_all_tasks_blocked(AIOC_FOREVER), 0);
  /* Everyone is blocked: the yielder is done yielding, the clock has not
   * moved for the sleeper. */
  CHECK_EQ(s->yields, 5);
  CHECK_EQ(s->woke, 0);
  CHECK_DBL(aioc_time(), 0, 0);
  CHECK_EQ(aioc_task_is_running(t[1]), 1);
  /* Wake one: once it has run, all are blocked again. */
  CHECK_EQ(aioc_event_set(s->ev), 1); /* one waiter woken */
  CHECK_RC(aioc_wait_all_tasks_blocked(AIOC_FOREVER), 0);
  CHECK_EQ(s->woke, 1);
  CHECK_RC(aioc_queue_put(s->q, NULL, AIOC_FOREVER), 0);
  int rc = 0;
  for (int i = 0; i < 3; i++) {
    if (aioc_task_await(t[i], NULL) != 0) rc = -1;
    aioc_task_unref(t[i]);
  }
  CHECK_DBL(aioc_time(), 10, 1e-9);
  return rc;
}

TEST(test_wait_all_blocked) {
  quiet s = {.fd = -1};
  CHECK_RC(aioc_event_new(&s.ev), 0);
  CHECK_RC(aioc_queue_new(&s.q, 0, NULL), 0);
  CHECK_RC(run_main(q_main, &s, NULL), 0);
  aioc_event_free(s.ev);
  aioc_queue_free(s.q);
}

static int q_spinner(void *arg, void **res) {
  (void)res;
  quiet *s = arg;
  while (!s->stop)
    if (aioc_yield() != 0) return -1;
  return 0;
}

/* A task that never blocks: the real-clock timeout ends the wait. */
static int q_timeout_main(void *arg, void **res) {
  (void)res;
  quiet *s = arg;
  aioc_task *sp;
  if (aioc_spawn(&sp, q_spinner, s)) return -ENOMEM;
  CHECK_RC(aioc_wait_all_tasks_blocked(0.05), -ETIMEDOUT);
  s->stop = true;
  CHECK_RC(aioc_task_await(sp, NULL), 0);
  aioc_task_unref(sp);
  CHECK_RC(aioc_wait_all_tasks_blocked(-1), -EINVAL);
  CHECK_RC(aioc_wait_all_tasks_blocked(NAN), -EINVAL);
  return 0;
}

TEST(test_wait_all_blocked_timeout) {
  quiet s = {.fd = -1};
  CHECK_RC(run_main_real(q_timeout_main, &s, NULL), 0);
  CHECK_RC(aioc_wait_all_tasks_blocked(0), AIOC_ENOTASK);
}

/* Cancelled while a spinner keeps it waiting. */
static int q_waiter(void *arg, void **res) {
  (void)arg;
  (void)res;
  return aioc_wait_all_tasks_blocked(AIOC_FOREVER);
}

static int q_cancel_main(void *arg, void **res) {
  (void)res;
  quiet *s = arg;
  aioc_task *sp, *w;
  if (aioc_spawn(&sp, q_spinner, s) || aioc_spawn(&w, q_waiter, s))
    return -ENOMEM;
  for (int i = 0; i < 10; i++)
    CHECK_RC(aioc_yield(), 0);
  CHECK(!aioc_future_is_done(aioc_task_future(w)));
  CHECK_EQ(aioc_task_cancel(w, NULL), 1);
  CHECK_RC(aioc_task_await(w, NULL), -ECANCELED);
  s->stop = true;
  CHECK_RC(aioc_task_await(sp, NULL), 0);
  aioc_task_unref(sp);
  aioc_task_unref(w);
  return 0;
}

TEST(test_wait_all_blocked_cancel) {
  quiet s = {.fd = -1};
  CHECK_RC(run_main(q_cancel_main, &s, NULL), 0);
}

/* Several tasks wait at once: they all return (no one waits for the
 * others' yields). */
static int q_many_main(void *arg, void **res) {
  (void)res;
  (void)arg;
  aioc_task *w[3];
  for (int i = 0; i < 3; i++)
    if (aioc_spawn(&w[i], q_waiter, NULL)) return -ENOMEM;
  CHECK_RC(aioc_wait_all_tasks_blocked(AIOC_FOREVER), 0);
  for (int i = 0; i < 3; i++) {
    CHECK_RC(aioc_task_await(w[i], NULL), 0);
    aioc_task_unref(w[i]);
  }
  return 0;
}

TEST(test_wait_all_blocked_together) {
  CHECK_RC(run_main(q_many_main, NULL, NULL), 0);
}

/* A task waiting on an fd that is ready is not blocked: the wait lets it
 * run first. */
static int q_reader(void *arg, void **res) {
  (void)res;
  quiet *s = arg;
  int rc = aioc_wait_readable(s->fd, AIOC_FOREVER);
  if (rc == 0) s->fd_seen++;
  return rc;
}

static int q_fd_main(void *arg, void **res) {
  (void)res;
  quiet *s = arg;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return -errno;
  s->fd = sv[0];
  aioc_task *r;
  if (aioc_spawn(&r, q_reader, s)) return -ENOMEM;
  CHECK_RC(aioc_wait_all_tasks_blocked(AIOC_FOREVER), 0);
  CHECK_EQ(s->fd_seen, 0);
  CHECK_EQ(write(sv[1], "x", 1), 1);
  CHECK_RC(aioc_wait_all_tasks_blocked(AIOC_FOREVER), 0);
  CHECK_EQ(s->fd_seen, 1);
  CHECK_RC(aioc_task_await(r, NULL), 0);
  aioc_task_unref(r);
  aioc_fd_forget(NULL, sv[0]);
  close(sv[0]);
  close(sv[1]);
  return 0;
}

TEST(test_wait_all_blocked_io) {
  quiet s = {.fd = -1};
  CHECK_RC(run_main(q_fd_main, &s, NULL), 0);
  s = (quiet){.fd = -1};
  CHECK_RC(run_main_real(q_fd_main, &s, NULL), 0);
}

/* ---- the stream pair and its faults ----------------------------------- */

static int pair_delay(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_stream *a, *b;
  CHECK_RC(aioc_test_stream_pair(&a, &b), 0);
  CHECK_RC(aioc_test_stream_delay(a, 2), 0);
  CHECK_RC(aioc_stream_write(a, "hello", 5), 0);
  CHECK_RC(aioc_stream_drain(a, AIOC_FOREVER), 0);
  char buf[16];
  size_t n = 0;
  CHECK_RC(aioc_stream_readexactly(b, buf, 5, &n, 1), -ETIMEDOUT);
  CHECK_DBL(aioc_time(), 1, 1e-9);
  CHECK_RC(aioc_stream_readexactly(b, buf, 5, &n, AIOC_FOREVER), 0);
  CHECK(n == 5 && memcmp(buf, "hello", 5) == 0);
  CHECK_DBL(aioc_time(), 2, 1e-6);
  /* The other direction has no delay; a later write without delay does
   * not overtake a delayed one. */
  CHECK_RC(aioc_stream_write(b, "ok", 2), 0);
  CHECK_RC(aioc_stream_readexactly(a, buf, 2, &n, AIOC_FOREVER), 0);
  CHECK_DBL(aioc_time(), 2, 1e-6);
  CHECK_RC(aioc_stream_write(a, "x", 1), 0);
  CHECK_RC(aioc_test_stream_delay(a, 0), 0);
  CHECK_RC(aioc_stream_write(a, "y", 1), 0);
  CHECK_RC(aioc_stream_readexactly(b, buf, 2, &n, AIOC_FOREVER), 0);
  CHECK(n == 2 && memcmp(buf, "xy", 2) == 0);
  CHECK_DBL(aioc_time(), 4, 1e-6);
  aioc_stream_free(a);
  aioc_stream_free(b);
  return 0;
}

TEST(test_pair_delay) {
  CHECK_RC(run_main(pair_delay, NULL, NULL), 0);
}

static int pair_short(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_stream *a, *b;
  CHECK_RC(aioc_test_stream_pair(&a, &b), 0);
  CHECK_RC(aioc_test_stream_short_reads(b, 3), 0);
  CHECK_RC(aioc_stream_write(a, "abcdefghij\nklmnop", 17), 0);
  char buf[64];
  size_t n = 0;
  CHECK_RC(aioc_stream_read(b, buf, sizeof buf, &n, AIOC_FOREVER), 0);
  CHECK_EQ(n, 3);
  CHECK_RC(aioc_stream_readline(b, buf, sizeof buf, &n, AIOC_FOREVER), 0);
  CHECK(n == 8 && memcmp(buf, "defghij\n", 8) == 0);
  CHECK_RC(aioc_stream_readexactly(b, buf, 6, &n, AIOC_FOREVER), 0);
  CHECK(n == 6 && memcmp(buf, "klmnop", 6) == 0);
  aioc_stream_free(a);
  aioc_stream_free(b);
  return 0;
}

TEST(test_pair_short_reads) {
  CHECK_RC(run_main(pair_short, NULL, NULL), 0);
}

static int reset_reader(void *arg, void **res) {
  (void)res;
  char c;
  size_t n;
  return aioc_stream_read(arg, &c, 1, &n, AIOC_FOREVER);
}

static int pair_reset(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_stream *a, *b;
  CHECK_RC(aioc_test_stream_pair(&a, &b), 0);
  CHECK_RC(aioc_test_stream_reset_after(b, 4), 0);
  CHECK_RC(aioc_stream_write(a, "0123456789", 10), 0);
  char buf[16];
  size_t n = 0;
  CHECK_RC(aioc_stream_readexactly(b, buf, 4, &n, AIOC_FOREVER), 0);
  CHECK(n == 4 && memcmp(buf, "0123", 4) == 0);
  CHECK_RC(aioc_stream_read(b, buf, sizeof buf, &n, AIOC_FOREVER), -ECONNRESET);
  CHECK_RC(aioc_stream_readexactly(b, buf, 2, &n, AIOC_FOREVER), -ECONNRESET);
  /* A reset now wakes a read that waits. */
  aioc_task *r;
  CHECK_RC(aioc_spawn(&r, reset_reader, a), 0);
  CHECK_RC(aioc_wait_all_tasks_blocked(AIOC_FOREVER), 0);
  CHECK(!aioc_future_is_done(aioc_task_future(r)));
  CHECK_RC(aioc_test_stream_reset_after(a, 0), 0);
  CHECK_RC(aioc_task_await(r, NULL), -ECONNRESET);
  aioc_task_unref(r);
  aioc_stream_free(a);
  aioc_stream_free(b);
  return 0;
}

TEST(test_pair_reset) {
  CHECK_RC(run_main(pair_reset, NULL, NULL), 0);
}

static int pair_stall(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_stream *a, *b;
  CHECK_RC(aioc_test_stream_pair(&a, &b), 0);
  CHECK_RC(aioc_test_stream_stall(b, 1), 0);
  CHECK_RC(aioc_stream_write(a, "x\n", 2), 0);
  char buf[16];
  size_t n = 0;
  CHECK_RC(aioc_stream_readline(b, buf, sizeof buf, &n, 5), -ETIMEDOUT);
  CHECK_DBL(aioc_time(), 5, 1e-9);
  /* Released while a read waits: the read goes on. */
  aioc_task *r;
  CHECK_RC(aioc_spawn(&r, reset_reader, b), 0);
  CHECK_RC(aioc_wait_all_tasks_blocked(AIOC_FOREVER), 0);
  CHECK(!aioc_future_is_done(aioc_task_future(r)));
  CHECK_RC(aioc_test_stream_stall(b, 0), 0);
  CHECK_RC(aioc_task_await(r, NULL), 0);
  aioc_task_unref(r);
  CHECK_RC(aioc_stream_readline(b, buf, sizeof buf, &n, 5), 0);
  CHECK(n == 1 && buf[0] == '\n');
  CHECK_DBL(aioc_time(), 5, 1e-9);
  aioc_stream_free(a);
  aioc_stream_free(b);
  return 0;
}

TEST(test_pair_stall) {
  CHECK_RC(run_main(pair_stall, NULL, NULL), 0);
}

/* Lines through an iterator with a timeout per item: a delayed line
 * times out, nothing is lost, the end comes after the close. */
static int pair_iter(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_stream *a, *b;
  CHECK_RC(aioc_test_stream_pair(&a, &b), 0);
  aioc_iter *it;
  CHECK_RC(aioc_stream_lines_iter(&it, b), 0);
  CHECK_RC(aioc_stream_write(a, "one\n", 4), 0);
  CHECK_RC(aioc_test_stream_delay(a, 10), 0);
  CHECK_RC(aioc_stream_write(a, "two\n", 4), 0);
  void *item;
  CHECK_RC(aioc_iter_next(it, &item, 1), 0);
  const aioc_bytes *line = item;
  CHECK(line && line->len == 4 && memcmp(line->data, "one\n", 4) == 0);
  CHECK_RC(aioc_iter_next(it, &item, 5), -ETIMEDOUT);
  CHECK_DBL(aioc_time(), 5, 1e-9);
  CHECK_RC(aioc_iter_next(it, &item, 6), 0);
  line = item;
  CHECK(line && line->len == 4 && memcmp(line->data, "two\n", 4) == 0);
  CHECK_DBL(aioc_time(), 10, 1e-6);
  CHECK_RC(aioc_stream_close(a), 0);
  CHECK_RC(aioc_stream_wait_closed(a, AIOC_FOREVER), 0);
  CHECK_RC(aioc_iter_next(it, &item, 1), AIOC_EXHAUSTED);
  aioc_iter_free(it);
  aioc_stream_free(a);
  return 0;
}

TEST(test_pair_iterator) {
  CHECK_RC(run_main(pair_iter, NULL, NULL), 0);
}

TEST(test_pair_arguments) {
  CHECK_RC(aioc_test_stream_pair(NULL, NULL), -EINVAL);
  CHECK_RC(aioc_test_stream_delay(NULL, 1), -EINVAL);
  CHECK_RC(aioc_test_stream_short_reads(NULL, 1), -EINVAL);
  CHECK_RC(aioc_test_stream_reset_after(NULL, 1), -EINVAL);
  CHECK_RC(aioc_test_stream_stall(NULL, 1), -EINVAL);
}

CHECK_MAIN(120)

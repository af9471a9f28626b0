/* The flight recorder (aioc/trace.h): the events of a known workload in
 * order, with their sites and causes; the ring's wrap and its count of
 * lost events; the JSON export; the trace written on an unobserved error
 * and on a signal. The JSON itself is validated against the trace-event
 * format by check_trace_json.py, on the file `test_trace --write FILE`
 * writes (a CTest fixture). */
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

#include "observe_common.h"

static aioc_loop *ev_loop(int virtual_clock, unsigned events) {
  return loop_with((aioc_loop_options){.virtual_clock = virtual_clock,
                                       .observe = AIOC_OBSERVE_EVENTS,
                                       .trace_events = events});
}

/* All the events of loop (at most 4096). */
static aioc_trace_event evs[4096];
static int get_all(aioc_loop *loop, uint64_t *lost) {
  int n = aioc_loop_trace_get(loop, evs, 4096, lost);
  CHECK_INT(n, >=, 0);
  CHECK_INT(n, <=, 4096);
  return n < 0 ? 0 : n > 4096 ? 4096 : n;
}

/* ---- the workload ----------------------------------------------------- */

typedef struct work {
  aioc_event *ev;
  int spawn_line, wait_line, sleep_line, victim_line;
} work;

static work W;

static int child(void *arg, void **res) {
  (void)arg;
  (void)res;
  W.sleep_line = __LINE__ + 1;
  if (aioc_sleep(1.0) != 0) return -1;
  aioc_event_set(W.ev);
  return 0;
}

static int victim(void *arg, void **res) {
  (void)arg;
  (void)res;
  W.victim_line = __LINE__ + 1;
  return aioc_event_wait(W.ev, AIOC_FOREVER);
}

static int failer(void *arg, void **res) {
  (void)arg;
  (void)res;
  return aioc_error(-EIO, "disk on fire");
}

/* main (1) spawns child (2), waits for an event child sets after a
 * sleep; spawns victim (3), lets it park, cancels it and awaits it;
 * spawns failer (4), which fails with -EIO, and awaits it. */
static int work_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  CHECK_RC(aioc_event_new(&W.ev), 0);
  aioc_task_options o = {.name = "child"};
  W.spawn_line = __LINE__ + 1;
  CHECK_RC(aioc_spawn_ex(NULL, NULL, child, NULL, &o), 0);
  W.wait_line = __LINE__ + 1;
  CHECK_RC(aioc_event_wait(W.ev, AIOC_FOREVER), 0);
  CHECK_RC(aioc_event_clear(W.ev), 0);
  aioc_task *v, *f;
  CHECK_RC(aioc_spawn(&v, victim, NULL), 0);
  CHECK_RC(aioc_yield(), 0);
  CHECK_EQ(aioc_task_cancel(v, NULL), 1);
  CHECK_RC(aioc_task_await(v, NULL), -ECANCELED);
  CHECK_RC(aioc_spawn(&f, failer, NULL), 0);
  CHECK_RC(aioc_task_await(f, NULL), -EIO);
  aioc_task_unref(v);
  aioc_task_unref(f);
  aioc_event_free(W.ev);
  return 0;
}

/* Finds, from *pos on, the first event of kind on task; its index, or -1
 * (a failure). */
static int find(int n, int *pos, aioc_trace_kind kind, uint32_t task,
                int line) {
  for (int i = *pos; i < n; i++) {
    if (evs[i].kind == kind && evs[i].task == task) {
      *pos = i + 1;
      return i;
    }
  }
  fprintf(stderr, "test_trace.c:%d: no %s event of task %u after #%d\n", line,
          aioc_trace_kind_name(kind), (unsigned)task, *pos);
  check_failures++;
  *pos = n;
  return -1;
}
#define FIND(kind, task) find(n, &pos, AIOC_TRACE_##kind, task, __LINE__)

TEST(test_trace_workload) {
  aioc_loop *loop = ev_loop(1, 0);
  CHECK_RC(run_on(loop, work_main, NULL), 0);
  uint64_t lost = 99;
  int n = get_all(loop, &lost);
  CHECK_EQ(lost, 0);
  /* Times never go back; kinds are in range. */
  for (int i = 1; i < n; i++) CHECK(evs[i].time >= evs[i - 1].time);
  for (int i = 0; i < n; i++)
    CHECK(strcmp(aioc_trace_kind_name(evs[i].kind), "?") != 0);
  int pos = 0, i;
  i = FIND(SPAWN, 1);
  if (i >= 0) CHECK_EQ(evs[i].other, 0);
  FIND(RUN, 1);
  i = FIND(SPAWN, 2);
  if (i >= 0) {
    CHECK_EQ(evs[i].other, 1); /* spawned by main */
    CHECK(evs[i].site && evs[i].site->line == W.spawn_line);
    CHECK(evs[i].site && strstr(evs[i].site->file, "test_trace.c"));
  }
  i = FIND(SUSPEND, 1);
  if (i >= 0) {
    CHECK_EQ(evs[i].wait_kind, AIOC_WAIT_KIND_EVENT);
    CHECK(evs[i].site && evs[i].site->line == W.wait_line);
    CHECK_STR(evs[i].site ? evs[i].site->call : NULL, "aioc_event_wait");
  }
  FIND(RUN, 2);
  i = FIND(SUSPEND, 2);
  if (i >= 0) {
    CHECK_EQ(evs[i].wait_kind, AIOC_WAIT_KIND_SLEEP);
    CHECK(evs[i].site && evs[i].site->line == W.sleep_line);
  }
  int ti = FIND(TIMER, 0);
  i = FIND(WAKE, 2);
  if (i >= 0 && ti >= 0) {
    CHECK_EQ(evs[i].cause, AIOC_TRACE_CAUSE_TIMER);
    CHECK(evs[i].timer != NULL && evs[i].timer == evs[ti].timer);
    CHECK_EQ(i, ti + 1); /* the timer's firing woke it */
  }
  FIND(RUN, 2);
  i = FIND(WAKE, 1);
  if (i >= 0) {
    CHECK_EQ(evs[i].cause, AIOC_TRACE_CAUSE_TASK);
    CHECK_EQ(evs[i].other, 2); /* child set the event */
  }
  i = FIND(END, 2);
  if (i >= 0) CHECK_EQ(evs[i].code, 0);
  FIND(RUN, 1);
  FIND(SPAWN, 3);
  FIND(YIELD, 1);
  FIND(RUN, 3);
  i = FIND(SUSPEND, 3);
  if (i >= 0) CHECK(evs[i].site && evs[i].site->line == W.victim_line);
  FIND(RUN, 1);
  i = FIND(CANCEL, 3);
  if (i >= 0) CHECK_EQ(evs[i].other, 1);
  i = FIND(WAKE, 3);
  if (i >= 0) {
    CHECK_EQ(evs[i].cause, AIOC_TRACE_CAUSE_CANCEL);
    CHECK_RC(evs[i].code, -ECANCELED);
  }
  i = FIND(SUSPEND, 1);
  if (i >= 0) CHECK_EQ(evs[i].wait_kind, AIOC_WAIT_KIND_FUTURE);
  FIND(RUN, 3);
  i = FIND(END, 3);
  if (i >= 0) CHECK_RC(evs[i].code, -ECANCELED);
  i = FIND(WAKE, 1);
  if (i >= 0) {
    CHECK_EQ(evs[i].cause, AIOC_TRACE_CAUSE_TASK);
    CHECK_EQ(evs[i].other, 3);
  }
  FIND(SPAWN, 4);
  FIND(RUN, 4);
  i = FIND(ERROR, 4);
  if (i >= 0) CHECK_RC(evs[i].code, -EIO);
  FIND(RUN, 1);
  i = FIND(END, 1);
  if (i >= 0) CHECK_EQ(evs[i].code, 0);
  /* A yield is not a wake-up: no WAKE of main right after its yield. */
  for (int k = 1; k < n; k++)
    if (evs[k - 1].kind == AIOC_TRACE_YIELD)
      CHECK(evs[k].kind != AIOC_TRACE_WAKE || evs[k].task != evs[k - 1].task);
  CLOSE_CLEAN(loop);
}

/* ---- fd readiness ----------------------------------------------------- */

static int fd_reader(void *arg, void **res) {
  (void)res;
  return aioc_wait_readable(AIOC_TO_INT(arg), 10);
}

static int fd_main(void *arg, void **res) {
  (void)res;
  int *p = arg;
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, fd_reader, AIOC_INT(p[0])), 0);
  CHECK_RC(aioc_yield(), 0); /* the reader parks */
  CHECK_EQ(write(p[1], "x", 1), 1);
  CHECK_RC(aioc_task_await(t, NULL), 0);
  aioc_task_unref(t);
  return 0;
}

TEST(test_trace_fd) {
  aioc_loop *loop = ev_loop(0, 0);
  int p[2];
  CHECK_EQ(pipe(p), 0);
  CHECK_RC(run_on(loop, fd_main, p), 0);
  int n = get_all(loop, NULL), pos = 0;
  int s = FIND(SUSPEND, 2);
  if (s >= 0) CHECK_EQ(evs[s].wait_kind, AIOC_WAIT_KIND_FD);
  int f = FIND(FD, 0);
  int w = FIND(WAKE, 2);
  if (f >= 0 && w >= 0) {
    CHECK_EQ(evs[f].fd, p[0]);
    CHECK(evs[f].events & 1); /* EPOLLIN */
    CHECK_EQ(evs[w].cause, AIOC_TRACE_CAUSE_FD);
    CHECK_EQ(evs[w].fd, p[0]);
  }
  CHECK_EQ(aioc_fd_forget(loop, p[0]), 1);
  close(p[0]);
  close(p[1]);
  CLOSE_CLEAN(loop);
}

/* ---- the ring's wrap -------------------------------------------------- */

static int yielder(void *arg, void **res) {
  (void)res;
  for (int i = 0; i < AIOC_TO_INT(arg); i++)
    if (aioc_yield() != 0) return -1;
  return 0;
}

TEST(test_trace_wrap) {
  /* 50 events asked: a ring of 64. */
  aioc_loop *loop = ev_loop(1, 50);
  CHECK_RC(run_on(loop, yielder, AIOC_INT(100)), 0);
  uint64_t lost = 0;
  int n = get_all(loop, &lost);
  CHECK_EQ(n, 64);
  /* spawn, run, 100 yields and runs, the end: 203 events in all. */
  CHECK_EQ(lost + (uint64_t)n, 203);
  /* The newest are kept: the last is main's end. */
  CHECK_EQ(evs[n - 1].kind, AIOC_TRACE_END);
  CHECK_EQ(evs[n - 2].kind, AIOC_TRACE_RUN);
  CHECK_EQ(evs[n - 3].kind, AIOC_TRACE_YIELD);
  /* A short copy: the oldest held. */
  aioc_trace_event few[4];
  CHECK_EQ(aioc_loop_trace_get(loop, few, 4, NULL), 64);
  CHECK(few[0].time == evs[0].time && few[3].kind == evs[3].kind);
  /* Clear: nothing held, nothing lost. */
  CHECK_RC(aioc_loop_trace_clear(loop), 0);
  CHECK_EQ(aioc_loop_trace_get(loop, NULL, 0, &lost), 0);
  CHECK_EQ(lost, 0);
  CHECK_RC(run_on(loop, yielder, AIOC_INT(3)), 0);
  CHECK_EQ(aioc_loop_trace_get(loop, NULL, 0, &lost), 9);
  CHECK_EQ(lost, 0);
  CLOSE_CLEAN(loop);
}

/* ---- arguments, names, off -------------------------------------------- */

TEST(test_trace_off_and_args) {
  aioc_loop *loop = test_loop(1);
  uint64_t lost = 7;
  CHECK_RC(aioc_loop_trace_get(loop, evs, 4, &lost), -ENODATA);
  CHECK_EQ(lost, 0);
  CHECK_RC(aioc_loop_trace_clear(loop), -ENODATA);
  CHECK_RC(aioc_loop_trace_write(loop, stderr), -ENODATA);
  char name[64] = "x";
  CHECK_RC(aioc_loop_trace_save(loop, NULL, name, sizeof name), -ENODATA);
  aioc_signal *h = NULL;
  CHECK_RC(aioc_loop_trace_on_signal(&h, loop, SIGUSR2, NULL), -ENODATA);
  CHECK(h == NULL);
  CLOSE_CLEAN(loop);

  loop = ev_loop(1, 0);
  CHECK_RC(aioc_loop_trace_get(loop, NULL, 1, NULL), -EINVAL);
  CHECK_RC(aioc_loop_trace_write(loop, NULL), -EINVAL);
  CHECK_RC(aioc_loop_trace_on_signal(NULL, loop, SIGUSR2, NULL), -EINVAL);
  /* NULL: the thread's current loop. */
  CHECK_EQ(aioc_loop_trace_get(NULL, NULL, 0, NULL), 0);
  CHECK_RC(aioc_loop_trace_save(loop, "/nonexistent-dir/x.json", name,
                                sizeof name),
           -ENOENT);
  CHECK_STR(name, "/nonexistent-dir/x.json");
  CLOSE_CLEAN(loop);
  CHECK_STR(aioc_trace_kind_name(AIOC_TRACE_WAKE), "wake");
  CHECK_STR(aioc_trace_kind_name(AIOC_TRACE_FD), "fd");
  CHECK_STR(aioc_trace_kind_name((aioc_trace_kind)99), "?");
  CHECK_STR(aioc_trace_cause_name(AIOC_TRACE_CAUSE_CALLBACK), "callback");
  CHECK_STR(aioc_trace_cause_name((aioc_trace_cause)-1), "?");
}

/* ---- JSON ------------------------------------------------------------- */

TEST(test_trace_json) {
  aioc_loop *loop = ev_loop(1, 0);
  CHECK_RC(run_on(loop, work_main, NULL), 0);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  CHECK_RC(aioc_loop_trace_write(loop, f), 0);
  fclose(f);
  CHECK(buf && strncmp(buf, "{", 1) == 0);
  CHECK(buf && strstr(buf, "\"traceEvents\":[") != NULL);
  /* Lanes named, including the name given at spawn. */
  CHECK(buf && strstr(buf, "\"thread_name\"") != NULL);
  CHECK(buf && strstr(buf, "\"args\":{\"name\":\"main\"}") != NULL);
  CHECK(buf && strstr(buf, "\"args\":{\"name\":\"child\"}") != NULL);
  CHECK(buf && strstr(buf, "\"args\":{\"name\":\"Task-3\"}") != NULL);
  CHECK(buf && strstr(buf, "\"args\":{\"name\":\"loop\"}") != NULL);
  CHECK(buf && strstr(buf, "\"ph\":\"X\"") != NULL);
  CHECK(buf && strstr(buf, "\"cause\":\"timer\"") != NULL);
  CHECK(buf && strstr(buf, "\"call\":\"aioc_sleep\"") != NULL);
  CHECK(buf && strstr(buf, "\"error\":\"EIO\"") != NULL);
  free(buf);
  CLOSE_CLEAN(loop);
}

/* ---- an unobserved error writes the trace ----------------------------- */

static char g_detail[2048];
static int g_nrep;

static void keep_report(void *arg, aioc_loop *loop, const aioc_report *r) {
  (void)arg;
  (void)loop;
  if (strcmp(r->message, "Task exception was never retrieved") != 0) return;
  g_nrep++;
  snprintf(g_detail, sizeof g_detail, "%s", r->detail ? r->detail : "");
}

static int lose_error(void *arg, void **res) {
  (void)arg;
  (void)res;
  CHECK_RC(aioc_spawn(NULL, failer, NULL), 0);
  return aioc_sleep(0.1);
}

TEST(test_trace_unobserved_error) {
  char dir[] = "/tmp/aioc-trace-test-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  setenv("AIOC_TRACE_DIR", dir, 1);
  aioc_loop *loop = ev_loop(1, 0);
  aioc_loop_set_report_handler(loop, keep_report, NULL);
  CHECK_RC(run_on(loop, lose_error, NULL), 0);
  CHECK_EQ(g_nrep, 1);
  char want[256];
  snprintf(want, sizeof want, "disk on fire; trace written to %s/aioc-trace-%d-",
           dir, (int)getpid());
  CHECK(strncmp(g_detail, want, strlen(want)) == 0);
  const char *path = strstr(g_detail, dir);
  char line[64] = "";
  FILE *f = path ? fopen(path, "r") : NULL;
  CHECK(f != NULL);
  if (f) {
    CHECK(fgets(line, sizeof line, f) != NULL);
    fclose(f);
    unlink(path);
  }
  CHECK(strncmp(line, "{\"displayTimeUnit\"", 18) == 0);
  rmdir(dir);
  unsetenv("AIOC_TRACE_DIR");
  CLOSE_CLEAN(loop);
}

/* ---- on a signal ------------------------------------------------------ */

static int sig_main(void *arg, void **res) {
  (void)res;
  const char *path = arg;
  aioc_signal *h;
  CHECK_RC(aioc_loop_trace_on_signal(&h, NULL, SIGUSR1, path), 0);
  CHECK_EQ(kill(getpid(), SIGUSR1), 0);
  struct stat st;
  /* Generous: the signal comes through the loop's poller. */
  for (int i = 0; i < 1000 && stat(path, &st) != 0; i++)
    CHECK_RC(aioc_sleep(0.01), 0);
  CHECK_EQ(stat(path, &st), 0);
  aioc_signal_free(h);
  return 0;
}

TEST(test_trace_on_signal) {
  char dir[] = "/tmp/aioc-trace-test-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char path[128];
  snprintf(path, sizeof path, "%s/sig.json", dir);
  aioc_loop *loop = ev_loop(0, 0);
  CHECK_RC(run_on(loop, sig_main, path), 0);
  FILE *f = fopen(path, "r");
  CHECK(f != NULL);
  if (f) {
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    CHECK(strstr(buf, "\"name\":\"main\"") != NULL);
  }
  unlink(path);
  rmdir(dir);
  CLOSE_CLEAN(loop);
}

/* `test_trace --write FILE`: the workload's trace, for the checker. */
int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--write") == 0) {
    aioc_loop *loop = ev_loop(1, 0);
    CHECK_RC(run_on(loop, work_main, NULL), 0);
    CHECK_RC(aioc_loop_trace_save(loop, argv[2], NULL, 0), 0);
    CLOSE_CLEAN(loop);
    return check_failures != 0;
  }
  return check_main(argc, argv, 60);
}

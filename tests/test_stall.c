/* The stall detector and call stacks: a task blocking the loop is
 * reported with its name, how long it blocked and its stack; a task that
 * suspends often is never reported; the stack-taking signal, fired
 * thousands of times while tasks switch as fast as they can, never
 * crashes and never walks outside the stack it found; dumps show the
 * stacks of suspended tasks. Durations are lower bounds only.
 *
 * The program is linked with -rdynamic (tests/CMakeLists.txt), so its
 * non-static functions have names in stacks. Under ThreadSanitizer a
 * signal is delivered late, at the next intercepted call: the stall is
 * still reported with its name and duration, but the stack is taken
 * where the task next called an intercepted function (or not at all), so
 * its content is not checked there. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "check.h"
#include "observe/stall.h"

static double mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((unused)) static bool under_qemu(void) {
  const char *q = getenv("AIOC_TEST_QEMU");
  return q && *q && strcmp(q, "0") != 0;
}

/* ---- reports ---------------------------------------------------------- */

typedef struct got_report {
  char name[64];
  uint32_t id;
  double blocked;
  int ended;
  size_t nframes;
  char frames[AIOC_STACK_FRAMES_MAX][128];
} got_report;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static got_report g_reps[16];
static int g_nreps;
static aioc_loop *g_rep_loop;

/* The stall handler: runs on the detector's thread. */
static void on_stall(void *arg, const aioc_stall_report *r) {
  CHECK(arg == &g_reps);
  pthread_mutex_lock(&g_lock);
  CHECK(r->loop == g_rep_loop);
  if (g_nreps < 16) {
    got_report *g = &g_reps[g_nreps++];
    snprintf(g->name, sizeof g->name, "%s", r->task_name);
    g->id = r->task_id;
    g->blocked = r->blocked;
    g->ended = r->ended;
    g->nframes = r->nframes;
    for (size_t i = 0; i < r->nframes && i < AIOC_STACK_FRAMES_MAX; i++)
      aioc_frame_describe(r->frames[i], g->frames[i], sizeof g->frames[i]);
  }
  pthread_mutex_unlock(&g_lock);
}

static aioc_loop *stall_loop(double threshold, int virtual_clock) {
  aioc_loop *loop = NULL;
  aioc_loop_options o = {.stall_threshold = threshold,
                         .virtual_clock = virtual_clock};
  if (aioc_loop_new(&loop, &o) != 0) exit(2);
  aioc_loop_set_current(loop);
  g_rep_loop = loop;
  g_nreps = 0;
  CHECK_RC(aioc_loop_set_stall_handler(loop, on_stall, &g_reps), 0);
  return loop;
}

/* Blocks the loop for seconds: a busy loop in this very function, so
 * that the signal finds it at the top of the stack (in a libc call,
 * built without frame pointers, the caller of that call would be
 * missed). Under ThreadSanitizer, a short sleep now and then, where it
 * delivers signals. Not static: its name is in the program's dynamic
 * symbols. */
volatile unsigned long g_spin;
__attribute__((noinline)) void stall_block_here(double seconds) {
  double end = mono() + seconds;
  while (mono() < end) {
    for (int i = 0; i < 200000; i++) g_spin++;
#if AIOC_TSAN
    struct timespec ts = {0, 100000};
    nanosleep(&ts, NULL);
#endif
  }
  g_spin++;
}

static int blocker(void *arg, void **res) {
  (void)arg;
  (void)res;
  stall_block_here(0.5);
  return 0;
}

static int stall_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_task *t = NULL;
  aioc_task_options o = {.name = "blocker"};
  CHECK_RC(aioc_spawn_ex(&t, NULL, blocker, NULL, &o), 0);
  CHECK_RC(aioc_task_await(t, NULL), 0);
  aioc_task_unref(t);
  /* Time for the detector to see that the stall ended. */
  CHECK_RC(aioc_sleep(0.2), 0);
  return 0;
}

__attribute__((unused)) static bool has_frame(const got_report *g,
                                             const char *fn) {
  for (size_t i = 0; i < g->nframes; i++)
    if (strstr(g->frames[i], fn)) return true;
  return false;
}

TEST(stall_reported_with_name_duration_and_stack) {
  aioc_loop *loop = stall_loop(0.05, 0);
  aioc_task *t = NULL;
  CHECK_RC(aioc_spawn(&t, stall_main, NULL), 0);
  CHECK_RC(aioc_loop_run_until_complete(loop, aioc_task_future(t)), 0);
  CHECK_RC(aioc_future_result(aioc_task_future(t), NULL), 0);
  aioc_task_unref(t);
  pthread_mutex_lock(&g_lock);
  /* One report while it blocked, one when it ended (a preemption of the
   * loop's thread on a loaded machine could add others: each is looked
   * for by name). */
  got_report *g = NULL, *e = NULL;
  int nblocker = 0;
  for (int i = 0; i < g_nreps; i++) {
    if (strcmp(g_reps[i].name, "blocker") != 0) continue;
    nblocker++;
    if (!g_reps[i].ended && !g) g = &g_reps[i];
    if (g_reps[i].ended && !e) e = &g_reps[i];
  }
  CHECK_EQ(nblocker, 2);
  CHECK(g != NULL);
  CHECK(e != NULL);
  if (g) {
    CHECK(g->blocked >= 0.05);
#if !AIOC_TSAN
    /* The stack: the blocking function (exported: dladdr() names it),
     * the task's function under it (static: named from the program's
     * symbol table) and the library's task entry (hidden: the same). */
    CHECK(g->nframes >= 3);
    if (!has_frame(g, "stall_block_here") || !has_frame(g, "blocker+0x") ||
        !has_frame(g, "task_main+0x")) {
      for (size_t i = 0; i < g->nframes; i++)
        fprintf(stderr, "  frame #%zu %s\n", i, g->frames[i]);
      CHECK(!"the stall's stack names stall_block_here");
    }
#endif
  }
  if (g && e) {
    CHECK(e > g);
    CHECK(e->blocked >= 0.3);
    CHECK_EQ(e->nframes, 0);
    CHECK_EQ(e->id, g->id);
  }
  pthread_mutex_unlock(&g_lock);
  CLOSE_CLEAN(loop);
}

/* A task without a name is reported as Task-N. */
static int anon_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  stall_block_here(0.3);
  return 0;
}

TEST(stall_of_unnamed_task_and_environment) {
  setenv("AIOC_STALL", "0.05", 1);
  aioc_loop *loop = NULL;
  CHECK_RC(aioc_loop_new(&loop, NULL), 0);
  unsetenv("AIOC_STALL");
  g_rep_loop = loop;
  g_nreps = 0;
  CHECK_RC(aioc_loop_set_stall_handler(loop, on_stall, &g_reps), 0);
  aioc_task *t = NULL;
  CHECK_RC(aioc_spawn_ex(&t, loop, anon_main, NULL, NULL), 0);
  CHECK_RC(aioc_loop_run_until_complete(loop, aioc_task_future(t)), 0);
  char want[32];
  snprintf(want, sizeof want, "Task-%u", (unsigned)1);
  aioc_task_unref(t);
  pthread_mutex_lock(&g_lock);
  CHECK(g_nreps >= 1);
  if (g_nreps >= 1) {
    CHECK_STR(g_reps[0].name, want);
    CHECK_EQ(g_reps[0].id, 1);
    CHECK(g_reps[0].blocked >= 0.05);
  }
  pthread_mutex_unlock(&g_lock);
  CLOSE_CLEAN(loop);
}

/* An address inside stall_pc_in_me (not static: named). */
__attribute__((noinline)) static void *caller_pc(void) {
  return __builtin_return_address(0);
}
__attribute__((noinline)) void *stall_pc_in_me(void) {
  void *pc = caller_pc();
  g_spin++;
  return pc;
}

/* The default handler's text, as aioc_stall_report_write() gives it. */
TEST(report_text) {
  void *pc = stall_pc_in_me();
  void *frames[2] = {pc, pc};
  aioc_stall_report r = {.task_id = 7,
                         .task_name = "worker",
                         .blocked = 1.5,
                         .frames = frames,
                         .nframes = 2};
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  CHECK_RC(aioc_stall_report_write(&r, f), 0);
  r.ended = 1;
  r.frames = NULL;
  r.nframes = 0;
  r.blocked = 2;
  CHECK_RC(aioc_stall_report_write(&r, f), 0);
  fclose(f);
  CHECK(strstr(buf, "aioc: task worker (id 7) has blocked the loop for 1.500 "
                    "s without reaching a suspension point\n") != NULL);
  CHECK(strstr(buf, "    #0 ") != NULL);
  CHECK(strstr(buf, "    #1 ") != NULL);
  CHECK(strstr(buf, "stall_pc_in_me+0x") != NULL);
  CHECK(strstr(buf, "aioc: task worker (id 7) no longer blocks the loop: it "
                    "ran 2.000 s without suspending\n") != NULL);
  free(buf);
  CHECK_RC(aioc_stall_report_write(NULL, stderr), -EINVAL);
  CHECK_RC(aioc_stall_report_write(&r, NULL), -EINVAL);
  CHECK_RC(aioc_loop_set_stall_handler(NULL, on_stall, NULL), -EINVAL);
  int sig = aioc_stall_signal();
  CHECK(sig >= SIGRTMIN && sig <= SIGRTMAX);
  char b[8];
  CHECK_RC(aioc_frame_describe(NULL, NULL, 0), -EINVAL);
  CHECK_RC(aioc_frame_describe(pc, b, 0), -EINVAL);
  int n = aioc_frame_describe(pc, b, sizeof b);
  CHECK_EQ(n, 7); /* truncated */
  CHECK_EQ(strlen(b), 7);
}

/* ---- no false reports ------------------------------------------------- */

static int polite(void *arg, void **res) {
  (void)arg;
  (void)res;
  double end = mono() + 1.0;
  while (mono() < end)
    if (aioc_sleep(0.001) != 0) return -1;
  return 0;
}

TEST(task_that_suspends_often_is_never_reported) {
  aioc_loop *loop = stall_loop(0.2, 0);
  aioc_task *t = NULL;
  CHECK_RC(aioc_spawn(&t, polite, NULL), 0);
  CHECK_RC(aioc_loop_run_until_complete(loop, aioc_task_future(t)), 0);
  CHECK_RC(aioc_future_result(aioc_task_future(t), NULL), 0);
  aioc_task_unref(t);
  pthread_mutex_lock(&g_lock);
  CHECK_EQ(g_nreps, 0);
  pthread_mutex_unlock(&g_lock);
  CLOSE_CLEAN(loop);
}

/* ---- the signal, many times, mid-switch ------------------------------- */

#if AIOC_TSAN
#define SAMPLE_WAIT 0.5
#else
#define SAMPLE_WAIT 5.0
#endif

static atomic_bool g_stop;
static atomic_int g_samples, g_walked, g_bad;
static aioc_loop *g_storm_loop;
static int g_storm_n;

static void *storm(void *arg) {
  (void)arg;
  aioc__stall_sample smp;
  for (int i = 0; i < g_storm_n; i++) {
    int got = aioc__stall_sample_now(g_storm_loop, &smp, SAMPLE_WAIT);
    if (got < 0) {
      atomic_fetch_add(&g_bad, 1);
      break;
    }
    if (!got) continue;
    atomic_fetch_add(&g_samples, 1);
    if (smp.n > AIOC_STACK_FRAMES_MAX) atomic_fetch_add(&g_bad, 1);
    if (smp.n >= 2) atomic_fetch_add(&g_walked, 1);
    /* Every frame record followed lies inside the stack walked. */
    for (size_t k = 1; k < smp.n && k < AIOC_STACK_FRAMES_MAX; k++)
      if (smp.fps[k] < smp.lo || smp.fps[k] + 2 * sizeof(void *) > smp.hi)
        atomic_fetch_add(&g_bad, 1);
  }
  atomic_store(&g_stop, true);
  return NULL;
}

static int switcher(void *arg, void **res) {
  (void)arg;
  (void)res;
  for (unsigned i = 0; !atomic_load(&g_stop); i++) {
    if (aioc_yield() != 0) return -1;
#if AIOC_TSAN
    /* An intercepted call now and then, where ThreadSanitizer delivers
     * the signal. */
    if ((i & 15) == 0) {
      struct timespec ts = {0, 1};
      nanosleep(&ts, NULL);
    }
#else
    (void)i;
#endif
  }
  return 0;
}

static int storm_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_task *ts[4];
  for (int i = 0; i < 4; i++)
    CHECK_RC(aioc_spawn(&ts[i], switcher, NULL), 0);
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, storm, NULL), 0);
  int rc = switcher(NULL, NULL);
  for (int i = 0; i < 4; i++) {
    CHECK_RC(aioc_task_await(ts[i], NULL), 0);
    aioc_task_unref(ts[i]);
  }
  pthread_join(th, NULL);
  return rc;
}

TEST(stall_signal_during_switches_never_crashes) {
  /* A threshold never reached: the test fires the signal itself. */
  aioc_loop *loop = stall_loop(1000, 0);
  g_storm_loop = loop;
#if AIOC_TSAN
  g_storm_n = 2000;
#else
  g_storm_n = under_qemu() ? 5000 : 50000;
#endif
  atomic_store(&g_stop, false);
  aioc_task *t = NULL;
  CHECK_RC(aioc_spawn(&t, storm_main, NULL), 0);
  CHECK_RC(aioc_loop_run_until_complete(loop, aioc_task_future(t)), 0);
  CHECK_RC(aioc_future_result(aioc_task_future(t), NULL), 0);
  aioc_task_unref(t);
  CHECK_EQ(atomic_load(&g_bad), 0);
  CHECK(atomic_load(&g_samples) > 0);
#if !AIOC_TSAN
  /* Signals land at once: nearly all came, and most walked frames. */
  CHECK_EQ(atomic_load(&g_samples), g_storm_n);
  CHECK(atomic_load(&g_walked) > 0);
#endif
  fprintf(stderr, "storm: %d signals, %d samples, %d walked\n", g_storm_n,
          atomic_load(&g_samples), atomic_load(&g_walked));
  /* Not running any more: no sample. */
  aioc__stall_sample smp;
  CHECK_RC(aioc__stall_sample_now(loop, &smp, 0.1), -EINVAL);
  CLOSE_CLEAN(loop);
}

/* ---- stacks of suspended tasks --------------------------------------- */

volatile int g_after;
__attribute__((noinline)) int stall_wait_here(void) {
  int rc = aioc_sleep(100);
  g_after++; /* no tail call: this frame stays on the stack */
  return rc;
}

static int waiter(void *arg, void **res) {
  (void)arg;
  (void)res;
  int rc = stall_wait_here();
  g_after++;
  return rc;
}

static int dump_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_task *w = NULL;
  aioc_task_options o = {.name = "waiter"};
  CHECK_RC(aioc_spawn_ex(&w, NULL, waiter, NULL, &o), 0);
  void *fr[AIOC_STACK_FRAMES_MAX];
  /* Not started yet: no stack. */
  CHECK_EQ(aioc_task_get_stack(w, fr, AIOC_STACK_FRAMES_MAX), 0);
  CHECK_RC(aioc_sleep(1), 0);
  int n = aioc_task_get_stack(w, fr, AIOC_STACK_FRAMES_MAX);
  CHECK(n >= 3);
  bool found = false;
  for (int i = 0; i < n; i++) {
    char b[256];
    aioc_frame_describe(fr[i], b, sizeof b);
    if (strstr(b, "stall_wait_here")) found = true;
  }
  CHECK(found);
  /* The caller itself runs: no saved stack. */
  CHECK_EQ(aioc_task_get_stack(aioc_current_task(), fr, 4), 0);
  CHECK_RC(aioc_task_get_stack(NULL, fr, 4), -EINVAL);
  CHECK_RC(aioc_task_get_stack(w, NULL, 4), -EINVAL);
  CHECK_EQ(aioc_task_get_stack(w, NULL, 0), 0);
  CHECK_EQ(aioc_task_get_stack(w, fr, 1), 1);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  CHECK_RC(aioc_loop_dump(NULL, f), 0);
  fclose(f);
  const char *at = strstr(buf, "waiter (id 2): suspended");
  CHECK(at != NULL);
  if (at) {
    const char *st = strstr(at, "    stack:\n        #0 ");
    CHECK(st != NULL);
    CHECK(st && strstr(st, "stall_wait_here") != NULL);
    /* Static and hidden functions too, from the symbol table. */
    CHECK(st && strstr(st, "waiter+0x") != NULL);
    CHECK(st && strstr(st, "task_main+0x") != NULL);
  }
  if (check_failures) fputs(buf, stderr);
  free(buf);
  aioc_task_cancel(w, NULL);
  CHECK_RC(aioc_task_await(w, NULL), -ECANCELED);
  aioc_task_unref(w);
  return 0;
}

TEST(dump_shows_stacks_of_suspended_tasks) {
  aioc_loop *loop = test_loop(1);
  aioc_task *t = NULL;
  aioc_task_options o = {.name = "main"};
  CHECK_RC(aioc_spawn_ex(&t, loop, dump_main, NULL, &o), 0);
  CHECK_RC(aioc_loop_run_until_complete(loop, aioc_task_future(t)), 0);
  CHECK_RC(aioc_future_result(aioc_task_future(t), NULL), 0);
  aioc_task_unref(t);
  CLOSE_CLEAN(loop);
}

CHECK_MAIN(120)

/* Test helpers: typed checks that print both sides, a watchdog, and the
 * closing assertion that every loop closed clean. */
#ifndef AIOC_TEST_CHECK_H
#define AIOC_TEST_CHECK_H

#include <aioc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static int check_failures;
static const char *check_current = "";

#define CHECK_FAIL_(file, line, fmt, ...)                                      \
  do {                                                                         \
    fprintf(stderr, "%s:%d: [%s] " fmt "\n", file, line, check_current,        \
            __VA_ARGS__);                                                      \
    check_failures++;                                                          \
  } while (0)

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) CHECK_FAIL_(__FILE__, __LINE__, "CHECK(%s) failed", #cond);   \
  } while (0)

#define CHECK_INT(a, op, b)                                                    \
  do {                                                                         \
    long long a_ = (long long)(a), b_ = (long long)(b);                        \
    if (!(a_ op b_))                                                           \
      CHECK_FAIL_(__FILE__, __LINE__, "%s %s %s: %lld vs %lld", #a, #op, #b,   \
                  a_, b_);                                                     \
  } while (0)

#define CHECK_EQ(a, b) CHECK_INT(a, ==, b)

/* A code the test does not look at on purpose (the calls marked
 * AIOC_NODISCARD warn otherwise). */
#define IGNORE_RC(x)                                                           \
  do {                                                                         \
    if (x) {                                                                   \
    }                                                                          \
  } while (0)

/* An error code, printed by name on both sides. */
#define CHECK_RC(a, b)                                                         \
  do {                                                                         \
    int a_ = (int)(a), b_ = (int)(b);                                          \
    if (a_ != b_)                                                              \
      CHECK_FAIL_(__FILE__, __LINE__, "%s == %s: %s (%d) vs %s (%d)", #a, #b,  \
                  aioc_err_name(a_), a_, aioc_err_name(b_), b_);               \
  } while (0)

#define CHECK_DBL(a, b, eps)                                                   \
  do {                                                                         \
    double a_ = (a), b_ = (b);                                                 \
    if (!(a_ - b_ <= (eps) && b_ - a_ <= (eps)))                               \
      CHECK_FAIL_(__FILE__, __LINE__, "%s ~= %s: %.9f vs %.9f", #a, #b, a_,    \
                  b_);                                                         \
  } while (0)

#define CHECK_STR(a, b)                                                        \
  do {                                                                         \
    const char *a_ = (a), *b_ = (b);                                           \
    if (!a_ || !b_ || strcmp(a_, b_) != 0)                                     \
      CHECK_FAIL_(__FILE__, __LINE__, "%s == %s: \"%s\" vs \"%s\"", #a, #b,    \
                  a_ ? a_ : "(null)", b_ ? b_ : "(null)");                     \
  } while (0)

static void watchdog_fired(int sig) {
  (void)sig;
  static const char msg[] = "watchdog: test hung, aborting\n";
  ssize_t r = write(2, msg, sizeof msg - 1);
  (void)r;
  _exit(99);
}

/* Fails the program if it runs longer than seconds (a hang). */
static inline void watchdog(unsigned seconds) {
  signal(SIGALRM, watchdog_fired);
  alarm(seconds);
}

/* Runs child(arg) in a forked process whose stdout and stderr go to out
 * (NUL-terminated, at most cap - 1 bytes); the child exits with what child
 * returns, unless it dies first. Returns the wait status, -1 if it could
 * not start. */
static inline int run_in_child(int (*child)(void *), void *arg, char *out,
                               size_t cap) {
  int pipefd[2];
  if (pipe(pipefd) != 0) return -1;
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], 1);
    dup2(pipefd[1], 2);
    struct rlimit rl = {0, 0};
    setrlimit(RLIMIT_CORE, &rl); /* expected crashes leave no core */
    _exit(child(arg));
  }
  close(pipefd[1]);
  size_t n = 0;
  ssize_t r;
  while (n + 1 < cap && (r = read(pipefd[0], out + n, cap - 1 - n)) > 0)
    n += (size_t)r;
  out[n] = 0;
  close(pipefd[0]);
  int status;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return status;
}

typedef void (*test_fn)(void);
#define RUN(fn)                                                                \
  do {                                                                         \
    check_current = #fn;                                                       \
    int before_ = check_failures;                                              \
    fn();                                                                      \
    printf("%s %s\n", check_failures == before_ ? "ok  " : "FAIL", #fn);       \
    fflush(stdout);                                                            \
  } while (0)

static inline int check_report(void) {
  if (check_failures) {
    printf("%d check(s) failed\n", check_failures);
    return 1;
  }
  printf("all checks passed\n");
  return 0;
}

/* A loop for one test: virtual clock unless real is asked for. */
static inline aioc_loop *test_loop(int virtual_clock) {
  aioc_loop *loop = NULL;
  aioc_loop_options o = {.virtual_clock = virtual_clock};
  if (aioc_loop_new(&loop, &o) != 0) {
    fprintf(stderr, "cannot create loop\n");
    exit(2);
  }
  aioc_loop_set_current(loop);
  return loop;
}

/* Every test ends here: nothing may be left on the loop. */
#define CLOSE_CLEAN(loop)                                                      \
  do {                                                                         \
    CHECK_EQ(aioc_all_tasks(loop, NULL, 0), 0);                                \
    CHECK_RC(aioc_loop_close(loop), 0);                                        \
    aioc_loop_free(loop);                                                      \
  } while (0)

/* A log of small integers, to check the order in which things happen
 * (a test with a log of its own defines CHECK_OWN_LOG first). */
#ifndef CHECK_OWN_LOG
static int g_log[256];
static int g_nlog;
static inline void log_reset(void) { g_nlog = 0; }
static inline void log_add(int v) {
  if (g_nlog < 256) g_log[g_nlog++] = v;
}
#define CHECK_LOG(...)                                                         \
  do {                                                                         \
    static const int want_[] = {__VA_ARGS__};                                  \
    int n_ = (int)(sizeof want_ / sizeof want_[0]);                            \
    CHECK_EQ(g_nlog, n_);                                                      \
    for (int i_ = 0; i_ < n_ && i_ < g_nlog; i_++)                             \
      CHECK_EQ(g_log[i_], want_[i_]);                                          \
  } while (0)
#endif

/* Reports the loop makes (unretrieved errors, tasks left pending): the
 * tests run through check_run_main() expect none. */
static int g_reports;
static inline void count_report(void *arg, aioc_loop *loop,
                                const aioc_report *r) {
  (void)arg;
  g_reports++;
  aioc_loop_default_report(loop, r);
}

/* Runs fn(arg) as the task "main" on a fresh loop (virtual clock unless
 * real), checks that the loop closes clean with no report, and returns
 * main's code (its result in *result if not NULL). */
static inline int check_run_main(aioc_fn fn, void *arg, int virtual_clock,
                                 void **result) {
  aioc_loop *loop = test_loop(virtual_clock);
  g_reports = 0;
  aioc_loop_set_report_handler(loop, count_report, NULL);
  aioc_task *t = NULL;
  aioc_task_options o = {.name = "main"};
  CHECK_RC(aioc_spawn_ex(&t, loop, fn, arg, &o), 0);
  CHECK_RC(aioc_loop_run_until_complete(loop, aioc_task_future(t)), 0);
  int rc = aioc_future_result(aioc_task_future(t), result);
  aioc_task_unref(t);
  CLOSE_CLEAN(loop);
  CHECK_EQ(g_reports, 0);
  return rc;
}

#endif

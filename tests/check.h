/* Test helpers: typed checks that print both sides, a watchdog, and the
 * closing assertion that every loop closed clean. */
#ifndef AIOC_TEST_CHECK_H
#define AIOC_TEST_CHECK_H

#include <aioc.h>
#include <signal.h>
#include <stdbool.h>
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

/* ---- test cases ------------------------------------------------------
 *
 * TEST(name) { ... } defines and registers a case. check_main() runs every
 * case in a process of its own (as libuv does), so a crash or a hang in
 * one is reported as that case's failure and the others still run; a
 * case's name on the command line runs only that case, in the process
 * itself (for a debugger). AIOC_TEST_NOFORK=1 runs them all in-process. */
typedef struct check_case {
  const char *name;
  void (*fn)(void);
  int line;
} check_case;

static check_case check_cases[512];
static int check_ncases;

static inline void check_register(const char *name, void (*fn)(void),
                                  int line) {
  if (check_ncases < (int)(sizeof check_cases / sizeof check_cases[0]))
    check_cases[check_ncases++] = (check_case){name, fn, line};
}

#define TEST(name)                                                             \
  static void name(void);                                                      \
  __attribute__((constructor)) static void name##_register_(void) {            \
    check_register(#name, name, __LINE__);                                     \
  }                                                                            \
  static void name(void)

static inline int check_case_cmp(const void *a, const void *b) {
  return ((const check_case *)a)->line - ((const check_case *)b)->line;
}

/* Runs one case here; returns 0 if its checks passed. */
static inline int check_run_case(const check_case *c) {
  check_current = c->name;
  int before = check_failures;
  c->fn();
  fflush(stdout);
  fflush(stderr);
  return check_failures != before;
}

/* Runs the cases (each within seconds), prints one line per case and the
 * count, and returns the program's exit status. */
static inline int check_main(int argc, char **argv, unsigned seconds) {
  qsort(check_cases, (size_t)check_ncases, sizeof check_cases[0],
        check_case_cmp);
  const char *only = argc > 1 && argv[1][0] != '-' ? argv[1] : NULL;
  const char *nf = getenv("AIOC_TEST_NOFORK");
  int nofork = only || (nf && *nf && strcmp(nf, "0") != 0);
  int passed = 0, failed = 0;
  for (int i = 0; i < check_ncases; i++) {
    const check_case *c = &check_cases[i];
    if (only && strcmp(only, c->name) != 0) continue;
    const char *verdict;
    char why[64] = "";
    if (nofork) {
      watchdog(seconds);
      verdict = check_run_case(c) ? "FAIL" : "ok  ";
      alarm(0);
    } else {
      fflush(stdout);
      fflush(stderr);
      pid_t pid = fork();
      if (pid < 0) {
        perror("fork");
        return 2;
      }
      if (pid == 0) {
        watchdog(seconds);
        exit(check_run_case(c)); /* exit(): LeakSanitizer runs */
      }
      int status = 0;
      while (waitpid(pid, &status, 0) < 0) {
      }
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        verdict = "ok  ";
      } else {
        verdict = "FAIL";
        if (WIFSIGNALED(status))
          snprintf(why, sizeof why, " (killed by signal %d)", WTERMSIG(status));
        else if (WEXITSTATUS(status) == 99)
          snprintf(why, sizeof why, " (hung: watchdog after %us)", seconds);
        else if (WEXITSTATUS(status) != 1)
          snprintf(why, sizeof why, " (exit status %d)", WEXITSTATUS(status));
      }
    }
    if (verdict[0] == 'o')
      passed++;
    else
      failed++;
    printf("%s %s%s\n", verdict, c->name, why);
    fflush(stdout);
  }
  if (only && passed + failed == 0) {
    fprintf(stderr, "no test case named %s\n", only);
    return 2;
  }
  printf("%d passed, %d failed\n", passed, failed);
  fflush(stdout);
  return failed != 0;
}

/* A test program whose main only runs its cases. */
#define CHECK_MAIN(seconds)                                                    \
  int main(int argc, char **argv) {                                            \
    return check_main(argc, argv, seconds);                                    \
  }

/* An allocator (aioc_set_allocator) that is libc's realloc, except that
 * it fails the growth of an existing block (the timer heap) while
 * check_fail_grow is set. Install it while no task record is alive
 * (records come from the hook then). */
__attribute__((unused)) static bool check_fail_grow;
static inline void *check_grow_failing_realloc(void *ud, void *p, size_t n) {
  (void)ud;
  if (n == 0) {
    free(p);
    return NULL;
  }
  if (check_fail_grow && p) return NULL;
  return realloc(p, n);
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
 * tests run through run_main() expect none. */
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
static inline int run_main_on(aioc_fn fn, void *arg, int virtual_clock,
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

/* run_main_on() on the virtual clock, and on the real one. */
static inline int run_main(aioc_fn fn, void *arg, void **result) {
  return run_main_on(fn, arg, 1, result);
}
static inline int run_main_real(aioc_fn fn, void *arg, void **result) {
  return run_main_on(fn, arg, 0, result);
}

#endif

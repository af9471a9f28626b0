/* Test helpers: typed checks that print both sides, a watchdog, and the
 * closing assertion that every loop closed clean. */
#ifndef AIOC_TEST_CHECK_H
#define AIOC_TEST_CHECK_H

#include <aioc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
  } while (0)

#endif

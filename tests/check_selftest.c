/* The test harness itself: a case that crashes or fails is reported as
 * such, and the cases around it still run and pass. The program runs its
 * own cases in a child and checks what that child printed. */
#include <signal.h>

#include "check.h"

static int inner;

TEST(case_ok_before) {
  CHECK_EQ(1 + 1, 2);
}

TEST(case_crashes) {
  if (!inner) return;
  signal(SIGSEGV, SIG_DFL);
  raise(SIGSEGV);
}

TEST(case_fails) {
  if (inner) CHECK_EQ(1 + 1, 3);
}

TEST(case_ok_after) {
  CHECK_EQ(2 + 2, 4);
}

static int argc_;
static char **argv_;
static int inner_main(void *arg) {
  (void)arg;
  inner = 1;
  return check_main(argc_, argv_, 30);
}

int main(int argc, char **argv) {
  /* The cases run in a child of this process (forked, not executed again,
   * so it works under an emulator too), whose output is checked here. */
  unsetenv("AIOC_TEST_NOFORK");
  static char *inner_argv[] = {"check_selftest", NULL};
  argc_ = 1;
  argv_ = inner_argv;
  (void)argc, (void)argv;
  static char out[8192];
  int status = run_in_child(inner_main, NULL, out, sizeof out);
  int bad = 0;
  bad |= !strstr(out, "ok   case_ok_before\n");
  bad |= !strstr(out, "FAIL case_crashes (killed by signal");
  bad |= !strstr(out, "FAIL case_fails\n");
  bad |= !strstr(out, "ok   case_ok_after\n");
  bad |= !strstr(out, "2 passed, 2 failed\n");
  bad |= !(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 1);
  if (bad) fputs(out, stdout); /* what the cases printed */
  printf("harness self-test: %s\n", bad ? "FAILED" : "passed");
  return bad;
}

/* The test harness itself: a case that crashes or fails is reported as
 * such, and the cases around it still run and pass. The program runs its
 * own cases in a child (--inner) and checks what that child printed. */
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

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--inner") == 0) {
    inner = 1;
    return check_main(argc, argv, 30);
  }
  unsetenv("AIOC_TEST_NOFORK");
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "'%s' --inner 2>/dev/null", argv[0]);
  FILE *p = popen(cmd, "r");
  if (!p) return 2;
  char out[8192];
  size_t n = fread(out, 1, sizeof out - 1, p);
  out[n] = 0;
  int status = pclose(p);
  int bad = 0;
  bad |= !strstr(out, "ok   case_ok_before\n");
  bad |= !strstr(out, "FAIL case_crashes (killed by signal");
  bad |= !strstr(out, "FAIL case_fails\n");
  bad |= !strstr(out, "ok   case_ok_after\n");
  bad |= !strstr(out, "2 passed, 2 failed\n");
  bad |= !(WIFEXITED(status) && WEXITSTATUS(status) == 1);
  if (bad) fputs(out, stdout); /* what the cases printed */
  printf("harness self-test: %s\n", bad ? "FAILED" : "passed");
  return bad;
}

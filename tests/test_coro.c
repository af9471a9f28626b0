/* Coroutine layer: switching, register and FP-environment preservation,
 * stack pool reuse, guard pages, many stacks. */
#define _GNU_SOURCE
#include <fenv.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "check.h"
#include "coro/coro.h"
#include "loop/loop.h" /* the scavenger's deadline */

static aioc__coro main_ctx, co_ctx;
static int counter;

static void pingpong(void *arg) {
  int n = *(int *)arg;
  aioc__coro_started(&co_ctx);
  for (int i = 0; i < n; i++) {
    counter++;
    aioc__coro_switch(&co_ctx, &main_ctx);
  }
  aioc__coro_exit(&co_ctx, &main_ctx);
}

TEST(test_switch) {
  aioc__stack *st;
  CHECK_RC(aioc__stack_get(aioc__stack_stride(0), &st), 0);
  aioc__coro_init_thread(&main_ctx);
  int n = 1000;
  counter = 0;
  aioc__coro_make(&co_ctx, st, pingpong, &n);
  for (int i = 0; i <= n; i++) {
    CHECK_EQ(counter, i);
    aioc__coro_switch(&main_ctx, &co_ctx);
  }
  CHECK_EQ(counter, n);
  aioc__stack_put(st);
}

/* Callee-saved registers, doubles and the rounding mode survive switches. */
static volatile double dsink;
static void fp_co(void *arg) {
  (void)arg;
  aioc__coro_started(&co_ctx);
  fesetround(FE_UPWARD);
  double acc[8];
  for (int i = 0; i < 8; i++) acc[i] = i * 1.5;
  aioc__coro_switch(&co_ctx, &main_ctx);
  CHECK_EQ(fegetround(), FE_UPWARD);
  for (int i = 0; i < 8; i++) CHECK_DBL(acc[i], i * 1.5, 0);
  aioc__coro_exit(&co_ctx, &main_ctx);
}

TEST(test_fpenv) {
  aioc__stack *st;
  CHECK_RC(aioc__stack_get(aioc__stack_stride(0), &st), 0);
  aioc__coro_init_thread(&main_ctx);
  aioc__coro_make(&co_ctx, st, fp_co, NULL);
  long l[8];
  double d[8];
  for (int i = 0; i < 8; i++) {
    l[i] = i * 7;
    d[i] = i * 0.25;
  }
  aioc__coro_switch(&main_ctx, &co_ctx);
#ifndef AIOC_TEST_NO_FPENV
  /* The coroutine's rounding mode did not leak into this context. */
  CHECK_EQ(fegetround(), FE_TONEAREST);
#endif
  for (int i = 0; i < 8; i++) {
    CHECK_EQ(l[i], i * 7);
    CHECK_DBL(d[i], i * 0.25, 0);
  }
  aioc__coro_switch(&main_ctx, &co_ctx);
  fesetround(FE_TONEAREST);
  aioc__stack_put(st);
}

TEST(test_pool_reuse) {
  size_t stride = aioc__stack_stride(0);
  aioc__stack *a, *b;
  CHECK_RC(aioc__stack_get(stride, &a), 0);
  aioc__stack_put(a);
  CHECK_RC(aioc__stack_get(stride, &b), 0);
  CHECK(a == b); /* LIFO: the hot stack comes back first */
  aioc__stack_put(b);
  CHECK_EQ(aioc__stack_stride(1), 16384);
  CHECK_EQ(aioc__stack_stride(100000), 131072);
  CHECK_EQ(aioc__stack_stride((size_t)1 << 40), (size_t)64 << 20);
  CHECK(aioc__stack_hi(a) - aioc__stack_lo(a) >= (long)(stride - 16384));
}

/* Many stacks alive at once must not cost a VMA each. */
static int count_maps(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  int n = 0, c;
  while ((c = fgetc(f)) != EOF) n += c == '\n';
  fclose(f);
  return n;
}

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = 0;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) v = atol(line + 6);
  fclose(f);
  return v;
}

TEST(test_many_stacks) {
  enum { N = 40000 }; /* more than mprotect guards could give */
  static aioc__stack *sts[N];
  size_t stride = aioc__stack_stride(16384);
  int before = count_maps();
  int got = 0;
  for (int i = 0; i < N; i++) {
    if (aioc__stack_get(stride, &sts[i]) != 0) break;
    got++;
  }
  int after = count_maps();
  if (aioc__stack_guard_mode() == 0 /* madvise */) {
    CHECK_EQ(got, N);
    CHECK_INT(after - before, <, 100);
  } else {
    printf("  (guard mode %d: %d stacks, %d maps)\n",
           (int)aioc__stack_guard_mode(), got, after - before);
  }
  for (int i = 0; i < got; i++) aioc__stack_put(sts[i]);
  /* Trimming gives the pages back: every page of a free slot, header
   * included, then the slots are reused with fresh headers. */
  long before_trim = rss_kb();
  aioc__stack_trim(16);
  long after_trim = rss_kb();
  CHECK_INT(before_trim - after_trim, >=, (long)(got - 16) * 4 * 9 / 10);
  for (int i = 0; i < 1000; i++) CHECK_RC(aioc__stack_get(stride, &sts[i]), 0);
  for (int i = 0; i < 1000; i++) {
    CHECK(aioc__stack_hi(sts[i]) - aioc__stack_lo(sts[i]) > 4096);
    aioc__stack_lo(sts[i])[0] = 1; /* usable */
    aioc__stack_put(sts[i]);
  }
  aioc__stack_trim(16);
}

/* After a burst, free stacks give their pages back on a timer (the
 * scavenger): 20,000 tasks each touch some stack and finish; once the
 * loop's clock has run past the scavenger's period, only a working set
 * (here the floor of 64 stacks) keeps its pages. Virtual time is not
 * moved by it. */
#define SCAV_STRIDE ((size_t)32 << 10) /* a size no other test uses */

static int touch_stack(void *arg, void **result) {
  (void)result;
  volatile char buf[6 * 1024];
  for (size_t i = 0; i < sizeof buf; i += 512) buf[i] = (char)i;
  return aioc_sleep(*(double *)arg) + buf[1024] - buf[1024];
}

static int scavenge_main(void *arg, void **result) {
  (void)result;
  long n = (long)AIOC_TO_INT(arg);
  static double one = 1.0;
  aioc_loop *loop = aioc_get_running_loop();
  aioc_task_options o = {.stack_size = SCAV_STRIDE};
  aioc_task **ts = malloc((size_t)n * sizeof *ts);
  for (long i = 0; i < n; i++)
    CHECK_RC(aioc_spawn_ex(&ts[i], NULL, touch_stack, &one, &o), 0);
  for (long i = 0; i < n; i++) {
    CHECK_RC(aioc_task_await(ts[i], NULL), 0);
    aioc_task_unref(ts[i]);
  }
  free(ts);
  CHECK_DBL(aioc_time(), 1.0, 1e-9);
  /* Every stack is free now, its pages still resident. */
  size_t burst = aioc__stack_resident_pages(SCAV_STRIDE);
  CHECK_INT(burst, >=, (size_t)n * 2);
  CHECK_RC(aioc_yield(), 0);
  CHECK_INT(aioc__stack_resident_pages(SCAV_STRIDE), >=, burst);
  /* A pass per period (sooner while one has more than it may do). */
  int sleeps = 0;
  do {
    CHECK_RC(aioc_sleep(1.0), 0);
    sleeps++;
  } while (loop->scav_when != AIOC__NEVER && sleeps < 20);
  CHECK_DBL(aioc_time(), 1.0 + sleeps, 1e-9); /* the clock is ours */
  CHECK_INT(sleeps, <=, 5);
  size_t after = aioc__stack_resident_pages(SCAV_STRIDE);
  size_t per_stack = burst / (size_t)n;
  printf("  %ld stacks: %zu resident pages after the burst, %zu after %d "
         "s\n",
         n, burst, after, sleeps);
  CHECK_INT(after, <=, (AIOC__STACK_KEEP + 1) * (per_stack + 1));
  CHECK(loop->scav_when == AIOC__NEVER); /* disarmed: nothing left to do */
  /* The stacks kept and the ones given back both work again. */
  ts = malloc((size_t)n * sizeof *ts);
  for (long i = 0; i < n; i++)
    CHECK_RC(aioc_spawn_ex(&ts[i], NULL, touch_stack, &one, &o), 0);
  for (long i = 0; i < n; i++) {
    CHECK_RC(aioc_task_await(ts[i], NULL), 0);
    aioc_task_unref(ts[i]);
  }
  free(ts);
  return 0;
}

TEST(test_scavenger) {
  long n = 20000;
#if defined(__SANITIZE_THREAD__)
  n = 2000; /* each stack holds a TSan fiber; TSan allows 8128 */
#endif
  if (getenv("AIOC_TEST_QEMU") || getenv("AIOC_TEST_VALGRIND")) n = 2000;
  CHECK_RC(run_main(scavenge_main, AIOC_INT(n), NULL), 0);
}

/* Touching the guard page kills the process with a clear report. */
static void overflow_co(void *arg) {
  (void)arg;
  aioc__coro_started(&co_ctx);
  volatile char *p = aioc__stack_lo(co_ctx.stack);
  p[-1] = 1; /* first byte below the usable stack: the guard */
  aioc__coro_exit(&co_ctx, &main_ctx);
}

static int overflow_child(void *arg) {
  (void)arg;
  aioc__overflow_install();
  aioc__stack *st;
  aioc__stack_get(aioc__stack_stride(0), &st);
  aioc__stack_set_owner(st, "deep-recursion", 7);
  aioc__coro_init_thread(&main_ctx);
  aioc__coro_make(&co_ctx, st, overflow_co, NULL);
  aioc__coro_switch(&main_ctx, &co_ctx);
  return 0;
}

TEST(test_overflow_report) {
#if defined(__SANITIZE_ADDRESS__)
  printf("  (skipped under ASan, which reports overflows itself)\n");
  return;
#endif
  if (aioc__stack_guard_mode() == 2) return;
  if (getenv("AIOC_TEST_VALGRIND")) {
    printf("  (skipped under valgrind, which owns SIGSEGV)\n");
    return;
  }
  if (getenv("AIOC_TEST_QEMU")) {
    /* qemu-user accepts MADV_GUARD_INSTALL without installing a guard. */
    printf("  (skipped under qemu-user: guard pages are not emulated)\n");
    return;
  }
  char buf[1024];
  int status = run_in_child(overflow_child, NULL, buf, sizeof buf);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
  CHECK(strstr(buf, "stack overflow in task 'deep-recursion'") != NULL);
  CHECK(strstr(buf, "bytes") != NULL);
}

/* Older kernels (no MADV_GUARD_INSTALL) get mprotect guards within a
 * budget of map entries; past it, a clear error, or unguarded stacks when
 * the user allowed them. Run in a child with the mode forced, since the
 * mode is probed once per process. */
static int mprotect_child(void) {
  if (aioc__stack_guard_mode() != AIOC_GUARD_MPROTECT) return 10;
  static aioc__stack *sts[400];
  int got = 0, rc = 0;
  for (int i = 0; i < 400; i++) {
    rc = aioc__stack_get(aioc__stack_stride(16384), &sts[i]);
    if (rc != 0) break;
    got++;
  }
  const char *unguarded = getenv("AIOC_STACK_UNGUARDED");
  printf("child: %d stacks, rc %d\n", got, rc);
  if (unguarded && *unguarded == '1') return got == 400 && rc == 0 ? 0 : 11;
  /* The budget (100) bounds the guarded stacks; then AIOC_ESTACK. */
  return got == 100 && rc == AIOC_ESTACK ? 0 : 12;
}

static const char *self_path = "/proc/self/exe";

static int exec_mprotect_child(void *unguarded) {
  setenv("AIOC_STACK_GUARD", "mprotect", 1);
  setenv("AIOC_STACK_MAP_BUDGET", "100", 1);
  if (unguarded) setenv("AIOC_STACK_UNGUARDED", unguarded, 1);
  execl(self_path, "test_coro", "--mprotect-child", (char *)NULL);
  return 127;
}

static int run_child(const char *unguarded, char *out, size_t cap) {
  int status = run_in_child(exec_mprotect_child, (void *)unguarded, out, cap);
  return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(test_mprotect_fallback) {
  if (getenv("AIOC_TEST_QEMU")) {
    printf("  (skipped under qemu-user)\n");
    return;
  }
  char out[2048];
  CHECK_EQ(run_child(NULL, out, sizeof out), 0);
  CHECK(strstr(out, "raise vm.max_map_count") != NULL);
  CHECK_EQ(run_child("1", out, sizeof out), 0);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--mprotect-child") == 0)
    return mprotect_child();
  if (strchr(argv[0], '/')) self_path = argv[0]; /* not valgrind's binary */
  printf("switch backend: %s, guard mode %d\n", aioc__coro_backend(),
         (int)aioc__stack_guard_mode());
  return check_main(argc, argv, 120);
}

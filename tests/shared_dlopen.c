/* The shared library loads with dlopen() (its thread-locals must not need
 * static TLS room) and runs a task through its exported API only. */
#include <dlfcn.h>
#include <stdio.h>

typedef int (*fn_t)(void *, void **);
typedef int (*run_t)(fn_t, void *, void **);
typedef int (*sleep_t)(double);

static sleep_t sleep_fn;

static int main_task(void *arg, void **result) {
  int rc = sleep_fn(0);
  *result = arg;
  return rc;
}

int main(void) {
  void *h = dlopen(AIOC_SHARED_PATH, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    printf("dlopen failed: %s\n", dlerror());
    return 1;
  }
  run_t run = (run_t)dlsym(h, "aioc_run");
  sleep_fn = (sleep_t)dlsym(h, "aioc_sleep");
  if (!run || !sleep_fn) {
    printf("missing symbols\n");
    return 1;
  }
  void *r = NULL;
  int rc = run(main_task, (void *)42, &r);
  printf("aioc_run -> %d, result %ld\n", rc, (long)r);
  int ok = rc == 0 && (long)r == 42;
  printf(ok ? "1 passed, 0 failed\n" : "0 passed, 1 failed\n");
  return ok ? 0 : 1;
}

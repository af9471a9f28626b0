/* A program built against aioc by a consumer project: runs two tasks and
 * gathers them, resolves a numeric address, checks the version it was built for and runs with, and
 * whether aioc came from the shared library or was linked in. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <aioc.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

static int twice(void *arg, void **result) {
  int rc = aioc_sleep(0.001);
  if (rc < 0) return rc;
  *result = AIOC_INT(2 * AIOC_TO_INT(arg));
  return 0;
}

static int main_task(void *arg, void **result) {
  (void)arg;
  aioc_task *t[2];
  aioc_future *f[2];
  void *r[2];
  for (int i = 0; i < 2; i++) {
    int rc = aioc_spawn(&t[i], twice, AIOC_INT(i + 20));
    if (rc < 0) return rc;
    f[i] = aioc_task_future(t[i]);
  }
  int rc = aioc_gather(f, 2, r, NULL, 0);
  for (int i = 0; i < 2; i++) aioc_task_unref(t[i]);
  if (rc == 0) *result = AIOC_INT(AIOC_TO_INT(r[0]) + AIOC_TO_INT(r[1]));
  /* The DNS layer links c-ares: the static library brings it along. */
  struct addrinfo *ai;
  if (rc == 0 && (rc = aioc_getaddrinfo(&ai, "127.0.0.1", "80", NULL, 1)) == 0)
    aioc_freeaddrinfo(ai);
  return rc;
}

int main(void) {
  int failures = 0;
  void *r = NULL;
  int rc = aioc_run(main_task, NULL, &r);
  printf("aioc_run -> %d, result %ld\n", rc, (long)AIOC_TO_INT(r));
  if (rc != 0 || AIOC_TO_INT(r) != 82) failures++;

  char built[32];
  snprintf(built, sizeof built, "%d.%d.%d", AIOC_VERSION_MAJOR,
           AIOC_VERSION_MINOR, AIOC_VERSION_PATCH);
  printf("version: headers %s, library %s, package '%s'\n", built,
         aioc_version_string(), CONSUMER_VERSION);
  if (strcmp(built, aioc_version_string()) != 0) failures++;
  if (CONSUMER_VERSION[0] && strcmp(built, CONSUMER_VERSION) != 0) failures++;

  Dl_info info;
  const char *from = dladdr((void *)aioc_run, &info) && info.dli_fname
                         ? info.dli_fname : "?";
  int shared = strstr(from, "libaioc.so") != NULL;
  printf("aioc_run comes from %s (%s)\n", from, shared ? "shared" : "static");
  if (shared != CONSUMER_SHARED) failures++;

  printf(failures ? "FAILED (%d)\n" : "passed\n", failures);
  return failures != 0;
}

/* A plugin that carries its own copy of the static library: a host loads
 * it with dlopen() and calls plugin_run(), which runs a task on a loop of
 * its own. */
#include <aioc.h>

static int plugin_task(void *arg, void **result) {
  int rc = aioc_sleep(0);
  if (rc < 0) return rc;
  *result = arg;
  return 0;
}

__attribute__((visibility("default"))) int plugin_run(long value, long *out) {
  void *r = NULL;
  int rc = aioc_run(plugin_task, AIOC_INT(value), &r);
  *out = (long)AIOC_TO_INT(r);
  return rc;
}

/* Loads, with dlopen(), a module linked with the static library built
 * without initial-exec TLS (AIOC_STATIC_TLS_IE=OFF) and runs a task in it.
 *
 *   host NOIE_MODULE [IE_MODULE]
 *
 * NOIE_MODULE must load, must not ask for static TLS (DF_STATIC_TLS, which
 * is what makes dlopen() fail with "cannot allocate memory in static TLS
 * block" once the surplus is used up) and must run its task. IE_MODULE, the
 * same module linked with the initial-exec static library, is the control:
 * it must ask for static TLS (or fail to load for want of it), which shows
 * the check on NOIE_MODULE can tell the two apart. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <string.h>

typedef int (*plugin_run_fn)(long value, long *out);

static int failures;

static void check(int ok, const char *what) {
  printf("%s: %s\n", ok ? "ok" : "FAILED", what);
  if (!ok) failures++;
}

/* Whether a loaded object's dynamic section carries DF_STATIC_TLS. */
static int wants_static_tls(void *h) {
  struct link_map *lm = NULL;
  if (dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0 || !lm) return -1;
  for (const ElfW(Dyn) *d = lm->l_ld; d->d_tag != DT_NULL; d++)
    if (d->d_tag == DT_FLAGS) return (d->d_un.d_val & DF_STATIC_TLS) != 0;
  return 0;
}

static void test_noie(const char *path) {
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) printf("dlopen: %s\n", dlerror());
  check(h != NULL, "module without initial-exec TLS loads with dlopen()");
  if (!h) return;
  check(wants_static_tls(h) == 0, "it does not ask for static TLS");
  plugin_run_fn run = (plugin_run_fn)dlsym(h, "plugin_run");
  check(run != NULL, "plugin_run is exported");
  if (run) {
    long out = 0;
    int rc = run(42, &out);
    printf("plugin_run -> %d, result %ld\n", rc, out);
    check(rc == 0 && out == 42, "its task runs (aioc_run inside the module)");
    out = 0;
    rc = run(7, &out);
    check(rc == 0 && out == 7, "and runs again on a new loop");
  }
  dlclose(h);
}

static void test_ie_control(const char *path) {
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *err = dlerror();
    printf("dlopen: %s\n", err);
    check(strstr(err, "static TLS") != NULL,
          "control: the initial-exec module fails for want of static TLS");
    return;
  }
  check(wants_static_tls(h) == 1,
        "control: the initial-exec module asks for static TLS");
  dlclose(h);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    printf("usage: %s NOIE_MODULE [IE_MODULE]\n", argv[0]);
    return 2;
  }
  test_noie(argv[1]);
  if (argc > 2) test_ie_control(argv[2]);
  printf(failures ? "FAILED (%d)\n" : "passed\n", failures);
  return failures != 0;
}

/* aioc demo: a tour of the examples of "AsyncIO for the Working Python
 * Developer" (seed 002), ported to C.
 *
 * The examples are not repeated here: the demo is built from the seed ports
 * themselves (tests/seeds/seed_002_*.c, compiled with SEED_NO_MAIN), and
 * runs each one after a line saying what it shows. Everything runs on the
 * virtual clock, so the timings are the article's and the tour is instant.
 * The only output that varies from run to run is 1c's asynchronous order,
 * which is random, as in the article. */
#include <stdio.h>

#include "seed_002_examples.h"

#define SEED_002_ENTRY(name) &name,
static const seed_example *const tour[] = {SEED_002_EXAMPLES(SEED_002_ENTRY)};
#undef SEED_002_ENTRY

int main(void) {
  size_t n = sizeof tour / sizeof *tour;
  int failed = 0;
  printf("aioc %s demo: \"AsyncIO for the Working Python Developer\", "
         "%zu examples in C\n",
         aioc_version_string(), n);
  printf("(virtual clock: the article's timings, exact and instant)\n");
  for (size_t i = 0; i < n; i++) {
    printf("\n== %s: %s\n", tour[i]->name, tour[i]->about);
    fflush(stdout);
    int rc = tour[i]->run();
    if (rc != 0) {
      printf("!! %s failed: %s (%s)\n", tour[i]->name, aioc_err_name(rc),
             aioc_strerror(rc));
      failed++;
    }
  }
  fflush(stdout);
  return failed ? 1 : 0;
}

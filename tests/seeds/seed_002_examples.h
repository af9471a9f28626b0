/* The examples of seed 002, "AsyncIO for the Working Python Developer"
 * (Yeray Diaz), ported to aioc: one program per example,
 * tests/seeds/seed_002_*.c. Each file defines its seed_example below and,
 * unless SEED_NO_MAIN is defined, a main() whose --check mode compares the
 * output with the article's. The demo (examples/demo.c) compiles the same
 * files with SEED_NO_MAIN and tours SEED_002_EXAMPLES in order.
 *
 * 1e is the article's "same example using threads" (its repository's
 * variant of 1b with the blocking calls in a thread pool). The HTTP
 * examples, 1d to 4a, make real requests (aioc_http_*(), libcurl) to a
 * local server that stands in for the article's services
 * (seed_002_common.h), on the real clock. */
#ifndef AIOC_SEED_002_EXAMPLES_H
#define AIOC_SEED_002_EXAMPLES_H

#include "seed_util.h"

/* The tour, in the article's order. */
#define SEED_002_EXAMPLES(X)                                                   \
  X(seed_002_1_sync_async)                                                     \
  X(seed_002_1b_cooperative)                                                   \
  X(seed_002_1e_threads)                                                       \
  X(seed_002_1c_determinism)                                                   \
  X(seed_002_1d_fetch_from_server)                                             \
  X(seed_002_2a_as_completed)                                                  \
  X(seed_002_2b_first_completed_pending)                                       \
  X(seed_002_2c_first_completed_clean)                                         \
  X(seed_002_3a_exception_caught)                                              \
  X(seed_002_3b_exception_in_result)                                           \
  X(seed_002_3c_exception_ignored)                                             \
  X(seed_002_4a_timeout)

#define SEED_002_DECLARE(name) extern const seed_example name;
SEED_002_EXAMPLES(SEED_002_DECLARE)
#undef SEED_002_DECLARE

#endif /* AIOC_SEED_002_EXAMPLES_H */

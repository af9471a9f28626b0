/* The examples of seed 001, "Async Python. Deep Dive" (iterators and
 * generators), ported to aioc: one program per example,
 * tests/seeds/seed_001_*.c. Each file defines its seed_example below and,
 * unless SEED_NO_MAIN is defined, a main() whose --check mode compares the
 * output with the expected lines. The demo (examples/demo.c) compiles the
 * same files with SEED_NO_MAIN and tours SEED_001_EXAMPLES in order.
 *
 * These examples are synchronous in the article, and stay so: they run
 * from plain code (main()), without creating a loop; the generator of
 * example 3 runs on the loop the library makes for the thread on first
 * use, which each example closes at its end. The file they read is a
 * pyproject.toml that each example writes itself (mkstemp), see
 * seed_001_common.h. */
#ifndef AIOC_SEED_001_EXAMPLES_H
#define AIOC_SEED_001_EXAMPLES_H

#include "seed_util.h"

/* The tour, in the article's order. */
#define SEED_001_EXAMPLES(X)                                                   \
  X(seed_001_1_efficient_file)                                                 \
  X(seed_001_2_next_until_stop)                                                \
  X(seed_001_3_file_generator)                                                 \
  X(seed_001_4_my_generator)

#define SEED_001_DECLARE(name) extern const seed_example name;
SEED_001_EXAMPLES(SEED_001_DECLARE)
#undef SEED_001_DECLARE

#endif /* AIOC_SEED_001_EXAMPLES_H */

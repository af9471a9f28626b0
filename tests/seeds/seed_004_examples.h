/* The examples of seed 004, the README of aioutils ("Python3 Asyncio
 * Utils": Group, Pool, Yielder, OrderedYielder), ported to aioc: one
 * program per example, tests/seeds/seed_004_*.c. Each file defines its
 * seed_example below and, unless SEED_NO_MAIN is defined, a main() whose
 * --check mode compares the output with the expected lines. The demo
 * (examples/demo.c) compiles the same files with SEED_NO_MAIN and tours
 * SEED_004_EXAMPLES in order.
 *
 * The point of the seed is that plain synchronous code drives async work:
 * the ports run from plain code (main(), no aioc_run), on a virtual-clock
 * loop made current for the thread (seed_plain_begin()), so the timings
 * are exact and instant. The README's random sleeps are a fixed table
 * (seed_004_common.h), so the output is the same on every run. Python's
 * "returns None" is AIOC_NORESULT; a C result of 0/NULL is a result. */
#ifndef AIOC_SEED_004_EXAMPLES_H
#define AIOC_SEED_004_EXAMPLES_H

#include "seed_util.h"

/* The tour, in the article's order. */
#define SEED_004_EXAMPLES(X)                                                   \
  X(seed_004_1_group)                                                          \
  X(seed_004_2_pool)                                                           \
  X(seed_004_3_yielder)                                                        \
  X(seed_004_4_noresult_put)                                                   \
  X(seed_004_5_yielding)                                                       \
  X(seed_004_6_sequential_yield_from)                                          \
  X(seed_004_7_ordered_yielder)                                                \
  X(seed_004_8_simple_loop)                                                    \
  X(seed_004_9_nested_loops)

#define SEED_004_DECLARE(name) extern const seed_example name;
SEED_004_EXAMPLES(SEED_004_DECLARE)
#undef SEED_004_DECLARE

#endif /* AIOC_SEED_004_EXAMPLES_H */

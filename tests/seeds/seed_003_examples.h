/* The examples of seed 003, "Python Asyncio Part 3 - Asynchronous Context
 * Managers and Asynchronous Iterators" (BBC R&D, cloudfit project), ported
 * to aioc: one program per example, tests/seeds/seed_003_*.c. Each file
 * defines its seed_example below and, unless SEED_NO_MAIN is defined, a
 * main() whose --check mode compares the output with the expected lines.
 * The demo (examples/demo.c) compiles the same files with SEED_NO_MAIN and
 * tours SEED_003_EXAMPLES in order.
 *
 * The article's snippets leave the objects abstract (a flow store, a
 * remote resource, grains, do_something()); the ports give them small fake
 * bodies that sleep instead of doing I/O, on the virtual clock. Python's
 * exceptions are negative error codes: ConnectionResetError -ECONNRESET,
 * OSError -EIO, BrokenPipeError -EPIPE. */
#ifndef AIOC_SEED_003_EXAMPLES_H
#define AIOC_SEED_003_EXAMPLES_H

#include "seed_util.h"

/* The tour, in the article's order. */
#define SEED_003_EXAMPLES(X)                                                   \
  X(seed_003_1_nested_managers)                                                \
  X(seed_003_2_aexit)                                                          \
  X(seed_003_3_asynccontextmanager)                                            \
  X(seed_003_4_exit_stack)                                                     \
  X(seed_003_5_sync_and_async)                                                 \
  X(seed_003_6_async_for)                                                      \
  X(seed_003_7_asend)                                                          \
  X(seed_003_8_gen_comprehension)                                              \
  X(seed_003_9_list_comprehension)

#define SEED_003_DECLARE(name) extern const seed_example name;
SEED_003_EXAMPLES(SEED_003_DECLARE)
#undef SEED_003_DECLARE

#endif /* AIOC_SEED_003_EXAMPLES_H */

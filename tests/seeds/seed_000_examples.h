/* The examples of seed 000, on timeouts between the chunks of an async
 * generator (an RPC service over RabbitMQ whose worker answers in chunks;
 * the article's AsyncTimedIterable), ported to aioc: one program per
 * example, tests/seeds/seed_000_*.c. Each file defines its seed_example
 * below and, unless SEED_NO_MAIN is defined, a main() whose --check mode
 * compares the output with the expected lines. The demo
 * (examples/demo.c) compiles the same files with SEED_NO_MAIN and tours
 * SEED_000_EXAMPLES in order.
 *
 * The article only shows the wrapper class; the ports add the worker that
 * sends the chunks (seed_000_common.h) and print the virtual clock's time
 * on every line, so the timeouts can be read off the output. */
#ifndef AIOC_SEED_000_EXAMPLES_H
#define AIOC_SEED_000_EXAMPLES_H

#include "seed_util.h"

/* The tour, in the article's order. */
#define SEED_000_EXAMPLES(X)                                                   \
  X(seed_000_1_timed_iterable)                                                 \
  X(seed_000_2_next_timeout)                                                   \
  X(seed_000_3_cancel_on_timeout)                                              \
  X(seed_000_4_rpc)

#define SEED_000_DECLARE(name) extern const seed_example name;
SEED_000_EXAMPLES(SEED_000_DECLARE)
#undef SEED_000_DECLARE

/* Seed 000's RPC call (seed_000_4_rpc.c) on a loop with the options lo
 * (on the virtual clock), with inspect(arg) as a task named "inspector"
 * beside it and at_end(arg) called once the call is over, before the loop
 * closes: the demo's look inside a running program. */
int seed000_rpc_inspected(const aioc_loop_options *lo, aioc_fn inspect,
                          void (*at_end)(void *arg), void *arg);

#endif /* AIOC_SEED_000_EXAMPLES_H */

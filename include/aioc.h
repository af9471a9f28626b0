/* aioc: asyncio for C.
 *
 * The one header to include. Its parts, in reading order:
 *   aioc/base.h     version, error codes, allocator, value helpers
 *   aioc/loop.h     the event loop, callbacks, timers, thread-safe calls
 *   aioc/task.h     futures, tasks, cancellation, deadline scopes, aioc_run
 *   aioc/combine.h  sleep, wait_for, gather, wait, as_completed, TaskGroup
 *   aioc/gen.h      generators, iterators with per-item timeouts, helpers,
 *                   async context managers
 *   aioc/group.h    Group, Pool, Yielder, OrderedYielder (sync bridging)
 *   aioc/sync.h     Lock, Event, Condition, Semaphore, Barrier, queues,
 *                   the thread-safe queue
 *   aioc/thread.h   executors (thread pools), to_thread, run_in_executor,
 *                   run_coroutine_threadsafe
 *   aioc/io.h       fd readiness, TCP and Unix streams, servers, streams
 *                   as iterators
 *   aioc/udp.h      UDP endpoints, datagrams with their peer address,
 *                   datagrams as iterators
 *   aioc/process.h  subprocesses: spawn, pipes as streams, wait,
 *                   signals, communicate
 *   aioc/tls.h      TLS streams (OpenSSL): clients, servers, STARTTLS
 *   aioc/signal.h   Unix signals on the loop, graceful shutdown
 *   aioc/dns.h      name resolution on the loop
 *   aioc/rpc.h      streaming RPC with a timeout between chunks
 *   aioc/http.h     the HTTP client (libcurl on the loop)
 *   aioc/observe.h  metrics, task dumps, stack use
 *   aioc/trace.h    the flight recorder: a ring of the loop's last
 *                   events, Chrome trace-event JSON
 *   aioc/testing.h  the test kit: seeded schedules, waiting until every
 *                   task is blocked
 *
 * The implementation, one folder per layer, bottom up (a lower layer
 * never includes a higher one):
 *   src/util/       common.h, list.h (the intrusive list), ring.h,
 *                   ring.c (the growable ring), alloc.c (allocation
 *                   hook, aioc_mem_free), slab.c (task records),
 *                   error.c (version, error names)
 *   src/coro/       coro.h, coro.c, stack.c (guarded, pooled stacks),
 *                   switch_x86_64.S, switch_aarch64.S (context switch)
 *   src/loop/       loop.h, loop.c (creation, close, implicit loop),
 *                   clock.c, timer.c (timer heap), handle.c, tscall.c
 *                   (thread-safe calls), poll.c (epoll), run.c
 *                   (iterations), report.c
 *   src/task/       task.h, future.c, task.c, scope.c, twait.c (the one
 *                   timed wait, the waitpoint), errlist.c (error lists),
 *                   run.c (run_until_complete, block_on, aioc_run)
 *   src/combine/    sleep.c, gather.c, wait.c, taskgroup.c
 *   src/gen/        gen.h, gen.c, iter.c (interface, timed wrapper),
 *                   helpers.c, merge.c, cm.c (context managers)
 *   src/group/      group.c
 *   src/sync/       sync.h, waiter.c, lock.c, event.c, condition.c,
 *                   semaphore.c, barrier.c, queue.c, tsqueue.c
 *   src/thread/     executor.c (thread pools, jobs), tsfuture.c
 *                   (run_coroutine_threadsafe)
 *   src/io/         io.h, fd.c (readiness: waits, callbacks), addr.c
 *                   (addresses, sockets), stream.c, stream_iter.c,
 *                   server.c, udp.c (UDP endpoints), tls.c (TLS
 *                   streams on OpenSSL), process.c (subprocesses),
 *                   signal.c
 *                   (signalfd), dns.c (c-ares)
 *   src/rpc/        rpc.h, server.c (workers), client.c (calls),
 *                   local.c (the in-process transport), amqp.c (the
 *                   RabbitMQ transport)
 *   src/http/       http.c (libcurl's multi interface on the loop:
 *                   sessions, requests, body iterators)
 *   src/observe/    metrics.c (loop and task metrics), dump.c (task dumps),
 *                   stacks.c (stack use per spawn site), trace.c
 *                   (the flight recorder), testing.c (seeded schedules,
 *                   quiescence, the cooperative budget)
 * The API conventions every function follows are in docs/design.md. */
#ifndef AIOC_H
#define AIOC_H

#include "aioc/base.h"
#include "aioc/loop.h"
#include "aioc/task.h"
#include "aioc/combine.h"
#include "aioc/gen.h"
#include "aioc/group.h"
#include "aioc/sync.h"
#include "aioc/thread.h"
#include "aioc/io.h"
#include "aioc/udp.h"
#include "aioc/process.h"
#include "aioc/tls.h"
#include "aioc/signal.h"
#include "aioc/dns.h"
#include "aioc/rpc.h"
#include "aioc/http.h"
#include "aioc/observe.h"
#include "aioc/trace.h"
#include "aioc/testing.h"

#endif /* AIOC_H */

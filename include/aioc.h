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
 */
#ifndef AIOC_H
#define AIOC_H

#include "aioc/base.h"
#include "aioc/loop.h"
#include "aioc/task.h"
#include "aioc/combine.h"
#include "aioc/gen.h"
#include "aioc/group.h"
#include "aioc/sync.h"

#endif /* AIOC_H */

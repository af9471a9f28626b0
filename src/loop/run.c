/* Running the loop. One iteration: drain thread-safe calls, poll I/O
 * (only when it can matter: fds registered, or nothing else to do), move
 * expired timers to the ready queue, then run the items that were ready
 * when the batch began (newly scheduled ones wait for the next iteration,
 * as in asyncio), then the work layers deferred to the batch's end. */

#include "loop.h"
#include "../observe/stall.h"

/* ---- the stack scavenger ---- */

/* Free stacks keep their pages for reuse; the ones the thread did not need
 * for a whole period go back to the kernel (Go's scavenger). The loop
 * arms a pass lazily, only while a free list holds more than
 * AIOC__STACK_KEEP stacks: when it is about to wait, or every 4096
 * iterations of a loop that never does. */
#define SCAVENGE_PERIOD ((int64_t)1000000000) /* 1 s of loop time */

static void scavenger_arm(aioc_loop *loop) {
  if (!aioc__stack_scavenge_wanted()) return;
  aioc__stack_scavenge_watch();
  loop->scav_when = aioc__now(loop) + SCAVENGE_PERIOD;
}

static void scavenger_pass(aioc_loop *loop) {
  int more = aioc__stack_scavenge();
  loop->scav_when = !more ? AIOC__NEVER
                          : aioc__now(loop) + (more == 2 ? SCAVENGE_PERIOD / 8
                                                         : SCAVENGE_PERIOD);
}

/* ---- waiting for thread-safe calls ---- */

/* How long an idle loop spins for a thread-safe call it expects before
 * it sleeps in epoll_wait (and the poster pays a write to the eventfd,
 * the loop a wake-up). */
#define TS_SPIN_NS 10000

static bool ts_came(void *p) {
  aioc_loop *loop = p;
  return aioc__ts_pending(loop) ||
         atomic_load_explicit(&loop->stopping, memory_order_relaxed);
}

/* ---- running ---- */

/* The poller, timed when the loop observes timing. */
static void poll_io(aioc_loop *loop, int64_t timeout) {
  if (aioc__likely(!(loop->observe & AIOC_OBSERVE_TIMING))) {
    aioc__poll_io(loop, timeout);
    return;
  }
  int64_t t0 = aioc__clock_ns();
  aioc__poll_io(loop, timeout);
  loop->m.poll_ns += aioc__clock_ns() - t0;
}

static void run_deferred(aioc_loop *loop) {
  aioc__list *l;
  while ((l = aioc__list_pop_front(&loop->deferred)) != NULL) {
    aioc__deferred *d = aioc__container_of(l, aioc__deferred, link);
    d->run(d);
  }
}

static size_t run_once(aioc_loop *loop, bool may_block) {
  loop->now_valid = false;
  if (aioc__ts_pending(loop)) aioc__drain_threadsafe(loop);
  bool idle = loop->ready.head == 0;
  if (aioc__unlikely(loop->scav_when == AIOC__NEVER) &&
      (idle || (++loop->scav_tick & 4095) == 0))
    scavenger_arm(loop);
  if (idle && may_block && !atomic_load(&loop->stopping)) {
    int64_t timeout = -1;
    if (loop->nheap) {
      if (loop->virtual_clock) {
        timeout = 0;
      } else {
        timeout = loop->heap[0].when - aioc__now(loop);
        if (timeout < 0) timeout = 0;
      }
    }
    if (loop->scav_when != AIOC__NEVER && !loop->virtual_clock) {
      /* Virtual time never jumps for the scavenger; real time wakes it. */
      int64_t t = loop->scav_when - aioc__now(loop);
      if (t < 0) t = 0;
      if (timeout < 0 || t < timeout) timeout = t;
    }
    /* Calls expected (executor jobs in flight) and the last wait for one
     * was short: a short spin saves the sleep, the poster's write and
     * the wake-up. A spin that finds nothing turns spinning off; it comes
     * back on when a sleep turns out to be ended by a call within
     * TS_SPIN_NS * 4, so jobs that run long cost no spin at all. */
    int64_t slept = 0;
    if (timeout != 0 && loop->ts_expect && !loop->virtual_clock) {
      if (!loop->ts_hot)
        slept = aioc__clock_ns();
      else if (aioc__spin_wait(ts_came, loop, TS_SPIN_NS))
        timeout = 0;
      else
        loop->ts_hot = false;
    }
    if (timeout != 0 || loop->nfds) poll_io(loop, timeout);
    if (atomic_load(&loop->ts_head)) {
      if (slept && aioc__clock_ns() - slept < TS_SPIN_NS * 4)
        loop->ts_hot = true;
      aioc__drain_threadsafe(loop);
    }
    /* Virtual time jumps only when nothing else can happen first. */
    if (loop->virtual_clock && loop->nheap && loop->ready.head == 0 &&
        loop->heap[0].when > loop->now)
      loop->now = loop->heap[0].when;
  } else if (loop->nfds && (++loop->iter % 61 == 0 || idle)) {
    poll_io(loop, 0);
  }
  if (loop->nheap) aioc__timers_fire(loop, aioc__now(loop));
  if (aioc__unlikely(loop->scav_when != AIOC__NEVER) &&
      aioc__now(loop) >= loop->scav_when)
    scavenger_pass(loop);
  /* Tasks may hand control straight to the next ready task of this batch
   * (see task.c), so the count lives in the loop. */
  aioc__sched_begin(loop);
  if (aioc__unlikely(loop->schedule_seed)) aioc__sched_shuffle(loop);
  size_t ran = 0;
  uintptr_t e;
  while ((e = aioc__sched_next(loop)) != 0) {
    ran++;
    aioc__ready_run(loop, e);
  }
  if (!aioc__list_is_empty(&loop->deferred)) run_deferred(loop);
  return ran;
}

/* A seeded loop's run condition as aioc__loop_can_continue() sees it:
 * always met, so that every batch begins in run_once() (see loop.h). */
static bool seeded_hold(void *arg) {
  (void)arg;
  return true;
}

int aioc__loop_run(aioc_loop *loop, bool (*done)(void *), void *arg) {
  if (!loop) return -EINVAL;
  if (loop->closed) return AIOC_ECLOSED;
  if (loop->running || aioc__running) return AIOC_ERUNNING;
  loop->running = true;
  aioc__running = loop;
  if (aioc__unlikely(loop->debug_socket) && !loop->debugsock)
    aioc__debugsock_start(loop);
  aioc_loop *saved = aioc__thread_current;
  aioc__thread_current = loop;
  aioc__coro_init_thread(&loop->main_coro);
  if (aioc__unlikely(loop->stall_threshold > 0)) aioc__stall_run_begin(loop);
  loop->run_done = loop->schedule_seed ? seeded_hold : done;
  loop->run_arg = arg;
  int rc = 0;
  while (!(done && done(arg))) {
    /* As in asyncio, a stop requested before the run still lets one
     * iteration happen. */
    run_once(loop, true);
    if (atomic_load(&loop->stopping)) {
      rc = done && !done(arg) ? -EINTR : 0;
      break;
    }
  }
  atomic_store(&loop->stopping, false);
  loop->run_done = NULL;
  if (aioc__unlikely(loop->stall_threshold > 0)) aioc__stall_run_end(loop);
  aioc__running = NULL;
  if (aioc__thread_current == loop && saved != loop)
    aioc__thread_current = saved;
  loop->running = false;
  return rc;
}

int aioc_loop_run_forever(aioc_loop *loop) {
  if (loop && !AIOC__LOOP_OK(loop, "aioc_loop_run_forever")) return -EINVAL;
  return aioc__loop_run(loop, NULL, NULL);
}

int aioc_loop_run_once(aioc_loop *loop) {
  if (!loop || !AIOC__LOOP_OK(loop, "aioc_loop_run_once")) return -EINVAL;
  if (loop->closed) return AIOC_ECLOSED;
  if (loop->running || aioc__running) return AIOC_ERUNNING;
  loop->running = true;
  aioc__running = loop;
  if (aioc__unlikely(loop->debug_socket) && !loop->debugsock)
    aioc__debugsock_start(loop);
  aioc__coro_init_thread(&loop->main_coro);
  if (loop->schedule_seed) loop->run_done = seeded_hold;
  if (aioc__unlikely(loop->stall_threshold > 0)) aioc__stall_run_begin(loop);
  size_t ran = run_once(loop, false);
  if (aioc__unlikely(loop->stall_threshold > 0)) aioc__stall_run_end(loop);
  loop->run_done = NULL;
  aioc__running = NULL;
  loop->running = false;
  return (int)ran;
}

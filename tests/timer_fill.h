/* Fills a loop's timer heap to its capacity, so that arming one more
 * timer needs the heap to grow (which check_grow_failing_realloc, in
 * check.h, can refuse). The first timer, 1000 s away, sets nomem_ev: the
 * tests' tasks wait for it without a timer of their own. */
#ifndef AIOC_TEST_TIMER_FILL_H
#define AIOC_TEST_TIMER_FILL_H

#include "check.h"
#include "loop/loop.h" /* the loop's timer heap */

static aioc_event *nomem_ev;
static inline void nomem_guard(void *arg) {
  (void)arg;
  IGNORE_RC(aioc_event_set(nomem_ev));
}
static inline void timer_fill_nop(void *arg) {
  (void)arg;
}
static inline void fill_timer_heap(aioc_loop *loop) {
  CHECK_RC(aioc_call_later(NULL, loop, 1000, nomem_guard, NULL), 0);
  for (int i = 1; loop->nheap < loop->capheap; i++)
    CHECK_RC(aioc_call_later(NULL, loop, 1000 + i, timer_fill_nop, NULL), 0);
}

#endif

/* The stall detector and the frame-pointer walker (stall.c, backtrace.c):
 * what the loop and task layers call. */
#ifndef AIOC_STALL_INTERNAL_H
#define AIOC_STALL_INTERNAL_H

#include "../task/task.h"

/* The internal bit of loop->observe that a loop with a stall threshold
 * carries, so that its tasks take the slow path (t->f.slow) through the
 * spawn's existing check of loop->observe. */
#define AIOC__OBSERVE_STALL (1u << 30)

/* A watched loop's detector state (loop->stall). */
typedef struct aioc__stall aioc__stall;

/* The running task changes: t starts or resumes (in), stops (out). Called
 * from aioc__tobs_in/out when loop->stall is set (the loop runs and is
 * watched). */
AIOC_HIDDEN void aioc__stall_in(aioc_task *t);
AIOC_HIDDEN void aioc__stall_out(aioc_task *t);

/* The loop starts or stops running on this thread: it is watched in
 * between (when it has a threshold). */
AIOC_HIDDEN void aioc__stall_run_begin(aioc_loop *loop);
AIOC_HIDDEN void aioc__stall_run_end(aioc_loop *loop);

/* The loop is freed: its detector state goes. */
AIOC_HIDDEN void aioc__stall_free(aioc_loop *loop);

/* Walks a frame-pointer chain: out[0] = pc (if not 0), then the return
 * address of each frame record from fp, following the records while each
 * lies in [lo, hi), is aligned and is above the one before. Reads nothing
 * outside [lo, hi). fps (if not NULL) receives the address of each record
 * followed (fps[0] = 0). Async-signal-safe. Returns the count. */
AIOC_HIDDEN size_t aioc__fp_walk(uintptr_t pc, uintptr_t fp, uintptr_t lo,
                                 uintptr_t hi, void **out, uintptr_t *fps,
                                 size_t cap);

/* For tests: asks the loop's thread (which must be running loop, with a
 * threshold) for a sample of its stack now, from any thread, as the
 * detector does on a stall; waits for it up to timeout seconds. Returns
 * 1 and fills the sample (frames, and the bounds the walk kept to) if
 * it came, 0 if not, -EINVAL if the loop is not watched. */
typedef struct aioc__stall_sample {
  void *frames[AIOC_STACK_FRAMES_MAX];
  uintptr_t fps[AIOC_STACK_FRAMES_MAX];
  size_t n;
  uintptr_t lo, hi; /* the stack walked: [lo, hi); 0, 0: none */
  uint64_t seq;     /* the loop's run counter then */
} aioc__stall_sample;
AIOC_HIDDEN int aioc__stall_sample_now(aioc_loop *loop,
                                       aioc__stall_sample *out,
                                       double timeout);

#endif

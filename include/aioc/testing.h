/* aioc/testing.h: the test kit.
 *
 * Seeded schedules: with the virtual clock, a loop's schedule seed
 * (aioc_loop_options.schedule_seed, or the AIOC_SCHEDULE_SEED environment
 * variable) perturbs the order in which the ready tasks of one batch run,
 * within what the API promises (see docs/testing.md): the same seed gives
 * the same order, so a test can explore interleavings and replay the one
 * that failed. aioc_test_seeds() runs a test under many seeds.
 *
 * Quiescence: aioc_wait_all_tasks_blocked() returns once every other task
 * of the loop is blocked (Trio's wait_all_tasks_blocked, Go's
 * synctest.Wait).
 *
 * A stream pair: two connected streams whose faults a test injects (a
 * delay on writes, short reads, a reset, a stall), read through the
 * ordinary stream API. */
#ifndef AIOC_TESTING_H
#define AIOC_TESTING_H

#include "io.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Waits until every other task of the running loop is blocked: suspended
 * on something (a future, a sleep, a primitive, an fd that the poller,
 * asked without waiting, does not report ready, a job of another thread),
 * no callback or thread-safe call is waiting to run, and no timer is due;
 * with the virtual clock, it returns before the clock would move. Tasks
 * that call it at the same time all return together. A task that never
 * blocks keeps it waiting; the timeout is in loop time (with the virtual
 * clock, time does not move while a task is ready: a busy task then keeps
 * it waiting for ever). A suspension point: the calling task yields at
 * least once. Returns 0, -ECANCELED, -ETIMEDOUT (timeout, or a deadline
 * in scope), -EINVAL (negative or NaN timeout), AIOC_ENOTASK (not in a
 * task) or -ENOMEM. */
AIOC_API AIOC_NODISCARD int aioc_wait_all_tasks_blocked(double timeout);

/* Runs a test under count seeds: for each seed s from first up, a fresh
 * loop with the virtual clock and schedule seed s runs fn(arg) as its
 * main task until it ends, then is freed (tasks left pending are
 * reported as a loop's close reports them). The run fails when the task
 * ends with an error or cancelled: the loop stops there, "failed under
 * seed S (AIOC_SCHEDULE_SEED=S to replay)" is printed on stderr and S is
 * stored in *failed (when not NULL; 0 while every seed passes). When the
 * AIOC_SCHEDULE_SEED environment variable is set, only that seed runs
 * (the replay). Must not be called while a loop runs on the thread.
 * Returns 0 (every seed passed), 1 (one failed), -EINVAL (fn NULL, count
 * 0, first 0 or the range past UINT64_MAX), AIOC_ERUNNING, or the error
 * of aioc_loop_new() / aioc_spawn_ex(). */
AIOC_API AIOC_NODISCARD int aioc_test_seeds(aioc_fn fn, void *arg,
                                            uint64_t first, unsigned count,
                                            uint64_t *failed);

/* The schedule seed the loop uses: 0 when it keeps the plain order (no
 * seed, or no virtual clock), 0 for NULL. */
AIOC_API uint64_t aioc_loop_schedule_seed(const aioc_loop *loop);

/* Makes two connected streams of the running (or current) loop, over a
 * socketpair: what is written on one is read on the other, through the
 * whole stream API (reads, lines, iterators, drain, close). Each takes the
 * faults below; free each with aioc_stream_free(). Returns 0 with *a and
 * *b, -EINVAL (NULL), AIOC_ECLOSED, -ENOMEM, -EMFILE. */
AIOC_API AIOC_NODISCARD int aioc_test_stream_pair(aioc_stream **a,
                                                  aioc_stream **b);

/* Bytes written on s from now on reach its peer seconds later, in loop
 * time (with the virtual clock, a timer the clock jumps to); no byte
 * overtakes an earlier one (0: no delay). Drain returns once s has taken
 * the bytes. Returns 0, or -EINVAL (not a stream of a test pair, seconds
 * negative, NaN or above 1e9). */
AIOC_API int aioc_test_stream_delay(aioc_stream *s, double seconds);

/* Each read of s from its socket takes at most max bytes (0: no limit):
 * readexactly and readline then need several. Returns 0, or -EINVAL (not
 * a stream of a test pair). */
AIOC_API int aioc_test_stream_short_reads(aioc_stream *s, size_t max);

/* s reads n more bytes, then its reads fail with -ECONNRESET (at once if
 * n is 0, waking a read that waits), as after a reset by the peer.
 * Returns 0, or -EINVAL (not a stream of a test pair). */
AIOC_API int aioc_test_stream_reset_after(aioc_stream *s, size_t n);

/* Non-zero: s reads no more bytes (a read waits, its timeout running)
 * until called with 0, which wakes a read that waits. Returns 0, or
 * -EINVAL (not a stream of a test pair). */
AIOC_API int aioc_test_stream_stall(aioc_stream *s, int stalled);

#ifdef __cplusplus
}
#endif
#endif /* AIOC_TESTING_H */

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
 * synctest.Wait). */
#ifndef AIOC_TESTING_H
#define AIOC_TESTING_H

#include "task.h"

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

#ifdef __cplusplus
}
#endif
#endif /* AIOC_TESTING_H */

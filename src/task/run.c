/* Running a loop to a future's completion, the sync bridge, aioc_run. */
#include <stdio.h>

#include "task.h"

static bool future_done(void *arg) {
  return ((aioc_future *)arg)->state != AIOC_FUTURE_PENDING;
}

int aioc_loop_run_until_complete(aioc_loop *loop, aioc_future *f) {
  if (!loop || !f || !AIOC__LOOP_OK(loop, "aioc_loop_run_until_complete") ||
      !AIOC__FUTURE_OK(f, "aioc_loop_run_until_complete") || f->loop != loop)
    return -EINVAL;
  aioc_future_ref(f);
  int rc = aioc__loop_run(loop, future_done, f);
  aioc_future_unref(f);
  return rc;
}

int aioc_block_on(aioc_future *f, void **result) {
  if (result) *result = NULL;
  if (!f || !AIOC__FUTURE_OK(f, "aioc_block_on")) return -EINVAL;
  if (aioc__running) {
    if (!aioc__running->current) return AIOC_ERUNNING;
    return aioc_await(f, result);
  }
  int rc = aioc_loop_run_until_complete(f->loop, f);
  if (rc < 0) return rc;
  rc = aioc__future_take(f, result, NULL);
  if (rc < 0) aioc__plain_error_set(f->ext ? f->ext->msg : NULL);
  return rc;
}

/* Leftover tasks are done, or time is up. */
typedef struct shutdown {
  aioc_loop *loop;
  bool timed_out;
} shutdown;

static bool all_finished(void *arg) {
  shutdown *s = arg;
  return s->loop->nlive == 0 || s->timed_out;
}

static void shutdown_timer(void *arg) { ((shutdown *)arg)->timed_out = true; }

static void cancel_one(aioc_task *t, void *arg) {
  (void)arg;
  aioc_task_cancel(t, "aioc_run is shutting down");
}

static void report_one(aioc_task *t, void *loop) {
  aioc_report r = {.message = "Task ignored its cancellation and did not "
                              "finish",
                   .task = t,
                   .task_name = aioc__task_display_name(t)};
  aioc__report(loop, &r);
  t->f.reported = 1; /* once: the close abandons it without a word */
}

int aioc_run_ex(aioc_fn main, void *arg, void **result,
                const aioc_run_options *opts) {
  if (result) *result = NULL;
  if (!main) return -EINVAL;
  if (aioc__running) return AIOC_ERUNNING;
  aioc_loop *loop;
  int rc = aioc_loop_new(&loop, opts ? &opts->loop : NULL);
  if (rc < 0) return rc;
  aioc_task *t;
  aioc_task_options topts = {.name = "main"};
  /* Not a site of the caller's: a spawn noted by the macros on a loop
   * that does not observe spawns leaves its site behind. */
  aioc__spawn_next = NULL;
  rc = aioc_spawn_ex(&t, loop, main, arg, &topts);
  if (rc < 0) {
    aioc_loop_free(loop);
    return rc;
  }
  rc = aioc_loop_run_until_complete(loop, &t->f);
  if (rc == 0) {
    rc = aioc__future_take(&t->f, result, NULL);
    if (rc < 0) aioc__plain_error_set(t->f.ext ? t->f.ext->msg : NULL);
  } else {
    aioc_task_cancel(t, "aioc_run interrupted");
  }

  /* Close the generators main left unfinished, then cancel what is left
   * and let it clean up, within the grace period. */
  aioc__loop_shutdown_live(loop);
  if (loop->nlive) {
    aioc__tasks_each(loop, cancel_one, NULL);
    shutdown s = {loop, false};
    double grace = opts && opts->shutdown_timeout > 0 ? opts->shutdown_timeout
                                                      : 5.0;
    aioc_handle *h;
    if (aioc_call_later(&h, loop, grace, shutdown_timer, &s) == 0) {
      aioc__loop_run(loop, all_finished, &s);
      aioc_handle_cancel(h);
      aioc_handle_unref(h);
    }
    if (loop->nlive && !loop->quiet) aioc__tasks_each(loop, report_one, loop);
  }
  aioc_task_unref(t);
  aioc_loop_free(loop);
  return rc;
}

int aioc_run(aioc_fn main, void *arg, void **result) {
  return aioc_run_ex(main, arg, result, NULL);
}

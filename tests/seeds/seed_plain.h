/* Helpers for the seed ports that run from plain code (a main() without
 * aioc_run): the consumer calls aioc_gen_next(), aioc_with() or
 * aioc_block_on() directly and the thread's loop runs underneath.
 *
 * seed_plain_begin() makes a virtual-clock loop the thread's current loop,
 * with seed_report() installed, so that plain code gets the same exact,
 * instant timings as seed_run(); seed_plain_end() clears and closes it.
 * Examples that use the thread's implicit loop instead (created on first
 * use by the library) close it with seed_plain_close_implicit(). */
#ifndef AIOC_SEED_PLAIN_H
#define AIOC_SEED_PLAIN_H

#include "seed_util.h"

/* Creates a virtual-clock loop and makes it the thread's current loop.
 * Returns 0 or the library's error. */
static inline int seed_plain_begin(aioc_loop **out) {
  aioc_loop_options o;
  memset(&o, 0, sizeof o);
  o.virtual_clock = 1;
  int rc = aioc_loop_new(out, &o);
  if (rc < 0) return rc;
  aioc_loop_set_report_handler(*out, seed_report, NULL);
  rc = aioc_loop_set_current(*out);
  if (rc < 0) {
    aioc_loop_free(*out);
    *out = NULL;
  }
  return rc;
}

/* Clears the thread's current loop, closes loop and frees it (NULL is
 * harmless). Returns aioc_loop_close()'s code. */
static inline int seed_plain_end(aioc_loop *loop) {
  if (!loop) return 0;
  aioc_loop_set_current(NULL);
  int rc = aioc_loop_close(loop);
  aioc_loop_free(loop);
  return rc;
}

/* Closes and frees the loop the library created for this thread on first
 * use, as a program may before it exits (aioc_loop_current() returns it;
 * with no such loop yet, it creates one, which is closed at once). */
static inline int seed_plain_close_implicit(void) {
  if (aioc_get_running_loop()) return AIOC_ERUNNING;
  aioc_loop *loop = aioc_loop_current();
  if (!loop) return 0;
  int rc = aioc_loop_close(loop);
  aioc_loop_free(loop);
  return rc;
}

#endif /* AIOC_SEED_PLAIN_H */

/* What the examples of seed 004 (the aioutils README) share: the chars
 * 'abcdefg', the README's f(c) with its random sleep, a plain-code stand-in
 * for time.sleep(), and the formatting of print(list(...)).
 *
 *   @asyncio.coroutine
 *   def f(c):
 *       yield from asyncio.sleep(random.random()/10)
 *       return c
 *
 *   chars = 'abcdefg'
 *
 * random.random()/10 is a fixed table here (seed004_delay, one draw frozen
 * in milliseconds), so the completion order and every timing are the same
 * on every run; on the virtual clock of seed_plain_begin() they are exact.
 * The order by increasing sleep is d b g e a c f, and the longest sleep
 * (f's) is 0.095 s. */
#ifndef AIOC_SEED_004_COMMON_H
#define AIOC_SEED_004_COMMON_H

#include <stdio.h>

#include "seed_plain.h"

#define SEED004_NCHARS 7
static const char seed004_chars[SEED004_NCHARS + 1] = "abcdefg";

/* random.random()/10 for 'a'..'g', drawn once. */
static const double seed004_delay[SEED004_NCHARS] = {
    0.064, 0.027, 0.081, 0.009, 0.052, 0.095, 0.038};

/* What the f tasks did, for the checks. */
static int seed004_running, seed004_max_running, seed004_started,
    seed004_finished;
/* 0: f prints nothing; 1: f prints when it returns; 2: also when it
 * starts. */
static int seed004_trace;
/* The chars in the order their f returned. */
static char seed004_done_order[SEED004_NCHARS + 1];

static inline void seed004_reset(int trace) {
  seed004_running = seed004_max_running = 0;
  seed004_started = seed004_finished = 0;
  memset(seed004_done_order, 0, sizeof seed004_done_order);
  seed004_trace = trace;
}

/* f(c): the argument is the char (AIOC_INT(c)), and so is the result. */
static inline int seed004_f(void *arg, void **result) {
  char c = (char)AIOC_TO_INT(arg);
  double delay = seed004_delay[c - 'a'];
  seed004_started++;
  if (++seed004_running > seed004_max_running)
    seed004_max_running = seed004_running;
  if (seed004_trace >= 2)
    seed_out("t=%.3f f('%c') starts, sleeps %.3f s (%d running)", aioc_time(),
             c, delay, seed004_running);
  int rc = aioc_sleep(delay); /* yield from asyncio.sleep(random()/10) */
  seed004_running--;
  if (rc < 0) return rc;
  if (seed004_finished < SEED004_NCHARS)
    seed004_done_order[seed004_finished] = c;
  seed004_finished++;
  if (seed004_trace >= 1) seed_out("t=%.3f f('%c') returns", aioc_time(), c);
  *result = AIOC_INT(c); /* return c */
  return 0;
}

/* The chars sorted by increasing sleep (computed, not written down): the
 * completion order an unordered Group or Yielder must give. */
static inline void seed004_by_delay(char out[SEED004_NCHARS + 1]) {
  memcpy(out, seed004_chars, SEED004_NCHARS + 1);
  for (int i = 1; i < SEED004_NCHARS; i++)
    for (int j = i; j > 0 && seed004_delay[out[j] - 'a'] <
                                 seed004_delay[out[j - 1] - 'a'];
         j--) {
      char t = out[j];
      out[j] = out[j - 1];
      out[j - 1] = t;
    }
}

/* The longest sleep: when a Group of all seven is joined. */
static inline double seed004_longest(void) {
  double m = 0;
  for (int i = 0; i < SEED004_NCHARS; i++)
    if (seed004_delay[i] > m) m = seed004_delay[i];
  return m;
}

/* Python's repr of a list of one-char strings, e.g. ['d', 'b']; an item
 * that is NULL (a C result of 0/NULL, which Python has no word for) shows
 * as NULL. */
static inline void seed004_format_list(char *buf, size_t n,
                                       void *const *items, size_t count) {
  size_t len = 0;
  len += (size_t)snprintf(buf + len, len < n ? n - len : 0, "[");
  for (size_t i = 0; i < count; i++) {
    const char *sep = i ? ", " : "";
    if (items[i])
      len += (size_t)snprintf(buf + len, len < n ? n - len : 0, "%s'%c'",
                              sep, (char)AIOC_TO_INT(items[i]));
    else
      len += (size_t)snprintf(buf + len, len < n ? n - len : 0, "%sNULL",
                              sep);
  }
  snprintf(buf + len, len < n ? n - len : 0, "]");
}

/* The items as a C string of chars (NULL items as '0'), for the checks. */
static inline void seed004_items_str(char *buf, size_t n, void *const *items,
                                     size_t count) {
  size_t i = 0;
  for (; i < count && i + 1 < n; i++)
    buf[i] = items[i] ? (char)AIOC_TO_INT(items[i]) : '0';
  if (n) buf[i] = '\0';
}

/* time.sleep(seconds) in plain code: a task that sleeps, and the thread
 * blocked on it while the loop runs underneath (the virtual clock moves by
 * exactly seconds). The task gets the delay in microseconds, by value, so
 * that it never points into this frame. Returns 0 or the error. */
static inline int seed004_sleep_task(void *arg, void **result) {
  (void)result;
  return aioc_sleep((double)AIOC_TO_INT(arg) / 1e6);
}

static inline int seed004_blocking_sleep(double seconds) {
  aioc_task *t;
  int rc = aioc_spawn(&t, seed004_sleep_task,
                      AIOC_INT((intptr_t)(seconds * 1e6 + 0.5)));
  if (rc < 0) return rc;
  rc = aioc_block_on(aioc_task_future(t), NULL);
  aioc_task_unref(t);
  return rc;
}

#endif /* AIOC_SEED_004_COMMON_H */
